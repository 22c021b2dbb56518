// SPDX-License-Identifier: GPL-2.0
/*
 * test_checknow.c - cmkctl check-now's tokens in the agent's state file.
 *
 * Oracle: the invariant of checknow.h - every caller whose hint the loop
 * has answered finds its token in "answered_tokens", whatever the number
 * of callers at once (up to CMK_CHECKNOW_TOKENS), and a token not yet
 * answered is listed as pending until it is.  The old ring of 8 lost the
 * 9th caller's predecessors (they waited until --wait ran out).
 */
#include "testutil.h"

#include <string.h>

#include "daemon/checknow.h"

static bool listed(const struct cmk_checknow *c, unsigned long answered,
		   const char *which, int token)
{
	json_object *h = json_object_new_object(), *arr;
	bool found = false;

	cmk_checknow_json(c, answered, h);
	assert_true(json_object_object_get_ex(h, which, &arr));
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		found |= json_object_get_int(json_object_array_get_idx(arr, i)) == token;
	json_object_put(h);
	return found;
}

/*
 * 20 callers at once: their SIGHUPs arrive while the check of the first
 * runs (hints 1..20, coalesced into two checks).  Each token is pending
 * until the check that answers its hint ends, then answered.
 */
static void hint_check_now_twenty_callers_all_answered(void **state)
{
	static struct cmk_checknow c;

	(void)state;
	memset(&c, 0, sizeof(c));
	for (int i = 1; i <= 20; i++)
		cmk_checknow_add(&c, 1000 + i, i, 0);
	for (int i = 1; i <= 20; i++) {
		assert_true(listed(&c, 0, "pending_tokens", 1000 + i));
		assert_false(listed(&c, 0, "answered_tokens", 1000 + i));
	}
	/* The first check answered hint 1 only; the next one all the rest. */
	assert_true(listed(&c, 1, "answered_tokens", 1001));
	assert_true(listed(&c, 1, "pending_tokens", 1002));
	for (int i = 1; i <= 20; i++)
		assert_true(listed(&c, 20, "answered_tokens", 1000 + i));
}

/* A full table evicts the oldest answered token, never a pending one. */
static void hint_check_now_pending_token_never_evicted(void **state)
{
	static struct cmk_checknow c;

	(void)state;
	memset(&c, 0, sizeof(c));
	for (int i = 1; i <= CMK_CHECKNOW_TOKENS; i++)
		cmk_checknow_add(&c, i, i, 0);
	/* Hints 1..64 answered; 200 new callers push out only those. */
	for (int i = 1; i <= 64; i++)
		cmk_checknow_add(&c, 10000 + i, CMK_CHECKNOW_TOKENS + i, 64);
	for (int i = 65; i <= CMK_CHECKNOW_TOKENS; i++)
		assert_true(listed(&c, 64, "pending_tokens", i));
	for (int i = 1; i <= 64; i++)
		assert_false(listed(&c, 64, "answered_tokens", i));
}

/* A resent token (its first SIGHUP merged, or not) keeps its first hint. */
static void hint_check_now_resent_token_keeps_its_hint(void **state)
{
	static struct cmk_checknow c;

	(void)state;
	memset(&c, 0, sizeof(c));
	cmk_checknow_add(&c, 7, 3, 0);
	cmk_checknow_add(&c, 7, 9, 0);
	assert_true(listed(&c, 3, "answered_tokens", 7));
	/* One entry: not also pending under the resent number. */
	assert_false(listed(&c, 3, "pending_tokens", 7));
}

/*
 * Eviction order, all answered: the oldest answered token goes first, so
 * the newest caller (most likely still polling the state file) keeps its
 * answer.  Oracle: the token received last before the new one is still
 * listed as answered; the one received first is gone.  Slots are reused
 * out of arrival order after the first eviction, so the age that counts
 * is the arrival order, not the slot index.
 */
static void hint_check_now_full_table_evicts_oldest_answered(void **state)
{
	static struct cmk_checknow c;
	int n = CMK_CHECKNOW_TOKENS;

	(void)state;
	memset(&c, 0, sizeof(c));
	for (int i = 1; i <= n; i++)
		cmk_checknow_add(&c, i, i, 0);
	/* All answered; one more caller takes the oldest slot (token 1). */
	cmk_checknow_add(&c, n + 1, n + 1, n);
	assert_false(listed(&c, n + 1, "answered_tokens", 1));
	assert_true(listed(&c, n + 1, "answered_tokens", n));
	/* Token n + 1 (slot 0) answered too: the next goes to token 2. */
	cmk_checknow_add(&c, n + 2, n + 2, n + 1);
	assert_true(listed(&c, n + 2, "answered_tokens", n + 1));
	assert_false(listed(&c, n + 2, "answered_tokens", 2));
	for (int i = 3; i <= n; i++)
		assert_true(listed(&c, n + 2, "answered_tokens", i));
}

/*
 * A table full of pending tokens (more than CMK_CHECKNOW_TOKENS callers
 * waiting on one check) drops the oldest caller's token, the one closest
 * to its --wait end, never the newest.  Oracle: token 1 gone, token
 * CMK_CHECKNOW_TOKENS and the new one pending.
 */
static void hint_check_now_all_pending_evicts_oldest(void **state)
{
	static struct cmk_checknow c;
	int n = CMK_CHECKNOW_TOKENS;

	(void)state;
	memset(&c, 0, sizeof(c));
	for (int i = 1; i <= n; i++)
		cmk_checknow_add(&c, i, i, 0);
	cmk_checknow_add(&c, n + 1, n + 1, 0);
	assert_false(listed(&c, 0, "pending_tokens", 1));
	assert_true(listed(&c, 0, "pending_tokens", 2));
	assert_true(listed(&c, 0, "pending_tokens", n));
	assert_true(listed(&c, 0, "pending_tokens", n + 1));
}

/*
 * The invariant holds whatever the order of hint numbers: a token whose
 * hint is exactly the last answered one is answered, so it is evicted
 * before any pending token, even an older one.  Oracle: the older
 * pending token 1 stays pending; the answered token (hint 5) goes.
 */
static void hint_check_now_answered_at_boundary_evicted_first(void **state)
{
	static struct cmk_checknow c;
	int n = CMK_CHECKNOW_TOKENS;

	(void)state;
	memset(&c, 0, sizeof(c));
	cmk_checknow_add(&c, 1, 100, 0);
	for (int i = 2; i < n; i++)
		cmk_checknow_add(&c, i, 100 + i, 0);
	cmk_checknow_add(&c, 999, 5, 0);	/* hint 5, received last */
	cmk_checknow_add(&c, 1000, 500, 5);	/* hints 1..5 answered */
	assert_false(listed(&c, 5, "answered_tokens", 999));
	for (int i = 1; i < n; i++)
		assert_true(listed(&c, 5, "pending_tokens", i));
	assert_true(listed(&c, 5, "pending_tokens", 1000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hint_check_now_twenty_callers_all_answered),
		cmocka_unit_test(hint_check_now_pending_token_never_evicted),
		cmocka_unit_test(hint_check_now_resent_token_keeps_its_hint),
		cmocka_unit_test(hint_check_now_full_table_evicts_oldest_answered),
		cmocka_unit_test(hint_check_now_all_pending_evicts_oldest),
		cmocka_unit_test(hint_check_now_answered_at_boundary_evicted_first),
	};

	return cmocka_run_group_tests_name("checknow", tests, NULL, NULL);
}
