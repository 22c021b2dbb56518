/* SPDX-License-Identifier: GPL-2.0 */
/*
 * err.h - the one error shape of the dm-cmk agent library.
 *
 * Every function that can fail returns 0 on success or a negative
 * errno-style code, and fills a caller-supplied struct cmk_err with a
 * message that says what failed, on which object, and what to do about it.
 * Errors coming from a KMS additionally carry a class (definitive or
 * transient) and a reason, which the agent uses to decide between revoking
 * at once and retrying within its grace period.
 *
 * Messages never contain key material: callers format only names, paths,
 * sizes and codes into them.
 */
#ifndef CMK_ERR_H
#define CMK_ERR_H

#include <stdbool.h>
#include <stdbool.h>
#include <stddef.h>

/* Room for a cloud's own explanation (an IAM denial with two ARNs). */
#define CMK_ERR_MSG_MAX 512

/**
 * enum cmk_err_class - how the caller should react to an error
 * @CMK_EC_NONE: no error recorded
 * @CMK_EC_LOCAL: not an answer from the KMS: bad input, I/O, memory,
 *	configuration.  Retrying does not help until something is fixed.
 * @CMK_EC_TRANSIENT: the KMS could not answer now (throttled, 5xx,
 *	timeout, network).  Retry with backoff within the grace period.
 * @CMK_EC_DEFINITIVE: the KMS (or the key owner) said no: disabled,
 *	destroyed, access denied, key not found, ciphertext rejected.
 *	Revoke at once.
 */
enum cmk_err_class {
	CMK_EC_NONE = 0,
	CMK_EC_LOCAL,
	CMK_EC_TRANSIENT,
	CMK_EC_DEFINITIVE,
};

/**
 * enum cmk_reason - why a KMS operation failed (drives the class)
 *
 * The table in err.c maps each reason to its class and errno code; a
 * provider only picks the reason.
 */
enum cmk_reason {
	CMK_R_NONE = 0,
	CMK_R_LOCAL,		/* not a KMS answer (see CMK_EC_LOCAL) */
	/* definitive */
	CMK_R_DISABLED,		/* key disabled by its owner */
	CMK_R_DESTROYED,	/* key destroyed or pending deletion */
	CMK_R_DENIED,		/* caller not authorised / policy deny */
	CMK_R_NOT_FOUND,	/* key does not exist (or cannot be read) */
	CMK_R_REVOKED,		/* key revoked (KMIP) */
	CMK_R_INVALID_CIPHERTEXT, /* wrapped key or AAD rejected */
	/* transient */
	CMK_R_THROTTLED,	/* rate limited */
	CMK_R_UNAVAILABLE,	/* 5xx, internal error, HSM busy */
	CMK_R_TIMEOUT,		/* no answer in time */
	CMK_R_NETWORK,		/* connection refused/reset, DNS, TLS */
	CMK_R__COUNT,
};

/**
 * struct cmk_err - error report filled by a failing function
 * @msg: human-readable message: what failed, on which object, what to do
 * @cls: how to react (meaningful for KMS operations)
 * @reason: why, for audit lines and metrics
 * @retry_after_ms: the KMS asked not to be called again for this long
 *	(HTTP Retry-After on a throttled answer); 0: it did not say
 * @kms_throttled: reason CMK_R_THROTTLED, and the answer that said so came
 *	from the KMS or identity endpoint (over TLS, or from this machine),
 *	not from a metadata service (plain HTTP on the VM's network, which
 *	whoever controls that network can answer)
 */
struct cmk_err {
	char msg[CMK_ERR_MSG_MAX];
	enum cmk_err_class cls;
	enum cmk_reason reason;
	unsigned int retry_after_ms;
	bool kms_throttled;
};

/*
 * cmk_errf() - record a local error and return @code (a negative errno).
 * If @code is not negative, -EINVAL is returned instead, so a caller can
 * always write "return cmk_errf(e, ...)" in a failure path.
 * @e may be NULL.
 */
int cmk_errf(struct cmk_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * cmk_err_kms() - record a KMS failure with @reason; class and return code
 * follow from the reason (e.g. CMK_R_DISABLED -> definitive, -EKEYREVOKED).
 */
int cmk_err_kms(struct cmk_err *e, enum cmk_reason reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* cmk_err_prefix() - prepend "<context>: " to an existing message. */
void cmk_err_prefix(struct cmk_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* cmk_err_clear() - reset @e to "no error". */
void cmk_err_clear(struct cmk_err *e);

/*
 * cmk_printable() - copy at most @len - 1 of the @n bytes at @in to @out,
 * NUL-terminated, each byte outside printable ASCII replaced by '?' (a
 * space too, unless @spaces): only printable ASCII from a KMS answer
 * reaches messages and audit lines.  @out may be @in; nothing is written
 * if @len is 0.
 */
void cmk_printable(const char *in, size_t n, char *out, size_t len,
		   bool spaces);

const char *cmk_err_class_name(enum cmk_err_class cls);
const char *cmk_reason_name(enum cmk_reason reason);
enum cmk_err_class cmk_reason_class(enum cmk_reason reason);

#endif /* CMK_ERR_H */
