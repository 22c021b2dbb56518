// SPDX-License-Identifier: GPL-2.0
/*
 * test_header.c - the device header.
 * Oracles: the byte table in Documentation/formats.rst (hard-coded here),
 * SHA-256 and AES-256-GCM computed with OpenSSL EVP in the test, and the
 * invariant "after any torn write, the device still has a valid header
 * that is either the old or the new one".
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/codec.h"
#include "format/header.h"
#include "core/keys.h"

#define DEV_SIZE (2 * 1024 * 1024)

struct fx {
	int fd;
	struct cmk_secret *kek, *dek;
	uint8_t kek_id[16];
};

static int setup(void **state)
{
	static struct fx fx;
	struct cmk_err e;

	if (tu_setup_tmpdir(state))
		return -1;
	memset(&fx, 0, sizeof(fx));
	fx.fd = open(tu_path("dev.img"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fx.fd < 0 || ftruncate(fx.fd, DEV_SIZE))
		return -1;
	if (cmk_kek_generate(&fx.kek, &e) || cmk_dek_generate(&fx.dek, &e) ||
	    cmk_uuid_generate(fx.kek_id, &e))
		return -1;
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	close(fx->fd);
	cmk_secret_free(&fx->kek);
	cmk_secret_free(&fx->dek);
	return tu_teardown_tmpdir(state);
}

static void format(struct fx *fx, enum cmk_mode mode, struct cmk_header *h)
{
	struct cmk_err e;

	assert_int_equal(cmk_header_init(h, mode, 4096, fx->kek_id, 1, &e), 0);
	if (cmk_header_write(fx->fd, h, fx->kek, fx->dek, &e))
		fail_msg("write: %s", e.msg);
}

static void read_raw(int fd, off_t off, uint8_t *buf)
{
	assert_int_equal(pread(fd, buf, CMK_HDR_SIZE, off), CMK_HDR_SIZE);
}

static void write_raw(int fd, off_t off, const uint8_t *buf)
{
	assert_int_equal(pwrite(fd, buf, CMK_HDR_SIZE, off), CMK_HDR_SIZE);
}

/* SHA-256 by EVP, independent of the library's encoder. */
static void fix_checksum(uint8_t *b)
{
	unsigned int len = 32;

	assert_int_equal(EVP_Digest(b, 4064, b + 4064, &len, EVP_sha256(), NULL), 1);
}

static void assert_dek(const struct cmk_header *h, const struct cmk_secret *kek,
		       const struct cmk_secret *want)
{
	struct cmk_secret *dek = NULL;
	struct cmk_err e;

	if (cmk_header_unwrap_dek(h, kek, &dek, &e))
		fail_msg("unwrap: %s", e.msg);
	assert_true(cmk_secret_equal(dek, want));
	cmk_secret_free(&dek);
}

static void header_layout_matches_documentation(void **state)
{
	static const struct { const char *name; size_t off, size; } doc[] = {
		{ "magic", 0, 8 }, { "version", 8, 4 }, { "header_size", 12, 4 },
		{ "device_uuid", 16, 16 }, { "sequence", 32, 8 }, { "mode", 40, 4 },
		{ "sector_size", 44, 4 }, { "cipher", 48, 32 },
		{ "data_offset", 80, 8 }, { "kek_id", 88, 16 },
		{ "kek_version", 104, 4 }, { "wrap_alg", 108, 4 },
		{ "boot_id", 112, 16 }, { "write_time", 128, 8 },
		{ "dek_len", 136, 4 }, { "flags", 140, 4 },
		{ "dek_nonce", 144, 12 }, { "wrapped_dek", 156, 64 },
		{ "dek_tag", 220, 16 }, { "reserved", 236, 3828 },
		{ "checksum", 4064, 32 },
	};
	size_t end = 0;

	(void)state;
	assert_int_equal(cmk_header_nfields, sizeof(doc) / sizeof(doc[0]));
	for (size_t i = 0; i < cmk_header_nfields; i++) {
		assert_string_equal(cmk_header_fields[i].name, doc[i].name);
		assert_int_equal(cmk_header_fields[i].off, doc[i].off);
		assert_int_equal(cmk_header_fields[i].size, doc[i].size);
		assert_int_equal(cmk_header_fields[i].off, end);	/* no gaps */
		end += doc[i].size;
	}
	assert_int_equal(end, CMK_HDR_SIZE);
}

