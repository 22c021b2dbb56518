// SPDX-License-Identifier: GPL-2.0
/*
 * netlink_malformed - malformed dm-cmk netlink requests are refused with
 * the contract's errno and an extack message, and change nothing.
 *
 * Oracle: the contract: unknown name -> ENODEV; wrong key length or a
 * missing attribute -> EINVAL with an extack message; equal XTS halves ->
 * EINVAL; renewing a device without key -> ENOKEY; strict validation
 * refuses unknown attribute types (EINVAL).  After every refusal the device
 * must still be sealed (no key was installed by a bad request).  A correct
 * request built by the same code is accepted.
 */
#include "cmk_test.h"

#define DM_NAME		CMK_DM_PREFIX "nl"
#define KEY_NAME	"nl-key"
#define NAME65 "n2345678901234567890123456789012345678901234567890123456789012345"
_Static_assert(sizeof(NAME65) == DM_CMK_NAME_MAX + 2, "65 characters");

FIXTURE(netlink_malformed) {
	struct cmk_nl nl;
	uint8_t key[DM_CMK_KEY_LEN + 8];	/* room for a too long key */
	char ext[512];
};

FIXTURE_SETUP(netlink_malformed)
{
	struct cmk_table t = {
		.len = 8192, .key_name = KEY_NAME, .dev = CMK_RAM(0),
	};

	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	cmk_key_make(self->key, 41);
	cmk_fill(self->key + DM_CMK_KEY_LEN, 8, 42);
	ASSERT_CMK_CREATE(DM_NAME, &t);
}

FIXTURE_TEARDOWN(netlink_malformed)
{
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
}

/*
 * Send @r, expect -@err; for EINVAL the extack must explain: a message, or
 * for a missing attribute (@missing != 0) the kernel's standard
 * NLMSGERR_ATTR_MISS_TYPE naming exactly that attribute.  The device is
 * still sealed afterwards.
 */
static void expect_refused_miss(struct __test_metadata *_metadata,
				FIXTURE_DATA(netlink_malformed) *self,
				const struct cmk_req *r, int err,
				uint32_t missing)
{
	uint32_t miss;
	int got;

	self->ext[0] = '\0';
	got = cmk_nl_request(&self->nl, r, NULL, NULL, self->ext,
			     sizeof(self->ext));
	miss = self->nl.miss_type;
	EXPECT_EQ(-err, got) TH_LOG("expected %s, got %s (extack '%s')",
				    strerror(err), strerror(-got), self->ext);
	TH_LOG("extack: '%s' missing attribute %u", self->ext, miss);
	if (err == EINVAL)
		EXPECT_TRUE(self->ext[0] || (missing && miss == missing))
			TH_LOG("EINVAL without extack message%s",
			       missing ? " or missing-attribute report" : "");
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_SEALED);
}

static void expect_refused(struct __test_metadata *_metadata,
			   FIXTURE_DATA(netlink_malformed) *self,
			   const struct cmk_req *r, int err)
{
	expect_refused_miss(_metadata, self, r, err, 0);
}

/* A well-formed KEY_SET; each test then breaks one thing. */
static struct cmk_req key_set_req(FIXTURE_DATA(netlink_malformed) *self)
{
	return (struct cmk_req){
		.cmd = DM_CMK_CMD_KEY_SET, .name = KEY_NAME, .key = self->key,
		.key_len = DM_CMK_KEY_LEN, .has_lease = true,
		.lease_ms = 10000,
	};
}

TEST_F(netlink_malformed, key_set_well_formed_accepted)
{
	struct cmk_req r = key_set_req(self);

	ASSERT_EQ(0, cmk_nl_request(&self->nl, &r, NULL, NULL, self->ext,
				    sizeof(self->ext)))
		TH_LOG("extack: %s", self->ext);
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_ACTIVE);
}

TEST_F(netlink_malformed, key_set_key_of_63_bytes_erange)
{
	struct cmk_req r = key_set_req(self);

	r.key_len = 63;
	expect_refused(_metadata, self, &r, ERANGE);
}

TEST_F(netlink_malformed, key_set_key_of_65_bytes_erange)
{
	struct cmk_req r = key_set_req(self);

	r.key_len = 65;
	expect_refused(_metadata, self, &r, ERANGE);
}

TEST_F(netlink_malformed, key_set_key_of_32_bytes_erange)
{
	/* an AES-128-XTS key is not accepted as a short AES-256 one */
	struct cmk_req r = key_set_req(self);

	r.key_len = 32;
	expect_refused(_metadata, self, &r, ERANGE);
}

TEST_F(netlink_malformed, key_set_without_key_einval)
{
	struct cmk_req r = key_set_req(self);

	r.key = NULL;
	expect_refused_miss(_metadata, self, &r, EINVAL, DM_CMK_A_KEY);
}

TEST_F(netlink_malformed, key_set_without_name_einval)
{
	struct cmk_req r = key_set_req(self);

	r.name = NULL;
	expect_refused_miss(_metadata, self, &r, EINVAL, DM_CMK_A_NAME);
}

TEST_F(netlink_malformed, key_set_without_lease_einval)
{
	struct cmk_req r = key_set_req(self);

	r.has_lease = false;
	expect_refused_miss(_metadata, self, &r, EINVAL, DM_CMK_A_LEASE_MS);
}

