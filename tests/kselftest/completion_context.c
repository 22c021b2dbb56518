// SPDX-License-Identifier: GPL-2.0
/*
 * completion_context - reads decrypt right in every context a disk may
 * complete them in, and a read that completes in hard-interrupt context
 * after the key went waits for the key like any other.
 *
 * Oracle: the kernel's own dm-crypt (aes-xts-plain64, the same key) writes
 * the plaintext to a memory-backed null_blk device, dm-cmk must read back
 * exactly that plaintext.  null_blk's irqmode selects the context of the
 * completion: 0 in the submitter's context (like brd), 1 in softirq
 * context, 2 from a timer in hard-interrupt context (like NVMe or
 * virtio-blk), where dm-cmk decrypts small reads in softirq context on the
 * same CPU (kernel/io.c, cmk_read_bh()).  That path is shown taken by the
 * TASKLET softirq count of /proc/softirqs (BH work items run from it
 * too, Linux >= 6.9): one per read here, also with a reader on each of
 * two CPUs (the rule counts the bios in flight per CPU of mapping), none
 * without the path (the other variants count 0 in the same guest).  The
 * hold contract is Documentation/dm-cmk.rst's hold_ms.
 */
#include "cmk_test.h"

#include <pthread.h>
#include <sched.h>

#define DM_NAME		CMK_DM_PREFIX "cc"
#define CRYPT_NAME	CMK_DM_PREFIX "cc-crypt"
#define KEY_NAME	"cc-key"
#define NULLB_NAME	"cmkt_cc"
#define SIZE_MB		8
#define DATA_BYTES	(4ULL << 20)	/* what the tests write and read */
#define SMALL		4096
#define NSMALL		64

FIXTURE(completion_context) {
	struct cmk_nl nl;
	uint8_t key[DM_CMK_KEY_LEN];
	char dev[128];
	char path[128];
	unsigned char *plain;
};

FIXTURE_VARIANT(completion_context) {
	int irqmode;
	const char *opts;
};

FIXTURE_VARIANT_ADD(completion_context, submitter) {
	.irqmode = 0,
};

FIXTURE_VARIANT_ADD(completion_context, softirq) {
	.irqmode = 1,
};

FIXTURE_VARIANT_ADD(completion_context, hardirq) {
	.irqmode = 2,
};

FIXTURE_VARIANT_ADD(completion_context, hardirq_no_workqueues) {
	.irqmode = 2, .opts = "no_read_workqueue no_write_workqueue",
};

FIXTURE_SETUP(completion_context)
{
	int err;

	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	cmk_key_make(self->key, 404);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
	/* the timer fires 20 us after a bio is queued */
	err = cmk_nullb_create_irq(NULLB_NAME, SIZE_MB, variant->irqmode,
				   20000, self->dev, sizeof(self->dev));
	if (err == -ENOENT)
		SKIP(return, "null_blk with configfs is not available");
	ASSERT_EQ(0, err) TH_LOG("null_blk: %s", strerror(-err));
	self->plain = cmk_alloc(DATA_BYTES);
	ASSERT_NE(NULL, self->plain);
	cmk_fill(self->plain, DATA_BYTES, 405);
}

FIXTURE_TEARDOWN(completion_context)
{
	free(self->plain);
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
	cmk_dm_remove(CRYPT_NAME);
	cmk_nullb_destroy(NULLB_NAME);
}

static struct cmk_table table(FIXTURE_DATA(completion_context) *self,
			      const char *opts)
{
	return (struct cmk_table){
		.len = DATA_BYTES / CMK_SECTOR, .key_name = KEY_NAME,
		.dev = self->dev, .opts = opts,
	};
}

/* dm-crypt writes the plaintext; then dm-cmk, on the same bytes, is set up. */
static void plaintext_by_dmcrypt(struct __test_metadata *_metadata,
				 FIXTURE_DATA(completion_context) *self,
				 const char *opts)
{
	struct cmk_table t = table(self, NULL);
	char path[128];

	ASSERT_CRYPT_CREATE(CRYPT_NAME, &t, self->key);
	cmk_dm_path(path, sizeof(path), CRYPT_NAME);
	ASSERT_EQ(0, cmk_dev_write(path, self->plain, DATA_BYTES, 0, true));
	ASSERT_DM_REMOVE(CRYPT_NAME);
	t = table(self, opts);
	ASSERT_CMK_CREATE(DM_NAME, &t);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
}

