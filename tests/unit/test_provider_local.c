// SPDX-License-Identifier: GPL-2.0
/*
 * test_provider_local.c - the provider registry and the "local" provider.
 * Oracles: an independent AES-256-GCM decrypt with OpenSSL EVP and a
 * hand-built AAD; the documented state machine (disable/enable/destroy);
 * the error class table.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "kms/provider.h"
#include "kms/local/provider_local.h"

struct fx {
	struct cmk_provider *p;
	struct cmk_encctx ctx;
	struct cmk_secret *kek;
	const char *key;
};

static int setup(void **state)
{
	static struct fx fx;
	struct cmk_err e;

	if (tu_setup_tmpdir(state))
		return -1;
	memset(&fx, 0, sizeof(fx));
	fx.key = strdup(tu_path("cmk.key"));
	if (cmk_local_key_create(fx.key, &e) ||
	    cmk_provider_open("local", NULL, 0, &fx.p, &e) ||
	    cmk_secret_random(&fx.kek, 32, &e))
		return -1;
	cmk_encctx_init(&fx.ctx);
	if (cmk_encctx_add(&fx.ctx, "service", "postgres", &e) ||
	    cmk_encctx_add(&fx.ctx, "cluster", "c-42", &e))
		return -1;
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	cmk_provider_close(&fx->p);
	cmk_encctx_free(&fx->ctx);
	cmk_secret_free(&fx->kek);
	free((char *)fx->key);
	return tu_teardown_tmpdir(state);
}

static void wrap(struct fx *fx, unsigned char **w, size_t *wl)
{
	struct cmk_kms_call call;
	struct cmk_err e;

	assert_int_equal(cmk_provider_wrap(fx->p, fx->key, fx->kek, &fx->ctx, w,
					   wl, &call, &e), 0);
	assert_int_equal(*wl, CMK_LOCAL_OVERHEAD + 32);
	assert_contains(call.request_id, "local-");
}

static void provider_registry_finds_local_only(void **state)
{
	struct cmk_provider *p = NULL;
	struct cmk_kv kv = { "bogus", "1", 3 };
	struct cmk_err e;

	(void)state;
	assert_non_null(cmk_provider_find("local"));
	assert_string_equal(cmk_provider_find("local")->name, "local");
	assert_null(cmk_provider_find("nope"));
	assert_null(cmk_provider_find("LOCAL"));
	assert_int_equal(cmk_provider_open("nope", NULL, 0, &p, &e), -ENOENT);
	assert_contains(e.msg, "known providers: local");
	assert_int_equal(cmk_provider_open("local", &kv, 1, &p, &e), -EINVAL);
	assert_contains(e.msg, "unknown setting \"bogus\"");
	assert_null(p);
}

static void local_wrap_unwrap_roundtrip(void **state)
{
	struct fx *fx = *state;
	struct cmk_secret *out = NULL;
	unsigned char *w;
	size_t wl;
	struct cmk_err e;

	wrap(fx, &w, &wl);
	assert_int_equal(cmk_provider_unwrap(fx->p, fx->key, w, wl, &fx->ctx,
					     &out, NULL, &e), 0);
	assert_true(cmk_secret_equal(out, fx->kek));
	assert_int_equal(cmk_provider_check(fx->p, fx->key, w, wl, &fx->ctx,
					    NULL, &e), 0);
	cmk_secret_free(&out);
	free(w);
}

/* Decrypt with EVP directly, AAD written out by hand from the spec. */
static void local_wrapped_decrypts_with_independent_evp(void **state)
{
	static const unsigned char aad[] = {
		'C', 'M', 'K', 'C', 'T', 'X', '0', '1', 2, 0, 0, 0,
		7, 0, 0, 0, 'c', 'l', 'u', 's', 't', 'e', 'r',
		4, 0, 0, 0, 'c', '-', '4', '2',
		7, 0, 0, 0, 's', 'e', 'r', 'v', 'i', 'c', 'e',
		8, 0, 0, 0, 'p', 'o', 's', 't', 'g', 'r', 'e', 's',
	};
	struct fx *fx = *state;
	unsigned char *w, *key, pt[32 + 16];
	size_t wl, kl;
	EVP_CIPHER_CTX *c;
	int n, n2;

	wrap(fx, &w, &wl);
	assert_int_equal(w[0], 0x01);
	key = (unsigned char *)tu_read_file(fx->key, &kl);
	assert_int_equal(kl, 32);
	c = EVP_CIPHER_CTX_new();
	assert_int_equal(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, w + 1), 1);
	assert_int_equal(EVP_DecryptUpdate(c, NULL, &n, aad, sizeof(aad)), 1);
	assert_int_equal(EVP_DecryptUpdate(c, pt, &n, w + 13, 32), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, w + 45), 1);
	assert_int_equal(EVP_DecryptFinal_ex(c, pt + n, &n2), 1);
	assert_int_equal(n + n2, 32);
	assert_memory_equal(pt, cmk_secret_cdata(fx->kek), 32);
	EVP_CIPHER_CTX_free(c);
	free(key);
	free(w);
}

