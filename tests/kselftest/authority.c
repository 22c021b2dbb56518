// SPDX-License-Identifier: GPL-2.0
/*
 * netlink_unprivileged - every dm-cmk operation needs CAP_NET_ADMIN.
 *
 * Oracle: the contract (GENL_ADMIN_PERM: EPERM without CAP_NET_ADMIN).  A
 * forked child drops CAP_NET_ADMIN and CAP_SYS_ADMIN (capset), opens its own
 * socket and tries the operation; it must get EPERM and the device must be
 * exactly as before (same state, generation, data).  The positive control
 * drops only CAP_SYS_ADMIN and must succeed, so the refusals are due to
 * CAP_NET_ADMIN and not to the way the child is set up.
 */
#include "cmk_test.h"

#include <linux/capability.h>

#define DM_NAME		CMK_DM_PREFIX "perm"
#define KEY_NAME	"perm-key"

FIXTURE(netlink_unprivileged) {
	struct cmk_nl nl;
	uint8_t key[DM_CMK_KEY_LEN];
	char path[128];
	unsigned char data[4096];
};

FIXTURE_SETUP(netlink_unprivileged)
{
	struct cmk_table t = {
		.len = 8192, .key_name = KEY_NAME, .dev = CMK_RAM(0),
	};

	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	cmk_key_make(self->key, 51);
	ASSERT_CMK_CREATE(DM_NAME, &t);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 5);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
	cmk_fill(self->data, sizeof(self->data), 52);
	ASSERT_EQ(0, cmk_dev_write(self->path, self->data, sizeof(self->data),
				   0, true));
}

FIXTURE_TEARDOWN(netlink_unprivileged)
{
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
}

static int count_cb(const struct cmk_info *info, void *arg)
{
	(void)info;
	(*(int *)arg)++;
	return 0;
}

/*
 * In a child without @drop capabilities, send @req (or, if @req is NULL,
 * join the "events" group); return its result (0 or -errno) or a value
 * > 0 if the child could not be set up.
 */
static int run_without_caps(const struct cmk_req *req, const int *drop,
			    int ndrop)
{
	int pipefd[2], res = 1000, status;
	pid_t pid;

	if (pipe(pipefd))
		return 1001;
	pid = fork();
	if (pid < 0)
		return 1002;
	if (pid == 0) {
		struct cmk_nl nl;
		int r, n = 0;

		close(pipefd[0]);
		r = cmk_drop_caps(drop, ndrop);
		if (!r)
			r = cmk_nl_open(&nl) ? 1003 : 0;
		if (!r) {
			r = req ? cmk_nl_request(&nl, req, count_cb, &n, NULL, 0) :
				  cmk_nl_subscribe(&nl);
			cmk_nl_close(&nl);
		} else if (r < 0) {
			r = 1004;
		}
		if (write(pipefd[1], &r, sizeof(r)) != sizeof(r))
			_exit(1);
		_exit(0);
	}
	close(pipefd[1]);
	if (read(pipefd[0], &res, sizeof(res)) != sizeof(res))
		res = 1005;
	close(pipefd[0]);
	waitpid(pid, &status, 0);
	return res;
}

static const int no_admin[] = { CAP_NET_ADMIN, CAP_SYS_ADMIN };
static const int no_sys_admin[] = { CAP_SYS_ADMIN };

/* The device is untouched: still active, same generation, same data. */
static void expect_unchanged(struct __test_metadata *_metadata,
			     FIXTURE_DATA(netlink_unprivileged) *self)
{
	unsigned char back[4096];
	struct cmk_info in;

	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ((uint32_t)DM_CMK_STATE_ACTIVE, in.state);
	EXPECT_EQ(5U, in.generation);
	ASSERT_EQ(0, cmk_dev_read(self->path, back, sizeof(back), 0, true));
	EXPECT_EQ(0, memcmp(back, self->data, sizeof(back)));
}

TEST_F(netlink_unprivileged, key_set_without_cap_net_admin_eperm)
{
	uint8_t other[DM_CMK_KEY_LEN];
	struct cmk_req r = {
		.cmd = DM_CMK_CMD_KEY_SET, .name = KEY_NAME, .key = other,
		.key_len = DM_CMK_KEY_LEN, .has_lease = true,
		.lease_ms = 10000, .has_generation = true, .generation = 99,
	};

	cmk_key_make(other, 53);
	EXPECT_EQ(-EPERM, run_without_caps(&r, no_admin, 2));
	expect_unchanged(_metadata, self);
}

TEST_F(netlink_unprivileged, key_wipe_without_cap_net_admin_eperm)
{
	struct cmk_req r = { .cmd = DM_CMK_CMD_KEY_WIPE, .name = KEY_NAME };

	EXPECT_EQ(-EPERM, run_without_caps(&r, no_admin, 2));
	expect_unchanged(_metadata, self);
}

TEST_F(netlink_unprivileged, key_wipe_all_without_cap_net_admin_eperm)
{
	struct cmk_req r = { .cmd = DM_CMK_CMD_KEY_WIPE, .has_flags = true,
			     .flags = DM_CMK_F_ALL };

	EXPECT_EQ(-EPERM, run_without_caps(&r, no_admin, 2));
	expect_unchanged(_metadata, self);
}

TEST_F(netlink_unprivileged, lease_renew_without_cap_net_admin_eperm)
{
	struct cmk_req r = { .cmd = DM_CMK_CMD_LEASE_RENEW, .name = KEY_NAME,
			     .has_lease = true, .lease_ms = 1000 };
	struct cmk_info in;

	EXPECT_EQ(-EPERM, run_without_caps(&r, no_admin, 2));
	expect_unchanged(_metadata, self);
	/* the lease was not shortened to 1 s */
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_LT(1000U, in.lease_left_ms);
}

TEST_F(netlink_unprivileged, get_without_cap_net_admin_eperm)
{
	struct cmk_req r = { .cmd = DM_CMK_CMD_GET, .name = KEY_NAME };

	EXPECT_EQ(-EPERM, run_without_caps(&r, no_admin, 2));
}

TEST_F(netlink_unprivileged, get_dump_without_cap_net_admin_eperm)
{
	struct cmk_req r = { .cmd = DM_CMK_CMD_GET, .dump = true };

	EXPECT_EQ(-EPERM, run_without_caps(&r, no_admin, 2));
}

/* Positive control: CAP_NET_ADMIN alone is enough. */
TEST_F(netlink_unprivileged, cap_net_admin_without_cap_sys_admin_suffices)
{
	struct cmk_req get = { .cmd = DM_CMK_CMD_GET, .name = KEY_NAME };
	struct cmk_req renew = { .cmd = DM_CMK_CMD_LEASE_RENEW,
				 .name = KEY_NAME, .has_lease = true,
				 .lease_ms = CMK_LEASE_LONG };

	EXPECT_EQ(0, run_without_caps(&get, no_sys_admin, 1));
	EXPECT_EQ(0, run_without_caps(&renew, no_sys_admin, 1));
	expect_unchanged(_metadata, self);
}

/* Events name devices and wipe reasons: they are for admins only too. */
TEST_F(netlink_unprivileged, events_subscribe_without_cap_net_admin_eperm)
{
	EXPECT_EQ(-EPERM, run_without_caps(NULL, no_admin, 2));
	EXPECT_EQ(0, run_without_caps(NULL, no_sys_admin, 1));
}

TEST_HARNESS_MAIN
