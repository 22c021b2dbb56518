// SPDX-License-Identifier: GPL-2.0
/*
 * sqs.c - SQS ReceiveMessage and DeleteMessageBatch for the revocation
 * hint (see sqs.h).
 */
#include "kms/aws/sqs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "core/json_secret.h"
#include "kms/aws/provider_aws.h"
#include "kms/aws/sigv4.h"

/* A receipt handle longer than this is no SQS answer (AWS: up to 1,024). */
#define RECEIPT_MAX		8192
/* The HTTP timeout of a long poll: its wait, and time to answer. */
#define POLL_SLACK_MS		10000

static bool region_ok(const char *r, size_t n)
{
	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') ||
		      r[i] == '-'))
			return false;
	return true;
}

int cmk_sqs_region_of_host(const char *host, char *region, size_t len)
{
	static const char *const pre[] = { "sqs.", "sqs-fips." };
	const char *r = NULL, *end;

	for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]) && !r; i++)
		if (!strncmp(host, pre[i], strlen(pre[i])))
			r = host + strlen(pre[i]);
	if (r) {
		end = strchr(r, '.');
		if (!end || (strcmp(end, ".amazonaws.com") && strcmp(end, ".amazonaws.com.cn") &&
			     strcmp(end, ".api.aws")))
			return -EINVAL;
	} else {
		/* The legacy name: <region>.queue.amazonaws.com */
		end = strstr(host, ".queue.amazonaws.com");
		if (!end || strcmp(end, ".queue.amazonaws.com"))
			return -EINVAL;
		r = host;
	}
	if (!region_ok(r, (size_t)(end - r)) || (size_t)(end - r) >= len)
		return -EINVAL;
	memcpy(region, r, (size_t)(end - r));
	region[end - r] = '\0';
	return 0;
}

/* Scheme, host and port of the queue URL, parsed by libcurl. */
static int split_queue_url(struct cmk_sqs *q, const char *url, struct cmk_err *e)
{
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
	CURLU *u = curl_url();
	const char *slash;
	int ret = 0;

	if (!u)
		return cmk_errf(e, -ENOMEM, "sqs: out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0)) {
		ret = cmk_errf(e, -EINVAL, "sqs: hint_sqs_queue_url \"%s\" is not a URL", url);
		goto out;
	}
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	if (curl_url_get(u, CURLUPART_QUERY, &query, 0) != CURLUE_NO_QUERY) {
		ret = cmk_errf(e, -EINVAL, "sqs: hint_sqs_queue_url \"%s\" has a query", url);
		goto out;
	}
	/* /<account>/<queue name>, as SQS gives queue URLs. */
	slash = path[0] == '/' ? strchr(path + 1, '/') : NULL;
	if (!slash || slash == path + 1 || !slash[1] || strchr(slash + 1, '/')) {
		ret = cmk_errf(e, -EINVAL,
			       "sqs: hint_sqs_queue_url \"%s\": the path is not /<account>/<queue name>",
			       url);
		goto out;
	}
	if (strlen(host) + (port ? strlen(port) + 1 : 0) >= sizeof(q->host)) {
		ret = cmk_errf(e, -EINVAL, "sqs: hint_sqs_queue_url \"%s\": the host is too long", url);
		goto out;
	}
	snprintf(q->host, sizeof(q->host), "%s%s%s", host, port ? ":" : "", port ? port : "");
	/* http or https: cmk_http_url_check() said so. */
	snprintf(q->endpoint, sizeof(q->endpoint), "%s://%.300s/",
		 strcmp(scheme, "https") ? "http" : "https", q->host);
	if (!q->region[0] && cmk_sqs_region_of_host(host, q->region, sizeof(q->region)))
		q->region[0] = '\0';
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_url_cleanup(u);
	return ret;
}

int cmk_sqs_open(struct cmk_sqs *q, const char *url, const char *region,
		 struct cmk_err *e)
{
	const char *env;
	int ret;

