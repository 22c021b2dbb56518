// SPDX-License-Identifier: GPL-2.0
/*
 * kfuzz - a seeded, reproducible fuzzer for the dm-cmk kernel module, run
 * inside the test guest (tests/kselftest/kfuzz.sh boots it).
 *
 *   kfuzz [--seed N] [--seconds N] [--no-minimize]
 *   kfuzz --replay FILE [--minimize]
 *
 * Without options they come from the kernel command line:
 * cmk.kfuzz_seed=N cmk.kfuzz_seconds=N cmk.kfuzz_replay=FILE
 * cmk.kfuzz_minimize=1.
 *
 * It runs operations drawn from the seed (kfuzz_ops.c) while one
 * O_DIRECT writer/verifier per device runs (kfuzz_io.c), and writes each
 * operation to the kernel log ("kfuzz: op <n> <sub-seed> ...") before it
 * runs it, so a guest that dies still leaves its sequence on the console.
 *
 * Oracles, each a KTAP result:
 *   kernel_fuzz_no_kernel_splat     no BUG/WARNING/KASAN/lockdep/UBSAN/
 *                                   hung-task/Oops line in the kernel log
 *   kernel_fuzz_no_verify_mismatch  data written through a device reads
 *                                   back the same while its mapping (and
 *                                   so its key) did not change
 *   kernel_fuzz_every_syscall_returned  no operation or I/O took longer
 *                                   than KF_HANG_MS
 *   kernel_fuzz_module_unload       after removing its devices, dm_cmk
 *                                   unloads (no leaked reference)
 *   kernel_fuzz_ops_ran             operations ran and the verifier
 *                                   compared data (so it could fail)
 *
 * A finding prints the seed and the operation log; a finding that left
 * the kernel usable is then minimized here (delta debugging over the
 * recorded operations, each trial in a fresh child after a reset) and the
 * shortest sequence printed.  A replay file holds lines "op <n> <sub>".
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmk_lib.h"
#include "kfuzz.h"

/* An operation or an I/O that takes this long is a hang (generous: TCG). */
#define KF_HANG_MS		120000
#define KF_MAX_OPS		(1U << 20)
#define KF_MINIMIZE_BUDGET_MS	600000
/*
 * A replay (and each minimizer trial) waits this long after each
 * operation, so that the verifier's I/O falls between operations as it
 * did in the run, where other operations separated them.
 */
#define KF_REPLAY_PACE_MS	50

struct kf_slot kf_slots[KF_SLOTS];

enum kf_finding {
	KF_NONE,
	KF_SPLAT,
	KF_MISMATCH,
	KF_HANG,
	KF_UNLOAD,
};

static const char *finding_name[] = {
	"none", "kernel splat", "verify mismatch", "hang", "module unload",
};

struct kf_rec {
	uint32_t idx;
	uint64_t sub;
};

static struct kf_rec *ops;
static uint32_t nops;
static uint64_t run_seed;
static int kmsg_fd = -1;
static char finding_text[512];

/* What the watchdog sees. */
static _Atomic uint64_t op_since;	/* ms, 0 when no operation runs */
static _Atomic uint32_t op_cur;
static atomic_bool watchdog_on;

/* ------------------------------------------------------------------ */
/* kernel log                                                         */

static const char *splat_words[] = {
	"WARNING:", "BUG:", "Oops", "Kernel panic", "general protection fault",
	"lockdep", "possible circular locking", "KASAN", "UBSAN", "hung_task",
	"blocked for more than", "soft lockup", "self-detected stall",
	"rcu: INFO", "kmemleak", "list_add corruption", "list_del corruption",
};

static void klog_write(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void klog_write(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "<6>kfuzz: ");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (write(kmsg_fd, line, strlen(line)) < 0) {
		/* the log is an aid; the run goes on without it */
	}
}

