// SPDX-License-Identifier: GPL-2.0
/*
 * test_trusted_files.c - agent.conf and the KEK envelope steer the agent
 * (which KMS, which key, which devices): whoever can write them can point
 * it elsewhere.  They are refused when writable by group or others, owned
 * by another user than root or the agent's, or kept in a directory others
 * can write (a sticky one, as /tmp, is fine).  Oracle: the rule in
 * fileio.h; a refusal is -EPERM and says what to run; the same file with
 * tight permissions loads (or fails for its contents, not its mode).
 */
#include "testutil.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "envelope.h"

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

static void trusted_config_writable_by_others_refused(void **state)
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

static void trusted_envelope_writable_by_group_refused(void **state)
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

static void trusted_directory_writable_by_others_refused(void **state)
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

static void trusted_file_of_other_user_refused(void **state)
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(trusted_config_writable_by_others_refused,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(trusted_envelope_writable_by_group_refused,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(trusted_directory_writable_by_others_refused,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(trusted_file_of_other_user_refused,
						tu_setup_tmpdir, tu_teardown_tmpdir),
	};

	return cmocka_run_group_tests_name("trusted_files", tests, NULL, NULL);
}