static void local_wrong_aad_rejected(void **state)
{
	struct fx *fx = *state;
	struct cmk_secret *out = NULL;
	struct cmk_encctx other;
	unsigned char *w;
	size_t wl;
	struct cmk_err e;

	wrap(fx, &w, &wl);
	cmk_encctx_init(&other);
	assert_int_equal(cmk_encctx_add(&other, "service", "postgres", &e), 0);
	assert_int_equal(cmk_encctx_add(&other, "cluster", "c-43", &e), 0);
	assert_int_equal(cmk_provider_unwrap(fx->p, fx->key, w, wl, &other, &out,
					     NULL, &e), -EBADMSG);
	assert_null(out);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_int_equal(e.reason, CMK_R_INVALID_CIPHERTEXT);
	assert_contains(e.msg, "does not decrypt");
	assert_int_equal(cmk_provider_check(fx->p, fx->key, w, wl, &other, NULL, &e),
			 -EBADMSG);
	cmk_encctx_free(&other);
	free(w);
}

static void local_tampered_wrapped_rejected(void **state)
{
	struct fx *fx = *state;
	struct cmk_secret *out = NULL;
	unsigned char *w;
	size_t wl;
	struct cmk_err e;

	wrap(fx, &w, &wl);
	for (size_t i = 0; i < wl; i++) {
		w[i] ^= 0x01;
		assert_true(cmk_provider_unwrap(fx->p, fx->key, w, wl, &fx->ctx,
						&out, NULL, &e) < 0);
		assert_null(out);
		assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
		w[i] ^= 0x01;
	}
	assert_true(cmk_provider_unwrap(fx->p, fx->key, w, wl - 1, &fx->ctx,
					&out, NULL, &e) < 0);
	assert_int_equal(cmk_provider_unwrap(fx->p, fx->key, w, wl, &fx->ctx,
					     &out, NULL, &e), 0);
	cmk_secret_free(&out);
	free(w);
}

