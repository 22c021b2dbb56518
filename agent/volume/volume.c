// SPDX-License-Identifier: GPL-2.0
/*
 * volume.c - open, restore, close and wipe one configured device (volume.h).
 */
#include "volume/volume.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "device/dm.h"
#include "core/fileio.h"
#include "format/header.h"

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

static struct cmk_kek_pair keks_of(const struct cmk_kek_store *ks)
{
	struct cmk_kek_pair k = { &ks->env, ks->cur, ks->prev };

	return k;
}

/* ---- one cmk process at a time per device ------------------------------------------ */

/* How long an operation waits for another cmk process's (cmkctl's) turn. */
#define LOCK_WAIT_MS	3000

/*
 * Take @d's lock, <state_dir>/lock/<name> (flock), waiting at most
 * LOCK_WAIT_MS (v->lock_wait_ms if set): the agent and cmkctl each read,
 * check and write a device's header and record and push its key as one
 * step, or two of them could re-key one ephemeral header twice.  -EAGAIN
 * when another process keeps it.  Never taken for a wipe: a revocation
 * waits for nobody.
 */
static int lock_device(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		       int *lfd, struct cmk_err *e)
{
	char dir[4096], path[4200];
	long waited = 0, wait_ms = v->lock_wait_ms ? v->lock_wait_ms : LOCK_WAIT_MS;
	int fd, ret;

	*lfd = -1;
	if (snprintf(dir, sizeof(dir), "%s/lock", v->cfg->state_dir) >= (int)sizeof(dir) ||
	    snprintf(path, sizeof(path), "%s/%s", dir, d->name) >= (int)sizeof(path))
		return cmk_errf(e, -ENAMETOOLONG, "state_dir %s: path too long",
				v->cfg->state_dir);
	ret = cmk_mkdir_durable(dir, 0700, e);
	if (ret)
		return ret;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return cmk_errf(e, -errno, "cannot open lock file %s: %s", path,
				strerror(errno));
	while (flock(fd, LOCK_EX | LOCK_NB)) {
		struct timespec ts = { 0, 10 * 1000000L };

		if (errno != EWOULDBLOCK && errno != EINTR) {
			ret = cmk_errf(e, -errno, "cannot lock %s: %s", path,
				       strerror(errno));
			close(fd);
			return ret;
		}
		if (waited >= wait_ms) {
			close(fd);
			return cmk_errf(e, -EAGAIN,
					"device %s: another cmk process (cmkctl?) has held its lock %s for %ld ms; try again when it is done",
					d->name, path, waited);
		}
		nanosleep(&ts, NULL);
		waited += 10;
	}
	*lfd = fd;
	return 0;
}

static void unlock_device(int lfd)
{
	if (lfd >= 0)
		close(lfd);	/* drops the flock */
}

/* ---- what a device is bound to ------------------------------------------------- */

/* The agent's memory of what was opened of @d, or NULL (cmkctl). */
static struct cmk_opened *memory_of(struct cmk_volume_ctx *v,
				    const struct cmk_config_device *d)
{
	if (!v->opened || d < v->cfg->devices ||
	    d >= v->cfg->devices + v->cfg->n_devices)
		return NULL;
	return &v->opened[d - v->cfg->devices];
}

/* Remember @h as what was opened of @d: in state_dir and in memory. */
static int remember(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		    const uint8_t this_boot[CMK_UUID_LEN],
		    const struct cmk_header *h, struct cmk_err *e)
{
	struct cmk_opened o, *mem = memory_of(v, d);
	int ret;

	cmk_opened_of(h, &o);
	ret = cmk_opened_write(v->cfg, d, this_boot, &o, e);
	if (ret)
		return ret;
	if (mem)
		*mem = o;
	return 0;
}

static void forget_opened(struct cmk_volume_ctx *v, const struct cmk_config_device *d)
{
	struct cmk_opened *mem = memory_of(v, d);

	if (mem)
		memset(mem, 0, sizeof(*mem));
}

/*
 * The record a running device's header must match: the agent's memory; or
 * the one in state_dir, when there is no memory, or when another cmk
 * process (cmkctl kek rotate) moved it on: same device_uuid and boot_id, a
 * higher sequence, or the same one with a re-wrap announced.  A record only
 * ever moves forward.
 */
