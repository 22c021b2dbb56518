// SPDX-License-Identifier: GPL-2.0
/*
 * esdk.c - AWS Encryption SDK messages, format 2.0, framed, committing
 * (see esdk.h; the byte layout is in Documentation/storage.rst, the field
 * names are the specification's).
 */
#include "format/esdk.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "core/codec.h"
#include "core/random.h"

#define VERSION_2		0x02
#define CONTENT_FRAMED		0x02
#define IV_LEN			12
#define TAG_LEN			16
#define COMMIT_LEN		32	/* Algorithm Suite Data of 0x0478/0x0578 */
#define ENC_KEY_LEN		32
#define SEQ_END			0xffffffffu
#define PUBKEY_LEN		49	/* compressed P-384 point */
#define SIG_LEN_USUAL		103	/* what the SDKs write (DER, fixed length) */
#define HEADER_MAX		(1u << 20)
#define RDR_MIN			65536
/*
 * The streaming path moves this much plaintext per read()/writev() (or
 * one frame, if larger): few system calls, and a buffer that stays in a
 * core's L2 cache while it is encrypted or decrypted in place.
 */
#define IO_BATCH_BYTES		(1u << 20)
/* Frames per batch at most: 3 iovecs each stays within IOV_MAX (1024). */
#define IO_BATCH_FRAMES		256
/* A frame's fields before its content: the final frame's are the longest. */
#define FRAME_HDR_MAX		(4 + 4 + IV_LEN + 4)
#define FRAME_AAD_REGULAR	"AWSKMSEncryptionClient Frame"
#define FRAME_AAD_FINAL		"AWSKMSEncryptionClient Final Frame"

const char *cmk_esdk_suite_name(uint16_t suite)
{
	switch (suite) {
	case CMK_ESDK_SUITE_COMMIT:
		return "0x0478 (AES-256-GCM, HKDF-SHA512, commit key)";
	case CMK_ESDK_SUITE_COMMIT_ECDSA:
		return "0x0578 (AES-256-GCM, HKDF-SHA512, commit key, ECDSA P-384)";
	default:
		return "unknown";
	}
}

static bool suite_signs(uint16_t suite)
{
	return suite == CMK_ESDK_SUITE_COMMIT_ECDSA;
}

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* The frame IV: the sequence number, big-endian, left-padded with zeros. */
static void frame_iv(unsigned char iv[IV_LEN], uint32_t seq)
{
	memset(iv, 0, IV_LEN - 4);
	put32(iv + IV_LEN - 4, seq);
}

/* ---- buffered input ------------------------------------------------------ */

/*
 * A byte at stream offset X sits at a buffer address equal to X modulo
 * RDR_ALIGN: the kernel's copy out of the page cache then has source and
 * destination aligned alike.  One byte off (where the seal's byte of
 * look-ahead could put every read) halves the speed of that copy, and so
 * of read and AES-GCM together (which does not mind alignment itself).
 */
#define RDR_ALIGN		64

struct rdr {
	int fd;
	const char *name;
	unsigned char *buf;	/* RDR_ALIGN-aligned, cap + RDR_ALIGN bytes */
	size_t cap, pos, len;
	bool eof;
	uint64_t off;		/* offset in the stream of buf[pos] */
};

static int rdr_alloc(struct rdr *r, size_t cap, unsigned char **buf,
		     struct cmk_err *e)
{
	void *p;

	if (posix_memalign(&p, RDR_ALIGN, cap + RDR_ALIGN))
		return cmk_errf(e, -ENOMEM, "%s: out of memory for a %zu-byte buffer",
				r->name, cap);
	*buf = p;
	return 0;
}

static int rdr_init(struct rdr *r, int fd, const char *name, size_t cap,
		    struct cmk_err *e)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->name = name;
	r->cap = cap < RDR_MIN ? RDR_MIN : cap;
	return rdr_alloc(r, r->cap, &r->buf, e);
}

/* Where buf[pos] goes when the available bytes move. */
static size_t rdr_aligned_pos(const struct rdr *r)
{
	return (size_t)(r->off % RDR_ALIGN);
}

static int rdr_grow(struct rdr *r, size_t cap, struct cmk_err *e)
{
	size_t avail = r->len - r->pos, pos = rdr_aligned_pos(r);
	unsigned char *nb = NULL;
	int ret;

	if (cap <= r->cap)
		return 0;
	ret = rdr_alloc(r, cap, &nb, e);
	if (ret)
		return ret;
	memcpy(nb + pos, r->buf + r->pos, avail);
	OPENSSL_cleanse(r->buf, r->cap + RDR_ALIGN);
	free(r->buf);
	r->buf = nb;
	r->pos = pos;
	r->len = pos + avail;
	r->cap = cap;
	return 0;
}

static void rdr_free(struct rdr *r)
{
	if (r->buf)
		OPENSSL_cleanse(r->buf, r->cap + RDR_ALIGN);
	free(r->buf);
	r->buf = NULL;
}

static size_t rdr_avail(const struct rdr *r)
{
	return r->len - r->pos;
}

/*
 * rdr_fill() - make @want (at most the capacity) bytes available, fewer
 * only at end of file, reading as much as fits.  What is available may
 * move to the front (pointers into it, and anything before buf[pos], are
 * then stale), but only when the buffer's tail is too short for @want.
 */
