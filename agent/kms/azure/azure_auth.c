// SPDX-License-Identifier: GPL-2.0
/*
 * azure_auth.c - Entra ID tokens (managed identity, service principal) and
 * the Key Vault challenge (see azure_auth.h, Documentation/azure.rst).
 */
#include "kms/azure/azure_auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/crypto.h>

#include "kms/credreload.h"
#include "core/json_secret.h"
#include "core/fileio.h"
#include "kms/provider_settings.h"
#include "kms/provider_util.h"

#define SECRET_FILE_MAX	4096

void cmk_azure_token_free(struct cmk_azure_token *t)
{
	cmk_secret_free(&t->token);
	memset(t, 0, sizeof(*t));
}

/* ---- parsers ---------------------------------------------------------------- */

static bool json_time(struct json_object *o, const char *k, long long *out)
{
	struct json_object *v;
	const char *s;
	char *end;

	if (!json_object_object_get_ex(o, k, &v))
		return false;
	if (json_object_is_type(v, json_type_int)) {
		*out = json_object_get_int64(v);
		return true;
	}
	if (!json_object_is_type(v, json_type_string))
		return false;
	s = json_object_get_string(v);
	errno = 0;
	*out = strtoll(s, &end, 10);
	return !errno && end != s && !*end;
}

static bool token_chars_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f)
			return false;
	return true;
}

int cmk_azure_token_parse(const char *json, size_t len, time_t now,
			  struct cmk_azure_token *t, struct cmk_err *e)
{
	struct json_object *o = cmk_json_parse_wiped(json, len), *v;
	long long on = 0, in = 0;
	const char *tok;
	size_t tl;
	int ret;

	if (!o || !json_object_is_type(o, json_type_object)) {
		ret = cmk_errf(e, -EPROTO, "the token answer is not a JSON object");
		goto out;
	}
	if (!json_object_object_get_ex(o, "access_token", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		ret = cmk_errf(e, -EPROTO, "the token answer has no access_token");
		goto out;
	}
	tok = json_object_get_string(v);
	tl = (size_t)json_object_get_string_len(v);
	if (tl == 0 || tl > CMK_AZURE_TOKEN_MAX || !token_chars_ok(tok, tl)) {
		ret = cmk_errf(e, -EPROTO,
			       "the token answer's access_token is empty, too long or not printable");
		goto out;
	}
	if (json_object_object_get_ex(o, "token_type", &v) &&
	    (!json_object_is_type(v, json_type_string) ||
	     strcasecmp(json_object_get_string(v), "Bearer"))) {
		ret = cmk_errf(e, -EPROTO, "the token answer's token_type is not Bearer");
		goto out;
	}
	/*
	 * expires_in first: counted on our own clock from when the answer
	 * came, it is immune to skew between this machine and the token
	 * service (a VM's clock after a resume, a guest's RTC); expires_on
	 * (absolute) only when there is nothing else.
	 */
	if (json_time(o, "expires_in", &in) && in > 0 && in < 10L * 365 * 86400) {
		on = (long long)now + in;
	} else if (json_time(o, "expires_on", &on) && on > 0) {
		if (on <= (long long)now) {
			ret = cmk_errf(e, -EPROTO, "the token answer's expires_on is in the past");
			goto out;
		}
	} else {
		ret = cmk_errf(e, -EPROTO,
			       "the token answer has neither expires_in nor expires_on");
		goto out;
	}
	cmk_secret_free(&t->token);
	ret = cmk_secret_new(&t->token, tl + 1, e);
	if (ret)
		goto out;
	memcpy(cmk_secret_data(t->token), tok, tl);
	ret = cmk_secret_truncate(t->token, tl, e);
	if (ret) {
		cmk_secret_free(&t->token);
		goto out;
	}
	t->expires_on = (time_t)on;
	t->obtained = now;
out:
	cmk_json_put_wiped(o);
	return ret;
}

bool cmk_azure_token_fresh(const struct cmk_azure_token *t, time_t now)
{
	time_t life, margin;

	if (!t->token)
		return false;
	life = t->expires_on - t->obtained;
	margin = life / 2 < CMK_AZURE_REFRESH_S ? life / 2 : CMK_AZURE_REFRESH_S;
	if (margin < 1)
		margin = 1;
	return now < t->expires_on - margin;
}

enum cmk_reason cmk_azure_token_classify(bool imds, long status,
					 const char *body, size_t len,
					 char *code, size_t code_len,
					 char *msg, size_t msg_len)
{
	struct json_object *o = NULL, *v;

	if (code_len)
		code[0] = '\0';
	if (msg_len)
		msg[0] = '\0';
	if (status >= 200 && status <= 299)
		return CMK_R_NONE;
	if (body && len)
		o = cmk_json_parse_wiped(body, len);
	if (o && json_object_is_type(o, json_type_object)) {
		if (json_object_object_get_ex(o, "error", &v) &&
		    json_object_is_type(v, json_type_string))
			cmk_printable(json_object_get_string(v),
				      (size_t)json_object_get_string_len(v),
				      code, code_len, true);
		if (json_object_object_get_ex(o, "error_description", &v) &&
		    json_object_is_type(v, json_type_string))
			cmk_printable(json_object_get_string(v),
				      (size_t)json_object_get_string_len(v),
				      msg, msg_len, true);
	}
	cmk_json_put_wiped(o);
	if (status == 429)
		return CMK_R_THROTTLED;
	if (status >= 500)
		return CMK_R_UNAVAILABLE;
	if (imds) {
		/* IMDS: 404 (identity not ready) and 410 (upgrading) pass. */
		if (status == 404 || status == 410)
			return CMK_R_UNAVAILABLE;
		return CMK_R_LOCAL;	/* 400: no such identity on this VM */
	}
	if (code_len && code[0]) {
		if (!strcmp(code, "invalid_client") ||
		    !strcmp(code, "unauthorized_client") ||
		    !strcmp(code, "invalid_grant"))
			return CMK_R_DENIED;
		if (!strcmp(code, "temporarily_unavailable"))
			return CMK_R_UNAVAILABLE;
	}
	/* invalid_request, invalid_scope, ... are local. */
	return cmk_http_status_reason(status);
}

static void strip(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '"' || **s == '\t'))
		(*s)++, (*n)--;
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '"' ||
		      (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r'))
		(*n)--;
}

