// SPDX-License-Identifier: GPL-2.0
/*
 * test_kmsjob.c - cmk-agent's KMS jobs (kmsjob.c), run here on the calling
 * thread against the local provider.  Oracles: the local provider's key
 * states (disabled = definitive), the files written here, and two rules
 * of the worker design: a job never changes the KEK set it reads (the main
 * thread's), and what a job made that nobody adopted is wiped.  The
 * envelope-file rules are those of cmk_kekset_check_file() (test_volume.c).
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmsjob.h"
#include "provider_local.h"

static struct cmk_config cfg;
static struct cmk_audit *audit;

static int setup(void **state)
{
	struct cmk_provider *p = NULL;
	struct cmk_envelope env;
	struct cmk_encctx ctx;
	struct cmk_err e;
	char text[1024];

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
		 "[agent]\nkek_envelope = %s\nstate_dir = %s\naudit_log = %s\nsyslog = no\n",
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

/* One job, run here; then adopted as the main thread does. */
static bool run_job(struct cmk_kms_job *j, enum cmk_kms_job_kind kind,
		    struct cmk_kekset *ks, struct cmk_kekfile *f, bool wanted)
{
	struct cmk_secret *cur = ks->cur;
	bool adopted;

	memset(j, 0, sizeof(*j));
	j->kind = kind;
	j->cfg = &cfg;
	j->keks = ks;
	j->audit = audit;
	j->file = *f;
	cmk_kms_job_run(j);
	assert_ptr_equal(ks->cur, cur);		/* the job did not touch the set */
	adopted = cmk_kms_job_adopt(j, wanted, ks, f);
	cmk_kms_job_release(j);
	return adopted;
}

static void kmsjob_check_follows_the_envelope_file(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kekset ks;
	struct cmk_kms_job j;
	struct cmk_err e;
	size_t len;
	char *good;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kekset_init(&ks);
	good = tu_read_file(tu_path("kek.json"), &len);
	assert_int_equal(cmk_kekset_reload(&ks, &f, &cfg, audit, &e), 0);
	assert_false(run_job(&j, CMK_KMS_CHECK, &ks, &f, true));
	assert_int_equal(j.ret, 0);
	assert_int_equal(j.bad.cls, CMK_EC_NONE);
	/* an operator's half-written edit: reported, checks go on in memory */
	tu_write_file(tu_path("kek.json"), good, len / 2, 0600);
	assert_false(run_job(&j, CMK_KMS_CHECK, &ks, &f, true));
	assert_int_equal(j.ret, 0);
	assert_int_not_equal(j.bad.cls, CMK_EC_NONE);
	assert_contains(j.bad.msg, tu_path("kek.json"));
	assert_non_null(ks.cur);
	/* reported once */
	assert_false(run_job(&j, CMK_KMS_CHECK, &ks, &f, true));
	assert_int_equal(j.ret, 0);
	assert_int_equal(j.bad.cls, CMK_EC_NONE);
	/* the file fixed: loaded, and adopted only when wanted */
	tu_write_file(tu_path("kek.json"), good, len, 0600);
	assert_false(run_job(&j, CMK_KMS_CHECK, &ks, &f, false));
	assert_true(run_job(&j, CMK_KMS_CHECK, &ks, &f, true));
	assert_int_equal(j.ret, 0);
	assert_non_null(ks.cur);
	assert_false(run_job(&j, CMK_KMS_CHECK, &ks, &f, true));	/* unchanged now */
	cmk_kekset_free(&ks);
	free(good);
}

/* A bad file must not hide a revocation of the CMK in memory either. */
static void kmsjob_bad_envelope_file_does_not_hide_a_revocation(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kekset ks;
	struct cmk_kms_job j;
	struct cmk_err e;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kekset_init(&ks);
	assert_int_equal(cmk_kekset_reload(&ks, &f, &cfg, audit, &e), 0);
	tu_write_file(tu_path("kek.json"), "{\"format\":", 10, 0600);
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_DISABLED, &e), 0);
	run_job(&j, CMK_KMS_CHECK, &ks, &f, true);
	assert_int_not_equal(j.ret, 0);
	assert_int_not_equal(j.bad.cls, CMK_EC_NONE);
	assert_int_equal(j.err.cls, CMK_EC_DEFINITIVE);
	assert_int_equal(j.err.reason, CMK_R_DISABLED);
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_ENABLED, &e), 0);
	cmk_kekset_free(&ks);
}

