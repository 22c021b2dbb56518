// SPDX-License-Identifier: GPL-2.0
/*
 * test_provider_aws.c - the aws provider without a network: error
 * classification, endpoint names, settings.
 * Oracle for classification: AWS KMS answers written here from the
 * documented JSON 1.1 wire format (status, x-amzn-ErrorType header,
 * {"__type", "message"} body) and the XML ErrorResponse shape STS-style
 * front ends (and moto's IAM layer) send, each with the class the design
 * requires (Documentation/aws.rst).  KMS behaviour moto lacks (Decrypt on
 * a disabled key, pending deletion, throttling) is covered here.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kms/credreload.h"
#include "core/deadline.h"
#include "kms/http.h"
#include "kms/provider.h"
#include "kms/aws/provider_aws.h"

struct rec {
	const char *name;
	long status;
	const char *error_type;		/* x-amzn-ErrorType header or NULL */
	const char *body;
	enum cmk_reason want;
	const char *want_code;
};

#define ARN "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

static const struct rec recs[] = {
	{ "disabled", 400, "DisabledException:",
	  "{\"__type\":\"DisabledException\",\"message\":\"" ARN " is disabled.\"}",
	  CMK_R_DISABLED, "DisabledException" },
	/* provisional: DescribeKey decides (aws_classify_kms_invalid_state_*) */
	{ "pending_deletion", 400, NULL,
	  "{\"__type\":\"KMSInvalidStateException\",\"message\":\"" ARN " is pending deletion.\"}",
	  CMK_R_UNAVAILABLE, "KMSInvalidStateException" },
	{ "explicit_deny", 400, NULL,
	  "{\"__type\":\"AccessDeniedException\",\"Message\":\"User: arn:aws:sts::111122223333:assumed-role/pg/i-0 is not authorized to perform: kms:Decrypt on resource: " ARN " with an explicit deny in an identity-based policy\"}",
	  CMK_R_DENIED, "AccessDeniedException" },
	{ "access_denied_xml", 403, NULL,
	  "<?xml version=\"1.0\"?><ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>denied</Message></Error></ErrorResponse>",
	  CMK_R_DENIED, "AccessDenied" },
	{ "not_found_namespaced", 400, NULL,
	  "{\"__type\":\"com.amazonaws.kms#NotFoundException\",\"message\":\"Key '" ARN "' does not exist\"}",
	  CMK_R_NOT_FOUND, "NotFoundException" },
	{ "incorrect_key", 400, NULL, "{\"__type\":\"IncorrectKeyException\",\"message\":\"\"}",
	  CMK_R_INVALID_CIPHERTEXT, "IncorrectKeyException" },
	{ "invalid_ciphertext", 400, NULL, "{\"__type\":\"InvalidCiphertextException\"}",
	  CMK_R_INVALID_CIPHERTEXT, "InvalidCiphertextException" },
	{ "throttled", 400, NULL, "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}",
	  CMK_R_THROTTLED, "ThrottlingException" },
	{ "throttled_header_only", 400,
	  "ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/", "",
	  CMK_R_THROTTLED, "ThrottlingException" },
	{ "kms_internal", 500, NULL, "{\"__type\":\"KMSInternalException\",\"message\":\"\"}",
	  CMK_R_UNAVAILABLE, "KMSInternalException" },
	{ "dependency_timeout", 503, NULL, "{\"__type\":\"DependencyTimeoutException\"}",
	  CMK_R_TIMEOUT, "DependencyTimeoutException" },
	{ "key_unavailable", 500, NULL, "{\"__type\":\"KeyUnavailableException\"}",
	  CMK_R_UNAVAILABLE, "KeyUnavailableException" },
	{ "bad_gateway_html", 502, NULL, "<html><body>502 Bad Gateway</body></html>",
	  CMK_R_UNAVAILABLE, "" },
	{ "too_many_requests_empty", 429, NULL, "", CMK_R_THROTTLED, "" },
	{ "unrecognized_client", 400, NULL,
	  "{\"__type\":\"UnrecognizedClientException\",\"message\":\"The security token included in the request is invalid.\"}",
	  CMK_R_DENIED, "UnrecognizedClientException" },
	{ "invalid_signature", 400, NULL,
	  "{\"__type\":\"InvalidSignatureException\",\"message\":\"The request signature we calculated does not match the signature you provided.\"}",
	  CMK_R_DENIED, "InvalidSignatureException" },
	{ "signature_does_not_match_xml", 403, NULL,
	  "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><Type>Sender</Type></Error></Errors></ErrorResponse>",
	  CMK_R_DENIED, "SignatureDoesNotMatch" },
	{ "clock_skew_is_transient", 400, NULL,
	  "{\"__type\":\"InvalidSignatureException\",\"message\":\"Signature expired: 20250101T000000Z is now earlier than 20250101T000500Z (20250101T001000Z - 5 min.)\"}",
	  CMK_R_UNAVAILABLE, "InvalidSignatureException" },
	{ "expired_token_is_transient", 400, NULL,
	  "{\"__type\":\"ExpiredTokenException\",\"message\":\"The security token included in the request is expired\"}",
	  CMK_R_UNAVAILABLE, "ExpiredTokenException" },
	{ "header_wins_over_body", 400, "DisabledException", "{\"__type\":\"ThrottlingException\"}",
	  CMK_R_DISABLED, "DisabledException" },
	{ "validation_is_local", 400, NULL,
	  "{\"__type\":\"ValidationException\",\"message\":\"1 validation error detected\"}",
	  CMK_R_LOCAL, "ValidationException" },
	{ "forbidden_no_body", 403, NULL, "", CMK_R_DENIED, "" },
	{ "garbage_400_is_local", 400, NULL, "{\"__type\":", CMK_R_LOCAL, "" },
	{ "unknown_5xx_code", 503, NULL, "{\"__type\":\"SomethingNewException\"}",
	  CMK_R_UNAVAILABLE, "SomethingNewException" },
	{ "success", 200, NULL, "{\"KeyId\":\"" ARN "\",\"Plaintext\":\"AAAA\"}", CMK_R_NONE, "" },
};

