// SPDX-License-Identifier: GPL-2.0
/*
 * provider_gcp.c - Google Cloud KMS provider (see provider_gcp.h,
 * Documentation/gcp.rst).
 */
#include "provider_gcp.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "json_secret.h"
#include "codec.h"
#include "crc32c.h"
#include "gcp_auth.h"
#include "http.h"
#include "settings.h"

static const char *const gcp_settings[] = {
	"key_name", "endpoint", "credentials", "service_account_key",
	"metadata_endpoint", "service_account", "ca_bundle",
	"connect_timeout_ms", "timeout_ms", "max_attempts", NULL,
};

struct gcp {
	char endpoint[512];		/* no trailing slash */
	char *key_name;			/* pinned CryptoKey, or NULL */
	char *ca_bundle;
	struct cmk_http_opts http;
	struct cmk_gcp_token_src tok;
};

/* ---- error classification -------------------------------------------------- */

static const struct {
	const char *status;
	enum cmk_reason reason;
} gcp_codes[] = {
	{ "FAILED_PRECONDITION",	CMK_R_DISABLED },
	{ "PERMISSION_DENIED",		CMK_R_DENIED },
	{ "UNAUTHENTICATED",		CMK_R_DENIED },
	{ "NOT_FOUND",			CMK_R_NOT_FOUND },
	{ "UNAVAILABLE",		CMK_R_UNAVAILABLE },
	{ "INTERNAL",			CMK_R_UNAVAILABLE },
	{ "ABORTED",			CMK_R_UNAVAILABLE },
	{ "UNKNOWN",			CMK_R_UNAVAILABLE },
	{ "RESOURCE_EXHAUSTED",		CMK_R_THROTTLED },
	{ "DEADLINE_EXCEEDED",		CMK_R_TIMEOUT },
	{ "INVALID_ARGUMENT",		CMK_R_LOCAL },	/* refined below */
};

#define N_CODES (sizeof(gcp_codes) / sizeof(gcp_codes[0]))

static void clean(const char *in, size_t n, char *out, size_t len, bool space_ok)
{
	if (n >= len)
		n = len - 1;
	/* Only printable ASCII reaches messages and audit lines. */
	for (size_t i = 0; i < n; i++)
		out[i] = ((space_ok ? in[i] >= ' ' : in[i] > ' ') && in[i] < 0x7f) ?
			 in[i] : '?';
	out[n] = '\0';
}

enum cmk_reason cmk_gcp_classify(long status, const char *body, size_t body_len,
				 struct cmk_gcp_error *out)
{
	struct cmk_gcp_error tmp;
	struct json_object *o = NULL, *err, *v;
	enum cmk_reason why = CMK_R_NONE;
	bool found = false;

	if (!out)
		out = &tmp;
	out->status[0] = out->message[0] = '\0';
	if (status >= 200 && status <= 299)
		return CMK_R_NONE;
	if (body && body_len)
		o = cmk_json_parse_wiped(body, body_len);
	if (o && json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "error", &err) &&
	    json_object_is_type(err, json_type_object)) {
		if (json_object_object_get_ex(err, "status", &v) &&
		    json_object_is_type(v, json_type_string))
			clean(json_object_get_string(v), (size_t)json_object_get_string_len(v),
			      out->status, sizeof(out->status), false);
		if (json_object_object_get_ex(err, "message", &v) &&
		    json_object_is_type(v, json_type_string))
			clean(json_object_get_string(v), (size_t)json_object_get_string_len(v),
			      out->message, sizeof(out->message), true);
	}
	cmk_json_put_wiped(o);
	for (size_t i = 0; i < N_CODES && out->status[0]; i++) {
		if (strcmp(gcp_codes[i].status, out->status))
			continue;
		why = gcp_codes[i].reason;
		found = true;
		break;
	}
	if (found && why == CMK_R_DISABLED &&
	    (strstr(out->message, "DESTROYED") || strstr(out->message, "DESTROY_SCHEDULED")))
		why = CMK_R_DESTROYED;
	if (found && !strcmp(out->status, "INVALID_ARGUMENT")) {
		if (strcasestr(out->message, "checksum"))
			why = CMK_R_UNAVAILABLE;	/* corrupted on the way */
		else if (strcasestr(out->message, "Decryption failed"))
			why = CMK_R_INVALID_CIPHERTEXT;
	}
	if (found)
		return why;
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

/* ---- names ----------------------------------------------------------------------- */

/* One resource-id segment: letters, digits, '_' and '-', 1..63. */
static const char *segment(const char *p)
{
	size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");

	return n >= 1 && n <= 63 ? p + n : NULL;
}

