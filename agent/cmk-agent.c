// SPDX-License-Identifier: GPL-2.0
/*
 * cmk-agent.c - the dm-cmk key agent (daemon).
 *
 *   cmk-agent [--config FILE] [--no-poweroff] [--no-kernel]
 *
 * Boot: read the config, harden the process, unseal the KEK (retrying a
 * KMS that cannot be reached until boot_deadline_s), open every configured
 * device, tell systemd READY=1.  Then one real CMK check every
 * check_interval (+ jitter) with the consequences agentloop.c decides.
 * Documentation/cmk-agent.rst is the manual.
 *
 * Two threads.  The KMS calls (checks, unseals) run on a worker thread
 * (worker.h, kmsjob.h), each bounded by check_timeout_ms.  This main thread
 * never waits on a KMS: it owns the leases (renewed on their own timer),
 * the kernel's events (dm-cmk "events" group), the systemd watchdog
 * (WATCHDOG=1 from this loop only, so a stuck loop stops it while a
 * hanging KMS call does not) and the signals.
 *
 * SIGTERM/SIGINT/SIGQUIT end the agent WITHOUT wiping kernel keys: restarting or
 * upgrading the agent must not interrupt database I/O, and the kernel
 * wipes every key by itself when its lease runs out, so an agent that is
 * gone (stopped, killed, crashed) cannot extend a key's life past
 * lease_ms.  They are acted on at once, also during boot retries and while
 * a KMS call hangs - except while policy poweroff's power-off waits for
 * sync(): that goes first (stop_deferred()).  SIGHUP runs a check now.  SIGPIPE, SIGXFSZ, SIGUSR1
 * and SIGUSR2 are ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <systemd/sd-daemon.h>

#include "daemon/agentloop.h"
#include "daemon/auditlimit.h"
#include "format/audit.h"
#include "daemon/checklog.h"
#include "daemon/bootstate.h"
#include "daemon/checknow.h"
#include "core/codec.h"
#include "format/config.h"
#include "core/deadline.h"
#include "device/binding.h"
#include "device/dm.h"
#include "core/fileio.h"
#include "device/forkwatch.h"
#include "device/genl.h"
#include "kms/http.h"
#include "daemon/keyserver.h"
#include "daemon/kmsjob.h"
#include "daemon/load.h"
#include "daemon/poweroff.h"
#include "core/secret.h"
#include "daemon/sqshint.h"
#include "volume/volume.h"
#include "daemon/wake.h"
#include "daemon/worker.h"

/* A device that failed to open or restore is retried after this long. */
#define DEVICE_RETRY_MS		10000

/* On stop, how long a KMS call may take to notice it was cancelled. */
#define STOP_WAIT_MS		2000

/* Audit lines of unchanged CMK check outcomes: one per this many ms. */
#define CHECK_LOG_EVERY_MS	60000

/* The same bad envelope file reason: noted again after this long. */
#define CMK_BAD_FILE_NOTE_MS	600000

enum dev_status {
	DEV_PENDING,		/* not opened yet (or open failed) */
	DEV_OPEN,		/* opened by this agent */
	DEV_OPERATOR_REVOKED,	/* cmkctl revoke marker present */
	DEV_GONE,		/* removed behind our back (cmkctl close) */
};

/* forkwatch.h's epochs are what http.c's kept connections compare. */
_Static_assert(CMK_EPOCH_NONE == CMK_HTTP_EPOCH_NONE &&
	       CMK_EPOCH_UNKNOWN == CMK_HTTP_EPOCH_UNKNOWN, "epoch values differ");

struct agent {
	struct cmk_config cfg;
	struct cmk_audit *audit;
	struct cmk_genl *genl;
	struct cmk_genl *events;	/* NULL: none (renewals find lost keys) */
	/* Replaced or freed only while the worker is idle (kmsjob.h). */
	struct cmk_kek_store keks;
	struct cmk_volume_ctx vol;
	struct cmk_loop loop;
	struct cmk_worker *worker;
	struct cmk_kms_job job;		/* the worker's while it runs */
	uint64_t job_id;
	uint64_t unstarted_id;		/* a job the worker could not take, or 0 */
	struct cmk_retired retired;	/* providers for the next job to close */
	/*
	 * Retired KEK versions, unwrapped one per worker job when the key
	 * socket first asks for one, never in the loop's unseal: a loop job
	 * that comes while one runs cancels it and starts after it.
	 */
	struct cmk_kms_job rjob;	/* the worker's while @rjob_on */
	bool rjob_on;
	unsigned int rjob_idx;		/* keks.env.retired[] index */
	unsigned long rjob_gen;		/* @kek_gen when it started */
	unsigned long kek_gen;		/* bumped at every forget() */
	uint32_t rwant;			/* bit per retired index asked for */
	unsigned int rfails[CMK_ENVELOPE_RETIRED_MAX];
	uint64_t rnext_ms[CMK_ENVELOPE_RETIRED_MAX];	/* backoff: not before */
	struct {			/* a loop job waiting for @rjob */
		bool on;
		enum cmk_job job;
		uint64_t id;
		uint64_t deadline_ms;
	} deferred;
	struct cmk_forkwatch fw;	/* the VM-fork epochs of the KEK and the job */
	enum dev_status *dev;
	uint64_t *retry_at;	/* after a failed open/restore: not before */
	char (*dev_msg)[CMK_ERR_MSG_MAX];
	bool no_poweroff;
	bool no_kernel;		/* --no-kernel: KEK only, genl stays NULL */
	struct cmk_forkwatch_source fws; /* the epoch kept connections check */
	bool fws_open;
	struct cmk_poweroff *poweroff;	/* begun: sync, then power off (once) */
	struct cmk_wake *hint;		/* hint sources on other threads post here */
	struct cmk_checknow checknow;	/* cmkctl check-now's tokens (sigqueue) */
	struct cmk_auditlimit hint_noise; /* hint lines, per enum cmk_hint */
	struct cmk_sqs_hint *sqs_hint;	/* NULL: no hint queue configured */
	struct cmk_keyserver *keys;	/* the key socket; NULL: not served */
	char bad_note[CMK_ERR_MSG_MAX];	/* the bad envelope file reason last noted */
	uint64_t bad_note_ms;		/* and when */
	unsigned int reload_asked;	/* requests to load the envelope again */
	unsigned int reload_done;	/* ... answered by a job the loop used */
	unsigned int reload_upto;	/* ... that the job under way answers */
	unsigned int lost;		/* bit per reason: keys a renewal found gone */
	struct cmk_checklog checklog;	/* which checks get an audit line */
	long last_latency_ms;
	time_t last_check_wall;
	time_t last_success_wall;
	struct cmk_kekfile kekfile;	/* the envelope file as last loaded */
	char state_path[4096];
	char boot_path[4096];		/* the throttled boot's backoff */
	unsigned int boot_saved;	/* throttles as that file has them */
	uint8_t boot_id[CMK_UUID_LEN];	/* the kernel's, named in that file */
	bool boot_id_ok;		/* else that file is neither read nor written */
	uint64_t boot_extended_ms;	/* start timeout asked of systemd, until */
};

static void note(void *ctx, const char *event, const char *msg,
		 const struct cmk_err *e)
{
	struct agent *a = ctx;

	cmk_volume_audit(&a->vol, event, NULL, msg,
			 e && e->cls != CMK_EC_NONE ? e : NULL,
			 !strcmp(event, "revoke"));
	fprintf(stderr, "cmk-agent: %s: %s%s%s\n", event, msg,
		e && e->cls != CMK_EC_NONE ? ": " : "",
		e && e->cls != CMK_EC_NONE ? e->msg : "");
}

/*
 * A flood of hints (SIGHUPs, queue messages) writes CMK_AUDITLIMIT_BURST
 * lines per source, then one a minute, and a "suppressed" line a minute at
 * most for the rest (daemon/auditlimit.h), as the key socket does for
 * refusals.
 */

