/* SPDX-License-Identifier: GPL-2.0 */
/*
 * testutil.h - shared helpers for the agent's cmocka unit tests.
 *
 * The test binaries are linked with -Wl,--wrap for a few libc calls made
 * by the library, so tests can inject faults and observe side effects
 * without hooks in production code:
 *
 *   pwrite     tu_pwrite_budget >= 0 lets that many more bytes through,
 *              then writes fail with EIO (a crash in the middle of a write)
 *   getrandom  the next tu_getrandom_fixed calls return a constant pattern
 *              (a broken RNG), tu_getrandom_calls counts calls
 *   munmap     with tu_munmap_inspect set, records whether the data pages
 *              of a secret's mapping were all zero at unmap time
 *   fsync      with tu_fsync_record set, records the path of every fd that
 *              was fsync'd successfully (tu_fsynced() asks for one)
 *   posix_fadvise  tu_fadvise_dontneed counts successful POSIX_FADV_DONTNEED
 *   free       with tu_free_inspect set, counts the blocks the library frees
 *              (tu_free_count) and those not all zero when freed
 *              (tu_free_nonzero); libcurl's blocks come through here once
 *              they are allocated by cleanse_alloc.h
 *   cmk_deadline_now_ms  (the library's own clock, deadline.h) runs
 *              tu_clock_skew_ms ahead for callers outside deadline.c: a
 *              test moves time on for what measures runs (credreload.c)
 *              without touching the deadlines themselves
 */
#ifndef CMK_TESTUTIL_H
#define CMK_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

extern long tu_pwrite_budget;		/* -1: unlimited */
extern int tu_getrandom_fixed;
extern int tu_getrandom_calls;
extern bool tu_munmap_inspect;
extern int tu_munmap_count;
extern bool tu_munmap_data_zero;
#define TU_FSYNC_MAX 64
extern bool tu_fsync_record;
extern int tu_fsync_count;
extern int tu_fadvise_dontneed;
extern uint64_t tu_clock_skew_ms;
extern bool tu_free_inspect;
extern _Atomic int tu_free_count;
extern _Atomic int tu_free_nonzero;
/* tu_fsynced() - was @path (resolved with realpath) fsync'd while recording? */
bool tu_fsynced(const char *path);

/* A fresh temporary directory per test, removed by tu_teardown_tmpdir. */
int tu_setup_tmpdir(void **state);
int tu_teardown_tmpdir(void **state);
const char *tu_tmpdir(void);
/* tu_path() - "<tmpdir>/<name>" in a static rotating buffer. */
const char *tu_path(const char *name);

/* Write/read whole files (test-only, abort on failure). */
void tu_write_file(const char *path, const void *data, size_t len, mode_t mode);
char *tu_read_file(const char *path, size_t *len);

/* tu_secret_of() - a new secret holding the bytes of @s (without its NUL) */
struct cmk_secret;
struct cmk_secret *tu_secret_of(const char *s);

/* assert that haystack contains needle, printing both on failure */
#define assert_contains(hay, needle) \
	_tu_assert_contains((hay), (needle), __FILE__, __LINE__)
void _tu_assert_contains(const char *hay, const char *needle, const char *file,
			 int line);

/*
 * A plain HTTP/1.1 peer on 127.0.0.1 for provider tests: a thread that
 * answers every request with @answer (a whole response; send
 * "Connection: close") after calling @on_request(@arg, n) (n from 1),
 * until tu_peer_stop().  @url is "http://127.0.0.1:<port>".
 */
struct tu_peer {
	int lfd;
	char url[64];
	const char *answer;
	void (*on_request)(void *arg, int n);
	void *arg;
	_Atomic int requests;
	_Atomic bool stop;
	unsigned long thread;
};
void tu_peer_start(struct tu_peer *p, const char *answer,
		   void (*on_request)(void *arg, int n), void *arg);
void tu_peer_stop(struct tu_peer *p);

#endif
