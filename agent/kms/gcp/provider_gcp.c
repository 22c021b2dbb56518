// SPDX-License-Identifier: GPL-2.0
/*
 * provider_gcp.c - Google Cloud KMS provider (see provider_gcp.h,
 * Documentation/gcp.rst).
 */
#include "kms/gcp/provider_gcp.h"

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

#include "core/json_secret.h"
#include "core/codec.h"
#include "core/fileio.h"
#include "core/crc32c.h"
#include "kms/gcp/gcp_auth.h"
#include "kms/http.h"
#include "kms/provider_settings.h"
#include "kms/provider_util.h"

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

/* Version states that mean the key owner (or Cloud EKM for them) said no. */
static enum cmk_reason state_reason(const char *st)
{
	static const char *const destroyed[] = {
		"DESTROYED", "DESTROY_SCHEDULED", "PENDING_EXTERNAL_DESTRUCTION",
		"EXTERNAL_DESTRUCTION_FAILED",
	};

	if (!strcmp(st, "DISABLED"))
		return CMK_R_DISABLED;
	for (size_t i = 0; i < sizeof(destroyed) / sizeof(destroyed[0]); i++)
		if (!strcmp(st, destroyed[i]))
			return CMK_R_DESTROYED;
	return CMK_R_NONE;
}

