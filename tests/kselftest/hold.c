// SPDX-License-Identifier: GPL-2.0
/*
 * hold - I/O waits for a key that is only briefly away, and only then.
 *
 * Oracle: the contract in Documentation/dm-cmk.rst (table option hold_ms).
 * While a device is sealed, or wiped for a reason other than REVOKED,
 * REQUESTED or DESTROY (here: an expired lease), a read or write waits up
 * to hold_ms for a KEY_SET and then goes on as if nothing happened (the
 * data read back is what was written); if no key comes it fails with EIO,
 * not before hold_ms.  A KEY_WIPE with REVOKED or REQUESTED fails every
 * waiting bio at once, and later I/O without waiting.  GET and dmsetup
 * status count the waiting bios.  The waits are observed from threads
 * doing direct I/O; times are printed, and only lower bounds (a bio must
 * not fail before its hold_ms) and generous upper bounds are asserted.
 */
#include "cmk_test.h"

#include <pthread.h>

#define DM_NAME		CMK_DM_PREFIX "hold"
#define KEY_NAME	"hold-key"
#define IO_BYTES	65536
#define NIO		16

FIXTURE(hold) {
	struct cmk_nl nl;
	uint8_t key[DM_CMK_KEY_LEN];
	char path[128];
	unsigned char data[IO_BYTES];
};

FIXTURE_SETUP(hold)
{
	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	cmk_key_make(self->key, 71);
	cmk_fill(self->data, sizeof(self->data), 72);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
}

FIXTURE_TEARDOWN(hold)
{
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
	cmk_dm_remove(CMK_DM_PREFIX "slow");
}

static void create(struct __test_metadata *_metadata, const char *opts)
{
	struct cmk_table t = {
		.len = 16384, .key_name = KEY_NAME, .dev = CMK_RAM(0),
		.opts = opts,
	};

	ASSERT_CMK_CREATE(DM_NAME, &t);
}

/* One direct read or write of IO_BYTES at @off in a thread of its own. */
struct io_job {
	pthread_t th;
	const char *path;
	bool write;
	off_t off;
	const unsigned char *data;	/* written, or expected back */
	int ret;
	bool match;
	uint64_t start_ms, end_ms;
	volatile bool done;
};

static void *io_main(void *arg)
{
	struct io_job *j = arg;
	unsigned char *buf = cmk_alloc(IO_BYTES);

	j->start_ms = cmk_now_ms();
	if (!buf) {
		j->ret = -ENOMEM;
	} else if (j->write) {
		j->ret = cmk_dev_write(j->path, j->data, IO_BYTES, j->off, true);
	} else {
		j->ret = cmk_dev_read(j->path, buf, IO_BYTES, j->off, true);
		j->match = !j->ret && !memcmp(buf, j->data, IO_BYTES);
	}
	free(buf);
	j->end_ms = cmk_now_ms();
	j->done = true;
	return NULL;
}

static int io_start(struct io_job *j, const char *path, bool write, off_t off,
		    const unsigned char *data)
{
	*j = (struct io_job){ .path = path, .write = write, .off = off,
			      .data = data };
	return pthread_create(&j->th, NULL, io_main, j);
}

/* Wait until GET reports @n held bios (or @ms pass); returns the count. */
static uint32_t wait_held(struct cmk_nl *nl, uint32_t n, unsigned int ms)
{
	uint64_t end = cmk_now_ms() + ms;
	struct cmk_info in = { 0 };

	do {
		if (cmk_get(nl, KEY_NAME, &in, NULL, 0))
			return 0;
		if (in.held >= n)
			break;
		cmk_sleep_ms(50);
	} while (cmk_now_ms() < end);
	return in.held;
}