	memset(q, 0, sizeof(*q));
	if (!url || strlen(url) >= sizeof(q->queue_url))
		return cmk_errf(e, -EINVAL, "sqs: hint_sqs_queue_url is missing or too long");
	ret = cmk_http_url_check("sqs", "hint_sqs_queue_url", url, CMK_URL_KMS, e);
	if (ret)
		return ret;
	snprintf(q->queue_url, sizeof(q->queue_url), "%s", url);
	if (region) {
		if (!region_ok(region, strlen(region)))
			return cmk_errf(e, -EINVAL, "sqs: hint_sqs_region \"%s\" is not a region name",
					region);
		snprintf(q->region, sizeof(q->region), "%s", region);
	}
	ret = split_queue_url(q, url, e);
	if (ret)
		return ret;
	if (!q->region[0]) {
		env = getenv("AWS_REGION");
		if (!env || !*env)
			env = getenv("AWS_DEFAULT_REGION");
		if (!env || !region_ok(env, strlen(env)))
			return cmk_errf(e, -EINVAL,
					"sqs: no region for queue %s: its host names none; set hint_sqs_region or AWS_REGION",
					url);
		snprintf(q->region, sizeof(q->region), "%s", env);
	}
	/* One attempt per request: the hint thread backs off by itself. */
	q->http.connect_timeout_ms = 3000;
	q->http.timeout_ms = CMK_SQS_WAIT_S * 1000L + POLL_SLACK_MS;
	q->http.max_attempts = 1;
	return cmk_aws_cred_src_init(&q->creds, NULL, NULL, NULL, e);
}

void cmk_sqs_close(struct cmk_sqs *q)
{
	cmk_aws_cred_src_free(&q->creds);
}

void cmk_sqs_msgs_free(struct cmk_sqs_msg *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(msgs[i].receipt);
		msgs[i].receipt = NULL;
	}
}

/* Never a retry inside http.c: every answer goes to the caller. */
static enum cmk_reason no_retry(const struct cmk_http_response *r, void *arg)
{
	(void)r;
	(void)arg;
	return CMK_R_NONE;
}

static bool creds_code(const char *code)
{
	static const char *const codes[] = {
		"InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
		"IncompleteSignature", "MissingAuthenticationToken", "ExpiredToken",
		"ExpiredTokenException", "RequestExpired", "InvalidSecurity",
	};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (!strcmp(code, codes[i]))
			return true;
	return false;
}

/* Sign and POST AmazonSQS.@op with @body; 0 only for HTTP 200. */
static int sqs_call(struct cmk_sqs *q, const struct cmk_http_opts *o,
		    const char *op, const char *body,
		    struct cmk_http_response *r, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *tokz = NULL;
	const struct cmk_aws_creds *c;
	struct cmk_sigv4_out sig = { 0 };
	char target[64];
	struct cmk_nv sh[] = {
		{ "Host", q->host },
		{ "Content-Type", "application/x-amz-json-1.0" },
		{ "X-Amz-Target", target },
	};
	struct cmk_sigv4_request sr = {
		.method = "POST", .path = "/", .headers = sh,
		.n_headers = 3, .body = body, .body_len = strlen(body),
	};
	struct cmk_nv hh[6];
	struct cmk_http_request hr = { "POST", q->endpoint, hh, 5, body, strlen(body) };
	struct cmk_aws_error err;
	int ret;

	memset(r, 0, sizeof(*r));
	snprintf(target, sizeof(target), "AmazonSQS.%s", op);
	ret = cmk_aws_creds_get(&q->creds, time(NULL), &c, e);
	if (ret) {
		cmk_err_prefix(e, "sqs %s %s: credentials", op, q->queue_url);
		return ret;
	}
	ret = cmk_aws_sign(&sr, c, q->region, "sqs", &sig, hh, &tokz, e);
	if (ret < 0)
		goto out;
	hr.n_headers = (size_t)ret;
	ret = cmk_http_do(o, &hr, no_retry, NULL, r, e);
	if (ret) {
		cmk_err_prefix(e, "sqs %s %s", op, q->queue_url);
		goto out;
	}
	if (r->status == 200)
		goto out;
	/* The body's __type ("...#QueueDoesNotExist"); not x-amzn-query-error. */
	cmk_aws_classify(r->status, NULL, r->body, r->body_len, &err);
	/* Rotated keys, an expired token: read them again for the next poll. */
	if (creds_code(err.code))
		cmk_aws_creds_invalidate(&q->creds);
	ret = cmk_err_kms(e, r->status == 429 || r->status >= 500 ||
			  !strcmp(err.code, "RequestThrottled") ||
			  !strcmp(err.code, "ThrottlingException") ?
			  CMK_R_THROTTLED : CMK_R_UNAVAILABLE,
			  "sqs %s %s: %s, HTTP %ld (credentials: %s %s)%s%s", op, q->queue_url,
			  err.code[0] ? err.code : "error", r->status, c->source,
			  c->access_key_id, err.message[0] ? ": " : "", err.message);
out:
	cmk_sigv4_out_free(&sig);
	return ret;
}

