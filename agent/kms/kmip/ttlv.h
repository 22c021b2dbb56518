/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ttlv.h - KMIP's Tag-Type-Length-Value encoding, small and bounds-checked.
 *
 * Every item is
 *
 *   tag     3 bytes, big-endian (0x42xxxx for KMIP's own tags)
 *   type    1 byte  (CMK_TTLV_*)
 *   length  4 bytes, big-endian: the value's length without padding
 *   value   length bytes, then zero padding to a multiple of 8
 *
 * A Structure's value is a sequence of items.  Fixed-size types have a
 * fixed length: Integer and Enumeration 4 (padded to 8), Long Integer,
 * Boolean, Date-Time and Interval 8.
 *
 * Encoding writes into a buffer the caller provides (usually a struct
 * cmk_secret, since requests carry the KEK): the encoder never allocates,
 * so no copy of a secret is left behind by a realloc.  Overflow is sticky
 * and reported once, by cmk_ttlv_enc_finish().
 *
 * Decoding is zero-copy: cmk_ttlv_parse() checks the whole item tree once
 * (lengths, fixed sizes, nesting depth, that each Structure is exactly a
 * sequence of items) and then hands out views into the buffer; the
 * accessors check the type of what they read.
 */
#ifndef CMK_TTLV_H
#define CMK_TTLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cmk_ttlv_type {
	CMK_TTLV_STRUCTURE	= 0x01,
	CMK_TTLV_INTEGER	= 0x02,
	CMK_TTLV_LONG		= 0x03,
	CMK_TTLV_BIG_INTEGER	= 0x04,
	CMK_TTLV_ENUM		= 0x05,
	CMK_TTLV_BOOL		= 0x06,
	CMK_TTLV_TEXT		= 0x07,
	CMK_TTLV_BYTES		= 0x08,
	CMK_TTLV_DATETIME	= 0x09,
	CMK_TTLV_INTERVAL	= 0x0A,
};

#define CMK_TTLV_HDR		8
#define CMK_TTLV_MAX_DEPTH	16

/* ---- encoding ---------------------------------------------------------- */

struct cmk_ttlv_enc {
	unsigned char *buf;
	size_t cap, len;
	size_t open[CMK_TTLV_MAX_DEPTH];	/* offsets of open Structures */
	int depth;
	bool overflow;		/* ran out of room or nesting: sticky */
};

void cmk_ttlv_enc_init(struct cmk_ttlv_enc *w, unsigned char *buf, size_t cap);
/* Open a Structure; close it with cmk_ttlv_end(). */
void cmk_ttlv_begin(struct cmk_ttlv_enc *w, uint32_t tag);
void cmk_ttlv_end(struct cmk_ttlv_enc *w);
void cmk_ttlv_int(struct cmk_ttlv_enc *w, uint32_t tag, int32_t v);
void cmk_ttlv_enum(struct cmk_ttlv_enc *w, uint32_t tag, uint32_t v);
void cmk_ttlv_long(struct cmk_ttlv_enc *w, uint32_t tag, int64_t v);
void cmk_ttlv_bool(struct cmk_ttlv_enc *w, uint32_t tag, bool v);
void cmk_ttlv_text(struct cmk_ttlv_enc *w, uint32_t tag, const char *s);
void cmk_ttlv_bytes(struct cmk_ttlv_enc *w, uint32_t tag,
		    const unsigned char *p, size_t n);
/*
 * cmk_ttlv_enc_finish() - 0 and the encoded length, or -EOVERFLOW (no
 * room) / -EINVAL (a Structure left open).
 */
int cmk_ttlv_enc_finish(struct cmk_ttlv_enc *w, size_t *len);

/* ---- decoding ---------------------------------------------------------- */

/*
 * struct cmk_ttlv - a view of one item inside a checked buffer
 * @tag, @type, @len: its header
 * @val: its value (not padded); for a Structure, the first child item
 */
struct cmk_ttlv {
	uint32_t tag;
	uint8_t type;
	uint32_t len;
	const unsigned char *val;
};

/*
 * cmk_ttlv_frame_len() - the total length (header + padded value) of the
 * item whose 8-byte header is @hdr, for reading a message off a stream.
 * -EBADMSG if it is not a Structure or is longer than @max.
 */
int cmk_ttlv_frame_len(const unsigned char hdr[CMK_TTLV_HDR], size_t max,
		       size_t *total);

/*
 * cmk_ttlv_parse() - check that @buf holds exactly one well-formed item
 * (padding included) and return a view of it.  -EBADMSG otherwise.
 */
int cmk_ttlv_parse(const unsigned char *buf, size_t len, struct cmk_ttlv *out);

/*
 * cmk_ttlv_next() - iterate the children of Structure @parent: start with
 * *@pos = 0; returns true and fills @child while there is one.
 */
bool cmk_ttlv_next(const struct cmk_ttlv *parent, size_t *pos,
		   struct cmk_ttlv *child);

/* cmk_ttlv_find() - the first child of @parent with @tag and @type. */
bool cmk_ttlv_find(const struct cmk_ttlv *parent, uint32_t tag, uint8_t type,
		   struct cmk_ttlv *child);

/* Typed reads of a child of @parent; false if missing or of another type. */
bool cmk_ttlv_get_int(const struct cmk_ttlv *parent, uint32_t tag, int32_t *v);
bool cmk_ttlv_get_enum(const struct cmk_ttlv *parent, uint32_t tag, uint32_t *v);
bool cmk_ttlv_get_long(const struct cmk_ttlv *parent, uint32_t tag, int64_t *v);
/* A Text String copied (NUL-terminated, cut to @len - 1) to @out. */
bool cmk_ttlv_get_text(const struct cmk_ttlv *parent, uint32_t tag, char *out,
		       size_t len);
/* A Byte String's view: *@p points into the message, *@n its length. */
bool cmk_ttlv_get_bytes(const struct cmk_ttlv *parent, uint32_t tag,
			const unsigned char **p, size_t *n);

uint32_t cmk_ttlv_u32(const unsigned char *p);

#endif /* CMK_TTLV_H */
