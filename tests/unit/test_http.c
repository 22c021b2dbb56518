// SPDX-License-Identifier: GPL-2.0
/*
 * test_http.c - the HTTP wrapper's pure parts: backoff bounds (capped,
 * exponential, jittered, never zero), response header lookup, bad header
 * lines refused before anything is sent.  Oracle: the documented policy
 * in http.h.  Retries against a live peer are in tests/kms.
 */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static void http_backoff_is_capped_exponential_with_jitter(void **state)
{
	struct cmk_http_opts o = { .backoff_base_ms = 100, .backoff_cap_ms = 1000 };
	long seen_lo = 1L << 30, seen_hi = 0;

	(void)state;
	for (int attempt = 1; attempt <= 12; attempt++) {
		long ceil = 100L << (attempt - 1 > 10 ? 10 : attempt - 1);

		if (ceil > 1000)
			ceil = 1000;
		for (int i = 0; i < 200; i++) {
			long d = cmk_http_backoff_ms(&o, attempt);

			assert_true(d >= ceil / 2 && d <= ceil);
			if (attempt == 12) {
				seen_lo = d < seen_lo ? d : seen_lo;
				seen_hi = d > seen_hi ? d : seen_hi;
			}
		}
	}
	/* jitter: 200 draws in [500, 1000] are not all the same */
	assert_true(seen_hi > seen_lo);
}

static void http_response_header_lookup(void **state)
{
	char hdrs[] = "HTTP/1.1 400 Bad Request\r\n"
		      "Content-Type: application/x-amz-json-1.1\r\n"
		      "x-amzn-RequestId:  6d1a-44  \r\n"
		      "X-Amzn-ErrorType: ThrottlingException:http://x/\r\n\r\n";
	struct cmk_http_response r = { .hdrs = hdrs, .hdrs_len = sizeof(hdrs) - 1 };
	char b[64], tiny[4];

	(void)state;
	assert_string_equal(cmk_http_header(&r, "X-AMZN-REQUESTID", b, sizeof(b)), "6d1a-44");
	assert_string_equal(cmk_http_header(&r, "x-amzn-errortype", b, sizeof(b)),
			    "ThrottlingException:http://x/");
	assert_null(cmk_http_header(&r, "x-amzn", b, sizeof(b)));
	assert_null(cmk_http_header(&r, "Missing", b, sizeof(b)));
	assert_null(cmk_http_header(&r, "Content-Type", tiny, sizeof(tiny)));
}

static void http_header_injection_refused(void **state)
{
	struct cmk_nv h[] = { { "X-A", "ok\r\nX-Injected: 1" } };
	struct cmk_http_request req = { "GET", "http://127.0.0.1:1/", h, 1, NULL, 0 };
	struct cmk_http_opts o = { 0 };
	struct cmk_http_response r;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_http_do(&o, &req, NULL, NULL, &r, &e), -EINVAL);
	assert_contains(e.msg, "bad name or value");
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_null(r.body);
}

static void http_bad_url_is_local_not_transient(void **state)
{
	struct cmk_http_request req = { "GET", "gopher://127.0.0.1/", NULL, 0, NULL, 0 };
	struct cmk_http_opts o = { 0 };
	struct cmk_http_response r;
	struct cmk_err e;

	(void)state;
	assert_true(cmk_http_do(&o, &req, NULL, NULL, &r, &e) < 0);
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_int_equal(r.attempts, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(http_backoff_is_capped_exponential_with_jitter),
		cmocka_unit_test(http_response_header_lookup),
		cmocka_unit_test(http_header_injection_refused),
		cmocka_unit_test(http_bad_url_is_local_not_transient),
	};

	return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