static int klog_open(void)
{
	kmsg_fd = open("/dev/kmsg", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (kmsg_fd < 0)
		return -errno;
	lseek(kmsg_fd, 0, SEEK_END);
	return 0;
}

/* Read what the kernel logged since the last call; 1 on a splat. */
static int klog_check(char *what, size_t sz)
{
	char rec[8192];

	for (;;) {
		ssize_t n = read(kmsg_fd, rec, sizeof(rec) - 1);
		const char *msg;
		size_t i;

		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records: skip them */
		if (n <= 0)
			return 0;
		rec[n] = '\0';
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		if (!strncmp(msg, "kfuzz: ", 7) || strstr(msg, "cmk-guest: "))
			continue;
		for (i = 0; i < sizeof(splat_words) / sizeof(splat_words[0]); i++) {
			if (strstr(msg, splat_words[i])) {
				snprintf(what, sz, "%.*s", (int)strcspn(msg, "\n"),
					 msg);
				return 1;
			}
		}
	}
}

/* ------------------------------------------------------------------ */
/* watchdog                                                           */

static void print_results(enum kf_finding f, uint64_t nran, bool verified,
			  int unloaded);

static void print_log(const struct kf_rec *r, uint32_t n, const char *title)
{
	char desc[1024];
	uint32_t i;

	printf("# kfuzz: %s (%u ops, seed %" PRIu64 ", generator %u):\n",
	       title, n, run_seed, KF_GEN_VERSION);
	for (i = 0; i < n; i++) {
		kf_op_describe(r[i].sub, desc, sizeof(desc));
		printf("#   op %u %016" PRIx64 " %s\n", r[i].idx, r[i].sub, desc);
	}
	fflush(stdout);
}

/*
 * For a hang report: where each of our threads is in the kernel (its
 * /proc stack, one line), and the blocked tasks of the whole guest on the
 * console (sysrq w), so a hang seen only in CI can be read from its log.
 */
static void print_thread_stacks(void)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *de;
	int fd;

	while (dir && (de = readdir(dir))) {
		char path[300], buf[4096], comm[64] = "?", *p;
		ssize_t n;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		f = fopen(path, "r");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		snprintf(path, sizeof(path), "/proc/self/task/%s/stack", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		if (n < 0)
			n = 0;
		buf[n] = '\0';
		/* its "[<0>] func+0x1/0x2" lines, on one line */
		for (p = buf; *p; p++)
			if (*p == '\n')
				*p = ' ';
		printf("# kfuzz: stack of thread %s (%s): %s\n", de->d_name,
		       comm, n ? buf : "(none)");
	}
	if (dir)
		closedir(dir);
	fflush(stdout);
	fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "w", 1) < 0) {
			/* the console dump is an aid only */
		}
		close(fd);
	}
}

