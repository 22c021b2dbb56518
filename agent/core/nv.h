/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nv.h - a name and a value: one HTTP header or one query parameter
 * (raw, not encoded), shared by the HTTP client and the request signers.
 */
#ifndef CMK_NV_H
#define CMK_NV_H

struct cmk_nv {
	const char *name;
	const char *value;
};

#endif /* CMK_NV_H */
