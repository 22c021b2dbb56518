// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_header.c - the device header: a copy's decoder and the choice
 * between the two copies, read from a disk anyone with the disk can write.
 *
 * Input: copy A, then (after its 4096 bytes) copy B.  A copy shorter than
 * 4096 bytes is padded with zeros and given a correct checksum, so the
 * fuzzer reaches the field checks behind it; a full copy A is taken as it
 * is, checksum and all.  No bytes for B: B is blank.
 *
 * Oracles: ASan/UBSan; an accepted copy encodes back to a copy that
 * decodes to the same header (nothing is read that the encoder would not
 * write); from the device (a memfd holding both copies) the reader takes a
 * valid copy with the highest sequence, and the candidates are that one
 * first, then a different valid one, never a copy that does not decode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "format/header.h"
#include "fuzz.h"

/* @n bytes of @data as a copy in @buf: short ones padded and checksummed. */
static void copy_of(const uint8_t *data, size_t n, uint8_t buf[CMK_HDR_SIZE],
		    bool raw)
{
	memset(buf, 0, CMK_HDR_SIZE);
	if (raw) {
		memcpy(buf, data, CMK_HDR_SIZE);
		return;
	}
	if (!n)
		return;
	memcpy(buf, data, n);
	SHA256(buf, CMK_HDR_OFF_CHECKSUM, buf + CMK_HDR_OFF_CHECKSUM);
}

static void check_device(const uint8_t a[CMK_HDR_SIZE], const uint8_t b[CMK_HDR_SIZE])
{
	static int fd = -1;
	struct cmk_header ha, hb, h, cand[2];
	struct cmk_header_status st;
	bool va, vb;
	struct cmk_err e;
	int n, ret;

	if (fd < 0) {
		fd = memfd_create("fuzz-header", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, CMK_HDR_AREA))
			abort();
	}
	if (pwrite(fd, a, CMK_HDR_SIZE, CMK_HDR_COPY_A) != CMK_HDR_SIZE ||
	    pwrite(fd, b, CMK_HDR_SIZE, CMK_HDR_COPY_B) != CMK_HDR_SIZE)
		abort();
	va = cmk_header_decode(a, "A", &ha, &e) == 0;
	vb = cmk_header_decode(b, "B", &hb, &e) == 0;
	ret = cmk_header_read(fd, &h, &st, &e);
	if ((ret == 0) != (va || vb) || st.valid[0] != va || st.valid[1] != vb)
		abort();
	if (ret == 0 && memcmp(&h, va && (!vb || ha.sequence >= hb.sequence) ? &ha : &hb,
			       sizeof(h)))
		abort();
	ret = cmk_header_read_candidates(fd, cand, &n, &st, &e);
	if (ret == 0 && (n < 1 || n > 2 || memcmp(&cand[0], &h, sizeof(h)) ||
			 (n == 2 && (!va || !vb || cand[1].sequence > cand[0].sequence))))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[CMK_HDR_SIZE], b[CMK_HDR_SIZE], again[CMK_HDR_SIZE];
	struct cmk_header h, h2;
	struct cmk_secret *kek = NULL, *dek = NULL;
	struct cmk_err e;

	copy_of(data, size < CMK_HDR_SIZE ? size : CMK_HDR_SIZE, buf,
		size >= CMK_HDR_SIZE);
	copy_of(size > CMK_HDR_SIZE ? data + CMK_HDR_SIZE : NULL,
		size > 2 * CMK_HDR_SIZE ? CMK_HDR_SIZE :
		size > CMK_HDR_SIZE ? size - CMK_HDR_SIZE : 0, b, false);
	check_device(buf, b);
	if (cmk_header_decode(buf, "A", &h, &e)) {
		if (getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "fuzz: header: %s\n", e.msg);
		return 0;
	}
	cmk_header_encode(&h, again);
	if (cmk_header_decode(again, "A", &h2, &e) || memcmp(&h, &h2, sizeof(h)))
		abort();
	/* The wrapped DEK of an accepted copy goes to AES-GCM as it is. */
	if (cmk_secret_new(&kek, 32, &e))
		abort();
	if (cmk_header_unwrap_dek(&h, kek, &dek, &e) == 0 && !dek)
		abort();
	cmk_secret_free(&dek);
	cmk_secret_free(&kek);
	return 0;
}