static void roundtrip(void **state, enum cmk_mode mode)
{
	struct fx *fx = *state;
	struct cmk_header h, r;
	struct cmk_header_status st;
	struct cmk_err e;

	format(fx, mode, &h);
	assert_int_equal(h.sequence, 1);
	assert_int_equal(cmk_header_read(fx->fd, &r, &st, &e), 0);
	assert_true(st.valid[0] && st.valid[1]);
	assert_int_equal(st.chosen, 0);
	assert_false(st.copies_differ);
	assert_memory_equal(&r, &h, sizeof(h));
	assert_int_equal(r.mode, mode);
	assert_int_equal(r.sector_size, 4096);
	assert_int_equal(r.data_offset, 2048);
	assert_string_equal(r.cipher, "aes-xts-plain64");
	assert_memory_equal(r.kek_id, fx->kek_id, 16);
	assert_dek(&r, fx->kek, fx->dek);
}

static void header_roundtrip_ephemeral(void **state)
{
	roundtrip(state, CMK_MODE_EPHEMERAL);
}

static void header_roundtrip_persistent(void **state)
{
	roundtrip(state, CMK_MODE_PERSISTENT);
}

/* Read the bytes back with nothing but the documented layout and EVP. */
static void header_bytes_match_spec_independent_decrypt(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	uint8_t a[CMK_HDR_SIZE], b[CMK_HDR_SIZE], sum[32], dek[64];
	unsigned int slen = 32;
	EVP_CIPHER_CTX *c;
	int n, n2;

	format(fx, CMK_MODE_EPHEMERAL, &h);
	read_raw(fx->fd, 0, a);
	read_raw(fx->fd, 65536, b);
	assert_memory_equal(a, b, CMK_HDR_SIZE);
	assert_memory_equal(a, "DMCMKHDR", 8);
	assert_int_equal(a[8], 1);		/* version, LE */
	assert_int_equal(a[12] | a[13] << 8, 4096);
	assert_int_equal(a[32], 1);		/* sequence */
	assert_int_equal(a[40], 1);		/* ephemeral */
	assert_int_equal(a[44] | a[45] << 8, 4096);
	assert_string_equal((char *)a + 48, "aes-xts-plain64");
	assert_int_equal(a[80] | a[81] << 8, 2048);
	assert_memory_equal(a + 88, fx->kek_id, 16);
	assert_int_equal(a[104], 1);		/* kek_version */
	assert_int_equal(a[108], 1);		/* AES-256-GCM */
	assert_int_equal(a[136], 64);		/* dek_len */
	for (int i = 236; i < 4064; i++)
		assert_int_equal(a[i], 0);
	assert_int_equal(EVP_Digest(a, 4064, sum, &slen, EVP_sha256(), NULL), 1);
	assert_memory_equal(sum, a + 4064, 32);

	c = EVP_CIPHER_CTX_new();
	assert_int_equal(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL,
					    cmk_secret_cdata(fx->kek), a + 144), 1);
	assert_int_equal(EVP_DecryptUpdate(c, NULL, &n, a, 156), 1);
	assert_int_equal(EVP_DecryptUpdate(c, dek, &n, a + 156, 64), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, a + 220), 1);
	assert_int_equal(EVP_DecryptFinal_ex(c, dek + n, &n2), 1);
	EVP_CIPHER_CTX_free(c);
	assert_memory_equal(dek, cmk_secret_cdata(fx->dek), 64);
}

static void header_sequence_increments_and_nonce_changes(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h, r;
	uint8_t nonce1[12];
	struct cmk_err e;

	format(fx, CMK_MODE_PERSISTENT, &h);
	memcpy(nonce1, h.nonce, 12);
	assert_int_equal(cmk_header_write(fx->fd, &h, fx->kek, fx->dek, &e), 0);
	assert_int_equal(h.sequence, 2);
	assert_memory_not_equal(nonce1, h.nonce, 12);
	assert_int_equal(cmk_header_read(fx->fd, &r, NULL, &e), 0);
	assert_int_equal(r.sequence, 2);
	assert_dek(&r, fx->kek, fx->dek);
}

/*
 * The read-back check after a write must see the device, not the page
 * cache that still holds what was just written: the cache is dropped first.
 */
static void header_write_reads_back_past_the_page_cache(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;

	tu_fadvise_dontneed = 0;
	format(fx, CMK_MODE_EPHEMERAL, &h);
	assert_true(tu_fadvise_dontneed >= 1);
}

