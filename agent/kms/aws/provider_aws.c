// SPDX-License-Identifier: GPL-2.0
/*
 * provider_aws.c - AWS KMS provider (see provider_aws.h, Documentation/aws.rst).
 */
#include "kms/aws/provider_aws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "kms/aws/aws_creds.h"
#include "kms/credreload.h"
#include "core/fileio.h"
#include "core/json_secret.h"
#include "core/codec.h"
#include "core/deadline.h"
#include "kms/http.h"
#include "kms/aws/sigv4.h"
#include "kms/provider_settings.h"
#include "kms/provider_util.h"

static const char *const aws_settings[] = {
	"region", "endpoint", "key_id", "profile", "credentials",
	"imds_endpoint", "imds_ipv6", "ca_bundle", "fips", "dualstack",
	"connect_timeout_ms", "timeout_ms", "max_attempts", NULL,
};

struct aws {
	char region[64];
	char endpoint[512];		/* configured or derived */
	bool endpoint_fixed;		/* from settings or environment */
	bool fips, dualstack;
	char *key_id;			/* pinned CMK, or NULL */
	char *ca_bundle;
	struct cmk_http_opts http;
	struct cmk_aws_cred_src creds;
	struct cmk_cred_reload reload;	/* failed reloads after a rejection */
	uint64_t retry_until;		/* kms_call(): where its retries end */
	char reload_note[CMK_ERR_MSG_MAX]; /* why the last rejection counts */
};

/* ---- error classification ----------------------------------------------------- */

/*
 * K_CONFIRM: the code alone cannot tell the owner's "no" from a failure
 * (KMSInvalidStateException is "a general failure with many possible
 * causes" for keys in custom key stores): its reason is provisional and
 * DescribeKey decides (cmk_aws_key_state_reason()).
 */
enum kind { K_DEF, K_TRANSIENT, K_CREDS, K_CREDS_EXPIRED, K_CONFIRM };

static const struct {
	const char *code;
	enum cmk_reason reason;
	enum kind kind;
} aws_codes[] = {
	/* the key owner said no */
	{ "DisabledException",		CMK_R_DISABLED,		  K_DEF },
	{ "KMSInvalidStateException",	CMK_R_UNAVAILABLE,	  K_CONFIRM },
	{ "AccessDeniedException",	CMK_R_DENIED,		  K_DEF },
	{ "AccessDenied",		CMK_R_DENIED,		  K_DEF },
	{ "NotFoundException",		CMK_R_NOT_FOUND,	  K_DEF },
	{ "IncorrectKeyException",	CMK_R_INVALID_CIPHERTEXT, K_DEF },
	{ "InvalidCiphertextException",	CMK_R_INVALID_CIPHERTEXT, K_DEF },
	{ "InvalidKeyUsageException",	CMK_R_DENIED,		  K_DEF },
	{ "InvalidGrantTokenException",	CMK_R_DENIED,		  K_DEF },
	/* the KMS could not answer now */
	{ "ThrottlingException",	CMK_R_THROTTLED,	  K_TRANSIENT },
	{ "LimitExceededException",	CMK_R_THROTTLED,	  K_TRANSIENT },
	{ "KMSInternalException",	CMK_R_UNAVAILABLE,	  K_TRANSIENT },
	{ "InternalFailure",		CMK_R_UNAVAILABLE,	  K_TRANSIENT },
	{ "ServiceUnavailable",		CMK_R_UNAVAILABLE,	  K_TRANSIENT },
	{ "DependencyTimeoutException",	CMK_R_TIMEOUT,		  K_TRANSIENT },
	{ "KeyUnavailableException",	CMK_R_UNAVAILABLE,	  K_TRANSIENT },
	/* our credentials were rejected: see Documentation/aws.rst */
	{ "UnrecognizedClientException", CMK_R_DENIED,		  K_CREDS },
	{ "InvalidClientTokenId",	CMK_R_DENIED,		  K_CREDS },
	{ "SignatureDoesNotMatch",	CMK_R_DENIED,		  K_CREDS },
	{ "InvalidSignatureException",	CMK_R_DENIED,		  K_CREDS },
	{ "IncompleteSignature",	CMK_R_DENIED,		  K_CREDS },
	{ "MissingAuthenticationToken",	CMK_R_DENIED,		  K_CREDS },
	/* credentials or clock out of date: refresh and retry */
	{ "ExpiredTokenException",	CMK_R_UNAVAILABLE,	  K_CREDS_EXPIRED },
	{ "ExpiredToken",		CMK_R_UNAVAILABLE,	  K_CREDS_EXPIRED },
	{ "RequestExpired",		CMK_R_UNAVAILABLE,	  K_CREDS_EXPIRED },
};

#define N_CODES (sizeof(aws_codes) / sizeof(aws_codes[0]))

static int code_index(const char *code)
{
	for (size_t i = 0; i < N_CODES; i++)
		if (strcmp(aws_codes[i].code, code) == 0)
			return (int)i;
	return -1;
}

