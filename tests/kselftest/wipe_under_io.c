// SPDX-License-Identifier: GPL-2.0
/*
 * wipe_under_io - KEY_WIPE while threads hammer the device with direct I/O.
 *
 * Oracle: self-describing data and the contract.  Every 512-byte sector
 * written carries (magic, block, version, sector) and a filler derived from
 * them, so any read can be checked on its own.  Each thread owns a disjoint
 * set of 4 KiB blocks and knows the last version acknowledged for each, and
 * the versions it tried but saw fail.  Then:
 *  - every read that succeeds returns, sector by sector, a version that was
 *    acknowledged or at least tried (never garbage from a stale or zero key);
 *  - every I/O issued after the KEY_WIPE reply fails with EIO;
 *  - no thread hangs (joined with a generous deadline);
 *  - after a new KEY_SET every block holds its acknowledged version (or a
 *    later one whose write reported failure).
 */
#include "cmk_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define DM_NAME		CMK_DM_PREFIX "wipe"
#define KEY_NAME	"wipe-under-io"
#define BLK		4096
#define NBLK		1024		/* 4 MiB */
#define NTHREADS	4
#define HAMMER_MS	1500
#define AFTER_MS	700

struct hammer {
	const char *path;
	atomic_bool stop;
	atomic_bool wiped;		/* set once the KEY_WIPE reply arrived */
	uint64_t acked[NBLK];		/* last acknowledged version */
	uint64_t tried[NBLK];		/* highest version ever submitted */
	atomic_ulong ok_before, eio, issued_after, reads_checked;
	atomic_ulong violations;
	pthread_mutex_t lock;
	char problem[256];
};

struct worker {
	struct hammer *h;
	unsigned int id;
	pthread_t thread;
	int err;
};

static const char magic[8] = "CMKWIPE!";

static void make_sector(unsigned char *s, uint64_t blk, uint64_t ver,
			unsigned int idx)
{
	uint64_t hdr[3] = { blk, ver, idx };

	memcpy(s, magic, 8);
	memcpy(s + 8, hdr, sizeof(hdr));
	cmk_fill(s + 32, 480, (blk << 40) ^ (ver << 8) ^ idx);
}

static void make_block(unsigned char *b, uint64_t blk, uint64_t ver)
{
	unsigned int i;

	for (i = 0; i < BLK / 512; i++)
		make_sector(b + i * 512, blk, ver, i);
}

/*
 * Each sector must be a well-formed sector of block @blk whose version is
 * acked[blk] or lies in (acked[blk], tried[blk]].  Returns NULL or why not.
 */
static const char *check_block(const struct hammer *h, const unsigned char *b,
			       uint64_t blk)
{
	unsigned char want[512];
	unsigned int i;

	for (i = 0; i < BLK / 512; i++) {
		const unsigned char *s = b + i * 512;
		uint64_t hdr[3];

		if (memcmp(s, magic, 8))
			return "sector without magic (garbage or wrong key)";
		memcpy(hdr, s + 8, sizeof(hdr));
		if (hdr[0] != blk || hdr[2] != i)
			return "sector of another block or position";
		if (hdr[1] < h->acked[blk] || hdr[1] > h->tried[blk])
			return "sector of a version never written or superseded";
		make_sector(want, blk, hdr[1], i);
		if (memcmp(s, want, 512))
			return "corrupt sector";
	}
	return NULL;
}

static void problem(struct hammer *h, const char *what, uint64_t blk)
{
	atomic_fetch_add(&h->violations, 1);
	pthread_mutex_lock(&h->lock);
	if (!h->problem[0])
		snprintf(h->problem, sizeof(h->problem), "%s (block %llu)",
			 what, (unsigned long long)blk);
	pthread_mutex_unlock(&h->lock);
}

static void *worker_fn(void *arg)
{
	struct worker *w = arg;
	struct hammer *h = w->h;
	unsigned char *buf = cmk_alloc(BLK);
	uint64_t rnd = 0x1234567 + w->id;
	int fd;

	if (!buf) {
		w->err = -ENOMEM;
		return NULL;
	}
	fd = cmk_open(h->path, true);
	if (fd < 0) {
		w->err = fd;
		free(buf);
		return NULL;
	}
	while (!atomic_load(&h->stop)) {
		uint64_t blk, r;
		bool after, write;
		ssize_t n;

		rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
		r = rnd >> 33;
		blk = w->id + NTHREADS * (r % (NBLK / NTHREADS));
		write = (r >> 20) & 1;
		after = atomic_load(&h->wiped);
		if (after)
			atomic_fetch_add(&h->issued_after, 1);

		if (write) {
			uint64_t ver = h->tried[blk] + 1;

			make_block(buf, blk, ver);
			h->tried[blk] = ver;
			n = pwrite(fd, buf, BLK, (off_t)(blk * BLK));
			if (n == BLK) {
				h->acked[blk] = ver;
				if (after)
					problem(h, "write succeeded after KEY_WIPE", blk);
				else
					atomic_fetch_add(&h->ok_before, 1);
			} else if (n < 0 && errno == EIO) {
				atomic_fetch_add(&h->eio, 1);
			} else {
				problem(h, n < 0 ? strerror(errno) : "short write",
					blk);
			}
		} else {
			memset(buf, 0, BLK);
			n = pread(fd, buf, BLK, (off_t)(blk * BLK));
			if (n == BLK) {
				const char *bad = check_block(h, buf, blk);

				atomic_fetch_add(&h->reads_checked, 1);
				if (bad)
					problem(h, bad, blk);
				if (after)
					problem(h, "read succeeded after KEY_WIPE", blk);
				else
					atomic_fetch_add(&h->ok_before, 1);
			} else if (n < 0 && errno == EIO) {
				atomic_fetch_add(&h->eio, 1);
			} else {
				problem(h, n < 0 ? strerror(errno) : "short read",
					blk);
			}
		}
	}
	close(fd);
	free(buf);
	return NULL;
}