static void header_blank_device_is_not_formatted(void **state)
{
	struct fx *fx = *state;
	struct cmk_header r;
	struct cmk_header_status st;
	struct cmk_err e;

	assert_int_equal(cmk_header_read(fx->fd, &r, &st, &e), -ENODATA);
	assert_true(st.blank[0] && st.blank[1]);
	assert_contains(e.msg, "not formatted");
}

static void header_both_copies_corrupt_rejected(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h, r;
	uint8_t a[CMK_HDR_SIZE];
	struct cmk_err e;

	format(fx, CMK_MODE_PERSISTENT, &h);
	for (int k = 0; k < 2; k++) {
		read_raw(fx->fd, k ? 65536 : 0, a);
		a[300 + k] ^= 0x80;
		write_raw(fx->fd, k ? 65536 : 0, a);
	}
	assert_int_equal(cmk_header_read(fx->fd, &r, NULL, &e), -EUCLEAN);
	assert_contains(e.msg, "copy A");
	assert_contains(e.msg, "copy B");
	assert_contains(e.msg, "checksum");
}

static void header_higher_sequence_wins(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h, r;
	struct cmk_header_status st;
	uint8_t old[CMK_HDR_SIZE];
	struct cmk_err e;

	format(fx, CMK_MODE_PERSISTENT, &h);
	read_raw(fx->fd, 0, old);				/* seq 1 */
	assert_int_equal(cmk_header_write(fx->fd, &h, fx->kek, fx->dek, &e), 0);
	for (int k = 0; k < 2; k++) {
		uint8_t cur[CMK_HDR_SIZE];

		read_raw(fx->fd, k ? 0 : 65536, cur);		/* seq 2 */
		write_raw(fx->fd, k ? 65536 : 0, old);		/* other: seq 1 */
		write_raw(fx->fd, k ? 0 : 65536, cur);
		assert_int_equal(cmk_header_read(fx->fd, &r, &st, &e), 0);
		assert_int_equal(r.sequence, 2);
		assert_int_equal(st.chosen, k ? 0 : 1);
		write_raw(fx->fd, k ? 65536 : 0, cur);		/* restore */
	}
}

/*
 * Flip one byte in the middle of every field of copy @k:
 *  - the copy is rejected, the other one is used;
 *  - with the checksum recomputed (a forger's attempt), the copy is still
 *    refused: by a field check naming the field, or by the AEAD tag;
 *  - both copies flipped: the device is rejected.
 */
static void header_every_field_corruption_rejected(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h, r;
	struct cmk_header_status st;
	uint8_t good[CMK_HDR_SIZE], bad[CMK_HDR_SIZE];
	struct cmk_err e;
	struct cmk_secret *dek = NULL;

	format(fx, CMK_MODE_EPHEMERAL, &h);
	read_raw(fx->fd, 0, good);
	for (size_t f = 0; f < cmk_header_nfields; f++) {
		const struct cmk_header_field *fd = &cmk_header_fields[f];
		size_t at = fd->off + fd->size / 2;

		for (int k = 0; k < 2; k++) {
			off_t off = k ? 65536 : 0;

			memcpy(bad, good, sizeof(bad));
			bad[at] ^= 0x10;
			write_raw(fx->fd, off, bad);
			if (cmk_header_read(fx->fd, &r, &st, &e))
				fail_msg("field %s copy %d: other copy not used: %s",
					 fd->name, k, e.msg);
			assert_false(st.valid[k]);
			assert_int_equal(st.chosen, 1 - k);
			assert_contains(st.why[k], k ? "copy B" : "copy A");
			assert_dek(&r, fx->kek, fx->dek);

			/* forged checksum */
			if (strcmp(fd->name, "checksum")) {
				fix_checksum(bad);
				if (cmk_header_decode(bad, "X", &r, &e) == 0) {
					if (cmk_header_unwrap_dek(&r, fx->kek, &dek, &e) == 0)
						fail_msg("field %s: forged copy accepted",
							 fd->name);
					assert_int_equal(cmk_header_unwrap_dek(&r, fx->kek, &dek, &e),
							 -EKEYREJECTED);
				} else if (strcmp(fd->name, "magic")) {
					assert_contains(e.msg, fd->name);
				}
			}
			write_raw(fx->fd, off, good);
		}
		memcpy(bad, good, sizeof(bad));
		bad[at] ^= 0x10;
		write_raw(fx->fd, 0, bad);
		write_raw(fx->fd, 65536, bad);
		if (cmk_header_read(fx->fd, &r, NULL, &e) == 0)
			fail_msg("field %s: device with both copies corrupt accepted",
				 fd->name);
		write_raw(fx->fd, 0, good);
		write_raw(fx->fd, 65536, good);
	}
}

