/* SPDX-License-Identifier: GPL-2.0 */
/*
 * credreload.h - how long credentials that do not read again may keep a
 * rejection from counting.
 *
 * When a KMS (or a token endpoint) rejects the agent's credentials, the
 * provider reads them again from their source before the rejection counts
 * (kms-errors.rst), so a rotated key is picked up without a restart.  A
 * source that does not read (a file being rewritten, a metadata service
 * that does not answer, an instance profile being swapped) says nothing
 * about the key: for a while the rejection is not a revocation.  Only for
 * a while: a secret deleted for good, a file that stays empty, a role
 * detached from the instance would otherwise hide a real revocation for
 * ever (policy none keeps the keys; policy wipe wipes them only after
 * grace_s, and as "unreachable").
 *
 * A run of failed reloads begins with the first one after a rejection and
 * ends with a reload that reads or an answer that does not reject the
 * credentials.  Once it has lasted CMK_CRED_RELOAD_BOUND_MS (CLOCK_BOOTTIME)
 * AND counts CMK_CRED_RELOAD_TRIES failed reloads, the rejection counts as
 * the definitive answer it is.  Both, so that neither a system sleep in
 * the middle of a rotation (time alone) nor fast checks (count alone) end
 * the run early.
 *
 * While it does not count, the check fails with the reload's own class:
 * transient (a metadata service that timed out or failed) or local (a file
 * that does not read).  A reload that ended because the check's deadline
 * passed or the job was cancelled says nothing about the source: it is
 * not counted, and fails as a timeout.
 */
#ifndef CMK_CREDRELOAD_H
#define CMK_CREDRELOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

#define CMK_CRED_RELOAD_BOUND_MS	(120 * 1000)
#define CMK_CRED_RELOAD_TRIES		3

/**
 * struct cmk_cred_reload - one provider's run of failed credential reloads
 * @since_ms: when the run's first failed reload was (CLOCK_BOOTTIME ms)
 * @fails: failed reloads in the run (0: no run)
 */
struct cmk_cred_reload {
	uint64_t since_ms;
	unsigned int fails;
};

/* cmk_cred_reload_ok() - a reload read, or an answer took the credentials. */
void cmk_cred_reload_ok(struct cmk_cred_reload *r);

/*
 * cmk_cred_reload_failed() - the credentials were rejected and reading
 * them again failed with @re.  Records it (unless it was the deadline or a
 * cancel) and returns true when the rejection now counts.
 */
bool cmk_cred_reload_failed(struct cmk_cred_reload *r, const struct cmk_err *re);

/*
 * cmk_cred_reload_defer() - the rejection does not count yet: fill @e with
 * "<what>: ... not taken as a revocation ...: <re>" and the reload's class
 * (@re's reason if transient, else local with @code); returns the code.
 */
int cmk_cred_reload_defer(const struct cmk_cred_reload *r, const char *what,
			  const struct cmk_err *re, int code, struct cmk_err *e);

/*
 * cmk_cred_reload_note() - the rejection counts: a note for the end of
 * its message, "reading them again has failed N times over S s: <re>".
 */
void cmk_cred_reload_note(const struct cmk_cred_reload *r,
			  const struct cmk_err *re, char *buf, size_t size);

#endif /* CMK_CREDRELOAD_H */
