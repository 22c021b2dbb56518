// SPDX-License-Identifier: GPL-2.0
/*
 * fault_backing - errors of the device below dm-cmk reach the submitter.
 *
 * dm-cmk sits on a device-mapper device of our own over a RAM disk, whose
 * table is swapped at run time: linear (healthy), dm-flakey (every I/O or
 * every write fails) and dm-dust (chosen 512-byte blocks fail reads).
 * Oracles: the kernel's own error reporting of those targets, and an
 * in-memory model of the data written while the device was healthy.
 * Under a failing backing device, O_DIRECT reads and writes through dm-cmk
 * return EIO (not success, not a hang: each test has a timeout), dm-cmk's
 * io_errors counter grows, its key stays loaded (state active, same
 * generation), the healthy parts of the device still read back the model,
 * and once the backing device is healthy again everything reads back the
 * model.  Leaks of bounce pages or requests are the debug kernel's
 * kmemleak scan after the suite (scripts/qemu/run-guest.sh).
 */
#include "cmk_test.h"

#include <fcntl.h>

#define DEV_SECTORS	8192ULL			/* 4 MiB */
#define MODEL_BYTES	(1ULL << 20)		/* first 1 MiB is modelled */
#define LOWER		CMK_DM_PREFIX "fault-lower"
#define UPPER		CMK_DM_PREFIX "fault"
#define KEY_NAME	"fault-key"
#define BAD_SECTOR	300ULL			/* dm-dust block, 512 B */

FIXTURE(fault_backing) {
	struct cmk_nl nl;
	uint8_t key[DM_CMK_KEY_LEN];
	char path[128];
	char lower_path[128];
	unsigned char *model;
};

/* Load @table into the lower device (suspend, load, resume). */
static int lower_load(const char *table)
{
	char out[512];
	int st;

	st = cmk_dm_reload(LOWER, table, out, sizeof(out));
	if (st) {
		fprintf(stderr, "# reload %s '%s': %s\n", LOWER, table, out);
		return st;
	}
	st = cmk_dm_suspend(LOWER);
	return st ? st : cmk_dm_resume(LOWER);
}

static int lower_linear(void)
{
	char t[256];

	snprintf(t, sizeof(t), "0 %llu linear %s 0", DEV_SECTORS, CMK_RAM(0));
	return lower_load(t);
}

/* dm-flakey that is always down: no feature = every I/O fails. */
static int lower_flakey(const char *features)
{
	char t[256];

	snprintf(t, sizeof(t), "0 %llu flakey %s 0 0 1%s%s", DEV_SECTORS,
		 CMK_RAM(0), features ? " " : "", features ? features : "");
	return lower_load(t);
}

static int lower_message(const char *m1, const char *m2)
{
	char out[256];

	return cmk_run(out, sizeof(out), "dmsetup", "message", LOWER, "0",
		       m1, m2, NULL);
}

FIXTURE_SETUP(fault_backing)
{
	char t[256], out[512];
	struct cmk_table tbl;

	CMK_SETUP_CLEAN();
	/* modules on a stock kernel, built in on the debug kernel */
	cmk_modprobe("dm-flakey");
	cmk_modprobe("dm-dust");
	ASSERT_NL_OPEN(&self->nl);
	snprintf(t, sizeof(t), "0 %llu linear %s 0", DEV_SECTORS, CMK_RAM(0));
	ASSERT_EQ(0, cmk_dm_create(LOWER, t, out, sizeof(out)))
		TH_LOG("dmsetup create %s: %s", LOWER, out);
	cmk_dm_path(self->lower_path, sizeof(self->lower_path), LOWER);
	tbl = (struct cmk_table){
		.len = DEV_SECTORS, .key_name = KEY_NAME,
		.dev = self->lower_path,
	};
	ASSERT_CMK_CREATE(UPPER, &tbl);
	cmk_dm_path(self->path, sizeof(self->path), UPPER);
	cmk_key_make(self->key, 14);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);

	self->model = cmk_alloc(MODEL_BYTES);
	ASSERT_NE(NULL, self->model);
	cmk_fill(self->model, MODEL_BYTES, 0x14);
	ASSERT_EQ(0, cmk_dev_write(self->path, self->model, MODEL_BYTES, 0,
				   true));
}

FIXTURE_TEARDOWN(fault_backing)
{
	free(self->model);
	cmk_nl_close(&self->nl);
	cmk_dm_remove(UPPER);
	cmk_dm_remove(LOWER);
}

/* Key state and io_errors of the device, through GET. */
static int get_info(struct cmk_nl *nl, struct cmk_info *in)
{
	char ext[256];

	return cmk_get(nl, KEY_NAME, in, ext, sizeof(ext));
}

/* Read [off, off + len) of the model area, O_DIRECT, and compare. */
static int model_check(const char *path, const unsigned char *model,
		       size_t off, size_t len)
{
	unsigned char *buf = cmk_alloc(len);
	int err;

	if (!buf)
		return -ENOMEM;
	err = cmk_dev_read(path, buf, len, off, true);
	if (!err && memcmp(buf, model + off, len))
		err = -EBADMSG;
	free(buf);
	return err;
}

