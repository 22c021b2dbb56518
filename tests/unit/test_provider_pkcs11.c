// SPDX-License-Identifier: GPL-2.0
/*
 * test_provider_pkcs11.c - the "pkcs11" provider against a fake PKCS#11
 * module (fake_p11.c) loaded by path like any HSM module: wrapped format
 * and GCM parameters, session reuse and reopening after session and
 * device errors, the CK_RV -> class table, PIN handling, module loading.
 * Oracles: an independent AES-256-GCM decrypt with OpenSSL EVP of what the
 * provider wrapped, the parameters the module recorded, its call counters,
 * and the table in Documentation/pkcs11.rst.  SoftHSM2 itself is exercised
 * by tests/kms/pkcs11.sh.
 */
#include "testutil.h"

#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

#include "fake_p11.h"
#include "kms/provider.h"
#include "kms/pkcs11/provider_pkcs11.h"

static char modpath[PATH_MAX];
static char ref[PATH_MAX + 128];
static void *dl;
static struct fake_p11_state *st;
static fake_p11_reset_fn fake_reset;
static fake_p11_drop_sessions_fn fake_drop;

struct fx {
	struct cmk_provider *p;
	struct cmk_encctx ctx;
	struct cmk_secret *kek;
	unsigned char *w;
	size_t wl;
};

static int group_setup(void **state)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	fake_p11_state_fn get;

	(void)state;
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	snprintf(modpath, sizeof(modpath), "%s/fake_p11.so", dirname(exe));
	snprintf(ref, sizeof(ref), "pkcs11:token=fake;object=kek;id=%%01?module-path=%s",
		 modpath);
	dl = dlopen(modpath, RTLD_NOW);
	if (!dl) {
		fprintf(stderr, "# %s\n", dlerror());
		return -1;
	}
	*(void **)&get = dlsym(dl, "fake_p11_state");
	*(void **)&fake_reset = dlsym(dl, "fake_p11_reset");
	*(void **)&fake_drop = dlsym(dl, "fake_p11_drop_sessions");
	if (!get || !fake_reset || !fake_drop)
		return -1;
	st = get();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	dlclose(dl);
	return 0;
}

static int setup(void **state)
{
	static struct fx fx;
	struct cmk_err e;

	fake_reset();
	setenv(CMK_P11_PIN_ENV, FAKE_P11_PIN, 1);
	memset(&fx, 0, sizeof(fx));
	cmk_encctx_init(&fx.ctx);
	if (cmk_encctx_add(&fx.ctx, "service", "postgres", &e) ||
	    cmk_encctx_add(&fx.ctx, "cluster", "c-42", &e) ||
	    cmk_provider_open("pkcs11", NULL, 0, &fx.p, &e) ||
	    cmk_secret_random(&fx.kek, 32, &e) ||
	    cmk_provider_wrap(fx.p, ref, fx.kek, &fx.ctx, &fx.w, &fx.wl, NULL, &e)) {
		fprintf(stderr, "# setup: %s\n", e.msg);
		return -1;
	}
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	cmk_provider_close(&fx->p);
	cmk_encctx_free(&fx->ctx);
	cmk_secret_free(&fx->kek);
	free(fx->w);
	unsetenv(CMK_P11_PIN_ENV);
	return 0;
}

/* unwrap with fx's envelope; 0 and the KEK checked, or the error in *e. */
static int unwrap(struct fx *fx, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *out = NULL;
	struct cmk_kms_call call;
	int ret;

	ret = cmk_provider_unwrap(fx->p, ref, fx->w, fx->wl, &fx->ctx, &out, &call, e);
	if (!ret) {
		assert_true(cmk_secret_equal(out, fx->kek));
		assert_non_null(strstr(call.request_id, "pkcs11-fake-slot7-"));
	} else {
		assert_null(out);
	}
	return ret;
}

static void expect(struct fx *fx, enum cmk_err_class cls, enum cmk_reason r,
		   const char *needle)
{
	struct cmk_err e;

	assert_int_not_equal(unwrap(fx, &e), 0);
	if (e.cls != cls || e.reason != r || !strstr(e.msg, needle))
		fail_msg("got %s/%s \"%s\", wanted %s/%s \"%s\"",
			 cmk_err_class_name(e.cls), cmk_reason_name(e.reason), e.msg,
			 cmk_err_class_name(cls), cmk_reason_name(r), needle);
}

