// SPDX-License-Identifier: GPL-2.0
/*
 * test_esdk.c - sealed storage objects (format/esdk.c, esdk_keyring.c).
 *
 * Oracles: known-answer messages made by the AWS Encryption SDK for
 * JavaScript (tests/storage/esdk_kat.js) with a wrapping key it derived
 * itself from a fixed KEK, so both the format and the derivation are held
 * to an independent implementation; round trips; and the invariant that
 * any tampering (every bit of a message flipped, every truncation) is
 * refused with an error naming the object, and that the tampered frame's
 * plaintext is never written - what is written is always a prefix of the
 * authentic plaintext made of whole frames before it, without the final
 * frame of a signed message whose footer is damaged (decrypt.md).
 */
#include "testutil.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/secret.h"
#include "format/esdk.h"

/* made by tests/storage/esdk_kat.js (@aws-crypto/client-node) */
static const unsigned char kat_0478[] = {
	0x02, 0x04, 0x78, 0x85, 0x85, 0x49, 0x3d, 0xed, 0xf8, 0x58, 0x36, 0x4e,
	0x08, 0x3f, 0xd0, 0xbe, 0x5a, 0xcd, 0xec, 0x1b, 0xbf, 0xe4, 0x79, 0x55,
	0x16, 0x74, 0xeb, 0x0e, 0xa4, 0x1e, 0xca, 0xa4, 0x8c, 0x9b, 0x4e, 0x00,
	0x32, 0x00, 0x02, 0x00, 0x07, 0x63, 0x6c, 0x75, 0x73, 0x74, 0x65, 0x72,
	0x00, 0x02, 0x63, 0x31, 0x00, 0x07, 0x73, 0x65, 0x67, 0x6d, 0x65, 0x6e,
	0x74, 0x00, 0x18, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x31, 0x30,
	0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30,
	0x30, 0x30, 0x31, 0x00, 0x01, 0x00, 0x06, 0x64, 0x6d, 0x2d, 0x63, 0x6d,
	0x6b, 0x00, 0x3f, 0x6b, 0x65, 0x6b, 0x2f, 0x30, 0x30, 0x31, 0x31, 0x32,
	0x32, 0x33, 0x33, 0x2d, 0x34, 0x34, 0x35, 0x35, 0x2d, 0x36, 0x36, 0x37,
	0x37, 0x2d, 0x38, 0x38, 0x39, 0x39, 0x2d, 0x61, 0x61, 0x62, 0x62, 0x63,
	0x63, 0x64, 0x64, 0x65, 0x65, 0x66, 0x66, 0x2f, 0x76, 0x31, 0x00, 0x00,
	0x00, 0x80, 0x00, 0x00, 0x00, 0x0c, 0xa5, 0x40, 0x49, 0x14, 0xa5, 0xc0,
	0x25, 0xba, 0x20, 0x3a, 0xc1, 0xee, 0x00, 0x30, 0xa2, 0xdd, 0x8a, 0x1b,
	0xc3, 0xa9, 0x01, 0x3c, 0xd9, 0x72, 0x0b, 0xed, 0x28, 0xb2, 0xa1, 0x29,
	0xa0, 0x65, 0x36, 0x48, 0x20, 0x76, 0xda, 0xeb, 0x77, 0x3b, 0x6a, 0xec,
	0x8e, 0x2f, 0xfd, 0x97, 0x35, 0x0e, 0xe8, 0xa7, 0x77, 0x6d, 0x94, 0x63,
	0x7f, 0xaa, 0xd0, 0xa1, 0x1f, 0x9c, 0x49, 0x85, 0x02, 0x00, 0x00, 0x00,
	0x10, 0x2c, 0xbc, 0xfb, 0xdb, 0x8c, 0xfa, 0x44, 0xd7, 0xcc, 0x4b, 0xa9,
	0x01, 0x0a, 0xeb, 0xf5, 0xec, 0x20, 0xbd, 0x3d, 0xbb, 0x66, 0xa7, 0xe2,
	0x23, 0xbc, 0x1c, 0x5e, 0x93, 0x10, 0x69, 0x68, 0xa0, 0xf5, 0x12, 0x2d,
	0xec, 0x52, 0x54, 0xdc, 0xd7, 0x67, 0xec, 0xa9, 0xa8, 0x61, 0x88, 0xb3,
	0x6d, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x01, 0x6a, 0x85, 0x14, 0x86, 0x9d, 0xee, 0xd3,
	0xd2, 0x69, 0x1e, 0xdb, 0x4d, 0x26, 0x26, 0x31, 0x11, 0x0a, 0xb1, 0x00,
	0x53, 0x98, 0x93, 0xb9, 0xec, 0x2c, 0x0b, 0x00, 0x67, 0x97, 0x0a, 0x2b,
	0x24, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x02, 0xf1, 0xa7, 0x3a, 0xcc, 0xda, 0xb5, 0x5c,
	0x63, 0xc7, 0x25, 0x42, 0x2e, 0x01, 0x55, 0x2a, 0x8c, 0xae, 0x75, 0x03,
	0xf4, 0x9e, 0xac, 0x56, 0x09, 0x13, 0xf9, 0xca, 0x79, 0xfd, 0x2b, 0xd9,
	0x3a, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
	0x08, 0xb2, 0xdf, 0x3b, 0x51, 0xec, 0x69, 0x55, 0xc1, 0xb8, 0x4f, 0xa6,
	0xe1, 0x09, 0xb7, 0x83, 0x11, 0xb5, 0xd3, 0x81, 0x0b, 0x56, 0x1f, 0xa8,
	0x08,
};
static const unsigned char kat_0578[] = {
	0x02, 0x05, 0x78, 0xa5, 0x83, 0xff, 0xf8, 0xe2, 0x24, 0xa8, 0x1f, 0x3c,
	0x87, 0x0d, 0x4e, 0x9d, 0x54, 0x4a, 0x9d, 0x21, 0x2d, 0xfe, 0x60, 0x6e,
	0x7b, 0xb4, 0x26, 0x03, 0x93, 0x5f, 0x4c, 0x4f, 0xd9, 0x14, 0xd6, 0x00,
	0x8f, 0x00, 0x03, 0x00, 0x15, 0x61, 0x77, 0x73, 0x2d, 0x63, 0x72, 0x79,
	0x70, 0x74, 0x6f, 0x2d, 0x70, 0x75, 0x62, 0x6c, 0x69, 0x63, 0x2d, 0x6b,
	0x65, 0x79, 0x00, 0x44, 0x41, 0x38, 0x39, 0x2b, 0x36, 0x35, 0x49, 0x38,
	0x34, 0x56, 0x6d, 0x44, 0x70, 0x74, 0x2b, 0x50, 0x67, 0x64, 0x49, 0x52,
	0x66, 0x63, 0x6c, 0x6f, 0x2b, 0x52, 0x53, 0x69, 0x59, 0x54, 0x4c, 0x72,
	0x63, 0x53, 0x69, 0x6b, 0x4e, 0x4b, 0x6e, 0x31, 0x52, 0x54, 0x67, 0x33,
	0x66, 0x2b, 0x48, 0x71, 0x6a, 0x51, 0x43, 0x64, 0x52, 0x42, 0x46, 0x2f,
	0x4f, 0x68, 0x63, 0x4c, 0x4b, 0x39, 0x70, 0x39, 0x77, 0x51, 0x3d, 0x3d,
	0x00, 0x07, 0x63, 0x6c, 0x75, 0x73, 0x74, 0x65, 0x72, 0x00, 0x02, 0x63,
	0x31, 0x00, 0x07, 0x73, 0x65, 0x67, 0x6d, 0x65, 0x6e, 0x74, 0x00, 0x18,
	0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x31, 0x30, 0x30, 0x30, 0x30,
	0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x31,
	0x00, 0x01, 0x00, 0x06, 0x64, 0x6d, 0x2d, 0x63, 0x6d, 0x6b, 0x00, 0x3f,
	0x6b, 0x65, 0x6b, 0x2f, 0x30, 0x30, 0x31, 0x31, 0x32, 0x32, 0x33, 0x33,
	0x2d, 0x34, 0x34, 0x35, 0x35, 0x2d, 0x36, 0x36, 0x37, 0x37, 0x2d, 0x38,
	0x38, 0x39, 0x39, 0x2d, 0x61, 0x61, 0x62, 0x62, 0x63, 0x63, 0x64, 0x64,
	0x65, 0x65, 0x66, 0x66, 0x2f, 0x76, 0x31, 0x00, 0x00, 0x00, 0x80, 0x00,
	0x00, 0x00, 0x0c, 0xed, 0x13, 0x26, 0xc3, 0x2a, 0x4c, 0x73, 0xf9, 0xa7,
	0x73, 0xac, 0xa7, 0x00, 0x30, 0xe5, 0xc5, 0x6c, 0xb7, 0xd7, 0xe9, 0x7b,
	0x26, 0xad, 0x9b, 0xf3, 0xb4, 0xe7, 0x71, 0xd0, 0x80, 0x6f, 0xdf, 0x34,
	0x29, 0xdf, 0x0f, 0xbc, 0x67, 0xb2, 0xf8, 0x4d, 0x09, 0x9f, 0xd4, 0x5b,
	0xf2, 0xe7, 0x49, 0x46, 0x2c, 0xc3, 0x25, 0x79, 0x5b, 0x8e, 0x30, 0xcd,
	0x2a, 0xd6, 0x2d, 0xb5, 0x2d, 0x02, 0x00, 0x00, 0x00, 0x10, 0x4a, 0xde,
	0xcb, 0x2a, 0xa4, 0xa1, 0xf7, 0xa6, 0xda, 0x88, 0x38, 0x7f, 0x6a, 0x47,
	0x0a, 0xe8, 0x51, 0x73, 0xe4, 0xd7, 0x38, 0x63, 0x12, 0x4e, 0x9a, 0x86,
	0x40, 0xb5, 0xd9, 0x35, 0x39, 0x4e, 0x8b, 0xf4, 0x90, 0xf4, 0x4c, 0x11,
	0x48, 0x7d, 0xa0, 0xee, 0xc7, 0xc9, 0xcb, 0xf6, 0x4b, 0x1b, 0x00, 0x00,
	0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x01, 0xb9, 0xd3, 0x8c, 0x52, 0xb6, 0xbc, 0xab, 0x6e, 0x00, 0xcb,
	0x71, 0x78, 0xc9, 0xd3, 0xb8, 0xca, 0x55, 0xa5, 0x76, 0x5f, 0x72, 0x10,
	0xb2, 0xc2, 0x68, 0xc8, 0x70, 0x22, 0x68, 0x1f, 0xee, 0xeb, 0x00, 0x00,
	0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x02, 0x5c, 0xc1, 0x2e, 0x36, 0x1d, 0xec, 0xc2, 0x84, 0xe6, 0x27,
	0x5a, 0xed, 0x42, 0xb7, 0x62, 0xa6, 0xb4, 0x46, 0x77, 0xa8, 0x00, 0x50,
	0xf2, 0x65, 0xe9, 0x48, 0x11, 0x7b, 0x2e, 0x39, 0x76, 0x58, 0xff, 0xff,
	0xff, 0xff, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0x95, 0x2f,
	0xfc, 0x9e, 0x1a, 0x70, 0xe2, 0x07, 0x96, 0xe1, 0x80, 0xe2, 0x38, 0x18,
	0xdc, 0x6e, 0xdf, 0x7d, 0xce, 0xd1, 0x5c, 0x3a, 0x86, 0xbf, 0x00, 0x67,
	0x30, 0x65, 0x02, 0x31, 0x00, 0xf4, 0xc3, 0x74, 0x77, 0x07, 0xca, 0x23,
	0x6c, 0x47, 0x6d, 0x80, 0x2c, 0x21, 0x3f, 0x32, 0x4d, 0xf5, 0xe0, 0x0c,
	0xef, 0x27, 0x30, 0x1e, 0x47, 0x17, 0x06, 0x59, 0x9c, 0xf6, 0x30, 0xdb,
	0x69, 0xa9, 0x82, 0xf7, 0xb8, 0xc9, 0x72, 0xf8, 0x75, 0xa7, 0x7d, 0xe2,
	0x10, 0xb6, 0xe6, 0x63, 0xac, 0x02, 0x30, 0x54, 0x14, 0x21, 0xda, 0x9b,
	0xb9, 0xb9, 0xb6, 0x87, 0x53, 0x89, 0x73, 0x49, 0x40, 0x54, 0xca, 0xc9,
	0x05, 0xe6, 0xf2, 0x87, 0xae, 0x61, 0x46, 0x3b, 0x92, 0x04, 0x3e, 0x86,
	0x3b, 0xad, 0x1c, 0x08, 0x59, 0xc5, 0xf1, 0x34, 0x20, 0x09, 0x7e, 0xa1,
	0xa7, 0xda, 0x56, 0xb6, 0x3c, 0x86, 0x74,
};

