// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_http.c - the network of the libFuzzer targets: cmk_http_do()
 * answered from the fuzzer's input (fuzz.h), and the provider driver the
 * cloud provider targets share.
 *
 * The stand-in keeps what callers rely on from the real one: the body is
 * NUL-terminated (and may hold NUL bytes), the headers are raw lines, the
 * retry hook decides about every answer and transient answers are retried
 * up to max_attempts (without the back-off sleep), and a failure leaves no
 * response behind.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/encctx.h"
#include "core/secret.h"
#include "kms/http.h"
#include "fuzz.h"

int __wrap_cmk_http_do(const struct cmk_http_opts *o,
		       const struct cmk_http_request *req,
		       cmk_http_retry_fn retry, void *retry_arg,
		       struct cmk_http_response *resp, struct cmk_err *e);

static const uint8_t *in;
static size_t in_left;
static unsigned int answered;

void fuzz_answers_set(const uint8_t *data, size_t size)
{
	in = data;
	in_left = size;
	answered = 0;
}

unsigned int fuzz_requests(void)
{
	return answered;
}

char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/*
 * A plain loop, not memmem(): libFuzzer hooks memmem() and would learn the
 * secret from this very check, then feed it back in an answer.
 */
bool fuzz_contains(const void *hay, size_t n, const char *needle)
{
	size_t nl = strlen(needle);

	for (size_t i = 0; nl && i + nl <= n; i++) {
		size_t j = 0;

		while (j < nl && ((const char *)hay)[i + j] == needle[j])
			j++;
		if (j == nl)
			return true;
	}
	return false;
}

void fuzz_no_secret(const struct cmk_err *e, const char *secret)
{
	if (secret && *secret &&
	    fuzz_contains(e->msg, strnlen(e->msg, sizeof(e->msg)), secret)) {
		fprintf(stderr, "fuzz: a credential reached an error message: %s\n",
			e->msg);
		abort();
	}
}

static char *dup_bytes(const uint8_t *p, size_t n, size_t *cap)
{
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	*cap = n + 1;
	return s;
}

/* The next answer of the input into @r; false when there is none left. */
static bool next_answer(struct cmk_http_response *r)
{
	const uint8_t *end, *nl, *blank, *hdr;
	size_t n, sep = strlen(FUZZ_ANSWER_SEP);
	char status[16];

	if (!in)
		return false;
	end = memmem(in, in_left, FUZZ_ANSWER_SEP, sep);
	n = end ? (size_t)(end - in) : in_left;
	nl = memchr(in, '\n', n);
	snprintf(status, sizeof(status), "%.*s", (int)(nl ? nl - in : (long)n), in);
	r->status = strtol(status, NULL, 10);
	hdr = nl ? nl + 1 : in + n;
	blank = memmem(hdr, (size_t)(in + n - hdr), "\n\n", 2);
	if (blank) {
		/* libcurl refuses header lines with NUL bytes: so do we. */
		size_t hl = strnlen((const char *)hdr, (size_t)(blank + 1 - hdr));

		r->hdrs = dup_bytes(hdr, hl, &r->hdrs_cap);
		r->hdrs_len = hl;
		hdr = blank + 2;
	}
	r->body = dup_bytes(hdr, (size_t)(in + n - hdr), &r->body_cap);
	r->body_len = (size_t)(in + n - hdr);
	if (end) {
		in_left -= n + sep;
		in = end + sep;
	} else {
		in = NULL;
		in_left = 0;
	}
	answered++;
	return true;
}

int __wrap_cmk_http_do(const struct cmk_http_opts *o,
		       const struct cmk_http_request *req,
		       cmk_http_retry_fn retry, void *retry_arg,
		       struct cmk_http_response *resp, struct cmk_err *e)
{
	int max = o->max_attempts > 0 ? o->max_attempts : 3;