static void hint_noise_summary(void *ctx, uint64_t from, unsigned long logged,
			       unsigned long dropped, unsigned int span_s)
{
	char msg[200];

	snprintf(msg, sizeof(msg),
		 "%lu hints suppressed: %lu more %s hints not logged one by one (%lu logged) in %u s",
		 dropped, dropped, from == CMK_HINT_OPERATOR ? "operator (SIGHUP)" : "event",
		 logged, span_s);
	note(ctx, "hint", msg, NULL);
}

/* Still unsealing at boot: a hint's check waits for the boot. */
static bool still_booting(const struct agent *a)
{
	return cmk_loop_boot_result(&a->loop, NULL) == -EINPROGRESS;
}

/* One hint's audit line, unless its source floods. */
static void note_hint(struct agent *a, enum cmk_hint from, const char *msg)
{
	if (cmk_auditlimit_admit(&a->hint_noise, from, cmk_deadline_now_ms()))
		note(a, "hint", msg, NULL);
}

/* Time spent suspended counts (intervals, leases), as for kernel leases. */
static uint64_t now_ms(void *ctx)
{
	(void)ctx;
	return cmk_deadline_now_ms();
}

/* Stops while the system sleeps: the loop takes sleep out of grace_s. */
static uint64_t awake_ms(void *ctx)
{
	(void)ctx;
	return cmk_deadline_awake_ms();
}

static uint32_t rnd(void *ctx)
{
	uint32_t r = 0;

	(void)ctx;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)now_ms(NULL) * 2654435761u;
	return r;
}

/* ops->start: hand a check or an unseal to the worker. */
static void start(void *ctx, enum cmk_job job, uint64_t id, uint64_t deadline_ms)
{
	struct agent *a = ctx;
	struct cmk_kms_job *j = &a->job;

	/*
	 * A retired version's unwrap is under way: cut it short (its deadline
	 * passes now: an HTTP call ends within a second) and start this job
	 * as soon as it has ended (retired_ended()).
	 */
	if (a->rjob_on) {
		cmk_worker_cancel(a->worker);
		a->deferred.on = true;
		a->deferred.job = job;
		a->deferred.id = id;
		a->deferred.deadline_ms = deadline_ms;
		return;
	}
	/*
	 * The worker still holds the job struct (an answer not collected):
	 * not a byte of it is touched; the loop hears of the failure from
	 * run() (cannot happen: one job at a time), as of a refused submit.
	 */
	if (cmk_worker_busy(a->worker)) {
		a->unstarted_id = id;
		return;
	}
	memset(j, 0, sizeof(*j));
	j->kind = job == CMK_JOB_UNSEAL ? CMK_KMS_UNSEAL : CMK_KMS_CHECK;
	j->cfg = &a->cfg;
	j->keks = &a->keks;
	j->audit = a->audit;
	j->file = a->kekfile;
	/* Until a job the loop uses has answered it. */
	j->reload = a->reload_asked != a->reload_done;
	a->reload_upto = a->reload_asked;
	cmk_kms_job_hand_over(j, &a->retired);
	a->job_id = id;
	/* Read before the KMS is asked, and again before its KEKs are adopted. */
	if (a->genl)
		cmk_forkwatch_job_start(&a->fw, a->genl);
	if (cmk_worker_submit(a->worker, cmk_kms_job_run, j, deadline_ms)) {
		/* Not taken (the worker is stopping): the providers are ours again. */
		for (size_t i = 0; i < j->n_retired; i++)
			a->retired.p[a->retired.n++] = j->retired[i];
		j->n_retired = 0;
		a->unstarted_id = id;
	}
}

/*
 * ops->cancel: the job's answer is no longer wanted; its waits that watch
 * the deadline end (deadline.h): HTTP within a second, KMIP within 100 ms.
 * A PKCS#11 call cannot be cut short: it ends when the token answers.
 */
static void cancel(void *ctx, uint64_t id)
{
	struct agent *a = ctx;

	if (id == a->job_id)
		cmk_worker_cancel(a->worker);
}

/* A job start() could not hand over: a local failure, so the loop retries. */
static void unstarted(struct agent *a)
{
	struct cmk_err e;
	uint64_t id = a->unstarted_id;

	if (!id)
		return;
	a->unstarted_id = 0;
	cmk_errf(&e, -EBUSY,
		 "the KMS worker has not handed back its previous job, so no new KMS call could start; retrying");
	note(a, "check", "KMS call not started", &e);
	cmk_loop_job_done(&a->loop, id, -EBUSY, &e);
}

static void write_check(struct agent *a, const struct cmk_kms_job *j)
{
	cmk_kek_store_audit_check(&a->keks, a->audit, &j->call, j->ret ? &j->err : NULL);
}

/*
 * The check's audit line: rate-limited (checklog.h), except that a yes
 * not written yet is written before the first KEY_SET it allows
 * (maintain()), so every restore in the log follows the check behind it.
 */
static void audit_check(struct agent *a, const struct cmk_kms_job *j)
{
	if (cmk_checklog_ended(&a->checklog, now_ms(NULL), j->ret,
			       j->ret ? j->err.reason : CMK_R_NONE))
		write_check(a, j);
}

/*
 * The worker finished a job: adopt a KEK set it loaded if the loop still
 * wants the answer (else wipe it), audit, and tell the loop.
 */
static void loop_job_ended(struct agent *a)
{
	struct cmk_kms_job *j = &a->job;
	bool wanted, reloaded;

	wanted = cmk_loop_job_wanted(&a->loop, a->job_id);
	reloaded = j->loaded;
	if (wanted && j->reload)
		a->reload_done = a->reload_upto;
	/*
	 * A bad envelope file is about the file: reported, remembered anyway;
	 * the same reason again (a file tried at every check) at most every
	 * CMK_BAD_FILE_NOTE_MS.
	 */
	if (j->bad.cls != CMK_EC_NONE &&
	    (strcmp(a->bad_note, j->bad.msg) ||
	     now_ms(NULL) - a->bad_note_ms >= CMK_BAD_FILE_NOTE_MS)) {
		note(a, "kek_reload", j->kind == CMK_KMS_CHECK ?
		     "KEK envelope changed on disk but does not load; still checking the envelope in memory: fix the file" :
		     "KEK envelope file does not load; unsealed the envelope in memory: fix the file",
		     &j->bad);
		snprintf(a->bad_note, sizeof(a->bad_note), "%s", j->bad.msg);
		a->bad_note_ms = now_ms(NULL);
	}
	if (j->file_answer && j->ret)
		note(a, "kek_reload", "KEK envelope changed on disk; its CMK refused it (or could not be asked): that is the check's answer",
		     &j->err);
	/*
	 * A check's reload while no KEK is held (revoked, wiped): its
	 * envelope is adopted, its KEKs are not; the unseal that follows the
	 * yes unwraps them again.
	 */
	if (j->kind == CMK_KMS_CHECK && !a->loop.kek_held)
		cmk_kms_job_drop_keks(j);
	/* --no-kernel: no kernel, no VM-fork epoch; the KEK is adopted as is. */
	if (wanted && cmk_kms_job_has_keks(j) && a->genl) {
		struct cmk_err fe;
		int ret = cmk_forkwatch_adopt(&a->fw, a->genl, &fe);

		if (ret == -ESTALE) {
			/* Unsealed by the parent VM, or by this clone: unknown. */
			note(a, "vmfork", "VM fork during the unseal", &fe);
			cmk_loop_key_wiped(&a->loop, DM_CMK_REASON_VMFORK);
			wanted = false;
		} else if (ret) {
			/* Never a KEK whose epoch nobody knows: a failed unseal. */
			j->ret = ret;
			j->err = fe;
			cmk_kms_job_release(j, &a->retired);
		} else {
			if (cmk_forkwatch_tell(&a->fw, &fe))
				note(a, "vmfork", "keys are installed without a VM-fork epoch", &fe);
			/* KEY_SET carries it: the kernel refuses it after a fork. */
			cmk_genl_set_epoch(a->genl, a->fw.kek);
		}
	}
	if (cmk_kms_job_adopt(j, wanted, &a->keks, &a->kekfile, &a->retired) &&
	    j->kind == CMK_KMS_CHECK)
		note(a, "kek_reload", "KEK envelope changed on disk: reloaded", NULL);
	cmk_kms_job_release(j, &a->retired);
	if (wanted) {
		bool loaded = reloaded || j->file_answer;

		a->last_check_wall = time(NULL);
		a->last_latency_ms = j->kind == CMK_KMS_CHECK && !loaded ?
				     j->call.latency_ms : j->latency_ms;
		if (!j->ret)
			a->last_success_wall = a->last_check_wall;
		/* A load audits its own unwraps; a check is rate-limited here. */
		if (j->kind == CMK_KMS_CHECK && !loaded)
			audit_check(a, j);
	}
	cmk_loop_job_done(&a->loop, a->job_id, j->ret, &j->err);
	cmk_checklog_done(&a->checklog);
}

