// SPDX-License-Identifier: GPL-2.0
/*
 * provider_kmip.c - KMIP provider (see provider_kmip.h, Documentation/kmip.rst).
 *
 * Transport: one TCP connection, TLS with a client certificate (OpenSSL's
 * SSL API on a non-blocking socket), kept open between calls and reopened
 * once when it broke.  Each request has one deadline, timeout_ms, for all
 * of it: connect, handshake, version negotiation, a reconnect, sending
 * and the whole answer - a server that trickles bytes cannot stretch it.
 * The check's overall deadline (deadline.h) clamps it, and every wait
 * (name resolution, connect, TLS) also ends, within WAIT_SLICE_MS, when
 * that deadline passes or cmk_deadline_cancel_all() cancels it; the
 * message says which limit ended it.  A definitive answer (revoked,
 * denied, not found...) closes the connection: its session keys could
 * read what went over it.
 * Messages: kmip.c; encoding: ttlv.c.  Requests and responses that can
 * hold a KEK live in struct cmk_secret buffers only, and OpenSSL wipes
 * decrypted records once read (SSL_OP_CLEANSE_PLAINTEXT).
 */
#include "kms/kmip/provider_kmip.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/deadline.h"
#include "core/fileio.h"
#include "core/random.h"
#include "kms/kmip/kmip.h"
#include "core/secret.h"
#include "kms/kmip/ttlv.h"
#include "kms/provider_settings.h"

static const char *const kmip_settings[] = {
	"server", "client_cert", "client_key", "ca_bundle", "server_name",
	"connect_timeout_ms", "timeout_ms", "max_attempts", NULL,
};

/* Largest message either way: a KEK, IV, tag and a full encryption context. */
#define KMIP_MSG_MAX	CMK_SECRET_MAX

static const struct cmk_kmip_version offered[] = {
	{ 1, 4 }, { 1, 3 }, { 1, 2 },
};

struct kmip {
	char host[256], port[8], server_name[256], where[300];
	char *cert, *key, *ca;
	long connect_timeout_ms, timeout_ms;
	int max_attempts;
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	struct cmk_kmip_version ver;	/* negotiated; 0.0 until then */
	long deadline_ms;		/* of the request in progress (monotonic) */
	bool check_cut;			/* the check's deadline set it, not timeout_ms */
};

/* The longest a wait goes without looking at the check's deadline. */
#define WAIT_SLICE_MS	100

/* Request deadlines are signed milliseconds of the awake clock. */
static long mono_ms(void)
{
	return (long)cmk_deadline_awake_ms();
}

/* Milliseconds left of the request's deadline (0 when it has passed). */
static long remaining_ms(const struct kmip *k)
{
	long left = k->deadline_ms - mono_ms();

	return left > 0 ? left : 0;
}

/*
 * Why a wait ended without its event: the agent cancelled every wait
 * (stopping), the check's overall deadline passed (check_timeout_ms), or
 * the request's own timeout_ms.  The first two also say when a wait of
 * connect_timeout_ms was cut short; @own_name/@own_ms name the limit that
 * applied otherwise.
 */
static int timed_out(const struct kmip *k, const char *during,
		     const char *own_name, long own_ms, const char *hint,
		     struct cmk_err *e)
{
	uint64_t at = cmk_deadline_get();
	const char *why = cmk_deadline_cancel_reason();

	ERR_clear_error();
	if (why && (!at || cmk_deadline_now_ms() < at))
		return cmk_err_kms(e, CMK_R_TIMEOUT, "kmip %s: cancelled during %s: %s",
				   k->where, during, why);
	if (cmk_deadline_expired() || (k->check_cut && !remaining_ms(k)))
		return cmk_err_kms(e, CMK_R_TIMEOUT,
				   "kmip %s: the check's overall deadline (check_timeout_ms) ran out during %s",
				   k->where, during);
	return cmk_err_kms(e, CMK_R_TIMEOUT,
			   "kmip %s: %s within %s = %ld (stopped during %s)%s", k->where,
			   strcmp(own_name, "timeout_ms") ? "no connection" :
			   "the request did not complete", own_name, own_ms, during, hint);
}

/*
 * poll() @fd for @events for at most @max_ms and the request's deadline,
 * in slices, so the check's deadline and a cancel end it too.  1: ready;
 * 0: time is up (see timed_out()); -1: poll failed (errno).
 */
static int wait_fd(const struct kmip *k, int fd, short events, long max_ms)
{
	long t0 = mono_ms();

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		long left = remaining_ms(k), n;

		if (max_ms - (mono_ms() - t0) < left)
			left = max_ms - (mono_ms() - t0);
		if (left <= 0 || cmk_deadline_expired())
			return 0;
		n = poll(&pfd, 1, (int)(left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS));
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* ---- settings ------------------------------------------------------------ */

/* "host", "host:port", "[v6]", "[v6]:port" */
static int split_server(struct kmip *k, const char *s, struct cmk_err *e)
{
	const char *colon, *h = s, *p = NULL;
	size_t hl;

	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || (rb[1] && rb[1] != ':'))
			goto bad;
		h = s + 1;
		hl = (size_t)(rb - h);
		if (rb[1] == ':')
			p = rb + 2;
	} else {
		colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':'))
			goto bad;	/* bare IPv6: needs brackets */
		hl = colon ? (size_t)(colon - s) : strlen(s);
		if (colon)
			p = colon + 1;
	}
	if (hl == 0 || hl >= sizeof(k->host))
		goto bad;
	memcpy(k->host, h, hl);
	k->host[hl] = '\0';
	if (p) {
		char *end;
		long port;

		errno = 0;
		port = strtol(p, &end, 10);
		if (errno || end == p || *end || port < 1 || port > 65535)
			goto bad;
		snprintf(k->port, sizeof(k->port), "%ld", port);
	} else {
		snprintf(k->port, sizeof(k->port), "%s", CMK_KMIP_PORT);
	}
	snprintf(k->where, sizeof(k->where), "%s%s%s:%s",
		 strchr(k->host, ':') ? "[" : "", k->host,
		 strchr(k->host, ':') ? "]" : "", k->port);
	return 0;
