// SPDX-License-Identifier: GPL-2.0
/*
 * http.c - libcurl wrapper with timeouts and jittered retries (see http.h).
 */
#include "kms/http.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "core/cleanse_alloc.h"
#include "core/deadline.h"
#include "core/random.h"
#include "kms/provider_settings.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_ret = -EIO;
static const char *curl_init_why = "not initialised";

/* This thread's cap on attempts of KMS requests (0: none). */
static __thread int tl_max_attempts;
/* The Retry-After of this thread's last answer, in ms (0: none). */
static __thread unsigned int tl_retry_after_ms;
/* This thread's last answer came from a KMS-use URL (not metadata). */
static __thread bool tl_answer_from_kms;

/*
 * libcurl copies what we send and receive into buffers of its own: the
 * request head (bearer tokens, SigV4 signatures, IMDS session tokens), the
 * receive buffer (a KEK in a KMS answer, tokens in a token answer).  Every
 * one of them is allocated through these functions and wiped when freed.
 * libcurl takes them only if nothing initialised it before (then it says
 * CURLE_OK and keeps its own): check that it really allocates through them.
 */
static void curl_init(void)
{
	unsigned long before;
	char *probe;

	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, cmk_cleanse_malloc,
				 cmk_cleanse_free, cmk_cleanse_realloc,
				 cmk_cleanse_strdup, cmk_cleanse_calloc) != CURLE_OK) {
		curl_init_why = "curl_global_init_mem failed";
		return;
	}
	before = cmk_cleanse_allocs();
	probe = curl_easy_escape(NULL, "a b", 3);
	if (!probe) {
		curl_init_why = "out of memory";
		return;
	}
	if (cmk_cleanse_allocs() == before) {
		/* libcurl's free() for libcurl's block: ours are not in use. */
		curl_free(probe);
		curl_init_why = "libcurl was initialised before it could be given the allocators that wipe its buffers (a library in this process called curl_global_init first)";
		return;
	}
	curl_free(probe);
	curl_init_ret = 0;
}

int cmk_http_global_init(struct cmk_err *e)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_ret)
		return cmk_errf(e, curl_init_ret, "http: libcurl: %s; refusing to send credentials or key material through it",
				curl_init_why);
	return 0;
}

/*
 * OpenSSL decrypts a TLS record in place and keeps the plaintext in its
 * read buffer until the next record overwrites it: have it wiped as soon
 * as libcurl has taken the bytes.
 *
 * libcurl calls this on the thread of curl_easy_perform(), for each new
 * TLS connection, after DNS and TCP and right before the handshake: the
 * place to reseed this thread's DRBGs, so the client random and key share
 * are fresh after a VM clone (random.h).  A reused connection has no
 * handshake and no reseed.
 */
static CURLcode on_ssl_ctx(CURL *c, void *ssl_ctx, void *arg)
{
	struct cmk_http_response *resp = arg;
	struct cmk_err e;

	(void)c;
	SSL_CTX_set_options(ssl_ctx, SSL_OP_CLEANSE_PLAINTEXT);
	resp->tls_reseed_err = cmk_random_reseed_openssl("http: TLS handshake", &e);
	return resp->tls_reseed_err ? CURLE_SSL_CONNECT_ERROR : CURLE_OK;
}

/* Append to a buffer that may hold secrets: wipe the old one on regrowth. */
static int grow_append(char **buf, size_t *len, size_t *cap, const char *d,
		       size_t n, size_t max)
{
	if (*len + n + 1 > max)
		return -1;
	if (*len + n + 1 > *cap) {
		size_t nc = *cap ? *cap : 1024;
		char *nb;

		while (nc < *len + n + 1)
			nc *= 2;
		nb = malloc(nc);
		if (!nb)
			return -1;
		if (*buf) {
			memcpy(nb, *buf, *len);
			OPENSSL_cleanse(*buf, *cap);
			free(*buf);
		}
		*buf = nb;
		*cap = nc;
	}
	memcpy(*buf + *len, d, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

static size_t on_body(char *d, size_t sz, size_t nm, void *arg)
{
	struct cmk_http_response *r = arg;

	if (r->sink && r->status >= 200 && r->status <= 299) {
		int err = r->sink(d, sz * nm, r->sink_arg);

		if (err) {
			r->sink_err = err;
			return 0;
		}
		r->sunk += sz * nm;
		return sz * nm;
	}
	if (r->body_len + sz * nm + 1 > r->max_body) {
		r->too_large = true;
		return 0;	/* makes curl fail with CURLE_WRITE_ERROR */
	}
	if (grow_append(&r->body, &r->body_len, &r->body_cap, d, sz * nm,
			r->max_body))
		return 0;
	return sz * nm;
}

static size_t on_header(char *d, size_t sz, size_t nm, void *arg)
{
	struct cmk_http_response *r = arg;
	size_t n = sz * nm;

	/* A new status line (after 100 Continue, or a retry) starts over. */
	if (n >= 5 && memcmp(d, "HTTP/", 5) == 0) {
		const char *sp = memchr(d, ' ', n);

		r->hdrs_len = 0;
		/* on_body() sends a 2xx body to the request's sink */
		r->status = sp && sp + 4 <= d + n ? strtol(sp + 1, NULL, 10) : 0;
	}
	if (grow_append(&r->hdrs, &r->hdrs_len, &r->hdrs_cap, d, n,
			CMK_HTTP_MAX_HEADERS))
		return 0;
	return n;
}

const char *cmk_http_header(const struct cmk_http_response *r,
			    const char *name, char *buf, size_t len)
{
	size_t nl = strlen(name);
	const char *p = r->hdrs;

	if (!p || !len)
		return NULL;
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);

		if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *end = p + ll;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			while (end > v && (end[-1] == '\r' || end[-1] == ' ' ||
					   end[-1] == '\t'))
				end--;
			if ((size_t)(end - v) >= len)
				return NULL;
			memcpy(buf, v, (size_t)(end - v));
			buf[end - v] = '\0';
			return buf;
		}
		if (!eol)
			break;
		p = eol + 1;
	}
	return NULL;
}

