/* SPDX-License-Identifier: GPL-2.0 */
/*
 * header.h - the device header: the first 1 MiB of the backing device.
 *
 * Two copies of one 4096-byte structure, copy A at byte 0 and copy B at
 * byte 65536; the data area starts at byte 1048576 (sector 2048).  All
 * integers little-endian.  Layout of one copy (Documentation/formats.rst
 * has the same table with the meaning of every field):
 *
 *   off  size  field
 *     0     8  magic          "DMCMKHDR"
 *     8     4  version        1
 *    12     4  header_size    4096
 *    16    16  device_uuid
 *    32     8  sequence       1..2^63-1, +1 on every write
 *    40     4  mode           1 ephemeral, 2 persistent
 *    44     4  sector_size    512 or 4096
 *    48    32  cipher         "aes-xts-plain64", NUL padded
 *    80     8  data_offset    2048 (512-byte sectors)
 *    88    16  kek_id
 *   104     4  kek_version    >= 1
 *   108     4  wrap_alg       1 = AES-256-GCM
 *   112    16  boot_id
 *   128     8  write_time     seconds since the epoch, UTC
 *   136     4  dek_len        64
 *   140     4  flags          bit 0: iv_large_sectors; others 0
 *   144    12  dek_nonce
 *   156    64  wrapped_dek    AES-256-GCM(KEK, nonce, AAD = bytes 0..155)
 *   220    16  dek_tag
 *   236  3828  reserved       zero
 *  4064    32  checksum       SHA-256 of bytes 0..4063
 *
 * A reader takes the valid copy with the higher sequence (A on a tie).  A
 * writer writes the copy that is not the one a reader would take first,
 * syncs, then writes the other, so a torn write leaves one valid copy.
 *
 * "Valid" means well-formed with a correct checksum, which anyone who can
 * write the disk can forge.  So whoever holds the KEK tries the valid
 * copies from the highest sequence down and takes the first that passes
 * its checks and authenticates (cmk_header_read_candidates()), and a new
 * header's sequence follows the authenticated one it replaces, never a
 * number a copy merely claims.
 */
#ifndef CMK_HEADER_H
#define CMK_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/codec.h"
#include "core/err.h"
#include "core/secret.h"

#define CMK_HDR_MAGIC		"DMCMKHDR"
#define CMK_HDR_VERSION		1
#define CMK_HDR_SIZE		4096
#define CMK_HDR_COPY_A		0
#define CMK_HDR_COPY_B		65536
#define CMK_HDR_AREA		(1024 * 1024)
#define CMK_HDR_DATA_OFFSET	2048	/* 512-byte sectors */
#define CMK_HDR_CIPHER		"aes-xts-plain64"
#define CMK_HDR_CIPHER_LEN	32
#define CMK_HDR_WRAP_AES256GCM	1
#define CMK_HDR_NONCE_LEN	12
#define CMK_HDR_TAG_LEN		16
#define CMK_HDR_DEK_LEN		64
/* Largest sequence: fits an int64 (records, JSON); larger copies are invalid. */
#define CMK_HDR_SEQ_MAX		((uint64_t)INT64_MAX)

/*
 * Header flags: table options that change what the ciphertext means, so a
 * device is never mapped with other ones than it was written with.
 */
#define CMK_HDR_F_IV_LARGE_SECTORS	(1U << 0)
#define CMK_HDR_F_KNOWN			CMK_HDR_F_IV_LARGE_SECTORS

/* Field offsets (bytes, within one copy). */
#define CMK_HDR_OFF_MAGIC	0
#define CMK_HDR_OFF_VERSION	8
#define CMK_HDR_OFF_HDR_SIZE	12
#define CMK_HDR_OFF_DEV_UUID	16
#define CMK_HDR_OFF_SEQUENCE	32
#define CMK_HDR_OFF_MODE	40
#define CMK_HDR_OFF_SECTOR_SIZE	44
#define CMK_HDR_OFF_CIPHER	48
#define CMK_HDR_OFF_DATA_OFFSET	80
#define CMK_HDR_OFF_KEK_ID	88
#define CMK_HDR_OFF_KEK_VERSION	104
#define CMK_HDR_OFF_WRAP_ALG	108
#define CMK_HDR_OFF_BOOT_ID	112
#define CMK_HDR_OFF_WRITE_TIME	128
#define CMK_HDR_OFF_DEK_LEN	136
#define CMK_HDR_OFF_FLAGS	140
#define CMK_HDR_OFF_NONCE	144
#define CMK_HDR_OFF_WRAPPED	156
#define CMK_HDR_OFF_TAG		220
#define CMK_HDR_OFF_RESERVED	236
#define CMK_HDR_OFF_CHECKSUM	4064
#define CMK_HDR_AAD_LEN		CMK_HDR_OFF_WRAPPED

enum cmk_mode {
	CMK_MODE_EPHEMERAL = 1,
	CMK_MODE_PERSISTENT = 2,
};