TEST_F(netlink_malformed, key_set_unknown_name_enodev)
{
	struct cmk_req r = key_set_req(self);

	r.name = "no-such-key-name";
	expect_refused(_metadata, self, &r, ENODEV);
}

TEST_F(netlink_malformed, key_set_name_of_65_chars_einval)
{
	struct cmk_req r = key_set_req(self);

	r.name = NAME65;
	expect_refused(_metadata, self, &r, EINVAL);
}

TEST_F(netlink_malformed, key_set_empty_name_einval)
{
	struct cmk_req r = key_set_req(self);

	r.name = "";
	expect_refused(_metadata, self, &r, EINVAL);
}

TEST_F(netlink_malformed, key_set_equal_xts_halves_einval)
{
	uint8_t weak[DM_CMK_KEY_LEN];
	struct cmk_req r = key_set_req(self);

	r.key = weak;
	memcpy(weak, self->key, DM_CMK_KEY_LEN / 2);
	memcpy(weak + DM_CMK_KEY_LEN / 2, self->key, DM_CMK_KEY_LEN / 2);
	expect_refused(_metadata, self, &r, EINVAL);
}

TEST_F(netlink_malformed, key_set_unknown_attribute_einval)
{
	struct cmk_req r = key_set_req(self);

	r.extra_type = DM_CMK_A_MAX + 7;
	expect_refused(_metadata, self, &r, EINVAL);
}

TEST_F(netlink_malformed, key_wipe_without_name_or_all_einval)
{
	struct cmk_req r = { .cmd = DM_CMK_CMD_KEY_WIPE };

	expect_refused_miss(_metadata, self, &r, EINVAL, DM_CMK_A_NAME);
}

TEST_F(netlink_malformed, key_wipe_unknown_name_enodev)
{
	struct cmk_req r = { .cmd = DM_CMK_CMD_KEY_WIPE,
			     .name = "no-such-key-name" };

	expect_refused(_metadata, self, &r, ENODEV);
}

TEST_F(netlink_malformed, lease_renew_without_key_enokey)
{
	struct cmk_req r = { .cmd = DM_CMK_CMD_LEASE_RENEW, .name = KEY_NAME,
			     .has_lease = true, .lease_ms = 10000 };

	expect_refused(_metadata, self, &r, ENOKEY);
}

TEST_F(netlink_malformed, lease_renew_without_lease_einval)
{
	struct cmk_req r = { .cmd = DM_CMK_CMD_LEASE_RENEW, .name = KEY_NAME };

	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, 10000, 1);
	self->ext[0] = '\0';
	EXPECT_EQ(-EINVAL, cmk_nl_request(&self->nl, &r, NULL, NULL,
					  self->ext, sizeof(self->ext)));
	EXPECT_TRUE(self->ext[0] ||
		    self->nl.miss_type == DM_CMK_A_LEASE_MS)
		TH_LOG("EINVAL without extack");
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_ACTIVE);
}

TEST_F(netlink_malformed, lease_renew_unknown_name_enodev)
{
	struct cmk_req r = { .cmd = DM_CMK_CMD_LEASE_RENEW,
			     .name = "no-such-key-name", .has_lease = true,
			     .lease_ms = 10000 };

	expect_refused(_metadata, self, &r, ENODEV);
}

TEST_F(netlink_malformed, get_without_name_einval)
{
	struct cmk_req r = { .cmd = DM_CMK_CMD_GET };

	expect_refused_miss(_metadata, self, &r, EINVAL, DM_CMK_A_NAME);
}

TEST_F(netlink_malformed, get_unknown_name_enodev)
{
	struct cmk_req r = { .cmd = DM_CMK_CMD_GET,
			     .name = "no-such-key-name" };

	expect_refused(_metadata, self, &r, ENODEV);
}

/* A bad request against an active key does not disturb it either. */
TEST_F(netlink_malformed, refused_key_set_keeps_active_key)
{
	uint8_t other[DM_CMK_KEY_LEN + 1];
	struct cmk_req r = key_set_req(self);
	unsigned char buf[4096], back[4096];
	char path[128];
	struct cmk_info in;

	r.key = other;
	r.key_len = 65;
	cmk_key_make(other, 43);
	other[DM_CMK_KEY_LEN] = 0;
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, 10000, 7);
	cmk_dm_path(path, sizeof(path), DM_NAME);
	cmk_fill(buf, sizeof(buf), 44);
	ASSERT_EQ(0, cmk_dev_write(path, buf, sizeof(buf), 0, true));
	/* the netlink policy refuses a wrong-length key with ERANGE */
	EXPECT_EQ(-ERANGE, cmk_nl_request(&self->nl, &r, NULL, NULL,
					  self->ext, sizeof(self->ext)));
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ((uint32_t)DM_CMK_STATE_ACTIVE, in.state);
	EXPECT_EQ(7U, in.generation);
	ASSERT_EQ(0, cmk_dev_read(path, back, sizeof(back), 0, true));
	EXPECT_EQ(0, memcmp(buf, back, sizeof(buf)));
}

TEST_HARNESS_MAIN
