// SPDX-License-Identifier: GPL-2.0
/*
 * provider.c - provider registry and the generic call layer (see provider.h).
 */
#include "kms/provider.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/deadline.h"
#include "kms/http.h"
#include "kms/aws/provider_aws.h"
#include "kms/azure/provider_azure.h"
#include "kms/gcp/provider_gcp.h"
#include "kms/kmip/provider_kmip.h"
#include "kms/local/provider_local.h"
#include "kms/pkcs11/provider_pkcs11.h"

/* The registry: add a provider by adding its ops here. */
static const struct cmk_provider_ops *const registry[] = {
	&cmk_provider_local_ops,
	&cmk_provider_aws_ops,
	&cmk_provider_gcp_ops,
	&cmk_provider_pkcs11_ops,
	&cmk_provider_azure_ops,
	&cmk_provider_kmip_ops,
};

#define N_PROVIDERS (sizeof(registry) / sizeof(registry[0]))

/*
 * @busy: held for the length of every call into the provider and of its
 * reset hook; @reset_pending: a reset asked for while a call was under way.
 */
struct cmk_provider {
	const struct cmk_provider_ops *ops;
	void *priv;
	pthread_mutex_t busy;
	atomic_bool reset_pending;
};

const struct cmk_provider_ops *cmk_provider_find(const char *name)
{
	for (size_t i = 0; i < N_PROVIDERS; i++)
		if (strcmp(registry[i]->name, name) == 0)
			return registry[i];
	return NULL;
}

const char *cmk_provider_names(void)
{
	static _Thread_local char names[256];

	if (!names[0]) {
		for (size_t i = 0; i < N_PROVIDERS; i++) {
			if (i)
				strncat(names, ", ", sizeof(names) - strlen(names) - 1);
			strncat(names, registry[i]->name,
				sizeof(names) - strlen(names) - 1);
		}
	}
	return names;
}

int cmk_provider_setting_ok(const struct cmk_provider_ops *ops, const char *key)
{
	for (const char *const *s = ops->settings; s && *s; s++)
		if (strcmp(*s, key) == 0)
			return 1;
	return 0;
}

int cmk_provider_open(const char *name, const struct cmk_kv *kv, size_t n,
		      struct cmk_provider **pp, struct cmk_err *e)
{
	const struct cmk_provider_ops *ops = cmk_provider_find(name);
	struct cmk_provider *p;
	int ret;

	*pp = NULL;
	if (!ops)
		return cmk_errf(e, -ENOENT,
				"provider \"%s\" is unknown; known providers: %s",
				name, cmk_provider_names());
	for (size_t i = 0; i < n; i++)
		if (!cmk_provider_setting_ok(ops, kv[i].key))
			return cmk_errf(e, -EINVAL,
					"provider \"%s\": unknown setting \"%s\"",
					name, kv[i].key);
	p = calloc(1, sizeof(*p));
	if (!p)
		return cmk_errf(e, -ENOMEM, "provider \"%s\": out of memory", name);
	p->ops = ops;
	pthread_mutex_init(&p->busy, NULL);
	atomic_init(&p->reset_pending, false);
	if (ops->open) {
		ret = ops->open(kv, n, &p->priv, e);
		if (ret) {
			pthread_mutex_destroy(&p->busy);
			free(p);
			return ret;
		}
	}
	*pp = p;
	return 0;
}

void cmk_provider_close(struct cmk_provider **pp)
{
	struct cmk_provider *p = *pp;

	if (!p)
		return;
	if (p->ops->close)
		p->ops->close(p->priv);
	pthread_mutex_destroy(&p->busy);
	free(p);
	*pp = NULL;
}

/*
 * Whoever holds @busy when a reset is asked for applies it after its call
 * (call_end()); the asker applies it itself when nobody does.  A reset
 * asked for while the lock is being released is seen by the releaser's
 * own apply_reset() (the flag is set before the asker's trylock fails).
 */
static void apply_reset(struct cmk_provider *p)
{
	while (atomic_load(&p->reset_pending) &&
	       pthread_mutex_trylock(&p->busy) == 0) {
		if (atomic_exchange(&p->reset_pending, false) && p->ops->reset)
			p->ops->reset(p->priv);
		pthread_mutex_unlock(&p->busy);
	}
}

void cmk_provider_reset(struct cmk_provider *p)
{
	/* Kept TLS connections too: after a fork they are the parent VM's. */
	cmk_http_drop_connections();
	if (!p || !p->ops->reset)
		return;
	atomic_store(&p->reset_pending, true);
	apply_reset(p);
}

const char *cmk_provider_advice(struct cmk_provider *p)
{
	return p && p->ops->advice ? p->ops->advice(p->priv) : NULL;
}

static void call_begin(struct cmk_provider *p)
{
	pthread_mutex_lock(&p->busy);
}

static void call_end(struct cmk_provider *p)
{
	pthread_mutex_unlock(&p->busy);
	apply_reset(p);
}

const char *cmk_provider_name(const struct cmk_provider *p)
{
	return p->ops->name;
}

const struct cmk_provider_ops *cmk_provider_ops(const struct cmk_provider *p)
{
	return p->ops;
}

/*
 * The libraries a KMS call runs through (OpenSSL's TLS record and cipher
 * code, libcurl, json-c) leave what they processed in the stack frames
 * they used, below ours: a KEK from an answer stayed there until some
 * later call happened to overwrite it.  Wipe that much stack after every
 * call.  noinline, so the array lies below the caller's frame.
 */
#define STACK_BURN	(64 * 1024)

