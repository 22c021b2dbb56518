// SPDX-License-Identifier: GPL-2.0
/*
 * provider_azure.c - Azure Key Vault / Managed HSM provider (see
 * provider_azure.h, azure_auth.h, Documentation/azure.rst).
 */
#include "kms/azure/provider_azure.h"

#include <errno.h>
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
#include <openssl/sha.h>

#include "core/json_secret.h"
#include "kms/azure/azure_auth.h"
#include "core/fileio.h"
#include "core/codec.h"
#include "core/encctx.h"
#include "kms/http.h"
#include "kms/provider_settings.h"
#include "kms/provider_util.h"

#define DIGEST_LEN	SHA256_DIGEST_LENGTH
#define KEK_MAX		512

static const char *const azure_settings[] = {
	"credentials", "client_id", "tenant_id", "client_secret_file",
	"authority", "imds_endpoint", "algorithm", "verify_challenge_resource",
	"ca_bundle", "connect_timeout_ms", "timeout_ms", "max_attempts", "vault",
	NULL,
};

struct azure {
	struct cmk_azure_auth auth;
	struct cmk_http_opts http;
	char *ca_bundle;
	enum cmk_azure_alg alg;		/* CMK_AZURE_ALG_AUTO: by host */
	bool verify_resource;
	/* Pinned vault ("https://host[:port]"), or "": see check_vault(). */
	char vault[sizeof(((struct cmk_azure_key *)0)->vault)];
	/* The challenge of the vault last talked to (the SDK's cache). */
	bool have_ch;
	char ch_vault[300];
	struct cmk_azure_challenge ch;
};

const char *cmk_azure_alg_name(enum cmk_azure_alg alg)
{
	switch (alg) {
	case CMK_AZURE_ALG_RSA_OAEP_256:
		return "RSA-OAEP-256";
	case CMK_AZURE_ALG_A256KW:
		return "A256KW";
	default:
		return "auto";
	}
}

/* ---- key URLs ---------------------------------------------------------------- */

static bool seg_ok(const char *s, size_t n, size_t max, bool dash)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || (dash && s[i] == '-')))
			return false;
	return true;
}

int cmk_azure_key_parse(const char *url, struct cmk_azure_key *k,
			struct cmk_err *e)
{
	const char *h, *p, *name, *ver = NULL, *end;
	size_t hl, nl, vl = 0;

	memset(k, 0, sizeof(*k));
	if (!url || strncasecmp(url, "https://", 8))
		return cmk_errf(e, -EINVAL,
				"azure: key reference \"%s\" is not an https key URL (https://VAULT/keys/NAME[/VERSION])",
				url ? url : "");
	h = url + 8;
	p = strchr(h, '/');
	hl = p ? (size_t)(p - h) : strlen(h);
	if (!p || hl == 0 || hl >= sizeof(k->host) || strncmp(p, "/keys/", 6))
		return cmk_errf(e, -EINVAL,
				"azure: key URL \"%s\" has no /keys/NAME path", url);
	for (size_t i = 0; i < hl; i++) {
		char c = h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':' ||
		      c == '[' || c == ']'))
			return cmk_errf(e, -EINVAL, "azure: key URL \"%s\" has a bad host",
					url);
	}
	name = p + 6;
	nl = strcspn(name, "/");
	end = name + nl;
	if (*end == '/' && end[1]) {
		ver = end + 1;
		vl = strcspn(ver, "/");
		end = ver + vl;
	}
	if (*end == '/')
		end++;
	if (*end)
		return cmk_errf(e, -EINVAL,
				"azure: key URL \"%s\" has more than /keys/NAME/VERSION", url);
	if (!seg_ok(name, nl, sizeof(k->name) - 1, true))
		return cmk_errf(e, -EINVAL,
				"azure: key name in \"%s\" must be 1-127 letters, digits or dashes",
				url);
	if (ver && !seg_ok(ver, vl, CMK_AZURE_VERSION_MAX, false))
		return cmk_errf(e, -EINVAL,
				"azure: key version in \"%s\" must be letters and digits", url);
	/* Key Vault's kid carries no default port: neither do we. */
	if (hl > 4 && !strncmp(h + hl - 4, ":443", 4))
		hl -= 4;
	snprintf(k->vault, sizeof(k->vault), "https://%.*s", (int)hl, h);
	/* Host without the port (brackets kept off an IPv6 literal). */
	if (h[0] == '[') {
		const char *rb = memchr(h, ']', hl);

		snprintf(k->host, sizeof(k->host), "%.*s",
			 rb ? (int)(rb - h - 1) : (int)hl - 1, h + 1);
	} else {
		const char *colon = memchr(h, ':', hl);

		snprintf(k->host, sizeof(k->host), "%.*s",
			 colon ? (int)(colon - h) : (int)hl, h);
	}
	snprintf(k->name, sizeof(k->name), "%.*s", (int)nl, name);
	if (ver)
		snprintf(k->version, sizeof(k->version), "%.*s", (int)vl, ver);
	return 0;
}

/* ---- error classification ------------------------------------------------------ */

