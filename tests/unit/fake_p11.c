// SPDX-License-Identifier: GPL-2.0
/*
 * fake_p11.c - a small PKCS#11 module for test_provider_pkcs11 (see
 * fake_p11.h): just what the pkcs11 provider calls, with fault injection
 * (any function's return value), session invalidation, token removal,
 * CKA_DECRYPT and PIN state, and a record of the GCM parameters it got.
 * AES-GCM is OpenSSL's, so the crypto is an independent implementation.
 * Test-only; never installed.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

#include "fake_p11.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_SESS 32

static struct fake_p11_state st;
static bool initialised, logged_in;
static struct {
	bool open;
	int find_pos;		/* -1: no find active */
	bool find_match;
	int op;			/* 0 none, 1 encrypt, 2 decrypt */
	unsigned char iv[16];
	size_t iv_len;
	unsigned char aad[4096];
	size_t aad_len;
} sess[MAX_SESS];

#define KEY_HANDLE 42

EXPORT struct fake_p11_state *fake_p11_state(void);
EXPORT void fake_p11_reset(void);
EXPORT void fake_p11_drop_sessions(void);

struct fake_p11_state *fake_p11_state(void)
{
	return &st;
}

void fake_p11_reset(void)
{
	memset(&st, 0, sizeof(st));
	st.token_present = true;
	st.key_present = true;
	st.key_decrypt = true;
	st.tag_fail_rv = CKR_ENCRYPTED_DATA_INVALID;
	memset(sess, 0, sizeof(sess));
	logged_in = false;
}

void fake_p11_drop_sessions(void)
{
	for (int i = 0; i < MAX_SESS; i++)
		sess[i].open = false;
	logged_in = false;
}

/* Fault injection: does @fn fail now? */
static bool inject(const char *fn, CK_RV *rv)
{
	if (st.fail_count > 0 && !strcmp(st.fail_fn, fn)) {
		st.fail_count--;
		*rv = st.fail_rv;
		return true;
	}
	return false;
}

#define ENTER(fn) do { CK_RV _rv; \
	if (inject(fn, &_rv)) return _rv; \
	if (!initialised && strcmp(fn, "C_Initialize")) return CKR_CRYPTOKI_NOT_INITIALIZED; \
} while (0)

static bool sess_ok(CK_SESSION_HANDLE h)
{
	return h >= 1 && h <= MAX_SESS && sess[h - 1].open;
}

#define SESSION(h) do { if (!st.token_present) return CKR_DEVICE_REMOVED; \
	if (!sess_ok(h)) return CKR_SESSION_HANDLE_INVALID; } while (0)

static void pad(unsigned char *dst, size_t n, const char *s)
{
	memset(dst, ' ', n);
	memcpy(dst, s, strlen(s));
}

static CK_RV f_Initialize(void *args)
{
	CK_C_INITIALIZE_ARGS *a = args;

	ENTER("C_Initialize");
	if (initialised)
		return CKR_CRYPTOKI_ALREADY_INITIALIZED;
	if (!a || !(a->flags & CKF_OS_LOCKING_OK))
		return CKR_ARGUMENTS_BAD;	/* the provider must ask for OS locking */
	initialised = true;
	st.n_initialize++;
	return CKR_OK;
}

static CK_RV f_Finalize(void *r)
{
	(void)r;
	ENTER("C_Finalize");
	initialised = false;
	fake_p11_drop_sessions();
	st.n_finalize++;
	return CKR_OK;
}

static CK_RV f_GetInfo(CK_INFO *i)
{
	ENTER("C_GetInfo");
	memset(i, 0, sizeof(*i));
	i->cryptokiVersion.major = 2;
	i->cryptokiVersion.minor = 40;
	pad(i->manufacturerID, sizeof(i->manufacturerID), "dm-cmk tests");
	pad(i->libraryDescription, sizeof(i->libraryDescription), "fake module");
	i->libraryVersion.major = 1;
	i->libraryVersion.minor = 2;
	return CKR_OK;
}

static CK_RV f_GetSlotList(CK_BBOOL present, CK_SLOT_ID *list, CK_ULONG *n)
{
	CK_ULONG have = (!present || st.token_present) ? 1 : 0;

	ENTER("C_GetSlotList");
	if (list) {
		if (*n < have)
			return CKR_BUFFER_TOO_SMALL;
		if (have)
			list[0] = FAKE_P11_SLOT;
	}
	*n = have;
	return CKR_OK;
}

static CK_RV f_GetSlotInfo(CK_SLOT_ID id, CK_SLOT_INFO *si)
{
	ENTER("C_GetSlotInfo");
	if (id != FAKE_P11_SLOT)
		return CKR_SLOT_ID_INVALID;
	memset(si, 0, sizeof(*si));
	pad(si->slotDescription, sizeof(si->slotDescription), "fake slot");
	pad(si->manufacturerID, sizeof(si->manufacturerID), "dm-cmk tests");
	si->flags = CKF_REMOVABLE_DEVICE | (st.token_present ? CKF_TOKEN_PRESENT : 0);
	return CKR_OK;
}

