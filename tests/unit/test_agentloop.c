// SPDX-License-Identifier: GPL-2.0
/*
 * test_agentloop.c - the agent's state machine with a fake KMS and a fake
 * clock.  Oracle: the revocation rules of DESIGN §4 / cmk-agent.rst - what
 * must be wiped (and with which reason), what must be kept, when the KEK
 * is held, and when the power-off action runs.
 */
#include "testutil.h"

#include <errno.h>
#include <string.h>

#include "agentloop.h"

struct fake {
	/* scripted answers of the KMS: 'o' ok, 'd' definitive, 't' transient */
	const char *script;
	size_t pos;
	char unseal_script[16];	/* same letters for unseal; empty = ok */
	size_t upos;
	uint64_t now;
	bool kek;		/* KEK in memory */
	bool kernel_keys;	/* keys installed in the kernel */
	int wipes[DM_CMK_REASON_MAX + 1];
	int renews, restores, actions, unseals, forgets;
	uint64_t slept;
};

static int answer(char c, struct cmk_err *e)
{
	switch (c) {
	case 'd':
		return cmk_err_kms(e, CMK_R_DISABLED, "fake: key disabled");
	case 't':
		return cmk_err_kms(e, CMK_R_TIMEOUT, "fake: timeout");
	case 'l':
		return cmk_errf(e, -EIO, "fake: local error");
	}
	return 0;
}

static int f_check(void *ctx, struct cmk_err *e)
{
	struct fake *f = ctx;
	char c = f->script[f->pos];

	if (c)
		f->pos++;
	return answer(c ? c : 'o', e);
}

static int f_unseal(void *ctx, struct cmk_err *e)
{
	struct fake *f = ctx;
	char c = f->unseal_script[f->upos];
	int ret;

	if (c)
		f->upos++;
	f->unseals++;
	ret = answer(c ? c : 'o', e);
	if (!ret)
		f->kek = true;
	return ret;
}

static void f_forget(void *ctx)
{
	struct fake *f = ctx;

	f->kek = false;
	f->forgets++;
}

static int f_maintain(void *ctx, bool restore, struct cmk_err *e)
{
	struct fake *f = ctx;

	(void)e;
	f->renews++;
	if (restore && !f->kernel_keys) {
		assert_true(f->kek);	/* restoring needs the KEK */
		f->restores++;
		f->kernel_keys = true;
	}
	return 0;
}

static int f_wipe(void *ctx, enum dm_cmk_reason reason, struct cmk_err *e)
{
	struct fake *f = ctx;

	(void)e;
	f->wipes[reason]++;
	f->kernel_keys = false;
	return 0;
}

static void f_action(void *ctx)
{
	((struct fake *)ctx)->actions++;
}

static void f_note(void *ctx, const char *ev, const char *msg, const struct cmk_err *e)
{
	(void)ctx;
	(void)ev;
	(void)msg;
	(void)e;
}

static uint64_t f_now(void *ctx)
{
	return ((struct fake *)ctx)->now;
}

static void f_sleep(void *ctx, uint64_t ms)
{
	struct fake *f = ctx;

	f->now += ms;
	f->slept += ms;
}

static uint32_t f_random(void *ctx)
{
	(void)ctx;
	return 0x9e3779b9u;
}

static const struct cmk_loop_ops fake_ops = {
	.check = f_check, .unseal = f_unseal, .forget = f_forget,
	.maintain = f_maintain, .wipe = f_wipe, .action = f_action,
	.note = f_note, .now_ms = f_now, .sleep_ms = f_sleep, .random = f_random,
};

static struct cmk_config test_cfg(enum cmk_policy policy, uint32_t grace_s)
{
	struct cmk_config c;

	memset(&c, 0, sizeof(c));
	c.check_interval_ms = 250;
	c.jitter_pct = 10;
	c.grace_s = grace_s;
	c.boot_deadline_s = 10;
	c.policy = policy;
	return c;
}

/* Boot, then run steps, advancing the fake clock by what each returns. */
static void start(struct cmk_loop *l, struct fake *f, enum cmk_policy p,
		  uint32_t grace_s)
{
	struct cmk_config c = test_cfg(p, grace_s);
	struct cmk_err e;

	f->now = 1000;
	cmk_loop_init(l, &fake_ops, f, &c);
	assert_int_equal(cmk_loop_boot(l, &e), 0);
	f->kernel_keys = true;	/* the devices were opened */
	assert_int_equal(l->state, CMK_LS_ACTIVE);
}

