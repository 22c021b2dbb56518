// SPDX-License-Identifier: GPL-2.0
/*
 * test_provider_gcp.c - the gcp provider without a network: CRC32C,
 * error classification, key names, settings, the service-account key,
 * the signed JWT, token answers and the refresh rule.
 * Oracles: RFC 3720 B.4 for CRC32C; Cloud KMS error answers written here
 * from the documented google.rpc.Status JSON shape ({"error": {"code",
 * "message", "status"}}) with the messages Cloud KMS gives, each with the
 * class the design requires (Documentation/gcp.rst); for the JWT, an
 * RS256 verification with the public half of a key made by the test and
 * the claims RFC 7523 and Google's token endpoint require.  Against a
 * live peer (the emulator held to gcloud): tests/kms/gcp.sh.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "core/crc32c.h"
#include "kms/gcp/gcp_auth.h"
#include "kms/provider.h"
#include "kms/gcp/provider_gcp.h"

/* ---- CRC32C ------------------------------------------------------------------ */

static void gcp_crc32c_rfc3720_vectors(void **state)
{
	unsigned char b[32];

	(void)state;
	memset(b, 0, sizeof(b));
	assert_int_equal(cmk_crc32c(0, b, 32), 0x8A9136AA);
	memset(b, 0xff, sizeof(b));
	assert_int_equal(cmk_crc32c(0, b, 32), 0x62A8AB43);
	for (int i = 0; i < 32; i++)
		b[i] = (unsigned char)i;
	assert_int_equal(cmk_crc32c(0, b, 32), 0x46DD794E);
	for (int i = 0; i < 32; i++)
		b[i] = (unsigned char)(31 - i);
	assert_int_equal(cmk_crc32c(0, b, 32), 0x113FDB5C);
	assert_int_equal(cmk_crc32c(0, "123456789", 9), 0xE3069283);
	assert_int_equal(cmk_crc32c(0, "", 0), 0);
	/* continuing over pieces is the same as one pass */
	assert_int_equal(cmk_crc32c(cmk_crc32c(0, "1234", 4), "56789", 5), 0xE3069283);
}

/* ---- classification ------------------------------------------------------------ */

struct rec {
	const char *name;
	long status;
	const char *body;
	enum cmk_reason want;
	const char *want_status;
};

#define KEY "projects/p1/locations/global/keyRings/r1/cryptoKeys/k1"
#define ST(code, status, msg) \
	"{\"error\":{\"code\":" #code ",\"message\":\"" msg "\",\"status\":\"" status "\"}}"

