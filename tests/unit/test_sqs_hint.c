// SPDX-License-Identifier: GPL-2.0
/*
 * test_sqs_hint.c - the SQS answers of the revocation hint (kms/aws/sqs.h)
 * without a network.  Oracles: SQS's JSON protocol as AWS documents it
 * (the ReceiveMessage answer below is moto's, the same shape botocore
 * parses), MD5 of the body computed independently (`printf %s BODY |
 * md5sum`), and the EventBridge and SNS envelopes as AWS documents them.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <json-c/json.h>

#include "kms/aws/sqs.h"

/* md5sum of the bodies, computed outside the agent */
#define BODY_HELLO	"hello"
#define MD5_HELLO	"5d41402abc4b2a76b9719d911017c592"

static char *answer(const char *body_json, const char *md5, const char *extra)
{
	char *s = NULL;

	assert_true(asprintf(&s, "{\"Messages\":[{\"MessageId\":\"m-1\",\"ReceiptHandle\":\"rh-1\","
			     "\"MD5OfBody\":\"%s\",\"Body\":\"%s\"%s}]}", md5, body_json,
			     extra) > 0);
	return s;
}

static void hint_sqs_receive_parses_message(void **state)
{
	struct cmk_sqs_msg m[CMK_SQS_MAX_MESSAGES];
	struct cmk_err e;
	size_t n = 99;
	char *a = answer(BODY_HELLO, MD5_HELLO,
			 ",\"Attributes\":{\"SentTimestamp\":\"1764921600123\"}");

	(void)state;
	assert_int_equal(cmk_sqs_parse_receive(a, strlen(a), m, 10, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(m[0].id, "m-1");
	assert_string_equal(m[0].receipt, "rh-1");
	assert_string_equal(m[0].event, "");
	assert_int_equal(m[0].sent_ms, 1764921600123ULL);
	cmk_sqs_msgs_free(m, n);
	free(a);
}

static void hint_sqs_empty_poll_is_no_message(void **state)
{
	struct cmk_sqs_msg m[CMK_SQS_MAX_MESSAGES];
	struct cmk_err e;
	size_t n = 99;

	(void)state;
	assert_int_equal(cmk_sqs_parse_receive("{}", 2, m, 10, &n, &e), 0);
	assert_int_equal(n, 0);
	assert_int_equal(cmk_sqs_parse_receive("{\"Messages\":[]}", 15, m, 10, &n, &e), 0);
	assert_int_equal(n, 0);
}

static void hint_sqs_bad_answers_refused(void **state)
{
	static const char *const bad[] = {
		"", "[]", "null", "{\"Messages\":{}}", "{\"Messages\":[1]}",
		"{} trailing",
		/* no receipt handle, empty one, no body, no md5 */
		"{\"Messages\":[{\"MessageId\":\"m\",\"MD5OfBody\":\"" MD5_HELLO "\",\"Body\":\"hello\"}]}",
		"{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"\",\"MD5OfBody\":\"" MD5_HELLO "\",\"Body\":\"hello\"}]}",
		"{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"MD5OfBody\":\"" MD5_HELLO "\"}]}",
		"{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"hello\"}]}",
		/* a body that is not what SQS sent */
		"{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"MD5OfBody\":\"" MD5_HELLO "\",\"Body\":\"hellO\"}]}",
		/* a control character in the id */
		"{\"Messages\":[{\"MessageId\":\"m\\n\",\"ReceiptHandle\":\"r\",\"MD5OfBody\":\"" MD5_HELLO "\",\"Body\":\"hello\"}]}",
		/* a timestamp that is no number */
		"{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"MD5OfBody\":\"" MD5_HELLO "\",\"Body\":\"hello\",\"Attributes\":{\"SentTimestamp\":\"12x\"}}]}",
	};
	struct cmk_sqs_msg m[CMK_SQS_MAX_MESSAGES];
	struct cmk_err e;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = 99;
		if (cmk_sqs_parse_receive(bad[i], strlen(bad[i]), m, 10, &n, &e) != -EPROTO)
			fail_msg("accepted: %s", bad[i]);
		assert_int_equal(n, 0);
	}
}

static void hint_sqs_more_messages_than_asked_refused(void **state)
{
	const char *one = "{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"MD5OfBody\":\"" MD5_HELLO "\",\"Body\":\"hello\"}";
	struct cmk_sqs_msg m[CMK_SQS_MAX_MESSAGES];
	struct cmk_err e;
	char *a = NULL;
	size_t n;

	(void)state;
	assert_true(asprintf(&a, "{\"Messages\":[%s,%s]}", one, one) > 0);
	assert_int_equal(cmk_sqs_parse_receive(a, strlen(a), m, 1, &n, &e), -EPROTO);
	assert_int_equal(cmk_sqs_parse_receive(a, strlen(a), m, 2, &n, &e), 0);
	assert_int_equal(n, 2);
	cmk_sqs_msgs_free(m, n);
	free(a);
}

/* A ReceiveMessage answer carrying @raw, its MD5 from md5sum(1). */
static char *answer_for(const char *raw)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array(),
		    *m = json_object_new_object();
	char path[] = "/tmp/cmk-sqs-body.XXXXXX", cmd[64], md5[33];
	int fd = mkstemp(path);
	char *out;
	FILE *p;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, raw, strlen(raw)), (ssize_t)strlen(raw));
	close(fd);
	snprintf(cmd, sizeof(cmd), "md5sum %s", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(md5, sizeof(md5), p));
	pclose(p);
	unlink(path);
	json_object_object_add(m, "MessageId", json_object_new_string("m-1"));
	json_object_object_add(m, "ReceiptHandle", json_object_new_string("rh-1"));
	json_object_object_add(m, "MD5OfBody", json_object_new_string(md5));
	json_object_object_add(m, "Body", json_object_new_string(raw));
	json_object_array_add(arr, m);
	json_object_object_add(o, "Messages", arr);
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return out;
}

