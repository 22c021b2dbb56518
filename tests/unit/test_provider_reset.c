// SPDX-License-Identifier: GPL-2.0
/*
 * test_provider_reset.c - a wipe lets go of the provider's way into the
 * KMS, not only of the KEK.  cmk_kek_store_forget() is what cmk-agent calls
 * on every wipe (revocation, grace-policy expiry, VM fork): after it the
 * gcp provider holds no access token, so its next call fetches a new one
 * from the metadata server before it reaches Cloud KMS again.
 *
 * Oracle: a loopback peer that stands for both the metadata server (a new
 * token per fetch, counted) and Cloud KMS (answers 503, so every call is a
 * transient failure that leaves the cache as it is; it records the bearer
 * token each request carried); the token's cmk_secret is unmapped with its
 * data pages all zero (testutil's munmap wrapper).  A wipe during a call
 * (the worker still waiting for the KMS) does not wait for it, and the
 * call drops the token as it returns.  KMIP's connection: tests/kms/kmip.sh
 * (kmip_cleanse_forget_drops_connection).
 */
#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "kms/aws/aws_creds.h"
#include "daemon/kmsjob.h"
#include "kms/provider.h"
#include "volume/volume.h"

#define KEY_REF "projects/p/locations/global/keyRings/r/cryptoKeys/k"

struct peer {
	int lfd;
	int port;
	atomic_int tokens;		/* tokens handed out */
	atomic_int kms;			/* KMS requests answered */
	atomic_bool hold;		/* hold the next KMS answer ... */
	atomic_bool held;		/* ... a KMS request is being held */
	atomic_bool stop;
	char last_auth[128];		/* Authorization of the last KMS request */
	pthread_t t;
};

static void read_request(int fd, char *got, size_t cap)
{
	size_t len = 0, want = 0;

	got[0] = '\0';
	while (len < cap - 1) {
		ssize_t n = read(fd, got + len, cap - 1 - len);
		char *end, *cl;

		if (n <= 0)
			break;
		len += (size_t)n;
		got[len] = '\0';
		end = strstr(got, "\r\n\r\n");
		if (!end)
			continue;
		cl = strcasestr(got, "\r\nContent-Length:");
		want = (size_t)(end + 4 - got) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
		if (len >= want)
			break;
	}
}

static void answer_kms(struct peer *p, int fd, const char *got)
{
	static const char body[] =
		"{\"error\":{\"code\":503,\"message\":\"try later\",\"status\":\"UNAVAILABLE\"}}";
	const char *a = strcasestr(got, "\r\nAuthorization: ");
	char out[512];

	if (a)
		snprintf(p->last_auth, sizeof(p->last_auth), "%.*s",
			 (int)strcspn(a + 17, "\r\n"), a + 17);
	if (atomic_exchange(&p->hold, false)) {
		atomic_store(&p->held, true);
		/* until released, or 20 s (then the test fails, not hangs) */
		for (int i = 0; i < 2000 && atomic_load(&p->held); i++)
			usleep(10000);
	}
	snprintf(out, sizeof(out),
		 "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		 sizeof(body) - 1, body);
	atomic_fetch_add(&p->kms, 1);
	if (write(fd, out, strlen(out)) < 0)
		p->last_auth[0] = '\0';
}

static void answer_token(struct peer *p, int fd)
{
	char body[160], out[512];
	int n = atomic_fetch_add(&p->tokens, 1) + 1;

	snprintf(body, sizeof(body),
		 "{\"access_token\":\"ya29.tok-secret-%d\",\"expires_in\":3599,\"token_type\":\"Bearer\"}",
		 n);
	snprintf(out, sizeof(out),
		 "HTTP/1.1 200 OK\r\nMetadata-Flavor: Google\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", strlen(body), body);
	if (write(fd, out, strlen(out)) < 0)
		atomic_fetch_sub(&p->tokens, 1);
}

static void *peer_serve(void *arg)
{
	struct peer *p = arg;
	char got[8192];

	while (!atomic_load(&p->stop)) {
		struct pollfd pfd = { .fd = p->lfd, .events = POLLIN };
		int fd;

		if (poll(&pfd, 1, 50) != 1)
			continue;
		fd = accept(p->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		read_request(fd, got, sizeof(got));
		if (strstr(got, "/computeMetadata/"))
			answer_token(p, fd);
		else
			answer_kms(p, fd, got);
		close(fd);
	}
	return NULL;
}

static void peer_start(struct peer *p)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	memset(p, 0, sizeof(*p));
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(p->lfd >= 0);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(p->lfd, 8), 0);
	assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&a, &al), 0);
	p->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&p->t, NULL, peer_serve, p), 0);
}

