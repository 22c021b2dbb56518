// SPDX-License-Identifier: GPL-2.0
/*
 * device.c - boot paths from envelope and header to a DEK (see device.h).
 */
#include "device/device.h"

#include <errno.h>
#include <string.h>

#include "device/binding.h"
#include "core/codec.h"
#include "core/fileio.h"
#include "core/keys.h"

static int fresh_header(int fd, const struct cmk_kek_pair *k, enum cmk_mode mode,
			uint32_t sector_size, uint32_t flags,
			const uint8_t this_boot[CMK_UUID_LEN],
			const struct cmk_header *old, uint64_t base,
			struct cmk_header *h, struct cmk_secret **dekp,
			struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *dek = NULL;
	int ret;

	if (flags & ~CMK_HDR_F_KNOWN)
		return cmk_errf(e, -EINVAL, "header: flags 0x%x are not defined", flags);
	ret = cmk_header_init(h, mode, sector_size, k->env->kek_id,
			      k->env->cur.kek_version, e);
	if (ret)
		return ret;
	if (old)
		memcpy(h->device_uuid, old->device_uuid, CMK_UUID_LEN);
	memcpy(h->boot_id, this_boot, CMK_UUID_LEN);
	h->flags = flags;
	h->sequence = base;
	ret = cmk_dek_generate(&dek, e);
	if (ret)
		return ret;
	ret = cmk_header_write(fd, h, k->cur, dek, e);
	if (ret)
		return ret;
	*dekp = dek;
	dek = NULL;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < len; i++)
		acc |= p[i];
	return acc == 0;
}

/*
 * Is the whole 1 MiB header area zero (a fresh, never-used disk)?  With
 * @but_copies, the bytes of the two header copies are not looked at.
 */
static int header_area_zero(int fd, bool but_copies, bool *zero,
			    struct cmk_err *e)
{
	static const off_t copy[2] = { CMK_HDR_COPY_A, CMK_HDR_COPY_B };
	uint8_t buf[65536];
	int ret;

	/* Each copy lies inside one 64 KiB chunk. */
	_Static_assert(CMK_HDR_COPY_A % 65536 == 0 && CMK_HDR_COPY_B % 65536 == 0,
		       "header copies are not 64 KiB aligned");
	*zero = false;
	for (off_t off = 0; off < CMK_HDR_AREA; off += (off_t)sizeof(buf)) {
		ret = cmk_pread_full(fd, buf, sizeof(buf), off, "device header area", e);
		if (ret)
			return ret;
		for (int i = 0; but_copies && i < 2; i++)
			if (copy[i] >= off && copy[i] < off + (off_t)sizeof(buf))
				memset(buf + (copy[i] - off), 0, CMK_HDR_SIZE);
		if (!all_zero(buf, sizeof(buf)))
			return 0;
	}
	*zero = true;
	return 0;
}

/*
 * Is @fd what a first format cut inside the first header copy it wrote
 * leaves?  cmk_device_format() zeroes the 1 MiB header area, then
 * cmk_header_write() writes copy A (on a zeroed area no copy is chosen, so
 * A goes first) with sequence 1, syncs, and writes copy B.  A power cut
 * inside copy A leaves exactly this (Documentation/formats.rst, "An
 * interrupted first format"):
 *
 *  - copy A with the magic and version 1 that does not validate
 *    (-EUCLEAN; another version, a newer agent's header, never counts),
 *    whose sequence is 1, or 0 if the tear came before that field, and
 *    whose bytes after its last defined field (reserved and checksum,
 *    CMK_HDR_OFF_RESERVED to the end) are still zero: the write did not
 *    reach the end of the copy, and a format writes zeros in reserved.
 *    (Torn at 512-byte sectors, a copy that got its last sector but not
 *    its first has no magic, and its checksum makes the area not zero: it
 *    is refused, see cmk_device_may_format().)
 *  - copy B zero in all 4096 bytes, not merely without magic;
 *  - the rest of the header area zero.
 *
 * A header with no valid copy was never opened (no open path accepts
 * one), so nothing was written under it.  That alone is not enough: the
 * torn copy's wrapped DEK is in its first sector and may well unwrap, and
 * a header that was complete and protected data can be damaged later.
 * What makes this a first format, and not such a header, is copy B all
 * zero and copy A's checksum not written (a header that was ever complete
 * had the magic and the checksum in both copies).  Turning one into this
 * takes zeroing all of copy B and copy A's last sector; wipefs and stray
 * writes of data leave non-zero bytes.  The sequence of 0 or 1 adds
 * little: a persistent header written again (KEK rotation, set-flags) has
 * 2 or more, but an ephemeral re-key at a new boot writes 1 again; an
 * ephemeral device's data is shredded at every boot anyway.  A used,
 * never rotated persistent disk zeroed over exactly 3584..69631 does look
 * like this: cmkctl also refuses a torn copy whose device_uuid a
 * configured device is pinned to (cmk_device_torn_uuid()).
 */