static const struct {
	const char *code;
	enum cmk_reason reason;
} kv_codes[] = {
	/* the key owner said no */
	{ "KeyDisabled",		CMK_R_DISABLED },
	{ "ForbiddenByRbac",		CMK_R_DENIED },
	{ "ForbiddenByPolicy",		CMK_R_DENIED },
	{ "AccessDenied",		CMK_R_DENIED },
	{ "Forbidden",			CMK_R_DENIED },
	{ "Unauthorized",		CMK_R_DENIED },
	{ "KeyNotFound",		CMK_R_NOT_FOUND },
	{ "NotFound",			CMK_R_NOT_FOUND },
	{ "VaultNotFound",		CMK_R_NOT_FOUND },
	{ "ObjectIsBeingDeleted",	CMK_R_DESTROYED },
	{ "ObjectIsDeletedButRecoverable", CMK_R_DESTROYED },
	/* provisional: the key's state decides (cmk_azure_key_state_reason()) */
	{ "BadParameter",		CMK_R_LOCAL },
	{ "InvalidCiphertext",		CMK_R_INVALID_CIPHERTEXT },
	/* the vault's network rules refused this address: not about the key */
	{ "ForbiddenByFirewall",	CMK_R_NETWORK },
	/* Key Vault could not answer now */
	{ "Throttled",			CMK_R_THROTTLED },
	{ "TooManyRequests",		CMK_R_THROTTLED },
	{ "ServiceUnavailable",		CMK_R_UNAVAILABLE },
	{ "InternalServerError",	CMK_R_UNAVAILABLE },
	{ "InternalError",		CMK_R_UNAVAILABLE },
	{ "HsmBusy",			CMK_R_UNAVAILABLE },
	{ "GatewayTimeout",		CMK_R_TIMEOUT },
};

#define N_CODES (sizeof(kv_codes) / sizeof(kv_codes[0]))

static int code_index(const char *code)
{
	for (size_t i = 0; i < N_CODES; i++)
		if (strcmp(kv_codes[i].code, code) == 0)
			return (int)i;
	return -1;
}

static void jcopy(struct json_object *o, const char *k, char *out, size_t len,
		  bool spaces)
{
	struct json_object *v;

	if (o && json_object_object_get_ex(o, k, &v) &&
	    json_object_is_type(v, json_type_string))
		cmk_printable(json_object_get_string(v),
			      (size_t)json_object_get_string_len(v), out, len,
			      spaces);
}

enum cmk_reason cmk_azure_classify(long status, const char *body, size_t len,
				   struct cmk_azure_error *out)
{
	struct cmk_azure_error tmp;
	struct json_object *o = NULL, *err = NULL, *inner = NULL;
	int i = -1;

	if (!out)
		out = &tmp;
	memset(out, 0, sizeof(*out));
	if (status >= 200 && status <= 299)
		return CMK_R_NONE;
	if (body && len)
		o = cmk_json_parse_wiped(body, len);
	if (o && json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "error", &err) &&
	    json_object_is_type(err, json_type_object)) {
		jcopy(err, "code", out->code, sizeof(out->code), false);
		jcopy(err, "message", out->message, sizeof(out->message), true);
		if (json_object_object_get_ex(err, "innererror", &inner) &&
		    json_object_is_type(inner, json_type_object))
			jcopy(inner, "code", out->inner, sizeof(out->inner), false);
	}
	cmk_json_put_wiped(o);
	if (out->inner[0])
		i = code_index(out->inner);
	if (i < 0 && out->code[0])
		i = code_index(out->code);
	/* A throttled or failing front end wins over a body code. */
	if (status == 429)
		return CMK_R_THROTTLED;
	if (status >= 500)
		return i >= 0 && cmk_reason_class(kv_codes[i].reason) == CMK_EC_TRANSIENT ?
		       kv_codes[i].reason : CMK_R_UNAVAILABLE;
	if (i >= 0) {
		out->confirm = !strcmp(kv_codes[i].code, "BadParameter");
		return kv_codes[i].reason;
	}
	if (status == 404)
		return CMK_R_NOT_FOUND;
	if (status == 408)
		return CMK_R_TIMEOUT;
	return cmk_http_status_reason(status);
}

static bool json_time_past(struct json_object *attrs, const char *k, time_t now,
			   bool past)
{
	struct json_object *v;
	int64_t t;

	if (!json_object_object_get_ex(attrs, k, &v) ||
	    !json_object_is_type(v, json_type_int))
		return false;
	t = json_object_get_int64(v);
	return past ? t <= (int64_t)now : t > (int64_t)now;
}

