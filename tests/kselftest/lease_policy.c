// SPDX-License-Identifier: GPL-2.0
/*
 * lease_policy - the lease policy of a live device cannot be relaxed by a
 * table that is merely loaded, a stricter one applies to the live key at
 * once, one table cannot reuse a tweak under one key, and the wipe reasons
 * that only the kernel may give cannot be claimed by userspace.
 *
 * Oracle: the contract in Documentation/dm-cmk.rst.  Targets sharing a key
 * take the strictest policy of them all: a loaded (not resumed) table with
 * allow_no_lease and a huge lease_ms must not make lease 0 acceptable, not
 * even after "dmsetup clear" drops it; a loaded table with a smaller
 * lease_ms applies at once, to new keys and to the live key's deadline; a
 * loaded table without allow_no_lease wipes a key that has no lease
 * (reason POLICY).  Two targets of one table under one key_name with
 * overlapping IV ranges are refused (XTS key and tweak reuse).  dmsetup
 * rename shows in GET and events.  KEY_WIPE with SUSPEND, VMFORK, DESTROY,
 * LEASE_EXPIRED or POLICY is refused with EINVAL and changes nothing.
 */
#include "cmk_test.h"

#define DM_NAME		CMK_DM_PREFIX "lp"
#define KEY_NAME	"policy-key"
#define DEV_SECTORS	16384ULL

FIXTURE(lease_policy) {
	struct cmk_nl nl;
	struct cmk_table t;
	uint8_t key[DM_CMK_KEY_LEN];
	char ext[256];
};

FIXTURE_SETUP(lease_policy)
{
	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	cmk_key_make(self->key, 71);
	self->t = (struct cmk_table){
		.len = DEV_SECTORS, .key_name = KEY_NAME, .dev = CMK_RAM(0),
		.opts = "lease_ms:60000",
	};
	ASSERT_CMK_CREATE(DM_NAME, &self->t);
}

FIXTURE_TEARDOWN(lease_policy)
{
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
}

static int key_set(FIXTURE_DATA(lease_policy) *self, uint32_t lease_ms)
{
	return cmk_key_set(&self->nl, KEY_NAME, self->key, lease_ms, 1,
			   self->ext, sizeof(self->ext));
}

TEST_F(lease_policy, loaded_laxer_table_does_not_relax_live_policy)
{
	struct cmk_table lax = self->t;
	char line[512], out[1024];

	lax.opts = "allow_no_lease lease_ms:86400000";
	cmk_table_cmk(line, sizeof(line), &lax);
	ASSERT_EQ(0, cmk_dm_reload(DM_NAME, line, out, sizeof(out)))
		TH_LOG("reload: %s", out);
	EXPECT_EQ(-ERANGE, key_set(self, 0)) TH_LOG("extack: %s", self->ext);
	EXPECT_EQ(-ERANGE, key_set(self, 3600000));
	ASSERT_EQ(0, cmk_run(out, sizeof(out), "dmsetup", "clear", DM_NAME,
			     NULL));
	EXPECT_EQ(-ERANGE, key_set(self, 0));
	EXPECT_EQ(0, key_set(self, 60000));
}

TEST_F(lease_policy, loaded_stricter_table_applies_at_once)
{
	struct cmk_table strict = self->t;
	char line[512], out[1024];

	strict.opts = "lease_ms:5000";
	cmk_table_cmk(line, sizeof(line), &strict);
	ASSERT_EQ(0, cmk_dm_reload(DM_NAME, line, out, sizeof(out)))
		TH_LOG("reload: %s", out);
	EXPECT_EQ(-ERANGE, key_set(self, 60000));
	EXPECT_EQ(0, key_set(self, 5000));
	ASSERT_EQ(0, cmk_dm_resume(DM_NAME));
	EXPECT_EQ(-ERANGE, key_set(self, 60000));
}

TEST_F(lease_policy, kernel_only_wipe_reasons_refused)
{
	static const uint32_t reserved[] = {
		DM_CMK_REASON_LEASE_EXPIRED, DM_CMK_REASON_SUSPEND,
		DM_CMK_REASON_VMFORK, DM_CMK_REASON_DESTROY,
		DM_CMK_REASON_POLICY,
	};
	unsigned int i;

	ASSERT_EQ(0, key_set(self, 60000));
	for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		EXPECT_EQ(-EINVAL, cmk_key_wipe(&self->nl, KEY_NAME,
						reserved[i], self->ext,
						sizeof(self->ext)))
			TH_LOG("reason %u accepted", reserved[i]);
		ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_ACTIVE);
	}
	EXPECT_EQ(0, cmk_key_wipe(&self->nl, KEY_NAME, DM_CMK_REASON_REVOKED,
				  self->ext, sizeof(self->ext)));
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_WIPED);
}

/* Loading a table with a smaller lease_ms cuts the live key's lease. */
TEST_F_TIMEOUT(lease_policy, policy_stricter_table_cuts_live_lease, 120)
{
	struct cmk_table strict = self->t;
	char line[512], out[1024];
	struct cmk_info in;
	uint64_t end;

	ASSERT_EQ(0, key_set(self, 60000));
	strict.opts = "lease_ms:3000";
	cmk_table_cmk(line, sizeof(line), &strict);
	ASSERT_EQ(0, cmk_dm_reload(DM_NAME, line, out, sizeof(out)))
		TH_LOG("reload: %s", out);
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	ASSERT_TRUE(in.has_lease_left) TH_LOG("state %u", in.state);
	EXPECT_GE(3000U, in.lease_left_ms)
		TH_LOG("the live lease is still %u ms", in.lease_left_ms);
	end = cmk_now_ms() + 60000;
	do {
		cmk_sleep_ms(200);
		ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	} while (in.state != DM_CMK_STATE_WIPED && cmk_now_ms() < end);
	EXPECT_EQ((uint32_t)DM_CMK_STATE_WIPED, in.state)
		TH_LOG("the cut lease did not run out");
	EXPECT_EQ((uint32_t)DM_CMK_REASON_LEASE_EXPIRED, in.reason);
}

