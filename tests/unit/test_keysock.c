// SPDX-License-Identifier: GPL-2.0
/*
 * test_keysock.c - the key socket's wire format and allow-list
 * (format/keysock.c) and the agent's answers (daemon/keyserver.c).
 *
 * Oracles: known bytes written out by hand from Documentation/storage.rst
 * ("Socket protocol"); the invariant that every truncation, every extra
 * byte and every non-canonical context is refused; the EDK the agent
 * hands out opened by esdk_keyring.c directly (held to the JavaScript
 * ESDK by test_esdk.c's known answers) under the wrapping key derived
 * from the KEK, and refused under another context; the agent's state
 * table (keyserver.h) for each loop state.
 */
#include "testutil.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/secret.h"
#include "daemon/keyclient.h"
#include "daemon/keyserver.h"
#include "format/esdk.h"
#include "format/keysock.h"

/* {"a":"y","b":"x"} as ESDK Key Value Pairs */
static const unsigned char ec_ab[] = {
	0x00, 0x02, 0x00, 0x01, 'a', 0x00, 0x01, 'y', 0x00, 0x01, 'b', 0x00, 0x01, 'x',
};

/* A new-data-key request for ec_ab, byte by byte. */
static const unsigned char req_new[] = {
	'C', 'M', 'K', 'Q', 0x01, 0x01, 0x00, 0x10, 0x00, 0x0e,
	0x00, 0x02, 0x00, 0x01, 'a', 0x00, 0x01, 'y', 0x00, 0x01, 'b', 0x00, 0x01, 'x',
};

static void parses_known_request(void **state)
{
	struct cmk_keysock_req req;
	struct cmk_err e;
	unsigned char *built;
	size_t len;

	(void)state;
	assert_int_equal(cmk_keysock_req_len(req_new, 3, &e), 0);
	assert_int_equal(cmk_keysock_req_len(req_new, sizeof(req_new), &e), sizeof(req_new));
	assert_int_equal(cmk_keysock_req_parse(req_new, sizeof(req_new), &req, &e), 0);
	assert_int_equal(req.op, CMK_KEYSOCK_NEW_DATA_KEY);
	assert_int_equal(req.ctx.n, 2);
	assert_string_equal(cmk_encctx_get(&req.ctx, "a"), "y");
	assert_int_equal(req.ec_len, sizeof(ec_ab));
	assert_memory_equal(req.ec, ec_ab, sizeof(ec_ab));
	cmk_keysock_req_free(&req);
	/* The builder writes exactly these bytes. */
	assert_int_equal(cmk_keysock_req_build(CMK_KEYSOCK_NEW_DATA_KEY, ec_ab,
					       sizeof(ec_ab), NULL, &built, &len, &e), 0);
	assert_int_equal(len, sizeof(req_new));
	assert_memory_equal(built, req_new, len);
	free(built);
}

static void build_open(unsigned char **buf, size_t *len)
{
	static unsigned char pid[] = "dm-cmk", info[] = "kek/x/v1\0\0\0\x80\0\0\0\x0c", ct[48];
	struct cmk_esdk_edk edk = { pid, 6, info, sizeof(info) - 1, ct, sizeof(ct) };
	struct cmk_err e;

	assert_int_equal(cmk_keysock_req_build(CMK_KEYSOCK_OPEN_EDK, ec_ab, sizeof(ec_ab),
					       &edk, buf, len, &e), 0);
}

