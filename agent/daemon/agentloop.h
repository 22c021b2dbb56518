/* SPDX-License-Identifier: GPL-2.0 */
/*
 * agentloop.h - the agent's decisions, apart from its I/O.
 *
 * The state machine of cmk-agent.  It never waits: the KMS calls (a CMK
 * check, an unseal of the KEK) run as jobs on a worker (ops->start) whose
 * results come back through cmk_loop_job_done(); everything else it does
 * to the world (leases, restores, wipes, audit) goes through struct
 * cmk_loop_ops and returns at once.  The unit tests drive it with a fake
 * KMS and a fake clock; cmk-agent.c wires in the worker, netlink and audit.
 *
 * Timers (cmk_loop_tick() does what is due and says when to call again):
 *
 *   check     one CMK check every check interval (+ jitter) after the last
 *             answer; the first after the boot unseal anywhere in one whole
 *             interval (a fleet that booted together spreads out).  After
 *             a failure, exponential backoff with full jitter: a window of
 *             a quarter interval doubling up to two intervals (mean: one
 *             interval); after a throttled answer, see "Throttling".  One
 *             job at a time, one KMS request per check (http.h).
 *   deadline  a job with no answer check_timeout_ms after it started is a
 *             transient failure (timeout) dated from its start; a yes it
 *             gives later is ignored, a definitive no still revokes.  A
 *             job an event made stale is no failure at its deadline (the
 *             fresh job waits for it); only once it is stuck, CMK_STUCK_MS
 *             past its deadline, does a failure start (dated then).  A
 *             stuck job ends the process (cmk_loop_stuck()) only once the
 *             policy wiped the keys.
 *   renew     every lease_ms / 4, LEASE_RENEW, whatever the KMS is doing:
 *             while the KEK is held and the state keeps keys (active,
 *             degraded within grace_s, fail-open).  A renewal is a local
 *             decision from the last answer and the grace policy, so a KMS
 *             call that hangs never lets a lease run out; and it never
 *             lets a key outlive what the agent itself would keep if it
 *             died right then: lease_ms after the last yes (active),
 *             grace_s plus a quarter lease after the first failure
 *             (degraded).  Only fail-open renews a full lease blindly.
 *   grace     grace_s after the start of the first failed check of a run of
 *             failures, the policy applies, answer or no answer (up to
 *             throttle_grace_s later while the KMS throttles).
 *   sleep     time the system spent suspended or hibernated (ops->awake_ms
 *             tells it) does not count toward a job's deadline, its stuck
 *             measure, grace_s or boot_deadline_s: those timers move on by
 *             the time slept.  Leases, renewals and the check interval
 *             count it (CLOCK_BOOTTIME, as the kernel's leases do).
 *
 * Answers:
 *
 *   check ok           restore keys the kernel lost (lease expiry, suspend,
 *                      agent restart) unless an operator revoked the device;
 *                      without a KEK (after a revoke, a fail-closed wipe or a
 *                      VM fork) unseal it first, then restore.
 *   definitive error   revoke at once: KEY_WIPE (REVOKED) every device of
 *                      this CMK, wipe the KEK from memory, audit, and power
 *                      off under policy poweroff.  Checking goes on, so that
 *                      a re-enabled CMK brings the volumes back: one regular
 *                      check, then, while the answer stays no, in windows
 *                      of 2, 4, up to CMK_REVOKED_MAX_INTERVALS intervals
 *                      (in the upper half of each): a revoked fleet leaves
 *                      a throttling KMS's quota to the agents that still
 *                      wait for their answer.  A hint checks at once.
 *   transient error    (or a local error, or no answer by the deadline)
 *                      within grace_s keep the keys (state degraded); after
 *                      it: wipe / poweroff -> KEY_WIPE (KMS_UNREACHABLE) and
 *                      wipe the KEK; none -> keep keys and leases (fail open,
 *                      audited once).
 *
 * Kernel events (cmk_loop_key_wiped()):
 *
 *   vmfork             the KEK in memory came from the VM this one was cloned
 *                      from: forget it, ignore any KMS job under way (a yes;
 *                      a definitive no still revokes), and unseal again (a
 *                      fresh, audited KMS decrypt) before any key is
 *                      restored.
 *   suspend, lease_expired, policy
 *                      check the CMK at once (ignoring a job under way)
 *                      and restore the keys on success: the kernel holds I/O
 *                      for hold_ms meanwhile.
 *   while the boot unseals, suspend, lease_expired and policy do nothing
 *                      (its success restores every device; a restarted
 *                      agent gets one per device), and a vmfork only
 *                      replaces an unseal under way: neither cancels the
 *                      boot's backoff or a hold the KMS asked for.
 *   after any of these, the job under way is cancelled (ops->cancel), so
 *   the fresh one starts within about a second, not up to
 *   check_timeout_ms later.
 *   a restore refused with EBUSY (a system sleep is under way): check again
 *                      and restore after CMK_RESTORE_RETRY_MS, doubling up
 *                      to CMK_RESTORE_RETRY_MAX_MS while it lasts, plus up
 *                      to half as much at random (each retry is a real
 *                      KMS decrypt: no fleet in lockstep).
 *
 * Throttling (an answer with reason CMK_R_THROTTLED: HTTP 429, AWS
 * ThrottlingException, Azure Throttled, GCP RESOURCE_EXHAUSTED, ...) is
 * neither a yes nor a no.  It is a failure of the run (state degraded,
 * leases renewed as within grace_s), but:
 *
 *   backoff   a throttled answer sets the backoff window to
 *             CMK_THROTTLE_MAX_INTERVALS intervals at once (a quarter of
 *             grace_s + throttle_grace_s at most, two intervals at least);
 *             the next check falls in the middle half of the window (a
 *             mean of half of it: a quarter of the healthy rate).  Each
 *             yes shrinks the window by CMK_PACE_SHRINK_PCT %, and the
 *             regular schedule is back once the window's mean is the
 *             regular gap: a fleet over its quota comes back under it in
 *             one round and climbs back slowly, so that it asks close to
 *             the quota rather than 1.6 x it.  Never sooner than the
 *             answer's Retry-After (err.retry_after_ms, capped alike),
 *             which not even a hint overrides.  The longest wait between
 *             two checks is therefore the window, and a revocation during
 *             a throttle wipes within that window + check_timeout_ms +
 *             grace_s + throttle_grace_s (cmk_loop_wipe_bound_ms()).
 *   grace     while the KMS itself (err.kms_throttled: not a metadata
 *             service's plain HTTP 429) answered "throttled" within the
 *             last throttle window + check_timeout_ms (the longest a
 *             throttled run waits for its next answer), the policy
 *             applies up to throttle_grace_s after grace_s would have,
 *             not at grace_s: a throttled answer comes over TLS from the
 *             KMS itself, so the KMS is reachable and answering, and a
 *             fleet that overloads its own KMS must not wipe itself - nor
 *             because one timeout or 5xx came among its throttled
 *             answers: while the grace runs, the next check starts no later
 *             than check_timeout_ms before its end, whatever the backoff
 *             (so an answer that extends it can still come); a failure
 *             itself extends nothing (a network attacker can make those).
 *             Once no throttled answer came for that long, the
 *             policy applies (at grace_s, or at once if past it); never
 *             later than grace_s + throttle_grace_s after the first
 *             failure; a definitive no revokes at once, throttled or not.
 *
 * Hints (cmk_loop_hint()): something outside the loop asks for a real
 * CMK check now - an operator (cmkctl check-now, SIGHUP) or an event
 * source (a revocation notice from a queue).  The contract:
 *
 *   no authority       a hint never changes the state, the keys, the KEK
 *                      or the grace period by itself; only the KMS answer
 *                      of the check it causes does (a no revokes, a yes
 *                      restores), as for any other check.
 *   at once            worker idle: the check starts at the next
 *                      cmk_loop_tick(), which the caller runs right after;
 *                      an event's hint (CMK_HINT_EVENT), which reaches a
 *                      whole fleet at once, at a random time within
 *                      hint_spread_ms (so that N agents ask N / spread
 *                      requests a second, not N in the same one); an
 *                      operator's at once.
 *   job under way      it is not cancelled and its answer counts as usual;
 *                      since it was asked before the hint, one more check
 *                      starts as soon as it ends.
 *   coalesced          hints that arrive before the check they ask for has
 *                      started are one hint: a burst costs one KMS call.
 *   paced              checks started by hints are at least
 *                      CMK_HINT_MIN_GAP_MS apart (start to start), so a
 *                      flood of hints costs at most one KMS request per
 *                      CMK_HINT_MIN_GAP_MS; a hint inside the gap is kept
 *                      and served when the gap ends.
 *   backoff            while the run is throttled (or paced back up after
 *                      a throttle) or failing, checks that answer hints
 *                      take tokens from a budget: CMK_HINT_BURST at once,
 *                      refilled at one per backoff window (the throttle
 *                      window, or the failure backoff's current window):
 *                      a flood of hints costs the backoff schedule plus
 *                      CMK_HINT_BURST and one check per window, not one a
 *                      second, and a junk hint does not make a real one
 *                      seconds later wait for the schedule.  A hint with
 *                      no token left is kept and served by the next check
 *                      (scheduled, or when a token is back).  Never
 *                      inside a hold the KMS asked for (Retry-After): the
 *                      check starts when it ends.  While the last answer
 *                      is a no (revoked) the window is the revoked
 *                      schedule's (one interval after the first no,
 *                      doubling up to CMK_REVOKED_MAX_INTERVALS): a hint
 *                      checks at once while a token is left (the key may
 *                      be back), a flood costs one check per window.
 *   failed             a hint whose check fails - throttled, a 5xx, a
 *                      local error, no answer by its deadline - stays
 *                      pending (its queue message is gone) and is asked
 *                      again in a full-jitter window of CMK_HINT_RETRY_MS
 *                      doubling up to CMK_HINT_RETRY_MAX_MS (once the
 *                      worker is free), never inside a hold, at most
 *                      CMK_HINT_RETRIES times until the KMS says yes or
 *                      no; then it waits for the budget or the schedule.
 *                      Revoked or wiped, no quick retries.  A timed-out
 *                      check's late definitive no answers its hints (no
 *                      retry follows) unless more came since.
 *   boot               while the boot unseal runs a hint is kept, and its
 *                      check starts as soon as the boot unseal succeeded
 *                      (an event's hint_spread_ms counts from the hint;
 *                      pacing and budget as above): the unseal's answer
 *                      may predate the revocation the hint reports, so
 *                      the keys it loaded must not wait for the schedule.
 *                      A hint never brings the boot's next unseal forward
 *                      (its backoff, Retry-After or hold) and the boot
 *                      unseal never answers it.  After a failed boot a
 *                      hint does nothing: there is no key to keep or wipe.
 *
 * Threads other than the main one never call the loop: they post to a
 * struct cmk_wake (daemon/wake.h), whose fd the main loop polls and turns
 * into cmk_loop_hint() calls.
 *
 * Boot (state starting): unseal, retrying transient errors (and deadlines)
 * with capped exponential backoff and jitter until boot_deadline_s; a
 * definitive or local error fails at once.  Once unsealed, every device is
 * opened (ops->maintain with restore) and the state is active.  A
 * throttled answer (a region restarting over its quota) spaces the
 * retries out instead: full jitter over a window of CMK_BOOT_THROTTLE_MS
 * doubling up to CMK_BOOT_THROTTLE_MAX_MS, never sooner than its
 * Retry-After (honoured up to the boot deadline); a retry that would fall
 * past boot_deadline_s is not made, and the boot fails at it.  The
 * boot deadline stays boot_deadline_s: systemd's start timeout and what
 * waits for the volumes bound it, and a boot that gives up is restarted
 * (RestartSec) - one more spaced-out request, not a burst.
 *
 * The throttled boot's backoff outlives the process: the agent keeps it
 * (cmk_loop_boot_backoff()) in a file of the per-boot state directory
 * (daemon/bootstate.h) and the restarted agent continues it
 * (cmk_loop_boot_resume()): its first unseal waits, with full jitter,
 * over the window of the last throttled answer and never before the time
 * the backoff (or Retry-After) allowed next, instead of asking at once
 * with a 1 s window.  A state older than CMK_BOOT_RESUME_MAX_MS is no
 * restart loop's and is ignored.
 */
