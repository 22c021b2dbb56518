// SPDX-License-Identifier: GPL-2.0
/*
 * test_provider_azure.c - the azure provider without a network: Key Vault
 * and token-service error classification, key URLs, the envelope bytes,
 * the WWW-Authenticate challenge, token parsing and refresh timing,
 * settings.
 * Oracle for classification: Key Vault answers written here from the
 * documented error shape ({"error":{"code","message","innererror":
 * {"code"}}}), IMDS and Entra ID token answers from their documented
 * shapes, each with the class the design requires (Documentation/
 * azure.rst).  The challenge rules follow azure-keyvault-keys'
 * http_challenge.py and challenge_auth_policy.py.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kms/azure/azure_auth.h"
#include "kms/provider.h"
#include "kms/azure/provider_azure.h"

struct rec {
	const char *name;
	long status;
	const char *body;
	enum cmk_reason want;
	const char *want_code;
};

static const struct rec recs[] = {
	{ "key_disabled", 403,
	  "{\"error\":{\"code\":\"Forbidden\",\"message\":\"Operation unwrapKey is not allowed on a disabled key.\",\"innererror\":{\"code\":\"KeyDisabled\"}}}",
	  CMK_R_DISABLED, "Forbidden" },
	{ "forbidden_by_rbac", 403,
	  "{\"error\":{\"code\":\"Forbidden\",\"message\":\"Caller is not authorized to perform action on resource.\\r\\nAction: 'Microsoft.KeyVault/vaults/keys/unwrap/action'\",\"innererror\":{\"code\":\"ForbiddenByRbac\"}}}",
	  CMK_R_DENIED, "Forbidden" },
	{ "access_policy_denied", 403,
	  "{\"error\":{\"code\":\"Forbidden\",\"message\":\"The user, group or application does not have keys unwrapKey permission on key vault 'v'.\",\"innererror\":{\"code\":\"AccessDenied\"}}}",
	  CMK_R_DENIED, "Forbidden" },
	{ "forbidden_plain", 403, "{\"error\":{\"code\":\"Forbidden\",\"message\":\"no\"}}",
	  CMK_R_DENIED, "Forbidden" },
	{ "key_not_found", 404,
	  "{\"error\":{\"code\":\"KeyNotFound\",\"message\":\"A key with (name/id) cmk was not found in this key vault.\"}}",
	  CMK_R_NOT_FOUND, "KeyNotFound" },
	{ "not_found_no_body", 404, "", CMK_R_NOT_FOUND, "" },
	{ "being_deleted", 409,
	  "{\"error\":{\"code\":\"Conflict\",\"message\":\"Key is currently being deleted.\",\"innererror\":{\"code\":\"ObjectIsBeingDeleted\"}}}",
	  CMK_R_DESTROYED, "Conflict" },
	/* provisional: the key's state decides (azure_classify_bad_parameter_*) */
	{ "bad_ciphertext", 400,
	  "{\"error\":{\"code\":\"BadParameter\",\"message\":\"Invalid parameter: value\"}}",
	  CMK_R_LOCAL, "BadParameter" },
	{ "throttled", 429,
	  "{\"error\":{\"code\":\"Throttled\",\"message\":\"Request was not processed because too many requests were received.\"}}",
	  CMK_R_THROTTLED, "Throttled" },
	{ "throttled_no_body", 429, "", CMK_R_THROTTLED, "" },
	{ "service_unavailable", 503,
	  "{\"error\":{\"code\":\"ServiceUnavailable\",\"message\":\"The service is unavailable.\"}}",
	  CMK_R_UNAVAILABLE, "ServiceUnavailable" },
	{ "internal_500", 500, "{\"error\":{\"code\":\"InternalServerError\"}}",
	  CMK_R_UNAVAILABLE, "InternalServerError" },
	{ "bad_gateway_html", 502, "<html><body>502 Bad Gateway</body></html>",
	  CMK_R_UNAVAILABLE, "" },
	/* A 5xx is never a revocation, whatever its body says. */
	{ "5xx_with_forbidden_body", 503, "{\"error\":{\"code\":\"Forbidden\"}}",
	  CMK_R_UNAVAILABLE, "Forbidden" },
	{ "gateway_timeout", 504, "{\"error\":{\"code\":\"GatewayTimeout\"}}",
	  CMK_R_TIMEOUT, "GatewayTimeout" },
	{ "unauthorized", 401,
	  "{\"error\":{\"code\":\"Unauthorized\",\"message\":\"AKV10000: Request is missing a Bearer or PoP token.\"}}",
	  CMK_R_DENIED, "Unauthorized" },
	{ "redirect_is_network", 302, "", CMK_R_NETWORK, "" },
	{ "unknown_400_is_local", 400, "{\"error\":{\"code\":\"SomethingNew\"}}",
	  CMK_R_LOCAL, "SomethingNew" },
	{ "garbage_400_is_local", 400, "{\"error\":", CMK_R_LOCAL, "" },
	{ "success", 200, "{\"kid\":\"x\",\"value\":\"AAAA\"}", CMK_R_NONE, "" },
};