#define RETIRED_BACKOFF_MS	1000u
#define RETIRED_BACKOFF_MAX_MS	60000u

/*
 * A retired version's unwrap ended: adopt its KEK if nothing was forgotten
 * meanwhile (a revoke, a VM fork) and the envelope still holds that
 * version there, else wipe it; a failure waits (1 s doubling to 60 s)
 * before a request may ask for that version again.  The KMS call's audit
 * line was written by the job.  Then the loop job it held back, if any.
 */
static void retired_ended(struct agent *a)
{
	struct cmk_kms_job *j = &a->rjob;
	unsigned int i = a->rjob_idx;

	a->rjob_on = false;
	if (!j->ret && j->one && a->rjob_gen == a->kek_gen && a->loop.kek_held &&
	    i < a->keks.env.n_retired &&
	    a->keks.env.retired[i].kek_version == j->version) {
		cmk_secret_free(&a->keks.old[i]);
		a->keks.old[i] = j->one;
		j->one = NULL;
		a->rfails[i] = 0;
	} else if (j->ret && i < CMK_ENVELOPE_RETIRED_MAX) {
		unsigned int n = a->rfails[i] < 6 ? a->rfails[i] : 6;
		uint64_t wait = (uint64_t)RETIRED_BACKOFF_MS << n;

		a->rfails[i]++;
		a->rnext_ms[i] = now_ms(NULL) +
				 (wait < RETIRED_BACKOFF_MAX_MS ? wait : RETIRED_BACKOFF_MAX_MS);
		fprintf(stderr, "cmk-agent: retired KEK version %u did not unwrap (try %u; asked again when a request names it, not before %llu ms): %s\n",
			j->version, a->rfails[i],
			(unsigned long long)(a->rnext_ms[i] - now_ms(NULL)), j->err.msg);
	}
	cmk_kms_job_release(j, &a->retired);
	if (a->deferred.on) {
		a->deferred.on = false;
		start(a, a->deferred.job, a->deferred.id, a->deferred.deadline_ms);
	}
}

static void job_ended(struct agent *a)
{
	if (!cmk_worker_done(a->worker))
		return;
	if (a->rjob_on)
		retired_ended(a);
	else
		loop_job_ended(a);
}

/*
 * The retired versions the key socket asked for: one unwrap job at a time,
 * only while the worker is idle and the agent holds the KEK.  Returns the
 * poll delay, shortened to the end of a backoff a wanted version waits on.
 */
static uint64_t retired_next(struct agent *a, uint64_t delay)
{
	struct cmk_kms_job *j = &a->rjob;
	uint64_t now = now_ms(NULL);
	unsigned int i;

	a->rwant |= cmk_keyserver_retired_wanted(a->keys);
	if (!a->rwant || a->rjob_on || !a->loop.kek_held || a->unstarted_id ||
	    cmk_worker_busy(a->worker))
		return delay;
	for (i = 0; i < a->keks.env.n_retired; i++) {
		if (!(a->rwant & (1u << i)))
			continue;
		if (a->keks.old[i]) {
			a->rwant &= ~(1u << i);	/* asked twice, already there */
			continue;
		}
		if (now >= a->rnext_ms[i])
			break;
		if (a->rnext_ms[i] - now < delay)
			delay = a->rnext_ms[i] - now;
	}
	if (i >= a->keks.env.n_retired)
		return delay;
	a->rwant &= ~(1u << i);
	memset(j, 0, sizeof(*j));
	j->kind = CMK_KMS_RETIRED;
	j->cfg = &a->cfg;
	j->keks = &a->keks;
	j->audit = a->audit;
	j->version = a->keks.env.retired[i].kek_version;
	cmk_kms_job_hand_over(j, &a->retired);
	if (cmk_worker_submit(a->worker, cmk_kms_job_run, j,
			      now + a->cfg.check_timeout_ms)) {
		for (size_t k = 0; k < j->n_retired; k++)
			a->retired.p[a->retired.n++] = j->retired[k];
		j->n_retired = 0;
		return delay;
	}
	a->rjob_on = true;
	a->rjob_idx = i;
	a->rjob_gen = a->kek_gen;
	return delay;
}

/*
 * ops->forget: every wipe of the KEK, and every VM fork (the loop forgets
 * on each, agentloop.h), ends here.  cmk_kek_store_forget() also resets the
 * provider (provider.h): KMIP's TLS connection closed without a word on
 * it, cached bearer tokens, AWS credentials and the IMDSv2 session token
 * wiped - after a fork, all of them the parent VM's.  A call under way
 * (the cancelled job) applies the reset as it returns, so the fresh
 * unseal, which runs only after it, starts from nothing.
 */
static void forget(void *ctx)
{
	struct agent *a = ctx;

	cmk_kek_store_forget(&a->keks);
	/* answers granted before the wipe do not leave after it */
	cmk_keyserver_drop_keys(a->keys);
	a->kek_gen++;		/* a retired unwrap under way is not adopted */
	a->rwant = 0;
	cmk_forkwatch_forget(&a->fw);
	if (a->genl)
		cmk_genl_set_epoch(a->genl, -1);
}

static void set_msg(struct agent *a, size_t i, const char *msg)
{
	snprintf(a->dev_msg[i], sizeof(a->dev_msg[i]), "%s", msg);
}

/* Open (boot) or restore one device; the device status follows. */
static int bring_up(struct agent *a, size_t i, struct cmk_err *e)
{
	const struct cmk_config_device *d = &a->cfg.devices[i];
	enum cmk_volume_how how = CMK_VOLUME_OPENED;
	int ret;

	if (cmk_volume_revoked(&a->cfg, d)) {
		if (a->dev[i] != DEV_OPERATOR_REVOKED)
			cmk_volume_audit(&a->vol, "restore", d,
					 "skipped: revoked by the operator (cmkctl open clears it)",
					 NULL, false);
		a->dev[i] = DEV_OPERATOR_REVOKED;
		set_msg(a, i, "revoked by the operator");
		return 0;
	}
	if (a->dev[i] == DEV_OPEN || a->dev[i] == DEV_OPERATOR_REVOKED) {
		bool exists;

		/* Opened once: restore if still there, never re-create. */
		ret = cmk_dm_exists(d->dm_name, &exists, e);
		if (ret)
			return ret;
		if (!exists) {
			a->dev[i] = DEV_GONE;
			set_msg(a, i, "device-mapper device removed");
			cmk_volume_audit(&a->vol, "restore", d,
					 "skipped: device-mapper device is gone (cmkctl close?)",
					 NULL, false);
			return 0;
		}
		ret = cmk_volume_restore(&a->vol, d, e);
	} else {
		ret = cmk_volume_open(&a->vol, d, &how, e);
	}
	if (ret) {
		set_msg(a, i, e->msg);
		/* Its header was refused, but its live key is kept renewed. */
		if (how == CMK_VOLUME_RENEWED)
			a->dev[i] = DEV_OPEN;
		return ret;
	}
	a->dev[i] = DEV_OPEN;
	set_msg(a, i, "");
	return 0;
}

