/* SPDX-License-Identifier: GPL-2.0 */
/*
 * provider_settings.h - values of provider settings ([provider "name"] keys of
 * agent.conf, cmkctl --set): one parser per type, one wording of errors.
 */
#ifndef CMK_PROVIDER_SETTINGS_H
#define CMK_PROVIDER_SETTINGS_H

#include <stdbool.h>

#include "core/err.h"

/*
 * cmk_setting_long() - @v as a decimal in @lo..@hi; -ERANGE naming
 * "@who: @k" otherwise.
 */
int cmk_setting_long(const char *who, const char *k, const char *v, long lo,
		     long hi, long *out, struct cmk_err *e);

/* cmk_setting_bool() - yes/true/1 or no/false/0; -EINVAL otherwise. */
int cmk_setting_bool(const char *who, const char *k, const char *v, bool *out,
		     struct cmk_err *e);

/* cmk_env_nonempty() - the environment variable @n, or NULL if unset or "". */
const char *cmk_env_nonempty(const char *n);

#endif /* CMK_PROVIDER_SETTINGS_H */