static void azure_errors_classified_from_recorded_answers(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		const struct rec *r = &recs[i];
		struct cmk_azure_error err;
		enum cmk_reason got;

		got = cmk_azure_classify(r->status, r->body, strlen(r->body), &err);
		if (got != r->want || strcmp(err.code, r->want_code)) {
			print_message("# %s: got %s/%s, want %s/%s\n", r->name,
				      cmk_reason_name(got), err.code,
				      cmk_reason_name(r->want), r->want_code);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/*
 * ForbiddenByFirewall: the vault's network rules refused the caller's
 * address ("Client address is not authorized and caller is not a trusted
 * service", Key Vault's common error codes and its network security
 * guide).  That is about the network path, not the key: transient.  The
 * body as Key Vault sends it (code Forbidden, inner ForbiddenByFirewall).
 */
static void azure_classify_forbidden_by_firewall_is_transient(void **state)
{
	static const char body[] =
		"{\"error\":{\"code\":\"Forbidden\",\"message\":\"Client address is not authorized and caller is not a trusted service.\\r\\nClient address: 203.0.113.7\\r\\nCaller: appid=e4b4fb0b-1a8c-4c1e-9c4b-0f2a1b4f8c11;oid=2c0b6f3a-6e7d-4b1e-8f59-7f3b2d1c0e9a;iss=https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/\\r\\nVault: pg-cmk;location=westeurope\",\"innererror\":{\"code\":\"ForbiddenByFirewall\"}}}";
	struct cmk_azure_error err;
	enum cmk_reason r;

	(void)state;
	r = cmk_azure_classify(403, body, strlen(body), &err);
	assert_string_equal(err.inner, "ForbiddenByFirewall");
	if (r != CMK_R_NETWORK)
		fail_msg("ForbiddenByFirewall classified %s (%s)", cmk_reason_name(r),
			 cmk_err_class_name(cmk_reason_class(r)));
	assert_false(err.confirm);
}

/*
 * A plain 400 BadParameter ("The parameter is incorrect." is what
 * unwrapkey answers when the ciphertext does not decrypt under that key
 * version; "The specified version of the API is not supported" is one too)
 * says nothing about the key owner: never definitive by itself, and it
 * asks for the key's state.
 */
static void azure_classify_bad_parameter_is_not_definitive_alone(void **state)
{
	static const char *const bodies[] = {
		"{\"error\":{\"code\":\"BadParameter\",\"message\":\"The parameter is incorrect.\\r\\n\"}}",
		"{\"error\":{\"code\":\"BadParameter\",\"message\":\"The specified version of the API is not supported.\"}}",
		"{\"error\":{\"code\":\"BadParameter\",\"message\":\"Property alg and value are required.\"}}",
	};
	struct cmk_azure_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		enum cmk_reason r = cmk_azure_classify(400, bodies[i], strlen(bodies[i]), &err);

		if (cmk_reason_class(r) == CMK_EC_DEFINITIVE)
			fail_msg("body %zu classified %s (definitive) without confirmation",
				 i, cmk_reason_name(r));
		assert_int_equal(r, CMK_R_LOCAL);
		assert_true(err.confirm);
	}
}

/* KeyBundle answers of GET {vault}/keys/NAME/VERSION, as documented. */
#define BUNDLE(attrs, ops) \
	"{\"key\":{\"kid\":\"https://pg-cmk.vault.azure.net/keys/cmk/78deebed173b48e48f55abf87ed4cf71\"," \
	"\"kty\":\"RSA\",\"key_ops\":[" ops "],\"n\":\"nKAwarTrOpzd1hhH4cQ\",\"e\":\"AQAB\"}," \
	"\"attributes\":{" attrs ",\"created\":1493938410,\"updated\":1493938410," \
	"\"recoveryLevel\":\"Recoverable+Purgeable\"}}"
#define ALL_OPS "\"encrypt\",\"decrypt\",\"sign\",\"verify\",\"wrapKey\",\"unwrapKey\""

/*
 * Oracle: Key Vault's documented key attributes - a disabled key refuses
 * every operation; outside nbf..exp only encrypt, wrapKey and sign are
 * refused ("decrypt, unwrap, and verify operations" keep working), so an
 * expired or not yet valid key confirms a refused wrapKey, never a refused
 * unwrapKey (that would revoke keys Key Vault still unwraps).
 */
static void azure_classify_key_get_confirms_state(void **state)
{
	static const struct {
		long status;
		const char *body;
		enum cmk_reason want;
		const char *want_what;
		const char *op;		/* NULL: unwrapKey */
	} cases[] = {
		{ 200, BUNDLE("\"enabled\":true", ALL_OPS), CMK_R_LOCAL, "enabled", NULL },
		{ 200, BUNDLE("\"enabled\":false", ALL_OPS), CMK_R_DISABLED, "disabled", NULL },
		{ 200, BUNDLE("\"enabled\":false", ALL_OPS), CMK_R_DISABLED, "disabled", "wrapKey" },
		{ 200, BUNDLE("\"enabled\":true,\"exp\":1000", ALL_OPS), CMK_R_LOCAL, "enabled", NULL },
		{ 200, BUNDLE("\"enabled\":true,\"exp\":1000", ALL_OPS), CMK_R_DISABLED, "expired",
		  "wrapKey" },
		{ 200, BUNDLE("\"enabled\":true,\"exp\":3000", ALL_OPS), CMK_R_LOCAL, "enabled",
		  "wrapKey" },
		{ 200, BUNDLE("\"enabled\":true,\"nbf\":3000", ALL_OPS), CMK_R_LOCAL, "enabled", NULL },
		{ 200, BUNDLE("\"enabled\":true,\"nbf\":3000", ALL_OPS), CMK_R_DISABLED, "not yet valid",
		  "wrapKey" },
		{ 200, BUNDLE("\"enabled\":true", "\"wrapKey\""), CMK_R_DISABLED,
		  "no unwrapKey in key_ops", NULL },
		{ 200, BUNDLE("\"enabled\":true", "\"unwrapKey\""), CMK_R_DISABLED,
		  "no wrapKey in key_ops", "wrapKey" },
		{ 200, "{}", CMK_R_LOCAL, "no attributes in the answer", NULL },
		{ 404, "{\"error\":{\"code\":\"KeyNotFound\",\"message\":\"A key with (name/id) cmk/78deebed173b48e48f55abf87ed4cf71 was not found in this key vault.\"}}",
		  CMK_R_NOT_FOUND, "HTTP 404 KeyNotFound", NULL },
		/* no keys/get permission: nothing confirmed */
		{ 403, "{\"error\":{\"code\":\"Forbidden\",\"message\":\"Caller is not authorized to perform action on resource.\",\"innererror\":{\"code\":\"ForbiddenByRbac\"}}}",
		  CMK_R_LOCAL, "HTTP 403 ForbiddenByRbac", NULL },
		{ 503, "", CMK_R_LOCAL, "HTTP 503 error", NULL },
	};
	char what[96];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum cmk_reason r = cmk_azure_key_state_reason(cases[i].status, cases[i].body,
							       strlen(cases[i].body),
							       cases[i].op ? cases[i].op : "unwrapKey",
							       2000, what, sizeof(what));

		if (r != cases[i].want || strcmp(what, cases[i].want_what))
			fail_msg("case %zu: got %s \"%s\", want %s \"%s\"", i,
				 cmk_reason_name(r), what, cmk_reason_name(cases[i].want),
				 cases[i].want_what);
	}
}