enum cmk_reason cmk_azure_key_state_reason(long status, const char *body,
					   size_t len, const char *op, time_t now,
					   char *what, size_t what_len)
{
	struct json_object *o = NULL, *attrs, *key, *ops, *v;
	struct cmk_azure_error err;
	enum cmk_reason why = CMK_R_LOCAL;
	const char *w = "enabled";
	/*
	 * Key Vault refuses wrapKey (encrypt, sign) outside nbf..exp, but
	 * unwrapKey, decrypt and verify go on working there: an expired key
	 * explains a refused wrap, never a refused unwrap.
	 */
	bool dated = !strcmp(op, "wrapKey");

	if (status != 200) {
		why = cmk_azure_classify(status, body, len, &err);
		snprintf(what, what_len, "HTTP %ld %s", status,
			 err.inner[0] ? err.inner : err.code[0] ? err.code : "error");
		/* Only "the key is gone" is an answer; nothing else confirms. */
		return why == CMK_R_NOT_FOUND ? CMK_R_NOT_FOUND : CMK_R_LOCAL;
	}
	o = cmk_json_parse_wiped(body, len);
	if (!o || !json_object_object_get_ex(o, "attributes", &attrs) ||
	    !json_object_is_type(attrs, json_type_object)) {
		w = "no attributes in the answer";
		goto out;
	}
	if (json_object_object_get_ex(attrs, "enabled", &v) &&
	    json_object_is_type(v, json_type_boolean) && !json_object_get_boolean(v)) {
		why = CMK_R_DISABLED;
		w = "disabled";
	} else if (dated && json_time_past(attrs, "exp", now, true)) {
		why = CMK_R_DISABLED;
		w = "expired";
	} else if (dated && json_time_past(attrs, "nbf", now, false)) {
		why = CMK_R_DISABLED;
		w = "not yet valid";
	} else if (json_object_object_get_ex(o, "key", &key) &&
		   json_object_object_get_ex(key, "key_ops", &ops) &&
		   json_object_is_type(ops, json_type_array)) {
		bool found = false;

		for (size_t i = 0; i < json_object_array_length(ops); i++) {
			struct json_object *op_v = json_object_array_get_idx(ops, i);

			if (json_object_is_type(op_v, json_type_string) &&
			    !strcmp(json_object_get_string(op_v), op))
				found = true;
		}
		if (!found) {
			why = CMK_R_DISABLED;
			w = !strcmp(op, "wrapKey") ? "no wrapKey in key_ops" :
			    "no unwrapKey in key_ops";
		}
	}
out:
	snprintf(what, what_len, "%s", w);
	cmk_json_put_wiped(o);
	return why;
}

/* ---- the envelope bytes ------------------------------------------------------------ */

int cmk_azure_blob_pack(enum cmk_azure_alg alg, const char *version,
			const unsigned char *ct, size_t ct_len,
			unsigned char **out, size_t *out_len, struct cmk_err *e)
{
	size_t vl = strlen(version);
	unsigned char *b;

	*out = NULL;
	if ((alg != CMK_AZURE_ALG_RSA_OAEP_256 && alg != CMK_AZURE_ALG_A256KW) ||
	    !seg_ok(version, vl, CMK_AZURE_VERSION_MAX, false) || ct_len == 0 ||
	    ct_len > CMK_AZURE_CT_MAX)
		return cmk_errf(e, -EINVAL, "azure: cannot store a wrapped KEK of %zu bytes, version \"%s\"",
				ct_len, version);
	b = malloc(3 + vl + ct_len);
	if (!b)
		return cmk_errf(e, -ENOMEM, "azure: out of memory");
	b[0] = CMK_AZURE_BLOB_FORMAT;
	b[1] = (unsigned char)alg;
	b[2] = (unsigned char)vl;
	memcpy(b + 3, version, vl);
	memcpy(b + 3 + vl, ct, ct_len);
	*out = b;
	*out_len = 3 + vl + ct_len;
	return 0;
}

int cmk_azure_blob_unpack(const unsigned char *blob, size_t len,
			  enum cmk_azure_alg *alg,
			  char version[CMK_AZURE_VERSION_MAX + 1],
			  const unsigned char **ct, size_t *ct_len,
			  struct cmk_err *e)
{
	size_t vl;

	if (len < 4 || blob[0] != CMK_AZURE_BLOB_FORMAT)
		return cmk_errf(e, -EINVAL,
				"azure: the envelope's wrapped KEK is not in the azure format %d",
				CMK_AZURE_BLOB_FORMAT);
	if (blob[1] != CMK_AZURE_ALG_RSA_OAEP_256 && blob[1] != CMK_AZURE_ALG_A256KW)
		return cmk_errf(e, -EINVAL,
				"azure: the envelope's wrapped KEK names unknown algorithm %u",
				blob[1]);
	vl = blob[2];
	if (3 + vl >= len || !seg_ok((const char *)blob + 3, vl, CMK_AZURE_VERSION_MAX, false))
		return cmk_errf(e, -EINVAL,
				"azure: the envelope's wrapped KEK has a bad key version field");
	*alg = (enum cmk_azure_alg)blob[1];
	memcpy(version, blob + 3, vl);
	version[vl] = '\0';
	*ct = blob + 3 + vl;
	*ct_len = len - 3 - vl;
	if (*ct_len > CMK_AZURE_CT_MAX)
		return cmk_errf(e, -EINVAL, "azure: the envelope's wrapped KEK is too long");
	return 0;
}

/* ---- base64url (Key Vault's "value"), through locked memory -------------------- */

/* base64url without padding; *out is a NUL-terminated secret. */
static int b64url_encode(const unsigned char *in, size_t n,
			 struct cmk_secret **out, size_t *olen, struct cmk_err *e)
{
	size_t bl = 4 * ((n + 2) / 3);
	unsigned char *d;
	int ret;

	ret = cmk_secret_new(out, bl + 1, e);
	if (ret)
		return ret;
	d = cmk_secret_data(*out);
	EVP_EncodeBlock(d, in, (int)n);
	while (bl && d[bl - 1] == '=')
		d[--bl] = '\0';
	for (size_t i = 0; i < bl; i++)
		if (d[i] == '+')
			d[i] = '-';
		else if (d[i] == '/')
			d[i] = '_';
	*olen = bl;
	return 0;
}

