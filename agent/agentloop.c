// SPDX-License-Identifier: GPL-2.0
/*
 * agentloop.c - the agent's state machine (see agentloop.h).
 */
#include "agentloop.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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
	l->grace_ms = (uint64_t)cfg->grace_s * 1000;
	l->boot_deadline_ms = (uint64_t)cfg->boot_deadline_s * 1000;
	l->policy = cfg->policy;
	l->state = CMK_LS_STARTING;
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

/* The regular gap between checks: interval plus up to jitter_pct. */
static uint64_t next_check_ms(const struct cmk_loop *l)
{
	uint64_t spread = (uint64_t)l->interval_ms * l->jitter_pct / 100;

	return l->interval_ms + (spread ? l->ops->random(l->ctx) % (spread + 1) : 0);
}

int cmk_loop_boot(struct cmk_loop *l, struct cmk_err *e)
{
	uint64_t start = l->ops->now_ms(l->ctx), delay;
	unsigned int n = 0;
	int ret;

	for (;;) {
		ret = l->ops->unseal(l->ctx, e);
		if (!ret) {
			l->kek_held = true;
			l->state = CMK_LS_ACTIVE;
			l->last_check_ms = l->ops->now_ms(l->ctx);
			return 0;
		}
		if (e->cls != CMK_EC_TRANSIENT)
			return ret;
		delay = cmk_loop_backoff_ms(l, ++n, CMK_BACKOFF_BOOT_MAX_MS);
		if (l->ops->now_ms(l->ctx) + delay - start > l->boot_deadline_ms) {
			cmk_err_prefix(e, "boot deadline (%llu s) passed after %u attempts",
				       (unsigned long long)l->boot_deadline_ms / 1000, n);
			return ret;
		}
		l->ops->note(l->ctx, "unseal_retry", "KMS unreachable at boot, retrying", e);
		l->ops->sleep_ms(l->ctx, delay);
	}
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
	l->state = to;
	l->ops->note(l->ctx, "revoke", why, &l->last_err);
	if (l->policy == CMK_POLICY_POWEROFF)
		l->ops->action(l->ctx);
}

static uint64_t on_success(struct cmk_loop *l)
{
	struct cmk_err e;
	bool was = l->state != CMK_LS_ACTIVE;

	l->fails = 0;
	l->first_fail_ms = 0;
	if (!l->kek_held) {
		if (l->ops->unseal(l->ctx, &e)) {
			l->ops->note(l->ctx, "restore", "CMK check passed but KEK unwrap failed", &e);
			return cmk_loop_backoff_ms(l, 1, l->interval_ms);
		}
		l->kek_held = true;
	}
	if (l->ops->maintain(l->ctx, true, &e))
		l->ops->note(l->ctx, "maintain", "lease renewal or restore failed", &e);
	l->state = CMK_LS_ACTIVE;
	if (was)
		l->ops->note(l->ctx, "state", "CMK usable: active", NULL);
	return next_check_ms(l);
}

static uint64_t on_transient(struct cmk_loop *l, uint64_t now)
{
	struct cmk_err e;

	if (!l->fails++)
		l->first_fail_ms = now;
	if (l->state == CMK_LS_REVOKED || l->state == CMK_LS_UNREACHABLE)
		goto out;	/* nothing left to wipe; wait for the KMS */
	if (now - l->first_fail_ms < l->grace_ms) {
		if (l->state != CMK_LS_DEGRADED)
			l->ops->note(l->ctx, "state", "KMS unreachable: degraded, keys kept within grace_s",
				     &l->last_err);
		l->state = CMK_LS_DEGRADED;
	} else if (l->policy == CMK_POLICY_NONE) {
		if (l->state != CMK_LS_FAIL_OPEN)
			l->ops->note(l->ctx, "state", "grace_s over, policy none: keys kept (fail open)",
				     &l->last_err);
		l->state = CMK_LS_FAIL_OPEN;
	} else {
		wipe_all(l, DM_CMK_REASON_KMS_UNREACHABLE, CMK_LS_UNREACHABLE,
			 "grace_s over with the KMS unreachable: keys wiped (fail closed)");
		goto out;
	}
	/* Keys are kept on purpose: keep their leases alive too. */
	if (l->ops->maintain(l->ctx, false, &e))
		l->ops->note(l->ctx, "maintain", "lease renewal failed", &e);
out:
	return cmk_loop_backoff_ms(l, l->fails, l->interval_ms);
}

uint64_t cmk_loop_step(struct cmk_loop *l)
{
	uint64_t now;
	int ret;

	cmk_err_clear(&l->last_err);
	ret = l->ops->check(l->ctx, &l->last_err);
	now = l->ops->now_ms(l->ctx);
	l->last_check_ms = now;
	l->last_result = ret;
	l->checks++;
	if (!ret)
		return on_success(l);
	if (l->last_err.cls == CMK_EC_DEFINITIVE) {
		l->fails++;
		if (l->state != CMK_LS_REVOKED)
			wipe_all(l, DM_CMK_REASON_REVOKED, CMK_LS_REVOKED,
				 "CMK refused (definitive): keys and KEK wiped");
		return next_check_ms(l);
	}
	return on_transient(l, now);
}