static void aws_errors_classified_from_recorded_answers(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		const struct rec *r = &recs[i];
		struct cmk_aws_error err;
		enum cmk_reason got;

		got = cmk_aws_classify(r->status, r->error_type, r->body,
				       strlen(r->body), &err);
		if (got != r->want || strcmp(err.code, r->want_code)) {
			print_message("# %s: got %s/%s, want %s/%s\n", r->name,
				      cmk_reason_name(got), err.code,
				      cmk_reason_name(r->want), r->want_code);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* The class the agent acts on, for the cases the design names. */
static void aws_definitive_and_transient_classes(void **state)
{
	static const char *const definitive[] = {
		"DisabledException", "AccessDeniedException",
		"AccessDenied", "NotFoundException", "IncorrectKeyException",
		"InvalidCiphertextException", "SignatureDoesNotMatch",
		"UnrecognizedClientException", "InvalidSignatureException", NULL,
	};
	static const char *const transient[] = {
		"ThrottlingException", "KMSInternalException",
		"DependencyTimeoutException", "KeyUnavailableException", NULL,
	};
	char body[128];

	(void)state;
	for (const char *const *c = definitive; *c; c++) {
		snprintf(body, sizeof(body), "{\"__type\":\"%s\"}", *c);
		assert_int_equal(cmk_reason_class(cmk_aws_classify(400, NULL, body, strlen(body), NULL)),
				 CMK_EC_DEFINITIVE);
	}
	for (const char *const *c = transient; *c; c++) {
		snprintf(body, sizeof(body), "{\"__type\":\"%s\"}", *c);
		assert_int_equal(cmk_reason_class(cmk_aws_classify(400, NULL, body, strlen(body), NULL)),
				 CMK_EC_TRANSIENT);
	}
	for (long s = 500; s <= 599; s++)
		assert_int_equal(cmk_reason_class(cmk_aws_classify(s, NULL, "", 0, NULL)),
				 CMK_EC_TRANSIENT);
}

/*
 * KMSInvalidStateException is "a general failure with many possible
 * causes" for keys in custom key stores (the KMSInvalidStateException
 * reference, the XKS troubleshooting guide): by itself it is never
 * definitive, and it asks for confirmation.  Bodies in the JSON 1.1 shape
 * KMS documents; the first is the standard message for a key pending
 * deletion, the others what a CloudHSM or external key store sends.
 */
static void aws_classify_kms_invalid_state_is_not_definitive_alone(void **state)
{
	static const char *const bodies[] = {
		"{\"__type\":\"KMSInvalidStateException\",\"message\":\"" ARN " is pending deletion.\"}",
		"{\"__type\":\"KMSInvalidStateException\",\"message\":\"The external key store proxy did not respond to the request within the timeout allowed by AWS KMS.\"}",
		"{\"__type\":\"KMSInvalidStateException\",\"message\":\"The AWS CloudHSM cluster associated with the custom key store does not have any active HSMs.\"}",
	};
	struct cmk_aws_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		enum cmk_reason r = cmk_aws_classify(400, "KMSInvalidStateException:",
						     bodies[i], strlen(bodies[i]), &err);

		if (cmk_reason_class(r) == CMK_EC_DEFINITIVE)
			fail_msg("body %zu classified %s (definitive) without confirmation",
				 i, cmk_reason_name(r));
		assert_int_equal(r, CMK_R_UNAVAILABLE);
		assert_true(err.confirm);
	}
	/* Codes that are not ambiguous ask for nothing. */
	cmk_aws_classify(400, NULL, "{\"__type\":\"DisabledException\"}", 31, &err);
	assert_false(err.confirm);
}

/* DescribeKey answers, shaped as the API reference documents them. */
#define DESCRIBE(state, extra) \
	"{\"KeyMetadata\":{\"AWSAccountId\":\"111122223333\",\"Arn\":\"" ARN "\"," \
	"\"CreationDate\":1.499288695918E9,\"Description\":\"\",\"Enabled\":" \
	"false,\"KeyId\":\"1234abcd-12ab-34cd-56ef-1234567890ab\",\"KeyManager\":" \
	"\"CUSTOMER\",\"KeyState\":\"" state "\",\"KeyUsage\":\"ENCRYPT_DECRYPT\"," \
	"\"Origin\":\"AWS_KMS\"" extra "}}"

static void aws_classify_describe_key_confirms_key_state(void **state)
{
	static const struct {
		long status;
		const char *body;
		enum cmk_reason want;
		const char *want_state;
	} cases[] = {
		{ 200, DESCRIBE("Disabled", ""), CMK_R_DISABLED, "Disabled" },
		{ 200, DESCRIBE("PendingDeletion", ",\"DeletionDate\":1.5E9,\"PendingDeletionWindowInDays\":7"),
		  CMK_R_DESTROYED, "PendingDeletion" },
		{ 200, DESCRIBE("PendingReplicaDeletion", ""), CMK_R_DESTROYED, "PendingReplicaDeletion" },
		{ 200, DESCRIBE("PendingImport", ""), CMK_R_DISABLED, "PendingImport" },
		{ 200, DESCRIBE("Unavailable", ",\"CustomKeyStoreId\":\"cks-1234567890abcdef0\""),
		  CMK_R_DISABLED, "Unavailable" },
		/* the key is fine: its custom key store failed */
		{ 200, DESCRIBE("Enabled", ",\"CustomKeyStoreId\":\"cks-1234567890abcdef0\",\"Origin\":\"EXTERNAL_KEY_STORE\""),
		  CMK_R_UNAVAILABLE, "Enabled" },
		{ 200, DESCRIBE("Creating", ""), CMK_R_UNAVAILABLE, "Creating" },
		{ 200, DESCRIBE("SomeFutureState", ""), CMK_R_UNAVAILABLE, "SomeFutureState" },
		{ 200, "{\"KeyMetadata\":{}}", CMK_R_UNAVAILABLE, "" },
		{ 200, "not json", CMK_R_UNAVAILABLE, "" },
		{ 400, "{\"__type\":\"NotFoundException\",\"message\":\"Key '" ARN "' does not exist\"}",
		  CMK_R_NOT_FOUND, "" },
		/* cannot confirm: never definitive */
		{ 400, "{\"__type\":\"AccessDeniedException\",\"message\":\"User: x is not authorized to perform: kms:DescribeKey\"}",
		  CMK_R_UNAVAILABLE, "" },
		{ 400, "{\"__type\":\"ThrottlingException\"}", CMK_R_UNAVAILABLE, "" },
		{ 500, "", CMK_R_UNAVAILABLE, "" },
	};
	char st[48];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum cmk_reason r = cmk_aws_key_state_reason(cases[i].status, NULL, cases[i].body,
							     strlen(cases[i].body), st, sizeof(st));

		if (r != cases[i].want || strcmp(st, cases[i].want_state))
			fail_msg("case %zu: got %s \"%s\", want %s \"%s\"", i,
				 cmk_reason_name(r), st, cmk_reason_name(cases[i].want),
				 cases[i].want_state);
	}
}