static void *watchdog_main(void *arg)
{
	(void)arg;
	while (atomic_load(&watchdog_on)) {
		uint64_t now = cmk_now_ms(), since = atomic_load(&op_since);
		char what[128] = "";
		uint64_t io = kf_io_busy_since(what, sizeof(what));

		if ((since && now - since > KF_HANG_MS) ||
		    (io && now - io > KF_HANG_MS)) {
			if (since && now - since > KF_HANG_MS)
				snprintf(finding_text, sizeof(finding_text),
					 "op %u has not returned after %" PRIu64 " ms",
					 atomic_load(&op_cur), now - since);
			else
				snprintf(finding_text, sizeof(finding_text),
					 "%s has not returned after %" PRIu64 " ms",
					 what, now - io);
			printf("# kfuzz: FINDING (hang): %s\n", finding_text);
			klog_write("FINDING (hang): %s\n", finding_text);
			print_thread_stacks();
			/* after the stacks: a dm ioctl may block here too */
			kf_print_slots();
			print_log(ops, nops, "operation log up to the hang");
			print_results(KF_HANG, nops, false, -1);
			/*
			 * A thread stuck in the kernel cannot be joined, and
			 * the process cannot exit while one waits for a
			 * suspended device: resume them, so that the guest
			 * ends now instead of at its timeout.
			 */
			kf_resume_all();
			_exit(1);
		}
		cmk_sleep_ms(1000);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* one sequence                                                       */

/*
 * Run operations (the seed's, for @seconds, when @replay is NULL; else
 * the @n of @replay) with the I/O threads.  Stops at the first finding.
 */
static enum kf_finding run_sequence(const struct kf_rec *replay, uint32_t n,
				    unsigned int seconds, bool verbose)
{
	uint64_t start = cmk_now_ms(), minute_start = start;
	uint64_t end = start + (uint64_t)seconds * 1000;
	uint64_t per_class[KF_OP_CLASSES] = { 0 }, minute_ops = 0;
	uint64_t op_start, took, slowest_ms = 0;
	uint32_t slowest_idx = 0;
	char slowest_desc[200] = "";
	enum kf_finding f = KF_NONE;
	unsigned int minute = 0;
	char desc[1024];
	uint32_t i;

	nops = 0;
	for (i = 0; replay ? i < n : cmk_now_ms() < end; i++) {
		struct kf_rec r;
		enum kf_op_class c;

		if (nops >= KF_MAX_OPS)
			break;
		r.idx = replay ? replay[i].idx : i;
		r.sub = replay ? replay[i].sub : kf_op_seed(run_seed, i);
		ops[nops++] = r;
		/* the minimizer's trials would bury the run's own log */
		if (verbose) {
			kf_op_describe(r.sub, desc, sizeof(desc));
			klog_write("op %u %016" PRIx64 " %s\n", r.idx, r.sub, desc);
		}
		atomic_store(&op_cur, r.idx);
		op_start = cmk_now_ms();
		atomic_store(&op_since, op_start);
		c = kf_op_run(r.sub, desc, sizeof(desc));
		atomic_store(&op_since, 0);
		took = cmk_now_ms() - op_start;
		if (took > slowest_ms) {
			slowest_ms = took;
			slowest_idx = r.idx;
			snprintf(slowest_desc, sizeof(slowest_desc), "%.150s", desc);
		}
		if (replay)
			cmk_sleep_ms(KF_REPLAY_PACE_MS);
		per_class[c]++;
		minute_ops++;
		if (klog_check(finding_text, sizeof(finding_text))) {
			f = KF_SPLAT;
			break;
		}
		if (kf_io_mismatch()[0]) {
			snprintf(finding_text, sizeof(finding_text), "%s",
				 kf_io_mismatch());
			f = KF_MISMATCH;
			break;
		}
		if (verbose && cmk_now_ms() - minute_start >= 60000) {
			struct kf_io_stats st;

			kf_io_get_stats(&st);
			printf("# kfuzz: minute %u: %" PRIu64 " ops/min (netlink %" PRIu64
			       ", dm %" PRIu64 ", other %" PRIu64 "); io so far: %" PRIu64
			       " writes, %" PRIu64 " reads, %" PRIu64 " verified, %" PRIu64
			       " errors\n", ++minute, minute_ops,
			       per_class[KF_OP_NETLINK], per_class[KF_OP_DM],
			       per_class[KF_OP_OTHER], st.writes, st.reads,
			       st.verified, st.io_errors);
			fflush(stdout);
			memset(per_class, 0, sizeof(per_class));
			minute_ops = 0;
			minute_start = cmk_now_ms();
		}
	}
	if (f == KF_NONE) {
		/* let I/O under the last operations finish, then look again */
		cmk_sleep_ms(500);
		if (klog_check(finding_text, sizeof(finding_text)))
			f = KF_SPLAT;
		else if (kf_io_mismatch()[0]) {
			snprintf(finding_text, sizeof(finding_text), "%s",
				 kf_io_mismatch());
			f = KF_MISMATCH;
		}
	}
	if (verbose) {
		uint64_t ms = cmk_now_ms() - start;

		printf("# kfuzz: %u ops in %.1f s: %.0f ops/min\n", nops,
		       (double)ms / 1000, ms ? (double)nops * 60000 / (double)ms : 0);
		/* how close the run came to the hang bound (KF_HANG_MS) */
		printf("# kfuzz: slowest op %" PRIu64 " ms (op %u: %s); slowest I/O %" PRIu64 " ms; hang bound %u ms\n",
		       slowest_ms, slowest_idx, slowest_desc,
		       kf_io_slowest_ms(), KF_HANG_MS);
	}
	return f;
}

/* Remove the devices and unload dm_cmk; 0, or -errno of the unload. */
static int unload_module(void)
{
	int err, tries;

	for (tries = 0; tries < 20; tries++) {
		err = cmk_module_unload("dm_cmk");
		if (!err || err == -ENOENT)
			return 0;
		cmk_sleep_ms(250);
	}
	return err;
}

/*
 * One trial of the minimizer, in a child: a fresh module, the @n
 * operations with the I/O threads, then the same oracles.  Exit status 1
 * when the trial shows @want.
 */
static bool trial_fails(const struct kf_rec *r, uint32_t n,
			enum kf_finding want)
{
	uint64_t deadline = cmk_now_ms() + KF_HANG_MS + 60000;
	pid_t pid;
	int st;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		enum kf_finding f;

		kf_reset();
		kf_ops_exit();
		unload_module();
		cmk_modprobe("dm-cmk");
		if (kf_ops_init() || kf_io_start(run_seed))
			_exit(2);
		kf_reset();
		lseek(kmsg_fd, 0, SEEK_END);
		f = run_sequence(r, n, 0, false);
		kf_resume_all();
		kf_io_stop();
		if (f == KF_NONE && want == KF_UNLOAD) {
			kf_reset();
			kf_ops_exit();
			if (unload_module())
				f = KF_UNLOAD;
			cmk_modprobe("dm-cmk");
		}
		_exit(f == want ? 1 : 0);
	}
	while (cmk_now_ms() < deadline) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			return WIFEXITED(st) && WEXITSTATUS(st) == 1;
		cmk_sleep_ms(200);
	}
	/* a trial that does not end reproduces a hang, not @want */
	kill(pid, SIGKILL);
	return want == KF_HANG;
}

