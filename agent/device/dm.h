/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm.h - create, inspect and remove dm-cmk devices through libdevmapper.
 *
 * A dm-cmk device is created sealed (no key); the key follows through
 * genl.h.  The table names the key and never carries key bytes.
 */
#ifndef CMK_DM_H
#define CMK_DM_H

#include <stdbool.h>

#include "core/err.h"

/*
 * cmk_dm_create() - create device @name with the one-target @table line
 * "<start> <len> cmk <params...>", as cmk_device_table_line() (config.h)
 * builds it - the only place a table is written - loaded but not live:
 * the key slot exists for KEY_SET, and cmk_dm_resume() makes the device
 * readable once the key is in.  Removed again if the table is refused.
 */
int cmk_dm_create(const char *name, const char *table, struct cmk_err *e);

/*
 * cmk_dm_resume() - make the table cmk_dm_create() loaded live, if @name
 * has no live table; a device with one (suspended or not) is left alone.
 */
int cmk_dm_resume(const char *name, struct cmk_err *e);

/*
 * cmk_dm_remove_stub() - remove @name if it exists with no table at all:
 * what a create interrupted before its table was loaded leaves (*@removed).
 */
int cmk_dm_remove_stub(const char *name, bool *removed, struct cmk_err *e);

/* cmk_dm_remove() - remove device @name; -ENXIO if it does not exist. */
int cmk_dm_remove(const char *name, struct cmk_err *e);

/* cmk_dm_exists() - does device @name exist? */
int cmk_dm_exists(const char *name, bool *exists, struct cmk_err *e);

/*
 * cmk_dm_users() - how many holders have device @name open (a mount, a
 * process, a device stacked on it) and its device number; -ENXIO if it
 * does not exist.
 */
int cmk_dm_users(const char *name, int *open_count, unsigned int *major,
		 unsigned int *minor, struct cmk_err *e);

/*
 * cmk_dm_mount_point() - the first mount point of block device
 * @major:@minor in this mount namespace, into @buf (escapes as
 * /proc/self/mountinfo has them); -ENOENT if it is not mounted here.
 */
int cmk_dm_mount_point(unsigned int major, unsigned int minor, char *buf,
		       size_t len);

#endif /* CMK_DM_H */
