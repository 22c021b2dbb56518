// SPDX-License-Identifier: GPL-2.0
/*
 * volume.c - open, restore, close and wipe one configured device (volume.h).
 */
#include "volume.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dm.h"
#include "header.h"

/* ---- KEK set ---------------------------------------------------------------- */

void cmk_kekset_init(struct cmk_kekset *ks)
{
	memset(ks, 0, sizeof(*ks));
	cmk_envelope_init(&ks->env);
}

void cmk_kekset_forget(struct cmk_kekset *ks)
{
	cmk_secret_free(&ks->cur);
	cmk_secret_free(&ks->prev);
}

void cmk_kekset_free(struct cmk_kekset *ks)
{
	cmk_kekset_forget(ks);
	cmk_provider_close(&ks->p);
	if (ks->loaded)
		cmk_envelope_free(&ks->env);
	ks->loaded = false;
}

static void audit_kms(struct cmk_audit *a, const struct cmk_kek_wrap *w,
		      const char *op, const struct cmk_kms_call *call,
		      const struct cmk_err *e)
{
	struct cmk_audit_event ev = {
		.event = "kms_call",
		.provider = w->provider,
		.key_ref = w->key_ref,
		.operation = op,
		.outcome = e ? "failure" : "success",
		.cls = e ? e->cls : CMK_EC_NONE,
		.reason = e ? e->reason : CMK_R_NONE,
		.latency_ms = call ? call->latency_ms : -1,
		.request_id = call && call->request_id[0] ? call->request_id : NULL,
		.message = e ? e->msg : NULL,
		/*
		 * Not fsync'd here: a definitive answer is followed at once by
		 * the KEY_WIPE, whose own (important) line syncs the file; an
		 * fsync before the wipe would only delay it.
		 */
		.important = false,
	};
	struct cmk_err ae;

	if (a && cmk_audit_log(a, &ev, &ae))
		fprintf(stderr, "cmk: audit: %s\n", ae.msg);
}

/* Unwrap the current (and previous) KEK of the envelope in @ks. */
static int unwrap_all(struct cmk_kekset *ks, struct cmk_audit *audit,
		      struct cmk_err *e)
{
	struct cmk_kms_call call;
	int ret;

	memset(&call, 0, sizeof(call));
	ret = cmk_envelope_unwrap(ks->p, &ks->env, false, &ks->cur, &call, e);
	audit_kms(audit, &ks->env.cur, "unwrap", &call, ret ? e : NULL);
	if (!ret && ks->env.has_prev) {
		memset(&call, 0, sizeof(call));
		ret = cmk_envelope_unwrap(ks->p, &ks->env, true, &ks->prev, &call, e);
		audit_kms(audit, &ks->env.prev, "unwrap", &call, ret ? e : NULL);
	}
	if (ret)
		cmk_kekset_forget(ks);
	return ret;
}

int cmk_kekset_load(struct cmk_kekset *ks, const struct cmk_config *cfg,
		    struct cmk_audit *audit, struct cmk_err *e)
{
	const struct cmk_config_provider *pc;
	int ret;

	cmk_kekset_free(ks);
	cmk_kekset_init(ks);
	ret = cmk_envelope_read(cfg->kek_envelope, &ks->env, e);
	if (ret)
		return ret;
	ks->loaded = true;
	pc = cmk_config_provider(cfg, ks->env.cur.provider);
	ret = cmk_provider_open(ks->env.cur.provider, pc ? pc->kv : NULL,
				pc ? pc->n : 0, &ks->p, e);
	if (ret)
		return ret;
	ret = unwrap_all(ks, audit, e);
	if (ret)
		cmk_err_prefix(e, "KEK envelope %s", cfg->kek_envelope);
	return ret;
}

int cmk_kekset_unseal(struct cmk_kekset *ks, struct cmk_audit *audit,
		      struct cmk_err *e)
{
	int ret;

	if (!ks->loaded || !ks->p)
		return cmk_errf(e, -ENOKEY, "KEK envelope not loaded");
	cmk_kekset_forget(ks);
	ret = unwrap_all(ks, audit, e);
	if (ret)
		cmk_err_prefix(e, "KEK envelope in memory");
	return ret;
}

