// SPDX-License-Identifier: GPL-2.0
/*
 * pressure_swap - swap on dm-cmk keeps the system going under memory
 * pressure, as swap on dm-crypt does (issue 12, section 5, test a).
 *
 * Runs under tests/kselftest/pressure.sh: a 512 MiB guest whose swap is a
 * device on a virtio disk (not brd, whose pages would come out of the
 * very memory being reclaimed).  Each test makes the swap device, turns
 * it on and runs the load for 60 s (cmk.pressure_s=<s> on the
 * kernel command line changes that):
 *
 *   stress-ng --vm 2 --vm-bytes 120% --verify
 *
 * Two workers map, write and check (--verify) memory over and over.
 * stress-ng 0.15 reads the percentage as a share of the memory free when
 * it starts (~70 % of the total here), shared out among the workers: the
 * kernel swaps out the guest's cold tmpfs root and parts of the workers'
 * buffers, ~250-700 MiB out and up to ~250 MiB back in per run.
 * cmk.pressure_pct=<n> asks for n % of MemTotal instead, in bytes: with
 * 100-120 % every page the workers touch has to come back from swap, and
 * on both kernels dm-crypt and dm-cmk alike then mostly starve the
 * workers (no bogo op in 60 s, so little gets verified either), which is
 * why it is not the default.  dmcrypt_reference runs the load on dm-crypt
 * (aes-xts-plain64, same disk, same sector size) first; dmcmk then on
 * dm-cmk.
 *
 * Oracle, the same for both (so a failing reference says the setup, not
 * dm-cmk, is at fault):
 *  - stress-ng ends at most 3 minutes after its 60 s (a deadlocked swap
 *    path keeps its workers in the kernel for good) and reports success:
 *    every page it checked came back from swap as written (--verify);
 *  - no OOM kill in the whole guest (the test, stress-ng or anything else),
 *    counted from /proc/vmstat oom_kill and named from the kernel log;
 *  - no hung task: hung_task_timeout_secs is 30 s during the run, and the
 *    guest runner fails the run on any "blocked for more than";
 *  - swap was really used (pswpout), or the test tested nothing;
 *  - swapoff brings everything back, and (dm-cmk) no I/O error was counted.
 * Both outcomes are printed: seconds (how far stress-ng overran its 60 s),
 * bogo ops, MiB swapped out and in, OOM kills.  The bogo ops are printed,
 * not asserted: on this TCG host the same run gives anything from 0 (the
 * workers spent the whole minute in reclaim, stress-ng only warns that
 * "all bogo-op counters are zero") to ~400,000, on dm-crypt as on dm-cmk.
 */
#include "cmk_test.h"
#include "cmk_sys.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/swap.h>

#define DM_NAME		CMK_DM_PREFIX "swap"
#define KEY_NAME	"pressure-swap"
#define LEASE_MS	600000		/* the longest a default table allows */
#define HUNG_TASK_S	"30"
#define STRESS_S	60
#define STRESS_GRACE_S	180		/* after its own timeout, to wind down */
#define MIN_SWAPOUT_MB	32

FIXTURE(pressure_swap) {
	struct cmk_nl nl;
	uint8_t key[DM_CMK_KEY_LEN];
	char path[128];
	char hung_old[32];
	bool swapping;
	pid_t stress;
};

FIXTURE_SETUP(pressure_swap)
{
	uint64_t mem_kb = 0;
	struct stat st;

	self->stress = -1;
	if (stat(CMK_VDISK, &st) || !S_ISBLK(st.st_mode))
		SKIP(return, "no %s: run through tests/kselftest/pressure.sh",
		     CMK_VDISK);
	if (!cmk_have_tool("stress-ng"))
		SKIP(return, "no stress-ng in the guest (run-guest.sh --tool stress-ng)");
	ASSERT_EQ(0, cmk_meminfo_kb("MemTotal", &mem_kb));
	if (mem_kb > 1024 * 1024)
		SKIP(return, "a %llu MiB guest: this test needs the 512 MiB one of pressure.sh",
		     (unsigned long long)(mem_kb >> 10));
	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	cmk_key_make(self->key, 0x5a4a);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
	ASSERT_EQ(0, cmk_read_str("/proc/sys/kernel/hung_task_timeout_secs",
				  self->hung_old, sizeof(self->hung_old)));
	ASSERT_EQ(0, cmk_write_str("/proc/sys/kernel/hung_task_timeout_secs",
				   HUNG_TASK_S));
}

