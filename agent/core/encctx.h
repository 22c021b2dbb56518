/* SPDX-License-Identifier: GPL-2.0 */
/*
 * encctx.h - the encryption context bound to a wrapped KEK.
 *
 * An encryption context is a small map of string -> string (like AWS KMS's
 * EncryptionContext).  Providers that take a map get the map; providers
 * that take bytes (local, GCP, Azure, KMIP, PKCS#11) get its canonical
 * serialisation as AAD, so the same envelope means the same thing on every
 * provider:
 *
 *   "CMKCTX01"                    8 bytes, ASCII
 *   count                         u32 little-endian
 *   count times, keys ascending by byte value (memcmp order):
 *     key length  u32 LE, key bytes (UTF-8, no NUL)
 *     value length u32 LE, value bytes (UTF-8, no NUL)
 *
 * Keys are unique, 1..128 bytes; values 0..1024 bytes; at most 32 pairs;
 * no control characters anywhere.  See Documentation/formats.rst.
 */
#ifndef CMK_ENCCTX_H
#define CMK_ENCCTX_H

#include <stddef.h>

#include "core/err.h"

#define CMK_ENCCTX_MAX_PAIRS	32
#define CMK_ENCCTX_MAX_KEY	128
#define CMK_ENCCTX_MAX_VALUE	1024
#define CMK_ENCCTX_MAGIC	"CMKCTX01"

struct cmk_encctx_pair {
	char *key;
	char *value;
};

/* Pairs are always kept sorted by key (memcmp order), keys unique. */
struct cmk_encctx {
	size_t n;
	struct cmk_encctx_pair pairs[CMK_ENCCTX_MAX_PAIRS];
};

void cmk_encctx_init(struct cmk_encctx *c);
void cmk_encctx_free(struct cmk_encctx *c);

/* cmk_encctx_add() - copy and insert a pair; duplicates and bad strings fail. */
int cmk_encctx_add(struct cmk_encctx *c, const char *key, const char *value,
		   struct cmk_err *e);

/* cmk_encctx_copy() - deep copy of @src into (initialised, empty) @dst. */
int cmk_encctx_copy(struct cmk_encctx *dst, const struct cmk_encctx *src,
		    struct cmk_err *e);

/* cmk_encctx_get() - value for @key or NULL. */
const char *cmk_encctx_get(const struct cmk_encctx *c, const char *key);

/* cmk_encctx_canonical() - the AAD bytes above; *out is malloc'd. */
int cmk_encctx_canonical(const struct cmk_encctx *c, unsigned char **out,
			 size_t *len, struct cmk_err *e);

#endif /* CMK_ENCCTX_H */
