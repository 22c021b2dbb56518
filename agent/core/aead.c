// SPDX-License-Identifier: GPL-2.0
/*
 * aead.c - AES-256-GCM seal and open (see aead.h).
 */
#include "core/aead.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/evp.h>

static int gcm(int enc, const struct cmk_secret *key,
	       const unsigned char *nonce, const unsigned char *aad,
	       size_t aad_len, const unsigned char *in, size_t len,
	       unsigned char *out, unsigned char *tag)
{
	EVP_CIPHER_CTX *c;
	int n, ret = -EIO;

	if (cmk_secret_len(key) != CMK_AEAD_KEY_LEN)
		return -EINVAL;
	if (aad_len > INT_MAX || len > INT_MAX)
		return -EINVAL;
	c = EVP_CIPHER_CTX_new();
	if (!c)
		return -EIO;
	if (!EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) ||
	    !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, CMK_AEAD_NONCE_LEN, NULL) ||
	    !EVP_CipherInit_ex(c, NULL, NULL, cmk_secret_cdata(key), nonce, enc) ||
	    !EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) ||
	    !EVP_CipherUpdate(c, out, &n, in, (int)len))
		goto out;
	if (!enc && !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG,
					 CMK_AEAD_TAG_LEN, tag))
		goto out;
	if (!EVP_CipherFinal_ex(c, out + n, &n)) {
		if (!enc)
			ret = -EBADMSG;
		goto out;
	}
	if (enc && !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG,
					CMK_AEAD_TAG_LEN, tag))
		goto out;
	ret = 0;
out:
	EVP_CIPHER_CTX_free(c);	/* cleanses the key schedule */
	return ret;
}

int cmk_aead_seal(const struct cmk_secret *key,
		  const unsigned char nonce[CMK_AEAD_NONCE_LEN],
		  const unsigned char *aad, size_t aad_len,
		  const unsigned char *in, size_t len, unsigned char *out,
		  unsigned char tag[CMK_AEAD_TAG_LEN])
{
	return gcm(1, key, nonce, aad, aad_len, in, len, out, tag);
}

int cmk_aead_open(const struct cmk_secret *key,
		  const unsigned char nonce[CMK_AEAD_NONCE_LEN],
		  const unsigned char *aad, size_t aad_len,
		  const unsigned char *in, size_t len, unsigned char *out,
		  const unsigned char tag[CMK_AEAD_TAG_LEN])
{
	unsigned char t[CMK_AEAD_TAG_LEN];

	/* EVP takes the expected tag through a non-const pointer. */
	memcpy(t, tag, sizeof(t));
	return gcm(0, key, nonce, aad, aad_len, in, len, out, t);
}
