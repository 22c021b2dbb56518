// SPDX-License-Identifier: GPL-2.0
/*
 * no_plaintext - no plaintext block ever reaches the backing device.
 *
 * Oracle: invariants of XTS.  A recognisable text written through the
 * target must not appear anywhere on the backing device (searched at every
 * alignment), equal plaintext sectors must give pairwise different
 * ciphertext (the tweak changes with the sector), and all-zero plaintext
 * must not leave all-zero 16-byte blocks behind.
 */
#include "cmk_test.h"

#define DM_NAME		CMK_DM_PREFIX "np"
#define KEY_NAME	"no-plaintext"
#define DATA_BYTES	(4ULL << 20)
#define DATA_SECTORS	(DATA_BYTES / CMK_SECTOR)

static const char canary[] = "dm-cmk PLAINTEXT CANARY: if you can read this on the backing device, encryption failed. ";

FIXTURE(no_plaintext) {
	struct cmk_nl nl;
	char path[128];
	unsigned char *buf;
};

FIXTURE_VARIANT(no_plaintext) {
	const char *opts;
};

FIXTURE_VARIANT_ADD(no_plaintext, sector512) {
	.opts = NULL,
};

FIXTURE_VARIANT_ADD(no_plaintext, sector4096) {
	.opts = "sector_size:4096",
};

FIXTURE_SETUP(no_plaintext)
{
	struct cmk_table t = {
		.len = DATA_SECTORS, .key_name = KEY_NAME, .dev = CMK_RAM(0),
		.opts = variant->opts,
	};
	uint8_t key[DM_CMK_KEY_LEN];

	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	/* start from zeros so that leftovers of other tests cannot match */
	self->buf = cmk_alloc(DATA_BYTES);
	ASSERT_NE(NULL, self->buf);
	ASSERT_EQ(0, cmk_dev_write(CMK_RAM(0), self->buf, DATA_BYTES, 0,
				   true));
	ASSERT_CMK_CREATE(DM_NAME, &t);
	cmk_key_make(key, 7);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, key, CMK_LEASE_LONG, 1);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
}

FIXTURE_TEARDOWN(no_plaintext)
{
	free(self->buf);
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
}

static int cmp_sector(const void *a, const void *b)
{
	return memcmp(a, b, CMK_SECTOR);
}

TEST_F(no_plaintext, canary_text_absent_from_backing_device)
{
	const size_t clen = strlen(canary);
	size_t i, phase;

	for (i = 0; i < DATA_BYTES; i++)
		self->buf[i] = canary[i % clen];
	ASSERT_EQ(0, cmk_dev_write(self->path, self->buf, DATA_BYTES / 2, 0,
				   true));
	ASSERT_EQ(0, cmk_dev_write(self->path, self->buf + DATA_BYTES / 2,
				   DATA_BYTES / 2, DATA_BYTES / 2, false));
	/* the target reads it back, so it was really written */
	memset(self->buf, 0, DATA_BYTES);
	ASSERT_EQ(0, cmk_dev_flushbuf(self->path));
	ASSERT_EQ(0, cmk_dev_read(self->path, self->buf, DATA_BYTES, 0, true));
	ASSERT_EQ(0, memcmp(self->buf, canary, clen));

	ASSERT_EQ(0, cmk_dev_read(CMK_RAM(0), self->buf, DATA_BYTES, 0, true));
	/* any 16 consecutive canary bytes, at any phase of the text */
	for (phase = 0; phase < clen; phase++) {
		char needle[16];

		for (i = 0; i < sizeof(needle); i++)
			needle[i] = canary[(phase + i) % clen];
		ASSERT_EQ(NULL, memmem(self->buf, DATA_BYTES, needle,
				       sizeof(needle)))
			TH_LOG("plaintext found on the backing device (phase %zu)",
			       phase);
	}
}

TEST_F(no_plaintext, equal_sectors_encrypt_differently)
{
	const size_t n = DATA_BYTES / CMK_SECTOR;
	size_t i;

	/* every 512-byte sector holds the same plaintext */
	for (i = 0; i < n; i++)
		memset(self->buf + i * CMK_SECTOR, 0xa5, CMK_SECTOR);
	ASSERT_EQ(0, cmk_dev_write(self->path, self->buf, DATA_BYTES, 0,
				   true));
	ASSERT_EQ(0, cmk_dev_read(CMK_RAM(0), self->buf, DATA_BYTES, 0, true));
	qsort(self->buf, n, CMK_SECTOR, cmp_sector);
	for (i = 1; i < n; i++)
		ASSERT_NE(0, memcmp(self->buf + (i - 1) * CMK_SECTOR,
				    self->buf + i * CMK_SECTOR, CMK_SECTOR))
			TH_LOG("two sectors have identical ciphertext");
}

TEST_F(no_plaintext, zero_plaintext_leaves_no_zero_blocks)
{
	static const unsigned char zero[16];
	size_t i, zeros = 0;

	/* fill the backing device with 0xff so a skipped write shows too */
	memset(self->buf, 0xff, DATA_BYTES);
	ASSERT_EQ(0, cmk_dev_write(CMK_RAM(0), self->buf, DATA_BYTES, 0,
				   true));
	memset(self->buf, 0, DATA_BYTES);
	ASSERT_EQ(0, cmk_dev_write(self->path, self->buf, DATA_BYTES, 0,
				   true));
	ASSERT_EQ(0, cmk_dev_read(CMK_RAM(0), self->buf, DATA_BYTES, 0, true));
	for (i = 0; i < DATA_BYTES; i += 16) {
		static const unsigned char ff[16] = {
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		};

		zeros += !memcmp(self->buf + i, zero, 16);
		ASSERT_NE(0, memcmp(self->buf + i, ff, 16))
			TH_LOG("block at %zu was not written", i);
	}
	ASSERT_EQ(0U, zeros) TH_LOG("%zu all-zero blocks on the backing device",
				    zeros);
}

TEST_HARNESS_MAIN
