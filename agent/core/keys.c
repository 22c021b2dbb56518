// SPDX-License-Identifier: GPL-2.0
/*
 * keys.c - KEK and DEK generation (see keys.h).
 */
#include "core/keys.h"

#include <errno.h>

#include <openssl/crypto.h>

int cmk_kek_generate(struct cmk_secret **kek, struct cmk_err *e)
{
	return cmk_secret_random(kek, CMK_KEK_LEN, e);
}

int cmk_dek_check(const struct cmk_secret *dek, struct cmk_err *e)
{
	const unsigned char *k;

	if (cmk_secret_len(dek) != CMK_DEK_LEN)
		return cmk_errf(e, -EINVAL, "DEK: length %zu, expected %d",
				cmk_secret_len(dek), CMK_DEK_LEN);
	k = cmk_secret_cdata(dek);
	if (CRYPTO_memcmp(k, k + CMK_DEK_LEN / 2, CMK_DEK_LEN / 2) == 0)
		return cmk_errf(e, -EINVAL,
				"DEK: the two AES-XTS halves are equal; refusing it");
	return 0;
}

int cmk_kek_check(const struct cmk_secret *kek, struct cmk_err *e)
{
	if (cmk_secret_len(kek) != CMK_KEK_LEN)
		return cmk_errf(e, -EINVAL, "KEK: length %zu, expected %d",
				cmk_secret_len(kek), CMK_KEK_LEN);
	return 0;
}

int cmk_dek_generate(struct cmk_secret **dek, struct cmk_err *e)
{
	/* Equal halves have probability 2^-256; a few tries is plenty. */
	for (int tries = 0; tries < 4; tries++) {
		int ret = cmk_secret_random(dek, CMK_DEK_LEN, e);

		if (ret)
			return ret;
		if (cmk_dek_check(*dek, NULL) == 0)
			return 0;
		cmk_secret_free(dek);
	}
	return cmk_errf(e, -EIO,
			"DEK: the random generator returned equal XTS halves repeatedly; it is broken");
}