static void unwrap_ok(struct fx *fx)
{
	struct cmk_err e;

	if (unwrap(fx, &e))
		fail_msg("unwrap: %s", e.msg);
}

/* ---- format and parameters ------------------------------------------------- */

static void p11_wrapped_format_decrypts_with_openssl(void **state)
{
	struct fx *fx = *state;
	unsigned char *aad, pt[32];
	size_t aad_len;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n, ok;
	struct cmk_err e;

	assert_int_equal(fx->wl, 1 + 12 + 32 + 16);
	assert_int_equal(fx->w[0], CMK_P11_WRAP_VERSION);
	assert_int_equal(cmk_encctx_canonical(&fx->ctx, &aad, &aad_len, &e), 0);
	ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) &&
	     EVP_DecryptInit_ex(c, NULL, NULL, (const unsigned char *)FAKE_P11_KEY,
				fx->w + 1) &&
	     EVP_DecryptUpdate(c, NULL, &n, aad, (int)aad_len) &&
	     EVP_DecryptUpdate(c, pt, &n, fx->w + 13, 32) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, fx->w + 45) &&
	     EVP_DecryptFinal_ex(c, pt + n, &n);
	EVP_CIPHER_CTX_free(c);
	assert_true(ok);
	assert_memory_equal(pt, cmk_secret_cdata(fx->kek), 32);
	/* The module got the canonical context as AAD, a 96-bit IV, a 128-bit tag. */
	assert_int_equal(st->last_aad_len, aad_len);
	assert_memory_equal(st->last_aad, aad, aad_len);
	assert_int_equal(st->last_iv_len, 12);
	assert_int_equal(st->last_iv_bits, 96);
	assert_int_equal(st->last_tag_bits, 128);
	free(aad);
	unwrap_ok(fx);
}

static void p11_two_wraps_use_fresh_ivs(void **state)
{
	struct fx *fx = *state;
	unsigned char *w2 = NULL;
	size_t wl2;
	struct cmk_err e;

	assert_int_equal(cmk_provider_wrap(fx->p, ref, fx->kek, &fx->ctx, &w2, &wl2,
					   NULL, &e), 0);
	assert_int_equal(wl2, fx->wl);
	assert_memory_not_equal(w2 + 1, fx->w + 1, 12);
	free(w2);
}

static void p11_module_initialised_with_os_locking_once(void **state)
{
	struct fx *fx = *state;
	struct cmk_provider *p2 = NULL;
	struct cmk_err e;
	unsigned char *w2 = NULL;
	size_t wl2;

	/* (the fake refuses C_Initialize without CKF_OS_LOCKING_OK) */
	assert_int_equal(st->n_initialize, 1);
	assert_int_equal(cmk_provider_open("pkcs11", NULL, 0, &p2, &e), 0);
	assert_int_equal(cmk_provider_wrap(p2, ref, fx->kek, &fx->ctx, &w2, &wl2, NULL, &e), 0);
	assert_int_equal(st->n_initialize, 1);
	cmk_provider_close(&p2);
	assert_int_equal(st->n_finalize, 0);	/* fx->p still uses it */
	unwrap_ok(fx);
	cmk_provider_close(&fx->p);
	assert_int_equal(st->n_finalize, 1);
	free(w2);
}

/* Another user initialised the module first: it is theirs to finalise. */
static void p11_module_initialised_by_another_user_not_finalised(void **state)
{
	struct fx *fx = *state;
	CK_RV (*gfl)(CK_FUNCTION_LIST_PTR_PTR);
	CK_FUNCTION_LIST_PTR f;
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	int fin;

	cmk_provider_close(&fx->p);
	fin = st->n_finalize;
	*(void **)&gfl = dlsym(dl, "C_GetFunctionList");
	assert_int_equal(gfl(&f), CKR_OK);
	assert_int_equal(f->C_Initialize(&args), CKR_OK);
	assert_int_equal(cmk_provider_open("pkcs11", NULL, 0, &fx->p, NULL), 0);
	unwrap_ok(fx);
	cmk_provider_close(&fx->p);
	assert_int_equal(st->n_finalize, fin);
	assert_int_equal(f->C_Finalize(NULL), CKR_OK);
}

