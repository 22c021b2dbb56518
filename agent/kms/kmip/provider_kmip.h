/* SPDX-License-Identifier: GPL-2.0 */
/*
 * provider_kmip.h - the "kmip" provider: a KMIP key manager over mutual TLS.
 *
 * key_ref is the Name of an AES-256 key on the KMIP server.
 *   unwrap  = Locate (by Name) + Decrypt  (AES-GCM, the AAD is the
 *             canonical encryption context; IV and tag from the envelope)
 *   wrap    = Locate + Encrypt            (a fresh random 96-bit IV)
 *   check   = a real unwrap whose result is wiped (the default)
 * The wrapped KEK is  IV (12) || ciphertext (32) || tag (16).
 * The protocol version is negotiated once per connection with Discover
 * Versions (1.4, 1.3, 1.2 offered); Encrypt and Decrypt with AAD need 1.4.
 * When a Decrypt is refused with Permission Denied, Get Attributes (State)
 * tells a revoked or destroyed key from an access-policy denial.
 * Settings and the error mapping: Documentation/kmip.rst.
 */
#ifndef CMK_PROVIDER_KMIP_H
#define CMK_PROVIDER_KMIP_H

#include "kms/provider.h"

extern const struct cmk_provider_ops cmk_provider_kmip_ops;

#define CMK_KMIP_IV_LEN		12
#define CMK_KMIP_TAG_LEN	16
#define CMK_KMIP_PORT		"5696"

#endif /* CMK_PROVIDER_KMIP_H */