static const struct rec recs[] = {
	{ "version_disabled", 400,
	  ST(400, "FAILED_PRECONDITION", KEY "/cryptoKeyVersions/1 is not enabled, current state is: DISABLED."),
	  CMK_R_DISABLED, "FAILED_PRECONDITION" },
	{ "version_destroyed", 400,
	  ST(400, "FAILED_PRECONDITION", KEY "/cryptoKeyVersions/1 is not enabled, current state is: DESTROYED."),
	  CMK_R_DESTROYED, "FAILED_PRECONDITION" },
	{ "version_destroy_scheduled", 400,
	  ST(400, "FAILED_PRECONDITION", KEY "/cryptoKeyVersions/1 is not enabled, current state is: DESTROY_SCHEDULED."),
	  CMK_R_DESTROYED, "FAILED_PRECONDITION" },
	{ "permission_denied", 403,
	  ST(403, "PERMISSION_DENIED", "Permission 'cloudkms.cryptoKeyVersions.useToDecrypt' denied on resource '" KEY "' (or it may not exist)."),
	  CMK_R_DENIED, "PERMISSION_DENIED" },
	{ "not_found", 404, ST(404, "NOT_FOUND", KEY " not found."),
	  CMK_R_NOT_FOUND, "NOT_FOUND" },
	{ "unauthenticated", 401,
	  ST(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."),
	  CMK_R_DENIED, "UNAUTHENTICATED" },
	{ "decryption_failed", 400,
	  ST(400, "INVALID_ARGUMENT", "Decryption failed: verify that 'name' refers to the correct CryptoKey."),
	  CMK_R_INVALID_CIPHERTEXT, "INVALID_ARGUMENT" },
	{ "checksum_mismatch_is_transient", 400,
	  ST(400, "INVALID_ARGUMENT", "The checksum in field ciphertext_crc32c did not match the data in field ciphertext."),
	  CMK_R_UNAVAILABLE, "INVALID_ARGUMENT" },
	{ "other_invalid_argument_is_local", 400,
	  ST(400, "INVALID_ARGUMENT", "Invalid value at 'ciphertext' (TYPE_BYTES), Base64 decoding failed"),
	  CMK_R_LOCAL, "INVALID_ARGUMENT" },
	{ "unavailable", 503, ST(503, "UNAVAILABLE", "The service is currently unavailable."),
	  CMK_R_UNAVAILABLE, "UNAVAILABLE" },
	{ "resource_exhausted", 429,
	  ST(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Cryptographic requests' and limit 'Cryptographic requests per minute'"),
	  CMK_R_THROTTLED, "RESOURCE_EXHAUSTED" },
	{ "internal", 500, ST(500, "INTERNAL", "Internal error encountered."),
	  CMK_R_UNAVAILABLE, "INTERNAL" },
	{ "deadline_exceeded", 504, ST(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
	  CMK_R_TIMEOUT, "DEADLINE_EXCEEDED" },
	{ "status_wins_over_http_code", 500,
	  ST(400, "FAILED_PRECONDITION", "x is not enabled, current state is: DISABLED."),
	  CMK_R_DISABLED, "FAILED_PRECONDITION" },
	/* no state named: provisional, confirmed (gcp_classify_ekm_*) */
	{ "failed_precondition_without_state", 400, ST(400, "FAILED_PRECONDITION", "x is not enabled"),
	  CMK_R_UNAVAILABLE, "FAILED_PRECONDITION" },
	{ "html_502", 502, "<html><body>502 Bad Gateway</body></html>", CMK_R_UNAVAILABLE, "" },
	{ "empty_429", 429, "", CMK_R_THROTTLED, "" },
	{ "html_404_is_wrong_endpoint", 404, "<!DOCTYPE html><html>Error 404 (Not Found)!!1</html>",
	  CMK_R_LOCAL, "" },
	{ "forbidden_no_body", 403, "", CMK_R_DENIED, "" },
	{ "unknown_status_5xx", 503, ST(503, "SOMETHING_NEW", ""), CMK_R_UNAVAILABLE, "SOMETHING_NEW" },
	{ "truncated_json_400", 400, "{\"error\":{\"status\":", CMK_R_LOCAL, "" },
	{ "success", 200, "{\"plaintext\":\"AAAA\"}", CMK_R_NONE, "" },
};

static void gcp_errors_classified_from_status_bodies(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		const struct rec *r = &recs[i];
		struct cmk_gcp_error err;
		enum cmk_reason got;

		got = cmk_gcp_classify(r->status, r->body, strlen(r->body), &err);
		if (got != r->want || strcmp(err.status, r->want_status)) {
			print_message("# %s: got %s/%s, want %s/%s\n", r->name,
				      cmk_reason_name(got), err.status,
				      cmk_reason_name(r->want), r->want_status);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* The class the agent acts on, for the codes the design names. */
static void gcp_definitive_and_transient_classes(void **state)
{
	static const char *const definitive[] = {
		"PERMISSION_DENIED", "NOT_FOUND", NULL,
	};
	static const char *const transient[] = {
		"UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL", "DEADLINE_EXCEEDED", NULL,
	};
	char body[160];

	(void)state;
	for (const char *const *c = definitive; *c; c++) {
		snprintf(body, sizeof(body), "{\"error\":{\"code\":400,\"status\":\"%s\"}}", *c);
		assert_int_equal(cmk_reason_class(cmk_gcp_classify(400, body, strlen(body), NULL)),
				 CMK_EC_DEFINITIVE);
	}
	for (const char *const *c = transient; *c; c++) {
		snprintf(body, sizeof(body), "{\"error\":{\"code\":500,\"status\":\"%s\"}}", *c);
		assert_int_equal(cmk_reason_class(cmk_gcp_classify(500, body, strlen(body), NULL)),
				 CMK_EC_TRANSIENT);
	}
	for (long s = 500; s <= 599; s++)
		assert_int_equal(cmk_reason_class(cmk_gcp_classify(s, "", 0, NULL)),
				 CMK_EC_TRANSIENT);
}

/*
 * Cloud EKM answers FAILED_PRECONDITION for failures of the external key
 * manager, reachable or not, with google.rpc.PreconditionFailure details
 * (violation[0]: the Cloud EKM key's state, violation[1]: the attempt to
 * reach the partner, its type the "error domain"), as the Cloud EKM error
 * reference documents; the messages and domains below are from it, the
 * violation[0] fields are illustrative.  Never definitive by itself; the
 * version it names is kept for the confirming GET.  A plain Cloud KMS
 * FAILED_PRECONDITION that names the version's state is not ambiguous.
 */
#define EKM(msg, domain) \
	"{\"error\":{\"code\":400,\"message\":\"" msg "\",\"status\":\"FAILED_PRECONDITION\"," \
	"\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.PreconditionFailure\"," \
	"\"violations\":[{\"type\":\"KEY_VERSION\",\"subject\":\"" KEY "/cryptoKeyVersions/3\"," \
	"\"description\":\"The Cloud EKM key version is enabled.\"},{\"type\":\"" domain "\"," \
	"\"subject\":\"https://ekm.example.com/v0/cryptospaces/s1/keys/k1\"," \
	"\"description\":\"" msg "\"}]}]}}"

static void gcp_classify_ekm_failed_precondition_is_not_definitive_alone(void **state)
{
	static const char *const bodies[] = {
		EKM("Could not query EKM host.", "EXTERNAL_NOT_FOUND"),
		EKM("Permission was denied when accessing the key.", "EXTERNAL_PERMISSION_DENIED"),
		EKM("The request to the EKM timed out.", "EXTERNAL_DEADLINE_EXCEEDED"),
	};
	static const char plain[] =
		ST(400, "FAILED_PRECONDITION", KEY "/cryptoKeyVersions/3 is not enabled, current state is: DISABLED.");
	struct cmk_gcp_error err;
	enum cmk_reason r;

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		r = cmk_gcp_classify(400, bodies[i], strlen(bodies[i]), &err);
		if (cmk_reason_class(r) == CMK_EC_DEFINITIVE)
			fail_msg("EKM body %zu classified %s (definitive) without confirmation",
				 i, cmk_reason_name(r));
		assert_int_equal(r, CMK_R_UNAVAILABLE);
		assert_true(err.confirm);
		assert_string_equal(err.version, KEY "/cryptoKeyVersions/3");
	}
	r = cmk_gcp_classify(400, plain, strlen(plain), &err);
	assert_int_equal(r, CMK_R_DISABLED);
	assert_false(err.confirm);
	assert_string_equal(err.version, KEY "/cryptoKeyVersions/3");
}

/* CryptoKeyVersion resources (GET v1/{name}), as the REST reference shows them. */
#define VERSION(st) \
	"{\"name\":\"" KEY "/cryptoKeyVersions/3\",\"state\":\"" st "\"," \
	"\"protectionLevel\":\"EXTERNAL\",\"algorithm\":\"EXTERNAL_SYMMETRIC_ENCRYPTION\"," \
	"\"createTime\":\"2024-05-02T10:00:00.000000Z\",\"generateTime\":\"2024-05-02T10:00:00.000000Z\"," \
	"\"externalProtectionLevelOptions\":{\"externalKeyUri\":\"https://ekm.example.com/v0/keys/k1\"}}"

static void gcp_classify_version_get_confirms_state(void **state)
{
	static const struct {
		long status;
		const char *body;
		enum cmk_reason want;
		const char *want_state;
	} cases[] = {
		{ 200, VERSION("ENABLED"), CMK_R_UNAVAILABLE, "ENABLED" },
		{ 200, VERSION("DISABLED"), CMK_R_DISABLED, "DISABLED" },
		{ 200, VERSION("DESTROY_SCHEDULED"), CMK_R_DESTROYED, "DESTROY_SCHEDULED" },
		{ 200, VERSION("DESTROYED"), CMK_R_DESTROYED, "DESTROYED" },
		{ 200, VERSION("PENDING_EXTERNAL_DESTRUCTION"), CMK_R_DESTROYED,
		  "PENDING_EXTERNAL_DESTRUCTION" },
		{ 200, VERSION("EXTERNAL_DESTRUCTION_FAILED"), CMK_R_DESTROYED,
		  "EXTERNAL_DESTRUCTION_FAILED" },
		{ 200, VERSION("PENDING_GENERATION"), CMK_R_UNAVAILABLE, "PENDING_GENERATION" },
		{ 200, "{\"name\":\"x\"}", CMK_R_UNAVAILABLE, "" },
		{ 404, ST(404, "NOT_FOUND", KEY "/cryptoKeyVersions/3 not found."), CMK_R_NOT_FOUND, "" },
		/* no cloudkms.cryptoKeyVersions.get: nothing confirmed */
		{ 403, ST(403, "PERMISSION_DENIED", "Permission 'cloudkms.cryptoKeyVersions.get' denied on resource"),
		  CMK_R_UNAVAILABLE, "" },
		{ 503, "", CMK_R_UNAVAILABLE, "" },
	};
	char st[40];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum cmk_reason r = cmk_gcp_version_state_reason(cases[i].status, cases[i].body,
								 strlen(cases[i].body), st,
								 sizeof(st));

		if (r != cases[i].want || strcmp(st, cases[i].want_state))
			fail_msg("case %zu: got %s \"%s\", want %s \"%s\"", i,
				 cmk_reason_name(r), st, cmk_reason_name(cases[i].want),
				 cases[i].want_state);
	}
}

static void gcp_error_text_is_sanitised(void **state)
{
	const char *body = "{\"error\":{\"status\":\"PERMISSION\\u001b_DENIED\\n\",\"message\":\"a\\u0007b\\nc\"}}";
	struct cmk_gcp_error err;

	(void)state;
	cmk_gcp_classify(403, body, strlen(body), &err);
	for (const char *c = err.status; *c; c++)
		assert_true(*c > ' ' && *c < 0x7f);
	for (const char *c = err.message; *c; c++)
		assert_true(*c >= ' ' && *c < 0x7f);
}

static void gcp_key_names(void **state)
{
	(void)state;
	assert_true(cmk_gcp_key_name_ok(KEY));
	assert_true(cmk_gcp_key_name_ok("projects/my-proj_1/locations/europe-west1/keyRings/ring-a/cryptoKeys/cmk_1"));
	assert_false(cmk_gcp_key_name_ok(KEY "/cryptoKeyVersions/1"));
	assert_false(cmk_gcp_key_name_ok("projects/p/locations/l/keyRings/r"));
	assert_false(cmk_gcp_key_name_ok("projects//locations/l/keyRings/r/cryptoKeys/k"));
	assert_false(cmk_gcp_key_name_ok("projects/p/locations/l/keyRings/r/cryptoKeys/k:decrypt"));
	assert_false(cmk_gcp_key_name_ok("projects/p/locations/l/keyRings/../cryptoKeys/k"));
	assert_false(cmk_gcp_key_name_ok("projects/p/locations/l/keyRings/r/cryptoKeys/k?x=1"));
	assert_false(cmk_gcp_key_name_ok("arn:aws:kms:us-east-1:1:key/x"));
	assert_false(cmk_gcp_key_name_ok(""));
}

/* ---- a service-account key made by the test ------------------------------------ */

static EVP_PKEY *test_rsa(void)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);

	assert_non_null(k);
	return k;
}

/* The JSON key file Google hands out, around @k's private key. */
static char *sa_json(EVP_PKEY *k, const char *type, const char *token_uri)
{
	struct json_object *o = json_object_new_object();
	BIO *b = BIO_new(BIO_s_mem());
	char *pem, *out;
	long n;

	assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(b, &pem);
	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "project_id", json_object_new_string("p1"));
	json_object_object_add(o, "private_key_id",
			       json_object_new_string("0123456789abcdef0123456789abcdef01234567"));
	json_object_object_add(o, "private_key", json_object_new_string_len(pem, (int)n));
	json_object_object_add(o, "client_email",
			       json_object_new_string("cmk-agent@p1.iam.gserviceaccount.com"));
	json_object_object_add(o, "client_id", json_object_new_string("1234567890"));
	json_object_object_add(o, "token_uri", json_object_new_string(token_uri));
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
	json_object_put(o);
	BIO_free(b);
	return out;
}

