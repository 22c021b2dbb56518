// SPDX-License-Identifier: GPL-2.0
/*
 * test_cleanse_alloc.c - the wiping allocators libcurl is given
 * (cleanse_alloc.h).  Oracle: the block handed to libc's free(), read just
 * before it is released (testutil's free wrapper), must be all zero -
 * header, data and any tail left over by a shrinking realloc; and a
 * growing realloc must itself free (wiped) the old block rather than
 * leave it to libc's realloc, which would release it unwiped where the
 * wrapper cannot see it.
 */
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanse_alloc.h"

/* Start (counters reset) or stop watching the blocks handed to free(). */
static void inspect(bool on)
{
	if (on) {
		tu_free_count = 0;
		tu_free_nonzero = 0;
	}
	tu_free_inspect = on;
}

static void cleanse_alloc_free_wipes_whole_block(void **state)
{
	unsigned char *p = cmk_cleanse_malloc(100);

	(void)state;
	assert_non_null(p);
	assert_int_equal(cmk_cleanse_size(p), 100);
	memset(p, 0xa5, 100);
	inspect(true);
	cmk_cleanse_free(p);
	inspect(false);
	assert_int_equal(tu_free_count, 1);
	assert_int_equal(tu_free_nonzero, 0);
	cmk_cleanse_free(NULL);
}

static void cleanse_alloc_realloc_grow_wipes_old_block(void **state)
{
	unsigned char *p = cmk_cleanse_malloc(64), *q;

	(void)state;
	assert_non_null(p);
	memset(p, 0x5a, 64);
	inspect(true);
	q = cmk_cleanse_realloc(p, 64 * 1024);
	inspect(false);
	assert_non_null(q);
	/* the old block went through free(), wiped: not left to libc */
	assert_int_equal(tu_free_count, 1);
	assert_int_equal(tu_free_nonzero, 0);
	for (int i = 0; i < 64; i++)
		assert_int_equal(q[i], 0x5a);
	assert_int_equal(cmk_cleanse_size(q), 64 * 1024);
	memset(q, 0x77, 64 * 1024);
	inspect(true);
	cmk_cleanse_free(q);
	inspect(false);
	assert_int_equal(tu_free_nonzero, 0);
}

static void cleanse_alloc_realloc_shrink_wipes_tail(void **state)
{
	unsigned char *p = cmk_cleanse_malloc(256), *q;

	(void)state;
	assert_non_null(p);
	memset(p, 0x3c, 256);
	inspect(true);
	q = cmk_cleanse_realloc(p, 16);
	inspect(false);
	assert_non_null(q);
	assert_int_equal(cmk_cleanse_size(q), 16);
	for (int i = 0; i < 16; i++)
		assert_int_equal(q[i], 0x3c);
	/* whether or not it moved, nothing of the 256 bytes survives free */
	inspect(true);
	cmk_cleanse_free(q);
	inspect(false);
	assert_int_equal(tu_free_nonzero, 0);
}

static void cleanse_alloc_realloc_null_and_failure(void **state)
{
	unsigned char *p = cmk_cleanse_realloc(NULL, 10), *q;

	(void)state;
	assert_non_null(p);
	memcpy(p, "012345678", 10);
	/* a request that cannot be met leaves the old block as it was */
	q = cmk_cleanse_realloc(p, SIZE_MAX - 8);
	assert_null(q);
	assert_string_equal((char *)p, "012345678");
	cmk_cleanse_free(p);
}

static void cleanse_alloc_calloc_and_strdup(void **state)
{
	unsigned char *z = cmk_cleanse_calloc(32, 4);
	char *d = cmk_cleanse_strdup("Bearer eyJ0eXAi");

	(void)state;
	assert_non_null(z);
	for (int i = 0; i < 128; i++)
		assert_int_equal(z[i], 0);
	assert_null(cmk_cleanse_calloc(SIZE_MAX / 2, 3));
	assert_string_equal(d, "Bearer eyJ0eXAi");
	assert_int_equal(cmk_cleanse_size(d), 16);
	inspect(true);
	cmk_cleanse_free(z);
	cmk_cleanse_free(d);
	inspect(false);
	assert_int_equal(tu_free_count, 2);
	assert_int_equal(tu_free_nonzero, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cleanse_alloc_free_wipes_whole_block),
		cmocka_unit_test(cleanse_alloc_realloc_grow_wipes_old_block),
		cmocka_unit_test(cleanse_alloc_realloc_shrink_wipes_tail),
		cmocka_unit_test(cleanse_alloc_realloc_null_and_failure),
		cmocka_unit_test(cleanse_alloc_calloc_and_strdup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
