// SPDX-License-Identifier: GPL-2.0
/*
 * test_poweroff.c - policy poweroff's sync and power-off (poweroff.c),
 * with sync() and reboot() wrapped.
 *
 * The failure modelled: sync() blocks for as long as the kernel holds
 * writes for a wiped key (hold_ms, up to 10 min).  Oracle: the invariant
 * that the caller (cmk-agent's main loop, which feeds the watchdog) never
 * runs sync() itself and never waits for it, and that the power-off comes
 * once sync() returned or the bounded wait is over, whichever is first.
 */
#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "daemon/poweroff.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pthread_t caller;
static bool sync_on_caller, sync_release, sync_entered;
static int reboots, syncs;

void __wrap_sync(void);
void __wrap_sync(void)
{
	pthread_mutex_lock(&lock);
	sync_entered = true;
	syncs++;
	pthread_cond_broadcast(&cond);
	/* A sync run by the caller is the failure: record it, do not hang. */
	if (pthread_equal(pthread_self(), caller)) {
		sync_on_caller = true;
		pthread_mutex_unlock(&lock);
		return;
	}
	while (!sync_release)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
}

int __wrap_reboot(int cmd);
int __wrap_reboot(int cmd)
{
	(void)cmd;
	reboots++;
	errno = EPERM;		/* as without CAP_SYS_BOOT: the caller goes on */
	return -1;
}

static void reset(bool release)
{
	caller = pthread_self();
	sync_on_caller = false;
	sync_release = release;
	sync_entered = false;
	pthread_mutex_lock(&lock);
	syncs = 0;
	pthread_mutex_unlock(&lock);
	reboots = 0;
}

static int syncs_seen(void)
{
	int n;

	pthread_mutex_lock(&lock);
	n = syncs;
	pthread_mutex_unlock(&lock);
	return n;
}

static void wait_sync_entered(void)
{
	pthread_mutex_lock(&lock);
	while (!sync_entered)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
}

static void release_sync(void)
{
	pthread_mutex_lock(&lock);
	sync_release = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

/* The thread's end wakes poll() on the fd. */
static void wait_synced(struct cmk_poweroff *p)
{
	struct pollfd pfd = { .fd = cmk_poweroff_fd(p), .events = POLLIN };

	assert_int_equal(poll(&pfd, 1, 10000), 1);
}

/* sync() blocked for good: the power-off comes at the end of the wait. */
static void poweroff_hang_sync_never_blocks_the_loop(void **state)
{
	struct cmk_poweroff *p = NULL;
	struct cmk_err e;

	(void)state;
	reset(false);
	assert_int_equal(cmk_poweroff_begin(&p, 1000, CMK_POWEROFF_SYNC_MS, &e), 0);
	wait_sync_entered();
	assert_false(sync_on_caller);		/* not on the main loop's thread */
	assert_false(cmk_poweroff_synced(p));
	assert_int_equal(cmk_poweroff_left_ms(p, 1000), CMK_POWEROFF_SYNC_MS);
	assert_int_equal(cmk_poweroff_left_ms(p, 1000 + CMK_POWEROFF_SYNC_MS - 1), 1);
	assert_int_equal(cmk_poweroff_left_ms(p, 1000 + CMK_POWEROFF_SYNC_MS), 0);
	assert_int_equal(cmk_poweroff_now(&e), -EPERM);	/* the loop powers off */
	assert_int_equal(reboots, 1);
	assert_contains(e.msg, "CAP_SYS_BOOT");
	cmk_poweroff_free(&p);			/* still in use: left alone */
	assert_non_null(p);
	release_sync();				/* let the thread end */
	wait_synced(p);
	cmk_poweroff_free(&p);
	assert_null(p);
}

/* sync() returns early: the fd wakes the loop and the power-off is due at once. */
static void poweroff_hang_sync_done_early_is_due_at_once(void **state)
{
	struct cmk_poweroff *p = NULL;
	struct cmk_err e;

	(void)state;
	reset(false);
	assert_int_equal(cmk_poweroff_begin(&p, 5000, 60000, &e), 0);
	wait_sync_entered();
	assert_int_not_equal(cmk_poweroff_left_ms(p, 5000), 0);
	release_sync();
	wait_synced(p);
	assert_true(cmk_poweroff_synced(p));
	assert_int_equal(cmk_poweroff_left_ms(p, 5000), 0);
	assert_false(sync_on_caller);
	cmk_poweroff_free(&p);
}

/*
 * Review r2 #6: a second wipe while the first power-off is under way (or
 * after its reboot() failed) starts no second sync() thread.  Oracle:
 * poweroff.h (one power-off per process); the wrapped sync() counts its
 * callers.  Before, every begin started a thread.
 */
static void poweroff_hang_second_begin_starts_no_second_sync(void **state)
{
	struct cmk_poweroff *p = NULL, *first;
	struct cmk_err e;

	(void)state;
	reset(false);
	assert_int_equal(cmk_poweroff_begin(&p, 1000, CMK_POWEROFF_SYNC_MS, &e), 0);
	first = p;
	wait_sync_entered();
	assert_int_equal(cmk_poweroff_begin(&p, 2000, CMK_POWEROFF_SYNC_MS, &e), -EALREADY);
	assert_ptr_equal(p, first);
	usleep(50000);		/* a second thread would have entered by now */
	assert_int_equal(syncs_seen(), 1);
	release_sync();
	wait_synced(p);
	cmk_poweroff_free(&p);
	assert_null(p);
}

/*
 * The power-off is pending (the agent defers any exit) until it is fired;
 * a reboot() that fails ends that, once, and a later wipe starts no sync().
 * Oracle: poweroff.h; cmk-agent.rst (a pending power-off is not abandoned).
 */
static void poweroff_hang_pending_until_fired_once(void **state)
{
	struct cmk_poweroff *p = NULL;
	struct cmk_err e;

	(void)state;
	reset(false);
	assert_false(cmk_poweroff_pending(NULL));
	assert_int_equal(cmk_poweroff_begin(&p, 1000, CMK_POWEROFF_SYNC_MS, &e), 0);
	wait_sync_entered();
	assert_true(cmk_poweroff_pending(p));	/* a SIGTERM now waits for it */
	assert_int_equal(cmk_poweroff_fire(p, &e), -EPERM);
	assert_int_equal(reboots, 1);
	assert_false(cmk_poweroff_pending(p));	/* failed: the exit may come */
	assert_int_equal(cmk_poweroff_begin(&p, 5000, CMK_POWEROFF_SYNC_MS, &e), -EALREADY);
	assert_int_equal(syncs_seen(), 1);
	release_sync();
	wait_synced(p);
	cmk_poweroff_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(poweroff_hang_sync_never_blocks_the_loop),
		cmocka_unit_test(poweroff_hang_sync_done_early_is_due_at_once),
		cmocka_unit_test(poweroff_hang_second_begin_starts_no_second_sync),
		cmocka_unit_test(poweroff_hang_pending_until_fired_once),
	};

	return cmocka_run_group_tests_name("poweroff", tests, NULL, NULL);
}
