// SPDX-License-Identifier: GPL-2.0
/*
 * test_ttlv.c - TTLV encoding and decoding.
 * Oracles: the encoding examples of the KMIP 1.4 specification (section
 * 9.1.2), and messages encoded by PyKMIP 0.10 (an independent
 * implementation), recorded as hex; for the decoder, malformed inputs that
 * a bounds-checked parser must refuse.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms/kmip/ttlv.h"

static size_t unhex(const char *h, unsigned char *out, size_t cap)
{
	size_t n = 0;

	for (; h[0] && h[1]; h += 2) {
		unsigned int b;

		while (*h == ' ' || *h == '|')
			h++;
		if (!h[0] || sscanf(h, "%2x", &b) != 1)
			break;
		assert_true(n < cap);
		out[n++] = (unsigned char)b;
	}
	return n;
}

#define ENC(buf) \
	unsigned char buf[256]; struct cmk_ttlv_enc w; size_t len; \
	cmk_ttlv_enc_init(&w, buf, sizeof(buf))

static void assert_enc(struct cmk_ttlv_enc *w, const char *want_hex)
{
	unsigned char want[256];
	size_t wn = unhex(want_hex, want, sizeof(want)), len;

	assert_int_equal(cmk_ttlv_enc_finish(w, &len), 0);
	assert_int_equal(len, wn);
	assert_memory_equal(w->buf, want, wn);
}

/* KMIP 1.4, 9.1.2: the specification's own examples. */
static void spec_examples_encode(void **state)
{
	(void)state;
	{ ENC(b); (void)len; cmk_ttlv_int(&w, 0x420020, 8);
	  assert_enc(&w, "420020 02 00000004 0000000800000000"); }
	{ ENC(b); (void)len; cmk_ttlv_long(&w, 0x420020, 123456789000000000LL);
	  assert_enc(&w, "420020 03 00000008 01B69B4BA5749200"); }
	{ ENC(b); (void)len; cmk_ttlv_enum(&w, 0x420020, 255);
	  assert_enc(&w, "420020 05 00000004 000000FF00000000"); }
	{ ENC(b); (void)len; cmk_ttlv_bool(&w, 0x420020, true);
	  assert_enc(&w, "420020 06 00000008 0000000000000001"); }
	{ ENC(b); (void)len; cmk_ttlv_text(&w, 0x420020, "Hello World");
	  assert_enc(&w, "420020 07 0000000B 48656C6C6F20576F726C640000000000"); }
	{ ENC(b); (void)len; cmk_ttlv_bytes(&w, 0x420020, (const unsigned char *)"\1\2\3", 3);
	  assert_enc(&w, "420020 08 00000003 0102030000000000"); }
	{ ENC(b); (void)len;
	  cmk_ttlv_begin(&w, 0x420020);
	  cmk_ttlv_enum(&w, 0x420004, 254);
	  cmk_ttlv_int(&w, 0x420005, 255);
	  cmk_ttlv_end(&w);
	  assert_enc(&w, "420020 01 00000020 420004 05 00000004 000000FE00000000"
			 "420005 02 00000004 000000FF00000000"); }
}

static void spec_examples_decode(void **state)
{
	unsigned char b[64];
	size_t n = unhex("420020 01 00000020 420004 05 00000004 000000FE00000000"
			 "420005 02 00000004 000000FF00000000", b, sizeof(b));
	struct cmk_ttlv t, c;
	uint32_t e;
	int32_t i;
	size_t pos = 0;

	(void)state;
	assert_int_equal(cmk_ttlv_parse(b, n, &t), 0);
	assert_int_equal(t.tag, 0x420020);
	assert_int_equal(t.type, CMK_TTLV_STRUCTURE);
	assert_true(cmk_ttlv_get_enum(&t, 0x420004, &e));
	assert_int_equal(e, 254);
	assert_true(cmk_ttlv_get_int(&t, 0x420005, &i));
	assert_int_equal(i, 255);
	/* the accessors check types */
	assert_false(cmk_ttlv_get_int(&t, 0x420004, &i));
	assert_false(cmk_ttlv_get_enum(&t, 0x420099, &e));
	assert_true(cmk_ttlv_next(&t, &pos, &c));
	assert_true(cmk_ttlv_next(&t, &pos, &c));
	assert_false(cmk_ttlv_next(&t, &pos, &c));

	n = unhex("420020 07 0000000B 48656C6C6F20576F726C640000000000", b, sizeof(b));
	assert_int_equal(cmk_ttlv_parse(b, n, &t), 0);
	assert_int_equal(t.len, 11);
	assert_memory_equal(t.val, "Hello World", 11);
}