static int record_of(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		     const uint8_t this_boot[CMK_UUID_LEN], struct cmk_opened *rec,
		     struct cmk_err *e)
{
	struct cmk_opened *mem = memory_of(v, d), disk;
	int ret;

	ret = cmk_opened_read(v->cfg, d, this_boot, &disk, e);
	if (!mem || !mem->valid) {
		*rec = disk;
		return ret;
	}
	*rec = *mem;
	if (!ret && disk.valid &&
	    !memcmp(disk.device_uuid, mem->device_uuid, CMK_UUID_LEN) &&
	    !memcmp(disk.boot_id, mem->boot_id, CMK_UUID_LEN) &&
	    (disk.sequence > mem->sequence ||
	     (disk.sequence == mem->sequence && disk.pending > mem->pending)))
		*rec = disk;
	return 0;
}

/*
 * What @d's header must show (device.h).  @running: the mapped device
 * exists, so @rec gets the record the header must match.
 */
static int want_of(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		   bool running, struct cmk_device_want *w, struct cmk_opened *rec,
		   char *pin_from, size_t n, struct cmk_err *e)
{
	int ret;

	memset(w, 0, sizeof(*w));
	memset(rec, 0, sizeof(*rec));
	w->name = d->name;
	w->mode = d->mode;
	w->sector_size = d->sector_size;
	w->flags = cmk_device_header_flags(d);
	ret = cmk_boot_id(w->this_boot, e);
	if (ret)
		return ret;
	if (d->mode == CMK_MODE_PERSISTENT) {
		ret = cmk_pin_read(v->cfg, d, &w->has_pin, w->pin, pin_from, n, e);
		if (ret)
			return ret;
		w->pin_from = pin_from;
	}
	w->running = running;
	if (running) {
		ret = record_of(v, d, w->this_boot, rec, e);
		if (ret)
			return ret;
		w->opened = rec;
	}
	return 0;
}

/*
 * Another configured device that presents @uuid in its header, or (with
 * @claims) is pinned to it; NULL if none.  A device whose backing cannot
 * be read or holds no valid header presents nothing; with the KEK (@k)
 * only an authentic header presents anything (cmk_device_presents_uuid()).
 */
