// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_esdk.c - libFuzzer target for the ESDK message opener: whatever an
 * object store hands back, cmk_esdk_open() stays in bounds, refuses what
 * does not authenticate, and never writes more plaintext than the input
 * held ciphertext.  The key and context are those of the known answers of
 * tests/unit/test_esdk.c, so mutations of the body of a seed (the header
 * intact) reach the frame and footer parsers.
 *
 *   make -C agent fuzz [FUZZ_SECONDS=60]
 *
 * Seeds in tests/fuzz/corpus/esdk: messages made by the JavaScript ESDK
 * (tests/storage/esdk_kat.js).
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/secret.h"
#include "format/esdk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cmk_esdk_wrapkey wk;
static struct cmk_encctx ctx;

static void setup(void)
{
	static const uint8_t kek_id[16] = {
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
		0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
	};
	struct cmk_secret *kek = NULL;
	struct cmk_err e;

	if (cmk_secret_new(&kek, 32, &e))
		abort();
	for (int i = 0; i < 32; i++)
		cmk_secret_data(kek)[i] = (unsigned char)i;
	if (cmk_esdk_wrapkey_derive(kek, kek_id, 1, &wk, &e))
		abort();
	cmk_secret_free(&kek);
	cmk_encctx_init(&ctx);
	if (cmk_encctx_add(&ctx, "cluster", "c1", &e) ||
	    cmk_encctx_add(&ctx, "segment", "000000010000000000000001", &e))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct cmk_esdk_wrapkey *keys[1] = { &wk };
	struct cmk_esdk_info info;
	struct cmk_err e;
	int in, out, ret;
	off_t written;

	if (!wk.key)
		setup();
	in = memfd_create("in", MFD_CLOEXEC);
	out = memfd_create("out", MFD_CLOEXEC);
	if (in < 0 || out < 0 || (size && write(in, data, size) != (ssize_t)size) ||
	    lseek(in, 0, SEEK_SET))
		abort();
	ret = cmk_esdk_open(in, out, keys, 1, &ctx, "fuzz", &info, &e);
	written = lseek(out, 0, SEEK_END);
	/* Plaintext never exceeds the ciphertext it came from. */
	if (written < 0 || (size_t)written > size)
		abort();
	if (!ret && (uint64_t)written != info.plaintext_len)
		abort();
	close(in);
	close(out);
	return 0;
}