static bool genl_stale(struct agent *a, int ret);

/*
 * A renewal found no key: ask the kernel why, so the loop can act as on
 * the event it may have missed (VM fork: unseal first; suspend: check).
 */
static void key_lost(struct agent *a, const struct cmk_config_device *d)
{
	struct cmk_dev_info info;
	struct cmk_err e;

	bool vmfork;

	if (cmk_genl_get(a->genl, d->key_name, &info, &e))
		return;
	vmfork = info.state == DM_CMK_STATE_WIPED && info.reason == DM_CMK_REASON_VMFORK;
	/* Its epoch tells a fork even when the wipe had another reason. */
	if (cmk_forkwatch_seen(&a->fw, info.has_epoch, info.epoch, vmfork))
		a->lost |= 1U << DM_CMK_REASON_VMFORK;
	else if (!vmfork && info.state == DM_CMK_STATE_WIPED && info.reason < 32)
		a->lost |= 1U << info.reason;
}

static int maintain(void *ctx, bool restore, uint32_t lease_ms, struct cmk_err *e)
{
	struct agent *a = ctx;
	int first = 0;
	bool busy = false;

	for (size_t i = 0; i < a->cfg.n_devices; i++) {
		const struct cmk_config_device *d = &a->cfg.devices[i];
		struct cmk_err de;
		int ret = 0;

		if (a->dev[i] == DEV_GONE)
			continue;
		if (a->dev[i] == DEV_OPEN && !cmk_volume_revoked(&a->cfg, d)) {
			ret = cmk_genl_lease_renew(a->genl, d->key_name, lease_ms, &de);
			if (genl_stale(a, ret))
				ret = cmk_genl_lease_renew(a->genl, d->key_name, lease_ms, &de);
			if (!ret)
				continue;
			if (ret != -ENOKEY && ret != -ENODEV)
				goto fail;
			/* The kernel lost the key: lease expiry, suspend, vmfork. */
			if (!restore && ret == -ENOKEY)
				key_lost(a, d);
		}
		if (!restore)
			continue;
		if (a->dev[i] == DEV_OPERATOR_REVOKED && cmk_volume_revoked(&a->cfg, d))
			continue;
		/* A device that failed is retried slowly: no audit flood. */
		if (now_ms(NULL) < a->retry_at[i])
			continue;
		/* A key goes back on a yes: that check's line comes first. */
		if (cmk_checklog_key_set(&a->checklog, now_ms(NULL)))
			write_check(a, &a->job);
		ret = bring_up(a, i, &de);
		if (!ret) {
			a->retry_at[i] = 0;
			continue;
		}
		if (ret == -EBUSY) {
			/* A system sleep is under way: the loop retries shortly. */
			busy = true;
			continue;
		}
		if (ret == -EKEYEXPIRED && cmk_forkwatch_kek_stale(&a->fw, a->genl)) {
			/*
			 * The kernel refused a key of the KEK unsealed before a
			 * VM fork (its event may still be on its way): act as
			 * on the event, unseal again first.
			 */
			a->lost |= 1U << DM_CMK_REASON_VMFORK;
			continue;
		}
		/*
		 * The envelope may have rotated under us: the next check loads
		 * it again (on the worker: never a KMS call here).
		 */
		if (ret == -EKEYREJECTED)
			a->reload_asked++;
		a->retry_at[i] = now_ms(NULL) + DEVICE_RETRY_MS;
fail:
		if (!first) {
			first = ret;
			*e = de;
		}
	}
	if (busy && !first)
		return cmk_errf(e, -EBUSY, "KEY_SET refused while a system sleep is under way");
	return busy ? -EBUSY : first;
}

/*
 * The family id is resolved once; a reloaded dm-cmk module gets a new one
 * and the old id answers ENOENT / EOPNOTSUPP.  Reconnect and say so.
 */
static bool genl_stale(struct agent *a, int ret)
{
	struct cmk_genl *g = NULL;
	struct cmk_err e;

	if (ret != -ENOENT && ret != -EOPNOTSUPP)
		return false;
	if (cmk_genl_open(&g, &e)) {
		note(a, "netlink", "reconnect to the dm-cmk family failed", &e);
		return false;
	}
	cmk_genl_close(&a->genl);
	a->genl = g;
	a->vol.genl = g;
	cmk_genl_set_epoch(g, a->fw.kek);
	note(a, "netlink", "dm-cmk family re-resolved (module reloaded?)", NULL);
	/* The events group of the old family is gone with it. */
	cmk_genl_close(&a->events);
	if (cmk_genl_events_open(&a->events, &e))
		note(a, "netlink", "cannot subscribe to dm-cmk events again", &e);
	return true;
}

static int wipe(void *ctx, enum dm_cmk_reason reason, struct cmk_err *e)
{
	struct agent *a = ctx;
	int first = 0;

	for (size_t i = 0; i < a->cfg.n_devices; i++) {
		struct cmk_err de;
		int ret = cmk_volume_wipe(&a->vol, &a->cfg.devices[i], reason, &de);

		if (genl_stale(a, ret))
			ret = cmk_volume_wipe(&a->vol, &a->cfg.devices[i], reason, &de);

		if (ret && ret != -ENODEV && !first) {
			first = ret;
			*e = de;
		}
	}
	return first;
}

static void poweroff_now(struct agent *a)
{
	struct cmk_err e;

	cmk_poweroff_now(&e);
	/* Still here (no CAP_SYS_BOOT?): keys are wiped anyway. */
	note(a, "poweroff", "keys stay wiped", &e);
}

/*
 * A power-off under way: when sync() returned, or waited long enough.  It
 * stays in a->poweroff once fired, so that a later wipe whose reboot()
 * would fail the same way starts no second sync() thread.
 */
static uint64_t poweroff_tick(struct agent *a, uint64_t delay)
{
	struct cmk_err e;
	uint64_t left;

	if (!cmk_poweroff_pending(a->poweroff))
		return delay;
	left = cmk_poweroff_left_ms(a->poweroff, now_ms(NULL));
	if (left)
		return left < delay ? left : delay;
	if (!cmk_poweroff_synced(a->poweroff))
		note(a, "poweroff", "sync() still blocked (writes held for a wiped key?): powering off without waiting for it", NULL);
	cmk_poweroff_fire(a->poweroff, &e);
	/* Still here (no CAP_SYS_BOOT?): keys are wiped anyway. */
	note(a, "poweroff", "keys stay wiped", &e);
	return delay;
}

static void action(void *ctx)
{
	struct agent *a = ctx;
	struct cmk_err e;

	if (a->no_poweroff) {
		note(a, "poweroff", "policy poweroff: suppressed by --no-poweroff", NULL);
		return;
	}
	if (a->poweroff) {
		if (!cmk_poweroff_pending(a->poweroff))
			note(a, "poweroff", "policy poweroff: the power-off failed before; keys stay wiped", NULL);
		return;		/* under way, or tried: one sync() thread */
	}
	/*
	 * sync() waits for writes the kernel holds for a wiped key (hold_ms):
	 * on a thread, while this loop goes on feeding the watchdog.
	 */
	if (cmk_poweroff_begin(&a->poweroff, now_ms(NULL), CMK_POWEROFF_SYNC_MS, &e)) {
		note(a, "poweroff", "policy poweroff: powering off without sync", &e);
		poweroff_now(a);
		return;
	}
	note(a, "poweroff", "policy poweroff: syncing file systems, then powering the machine off", NULL);
}

/* A setting that loads but is unwise (config.h): audited at start. */
static void config_warning(void *ctx, const char *msg)
{
	note(ctx, "config", msg, NULL);
}

static const struct cmk_loop_ops agent_ops = {
	.start = start, .cancel = cancel, .forget = forget,
	.maintain = maintain, .wipe = wipe, .action = action, .note = note,
	.now_ms = now_ms, .random = rnd, .awake_ms = awake_ms,
};

