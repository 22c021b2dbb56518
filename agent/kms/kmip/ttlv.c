// SPDX-License-Identifier: GPL-2.0
/*
 * ttlv.c - KMIP TTLV encoding and decoding (see ttlv.h).
 */
#include "kms/kmip/ttlv.h"

#include <errno.h>
#include <string.h>

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

uint32_t cmk_ttlv_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* ---- encoding ---------------------------------------------------------- */

void cmk_ttlv_enc_init(struct cmk_ttlv_enc *w, unsigned char *buf, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
}

/* Room for a header and @n value bytes (padded); writes the header. */
static unsigned char *item(struct cmk_ttlv_enc *w, uint32_t tag, uint8_t type,
			   size_t n)
{
	unsigned char *p;

	if (w->overflow || n > UINT32_MAX ||
	    w->cap - w->len < CMK_TTLV_HDR ||
	    w->cap - w->len - CMK_TTLV_HDR < pad8(n)) {
		w->overflow = true;
		return NULL;
	}
	p = w->buf + w->len;
	p[0] = (unsigned char)(tag >> 16);
	p[1] = (unsigned char)(tag >> 8);
	p[2] = (unsigned char)tag;
	p[3] = type;
	put32(p + 4, (uint32_t)n);
	memset(p + CMK_TTLV_HDR, 0, pad8(n));
	w->len += CMK_TTLV_HDR + pad8(n);
	return p + CMK_TTLV_HDR;
}

void cmk_ttlv_begin(struct cmk_ttlv_enc *w, uint32_t tag)
{
	size_t at = w->len;

	if (w->depth >= CMK_TTLV_MAX_DEPTH) {
		w->overflow = true;
		return;
	}
	if (item(w, tag, CMK_TTLV_STRUCTURE, 0))
		w->open[w->depth++] = at;
}

void cmk_ttlv_end(struct cmk_ttlv_enc *w)
{
	size_t at;

	if (w->overflow)
		return;
	if (w->depth == 0) {
		w->overflow = true;
		return;
	}
	at = w->open[--w->depth];
	put32(w->buf + at + 4, (uint32_t)(w->len - at - CMK_TTLV_HDR));
}

void cmk_ttlv_int(struct cmk_ttlv_enc *w, uint32_t tag, int32_t v)
{
	unsigned char *p = item(w, tag, CMK_TTLV_INTEGER, 4);

	if (p)
		put32(p, (uint32_t)v);
}

void cmk_ttlv_enum(struct cmk_ttlv_enc *w, uint32_t tag, uint32_t v)
{
	unsigned char *p = item(w, tag, CMK_TTLV_ENUM, 4);

	if (p)
		put32(p, v);
}

void cmk_ttlv_long(struct cmk_ttlv_enc *w, uint32_t tag, int64_t v)
{
	unsigned char *p = item(w, tag, CMK_TTLV_LONG, 8);

	if (p) {
		put32(p, (uint32_t)((uint64_t)v >> 32));
		put32(p + 4, (uint32_t)v);
	}
}

void cmk_ttlv_bool(struct cmk_ttlv_enc *w, uint32_t tag, bool v)
{
	unsigned char *p = item(w, tag, CMK_TTLV_BOOL, 8);

	if (p)
		p[7] = v ? 1 : 0;
}

void cmk_ttlv_text(struct cmk_ttlv_enc *w, uint32_t tag, const char *s)
{
	size_t n = strlen(s);
	unsigned char *p = item(w, tag, CMK_TTLV_TEXT, n);

	if (p)
		memcpy(p, s, n);
}

void cmk_ttlv_bytes(struct cmk_ttlv_enc *w, uint32_t tag,
		    const unsigned char *src, size_t n)
{
	unsigned char *p = item(w, tag, CMK_TTLV_BYTES, n);

	if (p && n)
		memcpy(p, src, n);
}

int cmk_ttlv_enc_finish(struct cmk_ttlv_enc *w, size_t *len)
{
	*len = 0;
	if (w->overflow)
		return -EOVERFLOW;
	if (w->depth)
		return -EINVAL;
	*len = w->len;
	return 0;
}

/* ---- decoding ---------------------------------------------------------- */

static void header(const unsigned char *p, struct cmk_ttlv *t)
{
	t->tag = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
	t->type = p[3];
	t->len = cmk_ttlv_u32(p + 4);
	t->val = p + CMK_TTLV_HDR;
}

int cmk_ttlv_frame_len(const unsigned char hdr[CMK_TTLV_HDR], size_t max,
		       size_t *total)
{
	struct cmk_ttlv t;

	header(hdr, &t);
	*total = 0;
	if (max < CMK_TTLV_HDR || t.type != CMK_TTLV_STRUCTURE || t.len % 8 ||
	    (size_t)t.len > max - CMK_TTLV_HDR)
		return -EBADMSG;
	*total = CMK_TTLV_HDR + (size_t)t.len;
	return 0;
}