#ifndef CMK_AGENTLOOP_H
#define CMK_AGENTLOOP_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/dm-cmk.h>

#include "format/config.h"
#include "core/err.h"

enum cmk_loop_state {
	CMK_LS_STARTING,
	CMK_LS_ACTIVE,		/* CMK answers; keys installed */
	CMK_LS_DEGRADED,	/* KMS unreachable, within grace: keys kept */
	CMK_LS_FAIL_OPEN,	/* grace over, policy none: keys kept */
	CMK_LS_UNREACHABLE,	/* grace over, keys and KEK wiped */
	CMK_LS_REVOKED,		/* definitive error: keys and KEK wiped */
};

/* A KMS job (CMK_JOB_NONE: the worker is idle). */
enum cmk_job {
	CMK_JOB_NONE,
	CMK_JOB_CHECK,		/* a real unwrap of the wrapped KEK, result wiped */
	CMK_JOB_UNSEAL,		/* unwrap the KEK(s) into locked memory */
};

/*
 * struct cmk_loop_ops - the world as the loop sees it (@ctx is passed back)
 * @start: begin KMS job @job (@id) with the deadline @deadline_ms; it must
 *	not wait for it.  The caller reports the end with cmk_loop_job_done(),
 *	after adopting an unsealed KEK only if cmk_loop_job_wanted() says so.
 * @cancel: job @id's answer is no longer wanted (an event made it stale):
 *	end its KMS calls now if they can be ended, so that the fresh job
 *	the event asks for does not wait for it; it still ends through
 *	cmk_loop_job_done().  NULL: jobs are not cancelled.
 * @forget: wipe the KEK(s) from memory
 * @maintain: renew every lease of our devices to @lease_ms from now; with
 *	@restore (then @lease_ms is the full lease) also push keys again for
 *	devices the kernel has no key for (skipping devices an operator
 *	revoked) and open devices not opened yet.  -EBUSY: a KEY_SET was
 *	refused because a system sleep is under way (try again shortly).
 * @wipe: KEY_WIPE every device of this CMK with @reason
 * @action: the policy's power-off (never returns in production)
 * @note: one audit line about a decision (@e NULL on success)
 * @now_ms: a clock that counts time suspended (CLOCK_BOOTTIME)
 * @random: uniform 32-bit random number for jitter
 * @awake_ms: a clock that stops while the system sleeps (CLOCK_MONOTONIC),
 *	to take the time slept out of failure timers; NULL: none taken out
 */
