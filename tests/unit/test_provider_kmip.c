// SPDX-License-Identifier: GPL-2.0
/*
 * test_provider_kmip.c - the kmip provider without a KMIP server: request
 * messages, response parsing, error classification, settings, and a
 * server that is not there.
 * Oracles: requests and responses encoded by PyKMIP 0.10 (an independent
 * KMIP implementation), recorded as hex; the classes Documentation/kmip.rst
 * promises for each Result Reason and key State.  The real server is in
 * tests/kms/kmip.sh.
 * kmip_hang_*: a server that takes the connection and never answers TLS;
 * oracle: the message names the limit that ended the wait (the agent's
 * cancel, the check's deadline), not timeout_ms = 20000, which the wait
 * never reached (times are printed, not asserted).
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/deadline.h"
#include "kms/kmip/kmip.h"
#include "kms/provider.h"
#include "kms/kmip/provider_kmip.h"
#include "daemon/worker.h"

static size_t unhex(const char *h, unsigned char *out, size_t cap)
{
	size_t n = 0;
	unsigned int b;

	for (; h[0] && h[1]; h += 2) {
		assert_true(n < cap);
		assert_int_equal(sscanf(h, "%2x", &b), 1);
		out[n++] = (unsigned char)b;
	}
	return n;
}

/* PyKMIP: RequestMessage(1.4) Locate [Object Type = Symmetric Key, Name = "cmk-1"] */
static const char py_locate[] =
	"42007801000000d04200770100000038420069010000002042006a02000000040000000100000000"
	"42006b0200000004000000040000000042000d0200000004000000010000000042000f0100000088"
	"42005c050000000400000008000000004200790100000070420008010000002842000a070000000b"
	"4f626a6563742054797065000000000042000b0500000004000000020000000042000801000000"
	"3842000a07000000044e616d650000000042000b01000000204200550700000005636d6b2d310000"
	"0042005405000000040000000100000000";
/* PyKMIP: Decrypt uid "7", GCM/AES/tag 16, data 00..1f, IV 0*12, AAD "AAD", tag ab*16 */
static const char py_decrypt[] =
	"42007801000001104200770100000038420069010000002042006a02000000040000000100000000"
	"42006b0200000004000000040000000042000d0200000004000000010000000042000f01000000c8"
	"42005c0500000004000000200000000042007901000000b04200940700000001370000000000000"
	"042002b010000003042001105000000040000000900000000420028050000000400000003000000"
	"004200ce020000000400000010000000004200c20800000020000102030405060708090a0b0c0d0e"
	"0f101112131415161718191a1b1c1d1e1f42003d080000000c000000000000000000000000000000"
	"004200fe080000000341414400000000004200ff0800000010abababababababababababababababab";
/* PyKMIP: ResponseMessage, Decrypt success, uid "7", data 11*32 */
static const char py_decrypt_ok[] =
	"42007b01000000b842007a0100000048420069010000002042006a02000000040000000100000000"
	"42006b020000000400000004000000004200920900000008000000005f00000042000d0200000004"
	"000000010000000042000f010000006042005c0500000004000000200000000042007f0500000004"
	"0000000000000000" "42007c0100000038420094070000000137000000000000004200c208000000"
	"201111111111111111111111111111111111111111111111111111111111111111";
/* PyKMIP: Decrypt failed, Permission Denied, with a Result Message */
static const char py_denied[] =
	"42007b01000000c042007a0100000048420069010000002042006a02000000040000000100000000"
	"42006b020000000400000004000000004200920900000008000000005f00000042000d0200000004"
	"000000010000000042000f010000006842005c0500000004000000200000000042007f0500000004"
	"000000010000000042007e05000000040000000c0000000042007d070000002e5468652064656372"
	"797074696f6e206b6579206d75737420626520696e20746865204163746976652073746174650000";

static const struct cmk_kmip_version v14 = { 1, 4 };

