// SPDX-License-Identifier: GPL-2.0
/*
 * interop_dmcrypt - dm-cmk ciphertext is bit-identical to dm-crypt's.
 *
 * Oracle: the kernel's own dm-crypt with "aes-xts-plain64", the same 64-byte
 * key and the same iv_offset, offset, sector_size and iv_large_sectors.
 * Two backing devices start with identical bytes; the same plaintext is
 * written through dm-cmk on one and through dm-crypt on the other; the
 * backing devices must then be identical byte for byte (including the area
 * before the data offset, which neither may touch).  And each target must
 * read back what the other one wrote.
 */
#include "cmk_test.h"

#define DATA_SECTORS	4096ULL			/* 2 MiB of data */
#define DATA_BYTES	(DATA_SECTORS * CMK_SECTOR)

#define CMK_DM		CMK_DM_PREFIX "io-cmk"
#define CRYPT_DM	CMK_DM_PREFIX "io-crypt"
#define KEY_NAME	"interop"

FIXTURE(interop_dmcrypt) {
	struct cmk_nl nl;
	struct cmk_table t;
	uint8_t key[DM_CMK_KEY_LEN];
	unsigned char *plain;
	size_t raw_bytes;		/* offset area + data area */
};

FIXTURE_VARIANT(interop_dmcrypt) {
	const char *opts;
	uint64_t offset;		/* sectors */
	uint64_t iv_offset;		/* sectors */
};

/*
 * 512 and 4096-byte sectors, iv_large_sectors, non-zero offset and
 * iv_offset (in 512-byte units, also with 4096-byte sectors), an iv_offset
 * that wraps, inline crypto forced, the workqueue forced, and (by
 * default) dm-cmk's own choice between them per bio.
 */
FIXTURE_VARIANT_ADD(interop_dmcrypt, sector512) {
	.opts = NULL,
};

FIXTURE_VARIANT_ADD(interop_dmcrypt, sector512_offset_and_iv_offset) {
	.opts = NULL, .offset = 2049, .iv_offset = 987654321,
};

FIXTURE_VARIANT_ADD(interop_dmcrypt, sector4096_offset_and_iv_offset) {
	.opts = "sector_size:4096", .offset = 4104, .iv_offset = 8000024,
};

FIXTURE_VARIANT_ADD(interop_dmcrypt, sector4096_iv_large_offset_and_iv_offset) {
	.opts = "sector_size:4096 iv_large_sectors", .offset = 8,
	.iv_offset = 123456,
};

/* sector + iv_offset wraps around 2^64: dm-crypt computes modulo 2^64 */
FIXTURE_VARIANT_ADD(interop_dmcrypt, sector512_iv_offset_wraps) {
	.opts = NULL, .iv_offset = 18446744073709551608ULL,
};

FIXTURE_VARIANT_ADD(interop_dmcrypt, sector512_no_workqueues) {
	.opts = "no_read_workqueue no_write_workqueue", .offset = 1,
	.iv_offset = 5,
};

FIXTURE_VARIANT_ADD(interop_dmcrypt, sector512_force_workqueue) {
	.opts = "force_workqueue", .offset = 3, .iv_offset = 77,
};

FIXTURE_VARIANT_ADD(interop_dmcrypt, sector4096_force_workqueue) {
	.opts = "sector_size:4096 force_workqueue", .offset = 8,
	.iv_offset = 64,
};

FIXTURE_SETUP(interop_dmcrypt)
{
	unsigned char *pre;

	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	cmk_key_make(self->key, 100);
	self->t = (struct cmk_table){
		.len = DATA_SECTORS, .key_name = KEY_NAME,
		.iv_offset = variant->iv_offset, .offset = variant->offset,
		.opts = variant->opts,
	};
	self->raw_bytes = (size_t)((variant->offset + DATA_SECTORS) *
				   CMK_SECTOR);
	ASSERT_LE(self->raw_bytes, CMK_RAM_BYTES);

	/* Both backing devices start out with the same (random) bytes. */
	pre = cmk_alloc(self->raw_bytes);
	ASSERT_NE(NULL, pre);
	cmk_fill(pre, self->raw_bytes, 0x5151);
	ASSERT_EQ(0, cmk_dev_write(CMK_RAM(0), pre, self->raw_bytes, 0, true));
	ASSERT_EQ(0, cmk_dev_write(CMK_RAM(1), pre, self->raw_bytes, 0, true));
	free(pre);

	self->plain = cmk_alloc(DATA_BYTES);
	ASSERT_NE(NULL, self->plain);
	cmk_fill(self->plain, DATA_BYTES, 0xabcdef);
}

FIXTURE_TEARDOWN(interop_dmcrypt)
{
	free(self->plain);
	cmk_nl_close(&self->nl);
	cmk_dm_remove(CMK_DM);
	cmk_dm_remove(CRYPT_DM);
}

