// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_p11uri.c - RFC 7512 pkcs11: URIs: the key reference in the
 * envelope file names the module, token, object and PIN file.
 *
 * Oracles: ASan/UBSan; percent-decoding never writes more than it read,
 * and a decoded field compares equal to its own text.
 */
#include <stdlib.h>
#include <string.h>

#include "kms/pkcs11/p11uri.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size), field[128];
	struct cmk_p11uri u;
	unsigned char *out = NULL;
	size_t n = 0;
	struct cmk_err e;

	memset(&u, 0, sizeof(u));
	if (cmk_p11uri_parse(s, &u, &e) == 0) {
		if (u.has_id && u.id_len > CMK_P11URI_ID_MAX)
			abort();
		if (u.token)
			cmk_p11uri_field_eq(u.token, (const unsigned char *)u.token,
					    strlen(u.token));
	}
	cmk_p11uri_free(&u);
	if (cmk_p11uri_pct_decode(s, size, &out, &n) == 0) {
		if (n > size)
			abort();
		cmk_p11uri_field_str(out, n, field, sizeof(field));
		if (memchr(out, 0, n) == NULL) {
			char *copy = fuzz_cstr(out, n);

			if (!cmk_p11uri_field_eq(copy, out, n))
				abort();
			free(copy);
		}
	}
	free(out);
	free(s);
	return 0;
}
