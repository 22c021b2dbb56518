// SPDX-License-Identifier: GPL-2.0
/*
 * test_auditlimit.c - audit lines limited per source (daemon/auditlimit.h),
 * used by the hint sources and the key socket's refusals.
 *
 * Oracle: counting against the rule auditlimit.h states (and
 * Documentation/cmk-agent.rst): a bucket of CMK_AUDITLIMIT_BURST lines per
 * source, one back per period; every line not written is in exactly one
 * summary, and summaries are at least a period apart.
 */
#include "testutil.h"

#include <string.h>

#include "daemon/auditlimit.h"

struct seen {
	int summaries;
	uint64_t source;
	unsigned long logged, dropped;
	unsigned long logged_total, dropped_total;
	uint64_t now_ms;		/* the fake clock, for the spacing */
	uint64_t last_summary_ms;
	uint64_t min_gap_ms;
	unsigned int span_s;
};

static void on_summary(void *ctx, uint64_t source, unsigned long logged,
		       unsigned long dropped, unsigned int span_s)
{
	struct seen *s = ctx;

	assert_true(dropped > 0);
	if (s->summaries && s->now_ms - s->last_summary_ms < s->min_gap_ms)
		s->min_gap_ms = s->now_ms - s->last_summary_ms;
	s->last_summary_ms = s->now_ms;
	s->summaries++;
	s->source = source;
	s->logged = logged;
	s->dropped = dropped;
	s->span_s = span_s;
	s->logged_total += logged;
	s->dropped_total += dropped;
}

/*
 * Review L3: 10 lines per 10 s let a flood of one hint a second through
 * whole (3,600 lines an hour, ~50 MB of audit log a day).  One SIGHUP a
 * second for an hour of fake time, with the agent loop's tick every
 * second: at most 10 + 60 lines one by one, at most 61 summaries, each at
 * least a minute after the one before, and the lines written plus the
 * summaries' counts are exactly the 3,600 hints.
 */
static void hint_audit_flood_one_per_second_for_an_hour_bounded(void **state)
{
	const uint64_t hour_ms = 3600 * 1000, t0 = 5000;
	const unsigned long max_lines = CMK_AUDITLIMIT_BURST + hour_ms / CMK_AUDITLIMIT_PERIOD_MS;
	const unsigned long max_summaries = hour_ms / CMK_AUDITLIMIT_PERIOD_MS + 1;
	struct cmk_auditlimit a;
	struct seen s = { .min_gap_ms = UINT64_MAX };
	unsigned long admitted = 0;

	(void)state;
	cmk_auditlimit_init(&a, CMK_AUDITLIMIT_PERIOD_MS, on_summary, &s);
	for (uint64_t t = 0; t < hour_ms; t += 1000) {
		s.now_ms = t0 + t;
		cmk_auditlimit_tick(&a, s.now_ms);
		admitted += cmk_auditlimit_admit(&a, 1, s.now_ms);
	}
	/* The flood is over: its last summary within a period, by tick alone. */
	for (uint64_t t = 0; t <= CMK_AUDITLIMIT_PERIOD_MS; t += 1000) {
		s.now_ms = t0 + hour_ms + t;
		cmk_auditlimit_tick(&a, s.now_ms);
	}
	assert_int_equal(cmk_auditlimit_tick(&a, s.now_ms), UINT64_MAX);
	print_message("# hint_audit: 3600 hints at 1/s for 1 h: %lu lines, %d summaries (%lu suppressed, min gap %llu ms); at most %lu + %lu\n",
		      admitted, s.summaries, s.dropped_total,
		      (unsigned long long)s.min_gap_ms, max_lines, max_summaries);
	assert_true(admitted <= max_lines);
	assert_true(admitted >= CMK_AUDITLIMIT_BURST);
	assert_true(s.summaries <= (int)max_summaries);
	assert_true(s.summaries >= 1);
	assert_true(s.min_gap_ms >= CMK_AUDITLIMIT_PERIOD_MS);
	assert_int_equal(admitted + s.dropped_total, 3600);
	assert_int_equal(s.logged_total, admitted);
	assert_int_equal(s.source, 1);
}

/*
 * The bucket: a burst of 10 at once, then one line per period; a quiet
 * source gets its whole burst back after 10 periods.  tick() says when
 * the summary is due.
 */
