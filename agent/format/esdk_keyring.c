// SPDX-License-Identifier: GPL-2.0
/*
 * esdk_keyring.c - storage wrapping key and raw-AES-keyring EDKs
 * (see esdk_keyring.h).
 */
#include "format/esdk_keyring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "core/random.h"

#define TAG_BITS	(CMK_ESDK_EDK_TAG_LEN * 8)

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

int cmk_esdk_wrapkey_derive(const struct cmk_secret *kek,
			    const uint8_t kek_id[CMK_UUID_LEN],
			    uint32_t kek_version, struct cmk_esdk_wrapkey *wk,
			    struct cmk_err *e)
{
	unsigned char info[sizeof(CMK_ESDK_WRAPKEY_LABEL) + CMK_UUID_LEN + 4];
	char uuid[CMK_UUID_STR];
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[4], *p = params;
	int ret;

	memset(wk, 0, sizeof(*wk));
	if (cmk_secret_len(kek) != 32)
		return cmk_errf(e, -EINVAL,
				"storage wrapping key: the KEK has %zu bytes, not 32",
				cmk_secret_len(kek));
	/* sizeof() counts the label's NUL: it is the 0x00 separator. */
	memcpy(info, CMK_ESDK_WRAPKEY_LABEL, sizeof(CMK_ESDK_WRAPKEY_LABEL));
	memcpy(info + sizeof(CMK_ESDK_WRAPKEY_LABEL), kek_id, CMK_UUID_LEN);
	put_be32(info + sizeof(CMK_ESDK_WRAPKEY_LABEL) + CMK_UUID_LEN,
		 kek_version);

	ret = cmk_secret_new(&wk->key, CMK_ESDK_WRAPKEY_LEN, e);
	if (ret)
		goto out;
	kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	if (!kctx) {
		ret = cmk_errf(e, -ENOMEM, "storage wrapping key: OpenSSL has no HKDF");
		goto out;
	}
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						(char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						 (void *)cmk_secret_cdata(kek),
						 cmk_secret_len(kek));
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info,
						 sizeof(info));
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, cmk_secret_data(wk->key), CMK_ESDK_WRAPKEY_LEN,
			   params) != 1) {
		ret = cmk_errf(e, -EIO, "storage wrapping key: HKDF-SHA256 failed");
		goto out;
	}
	cmk_uuid_format(kek_id, uuid);
	snprintf(wk->name, sizeof(wk->name), "kek/%s/v%u", uuid, kek_version);
	ret = 0;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	if (ret)
		cmk_esdk_wrapkey_free(wk);
	return ret;
}

void cmk_esdk_wrapkey_free(struct cmk_esdk_wrapkey *wk)
{
	cmk_secret_free(&wk->key);
	memset(wk->name, 0, sizeof(wk->name));
}

void cmk_esdk_edk_free(struct cmk_esdk_edk *edk)
{
	free(edk->provider_id);
	free(edk->info);
	free(edk->ct);
	memset(edk, 0, sizeof(*edk));
}

/* One AES-256-GCM operation on a short buffer; @enc selects the direction. */
static int gcm_once(bool enc, const unsigned char *key, const unsigned char *iv,
		    const unsigned char *aad, size_t aad_len,
		    const unsigned char *in, size_t len, unsigned char *out,
		    unsigned char *tag)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n, ok = 0;

	if (!c)
		return 0;
	if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv, enc) != 1)
		goto out;
	if (aad_len && EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) != 1)
		goto out;
	if (EVP_CipherUpdate(c, out, &n, in, (int)len) != 1)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG,
					CMK_ESDK_EDK_TAG_LEN, tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(c, out + n, &n) != 1)
		goto out;
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG,
				       CMK_ESDK_EDK_TAG_LEN, tag) != 1)
		goto out;
	ok = 1;
out:
	EVP_CIPHER_CTX_free(c);
	return ok;
}

int cmk_esdk_edk_wrap(const struct cmk_esdk_wrapkey *wk,
		      const struct cmk_secret *data_key,
		      const unsigned char *ec, size_t ec_len,
		      struct cmk_esdk_edk *edk, struct cmk_err *e)
{
	size_t nlen = strlen(wk->name), klen = cmk_secret_len(data_key);
	unsigned char *iv;
	int ret;

	memset(edk, 0, sizeof(*edk));
	edk->provider_id_len = strlen(CMK_ESDK_KEY_NAMESPACE);
	edk->provider_id = malloc(edk->provider_id_len);
	edk->info_len = nlen + 8 + CMK_ESDK_EDK_IV_LEN;
	edk->info = malloc(edk->info_len);
	edk->ct_len = klen + CMK_ESDK_EDK_TAG_LEN;
	edk->ct = malloc(edk->ct_len);
	if (!edk->provider_id || !edk->info || !edk->ct) {
		ret = cmk_errf(e, -ENOMEM, "EDK for %s: out of memory", wk->name);
		goto out;
	}
	memcpy(edk->provider_id, CMK_ESDK_KEY_NAMESPACE, edk->provider_id_len);
	memcpy(edk->info, wk->name, nlen);
	put_be32(edk->info + nlen, TAG_BITS);
	put_be32(edk->info + nlen + 4, CMK_ESDK_EDK_IV_LEN);
	iv = edk->info + nlen + 8;
	/*
	 * getrandom(), not OpenSSL's DRBG: two clones of a VM snapshot share
	 * the DRBG's state until it reseeds, and the same IV under the same
	 * wrapping key breaks AES-GCM; the kernel reseeds on VM generation.
	 */
	ret = cmk_random_fill(iv, CMK_ESDK_EDK_IV_LEN, "EDK IV", e);
	if (ret)
		goto out;
	if (!gcm_once(true, cmk_secret_cdata(wk->key), iv, ec, ec_len,
		      cmk_secret_cdata(data_key), klen, edk->ct, edk->ct + klen)) {
		ret = cmk_errf(e, -EIO, "EDK for %s: AES-GCM wrap failed", wk->name);
		goto out;
	}
	ret = 0;
out:
	if (ret)
		cmk_esdk_edk_free(edk);
	return ret;
}