/* ---- sessions ------------------------------------------------------------------- */

static void p11_session_reused_across_calls(void **state)
{
	struct fx *fx = *state;

	unwrap_ok(fx);
	unwrap_ok(fx);
	unwrap_ok(fx);
	assert_int_equal(st->n_open, 1);
	assert_int_equal(st->n_login, 1);
}

/*
 * A wipe, revocation or VM fork resets the provider: its logged-in session
 * is never used again (closed by the next call on the worker, not by the
 * reset, which may run on the main thread).  Oracle: the fake token's
 * counters: no close at the reset, then close + open + login at the next
 * call.
 */
static void p11_cleanse_reset_logs_the_session_out_before_the_next_call(void **state)
{
	struct fx *fx = *state;
	int closes;

	unwrap_ok(fx);
	assert_int_equal(st->n_open, 1);
	closes = st->n_close;
	cmk_provider_reset(fx->p);
	assert_int_equal(st->n_close, closes);
	unwrap_ok(fx);
	assert_int_equal(st->n_close, closes + 1);
	assert_int_equal(st->n_open, 2);
	assert_int_equal(st->n_login, 2);
}

static void p11_session_handle_invalid_reopened_and_retried(void **state)
{
	struct fx *fx = *state;

	fake_drop();		/* device reset: every handle is stale */
	unwrap_ok(fx);
	assert_int_equal(st->n_open, 2);
	assert_int_equal(st->n_login, 2);
}

static void p11_device_error_once_is_retried_on_new_session(void **state)
{
	struct fx *fx = *state;

	strcpy(st->fail_fn, "C_Decrypt");
	st->fail_rv = CKR_DEVICE_ERROR;
	st->fail_count = 1;
	unwrap_ok(fx);
	assert_int_equal(st->n_open, 2);
}

static void p11_device_error_persistent_is_transient(void **state)
{
	struct fx *fx = *state;

	strcpy(st->fail_fn, "C_DecryptInit");
	st->fail_rv = CKR_DEVICE_ERROR;
	st->fail_count = 100;
	expect(fx, CMK_EC_TRANSIENT, CMK_R_UNAVAILABLE, "CKR_DEVICE_ERROR");
	assert_int_equal(st->fail_count, 98);	/* tried exactly twice */
	st->fail_count = 0;
	unwrap_ok(fx);
}

static void p11_token_removed_is_transient_then_back(void **state)
{
	struct fx *fx = *state;

	st->token_present = false;
	expect(fx, CMK_EC_TRANSIENT, CMK_R_UNAVAILABLE, "no token matches token=fake");
	st->token_present = true;
	unwrap_ok(fx);
}

static void p11_session_errors_each_reopen(void **state)
{
	static const CK_RV rvs[] = {
		CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED, CKR_DEVICE_REMOVED,
		CKR_TOKEN_NOT_PRESENT, CKR_USER_NOT_LOGGED_IN, CKR_DEVICE_MEMORY,
	};
	struct fx *fx = *state;

	for (size_t i = 0; i < sizeof(rvs) / sizeof(rvs[0]); i++) {
		int before = st->n_open;

		strcpy(st->fail_fn, "C_FindObjectsInit");
		st->fail_rv = rvs[i];
		st->fail_count = 1;
		unwrap_ok(fx);
		assert_int_equal(st->n_open, before + 1);
	}
}

static void p11_cryptoki_finalized_underneath_reinitialised(void **state)
{
	struct fx *fx = *state;
	CK_RV (*gfl)(CK_FUNCTION_LIST_PTR_PTR);
	CK_FUNCTION_LIST_PTR f;

	unwrap_ok(fx);
	*(void **)&gfl = dlsym(dl, "C_GetFunctionList");
	assert_int_equal(gfl(&f), CKR_OK);
	f->C_Finalize(NULL);	/* some other user of the module in this process */
	unwrap_ok(fx);
	assert_int_equal(st->n_initialize, 2);
}

