// SPDX-License-Identifier: GPL-2.0
/*
 * s3.c - S3 upload of a stream and streamed download (see s3.h).
 */
#include "kms/aws/s3.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/sha.h>

#include "kms/aws/s3_xml.h"
#include "kms/aws/sigv4.h"

/* ---- names ------------------------------------------------------------------ */

bool cmk_s3_is_url(const char *s)
{
	return s && !strncmp(s, "s3://", 5);
}

static bool bucket_ok(const char *b, size_t n)
{
	if (n < 3 || n > CMK_S3_BUCKET_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') ||
		      b[i] == '.' || b[i] == '-'))
			return false;
	return b[0] != '.' && b[0] != '-' && b[n - 1] != '.' && b[n - 1] != '-';
}

static bool key_ok(const char *k, size_t n)
{
	if (n == 0 || n > CMK_S3_KEY_MAX || k[0] == '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)k[i] < 0x20 || k[i] == 0x7f)
			return false;
	/* "." and ".." segments and "//": URL normalisation would change them. */
	for (const char *seg = k; seg;) {
		const char *sl = strchr(seg, '/');
		size_t sn = sl ? (size_t)(sl - seg) : strlen(seg);

		if ((sn == 1 && seg[0] == '.') || (sn == 2 && !strncmp(seg, "..", 2)) ||
		    (sn == 0 && sl))
			return false;
		seg = sl ? sl + 1 : NULL;
	}
	return true;
}

int cmk_s3_url_parse(const char *url, struct cmk_s3_obj *o, struct cmk_err *e)
{
	const char *b, *sl;

	memset(o, 0, sizeof(*o));
	if (!cmk_s3_is_url(url))
		return cmk_errf(e, -EINVAL, "s3: \"%s\" is not an s3://bucket/key URL",
				url ? url : "");
	b = url + 5;
	sl = strchr(b, '/');
	if (!sl || !bucket_ok(b, (size_t)(sl - b)))
		return cmk_errf(e, -EINVAL,
				"s3: \"%s\": the bucket name is not 3..63 of a-z, 0-9, '.' and '-' followed by /key",
				url);
	if (!key_ok(sl + 1, strlen(sl + 1)))
		return cmk_errf(e, -EINVAL,
				"s3: \"%s\": the key must be 1..%d bytes, no control characters, no leading '/', no empty, \".\" or \"..\" segments",
				url, CMK_S3_KEY_MAX);
	memcpy(o->bucket, b, (size_t)(sl - b));
	snprintf(o->key, sizeof(o->key), "%s", sl + 1);
	return 0;
}

static bool region_ok(const char *r)
{
	size_t n = strlen(r);

	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') ||
		      r[i] == '-'))
			return false;
	return true;
}

/* The endpoint override: scheme://host[:port] only, no path or query. */
static int endpoint_set(struct cmk_s3 *s, const char *var, const char *url,
			struct cmk_err *e)
{
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
	CURLU *u;
	int ret;

	ret = cmk_http_url_check("s3", var, url, CMK_URL_KMS, e);
	if (ret)
		return ret;
	u = curl_url();
	if (!u)
		return cmk_errf(e, -ENOMEM, "s3: out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) ||
	    strcmp(path, "/") ||
	    curl_url_get(u, CURLUPART_QUERY, &query, 0) != CURLUE_NO_QUERY) {
		ret = cmk_errf(e, -EINVAL, "s3: %s=%s: want scheme://host[:port] without a path or query",
			       var, url);
		goto out;
	}
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	if ((size_t)snprintf(s->endpoint, sizeof(s->endpoint), "%s://%s%s%s", scheme, host,
			     port ? ":" : "", port ? port : "") >= sizeof(s->endpoint))
		ret = cmk_errf(e, -EINVAL, "s3: %s is too long", var);
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_url_cleanup(u);
	return ret;
}