static void azure_error_fields_are_printable(void **state)
{
	struct cmk_azure_error err;

	(void)state;
	static const char body[] =
		"{\"error\":{\"code\":\"Forb\\nidden\",\"message\":\"a\\u0001b\",\"innererror\":{\"code\":\"KeyDisabled\"}}}";

	cmk_azure_classify(403, body, strlen(body), &err);
	assert_string_equal(err.code, "Forb?idden");
	assert_string_equal(err.message, "a?b");
	assert_string_equal(err.inner, "KeyDisabled");
}

static void azure_key_url_parse(void **state)
{
	struct cmk_azure_key k;
	struct cmk_err e;
	static const char *const bad[] = {
		"http://v.vault.azure.net/keys/k",		/* not https */
		"https://v.vault.azure.net/secrets/k",
		"https://v.vault.azure.net/keys/",
		"https://v.vault.azure.net/keys/k_1",
		"https://v.vault.azure.net/keys/k/v-1",
		"https://v.vault.azure.net/keys/k/v/wrapkey",
		"https://user@v.vault.azure.net/keys/k",
		"https://v.vault.azure.net/keys/k?api-version=7.4",
		"https:///keys/k",
		"",
	};

	(void)state;
	assert_int_equal(cmk_azure_key_parse("https://pg-cmk.vault.azure.net/keys/disk-kek", &k, &e), 0);
	assert_string_equal(k.vault, "https://pg-cmk.vault.azure.net");
	assert_string_equal(k.host, "pg-cmk.vault.azure.net");
	assert_string_equal(k.name, "disk-kek");
	assert_string_equal(k.version, "");
	assert_int_equal(cmk_azure_key_parse("https://127.0.0.1:8443/keys/k1/0123456789abcdef0123456789abcdef/",
					     &k, &e), 0);
	assert_string_equal(k.vault, "https://127.0.0.1:8443");
	assert_string_equal(k.host, "127.0.0.1");
	assert_string_equal(k.version, "0123456789abcdef0123456789abcdef");
	/* the default port is dropped, as in the kid Key Vault returns */
	assert_int_equal(cmk_azure_key_parse("https://pg.vault.azure.net:443/keys/k1", &k, &e), 0);
	assert_string_equal(k.vault, "https://pg.vault.azure.net");
	assert_string_equal(k.host, "pg.vault.azure.net");
	assert_int_equal(cmk_azure_key_parse("https://[::1]:8443/keys/k1", &k, &e), 0);
	assert_string_equal(k.host, "::1");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cmk_azure_key_parse(bad[i], &k, &e) == 0)
			fail_msg("accepted %s", bad[i]);
		assert_true(strlen(e.msg) > 0);
	}
}