/* ---- ReceiveMessage ----------------------------------------------------------- */

static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < ' ' || s[i] > '~')
			return false;
	return true;
}

static bool md5_matches(const char *body, size_t len, const char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdl = 0;
	char want[2 * EVP_MAX_MD_SIZE + 1];

	if (!EVP_Digest(body, len, md, &mdl, EVP_md5(), NULL) || mdl != 16)
		return false;
	for (unsigned int i = 0; i < mdl; i++)
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	return strlen(hex) == 32 && !strcasecmp(want, hex);
}

/*
 * The CloudTrail eventName of an EventBridge event in @body, raw or as the
 * Message of an SNS notification; "" for anything else.  Only audited.
 */
static void event_name(const char *body, size_t len, char *out, size_t outlen)
{
	struct json_object *o = cmk_json_parse_wiped(body, len), *inner = NULL, *d;
	const char *s;
	size_t n;

	out[0] = '\0';
	if (!o || !json_object_is_type(o, json_type_object))
		goto out;
	s = cmk_json_str(o, "Type", NULL);
	if (s && !strcmp(s, "Notification") && (s = cmk_json_str(o, "Message", &n))) {
		inner = cmk_json_parse_wiped(s, n);
		if (!inner || !json_object_is_type(inner, json_type_object))
			goto out;
	}
	if (!json_object_object_get_ex(inner ? inner : o, "detail", &d) ||
	    !json_object_is_type(d, json_type_object))
		goto out;
	s = cmk_json_str(d, "eventName", &n);
	if (!s || !n || n >= outlen || n > CMK_SQS_EVENT_MAX)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			goto out;
	memcpy(out, s, n);
	out[n] = '\0';
out:
	json_object_put(inner);
	json_object_put(o);
}

static int parse_one(struct json_object *m, size_t i, struct cmk_sqs_msg *msg,
		     struct cmk_err *e)
{
	struct json_object *attrs;
	const char *id, *rh, *body, *md5, *ts;
	size_t idl, rhl, bodyl;
	char *end;

	if (!json_object_is_type(m, json_type_object))
		return cmk_errf(e, -EPROTO, "message %zu is not a JSON object", i);
	id = cmk_json_str(m, "MessageId", &idl);
	rh = cmk_json_str(m, "ReceiptHandle", &rhl);
	body = cmk_json_str(m, "Body", &bodyl);
	md5 = cmk_json_str(m, "MD5OfBody", NULL);
	if (!id || !idl || !printable(id, idl))
		return cmk_errf(e, -EPROTO, "message %zu has no printable MessageId", i);
	if (!rh || !rhl || rhl > RECEIPT_MAX || !printable(rh, rhl))
		return cmk_errf(e, -EPROTO, "message %zu has no valid ReceiptHandle", i);
	if (!body || !md5)
		return cmk_errf(e, -EPROTO, "message %zu has no Body or MD5OfBody", i);
	if (!md5_matches(body, bodyl, md5))
		return cmk_errf(e, -EPROTO, "message %zu: MD5OfBody does not match its Body", i);
	snprintf(msg->id, sizeof(msg->id), "%.*s", (int)(idl < CMK_SQS_ID_MAX ? idl : CMK_SQS_ID_MAX), id);
	msg->sent_ms = 0;
	if (json_object_object_get_ex(m, "Attributes", &attrs)) {
		if (!json_object_is_type(attrs, json_type_object))
			return cmk_errf(e, -EPROTO, "message %zu: Attributes is not an object", i);
		ts = cmk_json_str(attrs, "SentTimestamp", NULL);
		if (ts) {
			errno = 0;
			msg->sent_ms = strtoull(ts, &end, 10);
			if (errno || end == ts || *end)
				return cmk_errf(e, -EPROTO, "message %zu: SentTimestamp \"%.20s\" is not a number",
						i, ts);
		}
	}
	event_name(body, bodyl, msg->event, sizeof(msg->event));
	msg->receipt = strndup(rh, rhl);
	if (!msg->receipt)
		return cmk_errf(e, -ENOMEM, "out of memory");
	return 0;
}