static void local_unwrap_disabled_is_definitive(void **state)
{
	struct fx *fx = *state;
	struct cmk_secret *out = NULL;
	enum cmk_local_state st;
	unsigned char *w;
	size_t wl;
	struct cmk_err e;

	wrap(fx, &w, &wl);
	assert_int_equal(cmk_local_key_set_state(fx->key, CMK_LOCAL_DISABLED, &e), 0);
	assert_int_equal(cmk_local_key_get_state(fx->key, &st, &e), 0);
	assert_int_equal(st, CMK_LOCAL_DISABLED);
	assert_int_equal(cmk_provider_unwrap(fx->p, fx->key, w, wl, &fx->ctx,
					     &out, NULL, &e), -EKEYREVOKED);
	assert_null(out);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_int_equal(e.reason, CMK_R_DISABLED);
	assert_contains(e.msg, "key disabled");
	/* check is a real decrypt: it fails too */
	assert_int_equal(cmk_provider_check(fx->p, fx->key, w, wl, &fx->ctx, NULL, &e),
			 -EKEYREVOKED);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	/* and wrapping under a disabled key fails as in a real KMS */
	free(w);
	assert_true(cmk_provider_wrap(fx->p, fx->key, fx->kek, &fx->ctx, &w, &wl,
				      NULL, &e) < 0);
	assert_null(w);
	/* restore: enabling brings the same wrapped KEK back */
	assert_int_equal(cmk_local_key_set_state(fx->key, CMK_LOCAL_ENABLED, &e), 0);
	wrap(fx, &w, &wl);
	assert_int_equal(cmk_provider_unwrap(fx->p, fx->key, w, wl, &fx->ctx,
					     &out, NULL, &e), 0);
	assert_true(cmk_secret_equal(out, fx->kek));
	cmk_secret_free(&out);
	free(w);
}

static void local_destroyed_is_final(void **state)
{
	struct fx *fx = *state;
	struct cmk_secret *out = NULL;
	unsigned char *w, *key;
	size_t wl, kl;
	struct cmk_err e;

	wrap(fx, &w, &wl);
	assert_int_equal(cmk_local_key_set_state(fx->key, CMK_LOCAL_DESTROYED, &e), 0);
	assert_int_equal(cmk_provider_unwrap(fx->p, fx->key, w, wl, &fx->ctx,
					     &out, NULL, &e), -EKEYREVOKED);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_int_equal(e.reason, CMK_R_DESTROYED);
	assert_contains(e.msg, "key destroyed");
	assert_int_equal(cmk_local_key_set_state(fx->key, CMK_LOCAL_ENABLED, &e), -EPERM);
	/* the key bytes are gone from the file */
	key = (unsigned char *)tu_read_file(fx->key, &kl);
	assert_int_equal(kl, 32);
	for (size_t i = 0; i < kl; i++)
		assert_int_equal(key[i], 0);
	free(key);
	free(w);
}

static void local_missing_key_is_not_found(void **state)
{
	struct fx *fx = *state;
	struct cmk_secret *out = NULL;
	unsigned char *w;
	size_t wl;
	struct cmk_err e;

	wrap(fx, &w, &wl);
	assert_int_equal(unlink(fx->key), 0);
	assert_int_equal(cmk_provider_unwrap(fx->p, fx->key, w, wl, &fx->ctx,
					     &out, NULL, &e), -ENOKEY);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_int_equal(e.reason, CMK_R_NOT_FOUND);
	assert_contains(e.msg, "not found");
	assert_int_equal(cmk_provider_unwrap(fx->p, "", w, wl, &fx->ctx,
					     &out, NULL, &e), -ENOKEY);
	free(w);
}

static void local_unsafe_key_file_denied(void **state)
{
	struct fx *fx = *state;
	struct cmk_secret *out = NULL;
	unsigned char *w, buf[33] = { 0 };
	size_t wl;
	struct cmk_err e;

	wrap(fx, &w, &wl);
	assert_int_equal(chmod(fx->key, 0640), 0);
	assert_int_equal(cmk_provider_unwrap(fx->p, fx->key, w, wl, &fx->ctx,
					     &out, NULL, &e), -EACCES);
	assert_int_equal(e.reason, CMK_R_DENIED);
	assert_contains(e.msg, "chmod 600");
	tu_write_file(fx->key, buf, sizeof(buf), 0600);
	assert_int_equal(cmk_provider_unwrap(fx->p, fx->key, w, wl, &fx->ctx,
					     &out, NULL, &e), -EACCES);
	assert_contains(e.msg, "size 33");
	free(w);
}

