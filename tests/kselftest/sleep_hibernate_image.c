// SPDX-License-Identifier: GPL-2.0
/*
 * sleep_hibernate_image - a real hibernation image holds no dm-cmk key.
 *
 * Needs a guest of its own (tests/debug-kernel/hibernate.sh): a swap
 * device /dev/vda and "hibernate=nocompress" on the kernel command line.
 * With /sys/power/disk = test_resume, writing "disk" to /sys/power/state
 * takes a real snapshot, writes it to the swap device, reads it back and
 * restores it, without powering off; the write then returns in the
 * restored system.  The image stays on the swap device.
 *
 * The key is installed by a child process that derives it from a seed,
 * wipes its copy and exits before the hibernation, so no user page of the
 * image holds it.  Oracles: a positive control, a random canary kept in
 * this process's memory, must be found in the image (the scan sees the
 * image, uncompressed); the key, either of its XTS halves (which also
 * begin the AES key schedules) must not; the key of a dm-crypt device, set
 * up the same way, must (kernel memory is scanned too).  After the restore the device is
 * wiped with reason SUSPEND, and a KEY_SET brings the data back.
 */
#include "cmk_test.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#define DM_NAME		CMK_DM_PREFIX "hib"
#define CRYPT_NAME	CMK_DM_PREFIX "hib-crypt"
#define CRYPT_SEED	172
#define KEY_NAME	"hib-key"
#define KEY_SEED	171
#define SWAP_DEV	"/dev/vda"
#define DEV_SECTORS	16384ULL
#define IO_BYTES	65536
#define CANARY_LEN	64
#define CHUNK		(4ULL << 20)