static void azure_blob_roundtrip_and_corruption(void **state)
{
	unsigned char ct[72], *b = NULL;
	const unsigned char *c;
	char ver[CMK_AZURE_VERSION_MAX + 1];
	enum cmk_azure_alg alg;
	size_t bl = 0, cl = 0;
	struct cmk_err e;

	(void)state;
	memset(ct, 0xa5, sizeof(ct));
	assert_int_equal(cmk_azure_blob_pack(CMK_AZURE_ALG_A256KW, "abc123", ct, sizeof(ct),
					     &b, &bl, &e), 0);
	assert_int_equal(bl, 3 + 6 + sizeof(ct));
	assert_int_equal(b[0], 1);
	assert_int_equal(b[1], 2);
	assert_int_equal(cmk_azure_blob_unpack(b, bl, &alg, ver, &c, &cl, &e), 0);
	assert_int_equal(alg, CMK_AZURE_ALG_A256KW);
	assert_string_equal(ver, "abc123");
	assert_int_equal(cl, sizeof(ct));
	assert_memory_equal(c, ct, sizeof(ct));
	/* format, algorithm, version length and characters are all checked */
	b[0] = 2;
	assert_int_not_equal(cmk_azure_blob_unpack(b, bl, &alg, ver, &c, &cl, &e), 0);
	b[0] = 1;
	b[1] = 7;
	assert_int_not_equal(cmk_azure_blob_unpack(b, bl, &alg, ver, &c, &cl, &e), 0);
	b[1] = 2;
	b[2] = (unsigned char)bl;
	assert_int_not_equal(cmk_azure_blob_unpack(b, bl, &alg, ver, &c, &cl, &e), 0);
	b[2] = 6;
	b[4] = '/';
	assert_int_not_equal(cmk_azure_blob_unpack(b, bl, &alg, ver, &c, &cl, &e), 0);
	assert_int_not_equal(cmk_azure_blob_unpack(b, 3, &alg, ver, &c, &cl, &e), 0);
	free(b);
	b = NULL;
	assert_int_not_equal(cmk_azure_blob_pack(CMK_AZURE_ALG_AUTO, "v", ct, 8, &b, &bl, &e), 0);
	assert_int_not_equal(cmk_azure_blob_pack(CMK_AZURE_ALG_RSA_OAEP_256, "", ct, 8, &b, &bl, &e), 0);
	assert_null(b);
}

/* Challenge headers as Key Vault and Managed HSM send them. */
static void azure_challenge_parse(void **state)
{
	struct cmk_azure_challenge c;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_azure_challenge_parse(
		"Bearer authorization=\"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47\", resource=\"https://vault.azure.net\"",
		&c, &e), 0);
	assert_string_equal(c.authorization,
			    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47");
	assert_string_equal(c.tenant, "72f988bf-86f1-41af-91ab-2d7cd011db47");
	assert_string_equal(c.resource, "https://vault.azure.net");
	/* scope wins over resource, "/.default" dropped; authorization_uri */
	assert_int_equal(cmk_azure_challenge_parse(
		"Bearer authorization_uri=\"https://login.windows.net/t1/\", resource=\"https://other\", scope=\"https://managedhsm.azure.net/.default\"",
		&c, &e), 0);
	assert_string_equal(c.resource, "https://managedhsm.azure.net");
	assert_string_equal(c.tenant, "t1");
	assert_int_not_equal(cmk_azure_challenge_parse("Basic realm=\"x\"", &c, &e), 0);
	assert_int_not_equal(cmk_azure_challenge_parse("Bearer resource=\"https://vault.azure.net\"",
						       &c, &e), 0);
	assert_contains(e.msg, "authorization");
	assert_int_not_equal(cmk_azure_challenge_parse("Bearer authorization=\"https://l/t\"",
						       &c, &e), 0);
	assert_int_not_equal(cmk_azure_challenge_parse(
		"Bearer authorization=\"https://l/t\", resource=\"http://vault.azure.net\"", &c, &e), 0);
	assert_int_not_equal(cmk_azure_challenge_parse(NULL, &c, &e), 0);
}

