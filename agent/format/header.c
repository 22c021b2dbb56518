// SPDX-License-Identifier: GPL-2.0
/*
 * header.c - device header (see header.h and Documentation/formats.rst).
 */
#include "format/header.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/fs.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "core/aead.h"
#include "core/fileio.h"
#include "core/keys.h"
#include "core/random.h"

const struct cmk_header_field cmk_header_fields[] = {
	{ "magic",	 CMK_HDR_OFF_MAGIC,	  8 },
	{ "version",	 CMK_HDR_OFF_VERSION,	  4 },
	{ "header_size", CMK_HDR_OFF_HDR_SIZE,	  4 },
	{ "device_uuid", CMK_HDR_OFF_DEV_UUID,	  16 },
	{ "sequence",	 CMK_HDR_OFF_SEQUENCE,	  8 },
	{ "mode",	 CMK_HDR_OFF_MODE,	  4 },
	{ "sector_size", CMK_HDR_OFF_SECTOR_SIZE, 4 },
	{ "cipher",	 CMK_HDR_OFF_CIPHER,	  CMK_HDR_CIPHER_LEN },
	{ "data_offset", CMK_HDR_OFF_DATA_OFFSET, 8 },
	{ "kek_id",	 CMK_HDR_OFF_KEK_ID,	  16 },
	{ "kek_version", CMK_HDR_OFF_KEK_VERSION, 4 },
	{ "wrap_alg",	 CMK_HDR_OFF_WRAP_ALG,	  4 },
	{ "boot_id",	 CMK_HDR_OFF_BOOT_ID,	  16 },
	{ "write_time",	 CMK_HDR_OFF_WRITE_TIME,  8 },
	{ "dek_len",	 CMK_HDR_OFF_DEK_LEN,	  4 },
	{ "flags",	 CMK_HDR_OFF_FLAGS,	  4 },
	{ "dek_nonce",	 CMK_HDR_OFF_NONCE,	  CMK_HDR_NONCE_LEN },
	{ "wrapped_dek", CMK_HDR_OFF_WRAPPED,	  CMK_HDR_DEK_LEN },
	{ "dek_tag",	 CMK_HDR_OFF_TAG,	  CMK_HDR_TAG_LEN },
	{ "reserved",	 CMK_HDR_OFF_RESERVED,	  CMK_HDR_OFF_CHECKSUM - CMK_HDR_OFF_RESERVED },
	{ "checksum",	 CMK_HDR_OFF_CHECKSUM,	  32 },
};
const size_t cmk_header_nfields =
	sizeof(cmk_header_fields) / sizeof(cmk_header_fields[0]);

_Static_assert(CMK_HDR_OFF_TAG + CMK_HDR_TAG_LEN == CMK_HDR_OFF_RESERVED,
	       "layout: tag ends where reserved begins");
_Static_assert(CMK_HDR_OFF_CHECKSUM + 32 == CMK_HDR_SIZE,
	       "layout: checksum ends the copy");
_Static_assert(CMK_HDR_COPY_B + CMK_HDR_SIZE <= CMK_HDR_AREA,
	       "layout: both copies inside the header area");
_Static_assert(CMK_HDR_DATA_OFFSET * 512 == CMK_HDR_AREA,
	       "layout: data starts right after the header area");

_Static_assert(CMK_HDR_NONCE_LEN == CMK_AEAD_NONCE_LEN &&
	       CMK_HDR_TAG_LEN == CMK_AEAD_TAG_LEN,
	       "the header's nonce and tag are those of core/aead");

static const off_t copy_off[2] = { CMK_HDR_COPY_A, CMK_HDR_COPY_B };
static const char *const copy_name[2] = { "A", "B" };

const char *cmk_mode_name(uint32_t mode)
{
	switch (mode) {
	case CMK_MODE_EPHEMERAL:
		return "ephemeral";
	case CMK_MODE_PERSISTENT:
		return "persistent";
	}
	return "invalid";
}

int cmk_header_new_boot_id(struct cmk_header *h, struct cmk_err *e)
{
	return cmk_uuid_generate(h->boot_id, e);
}

