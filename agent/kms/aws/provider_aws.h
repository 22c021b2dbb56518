/* SPDX-License-Identifier: GPL-2.0 */
/*
 * provider_aws.h - the "aws" provider: AWS KMS (JSON 1.1 protocol, SigV4).
 *
 * key_ref is a key id, key ARN, alias name ("alias/x") or alias ARN.
 *   unwrap  = Decrypt  {CiphertextBlob, KeyId, EncryptionContext}
 *   wrap    = Encrypt  {KeyId, Plaintext, EncryptionContext}
 *   check   = a real Decrypt whose result is wiped (the default)
 *   rewrap  = ReEncrypt (CMK rotation without the KEK leaving KMS)
 * The envelope's encryption context is sent as EncryptionContext (a map).
 * Settings and the error mapping: Documentation/aws.rst.
 */
#ifndef CMK_PROVIDER_AWS_H
#define CMK_PROVIDER_AWS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "kms/provider.h"

extern const struct cmk_provider_ops cmk_provider_aws_ops;

/* Largest CiphertextBlob AWS KMS returns (its documented limit). */
#define CMK_AWS_CIPHERTEXT_MAX	6144

/**
 * struct cmk_aws_error - what an AWS error answer said
 * @code: the error code ("AccessDeniedException"), "" if none was found
 * @message: its message, "" if none
 * @confirm: the code is ambiguous (KMSInvalidStateException): the reason
 *	returned is provisional (transient) and DescribeKey decides, see
 *	cmk_aws_key_state_reason()
 */
struct cmk_aws_error {
	char code[96];
	char message[192];
	bool confirm;
};

/*
 * cmk_aws_classify() - the reason for an HTTP answer of AWS KMS: the code
 * is taken from the x-amzn-ErrorType header (@error_type, may be NULL),
 * else the JSON body's "__type" (or "code"), else an XML <Code> element
 * (STS/IAM-style answers some front ends and emulators give); a prefix up
 * to "#" and a suffix from ":" are dropped.  Known codes map as in
 * Documentation/aws.rst; unknown ones by status (403 denied, 429
 * throttled, 5xx unavailable, other 4xx local).  CMK_R_NONE for 2xx.
 */
enum cmk_reason cmk_aws_classify(long status, const char *error_type,
				 const char *body, size_t body_len,
				 struct cmk_aws_error *out);

/*
 * cmk_aws_key_state_reason() - the reason for an ambiguous error once
 * DescribeKey answered @status / @body: KeyState Disabled, PendingImport
 * (key material deleted or expired) and Unavailable (custom key store
 * disconnected) -> disabled; PendingDeletion, PendingReplicaDeletion ->
 * destroyed; Enabled, Creating, Updating -> unavailable (the key is fine,
 * its key store failed).  A DescribeKey error: NotFoundException ->
 * not_found, anything else -> unavailable (nothing confirmed).  @state
 * receives the KeyState ("" if none).
 */
enum cmk_reason cmk_aws_key_state_reason(long status, const char *error_type,
					 const char *body, size_t body_len,
					 char *state, size_t state_len);

/*
 * cmk_aws_endpoint() - the KMS endpoint URL for @region: kms[-fips].REGION.
 * amazonaws.com, or kms[-fips].REGION.api.aws with @dualstack; China
 * regions (cn-*) end in amazonaws.com.cn.
 */
int cmk_aws_endpoint(const char *region, bool fips, bool dualstack,
		     char *out, size_t len, struct cmk_err *e);

#endif /* CMK_PROVIDER_AWS_H */
