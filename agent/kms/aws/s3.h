/* SPDX-License-Identifier: GPL-2.0 */
/*
 * s3.h - the S3 calls of sealed storage objects: upload of a stream of
 * unknown length, download streamed to a file descriptor.
 *
 * REST requests signed with SigV4 (service "s3") with credentials from the
 * AWS chain (aws_creds.h: environment, shared files, IMDSv2).  Every
 * request carries x-amz-content-sha256, the real SHA-256 of its body,
 * signed: S3 refuses a part whose bytes changed on the way (no
 * UNSIGNED-PAYLOAD; the cost is one SHA-256 pass over what is sent).
 *
 * Where: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL (as the AWS SDKs read
 * them; path-style requests to that endpoint, http:// only to loopback,
 * http.h), else https://<bucket>.s3.<region>.amazonaws.com (path-style
 * to s3.<region>.amazonaws.com for a bucket name with a dot, which TLS
 * host names cannot take).  Region: AWS_REGION, else AWS_DEFAULT_REGION.
 *
 * Upload (cmk_s3_upload_*): bytes are collected into one part of
 * CMK_S3_PART_SIZE; an object that fits in one part is one PutObject at
 * the end, a larger one a multipart upload whose parts go up as they
 * fill, so memory is one part whatever the size.  Only
 * cmk_s3_upload_finish() makes the object visible, with If-None-Match: *
 * (PutObject or CompleteMultipartUpload): an existing object is never
 * replaced (-EEXIST).  Any failure, and cmk_s3_upload_abort(), aborts the
 * multipart upload, so no part of an object is ever visible and no parts
 * are left behind (unless the abort itself cannot reach S3: the bucket's
 * lifecycle rule AbortIncompleteMultipartUpload is the backstop).
 *
 * Errors name the object (s3://bucket/key), S3's error code and its
 * request id (only [A-Za-z0-9+/=._-], cut to CMK_S3_REQID_MAX), and what
 * to do.  AccessDenied and rejected credentials are definitive
 * (CMK_R_DENIED); NoSuchKey and NoSuchBucket -ENOENT (local); 429, 503
 * SlowDown and 5xx transient (retried by http.c first); an existing
 * object on finish -EEXIST.
 */
#ifndef CMK_S3_H
#define CMK_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/nv.h"
#include "kms/aws/aws_creds.h"
#include "kms/http.h"

#define CMK_S3_PART_SIZE	(8u << 20)	/* bytes per part, the last one less */
#define CMK_S3_MAX_PARTS	10000		/* S3's limit: objects up to 78 GiB */
#define CMK_S3_BUCKET_MAX	63
#define CMK_S3_KEY_MAX		1024
#define CMK_S3_URL_MAX		4096
#define CMK_S3_REQID_MAX	64
#define CMK_S3_UPLOAD_ID_MAX	1024

struct cmk_s3 {
	char endpoint[512];		/* scheme://host[:port], no slash; "" = AWS */
	char region[33];
	struct cmk_aws_cred_src creds;
	struct cmk_http_opts http;
};

/* An object: s3://bucket/key. */
struct cmk_s3_obj {
	char bucket[CMK_S3_BUCKET_MAX + 1];
	char key[CMK_S3_KEY_MAX + 1];
};

/* cmk_s3_is_url() - does @s name an S3 object ("s3://...")? */
bool cmk_s3_is_url(const char *s);

/*
 * cmk_s3_url_parse() - "s3://bucket/key" into @o: a bucket name as S3
 * takes new ones (3..63 of [a-z0-9.-], starting and ending with a letter
 * or digit), a key of 1..1024 bytes without control characters and
 * without "." or ".." path segments or "//" (HTTP clients rewrite them).
 */
int cmk_s3_url_parse(const char *url, struct cmk_s3_obj *o, struct cmk_err *e);

/* cmk_s3_open() - endpoint, region and credentials, see above. */
int cmk_s3_open(struct cmk_s3 *s, struct cmk_err *e);
void cmk_s3_close(struct cmk_s3 *s);

