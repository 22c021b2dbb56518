// SPDX-License-Identifier: GPL-2.0
/*
 * provider_util.c - steps the cloud providers share (see provider_util.h).
 */
#include "kms/provider_util.h"

#include <openssl/evp.h>

#include "core/json_secret.h"

enum cmk_reason cmk_http_status_reason(long status)
{
	if (status == 429)
		return CMK_R_THROTTLED;
	if (status >= 500)
		return CMK_R_UNAVAILABLE;
	if (status == 401 || status == 403)
		return CMK_R_DENIED;
	if (status >= 300 && status < 400)
		return CMK_R_NETWORK;	/* a redirecting proxy or portal */
	return CMK_R_LOCAL;
}

int cmk_kms_plaintext_body(const char *name, const struct cmk_secret *plain,
			   struct json_object *rest, struct cmk_secret **body,
			   size_t *body_len, const char *what,
			   struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *b64 = NULL;
	size_t n = cmk_secret_len(plain), bl = 4 * ((n + 2) / 3);
	int ret;

	ret = cmk_secret_new(&b64, bl + 1, e);
	if (ret)
		return ret;
	EVP_EncodeBlock(cmk_secret_data(b64), cmk_secret_cdata(plain), (int)n);
	return cmk_json_secret_body(name, b64, bl, rest, body, body_len, what, e);
}

int cmk_kms_plaintext(struct json_object *resp, const char *name,
		      const char *what, const char *key_ref,
		      struct cmk_secret **plain, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *out = NULL;
	size_t pl = 0, pad = 0;
	const char *p;
	int ret, n;

	*plain = NULL;
	p = cmk_json_str(resp, name, &pl);
	if (!p || pl == 0 || pl % 4 || pl > 8192)
		return cmk_err_kms(e, CMK_R_UNAVAILABLE,
				   "%s %s: the answer has no valid %s", what,
				   key_ref, name);
	if (p[pl - 1] == '=')
		pad = p[pl - 2] == '=' ? 2 : 1;
	ret = cmk_secret_new(&out, pl / 4 * 3, e);
	if (ret)
		return ret;
	n = EVP_DecodeBlock(cmk_secret_data(out), (const unsigned char *)p, (int)pl);
	if (n < 0 || (size_t)n != pl / 4 * 3)
		return cmk_err_kms(e, CMK_R_UNAVAILABLE, "%s %s: %s is not base64",
				   what, key_ref, name);
	ret = cmk_secret_truncate(out, pl / 4 * 3 - pad, e);
	if (ret)
		return ret;
	*plain = out;
	out = NULL;
	return 0;
}
