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
#include <stdint.h>

#include "err.h"

/**
 * struct cmk_dm_table - the parts of a dm-cmk table line
 * @key_name: the key's name, [A-Za-z0-9._:-]{1,64}
 * @backing: backing device path
 * @offset: start of the data on @backing, in 512-byte sectors
 * @length: length of the device, in 512-byte sectors
 * @iv_offset: IV offset, in 512-byte sectors
 * @sector_size: 512 or 4096
 * @lease_max_ms: table option lease_ms (0: the kernel's default)
 * @allow_discards: pass discards down
 * @no_read_workqueue: decrypt reads inline
 * @no_write_workqueue: encrypt writes inline
 */
struct cmk_dm_table {
	const char *key_name;
	const char *backing;
	uint64_t offset;
	uint64_t length;
	uint64_t iv_offset;
	unsigned int sector_size;
	uint32_t lease_max_ms;
	bool allow_discards;
	bool no_read_workqueue;
	bool no_write_workqueue;
};

/* cmk_dm_format_table() - the table's parameter string, for logs and tests. */
int cmk_dm_format_table(const struct cmk_dm_table *t, char *buf, size_t len,
			struct cmk_err *e);

/* cmk_dm_create() - create and resume device @name (sealed until KEY_SET). */
int cmk_dm_create(const char *name, const struct cmk_dm_table *t,
		  struct cmk_err *e);

/* cmk_dm_remove() - remove device @name; -ENXIO if it does not exist. */
int cmk_dm_remove(const char *name, struct cmk_err *e);

/* cmk_dm_exists() - does device @name exist? */
int cmk_dm_exists(const char *name, bool *exists, struct cmk_err *e);

#endif /* CMK_DM_H */
