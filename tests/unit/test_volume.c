// SPDX-License-Identifier: GPL-2.0
/*
 * test_volume.c - the host-testable half of volume/: the KEK store (load,
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

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <linux/magic.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "device/binding.h"
#include "kms/azure/provider_azure.h"
#include "kms/local/provider_local.h"
#include "volume/volume.h"

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

static void volume_kek_store_load_unwraps_and_audits(void **state)
{
	struct cmk_kek_store ks;
	struct cmk_err e;
	char *log;

	(void)state;
	cmk_kek_store_init(&ks);
	assert_int_equal(cmk_kek_store_load(&ks, &cfg, false, audit, &e), 0);
	assert_non_null(ks.cur);
	assert_null(ks.prev);
	assert_int_equal(cmk_kek_store_check(&ks, audit, true, NULL, &e), 0);
	cmk_kek_store_forget(&ks);
	assert_null(ks.cur);
	/* a check needs no plain KEK: it unwraps the wrapped one */
	assert_int_equal(cmk_kek_store_check(&ks, audit, true, NULL, &e), 0);
	cmk_kek_store_free(&ks);
	log = tu_read_file(tu_path("audit.log"), NULL);
	assert_contains(log, "\"operation\":\"unwrap\",\"outcome\":\"success\"");
	assert_contains(log, "\"operation\":\"check\",\"outcome\":\"success\"");
	free(log);
}

/*
 * An azure envelope with no "vault =" pin: the VM's token would go to any
 * vault an envelope names.  Oracle: the audit log and stderr say so, once
 * per process however often the envelope is loaded; nothing is said with
 * the pin.  (The vault is a closed loopback port: the unwrap fails, which
 * is not what is tested.)
 */
static void azure_envelope_write(void)
{
	static const unsigned char ct[256] = { 1 };
	struct json_object *o = json_object_from_file(tu_path("kek.json"));
	unsigned char *blob = NULL;
	char b64[512];
	size_t bl = 0;
	struct cmk_err e;

	assert_non_null(o);
	assert_int_equal(cmk_azure_blob_pack(CMK_AZURE_ALG_RSA_OAEP_256, "0123abcd", ct,
					     sizeof(ct), &blob, &bl, &e), 0);
	assert_true(EVP_EncodeBlock((unsigned char *)b64, blob, (int)bl) > 0);
	free(blob);
	json_object_object_add(o, "provider", json_object_new_string("azure"));
	json_object_object_add(o, "key_ref", json_object_new_string("https://127.0.0.1:9/keys/cmk"));
	json_object_object_add(o, "wrapped_kek", json_object_new_string(b64));
	assert_int_equal(json_object_to_file(tu_path("kek-azure.json"), o), 0);
	json_object_put(o);
}

static void load_azure(const char *pin, int loads, const char *log_name)
{
	struct cmk_config c;
	struct cmk_audit *al = NULL;
	struct cmk_kek_store ks;
	struct cmk_err e;
	char text[2048];

	snprintf(text, sizeof(text),
		 "[agent]\nkek_envelope = %s\nstate_dir = %s\naudit_log = %s\nsyslog = no\n"
		 "[provider \"azure\"]\nimds_endpoint = http://127.0.0.1:9\nmax_attempts = 1\n"
		 "timeout_ms = 500\nconnect_timeout_ms = 500\nverify_challenge_resource = no\n%s",
		 tu_path("kek-azure.json"), tu_path("run"), tu_path(log_name), pin);
	assert_int_equal(cmk_config_parse(text, strlen(text), "agent.conf", &c, &e), 0);
	assert_int_equal(cmk_audit_open(c.audit_log, false, "test", &al, &e), 0);
	for (int i = 0; i < loads; i++) {
		cmk_kek_store_init(&ks);
		assert_int_not_equal(cmk_kek_store_load(&ks, &c, false, al, &e), 0);
		assert_int_equal(e.cls, CMK_EC_TRANSIENT);
		cmk_kek_store_free(&ks);
	}
	cmk_audit_close(&al);
	cmk_config_free(&c);
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void volume_credential_azure_unpinned_vault_warned_once(void **state)
{
	char *log;

	(void)state;
	azure_envelope_write();
	/* pinned: no warning (first, so the process-wide once is not used up) */
	load_azure("vault = https://127.0.0.1:9\n", 1, "pinned.log");
	log = tu_read_file(tu_path("pinned.log"), NULL);
	assert_null(strstr(log, "config_warning"));
	free(log);
	load_azure("", 3, "unpinned.log");
	log = tu_read_file(tu_path("unpinned.log"), NULL);
	print_message("# %.*s\n", (int)strcspn(strstr(log, "config_warning") ?: log, "\n"),
		      strstr(log, "config_warning") ?: log);
	assert_int_equal(count_of(log, "\"event\":\"config_warning\""), 1);
	assert_contains(log, "pins no vault");
	assert_contains(log, "vault = https://NAME.vault.azure.net");
	free(log);
}

static void volume_kek_store_disabled_cmk_is_definitive_and_holds_no_kek(void **state)
{
	struct cmk_kek_store ks;
	struct cmk_kms_call call;
	struct cmk_err e;
	char *log;

	(void)state;
	cmk_kek_store_init(&ks);
	assert_int_equal(cmk_kek_store_load(&ks, &cfg, false, audit, &e), 0);
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_DISABLED, &e), 0);
	assert_int_not_equal(cmk_kek_store_check(&ks, NULL, false, &call, &e), 0);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_int_not_equal(cmk_kek_store_load(&ks, &cfg, false, audit, &e), 0);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_contains(e.msg, tu_path("kek.json"));
	assert_null(ks.cur);
	cmk_kek_store_free(&ks);
	log = tu_read_file(tu_path("audit.log"), NULL);
	assert_contains(log, "\"outcome\":\"failure\",\"error_class\":\"definitive\",\"reason\":\"disabled\"");
	free(log);
	/* with audit NULL the check itself wrote nothing; the caller may */
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_ENABLED, &e), 0);
}

static void volume_kek_store_check_without_envelope_fails(void **state)
{
	struct cmk_kek_store ks;
	struct cmk_err e;

	(void)state;
	cmk_kek_store_init(&ks);
	assert_int_equal(cmk_kek_store_check(&ks, audit, true, NULL, &e), -ENOKEY);
	cmk_kek_store_free(&ks);
}

/* After a revoke wiped the KEK, the envelope in memory unseals without the file. */
static void volume_classify_bad_envelope_file_unseal_from_memory(void **state)
{
	struct cmk_kekfile f;
	struct cmk_kek_store ks;
	struct cmk_err e;

	(void)state;
	memset(&f, 0, sizeof(f));
	cmk_kek_store_init(&ks);
	assert_int_equal(cmk_kek_store_reload(&ks, &f, &cfg, audit, &e), 0);
	cmk_kek_store_forget(&ks);
	assert_null(ks.cur);
	tu_write_file(tu_path("kek.json"), "garbage", 7, 0600);
	assert_int_not_equal(cmk_kek_store_reload(&ks, &f, &cfg, audit, &e), 0);
	assert_null(ks.cur);
	assert_int_equal(cmk_kek_store_unseal(&ks, audit, &e), 0);
	assert_non_null(ks.cur);
	/* and a refused CMK is refused here too */
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_DISABLED, &e), 0);
	assert_int_not_equal(cmk_kek_store_unseal(&ks, audit, &e), 0);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_null(ks.cur);
	assert_int_equal(cmk_local_key_set_state(tu_path("cmk.key"), CMK_LOCAL_ENABLED, &e), 0);
	cmk_kek_store_free(&ks);
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

/* ---- a fake kernel: dm devices and the dm-cmk family --------------------------- */

struct fake_dev {
	bool exists;
	char dm_name[128];
	char key_name[CMK_NAME_MAX + 1];
	uint32_t state;
	uint32_t reason;
	uint32_t sector_size;
	bool bound;
	bool stub;		/* created, no table loaded: no slot */
	bool live;		/* the table is live (resumed) */
	bool live_before_key;	/* it went live while the slot had no key */
	uint8_t key[DM_CMK_KEY_LEN];
	uint64_t generation;
	int key_sets, renews, wipes, rejected;
};

#define FK_MAX 4
static struct fake_dev fk[FK_MAX];
/* Called at the start of GET / KEY_SET / create: "meanwhile, elsewhere". */
static void (*fk_on_get)(void);
static void (*fk_on_key_set)(void);
/* KEY_SET fails with this (-ESTALE: the VM-fork epoch), if not 0 */
static int fk_key_set_err;
static void (*fk_on_create)(void);
/* Called after a KEY_WIPE; dm remove fails with this (-EBUSY), if not 0. */
static void (*fk_on_wipe)(struct fake_dev *f);
static int fk_remove_err;
/* GET reports BOUND (false: a dm-cmk module from before key binding). */
static bool fk_reports_bound;
/* The backing of the last table loaded, as the kernel resolved it then. */
static char fk_table_dev[4096];