/*
 * cmk_s3_get() - GetObject of @o, its body written to @fd as it arrives
 * (a pipe or a file; memory is libcurl's buffer).  On an error the bytes
 * already written are not taken back: the reader must check the object
 * itself (an ESDK message does).
 */
int cmk_s3_get(struct cmk_s3 *s, const struct cmk_s3_obj *o, int fd,
	       struct cmk_err *e);

struct cmk_s3_upload {
	struct cmk_s3 *s3;
	struct cmk_s3_obj obj;
	unsigned char *part;		/* CMK_S3_PART_SIZE bytes */
	size_t fill;
	unsigned int parts;		/* parts sent */
	char upload_id[CMK_S3_UPLOAD_ID_MAX + 1];	/* "" until multipart */
	char *etags;			/* "<Part>..</Part>" of the parts sent */
	size_t etags_len, etags_cap;
	uint64_t total;
	bool failed;
	/* told the upload id when one is created, "" when it is done with */
	void (*id_changed)(void *arg, const char *upload_id);
	void *id_arg;
};

/*
 * cmk_s3_abort_upload_id() - AbortMultipartUpload of @upload_id of @o
 * (another thread's upload that is being interrupted).
 */
int cmk_s3_abort_upload_id(struct cmk_s3 *s, const struct cmk_s3_obj *o,
			   const char *upload_id, struct cmk_err *e);

/* cmk_s3_upload_start() - an upload of @o; nothing is sent yet. */
int cmk_s3_upload_start(struct cmk_s3 *s, const struct cmk_s3_obj *o,
			struct cmk_s3_upload *u, struct cmk_err *e);

/* cmk_s3_upload_write() - append @n bytes; a full part goes up first. */
int cmk_s3_upload_write(struct cmk_s3_upload *u, const void *d, size_t n,
			struct cmk_err *e);

/*
 * cmk_s3_upload_finish() - send what is left and make the object visible,
 * unless one exists under its key already: then -EEXIST (and the upload
 * is aborted).  The upload is freed either way.
 */
int cmk_s3_upload_finish(struct cmk_s3_upload *u, struct cmk_err *e);

/* cmk_s3_upload_abort() - abort and free (nothing becomes visible). */
void cmk_s3_upload_abort(struct cmk_s3_upload *u);

/* ---- request building and answer parsing (exposed for tests) ---------- */

/* Where a request goes: the URL libcurl gets, and what SigV4 signs. */
struct cmk_s3_target {
	char url[CMK_S3_URL_MAX];
	char host[300];			/* Host header */
	char path[CMK_S3_KEY_MAX + CMK_S3_BUCKET_MAX + 3];	/* not encoded */
};

/*
 * cmk_s3_target() - the URL of @o (the bucket alone if @o->key is "")
 * with query @q (names and values percent-encoded as SigV4 encodes them).
 */
int cmk_s3_target(const struct cmk_s3 *s, const struct cmk_s3_obj *o,
		  const struct cmk_nv *q, size_t nq, struct cmk_s3_target *t,
		  struct cmk_err *e);

/**
 * struct cmk_s3_error - what an S3 error answer said
 * @code: the <Code>, or a name for the status if there is no body (HEAD)
 * @message: the <Message>, printable ASCII, cut
 * @request_id: the request id (x-amz-request-id, else <RequestId>),
 *	reduced to [A-Za-z0-9+/=._-]
 */
struct cmk_s3_error {
	char code[64];
	char message[192];
	char request_id[CMK_S3_REQID_MAX + 1];
};

/*
 * cmk_s3_error_parse() - the error of an answer with HTTP @status, body
 * @body and request id header @reqid (may be NULL).
 */
void cmk_s3_error_parse(long status, const char *body, size_t len,
			const char *reqid, struct cmk_s3_error *err);

/*
 * cmk_s3_error_ret() - fill @e for @err of operation @op on @o and return
 * the code (see above for the classes).
 */
int cmk_s3_error_ret(long status, const struct cmk_s3_error *err,
		     const char *op, const struct cmk_s3_obj *o,
		     struct cmk_err *e);

#endif /* CMK_S3_H */
