/* SPDX-License-Identifier: GPL-2.0 */
/*
 * provider_pkcs11.h - the "pkcs11" provider: an AES key in an HSM or token
 * reached through any PKCS#11 module.
 *
 * key_ref    an RFC 7512 URI (p11uri.h) naming the token and the key, e.g.
 *            pkcs11:token=cmk;object=kek?module-path=/usr/lib/softhsm/libsofthsm2.so
 * module     dlopen()ed by path (setting "module" or the URI's module-path;
 *            if both are given they must agree), C_GetFunctionList,
 *            C_Initialize with CKF_OS_LOCKING_OK; one load per process,
 *            shared and reference-counted.
 * PIN        the first of: setting pin_file, the environment variable
 *            named by setting pin_env, the URI's pin-source, the environment
 *            variable CMK_PKCS11_PIN.  Read at every login, held in locked
 *            memory, wiped after C_Login.  A PIN the token rejected is not
 *            presented again (only its SHA-256 is kept) until it changes:
 *            tokens lock the PIN after a few failures.
 * wrap       C_Encrypt, CKM_AES_GCM, 96-bit IV from getrandom(), AAD = the
 *            canonical encryption context (encctx.h), 128-bit tag.
 *            Wrapped form: 0x01 | IV (12) | ciphertext | tag (16).
 * unwrap     C_Decrypt of the same, into locked memory.
 * sessions   one read-only session per provider, logged in; closed and
 *            opened again (slot looked up again, login again) after a
 *            session or device error, and the call retried once.  The key
 *            is looked up by label/id on every call, so a key destroyed
 *            and restored is seen at once.
 * errors     cmk_p11_reason() below; Documentation/pkcs11.rst has the table.
 */
#ifndef CMK_PROVIDER_PKCS11_H
#define CMK_PROVIDER_PKCS11_H

#include "core/err.h"
#include "kms/provider.h"

#define CMK_P11_IV_LEN		12
#define CMK_P11_TAG_LEN		16
#define CMK_P11_WRAP_VERSION	0x01
#define CMK_P11_OVERHEAD	(1 + CMK_P11_IV_LEN + CMK_P11_TAG_LEN)
#define CMK_P11_PIN_MAX		256
#define CMK_P11_PIN_ENV		"CMK_PKCS11_PIN"

extern const struct cmk_provider_ops cmk_provider_pkcs11_ops;

/*
 * cmk_p11_reason() - the reason (and so the class) for a CK_RV that ends a
 * call after the one retry on a fresh session:
 *   definitive: key not permitted (CKA_DECRYPT/CKA_ENCRYPT false), key or
 *     object handle gone, ciphertext/tag rejected, PIN incorrect, locked,
 *     expired or not initialised;
 *   transient: device and session errors, token not present, general
 *     and function failures, out of memory on the device;
 *   local: everything else (bad arguments, mechanism not supported, ...).
 * CKR_OK gives CMK_R_NONE.
 */
enum cmk_reason cmk_p11_reason(unsigned long rv);

/* cmk_p11_rv_name() - "CKR_PIN_INCORRECT", or "CKR_0x..." if unknown. */
const char *cmk_p11_rv_name(unsigned long rv, char *buf, size_t len);

#endif /* CMK_PROVIDER_PKCS11_H */
