// SPDX-License-Identifier: GPL-2.0
/*
 * test_codec.c - base64, UUIDs, timestamps, encryption context bytes.
 * Oracles: RFC 4648 test vectors, known Unix times, a hand-written byte
 * string for the canonical encryption context.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/encctx.h"
#include "core/err.h"

static void base64_rfc4648_vectors(void **state)
{
	static const char *const v[][2] = {
		{ "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	struct cmk_err e;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		unsigned char *dec;
		size_t len;
		char *enc;

		assert_int_equal(cmk_b64_encode((const unsigned char *)v[i][0],
						strlen(v[i][0]), &enc, &e), 0);
		assert_string_equal(enc, v[i][1]);
		assert_int_equal(cmk_b64_decode(v[i][1], &dec, &len, &e), 0);
		assert_int_equal(len, strlen(v[i][0]));
		assert_memory_equal(dec, v[i][0], len);
		free(enc);
		free(dec);
	}
}

static void base64_roundtrip_binary(void **state)
{
	unsigned char in[100], *out;
	struct cmk_err e;
	size_t len;
	char *enc;

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 37 + 11);
	for (size_t n = 1; n <= sizeof(in); n++) {
		assert_int_equal(cmk_b64_encode(in, n, &enc, &e), 0);
		assert_int_equal(cmk_b64_decode(enc, &out, &len, &e), 0);
		assert_int_equal(len, n);
		assert_memory_equal(in, out, n);
		free(enc);
		free(out);
	}
}

static void base64_rejects_malformed(void **state)
{
	static const char *const bad[] = {
		"", "Zg=", "Zm9", "Zm9v\n", " Zm9v", "Zm=v", "Z===", "Zm9v====",
		"Zm9v!A==", "Zh==", "Zm9=", "====",
	};
	struct cmk_err e;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned char *out = (unsigned char *)1;
		size_t len;

		if (cmk_b64_decode(bad[i], &out, &len, &e) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_null(out);
		assert_contains(e.msg, "base64");
	}
}

static void uuid_format_parse_roundtrip(void **state)
{
	uint8_t u[16], v[16];
	char s[CMK_UUID_STR];
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_uuid_generate(u, &e), 0);
	assert_int_equal(u[6] >> 4, 4);		/* version 4 */
	assert_int_equal(u[8] >> 6, 2);		/* RFC 4122 variant */
	cmk_uuid_format(u, s);
	assert_int_equal(strlen(s), 36);
	assert_int_equal(cmk_uuid_parse(s, v), 0);
	assert_memory_equal(u, v, 16);

	assert_int_equal(cmk_uuid_parse("0F8FAD5B-D9CB-469F-A165-70867728950E", v), 0);
	cmk_uuid_format(v, s);
	assert_string_equal(s, "0f8fad5b-d9cb-469f-a165-70867728950e");
}

static void uuid_parse_rejects_malformed(void **state)
{
	static const char *const bad[] = {
		"", "0f8fad5b-d9cb-469f-a165-70867728950", "0f8fad5bd9cb469fa16570867728950e",
		"0f8fad5b-d9cb-469f-a165-70867728950e0", "0f8fad5b_d9cb-469f-a165-70867728950e",
		"0g8fad5b-d9cb-469f-a165-70867728950e", "{f8fad5b-d9cb-469f-a165-70867728950e",
	};
	uint8_t u[16];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cmk_uuid_parse(bad[i], u) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
}