static uint64_t step(struct cmk_loop *l, struct fake *f)
{
	uint64_t d = cmk_loop_step(l);

	f->now += d;
	return d;
}

static void agentloop_definitive_error_revokes_at_once(void **state)
{
	struct fake f = { .script = "od" };
	struct cmk_loop l;

	(void)state;
	start(&l, &f, CMK_POLICY_WIPE, 300);
	step(&l, &f);
	assert_int_equal(f.wipes[DM_CMK_REASON_REVOKED], 0);
	step(&l, &f);		/* the first definitive answer revokes */
	assert_int_equal(f.wipes[DM_CMK_REASON_REVOKED], 1);
	assert_false(f.kernel_keys);
	assert_false(f.kek);
	assert_int_equal(l.state, CMK_LS_REVOKED);
	assert_int_equal(f.actions, 0);	/* policy wipe: no power-off */
}

static void agentloop_revoked_stays_revoked_while_refused(void **state)
{
	struct fake f = { .script = "ddtd" };
	struct cmk_loop l;

	(void)state;
	start(&l, &f, CMK_POLICY_WIPE, 300);
	for (int i = 0; i < 4; i++)
		step(&l, &f);
	assert_int_equal(f.wipes[DM_CMK_REASON_REVOKED], 1);	/* once */
	assert_int_equal(f.restores, 0);
	assert_false(f.kek);
	assert_int_equal(l.state, CMK_LS_REVOKED);
}

static void agentloop_revoke_check_interval_stays_short(void **state)
{
	struct fake f = { .script = "d" };
	struct cmk_loop l;
	uint64_t d;

	(void)state;
	start(&l, &f, CMK_POLICY_WIPE, 300);
	d = step(&l, &f);
	/* after a revoke the agent keeps checking at the normal interval */
	assert_in_range(d, 250, 275);
}

static void agentloop_transient_within_grace_keeps_keys(void **state)
{
	struct fake f = { .script = "tttttttt" };
	struct cmk_loop l;

	(void)state;
	start(&l, &f, CMK_POLICY_WIPE, 300);
	for (int i = 0; i < 8; i++) {
		uint64_t d = step(&l, &f);

		assert_in_range(d, CMK_BACKOFF_MIN_MS / 2, 250);	/* capped at the interval */
	}
	assert_true(f.now - 1000 < 300000);
	assert_int_equal(l.state, CMK_LS_DEGRADED);
	assert_true(f.kernel_keys);
	assert_true(f.kek);
	assert_int_equal(f.wipes[DM_CMK_REASON_KMS_UNREACHABLE], 0);
	assert_int_equal(f.wipes[DM_CMK_REASON_REVOKED], 0);
	assert_int_equal(f.renews, 8);	/* leases kept alive through the grace */
	step(&l, &f);	/* script over: the KMS answers again */
	assert_int_equal(l.state, CMK_LS_ACTIVE);
	assert_int_equal(l.fails, 0);
}

static void run_until_grace_over(struct cmk_loop *l, struct fake *f)
{
	static char many_t[2048];

	memset(many_t, 't', sizeof(many_t) - 1);
	f->script = many_t;
	/* 2 s of grace at <= 250 ms per retry: a few dozen steps */
	for (int i = 0; i < 40; i++)
		step(l, f);
}

static void agentloop_grace_expired_policy_wipe(void **state)
{
	struct fake f = { 0 };
	struct cmk_loop l;

	(void)state;
	start(&l, &f, CMK_POLICY_WIPE, 2);
	run_until_grace_over(&l, &f);
	assert_int_equal(l.state, CMK_LS_UNREACHABLE);
	assert_int_equal(f.wipes[DM_CMK_REASON_KMS_UNREACHABLE], 1);
	assert_int_equal(f.wipes[DM_CMK_REASON_REVOKED], 0);
	assert_false(f.kernel_keys);
	assert_false(f.kek);
	assert_int_equal(f.actions, 0);
}

