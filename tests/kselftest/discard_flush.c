// SPDX-License-Identifier: GPL-2.0
/*
 * discard_flush - discards pass only with allow_discards; flushes pass.
 *
 * Runs on a memory-backed null_blk device with discard support and a
 * volatile write cache (brd has neither), so that discards and flushes
 * really reach the target.
 *
 * Oracle: the backing device and the contract.  With allow_discards a
 * BLKDISCARD succeeds and the backing range reads back as zeros (null_blk
 * frees discarded memory), like dm-crypt; without it BLKDISCARD fails with
 * EOPNOTSUPP and neither plaintext nor ciphertext changes.  fsync and
 * fdatasync succeed while active, and empty flushes succeed in every state
 * (sealed, wiped).
 */
#include "cmk_test.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <linux/fs.h>

#define NULLB_CFG	"cmkt-nullb"
#define DM_NAME		CMK_DM_PREFIX "discard"
#define KEY_NAME	"discard-key"
#define DEV_SECTORS	32768ULL		/* 16 MiB */
#define AREA_OFF	(1 << 20)
#define AREA_LEN	(1 << 20)

FIXTURE(discard_flush) {
	struct cmk_nl nl;
	uint8_t key[DM_CMK_KEY_LEN];
	char backing[64];
	char path[128];
	unsigned char *plain;
};

FIXTURE_SETUP(discard_flush)
{
	int err;

	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	cmk_key_make(self->key, 81);
	err = cmk_nullb_create(NULLB_CFG, 64, true, 16, self->backing,
			       sizeof(self->backing));
	ASSERT_EQ(0, err) TH_LOG("cannot create a null_blk device: %s",
				 strerror(-err));
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
	self->plain = cmk_alloc(AREA_LEN);
	ASSERT_NE(NULL, self->plain);
	cmk_fill(self->plain, AREA_LEN, 82);
}

FIXTURE_TEARDOWN(discard_flush)
{
	free(self->plain);
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
	cmk_nullb_destroy(NULLB_CFG);
}

static void create(struct __test_metadata *_metadata,
		   FIXTURE_DATA(discard_flush) *self, const char *opts)
{
	struct cmk_table t = {
		.len = DEV_SECTORS, .key_name = KEY_NAME, .dev = self->backing,
		.opts = opts,
	};

	ASSERT_CMK_CREATE(DM_NAME, &t);
}

static int blk_discard(const char *path, uint64_t off, uint64_t len)
{
	uint64_t range[2] = { off, len };
	int fd = open(path, O_RDWR), err = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, BLKDISCARD, range))
		err = -errno;
	close(fd);
	return err;
}

static int dm_queue_attr(const char *dm, const char *attr, char *val,
			 size_t sz)
{
	char kname[64], p[256];
	ssize_t n;
	int fd, err = cmk_dm_kname(dm, kname, sizeof(kname));

	if (err)
		return err;
	snprintf(p, sizeof(p), "/sys/block/%s/queue/%s", kname, attr);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, val, sz - 1);
	close(fd);
	if (n < 0)
		return -errno;
	val[n] = '\0';
	return 0;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

TEST_F(discard_flush, discard_reaches_backing_device_with_allow_discards)
{
	unsigned char *raw = cmk_alloc(AREA_LEN);
	char val[64];

	ASSERT_NE(NULL, raw);
	create(_metadata, self, "allow_discards");
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
	ASSERT_EQ(0, dm_queue_attr(DM_NAME, "discard_max_bytes", val,
				   sizeof(val)));
	EXPECT_LT(0L, atol(val)) TH_LOG("allow_discards but discard_max_bytes %s",
					val);
	ASSERT_EQ(0, cmk_dev_write(self->path, self->plain, AREA_LEN,
				   AREA_OFF, true));
	ASSERT_EQ(0, cmk_dev_read(self->backing, raw, AREA_LEN, AREA_OFF,
				  true));
	ASSERT_FALSE(all_zero(raw, AREA_LEN));

	ASSERT_EQ(0, blk_discard(self->path, AREA_OFF, AREA_LEN));
	ASSERT_EQ(0, cmk_dev_read(self->backing, raw, AREA_LEN, AREA_OFF,
				  true));
	EXPECT_TRUE(all_zero(raw, AREA_LEN))
		TH_LOG("the discard did not reach the backing device");
	free(raw);
}

