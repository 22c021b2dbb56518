// SPDX-License-Identifier: GPL-2.0
/*
 * sleep_suspend - a system suspend wipes every key before the system
 * sleeps, no key can be installed while it does, and I/O of that time
 * waits for the key instead of failing.
 *
 * Oracle: the kernel's own suspend path.  With /sys/power/pm_test set to
 * "devices", writing "freeze" to /sys/power/state runs the PM notifier
 * chain (PM_SUSPEND_PREPARE), freezes every task, suspends every device
 * (dm-cmk wipes its keys there, after the freezer), waits 5 s, and
 * resumes, without sleeping the machine.  The kernel log gives the order
 * of events: "Restarting tasks" is printed when tasks thaw, before the
 * PM_POST_SUSPEND notifiers run.
 */
#include "cmk_test.h"

#include <fcntl.h>
#include <pthread.h>

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

FIXTURE(sleep_suspend) {
	struct cmk_nl nl;
	uint8_t key[DM_CMK_KEY_LEN];
	char path[128];
	unsigned char *buf;
};

FIXTURE_SETUP(sleep_suspend)
{
	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	cmk_key_make(self->key, 51);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
	self->buf = cmk_alloc(IO_BYTES);
	ASSERT_NE(NULL, self->buf);
	cmk_fill(self->buf, IO_BYTES, 0x5157);
}

FIXTURE_TEARDOWN(sleep_suspend)
{
	write_sysfs("/sys/power/pm_test", "none");
	free(self->buf);
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

/*
 * One suspend cycle through the device PM callbacks; 0, a skip reason
 * (> 0) when this kernel has no pm_test, or -errno.
 */
static int suspend_cycle(void)
{
	int ret = write_sysfs("/sys/power/pm_test", "devices");

	if (ret)
		return 1;
	/* Runs the notifiers and device callbacks; returns after ~5 s. */
	ret = write_sysfs("/sys/power/state", "freeze");
	write_sysfs("/sys/power/pm_test", "none");
	return ret;
}

#define SUSPEND_CYCLE() do {						\
	int __r = suspend_cycle();					\
	if (__r > 0)							\
		SKIP(return, "no /sys/power/pm_test (CONFIG_PM_DEBUG)");	\
	ASSERT_EQ(0, __r) TH_LOG("suspend: %s", strerror(-__r));	\
} while (0)

TEST_F_TIMEOUT(sleep_suspend, sleep_suspend_wipes_key_and_key_set_restores, 120)
{
	unsigned char *back = cmk_alloc(IO_BYTES);
	struct cmk_nl ev;
	struct cmk_info in;

	ASSERT_NE(NULL, back);
	create(_metadata, "sector_size:4096 hold_ms:0");
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 5);
	ASSERT_EQ(0, cmk_dev_write(self->path, self->buf, IO_BYTES, 0, true));
	ASSERT_NL_OPEN(&ev);
	ASSERT_EQ(0, cmk_nl_subscribe(&ev));

	SUSPEND_CYCLE();

	ASSERT_EQ(0, cmk_nl_wait_event(&ev, KEY_NAME, DM_CMK_EVENT_KEY_WIPED,
				       10000, &in))
		TH_LOG("no KEY_WIPED event");
	EXPECT_EQ((uint32_t)DM_CMK_REASON_SUSPEND, in.reason);
	cmk_nl_close(&ev);
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ((uint32_t)DM_CMK_STATE_WIPED, in.state);
	ASSERT_TRUE(in.has_reason);
	EXPECT_EQ((uint32_t)DM_CMK_REASON_SUSPEND, in.reason);
	EXPECT_EQ(-EIO, cmk_dev_read(self->path, back, IO_BYTES, 0, true));

	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 6);
	ASSERT_EQ(0, cmk_dev_read(self->path, back, IO_BYTES, 0, true));
	EXPECT_EQ(0, memcmp(self->buf, back, IO_BYTES));
	free(back);
}

struct spinner {
	const uint8_t *key;
	volatile bool stop;
	unsigned long ok, busy, other;
	int last_other;
};