static void every_truncation_and_extra_byte_refused(void **state)
{
	struct cmk_keysock_req req;
	struct cmk_err e;
	unsigned char *buf, *big;
	size_t len;

	(void)state;
	build_open(&buf, &len);
	assert_int_equal(cmk_keysock_req_parse(buf, len, &req, &e), 0);
	assert_int_equal(req.op, CMK_KEYSOCK_OPEN_EDK);
	assert_int_equal(req.edk.ct_len, 48);
	cmk_keysock_req_free(&req);
	for (size_t n = 0; n < len; n++)
		assert_int_not_equal(cmk_keysock_req_parse(buf, n, &req, &e), 0);
	/* The header's length shortened or lengthened: the fields no longer fill it. */
	for (int d = -3; d <= 3; d++) {
		size_t body = len - CMK_KEYSOCK_HDR_LEN + (size_t)d;

		if (!d)
			continue;
		big = calloc(1, len + 3);
		memcpy(big, buf, len);
		big[6] = (unsigned char)(body >> 8);
		big[7] = (unsigned char)body;
		assert_int_not_equal(cmk_keysock_req_parse(big, CMK_KEYSOCK_HDR_LEN + body,
							   &req, &e), 0);
		free(big);
	}
	free(buf);
}

static void bad_headers_refused(void **state)
{
	unsigned char r[sizeof(req_new)];
	struct cmk_keysock_req req;
	struct cmk_err e;

	(void)state;
	/* garbage shows in its first byte */
	assert_int_equal(cmk_keysock_req_len((const unsigned char *)"G", 1, &e), -EBADMSG);
	assert_contains(e.msg, "bad magic");
	memcpy(r, req_new, sizeof(r));
	r[4] = 2;
	assert_int_equal(cmk_keysock_req_len(r, 5, &e), -EBADMSG);
	assert_contains(e.msg, "protocol version 2");
	memcpy(r, req_new, sizeof(r));
	r[6] = 0xff;
	assert_int_equal(cmk_keysock_req_len(r, 8, &e), -EMSGSIZE);
	assert_contains(e.msg, "more than the 8192");
	memcpy(r, req_new, sizeof(r));
	r[5] = 3;
	assert_int_equal(cmk_keysock_req_parse(r, sizeof(r), &req, &e), -EBADMSG);
	assert_contains(e.msg, "operation 0x03");
}

/* A new-data-key request around Key Value Pairs @kv. */
static int parse_kv(const unsigned char *kv, size_t n, struct cmk_err *e)
{
	struct cmk_keysock_req req;
	unsigned char *buf;
	size_t len;
	int ret;

	assert_int_equal(cmk_keysock_req_build(CMK_KEYSOCK_NEW_DATA_KEY, kv, n, NULL,
					       &buf, &len, e), 0);
	ret = cmk_keysock_req_parse(buf, len, &req, e);
	if (!ret)
		cmk_keysock_req_free(&req);
	free(buf);
	return ret;
}

static void non_canonical_contexts_refused(void **state)
{
	static const unsigned char unsorted[] = {
		0, 2, 0, 1, 'b', 0, 1, 'x', 0, 1, 'a', 0, 1, 'y' };
	static const unsigned char dup[] = {
		0, 2, 0, 1, 'a', 0, 1, 'x', 0, 1, 'a', 0, 1, 'y' };
	static const unsigned char count0[] = { 0, 0 };
	static const unsigned char badutf8[] = { 0, 1, 0, 1, 0xc0, 0, 1, 'y' };
	static const unsigned char nul[] = { 0, 1, 0, 2, 'a', 0, 0, 1, 'y' };
	static const unsigned char emptykey[] = { 0, 1, 0, 0, 0, 1, 'y' };
	static const unsigned char ctrl[] = { 0, 1, 0, 1, 'a', 0, 1, '\n' };
	static const unsigned char extra[] = { 0, 1, 0, 1, 'a', 0, 1, 'y', 0 };
	static const unsigned char empty_ok[] = { 0 };
	struct cmk_err e;

	(void)state;
	assert_int_equal(parse_kv(ec_ab, sizeof(ec_ab), &e), 0);
	assert_int_equal(parse_kv(empty_ok, 0, &e), 0);
	assert_int_not_equal(parse_kv(unsorted, sizeof(unsorted), &e), 0);
	assert_contains(e.msg, "sorted");
	assert_int_not_equal(parse_kv(dup, sizeof(dup), &e), 0);
	assert_int_not_equal(parse_kv(count0, sizeof(count0), &e), 0);
	assert_int_not_equal(parse_kv(badutf8, sizeof(badutf8), &e), 0);
	assert_int_not_equal(parse_kv(nul, sizeof(nul), &e), 0);
	assert_int_not_equal(parse_kv(emptykey, sizeof(emptykey), &e), 0);
	assert_int_not_equal(parse_kv(ctrl, sizeof(ctrl), &e), 0);
	assert_int_not_equal(parse_kv(extra, sizeof(extra), &e), 0);
}

