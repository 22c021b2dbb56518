/* SPDX-License-Identifier: GPL-2.0 */
/*
 * volume.h - what cmk-agent and cmkctl do to one configured device.
 *
 *  open     boot path: ephemeral devices get a fresh DEK and header for
 *           this boot (the previous boot's data is shredded), persistent
 *           ones unwrap the DEK from their header once it passes the
 *           checks of device.h (geometry, pin, no other device presenting
 *           its device_uuid; the first open pins it); what was opened is
 *           recorded (binding.h); the dm-cmk device is created (sealed),
 *           the DEK is pushed with KEY_SET (lease from the config,
 *           generation = header sequence) and wiped from memory.
 *           If the dm device already exists (agent restart, cmkctl open
 *           of a running device) open does a restore instead: a running
 *           ephemeral device is never re-keyed.
 *  restore  a running device: if the kernel still holds its key, renew the
 *           lease and check the header against the record (never a second
 *           KEY_SET); otherwise re-read the header WITHOUT rewriting it,
 *           require it to match what was opened in this boot, unwrap the
 *           DEK and push it again (after a revoke is undone, a lease
 *           expiry, a suspend, an agent restart).
 *  close    KEY_WIPE, then remove the dm device and its record.
 *  wipe     KEY_WIPE with a reason (revoke, KMS unreachable).
 *  pin      bind a persistent device to a device_uuid (cmkctl pin).
 *  rewrap   a KEK rotation for one device: its DEK re-wrapped under the
 *           envelope's current KEK (cmkctl kek rotate).
 *  flags    record table options in a header (cmkctl header set-flags).
 *
 * One cmk process at a time works on a device: open, restore, close, pin,
 * rewrap and flags hold <state_dir>/lock/<name> (flock) from the first read
 * to the last write and KEY_SET, waiting up to 3 s for another to finish
 * (then -EAGAIN).  A wipe never waits.
 *
 * Every key operation and every refused header writes one audit line.
 * Key bytes never leave struct cmk_secret; a DEK lives from the header
 * unwrap to the KEY_SET.
 *
 * Operator revocation (cmkctl revoke) leaves a marker file
 * <state_dir>/revoked/<device name>; while it exists nothing restores the
 * device, and it is checked again right before and after every KEY_SET.
 * cmkctl open clears it.
 */
#ifndef CMK_VOLUME_H
#define CMK_VOLUME_H

#include <stdbool.h>
#include <sys/stat.h>

#include <linux/dm-cmk.h>

#include "format/audit.h"
#include "device/binding.h"
#include "format/config.h"
#include "device/device.h"
#include "format/envelope.h"
#include "core/err.h"
#include "device/genl.h"
#include "kms/provider.h"
#include "volume/kek_store.h"

/*
 * What the operations below need.  @opened: the agent's memory of what was
 * opened, one per configured device (cfg->n_devices), or NULL (cmkctl:
 * the records in state_dir only).
 */
struct cmk_volume_ctx {
	const struct cmk_config *cfg;
	struct cmk_genl *genl;
	struct cmk_audit *audit;	/* may be NULL */
	struct cmk_kek_store *keks;	/* for open and restore */
	struct cmk_opened *opened;	/* may be NULL */
	long lock_wait_ms;		/* 0: the default (3 s) */
};

/* What cmk_volume_open() found and did. */
enum cmk_volume_how {
	CMK_VOLUME_OPENED,	/* mapped device created and keyed now */
	CMK_VOLUME_RESTORED,	/* it was running without a key: key pushed again */
	CMK_VOLUME_RENEWED,	/* it was running with its key: lease renewed only */
};

/* cmk_volume_find() - a configured device by name, dm_name or key_name. */
const struct cmk_config_device *cmk_volume_find(const struct cmk_config *cfg,
						const char *name);