static const unsigned char kat_wrapkey[32] = {
	0x8e, 0xdc, 0x31, 0xe6, 0x7a, 0xac, 0xa7, 0x00, 0xdc, 0xf2, 0xd5, 0x17,
	0x01, 0xe0, 0xb2, 0xd9, 0xaa, 0x11, 0x97, 0x8a, 0x1c, 0xac, 0xd3, 0x24,
	0x3a, 0x80, 0x48, 0x6a, 0xdc, 0x8d, 0xcf, 0xb7,
};
static const char kat_plain[] = "dm-cmk known answer, 40 bytes of text!!!";
static const uint8_t kat_kek_id[16] = {
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
	0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
};

static int memfd_of(const void *data, size_t len)
{
	int fd = memfd_create("esdk", MFD_CLOEXEC);

	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static unsigned char *contents(int fd, size_t *len)
{
	off_t n = lseek(fd, 0, SEEK_END);
	unsigned char *b = malloc(n ? (size_t)n : 1);

	assert_non_null(b);
	assert_int_equal(pread(fd, b, (size_t)n, 0), n);
	*len = (size_t)n;
	return b;
}

/* The KEK of the known answers: bytes 0..31. */
static void kat_key(struct cmk_esdk_wrapkey *wk, uint32_t version)
{
	struct cmk_secret *kek = NULL;
	struct cmk_err e;

	assert_int_equal(cmk_secret_new(&kek, 32, &e), 0);
	for (int i = 0; i < 32; i++)
		cmk_secret_data(kek)[i] = (unsigned char)i;
	assert_int_equal(cmk_esdk_wrapkey_derive(kek, kat_kek_id, version, wk, &e), 0);
	cmk_secret_free(&kek);
}

static void kat_ctx(struct cmk_encctx *c)
{
	struct cmk_err e;

	cmk_encctx_init(c);
	assert_int_equal(cmk_encctx_add(c, "segment", "000000010000000000000001", &e), 0);
	assert_int_equal(cmk_encctx_add(c, "cluster", "c1", &e), 0);
}

static int seal_buf(const struct cmk_esdk_wrapkey *wk, const struct cmk_encctx *ctx,
		    uint16_t suite, uint32_t frame, const void *pt, size_t len,
		    unsigned char **ct, size_t *ct_len, struct cmk_err *e)
{
	struct cmk_esdk_seal_opts o = { .suite = suite, .frame_len = frame, .name = "obj" };
	int in = memfd_of(pt, len), out = memfd_of(NULL, 0);
	int ret = cmk_esdk_seal(in, out, wk, ctx, &o, NULL, e);

	*ct = contents(out, ct_len);
	close(in);
	close(out);
	return ret;
}

static int open_buf(const struct cmk_esdk_wrapkey *wk, const struct cmk_encctx *ctx,
		    const void *ct, size_t len, unsigned char **pt, size_t *pt_len,
		    struct cmk_esdk_info *info, struct cmk_err *e)
{
	const struct cmk_esdk_wrapkey *keys[1] = { wk };
	int in = memfd_of(ct, len), out = memfd_of(NULL, 0);
	int ret;

	cmk_err_clear(e);
	ret = cmk_esdk_open(in, out, keys, 1, ctx, "obj", info, e);
	*pt = contents(out, pt_len);
	close(in);
	close(out);
	return ret;
}

/* The derivation matches node's crypto.hkdfSync on the documented input. */
static void wrapkey_derivation_known_answer(void **state)
{
	struct cmk_esdk_wrapkey wk, wk2, wk3;

	(void)state;
	kat_key(&wk, 1);
	assert_memory_equal(cmk_secret_cdata(wk.key), kat_wrapkey, 32);
	assert_string_equal(wk.name, "kek/00112233-4455-6677-8899-aabbccddeeff/v1");
	/* Another version is another key. */
	kat_key(&wk2, 2);
	assert_memory_not_equal(cmk_secret_cdata(wk2.key), kat_wrapkey, 32);
	assert_string_equal(wk2.name, "kek/00112233-4455-6677-8899-aabbccddeeff/v2");
	kat_key(&wk3, 1);
	assert_true(cmk_secret_equal(wk.key, wk3.key));
	cmk_esdk_wrapkey_free(&wk);
	cmk_esdk_wrapkey_free(&wk2);
	cmk_esdk_wrapkey_free(&wk3);
}

/* Messages the JavaScript ESDK wrote open to the known plaintext. */
static void opens_javascript_esdk_messages(void **state)
{
	const struct { const unsigned char *m; size_t len; uint16_t suite; } v[] = {
		{ kat_0478, sizeof(kat_0478), CMK_ESDK_SUITE_COMMIT },
		{ kat_0578, sizeof(kat_0578), CMK_ESDK_SUITE_COMMIT_ECDSA },
	};
	struct cmk_esdk_wrapkey wk;
	struct cmk_esdk_info info;
	struct cmk_encctx ctx;
	struct cmk_err e;

	(void)state;
	kat_key(&wk, 1);
	kat_ctx(&ctx);
	for (size_t i = 0; i < 2; i++) {
		unsigned char *pt;
		size_t n;

		assert_int_equal(open_buf(&wk, &ctx, v[i].m, v[i].len, &pt, &n,
					  &info, &e), 0);
		assert_int_equal(n, 40);
		assert_memory_equal(pt, kat_plain, 40);
		assert_int_equal(info.suite, v[i].suite);
		assert_int_equal(info.frame_len, 16);
		assert_int_equal(info.frames, 3);
		assert_int_equal(info.plaintext_len, 40);
		free(pt);
	}
	cmk_encctx_free(&ctx);
	cmk_esdk_wrapkey_free(&wk);
}

static void fill(unsigned char *b, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)((i * 2654435761u + seed) >> 13);
}