int cmk_gcp_key_name_ok(const char *ref)
{
	static const char *const parts[] = {
		"projects/", "/locations/", "/keyRings/", "/cryptoKeys/",
	};
	const char *p = ref;

	if (!ref)
		return 0;
	for (size_t i = 0; i < 4; i++) {
		size_t n = strlen(parts[i]);

		if (strncmp(p, parts[i], n))
			return 0;
		p = segment(p + n);
		if (!p)
			return 0;
	}
	return *p == '\0';
}

/* ---- open/close --------------------------------------------------------------- */

static void gcp_close(void *priv)
{
	struct gcp *g = priv;

	if (!g)
		return;
	cmk_gcp_token_src_free(&g->tok);
	free(g->key_name);
	free(g->ca_bundle);
	free(g);
}

static int set_endpoint(struct gcp *g, const char *ep, struct cmk_err *e)
{
	size_t n;

	if (strncmp(ep, "https://", 8) && strncmp(ep, "http://", 7))
		return cmk_errf(e, -EINVAL, "gcp: endpoint \"%s\" is not an http(s) URL", ep);
	if (strpbrk(ep, "?#@ \t") || strlen(ep) >= sizeof(g->endpoint))
		return cmk_errf(e, -EINVAL,
				"gcp: endpoint \"%s\" is too long or has a query, fragment or user part",
				ep);
	snprintf(g->endpoint, sizeof(g->endpoint), "%s", ep);
	n = strlen(g->endpoint);
	while (n && g->endpoint[n - 1] == '/')
		g->endpoint[--n] = '\0';
	/* gcloud's override names the versioned root: ".../v1/" */
	if (n > 3 && !strcmp(g->endpoint + n - 3, "/v1"))
		g->endpoint[n - 3] = '\0';
	return 0;
}

static int gcp_open(const struct cmk_kv *kv, size_t n, void **priv,
		    struct cmk_err *e)
{
	const char *endpoint = NULL, *mode = NULL, *keyfile = NULL, *md = NULL,
		   *account = NULL, *ca = NULL, *v;
	struct gcp *g;
	int ret = 0;

	g = calloc(1, sizeof(*g));
	if (!g)
		return cmk_errf(e, -ENOMEM, "gcp: out of memory");
	for (size_t i = 0; i < n && !ret; i++) {
		const char *k = kv[i].key;

		v = kv[i].value;
		if (!strcmp(k, "endpoint"))
			endpoint = v;
		else if (!strcmp(k, "credentials"))
			mode = v;
		else if (!strcmp(k, "service_account_key"))
			keyfile = v;
		else if (!strcmp(k, "metadata_endpoint"))
			md = v;
		else if (!strcmp(k, "service_account"))
			account = v;
		else if (!strcmp(k, "ca_bundle"))
			ca = v;
		else if (!strcmp(k, "key_name")) {
			if (!cmk_gcp_key_name_ok(v)) {
				ret = cmk_errf(e, -EINVAL,
					       "gcp: key_name \"%s\" is not projects/P/locations/L/keyRings/R/cryptoKeys/K",
					       v);
				break;
			}
			free(g->key_name);
			g->key_name = strdup(v);
			if (!g->key_name)
				ret = cmk_errf(e, -ENOMEM, "gcp: out of memory");
		} else {
			ret = cmk_http_setting("gcp", k, v, &g->http, e);
		}
	}
	if (ret)
		goto out;
	/* The variable gcloud reads, so both talk to the same endpoint. */
	if (!endpoint)
		endpoint = cmk_env_nonempty("CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS");
	ret = set_endpoint(g, endpoint ? endpoint : CMK_GCP_ENDPOINT_DEFAULT, e);
	if (ret)
		goto out;
	if (!ca)
		ca = cmk_env_nonempty("CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE");
	if (ca) {
		if (access(ca, R_OK)) {
			ret = cmk_errf(e, -ENOENT, "gcp: ca_bundle %s is not readable", ca);
			goto out;
		}
		g->ca_bundle = strdup(ca);
		if (!g->ca_bundle) {
			ret = cmk_errf(e, -ENOMEM, "gcp: out of memory");
			goto out;
		}
		g->http.ca_bundle = g->ca_bundle;
	}
	ret = cmk_gcp_token_src_init(&g->tok, mode, keyfile, md, account, &g->http, e);
out:
	if (ret) {
		gcp_close(g);
		return ret;
	}
	*priv = g;
	return 0;
}

/* ---- one KMS call ----------------------------------------------------------------- */