static void requests_match_pykmip(void **state)
{
	unsigned char want[512], buf[512], data[32], iv[12] = { 0 }, tag[16];
	struct cmk_ttlv_enc w;
	size_t wn, len;

	(void)state;
	wn = unhex(py_locate, want, sizeof(want));
	cmk_ttlv_enc_init(&w, buf, sizeof(buf));
	cmk_kmip_req_locate(&w, v14, "cmk-1");
	assert_int_equal(cmk_ttlv_enc_finish(&w, &len), 0);
	assert_int_equal(len, wn);
	assert_memory_equal(buf, want, wn);

	for (int i = 0; i < 32; i++)
		data[i] = (unsigned char)i;
	memset(tag, 0xab, sizeof(tag));
	wn = unhex(py_decrypt, want, sizeof(want));
	cmk_ttlv_enc_init(&w, buf, sizeof(buf));
	cmk_kmip_req_decrypt(&w, v14, "7", data, 32, iv, 12,
			     (const unsigned char *)"AAD", 3, tag, 16);
	assert_int_equal(cmk_ttlv_enc_finish(&w, &len), 0);
	assert_int_equal(len, wn);
	assert_memory_equal(buf, want, wn);
}

static void request_too_large_is_refused(void **state)
{
	unsigned char buf[128], big[200] = { 0 };
	struct cmk_ttlv_enc w;
	size_t len;

	(void)state;
	cmk_ttlv_enc_init(&w, buf, sizeof(buf));
	cmk_kmip_req_encrypt(&w, v14, "1", big, sizeof(big), big, 12, big, 8, 16);
	assert_int_equal(cmk_ttlv_enc_finish(&w, &len), -EOVERFLOW);
}

static void responses_from_pykmip_parse(void **state)
{
	unsigned char b[512];
	size_t n;
	struct cmk_kmip_resp r;
	const unsigned char *pt;
	size_t ptn;

	(void)state;
	n = unhex(py_decrypt_ok, b, sizeof(b));
	assert_int_equal(cmk_kmip_parse_response(b, n, KMIP_OP_DECRYPT, &r), 0);
	assert_int_equal(r.version.major, 1);
	assert_int_equal(r.version.minor, 4);
	assert_int_equal(r.status, KMIP_STATUS_SUCCESS);
	assert_int_equal(cmk_kmip_decrypt_result(&r, &pt, &ptn), 0);
	assert_int_equal(ptn, 32);
	assert_int_equal(pt[0], 0x11);
	/* an answer for another operation is refused */
	assert_int_equal(cmk_kmip_parse_response(b, n, KMIP_OP_ENCRYPT, &r), -EPROTO);
	/* cut anywhere: refused */
	for (size_t cut = 0; cut < n; cut += 7)
		assert_int_equal(cmk_kmip_parse_response(b, cut, KMIP_OP_DECRYPT, &r), -EBADMSG);

	n = unhex(py_denied, b, sizeof(b));
	assert_int_equal(cmk_kmip_parse_response(b, n, KMIP_OP_DECRYPT, &r), 0);
	assert_int_equal(r.status, KMIP_STATUS_FAILED);
	assert_int_equal(r.reason, KMIP_RR_PERMISSION_DENIED);
	assert_string_equal(r.message, "The decryption key must be in the Active state");
	assert_false(r.has_payload);
	assert_int_equal(cmk_kmip_classify(r.status, r.reason), CMK_R_DENIED);
}

