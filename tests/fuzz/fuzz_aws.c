// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_aws.c - the aws provider's handling of AWS KMS answers: JSON
 * results (CiphertextBlob, Plaintext, KeyId), error classification from
 * the x-amzn-ErrorType header and JSON or XML error bodies, the
 * DescribeKey confirmation of ambiguous errors, and (with credentials
 * from IMDS) the IMDSv2 token and role-credential answers before them.
 *
 * Input: byte 0 picks the operation (bits 0-1: unwrap, wrap, check,
 * rewrap), the credential source (bit 2: environment or IMDS) and the key
 * reference (bit 3: alias or key ARN); the rest answers the requests
 * (fuzz.h).  The same bytes also go to cmk_aws_classify() and
 * cmk_aws_key_state_reason() as a body.  Oracles: ASan/UBSan and
 * fuzz_provider()'s.
 */
#include <stdlib.h>
#include <string.h>

#include "kms/aws/provider_aws.h"
#include "fuzz.h"

#define ARN "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
#define SECRET "fuzzSecretAccessKeyNotReal0123456789abcd"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("AWS_ACCESS_KEY_ID", "AKIAFUZZEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	unsetenv("AWS_SESSION_TOKEN");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cmk_kv env[] = {
		{ "region", "us-east-1", 1 },
		{ "endpoint", "https://kms.us-east-1.amazonaws.com", 2 },
		{ "credentials", "environment", 3 },
	};
	static const struct cmk_kv imds[] = {
		{ "region", "us-east-1", 1 },
		{ "credentials", "imds", 2 },
		{ "imds_endpoint", "http://169.254.169.254", 3 },
	};
	static const unsigned char wrapped[184] = { 0x01, 0x02, 0x03, 0x00, 0x78 };
	struct cmk_aws_error err;
	char state[64];
	bool use_imds, use_arn;

	if (size < 1)
		return 0;
	use_imds = data[0] & 4;
	use_arn = data[0] & 8;
	fuzz_provider("aws", use_imds ? imds : env, 3, use_arn ? ARN : "alias/k",
		      "alias/k2", SECRET, wrapped, sizeof(wrapped), data, size);
	cmk_aws_classify(400 + data[0], "", (const char *)data + 1, size - 1, &err);
	if (strnlen(err.code, sizeof(err.code)) == sizeof(err.code) ||
	    strnlen(err.message, sizeof(err.message)) == sizeof(err.message))
		abort();
	cmk_aws_key_state_reason(200, NULL, (const char *)data + 1, size - 1,
				 state, sizeof(state));
	return 0;
}