static __attribute__((noinline)) void burn_stack(void)
{
	unsigned char pad[STACK_BURN];

	OPENSSL_cleanse(pad, sizeof(pad));
	__asm__ volatile("" : : "r"(pad) : "memory");
}

/* Append "throttled, retry after N s" (the last answer's Retry-After). */
static void say_retry_after(struct cmk_err *e, unsigned int ms)
{
	size_t n = strnlen(e->msg, sizeof(e->msg));

	snprintf(e->msg + n, sizeof(e->msg) - n,
		 " (throttled, retry after %u s: the server's Retry-After)",
		 (ms + 999) / 1000);
}

/*
 * A failure without a class would be neither retried nor revoked on.  A
 * throttled one carries what the KMS's last answer asked (Retry-After).
 */
static int classify(int ret, struct cmk_err *e)
{
	if (ret && e && e->cls == CMK_EC_NONE) {
		e->cls = CMK_EC_LOCAL;
		e->reason = CMK_R_LOCAL;
	}
	/*
	 * Only a KMS's (or identity service's) own "slow down", inside TLS,
	 * may extend the grace period (agentloop.h): not a metadata
	 * service's plain-HTTP 429, which the VM's network can forge.
	 */
	if (ret && e && e->reason == CMK_R_THROTTLED &&
	    cmk_http_last_answer_from_kms()) {
		e->kms_throttled = true;
		if (!e->retry_after_ms)
			e->retry_after_ms = cmk_http_retry_after_ms();
	}
	/* A hold the call did not wait out (http.h): say when to retry. */
	if (ret && e && e->cls == CMK_EC_TRANSIENT && cmk_http_retry_after_ms())
		say_retry_after(e, cmk_http_retry_after_ms());
	if (ret > 0)
		ret = -EIO;
	return ret;
}

static void call_start(struct cmk_kms_call *call, struct cmk_err *e)
{
	if (call)
		memset(call, 0, sizeof(*call));
	cmk_err_clear(e);
	cmk_http_last_answer_forget();
}

int cmk_provider_wrap(struct cmk_provider *p, const char *key_ref,
		      const struct cmk_secret *plain,
		      const struct cmk_encctx *ctx, unsigned char **wrapped,
		      size_t *wrapped_len, struct cmk_kms_call *call,
		      struct cmk_err *e)
{
	uint64_t t0 = cmk_deadline_awake_ms();
	int ret;

	call_start(call, e);
	*wrapped = NULL;
	*wrapped_len = 0;
	call_begin(p);
	ret = p->ops->wrap(p->priv, key_ref, plain, ctx, wrapped, wrapped_len,
			   call, e);
	call_end(p);
	if (call)
		call->latency_ms = (long)(cmk_deadline_awake_ms() - t0);
	if (ret) {
		free(*wrapped);
		*wrapped = NULL;
		*wrapped_len = 0;
	}
	burn_stack();
	return classify(ret, e);
}

int cmk_provider_unwrap(struct cmk_provider *p, const char *key_ref,
			const unsigned char *wrapped, size_t wrapped_len,
			const struct cmk_encctx *ctx, struct cmk_secret **plain,
			struct cmk_kms_call *call, struct cmk_err *e)
{
	uint64_t t0 = cmk_deadline_awake_ms();
	int ret;

	call_start(call, e);
	*plain = NULL;
	call_begin(p);
	ret = p->ops->unwrap(p->priv, key_ref, wrapped, wrapped_len, ctx,
			     plain, call, e);
	call_end(p);
	if (call)
		call->latency_ms = (long)(cmk_deadline_awake_ms() - t0);
	if (ret)
		cmk_secret_free(plain);
	burn_stack();
	return classify(ret, e);
}

int cmk_provider_check(struct cmk_provider *p, const char *key_ref,
		       const unsigned char *wrapped, size_t wrapped_len,
		       const struct cmk_encctx *ctx, struct cmk_kms_call *call,
		       struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *plain = NULL;
	uint64_t t0 = cmk_deadline_awake_ms();
	int ret;

	call_start(call, e);
	call_begin(p);
	if (p->ops->check)
		ret = p->ops->check(p->priv, key_ref, wrapped, wrapped_len, ctx,
				    call, e);
	else
		ret = p->ops->unwrap(p->priv, key_ref, wrapped, wrapped_len,
				     ctx, &plain, call, e);
	call_end(p);
	if (call)
		call->latency_ms = (long)(cmk_deadline_awake_ms() - t0);
	burn_stack();
	return classify(ret, e);
}

int cmk_provider_rewrap(struct cmk_provider *p, const char *from_ref,
			const unsigned char *wrapped, size_t wrapped_len,
			const struct cmk_encctx *from_ctx, const char *to_ref,
			const struct cmk_encctx *to_ctx, unsigned char **out,
			size_t *out_len, struct cmk_kms_call *call,
			struct cmk_err *e)
{
	uint64_t t0 = cmk_deadline_awake_ms();
	int ret;

	call_start(call, e);
	*out = NULL;
	*out_len = 0;
	if (!p->ops->rewrap)
		return classify(cmk_errf(e, -EOPNOTSUPP,
					 "provider \"%s\" cannot re-wrap inside the KMS",
					 p->ops->name), e);
	call_begin(p);
	ret = p->ops->rewrap(p->priv, from_ref, wrapped, wrapped_len, from_ctx,
			     to_ref, to_ctx, out, out_len, call, e);
	call_end(p);
	if (call)
		call->latency_ms = (long)(cmk_deadline_awake_ms() - t0);
	if (ret) {
		free(*out);
		*out = NULL;
		*out_len = 0;
	}
	burn_stack();
	return classify(ret, e);
}
