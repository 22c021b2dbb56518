// SPDX-License-Identifier: GPL-2.0
/*
 * allowcore.c - LD_PRELOAD shim for agent_core_dump_has_no_keys.
 * Test-only; never installed.
 *
 * The agent's first line of defence against core dumps is to make itself
 * undumpable (prctl(PR_SET_DUMPABLE, 0)) and to set RLIMIT_CORE to 0.  The
 * test first shows that this works (no core file at all).  To test the
 * second line of defence too - keys only in MADV_DONTDUMP memory and no
 * stray copies anywhere else - it runs the agent again with this shim,
 * which turns exactly those two calls into no-ops, so the kernel writes a
 * core file the test can search for key bytes.  Nothing else changes: the
 * agent's mlock/MADV_DONTDUMP/wipe code runs as in production.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

int prctl(int option, ...)
{
	unsigned long a[4];
	va_list ap;

	va_start(ap, option);
	for (int i = 0; i < 4; i++)
		a[i] = va_arg(ap, unsigned long);
	va_end(ap);
	if (option == PR_SET_DUMPABLE && a[0] == 0)
		return 0;
	return (int)syscall(SYS_prctl, option, a[0], a[1], a[2], a[3]);
}

int setrlimit(__rlimit_resource_t res, const struct rlimit *rl)
{
	if (res == RLIMIT_CORE)
		return 0;
	return (int)syscall(SYS_prlimit64, 0, res, rl, NULL);
}

int setrlimit64(__rlimit_resource_t res, const struct rlimit64 *rl)
{
	if (res == RLIMIT_CORE)
		return 0;
	return (int)syscall(SYS_prlimit64, 0, res, rl, NULL);
}
