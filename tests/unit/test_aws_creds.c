// SPDX-License-Identifier: GPL-2.0
/*
 * test_aws_creds.c - AWS credential sources without a network: shared
 * credentials/config file profiles, the IMDS role credentials document,
 * environment variables.  Oracle: the file formats as the AWS CLI
 * documents them (the same text is accepted by the aws CLI in
 * tests/kms), and the IMDS document shape AWS documents.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms/aws/aws_creds.h"
#include "core/secret.h"

static bool secret_is(const struct cmk_secret *s, const char *v)
{
	return s && cmk_secret_len(s) == strlen(v) &&
	       memcmp(cmk_secret_cdata(s), v, strlen(v)) == 0;
}

static const char cred_file[] =
	"# comment\n"
	"[default]\n"
	"aws_access_key_id = AKIADEFAULT0000000001\n"
	"aws_secret_access_key = dEfAuLt/Secret+Key=\n"
	"\n"
	"[prod]   \r\n"
	"  aws_access_key_id=AKIAPROD00000000002  \r\n"
	"\taws_secret_access_key\t=  pr0d secret with spaces \n"
	"aws_session_token = FwoGZXIvYXdzEJr//////////token==\n"
	"region = eu-west-1\n"
	"; another comment\n"
	"[half]\n"
	"aws_access_key_id = AKIAHALF000000000003\n"
	"[badid]\n"
	"aws_access_key_id = AKIA BAD-ID\n"
	"aws_secret_access_key = topsecretvalue\n";

static void profile_default_from_credentials_file(void **state)
{
	struct cmk_aws_creds c = { 0 };
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_aws_profile_parse(cred_file, strlen(cred_file), "default",
					       false, &c, NULL, 0, &e), 0);
	assert_string_equal(c.access_key_id, "AKIADEFAULT0000000001");
	assert_true(secret_is(c.secret_key, "dEfAuLt/Secret+Key="));
	assert_null(c.session_token);
	assert_int_equal(c.expiration, 0);
	cmk_aws_creds_free(&c);
}

static void profile_named_with_token_and_odd_spacing(void **state)
{
	struct cmk_aws_creds c = { 0 };
	struct cmk_err e;
	char region[32];

	(void)state;
	assert_int_equal(cmk_aws_profile_parse(cred_file, strlen(cred_file), "prod",
					       false, &c, region, sizeof(region), &e), 0);
	assert_string_equal(c.access_key_id, "AKIAPROD00000000002");
	assert_true(secret_is(c.secret_key, "pr0d secret with spaces"));
	assert_true(secret_is(c.session_token, "FwoGZXIvYXdzEJr//////////token=="));
	assert_string_equal(region, "eu-west-1");
	assert_string_equal(c.source, "profile prod");
	cmk_aws_creds_free(&c);
}

static void profile_missing_incomplete_or_bad(void **state)
{
	struct cmk_aws_creds c = { 0 };
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_aws_profile_parse(cred_file, strlen(cred_file), "nope",
					       false, &c, NULL, 0, &e), -ENOENT);
	/* "[profile prod]" is config-file syntax; credentials files use "[prod]". */
	assert_int_equal(cmk_aws_profile_parse(cred_file, strlen(cred_file), "prod",
					       true, &c, NULL, 0, &e), -ENOENT);
	assert_int_equal(cmk_aws_profile_parse(cred_file, strlen(cred_file), "half",
					       false, &c, NULL, 0, &e), -EINVAL);
	assert_contains(e.msg, "aws_secret_access_key");
	assert_int_equal(cmk_aws_profile_parse(cred_file, strlen(cred_file), "badid",
					       false, &c, NULL, 0, &e), -EINVAL);
	assert_contains(e.msg, "access key id");
	assert_null(strstr(e.msg, "topsecretvalue"));
	assert_null(c.secret_key);
}

static void profile_config_file_syntax(void **state)
{
	static const char cfg[] =
		"[default]\nregion = us-east-1\n"
		"[profile  prod ]\naws_access_key_id = AKIACFG000000000004\n"
		"aws_secret_access_key = cfgsecret\n"
		"s3 =\n  max_concurrent_requests = 20\n"
		"[prod]\naws_access_key_id = AKIAWRONG0000000005\n"
		"aws_secret_access_key = wrong\n";
	struct cmk_aws_creds c = { 0 };
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_aws_profile_parse(cfg, strlen(cfg), "prod", true, &c,
					       NULL, 0, &e), 0);
	assert_string_equal(c.access_key_id, "AKIACFG000000000004");
	assert_true(secret_is(c.secret_key, "cfgsecret"));
	cmk_aws_creds_free(&c);
	/* [default] has a region but no keys: not a credential source */
	assert_int_equal(cmk_aws_profile_parse(cfg, strlen(cfg), "default", true, &c,
					       NULL, 0, &e), -ENOENT);
}