static void hint_audit_burst_then_one_per_period(void **state)
{
	const uint64_t p = CMK_AUDITLIMIT_PERIOD_MS;
	struct cmk_auditlimit a;
	struct seen s = { .min_gap_ms = UINT64_MAX };
	int admitted = 0;

	(void)state;
	cmk_auditlimit_init(&a, (uint32_t)p, on_summary, &s);
	for (int i = 0; i < 1000; i++)
		admitted += cmk_auditlimit_admit(&a, 7, 1000 + i);
	assert_int_equal(admitted, CMK_AUDITLIMIT_BURST);
	assert_int_equal(s.summaries, 0);
	/* due a period after the source's first line (at 1000) */
	assert_int_equal(cmk_auditlimit_tick(&a, 5000), p - 4000);
	assert_false(cmk_auditlimit_admit(&a, 7, 1000 + p - 1));
	s.now_ms = 1000 + p;
	cmk_auditlimit_tick(&a, s.now_ms);
	assert_int_equal(s.summaries, 1);
	assert_int_equal(s.logged, CMK_AUDITLIMIT_BURST);
	assert_int_equal(s.dropped, 1000 - CMK_AUDITLIMIT_BURST + 1);
	assert_int_equal(s.span_s, p / 1000);
	assert_int_equal(cmk_auditlimit_tick(&a, s.now_ms), UINT64_MAX);
	/* one token back a period after the first was taken */
	assert_true(cmk_auditlimit_admit(&a, 7, 1000 + p));
	assert_false(cmk_auditlimit_admit(&a, 7, 1000 + p + 1));
	/* quiet for 10 periods: the whole burst again */
	admitted = 0;
	for (int i = 0; i < 20; i++)
		admitted += cmk_auditlimit_admit(&a, 7, 1000 + 12 * p + i);
	assert_int_equal(admitted, CMK_AUDITLIMIT_BURST);
}

/*
 * Sources apart: one source's flood does not hold back another.  More
 * sources than slots: the least recent busy one's summary is written and
 * the newcomer goes on with its (empty) bucket, so rotating sources gain
 * no fresh bursts.  Flush writes what is owed; every line not written is
 * in exactly one summary.
 */
static void hint_audit_sources_apart_and_flushed(void **state)
{
	struct cmk_auditlimit a;
	struct seen s = { .min_gap_ms = UINT64_MAX };
	unsigned long dropped = 0;

	(void)state;
	cmk_auditlimit_init(&a, CMK_AUDITLIMIT_PERIOD_MS, on_summary, &s);
	for (int i = 0; i < 20; i++)
		dropped += !cmk_auditlimit_admit(&a, 0, 100);
	assert_int_equal(dropped, 10);
	/* another source is not held back by the first one's flood */
	assert_true(cmk_auditlimit_admit(&a, 1, 100));
	/* 14 more fill the table; each writes its first line */
	for (uint64_t src = 2; src < CMK_AUDITLIMIT_SOURCES; src++)
		assert_true(cmk_auditlimit_admit(&a, src, 200));
	assert_int_equal(s.summaries, 0);
	/* a 17th: source 0 (least recent) is summarized, its bucket empty */
	assert_false(cmk_auditlimit_admit(&a, 99, 300));
	assert_int_equal(s.summaries, 1);
	assert_int_equal(s.source, 0);
	assert_int_equal(s.dropped, 10);
	dropped++;
	/* an 18th takes source 1's place and bucket (9 lines left) */
	assert_true(cmk_auditlimit_admit(&a, 98, 400));
	for (int i = 0; i < 15; i++)
		dropped += !cmk_auditlimit_admit(&a, 98, 500);
	cmk_auditlimit_flush(&a);
	assert_int_equal(s.dropped_total, dropped);
	/* nothing owed after the flush */
	assert_int_equal(cmk_auditlimit_tick(&a, 10 * CMK_AUDITLIMIT_PERIOD_MS), UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hint_audit_flood_one_per_second_for_an_hour_bounded),
		cmocka_unit_test(hint_audit_burst_then_one_per_period),
		cmocka_unit_test(hint_audit_sources_apart_and_flushed),
	};

	return cmocka_run_group_tests_name("auditlimit", tests, NULL, NULL);
}
