// SPDX-License-Identifier: GPL-2.0
/*
 * p11uri.c - RFC 7512 pkcs11: URI parsing (see p11uri.h).
 */
#include "kms/pkcs11/p11uri.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/codec.h"

int cmk_p11uri_pct_decode(const char *in, size_t n, unsigned char **out,
			  size_t *out_len)
{
	unsigned char *o = malloc(n + 1);
	size_t j = 0;

	if (!o)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (in[i] != '%') {
			o[j++] = (unsigned char)in[i];
			continue;
		}
		if (i + 2 >= n) {
			free(o);
			return -EINVAL;
		}
		if (cmk_hexval(in[i + 1]) < 0 || cmk_hexval(in[i + 2]) < 0) {
			free(o);
			return -EINVAL;
		}
		o[j++] = (unsigned char)(cmk_hexval(in[i + 1]) << 4 | cmk_hexval(in[i + 2]));
		i += 2;
	}
	o[j] = '\0';
	*out = o;
	*out_len = j;
	return 0;
}

bool cmk_p11uri_field_eq(const char *want, const unsigned char *field, size_t n)
{
	size_t wl = strlen(want);

	if (wl > n || memcmp(want, field, wl))
		return false;
	for (size_t i = wl; i < n; i++)
		if (field[i] != ' ')
			return false;
	return true;
}

void cmk_p11uri_field_str(const unsigned char *field, size_t n, char *out,
			  size_t len)
{
	size_t m = n;

	if (!len)
		return;
	while (m && (field[m - 1] == ' ' || field[m - 1] == '\0'))
		m--;
	cmk_printable((const char *)field, m, out, len, true);
}

void cmk_p11uri_free(struct cmk_p11uri *u)
{
	if (!u)
		return;
	free(u->token);
	free(u->manufacturer);
	free(u->serial);
	free(u->model);
	free(u->slot_description);
	free(u->slot_manufacturer);
	free(u->lib_manufacturer);
	free(u->lib_description);
	free(u->object);
	free(u->id);
	free(u->module_path);
	free(u->pin_file);
	memset(u, 0, sizeof(*u));
}

/* Text attributes: where each one goes. */
static char **text_slot(struct cmk_p11uri *u, const char *name, size_t nl,
			bool query)
{
	static const struct {
		const char *name;
		size_t off;
		bool query;
	} tab[] = {
		{ "token", offsetof(struct cmk_p11uri, token), false },
		{ "manufacturer", offsetof(struct cmk_p11uri, manufacturer), false },
		{ "serial", offsetof(struct cmk_p11uri, serial), false },
		{ "model", offsetof(struct cmk_p11uri, model), false },
		{ "slot-description", offsetof(struct cmk_p11uri, slot_description), false },
		{ "slot-manufacturer", offsetof(struct cmk_p11uri, slot_manufacturer), false },
		{ "library-manufacturer", offsetof(struct cmk_p11uri, lib_manufacturer), false },
		{ "library-description", offsetof(struct cmk_p11uri, lib_description), false },
		{ "object", offsetof(struct cmk_p11uri, object), false },
		{ "module-path", offsetof(struct cmk_p11uri, module_path), true },
		{ "pin-source", offsetof(struct cmk_p11uri, pin_file), true },
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (tab[i].query == query && strlen(tab[i].name) == nl &&
		    !memcmp(tab[i].name, name, nl))
			return (char **)((char *)u + tab[i].off);
	return NULL;
}

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 20)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (v > (max - (unsigned long)(*s - '0')) / 10)
			return false;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	*out = v;
	return true;
}

