// SPDX-License-Identifier: GPL-2.0
/*
 * load.c - the KMS load of a configuration (see load.h).
 */
#include "daemon/load.h"

#include "daemon/agentloop.h"

/*
 * The quotas the published limits give (Documentation/fleet.rst says
 * where each comes from); a customer's account may have more.
 */
const struct cmk_quota cmk_quotas[] = {
	{ "AWS KMS, symmetric, most regions (10,000/s)", 10000 },
	{ "AWS KMS, CloudHSM or external key store (1,800/s)", 1800 },
	{ "Azure Key Vault, RSA-3072 (1,000 per 10 s per vault)", 100 },
	{ "Azure Key Vault, RSA-2048 (4,000 per 10 s per vault)", 400 },
	{ "GCP Cloud KMS, software keys (1,000/s per project)", 1000 },
	{ "GCP Cloud KMS, Cloud HSM (500/s per project)", 500 },
};
const size_t cmk_n_quotas = sizeof(cmk_quotas) / sizeof(cmk_quotas[0]);

/* Requests per hour at a mean gap of @gap_ms. */
static double per_hour(double gap_ms)
{
	return gap_ms > 0 ? 3600000.0 / gap_ms : 0;
}

void cmk_load_of(const struct cmk_config *cfg, struct cmk_load *out)
{
	double gap = cfg->check_interval_ms * (1.0 + cfg->jitter_pct / 200.0);
	uint64_t fail_w = cmk_loop_failure_window_max_ms(cfg);

	out->mean_gap_ms = gap;
	out->steady = per_hour(gap);
	/* Full jitter over the failure window: a mean of half of it. */
	out->failing = per_hour(fail_w / 2.0);
	/* The middle half of the throttle window: a mean of half of it. */
	out->throttle_window_ms = cmk_loop_throttle_window_ms(cfg);
	out->throttled = per_hour(out->throttle_window_ms / 2.0);
	/* The upper half of windows up to CMK_REVOKED_MAX_INTERVALS. */
	out->revoked = per_hour(cfg->check_interval_ms * CMK_REVOKED_MAX_INTERVALS * 0.75);
	/* Hints: paced CMK_HINT_MIN_GAP_MS apart; backing off, once a window. */
	out->hint_flood_healthy = per_hour(CMK_HINT_MIN_GAP_MS);
	out->hint_flood_throttled = out->throttled + per_hour(out->throttle_window_ms);
	out->hint_flood_failing = out->failing + per_hour(fail_w);
	/* Revoked: the budget refills once a revoked window (at its cap). */
	out->hint_flood_revoked = out->revoked +
		per_hour((double)cfg->check_interval_ms * CMK_REVOKED_MAX_INTERVALS);
	out->hint_retries = CMK_HINT_RETRIES;
}

double cmk_load_fleet(const struct cmk_quota *q, double per_vm_h)
{
	return per_vm_h > 0 ? q->per_s * 3600.0 / per_vm_h : 0;
}

void cmk_load_print(FILE *f, const struct cmk_config *cfg)
{
	struct cmk_load l;

	cmk_load_of(cfg, &l);
	fprintf(f, "check every %u ms + up to %u %% jitter: a check (one KMS request) every %.1f s on average\n",
		cfg->check_interval_ms, cfg->jitter_pct, l.mean_gap_ms / 1000);
	fprintf(f, "KMS requests per VM per hour: %.1f steady; %.1f while checks fail; %.1f while the KMS throttles (window %.0f s); %.1f while revoked; +1 per agent start\n",
		l.steady, l.failing, l.throttled, l.throttle_window_ms / 1000.0, l.revoked);
	fprintf(f, "each hint: +1 request (hints coalesce until their check starts; +up to %u quick retries while its check fails: throttled, 5xx, timeout)\n",
		l.hint_retries);
	fprintf(f, "a flood of hints at most: %.1f per hour healthy (one per %.0f s); %.1f while the KMS throttles; %.1f while checks fail; %.1f while revoked (the schedule + one per backoff window)\n",
		l.hint_flood_healthy, CMK_HINT_MIN_GAP_MS / 1000.0, l.hint_flood_throttled,
		l.hint_flood_failing, l.hint_flood_revoked);
	fprintf(f, "a revocation while the KMS throttles every check wipes the keys within %.0f s (policy wipe or poweroff)\n",
		cmk_loop_wipe_bound_ms(cfg) / 1000.0);
	fprintf(f, "largest fleet on one CMK within its quota (steady):\n");
	for (size_t i = 0; i < cmk_n_quotas; i++)
		fprintf(f, "  %-56s %10.0f VMs\n", cmk_quotas[i].what,
			cmk_load_fleet(&cmk_quotas[i], l.steady));
}