static void round_trip(uint16_t suite, uint32_t frame, size_t len)
{
	struct cmk_esdk_wrapkey wk;
	struct cmk_esdk_info info;
	struct cmk_encctx ctx;
	struct cmk_err e;
	unsigned char *pt = malloc(len ? len : 1), *ct, *back;
	size_t ct_len, back_len;
	uint32_t fl = frame ? frame : CMK_ESDK_FRAME_DEFAULT;

	assert_non_null(pt);
	fill(pt, len, (unsigned int)len);
	kat_key(&wk, 1);
	kat_ctx(&ctx);
	if (seal_buf(&wk, &ctx, suite, frame, pt, len, &ct, &ct_len, &e))
		fail_msg("seal of %zu bytes, frame %u: %s", len, fl, e.msg);
	if (open_buf(&wk, &ctx, ct, ct_len, &back, &back_len, &info, &e))
		fail_msg("open of %zu bytes, frame %u, suite %04x: %s", len, fl, suite, e.msg);
	assert_int_equal(back_len, len);
	assert_memory_equal(back, pt, len);
	assert_int_equal(info.suite, suite);
	assert_int_equal(info.frame_len, fl);
	/* Regular frames while more follows; an exact multiple ends in a full final frame. */
	assert_int_equal(info.frames, len ? (len + fl - 1) / fl : 1);
	free(pt);
	free(ct);
	free(back);
	cmk_encctx_free(&ctx);
	cmk_esdk_wrapkey_free(&wk);
}