static void other_key_provider_refused(void **state)
{
	struct cmk_keysock_req req;
	struct cmk_err e;
	unsigned char *buf;
	size_t len;

	(void)state;
	build_open(&buf, &len);
	/* "dm-cmk" -> "dm-cmx" */
	for (size_t i = 0; i + 6 <= len; i++)
		if (!memcmp(buf + i, "dm-cmk", 6))
			buf[i + 5] = 'x';
	assert_int_equal(cmk_keysock_req_parse(buf, len, &req, &e), -EINVAL);
	assert_contains(e.msg, "Key Provider ID");
	free(buf);
}

static void allow_list(void **state)
{
	struct cmk_keysock_allow a;
	struct cmk_err e;
	gid_t g50[] = { 7, 50 }, g9[] = { 9 };

	(void)state;
	assert_int_equal(cmk_keysock_allow_parse(NULL, &a, &e), 0);
	assert_true(cmk_keysock_allowed(&a, 0, g9, 1));		/* root, always */
	assert_false(cmk_keysock_allowed(&a, 1000, g9, 1));	/* empty: root only */
	assert_int_equal(cmk_keysock_allow_parse("uid:1000  gid:50 user:root\tgroup:root",
						 &a, &e), 0);
	assert_int_equal(a.n_uid, 2);
	assert_int_equal(a.n_gid, 2);
	assert_true(cmk_keysock_allowed(&a, 1000, g9, 1));
	assert_true(cmk_keysock_allowed(&a, 1001, g50, 2));	/* a supplementary group */
	assert_false(cmk_keysock_allowed(&a, 1001, g9, 1));
	assert_false(cmk_keysock_allowed(&a, 1001, g50, 1));	/* 50 not among its groups */
	assert_int_equal(cmk_keysock_allow_parse("uid:", &a, &e), -EINVAL);
	assert_int_equal(cmk_keysock_allow_parse("1000", &a, &e), -EINVAL);
	assert_int_equal(cmk_keysock_allow_parse("uid:10x", &a, &e), -EINVAL);
	assert_int_equal(cmk_keysock_allow_parse("uid:-1", &a, &e), -EINVAL);
	assert_int_equal(cmk_keysock_allow_parse("uid:4294967295", &a, &e), -EINVAL);
	assert_int_equal(cmk_keysock_allow_parse("host:x", &a, &e), -EINVAL);
	assert_int_equal(cmk_keysock_allow_parse("user:no-such-user-xq", &a, &e), -ENOENT);
	assert_contains(e.msg, "no-such-user-xq");
	assert_int_equal(cmk_keysock_allow_parse("group:no-such-group-xq", &a, &e), -ENOENT);
}

/* ---- the agent's answers ---------------------------------------------------- */

static const uint8_t kek_id[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
				    0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };

struct fixture {
	struct cmk_loop loop;
	struct cmk_kek_store keks;
	struct cmk_secret *out;
	uint32_t want;		/* retired versions asked for */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct cmk_err e;

