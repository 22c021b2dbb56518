// SPDX-License-Identifier: GPL-2.0
/*
 * test_json_secret.c - request bodies that carry a secret, wiped JSON
 * parsing, and provider setting values (generic and HTTP).  Oracles: hand-written JSON text
 * and json-c parsing the body back.
 */
#include "testutil.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <json-c/json.h>

#include "kms/http.h"
#include "core/json_secret.h"
#include "core/secret.h"
#include "kms/provider_settings.h"

static void secret_body_puts_value_first(void **state)
{
	struct cmk_secret *v = tu_secret_of("c2VjcmV0S0VL"), *body = NULL;
	struct json_object *rest = json_object_new_object(), *back;
	struct cmk_err e;
	size_t len = 0;

	(void)state;
	json_object_object_add(rest, "KeyId", json_object_new_string("key-1"));
	json_object_object_add(rest, "N", json_object_new_int(7));
	assert_int_equal(cmk_json_secret_body("Plaintext", v, cmk_secret_len(v), rest,
					      &body, &len, "test", &e), 0);
	assert_int_equal(len, strlen((const char *)cmk_secret_cdata(body)));
	assert_string_equal((const char *)cmk_secret_cdata(body),
			    "{\"Plaintext\":\"c2VjcmV0S0VL\",\"KeyId\":\"key-1\",\"N\":7}");
	/* The caller's object is untouched and still its own. */
	assert_int_equal(json_object_object_length(rest), 2);
	back = json_tokener_parse((const char *)cmk_secret_cdata(body));
	assert_non_null(back);
	assert_int_equal(json_object_object_length(back), 3);
	json_object_put(back);
	json_object_put(rest);
	cmk_secret_free(&body);
	cmk_secret_free(&v);
}

static void secret_body_without_rest(void **state)
{
	struct cmk_secret *v = tu_secret_of("QUJD"), *body = NULL;
	struct cmk_err e;
	size_t len = 0;

	(void)state;
	assert_int_equal(cmk_json_secret_body("value", v, 4, NULL, &body, &len,
					      "test", &e), 0);
	assert_string_equal((const char *)cmk_secret_cdata(body), "{\"value\":\"QUJD\"}");
	cmk_secret_free(&body);
	cmk_secret_free(&v);
}

/* A name json-c must escape would shift the value: refused, not mangled. */
static void secret_body_refuses_unexpected_layout(void **state)
{
	struct cmk_secret *v = tu_secret_of("QUJD"), *body = NULL;
	struct cmk_err e;
	size_t len = 0;

	(void)state;
	assert_int_equal(cmk_json_secret_body("a\"b", v, 4, NULL, &body, &len,
					      "aws Encrypt", &e), -EPROTO);
	assert_null(body);
	assert_contains(e.msg, "aws Encrypt: unexpected JSON layout");
	cmk_secret_free(&v);
}

static void json_helpers_read_and_add(void **state)
{
	struct json_object *o = json_object_new_object();
	const char *v;
	size_t len = 0;

	(void)state;
	assert_int_equal(cmk_json_add_str(o, "name", "k1"), 0);
	assert_int_equal(cmk_json_add_b64(o, "blob", (const unsigned char *)"foo", 3), 0);
	json_object_object_add(o, "n", json_object_new_int(3));
	v = cmk_json_str(o, "blob", &len);
	assert_non_null(v);
	assert_string_equal(v, "Zm9v");
	assert_int_equal(len, 4);
	assert_string_equal(cmk_json_str(o, "name", NULL), "k1");
	assert_null(cmk_json_str(o, "n", NULL));	/* not a string */
	assert_null(cmk_json_str(o, "missing", NULL));
	json_object_put(o);
}