TEST_F(discard_flush, discard_refused_without_allow_discards)
{
	unsigned char *raw = cmk_alloc(AREA_LEN), *raw2 = cmk_alloc(AREA_LEN);
	unsigned char *back = cmk_alloc(AREA_LEN);

	ASSERT_NE(NULL, raw);
	ASSERT_NE(NULL, raw2);
	ASSERT_NE(NULL, back);
	create(_metadata, self, NULL);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
	ASSERT_EQ(0, cmk_dev_write(self->path, self->plain, AREA_LEN,
				   AREA_OFF, true));
	ASSERT_EQ(0, cmk_dev_read(self->backing, raw, AREA_LEN, AREA_OFF,
				  true));

	EXPECT_EQ(-EOPNOTSUPP, blk_discard(self->path, AREA_OFF, AREA_LEN));
	ASSERT_EQ(0, cmk_dev_read(self->backing, raw2, AREA_LEN, AREA_OFF,
				  true));
	EXPECT_EQ(0, memcmp(raw, raw2, AREA_LEN))
		TH_LOG("ciphertext changed although discards are off");
	ASSERT_EQ(0, cmk_dev_read(self->path, back, AREA_LEN, AREA_OFF, true));
	EXPECT_EQ(0, memcmp(back, self->plain, AREA_LEN));
	free(raw);
	free(raw2);
	free(back);
}

TEST_F(discard_flush, flush_succeeds_while_active)
{
	unsigned char *back = cmk_alloc(AREA_LEN);
	char val[64];
	int fd;

	ASSERT_NE(NULL, back);
	create(_metadata, self, NULL);
	/* precondition: flushes are not dropped before the target */
	ASSERT_EQ(0, dm_queue_attr(DM_NAME, "write_cache", val, sizeof(val)));
	ASSERT_NE(NULL, strstr(val, "write back")) TH_LOG("write_cache: %s", val);

	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
	fd = cmk_open(self->path, false);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, cmk_pwrite(fd, self->plain, AREA_LEN, AREA_OFF));
	EXPECT_EQ(0, fdatasync(fd));
	ASSERT_EQ(0, cmk_pwrite(fd, self->plain, 4096, 0));
	EXPECT_EQ(0, fsync(fd));
	EXPECT_EQ(0, fsync(fd));	/* nothing dirty: an empty flush */
	close(fd);
	ASSERT_EQ(0, cmk_dev_flushbuf(self->path));
	ASSERT_EQ(0, cmk_dev_read(self->path, back, AREA_LEN, AREA_OFF, true));
	EXPECT_EQ(0, memcmp(back, self->plain, AREA_LEN));
	free(back);
}

TEST_F(discard_flush, empty_flush_succeeds_while_sealed_and_wiped)
{
	char val[64];
	int fd;

	create(_metadata, self, NULL);
	ASSERT_EQ(0, dm_queue_attr(DM_NAME, "write_cache", val, sizeof(val)));
	ASSERT_NE(NULL, strstr(val, "write back")) TH_LOG("write_cache: %s", val);

	fd = cmk_open(self->path, false);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, fsync(fd)) TH_LOG("empty flush on a sealed device: %s",
				       strerror(errno));
	close(fd);

	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
	ASSERT_KEY_WIPE(&self->nl, KEY_NAME);
	fd = cmk_open(self->path, false);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, fsync(fd)) TH_LOG("empty flush on a wiped device: %s",
				       strerror(errno));
	close(fd);
}

TEST_HARNESS_MAIN
