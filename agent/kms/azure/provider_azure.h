/* SPDX-License-Identifier: GPL-2.0 */
/*
 * provider_azure.h - the "azure" provider: Azure Key Vault and Managed HSM
 * (REST api-version 7.4, Entra ID bearer tokens; see azure_auth.h).
 *
 * key_ref is a key URL, https://VAULT/keys/NAME[/VERSION].
 *   wrap    = POST {vault}/keys/NAME/VERSION/wrapkey    {"alg", "value"}
 *   unwrap  = POST {vault}/keys/NAME/VERSION/unwrapkey  {"alg", "value"}
 *   check   = a real unwrapkey whose result is wiped (Key Vault still
 *             wraps with a disabled key: only unwrap proves the CMK)
 * alg: RSA-OAEP-256 (vault RSA keys) or A256KW (Managed HSM AES keys),
 * from the "algorithm" setting, else by host (*.managedhsm.* -> A256KW).
 *
 * Key Vault's wrapkey takes no additional authenticated data, so the
 * encryption context is bound inside the wrapped bytes: Key Vault wraps
 *     KEK || SHA-256(canonical encryption context)      (encctx.h)
 * and unwrap refuses (definitive, invalid ciphertext) a result whose
 * digest does not match the envelope's context.
 *
 * The envelope's wrapped_kek (provider-defined bytes) is:
 *     u8 format (1) | u8 alg (1 RSA-OAEP-256, 2 A256KW) |
 *     u8 n | n bytes key version (as Key Vault's kid names it) |
 *     the Key Vault "value" (ciphertext)
 * so a versionless key_ref keeps working after the key is rotated: the
 * version that wrapped is the version that unwraps.
 * Settings and the error mapping: Documentation/azure.rst.
 */
#ifndef CMK_PROVIDER_AZURE_H
#define CMK_PROVIDER_AZURE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/err.h"
#include "kms/provider.h"

extern const struct cmk_provider_ops cmk_provider_azure_ops;

#define CMK_AZURE_API_VERSION	"7.4"
#define CMK_AZURE_VERSION_MAX	64
#define CMK_AZURE_CT_MAX	1024	/* RSA-8192 ciphertext; A256KW is smaller */
#define CMK_AZURE_BLOB_FORMAT	1

enum cmk_azure_alg {
	CMK_AZURE_ALG_AUTO = 0,
	CMK_AZURE_ALG_RSA_OAEP_256 = 1,
	CMK_AZURE_ALG_A256KW = 2,
};

/**
 * struct cmk_azure_key - a parsed key URL
 * @vault: "https://host[:port]" (as given, no trailing slash)
 * @host: host without port
 * @name: key name
 * @version: key version, "" for "the current version"
 */
struct cmk_azure_key {
	char vault[300];
	char host[256];
	char name[128];
	char version[CMK_AZURE_VERSION_MAX + 1];
};

/* cmk_azure_key_parse() - https://HOST[:PORT]/keys/NAME[/VERSION][/] */
int cmk_azure_key_parse(const char *url, struct cmk_azure_key *k,
			struct cmk_err *e);

/**
 * struct cmk_azure_error - what a Key Vault error answer said
 * @code: error.code ("Forbidden", "KeyNotFound", "Throttled", ...)
 * @inner: error.innererror.code ("KeyDisabled", "ForbiddenByRbac", ...)
 * @message: error.message
 */
struct cmk_azure_error {
	char code[64];
	char inner[64];
	char message[192];
	bool confirm;
};

/*
 * cmk_azure_classify() - the reason for a Key Vault answer: known codes
 * (inner code first) as in Documentation/azure.rst, else by status (401,
 * 403 denied, 404 not found, 429 throttled, 5xx unavailable, other 4xx
 * local).  CMK_R_NONE for 2xx.  A plain 400 BadParameter ("the request is
 * malformed", and also what a ciphertext that does not decrypt gets) is
 * local with @out->confirm set: the key's own state decides, see
 * cmk_azure_key_state_reason().
 */
enum cmk_reason cmk_azure_classify(long status, const char *body, size_t len,
				   struct cmk_azure_error *out);

/*
 * cmk_azure_key_state_reason() - the reason for an ambiguous answer to
 * operation @op ("unwrapKey", "wrapKey") once GET of the key version
 * answered @status / @body at time @now: attributes.enabled false, an
 * "exp" in the past or an "nbf" in the future, or key.key_ops without @op
 * -> disabled (the key owner made it unusable); 404 -> not_found; a usable
 * key or any other answer -> local (nothing confirmed: not a revocation).
 * @what receives a short description ("enabled", "disabled", "expired",
 * "not yet valid", "no unwrapKey in key_ops", "HTTP 403 ForbiddenByRbac").
 */
enum cmk_reason cmk_azure_key_state_reason(long status, const char *body,
					   size_t len, const char *op, time_t now,
					   char *what, size_t what_len);

/* The envelope bytes above.  *out is malloc'd. */
int cmk_azure_blob_pack(enum cmk_azure_alg alg, const char *version,
			const unsigned char *ct, size_t ct_len,
			unsigned char **out, size_t *out_len, struct cmk_err *e);
/* Pointers into @blob; @version gets a NUL-terminated copy. */
int cmk_azure_blob_unpack(const unsigned char *blob, size_t len,
			  enum cmk_azure_alg *alg,
			  char version[CMK_AZURE_VERSION_MAX + 1],
			  const unsigned char **ct, size_t *ct_len,
			  struct cmk_err *e);

const char *cmk_azure_alg_name(enum cmk_azure_alg alg);

#endif /* CMK_PROVIDER_AZURE_H */
