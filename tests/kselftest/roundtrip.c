// SPDX-License-Identifier: GPL-2.0
/*
 * roundtrip - data written through dm-cmk reads back identical.
 *
 * Oracle: an in-memory model of the mapped device.  Every write is applied
 * to the model too; after dropping the page cache (BLKFLSBUF) the device
 * must read back exactly the model, by direct and by buffered I/O, for
 * several sizes and offsets, with 512- and 4096-byte encryption sectors and
 * with inline (no workqueue) crypto.
 */
#include "cmk_test.h"

#include <fcntl.h>

#define DEV_SECTORS	32768ULL		/* 16 MiB */
#define MODEL_BYTES	(2ULL << 20)		/* first 2 MiB are modelled */

FIXTURE(roundtrip) {
	struct cmk_nl nl;
	struct cmk_table t;
	uint8_t key[DM_CMK_KEY_LEN];
	char path[128];
	unsigned char *model;
};

FIXTURE_VARIANT(roundtrip) {
	const char *opts;
	unsigned int sector_size;
};

FIXTURE_VARIANT_ADD(roundtrip, sector512) {
	.opts = NULL, .sector_size = 512,
};

FIXTURE_VARIANT_ADD(roundtrip, sector4096) {
	.opts = "sector_size:4096", .sector_size = 4096,
};

FIXTURE_VARIANT_ADD(roundtrip, sector4096_iv_large_sectors) {
	.opts = "sector_size:4096 iv_large_sectors", .sector_size = 4096,
};

FIXTURE_VARIANT_ADD(roundtrip, sector4096_no_workqueues) {
	.opts = "sector_size:4096 no_read_workqueue no_write_workqueue",
	.sector_size = 4096,
};

#define DM_NAME	CMK_DM_PREFIX "rt"
#define KEY_NAME "rt-key"

FIXTURE_SETUP(roundtrip)
{
	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	self->t = (struct cmk_table){
		.len = DEV_SECTORS, .key_name = KEY_NAME, .dev = CMK_RAM(0),
		.opts = variant->opts,
	};
	cmk_key_make(self->key, 1);
	ASSERT_CMK_CREATE(DM_NAME, &self->t);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);

	/* Known starting content for the modelled area. */
	self->model = cmk_alloc(MODEL_BYTES);
	ASSERT_NE(NULL, self->model);
	cmk_fill(self->model, MODEL_BYTES, 0x1000);
	ASSERT_EQ(0, cmk_dev_write(self->path, self->model, MODEL_BYTES, 0,
				   true));
}

FIXTURE_TEARDOWN(roundtrip)
{
	free(self->model);
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
}

/* Read the whole model area back (cache dropped first) and compare. */
static int verify_model(const char *path, const unsigned char *model,
			bool direct)
{
	unsigned char *buf = cmk_alloc(MODEL_BYTES);
	int err;

	if (!buf)
		return -ENOMEM;
	err = cmk_dev_flushbuf(path);
	if (!err)
		err = cmk_dev_read(path, buf, MODEL_BYTES, 0, direct);
	if (!err && memcmp(buf, model, MODEL_BYTES)) {
		size_t i = 0;

		while (buf[i] == model[i])
			i++;
		fprintf(stderr, "# first mismatch at byte %zu\n", i);
		err = -EBADMSG;
	}
	free(buf);
	return err;
}

/* Direct I/O, several aligned sizes and offsets, then read back. */
TEST_F(roundtrip, direct_io_reads_back_written_data)
{
	const unsigned int ss = variant->sector_size;
	const struct { size_t off, len; } io[] = {
		{ 0, 1 }, { 1, 1 }, { 3, 2 }, { 8, 8 }, { 17, 31 },
		{ 64, 64 }, { 130, 1 }, { 200, 56 }, { 300, 200 },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(io); i++) {
		size_t off = io[i].off * ss, len = io[i].len * ss;
		unsigned char *buf;

		if (off + len > MODEL_BYTES)
			continue;
		buf = malloc(len);
		ASSERT_NE(NULL, buf);
		cmk_fill(buf, len, 0x2000 + i);
		ASSERT_EQ(0, cmk_dev_write(self->path, buf, len, (off_t)off,
					   true))
			TH_LOG("direct write %zu@%zu", len, off);
		memcpy(self->model + off, buf, len);
		memset(buf, 0, len);
		/* immediate read-back of the same extent */
		ASSERT_EQ(0, cmk_dev_read(self->path, buf, len, (off_t)off,
					  true));
		ASSERT_EQ(0, memcmp(buf, self->model + off, len))
			TH_LOG("direct read-back %zu@%zu differs", len, off);
		free(buf);
	}
	ASSERT_EQ(0, verify_model(self->path, self->model, true));
	ASSERT_EQ(0, verify_model(self->path, self->model, false));
}

