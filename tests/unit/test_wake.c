// SPDX-License-Identifier: GPL-2.0
/*
 * test_wake.c - hints posted from other threads wake the main loop.
 *
 * Oracle: poll(2) on the fd (what cmk-agent's main loop does) and the
 * count cmk_wake_take() returns: readable exactly when posts wait, every
 * post counted once, posts from other threads seen.
 */
#include "testutil.h"

#include <poll.h>
#include <pthread.h>

#include "daemon/wake.h"

static bool readable(struct cmk_wake *w)
{
	struct pollfd p = { .fd = cmk_wake_fd(w), .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void hint_wake_post_take(void **state)
{
	struct cmk_wake *w = NULL;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_wake_open(&w, &e), 0);
	assert_true(cmk_wake_fd(w) >= 0);
	assert_false(readable(w));
	assert_int_equal(cmk_wake_take(w), 0);
	cmk_wake_post(w);
	cmk_wake_post(w);
	assert_true(readable(w));
	assert_int_equal(cmk_wake_take(w), 2);
	assert_false(readable(w));
	assert_int_equal(cmk_wake_take(w), 0);
	cmk_wake_close(&w);
	assert_null(w);
	cmk_wake_close(&w);	/* NULL is fine */
}

static void *poster(void *arg)
{
	for (int i = 0; i < 1000; i++)
		cmk_wake_post(arg);
	return NULL;
}

static void hint_wake_from_threads(void **state)
{
	struct cmk_wake *w = NULL;
	struct cmk_err e;
	pthread_t t[4];
	uint64_t n = 0;

	(void)state;
	assert_int_equal(cmk_wake_open(&w, &e), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, poster, w), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_true(readable(w));
	n = cmk_wake_take(w);
	assert_int_equal(n, 4000);
	cmk_wake_close(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hint_wake_post_take),
		cmocka_unit_test(hint_wake_from_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