/* "com.amazonaws.kms#NotFoundException:http://..." -> "NotFoundException" */
static void clean_code(const char *in, size_t n, char *out, size_t len)
{
	const char *hash = memchr(in, '#', n), *colon;

	if (hash) {
		n -= (size_t)(hash + 1 - in);
		in = hash + 1;
	}
	colon = memchr(in, ':', n);
	if (colon)
		n = (size_t)(colon - in);
	while (n && (*in == ' ' || *in == '\t'))
		in++, n--;
	while (n && (in[n - 1] == ' ' || in[n - 1] == '\t' || in[n - 1] == '\r'))
		n--;
	cmk_printable(in, n, out, len, false);
}

/*
 * The text of the first <tag>...</tag> in an XML error document.  Not an
 * XML parser: it only lifts the error code and message out of the small,
 * fixed-shape ErrorResponse documents STS/IAM-style front ends send, for
 * classification and the message; nothing else is read from them.
 */
static bool xml_elem(const char *body, size_t len, const char *tag,
		     const char **v, size_t *vn)
{
	char open[32], close[32];
	const char *s, *t, *end = body + len;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	s = memmem(body, len, open, strlen(open));
	if (!s)
		return false;
	s += strlen(open);
	t = memmem(s, (size_t)(end - s), close, strlen(close));
	if (!t)
		return false;
	*v = s;
	*vn = (size_t)(t - s);
	return true;
}

enum cmk_reason cmk_aws_classify(long status, const char *error_type,
				 const char *body, size_t body_len,
				 struct cmk_aws_error *out)
{
	struct cmk_aws_error tmp;
	struct json_object *o = NULL, *v;
	const char *x;
	size_t xn;
	int i;

	if (!out)
		out = &tmp;
	out->code[0] = out->message[0] = '\0';
	out->confirm = false;
	if (status >= 200 && status <= 299)
		return CMK_R_NONE;
	if (error_type && *error_type)
		clean_code(error_type, strlen(error_type), out->code,
			   sizeof(out->code));
	if (body && body_len) {
		o = cmk_json_parse_wiped(body, body_len);
		if (o && json_object_is_type(o, json_type_object)) {
			if (!out->code[0] &&
			    ((json_object_object_get_ex(o, "__type", &v) ||
			      json_object_object_get_ex(o, "code", &v)) &&
			     json_object_is_type(v, json_type_string)))
				clean_code(json_object_get_string(v),
					   (size_t)json_object_get_string_len(v),
					   out->code, sizeof(out->code));
			if ((json_object_object_get_ex(o, "message", &v) ||
			     json_object_object_get_ex(o, "Message", &v)) &&
			    json_object_is_type(v, json_type_string))
				cmk_printable(json_object_get_string(v),
					      (size_t)json_object_get_string_len(v),
					      out->message, sizeof(out->message),
					      true);
		} else {
			if (!out->code[0] && xml_elem(body, body_len, "Code", &x, &xn))
				clean_code(x, xn, out->code, sizeof(out->code));
			if (xml_elem(body, body_len, "Message", &x, &xn))
				cmk_printable(x, xn, out->message,
					      sizeof(out->message), true);
		}
		cmk_json_put_wiped(o);
	}
	i = out->code[0] ? code_index(out->code) : -1;
	if (i >= 0) {
		out->confirm = aws_codes[i].kind == K_CONFIRM;
		/* A clock that is off says "Signature expired": not a revocation. */
		if (aws_codes[i].kind == K_CREDS &&
		    strcasestr(out->message, "signature expired"))
			return CMK_R_UNAVAILABLE;
		return aws_codes[i].reason;
	}
	/* ValidationException and the like are local. */
	return cmk_http_status_reason(status);
}

static enum kind code_kind(const char *code)
{
	int i = code_index(code);

	return i >= 0 ? aws_codes[i].kind : K_DEF;
}

/* KeyState (DescribeKey) -> reason; the AWS key-state table, aws.rst. */
static const struct {
	const char *state;
	enum cmk_reason reason;
} key_states[] = {
	{ "Disabled",			CMK_R_DISABLED },
	{ "PendingDeletion",		CMK_R_DESTROYED },
	{ "PendingReplicaDeletion",	CMK_R_DESTROYED },
	/* imported key material deleted or expired */
	{ "PendingImport",		CMK_R_DISABLED },
	/* custom key store intentionally disconnected */
	{ "Unavailable",		CMK_R_DISABLED },
	/* usable: the failure was not the key's state */
	{ "Enabled",			CMK_R_UNAVAILABLE },
	{ "Creating",			CMK_R_UNAVAILABLE },
	{ "Updating",			CMK_R_UNAVAILABLE },
};

enum cmk_reason cmk_aws_key_state_reason(long status, const char *error_type,
					 const char *body, size_t body_len,
					 char *state, size_t state_len)
{
	struct json_object *o, *md, *v;
	enum cmk_reason why = CMK_R_UNAVAILABLE;
	struct cmk_aws_error err;

	if (state_len)
		state[0] = '\0';
	if (status != 200) {
		/* Only "the key is gone" is an answer; anything else confirms nothing. */
		why = cmk_aws_classify(status, error_type, body, body_len, &err);
		return why == CMK_R_NOT_FOUND ? CMK_R_NOT_FOUND : CMK_R_UNAVAILABLE;
	}
	o = cmk_json_parse_wiped(body, body_len);
	if (o && json_object_object_get_ex(o, "KeyMetadata", &md) &&
	    json_object_object_get_ex(md, "KeyState", &v) &&
	    json_object_is_type(v, json_type_string)) {
		const char *ks = json_object_get_string(v);

		if (state_len)
			clean_code(ks, strlen(ks), state, state_len);
		for (size_t i = 0; i < sizeof(key_states) / sizeof(key_states[0]); i++)
			if (!strcmp(key_states[i].state, ks))
				why = key_states[i].reason;
	}
	cmk_json_put_wiped(o);
	return why;
}

