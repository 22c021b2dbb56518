/* SPDX-License-Identifier: GPL-2.0 */
/*
 * provider.h - the KMS provider interface.
 *
 * A provider holds the customer's key (CMK) and does three things with it:
 *
 *  wrap    encrypt a KEK under the CMK, bound to an encryption context;
 *  unwrap  decrypt a wrapped KEK (the context must match);
 *  check   prove the CMK still works *for decryption*: a real unwrap of the
 *          wrapped KEK whose result is wiped at once.  Never an encrypt or
 *          describe call: those still succeed on a disabled key.
 *
 * Every failure fills struct cmk_err with a class (see err.h): definitive
 * (disabled, destroyed, denied, not found, ciphertext rejected) means
 * "revoke now"; transient (throttled, 5xx, timeout, network) means "retry
 * within the grace period"; local means the request never reached a KMS.
 * Two rules every provider keeps (Documentation/kms-errors.rst):
 *
 *  - an answer whose documented meaning covers both the key owner's "no"
 *    and a failing service is confirmed with a second, differently shaped
 *    call (the key's state, a probe round trip) before it is called
 *    definitive; unconfirmed, it is transient (or local);
 *  - an answer that rejects the agent's credentials counts only after the
 *    credentials were read again from their source and, if they changed,
 *    the request was sent once more (routine rotation is not a revocation).
 *
 * Providers are a table of struct cmk_provider_ops, looked up by name with
 * cmk_provider_find(); callers never branch on a provider's name.
 */
#ifndef CMK_PROVIDER_H
#define CMK_PROVIDER_H

#include <stddef.h>

#include "core/encctx.h"
#include "core/err.h"
#include "core/secret.h"

#define CMK_PROVIDER_NAME_MAX	32
#define CMK_REQUEST_ID_MAX	128

/* One "key = value" setting of a [provider "name"] config section. */
struct cmk_kv {
	const char *key;
	const char *value;
	int line;		/* for error messages; 0 if unknown */
};

/**
 * struct cmk_kms_call - what one KMS call did, for the audit log
 * @request_id: the KMS's request id, or one the provider made up
 * @latency_ms: wall time of the call (filled by the generic layer)
 */
struct cmk_kms_call {
	char request_id[CMK_REQUEST_ID_MAX];
	long latency_ms;
};

struct cmk_provider_ops {
	const char *name;
	/* NULL-terminated list of keys allowed in its config section. */
	const char *const *settings;
	/* Length range of a wrapped 32-byte KEK, for envelope validation. */
	size_t wrapped_kek_min, wrapped_kek_max;

	int (*open)(const struct cmk_kv *kv, size_t n, void **priv,
		    struct cmk_err *e);
	void (*close)(void *priv);
	int (*wrap)(void *priv, const char *key_ref,
		    const struct cmk_secret *plain, const struct cmk_encctx *ctx,
		    unsigned char **wrapped, size_t *wrapped_len,
		    struct cmk_kms_call *call, struct cmk_err *e);
	int (*unwrap)(void *priv, const char *key_ref,
		      const unsigned char *wrapped, size_t wrapped_len,
		      const struct cmk_encctx *ctx, struct cmk_secret **plain,
		      struct cmk_kms_call *call, struct cmk_err *e);
	/* Optional; NULL means "unwrap, then wipe the result". */
	int (*check)(void *priv, const char *key_ref,
		     const unsigned char *wrapped, size_t wrapped_len,
		     const struct cmk_encctx *ctx, struct cmk_kms_call *call,
		     struct cmk_err *e);
	/*
	 * Optional: wrap again under @to_ref / @to_ctx what was wrapped under
	 * @from_ref / @from_ctx, without the plaintext leaving the KMS (AWS
	 * ReEncrypt).  NULL: cmk_envelope_rewrap() unwraps and wraps.
	 */
	int (*rewrap)(void *priv, const char *from_ref,
		      const unsigned char *wrapped, size_t wrapped_len,
		      const struct cmk_encctx *from_ctx, const char *to_ref,
		      const struct cmk_encctx *to_ctx, unsigned char **out,
		      size_t *out_len, struct cmk_kms_call *call,
		      struct cmk_err *e);
	/*
	 * Optional: let go of whatever lets the next call reach the KMS
	 * without proving itself again - an open TLS connection (its traffic
	 * secrets could decrypt every KEK that went over it), cached bearer
	 * tokens, temporary credentials, an IMDS session token - wiped.  The
	 * configuration (key files, client secrets) stays; the next call
	 * starts afresh.  Must not block (no network round trip).
	 */
	void (*reset)(void *priv);
	/*
	 * Optional: a weakness of the configuration the operator should hear
	 * about (a pin left out), or NULL.  Static text, no secrets.
	 */
	const char *(*advice)(void *priv);
};

struct cmk_provider;

/* cmk_provider_find() - the ops registered under @name, or NULL. */
const struct cmk_provider_ops *cmk_provider_find(const char *name);

/* cmk_provider_names() - "local, aws, ..." for error messages. */
const char *cmk_provider_names(void);

/* cmk_provider_setting_ok() - is @key allowed in @ops' config section? */
int cmk_provider_setting_ok(const struct cmk_provider_ops *ops, const char *key);

int cmk_provider_open(const char *name, const struct cmk_kv *kv, size_t n,
		      struct cmk_provider **p, struct cmk_err *e);
void cmk_provider_close(struct cmk_provider **p);
const char *cmk_provider_name(const struct cmk_provider *p);

/*
 * cmk_provider_reset() - the provider's reset hook (above), callable from
 * any thread at any time (a wipe on the main thread while a KMS call runs
 * on the worker): applied at once when no call is under way, else by that
 * call as soon as it returns.  @p may be NULL.
 */
void cmk_provider_reset(struct cmk_provider *p);

/* cmk_provider_advice() - the provider's advice hook (above), or NULL. */
const char *cmk_provider_advice(struct cmk_provider *p);
const struct cmk_provider_ops *cmk_provider_ops(const struct cmk_provider *p);

/*
 * The calls below time the operation into @call (may be NULL), make sure
 * a failure always carries a class, and make sure *plain / *wrapped are
 * NULL on failure.  The caller frees *wrapped with free().
 */
int cmk_provider_wrap(struct cmk_provider *p, const char *key_ref,
		      const struct cmk_secret *plain,
		      const struct cmk_encctx *ctx, unsigned char **wrapped,
		      size_t *wrapped_len, struct cmk_kms_call *call,
		      struct cmk_err *e);
int cmk_provider_unwrap(struct cmk_provider *p, const char *key_ref,
			const unsigned char *wrapped, size_t wrapped_len,
			const struct cmk_encctx *ctx, struct cmk_secret **plain,
			struct cmk_kms_call *call, struct cmk_err *e);
int cmk_provider_check(struct cmk_provider *p, const char *key_ref,
		       const unsigned char *wrapped, size_t wrapped_len,
		       const struct cmk_encctx *ctx, struct cmk_kms_call *call,
		       struct cmk_err *e);
/* -EOPNOTSUPP (local) when the provider has no rewrap hook. */
int cmk_provider_rewrap(struct cmk_provider *p, const char *from_ref,
			const unsigned char *wrapped, size_t wrapped_len,
			const struct cmk_encctx *from_ctx, const char *to_ref,
			const struct cmk_encctx *to_ctx, unsigned char **out,
			size_t *out_len, struct cmk_kms_call *call,
			struct cmk_err *e);

#endif /* CMK_PROVIDER_H */