/*
 * I/O timing is not replayed: a finding that needs a write and a read to
 * fall between two operations may take more than one try.
 */
static bool trial_fails_retry(const struct kf_rec *r, uint32_t n,
			      enum kf_finding want, int tries)
{
	while (tries--)
		if (trial_fails(r, n, want))
			return true;
	return false;
}

/*
 * Delta debugging (Zeller's ddmin, complements only): drop chunks of the
 * sequence while the failure persists.  Returns the new length, or 0 if
 * the whole sequence does not fail again.
 */
static uint32_t minimize(struct kf_rec *r, uint32_t n, enum kf_finding want)
{
	uint64_t deadline = cmk_now_ms() + KF_MINIMIZE_BUDGET_MS;
	struct kf_rec *tmp = calloc(n ? n : 1, sizeof(*tmp));
	uint32_t parts = 2, trials = 0;

	if (!tmp)
		return n;
	if (!trial_fails_retry(r, n, want, 3)) {
		printf("# kfuzz: the recorded sequence did not show the %s again in 3 replays; not minimized\n",
		       finding_name[want]);
		free(tmp);
		return 0;
	}
	while (n >= 2 && cmk_now_ms() < deadline) {
		uint32_t chunk = (n + parts - 1) / parts, p;
		bool reduced = false;

		for (p = 0; p < parts && cmk_now_ms() < deadline; p++) {
			uint32_t lo = p * chunk, hi = lo + chunk, m = 0, i;

			if (lo >= n)
				break;
			if (hi > n)
				hi = n;
			for (i = 0; i < n; i++)
				if (i < lo || i >= hi)
					tmp[m++] = r[i];
			trials++;
			if (m && trial_fails_retry(tmp, m, want, 2)) {
				memcpy(r, tmp, m * sizeof(*r));
				n = m;
				parts = parts > 2 ? parts - 1 : 2;
				reduced = true;
				printf("# kfuzz: minimize: %u ops still fail (trial %u)\n",
				       n, trials);
				fflush(stdout);
				break;
			}
		}
		if (!reduced) {
			if (parts >= n)
				break;
			parts = parts * 2 < n ? parts * 2 : n;
		}
	}
	free(tmp);
	return n;
}

/* ------------------------------------------------------------------ */
/* results                                                            */

