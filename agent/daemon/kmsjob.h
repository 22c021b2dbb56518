/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kmsjob.h - cmk-agent's KMS calls, as jobs for its worker thread.
 *
 * A CMK check or an unseal can take as long as the KMS lets it (bounded by
 * the job's deadline, deadline.h), so cmk-agent runs them on its worker
 * (worker.h) and reads the result when the worker says the job ended.
 * They follow the envelope file:
 *
 *   check   if the envelope file changed on disk (cmkctl kek rewrap /
 *           rotate) or a reload was asked for, load it: its unwrap is the
 *           check, and so is its refusal - the file names the CMK the key
 *           owner now controls (definitive: revoke; transient: asked again
 *           at the next check).  Otherwise, or if the changed file does
 *           not load for a local reason (half-written, malformed; then
 *           reported once, and not tried again until it changes), a real
 *           unwrap of the envelope in memory, result wiped.
 *   unseal  load the envelope file; if it does not load for a local
 *           reason, unwrap the KEK(s) of the envelope in memory instead
 *           (and report the file).  Current and previous KEK only: the
 *           unseal's time is the KMS's time for those two calls, however
 *           many retired versions the envelope holds.
 *   retired unwrap one retired KEK version of the envelope in memory, for
 *           the key socket (not the loop's: cmk-agent runs it when the
 *           worker is idle and a request named that version).
 *
 * Providers the main thread lets go of (a replaced KEK set, a loaded one
 * nobody adopted) are closed by the next job, on the worker: closing one
 * can block (PKCS#11 C_Finalize, a KMIP TLS shutdown).
 *
 * A job reads the config, the file record, and the provider and envelope
 * of the KEK set it is given; it writes only its own result.  What it
 * loaded or unwrapped (@fresh, or @cur and @prev) is adopted, or released,
 * by the main thread.  Rule for the caller: the KEK set a job reads is
 * neither replaced nor freed until the job has ended.  Its plain KEKs may
 * be wiped at any time: the job does not use them.
 */
#ifndef CMK_KMSJOB_H
#define CMK_KMSJOB_H

#include <stdbool.h>
#include <sys/stat.h>

#include "format/audit.h"
#include "format/config.h"
#include "core/err.h"
#include "kms/provider.h"
#include "core/secret.h"
#include "volume/volume.h"

enum cmk_kms_job_kind {
	CMK_KMS_CHECK,
	CMK_KMS_UNSEAL,
	CMK_KMS_RETIRED,	/* unwrap one retired version (@version) */
};

/* Providers waiting to be closed on the worker (at most two per job). */
#define CMK_RETIRED_MAX	4
struct cmk_retired {
	struct cmk_provider *p[CMK_RETIRED_MAX];
	size_t n;
};

/**
 * struct cmk_kms_job - one KMS job, its inputs and its result
 * @kind: check or unseal
 * @cfg: the agent's configuration
 * @keks: the KEK set in use (its provider and envelope are read)
 * @audit: where unwraps write their KMS call lines (may be NULL)
 * @file: the envelope file as @keks was loaded from it (a copy)
 * @reload: a check loads the envelope even if it looks unchanged
 * @retired: providers to close first (cmk_kms_job_hand_over())
 * @n_retired: how many
 * @ret: 0 or -errno
 * @err: why it failed
 * @call: latency and request id of a check's KMS call
 * @loaded: @fresh holds the newly loaded KEK set (its KEKs unwrapped)
 * @fresh: that KEK set, for the main thread to adopt or release
 * @fresh_st: the envelope file as @fresh was loaded from it
 * @bad: a changed envelope file that did not load (class NONE: none)
 * @bad_st: that file, to record as bad (not tried again), if @bad_keep
 * @bad_keep: do not try that version of the file again (it does not
 *	read or parse; any other local failure is tried again next check)
 * @file_answer: @err is the changed file's CMK's answer (its unwrap was
 *	audited by the load)
 * @cur: an unseal's KEK from the envelope in memory (file did not load)
 * @prev: the same for the previous KEK version, during a rotation
 * @version: a retired job's KEK version
 * @one: its unwrapped KEK, for the main thread to adopt or wipe
 * @latency_ms: wall time of the whole job
 */
struct cmk_kms_job {
	enum cmk_kms_job_kind kind;
	const struct cmk_config *cfg;
	struct cmk_kek_store *keks;
	struct cmk_audit *audit;
	struct cmk_kekfile file;
	bool reload;
	struct cmk_provider *retired[CMK_RETIRED_MAX];
	size_t n_retired;

	int ret;
	struct cmk_err err;
	struct cmk_kms_call call;
	bool loaded;
	struct cmk_kek_store fresh;
	struct stat fresh_st;
	struct cmk_err bad;
	struct stat bad_st;
	bool bad_keep;
	bool file_answer;
	struct cmk_secret *cur;
	struct cmk_secret *prev;
	struct cmk_secret *old[CMK_ENVELOPE_RETIRED_MAX];
	uint32_t version;
	struct cmk_secret *one;
	long latency_ms;
};

/* cmk_kms_job_run() - the worker's entry point (a cmk_worker_fn). */
void cmk_kms_job_run(void *job);

/*
 * cmk_kms_job_hand_over() - before submitting @j: the providers in @r are
 * the job's to close.
 */
void cmk_kms_job_hand_over(struct cmk_kms_job *j, struct cmk_retired *r);

/* cmk_kms_job_has_keks() - the job unwrapped KEKs (to adopt, or not). */
bool cmk_kms_job_has_keks(const struct cmk_kms_job *j);

/*
 * cmk_kms_job_drop_keks() - wipe the KEKs the job unwrapped, keeping an
 * envelope it loaded for adoption (a check's reload while the agent holds
 * no KEK: the unseal that follows unwraps them again).
 */
void cmk_kms_job_drop_keks(struct cmk_kms_job *j);

/*
 * cmk_kms_job_adopt() - on the main thread, once the job has ended.  Only
 * if @wanted (the loop still wants this answer): record in @f a changed
 * envelope file that does not read or parse (it is not tried again until
 * it changes), and move what the job loaded into @ks and @f, or the KEKs
 * it unwrapped from the envelope in memory into @ks.  A job nobody wants
 * records nothing.  The provider of a replaced set goes to @r.
 * True when a changed file was adopted.
 */
bool cmk_kms_job_adopt(struct cmk_kms_job *j, bool wanted,
		       struct cmk_kek_store *ks, struct cmk_kekfile *f,
		       struct cmk_retired *r);

/*
 * cmk_kms_job_release() - wipe and free whatever the job made and nobody
 * adopted; its provider goes to @r.
 */
void cmk_kms_job_release(struct cmk_kms_job *j, struct cmk_retired *r);

#endif /* CMK_KMSJOB_H */
