// SPDX-License-Identifier: GPL-2.0
/*
 * s3_xml.c - a strict reading of S3's small XML answers (see s3_xml.h).
 */
#include "kms/aws/s3_xml.h"

#include <errno.h>
#include <string.h>

#define XML_DEPTH_MAX	8

struct xml {
	const char *p, *end, *start;
	struct cmk_err *e;
};

static int xml_err(struct xml *x, const char *what)
{
	return cmk_errf(x->e, -EPROTO, "s3: answer is not the XML expected: %s at byte %zu",
			what, (size_t)(x->p - x->start));
}

static bool name_ch(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' ||
	       (!first && ((c >= '0' && c <= '9') || c == '-' || c == '.'));
}

static void skip_ws(struct xml *x)
{
	while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\r' ||
				 *x->p == '\n'))
		x->p++;
}

/* A name at x->p: its start and length. */
static int xml_name(struct xml *x, const char **n, size_t *nl)
{
	*n = x->p;
	if (x->p >= x->end || !name_ch(*x->p, true))
		return xml_err(x, "no element name");
	while (x->p < x->end && name_ch(*x->p, false))
		x->p++;
	*nl = (size_t)(x->p - *n);
	return 0;
}

/* Attributes up to '>' or "/>": name="..." or name='...' pairs. */
static int xml_attrs(struct xml *x, bool *empty)
{
	for (;;) {
		const char *n;
		size_t nl;
		char qc;

		skip_ws(x);
		if (x->p >= x->end)
			return xml_err(x, "unterminated tag");
		if (*x->p == '>') {
			x->p++;
			*empty = false;
			return 0;
		}
		if (*x->p == '/') {
			if (x->p + 1 >= x->end || x->p[1] != '>')
				return xml_err(x, "'/' not followed by '>'");
			x->p += 2;
			*empty = true;
			return 0;
		}
		if (xml_name(x, &n, &nl))
			return -EPROTO;
		skip_ws(x);
		if (x->p >= x->end || *x->p != '=')
			return xml_err(x, "attribute without '='");
		x->p++;
		skip_ws(x);
		if (x->p >= x->end || (*x->p != '"' && *x->p != '\''))
			return xml_err(x, "attribute value not quoted");
		qc = *x->p++;
		while (x->p < x->end && *x->p != qc) {
			if (*x->p == '<')
				return xml_err(x, "'<' in an attribute value");
			x->p++;
		}
		if (x->p >= x->end)
			return xml_err(x, "unterminated attribute value");
		x->p++;
	}
}

/* Decode the text [s, t) into @out (NULL: only check it). */
static int xml_text(struct xml *x, const char *s, const char *t, char *out,
		    size_t outlen)
{
	static const struct { const char *ent; char c; } ents[] = {
		{ "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' }, { "quot;", '"' },
		{ "apos;", '\'' },
	};
	size_t o = 0;

	while (s < t) {
		char c = *s;

		if (c == '&') {
			size_t i, left = (size_t)(t - s - 1);

			c = 0;
			for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++)
				if (left >= strlen(ents[i].ent) &&
				    !memcmp(s + 1, ents[i].ent, strlen(ents[i].ent))) {
					c = ents[i].c;
					s += 1 + strlen(ents[i].ent);
					break;
				}
			if (!c && left >= 3 && s[1] == '#') {
				const char *q = s + 2;
				bool hx = *q == 'x';
				unsigned long v = 0;
				int digits = 0;

				if (hx)
					q++;
				for (; q < t && *q != ';' && digits < 6; q++, digits++) {
					int d;

					if (*q >= '0' && *q <= '9')
						d = *q - '0';
					else if (hx && *q >= 'a' && *q <= 'f')
						d = *q - 'a' + 10;
					else if (hx && *q >= 'A' && *q <= 'F')
						d = *q - 'A' + 10;
					else
						return xml_err(x, "bad character reference");
					v = v * (hx ? 16 : 10) + (unsigned long)d;
				}
				if (q >= t || *q != ';' || !digits || v == 0 || v > 0x7f)
					return xml_err(x, "character reference not to ASCII");
				c = (char)v;
				s = q + 1;
			}
			if (!c)
				return xml_err(x, "unknown entity");
		} else {
			s++;
		}
		if (out) {
			if (o + 1 >= outlen)
				return cmk_errf(x->e, -EPROTO, "s3: an element of the answer is longer than %zu bytes",
						outlen ? outlen - 1 : 0);
			out[o++] = c;
		}
	}
	if (out && outlen)
		out[o] = '\0';
	return 0;
}