static int create_cmk(struct __test_metadata *_metadata,
		      FIXTURE_DATA(interop_dmcrypt) *self, const char *dev)
{
	struct cmk_table t = self->t;

	t.dev = dev;
	ASSERT_CMK_CREATE(CMK_DM, &t);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
	return 0;
}

static int create_crypt(struct __test_metadata *_metadata,
			FIXTURE_DATA(interop_dmcrypt) *self, const char *dev)
{
	struct cmk_table t = self->t;

	t.dev = dev;
	ASSERT_CRYPT_CREATE(CRYPT_DM, &t, self->key);
	return 0;
}

/*
 * Write the plaintext in a few differently sized pieces, direct and
 * buffered, so that bios of several shapes go through the target.
 */
static int write_plain(const char *dm, const unsigned char *plain)
{
	char path[128];
	int err;

	cmk_dm_path(path, sizeof(path), dm);
	err = cmk_dev_write(path, plain, DATA_BYTES / 2, 0, true);
	if (!err)
		err = cmk_dev_write(path, plain + DATA_BYTES / 2, 65536,
				    DATA_BYTES / 2, true);
	if (!err)
		err = cmk_dev_write(path, plain + DATA_BYTES / 2 + 65536,
				    DATA_BYTES / 2 - 65536,
				    DATA_BYTES / 2 + 65536, false);
	return err;
}

TEST_F(interop_dmcrypt, ciphertext_equals_dmcrypt)
{
	unsigned char *a = cmk_alloc(self->raw_bytes);
	unsigned char *b = cmk_alloc(self->raw_bytes);
	size_t data_off = (size_t)(variant->offset * CMK_SECTOR), i;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	create_cmk(_metadata, self, CMK_RAM(0));
	create_crypt(_metadata, self, CMK_RAM(1));
	ASSERT_EQ(0, write_plain(CMK_DM, self->plain));
	ASSERT_EQ(0, write_plain(CRYPT_DM, self->plain));
	ASSERT_DM_REMOVE(CMK_DM);
	ASSERT_DM_REMOVE(CRYPT_DM);

	ASSERT_EQ(0, cmk_dev_read(CMK_RAM(0), a, self->raw_bytes, 0, true));
	ASSERT_EQ(0, cmk_dev_read(CMK_RAM(1), b, self->raw_bytes, 0, true));
	/* sanity: the data area holds ciphertext, not the plaintext */
	ASSERT_NE(0, memcmp(a + data_off, self->plain, 4096));
	for (i = 0; i < self->raw_bytes && a[i] == b[i]; i++)
		;
	ASSERT_EQ(self->raw_bytes, i)
		TH_LOG("backing devices differ first at byte %zu (data starts at %zu)",
		       i, data_off);
	free(a);
	free(b);
}

TEST_F(interop_dmcrypt, dmcrypt_reads_what_cmk_wrote)
{
	unsigned char *back = cmk_alloc(DATA_BYTES);
	char path[128];

	ASSERT_NE(NULL, back);
	create_cmk(_metadata, self, CMK_RAM(0));
	ASSERT_EQ(0, write_plain(CMK_DM, self->plain));
	ASSERT_DM_REMOVE(CMK_DM);

	create_crypt(_metadata, self, CMK_RAM(0));
	cmk_dm_path(path, sizeof(path), CRYPT_DM);
	ASSERT_EQ(0, cmk_dev_read(path, back, DATA_BYTES, 0, true));
	ASSERT_EQ(0, memcmp(back, self->plain, DATA_BYTES))
		TH_LOG("dm-crypt does not decrypt what dm-cmk wrote");
	free(back);
}

TEST_F(interop_dmcrypt, cmk_reads_what_dmcrypt_wrote)
{
	unsigned char *back = cmk_alloc(DATA_BYTES);
	char path[128];

	ASSERT_NE(NULL, back);
	create_crypt(_metadata, self, CMK_RAM(1));
	ASSERT_EQ(0, write_plain(CRYPT_DM, self->plain));
	ASSERT_DM_REMOVE(CRYPT_DM);

	create_cmk(_metadata, self, CMK_RAM(1));
	cmk_dm_path(path, sizeof(path), CMK_DM);
	ASSERT_EQ(0, cmk_dev_read(path, back, DATA_BYTES, 0, true));
	ASSERT_EQ(0, memcmp(back, self->plain, DATA_BYTES))
		TH_LOG("dm-cmk does not decrypt what dm-crypt wrote");
	ASSERT_EQ(0, cmk_dev_read(path, back, DATA_BYTES, 0, false));
	ASSERT_EQ(0, memcmp(back, self->plain, DATA_BYTES))
		TH_LOG("buffered read differs from dm-crypt's plaintext");
	free(back);
}

TEST_HARNESS_MAIN
