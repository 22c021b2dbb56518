// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_header.c - the device header decoder: a header copy is read from a
 * disk anyone with the disk can write.
 *
 * An input shorter than a copy is padded with zeros and given a correct
 * checksum, so the fuzzer reaches the field checks behind it; a full copy
 * (4096 bytes or more) is taken as it is, checksum and all.  Oracles:
 * ASan/UBSan, and an accepted copy encodes back to a copy that decodes to
 * the same header (nothing is read that the encoder would not write).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "format/header.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[CMK_HDR_SIZE], again[CMK_HDR_SIZE];
	struct cmk_header h, h2;
	struct cmk_secret *kek = NULL, *dek = NULL;
	struct cmk_err e;

	memset(buf, 0, sizeof(buf));
	if (size >= CMK_HDR_SIZE) {
		memcpy(buf, data, CMK_HDR_SIZE);
	} else {
		memcpy(buf, data, size);
		SHA256(buf, CMK_HDR_OFF_CHECKSUM, buf + CMK_HDR_OFF_CHECKSUM);
	}
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
