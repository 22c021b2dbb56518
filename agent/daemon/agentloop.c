// SPDX-License-Identifier: GPL-2.0
/*
 * agentloop.c - the agent's state machine (see agentloop.h).
 */
#include "daemon/agentloop.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The longest cmk_loop_tick() asks the caller to wait. */
#define CMK_TICK_MAX_MS		3600000ULL

const char *cmk_loop_state_name(enum cmk_loop_state s)
{
	switch (s) {
	case CMK_LS_STARTING:
		return "starting";
	case CMK_LS_ACTIVE:
		return "active";
	case CMK_LS_DEGRADED:
		return "degraded";
	case CMK_LS_FAIL_OPEN:
		return "fail-open";
	case CMK_LS_UNREACHABLE:
		return "wiped-unreachable";
	case CMK_LS_REVOKED:
		return "revoked";
	}
	return "unknown";
}

void cmk_loop_init(struct cmk_loop *l, const struct cmk_loop_ops *ops,
		   void *ctx, const struct cmk_config *cfg)
{
	memset(l, 0, sizeof(*l));
	l->ops = ops;
	l->ctx = ctx;
	l->interval_ms = cfg->check_interval_ms;
	l->jitter_pct = cfg->jitter_pct;
	l->check_timeout_ms = cfg->check_timeout_ms;
	l->lease_ms = cfg->lease_ms;
	l->renew_ms = cfg->lease_ms / 4;
	l->grace_ms = (uint64_t)cfg->grace_s * 1000;
	l->throttle_grace_ms = (uint64_t)cfg->throttle_grace_s * 1000;
	l->hint_spread_ms = cfg->hint_spread_ms;
	l->boot_deadline_ms = (uint64_t)cfg->boot_deadline_s * 1000;
	l->policy = cfg->policy;
	l->state = CMK_LS_STARTING;
	l->boot_ret = -EINPROGRESS;
	l->boot_start_ms = ops->now_ms(ctx);
	l->next_check_ms = l->boot_start_ms;
	l->next_id = 1;
	if (ops->awake_ms)
		l->slept_ms = l->boot_start_ms - ops->awake_ms(ctx);
}

/* Time suspended not yet taken out of the loop's failure timers. */
static uint64_t unseen_sleep_ms(const struct cmk_loop *l, uint64_t now)
{
	uint64_t slept;

	if (!l->ops->awake_ms)
		return 0;
	slept = now - l->ops->awake_ms(l->ctx);
	return slept > l->slept_ms + CMK_SLEEP_MIN_MS ? slept - l->slept_ms : 0;
}

/*
 * The clock, with the time the system slept since the last call taken out
 * of what measures a failure: the job's deadline (so its stuck measure),
 * the start of the run of failures (grace_s) and the boot deadline.  A KMS
 * call in flight across a suspend or a hibernation did not fail for the
 * hours the machine was off.  Leases and the check interval keep counting
 * it (CLOCK_BOOTTIME, as the kernel's leases do).
 */
static uint64_t loop_now(struct cmk_loop *l)
{
	uint64_t now = l->ops->now_ms(l->ctx);
	uint64_t d = unseen_sleep_ms(l, now);

	if (!d)
		return now;
	l->slept_ms += d;
	if (l->job != CMK_JOB_NONE) {
		l->job_start_ms += d;
		l->job_deadline_ms += d;
	}
	if (l->fails)
		l->first_fail_ms += d;
	if (l->fails && l->run_kms_throttled)
		l->last_kms_throttled_ms += d;
	if (l->boot_ret == -EINPROGRESS)
		l->boot_start_ms += d;
	return now;
}

/* "Equal jitter": half the delay fixed, half random, so retries spread. */
uint64_t cmk_loop_backoff_ms(const struct cmk_loop *l, unsigned int n,
			     uint64_t cap_ms)
{
	uint64_t d = CMK_BACKOFF_MIN_MS;

	if (cap_ms < CMK_BACKOFF_MIN_MS)
		cap_ms = CMK_BACKOFF_MIN_MS;
	while (n-- > 1 && d < cap_ms)
		d *= 2;
	if (d > cap_ms)
		d = cap_ms;
	return d / 2 + l->ops->random(l->ctx) % (d / 2 + 1);
}

/*
 * Retry @n (1-based) of a restore refused with EBUSY: CMK_RESTORE_RETRY_MS
 * doubling up to CMK_RESTORE_RETRY_MAX_MS, plus up to half of it at random.
 */