static void classification(void **state)
{
	static const struct { uint32_t status, reason; enum cmk_err_class cls; } t[] = {
		{ 0, 0, CMK_EC_NONE },
		{ 1, KMIP_RR_ITEM_NOT_FOUND, CMK_EC_DEFINITIVE },
		{ 1, KMIP_RR_PERMISSION_DENIED, CMK_EC_DEFINITIVE },
		{ 1, KMIP_RR_AUTH_NOT_SUCCESSFUL, CMK_EC_DEFINITIVE },
		{ 1, KMIP_RR_CRYPTOGRAPHIC_FAILURE, CMK_EC_DEFINITIVE },
		{ 1, KMIP_RR_WRONG_KEY_STATE, CMK_EC_DEFINITIVE },
		{ 1, KMIP_RR_OBJECT_ARCHIVED, CMK_EC_DEFINITIVE },
		{ 1, KMIP_RR_GENERAL_FAILURE, CMK_EC_TRANSIENT },
		{ 1, KMIP_RR_INTERNAL_SERVER_ERROR, CMK_EC_TRANSIENT },
		{ 1, 0x7777, CMK_EC_TRANSIENT },		/* unknown */
		{ 2, 0, CMK_EC_TRANSIENT },			/* pending */
		{ 1, KMIP_RR_INVALID_FIELD, CMK_EC_LOCAL },
		{ 1, KMIP_RR_OPERATION_NOT_SUPPORTED, CMK_EC_LOCAL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (cmk_reason_class(cmk_kmip_classify(t[i].status, t[i].reason)) != t[i].cls)
			fail_msg("status %u reason 0x%x: class %d", t[i].status,
				 t[i].reason, cmk_reason_class(cmk_kmip_classify(t[i].status, t[i].reason)));
	assert_int_equal(cmk_kmip_state_reason(KMIP_STATE_DEACTIVATED), CMK_R_REVOKED);
	assert_int_equal(cmk_kmip_state_reason(KMIP_STATE_COMPROMISED), CMK_R_REVOKED);
	assert_int_equal(cmk_kmip_state_reason(KMIP_STATE_DESTROYED), CMK_R_DESTROYED);
	assert_int_equal(cmk_kmip_state_reason(KMIP_STATE_PRE_ACTIVE), CMK_R_DISABLED);
	assert_int_equal(cmk_kmip_state_reason(KMIP_STATE_ACTIVE), CMK_R_DENIED);
	assert_string_equal(cmk_kmip_state_name(KMIP_STATE_DEACTIVATED), "Deactivated");
}

/* A self-signed certificate and key, written as PEM, for open(). */
static void make_cert(const char *cert, const char *key)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	FILE *f;

	assert_non_null(pk);
	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pk);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
	f = fopen(cert, "w");
	PEM_write_X509(f, x);
	fclose(f);
	f = fopen(key, "w");
	PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pk);
}

static int open_with(const char *server, const char *cert, const char *key,
		     struct cmk_provider **p, struct cmk_err *e)
{
	struct cmk_kv kv[4] = {
		{ "server", server, 1 }, { "client_cert", cert, 2 },
		{ "client_key", key, 3 }, { "ca_bundle", cert, 4 },
	};

	return cmk_provider_open("kmip", kv, server ? 4 : 0, p, e);
}

static void settings_checked(void **state)
{
	struct cmk_provider *p = NULL;
	struct cmk_err e;
	char cert[512], key[512];
	struct cmk_kv bad = { "timeout_ms", "5", 1 };

	(void)state;
	snprintf(cert, sizeof(cert), "%s", tu_path("c.pem"));
	snprintf(key, sizeof(key), "%s", tu_path("k.pem"));
	make_cert(cert, key);
	unsetenv("CMK_KMIP_SERVER");
	assert_int_equal(open_with(NULL, cert, key, &p, &e), -EINVAL);
	assert_contains(e.msg, "no server configured");
	assert_int_equal(open_with("h:0", cert, key, &p, &e), -EINVAL);
	assert_contains(e.msg, "is not host[:port]");
	assert_int_equal(open_with("::1", cert, key, &p, &e), -EINVAL);
	assert_int_equal(open_with("127.0.0.1:5696", cert, tu_path("none"), &p, &e), -ENOENT);
	assert_contains(e.msg, "client_key");
	assert_contains(e.msg, "No such file");
	tu_write_file(tu_path("junk.pem"), "junk\n", 5, 0600);
	assert_int_equal(open_with("127.0.0.1", tu_path("junk.pem"), key, &p, &e), -EINVAL);
	assert_contains(e.msg, "cannot load a PEM certificate");
	assert_int_equal(cmk_provider_open("kmip", &bad, 1, &p, &e), -ERANGE);
	assert_int_equal(open_with("[::1]:5696", cert, key, &p, &e), 0);
	cmk_provider_close(&p);
	assert_null(p);
}