static void time_rfc3339_known_answers(void **state)
{
	char s[CMK_TIME_STR];
	time_t t;

	(void)state;
	assert_int_equal(cmk_time_parse("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(cmk_time_parse("2000-03-01T12:34:56Z", &t), 0);
	assert_int_equal(t, 951914096);
	assert_int_equal(cmk_time_format(951914096, s), 0);
	assert_string_equal(s, "2000-03-01T12:34:56Z");
}

static void time_rejects_non_utc_and_non_dates(void **state)
{
	static const char *const bad[] = {
		"2025-02-30T00:00:00Z", "2025-01-01T00:00:00+01:00",
		"2025-01-01 00:00:00Z", "2025-01-01T00:00:00", "2025-1-01T00:00:00Z",
		"2025-01-01T24:00:00Z", "2025-01-01T00:00:60Z", "x",
		"2025-01-01T00:00:00z",
	};
	time_t t;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cmk_time_parse(bad[i], &t) == 0)
			fail_msg("accepted \"%s\"", bad[i]);
}

static void encctx_canonical_known_answer(void **state)
{
	static const unsigned char want[] = {
		'C', 'M', 'K', 'C', 'T', 'X', '0', '1', 3, 0, 0, 0,
		1, 0, 0, 0, 'a', 2, 0, 0, 0, 'v', '1',
		2, 0, 0, 0, 'a', 'b', 0, 0, 0, 0,
		1, 0, 0, 0, 'b', 1, 0, 0, 0, '2',
	};
	struct cmk_encctx c;
	struct cmk_err e;
	unsigned char *b;
	size_t len;

	(void)state;
	cmk_encctx_init(&c);
	/* inserted out of order; "a" < "ab" < "b" bytewise */
	assert_int_equal(cmk_encctx_add(&c, "b", "2", &e), 0);
	assert_int_equal(cmk_encctx_add(&c, "ab", "", &e), 0);
	assert_int_equal(cmk_encctx_add(&c, "a", "v1", &e), 0);
	assert_int_equal(cmk_encctx_canonical(&c, &b, &len, &e), 0);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(b, want, len);
	free(b);
	cmk_encctx_free(&c);

	cmk_encctx_init(&c);
	assert_int_equal(cmk_encctx_canonical(&c, &b, &len, &e), 0);
	assert_int_equal(len, 12);
	assert_memory_equal(b, "CMKCTX01\0\0\0\0", 12);
	free(b);
}

static void encctx_rejects_bad_pairs(void **state)
{
	struct cmk_encctx c;
	struct cmk_err e;
	char big[CMK_ENCCTX_MAX_VALUE + 2];

	(void)state;
	cmk_encctx_init(&c);
	assert_int_equal(cmk_encctx_add(&c, "k", "v", &e), 0);
	assert_int_equal(cmk_encctx_add(&c, "k", "w", &e), -EEXIST);
	assert_contains(e.msg, "appears twice");
	assert_int_equal(cmk_encctx_add(&c, "", "v", &e), -EINVAL);
	assert_int_equal(cmk_encctx_add(&c, "x", "a\nb", &e), -EINVAL);
	assert_contains(e.msg, "control character");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(cmk_encctx_add(&c, "x", big, &e), -EINVAL);
	for (int i = 1; i < CMK_ENCCTX_MAX_PAIRS; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(cmk_encctx_add(&c, k, "v", &e), 0);
	}
	assert_int_equal(cmk_encctx_add(&c, "one-too-many", "v", &e), -E2BIG);
	cmk_encctx_free(&c);
}

static void error_reasons_map_to_classes(void **state)
{
	static const enum cmk_reason definitive[] = {
		CMK_R_DISABLED, CMK_R_DESTROYED, CMK_R_DENIED, CMK_R_NOT_FOUND,
		CMK_R_REVOKED, CMK_R_INVALID_CIPHERTEXT,
	};
	static const enum cmk_reason transient[] = {
		CMK_R_THROTTLED, CMK_R_UNAVAILABLE, CMK_R_TIMEOUT, CMK_R_NETWORK,
	};
	struct cmk_err e;

	(void)state;
	for (size_t i = 0; i < sizeof(definitive) / sizeof(definitive[0]); i++) {
		assert_true(cmk_err_kms(&e, definitive[i], "x") < 0);
		assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
		assert_int_equal(e.reason, definitive[i]);
	}
	for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
		assert_true(cmk_err_kms(&e, transient[i], "x") < 0);
		assert_int_equal(e.cls, CMK_EC_TRANSIENT);
	}
	assert_int_equal(cmk_errf(&e, 0, "positive codes become %s", "EINVAL"), -EINVAL);
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_string_equal(e.msg, "positive codes become EINVAL");
	cmk_err_prefix(&e, "ctx %d", 7);
	assert_string_equal(e.msg, "ctx 7: positive codes become EINVAL");
	assert_string_equal(cmk_reason_name(CMK_R_DISABLED), "disabled");
	assert_string_equal(cmk_err_class_name(CMK_EC_TRANSIENT), "transient");
}

/*
 * Oracle: printable ASCII is 0x21..0x7e, and the space when asked for;
 * every other byte (controls, DEL, bytes >= 0x80, NUL) is '?'; the copy
 * stops at the room the buffer has and is always NUL-terminated.
 */
static void printable_ascii_only(void **state)
{
	static const char in[] = "a b\x01\x7f\x80\xff~\0z";
	char out[16], small[4];

	(void)state;
	cmk_printable(in, sizeof(in) - 1, out, sizeof(out), true);
	assert_string_equal(out, "a b????~?z");
	cmk_printable(in, sizeof(in) - 1, out, sizeof(out), false);
	assert_string_equal(out, "a?b????~?z");
	cmk_printable(in, sizeof(in) - 1, small, sizeof(small), true);
	assert_string_equal(small, "a b");
	small[0] = 'x';
	cmk_printable(in, sizeof(in) - 1, small, 0, true);
	assert_int_equal(small[0], 'x');	/* no room: nothing written */
	memcpy(out, "ok\tok", 6);
	cmk_printable(out, 5, out, sizeof(out), true);	/* in place */
	assert_string_equal(out, "ok?ok");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(base64_rfc4648_vectors),
		cmocka_unit_test(base64_roundtrip_binary),
		cmocka_unit_test(base64_rejects_malformed),
		cmocka_unit_test(uuid_format_parse_roundtrip),
		cmocka_unit_test(uuid_parse_rejects_malformed),
		cmocka_unit_test(time_rfc3339_known_answers),
		cmocka_unit_test(time_rejects_non_utc_and_non_dates),
		cmocka_unit_test(encctx_canonical_known_answer),
		cmocka_unit_test(encctx_rejects_bad_pairs),
		cmocka_unit_test(error_reasons_map_to_classes),
		cmocka_unit_test(printable_ascii_only),
	};

	return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}