static int interrupted_first_format(int fd, bool *yes, struct cmk_err *e)
{
	uint8_t a[CMK_HDR_SIZE], b[CMK_HDR_SIZE];
	struct cmk_header h;
	int ret;

	*yes = false;
	ret = cmk_pread_full(fd, a, CMK_HDR_SIZE, CMK_HDR_COPY_A, "device header", e);
	if (!ret)
		ret = cmk_pread_full(fd, b, CMK_HDR_SIZE, CMK_HDR_COPY_B,
				     "device header", e);
	if (ret)
		return ret;
	if (cmk_header_decode(a, "A", &h, NULL) != -EUCLEAN ||
	    !all_zero(b, CMK_HDR_SIZE) ||
	    memcmp(a + CMK_HDR_OFF_MAGIC, CMK_HDR_MAGIC, 8) ||
	    cmk_get_le32(a + CMK_HDR_OFF_VERSION) != CMK_HDR_VERSION ||
	    cmk_get_le64(a + CMK_HDR_OFF_SEQUENCE) > 1 ||
	    !all_zero(a + CMK_HDR_OFF_RESERVED, CMK_HDR_SIZE - CMK_HDR_OFF_RESERVED))
		return 0;
	return header_area_zero(fd, true, yes, e);
}

int cmk_device_may_format(int fd, bool *interrupted, struct cmk_err *e)
{
	struct cmk_header h;
	struct cmk_err re;
	bool zero;
	int ret;

	*interrupted = false;
	ret = cmk_header_read(fd, &h, NULL, &re);
	if (ret == -ENODATA) {
		/* No magic is not a blank disk: a file system has none either. */
		ret = header_area_zero(fd, false, &zero, e);
		if (ret || zero)
			return ret;
		return cmk_errf(e, -EEXIST,
				"no dm-cmk header, but the first 1 MiB is not zero (a file system? a partition table?); formatting would destroy it: check the device, or use --force");
	}
	if (ret == -EUCLEAN) {
		ret = interrupted_first_format(fd, interrupted, e);
		if (ret || *interrupted)
			return ret;
		ret = -EUCLEAN;
	} else if (ret) {
		if (e)
			*e = re;
		return ret;
	}
	return cmk_errf(e, -EEXIST,
			"already has a %sdm-cmk header; formatting would destroy its data: check the device, or use --force",
			ret ? "damaged " : "");
}

int cmk_device_torn_uuid(int fd, uint8_t uuid[CMK_UUID_LEN], struct cmk_err *e)
{
	return cmk_pread_full(fd, uuid, CMK_UUID_LEN,
			      CMK_HDR_COPY_A + CMK_HDR_OFF_DEV_UUID,
			      "device header", e);
}

/*
 * What the damaged copies of a header claim to be: the mode field of every
 * copy that has the magic and this version, checksum or not.
 */
static int damaged_modes(int fd, bool *ephemeral, bool *persistent,
			 struct cmk_err *e)
{
	static const off_t off[2] = { CMK_HDR_COPY_A, CMK_HDR_COPY_B };
	uint8_t b[CMK_HDR_SIZE];
	int ret;

	*ephemeral = *persistent = false;
	for (int i = 0; i < 2; i++) {
		ret = cmk_pread_full(fd, b, sizeof(b), off[i], "device header", e);
		if (ret)
			return ret;
		if (memcmp(b + CMK_HDR_OFF_MAGIC, CMK_HDR_MAGIC, 8) ||
		    cmk_get_le32(b + CMK_HDR_OFF_VERSION) != CMK_HDR_VERSION)
			continue;
		switch (cmk_get_le32(b + CMK_HDR_OFF_MODE)) {
		case CMK_MODE_EPHEMERAL:
			*ephemeral = true;
			break;
		case CMK_MODE_PERSISTENT:
			*persistent = true;
			break;
		}
	}
	return 0;
}