/* base64url (no padding) -> bytes; test-side decoder, not the library's. */
static unsigned char *unb64url(const char *s, size_t n, size_t *out_len)
{
	size_t m = (n + 3) / 4 * 4;
	char *t = calloc(1, m + 1);
	unsigned char *out = calloc(1, m);
	int r;

	for (size_t i = 0; i < m; i++)
		t[i] = i < n ? (s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i]) : '=';
	r = EVP_DecodeBlock(out, (unsigned char *)t, (int)m);
	assert_true(r >= 0);
	*out_len = (size_t)r - (m - n);
	free(t);
	return out;
}

static void gcp_sa_key_jwt_verifies_with_public_key(void **state)
{
	EVP_PKEY *k = test_rsa();
	char *js = sa_json(k, "service_account", "https://oauth2.example.test/token");
	struct cmk_gcp_sa_key sa;
	struct cmk_secret *jwt = NULL;
	struct cmk_err e;
	const char *j, *d1, *d2;
	unsigned char *hdr, *cl, *sig;
	size_t hl, cll, sl;
	struct json_object *h, *c, *v;
	EVP_MD_CTX *md;

	(void)state;
	assert_int_equal(cmk_gcp_sa_key_parse(js, strlen(js), &sa, &e), 0);
	assert_string_equal(sa.client_email, "cmk-agent@p1.iam.gserviceaccount.com");
	assert_string_equal(sa.token_uri, "https://oauth2.example.test/token");
	assert_int_equal(cmk_gcp_jwt_sign(&sa, CMK_GCP_SCOPE, 1700000000, &jwt, &e), 0);
	j = (const char *)cmk_secret_cdata(jwt);
	d1 = strchr(j, '.');
	assert_non_null(d1);
	d2 = strchr(d1 + 1, '.');
	assert_non_null(d2);
	assert_null(strchr(d2 + 1, '.'));
	assert_null(strpbrk(j, "+/= \n"));	/* base64url, no padding */
	hdr = unb64url(j, (size_t)(d1 - j), &hl);
	cl = unb64url(d1 + 1, (size_t)(d2 - d1 - 1), &cll);
	sig = unb64url(d2 + 1, strlen(d2 + 1), &sl);
	h = json_tokener_parse((char *)hdr);
	c = json_tokener_parse((char *)cl);
	assert_non_null(h);
	assert_non_null(c);
	assert_true(json_object_object_get_ex(h, "alg", &v));
	assert_string_equal(json_object_get_string(v), "RS256");
	assert_true(json_object_object_get_ex(h, "kid", &v));
	assert_string_equal(json_object_get_string(v), "0123456789abcdef0123456789abcdef01234567");
	assert_true(json_object_object_get_ex(c, "iss", &v));
	assert_string_equal(json_object_get_string(v), "cmk-agent@p1.iam.gserviceaccount.com");
	/* Google's documented audience, whatever token_uri says (as google-auth) */
	assert_true(json_object_object_get_ex(c, "aud", &v));
	assert_string_equal(json_object_get_string(v), "https://oauth2.googleapis.com/token");
	assert_true(json_object_object_get_ex(c, "scope", &v));
	assert_string_equal(json_object_get_string(v), "https://www.googleapis.com/auth/cloudkms");
	assert_true(json_object_object_get_ex(c, "iat", &v));
	assert_int_equal(json_object_get_int64(v), 1700000000);
	assert_true(json_object_object_get_ex(c, "exp", &v));
	assert_int_equal(json_object_get_int64(v), 1700000000 + 3600);
	/* RS256 = RSASSA-PKCS1-v1_5 with SHA-256 over "header.claims" */
	assert_int_equal(sl, 256);
	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestVerify(md, sig, sl, (const unsigned char *)j,
					  (size_t)(d2 - j)), 1);
	/* and a flipped bit in the claims does not verify */
	EVP_MD_CTX_free(md);
	{
		char *t = strdup(j);

		t[(d1 - j) + 3] ^= 1;
		md = EVP_MD_CTX_new();
		assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k), 1);
		assert_int_not_equal(EVP_DigestVerify(md, sig, sl, (const unsigned char *)t,
						      (size_t)(d2 - j)), 1);
		EVP_MD_CTX_free(md);
		free(t);
	}
	json_object_put(h);
	json_object_put(c);
	free(hdr);
	free(cl);
	free(sig);
	cmk_secret_free(&jwt);
	cmk_gcp_sa_key_free(&sa);
	free(js);
	EVP_PKEY_free(k);
}

