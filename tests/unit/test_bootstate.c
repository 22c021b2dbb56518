// SPDX-License-Identifier: GPL-2.0
/*
 * test_bootstate.c - a throttled boot's backoff in /run/cmk across an
 * agent restart (daemon/bootstate.h).
 *
 * Oracles: what is saved is what is loaded; no file is no backoff (0, all
 * zero); a malformed or foreign-writable file is refused with a message
 * and no backoff; saving "no throttles" removes the file; the file is
 * 0600; a file of another boot (kernel_boot_id) is no backoff.
 */
#include "testutil.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/bootstate.h"

static const uint8_t this_boot[CMK_UUID_LEN] = { 0x4f, 0x6c, 0x2b, 0x1e, 0x0b, 0x8e,
						  0x4a, 0x43, 0x9c, 0x5e, 0x3b, 0x0e,
						  0x1d, 0x7a, 0x9f, 0x21 };
#define THIS_BOOT "\"kernel_boot_id\": \"4f6c2b1e-0b8e-4a43-9c5e-3b0e1d7a9f21\", "

static void throttle_boot_state_round_trip(void **state)
{
	struct cmk_boot_backoff b = { .throttles = 7, .not_before_ms = 123456789012ULL,
				      .saved_ms = 123456700000ULL }, r;
	const char *p = tu_path(CMK_BOOTSTATE_FILE);
	struct cmk_err e;
	struct stat st;

	(void)state;
	assert_int_equal(cmk_bootstate_load(p, this_boot, &r, &e), 0);
	assert_int_equal(r.throttles, 0);
	assert_int_equal(cmk_bootstate_save(p, this_boot, &b, &e), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(cmk_bootstate_load(p, this_boot, &r, &e), 0);
	assert_int_equal(r.throttles, 7);
	assert_true(r.not_before_ms == b.not_before_ms);
	assert_true(r.saved_ms == b.saved_ms);
	b.throttles = 0;
	assert_int_equal(cmk_bootstate_save(p, this_boot, &b, &e), 0);
	assert_int_equal(stat(p, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void throttle_boot_state_refuses_bad_files(void **state)
{
	static const char *bad[] = {
		"", "[]", "{\"throttles\": 3}",
		/* no boot named: an older agent's file, or a damaged one */
		"{\"throttles\": 3, \"not_before_boottime_ms\": 1, \"saved_boottime_ms\": 1}",
		"{" THIS_BOOT "\"throttles\": 3}",
		"{" THIS_BOOT "\"throttles\": -1, \"not_before_boottime_ms\": 1, \"saved_boottime_ms\": 1}",
		"{" THIS_BOOT "\"throttles\": \"3\", \"not_before_boottime_ms\": 1, \"saved_boottime_ms\": 1}",
		"{\"kernel_boot_id\": 7, \"throttles\": 3, \"not_before_boottime_ms\": 1, \"saved_boottime_ms\": 1}",
	};
	static const char good[] =
		"{" THIS_BOOT "\"throttles\": 3, \"not_before_boottime_ms\": 1, \"saved_boottime_ms\": 1}";
	const char *p = tu_path(CMK_BOOTSTATE_FILE);
	struct cmk_boot_backoff r;
	struct cmk_err e;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tu_write_file(p, bad[i], strlen(bad[i]), 0600);
		assert_int_equal(cmk_bootstate_load(p, this_boot, &r, &e), -EINVAL);
		assert_int_equal(r.throttles, 0);
		assert_contains(e.msg, "boot backoff");
	}
	/* Writable by others: anyone could hold the agent's boot back. */
	tu_write_file(p, good, strlen(good), 0600);
	assert_int_equal(cmk_bootstate_load(p, this_boot, &r, &e), 0);
	assert_int_equal(r.throttles, 3);
	assert_int_equal(chmod(p, 0666), 0);
	assert_int_equal(cmk_bootstate_load(p, this_boot, &r, &e), -EPERM);
	assert_int_equal(r.throttles, 0);
}

/*
 * Review 16e L1: a state_dir on persistent storage keeps the file across
 * a reboot, and CLOCK_BOOTTIME starts at 0 again: the previous boot's
 * backoff (its not_before past the new boot's clock) would hold the new
 * boot's first unseal.  Oracle: a file saved in another boot loads as no
 * backoff (0, throttles 0); the same file in its own boot loads as saved.
 */
static void throttle_boot_state_from_previous_boot_ignored(void **state)
{
	struct cmk_boot_backoff b = { .throttles = 6, .not_before_ms = 660000,
				      .saved_ms = 60000 }, r;
	const char *p = tu_path(CMK_BOOTSTATE_FILE);
	uint8_t next_boot[CMK_UUID_LEN];
	struct cmk_err e;

	(void)state;
	memcpy(next_boot, this_boot, sizeof(next_boot));
	next_boot[15] ^= 1;
	assert_int_equal(cmk_bootstate_save(p, this_boot, &b, &e), 0);
	assert_int_equal(cmk_bootstate_load(p, next_boot, &r, &e), 0);
	print_message("# backoff file of the previous boot: throttles %u, not_before %llu ms (must be 0 0)\n",
		      r.throttles, (unsigned long long)r.not_before_ms);
	assert_int_equal(r.throttles, 0);
	assert_true(r.not_before_ms == 0 && r.saved_ms == 0);
	assert_int_equal(cmk_bootstate_load(p, this_boot, &r, &e), 0);
	assert_int_equal(r.throttles, 6);
	assert_true(r.not_before_ms == b.not_before_ms);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(throttle_boot_state_round_trip,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(throttle_boot_state_refuses_bad_files,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(throttle_boot_state_from_previous_boot_ignored,
						tu_setup_tmpdir, tu_teardown_tmpdir),
	};

	return cmocka_run_group_tests_name("bootstate", tests, NULL, NULL);
}
