// SPDX-License-Identifier: GPL-2.0
/*
 * lease - keys carry leases; an unrenewed lease wipes the key by itself.
 *
 * Oracle: the contract.  No timing is asserted: expiry is awaited by
 * polling GET with a generous deadline, and renewal is done far more often
 * than the lease is long.  Lease limits: 0 needs allow_no_lease, anything
 * above the table's lease_ms (default 600000) is refused with ERANGE, and a
 * refused request leaves the device as it was.
 */
#include "cmk_test.h"

#define DM_NAME		CMK_DM_PREFIX "lease"
#define KEY_NAME	"lease-key"
#define DEV_SECTORS	8192ULL
#define EXPIRY_DEADLINE_MS	60000

FIXTURE(lease) {
	struct cmk_nl nl;
	uint8_t key[DM_CMK_KEY_LEN];
	char path[128];
};

FIXTURE_SETUP(lease)
{
	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	cmk_key_make(self->key, 21);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
}

FIXTURE_TEARDOWN(lease)
{
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
}

static void create(struct __test_metadata *_metadata, const char *opts)
{
	struct cmk_table t = {
		.len = DEV_SECTORS, .key_name = KEY_NAME, .dev = CMK_RAM(0),
		.opts = opts,
	};

	ASSERT_CMK_CREATE(DM_NAME, &t);
}

/* Poll GET until the state is @want or the deadline passes. */
static int wait_state(struct cmk_nl *nl, uint32_t want, unsigned int ms)
{
	uint64_t end = cmk_now_ms() + ms;
	struct cmk_info in;
	int err;

	do {
		err = cmk_get(nl, KEY_NAME, &in, NULL, 0);
		if (err)
			return err;
		if (in.state == want)
			return 0;
		cmk_sleep_ms(100);
	} while (cmk_now_ms() < end);
	return -ETIMEDOUT;
}

TEST_F_TIMEOUT(lease, expiry_wipes_key, 90)
{
	unsigned char *buf = cmk_alloc(4096);
	struct cmk_info in;

	ASSERT_NE(NULL, buf);
	/* refusal at once; waiting out a lapse is hold.c's subject */
	create(_metadata, "hold_ms:0");
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, 1500, 1);
	ASSERT_EQ(0, wait_state(&self->nl, DM_CMK_STATE_WIPED,
				EXPIRY_DEADLINE_MS))
		TH_LOG("a 1500 ms lease did not expire within %d ms",
		       EXPIRY_DEADLINE_MS);
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_FALSE(in.has_lease_left);
	if (in.has_reason)
		EXPECT_EQ((uint32_t)DM_CMK_REASON_LEASE_EXPIRED, in.reason);
	ASSERT_STATUS_STATE(DM_NAME, "wiped");
	EXPECT_EQ(-EIO, cmk_dev_read(self->path, buf, 4096, 0, true));
	EXPECT_EQ(-EIO, cmk_dev_write(self->path, buf, 4096, 0, true));
	free(buf);
}

/* A 10 s lease renewed every 0.5 s for 12 s stays active throughout. */
TEST_F_TIMEOUT(lease, regular_renewal_keeps_key_active, 90)
{
	unsigned char *buf = cmk_alloc(4096), *back = cmk_alloc(4096);
	char ext[256];
	int i, err;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, back);
	create(_metadata, NULL);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, 10000, 1);
	cmk_fill(buf, 4096, 77);
	ASSERT_EQ(0, cmk_dev_write(self->path, buf, 4096, 0, true));
	for (i = 0; i < 24; i++) {
		cmk_sleep_ms(500);
		err = cmk_lease_renew(&self->nl, KEY_NAME, 10000, ext,
				      sizeof(ext));
		ASSERT_EQ(0, err) TH_LOG("renewal %d: %s (%s)", i,
					 strerror(-err), ext);
		ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_ACTIVE);
		if (i % 6 == 5) {
			ASSERT_EQ(0, cmk_dev_read(self->path, back, 4096, 0,
						  true));
			ASSERT_EQ(0, memcmp(buf, back, 4096));
		}
	}
	free(buf);
	free(back);
}

TEST_F(lease, zero_lease_refused_without_allow_no_lease)
{
	char ext[256] = "";

	create(_metadata, NULL);
	EXPECT_EQ(-ERANGE, cmk_key_set(&self->nl, KEY_NAME, self->key, 0, 1,
				       ext, sizeof(ext)));
	EXPECT_NE(0, ext[0]) TH_LOG("no extack message");
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_SEALED);

	/* nor may an active key be renewed into a lease of 0 */
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
	EXPECT_EQ(-ERANGE, cmk_lease_renew(&self->nl, KEY_NAME, 0, ext,
					   sizeof(ext)));
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_ACTIVE);
}

TEST_F(lease, zero_lease_accepted_with_allow_no_lease)
{
	unsigned char *buf = cmk_alloc(4096);
	struct cmk_status st;
	struct cmk_info in;

	ASSERT_NE(NULL, buf);
	create(_metadata, "allow_no_lease");
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, 0, 1);
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ((uint32_t)DM_CMK_STATE_ACTIVE, in.state);
	EXPECT_FALSE(in.has_lease_left) TH_LOG("a key without lease has lease_left");
	ASSERT_EQ(0, cmk_dm_status_get(DM_NAME, &st));
	EXPECT_STREQ("active", st.state);
	EXPECT_FALSE(st.has_lease);
	ASSERT_EQ(0, cmk_dev_write(self->path, buf, 4096, 0, true));
	free(buf);
}

TEST_F(lease, lease_above_table_lease_ms_refused)
{
	char ext[256] = "";
	struct cmk_info in;

	create(_metadata, "lease_ms:5000");
	EXPECT_EQ(-ERANGE, cmk_key_set(&self->nl, KEY_NAME, self->key, 5001,
				       1, ext, sizeof(ext)));
	EXPECT_NE(0, ext[0]) TH_LOG("no extack message");
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_SEALED);

	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, 5000, 1);
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_TRUE(in.has_lease_max);
	EXPECT_EQ(5000U, in.lease_max_ms);
	EXPECT_TRUE(in.has_lease_left);
	EXPECT_GE(5000U, in.lease_left_ms);

	EXPECT_EQ(-ERANGE, cmk_lease_renew(&self->nl, KEY_NAME, 5001, ext,
					   sizeof(ext)));
	EXPECT_EQ(0, cmk_lease_renew(&self->nl, KEY_NAME, 5000, ext,
				     sizeof(ext)));
}

TEST_F(lease, default_lease_ms_is_600000)
{
	char ext[256] = "";
	struct cmk_info in;

	create(_metadata, NULL);
	EXPECT_EQ(-ERANGE, cmk_key_set(&self->nl, KEY_NAME, self->key, 600001,
				       1, ext, sizeof(ext)));
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_SEALED);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, 600000, 1);
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ(600000U, in.lease_max_ms);
}

/* A renewal moves the expiry forward: the lease left grows again. */
TEST_F(lease, renewal_extends_lease)
{
	struct cmk_info in;
	char ext[256];

	create(_metadata, NULL);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, 20000, 1);
	ASSERT_EQ(0, cmk_lease_renew(&self->nl, KEY_NAME, 500000, ext,
				     sizeof(ext)));
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	ASSERT_TRUE(in.has_lease_left);
	EXPECT_LT(20000U, in.lease_left_ms);
	EXPECT_GE(500000U, in.lease_left_ms);
}

TEST_HARNESS_MAIN
