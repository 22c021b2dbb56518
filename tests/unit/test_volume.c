// SPDX-License-Identifier: GPL-2.0
/*
 * test_volume.c - the host-testable half of volume.c: the KEK set (load,
 * check, forget) against the local provider, device lookup and the
 * operator's revoke markers.  Oracles: the local provider's key states
 * (disabled = definitive), the audit log lines, and the files on disk.
 * open/restore/close need the dm-cmk module: tests/unit/guest_agent.sh.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "provider_local.h"
#include "volume.h"

static struct cmk_config cfg;
static struct cmk_audit *audit;

static int setup(void **state)
{
	struct cmk_provider *p = NULL;
	struct cmk_envelope env;
	struct cmk_encctx ctx;
	struct cmk_err e;
	char text[2048];

	if (tu_setup_tmpdir(state))
		return -1;
	cmk_encctx_init(&ctx);
	cmk_envelope_init(&env);
	if (cmk_local_key_create(tu_path("cmk.key"), &e) ||
	    cmk_provider_open("local", NULL, 0, &p, &e) ||
	    cmk_envelope_create(p, tu_path("cmk.key"), &ctx, &env, NULL, NULL, &e) ||
	    cmk_envelope_write(tu_path("kek.json"), &env, &e)) {
		fprintf(stderr, "setup: %s\n", e.msg);
		return -1;
	}
	cmk_provider_close(&p);
	cmk_envelope_free(&env);
	cmk_encctx_free(&ctx);
	snprintf(text, sizeof(text),
		 "[agent]\nkek_envelope = %s\nstate_dir = %s\naudit_log = %s\nsyslog = no\n"
		 "[device \"pgtemp\"]\nbacking = /dev/null\ndm_name = cmk-pg\nkey_name = pg.key\n"
		 "mode = ephemeral\n",
		 tu_path("kek.json"), tu_path("run"), tu_path("audit.log"));
	if (cmk_config_parse(text, strlen(text), "agent.conf", &cfg, &e) ||
	    cmk_audit_open(cfg.audit_log, false, "test", &audit, &e)) {
		fprintf(stderr, "setup: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	cmk_audit_close(&audit);
	cmk_config_free(&cfg);
	return tu_teardown_tmpdir(state);
}

static void volume_kekset_load_unwraps_and_audits(void **state)
{
	struct cmk_kekset ks;
	struct cmk_err e;
	char *log;

	(void)state;
	cmk_kekset_init(&ks);
	assert_int_equal(cmk_kekset_load(&ks, &cfg, audit, &e), 0);
	assert_non_null(ks.cur);
	assert_null(ks.prev);
	assert_int_equal(cmk_kekset_check(&ks, audit, true, NULL, &e), 0);
	cmk_kekset_forget(&ks);
	assert_null(ks.cur);
	/* a check needs no plain KEK: it unwraps the wrapped one */
	assert_int_equal(cmk_kekset_check(&ks, audit, true, NULL, &e), 0);
	cmk_kekset_free(&ks);
	log = tu_read_file(tu_path("audit.log"), NULL);
	assert_contains(log, "\"operation\":\"unwrap\",\"outcome\":\"success\"");
	assert_contains(log, "\"operation\":\"check\",\"outcome\":\"success\"");
	free(log);
}

static void volume_kekset_disabled_cmk_is_definitive_and_holds_no_kek(void **state)
{
	struct cmk_kekset ks;
	struct cmk_kms_call call;
	struct cmk_err e;
	char *log;

	(void)state;
	cmk_kekset_init(&ks);
	assert_int_equal(cmk_kekset_load(&ks, &cfg, audit, &e), 0);
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_DISABLED, &e), 0);
	assert_int_not_equal(cmk_kekset_check(&ks, NULL, false, &call, &e), 0);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_int_not_equal(cmk_kekset_load(&ks, &cfg, audit, &e), 0);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_contains(e.msg, tu_path("kek.json"));
	assert_null(ks.cur);
	cmk_kekset_free(&ks);
	log = tu_read_file(tu_path("audit.log"), NULL);
	assert_contains(log, "\"outcome\":\"failure\",\"error_class\":\"definitive\",\"reason\":\"disabled\"");
	free(log);
	/* with audit NULL the check itself wrote nothing; the caller may */
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_ENABLED, &e), 0);
}

