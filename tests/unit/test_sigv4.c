// SPDX-License-Identifier: GPL-2.0
/*
 * test_sigv4.c - AWS SigV4 signing.
 * Oracle: botocore's SigV4Auth, run at test time by sigv4_oracle.py on
 * randomly generated (seeded) requests: odd white space in header values,
 * mixed-case and repeated header names, unsigned headers, empty, unicode,
 * binary and long bodies, query strings with reserved and non-ASCII
 * characters, session tokens, dates from 2000 to 2099, many regions and
 * services.  No expected value is committed.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/codec.h"
#include "core/secret.h"
#include "kms/aws/sigv4.h"

#define ORACLE_CASES 400

static const char *oracle_path(void)
{
	const char *p = getenv("CMK_SIGV4_ORACLE");

	return p ? p : "../tests/unit/sigv4_oracle.py";
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	return json_object_get_string(v);
}

static size_t nv_of(struct json_object *o, const char *k, struct cmk_nv **out)
{
	struct json_object *a;
	size_t n;

	assert_true(json_object_object_get_ex(o, k, &a));
	n = json_object_array_length(a);
	*out = calloc(n + 1, sizeof(**out));
	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(a, i);

		(*out)[i].name = json_object_get_string(json_object_array_get_idx(p, 0));
		(*out)[i].value = json_object_get_string(json_object_array_get_idx(p, 1));
	}
	return n;
}

/* Sign one oracle case; return 1 if authorization and canonical match. */
static int check_case(struct json_object *c, int idx)
{
	struct cmk_secret *sk, *tok = NULL;
	struct cmk_sigv4_request r = { 0 };
	struct cmk_sigv4_key k = { 0 };
	struct cmk_sigv4_out out;
	struct cmk_nv *q, *h;
	struct cmk_err e;
	unsigned char *body = NULL;
	size_t body_len = 0;
	int ok;

	if (*jstr(c, "body"))
		assert_int_equal(cmk_b64_decode(jstr(c, "body"), &body, &body_len, &e), 0);
	r.method = jstr(c, "method");
	r.path = jstr(c, "path");
	r.n_query = nv_of(c, "query", &q);
	r.query = q;
	r.n_headers = nv_of(c, "headers", &h);
	r.headers = h;
	r.body = body;
	r.body_len = body_len;
	sk = tu_secret_of(jstr(c, "secret"));
	if (jstr(c, "token"))
		tok = tu_secret_of(jstr(c, "token"));
	k.access_key_id = jstr(c, "akid");
	k.secret_key = sk;
	k.session_token = tok;
	if (cmk_sigv4_sign(&r, &k, jstr(c, "region"), jstr(c, "service"),
			   (time_t)json_object_get_int64(json_object_object_get(c, "time")),
			   1, &out, &e)) {
		print_message("# case %d: sign failed: %s\n", idx, e.msg);
		ok = 0;
	} else {
		ok = strcmp(out.authorization, jstr(c, "expect_authorization")) == 0 &&
		     strcmp(out.canonical_request, jstr(c, "expect_canonical")) == 0 &&
		     strcmp(out.amz_date, jstr(c, "expect_date")) == 0;
		if (!ok)
			print_message("# case %d differs\n# ours:\n%s\n%s\n# botocore:\n%s\n%s\n",
				      idx, out.canonical_request, out.authorization,
				      jstr(c, "expect_canonical"),
				      jstr(c, "expect_authorization"));
		cmk_sigv4_out_free(&out);
	}
	cmk_secret_free(&sk);
	cmk_secret_free(&tok);
	free(q);
	free(h);
	free(body);
	return ok;
}

static void sigv4_matches_botocore_on_generated_requests(void **state)
{
	char cmd[512], *line = NULL;
	size_t cap = 0;
	int n = 0, good = 0;
	FILE *f;

	(void)state;
	snprintf(cmd, sizeof(cmd), "python3 %s 20251127 %d", oracle_path(),
		 ORACLE_CASES);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (getline(&line, &cap, f) > 0) {
		struct json_object *c = json_tokener_parse(line);

		assert_non_null(c);
		good += check_case(c, n);
		n++;
		json_object_put(c);
	}
	free(line);
	assert_int_equal(pclose(f), 0);
	print_message("# %d of %d botocore cases match\n", good, n);
	assert_int_equal(n, ORACLE_CASES);
	assert_int_equal(good, n);
}

