// SPDX-License-Identifier: GPL-2.0
/*
 * test_s3.c - the S3 client (kms/aws/s3.h) without a network: names,
 * URLs, the XML reader, error classes, and the requests an upload makes,
 * against a fake S3 (cmk_http_do_sink() wrapped, answers from a script).
 *
 * Oracles: S3's REST API as AWS documents it (the answers below are the
 * documented shapes; CompleteMultipartUpload may answer 200 with an
 * <Error>), SHA-256 known answers (FIPS 180-2: "abc", ""), and invariants:
 * one PutObject for an object that fits a part, If-None-Match: * on what
 * makes an object visible, an abort after any failure once an upload id
 * exists, the payload hash signed.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "kms/aws/s3.h"
#include "kms/aws/s3_xml.h"

#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_ABC	  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

/* ---- the fake S3 ------------------------------------------------------------ */

struct seen {
	char method[8];
	char url[512];
	char sha[80];
	char inm[8];		/* If-None-Match */
	char signed_names[256];
	char body_sha[80];
	size_t len;
	char body[1024];	/* the first bytes */
};

struct answer {
	long status;
	const char *hdrs;
	const char *body;
};

static struct seen seen[32];
static int nseen;
static const struct answer *script;
static int nscript;

static void hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static const char *hval(const struct cmk_http_request *req, const char *name)
{
	for (size_t i = 0; i < req->n_headers; i++)
		if (!strcasecmp(req->headers[i].name, name))
			return req->headers[i].value;
	return "";
}

int __wrap_cmk_http_do_sink(const struct cmk_http_opts *o,
			    const struct cmk_http_request *req, cmk_http_sink_fn sink,
			    void *sink_arg, cmk_http_retry_fn retry, void *retry_arg,
			    struct cmk_http_response *resp, struct cmk_err *e);

int __wrap_cmk_http_do_sink(const struct cmk_http_opts *o,
			    const struct cmk_http_request *req, cmk_http_sink_fn sink,
			    void *sink_arg, cmk_http_retry_fn retry, void *retry_arg,
			    struct cmk_http_response *resp, struct cmk_err *e)
{
	struct seen *s = &seen[nseen];
	const struct answer *a;
	unsigned char md[SHA256_DIGEST_LENGTH];
	const char *auth, *sn;

	(void)o;
	(void)retry;
	(void)retry_arg;
	memset(resp, 0, sizeof(*resp));
	assert_true(nseen < (int)(sizeof(seen) / sizeof(seen[0])));
	assert_true(nseen < nscript);
	a = &script[nseen++];
	snprintf(s->method, sizeof(s->method), "%s", req->method);
	snprintf(s->url, sizeof(s->url), "%s", req->url);
	snprintf(s->sha, sizeof(s->sha), "%s", hval(req, "x-amz-content-sha256"));
	snprintf(s->inm, sizeof(s->inm), "%s", hval(req, "If-None-Match"));
	auth = hval(req, "Authorization");
	sn = strstr(auth, "SignedHeaders=");
	snprintf(s->signed_names, sizeof(s->signed_names), "%s", sn ? sn + 14 : "");
	SHA256(req->body_len ? req->body : (const void *)"", req->body_len, md);
	hex(md, sizeof(md), s->body_sha);
	s->len = req->body_len;
	memcpy(s->body, req->body ? req->body : "", req->body_len < sizeof(s->body) - 1 ?
	       req->body_len : sizeof(s->body) - 1);
	if (a->status == 0)
		return cmk_err_kms(e, CMK_R_NETWORK, "fake: connection refused");
	resp->status = a->status;
	resp->hdrs = strdup(a->hdrs ? a->hdrs : "");
	resp->hdrs_len = resp->hdrs_cap = strlen(resp->hdrs);
	if (sink && a->status >= 200 && a->status <= 299) {
		int r = sink(a->body, strlen(a->body), sink_arg);

		resp->body = strdup("");
		if (r) {
			free(resp->hdrs);
			free(resp->body);
			memset(resp, 0, sizeof(*resp));
			return cmk_errf(e, r, "fake: sink");
		}
	} else {
		resp->body = strdup(a->body ? a->body : "");
	}
	resp->body_len = strlen(resp->body);
	resp->body_cap = resp->body_len + 1;
	return 0;
}