static void event_is(const char *raw, const char *want)
{
	struct cmk_sqs_msg m[CMK_SQS_MAX_MESSAGES];
	struct cmk_err e;
	char *a = answer_for(raw);
	size_t n = 0;

	assert_int_equal(cmk_sqs_parse_receive(a, strlen(a), m, 10, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(m[0].event, want);
	cmk_sqs_msgs_free(m, n);
	free(a);
}

/* The eventName of an EventBridge event, raw and inside an SNS envelope. */
static void hint_sqs_event_name_from_eventbridge_and_sns(void **state)
{
	static const char ev[] =
		"{\"version\":\"0\",\"detail-type\":\"AWS API Call via CloudTrail\","
		"\"source\":\"aws.kms\",\"detail\":{\"eventName\":\"DisableKey\"}}";
	json_object *sns = json_object_new_object();

	(void)state;
	event_is(ev, "DisableKey");
	json_object_object_add(sns, "Type", json_object_new_string("Notification"));
	json_object_object_add(sns, "MessageId", json_object_new_string("sns-1"));
	json_object_object_add(sns, "Message", json_object_new_string(ev));
	event_is(json_object_to_json_string(sns), "DisableKey");
	json_object_put(sns);
	/* Anything else is still a hint, with no event name to audit. */
	event_is("not json", "");
	event_is("{\"detail\":{\"eventName\":\"Disable Key\\n\"}}", "");
	event_is("{\"detail\":{\"eventName\":7}}", "");
}

static int del(const char *answer, size_t n, struct cmk_err *e)
{
	return cmk_sqs_parse_delete(answer, strlen(answer), n, e);
}

static void hint_sqs_delete_answer_strict(void **state)
{
	struct cmk_err e;

	(void)state;
	assert_int_equal(del("{\"Successful\":[{\"Id\":\"0\"},{\"Id\":\"1\"}],\"Failed\":[]}", 2, &e), 0);
	assert_int_equal(del("{\"Successful\":[{\"Id\":\"0\"}]}", 1, &e), 0);
	/* one entry failed: an error that quotes SQS */
	{
		const char *s = "{\"Successful\":[{\"Id\":\"0\"}],\"Failed\":[{\"Id\":\"1\",\"Code\":\"ReceiptHandleIsInvalid\",\"Message\":\"bad\",\"SenderFault\":true}]}";

		assert_int_equal(cmk_sqs_parse_delete(s, strlen(s), 2, &e), -EIO);
		assert_non_null(strstr(e.msg, "ReceiptHandleIsInvalid"));
	}
	/* too few, twice the same id, an id never sent, not an answer */
	assert_int_equal(del("{\"Successful\":[{\"Id\":\"0\"}]}", 2, &e), -EPROTO);
	assert_int_equal(del("{\"Successful\":[{\"Id\":\"0\"},{\"Id\":\"0\"}]}", 2, &e), -EPROTO);
	assert_int_equal(del("{\"Successful\":[{\"Id\":\"7\"}]}", 1, &e), -EPROTO);
	assert_int_equal(del("{\"Failed\":[]}", 0, &e), -EPROTO);
}

static void hint_sqs_region_of_host(void **state)
{
	char r[33];

	(void)state;
	assert_int_equal(cmk_sqs_region_of_host("sqs.eu-west-1.amazonaws.com", r, sizeof(r)), 0);
	assert_string_equal(r, "eu-west-1");
	assert_int_equal(cmk_sqs_region_of_host("sqs-fips.us-gov-west-1.amazonaws.com", r, sizeof(r)), 0);
	assert_string_equal(r, "us-gov-west-1");
	assert_int_equal(cmk_sqs_region_of_host("sqs.cn-north-1.amazonaws.com.cn", r, sizeof(r)), 0);
	assert_string_equal(r, "cn-north-1");
	assert_int_equal(cmk_sqs_region_of_host("ap-south-1.queue.amazonaws.com", r, sizeof(r)), 0);
	assert_string_equal(r, "ap-south-1");
	assert_int_equal(cmk_sqs_region_of_host("127.0.0.1", r, sizeof(r)), -EINVAL);
	assert_int_equal(cmk_sqs_region_of_host("sqs.eu-west-1.amazonaws.com.evil.example", r, sizeof(r)), -EINVAL);
	assert_int_equal(cmk_sqs_region_of_host("sqs.EU_WEST.amazonaws.com", r, sizeof(r)), -EINVAL);
}

static void hint_sqs_open_checks_url(void **state)
{
	struct cmk_sqs q;
	struct cmk_err e;

	(void)state;
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	assert_int_equal(cmk_sqs_open(&q, "https://sqs.eu-west-1.amazonaws.com/123456789012/cmk-vm-1",
				      NULL, &e), 0);
	assert_string_equal(q.region, "eu-west-1");
	assert_string_equal(q.host, "sqs.eu-west-1.amazonaws.com");
	assert_string_equal(q.endpoint, "https://sqs.eu-west-1.amazonaws.com/");
	cmk_sqs_close(&q);
	assert_int_equal(cmk_sqs_open(&q, "http://127.0.0.1:4566/123456789012/q", "us-east-1", &e), 0);
	assert_string_equal(q.host, "127.0.0.1:4566");
	assert_string_equal(q.endpoint, "http://127.0.0.1:4566/");
	cmk_sqs_close(&q);
	/* plain http off the machine, no region, not a queue path, a query */
	assert_int_equal(cmk_sqs_open(&q, "http://sqs.eu-west-1.amazonaws.com/1/q", NULL, &e), -EINVAL);
	assert_int_equal(cmk_sqs_open(&q, "http://127.0.0.1:4566/1/q", NULL, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "hint_sqs_region"));
	assert_int_equal(cmk_sqs_open(&q, "https://sqs.eu-west-1.amazonaws.com/q", NULL, &e), -EINVAL);
	assert_int_equal(cmk_sqs_open(&q, "https://sqs.eu-west-1.amazonaws.com/1/q?x=1", NULL, &e), -EINVAL);
	assert_int_equal(cmk_sqs_open(&q, "https://sqs.eu-west-1.amazonaws.com/1/q", "EU!", &e), -EINVAL);
}

/* ---- a scripted SQS on 127.0.0.1: one answer per connection ------------- */

#define SQS_BIG	(8u * 1024 * 1024)	/* more than CMK_SQS_ANSWER_MAX */

struct fake_sqs {
	int lfd;
	int port;
	const char *const *answers;	/* NULL: SQS_BIG bytes, close-delimited */
	int n_answers;
	char got[8][2048];		/* each request's body */
	int served;
};

static void *fake_sqs_serve(void *arg)
{
	struct fake_sqs *f = arg;

	for (; f->served < f->n_answers; f->served++) {
		int fd = accept(f->lfd, NULL, NULL);
		char buf[16384], *end, *cl;
		const char *a = f->answers[f->served];
		size_t len = 0, want = 0;

		if (fd < 0)
			return NULL;
		while (len < sizeof(buf) - 1) {
			ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);

			if (r <= 0)
				break;
			len += (size_t)r;
			buf[len] = '\0';
			end = strstr(buf, "\r\n\r\n");
			if (!end)
				continue;
			cl = strcasestr(buf, "\r\nContent-Length:");
			want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
			if (len >= want)
				break;
		}
		end = strstr(buf, "\r\n\r\n");
		if (end && f->served < 8)
			snprintf(f->got[f->served], sizeof(f->got[0]), "%s", end + 4);
		if (a) {
			char head[256];

			snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
				 "Content-Length: %zu\r\nConnection: close\r\n\r\n", strlen(a));
			(void)!send(fd, head, strlen(head), MSG_NOSIGNAL);
			(void)!send(fd, a, strlen(a), MSG_NOSIGNAL);
		} else {
			/* No Content-Length: the size shows only as it streams. */
			static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
						   "Connection: close\r\n\r\n";
			static char chunk[65536];

			memset(chunk, 'x', sizeof(chunk));
			(void)!send(fd, head, sizeof(head) - 1, MSG_NOSIGNAL);
			for (size_t sent = 0; sent < SQS_BIG; sent += sizeof(chunk))
				if (send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL) < 0)
					break;
		}
		close(fd);
	}
	return NULL;
}