static CK_RV f_GetTokenInfo(CK_SLOT_ID id, CK_TOKEN_INFO *ti)
{
	ENTER("C_GetTokenInfo");
	if (id != FAKE_P11_SLOT)
		return CKR_SLOT_ID_INVALID;
	if (!st.token_present)
		return CKR_TOKEN_NOT_PRESENT;
	memset(ti, 0, sizeof(*ti));
	pad(ti->label, sizeof(ti->label), "fake");
	pad(ti->manufacturerID, sizeof(ti->manufacturerID), "dm-cmk tests");
	pad(ti->model, sizeof(ti->model), "fake");
	pad(ti->serialNumber, sizeof(ti->serialNumber), "F00D");
	ti->flags = CKF_LOGIN_REQUIRED | CKF_TOKEN_INITIALIZED |
		    CKF_USER_PIN_INITIALIZED | (st.pin_locked ? CKF_USER_PIN_LOCKED : 0);
	return CKR_OK;
}

static CK_RV f_OpenSession(CK_SLOT_ID id, CK_FLAGS fl, void *app, CK_NOTIFY cb,
			   CK_SESSION_HANDLE *h)
{
	(void)app;
	(void)cb;
	ENTER("C_OpenSession");
	if (id != FAKE_P11_SLOT)
		return CKR_SLOT_ID_INVALID;
	if (!st.token_present)
		return CKR_TOKEN_NOT_PRESENT;
	if (!(fl & CKF_SERIAL_SESSION))
		return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
	for (int i = 0; i < MAX_SESS; i++)
		if (!sess[i].open) {
			memset(&sess[i], 0, sizeof(sess[i]));
			sess[i].open = true;
			sess[i].find_pos = -1;
			*h = (CK_SESSION_HANDLE)i + 1;
			st.n_open++;
			return CKR_OK;
		}
	return CKR_SESSION_COUNT;
}

static CK_RV f_CloseSession(CK_SESSION_HANDLE h)
{
	bool any = false;

	ENTER("C_CloseSession");
	if (!sess_ok(h))
		return CKR_SESSION_HANDLE_INVALID;
	sess[h - 1].open = false;
	st.n_close++;
	for (int i = 0; i < MAX_SESS; i++)
		any |= sess[i].open;
	if (!any)
		logged_in = false;	/* the last session closed logs out */
	return CKR_OK;
}

static CK_RV f_Login(CK_SESSION_HANDLE h, CK_USER_TYPE u, CK_UTF8CHAR *pin,
		    CK_ULONG n)
{
	ENTER("C_Login");
	SESSION(h);
	if (u != CKU_USER)
		return CKR_USER_TYPE_INVALID;
	if (logged_in)
		return CKR_USER_ALREADY_LOGGED_IN;
	st.n_login++;
	if (st.pin_locked)
		return CKR_PIN_LOCKED;
	if (n != strlen(FAKE_P11_PIN) || memcmp(pin, FAKE_P11_PIN, n))
		return CKR_PIN_INCORRECT;
	logged_in = true;
	return CKR_OK;
}

static CK_RV f_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE *t, CK_ULONG n)
{
	bool match = st.key_present && logged_in;

	ENTER("C_FindObjectsInit");
	SESSION(h);
	for (CK_ULONG i = 0; i < n && match; i++) {
		switch (t[i].type) {
		case CKA_CLASS:
			match = *(CK_OBJECT_CLASS *)t[i].pValue == CKO_SECRET_KEY;
			break;
		case CKA_KEY_TYPE:
			match = *(CK_KEY_TYPE *)t[i].pValue == CKK_AES;
			break;
		case CKA_LABEL:
			match = t[i].ulValueLen == 3 && !memcmp(t[i].pValue, "kek", 3);
			break;
		case CKA_ID:
			match = t[i].ulValueLen == 1 && *(unsigned char *)t[i].pValue == 1;
			break;
		default:
			match = false;
		}
	}
	sess[h - 1].find_pos = 0;
	sess[h - 1].find_match = match;
	return CKR_OK;
}

static CK_RV f_FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *o, CK_ULONG max,
			   CK_ULONG *n)
{
	ENTER("C_FindObjects");
	SESSION(h);
	if (sess[h - 1].find_pos < 0)
		return CKR_OPERATION_NOT_INITIALIZED;
	*n = 0;
	if (sess[h - 1].find_match && sess[h - 1].find_pos == 0 && max) {
		o[0] = KEY_HANDLE;
		*n = 1;
		sess[h - 1].find_pos = 1;
	}
	return CKR_OK;
}

static CK_RV f_FindObjectsFinal(CK_SESSION_HANDLE h)
{
	ENTER("C_FindObjectsFinal");
	SESSION(h);
	sess[h - 1].find_pos = -1;
	return CKR_OK;
}