static void *spin_key_set(void *arg)
{
	struct spinner *s = arg;
	struct cmk_nl nl;
	int ret;

	if (cmk_nl_open(&nl)) {
		s->other++;
		return NULL;
	}
	while (!s->stop) {
		ret = cmk_key_set(&nl, KEY_NAME, s->key, CMK_LEASE_LONG, 7,
				  NULL, 0);
		if (!ret) {
			s->ok++;
		} else if (ret == -EBUSY) {
			s->busy++;
		} else {
			s->other++;
			s->last_other = ret;
		}
	}
	cmk_nl_close(&nl);
	return NULL;
}

/*
 * A check that completes while the system goes to sleep must not put a
 * key back: with KEY_SET spinning across a suspend, the kernel log shows
 * no install between the suspend's wipe and the thaw of tasks, and the
 * key comes back afterwards.
 */
TEST_F_TIMEOUT(sleep_suspend, sleep_no_key_set_between_wipe_and_resume, 180)
{
	struct spinner s = { .key = self->key };
	char mark[96], *log, *wiped, *thaw, *p;
	pthread_t th;
	uint64_t end;
	struct cmk_info in;
	int installs = 0;

	create(_metadata, "hold_ms:0");
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 5);
	ASSERT_EQ(0, cmk_klog_mark(mark, sizeof(mark)));
	ASSERT_EQ(0, pthread_create(&th, NULL, spin_key_set, &s));
	cmk_sleep_ms(300);

	SUSPEND_CYCLE();

	/* the spinner, thawed, installs the key again */
	end = cmk_now_ms() + 20000;
	do {
		cmk_sleep_ms(100);
		ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	} while (in.state != DM_CMK_STATE_ACTIVE && cmk_now_ms() < end);
	s.stop = true;
	pthread_join(th, NULL);
	TH_LOG("KEY_SET across the suspend: %lu ok, %lu EBUSY, %lu other (last %d)",
	       s.ok, s.busy, s.other, s.last_other);
	EXPECT_EQ(0UL, s.other);
	EXPECT_EQ((uint32_t)DM_CMK_STATE_ACTIVE, in.state);

	log = cmk_klog_since(mark);
	ASSERT_NE(NULL, log);
	wiped = strstr(log, KEY_NAME ": key wiped (suspend)");
	ASSERT_NE(NULL, wiped) TH_LOG("the suspend did not wipe the key");
	thaw = strstr(wiped, "Restarting tasks");
	ASSERT_NE(NULL, thaw) TH_LOG("no 'Restarting tasks' after the wipe");
	for (p = wiped; (p = strstr(p, KEY_NAME ": key installed")) && p < thaw;
	     p++)
		installs++;
	EXPECT_EQ(0, installs)
		TH_LOG("%d key installs while the system was suspended", installs);
	free(log);
}

struct writer {
	const char *path;
	const unsigned char *buf;
	int ret;
};

static void *write_main(void *arg)
{
	struct writer *w = arg;

	w->ret = cmk_dev_write(w->path, w->buf, IO_BYTES, IO_BYTES, true);
	return NULL;
}

/*
 * I/O that comes after the suspend's wipe waits for the key the agent
 * installs after resume, instead of failing (no lost write, no aborted
 * journal).
 */
TEST_F_TIMEOUT(sleep_suspend, sleep_io_after_resume_waits_for_key, 120)
{
	unsigned char *back = cmk_alloc(IO_BYTES);
	struct writer w = { .path = self->path, .buf = self->buf };
	struct cmk_info in;
	pthread_t th;

	ASSERT_NE(NULL, back);
	create(_metadata, "hold_ms:60000");
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 5);

	SUSPEND_CYCLE();

	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ((uint32_t)DM_CMK_STATE_WIPED, in.state);
	ASSERT_EQ(0, pthread_create(&th, NULL, write_main, &w));
	cmk_sleep_ms(1000);
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ(1U, in.held) TH_LOG("the write did not wait for the key");
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 6);
	pthread_join(th, NULL);
	EXPECT_EQ(0, w.ret) TH_LOG("held write: %s", strerror(-w.ret));
	ASSERT_EQ(0, cmk_dev_read(self->path, back, IO_BYTES, IO_BYTES, true));
	EXPECT_EQ(0, memcmp(self->buf, back, IO_BYTES));
	free(back);
}

