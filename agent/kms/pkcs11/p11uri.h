/* SPDX-License-Identifier: GPL-2.0 */
/*
 * p11uri.h - RFC 7512 "pkcs11:" URIs, as the pkcs11 provider's key_ref.
 *
 *   pkcs11:token=cmk;object=kek;type=secret-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/cmk/pin
 *
 * Path attributes (separated by ';') select the token and the key:
 *   token, manufacturer, serial, model          CK_TOKEN_INFO fields
 *   slot-description, slot-manufacturer, slot-id   CK_SLOT_INFO / slot id
 *   library-manufacturer, library-description, library-version  CK_INFO
 *   object (CKA_LABEL), id (CKA_ID, any bytes), type (only "secret-key")
 * Query attributes (separated by '&'):
 *   module-path   absolute path of the PKCS#11 module to dlopen
 *   pin-source    where the user PIN is: "file:/path", "file:///path" or
 *                 "/path" (the file's contents, one trailing newline
 *                 dropped)
 * Values are percent-decoded.  Refused with a message naming the attribute:
 * unknown or repeated attributes, bad percent escapes, NUL in a text value,
 * pin-value (the key_ref is written to audit lines and error messages, so
 * it must never carry a PIN), module-name (give module-path), relative
 * paths, a type other than secret-key, and a URI that names no key
 * (neither object nor id).
 */
#ifndef CMK_P11URI_H
#define CMK_P11URI_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define CMK_P11URI_MAX		4096	/* longest URI accepted */
#define CMK_P11URI_ID_MAX	256	/* longest CKA_ID accepted */

/**
 * struct cmk_p11uri - a parsed pkcs11: URI; NULL/false means "absent"
 *
 * Text values are NUL-terminated and contain no NUL; @id is raw bytes.
 * @lib_ver_major/@lib_ver_minor: library-version "M" or "M.N"
 * (@lib_ver_minor is -1 for "M", which matches any minor version).
 */
struct cmk_p11uri {
	char *token, *manufacturer, *serial, *model;
	char *slot_description, *slot_manufacturer;
	bool has_slot_id;
	unsigned long slot_id;
	char *lib_manufacturer, *lib_description;
	bool has_lib_version;
	int lib_ver_major, lib_ver_minor;
	char *object;
	unsigned char *id;
	size_t id_len;
	bool has_id;
	char *module_path;
	char *pin_file;		/* from pin-source, scheme stripped */
};

/* cmk_p11uri_parse() - parse @uri into @u (freed with cmk_p11uri_free). */
int cmk_p11uri_parse(const char *uri, struct cmk_p11uri *u, struct cmk_err *e);
void cmk_p11uri_free(struct cmk_p11uri *u);

/*
 * cmk_p11uri_pct_decode() - decode @n bytes of percent-encoded @in into a
 * malloc'd buffer *@out (NUL-terminated, *@out_len excludes the NUL).
 * -EINVAL on a truncated or non-hex escape.
 */
int cmk_p11uri_pct_decode(const char *in, size_t n, unsigned char **out,
			  size_t *out_len);

/*
 * cmk_p11uri_field_eq() - does the blank-padded, fixed-size PKCS#11 field
 * @field (@n bytes, e.g. CK_TOKEN_INFO.label) hold exactly @want?  A @want
 * longer than @n never matches.
 */
bool cmk_p11uri_field_eq(const char *want, const unsigned char *field, size_t n);

/*
 * cmk_p11uri_field_str() - @field (@n bytes, blank-padded) as a printable
 * C string in @out (trailing blanks dropped, non-printable bytes as '?'),
 * for messages.
 */
void cmk_p11uri_field_str(const unsigned char *field, size_t n, char *out,
			  size_t len);

#endif /* CMK_P11URI_H */