static void fake(const struct answer *a, int n)
{
	memset(seen, 0, sizeof(seen));
	nseen = 0;
	script = a;
	nscript = n;
}

static int env_setup(void **state)
{
	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
	setenv("AWS_REGION", "eu-west-1", 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000", 1);
	unsetenv("AWS_ENDPOINT_URL");
	return 0;
}

static const struct cmk_s3_obj obj = { "wal-archive", "pg/000000010000000000000001" };

#define PART_OK		{ 200, "ETag: \"p\"\r\n", "" }
#define CREATE_OK	{ 200, "", "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
	"<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">" \
	"<Bucket>wal-archive</Bucket><Key>k</Key><UploadId>up+1/x=</UploadId>" \
	"</InitiateMultipartUploadResult>" }
#define COMPLETE_OK	{ 200, "", "<CompleteMultipartUploadResult><Location>l</Location>" \
	"<ETag>\"e-2\"</ETag></CompleteMultipartUploadResult>" }
#define ABORT_OK	{ 204, "", "" }
#define DENIED		{ 403, "x-amz-request-id: 4442587FB7D0A2F9\r\n", \
	"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>" }

/* ---- names and URLs -------------------------------------------------------------- */

static void s3_url_parse_accepts_and_refuses(void **state)
{
	static const char *const bad[] = {
		"s3:/b/k", "http://bucket/k", "s3://ab/k", "s3://Bucket/k", "s3://bucket",
		"s3://bucket/", "s3://-bucket/k", "s3://bucket-/k", "s3://buc_ket/k",
		"s3://bucket//k", "s3://bucket/a/../k", "s3://bucket/./k",
		"s3://bucket/a\nb", "s3://bucket/a\x7f", "s3://bucket/k/..",
	};
	struct cmk_s3_obj o;
	struct cmk_err e;
	char big[CMK_S3_KEY_MAX + 20];

	(void)state;
	assert_int_equal(cmk_s3_url_parse("s3://wal-archive/pg/0001 x+y", &o, &e), 0);
	assert_string_equal(o.bucket, "wal-archive");
	assert_string_equal(o.key, "pg/0001 x+y");
	assert_int_equal(cmk_s3_url_parse("s3://a.b.c/..k", &o, &e), 0);
	assert_int_equal(cmk_s3_url_parse("s3://a.b.c/dir/", &o, &e), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cmk_s3_url_parse(bad[i], &o, &e) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(strstr(e.msg, "s3:"));
	}
	snprintf(big, sizeof(big), "s3://bucket/%0*d", CMK_S3_KEY_MAX + 1, 0);
	assert_int_equal(cmk_s3_url_parse(big, &o, &e), -EINVAL);
	assert_true(cmk_s3_is_url("s3://x"));
	assert_false(cmk_s3_is_url("/tmp/s3://x"));
}

static void s3_target_virtual_host_and_path_style(void **state)
{
	struct cmk_s3 s = { .region = "eu-west-1" };
	struct cmk_s3_obj o = { "wal-archive", "pg/a b+c~" }, dotted = { "a.b.c", "k" };
	struct cmk_nv q[] = { { "partNumber", "2" }, { "uploadId", "up+1/x=" } };
	struct cmk_s3_target t;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_s3_target(&s, &o, q, 2, &t, &e), 0);
	assert_string_equal(t.host, "wal-archive.s3.eu-west-1.amazonaws.com");
	assert_string_equal(t.path, "/pg/a b+c~");
	assert_string_equal(t.url, "https://wal-archive.s3.eu-west-1.amazonaws.com/pg/a%20b%2Bc~"
			    "?partNumber=2&uploadId=up%2B1%2Fx%3D");
	/* A dot in the name: no TLS name covers it as a host label. */
	assert_int_equal(cmk_s3_target(&s, &dotted, NULL, 0, &t, &e), 0);
	assert_string_equal(t.host, "s3.eu-west-1.amazonaws.com");
	assert_string_equal(t.url, "https://s3.eu-west-1.amazonaws.com/a.b.c/k");
	assert_string_equal(t.path, "/a.b.c/k");
	/* An endpoint override is path-style. */
	snprintf(s.endpoint, sizeof(s.endpoint), "http://127.0.0.1:9000");
	assert_int_equal(cmk_s3_target(&s, &o, q, 1, &t, &e), 0);
	assert_string_equal(t.host, "127.0.0.1:9000");
	assert_string_equal(t.url, "http://127.0.0.1:9000/wal-archive/pg/a%20b%2Bc~?partNumber=2");
	assert_string_equal(t.path, "/wal-archive/pg/a b+c~");
}

