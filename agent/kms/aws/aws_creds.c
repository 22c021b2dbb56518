// SPDX-License-Identifier: GPL-2.0
/*
 * aws_creds.c - AWS credential chain: environment, shared files, IMDSv2
 * (see aws_creds.h).
 */
#include "kms/aws/aws_creds.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "core/codec.h"
#include "core/fileio.h"
#include "core/json_secret.h"

#define CRED_FILE_MAX	(256 * 1024)

/* ---- credentials ------------------------------------------------------------ */

void cmk_aws_creds_free(struct cmk_aws_creds *c)
{
	cmk_secret_free(&c->secret_key);
	cmk_secret_free(&c->session_token);
	memset(c, 0, sizeof(*c));
}

static int secret_from(struct cmk_secret **out, const char *s, size_t n,
		       struct cmk_err *e)
{
	int ret;

	ret = cmk_secret_new(out, n, e);
	if (ret)
		return ret;
	memcpy(cmk_secret_data(*out), s, n);
	return 0;
}

static bool akid_ok(const char *s, size_t n)
{
	if (n == 0 || n > CMK_AWS_AKID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

/* Fill @c from the three strings; @tok may be NULL or empty. */
static int creds_set(struct cmk_aws_creds *c, const char *akid, size_t al,
		     const char *sk, size_t sl, const char *tok, size_t tl,
		     const char *where, struct cmk_err *e)
{
	int ret;

	cmk_aws_creds_free(c);
	if (!akid_ok(akid, al))
		return cmk_errf(e, -EINVAL, "%s: the access key id is empty or not alphanumeric",
				where);
	if (sl == 0 || sl > 1024)
		return cmk_errf(e, -EINVAL, "%s: the secret access key is missing", where);
	if (tl > 8192)
		return cmk_errf(e, -EINVAL, "%s: the session token is too long", where);
	memcpy(c->access_key_id, akid, al);
	c->access_key_id[al] = '\0';
	ret = secret_from(&c->secret_key, sk, sl, e);
	if (!ret && tok && tl)
		ret = secret_from(&c->session_token, tok, tl, e);
	if (ret)
		cmk_aws_creds_free(c);
	return ret;
}

int cmk_aws_creds_from_env(struct cmk_aws_creds *c, struct cmk_err *e)
{
	const char *a = getenv("AWS_ACCESS_KEY_ID");
	const char *s = getenv("AWS_SECRET_ACCESS_KEY");
	const char *t = getenv("AWS_SESSION_TOKEN");
	int ret;

	if (!a || !*a)
		return -ENOENT;
	if (!s || !*s)
		return cmk_errf(e, -EINVAL,
				"AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
	ret = creds_set(c, a, strlen(a), s, strlen(s), t, t ? strlen(t) : 0,
			"environment", e);
	if (!ret)
		snprintf(c->source, sizeof(c->source), "environment");
	return ret;
}

static const char *trim(char *s, char **end)
{
	char *t;

	while (*s == ' ' || *s == '\t')
		s++;
	t = s + strlen(s);
	while (t > s && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r'))
		t--;
	*t = '\0';
	if (end)
		*end = t;
	return s;
}

/* Does section header text @sec (inside the brackets) name @profile? */
static bool section_is(const char *sec, const char *profile, bool config_file)
{
	if (!config_file)
		return strcmp(sec, profile) == 0;
	if (strcmp(profile, "default") == 0 && strcmp(sec, "default") == 0)
		return true;
	if (strncmp(sec, "profile", 7) || (sec[7] != ' ' && sec[7] != '\t'))
		return false;
	sec += 8;
	while (*sec == ' ' || *sec == '\t')
		sec++;
	return strcmp(sec, profile) == 0;
}

int cmk_aws_profile_parse(const char *text, size_t len, const char *profile,
			  bool config_file, struct cmk_aws_creds *c,
			  char *region, size_t region_len, struct cmk_err *e)
{
	const char *akid = NULL, *sk = NULL, *tok = NULL;
	char *copy, *line, *save = NULL;
	bool in = false, found = false;
	int ret, lineno = 0, akid_line = 0;

	if (region && region_len)
		region[0] = '\0';
	copy = malloc(len + 1);
	if (!copy)
		return cmk_errf(e, -ENOMEM, "out of memory");
	memcpy(copy, text, len);
	copy[len] = '\0';
	if (memchr(text, '\0', len)) {
		ret = cmk_errf(e, -EINVAL, "NUL byte in the file");
		goto out;
	}
	/* strtok_r skips empty lines, which are meaningless here anyway. */
	for (line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *end;
		const char *l = trim(line, &end), *k, *v;
		char *eq;

		lineno++;
		if (!*l || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *close = strchr(l, ']');

			if (!close) {
				ret = cmk_errf(e, -EINVAL, "line %d: unterminated section header",
					       lineno);
				goto out;
			}
			*close = '\0';
			in = section_is(trim((char *)l + 1, NULL), profile, config_file);
			found |= in;
			continue;
		}
		if (!in)
			continue;
		eq = strchr(l, '=');
		if (!eq)
			continue;	/* nested sub-sections ("s3 =") and the like */
		*eq = '\0';
		k = trim((char *)l, NULL);
		v = trim(eq + 1, NULL);
		if (strcmp(k, "aws_access_key_id") == 0) {
			akid = v;
			akid_line = lineno;
		} else if (strcmp(k, "aws_secret_access_key") == 0) {
			sk = v;
		} else if (strcmp(k, "aws_session_token") == 0) {
			tok = v;
		} else if (strcmp(k, "region") == 0 && region && region_len) {
			snprintf(region, region_len, "%s", v);
		}
	}
	if (!found || (!akid && !sk)) {
		ret = -ENOENT;
		goto out;
	}
	if (!akid || !sk) {
		ret = cmk_errf(e, -EINVAL, "profile \"%s\" has %s but not %s", profile,
			       akid ? "aws_access_key_id" : "aws_secret_access_key",
			       akid ? "aws_secret_access_key" : "aws_access_key_id");
		goto out;
	}
	ret = creds_set(c, akid, strlen(akid), sk, strlen(sk), tok,
			tok ? strlen(tok) : 0, "profile", e);
	if (ret) {
		cmk_err_prefix(e, "line %d", akid_line);
		goto out;
	}
	snprintf(c->source, sizeof(c->source), "profile %s", profile);
out:
	OPENSSL_cleanse(copy, len + 1);
	free(copy);
	return ret;
}

static const char *jget(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int cmk_aws_imds_parse(const char *json, size_t len, struct cmk_aws_creds *c,
		       struct cmk_err *e)
{
	struct json_object *o = cmk_json_parse_wiped(json, len);
	const char *code, *a, *s, *t, *x;
	time_t exp;
	int ret;

	if (!o || !json_object_is_type(o, json_type_object)) {
		ret = cmk_errf(e, -EBADMSG, "IMDS role credentials are not a JSON object");
		goto out;
	}
	code = jget(o, "Code");
	if (code && strcmp(code, "Success")) {
		ret = cmk_errf(e, -EACCES, "IMDS role credentials: Code is \"%.64s\"",
			       code);
		goto out;
	}
	a = jget(o, "AccessKeyId");
	s = jget(o, "SecretAccessKey");
	t = jget(o, "Token");
	x = jget(o, "Expiration");
	if (!a || !s || !t || !x) {
		ret = cmk_errf(e, -EBADMSG,
			       "IMDS role credentials lack AccessKeyId, SecretAccessKey, Token or Expiration");
		goto out;
	}
	if (cmk_time_parse(x, &exp)) {
		ret = cmk_errf(e, -EBADMSG,
			       "IMDS role credentials: Expiration \"%.32s\" is not YYYY-MM-DDTHH:MM:SSZ",
			       x);
		goto out;
	}
	ret = creds_set(c, a, strlen(a), s, strlen(s), t, strlen(t), "IMDS", e);
	if (!ret)
		c->expiration = exp;
out:
	cmk_json_put_wiped(o);
	return ret;
}

/* ---- the chain --------------------------------------------------------------- */

int cmk_aws_cred_src_init(struct cmk_aws_cred_src *s, const char *mode,
			  const char *profile, const char *imds,
			  struct cmk_err *e)
{
	const char *env;
	size_t n;

	memset(s, 0, sizeof(*s));
	if (!mode || strcmp(mode, "auto") == 0)
		s->mode = CMK_AWS_CRED_AUTO;
	else if (strcmp(mode, "environment") == 0)
		s->mode = CMK_AWS_CRED_ENV;
	else if (strcmp(mode, "profile") == 0)
		s->mode = CMK_AWS_CRED_PROFILE;
	else if (strcmp(mode, "imds") == 0)
		s->mode = CMK_AWS_CRED_IMDS;
	else
		return cmk_errf(e, -EINVAL,
				"credentials \"%s\" is not auto, environment, profile or imds",
				mode);
	env = getenv("AWS_PROFILE");
	if (profile && *profile)
		s->profile_explicit = true;
	else if (env && *env)
		profile = env, s->profile_explicit = true;
	else
		profile = "default";
	if (snprintf(s->profile, sizeof(s->profile), "%s", profile) >=
	    (int)sizeof(s->profile))
		return cmk_errf(e, -EINVAL, "profile name too long");
	env = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	if (!imds || !*imds)
		imds = env && *env ? env : CMK_AWS_IMDS_DEFAULT;
	if (cmk_http_url_check("aws", "imds_endpoint", imds, CMK_URL_METADATA, e))
		return -EINVAL;
	if (snprintf(s->imds, sizeof(s->imds), "%s", imds) >= (int)sizeof(s->imds))
		return cmk_errf(e, -EINVAL, "imds_endpoint too long");
	n = strlen(s->imds);
	while (n && s->imds[n - 1] == '/')
		s->imds[--n] = '\0';
	env = getenv("AWS_EC2_METADATA_DISABLED");
	s->imds_disabled = env && strcasecmp(env, "true") == 0;
	/* The metadata service is local: short timeouts, never a proxy. */
	s->imds_http.connect_timeout_ms = 1000;
	s->imds_http.timeout_ms = 2000;
	s->imds_http.max_attempts = 2;
	s->imds_http.no_proxy = true;
	return 0;
}

void cmk_aws_cred_src_free(struct cmk_aws_cred_src *s)
{
	cmk_aws_creds_free(&s->cur);
	cmk_secret_free(&s->imds_token);
	memset(s, 0, sizeof(*s));
}

void cmk_aws_creds_forget(struct cmk_aws_cred_src *s)
{
	cmk_aws_creds_free(&s->cur);
	s->have = false;
	s->stale = false;
	cmk_secret_free(&s->imds_token);
	s->imds_token_exp = 0;
}

void cmk_aws_creds_invalidate(struct cmk_aws_cred_src *s)
{
	s->stale = true;
	s->imds_token_exp = 0;
}

static int read_profile_file(const char *envname, const char *rel,
			     bool config_file, struct cmk_aws_cred_src *s,
			     struct cmk_aws_creds *c, struct cmk_err *e)
{
	const char *p = getenv(envname), *home = getenv("HOME");
	char path[4096];
	char *buf = NULL;
	size_t len = 0;
	int ret;

	if (p && *p)
		snprintf(path, sizeof(path), "%s", p);
	else if (home && *home)
		snprintf(path, sizeof(path), "%s/%s", home, rel);
	else
		return -ENOENT;
	if (access(path, F_OK))
		return -ENOENT;
	ret = cmk_read_trusted_file(path, CRED_FILE_MAX,
				    config_file ? "AWS config file" : "AWS credentials file",
				    &buf, &len, e);
	if (ret)
		return ret;
	ret = cmk_aws_profile_parse(buf, len, s->profile, config_file, c, NULL, 0, e);
	if (ret && ret != -ENOENT)
		cmk_err_prefix(e, "%s", path);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return ret;
}

static int from_profile(struct cmk_aws_cred_src *s, struct cmk_aws_creds *c,
			struct cmk_err *e)
{
	int ret;

	ret = read_profile_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials",
				false, s, c, e);
	if (ret != -ENOENT)
		return ret;
	return read_profile_file("AWS_CONFIG_FILE", ".aws/config", true, s, c, e);
}

static int imds_token(struct cmk_aws_cred_src *s, time_t now, struct cmk_err *e)
{
	char url[512], ttl[16];
	struct cmk_nv h[1] = { { "X-aws-ec2-metadata-token-ttl-seconds", ttl } };
	struct cmk_http_request req = { "PUT", url, h, 1, NULL, 0 };
	struct cmk_http_response r;
	size_t n;
	int ret;

	if (s->imds_token && now < s->imds_token_exp)
		return 0;
	cmk_secret_free(&s->imds_token);
	snprintf(ttl, sizeof(ttl), "%d", CMK_AWS_IMDS_TOKEN_TTL);
	snprintf(url, sizeof(url), "%s/latest/api/token", s->imds);
	ret = cmk_http_do(&s->imds_http, &req, NULL, NULL, &r, e);
	if (ret) {
		cmk_err_prefix(e, "IMDSv2 token");
		return ret;
	}
	n = r.body_len;
	while (n && (r.body[n - 1] == '\n' || r.body[n - 1] == '\r'))
		n--;
	if (r.status != 200 || n == 0 || n > 1024 || memchr(r.body, '\n', n)) {
		ret = cmk_err_kms(e, r.status >= 500 ? CMK_R_UNAVAILABLE : CMK_R_NETWORK,
				  "IMDSv2 token: PUT %s answered HTTP %ld", url, r.status);
		goto out;
	}
	ret = secret_from(&s->imds_token, r.body, n, e);
	if (!ret)
		s->imds_token_exp = now + CMK_AWS_IMDS_TOKEN_TTL - 60;
out:
	cmk_http_response_free(&r);
	return ret;
}

int cmk_aws_imds_get(struct cmk_aws_cred_src *s, time_t now, const char *path,
		     char **out, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *tokz = NULL;
	struct cmk_http_response r;
	struct cmk_nv h[1];
	struct cmk_http_request req;
	char url[512];
	int ret;

	*out = NULL;
	ret = imds_token(s, now, e);
	if (ret)
		return ret;
	/* A NUL-terminated copy of the token for the header line. */
	ret = cmk_secret_new(&tokz, cmk_secret_len(s->imds_token) + 1, e);
	if (ret)
		return ret;
	memcpy(cmk_secret_data(tokz), cmk_secret_cdata(s->imds_token),
	       cmk_secret_len(s->imds_token));
	h[0].name = "X-aws-ec2-metadata-token";
	h[0].value = (const char *)cmk_secret_cdata(tokz);
	snprintf(url, sizeof(url), "%s%s", s->imds, path);
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = url;
	req.headers = h;
	req.n_headers = 1;
	ret = cmk_http_do(&s->imds_http, &req, NULL, NULL, &r, e);
	if (ret)
		return ret;
	if (r.status == 401)
		cmk_aws_creds_invalidate(s);	/* token expired: fetch a new one */
	if (r.status == 404) {
		ret = cmk_errf(e, -ENOENT, "IMDS GET %s: not found", path);
		cmk_http_response_free(&r);
		return ret;
	}
	if (r.status != 200) {
		ret = cmk_err_kms(e, r.status >= 500 || r.status == 401 ?
				  CMK_R_UNAVAILABLE : CMK_R_NETWORK,
				  "IMDS GET %s answered HTTP %ld", path, r.status);
		cmk_http_response_free(&r);
		return ret;
	}
	*out = r.body;		/* the caller wipes and frees it */
	r.body = NULL;
	cmk_http_response_free(&r);
	return 0;
}

static void wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static int from_imds(struct cmk_aws_cred_src *s, time_t now,
		     struct cmk_aws_creds *c, struct cmk_err *e)
{
	char *roles = NULL, *body = NULL, role[256], path[512];
	size_t n;
	int ret;

	if (s->imds_disabled)
		return cmk_errf(e, -ENOENT,
				"no AWS credentials: none in the environment or profile \"%s\", and AWS_EC2_METADATA_DISABLED is set",
				s->profile);
	ret = cmk_aws_imds_get(s, now, "/latest/meta-data/iam/security-credentials/",
			       &roles, e);
	if (ret == -ENOENT)
		cmk_errf(e, ret, "IMDS: this instance has no IAM role (attach an instance profile)");
	if (ret)
		goto out;
	n = strcspn(roles, "\r\n");
	/* IAM role names: [A-Za-z0-9+=,.@_-]; it goes into a URL path. */
	if (n == 0 || n >= sizeof(role) ||
	    strspn(roles, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+=,.@_-") < n) {
		ret = cmk_errf(e, -ENOENT,
			       "IMDS: this instance has no IAM role (attach an instance profile)");
		goto out;
	}
	memcpy(role, roles, n);
	role[n] = '\0';
	snprintf(path, sizeof(path), "/latest/meta-data/iam/security-credentials/%s",
		 role);
	ret = cmk_aws_imds_get(s, now, path, &body, e);
	if (ret)
		goto out;
	ret = cmk_aws_imds_parse(body, strlen(body), c, e);
	if (!ret)
		snprintf(c->source, sizeof(c->source), "imds role %.50s", role);
out:
	wipe_free(roles);
	wipe_free(body);
	return ret;
}

static bool secrets_same(const struct cmk_secret *a, const struct cmk_secret *b)
{
	if (!a || !b)
		return a == b;
	return cmk_secret_equal(a, b);
}

/* Same key id, secret and session token (constant time on the secrets). */
static bool creds_same(const struct cmk_aws_creds *a, const struct cmk_aws_creds *b)
{
	bool same = !strcmp(a->access_key_id, b->access_key_id);

	same &= secrets_same(a->secret_key, b->secret_key);
	same &= secrets_same(a->session_token, b->session_token);
	return same;
}

static bool need_refresh(const struct cmk_aws_cred_src *s, time_t now)
{
	if (!s->have || s->stale)
		return true;
	return s->cur.expiration && now >= s->cur.expiration - CMK_AWS_REFRESH_S;
}

/*
 * @keep_last: when the source does not give credentials now (a metadata
 * outage, a credentials file being rewritten, or gone), the last good
 * ones: KMS decides whether they still work, and if it rejects them the
 * reload after that rejection is what counts (credreload.h).
 */
static int creds_get(struct cmk_aws_cred_src *s, time_t now, bool keep_last,
		     const struct cmk_aws_creds **out, struct cmk_err *e)
{
	struct cmk_aws_creds c;
	int ret = -ENOENT;

	*out = NULL;
	if (!need_refresh(s, now)) {
		*out = &s->cur;
		return 0;
	}
	memset(&c, 0, sizeof(c));
	if (s->mode == CMK_AWS_CRED_AUTO || s->mode == CMK_AWS_CRED_ENV) {
		ret = cmk_aws_creds_from_env(&c, e);
		if (ret == -ENOENT && s->mode == CMK_AWS_CRED_ENV)
			ret = cmk_errf(e, -ENOENT,
				       "credentials = environment but AWS_ACCESS_KEY_ID is not set");
	}
	if (ret == -ENOENT &&
	    (s->mode == CMK_AWS_CRED_AUTO || s->mode == CMK_AWS_CRED_PROFILE)) {
		ret = from_profile(s, &c, e);
		if (ret == -ENOENT && (s->profile_explicit ||
				       s->mode == CMK_AWS_CRED_PROFILE))
			ret = cmk_errf(e, -ENOENT,
				       "AWS profile \"%s\" not found in the shared credentials or config file",
				       s->profile);
	}
	if (ret == -ENOENT &&
	    (s->mode == CMK_AWS_CRED_AUTO || s->mode == CMK_AWS_CRED_IMDS))
		ret = from_imds(s, now, &c, e);
	if (ret) {
		cmk_aws_creds_free(&c);
		if (keep_last && s->have) {
			*out = &s->cur;
			return 0;
		}
		return ret;
	}
	if (!s->have || !creds_same(&s->cur, &c))
		s->changes++;
	cmk_aws_creds_free(&s->cur);
	s->cur = c;
	s->have = true;
	s->stale = false;
	*out = &s->cur;
	return 0;
}

int cmk_aws_creds_get(struct cmk_aws_cred_src *s, time_t now,
		      const struct cmk_aws_creds **out, struct cmk_err *e)
{
	return creds_get(s, now, true, out, e);
}

int cmk_aws_creds_reload(struct cmk_aws_cred_src *s, time_t now, bool *changed,
			 struct cmk_err *e)
{
	const struct cmk_aws_creds *c;
	unsigned long before = s->changes;
	int ret;

	*changed = false;
	cmk_aws_creds_invalidate(s);
	/*
	 * No last good credentials here: they are what KMS just rejected,
	 * and a source that could not be asked gave nothing new.
	 */
	ret = creds_get(s, now, false, &c, e);
	if (!ret)
		*changed = s->changes != before;
	return ret;
}

int cmk_aws_sign(const struct cmk_sigv4_request *req, const struct cmk_aws_creds *c,
		 const char *region, const char *service, struct cmk_sigv4_out *sig,
		 struct cmk_nv *hh, struct cmk_secret **tokz, struct cmk_err *e)
{
	struct cmk_sigv4_key k = { c->access_key_id, c->secret_key, c->session_token };
	int ret;

	ret = cmk_sigv4_sign(req, &k, region, service, time(NULL), 0, sig, e);
	if (ret)
		return ret;
	return cmk_sigv4_headers(req, &k, sig, hh, tokz, e);
}