void cmk_http_response_free(struct cmk_http_response *r)
{
	if (r->body) {
		OPENSSL_cleanse(r->body, r->body_cap);
		free(r->body);
	}
	if (r->hdrs) {
		OPENSSL_cleanse(r->hdrs, r->hdrs_cap);
		free(r->hdrs);
	}
	memset(r, 0, sizeof(*r));
}

void cmk_http_thread_max_attempts(int n)
{
	tl_max_attempts = n > 0 ? n : 0;
}

unsigned int cmk_http_retry_after_ms(void)
{
	return tl_retry_after_ms;
}

bool cmk_http_last_answer_from_kms(void)
{
	return tl_answer_from_kms;
}

void cmk_http_last_answer_forget(void)
{
	tl_retry_after_ms = 0;
	tl_answer_from_kms = false;
}

/* The longest Retry-After taken from an answer. */
#define RETRY_AFTER_MAX_MS	86400000u

/* Retry-After: delta-seconds or an HTTP-date (RFC 9110 10.2.3); 0 if none. */
static unsigned int retry_after(const struct cmk_http_response *r)
{
	char v[64];
	char *end;
	unsigned long sec;
	time_t at, now;

	if (!cmk_http_header(r, "Retry-After", v, sizeof(v)) || !v[0])
		return 0;
	if (v[0] >= '0' && v[0] <= '9') {
		errno = 0;
		sec = strtoul(v, &end, 10);
		if (*end || errno)
			return 0;
		return sec >= RETRY_AFTER_MAX_MS / 1000 ? RETRY_AFTER_MAX_MS :
							(unsigned int)sec * 1000;
	}
	at = curl_getdate(v, NULL);
	now = time(NULL);
	if (at <= now)
		return 0;
	return at - now >= (time_t)(RETRY_AFTER_MAX_MS / 1000) ? RETRY_AFTER_MAX_MS :
								 (unsigned int)(at - now) * 1000;
}

/* ---- one connection across checks ------------------------------------------ */

/*
 * Connections live in one libcurl share (CURL_LOCK_DATA_CONNECT), not in
 * an easy handle: every request still gets a fresh easy handle, freed (and
 * its buffers wiped, cleanse_alloc.h) when it ends, so no KMS answer stays
 * in a handle between checks; only the TLS connection (its keys and
 * ciphertext buffers; OpenSSL wipes plaintext once read) stays, for the
 * next check to reuse.  cmk_http_drop_connections() retires the share:
 * it is cleaned up (its connections closed) by whoever uses it last.
 */
static pthread_mutex_t share_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t share_data_mu[CURL_LOCK_DATA_LAST];
static pthread_once_t share_data_once = PTHREAD_ONCE_INIT;
static CURLSH *share;
static unsigned int share_users;
static bool share_retired;
/* The VM-fork epoch and process the share's connections were made in. */
static int64_t share_epoch;
static pid_t share_pid;
static cmk_http_epoch_fn epoch_fn;
static void *epoch_arg;

/*
 * The sockets of the share's connections.  A share retired because the
 * VM-fork epoch moved holds the parent VM's TLS sessions: closing them
 * the usual way sends a close_notify alert, one record under the parent's
 * keys and nonces.  As soon as the share is retired for that, each socket
 * is replaced (dup2) by an unconnected one, also under a transfer still
 * running on it, so the alert goes nowhere and libcurl closes what it
 * believes is its socket; where that cannot be done, the socket is shut
 * down, so the alert fails to send.
 *
 * So only a socket in this table may be kept.  An attempt keeps its
 * connection only if it could reserve SHARE_SOCKS_PER_ATTEMPT slots
 * first (the most it holds at once: one IPv4 and one IPv6 connect under
 * happy eyeballs); otherwise it runs outside the share, and its
 * connection is closed when it ends, as with an unknown epoch.  A full
 * table costs a handshake, never the request.
 */
