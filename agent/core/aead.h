/* SPDX-License-Identifier: GPL-2.0 */
/*
 * aead.h - AES-256-GCM with a 12-byte nonce and a 16-byte tag, through
 * OpenSSL's EVP interface: the one authenticated cipher the agent runs
 * itself (the device header's DEK wrap, formats.rst; the local provider's
 * key file wrap).  Choosing a fresh nonce is the caller's job.
 */
#ifndef CMK_AEAD_H
#define CMK_AEAD_H

#include <stddef.h>

#include "core/secret.h"

#define CMK_AEAD_KEY_LEN	32
#define CMK_AEAD_NONCE_LEN	12
#define CMK_AEAD_TAG_LEN	16

/*
 * cmk_aead_seal() - encrypt @len bytes at @in into @out (as long) under
 * @key (CMK_AEAD_KEY_LEN bytes) and @nonce, authenticating @aad too; the
 * tag goes to @tag.  Returns 0, -EINVAL for a key of another length, or
 * -EIO if OpenSSL failed.
 */
int cmk_aead_seal(const struct cmk_secret *key,
		  const unsigned char nonce[CMK_AEAD_NONCE_LEN],
		  const unsigned char *aad, size_t aad_len,
		  const unsigned char *in, size_t len, unsigned char *out,
		  unsigned char tag[CMK_AEAD_TAG_LEN]);

/*
 * cmk_aead_open() - decrypt @len bytes at @in into @out and check @tag
 * over them and @aad.  Returns 0, -EBADMSG if the tag does not match
 * (wrong key, nonce or AAD, or changed bytes), -EINVAL for a key of
 * another length, -EIO if OpenSSL failed.  On failure @out holds
 * unauthenticated bytes: the caller wipes it (a struct cmk_secret does).
 */
int cmk_aead_open(const struct cmk_secret *key,
		  const unsigned char nonce[CMK_AEAD_NONCE_LEN],
		  const unsigned char *aad, size_t aad_len,
		  const unsigned char *in, size_t len, unsigned char *out,
		  const unsigned char tag[CMK_AEAD_TAG_LEN]);

#endif /* CMK_AEAD_H */