static void parse_wiped_refuses_trailing_data(void **state)
{
	static const char ok[] = "{\"Plaintext\":\"QUJD\"}";
	static const char bad[] = "{\"a\":1} {\"b\":2}";
	struct json_object *o;

	(void)state;
	o = cmk_json_parse_wiped(ok, strlen(ok));
	assert_non_null(o);
	cmk_json_put_wiped(o);
	assert_null(cmk_json_parse_wiped(bad, strlen(bad)));
	assert_null(cmk_json_parse_wiped("{", 1));
	cmk_json_put_wiped(NULL);
}

static void settings_parse_and_name_the_key(void **state)
{
	struct cmk_err e;
	bool b = false;
	long x = 0;

	(void)state;
	assert_int_equal(cmk_setting_long("gcp", "timeout_ms", "2500", 1, 60000, &x, &e), 0);
	assert_int_equal(x, 2500);
	assert_int_equal(cmk_setting_long("gcp", "timeout_ms", "0", 1, 60000, &x, &e), -ERANGE);
	assert_contains(e.msg, "gcp: timeout_ms = \"0\" is out of range 1..60000");
	assert_int_equal(cmk_setting_long("kmip", "port", "12x", 1, 65535, &x, &e), -ERANGE);
	assert_int_equal(cmk_setting_long("kmip", "port", "", 1, 65535, &x, &e), -ERANGE);
	assert_int_equal(cmk_setting_long("kmip", "port", "99999999999999999999", 1,
					  65535, &x, &e), -ERANGE);
	assert_int_equal(x, 2500);	/* untouched on error */
	assert_int_equal(cmk_setting_bool("aws", "fips", "yes", &b, &e), 0);
	assert_true(b);
	assert_int_equal(cmk_setting_bool("aws", "fips", "0", &b, &e), 0);
	assert_false(b);
	assert_int_equal(cmk_setting_bool("aws", "fips", "maybe", &b, &e), -EINVAL);
	assert_contains(e.msg, "aws: fips = \"maybe\" is not yes or no");
}

static void http_settings_apply_and_refuse(void **state)
{
	struct cmk_http_opts o = { 0 };
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_http_setting("azure", "connect_timeout_ms", "1500", &o, &e), 0);
	assert_int_equal(cmk_http_setting("azure", "timeout_ms", "20000", &o, &e), 0);
	assert_int_equal(cmk_http_setting("azure", "max_attempts", "5", &o, &e), 0);
	assert_int_equal(o.connect_timeout_ms, 1500);
	assert_int_equal(o.timeout_ms, 20000);
	assert_int_equal(o.max_attempts, 5);
	assert_int_equal(cmk_http_setting("azure", "max_attempts", "11", &o, &e), -ERANGE);
	assert_contains(e.msg, "azure: max_attempts = \"11\" is out of range 1..10");
	assert_int_equal(o.max_attempts, 5);
	assert_int_equal(cmk_http_setting("azure", "timeout_ms", "99", &o, &e), -ERANGE);
	assert_int_equal(cmk_http_setting("azure", "vault", "x", &o, &e), -EINVAL);
}

static void env_nonempty_treats_empty_as_unset(void **state)
{
	(void)state;
	assert_int_equal(setenv("CMK_TEST_ENV", "", 1), 0);
	assert_null(cmk_env_nonempty("CMK_TEST_ENV"));
	assert_int_equal(setenv("CMK_TEST_ENV", "v", 1), 0);
	assert_string_equal(cmk_env_nonempty("CMK_TEST_ENV"), "v");
	unsetenv("CMK_TEST_ENV");
	assert_null(cmk_env_nonempty("CMK_TEST_ENV"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(secret_body_puts_value_first),
		cmocka_unit_test(secret_body_without_rest),
		cmocka_unit_test(secret_body_refuses_unexpected_layout),
		cmocka_unit_test(json_helpers_read_and_add),
		cmocka_unit_test(parse_wiped_refuses_trailing_data),
		cmocka_unit_test(settings_parse_and_name_the_key),
		cmocka_unit_test(http_settings_apply_and_refuse),
		cmocka_unit_test(env_nonempty_treats_empty_as_unset),
	};

	return cmocka_run_group_tests_name("json_secret", tests, NULL, NULL);
}
