/* SPDX-License-Identifier: GPL-2.0 */
/*
 * auditlimit.h - audit lines a flood can cause, limited per source.
 *
 * Lines of one source (a peer uid of the key socket, a hint source) are
 * written one by one only CMK_AUDITLIMIT_BURST times per window of
 * @window_ms; the rest are counted and written as one summary line
 * (@summary) when the window ends, so a flood (of connects, of queue
 * messages, of SIGHUPs) cannot fill the audit log's disk and still shows
 * in it.  CMK_AUDITLIMIT_SOURCES sources are tracked at once (a new one
 * past that ends the oldest window early).  One thread uses a limiter.
 */
#ifndef CMK_AUDITLIMIT_H
#define CMK_AUDITLIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define CMK_AUDITLIMIT_BURST	10
#define CMK_AUDITLIMIT_SOURCES	16

/*
 * A window of @source ended with @dropped lines not written one by one
 * (@logged were); called only when @dropped is not 0.
 */
typedef void (*cmk_auditlimit_summary_fn)(void *ctx, uint64_t source,
					  unsigned long logged,
					  unsigned long dropped,
					  unsigned int window_s);

struct cmk_auditlimit {
	uint32_t window_ms;
	cmk_auditlimit_summary_fn summary;
	void *ctx;
	struct {
		bool used;
		uint64_t source;
		uint64_t since_ms;
		unsigned long logged, dropped;
	} s[CMK_AUDITLIMIT_SOURCES];
};

void cmk_auditlimit_init(struct cmk_auditlimit *a, uint32_t window_ms,
			 cmk_auditlimit_summary_fn summary, void *ctx);

/* cmk_auditlimit_admit() - may a line of @source be written at @now_ms? */
bool cmk_auditlimit_admit(struct cmk_auditlimit *a, uint64_t source,
			  uint64_t now_ms);

/*
 * cmk_auditlimit_tick() - write the summaries of the windows that ended
 * by @now_ms; returns the ms to the next end (UINT64_MAX: none open).
 */
uint64_t cmk_auditlimit_tick(struct cmk_auditlimit *a, uint64_t now_ms);

/* cmk_auditlimit_flush() - end every window now (at exit). */
void cmk_auditlimit_flush(struct cmk_auditlimit *a);

#endif /* CMK_AUDITLIMIT_H */