	cmk_kek_store_init(&f->keks);
	memcpy(f->keks.env.kek_id, kek_id, 16);
	f->keks.env.cur.kek_version = 3;
	f->keks.env.n_retired = 1;
	f->keks.env.retired[0].kek_version = 1;
	assert_int_equal(cmk_secret_random(&f->keks.cur, 32, &e), 0);
	assert_int_equal(cmk_secret_random(&f->keks.old[0], 32, &e), 0);
	assert_int_equal(cmk_secret_new(&f->out, CMK_KEYSOCK_RESP_MAX, &e), 0);
	f->loop.state = CMK_LS_ACTIVE;
	f->loop.kek_held = true;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	cmk_secret_free(&f->keks.cur);
	cmk_secret_free(&f->keks.old[0]);
	cmk_secret_free(&f->out);
	free(f);
	return 0;
}

/* Ask @f for a new data key for ec_ab: its key and EDK. */
static enum cmk_keysock_status ask_new(struct fixture *f, struct cmk_secret **dk,
				       struct cmk_esdk_edk *edk, struct cmk_err *why)
{
	struct cmk_keysock_req req;
	enum cmk_keysock_status st, got;
	char name[CMK_ESDK_KEY_NAME_MAX];
	size_t len = 0;

	assert_int_equal(cmk_keysock_req_parse(req_new, sizeof(req_new), &req, why), 0);
	st = cmk_keyserver_answer(&f->loop, &f->keks, &req, f->out, &len, name,
				  &f->want, why);
	cmk_keysock_req_free(&req);
	if (st == CMK_KS_OK) {
		assert_string_equal(name, "kek/00112233-4455-6677-8899-aabbccddeeff/v3");
		assert_int_equal(cmk_keysock_resp_parse(cmk_secret_cdata(f->out), len,
							CMK_KEYSOCK_NEW_DATA_KEY, &got,
							dk, edk, why), 0);
	}
	return st;
}

static enum cmk_keysock_status ask_open(struct fixture *f, const unsigned char *ec,
					size_t ec_len, const struct cmk_esdk_edk *edk,
					struct cmk_secret **dk, struct cmk_err *why)
{
	struct cmk_keysock_req req;
	enum cmk_keysock_status st, got;
	char name[CMK_ESDK_KEY_NAME_MAX];
	unsigned char *buf;
	size_t blen, len = 0;

	assert_int_equal(cmk_keysock_req_build(CMK_KEYSOCK_OPEN_EDK, ec, ec_len, edk,
					       &buf, &blen, why), 0);
	assert_int_equal(cmk_keysock_req_parse(buf, blen, &req, why), 0);
	free(buf);
	st = cmk_keyserver_answer(&f->loop, &f->keks, &req, f->out, &len, name,
				  &f->want, why);
	cmk_keysock_req_free(&req);
	if (st == CMK_KS_OK)
		assert_int_equal(cmk_keysock_resp_parse(cmk_secret_cdata(f->out), len,
							CMK_KEYSOCK_OPEN_EDK, &got, dk,
							NULL, why), 0);
	return st;
}

static void new_key_opens_with_wrapping_key_and_through_agent(void **state)
{
	struct fixture *f = *state;
	struct cmk_secret *dk = NULL, *dk2 = NULL, *dk3 = NULL;
	struct cmk_esdk_wrapkey wk = { 0 };
	struct cmk_esdk_edk edk = { 0 };
	struct cmk_err e;

	assert_int_equal(ask_new(f, &dk, &edk, &e), CMK_KS_OK);
	assert_int_equal(cmk_secret_len(dk), 32);
	/* esdk_keyring.c itself opens it: the EDK is a raw AES keyring's. */
	assert_int_equal(cmk_esdk_wrapkey_derive(f->keks.cur, kek_id, 3, &wk, &e), 0);
	assert_true(cmk_esdk_edk_for(&wk, &edk));
	assert_int_equal(cmk_esdk_edk_unwrap(&wk, &edk, ec_ab, sizeof(ec_ab), &dk2, &e), 0);
	assert_true(cmk_secret_equal(dk, dk2));
	/* and so does the agent, under the same context only */
	assert_int_equal(ask_open(f, ec_ab, sizeof(ec_ab), &edk, &dk3, &e), CMK_KS_OK);
	assert_true(cmk_secret_equal(dk, dk3));
	assert_int_equal(ask_open(f, NULL, 0, &edk, &dk3, &e), CMK_KS_NOT_AUTHENTIC);
	assert_contains(e.msg, "does not open");
	cmk_secret_free(&dk);
	cmk_secret_free(&dk2);
	cmk_secret_free(&dk3);
	cmk_esdk_edk_free(&edk);
	cmk_esdk_wrapkey_free(&wk);
}

