/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sqs.h - the SQS calls of the revocation hint (daemon/hint.h).
 *
 * ReceiveMessage (long poll) and DeleteMessageBatch on one queue, in SQS's
 * JSON protocol (POST / with X-Amz-Target: AmazonSQS.<op> and
 * application/x-amz-json-1.0 bodies), signed with SigV4 (service "sqs")
 * with credentials from the AWS chain (aws_creds.h: environment, shared
 * files, IMDSv2).  The queue URL names the endpoint:
 * https://sqs.<region>.amazonaws.com/<account>/<queue>; plain http:// only
 * to loopback (http.h), where test peers live.
 *
 * Answers are parsed strictly: a JSON object, "Messages" (if present) an
 * array of at most the number asked for, each with a string MessageId,
 * ReceiptHandle and Body, and MD5OfBody equal to the MD5 of the body SQS
 * sent.  Anything else is an error and no message of that answer counts.
 *
 * What a message says is never trusted: the hint only makes the agent ask
 * the KMS.  The body is read only for the audit line: the CloudTrail
 * eventName of an EventBridge event, raw or inside an SNS notification.
 */
#ifndef CMK_SQS_H
#define CMK_SQS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "kms/aws/aws_creds.h"
#include "kms/http.h"

#define CMK_SQS_URL_MAX		1024
#define CMK_SQS_MAX_MESSAGES	10	/* SQS's limit per ReceiveMessage */
#define CMK_SQS_WAIT_S		20	/* SQS's longest long poll */
#define CMK_SQS_ID_MAX		100	/* MessageId as audited */
#define CMK_SQS_EVENT_MAX	64	/* eventName as audited */
/*
 * The largest ReceiveMessage answer read: one message of SQS's largest
 * (1 MiB) even if every byte of it is JSON-escaped (6 bytes), and its
 * envelope.  A larger answer (a batch of large messages) is a hint by
 * itself: an entry with this id and no receipt (cmk_sqs_receive()).
 */
#define CMK_SQS_ANSWER_MAX	(7u * 1024 * 1024)
#define CMK_SQS_OVERSIZED_ID	"oversized-answer"

struct cmk_sqs {
	char queue_url[CMK_SQS_URL_MAX];
	char endpoint[CMK_SQS_URL_MAX];	/* scheme://host[:port]/ */
	char host[300];			/* Host header */
	char region[33];
	struct cmk_aws_cred_src creds;
	struct cmk_http_opts http;
	size_t batch;			/* messages asked per receive; 0: max */
};

/**
 * struct cmk_sqs_msg - one received message
 * @id: its MessageId (printable ASCII, cut to CMK_SQS_ID_MAX)
 * @receipt: its ReceiptHandle (malloc'd), to delete it with
 * @event: the CloudTrail eventName it carries ("DisableKey"), or "" if the
 *	body is no EventBridge event of CloudTrail
 * @sent_ms: SentTimestamp (ms since the epoch), 0 if not given
 */
struct cmk_sqs_msg {
	char id[CMK_SQS_ID_MAX + 1];
	char *receipt;
	char event[CMK_SQS_EVENT_MAX + 1];
	uint64_t sent_ms;
};

/*
 * cmk_sqs_open() - for the queue @url; @region may be NULL: taken from
 * the URL's host (sqs.<region>.amazonaws.com[.cn], sqs-fips.<region>...,
 * <region>.queue.amazonaws.com), else from AWS_REGION / AWS_DEFAULT_REGION.
 * -EINVAL (local) for a URL or region that does not do.
 */
int cmk_sqs_open(struct cmk_sqs *q, const char *url, const char *region,
		 struct cmk_err *e);
void cmk_sqs_close(struct cmk_sqs *q);

/*
 * cmk_sqs_receive() - ReceiveMessage with WaitTimeSeconds @wait_s: up to
 * @max (1..CMK_SQS_MAX_MESSAGES) messages into @msgs, how many in *@n (0:
 * the poll ended with none).  The calling thread's deadline (deadline.h)
 * ends it early.  Errors name the queue and SQS's error code.  An answer
 * larger than CMK_SQS_ANSWER_MAX is no error: its messages stay unseen
 * until their visibility timeout, so it counts as a hint (an entry with
 * id CMK_SQS_OVERSIZED_ID and no receipt), and the following receives ask
 * for one message each until one comes back empty.
 */
int cmk_sqs_receive(struct cmk_sqs *q, int wait_s, struct cmk_sqs_msg *msgs,
		    size_t max, size_t *n, struct cmk_err *e);

/*
 * cmk_sqs_delete() - DeleteMessageBatch of @msgs[0..@n) (those without a
 * receipt are skipped; none left: no request); an entry SQS
 * reports failed fails the call (the message comes back after its
 * visibility timeout: one more check, no harm).
 */
int cmk_sqs_delete(struct cmk_sqs *q, const struct cmk_sqs_msg *msgs, size_t n,
		   struct cmk_err *e);

/* cmk_sqs_msgs_free() - free the receipt handles of @msgs[0..@n). */
void cmk_sqs_msgs_free(struct cmk_sqs_msg *msgs, size_t n);

/* ---- parsers (exposed for unit tests) ------------------------------------ */

/* cmk_sqs_parse_receive() - a ReceiveMessage answer body (see above). */
int cmk_sqs_parse_receive(const char *body, size_t len, struct cmk_sqs_msg *msgs,
			  size_t max, size_t *n, struct cmk_err *e);

/* cmk_sqs_parse_delete() - a DeleteMessageBatch answer for @n entries. */
int cmk_sqs_parse_delete(const char *body, size_t len, size_t n,
			 struct cmk_err *e);

/* cmk_sqs_region_of_host() - the region in an SQS host name, or -EINVAL. */
int cmk_sqs_region_of_host(const char *host, char *region, size_t len);

#endif /* CMK_SQS_H */