int cmk_kekset_check(struct cmk_kekset *ks, struct cmk_audit *audit,
		     bool log_success, struct cmk_kms_call *callp,
		     struct cmk_err *e)
{
	struct cmk_kms_call call;
	int ret;

	memset(&call, 0, sizeof(call));
	if (!ks->loaded || !ks->p)
		ret = cmk_errf(e, -ENOKEY, "KEK envelope not loaded");
	else
		ret = cmk_envelope_check(ks->p, &ks->env, &call, e);
	if (callp)
		*callp = call;
	if (ks->loaded && (ret || log_success))
		audit_kms(audit, &ks->env.cur, "check", &call, ret ? e : NULL);
	return ret;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cmk_kekset_reload(struct cmk_kekset *ks, struct cmk_kekfile *f,
		      const struct cmk_config *cfg, struct cmk_audit *audit,
		      struct cmk_err *e)
{
	struct cmk_kekset fresh;
	struct stat st;
	int ret;

	cmk_kekset_init(&fresh);
	if (stat(cfg->kek_envelope, &st))
		memset(&st, 0, sizeof(st));
	ret = cmk_kekset_load(&fresh, cfg, audit, e);
	if (ret) {
		cmk_kekset_free(&fresh);
		return ret;
	}
	cmk_kekset_free(ks);
	*ks = fresh;		/* moves the envelope and the secrets */
	f->loaded = st;
	return 0;
}

int cmk_kekset_check_file(struct cmk_kekset *ks, struct cmk_kekfile *f,
			  const struct cmk_config *cfg, struct cmk_audit *audit,
			  bool *reloaded, struct cmk_err *bad,
			  struct cmk_kms_call *call, struct cmk_err *e)
{
	struct stat st;
	long t0;

	*reloaded = false;
	cmk_err_clear(bad);
	memset(call, 0, sizeof(*call));
	if (!stat(cfg->kek_envelope, &st) && !same_file(&st, &f->loaded) &&
	    !same_file(&st, &f->bad)) {
		t0 = mono_ms();
		if (!cmk_kekset_reload(ks, f, cfg, audit, bad)) {
			call->latency_ms = mono_ms() - t0;
			*reloaded = true;
			return 0;
		}
		/* Reported once; a KMS that could not be asked is asked again. */
		if (bad->cls != CMK_EC_TRANSIENT)
			f->bad = st;
	}
	return cmk_kekset_check(ks, NULL, false, call, e);
}

void cmk_kekset_audit_check(const struct cmk_kekset *ks, struct cmk_audit *audit,
			    const struct cmk_kms_call *call,
			    const struct cmk_err *e)
{
	if (ks->loaded)
		audit_kms(audit, &ks->env.cur, "check", call, e);
}

/* ---- helpers ------------------------------------------------------------------ */

const struct cmk_config_device *cmk_volume_find(const struct cmk_config *cfg,
						const char *name)
{
	for (size_t i = 0; i < cfg->n_devices; i++) {
		const struct cmk_config_device *d = &cfg->devices[i];

		if (!strcmp(d->name, name) || !strcmp(d->dm_name, name) ||
		    !strcmp(d->key_name, name))
			return d;
	}
	return NULL;
}

void cmk_volume_audit(struct cmk_volume_ctx *v, const char *event,
		      const struct cmk_config_device *d, const char *message,
		      const struct cmk_err *e, bool important)
{
	struct cmk_audit_event ev = {
		.event = event,
		.device = d ? d->name : NULL,
		.key_name = d ? d->key_name : NULL,
		.outcome = e ? "failure" : "success",
		.cls = e ? e->cls : CMK_EC_NONE,
		.reason = e ? e->reason : CMK_R_NONE,
		.latency_ms = -1,
		.message = e ? e->msg : message,
		.important = important,
	};
	struct cmk_err ae;

	if (v->audit && cmk_audit_log(v->audit, &ev, &ae))
		fprintf(stderr, "cmk: audit: %s\n", ae.msg);
}

static struct cmk_keks keks_of(const struct cmk_kekset *ks)
{
	struct cmk_keks k = { &ks->env, ks->cur, ks->prev };