static void round_trips_both_suites_frame_boundaries(void **state)
{
	const uint16_t suites[] = { CMK_ESDK_SUITE_COMMIT, CMK_ESDK_SUITE_COMMIT_ECDSA };
	const uint32_t frames[] = { 1, 4096, 0 };

	(void)state;
	for (size_t s = 0; s < 2; s++)
		for (size_t f = 0; f < 3; f++) {
			size_t fl = frames[f] ? frames[f] : CMK_ESDK_FRAME_DEFAULT;
			const size_t sizes[] = { 0, 1, fl - 1, fl, fl + 1, 2 * fl - 1,
						 2 * fl, 2 * fl + 1, 3 * fl + 7 };

			for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++)
				round_trip(suites[s], frames[f], sizes[z]);
		}
}

/*
 * VM-fork nonce reuse: two clones of a VM snapshot share OpenSSL's DRBG
 * state, so nonces drawn from it repeat across clones; the kernel's pool
 * (getrandom) is reseeded on a VM generation change.  Oracle: with the
 * wrapped getrandom() pinned to a constant pattern, the EDK IV and the
 * Message ID are exactly that pattern, i.e. they come from getrandom and
 * from nothing else (a DRBG's output would not be the pattern).
 */
static void nonces_come_from_getrandom_vm_fork(void **state)
{
	static const unsigned char pinned[32] = {
		0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
		0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
		0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
	};
	struct cmk_secret *dk = NULL;
	struct cmk_esdk_wrapkey wk;
	struct cmk_esdk_edk edk;
	struct cmk_encctx ctx;
	struct cmk_err e;
	unsigned char *ct;
	size_t n, nlen;

	(void)state;
	kat_key(&wk, 1);
	kat_ctx(&ctx);
	nlen = strlen(wk.name);
	assert_int_equal(cmk_secret_new(&dk, CMK_ESDK_DATA_KEY_LEN, &e), 0);
	tu_getrandom_fixed = 100;
	tu_getrandom_calls = 0;
	assert_int_equal(cmk_esdk_edk_wrap(&wk, dk, (const unsigned char *)"ec", 2,
					   &edk, &e), 0);
	assert_true(tu_getrandom_calls >= 1);
	assert_memory_equal(edk.info + nlen + 8, pinned, CMK_ESDK_EDK_IV_LEN);
	cmk_esdk_edk_free(&edk);

	assert_int_equal(seal_buf(&wk, &ctx, CMK_ESDK_SUITE_COMMIT, 0, "x", 1,
				  &ct, &n, &e), 0);
	tu_getrandom_fixed = 0;
	assert_true(n > 3 + CMK_ESDK_MESSAGE_ID_LEN);
	/* version 02, suite id (2 bytes), then the Message ID */
	assert_memory_equal(ct + 3, pinned, CMK_ESDK_MESSAGE_ID_LEN);
	free(ct);
	cmk_secret_free(&dk);
	cmk_encctx_free(&ctx);
	cmk_esdk_wrapkey_free(&wk);
}

/* ---- a VM clone -------------------------------------------------------------- */

/* base64 of a compressed P-384 point (49 bytes) */
#define PUB_B64_LEN 68

struct clone_seal {
	pid_t pid;
	unsigned char id[CMK_ESDK_MESSAGE_ID_LEN];
	char pub[PUB_B64_LEN];
};

/*
 * Seal one 0x0578 message; keep its Message ID and the signing key's
 * public half (the value after "aws-crypto-public-key" and its 2-byte
 * length in the header's encryption context).  No cmocka here: this runs
 * in the children.
 */
static int clone_seal_one(const struct cmk_esdk_wrapkey *wk,
			  const struct cmk_encctx *ctx, struct clone_seal *r)
{
	struct cmk_esdk_seal_opts o = { .suite = CMK_ESDK_SUITE_COMMIT_ECDSA,
					.name = "obj" };
	int in = memfd_create("pt", 0), out = memfd_create("ct", 0);
	unsigned char buf[4096], *k;
	struct cmk_err e;
	ssize_t n;

	if (in < 0 || out < 0 || write(in, "x", 1) != 1 || lseek(in, 0, SEEK_SET))
		return -1;
	if (cmk_esdk_seal(in, out, wk, ctx, &o, NULL, &e))
		return -1;
	n = pread(out, buf, sizeof(buf), 0);
	k = n > 0 ? memmem(buf, (size_t)n, CMK_ESDK_PUBKEY_CTX,
			   strlen(CMK_ESDK_PUBKEY_CTX)) : NULL;
	if (!k || k + strlen(CMK_ESDK_PUBKEY_CTX) + 2 + PUB_B64_LEN > buf + n)
		return -1;
	r->pid = getpid();
	memcpy(r->id, buf + 3, sizeof(r->id));
	memcpy(r->pub, k + strlen(CMK_ESDK_PUBKEY_CTX) + 2, PUB_B64_LEN);
	close(in);
	close(out);
	return 0;
}

/*
 * Runs as pid 1 of a new PID namespace, with warm DRBGs; clones itself
 * the way a VM snapshot is cloned: raw clone(2), so no fork handler runs,
 * into a nested PID namespace, so the copy is pid 1 as well and OpenSSL's
 * pid check sees no fork.  Both copies seal; the results go to @fd.
 */