/* Nothing listens: transient (the server may come back), with a hint. */
static void server_down_is_transient(void **state)
{
	struct cmk_provider *p = NULL;
	struct cmk_secret *kek = NULL;
	struct cmk_encctx ctx;
	struct cmk_err e;
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	unsigned char wrapped[60] = { 0 };
	char cert[512], key[512], server[64];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	/* a port that was free a moment ago, and is closed again */
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd);
	snprintf(server, sizeof(server), "127.0.0.1:%d", ntohs(a.sin_port));
	snprintf(cert, sizeof(cert), "%s", tu_path("c.pem"));
	snprintf(key, sizeof(key), "%s", tu_path("k.pem"));
	make_cert(cert, key);
	cmk_encctx_init(&ctx);
	assert_int_equal(open_with(server, cert, key, &p, &e), 0);
	assert_true(cmk_provider_unwrap(p, "cmk-1", wrapped, sizeof(wrapped), &ctx,
					&kek, NULL, &e) < 0);
	assert_null(kek);
	assert_int_equal(e.cls, CMK_EC_TRANSIENT);
	assert_int_equal(e.reason, CMK_R_NETWORK);
	assert_contains(e.msg, "is the KMIP server running?");
	/* a wrapped KEK too short to hold IV and tag: refused before any call */
	assert_int_equal(cmk_provider_unwrap(p, "cmk-1", wrapped, 28, &ctx, &kek,
					     NULL, &e), -EINVAL);
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_int_equal(cmk_provider_unwrap(p, "", wrapped, sizeof(wrapped), &ctx,
					     &kek, NULL, &e), -EINVAL);
	cmk_provider_close(&p);
}

/*
 * The Encrypt IV comes from getrandom(), not from OpenSSL's DRBG, which two
 * clones of a VM snapshot share (a repeated IV under one AES-GCM key gives
 * the key's GHASH key away).  Oracle: the wrapped getrandom() counts the
 * call (testutil.h); the IV is drawn before the server is reached, so a
 * server that is down is enough.
 */
static void kmip_wrap_iv_from_getrandom_vm_clone(void **state)
{
	struct cmk_provider *p = NULL;
	struct cmk_secret *plain = NULL;
	struct cmk_encctx ctx;
	struct cmk_err e;
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	unsigned char *wrapped = NULL;
	size_t wlen = 0;
	char cert[512], key[512], server[64];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd);
	snprintf(server, sizeof(server), "127.0.0.1:%d", ntohs(a.sin_port));
	snprintf(cert, sizeof(cert), "%s", tu_path("c.pem"));
	snprintf(key, sizeof(key), "%s", tu_path("k.pem"));
	make_cert(cert, key);
	cmk_encctx_init(&ctx);
	assert_int_equal(open_with(server, cert, key, &p, &e), 0);
	assert_int_equal(cmk_secret_new(&plain, 32, &e), 0);
	tu_getrandom_calls = 0;
	assert_true(cmk_provider_wrap(p, "cmk-1", plain, &ctx, &wrapped, &wlen,
				      NULL, &e) < 0);
	assert_null(wrapped);
	assert_int_equal(e.reason, CMK_R_NETWORK);
	assert_true(tu_getrandom_calls >= 1);
	cmk_secret_free(&plain);
	cmk_provider_close(&p);
}

/*
 * A server that takes the connection and never says a word (the kernel
 * completes the TCP handshake from the listen backlog; nobody accepts):
 * the TLS handshake waits for a ServerHello that does not come.
 */
static int silent_server(char *server, size_t len)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	snprintf(server, len, "127.0.0.1:%d", ntohs(a.sin_port));
	return fd;
}

static struct cmk_provider *open_slow(const char *server)
{
	struct cmk_kv kv[] = {
		{ "server", server, 1 }, { "client_cert", NULL, 2 },
		{ "client_key", NULL, 3 }, { "ca_bundle", NULL, 4 },
		{ "timeout_ms", "20000", 5 }, { "max_attempts", "1", 6 },
	};
	static char cert[512], key[512];
	struct cmk_provider *p = NULL;
	struct cmk_err e;

