/* SPDX-License-Identifier: GPL-2.0 */
/*
 * provider_local.h - the "local" provider: a CMK in a key file.
 *
 * FOR DEMOS AND TESTS ONLY, NOT FOR PRODUCTION: the "customer-managed key"
 * is a 32-byte file on the same machine, so whoever can read the file
 * (root, a disk snapshot, a backup) holds the root of trust.
 *
 * key_ref    path of the key file: exactly 32 random bytes, mode 0600
 *            (group/other access is refused).
 * state      "<key file>.state" holds "enabled", "disabled" or "destroyed"
 *            (no file = enabled).  disabled/enabled model a customer
 *            disabling and re-enabling a KMS key; destroyed is final and
 *            also zeroes the key file.
 * wrap       AES-256-GCM under the key file's key, AAD = canonical
 *            encryption context (encctx.h).  Wrapped form:
 *            0x01 | nonce (12) | ciphertext (len of plaintext) | tag (16).
 * errors     disabled -> definitive "key disabled"; destroyed -> definitive
 *            "key destroyed"; missing or unreadable key file -> definitive
 *            "not found"; bad key file (size, mode) -> definitive "denied";
 *            tag mismatch (wrong AAD, wrong key, corrupt) -> definitive
 *            "invalid ciphertext".
 */
#ifndef CMK_PROVIDER_LOCAL_H
#define CMK_PROVIDER_LOCAL_H

#include "core/err.h"
#include "kms/provider.h"

#define CMK_LOCAL_KEY_LEN	32
#define CMK_LOCAL_NONCE_LEN	12
#define CMK_LOCAL_TAG_LEN	16
#define CMK_LOCAL_WRAP_VERSION	0x01
#define CMK_LOCAL_OVERHEAD	(1 + CMK_LOCAL_NONCE_LEN + CMK_LOCAL_TAG_LEN)

extern const struct cmk_provider_ops cmk_provider_local_ops;

enum cmk_local_state {
	CMK_LOCAL_ENABLED,
	CMK_LOCAL_DISABLED,
	CMK_LOCAL_DESTROYED,
};

/* cmk_local_key_create() - new random key file (O_EXCL, 0600, fsync'd). */
int cmk_local_key_create(const char *path, struct cmk_err *e);

/*
 * cmk_local_key_set_state() - write "<path>.state" atomically.  Leaving
 * "destroyed" is refused; entering it zeroes the key file.
 */
int cmk_local_key_set_state(const char *path, enum cmk_local_state state,
			    struct cmk_err *e);

int cmk_local_key_get_state(const char *path, enum cmk_local_state *state,
			    struct cmk_err *e);

const char *cmk_local_state_name(enum cmk_local_state state);

#endif /* CMK_PROVIDER_LOCAL_H */
