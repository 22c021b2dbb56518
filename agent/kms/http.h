/* SPDX-License-Identifier: GPL-2.0 */
/*
 * http.h - the agent's one HTTP client (libcurl), shared by all providers.
 *
 * Every call has a connect timeout and a whole-transfer timeout.  Failures
 * the far end may recover from (connection refused or reset, DNS, TLS
 * handshake, timeouts, and responses the caller's retry function calls
 * transient, by default 429 and 5xx) are retried with capped exponential
 * backoff and full jitter, up to max_attempts, and never sooner than the
 * answer's Retry-After (a wait longer than CMK_HTTP_UNBOUNDED_WAIT_MS in a
 * call without a deadline is not made: the answer goes back to the
 * caller, whose error says when to retry); nothing else is retried.  A
 * thread may cap the attempts of its KMS requests
 * (cmk_http_thread_max_attempts()): cmk-agent's worker makes one per
 * check, and its loop retries on its own schedule (agentloop.h).
 *
 * TLS connections are kept between requests (one libcurl connection cache
 * for the process) and reused by the next request to the same host, so a
 * periodic check costs no TCP and TLS handshake; request and answer
 * buffers are still freed and wiped after every request.
 * cmk_http_drop_connections() closes them (every provider reset: a
 * revocation, a wipe, a VM fork), and none is reused across a change of
 * the VM-fork epoch (cmk_http_set_epoch_source()).  Only a connection
 * whose socket http.c tracks is kept; a request made while its table is
 * full still goes out, on a connection closed when the request ends.
 * The calling thread's deadline (deadline.h: one budget for a whole CMK
 * check) bounds it all: each attempt's timeouts are clamped to what is
 * left, no retry starts once the backoff would reach it, and a transfer
 * under way ends (within a second) when it passes or is cancelled; the
 * failure is then transient, reason timeout.
 *
 * Proxies come from the environment (https_proxy, http_proxy, no_proxy, as
 * libcurl reads them), except with no_proxy set in the options: metadata
 * endpoints (IMDS, link-local) are always reached directly.  IPv4 and IPv6
 * both work (a literal "[fd00:ec2::254]" host is fine).  Only http and
 * https are allowed, redirects are not followed, responses are limited to
 * CMK_HTTP_MAX_BODY bytes (or the call's max_body: -EMSGSIZE beyond).
 *
 * Request and response bodies may carry key material (a base64 KEK in a
 * KMS response): the response buffers are wiped whenever they are regrown
 * and when they are freed, and so is every header line the caller passed
 * in (a session token travels in one).  libcurl's own copies live in
 * memory from cleanse_alloc.h (wiped when freed), OpenSSL wipes decrypted
 * records once read (SSL_OP_CLEANSE_PLAINTEXT), and only HTTP/1.1 is
 * spoken (HTTP/2 header tables live outside libcurl's allocators).
 */
#ifndef CMK_HTTP_H
#define CMK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/nv.h"

#define CMK_HTTP_MAX_BODY	(1024 * 1024)
#define CMK_HTTP_MAX_HEADERS	(64 * 1024)
/*
 * The longest wait before a retry within a call that has no deadline
 * (cmkctl, credential fetches outside a check): a longer Retry-After ends
 * the call with the answer, and the caller says when to try again.
 */
#define CMK_HTTP_UNBOUNDED_WAIT_MS	30000L

/**
 * struct cmk_http_opts - per-call behaviour (zero means "default")
 * @ca_bundle: PEM file of CAs to trust instead of the system's
 * @connect_timeout_ms: TCP + TLS connect (default 3000)
 * @timeout_ms: one whole attempt (default 10000)
 * @max_attempts: attempts for transient failures (default 3, max 10)
 * @backoff_base_ms: first backoff (default 100); doubles each retry
 * @backoff_cap_ms: largest backoff (default 2000)
 * @no_proxy: never use a proxy (metadata endpoints)
 * @max_body: largest answer body kept (default CMK_HTTP_MAX_BODY); a
 *	larger one fails the call with -EMSGSIZE (transient, not retried)
 */