int cmk_s3_open(struct cmk_s3 *s, struct cmk_err *e)
{
	static const char *const ep[] = { "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL" };
	const char *r;
	int ret;

	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < sizeof(ep) / sizeof(ep[0]); i++) {
		const char *v = getenv(ep[i]);

		if (v && *v) {
			ret = endpoint_set(s, ep[i], v, e);
			if (ret)
				return ret;
			break;
		}
	}
	r = getenv("AWS_REGION");
	if (!r || !*r)
		r = getenv("AWS_DEFAULT_REGION");
	if (!r || !*r)
		return cmk_errf(e, -EINVAL, "s3: no region: set AWS_REGION (the bucket's region)");
	if (!region_ok(r))
		return cmk_errf(e, -EINVAL, "s3: AWS_REGION \"%s\" is not a region name", r);
	snprintf(s->region, sizeof(s->region), "%s", r);
	/* A part at 150 KB/s; http.c retries 429 and 5xx. */
	s->http.connect_timeout_ms = 5000;
	s->http.timeout_ms = 60000;
	s->http.max_attempts = 3;
	return cmk_aws_cred_src_init(&s->creds, NULL, NULL, NULL, e);
}

void cmk_s3_close(struct cmk_s3 *s)
{
	cmk_aws_cred_src_free(&s->creds);
}

/* ---- where a request goes ------------------------------------------------------ */

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Percent-encode @s as SigV4 does (keeping '/' if @slash) onto @p. */
static bool enc(char **p, char *end, const char *s, bool slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (unreserved(c) || (slash && c == '/')) {
			if (*p + 1 >= end)
				return false;
			*(*p)++ = (char)c;
		} else {
			if (*p + 3 >= end)
				return false;
			*(*p)++ = '%';
			*(*p)++ = hex[c >> 4];
			*(*p)++ = hex[c & 15];
		}
	}
	**p = '\0';
	return true;
}

static bool put(char **p, char *end, const char *s)
{
	size_t n = strlen(s);

	if (*p + n >= end)
		return false;
	memcpy(*p, s, n + 1);
	*p += n;
	return true;
}

int cmk_s3_target(const struct cmk_s3 *s, const struct cmk_s3_obj *o,
		  const struct cmk_nv *q, size_t nq, struct cmk_s3_target *t,
		  struct cmk_err *e)
{
	char *p = t->url, *end = t->url + sizeof(t->url);
	bool vhost = !s->endpoint[0] && !strchr(o->bucket, '.');
	bool ok;

	memset(t, 0, sizeof(*t));
	if (s->endpoint[0]) {
		const char *h = strstr(s->endpoint, "://") + 3;

		snprintf(t->host, sizeof(t->host), "%s", h);
		ok = put(&p, end, s->endpoint);
	} else {
		snprintf(t->host, sizeof(t->host), "%s%ss3.%s.amazonaws.com",
			 vhost ? o->bucket : "", vhost ? "." : "", s->region);
		ok = put(&p, end, "https://") && put(&p, end, t->host);
	}
	snprintf(t->path, sizeof(t->path), "/%s%s%s", vhost ? "" : o->bucket,
		 vhost || !o->key[0] ? "" : "/", o->key);
	ok = ok && enc(&p, end, t->path, true);
	for (size_t i = 0; ok && i < nq; i++)
		ok = put(&p, end, i ? "&" : "?") && enc(&p, end, q[i].name, false) &&
		     put(&p, end, "=") && enc(&p, end, q[i].value, false);
	if (!ok)
		return cmk_errf(e, -ENAMETOOLONG, "s3: the URL of s3://%s/%s is too long",
				o->bucket, o->key);
	return 0;
}

/* ---- errors ---------------------------------------------------------------------- */

static void clean_copy(char *dst, size_t dlen, const char *src, bool id)
{
	size_t o = 0;

	for (; src && *src && o + 1 < dlen; src++) {
		char c = *src;

		if (id ? ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || strchr("+/=._-", c)) :
			 (c >= ' ' && c <= '~'))
			dst[o++] = c;
	}
	dst[o] = '\0';
}