static void aws_error_text_is_sanitised(void **state)
{
	const char *body = "{\"__type\":\"Access\\u001bDenied\\nX\",\"message\":\"a\\u0007b\\nc\"}";
	struct cmk_aws_error err;

	(void)state;
	cmk_aws_classify(400, NULL, body, strlen(body), &err);
	for (const char *c = err.code; *c; c++)
		assert_true(*c > ' ' && *c < 0x7f);
	for (const char *c = err.message; *c; c++)
		assert_true(*c >= ' ' && *c < 0x7f);
}

static void aws_endpoint_names(void **state)
{
	char u[256];
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_aws_endpoint("us-east-1", false, false, u, sizeof(u), &e), 0);
	assert_string_equal(u, "https://kms.us-east-1.amazonaws.com");
	assert_int_equal(cmk_aws_endpoint("us-gov-west-1", true, false, u, sizeof(u), &e), 0);
	assert_string_equal(u, "https://kms-fips.us-gov-west-1.amazonaws.com");
	assert_int_equal(cmk_aws_endpoint("eu-west-1", false, true, u, sizeof(u), &e), 0);
	assert_string_equal(u, "https://kms.eu-west-1.api.aws");
	assert_int_equal(cmk_aws_endpoint("us-east-2", true, true, u, sizeof(u), &e), 0);
	assert_string_equal(u, "https://kms-fips.us-east-2.api.aws");
	assert_int_equal(cmk_aws_endpoint("cn-north-1", false, false, u, sizeof(u), &e), 0);
	assert_string_equal(u, "https://kms.cn-north-1.amazonaws.com.cn");
	assert_true(cmk_aws_endpoint("cn-north-1", true, false, u, sizeof(u), &e) < 0);
	assert_true(cmk_aws_endpoint("US-EAST-1", false, false, u, sizeof(u), &e) < 0);
	assert_true(cmk_aws_endpoint("us-east-1.evil.com/", false, false, u, sizeof(u), &e) < 0);
}

