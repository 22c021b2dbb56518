// SPDX-License-Identifier: GPL-2.0
/*
 * json_secret.c - JSON that may hold secrets (see json_secret.h).
 */
#include "core/json_secret.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "core/codec.h"

static void wipe_strings(struct json_object *o)
{
	if (!o)
		return;
	switch (json_object_get_type(o)) {
	case json_type_string:
		OPENSSL_cleanse((char *)json_object_get_string(o),
				(size_t)json_object_get_string_len(o));
		break;
	case json_type_object: {
		json_object_object_foreach(o, k, v) {
			(void)k;
			wipe_strings(v);
		}
		break;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			wipe_strings(json_object_array_get_idx(o, i));
		break;
	default:
		break;
	}
}

struct json_object *cmk_json_parse_wiped(const char *s, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	if (!tok)
		return NULL;
	/*
	 * Size the tokener's buffer for the whole text first: growing it while
	 * a string is read would leave pieces of that string in freed memory.
	 */
	if (len >= INT_MAX - 16 || !tok->pb ||
	    printbuf_memset(tok->pb, 0, 0, (int)len + 1) < 0) {
		json_tokener_free(tok);
		return NULL;
	}
	printbuf_reset(tok->pb);
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (o && json_tokener_get_parse_end(tok) != len) {
		json_object_put(o);	/* trailing data */
		o = NULL;
	}
	/* The tokener keeps the last string it read (maybe a key). */
	if (tok->pb && tok->pb->buf)
		OPENSSL_cleanse(tok->pb->buf, (size_t)tok->pb->size);
	json_tokener_free(tok);
	return o;
}

void cmk_json_put_wiped(struct json_object *o)
{
	if (!o)
		return;
	wipe_strings(o);
	json_object_put(o);
}

int cmk_json_secret_body(const char *name, const struct cmk_secret *value,
			 size_t value_len, struct json_object *rest,
			 struct cmk_secret **body, size_t *body_len,
			 const char *what, struct cmk_err *e)
{
	struct json_object *req;
	const char *tmpl;
	size_t head, tl = 0;
	char *hole;
	int ret = 0;

	*body = NULL;
	hole = malloc(value_len + 1);
	req = json_object_new_object();
	if (!hole || !req)
		goto nomem;
	memset(hole, '*', value_len);
	hole[value_len] = '\0';
	/* The secret's member first: json-c keeps insertion order. */
	if (json_object_object_add(req, name, json_object_new_string(hole)))
		goto nomem;
	if (rest) {
		json_object_object_foreach(rest, k, v) {
			if (json_object_object_add(req, k, json_object_get(v)))
				goto nomem;
		}
	}
	tmpl = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &tl);
	head = 2 + strlen(name) + 3;	/* {"name":" */
	if (!tmpl || tl < head + value_len + 1 || tmpl[0] != '{' || tmpl[1] != '"' ||
	    strncmp(tmpl + 2, name, strlen(name)) ||
	    memcmp(tmpl + head - 3, "\":\"", 3) ||
	    memcmp(tmpl + head, hole, value_len) || tmpl[head + value_len] != '"') {
		ret = cmk_errf(e, -EPROTO, "%s: unexpected JSON layout of the request", what);
		goto out;
	}
	ret = cmk_secret_new(body, tl + 1, e);
	if (ret)
		goto out;
	memcpy(cmk_secret_data(*body), tmpl, tl);
	memcpy(cmk_secret_data(*body) + head, cmk_secret_cdata(value), value_len);
	*body_len = tl;
	goto out;
nomem:
	ret = cmk_errf(e, -ENOMEM, "%s: out of memory", what);
out:
	json_object_put(req);
	free(hole);
	return ret;
}

const char *cmk_json_str(struct json_object *o, const char *k, size_t *len)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	if (len)
		*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

int cmk_json_add_str(struct json_object *o, const char *k, const char *v)
{
	struct json_object *s = json_object_new_string(v);

	if (!s || json_object_object_add(o, k, s))
		return -ENOMEM;
	return 0;
}

int cmk_json_add_b64(struct json_object *o, const char *k,
		     const unsigned char *d, size_t n)
{
	char *b64 = NULL;
	int ret;

	if (cmk_b64_encode(d, n, &b64, NULL))
		return -ENOMEM;
	ret = cmk_json_add_str(o, k, b64);
	free(b64);
	return ret;
}
