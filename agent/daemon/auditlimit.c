// SPDX-License-Identifier: GPL-2.0
/*
 * auditlimit.c - audit lines limited per source: a token bucket each,
 * and a summary of what it held back (see auditlimit.h).
 */
#include "daemon/auditlimit.h"

#include <string.h>

void cmk_auditlimit_init(struct cmk_auditlimit *a, uint32_t period_ms,
			 cmk_auditlimit_summary_fn summary, void *ctx)
{
	memset(a, 0, sizeof(*a));
	a->period_ms = period_ms ? period_ms : 1;
	a->summary = summary;
	a->ctx = ctx;
}

/* The tokens slot @i got back by @now_ms (a full bucket stops the clock). */
static void refill(struct cmk_auditlimit *a, int i, uint64_t now_ms)
{
	uint64_t n;

	if (a->s[i].tokens >= CMK_AUDITLIMIT_BURST || now_ms < a->s[i].refill_ms)
		return;
	n = (now_ms - a->s[i].refill_ms) / a->period_ms + 1;
	if (n >= CMK_AUDITLIMIT_BURST - a->s[i].tokens) {
		a->s[i].tokens = CMK_AUDITLIMIT_BURST;
		return;
	}
	a->s[i].tokens += (unsigned int)n;
	a->s[i].refill_ms += n * a->period_ms;
}

/* Slot @i's summary of the lines it held back, if any; a new span. */
static void summarize(struct cmk_auditlimit *a, int i, uint64_t now_ms)
{
	if (a->s[i].dropped)
		a->summary(a->ctx, a->s[i].source, a->s[i].logged, a->s[i].dropped,
			   (unsigned int)((now_ms - a->s[i].since_ms) / 1000));
	a->s[i].logged = 0;
	a->s[i].dropped = 0;
	a->s[i].since_ms = now_ms;
}

/* Nothing left to remember of slot @i: its bucket is full, nothing owed. */
static bool idle(struct cmk_auditlimit *a, int i, uint64_t now_ms)
{
	if (!a->s[i].used)
		return true;
	refill(a, i, now_ms);
	return a->s[i].tokens == CMK_AUDITLIMIT_BURST && !a->s[i].dropped;
}

/* The slot of @source: its own, a free one, or the least recent one's. */
static int slot(struct cmk_auditlimit *a, uint64_t source, uint64_t now_ms)
{
	int n = -1;

	for (int i = 0; i < CMK_AUDITLIMIT_SOURCES; i++)
		if (a->s[i].used && a->s[i].source == source)
			return i;
	for (int i = 0; i < CMK_AUDITLIMIT_SOURCES && n < 0; i++)
		if (idle(a, i, now_ms))
			n = i;
	if (n >= 0) {
		memset(&a->s[n], 0, sizeof(a->s[n]));
		a->s[n].used = true;
		a->s[n].tokens = CMK_AUDITLIMIT_BURST;
	} else {
		/* All busy: the least recent one's summary; its bucket goes on. */
		n = 0;
		for (int i = 1; i < CMK_AUDITLIMIT_SOURCES; i++)
			if (a->s[i].last_ms < a->s[n].last_ms)
				n = i;
		summarize(a, n, now_ms);
	}
	a->s[n].source = source;
	a->s[n].since_ms = now_ms;
	return n;
}

bool cmk_auditlimit_admit(struct cmk_auditlimit *a, uint64_t source,
			  uint64_t now_ms)
{
	int n = slot(a, source, now_ms);

	a->s[n].last_ms = now_ms;
	if (a->s[n].dropped && now_ms - a->s[n].since_ms >= a->period_ms)
		summarize(a, n, now_ms);
	refill(a, n, now_ms);
	if (a->s[n].tokens) {
		if (a->s[n].tokens == CMK_AUDITLIMIT_BURST)
			a->s[n].refill_ms = now_ms + a->period_ms;
		a->s[n].tokens--;
		a->s[n].logged++;
		return true;
	}
	a->s[n].dropped++;
	return false;
}

uint64_t cmk_auditlimit_tick(struct cmk_auditlimit *a, uint64_t now_ms)
{
	uint64_t next = UINT64_MAX;

	for (int i = 0; i < CMK_AUDITLIMIT_SOURCES; i++) {
		uint64_t due;

		if (!a->s[i].used || !a->s[i].dropped)
			continue;
		due = a->s[i].since_ms + a->period_ms;
		if (now_ms >= due)
			summarize(a, i, now_ms);
		else if (due - now_ms < next)
			next = due - now_ms;
	}
	return next;
}

void cmk_auditlimit_flush(struct cmk_auditlimit *a)
{
	for (int i = 0; i < CMK_AUDITLIMIT_SOURCES; i++)
		if (a->s[i].used && a->s[i].dropped)
			summarize(a, i, a->s[i].last_ms);
}