/* Zero a copy from every field boundary on (a write cut short). */
static void header_truncated_copy_other_wins(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h, r;
	struct cmk_header_status st;
	uint8_t good[CMK_HDR_SIZE], bad[CMK_HDR_SIZE];
	struct cmk_err e;

	format(fx, CMK_MODE_PERSISTENT, &h);
	read_raw(fx->fd, 0, good);
	for (size_t f = 0; f < cmk_header_nfields; f++) {
		for (int k = 0; k < 2; k++) {
			memcpy(bad, good, sizeof(bad));
			memset(bad + cmk_header_fields[f].off, 0,
			       CMK_HDR_SIZE - cmk_header_fields[f].off);
			write_raw(fx->fd, k ? 65536 : 0, bad);
			assert_int_equal(cmk_header_read(fx->fd, &r, &st, &e), 0);
			assert_int_equal(st.chosen, 1 - k);
			write_raw(fx->fd, k ? 65536 : 0, good);
		}
	}
}

/*
 * Crash in the middle of cmk_header_write() after @budget bytes, starting
 * from @pristine (both copies as given).  The device must keep a valid
 * header, old or new; once the first copy is complete, the new one.
 */
static void torn_sweep(struct fx *fx, const uint8_t pristine[2][CMK_HDR_SIZE],
		       uint64_t old_seq, const struct cmk_secret *old_dek,
		       const struct cmk_secret *new_dek)
{
	static const size_t extra[] = { 1, 2048, 4095 };
	size_t budgets[2 * 32 + 8], nb = 0;

	for (int k = 0; k < 2; k++) {
		for (size_t f = 0; f < cmk_header_nfields; f++)
			budgets[nb++] = (size_t)k * CMK_HDR_SIZE + cmk_header_fields[f].off;
		for (size_t i = 0; i < 3; i++)
			budgets[nb++] = (size_t)k * CMK_HDR_SIZE + extra[i];
	}
	budgets[nb++] = 2 * CMK_HDR_SIZE;

	for (size_t i = 0; i < nb; i++) {
		struct cmk_header h, r;
		struct cmk_err e;
		int ret;

		write_raw(fx->fd, 0, pristine[0]);
		write_raw(fx->fd, 65536, pristine[1]);
		assert_int_equal(cmk_header_read(fx->fd, &h, NULL, &e), 0);
		tu_pwrite_budget = (long)budgets[i];
		ret = cmk_header_write(fx->fd, &h, fx->kek, new_dek, &e);
		tu_pwrite_budget = -1;
		if (budgets[i] < 2 * CMK_HDR_SIZE)
			assert_int_equal(ret, -EIO);
		else
			assert_int_equal(ret, 0);
		if (cmk_header_read(fx->fd, &r, NULL, &e))
			fail_msg("torn after %zu bytes: device lost: %s", budgets[i], e.msg);
		/*
		 * A copy cut short may still be whole: when the bytes never
		 * written (the end of the SHA-256 checksum) happen to equal the old ones,
		 * about once in 256 runs for the 4095-byte cut.  Then it is the
		 * new header, intact; what must never happen is losing both.
		 */
		if (budgets[i] >= CMK_HDR_SIZE) {
			assert_int_equal(r.sequence, old_seq + 1);
			assert_dek(&r, fx->kek, new_dek);
		} else if (r.sequence == old_seq) {
			assert_dek(&r, fx->kek, old_dek);
		} else if (r.sequence == old_seq + 1) {
			assert_dek(&r, fx->kek, new_dek);
		} else {
			fail_msg("torn after %zu bytes: sequence %llu", budgets[i],
				 (unsigned long long)r.sequence);
		}
	}
}

static void header_torn_write_other_copy_wins(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_secret *dek2 = NULL;
	uint8_t pristine[2][CMK_HDR_SIZE], junk[CMK_HDR_SIZE];
	struct cmk_err e;

	assert_int_equal(cmk_dek_generate(&dek2, &e), 0);
	format(fx, CMK_MODE_PERSISTENT, &h);
	read_raw(fx->fd, 0, pristine[0]);
	read_raw(fx->fd, 65536, pristine[1]);
	/* both copies equal */
	torn_sweep(fx, (const uint8_t (*)[CMK_HDR_SIZE])pristine, 1, fx->dek, dek2);

	/* only A valid: B must be written first */
	memcpy(junk, pristine[1], sizeof(junk));
	junk[500] ^= 1;
	memcpy(pristine[1], junk, sizeof(junk));
	torn_sweep(fx, (const uint8_t (*)[CMK_HDR_SIZE])pristine, 1, fx->dek, dek2);

	/* only B valid: A must be written first */
	read_raw(fx->fd, 0, pristine[1]);	/* a valid copy (new seq 2) */
	memcpy(pristine[0], junk, sizeof(junk));
	torn_sweep(fx, (const uint8_t (*)[CMK_HDR_SIZE])pristine, 2, dek2, fx->dek);
	cmk_secret_free(&dek2);
}