/*
 * Copy the value of challenge parameter @key into @out.  As the SDK: items
 * split at ',', an item with exactly one '=' is a pair, quotes and spaces
 * stripped from both sides.
 */
static bool param(const char *hdr, const char *key, char *out, size_t len)
{
	const char *p = hdr;

	while (*p) {
		size_t il = strcspn(p, ",");
		const char *eq = memchr(p, '=', il), *k = p, *v;
		size_t kn, vn;

		if (eq && !memchr(eq + 1, '=', il - (size_t)(eq + 1 - p))) {
			kn = (size_t)(eq - p);
			v = eq + 1;
			vn = il - (size_t)(v - p);
			strip(&k, &kn);
			strip(&v, &vn);
			if (kn == strlen(key) && !strncasecmp(k, key, kn) &&
			    vn && vn < len) {
				cmk_printable(v, vn, out, len, true);
				return true;
			}
		}
		p += il;
		if (*p)
			p++;
	}
	return false;
}

int cmk_azure_challenge_parse(const char *hdr, struct cmk_azure_challenge *c,
			      struct cmk_err *e)
{
	char scope[CMK_AZURE_URL_MAX];
	const char *p, *t;
	size_t n;

	memset(c, 0, sizeof(*c));
	if (!hdr)
		return cmk_errf(e, -EPROTO, "no WWW-Authenticate challenge in the answer");
	while (*hdr == ' ')
		hdr++;
	if (strncasecmp(hdr, "Bearer ", 7))
		return cmk_errf(e, -EPROTO, "the WWW-Authenticate challenge is not a Bearer challenge");
	hdr += 7;
	if (!param(hdr, "authorization_uri", c->authorization, sizeof(c->authorization)) &&
	    !param(hdr, "authorization", c->authorization, sizeof(c->authorization)))
		return cmk_errf(e, -EPROTO,
				"the WWW-Authenticate challenge names no authorization server");
	if (param(hdr, "scope", scope, sizeof(scope))) {
		n = strlen(scope);
		if (n > 9 && !strcmp(scope + n - 9, "/.default"))
			scope[n - 9] = '\0';
		snprintf(c->resource, sizeof(c->resource), "%s", scope);
	} else if (!param(hdr, "resource", c->resource, sizeof(c->resource))) {
		return cmk_errf(e, -EPROTO,
				"the WWW-Authenticate challenge names no resource or scope");
	}
	if (strncasecmp(c->resource, "https://", 8) || !c->resource[8])
		return cmk_errf(e, -EPROTO, "the challenge resource \"%s\" is not an https URL",
				c->resource);
	/* tenant: first path segment of the authorization URL */
	p = strstr(c->authorization, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	if (p) {
		p++;
		t = p + strcspn(p, "/?#");
		n = (size_t)(t - p);
		if (n && n < sizeof(c->tenant))
			snprintf(c->tenant, sizeof(c->tenant), "%.*s", (int)n, p);
	}
	return 0;
}

bool cmk_azure_challenge_resource_ok(const char *vault_host, const char *resource)
{
	const char *h = resource, *end;
	size_t hl, vl = strlen(vault_host);

	if (strncasecmp(h, "https://", 8))
		return false;
	h += 8;
	end = h + strcspn(h, "/?#");
	hl = (size_t)(end - h);
	if (hl == 0 || vl < hl + 2)
		return false;
	return vault_host[vl - hl - 1] == '.' &&
	       strncasecmp(vault_host + vl - hl, h, hl) == 0;
}

/* ---- sources ------------------------------------------------------------------ */

static int copy_setting(char *dst, size_t len, const char *what, const char *v,
			struct cmk_err *e)
{
	size_t n = strlen(v);

