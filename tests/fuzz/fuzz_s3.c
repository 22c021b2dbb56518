// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_s3.c - the S3 answers the storage uploader reads (kms/aws/s3.h):
 * the strict XML reader and the error an answer turns into.
 *
 * Input: one byte of HTTP status class, then an answer body.  Oracles:
 * ASan/UBSan; every value found is NUL-terminated inside its buffer; an
 * error's code and request id hold only [A-Za-z0-9+/=._-] and its
 * message only printable ASCII, whatever the body says, so nothing from
 * S3 can forge a line of a log; a parse that succeeds gives a root name
 * of XML name characters.
 */
#include <stdlib.h>
#include <string.h>

#include "kms/aws/s3.h"
#include "kms/aws/s3_xml.h"
#include "fuzz.h"

static void only(const char *s, size_t max, bool id)
{
	size_t n = strnlen(s, max + 1);

	if (n > max)
		abort();
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (id ? !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			   (c >= '0' && c <= '9') || strchr("+/=._-", c)) :
			 (c < ' ' || c > '~'))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long status[] = { 200, 403, 404, 412, 500, 503, 400, 429 };
	static const struct cmk_s3_obj o = { "wal-archive", "pg/000000010000000000000001" };
	char up[CMK_S3_UPLOAD_ID_MAX + 1], code[64], etag[160], rid[64], root[48];
	struct cmk_s3_xml_field f[] = {
		{ "UploadId", up, sizeof(up), false }, { "Code", code, sizeof(code), false },
		{ "ETag", etag, sizeof(etag), false }, { "RequestId", rid, sizeof(rid), false },
	};
	struct cmk_s3_error err;
	struct cmk_err e;
	char *body;
	long st;

	if (size < 1)
		return 0;
	st = status[data[0] % (sizeof(status) / sizeof(status[0]))];
	body = fuzz_cstr(data + 1, size - 1);
	if (!cmk_s3_xml_parse(body, size - 1, root, sizeof(root), f, 4, &e)) {
		if (!root[0] || strnlen(root, sizeof(root)) == sizeof(root))
			abort();
		for (size_t i = 0; i < 4; i++)
			if (f[i].found && strnlen(f[i].val, f[i].len) == f[i].len)
				abort();
	}
	cmk_s3_error_parse(st, body, size - 1, size > 8 ? body + size / 2 : NULL, &err);
	only(err.code, sizeof(err.code) - 1, true);
	only(err.request_id, CMK_S3_REQID_MAX, true);
	only(err.message, sizeof(err.message) - 1, false);
	cmk_s3_error_ret(st, &err, "GetObject", &o, &e);
	only(e.msg, sizeof(e.msg) - 1, false);
	free(body);
	return 0;
}