void cmk_s3_error_parse(long status, const char *body, size_t len,
			const char *reqid, struct cmk_s3_error *err)
{
	char code[64], msg[1024], rid[256], root[32];
	struct cmk_s3_xml_field f[] = {
		{ "Code", code, sizeof(code), false },
		{ "Message", msg, sizeof(msg), false },
		{ "RequestId", rid, sizeof(rid), false },
	};
	struct cmk_err ignore;

	memset(err, 0, sizeof(*err));
	if (body && len &&
	    !cmk_s3_xml_parse(body, len, root, sizeof(root), f, 3, &ignore) &&
	    !strcmp(root, "Error")) {
		if (f[0].found)
			clean_copy(err->code, sizeof(err->code), code, true);
		if (f[1].found)
			clean_copy(err->message, sizeof(err->message), msg, false);
		if (f[2].found)
			clean_copy(err->request_id, sizeof(err->request_id), rid, true);
	}
	if (reqid && *reqid)
		clean_copy(err->request_id, sizeof(err->request_id), reqid, true);
	if (!err->code[0]) {
		/* An answer without an <Error> body: name the status as S3 would. */
		const char *c = status == 404 ? "NotFound" : status == 403 ? "AccessDenied" :
				status == 412 ? "PreconditionFailed" :
				status == 503 ? "SlowDown" : status >= 500 ? "InternalError" :
				"HTTPError";

		snprintf(err->code, sizeof(err->code), "%s", c);
	}
}

static bool code_is(const struct cmk_s3_error *err, const char *const *codes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(err->code, codes[i]))
			return true;
	return false;
}

int cmk_s3_error_ret(long status, const struct cmk_s3_error *err,
		     const char *op, const struct cmk_s3_obj *o,
		     struct cmk_err *e)
{
	static const char *const denied[] = {
		"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
		"ExpiredToken", "InvalidToken", "TokenRefreshRequired",
		"AllAccessDisabled", "AccountProblem",
	};
	static const char *const missing[] = {
		"NoSuchKey", "NoSuchBucket", "NoSuchUpload", "NotFound",
	};
	char what[CMK_S3_KEY_MAX + CMK_S3_BUCKET_MAX + 16];
	char rid[CMK_S3_REQID_MAX + 24];
	const char *hint;

	snprintf(what, sizeof(what), "s3://%s/%s", o->bucket, o->key);
	snprintf(rid, sizeof(rid), "%s%s%s", err->request_id[0] ? " (request id " : "",
		 err->request_id, err->request_id[0] ? ")" : "");
	if (code_is(err, denied, sizeof(denied) / sizeof(denied[0])) || status == 403) {
		hint = !strcmp(op, "PutObject") || !strcmp(op, "UploadPart") ||
		       !strcmp(op, "CreateMultipartUpload") ||
		       !strcmp(op, "CompleteMultipartUpload") ?
		       "grant s3:PutObject (and s3:AbortMultipartUpload) on it" :
		       "grant s3:GetObject on it (and s3:ListBucket on the bucket, or a missing key reads as denied)";
		return cmk_err_kms(e, CMK_R_DENIED, "s3 %s %s: %s, HTTP %ld%s%s%s; %s, or check the credentials",
				   op, what, err->code, status, rid,
				   err->message[0] ? ": " : "", err->message, hint);
	}
	if (code_is(err, missing, sizeof(missing) / sizeof(missing[0])) || status == 404)
		return cmk_errf(e, -ENOENT, "s3 %s %s: %s, HTTP %ld%s: %s", op, what,
				err->code, status, rid,
				!strcmp(err->code, "NoSuchBucket") ?
				"the bucket does not exist (name or region wrong?)" :
				!strcmp(err->code, "NoSuchUpload") ?
				"the multipart upload is gone (aborted or completed)" :
				"no such object");
	if (!strcmp(err->code, "PreconditionFailed") || status == 412)
		return cmk_errf(e, -EEXIST, "s3 %s %s: an object exists under this key already%s",
				op, what, rid);
	if (status == 429 || status >= 500 || !strcmp(err->code, "SlowDown"))
		return cmk_err_kms(e, status == 429 || !strcmp(err->code, "SlowDown") ?
				   CMK_R_THROTTLED : CMK_R_UNAVAILABLE,
				   "s3 %s %s: %s, HTTP %ld%s%s%s; try again later",
				   op, what, err->code, status, rid,
				   err->message[0] ? ": " : "", err->message);
	return cmk_errf(e, -EIO, "s3 %s %s: %s, HTTP %ld%s%s%s", op, what, err->code,
			status, rid, err->message[0] ? ": " : "", err->message);
}

