// SPDX-License-Identifier: GPL-2.0
/*
 * sigv4.c - AWS Signature Version 4 (see sigv4.h for the rules).
 */
#include "kms/aws/sigv4.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

/* A growing string whose old and final buffers are always wiped. */
struct sb {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_add(struct sb *b, const void *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		np = malloc(cap);
		if (!np) {
			b->oom = true;
			return;
		}
		if (b->p) {
			memcpy(np, b->p, b->len);
			OPENSSL_cleanse(b->p, b->cap);
			free(b->p);
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_ch(struct sb *b, char c)
{
	sb_add(b, &c, 1);
}

static void sb_free(struct sb *b)
{
	if (b->p) {
		OPENSSL_cleanse(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	       c == '~';
}

/* RFC 3986 percent-encoding as SigV4 wants it (uppercase hex). */
static void sb_uri_encode(struct sb *b, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (unreserved(*c) || (keep_slash && *c == '/')) {
			sb_ch(b, (char)*c);
		} else {
			char t[3] = { '%', hex[*c >> 4], hex[*c & 15] };

			sb_add(b, t, 3);
		}
	}
}

/*
 * The canonical URI: empty, "." and ".." segments removed (RFC 3986
 * remove_dot_segments, as AWS does for every service but S3), a trailing
 * "/" kept, each segment percent-encoded.
 */
static int sb_path(struct sb *b, const char *path)
{
	size_t n = strlen(path), nseg = 0;
	char *copy = strdup(path), *save = NULL, *tok;
	char **seg = calloc(n / 2 + 2, sizeof(*seg));
	int ret = 0;

	if (!copy || !seg) {
		ret = -ENOMEM;
		goto out;
	}
	for (tok = strtok_r(copy, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, ".") == 0)
			continue;
		if (strcmp(tok, "..") == 0) {
			if (nseg)
				nseg--;
			continue;
		}
		seg[nseg++] = tok;
	}
	sb_ch(b, '/');
	for (size_t i = 0; i < nseg; i++) {
		if (i)
			sb_ch(b, '/');
		sb_uri_encode(b, seg[i], false);
	}
	if (nseg && n && path[n - 1] == '/')
		sb_ch(b, '/');
out:
	free(copy);
	free(seg);
	return ret;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	       c == '\f';
}

/* Trim, and collapse each inner run of white space into one space. */
static void sb_trimall(struct sb *b, const char *v, size_t n)
{
	size_t i = 0;
	bool first = true;

	while (i < n) {
		size_t j;

		while (i < n && is_ws(v[i]))
			i++;
		if (i == n)
			break;
		j = i;
		while (j < n && !is_ws(v[j]))
			j++;
		if (!first)
			sb_ch(b, ' ');
		sb_add(b, v + i, j - i);
		first = false;
		i = j;
	}
}

static void sb_hex(struct sb *b, const unsigned char *d, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		char t[2] = { hex[d[i] >> 4], hex[d[i] & 15] };

		sb_add(b, t, 2);
	}
}

/* Not signed: a proxy or the HTTP library may change them in transit. */
static const char *const unsigned_headers[] = {
	"authorization", "connection", "expect", "keep-alive",
	"proxy-authenticate", "proxy-authorization", "te", "trailer",
	"transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
	NULL,
};

struct hdr {
	char *name;		/* lowercased, malloc'd */
	const char *value;	/* not owned */
	size_t value_len;
	size_t order;
};

static int hdr_cmp(const void *a, const void *b)
{
	const struct hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

struct qp {
	struct sb name, value;	/* encoded */
};

static int qp_cmp(const void *a, const void *b)
{
	const struct qp *x = a, *y = b;
	int c = strcmp(x->name.p ? x->name.p : "", y->name.p ? y->name.p : "");

	if (c)
		return c;
	return strcmp(x->value.p ? x->value.p : "", y->value.p ? y->value.p : "");
}

static bool token_ok(const char *s, const char *extra)
{
	if (!s || !*s)
		return false;
	for (const char *c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
		      strchr(extra, *c)))
			return false;
	return true;
}

static bool header_name_ok(const char *s)
{
	if (!s || !*s)
		return false;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c <= ' ' || *c >= 0x7f || *c == ':')
			return false;
	return true;
}

static int add_hdr(struct hdr *h, size_t *n, const char *name,
		   const char *value, size_t value_len, size_t order)
{
	char *l = strdup(name);

	if (!l)
		return -ENOMEM;
	for (char *c = l; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	h[*n].name = l;
	h[*n].value = value;
	h[*n].value_len = value_len;
	h[*n].order = order;
	(*n)++;
	return 0;
}

static int build_canonical(const struct cmk_sigv4_request *req,
			   const struct cmk_sigv4_key *key,
			   const char *amz_date, struct sb *cr,
			   struct sb *signed_names, struct cmk_err *e)
{
	struct hdr *h = NULL;
	struct qp *q = NULL;
	size_t nh = 0;
	unsigned char digest[SHA256_DIGEST_LENGTH];
	bool have_host = false;
	int ret = 0;

	if (!req->method || !*req->method)
		return cmk_errf(e, -EINVAL, "sigv4: empty method");
	if (req->path && *req->path && req->path[0] != '/')
		return cmk_errf(e, -EINVAL, "sigv4: path \"%s\" is not absolute",
				req->path);
	h = calloc(req->n_headers + 2, sizeof(*h));
	q = calloc(req->n_query + 1, sizeof(*q));
	if (!h || !q) {
		ret = cmk_errf(e, -ENOMEM, "sigv4: out of memory");
		goto out;
	}
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct cmk_nv *nv = &req->headers[i];
		bool skip = false;

		if (!header_name_ok(nv->name) || !nv->value) {
			ret = cmk_errf(e, -EINVAL, "sigv4: bad header name \"%s\"",
				       nv->name ? nv->name : "(null)");
			goto out;
		}
		for (const char *const *u = unsigned_headers; *u; u++)
			if (strcasecmp(nv->name, *u) == 0)
				skip = true;
		/* The signer sets these itself. */
		if (strcasecmp(nv->name, "x-amz-date") == 0 ||
		    (key->session_token &&
		     strcasecmp(nv->name, "x-amz-security-token") == 0))
			skip = true;
		if (strcasecmp(nv->name, "host") == 0)
			have_host = true;
		if (skip)
			continue;
		if (add_hdr(h, &nh, nv->name, nv->value, strlen(nv->value), i)) {
			ret = cmk_errf(e, -ENOMEM, "sigv4: out of memory");
			goto out;
		}
	}
	if (!have_host) {
		ret = cmk_errf(e, -EINVAL, "sigv4: the request has no host header");
		goto out;
	}
	if (add_hdr(h, &nh, "x-amz-date", amz_date, strlen(amz_date),
		    req->n_headers) ||
	    (key->session_token &&
	     add_hdr(h, &nh, "x-amz-security-token",
		     (const char *)cmk_secret_cdata(key->session_token),
		     cmk_secret_len(key->session_token), req->n_headers + 1))) {
		ret = cmk_errf(e, -ENOMEM, "sigv4: out of memory");
		goto out;
	}
	qsort(h, nh, sizeof(*h), hdr_cmp);

	/* method, URI */
	sb_str(cr, req->method);
	sb_ch(cr, '\n');
	ret = sb_path(cr, req->path ? req->path : "/");
	if (ret) {
		cmk_errf(e, ret, "sigv4: out of memory");
		goto out;
	}
	sb_ch(cr, '\n');

	/* query */
	for (size_t i = 0; i < req->n_query; i++) {
		if (!req->query[i].name || !req->query[i].value) {
			ret = cmk_errf(e, -EINVAL, "sigv4: query parameter without name or value");
			goto out;
		}
		sb_uri_encode(&q[i].name, req->query[i].name, false);
		sb_uri_encode(&q[i].value, req->query[i].value, false);
		if (q[i].name.oom || q[i].value.oom)
			cr->oom = true;
	}
	qsort(q, req->n_query, sizeof(*q), qp_cmp);
	for (size_t i = 0; i < req->n_query; i++) {
		if (i)
			sb_ch(cr, '&');
		sb_str(cr, q[i].name.p ? q[i].name.p : "");
		sb_ch(cr, '=');
		sb_str(cr, q[i].value.p ? q[i].value.p : "");
	}
	sb_ch(cr, '\n');

	/* headers: one line per name, repeated names joined with ',' */
	for (size_t i = 0; i < nh; i++) {
		bool cont = i > 0 && strcmp(h[i].name, h[i - 1].name) == 0;

		if (cont) {
			sb_ch(cr, ',');
		} else {
			if (i)
				sb_ch(cr, '\n');
			sb_str(cr, h[i].name);
			sb_ch(cr, ':');
			if (signed_names->len)
				sb_ch(signed_names, ';');
			sb_str(signed_names, h[i].name);
		}
		sb_trimall(cr, h[i].value, h[i].value_len);
	}
	sb_str(cr, "\n\n");
	sb_str(cr, signed_names->p);
	sb_ch(cr, '\n');

	/* payload hash */
	if (req->payload_hash) {
		sb_str(cr, req->payload_hash);
	} else if (!SHA256(req->body_len ? req->body : (const void *)"",
		    req->body_len, digest)) {
		ret = cmk_errf(e, -EIO, "sigv4: SHA-256 failed");
		goto out;
	} else {
		sb_hex(cr, digest, sizeof(digest));
	}
	if (cr->oom || signed_names->oom)
		ret = cmk_errf(e, -ENOMEM, "sigv4: out of memory");
out:
	if (h)
		for (size_t i = 0; i < nh; i++)
			free(h[i].name);
	if (q)
		for (size_t i = 0; i < req->n_query; i++) {
			sb_free(&q[i].name);
			sb_free(&q[i].value);
		}
	free(h);
	free(q);
	return ret;
}

static int hmac(const unsigned char *k, size_t kl, const void *d, size_t dl,
		unsigned char out[SHA256_DIGEST_LENGTH])
{
	unsigned int ol = SHA256_DIGEST_LENGTH;

	if (!HMAC(EVP_sha256(), k, (int)kl, d, dl, out, &ol) ||
	    ol != SHA256_DIGEST_LENGTH)
		return -EIO;
	return 0;
}

int cmk_sigv4_sign(const struct cmk_sigv4_request *req,
		   const struct cmk_sigv4_key *key, const char *region,
		   const char *service, time_t now, int want_canonical,
		   struct cmk_sigv4_out *out, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *ks = NULL, *kd = NULL;
	struct sb cr = { 0 }, names = { 0 }, sts = { 0 }, auth = { 0 };
	unsigned char digest[SHA256_DIGEST_LENGTH];
	unsigned char sig[SHA256_DIGEST_LENGTH];
	char date8[9], scope[256];
	struct tm tm;
	size_t sl;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!key->access_key_id || !*key->access_key_id ||
	    strlen(key->access_key_id) > 128 ||
	    strpbrk(key->access_key_id, "/, \t\r\n"))
		return cmk_errf(e, -EINVAL,
				"sigv4: the access key id is empty or malformed");
	if (!key->secret_key || cmk_secret_len(key->secret_key) == 0)
		return cmk_errf(e, -EINVAL, "sigv4: no secret access key");
	if (!token_ok(region, "-") || !token_ok(service, "-"))
		return cmk_errf(e, -EINVAL,
				"sigv4: region \"%s\" or service \"%s\" is not [a-z0-9-]+",
				region ? region : "", service ? service : "");
	if (!gmtime_r(&now, &tm) ||
	    strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ",
		     &tm) != CMK_SIGV4_DATE_LEN)
		return cmk_errf(e, -EINVAL, "sigv4: time out of range");
	memcpy(date8, out->amz_date, 8);
	date8[8] = '\0';
	if ((size_t)snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request",
			     date8, region, service) >= sizeof(scope))
		return cmk_errf(e, -EINVAL, "sigv4: region or service too long");

	ret = build_canonical(req, key, out->amz_date, &cr, &names, e);
	if (ret)
		goto out;

	/* string to sign */
	sb_str(&sts, "AWS4-HMAC-SHA256\n");
	sb_str(&sts, out->amz_date);
	sb_ch(&sts, '\n');
	sb_str(&sts, scope);
	sb_ch(&sts, '\n');
	SHA256((const unsigned char *)cr.p, cr.len, digest);
	sb_hex(&sts, digest, sizeof(digest));
	if (sts.oom) {
		ret = cmk_errf(e, -ENOMEM, "sigv4: out of memory");
		goto out;
	}

	/* signing key, only ever in locked memory */
	sl = cmk_secret_len(key->secret_key);
	ret = cmk_secret_new(&ks, 4 + sl, e);
	if (ret)
		goto out;
	ret = cmk_secret_new(&kd, 2 * SHA256_DIGEST_LENGTH, e);
	if (ret)
		goto out;
	memcpy(cmk_secret_data(ks), "AWS4", 4);
	memcpy(cmk_secret_data(ks) + 4, cmk_secret_cdata(key->secret_key), sl);
	{
		unsigned char *a = cmk_secret_data(kd);
		unsigned char *b = a + SHA256_DIGEST_LENGTH;

		if (hmac(cmk_secret_cdata(ks), 4 + sl, date8, 8, a) ||
		    hmac(a, 32, region, strlen(region), b) ||
		    hmac(b, 32, service, strlen(service), a) ||
		    hmac(a, 32, "aws4_request", 12, b) ||
		    hmac(b, 32, sts.p, sts.len, sig)) {
			ret = cmk_errf(e, -EIO, "sigv4: HMAC-SHA-256 failed");
			goto out;
		}
	}

	sb_str(&auth, "AWS4-HMAC-SHA256 Credential=");
	sb_str(&auth, key->access_key_id);
	sb_ch(&auth, '/');
	sb_str(&auth, scope);
	sb_str(&auth, ", SignedHeaders=");
	sb_str(&auth, names.p);
	sb_str(&auth, ", Signature=");
	sb_hex(&auth, sig, sizeof(sig));
	if (auth.oom) {
		ret = cmk_errf(e, -ENOMEM, "sigv4: out of memory");
		goto out;
	}
	out->authorization = auth.p;
	auth.p = NULL;
	if (want_canonical) {
		out->canonical_request = cr.p;
		cr.p = NULL;
	}