	snprintf(cert, sizeof(cert), "%s", tu_path("c.pem"));
	snprintf(key, sizeof(key), "%s", tu_path("k.pem"));
	make_cert(cert, key);
	kv[1].value = cert;
	kv[2].value = key;
	kv[3].value = cert;
	if (cmk_provider_open("kmip", kv, 6, &p, &e))
		fail_msg("open: %s", e.msg);
	return p;
}

struct slow_call {
	struct cmk_provider *p;
	uint64_t deadline_in_ms;	/* 0: none */
	int ret;
	struct cmk_err e;
	long ms;
};

static void *slow_unwrap(void *arg)
{
	struct slow_call *c = arg;
	unsigned char wrapped[60] = { 0 };
	struct cmk_secret *kek = NULL;
	struct cmk_encctx ctx;
	uint64_t t0 = cmk_deadline_now_ms();

	cmk_encctx_init(&ctx);
	if (c->deadline_in_ms)
		cmk_deadline_set(t0 + c->deadline_in_ms);
	c->ret = cmk_provider_unwrap(c->p, "cmk-1", wrapped, sizeof(wrapped), &ctx,
				     &kek, NULL, &c->e);
	cmk_deadline_set(0);
	c->ms = (long)(cmk_deadline_now_ms() - t0);
	cmk_secret_free(&kek);
	return NULL;
}

/*
 * The agent stops while the worker waits in a TLS handshake: the wait
 * ends on cmk_deadline_cancel_all(), not when timeout_ms (20 s) runs out,
 * and the message says it was cancelled, not that the server was slow.
 */
static void kmip_hang_cancel_ends_tls_wait(void **state)
{
	struct slow_call c = { 0 };
	char server[64];
	int lfd = silent_server(server, sizeof(server));
	pthread_t t;

	(void)state;
	c.p = open_slow(server);
	assert_int_equal(pthread_create(&t, NULL, slow_unwrap, &c), 0);
	usleep(300 * 1000);
	cmk_deadline_cancel_all(true);
	pthread_join(t, NULL);
	cmk_deadline_cancel_all(false);
	print_message("# cancelled after 300 ms: the call returned after %ld ms: %s\n",
		      c.ms, c.e.msg);
	assert_true(c.ret < 0);
	assert_int_equal(c.e.cls, CMK_EC_TRANSIENT);
	assert_int_equal(c.e.reason, CMK_R_TIMEOUT);
	assert_contains(c.e.msg, "cancelled");
	assert_null(strstr(c.e.msg, "timeout_ms = 20000"));
	cmk_provider_close(&c.p);
	close(lfd);
}

/*
 * The check's own deadline (check_timeout_ms) cuts the request short: the
 * message names it, not the provider's timeout_ms the request never
 * reached.
 */
static void kmip_hang_check_deadline_named(void **state)
{
	struct slow_call c = { .deadline_in_ms = 400 };
	char server[64];
	int lfd = silent_server(server, sizeof(server));

	(void)state;
	c.p = open_slow(server);
	slow_unwrap(&c);
	print_message("# check deadline 400 ms: the call returned after %ld ms: %s\n",
		      c.ms, c.e.msg);
	assert_true(c.ret < 0);
	assert_int_equal(c.e.reason, CMK_R_TIMEOUT);
	assert_contains(c.e.msg, "check_timeout_ms");
	assert_null(strstr(c.e.msg, "timeout_ms = 20000"));
	cmk_provider_close(&c.p);
	close(lfd);
}

/* A host name (not a literal address) is resolved, off the thread. */
static void kmip_hang_host_name_resolved(void **state)
{
	struct slow_call c = { 0 };
	char server[80];
	int lfd = silent_server(server, sizeof(server));

	(void)state;
	/* "127.0.0.1:PORT" -> "localhost:PORT" (/etc/hosts, no DNS) */
	{
		char tmp[80];

		snprintf(tmp, sizeof(tmp), "localhost%s", strchr(server, ':'));
		snprintf(server, sizeof(server), "%s", tmp);
	}
	c.deadline_in_ms = 400;
	c.p = open_slow(server);
	slow_unwrap(&c);
	print_message("# %s: %s\n", server, c.e.msg);
	assert_true(c.ret < 0);
	/* it got as far as the TLS handshake (the silent server) */
	assert_int_equal(c.e.reason, CMK_R_TIMEOUT);
	assert_contains(c.e.msg, "handshake");
	cmk_provider_close(&c.p);
	close(lfd);
}