/*
 * cmk_volume_open() - see above.  *@how (optional) says what was done; it
 * is set on failure too: CMK_VOLUME_RENEWED then means the device's live
 * key was renewed although its header was refused, so the caller keeps
 * renewing it (the kernel's key is the one verified when it was
 * installed; only a new unwrap is refused).  A header refused by the
 * checks of device.h: -EXDEV, -ESTALE or -EMEDIUMTYPE.  The kernel
 * refusing the key because the VM was forked since its KEK was unsealed
 * (KEY_SET's epoch): -EKEYEXPIRED, so that nobody takes one for the other.
 */
int cmk_volume_open(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		    enum cmk_volume_how *how, struct cmk_err *e);
/* cmk_volume_restore() - the restore of a running device (see above). */
int cmk_volume_restore(struct cmk_volume_ctx *v,
		       const struct cmk_config_device *d, struct cmk_err *e);
int cmk_volume_close(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		     struct cmk_err *e);
int cmk_volume_wipe(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		    enum dm_cmk_reason reason, struct cmk_err *e);
/* cmk_volume_renew() - LEASE_RENEW; -ENOKEY when the kernel has no key. */
int cmk_volume_renew(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		     struct cmk_err *e);

/*
 * cmk_volume_pin() - pin persistent device @d to @uuid, or, if @uuid is
 * NULL, to the device_uuid of its header, which must fit the configuration
 * and authenticate under the KEK (@v->keks unsealed; @h gets it, for the
 * operator to see its sequence and write time; sequence 0 with a @uuid);
 * @out gets the uuid.  Refused for ephemeral devices, for a device the
 * configuration pins (its uuid setting wins) and for a uuid another
 * configured device presents or is pinned to.  The operator's command
 * (cmkctl pin): nothing else changes a pin once the first open has made it.
 */
int cmk_volume_pin(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		   const uint8_t *uuid, uint8_t out[CMK_UUID_LEN],
		   struct cmk_header *h, struct cmk_err *e);

/* What cmk_volume_rewrap() found and did. */
enum cmk_rewrap_how {
	CMK_REWRAP_NO_HEADER,	/* not formatted: its first header uses the new KEK */
	CMK_REWRAP_ALREADY,	/* under the current KEK already (record caught up) */
	CMK_REWRAP_DONE,	/* re-wrapped now */
};

/*
 * cmk_volume_rewrap() - KEK rotation of @d's header: the best copy that
 * authenticates under the envelope's previous (or current) KEK is re-sealed
 * under the current one, same DEK, sequence + 1 (@h); the record of what
 * was opened follows in two steps (binding.h).  Under the current KEK
 * already: a record an interrupted rotation left one step behind catches
 * up.
 */
int cmk_volume_rewrap(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
		      enum cmk_rewrap_how *how, struct cmk_header *h,
		      struct cmk_err *e);

/*
 * cmk_volume_set_flags() - record @flags (CMK_HDR_F_*) in @d's header: the
 * header must authenticate and fit the configuration but for its flags;
 * it is re-sealed (same DEK, current KEK, sequence + 1), and the record of
 * what was opened follows.  For headers written before the agent recorded
 * table options (Documentation/deployment.rst).  @before and @h get the
 * header before and after.
 */
int cmk_volume_set_flags(struct cmk_volume_ctx *v, const struct cmk_config_device *d,
			 uint32_t flags, struct cmk_header *before,
			 struct cmk_header *h, struct cmk_err *e);

/* Operator revocation markers (<state_dir>/revoked/<name>). */
bool cmk_volume_revoked(const struct cmk_config *cfg,
			const struct cmk_config_device *d);
int cmk_volume_mark_revoked(const struct cmk_config *cfg,
			    const struct cmk_config_device *d, struct cmk_err *e);
int cmk_volume_clear_revoked(const struct cmk_config *cfg,
			     const struct cmk_config_device *d, struct cmk_err *e);

/* cmk_volume_audit() - one audit line about @d (@e NULL on success). */
void cmk_volume_audit(struct cmk_volume_ctx *v, const char *event,
		      const struct cmk_config_device *d, const char *message,
		      const struct cmk_err *e, bool important);

#endif /* CMK_VOLUME_H */
