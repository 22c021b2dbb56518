// SPDX-License-Identifier: GPL-2.0
/*
 * multi_device - operations on several devices: GET dump, KEY_WIPE ALL,
 * LEASE_RENEW ALL, and per-device operations that leave the others alone.
 *
 * Oracle: the contract and the UAPI header.  The dump lists every device
 * exactly once with its mapped device name; KEY_WIPE with DM_CMK_F_ALL
 * wipes every key (I/O fails on all); LEASE_RENEW with DM_CMK_F_ALL moves
 * every live lease forward and does not give a sealed device a key.
 */
#include "cmk_test.h"

#define NDEV	4		/* the last one stays sealed where noted */

static const char *const dm_names[NDEV] = {
	CMK_DM_PREFIX "m0", CMK_DM_PREFIX "m1", CMK_DM_PREFIX "m2",
	CMK_DM_PREFIX "m3",
};
static const char *const key_names[NDEV] = {
	"multi-0", "multi-1", "multi-2", "multi-3",
};
static const char *const rams[NDEV] = {
	CMK_RAM(0), CMK_RAM(1), CMK_RAM(2), CMK_RAM(3),
};

FIXTURE(multi_device) {
	struct cmk_nl nl;
	uint8_t key[NDEV][DM_CMK_KEY_LEN];
	char path[NDEV][128];
};

FIXTURE_SETUP(multi_device)
{
	int i;

	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	for (i = 0; i < NDEV; i++) {
		struct cmk_table t = {
			.len = 8192, .key_name = key_names[i], .dev = rams[i],
			.opts = "hold_ms:0",	/* refuse I/O at once */
		};

		ASSERT_CMK_CREATE(dm_names[i], &t);
		cmk_dm_path(self->path[i], sizeof(self->path[i]), dm_names[i]);
		cmk_key_make(self->key[i], 60 + i);
	}
}

FIXTURE_TEARDOWN(multi_device)
{
	int i;

	cmk_nl_close(&self->nl);
	for (i = 0; i < NDEV; i++)
		cmk_dm_remove(dm_names[i]);
}

struct seen {
	int count[NDEV];
	int bad_device;
	int others;
};

static int dump_cb(const struct cmk_info *in, void *arg)
{
	struct seen *s = arg;
	int i;

	for (i = 0; i < NDEV; i++) {
		if (strcmp(in->name, key_names[i]))
			continue;
		s->count[i]++;
		if (strcmp(in->device, dm_names[i]) || !in->has_state)
			s->bad_device++;
		return 0;
	}
	s->others++;
	return 0;
}

TEST_F(multi_device, dump_lists_every_device_once)
{
	struct seen s;
	char ext[256];
	int i;

	memset(&s, 0, sizeof(s));
	/* mixed states: two active, two sealed */
	ASSERT_KEY_SET(&self->nl, key_names[0], self->key[0], CMK_LEASE_LONG, 1);
	ASSERT_KEY_SET(&self->nl, key_names[2], self->key[2], CMK_LEASE_LONG, 1);
	ASSERT_EQ(0, cmk_dump(&self->nl, dump_cb, &s, ext, sizeof(ext)))
		TH_LOG("dump: %s", ext);
	for (i = 0; i < NDEV; i++) {
		const char *name = key_names[i];
		int n = s.count[i];

		EXPECT_EQ(1, n) TH_LOG("%s listed %d times", name, n);
	}
	EXPECT_EQ(0, s.bad_device);
	EXPECT_EQ(0, s.others) TH_LOG("dump lists devices that do not exist");
}

struct leak_ctx {
	uint8_t (*keys)[DM_CMK_KEY_LEN];
	int entries, leaks;
};

static int leak_cb(const struct cmk_info *in, void *arg)
{
	struct leak_ctx *c = arg;
	int i;

	c->entries++;
	for (i = 0; i < NDEV; i++)
		c->leaks += cmk_contains_key(in->raw, in->raw_len, c->keys[i]);
	return 0;
}

