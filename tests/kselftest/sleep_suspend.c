// SPDX-License-Identifier: GPL-2.0
/*
 * pm_suspend - a system suspend wipes every key before the system sleeps.
 *
 * Oracle: the kernel's own suspend path.  With /sys/power/pm_test set to
 * "freezer", writing "freeze" to /sys/power/state runs the real PM
 * notifier chain (PM_SUSPEND_PREPARE), freezes every task, waits and
 * thaws, without sleeping the machine: dm-cmk's notifier must have wiped
 * the key (state wiped, reason SUSPEND) and I/O must fail until a new
 * KEY_SET, after which the data written before is intact.
 */
#include "cmk_test.h"

#include <fcntl.h>

#define DM_NAME		CMK_DM_PREFIX "pm"
#define KEY_NAME	"pm-key"
#define DEV_SECTORS	16384ULL
#define IO_BYTES	65536

static int write_sysfs(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;
	int err;

	if (fd < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	err = n < 0 ? -errno : 0;
	close(fd);
	return err;
}

FIXTURE(pm_suspend) {
	struct cmk_nl nl;
	struct cmk_table t;
	uint8_t key[DM_CMK_KEY_LEN];
	char path[128];
};

FIXTURE_SETUP(pm_suspend)
{
	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	cmk_key_make(self->key, 51);
	self->t = (struct cmk_table){
		.len = DEV_SECTORS, .key_name = KEY_NAME,
		.dev = CMK_RAM(0), .opts = "sector_size:4096",
	};
	ASSERT_CMK_CREATE(DM_NAME, &self->t);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
}

FIXTURE_TEARDOWN(pm_suspend)
{
	write_sysfs("/sys/power/pm_test", "none");
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
}

TEST_F_TIMEOUT(pm_suspend, suspend_wipes_key_and_key_set_restores, 120)
{
	unsigned char *buf = cmk_alloc(IO_BYTES), *back = cmk_alloc(IO_BYTES);
	struct cmk_info in;
	int ret;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, back);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 5);
	cmk_fill(buf, IO_BYTES, 0x5157);
	ASSERT_EQ(0, cmk_dev_write(self->path, buf, IO_BYTES, 0, true));

	ret = write_sysfs("/sys/power/pm_test", "freezer");
	if (ret)
		SKIP(return, "no /sys/power/pm_test (CONFIG_PM_DEBUG): %s",
		     strerror(-ret));
	/* Runs the PM notifiers, freezes and thaws; returns after ~5 s. */
	ASSERT_EQ(0, write_sysfs("/sys/power/state", "freeze"));
	ASSERT_EQ(0, write_sysfs("/sys/power/pm_test", "none"));

	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ((uint32_t)DM_CMK_STATE_WIPED, in.state);
	ASSERT_TRUE(in.has_reason);
	EXPECT_EQ((uint32_t)DM_CMK_REASON_SUSPEND, in.reason);
	EXPECT_EQ(-EIO, cmk_dev_read(self->path, back, IO_BYTES, 0, true));

	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 6);
	ASSERT_EQ(0, cmk_dev_read(self->path, back, IO_BYTES, 0, true));
	EXPECT_EQ(0, memcmp(buf, back, IO_BYTES));
	free(buf);
	free(back);
}

TEST_HARNESS_MAIN