bad:
	return cmk_errf(e, -EINVAL,
			"kmip: server = \"%s\" is not host[:port] (IPv6 as [addr]:port)", s);
}

/* The first OpenSSL error on this thread's queue, as text; clears it. */
static const char *ssl_why(char *buf, size_t len)
{
	unsigned long err = ERR_get_error();

	ERR_clear_error();
	if (!err)
		return "no detail from OpenSSL";
	ERR_error_string_n(err, buf, len);
	return buf;
}

static void conn_close(struct kmip *k)
{
	if (k->ssl) {
		SSL_free(k->ssl);
		k->ssl = NULL;
	}
	if (k->fd >= 0) {
		close(k->fd);
		k->fd = -1;
	}
}

/* The connection's traffic secrets go with it (SSL_free cleanses them). */
static void kmip_reset(void *priv)
{
	conn_close(priv);
}

static void kmip_close(void *priv)
{
	struct kmip *k = priv;

	if (!k)
		return;
	conn_close(k);
	SSL_CTX_free(k->ctx);
	free(k->cert);
	free(k->key);
	free(k->ca);
	free(k);
}

static int dup_setting(char **dst, const char *v, struct cmk_err *e)
{
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : cmk_errf(e, -ENOMEM, "kmip: out of memory");
}

/* An unset setting from the environment variable @name, if that is set. */
static int env_setting(char **dst, const char *name, struct cmk_err *e)
{
	const char *v = cmk_env_nonempty(name);

	if (*dst || !v)
		return 0;
	return dup_setting(dst, v, e);
}

static int make_ctx(struct kmip *k, struct cmk_err *e)
{
	char why[256];

	ERR_clear_error();
	k->ctx = SSL_CTX_new(TLS_client_method());
	if (!k->ctx)
		return cmk_errf(e, -ENOMEM, "kmip: cannot create a TLS context: %s",
				ssl_why(why, sizeof(why)));
	SSL_CTX_set_min_proto_version(k->ctx, TLS1_2_VERSION);
	/* Decrypted records (a Decrypt answer holds the KEK) wiped once read. */
	SSL_CTX_set_options(k->ctx, SSL_OP_CLEANSE_PLAINTEXT);
	SSL_CTX_set_verify(k->ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_use_certificate_chain_file(k->ctx, k->cert) != 1)
		return cmk_errf(e, -EINVAL,
				"kmip: client_cert %s: cannot load a PEM certificate: %s",
				k->cert, ssl_why(why, sizeof(why)));
	if (SSL_CTX_use_PrivateKey_file(k->ctx, k->key, SSL_FILETYPE_PEM) != 1) {
		if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
			ERR_clear_error();
			return cmk_errf(e, -EINVAL,
					"kmip: client_key %s does not belong to client_cert %s",
					k->key, k->cert);
		}
		return cmk_errf(e, -EINVAL,
				"kmip: client_key %s: cannot load a PEM private key: %s",
				k->key, ssl_why(why, sizeof(why)));
	}
	if (SSL_CTX_check_private_key(k->ctx) != 1)
		return cmk_errf(e, -EINVAL,
				"kmip: client_key %s does not belong to client_cert %s",
				k->key, k->cert);
	if (k->ca) {
		if (SSL_CTX_load_verify_locations(k->ctx, k->ca, NULL) != 1)
			return cmk_errf(e, -EINVAL,
					"kmip: ca_bundle %s: cannot load PEM certificates: %s",
					k->ca, ssl_why(why, sizeof(why)));
	} else if (SSL_CTX_set_default_verify_paths(k->ctx) != 1) {
		return cmk_errf(e, -EINVAL, "kmip: cannot load the system CA store: %s",
				ssl_why(why, sizeof(why)));
	}
	return 0;
}

static int kmip_open(const struct cmk_kv *kv, size_t n, void **priv,
		     struct cmk_err *e)
{
	const char *server = NULL, *sname = NULL, *v;
	struct kmip *k;
	int ret = 0;

