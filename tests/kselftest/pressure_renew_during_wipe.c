// SPDX-License-Identifier: GPL-2.0
/*
 * pressure_renew_during_wipe - one device's KEY_WIPE under heavy load does
 * not delay another device's LEASE_RENEW (issue 12, section 5, test c).
 *
 * Runs under tests/kselftest/pressure.sh (/dev/vda).  Devices A and B
 * get an asynchronous xts(aes) (cryptd, forced through crypto_user as in
 * pressure_wipe_async), so a wipe of A has a lot to drain: every bio in
 * flight finishes its remaining sectors, one cryptd round trip each.  32
 * fio jobs write 64 KiB blocks at random to A (O_DIRECT, 8 in flight
 * each); B is idle.  Then, each in a child process of its own running
 * SCHED_FIFO (so CPU load does not count as latency):
 *
 *   1. KEY_WIPE(A) is sent;
 *   2. the test watches A's status (DM_TABLE_STATUS, which takes no lock
 *      of dm-cmk's) until it says "wiped": the wipe has unpublished A's
 *      key and is now draining it;
 *   3. LEASE_RENEW(B) is sent at once, and timed.
 *
 * Oracle, an ordering where it can be one: if A's wipe was still draining
 * for more than BOUND_MS after the renewal was sent, the renewal must
 * complete before A's wipe does.  A renewal that has to wait for A's
 * drain (a lock shared by all devices, held through it) completes only
 * after it, however fast the machine.  When A's drain ends sooner, the
 * attempt cannot tell (up to ATTEMPTS are made); if none can, the
 * renewal's own latency must stay under BOUND_MS.
 *
 * BOUND_MS is 250 ms, not the issue's 100 ms: this is a TCG guest on a
 * shared 2-core host, where a netlink round trip of a process that is not
 * waiting for anything takes a few ms but a scheduling hiccup of the
 * emulator can add tens; 250 ms is still far below a drain under this
 * load (seconds).  The latency is printed against the issue's 100 ms too.
 */
#include "cmk_test.h"
#include "cmk_crypto.h"
#include "cmk_sys.h"

#include <sys/stat.h>

#define DM_A		CMK_DM_PREFIX "renew-a"
#define DM_B		CMK_DM_PREFIX "renew-b"
#define KEY_A		"pressure-wiped-a"
#define KEY_B		"pressure-renewed-b"
#define LEASE_MS	60000
#define LOAD_MS		5000
#define BOUND_MS	250		/* see above */
#define ISSUE_BOUND_MS	100		/* issue 12, printed only */
#define ATTEMPTS	3
#define CALL_WAIT_MS	60000
#define SEEN_WAIT_MS	10000		/* for A's status to say "wiped" */
#define FIO_LOG		"/tmp/pressure-renew-fio.log"

FIXTURE(pressure_renew_during_wipe) {
	struct cmk_nl nl;
	uint8_t key_a[DM_CMK_KEY_LEN], key_b[DM_CMK_KEY_LEN];
	char path_a[128];
	bool forced;
	bool stuck;		/* a task is stuck in dm-cmk: touch nothing */
	pid_t fio;
	struct cmk_crypto_alg was;
};

/* One wipe of A with a renewal of B during it. */
struct attempt {
	bool seen;		/* A's status said "wiped" before the reply */
	bool renewed;		/* LEASE_RENEW(B) was sent */
	int wipe_err, renew_err;
	uint64_t wipe_ms;	/* KEY_WIPE(A) round trip */
	uint64_t renew_at_ms;	/* renewal sent, after the wipe was sent */
	uint64_t renew_ms;	/* LEASE_RENEW(B) round trip */
	int64_t drain_after_ms;	/* wipe reply - renewal sent */
	bool before;		/* renewal reply came before the wipe's */
};

