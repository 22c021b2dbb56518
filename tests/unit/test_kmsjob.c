// SPDX-License-Identifier: GPL-2.0
/*
 * test_kmsjob.c - cmk-agent's KMS jobs (kmsjob.c), run here on the calling
 * thread against the local provider.  Oracles: the local provider's key
 * states (disabled = definitive), the files written here, and two rules
 * of the worker design: a job never changes the KEK set it reads (the main
 * thread's), and what a job made that nobody adopted is wiped.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/kmsjob.h"
#include "kms/local/provider_local.h"

/*
 * A slow KMS: every unwrap (cmk_provider_unwrap, wrapped at link time)
 * is counted and, while slow_ms is set, takes that long.
 */
static unsigned int unwraps;
static unsigned int slow_ms;

int __real_cmk_provider_unwrap(struct cmk_provider *p, const char *key_ref,
			       const unsigned char *wrapped, size_t wrapped_len,
			       const struct cmk_encctx *ctx, struct cmk_secret **plain,
			       struct cmk_kms_call *call, struct cmk_err *e);
int __wrap_cmk_provider_unwrap(struct cmk_provider *p, const char *key_ref,
			       const unsigned char *wrapped, size_t wrapped_len,
			       const struct cmk_encctx *ctx, struct cmk_secret **plain,
			       struct cmk_kms_call *call, struct cmk_err *e);
int __wrap_cmk_provider_unwrap(struct cmk_provider *p, const char *key_ref,
			       const unsigned char *wrapped, size_t wrapped_len,
			       const struct cmk_encctx *ctx, struct cmk_secret **plain,
			       struct cmk_kms_call *call, struct cmk_err *e)
{
	unwraps++;
	if (slow_ms)
		usleep(slow_ms * 1000);
	return __real_cmk_provider_unwrap(p, key_ref, wrapped, wrapped_len, ctx,
					  plain, call, e);
}

static struct cmk_config cfg;
static struct cmk_audit *audit;
/* Providers the main thread let go of, for the next job to close. */
static struct cmk_retired retired;

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
	for (size_t i = 0; i < retired.n; i++)
		cmk_provider_close(&retired.p[i]);
	retired.n = 0;
	return tu_teardown_tmpdir(state);
}

/* One job, run here; then adopted as the main thread does. */
static bool run_job(struct cmk_kms_job *j, enum cmk_kms_job_kind kind,
		    struct cmk_kek_store *ks, struct cmk_kekfile *f, bool wanted)
{
	struct cmk_secret *cur = ks->cur;
	bool adopted;

	memset(j, 0, sizeof(*j));
	j->kind = kind;
	j->cfg = &cfg;
	j->keks = ks;
	j->audit = audit;
	j->file = *f;
	cmk_kms_job_hand_over(j, &retired);
	assert_int_equal(retired.n, 0);
	cmk_kms_job_run(j);
	assert_int_equal(j->n_retired, 0);	/* closed by the job */
	assert_ptr_equal(ks->cur, cur);		/* the job did not touch the set */
	adopted = cmk_kms_job_adopt(j, wanted, ks, f, &retired);
	cmk_kms_job_release(j, &retired);
	return adopted;
}

/* The envelope file rewrapped under another local CMK (cmkctl kek rewrap). */
static void rewrap_file_to(const char *key)
{
	struct cmk_provider *p = NULL;
	struct cmk_envelope env;
	struct cmk_err e;

	cmk_envelope_init(&env);
	assert_int_equal(cmk_local_key_create(key, &e), 0);
	assert_int_equal(cmk_provider_open("local", NULL, 0, &p, &e), 0);
	assert_int_equal(cmk_envelope_read(tu_path("kek.json"), &env, &e), 0);
	assert_int_equal(cmk_envelope_rewrap(p, p, key, NULL, &env, NULL, &e), 0);
	assert_int_equal(cmk_envelope_write(tu_path("kek.json"), &env, &e), 0);
	cmk_provider_close(&p);
	cmk_envelope_free(&env);
}

