/* SPDX-License-Identifier: GPL-2.0 */
/*
 * provider_gcp.h - the "gcp" provider: Google Cloud KMS (REST v1).
 *
 * key_ref is a CryptoKey resource name,
 * "projects/P/locations/L/keyRings/R/cryptoKeys/K" (purpose
 * ENCRYPT_DECRYPT); Cloud KMS picks the primary version to encrypt and
 * finds the version from the ciphertext to decrypt.
 *   unwrap  = POST v1/{key_ref}:decrypt  {ciphertext, additionalAuthenticatedData,
 *                                         ciphertextCrc32c, additionalAuthenticatedDataCrc32c}
 *   wrap    = POST v1/{key_ref}:encrypt  {plaintext, additionalAuthenticatedData,
 *                                         plaintextCrc32c, additionalAuthenticatedDataCrc32c}
 *   check   = a real decrypt whose result is wiped (the default)
 * The additional authenticated data is the envelope's encryption context
 * in its canonical form (encctx.h).  Integrity both ways: the CRC32C of
 * every byte field sent travels with it (Cloud KMS refuses a mismatch),
 * and answers are verified: encrypt must report verifiedPlaintextCrc32c
 * and verifiedAdditionalAuthenticatedDataCrc32c and carry a ciphertextCrc32c
 * that matches, decrypt a plaintextCrc32c that matches, and the key
 * version named in an encrypt answer must belong to key_ref.
 * Tokens: gcp_auth.h.  Settings and the error mapping: Documentation/gcp.rst.
 */
#ifndef CMK_PROVIDER_GCP_H
#define CMK_PROVIDER_GCP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "kms/provider.h"

extern const struct cmk_provider_ops cmk_provider_gcp_ops;

#define CMK_GCP_ENDPOINT_DEFAULT "https://cloudkms.googleapis.com"
/* Cloud KMS ciphertexts are at most 64 KiB plaintext plus overhead. */
#define CMK_GCP_CIPHERTEXT_MAX	8192

/**
 * struct cmk_gcp_error - what a google.rpc.Status error answer said
 * @status: the canonical code name ("FAILED_PRECONDITION"), "" if none
 * @message: its message, "" if none
 * @confirm: the answer is ambiguous (FAILED_PRECONDITION that names no
 *	non-enabled state, as Cloud EKM's do): the reason returned is
 *	provisional (transient) and the key version's state decides, see
 *	cmk_gcp_version_state_reason()
 * @version: the CryptoKeyVersion name the answer mentions (message or
 *	google.rpc.PreconditionFailure details), "" if none
 */
struct cmk_gcp_error {
	char status[48];
	char message[200];
	bool confirm;
	char version[320];
};

/*
 * cmk_gcp_classify() - the reason for an HTTP answer of Cloud KMS, from
 * the body's {"error": {"code", "message", "status"}} (google.rpc.Status
 * in JSON): FAILED_PRECONDITION whose message names the version's state
 * ("current state is: X") -> disabled, or destroyed for DESTROYED,
 * DESTROY_SCHEDULED and the external destruction states; any other
 * FAILED_PRECONDITION (Cloud EKM's, with google.rpc.PreconditionFailure
 * details) -> unavailable with @out->confirm set; PERMISSION_DENIED
 * and UNAUTHENTICATED -> denied, NOT_FOUND -> not found, INVALID_ARGUMENT
 * -> invalid ciphertext for "Decryption failed", transient for a checksum
 * mismatch (corruption in transit), local otherwise; UNAVAILABLE,
 * INTERNAL, ABORTED, UNKNOWN -> unavailable, RESOURCE_EXHAUSTED ->
 * throttled, DEADLINE_EXCEEDED -> timeout.  Without a status, by HTTP code
 * (429 throttled, 5xx unavailable, 401/403 denied, 3xx network, else
 * local: a 404 without a Status body is a wrong endpoint, not a missing
 * key).  CMK_R_NONE for 2xx.
 */
enum cmk_reason cmk_gcp_classify(long status, const char *body, size_t body_len,
				 struct cmk_gcp_error *out);

/*
 * cmk_gcp_version_state_reason() - the reason for an ambiguous answer once
 * GET of the CryptoKeyVersion answered @status / @body: state DISABLED ->
 * disabled (Cloud EKM also disables a version whose external key refused
 * it); DESTROYED, DESTROY_SCHEDULED, PENDING_EXTERNAL_DESTRUCTION,
 * EXTERNAL_DESTRUCTION_FAILED -> destroyed; ENABLED or anything else ->
 * unavailable (the version is fine: the external key manager failed).  A
 * GET error: NOT_FOUND -> not_found, anything else -> unavailable (nothing
 * confirmed).  @state receives the state ("" if none).
 */
enum cmk_reason cmk_gcp_version_state_reason(long status, const char *body,
					     size_t body_len, char *state,
					     size_t state_len);

/* cmk_gcp_key_name_ok() - is @ref a CryptoKey resource name (not a version)? */
int cmk_gcp_key_name_ok(const char *ref);

#endif /* CMK_PROVIDER_GCP_H */
