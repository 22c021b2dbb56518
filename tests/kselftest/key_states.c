// SPDX-License-Identifier: GPL-2.0
/*
 * key_states - SEALED -> ACTIVE -> WIPED -> ACTIVE, as the contract says.
 *
 * Oracle: the contract.  A new device is sealed and every data I/O fails
 * with EIO without touching the backing device; KEY_SET makes it active;
 * KEY_WIPE makes it wiped (EIO again); a new KEY_SET brings the data back.
 * GET, "dmsetup status" and "dmsetup table" report the state and the table
 * and never contain key bytes (searched raw and in hex, either case, each
 * half on its own), nor does the kernel log.
 */
#include "cmk_test.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define DM_NAME		CMK_DM_PREFIX "st"
#define KEY_NAME	"state-key"
#define DEV_SECTORS	16384ULL	/* 8 MiB */
#define IO_BYTES	65536

FIXTURE(key_states) {
	struct cmk_nl nl;
	struct cmk_table t;
	uint8_t key[DM_CMK_KEY_LEN];
	char path[128];
	unsigned char *raw_before;	/* backing bytes at creation */
};

FIXTURE_SETUP(key_states)
{
	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	cmk_key_make(self->key, 3);
	self->t = (struct cmk_table){
		.len = DEV_SECTORS, .key_name = KEY_NAME, .iv_offset = 16,
		.dev = CMK_RAM(0), .offset = 8,
		/* refusal at once; waiting for a key is hold.c's subject */
		.opts = "sector_size:4096 hold_ms:0",
	};
	self->raw_before = cmk_alloc(IO_BYTES);
	ASSERT_NE(NULL, self->raw_before);
	cmk_fill(self->raw_before, IO_BYTES, 0x777);
	ASSERT_EQ(0, cmk_dev_write(CMK_RAM(0), self->raw_before, IO_BYTES,
				   8 * 512, true));
	ASSERT_CMK_CREATE(DM_NAME, &self->t);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
}

FIXTURE_TEARDOWN(key_states)
{
	free(self->raw_before);
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
}

/*
 * Every kind of data I/O fails with EIO: direct read and write, buffered
 * read, buffered write (its error surfaces at fsync).  The backing device
 * is untouched by the refused writes.
 */
static void expect_io_refused(struct __test_metadata *_metadata,
			      FIXTURE_DATA(key_states) *self)
{
	unsigned char *buf = cmk_alloc(IO_BYTES), *raw = cmk_alloc(IO_BYTES);

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, raw);
	cmk_fill(buf, IO_BYTES, 0x999);
	EXPECT_EQ(-EIO, cmk_dev_read(self->path, buf, IO_BYTES, 0, true));
	EXPECT_EQ(-EIO, cmk_dev_write(self->path, buf, IO_BYTES, 0, true));
	ASSERT_EQ(0, cmk_dev_flushbuf(self->path));
	EXPECT_EQ(-EIO, cmk_dev_read(self->path, buf, 4096, 4096, false));
	EXPECT_EQ(-EIO, cmk_dev_write(self->path, buf, 4096, 8192, false));
	ASSERT_EQ(0, cmk_dev_read(CMK_RAM(0), raw, IO_BYTES, 8 * 512, true));
	EXPECT_EQ(0, memcmp(raw, self->raw_before, IO_BYTES))
		TH_LOG("a refused write reached the backing device");
	free(buf);
	free(raw);
}

TEST_F(key_states, new_device_is_sealed_and_refuses_io)
{
	struct cmk_status st;
	struct cmk_info in;

	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_SEALED);
	ASSERT_STATUS_STATE(DM_NAME, "sealed");
	ASSERT_EQ(0, cmk_dm_status_get(DM_NAME, &st));
	EXPECT_FALSE(st.has_lease);
	expect_io_refused(_metadata, self);

	ASSERT_EQ(0, cmk_dm_status_get(DM_NAME, &st));
	EXPECT_LT(0U, st.refused) TH_LOG("status does not count refusals");
	EXPECT_EQ(0U, st.writes);
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_LT(0U, in.refused);
	EXPECT_FALSE(in.has_lease_left);
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_SEALED);
}