static void kmsjob_classify_check_follows_the_envelope_file(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kek_store ks;
	struct cmk_kms_job j;
	struct cmk_err e;
	size_t len;
	char *good;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kek_store_init(&ks);
	good = tu_read_file(tu_path("kek.json"), &len);
	assert_int_equal(cmk_kek_store_reload(&ks, &f, &cfg, audit, &e), 0);
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
	cmk_kek_store_free(&ks);
	free(good);
}

/* A bad file must not hide a revocation of the CMK in memory either. */
static void kmsjob_classify_bad_envelope_file_does_not_hide_a_revocation(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kek_store ks;
	struct cmk_kms_job j;
	struct cmk_err e;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kek_store_init(&ks);
	assert_int_equal(cmk_kek_store_reload(&ks, &f, &cfg, audit, &e), 0);
	tu_write_file(tu_path("kek.json"), "{\"format\":", 10, 0600);
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_DISABLED, &e), 0);
	run_job(&j, CMK_KMS_CHECK, &ks, &f, true);
	assert_int_not_equal(j.ret, 0);
	assert_int_not_equal(j.bad.cls, CMK_EC_NONE);
	assert_int_equal(j.err.cls, CMK_EC_DEFINITIVE);
	assert_int_equal(j.err.reason, CMK_R_DISABLED);
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_ENABLED, &e), 0);
	cmk_kek_store_free(&ks);
}

/* After a wipe the KEK is unsealed from the envelope in memory if the file is bad. */
static void kmsjob_classify_unseal_falls_back_to_the_envelope_in_memory(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kek_store ks;
	struct cmk_kms_job j;
	struct cmk_err e;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kek_store_init(&ks);
	assert_int_equal(cmk_kek_store_reload(&ks, &f, &cfg, audit, &e), 0);
	cmk_kek_store_forget(&ks);
	tu_write_file(tu_path("kek.json"), "garbage", 7, 0600);
	run_job(&j, CMK_KMS_UNSEAL, &ks, &f, true);
	assert_int_equal(j.ret, 0);
	assert_int_not_equal(j.bad.cls, CMK_EC_NONE);	/* reported */
	assert_non_null(ks.cur);			/* adopted */
	/* a refused CMK is refused here too, and leaves no KEK */
	cmk_kek_store_forget(&ks);
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_DISABLED, &e), 0);
	run_job(&j, CMK_KMS_UNSEAL, &ks, &f, true);
	assert_int_not_equal(j.ret, 0);
	assert_int_equal(j.err.cls, CMK_EC_DEFINITIVE);
	assert_null(ks.cur);
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_ENABLED, &e), 0);
	cmk_kek_store_free(&ks);
}

/* At boot nothing is in memory: the file's failure is the answer. */
static void kmsjob_classify_unseal_without_envelope_fails(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kek_store ks;
	struct cmk_kms_job j;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kek_store_init(&ks);
	tu_write_file(tu_path("kek.json"), "garbage", 7, 0600);
	run_job(&j, CMK_KMS_UNSEAL, &ks, &f, true);
	assert_int_not_equal(j.ret, 0);
	assert_contains(j.err.msg, tu_path("kek.json"));
	assert_int_equal(j.bad.cls, CMK_EC_NONE);	/* not a second report */
	assert_null(ks.cur);
	cmk_kek_store_free(&ks);
}

/* An answer the loop no longer wants (VM fork, deadline): its KEK is wiped. */
static void kmsjob_cleanse_unwanted_unseal_is_wiped_not_adopted(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kek_store ks;
	struct cmk_kms_job j;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kek_store_init(&ks);
	memset(&j, 0, sizeof(j));
	j.kind = CMK_KMS_UNSEAL;
	j.cfg = &cfg;
	j.keks = &ks;
	j.audit = audit;
	j.file = f;
	cmk_kms_job_run(&j);
	assert_int_equal(j.ret, 0);
	assert_true(j.loaded);
	assert_false(cmk_kms_job_adopt(&j, false, &ks, &f, &retired));
	assert_null(ks.cur);
	tu_munmap_inspect = true;
	tu_munmap_count = 0;
	tu_munmap_data_zero = false;
	cmk_kms_job_release(&j, &retired);
	tu_munmap_inspect = false;
	assert_true(tu_munmap_count >= 1);
	assert_true(tu_munmap_data_zero);	/* the KEK was wiped before unmap */
	assert_false(j.loaded);
	cmk_kek_store_free(&ks);
}

