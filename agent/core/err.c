// SPDX-License-Identifier: GPL-2.0
/*
 * err.c - error reports (see err.h).
 */
#include "core/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	enum cmk_err_class cls;
	int code;
} reasons[CMK_R__COUNT] = {
	[CMK_R_NONE]		   = { "none",		     CMK_EC_NONE,	0 },
	[CMK_R_LOCAL]		   = { "local",		     CMK_EC_LOCAL,	-EINVAL },
	[CMK_R_DISABLED]	   = { "disabled",	     CMK_EC_DEFINITIVE, -EKEYREVOKED },
	[CMK_R_DESTROYED]	   = { "destroyed",	     CMK_EC_DEFINITIVE, -EKEYREVOKED },
	[CMK_R_DENIED]		   = { "denied",	     CMK_EC_DEFINITIVE, -EACCES },
	[CMK_R_NOT_FOUND]	   = { "not_found",	     CMK_EC_DEFINITIVE, -ENOKEY },
	[CMK_R_REVOKED]		   = { "revoked",	     CMK_EC_DEFINITIVE, -EKEYREVOKED },
	[CMK_R_INVALID_CIPHERTEXT] = { "invalid_ciphertext", CMK_EC_DEFINITIVE, -EBADMSG },
	[CMK_R_THROTTLED]	   = { "throttled",	     CMK_EC_TRANSIENT,	-EAGAIN },
	[CMK_R_UNAVAILABLE]	   = { "unavailable",	     CMK_EC_TRANSIENT,	-EAGAIN },
	[CMK_R_TIMEOUT]		   = { "timeout",	     CMK_EC_TRANSIENT,	-ETIMEDOUT },
	[CMK_R_NETWORK]		   = { "network",	     CMK_EC_TRANSIENT,	-ENETUNREACH },
};

static void vfill(struct cmk_err *e, const char *fmt, va_list ap)
{
	int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);

	if (n < 0)
		snprintf(e->msg, sizeof(e->msg), "(unformattable error message)");
}

int cmk_errf(struct cmk_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (code >= 0)
		code = -EINVAL;
	if (!e)
		return code;
	va_start(ap, fmt);
	vfill(e, fmt, ap);
	va_end(ap);
	e->cls = CMK_EC_LOCAL;
	e->reason = CMK_R_LOCAL;
	e->retry_after_ms = 0;
	e->kms_throttled = false;
	return code;
}

int cmk_err_kms(struct cmk_err *e, enum cmk_reason reason, const char *fmt, ...)
{
	va_list ap;

	if (reason <= CMK_R_NONE || reason >= CMK_R__COUNT)
		reason = CMK_R_LOCAL;
	if (e) {
		va_start(ap, fmt);
		vfill(e, fmt, ap);
		va_end(ap);
		e->cls = reasons[reason].cls;
		e->reason = reason;
		e->retry_after_ms = 0;
		e->kms_throttled = false;
	}
	return reasons[reason].code;
}

static void append(char *dst, size_t size, const char *src, bool first)
{
	size_t dl = first ? 0 : strlen(dst);
	size_t sl = strlen(src);

	if (sl > size - 1 - dl)
		sl = size - 1 - dl;
	memcpy(dst + dl, src, sl);
	dst[dl + sl] = '\0';
}

void cmk_err_prefix(struct cmk_err *e, const char *fmt, ...)
{
	char pre[CMK_ERR_MSG_MAX];
	char old[CMK_ERR_MSG_MAX];
	va_list ap;

	if (!e)
		return;
	va_start(ap, fmt);
	if (vsnprintf(pre, sizeof(pre), fmt, ap) < 0)
		pre[0] = '\0';
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	/* Truncation is fine: the front of the message matters most. */
	append(e->msg, sizeof(e->msg), pre, true);
	append(e->msg, sizeof(e->msg), ": ", false);
	append(e->msg, sizeof(e->msg), old, false);
}

void cmk_err_clear(struct cmk_err *e)
{
	if (!e)
		return;
	e->msg[0] = '\0';
	e->cls = CMK_EC_NONE;
	e->reason = CMK_R_NONE;
	e->retry_after_ms = 0;
	e->kms_throttled = false;
}

const char *cmk_err_class_name(enum cmk_err_class cls)
{
	switch (cls) {
	case CMK_EC_NONE:
		return "none";
	case CMK_EC_LOCAL:
		return "local";
	case CMK_EC_TRANSIENT:
		return "transient";
	case CMK_EC_DEFINITIVE:
		return "definitive";
	}
	return "unknown";
}

const char *cmk_reason_name(enum cmk_reason reason)
{
	if (reason < 0 || reason >= CMK_R__COUNT)
		return "unknown";
	return reasons[reason].name;
}

enum cmk_err_class cmk_reason_class(enum cmk_reason reason)
{
	if (reason < 0 || reason >= CMK_R__COUNT)
		return CMK_EC_LOCAL;
	return reasons[reason].cls;
}

void cmk_printable(const char *in, size_t n, char *out, size_t len,
		   bool spaces)
{
	if (!len)
		return;
	if (n >= len)
		n = len - 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		out[i] = (c > ' ' || (spaces && c == ' ')) && c < 0x7f ? (char)c : '?';
	}
	out[n] = '\0';
}