	if (n >= len)
		return cmk_errf(e, -EINVAL, "azure: %s is too long", what);
	for (size_t i = 0; i < n; i++)
		if (v[i] <= ' ' || v[i] >= 0x7f)
			return cmk_errf(e, -EINVAL, "azure: %s has a space or control character",
					what);
	memcpy(dst, v, n + 1);
	while (n && dst[n - 1] == '/')
		dst[--n] = '\0';
	return 0;
}

/* The secret from @file (or AZURE_CLIENT_SECRET) into *@out. */
static int read_secret(const char *file, struct cmk_secret **out,
		       struct cmk_err *e)
{
	const char *env = cmk_env_nonempty("AZURE_CLIENT_SECRET");
	char *buf = NULL;
	size_t n = 0;
	int ret;

	if (file) {
		ret = cmk_read_trusted_file(file, SECRET_FILE_MAX, "client secret file",
					    &buf, &n, e);
		if (ret) {
			cmk_err_prefix(e, "azure: client_secret_file");
			return ret;
		}
		while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
			     buf[n - 1] == ' '))
			n--;
	} else if (env) {
		n = strlen(env);
	}
	if (n == 0) {
		ret = cmk_errf(e, -EINVAL,
			       "azure: service_principal needs a client secret: set client_secret_file or AZURE_CLIENT_SECRET");
		goto out;
	}
	ret = cmk_secret_new(out, n, e);
	if (!ret)
		memcpy(cmk_secret_data(*out), file ? buf : env, n);
out:
	if (buf) {
		OPENSSL_cleanse(buf, n);
		free(buf);
	}
	return ret;
}

static int load_secret(struct cmk_azure_auth *a, const char *file,
		       struct cmk_err *e)
{
	if (file && snprintf(a->secret_file, sizeof(a->secret_file), "%s", file) >=
		    (int)sizeof(a->secret_file))
		return cmk_errf(e, -EINVAL, "azure: client_secret_file path too long");
	return read_secret(file, &a->client_secret, e);
}

int cmk_azure_auth_reload_secret(struct cmk_azure_auth *a, bool *changed,
				 struct cmk_err *e)
{
	struct cmk_secret *s = NULL;
	int ret;

	*changed = false;
	if (a->mode != CMK_AZURE_CRED_SERVICE_PRINCIPAL)
		return 0;
	ret = read_secret(a->secret_file[0] ? a->secret_file : NULL, &s, e);
	if (ret)
		return ret;
	if (a->client_secret && cmk_secret_equal(s, a->client_secret)) {
		cmk_secret_free(&s);
		return 0;
	}
	cmk_secret_free(&a->client_secret);
	a->client_secret = s;
	*changed = true;
	return 0;
}