bool cmk_esdk_edk_for(const struct cmk_esdk_wrapkey *wk,
		      const struct cmk_esdk_edk *edk)
{
	size_t nlen = strlen(wk->name);

	return edk->provider_id_len == strlen(CMK_ESDK_KEY_NAMESPACE) &&
	       !memcmp(edk->provider_id, CMK_ESDK_KEY_NAMESPACE,
		       edk->provider_id_len) &&
	       edk->info_len == nlen + 8 + CMK_ESDK_EDK_IV_LEN &&
	       !memcmp(edk->info, wk->name, nlen) &&
	       get_be32(edk->info + nlen) == TAG_BITS &&
	       get_be32(edk->info + nlen + 4) == CMK_ESDK_EDK_IV_LEN;
}

int cmk_esdk_edk_key_name(const struct cmk_esdk_edk *edk,
			  char name[CMK_ESDK_KEY_NAME_MAX])
{
	size_t nlen;

	if (edk->provider_id_len != strlen(CMK_ESDK_KEY_NAMESPACE) ||
	    memcmp(edk->provider_id, CMK_ESDK_KEY_NAMESPACE, edk->provider_id_len) ||
	    edk->info_len < 8 + CMK_ESDK_EDK_IV_LEN)
		return -ENOENT;
	nlen = edk->info_len - 8 - CMK_ESDK_EDK_IV_LEN;
	if (!nlen || nlen >= CMK_ESDK_KEY_NAME_MAX || memchr(edk->info, 0, nlen))
		return -ENOENT;
	memcpy(name, edk->info, nlen);
	name[nlen] = 0;
	return 0;
}

int cmk_esdk_key_name_parse(const char *name, uint8_t kek_id[CMK_UUID_LEN],
			    uint32_t *kek_version)
{
	char uuid[CMK_UUID_STR], canon[CMK_ESDK_KEY_NAME_MAX];
	unsigned long v;
	char *end;

	if (strncmp(name, "kek/", 4) || strlen(name) < 4 + 36 + 3 ||
	    name[40] != '/' || name[41] != 'v' || name[42] < '1' || name[42] > '9')
		return -EINVAL;
	memcpy(uuid, name + 4, 36);
	uuid[36] = 0;
	if (cmk_uuid_parse(uuid, kek_id))
		return -EINVAL;
	errno = 0;
	v = strtoul(name + 42, &end, 10);
	if (errno || *end || v > 0x7fffffff)
		return -EINVAL;
	*kek_version = (uint32_t)v;
	/* Only the spelling the sealer writes (lower-case UUID, no padding). */
	cmk_uuid_format(kek_id, uuid);
	snprintf(canon, sizeof(canon), "kek/%s/v%u", uuid, *kek_version);
	return strcmp(canon, name) ? -EINVAL : 0;
}

int cmk_esdk_edk_unwrap(const struct cmk_esdk_wrapkey *wk,
			const struct cmk_esdk_edk *edk,
			const unsigned char *ec, size_t ec_len,
			struct cmk_secret **data_key, struct cmk_err *e)
{
	size_t nlen = strlen(wk->name);
	unsigned char tag[CMK_ESDK_EDK_TAG_LEN];
	int ret;

	*data_key = NULL;
	if (!cmk_esdk_edk_for(wk, edk))
		return cmk_errf(e, -EINVAL, "EDK is not one of keyring %s/%s",
				CMK_ESDK_KEY_NAMESPACE, wk->name);
	if (edk->ct_len != CMK_ESDK_DATA_KEY_LEN + CMK_ESDK_EDK_TAG_LEN)
		return cmk_errf(e, -EBADMSG,
				"EDK of %s: Encrypted Data Key has %zu bytes, expected %d (a 32-byte data key and its tag)",
				wk->name, edk->ct_len,
				CMK_ESDK_DATA_KEY_LEN + CMK_ESDK_EDK_TAG_LEN);
	ret = cmk_secret_new(data_key, CMK_ESDK_DATA_KEY_LEN, e);
	if (ret)
		return ret;
	memcpy(tag, edk->ct + CMK_ESDK_DATA_KEY_LEN, sizeof(tag));
	if (!gcm_once(false, cmk_secret_cdata(wk->key), edk->info + nlen + 8,
		      ec, ec_len, edk->ct, CMK_ESDK_DATA_KEY_LEN,
		      cmk_secret_data(*data_key), tag)) {
		cmk_secret_free(data_key);
		return cmk_errf(e, -EBADMSG,
				"EDK of %s does not authenticate: another wrapping key (KEK), another encryption context, or a damaged header",
				wk->name);
	}
	return 0;
}
