// SPDX-License-Identifier: GPL-2.0
/*
 * test_secret.c - locked, wiped secret buffers and process hardening.
 * Oracles: the kernel's own view of our mappings (/proc/self/smaps flags),
 * the bytes seen by munmap (wrapped), and a forked child's view.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/secret.h"

/* VmFlags line of the mapping that contains @addr, or "" if none. */
static void vmflags_of(const void *addr, char *flags, size_t size, char *perms)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	uintptr_t a = (uintptr_t)addr;
	bool in = false;

	assert_non_null(f);
	flags[0] = '\0';
	if (perms)
		perms[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char p[8];

		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, p) == 3) {
			in = a >= lo && a < hi;
			if (in && perms)
				snprintf(perms, 8, "%s", p);
			continue;
		}
		if (in && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(flags, size, "%s", line + 8);
			break;
		}
	}
	fclose(f);
}

static bool has_flag(const char *flags, const char *flag)
{
	char pat[8];

	snprintf(pat, sizeof(pat), " %s", flag);
	return strstr(flags, pat) != NULL;
}

static void secret_is_locked_and_wiped(void **state)
{
	struct cmk_secret *s = NULL;
	struct cmk_err e;
	char flags[256];

	(void)state;
	assert_int_equal(cmk_secret_new(&s, 64, &e), 0);
	assert_int_equal(cmk_secret_len(s), 64);
	for (size_t i = 0; i < 64; i++)
		assert_int_equal(cmk_secret_data(s)[i], 0);
	memset(cmk_secret_data(s), 0xa5, 64);

	vmflags_of(cmk_secret_data(s), flags, sizeof(flags), NULL);
	assert_true(has_flag(flags, "lo"));	/* mlock'd */
	assert_true(has_flag(flags, "dd"));	/* MADV_DONTDUMP */

	tu_munmap_inspect = true;
	tu_munmap_count = 0;
	tu_munmap_data_zero = false;
	cmk_secret_free(&s);
	tu_munmap_inspect = false;
	assert_null(s);
	assert_int_equal(tu_munmap_count, 1);
	assert_true(tu_munmap_data_zero);	/* wiped before unmap */
	cmk_secret_free(&s);			/* NULL-safe */
}

static void secret_guard_pages_surround_data(void **state)
{
	struct cmk_secret *s = NULL;
	struct cmk_err e;
	char flags[256], perms[8];
	long pg = sysconf(_SC_PAGESIZE);
	unsigned char *d;

	(void)state;
	assert_int_equal(cmk_secret_new(&s, 100, &e), 0);
	d = cmk_secret_data(s);
	/* page below the data page and page after it are PROT_NONE */
	vmflags_of((void *)(((uintptr_t)d & ~(uintptr_t)(pg - 1)) - 1), flags,
		   sizeof(flags), perms);
	assert_string_equal(perms, "---p");
	vmflags_of((void *)(((uintptr_t)d & ~(uintptr_t)(pg - 1)) + (uintptr_t)pg),
		   flags, sizeof(flags), perms);
	assert_string_equal(perms, "---p");
	vmflags_of(d, flags, sizeof(flags), perms);
	assert_string_equal(perms, "rw-p");
	cmk_secret_free(&s);
}

static void secret_wiped_in_forked_child(void **state)
{
	struct cmk_secret *s = NULL;
	struct cmk_err e;
	char flags[256];
	pid_t pid;
	int status;

	(void)state;
	assert_int_equal(cmk_secret_new(&s, 32, &e), 0);
	vmflags_of(cmk_secret_data(s), flags, sizeof(flags), NULL);
	if (!has_flag(flags, "wf")) {
		cmk_secret_free(&s);
		skip();		/* kernel without MADV_WIPEONFORK */
	}
	memset(cmk_secret_data(s), 0x11, 32);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		unsigned char acc = 0;

		for (int i = 0; i < 32; i++)
			acc |= cmk_secret_data(s)[i];
		_exit(acc == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(cmk_secret_data(s)[0], 0x11);	/* parent keeps it */
	cmk_secret_free(&s);
}

static void secret_auto_frees_on_scope_exit(void **state)
{
	(void)state;
	tu_munmap_inspect = true;
	tu_munmap_count = 0;
	{
		CMK_SECRET_AUTO struct cmk_secret *s = NULL;
		struct cmk_err e;

		assert_int_equal(cmk_secret_random(&s, 32, &e), 0);
	}
	tu_munmap_inspect = false;
	assert_int_equal(tu_munmap_count, 1);
	assert_true(tu_munmap_data_zero);
}

static void secret_truncate_wipes_tail(void **state)
{
	struct cmk_secret *s = NULL;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_secret_new(&s, 64, &e), 0);
	memset(cmk_secret_data(s), 0x77, 64);
	assert_int_equal(cmk_secret_truncate(s, 32, &e), 0);
	assert_int_equal(cmk_secret_len(s), 32);
	for (int i = 0; i < 64; i++)
		assert_int_equal(cmk_secret_data(s)[i], i < 32 ? 0x77 : 0);
	assert_int_equal(cmk_secret_truncate(s, 33, &e), -EINVAL);
	cmk_secret_free(&s);
}

static void secret_rejects_bad_sizes(void **state)
{
	struct cmk_secret *s = (struct cmk_secret *)1;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_secret_new(&s, 0, &e), -EINVAL);
	assert_null(s);
	assert_int_equal(cmk_secret_new(&s, CMK_SECRET_MAX + 1, &e), -EINVAL);
	assert_contains(e.msg, "out of range");
}

static void secret_equal_is_exact(void **state)
{
	struct cmk_secret *a = NULL, *b = NULL, *c = NULL;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_secret_random(&a, 32, &e), 0);
	assert_int_equal(cmk_secret_dup(&b, a, &e), 0);
	assert_int_equal(cmk_secret_new(&c, 31, &e), 0);
	assert_true(cmk_secret_equal(a, b));
	cmk_secret_data(b)[31] ^= 1;
	assert_false(cmk_secret_equal(a, b));
	assert_false(cmk_secret_equal(a, c));
	cmk_secret_free(&a);
	cmk_secret_free(&b);
	cmk_secret_free(&c);
}

static void harden_process_not_dumpable_no_core(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct cmk_err e;
		struct rlimit rl;

		if (cmk_harden_process(&e))
			_exit(2);
		if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
			_exit(3);
		if (getrlimit(RLIMIT_CORE, &rl) || rl.rlim_cur || rl.rlim_max)
			_exit(4);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(secret_is_locked_and_wiped),
		cmocka_unit_test(secret_guard_pages_surround_data),
		cmocka_unit_test(secret_wiped_in_forked_child),
		cmocka_unit_test(secret_auto_frees_on_scope_exit),
		cmocka_unit_test(secret_truncate_wipes_tail),
		cmocka_unit_test(secret_rejects_bad_sizes),
		cmocka_unit_test(secret_equal_is_exact),
		cmocka_unit_test(harden_process_not_dumpable_no_core),
	};

	return cmocka_run_group_tests_name("secret", tests, NULL, NULL);
}