int cmk_azure_auth_init(struct cmk_azure_auth *a, const char *mode,
			const char *client_id, const char *tenant_id,
			const char *secret_file, const char *authority,
			const char *imds, const char *ca_bundle,
			struct cmk_err *e)
{
	int ret;

	memset(a, 0, sizeof(*a));
	if (!mode)
		mode = (secret_file || cmk_env_nonempty("AZURE_CLIENT_SECRET")) ?
		       "service_principal" : "managed_identity";
	if (!strcmp(mode, "managed_identity"))
		a->mode = CMK_AZURE_CRED_MANAGED_IDENTITY;
	else if (!strcmp(mode, "service_principal"))
		a->mode = CMK_AZURE_CRED_SERVICE_PRINCIPAL;
	else
		return cmk_errf(e, -EINVAL,
				"azure: credentials = \"%s\": use managed_identity or service_principal",
				mode);
	if (!client_id)
		client_id = cmk_env_nonempty("AZURE_CLIENT_ID");
	if (!tenant_id)
		tenant_id = cmk_env_nonempty("AZURE_TENANT_ID");
	if (!authority)
		authority = cmk_env_nonempty("AZURE_AUTHORITY_HOST");
	if (!authority)
		authority = CMK_AZURE_AUTHORITY_DEFAULT;
	if (!imds)
		imds = CMK_AZURE_IMDS_DEFAULT;
	ret = copy_setting(a->authority, sizeof(a->authority), "authority", authority, e) ?:
	      copy_setting(a->imds, sizeof(a->imds), "imds_endpoint", imds, e) ?:
	      (client_id ? copy_setting(a->client_id, sizeof(a->client_id), "client_id",
					client_id, e) : 0) ?:
	      (tenant_id ? copy_setting(a->tenant_id, sizeof(a->tenant_id), "tenant_id",
					tenant_id, e) : 0);
	if (ret)
		goto out;
	if (strncmp(a->authority, "https://", 8)) {
		ret = cmk_errf(e, -EINVAL, "azure: authority %s is not an https URL",
			       a->authority);
		goto out;
	}
	if (cmk_http_url_check("azure", "imds_endpoint", a->imds, CMK_URL_METADATA, e)) {
		ret = -EINVAL;
		goto out;
	}
	a->http.ca_bundle = ca_bundle;
	a->imds_http.no_proxy = true;
	a->imds_http.connect_timeout_ms = 2000;
	a->imds_http.timeout_ms = 5000;
	if (a->mode == CMK_AZURE_CRED_SERVICE_PRINCIPAL) {
		if (!a->client_id[0] || !a->tenant_id[0]) {
			ret = cmk_errf(e, -EINVAL,
				       "azure: service_principal needs client_id and tenant_id (settings or AZURE_CLIENT_ID, AZURE_TENANT_ID)");
			goto out;
		}
		ret = load_secret(a, secret_file, e);
		if (ret)
			goto out;
		snprintf(a->source, sizeof(a->source), "service principal %s",
			 a->client_id);
	} else if (a->client_id[0]) {
		snprintf(a->source, sizeof(a->source), "managed identity %s", a->client_id);
	} else {
		snprintf(a->source, sizeof(a->source), "system-assigned managed identity");
	}
out:
	if (ret)
		cmk_azure_auth_free(a);
	return ret;
}

void cmk_azure_auth_free(struct cmk_azure_auth *a)
{
	cmk_secret_free(&a->client_secret);
	cmk_azure_token_free(&a->cur);
	a->have = false;
}

void cmk_azure_token_invalidate(struct cmk_azure_auth *a)
{
	cmk_azure_token_free(&a->cur);
	a->have = false;
}

/* ---- fetching ------------------------------------------------------------------ */

/* IMDS: 404 (identity not ready yet), 410 (upgrading), 429, 5xx pass. */
static enum cmk_reason imds_retry(const struct cmk_http_response *r, void *arg)
{
	(void)arg;
	if (r->status == 429)
		return CMK_R_THROTTLED;
	if (r->status == 404 || r->status == 410 || r->status >= 500)
		return CMK_R_UNAVAILABLE;
	return CMK_R_NONE;
}

