// SPDX-License-Identifier: GPL-2.0
/*
 * test_worker.c - the agent's KMS worker thread: jobs run off the caller's
 * thread under their deadline, one at a time, end through the eventfd; and
 * stopping cancels a job that hangs in a KMS call.  Oracle: worker.h and
 * deadline.h; the hanging peer is a listening socket nobody accepts from.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/deadline.h"
#include "kms/http.h"
#include "daemon/worker.h"

struct job {
	uint64_t deadline_seen;
	long left_seen;
	int ret;
	struct cmk_err e;
	char url[64];
};

static void read_deadline(void *arg)
{
	struct job *j = arg;

	j->deadline_seen = cmk_deadline_get();
	j->left_seen = cmk_deadline_left_ms();
}

static bool wait_end(struct cmk_worker *w, int ms)
{
	struct pollfd p = { .fd = cmk_worker_fd(w), .events = POLLIN };

	return poll(&p, 1, ms) == 1 && cmk_worker_done(w);
}

static void worker_hang_runs_job_under_its_deadline(void **state)
{
	struct cmk_worker *w;
	struct cmk_err e;
	struct job j = { 0 };
	uint64_t dl = cmk_deadline_now_ms() + 5000;

	(void)state;
	assert_int_equal(cmk_worker_start(&w, &e), 0);
	assert_false(cmk_worker_busy(w));
	assert_int_equal(cmk_worker_submit(w, read_deadline, &j, dl), 0);
	assert_true(cmk_worker_busy(w));
	/* one job at a time, until collected */
	assert_int_equal(cmk_worker_submit(w, read_deadline, &j, dl), -EBUSY);
	assert_true(wait_end(w, 5000));
	assert_false(cmk_worker_busy(w));
	assert_int_equal(j.deadline_seen, dl);
	assert_in_range(j.left_seen, 1, 5000);
	assert_int_equal(cmk_deadline_get(), 0);	/* not this thread's */
	assert_true(cmk_worker_stop(&w, 1000));
	assert_null(w);
}

static int silent_peer(char *url, size_t n)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(url, n, "http://127.0.0.1:%u/", ntohs(sa.sin_port));
	return fd;
}

static void http_call(void *arg)
{
	struct job *j = arg;
	struct cmk_http_opts o = { .timeout_ms = 60000, .max_attempts = 10 };
	struct cmk_http_request req = { "POST", j->url, NULL, 0, "{}", 2 };
	struct cmk_http_response r;

	j->ret = cmk_http_do(&o, &req, NULL, NULL, &r, &j->e);
	if (!j->ret)
		cmk_http_response_free(&r);
}

/*
 * A KMS call that hangs (no deadline, 10 attempts of 60 s): stopping the
 * worker cancels it, so an agent told to stop is not held up by it.
 */
static void worker_hang_stop_cancels_the_call(void **state)
{
	struct cmk_worker *w;
	struct cmk_err e;
	struct job j = { 0 };
	uint64_t t0, took;
	int fd = silent_peer(j.url, sizeof(j.url));

	(void)state;
	assert_int_equal(cmk_worker_start(&w, &e), 0);
	assert_int_equal(cmk_worker_submit(w, http_call, &j, 0), 0);
	assert_false(wait_end(w, 500));		/* it hangs */
	t0 = cmk_deadline_now_ms();
	assert_true(cmk_worker_stop(&w, 5000));
	took = cmk_deadline_now_ms() - t0;
	close(fd);
	print_message("stop with a hanging call: %llu ms\n", (unsigned long long)took);
	assert_true(took < 3000);
	assert_int_not_equal(j.ret, 0);
	assert_int_equal(j.e.cls, CMK_EC_TRANSIENT);
	assert_false(cmk_deadline_expired());	/* cancel_all is undone */
}

/*
 * A job made stale by an event (a system sleep, a VM fork) is cancelled:
 * its KMS call, which has 30 s of deadline left and would try for much
 * longer, ends within a couple of seconds (libcurl's progress callback
 * runs about once a second), so the fresh job need not wait for it; and
 * the cancel is that job's only: the next one sees its whole deadline.
 * Oracle: worker.h (cmk_worker_cancel) and deadline.h.
 */
static void worker_hang_cancel_ends_the_stale_job_not_the_next(void **state)
{
	struct cmk_worker *w;
	struct cmk_err e;
	struct job j = { 0 }, next = { 0 };
	uint64_t t0, took, dl;
	int fd = silent_peer(j.url, sizeof(j.url));

	(void)state;
	assert_int_equal(cmk_worker_start(&w, &e), 0);
	cmk_worker_cancel(w);			/* idle: nothing to cancel */
	dl = cmk_deadline_now_ms() + 30000;
	assert_int_equal(cmk_worker_submit(w, http_call, &j, dl), 0);
	assert_false(wait_end(w, 500));		/* it hangs */
	t0 = cmk_deadline_now_ms();
	cmk_worker_cancel(w);
	assert_true(wait_end(w, 10000));
	took = cmk_deadline_now_ms() - t0;
	close(fd);
	print_message("cancelled call ended after %llu ms\n", (unsigned long long)took);
	assert_true(took < 5000);
	assert_int_not_equal(j.ret, 0);
	assert_int_equal(j.e.cls, CMK_EC_TRANSIENT);
	assert_int_equal(j.e.reason, CMK_R_TIMEOUT);

	dl = cmk_deadline_now_ms() + 5000;
	assert_int_equal(cmk_worker_submit(w, read_deadline, &next, dl), 0);
	assert_true(wait_end(w, 5000));
	assert_in_range(next.left_seen, 1, 5000);	/* not cancelled */
	assert_true(cmk_worker_stop(&w, 1000));
}

/* A job that ignores every deadline: stop gives up and says so. */
static volatile bool spinning, stop_spinning;

static void spin_forever(void *arg)
{
	(void)arg;
	spinning = true;
	while (!stop_spinning)
		usleep(1000);
}

static void worker_hang_stop_gives_up_on_a_stuck_job(void **state)
{
	struct cmk_worker *w, *keep;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_worker_start(&w, &e), 0);
	assert_int_equal(cmk_worker_submit(w, spin_forever, NULL, 0), 0);
	while (!spinning)
		usleep(1000);
	keep = w;
	assert_false(cmk_worker_stop(&w, 200));
	assert_ptr_equal(w, keep);		/* left behind, not freed */
	stop_spinning = true;			/* let it end (for the sanitizers) */
	assert_true(cmk_worker_stop(&w, 5000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(worker_hang_runs_job_under_its_deadline),
		cmocka_unit_test(worker_hang_stop_cancels_the_call),
		cmocka_unit_test(worker_hang_cancel_ends_the_stale_job_not_the_next),
		cmocka_unit_test(worker_hang_stop_gives_up_on_a_stuck_job),
	};

	return cmocka_run_group_tests_name("worker", tests, NULL, NULL);
}