/* KMS answers for the aws provider below (a real wire shape, aws.rst). */
static const char aws_disabled[] =
	"HTTP/1.1 400 Bad Request\r\n"
	"Content-Type: application/x-amz-json-1.1\r\n"
	"Content-Length: 64\r\n"
	"Connection: close\r\n\r\n"
	"{\"__type\":\"DisabledException\",\"message\":\"the key is disabled..\"}";

/*
 * The file rewrapped to a CMK of another provider (aws, at @url) whose
 * first call fails here, locally (no credentials yet: a credentials
 * source that does not read).  Oracle: only a file that does not read or
 * parse is a bad file (kmsjob.h); a local failure of the new CMK's call
 * says nothing about the file, so the next check asks that CMK again,
 * and its later refusal is the answer (before: the file was filed as bad
 * and the old CMK in memory checked, the new CMK's revocation unseen).
 */
static void kmsjob_classify_changed_envelope_kms_local_failure_tried_again(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kek_store ks;
	struct cmk_kms_job j;
	struct tu_peer peer;
	struct cmk_err e;
	char text[2048], *env, *at;
	size_t len;

	(void)state;
	tu_peer_start(&peer, aws_disabled, NULL, NULL);
	cmk_config_free(&cfg);
	snprintf(text, sizeof(text),
		 "[agent]\nkek_envelope = %s\nstate_dir = %s\naudit_log = %s\nsyslog = no\n"
		 "[provider \"aws\"]\nregion = us-east-1\nendpoint = %s\n"
		 "credentials = environment\nmax_attempts = 1\n",
		 tu_path("kek.json"), tu_path("run"), tu_path("audit.log"), peer.url);
	assert_int_equal(cmk_config_parse(text, strlen(text), "agent.conf", &cfg, &e), 0);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	memset(&f, 0, sizeof(f));
	cmk_kek_store_init(&ks);
	assert_int_equal(cmk_kek_store_reload(&ks, &f, &cfg, audit, &e), 0);
	env = tu_read_file(tu_path("kek.json"), &len);
	at = strstr(env, "\"local\"");
	assert_non_null(at);
	memmove(at + 5, at + 7, len - (size_t)(at + 7 - env) + 1);
	memcpy(at, "\"aws\"", 5);
	tu_write_file(tu_path("kek.json"), env, strlen(env), 0600);
	free(env);
	for (int i = 0; i < 2; i++) {
		assert_false(run_job(&j, CMK_KMS_CHECK, &ks, &f, true));
		assert_int_equal(j.ret, 0);		/* the CMK in memory said yes */
		if (j.bad.cls != CMK_EC_LOCAL)
			fail_msg("check %d: the new CMK was not asked again (bad %s)", i,
				 cmk_err_class_name(j.bad.cls));
		assert_contains(j.bad.msg, "AWS_ACCESS_KEY_ID");
	}
	assert_int_equal(peer.requests, 0);
	/* the credentials arrive; the new CMK was disabled meanwhile */
	setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "notreally", 1);
	assert_false(run_job(&j, CMK_KMS_CHECK, &ks, &f, true));
	assert_int_not_equal(j.ret, 0);
	assert_true(j.file_answer);
	assert_int_equal(j.err.cls, CMK_EC_DEFINITIVE);
	assert_int_equal(j.err.reason, CMK_R_DISABLED);
	assert_int_equal(peer.requests, 1);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	tu_peer_stop(&peer);
	cmk_kek_store_free(&ks);
}

/*
 * A job whose answer nobody wants (stale: a suspend, a VM fork, its
 * deadline) records nothing, not even a bad file: the next check reads
 * the file again.  Oracle: kmsjob.h (a job nobody wants records nothing).
 */
