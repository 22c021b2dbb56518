// SPDX-License-Identifier: GPL-2.0
/*
 * test_forkwatch.c - the VM-fork epoch as cmk-agent follows it
 * (forkwatch.c), against a fake kernel: cmk_genl_epoch() is wrapped and
 * answers from a script.
 *
 * Oracle: the kernel's rule (dm-cmk.rst, "Events"): a KEY_SET whose EPOCH
 * is not the kernel's is refused, and one without EPOCH is not checked.
 * So the invariant tested is: a KEK is adopted only with the epoch it was
 * really unsealed in (the same before and after the KMS call), never with
 * none on a kernel that counts forks, and every report of a newer epoch -
 * a vmfork event of any device, or any other report whose epoch is not
 * the KEK's - is acted on, once per fork.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "device/forkwatch.h"

/* The fake kernel: each read takes the next answer (a value or -errno). */
static const long *answers;
static size_t n_answers, next_answer;

int __wrap_cmk_genl_epoch(struct cmk_genl *g, uint32_t *epoch, struct cmk_err *e);
int __wrap_cmk_genl_epoch(struct cmk_genl *g, uint32_t *epoch, struct cmk_err *e)
{
	long a;

	(void)g;
	assert_true(next_answer < n_answers);
	a = answers[next_answer++];
	if (a < 0)
		return cmk_errf(e, (int)a, "fake kernel: epoch read failed (%ld)", a);
	*epoch = (uint32_t)a;
	return 0;
}

/*
 * The fake kernel's devices for a GET dump (a module that refuses GET
 * without NAME is asked for a device's EPOCH): dump_devices of them, each
 * reporting dump_epoch (-1: no EPOCH attribute); dump_ret < 0 fails it.
 */
static int dump_devices, dump_ret;
static long dump_epoch = -1;

int __wrap_cmk_genl_dump(struct cmk_genl *g, cmk_genl_dump_cb cb, void *arg,
			 struct cmk_err *e);
int __wrap_cmk_genl_dump(struct cmk_genl *g, cmk_genl_dump_cb cb, void *arg,
			 struct cmk_err *e)
{
	(void)g;
	if (dump_ret < 0)
		return cmk_errf(e, dump_ret, "fake kernel: dump failed (%d)", dump_ret);
	for (int i = 0; i < dump_devices; i++) {
		struct cmk_dev_info info;

		memset(&info, 0, sizeof(info));
		snprintf(info.name, sizeof(info.name), "dev%d", i);
		info.has_epoch = dump_epoch >= 0;
		info.epoch = dump_epoch >= 0 ? (uint32_t)dump_epoch : 0;
		cb(&info, arg);
	}
	return 0;
}

static void devices(int n, long epoch, int ret)
{
	dump_devices = n;
	dump_epoch = epoch;
	dump_ret = ret;
}

#define SCRIPT(...) do {					\
		static const long s_[] = { __VA_ARGS__ };	\
		answers = s_;					\
		n_answers = sizeof(s_) / sizeof(s_[0]);		\
		next_answer = 0;				\
	} while (0)

/* The boot unseal, before any device exists, gets an epoch (GET FLAGS=ALL). */
static void forkwatch_adversarial_boot_kek_carries_epoch(void **state)
{
	struct cmk_forkwatch fw;
	struct cmk_err e;

	(void)state;
	cmk_forkwatch_init(&fw);
	SCRIPT(0, 0);
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), 0);
	assert_int_equal(fw.kek, 0);	/* KEY_SET carries it: a clone's is refused */
}

/*
 * A fork between the question to the KMS and its answer: the KEK may have
 * been unsealed by the parent.  Not adopted; the fork is acted on once,
 * and the devices' vmfork events of that same fork do not act again.
 */
static void forkwatch_adversarial_fork_during_unseal_not_adopted(void **state)
{
	struct cmk_forkwatch fw;
	struct cmk_err e;

	(void)state;
	cmk_forkwatch_init(&fw);
	SCRIPT(3, 4);
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), -ESTALE);
	assert_int_equal(e.cls, CMK_EC_TRANSIENT);
	assert_contains(e.msg, "VM fork");
	assert_int_equal(fw.kek, CMK_EPOCH_NONE);
	assert_false(cmk_forkwatch_seen(&fw, true, 4, true));
	assert_false(cmk_forkwatch_seen(&fw, true, 4, true));
	assert_true(cmk_forkwatch_seen(&fw, true, 5, true));	/* the next fork */
}

