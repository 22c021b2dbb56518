/* SPDX-License-Identifier: GPL-2.0 */
/*
 * provider_util.h - steps the cloud providers (aws, azure, gcp and their
 * auth) share, written once: what an HTTP status says when the answer's
 * body named no error the provider knows.
 */
#ifndef CMK_PROVIDER_UTIL_H
#define CMK_PROVIDER_UTIL_H

#include "core/err.h"

/*
 * cmk_http_status_reason() - the reason an HTTP error status gives on its
 * own: 429 throttled; 5xx unavailable; 401 and 403 denied; 3xx a network
 * fault (a redirecting proxy or captive portal, never the KMS); any other
 * a local error (a request the KMS found malformed).  Providers ask it
 * last, after the codes in the body and their own statuses.
 */
enum cmk_reason cmk_http_status_reason(long status);

#endif /* CMK_PROVIDER_UTIL_H */