/* ---- kernel events ---------------------------------------------------------- */

static const struct cmk_config_device *device_of_key(const struct agent *a,
						     const char *key_name)
{
	for (size_t i = 0; i < a->cfg.n_devices; i++)
		if (!strcmp(a->cfg.devices[i].key_name, key_name))
			return &a->cfg.devices[i];
	return NULL;
}

static void on_event(const struct cmk_event *ev, void *arg)
{
	struct agent *a = arg;
	const struct cmk_config_device *d = device_of_key(a, ev->info.name);
	bool vmfork = ev->event == DM_CMK_EVENT_KEY_WIPED &&
		      ev->info.reason == DM_CMK_REASON_VMFORK;
	struct cmk_err e;

	/*
	 * A fork is the whole kernel's: any device's vmfork event, or any
	 * event whose epoch is not the KEK's, is one (acted on once).
	 */
	if (cmk_forkwatch_seen(&a->fw, ev->info.has_epoch, ev->info.epoch, vmfork))
		cmk_loop_key_wiped(&a->loop, DM_CMK_REASON_VMFORK);
	if (!d || vmfork)
		return;		/* not one of ours, or done */
	if (ev->event == DM_CMK_EVENT_KEY_WIPED) {
		cmk_loop_key_wiped(&a->loop, (enum dm_cmk_reason)ev->info.reason);
	} else if (ev->event == DM_CMK_EVENT_KEY_REJECTED) {
		cmk_errf(&e, -EKEYREJECTED,
			 "device %s: the kernel refused a key other than the one the device is bound to",
			 d->name);
		cmk_volume_audit(&a->vol, "key_rejected", d, NULL, &e, true);
	}
}

/* Read the kernel's events; after an overrun, ask it for every device. */
static void read_events(struct agent *a)
{
	struct cmk_err e;
	int ret;

	ret = cmk_genl_events_read(a->events, on_event, a, &e);
	if (ret == -ENOBUFS) {
		note(a, "netlink", "events lost: reading every device's state", &e);
		for (size_t i = 0; i < a->cfg.n_devices; i++)
			if (a->dev[i] == DEV_OPEN)
				key_lost(a, &a->cfg.devices[i]);
	} else if (ret) {
		note(a, "netlink", "reading dm-cmk events failed", &e);
	}
}

/* Keys a renewal (or an overrun) found gone, as if their event came. */
static void feed_lost(struct agent *a)
{
	while (a->lost) {
		unsigned int r = (unsigned int)__builtin_ctz(a->lost);

		a->lost &= ~(1U << r);
		cmk_loop_key_wiped(&a->loop, (enum dm_cmk_reason)r);
	}
}

/* ---- state file -------------------------------------------------------------- */

static const char *dev_status_name(enum dev_status s)
{
	static const char *const n[] = { "pending", "open", "revoked-by-operator", "gone" };

	return n[s];
}

static void add_time(json_object *o, const char *k, time_t t)
{
	char s[CMK_TIME_STR];

	if (t && !cmk_time_format(t, s))
		json_object_object_add(o, k, json_object_new_string(s));
}

static void write_state(struct agent *a)
{
	json_object *o = json_object_new_object(), *c, *k, *devs;
	const struct cmk_loop *l = &a->loop;
	char id[CMK_UUID_STR];
	const char *text;
	struct cmk_err e;

	json_object_object_add(o, "state", json_object_new_string(cmk_loop_state_name(l->state)));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	add_time(o, "updated", time(NULL));
	json_object_object_add(o, "kek_held", json_object_new_boolean(a->keks.cur != NULL));
	c = json_object_new_object();
	add_time(c, "time", a->last_check_wall);
	json_object_object_add(c, "result", json_object_new_string(
		!l->checks ? "none" : l->last_result ? "failure" : "success"));
	if (l->checks && l->last_result) {
		json_object_object_add(c, "error_class", json_object_new_string(
			cmk_err_class_name(l->last_err.cls)));
		json_object_object_add(c, "reason", json_object_new_string(
			cmk_reason_name(l->last_err.reason)));
		json_object_object_add(c, "message", json_object_new_string(l->last_err.msg));
	}
	json_object_object_add(c, "latency_ms", json_object_new_int64(a->last_latency_ms));
	json_object_object_add(c, "checks", json_object_new_int64((int64_t)l->checks));
	json_object_object_add(c, "consecutive_failures", json_object_new_int((int)l->fails));
	json_object_object_add(c, "late_answers", json_object_new_int64((int64_t)l->late_answers));
	json_object_object_add(o, "last_check", c);
	/* cmkctl check-now waits for "answered" to pass what it read before. */
	c = json_object_new_object();
	json_object_object_add(c, "received", json_object_new_int64((int64_t)l->hints));
	json_object_object_add(c, "answered", json_object_new_int64((int64_t)l->hints_answered));
	json_object_object_add(c, "checks", json_object_new_int64((int64_t)l->hint_checks));
	/* cmkctl check-now's tokens: answered, and still waiting. */
	cmk_checknow_json(&a->checknow, l->hints_answered, c);
	{
		/* ... and what a pending one waits for, so it can say. */
		uint64_t until, now = now_ms(NULL);
		enum cmk_hint_wait why = cmk_loop_hint_wait(l, &until);

		json_object_object_add(c, "waiting_for",
				       json_object_new_string(cmk_hint_wait_name(why)));
		json_object_object_add(c, "check_in_ms", json_object_new_int64(
			(int64_t)(until > now ? until - now : 0)));
	}
	json_object_object_add(o, "hints", c);
	json_object_object_add(o, "throttled", json_object_new_boolean(l->throttled));
	k = json_object_new_object();
	if (a->keks.loaded) {
		cmk_uuid_format(a->keks.env.kek_id, id);
		json_object_object_add(k, "id", json_object_new_string(id));
		json_object_object_add(k, "version", json_object_new_int((int)a->keks.env.cur.kek_version));
		json_object_object_add(k, "rotation_in_progress", json_object_new_boolean(a->keks.env.has_prev));
		json_object_object_add(k, "provider", json_object_new_string(a->keks.env.cur.provider));
		json_object_object_add(k, "key_ref", json_object_new_string(a->keks.env.cur.key_ref));
	}
	/* The VM-fork epoch its KEY_SETs carry (none: the module counts none). */
	if (a->keks.cur && a->fw.kek >= 0)
		json_object_object_add(k, "vm_fork_epoch", json_object_new_int64(a->fw.kek));
	json_object_object_add(o, "kek", k);
	c = json_object_new_object();
	json_object_object_add(c, "check_interval_ms", json_object_new_int((int)a->cfg.check_interval_ms));
	json_object_object_add(c, "lease_ms", json_object_new_int((int)a->cfg.lease_ms));
	json_object_object_add(c, "check_timeout_ms", json_object_new_int((int)a->cfg.check_timeout_ms));
	json_object_object_add(c, "renew_ms", json_object_new_int((int)l->renew_ms));
	json_object_object_add(c, "grace_s", json_object_new_int((int)a->cfg.grace_s));
	json_object_object_add(c, "policy", json_object_new_string(cmk_policy_name(a->cfg.policy)));
	json_object_object_add(o, "config", c);
	devs = json_object_new_array();
	for (size_t i = 0; i < a->cfg.n_devices; i++) {
		const struct cmk_config_device *d = &a->cfg.devices[i];
		json_object *dj = json_object_new_object();

		json_object_object_add(dj, "name", json_object_new_string(d->name));
		json_object_object_add(dj, "dm_name", json_object_new_string(d->dm_name));
		json_object_object_add(dj, "key_name", json_object_new_string(d->key_name));
		json_object_object_add(dj, "backing", json_object_new_string(d->backing));
		json_object_object_add(dj, "mode", json_object_new_string(cmk_mode_name(d->mode)));
		json_object_object_add(dj, "status", json_object_new_string(dev_status_name(a->dev[i])));
		if (a->dev_msg[i][0])
			json_object_object_add(dj, "message", json_object_new_string(a->dev_msg[i]));
		json_object_array_add(devs, dj);
	}
	json_object_object_add(o, "devices", devs);
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
	mkdir(a->cfg.state_dir, 0700);	/* as volume.c and binding.c make it */
	/*
	 * 0600: last_check.message quotes the KMS's answer, which can name
	 * credentials (an access key id, a principal, a client id); cmkctl
	 * status reads it as root.  The metrics textfile holds no texts.
	 */
	if (cmk_write_file_atomic(a->state_path, text, strlen(text), 0600, &e))
		fprintf(stderr, "cmk-agent: state file: %s\n", e.msg);
	json_object_put(o);
}

