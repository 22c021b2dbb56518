// SPDX-License-Identifier: GPL-2.0
/*
 * device.c - boot paths from envelope and header to a DEK (see device.h).
 */
#include "device.h"

#include <errno.h>
#include <string.h>

#include "codec.h"
#include "fileio.h"
#include "keys.h"

static int fresh_header(int fd, const struct cmk_keks *k, enum cmk_mode mode,
			uint32_t sector_size, const struct cmk_header *old,
			struct cmk_header *h, struct cmk_secret **dekp,
			struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *dek = NULL;
	int ret;

	ret = cmk_header_init(h, mode, sector_size, k->env->kek_id,
			      k->env->cur.kek_version, e);
	if (ret)
		return ret;
	if (old)
		memcpy(h->device_uuid, old->device_uuid, CMK_UUID_LEN);
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

/* Is the whole 1 MiB header area zero (a fresh, never-used disk)? */
static int header_area_zero(int fd, bool *zero, struct cmk_err *e)
{
	uint8_t buf[65536];
	int ret;

	*zero = false;
	for (off_t off = 0; off < CMK_HDR_AREA; off += (off_t)sizeof(buf)) {
		uint8_t acc = 0;

		ret = cmk_pread_full(fd, buf, sizeof(buf), off, "device header area", e);
		if (ret)
			return ret;
		for (size_t i = 0; i < sizeof(buf); i++)
			acc |= buf[i];
		if (acc)
			return 0;
	}
	*zero = true;
	return 0;
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

int cmk_device_rekey_ephemeral(int fd, const struct cmk_keks *k,
			       uint32_t sector_size, bool force,
			       struct cmk_header *h, struct cmk_secret **dek,
			       struct cmk_err *e)
{
	struct cmk_header old;
	struct cmk_err re;
	bool eph, pers, zero;
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
		ret = header_area_zero(fd, &zero, e);
		if (ret)
			return ret;
		if (!zero)
			return cmk_errf(e, -EEXIST,
					"not re-keyed: no dm-cmk header and the first 1 MiB is not zero (a file system?); check backing, or if it is scratch, zero its first 1 MiB or set format = always");
	}
	/* Damaged ephemeral headers and fresh disks just get a new one. */
	return fresh_header(fd, k, CMK_MODE_EPHEMERAL, sector_size,
			    !rd && old.sector_size == sector_size ? &old : NULL,
			    h, dek, e);
}

int cmk_device_format_persistent(int fd, const struct cmk_keks *k,
				 uint32_t sector_size, bool force,
				 struct cmk_header *h, struct cmk_secret **dek,
				 struct cmk_err *e)
{
	struct cmk_header old;
	struct cmk_err re;
	int ret;

	*dek = NULL;
	ret = cmk_header_read(fd, &old, NULL, &re);
	if (ret != -ENODATA && !force)
		return cmk_errf(e, -EEXIST,
				"device already has a dm-cmk header%s; formatting would destroy its data",
				ret ? " (damaged)" : "");
	ret = cmk_header_zero_area(fd, e);
	if (ret)
		return ret;
	return fresh_header(fd, k, CMK_MODE_PERSISTENT, sector_size, NULL, h,
			    dek, e);
}

int cmk_device_reopen(int fd, const struct cmk_keks *k, enum cmk_mode mode,
		      struct cmk_header *h, struct cmk_secret **dek,
		      struct cmk_err *e)
{
	const struct cmk_envelope *env = k->env;
	const struct cmk_secret *kek = NULL;
	char hid[CMK_UUID_STR], eid[CMK_UUID_STR];
	int ret;

	*dek = NULL;
	ret = cmk_header_read(fd, h, NULL, e);
	if (ret)
		return ret;
	if (h->mode != mode)
		return cmk_errf(e, -EINVAL,
				"device header is %s but the device is configured %s; fix the configuration (re-formatting destroys the data)",
				cmk_mode_name(h->mode), cmk_mode_name(mode));
	cmk_uuid_format(h->kek_id, hid);
	cmk_uuid_format(env->kek_id, eid);
	if (memcmp(h->kek_id, env->kek_id, CMK_UUID_LEN))
		return cmk_errf(e, -EKEYREJECTED,
				"device header names KEK %s, but the envelope holds KEK %s: wrong envelope for this device",
				hid, eid);
	if (h->kek_version == env->cur.kek_version)
		kek = k->cur;
	else if (env->has_prev && h->kek_version == env->prev.kek_version)
		kek = k->prev;
	if (!kek)
		return cmk_errf(e, -EKEYREJECTED,
				"device header needs KEK %s version %u, the envelope has version %u%s%s",
				hid, h->kek_version, env->cur.kek_version,
				env->has_prev ? " and a previous version" : "",
				env->has_prev && !k->prev ? " (not unwrapped)" : "");
	return cmk_header_unwrap_dek(h, kek, dek, e);
}

int cmk_device_open_persistent(int fd, const struct cmk_keks *k,
			       struct cmk_header *h, struct cmk_secret **dek,
			       struct cmk_err *e)
{
	struct cmk_header peek;
	int ret;

	*dek = NULL;
	ret = cmk_header_read(fd, &peek, NULL, e);
	if (ret)
		return ret;
	if (peek.mode != CMK_MODE_PERSISTENT)
		return cmk_errf(e, -EINVAL,
				"device header is ephemeral: its data does not survive a reboot; configure the device as ephemeral");
	return cmk_device_reopen(fd, k, CMK_MODE_PERSISTENT, h, dek, e);
}