/* ---- endpoints ------------------------------------------------------------------ */

static bool region_ok(const char *r)
{
	if (!r || !*r || strlen(r) > 32)
		return false;
	for (const char *c = r; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
			return false;
	return true;
}

int cmk_aws_endpoint(const char *region, bool fips, bool dualstack,
		     char *out, size_t len, struct cmk_err *e)
{
	bool cn = strncmp(region ? region : "", "cn-", 3) == 0;

	if (!region_ok(region))
		return cmk_errf(e, -EINVAL, "aws: region \"%s\" is not a region name",
				region ? region : "");
	if (cn && (fips || dualstack))
		return cmk_errf(e, -EINVAL,
				"aws: no FIPS or dual-stack KMS endpoint is known for %s; set endpoint explicitly",
				region);
	snprintf(out, len, "https://kms%s.%s.%s", fips ? "-fips" : "", region,
		 cn ? "amazonaws.com.cn" : dualstack ? "api.aws" : "amazonaws.com");
	return 0;
}

/* scheme://host[:port][/path] -> host header value and path */
static int split_url(const char *url, char *host, size_t hl, char *path,
		     size_t pl, struct cmk_err *e)
{
	const char *a, *slash;
	bool https = strncmp(url, "https://", 8) == 0;
	size_t n;

	if (!https && strncmp(url, "http://", 7))
		return cmk_errf(e, -EINVAL, "aws: endpoint \"%s\" is not an http(s) URL", url);
	a = url + (https ? 8 : 7);
	slash = strchr(a, '/');
	n = slash ? (size_t)(slash - a) : strlen(a);
	if (n == 0 || n >= hl || memchr(a, '@', n) || memchr(a, '?', n))
		return cmk_errf(e, -EINVAL, "aws: endpoint \"%s\" has a bad host part", url);
	memcpy(host, a, n);
	host[n] = '\0';
	/* The Host header carries no default port (as HTTP clients send it). */
	n = strlen(host);
	if (https && n > 4 && strcmp(host + n - 4, ":443") == 0)
		host[n - 4] = '\0';
	if (!https && n > 3 && strcmp(host + n - 3, ":80") == 0)
		host[n - 3] = '\0';
	snprintf(path, pl, "%s", slash ? slash : "/");
	if (strpbrk(path, "?#"))
		return cmk_errf(e, -EINVAL, "aws: endpoint \"%s\" has a query or fragment", url);
	return 0;
}

/* ---- open/close ----------------------------------------------------------------- */

/* The credentials and the IMDSv2 session token go (wiped). */
static void aws_reset(void *priv)
{
	struct aws *a = priv;

	cmk_aws_creds_forget(&a->creds);
}

static void aws_close(void *priv)
{
	struct aws *a = priv;

	if (!a)
		return;
	cmk_aws_cred_src_free(&a->creds);
	free(a->key_id);
	free(a->ca_bundle);
	free(a);
}

static int aws_open(const struct cmk_kv *kv, size_t n, void **priv,
		    struct cmk_err *e)
{
	const char *region = NULL, *endpoint = NULL, *profile = NULL,
		   *mode = NULL, *imds = NULL, *ca = NULL, *v;
	bool imds6 = false;
	struct aws *a;
	int ret = 0;

	a = calloc(1, sizeof(*a));
	if (!a)
		return cmk_errf(e, -ENOMEM, "aws: out of memory");
	if ((v = cmk_env_nonempty("AWS_USE_FIPS_ENDPOINT")))
		a->fips = strcasecmp(v, "true") == 0;
	if ((v = cmk_env_nonempty("AWS_USE_DUALSTACK_ENDPOINT")))
		a->dualstack = strcasecmp(v, "true") == 0;
	for (size_t i = 0; i < n && !ret; i++) {
		const char *k = kv[i].key;

		v = kv[i].value;
		if (!strcmp(k, "region"))
			region = v;
		else if (!strcmp(k, "endpoint"))
			endpoint = v;
		else if (!strcmp(k, "profile"))
			profile = v;
		else if (!strcmp(k, "credentials"))
			mode = v;
		else if (!strcmp(k, "imds_endpoint"))
			imds = v;
		else if (!strcmp(k, "ca_bundle"))
			ca = v;
		else if (!strcmp(k, "imds_ipv6"))
			ret = cmk_setting_bool("aws", k, v, &imds6, e);
		else if (!strcmp(k, "fips"))
			ret = cmk_setting_bool("aws", k, v, &a->fips, e);
		else if (!strcmp(k, "dualstack"))
			ret = cmk_setting_bool("aws", k, v, &a->dualstack, e);
		else if (!strcmp(k, "key_id")) {
			free(a->key_id);
			a->key_id = strdup(v);
			if (!a->key_id)
				ret = cmk_errf(e, -ENOMEM, "aws: out of memory");
		} else {
			ret = cmk_http_setting("aws", k, v, &a->http, e);
		}
	}
	if (ret)
		goto out;
	if (!region)
		region = cmk_env_nonempty("AWS_REGION");
	if (!region)
		region = cmk_env_nonempty("AWS_DEFAULT_REGION");
	if (region) {
		if (!region_ok(region)) {
			ret = cmk_errf(e, -EINVAL, "aws: region \"%s\" is not a region name",
				       region);
			goto out;
		}
		snprintf(a->region, sizeof(a->region), "%s", region);
	}
	if (!endpoint)
		endpoint = cmk_env_nonempty("AWS_ENDPOINT_URL_KMS");
	if (!endpoint)
		endpoint = cmk_env_nonempty("AWS_ENDPOINT_URL");
	if (endpoint) {
		char h[300], p[256];

		if (strlen(endpoint) >= sizeof(a->endpoint)) {
			ret = cmk_errf(e, -EINVAL, "aws: endpoint too long");
			goto out;
		}
		snprintf(a->endpoint, sizeof(a->endpoint), "%s", endpoint);
		ret = split_url(a->endpoint, h, sizeof(h), p, sizeof(p), e) ?:
		      cmk_http_url_check("aws", "endpoint", a->endpoint, CMK_URL_KMS, e);
		if (ret)
			goto out;
		a->endpoint_fixed = true;
	} else if (a->region[0]) {
		ret = cmk_aws_endpoint(a->region, a->fips, a->dualstack, a->endpoint,
				       sizeof(a->endpoint), e);
		if (ret)
			goto out;
	}
	if (!ca)
		ca = cmk_env_nonempty("AWS_CA_BUNDLE");
	if (ca) {
		ret = cmk_check_trusted_file(ca, "ca_bundle", e);
		if (ret) {
			cmk_err_prefix(e, "aws");
			goto out;
		}
		a->ca_bundle = strdup(ca);
		if (!a->ca_bundle) {
			ret = cmk_errf(e, -ENOMEM, "aws: out of memory");
			goto out;
		}
		a->http.ca_bundle = a->ca_bundle;
	}
	if (!imds && imds6)
		imds = CMK_AWS_IMDS_DEFAULT6;
	ret = cmk_aws_cred_src_init(&a->creds, mode, profile, imds, e);
	if (ret)
		cmk_err_prefix(e, "aws");
out:
	if (ret) {
		aws_close(a);
		return ret;
	}
	*priv = a;
	return 0;
}

/* ---- one KMS call ----------------------------------------------------------------- */

/* Region of a key or alias ARN: arn:PARTITION:kms:REGION:ACCOUNT:... */
static bool region_from_arn(const char *ref, char *out, size_t len)
{
	const char *p = ref;

	if (strncmp(ref, "arn:", 4))
		return false;
	for (int i = 0; i < 3; i++) {
		p = strchr(p, ':');
		if (!p)
			return false;
		p++;
	}
	if (strncmp(strchr(ref + 4, ':') + 1, "kms:", 4))
		return false;
	snprintf(out, len, "%.*s", (int)strcspn(p, ":"), p);
	return region_ok(out);
}

static int resolve_endpoint(struct aws *a, const char *key_ref,
			    struct cmk_err *e)
{
	char *r = NULL;
	int ret;

	if (a->endpoint[0] && a->region[0])
		return 0;
	if (!a->region[0] && !region_from_arn(key_ref, a->region, sizeof(a->region))) {
		a->region[0] = '\0';
		ret = cmk_aws_imds_get(&a->creds, time(NULL),
				       "/latest/meta-data/placement/region", &r, e);
		if (ret) {
			cmk_err_prefix(e, "aws: no region configured (set region, AWS_REGION, or use a key ARN), and IMDS");
			return ret;
		}
		r[strcspn(r, "\r\n")] = '\0';
		if (!region_ok(r)) {
			free(r);
			return cmk_errf(e, -EPROTO, "aws: IMDS gave a bad region name");
		}
		snprintf(a->region, sizeof(a->region), "%s", r);
		free(r);
	}
	if (!a->endpoint[0])
		return cmk_aws_endpoint(a->region, a->fips, a->dualstack,
					a->endpoint, sizeof(a->endpoint), e);
	return 0;
}

struct retry_arg {
	bool expired;
	uint64_t retry_until;	/* retries end here (0: the deadline) */
};

static enum cmk_reason kms_retry(const struct cmk_http_response *r, void *arg)
{
	struct retry_arg *ra = arg;
	struct cmk_aws_error err;
	char et[128];
	enum cmk_reason why;

	why = cmk_aws_classify(r->status,
			       cmk_http_header(r, "x-amzn-ErrorType", et, sizeof(et)),
			       r->body, r->body_len, &err);
	/* Retrying a request signed with expired credentials cannot help. */
	if (code_kind(err.code) == K_CREDS_EXPIRED) {
		ra->expired = true;
		return CMK_R_NONE;
	}
	/*
	 * An ambiguous answer is not retried: DescribeKey decides, and needs
	 * the time retries would take (a key pending deletion answers the
	 * same to every retry).
	 */
	if (err.confirm)
		return CMK_R_NONE;
	/*
	 * A retry may still get an answer that needs confirming: retries
	 * leave the confirming DescribeKey its share of the deadline (the
	 * first attempt had all of it).
	 */
	if (cmk_reason_class(why) == CMK_EC_TRANSIENT && ra->retry_until &&
	    cmk_deadline_get() > ra->retry_until)
		cmk_deadline_set(ra->retry_until);
	return why;
}

/* Did KMS reject the credentials themselves (not the request)? */
static bool creds_rejected(const struct cmk_http_response *r)
{
	struct cmk_aws_error err;
	char et[128];
	enum kind k;

	if (r->status == 200)
		return false;
	cmk_aws_classify(r->status, cmk_http_header(r, "x-amzn-ErrorType", et, sizeof(et)),
			 r->body, r->body_len, &err);
	k = code_kind(err.code);
	return k == K_CREDS || k == K_CREDS_EXPIRED;
}

/*
 * An error answer -> message with advice, and the reason's class.
 * @reloaded: the credentials were already read again after this answer.
 */
static int kms_error(struct aws *a, const char *op, const char *key_ref,
		     const struct cmk_http_response *r,
		     const struct cmk_aws_creds *c, bool reloaded,
		     struct cmk_aws_error *err, struct cmk_err *e)
{
	char et[128];
	enum cmk_reason why;
	const char *advice = "";

	why = cmk_aws_classify(r->status,
			       cmk_http_header(r, "x-amzn-ErrorType", et, sizeof(et)),
			       r->body, r->body_len, err);
	switch (code_kind(err->code)) {
	case K_CREDS:
		advice = why != CMK_R_DENIED ? ": check the system clock" :
			 reloaded && a->reload_note[0] ? ": KMS rejected the agent's credentials and their source has not given them again for too long; fix or restore them" :
			 reloaded ? ": KMS rejected the agent's credentials, also as read again from their source; fix or rotate them" :
			 ": KMS rejected the agent's credentials, fix or rotate them";
		break;
	case K_CREDS_EXPIRED:
		/*
		 * Expired credentials whose source has not given fresh ones
		 * for too long (a role detached from the instance: what it
		 * had keeps working until it expires) are the rejection that
		 * counts, as any other.
		 */
		if (reloaded && a->reload_note[0]) {
			why = CMK_R_DENIED;
			advice = ": the agent's credentials expired and their source has not given new ones for too long; fix or restore them";
		} else {
			advice = ": credentials expired, refreshing them";
		}
		cmk_aws_creds_invalidate(&a->creds);
		break;
	default:
		break;
	}
	/* Most useful first: the AWS message may be cut at CMK_ERR_MSG_MAX. */
	return cmk_err_kms(e, why, "aws kms %s %s: %s, HTTP %ld%s (credentials: %s %s)%s%s%s",
			   op, key_ref, err->code[0] ? err->code : "error",
			   r->status, advice, c->source, c->access_key_id,
			   reloaded ? a->reload_note : "",
			   err->message[0] ? ": " : "", err->message);
}

/* Sign @body as TrentService.@op with @c and POST it; any answer in *@r. */
static int kms_send(struct aws *a, const char *op, const char *host,
		    const char *path, const struct cmk_aws_creds *c,
		    const char *body, size_t body_len,
		    struct cmk_http_response *r, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *tokz = NULL;
	struct cmk_sigv4_out sig = { 0 };
	struct retry_arg ra = { false, a->retry_until };
	char target[64];
	struct cmk_nv sh[] = {
		{ "Host", host },
		{ "Content-Type", "application/x-amz-json-1.1" },
		{ "X-Amz-Target", target },
	};
	struct cmk_sigv4_request sr = {
		.method = "POST", .path = path, .headers = sh,
		.n_headers = 3, .body = body, .body_len = body_len,
	};
	struct cmk_nv hh[6];
	struct cmk_http_request hr = { "POST", a->endpoint, hh, 5,
				       body, body_len };
	int ret;

	snprintf(target, sizeof(target), "TrentService.%s", op);
	ret = cmk_aws_sign(&sr, c, a->region, "kms", &sig, hh, &tokz, e);
	if (ret < 0)
		goto out;
	hr.n_headers = (size_t)ret;
	ret = cmk_http_do(&a->http, &hr, kms_retry, &ra, r, e);
out:
	cmk_sigv4_out_free(&sig);
	return ret;
}

/*
 * One KMS request, answered with any status in *@r.  When KMS rejects the
 * credentials (a rotated or deleted access key, an expired token), they
 * are read again from their source and, if that gives other ones, the
 * request is sent once more before the answer counts.  If the source does
 * not read, the rejection counts only once that has lasted
 * (credreload.h); until then the call fails with the reload's class.
 * *@cp: the credentials of the answer; *@reloaded: they were read again
 * (or failed to read: @a->reload_note says so) after a rejection.
 */
static int kms_call_raw(struct aws *a, const char *op, const char *key_ref,
			const char *body, size_t body_len,
			struct cmk_http_response *r,
			const struct cmk_aws_creds **cp, bool *reloaded,
			struct cmk_err *e)
{
	char host[300], path[256];
	bool changed = false;
	int ret;

	*reloaded = false;
	a->reload_note[0] = '\0';
	memset(r, 0, sizeof(*r));
	ret = resolve_endpoint(a, key_ref, e);
	if (ret)
		return ret;
	ret = split_url(a->endpoint, host, sizeof(host), path, sizeof(path), e);
	if (ret)
		return ret;
	for (int attempt = 0;; attempt++) {
		struct cmk_err re;

		ret = cmk_aws_creds_get(&a->creds, time(NULL), cp, e);
		if (ret) {
			cmk_err_prefix(e, "aws kms %s %s: credentials", op, key_ref);
			return ret;
		}
		ret = kms_send(a, op, host, path, *cp, body, body_len, r, e);
		if (ret) {
			cmk_err_prefix(e, "aws kms %s %s", op, key_ref);
			return ret;
		}
		if (!creds_rejected(r))
			cmk_cred_reload_ok(&a->reload);
		if (attempt > 0 || !creds_rejected(r))
			return 0;
		*reloaded = true;
		ret = cmk_aws_creds_reload(&a->creds, time(NULL), &changed, &re);
		if (ret) {
			char what[128];

			/*
			 * The source does not read (a credentials file being
			 * rewritten by a rotation, a metadata service that
			 * does not answer): that says nothing about the key,
			 * so for a while the rejection does not count.
			 */
			if (cmk_cred_reload_failed(&a->reload, &re)) {
				cmk_cred_reload_note(&a->reload, &re, a->reload_note,
						     sizeof(a->reload_note));
				*cp = &a->creds.cur;
				return 0;
			}
			cmk_http_response_free(r);
			snprintf(what, sizeof(what), "aws kms %s %s: KMS rejected the credentials",
				 op, key_ref);
			return cmk_cred_reload_defer(&a->reload, what, &re, ret, e);
		}
		cmk_cred_reload_ok(&a->reload);
		if (!changed) {
			/* Nothing new to try: the answer we have counts. */
			*cp = &a->creds.cur;
			return 0;
		}
		cmk_http_response_free(r);
	}
}

/*
 * KMSInvalidStateException is ambiguous: ask DescribeKey for the key state
 * (a call that does not use the key) and let that decide.  @e holds the
 * first answer's error on entry and the final one on return.
 */
static int confirm_key_state(struct aws *a, const char *key_ref,
			     struct cmk_err *e)
{
	const struct cmk_aws_creds *c;
	struct cmk_http_response r = { 0 };
	struct json_object *req;
	char first[CMK_ERR_MSG_MAX], state[48] = "", et[128], what[CMK_ERR_MSG_MAX + 64];
	enum cmk_reason why = CMK_R_UNAVAILABLE;
	struct cmk_aws_error derr;
	struct cmk_err de;
	const char *body, *advice;
	bool reloaded, denied = false;
	size_t n = 0;

	snprintf(first, sizeof(first), "%s", e->msg);
	req = json_object_new_object();
	body = req && !cmk_json_add_str(req, "KeyId", key_ref) ?
	       json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &n) : NULL;
	if (!body) {
		snprintf(what, sizeof(what), "not asked (out of memory)");
		advice = ": the key state is unknown, so this is not taken as a revocation";
	} else if (kms_call_raw(a, "DescribeKey", key_ref, body, n, &r, &c, &reloaded, &de)) {
		snprintf(what, sizeof(what), "no answer (%s: %s)", cmk_reason_name(de.reason), de.msg);
		advice = de.reason == CMK_R_TIMEOUT ?
			 ": no time was left to read the key state, so this is not taken as a revocation; the next check asks again" :
			 ": the key state is unknown, so this is not taken as a revocation; the next check asks again";
	} else {
		why = cmk_aws_key_state_reason(r.status,
					       cmk_http_header(&r, "x-amzn-ErrorType", et, sizeof(et)),
					       r.body, r.body_len, state, sizeof(state));
		if (r.status == 200) {
			snprintf(what, sizeof(what), "KeyState %s", state[0] ? state : "(none)");
		} else {
			denied = cmk_aws_classify(r.status,
						  cmk_http_header(&r, "x-amzn-ErrorType", et, sizeof(et)),
						  r.body, r.body_len, &derr) == CMK_R_DENIED;
			snprintf(what, sizeof(what), "%s, HTTP %ld",
				 derr.code[0] ? derr.code : "error", r.status);
		}
		advice = cmk_reason_class(why) == CMK_EC_DEFINITIVE ? "" :
			 !strcmp(state, "Enabled") ?
			 ": the KMS key is usable, so the failure is in its custom key store (CloudHSM cluster, external key store proxy or key manager), not a revocation" :
			 denied ?
			 ": the key state is unknown, so this is not taken as a revocation (the agent needs kms:DescribeKey on the key to tell one)" :
			 ": the key state is unknown, so this is not taken as a revocation";
	}
	json_object_put(req);
	cmk_http_response_free(&r);
	return cmk_err_kms(e, why, "%s; DescribeKey: %s%s", first, what, advice);
}