/* "file:/p", "file:///p" or "/p" -> "/p" (in place). */
static int pin_source_path(char *v, struct cmk_err *e)
{
	const char *p = v;

	if (!strncasecmp(p, "file://", 7)) {
		p += 7;
		if (*p != '/')
			return cmk_errf(e, -EINVAL,
					"pkcs11 URI: pin-source \"%s\" names a remote host; give file:/path or /path",
					v);
	} else if (!strncasecmp(p, "file:", 5)) {
		p += 5;
	}
	if (*p != '/')
		return cmk_errf(e, -EINVAL,
				"pkcs11 URI: pin-source must be an absolute file path (file:/path or /path), got \"%s\"",
				v);
	memmove(v, p, strlen(p) + 1);
	return 0;
}

static int set_attr(struct cmk_p11uri *u, const char *a, size_t an,
		    const char *v, size_t vn, bool query, struct cmk_err *e)
{
	unsigned char *d = NULL;
	size_t dl = 0;
	char **slot;
	int ret = 0;

	if (an == 0)
		return cmk_errf(e, -EINVAL, "pkcs11 URI: an attribute without a name");
	if (an > 32)
		return cmk_errf(e, -EINVAL, "pkcs11 URI: attribute name \"%.32s...\" is not known", a);
	if (query && an == 9 && !memcmp(a, "pin-value", 9))
		return cmk_errf(e, -EINVAL,
				"pkcs11 URI: pin-value is refused: the key reference is written to logs; put the PIN in a file (pin-source=file:/path) or the environment");
	if (query && an == 11 && !memcmp(a, "module-name", 11))
		return cmk_errf(e, -EINVAL,
				"pkcs11 URI: module-name is not supported; give the module's absolute path as module-path");
	if (vn == 0)
		return cmk_errf(e, -EINVAL, "pkcs11 URI: attribute %.*s has an empty value",
				(int)an, a);
	if (cmk_p11uri_pct_decode(v, vn, &d, &dl))
		return cmk_errf(e, -EINVAL,
				"pkcs11 URI: attribute %.*s has a bad percent escape (want %%XX with two hex digits)",
				(int)an, a);
	if (!query && an == 2 && !memcmp(a, "id", 2)) {
		if (u->has_id) {
			ret = cmk_errf(e, -EINVAL, "pkcs11 URI: attribute id given twice");
			goto out;
		}
		if (dl > CMK_P11URI_ID_MAX) {
			ret = cmk_errf(e, -EINVAL, "pkcs11 URI: id is longer than %d bytes",
				       CMK_P11URI_ID_MAX);
			goto out;
		}
		u->id = d;
		u->id_len = dl;
		u->has_id = true;
		return 0;
	}
	if (memchr(d, '\0', dl)) {
		ret = cmk_errf(e, -EINVAL, "pkcs11 URI: attribute %.*s contains a NUL byte",
			       (int)an, a);
		goto out;
	}
	if (!query && an == 4 && !memcmp(a, "type", 4)) {
		if (strcmp((char *)d, "secret-key"))
			ret = cmk_errf(e, -EINVAL,
				       "pkcs11 URI: type=%s cannot wrap keys; the key must be an AES secret key (type=secret-key)",
				       (char *)d);
		goto out;
	}
	if (!query && an == 7 && !memcmp(a, "slot-id", 7)) {
		if (u->has_slot_id)
			ret = cmk_errf(e, -EINVAL, "pkcs11 URI: attribute slot-id given twice");
		else if (!parse_ulong((char *)d, (unsigned long)-1, &u->slot_id))
			ret = cmk_errf(e, -EINVAL, "pkcs11 URI: slot-id \"%s\" is not a decimal number",
				       (char *)d);
		else
			u->has_slot_id = true;
		goto out;
	}
	if (!query && an == 15 && !memcmp(a, "library-version", 15)) {
		char *dot = strchr((char *)d, '.');
		unsigned long ma, mi = 0;

		if (dot)
			*dot = '\0';
		if (u->has_lib_version) {
			ret = cmk_errf(e, -EINVAL, "pkcs11 URI: attribute library-version given twice");
		} else if (!parse_ulong((char *)d, 255, &ma) ||
			   (dot && !parse_ulong(dot + 1, 255, &mi))) {
			ret = cmk_errf(e, -EINVAL,
				       "pkcs11 URI: library-version wants M or M.N (decimal, 0..255)");
		} else {
			u->has_lib_version = true;
			u->lib_ver_major = (int)ma;
			u->lib_ver_minor = dot ? (int)mi : -1;
		}
		goto out;
	}
	slot = text_slot(u, a, an, query);
	if (!slot) {
		ret = cmk_errf(e, -EINVAL,
			       "pkcs11 URI: %s attribute \"%.*s\" is not known (RFC 7512; this agent also refuses vendor attributes)",
			       query ? "query" : "path", (int)an, a);
		goto out;
	}
	if (*slot) {
		ret = cmk_errf(e, -EINVAL, "pkcs11 URI: attribute %.*s given twice",
			       (int)an, a);
		goto out;
	}
	if (slot == &u->pin_file) {
		ret = pin_source_path((char *)d, e);
		if (ret)
			goto out;
	}
	if (slot == &u->module_path && d[0] != '/') {
		ret = cmk_errf(e, -EINVAL,
			       "pkcs11 URI: module-path must be an absolute path, got \"%s\"",
			       (char *)d);
		goto out;
	}
	*slot = (char *)d;
	return 0;
out:
	free(d);
	return ret;
}

