// SPDX-License-Identifier: GPL-2.0
/*
 * cmk_sys.c - system helpers for the tests that load the guest.  See
 * cmk_sys.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/dm-ioctl.h>

#include "cmk_lib.h"
#include "cmk_sys.h"

/* ------------------------------------------------------------------ */
/* time, files, sysctls                                               */

uint64_t cmk_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int cmk_read_str(const char *path, char *buf, size_t sz)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sz - 1);
	if (n < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	close(fd);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

unsigned int cmk_cmdline_uint(const char *key, unsigned int def)
{
	char cmdline[1024], *p, *end;
	unsigned long v;

	if (cmk_read_str("/proc/cmdline", cmdline, sizeof(cmdline)))
		return def;
	p = strstr(cmdline, key);
	if (!p)
		return def;
	p += strlen(key);
	if (*p < '0' || *p > '9')	/* strtoul takes "-1" and " 1" */
		return def;
	errno = 0;
	v = strtoul(p, &end, 10);
	if (errno || (*end && *end != ' ') || !v || v > UINT_MAX)
		return def;
	return v;
}

int cmk_write_str(const char *path, const char *val)
{
	size_t len = strlen(val);
	ssize_t n;
	int fd;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	if (n < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	close(fd);
	return (size_t)n == len ? 0 : -EIO;
}

int cmk_read_u64(const char *path, uint64_t *val)
{
	char buf[64], *end;
	int err = cmk_read_str(path, buf, sizeof(buf));

	if (err)
		return err;
	errno = 0;
	*val = strtoull(buf, &end, 10);
	return errno || end == buf ? -EINVAL : 0;
}

/* "key value" or "key: value [kB]" lines of a /proc file. */
static int proc_field(const char *path, const char *key, uint64_t *val)
{
	size_t klen = strlen(key);
	char line[256];
	FILE *f;
	int err = -ENOENT;

	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		const char *p = line + klen;

		if (strncmp(line, key, klen) || (*p != ' ' && *p != ':'))
			continue;
		while (*p == ' ' || *p == ':')
			p++;
		*val = strtoull(p, NULL, 10);
		err = 0;
		break;
	}
	fclose(f);
	return err;
}

int cmk_vmstat(const char *key, uint64_t *val)
{
	return proc_field("/proc/vmstat", key, val);
}

int cmk_meminfo_kb(const char *key, uint64_t *kb)
{
	return proc_field("/proc/meminfo", key, kb);
}

bool cmk_have_tool(const char *name)
{
	char path[PATH_MAX], *dirs, *dir, *save = NULL;
	const char *env = getenv("PATH");
	bool found = false;

	if (strchr(name, '/'))
		return access(name, X_OK) == 0;
	dirs = strdup(env ? env : "/usr/sbin:/usr/bin:/sbin:/bin");
	if (!dirs)
		return false;
	for (dir = strtok_r(dirs, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		found = access(path, X_OK) == 0;
	}
	free(dirs);
	return found;
}

/* ------------------------------------------------------------------ */
/* background programs                                                */

pid_t cmk_spawn(const char *const argv[], const char *log,
		const char *cgroup)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		struct sched_param sp = { 0 };
		int in = open("/dev/null", O_RDONLY);
		int out = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644) :
				open("/dev/null", O_WRONLY);
		char procs[PATH_MAX], me[32];

		if (in < 0 || out < 0)
			_exit(126);
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		sched_setscheduler(0, SCHED_OTHER, &sp);
		if (cgroup) {
			snprintf(procs, sizeof(procs), "%s/cgroup.procs",
				 cgroup);
			snprintf(me, sizeof(me), "%d", getpid());
			if (cmk_write_str(procs, me))
				_exit(125);
		}
		setenv("DM_DISABLE_UDEV", "1", 1);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

int cmk_wait_pid(pid_t pid, unsigned int timeout_ms, int *status)
{
	uint64_t deadline = cmk_now_ms() + timeout_ms;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid) {
			if (status)
				*status = st;
			return 0;
		}
		if (r < 0 && errno != EINTR)
			return -errno;
		if (cmk_now_ms() >= deadline)
			return -ETIMEDOUT;
		cmk_sleep_ms(20);
	}
}

int cmk_stop_pid(pid_t pid, unsigned int grace_ms)
{
	if (cmk_wait_pid(pid, 0, NULL) == 0)
		return 0;
	kill(pid, SIGTERM);
	if (cmk_wait_pid(pid, grace_ms, NULL) == 0)
		return 0;
	kill(pid, SIGKILL);
	return cmk_wait_pid(pid, grace_ms, NULL);
}

int cmk_threads_in_d(pid_t pid)
{
	char path[96], stat[512], *p;
	struct dirent *te;
	DIR *task;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	task = opendir(path);
	if (!task)
		return -errno;
	while ((te = readdir(task))) {
		if (te->d_name[0] < '1' || te->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/stat", pid,
			 te->d_name);
		if (cmk_read_str(path, stat, sizeof(stat)))
			continue;
		/* "tid (comm) S ...": the state follows the last ')'. */
		p = strrchr(stat, ')');
		if (p && p[1] == ' ' && p[2] == 'D')
			n++;
	}
	closedir(task);
	return n;
}