static struct fake_dev *fk_by_key(const char *key_name)
{
	for (int i = 0; i < FK_MAX; i++)
		if (fk[i].exists && !fk[i].stub && !strcmp(fk[i].key_name, key_name))
			return &fk[i];
	return NULL;
}

static struct fake_dev *fk_by_dm(const char *dm_name)
{
	for (int i = 0; i < FK_MAX; i++)
		if (fk[i].exists && !strcmp(fk[i].dm_name, dm_name))
			return &fk[i];
	return NULL;
}

int __wrap_cmk_dm_exists(const char *name, bool *exists, struct cmk_err *e);
int __wrap_cmk_dm_create(const char *name, const char *table, struct cmk_err *e);
int __wrap_cmk_dm_resume(const char *name, struct cmk_err *e);
int __wrap_cmk_dm_remove_stub(const char *name, bool *removed, struct cmk_err *e);
int __wrap_cmk_dm_remove(const char *name, struct cmk_err *e);
int __wrap_cmk_genl_get(struct cmk_genl *g, const char *name,
			struct cmk_dev_info *info, struct cmk_err *e);
int __wrap_cmk_genl_key_set(struct cmk_genl *g, const char *name,
			    const struct cmk_secret *key, uint64_t generation,
			    uint32_t lease_ms, struct cmk_err *e);
int __wrap_cmk_genl_key_wipe(struct cmk_genl *g, const char *name,
			     enum dm_cmk_reason reason, struct cmk_err *e);
int __wrap_cmk_genl_lease_renew(struct cmk_genl *g, const char *name,
				uint32_t lease_ms, struct cmk_err *e);

int __wrap_cmk_dm_exists(const char *name, bool *exists, struct cmk_err *e)
{
	(void)e;
	*exists = fk_by_dm(name) != NULL;
	return 0;
}

int __wrap_cmk_dm_create(const char *name, const char *table, struct cmk_err *e)
{
	char key_name[CMK_NAME_MAX + 1], dev[4096];

	if (fk_on_create)
		fk_on_create();
	/* The kernel resolves the device named in the table when it loads it. */
	fk_table_dev[0] = '\0';
	if (sscanf(table, "%*u %*u cmk %*s %*s %*u %4095s", dev) == 1 &&
	    !realpath(dev, fk_table_dev))
		snprintf(fk_table_dev, sizeof(fk_table_dev), "%s", dev);

	for (int i = 0; i < FK_MAX; i++) {
		struct fake_dev *f = &fk[i];

		if (f->exists)
			continue;
		memset(f, 0, sizeof(*f));
		if (sscanf(table, "%*u %*u cmk %*s %64s", key_name) != 1)
			return cmk_errf(e, -EINVAL, "fake dm: bad table %s", table);
		f->exists = true;
		snprintf(f->dm_name, sizeof(f->dm_name), "%s", name);
		snprintf(f->key_name, sizeof(f->key_name), "%s", key_name);
		f->state = DM_CMK_STATE_SEALED;
		f->sector_size = strstr(table, "sector_size:4096") ? 4096 : 512;
		return 0;
	}
	return cmk_errf(e, -ENOSPC, "fake dm: full");
}

int __wrap_cmk_dm_remove_stub(const char *name, bool *removed, struct cmk_err *e)
{
	struct fake_dev *f = fk_by_dm(name);

	(void)e;
	*removed = f && f->stub;
	if (*removed)
		memset(f, 0, sizeof(*f));
	return 0;
}

int __wrap_cmk_dm_resume(const char *name, struct cmk_err *e)
{
	struct fake_dev *f = fk_by_dm(name);

	if (!f)
		return cmk_errf(e, -EIO, "fake dm: cannot query %s", name);
	if (!f->live) {
		f->live = true;
		f->live_before_key = f->state != DM_CMK_STATE_ACTIVE;
	}
	return 0;
}

int __wrap_cmk_dm_remove(const char *name, struct cmk_err *e)
{
	struct fake_dev *f = fk_by_dm(name);

	if (!f)
		return cmk_errf(e, -ENXIO, "fake dm: no %s", name);
	if (fk_remove_err)
		return cmk_errf(e, fk_remove_err, "fake dm: %s is in use", name);
	memset(f, 0, sizeof(*f));
	return 0;
}

int __wrap_cmk_genl_get(struct cmk_genl *g, const char *name,
			struct cmk_dev_info *info, struct cmk_err *e)
{
	struct fake_dev *f;

	(void)g;
	if (fk_on_get)
		fk_on_get();
	f = fk_by_key(name);
	if (!f)
		return cmk_errf(e, -ENODEV, "fake kernel: no device uses key %s", name);
	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%s", name);
	info->state = f->state;
	info->reason = f->reason;
	info->generation = f->generation;
	info->sector_size = f->sector_size;
	info->bound = f->bound && fk_reports_bound;
	return 0;
}

int __wrap_cmk_genl_key_set(struct cmk_genl *g, const char *name,
			    const struct cmk_secret *key, uint64_t generation,
			    uint32_t lease_ms, struct cmk_err *e)
{
	struct fake_dev *f;

	(void)g;
	(void)lease_ms;
	if (fk_on_key_set)
		fk_on_key_set();
	if (fk_key_set_err)
		return cmk_errf(e, fk_key_set_err,
				"kernel refused KEY_SET for %s: %s (the VM was forked since this key's KEK was unsealed: unseal it again)",
				name, strerror(-fk_key_set_err));
	f = fk_by_key(name);
	if (!f)
		return cmk_errf(e, -ENODEV, "fake kernel: no device uses key %s", name);
	/* dm-cmk binds a slot to the first key it is given */
	if (f->bound && memcmp(f->key, cmk_secret_cdata(key), DM_CMK_KEY_LEN)) {
		f->rejected++;
		return cmk_errf(e, -EKEYREJECTED, "fake kernel: key differs from the bound key");
	}
	memcpy(f->key, cmk_secret_cdata(key), DM_CMK_KEY_LEN);
	f->bound = true;
	f->state = DM_CMK_STATE_ACTIVE;
	f->generation = generation;
	f->key_sets++;
	return 0;
}

int __wrap_cmk_genl_key_wipe(struct cmk_genl *g, const char *name,
			     enum dm_cmk_reason reason, struct cmk_err *e)
{
	struct fake_dev *f = fk_by_key(name);

	(void)g;
	if (!f)
		return cmk_errf(e, -ENODEV, "fake kernel: no device uses key %s", name);
	if (f->state == DM_CMK_STATE_ACTIVE)
		f->state = DM_CMK_STATE_WIPED;
	f->reason = reason;
	f->wipes++;
	if (fk_on_wipe)
		fk_on_wipe(f);
	return 0;
}

int __wrap_cmk_genl_lease_renew(struct cmk_genl *g, const char *name,
				uint32_t lease_ms, struct cmk_err *e)
{
	struct fake_dev *f = fk_by_key(name);

	(void)g;
	(void)lease_ms;
	if (!f)
		return cmk_errf(e, -ENODEV, "fake kernel: no device uses key %s", name);
	if (f->state != DM_CMK_STATE_ACTIVE)
		return cmk_errf(e, -ENOKEY, "fake kernel: %s holds no key", name);
	f->renews++;
	return 0;
}

/* The kernel wipes a key by itself (lease expiry, suspend). */
static void fk_lose_key(const char *key_name)
{
	struct fake_dev *f = fk_by_key(key_name);

	assert_non_null(f);
	f->state = DM_CMK_STATE_WIPED;
	f->reason = DM_CMK_REASON_LEASE_EXPIRED;
}

/* ---- fixture: devices pa, pb (persistent) and eph (ephemeral) on images ------------- */

struct vfx {
	struct cmk_config cfg;
	struct cmk_audit *audit;
	struct cmk_kek_store keks;
	struct cmk_opened mem[3];
	struct cmk_volume_ctx v;
	uint8_t boot[CMK_UUID_LEN];
};

static struct vfx vf;
/* pa's backing path, if not a.img (a link, say); pin_dir if not lib/pins */
static const char *vf_pa_backing, *vf_pin_dir;

static void appendf(char *buf, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t n, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + len, n - len, fmt, ap);
	va_end(ap);
}