/* A failed read on a kernel that counts forks: never a KEK of no known epoch. */
static void forkwatch_adversarial_unknown_epoch_not_adopted(void **state)
{
	struct cmk_forkwatch fw;
	struct cmk_err e;

	(void)state;
	cmk_forkwatch_init(&fw);
	SCRIPT(-ENOBUFS, 2,	/* unknown when the job began */
	       2, -ENOMEM,	/* unknown when it ended */
	       2, -ENOMSG,	/* the module was replaced meanwhile */
	       2, 2);
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), -EAGAIN);
	assert_int_equal(e.cls, CMK_EC_TRANSIENT);
	assert_contains(e.msg, "fake kernel");
	assert_int_equal(fw.kek, CMK_EPOCH_NONE);
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), -EAGAIN);
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), -EAGAIN);
	assert_int_equal(fw.kek, CMK_EPOCH_NONE);
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), 0);
	assert_int_equal(fw.kek, 2);
}

/* A module that does not count forks: adopted, and KEY_SET carries none. */
static void forkwatch_adversarial_module_without_epochs_sends_none(void **state)
{
	struct cmk_forkwatch fw;
	struct cmk_err e;

	(void)state;
	cmk_forkwatch_init(&fw);
	SCRIPT(-ENOMSG, -ENOMSG);
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), 0);
	assert_int_equal(fw.kek, CMK_EPOCH_NONE);
	assert_false(fw.counts);
	/* Its vmfork events still count, every one (no epoch to tell them apart). */
	assert_true(cmk_forkwatch_seen(&fw, false, 0, true));
	assert_true(cmk_forkwatch_seen(&fw, false, 0, true));
	assert_false(cmk_forkwatch_seen(&fw, false, 0, false));
}

/*
 * Any report of an epoch other than the KEK's is a fork, whatever the
 * event (a lease expiry, a suspend wipe, another device's install): the
 * vmfork event itself may have been lost or be still on its way.
 */
static void forkwatch_adversarial_other_epoch_in_any_report_is_fork(void **state)
{
	struct cmk_forkwatch fw;
	struct cmk_err e;

	(void)state;
	cmk_forkwatch_init(&fw);
	SCRIPT(7, 7);
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), 0);
	assert_false(cmk_forkwatch_seen(&fw, true, 7, false));	/* its own epoch */
	assert_true(cmk_forkwatch_seen(&fw, true, 8, false));	/* lease expiry, epoch 8 */
	assert_false(cmk_forkwatch_seen(&fw, true, 8, true));	/* that fork's vmfork events */
	assert_false(cmk_forkwatch_seen(&fw, true, 8, false));
	cmk_forkwatch_forget(&fw);
	assert_false(cmk_forkwatch_seen(&fw, true, 8, false));	/* no KEK: nothing to compare */
	assert_true(cmk_forkwatch_seen(&fw, true, 9, true));	/* a vmfork always counts */
}

/*
 * KEY_SET refused with ESTALE: from a fork (the epoch moved past the KEK's)
 * or from a stale header (it did not); an unreadable epoch proves nothing.
 */
static void forkwatch_adversarial_estale_key_set_tells_fork_from_header(void **state)
{
	struct cmk_forkwatch fw;
	struct cmk_err e;

	(void)state;
	cmk_forkwatch_init(&fw);
	SCRIPT(1, 1, 1, -EIO, 2);
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), 0);
	assert_false(cmk_forkwatch_kek_stale(&fw, NULL));	/* header */
	assert_false(cmk_forkwatch_kek_stale(&fw, NULL));	/* unknown */
	assert_true(cmk_forkwatch_kek_stale(&fw, NULL));	/* fork */
	assert_false(cmk_forkwatch_seen(&fw, true, 2, true));	/* acted on */
}

/*
 * A module that reports EPOCH per device but refuses GET without NAME
 * (-EINVAL): the epoch is read from a device (before: taken for a module
 * without epochs, so KEY_SET carried none and the kernel checked nothing
 * - review-a2 #1(b) again).  Once it has reported one, no device to ask
 * or a failed dump is an unknown epoch: never adopted.
 */
static void forkwatch_adversarial_epoch_per_device_only_read_from_a_device(void **state)
{
	struct cmk_forkwatch fw;
	struct cmk_err e;

	(void)state;
	cmk_forkwatch_init(&fw);
	SCRIPT(-EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL);
	devices(2, 5, 0);
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), 0);
	assert_int_equal(fw.kek, 5);		/* KEY_SET carries it */
	assert_true(fw.counts);
	devices(0, -1, 0);			/* every device closed */
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), -EAGAIN);
	assert_contains(e.msg, "no device");
	devices(2, 5, -ENOBUFS);		/* the dump fails */
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), -EAGAIN);
	assert_contains(e.msg, "fake kernel");
	devices(0, -1, 0);
}