/*
 * node_exporter textfile (metrics_path): the same facts as the state file,
 * plus each device's kernel state and lease.  Never keys.
 */
static void write_metrics(struct agent *a)
{
	static const enum cmk_loop_state states[] = {
		CMK_LS_STARTING, CMK_LS_ACTIVE, CMK_LS_DEGRADED, CMK_LS_FAIL_OPEN,
		CMK_LS_UNREACHABLE, CMK_LS_REVOKED,
	};
	char *buf = NULL;
	size_t len = 0;
	struct cmk_err e;
	FILE *f;

	if (!a->cfg.metrics_path)
		return;
	f = open_memstream(&buf, &len);
	if (!f)
		return;
	fprintf(f, "# HELP cmk_agent_state Agent state (1 for the current one).\n"
		"# TYPE cmk_agent_state gauge\n");
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		fprintf(f, "cmk_agent_state{state=\"%s\"} %d\n",
			cmk_loop_state_name(states[i]), a->loop.state == states[i]);
	fprintf(f, "# HELP cmk_agent_last_check_timestamp_seconds Time of the last CMK check.\n"
		"# TYPE cmk_agent_last_check_timestamp_seconds gauge\n"
		"cmk_agent_last_check_timestamp_seconds %lld\n",
		(long long)a->last_check_wall);
	if (a->last_success_wall)
		fprintf(f, "# HELP cmk_agent_last_success_timestamp_seconds Time of the last successful CMK check.\n"
			"# TYPE cmk_agent_last_success_timestamp_seconds gauge\n"
			"cmk_agent_last_success_timestamp_seconds %lld\n",
			(long long)a->last_success_wall);
	fprintf(f, "# HELP cmk_agent_kms_latency_milliseconds Latency of the last KMS call.\n"
		"# TYPE cmk_agent_kms_latency_milliseconds gauge\n"
		"cmk_agent_kms_latency_milliseconds %ld\n"
		"# HELP cmk_agent_consecutive_failures Failed CMK checks in a row.\n"
		"# TYPE cmk_agent_consecutive_failures gauge\n"
		"cmk_agent_consecutive_failures %u\n"
		"# HELP cmk_agent_checks_total CMK checks since start.\n"
		"# TYPE cmk_agent_checks_total counter\n"
		"cmk_agent_checks_total %lu\n",
		a->last_latency_ms, a->loop.fails, a->loop.checks);
	fprintf(f, "# HELP cmk_device_lease_left_milliseconds Time until the kernel wipes the key.\n"
		"# TYPE cmk_device_lease_left_milliseconds gauge\n");
	for (size_t i = 0; i < a->cfg.n_devices; i++) {
		const struct cmk_config_device *d = &a->cfg.devices[i];
		struct cmk_dev_info info;

		if (cmk_genl_get(a->genl, d->key_name, &info, &e))
			continue;
		fprintf(f, "cmk_device_lease_left_milliseconds{device=\"%s\"} %u\n",
			d->name, info.has_lease ? info.lease_left_ms : 0);
		fprintf(f, "cmk_device_active{device=\"%s\"} %d\n", d->name,
			info.state == DM_CMK_STATE_ACTIVE);
	}
	if (fclose(f) == 0 &&
	    cmk_write_file_atomic(a->cfg.metrics_path, buf, len, 0644, &e))
		fprintf(stderr, "cmk-agent: metrics: %s\n", e.msg);
	free(buf);
}

/* ---- main ------------------------------------------------------------------------- */

static int usage(void)
{
	fputs("usage: cmk-agent [--config FILE] [--no-poweroff] [--no-kernel] [--print-load]\n"
	      "exit: 0 stopped by a signal, 1 error, 2 KMS refused at boot,\n"
	      "      3 KMS unreachable until boot_deadline_s, 4 a KMS call stuck\n", stderr);
	return 1;
}

static int exit_code(const struct cmk_err *e)
{
	return e->cls == CMK_EC_DEFINITIVE ? 2 : e->cls == CMK_EC_TRANSIENT ? 3 : 1;
}

/* The signals read from the signalfd: SIGHUP checks, the others stop. */
static void handled_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGQUIT);
	sigaddset(set, SIGHUP);
}

/*
 * A signal whose default action kills the process would end the agent
 * without its exit path (secrets wiped, "stop" audited, STOPPING=1): ignore
 * the ones nobody should use to stop it.  SIGPIPE: stderr or the syslog
 * socket may be a closed pipe, and then write() fails with EPIPE instead.
 * SIGXFSZ: an audit log over RLIMIT_FSIZE fails with EFBIG.  SIGUSR1/2:
 * not used, a stray kill must not stop the checks.  SIGTERM, SIGINT,
 * SIGQUIT and SIGHUP are blocked and read from a signalfd.
 */
static void setup_signals(void)
{
	static const int ignored[] = { SIGPIPE, SIGXFSZ, SIGUSR1, SIGUSR2 };
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		sigaction(ignored[i], &sa, NULL);
	handled_signals(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

/* sd_notify WATCHDOG=1 period (half of WatchdogSec=), 0 without a watchdog. */
static uint64_t watchdog_period_ms(void)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0 || !usec)
		return 0;
	return usec / 2000 ? usec / 2000 : 1;
}

/*
 * While unsealing at boot: keep a throttled boot's backoff for a restart
 * (bootstate.h), and tell systemd the start may take until boot_deadline_s
 * plus a margin (EXTEND_TIMEOUT_USEC): TimeoutStartSec= is only its floor,
 * so a throttled but healthy start is never killed (cmk-agent.rst).
 */
static void booting(struct agent *a)
{
	uint64_t left = cmk_loop_boot_left_ms(&a->loop), now = now_ms(NULL);
	struct cmk_boot_backoff b;
	struct cmk_err e;

	if (left && (now + left > a->boot_extended_ms + 1000 ||
		     now + left + 1000 < a->boot_extended_ms)) {
		a->boot_extended_ms = now + left;
		sd_notifyf(0, "EXTEND_TIMEOUT_USEC=%llu", (unsigned long long)left * 1000);
	}
	if (a->loop.boot_throttles == a->boot_saved || !a->boot_id_ok)
		return;
	cmk_loop_boot_backoff(&a->loop, &b);
	mkdir(a->cfg.state_dir, 0700);	/* as write_state() makes it */
	if (cmk_bootstate_save(a->boot_path, a->boot_id, &b, &e))
		fprintf(stderr, "cmk-agent: boot backoff: %s; a restart asks the KMS at once\n", e.msg);
	a->boot_saved = b.throttles;
}