static void gcp_sa_key_bad_files_refused(void **state)
{
	EVP_PKEY *k = test_rsa();
	char *user = sa_json(k, "authorized_user", "https://oauth2.example.test/token");
	char *ftp = sa_json(k, "service_account", "ftp://x/token");
	const char *nokey = "{\"type\":\"service_account\",\"client_email\":\"a@b\",\"private_key_id\":\"1\",\"token_uri\":\"https://x\"}";
	const char *badpem = "{\"type\":\"service_account\",\"client_email\":\"a@b\",\"private_key_id\":\"1\",\"token_uri\":\"https://x\",\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n\"}";
	struct cmk_gcp_sa_key sa;
	struct cmk_err e;

	(void)state;
	assert_true(cmk_gcp_sa_key_parse(user, strlen(user), &sa, &e) < 0);
	assert_contains(e.msg, "service_account");
	assert_true(cmk_gcp_sa_key_parse(ftp, strlen(ftp), &sa, &e) < 0);
	assert_contains(e.msg, "token_uri");
	assert_true(cmk_gcp_sa_key_parse(nokey, strlen(nokey), &sa, &e) < 0);
	assert_contains(e.msg, "missing");
	assert_true(cmk_gcp_sa_key_parse(badpem, strlen(badpem), &sa, &e) < 0);
	assert_contains(e.msg, "private_key");
	assert_true(cmk_gcp_sa_key_parse("{", 1, &sa, &e) < 0);
	/* nothing of the key in a message */
	assert_null(strstr(e.msg, "BEGIN"));
	free(user);
	free(ftp);
	EVP_PKEY_free(k);
}

