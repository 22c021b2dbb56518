// SPDX-License-Identifier: GPL-2.0
/*
 * sleep_vmfork - a VM fork wipes every key (issue 12, section 3).
 *
 * Runs only under tests/kselftest/vmfork.sh, which boots the guest with a
 * vmgenid device (QEMU "-device vmgenid") and a qcow2 disk.  When this test
 * prints "### savevm vmfork", the host stops the guest, saves a snapshot
 * (HMP savevm), ends that QEMU and starts a second one from the snapshot
 * (-loadvm) with a new VM generation ID: what a cloud does when it clones
 * a VM or restores one from a snapshot.  The restored guest's vmgenid
 * driver sees the new ID and runs the kernel's VM fork notifiers.  QEMU
 * 7.2 cannot change the ID of a running guest (the guid property is fixed
 * once the device is realized, and QMP has no command for it), so the
 * restore is the way to make the guest see a fork.
 *
 * Oracle: the UAPI contract.  A device that is ACTIVE and reads back its
 * data right before the snapshot must, in the restored guest:
 *  - send KEY_WIPED with reason VMFORK for its key_name;
 *  - be WIPED in GET and in dmsetup status;
 *  - fail a read with EIO (the table has hold_ms:0 where the kernel knows
 *    the option, so the read is refused at once instead of waiting for a
 *    key);
 *  - read its data back intact after the same key is installed again (the
 *    wipe destroyed the key, not the data).
 * The kernel's own "crng reseeded due to virtual machine fork" line shows
 * that the fork reached the guest; without it the harness failed, not
 * dm-cmk, and the test says so.
 */
#include "cmk_test.h"
#include "cmk_sys.h"

#include <dirent.h>

#define DM_NAME		CMK_DM_PREFIX "vmfork"
#define KEY_NAME	"vmfork-key"
#define DEV_SECTORS	16384ULL
#define IO_BYTES	65536
#define RESTORE_WAIT_MS	300000	/* snapshot + restore on a busy host */

/* Is a device bound to the vmgenid driver (ACPI on 6.1, platform on 6.12)? */
static bool vmgenid_bound(char *dev, size_t sz)
{
	static const char *const dirs[] = {
		"/sys/bus/acpi/drivers/vmgenid",
		"/sys/bus/platform/drivers/vmgenid",
	};
	unsigned int i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *e;

		if (!d)
			continue;
		while ((e = readdir(d))) {
			/* device links are named like QEMUVGID:00 */
			if (strchr(e->d_name, ':')) {
				snprintf(dev, sz, "%s/%s", dirs[i], e->d_name);
				closedir(d);
				return true;
			}
		}
		closedir(d);
	}
	return false;
}

#define SEALED_DM_NAME	CMK_DM_PREFIX "vmfork-sealed"
#define SEALED_KEY_NAME	"vmfork-sealed"

static int epoch_cb(const struct cmk_info *info, void *arg)
{
	if (info->has_epoch)
		*(int64_t *)arg = info->epoch;
	return 0;
}

/* The kernel's VM-fork epoch, asked without naming a device; -1 if none. */
static int64_t kernel_epoch(struct cmk_nl *nl)
{
	struct cmk_req r = { .cmd = DM_CMK_CMD_GET, .has_flags = true,
			     .flags = DM_CMK_F_ALL };
	int64_t epoch = -1;

	if (cmk_nl_request(nl, &r, epoch_cb, &epoch, NULL, 0))
		return -1;
	return epoch;
}

/*
 * Create the device with hold_ms:0 where the kernel has the option (issue
 * 12 adds it), and without it on a kernel that refuses it as unknown.
 */
static int create_device(struct cmk_table *t, char *why, size_t sz)
{
	char line[512], out[1024], mark[96];
	int st;

	t->opts = "sector_size:4096 hold_ms:0";
	cmk_table_cmk(line, sizeof(line), t);
	cmk_klog_mark(mark, sizeof(mark));
	st = cmk_dm_create(DM_NAME, line, out, sizeof(out));
	if (!st)
		return 0;
	why[0] = '\0';
	cmk_klog_cmk_error(mark, why, sz);
	if (!strstr(why, "Unknown optional parameter"))
		return st;
	t->opts = "sector_size:4096";
	cmk_table_cmk(line, sizeof(line), t);
	cmk_klog_mark(mark, sizeof(mark));
	st = cmk_dm_create(DM_NAME, line, out, sizeof(out));
	if (st)
		cmk_klog_cmk_error(mark, why, sz);
	return st;
}

FIXTURE(sleep_vmfork) {
	struct cmk_nl nl, events;
	struct cmk_table t;
	uint8_t key[DM_CMK_KEY_LEN];
	char path[128];
};

FIXTURE_SETUP(sleep_vmfork)
{
	char why[256] = "";

	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	ASSERT_NL_OPEN(&self->events);
	ASSERT_EQ(0, cmk_nl_subscribe(&self->events));
	cmk_key_make(self->key, 0x7f07);
	self->t = (struct cmk_table){
		.len = DEV_SECTORS, .key_name = KEY_NAME, .dev = CMK_RAM(0),
	};
	ASSERT_EQ(0, create_device(&self->t, why, sizeof(why)))
		TH_LOG("dmsetup create %s failed: %s", DM_NAME, why);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
}

