// SPDX-License-Identifier: GPL-2.0
/*
 * test_outfile.c - cmk_outfile: a streamed file appears whole or not at all,
 * also where the filesystem lacks O_TMPFILE and RENAME_NOREPLACE (NFS).
 *
 * open() and renameat2() are wrapped (agent/Makefile): with @nfs set, an
 * O_TMPFILE open fails with EOPNOTSUPP and a RENAME_NOREPLACE rename with
 * EINVAL, as on NFS.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fileio.h"

static bool nfs;
static int noreplace_calls;

int __real_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...);
int __real_renameat2(int od, const char *o, int nd, const char *n, unsigned int f);
int __wrap_renameat2(int od, const char *o, int nd, const char *n, unsigned int f);

int __wrap_open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (nfs && (flags & O_TMPFILE) == O_TMPFILE) {
		errno = EOPNOTSUPP;
		return -1;
	}
	return __real_open(path, flags, mode);
}

int __wrap_renameat2(int od, const char *o, int nd, const char *n, unsigned int f)
{
	if (f & RENAME_NOREPLACE) {
		noreplace_calls++;
		if (nfs) {
			errno = EINVAL;
			return -1;
		}
	}
	return __real_renameat2(od, o, nd, n, f);
}

/* Entries of the test directory, "." and ".." not counted. */
static int entries(void)
{
	DIR *d = opendir(tu_path(""));
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void put(const char *path, const char *text, bool replace, int want)
{
	struct cmk_outfile o;
	struct cmk_err e;

	assert_int_equal(cmk_outfile_open(&o, path, 0600, &e), 0);
	assert_int_equal(write(o.fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(cmk_outfile_commit(&o, replace, &e), want);
	if (want == -EEXIST)
		assert_contains(e.msg, "exists already; not replaced");
	cmk_outfile_abort(&o);
}

/*
 * Oracle: while being written the file has no name in the directory (a
 * killed writer leaves nothing); after commit exactly OUT, with the text;
 * a second commit without replace is -EEXIST and keeps the first text.
 */
static void outfile_is_unnamed_until_commit(void **state)
{
	struct cmk_outfile o;
	struct cmk_err e;
	char *got;

	(void)state;
	nfs = false;
	assert_int_equal(cmk_outfile_open(&o, tu_path("out"), 0600, &e), 0);
	assert_true(o.unnamed);
	assert_int_equal(write(o.fd, "abc", 3), 3);
	assert_int_equal(entries(), 0);
	assert_int_equal(cmk_outfile_commit(&o, false, &e), 0);
	assert_int_equal(entries(), 1);
	put(tu_path("out"), "xyz", false, -EEXIST);
	got = tu_read_file(tu_path("out"), NULL);
	assert_string_equal(got, "abc");
	free(got);
	put(tu_path("out"), "new", true, 0);
	got = tu_read_file(tu_path("out"), NULL);
	assert_string_equal(got, "new");
	free(got);
	assert_int_equal(entries(), 1);
}

/*
 * As on NFS: no O_TMPFILE, RENAME_NOREPLACE is EINVAL.  Oracle: the commit
 * still publishes (link + unlink), leaves no temporary name, and still
 * refuses to replace an existing file.
 */
static void outfile_without_noreplace_links_instead(void **state)
{
	char *got;

	(void)state;
	nfs = true;
	noreplace_calls = 0;
	put(tu_path("out"), "abc", false, 0);
	assert_true(noreplace_calls > 0);
	assert_int_equal(entries(), 1);
	put(tu_path("out"), "xyz", false, -EEXIST);
	assert_int_equal(entries(), 1);
	got = tu_read_file(tu_path("out"), NULL);
	assert_string_equal(got, "abc");
	free(got);
	nfs = false;
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_tmpdir, tu_teardown_tmpdir)
	const struct CMUnitTest tests[] = {
		T(outfile_is_unnamed_until_commit),
		T(outfile_without_noreplace_links_instead),
	};

	return cmocka_run_group_tests_name("outfile", tests, NULL, NULL);
}
