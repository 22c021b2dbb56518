// SPDX-License-Identifier: GPL-2.0
/*
 * fault_crypto - the crypto driver failing a request fails that bio only.
 *
 * The test-only module cmk_cryptfault (tests/debug-kernel/cryptfault/,
 * put in the guest as /cmk_cryptfault.ko by tests/debug-kernel/fault.sh)
 * registers an xts(aes) above every real driver that fails every Nth
 * request with -EIO, completing either at once ("sync": dm-cmk sees the
 * error as the return value) or from a workqueue ("async": dm-cmk sees it
 * in its completion callback).  A dm-cmk table loaded after it uses it.
 *
 * Oracles: the module's request counter grows with dm-cmk's I/O (its
 * requests really go through the hook); with 4 KiB bios (one request
 * each) from four threads at once, every injected failure reaches exactly
 * one submitter as EIO and no other bio fails (EIO count == injected
 * count == the slot's io_errors); a bio of 16 requests fails as a whole;
 * what succeeded reads back the model, a failed write leaves the old or
 * the new block; no thread hangs (the test's timeout, the hung-task
 * detector); afterwards, with the faults off, the key state and generation
 * are unchanged and the whole device reads back the model; after the
 * device is removed the module unloads (no tfm of it is left).  WARN,
 * KASAN, lockdep and kmemleak: the debug kernel's checks in
 * scripts/qemu/run-guest.sh.  Without /cmk_cryptfault.ko every test skips.
 */
#include "cmk_test.h"

#include <fcntl.h>
#include <pthread.h>

#define DEV_SECTORS	8192ULL			/* 4 MiB */
#define MODEL_BYTES	(1ULL << 20)
#define BLK		4096
#define THREADS		4
#define ROUNDS		48
#define REGION		(MODEL_BYTES / THREADS)
#define DM_NAME		CMK_DM_PREFIX "fcrypt"
#define KEY_NAME	"fcrypt-key"
#define MOD_PATH	"/cmk_cryptfault.ko"
#define MOD_NAME	"cmk_cryptfault"
#define PARAM		"/sys/module/" MOD_NAME "/parameters/"

static int param_write(const char *name, const char *val)
{
	char path[128];
	int fd, err = 0;

	snprintf(path, sizeof(path), PARAM "%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		err = -errno;
	close(fd);
	return err;
}

static long param_read(const char *name)
{
	char path[128], buf[32] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), PARAM "%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

FIXTURE(fault_crypto) {
	bool no_mod;
	struct cmk_nl nl;
	uint8_t key[DM_CMK_KEY_LEN];
	char path[128];
	unsigned char *model;
};

FIXTURE_VARIANT(fault_crypto) {
	const char *async;
};

FIXTURE_VARIANT_ADD(fault_crypto, sync) {
	.async = "N",
};

FIXTURE_VARIANT_ADD(fault_crypto, async) {
	.async = "Y",
};

FIXTURE_SETUP(fault_crypto)
{
	CMK_SETUP_CLEAN();
	if (!cmk_module_loaded(MOD_NAME) && access(MOD_PATH, R_OK) == 0)
		cmk_run(NULL, 0, "insmod", MOD_PATH, NULL);
	self->no_mod = !cmk_module_loaded(MOD_NAME);
	if (!self->no_mod) {
		ASSERT_EQ(0, param_write("every", "0"));
		ASSERT_EQ(0, param_write("async", variant->async));
	}
	ASSERT_NL_OPEN(&self->nl);
	cmk_key_make(self->key, 161);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
	self->model = cmk_alloc(MODEL_BYTES);
	ASSERT_NE(NULL, self->model);
}

FIXTURE_TEARDOWN(fault_crypto)
{
	if (!self->no_mod)
		param_write("every", "0");
	free(self->model);
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
	cmk_module_unload(MOD_NAME);
}

#define SKIP_WITHOUT_MOD() do {						\
	if (self->no_mod)						\
		SKIP(return, "no " MOD_PATH " (tests/debug-kernel/fault.sh puts it in the guest)"); \
} while (0)

/* Create the device, install the key, write the model with no faults. */
static void start(struct __test_metadata *_metadata,
		  FIXTURE_DATA(fault_crypto) *self)
{
	struct cmk_table t = {
		.len = DEV_SECTORS, .key_name = KEY_NAME, .dev = CMK_RAM(0),
		.opts = "sector_size:4096 hold_ms:0",
	};
	long before = param_read("requests");

	ASSERT_CMK_CREATE(DM_NAME, &t);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
	cmk_fill(self->model, MODEL_BYTES, 0xc0de);
	ASSERT_EQ(0, cmk_dev_write(self->path, self->model, MODEL_BYTES, 0,
				   true));
	/* 256 encryption sectors: 256 requests through the hook */
	ASSERT_LE(before + (long)(MODEL_BYTES / BLK), param_read("requests"))
		TH_LOG("dm-cmk's requests do not go through " MOD_NAME);
}