/* (Re)load the configuration; @pb_extra goes into [device "pb"]. */
static void vf_config(const char *pb_extra)
{
	struct cmk_err e;
	char text[4096];

	if (vf.v.cfg)
		cmk_config_free(&vf.cfg);
	/* (tu_path() rotates four buffers: one call per statement) */
	snprintf(text, sizeof(text), "[agent]\nkek_envelope = %s\n", tu_path("kek.json"));
	appendf(text, sizeof(text), "state_dir = %s\n", tu_path("run"));
	appendf(text, sizeof(text), "pin_dir = %s\n", vf_pin_dir ? vf_pin_dir : tu_path("lib/pins"));
	appendf(text, sizeof(text), "audit_log = %s\nsyslog = no\n", tu_path("audit.log"));
	appendf(text, sizeof(text), "[device \"pa\"]\nbacking = %s\nmode = persistent\n",
		vf_pa_backing ? vf_pa_backing : tu_path("a.img"));
	appendf(text, sizeof(text), "[device \"pb\"]\nbacking = %s\nmode = persistent\n%s",
		tu_path("b.img"), pb_extra ? pb_extra : "");
	appendf(text, sizeof(text), "[device \"eph\"]\nbacking = %s\nmode = ephemeral\n",
		tu_path("e.img"));
	if (cmk_config_parse(text, strlen(text), "agent.conf", &vf.cfg, &e))
		fail_msg("config: %s", e.msg);
	vf.v.cfg = &vf.cfg;
}

static const struct cmk_config_device *dev(const char *name)
{
	const struct cmk_config_device *d = cmk_volume_find(&vf.cfg, name);

	assert_non_null(d);
	return d;
}

static int vsetup(void **state)
{
	static const char *const img[] = { "a.img", "b.img", "e.img" };
	struct cmk_err e;

	if (setup(state))
		return -1;
	memset(&vf, 0, sizeof(vf));
	vf_pa_backing = vf_pin_dir = NULL;
	memset(fk, 0, sizeof(fk));
	fk_on_get = fk_on_key_set = fk_on_create = NULL;
	fk_on_wipe = NULL;
	fk_key_set_err = fk_remove_err = 0;
	fk_reports_bound = true;
	for (size_t i = 0; i < 3; i++) {
		int fd = open(tu_path(img[i]), O_RDWR | O_CREAT | O_TRUNC, 0600);

		if (fd < 0 || ftruncate(fd, 4 << 20))
			return -1;
		close(fd);
	}
	vf_config(NULL);
	cmk_kek_store_init(&vf.keks);
	if (cmk_audit_open(vf.cfg.audit_log, false, "test", &vf.audit, &e) ||
	    cmk_kek_store_load(&vf.keks, &vf.cfg, false, vf.audit, &e) ||
	    cmk_boot_id(vf.boot, &e)) {
		fprintf(stderr, "vsetup: %s\n", e.msg);
		return -1;
	}
	vf.v.audit = vf.audit;
	vf.v.keks = &vf.keks;
	vf.v.opened = vf.mem;		/* the agent's memory */
	return 0;
}

static int vteardown(void **state)
{
	cmk_kek_store_free(&vf.keks);
	cmk_audit_close(&vf.audit);
	cmk_config_free(&vf.cfg);
	return teardown(state);
}

/* cmkctl format --mode persistent on the image of @name. */
static void format(const char *name, uint32_t sector_size, struct cmk_header *h)
{
	struct cmk_kek_pair k = { &vf.keks.env, vf.keks.cur, NULL };
	struct cmk_secret *dek = NULL;
	struct cmk_err e;
	int fd = open(dev(name)->backing, O_RDWR);

	assert_true(fd >= 0);
	if (cmk_device_format(fd, &k, CMK_MODE_PERSISTENT, sector_size, 0, vf.boot,
			      true, h, &dek, &e))
		fail_msg("format %s: %s", name, e.msg);
	cmk_secret_free(&dek);
	close(fd);
}

static void copy_area(const char *from, const char *to, void *save)
{
	uint8_t *buf = malloc(CMK_HDR_AREA);
	int a = open(from, O_RDONLY), b = open(to, O_RDWR);

	assert_non_null(buf);
	assert_true(a >= 0 && b >= 0);
	if (save)
		assert_int_equal(pread(b, save, CMK_HDR_AREA, 0), CMK_HDR_AREA);
	assert_int_equal(pread(a, buf, CMK_HDR_AREA, 0), CMK_HDR_AREA);
	assert_int_equal(pwrite(b, buf, CMK_HDR_AREA, 0), CMK_HDR_AREA);
	close(a);
	close(b);
	free(buf);
}

static void put_area(const char *to, const void *area)
{
	int b = open(to, O_RDWR);

	assert_true(b >= 0);
	assert_int_equal(pwrite(b, area, CMK_HDR_AREA, 0), CMK_HDR_AREA);
	close(b);
}

static void get_area(const char *from, void *area)
{
	int a = open(from, O_RDONLY);

	assert_true(a >= 0);
	assert_int_equal(pread(a, area, CMK_HDR_AREA, 0), CMK_HDR_AREA);
	close(a);
}

static int open_dev(const char *name, enum cmk_volume_how *how, struct cmk_err *e)
{
	return cmk_volume_open(&vf.v, dev(name), how, e);
}

static void assert_audit(const char *needle)
{
	char *log = tu_read_file(tu_path("audit.log"), NULL);

	assert_contains(log, needle);
	free(log);
}

/*
 * The kernel refuses a key of a KEK unsealed before a VM fork with
 * -ESTALE, the errno the header checks use for another boot's or an older
 * header: the two must not meet in the caller (cmk-agent would take a
 * refused header for a fork, or a fork for a refused header).  Oracle:
 * volume.h - the kernel's refusal comes back as -EKEYEXPIRED, not named a
 * header refusal; a header's -ESTALE stays -ESTALE.
 */
static void volume_classify_kernel_fork_refusal_is_not_a_header_refusal(void **state)
{
	enum cmk_volume_how how;
	struct cmk_err e;
	int ret;

	(void)state;
	fk_key_set_err = -ESTALE;
	ret = open_dev("eph", &how, &e);
	fk_key_set_err = 0;
	print_message("# %s\n", e.msg);
	assert_int_equal(ret, -EKEYEXPIRED);
	assert_null(strstr(e.msg, "header refused"));
	assert_contains(e.msg, "forked");
}

/* "Meanwhile" an agent restore that held the device's lock installs the key again. */
static void restore_after_first_wipe(struct fake_dev *f)
{
	if (f->wipes == 1)
		f->state = DM_CMK_STATE_ACTIVE;
}

/*
 * A new device's table goes live only once its key is in: udev probes a
 * device when it goes live, and a read of a sealed device is held for
 * hold_ms while libdevmapper waits for udev (in a boot guest the agent's
 * main loop sat there until the watchdog killed it).  Oracle: after open
 * the table is live and went live with the key active; an open whose
 * KEY_SET failed leaves it not live, and the restore that installs the key
 * makes it live.
 */
static void volume_hold_table_goes_live_only_with_the_key(void **state)
{
	struct cmk_header h;
	struct fake_dev *f;
	struct cmk_err e;

	(void)state;
	format("pa", 4096, &h);
	assert_int_equal(open_dev("pa", NULL, &e), 0);
	f = fk_by_key(dev("pa")->key_name);
	assert_true(f->live);
	assert_false(f->live_before_key);

	fk_key_set_err = -EBUSY;
	assert_int_equal(open_dev("eph", NULL, &e), -EBUSY);
	f = fk_by_key(dev("eph")->key_name);
	assert_non_null(f);
	assert_false(f->live);
	fk_key_set_err = 0;
	assert_int_equal(cmk_volume_restore(&vf.v, dev("eph"), &e), 0);
	assert_true(f->live);
	assert_false(f->live_before_key);
}

/*
 * An open killed between the device's creation and its table load (the
 * boot guest's agent, by its watchdog) leaves a device with no table and
 * no key slot; the next open took it for a running device and failed at
 * every restore ("no dm-cmk device uses this key name").  Oracle: the next
 * open, or the agent's restore, removes it and opens the device afresh,
 * keyed and live.
 */
static void volume_hold_interrupted_create_is_finished_by_the_next_open(void **state)
{
	struct cmk_header h;
	struct fake_dev *f;
	struct cmk_err e;

	(void)state;
	format("pa", 4096, &h);
	fk[0].exists = fk[0].stub = true;
	snprintf(fk[0].dm_name, sizeof(fk[0].dm_name), "%s", dev("pa")->dm_name);
	if (open_dev("pa", NULL, &e))
		fail_msg("open after an interrupted create: %s", e.msg);
	f = fk_by_key(dev("pa")->key_name);
	assert_non_null(f);
	assert_int_equal(f->state, DM_CMK_STATE_ACTIVE);
	assert_true(f->live);

	/* the agent's restore of such a device opens it again too */
	assert_int_equal(cmk_volume_close(&vf.v, dev("pa"), &e), 0);
	fk[1].exists = fk[1].stub = true;
	snprintf(fk[1].dm_name, sizeof(fk[1].dm_name), "%s", dev("pa")->dm_name);
	if (cmk_volume_restore(&vf.v, dev("pa"), &e))
		fail_msg("restore after an interrupted create: %s", e.msg);
	f = fk_by_key(dev("pa")->key_name);
	assert_non_null(f);
	assert_int_equal(f->state, DM_CMK_STATE_ACTIVE);
	assert_true(f->live);
}