FIXTURE(wipe_under_io) {
	struct cmk_nl nl;
	uint8_t key[DM_CMK_KEY_LEN];
	char path[128];
	struct hammer *h;
};

FIXTURE_VARIANT(wipe_under_io) {
	const char *opts;
};

FIXTURE_VARIANT_ADD(wipe_under_io, sector512) {
	.opts = NULL,
};

FIXTURE_VARIANT_ADD(wipe_under_io, sector4096) {
	.opts = "sector_size:4096",
};

FIXTURE_VARIANT_ADD(wipe_under_io, sector512_no_workqueues) {
	.opts = "no_read_workqueue no_write_workqueue",
};

FIXTURE_VARIANT_ADD(wipe_under_io, sector512_force_workqueue) {
	.opts = "force_workqueue",
};

FIXTURE_SETUP(wipe_under_io)
{
	struct cmk_table t = {
		.len = NBLK * BLK / 512, .key_name = KEY_NAME,
		.dev = CMK_RAM(0), .opts = variant->opts,
	};
	unsigned char *all;
	uint64_t b;

	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	cmk_key_make(self->key, 11);
	ASSERT_CMK_CREATE(DM_NAME, &t);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);

	self->h = calloc(1, sizeof(*self->h));
	ASSERT_NE(NULL, self->h);
	self->h->path = self->path;
	pthread_mutex_init(&self->h->lock, NULL);

	/* version 1 of every block, acknowledged */
	all = cmk_alloc(NBLK * BLK);
	ASSERT_NE(NULL, all);
	for (b = 0; b < NBLK; b++) {
		make_block(all + b * BLK, b, 1);
		self->h->acked[b] = self->h->tried[b] = 1;
	}
	ASSERT_EQ(0, cmk_dev_write(self->path, all, NBLK * BLK, 0, true));
	free(all);
}

FIXTURE_TEARDOWN(wipe_under_io)
{
	free(self->h);
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
}

TEST_F_TIMEOUT(wipe_under_io, wipe_during_io_fails_cleanly_and_keeps_data, 180)
{
	struct worker w[NTHREADS];
	struct hammer *h = self->h;
	unsigned char *buf = cmk_alloc(BLK);
	struct timespec deadline;
	char ext[256];
	unsigned int i, hung = 0;
	uint64_t b;
	int err;

	ASSERT_NE(NULL, buf);
	for (i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .h = h, .id = i };
		ASSERT_EQ(0, pthread_create(&w[i].thread, NULL, worker_fn,
					    &w[i]));
	}
	cmk_sleep_ms(HAMMER_MS);
	err = cmk_key_wipe(&self->nl, KEY_NAME, DM_CMK_REASON_REVOKED, ext,
			   sizeof(ext));
	atomic_store(&h->wiped, true);
	cmk_sleep_ms(AFTER_MS);
	atomic_store(&h->stop, true);

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 60;
	for (i = 0; i < NTHREADS; i++)
		if (pthread_timedjoin_np(w[i].thread, NULL, &deadline))
			hung++;
	ASSERT_EQ(0U, hung) TH_LOG("%u I/O threads hang after KEY_WIPE", hung);
	ASSERT_EQ(0, err) TH_LOG("KEY_WIPE under I/O: %s (%s)", strerror(-err),
				 ext);
	for (i = 0; i < NTHREADS; i++)
		ASSERT_EQ(0, w[i].err);

	TH_LOG("ok before wipe %lu, EIO %lu, issued after wipe %lu, reads checked %lu",
	       atomic_load(&h->ok_before), atomic_load(&h->eio),
	       atomic_load(&h->issued_after), atomic_load(&h->reads_checked));
	ASSERT_EQ(0UL, atomic_load(&h->violations)) TH_LOG("%s", h->problem);
	/* the test must really have overlapped I/O with the wipe */
	ASSERT_LT(0UL, atomic_load(&h->ok_before));
	ASSERT_LT(0UL, atomic_load(&h->issued_after));
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_WIPED);

	/* a new key push brings back everything that was acknowledged */
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 2);
	for (b = 0; b < NBLK; b++) {
		const char *bad;

		ASSERT_EQ(0, cmk_dev_read(self->path, buf, BLK,
					  (off_t)(b * BLK), true));
		bad = check_block(h, buf, b);
		ASSERT_EQ(NULL, bad) TH_LOG("block %llu after re-key: %s",
					    (unsigned long long)b, bad);
	}
	free(buf);
}

TEST_HARNESS_MAIN
