// SPDX-License-Identifier: GPL-2.0
/*
 * kmsjob.c - check and unseal, run on the agent's KMS worker (kmsjob.h).
 */
#include "daemon/kmsjob.h"

#include <string.h>

#include "core/deadline.h"
#include "kms/http.h"

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/*
 * The file's CMK answered (no, or not now): the file is good and names
 * the CMK the key owner now controls, so its answer is the job's.  Only a
 * file that does not load for a local reason (half-written, malformed, a
 * provider the configuration lacks, a provider call that failed here)
 * leaves the envelope in memory to ask.
 */
static bool file_answered(const struct cmk_kms_job *j)
{
	return j->bad.cls == CMK_EC_DEFINITIVE || j->bad.cls == CMK_EC_TRANSIENT;
}

static void take_file_answer(struct cmk_kms_job *j, int ret)
{
	j->ret = ret;
	j->err = j->bad;
	j->file_answer = true;
	cmk_err_clear(&j->bad);
}

/*
 * Load the envelope file into @j->fresh.  stat() first: a file replaced
 * during the load is seen as changed again next time, and loaded again.
 * On failure @j->bad says why, and *@unreadable whether the file itself
 * did not read or parse, or names a provider that does not open (only
 * that makes it a bad file: a KMS call that failed here is tried again).
 */
static int load(struct cmk_kms_job *j, bool *unreadable)
{
	int ret;

	if (stat(j->cfg->kek_envelope, &j->fresh_st))
		memset(&j->fresh_st, 0, sizeof(j->fresh_st));
	cmk_kek_store_init(&j->fresh);
	ret = cmk_kek_store_load(&j->fresh, j->cfg, false, j->audit, &j->bad);
	/*
	 * A provider that does not open (one the configuration lacks) cannot
	 * open until the agent restarts with another configuration: that is
	 * the file's fault too, and not worth a new try at every check.
	 */
	*unreadable = ret && (!j->fresh.loaded || !j->fresh.p);
	if (ret) {
		cmk_kek_store_free(&j->fresh);
		return ret;
	}
	j->loaded = true;
	return 0;
}

static void check(struct cmk_kms_job *j)
{
	struct stat st = { 0 };
	bool changed = !stat(j->cfg->kek_envelope, &st) &&
		       !same_file(&st, &j->file.loaded) &&
		       !same_file(&st, &j->file.bad);

	if (j->reload || changed) {
		bool unreadable;
		int ret = load(j, &unreadable);

		if (!ret)
			return;		/* the changed file's unwrap was the check */
		if (file_answered(j)) {
			/* Asked again at every check until it loads. */
			take_file_answer(j, ret);
			return;
		}
		/*
		 * A file that does not read or parse, or whose provider does
		 * not open: reported, not tried again until it changes.  A
		 * local failure of its CMK's call is tried again next check:
		 * a later revocation of that CMK must not go unseen.
		 */
		j->bad_st = st;
		j->bad_keep = changed && unreadable;
	}
	j->ret = cmk_kek_store_check(j->keks, NULL, false, &j->call, &j->err);
}

/*
 * The file does not load: unwrap the envelope in memory instead.  A
 * shallow copy of the main thread's KEK set shares its envelope and
 * provider (which only this worker uses) and takes the new KEKs, so the
 * set itself is not touched here; the copy is never freed as a set.
 */
static void unseal_in_memory(struct cmk_kms_job *j)
{
	struct cmk_kek_store mem = *j->keks;

	mem.cur = NULL;
	mem.prev = NULL;
	memset(mem.old, 0, sizeof(mem.old));
	j->ret = cmk_kek_store_unseal(&mem, j->audit, &j->err);
	if (!j->ret) {
		j->cur = mem.cur;
		j->prev = mem.prev;
		memcpy(j->old, mem.old, sizeof(j->old));
	}
}

static void unseal(struct cmk_kms_job *j)
{
	bool unreadable;
	int ret = load(j, &unreadable);

	if (!ret)
		return;
	if (!j->keks->loaded || !j->keks->p || file_answered(j)) {
		/* Nothing in memory (boot), or the file's CMK answered. */
		take_file_answer(j, ret);
		return;
	}
	/* The file does not load: the envelope in memory still can. */
	unseal_in_memory(j);
	if (j->ret)
		cmk_err_clear(&j->bad);	/* its refusal is the answer */
}