int cmk_sqs_parse_receive(const char *body, size_t len, struct cmk_sqs_msg *msgs,
			  size_t max, size_t *n, struct cmk_err *e)
{
	struct json_object *o = cmk_json_parse_wiped(body, len), *arr;
	size_t cnt;
	int ret = 0;

	*n = 0;
	if (!o || !json_object_is_type(o, json_type_object)) {
		ret = cmk_errf(e, -EPROTO, "the answer is not a JSON object");
		goto out;
	}
	if (!json_object_object_get_ex(o, "Messages", &arr))
		goto out;		/* the poll ended with no message */
	if (!json_object_is_type(arr, json_type_array)) {
		ret = cmk_errf(e, -EPROTO, "Messages is not an array");
		goto out;
	}
	cnt = json_object_array_length(arr);
	if (cnt > max) {
		ret = cmk_errf(e, -EPROTO, "%zu messages, %zu asked for", cnt, max);
		goto out;
	}
	for (size_t i = 0; i < cnt; i++) {
		memset(&msgs[i], 0, sizeof(msgs[i]));
		ret = parse_one(json_object_array_get_idx(arr, i), i, &msgs[i], e);
		if (ret) {
			cmk_sqs_msgs_free(msgs, i);
			goto out;
		}
	}
	*n = cnt;
out:
	json_object_put(o);
	return ret;
}

static int receive_once(struct cmk_sqs *q, int wait_s, struct cmk_sqs_msg *msgs,
			size_t max, size_t *n, struct cmk_err *e)
{
	struct json_object *req = json_object_new_object(), *names = json_object_new_array();
	struct cmk_http_opts o = q->http;
	struct cmk_http_response r;
	int ret;

	o.max_body = CMK_SQS_ANSWER_MAX;

	*n = 0;
	if (max < 1 || max > CMK_SQS_MAX_MESSAGES || wait_s < 0 || wait_s > CMK_SQS_WAIT_S) {
		ret = cmk_errf(e, -EINVAL, "sqs: ReceiveMessage of %zu messages, waiting %d s: out of range",
			       max, wait_s);
		goto out;
	}
	if (!req || !names ||
	    json_object_array_add(names, json_object_new_string("SentTimestamp")) ||
	    json_object_object_add(req, "MessageSystemAttributeNames", names)) {
		ret = cmk_errf(e, -ENOMEM, "sqs: out of memory");
		goto out;
	}
	names = NULL;	/* req's now */
	if (cmk_json_add_str(req, "QueueUrl", q->queue_url) ||
	    json_object_object_add(req, "MaxNumberOfMessages", json_object_new_int((int)max)) ||
	    json_object_object_add(req, "WaitTimeSeconds", json_object_new_int(wait_s))) {
		ret = cmk_errf(e, -ENOMEM, "sqs: out of memory");
		goto out;
	}
	ret = sqs_call(q, &o, "ReceiveMessage",
		       json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE),
		       &r, e);
	if (!ret) {
		ret = cmk_sqs_parse_receive(r.body ? r.body : "", r.body_len, msgs, max, n, e);
		if (ret)
			cmk_err_prefix(e, "sqs ReceiveMessage %s: answer refused", q->queue_url);
	}
	cmk_http_response_free(&r);
out:
	json_object_put(names);
	json_object_put(req);
	return ret;
}

/*
 * Messages of an answer too large to read are in flight, unseen, until
 * their visibility timeout; one of them may be the revocation.  So the
 * answer itself is a hint (an entry without receipt: a check, nothing to
 * delete), one message is asked for at once, and one at a time until the
 * queue is drained (an empty poll), so the held ones drain when they come
 * back.
 */
int cmk_sqs_receive(struct cmk_sqs *q, int wait_s, struct cmk_sqs_msg *msgs,
		    size_t max, size_t *n, struct cmk_err *e)
{
	size_t ask = max < q->batch ? max : q->batch;
	int ret;

	*n = 0;
	ret = receive_once(q, wait_s, msgs, ask ? ask : max, n, e);
	if (!ret && !*n)
		q->batch = CMK_SQS_MAX_MESSAGES;
	if (ret != -EMSGSIZE || max < 2)
		return ret;
	q->batch = 1;
	if (receive_once(q, 0, msgs, 1, n, e))
		*n = 0;		/* the hint below still goes */
	memset(&msgs[*n], 0, sizeof(msgs[*n]));
	snprintf(msgs[*n].id, sizeof(msgs[*n].id), "%s", CMK_SQS_OVERSIZED_ID);
	(*n)++;
	return 0;
}