/* @unloaded: 1 it did, 0 it did not, -1 not tried (after a finding) */
static void print_results(enum kf_finding f, uint64_t nran, bool verified,
			  int unloaded)
{
	bool stopped = f == KF_HANG;

	printf("%s 1 kernel_fuzz_no_kernel_splat\n", f == KF_SPLAT ? "not ok" : "ok");
	printf("%s 2 kernel_fuzz_no_verify_mismatch\n",
	       f == KF_MISMATCH ? "not ok" : "ok");
	printf("%s 3 kernel_fuzz_every_syscall_returned\n",
	       f == KF_HANG ? "not ok" : "ok");
	if (unloaded < 0)
		printf("ok 4 kernel_fuzz_module_unload # SKIP not tried after the finding\n");
	else
		printf("%s 4 kernel_fuzz_module_unload\n", unloaded ? "ok" : "not ok");
	if (stopped)
		printf("ok 5 kernel_fuzz_ops_ran # SKIP stopped by a hang\n");
	else
		printf("%s 5 kernel_fuzz_ops_ran # %" PRIu64 " ops%s\n",
		       nran && verified ? "ok" : "not ok", nran,
		       verified ? "" : ", the verifier compared no block");
	fflush(stdout);
}

static int load_replay(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[2048];

	if (!f)
		return -errno;
	nops = 0;
	while (fgets(line, sizeof(line), f) && nops < KF_MAX_OPS) {
		const char *p;
		unsigned int idx, gen;
		uint64_t sub;

		p = strstr(line, "generator ");
		if (p && sscanf(p, "generator %u", &gen) == 1 &&
		    gen != KF_GEN_VERSION)
			printf("# kfuzz: note: %s was written by generator %u, this is %u: its operations replay differently\n",
			       path, gen, KF_GEN_VERSION);
		p = strstr(line, "op ");
		if (!p || sscanf(p, "op %u %" SCNx64, &idx, &sub) != 2)
			continue;
		ops[nops].idx = idx;
		ops[nops].sub = sub;
		nops++;
	}
	fclose(f);
	return nops ? 0 : -ENODATA;
}

/* "cmk.<key>=<value>" from the kernel command line. */
static bool cmdline_opt(const char *key, char *val, size_t sz)
{
	char buf[4096], want[64], *tok, *save = NULL;
	FILE *f = fopen("/proc/cmdline", "r");
	bool found = false;

	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	snprintf(want, sizeof(want), "cmk.%s=", key);
	for (tok = strtok_r(buf, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save)) {
		if (!strncmp(tok, want, strlen(want))) {
			snprintf(val, sz, "%s", tok + strlen(want));
			found = true;
		}
	}
	return found;
}