/* base64url (or base64), padding optional, into a new secret. */
static int b64url_decode(const char *s, size_t n, struct cmk_secret **out,
			 struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *tmp = NULL;
	size_t pl, pad;
	unsigned char *t;
	int ret, got;

	*out = NULL;
	while (n && s[n - 1] == '=')
		n--;
	if (n == 0 || n % 4 == 1 || n > 4 * CMK_AZURE_CT_MAX)
		return -EINVAL;
	pl = (n + 3) / 4 * 4;
	pad = pl - n;
	ret = cmk_secret_new(&tmp, pl + 1, e);
	if (ret)
		return ret;
	t = cmk_secret_data(tmp);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			   (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return -EINVAL;
		t[i] = (unsigned char)c;
	}
	memset(t + n, '=', pad);
	ret = cmk_secret_new(out, pl / 4 * 3, e);
	if (ret)
		return ret;
	got = EVP_DecodeBlock(cmk_secret_data(*out), t, (int)pl);
	if (got < 0 || (size_t)got != pl / 4 * 3 ||
	    cmk_secret_truncate(*out, pl / 4 * 3 - pad, e)) {
		cmk_secret_free(out);
		return -EINVAL;
	}
	return 0;
}

/* ---- the pinned vault -------------------------------------------------------------- */

/* "vault = https://NAME.vault.azure.net": normalised as key URLs are. */
static int set_vault(struct azure *a, const char *v, struct cmk_err *e)
{
	struct cmk_azure_key k;
	char url[sizeof(a->vault) + 16];
	size_t n = strlen(v);

	while (n && v[n - 1] == '/')
		n--;
	if (n <= 8 || strncasecmp(v, "https://", 8) || memchr(v + 8, '/', n - 8) ||
	    (size_t)snprintf(url, sizeof(url), "%.*s/keys/pin", (int)n, v) >= sizeof(url) ||
	    cmk_azure_key_parse(url, &k, NULL))
		return cmk_errf(e, -EINVAL,
				"azure: vault = \"%s\" is not https://VAULT-HOST[:port] (no path)", v);
	snprintf(a->vault, sizeof(a->vault), "%s", k.vault);
	return 0;
}

/*
 * A managed-identity token for https://vault.azure.net opens every vault
 * the identity may use: with a pinned vault, a key URL elsewhere (a
 * replaced envelope, a typo) is refused before any request or token.
 */
static int check_vault(const struct azure *a, const struct cmk_azure_key *k,
		       const char *key_ref, struct cmk_err *e)
{
	if (!a->vault[0] || !strcasecmp(a->vault, k->vault))
		return 0;
	return cmk_errf(e, -EPERM,
			"azure: the envelope names key %s, in vault %s, but the configuration pins vault = %s; refusing to send a token or a key to another vault",
			key_ref, k->vault, a->vault);
}

/* ---- open/close ------------------------------------------------------------------ */

static const char *azure_advice(void *priv)
{
	const struct azure *a = priv;

	if (a->vault[0])
		return NULL;
	return "azure: [provider \"azure\"] pins no vault: the token goes to whatever vault the envelope's key URL names; set vault = https://NAME.vault.azure.net (Documentation/azure.rst, \"Pin the vault\")";
}

/* The bearer token goes (wiped); the client secret is configuration. */
static void azure_reset(void *priv)
{
	struct azure *a = priv;

	cmk_azure_token_invalidate(&a->auth);
}

static void azure_close(void *priv)
{
	struct azure *a = priv;

	if (!a)
		return;
	cmk_azure_auth_free(&a->auth);
	free(a->ca_bundle);
	free(a);
}

static int azure_open(const struct cmk_kv *kv, size_t n, void **priv,
		      struct cmk_err *e)
{
	const char *mode = NULL, *cid = NULL, *tid = NULL, *sfile = NULL,
		   *auth = NULL, *imds = NULL, *ca = NULL, *v;
	struct azure *a;
	int ret = 0;

	a = calloc(1, sizeof(*a));
	if (!a)
		return cmk_errf(e, -ENOMEM, "azure: out of memory");
	a->verify_resource = true;
	for (size_t i = 0; i < n && !ret; i++) {
		const char *k = kv[i].key;

		v = kv[i].value;
		if (!strcmp(k, "credentials"))
			mode = v;
		else if (!strcmp(k, "client_id"))
			cid = v;
		else if (!strcmp(k, "tenant_id"))
			tid = v;
		else if (!strcmp(k, "client_secret_file"))
			sfile = v;
		else if (!strcmp(k, "authority"))
			auth = v;
		else if (!strcmp(k, "imds_endpoint"))
			imds = v;
		else if (!strcmp(k, "ca_bundle"))
			ca = v;
		else if (!strcmp(k, "vault"))
			ret = set_vault(a, v, e);
		else if (!strcmp(k, "verify_challenge_resource"))
			ret = cmk_setting_bool("azure", k, v, &a->verify_resource, e);
		else if (!strcmp(k, "algorithm")) {
			if (!strcmp(v, "auto"))
				a->alg = CMK_AZURE_ALG_AUTO;
			else if (!strcmp(v, "RSA-OAEP-256"))
				a->alg = CMK_AZURE_ALG_RSA_OAEP_256;
			else if (!strcmp(v, "A256KW"))
				a->alg = CMK_AZURE_ALG_A256KW;
			else
				ret = cmk_errf(e, -EINVAL,
					       "azure: algorithm = \"%s\": use auto, RSA-OAEP-256 or A256KW",
					       v);
		} else {
			ret = cmk_http_setting("azure", k, v, &a->http, e);
		}
	}
	if (ret)
		goto out;
	if (!ca)
		ca = getenv("AZURE_CA_BUNDLE");
	if (ca && *ca) {
		ret = cmk_check_trusted_file(ca, "ca_bundle", e);
		if (ret) {
			cmk_err_prefix(e, "azure");
			goto out;
		}
		a->ca_bundle = strdup(ca);
		if (!a->ca_bundle) {
			ret = cmk_errf(e, -ENOMEM, "azure: out of memory");
			goto out;
		}
		a->http.ca_bundle = a->ca_bundle;
	}
	ret = cmk_azure_auth_init(&a->auth, mode, cid, tid, sfile, auth, imds,
				  a->ca_bundle, e);
	if (ret)
		goto out;
	/* AAD calls use the same timeouts as Key Vault calls. */
	a->auth.http.connect_timeout_ms = a->http.connect_timeout_ms;
	a->auth.http.timeout_ms = a->http.timeout_ms;
	a->auth.http.max_attempts = a->http.max_attempts;
out:
	if (ret) {
		azure_close(a);
		return ret;
	}
	*priv = a;
	return 0;
}

