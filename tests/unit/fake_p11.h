/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fake_p11.h - control of the fake PKCS#11 module (fake_p11.c) that
 * test_provider_pkcs11 loads by path, like any HSM module.  The test finds
 * these functions with dlsym() on the same module.
 *
 * One slot (FAKE_P11_SLOT) with token "fake", user PIN FAKE_P11_PIN, one
 * AES-256 key (label "kek", id 01, value FAKE_P11_KEY) unless changed.
 * AES-GCM is OpenSSL's; a tag mismatch answers st->tag_fail_rv.
 */
#ifndef CMK_FAKE_P11_H
#define CMK_FAKE_P11_H

#include <stdbool.h>
#include <stddef.h>

#define FAKE_P11_SLOT	7
#define FAKE_P11_PIN	"1234"
#define FAKE_P11_KEY	"0123456789abcdef0123456789abcdef"

struct fake_p11_state {
	/* knobs */
	bool token_present;
	bool key_present;
	bool key_decrypt;		/* CKA_DECRYPT */
	bool pin_locked;		/* CKF_USER_PIN_LOCKED */
	unsigned long tag_fail_rv;	/* CKR_ENCRYPTED_DATA_INVALID by default */
	/* the next @fail_count calls of function @fail_fn return @fail_rv */
	char fail_fn[32];
	unsigned long fail_rv;
	int fail_count;
	/* counters */
	int n_initialize, n_finalize, n_open, n_close, n_login, n_decrypt,
	    n_encrypt;
	/* what the last C_EncryptInit/C_DecryptInit got */
	unsigned char last_aad[4096];
	size_t last_aad_len;
	unsigned long last_iv_len, last_iv_bits, last_tag_bits;
};

typedef struct fake_p11_state *(*fake_p11_state_fn)(void);
typedef void (*fake_p11_reset_fn)(void);
/* Make every open session handle invalid (a device reset). */
typedef void (*fake_p11_drop_sessions_fn)(void);

#endif /* CMK_FAKE_P11_H */