int cmk_header_init(struct cmk_header *h, enum cmk_mode mode,
		    uint32_t sector_size, const uint8_t kek_id[CMK_UUID_LEN],
		    uint32_t kek_version, struct cmk_err *e)
{
	int ret;

	memset(h, 0, sizeof(*h));
	if (mode != CMK_MODE_EPHEMERAL && mode != CMK_MODE_PERSISTENT)
		return cmk_errf(e, -EINVAL, "header: mode %d is not ephemeral (1) or persistent (2)",
				mode);
	if (sector_size != 512 && sector_size != 4096)
		return cmk_errf(e, -EINVAL, "header: sector size %u is not 512 or 4096",
				sector_size);
	if (kek_version == 0)
		return cmk_errf(e, -EINVAL, "header: KEK version must be >= 1");
	h->version = CMK_HDR_VERSION;
	h->header_size = CMK_HDR_SIZE;
	ret = cmk_uuid_generate(h->device_uuid, e);
	if (ret)
		return ret;
	ret = cmk_header_new_boot_id(h, e);
	if (ret)
		return ret;
	h->mode = mode;
	h->sector_size = sector_size;
	memcpy(h->cipher, CMK_HDR_CIPHER, sizeof(CMK_HDR_CIPHER));
	h->data_offset = CMK_HDR_DATA_OFFSET;
	memcpy(h->kek_id, kek_id, CMK_UUID_LEN);
	h->kek_version = kek_version;
	h->wrap_alg = CMK_HDR_WRAP_AES256GCM;
	h->dek_len = CMK_HDR_DEK_LEN;
	return 0;
}

void cmk_header_encode(const struct cmk_header *h, uint8_t b[CMK_HDR_SIZE])
{
	memset(b, 0, CMK_HDR_SIZE);
	memcpy(b + CMK_HDR_OFF_MAGIC, CMK_HDR_MAGIC, 8);
	cmk_put_le32(b + CMK_HDR_OFF_VERSION, h->version);
	cmk_put_le32(b + CMK_HDR_OFF_HDR_SIZE, h->header_size);
	memcpy(b + CMK_HDR_OFF_DEV_UUID, h->device_uuid, CMK_UUID_LEN);
	cmk_put_le64(b + CMK_HDR_OFF_SEQUENCE, h->sequence);
	cmk_put_le32(b + CMK_HDR_OFF_MODE, h->mode);
	cmk_put_le32(b + CMK_HDR_OFF_SECTOR_SIZE, h->sector_size);
	memcpy(b + CMK_HDR_OFF_CIPHER, h->cipher, CMK_HDR_CIPHER_LEN);
	cmk_put_le64(b + CMK_HDR_OFF_DATA_OFFSET, h->data_offset);
	memcpy(b + CMK_HDR_OFF_KEK_ID, h->kek_id, CMK_UUID_LEN);
	cmk_put_le32(b + CMK_HDR_OFF_KEK_VERSION, h->kek_version);
	cmk_put_le32(b + CMK_HDR_OFF_WRAP_ALG, h->wrap_alg);
	memcpy(b + CMK_HDR_OFF_BOOT_ID, h->boot_id, CMK_UUID_LEN);
	cmk_put_le64(b + CMK_HDR_OFF_WRITE_TIME, h->write_time);
	cmk_put_le32(b + CMK_HDR_OFF_DEK_LEN, h->dek_len);
	cmk_put_le32(b + CMK_HDR_OFF_FLAGS, h->flags);
	memcpy(b + CMK_HDR_OFF_NONCE, h->nonce, CMK_HDR_NONCE_LEN);
	memcpy(b + CMK_HDR_OFF_WRAPPED, h->wrapped_dek, CMK_HDR_DEK_LEN);
	memcpy(b + CMK_HDR_OFF_TAG, h->tag, CMK_HDR_TAG_LEN);
	SHA256(b, CMK_HDR_OFF_CHECKSUM, b + CMK_HDR_OFF_CHECKSUM);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < len; i++)
		acc |= p[i];
	return acc == 0;
}

