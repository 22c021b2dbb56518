// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_ttlv.c - libFuzzer target for the TTLV decoder and the KMIP
 * response parser: whatever a KMIP server (or anyone in its place) sends,
 * parsing stays in bounds.  Every accepted item tree is walked in full and
 * every payload reader is run on it, so a view that points outside the
 * input is touched under ASan.
 *
 *   make -C agent fuzz [FUZZ_SECONDS=60]
 *
 * Seeds in tests/fuzz/corpus/ttlv: messages encoded by PyKMIP 0.10.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kms/kmip/kmip.h"
#include "kms/kmip/ttlv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned walk(const struct cmk_ttlv *t, int depth)
{
	struct cmk_ttlv c;
	size_t pos = 0;
	unsigned sum = t->tag ^ t->type;

	if (t->type != CMK_TTLV_STRUCTURE) {
		for (uint32_t i = 0; i < t->len; i++)
			sum += t->val[i];
		return sum;
	}
	while (cmk_ttlv_next(t, &pos, &c))
		sum += walk(&c, depth + 1);
	return sum;
}

static volatile unsigned sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t ops[] = {
		KMIP_OP_DISCOVER_VERSIONS, KMIP_OP_LOCATE, KMIP_OP_GET_ATTRIBUTES,
		KMIP_OP_ENCRYPT, KMIP_OP_DECRYPT,
	};
	struct cmk_ttlv t;
	size_t total;

	if (size >= CMK_TTLV_HDR)
		cmk_ttlv_frame_len(data, 65536, &total);
	if (cmk_ttlv_parse(data, size, &t) == 0)
		sink = walk(&t, 0);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct cmk_kmip_version v[8];
		struct cmk_kmip_resp r;
		char uid[CMK_KMIP_UID_MAX];
		const unsigned char *a, *b, *c;
		size_t an, bn, cn, n;
		uint32_t st;

		if (cmk_kmip_parse_response(data, size, ops[i], &r))
			continue;
		sink += (unsigned)strlen(r.message);
		cmk_kmip_discover_result(&r, v, 8, &n);
		if (cmk_kmip_locate_result(&r, uid, &n) == 0)
			sink += (unsigned)strlen(uid);
		cmk_kmip_state_result(&r, &st);
		if (cmk_kmip_encrypt_result(&r, &a, &an, &b, &bn, &c, &cn) == 0)
			sink += an ? a[an - 1] : 0;
		if (cmk_kmip_decrypt_result(&r, &a, &an) == 0)
			sink += an ? a[an - 1] : 0;
	}
	return 0;
}
