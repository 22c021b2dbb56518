/* SPDX-License-Identifier: GPL-2.0 */
/*
 * auditlimit.h - audit lines a flood can cause, limited per source.
 *
 * Each source (a peer uid of the key socket, a hint source) has a bucket
 * of CMK_AUDITLIMIT_BURST lines that refills by one line per @period_ms
 * (CMK_AUDITLIMIT_PERIOD_MS in the agent): a burst of 10 is written one
 * by one, a sustained flood only one line a minute.  The lines not
 * written are counted, and the count goes out as one summary line
 * (@summary) at most once per @period_ms while they come, once more
 * after the last, and at flush: nothing is lost silently.  A flood at any
 * rate for T minutes thus writes at most 10 + T lines and T + 1
 * summaries per source.  CMK_AUDITLIMIT_SOURCES sources are limited apart;
 * a source whose bucket is full again and owes no summary is forgotten.
 * A new source when all are busy takes the place (and the bucket) of the
 * one heard from least recently, after that one's summary, so more
 * sources than slots share buckets rather than each getting a fresh
 * burst.  One thread uses a limiter.
 */
#ifndef CMK_AUDITLIMIT_H
#define CMK_AUDITLIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define CMK_AUDITLIMIT_BURST	10
#define CMK_AUDITLIMIT_SOURCES	16
/* The agent's refill and summary period: one line a minute per source. */
#define CMK_AUDITLIMIT_PERIOD_MS	60000

/*
 * @dropped lines of @source were not written one by one in the last
 * @span_s seconds (@logged were); called only when @dropped is not 0.
 */
typedef void (*cmk_auditlimit_summary_fn)(void *ctx, uint64_t source,
					  unsigned long logged,
					  unsigned long dropped,
					  unsigned int span_s);

struct cmk_auditlimit {
	uint32_t period_ms;
	cmk_auditlimit_summary_fn summary;
	void *ctx;
	struct {
		bool used;
		uint64_t source;
		unsigned int tokens;	/* lines it may write now */
		uint64_t refill_ms;	/* when the next token comes back */
		uint64_t last_ms;	/* its last line, written or not */
		uint64_t since_ms;	/* its last summary (or first line) */
		unsigned long logged, dropped;
	} s[CMK_AUDITLIMIT_SOURCES];
};

void cmk_auditlimit_init(struct cmk_auditlimit *a, uint32_t period_ms,
			 cmk_auditlimit_summary_fn summary, void *ctx);

/* cmk_auditlimit_admit() - may a line of @source be written at @now_ms? */
bool cmk_auditlimit_admit(struct cmk_auditlimit *a, uint64_t source,
			  uint64_t now_ms);

/*
 * cmk_auditlimit_tick() - write the summaries due by @now_ms; returns the
 * ms to the next one due (UINT64_MAX: none owed).
 */
uint64_t cmk_auditlimit_tick(struct cmk_auditlimit *a, uint64_t now_ms);

/* cmk_auditlimit_flush() - write every summary owed now (at exit). */
void cmk_auditlimit_flush(struct cmk_auditlimit *a);

#endif /* CMK_AUDITLIMIT_H */