FIXTURE_TEARDOWN(pressure_swap)
{
	if (self->stress > 0 && cmk_stop_pid(self->stress, 10000))
		return;		/* stuck in the kernel: leave everything */
	if (self->swapping && swapoff(self->path))
		return;
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
	if (self->hung_old[0])
		cmk_write_str("/proc/sys/kernel/hung_task_timeout_secs",
			      self->hung_old);
}

/* The vm stressor's bogo ops from stress-ng's --metrics-brief, or -1. */
static long long bogo_ops(const char *file)
{
	char line[256], *p;
	long long ops = -1;
	FILE *f = fopen(file, "re");

	if (!f)
		return -1;
	/* "stress-ng: metrc: [224] vm    93149     62.83 ..." */
	while (fgets(line, sizeof(line), f)) {
		p = strstr(line, "metrc:");
		p = p ? strstr(p, "] vm ") : NULL;
		if (p && sscanf(p + 5, "%lld", &ops) == 1)
			break;
	}
	fclose(f);
	return ops;
}

/* stress-ng's log (a few lines with --metrics-brief), as diagnostics. */
static void log_lines(struct __test_metadata *_metadata, const char *file)
{
	char line[256];
	FILE *f = fopen(file, "re");
	long n = 0;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (n++ < 40 && line[0])
			TH_LOG("  stress-ng: %s", line);
	}
	fclose(f);
}