static void local_key_create_is_private_and_exclusive(void **state)
{
	struct fx *fx = *state;
	struct stat sb;
	struct cmk_err e;

	assert_int_equal(stat(fx->key, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	assert_int_equal(sb.st_size, 32);
	assert_int_equal(cmk_local_key_create(fx->key, &e), -EEXIST);
	assert_contains(e.msg, "must not exist");
}

static void local_bad_state_file_fails_closed(void **state)
{
	struct fx *fx = *state;
	struct cmk_secret *out = NULL;
	char sp[600];
	unsigned char *w;
	size_t wl;
	struct cmk_err e;

	wrap(fx, &w, &wl);
	snprintf(sp, sizeof(sp), "%s.state", fx->key);
	tu_write_file(sp, "maybe\n", 6, 0600);
	assert_true(cmk_provider_unwrap(fx->p, fx->key, w, wl, &fx->ctx, &out,
					NULL, &e) < 0);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_null(out);
	free(w);
}

/*
 * A FIFO or symlink as key or state file is refused at once.  Opening a FIFO
 * for reading blocks until a writer appears: the alarm turns such a hang
 * into a failure of this test instead of a stuck test run.
 */
static void local_fifo_or_symlink_refused_without_blocking(void **state)
{
	struct fx *fx = *state;
	struct cmk_secret *out = NULL;
	enum cmk_local_state st;
	char sp[600], real[600];
	unsigned char *w;
	size_t wl;
	struct cmk_err e;

	wrap(fx, &w, &wl);
	alarm(20);
	snprintf(sp, sizeof(sp), "%s.state", fx->key);
	assert_int_equal(mkfifo(sp, 0600), 0);
	assert_true(cmk_local_key_get_state(fx->key, &st, &e) < 0);
	assert_contains(e.msg, "not a regular file");
	assert_true(cmk_provider_unwrap(fx->p, fx->key, w, wl, &fx->ctx, &out,
					NULL, &e) < 0);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_null(out);
	assert_int_equal(unlink(sp), 0);

	/* the key file itself a FIFO */
	snprintf(real, sizeof(real), "%s.real", fx->key);
	assert_int_equal(rename(fx->key, real), 0);
	assert_int_equal(mkfifo(fx->key, 0600), 0);
	assert_int_equal(cmk_provider_unwrap(fx->p, fx->key, w, wl, &fx->ctx,
					     &out, NULL, &e), -ENOKEY);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_contains(e.msg, "not a regular file");
	assert_int_equal(unlink(fx->key), 0);

	/* a symlink to the real key file */
	assert_int_equal(symlink(real, fx->key), 0);
	assert_int_equal(cmk_provider_unwrap(fx->p, fx->key, w, wl, &fx->ctx,
					     &out, NULL, &e), -ENOKEY);
	assert_contains(e.msg, "symbolic link");
	assert_null(out);
	assert_int_equal(unlink(fx->key), 0);

	/* back to a regular file: works again */
	assert_int_equal(rename(real, fx->key), 0);
	assert_int_equal(cmk_provider_unwrap(fx->p, fx->key, w, wl, &fx->ctx,
					     &out, NULL, &e), 0);
	alarm(0);
	cmk_secret_free(&out);
	free(w);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(provider_registry_finds_local_only),
		T(local_wrap_unwrap_roundtrip),
		T(local_wrapped_decrypts_with_independent_evp),
		T(local_wrong_aad_rejected),
		T(local_tampered_wrapped_rejected),
		T(local_unwrap_disabled_is_definitive),
		T(local_destroyed_is_final),
		T(local_missing_key_is_not_found),
		T(local_unsafe_key_file_denied),
		T(local_key_create_is_private_and_exclusive),
		T(local_fifo_or_symlink_refused_without_blocking),
		T(local_bad_state_file_fails_closed),
	};

	return cmocka_run_group_tests_name("provider_local", tests, NULL, NULL);
}
