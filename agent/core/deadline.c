// SPDX-License-Identifier: GPL-2.0
/*
 * deadline.c - per-thread deadline for KMS calls (see deadline.h).
 */
#include "core/deadline.h"

#include <stdatomic.h>
#include <time.h>

static _Thread_local uint64_t deadline_ms;
static _Thread_local const atomic_bool *watched;
static atomic_bool cancelled;

uint64_t cmk_deadline_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t cmk_deadline_awake_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void cmk_deadline_set(uint64_t at_ms)
{
	deadline_ms = at_ms;
}

uint64_t cmk_deadline_get(void)
{
	return deadline_ms;
}

long cmk_deadline_left_ms(void)
{
	uint64_t now;

	if (atomic_load(&cancelled) || (watched && atomic_load(watched)))
		return 0;
	if (!deadline_ms)
		return -1;
	now = cmk_deadline_now_ms();
	return now >= deadline_ms ? 0 : (long)(deadline_ms - now);
}

bool cmk_deadline_expired(void)
{
	return cmk_deadline_left_ms() == 0;
}

long cmk_deadline_clamp_ms(long ms)
{
	long left = cmk_deadline_left_ms();

	if (left < 0 || ms < left)
		return ms;
	return left > 0 ? left : 1;
}

void cmk_deadline_cancel_all(bool on)
{
	atomic_store(&cancelled, on);
}

void cmk_deadline_watch(const atomic_bool *cancel)
{
	watched = cancel;
}

const char *cmk_deadline_cancel_reason(void)
{
	if (atomic_load(&cancelled))
		return "the agent is stopping";
	if (watched && atomic_load(watched))
		return "the job's answer is no longer wanted (an event made it stale)";
	return NULL;
}
