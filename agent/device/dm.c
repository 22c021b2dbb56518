// SPDX-License-Identifier: GPL-2.0
/*
 * dm.c - create, inspect and remove dm-cmk devices through libdevmapper.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libdevmapper.h>

#include "device/dm.h"

/*
 * Wait for udev when it runs; otherwise (a minimal initramfs) let
 * libdevmapper create the /dev/mapper node itself.
 */
static bool cmk_dm_udev(void)
{
	bool udev = access("/run/udev/control", F_OK) == 0;

	dm_udev_set_sync_support(udev);
	return udev;
}

static int cmk_dm_run(struct dm_task *dmt, const char *what, const char *name,
		      struct cmk_err *e)
{
	uint32_t cookie = 0;
	bool udev = cmk_dm_udev();
	int ok;

	if (udev && !dm_task_set_cookie(dmt, &cookie, 0))
		return cmk_errf(e, -ENOMEM, "device-mapper: cannot set a udev cookie for %s",
				name);
	ok = dm_task_run(dmt);
	if (udev)
		dm_udev_wait(cookie);
	else
		dm_task_update_nodes();	/* create/remove /dev/mapper/<name> now */
	if (!ok)
		return cmk_errf(e, -EIO,
				"device-mapper: %s of %s failed (the kernel log says why: dmesg | grep device-mapper)",
				what, name);
	return 0;
}

/*
 * Create @name with no table, then load @table as its inactive table: the
 * target's constructor runs (the key slot exists, GET and KEY_SET find it)
 * but nothing can read the device yet, so udev's probe of a new device
 * (blkid, on the resume's change event) never meets a sealed device whose
 * reads would be held for hold_ms while libdevmapper waits for udev.
 */
int cmk_dm_create(const char *name, const char *table, struct cmk_err *e)
{
	unsigned long long start, len;
	struct dm_task *dmt;
	char target[16];
	int pos = 0, ret;

	if (sscanf(table, "%llu %llu %15s %n", &start, &len, target, &pos) != 3 ||
	    !pos || !table[pos])
		return cmk_errf(e, -EINVAL,
				"device-mapper: malformed table line for %s", name);
	/*
	 * No udev cookie: the kernel sends no event of its own for a device
	 * without a table, so udev would never complete one.  The node comes
	 * with the resume (libdevmapper's default), where udev's cookie is.
	 */
	dmt = dm_task_create(DM_DEVICE_CREATE);
	if (!dmt)
		return cmk_errf(e, -ENOMEM, "device-mapper: out of memory");
	if (!dm_task_set_name(dmt, name)) {
		dm_task_destroy(dmt);
		return cmk_errf(e, -EINVAL, "device-mapper: bad name %s", name);
	}
	ret = dm_task_run(dmt) ? 0 :
	      cmk_errf(e, -EIO,
		       "device-mapper: create of %s failed (the kernel log says why: dmesg | grep device-mapper)",
		       name);
	dm_task_destroy(dmt);
	dm_task_update_nodes();
	if (ret)
		return ret;

	dmt = dm_task_create(DM_DEVICE_RELOAD);
	if (!dmt) {
		ret = cmk_errf(e, -ENOMEM, "device-mapper: out of memory");
		goto undo;
	}
	if (!dm_task_set_name(dmt, name) ||
	    !dm_task_add_target(dmt, start, len, target, table + pos)) {
		ret = cmk_errf(e, -EINVAL, "device-mapper: bad name or table for %s",
			       name);
	} else if (!dm_task_run(dmt)) {
		ret = cmk_errf(e, -EIO,
			       "device-mapper: table load of %s failed (the kernel log says why: dmesg | grep device-mapper)",
			       name);
	}
	dm_task_destroy(dmt);
	if (!ret)
		return 0;
undo:
	(void)cmk_dm_remove(name, NULL);
	return ret;
}