static void retired_version_opens_unknown_refused(void **state)
{
	struct fixture *f = *state;
	struct cmk_secret *dk = NULL, *dk2 = NULL;
	struct cmk_esdk_wrapkey wk = { 0 }, other = { 0 };
	struct cmk_esdk_edk edk = { 0 };
	uint8_t other_id[16] = { 1 };
	struct cmk_err e;

	assert_int_equal(cmk_secret_random(&dk, 32, &e), 0);
	assert_int_equal(cmk_esdk_wrapkey_derive(f->keks.old[0], kek_id, 1, &wk, &e), 0);
	assert_int_equal(cmk_esdk_edk_wrap(&wk, dk, ec_ab, sizeof(ec_ab), &edk, &e), 0);
	assert_int_equal(ask_open(f, ec_ab, sizeof(ec_ab), &edk, &dk2, &e), CMK_KS_OK);
	assert_true(cmk_secret_equal(dk, dk2));
	cmk_secret_free(&dk2);
	assert_int_equal(f->want, 0);
	/*
	 * Not unwrapped yet (never at the unseal): "unavailable, retry", and
	 * the agent is asked to unwrap that one version (bit 0: retired[0]).
	 */
	cmk_secret_free(&f->keks.old[0]);
	assert_int_equal(ask_open(f, ec_ab, sizeof(ec_ab), &edk, &dk2, &e), CMK_KS_UNAVAILABLE);
	assert_contains(e.msg, "retired and not unwrapped yet");
	assert_contains(e.msg, "retry");
	assert_int_equal(f->want, 1u);
	cmk_esdk_edk_free(&edk);
	/* another KEK lineage */
	assert_int_equal(cmk_esdk_wrapkey_derive(f->keks.cur, other_id, 3, &other, &e), 0);
	assert_int_equal(cmk_esdk_edk_wrap(&other, dk, ec_ab, sizeof(ec_ab), &edk, &e), 0);
	assert_int_equal(ask_open(f, ec_ab, sizeof(ec_ab), &edk, &dk2, &e), CMK_KS_UNKNOWN_KEY);
	assert_contains(e.msg, "another KEK");
	assert_null(dk2);
	cmk_secret_free(&dk);
	cmk_esdk_edk_free(&edk);
	cmk_esdk_wrapkey_free(&wk);
	cmk_esdk_wrapkey_free(&other);
}