/* ---- one Key Vault call ---------------------------------------------------------- */

static void request_id(const struct cmk_http_response *r, struct cmk_kms_call *call)
{
	char rid[CMK_REQUEST_ID_MAX];

	if (call && cmk_http_header(r, "x-ms-request-id", rid, sizeof(rid)))
		cmk_printable(rid, strlen(rid), call->request_id,
			      sizeof(call->request_id), false);
}

static int kv_error(struct azure *a, const char *op, const char *what,
		    const struct cmk_http_response *r, struct cmk_err *e)
{
	struct cmk_azure_error err;
	enum cmk_reason why;

	why = cmk_azure_classify(r->status, r->body, r->body_len, &err);
	if (why == CMK_R_NONE)
		why = CMK_R_LOCAL;
	/* Most useful first: the message may be cut at CMK_ERR_MSG_MAX. */
	return cmk_err_kms(e, why, "azure %s %s: %s%s%s%s, HTTP %ld (%s)%s%s",
			   op, what, err.code[0] ? err.code : "error",
			   err.inner[0] ? " (" : "", err.inner,
			   err.inner[0] ? ")" : "", r->status, a->auth.source,
			   err.message[0] ? ": " : "", err.message);
}

/* Take the challenge of a 401 answer, if the vault's host may send it. */
static int take_challenge(struct azure *a, const struct cmk_azure_key *k,
			  const struct cmk_http_response *r, struct cmk_err *e)
{
	struct cmk_azure_challenge ch;
	char hdr[1024];
	int ret;

	ret = cmk_azure_challenge_parse(cmk_http_header(r, "WWW-Authenticate", hdr,
							sizeof(hdr)), &ch, e);
	if (ret) {
		cmk_err_prefix(e, "azure %s", k->vault);
		return ret;
	}
	if (a->verify_resource && !cmk_azure_challenge_resource_ok(k->host, ch.resource))
		return cmk_errf(e, -EPERM,
				"azure %s: the challenge asks for a token for %s, which is not a domain of %s; refusing (verify_challenge_resource = no only for test emulators)",
				k->vault, ch.resource, k->host);
	a->ch = ch;
	snprintf(a->ch_vault, sizeof(a->ch_vault), "%s", k->vault);
	a->have_ch = true;
	return 0;
}

/*
 * The SDK's first step with a vault: the request without body or token, so
 * the vault answers 401 with the authority and resource to use.
 */
static int discover(struct azure *a, const struct cmk_azure_key *k,
		    const char *op, const char *url, const char *what,
		    struct cmk_kms_call *call, struct cmk_err *e)
{
	struct cmk_nv h[] = {
		{ "Content-Type", "application/json" },
		{ "Accept", "application/json" },
	};
	struct cmk_http_request req = { "POST", url, h, 2, NULL, 0 };
	struct cmk_http_response r = { 0 };
	int ret;

	ret = cmk_http_do(&a->http, &req, NULL, NULL, &r, e);
	if (ret) {
		cmk_err_prefix(e, "azure %s %s", op, what);
		return ret;
	}
	request_id(&r, call);
	if (r.status == 401)
		ret = take_challenge(a, k, &r, e);
	else if (r.status >= 300)
		ret = kv_error(a, op, what, &r, e);
	else
		ret = cmk_errf(e, -EPROTO,
			       "azure %s %s: HTTP %ld to a request without a token; expected a 401 challenge",
			       op, what, r.status);
	cmk_http_response_free(&r);
	return ret;
}

/*
 * @method @body to {vault}/keys/NAME[/VERSION][/@op] with a token; any
 * answer in *@r.  @what (for messages) gets the key version's URL.
 */
static int kv_request(struct azure *a, const struct cmk_azure_key *k,
		      const char *version, const char *method, const char *op,
		      const void *body, size_t body_len,
		      struct cmk_http_response *r, char *what, size_t what_len,
		      struct cmk_kms_call *call, struct cmk_err *e)
{
	char url[600], cid[CMK_UUID_STR];
	uint8_t uuid[CMK_UUID_LEN];
	int ret = 0;