/*
 * Check the item at @p (at most @avail bytes): fixed sizes, padding room,
 * and for a Structure, that its value is exactly a sequence of such items.
 * Returns the padded size of the item, or 0 if it is malformed.
 */
static size_t check_item(const unsigned char *p, size_t avail, int depth)
{
	struct cmk_ttlv t;
	size_t need, off;

	if (avail < CMK_TTLV_HDR || depth > CMK_TTLV_MAX_DEPTH)
		return 0;
	header(p, &t);
	need = pad8(t.len);
	if ((size_t)t.len > avail - CMK_TTLV_HDR ||
	    need > avail - CMK_TTLV_HDR)
		return 0;
	switch (t.type) {
	case CMK_TTLV_STRUCTURE:
		if (t.len % 8)
			return 0;
		for (off = 0; off < t.len;) {
			size_t sz = check_item(t.val + off, t.len - off, depth + 1);

			if (!sz)
				return 0;
			off += sz;
		}
		break;
	case CMK_TTLV_INTEGER:
	case CMK_TTLV_ENUM:
		if (t.len != 4)
			return 0;
		break;
	case CMK_TTLV_LONG:
	case CMK_TTLV_DATETIME:
		if (t.len != 8)
			return 0;
		break;
	case CMK_TTLV_INTERVAL:
		if (t.len != 4)
			return 0;
		break;
	case CMK_TTLV_BOOL:
		if (t.len != 8 || cmk_ttlv_u32(t.val) != 0 || t.val[4] ||
		    t.val[5] || t.val[6] || t.val[7] > 1)
			return 0;
		break;
	case CMK_TTLV_BIG_INTEGER:
		if (t.len % 8)
			return 0;
		break;
	case CMK_TTLV_TEXT:
	case CMK_TTLV_BYTES:
		break;
	default:
		return 0;
	}
	return CMK_TTLV_HDR + need;
}

int cmk_ttlv_parse(const unsigned char *buf, size_t len, struct cmk_ttlv *out)
{
	size_t sz;

	memset(out, 0, sizeof(*out));
	if (!buf)
		return -EBADMSG;
	sz = check_item(buf, len, 1);
	if (!sz || sz != len)
		return -EBADMSG;
	header(buf, out);
	return 0;
}

bool cmk_ttlv_next(const struct cmk_ttlv *parent, size_t *pos,
		   struct cmk_ttlv *child)
{
	if (parent->type != CMK_TTLV_STRUCTURE ||
	    *pos + CMK_TTLV_HDR > parent->len)
		return false;
	/* Sizes were checked by cmk_ttlv_parse(). */
	header(parent->val + *pos, child);
	*pos += CMK_TTLV_HDR + pad8(child->len);
	return true;
}

bool cmk_ttlv_find(const struct cmk_ttlv *parent, uint32_t tag, uint8_t type,
		   struct cmk_ttlv *child)
{
	size_t pos = 0;

	while (cmk_ttlv_next(parent, &pos, child))
		if (child->tag == tag && child->type == type)
			return true;
	return false;
}

bool cmk_ttlv_get_int(const struct cmk_ttlv *parent, uint32_t tag, int32_t *v)
{
	struct cmk_ttlv c;

	if (!cmk_ttlv_find(parent, tag, CMK_TTLV_INTEGER, &c))
		return false;
	*v = (int32_t)cmk_ttlv_u32(c.val);
	return true;
}

bool cmk_ttlv_get_enum(const struct cmk_ttlv *parent, uint32_t tag, uint32_t *v)
{
	struct cmk_ttlv c;

	if (!cmk_ttlv_find(parent, tag, CMK_TTLV_ENUM, &c))
		return false;
	*v = cmk_ttlv_u32(c.val);
	return true;
}

bool cmk_ttlv_get_long(const struct cmk_ttlv *parent, uint32_t tag, int64_t *v)
{
	struct cmk_ttlv c;

	if (!cmk_ttlv_find(parent, tag, CMK_TTLV_LONG, &c))
		return false;
	*v = (int64_t)((uint64_t)cmk_ttlv_u32(c.val) << 32 |
		       cmk_ttlv_u32(c.val + 4));
	return true;
}

bool cmk_ttlv_get_text(const struct cmk_ttlv *parent, uint32_t tag, char *out,
		       size_t len)
{
	struct cmk_ttlv c;
	size_t n;

	if (!len || !cmk_ttlv_find(parent, tag, CMK_TTLV_TEXT, &c))
		return false;
	n = c.len < len - 1 ? c.len : len - 1;
	memcpy(out, c.val, n);
	out[n] = '\0';
	return true;
}

bool cmk_ttlv_get_bytes(const struct cmk_ttlv *parent, uint32_t tag,
			const unsigned char **p, size_t *n)
{
	struct cmk_ttlv c;

	if (!cmk_ttlv_find(parent, tag, CMK_TTLV_BYTES, &c))
		return false;
	*p = c.val;
	*n = c.len;
	return true;
}
