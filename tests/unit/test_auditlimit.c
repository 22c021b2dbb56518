// SPDX-License-Identifier: GPL-2.0
/*
 * test_auditlimit.c - audit lines limited per source (daemon/auditlimit.h),
 * used by the key socket's refusals and by hints.
 *
 * Oracle: counting - of 1,000 lines of one source in one window exactly
 * CMK_AUDITLIMIT_BURST are admitted and one summary says 990 were not;
 * sources are limited apart; a window ends on time (tick) and the next
 * one admits a burst again; every dropped line is in some summary.
 */
#include "testutil.h"

#include <string.h>

#include "daemon/auditlimit.h"

struct seen {
	int summaries;
	uint64_t source;
	unsigned long logged, dropped, dropped_total;
};

static void on_summary(void *ctx, uint64_t source, unsigned long logged,
		       unsigned long dropped, unsigned int window_s)
{
	struct seen *s = ctx;

	assert_int_equal(window_s, 10);
	s->summaries++;
	s->source = source;
	s->logged = logged;
	s->dropped = dropped;
	s->dropped_total += dropped;
}

static void hint_flood_audit_one_summary_per_window(void **state)
{
	struct cmk_auditlimit a;
	struct seen s = { 0 };
	int admitted = 0;

	(void)state;
	cmk_auditlimit_init(&a, 10000, on_summary, &s);
	for (int i = 0; i < 1000; i++)
		admitted += cmk_auditlimit_admit(&a, 1, 1000 + i);
	assert_int_equal(admitted, CMK_AUDITLIMIT_BURST);
	assert_int_equal(s.summaries, 0);
	assert_int_equal(cmk_auditlimit_tick(&a, 5000), 6000);	/* ends at 11000 */
	cmk_auditlimit_tick(&a, 11000);
	assert_int_equal(s.summaries, 1);
	assert_int_equal(s.source, 1);
	assert_int_equal(s.logged, CMK_AUDITLIMIT_BURST);
	assert_int_equal(s.dropped, 1000 - CMK_AUDITLIMIT_BURST);
	assert_int_equal(cmk_auditlimit_tick(&a, 11000), UINT64_MAX);
	/* The next window admits a burst again. */
	assert_true(cmk_auditlimit_admit(&a, 1, 12000));
}

static void hint_flood_audit_sources_apart_and_flushed(void **state)
{
	struct cmk_auditlimit a;
	struct seen s = { 0 };

	(void)state;
	cmk_auditlimit_init(&a, 10000, on_summary, &s);
	for (int i = 0; i < 20; i++)
		cmk_auditlimit_admit(&a, 0, 100);
	/* another source is not held back by the first one's flood */
	assert_true(cmk_auditlimit_admit(&a, 1, 100));
	/* more sources than slots: the oldest window ends early, counted */
	for (uint64_t src = 2; src < 2 + CMK_AUDITLIMIT_SOURCES; src++)
		assert_true(cmk_auditlimit_admit(&a, src, 200));
	assert_int_equal(s.dropped_total, 10);
	/* a window without drops writes no summary; flush ends them all */
	s.summaries = 0;
	for (int i = 0; i < 15; i++)
		cmk_auditlimit_admit(&a, 99, 300);
	cmk_auditlimit_flush(&a);
	assert_int_equal(s.summaries, 1);
	assert_int_equal(s.dropped_total, 15);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hint_flood_audit_one_summary_per_window),
		cmocka_unit_test(hint_flood_audit_sources_apart_and_flushed),
	};

	return cmocka_run_group_tests_name("auditlimit", tests, NULL, NULL);
}
