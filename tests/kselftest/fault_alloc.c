// SPDX-License-Identifier: GPL-2.0
/*
 * fault_alloc - failed allocations in dm-cmk's paths fail cleanly.
 *
 * The kernel's fault injection (failslab, fail_page_alloc; debug kernel,
 * CONFIG_FAULT_INJECTION_STACKTRACE_FILTER) is aimed at dm-cmk: only an
 * allocation with a dm-cmk function on its stack (require-start/-end = the
 * module's text, from /proc/kallsyms) can fail.  A sweep over the knob
 * "space" (the bytes, or pages, of such allocations let through before the
 * one that fails) walks the failure through every allocation of one
 * operation, from the first to past the last:
 *
 *   - KEY_SET on a sealed device,
 *   - a table load (dmsetup create),
 *   - the data path (O_DIRECT writes and reads, failures at random).
 *
 * Oracles: the operation either succeeds or returns a plain -errno (the
 * KEY_SET reply, dmsetup's exit status); after a failed KEY_SET the device
 * is still sealed and a KEY_SET without faults then works; after a failed
 * table load no device is left; data-path I/O returns 0 or EIO and what
 * succeeded reads back the model.  No WARN and no leak: the debug kernel's
 * splat and kmemleak checks of scripts/qemu/run-guest.sh.  Without the
 * debugfs knobs (a stock kernel) every test skips.
 *
 * A sweep takes MAX_STEPS steps; "cmk.fault_steps=N" on the kernel command
 * line takes N, at most MAX_STEPS (make check's shorter sweep: still the
 * first allocation and the last, with fewer of those between failed).
 */
#include "cmk_test.h"
#include "cmk_sys.h"

#include <fcntl.h>
#include <inttypes.h>

#define DEV_SECTORS	8192ULL			/* 4 MiB */
#define IO_BYTES	(1ULL << 20)
#define DM_NAME		CMK_DM_PREFIX "falloc"
#define KEY_NAME	"falloc-key"
#define FI_ROOT		"/sys/kernel/debug"
/* Steps of a sweep; "cmk.fault_steps=N" (fault.sh --steps) sets fewer. */
#define MAX_STEPS	160
#define FI_SPACE_ALL	(1LL << 30)	/* more than any operation uses */

static int fi_write(const char *fi, const char *knob, const char *val)
{
	char path[256];
	int fd, err = 0;

	snprintf(path, sizeof(path), FI_ROOT "/%s/%s", fi, knob);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		err = -errno;
	close(fd);
	return err;
}

static int fi_read_ll(const char *fi, const char *knob, long long *v)
{
	char path[256], buf[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), FI_ROOT "/%s/%s", fi, knob);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	*v = strtoll(buf, NULL, 0);
	return 0;
}

static int fi_write_ll(const char *fi, const char *knob, long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	return fi_write(fi, knob, buf);
}

/* dm-cmk's text: the lowest and highest "t"/"T" symbol of [dm_cmk]. */
static int cmk_text_range(uint64_t *start, uint64_t *end)
{
	FILE *f = fopen("/proc/kallsyms", "re");
	char line[512];

	*start = UINT64_MAX;
	*end = 0;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a;
		char type;

		if (!strstr(line, "[dm_cmk]"))
			continue;
		if (sscanf(line, "%llx %c", &a, &type) != 2 || !a)
			continue;
		if (type != 't' && type != 'T')
			continue;
		if (a < *start)
			*start = a;
		if (a > *end)
			*end = a;
	}
	fclose(f);
	if (*start == UINT64_MAX)
		return -ENOENT;
	/* past the last function: module text is page-aligned */
	*end = (*end | 4095) + 4096 + 1;
	return 0;
}

/*
 * Without CONFIG_FAULT_INJECTION_STACKTRACE_FILTER (no require-start) the
 * KEY_SET sweep falls back to the task filter: every allocation of this
 * task while it sends the request and reads the reply can fail, dm-cmk's
 * among them.  The other tests need the stack filter.
 */
static bool fi_by_task;

static int make_it_fail(bool on)
{
	int fd = open("/proc/thread-self/make-it-fail", O_WRONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, on ? "1" : "0", 1) != 1)
		err = -errno;
	close(fd);
	return err;
}