static void peer_stop(struct peer *p)
{
	atomic_store(&p->held, false);
	atomic_store(&p->stop, true);
	pthread_join(p->t, NULL);
	close(p->lfd);
}

static struct cmk_provider *open_gcp(const struct peer *p)
{
	char url[64];
	struct cmk_kv kv[] = {
		{ "credentials", "metadata", 1 },
		{ "metadata_endpoint", url, 2 },
		{ "endpoint", url, 3 },
		{ "max_attempts", "1", 4 },
		{ "timeout_ms", "25000", 5 },
	};
	struct cmk_provider *prov = NULL;
	struct cmk_err e;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", p->port);
	if (cmk_provider_open("gcp", kv, 5, &prov, &e))
		fail_msg("open: %s", e.msg);
	return prov;
}

/* An unwrap the peer answers 503: transient, and the token cache stays. */
static void unwrap_transient(struct cmk_provider *prov)
{
	static const unsigned char ct[48] = { 7 };
	struct cmk_secret *kek = NULL;
	struct cmk_err e;

	assert_true(cmk_provider_unwrap(prov, KEY_REF, ct, sizeof(ct), NULL, &kek,
					NULL, &e) < 0);
	assert_int_equal(e.cls, CMK_EC_TRANSIENT);
	assert_null(kek);
}

/* A KEK set as cmk-agent holds it after an unseal, on provider @prov. */
static void kek_store_on(struct cmk_kek_store *ks, struct cmk_provider *prov)
{
	cmk_kek_store_init(ks);
	ks->p = prov;
	ks->cur = tu_secret_of("0123456789abcdef0123456789abcdef");
}

static void provider_cleanse_wipe_drops_gcp_token(void **state)
{
	struct cmk_kek_store ks;
	struct peer p;
	struct cmk_provider *prov;

	(void)state;
	peer_start(&p);
	prov = open_gcp(&p);
	unwrap_transient(prov);
	unwrap_transient(prov);
	/* control: the token is cached across calls */
	assert_int_equal(atomic_load(&p.tokens), 1);
	assert_int_equal(atomic_load(&p.kms), 2);
	assert_string_equal(p.last_auth, "Bearer ya29.tok-secret-1");

	kek_store_on(&ks, prov);
	tu_munmap_count = 0;
	tu_munmap_data_zero = false;
	tu_munmap_inspect = true;
	cmk_kek_store_forget(&ks);		/* the grace-policy wipe's forget */
	tu_munmap_inspect = false;
	assert_null(ks.cur);
	print_message("# %d secrets unmapped by the wipe\n", tu_munmap_count);
	assert_int_equal(tu_munmap_count, 2);	/* the KEK and the token */
	assert_true(tu_munmap_data_zero);

	unwrap_transient(prov);
	assert_int_equal(atomic_load(&p.tokens), 2);
	assert_string_equal(p.last_auth, "Bearer ya29.tok-secret-2");
	cmk_provider_close(&prov);
	peer_stop(&p);
}

struct call_arg {
	struct cmk_provider *prov;
	int ret;
	enum cmk_err_class cls;
};

static void *unwrap_thread(void *arg)
{
	static const unsigned char ct[48] = { 7 };
	struct call_arg *c = arg;
	struct cmk_secret *kek = NULL;
	struct cmk_err e;

	c->ret = cmk_provider_unwrap(c->prov, KEY_REF, ct, sizeof(ct), NULL, &kek,
				     NULL, &e);
	c->cls = e.cls;
	cmk_secret_free(&kek);
	return NULL;
}

/*
 * The wipe comes while the worker waits for the KMS: forget returns at
 * once (the peer is released only after it), and the call drops the
 * token as it returns - not the next time a call happens to end.
 */
