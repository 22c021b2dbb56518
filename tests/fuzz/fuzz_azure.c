// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_azure.c - the azure provider's handling of Key Vault and token
 * answers: the managed-identity (IMDS) token answer, the vault's 401
 * challenge (WWW-Authenticate), wrapkey/unwrapkey results, error
 * classification and the key-state confirmation; and the parsers the
 * provider exposes: error bodies, challenge headers, token answers, key
 * URLs and the wrapped-key blob.
 *
 * Input: byte 0 picks the operation (bits 0-1) and the key (bit 2: Key
 * Vault or Managed HSM); the rest answers the requests (fuzz.h) and also
 * goes to the exposed parsers.  Oracles: ASan/UBSan, fuzz_provider()'s,
 * and a blob that unpacks packs again to the same bytes.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kms/azure/azure_auth.h"
#include "kms/azure/provider_azure.h"
#include "fuzz.h"

#define VERSION "0123456789abcdef0123456789abcdef"
#define KV_KEY "https://fuzz.vault.azure.net/keys/k1/" VERSION
#define HSM_KEY "https://fuzz.managedhsm.azure.net/keys/k1/" VERSION

static void parsers(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size), code[64], msg[192], ver[CMK_AZURE_VERSION_MAX + 1];
	struct cmk_azure_error err;
	struct cmk_azure_challenge ch;
	struct cmk_azure_token t;
	struct cmk_azure_key k;
	enum cmk_azure_alg alg;
	const unsigned char *ct;
	unsigned char *again = NULL;
	size_t ct_len, again_len;
	struct cmk_err e;

	cmk_azure_classify(400, s, size, &err);
	cmk_azure_key_state_reason(200, s, size, "unwrapkey", 1700000000, msg, sizeof(msg));
	cmk_azure_token_classify(true, 400, s, size, code, sizeof(code), msg, sizeof(msg));
	cmk_azure_token_classify(false, 401, s, size, code, sizeof(code), msg, sizeof(msg));
	if (cmk_azure_challenge_parse(s, &ch, &e) == 0)
		cmk_azure_challenge_resource_ok("fuzz.vault.azure.net", ch.resource);
	memset(&t, 0, sizeof(t));
	cmk_azure_token_parse(s, size, 1700000000, &t, &e);
	cmk_azure_token_free(&t);
	cmk_azure_key_parse(s, &k, &e);
	if (cmk_azure_blob_unpack(data, size, &alg, ver, &ct, &ct_len, &e) == 0) {
		if (cmk_azure_blob_pack(alg, ver, ct, ct_len, &again, &again_len, &e) ||
		    again_len != size || memcmp(again, data, size))
			abort();
		free(again);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cmk_kv kv[] = {
		{ "credentials", "managed_identity", 1 },
		{ "imds_endpoint", "http://169.254.169.254", 2 },
		{ "max_attempts", "2", 3 },
	};

	static unsigned char *blob;
	static size_t blob_len;
	struct cmk_err e;

	/* What wrapkey made of a KEK: the key's version and 40 bytes. */
	if (!blob) {
		static const unsigned char ct[40] = { 0xa6, 0xa6, 0x17 };

		if (cmk_azure_blob_pack(CMK_AZURE_ALG_A256KW, VERSION, ct,
					sizeof(ct), &blob, &blob_len, &e))
			abort();
	}
	if (size < 1)
		return 0;
	fuzz_provider("azure", kv, 3, data[0] & 4 ? HSM_KEY : KV_KEY, KV_KEY,
		      NULL, blob, blob_len, data, size);
	parsers(data + 1, size - 1);
	return 0;
}