FIXTURE_TEARDOWN(sleep_vmfork)
{
	cmk_nl_close(&self->events);
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
	cmk_dm_remove(SEALED_DM_NAME);
}

TEST_F_TIMEOUT(sleep_vmfork, wipes_keys, 420)
{
	unsigned char *buf = cmk_alloc(IO_BYTES), *back = cmk_alloc(IO_BYTES);
	char dev[320], mark[96], line[256];
	struct cmk_info ev, in;
	uint32_t epoch;
	uint64_t t0;
	int ret;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, back);
	ASSERT_TRUE(vmgenid_bound(dev, sizeof(dev)))
		TH_LOG("no vmgenid device bound: run this test through tests/kselftest/vmfork.sh");
	TH_LOG("vmgenid device: %s; table options: %s", dev, self->t.opts);

	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 7);
	cmk_fill(buf, IO_BYTES, 0xf0f7);
	ASSERT_EQ(0, cmk_dev_write(self->path, buf, IO_BYTES, 0, true));
	ASSERT_EQ(0, cmk_dev_read(self->path, back, IO_BYTES, 0, true));
	ASSERT_EQ(0, memcmp(buf, back, IO_BYTES));
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_ACTIVE);
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	ASSERT_TRUE(in.has_epoch);
	epoch = in.epoch;
	EXPECT_EQ((int64_t)epoch, kernel_epoch(&self->nl))
		TH_LOG("GET with FLAGS=ALL does not give the epoch");
	/* a device without a key must hear of the fork too */
	{
		struct cmk_table sealed = {
			.len = 8192, .key_name = SEALED_KEY_NAME,
			.dev = CMK_RAM(1),
		};

		ASSERT_CMK_CREATE(SEALED_DM_NAME, &sealed);
	}

	/* The host snapshots the guest here and restores it as a clone. */
	ASSERT_EQ(0, cmk_klog_mark(mark, sizeof(mark)));
	t0 = cmk_now_ms();
	printf("### savevm vmfork\n");
	fflush(stdout);

	ret = cmk_nl_wait_event(&self->events, KEY_NAME,
				DM_CMK_EVENT_KEY_WIPED, RESTORE_WAIT_MS, &ev);
	if (cmk_klog_grep(mark, "virtual machine fork", line,
			  sizeof(line)) <= 0)
		snprintf(line, sizeof(line), "(none)");
	TH_LOG("kernel: %s", line);
	ASSERT_EQ(0, ret)
		TH_LOG("no KEY_WIPED event %llu ms after asking for the snapshot: %s",
		       (unsigned long long)(cmk_now_ms() - t0), strerror(-ret));
	TH_LOG("KEY_WIPED %llu ms (guest time) after the snapshot request",
	       (unsigned long long)(cmk_now_ms() - t0));
	ASSERT_TRUE(ev.has_reason);
	ASSERT_EQ((uint32_t)DM_CMK_REASON_VMFORK, ev.reason)
		TH_LOG("wiped with reason %u, expected VMFORK (%u)",
		       ev.reason, DM_CMK_REASON_VMFORK);
	ASSERT_EQ(1, cmk_klog_grep(mark, "crng reseeded due to virtual machine fork",
				   NULL, 0))
		TH_LOG("the guest never saw a VM fork: the harness did not change the generation ID");

	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_WIPED);
	ASSERT_STATUS_STATE(DM_NAME, "wiped");
	ASSERT_EQ(-EIO, cmk_dev_read(self->path, back, IO_BYTES, 0, true))
		TH_LOG("a read after the VM fork was not refused");

	/*
	 * The fork counts: a key unsealed in the parent's epoch is refused,
	 * so an agent's KEY_SET already in flight cannot bring it back.
	 */
	ASSERT_TRUE(ev.has_epoch);
	EXPECT_EQ(epoch + 1, ev.epoch) TH_LOG("the fork did not move the epoch");
	EXPECT_EQ((int64_t)epoch + 1, kernel_epoch(&self->nl));
	ret = cmk_nl_wait_event(&self->events, SEALED_KEY_NAME,
				DM_CMK_EVENT_KEY_WIPED, 10000, &ev);
	EXPECT_EQ(0, ret) TH_LOG("a device without a key got no VMFORK event");
	if (!ret)
		EXPECT_EQ((uint32_t)DM_CMK_REASON_VMFORK, ev.reason);
	ASSERT_DM_REMOVE(SEALED_DM_NAME);
	{
		struct cmk_req r = {
			.cmd = DM_CMK_CMD_KEY_SET, .name = KEY_NAME,
			.key = self->key, .key_len = DM_CMK_KEY_LEN,
			.has_lease = true, .lease_ms = CMK_LEASE_LONG,
			.has_epoch = true, .epoch = epoch,
		};

		EXPECT_EQ(-ESTALE, cmk_nl_request(&self->nl, &r, NULL, NULL,
						  NULL, 0));
		ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_WIPED);
	}

	/* The same key again brings the data back: only the key was gone. */
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 8);
	memset(back, 0, IO_BYTES);
	ASSERT_EQ(0, cmk_dev_read(self->path, back, IO_BYTES, 0, true));
	ASSERT_EQ(0, memcmp(buf, back, IO_BYTES));
	free(buf);
	free(back);
}

TEST_HARNESS_MAIN
