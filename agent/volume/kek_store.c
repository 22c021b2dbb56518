// SPDX-License-Identifier: GPL-2.0
/*
 * kek_store.c - the KEK envelope as a process holds it: its provider and,
 * while the CMK allows, its unwrapped KEK versions.
 */
#include "volume/kek_store.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fileio.h"

void cmk_kek_store_init(struct cmk_kek_store *ks)
{
	memset(ks, 0, sizeof(*ks));
	cmk_envelope_init(&ks->env);
}

/* The plain KEKs only (before unwrapping them again, or freeing the set). */
static void wipe_keks(struct cmk_kek_store *ks)
{
	cmk_secret_free(&ks->cur);
	cmk_secret_free(&ks->prev);
	for (size_t i = 0; i < CMK_ENVELOPE_RETIRED_MAX; i++)
		cmk_secret_free(&ks->old[i]);
}

void cmk_kek_store_forget(struct cmk_kek_store *ks)
{
	wipe_keks(ks);
	cmk_provider_reset(ks->p);
}

void cmk_kek_store_free(struct cmk_kek_store *ks)
{
	wipe_keks(ks);
	cmk_provider_close(&ks->p);
	if (ks->loaded)
		cmk_envelope_free(&ks->env);
	ks->loaded = false;
}

static void audit_kms(struct cmk_audit *a, const struct cmk_kek_wrap *w,
		      const char *op, const struct cmk_kms_call *call,
		      const struct cmk_err *e)
{
	struct cmk_audit_event ev = {
		.event = "kms_call",
		.provider = w->provider,
		.key_ref = w->key_ref,
		.operation = op,
		.outcome = e ? "failure" : "success",
		.cls = e ? e->cls : CMK_EC_NONE,
		.reason = e ? e->reason : CMK_R_NONE,
		.latency_ms = call ? call->latency_ms : -1,
		.request_id = call && call->request_id[0] ? call->request_id : NULL,
		.message = e ? e->msg : NULL,
		/*
		 * Not fsync'd here: a definitive answer is followed at once by
		 * the KEY_WIPE, whose own (important) line syncs the file; an
		 * fsync before the wipe would only delay it.
		 */
		.important = false,
	};
	struct cmk_err ae;

	if (a && cmk_audit_log(a, &ev, &ae))
		fprintf(stderr, "cmk: audit: %s\n", ae.msg);
}

/* Unwrap retired version @i of @ks's envelope into *@kek (audited). */
static int unwrap_retired(struct cmk_kek_store *ks, unsigned int i,
			  struct cmk_secret **kek, struct cmk_audit *audit,
			  struct cmk_err *e)
{
	const struct cmk_kek_wrap *w = &ks->env.retired[i];
	struct cmk_kms_call call;
	int ret;

	*kek = NULL;
	if (strcmp(w->provider, ks->env.cur.provider))
		/* another provider's: cmkctl --kek opens it */
		return cmk_errf(e, -EOPNOTSUPP,
				"KEK version %u is wrapped by provider \"%s\", not the envelope's \"%s\"",
				w->kek_version, w->provider, ks->env.cur.provider);
	memset(&call, 0, sizeof(call));
	ret = cmk_envelope_unwrap_version(ks->p, &ks->env, w->kek_version, kek,
					  &call, e);
	audit_kms(audit, w, "unwrap", &call, ret ? e : NULL);
	return ret;
}

/*
 * Unwrap the current (and previous) KEK of the envelope in @ks and, with
 * @retired, the retired versions (a retired version that does not unwrap
 * is audited and left out: it only serves old archives).
 */
static int unwrap_all(struct cmk_kek_store *ks, bool retired,
		      struct cmk_audit *audit, struct cmk_err *e)
{
	struct cmk_kms_call call;
	int ret;

	memset(&call, 0, sizeof(call));
	ret = cmk_envelope_unwrap(ks->p, &ks->env, false, &ks->cur, &call, e);
	audit_kms(audit, &ks->env.cur, "unwrap", &call, ret ? e : NULL);
	if (!ret && ks->env.has_prev) {
		memset(&call, 0, sizeof(call));
		ret = cmk_envelope_unwrap(ks->p, &ks->env, true, &ks->prev, &call, e);
		audit_kms(audit, &ks->env.prev, "unwrap", &call, ret ? e : NULL);
	}
	if (ret) {
		wipe_keks(ks);
		return ret;
	}
	for (unsigned int i = 0; retired && i < ks->env.n_retired; i++) {
		struct cmk_err re;

		unwrap_retired(ks, i, &ks->old[i], audit, &re);
	}
	return 0;
}