static void loop_states_decide(void **state)
{
	static const struct {
		enum cmk_loop_state ls;
		enum cmk_keysock_status want;
	} table[] = {
		{ CMK_LS_STARTING, CMK_KS_UNAVAILABLE },
		{ CMK_LS_ACTIVE, CMK_KS_OK },
		{ CMK_LS_DEGRADED, CMK_KS_OK },		/* within grace_s, as the disks */
		{ CMK_LS_FAIL_OPEN, CMK_KS_OK },	/* policy none keeps keys */
		{ CMK_LS_UNREACHABLE, CMK_KS_UNAVAILABLE },
		{ CMK_LS_REVOKED, CMK_KS_REVOKED },
	};
	struct fixture *f = *state;
	struct cmk_err e;

	/* the KMS's text names what a peer (not root) must not read */
	cmk_errf(&f->loop.last_err, -EKEYREVOKED,
		 "KEK envelope /etc/cmk/kek.json: aws kms Decrypt arn:aws:kms:us-east-1:123456789012:key/k at https://kms.example: key disabled (credentials: env AKIAEXAMPLE)");
	f->loop.last_err.reason = CMK_R_DISABLED;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		struct cmk_secret *dk = NULL;
		struct cmk_esdk_edk edk = { 0 };

		f->loop.state = table[i].ls;
		assert_int_equal(ask_new(f, &dk, &edk, &e), table[i].want);
		if (table[i].want == CMK_KS_REVOKED)
			assert_contains(e.msg, "(disabled)");
		if (table[i].ls == CMK_LS_REVOKED || table[i].ls == CMK_LS_UNREACHABLE) {
			assert_contains(e.msg, "audit log");
			assert_null(strstr(e.msg, "arn:"));
			assert_null(strstr(e.msg, "123456789012"));
			assert_null(strstr(e.msg, "AKIA"));
			assert_null(strstr(e.msg, "/etc/"));
			assert_null(strstr(e.msg, "kms.example"));
		}
		cmk_secret_free(&dk);
		cmk_esdk_edk_free(&edk);
	}
	/* a state that keeps keys, but no KEK held (unsealing after a fork) */
	f->loop.state = CMK_LS_ACTIVE;
	f->loop.kek_held = false;
	{
		struct cmk_secret *dk = NULL;
		struct cmk_esdk_edk edk = { 0 };

		assert_int_equal(ask_new(f, &dk, &edk, &e), CMK_KS_UNAVAILABLE);
		assert_null(dk);
	}
}

static void responses_round_trip_and_malformed_refused(void **state)
{
	unsigned char buf[CMK_KEYSOCK_RESP_MAX];
	enum cmk_keysock_status st;
	struct cmk_secret *dk = NULL;
	struct cmk_esdk_edk edk;
	struct cmk_err e;
	char msg[2000];
	size_t n;

	(void)state;
	n = cmk_keysock_resp_err(buf, CMK_KS_REVOKED, "no\nway");
	assert_int_equal(cmk_keysock_resp_parse(buf, n, CMK_KEYSOCK_OPEN_EDK, &st, &dk,
						NULL, &e), -EACCES);
	assert_int_equal(st, CMK_KS_REVOKED);
	assert_contains(e.msg, "no?way");		/* no control characters */
	assert_int_not_equal(cmk_keysock_resp_parse(buf, n - 1, CMK_KEYSOCK_OPEN_EDK, &st,
						    &dk, NULL, &e), -EACCES);
	/* an over-long message is cut to fit */
	memset(msg, 'm', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	assert_int_equal(cmk_keysock_resp_err(buf, CMK_KS_INTERNAL, msg), CMK_KEYSOCK_RESP_MAX);
	/* OK but short of a data key, or a status past the last */
	memcpy(buf, "CMKR\x01\x00\x00\x10", 8);
	assert_int_equal(cmk_keysock_resp_parse(buf, 8 + 16, CMK_KEYSOCK_OPEN_EDK, &st, &dk,
						NULL, &e), -EBADMSG);
	memcpy(buf, "CMKR\x01\x09\x00\x00", 8);
	assert_int_equal(cmk_keysock_resp_parse(buf, 8, CMK_KEYSOCK_OPEN_EDK, &st, &dk,
						&edk, &e), -EBADMSG);
	assert_null(dk);
}

/*
 * L5: a refusal whose message is longer than the parser's buffer (the
 * frame's u16 length allows 65535 bytes): refused as malformed by the
 * parser itself, not copied (ASan would see the stack overflow).
 */
static void resp_parse_bounds_long_refusal_itself(void **state)
{
	static unsigned char big[CMK_KEYSOCK_HDR_LEN + 4000];
	enum cmk_keysock_status st;
	struct cmk_secret *dk = NULL;
	struct cmk_err e;
	size_t body = sizeof(big) - CMK_KEYSOCK_HDR_LEN;

	(void)state;
	memset(big, 'x', sizeof(big));
	memcpy(big, "CMKR\x01\x04", 6);
	big[6] = (unsigned char)(body >> 8);
	big[7] = (unsigned char)body;
	assert_int_equal(cmk_keysock_resp_parse(big, sizeof(big), CMK_KEYSOCK_OPEN_EDK,
						&st, &dk, NULL, &e), -EBADMSG);
	assert_contains(e.msg, "at most");
	/* the longest message that fits still parses */
	body = CMK_KEYSOCK_MSG_MAX;
	big[6] = (unsigned char)(body >> 8);
	big[7] = (unsigned char)body;
	assert_int_equal(cmk_keysock_resp_parse(big, CMK_KEYSOCK_HDR_LEN + body,
						CMK_KEYSOCK_OPEN_EDK, &st, &dk, NULL, &e),
			 -EACCES);
	assert_int_equal(st, CMK_KS_UNAVAILABLE);
	assert_null(dk);
}

/* A listening socket at @path, made by the calling process. */
static int listen_at(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4))
		return -1;
	return fd;
}

