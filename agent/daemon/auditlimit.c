// SPDX-License-Identifier: GPL-2.0
/*
 * auditlimit.c - audit lines limited per source (see auditlimit.h).
 */
#include "daemon/auditlimit.h"

#include <string.h>

void cmk_auditlimit_init(struct cmk_auditlimit *a, uint32_t window_ms,
			 cmk_auditlimit_summary_fn summary, void *ctx)
{
	memset(a, 0, sizeof(*a));
	a->window_ms = window_ms;
	a->summary = summary;
	a->ctx = ctx;
}

/* The window of slot @i ends: its summary if it dropped lines; frees it. */
static void window_end(struct cmk_auditlimit *a, int i)
{
	if (a->s[i].dropped)
		a->summary(a->ctx, a->s[i].source, a->s[i].logged, a->s[i].dropped,
			   a->window_ms / 1000);
	a->s[i].used = false;
}

bool cmk_auditlimit_admit(struct cmk_auditlimit *a, uint64_t source,
			  uint64_t now_ms)
{
	int n = -1;

	for (int i = 0; i < CMK_AUDITLIMIT_SOURCES && n < 0; i++)
		if (a->s[i].used && a->s[i].source == source)
			n = i;
	if (n >= 0 && now_ms - a->s[n].since_ms >= a->window_ms) {
		window_end(a, n);
		n = -1;
	}
	if (n < 0) {
		/* a free slot, else the oldest window ends now */
		for (int i = 0; i < CMK_AUDITLIMIT_SOURCES; i++)
			if (n < 0 || (a->s[n].used && (!a->s[i].used ||
							a->s[i].since_ms < a->s[n].since_ms)))
				n = i;
		if (a->s[n].used)
			window_end(a, n);
		memset(&a->s[n], 0, sizeof(a->s[n]));
		a->s[n].used = true;
		a->s[n].source = source;
		a->s[n].since_ms = now_ms;
	}
	if (a->s[n].logged < CMK_AUDITLIMIT_BURST) {
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
		uint64_t end;

		if (!a->s[i].used)
			continue;
		end = a->s[i].since_ms + a->window_ms;
		if (now_ms >= end)
			window_end(a, i);
		else if (end - now_ms < next)
			next = end - now_ms;
	}
	return next;
}

void cmk_auditlimit_flush(struct cmk_auditlimit *a)
{
	for (int i = 0; i < CMK_AUDITLIMIT_SOURCES; i++)
		if (a->s[i].used)
			window_end(a, i);
}