	k = calloc(1, sizeof(*k));
	if (!k)
		return cmk_errf(e, -ENOMEM, "kmip: out of memory");
	k->fd = -1;
	k->connect_timeout_ms = 5000;
	k->timeout_ms = 10000;
	k->max_attempts = 2;
	for (size_t i = 0; i < n && !ret; i++) {
		const char *key = kv[i].key;
		long x;

		v = kv[i].value;
		if (!strcmp(key, "server"))
			server = v;
		else if (!strcmp(key, "server_name"))
			sname = v;
		else if (!strcmp(key, "client_cert"))
			ret = dup_setting(&k->cert, v, e);
		else if (!strcmp(key, "client_key"))
			ret = dup_setting(&k->key, v, e);
		else if (!strcmp(key, "ca_bundle"))
			ret = dup_setting(&k->ca, v, e);
		else if (!strcmp(key, "connect_timeout_ms"))
			ret = cmk_setting_long("kmip", key, v, 100, 60000, &k->connect_timeout_ms, e);
		else if (!strcmp(key, "timeout_ms"))
			ret = cmk_setting_long("kmip", key, v, 100, 300000, &k->timeout_ms, e);
		else if (!strcmp(key, "max_attempts")) {
			ret = cmk_setting_long("kmip", key, v, 1, 10, &x, e);
			k->max_attempts = (int)x;
		}
	}
	if (ret)
		goto out;
	/* Without settings (cmkctl with no config file): the environment. */
	if (!server)
		server = cmk_env_nonempty("CMK_KMIP_SERVER");
	ret = env_setting(&k->cert, "CMK_KMIP_CLIENT_CERT", e) ||
	      env_setting(&k->key, "CMK_KMIP_CLIENT_KEY", e) ||
	      env_setting(&k->ca, "CMK_KMIP_CA_BUNDLE", e) ? -ENOMEM : 0;
	if (ret)
		goto out;
	if (!server) {
		ret = cmk_errf(e, -EINVAL,
			       "kmip: no server configured (set server = host[:port] or CMK_KMIP_SERVER)");
		goto out;
	}
	if (!k->cert || !k->key) {
		ret = cmk_errf(e, -EINVAL,
			       "kmip: KMIP needs a client certificate: set client_cert and client_key (or CMK_KMIP_CLIENT_CERT/KEY)");
		goto out;
	}
	ret = split_server(k, server, e);
	if (ret)
		goto out;
	snprintf(k->server_name, sizeof(k->server_name), "%s", sname ? sname : k->host);
	/* OpenSSL reads them by path: nobody else may change what they lead to. */
	ret = cmk_check_trusted_file(k->cert, "client_cert", e) ?:
	      cmk_check_trusted_file(k->key, "client_key", e) ?:
	      (k->ca ? cmk_check_trusted_file(k->ca, "ca_bundle", e) : 0);
	if (ret) {
		cmk_err_prefix(e, "kmip");
		goto out;
	}
	ret = make_ctx(k, e);
out:
	if (ret) {
		kmip_close(k);
		return ret;
	}
	*priv = k;
	return 0;
}

/* ---- connection ------------------------------------------------------------ */


/*
 * getaddrinfo() has no timeout (resolv.conf's, 5 s per server and try, can
 * add up to far more than the check's deadline).  A literal address is
 * taken at once; a name is resolved on a thread of its own, waited for
 * within connect_timeout_ms and the request's deadline.  A resolver that
 * does not answer in time is left behind: the thread owns a reference and
 * frees what it resolved when it ends.
 */
struct resolve {
	atomic_int refs;
	atomic_bool done;
	char host[256], port[8];
	int gai;
	struct addrinfo *res;
};

static void resolve_put(struct resolve *r)
{
	if (atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	if (r->res)
		freeaddrinfo(r->res);
	free(r);
}

static void *resolve_run(void *arg)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct resolve *r = arg;

	r->gai = getaddrinfo(r->host, r->port, &hints, &r->res);
	atomic_store(&r->done, true);
	resolve_put(r);
	return NULL;
}

static int resolve(const struct kmip *k, struct addrinfo **res,
		   struct cmk_err *e)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST };
	long t0 = mono_ms();
	struct resolve *r;
	pthread_attr_t at;
	pthread_t t;
	int gai, ret;

	*res = NULL;
	gai = getaddrinfo(k->host, k->port, &hints, res);
	if (gai != EAI_NONAME)
		goto out;
	r = calloc(1, sizeof(*r));
	if (!r)
		return cmk_errf(e, -ENOMEM, "kmip: out of memory");
	atomic_init(&r->refs, 2);
	atomic_init(&r->done, false);
	snprintf(r->host, sizeof(r->host), "%s", k->host);
	snprintf(r->port, sizeof(r->port), "%s", k->port);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&t, &at, resolve_run, r);
	pthread_attr_destroy(&at);
	if (ret) {
		free(r);
		return cmk_err_kms(e, CMK_R_NETWORK, "kmip %s: cannot start a resolver thread: %s",
				   k->where, strerror(ret));
	}
	while (!atomic_load(&r->done) && remaining_ms(k) &&
	       mono_ms() - t0 < k->connect_timeout_ms && !cmk_deadline_expired())
		usleep(10 * 1000);
	if (!atomic_load(&r->done)) {
		resolve_put(r);
		return timed_out(k, "the name lookup (DNS) of the server", "connect_timeout_ms",
				 k->connect_timeout_ms, ": is DNS reachable?", e);
	}
	gai = r->gai;
	*res = r->res;
	r->res = NULL;
	resolve_put(r);
out:
	if (gai)
		return cmk_err_kms(e, CMK_R_NETWORK, "kmip %s: cannot resolve %s: %s",
				   k->where, k->host, gai_strerror(gai));
	return 0;
}