/* Arm @fi for dm-cmk's text: the first allocation past @space fails. */
static int fi_arm(const char *fi, long long space, long long times,
		  int probability)
{
	uint64_t s, e;
	int err = 0;
	char b[32];

	err = fi_write(fi, "probability", "0");
	err = err ?: fi_write(fi, "task-filter", fi_by_task ? "Y" : "N");
	err = err ?: fi_write(fi, "verbose", "0");
	err = err ?: fi_write(fi, "interval", "1");
	err = err ?: fi_write(fi, "ignore-gfp-wait", "N");
	if (!err && !fi_by_task) {
		err = cmk_text_range(&s, &e);
		err = err ?: fi_write(fi, "stacktrace-depth", "32");
		snprintf(b, sizeof(b), "0x%" PRIx64, s);
		err = err ?: fi_write(fi, "require-start", b);
		snprintf(b, sizeof(b), "0x%" PRIx64, e);
		err = err ?: fi_write(fi, "require-end", b);
		err = err ?: fi_write(fi, "reject-start", "0");
		err = err ?: fi_write(fi, "reject-end", "0");
	}
	if (!err && !strcmp(fi, "fail_page_alloc")) {
		err = fi_write(fi, "ignore-gfp-highmem", "N");
		err = err ?: fi_write(fi, "min-order", "0");
	}
	err = err ?: fi_write_ll(fi, "space", space);
	err = err ?: fi_write_ll(fi, "times", times);
	err = err ?: fi_write_ll(fi, "probability", probability);
	return err;
}

static void fi_disarm(const char *fi)
{
	fi_write(fi, "probability", "0");
	fi_write(fi, "times", "0");
	fi_write(fi, "space", "0");
}

static bool fi_knob(const char *fi, const char *knob)
{
	char path[256];

	snprintf(path, sizeof(path), FI_ROOT "/%s/%s", fi, knob);
	return access(path, W_OK) == 0;
}

FIXTURE(fault_alloc) {
	bool no_fi;	/* SKIP in a setup does not stop the test body */
	struct cmk_nl nl;
	uint8_t key[DM_CMK_KEY_LEN];
	struct cmk_table t;
	char path[128];
};

/* "space" counts bytes for failslab, pages for fail_page_alloc */
FIXTURE_VARIANT(fault_alloc) {
	const char *fi;
};

FIXTURE_VARIANT_ADD(fault_alloc, failslab) {
	.fi = "failslab",
};

FIXTURE_VARIANT_ADD(fault_alloc, fail_page_alloc) {
	.fi = "fail_page_alloc",
};

FIXTURE_SETUP(fault_alloc)
{
	CMK_SETUP_CLEAN();
	self->no_fi = !fi_knob(variant->fi, "task-filter");
	fi_by_task = !fi_knob(variant->fi, "require-start");
	ASSERT_NL_OPEN(&self->nl);
	self->t = (struct cmk_table){
		.len = DEV_SECTORS, .key_name = KEY_NAME, .dev = CMK_RAM(0),
	};
	cmk_key_make(self->key, 141);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
}

/* at the start of each test; @need_stack: needs require-start */
#define SKIP_WITHOUT_FI(need_stack) do {				\
	if (self->no_fi)						\
		SKIP(return, "no %s/%s (debug kernel only)", FI_ROOT,	\
		     variant->fi);					\
	if ((need_stack) && fi_by_task)					\
		SKIP(return, "no %s/%s/require-start (kernel without CONFIG_FAULT_INJECTION_STACKTRACE_FILTER)",\
		     FI_ROOT, variant->fi);				\
} while (0)

FIXTURE_TEARDOWN(fault_alloc)
{
	if (!self->no_fi)
		fi_disarm(variant->fi);
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
}

/* dmsetup create of the cmk device; dmsetup's status. */
static int create_dev(const struct cmk_table *t)
{
	char line[512], out[1024];

	cmk_table_cmk(line, sizeof(line), t);
	return cmk_dm_create(DM_NAME, line, out, sizeof(out));
}

/*
 * One operation under an armed injector, for each "space" from 0 up in
 * steps of @step until the operation runs without meeting the failure.
 * @op returns 0 or -errno; @check verifies the state after a failure and
 * restores the start state; both return 0 or a negative value on a
 * broken promise.  Prints the number of failures injected and of distinct
 * failure points (the bytes let through before each).
 */
struct sweep {
	int (*op)(void *self);
	int (*check)(void *self, int op_ret, bool injected);
	void *self;
};

/*
 * The sweep's next "space": @step further, but never past @total without
 * stopping at it, where the last allocation fails whatever the step.
 */
static long long next_space(long long space, long long step, long long total)
{
	if (space < total && space + step > total)
		return total;
	return space + step;
}