static void clone_pair(int fd, const struct cmk_esdk_wrapkey *wk,
		       const struct cmk_encctx *ctx)
{
	struct clone_seal r[2] = { 0 };
	int p[2], st = 0;
	long c;

	if (clone_seal_one(wk, ctx, &r[0]) || pipe(p))
		_exit(2);
	c = syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, NULL);
	if (c < 0)
		_exit(3);
	if (c == 0) {
		int ok = !clone_seal_one(wk, ctx, &r[1]);

		_exit(ok && write(p[1], &r[1], sizeof(r[1])) == sizeof(r[1]) ? 0 : 4);
	}
	if (clone_seal_one(wk, ctx, &r[0]) ||
	    waitpid((pid_t)c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) ||
	    read(p[0], &r[1], sizeof(r[1])) != sizeof(r[1]))
		_exit(5);
	_exit(write(fd, r, sizeof(r)) == sizeof(r) ? 0 : 6);
}

/*
 * Oracle: an invariant.  Two copies of one process, identical down to the
 * pid, each sign a message: their per-message ECDSA keys must differ.
 * Without a reseed from the OS they are byte-identical, because both
 * draw from the same OpenSSL DRBG state.  The Message IDs (getrandom)
 * differing shows the copies really are two, each with the kernel's RNG.
 */
static void vm_clone_seal_signing_keys_differ(void **state)
{
	struct cmk_esdk_wrapkey wk;
	struct cmk_encctx ctx;
	struct clone_seal r[2];
	int p[2], st = 0;
	pid_t c;

	(void)state;
	kat_key(&wk, 1);
	kat_ctx(&ctx);
	assert_int_equal(pipe(p), 0);
	c = fork();
	assert_true(c >= 0);
	if (c == 0) {
		pid_t d;

		if (unshare(CLONE_NEWUSER | CLONE_NEWPID))
			_exit(77);
		d = fork();
		if (d == 0)
			clone_pair(p[1], &wk, &ctx);
		_exit(d > 0 && waitpid(d, &st, 0) == d && WIFEXITED(st) ?
		      WEXITSTATUS(st) : 9);
	}
	close(p[1]);
	assert_int_equal(waitpid(c, &st, 0), c);
	cmk_encctx_free(&ctx);
	cmk_esdk_wrapkey_free(&wk);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		close(p[0]);
		print_message("# no unprivileged user namespaces: cannot clone with the same pid\n");
		skip();
	}
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(read(p[0], r, sizeof(r)), sizeof(r));
	close(p[0]);
	assert_int_equal(r[0].pid, 1);
	assert_int_equal(r[1].pid, r[0].pid);
	assert_memory_not_equal(r[0].id, r[1].id, sizeof(r[0].id));
	assert_memory_not_equal(r[0].pub, r[1].pub, PUB_B64_LEN);
}

/* Empty input is one empty final frame (sequence 1). */
static void empty_input_is_one_empty_final_frame(void **state)
{
	struct cmk_esdk_wrapkey wk;
	struct cmk_encctx ctx;
	struct cmk_err e;
	unsigned char *ct;
	size_t n;

	(void)state;
	kat_key(&wk, 1);
	kat_ctx(&ctx);
	assert_int_equal(seal_buf(&wk, &ctx, 0, 0, "", 0, &ct, &n, &e), 0);
	/* ... | ff ff ff ff | 00 00 00 01 | IV = 0^8 00 00 00 01 | 00 00 00 00 | tag */
	assert_true(n > 40);
	assert_memory_equal(ct + n - 40, "\xff\xff\xff\xff\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\x01\0\0\0\0", 24);
	free(ct);
	cmk_encctx_free(&ctx);
	cmk_esdk_wrapkey_free(&wk);
}

/*
 * Tamper with one message: every bit of every byte in turn.  Each must be
 * refused, naming the object, and what was written must be whole authentic
 * frames before the damage (nothing of the damaged frame or after it).
 */
/*
 * written_ok() - what an open that failed wrote: whole frames of the
 * plaintext before the damage, never the damaged one, and never the final
 * frame (of a signed message: not before its signature verified).
 */
static void written_ok(const unsigned char *pt, size_t pn)
{
	assert_true(pn % 16 == 0 && pn < 40);
	assert_memory_equal(pt, kat_plain, pn);
}

static void every_bit_flipped_is_refused(void **state)
{
	const uint16_t suites[] = { CMK_ESDK_SUITE_COMMIT, CMK_ESDK_SUITE_COMMIT_ECDSA };
	struct cmk_esdk_wrapkey wk;
	struct cmk_encctx ctx;
	struct cmk_err e;

	(void)state;
	kat_key(&wk, 1);
	kat_ctx(&ctx);
	for (size_t s = 0; s < 2; s++) {
		unsigned char *ct, *pt;
		size_t n, pn;

		assert_int_equal(seal_buf(&wk, &ctx, suites[s], 16, kat_plain, 40,
					  &ct, &n, &e), 0);
		for (size_t i = 0; i < n; i++)
			for (int bit = 0; bit < 8; bit++) {
				int ret;

				ct[i] ^= (unsigned char)(1 << bit);
				ret = open_buf(&wk, &ctx, ct, n, &pt, &pn, NULL, &e);
				ct[i] ^= (unsigned char)(1 << bit);
				if (!ret)
					fail_msg("suite %04x: bit %d of byte %zu flipped, message accepted",
						 suites[s], bit, i);
				assert_true(ret < 0);
				assert_contains(e.msg, "obj: ");
				written_ok(pt, pn);
				free(pt);
			}
		free(ct);
	}
	cmk_encctx_free(&ctx);
	cmk_esdk_wrapkey_free(&wk);
}