static int sign_simple(const char *secret, const char *token, const char *hval,
		       char **auth)
{
	struct cmk_secret *sk = tu_secret_of(secret), *tok = token ? tu_secret_of(token) : NULL;
	struct cmk_nv h[] = { { "Host", "kms.us-east-1.amazonaws.com" },
			      { "X-Thing", hval } };
	struct cmk_sigv4_request r = { .method = "POST", .path = "/",
				       .headers = h, .n_headers = 2 };
	struct cmk_sigv4_key k = { "AKIDEXAMPLE", sk, tok };
	struct cmk_sigv4_out out;
	struct cmk_err e;
	int ret;

	ret = cmk_sigv4_sign(&r, &k, "us-east-1", "kms", 1700000000, 0, &out, &e);
	if (!ret)
		*auth = strdup(out.authorization);
	cmk_sigv4_out_free(&out);
	cmk_secret_free(&sk);
	cmk_secret_free(&tok);
	return ret;
}

/* Invariants: every signed input changes the signature; trimming does not. */
static void sigv4_signature_depends_on_secret_token_and_values(void **state)
{
	char *a, *b, *c, *d, *f;

	(void)state;
	assert_int_equal(sign_simple("secret1", NULL, "v  w", &a), 0);
	assert_int_equal(sign_simple("secret2", NULL, "v  w", &b), 0);
	assert_int_equal(sign_simple("secret1", "tok", "v  w", &c), 0);
	assert_int_equal(sign_simple("secret1", NULL, "v w", &d), 0);
	assert_int_equal(sign_simple("secret1", NULL, "vw", &f), 0);
	assert_string_not_equal(a, b);
	assert_string_not_equal(a, c);
	assert_string_equal(a, d);
	assert_string_not_equal(a, f);
	assert_contains(c, "x-amz-security-token");
	assert_contains(a, "Credential=AKIDEXAMPLE/20231114/us-east-1/kms/aws4_request");
	free(a); free(b); free(c); free(d); free(f);
}

static void sigv4_rejects_bad_input(void **state)
{
	struct cmk_secret *sk = tu_secret_of("s");
	struct cmk_nv nohost[] = { { "X-A", "1" } };
	struct cmk_nv badname[] = { { "Host", "h" }, { "Bad Name", "1" } };
	struct cmk_sigv4_request r = { .method = "POST", .path = "/",
				       .headers = nohost, .n_headers = 1 };
	struct cmk_sigv4_key k = { "AKID", sk, NULL };
	struct cmk_sigv4_out out;
	struct cmk_err e;

	(void)state;
	assert_true(cmk_sigv4_sign(&r, &k, "us-east-1", "kms", 0, 0, &out, &e) < 0);
	assert_contains(e.msg, "host");
	r.headers = badname;
	r.n_headers = 2;
	assert_true(cmk_sigv4_sign(&r, &k, "us-east-1", "kms", 0, 0, &out, &e) < 0);
	assert_contains(e.msg, "bad header name");
	r.n_headers = 1;
	assert_true(cmk_sigv4_sign(&r, &k, "US-EAST-1", "kms", 0, 0, &out, &e) < 0);
	k.access_key_id = "AK/ID";
	assert_true(cmk_sigv4_sign(&r, &k, "us-east-1", "kms", 0, 0, &out, &e) < 0);
	assert_null(out.authorization);
	cmk_secret_free(&sk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sigv4_matches_botocore_on_generated_requests),
		cmocka_unit_test(sigv4_signature_depends_on_secret_token_and_values),
		cmocka_unit_test(sigv4_rejects_bad_input),
	};

	return cmocka_run_group_tests_name("sigv4", tests, NULL, NULL);
}
