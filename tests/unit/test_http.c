// SPDX-License-Identifier: GPL-2.0
/*
 * test_http.c - the HTTP wrapper's pure parts: backoff bounds (capped,
 * exponential, jittered, never zero), response header lookup, bad header
 * lines refused before anything is sent, and the calling thread's
 * deadline bounding a whole call against a peer that accepts and never
 * answers.  Oracle: the documented policy in http.h.  Retries against a
 * live peer are in tests/kms.
 *
 * Two tests talk to a one-shot HTTP peer on 127.0.0.1 (a thread here):
 * libcurl's own buffers, which held a bearer token, a request body and a
 * response body, are all zero when freed (testutil's free wrapper sees
 * them once libcurl allocates through cleanse_alloc.h), over http and
 * over https (a TLS peer with a self-signed certificate: the path where
 * http.c sets SSL_OP_CLEANSE_PLAINTEXT); and the plain http:// rule
 * (loopback for KMS endpoints, also link-local for metadata).
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/deadline.h"
#include "kms/http.h"
#include "core/random.h"

/* Reseeds of OpenSSL's DRBGs (linked with --wrap, agent/Makefile). */
static atomic_int reseeds;
int __real_cmk_random_reseed_openssl(const char *what, struct cmk_err *e);
int __wrap_cmk_random_reseed_openssl(const char *what, struct cmk_err *e);
int __wrap_cmk_random_reseed_openssl(const char *what, struct cmk_err *e)
{
	reseeds++;
	return __real_cmk_random_reseed_openssl(what, e);
}

static void http_backoff_is_capped_exponential_with_jitter(void **state)
{
	struct cmk_http_opts o = { .backoff_base_ms = 100, .backoff_cap_ms = 1000 };
	long seen_lo = 1L << 30, seen_hi = 0;

	(void)state;
	for (int attempt = 1; attempt <= 12; attempt++) {
		long ceil = 100L << (attempt - 1 > 10 ? 10 : attempt - 1);

		if (ceil > 1000)
			ceil = 1000;
		for (int i = 0; i < 200; i++) {
			long d = cmk_http_backoff_ms(&o, attempt);

			assert_true(d >= ceil / 2 && d <= ceil);
			if (attempt == 12) {
				seen_lo = d < seen_lo ? d : seen_lo;
				seen_hi = d > seen_hi ? d : seen_hi;
			}
		}
	}
	/* jitter: 200 draws in [500, 1000] are not all the same */
	assert_true(seen_hi > seen_lo);
}

static void http_response_header_lookup(void **state)
{
	char hdrs[] = "HTTP/1.1 400 Bad Request\r\n"
		      "Content-Type: application/x-amz-json-1.1\r\n"
		      "x-amzn-RequestId:  6d1a-44  \r\n"
		      "X-Amzn-ErrorType: ThrottlingException:http://x/\r\n\r\n";
	struct cmk_http_response r = { .hdrs = hdrs, .hdrs_len = sizeof(hdrs) - 1 };
	char b[64], tiny[4];

	(void)state;
	assert_string_equal(cmk_http_header(&r, "X-AMZN-REQUESTID", b, sizeof(b)), "6d1a-44");
	assert_string_equal(cmk_http_header(&r, "x-amzn-errortype", b, sizeof(b)),
			    "ThrottlingException:http://x/");
	assert_null(cmk_http_header(&r, "x-amzn", b, sizeof(b)));
	assert_null(cmk_http_header(&r, "Missing", b, sizeof(b)));
	assert_null(cmk_http_header(&r, "Content-Type", tiny, sizeof(tiny)));
}

static void http_header_injection_refused(void **state)
{
	struct cmk_nv h[] = { { "X-A", "ok\r\nX-Injected: 1" } };
	struct cmk_http_request req = { "GET", "http://127.0.0.1:1/", h, 1, NULL, 0 };
	struct cmk_http_opts o = { 0 };
	struct cmk_http_response r;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_http_do(&o, &req, NULL, NULL, &r, &e), -EINVAL);
	assert_contains(e.msg, "bad name or value");
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_null(r.body);
}

static void http_bad_url_is_local_not_transient(void **state)
{
	struct cmk_http_request req = { "GET", "gopher://127.0.0.1/", NULL, 0, NULL, 0 };
	struct cmk_http_opts o = { 0 };
	struct cmk_http_response r;
	struct cmk_err e;

	(void)state;
	assert_true(cmk_http_do(&o, &req, NULL, NULL, &r, &e) < 0);
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_int_equal(r.attempts, 0);
}

/* ---- a one-shot HTTP/1.1 peer on 127.0.0.1 (stack memory only) ---------- */

struct peer {
	int lfd;
	int port;
	const char *answer;
	char got[8192];
	size_t got_len;
};

static void *peer_serve(void *arg)
{
	struct peer *p = arg;
	int fd = accept(p->lfd, NULL, NULL);
	size_t want = 0;

	if (fd < 0)
		return NULL;
	/* the request head, then Content-Length bytes of body */
	while (p->got_len < sizeof(p->got) - 1) {
		ssize_t n = read(fd, p->got + p->got_len, sizeof(p->got) - 1 - p->got_len);
		char *end, *cl;

		if (n <= 0)
			break;
		p->got_len += (size_t)n;
		p->got[p->got_len] = '\0';
		end = strstr(p->got, "\r\n\r\n");
		if (!end)
			continue;
		cl = strcasestr(p->got, "\r\nContent-Length:");
		want = (size_t)(end + 4 - p->got) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
		if (p->got_len >= want)
			break;
	}
	if (write(fd, p->answer, strlen(p->answer)) < 0)
		p->got_len = 0;
	close(fd);
	return NULL;
}

static void peer_listen(struct peer *p, const char *answer)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	memset(p, 0, sizeof(*p));
	p->answer = answer;
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(p->lfd >= 0);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(p->lfd, 4), 0);
	assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&a, &al), 0);
	p->port = ntohs(a.sin_port);
}

static void peer_start(struct peer *p, const char *answer, pthread_t *t)
{
	peer_listen(p, answer);
	assert_int_equal(pthread_create(t, NULL, peer_serve, p), 0);
}

static void peer_stop(struct peer *p, pthread_t t)
{
	pthread_join(t, NULL);
	close(p->lfd);
}

/*
 * Oracle: every block freed while the request runs and its answer is
 * freed - libcurl's request head (Authorization: Bearer ...), its receive
 * buffer (the answer with a KEK-like value and a token header) and our
 * own buffers - is all zero at free time, and libcurl's blocks really
 * came through the wrapper (dozens of them, not just our own few).
 */