/*
 * A rotated service-account key: the file is read again when the token
 * endpoint refuses the old one (cmk_gcp_token_src_reload_key()); same file
 * -> unchanged, another private key (even under the same key id) ->
 * changed, a broken file -> an error and the key in use stays.
 */
static void gcp_credential_key_reload_sees_rotated_file(void **state)
{
	EVP_PKEY *k1 = test_rsa(), *k2 = test_rsa();
	char *j1 = sa_json(k1, "service_account", "https://oauth2.example.test/token");
	char *j2 = sa_json(k2, "service_account", "https://oauth2.example.test/token");
	struct cmk_gcp_token_src src;
	struct cmk_err e;
	bool changed;

	(void)state;
	tu_write_file(tu_path("sa.json"), j1, strlen(j1), 0600);
	assert_int_equal(cmk_gcp_token_src_init(&src, "service_account", tu_path("sa.json"),
						NULL, NULL, NULL, &e), 0);
	assert_int_equal(cmk_gcp_token_src_reload_key(&src, &changed, &e), 0);
	assert_false(changed);
	assert_int_equal(EVP_PKEY_eq(src.sa.pkey, k1), 1);
	tu_write_file(tu_path("sa.json"), j2, strlen(j2), 0600);
	assert_int_equal(cmk_gcp_token_src_reload_key(&src, &changed, &e), 0);
	assert_true(changed);
	assert_int_equal(EVP_PKEY_eq(src.sa.pkey, k2), 1);
	tu_write_file(tu_path("sa.json"), "{\"type\":", 8, 0600);
	assert_true(cmk_gcp_token_src_reload_key(&src, &changed, &e) < 0);
	assert_false(changed);
	assert_int_equal(EVP_PKEY_eq(src.sa.pkey, k2), 1);
	assert_null(strstr(e.msg, "BEGIN"));
	cmk_gcp_token_src_free(&src);
	free(j1);
	free(j2);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
}

static const char token_rejects[] =
	"HTTP/1.1 400 Bad Request\r\n"
	"Content-Type: application/json\r\n"
	"Content-Length: 70\r\n"
	"Connection: close\r\n\r\n"
	"{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}";

/*
 * What the rotation has written to the key file when the endpoint answers
 * (NULL: a whole new key, new_key, with the same token_uri).
 */
static const char *key_state;
static EVP_PKEY *new_key;
static char token_uri[96];

static void rotate_key_on_first_request(void *arg, int n)
{
	char *j;

	(void)arg;
	if (n != 1)
		return;
	if (key_state) {
		tu_write_file(tu_path("sa.json"), key_state, strlen(key_state), 0600);
		return;
	}
	j = sa_json(new_key, "service_account", token_uri);
	tu_write_file(tu_path("sa.json"), j, strlen(j), 0600);
	free(j);
}

static int token_during_key_rotation(const char *state, struct tu_peer *peer,
				     struct cmk_err *e)
{
	EVP_PKEY *k = test_rsa();
	struct cmk_gcp_token_src src;
	const char *bearer = NULL;
	char *j;
	int ret;