static void fake_sqs_start(struct fake_sqs *f, const char *const *answers, int n,
			   pthread_t *t)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	memset(f, 0, sizeof(*f));
	f->answers = answers;
	f->n_answers = n;
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(f->lfd, 8), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &al), 0);
	f->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(t, NULL, fake_sqs_serve, f), 0);
}

/*
 * A batch too large to read (10 messages of 1 MiB): every ReceiveMessage
 * used to fail until the messages expired, silencing the hint.  Now the
 * oversized answer is itself a hint (an entry without receipt: a check,
 * nothing to delete), one message is asked for at once (wait 0), then one
 * per receive until an empty poll, then 10 again; the delete sends only
 * the real receipt.  Oracle: what cmk_sqs_receive() returns and the
 * request bodies the scripted SQS saw.
 */
static void hint_sqs_oversized_batch_is_a_hint_and_drains(void **state)
{
	static const char *const answers[] = {
		NULL,
		"{\"Messages\":[{\"MessageId\":\"m-1\",\"ReceiptHandle\":\"rh-1\","
		"\"MD5OfBody\":\"" MD5_HELLO "\",\"Body\":\"" BODY_HELLO "\"}]}",
		"{\"Successful\":[{\"Id\":\"0\"}],\"Failed\":[]}",
		"{}",
		"{}",
	};
	struct cmk_sqs_msg m[CMK_SQS_MAX_MESSAGES];
	struct fake_sqs f;
	struct cmk_sqs q;
	struct cmk_err e;
	char url[96];
	size_t n = 0;
	pthread_t t;
	int ret;

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
	unsetenv("AWS_SESSION_TOKEN");
	fake_sqs_start(&f, answers, 5, &t);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/123456789012/hints", f.port);
	assert_int_equal(cmk_sqs_open(&q, url, "us-east-1", &e), 0);

	ret = cmk_sqs_receive(&q, 0, m, CMK_SQS_MAX_MESSAGES, &n, &e);
	if (ret)
		fail_msg("an oversized answer failed the receive: %s", e.msg);
	print_message("# oversized batch: %zu entries (%s, %s)\n", n, m[0].id,
		      n > 1 ? m[1].id : "-");
	assert_int_equal(n, 2);
	assert_string_equal(m[0].id, "m-1");
	assert_string_equal(m[0].receipt, "rh-1");
	assert_string_equal(m[1].id, CMK_SQS_OVERSIZED_ID);
	assert_null(m[1].receipt);
	assert_int_equal(cmk_sqs_delete(&q, m, n, &e), 0);
	cmk_sqs_msgs_free(m, n);
	/* one at a time until the queue is empty, then a full batch again */
	assert_int_equal(cmk_sqs_receive(&q, 0, m, CMK_SQS_MAX_MESSAGES, &n, &e), 0);
	assert_int_equal(n, 0);
	assert_int_equal(cmk_sqs_receive(&q, 0, m, CMK_SQS_MAX_MESSAGES, &n, &e), 0);
	assert_int_equal(n, 0);
	pthread_join(t, NULL);
	close(f.lfd);
	cmk_sqs_close(&q);
	assert_non_null(strstr(f.got[0], "\"MaxNumberOfMessages\":10"));
	assert_non_null(strstr(f.got[1], "\"MaxNumberOfMessages\":1,"));
	assert_non_null(strstr(f.got[1], "\"WaitTimeSeconds\":0"));
	assert_non_null(strstr(f.got[2], "\"ReceiptHandle\":\"rh-1\""));
	assert_null(strstr(f.got[2], "\"Id\":\"1\""));
	assert_non_null(strstr(f.got[3], "\"MaxNumberOfMessages\":1,"));
	assert_non_null(strstr(f.got[4], "\"MaxNumberOfMessages\":10"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hint_sqs_receive_parses_message),
		cmocka_unit_test(hint_sqs_empty_poll_is_no_message),
		cmocka_unit_test(hint_sqs_bad_answers_refused),
		cmocka_unit_test(hint_sqs_more_messages_than_asked_refused),
		cmocka_unit_test(hint_sqs_event_name_from_eventbridge_and_sns),
		cmocka_unit_test(hint_sqs_delete_answer_strict),
		cmocka_unit_test(hint_sqs_region_of_host),
		cmocka_unit_test(hint_sqs_open_checks_url),
		cmocka_unit_test(hint_sqs_oversized_batch_is_a_hint_and_drains),
	};

	return cmocka_run_group_tests_name("sqs_hint", tests, NULL, NULL);
}
