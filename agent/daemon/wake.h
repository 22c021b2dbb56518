/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wake.h - hints from other threads to cmk-agent's main loop.
 *
 * A hint source that runs on a thread of its own (a queue long-poll, a
 * control socket) must not touch the loop (agentloop.h is the main
 * thread's alone).  It posts to a struct cmk_wake instead: an eventfd the
 * main loop polls; when it is readable the main loop takes the posts and
 * calls cmk_loop_hint() once for all of them (hints coalesce anyway).
 *
 * cmk_wake_post() may be called from any thread, any number of times, and
 * from a signal handler (one write(2) on an eventfd); it never blocks.  A
 * post carries no data and no authority: it only asks for a check.
 */
#ifndef CMK_WAKE_H
#define CMK_WAKE_H

#include <stdint.h>

#include "core/err.h"

struct cmk_wake;

/* cmk_wake_open() - a wake-up with nothing posted; *@out NULL on failure. */
int cmk_wake_open(struct cmk_wake **out, struct cmk_err *e);

/* cmk_wake_fd() - the fd to poll for POLLIN (readable: posts waiting). */
int cmk_wake_fd(const struct cmk_wake *w);

/* cmk_wake_post() - ask the main loop for a check (thread- and signal-safe). */
void cmk_wake_post(struct cmk_wake *w);

/*
 * cmk_wake_take() - the number of posts since the last take (0: none),
 * and the fd is not readable again until the next post.  Main thread.
 */
uint64_t cmk_wake_take(struct cmk_wake *w);

/* cmk_wake_close() - close and free *@w (NULL is fine); sets it NULL. */
void cmk_wake_close(struct cmk_wake **w);

#endif /* CMK_WAKE_H */
