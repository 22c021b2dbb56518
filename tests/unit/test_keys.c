// SPDX-License-Identifier: GPL-2.0
/*
 * test_keys.c - KEK/DEK generation.  Oracle: a broken RNG injected through
 * the wrapped getrandom() must not produce an XTS key with equal halves.
 */
#include "testutil.h"

#include <errno.h>
#include <string.h>

#include "core/keys.h"

static void dek_halves_differ(void **state)
{
	struct cmk_secret *dek = NULL;
	struct cmk_err e;
	const unsigned char *k;

	(void)state;
	/* The first draw returns a constant, so both halves are equal. */
	tu_getrandom_fixed = 1;
	tu_getrandom_calls = 0;
	assert_int_equal(cmk_dek_generate(&dek, &e), 0);
	assert_int_equal(tu_getrandom_calls, 2);	/* it drew again */
	assert_int_equal(cmk_secret_len(dek), CMK_DEK_LEN);
	k = cmk_secret_cdata(dek);
	assert_memory_not_equal(k, k + 32, 32);
	assert_int_equal(cmk_dek_check(dek, &e), 0);
	cmk_secret_free(&dek);
}

static void dek_broken_rng_refused(void **state)
{
	struct cmk_secret *dek = NULL;
	struct cmk_err e;

	(void)state;
	tu_getrandom_fixed = 100;
	assert_int_equal(cmk_dek_generate(&dek, &e), -EIO);
	tu_getrandom_fixed = 0;
	assert_null(dek);
	assert_contains(e.msg, "equal XTS halves");
}

static void dek_equal_halves_rejected(void **state)
{
	struct cmk_secret *dek = NULL;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_secret_new(&dek, CMK_DEK_LEN, &e), 0);
	memset(cmk_secret_data(dek), 0x42, CMK_DEK_LEN);
	assert_int_equal(cmk_dek_check(dek, &e), -EINVAL);
	assert_contains(e.msg, "halves are equal");
	cmk_secret_data(dek)[63] = 0x43;
	assert_int_equal(cmk_dek_check(dek, &e), 0);
	cmk_secret_free(&dek);

	assert_int_equal(cmk_secret_new(&dek, 32, &e), 0);
	assert_int_equal(cmk_dek_check(dek, &e), -EINVAL);
	assert_contains(e.msg, "length 32");
	cmk_secret_free(&dek);
}

static void kek_is_32_fresh_random_bytes(void **state)
{
	struct cmk_secret *a = NULL, *b = NULL;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_kek_generate(&a, &e), 0);
	assert_int_equal(cmk_kek_generate(&b, &e), 0);
	assert_int_equal(cmk_secret_len(a), CMK_KEK_LEN);
	assert_int_equal(cmk_kek_check(a, &e), 0);
	assert_false(cmk_secret_equal(a, b));
	cmk_secret_free(&a);
	cmk_secret_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dek_halves_differ),
		cmocka_unit_test(dek_broken_rng_refused),
		cmocka_unit_test(dek_equal_halves_rejected),
		cmocka_unit_test(kek_is_32_fresh_random_bytes),
	};

	return cmocka_run_group_tests_name("keys", tests, tu_setup_tmpdir,
					   tu_teardown_tmpdir);
}