int cmk_kek_store_unwrap_retired(struct cmk_kek_store *ks, uint32_t version,
				 struct cmk_secret **kek,
				 struct cmk_audit *audit, struct cmk_err *e)
{
	*kek = NULL;
	if (!ks->loaded || !ks->p)
		return cmk_errf(e, -ENOKEY, "KEK envelope not loaded");
	for (unsigned int i = 0; i < ks->env.n_retired; i++)
		if (ks->env.retired[i].kek_version == version)
			return unwrap_retired(ks, i, kek, audit, e);
	return cmk_errf(e, -ENOENT, "the KEK envelope holds no retired KEK version %u",
			version);
}

/*
 * The provider's advice about its configuration (an unpinned vault), once
 * per process: on stderr and in the audit log.
 */
static void advise_once(const struct cmk_kek_store *ks, struct cmk_audit *audit)
{
	static atomic_bool said;
	const char *advice = cmk_provider_advice(ks->p);
	struct cmk_audit_event ev = {
		.event = "config_warning",
		.provider = ks->env.cur.provider,
		.key_ref = ks->env.cur.key_ref,
		.outcome = "warning",
		.latency_ms = -1,
		.message = advice,
	};
	struct cmk_err ae;

	if (!advice || atomic_exchange(&said, true))
		return;
	fprintf(stderr, "cmk: warning: %s\n", advice);
	if (audit && cmk_audit_log(audit, &ev, &ae))
		fprintf(stderr, "cmk: audit: %s\n", ae.msg);
}

int cmk_kek_store_load(struct cmk_kek_store *ks, const struct cmk_config *cfg,
		       bool retired, struct cmk_audit *audit, struct cmk_err *e)
{
	const struct cmk_config_provider *pc;
	int ret;

	cmk_kek_store_free(ks);
	cmk_kek_store_init(ks);
	ret = cmk_envelope_read(cfg->kek_envelope, &ks->env, e);
	if (ret)
		return ret;
	ks->loaded = true;
	pc = cmk_config_provider(cfg, ks->env.cur.provider);
	ret = cmk_provider_open(ks->env.cur.provider, pc ? pc->kv : NULL,
				pc ? pc->n : 0, &ks->p, e);
	if (ret)
		return ret;
	advise_once(ks, audit);
	ret = unwrap_all(ks, retired, audit, e);
	if (ret)
		cmk_err_prefix(e, "KEK envelope %s", cfg->kek_envelope);
	return ret;
}

int cmk_kek_store_unseal(struct cmk_kek_store *ks, struct cmk_audit *audit,
			 struct cmk_err *e)
{
	int ret;

	if (!ks->loaded || !ks->p)
		return cmk_errf(e, -ENOKEY, "KEK envelope not loaded");
	wipe_keks(ks);
	ret = unwrap_all(ks, false, audit, e);
	if (ret)
		cmk_err_prefix(e, "KEK envelope in memory");
	return ret;
}

int cmk_kek_store_check(struct cmk_kek_store *ks, struct cmk_audit *audit,
			bool log_success, struct cmk_kms_call *callp,
			struct cmk_err *e)
{
	struct cmk_kms_call call;
	int ret;

	memset(&call, 0, sizeof(call));
	if (!ks->loaded || !ks->p)
		ret = cmk_errf(e, -ENOKEY, "KEK envelope not loaded");
	else
		ret = cmk_envelope_check(ks->p, &ks->env, &call, e);
	if (callp)
		*callp = call;
	if (ks->loaded && (ret || log_success))
		audit_kms(audit, &ks->env.cur, "check", &call, ret ? e : NULL);
	return ret;
}

int cmk_kek_store_reload(struct cmk_kek_store *ks, struct cmk_kekfile *f,
			 const struct cmk_config *cfg, struct cmk_audit *audit,
			 struct cmk_err *e)
{
	struct cmk_kek_store fresh;
	struct stat st;
	int ret;

	cmk_kek_store_init(&fresh);
	if (stat(cfg->kek_envelope, &st))
		memset(&st, 0, sizeof(st));
	ret = cmk_kek_store_load(&fresh, cfg, false, audit, e);
	if (ret) {
		cmk_kek_store_free(&fresh);
		return ret;
	}
	cmk_kek_store_free(ks);
	*ks = fresh;		/* moves the envelope and the secrets */
	f->loaded = st;
	return 0;
}

void cmk_kek_store_audit_check(const struct cmk_kek_store *ks, struct cmk_audit *audit,
			       const struct cmk_kms_call *call,
			       const struct cmk_err *e)
{
	if (ks->loaded)
		audit_kms(audit, &ks->env.cur, "check", call, e);
}