#define SHARE_SOCKS_MAX 32
#define SHARE_SOCKS_PER_ATTEMPT 2
/* Its own lock: libcurl closes sockets from inside curl_share_cleanup(). */
static pthread_mutex_t socks_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	curl_socket_t fd;
	CURLSH *sh;
} share_socks[SHARE_SOCKS_MAX];
static unsigned int n_share_socks;
/* Slots promised to attempts under way, not yet filled (socks_mu). */
static unsigned int n_share_reserved;

/* One attempt's use of the share (CURLOPT_OPENSOCKETDATA). */
struct share_attempt {
	CURLSH *sh;		/* NULL: this attempt keeps nothing */
	unsigned int reserved;	/* its slots not yet filled */
	bool untracked;		/* it opened a socket past its reservation */
};
static bool share_forked;	/* retired for a VM-fork epoch change */

static void share_data_init(void)
{
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&share_data_mu[i], NULL);
}

static void share_lock(CURL *c, curl_lock_data d, curl_lock_access a, void *u)
{
	(void)c;
	(void)a;
	(void)u;
	pthread_mutex_lock(&share_data_mu[d]);
}

static void share_unlock(CURL *c, curl_lock_data d, void *u)
{
	(void)c;
	(void)u;
	pthread_mutex_unlock(&share_data_mu[d]);
}

static CURLSH *share_new(void)
{
	CURLSH *sh;

	pthread_once(&share_data_once, share_data_init);
	sh = curl_share_init();
	if (!sh)
		return NULL;
	if (curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK) {
		curl_share_cleanup(sh);
		return NULL;
	}
	return sh;
}

/* Point @sh's sockets at nothing (see above). */
static void share_mute(CURLSH *sh)
{
	pthread_mutex_lock(&socks_mu);
	for (unsigned int i = 0; i < n_share_socks; i++) {
		int nfd;

		if (share_socks[i].sh != sh)
			continue;
		nfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		/*
		 * No fd to spare, or no dup2: shut it, an alert then fails
		 * (EPIPE) instead of reaching the peer.
		 */
		if (nfd < 0 || dup2(nfd, share_socks[i].fd) < 0)
			shutdown(share_socks[i].fd, SHUT_RDWR);
		if (nfd >= 0)
			close(nfd);
	}
	pthread_mutex_unlock(&socks_mu);
}

/*
 * Called with share_mu held: the share holds the parent VM's sessions.
 * Muted at once, even while a transfer still runs on one of them: it
 * would otherwise close its connection itself (aborted by the stale-job
 * cancel, or at its timeout: the SQS long poll) with a close_notify
 * under the parent's keys.  dup2() swaps what the fd number refers to
 * atomically, so the transfer's reads and writes fail (it ends as a
 * transient failure, at the cancel or its timeout) and its alert goes
 * nowhere.  socks_mu keeps the fd from being closed (and its number
 * reused) while it is swapped.
 */
static void share_fork_retire(void)
{
	share_retired = true;
	share_forked = true;
	share_mute(share);
}

/* Called with share_mu held: close the retired share if nobody uses it. */
static void share_reap(void)
{
	if (share && share_retired && !share_users) {
		/* again: for any socket opened since */
		if (share_forked)
			share_mute(share);
		curl_share_cleanup(share);
		share = NULL;
		share_retired = false;
		share_forked = false;
	}
}

/*
 * May the attempt @at keep its connection in @sh?  Reserves its slots if
 * so; share_attempt_end() gives back what it did not use.
 */
static bool share_attempt_begin(struct share_attempt *at, CURLSH *sh)
{
	memset(at, 0, sizeof(*at));
	if (!sh)
		return false;
	pthread_mutex_lock(&socks_mu);
	if (n_share_socks + n_share_reserved + SHARE_SOCKS_PER_ATTEMPT <= SHARE_SOCKS_MAX) {
		n_share_reserved += SHARE_SOCKS_PER_ATTEMPT;
		at->reserved = SHARE_SOCKS_PER_ATTEMPT;
		at->sh = sh;
	}
	pthread_mutex_unlock(&socks_mu);
	return at->sh != NULL;
}

static void share_attempt_end(struct share_attempt *at)
{
	if (!at->sh)
		return;
	pthread_mutex_lock(&socks_mu);
	n_share_reserved -= at->reserved;
	at->reserved = 0;
	pthread_mutex_unlock(&socks_mu);
	/*
	 * A connection that could not be tracked may be kept in the share:
	 * retire the share now, so it is closed (in this epoch) once its
	 * last user is done, rather than muted in a later one.
	 */
	if (at->untracked)
		cmk_http_drop_connections();
}

