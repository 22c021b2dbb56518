/* SPDX-License-Identifier: GPL-2.0 */
/*
 * agentloop.h - the agent's decisions, apart from its I/O.
 *
 * The state machine of cmk-agent: unseal at boot with retries, then one
 * CMK check per step and what follows from its answer.  Everything it does
 * to the world goes through struct cmk_loop_ops, so the unit tests drive it
 * with a fake provider and a fake clock, and cmk-agent.c wires the real
 * KMS, netlink and audit log in.
 *
 *   check ok           renew leases; restore keys the kernel lost (lease
 *                      expiry, suspend, agent restart) unless an operator
 *                      revoked the device; after a revoke or a fail-closed
 *                      wipe: unseal the KEK again and restore everything.
 *   definitive error   revoke at once: KEY_WIPE (REVOKED) every device of
 *                      this CMK, wipe the KEK from memory, audit, and power
 *                      off under policy poweroff.  Keep checking, so that a
 *                      re-enabled CMK brings the volumes back.
 *   transient error    retry with capped exponential backoff and jitter;
 *                      within grace_s keep the keys (and renew leases);
 *                      after grace_s follow the policy: wipe / poweroff ->
 *                      KEY_WIPE (KMS_UNREACHABLE) and wipe the KEK; none ->
 *                      keep the keys (audited once), renewing leases.
 *   local error        (not an answer from the KMS) treated as transient:
 *                      it cannot prove a revocation.
 */
#ifndef CMK_AGENTLOOP_H
#define CMK_AGENTLOOP_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/dm-cmk.h>

#include "config.h"
#include "err.h"

enum cmk_loop_state {
	CMK_LS_STARTING,
	CMK_LS_ACTIVE,		/* CMK answers; keys installed */
	CMK_LS_DEGRADED,	/* KMS unreachable, within grace: keys kept */
	CMK_LS_FAIL_OPEN,	/* grace over, policy none: keys kept */
	CMK_LS_UNREACHABLE,	/* grace over, keys and KEK wiped */
	CMK_LS_REVOKED,		/* definitive error: keys and KEK wiped */
};

/*
 * struct cmk_loop_ops - the world as the loop sees it (@ctx is passed back)
 * @check: a real unwrap of the wrapped KEK under the CMK (result wiped)
 * @unseal: unwrap the KEK(s) into locked memory
 * @forget: wipe the KEK(s) from memory
 * @maintain: renew every lease of our devices; with @restore also push
 *	keys again for devices the kernel has no key for (skipping devices an
 *	operator revoked)
 * @wipe: KEY_WIPE every device of this CMK with @reason
 * @action: the policy's power-off (never returns in production)
 * @note: one audit line about a decision (@e NULL on success)
 * @now_ms: monotonic clock
 * @sleep_ms: used only by cmk_loop_boot()
 * @random: uniform 32-bit random number for jitter
 */
struct cmk_loop_ops {
	int (*check)(void *ctx, struct cmk_err *e);
	int (*unseal)(void *ctx, struct cmk_err *e);
	void (*forget)(void *ctx);
	int (*maintain)(void *ctx, bool restore, struct cmk_err *e);
	int (*wipe)(void *ctx, enum dm_cmk_reason reason, struct cmk_err *e);
	void (*action)(void *ctx);
	void (*note)(void *ctx, const char *event, const char *msg,
		     const struct cmk_err *e);
	uint64_t (*now_ms)(void *ctx);
	void (*sleep_ms)(void *ctx, uint64_t ms);
	uint32_t (*random)(void *ctx);
};

struct cmk_loop {
	const struct cmk_loop_ops *ops;
	void *ctx;
	uint32_t interval_ms;
	uint32_t jitter_pct;
	uint64_t grace_ms;
	uint64_t boot_deadline_ms;
	enum cmk_policy policy;

	enum cmk_loop_state state;
	bool kek_held;
	unsigned int fails;		/* consecutive failed checks */
	uint64_t first_fail_ms;		/* start of the current failure run */
	uint64_t last_check_ms;
	int last_result;		/* 0 or -errno of the last check */
	struct cmk_err last_err;
	unsigned long checks;
};

/* Bounds of the retry backoff (ms). */
#define CMK_BACKOFF_MIN_MS	50
#define CMK_BACKOFF_BOOT_MAX_MS	5000

void cmk_loop_init(struct cmk_loop *l, const struct cmk_loop_ops *ops,
		   void *ctx, const struct cmk_config *cfg);

/*
 * cmk_loop_boot() - unseal the KEK, retrying transient errors with capped
 * exponential backoff and jitter until boot_deadline_s.  A definitive or
 * local error fails at once.
 */
int cmk_loop_boot(struct cmk_loop *l, struct cmk_err *e);

/* cmk_loop_step() - one check and its consequences; returns ms to wait. */
uint64_t cmk_loop_step(struct cmk_loop *l);

/* cmk_loop_backoff_ms() - delay before retry @n (1-based), jitter included. */
uint64_t cmk_loop_backoff_ms(const struct cmk_loop *l, unsigned int n,
			     uint64_t cap_ms);

const char *cmk_loop_state_name(enum cmk_loop_state s);

#endif /* CMK_AGENTLOOP_H */