/* Buffered I/O at unaligned offsets and odd sizes (read-modify-write). */
TEST_F(roundtrip, buffered_io_reads_back_written_data)
{
	const struct { size_t off, len; } io[] = {
		{ 1, 100 }, { 511, 2 }, { 4095, 4097 }, { 12345, 65536 },
		{ 100000, 1 }, { 262143, 300000 }, { MODEL_BYTES - 7, 7 },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(io); i++) {
		unsigned char *buf = malloc(io[i].len);

		ASSERT_NE(NULL, buf);
		cmk_fill(buf, io[i].len, 0x3000 + i);
		ASSERT_EQ(0, cmk_dev_write(self->path, buf, io[i].len,
					   (off_t)io[i].off, false))
			TH_LOG("buffered write %zu@%zu", io[i].len, io[i].off);
		memcpy(self->model + io[i].off, buf, io[i].len);
		free(buf);
	}
	ASSERT_EQ(0, verify_model(self->path, self->model, false));
	ASSERT_EQ(0, verify_model(self->path, self->model, true));
}

/* The last sectors of the device are as usable as the first ones. */
TEST_F(roundtrip, end_of_device_reads_back)
{
	const size_t len = 64 * 1024;
	const off_t off = (off_t)(DEV_SECTORS * CMK_SECTOR - len);
	unsigned char *buf = malloc(len), *back = malloc(len);
	uint64_t size = 0;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, back);
	ASSERT_EQ(0, cmk_dev_size(self->path, &size));
	ASSERT_EQ(DEV_SECTORS * CMK_SECTOR, size);
	cmk_fill(buf, len, 0x4000);
	ASSERT_EQ(0, cmk_dev_write(self->path, buf, len, off, true));
	ASSERT_EQ(0, cmk_dev_read(self->path, back, len, off, true));
	ASSERT_EQ(0, memcmp(buf, back, len));
	free(buf);
	free(back);
}

/*
 * Data outlives the mapped device: remove it, create it again with the
 * same table and push the same key, and the data is still there.
 */
TEST_F(roundtrip, data_survives_device_recreate)
{
	ASSERT_DM_REMOVE(DM_NAME);
	ASSERT_CMK_CREATE(DM_NAME, &self->t);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 2);
	ASSERT_EQ(0, verify_model(self->path, self->model, true));
}

/*
 * Another key (on a second device over the same blocks: a device only
 * ever takes its first key) reads other data: no sector decrypts to what
 * was written (XTS under a different key), and the first device still
 * reads the data intact.
 */
TEST_F(roundtrip, other_key_reads_other_data)
{
	struct cmk_table t = self->t;
	uint8_t other[DM_CMK_KEY_LEN];
	unsigned char *buf = cmk_alloc(MODEL_BYTES);
	char path[128];
	size_t s, same = 0;

	ASSERT_NE(NULL, buf);
	t.key_name = KEY_NAME "-other";
	ASSERT_CMK_CREATE(DM_NAME "-other", &t);
	cmk_dm_path(path, sizeof(path), DM_NAME "-other");
	cmk_key_make(other, 2);
	ASSERT_KEY_SET(&self->nl, t.key_name, other, CMK_LEASE_LONG, 2);
	ASSERT_EQ(0, cmk_dev_read(path, buf, MODEL_BYTES, 0, true));
	for (s = 0; s < MODEL_BYTES; s += 512)
		same += !memcmp(buf + s, self->model + s, 512);
	EXPECT_EQ(0U, same)
		TH_LOG("%zu sectors decrypt identically under another key",
		       same);
	ASSERT_DM_REMOVE(DM_NAME "-other");

	ASSERT_EQ(0, verify_model(self->path, self->model, true));
	free(buf);
}

/* Like dm-crypt, the encryption sector is the device's logical block. */
TEST_F(roundtrip, logical_block_size_is_sector_size)
{
	char kname[64], path[256], val[32];
	unsigned char *buf = cmk_alloc(8192);
	int fd, fdd;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, cmk_dm_kname(DM_NAME, kname, sizeof(kname)));
	snprintf(path, sizeof(path), "/sys/block/%s/queue/logical_block_size",
		 kname);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	memset(val, 0, sizeof(val));
	ASSERT_LT(0, read(fd, val, sizeof(val) - 1));
	close(fd);
	ASSERT_EQ(variant->sector_size, (unsigned int)atoi(val));

	/* a direct read smaller than the logical block is refused */
	if (variant->sector_size > 512) {
		fdd = cmk_open(self->path, true);
		ASSERT_LE(0, fdd);
		EXPECT_EQ(-EINVAL, cmk_pread(fdd, buf, 512, 512));
		close(fdd);
	}
	free(buf);
}

TEST_HARNESS_MAIN