/* CURLOPT_OPENSOCKETFUNCTION of an attempt that keeps its connection. */
static curl_socket_t share_sock_open(void *clientp, curlsocktype purpose,
				     struct curl_sockaddr *a)
{
	struct share_attempt *at = clientp;
	curl_socket_t fd;

	(void)purpose;
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd < 0)
		return CURL_SOCKET_BAD;
	pthread_mutex_lock(&socks_mu);
	if (at->reserved) {
		at->reserved--;
		n_share_reserved--;
	} else if (n_share_socks + n_share_reserved >= SHARE_SOCKS_MAX) {
		/*
		 * Past its reservation (a third address after two failed
		 * connects) and no slot left: proceed, but untracked.
		 */
		at->untracked = true;
		pthread_mutex_unlock(&socks_mu);
		return fd;
	}
	share_socks[n_share_socks].fd = fd;
	share_socks[n_share_socks].sh = at->sh;
	n_share_socks++;
	pthread_mutex_unlock(&socks_mu);
	return fd;
}

static int share_sock_close(void *clientp, curl_socket_t fd)
{
	(void)clientp;
	pthread_mutex_lock(&socks_mu);
	for (unsigned int i = 0; i < n_share_socks; i++)
		if (share_socks[i].fd == fd) {
			share_socks[i] = share_socks[--n_share_socks];
			break;
		}
	pthread_mutex_unlock(&socks_mu);
	return close(fd);
}

void cmk_http_set_epoch_source(cmk_http_epoch_fn fn, void *arg)
{
	pthread_mutex_lock(&share_mu);
	epoch_fn = fn;
	epoch_arg = arg;
	pthread_mutex_unlock(&share_mu);
}

/* The VM-fork epoch now (read outside share_mu: it may block on a read). */
static int64_t share_epoch_now(void)
{
	int64_t epoch = CMK_HTTP_EPOCH_NONE;
	cmk_http_epoch_fn fn;
	void *arg;

	pthread_mutex_lock(&share_mu);
	fn = epoch_fn;
	arg = epoch_arg;
	pthread_mutex_unlock(&share_mu);
	if (fn)
		epoch = fn(arg);
	if (epoch < CMK_HTTP_EPOCH_NONE)
		epoch = CMK_HTTP_EPOCH_UNKNOWN;
	return epoch;
}

/*
 * The share for one request, or NULL: none could be made, the retired
 * one is still in use, or the VM-fork epoch is unknown (then this
 * request's connection is not kept).  Kept connections made in another
 * VM-fork epoch are the parent VM's TLS sessions (a clone sending on one
 * reuses its AES-GCM nonces): retired before anything is sent, whether or
 * not the fork's event was read yet.  Another process's (a fork(2) child)
 * are left alone: closing them would send on the parent's sessions too.
 */
static CURLSH *share_get(void)
{
	int64_t epoch = share_epoch_now();
	pid_t pid = getpid();
	CURLSH *sh;

	pthread_mutex_lock(&share_mu);
	if (share && share_pid != pid) {
		share = NULL;	/* the parent's: not ours to close */
		share_users = 0;
		share_retired = false;
		share_forked = false;
		pthread_mutex_lock(&socks_mu);
		n_share_socks = 0;
		n_share_reserved = 0;
		pthread_mutex_unlock(&socks_mu);
	}
	if (share && !share_forked && share_epoch != epoch)
		share_fork_retire();
	share_reap();
	if (!share && epoch != CMK_HTTP_EPOCH_UNKNOWN) {
		share = share_new();
		share_epoch = epoch;
		share_pid = pid;
	}
	sh = share && !share_retired && share_epoch == epoch ? share : NULL;
	if (sh)
		share_users++;
	pthread_mutex_unlock(&share_mu);
	return sh;
}

static void share_put(CURLSH *sh)
{
	if (!sh)
		return;
	pthread_mutex_lock(&share_mu);
	share_users--;
	share_reap();
	pthread_mutex_unlock(&share_mu);
}

void cmk_http_drop_connections(void)
{
	int64_t epoch = share_epoch_now();

	pthread_mutex_lock(&share_mu);
	if (share)
		share_retired = true;
	/*
	 * Called for the VM-fork event (a provider reset), before any
	 * request saw the new epoch: the share's connections are the parent
	 * VM's TLS sessions, to be muted now (even those in use), not
	 * closed with a close_notify.  An epoch that cannot be read may
	 * have moved too.
	 */
	if (share && share_epoch != epoch)
		share_fork_retire();
	share_reap();
	pthread_mutex_unlock(&share_mu);
}

enum cmk_reason cmk_http_retry_default(const struct cmk_http_response *r,
				       void *arg)
{
	(void)arg;
	if (r->status == 429)
		return CMK_R_THROTTLED;
	if (r->status >= 500 && r->status <= 599)
		return CMK_R_UNAVAILABLE;
	return CMK_R_NONE;
}

