// SPDX-License-Identifier: GPL-2.0
/*
 * gcp_auth.c - access tokens for Cloud KMS: service-account JWT bearer
 * grant and the GCE metadata server (see gcp_auth.h).
 */
#include "kms/gcp/gcp_auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/json_secret.h"
#include "core/fileio.h"

#define KEY_FILE_MAX	(64 * 1024)
#define TOKEN_MAX	4096

static bool printable(const char *s)
{
	for (; *s; s++)
		if (*s <= ' ' || *s >= 0x7f)
			return false;
	return true;
}

/* ---- service-account key ------------------------------------------------ */

void cmk_gcp_sa_key_free(struct cmk_gcp_sa_key *k)
{
	EVP_PKEY_free(k->pkey);	/* OpenSSL clears the private parts */
	memset(k, 0, sizeof(*k));
}

int cmk_gcp_sa_key_parse(const char *json, size_t len, struct cmk_gcp_sa_key *k,
			 struct cmk_err *e)
{
	struct json_object *o = cmk_json_parse_wiped(json, len);
	const char *type, *email, *kid, *uri, *pem;
	size_t pem_len = 0;
	BIO *bio = NULL;
	int ret = 0;

	memset(k, 0, sizeof(*k));
	if (!o || !json_object_is_type(o, json_type_object)) {
		ret = cmk_errf(e, -EBADMSG, "not a JSON object");
		goto out;
	}
	type = cmk_json_str(o, "type", NULL);
	if (!type || strcmp(type, "service_account")) {
		ret = cmk_errf(e, -EINVAL, "\"type\" is \"%.40s\", not \"service_account\"",
			       type ? type : "");
		goto out;
	}
	email = cmk_json_str(o, "client_email", NULL);
	kid = cmk_json_str(o, "private_key_id", NULL);
	uri = cmk_json_str(o, "token_uri", NULL);
	pem = cmk_json_str(o, "private_key", &pem_len);
	if (!email || !kid || !uri || !pem) {
		ret = cmk_errf(e, -EINVAL,
			       "client_email, private_key_id, private_key or token_uri is missing");
		goto out;
	}
	if (!*email || strlen(email) >= sizeof(k->client_email) || !printable(email) ||
	    strlen(kid) >= sizeof(k->key_id) || !printable(kid)) {
		ret = cmk_errf(e, -EINVAL, "client_email or private_key_id is malformed");
		goto out;
	}
	if (strlen(uri) >= sizeof(k->token_uri) || !printable(uri)) {
		ret = cmk_errf(e, -EINVAL, "token_uri \"%.100s\" is not an http(s) URL", uri);
		goto out;
	}
	ret = cmk_http_url_check("gcp", "service account key token_uri", uri, CMK_URL_KMS, e);
	if (ret)
		goto out;
	snprintf(k->client_email, sizeof(k->client_email), "%s", email);
	snprintf(k->key_id, sizeof(k->key_id), "%s", kid);
	snprintf(k->token_uri, sizeof(k->token_uri), "%s", uri);
	bio = BIO_new_mem_buf(pem, (int)pem_len);
	if (bio)
		k->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	if (!k->pkey || EVP_PKEY_get_base_id(k->pkey) != EVP_PKEY_RSA) {
		ret = cmk_errf(e, -EINVAL, "private_key is not a PEM RSA private key");
		goto out;
	}
out:
	BIO_free(bio);
	cmk_json_put_wiped(o);
	if (ret)
		cmk_gcp_sa_key_free(k);
	return ret;
}

/* ---- JWT (RFC 7519 / 7523), RS256 --------------------------------------- */

/* base64url without padding of @n bytes into @out (room for 4*(n+2)/3+1). */
static size_t b64url(const unsigned char *in, size_t n, char *out)
{
	int m = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	size_t len = m > 0 ? (size_t)m : 0;

	while (len && out[len - 1] == '=')
		len--;
	for (size_t i = 0; i < len; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	out[len] = '\0';
	return len;
}

static char *b64url_json(struct json_object *o)
{
	size_t n = 0;
	const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n);
	char *out;

	if (!s)
		return NULL;
	out = malloc(4 * (n + 2) / 3 + 1);
	if (out)
		b64url((const unsigned char *)s, n, out);
	return out;
}

