// SPDX-License-Identifier: GPL-2.0
/*
 * test_trusted_files.c - agent.conf and the KEK envelope steer the agent
 * (which KMS, which key, which devices), pins and records bind devices to
 * headers, and credential files (a client secret, a service account key,
 * AWS credentials, TLS keys and CA bundles) decide who the agent is and
 * whom it trusts: whoever can write them can point it elsewhere.  They
 * are refused when writable by group or others, owned by another user than
 * root or the agent's, or reached through a directory others can write (a
 * sticky one, as /tmp, is fine) or a link someone else owns, anywhere on
 * the path.  Oracle: the rule in fileio.h; a refusal is -EPERM and says
 * what to run; the same file with tight permissions loads (or fails for
 * its contents, not its mode).  Also: a read that fails leaves no copy of
 * what it read in freed memory.
 */
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device/binding.h"
#include "format/config.h"
#include "format/envelope.h"
#include "core/fileio.h"
#include "kms/gcp/gcp_auth.h"
#include "kms/provider.h"

#define CONF "[agent]\nkek_envelope = /etc/cmk/kek.json\n"

static int load_conf(const char *path, struct cmk_err *e)
{
	struct cmk_config c;
	int ret = cmk_config_load(path, &c, e);

	if (!ret)
		cmk_config_free(&c);
	return ret;
}

static int read_env(const char *path, struct cmk_err *e)
{
	struct cmk_envelope env;
	int ret;

	cmk_envelope_init(&env);
	ret = cmk_envelope_read(path, &env, e);
	cmk_envelope_free(&env);
	return ret;
}

static void adversarial_trusted_config_writable_by_others_refused(void **state)
{
	const char *p = tu_path("agent.conf");
	static const mode_t bad[] = { 0666, 0646, 0620, 0602 };
	struct cmk_err e;

	(void)state;
	tu_write_file(p, CONF, strlen(CONF), 0600);
	assert_int_equal(load_conf(p, &e), 0);
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(load_conf(p, &e), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(chmod(p, bad[i]), 0);
		assert_int_equal(load_conf(p, &e), -EPERM);
		assert_contains(e.msg, "configuration");
		assert_contains(e.msg, "writable by");
		assert_contains(e.msg, "chmod go-w");
		assert_int_equal(e.cls, CMK_EC_LOCAL);
	}
}

static void adversarial_trusted_envelope_writable_by_group_refused(void **state)
{
	const char *p = tu_path("kek.json");
	struct cmk_err e;

	(void)state;
	/* the mode is checked before the contents */
	tu_write_file(p, "{}", 2, 0664);
	assert_int_equal(read_env(p, &e), -EPERM);
	assert_contains(e.msg, "KEK envelope");
	assert_contains(e.msg, "writable by its group");
	assert_int_equal(chmod(p, 0640), 0);
	assert_int_not_equal(read_env(p, &e), -EPERM);
}

static void adversarial_trusted_directory_writable_by_others_refused(void **state)
{
	const char *d = tu_path("etc"), *p = tu_path("etc/agent.conf");
	struct cmk_err e;

	(void)state;
	assert_int_equal(mkdir(d, 0755), 0);
	tu_write_file(p, CONF, strlen(CONF), 0600);
	assert_int_equal(chmod(d, 0777), 0);
	assert_int_equal(load_conf(p, &e), -EPERM);
	assert_contains(e.msg, "directory");
	/* sticky, as /tmp: others cannot replace a file they do not own */
	assert_int_equal(chmod(d, 01777), 0);
	assert_int_equal(load_conf(p, &e), 0);
	assert_int_equal(chmod(d, 0755), 0);
}

static void adversarial_trusted_file_of_other_user_refused(void **state)
{
	const char *p = tu_path("agent.conf");
	struct cmk_err e;

	(void)state;
	if (geteuid() != 0)
		skip();	/* only root can give a file away */
	tu_write_file(p, CONF, strlen(CONF), 0644);
	assert_int_equal(chown(p, 4321, 4321), 0);
	assert_int_equal(load_conf(p, &e), -EPERM);
	assert_contains(e.msg, "owned by uid 4321");
	assert_int_equal(chown(p, 0, 0), 0);
	assert_int_equal(load_conf(p, &e), 0);
}

/*
 * The review's repro: safe/kek.json is a link to ../loose/kek.json, and
 * loose/ is writable by everyone.  Before: only the link's directory was
 * checked, so the envelope others can replace was read.  Oracle: refused,
 * naming the directory the link leads into.
 */