static long dflt(long v, long d)
{
	return v > 0 ? v : d;
}

long cmk_http_backoff_ms(const struct cmk_http_opts *o, int attempt)
{
	long base = dflt(o->backoff_base_ms, 100);
	long cap = dflt(o->backoff_cap_ms, 2000);
	long ceil = base;
	unsigned int r = 0;

	for (int i = 1; i < attempt && ceil < cap; i++)
		ceil *= 2;
	if (ceil > cap)
		ceil = cap;
	/* Full jitter: uniform in [ceil/2, ceil], never zero. */
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (unsigned int)time(NULL);
	return ceil / 2 + (long)(r % (unsigned int)(ceil / 2 + 1));
}

/*
 * Sleep @ms in short slices, so a cancelled deadline (the agent stopping)
 * ends the backoff too.
 */
static void sleep_ms(long ms)
{
	while (ms > 0 && !cmk_deadline_expired()) {
		long slice = ms < 100 ? ms : 100;
		struct timespec ts = { 0, slice * 1000000L };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		ms -= slice;
	}
}

/* libcurl calls this at least once a second: end the transfer at the deadline. */
static int on_progress(void *arg, curl_off_t dlt, curl_off_t dln, curl_off_t ult,
		       curl_off_t uln)
{
	(void)arg;
	(void)dlt;
	(void)dln;
	(void)ult;
	(void)uln;
	return cmk_deadline_expired();
}

static bool line_ok(const char *s)
{
	return s && !strpbrk(s, "\r\n");
}