static void agentloop_grace_zero_wipes_on_first_failure(void **state)
{
	struct fake f = { .script = "t" };
	struct cmk_loop l;

	(void)state;
	start(&l, &f, CMK_POLICY_WIPE, 0);
	step(&l, &f);
	assert_int_equal(f.wipes[DM_CMK_REASON_KMS_UNREACHABLE], 1);
}

static void agentloop_policy_none_keeps_keys(void **state)
{
	struct fake f = { 0 };
	struct cmk_loop l;

	(void)state;
	start(&l, &f, CMK_POLICY_NONE, 2);
	run_until_grace_over(&l, &f);
	assert_int_equal(l.state, CMK_LS_FAIL_OPEN);
	assert_int_equal(f.wipes[DM_CMK_REASON_KMS_UNREACHABLE], 0);
	assert_true(f.kernel_keys);
	assert_true(f.kek);
	assert_true(f.renews >= 40);	/* leases renewed while failing open */
}

static void agentloop_policy_none_still_revokes_on_definitive(void **state)
{
	struct fake f = { .script = "tttd" };
	struct cmk_loop l;

	(void)state;
	start(&l, &f, CMK_POLICY_NONE, 0);
	for (int i = 0; i < 4; i++)
		step(&l, &f);
	assert_int_equal(f.wipes[DM_CMK_REASON_REVOKED], 1);
	assert_int_equal(l.state, CMK_LS_REVOKED);
}

static void agentloop_policy_poweroff_runs_action(void **state)
{
	struct fake f = { .script = "d" };
	struct cmk_loop l;

	(void)state;
	start(&l, &f, CMK_POLICY_POWEROFF, 300);
	step(&l, &f);
	assert_int_equal(f.wipes[DM_CMK_REASON_REVOKED], 1);
	assert_int_equal(f.actions, 1);
	/* the wipe happened before the action could stop the process */
	assert_false(f.kernel_keys);
}

static void agentloop_restore_after_enable(void **state)
{
	struct fake f = { .script = "dddo" };
	struct cmk_loop l;

	(void)state;
	start(&l, &f, CMK_POLICY_WIPE, 300);
	for (int i = 0; i < 3; i++)
		step(&l, &f);
	assert_false(f.kernel_keys);
	assert_int_equal(f.unseals, 1);
	step(&l, &f);		/* re-enabled: unseal again, restore */
	assert_int_equal(f.unseals, 2);
	assert_true(f.kek);
	assert_true(f.kernel_keys);
	assert_int_equal(f.restores, 1);
	assert_int_equal(l.state, CMK_LS_ACTIVE);
}

static void agentloop_restore_after_unreachable(void **state)
{
	struct fake f = { 0 };
	struct cmk_loop l;

	(void)state;
	start(&l, &f, CMK_POLICY_WIPE, 1);
	run_until_grace_over(&l, &f);
	assert_false(f.kernel_keys);
	f.script = "o";
	f.pos = 0;
	step(&l, &f);
	assert_true(f.kernel_keys);
	assert_int_equal(l.state, CMK_LS_ACTIVE);
}

static void agentloop_lease_loss_restored_when_cmk_fine(void **state)
{
	struct fake f = { .script = "oo" };
	struct cmk_loop l;

	(void)state;
	start(&l, &f, CMK_POLICY_WIPE, 300);
	step(&l, &f);
	f.kernel_keys = false;	/* the kernel's lease expired (e.g. suspend) */
	step(&l, &f);
	assert_true(f.kernel_keys);
	assert_int_equal(f.restores, 1);
	assert_int_equal(f.unseals, 1);	/* the KEK was still held */
}

static void agentloop_unseal_failure_after_enable_retries(void **state)
{
	struct fake f = { .script = "doo" };
	struct cmk_loop l;

	(void)state;
	start(&l, &f, CMK_POLICY_WIPE, 300);
	strcpy(f.unseal_script, "t");	/* next unseal fails once */
	step(&l, &f);
	step(&l, &f);
	assert_false(f.kernel_keys);
	assert_false(l.kek_held);
	step(&l, &f);
	assert_true(f.kernel_keys);
}