static void aws_settings_checked_at_open(void **state)
{
	struct cmk_provider *p = NULL;
	struct cmk_err e;
	struct cmk_kv bad_bool = { "fips", "maybe", 1 };
	struct cmk_kv bad_ep = { "endpoint", "ftp://kms", 1 };
	struct cmk_kv bad_ca = { "ca_bundle", "/nonexistent/ca.pem", 1 };
	struct cmk_kv bad_cred = { "credentials", "magic", 1 };
	struct cmk_kv bad_to = { "timeout_ms", "0", 1 };
	struct cmk_kv unknown = { "secret_access_key", "x", 1 };
	struct cmk_kv good[] = { { "region", "eu-central-1", 1 },
				 { "fips", "yes", 2 }, { "dualstack", "no", 3 },
				 { "timeout_ms", "5000", 4 } };

	(void)state;
	assert_non_null(cmk_provider_find("aws"));
	assert_true(cmk_provider_open("aws", &bad_bool, 1, &p, &e) < 0);
	assert_contains(e.msg, "fips");
	assert_true(cmk_provider_open("aws", &bad_ep, 1, &p, &e) < 0);
	assert_contains(e.msg, "endpoint");
	assert_true(cmk_provider_open("aws", &bad_ca, 1, &p, &e) < 0);
	assert_contains(e.msg, "ca_bundle");
	assert_true(cmk_provider_open("aws", &bad_cred, 1, &p, &e) < 0);
	assert_true(cmk_provider_open("aws", &bad_to, 1, &p, &e) < 0);
	/* Secrets never go in agent.conf. */
	assert_int_equal(cmk_provider_open("aws", &unknown, 1, &p, &e), -EINVAL);
	assert_null(p);
	assert_int_equal(cmk_provider_open("aws", good, 4, &p, &e), 0);
	cmk_provider_close(&p);
}

/* A pinned key_id refuses an envelope naming another key, before any call. */
static void aws_key_id_pin_refuses_other_key(void **state)
{
	struct cmk_kv kv[] = { { "key_id", ARN, 1 }, { "region", "us-east-1", 2 },
			       { "endpoint", "http://127.0.0.1:1", 3 } };
	struct cmk_provider *p = NULL;
	struct cmk_secret *plain = NULL;
	struct cmk_encctx ctx;
	struct cmk_err e;
	unsigned char w[64] = { 1 };

	(void)state;
	cmk_encctx_init(&ctx);
	assert_int_equal(cmk_provider_open("aws", kv, 3, &p, &e), 0);
	assert_int_equal(cmk_provider_unwrap(p, "alias/attacker", w, sizeof(w), &ctx,
					     &plain, NULL, &e), -EPERM);
	assert_contains(e.msg, "pins key_id");
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_null(plain);
	cmk_provider_close(&p);
}