static void http_cleanse_curl_buffers_wiped_on_free(void **state)
{
	static const char rbody[] = "{\"Plaintext\":\"a2VrLXNlY3JldC1lOTAzYWQyYmI0NmM3ZjE4\"}\n";
	char answer[512];
	struct cmk_nv h[] = { { "Authorization", "Bearer tok-secret-8c2d41aa97" } };
	const char body[] = "{\"CiphertextBlob\":\"body-secret-33e1\"}";
	struct cmk_http_request req = { "POST", NULL, h, 1, body, sizeof(body) - 1 };
	struct cmk_http_opts o = { .max_attempts = 1 };
	struct cmk_http_response r;
	struct cmk_err e;
	char url[64];
	struct peer p;
	pthread_t t;
	int ret;

	(void)state;
	snprintf(answer, sizeof(answer),
		 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		 "X-Token: hdr-secret-5b1f0e7c\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n%s", sizeof(rbody) - 1, rbody);
	peer_start(&p, answer, &t);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", p.port);
	req.url = url;
	tu_free_count = 0;
	tu_free_nonzero = 0;
	tu_free_inspect = true;
	ret = cmk_http_do(&o, &req, NULL, NULL, &r, &e);
	if (!ret) {
		assert_int_equal(r.status, 200);
		assert_contains(r.body, "a2VrLXNlY3JldC1lOTAzYWQyYmI0NmM3ZjE4");
		cmk_http_response_free(&r);
	}
	tu_free_inspect = false;
	peer_stop(&p, t);
	if (ret)
		fail_msg("request failed: %s", e.msg);
	/* the peer saw the secrets, so libcurl did hold them */
	assert_contains(p.got, "Authorization: Bearer tok-secret-8c2d41aa97");
	assert_contains(p.got, "body-secret-33e1");
	print_message("# %d blocks freed during the call, %d not wiped\n",
		      (int)tu_free_count, (int)tu_free_nonzero);
	assert_true(tu_free_count >= 20);
	assert_int_equal(tu_free_nonzero, 0);
}

/* ---- the same over https: a one-shot TLS peer with a self-signed cert ---- */

struct tls_peer {
	struct peer p;
	SSL_CTX *ctx;
};

/* A P-256 certificate for IP 127.0.0.1, written as PEM to @cert. */
static EVP_PKEY *make_ip_cert(const char *cert, X509 **out)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	FILE *f;

	assert_non_null(pk);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pk);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"127.0.0.1", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
	f = fopen(cert, "w");
	assert_non_null(f);
	PEM_write_X509(f, x);
	fclose(f);
	*out = x;
	return pk;
}

static void *tls_peer_serve(void *arg)
{
	struct tls_peer *t = arg;
	struct peer *p = &t->p;
	int fd = accept(p->lfd, NULL, NULL);
	size_t want = 0;
	SSL *ssl;

	if (fd < 0)
		return NULL;
	ssl = SSL_new(t->ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1)
		goto out;
	while (p->got_len < sizeof(p->got) - 1) {
		int n = SSL_read(ssl, p->got + p->got_len, (int)(sizeof(p->got) - 1 - p->got_len));
		char *end, *cl;

		if (n <= 0)
			break;
		p->got_len += (size_t)n;
		p->got[p->got_len] = '\0';
		end = strstr(p->got, "\r\n\r\n");
		if (!end)
			continue;
		cl = strcasestr(p->got, "\r\nContent-Length:");
		want = (size_t)(end + 4 - p->got) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
		if (p->got_len >= want)
			break;
	}
	SSL_write(ssl, p->answer, (int)strlen(p->answer));
	SSL_shutdown(ssl);
out:
	SSL_free(ssl);
	close(fd);
	return NULL;
}

/*
 * Oracle: as http_cleanse_curl_buffers_wiped_on_free, over TLS: the
 * request and the answer went through libcurl's TLS filter and OpenSSL
 * (whose contexts http.c sets SSL_OP_CLEANSE_PLAINTEXT on), and every
 * block libcurl freed was zero; the peer saw the secrets, so they were
 * sent.  (OpenSSL's own record buffers are freed inside libcrypto, out of
 * the free wrapper's sight: the memory scans of tests/kms cover those.)
 */