	key_state = state;
	tu_peer_start(peer, token_rejects, rotate_key_on_first_request, NULL);
	snprintf(token_uri, sizeof(token_uri), "%s/token", peer->url);
	j = sa_json(k, "service_account", token_uri);
	tu_write_file(tu_path("sa.json"), j, strlen(j), 0600);
	assert_int_equal(cmk_gcp_token_src_init(&src, "service_account", tu_path("sa.json"),
						NULL, NULL, NULL, e), 0);
	ret = cmk_gcp_token_get(&src, time(NULL), &bearer, e);
	assert_null(bearer);
	tu_peer_stop(peer);
	cmk_gcp_token_src_free(&src);
	free(j);
	EVP_PKEY_free(k);
	return ret;
}

/*
 * The token endpoint rejects the service account's key; read again, the
 * key file is half written (a rotation rewriting it in place).  Oracle: a
 * file that does not parse says nothing about the key (gcp.rst): a local
 * error, retried, never a revocation.  The control: a whole new key that
 * is also rejected is the definitive "no" it was before.
 */
static void gcp_credential_reload_half_written_key_is_not_definitive(void **state)
{
	static const char *const half[] = { "", "{\"type\": \"service_account\", \"pri" };
	struct tu_peer peer;
	struct cmk_err e;

	(void)state;
	for (size_t i = 0; i < sizeof(half) / sizeof(half[0]); i++) {
		assert_true(token_during_key_rotation(half[i], &peer, &e) < 0);
		assert_int_equal(peer.requests, 1);
		if (e.cls != CMK_EC_LOCAL)
			fail_msg("key file state %zu: class %s: %s", i,
				 cmk_err_class_name(e.cls), e.msg);
		assert_contains(e.msg, "not taken as a revocation");
	}
	new_key = test_rsa();
	assert_true(token_during_key_rotation(NULL, &peer, &e) < 0);
	assert_int_equal(peer.requests, 2);	/* asked again with the new key */
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_int_equal(e.reason, CMK_R_DENIED);
	assert_null(strstr(e.msg, "BEGIN"));
	EVP_PKEY_free(new_key);
	new_key = NULL;
}

/* ---- token answers and the refresh rule ------------------------------------------ */

static void gcp_token_answers(void **state)
{
	const char *good = "{\"access_token\":\"ya29.c.abc-DEF_123\",\"expires_in\":3599,\"token_type\":\"Bearer\"}";
	const char *str_ttl = "{\"access_token\":\"t\",\"expires_in\":\"120\"}";
	const char *bad[] = {
		"{\"access_token\":\"\",\"expires_in\":3599}",
		"{\"access_token\":\"a b\",\"expires_in\":3599}",
		"{\"access_token\":\"t\",\"expires_in\":0}",
		"{\"access_token\":\"t\"}",
		"{\"access_token\":\"t\",\"expires_in\":3599,\"token_type\":\"MAC\"}",
		"[]", NULL,
	};
	struct cmk_secret *b = NULL;
	struct cmk_err e;
	time_t exp = 0;

	(void)state;
	assert_int_equal(cmk_gcp_token_parse(good, strlen(good), 1000, &b, &exp, &e), 0);
	assert_string_equal((const char *)cmk_secret_cdata(b), "Bearer ya29.c.abc-DEF_123");
	assert_int_equal(exp, 1000 + 3599);
	cmk_secret_free(&b);
	assert_int_equal(cmk_gcp_token_parse(str_ttl, strlen(str_ttl), 0, &b, &exp, &e), 0);
	assert_int_equal(exp, 120);
	cmk_secret_free(&b);
	for (const char **s = bad; *s; s++) {
		assert_true(cmk_gcp_token_parse(*s, strlen(*s), 0, &b, &exp, &e) < 0);
		assert_null(b);
	}
}

static void gcp_token_refreshed_before_expiry(void **state)
{
	struct cmk_gcp_token_src s;
	struct cmk_err e;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_true(cmk_gcp_token_needs_refresh(&s, 0));	/* none yet */
	assert_int_equal(cmk_secret_new(&s.bearer, 8, &e), 0);
	/* an hour's token: refreshed in its last 5 minutes */
	s.issued = 1000;
	s.exp = 1000 + 3600;
	assert_false(cmk_gcp_token_needs_refresh(&s, 1000));
	assert_false(cmk_gcp_token_needs_refresh(&s, 1000 + 3600 - 301));
	assert_true(cmk_gcp_token_needs_refresh(&s, 1000 + 3600 - 300));
	/* a short one: in its second half, never only at expiry */
	s.exp = 1000 + 8;
	assert_false(cmk_gcp_token_needs_refresh(&s, 1003));
	assert_true(cmk_gcp_token_needs_refresh(&s, 1004));
	/* a 401 marks it stale */
	cmk_gcp_token_invalidate(&s);
	assert_true(cmk_gcp_token_needs_refresh(&s, 1000));
	cmk_secret_free(&s.bearer);
}

/* ---- settings ---------------------------------------------------------------------- */

