/* SPDX-License-Identifier: GPL-2.0 */
/*
 * load.h - what one agent's configuration costs the KMS, and how large a
 * fleet one CMK's quota carries (cmk-agent --print-load; fleet.rst).
 *
 * One check is one KMS request (a Decrypt of the wrapped KEK, http.h's one
 * attempt per check), so the rate follows from the schedule of
 * agentloop.h, computed with its own windows (cmk_loop_throttle_window_ms(),
 * cmk_loop_failure_window_max_ms()) rather than a copy of its formulas:
 * the mean gap between checks is the interval plus half the jitter; while
 * checks fail, half the largest failure window (one interval); while the
 * KMS throttles, half the throttle window; revoked, three quarters of
 * CMK_REVOKED_MAX_INTERVALS intervals.  Hints add one check each, at most
 * one per CMK_HINT_MIN_GAP_MS, and while the checks back off (revoked
 * too) at most one per backoff window (plus CMK_HINT_RETRIES quick
 * retries of a hint whose check failed: throttled, 5xx, timeout).  A boot (or agent start) adds one unseal.
 */
#ifndef CMK_LOAD_H
#define CMK_LOAD_H

#include <stdint.h>
#include <stdio.h>

#include "format/config.h"

/**
 * struct cmk_load - KMS requests per VM per hour
 * @mean_gap_ms: the mean time between two checks in steady state
 * @steady: requests per hour while the KMS says yes
 * @failing: while checks fail (not throttled), after the quick retries
 * @throttled: while the KMS throttles every check
 * @revoked: while every answer is no, once the backoff reached its cap
 * @throttle_window_ms: the backoff window after a throttled answer
 * @hint_flood_healthy: the most a flood of hints costs, KMS healthy
 * @hint_flood_throttled: ... while the KMS throttles (its schedule + one
 *	hint check per throttle window)
 * @hint_flood_failing: ... while checks fail (not throttled)
 * @hint_flood_revoked: ... while every answer is no (its schedule + one
 *	hint check per revoked window, at its cap)
 * @hint_retries: quick retries of a hint whose check failed (throttled,
 *	5xx, timeout), until the KMS says yes or no
 */
struct cmk_load {
	double mean_gap_ms;
	double steady;
	double failing;
	double throttled;
	double revoked;
	uint64_t throttle_window_ms;
	double hint_flood_healthy;
	double hint_flood_throttled;
	double hint_flood_failing;
	double hint_flood_revoked;
	unsigned int hint_retries;
};

/* A provider's request quota shared by a fleet on one CMK (per second). */
struct cmk_quota {
	const char *what;
	double per_s;
};

extern const struct cmk_quota cmk_quotas[];
extern const size_t cmk_n_quotas;

void cmk_load_of(const struct cmk_config *cfg, struct cmk_load *out);

/* cmk_load_fleet() - VMs one CMK's @q carries at @per_vm_h requests/h each. */
double cmk_load_fleet(const struct cmk_quota *q, double per_vm_h);

/* cmk_load_print() - the table cmk-agent --print-load writes to @f. */
void cmk_load_print(FILE *f, const struct cmk_config *cfg);

#endif /* CMK_LOAD_H */