/* ---- one request ---------------------------------------------------------------------- */

struct call {
	const char *op;			/* for messages */
	const char *method;
	const struct cmk_nv *query;
	size_t nq;
	const struct cmk_nv *hdrs;	/* besides Host and x-amz-content-sha256 */
	size_t nh;
	const void *body;
	size_t len;
	cmk_http_sink_fn sink;
	void *sink_arg;
};

static void sha256_hex(const void *d, size_t n, char out[2 * SHA256_DIGEST_LENGTH + 1])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(n ? d : (const void *)"", n, md);
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/*
 * Sign and send @c for @o.  0 for a 2xx answer (in @r); an S3 error
 * otherwise (cmk_s3_error_ret()), @r freed.
 */
static int s3_call(struct cmk_s3 *s, const struct cmk_s3_obj *o,
		   const struct call *c, struct cmk_http_response *r,
		   struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *tokz = NULL;
	const struct cmk_aws_creds *cr;
	struct cmk_sigv4_out sig = { 0 };
	struct cmk_s3_target t;
	char hash[2 * SHA256_DIGEST_LENGTH + 1], rid[128];
	struct cmk_nv sh[8], hh[8 + 3];
	struct cmk_sigv4_request sr = {
		.method = c->method, .query = c->query, .n_query = c->nq,
		.headers = sh, .body = c->body, .body_len = c->len,
		.payload_hash = hash,
	};
	struct cmk_http_request hr = {
		.method = c->method, .headers = hh, .body = c->body,
		.body_len = c->len,
	};
	struct cmk_s3_error err;
	int ret;

	memset(r, 0, sizeof(*r));
	if (c->nh > sizeof(sh) / sizeof(sh[0]) - 2)
		return cmk_errf(e, -E2BIG, "s3: too many headers");
	ret = cmk_s3_target(s, o, c->query, c->nq, &t, e);
	if (ret)
		return ret;
	sha256_hex(c->body, c->len, hash);
	sh[0] = (struct cmk_nv){ "Host", t.host };
	sh[1] = (struct cmk_nv){ "x-amz-content-sha256", hash };
	for (size_t i = 0; i < c->nh; i++)
		sh[2 + i] = c->hdrs[i];
	sr.n_headers = 2 + c->nh;
	sr.path = t.path;
	hr.url = t.url;
	ret = cmk_aws_creds_get(&s->creds, time(NULL), &cr, e);
	if (ret) {
		cmk_err_prefix(e, "s3 %s s3://%s/%s: credentials", c->op, o->bucket, o->key);
		return ret;
	}
	ret = cmk_aws_sign(&sr, cr, s->region, "s3", &sig, hh, &tokz, e);
	if (ret < 0)
		goto out;
	hr.n_headers = (size_t)ret;
	ret = cmk_http_do_sink(&s->http, &hr, c->sink, c->sink_arg, NULL, NULL, r, e);
	if (ret) {
		cmk_err_prefix(e, "s3 %s s3://%s/%s", c->op, o->bucket, o->key);
		goto out;
	}
	if (r->status >= 200 && r->status <= 299)
		goto out;
	cmk_s3_error_parse(r->status, r->body, r->body_len,
			   cmk_http_header(r, "x-amz-request-id", rid, sizeof(rid)), &err);
	/* Rotated keys, an expired token: read them again next time. */
	if (r->status == 403 && strcmp(err.code, "AccessDenied"))
		cmk_aws_creds_invalidate(&s->creds);
	ret = cmk_s3_error_ret(r->status, &err, c->op, o, e);
	cmk_http_response_free(r);
out:
	cmk_sigv4_out_free(&sig);
	return ret;
}

