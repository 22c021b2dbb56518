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

void cmk_load_of(const struct cmk_config *cfg, struct cmk_load *out)
{
	double gap = cfg->check_interval_ms * (1.0 + cfg->jitter_pct / 200.0);

	out->mean_gap_ms = gap;
	out->steady = 3600000.0 / gap;
	/* Full jitter over [0, 2 x interval]: a mean of one interval. */
	out->failing = 3600000.0 / cfg->check_interval_ms;
	/* Full jitter over [0, 8 x interval] once capped: 4 intervals. */
	out->throttled = 3600000.0 /
			 (cfg->check_interval_ms * (CMK_THROTTLE_MAX_INTERVALS / 2.0));
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
	fprintf(f, "KMS requests per VM per hour: %.1f steady; %.1f while checks fail; %.1f while the KMS throttles; +1 per agent start\n",
		l.steady, l.failing, l.throttled);
	fprintf(f, "a revocation while the KMS throttles every check wipes the keys within %.0f s (policy wipe or poweroff)\n",
		cmk_loop_wipe_bound_ms(cfg) / 1000.0);
	fprintf(f, "largest fleet on one CMK within its quota (steady):\n");
	for (size_t i = 0; i < cmk_n_quotas; i++)
		fprintf(f, "  %-56s %10.0f VMs\n", cmk_quotas[i].what,
			cmk_load_fleet(&cmk_quotas[i], l.steady));
}