static void slist_free_wiped(struct curl_slist *l)
{
	for (struct curl_slist *i = l; i; i = i->next)
		OPENSSL_cleanse(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

static int build_headers(const struct cmk_http_request *req,
			 struct curl_slist **out, struct cmk_err *e)
{
	struct curl_slist *l = NULL, *n;

	*out = NULL;
	for (size_t i = 0; i < req->n_headers + 1; i++) {
		const char *name = i < req->n_headers ? req->headers[i].name : "Expect";
		const char *value = i < req->n_headers ? req->headers[i].value : "";
		size_t len;
		char *line;

		if (!line_ok(name) || !line_ok(value) || !*name ||
		    strchr(name, ':')) {
			slist_free_wiped(l);
			return cmk_errf(e, -EINVAL,
					"http: header \"%s\" has a bad name or value",
					name ? name : "(null)");
		}
		len = strlen(name) + strlen(value) + 3;
		line = malloc(len);
		if (!line) {
			slist_free_wiped(l);
			return cmk_errf(e, -ENOMEM, "http: out of memory");
		}
		/* "Name:" with nothing after it would delete the header. */
		snprintf(line, len, "%s:%s%s", name, *value ? " " : "", value);
		n = curl_slist_append(l, line);
		OPENSSL_cleanse(line, len);
		free(line);
		if (!n) {
			slist_free_wiped(l);
			return cmk_errf(e, -ENOMEM, "http: out of memory");
		}
		l = n;
	}
	*out = l;
	return 0;
}

/* ---- where plain http:// may go ---------------------------------------------- */

/* @host: an address (IPv6 without brackets) or a name, as libcurl parsed it. */
static bool plain_http_ok(const char *host, enum cmk_url_use use)
{
	unsigned char a[16];
	char h[INET6_ADDRSTRLEN + 8];
	size_t n = strlen(host);

	if (n && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (n >= sizeof(h))
		return !strcasecmp(host, "localhost");
	memcpy(h, host, n);
	h[n] = '\0';
	if (inet_pton(AF_INET, h, a) == 1)
		return a[0] == 127 ||
		       (use == CMK_URL_METADATA && a[0] == 169 && a[1] == 254);
	if (inet_pton(AF_INET6, h, a) == 1) {
		static const unsigned char lo[16] = { [15] = 1 };
		static const unsigned char ec2[16] = {
			0xfd, 0x00, 0x0e, 0xc2, [15] = 0x54, [14] = 0x02,
		};
		static const unsigned char v4map[12] = { [10] = 0xff, [11] = 0xff };

		if (!memcmp(a, lo, 16) || (!memcmp(a, v4map, 12) && a[12] == 127))
			return true;
		return use == CMK_URL_METADATA &&
		       ((a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || !memcmp(a, ec2, 16) ||
			(!memcmp(a, v4map, 12) && a[12] == 169 && a[13] == 254));
	}
	if (!strcasecmp(h, "localhost") || !strcasecmp(h, "localhost."))
		return true;
	return use == CMK_URL_METADATA &&
	       (!strcasecmp(h, "metadata.google.internal") ||
		!strcasecmp(h, "metadata.google.internal."));
}

static const char *plain_http_rule(enum cmk_url_use use)
{
	return use == CMK_URL_KMS ?
	       "plain http:// only goes to this machine's loopback (127.0.0.0/8, ::1, localhost: test peers); KMS and token requests carry credentials and key material, use https://" :
	       "plain http:// only goes to loopback or link-local addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254) or metadata.google.internal, where metadata services live; use one of those or https://";
}

/* Parse @url as libcurl will; *@plain: it is http://. */
static int url_policy(const char *who, const char *what, const char *url,
		      enum cmk_url_use use, bool *plain, struct cmk_err *e)
{
	char *scheme = NULL, *host = NULL;
	CURLU *u;
	int ret = 0;

	*plain = false;
	ret = cmk_http_global_init(e);
	if (ret)
		return ret;
	u = curl_url();
	if (!u)
		return cmk_errf(e, -ENOMEM, "%s: out of memory", who);
	if (!url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    (strcmp(scheme, "https") && strcmp(scheme, "http"))) {
		ret = cmk_errf(e, -EINVAL, "%s: %s \"%s\" is not an http(s) URL",
			       who, what, url ? url : "");
		goto out;
	}
	*plain = !strcmp(scheme, "http");
	if (*plain && !plain_http_ok(host, use))
		ret = cmk_errf(e, -EINVAL, "%s: %s %s refused: %s", who, what, url,
			       plain_http_rule(use));
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ret;
}

int cmk_http_url_check(const char *who, const char *what, const char *url,
		       enum cmk_url_use use, struct cmk_err *e)
{
	bool plain;

	return url_policy(who, what, url, use, &plain, e);
}

/*
 * Plain http:// again at connect time, on the address actually reached,
 * before anything is sent: "localhost" or metadata.google.internal must
 * not resolve elsewhere, and a proxy from the environment must itself be
 * on this machine (libcurl reports the proxy's address when it uses one).
 */
static int on_prereq(void *arg, char *peer_ip, char *local_ip, int peer_port,
		     int local_port)
{
	const enum cmk_url_use *use = arg;

	(void)local_ip;
	(void)peer_port;
	(void)local_port;
	return plain_http_ok(peer_ip, *use) ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT;
}

/*
 * The proxy variable libcurl takes for @url from the environment (its
 * name only: the value may carry a password), or NULL.  no_proxy may
 * still exempt the host; the message says so.
 */
static const char *proxy_var(const struct cmk_http_opts *o, const char *url)
{
	static const char *const http[] = { "http_proxy", "all_proxy", "ALL_PROXY", NULL };
	static const char *const https[] = { "https_proxy", "HTTPS_PROXY", "all_proxy",
					     "ALL_PROXY", NULL };
	const char *const *v = strncasecmp(url, "https:", 6) ? http : https;

	if (o->no_proxy)
		return NULL;
	for (; *v; v++) {
		const char *s = getenv(*v);

		if (s && *s)
			return *v;
	}
	return NULL;
}

static enum cmk_reason curl_reason(CURLcode rc)
{
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return CMK_R_TIMEOUT;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_FAILED_INIT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_ABORTED_BY_CALLBACK:	/* on_prereq: plain http elsewhere */
		return CMK_R_LOCAL;
	default:
		/* connect, resolve, reset, TLS, empty reply, oversize reply */
		return CMK_R_NETWORK;
	}
}

static CURL *make_handle(const struct cmk_http_opts *o,
			 const struct cmk_http_request *req,
			 struct curl_slist *hl, struct cmk_http_response *resp,
			 const enum cmk_url_use *plain_use, char *errbuf,
			 struct share_attempt *at)
{
	CURL *c = curl_easy_init();
	CURLcode rc = CURLE_OK;

	if (!c)
		return NULL;
#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(c, opt, val); } while (0)
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	/* The caller's deadline (deadline.h) bounds every attempt too. */
	SET(CURLOPT_CONNECTTIMEOUT_MS, cmk_deadline_clamp_ms(dflt(o->connect_timeout_ms, 3000)));
	if (resp->sink) {
		/* An object of any size: a stall, not the length, ends it. */
		SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
		SET(CURLOPT_LOW_SPEED_TIME, (dflt(o->timeout_ms, 10000) + 999) / 1000);
		SET(CURLOPT_TIMEOUT_MS, cmk_deadline_clamp_ms(LONG_MAX) == LONG_MAX ?
					0L : cmk_deadline_clamp_ms(LONG_MAX));
	} else {
		SET(CURLOPT_TIMEOUT_MS, cmk_deadline_clamp_ms(dflt(o->timeout_ms, 10000)));
	}
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
	SET(CURLOPT_SSL_CTX_DATA, resp);
	/*
	 * HTTP/1.1 only: with HTTP/2, nghttp2 keeps header blocks (the
	 * Authorization header among them) in memory libcurl's allocators do
	 * not reach.  One request per connection gains nothing from HTTP/2.
	 */
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_USERAGENT, "dm-cmk-agent/1");
	SET(CURLOPT_HTTPHEADER, hl);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, resp);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, resp);
	if (!resp->sink)
		SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)resp->max_body);
	/* The connection outlives the handle: the next check reuses it. */
	if (at->sh) {
		SET(CURLOPT_SHARE, at->sh);
		SET(CURLOPT_OPENSOCKETFUNCTION, share_sock_open);
		SET(CURLOPT_OPENSOCKETDATA, (void *)at);
		/* Kept with the connection: must outlive this attempt. */
		SET(CURLOPT_CLOSESOCKETFUNCTION, share_sock_close);
		SET(CURLOPT_CLOSESOCKETDATA, (void *)at->sh);
	}
	if (o->ca_bundle)
		SET(CURLOPT_CAINFO, o->ca_bundle);
	if (o->no_proxy) {
		SET(CURLOPT_PROXY, "");
		SET(CURLOPT_NOPROXY, "*");
	}
	if (plain_use) {
		SET(CURLOPT_PREREQFUNCTION, on_prereq);
		SET(CURLOPT_PREREQDATA, (void *)plain_use);
	}
	if (strcmp(req->method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		SET(CURLOPT_POSTFIELDS, req->body_len ? req->body : (const void *)"");
		if (strcmp(req->method, "POST") != 0)
			SET(CURLOPT_CUSTOMREQUEST, req->method);
	}
#undef SET
	if (rc != CURLE_OK) {
		curl_easy_cleanup(c);
		return NULL;
	}
	return c;
}

