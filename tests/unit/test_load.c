// SPDX-License-Identifier: GPL-2.0
/*
 * test_load.c - the KMS load of a configuration (cmk-agent --print-load).
 *
 * Oracle: the issue's own arithmetic for today's defaults (30 s checks,
 * 10 % jitter: a check every 31.5 s): one CMK carries about 3,150 VMs on
 * Azure Key Vault RSA-3072 (100/s), 31,500 on GCP (1,000/s) and 315,000
 * on AWS (10,000/s); and the schedule of agentloop.h (failing: a mean gap
 * of one interval; throttled: four).
 */
#include "testutil.h"

#include <string.h>

#include "daemon/load.h"

static struct cmk_config cfg(uint32_t interval_ms, uint32_t jitter)
{
	struct cmk_config c;

	memset(&c, 0, sizeof(c));
	c.check_interval_ms = interval_ms;
	c.jitter_pct = jitter;
	return c;
}

static const struct cmk_quota *quota(const char *prefix)
{
	for (size_t i = 0; i < cmk_n_quotas; i++)
		if (!strncmp(cmk_quotas[i].what, prefix, strlen(prefix)))
			return &cmk_quotas[i];
	fail_msg("no quota %s", prefix);
	return NULL;
}

static void fleet_load_defaults_match_the_issue(void **state)
{
	struct cmk_config c = cfg(30000, 10);
	struct cmk_load l;

	(void)state;
	cmk_load_of(&c, &l);
	assert_true(l.mean_gap_ms > 31499 && l.mean_gap_ms < 31501);
	assert_true(l.steady > 114.2 && l.steady < 114.3);
	assert_true(l.failing > 119.9 && l.failing < 120.1);
	assert_true(l.throttled > 29.9 && l.throttled < 30.1);
	assert_in_range((long)cmk_load_fleet(quota("Azure Key Vault, RSA-3072"), l.steady), 3149, 3151);
	assert_in_range((long)cmk_load_fleet(quota("GCP Cloud KMS, software"), l.steady), 31499, 31501);
	assert_in_range((long)cmk_load_fleet(quota("AWS KMS, symmetric"), l.steady), 314999, 315001);
}

/* 5 min checks (with the hint): 100,000 VMs fit every listed quota but Azure's. */
static void fleet_load_five_minute_checks(void **state)
{
	struct cmk_config c = cfg(300000, 10);
	struct cmk_load l;

	(void)state;
	cmk_load_of(&c, &l);
	assert_true(l.steady > 11.4 && l.steady < 11.5);
	assert_true(cmk_load_fleet(quota("AWS KMS, CloudHSM"), l.steady) > 100000);
	assert_true(cmk_load_fleet(quota("GCP Cloud KMS, Cloud HSM"), l.steady) > 100000);
	assert_true(cmk_load_fleet(quota("Azure Key Vault, RSA-3072"), l.steady) < 100000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fleet_load_defaults_match_the_issue),
		cmocka_unit_test(fleet_load_five_minute_checks),
	};

	return cmocka_run_group_tests_name("load", tests, NULL, NULL);
}