struct kmip_job {
	struct cmk_provider *p;
	int ret;
	struct cmk_err e;
};

static void kmip_unwrap_job(void *arg)
{
	struct kmip_job *j = arg;
	unsigned char wrapped[60] = { 0 };
	struct cmk_secret *kek = NULL;
	struct cmk_encctx ctx;

	cmk_encctx_init(&ctx);
	j->ret = cmk_provider_unwrap(j->p, "cmk-1", wrapped, sizeof(wrapped), &ctx,
				     &kek, NULL, &j->e);
	cmk_secret_free(&kek);
}

/*
 * A server that takes the connection and never answers the TLS handshake,
 * with timeout_ms 60 s and a 60 s job deadline: the agent cancels the job
 * (an event made it stale, worker.h) and the wait ends within a couple of
 * seconds, not at timeout_ms.  Oracle: deadline.h (a cancelled job's waits
 * end within a second) and cmk_worker_cancel().
 */
static void kmip_hang_cancel_ends_a_silent_server_wait(void **state)
{
	struct kmip_job j = { 0 };
	struct cmk_worker *w;
	struct cmk_err e;
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	char cert[512], key[512], server[64];
	struct cmk_kv kv[5];
	struct pollfd pfd;
	uint64_t t0, took;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);	/* accepts in the kernel, says nothing */
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	snprintf(server, sizeof(server), "127.0.0.1:%d", ntohs(a.sin_port));
	snprintf(cert, sizeof(cert), "%s", tu_path("c.pem"));
	snprintf(key, sizeof(key), "%s", tu_path("k.pem"));
	make_cert(cert, key);
	kv[0] = (struct cmk_kv){ "server", server, 1 };
	kv[1] = (struct cmk_kv){ "client_cert", cert, 2 };
	kv[2] = (struct cmk_kv){ "client_key", key, 3 };
	kv[3] = (struct cmk_kv){ "ca_bundle", cert, 4 };
	kv[4] = (struct cmk_kv){ "timeout_ms", "60000", 5 };
	assert_int_equal(cmk_provider_open("kmip", kv, 5, &j.p, &e), 0);
	assert_int_equal(cmk_worker_start(&w, &e), 0);
	assert_int_equal(cmk_worker_submit(w, kmip_unwrap_job, &j,
					   cmk_deadline_now_ms() + 60000), 0);
	pfd = (struct pollfd){ .fd = cmk_worker_fd(w), .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 1500), 0);	/* it waits */
	t0 = cmk_deadline_now_ms();
	cmk_worker_cancel(w);
	assert_int_equal(poll(&pfd, 1, 20000), 1);
	took = cmk_deadline_now_ms() - t0;
	assert_true(cmk_worker_done(w));
	print_message("cancelled KMIP wait ended after %llu ms: %s\n", (unsigned long long)took,
		      j.e.msg);
	assert_true(took < 5000);
	assert_true(j.ret < 0);
	assert_int_equal(j.e.cls, CMK_EC_TRANSIENT);
	/* the job was cancelled, the agent is not stopping */
	assert_contains(j.e.msg, "no longer wanted");
	assert_true(cmk_worker_stop(&w, 2000));
	cmk_provider_close(&j.p);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(requests_match_pykmip),
		cmocka_unit_test(request_too_large_is_refused),
		cmocka_unit_test(responses_from_pykmip_parse),
		cmocka_unit_test(classification),
		cmocka_unit_test(kmip_wrap_iv_from_getrandom_vm_clone),
		cmocka_unit_test_setup_teardown(settings_checked, tu_setup_tmpdir,
						tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(server_down_is_transient,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(kmip_hang_cancel_ends_tls_wait,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(kmip_hang_check_deadline_named,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(kmip_hang_host_name_resolved,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(kmip_hang_cancel_ends_a_silent_server_wait,
						tu_setup_tmpdir, tu_teardown_tmpdir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
