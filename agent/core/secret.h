/* SPDX-License-Identifier: GPL-2.0 */
/*
 * secret.h - the one type for secrets (KEKs, DEKs, key files' contents).
 *
 * A struct cmk_secret is an opaque buffer on its own anonymous pages:
 * locked in RAM (mlock), excluded from core dumps (MADV_DONTDUMP), zeroed
 * in children after fork (MADV_WIPEONFORK where the kernel has it), and
 * surrounded by inaccessible guard pages.  cmk_secret_free() wipes it with
 * OPENSSL_cleanse() and unmaps it.
 *
 * Forgetting to wipe is hard because:
 *  - the only way to get writable secret memory is cmk_secret_new() and
 *    friends, which return this type and nothing else;
 *  - the only way to release it is cmk_secret_free(), which always wipes;
 *  - CMK_SECRET_AUTO declares a pointer that is freed (and wiped) when it
 *    goes out of scope, on every path;
 *  - no function of the library copies secret bytes into plain heap or
 *    stack memory except transiently inside OpenSSL calls.
 */
#ifndef CMK_SECRET_H
#define CMK_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

struct cmk_secret;

/* Largest secret the library hands out (a few keys; not bulk data). */
#define CMK_SECRET_MAX	65536

/*
 * cmk_secret_new() - allocate @len zeroed bytes of locked memory.
 * Fails (never falls back to unlocked memory) when mlock() fails: raise
 * RLIMIT_MEMLOCK or grant CAP_IPC_LOCK.
 */
int cmk_secret_new(struct cmk_secret **out, size_t len, struct cmk_err *e);

/* cmk_secret_random() - allocate @len bytes and fill them from getrandom(). */
int cmk_secret_random(struct cmk_secret **out, size_t len, struct cmk_err *e);

/* cmk_secret_dup() - a new secret holding a copy of @s. */
int cmk_secret_dup(struct cmk_secret **out, const struct cmk_secret *s,
		   struct cmk_err *e);

/* cmk_secret_free() - wipe, unlock and unmap *@s, and set *@s to NULL. */
void cmk_secret_free(struct cmk_secret **s);

/* cmk_secret_wipe() - overwrite the contents with zeros, keep the buffer. */
void cmk_secret_wipe(struct cmk_secret *s);

/*
 * cmk_secret_truncate() - shorten the visible length to @len (wiping the
 * tail), e.g. after a decrypt whose output is shorter than its input.
 */
int cmk_secret_truncate(struct cmk_secret *s, size_t len, struct cmk_err *e);

unsigned char *cmk_secret_data(struct cmk_secret *s);
const unsigned char *cmk_secret_cdata(const struct cmk_secret *s);
size_t cmk_secret_len(const struct cmk_secret *s);

/* cmk_secret_equal() - constant-time comparison of two secrets. */
bool cmk_secret_equal(const struct cmk_secret *a, const struct cmk_secret *b);

/* For CMK_SECRET_AUTO; also usable directly. */
static inline void cmk_secret_freep(struct cmk_secret **s)
{
	cmk_secret_free(s);
}

/*
 * CMK_SECRET_AUTO - declare a secret pointer that is wiped and freed when
 * it leaves scope:  CMK_SECRET_AUTO struct cmk_secret *kek = NULL;
 */
#define CMK_SECRET_AUTO __attribute__((cleanup(cmk_secret_freep)))

/*
 * cmk_harden_process() - make this process hard to read secrets from:
 * not dumpable (no core, no ptrace by the same uid), core size 0.
 * Call first thing in every program that handles keys.
 */
int cmk_harden_process(struct cmk_err *e);

#endif /* CMK_SECRET_H */
