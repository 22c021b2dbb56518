// SPDX-License-Identifier: GPL-2.0
/*
 * poweroff.c - sync on a thread, then power off (see poweroff.h).
 */
#include "daemon/poweroff.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/reboot.h>
#include <unistd.h>

struct cmk_poweroff {
	int efd;
	uint64_t due_ms;
	atomic_bool synced;
	bool fired;		/* reboot() was tried (main thread only) */
};

static void *sync_main(void *arg)
{
	struct cmk_poweroff *p = arg;
	uint64_t one = 1;

	sync();
	atomic_store(&p->synced, true);
	/* The main loop also reads cmk_poweroff_synced(): a lost wake-up only delays. */
	if (write(p->efd, &one, sizeof(one)) != sizeof(one))
		return NULL;
	return NULL;
}

int cmk_poweroff_begin(struct cmk_poweroff **out, uint64_t now_ms,
		       uint64_t wait_ms, struct cmk_err *e)
{
	struct cmk_poweroff *p;
	pthread_attr_t at;
	pthread_t t;
	int ret;

	if (*out)
		return cmk_errf(e, -EALREADY, "power-off: begun already; no second sync()");
	p = calloc(1, sizeof(*p));
	if (!p)
		return cmk_errf(e, -ENOMEM, "power-off: out of memory");
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0) {
		ret = cmk_errf(e, -errno, "power-off: eventfd: %s", strerror(errno));
		free(p);
		return ret;
	}
	p->due_ms = now_ms + wait_ms;
	atomic_init(&p->synced, false);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&t, &at, sync_main, p);
	pthread_attr_destroy(&at);
	if (ret) {
		close(p->efd);
		free(p);
		return cmk_errf(e, -ret, "power-off: cannot start a thread for sync: %s",
				strerror(ret));
	}
	/* From here on @p belongs to the thread as well, until it synced. */
	*out = p;
	return 0;
}

int cmk_poweroff_fd(const struct cmk_poweroff *p)
{
	return p->efd;
}

bool cmk_poweroff_synced(const struct cmk_poweroff *p)
{
	return atomic_load(&p->synced);
}

uint64_t cmk_poweroff_left_ms(const struct cmk_poweroff *p, uint64_t now_ms)
{
	if (cmk_poweroff_synced(p) || now_ms >= p->due_ms)
		return 0;
	return p->due_ms - now_ms;
}

bool cmk_poweroff_pending(const struct cmk_poweroff *p)
{
	return p && !p->fired;
}

int cmk_poweroff_fire(struct cmk_poweroff *p, struct cmk_err *e)
{
	p->fired = true;
	return cmk_poweroff_now(e);
}

void cmk_poweroff_free(struct cmk_poweroff **pp)
{
	struct cmk_poweroff *p = *pp;

	if (!p || !cmk_poweroff_synced(p))
		return;
	close(p->efd);
	free(p);
	*pp = NULL;
}

int cmk_poweroff_now(struct cmk_err *e)
{
	reboot(RB_POWER_OFF);
	return cmk_errf(e, -errno, "reboot(RB_POWER_OFF) failed: %s%s", strerror(errno),
			errno == EPERM ? " (the agent needs CAP_SYS_BOOT)" : "");
}
