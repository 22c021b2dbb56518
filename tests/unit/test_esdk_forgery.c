// SPDX-License-Identifier: GPL-2.0
/*
 * test_esdk_forgery.c - forgeries that only the checks they aim at catch.
 *
 * 1. A message whose Algorithm Suite Data (commit key) is wrong but whose
 *    header tag is valid (re-computed by someone holding the data key)
 *    must be refused by the commitment check.  No test in test_esdk.c
 *    reaches that check alone: flipping a commit bit also breaks the
 *    header tag, so deleting the CRYPTO_memcmp() keeps every test green.
 * 2. A final frame whose Encrypted Content Length exceeds Frame Length,
 *    with enough bytes behind it to fill the reader's buffer, must be
 *    refused before decryption.  Without the bound the GCM decrypt writes
 *    past the frame_len-byte plaintext buffer (heap overflow); no test in
 *    test_esdk.c reaches it (its truncated inputs end first).
 */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "core/secret.h"
#include "format/esdk.h"

static const char plain[] = "dm-cmk known answer, 40 bytes of text!!!";
static const uint8_t kek_id[16] = {
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
	unsigned char *b = malloc(n ? (size_t)n + 256 : 257);

	assert_non_null(b);
	assert_int_equal(pread(fd, b, (size_t)n, 0), n);
	*len = (size_t)n;
	return b;
}

static void key(struct cmk_esdk_wrapkey *wk)
{
	struct cmk_secret *kek = NULL;
	struct cmk_err e;

	assert_int_equal(cmk_secret_new(&kek, 32, &e), 0);
	for (int i = 0; i < 32; i++)
		cmk_secret_data(kek)[i] = (unsigned char)i;
	assert_int_equal(cmk_esdk_wrapkey_derive(kek, kek_id, 1, wk, &e), 0);
	cmk_secret_free(&kek);
}

static void ctx_of(struct cmk_encctx *c)
{
	struct cmk_err e;

	cmk_encctx_init(c);
	assert_int_equal(cmk_encctx_add(c, "cluster", "c1", &e), 0);
}

static unsigned char *seal(const struct cmk_esdk_wrapkey *wk,
			   const struct cmk_encctx *c, size_t *n)
{
	struct cmk_esdk_seal_opts o = { .suite = CMK_ESDK_SUITE_COMMIT,
					.frame_len = 16, .name = "obj" };
	int in = memfd_of(plain, 40), out = memfd_of(NULL, 0);
	struct cmk_err e;
	unsigned char *ct;

	assert_int_equal(cmk_esdk_seal(in, out, wk, c, &o, NULL, &e), 0);
	ct = contents(out, n);
	close(in);
	close(out);
	return ct;
}

static int open_msg(const struct cmk_esdk_wrapkey *wk, const struct cmk_encctx *c,
		    const unsigned char *m, size_t n, size_t *written,
		    struct cmk_err *e)
{
	const struct cmk_esdk_wrapkey *keys[1] = { wk };
	int in = memfd_of(m, n), out = memfd_of(NULL, 0);
	int ret = cmk_esdk_open(in, out, keys, 1, c, "obj", NULL, e);

	*written = (size_t)lseek(out, 0, SEEK_END);
	close(in);
	close(out);
	return ret;
}

