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

#endif /* CMK_RANDOM_H */