/*
 * The module is replaced by one without epochs (a downgrade): keys go
 * without one (the kernel checks none), and the agent says so once (audit
 * and journal, cmk-agent.c); a module that never had epochs, once too.
 */
static void forkwatch_adversarial_downgrade_told_once(void **state)
{
	struct cmk_forkwatch fw;
	struct cmk_err e, te;

	(void)state;
	cmk_forkwatch_init(&fw);
	SCRIPT(-ENOMSG, -ENOMSG, -ENOMSG, -ENOMSG, 4, 4, -ENOMSG, -ENOMSG, -ENOMSG, -ENOMSG);
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), 0);
	assert_true(cmk_forkwatch_tell(&fw, &te));
	assert_contains(te.msg, "fake kernel");
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), 0);
	assert_false(cmk_forkwatch_tell(&fw, &te));	/* once */
	cmk_forkwatch_job_start(&fw, NULL);		/* a module with epochs */
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), 0);
	assert_int_equal(fw.kek, 4);
	assert_false(cmk_forkwatch_tell(&fw, &te));
	cmk_forkwatch_job_start(&fw, NULL);		/* replaced by an older one */
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), 0);
	assert_int_equal(fw.kek, CMK_EPOCH_NONE);
	assert_true(cmk_forkwatch_tell(&fw, &te));
	assert_contains(te.msg, "stopped reporting");
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), 0);
	assert_false(cmk_forkwatch_tell(&fw, &te));
}

/*
 * The module loaded again: its epoch starts over at 0.  Oracle: a fork of
 * the new count is a fork, whatever was acted on before (before: forks up
 * to the old epoch were taken for reports of one acted on already).
 */
static void forkwatch_adversarial_module_reload_resets_acted(void **state)
{
	struct cmk_forkwatch fw;
	struct cmk_err e;

	(void)state;
	cmk_forkwatch_init(&fw);
	SCRIPT(2, 2, 0, 0);
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), 0);
	assert_true(cmk_forkwatch_seen(&fw, true, 3, true));	/* fork: acted on 3 */
	cmk_forkwatch_forget(&fw);
	cmk_forkwatch_job_start(&fw, NULL);			/* module reloaded */
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), 0);
	assert_int_equal(fw.kek, 0);
	assert_true(cmk_forkwatch_seen(&fw, true, 1, true));	/* its first fork */
}

/* While the boot unseal runs (no KEK), a report of another epoch than the job's is a fork. */
static void forkwatch_adversarial_report_other_than_job_epoch_is_fork(void **state)
{
	struct cmk_forkwatch fw;

	(void)state;
	cmk_forkwatch_init(&fw);
	SCRIPT(0);
	cmk_forkwatch_job_start(&fw, NULL);
	assert_false(cmk_forkwatch_seen(&fw, true, 0, false));
	assert_true(cmk_forkwatch_seen(&fw, true, 1, false));
}

/* The adopt message names what failed in this job, not an old read's error. */
static void forkwatch_adversarial_adopt_message_not_stale(void **state)
{
	struct cmk_forkwatch fw;
	struct cmk_err e;

	(void)state;
	cmk_forkwatch_init(&fw);
	SCRIPT(-ENOBUFS, 5, 3);
	assert_int_equal(cmk_forkwatch_read(&fw, NULL), CMK_EPOCH_UNKNOWN);
	cmk_forkwatch_job_start(&fw, NULL);
	assert_int_equal(cmk_forkwatch_adopt(&fw, NULL, &e), -EAGAIN);
	if (strstr(e.msg, "fake kernel"))
		fail_msg("stale reason: %s", e.msg);
	assert_contains(e.msg, "changed while it was unsealed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(forkwatch_adversarial_boot_kek_carries_epoch),
		cmocka_unit_test(forkwatch_adversarial_fork_during_unseal_not_adopted),
		cmocka_unit_test(forkwatch_adversarial_unknown_epoch_not_adopted),
		cmocka_unit_test(forkwatch_adversarial_module_without_epochs_sends_none),
		cmocka_unit_test(forkwatch_adversarial_other_epoch_in_any_report_is_fork),
		cmocka_unit_test(forkwatch_adversarial_estale_key_set_tells_fork_from_header),
		cmocka_unit_test(forkwatch_adversarial_epoch_per_device_only_read_from_a_device),
		cmocka_unit_test(forkwatch_adversarial_downgrade_told_once),
		cmocka_unit_test(forkwatch_adversarial_module_reload_resets_acted),
		cmocka_unit_test(forkwatch_adversarial_report_other_than_job_epoch_is_fork),
		cmocka_unit_test(forkwatch_adversarial_adopt_message_not_stale),
	};

	return cmocka_run_group_tests_name("forkwatch", tests, NULL, NULL);
}
