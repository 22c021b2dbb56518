// SPDX-License-Identifier: GPL-2.0
/*
 * secret.c - locked, wiped buffers for key material (see secret.h).
 *
 * Memory layout of one secret (all page aligned):
 *
 *   [ guard page, PROT_NONE ][ data pages, RW, locked ][ guard page ]
 *
 * The struct itself lives at the start of the data pages, so that the
 * length and the bytes share the same protections; the bytes follow it.
 */
#include "core/secret.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/random.h"

struct cmk_secret {
	size_t len;		/* visible length */
	size_t cap;		/* usable bytes after the struct */
	size_t map_len;		/* whole mapping, guards included */
	unsigned char *map;	/* start of the mapping (first guard page) */
	unsigned char data[];
};

static size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

/*
 * mlock(2) as a direct system call: sanitizer runtimes replace the libc
 * wrapper with a no-op, and the unit tests must see the real locking.
 */
static int lock_pages(void *addr, size_t len)
{
	return (int)syscall(SYS_mlock, addr, len);
}

int cmk_secret_new(struct cmk_secret **out, size_t len, struct cmk_err *e)
{
	size_t pg = page_size();
	size_t need, data_len, map_len;
	unsigned char *map;
	struct cmk_secret *s;
	int ret;

	*out = NULL;
	if (len == 0 || len > CMK_SECRET_MAX)
		return cmk_errf(e, -EINVAL,
				"secret: size %zu out of range 1..%d", len,
				CMK_SECRET_MAX);
	need = sizeof(*s) + len;
	data_len = (need + pg - 1) / pg * pg;
	map_len = data_len + 2 * pg;

	map = mmap(NULL, map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return cmk_errf(e, -errno, "secret: mmap of %zu bytes failed: %s",
				map_len, strerror(errno));
	if (mprotect(map + pg, data_len, PROT_READ | PROT_WRITE)) {
		ret = cmk_errf(e, -errno, "secret: mprotect failed: %s",
			       strerror(errno));
		goto out_unmap;
	}
	if (madvise(map + pg, data_len, MADV_DONTDUMP)) {
		ret = cmk_errf(e, -errno,
			       "secret: madvise(MADV_DONTDUMP) failed: %s",
			       strerror(errno));
		goto out_unmap;
	}
#ifdef MADV_WIPEONFORK
	/* Older kernels lack it (EINVAL); the rest of the protection stands. */
	if (madvise(map + pg, data_len, MADV_WIPEONFORK) && errno != EINVAL) {
		ret = cmk_errf(e, -errno,
			       "secret: madvise(MADV_WIPEONFORK) failed: %s",
			       strerror(errno));
		goto out_unmap;
	}
#endif
	if (lock_pages(map + pg, data_len)) {
		ret = cmk_errf(e, -errno,
			       "secret: cannot lock %zu bytes in memory: %s; raise RLIMIT_MEMLOCK (LimitMEMLOCK=) or grant CAP_IPC_LOCK",
			       data_len, strerror(errno));
		goto out_unmap;
	}
	s = (struct cmk_secret *)(map + pg);
	s->len = len;
	s->cap = data_len - sizeof(*s);
	s->map_len = map_len;
	s->map = map;
	*out = s;
	return 0;

out_unmap:
	munmap(map, map_len);
	return ret;
}

int cmk_secret_random(struct cmk_secret **out, size_t len, struct cmk_err *e)
{
	struct cmk_secret *s;
	int ret;

	ret = cmk_secret_new(&s, len, e);
	if (ret)
		return ret;
	ret = cmk_random_fill(s->data, len, "secret", e);
	if (ret) {
		cmk_secret_free(&s);
		return ret;
	}
	*out = s;
	return 0;
}

int cmk_secret_dup(struct cmk_secret **out, const struct cmk_secret *s,
		   struct cmk_err *e)
{
	int ret = cmk_secret_new(out, s->len, e);

	if (ret)
		return ret;
	memcpy((*out)->data, s->data, s->len);
	return 0;
}

void cmk_secret_free(struct cmk_secret **sp)
{
	struct cmk_secret *s = sp ? *sp : NULL;
	unsigned char *map;
	size_t map_len, data_len;

	if (!s)
		return;
	map = s->map;
	map_len = s->map_len;
	data_len = map_len - 2 * page_size();
	/* Wipe the whole data area, struct included, before letting go. */
	OPENSSL_cleanse(s, data_len);
	syscall(SYS_munlock, map + page_size(), data_len);
	munmap(map, map_len);
	*sp = NULL;
}

void cmk_secret_wipe(struct cmk_secret *s)
{
	if (s)
		OPENSSL_cleanse(s->data, s->cap);
}

int cmk_secret_truncate(struct cmk_secret *s, size_t len, struct cmk_err *e)
{
	if (len == 0 || len > s->len)
		return cmk_errf(e, -EINVAL,
				"secret: cannot truncate %zu bytes to %zu",
				s->len, len);
	OPENSSL_cleanse(s->data + len, s->cap - len);
	s->len = len;
	return 0;
}

unsigned char *cmk_secret_data(struct cmk_secret *s)
{
	return s->data;
}

const unsigned char *cmk_secret_cdata(const struct cmk_secret *s)
{
	return s->data;
}

size_t cmk_secret_len(const struct cmk_secret *s)
{
	return s->len;
}

bool cmk_secret_equal(const struct cmk_secret *a, const struct cmk_secret *b)
{
	if (a->len != b->len)
		return false;
	return CRYPTO_memcmp(a->data, b->data, a->len) == 0;
}

int cmk_harden_process(struct cmk_err *e)
{
	struct rlimit no_core = { 0, 0 };

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
		return cmk_errf(e, -errno, "harden: prctl(PR_SET_DUMPABLE, 0) failed: %s",
				strerror(errno));
	if (setrlimit(RLIMIT_CORE, &no_core))
		return cmk_errf(e, -errno, "harden: setrlimit(RLIMIT_CORE, 0) failed: %s",
				strerror(errno));
	return 0;
}
