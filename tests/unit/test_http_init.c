// SPDX-License-Identifier: GPL-2.0
/*
 * test_http_init.c - libcurl initialised by someone else first.
 *
 * curl_global_init_mem() says CURLE_OK and silently keeps libcurl's own
 * allocators when libcurl was initialised before: its buffers (bearer
 * tokens, KEKs in answers) would then be freed unwiped.  Oracle: http.h -
 * every call refuses with -EIO (local) and says why, before anything is
 * sent.  A process of its own, since libcurl's global state is the point.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>

#include <curl/curl.h>

#include "kms/http.h"

static void http_cleanse_refused_when_curl_initialised_first(void **state)
{
	struct cmk_http_request req = { "GET", "http://127.0.0.1:1/", NULL, 0, NULL, 0 };
	struct cmk_http_opts o = { .max_attempts = 1 };
	struct cmk_http_response r;
	struct cmk_err e;

	(void)state;
	/* a library in the process gets there first */
	assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
	assert_int_equal(cmk_http_do(&o, &req, NULL, NULL, &r, &e), -EIO);
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_int_equal(r.attempts, 0);
	assert_contains(e.msg, "initialised before");
	assert_int_equal(cmk_http_global_init(&e), -EIO);
	print_message("# %s\n", e.msg);
	curl_global_cleanup();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(http_cleanse_refused_when_curl_initialised_first),
	};

	return cmocka_run_group_tests_name("http_init", tests, NULL, NULL);
}