/* Install the key with a short lease, write the data, let the lease run out. */
static void write_then_expire(struct __test_metadata *_metadata,
			      FIXTURE_DATA(hold) *self)
{
	uint64_t end;
	struct cmk_info in;
	int i;

	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, 1500, 1);
	for (i = 0; i < NIO; i++)
		ASSERT_EQ(0, cmk_dev_write(self->path, self->data, IO_BYTES,
					   (off_t)i * IO_BYTES, true));
	end = cmk_now_ms() + 60000;
	do {
		cmk_sleep_ms(100);
		ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	} while (in.state != DM_CMK_STATE_WIPED && cmk_now_ms() < end);
	ASSERT_EQ((uint32_t)DM_CMK_STATE_WIPED, in.state);
	ASSERT_EQ((uint32_t)DM_CMK_REASON_LEASE_EXPIRED, in.reason);
}

TEST_F(hold, hold_ms_option_parsed_and_bounded)
{
	char line[512], out[1024], table[512];
	struct cmk_table t = {
		.len = 16384, .key_name = KEY_NAME, .dev = CMK_RAM(0),
	};
	static const char *const bad[] = {
		"hold_ms:600001", "hold_ms:-1", "hold_ms:1e3", "hold_ms:",
	};
	struct cmk_info in;
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t.opts = bad[i];
		cmk_table_cmk(line, sizeof(line), &t);
		EXPECT_NE(0, cmk_dm_create(DM_NAME, line, out, sizeof(out)))
			TH_LOG("'%s' was accepted", bad[i]);
		cmk_dm_remove(DM_NAME);
	}
	create(_metadata, NULL);
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	ASSERT_TRUE(in.has_hold);
	EXPECT_EQ(30000U, in.hold_ms) TH_LOG("default hold_ms");
	ASSERT_DM_REMOVE(DM_NAME);
	create(_metadata, "hold_ms:600000");
	ASSERT_EQ(0, cmk_dm_table(DM_NAME, false, table, sizeof(table)));
	EXPECT_NE(NULL, strstr(table, " hold_ms:600000")) TH_LOG("%s", table);
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ(600000U, in.hold_ms);
}

/* A new device's first I/O waits for its first key. */
TEST_F_TIMEOUT(hold, hold_sealed_io_waits_for_first_key, 120)
{
	struct io_job w;
	struct cmk_status st;

	create(_metadata, "hold_ms:60000");
	ASSERT_EQ(0, io_start(&w, self->path, true, 0, self->data));
	EXPECT_EQ(1U, wait_held(&self->nl, 1, 20000));
	ASSERT_EQ(0, cmk_dm_status_get(DM_NAME, &st));
	EXPECT_EQ(1U, st.held);
	EXPECT_FALSE(w.done) TH_LOG("a write to a sealed device did not wait");
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
	pthread_join(w.th, NULL);
	EXPECT_EQ(0, w.ret) TH_LOG("held write: %s", strerror(-w.ret));
	TH_LOG("write waited %llu ms for the first key",
	       (unsigned long long)(w.end_ms - w.start_ms));
	EXPECT_EQ(0U, wait_held(&self->nl, 0, 0));
}

/* A lapsed lease: reads and writes wait, then go on with the right data. */
TEST_F_TIMEOUT(hold, hold_lapsed_lease_io_resumes_on_key_set, 180)
{
	unsigned char *other = cmk_alloc(IO_BYTES);
	struct io_job r[NIO], w;
	uint32_t held;
	int i;

	ASSERT_NE(NULL, other);
	create(_metadata, "hold_ms:120000");
	write_then_expire(_metadata, self);
	for (i = 0; i < NIO; i++)
		ASSERT_EQ(0, io_start(&r[i], self->path, false,
				      (off_t)i * IO_BYTES, self->data));
	cmk_fill(other, IO_BYTES, 73);
	ASSERT_EQ(0, io_start(&w, self->path, true, NIO * IO_BYTES, other));
	held = wait_held(&self->nl, NIO + 1, 30000);
	EXPECT_EQ((uint32_t)NIO + 1, held);
	for (i = 0; i < NIO; i++)
		EXPECT_FALSE(r[i].done) TH_LOG("read %d did not wait", i);

	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 2);
	for (i = 0; i < NIO; i++) {
		pthread_join(r[i].th, NULL);
		EXPECT_EQ(0, r[i].ret) TH_LOG("read %d: %s", i, strerror(-r[i].ret));
		EXPECT_TRUE(r[i].match) TH_LOG("read %d returned other data", i);
	}
	pthread_join(w.th, NULL);
	EXPECT_EQ(0, w.ret);
	/* what waited was written with the key, not lost */
	ASSERT_EQ(0, cmk_dev_flushbuf(self->path));
	ASSERT_EQ(0, io_start(&w, self->path, false, NIO * IO_BYTES, other));
	pthread_join(w.th, NULL);
	EXPECT_TRUE(w.match);
	EXPECT_EQ(0U, wait_held(&self->nl, 0, 0));
	free(other);
}

