// SPDX-License-Identifier: GPL-2.0
/*
 * test_checklog.c - which CMK checks get an audit line (checklog.c).
 *
 * Oracle: checklog.h and cmk-agent.rst - a check's line is written when
 * the outcome (or a failure's reason) changes and otherwise once per
 * period, but every KEY_SET (a restore) follows, in the log, the line of
 * the check whose yes allowed it (review r2 #7: a key lost without an
 * event was restored on a rate-limited, unwritten yes).  The test plays
 * cmk-agent's calls: ended() per check, key_set() before each KEY_SET the
 * loop makes on that answer, done() once the loop used it.
 */
#include "testutil.h"

#include <errno.h>

#include "daemon/checklog.h"

#define EVERY 60000

/* A yes every 250 ms: one line a minute, plus one before a restore. */
static void checklog_authority_restore_after_rate_limited_yes_writes_it_first(void **state)
{
	struct cmk_checklog c;

	(void)state;
	cmk_checklog_init(&c, EVERY);
	assert_true(cmk_checklog_ended(&c, 1000, 0, CMK_R_NONE));	/* the first */
	cmk_checklog_done(&c);
	assert_false(cmk_checklog_ended(&c, 1250, 0, CMK_R_NONE));	/* rate-limited */
	/* the loop restores a key the kernel lost without an event */
	assert_true(cmk_checklog_key_set(&c, 1250));
	assert_false(cmk_checklog_key_set(&c, 1250));	/* a second device: once */
	cmk_checklog_done(&c);
	/* the period restarts from that line */
	assert_false(cmk_checklog_ended(&c, 1250 + EVERY - 1, 0, CMK_R_NONE));
	cmk_checklog_done(&c);
	assert_true(cmk_checklog_ended(&c, 1250 + EVERY, 0, CMK_R_NONE));
}

/* No KEY_SET: the yes stays unwritten; a KEY_SET later is not its. */
static void checklog_authority_yes_without_restore_stays_rate_limited(void **state)
{
	struct cmk_checklog c;
	int lines = 0;

	(void)state;
	cmk_checklog_init(&c, EVERY);
	for (uint64_t t = 0; t < 10 * EVERY; t += 250) {
		lines += cmk_checklog_ended(&c, t, 0, CMK_R_NONE);
		cmk_checklog_done(&c);
	}
	assert_int_equal(lines, 10);
	assert_false(cmk_checklog_key_set(&c, 10 * EVERY));	/* used already */
}

/* Outcome and reason changes are written; a failure never allows a KEY_SET. */
static void checklog_authority_changes_written_failures_restore_nothing(void **state)
{
	struct cmk_checklog c;

	(void)state;
	cmk_checklog_init(&c, EVERY);
	assert_true(cmk_checklog_ended(&c, 0, 0, CMK_R_NONE));
	assert_true(cmk_checklog_ended(&c, 250, -ETIMEDOUT, CMK_R_TIMEOUT));
	assert_false(cmk_checklog_ended(&c, 500, -ETIMEDOUT, CMK_R_TIMEOUT));
	assert_false(cmk_checklog_key_set(&c, 500));
	assert_true(cmk_checklog_ended(&c, 750, -EACCES, CMK_R_DENIED));
	assert_true(cmk_checklog_ended(&c, 1000, 0, CMK_R_NONE));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(checklog_authority_restore_after_rate_limited_yes_writes_it_first),
		cmocka_unit_test(checklog_authority_yes_without_restore_stays_rate_limited),
		cmocka_unit_test(checklog_authority_changes_written_failures_restore_nothing),
	};

	return cmocka_run_group_tests_name("checklog", tests, NULL, NULL);
}