/*
 * A forged copy (checksum only) claiming a higher sequence must not make a
 * re-seal overwrite the only authentic copy first: torn there, the device
 * is lost.  Oracle: after a rewrap torn in its first header write, the
 * original header still authenticates under the KEK.
 */
static void header_adversarial_forged_copy_does_not_choose_write_order(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h, before, after, r;
	struct cmk_secret *dek = NULL;
	uint8_t raw[CMK_HDR_SIZE];
	struct cmk_err e;

	format(fx, CMK_MODE_PERSISTENT, &h);
	read_raw(fx->fd, CMK_HDR_COPY_B, raw);
	assert_int_equal(cmk_header_decode(raw, "B", &r, &e), 0);
	r.sequence = 1000;
	r.tag[0] ^= 1;
	cmk_header_encode(&r, raw);
	write_raw(fx->fd, CMK_HDR_COPY_B, raw);

	tu_pwrite_budget = CMK_HDR_SIZE / 2;	/* the first write is torn */
	assert_int_not_equal(cmk_header_rewrap(fx->fd, fx->kek, fx->kek, fx->kek_id, 1,
					       &before, &after, &e), 0);
	tu_pwrite_budget = -1;
	if (cmk_header_read_unwrap(fx->fd, fx->kek, &r, &dek, &e))
		fail_msg("authentic copy lost to a torn write: %s", e.msg);
	assert_int_equal(r.sequence, h.sequence);
	assert_true(cmk_secret_equal(dek, fx->dek));
	cmk_secret_free(&dek);
}

static void header_wrong_kek_rejected(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_secret *other = NULL, *dek = NULL;
	struct cmk_err e;

	format(fx, CMK_MODE_EPHEMERAL, &h);
	assert_int_equal(cmk_kek_generate(&other, &e), 0);
	assert_int_equal(cmk_header_unwrap_dek(&h, other, &dek, &e), -EKEYREJECTED);
	assert_null(dek);
	assert_contains(e.msg, "wrong KEK");
	cmk_secret_free(&other);
}

static void header_rewrap_keeps_dek(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h, r, b;
	struct cmk_secret *kek2 = NULL, *dek = NULL;
	uint8_t id2[16];
	struct cmk_err e;

	format(fx, CMK_MODE_PERSISTENT, &h);
	assert_int_equal(cmk_kek_generate(&kek2, &e), 0);
	assert_int_equal(cmk_uuid_generate(id2, &e), 0);
	assert_int_equal(cmk_header_rewrap(fx->fd, fx->kek, kek2, id2, 2, &b, &r, &e), 0);
	assert_int_equal(cmk_header_read(fx->fd, &r, NULL, &e), 0);
	assert_int_equal(r.sequence, 2);
	assert_int_equal(r.kek_version, 2);
	assert_memory_equal(r.kek_id, id2, 16);
	assert_memory_equal(r.device_uuid, h.device_uuid, 16);
	assert_dek(&r, kek2, fx->dek);
	assert_int_equal(cmk_header_unwrap_dek(&r, fx->kek, &dek, &e), -EKEYREJECTED);
	/* the old KEK cannot rewrap any more */
	assert_int_equal(cmk_header_rewrap(fx->fd, fx->kek, kek2, id2, 3, &b, &r, &e),
			 -EKEYREJECTED);
	cmk_secret_free(&kek2);
}

static void header_small_device_rejected(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_err e;

	assert_int_equal(ftruncate(fx->fd, CMK_HDR_AREA), 0);
	assert_int_equal(cmk_header_init(&h, CMK_MODE_EPHEMERAL, 4096, fx->kek_id, 1, &e), 0);
	assert_int_equal(cmk_header_write(fx->fd, &h, fx->kek, fx->dek, &e), -ENOSPC);
	assert_contains(e.msg, "too small");
	assert_int_equal(ftruncate(fx->fd, 8192), 0);
	assert_int_equal(cmk_header_read(fx->fd, &h, NULL, &e), -ENOSPC);
}

