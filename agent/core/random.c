// SPDX-License-Identifier: GPL-2.0
/*
 * random.c - getrandom() until the buffer is full (see random.h).
 */
#include "core/random.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

int cmk_random_fill(void *buf, size_t len, const char *what, struct cmk_err *e)
{
	unsigned char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = getrandom(p + done, len - done, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : EIO;

			return cmk_errf(e, -err, "%s: getrandom failed: %s", what,
					n < 0 ? strerror(err) : "short read");
		}
		done += (size_t)n;
	}
	return 0;
}