struct cmk_loop_ops {
	void (*start)(void *ctx, enum cmk_job job, uint64_t id,
		      uint64_t deadline_ms);
	void (*cancel)(void *ctx, uint64_t id);
	void (*forget)(void *ctx);
	int (*maintain)(void *ctx, bool restore, uint32_t lease_ms,
			struct cmk_err *e);
	int (*wipe)(void *ctx, enum dm_cmk_reason reason, struct cmk_err *e);
	void (*action)(void *ctx);
	void (*note)(void *ctx, const char *event, const char *msg,
		     const struct cmk_err *e);
	uint64_t (*now_ms)(void *ctx);
	uint32_t (*random)(void *ctx);
	uint64_t (*awake_ms)(void *ctx);
};

struct cmk_loop {
	const struct cmk_loop_ops *ops;
	void *ctx;
	uint32_t interval_ms;
	uint32_t jitter_pct;
	uint32_t check_timeout_ms;	/* deadline of every KMS job */
	uint32_t lease_ms;
	uint32_t renew_ms;		/* lease_ms / 4 */
	uint64_t grace_ms;
	uint64_t throttle_grace_ms;
	uint32_t hint_spread_ms;	/* an event hint's check: up to this late */
	uint64_t boot_deadline_ms;
	enum cmk_policy policy;