/* ---- definitive errors --------------------------------------------------------------- */

static void p11_decrypt_not_permitted_is_definitive_disabled(void **state)
{
	struct fx *fx = *state;

	st->key_decrypt = false;
	expect(fx, CMK_EC_DEFINITIVE, CMK_R_DISABLED, "CKA_DECRYPT is false");
	st->key_decrypt = true;
	unwrap_ok(fx);
}

static void p11_key_missing_is_definitive_not_found(void **state)
{
	struct fx *fx = *state;

	st->key_present = false;
	expect(fx, CMK_EC_DEFINITIVE, CMK_R_NOT_FOUND,
	       "token \"fake\" has no AES secret key object=kek;id=%01");
	st->key_present = true;
	unwrap_ok(fx);
}

static void p11_key_destroyed_between_find_and_use(void **state)
{
	struct fx *fx = *state;

	/* The handle found goes stale (key re-created meanwhile): found again. */
	strcpy(st->fail_fn, "C_DecryptInit");
	st->fail_rv = CKR_KEY_HANDLE_INVALID;
	st->fail_count = 1;
	unwrap_ok(fx);
	assert_int_equal(st->n_open, 2);
	/* ... and gone for good: definitive. */
	st->fail_count = 1;
	st->key_present = false;
	expect(fx, CMK_EC_DEFINITIVE, CMK_R_NOT_FOUND, "has no AES secret key");
}

static void p11_wrong_context_is_definitive_invalid_ciphertext(void **state)
{
	struct fx *fx = *state;
	struct cmk_encctx other;
	CMK_SECRET_AUTO struct cmk_secret *out = NULL;
	struct cmk_err e;

	cmk_encctx_init(&other);
	assert_int_equal(cmk_encctx_add(&other, "service", "mysql", &e), 0);
	assert_int_not_equal(cmk_provider_unwrap(fx->p, ref, fx->w, fx->wl, &other,
						 &out, NULL, &e), 0);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_int_equal(e.reason, CMK_R_INVALID_CIPHERTEXT);
	assert_non_null(strstr(e.msg, "CKR_ENCRYPTED_DATA_INVALID"));
	cmk_encctx_free(&other);
}

/*
 * SoftHSM2 reports a tag mismatch as CKR_GENERAL_ERROR: twice on fresh
 * sessions, then the probe (a round trip of random bytes under the same
 * key) works and our ciphertext fails a third time: definitive.
 */
static void p11_general_error_twice_after_init_is_invalid_ciphertext(void **state)
{
	struct fx *fx = *state;

	st->tag_fail_rv = CKR_GENERAL_ERROR;
	fx->w[fx->wl - 1] ^= 1;
	expect(fx, CMK_EC_DEFINITIVE, CMK_R_INVALID_CIPHERTEXT, "round trip of random bytes");
	/* two attempts, the probe's decrypt, the confirming attempt */
	assert_int_equal(st->n_decrypt, 4);
	assert_int_equal(st->n_encrypt, 2);	/* setup's wrap, the probe */
	fx->w[fx->wl - 1] ^= 1;
	unwrap_ok(fx);
}

/*
 * A network HSM failing over answers CKR_GENERAL_ERROR to two decrypts in
 * a row and then works again.  Not a revocation: the probe succeeds and so
 * does the third attempt.  Before the probe this was invalid_ciphertext.
 */
static void p11_classify_failover_generic_error_twice_then_back(void **state)
{
	struct fx *fx = *state;

	strcpy(st->fail_fn, "C_Decrypt");
	st->fail_rv = CKR_GENERAL_ERROR;
	st->fail_count = 2;
	unwrap_ok(fx);
	assert_int_equal(st->fail_count, 0);
}

/*
 * The same failover lasting longer: CKR_FUNCTION_FAILED for every decrypt,
 * the probe's too.  The token cannot decrypt anything: transient.
 */
static void p11_classify_failover_function_failed_persisting_is_transient(void **state)
{
	struct fx *fx = *state;

	strcpy(st->fail_fn, "C_Decrypt");
	st->fail_rv = CKR_FUNCTION_FAILED;
	st->fail_count = 1000;
	expect(fx, CMK_EC_TRANSIENT, CMK_R_UNAVAILABLE, "HSM failover");
	assert_int_equal(1000 - st->fail_count, 3);	/* two attempts and the probe */
	st->fail_count = 0;
	unwrap_ok(fx);
}

