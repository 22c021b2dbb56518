// SPDX-License-Identifier: GPL-2.0
/*
 * lease_policy - the lease policy of a live device cannot be relaxed by a
 * table that is merely loaded, and the wipe reasons that only the kernel
 * may give cannot be claimed by userspace.
 *
 * Oracle: the contract in Documentation/dm-cmk.rst.  Targets sharing a key
 * take the strictest policy of them all: a loaded (not resumed) table with
 * allow_no_lease and a huge lease_ms must not make lease 0 acceptable, not
 * even after "dmsetup clear" drops it; a loaded table with a smaller
 * lease_ms applies at once.  KEY_WIPE with SUSPEND, VMFORK, DESTROY or
 * LEASE_EXPIRED is refused with EINVAL and changes nothing.
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

TEST_HARNESS_MAIN