static const struct cmk_config_device *
uuid_elsewhere(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
	       const struct cmk_kek_pair *k, const uint8_t uuid[CMK_UUID_LEN],
	       bool claims)
{
	const struct cmk_config *cfg = v->cfg;
	uint8_t this_boot[CMK_UUID_LEN] = { 0 };

	(void)cmk_boot_id(this_boot, NULL);
	for (size_t i = 0; i < cfg->n_devices; i++) {
		const struct cmk_config_device *o = &cfg->devices[i];
		uint8_t pin[CMK_UUID_LEN];
		struct cmk_err e;
		bool have, hit;
		int fd;

		if (o == d)
			continue;
		if (claims && o->mode == CMK_MODE_PERSISTENT &&
		    !cmk_pin_read(cfg, o, &have, pin, NULL, 0, &e) && have &&
		    !memcmp(pin, uuid, CMK_UUID_LEN))
			return o;
		fd = open(o->backing, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		hit = cmk_device_presents_uuid(fd, k, this_boot, uuid);
		close(fd);
		if (hit)
			return o;
	}
	return NULL;
}

/* "Two devices presenting the same uuid are both refused." */
static int check_unique(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
			const struct cmk_kek_pair *k, const struct cmk_header *h,
			struct cmk_err *e)
{
	const struct cmk_config_device *o = uuid_elsewhere(v, d, k, h->device_uuid, false);
	char u[CMK_UUID_STR];

	if (!o)
		return 0;
	cmk_uuid_format(h->device_uuid, u);
	return cmk_errf(e, -EXDEV,
			"device %s (%s) presents the same device_uuid %s: a header copied from one disk to the other? Both are refused until one of them is restored or re-formatted",
			o->name, o->backing, u);
}

/* Trust on first use: pin a persistent device to the header it opened with. */
static int pin_first_use(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
			 const struct cmk_kek_pair *k, const struct cmk_header *h,
			 struct cmk_err *e)
{
	const struct cmk_config_device *o;
	char u[CMK_UUID_STR], msg[400];
	bool volatile_pins;
	int ret;

	cmk_uuid_format(h->device_uuid, u);
	o = uuid_elsewhere(v, d, k, h->device_uuid, true);
	if (o)
		return cmk_errf(e, -EXDEV,
				"device %s presents device_uuid %s too, or is pinned to it: a header copied from one disk to the other?",
				o->name, u);
	ret = cmk_pin_write(v->cfg, d, h->device_uuid, e);
	if (ret) {
		cmk_err_prefix(e, "cannot pin it on first use");
		return ret;
	}
	volatile_pins = cmk_pin_dir_volatile(v->cfg);
	snprintf(msg, sizeof(msg), "pinned to device_uuid %s on first use%s%s%s", u,
		 volatile_pins ? "; WARNING: pin_dir " : "",
		 volatile_pins ? v->cfg->pin_dir : "",
		 volatile_pins ? " is on tmpfs: the pin is gone at the next boot and the device is trusted on first use again; give pin_dir a persistent directory" : "");
	cmk_volume_audit(v, "pin", d, msg, NULL, true);
	if (volatile_pins)
		fprintf(stderr, "cmk: device %s: %s\n", d->name, msg);
	return 0;
}

/*
 * Name the device in @e; a header refused by the checks of device.h says
 * so (and whether the device's live key was kept).
 */
static void prefix(struct cmk_err *e, const struct cmk_config_device *d, int ret,
		   bool live)
{
	if (ret == -EXDEV || ret == -ESTALE || ret == -EMEDIUMTYPE)
		cmk_err_prefix(e, "device %s (%s): header refused%s", d->name, d->backing,
			       live ? ", its live key kept and renewed" : "");
	else
		cmk_err_prefix(e, "device %s (%s)%s", d->name, d->backing,
			       live ? ": key renewed, header not checked" : "");
}

/* ---- the kernel ------------------------------------------------------------------ */

/* An operator revoke marker appeared while we were busy: the key stays out. */
static int revoked_meanwhile(const struct cmk_config_device *d, struct cmk_err *e)
{
	return cmk_errf(e, -EKEYREVOKED,
			"device %s: revoked by the operator (cmkctl revoke) while its key was being restored; the key is not installed (cmkctl open %s restores it)",
			d->name, d->name);
}

/*
 * Push @dek for @d and audit it; the caller wipes @dek.  The operator's
 * revoke marker is checked right before KEY_SET, and again after it:
 * cmkctl revoke writes its marker and then wipes, so a marker that lands
 * between our check and our KEY_SET is seen afterwards, and we wipe too.
 */
static int push_key(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		    const struct cmk_secret *dek, const struct cmk_header *h,
		    const char *why, struct cmk_err *e)
{
	char msg[160], kmsg[CMK_ERR_MSG_MAX];
	struct cmk_err we;
	int ret;

	if (cmk_volume_revoked(v->cfg, d)) {
		ret = revoked_meanwhile(d, e);
		cmk_volume_audit(v, "key_set", d, NULL, e, true);
		return ret;
	}
	ret = cmk_genl_key_set(v->genl, d->key_name, dek, h->sequence,
			       v->cfg->lease_ms, e);
	if (ret == -EKEYREJECTED) {
		/*
		 * The kernel binds a device to the first key it was given: this
		 * header is not the one the device was opened with.  -EXDEV, so
		 * that nobody takes it for a KEK rotation and reloads the KEK.
		 */
		snprintf(kmsg, sizeof(kmsg), "%s", e->msg);
		ret = cmk_errf(e, -EXDEV,
			       "device %s: the kernel refused the key (%.200s): the device is bound to the key it was opened with, and this header holds another",
			       d->name, kmsg);
		cmk_volume_audit(v, "key_set", d, NULL, e, true);
		return ret;
	}
	if (ret == -ESTALE)
		/* The VM-fork epoch, not a header: see cmk_volume_open(). */
		ret = -EKEYEXPIRED;
	if (ret) {
		cmk_err_prefix(e, "device %s", d->name);
		cmk_volume_audit(v, "key_set", d, NULL, e, true);
		return ret;
	}
	if (cmk_volume_revoked(v->cfg, d)) {
		if (cmk_volume_wipe(v, d, DM_CMK_REASON_REVOKED, &we))
			ret = cmk_errf(e, -EKEYREVOKED,
				       "device %s: revoked by the operator while its key was being installed, and wiping it again failed: %s",
				       d->name, we.msg);
		else
			ret = revoked_meanwhile(d, e);
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

/* The header of running device @d matches the record @w carries (no unwrap). */
static int check_live(int fd, const struct cmk_device_want *w, struct cmk_header *h,
		      struct cmk_err *e)
{
	struct cmk_header cand[2];
	struct cmk_err later;
	int n, ret, ret0;

	ret = cmk_header_read_candidates(fd, cand, &n, NULL, e);
	if (ret)
		return ret;
	ret0 = cmk_device_check(&cand[0], w, e);
	*h = cand[0];
	if (!ret0 || n < 2 || cmk_device_check(&cand[1], w, &later))
		return ret0;
	*h = cand[1];
	return 0;
}

/*
 * The kernel still holds the key of running device @d: renew it (never a
 * second KEY_SET) and check the header against the record.  With no record
 * (a state_dir that was lost, an agent upgraded in place) the header that
 * passes the checks that need none and authenticates under the KEK is
 * adopted as the record; an ephemeral one an older agent wrote, with a boot
 * id of its own, is re-sealed for this boot first where the kernel binds
 * the device to its key (cmk_device_adopt_live()).  A refusal leaves the
 * live key alone: it was verified when it was installed; what is refused
 * is a later unwrap.
 */
static int renew_live(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		      const struct cmk_dev_info *info, struct cmk_err *e)
{
	struct cmk_kek_pair k = keks_of(v->keks);
	struct cmk_device_want w;
	struct cmk_opened rec;
	struct cmk_header h;
	char from[4200];
	bool migrated = false;
	int fd = -1, ret;

	ret = cmk_volume_renew(v, d, e);
	if (ret) {
		cmk_err_prefix(e, "device %s: lease renewal of its active key", d->name);
		return ret;
	}
	ret = want_of(v, d, true, &w, &rec, from, sizeof(from), e);
	if (ret)
		goto out;
	fd = open(d->backing, (rec.valid ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		ret = cmk_errf(e, -errno, "cannot open it to check the header: %s",
			       strerror(errno));
		goto out;
	}
	if (rec.valid) {
		ret = check_live(fd, &w, &h, e) ?: check_unique(v, d, &k, &h, e);
		if (!ret && memory_of(v, d))
			*memory_of(v, d) = rec;
		goto out;
	}
	if (!k.cur) {
		ret = cmk_errf(e, -ENOKEY,
			       "there is no record of what was opened, and without the KEK its header cannot be authenticated to be adopted as one: it is checked again once the KEK is unsealed");
		goto out;
	}
	ret = cmk_device_adopt_live(fd, &k, &w, info->bound, &h, &migrated, e) ?:
	      check_unique(v, d, &k, &h, e) ?: remember(v, d, w.this_boot, &h, e);
	if (ret)
		goto out;
	cmk_volume_audit(v, "restore", d, migrated ?
			 "key active, lease renewed; no record of what was opened: its header, written by an older agent with a boot id of its own, authenticated and was re-sealed for this boot (the kernel binds the device to its key) and adopted" :
			 "key active, lease renewed; no record of what was opened: the header that passed the checks that need none and authenticated under the KEK was adopted",
			 NULL, true);
out:
	if (fd >= 0)
		close(fd);
	if (ret) {
		prefix(e, d, ret, true);
		cmk_volume_audit(v, "restore", d, NULL, e, true);
	}
	return ret;
}

/* A running device: renew a live key, or push the checked header's DEK again. */
static int restore_running(struct cmk_volume_ctx *v,
			   const struct cmk_config_device *d,
			   enum cmk_volume_how *how, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *dek = NULL;
	struct cmk_kek_pair k = keks_of(v->keks);
	struct cmk_device_want w;
	struct cmk_dev_info info;
	struct cmk_opened rec;
	struct cmk_header h;
	char from[4200];
	int fd, ret;

	*how = CMK_VOLUME_RESTORED;
	ret = cmk_genl_get(v->genl, d->key_name, &info, e);
	if (ret) {
		cmk_err_prefix(e, "device %s", d->name);
		return ret;
	}
	if (info.state == DM_CMK_STATE_ACTIVE) {
		*how = CMK_VOLUME_RENEWED;
		return renew_live(v, d, &info, e);
	}
	if (!k.cur)
		return cmk_errf(e, -ENOKEY,
				"device %s: cannot restore, the KEK is not unsealed (is the CMK usable?)",
				d->name);
	fd = open(d->backing, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cmk_errf(e, -errno, "device %s: cannot open backing device %s: %s",
				d->name, d->backing, strerror(errno));
	ret = want_of(v, d, true, &w, &rec, from, sizeof(from), e);
	if (!ret)
		ret = cmk_device_unwrap(fd, &k, &w, &h, &dek, e);
	close(fd);
	if (!ret)
		ret = check_unique(v, d, &k, &h, e);
	if (!ret && info.sector_size && info.sector_size != h.sector_size)
		ret = cmk_errf(e, -EMEDIUMTYPE,
			       "the running table has sector size %u, the header %u",
			       info.sector_size, h.sector_size);
	if (ret) {
		prefix(e, d, ret, false);
		cmk_volume_audit(v, "restore", d, NULL, e, true);
		return ret;
	}
	ret = push_key(v, d, dek, &h, "restore", e);
	if (ret)
		return ret;
	/* The header of a re-wrap announced in the record is now the opened one. */
	if (h.sequence != rec.sequence || rec.pending)
		return remember(v, d, w.this_boot, &h, e);
	if (memory_of(v, d))
		*memory_of(v, d) = rec;
	return 0;
}

/*
 * The table cmk_dm_create() loaded goes live only once the key is in (an
 * open interrupted before that is finished by the next open or restore).
 */
static int live_table(const struct cmk_config_device *d, struct cmk_err *e)
{
	int ret = cmk_dm_resume(d->dm_name, e);

	if (ret)
		cmk_err_prefix(e, "device %s: key installed, but the table did not go live", d->name);
	return ret;
}

int cmk_volume_restore(struct cmk_volume_ctx *v,
		       const struct cmk_config_device *d, struct cmk_err *e)
{
	enum cmk_volume_how how;
	bool stub;
	int lfd, ret;

	ret = lock_device(v, d, &lfd, e);
	if (ret)
		return ret;
	ret = cmk_dm_remove_stub(d->dm_name, &stub, e);
	if (ret || stub) {
		unlock_device(lfd);
		if (ret) {
			cmk_err_prefix(e, "device %s", d->name);
			return ret;
		}
		/* An open interrupted before its table: open it again. */
		cmk_volume_audit(v, "restore", d,
				 "removed a device left with no table by an interrupted open; opening it again",
				 NULL, false);
		return cmk_volume_open(v, d, NULL, e);
	}
	ret = restore_running(v, d, &how, e) ?: live_table(d, e);
	unlock_device(lfd);
	return ret;
}

/* Open a persistent device that is not running: checks, pin, DEK. */
static int open_persistent(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
			   int fd, const struct cmk_kek_pair *k, struct cmk_device_want *w,
			   struct cmk_header *h, struct cmk_secret **dek,
			   struct cmk_err *e)
{
	int ret;

	ret = cmk_device_unwrap(fd, k, w, h, dek, e) ?: check_unique(v, d, k, h, e);
	if (!ret && !w->has_pin)
		ret = pin_first_use(v, d, k, h, e);
	if (ret)
		cmk_secret_free(dek);
	return ret;
}

/* Re-key an ephemeral device for this boot. */
static int open_ephemeral(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
			  int fd, const struct cmk_kek_pair *k, struct cmk_device_want *w,
			  struct cmk_header *h, struct cmk_secret **dek,
			  struct cmk_err *e)
{
	struct cmk_header old;
	struct cmk_err re;
	bool shared;

	/* An old device_uuid that another device presents is not kept. */
	shared = !cmk_header_read(fd, &old, NULL, &re) &&
		 uuid_elsewhere(v, d, k, old.device_uuid, false);
	return cmk_device_rekey_ephemeral(fd, k, w, d->format == CMK_FORMAT_ALWAYS,
					  shared, h, dek, e);
}

/*
 * The backing device as the table names it: major:minor of the device
 * whose header was just checked (@fd), so that a path that resolves to
 * another device by the time the table is loaded (a /dev/disk/by-* link
 * that changed) cannot map the checked DEK onto it.  A regular file (unit
 * tests) is named by the path @fd resolves to now.
 */
static int backing_of(int fd, const struct cmk_config_device *d, char *out,
		      size_t n, struct cmk_err *e)
{
	char link[64];
	struct stat st;
	ssize_t len;

	if (fstat(fd, &st))
		return cmk_errf(e, -errno, "device %s: fstat of %s failed: %s", d->name,
				d->backing, strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		snprintf(out, n, "%u:%u", major(st.st_rdev), minor(st.st_rdev));
		return 0;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	len = readlink(link, out, n - 1);
	if (len <= 0 || (size_t)len >= n - 1)
		return cmk_errf(e, -ENAMETOOLONG, "device %s: cannot name %s: %s",
				d->name, d->backing, len < 0 ? strerror(errno) : "path too long");
	out[len] = '\0';
	return 0;
}

int cmk_volume_open(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		    enum cmk_volume_how *howp, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *dek = NULL;
	struct cmk_kek_pair k = keks_of(v->keks);
	enum cmk_volume_how how_local, *how = howp ? howp : &how_local;
	struct cmk_device_want w;
	struct cmk_opened rec;
	struct cmk_header h;
	char table[512], from[4200], dev[4096];
	uint64_t size;
	bool exists;
	int fd = -1, lfd = -1, ret;

	*how = CMK_VOLUME_OPENED;
	if (!k.cur)
		return cmk_errf(e, -ENOKEY, "device %s: the KEK is not unsealed",
				d->name);
	ret = lock_device(v, d, &lfd, e);
	if (ret)
		return ret;
	ret = cmk_dm_remove_stub(d->dm_name, &exists, e);
	if (ret) {
		cmk_err_prefix(e, "device %s", d->name);
		goto out_unlock;
	}
	if (exists)
		cmk_volume_audit(v, "open", d,
				 "removed a device left with no table by an interrupted open",
				 NULL, false);
	ret = cmk_dm_exists(d->dm_name, &exists, e);
	if (ret)
		goto out_unlock;
	if (exists) {
		/* Running device: never re-key (that would shred its data). */
		ret = restore_running(v, d, how, e) ?: live_table(d, e);
		goto out_unlock;
	}
	/* Open until the key is pushed: the device checked is the one mapped. */
	fd = open(d->backing, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = cmk_errf(e, -errno, "device %s: cannot open backing device %s: %s",
			       d->name, d->backing, strerror(errno));
		goto out;
	}
	ret = cmk_dev_size(fd, &size, e) ?: backing_of(fd, d, dev, sizeof(dev), e);
	if (ret)
		goto out;
	ret = cmk_device_table_line(d, dev, size, table, sizeof(table));
	if (ret) {
		ret = cmk_errf(e, ret, "device %s: backing device %s (%llu bytes) is too small for a 1 MiB header and one sector",
			       d->name, d->backing, (unsigned long long)size);
		goto out;
	}
	ret = want_of(v, d, false, &w, &rec, from, sizeof(from), e);
	if (ret)
		goto out;
	if (d->mode == CMK_MODE_EPHEMERAL)
		ret = open_ephemeral(v, d, fd, &k, &w, &h, &dek, e);
	else
		ret = open_persistent(v, d, fd, &k, &w, &h, &dek, e);
	if (ret) {
		prefix(e, d, ret, false);
		goto out;
	}
	if (d->mode == CMK_MODE_EPHEMERAL)
		cmk_volume_audit(v, "header_write", d,
				 "ephemeral: fresh DEK for this boot, previous data shredded",
				 NULL, true);
	ret = remember(v, d, w.this_boot, &h, e);
	if (ret)
		goto out;
	ret = cmk_dm_create(d->dm_name, table, e);
	if (ret) {
		cmk_err_prefix(e, "device %s", d->name);
		goto out;
	}
	ret = push_key(v, d, dek, &h, "open", e) ?: live_table(d, e);
out:
	if (fd >= 0)
		close(fd);
	if (ret)
		cmk_volume_audit(v, "open", d, NULL, e, true);
out_unlock:
	unlock_device(lfd);
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
	int lfd = -1, ret;

	/* The wipe first, and without waiting for anyone. */
	ret = cmk_volume_wipe(v, d, DM_CMK_REASON_REQUESTED, e);
	if (ret && ret != -ENODEV)
		return ret;
	ret = lock_device(v, d, &lfd, e);
	if (ret)
		goto out;
	/*
	 * An agent restore that held the lock while we wiped may have put the
	 * key back since: wipe again, now that no one else can.
	 */
	ret = cmk_genl_key_wipe(v->genl, d->key_name, DM_CMK_REASON_REQUESTED, e);
	if (ret && ret != -ENODEV) {
		cmk_err_prefix(e, "device %s", d->name);
		goto out;
	}
	ret = cmk_dm_remove(d->dm_name, e);
	if (ret && ret != -ENXIO) {
		cmk_err_prefix(e, "device %s (key wiped)", d->name);
		goto out;
	}
	forget_opened(v, d);
	ret = cmk_opened_clear(v->cfg, d, e);
	if (ret) {
		cmk_err_prefix(e, "device %s (key wiped, device removed)", d->name);
		goto out;
	}
	cmk_volume_audit(v, "close", d, "device removed", NULL, false);
out:
	unlock_device(lfd);
	return ret;
}

int cmk_volume_renew(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		     struct cmk_err *e)
{
	return cmk_genl_lease_renew(v->genl, d->key_name, v->cfg->lease_ms, e);
}

int cmk_volume_pin(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		   const uint8_t *uuid, uint8_t out[CMK_UUID_LEN],
		   struct cmk_header *h, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *dek = NULL;
	struct cmk_kek_pair k = keks_of(v->keks);
	const struct cmk_config_device *o;
	struct cmk_device_want w;
	char u[CMK_UUID_STR], t[CMK_TIME_STR], msg[200];
	int fd, lfd = -1, ret;

	memset(h, 0, sizeof(*h));
	if (d->mode != CMK_MODE_PERSISTENT)
		return cmk_errf(e, -EINVAL,
				"device %s is ephemeral: its header is new every boot, only persistent devices are pinned",
				d->name);
	if (d->has_uuid)
		return cmk_errf(e, -EINVAL,
				"device %s is pinned by the uuid setting of its [device] section: change that instead",
				d->name);
	if (!uuid && !k.cur)
		return cmk_errf(e, -ENOKEY,
				"device %s: pinning it to its header needs the KEK, to authenticate the header first",
				d->name);
	ret = lock_device(v, d, &lfd, e);
	if (ret)
		return ret;
	if (!uuid) {
		/*
		 * Whatever is on the disk is not trusted: the header must fit
		 * the configuration and authenticate under the KEK (a forged
		 * copy is passed over), like any header a DEK is taken from.
		 * Only the pin itself is not checked: that is what changes.
		 */
		memset(&w, 0, sizeof(w));
		w.name = d->name;
		w.mode = d->mode;
		w.sector_size = d->sector_size;
		w.flags = cmk_device_header_flags(d);
		fd = open(d->backing, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			ret = cmk_errf(e, -errno, "device %s: cannot open backing device %s: %s",
				       d->name, d->backing, strerror(errno));
			goto out;
		}
		ret = cmk_device_unwrap(fd, &k, &w, h, &dek, e);
		close(fd);
		if (ret) {
			cmk_err_prefix(e, "device %s (%s): not pinned", d->name, d->backing);
			goto out;
		}
		uuid = h->device_uuid;
	}
	cmk_uuid_format(uuid, u);
	o = uuid_elsewhere(v, d, &k, uuid, true);
	if (o) {
		ret = cmk_errf(e, -EXDEV,
			       "device %s: not pinned: device %s (%s) presents or is pinned to device_uuid %s too",
			       d->name, o->name, o->backing, u);
		goto out;
	}
	ret = cmk_pin_write(v->cfg, d, uuid, e);
	if (ret)
		goto out;
	memcpy(out, uuid, CMK_UUID_LEN);
	if (h->sequence && !cmk_time_format((time_t)h->write_time, t))
		snprintf(msg, sizeof(msg),
			 "pinned to device_uuid %s by the operator (header sequence %llu, written %s)",
			 u, (unsigned long long)h->sequence, t);
	else
		snprintf(msg, sizeof(msg), "pinned to device_uuid %s by the operator", u);
	cmk_volume_audit(v, "pin", d, msg, NULL, true);
out:
	unlock_device(lfd);
	return ret;
}

/* ---- re-sealing a header: same DEK ----------------------------------------------------- */

/*
 * Write @before's DEK again under the envelope's current KEK with @flags,
 * sequence + 1, and move the record of what was opened along in two steps
 * (binding.h), so that an interruption anywhere leaves a record that
 * accepts the header on disk.
 */
static int reseal(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		  int fd, const struct cmk_header *before,
		  const struct cmk_secret *dek, uint32_t flags,
		  struct cmk_header *after, struct cmk_err *e)
{
	const struct cmk_kek_store *ks = v->keks;
	int ret;

	ret = cmk_opened_rewrap_begin(v->cfg, d, before, e);
	if (ret)
		return ret;
	*after = *before;
	memcpy(after->kek_id, ks->env.kek_id, CMK_UUID_LEN);
	after->kek_version = ks->env.cur.kek_version;
	after->flags = flags;
	ret = cmk_header_write(fd, after, ks->cur, dek, e);
	if (ret)
		return ret;
	return cmk_opened_rewrapped(v->cfg, d, after, e);
}

int cmk_volume_rewrap(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		      enum cmk_rewrap_how *how, struct cmk_header *h,
		      struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *dek = NULL;
	struct cmk_kek_pair k = keks_of(v->keks);
	struct cmk_header before;
	int fd = -1, lfd = -1, ret;

	*how = CMK_REWRAP_DONE;
	if (!k.cur)
		return cmk_errf(e, -ENOKEY, "device %s: the KEK is not unsealed", d->name);
	ret = lock_device(v, d, &lfd, e);
	if (ret)
		return ret;
	fd = open(d->backing, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = cmk_errf(e, -errno, "cannot open %s: %s", d->backing,
			       strerror(errno));
		goto out;
	}
	ret = cmk_device_read_authentic(fd, &k, &before, &dek, e);
	if (ret == -ENODATA) {
		*how = CMK_REWRAP_NO_HEADER;
		ret = 0;
		goto out;
	}
	if (ret)
		goto out;
	if (before.kek_version == k.env->cur.kek_version) {
		/* Done before; a record an interrupted run left behind catches up. */
		*how = CMK_REWRAP_ALREADY;
		*h = before;
		ret = cmk_opened_rewrapped(v->cfg, d, &before, e);
		goto out;
	}
	ret = reseal(v, d, fd, &before, dek, before.flags, h, e);
out:
	if (fd >= 0)
		close(fd);
	unlock_device(lfd);
	return ret;
}

int cmk_volume_set_flags(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
			 uint32_t flags, struct cmk_header *before,
			 struct cmk_header *h, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *dek = NULL;
	struct cmk_kek_pair k = keks_of(v->keks);
	struct cmk_device_want w;
	struct cmk_opened rec;
	char from[4200];
	int fd = -1, lfd = -1, ret;

	if (flags & ~CMK_HDR_F_KNOWN)
		return cmk_errf(e, -EINVAL, "header flags 0x%x are not defined", flags);
	if (!k.cur)
		return cmk_errf(e, -ENOKEY, "device %s: the KEK is not unsealed", d->name);
	ret = lock_device(v, d, &lfd, e);
	if (ret)
		return ret;
	ret = want_of(v, d, false, &w, &rec, from, sizeof(from), e);
	if (ret)
		goto out;
	fd = open(d->backing, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = cmk_errf(e, -errno, "cannot open %s: %s", d->backing,
			       strerror(errno));
		goto out;
	}
	ret = cmk_device_read_authentic(fd, &k, before, &dek, e);
	if (ret)
		goto out;
	/*
	 * It must be this device's header, as configured, but for the flags
	 * that change (and the boot: re-sealed with its own boot id, an
	 * ephemeral header of another boot stays unusable).
	 */
	w.flags = before->flags;
	memcpy(w.this_boot, before->boot_id, CMK_UUID_LEN);
	ret = cmk_device_check(before, &w, e);
	if (ret)
		goto out;
	*h = *before;
	if (before->flags == flags && before->kek_version == k.env->cur.kek_version)
		goto out;
	ret = reseal(v, d, fd, before, dek, flags, h, e);
	if (!ret) {
		char msg[120];

		snprintf(msg, sizeof(msg), "header flags 0x%x -> 0x%x by the operator (sequence %llu)",
			 before->flags, flags, (unsigned long long)h->sequence);
		cmk_volume_audit(v, "header_write", d, msg, NULL, true);
	}
out:
	if (fd >= 0)
		close(fd);
	if (ret)
		cmk_err_prefix(e, "device %s (%s)", d->name, d->backing);
	unlock_device(lfd);
	return ret;
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
	ret = cmk_fsync_dir(dir, e);
	if (!ret)
		ret = cmk_fsync_dir(cfg->state_dir, e);
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
	return cmk_fsync_dir(dir, e);
}