/*
 * A request whose answer may need confirming leaves a quarter of what is
 * left of the check's deadline (deadline.h) to the confirming DescribeKey
 * - from its retries only (kms_retry()): its first attempt may use all of
 * it, and most answers need no confirming.  Where its retries end, or 0.
 */
static uint64_t retries_end(void)
{
	uint64_t at = cmk_deadline_get();
	long left = cmk_deadline_left_ms();

	return at && left > 0 ? at - (uint64_t)left / 4 : 0;
}

/* One signed POST of @body (JSON) as TrentService.@op; *resp on HTTP 200. */
static int kms_call(struct aws *a, const char *op, const char *key_ref,
		    const char *body, size_t body_len, struct json_object **resp,
		    struct cmk_kms_call *call, struct cmk_err *e)
{
	const struct cmk_aws_creds *c;
	struct cmk_http_response r = { 0 };
	struct cmk_aws_error err;
	char rid[CMK_REQUEST_ID_MAX];
	bool reloaded;
	int ret;

	uint64_t deadline = cmk_deadline_get();

	*resp = NULL;
	a->retry_until = retries_end();
	ret = kms_call_raw(a, op, key_ref, body, body_len, &r, &c, &reloaded, e);
	a->retry_until = 0;
	cmk_deadline_set(deadline);
	if (ret)
		goto out;
	/* Audit lines and cmkctl print it: printable ASCII only (err.h). */
	if (call && cmk_http_header(&r, "x-amzn-RequestId", rid, sizeof(rid)))
		cmk_printable(rid, strlen(rid), call->request_id,
			      sizeof(call->request_id), false);
	if (r.status != 200) {
		ret = kms_error(a, op, key_ref, &r, c, reloaded, &err, e);
		if (err.confirm)
			ret = confirm_key_state(a, key_ref, e);
		goto out;
	}
	*resp = cmk_json_parse_wiped(r.body, r.body_len);
	if (!*resp || !json_object_is_type(*resp, json_type_object)) {
		cmk_json_put_wiped(*resp);
		*resp = NULL;
		ret = cmk_err_kms(e, CMK_R_UNAVAILABLE,
				  "aws kms %s %s: the answer is not a JSON object", op,
				  key_ref);
	}
out:
	cmk_http_response_free(&r);
	return ret;
}