/* Nothing listening: transient (network), never definitive. */
static void aws_unreachable_endpoint_is_transient(void **state)
{
	struct cmk_kv kv[] = { { "region", "us-east-1", 1 },
			       { "endpoint", "http://127.0.0.1:1", 2 },
			       { "max_attempts", "2", 3 },
			       { "credentials", "environment", 4 } };
	struct cmk_provider *p = NULL;
	struct cmk_secret *plain = NULL;
	struct cmk_encctx ctx;
	struct cmk_err e;
	unsigned char w[64] = { 1 };

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "notreally", 1);
	cmk_encctx_init(&ctx);
	assert_int_equal(cmk_provider_open("aws", kv, 4, &p, &e), 0);
	assert_true(cmk_provider_unwrap(p, "alias/k", w, sizeof(w), &ctx, &plain,
					NULL, &e) < 0);
	assert_int_equal(e.cls, CMK_EC_TRANSIENT);
	assert_int_equal(e.reason, CMK_R_NETWORK);
	assert_contains(e.msg, "2 attempts");
	assert_null(strstr(e.msg, "notreally"));
	cmk_provider_close(&p);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
}

/* ---- a credentials file read again in the middle of a rotation ------------------- */

static const char rejected[] =
	"HTTP/1.1 400 Bad Request\r\n"
	"Content-Type: application/x-amz-json-1.1\r\n"
	"x-amzn-ErrorType: UnrecognizedClientException:\r\n"
	"Content-Length: 107\r\n"
	"Connection: close\r\n\r\n"
	"{\"__type\":\"UnrecognizedClientException\",\"message\":\"The security token included in the request is invalid.\"}";

/* What the rotation has written when KMS answers the first request. */
static const char *rotation_state;

static void rotate_on_first_request(void *arg, int n)
{
	(void)arg;
	if (n == 1)
		tu_write_file(tu_path("credentials"), rotation_state, strlen(rotation_state), 0600);
}

static int check_during_rotation(const char *state, struct tu_peer *peer,
				 struct cmk_err *e)
{
	static const char old[] = "[default]\naws_access_key_id = AKIAOLDOLDOLD\n"
				  "aws_secret_access_key = old-secret\n";
	struct cmk_kv kv[] = { { "region", "us-east-1", 1 }, { "endpoint", NULL, 2 },
			       { "credentials", "profile", 3 }, { "max_attempts", "1", 4 } };
	struct cmk_provider *p = NULL;
	struct cmk_secret *plain = NULL;
	struct cmk_encctx ctx;
	unsigned char w[64] = { 1 };
	int ret;

	rotation_state = state;
	tu_write_file(tu_path("credentials"), old, strlen(old), 0600);
	setenv("AWS_SHARED_CREDENTIALS_FILE", tu_path("credentials"), 1);
	tu_peer_start(peer, rejected, rotate_on_first_request, NULL);
	kv[1].value = peer->url;
	cmk_encctx_init(&ctx);
	assert_int_equal(cmk_provider_open("aws", kv, 4, &p, e), 0);
	ret = cmk_provider_unwrap(p, "alias/k", w, sizeof(w), &ctx, &plain, NULL, e);
	assert_null(plain);
	cmk_provider_close(&p);
	tu_peer_stop(peer);
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	return ret;
}

/*
 * KMS rejects the credentials; read again, the credentials file is half
 * written (a rotation rewriting it in place: one line of two, or nothing
 * yet).  Oracle: a revocation needs a "no" about the key (aws.rst), and a
 * file that does not read says nothing about it: the check fails as a
 * local error (retried, never a revocation), naming what happened.  The
 * control: a file that reads but holds credentials KMS also rejects is
 * the definitive "no" it was before.
 */
static void aws_credential_reload_half_written_file_is_not_definitive(void **state)
{
	static const char *const half[] = {
		"[default]\naws_access_key_id = AKIANEWNEWNEW\n",	/* secret not yet */
		"",							/* truncated */
		"[defau",						/* cut mid-line */
	};
	static const char whole[] = "[default]\naws_access_key_id = AKIANEWNEWNEW\n"
				    "aws_secret_access_key = new-secret\n";
	struct tu_peer peer;
	struct cmk_err e;

	(void)state;
	for (size_t i = 0; i < sizeof(half) / sizeof(half[0]); i++) {
		assert_true(check_during_rotation(half[i], &peer, &e) < 0);
		assert_int_equal(peer.requests, 1);
		if (e.cls != CMK_EC_LOCAL)
			fail_msg("half-written file %zu: class %s: %s", i,
				 cmk_err_class_name(e.cls), e.msg);
		assert_contains(e.msg, "not taken as a revocation");
		assert_null(strstr(e.msg, "new-secret"));
	}
	assert_true(check_during_rotation(whole, &peer, &e) < 0);
	assert_int_equal(peer.requests, 2);		/* asked again with the new ones */
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_int_equal(e.reason, CMK_R_DENIED);
	assert_contains(e.msg, "read again from their source");
}