FIXTURE_SETUP(pressure_renew_during_wipe)
{
	struct cmk_table a = {
		.len = CMK_VDISK_A_SECTORS, .key_name = KEY_A,
		.dev = CMK_VDISK, .offset = CMK_VDISK_A_OFFSET,
	};
	struct cmk_table b = {
		.len = CMK_VDISK_B_SECTORS, .key_name = KEY_B,
		.dev = CMK_VDISK, .offset = CMK_VDISK_B_OFFSET,
	};
	struct cmk_crypto_alg before, after;
	struct stat st;
	int ret;

	self->fio = -1;
	if (stat(CMK_VDISK, &st) || !S_ISBLK(st.st_mode))
		SKIP(return, "no %s: run through tests/kselftest/pressure.sh",
		     CMK_VDISK);
	if (!cmk_have_tool("fio"))
		SKIP(return, "needs fio in the guest");
	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	cmk_key_make(self->key_a, 0xa11a);
	cmk_key_make(self->key_b, 0xb22b);
	cmk_dm_path(self->path_a, sizeof(self->path_a), DM_A);

	cmk_modprobe("cryptd");
	cmk_modprobe("crypto_user");
	ret = cmk_crypto_prefer(CMK_CRYPTD_XTS, "xts(aes)", &self->was);
	ASSERT_EQ(0, ret)
		TH_LOG("cannot make %s the preferred xts(aes): %s",
		       CMK_CRYPTD_XTS, strerror(-ret));
	self->forced = true;
	ASSERT_EQ(0, cmk_crypto_get(CMK_CRYPTD_XTS, &before));
	ASSERT_CMK_CREATE(DM_A, &a);
	ASSERT_CMK_CREATE(DM_B, &b);
	ASSERT_EQ(0, cmk_crypto_get(CMK_CRYPTD_XTS, &after));
	TH_LOG("xts(aes) was %s (priority %u); now %s (%s), refcnt %u -> %u after creating A and B",
	       self->was.driver, self->was.priority, after.driver,
	       after.flags & CMK_CRYPTO_ALG_ASYNC ? "async" : "sync",
	       before.refcnt, after.refcnt);
	ASSERT_NE(0U, after.flags & CMK_CRYPTO_ALG_ASYNC);
	ASSERT_EQ(before.refcnt + 4, after.refcnt)
		TH_LOG("the devices' transforms did not come from %s",
		       CMK_CRYPTD_XTS);
	ASSERT_KEY_SET(&self->nl, KEY_B, self->key_b, LEASE_MS, 1);
}

FIXTURE_TEARDOWN(pressure_renew_during_wipe)
{
	cmk_set_rt(0);
	if (self->stuck)
		return;
	if (self->fio > 0)
		cmk_stop_pid(self->fio, 10000);
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_A);
	cmk_dm_remove(DM_B);
	if (self->forced && cmk_crypto_del(CMK_CRYPTD_XTS))
		cmk_crypto_set_priority(CMK_CRYPTD_XTS, 0);
}

static pid_t spawn_fio(const char *path)
{
	char filename[160];
	const char *argv[] = {
		"fio", filename, "--name=load", "--rw=randwrite", "--bs=64k",
		"--numjobs=32", "--thread", "--direct=1", "--ioengine=libaio",
		"--iodepth=8", "--time_based", "--runtime=600",
		"--norandommap", "--randrepeat=0", "--group_reporting",
		"--eta=never", NULL,
	};

	snprintf(filename, sizeof(filename), "--filename=%s", path);
	return cmk_spawn(argv, FIO_LOG, NULL);
}

/* Is A's status "wiped" (its 4th word: "0 <len> cmk <state> ...")? */
static bool a_wiped(void)
{
	char line[512], state[16];

	if (cmk_dm_status_fast(DM_A, line, sizeof(line)))
		return false;
	if (sscanf(line, "%*s %*s %*s %15s", state) != 1)
		return false;
	return !strcmp(state, "wiped");
}

static uint64_t ms(uint64_t ns)
{
	return ns / 1000000;
}