static void azure_challenge_resource_must_be_a_parent_domain(void **state)
{
	(void)state;
	assert_true(cmk_azure_challenge_resource_ok("pg.vault.azure.net", "https://vault.azure.net"));
	assert_true(cmk_azure_challenge_resource_ok("PG.Vault.Azure.NET", "https://vault.azure.net/"));
	assert_true(cmk_azure_challenge_resource_ok("h.managedhsm.azure.net",
						    "https://managedhsm.azure.net"));
	assert_false(cmk_azure_challenge_resource_ok("vault.azure.net", "https://vault.azure.net"));
	assert_false(cmk_azure_challenge_resource_ok("evilvault.azure.net", "https://vault.azure.net"));
	assert_false(cmk_azure_challenge_resource_ok("pg.vault.azure.net", "https://graph.microsoft.com"));
	assert_false(cmk_azure_challenge_resource_ok("127.0.0.1", "https://vault.azure.net"));
	assert_false(cmk_azure_challenge_resource_ok("pg.vault.azure.net", "vault.azure.net"));
}

static void azure_token_answers_parsed(void **state)
{
	struct cmk_azure_token t = { 0 };
	struct cmk_err e;
	/* IMDS: strings, expires_on absolute */
	static const char imds[] =
		"{\"access_token\":\"eyJ0eXAi.eyJhdWQi.sig\",\"client_id\":\"c\",\"expires_in\":\"86399\","
		"\"expires_on\":\"1700086400\",\"ext_expires_in\":\"86399\",\"not_before\":\"1700000000\","
		"\"resource\":\"https://vault.azure.net\",\"token_type\":\"Bearer\"}";
	/* Entra ID v2: expires_in a number */
	static const char aad[] =
		"{\"token_type\":\"Bearer\",\"expires_in\":3599,\"ext_expires_in\":3599,\"access_token\":\"abc.def.ghi\"}";

	(void)state;
	assert_int_equal(cmk_azure_token_parse(imds, strlen(imds), 1700000000, &t, &e), 0);
	/* expires_in wins: counted on our clock, whatever the server's says */
	assert_int_equal(t.expires_on, 1700000000 + 86399);
	assert_int_equal(cmk_azure_token_parse(imds, strlen(imds), 1700000500, &t, &e), 0);
	assert_int_equal(t.expires_on, 1700000500 + 86399);
	assert_int_equal(cmk_secret_len(t.token), strlen("eyJ0eXAi.eyJhdWQi.sig"));
	assert_memory_equal(cmk_secret_cdata(t.token), "eyJ0eXAi.eyJhdWQi.sig", 21);
	assert_int_equal(cmk_azure_token_parse(aad, strlen(aad), 1000, &t, &e), 0);
	assert_int_equal(t.expires_on, 1000 + 3599);
	assert_int_equal(t.obtained, 1000);
	cmk_azure_token_free(&t);
	assert_int_not_equal(cmk_azure_token_parse("{\"expires_in\":1}", 16, 0, &t, &e), 0);
	assert_int_not_equal(cmk_azure_token_parse("{\"access_token\":\"a b\",\"expires_in\":5}",
						   36, 0, &t, &e), 0);
	assert_int_not_equal(cmk_azure_token_parse("{\"access_token\":\"ab\",\"token_type\":\"pop\",\"expires_in\":5}",
						   52, 0, &t, &e), 0);
	assert_int_equal(cmk_azure_token_parse("{\"access_token\":\"ab\",\"expires_on\":\"2000\"}",
					       41, 1000, &t, &e), 0);
	assert_int_equal(t.expires_on, 2000);
	cmk_azure_token_free(&t);
	assert_int_not_equal(cmk_azure_token_parse("{\"access_token\":\"ab\",\"expires_on\":\"999\"}",
						   40, 1000, &t, &e), 0);
	assert_int_not_equal(cmk_azure_token_parse("{\"access_token\":\"ab\"}", 21, 0, &t, &e), 0);
	assert_contains(e.msg, "expires");
	assert_null(t.token);
}

/* Refreshed 300 s early, or at half-life for short tokens: never late. */
static void azure_token_refresh_before_expiry(void **state)
{
	struct cmk_azure_token t = { 0 };
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_secret_new(&t.token, 4, &e), 0);
	t.obtained = 1000;
	t.expires_on = 1000 + 3600;
	assert_true(cmk_azure_token_fresh(&t, 1000));
	assert_true(cmk_azure_token_fresh(&t, 1000 + 3600 - 301));
	assert_false(cmk_azure_token_fresh(&t, 1000 + 3600 - 300));
	t.expires_on = 1000 + 20;
	assert_true(cmk_azure_token_fresh(&t, 1009));
	assert_false(cmk_azure_token_fresh(&t, 1010));
	t.expires_on = 1000 + 1;
	assert_false(cmk_azure_token_fresh(&t, 1000));
	cmk_azure_token_free(&t);
	assert_false(cmk_azure_token_fresh(&t, 0));
}