	memset(resp, 0, sizeof(*resp));
	if (max > 10)
		max = 10;
	if (!retry)
		retry = cmk_http_retry_default;
	if (!req->method || !req->url)
		return cmk_errf(e, -EINVAL, "http: no method or URL");
	for (int attempt = 1;; attempt++) {
		enum cmk_reason why;

		cmk_http_response_free(resp);
		resp->attempts = attempt;
		if (!next_answer(resp))
			return cmk_err_kms(e, CMK_R_NETWORK,
					   "%s %s failed after %d attempts: no answer (fuzz input ended)",
					   req->method, req->url, attempt);
		resp->attempts = attempt;
		why = retry(resp, retry_arg);
		if (cmk_reason_class(why) != CMK_EC_TRANSIENT || attempt >= max)
			return 0;
	}
}

static const char *const ops[] = { "unwrap", "wrap", "check", "rewrap" };

void fuzz_provider(const char *name, const struct cmk_kv *kv, size_t n,
		   const char *key_ref, const char *key_ref2,
		   const char *secret, const unsigned char *wrapped,
		   size_t wrapped_len, const uint8_t *data, size_t size)
{
	struct cmk_provider *p = NULL;
	struct cmk_secret *plain = NULL, *kek = NULL;
	unsigned char *out = NULL;
	size_t out_len = 0;
	struct cmk_kms_call call;
	struct cmk_encctx ctx;
	struct cmk_err e;
	unsigned int op;
	int ret;

	if (size < 1)
		return;
	memset(&call, 0, sizeof(call));
	op = data[0] % (sizeof(ops) / sizeof(ops[0]));
	fuzz_answers_set(data + 1, size - 1);
	cmk_encctx_init(&ctx);
	if (cmk_encctx_add(&ctx, "dm-cmk:kek-id", "6f1c9a52-58a4-4c43-9a0c-0d5c0f7c2b11", &e))
		abort();
	memset(&e, 0, sizeof(e));
	if (cmk_provider_open(name, kv, n, &p, &e)) {
		fprintf(stderr, "fuzz: cannot open %s: %s\n", name, e.msg);
		abort();
	}
	switch (op) {
	case 0:
		ret = cmk_provider_unwrap(p, key_ref, wrapped, wrapped_len, &ctx,
					  &plain, &call, &e);
		if (ret && plain)
			abort();
		if (!ret && (!plain || cmk_secret_len(plain) == 0))
			abort();
		break;
	case 1:
		if (cmk_secret_new(&kek, 32, &e))
			abort();
		memset(cmk_secret_data(kek), 0x5a, 32);
		ret = cmk_provider_wrap(p, key_ref, kek, &ctx, &out, &out_len, &call, &e);
		if (ret && out)
			abort();
		if (!ret && (!out || !out_len))
			abort();
		break;
	case 2:
		ret = cmk_provider_check(p, key_ref, wrapped, wrapped_len, &ctx,
					 &call, &e);
		break;
	default:
		ret = cmk_provider_rewrap(p, key_ref, wrapped, wrapped_len, &ctx,
					  key_ref2, &ctx, &out, &out_len, &call, &e);
		if (ret && out)
			abort();
		break;
	}
	if (ret && ret != -EOPNOTSUPP && e.cls == CMK_EC_NONE) {
		fprintf(stderr, "fuzz: %s %s failed without a class: %s\n", name,
			ops[op], e.msg);
		abort();
	}
	/* A request id from the answer reaches audit lines: printable only. */
	for (const char *c = call.request_id; *c; c++) {
		if (*c < 0x21 || *c > 0x7e) {
			fprintf(stderr, "fuzz: %s %s: request id with byte 0x%02x\n",
				name, ops[op], (unsigned char)*c);
			abort();
		}
	}
	/* FUZZ_VERBOSE=1 says how far an input got (writing seeds). */
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "fuzz: %s %s: %d after %u answers: %s\n", name,
			ops[op], ret, answered, ret ? e.msg : "ok");
	/* The answers could quote it themselves. */
	if (ret && secret && !fuzz_contains(data, size, secret))
		fuzz_no_secret(&e, secret);
	free(out);
	cmk_secret_free(&plain);
	cmk_secret_free(&kek);
	cmk_encctx_free(&ctx);
	cmk_provider_close(&p);
	fuzz_answers_set(NULL, 0);
}