/* After a wipe the KEK is unsealed from the envelope in memory if the file is bad. */
static void kmsjob_unseal_falls_back_to_the_envelope_in_memory(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kekset ks;
	struct cmk_kms_job j;
	struct cmk_err e;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kekset_init(&ks);
	assert_int_equal(cmk_kekset_reload(&ks, &f, &cfg, audit, &e), 0);
	cmk_kekset_forget(&ks);
	tu_write_file(tu_path("kek.json"), "garbage", 7, 0600);
	run_job(&j, CMK_KMS_UNSEAL, &ks, &f, true);
	assert_int_equal(j.ret, 0);
	assert_int_not_equal(j.bad.cls, CMK_EC_NONE);	/* reported */
	assert_non_null(ks.cur);			/* adopted */
	/* a refused CMK is refused here too, and leaves no KEK */
	cmk_kekset_forget(&ks);
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_DISABLED, &e), 0);
	run_job(&j, CMK_KMS_UNSEAL, &ks, &f, true);
	assert_int_not_equal(j.ret, 0);
	assert_int_equal(j.err.cls, CMK_EC_DEFINITIVE);
	assert_null(ks.cur);
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_ENABLED, &e), 0);
	cmk_kekset_free(&ks);
}

/* At boot nothing is in memory: the file's failure is the answer. */
static void kmsjob_unseal_without_envelope_fails(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kekset ks;
	struct cmk_kms_job j;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kekset_init(&ks);
	tu_write_file(tu_path("kek.json"), "garbage", 7, 0600);
	run_job(&j, CMK_KMS_UNSEAL, &ks, &f, true);
	assert_int_not_equal(j.ret, 0);
	assert_contains(j.err.msg, tu_path("kek.json"));
	assert_int_equal(j.bad.cls, CMK_EC_NONE);	/* not a second report */
	assert_null(ks.cur);
	cmk_kekset_free(&ks);
}

/* An answer the loop no longer wants (VM fork, deadline): its KEK is wiped. */
static void kmsjob_unwanted_unseal_is_wiped_not_adopted(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kekset ks;
	struct cmk_kms_job j;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kekset_init(&ks);
	memset(&j, 0, sizeof(j));
	j.kind = CMK_KMS_UNSEAL;
	j.cfg = &cfg;
	j.keks = &ks;
	j.audit = audit;
	j.file = f;
	cmk_kms_job_run(&j);
	assert_int_equal(j.ret, 0);
	assert_true(j.loaded);
	assert_false(cmk_kms_job_adopt(&j, false, &ks, &f));
	assert_null(ks.cur);
	tu_munmap_inspect = true;
	tu_munmap_count = 0;
	tu_munmap_data_zero = false;
	cmk_kms_job_release(&j);
	tu_munmap_inspect = false;
	assert_true(tu_munmap_count >= 1);
	assert_true(tu_munmap_data_zero);	/* the KEK was wiped before unmap */
	assert_false(j.loaded);
	cmk_kekset_free(&ks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(kmsjob_check_follows_the_envelope_file,
						setup, teardown),
		cmocka_unit_test_setup_teardown(kmsjob_bad_envelope_file_does_not_hide_a_revocation,
						setup, teardown),
		cmocka_unit_test_setup_teardown(kmsjob_unseal_falls_back_to_the_envelope_in_memory,
						setup, teardown),
		cmocka_unit_test_setup_teardown(kmsjob_unseal_without_envelope_fails,
						setup, teardown),
		cmocka_unit_test_setup_teardown(kmsjob_unwanted_unseal_is_wiped_not_adopted,
						setup, teardown),
	};

	return cmocka_run_group_tests_name("kmsjob", tests, NULL, NULL);
}
