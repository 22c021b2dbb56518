/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sqshint.h - revocation hints from an SQS queue.
 *
 * With hint_sqs_queue_url set (cmk-agent.rst, fleet.rst), a thread of its
 * own long-polls the queue (ReceiveMessage, WaitTimeSeconds 20,
 * kms/aws/sqs.h).  An EventBridge rule on the CloudTrail events that revoke
 * a key (DisableKey, ScheduleKeyDeletion, PutKeyPolicy, ...) puts a message
 * there, directly or through SNS.  A message is only a hint (agentloop.h,
 * "Hints"): the thread posts to the main loop's struct cmk_wake, which
 * calls cmk_loop_hint(); only the KMS answer of the check that follows
 * wipes or restores.  So the periodic check can be slow (minutes) and
 * revocation still takes well under a second.
 *
 *   messages   up to 10 per poll; audited by the thread (ids, CloudTrail
 *              event names, how long ago SQS took them), then posted.  The
 *              thread waits until the main loop has started the check they
 *              asked for (cmk_sqs_hint_asked(), cmk_sqs_hint_tick()), then
 *              deletes them (DeleteMessageBatch); messages received
 *              while the boot unseal runs are answered by the check that
 *              follows the boot.  Messages not deleted (the agent
 *              stopped, the boot failed or outlasted CMK_SQS_HINT_ACK_MS:
 *              no check started within it) come back after the queue's
 *              visibility timeout: one more check, no harm.
 *   failures   a queue that fails (network, throttling, credentials, a bad
 *              answer) is polled again after a backoff that doubles from
 *              CMK_SQS_HINT_BACKOFF_MIN_MS to CMK_SQS_HINT_BACKOFF_MAX_MS,
 *              half of it random; audited when it starts failing, when
 *              the reason changes or every CMK_SQS_HINT_NOTE_MS, and when
 *              it answers again.  The check schedule, the leases and the
 *              keys never depend on the queue.
 *
 * The thread writes its own audit lines (one write(2) each, as the KMS
 * worker's) and never touches the loop.
 */
#ifndef CMK_SQSHINT_H
#define CMK_SQSHINT_H

#include "core/err.h"
#include "daemon/agentloop.h"
#include "daemon/wake.h"
#include "format/audit.h"
#include "format/config.h"

#define CMK_SQS_HINT_BACKOFF_MIN_MS	1000
#define CMK_SQS_HINT_BACKOFF_MAX_MS	60000
#define CMK_SQS_HINT_NOTE_MS		600000
/* Messages whose check has not started by then are left to come back. */
#define CMK_SQS_HINT_ACK_MS		60000

struct cmk_sqs_hint;

/*
 * cmk_sqs_hint_start() - start the thread for @cfg's queue, posting to
 * @wake and auditing to @audit (*@out NULL and 0 when no queue is
 * configured).  Call after blocking the signals the main thread reads:
 * the thread inherits the mask.
 */
int cmk_sqs_hint_start(struct cmk_sqs_hint **out, const struct cmk_config *cfg,
		       struct cmk_audit *audit, struct cmk_wake *wake,
		       struct cmk_err *e);

/* cmk_sqs_hint_stop() - end the thread (within about a second), free *@h. */
void cmk_sqs_hint_stop(struct cmk_sqs_hint **h);

/*
 * cmk_sqs_hint_asked() - main thread, right after a cmk_loop_hint() for
 * the wake's posts returned true: the messages posted so far are answered
 * by the next hint check @l starts.  NULL @h: nothing.
 */
void cmk_sqs_hint_asked(struct cmk_sqs_hint *h, const struct cmk_loop *l);

/*
 * cmk_sqs_hint_tick() - main thread, after each cmk_loop_tick(): once @l
 * has started that check, the thread may delete those messages.
 */
void cmk_sqs_hint_tick(struct cmk_sqs_hint *h, const struct cmk_loop *l);

#endif /* CMK_SQSHINT_H */
