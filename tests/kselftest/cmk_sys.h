/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cmk_sys.h - system helpers for the dm-cmk tests that load the guest
 * (tests/kselftest/pressure_*, sleep_vmfork): programs started in the
 * background with a deadline, netlink calls timed in a child process,
 * memory cgroups, sysctls, /proc/vmstat, kernel log scans, and a
 * device-mapper status that needs no fork.
 *
 * A kernel that deadlocks leaves the caller of a dm-cmk command asleep in
 * D state for good.  So every call that may hang runs in a child process
 * that the test waits for with a deadline, and can walk away from: the
 * test then reports the hang instead of hanging with it.
 *
 * Functions return 0 (or a count) or a negative errno, like cmk_lib.h.
 */
#ifndef CMK_SYS_H
#define CMK_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The scratch disk tests/kselftest/pressure.sh gives its guest: /dev/vda,
 * a 1 GiB virtio-blk drive, so swap and I/O do not come out of guest RAM
 * as brd's would.  pressure_swap uses the first 768 MiB; the other
 * pressure tests run after it and use devices A and B behind it.
 */
#define CMK_VDISK		"/dev/vda"
#define CMK_VDISK_SWAP_SECTORS	(768ULL << 11)
#define CMK_VDISK_A_OFFSET	(768ULL << 11)
#define CMK_VDISK_A_SECTORS	(192ULL << 11)
#define CMK_VDISK_B_OFFSET	(960ULL << 11)
#define CMK_VDISK_B_SECTORS	(64ULL << 11)

/* ------------------------------------------------------------------ */
/* time, files, sysctls                                               */

uint64_t cmk_now_ns(void);			/* CLOCK_MONOTONIC */
int cmk_read_str(const char *path, char *buf, size_t sz);
int cmk_write_str(const char *path, const char *val);
int cmk_read_u64(const char *path, uint64_t *val);
/* A counter of /proc/vmstat ("pswpout", ...). */
int cmk_vmstat(const char *key, uint64_t *val);
/* "MemTotal" etc. of /proc/meminfo, in KiB. */
int cmk_meminfo_kb(const char *key, uint64_t *kb);
/* Is @name an executable in $PATH (or an absolute path)? */
bool cmk_have_tool(const char *name);
/* A number > 0 from the kernel command line ("cmk.pressure_s="), or @def. */
unsigned int cmk_cmdline_uint(const char *key, unsigned int def);

/* ------------------------------------------------------------------ */
/* background programs                                                */

/*
 * Start argv (NULL-terminated) with stdout and stderr appended to @log
 * (NULL: /dev/null), stdin from /dev/null, in the cgroup directory
 * @cgroup (NULL: the caller's) and with the normal scheduling policy even
 * if the caller runs SCHED_FIFO.  Returns the pid or -errno.
 */
pid_t cmk_spawn(const char *const argv[], const char *log,
		const char *cgroup);
/*
 * Wait up to @timeout_ms for @pid to exit; *status gets the wait status.
 * Returns 0, or -ETIMEDOUT while it still runs.
 */
int cmk_wait_pid(pid_t pid, unsigned int timeout_ms, int *status);
/*
 * SIGTERM, then SIGKILL after @grace_ms, then wait up to @grace_ms more.
 * Returns 0 once reaped, -ETIMEDOUT if even SIGKILL could not end it
 * (a task stuck in the kernel).
 */
int cmk_stop_pid(pid_t pid, unsigned int grace_ms);
/* Threads of @pid in state D (uninterruptible) right now. */
int cmk_threads_in_d(pid_t pid);
/*
 * Tasks whose kernel stack (/proc/PID/task/TID/stack) shows both @a and
 * @b right now, e.g. "mempool_alloc" and "[dm_cmk]": where the load has
 * put the kernel, for diagnostics.
 */
int cmk_stacks_with(const char *a, const char *b);
/* Run the calling process SCHED_FIFO at @prio (0: back to SCHED_OTHER). */
int cmk_set_rt(int prio);

/* ------------------------------------------------------------------ */
/* dm-cmk commands timed in a child process                           */

enum cmk_call_op {
	CMK_CALL_KEY_WIPE,		/* arg: reason */
	CMK_CALL_LEASE_RENEW,		/* arg: lease_ms */
};

/* Shared with the child: filled by it, read by the test. */
struct cmk_call_result {
	volatile int started;		/* socket open, waiting for go */
	volatile int done;
	int err;			/* 0 or the command's -errno */
	uint64_t t_send_ns;		/* just before the request was sent */
	uint64_t t_reply_ns;		/* just after its ack arrived */
	char ext[160];			/* extack message */
};

struct cmk_call {
	pid_t pid;
	int go_fd;			/* write end: one byte starts it */
	struct cmk_call_result *res;	/* MAP_SHARED */
};

/*
 * Fork a child that opens a dm-cmk netlink socket, waits for
 * cmk_call_go() and then sends one @op for key_name @name.  With
 * @rt_prio > 0 the child runs SCHED_FIFO at that priority, so CPU load
 * does not show up as command latency.  Returns 0 once the child is ready.
 */
int cmk_call_prepare(struct cmk_call *c, enum cmk_call_op op,
		     const char *name, uint32_t arg, int rt_prio);
int cmk_call_go(struct cmk_call *c);
/* Wait up to @timeout_ms for the reply: 0, or -ETIMEDOUT. */
int cmk_call_wait(struct cmk_call *c, unsigned int timeout_ms);
/*
 * Reap the child if it finished; a child stuck in the kernel is left
 * behind (it cannot be killed) and -EBUSY returned.
 */
int cmk_call_release(struct cmk_call *c);

/* ------------------------------------------------------------------ */
/* memory cgroups (v2)                                                */

/*
 * Make /sys/fs/cgroup/@name with memory.max = @max_bytes (mounting
 * cgroup2 and enabling the memory controller if needed); its path goes
 * to @path.
 */
int cmk_memcg_create(const char *name, uint64_t max_bytes, char *path,
		     size_t sz);
/* A counter of the cgroup's memory.events ("oom_kill", "max", ...). */
int cmk_memcg_event(const char *path, const char *key, uint64_t *val);
int cmk_memcg_destroy(const char *path);

/* ------------------------------------------------------------------ */
/* kernel log after a cmk_klog_mark()                                 */

/* Lines containing @needle; the first one goes to @first (may be NULL). */
int cmk_klog_grep(const char *mark, const char *needle, char *first,
		  size_t sz);
/*
 * OOM kills: how many, and the victims' names ("stress-ng-vm,fio") in
 * @names.
 */
int cmk_klog_oom_kills(const char *mark, char *names, size_t sz);
/* "blocked for more than" (hung task) reports. */
int cmk_klog_hung_tasks(const char *mark, char *first, size_t sz);

/* ------------------------------------------------------------------ */
/* device-mapper without dmsetup                                      */

/*
 * The status line of the first target of mapped device @name, through
 * the DM_TABLE_STATUS ioctl: no fork, no exec, no lock of dm-cmk's own,
 * so it can watch a device while a command on it is in progress.
 */
int cmk_dm_status_fast(const char *name, char *out, size_t sz);

#endif /* CMK_SYS_H */