/* Hibernation: the image is taken after the freeze callback wiped keys. */
TEST_F_TIMEOUT(sleep_suspend, sleep_hibernation_wipes_key_before_image, 180)
{
	struct cmk_info in;
	int ret;

	create(_metadata, "hold_ms:0");
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 5);
	ASSERT_EQ(0, cmk_dev_write(self->path, self->buf, IO_BYTES, 0, true));
	if (write_sysfs("/sys/power/pm_test", "devices"))
		SKIP(return, "no /sys/power/pm_test");
	ret = write_sysfs("/sys/power/state", "disk");
	write_sysfs("/sys/power/pm_test", "none");
	if (ret == -EPERM || ret == -EINVAL || ret == -ENODEV)
		SKIP(return, "no hibernation here: %s", strerror(-ret));
	ASSERT_EQ(0, ret) TH_LOG("hibernation test: %s", strerror(-ret));
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ((uint32_t)DM_CMK_STATE_WIPED, in.state);
	EXPECT_EQ((uint32_t)DM_CMK_REASON_SUSPEND, in.reason);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 6);
}

/*
 * From PM_HIBERNATION_PREPARE until the end, KEY_SET is refused.  The
 * window is made long on purpose: hibernation syncs after the notifiers,
 * and dirty pages on a dm-delay device (3 s per write) make that sync
 * take seconds while every task still runs.  A thread spinning KEY_SET
 * must meet EBUSY there, and succeed again after.  (pm_test=freezer: no
 * device callback runs, so the key itself is not wiped.)
 */
TEST_F_TIMEOUT(sleep_suspend, sleep_key_set_refused_from_prepare_to_post, 240)
{
	struct spinner s = { .key = self->key };
	char line[256], out[1024];
	unsigned char *dirty;
	unsigned long ok_before, ok_after_return;
	pthread_t th;
	int fd, ret;

	if (cmk_modprobe("dm-delay"))
		SKIP(return, "no dm-delay module");
	create(_metadata, "hold_ms:0");
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 5);
	snprintf(line, sizeof(line), "0 8192 delay %s 0 0 %s 0 3000",
		 CMK_RAM(1), CMK_RAM(1));
	ASSERT_EQ(0, cmk_dm_create(CMK_DM_PREFIX "slowsync", line, out,
				   sizeof(out)))
		TH_LOG("dm-delay: %s", out);
	if (write_sysfs("/sys/power/pm_test", "freezer")) {
		cmk_dm_remove(CMK_DM_PREFIX "slowsync");
		SKIP(return, "no /sys/power/pm_test");
	}
	ASSERT_EQ(0, pthread_create(&th, NULL, spin_key_set, &s));
	for (ret = 0; !s.ok && ret < 100; ret++)
		cmk_sleep_ms(100);	/* the spinner is under way */
	/* dirty page cache on the slow device, left for the PM core's sync */
	dirty = cmk_alloc(1 << 20);
	ASSERT_NE(NULL, dirty);
	cmk_fill(dirty, 1 << 20, 0xd1d1);
	fd = open("/dev/mapper/" CMK_DM_PREFIX "slowsync", O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1 << 20, write(fd, dirty, 1 << 20));
	/* kept open: the last close of a block device syncs it */
	free(dirty);

	ok_before = s.ok;
	ret = write_sysfs("/sys/power/state", "disk");
	write_sysfs("/sys/power/pm_test", "none");
	ok_after_return = s.ok;
	cmk_sleep_ms(500);
	s.stop = true;
	pthread_join(th, NULL);
	close(fd);
	cmk_dm_remove(CMK_DM_PREFIX "slowsync");
	if (ret == -EPERM || ret == -EINVAL || ret == -ENODEV)
		SKIP(return, "no hibernation here: %s", strerror(-ret));
	ASSERT_EQ(0, ret) TH_LOG("hibernation test: %s", strerror(-ret));
	TH_LOG("KEY_SET across the hibernation test: %lu ok (%lu before), %lu EBUSY, %lu other",
	       s.ok, ok_before, s.busy, s.other);
	EXPECT_LT(0UL, ok_before);
	EXPECT_LT(0UL, s.busy) TH_LOG("no KEY_SET was refused during the sleep");
	EXPECT_LT(ok_after_return, s.ok) TH_LOG("KEY_SET did not work again after");
	EXPECT_EQ(0UL, s.other);
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_ACTIVE);
}