/*
 * No key within hold_ms: EIO, not before hold_ms and not much after
 * ("at most hold_ms", dm-cmk.rst).  The upper bound allows another
 * hold_ms of scheduling delay under TCG; a bio that waits twice its
 * hold_ms fails it.
 */
TEST_F_TIMEOUT(hold, hold_times_out_with_eio, 120)
{
	const uint64_t hold_ms = 5000;
	struct cmk_info in;
	struct io_job r;
	uint64_t waited;

	create(_metadata, "hold_ms:5000");
	write_then_expire(_metadata, self);
	ASSERT_EQ(0, io_start(&r, self->path, false, 0, self->data));
	pthread_join(r.th, NULL);
	waited = r.end_ms - r.start_ms;
	TH_LOG("a read waited %llu ms with hold_ms:%llu",
	       (unsigned long long)waited, (unsigned long long)hold_ms);
	EXPECT_EQ(-EIO, r.ret);
	EXPECT_LE(hold_ms - 100, waited) TH_LOG("it failed before its hold_ms");
	EXPECT_GT(2 * hold_ms - 100, waited)
		TH_LOG("it waited about twice its hold_ms: the deadline is not hold_ms");
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ(0U, in.held);
	EXPECT_LT(0U, in.refused);
	/* the device still comes back */
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 2);
	ASSERT_EQ(0, io_start(&r, self->path, false, 0, self->data));
	pthread_join(r.th, NULL);
	EXPECT_TRUE(r.match);
}

/*
 * The device over dm-delay (@delay_ms on every bio) on ram1, with @opts,
 * its key installed and the data written at 0.  False when dm-delay is
 * missing (the test is skipped).
 */
static bool create_over_delay(struct __test_metadata *_metadata,
			      FIXTURE_DATA(hold) *self, unsigned int delay_ms,
			      const char *opts)
{
	char line[512], out[1024];
	struct cmk_table t = {
		.len = 16384, .key_name = KEY_NAME,
		.dev = "/dev/mapper/" CMK_DM_PREFIX "slow", .opts = opts,
	};

	if (cmk_modprobe("dm-delay"))
		SKIP(return false, "no dm-delay module");
	snprintf(line, sizeof(line), "0 16384 delay %s 0 %u %s 0 0",
		 CMK_RAM(1), delay_ms, CMK_RAM(1));
	ASSERT_EQ(0, cmk_dm_create(CMK_DM_PREFIX "slow", line, out, sizeof(out)))
		TH_LOG("dm-delay: %s", out);
	ASSERT_CMK_CREATE(DM_NAME, &t);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
	ASSERT_EQ(0, cmk_dev_write(self->path, self->data, IO_BYTES, 0, true));
	return true;
}

/*
 * A bio released by a KEY_SET whose key is gone again before the bio can
 * use it waits again, but only for the rest of its first hold_ms: "at most
 * hold_ms" (dm-cmk.rst) in all, however often the key comes and goes.
 * Made deterministic with dm-delay (3 s) under the backing device: a read
 * held before it was mapped is released by a KEY_SET with a 1 ms lease 1 s
 * into its 5 s hold, goes to dm-delay, and comes back at ~4 s to a key long
 * gone.  It must fail at ~5 s; a bio whose second wait started afresh
 * would fail at ~9 s.
 */
