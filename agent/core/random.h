/* SPDX-License-Identifier: GPL-2.0 */
/*
 * random.h - bytes from the kernel's CSPRNG (getrandom(2)), the one place
 * that reads it in a loop: a signal or a short read makes it read again,
 * so a caller never gets a buffer that is only partly random.
 */
#ifndef CMK_RANDOM_H
#define CMK_RANDOM_H

#include <stddef.h>

#include "core/err.h"

/*
 * cmk_random_fill() - fill @len bytes at @buf from getrandom(), blocking
 * until the pool is ready.  Returns 0, or -errno (-EIO if the kernel
 * returned no bytes) with "@what: getrandom failed: <why>" in @e.
 */
int cmk_random_fill(void *buf, size_t len, const char *what, struct cmk_err *e);

/*
 * cmk_random_reseed_openssl() - reseed this thread's OpenSSL DRBGs (public
 * and private) with prediction resistance, which in OpenSSL 3.0 reseeds
 * their parent, the primary DRBG, from the OS (getrandom) first.  Call it
 * before anything that makes OpenSSL draw a secret from its DRBG (an
 * ECDSA key or signature, a TLS handshake): OpenSSL notices a fork (the
 * pid changes) but not a VM clone, whose copies share the DRBG state and
 * so would draw the same "random" keys and nonces.  The primary is shared:
 * reseeding it here makes every other thread's DRBGs reseed from it when
 * they next draw.  Costs two 32-byte getrandom() calls.  Returns 0, or
 * -EIO with "@what: ..." in @e.
 */
int cmk_random_reseed_openssl(const char *what, struct cmk_err *e);

#endif /* CMK_RANDOM_H */