static void gcp_settings_checked_at_open(void **state)
{
	struct cmk_provider *p = NULL;
	struct cmk_err e;
	EVP_PKEY *k = test_rsa();
	char *js = sa_json(k, "service_account", "https://127.0.0.1:1/token");
	struct cmk_kv bad_cred = { "credentials", "gcloud", 1 };
	struct cmk_kv bad_ep = { "endpoint", "ftp://kms", 1 };
	struct cmk_kv bad_name = { "key_name", KEY "/cryptoKeyVersions/2", 1 };
	struct cmk_kv bad_ca = { "ca_bundle", "/nonexistent/ca.pem", 1 };
	struct cmk_kv bad_to = { "timeout_ms", "0", 1 };
	struct cmk_kv bad_acct = { "service_account", "a/../b", 1 };
	struct cmk_kv sa_missing[] = { { "credentials", "service_account", 1 },
				       { "service_account_key", "/nonexistent/key.json", 2 } };
	struct cmk_kv unknown = { "private_key", "x", 1 };
	struct cmk_kv md[] = { { "credentials", "metadata", 1 },
			       { "metadata_endpoint", "http://127.0.0.1:9", 2 },
			       { "key_name", KEY, 3 } };
	struct cmk_kv sa[2] = { { "credentials", "service_account", 1 },
				{ "service_account_key", NULL, 2 } };

	(void)state;
	tu_setup_tmpdir(state);
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	assert_non_null(cmk_provider_find("gcp"));
	assert_true(cmk_provider_open("gcp", &bad_cred, 1, &p, &e) < 0);
	assert_contains(e.msg, "credentials");
	assert_true(cmk_provider_open("gcp", &bad_ep, 1, &p, &e) < 0);
	assert_contains(e.msg, "endpoint");
	assert_true(cmk_provider_open("gcp", &bad_name, 1, &p, &e) < 0);
	assert_contains(e.msg, "key_name");
	assert_true(cmk_provider_open("gcp", &bad_ca, 1, &p, &e) < 0);
	assert_contains(e.msg, "ca_bundle");
	assert_true(cmk_provider_open("gcp", &bad_to, 1, &p, &e) < 0);
	assert_contains(e.msg, "timeout_ms");
	assert_true(cmk_provider_open("gcp", &bad_acct, 1, &p, &e) < 0);
	assert_contains(e.msg, "service_account");
	assert_true(cmk_provider_open("gcp", sa_missing, 2, &p, &e) < 0);
	assert_contains(e.msg, "/nonexistent/key.json");
	assert_true(cmk_provider_open("gcp", &unknown, 1, &p, &e) < 0);
	assert_contains(e.msg, "unknown setting");
	assert_int_equal(cmk_provider_open("gcp", md, 3, &p, &e), 0);
	cmk_provider_close(&p);
	tu_write_file(tu_path("sa.json"), js, strlen(js), 0600);
	sa[1].value = tu_path("sa.json");
	assert_int_equal(cmk_provider_open("gcp", sa, 2, &p, &e), 0);
	cmk_provider_close(&p);
	/* auto picks the key file named by GOOGLE_APPLICATION_CREDENTIALS */
	setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/adc.json", 1);
	assert_true(cmk_provider_open("gcp", NULL, 0, &p, &e) < 0);
	assert_contains(e.msg, "/nonexistent/adc.json");
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	free(js);
	EVP_PKEY_free(k);
	tu_teardown_tmpdir(state);
}

/* A pinned key_name refuses envelopes under another key, before any call. */
static void gcp_pinned_key_name_refuses_other_keys(void **state)
{
	struct cmk_provider *p = NULL;
	struct cmk_err e;
	struct cmk_kv kv[] = { { "credentials", "metadata", 1 },
			       { "metadata_endpoint", "http://127.0.0.1:9", 2 },
			       { "key_name", KEY, 3 } };
	struct cmk_secret *plain = NULL;
	unsigned char w[64] = { 1 };

	(void)state;
	assert_int_equal(cmk_provider_open("gcp", kv, 3, &p, &e), 0);
	assert_true(cmk_provider_unwrap(p, "projects/p1/locations/global/keyRings/r1/cryptoKeys/other",
					w, sizeof(w), NULL, &plain, NULL, &e) < 0);
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_contains(e.msg, "pins key_name");
	assert_true(cmk_provider_unwrap(p, "alias/x", w, sizeof(w), NULL, &plain, NULL, &e) < 0);
	assert_contains(e.msg, "not a CryptoKey name");
	assert_null(plain);
	cmk_provider_close(&p);
}

/* Nothing listens on port 9: transient (network), never a revocation. */
static void gcp_metadata_unreachable_is_transient(void **state)
{
	struct cmk_provider *p = NULL;
	struct cmk_err e;
	struct cmk_kv kv[] = { { "credentials", "metadata", 1 },
			       { "metadata_endpoint", "http://127.0.0.1:9", 2 } };
	struct cmk_secret *plain = NULL;
	unsigned char w[64] = { 1 };

	(void)state;
	assert_int_equal(cmk_provider_open("gcp", kv, 2, &p, &e), 0);
	assert_true(cmk_provider_unwrap(p, KEY, w, sizeof(w), NULL, &plain, NULL, &e) < 0);
	assert_int_equal(e.cls, CMK_EC_TRANSIENT);
	assert_contains(e.msg, "metadata server");
	cmk_provider_close(&p);
}

