/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kek_store.h - the KEK envelope as a process holds it: the parsed
 * envelope, the provider it names and, while the CMK allows, the plain
 * current (and previous) KEK in locked memory.  Loaded, checked against
 * the KMS, reloaded when the file changes, forgotten on every wipe.
 */
#ifndef CMK_KEK_STORE_H
#define CMK_KEK_STORE_H

#include <stdbool.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/secret.h"
#include "format/audit.h"
#include "format/config.h"
#include "format/envelope.h"
#include "kms/provider.h"

/**
 * struct cmk_kek_store - the KEK envelope and its unwrapped KEK versions
 * @env: parsed envelope (from the config's kek_envelope path)
 * @p: the provider the envelope names
 * @cur: current KEK (NULL while sealed: after a revoke)
 * @prev: previous KEK during a rotation, else NULL
 * @old: the retired versions (@env.retired[i]), unwrap-only: the agent's
 *	key socket opens archives sealed under them; NULL where not unwrapped
 *	(cmk-agent unwraps one when a request first names it)
 */
struct cmk_kek_store {
	struct cmk_envelope env;
	struct cmk_provider *p;
	struct cmk_secret *cur;
	struct cmk_secret *prev;
	struct cmk_secret *old[CMK_ENVELOPE_RETIRED_MAX];
	bool loaded;
};

void cmk_kek_store_init(struct cmk_kek_store *ks);

/*
 * cmk_kek_store_load() - (re)read @cfg's kek_envelope, open its provider and
 * unwrap the current (and previous) KEK; with @retired also the retired
 * ones (one KMS call each; a retired version that does not unwrap is
 * audited and left out, not an error: it only serves old archives).  Only
 * cmkctl's local unseal asks for them; cmk-agent unwraps them one at a
 * time, when asked (cmk_kek_store_unwrap_retired()).  One audit line per
 * KMS call.  On failure @ks holds no KEK; e->cls says definitive or
 * transient.
 */
int cmk_kek_store_load(struct cmk_kek_store *ks, const struct cmk_config *cfg,
		       bool retired, struct cmk_audit *audit, struct cmk_err *e);

/*
 * cmk_kek_store_unwrap_retired() - unwrap retired KEK version @version of
 * @ks's envelope into *@kek (one KMS call, audited); @ks is only read.
 * -ENOENT if the envelope holds no such retired version.
 */
int cmk_kek_store_unwrap_retired(struct cmk_kek_store *ks, uint32_t version,
				 struct cmk_secret **kek,
				 struct cmk_audit *audit, struct cmk_err *e);

/*
 * cmk_kek_store_check() - a real unwrap of the current wrapped KEK under the
 * CMK, result wiped (works while @ks holds no plain KEK).  With @audit,
 * failures are always audited and successes only with @log_success; a
 * caller that rate-limits passes NULL and uses cmk_kek_store_audit_check().
 * @call (optional) gets latency and request id.
 */
int cmk_kek_store_check(struct cmk_kek_store *ks, struct cmk_audit *audit,
			bool log_success, struct cmk_kms_call *call,
			struct cmk_err *e);

/* cmk_kek_store_audit_check() - the audit line of a check done with @audit NULL. */
void cmk_kek_store_audit_check(const struct cmk_kek_store *ks, struct cmk_audit *audit,
			       const struct cmk_kms_call *call,
			       const struct cmk_err *e);

/**
 * struct cmk_kekfile - the envelope file as a long-lived process follows it
 * @loaded: the file (device, inode, size, mtime) as last adopted
 * @bad: a version of the file that did not load (not tried again)
 */
struct cmk_kekfile {
	struct stat loaded;
	struct stat bad;
};

/*
 * cmk_kek_store_reload() - load @cfg's envelope into a fresh set and adopt it
 * only on success, so a failed reload never leaves @ks without the KEK it
 * had; @f->loaded records the file.
 */
int cmk_kek_store_reload(struct cmk_kek_store *ks, struct cmk_kekfile *f,
			 const struct cmk_config *cfg, struct cmk_audit *audit,
			 struct cmk_err *e);

/*
 * cmk_kek_store_unseal() - unwrap the current (and previous) KEK of the
 * envelope in memory again (after a revoke wiped them), without reading
 * the file; no retired version.  One audit line
 * per KMS call.  On failure @ks holds no KEK.
 */
int cmk_kek_store_unseal(struct cmk_kek_store *ks, struct cmk_audit *audit,
			 struct cmk_err *e);

/*
 * cmk_kek_store_forget() - wipe the plain KEKs, keep the envelope, and reset
 * the provider (cmk_provider_reset(): its KMS connection, tokens and
 * temporary credentials go too), so nothing in memory reaches the KMS or
 * a KEK without asking again.  The one call for every wipe: revocation,
 * grace-policy expiry, VM fork, shutdown.  Safe while a KMS job runs.
 */
void cmk_kek_store_forget(struct cmk_kek_store *ks);
void cmk_kek_store_free(struct cmk_kek_store *ks);

#endif /* CMK_KEK_STORE_H */