/*
 * A token that refuses the probe itself (here: C_Encrypt fails once) has
 * not shown that it can decrypt with this key: not definitive, even for a
 * wrapped key that really is damaged.
 */
static void p11_classify_probe_refused_is_not_definitive(void **state)
{
	struct fx *fx = *state;

	st->tag_fail_rv = CKR_GENERAL_ERROR;
	fx->w[fx->wl - 1] ^= 1;
	strcpy(st->fail_fn, "C_Encrypt");
	st->fail_rv = CKR_DEVICE_ERROR;
	st->fail_count = 1;
	expect(fx, CMK_EC_TRANSIENT, CMK_R_UNAVAILABLE, "CKR_DEVICE_ERROR");
	fx->w[fx->wl - 1] ^= 1;
}

/*
 * Tokens on which the probe can never run: a decrypt-only key (CKA_ENCRYPT
 * false: C_EncryptInit says CKR_KEY_FUNCTION_NOT_PERMITTED) and a
 * FIPS-mode HSM that refuses a GCM IV chosen by the caller
 * (CKR_MECHANISM_PARAM_INVALID).  Oracle (pkcs11.rst): a generic failure
 * is definitive only once the probe works; here it cannot, so the answer
 * says "cannot be confirmed" with the reason - not "the token is failing
 * (HSM failover?)", which would send the operator after the wrong cause -
 * and stays transient, even for a wrapped key that really is damaged.
 */
static void p11_classify_probe_impossible_reports_cannot_confirm(void **state)
{
	static const unsigned long why[] = { CKR_KEY_FUNCTION_NOT_PERMITTED,
					     CKR_MECHANISM_PARAM_INVALID };
	struct fx *fx = *state;

	st->tag_fail_rv = CKR_GENERAL_ERROR;
	fx->w[fx->wl - 1] ^= 1;
	for (size_t i = 0; i < sizeof(why) / sizeof(why[0]); i++) {
		strcpy(st->fail_fn, "C_EncryptInit");
		st->fail_rv = why[i];
		st->fail_count = 1000;
		expect(fx, CMK_EC_TRANSIENT, CMK_R_UNAVAILABLE, "cannot be confirmed");
		expect(fx, CMK_EC_TRANSIENT, CMK_R_UNAVAILABLE,
		       i ? "CKR_MECHANISM_PARAM_INVALID" : "CKR_KEY_FUNCTION_NOT_PERMITTED");
	}
	st->fail_count = 0;
	fx->w[fx->wl - 1] ^= 1;
	unwrap_ok(fx);
}

static void p11_general_error_once_is_not_a_revocation(void **state)
{
	struct fx *fx = *state;

	strcpy(st->fail_fn, "C_Decrypt");
	st->fail_rv = CKR_GENERAL_ERROR;
	st->fail_count = 1;
	unwrap_ok(fx);
}

static void p11_malformed_wrapped_key_refused_before_the_token(void **state)
{
	struct fx *fx = *state;
	CMK_SECRET_AUTO struct cmk_secret *out = NULL;
	struct cmk_err e;
	int before = st->n_decrypt;

	fx->w[0] = 2;
	assert_int_not_equal(cmk_provider_unwrap(fx->p, ref, fx->w, fx->wl, &fx->ctx,
						 &out, NULL, &e), 0);
	assert_int_equal(e.reason, CMK_R_INVALID_CIPHERTEXT);
	fx->w[0] = 1;
	assert_int_not_equal(cmk_provider_unwrap(fx->p, ref, fx->w, 29, &fx->ctx,
						 &out, NULL, &e), 0);
	assert_int_equal(e.reason, CMK_R_INVALID_CIPHERTEXT);
	assert_int_equal(st->n_decrypt, before);
}

/* ---- PINs ---------------------------------------------------------------------------- */

