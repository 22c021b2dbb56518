// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_gcp.c - the gcp provider's handling of Cloud KMS and token
 * answers: the metadata server's access token, encrypt/decrypt results
 * with their CRC32C integrity fields, error classification and the
 * key-version state confirmation; and the exposed parsers: error bodies,
 * token answers, service-account key files.
 *
 * Input: byte 0 picks the operation (bits 0-1); the rest answers the
 * requests (fuzz.h) and also goes to the exposed parsers.  Oracles:
 * ASan/UBSan and fuzz_provider()'s; an accepted token is "Bearer <t>".
 */
#include <stdlib.h>
#include <string.h>

#include "core/secret.h"
#include "kms/gcp/gcp_auth.h"
#include "kms/gcp/provider_gcp.h"
#include "fuzz.h"

#define KEY "projects/p1/locations/global/keyRings/r1/cryptoKeys/k1"

static void parsers(const uint8_t *data, size_t size)
{
	struct cmk_secret *bearer = NULL;
	struct cmk_gcp_error err;
	struct cmk_gcp_sa_key k;
	char state[64];
	time_t exp;
	struct cmk_err e;
	char *s = fuzz_cstr(data, size);

	cmk_gcp_classify(400, s, size, &err);
	cmk_gcp_version_state_reason(200, s, size, state, sizeof(state));
	if (cmk_gcp_token_parse(s, size, 1700000000, &bearer, &exp, &e) == 0 &&
	    (cmk_secret_len(bearer) < 8 ||
	     memcmp(cmk_secret_data(bearer), "Bearer ", 7)))
		abort();
	cmk_secret_free(&bearer);
	memset(&k, 0, sizeof(k));
	if (cmk_gcp_sa_key_parse(s, size, &k, &e) == 0)
		cmk_gcp_sa_key_free(&k);
	cmk_gcp_key_name_ok(s);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cmk_kv kv[] = {
		{ "credentials", "metadata", 1 },
		{ "metadata_endpoint", "http://169.254.169.254", 2 },
		{ "max_attempts", "2", 3 },
	};

	static const unsigned char wrapped[113] = { 0x0a, 0x24, 0x00, 0x8e };

	if (size < 1)
		return 0;
	fuzz_provider("gcp", kv, 3, KEY, KEY, NULL, wrapped, sizeof(wrapped),
		      data, size);
	parsers(data + 1, size - 1);
	return 0;
}
