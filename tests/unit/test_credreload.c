// SPDX-License-Identifier: GPL-2.0
/*
 * test_credreload.c - how long credentials that do not read again keep a
 * rejection from counting (credreload.c).  Oracle: the rule in
 * credreload.h - the rejection counts once the run of failed reloads has
 * lasted CMK_CRED_RELOAD_BOUND_MS and counts CMK_CRED_RELOAD_TRIES (both);
 * a reload that ran out of the check's time (deadline or cancel) is not
 * counted and fails as a timeout; a transient reload keeps its class.
 */
#include "testutil.h"

#include <errno.h>
#include <string.h>

#include "kms/credreload.h"
#include "core/deadline.h"

static void credential_reload_bound_needs_time_and_count(void **state)
{
	struct cmk_cred_reload r = { 0 };
	struct cmk_err re;

	(void)state;
	cmk_errf(&re, -ENOENT, "secret file gone");
	/* many fast checks: the count is reached, the time is not */
	for (int i = 0; i < 10; i++)
		assert_false(cmk_cred_reload_failed(&r, &re));
	cmk_cred_reload_ok(&r);
	/* a long sleep between two checks: the time is reached, the count is not */
	assert_false(cmk_cred_reload_failed(&r, &re));
	tu_clock_skew_ms += 10 * CMK_CRED_RELOAD_BOUND_MS;
	for (int i = 2; i < CMK_CRED_RELOAD_TRIES; i++)
		assert_false(cmk_cred_reload_failed(&r, &re));
	assert_true(cmk_cred_reload_failed(&r, &re));
	tu_clock_skew_ms = 0;
}

static void credential_reload_cancelled_is_timeout_not_counted(void **state)
{
	struct cmk_cred_reload r = { 0 };
	atomic_bool cancel = true;
	struct cmk_err re, e;

	(void)state;
	cmk_err_kms(&re, CMK_R_TIMEOUT, "GET imds: no answer before the check's deadline");
	cmk_deadline_watch(&cancel);
	for (int i = 0; i < 2 * CMK_CRED_RELOAD_TRIES; i++) {
		tu_clock_skew_ms += CMK_CRED_RELOAD_BOUND_MS;
		assert_false(cmk_cred_reload_failed(&r, &re));
	}
	assert_int_equal(r.fails, 0);
	assert_int_equal(cmk_cred_reload_defer(&r, "KMS rejected the credentials", &re,
					       -ETIMEDOUT, &e), -ETIMEDOUT);
	assert_int_equal(e.cls, CMK_EC_TRANSIENT);
	assert_int_equal(e.reason, CMK_R_TIMEOUT);
	assert_contains(e.msg, "no longer wanted");
	cmk_deadline_watch(NULL);
	/* not cancelled: a transient failure keeps its class, and counts */
	cmk_err_kms(&re, CMK_R_UNAVAILABLE, "IMDS GET answered HTTP 503");
	assert_false(cmk_cred_reload_failed(&r, &re));
	assert_int_equal(r.fails, 1);
	cmk_cred_reload_defer(&r, "KMS rejected the credentials", &re, -EAGAIN, &e);
	assert_int_equal(e.reason, CMK_R_UNAVAILABLE);
	assert_contains(e.msg, "not taken as a revocation");
	tu_clock_skew_ms = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(credential_reload_bound_needs_time_and_count),
		cmocka_unit_test(credential_reload_cancelled_is_timeout_not_counted),
	};

	return cmocka_run_group_tests_name("credreload", tests, NULL, NULL);
}