/* Faults off: key and generation unchanged, the model reads back. */
static void finish(struct __test_metadata *_metadata,
		   FIXTURE_DATA(fault_crypto) *self)
{
	unsigned char *back = cmk_alloc(MODEL_BYTES);
	struct cmk_info in;

	ASSERT_NE(NULL, back);
	ASSERT_EQ(0, param_write("every", "0"));
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ((uint32_t)DM_CMK_STATE_ACTIVE, in.state);
	EXPECT_EQ(1ULL, (unsigned long long)in.generation);
	ASSERT_EQ(0, cmk_dev_read(self->path, back, MODEL_BYTES, 0, true));
	EXPECT_EQ(0, memcmp(back, self->model, MODEL_BYTES))
		TH_LOG("the device does not read back the model after the faults");
	/* and it takes new writes */
	cmk_fill(self->model, MODEL_BYTES, 0xf00d);
	ASSERT_EQ(0, cmk_dev_write(self->path, self->model, MODEL_BYTES, 0,
				   true));
	ASSERT_EQ(0, cmk_dev_read(self->path, back, MODEL_BYTES, 0, true));
	EXPECT_EQ(0, memcmp(back, self->model, MODEL_BYTES));
	free(back);
	ASSERT_EQ(0, cmk_dm_remove(DM_NAME));
	/* every tfm of the device freed: nothing holds the module */
	EXPECT_EQ(0, cmk_module_unload(MOD_NAME))
		TH_LOG("rmmod " MOD_NAME ": %s (a tfm left behind?)",
		       strerror(errno));
}

struct worker {
	const char *path;
	unsigned char *model;	/* this thread's region of it */
	off_t base;
	unsigned int id;
	unsigned long ok, eio, other, bad_data;
	int last_other;
};

/* @blk after a failed write: the old or the new content; fix the model. */
static int settle(struct worker *w, off_t off, const unsigned char *new)
{
	unsigned char got[BLK];
	int err = cmk_dev_read(w->path, got, BLK, w->base + off, true);

	if (err)
		return err;
	if (memcmp(got, w->model + off, BLK) && memcmp(got, new, BLK))
		w->bad_data++;
	memcpy(w->model + off, got, BLK);
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned char buf[BLK], unsettled[BLK];
	off_t pending = -1;
	unsigned int r;
	int err;

	for (r = 0; r < ROUNDS; r++) {
		off_t off = (off_t)((r * 7 + w->id) % (REGION / BLK)) * BLK;

		/* a block left by a failed write is read until it reads */
		if (pending >= 0) {
			err = settle(w, pending, unsettled);
			if (!err) {
				w->ok++;
				pending = -1;
			} else if (err == -EIO) {
				w->eio++;
			} else {
				w->other++;
				w->last_other = err;
			}
			if (pending >= 0)
				continue;
		}
		cmk_fill(buf, BLK, ((uint64_t)w->id << 32) | r);
		err = cmk_dev_write(w->path, buf, BLK, w->base + off, true);
		if (!err) {
			w->ok++;
			memcpy(w->model + off, buf, BLK);
		} else if (err == -EIO) {
			w->eio++;
			memcpy(unsettled, buf, BLK);
			pending = off;
			continue;
		} else {
			w->other++;
			w->last_other = err;
		}
		err = cmk_dev_read(w->path, buf, BLK, w->base + off, true);
		if (!err) {
			w->ok++;
			if (memcmp(buf, w->model + off, BLK))
				w->bad_data++;
		} else if (err == -EIO) {
			w->eio++;
		} else {
			w->other++;
			w->last_other = err;
		}
	}
	/* leave the model true for finish(): faults are still on */
	while (pending >= 0) {
		err = settle(w, pending, unsettled);
		if (!err)
			pending = -1;
		else if (err == -EIO)
			w->eio++;
		else
			break;
	}
	return NULL;
}

