// SPDX-License-Identifier: GPL-2.0
/*
 * testutil.c - helpers and libc wrappers for the unit tests (testutil.h).
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <malloc.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/secret.h"

long tu_pwrite_budget = -1;
int tu_getrandom_fixed;
int tu_getrandom_calls;
bool tu_munmap_inspect;
int tu_munmap_count;
bool tu_munmap_data_zero;
bool tu_fsync_record;
char tu_fsync_paths[TU_FSYNC_MAX][PATH_MAX];
int tu_fsync_count;
int tu_fadvise_dontneed;
bool tu_free_inspect;
_Atomic int tu_free_count;
_Atomic int tu_free_nonzero;

uint64_t tu_clock_skew_ms;

uint64_t __real_cmk_deadline_now_ms(void);
uint64_t __wrap_cmk_deadline_now_ms(void);
uint64_t __wrap_cmk_deadline_now_ms(void)
{
	return __real_cmk_deadline_now_ms() + tu_clock_skew_ms;
}

ssize_t __real_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t __real_getrandom(void *buf, size_t n, unsigned int flags);
ssize_t __wrap_getrandom(void *buf, size_t n, unsigned int flags);
int __real_munmap(void *addr, size_t len);
int __wrap_munmap(void *addr, size_t len);
int __real_posix_fadvise(int fd, off_t off, off_t len, int advice);
int __wrap_posix_fadvise(int fd, off_t off, off_t len, int advice);
int __real_fsync(int fd);
int __wrap_fsync(int fd);
void __real_free(void *p);
void __wrap_free(void *p);

void __wrap_free(void *p)
{
	if (tu_free_inspect && p) {
		const unsigned char *b = p;
		size_t n = malloc_usable_size(p);
		unsigned char acc = 0;

		for (size_t i = 0; i < n; i++)
			acc |= b[i];
		tu_free_count++;
		if (acc)
			tu_free_nonzero++;
	}
	__real_free(p);
}

int __wrap_fsync(int fd)
{
	char link[64];
	ssize_t n;
	int ret = __real_fsync(fd);

	if (ret || !tu_fsync_record || tu_fsync_count >= TU_FSYNC_MAX)
		return ret;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, tu_fsync_paths[tu_fsync_count], PATH_MAX - 1);
	if (n > 0) {
		tu_fsync_paths[tu_fsync_count][n] = '\0';
		tu_fsync_count++;
	}
	return ret;
}

int __wrap_posix_fadvise(int fd, off_t off, off_t len, int advice)
{
	int ret = __real_posix_fadvise(fd, off, len, advice);

	if (!ret && advice == POSIX_FADV_DONTNEED)
		tu_fadvise_dontneed++;
	return ret;
}

bool tu_fsynced(const char *path)
{
	char real[PATH_MAX];

	if (!realpath(path, real))
		return false;
	for (int i = 0; i < tu_fsync_count; i++)
		if (!strcmp(tu_fsync_paths[i], real))
			return true;
	return false;
}

ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	ssize_t w;

	if (tu_pwrite_budget < 0)
		return __real_pwrite(fd, buf, n, off);
	if (tu_pwrite_budget == 0) {
		errno = EIO;
		return -1;
	}
	if ((long)n > tu_pwrite_budget)
		n = (size_t)tu_pwrite_budget;
	w = __real_pwrite(fd, buf, n, off);
	if (w > 0)
		tu_pwrite_budget -= w;
	return w;
}

ssize_t __wrap_getrandom(void *buf, size_t n, unsigned int flags)
{
	tu_getrandom_calls++;
	if (tu_getrandom_fixed > 0) {
		tu_getrandom_fixed--;
		memset(buf, 0x5a, n);
		return (ssize_t)n;
	}
	return __real_getrandom(buf, n, flags);
}

int __wrap_munmap(void *addr, size_t len)
{
	if (tu_munmap_inspect) {
		size_t pg = (size_t)sysconf(_SC_PAGESIZE);
		const unsigned char *p = (const unsigned char *)addr + pg;
		unsigned char acc = 0;

		/* data pages lie between the two guard pages */
		for (size_t i = 0; i < len - 2 * pg; i++)
			acc |= p[i];
		tu_munmap_data_zero = acc == 0;
		tu_munmap_count++;
	}
	return __real_munmap(addr, len);
}

static char tmpdir[256];

int tu_setup_tmpdir(void **state)
{
	const char *base = getenv("TMPDIR");

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/cmk-unit.XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(tmpdir))
		return -1;
	tu_pwrite_budget = -1;
	tu_getrandom_fixed = 0;
	tu_munmap_inspect = false;
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int tu_teardown_tmpdir(void **state)
{
	(void)state;
	tu_pwrite_budget = -1;
	tu_getrandom_fixed = 0;
	tu_munmap_inspect = false;
	return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *tu_tmpdir(void)
{
	return tmpdir;
}

const char *tu_path(const char *name)
{
	static char bufs[4][512];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, 512, "%s/%s", tmpdir, name);
	return b;
}

void tu_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

char *tu_read_file(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long len;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len] = '\0';
	fclose(f);
	if (lenp)
		*lenp = (size_t)len;
	return buf;
}

void _tu_assert_contains(const char *hay, const char *needle, const char *file,
			 int line)
{
	if (!hay || !strstr(hay, needle)) {
		print_error("%s:%d: expected \"%s\" in \"%s\"\n", file, line,
			    needle, hay ? hay : "(null)");
		_fail(file, line);
	}
}

struct cmk_secret *tu_secret_of(const char *s)
{
	struct cmk_secret *x = NULL;
	struct cmk_err e;

	assert_int_equal(cmk_secret_new(&x, strlen(s), &e), 0);
	memcpy(cmk_secret_data(x), s, strlen(s));
	return x;
}

/* ---- a plain HTTP peer on loopback (testutil.h) ----------------------------- */

/* Read one request: the head, then Content-Length bytes of body. */
static void peer_read_request(int fd)
{
	char buf[16384];
	size_t got = 0, want = 0;

	while (got < sizeof(buf) - 1) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t n;
		char *end, *cl;

		if (poll(&pf, 1, 5000) != 1)
			return;
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			return;
		got += (size_t)n;
		buf[got] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		cl = strcasestr(buf, "\r\nContent-Length:");
		want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
		if (got >= want)
			return;
	}
}

static void *peer_main(void *arg)
{
	struct tu_peer *p = arg;

	while (!p->stop) {
		struct pollfd pf = { .fd = p->lfd, .events = POLLIN };
		ssize_t w;
		int fd;

		if (poll(&pf, 1, 100) != 1)
			continue;
		fd = accept(p->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		peer_read_request(fd);
		if (p->on_request)
			p->on_request(p->arg, ++p->requests);
		else
			++p->requests;
		w = write(fd, p->answer, strlen(p->answer));
		(void)w;	/* a client that hung up: its problem */
		close(fd);
	}
	return NULL;
}

void tu_peer_start(struct tu_peer *p, const char *answer,
		   void (*on_request)(void *arg, int n), void *arg)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	pthread_t t;

	memset(p, 0, sizeof(*p));
	p->answer = answer;
	p->on_request = on_request;
	p->arg = arg;
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(p->lfd >= 0);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(p->lfd, 8), 0);
	assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&a, &al), 0);
	snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%u", ntohs(a.sin_port));
	assert_int_equal(pthread_create(&t, NULL, peer_main, p), 0);
	p->thread = (unsigned long)t;
}

void tu_peer_stop(struct tu_peer *p)
{
	p->stop = true;
	pthread_join((pthread_t)p->thread, NULL);
	close(p->lfd);
}