	enum cmk_loop_state state;
	bool kek_held;
	int boot_ret;			/* -EINPROGRESS, 0, or why boot failed */
	struct cmk_err boot_err;
	uint64_t boot_start_ms;
	unsigned int boot_tries;
	unsigned int boot_throttles;	/* throttled boot answers */
	bool boot_hold;			/* throttled: no retry before boot_deadline_s */
	uint64_t boot_not_before_ms;	/* the backoff's next try (even if held) */
	uint64_t boot_throttled_ms;	/* the last throttled boot answer */

	/* The KMS job under way. */
	enum cmk_job job;
	uint64_t job_id;
	uint64_t job_start_ms;
	uint64_t job_deadline_ms;
	bool job_overdue;		/* its deadline passed */
	bool job_failed;		/* ... and that counted as a failure */
	bool job_stale;			/* its answer will be ignored */
	uint64_t next_id;

	uint64_t next_check_ms;		/* next job, when the worker is idle */
	uint64_t next_renew_ms;
	bool want_unseal;		/* unseal before any restore */
	bool want_restore;		/* the kernel lost keys: restore on success */
	unsigned int busy_restores;	/* restores refused with EBUSY in a row */

	uint64_t slept_ms;		/* now_ms - awake_ms, as last taken out */

	uint64_t last_yes_ms;		/* when the last yes came back */
	unsigned int fails;		/* consecutive failed checks */
	uint64_t first_fail_ms;		/* start of the first failed check of the run */
	uint64_t last_check_ms;
	int last_result;		/* 0 or -errno of the last check */
	struct cmk_err last_err;
	unsigned long checks;
	unsigned long late_answers;	/* answers after their deadline, ignored */

