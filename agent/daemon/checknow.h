/* SPDX-License-Identifier: GPL-2.0 */
/*
 * checknow.h - the tokens of cmkctl check-now callers, and which of them
 * the agent has answered (its state file, "hints").
 *
 * cmkctl check-now sends SIGHUP with a random token (sigqueue) and waits
 * until the state file lists that token as answered.  Every caller of one
 * check gets its answer: hints coalesce until their check starts, and each
 * token remembers the hint number it was received as (struct cmk_loop's
 * hints); the tokens whose number the loop has answered are listed.
 * Tokens not yet answered are never evicted while an answered one can be
 * (the oldest answered goes first), so up to CMK_CHECKNOW_TOKENS callers
 * at once all get their answer.
 *
 * A SIGHUP sent while one is still pending is merged by the kernel into
 * it (a standard signal queues once): its token never reaches the agent.
 * The agent lists the tokens it holds but has not answered ("pending"),
 * and cmkctl sends again a token it does not see there within a second
 * (the hint it joins is coalesced with the others: no extra KMS call
 * while the check has not started).
 */
#ifndef CMK_CHECKNOW_H
#define CMK_CHECKNOW_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#define CMK_CHECKNOW_TOKENS	128

struct cmk_checknow {
	struct {
		int token;		/* 0: free */
		unsigned long seq;	/* the hint's number (loop.hints) */
		uint64_t order;		/* when received, for eviction */
	} t[CMK_CHECKNOW_TOKENS];
	uint64_t received;
};

/*
 * cmk_checknow_add() - caller @token asked for a check, received as hint
 * number @seq; @answered: the hints answered so far (to pick a slot).  A
 * token already held keeps its first number (a resent signal).
 */
void cmk_checknow_add(struct cmk_checknow *c, int token, unsigned long seq,
		      unsigned long answered);

/*
 * cmk_checknow_json() - "answered_tokens" (hint number <= @answered) and
 * "pending_tokens" (the others) into @hints.
 */
void cmk_checknow_json(const struct cmk_checknow *c, unsigned long answered,
		       json_object *hints);

#endif /* CMK_CHECKNOW_H */
