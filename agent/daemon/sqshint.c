// SPDX-License-Identifier: GPL-2.0
/*
 * sqshint.c - the SQS revocation hint: its thread, and the two calls the
 * main loop makes (see sqshint.h).
 */
#include "daemon/sqshint.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/deadline.h"
#include "daemon/auditlimit.h"
#include "kms/aws/sqs.h"

/* An empty long poll quicker than this did not wait: pause before the next. */
#define EMPTY_POLL_MIN_MS	1000

struct cmk_sqs_hint {
	struct cmk_sqs q;
	struct cmk_audit *audit;
	struct cmk_wake *wake;
	pthread_t thread;
	atomic_bool stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* checked moved on, or stop */

	/* Under lock. */
	uint64_t posted;		/* batches posted to the wake */
	uint64_t asked;			/* ... that a loop hint stands for */
	uint64_t checked;		/* ... whose check has started */
	unsigned long base;		/* the loop's hint_checks when asked */

	/* The thread's own. */
	struct cmk_auditlimit noise;	/* message lines of a flood */
	unsigned int fails;		/* failed requests in a row */
	char noted[CMK_ERR_MSG_MAX];	/* the failure last audited */
	uint64_t noted_ms;
};

static void audit(struct cmk_sqs_hint *h, const char *msg, const struct cmk_err *e)
{
	struct cmk_audit_event ev = {
		.event = "hint",
		.outcome = e ? "failure" : "success",
		.cls = e ? e->cls : CMK_EC_NONE,
		.reason = e ? e->reason : CMK_R_NONE,
		.latency_ms = -1,
		.message = msg,
	};
	struct cmk_err ae;

	fprintf(stderr, "cmk-agent: hint: %s\n", msg);
	if (h->audit && cmk_audit_log(h->audit, &ev, &ae))
		fprintf(stderr, "cmk-agent: audit: %s\n", ae.msg);
}

/* A flood's "suppressed" line (daemon/auditlimit.h). */
static void noise_summary(void *ctx, uint64_t source, unsigned long logged,
			  unsigned long dropped, unsigned int span_s)
{
	char msg[160];

	(void)source;
	snprintf(msg, sizeof(msg),
		 "SQS: %lu hints suppressed: %lu more receives with messages not logged one by one (%lu logged) in %u s",
		 dropped, dropped, logged, span_s);
	audit(ctx, msg, NULL);
}

/* Wait until @ms have passed or the thread is stopped (lock held). */
static void nap(struct cmk_sqs_hint *h, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (!atomic_load(&h->stop) &&
	       pthread_cond_timedwait(&h->cond, &h->lock, &ts) != ETIMEDOUT)
		;
}

static long backoff_ms(unsigned int fails)
{
	long cap = CMK_SQS_HINT_BACKOFF_MIN_MS;
	uint32_t r = 0;

	while (--fails && cap < CMK_SQS_HINT_BACKOFF_MAX_MS)
		cap *= 2;
	if (cap > CMK_SQS_HINT_BACKOFF_MAX_MS)
		cap = CMK_SQS_HINT_BACKOFF_MAX_MS;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)cmk_deadline_now_ms() * 2654435761u;
	/* Half fixed, half random: no fleet in lockstep, no hot loop. */
	return cap / 2 + (long)(r % (uint32_t)(cap / 2 + 1));
}

/* A request failed: audit it (rate-limited), then back off. */
static void failed(struct cmk_sqs_hint *h, const struct cmk_err *e)
{
	uint64_t now = cmk_deadline_now_ms();
	char msg[CMK_ERR_MSG_MAX + 160];

	h->fails++;
	if (h->fails == 1 || strcmp(h->noted, e->msg) ||
	    now - h->noted_ms >= CMK_SQS_HINT_NOTE_MS) {
		snprintf(h->noted, sizeof(h->noted), "%s", e->msg);
		h->noted_ms = now;
		snprintf(msg, sizeof(msg),
			 "hint queue failing (%u in a row; polled again after a backoff, checks go on on their schedule): %s",
			 h->fails, e->msg);
		audit(h, msg, e);
	}
	pthread_mutex_lock(&h->lock);
	nap(h, backoff_ms(h->fails));
	pthread_mutex_unlock(&h->lock);
}

static void recovered(struct cmk_sqs_hint *h)
{
	char msg[128];

	if (!h->fails)
		return;
	snprintf(msg, sizeof(msg), "SQS: the hint queue answers again after %u failure(s)",
		 h->fails);
	audit(h, msg, NULL);
	h->fails = 0;
	h->noted[0] = '\0';
}