static void adversarial_trusted_symlink_into_loose_directory_refused(void **state)
{
	struct cmk_err e;

	(void)state;
	assert_int_equal(mkdir(tu_path("safe"), 0700), 0);
	assert_int_equal(mkdir(tu_path("loose"), 0700), 0);
	tu_write_file(tu_path("loose/kek.json"), "{}", 2, 0600);
	assert_int_equal(symlink("../loose/kek.json", tu_path("safe/kek.json")), 0);
	assert_int_not_equal(read_env(tu_path("safe/kek.json"), &e), -EPERM);
	assert_int_equal(chmod(tu_path("loose"), 0777), 0);
	assert_int_equal(read_env(tu_path("safe/kek.json"), &e), -EPERM);
	assert_contains(e.msg, "loose");
	assert_contains(e.msg, "writable by");
	assert_int_equal(chmod(tu_path("loose"), 0700), 0);
}

/* A directory further up (not just the file's own) that others can write. */
static void adversarial_trusted_ancestor_writable_refused(void **state)
{
	struct cmk_err e;

	(void)state;
	assert_int_equal(mkdir(tu_path("a"), 0755), 0);
	assert_int_equal(mkdir(tu_path("a/etc"), 0755), 0);
	tu_write_file(tu_path("a/etc/agent.conf"), CONF, strlen(CONF), 0600);
	assert_int_equal(load_conf(tu_path("a/etc/agent.conf"), &e), 0);
	assert_int_equal(chmod(tu_path("a"), 0777), 0);
	assert_int_equal(load_conf(tu_path("a/etc/agent.conf"), &e), -EPERM);
	assert_contains(e.msg, "/a is writable by");
	/* relative paths are walked from / too */
	assert_int_equal(chdir(tu_path("a")), 0);
	assert_int_equal(load_conf("etc/agent.conf", &e), -EPERM);
	assert_int_equal(chdir("/"), 0);
	assert_int_equal(chmod(tu_path("a"), 0755), 0);
}

/* A link someone else owns decides where the path leads. */
static void adversarial_trusted_symlink_of_other_user_refused(void **state)
{
	struct cmk_err e;

	(void)state;
	if (geteuid() != 0)
		skip();	/* only root can give a link away */
	tu_write_file(tu_path("agent.conf"), CONF, strlen(CONF), 0600);
	assert_int_equal(symlink(tu_path("agent.conf"), tu_path("link.conf")), 0);
	assert_int_equal(load_conf(tu_path("link.conf"), &e), 0);
	assert_int_equal(lchown(tu_path("link.conf"), 4321, 4321), 0);
	assert_int_equal(load_conf(tu_path("link.conf"), &e), -EPERM);
	assert_contains(e.msg, "symbolic link");
	assert_contains(e.msg, "uid 4321");
}

/*
 * The files the review found read with no check at all: pins, a KMIP or
 * HTTPS CA bundle, a service account key, a client secret.  Oracle: each
 * refused (-EPERM, naming its role) from a directory others can write.
 */
static void adversarial_trusted_credential_files_in_loose_directory_refused(void **state)
{
	struct cmk_config cfg;
	struct cmk_provider *p = NULL;
	struct cmk_gcp_token_src src;
	uint8_t u[CMK_UUID_LEN];
	char text[1024];
	struct cmk_err e;
	bool have;

	(void)state;
	assert_int_equal(mkdir(tu_path("loose"), 0777), 0);
	assert_int_equal(chmod(tu_path("loose"), 0777), 0);
	/* a pin that would bind device "pa" to whatever header its writer likes */
	snprintf(text, sizeof(text),
		 "[agent]\nkek_envelope = /k.json\npin_dir = %s\n"
		 "[device \"pa\"]\nbacking = /dev/null\nmode = persistent\n",
		 tu_path("loose"));
	assert_int_equal(cmk_config_parse(text, strlen(text), "agent.conf", &cfg, &e), 0);
	snprintf(text, sizeof(text), "%s",
		 "{\"format\": \"dm-cmk-pin\", \"version\": 1, \"device\": \"pa\", "
		 "\"device_uuid\": \"01234567-89ab-cdef-0123-456789abcdef\"}\n");
	tu_write_file(tu_path("loose/pa"), text, strlen(text), 0600);
	assert_int_equal(cmk_pin_read(&cfg, &cfg.devices[0], &have, u, NULL, 0, &e), -EPERM);
	assert_contains(e.msg, "pin file");
	cmk_config_free(&cfg);
	/* a CA bundle: whoever writes it picks the KMS the agent trusts */
	tu_write_file(tu_path("loose/ca.pem"), "x", 1, 0600);
	{
		struct cmk_kv kv[] = { { "region", "us-east-1", 1 },
				       { "ca_bundle", tu_path("loose/ca.pem"), 2 } };

		assert_int_equal(cmk_provider_open("aws", kv, 2, &p, &e), -EPERM);
		assert_contains(e.msg, "ca_bundle");
	}
	/* a service account key and a client secret: who the agent is */
	tu_write_file(tu_path("loose/sa.json"), "{}", 2, 0600);
	assert_int_equal(cmk_gcp_token_src_init(&src, "service_account", tu_path("loose/sa.json"),
						NULL, NULL, NULL, &e), -EPERM);
	assert_contains(e.msg, "service account key");
	tu_write_file(tu_path("loose/secret"), "s3cret\n", 7, 0600);
	{
		struct cmk_kv kv[] = {
			{ "credentials", "service_principal", 1 },
			{ "client_id", "00000000-0000-0000-0000-000000000001", 2 },
			{ "tenant_id", "00000000-0000-0000-0000-000000000002", 3 },
			{ "client_secret_file", tu_path("loose/secret"), 4 },
		};

		assert_int_equal(cmk_provider_open("azure", kv, 4, &p, &e), -EPERM);
		assert_contains(e.msg, "client secret file");
	}
	assert_null(p);
	assert_int_equal(chmod(tu_path("loose"), 0700), 0);
}

