/* SPDX-License-Identifier: GPL-2.0 */
/*
 * json_secret.h - JSON of KMS requests and answers, which may hold secrets
 * (a KMS answer's plaintext, cloud credentials and tokens, a request
 * carrying a KEK).
 *
 * json-c's buffers grow by realloc, which leaves copies of what they held
 * in freed memory.  So: parse with a tokener whose buffer is sized up front
 * and wiped; release with every string value wiped; and never serialise an
 * object holding a secret - cmk_json_secret_body() lays the request out
 * around a placeholder and puts the secret in place in locked memory.
 */
#ifndef CMK_JSON_SECRET_H
#define CMK_JSON_SECRET_H

#include <stddef.h>

#include "core/err.h"
#include "core/secret.h"

struct json_object;

/* Parse all of @s (trailing data is an error); NULL on any error. */
struct json_object *cmk_json_parse_wiped(const char *s, size_t len);

/* json_object_put() after wiping every string value in @o; NULL is fine. */
void cmk_json_put_wiped(struct json_object *o);

/**
 * cmk_json_secret_body() - a request body whose first member holds a secret
 * @name: the member carrying the secret, e.g. "Plaintext"
 * @value: its value, already encoded as JSON-safe text (base64, base64url)
 * @value_len: length of that text
 * @rest: the other members, in order (not secret; still owned by the caller)
 * @body: out: locked, NUL-terminated {"name":"value",...rest}
 * @body_len: out: its length without the NUL
 * @what: the request, for the error message ("aws Encrypt")
 * @e: error
 *
 * Return: 0, -ENOMEM, or -EPROTO if json-c laid the text out unexpectedly.
 */
int cmk_json_secret_body(const char *name, const struct cmk_secret *value,
			 size_t value_len, struct json_object *rest,
			 struct cmk_secret **body, size_t *body_len,
			 const char *what, struct cmk_err *e);

/* The string member @k of @o (its length in *@len if @len), or NULL. */
const char *cmk_json_str(struct json_object *o, const char *k, size_t *len);

/* Add member @k = string @v (or base64 of @d[0..@n)) to @o; -ENOMEM. */
int cmk_json_add_str(struct json_object *o, const char *k, const char *v);
int cmk_json_add_b64(struct json_object *o, const char *k,
		     const unsigned char *d, size_t n);

#endif /* CMK_JSON_SECRET_H */