/* kms_call() for a request object that holds no secret. */
static int kms_json_call(struct aws *a, const char *op, const char *key_ref,
			 struct json_object *req, struct json_object **resp,
			 struct cmk_kms_call *call, struct cmk_err *e)
{
	size_t n = 0;
	const char *body = json_object_to_json_string_length(req,
							      JSON_C_TO_STRING_PLAIN, &n);

	*resp = NULL;
	if (!body)
		return cmk_errf(e, -ENOMEM, "aws: out of memory");
	return kms_call(a, op, key_ref, body, n, resp, call, e);
}

/* ---- JSON helpers --------------------------------------------------------------- */

static int add_ctx(struct json_object *req, const char *name,
		   const struct cmk_encctx *ctx)
{
	struct json_object *m;

	if (!ctx || ctx->n == 0)
		return 0;
	m = json_object_new_object();
	if (!m || json_object_object_add(req, name, m))
		return -ENOMEM;
	for (size_t i = 0; i < ctx->n; i++)
		if (json_object_object_add(m, ctx->pairs[i].key,
					   json_object_new_string(ctx->pairs[i].value)))
			return -ENOMEM;
	return 0;
}

static int check_ref(struct aws *a, const char *key_ref, struct cmk_err *e)
{
	if (!key_ref || !*key_ref)
		return cmk_errf(e, -EINVAL,
				"aws: empty key reference; give the key id, key ARN or alias");
	if (a->key_id && strcmp(a->key_id, key_ref))
		return cmk_errf(e, -EPERM,
				"aws: the envelope names key %s but the configuration pins key_id %s; refusing to use another key",
				key_ref, a->key_id);
	return 0;
}