static uint64_t restore_retry_ms(const struct cmk_loop *l, unsigned int n)
{
	uint64_t d = CMK_RESTORE_RETRY_MS;

	while (n-- > 1 && d < CMK_RESTORE_RETRY_MAX_MS)
		d *= 2;
	if (d > CMK_RESTORE_RETRY_MAX_MS)
		d = CMK_RESTORE_RETRY_MAX_MS;
	return d + l->ops->random(l->ctx) % (d / 2 + 1);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Uniform in [0, @w] ("full jitter"), but never below CMK_BACKOFF_MIN_MS. */
static uint64_t full_jitter(const struct cmk_loop *l, uint64_t w)
{
	uint64_t r = (uint64_t)l->ops->random(l->ctx) << 32 | l->ops->random(l->ctx);
	uint64_t d = r % (w + 1);

	return d < CMK_BACKOFF_MIN_MS ? CMK_BACKOFF_MIN_MS : d;
}

/*
 * After failed check @n (1-based) of a run, the KMS not throttling: full
 * jitter over a window that starts at a quarter interval and doubles up
 * to two intervals, whose mean, one interval, is the healthy schedule: a
 * failing fleet asks no more of the KMS than a healthy one, once past the
 * first few quick retries.
 */
static uint64_t failure_cap_ms(uint32_t interval_ms)
{
	return 2 * (uint64_t)interval_ms;
}

uint64_t cmk_loop_failure_window_max_ms(const struct cmk_config *cfg)
{
	return failure_cap_ms(cfg->check_interval_ms);
}

static uint64_t failure_window_ms(const struct cmk_loop *l, unsigned int n)
{
	uint64_t cap = failure_cap_ms(l->interval_ms);
	uint64_t w = l->interval_ms / 4;

	if (w < CMK_BACKOFF_MIN_MS)
		w = CMK_BACKOFF_MIN_MS;
	while (n-- > 1 && w < cap)
		w *= 2;
	return w < cap ? w : cap;
}

static uint64_t failure_backoff_ms(const struct cmk_loop *l, unsigned int n)
{
	return full_jitter(l, failure_window_ms(l, n));
}

/*
 * The largest wait between checks while the KMS throttles: up to
 * CMK_THROTTLE_MAX_INTERVALS intervals, but a quarter of the time the
 * throttle may last (grace_s + throttle_grace_s) at most, so that several
 * checks still fall inside it; never below two intervals.
 */
static uint64_t throttle_window_ms(uint32_t interval_ms, uint64_t grace_ms,
				   uint64_t throttle_grace_ms)
{
	uint64_t cap = (uint64_t)interval_ms * CMK_THROTTLE_MAX_INTERVALS;
	uint64_t quarter = (grace_ms + throttle_grace_ms) / 4;

	if (cap > quarter)
		cap = quarter;
	if (cap < 2 * (uint64_t)interval_ms)
		cap = 2 * (uint64_t)interval_ms;
	return cap;
}

static uint64_t throttle_cap_ms(const struct cmk_loop *l)
{
	return throttle_window_ms(l->interval_ms, l->grace_ms, l->throttle_grace_ms);
}

uint64_t cmk_loop_throttle_window_ms(const struct cmk_config *cfg)
{
	return throttle_window_ms(cfg->check_interval_ms, (uint64_t)cfg->grace_s * 1000,
				  (uint64_t)cfg->throttle_grace_s * 1000);
}

/*
 * Once the key is revoked, every check of an agent is throttled or says
 * no.  Its next check starts within the window (after a throttle, or a
 * yes while the window shrinks; the regular gap is shorter), ends by its
 * deadline, and the run of failures it belongs to meets the policy
 * grace_s + throttle_grace_s after its first check at the latest: a no
 * comes sooner.
 */
uint64_t cmk_loop_wipe_bound_ms(const struct cmk_config *cfg)
{
	return cmk_loop_throttle_window_ms(cfg) + cfg->check_timeout_ms +
	       ((uint64_t)cfg->grace_s + cfg->throttle_grace_s) * 1000;
}

/* Uniform in [@w / 4, 3 @w / 4]: a mean of half the window, spread out. */
static uint64_t paced_gap_ms(const struct cmk_loop *l, uint64_t w)
{
	uint64_t d = w / 4 + l->ops->random(l->ctx) % (w / 2 + 1);

	return d < CMK_BACKOFF_MIN_MS ? CMK_BACKOFF_MIN_MS : d;
}

/*
 * After a throttled answer: the window jumps to throttle_cap_ms() at once
 * (a mean gap of half of it, a quarter of the healthy rate at 8
 * intervals: a fleet over its quota is back under it after one round,
 * instead of asking its full rate again after a throttle of one
 * interval), and the wait is at least what the KMS asked (Retry-After,
 * capped alike).  The window shrinks again only with yes answers
 * (pace_after_yes()).
 */
static uint64_t throttle_backoff_ms(struct cmk_loop *l, uint64_t retry_after_ms)
{
	uint64_t cap = throttle_cap_ms(l), d;

	l->pace_ms = cap;
	d = paced_gap_ms(l, cap);
	if (retry_after_ms > cap)
		retry_after_ms = cap;
	return d > retry_after_ms ? d : retry_after_ms;
}

/*
 * A yes after throttling: the window shrinks by CMK_PACE_SHRINK_PCT % per
 * yes, and the regular schedule is back once the window's mean is no
 * longer than the regular gap.  Halving it per yes (what a reset does)
 * sends a fleet straight back over the quota that throttled it: with the
 * quota at half the demand a third of all requests were throttled and the
 * fleet asked 1.6 x the quota.  Shrinking slowly, a throttle comes once
 * per several yes answers, and the fleet asks close to the quota.
 * Returns the gap to the next check, 0 for the regular schedule.
 */
static uint64_t pace_after_yes(struct cmk_loop *l)
{
	uint64_t regular = (uint64_t)l->interval_ms * (200 + l->jitter_pct) / 200;

	if (!l->pace_ms)
		return 0;
	l->pace_ms = l->pace_ms * (100 - CMK_PACE_SHRINK_PCT) / 100;
	if (l->pace_ms / 2 <= regular) {
		l->pace_ms = 0;
		return 0;
	}
	return paced_gap_ms(l, l->pace_ms);
}

/*
 * After definitive no @n (1-based) in a row: the keys are gone, and the
 * KMS is needed again only once the key owner gives the key back.  The
 * first no is followed by a regular check (a no that a policy change
 * undoes at once); then a window of 2, 4, up to CMK_REVOKED_MAX_INTERVALS
 * intervals, the gap in its upper half: a revoked fleet leaves the quota
 * to the agents still waiting for their answer.  A hint (an EnableKey
 * event, cmkctl check-now) checks at once while the hint budget has a
 * token left (hint_window_ms(): review 16c M1).
 */
static uint64_t revoked_window_ms(const struct cmk_loop *l, unsigned int n)
{
	uint64_t cap = (uint64_t)l->interval_ms * CMK_REVOKED_MAX_INTERVALS;
	uint64_t w = l->interval_ms;

	while (n-- > 1 && w < cap)
		w *= 2;
	return w < cap ? w : cap;
}

static uint64_t revoked_gap_ms(const struct cmk_loop *l, unsigned int n)
{
	uint64_t w = revoked_window_ms(l, n);

	if (n <= 1)
		return 0;
	return w / 2 + l->ops->random(l->ctx) % (w / 2 + 1);
}

/* The first check after the boot unseal: anywhere in one whole interval. */
static uint64_t first_check_ms(const struct cmk_loop *l)
{
	return 1 + l->ops->random(l->ctx) % (l->interval_ms ? l->interval_ms : 1);
}

/*
 * When the run of failures meets the policy: grace_s after its first
 * failed check; while the KMS answered "throttled" recently, up to
 * throttle_grace_s later (agentloop.h, "Throttling").  "Recently": within
 * the longest wait between two checks of a throttled run (the window)
 * plus one check's deadline, so that a timeout or a 5xx among throttled
 * answers does not wipe a fleet that overloads its KMS, while a KMS that
 * stopped answering "throttled" meets the policy one window later.  Only
 * the KMS's own throttled answers extend it (a 5xx or a timeout is what a
 * network attacker who drops the "no" answers makes); that one such
 * failure does not wipe early is clamp_to_grace()'s work.
 */
static uint64_t grace_end_ms(const struct cmk_loop *l)
{
	uint64_t end = l->first_fail_ms + l->grace_ms;
	uint64_t cap = end + l->throttle_grace_ms, ext;

	if (!l->run_kms_throttled)
		return end;
	ext = l->last_kms_throttled_ms + throttle_cap_ms(l) + l->check_timeout_ms;
	if (ext <= end)
		return end;
	return ext < cap ? ext : cap;
}

/* The regular gap between checks: interval plus up to jitter_pct. */
static uint64_t next_check_ms(const struct cmk_loop *l)
{
	uint64_t spread = (uint64_t)l->interval_ms * l->jitter_pct / 100;

	return l->interval_ms + (spread ? l->ops->random(l->ctx) % (spread + 1) : 0);
}

/* Keys are kept, so their leases are renewed, only in these states. */
static bool keeps_keys(const struct cmk_loop *l)
{
	return l->kek_held && (l->state == CMK_LS_ACTIVE ||
			       l->state == CMK_LS_DEGRADED ||
			       l->state == CMK_LS_FAIL_OPEN);
}

static void set_state(struct cmk_loop *l, enum cmk_loop_state to,
		      const char *why, const struct cmk_err *e)
{
	if (l->state == to)
		return;
	l->state = to;
	/* Degraded or failing open: what a renewal may grant changed. */
	if (to == CMK_LS_DEGRADED || to == CMK_LS_FAIL_OPEN)
		l->next_renew_ms = 0;
	l->ops->note(l->ctx, "state", why, e);
}

/* Wipe kernel keys and the KEK; the one path for both kinds of wipe. */
static void wipe_all(struct cmk_loop *l, enum dm_cmk_reason reason,
		     enum cmk_loop_state to, const char *why)
{
	struct cmk_err we;

	if (l->ops->wipe(l->ctx, reason, &we))
		/* The leases still bound the exposure; say so loudly. */
		l->ops->note(l->ctx, "revoke", "KEY_WIPE failed; kernel leases will expire", &we);
	l->ops->forget(l->ctx);
	l->kek_held = false;
	l->want_unseal = false;
	l->want_restore = false;
	l->state = to;
	l->ops->note(l->ctx, "revoke", why, &l->last_err);
	if (l->policy == CMK_POLICY_POWEROFF)
		l->ops->action(l->ctx);
}

/*
 * How long a renewal may let the keys live from @now: never longer than
 * the agent itself would keep them if it died right now - lease_ms after
 * the last yes (active); grace_s, plus a quarter lease for the policy's
 * wipe to come first, after the first failure (degraded); a full lease
 * when failing open.  0: nothing to renew.
 */
static uint64_t keep_ms(const struct cmk_loop *l, uint64_t now)
{
	uint64_t until = l->last_yes_ms + l->lease_ms;

	if (l->state == CMK_LS_FAIL_OPEN)
		return l->lease_ms;
	if (l->state == CMK_LS_DEGRADED && until < grace_end_ms(l) + l->renew_ms)
		until = grace_end_ms(l) + l->renew_ms;
	if (until <= now)
		return 0;
	return until - now < l->lease_ms ? until - now : l->lease_ms;
}

static void renew(struct cmk_loop *l, uint64_t now)
{
	uint64_t keep = keep_ms(l, now);
	struct cmk_err e;

	l->next_renew_ms = now + l->renew_ms;
	if (keep && l->ops->maintain(l->ctx, false, (uint32_t)keep, &e))
		l->ops->note(l->ctx, "maintain", "lease renewal failed", &e);
}

/*
 * Push keys again (and renew the others).  Only with the KEK of this VM
 * in memory: after a fork it is unsealed again first.
 */
static void restore(struct cmk_loop *l, uint64_t now)
{
	struct cmk_err e;
	int ret;

	l->next_renew_ms = now + l->renew_ms;
	ret = l->ops->maintain(l->ctx, true, l->lease_ms, &e);
	if (ret == -EBUSY) {
		/* A system sleep is under way: a fresh check, then try again. */
		l->want_restore = true;
		l->next_check_ms = now + restore_retry_ms(l, ++l->busy_restores);
		return;
	}
	l->busy_restores = 0;
	if (ret)
		l->ops->note(l->ctx, "maintain", "lease renewal or restore failed", &e);
	l->want_restore = false;
}

/* grace_s after the first failure of the run: the policy. */
static void grace_over(struct cmk_loop *l)
{
	if (l->throttled && l->policy != CMK_POLICY_NONE)
		l->ops->note(l->ctx, "throttle",
			     "the KMS kept throttling past grace_s + throttle_grace_s: the grace policy applies",
			     &l->last_err);
	if (l->policy == CMK_POLICY_NONE)
		set_state(l, CMK_LS_FAIL_OPEN,
			  "grace_s over, policy none: keys kept (fail open)", &l->last_err);
	else
		wipe_all(l, DM_CMK_REASON_KMS_UNREACHABLE, CMK_LS_UNREACHABLE,
			 "grace_s over with the KMS unreachable: keys wiped (fail closed)");
}

/*
 * In a run the KMS throttled, the next check starts no later than one
 * deadline before the grace ends, so that its answer - a throttled one
 * extends the grace - comes before the policy does: a backoff (the
 * failure backoff after a 5xx, up to two intervals; after a metadata
 * service's 429, up to the window) must not let the run meet the policy
 * without a check (review 16d M-b, L-a).  Never sooner than the KMS's own
 * Retry-After.  Load: after a throttled answer the gap (at most 3/4 of
 * the window, or Retry-After up to the window) already starts before
 * that, except at the cap grace_s + throttle_grace_s; after any other
 * failure the clamp moves one check to the window's end, and a failure
 * of that one finds the point passed: at most one more check per
 * throttled answer, and never a burst.
 */
static void clamp_to_grace(struct cmk_loop *l, uint64_t now)
{
	uint64_t end = grace_end_ms(l), latest;

	if (!l->run_kms_throttled || end <= now + l->check_timeout_ms)
		return;
	latest = end - l->check_timeout_ms;
	if (l->throttled && latest < l->hold_until_ms)
		latest = l->hold_until_ms;
	if (l->next_check_ms > latest)
		l->next_check_ms = latest;
}

/*
 * A transient or local failure, or no answer by the deadline (l->last_err
 * says which).  A throttled answer is neither a yes nor a no: it backs the
 * checks off (throttle_backoff_ms()), holds them for what Retry-After
 * asked, and, while it is the last answer, lets the keys stay up to
 * throttle_grace_s past grace_s.
 */
static void on_failure(struct cmk_loop *l, uint64_t started, uint64_t now)
{
	bool throttled = l->last_err.reason == CMK_R_THROTTLED;

	l->last_no = false;
	if (!l->fails++) {
		l->first_fail_ms = started;
		l->run_kms_throttled = false;
	}
	if (throttled) {
		uint64_t ra = l->last_err.retry_after_ms;
		uint64_t cap = throttle_cap_ms(l);

		if (!l->throttles++)
			l->ops->note(l->ctx, "throttle",
				     "the KMS throttles: checks back off; keys kept up to throttle_grace_s past grace_s while it lasts",
				     &l->last_err);
		l->throttled_total++;
		l->hold_until_ms = now + (ra < cap ? ra : cap);
		l->next_check_ms = now + throttle_backoff_ms(l, ra);
	} else {
		l->throttles = 0;
		l->next_check_ms = now + failure_backoff_ms(l, l->fails);
	}
	/* Only the KMS's own "throttled" extends grace_s (agentloop.h). */
	l->throttled = throttled && l->last_err.kms_throttled;
	if (l->throttled) {
		l->run_kms_throttled = true;
		l->last_kms_throttled_ms = now;
	}
	if (l->state == CMK_LS_REVOKED || l->state == CMK_LS_UNREACHABLE ||
	    l->state == CMK_LS_FAIL_OPEN)
		return;		/* nothing left to decide; wait for the KMS */
	if (now < grace_end_ms(l)) {
		set_state(l, CMK_LS_DEGRADED,
			  "KMS unreachable: degraded, keys kept within grace_s", &l->last_err);
		clamp_to_grace(l, now);
	} else {
		grace_over(l);
	}
}

/* An answer from the KMS that is not "throttled" ends a throttle. */
static void not_throttled(struct cmk_loop *l)
{
	l->throttled = false;
	l->throttles = 0;
}

static void on_definitive(struct cmk_loop *l, uint64_t now)
{
	uint64_t gap;

	not_throttled(l);
	l->last_no = true;
	l->fails++;
	gap = revoked_gap_ms(l, ++l->revokes);
	l->next_check_ms = now + (gap ? gap : next_check_ms(l));
	if (l->state != CMK_LS_REVOKED) {
		wipe_all(l, DM_CMK_REASON_REVOKED, CMK_LS_REVOKED,
			 "CMK refused (definitive): keys and KEK wiped");
		return;
	}
	/* Revoked already: the kernel keys are gone, and so is any KEK. */
	l->ops->forget(l->ctx);
	l->kek_held = false;
}

/* The CMK said yes (a check or an unseal). */
static void on_success(struct cmk_loop *l, uint64_t now)
{
	uint64_t paced = pace_after_yes(l);

	l->last_yes_ms = now;
	l->fails = 0;
	l->first_fail_ms = 0;
	l->revokes = 0;
	l->last_no = false;
	not_throttled(l);
	l->next_check_ms = now + (paced ? paced : next_check_ms(l));
	if (!l->kek_held) {
		/* Revoked, wiped, or forked: the KEK first, then the keys. */
		l->want_unseal = true;
		l->next_check_ms = now;
		return;
	}
	restore(l, now);
	set_state(l, CMK_LS_ACTIVE, "CMK usable: active", NULL);
}

static void record(struct cmk_loop *l, int ret, const struct cmk_err *e,
		   uint64_t now)
{
	l->last_check_ms = now;
	l->last_result = ret;
	l->checks++;
	if (ret && e)
		l->last_err = *e;
	else
		cmk_err_clear(&l->last_err);
}

/*
 * After throttled boot answer @n (1-based): full jitter over a window of
 * CMK_BOOT_THROTTLE_MS doubling up to CMK_BOOT_THROTTLE_MAX_MS, never
 * sooner than the answer's Retry-After.  A retry that falls past
 * boot_deadline_s is not made: the boot fails at its deadline
 * (boot_answer()).  A region that restarts over its quota then asks a few
 * unseals per VM in boot_deadline_s, not one every few seconds
 * (agentloop.h, "Boot").
 */
static uint64_t boot_throttle_window_ms(unsigned int n)
{
	uint64_t w = CMK_BOOT_THROTTLE_MS;

	while (n-- > 1 && w < CMK_BOOT_THROTTLE_MAX_MS)
		w *= 2;
	return w > CMK_BOOT_THROTTLE_MAX_MS ? CMK_BOOT_THROTTLE_MAX_MS : w;
}

static uint64_t boot_throttle_ms(const struct cmk_loop *l, unsigned int n,
				 uint64_t retry_after_ms)
{
	uint64_t d = full_jitter(l, boot_throttle_window_ms(n));

	return d > retry_after_ms ? d : retry_after_ms;
}

/*
 * The throttled boot's next try at @at is past boot_deadline_s: no more
 * requests; the boot fails at its deadline (not now: a restart would ask
 * sooner than that).
 */
static void boot_hold(struct cmk_loop *l, const struct cmk_err *e)
{
	l->boot_hold = true;
	l->next_check_ms = l->boot_start_ms + l->boot_deadline_ms;
	l->ops->note(l->ctx, "unseal_retry",
		     "KMS throttles at boot; the next try falls past boot_deadline_s: no retry, the boot fails at its deadline",
		     e);
}

static void boot_answer(struct cmk_loop *l, int ret, const struct cmk_err *e,
			uint64_t now)
{
	uint64_t delay;

	if (!ret) {
		l->boot_ret = 0;
		l->last_yes_ms = now;
		l->kek_held = true;
		l->want_unseal = false;
		l->state = CMK_LS_ACTIVE;
		l->last_check_ms = now;
		/* A fleet that booted together must not check together. */
		l->next_check_ms = now + first_check_ms(l);
		restore(l, now);	/* opens every device */
		return;
	}
	l->boot_err = *e;
	if (e->cls != CMK_EC_TRANSIENT) {
		l->boot_ret = ret;
		return;
	}
	++l->boot_tries;
	if (e->reason == CMK_R_THROTTLED) {
		delay = boot_throttle_ms(l, ++l->boot_throttles, e->retry_after_ms);
		l->boot_throttled_ms = now;
		l->boot_not_before_ms = now + delay;
	} else {
		delay = cmk_loop_backoff_ms(l, l->boot_tries, CMK_BACKOFF_BOOT_MAX_MS);
	}
	if (e->reason == CMK_R_THROTTLED &&
	    now + delay - l->boot_start_ms > l->boot_deadline_ms) {
		boot_hold(l, e);
		return;
	}
	if (now + delay - l->boot_start_ms > l->boot_deadline_ms) {
		cmk_err_prefix(&l->boot_err, "boot deadline (%llu s) passed after %u attempts",
			       (unsigned long long)l->boot_deadline_ms / 1000,
			       l->boot_tries);
		l->boot_ret = ret;
		return;
	}
	l->ops->note(l->ctx, "unseal_retry", "KMS unreachable at boot, retrying", e);
	l->next_check_ms = now + delay;
}

bool cmk_loop_boot_backoff(const struct cmk_loop *l, struct cmk_boot_backoff *b)
{
	memset(b, 0, sizeof(*b));
	if (l->boot_ret == 0 || !l->boot_throttles)
		return false;
	b->throttles = l->boot_throttles;
	b->not_before_ms = l->boot_not_before_ms;
	b->saved_ms = l->boot_throttled_ms;
	return true;
}

void cmk_loop_boot_resume(struct cmk_loop *l, const struct cmk_boot_backoff *b)
{
	uint64_t now = l->boot_start_ms, at;
	struct cmk_err e;

	if (!b->throttles || b->saved_ms > now ||
	    now - b->saved_ms > CMK_BOOT_RESUME_MAX_MS ||
	    l->boot_ret != -EINPROGRESS || l->job != CMK_JOB_NONE)
		return;
	l->boot_throttles = b->throttles;
	l->boot_throttled_ms = b->saved_ms;
	at = now + full_jitter(l, boot_throttle_window_ms(b->throttles));
	at = max_u64(at, min_u64(b->not_before_ms,
				 b->saved_ms + CMK_BOOT_RESUME_MAX_MS));
	l->boot_not_before_ms = at;
	cmk_err_kms(&e, CMK_R_THROTTLED,
		    "the KMS throttled the previous agent's unseal %u times",
		    b->throttles);
	l->boot_err = e;
	if (at - l->boot_start_ms > l->boot_deadline_ms) {
		boot_hold(l, &e);
		return;
	}
	l->next_check_ms = at;
	l->ops->note(l->ctx, "unseal_retry",
		     "KMS throttled the previous agent's boot: continuing its backoff", &e);
}

uint64_t cmk_loop_boot_left_ms(const struct cmk_loop *l)
{
	uint64_t now = l->ops->now_ms(l->ctx), end;

	if (l->boot_ret != -EINPROGRESS)
		return 0;
	end = l->boot_start_ms + unseen_sleep_ms(l, now) + l->boot_deadline_ms +
	      CMK_BOOT_START_MARGIN_MS;
	return end > now ? end - now : 0;
}

/* An answer of the current job (a KMS answer, or its deadline passing). */
static void answer(struct cmk_loop *l, enum cmk_job job, uint64_t started,
		   int ret, const struct cmk_err *e, uint64_t now)
{
	if (l->boot_ret == -EINPROGRESS) {
		boot_answer(l, ret, e, now);
		return;
	}
	if (job == CMK_JOB_CHECK)
		record(l, ret, e, now);
	else if (ret && e)
		l->last_err = *e;
	if (!ret) {
		if (job == CMK_JOB_UNSEAL) {
			l->kek_held = true;
			l->want_unseal = false;
		}
		on_success(l, now);
	} else if (e->cls == CMK_EC_DEFINITIVE) {
		on_definitive(l, now);
	} else {
		on_failure(l, started, now);
	}
}

/* The job under way is CMK_STUCK_MS past its deadline (sleep excluded). */
static bool job_stuck(const struct cmk_loop *l, uint64_t now)
{
	return l->job != CMK_JOB_NONE && l->job_overdue &&
	       now >= l->job_deadline_ms + unseen_sleep_ms(l, now) + CMK_STUCK_MS;
}

/*
 * Exiting ends the renewals: only once the grace policy no longer needs
 * this process - the keys are wiped (kms_unreachable after grace_s, or
 * revoked).  Degraded, grace_s runs on (the policy applies at its end);
 * failing open (policy none) the keys are kept as for any unreachable
 * KMS, and checks resume when the call returns.
 */
bool cmk_loop_stuck(const struct cmk_loop *l)
{
	return (l->state == CMK_LS_UNREACHABLE || l->state == CMK_LS_REVOKED) &&
	       job_stuck(l, l->ops->now_ms(l->ctx));
}

/* The job that ended (or failed at its deadline) answered these hints. */
static void hint_answered(struct cmk_loop *l)
{
	if (l->job_hints)
		l->hints_answered = l->job_hints;
	l->job_hints = 0;
}

/* The job answering hints went stale: the fresh one answers them. */
static void repend_hints(struct cmk_loop *l)
{
	l->job_hints = 0;
	l->hint_pending = true;
}

/*
 * A check that answered a hint failed (throttled, 5xx, no answer by its
 * deadline, a local error): the hint (a revocation notice, whose queue
 * message is gone) stays pending and is asked again in a short
 * full-jitter window, CMK_HINT_RETRY_MS doubling up to
 * CMK_HINT_RETRY_MAX_MS, never inside a Retry-After hold, at most
 * CMK_HINT_RETRIES times until the KMS says yes or no (hint_answer());
 * after that the hint waits for the budget or the schedule.  Revoked or
 * wiped, no quick retries: no key is left to wipe.
 */
static void hint_failed(struct cmk_loop *l, uint64_t now)
{
	uint64_t w = CMK_HINT_RETRY_MS;

	l->hint_pending = true;
	if (l->hint_retries >= CMK_HINT_RETRIES || l->boot_ret ||
	    l->state == CMK_LS_REVOKED || l->state == CMK_LS_UNREACHABLE)
		return;
	for (unsigned int n = l->hint_retries++; n && w < CMK_HINT_RETRY_MAX_MS; n--)
		w *= 2;
	if (w > CMK_HINT_RETRY_MAX_MS)
		w = CMK_HINT_RETRY_MAX_MS;
	l->hint_retrying = true;
	l->hint_retry_ms = now + full_jitter(l, w);
}

/*
 * Job answer @ret (@e) came, wanted: a yes or a no from the KMS ends a
 * series of quick hint retries (a fresh one may follow); any other
 * failure of a check that answered a hint keeps the hint (hint_failed()).
 */
static void hint_answer(struct cmk_loop *l, bool hinted, int ret,
			const struct cmk_err *e, uint64_t now)
{
	if (!ret || (e && e->cls == CMK_EC_DEFINITIVE))
		l->hint_retries = 0;
	else if (hinted)
		hint_failed(l, now);
}

bool cmk_loop_job_wanted(const struct cmk_loop *l, uint64_t id)
{
	return l->job != CMK_JOB_NONE && l->job_id == id && !l->job_stale;
}

void cmk_loop_job_done(struct cmk_loop *l, uint64_t id, int ret,
		       const struct cmk_err *e)
{
	uint64_t now = loop_now(l);
	enum cmk_job job = l->job;
	bool wanted = cmk_loop_job_wanted(l, id);
	bool hinted;

	if (job == CMK_JOB_NONE || id != l->job_id)
		return;
	hinted = wanted && l->job_hints;
	l->job = CMK_JOB_NONE;
	if (wanted)
		hint_answered(l);
	else if (l->job_hints)
		repend_hints(l);
	if (l->hint_after_job) {
		/* Asked before the hint: one more check once this one is done. */
		l->hint_after_job = false;
		l->hint_pending = true;
	}
	if (!wanted) {
		if (l->job_overdue)
			l->late_answers++;
		/*
		 * Revoking is always safe: a "no" counts however late it comes
		 * (a slow HSM or XKS proxy) or whatever made the job stale.
		 * A late or stale yes proves nothing.
		 */
		if (ret && e && e->cls == CMK_EC_DEFINITIVE) {
			/*
			 * Its timeout left its hints pending for a retry and
			 * none came since: this no is the answer the retry
			 * would ask for, not a reason for one more request.
			 */
			bool answers_retry = l->job_overdue && l->hint_pending &&
					     l->hints == l->hints_answered;

			answer(l, job, l->job_start_ms, ret, e, now);
			if (answers_retry) {
				l->hint_pending = false;
				l->hint_retrying = false;
				l->hint_retries = 0;
			}
		}
		return;
	}
	answer(l, job, l->job_start_ms, ret, e, now);
	hint_answer(l, hinted, ret, e, now);
}

/*
 * The backoff window the KMS load is held to while the run of checks is
 * throttled (or paced back up after a throttle) or failing, or while the
 * last answer was a no: the revoked schedule's window, one interval after
 * the first no, doubling with each no up to CMK_REVOKED_MAX_INTERVALS (a
 * revoked agent's hint checks at once while tokens are left - it may be
 * the key coming back - but a flood of them must not ask a no a second,
 * nor once an interval: review 16c M1).  0 when healthy.
 */
static uint64_t hint_window_ms(const struct cmk_loop *l)
{
	if (l->last_no)
		return revoked_window_ms(l, l->revokes);
	if (l->pace_ms)
		return l->pace_ms;
	if (l->fails)
		return failure_window_ms(l, l->fails);
	return 0;
}

/*
 * The hint budget while backing off, a token bucket of CMK_HINT_BURST
 * tokens refilled at one per window (the window of the moment: it shrinks
 * with yes answers): a check that answers a hint (a quick retry too)
 * takes one.  A burst, not one per window, so that a junk hint (a
 * RetireGrant of a detached volume) does not make the revocation's own
 * hint seconds later wait for the schedule; a flood still costs one
 * check per window.  In thousandths of a token.
 */
#define HINT_TOKEN	1000ULL

static uint64_t hint_tokens_used(const struct cmk_loop *l, uint64_t now, uint64_t w)
{
	uint64_t back = (now - l->hint_used_ms) * HINT_TOKEN / w;

	return l->hint_used > back ? l->hint_used - back : 0;
}

static void hint_spend(struct cmk_loop *l, uint64_t now)
{
	uint64_t w = hint_window_ms(l);

	if (!w)
		return;
	l->hint_used = hint_tokens_used(l, now, w) + HINT_TOKEN;
	l->hint_used_ms = now;
}

static void start_job(struct cmk_loop *l, enum cmk_job job, uint64_t now)
{
	uint64_t deadline = now + l->check_timeout_ms;

	if (l->boot_ret == -EINPROGRESS &&
	    deadline > l->boot_start_ms + l->boot_deadline_ms)
		deadline = l->boot_start_ms + l->boot_deadline_ms;
	if (deadline <= now)
		deadline = now + 1;
	l->job = job;
	l->job_id = l->next_id++;
	l->job_start_ms = now;
	l->job_deadline_ms = deadline;
	l->job_overdue = false;
	l->job_failed = false;
	l->job_stale = false;
	if (l->hint_pending && l->boot_ret == 0) {
		/* Every hint so far is answered by this KMS call. */
		l->hint_pending = false;
		l->hint_check_ms = now;
		l->hint_checks++;
		l->job_hints = l->hints;
		l->hint_retrying = false;
		hint_spend(l, now);
	}
	l->ops->start(l->ctx, job, l->job_id, deadline);
}

/*
 * The job's deadline passed: a transient failure dated from its start.
 * Its answer, if one still comes, is ignored; no other job can start until
 * it ends, but the grace period runs on, answer or not.
 */
static void job_overdue(struct cmk_loop *l, uint64_t now)
{
	bool hinted = l->job_hints;
	struct cmk_err e;

	l->job_overdue = true;
	l->job_failed = true;
	l->job_stale = true;
	hint_answered(l);	/* with a timeout */
	cmk_err_kms(&e, CMK_R_TIMEOUT,
		    "no answer from the KMS within check_timeout_ms (%u ms)",
		    l->check_timeout_ms);
	if (l->boot_ret == -EINPROGRESS || l->job == CMK_JOB_CHECK)
		record(l, -ETIMEDOUT, &e, now);
	else
		l->last_err = e;
	if (l->boot_ret == -EINPROGRESS) {
		boot_answer(l, -ETIMEDOUT, &e, now);
		return;
	}
	on_failure(l, l->job_start_ms, now);
	if (hinted)
		hint_failed(l, now);	/* asked again once the worker is free */
}

/*
 * The earliest a check a hint asks for may start: paced, spread (an
 * event's), never in a hold; and while backing off, within the budget
 * (hint_spend(): a flood of hints must not undo the backoff).
 */
static uint64_t hint_earliest(const struct cmk_loop *l, uint64_t now)
{
	uint64_t t = now, w = hint_window_ms(l);
	uint64_t spare = (CMK_HINT_BURST - 1) * HINT_TOKEN;

	if (l->hint_checks)
		t = max_u64(t, l->hint_check_ms + CMK_HINT_MIN_GAP_MS);
	if (l->hint_retrying)
		t = max_u64(t, l->hint_retry_ms);	/* a failed hint, again */
	else if (w && l->hint_used > spare)	/* one token back */
		t = max_u64(t, l->hint_used_ms + (l->hint_used - spare) * w / HINT_TOKEN);
	t = max_u64(t, l->hint_not_before_ms);
	return max_u64(t, l->hold_until_ms);
}

enum cmk_hint_wait cmk_loop_hint_wait(const struct cmk_loop *l, uint64_t *until_ms)
{
	uint64_t now = l->ops->now_ms(l->ctx), t, w = hint_window_ms(l);
	uint64_t spare = (CMK_HINT_BURST - 1) * HINT_TOKEN;
	enum cmk_hint_wait why = CMK_HINT_WAIT_NONE;

	*until_ms = now;
	if (l->boot_ret != 0)
		return CMK_HINT_WAIT_BOOT;
	if (!l->hint_pending && !l->hint_after_job)
		return CMK_HINT_WAIT_NONE;
	if (l->job != CMK_JOB_NONE)
		return CMK_HINT_WAIT_JOB;
	/* The constraint that ends last is the one the hint waits for. */
	if (l->hint_checks &&
	    (t = l->hint_check_ms + CMK_HINT_MIN_GAP_MS) > *until_ms) {
		*until_ms = t;
		why = CMK_HINT_WAIT_PACED;
	}
	if (l->hint_retrying && l->hint_retry_ms > *until_ms) {
		*until_ms = l->hint_retry_ms;
		why = CMK_HINT_WAIT_PACED;
	} else if (!l->hint_retrying && w && l->hint_used > spare &&
		   (t = l->hint_used_ms + (l->hint_used - spare) * w / HINT_TOKEN) > *until_ms) {
		*until_ms = t;
		why = CMK_HINT_WAIT_BUDGET;
	}
	if (l->hint_not_before_ms > *until_ms) {
		*until_ms = l->hint_not_before_ms;
		why = CMK_HINT_WAIT_PACED;
	}
	if (l->hold_until_ms > *until_ms) {
		*until_ms = l->hold_until_ms;
		why = CMK_HINT_WAIT_HOLD;
	}
	/* The schedule's own check (never inside a hold) comes sooner. */
	if (why != CMK_HINT_WAIT_NONE && why != CMK_HINT_WAIT_HOLD &&
	    l->next_check_ms < *until_ms &&
	    l->next_check_ms > now) {
		*until_ms = l->next_check_ms;
		why = CMK_HINT_WAIT_SCHEDULE;
	}
	return why;
}

const char *cmk_hint_wait_name(enum cmk_hint_wait w)
{
	switch (w) {
	case CMK_HINT_WAIT_NONE:
		return "none";
	case CMK_HINT_WAIT_BOOT:
		return "boot";
	case CMK_HINT_WAIT_JOB:
		return "check_under_way";
	case CMK_HINT_WAIT_PACED:
		return "paced";
	case CMK_HINT_WAIT_BUDGET:
		return "budget";
	case CMK_HINT_WAIT_HOLD:
		return "retry_after";
	case CMK_HINT_WAIT_SCHEDULE:
		return "schedule";
	}
	return "unknown";
}

/*
 * A job an event made stale (its answer is not wanted) passed its
 * deadline: no KMS failure - the fresh job has not even been asked.  But
 * if it still holds the worker CMK_STUCK_MS later, no check can run: a
 * failure from now on (grace_s counts from here, not from its start).
 */
static void stale_job_overdue(struct cmk_loop *l, uint64_t now)
{
	struct cmk_err e;

	if (!l->job_overdue) {
		l->job_overdue = true;
		return;
	}
	if (l->job_failed || !job_stuck(l, now))
		return;
	l->job_failed = true;
	cmk_err_kms(&e, CMK_R_TIMEOUT,
		    "a cancelled KMS call has not returned %d s after its deadline: the KMS worker is stuck and no check can run",
		    CMK_STUCK_MS / 1000);
	if (l->job == CMK_JOB_CHECK)
		record(l, -ETIMEDOUT, &e, now);
	else
		l->last_err = e;
	on_failure(l, now, now);
}

uint64_t cmk_loop_tick(struct cmk_loop *l)
{
	uint64_t now = loop_now(l);
	uint64_t next = now + CMK_TICK_MAX_MS;

	if (l->job != CMK_JOB_NONE && l->job_stale && !l->job_failed &&
	    l->boot_ret == 0 && now >= l->job_deadline_ms)
		stale_job_overdue(l, now);
	else if (l->job != CMK_JOB_NONE && !l->job_overdue && now >= l->job_deadline_ms)
		job_overdue(l, now);
	/* A boot unseal stuck past its deadline: give up at boot_deadline_s. */
	if (l->boot_ret == -EINPROGRESS && l->job != CMK_JOB_NONE && l->job_overdue &&
	    now - l->boot_start_ms >= l->boot_deadline_ms) {
		cmk_err_prefix(&l->boot_err, "boot deadline (%llu s) passed after %u attempts",
			       (unsigned long long)l->boot_deadline_ms / 1000,
			       l->boot_tries);
		l->boot_ret = -ETIMEDOUT;
	}
	if (l->boot_hold && l->boot_ret == -EINPROGRESS && now >= l->next_check_ms) {
		cmk_err_prefix(&l->boot_err, "boot deadline (%llu s) passed after %u attempts, the KMS throttling",
			       (unsigned long long)l->boot_deadline_ms / 1000,
			       l->boot_tries);
		l->boot_ret = -ETIMEDOUT;
	}
	if (l->boot_ret != 0 && l->boot_ret != -EINPROGRESS)
		return CMK_TICK_MAX_MS;		/* boot failed: the caller exits */
	if (l->boot_ret == 0) {
		if (l->state == CMK_LS_DEGRADED && now >= grace_end_ms(l))
			grace_over(l);
		if (keeps_keys(l) && now >= l->next_renew_ms)
			renew(l, now);
	}
	if (l->hint_pending && l->job == CMK_JOB_NONE && l->boot_ret == 0)
		l->next_check_ms = min_u64(l->next_check_ms, hint_earliest(l, now));
	if (l->job == CMK_JOB_NONE && now >= l->next_check_ms)
		start_job(l, l->boot_ret || l->want_unseal ? CMK_JOB_UNSEAL : CMK_JOB_CHECK,
			  now);

	/* When is the next thing due? */
	if (l->job == CMK_JOB_NONE)
		next = min_u64(next, l->next_check_ms);
	else if (!l->job_overdue)
		next = min_u64(next, l->job_deadline_ms);
	else if (l->boot_ret == -EINPROGRESS)
		next = min_u64(next, l->boot_start_ms + l->boot_deadline_ms);
	else if (now < l->job_deadline_ms + CMK_STUCK_MS)
		next = min_u64(next, l->job_deadline_ms + CMK_STUCK_MS);
	else if (!l->job_failed)
		next = now;	/* a stale job just became stuck */
	if (l->boot_ret == 0 && keeps_keys(l))
		next = min_u64(next, l->next_renew_ms);
	if (l->boot_ret == 0 && l->state == CMK_LS_DEGRADED)
		next = min_u64(next, grace_end_ms(l));
	return next > now ? next - now : 0;
}

/*
 * The job under way (if any) began before an event: its yes will not
 * count, so end it (a "no" it has not given yet is asked again by the
 * fresh job, which must not wait up to check_timeout_ms for it).
 */
static void stale_job(struct cmk_loop *l)
{
	if (l->job == CMK_JOB_NONE)
		return;
	if (l->job_hints)
		repend_hints(l);
	l->job_stale = true;
	if (l->ops->cancel)
		l->ops->cancel(l->ctx, l->job_id);
}

void cmk_loop_key_wiped(struct cmk_loop *l, enum dm_cmk_reason reason)
{
	uint64_t now = loop_now(l);

	switch (reason) {
	case DM_CMK_REASON_VMFORK:
		/* The KEK held came from the parent VM: never push keys from it. */
		if (l->kek_held)
			l->ops->note(l->ctx, "vmfork",
				     "VM fork: KEK wiped from memory; unsealing again from the KMS before any key is restored",
				     NULL);
		l->ops->forget(l->ctx);
		l->kek_held = false;
		l->want_unseal = true;
		l->want_restore = true;
		/*
		 * Booting with no unseal under way, none holds a KEK yet: the
		 * next one, when the backoff allows, is fresh.
		 */
		if (l->boot_ret != -EINPROGRESS || l->job != CMK_JOB_NONE)
			l->next_check_ms = now;
		/* Every job running now began before this fork, even a second one. */
		stale_job(l);
		break;
	case DM_CMK_REASON_SUSPEND:
	case DM_CMK_REASON_LEASE_EXPIRED:
	case DM_CMK_REASON_POLICY:
		if (l->state == CMK_LS_REVOKED || l->state == CMK_LS_UNREACHABLE)
			break;	/* our own wipe stands until the KMS says yes */
		/*
		 * Booting (a restarted agent finds its leases run out, one
		 * event per device): the boot unseal restores every device
		 * when it succeeds.  Never ask sooner than its backoff or a
		 * hold the KMS asked for.  A lease or a table: keep the unseal
		 * under way.  A system sleep: the CMK may have been revoked
		 * while the machine was off, so a yes sent before it restores
		 * nothing; the fresh unseal starts once the stale one ends.
		 */
		if (l->boot_ret == -EINPROGRESS) {
			if (reason == DM_CMK_REASON_SUSPEND)
				stale_job(l);
			break;
		}
		if (!l->want_restore) {
			l->ops->note(l->ctx, "key_lost", reason == DM_CMK_REASON_SUSPEND ?
				     "keys wiped by a system sleep: checking the CMK now to restore them" :
				     reason == DM_CMK_REASON_LEASE_EXPIRED ?
				     "a lease ran out: checking the CMK now to restore the key" :
				     "a new table wiped a key: checking the CMK now to restore it",
				     NULL);
			l->want_restore = true;
			l->next_check_ms = now;
		}
		/* An answer to a request sent before this loss does not count. */
		stale_job(l);
		break;
	default:
		/* Our own wipes, an operator's, a removed device: nothing to do. */
		break;
	}
}

void cmk_loop_check_now(struct cmk_loop *l)
{
	uint64_t now = loop_now(l);

	if (l->next_check_ms > now)
		l->next_check_ms = now;
}

bool cmk_loop_hint(struct cmk_loop *l, enum cmk_hint from)
{
	uint64_t now = loop_now(l);
	bool waiting = l->hint_pending || l->hint_after_job;

	if (l->boot_ret && l->boot_ret != -EINPROGRESS)
		return false;	/* the boot failed: no key to keep or wipe */
	l->hints++;
	if (from != CMK_HINT_EVENT || !l->hint_spread_ms)
		l->hint_not_before_ms = now;	/* an operator: at once */
	else if (!waiting)
		/* One event reaches the whole fleet: spread its checks. */
		l->hint_not_before_ms = now + l->ops->random(l->ctx) %
					      ((uint64_t)l->hint_spread_ms + 1);
	/*
	 * Booting: the unseal under way may have been answered before the
	 * revocation this hint reports, so its check follows the boot (only
	 * a check after it counts: start_job() and cmk_loop_tick() serve
	 * pending hints once boot_ret is 0).
	 */
	if (l->job != CMK_JOB_NONE && l->boot_ret == 0)
		l->hint_after_job = true;
	else
		l->hint_pending = true;
	return true;
}

int cmk_loop_boot_result(const struct cmk_loop *l, struct cmk_err *e)
{
	if (l->boot_ret && l->boot_ret != -EINPROGRESS && e)
		*e = l->boot_err;
	return l->boot_ret;
}