/*
 * The TASKLET softirqs run so far on @cpu, or summed over the CPUs if @cpu
 * is -1.  /proc/softirqs has a header of CPU names, one column each.
 */
static uint64_t tasklet_softirqs_on(int cpu)
{
	char line[4096], name[16];
	int col = -1, i = 0;
	uint64_t sum = 0;
	FILE *f = fopen("/proc/softirqs", "r");
	char *p, *end;

	if (!f)
		return 0;
	snprintf(name, sizeof(name), "CPU%d", cpu);
	if (fgets(line, sizeof(line), f))
		for (p = strtok(line, " \t\n"); p; p = strtok(NULL, " \t\n"), i++)
			if (!strcmp(p, name))
				col = i;
	while (fgets(line, sizeof(line), f)) {
		p = strstr(line, "TASKLET:");
		if (!p)
			continue;
		p += strlen("TASKLET:");
		for (i = 0;; i++, p = end) {
			unsigned long long v = strtoull(p, &end, 10);

			if (end == p)
				break;
			if (cpu < 0 || i == col)
				sum += v;
		}
	}
	fclose(f);
	return sum;
}

static uint64_t tasklet_softirqs(void)
{
	return tasklet_softirqs_on(-1);
}

static bool preempt_rt(void)
{
	char v[8] = "";
	FILE *f = fopen("/sys/kernel/realtime", "r");

	if (!f)
		return false;
	if (!fgets(v, sizeof(v), f))
		v[0] = 0;
	fclose(f);
	return v[0] == '1';
}

/*
 * 4 KiB reads one at a time (queue depth 1, what dm-cmk decrypts inline),
 * then 64 KiB and 1 MiB direct reads (pieces), then a buffered read.
 */
TEST_F_TIMEOUT(completion_context, reads_what_dmcrypt_wrote, 240)
{
	unsigned char *buf = cmk_alloc(DATA_BYTES);
	uint64_t t0, t1;
	off_t off;
	int fd, i;

	ASSERT_NE(NULL, buf);
	plaintext_by_dmcrypt(_metadata, self, variant->opts);
	fd = cmk_open(self->path, true);
	ASSERT_LE(0, fd);
	t0 = tasklet_softirqs();
	for (i = 0; i < NSMALL; i++) {
		/* scattered over the device, each offset once */
		off = (off_t)((i * 37) % (DATA_BYTES / SMALL)) * SMALL;
		ASSERT_EQ(0, cmk_pread(fd, buf, SMALL, off));
		ASSERT_EQ(0, memcmp(buf, self->plain + off, SMALL))
			TH_LOG("4 KiB read at %lld differs", (long long)off);
	}
	t1 = tasklet_softirqs();
	TH_LOG("irqmode %d: %llu TASKLET softirqs during %d reads of 4 KiB",
	       variant->irqmode, (unsigned long long)(t1 - t0), NSMALL);
	/* PREEMPT_RT runs null_blk's timer, so the completion, in softirq */
	if (variant->irqmode == 2 && !preempt_rt())
		EXPECT_LE((uint64_t)NSMALL, t1 - t0)
			TH_LOG("reads completed in hard-interrupt context were not decrypted in softirq context");
	/* the premise: nothing else in the guest counts that many */
	if (variant->irqmode != 2)
		EXPECT_GT((uint64_t)NSMALL / 4, t1 - t0)
			TH_LOG("TASKLET softirqs without the path: the count cannot show it");
	for (off = 0; off < (off_t)DATA_BYTES; off += 65536) {
		ASSERT_EQ(0, cmk_pread(fd, buf, 65536, off));
		ASSERT_EQ(0, memcmp(buf, self->plain + off, 65536))
			TH_LOG("64 KiB read at %lld differs", (long long)off);
	}
	memset(buf, 0, DATA_BYTES);
	ASSERT_EQ(0, cmk_pread(fd, buf, 1 << 20, 0));
	ASSERT_EQ(0, cmk_pread(fd, buf + (1 << 20), DATA_BYTES - (1 << 20),
			       1 << 20));
	ASSERT_EQ(0, memcmp(buf, self->plain, DATA_BYTES))
		TH_LOG("large direct reads differ");
	close(fd);
	memset(buf, 0, DATA_BYTES);
	ASSERT_EQ(0, cmk_dev_read(self->path, buf, DATA_BYTES, 0, false));
	ASSERT_EQ(0, memcmp(buf, self->plain, DATA_BYTES))
		TH_LOG("buffered read differs");
	free(buf);
}