static void kmsjob_classify_unwanted_job_records_no_bad_file(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kek_store ks;
	struct cmk_kms_job j;
	struct cmk_err e;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kek_store_init(&ks);
	assert_int_equal(cmk_kek_store_reload(&ks, &f, &cfg, audit, &e), 0);
	tu_write_file(tu_path("kek.json"), "{\"format\":", 10, 0600);
	assert_false(run_job(&j, CMK_KMS_CHECK, &ks, &f, false));
	assert_int_not_equal(j.bad.cls, CMK_EC_NONE);
	assert_int_equal(f.bad.st_ino, 0);	/* nothing recorded */
	/* the next (wanted) check reads it again, and files it as bad */
	assert_false(run_job(&j, CMK_KMS_CHECK, &ks, &f, true));
	assert_int_not_equal(j.bad.cls, CMK_EC_NONE);
	assert_int_not_equal(f.bad.st_ino, 0);
	assert_false(run_job(&j, CMK_KMS_CHECK, &ks, &f, true));
	assert_int_equal(j.bad.cls, CMK_EC_NONE);	/* reported once */
	cmk_kek_store_free(&ks);
}

/*
 * After "cmkctl kek rewrap --key-ref NEW" the file names the CMK the key
 * owner now controls: NEW refusing it is a revocation, even while the old
 * CMK in memory still answers (before: filed as a bad file, and NEW's
 * revocation was never acted on).  Asked again at every check: NEW
 * enabled again, the file loads.
 */
static void kmsjob_classify_changed_envelope_cmk_refusal_revokes(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kek_store ks;
	struct cmk_kms_job j;
	struct cmk_err e;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kek_store_init(&ks);
	assert_int_equal(cmk_kek_store_reload(&ks, &f, &cfg, audit, &e), 0);
	rewrap_file_to(tu_path("new.key"));
	assert_int_equal(cmk_local_key_set_state(tu_path("new.key"), CMK_LOCAL_DISABLED, &e), 0);
	for (int i = 0; i < 2; i++) {
		assert_false(run_job(&j, CMK_KMS_CHECK, &ks, &f, true));
		assert_int_not_equal(j.ret, 0);
		assert_int_equal(j.err.cls, CMK_EC_DEFINITIVE);
		assert_int_equal(j.err.reason, CMK_R_DISABLED);
		assert_contains(j.err.msg, tu_path("kek.json"));
		assert_true(j.file_answer);
		assert_int_equal(j.bad.cls, CMK_EC_NONE);	/* not a bad file */
	}
	/* the unseal after the revoke asks the file's CMK too, not the old one */
	cmk_kek_store_forget(&ks);
	run_job(&j, CMK_KMS_UNSEAL, &ks, &f, true);
	assert_int_equal(j.err.cls, CMK_EC_DEFINITIVE);
	assert_null(ks.cur);
	assert_int_equal(cmk_local_key_set_state(tu_path("new.key"), CMK_LOCAL_ENABLED, &e), 0);
	assert_true(run_job(&j, CMK_KMS_CHECK, &ks, &f, true));
	assert_int_equal(j.ret, 0);
	assert_contains(ks.env.cur.key_ref, "new.key");
	cmk_kek_store_free(&ks);
}

/*
 * A changed file whose provider the configuration lacks is a local
 * failure, not an answer: reported once, and the envelope in memory
 * checked.
 */
static void kmsjob_classify_changed_envelope_local_failure_checks_memory(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kek_store ks;
	struct cmk_kms_job j;
	struct cmk_err e;
	size_t len;
	char *text, *at;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kek_store_init(&ks);
	assert_int_equal(cmk_kek_store_reload(&ks, &f, &cfg, audit, &e), 0);
	text = tu_read_file(tu_path("kek.json"), &len);
	at = strstr(text, "\"local\"");
	assert_non_null(at);
	memcpy(at, "\"kmip\" ", 7);	/* known, but not configured */
	tu_write_file(tu_path("kek.json"), text, len, 0600);
	free(text);
	assert_false(run_job(&j, CMK_KMS_CHECK, &ks, &f, true));
	assert_int_equal(j.ret, 0);		/* the CMK in memory said yes */
	assert_false(j.file_answer);
	assert_int_equal(j.bad.cls, CMK_EC_LOCAL);
	/*
	 * It cannot open before a restart with another configuration: not
	 * tried (and reported) again at every check, only once it changes.
	 */
	assert_false(run_job(&j, CMK_KMS_CHECK, &ks, &f, true));
	assert_int_equal(j.ret, 0);
	assert_int_equal(j.bad.cls, CMK_EC_NONE);
	cmk_kek_store_free(&ks);
}