int cmk_gcp_jwt_sign(const struct cmk_gcp_sa_key *k, const char *scope,
		     time_t now, struct cmk_secret **jwt, struct cmk_err *e)
{
	struct json_object *hdr = json_object_new_object();
	struct json_object *cl = json_object_new_object();
	char *h64 = NULL, *c64 = NULL, *input = NULL;
	unsigned char *sig = NULL;
	EVP_MD_CTX *md = NULL;
	size_t sl = 0, il;
	int ret = -ENOMEM;

	*jwt = NULL;
	if (!hdr || !cl ||
	    json_object_object_add(hdr, "alg", json_object_new_string("RS256")) ||
	    json_object_object_add(hdr, "typ", json_object_new_string("JWT")) ||
	    json_object_object_add(hdr, "kid", json_object_new_string(k->key_id)) ||
	    json_object_object_add(cl, "iss", json_object_new_string(k->client_email)) ||
	    json_object_object_add(cl, "scope", json_object_new_string(scope)) ||
	    json_object_object_add(cl, "aud", json_object_new_string(CMK_GCP_TOKEN_AUD)) ||
	    json_object_object_add(cl, "iat", json_object_new_int64((int64_t)now)) ||
	    json_object_object_add(cl, "exp",
				   json_object_new_int64((int64_t)now + CMK_GCP_JWT_LIFETIME_S)))
		goto nomem;
	h64 = b64url_json(hdr);
	c64 = b64url_json(cl);
	if (!h64 || !c64)
		goto nomem;
	il = strlen(h64) + 1 + strlen(c64);
	input = malloc(il + 1);
	if (!input)
		goto nomem;
	snprintf(input, il + 1, "%s.%s", h64, c64);
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
	    EVP_DigestSign(md, NULL, &sl, (const unsigned char *)input, il) != 1 ||
	    !(sig = malloc(sl)) ||
	    EVP_DigestSign(md, sig, &sl, (const unsigned char *)input, il) != 1) {
		ret = cmk_errf(e, -EIO, "signing the JWT for %s failed (OpenSSL)",
			       k->client_email);
		goto out;
	}
	ret = cmk_secret_new(jwt, il + 1 + 4 * (sl + 2) / 3 + 1, e);
	if (ret)
		goto out;
	{
		char *p = (char *)cmk_secret_data(*jwt);
		size_t n;

		memcpy(p, input, il);
		p[il] = '.';
		n = b64url(sig, sl, p + il + 1);
		ret = cmk_secret_truncate(*jwt, il + 1 + n + 1, e);
	}
	goto out;
nomem:
	ret = cmk_errf(e, -ENOMEM, "out of memory");
out:
	if (sig)
		OPENSSL_cleanse(sig, sl);
	free(sig);
	EVP_MD_CTX_free(md);
	free(input);
	free(h64);
	free(c64);
	json_object_put(hdr);
	json_object_put(cl);
	if (ret)
		cmk_secret_free(jwt);
	return ret;
}

/* ---- token answers ------------------------------------------------------- */

int cmk_gcp_token_parse(const char *json, size_t len, time_t now,
			struct cmk_secret **bearer, time_t *exp,
			struct cmk_err *e)
{
	static const char prefix[] = "Bearer ";
	struct json_object *o = cmk_json_parse_wiped(json, len), *v;
	const char *tok, *type;
	size_t tl = 0;
	int64_t ttl;
	int ret;