TEST_F_TIMEOUT(hold, hold_deadline_counts_from_first_wait, 180)
{
	const uint64_t hold_ms = 5000;
	struct cmk_info in;
	struct io_job r;
	uint64_t waited;

	if (!create_over_delay(_metadata, self, 3000, "hold_ms:5000"))
		return;
	ASSERT_EQ(0, cmk_key_wipe(&self->nl, KEY_NAME,
				  DM_CMK_REASON_KMS_UNREACHABLE, NULL, 0));
	ASSERT_EQ(0, io_start(&r, self->path, false, 0, self->data));
	ASSERT_EQ(1U, wait_held(&self->nl, 1, 20000));
	while (cmk_now_ms() - r.start_ms < 1000)
		cmk_sleep_ms(20);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, 1, 2);
	pthread_join(r.th, NULL);
	waited = r.end_ms - r.start_ms;
	TH_LOG("the read returned %s after %llu ms (hold_ms %llu)",
	       r.ret ? strerror(-r.ret) : "its data", (unsigned long long)waited,
	       (unsigned long long)hold_ms);
	EXPECT_EQ(-EIO, r.ret) TH_LOG("it used a key whose 1 ms lease had run out");
	EXPECT_LE(hold_ms - 100, waited) TH_LOG("it failed before its hold_ms");
	/* TCG slack of 2.5 s; a second wait started afresh ends at ~9 s */
	EXPECT_GT(hold_ms + 2500, waited)
		TH_LOG("its second wait started a new hold_ms");
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ(0U, in.held);
	ASSERT_DM_REMOVE(DM_NAME);
	ASSERT_DM_REMOVE(CMK_DM_PREFIX "slow");
}

/*
 * The same with dm-delay at 6 s: the read comes back after its deadline
 * and fails at once, ~6 s after the KEY_SET that released it; a bio whose
 * second wait started afresh would fail only 5 s later.
 */
TEST_F_TIMEOUT(hold, hold_deadline_passed_fails_at_once, 180)
{
	struct io_job r;
	uint64_t t_set, after;

	if (!create_over_delay(_metadata, self, 6000, "hold_ms:5000"))
		return;
	ASSERT_EQ(0, cmk_key_wipe(&self->nl, KEY_NAME,
				  DM_CMK_REASON_KMS_UNREACHABLE, NULL, 0));
	ASSERT_EQ(0, io_start(&r, self->path, false, 0, self->data));
	ASSERT_EQ(1U, wait_held(&self->nl, 1, 20000));
	t_set = cmk_now_ms();
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, 1, 2);
	pthread_join(r.th, NULL);
	after = r.end_ms - t_set;
	TH_LOG("the read returned %s %llu ms after the KEY_SET that released it",
	       r.ret ? strerror(-r.ret) : "its data", (unsigned long long)after);
	EXPECT_EQ(-EIO, r.ret);
	/* the 6 s at dm-delay, 2.5 s of TCG slack; afresh it is ~11 s */
	EXPECT_GT(6000 + 2500ULL, after)
		TH_LOG("a bio past its deadline waited again");
	ASSERT_DM_REMOVE(DM_NAME);
	ASSERT_DM_REMOVE(CMK_DM_PREFIX "slow");
}

/* The customer's "no" (and an operator's close) fail what waits, at once. */
static void revoke_fails_held(struct __test_metadata *_metadata,
			      FIXTURE_DATA(hold) *self, uint32_t reason,
			      bool sealed)
{
	unsigned char buf[4096];
	struct io_job r[NIO];
	struct cmk_info in;
	uint64_t t0, slowest = 0;
	int i, ret;

	create(_metadata, "hold_ms:120000");
	if (!sealed)
		write_then_expire(_metadata, self);
	for (i = 0; i < NIO; i++)
		ASSERT_EQ(0, io_start(&r[i], self->path, false,
				      (off_t)i * IO_BYTES, self->data));
	EXPECT_EQ((uint32_t)NIO, wait_held(&self->nl, NIO, 30000));
	t0 = cmk_now_ms();
	ret = cmk_key_wipe(&self->nl, KEY_NAME, reason, NULL, 0);
	ASSERT_EQ(0, ret);
	for (i = 0; i < NIO; i++) {
		pthread_join(r[i].th, NULL);
		EXPECT_EQ(-EIO, r[i].ret);
		if (r[i].end_ms - t0 > slowest)
			slowest = r[i].end_ms - t0;
	}
	TH_LOG("held reads failed %llu ms after KEY_WIPE (reason %u)",
	       (unsigned long long)slowest, reason);
	/* generous: TCG under load; without the fix they wait 120 s */
	EXPECT_GT(10000ULL, slowest);
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ((uint32_t)DM_CMK_STATE_WIPED, in.state);
	EXPECT_EQ(reason, in.reason);
	EXPECT_EQ(0U, in.held);
	/* and new I/O does not wait */
	t0 = cmk_now_ms();
	EXPECT_EQ(-EIO, cmk_dev_read(self->path, buf, sizeof(buf), 0, true));
	TH_LOG("a new read failed after %llu ms",
	       (unsigned long long)(cmk_now_ms() - t0));
	EXPECT_GT(10000ULL, cmk_now_ms() - t0);
}