static void http_cleanse_https_buffers_wiped_on_free(void **state)
{
	static const char rbody[] = "{\"Plaintext\":\"a2VrLXNlY3JldC1odHRwcy0wMWYzYmE5\"}\n";
	char answer[512], url[64], cert[512];
	struct cmk_nv h[] = { { "Authorization", "Bearer tok-secret-tls-77e0a1" } };
	const char body[] = "{\"CiphertextBlob\":\"body-secret-tls-4c19\"}";
	struct cmk_http_request req = { "POST", NULL, h, 1, body, sizeof(body) - 1 };
	struct cmk_http_opts o = { .max_attempts = 1 };
	struct cmk_http_response r;
	struct tls_peer t;
	struct cmk_err e;
	pthread_t th;
	EVP_PKEY *pk;
	X509 *x;
	int ret;

	(void)state;
	snprintf(cert, sizeof(cert), "%s", tu_path("peer.pem"));
	pk = make_ip_cert(cert, &x);
	snprintf(answer, sizeof(answer),
		 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		 sizeof(rbody) - 1, rbody);
	peer_listen(&t.p, answer);
	t.ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(t.ctx);
	assert_int_equal(SSL_CTX_use_certificate(t.ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(t.ctx, pk), 1);
	assert_int_equal(pthread_create(&th, NULL, tls_peer_serve, &t), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", t.p.port);
	req.url = url;
	o.ca_bundle = cert;
	tu_free_count = 0;
	tu_free_nonzero = 0;
	tu_free_inspect = true;
	ret = cmk_http_do(&o, &req, NULL, NULL, &r, &e);
	if (!ret) {
		assert_int_equal(r.status, 200);
		assert_contains(r.body, "a2VrLXNlY3JldC1odHRwcy0wMWYzYmE5");
		cmk_http_response_free(&r);
	}
	tu_free_inspect = false;
	peer_stop(&t.p, th);
	SSL_CTX_free(t.ctx);
	X509_free(x);
	EVP_PKEY_free(pk);
	if (ret)
		fail_msg("request failed: %s", e.msg);
	assert_contains(t.p.got, "Authorization: Bearer tok-secret-tls-77e0a1");
	assert_contains(t.p.got, "body-secret-tls-4c19");
	print_message("# https: %d blocks freed during the call, %d not wiped\n",
		      (int)tu_free_count, (int)tu_free_nonzero);
	assert_true(tu_free_count >= 20);
	assert_int_equal(tu_free_nonzero, 0);
}

/* Oracle: the rule in http.h, address by address. */
static void http_adversarial_plain_url_only_loopback(void **state)
{
	static const struct {
		const char *url;
		enum cmk_url_use use;
		bool ok;
	} cases[] = {
		{ "https://kms.eu-central-1.amazonaws.com", CMK_URL_KMS, true },
		{ "https://10.0.2.100:8080", CMK_URL_KMS, true },
		{ "http://127.0.0.1:4566", CMK_URL_KMS, true },
		{ "http://127.9.8.7/", CMK_URL_KMS, true },
		{ "http://[::1]:8080/", CMK_URL_KMS, true },
		{ "http://localhost:8080", CMK_URL_KMS, true },
		{ "http://10.0.2.100:8080", CMK_URL_KMS, false },
		{ "http://kms.eu-central-1.amazonaws.com", CMK_URL_KMS, false },
		{ "http://169.254.169.254", CMK_URL_KMS, false },
		{ "http://[fe80::1]/", CMK_URL_KMS, false },
		{ "http://localhost.evil.example/", CMK_URL_KMS, false },
		{ "http://127.0.0.1.nip.io/", CMK_URL_KMS, false },
		{ "http://[::ffff:10.0.0.1]/", CMK_URL_KMS, false },
		{ "http://169.254.169.254", CMK_URL_METADATA, true },
		{ "http://[fd00:ec2::254]", CMK_URL_METADATA, true },
		{ "http://[fe80::a9fe:a9fe]/", CMK_URL_METADATA, true },
		{ "http://metadata.google.internal", CMK_URL_METADATA, true },
		{ "http://127.0.0.1:8081", CMK_URL_METADATA, true },
		{ "http://10.0.2.100:8081", CMK_URL_METADATA, false },
		{ "http://metadata.evil.example", CMK_URL_METADATA, false },
		{ "http://[fd00:ec2::253]", CMK_URL_METADATA, false },
		{ "ftp://127.0.0.1/", CMK_URL_KMS, false },
		{ "not a url", CMK_URL_KMS, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cmk_err e;
		int ret = cmk_http_url_check("test", "endpoint", cases[i].url,
					     cases[i].use, &e);

		if ((ret == 0) != cases[i].ok)
			fail_msg("%s (%s): expected %s, got %d: %s", cases[i].url,
				 cases[i].use == CMK_URL_KMS ? "kms" : "metadata",
				 cases[i].ok ? "allowed" : "refused", ret, e.msg);
		if (ret) {
			assert_int_equal(ret, -EINVAL);
			assert_int_equal(e.cls, CMK_EC_LOCAL);
		}
	}
}

/*
 * Oracle: the request to a non-loopback http:// URL never leaves (the
 * address is a TEST-NET one that nothing answers on); metadata requests
 * (no_proxy) may go to link-local but not elsewhere.
 */
static void http_adversarial_plain_remote_refused_before_sending(void **state)
{
	struct cmk_http_request req = { "GET", "http://192.0.2.7:8080/", NULL, 0, NULL, 0 };
	struct cmk_http_opts o = { .max_attempts = 1, .connect_timeout_ms = 200 };
	struct cmk_http_response r;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_http_do(&o, &req, NULL, NULL, &r, &e), -EINVAL);
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_contains(e.msg, "only goes to this machine's loopback");
	assert_int_equal(r.attempts, 0);
	o.no_proxy = true;
	assert_int_equal(cmk_http_do(&o, &req, NULL, NULL, &r, &e), -EINVAL);
	assert_contains(e.msg, "link-local");
}

/* An IPv4 address of this machine that is not loopback, or false. */
static bool local_non_loopback(char *buf, size_t len)
{
	struct ifaddrs *ifs, *i;
	bool found = false;

	if (getifaddrs(&ifs))
		return false;
	for (i = ifs; i && !found; i = i->ifa_next) {
		const struct sockaddr_in *a = (const void *)i->ifa_addr;

		if (a && a->sin_family == AF_INET &&
		    (ntohl(a->sin_addr.s_addr) >> 24) != 127)
			found = inet_ntop(AF_INET, &a->sin_addr, buf, (socklen_t)len) != NULL;
	}
	freeifaddrs(ifs);
	return found;
}

/*
 * Oracle: a plain http:// request to a loopback peer, with http_proxy in
 * the environment naming a proxy on a non-loopback address (this machine's
 * own, so the test needs no network), is refused once the proxy's address
 * is known, and the proxy receives not one byte of it.
 */
static void http_adversarial_plain_via_remote_proxy_refused(void **state)
{
	struct cmk_nv h[] = { { "Authorization", "Bearer tok-secret-proxy" } };
	struct cmk_http_request req = { "GET", "http://127.0.0.1:9/", h, 1, NULL, 0 };
	struct cmk_http_opts o = { .max_attempts = 1, .connect_timeout_ms = 2000 };
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct cmk_http_response r;
	socklen_t al = sizeof(a);
	char ip[INET_ADDRSTRLEN], proxy[64], got[256];
	struct pollfd pfd;
	struct cmk_err e;
	int lfd, c, ret;
	ssize_t n = 0;

	(void)state;
	if (!local_non_loopback(ip, sizeof(ip)))
		skip();
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
	snprintf(proxy, sizeof(proxy), "http://%s:%d", ip, ntohs(a.sin_port));
	setenv("http_proxy", proxy, 1);
	unsetenv("no_proxy");
	unsetenv("NO_PROXY");
	ret = cmk_http_do(&o, &req, NULL, NULL, &r, &e);
	unsetenv("http_proxy");
	assert_int_equal(ret, -EINVAL);
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_contains(e.msg, "not allowed");
	/* the cause is named: the variable, never its value */
	assert_contains(e.msg, "$http_proxy");
	assert_null(strstr(e.msg, proxy));
	/* the proxy was connected to, and told nothing */
	c = accept(lfd, NULL, NULL);
	if (c >= 0) {
		pfd = (struct pollfd){ .fd = c, .events = POLLIN };
		if (poll(&pfd, 1, 500) == 1)
			n = read(c, got, sizeof(got));
		close(c);
	}
	close(lfd);
	assert_true(n <= 0);
}

/*
 * A peer that accepts connections and never answers: a listening socket
 * nobody accept()s from (the kernel completes the handshake, the request
 * is queued, no answer comes).  Fills @url.
 */
static int silent_peer(char *url, size_t n)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(url, n, "http://127.0.0.1:%u/", ntohs(sa.sin_port));
	return fd;
}

/*
 * 3 attempts of 10 s each would take 30 s; the thread's deadline (400 ms)
 * ends the whole call, as a transient timeout.
 */
static void http_hang_deadline_bounds_every_attempt(void **state)
{
	struct cmk_http_opts o = { .timeout_ms = 10000, .max_attempts = 3 };
	struct cmk_http_request req = { "POST", NULL, NULL, 0, "{}", 2 };
	struct cmk_http_response r;
	struct cmk_err e;
	char url[64];
	uint64_t t0, took;
	int fd = silent_peer(url, sizeof(url));

	(void)state;
	req.url = url;
	t0 = cmk_deadline_now_ms();
	cmk_deadline_set(t0 + 400);
	assert_true(cmk_http_do(&o, &req, NULL, NULL, &r, &e) < 0);
	took = cmk_deadline_now_ms() - t0;
	cmk_deadline_set(0);
	close(fd);
	print_message("silent peer, 3 x 10 s attempts, 400 ms deadline: %llu ms\n",
		      (unsigned long long)took);
	assert_true(took < 3000);
	assert_int_equal(e.cls, CMK_EC_TRANSIENT);
	assert_int_equal(e.reason, CMK_R_TIMEOUT);
	assert_null(r.body);
}

/* A deadline already passed: no attempt at all. */
static void http_hang_deadline_passed_no_attempt(void **state)
{
	struct cmk_http_request req = { "GET", "http://127.0.0.1:1/", NULL, 0, NULL, 0 };
	struct cmk_http_opts o = { 0 };
	struct cmk_http_response r;
	struct cmk_err e;

	(void)state;
	cmk_deadline_set(cmk_deadline_now_ms() - 1);
	assert_true(cmk_http_do(&o, &req, NULL, NULL, &r, &e) < 0);
	cmk_deadline_set(0);
	assert_int_equal(e.cls, CMK_EC_TRANSIENT);
	assert_int_equal(e.reason, CMK_R_TIMEOUT);
	assert_contains(e.msg, "deadline passed before attempt 1");
}

static atomic_bool cancel_flag;

static void *cancel_later(void *arg)
{
	(void)arg;
	usleep(200000);
	atomic_store(&cancel_flag, true);
	return NULL;
}

/*
 * A job an event made stale is cancelled while its request hangs (review
 * r2 nit): the error names the cancel, not a deadline that did not pass.
 * Oracle: deadline.h (cmk_deadline_cancel_reason()); a transient timeout.
 */
static void http_hang_cancel_is_named_in_the_error(void **state)
{
	struct cmk_http_opts o = { .timeout_ms = 10000, .max_attempts = 3 };
	struct cmk_http_request req = { "POST", NULL, NULL, 0, "{}", 2 };
	struct cmk_http_response r;
	struct cmk_err e;
	char url[64];
	pthread_t t;
	int fd = silent_peer(url, sizeof(url));

	(void)state;
	req.url = url;
	atomic_store(&cancel_flag, false);
	cmk_deadline_set(cmk_deadline_now_ms() + 20000);
	cmk_deadline_watch(&cancel_flag);
	assert_int_equal(pthread_create(&t, NULL, cancel_later, NULL), 0);
	assert_true(cmk_http_do(&o, &req, NULL, NULL, &r, &e) < 0);
	pthread_join(t, NULL);
	cmk_deadline_watch(NULL);
	cmk_deadline_set(0);
	close(fd);
	assert_int_equal(e.reason, CMK_R_TIMEOUT);
	assert_contains(e.msg, "no longer wanted");
	assert_null(strstr(e.msg, "before the check's deadline"));
}

/* ---- one TLS connection across checks -------------------------------------- */

/*
 * A keep-alive TLS peer: accepts connections one after the other and
 * answers every request on each (HTTP/1.1, Content-Length) until @want
 * requests were answered; counts the connections it accepted.
 */
struct ka_peer {
	struct tls_peer t;
	int want;
	int served;
	int accepted;
	bool notified[16];	/* connection i ended with a close_notify */
};

/* One request head + body from @ssl into @buf; false at EOF. */
static bool ka_read_request(SSL *ssl, char *buf, size_t cap)
{
	size_t len = 0, want = 0;

	while (len < cap - 1) {
		int n = SSL_read(ssl, buf + len, (int)(cap - 1 - len));
		char *end, *cl;

		if (n <= 0)
			return false;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		cl = strcasestr(buf, "\r\nContent-Length:");
		want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
		if (len >= want)
			return true;
	}
	return false;
}

static void *ka_peer_serve(void *arg)
{
	struct ka_peer *k = arg;
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				     "Content-Length: 2\r\n\r\n{}";

	while (k->served < k->want) {
		int fd = accept(k->t.p.lfd, NULL, NULL);
		char buf[4096];
		SSL *ssl;

		if (fd < 0)
			return NULL;
		k->accepted++;
		ssl = SSL_new(k->t.ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) == 1) {
			while (k->served < k->want && ka_read_request(ssl, buf, sizeof(buf))) {
				SSL_write(ssl, answer, (int)sizeof(answer) - 1);
				k->served++;
			}
			/* Wait for the client's close, to see how it closed. */
			if (k->served == k->want)
				SSL_read(ssl, buf, 1);
		}
		if (k->accepted <= (int)(sizeof(k->notified) / sizeof(k->notified[0])))
			k->notified[k->accepted - 1] =
				SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN;
		SSL_shutdown(ssl);
		SSL_free(ssl);
		close(fd);
	}
	return NULL;
}