static void s3_open_reads_endpoint_and_region(void **state)
{
	struct cmk_s3 s;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_s3_open(&s, &e), 0);
	assert_string_equal(s.endpoint, "http://127.0.0.1:9000");
	assert_string_equal(s.region, "eu-west-1");
	cmk_s3_close(&s);
	/* plain http only to loopback; no path */
	setenv("AWS_ENDPOINT_URL_S3", "http://s3.example.com", 1);
	assert_int_equal(cmk_s3_open(&s, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "loopback"));
	setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000/prefix", 1);
	assert_int_equal(cmk_s3_open(&s, &e), -EINVAL);
	setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000", 1);
	unsetenv("AWS_REGION");
	assert_int_equal(cmk_s3_open(&s, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "AWS_REGION"));
	setenv("AWS_REGION", "eu-west-1", 1);
}

/* ---- the XML reader ----------------------------------------------------------------- */

static void s3_xml_reads_s3_answers(void **state)
{
	static const char err[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<Error>\n  <Code>NoSuchKey</Code>\n  <Message>The resource you requested does not exist &amp; &lt;x&gt; &#65;&#x42;</Message>\n"
		"  <Resource>/mybucket/myfoto.jpg</Resource>\n  <RequestId>4442587FB7D0A2F9</RequestId>\n</Error>\n";
	static const char nested[] = "<R><A><UploadId>no</UploadId></A><UploadId>yes</UploadId><Empty/></R>";
	char code[32], msg[128], rid[32], root[32], up[16], em[4] = "x";
	struct cmk_s3_xml_field f[] = {
		{ "Code", code, sizeof(code), false }, { "Message", msg, sizeof(msg), false },
		{ "RequestId", rid, sizeof(rid), false }, { "Missing", up, sizeof(up), false },
	};
	struct cmk_s3_xml_field g[] = {
		{ "UploadId", up, sizeof(up), false }, { "Empty", em, sizeof(em), false },
	};
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_s3_xml_parse(err, strlen(err), root, sizeof(root), f, 4, &e), 0);
	assert_string_equal(root, "Error");
	assert_string_equal(code, "NoSuchKey");
	assert_string_equal(msg, "The resource you requested does not exist & <x> AB");
	assert_string_equal(rid, "4442587FB7D0A2F9");
	assert_false(f[3].found);
	/* Only direct children of the root count. */
	assert_int_equal(cmk_s3_xml_parse(nested, strlen(nested), root, sizeof(root), g, 2, &e), 0);
	assert_string_equal(up, "yes");
	assert_true(g[1].found);
	assert_string_equal(em, "");
}

static void s3_xml_refuses_malformed(void **state)
{
	static const char *const bad[] = {
		"", "   ", "text", "<", "<R>", "<R></S>", "<R><A></R></A>", "<R></R><S/>",
		"<R></R>trailing", "<!-- c --><R/>", "<R><![CDATA[x]]></R>", "<!DOCTYPE R><R/>",
		"<R><?pi?></R>", "<R>&unknown;</R>", "<R>&#0;</R>", "<R>&#200;</R>",
		"<R>&#x;</R>", "<R>&amp</R>", "<R a=b/>", "<R a=\"x/>", "<1R/>",
		"<A><B><C><D><E><F><G><H><I></I></H></G></F></E></D></C></B></A>",
		"<?xml version=\"1.0\"", "<R><UploadId>01234567890123456789</UploadId></R>",
	};
	char root[8], up[16];
	struct cmk_s3_xml_field f[] = { { "UploadId", up, sizeof(up), false } };
	struct cmk_err e;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = cmk_s3_xml_parse(bad[i], strlen(bad[i]), root, sizeof(root), f, 1, &e);

		if (r != -EPROTO)
			fail_msg("accepted: %s", bad[i]);
	}
	assert_int_equal(cmk_s3_xml_parse("<RootNameTooLong/>", 18, root, sizeof(root), f, 1, &e),
			 -EPROTO);
}