static void agentloop_boot_retries_transient_until_deadline(void **state)
{
	struct fake f = { .script = "" };
	struct cmk_config c = test_cfg(CMK_POLICY_WIPE, 300);
	struct cmk_loop l;
	struct cmk_err e;

	(void)state;
	strcpy(f.unseal_script, "ttto");
	cmk_loop_init(&l, &fake_ops, &f, &c);
	assert_int_equal(cmk_loop_boot(&l, &e), 0);
	assert_int_equal(f.unseals, 4);
	assert_true(f.slept > 0);
	assert_true(l.kek_held);

	/* never reachable: gives up within the deadline */
	memset(&f, 0, sizeof(f));
	f.script = "";
	memset(f.unseal_script, 't', sizeof(f.unseal_script) - 1);
	c.boot_deadline_s = 1;
	cmk_loop_init(&l, &fake_ops, &f, &c);
	assert_int_not_equal(cmk_loop_boot(&l, &e), 0);
	assert_int_equal(e.cls, CMK_EC_TRANSIENT);
	assert_contains(e.msg, "boot deadline");
	assert_true(f.slept <= 1000);
	assert_false(l.kek_held);
}

static void agentloop_boot_definitive_fails_at_once(void **state)
{
	struct fake f = { .script = "" };
	struct cmk_config c = test_cfg(CMK_POLICY_WIPE, 300);
	struct cmk_loop l;
	struct cmk_err e;

	(void)state;
	strcpy(f.unseal_script, "d");
	cmk_loop_init(&l, &fake_ops, &f, &c);
	assert_int_not_equal(cmk_loop_boot(&l, &e), 0);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_int_equal(f.unseals, 1);
	assert_int_equal(f.slept, 0);
}

static void agentloop_backoff_grows_and_is_capped(void **state)
{
	struct fake f = { 0 };
	struct cmk_config c = test_cfg(CMK_POLICY_WIPE, 300);
	struct cmk_loop l;
	uint64_t prev = 0;

	(void)state;
	cmk_loop_init(&l, &fake_ops, &f, &c);
	for (unsigned int n = 1; n < 8; n++) {
		uint64_t d = cmk_loop_backoff_ms(&l, n, 5000);
		uint64_t base = CMK_BACKOFF_MIN_MS << (n - 1);

		assert_in_range(d, base / 2, base);
		assert_true(d >= prev);
		prev = d;
	}
	assert_in_range(cmk_loop_backoff_ms(&l, 30, 5000), 2500, 5000);
}

static void agentloop_local_error_is_not_a_revocation(void **state)
{
	struct fake f = { .script = "l" };
	struct cmk_loop l;

	(void)state;
	start(&l, &f, CMK_POLICY_WIPE, 300);
	step(&l, &f);
	assert_int_equal(f.wipes[DM_CMK_REASON_REVOKED], 0);
	assert_int_equal(l.state, CMK_LS_DEGRADED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(agentloop_definitive_error_revokes_at_once),
		cmocka_unit_test(agentloop_revoked_stays_revoked_while_refused),
		cmocka_unit_test(agentloop_revoke_check_interval_stays_short),
		cmocka_unit_test(agentloop_transient_within_grace_keeps_keys),
		cmocka_unit_test(agentloop_grace_expired_policy_wipe),
		cmocka_unit_test(agentloop_grace_zero_wipes_on_first_failure),
		cmocka_unit_test(agentloop_policy_none_keeps_keys),
		cmocka_unit_test(agentloop_policy_none_still_revokes_on_definitive),
		cmocka_unit_test(agentloop_policy_poweroff_runs_action),
		cmocka_unit_test(agentloop_restore_after_enable),
		cmocka_unit_test(agentloop_restore_after_unreachable),
		cmocka_unit_test(agentloop_lease_loss_restored_when_cmk_fine),
		cmocka_unit_test(agentloop_unseal_failure_after_enable_retries),
		cmocka_unit_test(agentloop_boot_retries_transient_until_deadline),
		cmocka_unit_test(agentloop_boot_definitive_fails_at_once),
		cmocka_unit_test(agentloop_backoff_grows_and_is_capped),
		cmocka_unit_test(agentloop_local_error_is_not_a_revocation),
	};

	return cmocka_run_group_tests_name("agentloop", tests, NULL, NULL);
}