/* Four threads of 4 KiB reads: some inline, some beyond the CPU count. */
struct reader {
	pthread_t th;
	const char *path;
	const unsigned char *plain;
	unsigned int seed;
	int bad;	/* reads that failed or differed */
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	unsigned char *buf = cmk_alloc(SMALL);
	int fd = cmk_open(r->path, true), i;

	if (!buf || fd < 0) {
		r->bad = -1;
		goto out;
	}
	for (i = 0; i < 256; i++) {
		off_t off = (off_t)(rand_r(&r->seed) %
				    (DATA_BYTES / SMALL)) * SMALL;

		if (cmk_pread(fd, buf, SMALL, off) ||
		    memcmp(buf, r->plain + off, SMALL))
			r->bad++;
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

TEST_F_TIMEOUT(completion_context, concurrent_small_reads, 240)
{
	struct reader r[4];
	int i, bad = 0;

	plaintext_by_dmcrypt(_metadata, self, variant->opts);
	for (i = 0; i < 4; i++) {
		r[i] = (struct reader){ .path = self->path,
					.plain = self->plain, .seed = 11 + i };
		ASSERT_EQ(0, pthread_create(&r[i].th, NULL, reader_main,
					    &r[i]));
	}
	for (i = 0; i < 4; i++) {
		pthread_join(r[i].th, NULL);
		if (r[i].bad)
			TH_LOG("reader %d: %d bad reads", i, r[i].bad);
		bad |= r[i].bad;
	}
	EXPECT_EQ(0, bad);
}

/*
 * One queue-depth-1 reader pinned to each of two CPUs: each read is alone
 * among the reads mapped on its CPU, though two are in flight on the
 * target most of the time (the premise, sampled on the backing device,
 * with null_blk's timer at 5 ms),
 * so each must take the softirq path: about one TASKLET softirq per read
 * on each reader's CPU, not only for those reads that happened to be
 * alone on the target (the rule before dm-cmk 1.4.0).
 */
struct pinned_reader {
	pthread_t th;
	pthread_barrier_t *start;
	const char *path;
	const unsigned char *plain;
	int cpu;
	int bad;	/* reads that failed or differed, -1: no setup */
};

static void *pinned_reader_main(void *arg)
{
	struct pinned_reader *r = arg;
	unsigned char *buf = cmk_alloc(SMALL);
	int fd = cmk_open(r->path, true), i;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(r->cpu, &set);
	if (!buf || fd < 0 || sched_setaffinity(0, sizeof(set), &set))
		r->bad = -1;
	pthread_barrier_wait(r->start);
	for (i = 0; i < NSMALL && r->bad >= 0; i++) {
		off_t off = (off_t)((i * 37 + r->cpu * 512) %
				    (DATA_BYTES / SMALL)) * SMALL;

		if (cmk_pread(fd, buf, SMALL, off) ||
		    memcmp(buf, r->plain + off, SMALL))
			r->bad++;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static long backing_reads_in_flight(const char *dev);

TEST_F_TIMEOUT(completion_context, one_reader_per_cpu_each_alone, 240)
{
	struct pinned_reader r[2];
	pthread_barrier_t start;
	uint64_t t0[2], t1[2];
	int i, n = 0, polls = 0, both = 0;
	cpu_set_t set;

	if (variant->irqmode != 2 || variant->opts)
		SKIP(return, "the path is for hard-interrupt completions");
	if (preempt_rt())
		SKIP(return, "PREEMPT_RT completes null_blk's timer in softirq");
	/* the first two CPUs this test may run on */
	ASSERT_EQ(0, sched_getaffinity(0, sizeof(set), &set));
	for (i = 0; i < CPU_SETSIZE && n < 2; i++)
		if (CPU_ISSET(i, &set))
			r[n++].cpu = i;
	if (n < 2)
		SKIP(return, "needs two CPUs");
	/*
	 * Reads 5 ms in flight, long against a read's own cost even on a
	 * debug kernel: the two readers' reads overlap most of the time.
	 */
	cmk_nullb_destroy(NULLB_NAME);
	ASSERT_EQ(0, cmk_nullb_create_irq(NULLB_NAME, SIZE_MB, 2, 5000000UL,
					  self->dev, sizeof(self->dev)));
	plaintext_by_dmcrypt(_metadata, self, NULL);
	ASSERT_EQ(0, pthread_barrier_init(&start, NULL, 3));
	for (i = 0; i < 2; i++) {
		r[i] = (struct pinned_reader){ .start = &start,
			.path = self->path, .plain = self->plain,
			.cpu = r[i].cpu };
		t0[i] = tasklet_softirqs_on(r[i].cpu);
		ASSERT_EQ(0, pthread_create(&r[i].th, NULL, pinned_reader_main,
					    &r[i]));
	}
	pthread_barrier_wait(&start);
	/* while they read: how often are two reads in flight at once? */
	while (pthread_tryjoin_np(r[0].th, NULL) == EBUSY) {
		polls++;
		both += backing_reads_in_flight(self->dev) >= 2;
		cmk_sleep_ms(1);
	}
	pthread_join(r[1].th, NULL);
	for (i = 0; i < 2; i++)
		t1[i] = tasklet_softirqs_on(r[i].cpu);
	pthread_barrier_destroy(&start);
	ASSERT_EQ(0, r[0].bad) TH_LOG("reader on CPU %d: %d bad reads",
				      r[0].cpu, r[0].bad);
	ASSERT_EQ(0, r[1].bad) TH_LOG("reader on CPU %d: %d bad reads",
				      r[1].cpu, r[1].bad);
	TH_LOG("two reads in flight in %d of %d samples", both, polls);
	ASSERT_LE(4, both) TH_LOG("the readers rarely overlapped: nothing shown");
	ASSERT_LE(polls, 4 * both)
		TH_LOG("the readers rarely overlapped: nothing shown");
	/*
	 * Nearly one per read: with one hardware queue, a request now and
	 * then is started by the other CPU's dispatch, so its read
	 * completes there and rightly goes to the workqueue.  The rule
	 * before counted 13 and 3 here.
	 */
	for (i = 0; i < 2; i++) {
		TH_LOG("CPU %d: %llu TASKLET softirqs during %d reads of 4 KiB",
		       r[i].cpu, (unsigned long long)(t1[i] - t0[i]), NSMALL);
		EXPECT_LE((uint64_t)NSMALL * 7 / 8, t1[i] - t0[i])
			TH_LOG("reads alone on CPU %d went to the workqueue",
			       r[i].cpu);
		EXPECT_GE((uint64_t)NSMALL * 5 / 4, t1[i] - t0[i])
			TH_LOG("other TASKLET work on CPU %d: the count cannot show it",
			       r[i].cpu);
	}
}

/* Reads in flight on the backing device (its /sys/block/<dev>/inflight). */
static long backing_reads_in_flight(const char *dev)
{
	char path[256];
	long rd = -1, wr;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/block/%s/inflight",
		 strrchr(dev, '/') + 1);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &rd, &wr) != 2)
		rd = -1;
	fclose(f);
	return rd;
}

struct one_read {
	pthread_t th;
	const char *path;
	const unsigned char *want;
	int ret;
	bool match;
};

static void *one_read_main(void *arg)
{
	struct one_read *o = arg;
	unsigned char *buf = cmk_alloc(SMALL);

	o->ret = buf ? cmk_dev_read(o->path, buf, SMALL, 0, true) : -ENOMEM;
	o->match = !o->ret && !memcmp(buf, o->want, SMALL);
	free(buf);
	return NULL;
}

/*
 * The read is on the backing device (mapped while the key was there) when
 * the key is wiped; it completes from null_blk's timer 2 s later, in
 * hard-interrupt context, finds no key in softirq context and must wait
 * for one (KMS_UNREACHABLE allows that), then return the plaintext once
 * the key is back; after a REVOKED wipe it must fail with EIO instead.
 */
static void read_completes_after_wipe(struct __test_metadata *_metadata,
				      FIXTURE_DATA(completion_context) *self,
				      enum dm_cmk_reason reason)
{
	struct cmk_table t = table(self, "hold_ms:60000");
	struct cmk_info in = { 0 };
	struct one_read o = { .path = self->path, .want = self->plain };
	uint64_t end;
	char path[128];