/* The decoded header.  No secrets: the DEK is only present wrapped. */
struct cmk_header {
	uint32_t version;
	uint32_t header_size;
	uint8_t device_uuid[CMK_UUID_LEN];
	uint64_t sequence;
	uint32_t mode;
	uint32_t sector_size;
	char cipher[CMK_HDR_CIPHER_LEN];
	uint64_t data_offset;
	uint8_t kek_id[CMK_UUID_LEN];
	uint32_t kek_version;
	uint32_t wrap_alg;
	uint8_t boot_id[CMK_UUID_LEN];
	uint64_t write_time;
	uint32_t dek_len;
	uint32_t flags;		/* CMK_HDR_F_* */
	uint8_t nonce[CMK_HDR_NONCE_LEN];
	uint8_t wrapped_dek[CMK_HDR_DEK_LEN];
	uint8_t tag[CMK_HDR_TAG_LEN];
};

/* One row of the layout, for dumps and tests. */
struct cmk_header_field {
	const char *name;
	size_t off;
	size_t size;
};
extern const struct cmk_header_field cmk_header_fields[];
extern const size_t cmk_header_nfields;

/* What the reader saw in each copy (index 0 = A, 1 = B). */
struct cmk_header_status {
	bool valid[2];
	bool blank[2];		/* no magic: never written (or wiped) */
	uint64_t sequence[2];	/* of valid copies */
	char why[2][CMK_ERR_MSG_MAX]; /* of invalid copies */
	int chosen;		/* 0, 1, or -1 when none is valid */
	bool copies_differ;	/* both valid, same sequence, different bytes */
};

const char *cmk_mode_name(uint32_t mode);

/*
 * cmk_header_init() - fresh header fields for a new device: random device
 * UUID and boot id, the fixed cipher, sizes and offsets, no flags.
 * sequence, nonce, wrapped DEK and tag are filled by cmk_header_write();
 * device.c sets boot_id to the kernel's boot id and the flags.
 */
int cmk_header_init(struct cmk_header *h, enum cmk_mode mode,
		    uint32_t sector_size, const uint8_t kek_id[CMK_UUID_LEN],
		    uint32_t kek_version, struct cmk_err *e);

/* cmk_header_new_boot_id() - a fresh per-boot id. */
int cmk_header_new_boot_id(struct cmk_header *h, struct cmk_err *e);

/* cmk_header_encode() - @buf gets one copy, checksum included. */
void cmk_header_encode(const struct cmk_header *h, uint8_t buf[CMK_HDR_SIZE]);

/*
 * cmk_header_decode() - validate one copy: magic, version, checksum, every
 * field's range, reserved bytes zero.  @copy ("A" or "B") names it in
 * messages.  Returns -ENODATA for a copy without magic.
 */
int cmk_header_decode(const uint8_t buf[CMK_HDR_SIZE], const char *copy,
		      struct cmk_header *h, struct cmk_err *e);

/*
 * cmk_header_read() - read both copies from @fd (file or block device),
 * return the valid one with the highest sequence in @h.  @st (optional)
 * says what each copy held.  -ENODATA: neither copy has the magic (not a
 * dm-cmk device); -EUCLEAN: header present but no valid copy.
 */
int cmk_header_read(int fd, struct cmk_header *h, struct cmk_header_status *st,
		    struct cmk_err *e);

/*
 * cmk_header_read_candidates() - the valid copies of @fd's header, the one
 * a reader takes first in @cand[0], the other (if valid and not the same
 * header) in @cand[1]; *@n says how many.  Errors as cmk_header_read().
 * Callers that hold the KEK take the first candidate that passes their
 * checks and authenticates: a forged copy is skipped, not believed.
 */
int cmk_header_read_candidates(int fd, struct cmk_header cand[2], int *n,
			       struct cmk_header_status *st, struct cmk_err *e);

/*
 * cmk_header_read_unwrap() - the first candidate whose DEK unwraps under
 * @kek, and that DEK; -EKEYREJECTED (the best copy's reason) if none does.
 */
int cmk_header_read_unwrap(int fd, const struct cmk_secret *kek,
			   struct cmk_header *h, struct cmk_secret **dek,
			   struct cmk_err *e);

/*
 * cmk_header_write() - seal @dek under @kek into @h (fresh nonce, sequence
 * = @h->sequence + 1, so @h->sequence on entry is that of the authenticated
 * header this one replaces, 0 for none) and write both copies: first the
 * copy a reader would not pick now, fsync, then the other, fsync.  @fd must
 * be at least 1 MiB plus one sector.
 */
int cmk_header_write(int fd, struct cmk_header *h, const struct cmk_secret *kek,
		     const struct cmk_secret *dek, struct cmk_err *e);

/* cmk_header_unwrap_dek() - authenticate @h under @kek and return the DEK. */
int cmk_header_unwrap_dek(const struct cmk_header *h,
			  const struct cmk_secret *kek, struct cmk_secret **dek,
			  struct cmk_err *e);

/*
 * cmk_header_rewrap() - KEK rotation for one device: unwrap the DEK with
 * @old_kek (from the first candidate it opens: @before) and write it back
 * wrapped under @new_kek (id/version given) as @h, sequence + 1.  The DEK
 * and the data do not change.
 */
int cmk_header_rewrap(int fd, const struct cmk_secret *old_kek,
		      const struct cmk_secret *new_kek,
		      const uint8_t kek_id[CMK_UUID_LEN], uint32_t kek_version,
		      struct cmk_header *before, struct cmk_header *h,
		      struct cmk_err *e);

/* cmk_header_zero_area() - zero the whole first 1 MiB (before a format). */
int cmk_header_zero_area(int fd, struct cmk_err *e);

#endif /* CMK_HEADER_H */