static void booted(struct agent *a, uint64_t t0)
{
	struct cmk_boot_backoff none = { 0 };
	struct cmk_err e;
	int opened = 0;

	for (size_t i = 0; i < a->cfg.n_devices; i++)
		opened += a->dev[i] == DEV_OPEN;
	fprintf(stderr, "cmk-agent: %d of %zu devices usable %llu ms after start; checking every %u ms (deadline %u ms), renewing every %u ms\n",
		opened, a->cfg.n_devices, (unsigned long long)(now_ms(NULL) - t0),
		a->cfg.check_interval_ms, a->cfg.check_timeout_ms, a->loop.renew_ms);
	{
		struct cmk_load l;

		cmk_load_of(&a->cfg, &l);
		fprintf(stderr, "cmk-agent: KMS load of this configuration: %.1f requests per hour (at most %.1f while checks fail, %.1f while the KMS throttles); cmk-agent --print-load tables the largest fleet per quota\n",
			l.steady, l.failing, l.throttled);
	}
	if (a->boot_saved && !cmk_bootstate_save(a->boot_path, a->boot_id, &none, &e))
		a->boot_saved = 0;	/* booted: nothing to continue */
	sd_notifyf(0, "READY=1\nSTATUS=active, %d of %zu devices", opened,
		   a->cfg.n_devices);
}

/*
 * An exit (a signal, a stuck worker) while the policy's power-off waits for
 * sync(): power off first (within CMK_POWEROFF_SYNC_MS), exit with @status
 * only if that fails.  Abandoning it would leave the machine running.
 */
static bool stop_deferred(struct agent *a, int status, int *stop_after)
{
	if (!cmk_poweroff_pending(a->poweroff))
		return false;
	if (*stop_after < 0) {
		note(a, "stop", "a power-off is under way: powering off first", NULL);
		*stop_after = status;
	}
	return true;
}

/*
 * The main loop, from boot to stop: the loop's timers, the worker's
 * answers, the kernel's events, the watchdog and the signals.  Nothing in
 * it waits on a KMS.  Returns the exit status.
 */
static int run(struct agent *a, uint64_t t0)
{
	enum { FD_SIG, FD_JOB, FD_EVENTS, FD_POWEROFF, FD_HINT, FD_KEYS, FD_N };
	struct pollfd pfd[FD_N];
	uint64_t wd_every = watchdog_period_ms(), wd_next = 0;
	enum cmk_loop_state written = CMK_LS_STARTING;
	unsigned long written_checks = 0, written_hints = 0;
	uint64_t written_tokens = 0;
	int stop_after = -1;	/* exit status, once the power-off was fired */
	bool up = false;
	struct cmk_err e;
	sigset_t set;
	int ret;

	handled_signals(&set);
	pfd[FD_SIG].fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (pfd[FD_SIG].fd < 0) {
		fprintf(stderr, "cmk-agent: signalfd: %s\n", strerror(errno));
		return 1;
	}
	pfd[FD_JOB].fd = cmk_worker_fd(a->worker);
	pfd[FD_HINT].fd = cmk_wake_fd(a->hint);
	pfd[FD_KEYS].fd = cmk_keyserver_fd(a->keys);
	for (int i = 0; i < FD_N; i++)
		pfd[i].events = POLLIN;
	for (;;) {
		struct signalfd_siginfo si;
		uint64_t delay, now;

		delay = cmk_loop_tick(&a->loop);
		if (a->lost || a->unstarted_id) {
			feed_lost(a);
			unstarted(a);
			delay = cmk_loop_tick(&a->loop);
		}
		/* The check its messages asked for has started: they may go. */
		cmk_sqs_hint_tick(a->sqs_hint, &a->loop);
		ret = cmk_loop_boot_result(&a->loop, &e);
		if (ret && ret != -EINPROGRESS) {
			fprintf(stderr, "cmk-agent: cannot unseal the KEK: %s\n", e.msg);
			cmk_volume_audit(&a->vol, "boot", NULL, NULL, &e, true);
			ret = exit_code(&e);
			break;
		}
		if (ret == -EINPROGRESS)
			booting(a);
		if (!ret && !up) {
			up = true;
			booted(a, t0);
		}
		if (stop_after < 0 && cmk_loop_stuck(&a->loop)) {
			/*
			 * A KMS call that ignores its deadline holds the worker:
			 * no check can run again.  The grace policy has wiped
			 * the keys (the loop waits for that), so exiting costs
			 * nothing; systemd restarts the agent, whose fresh
			 * unseal restores the devices once the KMS answers.
			 */
			cmk_errf(&e, -ETIMEDOUT,
				 "a KMS call has not returned %d s after its deadline (check_timeout_ms %u) and the keys are wiped (%s): the KMS worker is stuck; exiting so that the agent is restarted",
				 CMK_STUCK_MS / 1000, a->cfg.check_timeout_ms,
				 cmk_loop_state_name(a->loop.state));
			fprintf(stderr, "cmk-agent: %s\n", e.msg);
			cmk_volume_audit(&a->vol, "stop", NULL, NULL, &e, true);
			ret = 4;
			if (!stop_deferred(a, ret, &stop_after))
				break;
		}
		if (up && (a->loop.state != written || a->loop.checks != written_checks ||
			   a->loop.hints_answered != written_hints ||
			   a->checknow.received != written_tokens)) {
			written = a->loop.state;
			written_checks = a->loop.checks;
			written_hints = a->loop.hints_answered;
			written_tokens = a->checknow.received;
			write_state(a);
			write_metrics(a);
			sd_notifyf(0, "STATUS=%s, %lu checks",
				   cmk_loop_state_name(a->loop.state), a->loop.checks);
		}
		/* Only this loop feeds the watchdog: if it is stuck, systemd knows. */
		now = now_ms(NULL);
		if (wd_every && now >= wd_next) {
			sd_notify(0, "WATCHDOG=1");
			wd_next = now + wd_every;
		}
		if (wd_every && wd_next - now < delay)
			delay = wd_next - now;
		delay = poweroff_tick(a, delay);
		/* Clients past their deadline are closed when it comes. */
		if (a->keys) {
			/* deadlines only: requests wait for the events, below */
			uint64_t kd = cmk_keyserver_run(a->keys, now_ms(NULL), false);

			if (kd < delay)
				delay = kd;
		}
		if (stop_after >= 0 && !cmk_poweroff_pending(a->poweroff)) {
			ret = stop_after;	/* powering off failed: stop now */
			break;
		}
		delay = retired_next(a, delay);
		{
			/* a flood's "suppressed" line when it is due */
			uint64_t hd = cmk_auditlimit_tick(&a->hint_noise, now_ms(NULL));

			if (hd < delay)
				delay = hd;
		}
		pfd[FD_EVENTS].fd = a->events ? cmk_genl_fd(a->events) : -1;
		/* Only while pending: once fired its eventfd stays readable. */
		pfd[FD_POWEROFF].fd = cmk_poweroff_pending(a->poweroff) ?
				      cmk_poweroff_fd(a->poweroff) : -1;
		if (poll(pfd, FD_N, delay > INT_MAX ? INT_MAX : (int)delay) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "cmk-agent: poll: %s\n", strerror(errno));
			ret = 1;
			break;
		}
		if ((pfd[FD_SIG].revents & POLLIN) &&
		    read(pfd[FD_SIG].fd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo != SIGHUP) {
				note(a, "stop", "signal: exiting; kernel keys stay until their lease ends",
				     NULL);
				ret = 0;
				if (!stop_deferred(a, ret, &stop_after))
					break;
				continue;
			}
			if (cmk_loop_hint(&a->loop, CMK_HINT_OPERATOR)) {
				note_hint(a, CMK_HINT_OPERATOR, still_booting(a) ?
					  "SIGHUP (cmkctl check-now) during the boot unseal: checking the CMK right after it" :
					  "SIGHUP (cmkctl check-now): checking the CMK now");
				if (si.ssi_code == SI_QUEUE && si.ssi_int)
					cmk_checknow_add(&a->checknow, si.ssi_int, a->loop.hints,
							 a->loop.hints_answered);
			}
		}
		/* Hints posted by other threads: one check for all of them. */
		if ((pfd[FD_HINT].revents & POLLIN) && cmk_wake_take(a->hint) &&
		    cmk_loop_hint(&a->loop, CMK_HINT_EVENT)) {
			note_hint(a, CMK_HINT_EVENT, still_booting(a) ?
				  "revocation hint during the boot unseal: checking the CMK right after it (within hint_spread_ms of the hint)" :
				  "revocation hint: checking the CMK within hint_spread_ms");
			cmk_sqs_hint_asked(a->sqs_hint, &a->loop);
		}
		/*
		 * Events first: a fork reported in the same wake-up as a job's
		 * answer makes that answer stale before it is used.
		 */
		if (pfd[FD_EVENTS].fd >= 0 && (pfd[FD_EVENTS].revents & (POLLIN | POLLERR)))
			read_events(a);
		if (pfd[FD_JOB].revents & POLLIN)
			job_ended(a);
		/*
		 * Key requests after the job's answer: a revocation it brought
		 * refuses them in this same wake-up.
		 */
		if (pfd[FD_KEYS].fd >= 0 && (pfd[FD_KEYS].revents & POLLIN))
			cmk_keyserver_run(a->keys, now_ms(NULL), true);
	}
	close(pfd[FD_SIG].fd);
	sd_notify(0, "STOPPING=1");
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "no-poweroff", no_argument, NULL, 'n' },
		{ "print-load", no_argument, NULL, 'l' },
		{ "no-kernel", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf = CMK_CONFIG_PATH;
	struct agent a;
	struct cmk_err e;
	uint64_t t0;
	bool print_load = false;
	int c, ret = 1;

	memset(&a, 0, sizeof(a));
	cmk_checklog_init(&a.checklog, CHECK_LOG_EVERY_MS);
	cmk_forkwatch_init(&a.fw);
	cmk_kek_store_init(&a.keks);
	t0 = now_ms(NULL);
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			conf = optarg;
			break;
		case 'n':
			a.no_poweroff = true;
			break;
		case 'l':
			print_load = true;
			break;
		case 'K':
			a.no_kernel = true;
			break;
		default:
			return usage();
		}
	}
	if (optind != argc)
		return usage();
	/* Signals are read from a signalfd; block them from the start (and
	 * before the worker thread exists, which inherits the mask). */
	setup_signals();

	if (cmk_harden_process(&e) || cmk_http_global_init(&e) ||
	    cmk_config_load(conf, &a.cfg, &e)) {
		fprintf(stderr, "cmk-agent: %s\n", e.msg);
		return 1;
	}
	if (print_load) {
		printf("%s:\n", conf);
		cmk_load_print(stdout, &a.cfg);
		cmk_config_free(&a.cfg);
		return 0;
	}
	snprintf(a.state_path, sizeof(a.state_path), "%s/agent.json", a.cfg.state_dir);
	a.dev = calloc(a.cfg.n_devices + 1, sizeof(*a.dev));
	a.dev_msg = calloc(a.cfg.n_devices + 1, sizeof(*a.dev_msg));
	a.retry_at = calloc(a.cfg.n_devices + 1, sizeof(*a.retry_at));
	a.vol.opened = calloc(a.cfg.n_devices + 1, sizeof(*a.vol.opened));
	if (!a.dev || !a.dev_msg || !a.retry_at || !a.vol.opened) {
		fprintf(stderr, "cmk-agent: out of memory\n");
		goto out;
	}
	/*
	 * --no-kernel (cmk-agent.rst): the CMK checks and the KEK without the
	 * dm-cmk module, for KMS load tests and canaries; a device needs it.
	 */
	if (a.no_kernel && a.cfg.n_devices) {
		fprintf(stderr, "cmk-agent: --no-kernel: %s configures %zu device(s), which need the dm-cmk module; remove the [device] sections or drop --no-kernel\n",
			conf, a.cfg.n_devices);
		goto out;
	}
	/* Before any KMS request: no kept connection outlives a VM fork. */
	if (!a.no_kernel && !cmk_forkwatch_source_open(&a.fws, &e)) {
		a.fws_open = true;
		cmk_http_set_epoch_source(cmk_forkwatch_source_read, &a.fws);
	}
	if (cmk_audit_open(a.cfg.audit_log, a.cfg.syslog, "cmk-agent", &a.audit, &e) ||
	    (!a.no_kernel && cmk_genl_open(&a.genl, &e)) ||
	    cmk_worker_start(&a.worker, &e) || cmk_wake_open(&a.hint, &e) ||
	    cmk_sqs_hint_start(&a.sqs_hint, &a.cfg, a.audit, a.hint, &e)) {
		fprintf(stderr, "cmk-agent: %s\n", e.msg);
		goto out;
	}
	/* Without events the agent still works: renewals find lost keys. */
	if (!a.no_kernel && cmk_genl_events_open(&a.events, &e))
		fprintf(stderr, "cmk-agent: %s; lost keys are found at the next renewal\n", e.msg);
	a.vol.cfg = &a.cfg;
	a.vol.genl = a.genl;
	a.vol.audit = a.audit;
	a.vol.keks = &a.keks;
	cmk_config_warnings(&a.cfg, config_warning, &a);
	cmk_loop_init(&a.loop, &agent_ops, &a, &a.cfg);
	{
		/* A restart of a throttled boot continues its backoff. */
		struct cmk_boot_backoff b = { 0 };

		snprintf(a.boot_path, sizeof(a.boot_path), "%s/%s", a.cfg.state_dir,
			 CMK_BOOTSTATE_FILE);
		a.boot_id_ok = !cmk_boot_id(a.boot_id, &e);
		if (!a.boot_id_ok)
			fprintf(stderr, "cmk-agent: %s; a throttled boot's backoff is not kept across restarts\n",
				e.msg);
		else if (cmk_bootstate_load(a.boot_path, a.boot_id, &b, &e))
			fprintf(stderr, "cmk-agent: %s\n", e.msg);
		cmk_loop_boot_resume(&a.loop, &b);
		a.boot_saved = b.throttles;
	}
	cmk_auditlimit_init(&a.hint_noise, CMK_AUDITLIMIT_PERIOD_MS, hint_noise_summary, &a);
	/*
	 * The key socket (keyserver.h) serves sealed objects only; a socket
	 * that cannot be made is reported and the block devices go on.
	 */
	if (cmk_keyserver_open(&a.keys, &a.cfg, a.audit, &a.loop, &a.keks, &e)) {
		fprintf(stderr, "cmk-agent: %s; data keys for sealed objects are not served\n",
			e.msg);
		cmk_volume_audit(&a.vol, "key_socket", NULL, "not served", &e, false);
	}
	sd_notify(0, "STATUS=unsealing the KEK");
	ret = run(&a, t0);
	cmk_auditlimit_flush(&a.hint_noise);