#define BAD(fmt, ...) \
	cmk_errf(e, -EUCLEAN, "header copy %s: " fmt, copy, ##__VA_ARGS__)

int cmk_header_decode(const uint8_t b[CMK_HDR_SIZE], const char *copy,
		      struct cmk_header *h, struct cmk_err *e)
{
	uint8_t sum[SHA256_DIGEST_LENGTH];
	const char *cipher;

	memset(h, 0, sizeof(*h));
	if (memcmp(b + CMK_HDR_OFF_MAGIC, CMK_HDR_MAGIC, 8))
		return cmk_errf(e, -ENODATA,
				"header copy %s: no dm-cmk magic (never formatted, or overwritten)",
				copy);
	h->version = cmk_get_le32(b + CMK_HDR_OFF_VERSION);
	if (h->version != CMK_HDR_VERSION)
		return cmk_errf(e, -EPROTONOSUPPORT,
				"header copy %s: field version: %u is not supported (this agent reads %d); upgrade the agent",
				copy, h->version, CMK_HDR_VERSION);
	h->header_size = cmk_get_le32(b + CMK_HDR_OFF_HDR_SIZE);
	if (h->header_size != CMK_HDR_SIZE)
		return BAD("field header_size: %u, expected %d", h->header_size,
			   CMK_HDR_SIZE);
	SHA256(b, CMK_HDR_OFF_CHECKSUM, sum);
	if (CRYPTO_memcmp(sum, b + CMK_HDR_OFF_CHECKSUM, sizeof(sum)))
		return BAD("checksum mismatch: the copy is corrupt or torn");

	memcpy(h->device_uuid, b + CMK_HDR_OFF_DEV_UUID, CMK_UUID_LEN);
	h->sequence = cmk_get_le64(b + CMK_HDR_OFF_SEQUENCE);
	if (h->sequence == 0 || h->sequence > CMK_HDR_SEQ_MAX)
		return BAD("field sequence: %llu, must be 1..%llu",
			   (unsigned long long)h->sequence,
			   (unsigned long long)CMK_HDR_SEQ_MAX);
	h->mode = cmk_get_le32(b + CMK_HDR_OFF_MODE);
	if (h->mode != CMK_MODE_EPHEMERAL && h->mode != CMK_MODE_PERSISTENT)
		return BAD("field mode: %u is not 1 (ephemeral) or 2 (persistent)",
			   h->mode);
	h->sector_size = cmk_get_le32(b + CMK_HDR_OFF_SECTOR_SIZE);
	if (h->sector_size != 512 && h->sector_size != 4096)
		return BAD("field sector_size: %u is not 512 or 4096",
			   h->sector_size);
	cipher = (const char *)b + CMK_HDR_OFF_CIPHER;
	memcpy(h->cipher, cipher, CMK_HDR_CIPHER_LEN);
	if (memcmp(cipher, CMK_HDR_CIPHER, sizeof(CMK_HDR_CIPHER)) ||
	    !all_zero(b + CMK_HDR_OFF_CIPHER + sizeof(CMK_HDR_CIPHER),
		      CMK_HDR_CIPHER_LEN - sizeof(CMK_HDR_CIPHER)))
		return BAD("field cipher: not \"%s\" padded with zeros",
			   CMK_HDR_CIPHER);
	h->data_offset = cmk_get_le64(b + CMK_HDR_OFF_DATA_OFFSET);
	if (h->data_offset != CMK_HDR_DATA_OFFSET)
		return BAD("field data_offset: %llu sectors, expected %d",
			   (unsigned long long)h->data_offset,
			   CMK_HDR_DATA_OFFSET);
	memcpy(h->kek_id, b + CMK_HDR_OFF_KEK_ID, CMK_UUID_LEN);
	h->kek_version = cmk_get_le32(b + CMK_HDR_OFF_KEK_VERSION);
	if (h->kek_version == 0)
		return BAD("field kek_version: 0, must be >= 1");
	h->wrap_alg = cmk_get_le32(b + CMK_HDR_OFF_WRAP_ALG);
	if (h->wrap_alg != CMK_HDR_WRAP_AES256GCM)
		return BAD("field wrap_alg: %u, expected %d (AES-256-GCM)",
			   h->wrap_alg, CMK_HDR_WRAP_AES256GCM);
	memcpy(h->boot_id, b + CMK_HDR_OFF_BOOT_ID, CMK_UUID_LEN);
	h->write_time = cmk_get_le64(b + CMK_HDR_OFF_WRITE_TIME);
	h->dek_len = cmk_get_le32(b + CMK_HDR_OFF_DEK_LEN);
	if (h->dek_len != CMK_HDR_DEK_LEN)
		return BAD("field dek_len: %u, expected %d", h->dek_len,
			   CMK_HDR_DEK_LEN);
	h->flags = cmk_get_le32(b + CMK_HDR_OFF_FLAGS);
	if (h->flags & ~CMK_HDR_F_KNOWN)
		return BAD("field flags: 0x%x has undefined bits (known: 0x%x); upgrade the agent",
			   h->flags, CMK_HDR_F_KNOWN);
	memcpy(h->nonce, b + CMK_HDR_OFF_NONCE, CMK_HDR_NONCE_LEN);
	memcpy(h->wrapped_dek, b + CMK_HDR_OFF_WRAPPED, CMK_HDR_DEK_LEN);
	memcpy(h->tag, b + CMK_HDR_OFF_TAG, CMK_HDR_TAG_LEN);
	if (!all_zero(b + CMK_HDR_OFF_RESERVED,
		      CMK_HDR_OFF_CHECKSUM - CMK_HDR_OFF_RESERVED))
		return BAD("field reserved: not all zero");
	return 0;
}

static int read_copies(int fd, uint8_t buf[2][CMK_HDR_SIZE], struct cmk_header hh[2],
		       struct cmk_header_status *st, struct cmk_err *e)
{
	struct cmk_err ce;
	int ret;

	memset(st, 0, sizeof(*st));
	st->chosen = -1;
	for (int i = 0; i < 2; i++) {
		ret = cmk_pread_full(fd, buf[i], CMK_HDR_SIZE, copy_off[i],
				     "device header", e);
		if (ret)
			return ret;
		ret = cmk_header_decode(buf[i], copy_name[i], &hh[i], &ce);
		if (ret == 0) {
			st->valid[i] = true;
			st->sequence[i] = hh[i].sequence;
		} else {
			st->blank[i] = (ret == -ENODATA);
			memcpy(st->why[i], ce.msg, sizeof(st->why[i]));
		}
	}
	if (st->valid[0] && st->valid[1]) {
		st->chosen = hh[1].sequence > hh[0].sequence ? 1 : 0;
		st->copies_differ = hh[0].sequence == hh[1].sequence &&
				    memcmp(buf[0], buf[1], CMK_HDR_SIZE) != 0;
	} else if (st->valid[0]) {
		st->chosen = 0;
	} else if (st->valid[1]) {
		st->chosen = 1;
	}
	return 0;
}

/* The error of a device with no valid copy: blank, or damaged. */
static int no_valid_copy(const struct cmk_header_status *st, struct cmk_err *e)
{
	if (st->blank[0] && st->blank[1])
		return cmk_errf(e, -ENODATA,
				"no dm-cmk header in either copy: the device is not formatted");
	return cmk_errf(e, -EUCLEAN, "no valid dm-cmk header: %.110s; %.110s",
			st->why[0], st->why[1]);
}

int cmk_header_read_candidates(int fd, struct cmk_header cand[2], int *n,
			       struct cmk_header_status *stp, struct cmk_err *e)
{
	uint8_t buf[2][CMK_HDR_SIZE];
	struct cmk_header hh[2];
	struct cmk_header_status st;
	int ret;

	*n = 0;
	ret = read_copies(fd, buf, hh, &st, e);
	if (stp)
		*stp = st;
	if (ret)
		return ret;
	if (st.chosen < 0)
		return no_valid_copy(&st, e);
	cand[(*n)++] = hh[st.chosen];
	if (st.valid[0] && st.valid[1] && !st.copies_differ &&
	    hh[0].sequence == hh[1].sequence)
		return 0;	/* the same header twice */
	if (st.valid[1 - st.chosen])
		cand[(*n)++] = hh[1 - st.chosen];
	return 0;
}

/* The copy a reader takes first is the first candidate. */
int cmk_header_read(int fd, struct cmk_header *h, struct cmk_header_status *stp,
		    struct cmk_err *e)
{
	struct cmk_header cand[2];
	int n, ret;

	ret = cmk_header_read_candidates(fd, cand, &n, stp, e);
	if (ret)
		return ret;
	*h = cand[0];
	return 0;
}

/* Fresh nonce, then encrypt @dek under @kek with the header's AAD. */
static int seal(struct cmk_header *h, const struct cmk_secret *kek,
		const struct cmk_secret *dek, struct cmk_err *e)
{
	uint8_t buf[CMK_HDR_SIZE];
	int ret;

	ret = cmk_kek_check(kek, e) ?: cmk_dek_check(dek, e);
	if (ret)
		return ret;
	ret = cmk_random_fill(h->nonce, sizeof(h->nonce), "header", e);
	if (ret)
		return ret;
	cmk_header_encode(h, buf);
	if (cmk_aead_seal(kek, h->nonce, buf, CMK_HDR_AAD_LEN,
			  cmk_secret_cdata(dek), CMK_HDR_DEK_LEN, h->wrapped_dek,
			  h->tag))
		return cmk_errf(e, -EIO, "header: AES-GCM encryption of the DEK failed");
	return 0;
}

int cmk_header_unwrap_dek(const struct cmk_header *h,
			  const struct cmk_secret *kek, struct cmk_secret **dekp,
			  struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *dek = NULL;
	uint8_t buf[CMK_HDR_SIZE];
	char id[CMK_UUID_STR];
	int ret;

	*dekp = NULL;
	ret = cmk_kek_check(kek, e);
	if (ret)
		return ret;
	ret = cmk_secret_new(&dek, CMK_HDR_DEK_LEN, e);
	if (ret)
		return ret;
	cmk_header_encode(h, buf);
	if (cmk_aead_open(kek, h->nonce, buf, CMK_HDR_AAD_LEN, h->wrapped_dek,
			  CMK_HDR_DEK_LEN, cmk_secret_data(dek), h->tag)) {
		cmk_uuid_format(h->kek_id, id);
		return cmk_errf(e, -EKEYREJECTED,
				"header: the DEK does not decrypt under KEK %s version %u: wrong KEK, or the header was tampered with",
				id, h->kek_version);
	}
	ret = cmk_dek_check(dek, e);
	if (ret)
		return ret;
	*dekp = dek;
	dek = NULL;
	return 0;
}

int cmk_header_write(int fd, struct cmk_header *h, const struct cmk_secret *kek,
		     const struct cmk_secret *dek, struct cmk_err *e)
{
	uint8_t old[2][CMK_HDR_SIZE], buf[CMK_HDR_SIZE], back[CMK_HDR_SIZE];
	struct cmk_header hh[2], check;
	struct cmk_header_status st;
	uint64_t size;
	int ret, first;

	ret = cmk_dev_size(fd, &size, e);
	if (ret)
		return ret;
	if (size < (uint64_t)CMK_HDR_AREA + h->sector_size)
		return cmk_errf(e, -ENOSPC,
				"device: %llu bytes is too small for a 1 MiB header and data",
				(unsigned long long)size);
	/*
	 * The sequence follows the header this one replaces, as the caller
	 * authenticated it, never what a copy merely claims: a forged copy
	 * (a checksum is no signature) must not decide it.
	 */
	if (h->sequence >= CMK_HDR_SEQ_MAX)
		return cmk_errf(e, -EOVERFLOW, "header: sequence number exhausted");
	ret = read_copies(fd, old, hh, &st, e);
	if (ret)
		return ret;
	/*
	 * Overwrite first the copy that does not hold the header being
	 * replaced, as the caller authenticated it: a torn write then leaves
	 * that one intact.  What a copy merely claims (its sequence) decides
	 * only when neither copy is the caller's header (a new one).
	 */
	cmk_header_encode(h, buf);
	if (!memcmp(buf, old[0], CMK_HDR_SIZE))
		first = 1;
	else if (!memcmp(buf, old[1], CMK_HDR_SIZE))
		first = 0;
	else
		first = st.chosen == 0 ? 1 : 0;
	h->sequence++;
	h->write_time = (uint64_t)time(NULL);
	ret = seal(h, kek, dek, e);
	if (ret)
		return ret;
	cmk_header_encode(h, buf);
	/* Never put on disk what a reader would refuse. */
	ret = cmk_header_decode(buf, "being written", &check, e);
	if (ret)
		return ret;

	for (int k = 0; k < 2; k++) {
		int i = k == 0 ? first : 1 - first;
		char what[64];

		snprintf(what, sizeof(what), "device header copy %s", copy_name[i]);
		ret = cmk_pwrite_full(fd, buf, CMK_HDR_SIZE, copy_off[i], what, e);
		if (ret)
			return ret;
		if (fsync(fd))
			return cmk_errf(e, -errno, "%s: fsync failed: %s", what,
					strerror(errno));
	}
	/*
	 * Read back from the device, not from the page cache that still holds
	 * what we wrote.  posix_fadvise(DONTNEED) drops the (now clean) cached
	 * pages of a regular file and of a block device alike; BLKFLSBUF is
	 * not used: it needs CAP_SYS_ADMIN, and some RAM-disk drivers used to
	 * free their contents on it.  Best effort: if the cache cannot be
	 * dropped, the comparison still catches a write the kernel refused.
	 */
	(void)posix_fadvise(fd, 0, CMK_HDR_AREA, POSIX_FADV_DONTNEED);
	for (int i = 0; i < 2; i++) {
		ret = cmk_pread_full(fd, back, CMK_HDR_SIZE, copy_off[i],
				     "device header", e);
		if (ret)
			return ret;
		if (memcmp(back, buf, CMK_HDR_SIZE))
			return cmk_errf(e, -EIO,
					"header copy %s: read back differs from what was written",
					copy_name[i]);
	}
	return 0;
}

int cmk_header_read_unwrap(int fd, const struct cmk_secret *kek,
			   struct cmk_header *h, struct cmk_secret **dek,
			   struct cmk_err *e)
{
	struct cmk_header cand[2];
	struct cmk_err first;
	int n, ret;

	*dek = NULL;
	ret = cmk_header_read_candidates(fd, cand, &n, NULL, e);
	if (ret)
		return ret;
	for (int i = 0; i < n; i++) {
		ret = cmk_header_unwrap_dek(&cand[i], kek, dek, i ? NULL : &first);
		if (!ret) {
			*h = cand[i];
			return 0;
		}
	}
	if (e)
		*e = first;
	return -EKEYREJECTED;
}

int cmk_header_rewrap(int fd, const struct cmk_secret *old_kek,
		      const struct cmk_secret *new_kek,
		      const uint8_t kek_id[CMK_UUID_LEN], uint32_t kek_version,
		      struct cmk_header *before, struct cmk_header *h,
		      struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *dek = NULL;
	int ret;

	if (kek_version == 0)
		return cmk_errf(e, -EINVAL, "header: KEK version must be >= 1");
	ret = cmk_header_read_unwrap(fd, old_kek, before, &dek, e);
	if (ret)
		return ret;
	*h = *before;
	memcpy(h->kek_id, kek_id, CMK_UUID_LEN);
	h->kek_version = kek_version;
	return cmk_header_write(fd, h, new_kek, dek, e);
}

int cmk_header_zero_area(int fd, struct cmk_err *e)
{
	static const uint8_t zero[65536];
	int ret;

	for (off_t off = 0; off < CMK_HDR_AREA; off += sizeof(zero)) {
		ret = cmk_pwrite_full(fd, zero, sizeof(zero), off,
				      "device header area", e);
		if (ret)
			return ret;
	}
	if (fsync(fd))
		return cmk_errf(e, -errno, "device header area: fsync failed: %s",
				strerror(errno));
	return 0;
}