TEST_F(key_states, key_set_activates_device)
{
	unsigned char *buf = cmk_alloc(IO_BYTES), *back = cmk_alloc(IO_BYTES);
	struct cmk_status st;
	struct cmk_info in;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, back);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, 30000, 42);
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_ACTIVE);

	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_TRUE(in.has_generation);
	EXPECT_EQ(42U, in.generation);
	EXPECT_TRUE(in.has_lease_left);
	EXPECT_GE(30000U, in.lease_left_ms);
	EXPECT_STREQ(DM_NAME, in.device);
	EXPECT_EQ(4096U, in.sector_size);

	cmk_fill(buf, IO_BYTES, 0x42);
	ASSERT_EQ(0, cmk_dev_write(self->path, buf, IO_BYTES, 0, true));
	ASSERT_EQ(0, cmk_dev_read(self->path, back, IO_BYTES, 0, true));
	ASSERT_EQ(0, memcmp(buf, back, IO_BYTES));

	ASSERT_STATUS_STATE(DM_NAME, "active");
	ASSERT_EQ(0, cmk_dm_status_get(DM_NAME, &st));
	EXPECT_EQ(42U, st.generation);
	EXPECT_TRUE(st.has_lease);
	EXPECT_GE(30000U, st.lease_left_ms);
	EXPECT_LT(0U, st.reads);
	EXPECT_LT(0U, st.writes);
	EXPECT_EQ(0U, st.io_errors);
	free(buf);
	free(back);
}

TEST_F(key_states, key_wipe_refuses_io_until_key_set_restores_data)
{
	unsigned char *buf = cmk_alloc(IO_BYTES), *back = cmk_alloc(IO_BYTES);
	char ext[256];
	struct cmk_info in;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, back);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 5);
	cmk_fill(buf, IO_BYTES, 0x55);
	ASSERT_EQ(0, cmk_dev_write(self->path, buf, IO_BYTES, 0, true));
	/* what the refused writes must not change from now on */
	ASSERT_EQ(0, cmk_dev_read(CMK_RAM(0), self->raw_before, IO_BYTES,
				  8 * 512, true));

	ASSERT_EQ(0, cmk_key_wipe(&self->nl, KEY_NAME, DM_CMK_REASON_REVOKED,
				  ext, sizeof(ext)))
		TH_LOG("KEY_WIPE: %s", ext);
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_WIPED);
	ASSERT_STATUS_STATE(DM_NAME, "wiped");
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_FALSE(in.has_lease_left);
	expect_io_refused(_metadata, self);

	/* renewing a lease does not bring a wiped key back */
	EXPECT_EQ(-ENOKEY, cmk_lease_renew(&self->nl, KEY_NAME, 10000, ext,
					   sizeof(ext)));
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_WIPED);

	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 6);
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_ACTIVE);
	ASSERT_STATUS_STATE(DM_NAME, "active");
	ASSERT_EQ(0, cmk_dev_read(self->path, back, IO_BYTES, 0, true));
	ASSERT_EQ(0, memcmp(buf, back, IO_BYTES))
		TH_LOG("data written before the wipe does not read back");
	free(buf);
	free(back);
}

/* The UAPI: wiping a device that holds no key succeeds; it stays unusable. */
TEST_F(key_states, key_wipe_without_key_succeeds)
{
	ASSERT_KEY_WIPE(&self->nl, KEY_NAME);
	expect_io_refused(_metadata, self);
}

TEST_F(key_states, lease_renew_of_sealed_device_is_enokey)
{
	char ext[256];

	EXPECT_EQ(-ENOKEY, cmk_lease_renew(&self->nl, KEY_NAME, 10000, ext,
					   sizeof(ext)));
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_SEALED);
}