	*bearer = NULL;
	if (!o || !json_object_is_type(o, json_type_object)) {
		ret = cmk_errf(e, -EBADMSG, "the token answer is not a JSON object");
		goto out;
	}
	tok = cmk_json_str(o, "access_token", &tl);
	type = cmk_json_str(o, "token_type", NULL);
	if (!tok || tl == 0 || tl > TOKEN_MAX || memchr(tok, '\0', tl) ||
	    strcspn(tok, " \t\r\n\"") != tl) {
		ret = cmk_errf(e, -EBADMSG, "the token answer has no valid access_token");
		goto out;
	}
	if (type && strcasecmp(type, "Bearer")) {
		ret = cmk_errf(e, -EBADMSG, "token_type is \"%.32s\", not Bearer", type);
		goto out;
	}
	if (!json_object_object_get_ex(o, "expires_in", &v) ||
	    !(json_object_is_type(v, json_type_int) ||
	      json_object_is_type(v, json_type_string)) ||
	    (ttl = json_object_get_int64(v)) <= 0 || ttl > 7 * 86400) {
		ret = cmk_errf(e, -EBADMSG, "the token answer has no valid expires_in");
		goto out;
	}
	ret = cmk_secret_new(bearer, sizeof(prefix) - 1 + tl + 1, e);
	if (ret)
		goto out;
	memcpy(cmk_secret_data(*bearer), prefix, sizeof(prefix) - 1);
	memcpy(cmk_secret_data(*bearer) + sizeof(prefix) - 1, tok, tl);
	*exp = now + (time_t)ttl;
out:
	cmk_json_put_wiped(o);
	return ret;
}

/* ---- the source ----------------------------------------------------------- */

/* The key file at s->key_path, parsed into *@k. */
static int read_sa_key(const struct cmk_gcp_token_src *s, struct cmk_gcp_sa_key *k,
		       struct cmk_err *e)
{
	char *buf = NULL;
	size_t len = 0;
	int ret;

	ret = cmk_read_trusted_file(s->key_path, KEY_FILE_MAX, "service account key",
				    &buf, &len, e);
	if (!ret)
		ret = cmk_gcp_sa_key_parse(buf, len, k, e);
	if (buf) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	if (ret)
		cmk_err_prefix(e, "gcp: service-account key %s", s->key_path);
	return ret;
}

static void adopt_sa_key(struct cmk_gcp_token_src *s, struct cmk_gcp_sa_key *k)
{
	cmk_gcp_sa_key_free(&s->sa);
	s->sa = *k;
	memset(k, 0, sizeof(*k));
	s->sa_loaded = true;
	snprintf(s->source, sizeof(s->source), "service account %s (key %.16s)",
		 s->sa.client_email, s->sa.key_id);
}

static int load_sa_key(struct cmk_gcp_token_src *s, struct cmk_err *e)
{
	struct cmk_gcp_sa_key k;
	int ret;

	ret = read_sa_key(s, &k, e);
	if (!ret)
		adopt_sa_key(s, &k);
	return ret;
}

int cmk_gcp_token_src_reload_key(struct cmk_gcp_token_src *s, bool *changed,
				 struct cmk_err *e)
{
	struct cmk_gcp_sa_key k;
	int ret;

	*changed = false;
	if (s->mode != CMK_GCP_CRED_SERVICE_ACCOUNT)
		return 0;
	ret = read_sa_key(s, &k, e);
	if (ret)
		return ret;
	if (s->sa_loaded && !strcmp(k.key_id, s->sa.key_id) &&
	    !strcmp(k.client_email, s->sa.client_email) &&
	    !strcmp(k.token_uri, s->sa.token_uri) &&
	    EVP_PKEY_eq(k.pkey, s->sa.pkey) == 1) {
		cmk_gcp_sa_key_free(&k);
		return 0;
	}
	adopt_sa_key(s, &k);
	*changed = true;
	return 0;
}

int cmk_gcp_token_src_init(struct cmk_gcp_token_src *s, const char *mode,
			   const char *key_path, const char *metadata,
			   const char *account, const struct cmk_http_opts *http,
			   struct cmk_err *e)
{
	const char *env;
	char host[256];
	size_t n;

