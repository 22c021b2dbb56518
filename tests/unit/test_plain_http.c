// SPDX-License-Identifier: GPL-2.0
/*
 * test_plain_http.c - plain http:// endpoints are refused at configuration
 * load unless they stay on this machine: KMS and token endpoints only to
 * loopback (test peers), metadata endpoints also to link-local addresses.
 * Every provider setting that names a URL, and a service account key's
 * token_uri (a file the agent reads, like an envelope).  Oracle: the rule
 * in http.h; each refused case must name the setting and say to use https.
 * Nothing here reaches a network: providers only parse at open.
 */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "kms/gcp/gcp_auth.h"
#include "kms/provider.h"

struct setting_case {
	const char *provider;
	struct cmk_kv kv[2];
	size_t n;
	const char *names;	/* in the message when refused; NULL: accepted */
};

static const struct setting_case cases[] = {
	{ "aws", { { "region", "us-east-1", 1 }, { "endpoint", "http://10.0.2.100:8080", 2 } }, 2, "endpoint" },
	{ "aws", { { "region", "us-east-1", 1 }, { "endpoint", "http://kms.us-east-1.amazonaws.com", 2 } }, 2, "endpoint" },
	{ "aws", { { "region", "us-east-1", 1 }, { "endpoint", "http://127.0.0.1:4566", 2 } }, 2, NULL },
	{ "aws", { { "region", "us-east-1", 1 }, { "endpoint", "https://10.0.2.100:8080", 2 } }, 2, NULL },
	{ "aws", { { "region", "us-east-1", 1 }, { "imds_endpoint", "http://10.0.2.100:8082", 2 } }, 2, "imds_endpoint" },
	{ "aws", { { "region", "us-east-1", 1 }, { "imds_endpoint", "http://[fd00:ec2::254]", 2 } }, 2, NULL },
	{ "gcp", { { "credentials", "metadata", 1 }, { "endpoint", "http://10.0.2.100:8080", 2 } }, 2, "endpoint" },
	{ "gcp", { { "credentials", "metadata", 1 }, { "endpoint", "http://[::1]:8080", 2 } }, 2, NULL },
	{ "gcp", { { "credentials", "metadata", 1 }, { "metadata_endpoint", "http://10.0.2.100:8082", 2 } }, 2, "metadata_endpoint" },
	{ "gcp", { { "credentials", "metadata", 1 }, { "metadata_endpoint", "http://metadata.google.internal", 2 } }, 2, NULL },
	{ "azure", { { "imds_endpoint", "http://10.0.2.100:8081", 1 } }, 1, "imds_endpoint" },
	{ "azure", { { "imds_endpoint", "http://169.254.169.254", 1 } }, 1, NULL },
};

static void adversarial_plain_http_remote_endpoint_refused_at_open(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct setting_case *c = &cases[i];
		struct cmk_provider *p = NULL;
		struct cmk_err e = { 0 };
		int ret = cmk_provider_open(c->provider, c->kv, c->n, &p, &e);

		if (!c->names) {
			if (ret)
				fail_msg("%s %s = %s refused: %s", c->provider,
					 c->kv[c->n - 1].key, c->kv[c->n - 1].value, e.msg);
			cmk_provider_close(&p);
			continue;
		}
		if (!ret)
			fail_msg("%s %s = %s accepted", c->provider,
				 c->kv[c->n - 1].key, c->kv[c->n - 1].value);
		assert_int_equal(ret, -EINVAL);
		assert_int_equal(e.cls, CMK_EC_LOCAL);
		assert_contains(e.msg, c->names);
		assert_contains(e.msg, "https://");
		assert_null(p);
	}
}

/* A token_uri in a service account key file (not agent.conf) is held to it too. */
static char *sa_json(EVP_PKEY *k, const char *token_uri)
{
	struct json_object *o = json_object_new_object();
	BIO *b = BIO_new(BIO_s_mem());
	char *pem, *out;
	long n;

	assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(b, &pem);
	json_object_object_add(o, "type", json_object_new_string("service_account"));
	json_object_object_add(o, "private_key_id", json_object_new_string("0123abcd"));
	json_object_object_add(o, "private_key", json_object_new_string_len(pem, (int)n));
	json_object_object_add(o, "client_email", json_object_new_string("a@p1.iam.gserviceaccount.com"));
	json_object_object_add(o, "token_uri", json_object_new_string(token_uri));
	out = strdup(json_object_to_json_string(o));
	json_object_put(o);
	BIO_free(b);
	return out;
}

static void adversarial_plain_http_remote_token_uri_refused(void **state)
{
	EVP_PKEY *k = EVP_RSA_gen(1024);
	char *remote = sa_json(k, "http://oauth2.example.test/token");
	char *local = sa_json(k, "http://127.0.0.1:9/token");
	struct cmk_gcp_sa_key sa;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_gcp_sa_key_parse(remote, strlen(remote), &sa, &e), -EINVAL);
	assert_contains(e.msg, "token_uri");
	assert_contains(e.msg, "https://");
	assert_int_equal(cmk_gcp_sa_key_parse(local, strlen(local), &sa, &e), 0);
	cmk_gcp_sa_key_free(&sa);
	free(remote);
	free(local);
	EVP_PKEY_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(adversarial_plain_http_remote_endpoint_refused_at_open),
		cmocka_unit_test(adversarial_plain_http_remote_token_uri_refused),
	};

	/* Nothing from the caller's environment decides an endpoint here. */
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_KMS");
	unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	unsetenv("GCE_METADATA_HOST");
	unsetenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS");
	return cmocka_run_group_tests_name("plain_http", tests, NULL, NULL);
}