static void header_equal_halves_dek_refused(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_secret *bad = NULL;
	struct cmk_err e;

	assert_int_equal(cmk_secret_new(&bad, 64, &e), 0);
	assert_int_equal(cmk_header_init(&h, CMK_MODE_EPHEMERAL, 512, fx->kek_id, 1, &e), 0);
	assert_int_equal(cmk_header_write(fx->fd, &h, fx->kek, bad, &e), -EINVAL);
	assert_contains(e.msg, "halves are equal");
	cmk_secret_free(&bad);
}

static void header_unsupported_version_named(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h, r;
	uint8_t a[CMK_HDR_SIZE];
	struct cmk_err e;

	format(fx, CMK_MODE_PERSISTENT, &h);
	read_raw(fx->fd, 0, a);
	a[8] = 2;
	fix_checksum(a);
	assert_int_equal(cmk_header_decode(a, "A", &r, &e), -EPROTONOSUPPORT);
	assert_contains(e.msg, "copy A: field version: 2 is not supported");
}

static void header_init_rejects_bad_parameters(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_err e;

	assert_int_equal(cmk_header_init(&h, 3, 4096, fx->kek_id, 1, &e), -EINVAL);
	assert_int_equal(cmk_header_init(&h, CMK_MODE_EPHEMERAL, 1024, fx->kek_id, 1, &e),
			 -EINVAL);
	assert_int_equal(cmk_header_init(&h, CMK_MODE_EPHEMERAL, 512, fx->kek_id, 0, &e),
			 -EINVAL);
}

/*
 * Every single-bit change anywhere before the checksum, with the checksum
 * recomputed by the forger, is refused by decode or by the GCM tag.
 */
static void header_any_forged_bit_rejected(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h, r;
	struct cmk_secret *dek = NULL;
	uint8_t good[CMK_HDR_SIZE], bad[CMK_HDR_SIZE];
	struct cmk_err e;

	format(fx, CMK_MODE_PERSISTENT, &h);
	read_raw(fx->fd, 0, good);
	for (size_t i = 0; i < CMK_HDR_OFF_CHECKSUM; i++) {
		memcpy(bad, good, sizeof(bad));
		bad[i] ^= (uint8_t)(1u << (i % 8));
		fix_checksum(bad);
		if (cmk_header_decode(bad, "A", &r, &e) == 0 &&
		    cmk_header_unwrap_dek(&r, fx->kek, &dek, &e) == 0) {
			cmk_secret_free(&dek);
			fail_msg("forged bit at byte %zu accepted", i);
		}
	}
}

static void header_write_refuses_invalid_fields(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h, r;
	struct cmk_err e;

	assert_int_equal(cmk_header_init(&h, CMK_MODE_EPHEMERAL, 4096, fx->kek_id, 1, &e), 0);
	h.mode = 7;
	assert_int_equal(cmk_header_write(fx->fd, &h, fx->kek, fx->dek, &e), -EUCLEAN);
	assert_contains(e.msg, "field mode: 7");
	h.mode = CMK_MODE_EPHEMERAL;
	h.cipher[20] = 'x';
	assert_int_equal(cmk_header_write(fx->fd, &h, fx->kek, fx->dek, &e), -EUCLEAN);
	assert_contains(e.msg, "field cipher");
	/* nothing reached the device */
	assert_int_equal(cmk_header_read(fx->fd, &r, NULL, &e), -ENODATA);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(header_layout_matches_documentation),
		T(header_roundtrip_ephemeral),
		T(header_roundtrip_persistent),
		T(header_bytes_match_spec_independent_decrypt),
		T(header_sequence_increments_and_nonce_changes),
		T(header_write_reads_back_past_the_page_cache),
		T(header_blank_device_is_not_formatted),
		T(header_both_copies_corrupt_rejected),
		T(header_higher_sequence_wins),
		T(header_every_field_corruption_rejected),
		T(header_truncated_copy_other_wins),
		T(header_torn_write_other_copy_wins),
		T(header_adversarial_forged_copy_does_not_choose_write_order),
		T(header_wrong_kek_rejected),
		T(header_rewrap_keeps_dek),
		T(header_small_device_rejected),
		T(header_equal_halves_dek_refused),
		T(header_unsupported_version_named),
		T(header_init_rejects_bad_parameters),
		T(header_write_refuses_invalid_fields),
		T(header_any_forged_bit_rejected),
	};

	return cmocka_run_group_tests_name("header", tests, NULL, NULL);
}