static int tcp_connect(struct kmip *k, struct cmk_err *e)
{
	struct addrinfo *res = NULL, *ai;
	int ret, err = 0, one = 1, n;
	bool waited_out = false;

	ret = resolve(k, &res, e);
	if (ret)
		return ret;
	for (ai = res; ai; ai = ai->ai_next) {
		socklen_t sl = sizeof(err);
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
				SOCK_NONBLOCK, ai->ai_protocol);

		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
			err = errno;
			close(fd);
			continue;
		}
		n = wait_fd(k, fd, POLLOUT, k->connect_timeout_ms);
		if (n < 0) {
			err = errno;
			close(fd);
			continue;
		}
		if (n == 0) {
			err = ETIMEDOUT;
			waited_out = true;
			close(fd);
			if (!remaining_ms(k) || cmk_deadline_expired())
				break;
			continue;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) || err) {
			close(fd);
			continue;
		}
		/* Stays non-blocking: every wait is bounded by the deadline. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		k->fd = fd;
		break;
	}
	freeaddrinfo(res);
	if (k->fd >= 0)
		return 0;
	if (waited_out && err == ETIMEDOUT)
		return timed_out(k, "connect", "connect_timeout_ms", k->connect_timeout_ms,
				 ": is the KMIP server up and reachable?", e);
	return cmk_err_kms(e, CMK_R_NETWORK,
			   "kmip %s: cannot connect: %s: is the KMIP server running?",
			   k->where, strerror(err ? err : ECONNREFUSED));
}

static bool is_ip(const char *h)
{
	unsigned char b[16];

	return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

/*
 * What went wrong in a TLS call, with advice: the server's alert when it
 * refused us (usually our certificate), or why we refused the server.
 */
static int tls_error(struct kmip *k, const char *during, int ssl_err,
		     struct cmk_err *e)
{
	int sys = errno;
	unsigned long err = ERR_peek_error();
	char why[256];
	long vr = k->ssl ? SSL_get_verify_result(k->ssl) : X509_V_OK;
	const char *reason;

	if ((ssl_err == SSL_ERROR_SYSCALL &&
	     (sys == EAGAIN || sys == EWOULDBLOCK)) ||
	    ssl_err == SSL_ERROR_WANT_READ || ssl_err == SSL_ERROR_WANT_WRITE)
		return timed_out(k, during, "timeout_ms", k->timeout_ms, "", e);
	if (ssl_err == SSL_ERROR_SYSCALL && (!err || ERR_GET_LIB(err) == ERR_LIB_SYS)) {
		ERR_clear_error();
		return cmk_err_kms(e, CMK_R_NETWORK,
				   "kmip %s: connection lost during %s: %s", k->where,
				   during, sys ? strerror(sys) : "closed by the server");
	}
	if (ssl_err == SSL_ERROR_ZERO_RETURN) {
		ERR_clear_error();
		return cmk_err_kms(e, CMK_R_NETWORK,
				   "kmip %s: the server closed the connection during %s",
				   k->where, during);
	}
	if (vr != X509_V_OK) {
		ERR_clear_error();
		return cmk_err_kms(e, CMK_R_NETWORK,
				   "kmip %s: the server's certificate is not trusted (%s): check ca_bundle and server_name (%s)",
				   k->where, X509_verify_cert_error_string(vr),
				   k->server_name);
	}
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
	/* OpenSSL 3: the peer closed without a TLS alert (or a proxy did). */
	if (err && ERR_GET_LIB(err) == ERR_LIB_SSL &&
	    ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		ERR_clear_error();
		return cmk_err_kms(e, CMK_R_NETWORK,
				   "kmip %s: connection closed during %s: is the KMIP server running and reachable?",
				   k->where, during);
	}
#endif
	reason = err ? ERR_reason_error_string(err) : NULL;
	ssl_why(why, sizeof(why));
	if (!reason || !*reason)
		reason = why;
	if (strstr(reason, "alert"))
		return cmk_err_kms(e, CMK_R_NETWORK,
				   "kmip %s: the server refused the TLS session during %s (%s): check client_cert %s (issuer trusted by the server, validity, extended key usage clientAuth)",
				   k->where, during, reason, k->cert);
	return cmk_err_kms(e, CMK_R_NETWORK, "kmip %s: TLS failed during %s: %s",
			   k->where, during, reason);
}

/*
 * After an SSL call that did not complete: wait (within the deadline) for
 * the socket when OpenSSL wants to read or write, else the error.
 */
static int tls_wait(struct kmip *k, const char *during, int ssl_err,
		    struct cmk_err *e)
{
	int n;

	if (ssl_err != SSL_ERROR_WANT_READ && ssl_err != SSL_ERROR_WANT_WRITE)
		return tls_error(k, during, ssl_err, e);
	n = wait_fd(k, k->fd, ssl_err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
		    k->timeout_ms);
	if (n > 0)
		return 0;
	if (n < 0)
		return cmk_err_kms(e, CMK_R_NETWORK, "kmip %s: waiting during %s: %s",
				   k->where, during, strerror(errno));
	return timed_out(k, during, "timeout_ms", k->timeout_ms, "", e);
}

static int tls_connect(struct kmip *k, struct cmk_err *e)
{
	X509_VERIFY_PARAM *vp;
	int ret, r;

	ret = tcp_connect(k, e);
	if (ret)
		return ret;
	/*
	 * The handshake's random and key share: fresh after a VM clone.
	 * After the connect, which may wait for seconds (a clone taken then
	 * still reseeds).
	 */
	ret = cmk_random_reseed_openssl("kmip: TLS handshake", e);
	if (ret) {
		conn_close(k);
		return ret;
	}
	ERR_clear_error();
	k->ssl = SSL_new(k->ctx);
	if (!k->ssl || SSL_set_fd(k->ssl, k->fd) != 1) {
		conn_close(k);
		return cmk_errf(e, -ENOMEM, "kmip: out of memory");
	}
	vp = SSL_get0_param(k->ssl);
	if (is_ip(k->server_name)) {
		r = X509_VERIFY_PARAM_set1_ip_asc(vp, k->server_name);
	} else {
		r = SSL_set1_host(k->ssl, k->server_name) &&
		    SSL_set_tlsext_host_name(k->ssl, k->server_name);
	}
	if (r != 1) {
		conn_close(k);
		return cmk_errf(e, -EINVAL, "kmip: server_name \"%s\" is not usable",
				k->server_name);
	}
	while ((r = SSL_connect(k->ssl)) != 1) {
		ret = tls_wait(k, "the TLS handshake", SSL_get_error(k->ssl, r), e);
		if (ret) {
			conn_close(k);
			return ret;
		}
	}
	return 0;
}

