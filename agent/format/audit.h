/* SPDX-License-Identifier: GPL-2.0 */
/*
 * audit.h - one JSON line per key event, to a file and to syslog.
 *
 *   {"time":"2025-11-27T20:48:00.123Z","event":"kms_call","device":"pgtemp",
 *    "key_name":"pgtemp","provider":"local","key_ref":"/etc/cmk/cmk.key",
 *    "operation":"check","outcome":"failure","error_class":"definitive",
 *    "reason":"disabled","latency_ms":3,"request_id":"local-...",
 *    "message":"..."}
 *
 * The API takes only strings and numbers - no struct cmk_secret, no byte
 * buffers - so key material cannot reach the log through it.  Lines are
 * written with one write(2) on an O_APPEND descriptor; events marked
 * important (revocations, wipes, key installs) are fsync'd before the call
 * returns.
 */
#ifndef CMK_AUDIT_H
#define CMK_AUDIT_H

#include <stdbool.h>

#include "core/encctx.h"
#include "core/err.h"

struct cmk_audit;

/*
 * struct cmk_audit_event - one event; NULL strings are left out of the line
 * @event: kms_call, key_set, key_wipe, lease_renew, revoke, restore,
 *	rotation, header_write, ...
 * @operation: for kms_call: wrap, unwrap, check
 * @outcome: "success" or "failure"
 * @cls: error class of a failure (CMK_EC_NONE on success)
 * @reason: reason of a failure (CMK_R_NONE on success)
 * @latency_ms: negative to leave out
 * @message: free text, e.g. struct cmk_err.msg (never key bytes)
 * @important: fsync the line before returning
 * @context: an encryption context, written as a JSON object (key socket)
 * @has_peer: @peer_uid and @peer_pid are set (the key socket's caller)
 */
struct cmk_audit_event {
	const char *event;
	const char *device;
	const char *key_name;
	const char *provider;
	const char *key_ref;
	const char *operation;
	const char *outcome;
	enum cmk_err_class cls;
	enum cmk_reason reason;
	long latency_ms;
	const char *request_id;
	const char *message;
	bool important;
	const struct cmk_encctx *context;
	bool has_peer;
	long peer_uid;
	long peer_pid;
};

/*
 * cmk_audit_open() - open (create 0600) @path for appending; @path NULL
 * means syslog only.  @use_syslog also sends each line to syslog
 * (LOG_AUTHPRIV) under @ident.
 */
int cmk_audit_open(const char *path, bool use_syslog, const char *ident,
		   struct cmk_audit **a, struct cmk_err *e);
void cmk_audit_close(struct cmk_audit **a);

/* cmk_audit_log() - append one line; fails only if the file write fails. */
int cmk_audit_log(struct cmk_audit *a, const struct cmk_audit_event *ev,
		  struct cmk_err *e);

#endif /* CMK_AUDIT_H */