static void swap_run(struct __test_metadata *_metadata,
		     FIXTURE_DATA(pressure_swap) *self, bool cmk)
{
	const char *what = cmk ? "dm-cmk" : "dm-crypt";
	struct cmk_table t = {
		.len = CMK_VDISK_SWAP_SECTORS, .key_name = KEY_NAME,
		.dev = CMK_VDISK, .opts = "sector_size:4096",
	};
	uint64_t out0 = 0, in0 = 0, oom0 = 0, out1 = 0, in1 = 0, oom1 = 0;
	unsigned int secs = cmk_cmdline_uint("cmk.pressure_s=", STRESS_S);
	unsigned int pct = cmk_cmdline_uint("cmk.pressure_pct=", 0);
	char vmb[32], tmo[32], log[64], mark[96], oomers[256], hung[256];
	char out[512];
	uint64_t t0, t1, mem_kb = 0;
	long long ops;
	int status = -1, ooms, hungs, ret;

	if (cmk) {
		ASSERT_CMK_CREATE(DM_NAME, &t);
		ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, LEASE_MS, 1);
	} else {
		ASSERT_CRYPT_CREATE(DM_NAME, &t, self->key);
	}
	ret = cmk_run(out, sizeof(out), "mkswap", self->path, NULL);
	ASSERT_EQ(0, ret) TH_LOG("mkswap %s: %s", self->path, out);
	ASSERT_EQ(0, swapon(self->path, 0))
		TH_LOG("swapon %s: %s", self->path, strerror(errno));
	self->swapping = true;

	ASSERT_EQ(0, cmk_meminfo_kb("MemTotal", &mem_kb));
	if (pct)
		snprintf(vmb, sizeof(vmb), "%lluk",
			 (unsigned long long)(mem_kb * pct / 100));
	else
		snprintf(vmb, sizeof(vmb), "120%%");
	snprintf(tmo, sizeof(tmo), "%us", secs);
	snprintf(log, sizeof(log), "/tmp/pressure-swap-%s.log",
		 cmk ? "cmk" : "crypt");
	unlink(log);
	ASSERT_EQ(0, cmk_klog_mark(mark, sizeof(mark)));
	cmk_vmstat("pswpout", &out0);
	cmk_vmstat("pswpin", &in0);
	cmk_vmstat("oom_kill", &oom0);
	t0 = cmk_now_ms();
	{
		const char *argv[] = {
			"stress-ng", "--vm", "2", "--vm-bytes", vmb, "--verify",
			"--timeout", tmo, "--metrics-brief", NULL,
		};

		self->stress = cmk_spawn(argv, log, NULL);
	}
	ASSERT_LT(0, self->stress) TH_LOG("cannot start stress-ng");
	ret = cmk_wait_pid(self->stress, (secs + STRESS_GRACE_S) * 1000,
			   &status);
	t1 = cmk_now_ms();
	if (ret)
		TH_LOG("%s: stress-ng still running %u s after its %u s: %d of its threads in D state",
		       what, STRESS_GRACE_S, secs,
		       cmk_threads_in_d(self->stress));
	else
		self->stress = -1;
	cmk_vmstat("pswpout", &out1);
	cmk_vmstat("pswpin", &in1);
	cmk_vmstat("oom_kill", &oom1);
	ooms = cmk_klog_oom_kills(mark, oomers, sizeof(oomers));
	hungs = cmk_klog_hung_tasks(mark, hung, sizeof(hung));

	ops = bogo_ops(log);
	TH_LOG("%s: stress-ng --vm 2 --vm-bytes %s %s after %.1f s, %lld bogo ops, swapped out %llu MiB, in %llu MiB, OOM kills %llu%s%s%s, hung tasks %d",
	       what, vmb, ret ? "did not end" :
	       WIFEXITED(status) && !WEXITSTATUS(status) ? "passed" : "failed",
	       (t1 - t0) / 1000.0, ops,
	       (unsigned long long)((out1 - out0) >> 8),
	       (unsigned long long)((in1 - in0) >> 8),
	       (unsigned long long)(oom1 - oom0), ooms > 0 ? " (" : "",
	       ooms > 0 ? oomers : "", ooms > 0 ? ")" : "", hungs);
	log_lines(_metadata, log);
	ASSERT_EQ(0, ret) TH_LOG("%s: no forward progress under swap", what);
	ASSERT_EQ(0, hungs) TH_LOG("%s: %s", what, hung);
	ASSERT_EQ(oom0, oom1)
		TH_LOG("%s: the OOM killer killed %s", what, oomers);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("%s: stress-ng exit status 0x%x (see its log above)",
		       what, status);
	ASSERT_LE((uint64_t)MIN_SWAPOUT_MB << 8, out1 - out0)
		TH_LOG("%s: only %llu MiB swapped out: the guest was not short of memory",
		       what, (unsigned long long)((out1 - out0) >> 8));

	t0 = cmk_now_ms();
	ASSERT_EQ(0, swapoff(self->path))
		TH_LOG("%s: swapoff: %s", what, strerror(errno));
	self->swapping = false;
	TH_LOG("%s: swapoff took %.1f s", what, (cmk_now_ms() - t0) / 1000.0);
	if (cmk) {
		struct cmk_status st;

		ASSERT_EQ(0, cmk_dm_status_get(DM_NAME, &st));
		ASSERT_STREQ("active", st.state);
		ASSERT_EQ(0ULL, (unsigned long long)st.io_errors)
			TH_LOG("dm-cmk counted %llu I/O errors",
			       (unsigned long long)st.io_errors);
	}
	ASSERT_EQ(0, cmk_dm_remove(DM_NAME));
}

TEST_F_TIMEOUT(pressure_swap, dmcrypt_reference, 600)
{
	swap_run(_metadata, self, false);
}

TEST_F_TIMEOUT(pressure_swap, dmcmk, 600)
{
	swap_run(_metadata, self, true);
}

TEST_HARNESS_MAIN