static int rdr_fill(struct rdr *r, size_t want, struct cmk_err *e)
{
	if (want > r->cap)
		return cmk_errf(e, -EOVERFLOW,
				"%s: internal error: %zu bytes wanted from a %zu-byte buffer",
				r->name, want, r->cap);
	while (rdr_avail(r) < want && !r->eof) {
		size_t size = r->cap + RDR_ALIGN;
		ssize_t n;

		if (size - r->pos < want) {
			size_t avail = rdr_avail(r), pos = rdr_aligned_pos(r);

			memmove(r->buf + pos, r->buf + r->pos, avail);
			r->pos = pos;
			r->len = pos + avail;
		}
		n = read(r->fd, r->buf + r->len, size - r->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cmk_errf(e, -errno, "%s: read failed at offset %llu: %s",
					r->name,
					(unsigned long long)(r->off + rdr_avail(r)),
					strerror(errno));
		if (n == 0)
			r->eof = true;
		r->len += (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const unsigned char *p, size_t len,
		      const char *name, struct cmk_err *e)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cmk_errf(e, -errno, "%s: write failed: %s", name,
					strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * writev_full() - write all of @iov (@cnt entries, consumed as they go);
 * no copy in userspace, however many frames the batch holds.
 */
static int writev_full(int fd, struct iovec *iov, int cnt, const char *name,
		       struct cmk_err *e)
{
	while (cnt) {
		ssize_t n = writev(fd, iov, cnt > IOV_MAX ? IOV_MAX : cnt);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cmk_errf(e, -errno, "%s: write failed: %s", name,
					strerror(errno));
		while (cnt && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (unsigned char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/*
 * A stream read once from start to end: let the kernel read ahead more
 * (a no-op on pipes, which fail with ESPIPE, and on tmpfs).
 */
static void advise_sequential(int fd)
{
	struct stat st;

	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	/*
	 * A pipe holds 64 KiB by default: a read() gets at most that, and a
	 * writer of small blocks (8 KiB: dd, pg_basebackup) wakes us for
	 * each.  A batch's worth lets the writer fill it while we encrypt
	 * the last one, and one read() take it.  Best effort (the limit is
	 * /proc/sys/fs/pipe-max-size, 1 MiB by default).  Only grown: a
	 * writer may have made it larger.
	 */
	if (!fstat(fd, &st) && S_ISFIFO(st.st_mode)) {
		int sz = fcntl(fd, F_GETPIPE_SZ);

		if (sz >= 0 && (unsigned int)sz < IO_BATCH_BYTES)
			(void)fcntl(fd, F_SETPIPE_SZ, (int)IO_BATCH_BYTES);
	}
}

/* ---- keys ------------------------------------------------------------------ */

/*
 * derive_keys() - HKDF-SHA512 with the Message ID as salt: the encryption
 * key (info: suite ID | "DERIVEKEY") and the commit key (info: "COMMITKEY").
 */
static int derive_keys(const struct cmk_secret *data_key, uint16_t suite,
		       const uint8_t msgid[CMK_ESDK_MESSAGE_ID_LEN],
		       struct cmk_secret **enc_key, unsigned char commit[COMMIT_LEN],
		       struct cmk_err *e)
{
	unsigned char info[2 + 9];
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[5];
	int ret;

	ret = cmk_secret_new(enc_key, ENC_KEY_LEN, e);
	if (ret)
		return ret;
	kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	if (!kctx) {
		ret = cmk_errf(e, -ENOMEM, "data key derivation: OpenSSL has no HKDF");
		goto out;
	}
	put16(info, suite);
	memcpy(info + 2, "DERIVEKEY", 9);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						     (char *)"SHA512", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						      (void *)cmk_secret_cdata(data_key),
						      cmk_secret_len(data_key));
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
						      (void *)msgid,
						      CMK_ESDK_MESSAGE_ID_LEN);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info,
						      sizeof(info));
	params[4] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, cmk_secret_data(*enc_key), ENC_KEY_LEN,
			   params) != 1)
		goto fail;
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
						      (void *)"COMMITKEY", 9);
	if (EVP_KDF_derive(kctx, commit, COMMIT_LEN, params) != 1)
		goto fail;
	ret = 0;
	goto out;
fail:
	ret = cmk_errf(e, -EIO, "data key derivation: HKDF-SHA512 failed");
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	if (ret)
		cmk_secret_free(enc_key);
	return ret;
}

/* ---- encryption context -------------------------------------------------- */

/* The serialisation of structures.md: count, then sorted key/value pairs. */
static int ec_serialize(const struct cmk_encctx *c, unsigned char **out,
			size_t *len, struct cmk_err *e)
{
	size_t n = c->n ? 2 : 0;
	unsigned char *p;

	for (size_t i = 0; i < c->n; i++)
		n += 4 + strlen(c->pairs[i].key) + strlen(c->pairs[i].value);
	if (n > UINT16_MAX)
		return cmk_errf(e, -E2BIG,
				"encryption context serialises to %zu bytes, more than the 65535 an ESDK header holds",
				n);
	*len = n;
	*out = p = malloc(n ? n : 1);
	if (!p)
		return cmk_errf(e, -ENOMEM, "encryption context: out of memory");
	if (!c->n)
		return 0;
	put16(p, (uint16_t)c->n);
	p += 2;
	for (size_t i = 0; i < c->n; i++) {
		size_t kl = strlen(c->pairs[i].key), vl = strlen(c->pairs[i].value);

		put16(p, (uint16_t)kl);
		memcpy(p + 2, c->pairs[i].key, kl);
		p += 2 + kl;
		put16(p, (uint16_t)vl);
		memcpy(p + 2, c->pairs[i].value, vl);
		p += 2 + vl;
	}
	return 0;
}

/*
 * ec_compare() - the object's context @got must be @want exactly, apart
 * from the signing suites' public key.  Names the first differing key.
 */
/*
 * A context string for a message: printable ASCII as is, '"' and '\\'
 * escaped, every other byte as \xNN, cut at @n - 1 bytes ("..." then).
 * What a header says is not authenticated when it is quoted, and must not
 * reach a terminal or log as raw bytes.
 */
#define ESC_MAX 100
static const char *esc(const char *s, size_t len, char out[ESC_MAX])
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (o + 8 >= ESC_MAX) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, ESC_MAX - o, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, ESC_MAX - o, "\\x%02x", c);
	}
	out[o] = 0;
	return out;
}

#define ESC(s, buf) esc((s), strlen(s), (buf))

static int ec_compare(const struct cmk_encctx *got, const struct cmk_encctx *want,
		      const char *name, struct cmk_err *e)
{
	char b1[ESC_MAX], b2[ESC_MAX], b3[ESC_MAX];

	for (size_t i = 0; i < want->n; i++) {
		const char *k = want->pairs[i].key;
		const char *v = cmk_encctx_get(got, k);

		if (!v)
			return cmk_errf(e, -EPERM,
					"%s: encryption context key \"%s\" is missing (expected \"%s\"): not the object you asked for; nothing was unsealed",
					name, ESC(k, b1), ESC(want->pairs[i].value, b2));
		if (strcmp(v, want->pairs[i].value))
			return cmk_errf(e, -EPERM,
					"%s: encryption context key \"%s\" is \"%s\", expected \"%s\" (as the header, not yet verified, says): a swapped or renamed object; nothing was unsealed",
					name, ESC(k, b1), ESC(v, b2),
					ESC(want->pairs[i].value, b3));
	}
	for (size_t i = 0; i < got->n; i++) {
		const char *k = got->pairs[i].key;

		if (!strcmp(k, CMK_ESDK_PUBKEY_CTX) || cmk_encctx_get(want, k))
			continue;
		return cmk_errf(e, -EPERM,
				"%s: encryption context key \"%s\" (= \"%s\") is not expected (the header, not yet verified, has it): add --context %s=... if it belongs; nothing was unsealed",
				name, ESC(k, b1), ESC(got->pairs[i].value, b2), b1);
	}
	return 0;
}

/* ---- signatures ---------------------------------------------------------- */

static int sig_keygen(EVP_PKEY **pkey, char **pub_b64, struct cmk_err *e)
{
	unsigned char pub[1 + 2 * 48], comp[PUBKEY_LEN];
	size_t len = 0;
	int ret;

	/*
	 * The key scalar comes from OpenSSL's private DRBG: reseed it from
	 * the OS first, or two clones of a VM snapshot would sign with one
	 * key (random.h says why a reseed, storage.rst "Randomness").
	 */
	ret = cmk_random_reseed_openssl("ECDSA P-384 signing key", e);
	if (ret)
		return ret;
	/* Uncompressed 04 | X | Y, compressed here (SEC 1, 2.3.3): 02/03 | X. */
	*pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	if (!*pkey ||
	    EVP_PKEY_get_octet_string_param(*pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
					    pub, sizeof(pub), &len) != 1 ||
	    len != sizeof(pub) || pub[0] != 0x04) {
		EVP_PKEY_free(*pkey);
		*pkey = NULL;
		return cmk_errf(e, -EIO, "ECDSA P-384 signing key: OpenSSL failed to generate it");
	}
	comp[0] = 0x02 | (pub[len - 1] & 1);
	memcpy(comp + 1, pub + 1, 48);
	return cmk_b64_encode(comp, sizeof(comp), pub_b64, e);
}

static int sig_pubkey(const char *b64, EVP_PKEY **pkey, const char *name,
		      struct cmk_err *e)
{
	unsigned char *pub = NULL;
	size_t len = 0;
	EVP_PKEY_CTX *pc = NULL;
	OSSL_PARAM params[3];
	int ret;