/*
 * The KEK that opens @h: the envelope's current or previous version, the
 * one the header names.  -EKEYREJECTED (saying which) if the envelope has
 * none.
 */
static int kek_for(const struct cmk_kek_pair *k, const struct cmk_header *h,
		   const struct cmk_secret **kek, struct cmk_err *e)
{
	const struct cmk_envelope *env = k->env;
	char hid[CMK_UUID_STR], eid[CMK_UUID_STR];

	*kek = NULL;
	cmk_uuid_format(h->kek_id, hid);
	cmk_uuid_format(env->kek_id, eid);
	if (memcmp(h->kek_id, env->kek_id, CMK_UUID_LEN))
		return cmk_errf(e, -EKEYREJECTED,
				"device header names KEK %s, but the envelope holds KEK %s: wrong envelope for this device",
				hid, eid);
	if (h->kek_version == env->cur.kek_version)
		*kek = k->cur;
	else if (env->has_prev && h->kek_version == env->prev.kek_version)
		*kek = k->prev;
	if (!*kek)
		return cmk_errf(e, -EKEYREJECTED,
				"device header needs KEK %s version %u, the envelope has version %u%s%s",
				hid, h->kek_version, env->cur.kek_version,
				env->has_prev ? " and a previous version" : "",
				env->has_prev && !k->prev ? " (not unwrapped)" : "");
	return 0;
}

/* Does @h authenticate under the envelope's KEKs?  The DEK is wiped at once. */
static bool authentic(const struct cmk_kek_pair *k, const struct cmk_header *h)
{
	CMK_SECRET_AUTO struct cmk_secret *dek = NULL;
	const struct cmk_secret *kek;

	return !kek_for(k, h, &kek, NULL) &&
	       !cmk_header_unwrap_dek(h, kek, &dek, NULL);
}

/*
 * The sequence a re-key follows: the highest of the copies this boot wrote
 * (they must be outnumbered, or one written back would match the record of
 * what was opened again), counted only if authentic, so that a forged copy
 * cannot exhaust the sequence.  Copies of other boots are never unwrapped,
 * and do not count: the boot id alone refuses them.
 */
static uint64_t rekey_base(int fd, const struct cmk_kek_pair *k,
			   const struct cmk_device_want *w)
{
	struct cmk_header cand[2];
	uint64_t base = 0;
	int n;

	if (cmk_header_read_candidates(fd, cand, &n, NULL, NULL))
		return 0;
	for (int i = 0; i < n; i++)
		if (cand[i].mode == CMK_MODE_EPHEMERAL &&
		    !memcmp(cand[i].boot_id, w->this_boot, CMK_UUID_LEN) &&
		    cand[i].sequence > base && authentic(k, &cand[i]))
			base = cand[i].sequence;
	return base;
}

int cmk_device_rekey_ephemeral(int fd, const struct cmk_kek_pair *k,
			       const struct cmk_device_want *w, bool force,
			       bool new_uuid, struct cmk_header *h,
			       struct cmk_secret **dek, struct cmk_err *e)
{
	struct cmk_header old;
	struct cmk_err re;
	bool eph, pers, zero, keep;
	int ret, rd;