void cmk_kms_job_run(void *arg)
{
	struct cmk_kms_job *j = arg;
	uint64_t t0 = cmk_deadline_now_ms();

	for (size_t i = 0; i < j->n_retired; i++)
		cmk_provider_close(&j->retired[i]);
	j->n_retired = 0;
	j->ret = 0;
	j->loaded = false;
	j->file_answer = false;
	j->bad_keep = false;
	j->cur = NULL;
	j->prev = NULL;
	cmk_err_clear(&j->err);
	cmk_err_clear(&j->bad);
	memset(&j->call, 0, sizeof(j->call));
	/* One request per KMS call: the loop retries, on its schedule. */
	cmk_http_thread_max_attempts(1);
	j->one = NULL;
	if (j->kind == CMK_KMS_CHECK)
		check(j);
	else if (j->kind == CMK_KMS_RETIRED)
		j->ret = cmk_kek_store_unwrap_retired(j->keks, j->version, &j->one,
						      j->audit, &j->err);
	else
		unseal(j);
	j->latency_ms = (long)(cmk_deadline_now_ms() - t0);
}

/*
 * Free @ks, but leave its provider to be closed on the worker: closing one
 * can block (PKCS#11 C_Finalize, a KMIP TLS shutdown).  It is reset now (a
 * connection, tokens, a session: none of it waits there to be inherited
 * by a VM-fork clone or outlive a wipe); no call runs on it any more.
 */
static void free_retire(struct cmk_kek_store *ks, struct cmk_retired *r)
{
	cmk_provider_reset(ks->p);
	if (ks->p && r->n < CMK_RETIRED_MAX)
		r->p[r->n++] = ks->p;
	else
		cmk_provider_close(&ks->p);	/* cannot happen: one job at a time */
	ks->p = NULL;
	cmk_kek_store_free(ks);
}

void cmk_kms_job_hand_over(struct cmk_kms_job *j, struct cmk_retired *r)
{
	for (size_t i = 0; i < r->n; i++)
		j->retired[i] = r->p[i];
	j->n_retired = r->n;
	r->n = 0;
}

/* The KEKs of an unseal of the envelope in memory. */
static void free_keks(struct cmk_kms_job *j)
{
	cmk_secret_free(&j->cur);
	cmk_secret_free(&j->prev);
	cmk_secret_free(&j->one);
	for (size_t i = 0; i < CMK_ENVELOPE_RETIRED_MAX; i++)
		cmk_secret_free(&j->old[i]);
}

bool cmk_kms_job_has_keks(const struct cmk_kms_job *j)
{
	return (j->loaded && j->fresh.cur) || j->cur;
}

void cmk_kms_job_drop_keks(struct cmk_kms_job *j)
{
	if (j->loaded)
		cmk_kek_store_forget(&j->fresh);
	free_keks(j);
}

bool cmk_kms_job_adopt(struct cmk_kms_job *j, bool wanted,
		       struct cmk_kek_store *ks, struct cmk_kekfile *f,
		       struct cmk_retired *r)
{
	/* A job nobody wants (stale, cancelled) records nothing. */
	if (!wanted)
		return false;
	if (j->bad_keep)
		f->bad = j->bad_st;
	if (j->loaded) {
		free_retire(ks, r);
		*ks = j->fresh;		/* moves the envelope and the secrets */
		f->loaded = j->fresh_st;
		j->loaded = false;
		return true;
	}
	if (j->cur) {
		/* KEKs only: the provider that just unwrapped them stays as is. */
		cmk_secret_free(&ks->cur);
		cmk_secret_free(&ks->prev);
		ks->cur = j->cur;
		ks->prev = j->prev;
		j->cur = NULL;
		j->prev = NULL;
		for (size_t i = 0; i < CMK_ENVELOPE_RETIRED_MAX; i++) {
			cmk_secret_free(&ks->old[i]);
			ks->old[i] = j->old[i];
			j->old[i] = NULL;
		}
	}
	return false;
}

void cmk_kms_job_release(struct cmk_kms_job *j, struct cmk_retired *r)
{
	if (j->loaded)
		free_retire(&j->fresh, r);
	j->loaded = false;
	free_keks(j);
}