/*
 * Hibernation through the deeper pm_test levels.  "platform" adds the
 * late and noirq freeze callbacks and the platform's (ACPI S4) preparation,
 * "processors" also takes the second CPU offline, and "core" also runs the
 * syscore callbacks with interrupts off: everything but the snapshot copy
 * and writing it.  No level writes an image, so none needs a swap device.
 * At each: the key is wiped with reason SUSPEND, I/O without a key fails
 * (hold_ms:0), a KEY_SET after it works with its new lease and generation,
 * and the data written before reads back.
 */
TEST_F_TIMEOUT(sleep_suspend, sleep_hibernation_pm_test_levels, 600)
{
	static const char *const levels[] = { "platform", "processors",
					      "core" };
	unsigned char *back = cmk_alloc(IO_BYTES);
	char mark[96], disk[64] = "", *log, *p;
	unsigned int i, gen = 5, wipes;
	struct cmk_info in;
	uint64_t t0;
	int ret, fd;

	ASSERT_NE(NULL, back);
	create(_metadata, "sector_size:4096 hold_ms:0");
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, gen);
	ASSERT_EQ(0, cmk_dev_write(self->path, self->buf, IO_BYTES, 0, true));
	fd = open("/sys/power/disk", O_RDONLY);
	if (fd >= 0) {
		ret = read(fd, disk, sizeof(disk) - 1);
		disk[ret > 0 ? ret - 1 : 0] = '\0';
		close(fd);
	}
	TH_LOG("/sys/power/disk: %s", disk);

	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		ASSERT_EQ(0, cmk_klog_mark(mark, sizeof(mark)));
		if (write_sysfs("/sys/power/pm_test", levels[i]))
			SKIP(return, "no /sys/power/pm_test level %s",
			     levels[i]);
		t0 = cmk_now_ms();
		ret = write_sysfs("/sys/power/state", "disk");
		write_sysfs("/sys/power/pm_test", "none");
		if (ret == -EPERM || ret == -ENODEV)
			SKIP(return, "no hibernation here: %s", strerror(-ret));
		ASSERT_EQ(0, ret)
			TH_LOG("pm_test=%s: disk: %s", levels[i],
			       strerror(-ret));
		TH_LOG("pm_test=%s: hibernation test cycle %llu ms", levels[i],
		       (unsigned long long)(cmk_now_ms() - t0));

		ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
		EXPECT_EQ((uint32_t)DM_CMK_STATE_WIPED, in.state)
			TH_LOG("pm_test=%s: key not wiped", levels[i]);
		EXPECT_EQ((uint32_t)DM_CMK_REASON_SUSPEND, in.reason);
		EXPECT_EQ(-EIO, cmk_dev_read(self->path, back, IO_BYTES, 0,
					     true));
		log = cmk_klog_since(mark);
		ASSERT_NE(NULL, log);
		wipes = 0;
		for (p = log; (p = strstr(p, KEY_NAME ": key wiped (suspend)"));
		     p++)
			wipes++;
		EXPECT_EQ(1U, wipes)
			TH_LOG("pm_test=%s: %u wipes logged", levels[i], wipes);
		free(log);

		gen++;
		ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG,
			       gen);
		ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
		EXPECT_EQ((uint32_t)DM_CMK_STATE_ACTIVE, in.state);
		EXPECT_EQ((uint64_t)gen, in.generation);
		ASSERT_TRUE(in.has_lease_left);
		EXPECT_GE((uint32_t)CMK_LEASE_LONG, in.lease_left_ms);
		EXPECT_LT(0U, in.lease_left_ms);
		ASSERT_EQ(0, cmk_dev_read(self->path, back, IO_BYTES, 0, true));
		EXPECT_EQ(0, memcmp(self->buf, back, IO_BYTES))
			TH_LOG("pm_test=%s: data lost", levels[i]);
	}
	free(back);
}

TEST_HARNESS_MAIN
