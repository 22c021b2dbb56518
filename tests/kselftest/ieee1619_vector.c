// SPDX-License-Identifier: GPL-2.0
/*
 * ieee1619_vector - IEEE 1619 test vector "XTS-AES 10" through the block
 * device.
 *
 * Oracle: the published known answer (XTS-AES-256, 512-byte data unit with
 * sequence number 0xff), taken at build time from the kernel's
 * crypto/testmgr.h.  plain64 uses the little-endian 512-byte sector number
 * plus iv_offset as the tweak, so a data unit at mapped sector S with
 * iv_offset 0xff - S is data unit 0xff.  The same vector is also checked
 * through dm-crypt, to prove the plumbing of the test itself.
 */
#include "cmk_test.h"
#include "xts_vector.h"

static const uint8_t xts10_key[DM_CMK_KEY_LEN] = XTS10_KEY;
static const uint8_t xts10_ptext[512] = XTS10_PTEXT;
static const uint8_t xts10_ctext[512] = XTS10_CTEXT;

/* The generated literals must have exactly the expected lengths. */
_Static_assert(sizeof(XTS10_KEY) == DM_CMK_KEY_LEN + 1, "XTS-AES 10 key");
_Static_assert(sizeof(XTS10_PTEXT) == 512 + 1, "XTS-AES 10 plaintext");
_Static_assert(sizeof(XTS10_CTEXT) == 512 + 1, "XTS-AES 10 ciphertext");

#define DM_NAME		CMK_DM_PREFIX "ieee"
#define KEY_NAME	"ieee1619"
#define DEV_SECTORS	2048ULL

FIXTURE(ieee1619_vector) {
	struct cmk_nl nl;
	char path[128];
};

FIXTURE_VARIANT(ieee1619_vector) {
	uint64_t sector;	/* mapped sector that holds data unit 0xff */
	uint64_t offset;	/* data offset on the backing device */
	bool dmcrypt;		/* run the vector through dm-crypt instead */
};

FIXTURE_VARIANT_ADD(ieee1619_vector, cmk_sector0) {
	.sector = 0, .offset = 0,
};

FIXTURE_VARIANT_ADD(ieee1619_vector, cmk_sector37_offset100) {
	.sector = 37, .offset = 100,
};

FIXTURE_VARIANT_ADD(ieee1619_vector, dmcrypt_sector37_offset100) {
	.sector = 37, .offset = 100, .dmcrypt = true,
};

FIXTURE_SETUP(ieee1619_vector)
{
	struct cmk_table t = {
		.len = DEV_SECTORS, .key_name = KEY_NAME,
		.iv_offset = XTS10_DATA_UNIT - variant->sector,
		.dev = CMK_RAM(0), .offset = variant->offset,
	};

	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	ASSERT_NE(0, memcmp(xts10_ptext, xts10_ctext, 512));
	if (variant->dmcrypt) {
		ASSERT_CRYPT_CREATE(DM_NAME, &t, xts10_key);
	} else {
		ASSERT_CMK_CREATE(DM_NAME, &t);
		ASSERT_KEY_SET(&self->nl, KEY_NAME, xts10_key, CMK_LEASE_LONG,
			       1);
	}
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
}

FIXTURE_TEARDOWN(ieee1619_vector)
{
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
}

/* Encrypt: plaintext in through the target, known ciphertext on disk. */
TEST_F(ieee1619_vector, xts_aes_10_encrypt)
{
	const off_t raw_off = (off_t)((variant->offset + variant->sector) *
				      CMK_SECTOR);
	uint8_t raw[512];

	ASSERT_EQ(0, cmk_dev_write(self->path, xts10_ptext, 512,
				   (off_t)(variant->sector * CMK_SECTOR),
				   true));
	ASSERT_EQ(0, cmk_dev_read(CMK_RAM(0), raw, 512, raw_off, true));
	ASSERT_EQ(0, memcmp(raw, xts10_ctext, 512))
		TH_LOG("backing device does not hold the XTS-AES 10 ciphertext");
}

/* Decrypt: known ciphertext on disk, plaintext out through the target. */
TEST_F(ieee1619_vector, xts_aes_10_decrypt)
{
	const off_t raw_off = (off_t)((variant->offset + variant->sector) *
				      CMK_SECTOR);
	uint8_t back[512];

	ASSERT_EQ(0, cmk_dev_write(CMK_RAM(0), xts10_ctext, 512, raw_off,
				   true));
	ASSERT_EQ(0, cmk_dev_read(self->path, back, 512,
				  (off_t)(variant->sector * CMK_SECTOR), true));
	ASSERT_EQ(0, memcmp(back, xts10_ptext, 512))
		TH_LOG("XTS-AES 10 ciphertext does not decrypt to its plaintext");
}

/* The neighbouring sector is another data unit: another ciphertext. */
TEST_F(ieee1619_vector, next_sector_is_next_data_unit)
{
	const off_t raw_off = (off_t)((variant->offset + variant->sector + 1) *
				      CMK_SECTOR);
	uint8_t raw[512];

	ASSERT_EQ(0, cmk_dev_write(self->path, xts10_ptext, 512,
				   (off_t)((variant->sector + 1) * CMK_SECTOR),
				   true));
	ASSERT_EQ(0, cmk_dev_read(CMK_RAM(0), raw, 512, raw_off, true));
	ASSERT_NE(0, memcmp(raw, xts10_ctext, 512));
	ASSERT_NE(0, memcmp(raw, xts10_ptext, 512));
}

TEST_HARNESS_MAIN