/* Printable ASCII other than the delimiters of the part being parsed. */
static bool char_ok(char c)
{
	return c > ' ' && c < 0x7f && c != '#' && c != '"' && c != '<' &&
	       c != '>' && c != '\\' && c != '^' && c != '`' && c != '{' &&
	       c != '|' && c != '}';
}

static int parse_part(struct cmk_p11uri *u, const char *s, size_t n,
		      char sep, bool query, struct cmk_err *e)
{
	const char *end = s + n;

	while (s < end) {
		const char *t = memchr(s, sep, (size_t)(end - s));
		const char *eq;
		size_t len;
		int ret;

		if (!t)
			t = end;
		len = (size_t)(t - s);
		if (len) {
			eq = memchr(s, '=', len);
			if (!eq)
				return cmk_errf(e, -EINVAL,
						"pkcs11 URI: \"%.*s\" is not attribute=value",
						(int)(len > 64 ? 64 : len), s);
			ret = set_attr(u, s, (size_t)(eq - s), eq + 1,
				       (size_t)(t - eq - 1), query, e);
			if (ret)
				return ret;
		}
		s = t + (t < end);
	}
	return 0;
}

int cmk_p11uri_parse(const char *uri, struct cmk_p11uri *u, struct cmk_err *e)
{
	const char *p, *q;
	size_t n;
	int ret;

	memset(u, 0, sizeof(*u));
	if (!uri || strncasecmp(uri, "pkcs11:", 7))
		return cmk_errf(e, -EINVAL,
				"pkcs11: key reference must be a pkcs11: URI (RFC 7512), e.g. pkcs11:token=NAME;object=LABEL?module-path=/path/module.so");
	n = strlen(uri);
	if (n > CMK_P11URI_MAX)
		return cmk_errf(e, -EINVAL, "pkcs11 URI: longer than %d bytes",
				CMK_P11URI_MAX);
	for (size_t i = 7; i < n; i++)
		if (!char_ok(uri[i]))
			return cmk_errf(e, -EINVAL,
					"pkcs11 URI: character %zu (0x%02x) must be percent-encoded",
					i, (unsigned char)uri[i]);
	p = uri + 7;
	q = strchr(p, '?');
	ret = parse_part(u, p, q ? (size_t)(q - p) : strlen(p), ';', false, e);
	if (!ret && q)
		ret = parse_part(u, q + 1, strlen(q + 1), '&', true, e);
	if (!ret && !u->object && !u->has_id)
		ret = cmk_errf(e, -EINVAL,
			       "pkcs11 URI: names no key; give object=LABEL and/or id=%%XX...");
	if (ret)
		cmk_p11uri_free(u);
	return ret;
}