	/* Throttling (the KMS's "slow down"). */
	bool throttled;			/* the last failure was a throttled answer */
	bool run_kms_throttled;		/* the KMS said "throttled" in this run ... */
	uint64_t last_kms_throttled_ms;	/* ... last at this time */
	unsigned int throttles;		/* throttled answers in a row */
	unsigned long throttled_total;	/* since start */
	uint64_t hold_until_ms;		/* no check before (Retry-After) */
	uint64_t pace_ms;		/* backoff window after throttling; 0: regular */
	unsigned int revokes;		/* definitive answers in a row */
	bool last_no;			/* the last KMS answer was a definitive no */

	/* Hints (cmk_loop_hint()). */
	bool hint_pending;		/* a hint waits for its check to start */
	bool hint_after_job;		/* ... for the job under way to end first */
	uint64_t hint_check_ms;		/* start of the last check a hint caused */
	uint64_t hint_not_before_ms;	/* an event hint's check starts here */
	bool hint_retrying;		/* a failed hint is asked again ... */
	uint64_t hint_retry_ms;		/* ... from here (hint_failed()) */
	unsigned int hint_retries;	/* quick retries since a yes or a no */
	uint64_t hint_used;		/* hint budget tokens taken (x 1000) ... */
	uint64_t hint_used_ms;		/* ... as of then (hint_spend()) */
	unsigned long hints;		/* hints received */
	unsigned long hint_checks;	/* checks they caused */
	unsigned long job_hints;	/* the job under way answers hints up to this */
	unsigned long hints_answered;	/* hints 1..this have had their answer */
};

/* Bounds of the retry backoff (ms). */
#define CMK_BACKOFF_MIN_MS	50
#define CMK_BACKOFF_BOOT_MAX_MS	5000
/* A throttled boot unseal: full jitter over this, doubling up to the max. */
#define CMK_BOOT_THROTTLE_MS	1000
#define CMK_BOOT_THROTTLE_MAX_MS 30000
/* A throttled boot's backoff older than this is not continued. */
#define CMK_BOOT_RESUME_MAX_MS	600000
/* systemd's start timeout covers the boot deadline and this much more. */
#define CMK_BOOT_START_MARGIN_MS 30000
/* After a throttled answer the backoff window is this many intervals. */
#define CMK_THROTTLE_MAX_INTERVALS 8
/* ... and each yes after it shrinks the window by this much (percent). */
#define CMK_PACE_SHRINK_PCT	10
/* Revoked (a definitive no in a row), checks are at most this far apart. */
#define CMK_REVOKED_MAX_INTERVALS 8
/* A KEY_SET refused with EBUSY (system sleep): check and restore after this. */
#define CMK_RESTORE_RETRY_MS	250
#define CMK_RESTORE_RETRY_MAX_MS 2000
/* A job this long past its deadline ignores it: the worker is stuck. */
#define CMK_STUCK_MS		30000
/* Checks caused by hints start at least this far apart. */
#define CMK_HINT_MIN_GAP_MS	1000
/* A throttled hint check is asked again within this, doubling ... */
#define CMK_HINT_RETRY_MS	1000
#define CMK_HINT_RETRY_MAX_MS	8000
/* ... this many times until the KMS says yes or no. */
#define CMK_HINT_RETRIES	4
/* While backing off, this many hint checks at once, then one per window. */
#define CMK_HINT_BURST		3
/* A gap between the two clocks smaller than this is no system sleep. */
#define CMK_SLEEP_MIN_MS	1000