int cmk_s3_xml_parse(const char *doc, size_t len, char *root, size_t root_len,
		     struct cmk_s3_xml_field *f, size_t nf, struct cmk_err *e)
{
	struct xml x = { doc, doc + len, doc, e };
	const char *stack[XML_DEPTH_MAX];
	size_t stack_len[XML_DEPTH_MAX];
	const char *text = NULL;	/* text since the last depth-2 start tag */
	bool leaf = false;		/* no element inside the current depth-2 one */
	bool have_root = false;
	int depth = 0;

	for (size_t i = 0; i < nf; i++) {
		f[i].found = false;
		if (f[i].len)
			f[i].val[0] = '\0';
	}
	if (root_len)
		root[0] = '\0';
	if (!doc)
		return xml_err(&x, "no body");
	skip_ws(&x);
	if ((size_t)(x.end - x.p) >= 5 && !memcmp(x.p, "<?xml", 5)) {
		const char *q;

		for (q = x.p + 5; q + 1 < x.end && !(q[0] == '?' && q[1] == '>'); q++)
			if (*q == '<')
				break;
		if (q + 1 >= x.end || q[0] != '?')
			return xml_err(&x, "unterminated XML declaration");
		x.p = q + 2;
	}
	skip_ws(&x);
	if (x.p >= x.end || *x.p != '<')
		return xml_err(&x, "no root element");
	for (;;) {
		const char *ts = x.p, *lt, *n;
		size_t nl;
		bool empty = false;

		/* text up to the next '<' */
		while (x.p < x.end && *x.p != '<')
			x.p++;
		if (depth == 0 && x.p != ts) {
			for (const char *q = ts; q < x.p; q++)
				if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n')
					return xml_err(&x, "text outside the root element");
		} else if (x.p != ts && xml_text(&x, ts, x.p, NULL, 0)) {
			return -EPROTO;
		}
		if (x.p >= x.end) {
			if (depth)
				return xml_err(&x, "unterminated element");
			return have_root ? 0 : xml_err(&x, "no root element");
		}
		if (depth == 0 && have_root)
			return xml_err(&x, "a second root element");
		lt = x.p++;
		if (x.p < x.end && (*x.p == '!' || *x.p == '?'))
			return xml_err(&x, "comment, CDATA, DTD or processing instruction");
		if (x.p < x.end && *x.p == '/') {
			x.p++;
			if (xml_name(&x, &n, &nl))
				return -EPROTO;
			skip_ws(&x);
			if (x.p >= x.end || *x.p != '>')
				return xml_err(&x, "unterminated end tag");
			x.p++;
			if (!depth || stack_len[depth - 1] != nl ||
			    memcmp(stack[depth - 1], n, nl))
				return xml_err(&x, "end tag does not match");
			/* A leaf child of the root: maybe one of @f. */
			if (depth == 2 && leaf) {
				for (size_t i = 0; i < nf; i++)
					if (!f[i].found && strlen(f[i].name) == nl &&
					    !memcmp(f[i].name, n, nl)) {
						if (xml_text(&x, text, lt, f[i].val, f[i].len))
							return -EPROTO;
						f[i].found = true;
						break;
					}
			}
			depth--;
			leaf = false;
			continue;
		}
		if (xml_name(&x, &n, &nl) || xml_attrs(&x, &empty))
			return -EPROTO;
		if (depth == 0) {
			if (nl >= root_len)
				return xml_err(&x, "root element name too long");
			memcpy(root, n, nl);
			root[nl] = '\0';
			have_root = true;
		}
		if (depth == 2)
			leaf = false;
		if (empty) {
			if (depth == 1)
				for (size_t i = 0; i < nf; i++)
					if (!f[i].found && strlen(f[i].name) == nl &&
					    !memcmp(f[i].name, n, nl) && f[i].len) {
						f[i].val[0] = '\0';
						f[i].found = true;
						break;
					}
			if (depth == 0) {
				skip_ws(&x);
				return x.p == x.end ? 0 : xml_err(&x, "content after the root element");
			}
			continue;
		}
		if (depth == XML_DEPTH_MAX)
			return xml_err(&x, "elements nested too deep");
		stack[depth] = n;
		stack_len[depth] = nl;
		depth++;
		if (depth == 2) {
			text = x.p;
			leaf = true;
		}
	}
}