/*
 * The provider of a KEK set the main thread replaces is not closed there
 * (C_Finalize, a TLS shutdown can block the loop): the next job closes it.
 */
static void kmsjob_hang_replaced_provider_closed_by_the_next_job(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kek_store ks;
	struct cmk_kms_job j;
	struct cmk_provider *old;
	struct cmk_err e;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kek_store_init(&ks);
	assert_int_equal(cmk_kek_store_reload(&ks, &f, &cfg, audit, &e), 0);
	old = ks.p;
	rewrap_file_to(tu_path("new.key"));
	memset(&j, 0, sizeof(j));
	j.kind = CMK_KMS_CHECK;
	j.cfg = &cfg;
	j.keks = &ks;
	j.audit = audit;
	j.file = f;
	cmk_kms_job_run(&j);
	assert_int_equal(j.ret, 0);
	assert_true(cmk_kms_job_adopt(&j, true, &ks, &f, &retired));
	assert_int_equal(retired.n, 1);		/* handed on, not closed here */
	assert_ptr_equal(retired.p[0], old);
	assert_ptr_not_equal(ks.p, old);
	cmk_kms_job_release(&j, &retired);
	assert_false(run_job(&j, CMK_KMS_CHECK, &ks, &f, true));	/* closes it */
	assert_int_equal(retired.n, 0);
	cmk_kek_store_free(&ks);
}

/*
 * A check that reloads a changed file while the agent holds no KEK
 * (revoked): the envelope is adopted, its KEKs are wiped.
 */
static void kmsjob_cleanse_check_reload_without_kek_adopts_no_kek(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kek_store ks;
	struct cmk_kms_job j;
	struct cmk_err e;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kek_store_init(&ks);
	assert_int_equal(cmk_kek_store_reload(&ks, &f, &cfg, audit, &e), 0);
	cmk_kek_store_forget(&ks);
	rewrap_file_to(tu_path("new.key"));
	memset(&j, 0, sizeof(j));
	j.kind = CMK_KMS_CHECK;
	j.cfg = &cfg;
	j.keks = &ks;
	j.audit = audit;
	j.file = f;
	cmk_kms_job_run(&j);
	assert_int_equal(j.ret, 0);
	assert_true(cmk_kms_job_has_keks(&j));
	cmk_kms_job_drop_keks(&j);
	assert_false(cmk_kms_job_has_keks(&j));
	assert_true(cmk_kms_job_adopt(&j, true, &ks, &f, &retired));
	assert_null(ks.cur);
	assert_contains(ks.env.cur.key_ref, "new.key");
	cmk_kms_job_release(&j, &retired);
	cmk_kek_store_free(&ks);
}

/*
 * M1: retired KEK versions are not the unseal's business.  An envelope
 * with 14 retired versions, a current and a previous one, and a KMS that
 * takes 150 ms per call: the unseal makes exactly the current and
 * previous unwraps (2 calls) and ends within check_timeout_ms (the bound
 * the agent's worker gives it; 16 calls would take 2.4 s > 2 s).  A
 * retired job then unwraps exactly the one version asked for.
 */
