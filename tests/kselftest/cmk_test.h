/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cmk_test.h - kselftest harness plus assertion helpers for the dm-cmk
 * kselftests.  The macros use _metadata and ASSERT_*.  They never log key
 * bytes (dm-crypt tables carry a key, so their text is not logged).
 */
#ifndef CMK_TEST_H
#define CMK_TEST_H

/*
 * kselftest_harness.h comes from Debian's linux-source at build time; its
 * SIGALRM handler has an unused parameter, which -Wextra -Werror refuses.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop

#include "cmk_lib.h"

#define CMK_LEASE_LONG	60000	/* ms; long enough never to expire in a test */

/* Start from a known state: no leftover test devices, dm-cmk loaded. */
#define CMK_SETUP_CLEAN() do {						\
	cmk_dm_cleanup();						\
	ASSERT_EQ(0, cmk_ensure_module())				\
		TH_LOG("dm_cmk module not loaded and modprobe failed");	\
} while (0)

#define ASSERT_NL_OPEN(nl) do {						\
	int __e = cmk_nl_open(nl);					\
	ASSERT_EQ(0, __e)						\
		TH_LOG("cannot resolve genl family " DM_CMK_GENL_NAME	\
		       ": %s", strerror(-__e));				\
} while (0)

/* Create a cmk device; the table holds no key, so it may be logged. */
#define ASSERT_CMK_CREATE(name, tbl) do {				\
	char __line[512], __out[1024], __mark[96], __why[256] = "";	\
	int __st;							\
	cmk_table_cmk(__line, sizeof(__line), (tbl));			\
	cmk_klog_mark(__mark, sizeof(__mark));				\
	__st = cmk_dm_create((name), __line, __out, sizeof(__out));	\
	if (__st)							\
		cmk_klog_cmk_error(__mark, __why, sizeof(__why));	\
	ASSERT_EQ(0, __st)						\
		TH_LOG("dmsetup create %s '%s' failed: %s [kernel: %s]",\
		       (name), __line, __out, __why);			\
} while (0)

/* Create a dm-crypt device: never log the table, it contains the key. */
#define ASSERT_CRYPT_CREATE(name, tbl, key) do {			\
	char __line[768], __out[1024];					\
	int __st;							\
	cmk_table_crypt(__line, sizeof(__line), (tbl), (key));		\
	__st = cmk_dm_create((name), __line, __out, sizeof(__out));	\
	memset(__line, 0, sizeof(__line));				\
	ASSERT_EQ(0, __st)						\
		TH_LOG("dmsetup create (dm-crypt) %s failed: %s",	\
		       (name), __out);					\
} while (0)

#define ASSERT_DM_REMOVE(name) do {					\
	ASSERT_EQ(0, cmk_dm_remove(name))				\
		TH_LOG("dmsetup remove %s failed", (name));		\
} while (0)

#define ASSERT_KEY_SET(nl, kname, key, lease, gen) do {		\
	char __ext[256];						\
	int __e = cmk_key_set((nl), (kname), (key), (lease), (gen),	\
			      __ext, sizeof(__ext));			\
	ASSERT_EQ(0, __e)						\
		TH_LOG("KEY_SET %s: %s (%s)", (kname), strerror(-__e),	\
		       __ext);						\
} while (0)

#define ASSERT_KEY_WIPE(nl, kname) do {					\
	char __ext[256];						\
	int __e = cmk_key_wipe((nl), (kname),				\
			       DM_CMK_REASON_REQUESTED, __ext,		\
			       sizeof(__ext));				\
	ASSERT_EQ(0, __e)						\
		TH_LOG("KEY_WIPE %s: %s (%s)", (kname), strerror(-__e),	\
		       __ext);						\
} while (0)

/* GET doit must succeed and report @st (enum dm_cmk_state). */
#define ASSERT_STATE(nl, kname, st) do {				\
	struct cmk_info __in;						\
	char __ext[256];						\
	int __e = cmk_get((nl), (kname), &__in, __ext, sizeof(__ext));	\
	ASSERT_EQ(0, __e)						\
		TH_LOG("GET %s: %s (%s)", (kname), strerror(-__e),	\
		       __ext);						\
	ASSERT_TRUE(__in.has_state)					\
		TH_LOG("GET %s: no DM_CMK_A_STATE", (kname));		\
	ASSERT_EQ((uint32_t)(st), __in.state)				\
		TH_LOG("GET %s: state %u, expected %u", (kname),	\
		       __in.state, (unsigned int)(st));			\
} while (0)

/* dmsetup status must parse and show state @word. */
#define ASSERT_STATUS_STATE(dmname, word) do {				\
	struct cmk_status __s;						\
	char __o[512];							\
	ASSERT_EQ(0, cmk_dm_status((dmname), __o, sizeof(__o)));	\
	ASSERT_EQ(0, cmk_status_parse(__o, &__s))			\
		TH_LOG("unparsable status of %s: '%s'", (dmname), __o);	\
	ASSERT_STREQ((word), __s.state);				\
} while (0)

#endif /* CMK_TEST_H */
