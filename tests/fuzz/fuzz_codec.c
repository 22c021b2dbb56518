// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_codec.c - the text codecs every KMS answer and file goes through:
 * base64 (strict, canonical), UUIDs, RFC 3339 times, and the wiped JSON
 * parse with its string getter.
 *
 * Oracles: ASan/UBSan; what base64 decoding accepts encodes back to the
 * same text (canonical: one text per byte string); an accepted UUID or
 * time formats back to text that parses to the same value.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/codec.h"
#include "core/json_secret.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size), *enc = NULL;
	unsigned char *dec = NULL;
	uint8_t uuid[CMK_UUID_LEN], uuid2[CMK_UUID_LEN];
	char ustr[CMK_UUID_STR], tstr[CMK_TIME_STR];
	struct json_object *o;
	size_t n = 0;
	time_t t, t2;
	struct cmk_err e;

	if (cmk_b64_decode(s, &dec, &n, &e) == 0) {
		if (cmk_b64_encode(dec, n, &enc, &e) || strcmp(enc, s))
			abort();
	}
	if (cmk_uuid_parse(s, uuid) == 0) {
		cmk_uuid_format(uuid, ustr);
		if (cmk_uuid_parse(ustr, uuid2) || memcmp(uuid, uuid2, sizeof(uuid)))
			abort();
	}
	if (cmk_time_parse(s, &t) == 0 && cmk_time_format(t, tstr) == 0) {
		if (cmk_time_parse(tstr, &t2) || t != t2)
			abort();
	}
	o = cmk_json_parse_wiped((const char *)data, size);
	if (o) {
		static const char *const keys[] = { "Plaintext", "ciphertext",
						    "value", "access_token", "" };

		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			size_t l = 0;
			const char *v = cmk_json_str(o, keys[i], &l);

			if (v && strlen(v) > l)
				abort();
		}
		cmk_json_put_wiped(o);
	}
	free(enc);
	free(dec);
	free(s);
	return 0;
}