/* ---- download ------------------------------------------------------------------------ */

static int to_fd(const void *d, size_t n, void *arg)
{
	const char *p = d;
	int fd = *(int *)arg;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int cmk_s3_get(struct cmk_s3 *s, const struct cmk_s3_obj *o, int fd,
	       struct cmk_err *e)
{
	struct call c = { .op = "GetObject", .method = "GET", .sink = to_fd, .sink_arg = &fd };
	struct cmk_http_response r;
	int ret;

	ret = s3_call(s, o, &c, &r, e);
	if (!ret)
		cmk_http_response_free(&r);
	return ret;
}

/* ---- upload ------------------------------------------------------------------------------ */

int cmk_s3_upload_start(struct cmk_s3 *s, const struct cmk_s3_obj *o,
			struct cmk_s3_upload *u, struct cmk_err *e)
{
	memset(u, 0, sizeof(*u));
	u->s3 = s;
	u->obj = *o;
	u->part = malloc(CMK_S3_PART_SIZE);
	if (!u->part)
		return cmk_errf(e, -ENOMEM, "s3: no memory for a %u-byte part", CMK_S3_PART_SIZE);
	return 0;
}

static void upload_free(struct cmk_s3_upload *u)
{
	free(u->part);
	free(u->etags);
	u->part = NULL;
	u->etags = NULL;
}

static int multipart_create(struct cmk_s3_upload *u, struct cmk_err *e)
{
	static const struct cmk_nv q[] = { { "uploads", "" } };
	static const struct cmk_nv h[] = { { "Content-Type", "application/octet-stream" } };
	struct call c = { .op = "CreateMultipartUpload", .method = "POST", .query = q,
			  .nq = 1, .hdrs = h, .nh = 1 };
	struct cmk_s3_xml_field f[] = {
		{ "UploadId", u->upload_id, sizeof(u->upload_id), false },
	};
	struct cmk_http_response r;
	char root[48];
	int ret;

	ret = s3_call(u->s3, &u->obj, &c, &r, e);
	if (ret)
		return ret;
	ret = cmk_s3_xml_parse(r.body, r.body_len, root, sizeof(root), f, 1, e);
	if (!ret && (strcmp(root, "InitiateMultipartUploadResult") || !f[0].found ||
		     !u->upload_id[0]))
		ret = cmk_errf(e, -EIO, "s3: answer has no UploadId");
	else if (ret)
		ret = -EIO;
	if (ret) {
		u->upload_id[0] = '\0';
		cmk_err_prefix(e, "s3 CreateMultipartUpload s3://%s/%s", u->obj.bucket, u->obj.key);
	} else if (u->id_changed) {
		u->id_changed(u->id_arg, u->upload_id);
	}
	cmk_http_response_free(&r);
	return ret;
}

static int etags_add(struct cmk_s3_upload *u, const char *etag, struct cmk_err *e)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>",
			 u->parts, etag);

	if (n < 0 || (size_t)n >= sizeof(line))
		return cmk_errf(e, -EIO, "s3: ETag of part %u too long", u->parts);
	if (u->etags_len + (size_t)n + 1 > u->etags_cap) {
		size_t nc = u->etags_cap ? u->etags_cap * 2 : 4096;
		char *nb = realloc(u->etags, nc);

		if (!nb)
			return cmk_errf(e, -ENOMEM, "s3: out of memory");
		u->etags = nb;
		u->etags_cap = nc;
	}
	memcpy(u->etags + u->etags_len, line, (size_t)n + 1);
	u->etags_len += (size_t)n;
	return 0;
}