static void volume_kekset_check_without_envelope_fails(void **state)
{
	struct cmk_kekset ks;
	struct cmk_err e;

	(void)state;
	cmk_kekset_init(&ks);
	assert_int_equal(cmk_kekset_check(&ks, audit, true, NULL, &e), -ENOKEY);
	cmk_kekset_free(&ks);
}

/*
 * The agent's check with the envelope file followed (cmk_kekset_check_file).
 * A changed kek.json that does not load must not stop the checks: the
 * envelope in memory keeps being checked, the bad file is reported once,
 * and a good file later is adopted.  Oracle: the local provider's key
 * state and the files written here.
 */
static void volume_classify_bad_envelope_file_keeps_checking_in_memory(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kekset ks;
	struct cmk_kms_call call;
	struct cmk_err e, bad;
	bool reloaded;
	size_t len;
	char *good;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kekset_init(&ks);
	good = tu_read_file(tu_path("kek.json"), &len);
	assert_int_equal(cmk_kekset_reload(&ks, &f, &cfg, audit, &e), 0);
	assert_int_equal(cmk_kekset_check_file(&ks, &f, &cfg, audit, &reloaded, &bad, &call, &e), 0);
	assert_false(reloaded);
	assert_int_equal(bad.cls, CMK_EC_NONE);
	/* an operator's half-written edit */
	tu_write_file(tu_path("kek.json"), good, len / 2, 0600);
	assert_int_equal(cmk_kekset_check_file(&ks, &f, &cfg, audit, &reloaded, &bad, &call, &e), 0);
	assert_false(reloaded);
	assert_int_not_equal(bad.cls, CMK_EC_NONE);
	assert_contains(bad.msg, tu_path("kek.json"));
	assert_non_null(ks.cur);
	/* reported once, and the checks go on with the envelope in memory */
	assert_int_equal(cmk_kekset_check_file(&ks, &f, &cfg, audit, &reloaded, &bad, &call, &e), 0);
	assert_int_equal(bad.cls, CMK_EC_NONE);
	assert_int_equal(cmk_kekset_check_file(&ks, &f, &cfg, audit, &reloaded, &bad, &call, &e), 0);
	/* the file fixed: adopted */
	tu_write_file(tu_path("kek.json"), good, len, 0600);
	assert_int_equal(cmk_kekset_check_file(&ks, &f, &cfg, audit, &reloaded, &bad, &call, &e), 0);
	assert_true(reloaded);
	assert_int_equal(bad.cls, CMK_EC_NONE);
	cmk_kekset_free(&ks);
	free(good);
}

/* A bad file must not hide a revocation of the CMK in memory either. */
static void volume_classify_bad_envelope_file_does_not_hide_a_revocation(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kekset ks;
	struct cmk_kms_call call;
	struct cmk_err e, bad;
	bool reloaded;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kekset_init(&ks);
	assert_int_equal(cmk_kekset_reload(&ks, &f, &cfg, audit, &e), 0);
	tu_write_file(tu_path("kek.json"), "{\"format\":", 10, 0600);
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_DISABLED, &e), 0);
	assert_int_not_equal(cmk_kekset_check_file(&ks, &f, &cfg, audit, &reloaded, &bad, &call, &e), 0);
	assert_int_not_equal(bad.cls, CMK_EC_NONE);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_int_equal(e.reason, CMK_R_DISABLED);
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_ENABLED, &e), 0);
	cmk_kekset_free(&ks);
}

/* After a revoke wiped the KEK, the envelope in memory unseals without the file. */
static void volume_classify_bad_envelope_file_unseal_from_memory(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kekset ks;
	struct cmk_err e;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kekset_init(&ks);
	assert_int_equal(cmk_kekset_reload(&ks, &f, &cfg, audit, &e), 0);
	cmk_kekset_forget(&ks);
	assert_null(ks.cur);
	tu_write_file(tu_path("kek.json"), "garbage", 7, 0600);
	assert_int_not_equal(cmk_kekset_reload(&ks, &f, &cfg, audit, &e), 0);
	assert_null(ks.cur);
	assert_int_equal(cmk_kekset_unseal(&ks, audit, &e), 0);
	assert_non_null(ks.cur);
	/* and a refused CMK is refused here too */
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_DISABLED, &e), 0);
	assert_int_not_equal(cmk_kekset_unseal(&ks, audit, &e), 0);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_null(ks.cur);
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_ENABLED, &e), 0);
	cmk_kekset_free(&ks);
}