/* The credentials file emptied at KMS's first answer, and left empty. */
static void empty_on_first_request(void *arg, int n)
{
	(void)arg;
	if (n == 1)
		tu_write_file(tu_path("credentials"), "", 0, 0600);
}

/*
 * KMS rejects the credentials and their file stays empty (the secret
 * deleted for good, a sync tool that broke).  Oracle: credreload.h - the
 * rejection does not count while reading them again has failed for less
 * than CMK_CRED_RELOAD_BOUND_MS or fewer than CMK_CRED_RELOAD_TRIES times,
 * and counts (definitive, denied) once both are reached; a reload that
 * reads again ends the run.  Before: local for ever (policy none kept the
 * keys however long the credentials stayed revoked).
 */
static void reload_failing_for_good(const char *answer, enum cmk_err_class read_again)
{
	static const char old[] = "[default]\naws_access_key_id = AKIAOLDOLDOLD\n"
				  "aws_secret_access_key = old-secret\n";
	struct cmk_kv kv[] = { { "region", "us-east-1", 1 }, { "endpoint", NULL, 2 },
			       { "credentials", "profile", 3 }, { "max_attempts", "1", 4 } };
	const uint64_t step = CMK_CRED_RELOAD_BOUND_MS / (CMK_CRED_RELOAD_TRIES - 1);
	struct cmk_provider *p = NULL;
	struct cmk_secret *plain = NULL;
	struct cmk_encctx ctx;
	struct tu_peer peer;
	struct cmk_err e;
	unsigned char w[64] = { 1 };

	tu_write_file(tu_path("credentials"), old, strlen(old), 0600);
	setenv("AWS_SHARED_CREDENTIALS_FILE", tu_path("credentials"), 1);
	tu_peer_start(&peer, answer, empty_on_first_request, NULL);
	kv[1].value = peer.url;
	cmk_encctx_init(&ctx);
	assert_int_equal(cmk_provider_open("aws", kv, 4, &p, &e), 0);
	for (int round = 0; round < 2; round++) {
		for (int i = 1; i < CMK_CRED_RELOAD_TRIES; i++) {
			assert_true(cmk_provider_unwrap(p, "alias/k", w, sizeof(w), &ctx,
							&plain, NULL, &e) < 0);
			if (e.cls != CMK_EC_LOCAL)
				fail_msg("round %d, reload %d: class %s: %s", round, i,
					 cmk_err_class_name(e.cls), e.msg);
			assert_contains(e.msg, "not taken as a revocation");
			tu_clock_skew_ms += step;
		}
		if (round == 0) {
			/* the file reads again (same key): the run ends */
			tu_write_file(tu_path("credentials"), old, strlen(old), 0600);
			assert_true(cmk_provider_unwrap(p, "alias/k", w, sizeof(w), &ctx,
							&plain, NULL, &e) < 0);
			assert_int_equal(e.cls, read_again);
			tu_write_file(tu_path("credentials"), "", 0, 0600);
		}
	}
	assert_true(cmk_provider_unwrap(p, "alias/k", w, sizeof(w), &ctx, &plain,
					NULL, &e) < 0);
	if (e.cls != CMK_EC_DEFINITIVE)
		fail_msg("after %d failed reloads over %llu ms: class %s: %s",
			 CMK_CRED_RELOAD_TRIES, (unsigned long long)tu_clock_skew_ms,
			 cmk_err_class_name(e.cls), e.msg);
	assert_int_equal(e.reason, CMK_R_DENIED);
	assert_contains(e.msg, "so the rejection counts");
	assert_null(strstr(e.msg, "old-secret"));
	assert_null(plain);
	tu_clock_skew_ms = 0;
	cmk_provider_close(&p);
	tu_peer_stop(&peer);
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
}

static void aws_credential_reload_failing_for_good_counts_after_bound(void **state)
{
	(void)state;
	reload_failing_for_good(rejected, CMK_EC_DEFINITIVE);
}

static const char expired[] =
	"HTTP/1.1 400 Bad Request\r\n"
	"Content-Type: application/x-amz-json-1.1\r\n"
	"x-amzn-ErrorType: ExpiredTokenException:\r\n"
	"Content-Length: 78\r\n"
	"Connection: close\r\n\r\n"
	"{\"__type\":\"ExpiredTokenException\",\"message\":\"The security token has expired.\"}";

/*
 * The same with credentials that expired (a role detached from the
 * instance: what it had keeps working until it expires, then KMS says
 * ExpiredToken, never "unrecognized").  While the source still reads,
 * expired credentials are refreshed: transient.  Before: transient for
 * good, also past the bound.
 */