int cmk_http_do(const struct cmk_http_opts *o,
		const struct cmk_http_request *req, cmk_http_retry_fn retry,
		void *retry_arg, struct cmk_http_response *resp,
		struct cmk_err *e)
{
	return cmk_http_do_sink(o, req, NULL, NULL, retry, retry_arg, resp, e);
}

int cmk_http_do_sink(const struct cmk_http_opts *o,
		     const struct cmk_http_request *req, cmk_http_sink_fn sink,
		     void *sink_arg, cmk_http_retry_fn retry, void *retry_arg,
		     struct cmk_http_response *resp, struct cmk_err *e)
{
	int max = o->max_attempts > 0 ? o->max_attempts : 3;
	enum cmk_url_use use = o->no_proxy ? CMK_URL_METADATA : CMK_URL_KMS;
	struct curl_slist *hl = NULL;
	struct share_attempt at;
	CURLSH *sh = NULL;
	bool plain;
	char errbuf[CURL_ERROR_SIZE];
	int ret;

	memset(resp, 0, sizeof(*resp));
	resp->sink = sink;
	resp->sink_arg = sink_arg;
	resp->max_body = o->max_body ? o->max_body : CMK_HTTP_MAX_BODY;
	cmk_http_last_answer_forget();
	if (max > 10)
		max = 10;
	/* The caller's loop retries KMS requests on its own schedule. */
	if (tl_max_attempts && use == CMK_URL_KMS && max > tl_max_attempts)
		max = tl_max_attempts;
	if (!retry)
		retry = cmk_http_retry_default;
	if (!req->method || !req->url)
		return cmk_errf(e, -EINVAL, "http: no method or URL");
	ret = cmk_http_global_init(e);
	if (ret)
		return ret;
	ret = url_policy("http", req->method, req->url, use, &plain, e);
	if (ret)
		return ret;
	ret = build_headers(req, &hl, e);
	if (ret)
		return ret;
	sh = share_get();