int cmk_stacks_with(const char *a, const char *b)
{
	char path[96], stack[4096];
	struct dirent *pe, *te;
	DIR *proc, *task;
	int n = 0;

	proc = opendir("/proc");
	if (!proc)
		return -errno;
	while ((pe = readdir(proc))) {
		if (pe->d_name[0] < '1' || pe->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%.16s/task", pe->d_name);
		task = opendir(path);
		if (!task)
			continue;
		while ((te = readdir(task))) {
			if (te->d_name[0] < '1' || te->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%.16s/task/%.16s/stack",
				 pe->d_name, te->d_name);
			if (cmk_read_str(path, stack, sizeof(stack)))
				continue;
			if (strstr(stack, a) && strstr(stack, b))
				n++;
		}
		closedir(task);
	}
	closedir(proc);
	return n;
}

int cmk_set_rt(int prio)
{
	struct sched_param sp = { .sched_priority = prio };

	if (sched_setscheduler(0, prio > 0 ? SCHED_FIFO : SCHED_OTHER, &sp))
		return -errno;
	return 0;
}

/* ------------------------------------------------------------------ */
/* dm-cmk commands timed in a child process                           */

static void call_child(struct cmk_call_result *res, int go_fd,
		       enum cmk_call_op op, const char *name, uint32_t arg,
		       int rt_prio)
{
	struct cmk_nl nl;
	char go;
	int err;

	if (rt_prio > 0)
		cmk_set_rt(rt_prio);
	err = cmk_nl_open(&nl);
	if (err) {
		res->err = err;
		res->done = 1;
		res->started = 1;
		_exit(1);
	}
	res->started = 1;
	if (read(go_fd, &go, 1) != 1)
		_exit(1);
	res->t_send_ns = cmk_now_ns();
	if (op == CMK_CALL_KEY_WIPE)
		err = cmk_key_wipe(&nl, name, arg, res->ext, sizeof(res->ext));
	else
		err = cmk_lease_renew(&nl, name, arg, res->ext,
				      sizeof(res->ext));
	res->t_reply_ns = cmk_now_ns();
	res->err = err;
	__atomic_store_n(&res->done, 1, __ATOMIC_RELEASE);
	cmk_nl_close(&nl);
	_exit(0);
}

int cmk_call_prepare(struct cmk_call *c, enum cmk_call_op op,
		     const char *name, uint32_t arg, int rt_prio)
{
	uint64_t deadline;
	int p[2];

	memset(c, 0, sizeof(*c));
	c->pid = -1;
	c->go_fd = -1;
	c->res = mmap(NULL, sizeof(*c->res), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c->res == MAP_FAILED) {
		c->res = NULL;
		return -errno;
	}
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	fflush(stdout);
	fflush(stderr);
	c->pid = fork();
	if (c->pid < 0) {
		int err = -errno;

		close(p[0]);
		close(p[1]);
		return err;
	}
	if (c->pid == 0) {
		close(p[1]);
		call_child(c->res, p[0], op, name, arg, rt_prio);
	}
	close(p[0]);
	c->go_fd = p[1];
	deadline = cmk_now_ms() + 30000;
	while (!__atomic_load_n(&c->res->started, __ATOMIC_ACQUIRE)) {
		if (cmk_now_ms() > deadline)
			return -ETIMEDOUT;
		cmk_sleep_ms(1);
	}
	return c->res->done ? c->res->err : 0;
}

int cmk_call_go(struct cmk_call *c)
{
	if (write(c->go_fd, "g", 1) != 1)
		return -errno;
	return 0;
}

int cmk_call_wait(struct cmk_call *c, unsigned int timeout_ms)
{
	uint64_t deadline = cmk_now_ns() + (uint64_t)timeout_ms * 1000000ULL;

	while (!__atomic_load_n(&c->res->done, __ATOMIC_ACQUIRE)) {
		if (cmk_now_ns() >= deadline)
			return -ETIMEDOUT;
		usleep(200);
	}
	return 0;
}

int cmk_call_release(struct cmk_call *c)
{
	int ret = 0;

	if (c->go_fd >= 0)
		close(c->go_fd);
	c->go_fd = -1;
	if (c->pid > 0) {
		if (c->res && !c->res->started)
			kill(c->pid, SIGKILL);
		/* A child stuck in the kernel is left to init. */
		if (cmk_wait_pid(c->pid, 2000, NULL))
			ret = -EBUSY;
	}
	c->pid = -1;
	if (c->res)
		munmap(c->res, sizeof(*c->res));
	c->res = NULL;
	return ret;
}

/* ------------------------------------------------------------------ */
/* memory cgroups (v2)                                                */

#define CGROOT "/sys/fs/cgroup"

int cmk_memcg_create(const char *name, uint64_t max_bytes, char *path,
		     size_t sz)
{
	char file[PATH_MAX], val[32], ctl[256];
	int err;

	if (cmk_read_str(CGROOT "/cgroup.controllers", ctl, sizeof(ctl))) {
		mkdir(CGROOT, 0755);
		if (mount("none", CGROOT, "cgroup2", 0, NULL))
			return -errno;
		err = cmk_read_str(CGROOT "/cgroup.controllers", ctl,
				   sizeof(ctl));
		if (err)
			return err;
	}
	if (!strstr(ctl, "memory"))
		return -EOPNOTSUPP;
	err = cmk_write_str(CGROOT "/cgroup.subtree_control", "+memory");
	if (err)
		return err;
	snprintf(path, sz, CGROOT "/%s", name);
	if (mkdir(path, 0755) && errno != EEXIST)
		return -errno;
	snprintf(file, sizeof(file), "%s/memory.max", path);
	snprintf(val, sizeof(val), "%llu", (unsigned long long)max_bytes);
	err = cmk_write_str(file, val);
	if (err)
		return err;
	/* No swap for the cgroup: its pressure stays on the page cache. */
	snprintf(file, sizeof(file), "%s/memory.swap.max", path);
	cmk_write_str(file, "0");
	return 0;
}

int cmk_memcg_event(const char *path, const char *key, uint64_t *val)
{
	char file[PATH_MAX];

	snprintf(file, sizeof(file), "%s/memory.events", path);
	return proc_field(file, key, val);
}

int cmk_memcg_destroy(const char *path)
{
	uint64_t deadline = cmk_now_ms() + 5000;

	/* The cgroup empties once its last task is reaped. */
	while (rmdir(path)) {
		if (errno == ENOENT)
			return 0;
		if (errno != EBUSY || cmk_now_ms() > deadline)
			return -errno;
		cmk_sleep_ms(50);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* kernel log after a cmk_klog_mark()                                 */

int cmk_klog_grep(const char *mark, const char *needle, char *first,
		  size_t sz)
{
	char *log = cmk_klog_since(mark), *line, *save = NULL;
	int n = 0;

	if (first && sz)
		first[0] = '\0';
	if (!log)
		return -ENOENT;
	for (line = strtok_r(log, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strstr(line, needle))
			continue;
		if (!n && first && sz)
			snprintf(first, sz, "%s", line);
		n++;
	}
	free(log);
	return n;
}

int cmk_klog_oom_kills(const char *mark, char *names, size_t sz)
{
	char *log = cmk_klog_since(mark), *line, *save = NULL;
	size_t used = 0;
	int n = 0;

	if (names && sz)
		names[0] = '\0';
	if (!log)
		return -ENOENT;
	for (line = strtok_r(log, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		/*
		 * "Out of memory: Killed process 123 (name) total-vm:...",
		 * also after "Memory cgroup out of memory:".
		 */
		char *p = strstr(line, "Killed process ");
		char *o, *c;

		if (!p)
			continue;
		n++;
		o = strchr(p, '(');
		c = o ? strchr(o, ')') : NULL;
		if (names && o && c && used + (size_t)(c - o) + 2 < sz) {
			used += (size_t)snprintf(names + used, sz - used,
						 "%s%.*s", used ? "," : "",
						 (int)(c - o - 1), o + 1);
		}
	}
	free(log);
	return n;
}

int cmk_klog_hung_tasks(const char *mark, char *first, size_t sz)
{
	return cmk_klog_grep(mark, "blocked for more than", first, sz);
}

/* ------------------------------------------------------------------ */
/* device-mapper without dmsetup                                      */

int cmk_dm_status_fast(const char *name, char *out, size_t sz)
{
	union {
		struct dm_ioctl dmi;
		char buf[16384];
	} u;
	struct dm_target_spec *spec;
	int fd, err = 0;

	memset(&u.dmi, 0, sizeof(u.dmi));
	u.dmi.version[0] = DM_VERSION_MAJOR;
	u.dmi.version[1] = 0;
	u.dmi.version[2] = 0;
	u.dmi.data_size = sizeof(u.buf);
	u.dmi.data_start = sizeof(struct dm_ioctl);
	snprintf(u.dmi.name, sizeof(u.dmi.name), "%s", name);

	fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, DM_TABLE_STATUS, &u.dmi))
		err = -errno;
	close(fd);
	if (err)
		return err;
	if (u.dmi.flags & DM_BUFFER_FULL_FLAG)
		return -EOVERFLOW;
	if (!u.dmi.target_count)
		return -ENODATA;
	spec = (struct dm_target_spec *)(u.buf + u.dmi.data_start);
	snprintf(out, sz, "%llu %llu %.*s %s",
		 (unsigned long long)spec->sector_start,
		 (unsigned long long)spec->length,
		 (int)sizeof(spec->target_type), spec->target_type,
		 (const char *)(spec + 1));
	return 0;
}
