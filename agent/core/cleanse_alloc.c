// SPDX-License-Identifier: GPL-2.0
/*
 * cleanse_alloc.c - allocators that wipe on free (see cleanse_alloc.h).
 */
#include "core/cleanse_alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/*
 * The header holds the block's size; 16 bytes keep the user pointer
 * aligned as malloc's (alignof(max_align_t) on the platforms we build for).
 */
#define HDR	16
_Static_assert(HDR >= sizeof(size_t) && HDR % _Alignof(max_align_t) == 0,
	       "header must hold a size and keep malloc's alignment");

static atomic_ulong allocs;

unsigned long cmk_cleanse_allocs(void)
{
	return atomic_load(&allocs);
}

static unsigned char *base_of(const void *p)
{
	return (unsigned char *)p - HDR;
}

size_t cmk_cleanse_size(const void *p)
{
	size_t n;

	if (!p)
		return 0;
	memcpy(&n, base_of(p), sizeof(n));
	return n;
}

static void set_size(unsigned char *b, size_t n)
{
	memcpy(b, &n, sizeof(n));
}

void *cmk_cleanse_malloc(size_t n)
{
	unsigned char *b;

	if (n > SIZE_MAX - HDR)
		return NULL;
	b = malloc(HDR + n);
	if (!b)
		return NULL;
	atomic_fetch_add(&allocs, 1);
	set_size(b, n);
	return b + HDR;
}

void *cmk_cleanse_calloc(size_t nmemb, size_t size)
{
	void *p;

	if (size && nmemb > SIZE_MAX / size)
		return NULL;
	p = cmk_cleanse_malloc(nmemb * size);
	if (p)
		memset(p, 0, nmemb * size);
	return p;
}

void cmk_cleanse_free(void *p)
{
	unsigned char *b;

	if (!p)
		return;
	b = base_of(p);
	OPENSSL_cleanse(b, HDR + cmk_cleanse_size(p));
	free(b);
}

/*
 * Never libc's realloc: it may move the block and leave the old one, with
 * whatever secret it held, on the free list.
 */
void *cmk_cleanse_realloc(void *p, size_t n)
{
	size_t old;
	void *np;

	if (!p)
		return cmk_cleanse_malloc(n);
	old = cmk_cleanse_size(p);
	if (n <= old) {
		OPENSSL_cleanse((unsigned char *)p + n, old - n);
		set_size(base_of(p), n);
		return p;
	}
	np = cmk_cleanse_malloc(n);
	if (!np)
		return NULL;	/* as realloc: the old block stays valid */
	memcpy(np, p, old);
	cmk_cleanse_free(p);
	return np;
}

char *cmk_cleanse_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = cmk_cleanse_malloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}