struct cmk_http_opts {
	const char *ca_bundle;
	long connect_timeout_ms;
	long timeout_ms;
	int max_attempts;
	long backoff_base_ms;
	long backoff_cap_ms;
	bool no_proxy;
	size_t max_body;
};

/*
 * Where a URL leads decides whether plain http:// may be used for it.
 * KMS endpoints (and token endpoints) carry credentials and key material:
 * https://, or http:// only to this machine's loopback (127.0.0.0/8, ::1,
 * localhost), which is where test peers live.  Metadata endpoints (IMDS,
 * the GCE metadata server) are plain HTTP by design and are local to the
 * VM: http:// also to link-local addresses (169.254.0.0/16, fe80::/10),
 * AWS's fd00:ec2::254 and metadata.google.internal; never to anything
 * else.  cmk_http_do() applies the rule to every request (metadata when
 * opts.no_proxy is set), also to the address it actually connects to
 * before sending anything, so neither a name nor a proxy from the
 * environment can lead plain text off the machine.
 */
enum cmk_url_use {
	CMK_URL_KMS,
	CMK_URL_METADATA,
};

/*
 * cmk_http_global_init() - initialise libcurl with the allocators of
 * cleanse_alloc.h and check that it uses them (it silently keeps its own
 * when something initialised it first).  Programs call it first thing in
 * main(); every call here also does, once, and refuses to work (-EIO,
 * local) without them.
 */
int cmk_http_global_init(struct cmk_err *e);

/*
 * cmk_http_url_check() - is @url an http(s) URL that @use may talk to?
 * -EINVAL (local) with a message naming @who and @what ("aws", "endpoint")
 * and what to do if not.
 */
int cmk_http_url_check(const char *who, const char *what, const char *url,
		       enum cmk_url_use use, struct cmk_err *e);

/*
 * cmk_http_setting() - apply the provider setting @k = @v to @o, for the
 * HTTP settings every cloud provider takes: connect_timeout_ms (100..60000),
 * timeout_ms (100..300000), max_attempts (1..10).  @who names the provider
 * in errors.  -EINVAL for any other key.
 */
int cmk_http_setting(const char *who, const char *k, const char *v,
		     struct cmk_http_opts *o, struct cmk_err *e);

struct cmk_http_request {
	const char *method;		/* GET, PUT, POST, ... */
	const char *url;
	const struct cmk_nv *headers;
	size_t n_headers;
	const void *body;
	size_t body_len;
};

/* Takes a streamed answer body: 0, or a negative errno that ends it. */
typedef int (*cmk_http_sink_fn)(const void *d, size_t n, void *arg);

/**
 * struct cmk_http_response - the last attempt's answer
 * @status: HTTP status code
 * @body: NUL-terminated body (wiped by cmk_http_response_free())
 * @attempts: how many attempts were made
 * @connects: new connections they needed (0: all reused a kept one)
 * @retry_after_ms: the last answer's Retry-After (ms; 0: none)
 */
struct cmk_http_response {
	long status;
	char *body;
	size_t body_len;
	size_t body_cap;
	char *hdrs;			/* raw header lines of the last answer */
	size_t hdrs_len;
	size_t hdrs_cap;
	int attempts;
	int connects;
	unsigned int retry_after_ms;
	/* cmk_http_do_sink(): bytes the sink took, the error it returned */
	unsigned long long sunk;
	int sink_err;
	int tls_reseed_err;		/* on_ssl_ctx(): the DRBG reseed failed */
	cmk_http_sink_fn sink;
	void *sink_arg;
	size_t max_body;		/* the call's cap; hit: too_large */
	bool too_large;
};

/*
 * Decides whether a received response is worth retrying: return a
 * transient reason (CMK_R_THROTTLED, CMK_R_UNAVAILABLE) to retry, anything
 * else to stop and hand the response to the caller.
 */
typedef enum cmk_reason (*cmk_http_retry_fn)(const struct cmk_http_response *r,
					     void *arg);

/* The default: 429 -> throttled, 5xx -> unavailable, else no retry. */
enum cmk_reason cmk_http_retry_default(const struct cmk_http_response *r,
				       void *arg);