static enum cmk_reason kms_retry(const struct cmk_http_response *r, void *arg)
{
	(void)arg;
	return cmk_gcp_classify(r->status, r->body, r->body_len, NULL);
}

static int kms_error(struct gcp *g, const char *op, const char *key_ref,
		     const struct cmk_http_response *r, struct cmk_err *e)
{
	struct cmk_gcp_error err;
	enum cmk_reason why;
	const char *advice = "";

	why = cmk_gcp_classify(r->status, r->body, r->body_len, &err);
	if (!strcmp(err.status, "UNAUTHENTICATED"))
		advice = "; Cloud KMS rejected the agent's access token";
	else if (!strcmp(err.status, "PERMISSION_DENIED"))
		advice = "; grant roles/cloudkms.cryptoKeyEncrypterDecrypter on the key";
	else if (why == CMK_R_DISABLED)
		advice = "; enable the key version to restore access";
	/*
	 * Most useful first: Google's message names the key version and its
	 * state; the key is only repeated when it does not.  The whole may be
	 * cut at CMK_ERR_MSG_MAX.
	 */
	return cmk_err_kms(e, why, "gcp kms %s%s%s: %s HTTP %ld%s%s%s [%s]", op,
			   strstr(err.message, key_ref) ? "" : " ",
			   strstr(err.message, key_ref) ? "" : key_ref,
			   err.status[0] ? err.status : "error", r->status,
			   err.message[0] ? ": " : "", err.message, advice,
			   g->tok.source);
}

/*
 * POST @body to v1/{key_ref}:{op}; *resp on HTTP 200.  A 401 with a
 * cached token gets one more try with a fresh token (revoked or expired
 * early); the second 401 is an answer.
 */
static int kms_call(struct gcp *g, const char *op, const char *key_ref,
		    const char *body, size_t body_len, struct json_object **resp,
		    struct cmk_err *e)
{
	char url[1024];
	int ret = 0;

	*resp = NULL;
	if ((size_t)snprintf(url, sizeof(url), "%s/v1/%s:%s", g->endpoint, key_ref, op) >=
	    sizeof(url))
		return cmk_errf(e, -EINVAL, "gcp: request URL too long");
	for (int attempt = 1; attempt <= 2; attempt++) {
		struct cmk_http_response r = { 0 };
		const char *bearer;

		ret = cmk_gcp_token_get(&g->tok, time(NULL), &bearer, e);
		if (ret) {
			cmk_err_prefix(e, "gcp kms %s %s: access token", op, key_ref);
			return ret;
		}
		{
			struct cmk_nv hh[2] = {
				{ "Content-Type", "application/json" },
				{ "Authorization", bearer },
			};
			struct cmk_http_request hr = { "POST", url, hh, 2, body, body_len };

			ret = cmk_http_do(&g->http, &hr, kms_retry, NULL, &r, e);
		}
		if (ret) {
			cmk_err_prefix(e, "gcp kms %s %s", op, key_ref);
			return ret;
		}
		if (r.status == 401 && attempt == 1) {
			cmk_gcp_token_invalidate(&g->tok);
			cmk_http_response_free(&r);
			continue;
		}
		if (r.status != 200) {
			ret = kms_error(g, op, key_ref, &r, e);
		} else {
			*resp = cmk_json_parse_wiped(r.body, r.body_len);
			if (!*resp || !json_object_is_type(*resp, json_type_object)) {
				cmk_json_put_wiped(*resp);
				*resp = NULL;
				ret = cmk_err_kms(e, CMK_R_UNAVAILABLE,
						  "gcp kms %s %s: the answer is not a JSON object",
						  op, key_ref);
			}
		}
		cmk_http_response_free(&r);
		break;
	}
	return ret;
}

/* ---- JSON helpers --------------------------------------------------------------- */

static bool jtrue(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) &&
	       json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

/* An int64 field: a decimal string in proto3 JSON (a number accepted too). */
static bool jcrc(struct json_object *o, const char *k, uint32_t *out)
{
	struct json_object *v;
	unsigned long long x;
	const char *s;
	char *end;

	if (!json_object_object_get_ex(o, k, &v))
		return false;
	if (json_object_is_type(v, json_type_int)) {
		int64_t i = json_object_get_int64(v);

		if (i < 0 || i > UINT32_MAX)
			return false;
		*out = (uint32_t)i;
		return true;
	}
	if (!json_object_is_type(v, json_type_string))
		return false;
	s = json_object_get_string(v);
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || *end || x > UINT32_MAX)
		return false;
	*out = (uint32_t)x;
	return true;
}