	memset(r, 0, sizeof(*r));
	if ((size_t)snprintf(url, sizeof(url), "%s/keys/%s%s%s%s%s?api-version=%s",
			     k->vault, k->name, version[0] || op[0] ? "/" : "",
			     version, op[0] ? "/" : "", op,
			     CMK_AZURE_API_VERSION) >= sizeof(url))
		return cmk_errf(e, -EINVAL, "azure: key URL too long");
	/* Messages name the key version, not the whole request URL. */
	snprintf(what, what_len, "%s/keys/%s%s%s", k->vault, k->name,
		 version[0] ? "/" : "", version);
	if (cmk_uuid_generate(uuid, e))
		return -EIO;
	cmk_uuid_format(uuid, cid);
	if (!a->have_ch || strcmp(a->ch_vault, k->vault)) {
		ret = discover(a, k, op, url, what, call, e);
		if (ret)
			return ret;
	}
	for (int attempt = 0;; attempt++) {
		CMK_SECRET_AUTO struct cmk_secret *bearer = NULL;
		const struct cmk_secret *tok;
		size_t tl;

		ret = cmk_azure_token_get(&a->auth, time(NULL), a->ch.resource,
					  a->ch.tenant, &tok, e);
		if (ret) {
			cmk_err_prefix(e, "azure %s %s", op, what);
			return ret;
		}
		tl = cmk_secret_len(tok);
		ret = cmk_secret_new(&bearer, tl + 8, e);
		if (ret)
			return ret;
		memcpy(cmk_secret_data(bearer), "Bearer ", 7);
		memcpy(cmk_secret_data(bearer) + 7, cmk_secret_cdata(tok), tl);
		{
			struct cmk_nv h[] = {
				{ "Content-Type", "application/json" },
				{ "Accept", "application/json" },
				{ "x-ms-client-request-id", cid },
				{ "Authorization", (const char *)cmk_secret_cdata(bearer) },
			};
			struct cmk_http_request req = { method, url, h, 4, body, body_len };

			ret = cmk_http_do(&a->http, &req, NULL, NULL, r, e);
		}
		if (ret) {
			cmk_err_prefix(e, "azure %s %s", op, what);
			return ret;
		}
		request_id(r, call);
		if (r->status != 401 || attempt > 0)
			return 0;
		/*
		 * The token was refused, or the vault moved to another tenant:
		 * read the new challenge, get a new token, try once more.
		 */
		cmk_azure_token_invalidate(&a->auth);
		ret = take_challenge(a, k, r, e);
		cmk_http_response_free(r);
		if (ret)
			return ret;
	}
}

/*
 * A plain BadParameter is ambiguous (the request, or the key?): GET the key
 * version, a call that does not use the key, and let its attributes
 * decide.  @e holds the first answer's error on entry, the final one on
 * return.
 */
static int confirm_key_state(struct azure *a, const struct cmk_azure_key *k,
			     const char *version, const char *op,
			     struct cmk_err *e)
{
	struct cmk_http_response r = { 0 };
	char first[CMK_ERR_MSG_MAX], what[520], state[96];
	enum cmk_reason why = CMK_R_LOCAL, now = CMK_R_NONE;
	struct cmk_azure_error gerr;
	struct cmk_err ge;
	const char *advice;

	snprintf(first, sizeof(first), "%s", e->msg);
	if (kv_request(a, k, version, "GET", "", NULL, 0, &r, what, sizeof(what),
		       NULL, &ge)) {
		snprintf(state, sizeof(state), "not answered (%.64s)", ge.msg);
		now = ge.cls == CMK_EC_TRANSIENT ? ge.reason : CMK_R_LOCAL;
	} else {
		why = cmk_azure_key_state_reason(r.status, r.body, r.body_len,
						 !strcmp(op, "wrapkey") ? "wrapKey" : "unwrapKey",
						 time(NULL), state, sizeof(state));
		if (r.status != 200 &&
		    cmk_reason_class(cmk_azure_classify(r.status, r.body, r.body_len,
							&gerr)) == CMK_EC_TRANSIENT)
			now = cmk_azure_classify(r.status, r.body, r.body_len, &gerr);
	}
	cmk_http_response_free(&r);
	/* Not read (timeout, 5xx, throttled: the vault's class; else local). */
	if (now != CMK_R_NONE && cmk_reason_class(why) != CMK_EC_DEFINITIVE)
		return cmk_err_kms(e, now, "%s; key: %s: the key state could not be read now, so this is not taken as a revocation; the next check asks again",
				   first, state);
	advice = cmk_reason_class(why) == CMK_EC_DEFINITIVE ? "" :
		 !strcmp(state, "enabled") ?
		 ": the key is usable, so the vault refused the request itself (a damaged envelope, or an API change), not a revocation" :
		 ": the key state is unknown, so this is not taken as a revocation (give the agent keys/get, e.g. Key Vault Crypto Service Encryption User)";
	return cmk_err_kms(e, why, "%s; key: %s%s", first, state, advice);
}

/* POST @body to {vault}/keys/NAME/VERSION/@op; *resp (an object) on 200. */
static int kv_call(struct azure *a, const struct cmk_azure_key *k,
		   const char *version, const char *op, const void *body,
		   size_t body_len, struct json_object **resp,
		   struct cmk_kms_call *call, struct cmk_err *e)
{
	struct cmk_http_response r = { 0 };
	struct cmk_azure_error err;
	char what[520];
	int ret;