static void azure_token_errors_classified(void **state)
{
	char code[64], msg[128];

	(void)state;
	/* IMDS: 410 upgrading, 404 identity not ready, 429, 5xx: transient */
	assert_int_equal(cmk_azure_token_classify(true, 410, "", 0, code, sizeof(code), msg, sizeof(msg)),
			 CMK_R_UNAVAILABLE);
	assert_int_equal(cmk_azure_token_classify(true, 404, "", 0, code, sizeof(code), msg, sizeof(msg)),
			 CMK_R_UNAVAILABLE);
	assert_int_equal(cmk_azure_token_classify(true, 429, "", 0, code, sizeof(code), msg, sizeof(msg)),
			 CMK_R_THROTTLED);
	assert_int_equal(cmk_azure_token_classify(true, 503, "", 0, code, sizeof(code), msg, sizeof(msg)),
			 CMK_R_UNAVAILABLE);
	/* IMDS 400: no such identity on this VM: the operator's problem */
	static const char no_id[] =
		"{\"error\":\"invalid_request\",\"error_description\":\"Identity not found\"}";
	assert_int_equal(cmk_azure_token_classify(true, 400, no_id, strlen(no_id),
						  code, sizeof(code), msg, sizeof(msg)), CMK_R_LOCAL);
	assert_string_equal(code, "invalid_request");
	assert_string_equal(msg, "Identity not found");
	/* Entra ID: the service principal rejected */
	static const char bad_secret[] =
		"{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid client secret provided.\",\"error_codes\":[7000215]}";
	assert_int_equal(cmk_azure_token_classify(false, 401, bad_secret, strlen(bad_secret),
						  code, sizeof(code), msg, sizeof(msg)), CMK_R_DENIED);
	assert_string_equal(code, "invalid_client");
	assert_int_equal(cmk_azure_token_classify(false, 400,
		"{\"error\":\"unauthorized_client\"}", 31, code, sizeof(code), msg, sizeof(msg)),
		CMK_R_DENIED);
	assert_int_equal(cmk_azure_token_classify(false, 400,
		"{\"error\":\"invalid_scope\"}", 25, code, sizeof(code), msg, sizeof(msg)),
		CMK_R_LOCAL);
	assert_int_equal(cmk_azure_token_classify(false, 503, "", 0, code, sizeof(code), msg, sizeof(msg)),
			 CMK_R_UNAVAILABLE);
	assert_int_equal(cmk_azure_token_classify(false, 429, "", 0, code, sizeof(code), msg, sizeof(msg)),
			 CMK_R_THROTTLED);
	assert_int_equal(cmk_azure_token_classify(false, 200, "", 0, code, sizeof(code), msg, sizeof(msg)),
			 CMK_R_NONE);
}

static int open_with(const char *const *kv, size_t n, struct cmk_provider **p,
		     struct cmk_err *e)
{
	struct cmk_kv s[16];

	for (size_t i = 0; i < n; i++)
		s[i] = (struct cmk_kv){ kv[2 * i], kv[2 * i + 1], 0 };
	return cmk_provider_open("azure", s, n, p, e);
}

static void azure_settings_checked(void **state)
{
	struct cmk_provider *p = NULL;
	struct cmk_err e;

	(void)state;
	unsetenv("AZURE_CLIENT_SECRET");
	unsetenv("AZURE_CLIENT_ID");
	unsetenv("AZURE_TENANT_ID");
	assert_non_null(cmk_provider_find("azure"));
	assert_int_equal(open_with(NULL, 0, &p, &e), 0);
	cmk_provider_close(&p);
	{
		static const char *const kv[] = { "region", "x" };

		assert_int_not_equal(open_with(kv, 1, &p, &e), 0);
		assert_contains(e.msg, "unknown setting");
	}
	{
		static const char *const kv[] = { "algorithm", "RSA1_5" };

		assert_int_not_equal(open_with(kv, 1, &p, &e), 0);
		assert_contains(e.msg, "RSA-OAEP-256");
	}
	{
		static const char *const kv[] = { "credentials", "service_principal",
						  "client_id", "app" };

		assert_int_not_equal(open_with(kv, 2, &p, &e), 0);
		assert_contains(e.msg, "tenant_id");
	}
	{
		static const char *const kv[] = { "credentials", "service_principal",
						  "client_id", "app", "tenant_id", "t" };

		assert_int_not_equal(open_with(kv, 3, &p, &e), 0);
		assert_contains(e.msg, "client secret");
	}
	{
		static const char *const kv[] = { "credentials", "certificate" };

		assert_int_not_equal(open_with(kv, 1, &p, &e), 0);
	}
	{
		static const char *const kv[] = { "authority", "http://login.example" };

		assert_int_not_equal(open_with(kv, 1, &p, &e), 0);
		assert_contains(e.msg, "https");
	}
	{
		static const char *const kv[] = { "verify_challenge_resource", "maybe" };

		assert_int_not_equal(open_with(kv, 1, &p, &e), 0);
	}
	assert_null(p);
}