	*pkey = NULL;
	if (cmk_b64_decode(b64, &pub, &len, e) || len != PUBKEY_LEN ||
	    (pub[0] != 0x02 && pub[0] != 0x03)) {
		ret = cmk_errf(e, -EBADMSG,
			       "%s: encryption context \"%s\" is not a base64 compressed P-384 point",
			       name, CMK_ESDK_PUBKEY_CTX);
		goto out;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						     (char *)"P-384", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
						      pub, len);
	params[2] = OSSL_PARAM_construct_end();
	pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!pc || EVP_PKEY_fromdata_init(pc) != 1 ||
	    EVP_PKEY_fromdata(pc, pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		ret = cmk_errf(e, -EBADMSG,
			       "%s: encryption context \"%s\" is not a point on P-384",
			       name, CMK_ESDK_PUBKEY_CTX);
		goto out;
	}
	ret = 0;
out:
	EVP_PKEY_CTX_free(pc);
	free(pub);
	return ret;
}

/*
 * sig_final() - the footer's signature.  DER signatures vary in length;
 * like the SDKs, sign again (from a copy of the digest state) until it has
 * the usual 103 bytes, so that a message's size follows from its
 * plaintext's; any length is valid, so give up on that after a few tries.
 */
static int sig_final(EVP_MD_CTX *md, unsigned char *sig, size_t *len,
		     struct cmk_err *e)
{
	/*
	 * The nonce k mixes the key and the digest with the private DRBG
	 * (OpenSSL 3.0), so a clone signing other data gets another k: this
	 * reseed is defence in depth (storage.rst, "Randomness").
	 */
	int ret = cmk_random_reseed_openssl("ECDSA P-384 signature", e);

	if (ret)
		return ret;
	for (int i = 0; i < 32; i++) {
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		size_t n = 128;
		int ok = c && EVP_MD_CTX_copy_ex(c, md) == 1 &&
			 EVP_DigestSignFinal(c, sig, &n) == 1;

		EVP_MD_CTX_free(c);
		if (!ok)
			break;
		*len = n;
		if (n == SIG_LEN_USUAL)
			return 0;
	}
	*len = 128;
	if (EVP_DigestSignFinal(md, sig, len) != 1)
		return cmk_errf(e, -EIO, "ECDSA P-384 signature failed");
	return 0;
}

/* ---- seal ---------------------------------------------------------------- */

struct sealer {
	int out_fd;
	const char *name;
	EVP_MD_CTX *sig;	/* signing suites: header and body go in */
	struct cmk_err *e;
};

static int emit(struct sealer *s, const unsigned char *p, size_t len)
{
	if (s->sig && EVP_DigestSignUpdate(s->sig, p, len) != 1)
		return cmk_errf(s->e, -EIO, "%s: ECDSA digest update failed", s->name);
	return write_full(s->out_fd, p, len, s->name, s->e);
}

/*
 * The signing suites' digest over @cnt pieces of a frame, while the frame
 * is still in the cache it was encrypted in.
 */
static int digest(struct sealer *s, const struct iovec *iov, int cnt)
{
	for (int i = 0; s->sig && i < cnt; i++)
		if (EVP_DigestSignUpdate(s->sig, iov[i].iov_base,
					 iov[i].iov_len) != 1)
			return cmk_errf(s->e, -EIO, "%s: ECDSA digest update failed",
					s->name);
	return 0;
}

/* GCM with the frame's IV and AAD; @tag out (seal) or in (open). */
/*
 * Strict UTF-8 (RFC 3629): no stray continuation bytes, no overlong forms,
 * no surrogates (U+D800..U+DFFF), nothing beyond U+10FFFF.  The ESDK's
 * encryption context is UTF-8; a context that is not would seal objects
 * no SDK opens.
 */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t len;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t j = 1; j < len; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static int frame_crypt(EVP_CIPHER_CTX *c, bool enc,
		       const uint8_t msgid[CMK_ESDK_MESSAGE_ID_LEN],
		       uint32_t seq, bool final, const unsigned char *in,
		       size_t len, unsigned char *out, size_t out_cap,
		       unsigned char *tag)
{
	unsigned char aad[CMK_ESDK_MESSAGE_ID_LEN + sizeof(FRAME_AAD_FINAL) + 12];
	unsigned char iv[IV_LEN];
	const char *kind = final ? FRAME_AAD_FINAL : FRAME_AAD_REGULAR;
	size_t kl = strlen(kind), al = 0;
	int n;

	/* The callers bound @len; this keeps a missed bound from overflowing. */
	if (len > out_cap || len > INT_MAX)
		return -1;
	frame_iv(iv, seq);
	memcpy(aad, msgid, CMK_ESDK_MESSAGE_ID_LEN);
	al += CMK_ESDK_MESSAGE_ID_LEN;
	memcpy(aad + al, kind, kl);
	al += kl;
	put32(aad + al, seq);
	put64(aad + al + 4, len);
	al += 12;
	if (EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, enc) != 1 ||
	    EVP_CipherUpdate(c, NULL, &n, aad, (int)al) != 1)
		return -1;
	if (len && EVP_CipherUpdate(c, out, &n, in, (int)len) != 1)
		return -1;
	if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
		return -1;
	if (EVP_CipherFinal_ex(c, out + (len ? (size_t)n : 0), &n) != 1)
		return -1;
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
		return -1;
	return 0;
}

/* The header's tag: GCM over no plaintext, IV zero, AAD the header body. */
static int header_tag(EVP_CIPHER_CTX *c, bool enc, const unsigned char *body,
		      size_t len, unsigned char tag[TAG_LEN])
{
	unsigned char iv[IV_LEN] = { 0 }, dummy[16];
	int n;

	if (EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, enc) != 1 ||
	    EVP_CipherUpdate(c, NULL, &n, body, (int)len) != 1)
		return -1;
	if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
		return -1;
	if (EVP_CipherFinal_ex(c, dummy, &n) != 1)
		return -1;
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
		return -1;
	return 0;
}

static int gcm_ctx(EVP_CIPHER_CTX **c, const struct cmk_secret *key, bool enc,
		   struct cmk_err *e)
{
	*c = EVP_CIPHER_CTX_new();
	if (!*c || EVP_CipherInit_ex(*c, EVP_aes_256_gcm(), NULL,
				     cmk_secret_cdata(key), NULL, enc) != 1)
		return cmk_errf(e, -EIO, "AES-256-GCM: OpenSSL context set-up failed");
	return 0;
}

/* The Header Body, with one EDK; *out is malloc'd. */
static int build_header(uint16_t suite, const uint8_t msgid[CMK_ESDK_MESSAGE_ID_LEN],
			const unsigned char *ec, size_t ec_len,
			const struct cmk_esdk_edk *edk, uint32_t frame_len,
			const unsigned char commit[COMMIT_LEN],
			unsigned char **out, size_t *len, struct cmk_err *e)
{
	size_t n = 1 + 2 + CMK_ESDK_MESSAGE_ID_LEN + 2 + ec_len + 2 +
		   6 + edk->provider_id_len + edk->info_len + edk->ct_len +
		   1 + 4 + COMMIT_LEN;
	unsigned char *p = malloc(n);

	if (!p)
		return cmk_errf(e, -ENOMEM, "ESDK header: out of memory");
	*out = p;
	*len = n;
	*p++ = VERSION_2;
	put16(p, suite);
	p += 2;
	memcpy(p, msgid, CMK_ESDK_MESSAGE_ID_LEN);
	p += CMK_ESDK_MESSAGE_ID_LEN;
	put16(p, (uint16_t)ec_len);
	memcpy(p + 2, ec, ec_len);
	p += 2 + ec_len;
	put16(p, 1);
	p += 2;
	put16(p, (uint16_t)edk->provider_id_len);
	memcpy(p + 2, edk->provider_id, edk->provider_id_len);
	p += 2 + edk->provider_id_len;
	put16(p, (uint16_t)edk->info_len);
	memcpy(p + 2, edk->info, edk->info_len);
	p += 2 + edk->info_len;
	put16(p, (uint16_t)edk->ct_len);
	memcpy(p + 2, edk->ct, edk->ct_len);
	p += 2 + edk->ct_len;
	*p++ = CONTENT_FRAMED;
	put32(p, frame_len);
	p += 4;
	memcpy(p, commit, COMMIT_LEN);
	return 0;
}