static int write_all(struct kmip *k, const unsigned char *p, size_t n,
		     struct cmk_err *e)
{
	while (n) {
		size_t w = 0;
		int r = SSL_write_ex(k->ssl, p, n, &w), ret;

		if (r != 1) {
			ret = tls_wait(k, "sending", SSL_get_error(k->ssl, r), e);
			if (ret)
				return ret;
			continue;
		}
		p += w;
		n -= w;
	}
	return 0;
}

static int read_all(struct kmip *k, unsigned char *p, size_t n,
		    struct cmk_err *e)
{
	while (n) {
		size_t got = 0;
		int r = SSL_read_ex(k->ssl, p, n, &got), ret;

		if (r != 1) {
			ret = tls_wait(k, "receiving", SSL_get_error(k->ssl, r), e);
			if (ret)
				return ret;
			continue;
		}
		p += got;
		n -= got;
	}
	return 0;
}

static const char *op_name(uint32_t op)
{
	switch (op) {
	case KMIP_OP_LOCATE: return "Locate";
	case KMIP_OP_GET_ATTRIBUTES: return "Get Attributes";
	case KMIP_OP_DISCOVER_VERSIONS: return "Discover Versions";
	case KMIP_OP_ENCRYPT: return "Encrypt";
	case KMIP_OP_DECRYPT: return "Decrypt";
	default: return "(operation)";
	}
}

/*
 * One request/response on the open connection.  The response goes into a
 * new secret *@rbuf (it may hold a KEK) and is parsed into @r.
 */
static int exchange(struct kmip *k, const unsigned char *req, size_t reqn,
		    uint32_t op, struct cmk_secret **rbuf,
		    struct cmk_kmip_resp *r, struct cmk_err *e)
{
	unsigned char hdr[CMK_TTLV_HDR];
	size_t total;
	int ret;

	ret = write_all(k, req, reqn, e);
	if (!ret)
		ret = read_all(k, hdr, sizeof(hdr), e);
	if (ret)
		return ret;
	if (cmk_ttlv_frame_len(hdr, KMIP_MSG_MAX, &total))
		return cmk_err_kms(e, CMK_R_UNAVAILABLE,
				   "kmip %s %s: the answer is not a KMIP message (or larger than %d bytes)",
				   k->where, op_name(op), KMIP_MSG_MAX);
	ret = cmk_secret_new(rbuf, total, e);
	if (ret)
		return ret;
	memcpy(cmk_secret_data(*rbuf), hdr, sizeof(hdr));
	ret = read_all(k, cmk_secret_data(*rbuf) + sizeof(hdr),
		       total - sizeof(hdr), e);
	if (ret)
		return ret;
	ret = cmk_kmip_parse_response(cmk_secret_cdata(*rbuf), total, op, r);
	if (ret)
		return cmk_err_kms(e, CMK_R_UNAVAILABLE,
				   "kmip %s %s: %s", k->where, op_name(op),
				   ret == -EPROTO ? "the answer is for another operation" :
				   "the answer is not a well-formed KMIP response");
	return 0;
}

/* A request whose encoding failed: too large (or a bug). */
static int enc_done(struct cmk_ttlv_enc *w, size_t *len, uint32_t op,
		    struct cmk_err *e)
{
	if (cmk_ttlv_enc_finish(w, len))
		return cmk_errf(e, -EOVERFLOW, "kmip: the %s request does not fit in %d bytes",
				op_name(op), KMIP_MSG_MAX);
	return 0;
}

static int negotiate(struct kmip *k, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *rbuf = NULL;
	struct cmk_kmip_version got[8], hdr = { 1, 2 };
	struct cmk_kmip_resp r;
	unsigned char req[512];
	struct cmk_ttlv_enc w;
	size_t len, n;
	int ret;

	cmk_ttlv_enc_init(&w, req, sizeof(req));
	cmk_kmip_req_discover(&w, hdr, offered, sizeof(offered) / sizeof(offered[0]));
	ret = enc_done(&w, &len, KMIP_OP_DISCOVER_VERSIONS, e);
	if (!ret)
		ret = exchange(k, req, len, KMIP_OP_DISCOVER_VERSIONS, &rbuf, &r, e);
	if (ret)
		return ret;
	/*
	 * The first request of a session is where a server refuses the
	 * client's identity (PyKMIP: Authentication Not Successful for a
	 * certificate without clientAuth).
	 */
	if (r.status != KMIP_STATUS_SUCCESS)
		return cmk_err_kms(e, cmk_kmip_classify(r.status, r.reason),
				   "kmip %s Discover Versions: %s%s%s%s", k->where,
				   cmk_kmip_reason_name(r.reason),
				   r.message[0] ? ": " : "", r.message,
				   r.reason == KMIP_RR_AUTH_NOT_SUCCESSFUL ||
				   r.reason == KMIP_RR_PERMISSION_DENIED ?
				   " (check client_cert: extended key usage clientAuth, and the server's access rules)" : "");
	if (cmk_kmip_discover_result(&r, got, 8, &n))
		return cmk_err_kms(e, CMK_R_UNAVAILABLE,
				   "kmip %s Discover Versions: malformed answer", k->where);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < sizeof(offered) / sizeof(offered[0]); j++)
			if (got[i].major == offered[j].major &&
			    got[i].minor == offered[j].minor) {
				k->ver = got[i];
				return 0;
			}
	return cmk_errf(e, -EPROTONOSUPPORT,
			"kmip %s: the server speaks none of KMIP 1.4, 1.3, 1.2", k->where);
}