static uint16_t be16(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* Offsets of a one-EDK header as cmk_esdk_seal() writes it. */
struct layout { size_t ec, ec_len, edk, commit, tag, body; };

static struct layout parse(const unsigned char *m)
{
	struct layout l;
	size_t p;

	l.ec = 37;
	l.ec_len = be16(m + 35);
	p = 37 + l.ec_len;
	l.edk = p + 2;			/* after the count */
	p = l.edk;
	p += 2 + be16(m + p);		/* provider id */
	p += 2 + be16(m + p);		/* provider info */
	p += 2 + be16(m + p);		/* ciphertext */
	p += 1 + 4;			/* content type, frame length */
	l.commit = p;
	l.tag = p + 32;
	l.body = p + 48;
	return l;
}

/* Re-compute the header tag of @m (tag at @tag_off) under data key @dk. */
static void retag(unsigned char *m, size_t tag_off, const struct cmk_secret *dk)
{
	unsigned char enc[32], iv[12] = { 0 }, info[11], dummy[16];
	EVP_KDF *kdf;
	EVP_KDF_CTX *kc;
	EVP_CIPHER_CTX *g;
	OSSL_PARAM prm[5];
	int outl;

	info[0] = 0x04; info[1] = 0x78; memcpy(info + 2, "DERIVEKEY", 9);
	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	kc = EVP_KDF_CTX_new(kdf);
	prm[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA512", 0);
	prm[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						   (void *)cmk_secret_cdata(dk), 32);
	prm[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, m + 3, 32);
	prm[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, 11);
	prm[4] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_KDF_derive(kc, enc, 32, prm), 1);
	EVP_KDF_CTX_free(kc);
	EVP_KDF_free(kdf);
	g = EVP_CIPHER_CTX_new();
	assert_int_equal(EVP_EncryptInit_ex(g, EVP_aes_256_gcm(), NULL, enc, iv), 1);
	assert_int_equal(EVP_EncryptUpdate(g, NULL, &outl, m, (int)tag_off), 1);
	assert_int_equal(EVP_EncryptFinal_ex(g, dummy, &outl), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(g, EVP_CTRL_GCM_GET_TAG, 16, m + tag_off), 1);
	EVP_CIPHER_CTX_free(g);
	OPENSSL_cleanse(enc, sizeof(enc));
}

/*
 * Two EDKs of our keyring, the first damaged (its GCM tag flipped), the
 * header tag made valid again: the opener must go on to the second and
 * open the message, as the raw AES keyring's OnDecrypt does.  Oracle: the
 * plaintext comes back whole.
 */
static void second_edk_opens_after_the_first_fails(void **state)
{
	struct cmk_esdk_wrapkey wk;
	struct cmk_encctx c;
	struct cmk_esdk_edk edk = { 0 };
	struct cmk_secret *dk = NULL;
	struct cmk_err e;
	unsigned char *m, *m2;
	size_t n, n2, w, p, elen;
	struct layout l;
	int in, out;
	const struct cmk_esdk_wrapkey *keys[1];
	char got[41] = { 0 };

	(void)state;
	key(&wk);
	keys[0] = &wk;
	ctx_of(&c);
	m = seal(&wk, &c, &n);
	l = parse(m);
	p = l.edk;
	edk.provider_id_len = be16(m + p); edk.provider_id = m + p + 2; p += 2 + edk.provider_id_len;
	edk.info_len = be16(m + p); edk.info = m + p + 2; p += 2 + edk.info_len;
	edk.ct_len = be16(m + p); edk.ct = m + p + 2; p += 2 + edk.ct_len;
	elen = p - l.edk;
	assert_int_equal(cmk_esdk_edk_unwrap(&wk, &edk, m + l.ec, l.ec_len, &dk, &e), 0);
	n2 = n + elen;
	m2 = malloc(n2);
	assert_non_null(m2);
	memcpy(m2, m, l.edk);
	m2[l.edk - 1] = 2;				/* EDK count */
	memcpy(m2 + l.edk, m + l.edk, elen);
	m2[l.edk + elen - 1] ^= 1;			/* first EDK's tag */
	memcpy(m2 + l.edk + elen, m + l.edk, n - l.edk);
	retag(m2, l.tag + elen, dk);
	in = memfd_of(m2, n2);
	out = memfd_of(NULL, 0);
	assert_int_equal(cmk_esdk_open(in, out, keys, 1, &c, "obj", NULL, &e), 0);
	w = (size_t)lseek(out, 0, SEEK_END);
	assert_int_equal(w, 40);
	assert_int_equal(pread(out, got, 40, 0), 40);
	assert_memory_equal(got, plain, 40);
	close(in);
	close(out);
	cmk_secret_free(&dk);
	free(m);
	free(m2);
	cmk_encctx_free(&c);
	cmk_esdk_wrapkey_free(&wk);
}

static void commit_mismatch_with_valid_header_tag_is_refused(void **state)
{
	struct cmk_esdk_wrapkey wk;
	struct cmk_encctx c;
	struct cmk_esdk_edk edk = { 0 };
	struct cmk_secret *dk = NULL;
	struct cmk_err e;
	unsigned char *m, enc[32], iv[12] = { 0 }, info[11], dummy[16];
	size_t n, w, p;
	struct layout l;
	EVP_KDF *kdf;
	EVP_KDF_CTX *kc;
	EVP_CIPHER_CTX *g;
	OSSL_PARAM prm[5];
	int outl;

	(void)state;
	key(&wk);
	ctx_of(&c);
	m = seal(&wk, &c, &n);
	l = parse(m);
	/* The data key, as anyone holding the wrapping key gets it. */
	p = l.edk;
	edk.provider_id_len = be16(m + p); edk.provider_id = m + p + 2; p += 2 + edk.provider_id_len;
	edk.info_len = be16(m + p); edk.info = m + p + 2; p += 2 + edk.info_len;
	edk.ct_len = be16(m + p); edk.ct = m + p + 2;
	assert_int_equal(cmk_esdk_edk_unwrap(&wk, &edk, m + l.ec, l.ec_len, &dk, &e), 0);
	/* message key = HKDF-SHA512(dk, salt = Message ID, info = 04 78 | DERIVEKEY) */
	info[0] = 0x04; info[1] = 0x78; memcpy(info + 2, "DERIVEKEY", 9);
	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	kc = EVP_KDF_CTX_new(kdf);
	prm[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA512", 0);
	prm[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						   (void *)cmk_secret_cdata(dk), 32);
	prm[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, m + 3, 32);
	prm[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, 11);
	prm[4] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_KDF_derive(kc, enc, 32, prm), 1);
	EVP_KDF_CTX_free(kc);
	EVP_KDF_free(kdf);
	/* A wrong commit key, and the header tag made valid again. */
	m[l.commit] ^= 1;
	g = EVP_CIPHER_CTX_new();
	assert_int_equal(EVP_EncryptInit_ex(g, EVP_aes_256_gcm(), NULL, enc, iv), 1);
	assert_int_equal(EVP_EncryptUpdate(g, NULL, &outl, m, (int)l.tag), 1);
	assert_int_equal(EVP_EncryptFinal_ex(g, dummy, &outl), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(g, EVP_CTRL_GCM_GET_TAG, 16, m + l.tag), 1);
	EVP_CIPHER_CTX_free(g);

	assert_int_equal(open_msg(&wk, &c, m, n, &w, &e), -EBADMSG);
	assert_contains(e.msg, "commit key does not match");
	assert_int_equal(w, 0);
	cmk_secret_free(&dk);
	free(m);
	cmk_encctx_free(&c);
	cmk_esdk_wrapkey_free(&wk);
}

static void final_frame_longer_than_frame_length_is_refused(void **state)
{
	struct cmk_esdk_wrapkey wk;
	struct cmk_encctx c;
	struct cmk_err e;
	unsigned char *m;
	size_t n, w, fin;
	struct layout l;

	(void)state;
	key(&wk);
	ctx_of(&c);
	m = seal(&wk, &c, &n);		/* frames 16, 16, final 8 */
	l = parse(m);
	fin = l.body + 2 * (4 + 12 + 16 + 16);
	assert_memory_equal(m + fin, "\xff\xff\xff\xff\0\0\0\x03", 8);
	/* Encrypted Content Length 8 -> 200, and 200 more bytes behind it. */
	m[fin + 8 + 12 + 3] = 200;
	memset(m + n, 0x41, 200);
	n += 200;
	assert_int_equal(open_msg(&wk, &c, m, n, &w, &e), -EBADMSG);
	assert_contains(e.msg, "is more than Frame Length 16");
	assert_int_equal(w, 32);
	free(m);
	cmk_encctx_free(&c);
	cmk_esdk_wrapkey_free(&wk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(commit_mismatch_with_valid_header_tag_is_refused),
		cmocka_unit_test(final_frame_longer_than_frame_length_is_refused),
		cmocka_unit_test(second_edk_opens_after_the_first_fails),
	};

	return cmocka_run_group_tests_name("esdk_forgery", tests, NULL, NULL);
}