static void imds_role_credentials_parsed(void **state)
{
	static const char doc[] =
		"{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2025-11-27T20:00:00Z\",\n"
		"  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAIMDS000000000006\",\n"
		"  \"SecretAccessKey\" : \"imds/secret+key\",\n"
		"  \"Token\" : \"IQoJb3JpZ2luX2VjEJr//////////session\",\n"
		"  \"Expiration\" : \"2025-11-27T26:00:00Z\"\n}";
	char ok[sizeof(doc)];
	struct cmk_aws_creds c = { 0 };
	struct cmk_err e;
	char *p;

	(void)state;
	/* first a bad date (hour 26), then the real one */
	assert_int_equal(cmk_aws_imds_parse(doc, strlen(doc), &c, &e), -EBADMSG);
	assert_contains(e.msg, "Expiration");
	memcpy(ok, doc, sizeof(doc));
	p = strstr(ok, "T26:");
	memcpy(p, "T21:", 4);
	assert_int_equal(cmk_aws_imds_parse(ok, strlen(ok), &c, &e), 0);
	assert_string_equal(c.access_key_id, "ASIAIMDS000000000006");
	assert_true(secret_is(c.secret_key, "imds/secret+key"));
	assert_true(secret_is(c.session_token, "IQoJb3JpZ2luX2VjEJr//////////session"));
	assert_int_equal(c.expiration, 1764277200);	/* 2025-11-27T21:00:00Z */
	cmk_aws_creds_free(&c);
}

static void imds_bad_documents_refused(void **state)
{
	static const char *const bad[] = {
		"{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"AccessKeyId\":\"A\"}",
		"{\"Code\":\"Success\",\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"s\",\"Expiration\":\"2025-11-27T21:00:00Z\"}",
		"[1,2]",
		"not json",
		"{\"Code\":\"Success\",\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"s\",\"Token\":\"t\",\"Expiration\":\"2025-11-27T21:00:00Z\"} trailing",
		NULL,
	};
	struct cmk_aws_creds c = { 0 };
	struct cmk_err e;

	(void)state;
	for (const char *const *b = bad; *b; b++) {
		assert_true(cmk_aws_imds_parse(*b, strlen(*b), &c, &e) < 0);
		assert_null(c.secret_key);
	}
}

static void env_credentials(void **state)
{
	struct cmk_aws_creds c = { 0 };
	struct cmk_err e;

	(void)state;
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	assert_int_equal(cmk_aws_creds_from_env(&c, &e), -ENOENT);
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV0000000000007", 1);
	assert_int_equal(cmk_aws_creds_from_env(&c, &e), -EINVAL);
	assert_contains(e.msg, "AWS_SECRET_ACCESS_KEY");
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	setenv("AWS_SESSION_TOKEN", "envtoken", 1);
	assert_int_equal(cmk_aws_creds_from_env(&c, &e), 0);
	assert_string_equal(c.access_key_id, "AKIAENV0000000000007");
	assert_true(secret_is(c.secret_key, "envsecret"));
	assert_true(secret_is(c.session_token, "envtoken"));
	cmk_aws_creds_free(&c);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
}

