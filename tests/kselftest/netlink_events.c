// SPDX-License-Identifier: GPL-2.0
/*
 * netlink_events - the "events" multicast group reports key installs,
 * wipes (with their reason) and I/O refused for want of a key.
 *
 * Oracle: the contract and the UAPI header.  A second socket subscribed to
 * "events" must receive, for the right key_name: KEY_INSTALLED with the
 * generation pushed, KEY_WIPED with the reason given (or LEASE_EXPIRED when
 * a lease runs out), and IO_REFUSED when I/O hits a sealed or wiped device.
 * Events never carry key bytes.  Waits are generous; no timing asserted.
 */
#include "cmk_test.h"

#define DM_NAME		CMK_DM_PREFIX "ev"
#define KEY_NAME	"events-key"
#define WAIT_MS		20000

FIXTURE(netlink_events) {
	struct cmk_nl nl;
	struct cmk_nl ev;
	uint8_t key[DM_CMK_KEY_LEN];
	char path[128];
};

FIXTURE_SETUP(netlink_events)
{
	struct cmk_table t = {
		.len = 8192, .key_name = KEY_NAME, .dev = CMK_RAM(0),
		.opts = "hold_ms:0",	/* refuse I/O at once */
	};

	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	ASSERT_NL_OPEN(&self->ev);
	ASSERT_NE(0U, self->ev.events_group)
		TH_LOG("family has no \"" DM_CMK_MCGRP_EVENTS "\" group");
	ASSERT_EQ(0, cmk_nl_subscribe(&self->ev));
	cmk_key_make(self->key, 71);
	ASSERT_CMK_CREATE(DM_NAME, &t);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
}

FIXTURE_TEARDOWN(netlink_events)
{
	cmk_nl_close(&self->ev);
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
}

#define ASSERT_EVENT(ev, type, in) do {					\
	int __e = cmk_nl_wait_event((ev), KEY_NAME, (type), WAIT_MS, (in)); \
	ASSERT_EQ(0, __e) TH_LOG("no event %d for %s: %s", (type),	\
				 KEY_NAME, strerror(-__e));		\
} while (0)

TEST_F(netlink_events, key_set_emits_key_installed)
{
	struct cmk_info in;

	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 9);
	ASSERT_EVENT(&self->ev, DM_CMK_EVENT_KEY_INSTALLED, &in);
	EXPECT_TRUE(in.has_generation);
	EXPECT_EQ(9U, in.generation);
	if (in.device[0])
		EXPECT_STREQ(DM_NAME, in.device);
	EXPECT_FALSE(cmk_contains_key(in.raw, in.raw_len, self->key))
		TH_LOG("KEY_INSTALLED event carries the key");
}

TEST_F(netlink_events, key_wipe_emits_key_wiped_with_reason)
{
	struct cmk_info in;
	char ext[256];

	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
	ASSERT_EQ(0, cmk_key_wipe(&self->nl, KEY_NAME, DM_CMK_REASON_REVOKED,
				  ext, sizeof(ext)));
	ASSERT_EVENT(&self->ev, DM_CMK_EVENT_KEY_WIPED, &in);
	ASSERT_TRUE(in.has_reason);
	EXPECT_EQ((uint32_t)DM_CMK_REASON_REVOKED, in.reason);
}

TEST_F(netlink_events, key_wipe_all_emits_reason_given)
{
	struct cmk_info in;
	char ext[256];

	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
	ASSERT_EQ(0, cmk_key_wipe_all(&self->nl,
				      DM_CMK_REASON_KMS_UNREACHABLE, ext,
				      sizeof(ext)));
	ASSERT_EVENT(&self->ev, DM_CMK_EVENT_KEY_WIPED, &in);
	ASSERT_TRUE(in.has_reason);
	EXPECT_EQ((uint32_t)DM_CMK_REASON_KMS_UNREACHABLE, in.reason);
}

TEST_F_TIMEOUT(netlink_events, lease_expiry_emits_key_wiped_lease_expired, 90)
{
	struct cmk_info in;
	int e;

	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, 1500, 1);
	e = cmk_nl_wait_event(&self->ev, KEY_NAME, DM_CMK_EVENT_KEY_WIPED,
			      60000, &in);
	ASSERT_EQ(0, e) TH_LOG("no KEY_WIPED event after lease expiry: %s",
			       strerror(-e));
	ASSERT_TRUE(in.has_reason);
	EXPECT_EQ((uint32_t)DM_CMK_REASON_LEASE_EXPIRED, in.reason);
}

TEST_F(netlink_events, io_on_wiped_device_emits_io_refused)
{
	unsigned char buf[4096];
	struct cmk_info in;

	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
	ASSERT_KEY_WIPE(&self->nl, KEY_NAME);
	ASSERT_EQ(-EIO, cmk_dev_read(self->path, buf, sizeof(buf), 0, true));
	ASSERT_EVENT(&self->ev, DM_CMK_EVENT_IO_REFUSED, &in);
	if (in.has_state)
		EXPECT_EQ((uint32_t)DM_CMK_STATE_WIPED, in.state);
}

TEST_F(netlink_events, io_on_sealed_device_emits_io_refused)
{
	unsigned char buf[4096];
	struct cmk_info in;

	ASSERT_EQ(-EIO, cmk_dev_read(self->path, buf, sizeof(buf), 0, true));
	ASSERT_EVENT(&self->ev, DM_CMK_EVENT_IO_REFUSED, &in);
	if (in.has_state)
		EXPECT_EQ((uint32_t)DM_CMK_STATE_SEALED, in.state);
}

/* Each event names its own device: a second device's events do not mix. */
TEST_F(netlink_events, events_name_the_right_device)
{
	struct cmk_table t = {
		.len = 8192, .key_name = "events-other", .dev = CMK_RAM(1),
	};
	uint8_t other[DM_CMK_KEY_LEN];
	struct cmk_info in;
	int e;

	ASSERT_CMK_CREATE(CMK_DM_PREFIX "ev-other", &t);
	cmk_key_make(other, 72);
	ASSERT_KEY_SET(&self->nl, "events-other", other, CMK_LEASE_LONG, 3);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 4);
	e = cmk_nl_wait_event(&self->ev, "events-other",
			      DM_CMK_EVENT_KEY_INSTALLED, WAIT_MS, &in);
	ASSERT_EQ(0, e);
	EXPECT_EQ(3U, in.generation);
	if (in.device[0])
		EXPECT_STREQ(CMK_DM_PREFIX "ev-other", in.device);
	ASSERT_EVENT(&self->ev, DM_CMK_EVENT_KEY_INSTALLED, &in);
	EXPECT_EQ(4U, in.generation);
	if (in.device[0])
		EXPECT_STREQ(DM_NAME, in.device);
	cmk_dm_remove(CMK_DM_PREFIX "ev-other");
}

TEST_HARNESS_MAIN
