/* SPDX-License-Identifier: GPL-2.0 */
/*
 * device.h - from KEK envelope and device header to a device's DEK, and
 * the rules a header must pass before its DEK is unwrapped.
 *
 * The two boot paths of the agent, as library calls:
 *
 *  ephemeral   every boot: a fresh DEK and this boot's id are written into
 *              the header (device UUID kept), which makes the previous
 *              boot's data unreadable.  A device whose valid header says
 *              persistent is refused: it would be shredded.
 *  persistent  the header must exist, be persistent, carry the device UUID
 *              the device is pinned to and name this envelope's KEK
 *              (current version, or the previous one during a rotation);
 *              the DEK is unwrapped from it.
 *
 * A disk attacker can write any header he has seen onto any disk: another
 * device's (a swap), or this device's from an earlier boot (a rollback).
 * Both are authentic under the KEK, so the tag does not catch them; the
 * checks against struct cmk_device_want do (Documentation/threat-model.rst,
 * "a disk attacker").
 */
#ifndef CMK_DEVICE_H
#define CMK_DEVICE_H

#include "format/envelope.h"
#include "core/err.h"
#include "format/header.h"
#include "core/secret.h"

/*
 * Why a header was refused (besides the errors of header.h):
 *  -EMEDIUMTYPE  it does not fit the configuration (mode, sector size, IV
 *                options): mapping it would read garbage and corrupt data
 *  -EXDEV        it is another device's (device_uuid not the pinned or the
 *                opened one, or presented by two devices)
 *  -ESTALE       it is from an earlier boot or not the sequence that was
 *                opened (a rollback), or there is no record to check it
 *                against
 *
 * Every path that unwraps takes the valid copies of the header from the
 * highest sequence down and uses the first that passes the checks and
 * authenticates under the KEK: a copy with a correct checksum but forged
 * contents never decides anything (header.h).
 */

/*
 * struct cmk_kek_pair - the unwrapped KEKs of one envelope
 * @cur: KEK of env->cur (required)
 * @prev: KEK of env->prev during a rotation, else NULL
 */
struct cmk_kek_pair {
	const struct cmk_envelope *env;
	const struct cmk_secret *cur;
	const struct cmk_secret *prev;
};

/* What was opened of a running device in this boot (binding.h). */
struct cmk_opened;

/*
 * struct cmk_device_want - what a header must show to be unwrapped
 * @name: the configured device name (every message names it)
 * @mode: configured mode
 * @sector_size: encryption sector size of the table the agent builds
 * @flags: CMK_HDR_F_* the table implies (iv_large_sectors)
 * @this_boot: the kernel's boot id (cmk_boot_id())
 * @has_pin, @pin: persistent devices: the device_uuid they are bound to;
 *	no pin yet means trust on first use (the caller then pins)
 * @pin_from: where @pin comes from, for messages ("uuid in agent.conf" or
 *	the pin file)
 * @running: the mapped device exists, so this is a restore: @opened must be
 *	valid and match
 * @opened: what was opened in this boot (NULL or !valid: no record)
 */
struct cmk_device_want {
	const char *name;
	enum cmk_mode mode;
	uint32_t sector_size;
	uint32_t flags;
	uint8_t this_boot[CMK_UUID_LEN];
	bool has_pin;
	uint8_t pin[CMK_UUID_LEN];
	const char *pin_from;
	bool running;
	const struct cmk_opened *opened;
};

/*
 * cmk_device_check() - may @h's DEK be unwrapped for the device @w
 * describes?  Checks, in this order: mode, sector size and flags (the
 * table), the pin (persistent), this boot (ephemeral: a header of an
 * earlier boot is only ever replaced), and for a running device the record
 * of what was opened (device_uuid and boot_id equal; the sequence equal, or
 * the one a re-wrap in progress announced in the record).  No I/O,
 * no KEK: the decision alone.  The message says what does not match;
 * the caller names the device.
 */
int cmk_device_check(const struct cmk_header *h,
		     const struct cmk_device_want *w, struct cmk_err *e);

/*
 * cmk_device_rekey_ephemeral() - write a fresh header for this boot to @fd
 * (boot_id = @w->this_boot, @w's sector size and flags) and return the new
 * DEK.  The device UUID of an existing ephemeral header is kept unless
 * @new_uuid (the caller saw another device present it).  Its sequence
 * follows the highest authentic copy this boot wrote (1 after a reboot).
 *
 * Re-keying destroys the device's data, so it happens only with positive
 * evidence that the device is an ephemeral dm-cmk device: a valid ephemeral
 * header, a damaged copy whose mode field still says ephemeral, or a first
 * 1 MiB that is all zero (a fresh disk).  Anything else fails with -EEXIST
 * and says why, unless @force ("format = always"); a valid or damaged
 * persistent header is refused even then.  Nothing is unwrapped: a header
 * of an earlier boot is replaced, never used.
 */