static void provider_cleanse_wipe_during_call_drops_token_after_it(void **state)
{
	struct call_arg c = { 0 };
	struct cmk_kek_store ks;
	struct peer p;
	pthread_t t;
	bool released_by_test;

	(void)state;
	peer_start(&p);
	c.prov = open_gcp(&p);
	atomic_store(&p.hold, true);
	assert_int_equal(pthread_create(&t, NULL, unwrap_thread, &c), 0);
	for (int i = 0; i < 2000 && !atomic_load(&p.held); i++)
		usleep(10000);
	assert_true(atomic_load(&p.held));
	assert_int_equal(atomic_load(&p.tokens), 1);

	kek_store_on(&ks, c.prov);
	cmk_kek_store_forget(&ks);
	/* still held: forget did not wait for the call */
	released_by_test = atomic_exchange(&p.held, false);
	pthread_join(t, NULL);
	assert_true(released_by_test);
	assert_true(c.ret < 0);
	assert_int_equal(c.cls, CMK_EC_TRANSIENT);

	unwrap_transient(c.prov);
	assert_int_equal(atomic_load(&p.tokens), 2);
	assert_string_equal(p.last_auth, "Bearer ya29.tok-secret-2");
	cmk_provider_close(&c.prov);
	peer_stop(&p);
}

/* AWS: the cached credentials and the IMDSv2 session token go, wiped. */
static void provider_cleanse_aws_forget_wipes_credentials(void **state)
{
	const struct cmk_aws_creds *c;
	struct cmk_aws_cred_src s;
	struct cmk_err e;

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE0000FORGET", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-key-forget-0123456789", 1);
	setenv("AWS_SESSION_TOKEN", "session-token-forget", 1);
	assert_int_equal(cmk_aws_cred_src_init(&s, "environment", NULL, NULL, &e), 0);
	assert_int_equal(cmk_aws_creds_get(&s, 1000, &c, &e), 0);
	assert_non_null(s.cur.secret_key);
	s.imds_token = tu_secret_of("imds-session-token");
	s.imds_token_exp = 2000;

	tu_munmap_count = 0;
	tu_munmap_data_zero = false;
	tu_munmap_inspect = true;
	cmk_aws_creds_forget(&s);
	tu_munmap_inspect = false;
	assert_int_equal(tu_munmap_count, 3);	/* secret key, session token, IMDS token */
	assert_true(tu_munmap_data_zero);
	assert_false(s.have);
	assert_null(s.cur.secret_key);
	assert_null(s.cur.session_token);
	assert_null(s.imds_token);
	/* and the next use reads them again */
	assert_int_equal(cmk_aws_creds_get(&s, 1000, &c, &e), 0);
	assert_string_equal(c->access_key_id, "AKIAEXAMPLE0000FORGET");
	cmk_aws_cred_src_free(&s);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
}

/*
 * A job's provider that nobody adopts (a job made stale by a VM fork, a
 * provider replaced by a changed envelope) is parked for the worker to
 * close; it must hold no token meanwhile.  Oracle: released, its next call
 * fetches a new token.
 */
static void provider_cleanse_retired_provider_drops_token(void **state)
{
	struct cmk_retired r = { .n = 0 };
	struct cmk_kms_job j;
	struct peer p;
	struct cmk_provider *prov;

	(void)state;
	peer_start(&p);
	prov = open_gcp(&p);
	unwrap_transient(prov);
	assert_int_equal(atomic_load(&p.tokens), 1);

	memset(&j, 0, sizeof(j));
	kek_store_on(&j.fresh, prov);	/* an unseal's result, not adopted */
	j.loaded = true;
	cmk_kms_job_release(&j, &r);
	assert_int_equal(r.n, 1);
	assert_ptr_equal(r.p[0], prov);

	unwrap_transient(prov);
	assert_int_equal(atomic_load(&p.tokens), 2);
	cmk_provider_close(&r.p[0]);
	peer_stop(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(provider_cleanse_wipe_drops_gcp_token),
		cmocka_unit_test(provider_cleanse_wipe_during_call_drops_token_after_it),
		cmocka_unit_test(provider_cleanse_aws_forget_wipes_credentials),
		cmocka_unit_test(provider_cleanse_retired_provider_drops_token),
	};

	return cmocka_run_group_tests_name("provider_reset", tests, NULL, NULL);
}
