/* SPDX-License-Identifier: GPL-2.0 */
/*
 * codec.h - small encodings shared by the formats: base64 (OpenSSL),
 * UUIDs, RFC 3339 UTC timestamps and little-endian integers.
 * None of these functions is meant for secrets.
 */
#ifndef CMK_CODEC_H
#define CMK_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/err.h"

#define CMK_UUID_LEN	16
#define CMK_UUID_STR	37	/* 36 characters + NUL */
#define CMK_TIME_STR	21	/* "YYYY-MM-DDTHH:MM:SSZ" + NUL */

/*
 * cmk_b64_encode() - standard base64 with padding, no line breaks.
 * *out is malloc'd and NUL-terminated.
 */
int cmk_b64_encode(const unsigned char *in, size_t len, char **out,
		   struct cmk_err *e);

/*
 * cmk_b64_decode() - strict decode of standard padded base64: the length
 * must be a multiple of 4, only the alphabet and final '=' padding, no
 * whitespace.  *out is malloc'd.
 */
int cmk_b64_decode(const char *in, unsigned char **out, size_t *out_len,
		   struct cmk_err *e);

/* cmk_hexval() - the value of hex digit @c (any case), or -1. */
int cmk_hexval(char c);

/* cmk_uuid_generate() - random (version 4, RFC 4122 variant) UUID. */
int cmk_uuid_generate(uint8_t uuid[CMK_UUID_LEN], struct cmk_err *e);
/* cmk_uuid_format() - lowercase 8-4-4-4-12 form. */
void cmk_uuid_format(const uint8_t uuid[CMK_UUID_LEN], char out[CMK_UUID_STR]);
/* cmk_uuid_parse() - accepts exactly the 8-4-4-4-12 hex form (any case). */
int cmk_uuid_parse(const char *s, uint8_t uuid[CMK_UUID_LEN]);

/* cmk_time_format() - "YYYY-MM-DDTHH:MM:SSZ" (UTC). */
int cmk_time_format(time_t t, char out[CMK_TIME_STR]);
/* cmk_time_parse() - exactly the form above, a real date, UTC. */
int cmk_time_parse(const char *s, time_t *t);

static inline void cmk_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void cmk_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void cmk_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t cmk_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t cmk_get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t cmk_get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

#endif /* CMK_CODEC_H */