/* An ETag as S3 gives it: a quoted token; it goes into XML, so no markup. */
static bool etag_ok(const char *t)
{
	size_t n = strlen(t);

	if (n < 2 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if (t[i] < ' ' || t[i] > '~' || t[i] == '<' || t[i] == '>' || t[i] == '&')
			return false;
	return true;
}

static int part_send(struct cmk_s3_upload *u, struct cmk_err *e)
{
	char num[16], etag[160];
	static const struct cmk_nv h[] = { { "Content-Type", "application/octet-stream" } };
	struct cmk_nv q[] = { { "partNumber", num }, { "uploadId", u->upload_id } };
	/* A Content-Type, or libcurl says form data and servers may parse it. */
	struct call c = { .op = "UploadPart", .method = "PUT", .query = q, .nq = 2,
			  .hdrs = h, .nh = 1, .body = u->part, .len = u->fill };
	struct cmk_http_response r;
	int ret;

	if (u->parts == CMK_S3_MAX_PARTS)
		return cmk_errf(e, -EFBIG, "s3 s3://%s/%s: over %u parts of %u bytes: object too large",
				u->obj.bucket, u->obj.key, CMK_S3_MAX_PARTS, CMK_S3_PART_SIZE);
	snprintf(num, sizeof(num), "%u", u->parts + 1);
	ret = s3_call(u->s3, &u->obj, &c, &r, e);
	if (ret)
		return ret;
	if (!cmk_http_header(&r, "ETag", etag, sizeof(etag)) || !etag_ok(etag))
		ret = cmk_errf(e, -EIO, "s3 UploadPart s3://%s/%s: part %s: no valid ETag in the answer",
			       u->obj.bucket, u->obj.key, num);
	cmk_http_response_free(&r);
	if (ret)
		return ret;
	u->parts++;
	ret = etags_add(u, etag, e);
	u->fill = 0;
	return ret;
}

int cmk_s3_upload_write(struct cmk_s3_upload *u, const void *d, size_t n,
			struct cmk_err *e)
{
	const unsigned char *p = d;
	int ret;

	if (u->failed)
		return cmk_errf(e, -EIO, "s3: upload of s3://%s/%s failed already",
				u->obj.bucket, u->obj.key);
	while (n) {
		size_t take;

		/* A full part goes up only once more bytes come: the last part is kept for finish. */
		if (u->fill == CMK_S3_PART_SIZE) {
			ret = u->upload_id[0] ? 0 : multipart_create(u, e);
			if (!ret)
				ret = part_send(u, e);
			if (ret) {
				u->failed = true;
				return ret;
			}
		}
		take = CMK_S3_PART_SIZE - u->fill;
		if (take > n)
			take = n;
		memcpy(u->part + u->fill, p, take);
		u->fill += take;
		u->total += take;
		p += take;
		n -= take;
	}
	return 0;
}

int cmk_s3_abort_upload_id(struct cmk_s3 *s, const struct cmk_s3_obj *o,
			   const char *upload_id, struct cmk_err *e)
{
	struct cmk_nv q[] = { { "uploadId", upload_id } };
	struct call c = { .op = "AbortMultipartUpload", .method = "DELETE", .query = q, .nq = 1 };
	struct cmk_http_response r;
	int ret;

	ret = s3_call(s, o, &c, &r, e);
	if (!ret)
		cmk_http_response_free(&r);
	return ret;
}

static void multipart_abort(struct cmk_s3_upload *u)
{
	struct cmk_err e;

	if (u->upload_id[0] && cmk_s3_abort_upload_id(u->s3, &u->obj, u->upload_id, &e))
		fprintf(stderr, "s3: %s (its parts stay until the bucket's AbortIncompleteMultipartUpload rule removes them)\n",
			e.msg);
	u->upload_id[0] = '\0';
	if (u->id_changed)
		u->id_changed(u->id_arg, "");
}

void cmk_s3_upload_abort(struct cmk_s3_upload *u)
{
	if (u->s3)
		multipart_abort(u);
	upload_free(u);
}

static int multipart_complete(struct cmk_s3_upload *u, struct cmk_err *e)
{
	static const char head[] = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
	static const char tail[] = "</CompleteMultipartUpload>";
	static const struct cmk_nv h[] = {
		{ "Content-Type", "application/xml" }, { "If-None-Match", "*" },
	};
	struct cmk_nv q[] = { { "uploadId", u->upload_id } };
	struct call c = { .op = "CompleteMultipartUpload", .method = "POST", .query = q,
			  .nq = 1, .hdrs = h, .nh = 2 };
	struct cmk_s3_xml_field f[] = {
		{ "Code", NULL, 0, false }, { "ETag", NULL, 0, false },
	};
	char code[64], etag[160], root[48], rid[128];
	struct cmk_http_response r;
	size_t len = sizeof(head) - 1 + u->etags_len + sizeof(tail) - 1;
	char *body = malloc(len + 1);
	int ret;

	if (!body)
		return cmk_errf(e, -ENOMEM, "s3: out of memory");
	snprintf(body, len + 1, "%s%s%s", head, u->etags, tail);
	c.body = body;
	c.len = len;
	f[0].val = code;
	f[0].len = sizeof(code);
	f[1].val = etag;
	f[1].len = sizeof(etag);
	ret = s3_call(u->s3, &u->obj, &c, &r, e);
	free(body);
	if (ret)
		return ret;
	/* S3 may answer 200 and still fail: the body is then an <Error>. */
	ret = cmk_s3_xml_parse(r.body, r.body_len, root, sizeof(root), f, 2, e) ? -EIO : 0;
	if (!ret && !strcmp(root, "Error")) {
		struct cmk_s3_error err;

		cmk_s3_error_parse(500, r.body, r.body_len,
				   cmk_http_header(&r, "x-amz-request-id", rid, sizeof(rid)), &err);
		ret = cmk_s3_error_ret(500, &err, c.op, &u->obj, e);
	} else if (!ret && strcmp(root, "CompleteMultipartUploadResult") &&
		   /* moto's name for it */
		   strcmp(root, "CompleteMultipartUploadResponse")) {
		ret = cmk_errf(e, -EIO, "s3 CompleteMultipartUpload s3://%s/%s: answer is <%s>, not a CompleteMultipartUploadResult",
			       u->obj.bucket, u->obj.key, root);
	}
	cmk_http_response_free(&r);
	return ret;
}

static int put_object(struct cmk_s3_upload *u, struct cmk_err *e)
{
	static const struct cmk_nv h[] = {
		{ "Content-Type", "application/octet-stream" }, { "If-None-Match", "*" },
	};
	struct call c = { .op = "PutObject", .method = "PUT", .hdrs = h, .nh = 2,
			  .body = u->part, .len = u->fill };
	struct cmk_http_response r;
	int ret;

	ret = s3_call(u->s3, &u->obj, &c, &r, e);
	if (!ret)
		cmk_http_response_free(&r);
	return ret;
}

int cmk_s3_upload_finish(struct cmk_s3_upload *u, struct cmk_err *e)
{
	int ret;

	if (u->failed) {
		ret = cmk_errf(e, -EIO, "s3: upload of s3://%s/%s failed already",
			       u->obj.bucket, u->obj.key);
	} else if (!u->upload_id[0]) {
		ret = put_object(u, e);
	} else {
		ret = part_send(u, e);
		if (!ret)
			ret = multipart_complete(u, e);
	}
	/* Completed: nothing to abort.  Else no part stays behind. */
	if (!ret && u->upload_id[0]) {
		u->upload_id[0] = '\0';
		if (u->id_changed)
			u->id_changed(u->id_arg, "");
	}
	cmk_s3_upload_abort(u);
	return ret;
}
