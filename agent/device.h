/* SPDX-License-Identifier: GPL-2.0 */
/*
 * device.h - from KEK envelope and device header to a device's DEK.
 *
 * The two boot paths of the agent, as library calls:
 *
 *  ephemeral   every boot: a fresh DEK and boot id are written into the
 *              header (device UUID kept), which makes the previous boot's
 *              data unreadable.  A device whose valid header says
 *              persistent is refused: it would be shredded.
 *  persistent  the header must exist, be persistent and name this
 *              envelope's KEK (current version, or the previous one during
 *              a rotation); the DEK is unwrapped from it.
 */
#ifndef CMK_DEVICE_H
#define CMK_DEVICE_H

#include "envelope.h"
#include "err.h"
#include "header.h"
#include "secret.h"

/*
 * struct cmk_keks - the unwrapped KEKs of one envelope
 * @cur: KEK of env->cur (required)
 * @prev: KEK of env->prev during a rotation, else NULL
 */
struct cmk_keks {
	const struct cmk_envelope *env;
	const struct cmk_secret *cur;
	const struct cmk_secret *prev;
};

/*
 * cmk_device_rekey_ephemeral() - write a fresh per-boot header to @fd and
 * return the new DEK.  @sector_size is used when the device has no valid
 * header yet; an existing ephemeral header keeps its UUID and sector size
 * only if @sector_size matches (a changed config reformats).
 *
 * Re-keying destroys the device's data, so it happens only with positive
 * evidence that the device is an ephemeral dm-cmk device: a valid ephemeral
 * header, a damaged copy whose mode field still says ephemeral, or a first
 * 1 MiB that is all zero (a fresh disk).  Anything else fails with -EEXIST
 * and says why, unless @force ("format = always"); a valid or damaged
 * persistent header is refused even then.
 */
int cmk_device_rekey_ephemeral(int fd, const struct cmk_keks *k,
			       uint32_t sector_size, bool force,
			       struct cmk_header *h, struct cmk_secret **dek,
			       struct cmk_err *e);

/*
 * cmk_device_open_persistent() - read and check the header of @fd and
 * unwrap its DEK with the KEK version it names.
 */
int cmk_device_open_persistent(int fd, const struct cmk_keks *k,
			       struct cmk_header *h, struct cmk_secret **dek,
			       struct cmk_err *e);

/*
 * cmk_device_reopen() - read the header of @fd WITHOUT rewriting it, check
 * it is of @mode and names this envelope's KEK, and unwrap its DEK.  The
 * restore path: a running ephemeral device must keep its DEK (re-keying
 * would shred it), so this is how it gets its key back after a revoke,
 * a lease expiry or an agent restart.
 */
int cmk_device_reopen(int fd, const struct cmk_keks *k, enum cmk_mode mode,
		      struct cmk_header *h, struct cmk_secret **dek,
		      struct cmk_err *e);

/*
 * cmk_device_format_persistent() - first format of a persistent device
 * (refused if it already has a header, valid or not, unless @force).
 */
int cmk_device_format_persistent(int fd, const struct cmk_keks *k,
				 uint32_t sector_size, bool force,
				 struct cmk_header *h, struct cmk_secret **dek,
				 struct cmk_err *e);

#endif /* CMK_DEVICE_H */