static int token_error(struct cmk_azure_auth *a, bool imds,
		       const struct cmk_http_response *r, struct cmk_err *e)
{
	char code[64], msg[160];
	enum cmk_reason why;

	why = cmk_azure_token_classify(imds, r->status, r->body, r->body_len,
				       code, sizeof(code), msg, sizeof(msg));
	/* Most useful first: the message may be cut at CMK_ERR_MSG_MAX. */
	return cmk_err_kms(e, why, "%s token for %s: %s, HTTP %ld%s%s%s",
			   imds ? "IMDS" : "Entra ID", a->source,
			   code[0] ? code : "error", r->status,
			   msg[0] ? ": " : "", msg,
			   why == CMK_R_DENIED ? " (fix the service principal's secret or role)" : "");
}

static int fetch_imds(struct cmk_azure_auth *a, time_t now, const char *resource,
		      struct cmk_azure_token *t, struct cmk_err *e)
{
	struct cmk_http_response r = { 0 };
	struct cmk_nv h[] = { { "Metadata", "true" } };
	char *res = NULL, *cid = NULL, url[1024];
	int ret;

	/* curl_free() below must free what libcurl's own allocator gave. */
	ret = cmk_http_global_init(e);
	if (ret)
		return ret;
	res = curl_easy_escape(NULL, resource, 0);
	if (a->client_id[0])
		cid = curl_easy_escape(NULL, a->client_id, 0);
	if (!res || (a->client_id[0] && !cid)) {
		ret = cmk_errf(e, -ENOMEM, "azure: out of memory");
		goto out;
	}
	if ((size_t)snprintf(url, sizeof(url),
			     "%s/metadata/identity/oauth2/token?api-version=2018-02-01&resource=%s%s%s",
			     a->imds, res, cid ? "&client_id=" : "", cid ? cid : "") >= sizeof(url)) {
		ret = cmk_errf(e, -EINVAL, "azure: IMDS URL too long");
		goto out;
	}
	{
		struct cmk_http_request req = { "GET", url, h, 1, NULL, 0 };

		ret = cmk_http_do(&a->imds_http, &req, imds_retry, NULL, &r, e);
	}
	if (ret) {
		cmk_err_prefix(e, "IMDS token for %s", a->source);
		goto out;
	}
	if (r.status != 200) {
		ret = token_error(a, true, &r, e);
		goto out;
	}
	ret = cmk_azure_token_parse(r.body, r.body_len, now, t, e);
	if (ret) {
		cmk_err_prefix(e, "IMDS token for %s", a->source);
		e->cls = CMK_EC_TRANSIENT;	/* a broken answer, not a refusal */
		e->reason = CMK_R_UNAVAILABLE;
	}
out:
	curl_free(res);
	curl_free(cid);
	cmk_http_response_free(&r);
	return ret;
}

/* application/x-www-form-urlencoded value of @s appended at @out + *off. */
static void form_append(unsigned char *out, size_t *off, const unsigned char *s,
			size_t n)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
		    c == '~') {
			out[(*off)++] = c;
		} else {
			out[(*off)++] = '%';
			out[(*off)++] = (unsigned char)hex[c >> 4];
			out[(*off)++] = (unsigned char)hex[c & 15];
		}
	}
}