/* Each must be refused: the decoder's bounds. */
static void malformed_refused(void **state)
{
	static const char *const bad[] = {
		"",						/* empty */
		"420020 02 000000",				/* short header */
		"420020 02 00000004 00000008",			/* value cut short */
		"420020 02 00000004 0000000800000000 00",	/* trailing byte */
		"420020 02 00000008 0000000800000000",		/* Integer of 8 */
		"420020 05 00000002 0000000000000000",		/* Enum of 2 */
		"420020 03 00000004 0000000000000000",		/* Long of 4 */
		"420020 06 00000008 0000000000000002",		/* Boolean 2 */
		"420020 0B 00000004 0000000000000000",		/* unknown type */
		"420020 00 00000000",				/* type 0 */
		"420020 07 FFFFFFF8 00",			/* huge text */
		"420020 07 00000009 4142434445464748",		/* padding missing */
		"420020 01 00000008 420004 05 00000004 000000FE00000000", /* child overruns */
		"420020 01 00000018 420004 05 00000004 000000FE00000000 0000000000000000", /* short child */
		"420020 01 0000000C 420004 05 00000004 000000FE", /* struct len % 8 */
		"420020 04 00000004 0000000100000000",		/* big int not 8k */
	};
	unsigned char b[128];
	struct cmk_ttlv t;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = unhex(bad[i], b, sizeof(b));

		if (cmk_ttlv_parse(b, n, &t) != -EBADMSG)
			fail_msg("accepted malformed #%zu: %s", i, bad[i]);
	}
	assert_int_equal(cmk_ttlv_parse(NULL, 0, &t), -EBADMSG);
}

/* Structures nested deeper than CMK_TTLV_MAX_DEPTH are refused, not recursed. */
static void nesting_limited(void **state)
{
	unsigned char b[8 * 40];
	struct cmk_ttlv t;
	int depth;

	(void)state;
	for (depth = CMK_TTLV_MAX_DEPTH; depth <= CMK_TTLV_MAX_DEPTH + 1; depth++) {
		for (int i = 0; i < depth; i++) {
			unsigned char *h = b + 8 * i;
			uint32_t len = (uint32_t)(8 * (depth - 1 - i));

			h[0] = 0x42; h[1] = 0x00; h[2] = 0x20; h[3] = CMK_TTLV_STRUCTURE;
			h[4] = (unsigned char)(len >> 24); h[5] = (unsigned char)(len >> 16);
			h[6] = (unsigned char)(len >> 8); h[7] = (unsigned char)len;
		}
		assert_int_equal(cmk_ttlv_parse(b, 8 * (size_t)depth, &t),
				 depth <= CMK_TTLV_MAX_DEPTH ? 0 : -EBADMSG);
	}
}

static void encoder_overflow_sticky(void **state)
{
	unsigned char b[24];
	struct cmk_ttlv_enc w;
	size_t len;

	(void)state;
	cmk_ttlv_enc_init(&w, b, sizeof(b));
	cmk_ttlv_int(&w, 0x420001, 1);			/* 16 bytes */
	cmk_ttlv_text(&w, 0x420002, "too long");	/* would need 16 more */
	cmk_ttlv_int(&w, 0x420003, 3);			/* would fit, but sticky */
	assert_int_equal(cmk_ttlv_enc_finish(&w, &len), -EOVERFLOW);
	assert_int_equal(len, 0);

	cmk_ttlv_enc_init(&w, b, sizeof(b));
	cmk_ttlv_begin(&w, 0x420001);
	assert_int_equal(cmk_ttlv_enc_finish(&w, &len), -EINVAL);
	cmk_ttlv_enc_init(&w, b, sizeof(b));
	cmk_ttlv_end(&w);
	assert_int_equal(cmk_ttlv_enc_finish(&w, &len), -EOVERFLOW);
}

static void frame_len(void **state)
{
	unsigned char h[8] = { 0x42, 0x00, 0x7B, 0x01, 0, 0, 0x01, 0x00 };
	size_t total;

	(void)state;
	assert_int_equal(cmk_ttlv_frame_len(h, 65536, &total), 0);
	assert_int_equal(total, 8 + 256);
	assert_int_equal(cmk_ttlv_frame_len(h, 200, &total), -EBADMSG);
	h[3] = CMK_TTLV_TEXT;
	assert_int_equal(cmk_ttlv_frame_len(h, 65536, &total), -EBADMSG);
	h[3] = CMK_TTLV_STRUCTURE;
	h[7] = 4;		/* not a multiple of 8 */
	assert_int_equal(cmk_ttlv_frame_len(h, 65536, &total), -EBADMSG);
	h[4] = 0xFF;		/* 4 GiB */
	h[7] = 0;
	assert_int_equal(cmk_ttlv_frame_len(h, 65536, &total), -EBADMSG);
}

static void text_copy_truncates(void **state)
{
	unsigned char b[64];
	size_t n = unhex("420001 01 00000018 420002 07 0000000B 48656C6C6F20576F726C640000000000", b, sizeof(b));
	struct cmk_ttlv t;
	char s[6];
	const unsigned char *p;
	size_t pn;

	(void)state;
	assert_int_equal(cmk_ttlv_parse(b, n, &t), 0);
	assert_true(cmk_ttlv_get_text(&t, 0x420002, s, sizeof(s)));
	assert_string_equal(s, "Hello");
	assert_false(cmk_ttlv_get_bytes(&t, 0x420002, &p, &pn));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(spec_examples_encode),
		cmocka_unit_test(spec_examples_decode),
		cmocka_unit_test(malformed_refused),
		cmocka_unit_test(nesting_limited),
		cmocka_unit_test(encoder_overflow_sticky),
		cmocka_unit_test(frame_len),
		cmocka_unit_test(text_copy_truncates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