/* Audit @n messages, post them, wait for their check, delete them. */
static void handle(struct cmk_sqs_hint *h, struct cmk_sqs_msg *msgs, size_t n)
{
	char what[CMK_ERR_MSG_MAX], msg[CMK_ERR_MSG_MAX + 128];
	uint64_t sent = 0, seq;
	struct timespec now, until;
	long long ago = -1;
	struct cmk_err e;
	bool go;

	what[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		size_t used = strlen(what);

		if (used + 1 < sizeof(what))
			snprintf(what + used, sizeof(what) - used, "%s%.64s %.100s", used ? ", " : "",
				 msgs[i].event[0] ? msgs[i].event : "message", msgs[i].id);
		if (msgs[i].sent_ms && (!sent || msgs[i].sent_ms < sent))
			sent = msgs[i].sent_ms;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	if (sent)
		ago = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 - (long long)sent;
	snprintf(msg, sizeof(msg), "SQS: %zu message(s) (%s), sent %lld ms ago", n, what, ago);
	if (cmk_auditlimit_admit(&h->noise, 0, cmk_deadline_now_ms()))
		audit(h, msg, NULL);

	pthread_mutex_lock(&h->lock);
	seq = ++h->posted;
	cmk_wake_post(h->wake);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += CMK_SQS_HINT_ACK_MS / 1000;
	while (!atomic_load(&h->stop) && h->checked < seq &&
	       pthread_cond_timedwait(&h->cond, &h->lock, &until) != ETIMEDOUT)
		;
	go = h->checked >= seq && !atomic_load(&h->stop);
	pthread_mutex_unlock(&h->lock);
	if (!go)
		return;		/* they come back after the visibility timeout */
	if (cmk_sqs_delete(&h->q, msgs, n, &e))
		failed(h, &e);
}

static void *hint_thread(void *arg)
{
	struct cmk_sqs_hint *h = arg;
	struct cmk_sqs_msg msgs[CMK_SQS_MAX_MESSAGES];

	/* A poll under way ends within a second of cmk_sqs_hint_stop(). */
	cmk_deadline_watch(&h->stop);
	while (!atomic_load(&h->stop)) {
		uint64_t t0 = cmk_deadline_now_ms();
		struct cmk_err e;
		size_t n = 0;

		/* a flood's "suppressed" line once it is due */
		cmk_auditlimit_tick(&h->noise, t0);
		if (cmk_sqs_receive(&h->q, CMK_SQS_WAIT_S, msgs, CMK_SQS_MAX_MESSAGES, &n, &e)) {
			if (!atomic_load(&h->stop))
				failed(h, &e);
			continue;
		}
		recovered(h);
		if (n) {
			if (!atomic_load(&h->stop))
				handle(h, msgs, n);
			cmk_sqs_msgs_free(msgs, n);
		} else if (cmk_deadline_now_ms() - t0 < EMPTY_POLL_MIN_MS) {
			pthread_mutex_lock(&h->lock);
			nap(h, EMPTY_POLL_MIN_MS);
			pthread_mutex_unlock(&h->lock);
		}
	}
	return NULL;
}

int cmk_sqs_hint_start(struct cmk_sqs_hint **out, const struct cmk_config *cfg,
		       struct cmk_audit *audit, struct cmk_wake *wake,
		       struct cmk_err *e)
{
	struct cmk_sqs_hint *h;
	pthread_condattr_t ca;
	int ret;

	*out = NULL;
	if (!cfg->hint_sqs_queue_url)
		return 0;
	h = calloc(1, sizeof(*h));
	if (!h)
		return cmk_errf(e, -ENOMEM, "hint: out of memory");
	h->audit = audit;
	h->wake = wake;
	cmk_auditlimit_init(&h->noise, CMK_AUDITLIMIT_PERIOD_MS, noise_summary, h);
	ret = cmk_sqs_open(&h->q, cfg->hint_sqs_queue_url, cfg->hint_sqs_region, e);
	if (ret) {
		cmk_err_prefix(e, "hint");
		goto fail;
	}
	pthread_mutex_init(&h->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	ret = -pthread_create(&h->thread, NULL, hint_thread, h);
	if (ret) {
		cmk_errf(e, ret, "hint: cannot start its thread: %s", strerror(-ret));
		pthread_cond_destroy(&h->cond);
		pthread_mutex_destroy(&h->lock);
		goto fail;
	}
	*out = h;
	return 0;
fail:
	cmk_sqs_close(&h->q);
	free(h);
	return ret;
}

void cmk_sqs_hint_stop(struct cmk_sqs_hint **hp)
{
	struct cmk_sqs_hint *h = *hp;

	if (!h)
		return;
	atomic_store(&h->stop, true);
	pthread_mutex_lock(&h->lock);
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->thread, NULL);
	cmk_auditlimit_flush(&h->noise);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	cmk_sqs_close(&h->q);
	free(h);
	*hp = NULL;
}

void cmk_sqs_hint_tick(struct cmk_sqs_hint *h, const struct cmk_loop *l)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	/* A hint check started since they were asked for: theirs. */
	if (h->checked < h->asked && l->hint_checks > h->base) {
		h->checked = h->asked;
		pthread_cond_broadcast(&h->cond);
	}
	pthread_mutex_unlock(&h->lock);
}

void cmk_sqs_hint_asked(struct cmk_sqs_hint *h, const struct cmk_loop *l)
{
	if (!h)
		return;
	/* Earlier batches whose check has started go first. */
	cmk_sqs_hint_tick(h, l);
	pthread_mutex_lock(&h->lock);
	h->asked = h->posted;
	h->base = l->hint_checks;
	pthread_mutex_unlock(&h->lock);
}