/* ---- DeleteMessageBatch -------------------------------------------------------- */

int cmk_sqs_parse_delete(const char *body, size_t len, size_t n, struct cmk_err *e)
{
	struct json_object *o = cmk_json_parse_wiped(body, len), *ok, *failed = NULL;
	bool seen[CMK_SQS_MAX_MESSAGES] = { false };
	size_t nok, nfail = 0;
	int ret = 0;

	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "Successful", &ok) ||
	    !json_object_is_type(ok, json_type_array) ||
	    (json_object_object_get_ex(o, "Failed", &failed) &&
	     !json_object_is_type(failed, json_type_array))) {
		ret = cmk_errf(e, -EPROTO, "the answer is no DeleteMessageBatch result");
		goto out;
	}
	nok = json_object_array_length(ok);
	if (failed)
		nfail = json_object_array_length(failed);
	if (n > CMK_SQS_MAX_MESSAGES || nok + nfail != n) {
		ret = cmk_errf(e, -EPROTO, "%zu entries answered, %zu sent", nok + nfail, n);
		goto out;
	}
	for (size_t i = 0; i < nok + nfail; i++) {
		struct json_object *it = i < nok ? json_object_array_get_idx(ok, i) :
				      json_object_array_get_idx(failed, i - nok);
		const char *id = json_object_is_type(it, json_type_object) ?
				 cmk_json_str(it, "Id", NULL) : NULL;
		char *end;
		unsigned long k;

		if (!id || !*id) {
			ret = cmk_errf(e, -EPROTO, "an entry has no Id");
			goto out;
		}
		errno = 0;
		k = strtoul(id, &end, 10);
		if (errno || *end || k >= n || seen[k]) {
			ret = cmk_errf(e, -EPROTO, "entry Id \"%.16s\" was not sent, or is answered twice", id);
			goto out;
		}
		seen[k] = true;
		if (i >= nok && !ret) {
			const char *code = cmk_json_str(it, "Code", NULL);
			const char *msg = cmk_json_str(it, "Message", NULL);

			ret = cmk_errf(e, -EIO, "message %lu not deleted: %.64s%s%.160s", k,
				       code ? code : "error", msg ? ": " : "", msg ? msg : "");
		}
	}
out:
	json_object_put(o);
	return ret;
}

int cmk_sqs_delete(struct cmk_sqs *q, const struct cmk_sqs_msg *msgs, size_t n,
		   struct cmk_err *e)
{
	struct json_object *req = json_object_new_object(), *entries = json_object_new_array();
	struct cmk_http_response r;
	int ret = -ENOMEM;
	size_t k = 0;

	if (n == 0 || n > CMK_SQS_MAX_MESSAGES) {
		ret = cmk_errf(e, -EINVAL, "sqs: DeleteMessageBatch of %zu messages: out of range", n);
		goto out;
	}
	if (!req || !entries || cmk_json_add_str(req, "QueueUrl", q->queue_url))
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		struct json_object *en;
		char id[8];

		/* An oversized answer's hint has no receipt: nothing to delete. */
		if (!msgs[i].receipt)
			continue;
		en = json_object_new_object();
		snprintf(id, sizeof(id), "%zu", k++);
		if (!en || cmk_json_add_str(en, "Id", id) ||
		    cmk_json_add_str(en, "ReceiptHandle", msgs[i].receipt) ||
		    json_object_array_add(entries, en)) {
			json_object_put(en);
			goto nomem;
		}
	}
	if (!k) {
		ret = 0;
		goto out;
	}
	if (json_object_object_add(req, "Entries", entries))
		goto nomem;
	entries = NULL;
	ret = sqs_call(q, &q->http, "DeleteMessageBatch",
		       json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE),
		       &r, e);
	if (!ret) {
		ret = cmk_sqs_parse_delete(r.body ? r.body : "", r.body_len, k, e);
		if (ret)
			cmk_err_prefix(e, "sqs DeleteMessageBatch %s", q->queue_url);
	}
	cmk_http_response_free(&r);
	goto out;
nomem:
	ret = cmk_errf(e, -ENOMEM, "sqs: out of memory");
out:
	json_object_put(entries);
	json_object_put(req);
	return ret;
}