/* ---- errors --------------------------------------------------------------------------- */

static void s3_error_request_id_and_message_sanitized(void **state)
{
	static const char body[] = "<Error><Code>Access\nDenied</Code><Message>a\x1b[31mb</Message>"
				   "<RequestId>id&lt;script&gt;\"1</RequestId></Error>";
	struct cmk_s3_error err;
	struct cmk_err e;

	(void)state;
	cmk_s3_error_parse(403, body, strlen(body), NULL, &err);
	assert_string_equal(err.code, "AccessDenied");
	assert_string_equal(err.message, "a[31mb");
	assert_string_equal(err.request_id, "idscript1");
	/* The header wins, cleaned too, and cut. */
	cmk_s3_error_parse(403, body, strlen(body), "ABC 123\r\n<x>", &err);
	assert_string_equal(err.request_id, "ABC123x");
	cmk_s3_error_parse(403, body, strlen(body),
			   "0123456789012345678901234567890123456789012345678901234567890123456789", &err);
	assert_int_equal(strlen(err.request_id), CMK_S3_REQID_MAX);
	assert_int_equal(cmk_s3_error_ret(403, &err, "GetObject", &obj, &e), -EACCES);
	assert_null(strchr(e.msg, '\n'));
	assert_null(strchr(e.msg, '\x1b'));
}

static void s3_error_classes(void **state)
{
	struct {
		long status;
		const char *body;
		int ret;
		enum cmk_err_class cls;
		const char *says;
	} t[] = {
		{ 403, "<Error><Code>AccessDenied</Code></Error>", -EACCES, CMK_EC_DEFINITIVE, "s3:GetObject" },
		{ 403, "<Error><Code>SignatureDoesNotMatch</Code></Error>", -EACCES, CMK_EC_DEFINITIVE, "credentials" },
		{ 404, "<Error><Code>NoSuchKey</Code></Error>", -ENOENT, CMK_EC_LOCAL, "no such object" },
		{ 404, "<Error><Code>NoSuchBucket</Code></Error>", -ENOENT, CMK_EC_LOCAL, "bucket does not exist" },
		{ 404, "", -ENOENT, CMK_EC_LOCAL, "NotFound" },
		{ 412, "<Error><Code>PreconditionFailed</Code></Error>", -EEXIST, CMK_EC_LOCAL, "exists" },
		{ 503, "<Error><Code>SlowDown</Code></Error>", -EAGAIN, CMK_EC_TRANSIENT, "later" },
		{ 500, "not xml", -EAGAIN, CMK_EC_TRANSIENT, "InternalError" },
		{ 400, "<Error><Code>InvalidArgument</Code></Error>", -EIO, CMK_EC_LOCAL, "InvalidArgument" },
	};
	struct cmk_s3_error err;
	struct cmk_err e;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		cmk_s3_error_parse(t[i].status, t[i].body, strlen(t[i].body), "RID1", &err);
		memset(&e, 0, sizeof(e));
		assert_int_equal(cmk_s3_error_ret(t[i].status, &err, "GetObject", &obj, &e), t[i].ret);
		assert_int_equal(e.cls, t[i].cls);
		if (!strstr(e.msg, t[i].says) || !strstr(e.msg, "s3://wal-archive/pg/") ||
		    !strstr(e.msg, "(request id RID1)"))
			fail_msg("%zu: %s", i, e.msg);
	}
}

/* ---- what an upload sends ---------------------------------------------------------------- */

static void upload(size_t len, int *ret_write, int *ret_finish)
{
	struct cmk_s3 s;
	struct cmk_s3_upload u;
	struct cmk_err e;
	unsigned char *b = malloc(len + 1);

	assert_non_null(b);
	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)(i * 7 + 3);
	assert_int_equal(cmk_s3_open(&s, &e), 0);
	assert_int_equal(cmk_s3_upload_start(&s, &obj, &u, &e), 0);
	/* in uneven pieces, as a pipe gives them */
	*ret_write = 0;
	for (size_t off = 0; off < len && !*ret_write;) {
		size_t n = len - off < 65537 ? len - off : 65537;

		*ret_write = cmk_s3_upload_write(&u, b + off, n, &e);
		off += n;
	}
	*ret_finish = *ret_write ? (cmk_s3_upload_abort(&u), *ret_write) :
				   cmk_s3_upload_finish(&u, &e);
	cmk_s3_close(&s);
	free(b);
}