/* The CiphertextBlob of an answer, decoded. */
static int get_blob(struct json_object *o, const char *op, const char *key_ref,
		    unsigned char **out, size_t *out_len, struct cmk_err *e)
{
	const char *b = cmk_json_str(o, "CiphertextBlob", NULL);
	struct cmk_err tmp;

	if (!b || cmk_b64_decode(b, out, out_len, &tmp) || *out_len == 0 ||
	    *out_len > CMK_AWS_CIPHERTEXT_MAX)
		return cmk_err_kms(e, CMK_R_UNAVAILABLE,
				   "aws kms %s %s: the answer has no valid CiphertextBlob",
				   op, key_ref);
	return 0;
}

/* ---- operations ------------------------------------------------------------------ */

/* The Encrypt request carries the KEK (base64): see cmk_json_secret_body(). */
static int aws_wrap(void *priv, const char *key_ref,
		    const struct cmk_secret *plain, const struct cmk_encctx *ctx,
		    unsigned char **wrapped, size_t *wrapped_len,
		    struct cmk_kms_call *call, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *body = NULL;
	struct aws *a = priv;
	struct json_object *req = NULL, *resp = NULL;
	size_t n = cmk_secret_len(plain), tl = 0;
	int ret;

	ret = check_ref(a, key_ref, e);
	if (ret)
		return ret;
	if (n == 0 || n > 4096)
		return cmk_errf(e, -EINVAL, "aws: Encrypt takes 1..4096 bytes");
	req = json_object_new_object();
	if (!req || cmk_json_add_str(req, "KeyId", key_ref) ||
	    add_ctx(req, "EncryptionContext", ctx)) {
		ret = cmk_errf(e, -ENOMEM, "aws: out of memory");
		goto out;
	}
	ret = cmk_kms_plaintext_body("Plaintext", plain, req, &body, &tl,
				     "aws Encrypt", e);
	if (ret)
		goto out;
	ret = kms_call(a, "Encrypt", key_ref, (const char *)cmk_secret_cdata(body),
		       tl, &resp, call, e);
	if (!ret)
		ret = get_blob(resp, "Encrypt", key_ref, wrapped, wrapped_len, e);
out:
	cmk_json_put_wiped(req);
	cmk_json_put_wiped(resp);
	return ret;
}