/* Every truncation, and a byte too many, is refused. */
static void truncated_or_extended_is_refused(void **state)
{
	const uint16_t suites[] = { CMK_ESDK_SUITE_COMMIT, CMK_ESDK_SUITE_COMMIT_ECDSA };
	struct cmk_esdk_wrapkey wk;
	struct cmk_encctx ctx;
	struct cmk_err e;

	(void)state;
	kat_key(&wk, 1);
	kat_ctx(&ctx);
	for (size_t s = 0; s < 2; s++) {
		unsigned char *ct, *pt, *longer;
		size_t n, pn;

		assert_int_equal(seal_buf(&wk, &ctx, suites[s], 16, kat_plain, 40,
					  &ct, &n, &e), 0);
		for (size_t cut = 0; cut < n; cut++) {
			assert_int_equal(open_buf(&wk, &ctx, ct, cut, &pt, &pn, NULL, &e),
					 -EBADMSG);
			assert_true(strstr(e.msg, "truncated") ||
				    strstr(e.msg, "does not verify"));
			written_ok(pt, pn);
			free(pt);
		}
		longer = malloc(n + 1);
		memcpy(longer, ct, n);
		longer[n] = 0;
		assert_int_equal(open_buf(&wk, &ctx, longer, n + 1, &pt, &pn, NULL, &e),
				 -EBADMSG);
		assert_contains(e.msg, "trailing bytes");
		free(pt);
		free(longer);
		free(ct);
	}
	cmk_encctx_free(&ctx);
	cmk_esdk_wrapkey_free(&wk);
}

/* Offsets of the 0x0478 known answer's fields (see storage.rst). */
static void field_errors_name_field_and_offset(void **state)
{
	const struct {
		size_t off;
		unsigned char val;
		int ret;
		const char *msg;
	} cases[] = {
		{ 0, 0x01, -EPROTO, "header field Version at offset 0: 0x01: message format 1.0" },
		{ 0, 0x03, -EBADMSG, "header field Version at offset 0: 0x03" },
		{ 2, 0x79, -EPROTO, "header field Algorithm Suite ID at offset 1: 0x0479" },
		{ 1, 0x01, -EPROTO, "header field Algorithm Suite ID at offset 1: 0x0178" },
	};
	struct cmk_esdk_wrapkey wk;
	struct cmk_encctx ctx;
	struct cmk_err e;
	unsigned char m[sizeof(kat_0478)], *pt;
	size_t pn;

	(void)state;
	kat_key(&wk, 1);
	kat_ctx(&ctx);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(m, kat_0478, sizeof(m));
		m[cases[i].off] = cases[i].val;
		assert_int_equal(open_buf(&wk, &ctx, m, sizeof(m), &pt, &pn, NULL, &e),
				 cases[i].ret);
		assert_contains(e.msg, cases[i].msg);
		assert_int_equal(pn, 0);
		free(pt);
	}
	cmk_encctx_free(&ctx);
	cmk_esdk_wrapkey_free(&wk);
}

/*
 * Hand-built headers: each field with a bad value, the rest valid up to
 * it, is refused naming that field.
 */
struct hb {
	unsigned char b[512];
	size_t n;
};

static void hb_put(struct hb *h, const void *p, size_t n)
{
	memcpy(h->b + h->n, p, n);
	h->n += n;
}

static void hb_u16(struct hb *h, uint16_t v)
{
	unsigned char b[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	hb_put(h, b, 2);
}

static void hb_u32(struct hb *h, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
			       (unsigned char)(v >> 8), (unsigned char)v };

	hb_put(h, b, 4);
}

enum hb_fault {
	HB_OK, HB_KVP_COUNT0, HB_KVP_UNSORTED, HB_KVP_DUP, HB_KVP_LEN_SHORT,
	HB_EDK_COUNT0, HB_CONTENT_NONFRAMED, HB_FRAME0, HB_FRAME_HUGE,
};

static void hb_build(struct hb *h, enum hb_fault f)
{
	static const unsigned char zero[32];

	h->n = 0;
	hb_put(h, "\x02\x04\x78", 3);
	hb_put(h, zero, 32);				/* Message ID */
	if (f == HB_KVP_COUNT0) {
		hb_u16(h, 2);
		hb_u16(h, 0);
	} else {
		const char *k1 = "cluster", *k2 = f == HB_KVP_DUP ? "cluster" :
					       f == HB_KVP_UNSORTED ? "a" : "segment";
		size_t len = 2 + 4 + 7 + 2 + 4 + strlen(k2) + 24;

		hb_u16(h, (uint16_t)(f == HB_KVP_LEN_SHORT ? len - 1 : len));
		hb_u16(h, 2);
		hb_u16(h, 7);
		hb_put(h, k1, 7);
		hb_u16(h, 2);
		hb_put(h, "c1", 2);
		hb_u16(h, (uint16_t)strlen(k2));
		hb_put(h, k2, strlen(k2));
		hb_u16(h, 24);
		hb_put(h, "000000010000000000000001", 24);
	}
	hb_u16(h, f == HB_EDK_COUNT0 ? 0 : 1);
	if (f != HB_EDK_COUNT0) {
		hb_u16(h, 6);
		hb_put(h, "dm-cmk", 6);
		hb_u16(h, 4);
		hb_put(h, "kek/", 4);
		hb_u16(h, 48);
		hb_put(h, zero, 32);
		hb_put(h, zero, 16);
	}
	h->b[h->n++] = f == HB_CONTENT_NONFRAMED ? 0x01 : 0x02;
	hb_u32(h, f == HB_FRAME0 ? 0 : f == HB_FRAME_HUGE ? 0x7fffffff : 16);
	hb_put(h, zero, 32);				/* commit key */
	hb_put(h, zero, 16);				/* header tag */
}

static void malformed_header_fields_are_named(void **state)
{
	const struct { enum hb_fault f; int ret; const char *msg; } cases[] = {
		{ HB_KVP_COUNT0, -EBADMSG, "header field Key Value Pair Count at offset 37: 0 in a non-empty AAD" },
		{ HB_KVP_DUP, -EBADMSG, "header field Key at offset 54: \"cluster\" repeats" },
		{ HB_KVP_UNSORTED, -EBADMSG, "header field Key at offset 54: \"a\" sorts before \"cluster\"" },
		{ HB_KVP_LEN_SHORT, -EBADMSG, "Key Value Pairs" },
		{ HB_EDK_COUNT0, -EBADMSG, "header field Encrypted Data Key Count at offset" },
		{ HB_CONTENT_NONFRAMED, -EPROTO, "header field Content Type at offset" },
		{ HB_FRAME0, -EBADMSG, "header field Frame Length at offset" },
		{ HB_FRAME_HUGE, -EPROTO, "header field Frame Length at offset" },
		/* valid up to the end: the EDK is not ours */
		{ HB_OK, -EKEYREJECTED, "none of its 1 Encrypted Data Keys is for keyring dm-cmk/kek/" },
	};
	struct cmk_esdk_wrapkey wk;
	struct cmk_encctx ctx;
	struct cmk_err e;
	unsigned char *pt;
	size_t pn;
	struct hb h;

	(void)state;
	kat_key(&wk, 1);
	kat_ctx(&ctx);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		hb_build(&h, cases[i].f);
		assert_int_equal(open_buf(&wk, &ctx, h.b, h.n, &pt, &pn, NULL, &e),
				 cases[i].ret);
		assert_contains(e.msg, cases[i].msg);
		assert_int_equal(pn, 0);
		free(pt);
	}
	cmk_encctx_free(&ctx);
	cmk_esdk_wrapkey_free(&wk);
}