static void s3_small_object_is_one_conditional_putobject(void **state)
{
	static const struct answer a[] = { { 200, "ETag: \"x\"\r\n", "" } };
	int w, f;

	(void)state;
	fake(a, 1);
	upload(3000, &w, &f);
	assert_int_equal(f, 0);
	assert_int_equal(nseen, 1);
	assert_string_equal(seen[0].method, "PUT");
	assert_string_equal(seen[0].url, "http://127.0.0.1:9000/wal-archive/pg/000000010000000000000001");
	assert_string_equal(seen[0].inm, "*");
	assert_int_equal(seen[0].len, 3000);
	/* the real payload hash, and it is signed */
	assert_string_equal(seen[0].sha, seen[0].body_sha);
	assert_non_null(strstr(seen[0].signed_names, "x-amz-content-sha256"));
	assert_non_null(strstr(seen[0].signed_names, "if-none-match"));
	assert_non_null(strstr(seen[0].signed_names, "host"));
}

static void s3_payload_hash_known_answers(void **state)
{
	static const struct answer a[] = { { 200, "", "" }, { 200, "", "" } };
	struct cmk_s3 s;
	struct cmk_s3_upload u;
	struct cmk_err e;

	(void)state;
	fake(a, 2);
	assert_int_equal(cmk_s3_open(&s, &e), 0);
	assert_int_equal(cmk_s3_upload_start(&s, &obj, &u, &e), 0);
	assert_int_equal(cmk_s3_upload_write(&u, "abc", 3, &e), 0);
	assert_int_equal(cmk_s3_upload_finish(&u, &e), 0);
	assert_string_equal(seen[0].sha, SHA_ABC);
	assert_int_equal(cmk_s3_upload_start(&s, &obj, &u, &e), 0);
	assert_int_equal(cmk_s3_upload_finish(&u, &e), 0);
	assert_string_equal(seen[1].sha, SHA_EMPTY);
	assert_int_equal(seen[1].len, 0);
	cmk_s3_close(&s);
}

static void s3_exactly_one_part_is_still_putobject(void **state)
{
	static const struct answer a[] = { { 200, "", "" } };
	int w, f;

	(void)state;
	fake(a, 1);
	upload(CMK_S3_PART_SIZE, &w, &f);
	assert_int_equal(f, 0);
	assert_int_equal(nseen, 1);
	assert_string_equal(seen[0].method, "PUT");
	assert_int_equal(seen[0].len, CMK_S3_PART_SIZE);
}

static void s3_multipart_parts_then_conditional_complete(void **state)
{
	static const struct answer a[] = { CREATE_OK, PART_OK, PART_OK, COMPLETE_OK };
	int w, f;

	(void)state;
	fake(a, 4);
	upload(CMK_S3_PART_SIZE + 1, &w, &f);
	assert_int_equal(f, 0);
	assert_int_equal(nseen, 4);
	assert_string_equal(seen[0].method, "POST");
	assert_non_null(strstr(seen[0].url, "?uploads="));
	assert_string_equal(seen[1].method, "PUT");
	assert_non_null(strstr(seen[1].url, "?partNumber=1&uploadId=up%2B1%2Fx%3D"));
	assert_int_equal(seen[1].len, CMK_S3_PART_SIZE);
	assert_string_equal(seen[1].sha, seen[1].body_sha);
	assert_non_null(strstr(seen[2].url, "?partNumber=2&uploadId="));
	assert_int_equal(seen[2].len, 1);
	assert_string_equal(seen[2].sha, seen[2].body_sha);
	assert_string_equal(seen[3].method, "POST");
	assert_non_null(strstr(seen[3].url, "?uploadId=up%2B1%2Fx%3D"));
	assert_string_equal(seen[3].inm, "*");
	assert_non_null(strstr(seen[3].body,
			       "<Part><PartNumber>1</PartNumber><ETag>\"p\"</ETag></Part>"
			       "<Part><PartNumber>2</PartNumber><ETag>\"p\"</ETag></Part>"
			       "</CompleteMultipartUpload>"));
}