/*
 * N periodic checks over one TLS connection: the peer accepts one
 * connection for 5 requests, and libcurl reports a new connection for the
 * first only (CURLINFO_NUM_CONNECTS).  Dropping the kept connections (a
 * provider reset: revocation, wipe, VM fork) makes the next request open
 * a new one.  Oracle: the peer's accept count.
 *
 * http_tls_reseed_per_handshake: each new TLS connection reseeds
 * OpenSSL's DRBGs right before its handshake (on_ssl_ctx: the client
 * random and key share fresh after a VM clone), a reused one does not.
 * Oracle: cmk_random_reseed_openssl() calls during each request
 * (wrapped, agent/Makefile): 1 for a new connection, 0 otherwise.
 */
static void http_reuse_one_tls_connection_for_n_checks(void **state)
{
	struct cmk_http_request req = { "POST", NULL, NULL, 0, "{}", 2 };
	struct cmk_http_opts o = { .max_attempts = 1 };
	char url[64], cert[512];
	struct cmk_http_response r;
	struct ka_peer k = { .want = 7 };
	struct cmk_err e;
	pthread_t th;
	EVP_PKEY *pk;
	X509 *x;
	int connects[7], rnd[7];

	(void)state;
	snprintf(cert, sizeof(cert), "%s", tu_path("peer.pem"));
	pk = make_ip_cert(cert, &x);
	peer_listen(&k.t.p, NULL);
	k.t.ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(k.t.ctx);
	assert_int_equal(SSL_CTX_use_certificate(k.t.ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(k.t.ctx, pk), 1);
	assert_int_equal(pthread_create(&th, NULL, ka_peer_serve, &k), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", k.t.p.port);
	req.url = url;
	o.ca_bundle = cert;
	cmk_http_drop_connections();	/* none kept from other tests */
	for (int i = 0; i < 7; i++) {
		if (i == 5)
			cmk_http_drop_connections();
		rnd[i] = reseeds;
		assert_int_equal(cmk_http_do(&o, &req, NULL, NULL, &r, &e), 0);
		rnd[i] = reseeds - rnd[i];
		assert_int_equal(r.status, 200);
		connects[i] = r.connects;
		cmk_http_response_free(&r);
	}
	cmk_http_drop_connections();
	pthread_join(th, NULL);
	close(k.t.p.lfd);
	SSL_CTX_free(k.t.ctx);
	X509_free(x);
	EVP_PKEY_free(pk);
	print_message("7 requests, a drop after 5: %d TLS connections accepted\n", k.accepted);
	assert_int_equal(k.accepted, 2);
	assert_int_equal(connects[0], 1);
	for (int i = 1; i < 5; i++)
		assert_int_equal(connects[i], 0);
	assert_int_equal(connects[5], 1);
	assert_int_equal(connects[6], 0);
	print_message("http_tls_reseed_per_handshake: reseeds per request: %d %d %d %d %d %d %d\n",
		      rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6]);
	for (int i = 0; i < 7; i++)
		assert_int_equal(rnd[i], connects[i] ? 1 : 0);
}

static _Atomic int64_t fake_epoch;
static atomic_int epoch_reads;

static int64_t read_fake_epoch(void *arg)
{
	(void)arg;
	atomic_fetch_add(&epoch_reads, 1);
	return atomic_load(&fake_epoch);
}

/*
 * A VM fork whose event the agent has not read yet: the kernel's epoch
 * moved (0 -> 1) and nobody called cmk_http_drop_connections().  The next
 * request must not send on the kept TLS connection (the parent VM's
 * session: AES-GCM nonce reuse); it opens a new one, which is then kept
 * in the new epoch.  An epoch that cannot be read keeps no connection.
 * Oracle: CURLINFO_NUM_CONNECTS per request and the peer's accept count.
 */
static void http_vmfork_epoch_change_never_reuses_connection(void **state)
{
	struct cmk_http_request req = { "POST", NULL, NULL, 0, "{}", 2 };
	struct cmk_http_opts o = { .max_attempts = 1 };
	static const int64_t epochs[] = { 0, 0, 1, 1, CMK_HTTP_EPOCH_UNKNOWN,
					  CMK_HTTP_EPOCH_UNKNOWN, 1 };
	static const int want[] = { 1, 0, 1, 0, 1, 1, 1 };
	char url[64], cert[512];
	struct cmk_http_response r;
	struct ka_peer k = { .want = 7 };
	struct cmk_err e;
	pthread_t th;
	EVP_PKEY *pk;
	X509 *x;
	int connects[7];

	(void)state;
	snprintf(cert, sizeof(cert), "%s", tu_path("peer.pem"));
	pk = make_ip_cert(cert, &x);
	peer_listen(&k.t.p, NULL);
	k.t.ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(k.t.ctx);
	assert_int_equal(SSL_CTX_use_certificate(k.t.ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(k.t.ctx, pk), 1);
	assert_int_equal(pthread_create(&th, NULL, ka_peer_serve, &k), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", k.t.p.port);
	req.url = url;
	o.ca_bundle = cert;
	cmk_http_drop_connections();	/* none kept from other tests */
	atomic_store(&epoch_reads, 0);
	cmk_http_set_epoch_source(read_fake_epoch, NULL);
	for (int i = 0; i < 7; i++) {
		atomic_store(&fake_epoch, epochs[i]);
		assert_int_equal(cmk_http_do(&o, &req, NULL, NULL, &r, &e), 0);
		assert_int_equal(r.status, 200);
		connects[i] = r.connects;
		cmk_http_response_free(&r);
	}
	cmk_http_drop_connections();	/* in its own epoch: close_notify */
	cmk_http_set_epoch_source(NULL, NULL);
	pthread_join(th, NULL);
	close(k.t.p.lfd);
	SSL_CTX_free(k.t.ctx);
	X509_free(x);
	EVP_PKEY_free(pk);
	print_message("# epochs 0 0 1 1 ? ? 1: connects %d %d %d %d %d %d %d, %d accepted, %d epoch reads\n",
		      connects[0], connects[1], connects[2], connects[3], connects[4],
		      connects[5], connects[6], k.accepted, atomic_load(&epoch_reads));
	for (int i = 0; i < 7; i++)
		assert_int_equal(connects[i], want[i]);
	assert_int_equal(k.accepted, 5);
	assert_true(atomic_load(&epoch_reads) >= 7);
	/*
	 * The connections kept in epoch 0 and in epoch 1 were retired by an
	 * epoch change: closed without a close_notify (a TLS record under the
	 * parent VM's keys).  The last one, dropped in its own epoch, ends
	 * with one: the peer can tell the two apart.
	 */
	print_message("# close_notify per connection: %d %d %d %d %d\n", k.notified[0],
		      k.notified[1], k.notified[2], k.notified[3], k.notified[4]);
	assert_false(k.notified[0]);
	assert_false(k.notified[1]);
	assert_true(k.notified[4]);
}

/* ---- a full socket table, a failed dup2 ------------------------------------ */

/*
 * A plain HTTP peer that holds every request it accepts unanswered until
 * released, so that many requests are under way at once.
 */
#define HOLD_MAX 48

struct hold_peer {
	int lfd;
	int port;
	int fds[HOLD_MAX];
	atomic_int accepted;
	atomic_bool release;
};

/* Read one request (head + Content-Length body) from @fd; best effort. */
static void hold_read_request(int fd)
{
	char buf[4096];
	size_t len = 0;

	while (len < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		char *end, *cl;

		if (n <= 0)
			return;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		cl = strcasestr(buf, "\r\nContent-Length:");
		if (len >= (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0))
			return;
	}
}

static void *hold_peer_serve(void *arg)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
				     "Connection: close\r\n\r\n{}";
	struct hold_peer *h = arg;
	int n = 0;

	while (!atomic_load(&h->release)) {
		struct pollfd pfd = { .fd = h->lfd, .events = POLLIN };
		int fd;

		if (poll(&pfd, 1, 50) != 1 || n == HOLD_MAX)
			continue;
		fd = accept(h->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		h->fds[n++] = fd;
		atomic_store(&h->accepted, n);
	}
	for (int i = 0; i < n; i++) {
		hold_read_request(h->fds[i]);
		if (write(h->fds[i], answer, sizeof(answer) - 1) < 0)
			print_message("# hold peer: answer %d not sent\n", i);
		shutdown(h->fds[i], SHUT_WR);
		close(h->fds[i]);
	}
	return NULL;
}

struct holder {
	const char *url;
	int ret;
	long status;
	pthread_t t;
};

static void *holder_run(void *arg)
{
	struct holder *hd = arg;
	struct cmk_http_request req = { "POST", hd->url, NULL, 0, "{}", 2 };
	struct cmk_http_opts o = { .max_attempts = 1, .timeout_ms = 120000,
				   .connect_timeout_ms = 60000 };
	struct cmk_http_response r;
	struct cmk_err e;

	hd->ret = cmk_http_do(&o, &req, NULL, NULL, &r, &e);
	if (hd->ret)
		print_message("# holder: %s\n", e.msg);
	else
		hd->status = r.status;
	if (!hd->ret)
		cmk_http_response_free(&r);
	return NULL;
}

/*
 * A fleet agent's threads (checks, the hint queue's long poll, credential
 * fetches) can have more requests under way than the share's socket table
 * (32) has slots.  Such a request must still be made: on a connection
 * that is not kept (closed when the request ends), since only a tracked
 * socket can be muted at a VM-fork epoch change.  40 requests held open
 * by a peer, then two to a TLS peer while they are: both succeed and the
 * second needs a new connection (the first was not kept); once the 40
 * are done, connections are kept again.
 * Oracle: every request's result, CURLINFO_NUM_CONNECTS per request and
 * the TLS peer's accept count.
 */
static void http_fleet_share_table_full_request_proceeds_unkept(void **state)
{
	struct cmk_http_request req = { "POST", NULL, NULL, 0, "{}", 2 };
	struct cmk_http_opts o = { .max_attempts = 1 };
	enum { HOLDERS = 40 };
	static const int want[] = { 1, 1, 1, 0 };
	struct holder hd[HOLDERS];
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	struct hold_peer h = { 0 };
	char hurl[64], url[64], cert[512];
	struct cmk_http_response r;
	struct ka_peer k = { .want = 4 };
	struct cmk_err e;
	int connects[4], rets[4], failed = 0;
	pthread_t th, hth;
	EVP_PKEY *pk;
	X509 *x;

	(void)state;
	h.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(h.lfd >= 0);
	assert_int_equal(bind(h.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(h.lfd, HOLD_MAX), 0);
	assert_int_equal(getsockname(h.lfd, (struct sockaddr *)&a, &al), 0);
	h.port = ntohs(a.sin_port);
	snprintf(hurl, sizeof(hurl), "http://127.0.0.1:%d/", h.port);
	assert_int_equal(pthread_create(&hth, NULL, hold_peer_serve, &h), 0);

	snprintf(cert, sizeof(cert), "%s", tu_path("peer.pem"));
	pk = make_ip_cert(cert, &x);
	peer_listen(&k.t.p, NULL);
	k.t.ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(k.t.ctx);
	assert_int_equal(SSL_CTX_use_certificate(k.t.ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(k.t.ctx, pk), 1);
	assert_int_equal(pthread_create(&th, NULL, ka_peer_serve, &k), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", k.t.p.port);
	req.url = url;
	o.ca_bundle = cert;

	cmk_http_drop_connections();	/* none kept from other tests */
	for (int i = 0; i < HOLDERS; i++) {
		hd[i].url = hurl;
		hd[i].ret = -1;
		hd[i].status = 0;
		assert_int_equal(pthread_create(&hd[i].t, NULL, holder_run, &hd[i]), 0);
	}
	/* All 40 under way (or, before the fix, as many as got a socket). */
	for (int i = 0; i < 600 && atomic_load(&h.accepted) < HOLDERS; i++)
		usleep(50000);
	print_message("# %d requests held open by the peer\n", atomic_load(&h.accepted));
	for (int i = 0; i < 4; i++) {
		if (i == 2) {
			atomic_store(&h.release, true);
			for (int j = 0; j < HOLDERS; j++)
				pthread_join(hd[j].t, NULL);
		}
		rets[i] = cmk_http_do(&o, &req, NULL, NULL, &r, &e);
		connects[i] = rets[i] ? -1 : r.connects;
		if (rets[i])
			print_message("# request %d: %s\n", i, e.msg);
		else
			cmk_http_response_free(&r);
	}
	if (!atomic_load(&h.release)) {
		atomic_store(&h.release, true);
		for (int j = 0; j < HOLDERS; j++)
			pthread_join(hd[j].t, NULL);
	}
	pthread_join(hth, NULL);
	close(h.lfd);
	cmk_http_drop_connections();
	/* ka_peer_serve waits for 4 requests: unblock it if some failed. */
	k.want = k.served;
	shutdown(k.t.p.lfd, SHUT_RDWR);
	pthread_join(th, NULL);
	close(k.t.p.lfd);
	SSL_CTX_free(k.t.ctx);
	X509_free(x);
	EVP_PKEY_free(pk);
	for (int i = 0; i < HOLDERS; i++)
		failed += hd[i].ret != 0 || hd[i].status != 200;
	print_message("# %d held requests, %d failed; then 2 while held, 2 after: results %d %d %d %d, connects %d %d %d %d, %d TLS connections accepted\n",
		      HOLDERS, failed, rets[0], rets[1], rets[2], rets[3], connects[0],
		      connects[1], connects[2], connects[3], k.accepted);
	assert_int_equal(failed, 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(rets[i], 0);
		assert_int_equal(connects[i], want[i]);
	}
	assert_int_equal(k.accepted, 3);
}

/* dup2() fails while this is set (linked with --wrap, agent/Makefile). */
static atomic_bool dup2_fails;
static atomic_int dup2_failed;
int __real_dup2(int oldfd, int newfd);
int __wrap_dup2(int oldfd, int newfd);
int __wrap_dup2(int oldfd, int newfd)
{
	if (atomic_load(&dup2_fails)) {
		atomic_fetch_add(&dup2_failed, 1);
		errno = EMFILE;
		return -1;
	}
	return __real_dup2(oldfd, newfd);
}

/*
 * A VM-fork epoch change retires the kept connection: its socket is to be
 * replaced (dup2) by an unconnected one so libcurl's close_notify goes
 * nowhere.  When dup2 fails (no fd left, EMFILE), the socket must be shut
 * down instead: still no TLS record under the parent VM's keys reaches
 * the peer.  The next connection, dropped in its own epoch, ends with a
 * close_notify: the peer tells the two apart.
 * Oracle: the peer's SSL_RECEIVED_SHUTDOWN per connection, and that the
 * failing dup2 was called.
 */
static void http_fleet_vmfork_dup2_fails_still_no_close_notify(void **state)
{
	struct cmk_http_request req = { "POST", NULL, NULL, 0, "{}", 2 };
	struct cmk_http_opts o = { .max_attempts = 1 };
	char url[64], cert[512];
	struct cmk_http_response r;
	struct ka_peer k = { .want = 2 };
	struct cmk_err e;
	pthread_t th;
	EVP_PKEY *pk;
	X509 *x;
	int connects[2];

	(void)state;
	snprintf(cert, sizeof(cert), "%s", tu_path("peer.pem"));
	pk = make_ip_cert(cert, &x);
	peer_listen(&k.t.p, NULL);
	k.t.ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(k.t.ctx);
	assert_int_equal(SSL_CTX_use_certificate(k.t.ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(k.t.ctx, pk), 1);
	assert_int_equal(pthread_create(&th, NULL, ka_peer_serve, &k), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", k.t.p.port);
	req.url = url;
	o.ca_bundle = cert;
	cmk_http_drop_connections();	/* none kept from other tests */
	cmk_http_set_epoch_source(read_fake_epoch, NULL);
	for (int i = 0; i < 2; i++) {
		atomic_store(&fake_epoch, i);
		/* the epoch change retires the first connection here */
		atomic_store(&dup2_fails, i == 1);
		assert_int_equal(cmk_http_do(&o, &req, NULL, NULL, &r, &e), 0);
		atomic_store(&dup2_fails, false);
		assert_int_equal(r.status, 200);
		connects[i] = r.connects;
		cmk_http_response_free(&r);
	}
	cmk_http_drop_connections();	/* in its own epoch: close_notify */
	cmk_http_set_epoch_source(NULL, NULL);
	pthread_join(th, NULL);
	close(k.t.p.lfd);
	SSL_CTX_free(k.t.ctx);
	X509_free(x);
	EVP_PKEY_free(pk);
	print_message("# epochs 0 1, dup2 failing at the change: connects %d %d, %d accepted, %d failed dup2, close_notify %d %d\n",
		      connects[0], connects[1], k.accepted, atomic_load(&dup2_failed),
		      k.notified[0], k.notified[1]);
	assert_int_equal(connects[0], 1);
	assert_int_equal(connects[1], 1);
	assert_int_equal(k.accepted, 2);
	assert_true(atomic_load(&dup2_failed) >= 1);
	assert_false(k.notified[0]);
	assert_true(k.notified[1]);
}

/*
 * Review 16e M2: the VM-fork event's handler (loop forget ->
 * cmk_kek_store_forget() -> cmk_provider_reset() ->
 * cmk_http_drop_connections()) retires the share in the new epoch before
 * any request has seen it.  Oracle, at the TLS peer: the connection kept
 * in epoch 0 and dropped after the fork ends with no close_notify (a
 * record under the parent VM's keys and nonces); the one made in epoch 1
 * and dropped in epoch 1 ends with one (a drop in the share's own epoch
 * still closes cleanly: not every close is muted).
 */
static void http_vmfork_drop_at_fork_event_sends_no_close_notify(void **state)
{
	struct cmk_http_request req = { "POST", NULL, NULL, 0, "{}", 2 };
	struct cmk_http_opts o = { .max_attempts = 1 };
	char url[64], cert[512];
	struct cmk_http_response r;
	struct ka_peer k = { .want = 2 };
	struct cmk_err e;
	pthread_t th;
	EVP_PKEY *pk;
	X509 *x;

	(void)state;
	snprintf(cert, sizeof(cert), "%s", tu_path("peer.pem"));
	pk = make_ip_cert(cert, &x);
	peer_listen(&k.t.p, NULL);
	k.t.ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(k.t.ctx);
	assert_int_equal(SSL_CTX_use_certificate(k.t.ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(k.t.ctx, pk), 1);
	assert_int_equal(pthread_create(&th, NULL, ka_peer_serve, &k), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", k.t.p.port);
	req.url = url;
	o.ca_bundle = cert;
	cmk_http_drop_connections();
	cmk_http_set_epoch_source(read_fake_epoch, NULL);
	atomic_store(&fake_epoch, 0);
	assert_int_equal(cmk_http_do(&o, &req, NULL, NULL, &r, &e), 0);	/* kept, epoch 0 */
	cmk_http_response_free(&r);
	atomic_store(&fake_epoch, 1);		/* VM fork */
	cmk_http_drop_connections();		/* the vmfork event's provider reset */
	assert_int_equal(cmk_http_do(&o, &req, NULL, NULL, &r, &e), 0);
	cmk_http_response_free(&r);
	cmk_http_drop_connections();	/* in its own epoch: close_notify */
	cmk_http_set_epoch_source(NULL, NULL);
	pthread_join(th, NULL);
	close(k.t.p.lfd);
	SSL_CTX_free(k.t.ctx);
	X509_free(x);
	EVP_PKEY_free(pk);
	print_message("# close_notify: parent-epoch connection dropped at the fork event %d (must be 0), own-epoch drop %d (must be 1)\n",
		      k.notified[0], k.notified[1]);
	assert_int_equal(k.accepted, 2);
	assert_false(k.notified[0]);
	assert_true(k.notified[1]);
}

/*
 * Review 16f M1: a request in flight on a kept connection when the VM
 * forks.  A TLS peer answers request 1 (its connection kept, epoch 0) and
 * holds request 2; once it is held the epoch moves to 1 and the vmfork
 * event's handler drops the connections; then either the stale-job
 * cancel aborts the request, or it runs into its own timeout (the SQS
 * long poll, never cancelled at a fork).  Oracle, at the TLS peer: the
 * connection ends with no close_notify (a record under the parent VM's
 * keys and nonces); the request fails as transient, so its caller
 * retries after a backoff.
 */
struct inflight_peer {
	struct tls_peer t;
	atomic_bool held;	/* request 2 arrived (and was not answered) */
	bool notified;		/* a close_notify came after it */
};

static void *inflight_peer_serve(void *arg)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				     "Content-Length: 2\r\n\r\n{}";
	struct inflight_peer *k = arg;
	int fd = accept(k->t.p.lfd, NULL, NULL);
	char buf[4096];
	SSL *ssl;

	if (fd < 0)
		return NULL;
	ssl = SSL_new(k->t.ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) == 1 && ka_read_request(ssl, buf, sizeof(buf)) &&
	    SSL_write(ssl, answer, (int)sizeof(answer) - 1) > 0 &&
	    ka_read_request(ssl, buf, sizeof(buf))) {
		atomic_store(&k->held, true);
		SSL_read(ssl, buf, 1);	/* until the client closes */
		k->notified = SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN;
	}
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static bool inflight_cancel;

/* The VM forks once request 2 is held (not on a timer: under load). */
static void *vmfork_later(void *arg)
{
	struct inflight_peer *k = arg;

	for (int i = 0; i < 1000 && !atomic_load(&k->held); i++)
		usleep(10000);
	usleep(100000);		/* the client waits for the answer */
	atomic_store(&fake_epoch, 1);		/* VM fork */
	cmk_http_drop_connections();		/* the vmfork event's provider reset */
	if (inflight_cancel)
		atomic_store(&cancel_flag, true);	/* the loop's stale_job() */
	return NULL;
}

static void vmfork_inflight(bool cancel)
{
	struct cmk_http_request req = { "POST", NULL, NULL, 0, "{}", 2 };
	struct cmk_http_opts o = { .max_attempts = 1 };
	char url[64], cert[512];
	struct cmk_http_response r;
	struct inflight_peer k = { 0 };
	struct cmk_err e;
	pthread_t th, tf;
	int64_t t0, ms;
	EVP_PKEY *pk;
	X509 *x;
	int ret;

	snprintf(cert, sizeof(cert), "%s", tu_path("peer.pem"));
	pk = make_ip_cert(cert, &x);
	peer_listen(&k.t.p, NULL);
	k.t.ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(k.t.ctx);
	assert_int_equal(SSL_CTX_use_certificate(k.t.ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(k.t.ctx, pk), 1);
	assert_int_equal(pthread_create(&th, NULL, inflight_peer_serve, &k), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", k.t.p.port);
	req.url = url;
	o.ca_bundle = cert;
	cmk_http_drop_connections();	/* none kept from other tests */
	cmk_http_set_epoch_source(read_fake_epoch, NULL);
	atomic_store(&fake_epoch, 0);
	assert_int_equal(cmk_http_do(&o, &req, NULL, NULL, &r, &e), 0);	/* kept, epoch 0 */
	cmk_http_response_free(&r);
	/* cancel: a KMS check (long deadline); else the SQS poll's timeout */
	o.timeout_ms = cancel ? 20000 : 1500;
	inflight_cancel = cancel;
	atomic_store(&cancel_flag, false);
	cmk_deadline_set(cmk_deadline_now_ms() + 20000);
	cmk_deadline_watch(&cancel_flag);
	assert_int_equal(pthread_create(&tf, NULL, vmfork_later, &k), 0);
	t0 = cmk_deadline_now_ms();
	ret = cmk_http_do(&o, &req, NULL, NULL, &r, &e);	/* across the fork */
	ms = cmk_deadline_now_ms() - t0;
	pthread_join(tf, NULL);
	cmk_deadline_watch(NULL);
	cmk_deadline_set(0);
	cmk_http_drop_connections();
	cmk_http_set_epoch_source(NULL, NULL);
	pthread_join(th, NULL);
	close(k.t.p.lfd);
	SSL_CTX_free(k.t.ctx);
	X509_free(x);
	EVP_PKEY_free(pk);
	print_message("# in flight across a VM fork (%s): ret %d after %lld ms (%s: %s), peer held it %d, close_notify %d (must be 0)\n",
		      cancel ? "stale job cancelled" : "own timeout", ret, (long long)ms,
		      ret ? cmk_reason_name(e.reason) : "-", ret ? e.msg : "-",
		      atomic_load(&k.held), k.notified);
	assert_true(atomic_load(&k.held));
	assert_true(ret < 0);
	assert_int_equal(e.cls, CMK_EC_TRANSIENT);
	assert_false(k.notified);
}

static void http_vmfork_inflight_cancel_sends_no_close_notify(void **state)
{
	(void)state;
	vmfork_inflight(true);
}

static void http_vmfork_inflight_timeout_sends_no_close_notify(void **state)
{
	(void)state;
	vmfork_inflight(false);
}

/* ---- throttling: Retry-After and one attempt per check --------------------- */

/*
 * A 429 with Retry-After: the answer carries it (ms), and so does the
 * thread (cmk_http_retry_after_ms(), which provider.c puts in the
 * throttled error); no retry whose wait (7 s) would pass the deadline.
 */
static void http_throttle_retry_after_seconds(void **state)
{
	static const char answer[] = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
				     "Content-Length: 0\r\nConnection: close\r\n\r\n";
	struct cmk_http_request req = { "POST", NULL, NULL, 0, "{}", 2 };
	struct cmk_http_opts o = { .max_attempts = 3 };
	struct cmk_http_response r;
	struct cmk_err e;
	struct peer p;
	pthread_t t;
	char url[64];

	(void)state;
	peer_start(&p, answer, &t);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", p.port);
	req.url = url;
	cmk_deadline_set(cmk_deadline_now_ms() + 3000);
	assert_int_equal(cmk_http_do(&o, &req, NULL, NULL, &r, &e), 0);
	cmk_deadline_set(0);
	peer_stop(&p, t);
	assert_int_equal(r.status, 429);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(r.retry_after_ms, 7000);
	assert_int_equal(cmk_http_retry_after_ms(), 7000);
	cmk_http_response_free(&r);
}

/* Ends a wait that a broken call would make, so the test fails, not hangs. */
static void *watchdog(void *arg)
{
	atomic_bool *done = arg;

	for (int i = 0; i < 100 && !atomic_load(done); i++)
		usleep(100 * 1000);
	if (!atomic_load(done))
		cmk_deadline_cancel_all(true);
	return NULL;
}

/*
 * 503 and 429 with Retry-After: 86400 and no deadline (cmkctl, a
 * credential fetch outside a check): the call does not sleep a day; it
 * returns the answer after one attempt, Retry-After in it, within
 * CMK_HTTP_UNBOUNDED_WAIT_MS.  Oracle: status, attempts and elapsed time
 * (a watchdog cancels waits after 10 s, so a call that sleeps fails here
 * with a timeout instead of hanging).
 */
static void http_throttle_huge_retry_after_no_deadline_capped(void **state)
{
	static const char *const answers[] = {
		"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 86400\r\n"
		"Content-Length: 0\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 86400\r\n"
		"Content-Length: 0\r\nConnection: close\r\n\r\n",
	};
	struct cmk_http_request req = { "POST", NULL, NULL, 0, "{}", 2 };
	struct cmk_http_opts o = { .max_attempts = 3 };

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct cmk_http_response r;
		atomic_bool done = false;
		pthread_t t, wd;
		struct cmk_err e;
		struct peer p;
		char url[64];
		uint64_t t0;
		int ret;

		peer_start(&p, answers[i], &t);
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/", p.port);
		req.url = url;
		assert_int_equal(cmk_deadline_get(), 0);
		assert_int_equal(pthread_create(&wd, NULL, watchdog, &done), 0);
		t0 = cmk_deadline_now_ms();
		ret = cmk_http_do(&o, &req, NULL, NULL, &r, &e);
		atomic_store(&done, true);
		pthread_join(wd, NULL);
		cmk_deadline_cancel_all(false);
		peer_stop(&p, t);
		print_message("# Retry-After 86400, no deadline: ret %d after %llu ms\n",
			      ret, (unsigned long long)(cmk_deadline_now_ms() - t0));
		if (ret)
			fail_msg("the call waited for Retry-After: %s", e.msg);
		assert_int_equal(r.status, i ? 429 : 503);
		assert_int_equal(r.attempts, 1);
		assert_int_equal(r.retry_after_ms, 86400000);
		assert_true(cmk_deadline_now_ms() - t0 < (uint64_t)CMK_HTTP_UNBOUNDED_WAIT_MS);
		cmk_http_response_free(&r);
	}
}

/* Retry-After as an HTTP-date, 30 s ahead; garbage is no Retry-After. */
static void http_throttle_retry_after_date(void **state)
{
	char answer[256], date[64], url[64];
	struct cmk_http_request req = { "GET", NULL, NULL, 0, NULL, 0 };
	struct cmk_http_opts o = { .max_attempts = 1 };
	struct cmk_http_response r;
	struct cmk_err e;
	struct peer p;
	pthread_t t;
	time_t at = time(NULL) + 30;
	struct tm tm;

	(void)state;
	gmtime_r(&at, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	snprintf(answer, sizeof(answer), "HTTP/1.1 503 Service Unavailable\r\nRetry-After: %s\r\n"
		 "Content-Length: 0\r\nConnection: close\r\n\r\n", date);
	peer_start(&p, answer, &t);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", p.port);
	req.url = url;
	assert_int_equal(cmk_http_do(&o, &req, NULL, NULL, &r, &e), 0);
	peer_stop(&p, t);
	assert_in_range(r.retry_after_ms, 28000, 30000);
	cmk_http_response_free(&r);

	peer_start(&p, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: soon\r\n"
		   "Content-Length: 0\r\nConnection: close\r\n\r\n", &t);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", p.port);
	assert_int_equal(cmk_http_do(&o, &req, NULL, NULL, &r, &e), 0);
	peer_stop(&p, t);
	assert_int_equal(r.retry_after_ms, 0);
	assert_int_equal(cmk_http_retry_after_ms(), 0);
	cmk_http_response_free(&r);
}

/*
 * A thread capped at one attempt (cmk-agent's worker: the loop retries)
 * makes one, whatever max_attempts says: a peer that answers 503 once and
 * then stops answering sees one request, and the 503 comes back at once.
 * Oracle: the attempt count and the time taken (a second attempt would
 * wait for the 1 s timeout).
 */
static void http_throttle_thread_cap_one_attempt_per_check(void **state)
{
	static const char answer[] = "HTTP/1.1 503 Service Unavailable\r\n"
				     "Content-Length: 0\r\nConnection: close\r\n\r\n";
	struct cmk_http_request req = { "POST", NULL, NULL, 0, "{}", 2 };
	struct cmk_http_opts o = { .max_attempts = 3, .timeout_ms = 1000 };
	struct cmk_http_response r;
	struct cmk_err e;
	struct peer p;
	pthread_t t;
	char url[64];
	int ret;

	(void)state;
	peer_start(&p, answer, &t);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", p.port);
	req.url = url;
	cmk_http_thread_max_attempts(1);
	cmk_deadline_set(cmk_deadline_now_ms() + 5000);
	ret = cmk_http_do(&o, &req, NULL, NULL, &r, &e);
	cmk_deadline_set(0);
	cmk_http_thread_max_attempts(0);
	peer_stop(&p, t);
	assert_int_equal(ret, 0);
	assert_int_equal(r.status, 503);
	assert_int_equal(r.attempts, 1);
	cmk_http_response_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(http_backoff_is_capped_exponential_with_jitter),
		cmocka_unit_test(http_response_header_lookup),
		cmocka_unit_test(http_header_injection_refused),
		cmocka_unit_test(http_bad_url_is_local_not_transient),
		cmocka_unit_test(http_cleanse_curl_buffers_wiped_on_free),
		cmocka_unit_test_setup_teardown(http_cleanse_https_buffers_wiped_on_free,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test(http_adversarial_plain_url_only_loopback),
		cmocka_unit_test(http_adversarial_plain_remote_refused_before_sending),
		cmocka_unit_test(http_adversarial_plain_via_remote_proxy_refused),
		cmocka_unit_test(http_hang_deadline_bounds_every_attempt),
		cmocka_unit_test(http_hang_deadline_passed_no_attempt),
		cmocka_unit_test(http_hang_cancel_is_named_in_the_error),
		cmocka_unit_test_setup_teardown(http_reuse_one_tls_connection_for_n_checks,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(http_vmfork_drop_at_fork_event_sends_no_close_notify,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(http_vmfork_epoch_change_never_reuses_connection,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(http_vmfork_inflight_cancel_sends_no_close_notify,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(http_vmfork_inflight_timeout_sends_no_close_notify,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(http_fleet_share_table_full_request_proceeds_unkept,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(http_fleet_vmfork_dup2_fails_still_no_close_notify,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test(http_throttle_retry_after_seconds),
		cmocka_unit_test(http_throttle_retry_after_date),
		cmocka_unit_test(http_throttle_huge_retry_after_no_deadline_capped),
		cmocka_unit_test(http_throttle_thread_cap_one_attempt_per_check),
	};

	return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