static int aws_unwrap(void *priv, const char *key_ref,
		      const unsigned char *wrapped, size_t wrapped_len,
		      const struct cmk_encctx *ctx, struct cmk_secret **plain,
		      struct cmk_kms_call *call, struct cmk_err *e)
{
	struct aws *a = priv;
	struct json_object *req = NULL, *resp = NULL;
	const char *kid;
	int ret;

	ret = check_ref(a, key_ref, e);
	if (ret)
		return ret;
	req = json_object_new_object();
	if (!req || cmk_json_add_b64(req, "CiphertextBlob", wrapped, wrapped_len) ||
	    cmk_json_add_str(req, "KeyId", key_ref) ||
	    add_ctx(req, "EncryptionContext", ctx)) {
		ret = cmk_errf(e, -ENOMEM, "aws: out of memory");
		goto out;
	}
	ret = kms_json_call(a, "Decrypt", key_ref, req, &resp, call, e);
	if (ret)
		goto out;
	/* With a key ARN, the key KMS used must be that key. */
	kid = cmk_json_str(resp, "KeyId", NULL);
	if (!strncmp(key_ref, "arn:", 4) && strstr(key_ref, ":key/") &&
	    (!kid || strcmp(kid, key_ref))) {
		ret = cmk_errf(e, -EPROTO,
			       "aws kms Decrypt %s: the answer names key %.200s",
			       key_ref, kid ? kid : "(none)");
		goto out;
	}
	ret = cmk_kms_plaintext(resp, "Plaintext", "aws kms Decrypt", key_ref,
				plain, e);
out:
	if (ret)
		cmk_secret_free(plain);
	cmk_json_put_wiped(req);
	cmk_json_put_wiped(resp);
	return ret;
}