TEST_F(multi_device, dump_never_contains_keys)
{
	struct leak_ctx c = { .keys = self->key };
	int i;

	for (i = 0; i < NDEV; i++)
		ASSERT_KEY_SET(&self->nl, key_names[i], self->key[i],
			       CMK_LEASE_LONG, 1);
	ASSERT_EQ(0, cmk_dump(&self->nl, leak_cb, &c, NULL, 0));
	EXPECT_LE(NDEV, c.entries);
	EXPECT_EQ(0, c.leaks) TH_LOG("dump replies contain key bytes");
}

TEST_F(multi_device, key_wipe_all_wipes_every_device)
{
	unsigned char buf[4096];
	char ext[256];
	int i;

	for (i = 0; i < NDEV; i++)
		ASSERT_KEY_SET(&self->nl, key_names[i], self->key[i],
			       CMK_LEASE_LONG, 1);
	ASSERT_EQ(0, cmk_key_wipe_all(&self->nl, DM_CMK_REASON_REVOKED, ext,
				      sizeof(ext)))
		TH_LOG("KEY_WIPE ALL: %s", ext);
	for (i = 0; i < NDEV; i++) {
		ASSERT_STATE(&self->nl, key_names[i], DM_CMK_STATE_WIPED);
		ASSERT_STATUS_STATE(dm_names[i], "wiped");
		EXPECT_EQ(-EIO, cmk_dev_read(self->path[i], buf, sizeof(buf),
					     0, true));
	}
}

TEST_F(multi_device, key_wipe_one_leaves_others_active)
{
	unsigned char buf[4096];
	int i;

	for (i = 0; i < NDEV; i++)
		ASSERT_KEY_SET(&self->nl, key_names[i], self->key[i],
			       CMK_LEASE_LONG, 1);
	ASSERT_KEY_WIPE(&self->nl, key_names[1]);
	for (i = 0; i < NDEV; i++) {
		int want = i == 1 ? -EIO : 0;

		ASSERT_STATE(&self->nl, key_names[i], i == 1 ?
			     DM_CMK_STATE_WIPED : DM_CMK_STATE_ACTIVE);
		EXPECT_EQ(want, cmk_dev_read(self->path[i], buf, sizeof(buf),
					     0, true));
	}
}

TEST_F(multi_device, lease_renew_all_extends_every_live_lease)
{
	unsigned char buf[4096];
	struct cmk_info in;
	char ext[256];
	int i;

	for (i = 0; i < NDEV - 1; i++)
		ASSERT_KEY_SET(&self->nl, key_names[i], self->key[i], 20000, 1);
	ASSERT_EQ(0, cmk_lease_renew_all(&self->nl, 500000, ext, sizeof(ext)))
		TH_LOG("LEASE_RENEW ALL: %s", ext);
	for (i = 0; i < NDEV - 1; i++) {
		ASSERT_EQ(0, cmk_get(&self->nl, key_names[i], &in, NULL, 0));
		EXPECT_EQ((uint32_t)DM_CMK_STATE_ACTIVE, in.state);
		ASSERT_TRUE(in.has_lease_left);
		EXPECT_LT(20000U, in.lease_left_ms)
			TH_LOG("%s was not renewed", key_names[i]);
	}
	/* the sealed device did not get a key out of it */
	ASSERT_STATE(&self->nl, key_names[NDEV - 1], DM_CMK_STATE_SEALED);
	EXPECT_EQ(-EIO, cmk_dev_read(self->path[NDEV - 1], buf, sizeof(buf),
				     0, true));
}

TEST_F(multi_device, keys_are_per_device)
{
	unsigned char a[4096], b[4096];
	int i;

	/* the same plaintext on each device gives different ciphertext */
	memset(a, 0x3c, sizeof(a));
	for (i = 0; i < 2; i++) {
		ASSERT_KEY_SET(&self->nl, key_names[i], self->key[i],
			       CMK_LEASE_LONG, 1);
		ASSERT_EQ(0, cmk_dev_write(self->path[i], a, sizeof(a), 0,
					   true));
	}
	ASSERT_EQ(0, cmk_dev_read(rams[0], a, sizeof(a), 0, true));
	ASSERT_EQ(0, cmk_dev_read(rams[1], b, sizeof(b), 0, true));
	EXPECT_NE(0, memcmp(a, b, sizeof(a)));
}

TEST_HARNESS_MAIN
