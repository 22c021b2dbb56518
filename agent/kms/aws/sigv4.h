/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sigv4.h - AWS Signature Version 4 for header-signed requests.
 *
 * Builds the canonical request
 *
 *   METHOD \n canonical URI \n canonical query \n canonical headers \n
 *   signed header names \n hex(SHA-256(body))
 *
 * and the string to sign, derives the signing key with HMAC-SHA-256
 * ("AWS4" + secret, date, region, service, "aws4_request") and returns the
 * Authorization header value.  Rules, as AWS documents them:
 *
 *  - header names are lowercased; values are trimmed and every run of
 *    white space (space, tab, CR, LF, VT, FF) inside them becomes one
 *    space; headers are sorted by name; repeated names are joined with ","
 *    in the order given; "user-agent", "expect" and the hop-by-hop headers
 *    are not signed (proxies may change them);
 *  - the URI path is percent-encoded byte by byte except for the RFC 3986
 *    unreserved characters and "/";
 *  - query parameters are percent-encoded (unreserved characters only kept)
 *    and sorted by encoded name, then encoded value;
 *  - an empty body hashes to SHA-256("").
 *
 * The signer adds "x-amz-date" and, with a session token,
 * "x-amz-security-token" to the signed headers itself; the caller must
 * send both with the values in struct cmk_sigv4_out / the token.
 *
 * Secrets (secret access key, session token) are only read from
 * struct cmk_secret; every intermediate buffer that holds one of them (the
 * "AWS4"+secret key, derived keys, a canonical request containing the
 * token) is locked memory or wiped before it is freed.
 */
#ifndef CMK_SIGV4_H
#define CMK_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "core/err.h"
#include "core/nv.h"
#include "core/secret.h"

#define CMK_SIGV4_DATE_LEN	16	/* "YYYYMMDDTHHMMSSZ" */

/**
 * struct cmk_sigv4_request - what is signed
 * @method: "POST", "GET", ...
 * @path: absolute path, not percent-encoded ("/" for KMS)
 * @query: query parameters, not encoded; may be NULL if @n_query is 0
 * @headers: headers to sign; must contain "host"
 * @body: request body (may be NULL if @body_len is 0)
 * @payload_hash: hex SHA-256 of the body if the caller has it (S3 sends it
 *	as x-amz-content-sha256 too); NULL: the signer hashes @body
 */
struct cmk_sigv4_request {
	const char *method;
	const char *path;
	const struct cmk_nv *query;
	size_t n_query;
	const struct cmk_nv *headers;
	size_t n_headers;
	const void *body;
	size_t body_len;
	const char *payload_hash;
};

/**
 * struct cmk_sigv4_key - who signs
 * @access_key_id: AKIA.../ASIA... (not secret)
 * @secret_key: the secret access key
 * @session_token: NULL for long-term keys
 */
struct cmk_sigv4_key {
	const char *access_key_id;
	const struct cmk_secret *secret_key;
	const struct cmk_secret *session_token;
};

/**
 * struct cmk_sigv4_out - the result
 * @amz_date: value of the X-Amz-Date header to send
 * @authorization: value of the Authorization header (malloc'd)
 * @canonical_request: the canonical request, only if asked for (malloc'd;
 *	contains the session token, so free it with cmk_sigv4_out_free())
 */
struct cmk_sigv4_out {
	char amz_date[CMK_SIGV4_DATE_LEN + 1];
	char *authorization;
	char *canonical_request;
};

/*
 * cmk_sigv4_sign() - sign @req for @region/@service at time @now.
 * If @want_canonical, out->canonical_request is filled too (for tests and
 * debugging).  Returns 0 or a negative errno with @e filled (local class).
 */
int cmk_sigv4_sign(const struct cmk_sigv4_request *req,
		   const struct cmk_sigv4_key *key, const char *region,
		   const char *service, time_t now, int want_canonical,
		   struct cmk_sigv4_out *out, struct cmk_err *e);

/*
 * cmk_sigv4_headers() - the headers to send: the signed ones of @req, then
 * X-Amz-Date and Authorization from @sig and, with a session token in
 * @key, X-Amz-Security-Token (copied NUL-terminated into *@tokz, locked
 * memory the caller frees once the request is sent).  @hh holds
 * req->n_headers + 3.  Returns how many it filled, or a negative errno.
 */
int cmk_sigv4_headers(const struct cmk_sigv4_request *req,
		      const struct cmk_sigv4_key *key,
		      const struct cmk_sigv4_out *sig, struct cmk_nv *hh,
		      struct cmk_secret **tokz, struct cmk_err *e);

/* cmk_sigv4_out_free() - wipe and free what cmk_sigv4_sign() allocated. */
void cmk_sigv4_out_free(struct cmk_sigv4_out *out);

#endif /* CMK_SIGV4_H */