/* The key is loaded and unchanged: active, generation 1. */
#define ASSERT_KEY_KEPT(nl) do {					\
	struct cmk_info __in;						\
	ASSERT_EQ(0, get_info((nl), &__in));				\
	ASSERT_EQ((uint32_t)DM_CMK_STATE_ACTIVE, __in.state)			\
		TH_LOG("a backing-device error changed the key state");	\
	ASSERT_EQ(1ULL, (unsigned long long)__in.generation);					\
} while (0)

TEST_F_TIMEOUT(fault_backing, fault_flakey_every_io_eio_key_kept, 300)
{
	unsigned char *buf = cmk_alloc(MODEL_BYTES);
	struct cmk_info before, after;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, get_info(&self->nl, &before));
	ASSERT_EQ(0, lower_flakey(NULL));

	/* 1 MiB: several clones in flight, all of them fail. */
	EXPECT_EQ(-EIO, cmk_dev_read(self->path, buf, MODEL_BYTES, 0, true));
	EXPECT_EQ(-EIO, cmk_dev_read(self->path, buf, 4096, 8192, true));
	cmk_fill(buf, MODEL_BYTES, 0x41);
	EXPECT_EQ(-EIO, cmk_dev_write(self->path, buf, MODEL_BYTES, 0, true));
	EXPECT_EQ(-EIO, cmk_dev_write(self->path, buf, 512, 512, true));

	ASSERT_KEY_KEPT(&self->nl);
	ASSERT_EQ(0, get_info(&self->nl, &after));
	TH_LOG("io_errors %llu -> %llu", (unsigned long long)before.io_errors,
	       (unsigned long long)after.io_errors);
	EXPECT_LT(before.io_errors, after.io_errors)
		TH_LOG("backing-device errors not counted in io_errors");

	/* Healthy again: nothing of the failed writes reached the disk. */
	ASSERT_EQ(0, lower_linear());
	EXPECT_EQ(0, model_check(self->path, self->model, 0, MODEL_BYTES));
	cmk_fill(buf, 65536, 0x42);
	ASSERT_EQ(0, cmk_dev_write(self->path, buf, 65536, 0, true));
	memcpy(self->model, buf, 65536);
	EXPECT_EQ(0, model_check(self->path, self->model, 0, MODEL_BYTES));
	free(buf);
}

TEST_F_TIMEOUT(fault_backing, fault_flakey_error_writes_reads_still_decrypt, 300)
{
	unsigned char *buf = cmk_alloc(65536);

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, lower_flakey("1 error_writes"));
	cmk_fill(buf, 65536, 0x43);
	EXPECT_EQ(-EIO, cmk_dev_write(self->path, buf, 65536, 65536, true));
	/* reads pass through dm-flakey: the model, decrypted */
	EXPECT_EQ(0, model_check(self->path, self->model, 0, MODEL_BYTES));
	ASSERT_KEY_KEPT(&self->nl);
	ASSERT_EQ(0, lower_linear());
	EXPECT_EQ(0, model_check(self->path, self->model, 0, MODEL_BYTES));
	free(buf);
}

TEST_F_TIMEOUT(fault_backing, fault_dust_bad_block_eio_rest_intact, 300)
{
	char t[256], blk[32], targets[1024];
	unsigned char *buf;
	size_t bad_off = BAD_SECTOR * CMK_SECTOR;
	size_t page = bad_off & ~4095ULL;

	/* Debian's stock kernels have no dm-dust (CONFIG_DM_DUST) */
	ASSERT_EQ(0, cmk_run(targets, sizeof(targets), "dmsetup", "targets",
			     NULL));
	if (!strstr(targets, "dust "))
		SKIP(return, "no dm-dust in this kernel");
	buf = cmk_alloc(4096);
	ASSERT_NE(NULL, buf);
	snprintf(t, sizeof(t), "0 %llu dust %s 0 512", DEV_SECTORS,
		 CMK_RAM(0));
	ASSERT_EQ(0, lower_load(t));
	snprintf(blk, sizeof(blk), "%llu", BAD_SECTOR);
	ASSERT_EQ(0, lower_message("addbadblock", blk));
	ASSERT_EQ(0, lower_message("enable", NULL));

	/* The page that holds the bad block fails, its neighbours do not. */
	EXPECT_EQ(-EIO, cmk_dev_read(self->path, buf, 4096, page, true));
	EXPECT_EQ(-EIO, cmk_dev_read(self->path, buf, 512, bad_off, true));
	EXPECT_EQ(0, model_check(self->path, self->model, 0, page));
	EXPECT_EQ(0, model_check(self->path, self->model, page + 4096,
				 MODEL_BYTES - page - 4096));
	ASSERT_KEY_KEPT(&self->nl);

	/* A write over the bad block clears it (dm-dust): readable again. */
	cmk_fill(buf, 4096, 0x44);
	ASSERT_EQ(0, cmk_dev_write(self->path, buf, 4096, page, true));
	memcpy(self->model + page, buf, 4096);
	EXPECT_EQ(0, model_check(self->path, self->model, 0, MODEL_BYTES));
	ASSERT_EQ(0, lower_linear());
	EXPECT_EQ(0, model_check(self->path, self->model, 0, MODEL_BYTES));
	free(buf);
}

TEST_HARNESS_MAIN