	*dek = NULL;
	ret = rd = cmk_header_read(fd, &old, NULL, &re);
	if (ret == 0 && old.mode != CMK_MODE_EPHEMERAL)
		return cmk_errf(e, -EEXIST,
				"device holds a persistent dm-cmk header; refusing to re-key it as ephemeral (that would destroy its data)");
	if (ret != 0 && ret != -ENODATA && ret != -EUCLEAN &&
	    ret != -EPROTONOSUPPORT) {
		if (e)
			*e = re;
		return ret;
	}
	/*
	 * Re-keying shreds whatever the device holds, so it needs positive
	 * evidence that the device is ours and ephemeral: a valid ephemeral
	 * header, a damaged one that still says ephemeral, or an all-zero
	 * header area (a fresh disk).  A typo in "backing" must not destroy
	 * a file system or a persistent volume.
	 */
	if (ret == -EUCLEAN || ret == -EPROTONOSUPPORT) {
		ret = damaged_modes(fd, &eph, &pers, e);
		if (ret)
			return ret;
		if (pers)
			return cmk_errf(e, -EEXIST,
					"not re-keyed: damaged persistent dm-cmk header (re-keying would destroy its data); check backing and mode");
		if (!eph && !force)
			return cmk_errf(e, -EEXIST,
					"not re-keyed: damaged dm-cmk header that does not say ephemeral; check backing, or set format = always");
	} else if (ret == -ENODATA && !force) {
		ret = header_area_zero(fd, false, &zero, e);
		if (ret)
			return ret;
		if (!zero)
			return cmk_errf(e, -EEXIST,
					"not re-keyed: no dm-cmk header and the first 1 MiB is not zero (a file system?); check backing, or if it is scratch, zero its first 1 MiB or set format = always");
	}
	/*
	 * Damaged ephemeral headers and fresh disks just get a new one.  The
	 * old header is never unwrapped, whatever boot wrote it.
	 */
	keep = !rd && !new_uuid && old.sector_size == w->sector_size &&
	       old.flags == w->flags;
	return fresh_header(fd, k, CMK_MODE_EPHEMERAL, w->sector_size, w->flags,
			    w->this_boot, keep ? &old : NULL, rekey_base(fd, k, w),
			    h, dek, e);
}

int cmk_device_format(int fd, const struct cmk_kek_pair *k, enum cmk_mode mode,
		      uint32_t sector_size, uint32_t flags,
		      const uint8_t this_boot[CMK_UUID_LEN], bool force,
		      struct cmk_header *h, struct cmk_secret **dek,
		      struct cmk_err *e)
{
	bool interrupted;
	int ret;

	*dek = NULL;
	if (!force) {
		ret = cmk_device_may_format(fd, &interrupted, e);
		if (ret)
			return ret;
	}
	ret = cmk_header_zero_area(fd, e);
	if (ret)
		return ret;
	return fresh_header(fd, k, mode, sector_size, flags, this_boot, NULL, 0,
			    h, dek, e);
}

/* The header must describe the table the agent builds for the device. */
static int check_geometry(const struct cmk_header *h,
			  const struct cmk_device_want *w, struct cmk_err *e)
{
	if (h->mode != w->mode)
		return cmk_errf(e, -EMEDIUMTYPE,
				"header is %s but the device is configured %s; fix mode in its [device] section (re-formatting destroys the data)",
				cmk_mode_name(h->mode), cmk_mode_name(w->mode));
	if (h->sector_size != w->sector_size)
		return cmk_errf(e, -EMEDIUMTYPE,
				"header says sector size %u, the configuration %u: mapped with the wrong size it would read garbage and corrupt data on writes; set sector_size = %u in its [device] section",
				h->sector_size, w->sector_size, h->sector_size);
	if ((h->flags & CMK_HDR_F_IV_LARGE_SECTORS) &&
	    !(w->flags & CMK_HDR_F_IV_LARGE_SECTORS))
		return cmk_errf(e, -EMEDIUMTYPE,
				"header says iv_large_sectors (recorded when it was formatted), the configuration does not: the IVs would differ and data would read as garbage; add iv_large_sectors to the options in its [device] section");
	/*
	 * Flags 0 is also what every header says that an agent wrote before
	 * headers recorded the IV option, whatever the table was: it cannot
	 * tell which side is wrong, so it must not advise dropping the option.
	 */
	if (h->flags != w->flags)
		return cmk_errf(e, -EMEDIUMTYPE,
				"header says no iv_large_sectors, the configuration iv_large_sectors. Headers written before the agent recorded the option (Documentation/deployment.rst, upgrades) always say none: if this device's data was written with iv_large_sectors, record it in the header (cmkctl header set-flags --iv-large-sectors %s); if it was not, remove iv_large_sectors from its [device] section. Mapped with the wrong IVs it reads garbage, and writes destroy data",
				w->name);
	return 0;
}

static int check_pin(const struct cmk_header *h, const struct cmk_device_want *w,
		     struct cmk_err *e)
{
	char a[CMK_UUID_STR], b[CMK_UUID_STR];

