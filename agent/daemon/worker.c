// SPDX-License-Identifier: GPL-2.0
/*
 * worker.c - the agent's KMS worker thread (see worker.h).
 */
#include "daemon/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/deadline.h"

struct cmk_worker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;		/* a job or quit for the thread */
	pthread_cond_t gone;		/* the thread has exited */
	int efd;			/* one count per ended job */
	/* under @lock */
	cmk_worker_fn fn;		/* set: a job waits to run */
	void *arg;
	uint64_t deadline_ms;
	atomic_bool cancel;		/* the job's deadline counts as passed */
	bool running;			/* the thread is in a job */
	bool ended;			/* a job ended, not collected yet */
	bool quit;
	bool exited;
};

static void *worker_main(void *data)
{
	struct cmk_worker *w = data;
	uint64_t one = 1;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		cmk_worker_fn fn;
		void *arg;

		while (!w->fn && !w->quit)
			pthread_cond_wait(&w->wake, &w->lock);
		if (w->quit)
			break;
		fn = w->fn;
		arg = w->arg;
		w->fn = NULL;
		w->running = true;
		cmk_deadline_set(w->deadline_ms);
		cmk_deadline_watch(&w->cancel);
		pthread_mutex_unlock(&w->lock);

		fn(arg);

		cmk_deadline_watch(NULL);
		cmk_deadline_set(0);
		pthread_mutex_lock(&w->lock);
		w->running = false;
		w->ended = true;
		/* The main thread polls the eventfd; a full counter cannot happen. */
		if (write(w->efd, &one, sizeof(one)) != sizeof(one))
			abort();
	}
	w->exited = true;
	pthread_cond_broadcast(&w->gone);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int cmk_worker_start(struct cmk_worker **out, struct cmk_err *e)
{
	struct cmk_worker *w;
	pthread_condattr_t ca;
	int ret;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return cmk_errf(e, -ENOMEM, "KMS worker: out of memory");
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0) {
		ret = cmk_errf(e, -errno, "KMS worker: eventfd: %s", strerror(errno));
		free(w);
		return ret;
	}
	atomic_init(&w->cancel, false);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->gone, &ca);
	pthread_condattr_destroy(&ca);
	ret = pthread_create(&w->thread, NULL, worker_main, w);
	if (ret) {
		close(w->efd);
		free(w);
		return cmk_errf(e, -ret, "KMS worker: cannot start a thread: %s",
				strerror(ret));
	}
	*out = w;
	return 0;
}

int cmk_worker_fd(const struct cmk_worker *w)
{
	return w->efd;
}

bool cmk_worker_busy(struct cmk_worker *w)
{
	bool busy;

	pthread_mutex_lock(&w->lock);
	busy = w->fn || w->running || w->ended;
	pthread_mutex_unlock(&w->lock);
	return busy;
}

int cmk_worker_submit(struct cmk_worker *w, cmk_worker_fn fn, void *arg,
		      uint64_t deadline_ms)
{
	pthread_mutex_lock(&w->lock);
	if (w->fn || w->running || w->ended || w->quit) {
		pthread_mutex_unlock(&w->lock);
		return -EBUSY;
	}
	w->fn = fn;
	w->arg = arg;
	w->deadline_ms = deadline_ms;
	atomic_store(&w->cancel, false);
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void cmk_worker_cancel(struct cmk_worker *w)
{
	pthread_mutex_lock(&w->lock);
	if (w->fn || w->running)
		atomic_store(&w->cancel, true);
	pthread_mutex_unlock(&w->lock);
}

bool cmk_worker_done(struct cmk_worker *w)
{
	uint64_t n;
	bool ended;

	while (read(w->efd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&w->lock);
	ended = w->ended;
	w->ended = false;
	pthread_mutex_unlock(&w->lock);
	return ended;
}

bool cmk_worker_stop(struct cmk_worker **wp, uint64_t wait_ms)
{
	struct cmk_worker *w = *wp;
	struct timespec until;
	bool exited;

	if (!w)
		return true;
	cmk_deadline_cancel_all(true);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(wait_ms / 1000);
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	w->quit = true;
	pthread_cond_signal(&w->wake);
	while (!w->exited &&
	       pthread_cond_timedwait(&w->gone, &w->lock, &until) != ETIMEDOUT)
		;
	exited = w->exited;
	pthread_mutex_unlock(&w->lock);
	if (!exited)
		return false;
	pthread_join(w->thread, NULL);
	cmk_deadline_cancel_all(false);
	close(w->efd);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->gone);
	pthread_mutex_destroy(&w->lock);
	free(w);
	*wp = NULL;
	return true;
}