	*resp = NULL;
	ret = kv_request(a, k, version, "POST", op, body, body_len, &r, what,
			 sizeof(what), call, e);
	if (ret)
		goto out;
	if (r.status != 200) {
		ret = kv_error(a, op, what, &r, e);
		cmk_azure_classify(r.status, r.body, r.body_len, &err);
		if (err.confirm)
			ret = confirm_key_state(a, k, version, op, e);
		goto out;
	}
	*resp = cmk_json_parse_wiped(r.body, r.body_len);
	if (!*resp || !json_object_is_type(*resp, json_type_object)) {
		cmk_json_put_wiped(*resp);
		*resp = NULL;
		ret = cmk_err_kms(e, CMK_R_UNAVAILABLE,
				  "azure %s %s: the answer is not a JSON object", op, what);
	}
out:
	cmk_http_response_free(&r);
	return ret;
}

/* ---- operations -------------------------------------------------------------------- */

static enum cmk_azure_alg alg_for(const struct azure *a, const struct cmk_azure_key *k)
{
	if (a->alg != CMK_AZURE_ALG_AUTO)
		return a->alg;
	return strcasestr(k->host, ".managedhsm.") ? CMK_AZURE_ALG_A256KW :
	       CMK_AZURE_ALG_RSA_OAEP_256;
}

static int ctx_digest(const struct cmk_encctx *ctx, unsigned char d[DIGEST_LEN],
		      struct cmk_err *e)
{
	struct cmk_encctx empty;
	unsigned char *c = NULL;
	size_t cl = 0;
	int ret;

	cmk_encctx_init(&empty);
	ret = cmk_encctx_canonical(ctx ? ctx : &empty, &c, &cl, e);
	if (ret)
		return ret;
	SHA256(c, cl, d);
	free(c);
	return 0;
}

/* The version a kid ({vault}/keys/NAME/VERSION) names, checked. */
static int kid_version(const struct cmk_azure_key *k, const char *op,
		       const char *kid, char out[CMK_AZURE_VERSION_MAX + 1],
		       struct cmk_err *e)
{
	size_t vl = strlen(k->vault), nl = strlen(k->name);
	const char *v;

	if (!kid || strncasecmp(kid, k->vault, vl) || strncmp(kid + vl, "/keys/", 6) ||
	    strncmp(kid + vl + 6, k->name, nl) || kid[vl + 6 + nl] != '/')
		return cmk_err_kms(e, CMK_R_UNAVAILABLE,
				   "azure %s %s/keys/%s: the answer names key %.150s",
				   op, k->vault, k->name, kid ? kid : "(none)");
	v = kid + vl + 7 + nl;
	if (!seg_ok(v, strlen(v), CMK_AZURE_VERSION_MAX, false))
		return cmk_err_kms(e, CMK_R_UNAVAILABLE,
				   "azure %s %s/keys/%s: the answer's kid has a bad version",
				   op, k->vault, k->name);
	snprintf(out, CMK_AZURE_VERSION_MAX + 1, "%s", v);
	return 0;
}

/*
 * wrapkey carries KEK || digest (base64url).  As in provider_aws.c: json-c
 * lays the request out around a placeholder of the same length, and the
 * value is put in place in a locked copy.
 */
static int azure_wrap(void *priv, const char *key_ref,
		      const struct cmk_secret *plain, const struct cmk_encctx *ctx,
		      unsigned char **wrapped, size_t *wrapped_len,
		      struct cmk_kms_call *call, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *msg = NULL, *b64 = NULL, *body = NULL,
					  *ct = NULL;
	char ver[CMK_AZURE_VERSION_MAX + 1];
	struct azure *a = priv;
	struct cmk_azure_key k;
	struct json_object *req = NULL, *resp = NULL;
	size_t n = cmk_secret_len(plain), bl = 0, tl = 0, vl = 0;
	enum cmk_azure_alg alg;
	const char *v;
	int ret;

	ret = cmk_azure_key_parse(key_ref, &k, e) ?: check_vault(a, &k, key_ref, e);
	if (ret)
		return ret;
	if (n == 0 || n > KEK_MAX)
		return cmk_errf(e, -EINVAL, "azure: wrapkey takes 1..%d bytes", KEK_MAX);
	alg = alg_for(a, &k);
	ret = cmk_secret_new(&msg, n + DIGEST_LEN, e);
	if (ret)
		return ret;
	memcpy(cmk_secret_data(msg), cmk_secret_cdata(plain), n);
	ret = ctx_digest(ctx, cmk_secret_data(msg) + n, e) ?:
	      b64url_encode(cmk_secret_cdata(msg), n + DIGEST_LEN, &b64, &bl, e);
	if (ret)
		return ret;
	req = json_object_new_object();
	if (!req || cmk_json_add_str(req, "alg", cmk_azure_alg_name(alg))) {
		ret = cmk_errf(e, -ENOMEM, "azure: out of memory");
		goto out;
	}
	ret = cmk_json_secret_body("value", b64, bl, req, &body, &tl,
				   "azure wrapkey", e);
	if (ret)
		goto out;
	ret = kv_call(a, &k, k.version, "wrapkey", cmk_secret_cdata(body), tl, &resp,
		      call, e);
	if (ret)
		goto out;
	ret = kid_version(&k, "wrapkey", cmk_json_str(resp, "kid", NULL), ver, e);
	if (ret)
		goto out;
	if (k.version[0] && strcmp(ver, k.version)) {
		ret = cmk_err_kms(e, CMK_R_UNAVAILABLE,
				  "azure wrapkey %s: the answer names version %s",
				  key_ref, ver);
		goto out;
	}
	v = cmk_json_str(resp, "value", &vl);
	if (!v || b64url_decode(v, vl, &ct, e)) {
		ret = cmk_err_kms(e, CMK_R_UNAVAILABLE,
				  "azure wrapkey %s: the answer has no valid value", key_ref);
		goto out;
	}
	ret = cmk_azure_blob_pack(alg, ver, cmk_secret_cdata(ct), cmk_secret_len(ct),
				  wrapped, wrapped_len, e);
out:
	cmk_json_put_wiped(req);
	cmk_json_put_wiped(resp);
	return ret;
}

