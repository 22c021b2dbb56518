// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_aws_creds.c - AWS credential sources: the shared credentials and
 * config files (INI) and the IMDS role-credential document (JSON).
 *
 * Input: byte 0 picks the parser (0: credentials file, 1: config file,
 * 2: IMDS document); the rest is the text.  Oracles: ASan/UBSan; accepted
 * credentials have a non-empty access key id and secret, and the secret
 * (SECRET, when the input has it once, as a value) never shows in the
 * error of a rejected one.
 */
#include <stdlib.h>
#include <string.h>

#include "core/secret.h"
#include "kms/aws/aws_creds.h"
#include "fuzz.h"

#define SECRET "fuzzSecretValue"

/* SECRET is in the input once, as the value of a secret key, nowhere else. */
static bool secret_once(const uint8_t *data, size_t size)
{
	static const char *const as[] = {
		"\"SecretAccessKey\":\"" SECRET, "aws_secret_access_key = " SECRET,
	};
	const uint8_t *p = data;
	size_t left = size, seen = 0;

	while (left && fuzz_contains(p, left, SECRET)) {
		/* fuzz_contains() found one: move past it. */
		while (!fuzz_contains(p, strlen(SECRET) <= left ? strlen(SECRET) : left, SECRET))
			p++, left--;
		p += strlen(SECRET);
		left -= strlen(SECRET);
		seen++;
	}
	if (seen != 1)
		return false;
	for (size_t i = 0; i < sizeof(as) / sizeof(as[0]); i++)
		if (fuzz_contains(data, size, as[i]))
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmk_aws_creds c;
	char region[64];
	struct cmk_err e;
	int ret;

	if (size < 1)
		return 0;
	memset(&c, 0, sizeof(c));
	switch (data[0] % 3) {
	case 0:
	case 1:
		ret = cmk_aws_profile_parse((const char *)data + 1, size - 1,
					    data[0] & 0x80 ? "fuzz" : "default",
					    data[0] % 3 == 1, &c, region,
					    sizeof(region), &e);
		break;
	default:
		ret = cmk_aws_imds_parse((const char *)data + 1, size - 1, &c, &e);
		break;
	}
	if (ret == 0 && (!c.access_key_id[0] || !c.secret_key ||
			 !cmk_secret_len(c.secret_key)))
		abort();
	if (ret && secret_once(data, size))
		fuzz_no_secret(&e, SECRET);
	cmk_aws_creds_free(&c);
	return 0;
}