static int add_crc(struct json_object *o, const char *k, const void *d, size_t n)
{
	char s[16];

	snprintf(s, sizeof(s), "%" PRIu32, cmk_crc32c(0, d, n));
	return cmk_json_add_str(o, k, s);
}

static int check_ref(struct gcp *g, const char *key_ref, struct cmk_err *e)
{
	if (!cmk_gcp_key_name_ok(key_ref))
		return cmk_errf(e, -EINVAL,
				"gcp: key \"%s\" is not a CryptoKey name (projects/P/locations/L/keyRings/R/cryptoKeys/K)",
				key_ref ? key_ref : "");
	if (g->key_name && strcmp(g->key_name, key_ref))
		return cmk_errf(e, -EPERM,
				"gcp: the envelope names key %s but the configuration pins key_name %s; refusing to use another key",
				key_ref, g->key_name);
	return 0;
}

/* The encryption context as AAD; *aad is malloc'd (not secret). */
static int get_aad(const struct cmk_encctx *ctx, unsigned char **aad,
		   size_t *aad_len, struct cmk_err *e)
{
	struct cmk_encctx empty;

	if (ctx)
		return cmk_encctx_canonical(ctx, aad, aad_len, e);
	cmk_encctx_init(&empty);
	return cmk_encctx_canonical(&empty, aad, aad_len, e);
}

/* ---- operations ------------------------------------------------------------------ */

/*
 * The encrypt request carries the KEK (base64) and its CRC32C.  As in the
 * aws provider, json-c builds the request around a placeholder of the
 * same length and the KEK is put in place in a locked copy.
 */
static int gcp_wrap(void *priv, const char *key_ref,
		    const struct cmk_secret *plain, const struct cmk_encctx *ctx,
		    unsigned char **wrapped, size_t *wrapped_len,
		    struct cmk_kms_call *call, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *b64 = NULL, *body = NULL;
	struct gcp *g = priv;
	struct json_object *req = NULL, *resp = NULL;
	unsigned char *aad = NULL;
	size_t n = cmk_secret_len(plain), bl, tl = 0, aad_len = 0, kl;
	const char *name, *ct;
	uint32_t crc;
	int ret;

	(void)call;
	ret = check_ref(g, key_ref, e);
	if (ret)
		return ret;
	if (n == 0 || n > 4096)
		return cmk_errf(e, -EINVAL, "gcp: encrypt takes 1..4096 bytes here");
	ret = get_aad(ctx, &aad, &aad_len, e);
	if (ret)
		return ret;
	bl = 4 * ((n + 2) / 3);
	ret = cmk_secret_new(&b64, bl + 1, e);
	if (ret)
		goto out;
	EVP_EncodeBlock(cmk_secret_data(b64), cmk_secret_cdata(plain), (int)n);
	req = json_object_new_object();
	if (!req || add_crc(req, "plaintextCrc32c", cmk_secret_cdata(plain), n) ||
	    cmk_json_add_b64(req, "additionalAuthenticatedData", aad, aad_len) ||
	    add_crc(req, "additionalAuthenticatedDataCrc32c", aad, aad_len)) {
		ret = cmk_errf(e, -ENOMEM, "gcp: out of memory");
		goto out;
	}
	ret = cmk_json_secret_body("plaintext", b64, bl, req, &body, &tl,
				   "gcp encrypt", e);
	if (ret)
		goto out;
	ret = kms_call(g, "encrypt", key_ref, (const char *)cmk_secret_cdata(body),
		       tl, &resp, e);
	if (ret)
		goto out;
	/* The request arrived intact, and the answer is for this key. */
	if (!jtrue(resp, "verifiedPlaintextCrc32c") ||
	    !jtrue(resp, "verifiedAdditionalAuthenticatedDataCrc32c")) {
		ret = cmk_err_kms(e, CMK_R_UNAVAILABLE,
				  "gcp kms encrypt %s: Cloud KMS did not confirm the CRC32C of the plaintext and AAD; not using the answer",
				  key_ref);
		goto out;
	}
	name = cmk_json_str(resp, "name", NULL);
	kl = strlen(key_ref);
	if (!name || strncmp(name, key_ref, kl) ||
	    strncmp(name + kl, "/cryptoKeyVersions/", 19)) {
		ret = cmk_errf(e, -EPROTO,
			       "gcp kms encrypt %s: the answer names key version %.150s",
			       key_ref, name ? name : "(none)");
		goto out;
	}
	ct = cmk_json_str(resp, "ciphertext", NULL);
	if (!ct || cmk_b64_decode(ct, wrapped, wrapped_len, NULL) ||
	    *wrapped_len == 0 || *wrapped_len > CMK_GCP_CIPHERTEXT_MAX) {
		ret = cmk_err_kms(e, CMK_R_UNAVAILABLE,
				  "gcp kms encrypt %s: the answer has no valid ciphertext",
				  key_ref);
		goto out;
	}
	if (!jcrc(resp, "ciphertextCrc32c", &crc) ||
	    crc != cmk_crc32c(0, *wrapped, *wrapped_len)) {
		ret = cmk_err_kms(e, CMK_R_UNAVAILABLE,
				  "gcp kms encrypt %s: ciphertextCrc32c is missing or does not match the ciphertext (corrupted in transit)",
				  key_ref);
		goto out;
	}
out:
	free(aad);
	cmk_json_put_wiped(req);
	cmk_json_put_wiped(resp);
	return ret;
}

