/* SPDX-License-Identifier: GPL-2.0 */
/*
 * worker.h - one thread for the agent's blocking KMS jobs.
 *
 * cmk-agent's main thread owns the leases, the kernel's events, the
 * watchdog and the signals, so it must never wait on a KMS.  It hands a
 * job (a function and its argument) to this worker with a deadline, goes
 * on polling, and learns that the job ended when cmk_worker_fd() becomes
 * readable.  One job at a time.  The worker sets the job's deadline for
 * its own thread (deadline.h) before running it, so every KMS wait inside
 * the job ends by then.
 *
 * Ownership: from cmk_worker_submit() until cmk_worker_done() returns
 * true, the job's argument (and what it points to) belongs to the job.
 * Create the worker after blocking the signals the main thread reads from
 * a signalfd: the thread inherits the mask.
 */
#ifndef CMK_WORKER_H
#define CMK_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

struct cmk_worker;

typedef void (*cmk_worker_fn)(void *arg);

int cmk_worker_start(struct cmk_worker **out, struct cmk_err *e);

/* cmk_worker_fd() - readable when a job has ended (for poll()). */
int cmk_worker_fd(const struct cmk_worker *w);

/*
 * cmk_worker_submit() - run @fn(@arg) on the worker with the deadline
 * @deadline_ms (CLOCK_BOOTTIME ms, 0 for none).  -EBUSY while the previous
 * job has not been collected with cmk_worker_done().
 */
int cmk_worker_submit(struct cmk_worker *w, cmk_worker_fn fn, void *arg,
		      uint64_t deadline_ms);

/*
 * cmk_worker_cancel() - the job under way is no longer wanted: its
 * deadline counts as passed from now on (deadline.h), so its KMS calls
 * end (an HTTP transfer within a second) and it returns.  The next job is
 * not affected.
 */
void cmk_worker_cancel(struct cmk_worker *w);

/* cmk_worker_busy() - a job was submitted and not collected yet. */
bool cmk_worker_busy(struct cmk_worker *w);

/*
 * cmk_worker_done() - collect the job if it has ended: true once per job,
 * after which its argument is the caller's again.  Clears the fd.
 */
bool cmk_worker_done(struct cmk_worker *w);

/*
 * cmk_worker_stop() - cancel every KMS wait (cmk_deadline_cancel_all()),
 * let the running job end and the thread exit, waiting @wait_ms at most
 * (a job submitted but not started yet is dropped).
 * True when the thread is gone (and *@w freed).  False when the job is
 * still running (a call that ignores deadlines): the thread is left behind
 * with *@w, for the exiting process to take down; the caller must not free
 * what the job uses.
 */
bool cmk_worker_stop(struct cmk_worker **w, uint64_t wait_ms);

#endif /* CMK_WORKER_H */