/* The service principal's secret is read from a file and never echoed. */
static void azure_client_secret_file(void **state)
{
	struct cmk_provider *p = NULL;
	struct cmk_err e;
	static const char *kv[8] = { "credentials", "service_principal", "client_id", "app",
				     "tenant_id", "t", "client_secret_file", NULL };

	(void)state;
	tu_write_file(tu_path("secret"), "s3cr3t-value\n", 13, 0600);
	kv[7] = tu_path("secret");
	assert_int_equal(open_with(kv, 4, &p, &e), 0);
	cmk_provider_close(&p);
	kv[7] = tu_path("missing");
	assert_int_not_equal(open_with(kv, 4, &p, &e), 0);
	assert_contains(e.msg, "client_secret_file");
}

/*
 * A rotated client secret: the file is read again when Entra ID rejects
 * the old one; cmk_azure_auth_reload_secret() says whether it changed.
 */
static void azure_credential_secret_reload_sees_rotated_file(void **state)
{
	struct cmk_azure_auth a;
	struct cmk_err e;
	bool changed;

	(void)state;
	tu_write_file(tu_path("secret"), "old-secret\n", 11, 0600);
	assert_int_equal(cmk_azure_auth_init(&a, "service_principal", "app", "t",
					     tu_path("secret"), NULL, NULL, NULL, &e), 0);
	assert_int_equal(cmk_azure_auth_reload_secret(&a, &changed, &e), 0);
	assert_false(changed);
	tu_write_file(tu_path("secret"), "new-secret\n", 11, 0600);
	assert_int_equal(cmk_azure_auth_reload_secret(&a, &changed, &e), 0);
	assert_true(changed);
	assert_int_equal(cmk_secret_len(a.client_secret), 10);
	assert_memory_equal(cmk_secret_cdata(a.client_secret), "new-secret", 10);
	/* a file emptied mid-rotation: an error, the secret in use stays */
	tu_write_file(tu_path("secret"), "\n", 1, 0600);
	assert_true(cmk_azure_auth_reload_secret(&a, &changed, &e) < 0);
	assert_false(changed);
	assert_memory_equal(cmk_secret_cdata(a.client_secret), "new-secret", 10);
	cmk_azure_auth_free(&a);
}

static const char entra_rejects[] =
	"HTTP/1.1 401 Unauthorized\r\n"
	"Content-Type: application/json\r\n"
	"Content-Length: 119\r\n"
	"Connection: close\r\n\r\n"
	"{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid client secret provided.\",\"error_codes\":[7000215]}";

/* What the rotation has done to the secret file when Entra ID answers. */
static const char *secret_state;	/* NULL: the file is gone */

static void rotate_secret_on_first_request(void *arg, int n)
{
	(void)arg;
	if (n != 1)
		return;
	if (secret_state)
		tu_write_file(tu_path("secret"), secret_state, strlen(secret_state), 0600);
	else
		unlink(tu_path("secret"));
}

static int token_during_rotation(const char *state, struct tu_peer *peer,
				 struct cmk_err *e)
{
	struct cmk_azure_auth a;
	const struct cmk_secret *tok = NULL;
	int ret;

	secret_state = state;
	tu_write_file(tu_path("secret"), "old-secret\n", 11, 0600);
	assert_int_equal(cmk_azure_auth_init(&a, "service_principal", "app", "tenant-1",
					     tu_path("secret"), NULL, NULL, NULL, e), 0);
	tu_peer_start(peer, entra_rejects, rotate_secret_on_first_request, NULL);
	/* Entra ID on loopback over plain http (the URL rule allows only that). */
	snprintf(a.authority, sizeof(a.authority), "%s", peer->url);
	ret = cmk_azure_token_get(&a, 1000, "https://vault.azure.net", NULL, &tok, e);
	assert_null(tok);
	tu_peer_stop(peer);
	cmk_azure_auth_free(&a);
	return ret;
}

/*
 * Entra ID rejects the client secret; read again, the secret file is empty
 * or gone for a moment (a rotation rewriting it).  Oracle: a file that
 * does not read says nothing about the key (azure.rst): a local error,
 * retried, never a revocation.  The control: a new secret that is also
 * rejected is the definitive "no" it was before.
 */
static void azure_credential_reload_half_written_secret_is_not_definitive(void **state)
{
	static const char *const broken[] = { "", "\n", NULL };
	struct tu_peer peer;
	struct cmk_err e;

	(void)state;
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		assert_true(token_during_rotation(broken[i], &peer, &e) < 0);
		assert_int_equal(peer.requests, 1);
		if (e.cls != CMK_EC_LOCAL)
			fail_msg("secret file state %zu: class %s: %s", i,
				 cmk_err_class_name(e.cls), e.msg);
		assert_contains(e.msg, "not taken as a revocation");
	}
	assert_true(token_during_rotation("new-secret\n", &peer, &e) < 0);
	assert_int_equal(peer.requests, 2);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_int_equal(e.reason, CMK_R_DENIED);
	assert_null(strstr(e.msg, "new-secret"));
}

