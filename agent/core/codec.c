// SPDX-License-Identifier: GPL-2.0
/*
 * codec.c - base64, UUIDs, timestamps (see codec.h).
 */
#include "core/codec.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/random.h"

int cmk_b64_encode(const unsigned char *in, size_t len, char **out,
		   struct cmk_err *e)
{
	size_t olen;
	char *buf;

	*out = NULL;
	if (len > 1024 * 1024)
		return cmk_errf(e, -E2BIG, "base64: %zu bytes is too large to encode", len);
	olen = 4 * ((len + 2) / 3);
	buf = malloc(olen + 1);
	if (!buf)
		return cmk_errf(e, -ENOMEM, "base64: out of memory");
	if (EVP_EncodeBlock((unsigned char *)buf, in, (int)len) != (int)olen) {
		free(buf);
		return cmk_errf(e, -EIO, "base64: encoder failed");
	}
	buf[olen] = '\0';
	*out = buf;
	return 0;
}

static int b64_char_ok(char c)
{
	return isalnum((unsigned char)c) || c == '+' || c == '/';
}

int cmk_b64_decode(const char *in, unsigned char **out, size_t *out_len,
		   struct cmk_err *e)
{
	size_t len = strlen(in), pad = 0, i;
	unsigned char *buf;
	int n;

	*out = NULL;
	*out_len = 0;
	if (len == 0 || len % 4 != 0 || len > 1024 * 1024)
		return cmk_errf(e, -EINVAL,
				"not valid base64: length %zu is not a positive multiple of 4",
				len);
	if (in[len - 1] == '=')
		pad++;
	if (in[len - 2] == '=')
		pad++;
	for (i = 0; i < len - pad; i++)
		if (!b64_char_ok(in[i]))
			return cmk_errf(e, -EINVAL,
					"not valid base64: bad character at offset %zu",
					i);
	buf = malloc(len / 4 * 3 + 1);
	if (!buf)
		return cmk_errf(e, -ENOMEM, "base64: out of memory");
	/*
	 * EVP_DecodeBlock() ignores leading/trailing whitespace and keeps
	 * the bytes of the padding; the alphabet was checked above and the
	 * padding is subtracted here.
	 */
	n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len);
	if (n < 0 || (size_t)n != len / 4 * 3) {
		free(buf);
		return cmk_errf(e, -EINVAL, "not valid base64: decoder rejected it");
	}
	/* Only the canonical encoding (zero trailing bits) is accepted. */
	{
		char *again = NULL;
		struct cmk_err ignore;
		int same = cmk_b64_encode(buf, (size_t)n - pad, &again, &ignore) == 0 &&
			   strcmp(again, in) == 0;

		free(again);
		if (!same) {
			free(buf);
			return cmk_errf(e, -EINVAL,
					"not valid base64: non-canonical padding bits");
		}
	}
	*out = buf;
	*out_len = (size_t)n - pad;
	return 0;
}

int cmk_uuid_generate(uint8_t uuid[CMK_UUID_LEN], struct cmk_err *e)
{
	int ret = cmk_random_fill(uuid, CMK_UUID_LEN, "uuid", e);

	if (ret)
		return ret;
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
	return 0;
}

void cmk_uuid_format(const uint8_t u[CMK_UUID_LEN], char out[CMK_UUID_STR])
{
	snprintf(out, CMK_UUID_STR,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}

int cmk_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cmk_uuid_parse(const char *s, uint8_t uuid[CMK_UUID_LEN])
{
	int j = 0;

	if (strlen(s) != 36)
		return -EINVAL;
	for (int i = 0; i < 36;) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			i++;
			continue;
		}
		hi = cmk_hexval(s[i]);
		lo = cmk_hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		uuid[j++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return 0;
}

int cmk_time_format(time_t t, char out[CMK_TIME_STR])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		return -EINVAL;
	if (strftime(out, CMK_TIME_STR, "%Y-%m-%dT%H:%M:%SZ", &tm) != CMK_TIME_STR - 1)
		return -EINVAL;
	return 0;
}

int cmk_time_parse(const char *s, time_t *t)
{
	char back[CMK_TIME_STR];
	struct tm tm;
	const char *end;

	if (strlen(s) != CMK_TIME_STR - 1)
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end)
		return -EINVAL;
	*t = timegm(&tm);
	if (*t == (time_t)-1)
		return -EINVAL;
	/* Round trip rejects non-dates such as 02-30 and leap seconds. */
	if (cmk_time_format(*t, back) || strcmp(back, s))
		return -EINVAL;
	return 0;
}