TEST_F_TIMEOUT(hold, hold_revoke_fails_held_io_at_once, 180)
{
	revoke_fails_held(_metadata, self, DM_CMK_REASON_REVOKED, false);
}

TEST_F_TIMEOUT(hold, hold_requested_wipe_fails_held_io_at_once, 180)
{
	revoke_fails_held(_metadata, self, DM_CMK_REASON_REQUESTED, false);
}

TEST_F_TIMEOUT(hold, hold_revoke_of_sealed_device_fails_held_io, 180)
{
	revoke_fails_held(_metadata, self, DM_CMK_REASON_REVOKED, true);
}

/* KMS_UNREACHABLE (the agent's grace ran out) is not a "no": it waits. */
TEST_F_TIMEOUT(hold, hold_kms_unreachable_wipe_still_holds, 120)
{
	struct io_job r;

	create(_metadata, "hold_ms:60000");
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
	ASSERT_EQ(0, cmk_dev_write(self->path, self->data, IO_BYTES, 0, true));
	ASSERT_EQ(0, cmk_key_wipe(&self->nl, KEY_NAME,
				  DM_CMK_REASON_KMS_UNREACHABLE, NULL, 0));
	ASSERT_EQ(0, io_start(&r, self->path, false, 0, self->data));
	EXPECT_EQ(1U, wait_held(&self->nl, 1, 20000));
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 2);
	pthread_join(r.th, NULL);
	EXPECT_EQ(0, r.ret);
	EXPECT_TRUE(r.match);
}

/* A device whose lease ran out and holds nothing can still be removed. */
TEST_F_TIMEOUT(hold, hold_idle_device_removable, 60)
{
	create(_metadata, "hold_ms:600000");
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, 1500, 1);
	cmk_sleep_ms(2500);
	ASSERT_DM_REMOVE(DM_NAME);
	EXPECT_FALSE(cmk_dm_exists(DM_NAME));
}

/*
 * A table swap with a noflush suspend (what LVM and multipath do) while
 * bios wait for the key: device-mapper takes them back and re-issues them
 * after resume, where they wait again, and then go on with the key.
 * Nothing fails, and the suspend does not wait for the hold.
 */
TEST_F_TIMEOUT(hold, hold_noflush_reload_requeues_held_io, 180)
{
	struct cmk_table t = {
		.len = 16384, .key_name = KEY_NAME, .dev = CMK_RAM(0),
		.opts = "hold_ms:120000",
	};
	char line[512], out[1024];
	struct io_job r[4];
	struct cmk_info in;
	uint64_t t0;
	int i;

	create(_metadata, t.opts);
	write_then_expire(_metadata, self);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, io_start(&r[i], self->path, false,
				      (off_t)i * IO_BYTES, self->data));
	EXPECT_EQ(4U, wait_held(&self->nl, 4, 30000));

	t0 = cmk_now_ms();
	ASSERT_EQ(0, cmk_run(out, sizeof(out), "dmsetup", "suspend", "--noflush",
			     "--noudevsync", DM_NAME, NULL))
		TH_LOG("suspend --noflush: %s", out);
	TH_LOG("noflush suspend with 4 held bios took %llu ms",
	       (unsigned long long)(cmk_now_ms() - t0));
	cmk_table_cmk(line, sizeof(line), &t);
	ASSERT_EQ(0, cmk_dm_reload(DM_NAME, line, out, sizeof(out)))
		TH_LOG("reload: %s", out);
	ASSERT_EQ(0, cmk_dm_resume(DM_NAME));
	/* re-issued after resume: they wait for the key again */
	EXPECT_EQ(4U, wait_held(&self->nl, 4, 30000));
	for (i = 0; i < 4; i++)
		EXPECT_FALSE(r[i].done) TH_LOG("read %d ended during the swap", i);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 2);
	for (i = 0; i < 4; i++) {
		pthread_join(r[i].th, NULL);
		EXPECT_EQ(0, r[i].ret) TH_LOG("read %d: %s", i, strerror(-r[i].ret));
		EXPECT_TRUE(r[i].match);
	}
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ(0U, in.refused);
}