/*
 * Entra ID rejects the client secret and the secret file stays gone (the
 * secret deleted for good).  Oracle: credreload.h - not a revocation while
 * reading it again has failed for less than CMK_CRED_RELOAD_BOUND_MS or
 * fewer than CMK_CRED_RELOAD_TRIES times; the rejection counts (denied,
 * definitive) once both are reached.  Before: local for ever.
 */
static void azure_credential_reload_failing_for_good_counts_after_bound(void **state)
{
	const uint64_t step = CMK_CRED_RELOAD_BOUND_MS / (CMK_CRED_RELOAD_TRIES - 1);
	struct cmk_azure_auth a;
	const struct cmk_secret *tok = NULL;
	struct tu_peer peer;
	struct cmk_err e;

	(void)state;
	secret_state = NULL;
	tu_write_file(tu_path("secret"), "old-secret\n", 11, 0600);
	assert_int_equal(cmk_azure_auth_init(&a, "service_principal", "app", "tenant-1",
					     tu_path("secret"), NULL, NULL, NULL, &e), 0);
	tu_peer_start(&peer, entra_rejects, rotate_secret_on_first_request, NULL);
	snprintf(a.authority, sizeof(a.authority), "%s", peer.url);
	for (int i = 1; i < CMK_CRED_RELOAD_TRIES; i++) {
		assert_true(cmk_azure_token_get(&a, 1000, "https://vault.azure.net", NULL,
						&tok, &e) < 0);
		if (e.cls != CMK_EC_LOCAL)
			fail_msg("reload %d: class %s: %s", i, cmk_err_class_name(e.cls), e.msg);
		assert_contains(e.msg, "not taken as a revocation");
		tu_clock_skew_ms += step;
	}
	assert_true(cmk_azure_token_get(&a, 1000, "https://vault.azure.net", NULL,
					&tok, &e) < 0);
	if (e.cls != CMK_EC_DEFINITIVE)
		fail_msg("after %d failed reloads: class %s: %s", CMK_CRED_RELOAD_TRIES,
			 cmk_err_class_name(e.cls), e.msg);
	assert_int_equal(e.reason, CMK_R_DENIED);
	assert_contains(e.msg, "so the rejection counts");
	assert_null(strstr(e.msg, "old-secret"));
	assert_null(tok);
	tu_clock_skew_ms = 0;
	tu_peer_stop(&peer);
	cmk_azure_auth_free(&a);
}

/* No network call is made for a key reference that is not a key URL. */
static void azure_bad_key_ref_is_local(void **state)
{
	struct cmk_provider *p = NULL;
	struct cmk_secret *kek = NULL, *out = NULL;
	unsigned char *w = NULL;
	size_t wl = 0;
	struct cmk_err e;
	static const unsigned char blob[] = { 1, 1, 1, 'v', 1, 2, 3, 4 };

	(void)state;
	assert_int_equal(open_with(NULL, 0, &p, &e), 0);
	assert_int_equal(cmk_secret_random(&kek, 32, &e), 0);
	assert_int_not_equal(cmk_provider_wrap(p, "http://v.vault.azure.net/keys/k", kek, NULL,
					       &w, &wl, NULL, &e), 0);
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_null(w);
	/* a versioned key_ref must name the version that wrapped */
	assert_int_not_equal(cmk_provider_unwrap(p, "https://v.vault.azure.net/keys/k/other",
						 blob, sizeof(blob), NULL, &out, NULL, &e), 0);
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_contains(e.msg, "version v");
	assert_null(out);
	cmk_secret_free(&kek);
	cmk_provider_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(azure_errors_classified_from_recorded_answers),
		cmocka_unit_test(azure_classify_forbidden_by_firewall_is_transient),
		cmocka_unit_test(azure_classify_bad_parameter_is_not_definitive_alone),
		cmocka_unit_test(azure_classify_key_get_confirms_state),
		cmocka_unit_test(azure_error_fields_are_printable),
		cmocka_unit_test(azure_key_url_parse),
		cmocka_unit_test(azure_blob_roundtrip_and_corruption),
		cmocka_unit_test(azure_challenge_parse),
		cmocka_unit_test(azure_challenge_resource_must_be_a_parent_domain),
		cmocka_unit_test(azure_token_answers_parsed),
		cmocka_unit_test(azure_token_refresh_before_expiry),
		cmocka_unit_test(azure_token_errors_classified),
		cmocka_unit_test(azure_settings_checked),
		cmocka_unit_test_setup_teardown(azure_client_secret_file, tu_setup_tmpdir,
						tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(azure_credential_secret_reload_sees_rotated_file,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(azure_credential_reload_failing_for_good_counts_after_bound,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(azure_credential_reload_half_written_secret_is_not_definitive,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test(azure_bad_key_ref_is_local),
	};

	return cmocka_run_group_tests_name("provider_azure", tests, NULL, NULL);
}