/* Chain: a named profile that does not exist is an error, not IMDS. */
static void chain_named_profile_missing_is_an_error(void **state)
{
	struct cmk_aws_cred_src s;
	const struct cmk_aws_creds *c;
	struct cmk_err e;

	(void)state;
	tu_write_file(tu_path("credentials"), cred_file, strlen(cred_file), 0600);
	setenv("AWS_SHARED_CREDENTIALS_FILE", tu_path("credentials"), 1);
	setenv("AWS_CONFIG_FILE", tu_path("noconfig"), 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	assert_int_equal(cmk_aws_cred_src_init(&s, NULL, "ghost", NULL, &e), 0);
	assert_int_equal(cmk_aws_creds_get(&s, 1000, &c, &e), -ENOENT);
	assert_contains(e.msg, "ghost");
	cmk_aws_cred_src_free(&s);
	assert_int_equal(cmk_aws_cred_src_init(&s, "profile", "prod", NULL, &e), 0);
	assert_int_equal(cmk_aws_creds_get(&s, 1000, &c, &e), 0);
	assert_string_equal(c->access_key_id, "AKIAPROD00000000002");
	cmk_aws_cred_src_free(&s);
	/* auto, default profile absent, IMDS disabled: says what was tried */
	tu_write_file(tu_path("credentials"), "[other]\n", 8, 0600);
	assert_int_equal(cmk_aws_cred_src_init(&s, NULL, NULL, NULL, &e), 0);
	assert_true(cmk_aws_creds_get(&s, 1000, &c, &e) < 0);
	assert_contains(e.msg, "AWS_EC2_METADATA_DISABLED");
	cmk_aws_cred_src_free(&s);
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unsetenv("AWS_CONFIG_FILE");
	unsetenv("AWS_EC2_METADATA_DISABLED");
}

/*
 * A rotated key in the shared credentials file: the cache keeps the old
 * one (file credentials do not expire), cmk_aws_creds_reload() reads the
 * file again and says that something changed; reloading the same file
 * again says it did not (no pointless second request).
 */
static void credential_reload_sees_rotated_profile_key(void **state)
{
	static const char v1[] = "[ops]\naws_access_key_id = AKIAOLD0000000000001\n"
				 "aws_secret_access_key = old-secret\n";
	static const char v2[] = "[ops]\naws_access_key_id = AKIANEW0000000000002\n"
				 "aws_secret_access_key = new-secret\n";
	static const char v3[] = "[ops]\naws_access_key_id = AKIANEW0000000000002\n"
				 "aws_secret_access_key = newer-secret\n";
	struct cmk_aws_cred_src s;
	const struct cmk_aws_creds *c;
	struct cmk_err e;
	bool changed;

	(void)state;
	tu_write_file(tu_path("credentials"), v1, strlen(v1), 0600);
	setenv("AWS_SHARED_CREDENTIALS_FILE", tu_path("credentials"), 1);
	setenv("AWS_CONFIG_FILE", tu_path("noconfig"), 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	assert_int_equal(cmk_aws_cred_src_init(&s, "profile", "ops", NULL, &e), 0);
	assert_int_equal(cmk_aws_creds_get(&s, 1000, &c, &e), 0);
	assert_string_equal(c->access_key_id, "AKIAOLD0000000000001");
	tu_write_file(tu_path("credentials"), v2, strlen(v2), 0600);
	/* no expiry: the cache still answers with the old key */
	assert_int_equal(cmk_aws_creds_get(&s, 1000 + 86400, &c, &e), 0);
	assert_string_equal(c->access_key_id, "AKIAOLD0000000000001");
	assert_int_equal(cmk_aws_creds_reload(&s, 1001, &changed, &e), 0);
	assert_true(changed);
	assert_int_equal(cmk_aws_creds_get(&s, 1001, &c, &e), 0);
	assert_string_equal(c->access_key_id, "AKIANEW0000000000002");
	assert_true(secret_is(c->secret_key, "new-secret"));
	assert_int_equal(cmk_aws_creds_reload(&s, 1002, &changed, &e), 0);
	assert_false(changed);
	/* same key id, new secret: a change too */
	tu_write_file(tu_path("credentials"), v3, strlen(v3), 0600);
	assert_int_equal(cmk_aws_creds_reload(&s, 1003, &changed, &e), 0);
	assert_true(changed);
	assert_true(secret_is(s.cur.secret_key, "newer-secret"));
	/* a file broken mid-rotation: an error, the cache keeps the last good */
	tu_write_file(tu_path("credentials"), "[ops]\naws_access_key_id = A\n", 29, 0600);
	assert_true(cmk_aws_creds_reload(&s, 1004, &changed, &e) < 0);
	assert_false(changed);
	assert_true(secret_is(s.cur.secret_key, "newer-secret"));
	cmk_aws_cred_src_free(&s);
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unsetenv("AWS_CONFIG_FILE");
	unsetenv("AWS_EC2_METADATA_DISABLED");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(profile_default_from_credentials_file),
		cmocka_unit_test(profile_named_with_token_and_odd_spacing),
		cmocka_unit_test(profile_missing_incomplete_or_bad),
		cmocka_unit_test(profile_config_file_syntax),
		cmocka_unit_test(imds_role_credentials_parsed),
		cmocka_unit_test(imds_bad_documents_refused),
		cmocka_unit_test(env_credentials),
		cmocka_unit_test_setup_teardown(chain_named_profile_missing_is_an_error,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(credential_reload_sees_rotated_profile_key,
						tu_setup_tmpdir, tu_teardown_tmpdir),
	};

	return cmocka_run_group_tests_name("aws_creds", tests, NULL, NULL);
}