/* The keygen of cmk_esdk_seal(): a fresh data key wrapped here under @arg. */
static int wrapkey_new_key(void *arg, const unsigned char *ec, size_t ec_len,
			   struct cmk_secret **data_key, struct cmk_esdk_edk *edk,
			   char key_name[CMK_ESDK_KEY_NAME_MAX], struct cmk_err *e)
{
	const struct cmk_esdk_wrapkey *wk = arg;
	int ret;

	ret = cmk_secret_random(data_key, CMK_ESDK_DATA_KEY_LEN, e);
	if (!ret)
		ret = cmk_esdk_edk_wrap(wk, *data_key, ec, ec_len, edk, e);
	if (ret)
		cmk_secret_free(data_key);
	else
		snprintf(key_name, CMK_ESDK_KEY_NAME_MAX, "%s", wk->name);
	return ret;
}

int cmk_esdk_seal(int in_fd, int out_fd, const struct cmk_esdk_wrapkey *wk,
		  const struct cmk_encctx *ctx,
		  const struct cmk_esdk_seal_opts *opts,
		  struct cmk_esdk_info *info, struct cmk_err *e)
{
	const struct cmk_esdk_keygen kg = { wrapkey_new_key, (void *)wk };

	return cmk_esdk_seal_with(in_fd, out_fd, &kg, ctx, opts, info, e);
}

int cmk_esdk_seal_with(int in_fd, int out_fd, const struct cmk_esdk_keygen *kg,
		       const struct cmk_encctx *ctx,
		       const struct cmk_esdk_seal_opts *opts,
		       struct cmk_esdk_info *info, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *data_key = NULL;
	CMK_SECRET_AUTO struct cmk_secret *enc_key = NULL;
	const char *name = opts && opts->name ? opts->name : "(stdin)";
	uint16_t suite = opts && opts->suite ? opts->suite : CMK_ESDK_SUITE_COMMIT;
	uint32_t frame_len = opts && opts->frame_len ? opts->frame_len :
			     CMK_ESDK_FRAME_DEFAULT;
	struct sealer s = { .out_fd = out_fd, .name = name, .e = e };
	struct cmk_esdk_info inf = { .suite = suite, .frame_len = frame_len };
	struct cmk_esdk_edk edk = { 0 };
	struct cmk_encctx full;
	struct rdr in = { 0 };
	EVP_CIPHER_CTX *gcm = NULL;
	EVP_PKEY *skey = NULL;
	unsigned char commit[COMMIT_LEN], tag[TAG_LEN];
	unsigned char *ec = NULL, *hdr = NULL, *fields = NULL;
	struct iovec *iov = NULL;
	char *pub = NULL;
	size_t ec_len = 0, hdr_len = 0, batch;
	uint32_t seq;
	bool final;
	int ret;

	cmk_encctx_init(&full);
	if (suite != CMK_ESDK_SUITE_COMMIT && suite != CMK_ESDK_SUITE_COMMIT_ECDSA)
		return cmk_errf(e, -EINVAL,
				"%s: algorithm suite 0x%04x is not written: use 0x0478 or 0x0578",
				name, suite);
	if (frame_len < 1 || frame_len > CMK_ESDK_FRAME_MAX)
		return cmk_errf(e, -EINVAL,
				"%s: frame length %u out of range 1..%u", name,
				frame_len, CMK_ESDK_FRAME_MAX);
	for (size_t i = 0; i < ctx->n; i++) {
		const char *k = ctx->pairs[i].key, *v = ctx->pairs[i].value;

		if (!utf8_valid((const unsigned char *)k, strlen(k)) ||
		    !utf8_valid((const unsigned char *)v, strlen(v)))
			return cmk_errf(e, -EINVAL,
					"%s: encryption context pair %zu: %s is not valid UTF-8 (the ESDK requires UTF-8; no SDK could open the object)",
					name, i + 1,
					utf8_valid((const unsigned char *)k, strlen(k)) ?
					"the value" : "the key");
		if (!strncmp(k, CMK_ESDK_RESERVED_PREFIX,
			     strlen(CMK_ESDK_RESERVED_PREFIX)))
			return cmk_errf(e, -EINVAL,
					"%s: encryption context key \"%s\": the prefix \"%s\" is reserved by the ESDK",
					name, k, CMK_ESDK_RESERVED_PREFIX);
	}
	ret = cmk_encctx_copy(&full, ctx, e);
	if (ret)
		goto out;
	if (suite_signs(suite)) {
		ret = sig_keygen(&skey, &pub, e);
		if (ret)
			goto out;
		ret = cmk_encctx_add(&full, CMK_ESDK_PUBKEY_CTX, pub, e);
		if (ret)
			goto out;
		s.sig = EVP_MD_CTX_new();
		if (!s.sig || EVP_DigestSignInit(s.sig, NULL, EVP_sha384(), NULL,
						 skey) != 1) {
			ret = cmk_errf(e, -EIO, "%s: ECDSA P-384 set-up failed", name);
			goto out;
		}
	}
	ret = ec_serialize(&full, &ec, &ec_len, e);
	if (ret)
		goto out;
	/* getrandom(), not the DRBG a cloned VM shares (see esdk_keyring.c) */
	ret = cmk_random_fill(inf.message_id, CMK_ESDK_MESSAGE_ID_LEN,
			      "Message ID", e);
	if (ret)
		goto out;
	ret = kg->new_key(kg->arg, ec, ec_len, &data_key, &edk, inf.key_name, e);
	if (ret)
		goto out;
	if (!data_key || cmk_secret_len(data_key) != CMK_ESDK_DATA_KEY_LEN) {
		ret = cmk_errf(e, -EPROTO, "%s: the data key source gave no %d-byte key",
			       name, CMK_ESDK_DATA_KEY_LEN);
		goto out;
	}
	ret = derive_keys(data_key, suite, inf.message_id, &enc_key, commit, e);
	if (ret)
		goto out;
	ret = gcm_ctx(&gcm, enc_key, true, e);
	if (ret)
		goto out;
	ret = build_header(suite, inf.message_id, ec, ec_len, &edk, frame_len,
			   commit, &hdr, &hdr_len, e);
	if (ret)
		goto out;
	if (header_tag(gcm, true, hdr, hdr_len, tag)) {
		ret = cmk_errf(e, -EIO, "%s: header authentication failed", name);
		goto out;
	}
	ret = emit(&s, hdr, hdr_len);
	if (!ret)
		ret = emit(&s, tag, TAG_LEN);
	if (ret)
		goto out;

	/*
	 * The body in batches of @batch frames: one read fills the buffer with
	 * their plaintext plus one byte of look-ahead (which tells a regular
	 * frame from the final one), each frame is encrypted in place, and
	 * one writev() sends the frames' fields, content and tags.
	 */
	batch = IO_BATCH_BYTES / frame_len;
	batch = batch < 1 ? 1 : batch > IO_BATCH_FRAMES ? IO_BATCH_FRAMES : batch;
	ret = rdr_init(&in, in_fd, name, batch * frame_len + 1, e);
	if (ret)
		goto out;
	advise_sequential(in_fd);
	fields = malloc(batch * (FRAME_HDR_MAX + TAG_LEN));
	iov = calloc(3 * batch, sizeof(*iov));
	if (!fields || !iov) {
		ret = cmk_errf(e, -ENOMEM, "%s: out of memory for a batch of frames", name);
		goto out;
	}
	for (seq = 1, final = false; !final;) {
		int nio = 0, iov0;

		ret = rdr_fill(&in, batch * frame_len + 1, e);
		if (ret)
			goto out;
		for (size_t i = 0; i < batch && !final; i++) {
			unsigned char *f = fields + i * (FRAME_HDR_MAX + TAG_LEN);
			unsigned char *tag_at = f + FRAME_HDR_MAX, *p = f;
			unsigned char *pt = in.buf + in.pos;
			size_t n;

			/* Short of a frame and a byte only at end of file. */
			final = rdr_avail(&in) <= frame_len;
			n = final ? rdr_avail(&in) : frame_len;
			if (!final && seq == SEQ_END - 1) {
				ret = cmk_errf(e, -EFBIG,
					       "%s: more than 2^32 - 2 frames of %u bytes; use a larger frame length",
					       name, frame_len);
				goto out;
			}
			if (final) {
				put32(p, SEQ_END);
				p += 4;
			}
			put32(p, seq);
			frame_iv(p + 4, seq);
			p += 4 + IV_LEN;
			if (final) {
				put32(p, (uint32_t)n);
				p += 4;
			}
			if (frame_crypt(gcm, true, inf.message_id, seq, final,
					pt, n, pt, n, tag_at)) {
				ret = cmk_errf(e, -EIO, "%s: frame %u: AES-GCM failed",
					       name, seq);
				goto out;
			}
			iov0 = nio;
			iov[nio++] = (struct iovec){ f, (size_t)(p - f) };
			if (n)
				iov[nio++] = (struct iovec){ pt, n };
			iov[nio++] = (struct iovec){ tag_at, TAG_LEN };
			ret = digest(&s, iov + iov0, nio - iov0);
			if (ret)
				goto out;
			in.pos += n;
			in.off += n;
			inf.plaintext_len += n;
			seq++;
		}
		/* Before the next fill moves what the iovecs point at. */
		ret = writev_full(out_fd, iov, nio, name, e);
		if (ret)
			goto out;
	}
	inf.frames = seq - 1;
	if (s.sig) {
		unsigned char sig[2 + 128];
		size_t sl = 0;

		ret = sig_final(s.sig, sig + 2, &sl, e);
		if (ret)
			goto out;
		put16(sig, (uint16_t)sl);
		ret = write_full(out_fd, sig, 2 + sl, name, e);
		if (ret)
			goto out;
	}
	if (info)
		*info = inf;
	ret = 0;
out:
	EVP_CIPHER_CTX_free(gcm);
	EVP_MD_CTX_free(s.sig);
	EVP_PKEY_free(skey);
	rdr_free(&in);
	free(fields);
	free(iov);
	free(hdr);
	free(ec);
	free(pub);
	cmk_esdk_edk_free(&edk);
	cmk_encctx_free(&full);
	OPENSSL_cleanse(commit, sizeof(commit));
	return ret;
}