/* A message whose context differs is refused, naming the key, before any unwrap. */
static void other_context_is_refused_naming_key(void **state)
{
	struct cmk_esdk_wrapkey wk;
	struct cmk_encctx want;
	struct cmk_err e;
	unsigned char *pt;
	size_t pn;

	(void)state;
	kat_key(&wk, 1);
	/* different value */
	cmk_encctx_init(&want);
	assert_int_equal(cmk_encctx_add(&want, "segment", "000000010000000000000002", &e), 0);
	assert_int_equal(cmk_encctx_add(&want, "cluster", "c1", &e), 0);
	assert_int_equal(open_buf(&wk, &want, kat_0578, sizeof(kat_0578), &pt, &pn, NULL, &e),
			 -EPERM);
	assert_contains(e.msg, "encryption context key \"segment\" is \"000000010000000000000001\", expected \"000000010000000000000002\"");
	assert_int_equal(pn, 0);
	free(pt);
	cmk_encctx_free(&want);
	/* missing key */
	cmk_encctx_init(&want);
	assert_int_equal(cmk_encctx_add(&want, "segment", "000000010000000000000001", &e), 0);
	assert_int_equal(cmk_encctx_add(&want, "cluster", "c1", &e), 0);
	assert_int_equal(cmk_encctx_add(&want, "timeline", "1", &e), 0);
	assert_int_equal(open_buf(&wk, &want, kat_0478, sizeof(kat_0478), &pt, &pn, NULL, &e),
			 -EPERM);
	assert_contains(e.msg, "key \"timeline\" is missing");
	free(pt);
	cmk_encctx_free(&want);
	/* extra key in the object */
	cmk_encctx_init(&want);
	assert_int_equal(cmk_encctx_add(&want, "cluster", "c1", &e), 0);
	assert_int_equal(open_buf(&wk, &want, kat_0478, sizeof(kat_0478), &pt, &pn, NULL, &e),
			 -EPERM);
	assert_contains(e.msg, "key \"segment\" (= \"000000010000000000000001\") is not expected");
	free(pt);
	cmk_encctx_free(&want);
	cmk_esdk_wrapkey_free(&wk);
}

/* Another KEK version is another keyring; another KEK of the same name fails the EDK. */
static void other_wrapping_key_is_refused(void **state)
{
	struct cmk_esdk_wrapkey v2, forged;
	struct cmk_secret *kek = NULL;
	struct cmk_encctx ctx;
	struct cmk_err e;
	unsigned char *pt;
	size_t pn;

	(void)state;
	kat_key(&v2, 2);
	kat_ctx(&ctx);
	assert_int_equal(open_buf(&v2, &ctx, kat_0478, sizeof(kat_0478), &pt, &pn, NULL, &e),
			 -EKEYREJECTED);
	assert_contains(e.msg, "sealed under another KEK or KEK version");
	free(pt);
	assert_int_equal(cmk_secret_random(&kek, 32, &e), 0);
	assert_int_equal(cmk_esdk_wrapkey_derive(kek, kat_kek_id, 1, &forged, &e), 0);
	assert_int_equal(open_buf(&forged, &ctx, kat_0478, sizeof(kat_0478), &pt, &pn, NULL, &e),
			 -EBADMSG);
	assert_contains(e.msg, "Encrypted Data Key 1: EDK of kek/00112233-4455-6677-8899-aabbccddeeff/v1 does not authenticate");
	assert_int_equal(pn, 0);
	free(pt);
	cmk_secret_free(&kek);
	cmk_encctx_free(&ctx);
	cmk_esdk_wrapkey_free(&v2);
	cmk_esdk_wrapkey_free(&forged);
}

/* Frames swapped: refused at the first one out of place, nothing of it written. */
static void reordered_frames_are_refused(void **state)
{
	struct cmk_esdk_wrapkey wk;
	struct cmk_encctx ctx;
	struct cmk_err e;
	unsigned char *ct, *pt, tmp[48];
	size_t n, pn, body;

	(void)state;
	kat_key(&wk, 1);
	kat_ctx(&ctx);
	assert_int_equal(seal_buf(&wk, &ctx, CMK_ESDK_SUITE_COMMIT, 16, kat_plain, 40,
				  &ct, &n, &e), 0);
	/* two regular frames of 4 + 12 + 16 + 16 bytes, then the final one */
	body = n - (4 + 4 + 12 + 4 + 8 + 16) - 2 * 48;
	memcpy(tmp, ct + body, 48);
	memcpy(ct + body, ct + body + 48, 48);
	memcpy(ct + body + 48, tmp, 48);
	assert_int_equal(open_buf(&wk, &ctx, ct, n, &pt, &pn, NULL, &e), -EBADMSG);
	assert_contains(e.msg, "body field Sequence Number at offset");
	assert_contains(e.msg, "2, expected 1");
	assert_int_equal(pn, 0);
	free(pt);
	free(ct);
	cmk_encctx_free(&ctx);
	cmk_esdk_wrapkey_free(&wk);
}

static void seal_refuses_reserved_context_and_bad_options(void **state)
{
	struct cmk_esdk_wrapkey wk;
	struct cmk_encctx ctx;
	struct cmk_err e;
	unsigned char *ct;
	size_t n;

	(void)state;
	kat_key(&wk, 1);
	cmk_encctx_init(&ctx);
	assert_int_equal(cmk_encctx_add(&ctx, "aws-crypto-public-key", "x", &e), 0);
	assert_int_equal(seal_buf(&wk, &ctx, 0, 0, "a", 1, &ct, &n, &e), -EINVAL);
	assert_contains(e.msg, "the prefix \"aws-crypto-\" is reserved");
	assert_int_equal(n, 0);
	free(ct);
	cmk_encctx_free(&ctx);
	kat_ctx(&ctx);
	assert_int_equal(seal_buf(&wk, &ctx, 0x0178, 0, "a", 1, &ct, &n, &e), -EINVAL);
	free(ct);
	assert_int_equal(seal_buf(&wk, &ctx, 0, CMK_ESDK_FRAME_MAX + 1, "a", 1, &ct, &n, &e),
			 -EINVAL);
	free(ct);
	cmk_encctx_free(&ctx);
	cmk_esdk_wrapkey_free(&wk);
}

