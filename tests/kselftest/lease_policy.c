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

#include <sys/wait.h>

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

static int key_set_name(FIXTURE_DATA(lease_policy) *self, const char *name,
			uint32_t lease_ms)
{
	return cmk_key_set(&self->nl, name, self->key, lease_ms, 1, self->ext,
			   sizeof(self->ext));
}

static int key_set(FIXTURE_DATA(lease_policy) *self, uint32_t lease_ms)
{
	return key_set_name(self, KEY_NAME, lease_ms);
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

/*
 * Across tables of one device (a reload), an overlapping IV range is the
 * same blocks only if the layout is the same; otherwise one tweak would
 * cover two blocks.  An IV range that wraps around 2^64 overlaps what
 * starts at 0.
 */
TEST_F(lease_policy, policy_reload_may_not_move_tweaks)
{
	static const struct {
		const char *opts;	/* iv_offset dev offset [opts] */
		bool ok;
	} cases[] = {
		{ "0 /dev/ram0 0", true },		/* same layout */
		{ "0 /dev/ram1 0", false },		/* other device */
		{ "0 /dev/ram0 8", false },		/* other offset */
		{ "8 /dev/ram0 8", true },		/* shifted together */
		{ "0 /dev/ram0 0 1 sector_size:4096", false },
		{ "16384 /dev/ram1 0", true },		/* other tweaks */
	};
	char line[512], out[1024];
	unsigned int i;
	int st;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(line, sizeof(line), "0 16384 cmk aes-xts-plain64 %s %s",
			 KEY_NAME, cases[i].opts);
		st = cmk_dm_reload(DM_NAME, line, out, sizeof(out));
		if (cases[i].ok) {
			EXPECT_EQ(0, st)
				TH_LOG("'%s' refused: %s", cases[i].opts, out);
		} else {
			EXPECT_NE(0, st) TH_LOG("'%s' accepted", cases[i].opts);
		}
		cmk_run(out, sizeof(out), "dmsetup", "clear", DM_NAME, NULL);
	}
	/*
	 * plain64 wraps at 2^64, as in dm-crypt (interop_dmcrypt tests it):
	 * a range that wraps is fine alone, but its tweaks past the wrap
	 * are tweaks 0, 1, ...
	 */
	snprintf(line, sizeof(line),
		 "0 16 cmk aes-xts-plain64 wrap-key 18446744073709551608 %s 0",
		 CMK_RAM(2));
	EXPECT_EQ(0, cmk_dm_create(CMK_DM_PREFIX "wrap", line, out, sizeof(out)))
		TH_LOG("a wrapping IV range alone was refused: %s", out);
	cmk_dm_remove(CMK_DM_PREFIX "wrap");
	snprintf(line, sizeof(line),
		 "0 16 cmk aes-xts-plain64 wrap-key 18446744073709551608 %s 0\n"
		 "16 8 cmk aes-xts-plain64 wrap-key 4 %s 16",
		 CMK_RAM(2), CMK_RAM(2));
	EXPECT_NE(0, cmk_dm_create(CMK_DM_PREFIX "wrap", line, out, sizeof(out)))
		TH_LOG("tweaks past the wrap were not seen to overlap");
	cmk_dm_remove(CMK_DM_PREFIX "wrap");
}

/*
 * Two devices created at once under one key_name: one wins, the other is
 * refused, and the winner takes its key (a race here once left the winner
 * on a slot nobody could find, and corrupted the list on removal).
 */
TEST_F_TIMEOUT(lease_policy, policy_concurrent_create_same_key_name, 300)
{
	char line[2][512], out[1024], name[2][64];
	int round, k, won, st[2];
	pid_t pid[2];

	for (k = 0; k < 2; k++) {
		snprintf(name[k], sizeof(name[k]), CMK_DM_PREFIX "race%d", k);
		snprintf(line[k], sizeof(line[k]),
			 "0 8192 cmk aes-xts-plain64 race-key 0 /dev/ram%d 0",
			 k + 1);
	}
	for (round = 0; round < 20; round++) {
		for (k = 0; k < 2; k++) {
			pid[k] = fork();
			ASSERT_LE(0, pid[k]);
			if (pid[k] == 0)
				_exit(cmk_dm_create(name[k], line[k], NULL, 0) ? 1 : 0);
		}
		won = 0;
		for (k = 0; k < 2; k++) {
			ASSERT_EQ(pid[k], waitpid(pid[k], &st[k], 0));
			won += WIFEXITED(st[k]) && WEXITSTATUS(st[k]) == 0;
		}
		EXPECT_EQ(1, won) TH_LOG("round %d: %d devices created", round, won);
		EXPECT_EQ(0, key_set_name(self, "race-key", 60000))
			TH_LOG("round %d: KEY_SET of the winner: %s", round, self->ext);
		for (k = 0; k < 2; k++)
			cmk_dm_remove(name[k]);
		EXPECT_FALSE(cmk_dm_exists(name[0]) || cmk_dm_exists(name[1]));
	}
	(void)out;
}

TEST_HARNESS_MAIN