int cmk_device_rekey_ephemeral(int fd, const struct cmk_kek_pair *k,
			       const struct cmk_device_want *w, bool force,
			       bool new_uuid, struct cmk_header *h,
			       struct cmk_secret **dek, struct cmk_err *e);

/*
 * cmk_device_unwrap() - read the header of @fd WITHOUT rewriting it, check
 * it with cmk_device_check(), check it names this envelope's KEK (the
 * version it names, current or previous) and unwrap its DEK.  The
 * persistent open and every restore: a running ephemeral device must keep
 * its DEK (re-keying would shred it).
 */
int cmk_device_unwrap(int fd, const struct cmk_kek_pair *k,
		      const struct cmk_device_want *w, struct cmk_header *h,
		      struct cmk_secret **dek, struct cmk_err *e);

/*
 * cmk_device_adopt_live() - the header of a running device whose kernel
 * slot still holds its key, when there is no record of what was opened (an
 * agent upgraded in place, a lost state_dir): the best copy that passes the
 * checks that need no record and authenticates under the KEK, to be
 * recorded.  A header of an ephemeral device that carries another boot id
 * than this boot's (agents before headers were bound to the boot wrote a
 * random one) is taken only when @bound (the kernel reports the device
 * bound to its first key, so a DEK that is not the live one can never be
 * installed later), and is then re-sealed for this boot: same DEK, the
 * envelope's current KEK, sequence + 1 (*@migrated).  Without @bound it is
 * refused (-ESTALE).  Never a KEY_SET: the caller renews the live key.
 */
int cmk_device_adopt_live(int fd, const struct cmk_kek_pair *k,
			  const struct cmk_device_want *w, bool bound,
			  struct cmk_header *h, bool *migrated, struct cmk_err *e);

/*
 * cmk_device_presents_uuid() - does a copy of @fd's header carry @uuid?
 * With the KEK (@k->cur) only a copy that authenticates counts (a
 * checksum is no signature: a forged copy must not make another device
 * look like a duplicate), and another boot's ephemeral copy, never
 * unwrapped, does not; without it any valid copy does.
 */
bool cmk_device_presents_uuid(int fd, const struct cmk_kek_pair *k,
			      const uint8_t this_boot[CMK_UUID_LEN],
			      const uint8_t uuid[CMK_UUID_LEN]);

/*
 * cmk_device_read_authentic() - the best copy of @fd's header that
 * authenticates under the envelope's KEK it names (current or previous),
 * and its DEK; no other check.  For re-sealing a header that stays what it
 * is (a KEK rotation, recording a table option): never for a DEK that goes
 * to the kernel.
 */
int cmk_device_read_authentic(int fd, const struct cmk_kek_pair *k,
			      struct cmk_header *h, struct cmk_secret **dek,
			      struct cmk_err *e);

/*
 * cmk_device_may_format() - may @fd be formatted without --force?  0 if
 * no copy of its header has the magic and its whole first 1 MiB is zero (a
 * fresh disk), or if it holds exactly what a first format cut inside copy A
 * leaves (*@interrupted; the conditions and why they are safe are in
 * device.c).  -EEXIST, saying why, for any header, valid or damaged, and
 * for a header area that is not zero (a file system, a partition table);
 * another -errno if it cannot be read in full.
 */
int cmk_device_may_format(int fd, bool *interrupted, struct cmk_err *e);

/*
 * cmk_device_torn_uuid() - the device_uuid in copy A of an interrupted
 * first format (cmk_device_may_format() said *interrupted): the caller
 * checks that no configured device is pinned to it, for a used disk whose
 * header was damaged into that state is not a first format.
 */
int cmk_device_torn_uuid(int fd, uint8_t uuid[CMK_UUID_LEN], struct cmk_err *e);

/*
 * cmk_device_format() - first header of a device: @mode, @sector_size,
 * @flags, boot_id @this_boot, a new device UUID and DEK (unless @force,
 * only where cmk_device_may_format() allows it, checked just before the
 * header area is zeroed).  The device layer knows no configuration: that
 * an interrupted first format's uuid is pinned to no device is the
 * caller's check (cmkctl format, with cmk_device_torn_uuid()).
 */
int cmk_device_format(int fd, const struct cmk_kek_pair *k, enum cmk_mode mode,
		      uint32_t sector_size, uint32_t flags,
		      const uint8_t this_boot[CMK_UUID_LEN], bool force,
		      struct cmk_header *h, struct cmk_secret **dek,
		      struct cmk_err *e);

#endif /* CMK_DEVICE_H */