/* ---- open ---------------------------------------------------------------- */

struct opener {
	struct rdr in;
	const char *name;
	struct cmk_err *e;
	bool in_header;		/* copy what is taken into hdr */
	unsigned char *hdr;
	size_t hdr_len, hdr_cap;
	EVP_MD_CTX *verify;	/* signing suites: body bytes go in */
	/*
	 * Plaintext of frames that verified, decrypted in place in @in and not
	 * yet written: flushed in one writev() before a fill could move it.
	 */
	struct iovec *pend;
	int npend;
	int out_fd;
	bool wrote;		/* a write to out_fd was tried */
};

/* Write the frames that verified and are still in the input buffer. */
static int flush_pending_e(struct opener *o, struct cmk_err *e)
{
	int ret;

	if (o->npend)
		o->wrote = true;
	ret = writev_full(o->out_fd, o->pend, o->npend, o->name, e);
	o->npend = 0;
	return ret;
}

static int flush_pending(struct opener *o)
{
	return flush_pending_e(o, o->e);
}

static int bad(struct opener *o, int code, uint64_t off, const char *field,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int bad(struct opener *o, int code, uint64_t off, const char *field,
	       const char *fmt, ...)
{
	char why[CMK_ERR_MSG_MAX / 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return cmk_errf(o->e, code, "%s: ESDK message: %s at offset %llu: %s",
			o->name, field, (unsigned long long)off, why);
}

/*
 * take() - the next @n bytes of the message as field @field.  Pointers from
 * earlier takes stay valid only if the caller made them available together
 * with one rdr_fill() first.
 */
static int take(struct opener *o, size_t n, const char *field,
		const unsigned char **p)
{
	int ret = rdr_fill(&o->in, n, o->e);

	if (ret)
		return ret;
	if (rdr_avail(&o->in) < n)
		return bad(o, -EBADMSG, o->in.off, field,
			   "the message ends: %zu bytes needed, %zu left (truncated)",
			   n, rdr_avail(&o->in));
	*p = o->in.buf + o->in.pos;
	if (o->in_header) {
		if (o->hdr_len + n > HEADER_MAX)
			return bad(o, -EPROTO, o->in.off, field,
				   "the header is longer than %u bytes", HEADER_MAX);
		if (o->hdr_len + n > o->hdr_cap) {
			size_t cap = o->hdr_cap ? o->hdr_cap : 1024;
			unsigned char *nh;

			while (cap < o->hdr_len + n)
				cap *= 2;
			nh = realloc(o->hdr, cap);
			if (!nh)
				return cmk_errf(o->e, -ENOMEM, "%s: out of memory", o->name);
			o->hdr = nh;
			o->hdr_cap = cap;
		}
		memcpy(o->hdr + o->hdr_len, *p, n);
		o->hdr_len += n;
	}
	if (o->verify && EVP_DigestVerifyUpdate(o->verify, *p, n) != 1)
		return cmk_errf(o->e, -EIO, "%s: ECDSA digest update failed", o->name);
	o->in.pos += n;
	o->in.off += n;
	return 0;
}

static int take16(struct opener *o, const char *field, uint16_t *v)
{
	const unsigned char *p;
	int ret = take(o, 2, field, &p);

	if (!ret)
		*v = get16(p);
	return ret;
}

static int take32(struct opener *o, const char *field, uint32_t *v)
{
	const unsigned char *p;
	int ret = take(o, 4, field, &p);

	if (!ret)
		*v = get32(p);
	return ret;
}

static int bytes_cmp(const unsigned char *a, size_t al, const unsigned char *b,
		     size_t bl)
{
	int r = memcmp(a, b, al < bl ? al : bl);

	if (r)
		return r;
	return al < bl ? -1 : al > bl;
}

/* A UTF-8 string field of the context, copied out NUL-terminated. */
static int take_str(struct opener *o, const char *lenfield, const char *field,
		    char **out, size_t *len, uint64_t *off)
{
	const unsigned char *p;
	uint16_t n;
	int ret;

	*out = NULL;
	ret = take16(o, lenfield, &n);
	if (ret)
		return ret;
	*off = o->in.off;
	ret = take(o, n, field, &p);
	if (ret)
		return ret;
	if (memchr(p, 0, n))
		return bad(o, -EBADMSG, *off, field, "contains a NUL byte");
	*out = strndup((const char *)p, n);
	if (!*out)
		return cmk_errf(o->e, -ENOMEM, "%s: out of memory", o->name);
	*len = n;
	return 0;
}

/*
 * parse_ec() - the AAD field: Key Value Pairs Length, then the serialised
 * context, whose keys must ascend strictly (sorted, no duplicates) and
 * fill exactly that length.  *ec points at the serialisation in o->hdr.
 */
static int parse_ec(struct opener *o, struct cmk_encctx *ctx, size_t *ec_at,
		    size_t *ec_len)
{
	char *prev = NULL, *k = NULL, *v = NULL, b1[ESC_MAX], b2[ESC_MAX];
	size_t prev_len = 0, kl, vl;
	uint64_t start, koff, voff;
	uint16_t total, count;
	int ret;

	ret = take16(o, "header field Key Value Pairs Length", &total);
	if (ret)
		return ret;
	*ec_at = o->hdr_len;
	*ec_len = total;
	if (!total)
		return 0;
	start = o->in.off;
	ret = take16(o, "header field Key Value Pair Count", &count);
	if (ret)
		return ret;
	if (!count)
		return bad(o, -EBADMSG, start, "header field Key Value Pair Count",
			   "0 in a non-empty AAD (must be at least 1)");
	for (unsigned int i = 0; i < count; i++) {
		uint64_t at = o->in.off;

		ret = take_str(o, "header field Key Length", "header field Key",
			       &k, &kl, &koff);
		if (!ret)
			ret = take_str(o, "header field Value Length",
				       "header field Value", &v, &vl, &voff);
		if (ret)
			goto out;
		if (!utf8_valid((unsigned char *)k, kl) ||
		    !utf8_valid((unsigned char *)v, vl)) {
			ret = bad(o, -EBADMSG, utf8_valid((unsigned char *)k, kl) ?
				  voff : koff,
				  utf8_valid((unsigned char *)k, kl) ?
				  "header field Value" : "header field Key",
				  "pair %u is not valid UTF-8", i + 1);
			goto out;
		}
		if (prev && bytes_cmp((unsigned char *)prev, prev_len,
				      (unsigned char *)k, kl) >= 0) {
			ret = bad(o, -EBADMSG, koff, "header field Key",
				  "\"%s\" %s \"%s\" (keys must be sorted and unique)",
				  esc(k, kl, b1),
				  strcmp(prev, k) ? "sorts before" : "repeats",
				  esc(prev, prev_len, b2));
			goto out;
		}
		if (o->in.off - start > total) {
			ret = bad(o, -EBADMSG, at, "header field Key Value Pairs",
				  "pair %u ends past Key Value Pairs Length %u",
				  i + 1, total);
			goto out;
		}
		ret = cmk_encctx_add(ctx, k, v, o->e);
		if (ret) {
			cmk_err_prefix(o->e, "%s: ESDK message: header field Key Value Pairs at offset %llu: not a context dm-cmk takes",
				       o->name, (unsigned long long)at);
			ret = -EPROTO;
			goto out;
		}
		free(prev);
		prev = k;
		prev_len = kl;
		k = NULL;
		free(v);
		v = NULL;
	}
	if (o->in.off - start != total)
		ret = bad(o, -EBADMSG, start, "header field Key Value Pairs Length",
			  "%u, but the %u pairs take %llu bytes", total, count,
			  (unsigned long long)(o->in.off - start));
out:
	free(prev);
	free(k);
	free(v);
	return ret;
}

static int take_blob(struct opener *o, const char *lenfield, const char *field,
		     unsigned char **out, size_t *len)
{
	const unsigned char *p;
	uint16_t n;
	int ret = take16(o, lenfield, &n);

	if (!ret)
		ret = take(o, n, field, &p);
	if (ret)
		return ret;
	*out = malloc(n ? n : 1);
	if (!*out)
		return cmk_errf(o->e, -ENOMEM, "%s: out of memory", o->name);
	memcpy(*out, p, n);
	*len = n;
	return 0;
}

/*
 * One frame: checked, decrypted in place, and queued for writing (the
 * plaintext of earlier frames goes out in one writev() before the input
 * buffer is refilled) only once its tag verified.  The final frame of a
 * signed message is decrypted into @held_pt instead and stays there
 * (*@held bytes) until the signature verified (decrypt.md).
 */
static int open_frame(struct opener *o, EVP_CIPHER_CTX *gcm,
		      const uint8_t msgid[CMK_ESDK_MESSAGE_ID_LEN],
		      uint32_t frame_len, uint32_t seq, unsigned char *held_pt,
		      bool *final, uint64_t *total, size_t *held)
{
	const unsigned char *p, *iv, *ct, *tag;
	unsigned char want_iv[IV_LEN], *pt;
	uint64_t at = o->in.off;
	uint32_t v, len = frame_len;
	int ret;

	/* A frame not wholly in the buffer means a fill: flush first. */
	if (o->npend && rdr_avail(&o->in) < (size_t)frame_len + FRAME_HDR_MAX + TAG_LEN) {
		ret = flush_pending(o);
		if (ret)
			return ret;
	}
	ret = take32(o, "body field Sequence Number", &v);
	if (ret)
		return ret;
	*final = v == SEQ_END;
	if (*final) {
		at = o->in.off;
		ret = take32(o, "final frame field Sequence Number", &v);
		if (ret)
			return ret;
	}
	if (v != seq)
		return bad(o, -EBADMSG, at,
			   *final ? "final frame field Sequence Number" :
				    "body field Sequence Number",
			   "%u, expected %u (frames dropped, repeated or reordered)",
			   v, seq);
	if (*final) {
		ret = rdr_fill(&o->in, IV_LEN + 4, o->e);
		if (ret)
			return ret;
		if (rdr_avail(&o->in) >= IV_LEN + 4)
			len = get32(o->in.buf + o->in.pos + IV_LEN);
		if (len > frame_len)
			return bad(o, -EBADMSG, o->in.off + IV_LEN,
				   "final frame field Encrypted Content Length",
				   "%u is more than Frame Length %u", len, frame_len);
	}
	/* Everything up to the tag in one fill: the pointers stay valid. */
	ret = rdr_fill(&o->in, IV_LEN + (*final ? 4 : 0) + (size_t)len + TAG_LEN,
		       o->e);
	if (ret)
		return ret;
	at = o->in.off;
	ret = take(o, IV_LEN, "frame field IV", &iv);
	if (ret)
		return ret;
	frame_iv(want_iv, seq);
	if (memcmp(iv, want_iv, IV_LEN))
		return bad(o, -EBADMSG, at, "frame field IV",
			   "not the frame's sequence number %u padded to 12 bytes",
			   seq);
	if (*final && (ret = take(o, 4, "final frame field Encrypted Content Length", &p)))
		return ret;
	at = o->in.off;
	ret = take(o, len, "frame field Encrypted Content", &ct);
	if (!ret)
		ret = take(o, TAG_LEN, "frame field Authentication Tag", &tag);
	if (ret)
		return ret;
	/* The buffer is ours: decrypt where the ciphertext is. */
	pt = *final && o->verify ? held_pt : o->in.buf + (ct - o->in.buf);
	if (frame_crypt(gcm, false, msgid, seq, *final, ct, len, pt, frame_len,
			(unsigned char *)tag)) {
		OPENSSL_cleanse(pt, len);
		return bad(o, -EBADMSG, at, *final ? "final frame" : "frame",
			   "frame %u does not authenticate (tampered, truncated or reordered); nothing of it was written",
			   seq);
	}
	*total += len;
	if (*final && o->verify) {
		*held = len;
		return 0;
	}
	if (len)
		o->pend[o->npend++] = (struct iovec){ pt, len };
	return 0;
}

/*
 * Unwrap the first EDK that opens: each EDK of namespace "dm-cmk" whose key
 * name @src holds is tried in header order (as the raw AES keyring's
 * OnDecrypt does); a failure moves on to the next one, and the first
 * failure is reported if none opens.
 */
static int open_edks(struct opener *o, struct cmk_esdk_edk *edks, size_t n,
		     const struct cmk_esdk_keysource *src,
		     const unsigned char *ec, size_t ec_len,
		     struct cmk_secret **data_key, char *key_name)
{
	struct cmk_err first_e, tmp;
	int first = 0;

	for (size_t i = 0; i < n; i++) {
		const struct cmk_esdk_wrapkey *wk = NULL;
		char kn[CMK_ESDK_KEY_NAME_MAX];
		int r;

		if (cmk_esdk_edk_key_name(&edks[i], kn))
			continue;
		if (src->unwrap) {
			/* Someone else holds the wrapping keys (the agent). */
			r = src->unwrap(src->arg, kn, &edks[i], ec, ec_len,
					data_key, &tmp);
			if (r == -ENOENT)
				continue;
		} else {
			r = src->get(src->arg, kn, &wk, &tmp);
			if (r == -ENOENT)
				continue;
			if (!r && !cmk_esdk_edk_for(wk, &edks[i]))
				continue;	/* other tag or IV length: not ours */
			if (!r && cmk_esdk_edk_unwrap(wk, &edks[i], ec, ec_len,
						      data_key, &tmp))
				r = -EBADMSG;
		}
		if (!r && (!*data_key ||
			   cmk_secret_len(*data_key) != CMK_ESDK_DATA_KEY_LEN)) {
			cmk_secret_free(data_key);
			r = cmk_errf(&tmp, -EPROTO, "the data key source gave no %d-byte key",
				     CMK_ESDK_DATA_KEY_LEN);
		}
		if (!r) {
			snprintf(key_name, CMK_ESDK_KEY_NAME_MAX, "%s", kn);
			return 0;
		}
		if (!first) {
			first = r;
			first_e = tmp;
			cmk_err_prefix(&first_e, "%s: ESDK message: Encrypted Data Key %zu",
				       o->name, i + 1);
		}
	}
	if (first) {
		*o->e = first_e;
		return first;
	}
	return cmk_errf(o->e, -EKEYREJECTED,
			"%s: ESDK message: none of its %zu Encrypted Data Keys is for keyring %s/%s: sealed under another KEK or KEK version (one this envelope does not hold)",
			o->name, n, CMK_ESDK_KEY_NAMESPACE, src->holds);
}

/* The keys of cmk_esdk_open(): a fixed list, looked up by name. */
struct key_list {
	const struct cmk_esdk_wrapkey *const *keys;
	size_t n;
};

static int key_list_get(void *arg, const char *key_name,
			const struct cmk_esdk_wrapkey **wk, struct cmk_err *e)
{
	const struct key_list *l = arg;

	(void)e;
	for (size_t k = 0; k < l->n; k++)
		if (!strcmp(l->keys[k]->name, key_name)) {
			*wk = l->keys[k];
			return 0;
		}
	return -ENOENT;
}

int cmk_esdk_open(int in_fd, int out_fd,
		  const struct cmk_esdk_wrapkey *const *keys, size_t nkeys,
		  const struct cmk_encctx *expect, const char *name,
		  struct cmk_esdk_info *info, struct cmk_err *e)
{
	struct key_list l = { keys, nkeys };
	char holds[CMK_ESDK_KEY_NAME_MAX + 32];
	struct cmk_esdk_keysource src = { .get = key_list_get, .arg = &l, .holds = holds };

	snprintf(holds, sizeof(holds), "%s%s", nkeys ? keys[0]->name : "(none)",
		 nkeys > 1 ? " (or the previous version)" : "");
	return cmk_esdk_open_from(in_fd, out_fd, &src, expect, name, info, e);
}

int cmk_esdk_open_from(int in_fd, int out_fd,
		       const struct cmk_esdk_keysource *src,
		       const struct cmk_encctx *expect, const char *name,
		       struct cmk_esdk_info *info, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *data_key = NULL;
	CMK_SECRET_AUTO struct cmk_secret *enc_key = NULL;
	struct opener o = { .name = name ? name : "(stdin)", .e = e };
	struct cmk_esdk_edk edks[CMK_ESDK_MAX_EDKS];
	struct cmk_esdk_info inf = { 0 };
	struct cmk_encctx ctx;
	EVP_CIPHER_CTX *gcm = NULL;
	EVP_PKEY *vkey = NULL;
	const unsigned char *p, *commit_at, *tag_at;
	unsigned char commit[COMMIT_LEN], want_commit[COMMIT_LEN] = { 0 };
	unsigned char tag[TAG_LEN], *pt = NULL;
	size_t nedk = 0, ec_at = 0, ec_len = 0, body_len, held = 0;
	uint64_t at, commit_off, tag_off;
	uint16_t v16;
	bool final = false;
	int ret;

	memset(edks, 0, sizeof(edks));
	cmk_encctx_init(&ctx);
	ret = rdr_init(&o.in, in_fd, o.name, RDR_MIN, e);
	if (ret)
		return ret;
	o.in_header = true;

	ret = take(&o, 1, "header field Version", &p);
	if (ret)
		goto out;
	if (*p != VERSION_2) {
		ret = bad(&o, *p == 0x01 ? -EPROTO : -EBADMSG, 0, "header field Version",
			  "0x%02x: %s", *p,
			  *p == 0x01 ? "message format 1.0 (no key commitment) is not read; dm-cmk reads 2.0" :
				       "not an ESDK message format version");
		goto out;
	}
	ret = take16(&o, "header field Algorithm Suite ID", &v16);
	if (ret)
		goto out;
	if (v16 != CMK_ESDK_SUITE_COMMIT && v16 != CMK_ESDK_SUITE_COMMIT_ECDSA) {
		ret = bad(&o, -EPROTO, 1, "header field Algorithm Suite ID",
			  "0x%04x is not read: dm-cmk reads 0x0478 and 0x0578 (committing, AES-256-GCM)",
			  v16);
		goto out;
	}
	if (src->suite && v16 != src->suite) {
		ret = bad(&o, -EPERM, 1, "header field Algorithm Suite ID",
			  "0x%04x, but --suite 0x%04x takes only %s; nothing was unsealed",
			  v16, src->suite, cmk_esdk_suite_name(src->suite));
		goto out;
	}
	inf.suite = v16;
	ret = take(&o, CMK_ESDK_MESSAGE_ID_LEN, "header field Message ID", &p);
	if (ret)
		goto out;
	memcpy(inf.message_id, p, CMK_ESDK_MESSAGE_ID_LEN);
	ret = parse_ec(&o, &ctx, &ec_at, &ec_len);
	if (ret)
		goto out;
	at = o.in.off;
	ret = take16(&o, "header field Encrypted Data Key Count", &v16);
	if (ret)
		goto out;
	if (!v16 || v16 > CMK_ESDK_MAX_EDKS) {
		ret = bad(&o, v16 ? -EPROTO : -EBADMSG, at,
			  "header field Encrypted Data Key Count",
			  "%u (must be 1..%d)", v16, CMK_ESDK_MAX_EDKS);
		goto out;
	}
	for (nedk = 0; nedk < v16; nedk++) {
		struct cmk_esdk_edk *d = &edks[nedk];

		ret = take_blob(&o, "header field Key Provider ID Length",
				"header field Key Provider ID", &d->provider_id,
				&d->provider_id_len);
		if (!ret)
			ret = take_blob(&o, "header field Key Provider Information Length",
					"header field Key Provider Information",
					&d->info, &d->info_len);
		if (!ret)
			ret = take_blob(&o, "header field Encrypted Data Key Length",
					"header field Encrypted Data Key", &d->ct,
					&d->ct_len);
		if (ret) {
			nedk++;
			goto out;
		}
	}
	at = o.in.off;
	ret = take(&o, 1, "header field Content Type", &p);
	if (ret)
		goto out;
	if (*p != CONTENT_FRAMED) {
		ret = bad(&o, *p == 0x01 ? -EPROTO : -EBADMSG, at,
			  "header field Content Type", "0x%02x: %s", *p,
			  *p == 0x01 ? "non-framed content is not read; dm-cmk reads framed (0x02)" :
				       "not an ESDK content type");
		goto out;
	}
	at = o.in.off;
	ret = take32(&o, "header field Frame Length", &inf.frame_len);
	if (ret)
		goto out;
	if (!inf.frame_len || inf.frame_len > CMK_ESDK_FRAME_MAX) {
		ret = bad(&o, inf.frame_len ? -EPROTO : -EBADMSG, at,
			  "header field Frame Length", "%u (dm-cmk reads 1..%u)",
			  inf.frame_len, CMK_ESDK_FRAME_MAX);
		goto out;
	}
	commit_off = o.in.off;
	ret = take(&o, COMMIT_LEN, "header field Algorithm Suite Data", &commit_at);
	if (ret)
		goto out;
	memcpy(commit, commit_at, COMMIT_LEN);
	body_len = o.hdr_len;
	tag_off = o.in.off;
	ret = take(&o, TAG_LEN, "header field Authentication Tag", &tag_at);
	if (ret)
		goto out;
	memcpy(tag, tag_at, TAG_LEN);
	o.in_header = false;

	/* Who may open it: the context first, then the key. */
	if (suite_signs(inf.suite) != !!cmk_encctx_get(&ctx, CMK_ESDK_PUBKEY_CTX)) {
		ret = bad(&o, -EBADMSG, 35, "header field AAD",
			  suite_signs(inf.suite) ?
			  "suite 0x0578 without \"aws-crypto-public-key\" in the encryption context" :
			  "suite 0x0478 with \"aws-crypto-public-key\" in the encryption context");
		goto out;
	}
	ret = ec_compare(&ctx, expect, o.name, e);
	if (ret)
		goto out;
	ret = open_edks(&o, edks, nedk, src, o.hdr + ec_at, ec_len,
			&data_key, inf.key_name);
	if (ret)
		goto out;
	ret = derive_keys(data_key, inf.suite, inf.message_id, &enc_key,
			  want_commit, e);
	if (ret)
		goto out;
	if (CRYPTO_memcmp(want_commit, commit, COMMIT_LEN)) {
		ret = bad(&o, -EBADMSG, commit_off, "header field Algorithm Suite Data",
			  "the commit key does not match the data key (tampered header or a forged EDK); nothing was unsealed");
		goto out;
	}
	ret = gcm_ctx(&gcm, enc_key, false, e);
	if (ret)
		goto out;
	if (header_tag(gcm, false, o.hdr, body_len, tag)) {
		ret = bad(&o, -EBADMSG, tag_off, "header field Authentication Tag",
			  "the header does not authenticate (tampered); nothing was unsealed");
		goto out;
	}
	if (suite_signs(inf.suite)) {
		ret = sig_pubkey(cmk_encctx_get(&ctx, CMK_ESDK_PUBKEY_CTX), &vkey,
				 o.name, e);
		if (ret)
			goto out;
		o.verify = EVP_MD_CTX_new();
		if (!o.verify ||
		    EVP_DigestVerifyInit(o.verify, NULL, EVP_sha384(), NULL, vkey) != 1 ||
		    EVP_DigestVerifyUpdate(o.verify, o.hdr, o.hdr_len) != 1) {
			ret = cmk_errf(e, -EIO, "%s: ECDSA P-384 set-up failed", o.name);
			goto out;
		}
	}

	/*
	 * The body: a buffer of many frames (or one, if larger), read in few
	 * system calls; the signing suites hold the final frame apart.
	 */
	ret = rdr_grow(&o.in, inf.frame_len > IO_BATCH_BYTES ?
		       (size_t)inf.frame_len + FRAME_HDR_MAX + TAG_LEN :
		       IO_BATCH_BYTES + FRAME_HDR_MAX + TAG_LEN, e);
	if (ret)
		goto out;
	advise_sequential(in_fd);
	o.out_fd = out_fd;
	o.pend = calloc(IO_BATCH_FRAMES, sizeof(*o.pend));
	pt = o.verify ? malloc(inf.frame_len) : NULL;
	if (!o.pend || (o.verify && !pt)) {
		ret = cmk_errf(e, -ENOMEM, "%s: out of memory for a frame", o.name);
		goto out;
	}
	for (uint32_t seq = 1; !final; seq++) {
		if (seq == SEQ_END) {
			ret = bad(&o, -EBADMSG, o.in.off, "body",
				  "no final frame after 2^32 - 2 frames");
			goto out;
		}
		if (o.npend == IO_BATCH_FRAMES) {
			ret = flush_pending(&o);
			if (ret)
				goto out;
		}
		ret = open_frame(&o, gcm, inf.message_id, inf.frame_len, seq, pt,
				 &final, &inf.plaintext_len, &held);
		if (ret) {
			struct cmk_err ignored;

			/*
			 * The frames before it verified: written, as they were
			 * one by one (esdk.h); this error is the one to report.
			 */
			(void)flush_pending_e(&o, &ignored);
			goto out;
		}
		inf.frames = seq;
	}
	ret = flush_pending(&o);
	if (ret)
		goto out;
	if (o.verify) {
		EVP_MD_CTX *md = o.verify;
		const unsigned char *sig;
		uint16_t sl;

		o.verify = NULL;	/* the footer is not signed */
		at = o.in.off;
		ret = take16(&o, "footer field Signature Length", &sl);
		if (!ret)
			ret = take(&o, sl, "footer field Signature", &sig);
		if (!ret && EVP_DigestVerifyFinal(md, sig, sl) != 1)
			ret = bad(&o, -EBADMSG, at, "footer field Signature",
				  "the ECDSA P-384 signature does not verify (tampered or truncated message); discard what was written");
		EVP_MD_CTX_free(md);
		if (ret)
			goto out;
	}
	ret = rdr_fill(&o.in, 1, e);
	if (ret)
		goto out;
	if (rdr_avail(&o.in)) {
		ret = bad(&o, -EBADMSG, o.in.off, "end of message",
			  "trailing bytes after the %s; discard what was written",
			  suite_signs(inf.suite) ? "footer" : "final frame");
		goto out;
	}
	/* A signed message's final frame, now that everything verified. */
	if (held) {
		o.wrote = true;
		ret = write_full(out_fd, pt, held, o.name, e);
		if (ret)
			goto out;
	}
	if (info)
		*info = inf;
	ret = 0;
out:
	if (info)
		info->wrote = o.wrote;
	if (pt)
		OPENSSL_cleanse(pt, inf.frame_len);
	free(pt);
	free(o.pend);
	EVP_CIPHER_CTX_free(gcm);
	EVP_MD_CTX_free(o.verify);
	EVP_PKEY_free(vkey);
	for (size_t i = 0; i < nedk; i++)
		cmk_esdk_edk_free(&edks[i]);
	cmk_encctx_free(&ctx);
	free(o.hdr);
	rdr_free(&o.in);
	OPENSSL_cleanse(want_commit, sizeof(want_commit));
	return ret;
}

int cmk_esdk_ec_serialize(const struct cmk_encctx *c, unsigned char **out,
			  size_t *len, struct cmk_err *e)
{
	return ec_serialize(c, out, len, e);
}

bool cmk_esdk_utf8_valid(const unsigned char *s, size_t n)
{
	return utf8_valid(s, n);
}