/*
 * cmkctl close wipes before it waits for the device's lock; an agent
 * restore that held the lock then may put the key back.  Oracle: close of a
 * busy device reports the failure, and the key is wiped when it returns,
 * never active.
 */
static void volume_adversarial_close_racing_restore_leaves_key_wiped(void **state)
{
	struct cmk_header h;
	enum cmk_volume_how how;
	struct fake_dev *f;
	struct cmk_err e;

	(void)state;
	format("pa", 4096, &h);
	assert_int_equal(open_dev("pa", &how, &e), 0);
	f = fk_by_key(dev("pa")->key_name);
	assert_non_null(f);
	fk_on_wipe = restore_after_first_wipe;
	fk_remove_err = -EBUSY;
	assert_int_equal(cmk_volume_close(&vf.v, dev("pa"), &e), -EBUSY);
	assert_contains(e.msg, "key wiped");
	assert_int_equal(f->state, DM_CMK_STATE_WIPED);
	assert_int_equal(f->reason, DM_CMK_REASON_REQUESTED);
}

/*
 * The repro, on the persistent path with trust on first use: A and
 * B opened (and so pinned), B closed, A's first MiB copied onto B, B
 * opened again.  Before: B was keyed with A's DEK.  Oracle: refused with a
 * message naming B and both device_uuids; the fake kernel never saw B
 * again; A's key stays active and is renewed (its header is refused too
 * while B presents its uuid); an audit line says why; B's own header, put
 * back, opens (positive control).
 */
static void volume_adversarial_header_swap_refused(void **state)
{
	struct cmk_header ha, hb;
	enum cmk_volume_how how;
	char ua[CMK_UUID_STR], ub[CMK_UUID_STR];
	uint8_t *saved = malloc(CMK_HDR_AREA);
	struct fake_dev *fa;
	struct cmk_err e;

	(void)state;
	format("pa", 4096, &ha);
	format("pb", 4096, &hb);
	assert_int_equal(open_dev("pa", &how, &e), 0);
	assert_int_equal(how, CMK_VOLUME_OPENED);
	assert_int_equal(open_dev("pb", &how, &e), 0);
	assert_int_equal(access(tu_path("lib/pins/pa"), F_OK), 0);
	assert_int_equal(access(tu_path("lib/pins/pb"), F_OK), 0);
	assert_int_equal(cmk_volume_close(&vf.v, dev("pb"), &e), 0);

	copy_area(tu_path("a.img"), tu_path("b.img"), saved);
	assert_int_equal(open_dev("pb", &how, &e), -EXDEV);
	cmk_uuid_format(ha.device_uuid, ua);
	cmk_uuid_format(hb.device_uuid, ub);
	assert_contains(e.msg, "device pb (");
	assert_contains(e.msg, "): header refused: its device_uuid");
	assert_contains(e.msg, ua);
	assert_contains(e.msg, ub);
	assert_null(fk_by_key("pb"));		/* never mapped, never keyed */
	assert_audit("\"device\":\"pb\"");
	assert_audit("header refused: its device_uuid");
	/*
	 * The live device A keeps working: its key is renewed, though its
	 * header is refused too while B presents the same device_uuid.
	 */
	fa = fk_by_key("pa");
	assert_int_equal(fa->state, DM_CMK_STATE_ACTIVE);
	assert_int_equal(open_dev("pa", &how, &e), -EXDEV);
	assert_contains(e.msg, "header refused, its live key kept and renewed: device pb");
	assert_int_equal(how, CMK_VOLUME_RENEWED);
	assert_int_equal(fa->renews, 1);
	assert_int_equal(fa->key_sets, 1);

	put_area(tu_path("b.img"), saved);
	assert_int_equal(open_dev("pb", &how, &e), 0);
	assert_int_equal(fk_by_key("pb")->generation, hb.sequence);
	free(saved);
}

/* The same with B pinned by the uuid line cmkctl format prints. */
static void volume_adversarial_header_swap_refused_by_config_uuid(void **state)
{
	struct cmk_header ha, hb;
	char line[80], ub[CMK_UUID_STR];
	struct cmk_err e;

	(void)state;
	format("pa", 4096, &ha);
	format("pb", 4096, &hb);
	cmk_uuid_format(hb.device_uuid, ub);
	snprintf(line, sizeof(line), "uuid = %s\n", ub);
	vf_config(line);
	copy_area(tu_path("a.img"), tu_path("b.img"), NULL);
	assert_int_equal(open_dev("pb", NULL, &e), -EXDEV);
	assert_contains(e.msg, "uuid in its [device] section");
	assert_null(fk_by_key("pb"));
	/* no pin file is written for a device the configuration pins */
	assert_int_not_equal(access(tu_path("lib/pins/pb"), F_OK), 0);
}

/*
 * A's header copied onto B before B was ever opened: trust on first use
 * alone would pin B to A's uuid.  Two devices present one uuid: both are
 * refused, nothing is pinned; once B is fixed, A opens.
 */
static void volume_adversarial_duplicate_uuid_both_refused(void **state)
{
	struct cmk_header ha;
	uint8_t *zero = calloc(1, CMK_HDR_AREA);
	struct cmk_err e;

	(void)state;
	format("pa", 4096, &ha);
	copy_area(tu_path("a.img"), tu_path("b.img"), NULL);
	assert_int_equal(open_dev("pb", NULL, &e), -EXDEV);
	assert_contains(e.msg, "header refused: device pa");
	assert_int_equal(open_dev("pa", NULL, &e), -EXDEV);
	assert_contains(e.msg, "header refused: device pb");
	assert_null(fk_by_key("pa"));
	assert_null(fk_by_key("pb"));
	assert_int_not_equal(access(tu_path("lib/pins/pa"), F_OK), 0);
	assert_int_not_equal(access(tu_path("lib/pins/pb"), F_OK), 0);
	put_area(tu_path("b.img"), zero);
	assert_int_equal(open_dev("pa", NULL, &e), 0);
	free(zero);
}

/*
 * Rollback of a running ephemeral device within this boot: opened (H1),
 * closed, opened again (H2, a new DEK), H1 written back, key lost (lease
 * expiry).  Before: the restore pushed H1's DEK (on a kernel without key
 * binding: served under the old key; with it: EKEYREJECTED).  Oracle: no
 * KEY_SET, the message names the device and both sequences, an audit line;
 * H2 put back restores (positive control).
 */
static void volume_adversarial_rollback_restore_refused(void **state)
{
	uint8_t *h1 = malloc(CMK_HDR_AREA), *h2 = malloc(CMK_HDR_AREA);
	struct fake_dev *f;
	struct cmk_err e;

	(void)state;
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	get_area(tu_path("e.img"), h1);
	assert_int_equal(cmk_volume_close(&vf.v, dev("eph"), &e), 0);
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	get_area(tu_path("e.img"), h2);
	f = fk_by_key("eph");
	assert_int_equal(f->key_sets, 1);

	put_area(tu_path("e.img"), h1);
	fk_lose_key("eph");
	assert_int_equal(cmk_volume_restore(&vf.v, dev("eph"), &e), -ESTALE);
	assert_contains(e.msg, "device eph (");
	assert_contains(e.msg, "it has sequence 1 ");
	assert_contains(e.msg, "but sequence 2 ");
	assert_int_equal(f->key_sets, 1);
	assert_int_equal(f->rejected, 0);	/* refused before the kernel */
	assert_int_equal(f->state, DM_CMK_STATE_WIPED);
	assert_audit("an older header written back?");

	put_area(tu_path("e.img"), h2);
	assert_int_equal(cmk_volume_restore(&vf.v, dev("eph"), &e), 0);
	assert_int_equal(f->key_sets, 2);
	assert_int_equal(f->state, DM_CMK_STATE_ACTIVE);
	free(h1);
	free(h2);
}

/*
 * A header of another boot (what a saved copy from the last boot is): the
 * same device and DEK re-sealed by a boot with another id.  Refused by the
 * boot id alone, also by cmkctl (no memory, the record in state_dir).
 */