/* ReEncrypt: the KEK is decrypted and encrypted again inside KMS only. */
static int aws_rewrap(void *priv, const char *from_ref,
		      const unsigned char *wrapped, size_t wrapped_len,
		      const struct cmk_encctx *from_ctx, const char *to_ref,
		      const struct cmk_encctx *to_ctx, unsigned char **out,
		      size_t *out_len, struct cmk_kms_call *call,
		      struct cmk_err *e)
{
	struct aws *a = priv;
	struct json_object *req = NULL, *resp = NULL;
	int ret;

	if (!from_ref || !*from_ref)
		return cmk_errf(e, -EINVAL, "aws: empty source key reference");
	/* A pinned key_id constrains where KEKs go, not where they come from. */
	ret = check_ref(a, to_ref, e);
	if (ret)
		return ret;
	req = json_object_new_object();
	if (!req || cmk_json_add_b64(req, "CiphertextBlob", wrapped, wrapped_len) ||
	    cmk_json_add_str(req, "SourceKeyId", from_ref) ||
	    add_ctx(req, "SourceEncryptionContext", from_ctx) ||
	    cmk_json_add_str(req, "DestinationKeyId", to_ref) ||
	    add_ctx(req, "DestinationEncryptionContext", to_ctx)) {
		ret = cmk_errf(e, -ENOMEM, "aws: out of memory");
		goto out;
	}
	ret = kms_json_call(a, "ReEncrypt", from_ref, req, &resp, call, e);
	if (!ret)
		ret = get_blob(resp, "ReEncrypt", from_ref, out, out_len, e);
out:
	cmk_json_put_wiped(req);
	cmk_json_put_wiped(resp);
	return ret;
}

const struct cmk_provider_ops cmk_provider_aws_ops = {
	.name = "aws",
	.settings = aws_settings,
	.wrapped_kek_min = 32,
	.wrapped_kek_max = CMK_AWS_CIPHERTEXT_MAX,
	.open = aws_open,
	.close = aws_close,
	.wrap = aws_wrap,
	.unwrap = aws_unwrap,
	.rewrap = aws_rewrap,
	.reset = aws_reset,
};