int main(int argc, char **argv)
{
	unsigned int seconds = 60;
	const char *replay = NULL;
	bool do_minimize = true, seeded = false;
	enum kf_finding f;
	struct kf_io_stats st;
	struct utsname uts;
	pthread_t wd;
	char val[256], replay_buf[256];
	int unloaded = -1;
	uint32_t n;
	int i, err;

	if (cmdline_opt("kfuzz_seconds", val, sizeof(val)))
		seconds = (unsigned int)strtoul(val, NULL, 0);
	if (cmdline_opt("kfuzz_seed", val, sizeof(val))) {
		run_seed = strtoull(val, NULL, 0);
		seeded = true;
	}
	if (cmdline_opt("kfuzz_replay", replay_buf, sizeof(replay_buf)))
		replay = replay_buf;
	if (cmdline_opt("kfuzz_minimize", val, sizeof(val)))
		do_minimize = strcmp(val, "0") != 0;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			run_seed = strtoull(argv[++i], NULL, 0);
			seeded = true;
		} else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			seconds = (unsigned int)strtoul(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--replay") && i + 1 < argc) {
			replay = argv[++i];
		} else if (!strcmp(argv[i], "--minimize")) {
			do_minimize = true;
		} else if (!strcmp(argv[i], "--no-minimize")) {
			do_minimize = false;
		} else {
			fprintf(stderr, "usage: %s [--seed N] [--seconds N] [--no-minimize] | --replay FILE [--minimize]\n",
				argv[0]);
			return 2;
		}
	}
	if (!seeded) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		run_seed = (uint64_t)ts.tv_sec * 1000003ULL ^ (uint64_t)ts.tv_nsec;
		run_seed %= 1000000000ULL;
	}

	printf("TAP version 13\n1..5\n");
	uname(&uts);
	ops = calloc(KF_MAX_OPS, sizeof(*ops));
	err = ops ? klog_open() : -ENOMEM;
	if (!err && replay)
		err = load_replay(replay);
	if (!err)
		err = cmk_ensure_module();
	if (!err)
		err = kf_ops_init();
	if (err) {
		printf("# kfuzz: setup failed: %s (needs root, dm_mod, brd and dm-cmk in the guest%s)\n",
		       strerror(-err), replay ? ", and a readable replay file" : "");
		printf("Bail out! setup failed\n");
		return 1;
	}
	if (replay)
		printf("# kfuzz: replaying %u ops from %s on %s\n", nops, replay,
		       uts.release);
	else
		printf("# kfuzz: seed %" PRIu64 ", %u s, kernel %s (reproduce: kfuzz --seed %" PRIu64
		       " --seconds %u, or make kfuzz KFUZZ_SEED=%" PRIu64 ")\n",
		       run_seed, seconds, uts.release, run_seed, seconds, run_seed);
	fflush(stdout);
	klog_write("seed %" PRIu64 " generator %u\n", run_seed, KF_GEN_VERSION);

	kf_reset();
	atomic_store(&watchdog_on, true);
	if (pthread_create(&wd, NULL, watchdog_main, NULL) ||
	    kf_io_start(run_seed)) {
		printf("Bail out! cannot start threads\n");
		return 1;
	}
	if (replay) {
		struct kf_rec *copy = malloc(nops * sizeof(*copy));

		if (!copy)
			return 1;
		memcpy(copy, ops, nops * sizeof(*copy));
		f = run_sequence(copy, nops, 0, true);
		free(copy);
	} else {
		f = run_sequence(NULL, 0, seconds, true);
	}
	/* I/O waits on a suspended device: resume them before the join */
	kf_resume_all();
	kf_io_stop();
	kf_io_get_stats(&st);
	printf("# kfuzz: io: %" PRIu64 " writes, %" PRIu64 " reads, %" PRIu64
	       " blocks verified, %" PRIu64 " I/O errors (expected while keys are wiped)\n",
	       st.writes, st.reads, st.verified, st.io_errors);

	if (f == KF_NONE) {
		err = kf_reset();
		kf_ops_exit();
		if (err)
			printf("# kfuzz: a kf- device could not be removed: %s\n",
			       strerror(-err));
		err = unload_module();
		unloaded = !err;
		if (err) {
			f = KF_UNLOAD;
			snprintf(finding_text, sizeof(finding_text),
				 "dm_cmk does not unload after every device was removed: %s",
				 strerror(-err));
		}
		/* the module unloads: so it loads again for what follows */
		cmk_modprobe("dm-cmk");
		if (f == KF_NONE && klog_check(finding_text, sizeof(finding_text)))
			f = KF_SPLAT;
		if (kf_ops_init())
			printf("# kfuzz: dm-cmk did not come back after the unload\n");
	}
	atomic_store(&watchdog_on, false);
	pthread_join(wd, NULL);

	if (f != KF_NONE) {
		printf("# kfuzz: FINDING (%s): %s\n", finding_name[f], finding_text);
		printf("# kfuzz: seed %" PRIu64 "\n", run_seed);
		print_log(ops, nops, "operation log");
		if (do_minimize && (f == KF_MISMATCH || f == KF_SPLAT ||
				    f == KF_UNLOAD)) {
			struct kf_rec *r = malloc(nops * sizeof(*r));

			if (r) {
				memcpy(r, ops, nops * sizeof(*r));
				n = minimize(r, nops, f);
				if (n)
					print_log(r, n, "shortest sequence found");
				free(r);
			}
		}
	}
	print_results(f, nops, st.verified > 0 || replay, unloaded);
	kf_reset();
	kf_ops_exit();
	return f == KF_NONE ? 0 : 1;
}
