/* SPDX-License-Identifier: GPL-2.0 */
/*
 * esdk_keyring.h - the storage wrapping key and the raw-AES-keyring EDK.
 *
 * Sealed objects (esdk.h) carry their data key as an encrypted data key
 * (EDK) in the format of the AWS Encryption SDK's raw AES keyring, under a
 * wrapping key derived from the KEK, so that any ESDK implementation given
 * that wrapping key can open them (break-glass, Documentation/storage.rst).
 *
 * Wrapping key (the one derivation, cmk_esdk_wrapkey_derive()):
 *
 *   HKDF-SHA256(IKM  = KEK (32 bytes),
 *               salt = none (RFC 5869: HashLen zero bytes),
 *               info = "dm-cmk storage wrapping key v1" | 0x00 |
 *                      kek_id (16 bytes, as in the envelope) |
 *                      kek_version (u32 big-endian),
 *               L    = 32)
 *
 * The KEK itself never wraps anything in this format: the label keeps
 * the two uses apart, kek_id and kek_version keep KEKs and their versions
 * apart.
 *
 * Keyring identity: key namespace (EDK Key Provider ID) "dm-cmk", key name
 * "kek/<kek_id as UUID>/v<kek_version>", which also tells an opener which
 * KEK version sealed an object.
 *
 * EDK (raw AES keyring, AES-256-GCM, IV 12, tag 16):
 *   Key Provider Information = key name | tag length in bits (u32 BE, 128)
 *                              | IV length (u32 BE, 12) | IV (12)
 *   Encrypted Data Key       = AES-GCM(data key) (32) | tag (16)
 *   AAD                      = the serialised encryption context (ESDK
 *                              structures.md, possibly empty)
 */
#ifndef CMK_ESDK_KEYRING_H
#define CMK_ESDK_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/codec.h"
#include "core/err.h"
#include "core/secret.h"

#define CMK_ESDK_KEY_NAMESPACE	"dm-cmk"
#define CMK_ESDK_WRAPKEY_LABEL	"dm-cmk storage wrapping key v1"
#define CMK_ESDK_WRAPKEY_LEN	32
#define CMK_ESDK_DATA_KEY_LEN	32
#define CMK_ESDK_KEY_NAME_MAX	64
#define CMK_ESDK_EDK_IV_LEN	12
#define CMK_ESDK_EDK_TAG_LEN	16

/**
 * struct cmk_esdk_wrapkey - a raw AES keyring: its wrapping key and name
 * @key: the 32-byte wrapping key (locked, wiped)
 * @name: the keyring's key name, "kek/<uuid>/v<version>"
 */
struct cmk_esdk_wrapkey {
	struct cmk_secret *key;
	char name[CMK_ESDK_KEY_NAME_MAX];
};

/**
 * struct cmk_esdk_edk - one Encrypted Data Key entry as it is serialised
 * @provider_id: Key Provider ID bytes (not NUL-terminated)
 * @info: Key Provider Information bytes
 * @ct: Encrypted Data Key bytes
 */
struct cmk_esdk_edk {
	unsigned char *provider_id;
	size_t provider_id_len;
	unsigned char *info;
	size_t info_len;
	unsigned char *ct;
	size_t ct_len;
};

/*
 * cmk_esdk_wrapkey_derive() - the storage wrapping key of KEK @kek, whose
 * envelope names it @kek_id, version @kek_version (see above).
 */
int cmk_esdk_wrapkey_derive(const struct cmk_secret *kek,
			    const uint8_t kek_id[CMK_UUID_LEN],
			    uint32_t kek_version, struct cmk_esdk_wrapkey *wk,
			    struct cmk_err *e);

/* cmk_esdk_wrapkey_free() - wipe and release; safe on a zeroed struct. */
void cmk_esdk_wrapkey_free(struct cmk_esdk_wrapkey *wk);

/*
 * cmk_esdk_edk_wrap() - wrap @data_key under @wk with AAD @ec (the
 * serialised encryption context, @ec_len 0 for an empty one).
 */
int cmk_esdk_edk_wrap(const struct cmk_esdk_wrapkey *wk,
		      const struct cmk_secret *data_key,
		      const unsigned char *ec, size_t ec_len,
		      struct cmk_esdk_edk *edk, struct cmk_err *e);

/*
 * cmk_esdk_edk_for() - whether @edk names this keyring: Key Provider ID
 * "dm-cmk", and Key Provider Information that parses with @wk's key name,
 * tag length 128 and IV length 12.
 */
bool cmk_esdk_edk_for(const struct cmk_esdk_wrapkey *wk,
		      const struct cmk_esdk_edk *edk);

/*
 * cmk_esdk_edk_unwrap() - the data key of an @edk for which
 * cmk_esdk_edk_for() is true; -EBADMSG if it does not authenticate
 * (another wrapping key, another encryption context, tampering).
 */
int cmk_esdk_edk_unwrap(const struct cmk_esdk_wrapkey *wk,
			const struct cmk_esdk_edk *edk,
			const unsigned char *ec, size_t ec_len,
			struct cmk_secret **data_key, struct cmk_err *e);

/*
 * cmk_esdk_edk_key_name() - the key name an @edk of namespace "dm-cmk"
 * claims (unauthenticated: it only says which wrapping key to try), into
 * @name; -ENOENT if the EDK is of another namespace or has no such name.
 */
int cmk_esdk_edk_key_name(const struct cmk_esdk_edk *edk,
			  char name[CMK_ESDK_KEY_NAME_MAX]);

/*
 * cmk_esdk_key_name_parse() - split "kek/<uuid>/v<version>" (exactly as
 * cmk_esdk_wrapkey_derive() writes it); -EINVAL if it is not one.
 */
int cmk_esdk_key_name_parse(const char *name, uint8_t kek_id[CMK_UUID_LEN],
			    uint32_t *kek_version);

void cmk_esdk_edk_free(struct cmk_esdk_edk *edk);

#endif /* CMK_ESDK_KEYRING_H */