/*
 * The ESDK's encryption context is UTF-8 (structures.md); no SDK opens a
 * message whose context is not.  Oracle: seal refuses invalid sequences
 * (stray bytes, overlongs, surrogates, beyond U+10FFFF) with -EINVAL and
 * writes nothing, takes valid multi-byte ones; the opener refuses a header
 * carrying one with -EBADMSG naming UTF-8, nothing written.
 */
static void seal_and_open_refuse_non_utf8_context(void **state)
{
	static const char *const bad_utf8[] = {
		"\xff\xfe", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
		"\xf4\x90\x80\x80", "a\x80", "\xe2\x82",
	};
	struct cmk_esdk_wrapkey wk;
	struct cmk_encctx ctx;
	struct cmk_err e;
	unsigned char *ct, *pt, *at;
	size_t n, pn;

	(void)state;
	kat_key(&wk, 1);
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		cmk_encctx_init(&ctx);
		assert_int_equal(cmk_encctx_add(&ctx, "segment", bad_utf8[i], &e), 0);
		assert_int_equal(seal_buf(&wk, &ctx, 0, 0, "a", 1, &ct, &n, &e), -EINVAL);
		assert_contains(e.msg, "not valid UTF-8");
		assert_int_equal(n, 0);
		free(ct);
		cmk_encctx_free(&ctx);
	}
	cmk_encctx_init(&ctx);
	assert_int_equal(cmk_encctx_add(&ctx, "s\xc3\xa9gment", "\xe2\x82\xac\xf0\x9d\x84\x9e", &e), 0);
	assert_int_equal(seal_buf(&wk, &ctx, 0, 0, "a", 1, &ct, &n, &e), 0);
	assert_int_equal(open_buf(&wk, &ctx, ct, n, &pt, &pn, NULL, &e), 0);
	free(pt);
	/* The same header with the value's first byte made a stray 0xff. */
	at = memmem(ct, n, "\xe2\x82\xac", 3);
	assert_non_null(at);
	*at = 0xff;
	assert_int_equal(open_buf(&wk, &ctx, ct, n, &pt, &pn, NULL, &e), -EBADMSG);
	assert_contains(e.msg, "not valid UTF-8");
	assert_int_equal(pn, 0);
	free(pt);
	free(ct);
	cmk_encctx_free(&ctx);
	cmk_esdk_wrapkey_free(&wk);
}

/*
 * A refused context is quoted from a header not yet authenticated: the
 * message says so, and escapes what is not printable ASCII (a terminal
 * a multi-byte character; control characters are refused earlier, by the
 * context parser).  Oracle: no byte outside 0x20..0x7e in
 * the message, the escapes present, "unverified" present.
 */
static void refused_context_is_escaped_and_labelled_unverified(void **state)
{
	struct cmk_esdk_wrapkey wk;
	struct cmk_encctx ctx, want;
	struct cmk_err e;
	unsigned char *ct, *pt;
	size_t n, pn;

	(void)state;
	kat_key(&wk, 1);
	cmk_encctx_init(&ctx);
	cmk_encctx_init(&want);
	assert_int_equal(cmk_encctx_add(&ctx, "segment", "\xc3\xa9\"x\\", &e), 0);
	assert_int_equal(cmk_encctx_add(&want, "segment", "1", &e), 0);
	assert_int_equal(seal_buf(&wk, &ctx, 0, 0, "a", 1, &ct, &n, &e), 0);
	assert_int_equal(open_buf(&wk, &want, ct, n, &pt, &pn, NULL, &e), -EPERM);
	assert_contains(e.msg, "\"\\xc3\\xa9\\\"x\\\\\"");
	assert_contains(e.msg, "verified");
	for (const char *c = e.msg; *c; c++)
		assert_true(*c >= 0x20 && *c < 0x7f);
	free(pt);
	free(ct);
	/* An extra pair: its key and value are escaped too. */
	cmk_encctx_free(&want);
	cmk_encctx_init(&want);
	cmk_encctx_free(&ctx);
	cmk_encctx_init(&ctx);
	assert_int_equal(cmk_encctx_add(&ctx, "k\xc3\xa9", "\xe2\x82\xac", &e), 0);
	assert_int_equal(seal_buf(&wk, &ctx, 0, 0, "a", 1, &ct, &n, &e), 0);
	assert_int_equal(open_buf(&wk, &want, ct, n, &pt, &pn, NULL, &e), -EPERM);
	assert_contains(e.msg, "\"k\\xc3\\xa9\" (= \"\\xe2\\x82\\xac\")");
	assert_contains(e.msg, "verified");
	for (const char *c = e.msg; *c; c++)
		assert_true(*c >= 0x20 && *c < 0x7f);
	free(pt);
	free(ct);
	cmk_encctx_free(&ctx);
	cmk_encctx_free(&want);
	cmk_esdk_wrapkey_free(&wk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wrapkey_derivation_known_answer),
		cmocka_unit_test(opens_javascript_esdk_messages),
		cmocka_unit_test(round_trips_both_suites_frame_boundaries),
		cmocka_unit_test(empty_input_is_one_empty_final_frame),
		cmocka_unit_test(nonces_come_from_getrandom_vm_fork),
		cmocka_unit_test(vm_clone_seal_signing_keys_differ),
		cmocka_unit_test(every_bit_flipped_is_refused),
		cmocka_unit_test(truncated_or_extended_is_refused),
		cmocka_unit_test(field_errors_name_field_and_offset),
		cmocka_unit_test(malformed_header_fields_are_named),
		cmocka_unit_test(other_context_is_refused_naming_key),
		cmocka_unit_test(other_wrapping_key_is_refused),
		cmocka_unit_test(reordered_frames_are_refused),
		cmocka_unit_test(seal_and_open_refuse_non_utf8_context),
		cmocka_unit_test(refused_context_is_escaped_and_labelled_unverified),
		cmocka_unit_test(seal_refuses_reserved_context_and_bad_options),
	};

	return cmocka_run_group_tests_name("esdk", tests, NULL, NULL);
}