static int sweep_run(struct __test_metadata *_metadata, const char *fi,
		     const struct sweep *sw, const char *what)
{
	long long total, space, step, left = 0, times = 1, last = -1;
	int injected = 0, points = 0, failed = 0, ret;
	unsigned int steps = cmk_cmdline_uint("cmk.fault_steps=", MAX_STEPS);

	if (steps > MAX_STEPS)
		steps = MAX_STEPS;

	/* Measure: everything passes, "space" (an atomic_t) counts it down. */
	if (fi_arm(fi, FI_SPACE_ALL, 1, 100))
		return -EIO;
	ret = sw->op(sw->self);
	if (fi_read_ll(fi, "space", &left))
		left = FI_SPACE_ALL;
	fi_disarm(fi);
	total = FI_SPACE_ALL - left;
	if (sw->check(sw->self, ret, false))
		return -EINVAL;
	TH_LOG("%s: %lld %s of allocations under dm-cmk", what, total,
	       !strcmp(fi, "failslab") ? "bytes" : "pages");
	if (ret) {
		TH_LOG("%s fails without an injected failure: %s", what,
		       strerror(-ret));
		return -EINVAL;
	}
	step = total / steps;
	if (step < 1)
		step = 1;
	if (steps != MAX_STEPS)
		TH_LOG("%s: %u steps of %lld (cmk.fault_steps)", what, steps, step);

	for (space = 0; space <= total; space = next_space(space, step, total)) {
		if (fi_arm(fi, space, 1, 100))
			return -EIO;
		ret = sw->op(sw->self);
		if (fi_read_ll(fi, "times", &times) ||
		    fi_read_ll(fi, "space", &left))
			return -EIO;
		fi_disarm(fi);
		if (times == 0) {
			injected++;
			if (space - left != last) {
				points++;
				last = space - left;
			}
			if (ret)
				failed++;
		}
		if (ret > 0 || ret < -4095) {
			TH_LOG("%s at space %lld: not an errno: %d", what,
			       space, ret);
			return -EINVAL;
		}
		if (sw->check(sw->self, ret, times == 0)) {
			TH_LOG("%s at space %lld: broken state after %s",
			       what, space, ret ? strerror(-ret) : "success");
			return -EINVAL;
		}
	}
	TH_LOG("%s: %d failures injected at %d distinct points, %d of them returned an error",
	       what, injected, points, failed);
	return injected ? 0 : -ENODATA;
}

/* --- KEY_SET on a sealed device ------------------------------------- */

static int key_set_op(void *p)
{
	FIXTURE_DATA(fault_alloc) *self = p;
	char ext[256];
	int ret;

	if (fi_by_task && make_it_fail(true))
		return -EPERM;
	ret = cmk_key_set(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1,
			  ext, sizeof(ext));
	if (fi_by_task)
		make_it_fail(false);
	return ret;
}

/* Failed: still sealed.  Succeeded: active; back to a sealed device. */
static int key_set_check(void *p, int op_ret, bool injected)
{
	FIXTURE_DATA(fault_alloc) *self = p;
	struct cmk_info in;
	char ext[256];
	int err;

	(void)injected;
	if (fi_by_task && op_ret) {
		/* the failure may have hit the socket: start afresh */
		cmk_nl_close(&self->nl);
		err = cmk_nl_open(&self->nl);
		if (err)
			return err;
	}
	err = cmk_get(&self->nl, KEY_NAME, &in, ext, sizeof(ext));
	if (err || !in.has_state) {
		fprintf(stderr, "# GET after KEY_SET: %s\n", strerror(-err));
		return -EIO;
	}
	if (op_ret && fi_by_task && op_ret == -ENOBUFS &&
	    in.state == DM_CMK_STATE_ACTIVE) {
		/* task filter: the ACK after a KEY_SET done was lost */
		fprintf(stderr, "# KEY_SET done, its ACK lost (ENOBUFS)\n");
		return cmk_dm_remove(DM_NAME) || create_dev(&self->t) ? -EIO : 0;
	}
	if (op_ret) {
		if (in.state != DM_CMK_STATE_SEALED) {
			fprintf(stderr, "# KEY_SET failed (%s) but state is %u\n",
				strerror(-op_ret), in.state);
			return -EINVAL;
		}
		return 0;
	}
	if (in.state != DM_CMK_STATE_ACTIVE || in.generation != 1) {
		fprintf(stderr, "# KEY_SET succeeded but state %u generation %" PRIu64 "\n",
			in.state, in.generation);
		return -EINVAL;
	}
	if (cmk_dm_remove(DM_NAME) || create_dev(&self->t))
		return -EIO;
	return 0;
}

TEST_F_TIMEOUT(fault_alloc, fault_key_set_fails_cleanly, 900)
{
	struct sweep sw = { key_set_op, key_set_check, self };
	int ret;

	SKIP_WITHOUT_FI(false);
	if (fi_by_task)
		TH_LOG("no stack filter: every allocation of the request fails in turn");

	ASSERT_EQ(0, create_dev(&self->t));
	ret = sweep_run(_metadata, variant->fi, &sw, "KEY_SET");
	if (ret == -ENODATA)
		SKIP(return, "KEY_SET allocates nothing under dm-cmk here");
	ASSERT_EQ(0, ret);
	/* and the device works: a KEY_SET without faults */
	cmk_dm_remove(DM_NAME);
	ASSERT_EQ(0, create_dev(&self->t));
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
}