static void s3_part_refused_aborts_upload(void **state)
{
	static const struct answer a[] = { CREATE_OK, PART_OK, DENIED, ABORT_OK };
	int w, f;

	(void)state;
	fake(a, 4);
	upload(2 * CMK_S3_PART_SIZE + 5, &w, &f);
	assert_int_equal(w, -EACCES);
	assert_int_equal(nseen, 4);
	assert_string_equal(seen[3].method, "DELETE");
	assert_non_null(strstr(seen[3].url, "?uploadId=up%2B1%2Fx%3D"));
}

static void s3_complete_200_with_error_fails_and_aborts(void **state)
{
	static const struct answer a[] = {
		CREATE_OK, PART_OK, PART_OK,
		{ 200, "", "<?xml version=\"1.0\"?>\n<Error><Code>InternalError</Code>"
			   "<Message>We encountered an internal error.</Message></Error>" },
		ABORT_OK,
	};
	int w, f;

	(void)state;
	fake(a, 5);
	upload(CMK_S3_PART_SIZE + 100, &w, &f);
	assert_int_equal(f, -EAGAIN);
	assert_int_equal(nseen, 5);
	assert_string_equal(seen[4].method, "DELETE");
}

static void s3_existing_object_is_eexist(void **state)
{
	static const struct answer a[] = {
		CREATE_OK, PART_OK, PART_OK,
		{ 412, "", "<Error><Code>PreconditionFailed</Code></Error>" }, ABORT_OK,
		{ 412, "", "<Error><Code>PreconditionFailed</Code></Error>" },
	};
	int w, f;

	(void)state;
	fake(a, 6);
	upload(CMK_S3_PART_SIZE + 100, &w, &f);
	assert_int_equal(f, -EEXIST);
	assert_string_equal(seen[4].method, "DELETE");
	upload(10, &w, &f);
	assert_int_equal(f, -EEXIST);
	assert_int_equal(nseen, 6);
}

static void s3_get_streams_body_and_reports_nosuchkey(void **state)
{
	static const struct answer a[] = {
		{ 200, "", "sealed bytes" },
		{ 404, "x-amz-request-id: R2\r\n", "<Error><Code>NoSuchKey</Code></Error>" },
	};
	struct cmk_s3 s;
	struct cmk_err e;
	char buf[64] = { 0 };
	int p[2];

	(void)state;
	fake(a, 2);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(cmk_s3_open(&s, &e), 0);
	assert_int_equal(cmk_s3_get(&s, &obj, p[1], &e), 0);
	assert_string_equal(seen[0].method, "GET");
	assert_string_equal(seen[0].sha, SHA_EMPTY);
	assert_int_equal(read(p[0], buf, sizeof(buf)), 12);
	assert_string_equal(buf, "sealed bytes");
	assert_int_equal(cmk_s3_get(&s, &obj, p[1], &e), -ENOENT);
	assert_non_null(strstr(e.msg, "NoSuchKey"));
	assert_non_null(strstr(e.msg, "(request id R2)"));
	assert_non_null(strstr(e.msg, "s3://wal-archive/pg/000000010000000000000001"));
	cmk_s3_close(&s);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(s3_url_parse_accepts_and_refuses),
		cmocka_unit_test(s3_target_virtual_host_and_path_style),
		cmocka_unit_test(s3_open_reads_endpoint_and_region),
		cmocka_unit_test(s3_xml_reads_s3_answers),
		cmocka_unit_test(s3_xml_refuses_malformed),
		cmocka_unit_test(s3_error_request_id_and_message_sanitized),
		cmocka_unit_test(s3_error_classes),
		cmocka_unit_test(s3_small_object_is_one_conditional_putobject),
		cmocka_unit_test(s3_payload_hash_known_answers),
		cmocka_unit_test(s3_exactly_one_part_is_still_putobject),
		cmocka_unit_test(s3_multipart_parts_then_conditional_complete),
		cmocka_unit_test(s3_part_refused_aborts_upload),
		cmocka_unit_test(s3_complete_200_with_error_fails_and_aborts),
		cmocka_unit_test(s3_existing_object_is_eexist),
		cmocka_unit_test(s3_get_streams_body_and_reports_nosuchkey),
	};

	return cmocka_run_group_tests_name("s3", tests, env_setup, NULL);
}
