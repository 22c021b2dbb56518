/* SPDX-License-Identifier: GPL-2.0 */
/*
 * provider_util.h - steps the cloud providers (aws, azure, gcp and their
 * auth) share, written once: what an HTTP status says when the answer's
 * body named no error the provider knows, and the base64 plaintext of an
 * encrypt request or a decrypt answer, kept in locked memory.
 */
#ifndef CMK_PROVIDER_UTIL_H
#define CMK_PROVIDER_UTIL_H

#include "core/err.h"
#include "core/secret.h"

struct json_object;

/*
 * cmk_http_status_reason() - the reason an HTTP error status gives on its
 * own: 429 throttled; 5xx unavailable; 401 and 403 denied; 3xx a network
 * fault (a redirecting proxy or captive portal, never the KMS); any other
 * a local error (a request the KMS found malformed).  Providers ask it
 * last, after the codes in the body and their own statuses.
 */
enum cmk_reason cmk_http_status_reason(long status);

/**
 * cmk_kms_plaintext_body() - an encrypt request body that carries @plain
 * in base64 as its first member
 * @name: the member, e.g. "Plaintext"
 * @plain: the secret to encrypt
 * @rest: the other members (cmk_json_secret_body())
 * @body: out: locked, NUL-terminated body
 * @body_len: out: its length
 * @what: the call, for messages ("aws Encrypt")
 * @e: error
 *
 * The base64 text is made in locked memory and wiped with it.
 *
 * Return: 0, -ENOMEM, -EPROTO (cmk_json_secret_body()).
 */
int cmk_kms_plaintext_body(const char *name, const struct cmk_secret *plain,
			   struct json_object *rest, struct cmk_secret **body,
			   size_t *body_len, const char *what,
			   struct cmk_err *e);

/**
 * cmk_kms_plaintext() - the base64 member of a decrypt answer, decoded
 * straight into locked memory
 * @resp: the parsed answer (released wiped by the caller)
 * @name: the member, e.g. "Plaintext"
 * @what: the call, for messages ("aws kms Decrypt")
 * @key_ref: the key, for messages
 * @plain: out: the decoded bytes; NULL on failure
 * @e: error
 *
 * The text is at most 8192 characters (a 6 KiB secret).  It never passes
 * through an unlocked buffer: the decoder writes into the secret.
 *
 * Return: 0; -ENOMEM; or, as CMK_R_UNAVAILABLE (the answer is damaged, not
 * a refusal), "<what> <key_ref>: the answer has no valid <name>" or
 * "<what> <key_ref>: <name> is not base64".
 */
int cmk_kms_plaintext(struct json_object *resp, const char *name,
		      const char *what, const char *key_ref,
		      struct cmk_secret **plain, struct cmk_err *e);

#endif /* CMK_PROVIDER_UTIL_H */