static void aws_credential_reload_failing_for_good_expired_counts_after_bound(void **state)
{
	(void)state;
	reload_failing_for_good(expired, CMK_EC_TRANSIENT);
}

/* IMDS: a session token, the role, its credentials; then an outage. */
static const char imds_token_ok[] =
	"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoken123";
static const char imds_role_ok[] =
	"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nrole-1";
static const char imds_creds_ok[] =
	"HTTP/1.1 200 OK\r\nContent-Length: 129\r\nConnection: close\r\n\r\n"
	"{\"Code\":\"Success\",\"AccessKeyId\":\"ASIAIMDSIMDS\",\"SecretAccessKey\":\"imds-secret\","
	"\"Token\":\"tok\",\"Expiration\":\"2099-01-01T00:00:00Z\"}";
static const char imds_down[] =
	"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

static void imds_then_outage(void *arg, int n)
{
	struct tu_peer *p = arg;

	p->answer = n == 1 ? imds_token_ok : n == 2 ? imds_role_ok :
		    n == 3 ? imds_creds_ok : imds_down;
}

/*
 * KMS rejects the instance role's credentials and the metadata service
 * fails when they are read again.  Oracle: credreload.h - a reload that
 * failed transiently keeps its own class (it says nothing about the key,
 * and is retried); before, the last good credentials stood in for the
 * reload and the rejection counted at once as a revocation.
 */
static void aws_credential_reload_imds_outage_keeps_transient_class(void **state)
{
	struct cmk_kv kv[] = { { "region", "us-east-1", 1 }, { "endpoint", NULL, 2 },
			       { "credentials", "imds", 3 }, { "max_attempts", "1", 4 },
			       { "imds_endpoint", NULL, 5 } };
	struct cmk_provider *p = NULL;
	struct cmk_secret *plain = NULL;
	struct cmk_encctx ctx;
	struct tu_peer kms, imds;
	struct cmk_err e;
	unsigned char w[64] = { 1 };

	(void)state;
	tu_peer_start(&kms, rejected, NULL, NULL);
	tu_peer_start(&imds, imds_down, imds_then_outage, &imds);
	kv[1].value = kms.url;
	kv[4].value = imds.url;
	cmk_encctx_init(&ctx);
	assert_int_equal(cmk_provider_open("aws", kv, 5, &p, &e), 0);
	assert_true(cmk_provider_unwrap(p, "alias/k", w, sizeof(w), &ctx, &plain,
					NULL, &e) < 0);
	assert_int_equal(kms.requests, 1);
	assert_true(imds.requests >= 4);
	if (e.cls != CMK_EC_TRANSIENT)
		fail_msg("class %s (%s): %s", cmk_err_class_name(e.cls),
			 cmk_reason_name(e.reason), e.msg);
	assert_int_equal(e.reason, CMK_R_UNAVAILABLE);
	assert_contains(e.msg, "not taken as a revocation");
	assert_null(strstr(e.msg, "imds-secret"));
	cmk_provider_close(&p);
	tu_peer_stop(&imds);
	tu_peer_stop(&kms);
}

static const char decrypt_ok[] =
	"HTTP/1.1 200 OK\r\n"
	"Content-Type: application/x-amz-json-1.1\r\n"
	"Content-Length: %d\r\n"
	"Connection: close\r\n\r\n"
	"%s";

static void answer_late(void *arg, int n)
{
	(void)arg;
	(void)n;
	usleep(9500 * 1000);
}

/*
 * A slow but good first answer, 9.5 s into a 12 s check deadline.
 * Oracle: the quarter of the deadline kept for a confirming DescribeKey is
 * taken from retries only (provider_aws.c): the first attempt may use the
 * whole deadline (before: every call lost a quarter, this one timed out at
 * 9 s).  2.5 s of margin for the answer: only a machine too loaded to
 * answer a loopback socket within seconds could flip it.
 */