static void kmsjob_retired_unseal_skips_retired_slow_kms(void **state)
{
	struct cmk_provider *p = NULL;
	struct cmk_secret *k = NULL;
	struct cmk_envelope env;
	struct cmk_kekfile f;
	struct cmk_kek_store ks;
	struct cmk_kms_job j;
	struct cmk_err e;
	uint32_t v;

	(void)state;
	cmk_envelope_init(&env);
	assert_int_equal(cmk_provider_open("local", NULL, 0, &p, &e), 0);
	assert_int_equal(cmk_envelope_read(tu_path("kek.json"), &env, &e), 0);
	for (int i = 0; i < 15; i++) {
		assert_int_equal(cmk_envelope_rotate(p, &env, &k, NULL, &e), 0);
		cmk_secret_free(&k);
		if (i < 14)
			cmk_envelope_finish_rotation(&env);
	}
	assert_int_equal(env.n_retired, 14);
	assert_true(env.has_prev);
	assert_int_equal(cmk_envelope_write(tu_path("kek.json"), &env, &e), 0);
	cmk_envelope_free(&env);
	cmk_provider_close(&p);

	memset(&f, 0, sizeof(f));
	cmk_kek_store_init(&ks);
	cfg.check_timeout_ms = 2000;	/* as in the review's case */
	unwraps = 0;
	slow_ms = 150;
	run_job(&j, CMK_KMS_UNSEAL, &ks, &f, true);
	print_message("# unseal with 14 retired versions: %u KMS calls, %ld ms (check_timeout_ms %u)\n",
		      unwraps, j.latency_ms, cfg.check_timeout_ms);
	assert_int_equal(j.ret, 0);
	assert_int_equal(unwraps, 2);
	assert_true(j.latency_ms < (long)cfg.check_timeout_ms);
	assert_non_null(ks.cur);
	assert_non_null(ks.prev);
	for (unsigned int i = 0; i < ks.env.n_retired; i++)
		assert_null(ks.old[i]);

	/* One retired version, when asked: one call; the set is not touched. */
	unwraps = 0;
	v = ks.env.retired[3].kek_version;
	memset(&j, 0, sizeof(j));
	j.kind = CMK_KMS_RETIRED;
	j.cfg = &cfg;
	j.keks = &ks;
	j.audit = audit;
	j.version = v;
	cmk_kms_job_run(&j);
	slow_ms = 0;
	assert_int_equal(j.ret, 0);
	assert_int_equal(unwraps, 1);
	assert_non_null(j.one);
	assert_null(ks.old[3]);
	assert_int_equal(cmk_envelope_unwrap_version(ks.p, &ks.env, v, &k, NULL, &e), 0);
	assert_true(cmk_secret_equal(k, j.one));
	cmk_secret_free(&k);
	cmk_kms_job_release(&j, &retired);
	assert_null(j.one);
	/* a version the envelope does not hold as retired */
	j.version = ks.env.cur.kek_version;
	cmk_kms_job_run(&j);
	assert_int_equal(j.ret, -ENOENT);
	assert_null(j.one);
	cmk_kms_job_release(&j, &retired);
	cmk_kek_store_free(&ks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(kmsjob_classify_check_follows_the_envelope_file,
						setup, teardown),
		cmocka_unit_test_setup_teardown(kmsjob_classify_bad_envelope_file_does_not_hide_a_revocation,
						setup, teardown),
		cmocka_unit_test_setup_teardown(kmsjob_classify_unseal_falls_back_to_the_envelope_in_memory,
						setup, teardown),
		cmocka_unit_test_setup_teardown(kmsjob_classify_unseal_without_envelope_fails,
						setup, teardown),
		cmocka_unit_test_setup_teardown(kmsjob_cleanse_unwanted_unseal_is_wiped_not_adopted,
						setup, teardown),
		cmocka_unit_test_setup_teardown(kmsjob_classify_changed_envelope_cmk_refusal_revokes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(kmsjob_classify_changed_envelope_local_failure_checks_memory,
						setup, teardown),
		cmocka_unit_test_setup_teardown(kmsjob_classify_changed_envelope_kms_local_failure_tried_again,
						setup, teardown),
		cmocka_unit_test_setup_teardown(kmsjob_classify_unwanted_job_records_no_bad_file,
						setup, teardown),
		cmocka_unit_test_setup_teardown(kmsjob_hang_replaced_provider_closed_by_the_next_job,
						setup, teardown),
		cmocka_unit_test_setup_teardown(kmsjob_retired_unseal_skips_retired_slow_kms,
						setup, teardown),
		cmocka_unit_test_setup_teardown(kmsjob_cleanse_check_reload_without_kek_adopts_no_kek,
						setup, teardown),
	};

	return cmocka_run_group_tests_name("kmsjob", tests, NULL, NULL);
}