/* "dmsetup table" prints the table line back (options in any order). */
TEST_F(key_states, table_is_printed_back)
{
	char out[1024], dev[64], devnum[32], opts[256], key_name[80];
	char cipher[64], type[16];
	unsigned long long start, len, ivo, off;
	struct stat sb;
	int nopt, n, pos = 0;

	ASSERT_EQ(0, cmk_dm_table(DM_NAME, false, out, sizeof(out)));
	n = sscanf(out, "%llu %llu %15s %63s %79s %llu %63s %llu %d %n",
		   &start, &len, type, cipher, key_name, &ivo, dev, &off,
		   &nopt, &pos);
	ASSERT_EQ(9, n) TH_LOG("unexpected table '%s'", out);
	EXPECT_EQ(0ULL, start);
	EXPECT_EQ(DEV_SECTORS, len);
	EXPECT_STREQ("cmk", type);
	EXPECT_STREQ("aes-xts-plain64", cipher);
	EXPECT_STREQ(KEY_NAME, key_name);
	EXPECT_EQ(16ULL, ivo);
	EXPECT_EQ(8ULL, off);
	ASSERT_EQ(0, stat(CMK_RAM(0), &sb));
	snprintf(devnum, sizeof(devnum), "%u:%u", major(sb.st_rdev),
		 minor(sb.st_rdev));
	EXPECT_TRUE(!strcmp(dev, devnum) || !strcmp(dev, CMK_RAM(0)))
		TH_LOG("device printed as '%s'", dev);
	/* the one option we gave must be there; defaults may be added */
	snprintf(opts, sizeof(opts), " %s ", out + pos);
	EXPECT_LE(1, nopt);
	EXPECT_NE(NULL, strstr(opts, " sector_size:4096"))
		TH_LOG("options printed as '%s'", out + pos);
}

/*
 * Where a key could leak to userspace, it does not: dmsetup table (also
 * with --showkeys), status, info; GET doit and dump replies; the kernel
 * log written while the key was pushed, used and wiped.
 */
TEST_F(key_states, key_bytes_never_shown)
{
	char out[4096], mark[96];
	unsigned char *buf = cmk_alloc(4096);
	struct cmk_info in;
	char *log;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, cmk_klog_mark(mark, sizeof(mark)));
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 9);
	ASSERT_EQ(0, cmk_dev_write(self->path, buf, 4096, 0, true));

	ASSERT_EQ(0, cmk_dm_table(DM_NAME, false, out, sizeof(out)));
	EXPECT_FALSE(cmk_contains_key(out, strlen(out), self->key));
	ASSERT_EQ(0, cmk_dm_table(DM_NAME, true, out, sizeof(out)));
	EXPECT_FALSE(cmk_contains_key(out, strlen(out), self->key))
		TH_LOG("dmsetup table --showkeys shows the key");
	EXPECT_NE(NULL, strstr(out, KEY_NAME));
	ASSERT_EQ(0, cmk_dm_status(DM_NAME, out, sizeof(out)));
	EXPECT_FALSE(cmk_contains_key(out, strlen(out), self->key));
	ASSERT_EQ(0, cmk_run(out, sizeof(out), "dmsetup", "info", DM_NAME,
			     NULL));
	EXPECT_FALSE(cmk_contains_key(out, strlen(out), self->key));

	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	ASSERT_LT(0U, in.raw_len);
	EXPECT_FALSE(cmk_contains_key(in.raw, in.raw_len, self->key))
		TH_LOG("GET reply contains the key");

	ASSERT_KEY_WIPE(&self->nl, KEY_NAME);
	log = cmk_klog_since(mark);
	ASSERT_NE(NULL, log);
	EXPECT_FALSE(cmk_contains_key(log, strlen(log), self->key))
		TH_LOG("kernel log contains the key");
	free(log);
	free(buf);
}

TEST_HARNESS_MAIN
