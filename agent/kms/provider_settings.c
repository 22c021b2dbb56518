// SPDX-License-Identifier: GPL-2.0
/*
 * provider_settings.c - values of provider settings (see provider_settings.h).
 */
#include "kms/provider_settings.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cmk_setting_long(const char *who, const char *k, const char *v, long lo,
		     long hi, long *out, struct cmk_err *e)
{
	char *end;
	long x;

	errno = 0;
	x = strtol(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi)
		return cmk_errf(e, -ERANGE, "%s: %s = \"%s\" is out of range %ld..%ld",
				who, k, v, lo, hi);
	*out = x;
	return 0;
}

int cmk_setting_bool(const char *who, const char *k, const char *v, bool *out,
		     struct cmk_err *e)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0")) {
		*out = false;
		return 0;
	}
	return cmk_errf(e, -EINVAL, "%s: %s = \"%s\" is not yes or no", who, k, v);
}

const char *cmk_env_nonempty(const char *n)
{
	const char *v = getenv(n);

	return v && *v ? v : NULL;
}