/* The first "...cryptoKeyVersions/N" resource name in @text, into @out. */
static void find_version(const char *text, char *out, size_t len)
{
	static const char name_chars[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-/";
	const char *p = strstr(text, "/cryptoKeyVersions/"), *b;
	size_t n;

	if (!p || out[0])
		return;
	for (b = p; b > text && b[-1] && strchr(name_chars, b[-1]); b--)
		;
	n = (size_t)(p - b) + strlen("/cryptoKeyVersions/");
	n += strspn(b + n, "0123456789");
	if (n < len)
		snprintf(out, len, "%.*s", (int)n, b);
}

/* A version named by Cloud EKM's google.rpc.PreconditionFailure details. */
static void ekm_details(struct json_object *err, struct cmk_gcp_error *out)
{
	struct json_object *details, *d, *t, *vs, *v, *f;

	if (!json_object_object_get_ex(err, "details", &details) ||
	    !json_object_is_type(details, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(details); i++) {
		d = json_object_array_get_idx(details, i);
		if (!json_object_object_get_ex(d, "@type", &t) ||
		    !json_object_is_type(t, json_type_string) ||
		    !strstr(json_object_get_string(t), "google.rpc.PreconditionFailure"))
			continue;
		if (!json_object_object_get_ex(d, "violations", &vs) ||
		    !json_object_is_type(vs, json_type_array))
			continue;
		for (size_t j = 0; j < json_object_array_length(vs); j++) {
			v = json_object_array_get_idx(vs, j);
			if (json_object_object_get_ex(v, "subject", &f) &&
			    json_object_is_type(f, json_type_string))
				find_version(json_object_get_string(f), out->version,
					     sizeof(out->version));
		}
	}
}

enum cmk_reason cmk_gcp_classify(long status, const char *body, size_t body_len,
				 struct cmk_gcp_error *out)
{
	struct cmk_gcp_error tmp;
	struct json_object *o = NULL, *err, *v;
	enum cmk_reason why = CMK_R_NONE;
	bool found = false;
	char state[40] = "";

	if (!out)
		out = &tmp;
	out->status[0] = out->message[0] = out->version[0] = '\0';
	out->confirm = false;
	if (status >= 200 && status <= 299)
		return CMK_R_NONE;
	if (body && body_len)
		o = cmk_json_parse_wiped(body, body_len);
	if (o && json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "error", &err) &&
	    json_object_is_type(err, json_type_object)) {
		if (json_object_object_get_ex(err, "status", &v) &&
		    json_object_is_type(v, json_type_string))
			cmk_printable(json_object_get_string(v),
				      (size_t)json_object_get_string_len(v),
				      out->status, sizeof(out->status), false);
		if (json_object_object_get_ex(err, "message", &v) &&
		    json_object_is_type(v, json_type_string)) {
			const char *m = json_object_get_string(v), *st;

			cmk_printable(m, (size_t)json_object_get_string_len(v),
				      out->message, sizeof(out->message), true);
			find_version(m, out->version, sizeof(out->version));
			/* Cloud KMS names a version's state; Cloud EKM's errors do not. */
			st = strstr(m, "current state is: ");
			if (st)
				snprintf(state, sizeof(state), "%.*s",
					 (int)strspn(st + 18, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_"),
					 st + 18);
		}
		ekm_details(err, out);
	}
	cmk_json_put_wiped(o);
	for (size_t i = 0; i < N_CODES && out->status[0]; i++) {
		if (strcmp(gcp_codes[i].status, out->status))
			continue;
		why = gcp_codes[i].reason;
		found = true;
		break;
	}
	if (found && !strcmp(out->status, "FAILED_PRECONDITION")) {
		why = state_reason(state);
		if (why == CMK_R_NONE) {
			why = CMK_R_UNAVAILABLE;
			out->confirm = true;
		}
	}
	if (found && !strcmp(out->status, "INVALID_ARGUMENT")) {
		if (strcasestr(out->message, "checksum"))
			why = CMK_R_UNAVAILABLE;	/* corrupted on the way */
		else if (strcasestr(out->message, "Decryption failed"))
			why = CMK_R_INVALID_CIPHERTEXT;
	}
	if (found)
		return why;
	return cmk_http_status_reason(status);
}

enum cmk_reason cmk_gcp_version_state_reason(long status, const char *body,
					     size_t body_len, char *state,
					     size_t state_len)
{
	struct json_object *o;
	enum cmk_reason why = CMK_R_UNAVAILABLE;
	const char *st;

	if (state_len)
		state[0] = '\0';
	if (status != 200)
		return cmk_gcp_classify(status, body, body_len, NULL) == CMK_R_NOT_FOUND ?
		       CMK_R_NOT_FOUND : CMK_R_UNAVAILABLE;
	o = cmk_json_parse_wiped(body, body_len);
	st = o ? cmk_json_str(o, "state", NULL) : NULL;
	if (st) {
		cmk_printable(st, strlen(st), state, state_len, false);
		if (state_reason(st) != CMK_R_NONE)
			why = state_reason(st);
	}
	cmk_json_put_wiped(o);
	return why;
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

/* The access token goes (wiped); the service account key is configuration. */
static void gcp_reset(void *priv)
{
	struct gcp *g = priv;

	cmk_gcp_token_forget(&g->tok);
}

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

	if (cmk_http_url_check("gcp", "endpoint", ep, CMK_URL_KMS, e))
		return -EINVAL;
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
		ret = cmk_check_trusted_file(ca, "ca_bundle", e);
		if (ret) {
			cmk_err_prefix(e, "gcp");
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
	struct cmk_gcp_error err;
	enum cmk_reason why = cmk_gcp_classify(r->status, r->body, r->body_len, &err);

	(void)arg;
	/* An ambiguous answer is confirmed (confirm_version()), not repeated. */
	return err.confirm ? CMK_R_NONE : why;
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
 * @method @body to @url with a token; any answer in *@r.  A 401 with a
 * cached token gets one more try with a fresh token (revoked or expired
 * early; a rotated service-account key is read again on the way, see
 * gcp_auth.h); the second 401 is an answer.
 */
static int kms_request(struct gcp *g, const char *op, const char *key_ref,
		       const char *method, const char *url, const char *body,
		       size_t body_len, struct cmk_http_response *r,
		       struct cmk_err *e)
{
	int ret;

	memset(r, 0, sizeof(*r));
	for (int attempt = 1; attempt <= 2; attempt++) {
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
			struct cmk_http_request hr = { method, url, hh, 2, body, body_len };

			ret = cmk_http_do(&g->http, &hr, kms_retry, NULL, r, e);
		}
		if (ret) {
			cmk_err_prefix(e, "gcp kms %s %s", op, key_ref);
			return ret;
		}
		if (r->status != 401 || attempt == 2)
			break;
		cmk_gcp_token_invalidate(&g->tok);
		cmk_http_response_free(r);
	}
	return 0;
}

/*
 * A FAILED_PRECONDITION that names no state is ambiguous (Cloud EKM: the
 * external key manager could not be reached, or refused): GET the key
 * version the answer names, a call that does not use the key, and let its
 * state decide.  @e holds the first answer's error on entry, the final one
 * on return.
 */
static int confirm_version(struct gcp *g, const char *op, const char *key_ref,
			   const char *version, struct cmk_err *e)
{
	struct cmk_http_response r = { 0 };
	char first[CMK_ERR_MSG_MAX], url[1024], state[40] = "", what[96];
	size_t kl = strlen(key_ref);
	enum cmk_reason why = CMK_R_UNAVAILABLE;
	struct cmk_err ge;
	const char *advice;

	snprintf(first, sizeof(first), "%s", e->msg);
	/* Only a version of this key, named in full. */
	if (strncmp(version, key_ref, kl) || strncmp(version + kl, "/cryptoKeyVersions/", 19) ||
	    !version[kl + 19] || version[kl + 19 + strspn(version + kl + 19, "0123456789")]) {
		snprintf(what, sizeof(what), "the answer names no version of this key");
	} else if ((size_t)snprintf(url, sizeof(url), "%s/v1/%s", g->endpoint, version) >=
		   sizeof(url) ||
		   kms_request(g, op, key_ref, "GET", url, NULL, 0, &r, &ge)) {
		snprintf(what, sizeof(what), "version %s: not answered", version + kl + 19);
	} else {
		why = cmk_gcp_version_state_reason(r.status, r.body, r.body_len, state,
						   sizeof(state));
		if (r.status == 200)
			snprintf(what, sizeof(what), "version %s is %s", version + kl + 19,
				 state[0] ? state : "(no state)");
		else
			snprintf(what, sizeof(what), "version %s: HTTP %ld", version + kl + 19,
				 r.status);
	}
	cmk_http_response_free(&r);
	advice = cmk_reason_class(why) == CMK_EC_DEFINITIVE ? "" :
		 !strcmp(state, "ENABLED") ?
		 ": the key version is enabled, so the external key manager failed, not a revocation" :
		 ": the version's state is unknown, so this is not taken as a revocation (grant roles/cloudkms.viewer on the key)";
	return cmk_err_kms(e, why, "%s; %s%s", first, what, advice);
}

/* POST @body to v1/{key_ref}:{op}; *resp on HTTP 200. */
static int kms_call(struct gcp *g, const char *op, const char *key_ref,
		    const char *body, size_t body_len, struct json_object **resp,
		    struct cmk_err *e)
{
	struct cmk_http_response r = { 0 };
	struct cmk_gcp_error err;
	char url[1024];
	int ret = 0;

	*resp = NULL;
	if ((size_t)snprintf(url, sizeof(url), "%s/v1/%s:%s", g->endpoint, key_ref, op) >=
	    sizeof(url))
		return cmk_errf(e, -EINVAL, "gcp: request URL too long");
	ret = kms_request(g, op, key_ref, "POST", url, body, body_len, &r, e);
	if (ret)
		return ret;
	if (r.status != 200) {
		ret = kms_error(g, op, key_ref, &r, e);
		cmk_gcp_classify(r.status, r.body, r.body_len, &err);
		if (err.confirm)
			ret = confirm_version(g, op, key_ref, err.version, e);
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
	CMK_SECRET_AUTO struct cmk_secret *body = NULL;
	struct gcp *g = priv;
	struct json_object *req = NULL, *resp = NULL;
	unsigned char *aad = NULL;
	size_t n = cmk_secret_len(plain), tl = 0, aad_len = 0, kl;
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
	req = json_object_new_object();
	if (!req || add_crc(req, "plaintextCrc32c", cmk_secret_cdata(plain), n) ||
	    cmk_json_add_b64(req, "additionalAuthenticatedData", aad, aad_len) ||
	    add_crc(req, "additionalAuthenticatedDataCrc32c", aad, aad_len)) {
		ret = cmk_errf(e, -ENOMEM, "gcp: out of memory");
		goto out;
	}
	ret = cmk_kms_plaintext_body("plaintext", plain, req, &body, &tl,
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
	size_t aad_len = 0;
	uint32_t crc;
	int ret;

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
	ret = cmk_kms_plaintext(resp, "plaintext", "gcp kms decrypt", key_ref,
				plain, e);
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
	.reset = gcp_reset,
};