static void volume_find_by_name_dm_name_or_key_name(void **state)
{
	(void)state;
	assert_ptr_equal(cmk_volume_find(&cfg, "pgtemp"), &cfg.devices[0]);
	assert_ptr_equal(cmk_volume_find(&cfg, "cmk-pg"), &cfg.devices[0]);
	assert_ptr_equal(cmk_volume_find(&cfg, "pg.key"), &cfg.devices[0]);
	assert_null(cmk_volume_find(&cfg, "pg"));
}

static void volume_revoke_marker_set_and_cleared(void **state)
{
	const struct cmk_config_device *d = &cfg.devices[0];
	struct cmk_err e;

	(void)state;
	assert_false(cmk_volume_revoked(&cfg, d));	/* state_dir absent */
	assert_int_equal(cmk_volume_mark_revoked(&cfg, d, &e), 0);
	assert_true(cmk_volume_revoked(&cfg, d));
	assert_int_equal(access(tu_path("run/revoked/pgtemp"), F_OK), 0);
	assert_int_equal(cmk_volume_mark_revoked(&cfg, d, &e), 0);	/* idempotent */
	assert_int_equal(cmk_volume_clear_revoked(&cfg, d, &e), 0);
	assert_false(cmk_volume_revoked(&cfg, d));
	assert_int_equal(cmk_volume_clear_revoked(&cfg, d, &e), 0);	/* idempotent */
	unlink(tu_path("run/revoked/pgtemp"));
	rmdir(tu_path("run/revoked"));
	rmdir(tu_path("run"));
}

/*
 * A marker is only durable once its directory entry and revoked/'s entry in
 * state_dir are on disk: both directories must be fsync'd, and revoked/
 * again after the marker is removed.
 */
static void volume_revoke_marker_is_durable(void **state)
{
	const struct cmk_config_device *d = &cfg.devices[0];
	struct cmk_err e;

	(void)state;
	tu_fsync_count = 0;
	tu_fsync_record = true;
	assert_int_equal(cmk_volume_mark_revoked(&cfg, d, &e), 0);
	tu_fsync_record = false;
	assert_true(tu_fsynced(tu_path("run/revoked/pgtemp")));
	assert_true(tu_fsynced(tu_path("run/revoked")));
	assert_true(tu_fsynced(tu_path("run")));

	tu_fsync_count = 0;
	tu_fsync_record = true;
	assert_int_equal(cmk_volume_clear_revoked(&cfg, d, &e), 0);
	tu_fsync_record = false;
	assert_true(tu_fsynced(tu_path("run/revoked")));
	assert_false(cmk_volume_revoked(&cfg, d));
	rmdir(tu_path("run/revoked"));
	rmdir(tu_path("run"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(volume_kekset_load_unwraps_and_audits, setup, teardown),
		cmocka_unit_test_setup_teardown(volume_kekset_disabled_cmk_is_definitive_and_holds_no_kek,
						setup, teardown),
		cmocka_unit_test_setup_teardown(volume_kekset_check_without_envelope_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(volume_classify_bad_envelope_file_keeps_checking_in_memory,
						setup, teardown),
		cmocka_unit_test_setup_teardown(volume_classify_bad_envelope_file_does_not_hide_a_revocation,
						setup, teardown),
		cmocka_unit_test_setup_teardown(volume_classify_bad_envelope_file_unseal_from_memory,
						setup, teardown),
		cmocka_unit_test_setup_teardown(volume_find_by_name_dm_name_or_key_name, setup, teardown),
		cmocka_unit_test_setup_teardown(volume_revoke_marker_set_and_cleared, setup, teardown),
		cmocka_unit_test_setup_teardown(volume_revoke_marker_is_durable, setup, teardown),
	};

	return cmocka_run_group_tests_name("volume", tests, NULL, NULL);
}