static int gcp_unwrap(void *priv, const char *key_ref,
		      const unsigned char *wrapped, size_t wrapped_len,
		      const struct cmk_encctx *ctx, struct cmk_secret **plain,
		      struct cmk_kms_call *call, struct cmk_err *e)
{
	struct gcp *g = priv;
	struct json_object *req = NULL, *resp = NULL;
	unsigned char *aad = NULL;
	size_t pl = 0, pad = 0, aad_len = 0;
	const char *p;
	uint32_t crc;
	int ret, n;

	(void)call;
	ret = check_ref(g, key_ref, e);
	if (ret)
		return ret;
	ret = get_aad(ctx, &aad, &aad_len, e);
	if (ret)
		return ret;
	req = json_object_new_object();
	if (!req || cmk_json_add_b64(req, "ciphertext", wrapped, wrapped_len) ||
	    add_crc(req, "ciphertextCrc32c", wrapped, wrapped_len) ||
	    cmk_json_add_b64(req, "additionalAuthenticatedData", aad, aad_len) ||
	    add_crc(req, "additionalAuthenticatedDataCrc32c", aad, aad_len)) {
		ret = cmk_errf(e, -ENOMEM, "gcp: out of memory");
		goto out;
	}
	{
		size_t bn = 0;
		const char *body = json_object_to_json_string_length(req,
								      JSON_C_TO_STRING_PLAIN, &bn);

		if (!body) {
			ret = cmk_errf(e, -ENOMEM, "gcp: out of memory");
			goto out;
		}
		ret = kms_call(g, "decrypt", key_ref, body, bn, &resp, e);
	}
	if (ret)
		goto out;
	p = cmk_json_str(resp, "plaintext", &pl);
	if (!p || pl == 0 || pl % 4 || pl > 8192) {
		ret = cmk_err_kms(e, CMK_R_UNAVAILABLE,
				  "gcp kms decrypt %s: the answer has no valid plaintext",
				  key_ref);
		goto out;
	}
	if (p[pl - 1] == '=')
		pad = p[pl - 2] == '=' ? 2 : 1;
	ret = cmk_secret_new(plain, pl / 4 * 3, e);
	if (ret)
		goto out;
	n = EVP_DecodeBlock(cmk_secret_data(*plain), (const unsigned char *)p, (int)pl);
	if (n < 0 || (size_t)n != pl / 4 * 3) {
		ret = cmk_err_kms(e, CMK_R_UNAVAILABLE,
				  "gcp kms decrypt %s: plaintext is not base64", key_ref);
		goto out;
	}
	ret = cmk_secret_truncate(*plain, pl / 4 * 3 - pad, e);
	if (ret)
		goto out;
	if (!jcrc(resp, "plaintextCrc32c", &crc) ||
	    crc != cmk_crc32c(0, cmk_secret_cdata(*plain), cmk_secret_len(*plain))) {
		ret = cmk_err_kms(e, CMK_R_UNAVAILABLE,
				  "gcp kms decrypt %s: plaintextCrc32c is missing or does not match the plaintext (corrupted in transit)",
				  key_ref);
		goto out;
	}
out:
	if (ret)
		cmk_secret_free(plain);
	free(aad);
	cmk_json_put_wiped(req);
	cmk_json_put_wiped(resp);
	return ret;
}

const struct cmk_provider_ops cmk_provider_gcp_ops = {
	.name = "gcp",
	.settings = gcp_settings,
	.wrapped_kek_min = 32,
	.wrapped_kek_max = CMK_GCP_CIPHERTEXT_MAX,
	.open = gcp_open,
	.close = gcp_close,
	.wrap = gcp_wrap,
	.unwrap = gcp_unwrap,
};