/*
 * L4: the client sends EDKs (and takes data keys) only from a server
 * running as root or as the client's own uid.  As root: a socket served
 * by uid 65534 is refused at connect, naming that uid; one served by
 * root (this process) is accepted.  Skipped unless run as root.
 */
static void client_refuses_server_not_root(void **state)
{
	char dir[] = "/tmp/keysock-uid.XXXXXX", path[128];
	struct cmk_keyclient kc;
	struct cmk_err e;
	int ready[2], lfd, st;
	pid_t pid;
	char b;

	(void)state;
	if (geteuid() != 0) {
		print_message("# skipped: needs root to run a server as another uid\n");
		return;
	}
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0777), 0);
	snprintf(path, sizeof(path), "%s/keys.sock", dir);
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd;

		/* gone by itself if the parent's assertion fails */
		alarm(20);
		close(STDOUT_FILENO);
		close(STDERR_FILENO);
		if (setgid(65534) || setuid(65534))
			_exit(2);
		fd = listen_at(path);
		if (fd < 0 || write(ready[1], "r", 1) != 1)
			_exit(3);
		pause();
		_exit(0);
	}
	assert_int_equal(read(ready[0], &b, 1), 1);
	assert_int_equal(cmk_keyclient_connect(&kc, path, &e), -EPERM);
	assert_contains(e.msg, "uid 65534");
	assert_int_equal(kc.fd, -1);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	/* served by root: accepted */
	lfd = listen_at(path);
	assert_true(lfd >= 0);
	assert_int_equal(cmk_keyclient_connect(&kc, path, &e), 0);
	cmk_keyclient_close(&kc);
	close(lfd);
	close(ready[0]);
	close(ready[1]);
	unlink(path);
	rmdir(dir);
}

/*
 * L1, L2: the socket's directory must be root's (ours) and writable by
 * nobody else; a live socket at the path (another agent) is not
 * replaced, a stale one is; the file is born with its final mode whatever
 * the umask; at close only the file bind() made is removed, not one put
 * there since.
 */
static void socket_file_dir_checked_live_kept_only_ours_removed(void **state)
{
	char dir[] = "/tmp/keysock-dir.XXXXXX", path[128];
	struct cmk_keyserver *ks = NULL;
	struct cmk_kek_store keks;
	struct cmk_config cfg;
	struct cmk_loop loop;
	struct cmk_err e;
	struct stat st;
	mode_t old;
	int fd;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	memset(&loop, 0, sizeof(loop));
	cmk_kek_store_init(&keks);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/keys.sock", dir);
	cfg.state_dir = dir;
	cfg.key_socket = path;
	/* a directory others may write */
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(cmk_keyserver_open(&ks, &cfg, NULL, &loop, &keks, &e), -EPERM);
	assert_contains(e.msg, "writable by nobody else");
	assert_null(ks);
	assert_int_equal(chmod(dir, 0755), 0);
	/* a live socket there: kept, refused */
	fd = listen_at(path);
	assert_true(fd >= 0);
	assert_int_equal(cmk_keyserver_open(&ks, &cfg, NULL, &loop, &keks, &e), -EADDRINUSE);
	assert_contains(e.msg, "in use");
	assert_int_equal(lstat(path, &st), 0);
	/* a stale one (nobody listens): replaced; mode 0600 under umask 0 */
	close(fd);
	old = umask(0);
	assert_int_equal(cmk_keyserver_open(&ks, &cfg, NULL, &loop, &keks, &e), 0);
	umask(old);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	/* replaced behind the agent's back: not removed at close */
	assert_int_equal(unlink(path), 0);
	tu_write_file(path, "x", 1, 0600);
	cmk_keyserver_close(&ks);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(path);
	rmdir(dir);
}