	memset(s, 0, sizeof(*s));
	if (!mode || !strcmp(mode, "auto"))
		s->mode = CMK_GCP_CRED_AUTO;
	else if (!strcmp(mode, "metadata"))
		s->mode = CMK_GCP_CRED_METADATA;
	else if (!strcmp(mode, "service_account"))
		s->mode = CMK_GCP_CRED_SERVICE_ACCOUNT;
	else
		return cmk_errf(e, -EINVAL,
				"gcp: credentials \"%s\" is not auto, metadata or service_account",
				mode);
	if (!key_path || !*key_path) {
		env = getenv("GOOGLE_APPLICATION_CREDENTIALS");
		key_path = env && *env ? env : NULL;
	}
	if (s->mode == CMK_GCP_CRED_AUTO)
		s->mode = key_path ? CMK_GCP_CRED_SERVICE_ACCOUNT : CMK_GCP_CRED_METADATA;
	if (http)
		s->tok_http = *http;
	if (s->mode == CMK_GCP_CRED_SERVICE_ACCOUNT) {
		if (!key_path)
			return cmk_errf(e, -EINVAL,
					"gcp: credentials = service_account but neither service_account_key nor GOOGLE_APPLICATION_CREDENTIALS is set");
		if (snprintf(s->key_path, sizeof(s->key_path), "%s", key_path) >=
		    (int)sizeof(s->key_path))
			return cmk_errf(e, -EINVAL, "gcp: service_account_key path too long");
		return load_sa_key(s, e);
	}
	env = getenv("GCE_METADATA_HOST");
	if ((!metadata || !*metadata) && env && *env) {
		snprintf(host, sizeof(host), "http://%s", env);
		metadata = host;
	}
	if (!metadata || !*metadata)
		metadata = CMK_GCP_METADATA_DEFAULT;
	if (cmk_http_url_check("gcp", "metadata_endpoint", metadata, CMK_URL_METADATA, e))
		return -EINVAL;
	if (snprintf(s->metadata, sizeof(s->metadata), "%s", metadata) >=
	    (int)sizeof(s->metadata))
		return cmk_errf(e, -EINVAL, "gcp: metadata_endpoint too long");
	n = strlen(s->metadata);
	while (n && s->metadata[n - 1] == '/')
		s->metadata[--n] = '\0';
	if (!account || !*account)
		account = "default";
	/* It goes into a URL path: an e-mail address or "default". */
	if (strlen(account) >= sizeof(s->account) ||
	    strspn(account, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@._-") !=
	    strlen(account))
		return cmk_errf(e, -EINVAL, "gcp: service_account \"%s\" is not an e-mail address or \"default\"",
				account);
	snprintf(s->account, sizeof(s->account), "%s", account);
	snprintf(s->source, sizeof(s->source), "metadata server account %s", s->account);
	/* The metadata server is local: short timeouts, never a proxy. */
	s->md_http.connect_timeout_ms = 1000;
	s->md_http.timeout_ms = 3000;
	s->md_http.max_attempts = 3;
	s->md_http.no_proxy = true;
	return 0;
}

void cmk_gcp_token_src_free(struct cmk_gcp_token_src *s)
{
	cmk_secret_free(&s->bearer);
	cmk_gcp_sa_key_free(&s->sa);
	memset(s, 0, sizeof(*s));
}

void cmk_gcp_token_forget(struct cmk_gcp_token_src *s)
{
	cmk_secret_free(&s->bearer);
	s->issued = 0;
	s->exp = 0;
	s->stale = false;
}

void cmk_gcp_token_invalidate(struct cmk_gcp_token_src *s)
{
	s->stale = true;
}

bool cmk_gcp_token_needs_refresh(const struct cmk_gcp_token_src *s, time_t now)
{
	time_t margin;

	if (!s->bearer || s->stale)
		return true;
	margin = (s->exp - s->issued) / 2;
	if (margin > CMK_GCP_REFRESH_S)
		margin = CMK_GCP_REFRESH_S;
	return now >= s->exp - margin;
}

/* The OAuth error answer of a token endpoint -> reason and message. */
static int token_error(const struct cmk_gcp_token_src *s,
		       const struct cmk_http_response *r, struct cmk_err *e)
{
	struct json_object *o = cmk_json_parse_wiped(r->body, r->body_len);
	const char *err = NULL, *desc = NULL;
	enum cmk_reason why;
	char code[64] = "", msg[160] = "";

	if (o && json_object_is_type(o, json_type_object)) {
		err = cmk_json_str(o, "error", NULL);
		desc = cmk_json_str(o, "error_description", NULL);
	}
	if (err)
		snprintf(code, sizeof(code), "%s", err);
	if (desc)
		snprintf(msg, sizeof(msg), "%s", desc);
	cmk_printable(code, strlen(code), code, sizeof(code), true);
	cmk_printable(msg, strlen(msg), msg, sizeof(msg), true);
	cmk_json_put_wiped(o);
	if (r->status == 429)
		why = CMK_R_THROTTLED;
	else if (r->status >= 500)
		why = CMK_R_UNAVAILABLE;
	/* A clock far off makes the JWT "not in a reasonable timeframe". */
	else if (strcasestr(msg, "reasonable timeframe"))
		why = CMK_R_UNAVAILABLE;
	else if (!strcmp(code, "invalid_grant") || !strcmp(code, "unauthorized_client") ||
		 !strcmp(code, "access_denied") || r->status == 401 || r->status == 403)
		why = CMK_R_DENIED;
	else
		why = CMK_R_LOCAL;
	return cmk_err_kms(e, why, "gcp: token endpoint %s refused %s: HTTP %ld %s%s%s%s",
			   s->sa.token_uri, s->sa.client_email, r->status,
			   code[0] ? code : "error", msg[0] ? ": " : "", msg,
			   why == CMK_R_DENIED ?
			   " (the key or the account was deleted or disabled; create a new key)" :
			   why == CMK_R_UNAVAILABLE && r->status < 500 ?
			   " (check the system clock)" : "");
}

static int fetch_sa(struct cmk_gcp_token_src *s, time_t now,
		    struct cmk_secret **bearer, time_t *exp, struct cmk_err *e)
{
	static const char grant[] =
		"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
	CMK_SECRET_AUTO struct cmk_secret *jwt = NULL, *body = NULL;
	struct cmk_nv h[1] = { { "Content-Type", "application/x-www-form-urlencoded" } };
	struct cmk_http_request req = { "POST", s->sa.token_uri, h, 1, NULL, 0 };
	struct cmk_http_response r;
	size_t jl;
	int ret;

