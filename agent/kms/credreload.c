// SPDX-License-Identifier: GPL-2.0
/*
 * credreload.c - how long credentials that do not read again may keep a
 * rejection from counting (see credreload.h).
 */
#include "kms/credreload.h"

#include <stdio.h>

#include "core/deadline.h"

void cmk_cred_reload_ok(struct cmk_cred_reload *r)
{
	r->since_ms = 0;
	r->fails = 0;
}

/* The reload ran out of the check's time: nothing about the source. */
static bool out_of_time(const struct cmk_err *re)
{
	return re->cls == CMK_EC_TRANSIENT && cmk_deadline_expired();
}

bool cmk_cred_reload_failed(struct cmk_cred_reload *r, const struct cmk_err *re)
{
	uint64_t now = cmk_deadline_now_ms();

	if (out_of_time(re))
		return false;
	if (!r->fails++)
		r->since_ms = now;
	return r->fails >= CMK_CRED_RELOAD_TRIES &&
	       now - r->since_ms >= CMK_CRED_RELOAD_BOUND_MS;
}

static unsigned long long run_s(const struct cmk_cred_reload *r)
{
	return r->fails ? (cmk_deadline_now_ms() - r->since_ms) / 1000 : 0;
}

int cmk_cred_reload_defer(const struct cmk_cred_reload *r, const char *what,
			  const struct cmk_err *re, int code, struct cmk_err *e)
{
	const char *cancel = out_of_time(re) ? cmk_deadline_cancel_reason() : NULL;

	if (out_of_time(re))
		return cmk_err_kms(e, CMK_R_TIMEOUT,
				   "%s and reading the credentials again did not finish (%s), so this is not taken as a revocation; the next check reads the credentials again: %s",
				   what, cancel ? cancel : "the check's deadline passed",
				   re->msg);
	if (re->cls == CMK_EC_TRANSIENT)
		return cmk_err_kms(e, re->reason,
				   "%s and reading the credentials again failed (%u time%s in %llu s), so this is not taken as a revocation yet; it is once that has lasted %d s and %d checks: %s",
				   what, r->fails, r->fails == 1 ? "" : "s", run_s(r),
				   CMK_CRED_RELOAD_BOUND_MS / 1000, CMK_CRED_RELOAD_TRIES,
				   re->msg);
	return cmk_errf(e, code,
			"%s and reading the credentials again failed (%u time%s in %llu s; a file in the middle of a rotation?), so this is not taken as a revocation yet; it is once that has lasted %d s and %d checks: %s",
			what, r->fails, r->fails == 1 ? "" : "s", run_s(r),
			CMK_CRED_RELOAD_BOUND_MS / 1000, CMK_CRED_RELOAD_TRIES, re->msg);
}

void cmk_cred_reload_note(const struct cmk_cred_reload *r,
			  const struct cmk_err *re, char *buf, size_t size)
{
	snprintf(buf, size,
		 " (reading the credentials again has failed %u times over %llu s, so the rejection counts: %s)",
		 r->fails, run_s(r), re->msg);
}
