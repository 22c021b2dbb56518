// SPDX-License-Identifier: GPL-2.0
/*
 * test_bootstate.c - a throttled boot's backoff in /run/cmk across an
 * agent restart (daemon/bootstate.h).
 *
 * Oracles: what is saved is what is loaded; no file is no backoff (0, all
 * zero); a malformed or foreign-writable file is refused with a message
 * and no backoff; saving "no throttles" removes the file; the file is
 * 0600.
 */
#include "testutil.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/bootstate.h"

static void throttle_boot_state_round_trip(void **state)
{
	struct cmk_boot_backoff b = { .throttles = 7, .not_before_ms = 123456789012ULL,
				      .saved_ms = 123456700000ULL }, r;
	const char *p = tu_path(CMK_BOOTSTATE_FILE);
	struct cmk_err e;
	struct stat st;

	(void)state;
	assert_int_equal(cmk_bootstate_load(p, &r, &e), 0);
	assert_int_equal(r.throttles, 0);
	assert_int_equal(cmk_bootstate_save(p, &b, &e), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(cmk_bootstate_load(p, &r, &e), 0);
	assert_int_equal(r.throttles, 7);
	assert_true(r.not_before_ms == b.not_before_ms);
	assert_true(r.saved_ms == b.saved_ms);
	b.throttles = 0;
	assert_int_equal(cmk_bootstate_save(p, &b, &e), 0);
	assert_int_equal(stat(p, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void throttle_boot_state_refuses_bad_files(void **state)
{
	static const char *bad[] = {
		"", "[]", "{\"throttles\": 3}",
		"{\"throttles\": -1, \"not_before_boottime_ms\": 1, \"saved_boottime_ms\": 1}",
		"{\"throttles\": \"3\", \"not_before_boottime_ms\": 1, \"saved_boottime_ms\": 1}",
	};
	static const char good[] =
		"{\"throttles\": 3, \"not_before_boottime_ms\": 1, \"saved_boottime_ms\": 1}";
	const char *p = tu_path(CMK_BOOTSTATE_FILE);
	struct cmk_boot_backoff r;
	struct cmk_err e;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tu_write_file(p, bad[i], strlen(bad[i]), 0600);
		assert_int_equal(cmk_bootstate_load(p, &r, &e), -EINVAL);
		assert_int_equal(r.throttles, 0);
		assert_contains(e.msg, "boot backoff");
	}
	/* Writable by others: anyone could hold the agent's boot back. */
	tu_write_file(p, good, strlen(good), 0600);
	assert_int_equal(cmk_bootstate_load(p, &r, &e), 0);
	assert_int_equal(r.throttles, 3);
	assert_int_equal(chmod(p, 0666), 0);
	assert_int_equal(cmk_bootstate_load(p, &r, &e), -EPERM);
	assert_int_equal(r.throttles, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(throttle_boot_state_round_trip,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(throttle_boot_state_refuses_bad_files,
						tu_setup_tmpdir, tu_teardown_tmpdir),
	};

	return cmocka_run_group_tests_name("bootstate", tests, NULL, NULL);
}