	return k;
}

/* Push @dek for @d and audit it; the caller wipes @dek. */
static int push_key(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		    const struct cmk_secret *dek, const struct cmk_header *h,
		    const char *why, struct cmk_err *e)
{
	char msg[160];
	int ret;

	ret = cmk_genl_key_set(v->genl, d->key_name, dek, h->sequence,
			       v->cfg->lease_ms, e);
	if (ret) {
		cmk_err_prefix(e, "device %s", d->name);
		cmk_volume_audit(v, "key_set", d, NULL, e, true);
		return ret;
	}
	snprintf(msg, sizeof(msg), "%s: generation %llu, KEK version %u, lease %u ms",
		 why, (unsigned long long)h->sequence, h->kek_version,
		 v->cfg->lease_ms);
	cmk_volume_audit(v, "key_set", d, msg, NULL, true);
	return 0;
}

/* ---- operations ------------------------------------------------------------------ */

int cmk_volume_restore(struct cmk_volume_ctx *v,
		       const struct cmk_config_device *d, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *dek = NULL;
	struct cmk_keks k = keks_of(v->keks);
	struct cmk_header h;
	int fd, ret;

	if (!k.cur)
		return cmk_errf(e, -ENOKEY,
				"device %s: cannot restore, the KEK is not unsealed (is the CMK usable?)",
				d->name);
	fd = open(d->backing, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cmk_errf(e, -errno, "device %s: cannot open backing device %s: %s",
				d->name, d->backing, strerror(errno));
	ret = cmk_device_reopen(fd, &k, d->mode, &h, &dek, e);
	close(fd);
	if (ret) {
		cmk_err_prefix(e, "device %s (%s)", d->name, d->backing);
		cmk_volume_audit(v, "restore", d, NULL, e, true);
		return ret;
	}
	return push_key(v, d, dek, &h, "restore", e);
}

int cmk_volume_open(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		    bool *restored, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *dek = NULL;
	struct cmk_keks k = keks_of(v->keks);
	struct cmk_header h;
	char table[512];
	uint64_t size;
	bool exists;
	int fd = -1, ret;

	if (restored)
		*restored = false;
	if (!k.cur)
		return cmk_errf(e, -ENOKEY, "device %s: the KEK is not unsealed",
				d->name);
	ret = cmk_dm_exists(d->dm_name, &exists, e);
	if (ret)
		return ret;
	if (exists) {
		/* Running device: never re-key (that would shred its data). */
		if (restored)
			*restored = true;
		return cmk_volume_restore(v, d, e);
	}
	fd = open(d->backing, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return cmk_errf(e, -errno, "device %s: cannot open backing device %s: %s",
				d->name, d->backing, strerror(errno));
	ret = cmk_dev_size(fd, &size, e);
	if (ret)
		goto out;
	ret = cmk_device_table_line(d, size, table, sizeof(table));
	if (ret) {
		ret = cmk_errf(e, ret, "device %s: backing device %s (%llu bytes) is too small for a 1 MiB header and one sector",
			       d->name, d->backing, (unsigned long long)size);
		goto out;
	}
	if (d->mode == CMK_MODE_EPHEMERAL)
		ret = cmk_device_rekey_ephemeral(fd, &k, d->sector_size,
						 d->format == CMK_FORMAT_ALWAYS,
						 &h, &dek, e);
	else
		ret = cmk_device_open_persistent(fd, &k, &h, &dek, e);
	if (ret) {
		cmk_err_prefix(e, "device %s (%s)", d->name, d->backing);
		goto out;
	}
	if (d->mode == CMK_MODE_EPHEMERAL)
		cmk_volume_audit(v, "header_write", d,
				 "ephemeral: fresh DEK for this boot, previous data shredded",
				 NULL, true);
	close(fd);
	fd = -1;
	ret = cmk_dm_create(d->dm_name, table, e);
	if (ret) {
		cmk_err_prefix(e, "device %s", d->name);
		goto out;
	}
	ret = push_key(v, d, dek, &h, "open", e);
out:
	if (fd >= 0)
		close(fd);
	if (ret)
		cmk_volume_audit(v, "open", d, NULL, e, true);
	return ret;
}

int cmk_volume_wipe(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		    enum dm_cmk_reason reason, struct cmk_err *e)
{
	char msg[80];
	int ret;

	ret = cmk_genl_key_wipe(v->genl, d->key_name, reason, e);
	if (ret) {
		cmk_volume_audit(v, "key_wipe", d, NULL, e, true);
		return ret;
	}
	snprintf(msg, sizeof(msg), "reason %s", cmk_wipe_reason_str(reason));
	cmk_volume_audit(v, "key_wipe", d, msg, NULL, true);
	return 0;
}

int cmk_volume_close(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		     struct cmk_err *e)
{
	int ret;

	ret = cmk_volume_wipe(v, d, DM_CMK_REASON_REQUESTED, e);
	if (ret && ret != -ENODEV)
		return ret;
	ret = cmk_dm_remove(d->dm_name, e);
	if (ret && ret != -ENXIO) {
		cmk_err_prefix(e, "device %s (key wiped)", d->name);
		return ret;
	}
	cmk_volume_audit(v, "close", d, "device removed", NULL, false);
	return 0;
}

int cmk_volume_renew(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		     struct cmk_err *e)
{
	return cmk_genl_lease_renew(v->genl, d->key_name, v->cfg->lease_ms, e);
}

/* ---- operator revocation markers --------------------------------------------------- */

static int marker_path(const struct cmk_config *cfg,
		       const struct cmk_config_device *d, char *out, size_t n)
{
	int r = snprintf(out, n, "%s/revoked/%s", cfg->state_dir, d->name);

	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

bool cmk_volume_revoked(const struct cmk_config *cfg,
			const struct cmk_config_device *d)
{
	char path[4096];

	/* Fail closed: a path we cannot even build counts as revoked. */
	if (marker_path(cfg, d, path, sizeof(path)))
		return true;
	return access(path, F_OK) == 0 || errno != ENOENT;
}

/*
 * fsync_dir() - make a directory's entries durable.  A revoke marker that a
 * crash can take away would let the agent restore keys the operator revoked.
 */
static int fsync_dir(const char *dir, struct cmk_err *e)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return cmk_errf(e, -errno, "cannot open %s: %s", dir, strerror(errno));
	if (fsync(fd))
		ret = cmk_errf(e, -errno, "fsync of %s failed: %s", dir, strerror(errno));
	close(fd);
	return ret;
}

int cmk_volume_mark_revoked(const struct cmk_config *cfg,
			    const struct cmk_config_device *d, struct cmk_err *e)
{
	char path[4096], dir[4096];
	int fd, ret;

	snprintf(dir, sizeof(dir), "%s/revoked", cfg->state_dir);
	if (marker_path(cfg, d, path, sizeof(path)))
		return cmk_errf(e, -ENAMETOOLONG, "state_dir %s: path too long",
				cfg->state_dir);
	if (mkdir(cfg->state_dir, 0700) && errno != EEXIST)
		return cmk_errf(e, -errno, "cannot create %s: %s", cfg->state_dir,
				strerror(errno));
	if (mkdir(dir, 0700) && errno != EEXIST)
		return cmk_errf(e, -errno, "cannot create %s: %s", dir, strerror(errno));
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return cmk_errf(e, -errno, "cannot create revoke marker %s: %s", path,
				strerror(errno));
	if (fsync(fd)) {
		ret = cmk_errf(e, -errno, "revoke marker %s: fsync failed: %s", path,
			       strerror(errno));
		close(fd);
		return ret;
	}
	close(fd);
	/*
	 * The marker's entry lives in revoked/, revoked/'s in state_dir.  Both
	 * directories are synced every time (also when they already existed: an
	 * earlier run may have crashed between mkdir and fsync).
	 */
	ret = fsync_dir(dir, e);
	if (!ret)
		ret = fsync_dir(cfg->state_dir, e);
	return ret;
}

int cmk_volume_clear_revoked(const struct cmk_config *cfg,
			     const struct cmk_config_device *d, struct cmk_err *e)
{
	char path[4096], dir[4096];

	if (marker_path(cfg, d, path, sizeof(path)))
		return cmk_errf(e, -ENAMETOOLONG, "state_dir %s: path too long",
				cfg->state_dir);
	if (unlink(path)) {
		if (errno == ENOENT)
			return 0;
		return cmk_errf(e, -errno, "cannot remove revoke marker %s: %s", path,
				strerror(errno));
	}
	/* Durable like the marker itself: a restore must not come back revoked. */
	snprintf(dir, sizeof(dir), "%s/revoked", cfg->state_dir);
	return fsync_dir(dir, e);
}
