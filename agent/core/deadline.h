/* SPDX-License-Identifier: GPL-2.0 */
/*
 * deadline.h - one overall time budget for the KMS calls of a check.
 *
 * cmk-agent gives every CMK check and every unseal one deadline
 * (check_timeout_ms), however many HTTP requests, retries, token fetches or
 * TLS handshakes the provider needs for it.  The deadline belongs to the
 * thread that runs the job (the agent's KMS worker, worker.h), so no
 * provider interface has to carry it: code that waits on a KMS reads it.
 * http.c clamps each attempt's timeouts to what is left and makes no
 * retry past it; provider_kmip.c clamps each request's own deadline to
 * it (cmk_deadline_clamp_ms()).
 *
 * cmk_deadline_cancel_all() makes every deadline in the process count as
 * passed: HTTP transfers end within a second, no new request or retry
 * starts.  The agent calls it when it stops, so SIGTERM is not held up by
 * a KMS that does not answer.  A thread may also watch a flag of its own
 * (cmk_deadline_watch()): once another thread sets it, that thread's
 * deadline counts as passed - how the agent ends a job whose answer it no
 * longer wants (worker.h, cmk_worker_cancel()).
 *
 * Times are CLOCK_BOOTTIME milliseconds (cmk_deadline_now_ms()): a
 * deadline that passed while the system was suspended has passed.
 */
#ifndef CMK_DEADLINE_H
#define CMK_DEADLINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* cmk_deadline_now_ms() - CLOCK_BOOTTIME in milliseconds. */
uint64_t cmk_deadline_now_ms(void);

/*
 * cmk_deadline_awake_ms() - CLOCK_MONOTONIC in milliseconds: it stops
 * while the system is suspended, for how long a call itself took and for
 * waits that sleep must not shorten.
 */
uint64_t cmk_deadline_awake_ms(void);

/* cmk_deadline_set() - this thread's deadline (@at_ms; 0: none). */
void cmk_deadline_set(uint64_t at_ms);

/* cmk_deadline_get() - this thread's deadline, 0 if none. */
uint64_t cmk_deadline_get(void);

/*
 * cmk_deadline_left_ms() - ms until this thread's deadline: -1 when there
 * is none, 0 when it has passed or every wait was cancelled.
 */
long cmk_deadline_left_ms(void);

/* cmk_deadline_expired() - the deadline passed, or waits were cancelled. */
bool cmk_deadline_expired(void);

/*
 * cmk_deadline_clamp_ms() - @ms, or what is left of the deadline if that
 * is less (at least 1, so a clamped timeout never means "no timeout").
 */
long cmk_deadline_clamp_ms(long ms);

/*
 * cmk_deadline_cancel_all() - with @on, every thread's deadline counts as
 * passed (waits end); with !@on, deadlines count again.
 */
void cmk_deadline_cancel_all(bool on);

/*
 * cmk_deadline_watch() - this thread's deadline counts as passed while
 * *@cancel is true (NULL: watch nothing).
 */
void cmk_deadline_watch(const atomic_bool *cancel);

/*
 * cmk_deadline_cancel_reason() - why this thread's waits were cancelled,
 * for messages: "the agent is stopping" (cmk_deadline_cancel_all()), "the
 * job's answer is no longer wanted" (its watched flag), NULL if neither.
 */
const char *cmk_deadline_cancel_reason(void);

#endif /* CMK_DEADLINE_H */
