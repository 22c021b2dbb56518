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

#include "err.h"

/*
 * cmk_dm_create() - create and resume device @name (sealed until KEY_SET)
 * with the one-target @table line "<start> <len> cmk <params...>", as
 * cmk_device_table_line() (config.h) builds it - the only place a table is
 * written.
 */
int cmk_dm_create(const char *name, const char *table, struct cmk_err *e);

/* cmk_dm_remove() - remove device @name; -ENXIO if it does not exist. */
int cmk_dm_remove(const char *name, struct cmk_err *e);

/* cmk_dm_exists() - does device @name exist? */
int cmk_dm_exists(const char *name, bool *exists, struct cmk_err *e);

#endif /* CMK_DM_H */