static CK_RV crypt_init(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k,
			int op)
{
	CK_GCM_PARAMS *gp;

	SESSION(h);
	if (!logged_in)
		return CKR_USER_NOT_LOGGED_IN;
	if (sess[h - 1].op)
		return CKR_OPERATION_ACTIVE;
	if (k != KEY_HANDLE || !st.key_present)
		return CKR_KEY_HANDLE_INVALID;
	if (op == 2 && !st.key_decrypt)
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	if (m->mechanism != CKM_AES_GCM || m->ulParameterLen != sizeof(CK_GCM_PARAMS))
		return CKR_MECHANISM_INVALID;
	gp = m->pParameter;
	st.last_iv_len = gp->ulIvLen;
	st.last_iv_bits = gp->ulIvBits;
	st.last_tag_bits = gp->ulTagBits;
	st.last_aad_len = gp->ulAADLen < sizeof(st.last_aad) ? gp->ulAADLen : 0;
	memcpy(st.last_aad, gp->pAAD, st.last_aad_len);
	if (gp->ulIvLen != 12 || gp->ulTagBits != 128 ||
	    gp->ulAADLen > sizeof(sess[0].aad))
		return CKR_MECHANISM_PARAM_INVALID;
	memcpy(sess[h - 1].iv, gp->pIv, 12);
	sess[h - 1].iv_len = 12;
	memcpy(sess[h - 1].aad, gp->pAAD, gp->ulAADLen);
	sess[h - 1].aad_len = gp->ulAADLen;
	sess[h - 1].op = op;
	return CKR_OK;
}

static CK_RV f_EncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k)
{
	ENTER("C_EncryptInit");
	return crypt_init(h, m, k, 1);
}

static CK_RV f_DecryptInit(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k)
{
	ENTER("C_DecryptInit");
	return crypt_init(h, m, k, 2);
}

/* AES-256-GCM with OpenSSL; 1 on success. */
static int gcm(int enc, int s, const unsigned char *in, int len,
	       unsigned char *out, const unsigned char *tag_in,
	       unsigned char *tag_out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n, ok = 0;

	if (c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) &&
	    EVP_CipherInit_ex(c, NULL, NULL, (const unsigned char *)FAKE_P11_KEY,
			      sess[s].iv, enc) &&
	    EVP_CipherUpdate(c, NULL, &n, sess[s].aad, (int)sess[s].aad_len) &&
	    EVP_CipherUpdate(c, out, &n, in, len) &&
	    (enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag_in)) &&
	    EVP_CipherFinal_ex(c, out + n, &n) &&
	    (!enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag_out)))
		ok = 1;
	EVP_CIPHER_CTX_free(c);
	return ok;
}

static CK_RV f_Encrypt(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG len,
		       CK_BYTE *out, CK_ULONG *out_len)
{
	ENTER("C_Encrypt");
	SESSION(h);
	if (sess[h - 1].op != 1)
		return CKR_OPERATION_NOT_INITIALIZED;
	if (!out) {
		*out_len = len + 16;
		return CKR_OK;
	}
	if (*out_len < len + 16)
		return CKR_BUFFER_TOO_SMALL;
	sess[h - 1].op = 0;
	st.n_encrypt++;
	if (!gcm(1, (int)h - 1, in, (int)len, out, NULL, out + len))
		return CKR_GENERAL_ERROR;
	*out_len = len + 16;
	return CKR_OK;
}

static CK_RV f_Decrypt(CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG len,
		       CK_BYTE *out, CK_ULONG *out_len)
{
	ENTER("C_Decrypt");
	SESSION(h);
	if (sess[h - 1].op != 2)
		return CKR_OPERATION_NOT_INITIALIZED;
	if (len < 16) {
		sess[h - 1].op = 0;
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	}
	if (!out) {
		*out_len = len - 16;
		return CKR_OK;
	}
	if (*out_len < len - 16)
		return CKR_BUFFER_TOO_SMALL;
	sess[h - 1].op = 0;
	st.n_decrypt++;
	if (!gcm(0, (int)h - 1, in, (int)(len - 16), out, in + len - 16, NULL)) {
		memset(out, 0, len - 16);
		return st.tag_fail_rv;
	}
	*out_len = len - 16;
	return CKR_OK;
}

static CK_FUNCTION_LIST fl = {
	.version = { 2, 40 },
	.C_Initialize = f_Initialize,
	.C_Finalize = f_Finalize,
	.C_GetInfo = f_GetInfo,
	.C_GetSlotList = f_GetSlotList,
	.C_GetSlotInfo = f_GetSlotInfo,
	.C_GetTokenInfo = f_GetTokenInfo,
	.C_OpenSession = f_OpenSession,
	.C_CloseSession = f_CloseSession,
	.C_Login = f_Login,
	.C_FindObjectsInit = f_FindObjectsInit,
	.C_FindObjects = f_FindObjects,
	.C_FindObjectsFinal = f_FindObjectsFinal,
	.C_EncryptInit = f_EncryptInit,
	.C_Encrypt = f_Encrypt,
	.C_DecryptInit = f_DecryptInit,
	.C_Decrypt = f_Decrypt,
};

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST **out);

CK_RV C_GetFunctionList(CK_FUNCTION_LIST **out)
{
	if (!out)
		return CKR_ARGUMENTS_BAD;
	*out = &fl;
	return CKR_OK;
}

__attribute__((constructor)) static void fake_p11_load(void)
{
	fake_p11_reset();
}