out:
	cmk_sqs_hint_stop(&a.sqs_hint);	/* before the wake it posts to */
	cmk_keyserver_close(&a.keys);	/* before the KEKs it reads */
	/*
	 * A KMS call that ignores its cancelled deadline keeps the worker, and
	 * what it reads (config, provider, audit log): wipe the KEKs and end
	 * the process without freeing anything or running exit handlers.
	 */
	if (!cmk_worker_stop(&a.worker, STOP_WAIT_MS)) {
		cmk_kek_store_forget(&a.keks);
		fprintf(stderr, "cmk-agent: a KMS call is still running; exiting without waiting for it\n");
		fflush(NULL);
		_exit(ret);
	}
	cmk_kms_job_release(&a.job, &a.retired);
	cmk_kms_job_release(&a.rjob, &a.retired);
	cmk_poweroff_free(&a.poweroff);		/* left alone while sync() runs */
	cmk_kek_store_free(&a.keks);
	for (size_t i = 0; i < a.retired.n; i++)
		cmk_provider_close(&a.retired.p[i]);
	cmk_wake_close(&a.hint);
	cmk_genl_close(&a.events);
	cmk_genl_close(&a.genl);
	if (a.fws_open) {
		cmk_http_set_epoch_source(NULL, NULL);
		cmk_forkwatch_source_close(&a.fws);
	}
	cmk_audit_close(&a.audit);
	free(a.dev);
	free(a.dev_msg);
	free(a.retry_at);
	free(a.vol.opened);
	cmk_config_free(&a.cfg);
	return ret;
}
