/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bootstate.h - a throttled boot's backoff (struct cmk_boot_backoff) in a
 * file of the per-boot state directory, so that a restarted agent
 * continues it (agentloop.h, "Boot") instead of asking the KMS at once.
 *
 * The file is <state_dir>/boot-backoff.json (state_dir is /run/cmk:
 * tmpfs, gone at a reboot, as the CLOCK_BOOTTIME times in it would be
 * meaningless then), mode 0600, replaced atomically.  It names the boot
 * it was written in (the kernel's boot id): a file of another boot (a
 * state_dir on persistent storage) is no backoff to continue.  It steers how long
 * the agent waits before its first KMS request, so it is read only if
 * root (or this uid) owns it and its path (cmk_read_trusted_file()).  A
 * missing, unreadable or malformed file is no backoff to continue: the
 * agent then unseals at once, as without it.
 */
#ifndef CMK_BOOTSTATE_H
#define CMK_BOOTSTATE_H

#include "daemon/agentloop.h"
#include "core/codec.h"
#include "core/err.h"

#define CMK_BOOTSTATE_FILE	"boot-backoff.json"

/*
 * cmk_bootstate_load() - @b from @path; a missing file, or one written in
 * another boot than @boot_id, is 0 with @b zeroed; any other problem
 * -errno (@b zeroed, @e says what).
 */
int cmk_bootstate_load(const char *path, const uint8_t boot_id[CMK_UUID_LEN],
		       struct cmk_boot_backoff *b, struct cmk_err *e);

/*
 * cmk_bootstate_save() - @b of boot @boot_id into @path (atomically,
 * 0600); @b->throttles 0 removes the file (the boot ended, or there is
 * nothing to continue).
 */
int cmk_bootstate_save(const char *path, const uint8_t boot_id[CMK_UUID_LEN],
		       const struct cmk_boot_backoff *b, struct cmk_err *e);

#endif /* CMK_BOOTSTATE_H */