/*
 * L6: answers holding a data key that are not out yet when the KEK is
 * forgotten do not leave after it.  A root client pipelines 900 new data
 * key requests without reading, so the server's answers back up and one
 * waits in the agent; cmk_keyserver_drop_keys() (every wipe) closes that
 * client: it reads what was sent before, then end of file.  Also: a run
 * without @serve answers nothing (requests wait for the kernel's events).
 */
static void drop_keys_closes_pending_answers_after_wipe(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/keysock-drop.XXXXXX", path[64];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct cmk_keyserver *ks = NULL;
	struct cmk_config cfg;
	unsigned char buf[4096];
	struct cmk_err e;
	size_t got = 0;
	bool eof = false;
	int fd;

	memset(&cfg, 0, sizeof(cfg));
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/keys.sock", dir);
	cfg.state_dir = dir;
	cfg.key_socket = path;
	assert_int_equal(cmk_keyserver_open(&ks, &cfg, NULL, &f->loop, &f->keks, &e), 0);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(send(fd, req_new, sizeof(req_new), 0), (ssize_t)sizeof(req_new));
	/* deadlines only: accepted nothing, answered nothing */
	cmk_keyserver_run(ks, 1000, false);
	assert_int_equal(recv(fd, buf, sizeof(buf), 0), -1);
	for (int sent = 1, tries = 0; sent < 900 && tries < 100000; tries++) {
		if (send(fd, req_new, sizeof(req_new), 0) == (ssize_t)sizeof(req_new))
			sent++;
		else
			cmk_keyserver_run(ks, 1000, true);
	}
	for (int i = 0; i < 2000; i++)
		cmk_keyserver_run(ks, 1000, true);
	cmk_keyserver_drop_keys(ks);
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		/* closed (with its unread requests: a reset) */
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			eof = true;
			break;
		}
		if (n < 0)
			break;
		got += (size_t)n;
	}
	print_message("# %zu bytes of answers out before the wipe, then %s\n", got,
		      eof ? "closed" : "nothing (still open)");
	assert_true(got > 0);
	assert_true(eof);
	close(fd);
	cmk_keyserver_close(&ks);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_known_request),
		cmocka_unit_test(every_truncation_and_extra_byte_refused),
		cmocka_unit_test(bad_headers_refused),
		cmocka_unit_test(non_canonical_contexts_refused),
		cmocka_unit_test(other_key_provider_refused),
		cmocka_unit_test(allow_list),
		cmocka_unit_test_setup_teardown(new_key_opens_with_wrapping_key_and_through_agent,
						setup, teardown),
		cmocka_unit_test_setup_teardown(retired_version_opens_unknown_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(loop_states_decide, setup, teardown),
		cmocka_unit_test(responses_round_trip_and_malformed_refused),
		cmocka_unit_test(resp_parse_bounds_long_refusal_itself),
		cmocka_unit_test(client_refuses_server_not_root),
		cmocka_unit_test(socket_file_dir_checked_live_kept_only_ours_removed),
		cmocka_unit_test_setup_teardown(drop_keys_closes_pending_answers_after_wipe,
						setup, teardown),
	};

	return cmocka_run_group_tests_name("keysock", tests, NULL, NULL);
}
