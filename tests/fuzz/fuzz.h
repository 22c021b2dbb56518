/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fuzz.h - what the libFuzzer targets in tests/fuzz share.
 *
 * Targets whose parser only sees input through HTTP are linked with
 * -Wl,--wrap=cmk_http_do: fuzz_http.c answers every request from the
 * fuzzer's input instead of the network, so the provider's own response
 * and error handling runs on the bytes exactly as it would on a body
 * libcurl received.
 *
 * Input of those targets: answers separated by FUZZ_ANSWER_SEP; each
 * answer is "<status>\n<header lines>\n\n<body>" (no blank line: all of
 * it after the status line is the body).  A request after the last answer
 * fails as an unreachable server would (transient, CMK_R_NETWORK).
 */
#ifndef CMK_FUZZ_H
#define CMK_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "kms/provider.h"

#define FUZZ_ANSWER_SEP	"\n=====\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* fuzz_answers_set() - the answers the next HTTP requests get. */
void fuzz_answers_set(const uint8_t *data, size_t size);

/* fuzz_requests() - how many requests were answered since the last set. */
unsigned int fuzz_requests(void);

/*
 * fuzz_provider() - open provider @name with @kv, then run one operation
 * chosen by the first input byte on @key_ref (rewrap: to @key_ref2; unwrap,
 * check and rewrap of @wrapped), the rest of the input answering its
 * requests.  Checks what every provider
 * promises (provider.h): a failure has a class and leaves no output, and
 * no error message carries @secret (a credential the harness set).
 */
void fuzz_provider(const char *name, const struct cmk_kv *kv, size_t n,
		   const char *key_ref, const char *key_ref2,
		   const char *secret, const unsigned char *wrapped,
		   size_t wrapped_len, const uint8_t *data, size_t size);

/* fuzz_contains() - does @hay (@n bytes) hold @needle? (not hooked) */
bool fuzz_contains(const void *hay, size_t n, const char *needle);

/* fuzz_no_secret() - abort if @secret appears in @e's message. */
void fuzz_no_secret(const struct cmk_err *e, const char *secret);

/* fuzz_cstr() - @data as a NUL-terminated copy (free() it). */
char *fuzz_cstr(const uint8_t *data, size_t size);

#endif /* CMK_FUZZ_H */