static void p11_wrong_pin_definitive_and_not_presented_twice(void **state)
{
	struct fx *fx = *state;

	fake_drop();
	setenv(CMK_P11_PIN_ENV, "9999", 1);
	expect(fx, CMK_EC_DEFINITIVE, CMK_R_DENIED, "CKR_PIN_INCORRECT");
	assert_int_equal(st->n_login, 2);	/* setup's login, then this one */
	expect(fx, CMK_EC_DEFINITIVE, CMK_R_DENIED, "rejected this PIN before");
	expect(fx, CMK_EC_DEFINITIVE, CMK_R_DENIED, "rejected this PIN before");
	assert_int_equal(st->n_login, 2);	/* never presented again */
	setenv(CMK_P11_PIN_ENV, FAKE_P11_PIN, 1);
	unwrap_ok(fx);
	assert_int_equal(st->n_login, 3);
}

static void p11_pin_locked_refused_without_login(void **state)
{
	struct fx *fx = *state;
	int before = st->n_login;

	fake_drop();
	st->pin_locked = true;
	expect(fx, CMK_EC_DEFINITIVE, CMK_R_DENIED, "user PIN is locked");
	assert_int_equal(st->n_login, before);
	st->pin_locked = false;
	unwrap_ok(fx);
}

static void p11_no_pin_is_local_and_names_the_sources(void **state)
{
	struct fx *fx = *state;
	struct cmk_err e;

	fake_drop();
	unsetenv(CMK_P11_PIN_ENV);
	assert_int_not_equal(unwrap(fx, &e), 0);
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_non_null(strstr(e.msg, "needs the user PIN"));
	assert_non_null(strstr(e.msg, CMK_P11_PIN_ENV));
}

static void p11_pin_file_setting_and_its_checks(void **state)
{
	struct fx *fx = *state;
	struct cmk_provider *p = NULL;
	CMK_SECRET_AUTO struct cmk_secret *out = NULL;
	struct cmk_kv kv[] = { { "pin_file", NULL, 0 } };
	char path[PATH_MAX];
	struct cmk_err e;
	FILE *f;

	assert_int_equal(tu_setup_tmpdir(NULL), 0);
	snprintf(path, sizeof(path), "%s", tu_path("pin"));
	kv[0].value = path;
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(FAKE_P11_PIN "\n", f);	/* one trailing newline is dropped */
	fclose(f);
	chmod(path, 0600);
	unsetenv(CMK_P11_PIN_ENV);
	fake_drop();
	assert_int_equal(cmk_provider_open("pkcs11", kv, 1, &p, &e), 0);
	assert_int_equal(cmk_provider_unwrap(p, ref, fx->w, fx->wl, &fx->ctx, &out,
					     NULL, &e), 0);
	cmk_secret_free(&out);
	cmk_provider_close(&p);
	chmod(path, 0640);
	fake_drop();
	assert_int_equal(cmk_provider_open("pkcs11", kv, 1, &p, &e), 0);
	assert_int_not_equal(cmk_provider_unwrap(p, ref, fx->w, fx->wl, &fx->ctx,
						 &out, NULL, &e), 0);
	assert_non_null(strstr(e.msg, "chmod 600"));
	cmk_provider_close(&p);
	tu_teardown_tmpdir(NULL);
}

/* ---- modules and references ------------------------------------------------------------ */

static void p11_missing_module_is_local_and_named(void **state)
{
	struct fx *fx = *state;
	CMK_SECRET_AUTO struct cmk_secret *out = NULL;
	struct cmk_err e;

	assert_int_not_equal(cmk_provider_unwrap(fx->p,
		"pkcs11:object=kek?module-path=/nonexistent/libhsm.so",
		fx->w, fx->wl, &fx->ctx, &out, NULL, &e), 0);
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_non_null(strstr(e.msg, "/nonexistent/libhsm.so"));
}