static void attempt_run(struct __test_metadata *_metadata,
			FIXTURE_DATA(pressure_renew_during_wipe) *self,
			unsigned int n, struct attempt *r)
{
	struct cmk_call wipe, renew;
	uint64_t deadline;
	int ret;

	memset(r, 0, sizeof(*r));
	ASSERT_KEY_SET(&self->nl, KEY_A, self->key_a, LEASE_MS, n + 1);
	self->fio = spawn_fio(self->path_a);
	ASSERT_LT(0, self->fio);
	cmk_sleep_ms(LOAD_MS);
	ASSERT_EQ(-ETIMEDOUT, cmk_wait_pid(self->fio, 0, NULL))
		TH_LOG("fio ended before the wipe (see %s)", FIO_LOG);

	ASSERT_EQ(0, cmk_call_prepare(&wipe, CMK_CALL_KEY_WIPE, KEY_A,
				      DM_CMK_REASON_REVOKED, 50));
	ASSERT_EQ(0, cmk_call_prepare(&renew, CMK_CALL_LEASE_RENEW, KEY_B,
				      LEASE_MS, 60));
	/* Watch A without losing the CPU to fio: SCHED_FIFO below both. */
	ASSERT_EQ(0, cmk_set_rt(40));
	ASSERT_EQ(0, cmk_call_go(&wipe));
	deadline = cmk_now_ms() + SEEN_WAIT_MS;
	while (cmk_now_ms() < deadline) {
		if (__atomic_load_n(&wipe.res->done, __ATOMIC_ACQUIRE))
			break;
		if (a_wiped()) {
			r->seen = !__atomic_load_n(&wipe.res->done,
						   __ATOMIC_ACQUIRE);
			if (r->seen) {
				ASSERT_EQ(0, cmk_call_go(&renew));
				r->renewed = true;
			}
			break;
		}
		usleep(200);
	}
	cmk_set_rt(0);

	if (r->renewed && cmk_call_wait(&renew, CALL_WAIT_MS)) {
		self->stuck = true;
		ASSERT_TRUE(false)
			TH_LOG("LEASE_RENEW(B) has not returned after %u ms",
			       CALL_WAIT_MS);
	}
	if (cmk_call_wait(&wipe, CALL_WAIT_MS)) {
		self->stuck = true;
		ASSERT_TRUE(false)
			TH_LOG("KEY_WIPE(A) under load has not returned after %u ms",
			       CALL_WAIT_MS);
	}
	r->wipe_err = wipe.res->err;
	r->wipe_ms = ms(wipe.res->t_reply_ns - wipe.res->t_send_ns);
	if (r->renewed) {
		r->renew_err = renew.res->err;
		r->renew_at_ms = ms(renew.res->t_send_ns - wipe.res->t_send_ns);
		r->renew_ms = ms(renew.res->t_reply_ns - renew.res->t_send_ns);
		r->drain_after_ms = (int64_t)(wipe.res->t_reply_ns -
					      renew.res->t_send_ns) / 1000000;
		r->before = renew.res->t_reply_ns < wipe.res->t_reply_ns;
	}
	if (!r->renewed)	/* the child still waits for its go */
		kill(renew.pid, SIGKILL);
	cmk_call_release(&renew);
	cmk_call_release(&wipe);

	ret = cmk_stop_pid(self->fio, 30000);
	if (ret) {
		self->stuck = true;
		ASSERT_EQ(0, ret)
			TH_LOG("fio is stuck after the wipe: %d threads in D state",
			       cmk_threads_in_d(self->fio));
	}
	self->fio = -1;

	if (!r->renewed)
		TH_LOG("attempt %u: KEY_WIPE(A) took %llu ms; its drain ended before the renewal could be sent",
		       n + 1, (unsigned long long)r->wipe_ms);
	else
		TH_LOG("attempt %u: KEY_WIPE(A) took %llu ms; LEASE_RENEW(B) sent %llu ms into it took %llu ms (issue bound %u ms: %s) and completed %s A's wipe, which went on %lld ms after the renewal was sent",
		       n + 1, (unsigned long long)r->wipe_ms,
		       (unsigned long long)r->renew_at_ms,
		       (unsigned long long)r->renew_ms, ISSUE_BOUND_MS,
		       r->renew_ms <= ISSUE_BOUND_MS ? "met" : "exceeded",
		       r->before ? "before" : "after",
		       (long long)r->drain_after_ms);
}

TEST_F_TIMEOUT(pressure_renew_during_wipe, renewal_not_delayed_by_other_wipe,
	       600)
{
	struct attempt r = { 0 }, last = { 0 };
	bool conclusive = false;
	struct cmk_info in;
	unsigned int n;

	for (n = 0; n < ATTEMPTS && !conclusive; n++) {
		attempt_run(_metadata, self, n, &r);
		ASSERT_EQ(0, r.wipe_err)
			TH_LOG("KEY_WIPE(A): %s", strerror(-r.wipe_err));
		if (!r.renewed)
			continue;
		ASSERT_EQ(0, r.renew_err)
			TH_LOG("LEASE_RENEW(B): %s", strerror(-r.renew_err));
		last = r;
		conclusive = r.drain_after_ms > BOUND_MS;
	}
	ASSERT_TRUE(last.renewed)
		TH_LOG("in %u attempts A's wipe never drained long enough to send a renewal during it",
		       ATTEMPTS);
	if (conclusive) {
		ASSERT_TRUE(last.before)
			TH_LOG("LEASE_RENEW(B) waited for KEY_WIPE(A) to drain: it took %llu ms and ended after A's wipe, which still had %lld ms to go when the renewal was sent",
			       (unsigned long long)last.renew_ms,
			       (long long)last.drain_after_ms);
	} else {
		TH_LOG("no attempt drained longer than %u ms after the renewal: checking the renewal's latency only",
		       BOUND_MS);
		ASSERT_GE((uint64_t)BOUND_MS, last.renew_ms)
			TH_LOG("LEASE_RENEW(B) took %llu ms during A's wipe",
			       (unsigned long long)last.renew_ms);
	}

	/* B was renewed and kept its key; A stays wiped. */
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_B, &in, NULL, 0));
	ASSERT_EQ((uint32_t)DM_CMK_STATE_ACTIVE, in.state);
	ASSERT_TRUE(in.has_lease_left);
	ASSERT_LT((uint32_t)(LEASE_MS / 2), in.lease_left_ms);
	ASSERT_STATE(&self->nl, KEY_A, DM_CMK_STATE_WIPED);
}

TEST_HARNESS_MAIN