/*
 * The token endpoint rejects the key and the key file stays empty (the
 * key deleted for good, a sync tool that broke).  Oracle: credreload.h -
 * not a revocation while reading it again has failed for less than
 * CMK_CRED_RELOAD_BOUND_MS or fewer than CMK_CRED_RELOAD_TRIES times; the
 * rejection counts (denied, definitive) once both are reached.  Before:
 * local for ever.
 */
static void gcp_credential_reload_failing_for_good_counts_after_bound(void **state)
{
	const uint64_t step = CMK_CRED_RELOAD_BOUND_MS / (CMK_CRED_RELOAD_TRIES - 1);
	EVP_PKEY *k = test_rsa();
	struct cmk_gcp_token_src src;
	const char *bearer = NULL;
	struct tu_peer peer;
	struct cmk_err e;
	char *j;

	(void)state;
	key_state = "";
	tu_peer_start(&peer, token_rejects, rotate_key_on_first_request, NULL);
	snprintf(token_uri, sizeof(token_uri), "%s/token", peer.url);
	j = sa_json(k, "service_account", token_uri);
	tu_write_file(tu_path("sa.json"), j, strlen(j), 0600);
	assert_int_equal(cmk_gcp_token_src_init(&src, "service_account", tu_path("sa.json"),
						NULL, NULL, NULL, &e), 0);
	for (int i = 1; i < CMK_CRED_RELOAD_TRIES; i++) {
		assert_true(cmk_gcp_token_get(&src, time(NULL), &bearer, &e) < 0);
		if (e.cls != CMK_EC_LOCAL)
			fail_msg("reload %d: class %s: %s", i, cmk_err_class_name(e.cls), e.msg);
		assert_contains(e.msg, "not taken as a revocation");
		tu_clock_skew_ms += step;
	}
	assert_true(cmk_gcp_token_get(&src, time(NULL), &bearer, &e) < 0);
	if (e.cls != CMK_EC_DEFINITIVE)
		fail_msg("after %d failed reloads: class %s: %s", CMK_CRED_RELOAD_TRIES,
			 cmk_err_class_name(e.cls), e.msg);
	assert_int_equal(e.reason, CMK_R_DENIED);
	assert_contains(e.msg, "so the rejection counts");
	assert_null(strstr(e.msg, "BEGIN"));
	assert_null(bearer);
	tu_clock_skew_ms = 0;
	tu_peer_stop(&peer);
	cmk_gcp_token_src_free(&src);
	free(j);
	EVP_PKEY_free(k);
}

static const char md_throttled[] =
	"HTTP/1.1 429 Too Many Requests\r\n"
	"Metadata-Flavor: Google\r\n"
	"Retry-After: 5\r\n"
	"Content-Length: 0\r\n"
	"Connection: close\r\n\r\n";

/*
 * The metadata server (plain HTTP on the VM's network) answers 429: a
 * throttle (the loop backs off), but not the KMS's own word, so it never
 * extends the grace period (err.kms_throttled false, agentloop.h) - the
 * VM's network could forge it.
 */
static void gcp_throttle_metadata_429_is_not_the_kms(void **state)
{
	struct cmk_kv kv[] = { { "credentials", "metadata", 1 },
			       { "metadata_endpoint", NULL, 2 } };
	struct cmk_provider *p = NULL;
	struct cmk_secret *plain = NULL;
	struct tu_peer peer;
	struct cmk_err e;
	unsigned char w[64] = { 1 };

	(void)state;
	tu_peer_start(&peer, md_throttled, NULL, NULL);
	kv[1].value = peer.url;
	assert_int_equal(cmk_provider_open("gcp", kv, 2, &p, &e), 0);
	assert_true(cmk_provider_unwrap(p, KEY, w, sizeof(w), NULL, &plain, NULL, &e) < 0);
	cmk_provider_close(&p);
	tu_peer_stop(&peer);
	assert_int_equal(e.cls, CMK_EC_TRANSIENT);
	assert_int_equal(e.reason, CMK_R_THROTTLED);
	assert_false(e.kms_throttled);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gcp_crc32c_rfc3720_vectors),
		cmocka_unit_test(gcp_errors_classified_from_status_bodies),
		cmocka_unit_test(gcp_definitive_and_transient_classes),
		cmocka_unit_test(gcp_classify_ekm_failed_precondition_is_not_definitive_alone),
		cmocka_unit_test(gcp_classify_version_get_confirms_state),
		cmocka_unit_test(gcp_error_text_is_sanitised),
		cmocka_unit_test(gcp_key_names),
		cmocka_unit_test(gcp_sa_key_jwt_verifies_with_public_key),
		cmocka_unit_test(gcp_sa_key_bad_files_refused),
		cmocka_unit_test_setup_teardown(gcp_credential_reload_failing_for_good_counts_after_bound,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(gcp_credential_reload_half_written_key_is_not_definitive,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(gcp_credential_key_reload_sees_rotated_file,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test(gcp_token_answers),
		cmocka_unit_test(gcp_token_refreshed_before_expiry),
		cmocka_unit_test(gcp_settings_checked_at_open),
		cmocka_unit_test(gcp_pinned_key_name_refuses_other_keys),
		cmocka_unit_test(gcp_metadata_unreachable_is_transient),
		cmocka_unit_test(gcp_throttle_metadata_429_is_not_the_kms),
	};

	return cmocka_run_group_tests_name("provider_gcp", tests, NULL, NULL);
}