	ret = cmk_gcp_jwt_sign(&s->sa, CMK_GCP_SCOPE, now, &jwt, e);
	if (ret)
		return ret;
	jl = strlen((const char *)cmk_secret_cdata(jwt));	/* b64url: no escaping */
	ret = cmk_secret_new(&body, sizeof(grant) - 1 + jl + 1, e);
	if (ret)
		return ret;
	memcpy(cmk_secret_data(body), grant, sizeof(grant) - 1);
	memcpy(cmk_secret_data(body) + sizeof(grant) - 1, cmk_secret_cdata(jwt), jl);
	req.body = cmk_secret_cdata(body);
	req.body_len = sizeof(grant) - 1 + jl;
	ret = cmk_http_do(&s->tok_http, &req, NULL, NULL, &r, e);
	if (ret) {
		cmk_err_prefix(e, "gcp: token endpoint for %s", s->sa.client_email);
		return ret;
	}
	if (r.status != 200)
		ret = token_error(s, &r, e);
	else
		ret = cmk_gcp_token_parse(r.body, r.body_len, now, bearer, exp, e);
	if (ret && r.status == 200)
		cmk_err_prefix(e, "gcp: token endpoint %s", s->sa.token_uri);
	cmk_http_response_free(&r);
	return ret;
}

static int fetch_metadata(struct cmk_gcp_token_src *s, time_t now,
			  struct cmk_secret **bearer, time_t *exp,
			  struct cmk_err *e)
{
	struct cmk_nv h[1] = { { "Metadata-Flavor", "Google" } };
	struct cmk_http_request req = { "GET", NULL, h, 1, NULL, 0 };
	struct cmk_http_response r;
	char url[600], flavor[32];
	int ret;