	if (h->mode != CMK_MODE_PERSISTENT || !w->has_pin ||
	    !memcmp(h->device_uuid, w->pin, CMK_UUID_LEN))
		return 0;
	cmk_uuid_format(h->device_uuid, a);
	cmk_uuid_format(w->pin, b);
	return cmk_errf(e, -EXDEV,
			"its device_uuid %s is not the one the device is pinned to, %s (%s): another device's header, copied here? If the device was re-formatted on purpose, pin it again (cmkctl pin %s)",
			a, b, w->pin_from ? w->pin_from : "pin", w->name);
}

/*
 * An ephemeral DEK lives for one boot: a header another boot wrote (a
 * saved copy written back) is never unwrapped, only replaced at the next
 * open.
 */
static int check_boot(const struct cmk_header *h, const struct cmk_device_want *w,
		      struct cmk_err *e)
{
	char a[CMK_UUID_STR], b[CMK_UUID_STR];

	if (h->mode != CMK_MODE_EPHEMERAL ||
	    !memcmp(h->boot_id, w->this_boot, CMK_UUID_LEN))
		return 0;
	cmk_uuid_format(h->boot_id, a);
	cmk_uuid_format(w->this_boot, b);
	return cmk_errf(e, -ESTALE,
			"ephemeral header of another boot (boot_id %s, this boot is %s): a saved header written back? It is never unwrapped, only replaced when the device is opened again",
			a, b);
}

/* A running device: the header must be the one opened (or its pending re-wrap). */
static int check_record(const struct cmk_header *h, const struct cmk_device_want *w,
			struct cmk_err *e)
{
	const struct cmk_opened *o = w->opened;
	char a[CMK_UUID_STR], b[CMK_UUID_STR];

	if (!o || !o->valid)
		return cmk_errf(e, -ESTALE,
				"the device is running but there is no record of what was opened in this boot to check its header against; close and open it again (an ephemeral device loses its data)");
	if (memcmp(h->device_uuid, o->device_uuid, CMK_UUID_LEN)) {
		cmk_uuid_format(h->device_uuid, a);
		cmk_uuid_format(o->device_uuid, b);
		return cmk_errf(e, -EXDEV,
				"its device_uuid %s is not the one that was opened, %s: another device's header, copied here?",
				a, b);
	}
	if (!memcmp(h->boot_id, o->boot_id, CMK_UUID_LEN) &&
	    (h->sequence == o->sequence ||
	     (o->pending && h->sequence == o->pending)))
		return 0;
	cmk_uuid_format(h->boot_id, a);
	cmk_uuid_format(o->boot_id, b);
	return cmk_errf(e, -ESTALE,
			"it has sequence %llu and boot_id %s, but sequence %llu and boot_id %s were opened: %s",
			(unsigned long long)h->sequence, a,
			(unsigned long long)o->sequence, b,
			memcmp(h->boot_id, o->boot_id, CMK_UUID_LEN) ?
			"a header of another boot written back?" :
			h->sequence < o->sequence ? "an older header written back?" :
			"a newer header than the one opened, that this machine did not record: a re-wrap by another cmk process that was interrupted (run cmkctl kek rotate again), or a header written by someone else");
}

int cmk_device_check(const struct cmk_header *h,
		     const struct cmk_device_want *w, struct cmk_err *e)
{
	int ret;

	ret = check_geometry(h, w, e) ?: check_pin(h, w, e) ?: check_boot(h, w, e);
	if (ret || !w->running)
		return ret;
	return check_record(h, w, e);
}

/*
 * The best copy of @fd's header that passes the checks against @w (none
 * if @w is NULL) and authenticates: a forged copy (a valid checksum and
 * any sequence it likes) is passed over.  The checks come first, so a
 * header of another boot is never unwrapped.  Errors: the best copy's.
 */
static int best_authentic(int fd, const struct cmk_kek_pair *k,
			  const struct cmk_device_want *w, struct cmk_header *h,
			  struct cmk_secret **dek, struct cmk_err *e)
{
	const struct cmk_secret *kek;
	struct cmk_header cand[2];
	struct cmk_err first, later;
	int n, ret, ret0 = 0;