/* --- table load ------------------------------------------------------ */

static int table_op(void *p)
{
	FIXTURE_DATA(fault_alloc) *self = p;
	int st = create_dev(&self->t);

	return st ? -EIO : 0;	/* dmsetup's status: any failure */
}

/* Failed: no device left.  Succeeded: it works; removed again. */
static int table_check(void *p, int op_ret, bool injected)
{
	FIXTURE_DATA(fault_alloc) *self = p;
	char ext[256];
	int err;

	(void)injected;
	if (op_ret) {
		if (cmk_dm_exists(DM_NAME)) {
			/* dmsetup leaves the name when the load failed */
			char out[256];

			if (cmk_dm_table(DM_NAME, false, out, sizeof(out)) == 0 &&
			    strstr(out, " cmk ")) {
				fprintf(stderr, "# failed load left a live cmk table: %s\n",
					out);
				return -EINVAL;
			}
			cmk_dm_remove(DM_NAME);
		}
		return 0;
	}
	err = cmk_key_set(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1,
			  ext, sizeof(ext));
	if (err) {
		fprintf(stderr, "# KEY_SET on a device loaded under faults: %s\n",
			strerror(-err));
		return -EINVAL;
	}
	return cmk_dm_remove(DM_NAME) ? -EIO : 0;
}

TEST_F_TIMEOUT(fault_alloc, fault_table_load_fails_cleanly, 1500)
{
	struct sweep sw = { table_op, table_check, self };
	int ret;

	SKIP_WITHOUT_FI(true);

	ret = sweep_run(_metadata, variant->fi, &sw, "table load");
	if (ret == -ENODATA)
		SKIP(return, "a table load allocates nothing under dm-cmk");
	ASSERT_EQ(0, ret);
}

/* --- data path: failures at random, 30 %, during O_DIRECT I/O ------- */

TEST_F_TIMEOUT(fault_alloc, fault_data_path_io_fails_cleanly, 900)
{
	unsigned char *model = cmk_alloc(IO_BYTES), *buf = cmk_alloc(IO_BYTES);
	unsigned int round, ok = 0, eio = 0;
	long long left = 0;
	const long long times = 100000;

	SKIP_WITHOUT_FI(true);
	ASSERT_NE(NULL, model);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, create_dev(&self->t));
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
	cmk_fill(model, IO_BYTES, 0xfa);
	ASSERT_EQ(0, cmk_dev_write(self->path, model, IO_BYTES, 0, true));

	ASSERT_EQ(0, fi_arm(variant->fi, 0, times, 30));
	for (round = 0; round < 40; round++) {
		size_t off = (round * 65536) % IO_BYTES;
		int err;

		cmk_fill(buf, 65536, 0xfb00 + round);
		err = cmk_dev_write(self->path, buf, 65536, off, true);
		if (!err) {
			memcpy(model + off, buf, 65536);
			ok++;
		} else if (err == -EIO) {
			/* the device's content there is unknown: read it */
			eio++;
			fi_disarm(variant->fi);
			ASSERT_EQ(0, cmk_dev_read(self->path, model + off,
						  65536, off, true));
			ASSERT_EQ(0, fi_arm(variant->fi, 0, times, 30));
		} else {
			fi_disarm(variant->fi);
			ASSERT_EQ(0, err) TH_LOG("write: not EIO");
		}
		err = cmk_dev_read(self->path, buf, IO_BYTES, 0, true);
		if (!err) {
			ok++;
			if (memcmp(buf, model, IO_BYTES)) {
				fi_disarm(variant->fi);
				ASSERT_TRUE(0) TH_LOG("read under faults: wrong data");
			}
		} else {
			fi_disarm(variant->fi);
			ASSERT_EQ(-EIO, err) TH_LOG("read: %s", strerror(-err));
			eio++;
			ASSERT_EQ(0, fi_arm(variant->fi, 0, times, 30));
		}
	}
	fi_read_ll(variant->fi, "times", &left);
	fi_disarm(variant->fi);
	TH_LOG("%s: %lld failures injected in 40 rounds: %u I/Os ok, %u EIO",
	       variant->fi, times - left, ok, eio);
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_ACTIVE);
	ASSERT_EQ(0, cmk_dev_read(self->path, buf, IO_BYTES, 0, true));
	EXPECT_EQ(0, memcmp(buf, model, IO_BYTES));
	free(model);
	free(buf);
}

TEST_HARNESS_MAIN