static void aws_classify_confirm_reserve_spares_the_first_attempt(void **state)
{
	struct cmk_kv kv[] = { { "region", "us-east-1", 1 }, { "endpoint", NULL, 2 },
			       { "credentials", "environment", 3 }, { "max_attempts", "1", 4 },
			       { "timeout_ms", "60000", 5 } };
	struct cmk_provider *p = NULL;
	struct cmk_secret *plain = NULL;
	struct cmk_encctx ctx;
	struct tu_peer peer;
	struct cmk_err e;
	unsigned char w[64] = { 1 };
	char answer[512];
	int ret;

	(void)state;
	snprintf(answer, sizeof(answer), decrypt_ok, (int)strlen("{\"KeyId\":\"alias/k\",\"Plaintext\":\"AAAA\"}"), "{\"KeyId\":\"alias/k\",\"Plaintext\":\"AAAA\"}");
	setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "notreally", 1);
	tu_peer_start(&peer, answer, answer_late, NULL);
	kv[1].value = peer.url;
	cmk_encctx_init(&ctx);
	assert_int_equal(cmk_provider_open("aws", kv, 5, &p, &e), 0);
	cmk_deadline_set(cmk_deadline_now_ms() + 12000);
	ret = cmk_provider_unwrap(p, "alias/k", w, sizeof(w), &ctx, &plain, NULL, &e);
	cmk_deadline_set(0);
	if (ret)
		fail_msg("a good answer 9.5 s into a 12 s deadline was lost: %s", e.msg);
	assert_non_null(plain);
	cmk_secret_free(&plain);
	cmk_provider_close(&p);
	tu_peer_stop(&peer);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
}

/* ---- throttling: one request, and what Retry-After asked, reach the loop ---------- */

static const char throttled_answer[] =
	"HTTP/1.1 400 Bad Request\r\n"
	"Content-Type: application/x-amz-json-1.1\r\n"
	"x-amzn-ErrorType: ThrottlingException:\r\n"
	"Retry-After: 4\r\n"
	"Content-Length: 58\r\n"
	"Connection: close\r\n\r\n"
	"{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}";

/*
 * A check on cmk-agent's worker (one attempt per request) against a KMS
 * that answers ThrottlingException with Retry-After: 4.  Oracle: the
 * peer's request count (1, though the provider allows 3 attempts) and the
 * error the loop gets: transient, reason throttled (never a revocation),
 * retry_after_ms 4000 (the hold agentloop.h keeps).
 */
static void aws_throttle_one_request_and_retry_after_reach_the_loop(void **state)
{
	struct cmk_kv kv[] = { { "region", "us-east-1", 1 }, { "endpoint", NULL, 2 },
			       { "max_attempts", "3", 3 }, { "credentials", "environment", 4 } };
	struct cmk_provider *p = NULL;
	struct cmk_secret *plain = NULL;
	struct tu_peer peer;
	struct cmk_encctx ctx;
	struct cmk_err e;
	unsigned char w[64] = { 1 };
	int ret;

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "notreally", 1);
	tu_peer_start(&peer, throttled_answer, NULL, NULL);
	kv[1].value = peer.url;
	cmk_encctx_init(&ctx);
	assert_int_equal(cmk_provider_open("aws", kv, 4, &p, &e), 0);
	cmk_http_thread_max_attempts(1);
	cmk_deadline_set(cmk_deadline_now_ms() + 10000);
	ret = cmk_provider_unwrap(p, "alias/k", w, sizeof(w), &ctx, &plain, NULL, &e);
	cmk_deadline_set(0);
	cmk_http_thread_max_attempts(0);
	assert_null(plain);
	cmk_provider_close(&p);
	tu_peer_stop(&peer);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	assert_true(ret < 0);
	assert_int_equal(peer.requests, 1);
	assert_int_equal(e.cls, CMK_EC_TRANSIENT);
	assert_int_equal(e.reason, CMK_R_THROTTLED);
	assert_int_equal(e.retry_after_ms, 4000);
	assert_true(e.kms_throttled);	/* the KMS endpoint's own answer */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(aws_errors_classified_from_recorded_answers),
		cmocka_unit_test(aws_definitive_and_transient_classes),
		cmocka_unit_test(aws_classify_kms_invalid_state_is_not_definitive_alone),
		cmocka_unit_test(aws_classify_describe_key_confirms_key_state),
		cmocka_unit_test(aws_error_text_is_sanitised),
		cmocka_unit_test(aws_endpoint_names),
		cmocka_unit_test(aws_settings_checked_at_open),
		cmocka_unit_test(aws_key_id_pin_refuses_other_key),
		cmocka_unit_test(aws_unreachable_endpoint_is_transient),
		cmocka_unit_test_setup_teardown(aws_credential_reload_half_written_file_is_not_definitive,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(aws_credential_reload_failing_for_good_counts_after_bound,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(aws_credential_reload_failing_for_good_expired_counts_after_bound,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test(aws_credential_reload_imds_outage_keeps_transient_class),
		cmocka_unit_test(aws_classify_confirm_reserve_spares_the_first_attempt),
		cmocka_unit_test(aws_throttle_one_request_and_retry_after_reach_the_loop),
	};

	return cmocka_run_group_tests_name("provider_aws", tests, NULL, NULL);
}