	snprintf(url, sizeof(url),
		 "%s/computeMetadata/v1/instance/service-accounts/%s/token",
		 s->metadata, s->account);
	req.url = url;
	ret = cmk_http_do(&s->md_http, &req, NULL, NULL, &r, e);
	if (ret) {
		cmk_err_prefix(e, "gcp: metadata server");
		return ret;
	}
	if (!cmk_http_header(&r, "Metadata-Flavor", flavor, sizeof(flavor)) ||
	    strcmp(flavor, "Google")) {
		/* Something else answers on that address: not a revocation. */
		ret = cmk_err_kms(e, CMK_R_NETWORK,
				  "gcp: %s answered HTTP %ld without \"Metadata-Flavor: Google\"; it is not the metadata server",
				  s->metadata, r.status);
	} else if (r.status == 404) {
		ret = cmk_errf(e, -ENOENT,
			       "gcp: metadata server: no service account \"%s\" is attached to this VM",
			       s->account);
	} else if (r.status != 200) {
		ret = cmk_err_kms(e, r.status == 429 ? CMK_R_THROTTLED :
				  r.status >= 500 ? CMK_R_UNAVAILABLE : CMK_R_NETWORK,
				  "gcp: metadata server GET %s answered HTTP %ld", url,
				  r.status);
	} else {
		ret = cmk_gcp_token_parse(r.body, r.body_len, now, bearer, exp, e);
		if (ret)
			cmk_err_prefix(e, "gcp: metadata server");
	}
	cmk_http_response_free(&r);
	return ret;
}

int cmk_gcp_token_get(struct cmk_gcp_token_src *s, time_t now,
		      const char **bearer, struct cmk_err *e)
{
	struct cmk_secret *nb = NULL;
	time_t exp = 0;
	int ret;

	*bearer = NULL;
	if (!cmk_gcp_token_needs_refresh(s, now)) {
		*bearer = (const char *)cmk_secret_cdata(s->bearer);
		return 0;
	}
	if (s->mode == CMK_GCP_CRED_SERVICE_ACCOUNT) {
		bool changed = false;
		struct cmk_err re;

		ret = fetch_sa(s, now, &nb, &exp, e);
		if (!ret)
			cmk_cred_reload_ok(&s->reload);
		/* A rotated key: read the file again, ask once more. */
		if (ret && e->reason == CMK_R_DENIED) {
			int rr = cmk_gcp_token_src_reload_key(s, &changed, &re);

			/*
			 * A key file that does not parse (being rewritten:
			 * half written, gone for a moment) says nothing about
			 * the key: for a while not a revocation (credreload.h).
			 */
			if (rr && cmk_cred_reload_failed(&s->reload, &re)) {
				size_t n = strlen(e->msg);

				cmk_cred_reload_note(&s->reload, &re, e->msg + n,
						     sizeof(e->msg) - n);
			} else if (rr) {
				char what[400];

				snprintf(what, sizeof(what),
					 "gcp: the token endpoint rejected %s (its key file)", s->source);
				ret = cmk_cred_reload_defer(&s->reload, what, &re, rr, e);
			} else {
				cmk_cred_reload_ok(&s->reload);
				if (changed)
					ret = fetch_sa(s, now, &nb, &exp, e);
			}
		}
	} else {
		ret = fetch_metadata(s, now, &nb, &exp, e);
	}
	if (ret) {
		/* Through an outage keep using a token that has not expired. */
		if (s->bearer && !s->stale && now < s->exp &&
		    cmk_reason_class(e->reason) == CMK_EC_TRANSIENT) {
			*bearer = (const char *)cmk_secret_cdata(s->bearer);
			return 0;
		}
		return ret;
	}
	cmk_secret_free(&s->bearer);
	s->bearer = nb;
	s->issued = now;
	s->exp = exp;
	s->stale = false;
	*bearer = (const char *)cmk_secret_cdata(s->bearer);
	return 0;
}
