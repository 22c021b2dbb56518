/* SPDX-License-Identifier: GPL-2.0 */
/*
 * poweroff.h - the revocation policy's power-off, without stalling the agent.
 *
 * Under policy poweroff the agent syncs the file systems and powers the
 * machine off once it has wiped the keys.  sync() can block for a long
 * time right then: writes to a dm-cmk device whose key was just wiped for
 * a reason the kernel holds I/O for (kms_unreachable) wait up to the
 * device's hold_ms (up to 10 min) before they fail, and they cannot
 * succeed anyway.  A main loop blocked in sync() stops feeding the systemd
 * watchdog, which kills the agent before reboot() is reached, and the
 * restarted agent goes round again.
 *
 * So sync() runs on a thread of its own, and the main loop, which keeps
 * feeding the watchdog, powers off as soon as it returns or @wait_ms
 * after the start, whichever comes first.  The thread is never joined: if
 * sync() does not return, the power-off takes it down.
 *
 * One power-off per process: once begun it is pending until it was fired
 * (cmk_poweroff_fire()), and the agent does not exit while it is pending
 * (not for SIGTERM, not for a stuck worker).  If reboot() failed (no
 * CAP_SYS_BOOT), a later wipe starts no second sync() thread.
 */
#ifndef CMK_POWEROFF_H
#define CMK_POWEROFF_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

/* How long the agent waits for sync() before it powers off anyway. */
#define CMK_POWEROFF_SYNC_MS	10000

struct cmk_poweroff;

/*
 * cmk_poweroff_begin() - start sync() on a thread at @now_ms (the caller's
 * clock), to wait for it @wait_ms at most.  Never blocks.  *@out must be
 * NULL at the first call; if it is not (a power-off was begun already,
 * under way or fired), nothing starts: -EALREADY.
 */
int cmk_poweroff_begin(struct cmk_poweroff **out, uint64_t now_ms,
		       uint64_t wait_ms, struct cmk_err *e);

/* cmk_poweroff_fd() - readable once sync() has returned (for poll()). */
int cmk_poweroff_fd(const struct cmk_poweroff *p);

/* cmk_poweroff_synced() - sync() has returned. */
bool cmk_poweroff_synced(const struct cmk_poweroff *p);

/*
 * cmk_poweroff_left_ms() - ms until the power-off is due at @now_ms: 0
 * once sync() has returned or the wait is over.
 */
uint64_t cmk_poweroff_left_ms(const struct cmk_poweroff *p, uint64_t now_ms);

/* cmk_poweroff_pending() - begun and not fired yet (@p may be NULL). */
bool cmk_poweroff_pending(const struct cmk_poweroff *p);

/*
 * cmk_poweroff_fire() - the power-off is due: cmk_poweroff_now(), once.
 * Returns only if it failed; @p is then no longer pending.
 */
int cmk_poweroff_fire(struct cmk_poweroff *p, struct cmk_err *e);

/*
 * cmk_poweroff_free() - free @p once sync() has returned (before that the
 * thread still uses it, and it is left alone).
 */
void cmk_poweroff_free(struct cmk_poweroff **p);

/*
 * cmk_poweroff_now() - reboot(RB_POWER_OFF).  Returns only if that failed
 * (no CAP_SYS_BOOT): -errno with @e saying so.
 */
int cmk_poweroff_now(struct cmk_err *e);

#endif /* CMK_POWEROFF_H */