static int azure_unwrap(void *priv, const char *key_ref,
			const unsigned char *wrapped, size_t wrapped_len,
			const struct cmk_encctx *ctx, struct cmk_secret **plain,
			struct cmk_kms_call *call, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *b64 = NULL, *msg = NULL;
	char ver[CMK_AZURE_VERSION_MAX + 1], got[CMK_AZURE_VERSION_MAX + 1];
	unsigned char d[DIGEST_LEN];
	struct azure *a = priv;
	struct cmk_azure_key k;
	struct json_object *req = NULL, *resp = NULL;
	const unsigned char *ct;
	size_t ctl, bl, vl = 0, ml;
	enum cmk_azure_alg alg;
	const char *v;
	int ret;

	ret = cmk_azure_key_parse(key_ref, &k, e) ?: check_vault(a, &k, key_ref, e) ?:
	      cmk_azure_blob_unpack(wrapped, wrapped_len, &alg, ver, &ct, &ctl, e);
	if (ret)
		return ret;
	if (k.version[0] && strcmp(k.version, ver))
		return cmk_errf(e, -EINVAL,
				"azure: the KEK was wrapped by version %s of the key but key_ref names version %s",
				ver, k.version);
	ret = b64url_encode(ct, ctl, &b64, &bl, e);
	if (ret)
		return ret;
	req = json_object_new_object();
	if (!req || cmk_json_add_str(req, "alg", cmk_azure_alg_name(alg)) ||
	    cmk_json_add_str(req, "value", (const char *)cmk_secret_cdata(b64))) {
		ret = cmk_errf(e, -ENOMEM, "azure: out of memory");
		goto out;
	}
	{
		size_t n = 0;
		const char *body = json_object_to_json_string_length(req,
								      JSON_C_TO_STRING_PLAIN, &n);

		if (!body) {
			ret = cmk_errf(e, -ENOMEM, "azure: out of memory");
			goto out;
		}
		ret = kv_call(a, &k, ver, "unwrapkey", body, n, &resp, call, e);
	}
	if (ret)
		goto out;
	ret = kid_version(&k, "unwrapkey", cmk_json_str(resp, "kid", NULL), got, e);
	if (ret)
		goto out;
	if (strcmp(got, ver)) {
		ret = cmk_err_kms(e, CMK_R_UNAVAILABLE,
				  "azure unwrapkey %s: the answer names version %s, not %s",
				  key_ref, got, ver);
		goto out;
	}
	v = cmk_json_str(resp, "value", &vl);
	if (!v || b64url_decode(v, vl, &msg, e) ||
	    (ml = cmk_secret_len(msg)) <= DIGEST_LEN || ml > KEK_MAX + DIGEST_LEN) {
		ret = cmk_err_kms(e, CMK_R_UNAVAILABLE,
				  "azure unwrapkey %s: the answer has no valid value",
				  key_ref);
		goto out;
	}
	ret = ctx_digest(ctx, d, e);
	if (ret)
		goto out;
	if (CRYPTO_memcmp(cmk_secret_cdata(msg) + ml - DIGEST_LEN, d, DIGEST_LEN)) {
		ret = cmk_err_kms(e, CMK_R_INVALID_CIPHERTEXT,
				  "azure unwrapkey %s: the KEK was wrapped with another encryption context (the envelope's context was changed, or the wrapped KEK belongs to another envelope)",
				  key_ref);
		goto out;
	}
	ret = cmk_secret_new(plain, ml - DIGEST_LEN, e);
	if (ret)
		goto out;
	memcpy(cmk_secret_data(*plain), cmk_secret_cdata(msg), ml - DIGEST_LEN);
out:
	OPENSSL_cleanse(d, sizeof(d));
	if (ret)
		cmk_secret_free(plain);
	cmk_json_put_wiped(req);
	cmk_json_put_wiped(resp);
	return ret;
}

const struct cmk_provider_ops cmk_provider_azure_ops = {
	.name = "azure",
	.settings = azure_settings,
	.wrapped_kek_min = 3 + 1 + 40,		/* A256KW of KEK || digest */
	.wrapped_kek_max = 3 + CMK_AZURE_VERSION_MAX + CMK_AZURE_CT_MAX,
	.open = azure_open,
	.close = azure_close,
	.wrap = azure_wrap,
	.unwrap = azure_unwrap,
	.reset = azure_reset,
	.advice = azure_advice,
};