/* A key without a lease does not survive a table that requires one. */
TEST_F(lease_policy, policy_table_requiring_lease_wipes_unleased_key)
{
	struct cmk_table t = self->t;
	char line[512], out[1024];
	struct cmk_nl ev;
	struct cmk_info in;

	ASSERT_DM_REMOVE(DM_NAME);
	t.opts = "allow_no_lease";
	ASSERT_CMK_CREATE(DM_NAME, &t);
	ASSERT_EQ(0, key_set(self, 0)) TH_LOG("extack: %s", self->ext);
	ASSERT_NL_OPEN(&ev);
	ASSERT_EQ(0, cmk_nl_subscribe(&ev));
	t.opts = NULL;
	cmk_table_cmk(line, sizeof(line), &t);
	ASSERT_EQ(0, cmk_dm_reload(DM_NAME, line, out, sizeof(out)))
		TH_LOG("reload: %s", out);
	ASSERT_EQ(0, cmk_nl_wait_event(&ev, KEY_NAME, DM_CMK_EVENT_KEY_WIPED,
				       10000, &in));
	EXPECT_EQ((uint32_t)DM_CMK_REASON_POLICY, in.reason);
	cmk_nl_close(&ev);
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_WIPED);
	/* with a lease the same key comes back */
	EXPECT_EQ(0, key_set(self, 60000));
}

/* One key, one tweak: targets of one table may not share IV ranges. */
TEST_F(lease_policy, policy_overlapping_iv_ranges_refused)
{
	static const struct {
		const char *table;
		bool ok;
	} cases[] = {
		{ "0 4096 cmk aes-xts-plain64 ov-key 0 /dev/ram1 0\n"
		  "4096 4096 cmk aes-xts-plain64 ov-key 0 /dev/ram1 4096", false },
		{ "0 4096 cmk aes-xts-plain64 ov-key 0 /dev/ram1 0\n"
		  "4096 4096 cmk aes-xts-plain64 ov-key 2048 /dev/ram1 4096", false },
		{ "0 4096 cmk aes-xts-plain64 ov-key 0 /dev/ram1 0\n"
		  "4096 4096 cmk aes-xts-plain64 ov-key 4096 /dev/ram1 4096", true },
		{ "0 4096 cmk aes-xts-plain64 ov-key 0 /dev/ram1 0 2 sector_size:4096 iv_large_sectors\n"
		  "4096 4096 cmk aes-xts-plain64 ov-key 4096 /dev/ram1 4096 2 sector_size:4096 iv_large_sectors",
		  true },
		{ "0 4096 cmk aes-xts-plain64 ov-key 0 /dev/ram1 0\n"
		  "4096 4096 cmk aes-xts-plain64 ov-key2 0 /dev/ram1 4096", true },
	};
	char table[512], out[1024], mark[96], why[256];
	unsigned int i;
	int st;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* dmsetup takes one line per target */
		snprintf(table, sizeof(table), "%s", cases[i].table);
		cmk_klog_mark(mark, sizeof(mark));
		st = cmk_dm_create(CMK_DM_PREFIX "ov", table, out, sizeof(out));
		if (cases[i].ok) {
			EXPECT_EQ(0, st) TH_LOG("case %u refused: %s", i, out);
		} else {
			EXPECT_NE(0, st) TH_LOG("case %u accepted", i);
			why[0] = '\0';
			cmk_klog_cmk_error(mark, why, sizeof(why));
			EXPECT_TRUE(cmk_contains_any(why, "overlap"))
				TH_LOG("case %u: ti->error '%s'", i, why);
		}
		ASSERT_EQ(0, cmk_dm_remove(CMK_DM_PREFIX "ov"));
	}
}

/* dmsetup rename: GET and events name the device by its new name. */
TEST_F(lease_policy, policy_rename_shows_in_get_and_events)
{
	char out[1024];
	struct cmk_nl ev;
	struct cmk_info in;

	ASSERT_EQ(0, key_set(self, 60000));
	ASSERT_EQ(0, cmk_run(out, sizeof(out), "dmsetup", "rename",
			     "--noudevsync", DM_NAME, DM_NAME "-renamed", NULL))
		TH_LOG("rename: %s", out);
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_STREQ(DM_NAME "-renamed", in.device);
	ASSERT_NL_OPEN(&ev);
	ASSERT_EQ(0, cmk_nl_subscribe(&ev));
	ASSERT_KEY_WIPE(&self->nl, KEY_NAME);
	ASSERT_EQ(0, cmk_nl_wait_event(&ev, KEY_NAME, DM_CMK_EVENT_KEY_WIPED,
				       10000, &in));
	EXPECT_STREQ(DM_NAME "-renamed", in.device);
	cmk_nl_close(&ev);
	ASSERT_EQ(0, cmk_run(out, sizeof(out), "dmsetup", "rename",
			     "--noudevsync", DM_NAME "-renamed", DM_NAME, NULL));
}

TEST_HARNESS_MAIN