static int fetch_aad(struct cmk_azure_auth *a, time_t now, const char *resource,
		     const char *tenant, struct cmk_azure_token *t,
		     struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *body = NULL;
	struct cmk_http_response r = { 0 };
	struct cmk_nv h[] = {
		{ "Content-Type", "application/x-www-form-urlencoded" },
		{ "Accept", "application/json" },
	};
	static const char g[] = "grant_type=client_credentials&client_id=";
	char url[1024], scope[CMK_AZURE_URL_MAX + 16];
	size_t off = 0, cap;
	unsigned char *b;
	int ret;

	if (tenant && *tenant && strcasecmp(tenant, a->tenant_id))
		return cmk_errf(e, -EPERM,
				"azure: the vault's challenge names tenant %s but the service principal is in tenant %s",
				tenant, a->tenant_id);
	if ((size_t)snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/token", a->authority,
			     a->tenant_id) >= sizeof(url))
		return cmk_errf(e, -EINVAL, "azure: token URL too long");
	snprintf(scope, sizeof(scope), "%s/.default", resource);
	cap = sizeof(g) + 3 * (strlen(a->client_id) + cmk_secret_len(a->client_secret) +
			       strlen(scope)) + 64;
	ret = cmk_secret_new(&body, cap, e);
	if (ret)
		return ret;
	b = cmk_secret_data(body);
	memcpy(b, g, sizeof(g) - 1);
	off = sizeof(g) - 1;
	form_append(b, &off, (const unsigned char *)a->client_id, strlen(a->client_id));
	memcpy(b + off, "&client_secret=", 15);
	off += 15;
	form_append(b, &off, cmk_secret_cdata(a->client_secret),
		    cmk_secret_len(a->client_secret));
	memcpy(b + off, "&scope=", 7);
	off += 7;
	form_append(b, &off, (const unsigned char *)scope, strlen(scope));
	{
		struct cmk_http_request req = { "POST", url, h, 2, b, off };

		ret = cmk_http_do(&a->http, &req, NULL, NULL, &r, e);
	}
	if (ret) {
		cmk_err_prefix(e, "Entra ID token for %s", a->source);
		goto out;
	}
	if (r.status != 200) {
		ret = token_error(a, false, &r, e);
		goto out;
	}
	ret = cmk_azure_token_parse(r.body, r.body_len, now, t, e);
	if (ret) {
		cmk_err_prefix(e, "Entra ID token for %s", a->source);
		e->cls = CMK_EC_TRANSIENT;
		e->reason = CMK_R_UNAVAILABLE;
	}
out:
	cmk_http_response_free(&r);
	return ret;
}

int cmk_azure_token_get(struct cmk_azure_auth *a, time_t now,
			const char *resource, const char *tenant,
			const struct cmk_secret **tok, struct cmk_err *e)
{
	struct cmk_azure_token t = { 0 };
	bool same = a->have && !strcmp(a->cur.resource, resource);
	int ret;

	*tok = NULL;
	if (same && cmk_azure_token_fresh(&a->cur, now)) {
		*tok = a->cur.token;
		return 0;
	}
	if (strlen(resource) >= sizeof(t.resource))
		return cmk_errf(e, -EINVAL, "azure: resource %s is too long", resource);
	if (a->mode == CMK_AZURE_CRED_MANAGED_IDENTITY) {
		ret = fetch_imds(a, now, resource, &t, e);
	} else {
		bool changed = false;
		struct cmk_err re;

		ret = fetch_aad(a, now, resource, tenant, &t, e);
		if (!ret)
			cmk_cred_reload_ok(&a->reload);
		/* A rotated secret: read it again, ask once more. */
		if (ret && e->reason == CMK_R_DENIED) {
			int rr = cmk_azure_auth_reload_secret(a, &changed, &re);

			/*
			 * A secret file that does not read (being rewritten:
			 * empty, gone for a moment) says nothing about the
			 * key: for a while not a revocation (credreload.h).
			 */
			if (rr && cmk_cred_reload_failed(&a->reload, &re)) {
				size_t n = strlen(e->msg);

				cmk_cred_reload_note(&a->reload, &re, e->msg + n,
						     sizeof(e->msg) - n);
			} else if (rr) {
				char what[400];

				snprintf(what, sizeof(what),
					 "Entra ID rejected the client secret of %s", a->source);
				ret = cmk_cred_reload_defer(&a->reload, what, &re, rr, e);
			} else {
				cmk_cred_reload_ok(&a->reload);
				if (changed) {
					cmk_azure_token_free(&t);
					ret = fetch_aad(a, now, resource, tenant, &t, e);
				}
			}
		}
	}
	if (ret) {
		cmk_azure_token_free(&t);
		/* Refresh failed, but the token we have still works: use it. */
		if (same && a->cur.token && now + 2 < a->cur.expires_on &&
		    cmk_reason_class(e->reason) == CMK_EC_TRANSIENT) {
			*tok = a->cur.token;
			return 0;
		}
		return ret;
	}
	snprintf(t.resource, sizeof(t.resource), "%s", resource);
	cmk_azure_token_free(&a->cur);
	a->cur = t;
	a->have = true;
	a->fetches++;
	*tok = a->cur.token;
	return 0;
}
