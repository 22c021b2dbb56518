// SPDX-License-Identifier: GPL-2.0
/*
 * encctx.c - encryption context and its canonical bytes (see encctx.h).
 */
#include "core/encctx.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"

void cmk_encctx_init(struct cmk_encctx *c)
{
	memset(c, 0, sizeof(*c));
}

void cmk_encctx_free(struct cmk_encctx *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->pairs[i].key);
		free(c->pairs[i].value);
	}
	memset(c, 0, sizeof(*c));
}

static int check_str(const char *what, const char *s, size_t min, size_t max,
		     struct cmk_err *e)
{
	size_t len = strlen(s);

	if (len < min || len > max)
		return cmk_errf(e, -EINVAL,
				"encryption context %s of length %zu out of range %zu..%zu",
				what, len, min, max);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 || ch == 0x7f)
			return cmk_errf(e, -EINVAL,
					"encryption context %s contains a control character at offset %zu",
					what, i);
	}
	return 0;
}

static int keycmp(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int r = memcmp(a, b, la < lb ? la : lb);

	if (r)
		return r;
	return la < lb ? -1 : la > lb;
}

int cmk_encctx_add(struct cmk_encctx *c, const char *key, const char *value,
		   struct cmk_err *e)
{
	size_t pos;
	char *k, *v;
	int ret;

	ret = check_str("key", key, 1, CMK_ENCCTX_MAX_KEY, e);
	if (ret)
		return ret;
	ret = check_str("value", value, 0, CMK_ENCCTX_MAX_VALUE, e);
	if (ret) {
		cmk_err_prefix(e, "key \"%s\"", key);
		return ret;
	}
	if (c->n >= CMK_ENCCTX_MAX_PAIRS)
		return cmk_errf(e, -E2BIG,
				"encryption context has more than %d pairs",
				CMK_ENCCTX_MAX_PAIRS);
	for (pos = 0; pos < c->n; pos++) {
		int r = keycmp(key, c->pairs[pos].key);

		if (r == 0)
			return cmk_errf(e, -EEXIST,
					"encryption context key \"%s\" appears twice",
					key);
		if (r < 0)
			break;
	}
	k = strdup(key);
	v = strdup(value);
	if (!k || !v) {
		free(k);
		free(v);
		return cmk_errf(e, -ENOMEM, "encryption context: out of memory");
	}
	memmove(&c->pairs[pos + 1], &c->pairs[pos],
		(c->n - pos) * sizeof(c->pairs[0]));
	c->pairs[pos].key = k;
	c->pairs[pos].value = v;
	c->n++;
	return 0;
}

int cmk_encctx_copy(struct cmk_encctx *dst, const struct cmk_encctx *src,
		    struct cmk_err *e)
{
	for (size_t i = 0; i < src->n; i++) {
		int ret = cmk_encctx_add(dst, src->pairs[i].key,
					 src->pairs[i].value, e);

		if (ret) {
			cmk_encctx_free(dst);
			return ret;
		}
	}
	return 0;
}

const char *cmk_encctx_get(const struct cmk_encctx *c, const char *key)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->pairs[i].key, key) == 0)
			return c->pairs[i].value;
	return NULL;
}

int cmk_encctx_canonical(const struct cmk_encctx *c, unsigned char **out,
			 size_t *lenp, struct cmk_err *e)
{
	size_t len = 8 + 4, off;
	unsigned char *buf;

	*out = NULL;
	for (size_t i = 0; i < c->n; i++)
		len += 8 + strlen(c->pairs[i].key) + strlen(c->pairs[i].value);
	buf = malloc(len);
	if (!buf)
		return cmk_errf(e, -ENOMEM, "encryption context: out of memory");
	memcpy(buf, CMK_ENCCTX_MAGIC, 8);
	cmk_put_le32(buf + 8, (uint32_t)c->n);
	off = 12;
	for (size_t i = 0; i < c->n; i++) {
		const char *s[2] = { c->pairs[i].key, c->pairs[i].value };

		for (int j = 0; j < 2; j++) {
			size_t sl = strlen(s[j]);

			cmk_put_le32(buf + off, (uint32_t)sl);
			memcpy(buf + off + 4, s[j], sl);
			off += 4 + sl;
		}
	}
	*out = buf;
	*lenp = len;
	return 0;
}
