// SPDX-License-Identifier: GPL-2.0
/*
 * test_p11uri.c - RFC 7512 pkcs11: URI parsing.
 * Oracles: the RFC's own examples (section 3.3), URIs as p11-kit and
 * pkcs11-tool print them, and the refusals documented in p11uri.h.
 */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kms/pkcs11/p11uri.h"

static void parse_ok(const char *s, struct cmk_p11uri *u)
{
	struct cmk_err e = { 0 };
	int ret = cmk_p11uri_parse(s, u, &e);

	if (ret)
		fail_msg("%s: %s", s, e.msg);
}

/* Refused, and the message names @needle. */
static void parse_bad(const char *s, const char *needle)
{
	struct cmk_p11uri u;
	struct cmk_err e = { 0 };

	assert_int_equal(cmk_p11uri_parse(s, &u, &e), -EINVAL);
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	if (!strstr(e.msg, needle))
		fail_msg("%s: message \"%s\" lacks \"%s\"", s, e.msg, needle);
	/* Nothing is left allocated on failure. */
	assert_null(u.token);
	assert_null(u.object);
	assert_null(u.id);
}

static void p11uri_full_key_reference(void **state)
{
	struct cmk_p11uri u;

	(void)state;
	parse_ok("pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;"
		 "serial=5f4e1c2a9b3d7e60;token=cmk;id=%01%ff;object=kek;"
		 "type=secret-key?module-path=/usr/lib/softhsm/libsofthsm2.so"
		 "&pin-source=file:/etc/cmk/pin", &u);
	assert_string_equal(u.model, "SoftHSM v2");
	assert_string_equal(u.manufacturer, "SoftHSM project");
	assert_string_equal(u.serial, "5f4e1c2a9b3d7e60");
	assert_string_equal(u.token, "cmk");
	assert_string_equal(u.object, "kek");
	assert_true(u.has_id);
	assert_int_equal(u.id_len, 2);
	assert_memory_equal(u.id, "\x01\xff", 2);
	assert_string_equal(u.module_path, "/usr/lib/softhsm/libsofthsm2.so");
	assert_string_equal(u.pin_file, "/etc/cmk/pin");
	assert_false(u.has_slot_id);
	cmk_p11uri_free(&u);
	assert_null(u.token);
}

/* RFC 7512 section 3.3 examples (type adapted: only secret keys wrap). */
static void p11uri_rfc7512_examples(void **state)
{
	struct cmk_p11uri u;

	(void)state;
	parse_ok("pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;"
		 "manufacturer=Snake%20Oil,%20Inc.;model=1.0;"
		 "object=my-certificate;type=secret-key;"
		 "id=%69%95%3E%5C%F4%BD%EC%91", &u);
	assert_string_equal(u.token, "The Software PKCS#11 Softtoken");
	assert_string_equal(u.manufacturer, "Snake Oil, Inc.");
	assert_int_equal(u.id_len, 8);
	assert_memory_equal(u.id, "\x69\x95\x3e\x5c\xf4\xbd\xec\x91", 8);
	cmk_p11uri_free(&u);

	parse_ok("pkcs11:token=Software%20PKCS%2311%20softtoken;"
		 "manufacturer=Snake%20Oil,%20Inc.;id=%01"
		 "?pin-source=file:/etc/token_pin", &u);
	assert_string_equal(u.pin_file, "/etc/token_pin");
	cmk_p11uri_free(&u);

	parse_ok("pkcs11:slot-description=Sun%20Metaslot;slot-id=18446744073709551615;"
		 "library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token;"
		 "library-version=1.23;object=k", &u);
	assert_string_equal(u.slot_description, "Sun Metaslot");
	assert_true(u.has_slot_id);
	assert_true(u.slot_id == (unsigned long)-1);
	assert_string_equal(u.lib_manufacturer, "Snake Oil, Inc.");
	assert_string_equal(u.lib_description, "Soft Token");
	assert_true(u.has_lib_version);
	assert_int_equal(u.lib_ver_major, 1);
	assert_int_equal(u.lib_ver_minor, 23);
	cmk_p11uri_free(&u);

	parse_ok("PKCS11:object=k;library-version=7", &u);
	assert_int_equal(u.lib_ver_major, 7);
	assert_int_equal(u.lib_ver_minor, -1);
	cmk_p11uri_free(&u);
}

static void p11uri_pin_source_forms(void **state)
{
	struct cmk_p11uri u;

	(void)state;
	parse_ok("pkcs11:object=k?pin-source=file:///run/pin%20file", &u);
	assert_string_equal(u.pin_file, "/run/pin file");
	cmk_p11uri_free(&u);
	parse_ok("pkcs11:object=k?pin-source=/run/pin", &u);
	assert_string_equal(u.pin_file, "/run/pin");
	cmk_p11uri_free(&u);
	parse_bad("pkcs11:object=k?pin-source=file://host/run/pin", "remote host");
	parse_bad("pkcs11:object=k?pin-source=pin.txt", "absolute file path");
	parse_bad("pkcs11:object=k?pin-source=https://x/pin", "absolute file path");
}

static void p11uri_pin_value_refused(void **state)
{
	(void)state;
	parse_bad("pkcs11:object=k?pin-value=1234", "pin-value is refused");
	/* ... and the PIN itself is not echoed into the message. */
	{
		struct cmk_p11uri u;
		struct cmk_err e = { 0 };

		assert_int_not_equal(cmk_p11uri_parse("pkcs11:object=k?pin-value=s3cr3t-PIN",
						      &u, &e), 0);
		assert_null(strstr(e.msg, "s3cr3t"));
	}
}