	*dek = NULL;
	ret = cmk_header_read_candidates(fd, cand, &n, NULL, e);
	if (ret)
		return ret;
	for (int i = 0; i < n; i++) {
		struct cmk_err *why = i ? &later : &first;

		ret = (w ? cmk_device_check(&cand[i], w, why) : 0) ?:
		      kek_for(k, &cand[i], &kek, why) ?:
		      cmk_header_unwrap_dek(&cand[i], kek, dek, why);
		if (!ret) {
			*h = cand[i];
			return 0;
		}
		if (!i)
			ret0 = ret;
	}
	*h = cand[0];
	if (e)
		*e = first;
	return ret0;
}

int cmk_device_unwrap(int fd, const struct cmk_kek_pair *k,
		      const struct cmk_device_want *w, struct cmk_header *h,
		      struct cmk_secret **dek, struct cmk_err *e)
{
	return best_authentic(fd, k, w, h, dek, e);
}

int cmk_device_adopt_live(int fd, const struct cmk_kek_pair *k,
			  const struct cmk_device_want *w, bool bound,
			  struct cmk_header *h, bool *migrated, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *dek = NULL;
	const struct cmk_secret *kek;
	struct cmk_header cand[2];
	struct cmk_err first, later;
	struct cmk_device_want nw = *w;
	int n, ret, ret0 = 0, pick = -1;

	*migrated = false;
	nw.running = false;
	ret = cmk_header_read_candidates(fd, cand, &n, NULL, e);
	if (ret)
		return ret;
	for (int i = 0; i < n && pick < 0; i++) {
		struct cmk_err *why = i ? &later : &first;

		ret = check_geometry(&cand[i], &nw, why) ?: check_pin(&cand[i], &nw, why);
		/*
		 * An agent from before headers carried the kernel's boot id
		 * wrote a random one.  Such a header is unwrapped only where
		 * the kernel holds the device's key and refuses any other: a
		 * DEK that is not the live one (a saved header of an earlier
		 * boot) can then never be installed.
		 */
		if (!ret && check_boot(&cand[i], &nw, why) && !bound)
			ret = cmk_errf(why, -ESTALE,
				       "its ephemeral header carries boot_id of its own, not this boot's (written by an agent from before headers were bound to the boot, or a saved header written back), and the loaded dm-cmk module does not bind devices to their first key, so it cannot be told from a rollback: the live key is kept; reboot (or close and open the device, which re-keys it) to finish the upgrade");
		ret = ret ?: kek_for(k, &cand[i], &kek, why) ?:
		      cmk_header_unwrap_dek(&cand[i], kek, &dek, why);
		if (!ret)
			pick = i;
		else if (!i)
			ret0 = ret;
	}
	if (pick < 0) {
		*h = cand[0];
		if (e)
			*e = first;
		return ret0;
	}
	*h = cand[pick];
	if (!check_boot(h, &nw, NULL))
		return 0;
	/* Re-seal for this boot: same DEK, the current KEK, sequence + 1. */
	memcpy(h->boot_id, w->this_boot, CMK_UUID_LEN);
	memcpy(h->kek_id, k->env->kek_id, CMK_UUID_LEN);
	h->kek_version = k->env->cur.kek_version;
	ret = cmk_header_write(fd, h, k->cur, dek, e);
	if (ret) {
		cmk_err_prefix(e, "re-sealing its header for this boot");
		return ret;
	}
	*migrated = true;
	return 0;
}

bool cmk_device_presents_uuid(int fd, const struct cmk_kek_pair *k,
			      const uint8_t this_boot[CMK_UUID_LEN],
			      const uint8_t uuid[CMK_UUID_LEN])
{
	struct cmk_header cand[2];
	int n;

	if (cmk_header_read_candidates(fd, cand, &n, NULL, NULL))
		return false;
	for (int i = 0; i < n; i++) {
		if (memcmp(cand[i].device_uuid, uuid, CMK_UUID_LEN))
			continue;
		if (!k || !k->cur)
			return true;
		/* Another boot's ephemeral header is never unwrapped. */
		if (cand[i].mode == CMK_MODE_EPHEMERAL &&
		    memcmp(cand[i].boot_id, this_boot, CMK_UUID_LEN))
			continue;
		if (authentic(k, &cand[i]))
			return true;
	}
	return false;
}

int cmk_device_read_authentic(int fd, const struct cmk_kek_pair *k,
			      struct cmk_header *h, struct cmk_secret **dek,
			      struct cmk_err *e)
{
	return best_authentic(fd, k, NULL, h, dek, e);
}