/* What device-mapper knows of @name (info->exists false if nothing). */
static int info_of(const char *name, struct dm_info *info, struct cmk_err *e)
{
	struct dm_task *dmt;
	int ret = 0;

	memset(info, 0, sizeof(*info));
	dmt = dm_task_create(DM_DEVICE_INFO);
	if (!dmt)
		return cmk_errf(e, -ENOMEM, "device-mapper: out of memory");
	if (!dm_task_set_name(dmt, name) || !dm_task_run(dmt) ||
	    !dm_task_get_info(dmt, info))
		ret = cmk_errf(e, -EIO, "device-mapper: cannot query %s", name);
	dm_task_destroy(dmt);
	return ret;
}

int cmk_dm_resume(const char *name, struct cmk_err *e)
{
	struct dm_task *dmt;
	struct dm_info info;
	int ret;

	ret = info_of(name, &info, e);
	if (!ret && !info.exists)
		ret = cmk_errf(e, -ENXIO, "device-mapper: no device named %s", name);
	/* A live table is left as it is, suspended or not: that is the operator's. */
	if (ret || info.live_table || !info.inactive_table)
		return ret;
	dmt = dm_task_create(DM_DEVICE_RESUME);
	if (!dmt)
		return cmk_errf(e, -ENOMEM, "device-mapper: out of memory");
	if (!dm_task_set_name(dmt, name))
		ret = cmk_errf(e, -EINVAL, "device-mapper: bad device name %s", name);
	else
		ret = cmk_dm_run(dmt, "resume", name, e);
	dm_task_destroy(dmt);
	return ret;
}

int cmk_dm_remove_stub(const char *name, bool *removed, struct cmk_err *e)
{
	struct dm_info info;
	int ret;

	*removed = false;
	ret = info_of(name, &info, e);
	if (ret || !info.exists || info.live_table || info.inactive_table)
		return ret;
	ret = cmk_dm_remove(name, e);
	*removed = !ret;
	return ret;
}

int cmk_dm_exists(const char *name, bool *exists, struct cmk_err *e)
{
	struct dm_info info;
	int ret = info_of(name, &info, e);

	*exists = !ret && info.exists;
	return ret;
}

int cmk_dm_users(const char *name, int *open_count, unsigned int *major,
		 unsigned int *minor, struct cmk_err *e)
{
	struct dm_info info;
	int ret = info_of(name, &info, e);

	if (ret)
		return ret;
	if (!info.exists)
		return cmk_errf(e, -ENXIO, "device-mapper: no device named %s", name);
	*open_count = info.open_count;
	*major = info.major;
	*minor = info.minor;
	return 0;
}

int cmk_dm_mount_point(unsigned int major, unsigned int minor, char *buf,
		       size_t len)
{
	char *line = NULL, want[32], dev[32], mnt[4096];
	size_t cap = 0;
	int ret = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	snprintf(want, sizeof(want), "%u:%u", major, minor);
	/* "<id> <parent> <maj:min> <root> <mount point> ..." */
	while (getline(&line, &cap, f) > 0) {
		if (sscanf(line, "%*s %*s %31s %*s %4095s", dev, mnt) != 2 ||
		    strcmp(dev, want))
			continue;
		snprintf(buf, len, "%s", mnt);
		ret = 0;
		break;
	}
	free(line);
	fclose(f);
	return ret;
}

int cmk_dm_remove(const char *name, struct cmk_err *e)
{
	struct dm_task *dmt;
	bool exists;
	int ret;

	ret = cmk_dm_exists(name, &exists, e);
	if (ret)
		return ret;
	if (!exists)
		return cmk_errf(e, -ENXIO, "device-mapper: no device named %s", name);
	dmt = dm_task_create(DM_DEVICE_REMOVE);
	if (!dmt)
		return cmk_errf(e, -ENOMEM, "device-mapper: out of memory");
	/* A just-closed device may still be held open briefly by udev. */
	if (!dm_task_set_name(dmt, name) || !dm_task_retry_remove(dmt)) {
		ret = cmk_errf(e, -EINVAL, "device-mapper: bad device name %s", name);
		goto out;
	}
	ret = cmk_dm_run(dmt, "remove", name, e);
out:
	dm_task_destroy(dmt);
	return ret;
}
