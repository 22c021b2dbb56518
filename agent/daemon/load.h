/* SPDX-License-Identifier: GPL-2.0 */
/*
 * load.h - what one agent's configuration costs the KMS, and how large a
 * fleet one CMK's quota carries (cmk-agent --print-load; fleet.rst).
 *
 * One check is one KMS request (a Decrypt of the wrapped KEK, http.h's one
 * attempt per check), so the rate follows from the schedule of
 * agentloop.h: the mean gap between checks is the interval plus half the
 * jitter.  While checks fail the mean gap is the interval again after the
 * first quick retries; while the KMS throttles it grows to half of
 * CMK_THROTTLE_MAX_INTERVALS intervals.  A boot (or agent start) adds one
 * unseal.
 */
#ifndef CMK_LOAD_H
#define CMK_LOAD_H

#include <stdio.h>

#include "format/config.h"

/**
 * struct cmk_load - KMS requests per VM per hour
 * @mean_gap_ms: the mean time between two checks in steady state
 * @steady: requests per hour while the KMS says yes
 * @failing: while checks fail (not throttled), after the quick retries
 * @throttled: while the KMS throttles, once the backoff reached its cap
 */
struct cmk_load {
	double mean_gap_ms;
	double steady;
	double failing;
	double throttled;
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