static int ensure_conn(struct kmip *k, struct cmk_err *e)
{
	int ret;

	if (k->ssl)
		return 0;
	ret = tls_connect(k, e);
	if (!ret && !k->ver.major)
		ret = negotiate(k, e);
	if (ret)
		conn_close(k);
	return ret;
}

/*
 * call() - encode with @build, send, receive, with one reconnect when the
 * connection was found broken (servers close idle ones).  KMIP errors
 * come back as r->status, not as a failure of call().
 */
typedef void (*build_fn)(struct cmk_ttlv_enc *w, struct cmk_kmip_version v,
			 const void *arg);

static int call_once(struct kmip *k, uint32_t op, build_fn build,
		     const void *arg, size_t req_cap, struct cmk_secret **rbuf,
		     struct cmk_kmip_resp *r, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *req = NULL;
	struct cmk_ttlv_enc w;
	size_t len;
	int ret = 0;

	for (int attempt = 1; attempt <= k->max_attempts; attempt++) {
		bool fresh = !k->ssl;

		cmk_secret_free(rbuf);
		ret = ensure_conn(k, e);
		if (ret) {
			if (e->cls == CMK_EC_LOCAL)
				return ret;
			continue;
		}
		if (!req) {
			ret = cmk_secret_new(&req, req_cap, e);
			if (ret)
				return ret;
		}
		cmk_ttlv_enc_init(&w, cmk_secret_data(req), req_cap);
		build(&w, k->ver, arg);
		ret = enc_done(&w, &len, op, e);
		if (ret)
			return ret;
		ret = exchange(k, cmk_secret_cdata(req), len, op, rbuf, r, e);
		if (!ret)
			return 0;
		conn_close(k);
		/* A fresh connection that failed will not do better at once. */
		if (fresh && e->reason != CMK_R_NETWORK)
			break;
	}
	cmk_secret_free(rbuf);
	return ret;
}

/*
 * Writing to a connection the server closed raises SIGPIPE, in SSL_write
 * and in the alerts OpenSSL sends from SSL_read or SSL_connect: block it
 * for the whole call and swallow one that became pending.
 */
static int call(struct kmip *k, uint32_t op, build_fn build, const void *arg,
		size_t req_cap, struct cmk_secret **rbuf,
		struct cmk_kmip_resp *r, struct cmk_err *e)
{
	struct timespec zero = { 0, 0 };
	sigset_t pipe_set, pending, old;
	int ret;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	/* Within the whole check's deadline too (deadline.h). */
	{
		long own = cmk_deadline_clamp_ms(k->timeout_ms);

		k->deadline_ms = mono_ms() + own;
		k->check_cut = own < k->timeout_ms;
	}
	ret = call_once(k, op, build, arg, req_cap, rbuf, r, e);
	if (!sigismember(&old, SIGPIPE)) {
		sigpending(&pending);
		if (sigismember(&pending, SIGPIPE))
			sigtimedwait(&pipe_set, NULL, &zero);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	return ret;
}

/* ---- operations -------------------------------------------------------------- */

static void build_locate(struct cmk_ttlv_enc *w, struct cmk_kmip_version v,
			 const void *arg)
{
	cmk_kmip_req_locate(w, v, arg);
}

static void build_state(struct cmk_ttlv_enc *w, struct cmk_kmip_version v,
			const void *arg)
{
	cmk_kmip_req_get_state(w, v, arg);
}

struct crypt_arg {
	const char *uid;
	const unsigned char *data;
	size_t datan;
	const unsigned char *iv, *tag;
	const unsigned char *aad;
	size_t aadn;
};

static void build_encrypt(struct cmk_ttlv_enc *w, struct cmk_kmip_version v,
			  const void *arg)
{
	const struct crypt_arg *a = arg;

	cmk_kmip_req_encrypt(w, v, a->uid, a->data, a->datan, a->iv,
			     CMK_KMIP_IV_LEN, a->aad, a->aadn, CMK_KMIP_TAG_LEN);
}

static void build_decrypt(struct cmk_ttlv_enc *w, struct cmk_kmip_version v,
			  const void *arg)
{
	const struct crypt_arg *a = arg;

	cmk_kmip_req_decrypt(w, v, a->uid, a->data, a->datan, a->iv,
			     CMK_KMIP_IV_LEN, a->aad, a->aadn, a->tag,
			     CMK_KMIP_TAG_LEN);
}

/* An error answer -> message and class; "what to do" in the message. */
static int kmip_error(struct kmip *k, uint32_t op, const char *name,
		      const char *uid, const struct cmk_kmip_resp *r,
		      struct cmk_err *e)
{
	enum cmk_reason why = cmk_kmip_classify(r->status, r->reason);

