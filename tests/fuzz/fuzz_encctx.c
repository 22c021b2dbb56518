// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_encctx.c - encryption-context canonicalisation: the pairs come from
 * the envelope file and the KMS binds their canonical bytes as AAD.
 *
 * Input: "key=value" lines.  Oracles: ASan/UBSan; the canonical bytes do
 * not depend on the order the pairs were added in (the same lines
 * reversed give the same bytes), and they decode back to exactly the
 * pairs added (length-prefixed: no two contexts share their bytes).
 */
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/encctx.h"
#include "fuzz.h"

#define MAX_LINES 64

/* Decode @buf as canonical bytes and compare with @c. */
static void check_decodes_to(const unsigned char *buf, size_t len,
			     const struct cmk_encctx *c)
{
	size_t off = 12;

	if (len < 12 || memcmp(buf, CMK_ENCCTX_MAGIC, 8) ||
	    cmk_get_le32(buf + 8) != c->n)
		abort();
	for (size_t i = 0; i < c->n; i++) {
		const char *s[2] = { c->pairs[i].key, c->pairs[i].value };

		for (int j = 0; j < 2; j++) {
			size_t sl;

			if (len - off < 4)
				abort();
			sl = cmk_get_le32(buf + off);
			if (sl != strlen(s[j]) || len - off - 4 < sl ||
			    memcmp(buf + off + 4, s[j], sl))
				abort();
			off += 4 + sl;
		}
	}
	if (off != len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size), *lines[MAX_LINES], *save = NULL, *l;
	struct cmk_encctx a, b;
	unsigned char *ca = NULL, *cb = NULL;
	size_t n = 0, la, lb;
	bool all = true;
	struct cmk_err e;

	cmk_encctx_init(&a);
	cmk_encctx_init(&b);
	for (l = strtok_r(text, "\n", &save); l && n < MAX_LINES;
	     l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(lines[i], '=');

		if (eq)
			*eq = '\0';
		if (cmk_encctx_add(&a, lines[i], eq ? eq + 1 : "", &e))
			all = false;
		if (eq)
			*eq = '=';
	}
	if (cmk_encctx_canonical(&a, &ca, &la, &e))
		goto out;
	check_decodes_to(ca, la, &a);
	if (!all)
		goto out;
	for (size_t i = n; i-- > 0;) {
		char *eq = strchr(lines[i], '=');

		if (eq)
			*eq = '\0';
		if (cmk_encctx_add(&b, lines[i], eq ? eq + 1 : "", &e))
			abort();
	}
	if (cmk_encctx_canonical(&b, &cb, &lb, &e) || la != lb || memcmp(ca, cb, la))
		abort();
out:
	free(ca);
	free(cb);
	cmk_encctx_free(&a);
	cmk_encctx_free(&b);
	free(text);
	return 0;
}