/*
 * Review finding 16: a read that failed (a file larger than allowed, say a
 * secret file someone appended to) freed its buffer unwiped.  Oracle: every
 * block freed during the failing read is all zero (testutil's free wrapper).
 */
static void cleanse_read_file_failure_wipes_buffer(void **state)
{
	char big[600], *buf = NULL;
	struct cmk_err e;
	size_t len;

	(void)state;
	memset(big, 'S', sizeof(big));
	tu_write_file(tu_path("secret"), big, sizeof(big), 0600);
	tu_free_count = 0;
	tu_free_nonzero = 0;
	tu_free_inspect = true;
	assert_int_equal(cmk_read_trusted_file(tu_path("secret"), 512, "client secret file",
					       &buf, &len, &e), -EFBIG);
	assert_int_equal(cmk_read_file(tu_path("secret"), 100, &buf, &len, &e), -EFBIG);
	tu_free_inspect = false;
	assert_null(buf);
	assert_true(tu_free_count >= 2);
	assert_int_equal(tu_free_nonzero, 0);
}

/*
 * Paths the kernel refuses are refused with the kernel's reason: a file
 * named with a trailing slash (ENOTDIR), a component longer than NAME_MAX
 * (ENAMETOOLONG, not "not a file").  Oracle: the error codes; the file
 * itself, named plainly, is taken (control).
 */
static void adversarial_trusted_path_edges_refused_as_the_kernel_does(void **state)
{
	char real[PATH_MAX], longname[NAME_MAX + 8], path[PATH_MAX + NAME_MAX];
	struct cmk_err e;

	(void)state;
	tu_write_file(tu_path("kek.json"), "{}", 2, 0600);
	assert_int_equal(cmk_trusted_path(tu_path("kek.json"), "envelope", real,
					  sizeof(real), &e), 0);
	snprintf(path, sizeof(path), "%s/", tu_path("kek.json"));
	assert_int_equal(cmk_trusted_path(path, "envelope", real, sizeof(real), &e),
			 -ENOTDIR);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	snprintf(path, sizeof(path), "%s/%s", tu_path(""), longname);
	assert_int_equal(cmk_trusted_path(path, "envelope", real, sizeof(real), &e),
			 -ENAMETOOLONG);
	assert_contains(e.msg, "longer than");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(adversarial_trusted_config_writable_by_others_refused,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(adversarial_trusted_envelope_writable_by_group_refused,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(adversarial_trusted_directory_writable_by_others_refused,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(adversarial_trusted_file_of_other_user_refused,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(adversarial_trusted_symlink_into_loose_directory_refused,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(adversarial_trusted_ancestor_writable_refused,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(adversarial_trusted_symlink_of_other_user_refused,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(adversarial_trusted_credential_files_in_loose_directory_refused,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(cleanse_read_file_failure_wipes_buffer,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(adversarial_trusted_path_edges_refused_as_the_kernel_does,
						tu_setup_tmpdir, tu_teardown_tmpdir),
	};

	return cmocka_run_group_tests_name("trusted_files", tests, NULL, NULL);
}
