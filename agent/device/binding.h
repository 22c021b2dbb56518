/* SPDX-License-Identifier: GPL-2.0 */
/*
 * binding.h - what this machine remembers about each configured device, so
 * that a header written onto a disk by someone else is recognised:
 *
 *  boot id  the kernel's (/proc/sys/kernel/random/boot_id): ephemeral
 *           headers carry the id of the boot that wrote them.
 *  pin      a persistent device's device_uuid, taken from the header the
 *           first time it is opened (trust on first use), in
 *           <pin_dir>/<name>; a uuid setting in its [device] section pins
 *           it instead.  Changed only by cmkctl pin.
 *  opened   what was opened in this boot (device_uuid, boot_id and
 *           sequence of the header), in <state_dir>/opened/<name>; the
 *           agent keeps a copy in memory.  A restore needs a match.
 *
 * Documentation/formats.rst has both file formats and the directories.
 */
#ifndef CMK_BINDING_H
#define CMK_BINDING_H

#include <stdbool.h>
#include <stdint.h>

#include "core/codec.h"
#include "format/config.h"
#include "core/err.h"
#include "format/header.h"

#define CMK_BOOT_ID_PATH	"/proc/sys/kernel/random/boot_id"

/*
 * struct cmk_opened - what was opened: the identity of the header a
 * running device was keyed from in this boot
 * @valid: false: no record
 * @pending: a re-wrap of that header (same DEK) to this sequence is under
 *	way (cmk_opened_rewrap_begin()), 0 if none: a header of either
 *	sequence is the opened one
 */
struct cmk_opened {
	bool valid;
	uint8_t device_uuid[CMK_UUID_LEN];
	uint8_t boot_id[CMK_UUID_LEN];
	uint64_t sequence;
	uint64_t pending;
};

/* cmk_opened_of() - the identity of @h. */
void cmk_opened_of(const struct cmk_header *h, struct cmk_opened *o);

/* cmk_boot_id() - the running kernel's boot id. */
int cmk_boot_id(uint8_t id[CMK_UUID_LEN], struct cmk_err *e);

/*
 * cmk_pin_read() - @d's pin: the uuid setting of its [device] section, or
 * its pin file.  *@have false: not pinned yet.  @from (optional, @n bytes)
 * says which, for messages.  A pin file that cannot be read or parsed is
 * an error: a device must not fall back to first use.
 */
int cmk_pin_read(const struct cmk_config *cfg, const struct cmk_config_device *d,
		 bool *have, uint8_t uuid[CMK_UUID_LEN], char *from, size_t n,
		 struct cmk_err *e);

/*
 * cmk_pin_owner() - is any device pinned to @uuid on this host?  1, with
 * its name in @name and how (its uuid setting, or its pin file) in @from,
 * if a [device] section of @cfg has that uuid setting or any pin file in
 * pin_dir names it, whatever its device's name or mode in @cfg now (a
 * section may have been renamed or removed); 0 if none.  An unreadable
 * pin file counts as no pin here: the question is whether the uuid was
 * ever pinned, not whether a device may open.
 */
int cmk_pin_owner(const struct cmk_config *cfg, const uint8_t uuid[CMK_UUID_LEN],
		  char *name, size_t name_n, char *from, size_t from_n);

/*
 * cmk_pin_dir_volatile() - is pin_dir on tmpfs or ramfs?  Its pins are
 * then gone at the next boot, and every persistent device is trusted on
 * first use again: worth a warning (the agent's audit line says so).
 */
bool cmk_pin_dir_volatile(const struct cmk_config *cfg);

/* cmk_pin_write() - pin @d to @uuid (atomic, durable, mode 0600). */
int cmk_pin_write(const struct cmk_config *cfg, const struct cmk_config_device *d,
		  const uint8_t uuid[CMK_UUID_LEN], struct cmk_err *e);

/*
 * cmk_opened_read() - the record of what was opened of @d in the boot
 * @this_boot.  A record of another boot (a state_dir that outlived a
 * reboot) counts as none: o->valid false.
 */
int cmk_opened_read(const struct cmk_config *cfg,
		    const struct cmk_config_device *d,
		    const uint8_t this_boot[CMK_UUID_LEN], struct cmk_opened *o,
		    struct cmk_err *e);

/* cmk_opened_write() - record @o for @d in the boot @this_boot. */
int cmk_opened_write(const struct cmk_config *cfg,
		     const struct cmk_config_device *d,
		     const uint8_t this_boot[CMK_UUID_LEN],
		     const struct cmk_opened *o, struct cmk_err *e);

/* cmk_opened_clear() - the device was closed: no record (absent is fine). */
int cmk_opened_clear(const struct cmk_config *cfg,
		     const struct cmk_config_device *d, struct cmk_err *e);

/*
 * A KEK rotation (or a flags change) re-wraps a running device's header:
 * same DEK, device_uuid and boot_id, sequence + 1.  The record follows in
 * two steps, so that a re-wrap interrupted anywhere (cmkctl killed, a
 * failed write) leaves a record that accepts the header on disk, old or
 * new:
 *
 * cmk_opened_rewrap_begin() - before the header is written: if the record
 * of this boot is @before's, it announces @before's sequence + 1 as well.
 *
 * cmk_opened_rewrapped() - after: the header is now @after, authenticated
 * by the caller.  A record of this boot for the same device_uuid and
 * boot_id that announces @after, or is one sequence behind it (a re-wrap
 * interrupted before this step, by this or an older cmkctl), becomes
 * @after.  (An authentic header of this boot one sequence on is one a
 * cmk process re-wrapped: the DEK is the same.)
 *
 * A record that does not match is left alone (a restore will refuse, as
 * it should).
 */
int cmk_opened_rewrap_begin(const struct cmk_config *cfg,
			    const struct cmk_config_device *d,
			    const struct cmk_header *before, struct cmk_err *e);
int cmk_opened_rewrapped(const struct cmk_config *cfg,
			 const struct cmk_config_device *d,
			 const struct cmk_header *after, struct cmk_err *e);

#endif /* CMK_BINDING_H */