static void p11uri_refusals(void **state)
{
	(void)state;
	parse_bad("object=k", "must be a pkcs11: URI");
	parse_bad("", "must be a pkcs11: URI");
	parse_bad("pkcs11:token=cmk", "names no key");
	parse_bad("pkcs11:", "names no key");
	parse_bad("pkcs11:object=a;object=b", "given twice");
	parse_bad("pkcs11:id=%01;id=%02", "given twice");
	parse_bad("pkcs11:object=k;slot-id=1;slot-id=2", "given twice");
	parse_bad("pkcs11:object=k;color=red", "\"color\" is not known");
	parse_bad("pkcs11:object=k;x-vendor=1", "is not known");
	parse_bad("pkcs11:object=k?module-name=softhsm2", "module-path");
	parse_bad("pkcs11:object=k?module-path=libsofthsm2.so", "absolute path");
	parse_bad("pkcs11:object=k?foo=bar", "query attribute \"foo\"");
	/* a query attribute in the path and the other way round */
	parse_bad("pkcs11:object=k;module-path=/m.so", "path attribute \"module-path\"");
	parse_bad("pkcs11:object=k?token=x", "query attribute \"token\"");
	parse_bad("pkcs11:object=my-pubkey;type=public", "type=public");
	parse_bad("pkcs11:object=k;type=private", "type=private");
	parse_bad("pkcs11:object=k;type=cert", "secret-key");
	parse_bad("pkcs11:object=k%4", "percent escape");
	parse_bad("pkcs11:object=k%", "percent escape");
	parse_bad("pkcs11:object=k%zz", "percent escape");
	parse_bad("pkcs11:object=a%00b", "NUL byte");
	parse_bad("pkcs11:object=a b", "percent-encoded");
	parse_bad("pkcs11:object=a\nb", "percent-encoded");
	parse_bad("pkcs11:object=", "empty value");
	parse_bad("pkcs11:object", "not attribute=value");
	parse_bad("pkcs11:=k", "without a name");
	parse_bad("pkcs11:object=k;slot-id=-1", "decimal number");
	parse_bad("pkcs11:object=k;slot-id=99999999999999999999", "decimal number");
	parse_bad("pkcs11:object=k;library-version=1.x", "M or M.N");
	parse_bad("pkcs11:object=k;library-version=256", "M or M.N");
}

static void p11uri_id_may_hold_nul(void **state)
{
	struct cmk_p11uri u;

	(void)state;
	parse_ok("pkcs11:id=%00%01%00", &u);
	assert_int_equal(u.id_len, 3);
	assert_memory_equal(u.id, "\0\1\0", 3);
	assert_null(u.object);
	cmk_p11uri_free(&u);
}

static void p11uri_too_long_refused(void **state)
{
	char *s = malloc(CMK_P11URI_MAX + 32);

	(void)state;
	strcpy(s, "pkcs11:object=");
	memset(s + 14, 'a', CMK_P11URI_MAX);
	s[14 + CMK_P11URI_MAX] = '\0';
	parse_bad(s, "longer than");
	free(s);
}

static void p11uri_empty_separators_ignored(void **state)
{
	struct cmk_p11uri u;

	(void)state;
	parse_ok("pkcs11:;token=t;;object=k;?&module-path=/m.so&", &u);
	assert_string_equal(u.token, "t");
	assert_string_equal(u.module_path, "/m.so");
	cmk_p11uri_free(&u);
}

static void p11uri_pct_decode(void **state)
{
	unsigned char *o;
	size_t n;

	(void)state;
	assert_int_equal(cmk_p11uri_pct_decode("a%41%2f%2F", 10, &o, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal((char *)o, "aA//");
	free(o);
	assert_int_equal(cmk_p11uri_pct_decode("%4", 2, &o, &n), -EINVAL);
	assert_int_equal(cmk_p11uri_pct_decode("%g0", 3, &o, &n), -EINVAL);
	/* Only @n bytes are read: the escape is cut by the length. */
	assert_int_equal(cmk_p11uri_pct_decode("%41", 2, &o, &n), -EINVAL);
}

static void p11uri_field_compare(void **state)
{
	const unsigned char f[8] = { 'c', 'm', 'k', ' ', ' ', ' ', ' ', ' ' };
	const unsigned char full[4] = { 'a', 'b', 'c', 'd' };
	char s[16];

	(void)state;
	assert_true(cmk_p11uri_field_eq("cmk", f, sizeof(f)));
	assert_false(cmk_p11uri_field_eq("cm", f, sizeof(f)));
	assert_false(cmk_p11uri_field_eq("cmk2", f, sizeof(f)));
	assert_false(cmk_p11uri_field_eq("cmk      ", f, sizeof(f)));
	assert_true(cmk_p11uri_field_eq("abcd", full, 4));
	assert_false(cmk_p11uri_field_eq("abcde", full, 4));
	cmk_p11uri_field_str(f, sizeof(f), s, sizeof(s));
	assert_string_equal(s, "cmk");
	cmk_p11uri_field_str((const unsigned char *)"a\x01" "b  ", 5, s, sizeof(s));
	assert_string_equal(s, "a?b");
	cmk_p11uri_field_str(full, 4, s, 3);
	assert_string_equal(s, "ab");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(p11uri_full_key_reference),
		cmocka_unit_test(p11uri_rfc7512_examples),
		cmocka_unit_test(p11uri_pin_source_forms),
		cmocka_unit_test(p11uri_pin_value_refused),
		cmocka_unit_test(p11uri_refusals),
		cmocka_unit_test(p11uri_id_may_hold_nul),
		cmocka_unit_test(p11uri_too_long_refused),
		cmocka_unit_test(p11uri_empty_separators_ignored),
		cmocka_unit_test(p11uri_pct_decode),
		cmocka_unit_test(p11uri_field_compare),
	};

	return cmocka_run_group_tests_name("p11uri", tests, NULL, NULL);
}