	/* the plaintext, written fast, before the slow device is made */
	cmk_nullb_destroy(NULLB_NAME);
	ASSERT_EQ(0, cmk_nullb_create_irq(NULLB_NAME, SIZE_MB, 2, 2000000000UL,
					  self->dev, sizeof(self->dev)));
	t.len = SMALL / CMK_SECTOR;
	t.opts = NULL;
	ASSERT_CRYPT_CREATE(CRYPT_NAME, &t, self->key);
	cmk_dm_path(path, sizeof(path), CRYPT_NAME);
	ASSERT_EQ(0, cmk_dev_write(path, self->plain, SMALL, 0, true));
	ASSERT_DM_REMOVE(CRYPT_NAME);
	t.opts = "hold_ms:60000";
	ASSERT_CMK_CREATE(DM_NAME, &t);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);

	ASSERT_EQ(0, backing_reads_in_flight(self->dev));
	ASSERT_EQ(0, pthread_create(&o.th, NULL, one_read_main, &o));
	end = cmk_now_ms() + 30000;
	while (backing_reads_in_flight(self->dev) < 1 && cmk_now_ms() < end)
		cmk_sleep_ms(10);
	ASSERT_EQ(1, backing_reads_in_flight(self->dev))
		TH_LOG("the read never reached the backing device");
	ASSERT_EQ(0, cmk_key_wipe(&self->nl, KEY_NAME, reason, NULL, 0));
	if (reason == DM_CMK_REASON_REVOKED) {
		pthread_join(o.th, NULL);
		EXPECT_EQ(-EIO, o.ret)
			TH_LOG("a read completed after a revocation: %s",
			       o.ret ? strerror(-o.ret) : "it returned data");
		return;
	}
	/* the timer fires ~2 s after the read went out */
	end = cmk_now_ms() + 60000;
	do {
		cmk_sleep_ms(50);
		ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	} while (in.held < 1 && cmk_now_ms() < end);
	ASSERT_EQ(1U, in.held) TH_LOG("the completed read is not held");
	ASSERT_EQ(0, backing_reads_in_flight(self->dev));
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 2);
	pthread_join(o.th, NULL);
	EXPECT_EQ(0, o.ret) TH_LOG("the held read failed: %s",
				   strerror(-o.ret));
	EXPECT_TRUE(o.match) TH_LOG("the held read returned the wrong data");
}

TEST_F_TIMEOUT(completion_context, read_completing_after_wipe_waits, 240)
{
	if (variant->irqmode != 2)
		SKIP(return, "only a timer completion comes late enough");
	if (variant->opts)
		SKIP(return, "a 4 KiB read takes the hardirq variant's path");
	read_completes_after_wipe(_metadata, self,
				  DM_CMK_REASON_KMS_UNREACHABLE);
}

TEST_F_TIMEOUT(completion_context, read_completing_after_revoke_fails, 240)
{
	if (variant->irqmode != 2)
		SKIP(return, "only a timer completion comes late enough");
	if (variant->opts)
		SKIP(return, "a 4 KiB read takes the hardirq variant's path");
	read_completes_after_wipe(_metadata, self, DM_CMK_REASON_REVOKED);
}

TEST_HARNESS_MAIN
