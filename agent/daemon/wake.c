// SPDX-License-Identifier: GPL-2.0
/*
 * wake.c - hints from other threads to the main loop (see wake.h).
 */
#include "daemon/wake.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct cmk_wake {
	int efd;
};

int cmk_wake_open(struct cmk_wake **out, struct cmk_err *e)
{
	struct cmk_wake *w;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return cmk_errf(e, -ENOMEM, "hint wake-up: out of memory");
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0) {
		int ret = cmk_errf(e, -errno, "hint wake-up: eventfd: %s", strerror(errno));

		free(w);
		return ret;
	}
	*out = w;
	return 0;
}

int cmk_wake_fd(const struct cmk_wake *w)
{
	return w ? w->efd : -1;
}

void cmk_wake_post(struct cmk_wake *w)
{
	uint64_t one = 1;
	int saved = errno;

	/* EAGAIN: the counter is full, so the fd is readable already. */
	if (write(w->efd, &one, sizeof(one)) < 0)
		(void)0;
	errno = saved;
}

uint64_t cmk_wake_take(struct cmk_wake *w)
{
	uint64_t n = 0;

	if (read(w->efd, &n, sizeof(n)) != sizeof(n))
		return 0;	/* EAGAIN: nothing posted */
	return n;
}

void cmk_wake_close(struct cmk_wake **w)
{
	if (!*w)
		return;
	close((*w)->efd);
	free(*w);
	*w = NULL;
}
