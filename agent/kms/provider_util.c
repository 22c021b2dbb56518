// SPDX-License-Identifier: GPL-2.0
/*
 * provider_util.c - steps the cloud providers share (see provider_util.h).
 */
#include "kms/provider_util.h"

enum cmk_reason cmk_http_status_reason(long status)
{
	if (status == 429)
		return CMK_R_THROTTLED;
	if (status >= 500)
		return CMK_R_UNAVAILABLE;
	if (status == 401 || status == 403)
		return CMK_R_DENIED;
	if (status >= 300 && status < 400)
		return CMK_R_NETWORK;	/* a redirecting proxy or portal */
	return CMK_R_LOCAL;
}