out:
	OPENSSL_cleanse(sig, sizeof(sig));
	sb_free(&cr);
	sb_free(&names);
	sb_free(&sts);
	sb_free(&auth);
	if (ret)
		cmk_sigv4_out_free(out);
	return ret;
}

void cmk_sigv4_out_free(struct cmk_sigv4_out *out)
{
	if (out->canonical_request) {
		OPENSSL_cleanse(out->canonical_request,
				strlen(out->canonical_request));
		free(out->canonical_request);
	}
	free(out->authorization);
	memset(out, 0, sizeof(*out));
}

int cmk_sigv4_headers(const struct cmk_sigv4_request *req,
		      const struct cmk_sigv4_key *key,
		      const struct cmk_sigv4_out *sig, struct cmk_nv *hh,
		      struct cmk_secret **tokz, struct cmk_err *e)
{
	size_t n = req->n_headers, tl;
	int ret;

	memcpy(hh, req->headers, n * sizeof(*hh));
	hh[n].name = "X-Amz-Date";
	hh[n++].value = sig->amz_date;
	hh[n].name = "Authorization";
	hh[n++].value = sig->authorization;
	if (!key->session_token)
		return (int)n;
	tl = cmk_secret_len(key->session_token);
	ret = cmk_secret_new(tokz, tl + 1, e);
	if (ret)
		return ret;
	memcpy(cmk_secret_data(*tokz), cmk_secret_cdata(key->session_token), tl);
	hh[n].name = "X-Amz-Security-Token";
	hh[n++].value = (const char *)cmk_secret_cdata(*tokz);
	return (int)n;
}
