/* SPDX-License-Identifier: GPL-2.0 */
/*
 * keys.h - generation and checks of the two kinds of keys the agent makes:
 *
 *  KEK  256-bit AES key, wraps DEKs in device headers (AES-256-GCM);
 *  DEK  512-bit AES-256-XTS key of one device (two 256-bit halves that must
 *       differ: the kernel refuses equal halves, and so do we).
 *
 * Both come straight from the kernel CSPRNG (getrandom(2)), into locked
 * secret memory.
 */
#ifndef CMK_KEYS_H
#define CMK_KEYS_H

#include "core/err.h"
#include "core/secret.h"

#define CMK_KEK_LEN	32
#define CMK_DEK_LEN	64	/* == DM_CMK_KEY_LEN */

int cmk_kek_generate(struct cmk_secret **kek, struct cmk_err *e);

/*
 * cmk_dek_generate() - a fresh XTS key whose halves differ (regenerated if
 * the CSPRNG ever returned equal halves).
 */
int cmk_dek_generate(struct cmk_secret **dek, struct cmk_err *e);

/* cmk_dek_check() - 0 if @dek is CMK_DEK_LEN bytes with differing halves. */
int cmk_dek_check(const struct cmk_secret *dek, struct cmk_err *e);

/* cmk_kek_check() - 0 if @kek is CMK_KEK_LEN bytes. */
int cmk_kek_check(const struct cmk_secret *kek, struct cmk_err *e);

#endif /* CMK_KEYS_H */