static void volume_adversarial_previous_boot_header_refused(void **state)
{
	struct cmk_secret *dek = NULL;
	struct cmk_header h;
	struct cmk_err e;
	int fd;

	(void)state;
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	fd = open(tu_path("e.img"), O_RDWR);
	assert_int_equal(cmk_header_read(fd, &h, NULL, &e), 0);
	assert_int_equal(cmk_header_unwrap_dek(&h, vf.keks.cur, &dek, &e), 0);
	h.boot_id[15] ^= 0x55;		/* the last boot's id */
	assert_int_equal(cmk_header_write(fd, &h, vf.keks.cur, dek, &e), 0);
	cmk_secret_free(&dek);
	close(fd);
	fk_lose_key("eph");
	vf.v.opened = NULL;			/* as cmkctl sees it */
	assert_int_equal(cmk_volume_restore(&vf.v, dev("eph"), &e), -ESTALE);
	assert_contains(e.msg, "header refused: ephemeral header of another boot");
	assert_int_equal(fk_by_key("eph")->key_sets, 1);
}

/* "When the kernel slot is already active, renew; never KEY_SET again." */
static void volume_adversarial_active_key_renewed_never_set_again(void **state)
{
	enum cmk_volume_how how;
	struct fake_dev *f;
	struct cmk_err e;

	(void)state;
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	f = fk_by_key("eph");
	assert_int_equal(cmk_volume_restore(&vf.v, dev("eph"), &e), 0);
	assert_int_equal(open_dev("eph", &how, &e), 0);	/* cmkctl open, agent restart */
	assert_int_equal(how, CMK_VOLUME_RENEWED);
	assert_int_equal(f->key_sets, 1);
	assert_int_equal(f->renews, 2);
}

/*
 * An agent restart in the same boot (no memory, the record in state_dir)
 * finds the running device's header swapped while it was down.  The header
 * is refused and says so, the live key is still renewed (how RENEWED, so
 * the agent keeps renewing it); once the key is lost, nothing restores it.
 */
static void volume_adversarial_restart_swapped_header_keeps_live_key(void **state)
{
	struct cmk_header ha, hb;
	enum cmk_volume_how how;
	struct fake_dev *f;
	struct cmk_err e;

	(void)state;
	format("pa", 4096, &ha);
	format("pb", 4096, &hb);
	assert_int_equal(open_dev("pa", NULL, &e), 0);
	f = fk_by_key("pa");
	copy_area(tu_path("b.img"), tu_path("a.img"), NULL);
	memset(vf.mem, 0, sizeof(vf.mem));	/* a new agent process */
	assert_int_equal(open_dev("pa", &how, &e), -EXDEV);
	assert_int_equal(how, CMK_VOLUME_RENEWED);
	assert_contains(e.msg, "device pa");
	assert_int_equal(f->renews, 1);
	assert_int_equal(f->state, DM_CMK_STATE_ACTIVE);
	assert_audit("header refused, its live key kept and renewed");
	fk_lose_key("pa");
	assert_int_equal(cmk_volume_restore(&vf.v, dev("pa"), &e), -EXDEV);
	assert_int_equal(f->key_sets, 1);
}

static void marker_now(void)
{
	struct cmk_err e;

	assert_int_equal(cmk_volume_mark_revoked(&vf.cfg, dev("eph"), &e), 0);
}

/*
 * The operator-revoke marker is re-checked right before KEY_SET: cmkctl
 * revoke lands while a restore is under way (here: during its GET).
 * Before: the restore installed the key the operator had just revoked.
 */
static void volume_adversarial_revoke_marker_rechecked_before_key_set(void **state)
{
	struct fake_dev *f;
	struct cmk_err e;

	(void)state;
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	f = fk_by_key("eph");
	fk_lose_key("eph");
	fk_on_get = marker_now;
	assert_int_equal(cmk_volume_restore(&vf.v, dev("eph"), &e), -EKEYREVOKED);
	fk_on_get = NULL;
	assert_contains(e.msg, "revoked by the operator");
	assert_int_equal(f->key_sets, 1);
	assert_int_equal(f->state, DM_CMK_STATE_WIPED);
}

/*
 * The marker lands between that check and the KEY_SET itself (cmkctl
 * revoke's own wipe came first): the check after KEY_SET wipes again.
 */
static void volume_adversarial_revoke_marker_during_key_set_wipes_again(void **state)
{
	struct fake_dev *f;
	struct cmk_err e;

	(void)state;
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	f = fk_by_key("eph");
	fk_lose_key("eph");
	fk_on_key_set = marker_now;
	assert_int_equal(cmk_volume_restore(&vf.v, dev("eph"), &e), -EKEYREVOKED);
	fk_on_key_set = NULL;
	assert_int_equal(f->state, DM_CMK_STATE_WIPED);
	assert_int_equal(f->reason, DM_CMK_REASON_REVOKED);
}

/*
 * A KEK rotation (cmkctl kek rotate, another process) re-wraps a running
 * device's header: sequence + 1, same DEK.  The record follows it, so the
 * agent's restore accepts it although its memory has the older sequence.
 */
static void volume_adversarial_rotation_moves_the_record_on(void **state)
{
	struct cmk_header before, after;
	struct cmk_err e;
	int fd;

	(void)state;
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	fd = open(tu_path("e.img"), O_RDWR);
	assert_int_equal(cmk_header_rewrap(fd, vf.keks.cur, vf.keks.cur, vf.keks.env.kek_id,
					   vf.keks.env.cur.kek_version, &before, &after, &e), 0);
	close(fd);
	assert_int_equal(cmk_opened_rewrapped(&vf.cfg, dev("eph"), &after, &e), 0);
	fk_lose_key("eph");
	assert_int_equal(cmk_volume_restore(&vf.v, dev("eph"), &e), 0);
	assert_int_equal(fk_by_key("eph")->generation, after.sequence);
	assert_int_equal(vf.mem[2].sequence, after.sequence);
}

/*
 * A pin changes only by the operator's command: a device re-formatted on
 * purpose is refused until cmkctl pin; pin refuses ephemeral devices and a
 * uuid another device presents.
 */
static void volume_pin_changed_only_by_operator(void **state)
{
	struct cmk_header ha, ha2, hb, hp;
	uint8_t got[CMK_UUID_LEN];
	struct cmk_err e;

	(void)state;
	format("pa", 4096, &ha);
	format("pb", 4096, &hb);
	assert_int_equal(open_dev("pa", NULL, &e), 0);
	assert_int_equal(cmk_volume_close(&vf.v, dev("pa"), &e), 0);
	format("pa", 4096, &ha2);		/* cmkctl format --force */
	assert_int_equal(open_dev("pa", NULL, &e), -EXDEV);
	assert_contains(e.msg, "cmkctl pin pa");
	assert_int_equal(cmk_volume_pin(&vf.v, dev("pa"), NULL, got, &hp, &e), 0);
	assert_memory_equal(got, ha2.device_uuid, CMK_UUID_LEN);
	assert_audit("pinned to device_uuid");
	assert_int_equal(open_dev("pa", NULL, &e), 0);
	assert_int_equal(cmk_volume_pin(&vf.v, dev("eph"), NULL, got, &hp, &e), -EINVAL);
	assert_int_equal(cmk_volume_pin(&vf.v, dev("pa"), hb.device_uuid, got, &hp, &e), -EXDEV);
	assert_contains(e.msg, "device pb");
}

/*
 * The kernel's own line: a slot bound to another key refuses KEY_SET with
 * EKEYREJECTED.  That is a refused header (-EXDEV, exit 6 in cmkctl), not
 * a KEK rotation: the agent must not reload the KEK and retry over it.
 */
static void volume_adversarial_kernel_key_rejected_is_a_refused_header(void **state)
{
	struct fake_dev *f;
	struct cmk_err e;

	(void)state;
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	f = fk_by_key("eph");
	f->key[0] ^= 1;			/* bound to some other key */
	fk_lose_key("eph");
	assert_int_equal(cmk_volume_restore(&vf.v, dev("eph"), &e), -EXDEV);
	assert_contains(e.msg, "device eph: the kernel refused the key");
	assert_int_equal(f->rejected, 1);
	assert_audit("the kernel refused the key");
}

/* Issue section 4: formatted with 512-byte sectors, configured 4096. */
static void volume_adversarial_sector_size_mismatch_refused(void **state)
{
	struct cmk_header h;
	struct cmk_err e;

	(void)state;
	format("pa", 512, &h);
	assert_int_equal(open_dev("pa", NULL, &e), -EMEDIUMTYPE);
	assert_contains(e.msg, "sector_size = 512");
	assert_null(fk_by_key("pa"));
}

/* ---- upgrades, forged copies, locks (review of issue 13) ---------------------------- */