static void p11_module_writable_by_others_refused(void **state)
{
	struct fx *fx = *state;
	struct cmk_provider *p = NULL;
	CMK_SECRET_AUTO struct cmk_secret *out = NULL;
	char cmd[2 * PATH_MAX + 16], r[PATH_MAX + 64];
	struct cmk_err e;

	assert_int_equal(tu_setup_tmpdir(NULL), 0);
	snprintf(cmd, sizeof(cmd), "cp %s %s", modpath, tu_path("m.so"));
	assert_int_equal(system(cmd), 0);
	assert_int_equal(chmod(tu_path("m.so"), 0666), 0);
	snprintf(r, sizeof(r), "pkcs11:object=kek?module-path=%s", tu_path("m.so"));
	assert_int_equal(cmk_provider_open("pkcs11", NULL, 0, &p, &e), 0);
	assert_int_not_equal(cmk_provider_unwrap(p, r, fx->w, fx->wl, &fx->ctx, &out,
						 NULL, &e), 0);
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	if (!strstr(e.msg, "writable by group or others"))
		fail_msg("%s", e.msg);
	cmk_provider_close(&p);
	tu_teardown_tmpdir(NULL);
}

static void p11_no_module_anywhere_is_local(void **state)
{
	struct fx *fx = *state;
	struct cmk_provider *p = NULL;
	CMK_SECRET_AUTO struct cmk_secret *out = NULL;
	struct cmk_err e;

	assert_int_equal(cmk_provider_open("pkcs11", NULL, 0, &p, &e), 0);
	assert_int_not_equal(cmk_provider_unwrap(p, "pkcs11:object=kek", fx->w, fx->wl,
						 &fx->ctx, &out, NULL, &e), 0);
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_non_null(strstr(e.msg, "module-path"));
	cmk_provider_close(&p);
}

static void p11_module_setting_must_agree_with_uri(void **state)
{
	struct fx *fx = *state;
	struct cmk_kv kv[] = { { "module", "/usr/lib/other.so", 0 } };
	struct cmk_provider *p = NULL;
	CMK_SECRET_AUTO struct cmk_secret *out = NULL;
	struct cmk_err e;

	assert_int_equal(cmk_provider_open("pkcs11", kv, 1, &p, &e), 0);
	assert_int_not_equal(cmk_provider_unwrap(p, ref, fx->w, fx->wl, &fx->ctx, &out,
						 NULL, &e), 0);
	assert_non_null(strstr(e.msg, "refusing to load another module"));
	cmk_provider_close(&p);
	kv[0].value = "relative.so";
	assert_int_equal(cmk_provider_open("pkcs11", kv, 1, &p, &e), -EINVAL);
}

static void p11_library_attributes_matched(void **state)
{
	struct fx *fx = *state;
	CMK_SECRET_AUTO struct cmk_secret *out = NULL;
	char r[PATH_MAX + 200];
	struct cmk_err e;

	snprintf(r, sizeof(r), "pkcs11:library-manufacturer=dm-cmk%%20tests;library-version=1;"
		 "serial=F00D;slot-id=7;object=kek?module-path=%s", modpath);
	assert_int_equal(cmk_provider_unwrap(fx->p, r, fx->w, fx->wl, &fx->ctx, &out,
					     NULL, &e), 0);
	cmk_secret_free(&out);
	snprintf(r, sizeof(r), "pkcs11:library-version=1.3;object=kek?module-path=%s", modpath);
	assert_int_not_equal(cmk_provider_unwrap(fx->p, r, fx->w, fx->wl, &fx->ctx, &out,
						 NULL, &e), 0);
	assert_non_null(strstr(e.msg, "does not match the library attributes"));
	snprintf(r, sizeof(r), "pkcs11:serial=BEEF;object=kek?module-path=%s", modpath);
	assert_int_not_equal(cmk_provider_unwrap(fx->p, r, fx->w, fx->wl, &fx->ctx, &out,
						 NULL, &e), 0);
	assert_int_equal(e.cls, CMK_EC_TRANSIENT);
	assert_non_null(strstr(e.msg, "present: \"fake\""));
}

/* ---- the table ------------------------------------------------------------------------- */