	for (int attempt = 1;; attempt++) {
		enum cmk_reason why;
		CURLcode rc;
		long delay;
		bool last;
		CURL *c;

		/* Each attempt starts from an empty answer. */
		if (resp->body)
			OPENSSL_cleanse(resp->body, resp->body_cap);
		if (resp->hdrs)
			OPENSSL_cleanse(resp->hdrs, resp->hdrs_cap);
		resp->body_len = 0;
		resp->hdrs_len = 0;
		resp->status = 0;
		resp->too_large = false;
		resp->attempts = attempt;
		errbuf[0] = '\0';
		if (cmk_deadline_expired()) {
			ret = cmk_err_kms(e, CMK_R_TIMEOUT,
					  "%s %s: the check's deadline passed before attempt %d",
					  req->method, req->url, attempt);
			break;
		}
		share_attempt_begin(&at, sh);
		c = make_handle(o, req, hl, resp, plain ? &use : NULL, errbuf, &at);
		if (!c) {
			share_attempt_end(&at);
			ret = cmk_errf(e, -EINVAL, "http: cannot set up a request to %s",
				       req->url);
			break;
		}
		resp->tls_reseed_err = 0;
		rc = curl_easy_perform(c);
		if (rc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
		{
			long nc = 0;

			if (curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &nc) == CURLE_OK)
				resp->connects += (int)nc;
		}
		curl_easy_cleanup(c);
		share_attempt_end(&at);
		resp->retry_after_ms = rc == CURLE_OK ? retry_after(resp) : 0;
		if (resp->body == NULL && rc == CURLE_OK &&
		    grow_append(&resp->body, &resp->body_len, &resp->body_cap,
				"", 0, resp->max_body)) {
			ret = cmk_errf(e, -ENOMEM, "http: out of memory");
			break;
		}
		/* No retry that could not even start before the deadline. */
		delay = cmk_http_backoff_ms(o, attempt);
		/* Never sooner than the server asked. */
		if (resp->retry_after_ms > delay)
			delay = (long)resp->retry_after_ms;
		last = attempt >= max || cmk_deadline_clamp_ms(LONG_MAX) <= delay;
		/*
		 * Without a deadline nothing else bounds the wait: a longer
		 * hold goes back to the caller (cmkctl says when to retry; the
		 * agent's loop schedules the next check itself).
		 */
		if (cmk_deadline_get() == 0 && delay > CMK_HTTP_UNBOUNDED_WAIT_MS)
			last = true;
		if (rc == CURLE_OK) {
			why = retry(resp, retry_arg);
			if (cmk_reason_class(why) != CMK_EC_TRANSIENT || last) {
				ret = 0;
				break;
			}
		} else if (resp->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
			/* The same answer again would not fit either. */
			cmk_err_kms(e, CMK_R_NETWORK,
				    "%s %s: the answer is larger than %zu bytes (HTTP %ld)",
				    req->method, req->url, resp->max_body, resp->status);
			ret = -EMSGSIZE;
			break;
		} else if (resp->tls_reseed_err) {
			ret = cmk_errf(e, resp->tls_reseed_err,
				       "%s %s: reseeding OpenSSL's DRBG before the TLS handshake failed; nothing was sent",
				       req->method, req->url);
			break;
		} else if (resp->sink_err) {
			ret = cmk_errf(e, resp->sink_err, "%s %s: writing the answer failed after %llu bytes: %s",
				       req->method, req->url, resp->sunk, strerror(-resp->sink_err));
			break;
		} else {
			why = curl_reason(rc);
			/* What went to the sink cannot be taken back. */
			if (resp->sunk)
				last = true;
			/* on_progress() ended it: the deadline passed (or was cancelled). */
			if (rc == CURLE_ABORTED_BY_CALLBACK && cmk_deadline_expired()) {
				why = CMK_R_TIMEOUT;
				last = true;
			} else if (rc == CURLE_ABORTED_BY_CALLBACK) {
				const char *pv = proxy_var(o, req->url);

				if (pv)
					ret = cmk_errf(e, -EINVAL, "http: %s %s: the proxy that $%s in the environment names (unless no_proxy exempts this host) is at an address that is not allowed: %s; unset %s for the agent or use https://",
						       req->method, req->url, pv,
						       plain_http_rule(use), pv);
				else
					ret = cmk_errf(e, -EINVAL, "http: %s %s: the name led to an address that is not allowed: %s",
						       req->method, req->url, plain_http_rule(use));
				break;
			}
			if (why == CMK_R_LOCAL) {
				ret = cmk_errf(e, -EINVAL, "http: %s %s: %s",
					       req->method, req->url,
					       errbuf[0] ? errbuf : curl_easy_strerror(rc));
				break;
			}
			if (last) {
				ret = cmk_err_kms(e, why,
						  "%s %s failed after %d attempt%s: %s%s",
						  req->method, req->url, attempt,
						  attempt == 1 ? "" : "s",
						  rc == CURLE_ABORTED_BY_CALLBACK ?
						  (cmk_deadline_cancel_reason() ? cmk_deadline_cancel_reason() :
						   "no answer before the check's deadline") :
						  errbuf[0] ? errbuf : curl_easy_strerror(rc),
						  attempt < max && !cmk_deadline_cancel_reason() ?
						  " (no time left for another attempt before the check's deadline)" : "");
				break;
			}
		}
		sleep_ms(delay);
	}
	share_put(sh);
	slist_free_wiped(hl);
	tl_retry_after_ms = resp->retry_after_ms;
	tl_answer_from_kms = !ret && resp->status && use == CMK_URL_KMS;
	if (ret)
		cmk_http_response_free(resp);
	return ret;
}

int cmk_http_setting(const char *who, const char *k, const char *v,
		     struct cmk_http_opts *o, struct cmk_err *e)
{
	long x;
	int ret;

	if (!strcmp(k, "connect_timeout_ms"))
		return cmk_setting_long(who, k, v, 100, 60000, &o->connect_timeout_ms, e);
	if (!strcmp(k, "timeout_ms"))
		return cmk_setting_long(who, k, v, 100, 300000, &o->timeout_ms, e);
	if (!strcmp(k, "max_attempts")) {
		ret = cmk_setting_long(who, k, v, 1, 10, &x, e);
		if (!ret)
			o->max_attempts = (int)x;
		return ret;
	}
	return cmk_errf(e, -EINVAL, "%s: %s is not an HTTP setting", who, k);
}