/*
 * cmk_http_do() - perform @req with retries.  Returns 0 when an HTTP
 * answer was received (of any status; the caller classifies it), or a
 * negative errno with @e classified: transient (CMK_R_TIMEOUT,
 * CMK_R_NETWORK) when the peer could not be reached after all attempts,
 * local for bad URLs or options.  @retry may be NULL (the default).
 */
int cmk_http_do(const struct cmk_http_opts *o,
		const struct cmk_http_request *req, cmk_http_retry_fn retry,
		void *retry_arg, struct cmk_http_response *resp,
		struct cmk_err *e);

/*
 * cmk_http_do_sink() - cmk_http_do() whose 2xx answer body goes to @sink
 * as it arrives instead of the response buffer (objects larger than
 * CMK_HTTP_MAX_BODY: an S3 GetObject).  Other answers (errors) still go to
 * the buffer.  No whole-transfer timeout, only a stall one (no byte for
 * timeout_ms); no retry once a byte went to @sink.
 */
int cmk_http_do_sink(const struct cmk_http_opts *o,
		     const struct cmk_http_request *req, cmk_http_sink_fn sink,
		     void *sink_arg, cmk_http_retry_fn retry, void *retry_arg,
		     struct cmk_http_response *resp, struct cmk_err *e);

/*
 * cmk_http_header() - value of response header @name (case-insensitive,
 * trimmed) copied into @buf, or NULL if absent.
 */
const char *cmk_http_header(const struct cmk_http_response *r,
			    const char *name, char *buf, size_t len);

void cmk_http_response_free(struct cmk_http_response *r);

/*
 * cmk_http_thread_max_attempts() - from now on, KMS requests (not metadata
 * ones) made by this thread take at most @n attempts, whatever their
 * options say; 0 lifts the cap.
 */
void cmk_http_thread_max_attempts(int n);

/*
 * cmk_http_retry_after_ms() - the Retry-After of this thread's last HTTP
 * answer (ms, capped at a day), 0 if it had none or there was no answer.
 */
unsigned int cmk_http_retry_after_ms(void);

/*
 * cmk_http_last_answer_from_kms() - this thread's last HTTP answer came
 * from a KMS or token endpoint (https://, or plain http:// to loopback),
 * not from a metadata service; false if there was none since
 * cmk_http_last_answer_forget().
 */
bool cmk_http_last_answer_from_kms(void);
void cmk_http_last_answer_forget(void);

/*
 * cmk_http_drop_connections() - close every kept connection (those in use
 * when their request ends).  Any thread.  Connections made in another
 * VM-fork epoch than the source tells now (or when it cannot tell) are
 * the parent VM's sessions: muted at once, those in use too (their
 * request then fails, transient), so none sends a TLS close_notify.
 */
void cmk_http_drop_connections(void);

/*
 * The VM-fork epoch (forkwatch.h) as the kept connections see it: >= 0,
 * CMK_HTTP_EPOCH_NONE (the kernel counts no forks, or no source is set),
 * or CMK_HTTP_EPOCH_UNKNOWN (the read failed: no connection is kept).
 */
#define CMK_HTTP_EPOCH_NONE	(-1)
#define CMK_HTTP_EPOCH_UNKNOWN	(-2)
typedef int64_t (*cmk_http_epoch_fn)(void *arg);

/*
 * cmk_http_set_epoch_source() - @fn tells the VM-fork epoch now; every
 * request calls it before it may reuse a kept connection, and a kept
 * connection from another epoch is closed unused (a VM clone must never
 * send on its parent's TLS session: AES-GCM nonce reuse), even before the
 * fork's event reached the agent.  @fn is called from any thread.  NULL:
 * none (connections are then dropped only by cmk_http_drop_connections()).
 * Limit: a fork between @fn's answer and the send, or during a transfer,
 * is not seen; the kernel's event (a provider reset) drops it then, and a
 * transfer still on it fails without sending (no close_notify either).
 */
void cmk_http_set_epoch_source(cmk_http_epoch_fn fn, void *arg);

/* cmk_http_backoff_ms() - the jittered delay before retry @attempt (1..). */
long cmk_http_backoff_ms(const struct cmk_http_opts *o, int attempt);

#endif /* CMK_HTTP_H */