/* Two segments under one key with different hold_ms: each keeps its own. */
TEST_F_TIMEOUT(hold, hold_each_target_its_own_hold_ms, 180)
{
	char line[512], out[1024];
	struct io_job lng, shrt;
	uint64_t waited;

	/* 0..8191: hold 60 s; 8192..16383: hold 2 s; disjoint IV ranges */
	snprintf(line, sizeof(line),
		 "0 8192 cmk aes-xts-plain64 %s 0 %s 0 1 hold_ms:60000\n"
		 "8192 8192 cmk aes-xts-plain64 %s 8192 %s 8192 1 hold_ms:2000",
		 KEY_NAME, CMK_RAM(0), KEY_NAME, CMK_RAM(0));
	ASSERT_EQ(0, cmk_dm_create(DM_NAME, line, out, sizeof(out)))
		TH_LOG("create: %s", out);
	write_then_expire(_metadata, self);
	ASSERT_EQ(0, io_start(&lng, self->path, false, 0, self->data));
	EXPECT_EQ(1U, wait_held(&self->nl, 1, 20000));
	ASSERT_EQ(0, io_start(&shrt, self->path, false, 8192 * 512, self->data));
	pthread_join(shrt.th, NULL);
	waited = shrt.end_ms - shrt.start_ms;
	TH_LOG("the 2 s segment's read failed after %llu ms",
	       (unsigned long long)waited);
	EXPECT_EQ(-EIO, shrt.ret);
	EXPECT_GT(30000ULL, waited) TH_LOG("it waited for the other segment's hold");
	EXPECT_FALSE(lng.done) TH_LOG("the 60 s segment's read did not wait");
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 2);
	pthread_join(lng.th, NULL);
	EXPECT_EQ(0, lng.ret);
	EXPECT_TRUE(lng.match);
}

/*
 * A read that was already at the backing device when the key went away
 * (dm-delay holds it there for 3 s) waits for the key after it completes,
 * and is then decrypted with it: the right data, no error.
 */
TEST_F_TIMEOUT(hold, hold_read_completed_without_key_waits, 180)
{
	struct io_job r;
	uint32_t held;

	if (!create_over_delay(_metadata, self, 3000, "hold_ms:60000"))
		return;
	ASSERT_EQ(0, io_start(&r, self->path, false, 0, self->data));
	cmk_sleep_ms(1000);	/* the read sits in dm-delay now */
	ASSERT_EQ(0, cmk_key_wipe(&self->nl, KEY_NAME,
				  DM_CMK_REASON_KMS_UNREACHABLE, NULL, 0));
	held = wait_held(&self->nl, 1, 20000);
	EXPECT_EQ(1U, held) TH_LOG("the completed read did not wait for the key");
	EXPECT_FALSE(r.done);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 2);
	pthread_join(r.th, NULL);
	EXPECT_EQ(0, r.ret) TH_LOG("%s", strerror(-r.ret));
	EXPECT_TRUE(r.match);
	ASSERT_DM_REMOVE(DM_NAME);
	ASSERT_DM_REMOVE(CMK_DM_PREFIX "slow");
}

TEST_HARNESS_MAIN