void cmk_loop_init(struct cmk_loop *l, const struct cmk_loop_ops *ops,
		   void *ctx, const struct cmk_config *cfg);

/*
 * cmk_loop_tick() - do what is due now (start a job, count a deadline that
 * passed, renew leases, end a grace period); returns the ms until the next
 * call is due.  Call it again after every other cmk_loop_*() call.
 */
uint64_t cmk_loop_tick(struct cmk_loop *l);

/*
 * cmk_loop_job_wanted() - whether the answer of job @id will be used; if
 * not (its deadline passed, or an event made it stale), a KEK it unsealed
 * must be wiped, not adopted.
 */
bool cmk_loop_job_wanted(const struct cmk_loop *l, uint64_t id);

/*
 * cmk_loop_stuck() - the job under way is CMK_STUCK_MS past its deadline
 * (a KMS call that ignores deadlines holds the worker, and no check can
 * run again) and the policy has wiped the keys (unreachable after grace_s,
 * or revoked), so nothing is lost when this process ends.  The caller
 * exits so that systemd restarts it.  Degraded it waits for grace_s;
 * failing open (policy none) it never exits: leaving would end the
 * renewals the policy promises.
 */
bool cmk_loop_stuck(const struct cmk_loop *l);

/* cmk_loop_job_done() - job @id ended with @ret (@e when it failed). */
void cmk_loop_job_done(struct cmk_loop *l, uint64_t id, int ret,
		       const struct cmk_err *e);

/* cmk_loop_key_wiped() - the kernel wiped one of our keys for @reason. */
void cmk_loop_key_wiped(struct cmk_loop *l, enum dm_cmk_reason reason);

/* cmk_loop_check_now() - check the CMK as soon as the worker is idle. */
void cmk_loop_check_now(struct cmk_loop *l);

/* Where a hint came from (for the audit line; the loop treats all alike). */
enum cmk_hint {
	CMK_HINT_OPERATOR,	/* cmkctl check-now, SIGHUP */
	CMK_HINT_EVENT,		/* a revocation notice (queue, event bus) */
};

/*
 * cmk_loop_hint() - ask for a real CMK check now (the contract is in the
 * "Hints" paragraph above).  Returns true if a check will follow (now, at
 * the end of the job under way or of the boot unseal, or when the pacing
 * gap or a hold the KMS asked for ends), false if the hint was ignored
 * (the boot failed).
 */
bool cmk_loop_hint(struct cmk_loop *l, enum cmk_hint from);

/* What a pending hint's check waits for (cmkctl check-now says it). */
enum cmk_hint_wait {
	CMK_HINT_WAIT_NONE,	/* nothing pending, or it starts now */
	CMK_HINT_WAIT_BOOT,	/* unsealing at boot (or the boot failed) */
	CMK_HINT_WAIT_JOB,	/* a check under way; one more follows it */
	CMK_HINT_WAIT_PACED,	/* CMK_HINT_MIN_GAP_MS, hint_spread_ms, a retry */
	CMK_HINT_WAIT_BUDGET,	/* backing off and the hint budget is spent */
	CMK_HINT_WAIT_HOLD,	/* the KMS's Retry-After */
	CMK_HINT_WAIT_SCHEDULE,	/* the scheduled check comes first */
};