static void p11_rv_class_table(void **state)
{
	static const struct { CK_RV rv; enum cmk_err_class cls; } t[] = {
		{ CKR_KEY_FUNCTION_NOT_PERMITTED, CMK_EC_DEFINITIVE },
		{ CKR_KEY_HANDLE_INVALID, CMK_EC_DEFINITIVE },
		{ CKR_OBJECT_HANDLE_INVALID, CMK_EC_DEFINITIVE },
		{ CKR_ENCRYPTED_DATA_INVALID, CMK_EC_DEFINITIVE },
		{ CKR_ENCRYPTED_DATA_LEN_RANGE, CMK_EC_DEFINITIVE },
		{ CKR_PIN_INCORRECT, CMK_EC_DEFINITIVE },
		{ CKR_PIN_LOCKED, CMK_EC_DEFINITIVE },
		{ CKR_PIN_EXPIRED, CMK_EC_DEFINITIVE },
		{ CKR_DEVICE_ERROR, CMK_EC_TRANSIENT },
		{ CKR_DEVICE_REMOVED, CMK_EC_TRANSIENT },
		{ CKR_DEVICE_MEMORY, CMK_EC_TRANSIENT },
		{ CKR_TOKEN_NOT_PRESENT, CMK_EC_TRANSIENT },
		{ CKR_SESSION_HANDLE_INVALID, CMK_EC_TRANSIENT },
		{ CKR_SESSION_CLOSED, CMK_EC_TRANSIENT },
		{ CKR_GENERAL_ERROR, CMK_EC_TRANSIENT },
		{ CKR_FUNCTION_FAILED, CMK_EC_TRANSIENT },
		{ CKR_MECHANISM_INVALID, CMK_EC_LOCAL },
		{ CKR_ARGUMENTS_BAD, CMK_EC_LOCAL },
		{ 0x12345678UL, CMK_EC_LOCAL },
	};
	char b[32];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (cmk_reason_class(cmk_p11_reason(t[i].rv)) != t[i].cls)
			fail_msg("CK_RV 0x%lx: class %s", t[i].rv,
				 cmk_err_class_name(cmk_reason_class(cmk_p11_reason(t[i].rv))));
	assert_int_equal(cmk_p11_reason(CKR_OK), CMK_R_NONE);
	assert_string_equal(cmk_p11_rv_name(CKR_PIN_INCORRECT, b, sizeof(b)), "CKR_PIN_INCORRECT");
	assert_string_equal(cmk_p11_rv_name(0x12345678UL, b, sizeof(b)), "CKR_0x12345678");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(p11_wrapped_format_decrypts_with_openssl),
		T(p11_two_wraps_use_fresh_ivs),
		T(p11_module_initialised_with_os_locking_once),
		T(p11_module_initialised_by_another_user_not_finalised),
		T(p11_session_reused_across_calls),
		T(p11_cleanse_reset_logs_the_session_out_before_the_next_call),
		T(p11_session_handle_invalid_reopened_and_retried),
		T(p11_device_error_once_is_retried_on_new_session),
		T(p11_device_error_persistent_is_transient),
		T(p11_token_removed_is_transient_then_back),
		T(p11_session_errors_each_reopen),
		T(p11_cryptoki_finalized_underneath_reinitialised),
		T(p11_decrypt_not_permitted_is_definitive_disabled),
		T(p11_key_missing_is_definitive_not_found),
		T(p11_key_destroyed_between_find_and_use),
		T(p11_wrong_context_is_definitive_invalid_ciphertext),
		T(p11_general_error_twice_after_init_is_invalid_ciphertext),
		T(p11_classify_failover_generic_error_twice_then_back),
		T(p11_classify_failover_function_failed_persisting_is_transient),
		T(p11_classify_probe_refused_is_not_definitive),
		T(p11_classify_probe_impossible_reports_cannot_confirm),
		T(p11_general_error_once_is_not_a_revocation),
		T(p11_malformed_wrapped_key_refused_before_the_token),
		T(p11_wrong_pin_definitive_and_not_presented_twice),
		T(p11_pin_locked_refused_without_login),
		T(p11_no_pin_is_local_and_names_the_sources),
		T(p11_pin_file_setting_and_its_checks),
		T(p11_missing_module_is_local_and_named),
		T(p11_module_writable_by_others_refused),
		T(p11_no_module_anywhere_is_local),
		T(p11_module_setting_must_agree_with_uri),
		T(p11_library_attributes_matched),
		cmocka_unit_test(p11_rv_class_table),
	};

	return cmocka_run_group_tests_name("provider_pkcs11", tests, group_setup,
					   group_teardown);
}