static int write_sysfs(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int err;

	if (fd < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	err = n < 0 ? -errno : 0;
	close(fd);
	return err;
}

/* In a child: derive the key, install it, wipe it, exit. */
static int key_set_in_child(uint64_t gen)
{
	int st;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		uint8_t key[DM_CMK_KEY_LEN];
		struct cmk_nl nl;
		int ret;

		cmk_key_make(key, KEY_SEED);
		ret = cmk_nl_open(&nl);
		if (!ret)
			ret = cmk_key_set(&nl, KEY_NAME, key, CMK_LEASE_LONG,
					  gen, NULL, 0);
		explicit_bzero(key, sizeof(key));
		cmk_nl_close(&nl);
		_exit(ret ? 1 : 0);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/*
 * In a child: a dm-crypt device on /dev/ram1 whose key (from CRYPT_SEED)
 * only the kernel keeps.  dm-crypt does not wipe at hibernation, so its
 * key must be in the image: the control that kernel memory is scanned.
 */
static int crypt_create_in_child(void)
{
	int st;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		struct cmk_table t = {
			.len = 8192, .dev = CMK_RAM(1),
		};
		char line[768], out[512];
		uint8_t key[DM_CMK_KEY_LEN];
		int ret;

		cmk_key_make(key, CRYPT_SEED);
		cmk_table_crypt(line, sizeof(line), &t, key);
		ret = cmk_dm_create(CRYPT_NAME, line, out, sizeof(out));
		explicit_bzero(key, sizeof(key));
		explicit_bzero(line, sizeof(line));
		_exit(ret ? 1 : 0);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* How often each needle occurs on @dev. */
static int scan(const char *dev, const uint8_t *const *needle,
		const size_t *len, unsigned int n, unsigned long *hits,
		uint64_t *scanned)
{
	unsigned char *buf = malloc(CHUNK + 64);
	size_t keep = 0, i;
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	ssize_t got;

	if (!buf || fd < 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	*scanned = 0;
	/* the last 63 bytes of a chunk go first in the next: no needle lost */
	while ((got = read(fd, buf + keep, CHUNK)) > 0) {
		size_t end = keep + got;

		for (i = 0; i < n; i++) {
			unsigned char *p = buf, *q;

			while ((q = memmem(p, end - (p - buf), needle[i],
					   len[i]))) {
				/* counted where it starts in the new bytes */
				if ((size_t)(q - buf) + len[i] > keep)
					hits[i]++;
				p = q + 1;
			}
		}
		*scanned += got;
		keep = end < 63 ? end : 63;
		memmove(buf, buf + end - keep, keep);
	}
	close(fd);
	free(buf);
	return got < 0 ? -errno : 0;
}

FIXTURE(sleep_hibernate) {
	int unused;
};

FIXTURE_SETUP(sleep_hibernate)
{
	self->unused = 0;
}

FIXTURE_TEARDOWN(sleep_hibernate)
{
	swapoff(SWAP_DEV);
	write_sysfs("/sys/power/disk", "platform");
	cmk_dm_remove(DM_NAME);
	cmk_dm_remove(CRYPT_NAME);
}

TEST_F_TIMEOUT(sleep_hibernate, sleep_hibernate_image_holds_no_key, 1800)
{
	struct cmk_table t = {
		.len = DEV_SECTORS, .key_name = KEY_NAME, .dev = CMK_RAM(0),
		.opts = "sector_size:4096 hold_ms:0",
	};
	uint8_t key[DM_CMK_KEY_LEN], ckey[DM_CMK_KEY_LEN], *canary, *data;
	uint8_t *back;
	const uint8_t *needle[5];
	size_t len[5];
	unsigned long hits[5] = { 0 };
	char path[128], dev[32];
	struct cmk_info in;
	struct cmk_nl nl;
	struct stat sb;
	uint64_t t0, scanned;
	int ret;

	if (stat(SWAP_DEV, &sb) || !S_ISBLK(sb.st_mode))
		SKIP(return, "no " SWAP_DEV " (tests/debug-kernel/hibernate.sh gives one)");
	if (access("/sys/power/disk", W_OK))
		SKIP(return, "no hibernation in this kernel");
	cmk_dm_cleanup();
	ASSERT_EQ(0, cmk_ensure_module());
	ASSERT_NL_OPEN(&nl);
	cmk_dm_path(path, sizeof(path), DM_NAME);
	ASSERT_CMK_CREATE(DM_NAME, &t);
	ASSERT_EQ(0, key_set_in_child(1));
	ASSERT_STATE(&nl, KEY_NAME, DM_CMK_STATE_ACTIVE);
	data = cmk_alloc(IO_BYTES);
	back = cmk_alloc(IO_BYTES);
	canary = cmk_alloc(CANARY_LEN);
	ASSERT_NE(NULL, data);
	ASSERT_NE(NULL, back);
	ASSERT_NE(NULL, canary);
	cmk_fill(data, IO_BYTES, 0x41b);
	ASSERT_EQ(0, cmk_dev_write(path, data, IO_BYTES, 0, true));
	ASSERT_EQ(0, getentropy(canary, CANARY_LEN));
	ASSERT_EQ(0, crypt_create_in_child()) TH_LOG("dm-crypt control device");

	ASSERT_EQ(0, swapon(SWAP_DEV, 0)) TH_LOG("swapon: %s", strerror(errno));
	snprintf(dev, sizeof(dev), "%u:%u", major(sb.st_rdev),
		 minor(sb.st_rdev));
	ASSERT_EQ(0, write_sysfs("/sys/power/resume", dev));
	ASSERT_EQ(0, write_sysfs("/sys/power/image_size", "0"));
	ASSERT_EQ(0, write_sysfs("/sys/power/pm_test", "none"));
	ASSERT_EQ(0, write_sysfs("/sys/power/disk", "test_resume"));
	t0 = cmk_now_ms();
	ret = write_sysfs("/sys/power/state", "disk");
	TH_LOG("hibernation (test_resume): %s after %llu ms",
	       ret ? strerror(-ret) : "restored",
	       (unsigned long long)(cmk_now_ms() - t0));
	swapoff(SWAP_DEV);
	ASSERT_EQ(0, ret);

	/* the restored system: the key was wiped before the snapshot */
	ASSERT_EQ(0, cmk_get(&nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ((uint32_t)DM_CMK_STATE_WIPED, in.state);
	EXPECT_EQ((uint32_t)DM_CMK_REASON_SUSPEND, in.reason);
	EXPECT_EQ(-EIO, cmk_dev_read(path, back, IO_BYTES, 0, true));

	/* the image on the swap device */
	cmk_key_make(key, KEY_SEED);
	cmk_key_make(ckey, CRYPT_SEED);
	needle[0] = canary;
	len[0] = CANARY_LEN;
	needle[1] = key;
	len[1] = DM_CMK_KEY_LEN;
	needle[2] = key;
	len[2] = DM_CMK_KEY_LEN / 2;
	needle[3] = key + DM_CMK_KEY_LEN / 2;
	len[3] = DM_CMK_KEY_LEN / 2;
	needle[4] = ckey;
	len[4] = DM_CMK_KEY_LEN;
	ASSERT_EQ(0, scan(SWAP_DEV, needle, len, 5, hits, &scanned));
	explicit_bzero(key, sizeof(key));
	explicit_bzero(ckey, sizeof(ckey));
	TH_LOG("image scan of %llu MiB: canary %lu, dm-crypt key %lu; dm-cmk key %lu, first half %lu, second half %lu",
	       (unsigned long long)(scanned >> 20), hits[0], hits[4],
	       hits[1], hits[2], hits[3]);
	ASSERT_LT(0UL, hits[0])
		TH_LOG("the canary is not in the image: the scan sees nothing");
	ASSERT_LT(0UL, hits[4])
		TH_LOG("dm-crypt's key is not in the image: kernel memory not scanned");
	EXPECT_EQ(0UL, hits[1]);
	EXPECT_EQ(0UL, hits[2]);
	EXPECT_EQ(0UL, hits[3]);

	ASSERT_EQ(0, key_set_in_child(2));
	ASSERT_EQ(0, cmk_dev_read(path, back, IO_BYTES, 0, true));
	EXPECT_EQ(0, memcmp(data, back, IO_BYTES));
	free(data);
	free(back);
	free(canary);
	cmk_nl_close(&nl);
}

TEST_HARNESS_MAIN