/* The DEK of @name's header, read with the KEK (the fake kernel's oracle). */
static void header_dek(const char *name, struct cmk_header *h, struct cmk_secret **dek)
{
	struct cmk_err e;
	int fd = open(dev(name)->backing, O_RDONLY);

	assert_true(fd >= 0);
	if (cmk_header_read(fd, h, NULL, &e) ||
	    cmk_header_unwrap_dek(h, vf.keks.cur, dek, &e))
		fail_msg("%s: %s", name, e.msg);
	close(fd);
}

/*
 * Rewrite @name's header as an agent from before headers were bound to
 * the boot wrote it: same DEK, a random boot id of its own; and forget
 * every record of what was opened (that agent kept none).
 */
static void make_legacy(const char *name)
{
	struct cmk_secret *dek = NULL;
	struct cmk_header h;
	struct cmk_err e;
	int fd;

	header_dek(name, &h, &dek);
	assert_int_equal(cmk_header_new_boot_id(&h, &e), 0);
	fd = open(dev(name)->backing, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(cmk_header_write(fd, &h, vf.keks.cur, dek, &e), 0);
	close(fd);
	cmk_secret_free(&dek);
	memset(vf.mem, 0, sizeof(vf.mem));
	unlink(tu_path("run/opened/eph"));
	unlink(tu_path("run/opened/pa"));
	unlink(tu_path("run/opened/pb"));
}

/*
 * Review finding 1 (HIGH): an agent upgraded in place (no reboot) meets a
 * running ephemeral device whose header the old agent wrote with a boot
 * id of its own, and no record.  Before: its live key was renewed, but
 * after the first key loss (suspend, lease expiry) every restore refused
 * the header for good (-ESTALE).  Now: with a kernel that binds the device
 * to its key, the header is authenticated, re-sealed for this boot (same
 * DEK, sequence + 1) and recorded; the restore after a key loss pushes
 * the same key.  Oracle: the fake kernel's bound key, the header read back,
 * the record, the audit line.
 */
static void volume_adversarial_upgrade_legacy_ephemeral_migrated(void **state)
{
	struct cmk_secret *dek = NULL;
	struct cmk_header legacy, now;
	enum cmk_volume_how how;
	struct cmk_opened rec;
	struct fake_dev *f;
	struct cmk_err e;

	(void)state;
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	f = fk_by_key("eph");
	make_legacy("eph");
	header_dek("eph", &legacy, &dek);
	assert_memory_not_equal(legacy.boot_id, vf.boot, CMK_UUID_LEN);

	/* the upgraded agent starts: the device runs, its key is live */
	assert_int_equal(open_dev("eph", &how, &e), 0);
	assert_int_equal(how, CMK_VOLUME_RENEWED);
	assert_int_equal(f->key_sets, 1);
	cmk_secret_free(&dek);
	header_dek("eph", &now, &dek);
	assert_memory_equal(now.boot_id, vf.boot, CMK_UUID_LEN);
	assert_int_equal(now.sequence, legacy.sequence + 1);
	assert_memory_equal(cmk_secret_cdata(dek), f->key, DM_CMK_KEY_LEN);
	assert_int_equal(cmk_opened_read(&vf.cfg, dev("eph"), vf.boot, &rec, &e), 0);
	assert_true(rec.valid);
	assert_int_equal(rec.sequence, now.sequence);
	assert_audit("re-sealed for this boot");

	/* the first key loss after the upgrade: restored, same key */
	fk_lose_key("eph");
	assert_int_equal(cmk_volume_restore(&vf.v, dev("eph"), &e), 0);
	assert_int_equal(f->key_sets, 2);
	assert_int_equal(f->rejected, 0);
	assert_int_equal(f->state, DM_CMK_STATE_ACTIVE);
	cmk_secret_free(&dek);
}

/*
 * The same on a dm-cmk module from before key binding (GET without
 * BOUND): a header with a boot id of its own cannot be told from a saved
 * one written back, and nothing would stop a wrong DEK later.  Refused,
 * with the way out (reboot, or close and open); the live key is renewed.
 */
static void volume_adversarial_upgrade_legacy_unbound_kernel_refused(void **state)
{
	struct cmk_header before, after;
	struct cmk_secret *d1 = NULL, *d2 = NULL;
	enum cmk_volume_how how;
	struct fake_dev *f;
	struct cmk_err e;

	(void)state;
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	f = fk_by_key("eph");
	make_legacy("eph");
	header_dek("eph", &before, &d1);
	fk_reports_bound = false;
	assert_int_equal(open_dev("eph", &how, &e), -ESTALE);
	assert_int_equal(how, CMK_VOLUME_RENEWED);
	assert_contains(e.msg, "does not bind devices to their first key");
	assert_contains(e.msg, "reboot");
	assert_int_equal(f->renews, 1);
	header_dek("eph", &after, &d2);
	assert_int_equal(after.sequence, before.sequence);	/* not rewritten */
	assert_int_not_equal(access(tu_path("run/opened/eph"), F_OK), 0);
	cmk_secret_free(&d1);
	cmk_secret_free(&d2);
}

/*
 * What the migration trusts the kernel for: a disk attacker who writes a
 * saved header of an earlier boot back while there is no record gets it
 * re-sealed (it is authentic), but its DEK is not the live one, so the
 * first restore is refused by the kernel's binding (EKEYREJECTED -> a
 * refused header), never installed.
 */
static void volume_adversarial_upgrade_rollback_caught_by_kernel_binding(void **state)
{
	uint8_t *old = malloc(CMK_HDR_AREA);
	struct cmk_secret *dek = NULL;
	struct cmk_header h;
	struct fake_dev *f;
	struct cmk_err e;
	int fd;

	(void)state;
	/* a header of "the last boot": another DEK, another boot id */
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	make_legacy("eph");
	get_area(tu_path("e.img"), old);
	assert_int_equal(cmk_volume_close(&vf.v, dev("eph"), &e), 0);
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	f = fk_by_key("eph");
	put_area(tu_path("e.img"), old);
	memset(vf.mem, 0, sizeof(vf.mem));
	unlink(tu_path("run/opened/eph"));
	assert_int_equal(open_dev("eph", NULL, &e), 0);	/* adopted, re-sealed */
	fk_lose_key("eph");
	assert_int_equal(cmk_volume_restore(&vf.v, dev("eph"), &e), -EXDEV);
	assert_contains(e.msg, "the kernel refused the key");
	assert_int_equal(f->rejected, 1);
	assert_int_equal(f->state, DM_CMK_STATE_WIPED);
	/* and the DEK it holds is still the one it was opened with */
	fd = open(tu_path("e.img"), O_RDONLY);
	assert_int_equal(cmk_header_read(fd, &h, NULL, &e), 0);
	assert_int_equal(cmk_header_unwrap_dek(&h, vf.keks.cur, &dek, &e), 0);
	close(fd);
	assert_memory_not_equal(cmk_secret_cdata(dek), f->key, DM_CMK_KEY_LEN);
	cmk_secret_free(&dek);
	free(old);
}

/* Flip the tag of both copies and fix their checksums: a forged header. */
static void forge_both_copies(const char *path, const uint8_t *uuid)
{
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	for (off_t off = 0; off <= CMK_HDR_COPY_B; off += CMK_HDR_COPY_B) {
		uint8_t b[CMK_HDR_SIZE];
		struct cmk_header h;
		struct cmk_err e;

		assert_int_equal(pread(fd, b, sizeof(b), off), CMK_HDR_SIZE);
		assert_int_equal(cmk_header_decode(b, "X", &h, &e), 0);
		h.tag[0] ^= 1;
		if (uuid)
			memcpy(h.device_uuid, uuid, CMK_UUID_LEN);
		cmk_header_encode(&h, b);
		assert_int_equal(pwrite(fd, b, sizeof(b), off), CMK_HDR_SIZE);
	}
	close(fd);
}

/*
 * Review finding 8: with no record (a lost state_dir), the header of a
 * running device was adopted as the record after the checks that need no
 * KEK: a forged one (any device_uuid, a checksum) became the record.  Now
 * it must authenticate first.  Oracle: refused, no record written.
 */
static void volume_adversarial_no_record_forged_header_not_adopted(void **state)
{
	static const uint8_t evil[CMK_UUID_LEN] = { 0xe7, 0x11 };
	enum cmk_volume_how how;
	struct cmk_err e;

	(void)state;
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	memset(vf.mem, 0, sizeof(vf.mem));
	unlink(tu_path("run/opened/eph"));
	forge_both_copies(tu_path("e.img"), evil);
	assert_int_equal(open_dev("eph", &how, &e), -EKEYREJECTED);
	assert_int_equal(how, CMK_VOLUME_RENEWED);
	assert_contains(e.msg, "does not decrypt");
	assert_int_not_equal(access(tu_path("run/opened/eph"), F_OK), 0);
	assert_false(vf.mem[2].valid);
}

/*
 * A checksum-only header carrying device pa's device_uuid (printed in
 * cleartext in pa's header, pins and audit lines) on another configured
 * disk made pa "a duplicate", refused at every open.  With the KEK only an
 * authentic copy counts.  Oracle: pa opens despite the forged copy on
 * e.img; the authentic copy on e.img is still refused (positive control).
 */
static void volume_adversarial_forged_uuid_elsewhere_does_not_deny(void **state)
{
	struct cmk_header ha;
	struct cmk_err e;

	(void)state;
	format("pa", 4096, &ha);
	copy_area(tu_path("a.img"), tu_path("e.img"), NULL);
	assert_int_equal(open_dev("pa", NULL, &e), -EXDEV);
	forge_both_copies(tu_path("e.img"), NULL);
	if (open_dev("pa", NULL, &e))
		fail_msg("a forged copy elsewhere denied the device: %s", e.msg);
}

/*
 * Review finding 7: a checksum-only copy claiming a huge sequence decided
 * which copy was read and what the next sequence was.  Now the authentic
 * copy decides: the forged copy is passed over on open, and a re-key
 * counts from the authentic header.  Before: the re-key wrote sequence
 * forged + 1 (2^63: a negative number in the record) or failed with
 * EOVERFLOW.  Oracle: the sequences read back, the record.
 */
static void volume_adversarial_forged_high_sequence_copy_ignored(void **state)
{
	struct cmk_header ha, h;
	struct cmk_opened rec;
	struct cmk_err e;
	uint8_t b[CMK_HDR_SIZE];
	int fd;

	(void)state;
	/* persistent: the forged copy A claims the highest sequence there is */
	format("pa", 4096, &ha);
	fd = open(tu_path("a.img"), O_RDWR);
	assert_int_equal(pread(fd, b, sizeof(b), CMK_HDR_COPY_A), CMK_HDR_SIZE);
	assert_int_equal(cmk_header_decode(b, "A", &h, &e), 0);
	h.sequence = CMK_HDR_SEQ_MAX;
	h.tag[0] ^= 1;
	cmk_header_encode(&h, b);
	assert_int_equal(pwrite(fd, b, sizeof(b), CMK_HDR_COPY_A), CMK_HDR_SIZE);
	close(fd);
	assert_int_equal(open_dev("pa", NULL, &e), 0);
	assert_int_equal(fk_by_key("pa")->generation, ha.sequence);

	/* ephemeral: a re-key after a forged copy counts from the authentic one */
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	assert_int_equal(cmk_volume_close(&vf.v, dev("eph"), &e), 0);
	fd = open(tu_path("e.img"), O_RDWR);
	assert_int_equal(pread(fd, b, sizeof(b), CMK_HDR_COPY_B), CMK_HDR_SIZE);
	assert_int_equal(cmk_header_decode(b, "B", &h, &e), 0);
	h.sequence = CMK_HDR_SEQ_MAX;
	h.tag[0] ^= 1;
	cmk_header_encode(&h, b);
	assert_int_equal(pwrite(fd, b, sizeof(b), CMK_HDR_COPY_B), CMK_HDR_SIZE);
	close(fd);
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	fd = open(tu_path("e.img"), O_RDONLY);
	assert_int_equal(cmk_header_read(fd, &h, NULL, &e), 0);
	close(fd);
	assert_int_equal(h.sequence, 2);
	assert_int_equal(cmk_opened_read(&vf.cfg, dev("eph"), vf.boot, &rec, &e), 0);
	assert_true(rec.valid);
	assert_int_equal(rec.sequence, 2);
}

/*
 * Review finding 3: a KEK rotation re-wrapped a running device's header
 * (sequence + 1) and was killed before the record followed.  Before: the
 * record stayed one behind for good, "kek rotate" again said "already
 * under" and repaired nothing, and every restore was refused as "an older
 * header" (it is newer).  Now: the message says newer and what to run;
 * running the rotation again repairs the record; and a rotation announces
 * the new sequence in the record before it writes the header, so the same
 * interruption in it leaves a header the record accepts.
 */
static void volume_adversarial_interrupted_kek_rotate_recovers(void **state)
{
	struct cmk_secret *dek = NULL;
	struct cmk_header before, after, h;
	enum cmk_rewrap_how how;
	struct fake_dev *f;
	struct cmk_err e;
	int fd;

	(void)state;
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	f = fk_by_key("eph");
	/* killed between the header write and the record (an older cmkctl) */
	fd = open(tu_path("e.img"), O_RDWR);
	assert_int_equal(cmk_header_rewrap(fd, vf.keks.cur, vf.keks.cur, vf.keks.env.kek_id,
					   vf.keks.env.cur.kek_version, &before, &after, &e), 0);
	close(fd);
	fk_lose_key("eph");
	memset(vf.mem, 0, sizeof(vf.mem));		/* a restarted agent */
	assert_int_equal(cmk_volume_restore(&vf.v, dev("eph"), &e), -ESTALE);
	assert_contains(e.msg, "a newer header than the one opened");
	assert_contains(e.msg, "cmkctl kek rotate again");
	assert_int_equal(f->key_sets, 1);
	/* the rotation run again: already re-wrapped, the record catches up */
	assert_int_equal(cmk_volume_rewrap(&vf.v, dev("eph"), &how, &h, &e), 0);
	assert_int_equal(how, CMK_REWRAP_ALREADY);
	assert_int_equal(cmk_volume_restore(&vf.v, dev("eph"), &e), 0);
	assert_int_equal(f->key_sets, 2);
	assert_int_equal(f->generation, after.sequence);

	/* killed the same way inside today's two-step re-wrap */
	fd = open(tu_path("e.img"), O_RDWR);
	assert_int_equal(cmk_header_read(fd, &before, NULL, &e), 0);
	assert_int_equal(cmk_header_unwrap_dek(&before, vf.keks.cur, &dek, &e), 0);
	assert_int_equal(cmk_opened_rewrap_begin(&vf.cfg, dev("eph"), &before, &e), 0);
	after = before;
	assert_int_equal(cmk_header_write(fd, &after, vf.keks.cur, dek, &e), 0);
	close(fd);
	cmk_secret_free(&dek);
	fk_lose_key("eph");
	assert_int_equal(cmk_volume_restore(&vf.v, dev("eph"), &e), 0);
	assert_int_equal(f->generation, after.sequence);
	assert_int_equal(vf.mem[2].sequence, after.sequence);
	assert_int_equal(vf.mem[2].pending, 0);
}

/*
 * Review finding 2: a persistent device formatted with iv_large_sectors in
 * its configuration by an agent that did not record the option has flags
 * 0.  Before: refused with "make options match the header", which,
 * followed, maps the data with the wrong IVs.  Now: the message does not
 * advise dropping the option but names cmkctl header set-flags; after it,
 * the device opens with its DEK unchanged.
 */
static void volume_adversarial_upgrade_legacy_iv_large_sectors_header(void **state)
{
	struct cmk_secret *dek = NULL;
	struct cmk_header hb, before, after;
	struct cmk_err e;

	(void)state;
	format("pb", 4096, &hb);			/* flags 0, as the old agent */
	vf_config("options = iv_large_sectors\n");
	assert_int_equal(open_dev("pb", NULL, &e), -EMEDIUMTYPE);
	assert_contains(e.msg, "cmkctl header set-flags --iv-large-sectors pb");
	assert_true(strstr(e.msg, "make options match") == NULL);
	assert_null(fk_by_key("pb"));
	header_dek("pb", &before, &dek);
	assert_int_equal(cmk_volume_set_flags(&vf.v, dev("pb"), CMK_HDR_F_IV_LARGE_SECTORS,
					      &before, &after, &e), 0);
	assert_int_equal(after.flags, CMK_HDR_F_IV_LARGE_SECTORS);
	assert_int_equal(after.sequence, before.sequence + 1);
	assert_memory_equal(after.device_uuid, hb.device_uuid, CMK_UUID_LEN);
	assert_int_equal(open_dev("pb", NULL, &e), 0);
	assert_memory_equal(fk_by_key("pb")->key, cmk_secret_cdata(dek), DM_CMK_KEY_LEN);
	assert_audit("header flags 0x0 -> 0x1 by the operator");
	/* the other way round the advice is to add the option */
	vf_config(NULL);
	assert_int_equal(cmk_volume_close(&vf.v, dev("pb"), &e), 0);
	assert_int_equal(open_dev("pb", NULL, &e), -EMEDIUMTYPE);
	assert_contains(e.msg, "add iv_large_sectors to the options");
	cmk_secret_free(&dek);
}

/* Swap the backing link from a.img to b.img: "meanwhile", under udev. */
static void swap_link(void)
{
	assert_int_equal(unlink(tu_path("link.img")), 0);
	assert_int_equal(symlink(tu_path("b.img"), tu_path("link.img")), 0);
}

/*
 * Review finding 10: the header was checked through an fd of the backing
 * path, the table named the path again: a /dev/disk/by-* link that
 * changes in between maps the checked DEK onto another device.  Now the
 * table names the device the fd holds (major:minor; for these image files
 * their path).  Oracle: the device the fake kernel resolves from the
 * table at load time, after the link moved, is the one whose header was
 * checked.
 */
static void volume_adversarial_backing_link_swapped_before_table(void **state)
{
	char link[4096], want[4096];
	struct cmk_header ha, hb;
	struct cmk_err e;

	(void)state;
	format("pa", 4096, &ha);
	format("pb", 4096, &hb);
	assert_int_equal(symlink(tu_path("a.img"), tu_path("link.img")), 0);
	snprintf(link, sizeof(link), "%s", tu_path("link.img"));
	vf_pa_backing = link;		/* pa's backing is the link */
	vf_config(NULL);
	fk_on_create = swap_link;
	assert_int_equal(open_dev("pa", NULL, &e), 0);
	fk_on_create = NULL;
	assert_non_null(realpath(tu_path("a.img"), want));
	assert_string_equal(fk_table_dev, want);
}

/*
 * Review finding 11: cmkctl and the agent took no lock: two of them could
 * open (re-key) one ephemeral device at once.  Now every operation holds
 * the device's lock file.  Oracle: with the lock held by "another
 * process", open gives up (-EAGAIN) without touching the disk or the
 * kernel; released, it opens.
 */
static void volume_adversarial_concurrent_open_waits_for_lock(void **state)
{
	uint8_t *zero = calloc(1, CMK_HDR_AREA), *area = malloc(CMK_HDR_AREA);
	struct cmk_err e;
	int fd;

	(void)state;
	assert_int_equal(mkdir(tu_path("run"), 0700), 0);
	assert_int_equal(mkdir(tu_path("run/lock"), 0700), 0);
	fd = open(tu_path("run/lock/eph"), O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	vf.v.lock_wait_ms = 200;
	assert_int_equal(open_dev("eph", NULL, &e), -EAGAIN);
	assert_contains(e.msg, "another cmk process");
	assert_null(fk_by_key("eph"));
	get_area(tu_path("e.img"), area);
	assert_memory_equal(area, zero, CMK_HDR_AREA);	/* not re-keyed */
	close(fd);
	assert_int_equal(open_dev("eph", NULL, &e), 0);
	free(zero);
	free(area);
}

/*
 * Review finding 15: cmkctl pin took the device_uuid of whatever header
 * was on the disk.  Now the header must fit the configuration and
 * authenticate.  Oracle: a forged header (the attacker's uuid, a valid
 * checksum) is refused and the pin file unchanged; the real header pins.
 */
static void volume_adversarial_pin_forged_header_refused(void **state)
{
	static const uint8_t evil[CMK_UUID_LEN] = { 0xe7, 0x22 };
	uint8_t got[CMK_UUID_LEN], *saved = malloc(CMK_HDR_AREA);
	struct cmk_header ha, hp;
	char *pin0, *pin1;
	struct cmk_err e;

	(void)state;
	format("pa", 4096, &ha);
	assert_int_equal(open_dev("pa", NULL, &e), 0);		/* pinned on first use */
	assert_int_equal(cmk_volume_close(&vf.v, dev("pa"), &e), 0);
	pin0 = tu_read_file(tu_path("lib/pins/pa"), NULL);
	get_area(tu_path("a.img"), saved);
	forge_both_copies(tu_path("a.img"), evil);
	assert_int_equal(cmk_volume_pin(&vf.v, dev("pa"), NULL, got, &hp, &e), -EKEYREJECTED);
	assert_contains(e.msg, "not pinned");
	pin1 = tu_read_file(tu_path("lib/pins/pa"), NULL);
	assert_string_equal(pin0, pin1);
	put_area(tu_path("a.img"), saved);
	assert_int_equal(cmk_volume_pin(&vf.v, dev("pa"), NULL, got, &hp, &e), 0);
	assert_memory_equal(got, ha.device_uuid, CMK_UUID_LEN);
	assert_int_equal(hp.sequence, ha.sequence);
	assert_audit("(header sequence 1, written ");
	free(pin0);
	free(pin1);
	free(saved);
}

/*
 * Review finding 14: pin_dir on tmpfs loses every pin at reboot, and the
 * next boot trusts whatever header it finds on first use.  Oracle: the
 * first-use pin's audit line warns, naming pin_dir.
 */
static void volume_adversarial_pin_dir_on_tmpfs_warned(void **state)
{
	char dir[] = "/dev/shm/cmk-unit-pins.XXXXXX", path[64];
	struct cmk_header ha;
	struct statfs sf;
	struct cmk_err e;

	(void)state;
	if (statfs("/dev/shm", &sf) || sf.f_type != TMPFS_MAGIC || !mkdtemp(dir))
		skip();
	vf_pin_dir = dir;
	vf_config(NULL);
	format("pa", 4096, &ha);
	assert_int_equal(open_dev("pa", NULL, &e), 0);
	assert_audit("is on tmpfs: the pin is gone at the next boot");
	assert_audit(dir);
	snprintf(path, sizeof(path), "%s/pa", dir);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(volume_kek_store_load_unwraps_and_audits, setup, teardown),
		cmocka_unit_test_setup_teardown(volume_credential_azure_unpinned_vault_warned_once,
						setup, teardown),
		cmocka_unit_test_setup_teardown(volume_classify_kernel_fork_refusal_is_not_a_header_refusal,
						vsetup, vteardown),
		cmocka_unit_test_setup_teardown(volume_kek_store_disabled_cmk_is_definitive_and_holds_no_kek,
						setup, teardown),
		cmocka_unit_test_setup_teardown(volume_kek_store_check_without_envelope_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(volume_classify_bad_envelope_file_unseal_from_memory,
						setup, teardown),
		cmocka_unit_test_setup_teardown(volume_find_by_name_dm_name_or_key_name, setup, teardown),
		cmocka_unit_test_setup_teardown(volume_revoke_marker_set_and_cleared, setup, teardown),
		cmocka_unit_test_setup_teardown(volume_revoke_marker_is_durable, setup, teardown),
#define V(f) cmocka_unit_test_setup_teardown(f, vsetup, vteardown)
		V(volume_hold_table_goes_live_only_with_the_key),
		V(volume_hold_interrupted_create_is_finished_by_the_next_open),
		V(volume_adversarial_close_racing_restore_leaves_key_wiped),
		V(volume_adversarial_forged_uuid_elsewhere_does_not_deny),
		V(volume_adversarial_header_swap_refused),
		V(volume_adversarial_header_swap_refused_by_config_uuid),
		V(volume_adversarial_duplicate_uuid_both_refused),
		V(volume_adversarial_rollback_restore_refused),
		V(volume_adversarial_previous_boot_header_refused),
		V(volume_adversarial_active_key_renewed_never_set_again),
		V(volume_adversarial_restart_swapped_header_keeps_live_key),
		V(volume_adversarial_revoke_marker_rechecked_before_key_set),
		V(volume_adversarial_revoke_marker_during_key_set_wipes_again),
		V(volume_adversarial_rotation_moves_the_record_on),
		V(volume_pin_changed_only_by_operator),
		V(volume_adversarial_kernel_key_rejected_is_a_refused_header),
		V(volume_adversarial_sector_size_mismatch_refused),
		V(volume_adversarial_upgrade_legacy_ephemeral_migrated),
		V(volume_adversarial_upgrade_legacy_unbound_kernel_refused),
		V(volume_adversarial_upgrade_rollback_caught_by_kernel_binding),
		V(volume_adversarial_no_record_forged_header_not_adopted),
		V(volume_adversarial_forged_high_sequence_copy_ignored),
		V(volume_adversarial_interrupted_kek_rotate_recovers),
		V(volume_adversarial_upgrade_legacy_iv_large_sectors_header),
		V(volume_adversarial_backing_link_swapped_before_table),
		V(volume_adversarial_concurrent_open_waits_for_lock),
		V(volume_adversarial_pin_forged_header_refused),
		V(volume_adversarial_pin_dir_on_tmpfs_warned),
	};

	return cmocka_run_group_tests_name("volume", tests, NULL, NULL);
}