TEST_F_TIMEOUT(fault_crypto, fault_crypto_request_fails_its_bio_only, 900)
{
	struct worker w[THREADS];
	pthread_t th[THREADS];
	unsigned long ok = 0, eio = 0;
	long inj0, inj1, req0, req1;
	uint64_t err0;
	struct cmk_info in;
	unsigned int i;
	char mark[96];
	char *klog;

	SKIP_WITHOUT_MOD();
	start(_metadata, self);
	ASSERT_EQ(0, cmk_klog_mark(mark, sizeof(mark)));
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	err0 = in.io_errors;
	inj0 = param_read("injected");
	req0 = param_read("requests");
	ASSERT_EQ(0, param_write("every", "7"));
	for (i = 0; i < THREADS; i++) {
		w[i] = (struct worker){
			.path = self->path, .base = (off_t)(i * REGION),
			.model = self->model + i * REGION, .id = i,
		};
		ASSERT_EQ(0, pthread_create(&th[i], NULL, worker_main, &w[i]));
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		ok += w[i].ok;
		eio += w[i].eio;
		EXPECT_EQ(0UL, w[i].other)
			TH_LOG("thread %u: an error that is not EIO: %s", i,
			       strerror(-w[i].last_other));
		EXPECT_EQ(0UL, w[i].bad_data)
			TH_LOG("thread %u: %lu blocks read back wrong", i,
			       w[i].bad_data);
	}
	ASSERT_EQ(0, param_write("every", "0"));
	inj1 = param_read("injected");
	req1 = param_read("requests");
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	TH_LOG("%s: %ld requests, %ld failures injected; %lu bios ok, %lu EIO; io_errors +%llu",
	       variant->async[0] == 'Y' ? "async" : "sync", req1 - req0,
	       inj1 - inj0, ok, eio,
	       (unsigned long long)(in.io_errors - err0));
	ASSERT_LT(0, inj1 - inj0) TH_LOG("nothing was injected");
	/* one request per bio: each failure fails its own bio, no other */
	EXPECT_EQ((unsigned long)(inj1 - inj0), eio);
	EXPECT_EQ((uint64_t)(inj1 - inj0), in.io_errors - err0);
	/* the operator is told, whichever way the driver reported it */
	klog = cmk_klog_since(mark);
	ASSERT_NE(NULL, klog);
	EXPECT_NE(NULL, strstr(klog, KEY_NAME ": crypto error -5"))
		TH_LOG("%s: no \"crypto error\" line in the kernel log",
		       variant->async[0] == 'Y' ? "async" : "sync");
	free(klog);
	finish(_metadata, self);
}

/* A failure in the middle of a bio of 16 requests fails that bio. */
TEST_F_TIMEOUT(fault_crypto, fault_crypto_multi_request_bio_fails_whole, 600)
{
	unsigned char *buf = cmk_alloc(65536);
	long inj0, req0, inj, req;
	unsigned int r, eio_w = 0, eio_r = 0;
	char every[16];
	int err;

	SKIP_WITHOUT_MOD();
	ASSERT_NE(NULL, buf);
	start(_metadata, self);
	for (r = 0; r < 8; r++) {
		off_t off = (off_t)r * 65536;

		inj0 = param_read("injected");
		req0 = param_read("requests");
		/*
		 * One request in 17..31 fails: most bios of 16 meet one, at
		 * a place that varies from round to round.
		 */
		snprintf(every, sizeof(every), "%u", 17 + 2 * r);
		ASSERT_EQ(0, param_write("every", every));
		cmk_fill(buf, 65536, 0xb10c + r);
		err = cmk_dev_write(self->path, buf, 65536, off, true);
		ASSERT_EQ(0, param_write("every", "0"));
		inj = param_read("injected") - inj0;
		req = param_read("requests") - req0;
		TH_LOG("64 KiB write %u: %s, %ld requests, %ld injected", r,
		       err ? strerror(-err) : "ok", req, inj);
		if (inj) {
			EXPECT_EQ(-EIO, err);
			eio_w++;
		} else {
			EXPECT_EQ(0, err);
		}
		if (!err)
			memcpy(self->model + off, buf, 65536);
		else
			/* a failed write is not half-written: old content */
			ASSERT_EQ(0, cmk_dev_read(self->path, self->model + off,
						  65536, off, true));

		/* one in 33..47: some reads go through and are compared */
		snprintf(every, sizeof(every), "%u", 33 + 2 * r);
		inj0 = param_read("injected");
		req0 = param_read("requests");
		ASSERT_EQ(0, param_write("every", every));
		err = cmk_dev_read(self->path, buf, 65536, off, true);
		ASSERT_EQ(0, param_write("every", "0"));
		inj = param_read("injected") - inj0;
		req = param_read("requests") - req0;
		TH_LOG("64 KiB read %u: %s, %ld requests, %ld injected", r,
		       err ? strerror(-err) : "ok", req, inj);
		if (inj) {
			EXPECT_EQ(-EIO, err);
			eio_r++;
		} else {
			EXPECT_EQ(0, err);
			EXPECT_EQ(0, memcmp(buf, self->model + off, 65536));
		}
	}
	TH_LOG("%u of 8 writes and %u of 8 reads of 16 requests failed", eio_w,
	       eio_r);
	EXPECT_LT(0U, eio_w + eio_r);
	free(buf);
	finish(_metadata, self);
}

TEST_HARNESS_MAIN