/*
 * cmk_loop_hint_wait() - why the check a pending hint asked for has not
 * started, and (@until_ms, the loop's clock) when it will at the latest
 * by that reason.  An operator's hint (cmkctl check-now) is budgeted
 * like any other: SIGHUP from root is also what an orchestrator running
 * check-now on every VM sends, and the budget is what keeps such a loop
 * from undoing the backoff of a throttled fleet.
 */
enum cmk_hint_wait cmk_loop_hint_wait(const struct cmk_loop *l, uint64_t *until_ms);
const char *cmk_hint_wait_name(enum cmk_hint_wait w);

/*
 * cmk_loop_boot_result() - -EINPROGRESS while unsealing at boot, 0 once
 * booted, else why the boot failed (@e filled; e->cls definitive: the KMS
 * refused; transient: boot_deadline_s passed).
 */
int cmk_loop_boot_result(const struct cmk_loop *l, struct cmk_err *e);

/*
 * struct cmk_boot_backoff - a throttled boot's backoff, kept across agent
 * restarts (the times are on the loop's clock, ops->now_ms: CLOCK_BOOTTIME,
 * which a restart does not reset and a reboot does, with /run)
 * @throttles: throttled boot answers so far (0: nothing to continue)
 * @not_before_ms: the backoff (or Retry-After) allows the next unseal here
 * @saved_ms: the last throttled answer
 */
struct cmk_boot_backoff {
	unsigned int throttles;
	uint64_t not_before_ms;
	uint64_t saved_ms;
};

/*
 * cmk_loop_boot_backoff() - the boot's backoff into @b; false (and @b
 * zeroed) unless the boot is still unsealing after a throttled answer.
 */
bool cmk_loop_boot_backoff(const struct cmk_loop *l, struct cmk_boot_backoff *b);

/*
 * cmk_loop_boot_resume() - right after cmk_loop_init(): continue the
 * backoff @b a previous agent kept (agentloop.h, "Boot").  The first
 * unseal waits, full jitter over the window of @b->throttles throttled
 * answers, and not before @b->not_before_ms (at most
 * CMK_BOOT_RESUME_MAX_MS after @b->saved_ms); if that falls past
 * boot_deadline_s no unseal is made and the boot fails at its deadline.
 * A @b from the future or older than CMK_BOOT_RESUME_MAX_MS is ignored.
 */
void cmk_loop_boot_resume(struct cmk_loop *l, const struct cmk_boot_backoff *b);

/*
 * cmk_loop_boot_left_ms() - while unsealing at boot, how long the start
 * may still take: to boot_deadline_s (sleep excluded) plus
 * CMK_BOOT_START_MARGIN_MS to open the devices; 0 once the boot ended.
 * The agent sends it to systemd (EXTEND_TIMEOUT_USEC), so the unit's
 * TimeoutStartSec= never ends a boot that is still within its deadline.
 */
uint64_t cmk_loop_boot_left_ms(const struct cmk_loop *l);

/*
 * cmk_loop_wipe_bound_ms() - the longest a revocation takes to wipe the
 * keys while the KMS throttles every check of this agent (fail-closed
 * policies): the longest wait between two checks (the throttle window),
 * one check's deadline, grace_s and throttle_grace_s.
 */
uint64_t cmk_loop_wipe_bound_ms(const struct cmk_config *cfg);

/*
 * cmk_loop_throttle_window_ms() - the backoff window after a throttled
 * answer: CMK_THROTTLE_MAX_INTERVALS intervals, at most a quarter of
 * grace_s + throttle_grace_s, at least two intervals.  The next check
 * falls in its middle half (a mean of half of it).
 */
uint64_t cmk_loop_throttle_window_ms(const struct cmk_config *cfg);

/*
 * cmk_loop_failure_window_max_ms() - the largest backoff window of a
 * failing run (not throttled): the next check falls anywhere in it.
 */
uint64_t cmk_loop_failure_window_max_ms(const struct cmk_config *cfg);

/* cmk_loop_backoff_ms() - delay before retry @n (1-based), jitter included. */
uint64_t cmk_loop_backoff_ms(const struct cmk_loop *l, unsigned int n,
			     uint64_t cap_ms);

const char *cmk_loop_state_name(enum cmk_loop_state s);

#endif /* CMK_AGENTLOOP_H */