	return cmk_err_kms(e, why, "kmip %s %s %s%s%s: %s%s%s", k->where,
			   op_name(op), name, uid ? " uid " : "", uid ? uid : "",
			   r->status == KMIP_STATUS_FAILED ?
			   cmk_kmip_reason_name(r->reason) : "operation not completed",
			   r->message[0] ? ": " : "", r->message);
}

static int check_ref(const char *key_ref, struct cmk_err *e)
{
	if (!key_ref || !*key_ref)
		return cmk_errf(e, -EINVAL,
				"kmip: empty key reference; give the Name of the key on the KMIP server");
	if (strlen(key_ref) > 255)
		return cmk_errf(e, -EINVAL, "kmip: key name longer than 255 bytes");
	return 0;
}

static int locate(struct kmip *k, const char *name, char uid[CMK_KMIP_UID_MAX],
		  struct cmk_kms_call *c, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *rbuf = NULL;
	struct cmk_kmip_resp r;
	size_t count;
	int ret;

	ret = call(k, KMIP_OP_LOCATE, build_locate, name, 1024, &rbuf, &r, e);
	if (ret)
		return ret;
	if (r.status != KMIP_STATUS_SUCCESS)
		return kmip_error(k, KMIP_OP_LOCATE, name, NULL, &r, e);
	if (cmk_kmip_locate_result(&r, uid, &count))
		return cmk_err_kms(e, CMK_R_UNAVAILABLE,
				   "kmip %s Locate %s: malformed answer", k->where, name);
	if (count == 0)
		return cmk_err_kms(e, CMK_R_NOT_FOUND,
				   "kmip %s Locate %s: no key with this Name (destroyed, never created, or not visible to this client certificate)",
				   k->where, name);
	if (count > 1)
		return cmk_errf(e, -ENOTUNIQ,
				"kmip %s Locate %s: %zu keys have this Name; give each CMK a unique Name",
				k->where, name, count);
	if (c)
		snprintf(c->request_id, sizeof(c->request_id), "kmip-uid-%s", uid);
	return 0;
}

/*
 * Permission Denied on a key: ask for its State, to tell a revoked or
 * destroyed key (the owner said no) from an access policy (also no).
 */
static int refine_denied(struct kmip *k, uint32_t op, const char *name,
			 const char *uid, const struct cmk_kmip_resp *r,
			 struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *rbuf = NULL;
	struct cmk_kmip_resp sr;
	struct cmk_err tmp;
	uint32_t state = 0;
	enum cmk_reason why;

	if (call(k, KMIP_OP_GET_ATTRIBUTES, build_state, uid, 1024, &rbuf, &sr,
		 &tmp) == 0 && sr.status == KMIP_STATUS_SUCCESS &&
	    cmk_kmip_state_result(&sr, &state) == 0) {
		why = cmk_kmip_state_reason(state);
		return cmk_err_kms(e, why, "kmip %s %s %s uid %s: %s%s%s (key state %s)",
				   k->where, op_name(op), name, uid,
				   cmk_kmip_reason_name(r->reason),
				   r->message[0] ? ": " : "", r->message,
				   cmk_kmip_state_name(state));
	}
	return kmip_error(k, op, name, uid, r, e);
}

/*
 * The key owner said no (revoked, denied, destroyed, not found): close the
 * connection.  Its TLS session keys could decrypt every KEK that went over
 * it, and the next call proves itself on a fresh session anyway.
 */
static void drop_if_refused(struct kmip *k, int ret, const struct cmk_err *e)
{
	if (ret && e->cls == CMK_EC_DEFINITIVE)
		conn_close(k);
}

static int aad_of(const struct cmk_encctx *ctx, unsigned char **aad,
		  size_t *aadn, struct cmk_err *e)
{
	struct cmk_encctx empty;

	cmk_encctx_init(&empty);
	return cmk_encctx_canonical(ctx ? ctx : &empty, aad, aadn, e);
}

static int need_14(struct kmip *k, const char *op, struct cmk_err *e)
{
	if (k->ver.major > 1 || (k->ver.major == 1 && k->ver.minor >= 4))
		return 0;
	return cmk_errf(e, -EPROTONOSUPPORT,
			"kmip %s %s: the server speaks KMIP %d.%d; AES-GCM with additional data (the encryption context) needs KMIP 1.4",
			k->where, op, k->ver.major, k->ver.minor);
}

static int kmip_wrap(void *priv, const char *key_ref,
		     const struct cmk_secret *plain, const struct cmk_encctx *ctx,
		     unsigned char **wrapped, size_t *wrapped_len,
		     struct cmk_kms_call *c, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *rbuf = NULL;
	struct kmip *k = priv;
	unsigned char iv[CMK_KMIP_IV_LEN], *aad = NULL, *out;
	const unsigned char *ct, *riv, *tag;
	size_t aadn = 0, ctn, rivn, tagn, n = cmk_secret_len(plain);
	char uid[CMK_KMIP_UID_MAX];
	struct cmk_kmip_resp r;
	struct crypt_arg a;
	struct cmk_err scratch;
	int ret;

	if (!e)
		e = &scratch;
	ret = check_ref(key_ref, e);
	if (ret)
		return ret;
	if (n == 0 || n > 4096)
		return cmk_errf(e, -EINVAL, "kmip: Encrypt takes 1..4096 bytes");
	/* getrandom(), not OpenSSL's DRBG that two clones of a VM share */
	ret = cmk_random_fill(iv, sizeof(iv), "kmip: the Encrypt IV", e);
	if (ret)
		return ret;
	ret = aad_of(ctx, &aad, &aadn, e);
	if (ret)
		return ret;
	ret = locate(k, key_ref, uid, c, e);
	if (!ret)
		ret = need_14(k, "Encrypt", e);
	if (ret)
		goto out;
	a = (struct crypt_arg){ uid, cmk_secret_cdata(plain), n, iv, NULL, aad, aadn };
	ret = call(k, KMIP_OP_ENCRYPT, build_encrypt, &a, 1024 + n + aadn,
		   &rbuf, &r, e);
	if (ret)
		goto out;
	if (r.status != KMIP_STATUS_SUCCESS) {
		ret = r.reason == KMIP_RR_PERMISSION_DENIED ?
		      refine_denied(k, KMIP_OP_ENCRYPT, key_ref, uid, &r, e) :
		      kmip_error(k, KMIP_OP_ENCRYPT, key_ref, uid, &r, e);
		goto out;
	}
	if (cmk_kmip_encrypt_result(&r, &ct, &ctn, &riv, &rivn, &tag, &tagn) ||
	    ctn != n || tagn != CMK_KMIP_TAG_LEN ||
	    (riv && (rivn != sizeof(iv) || memcmp(riv, iv, sizeof(iv))))) {
		ret = cmk_err_kms(e, CMK_R_UNAVAILABLE,
				  "kmip %s Encrypt %s: the answer lacks the ciphertext or a %d-byte tag, or used another IV",
				  k->where, key_ref, CMK_KMIP_TAG_LEN);
		goto out;
	}
	out = malloc(sizeof(iv) + ctn + tagn);
	if (!out) {
		ret = cmk_errf(e, -ENOMEM, "kmip: out of memory");
		goto out;
	}
	memcpy(out, iv, sizeof(iv));
	memcpy(out + sizeof(iv), ct, ctn);
	memcpy(out + sizeof(iv) + ctn, tag, tagn);
	*wrapped = out;
	*wrapped_len = sizeof(iv) + ctn + tagn;
out:
	drop_if_refused(k, ret, e);
	free(aad);
	return ret;
}

static int kmip_unwrap(void *priv, const char *key_ref,
		       const unsigned char *wrapped, size_t wrapped_len,
		       const struct cmk_encctx *ctx, struct cmk_secret **plain,
		       struct cmk_kms_call *c, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *rbuf = NULL;
	struct kmip *k = priv;
	unsigned char *aad = NULL;
	const unsigned char *pt;
	size_t aadn = 0, ptn;
	char uid[CMK_KMIP_UID_MAX];
	struct cmk_kmip_resp r;
	struct crypt_arg a;
	struct cmk_err scratch;
	int ret;

	if (!e)
		e = &scratch;
	ret = check_ref(key_ref, e);
	if (ret)
		return ret;
	if (wrapped_len < CMK_KMIP_IV_LEN + 1 + CMK_KMIP_TAG_LEN ||
	    wrapped_len > CMK_KMIP_IV_LEN + 4096 + CMK_KMIP_TAG_LEN)
		return cmk_errf(e, -EINVAL,
				"kmip: a wrapped KEK is IV (12) || ciphertext || tag (16); %zu bytes is not one",
				wrapped_len);
	ret = aad_of(ctx, &aad, &aadn, e);
	if (ret)
		return ret;
	ret = locate(k, key_ref, uid, c, e);
	if (!ret)
		ret = need_14(k, "Decrypt", e);
	if (ret)
		goto out;
	a = (struct crypt_arg){
		uid, wrapped + CMK_KMIP_IV_LEN,
		wrapped_len - CMK_KMIP_IV_LEN - CMK_KMIP_TAG_LEN, wrapped,
		wrapped + wrapped_len - CMK_KMIP_TAG_LEN, aad, aadn,
	};
	ret = call(k, KMIP_OP_DECRYPT, build_decrypt, &a, 1024 + wrapped_len + aadn,
		   &rbuf, &r, e);
	if (ret)
		goto out;
	if (r.status != KMIP_STATUS_SUCCESS) {
		ret = r.reason == KMIP_RR_PERMISSION_DENIED ?
		      refine_denied(k, KMIP_OP_DECRYPT, key_ref, uid, &r, e) :
		      kmip_error(k, KMIP_OP_DECRYPT, key_ref, uid, &r, e);
		goto out;
	}
	if (cmk_kmip_decrypt_result(&r, &pt, &ptn) ||
	    ptn != a.datan) {
		ret = cmk_err_kms(e, CMK_R_UNAVAILABLE,
				  "kmip %s Decrypt %s: the answer has no plaintext of the expected length",
				  k->where, key_ref);
		goto out;
	}
	ret = cmk_secret_new(plain, ptn, e);
	if (!ret)
		memcpy(cmk_secret_data(*plain), pt, ptn);
out:
	drop_if_refused(k, ret, e);
	free(aad);
	return ret;
}

const struct cmk_provider_ops cmk_provider_kmip_ops = {
	.name = "kmip",
	.settings = kmip_settings,
	.wrapped_kek_min = CMK_KMIP_IV_LEN + 1 + CMK_KMIP_TAG_LEN,
	.wrapped_kek_max = CMK_KMIP_IV_LEN + 4096 + CMK_KMIP_TAG_LEN,
	.open = kmip_open,
	.close = kmip_close,
	.wrap = kmip_wrap,
	.unwrap = kmip_unwrap,
	.reset = kmip_reset,
};
