/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cleanse_alloc.h - malloc-compatible allocators that wipe every block
 * when it is freed, for libraries that copy our secrets into memory of
 * their own (libcurl: request heads with bearer tokens and signatures,
 * receive buffers with a KEK in a KMS answer; see http.c).
 *
 * Each block carries its size in a header in front of it, so that free
 * knows how much to wipe (OPENSSL_cleanse).  Realloc never lets libc move
 * a block behind our back: growing allocates a new block, copies, and
 * wipes and frees the old one; shrinking wipes the tail in place.  So no
 * copy of a freed block's contents is left on the heap.
 *
 * Only for memory that is handed back through these same functions: a
 * pointer from plain malloc() must never reach cmk_cleanse_free().
 */
#ifndef CMK_CLEANSE_ALLOC_H
#define CMK_CLEANSE_ALLOC_H

#include <stddef.h>

void *cmk_cleanse_malloc(size_t n);
void *cmk_cleanse_calloc(size_t nmemb, size_t size);
void *cmk_cleanse_realloc(void *p, size_t n);
char *cmk_cleanse_strdup(const char *s);
void cmk_cleanse_free(void *p);

/*
 * cmk_cleanse_allocs() - blocks allocated so far: whoever hands these
 * functions to a library can see that the library really uses them.
 */
unsigned long cmk_cleanse_allocs(void);

/* cmk_cleanse_size() - the size last asked for block @p (0 for NULL). */
size_t cmk_cleanse_size(const void *p);

#endif /* CMK_CLEANSE_ALLOC_H */
