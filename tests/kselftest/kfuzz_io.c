// SPDX-License-Identifier: GPL-2.0
/*
 * kfuzz_io.c - one O_DIRECT writer/verifier thread per device slot.
 *
 * Oracle: a block written successfully through a device reads back the
 * same through that device as long as the device's mapping did not change
 * in between (same even epoch, see struct kf_slot).  The key of a device
 * never changes in its life, so a KEY_SET, wipe or lease expiry may make
 * I/O fail, but never return other data.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cmk_lib.h"
#include "kfuzz.h"

struct kf_block {
	unsigned int epoch;	/* even epoch it was written in */
	bool valid;
	uint64_t seed;		/* of its content */
};

struct kf_io_thread {
	pthread_t tid;
	int slot;
	uint64_t rng;
	struct kf_block blocks[KF_BLOCKS];
	_Atomic uint64_t busy_since;	/* ms, 0 when idle */
	char busy_what[96];
};

static struct kf_io_thread io_threads[KF_SLOTS];
static atomic_bool io_running;
static bool io_started;
static pthread_mutex_t io_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kf_io_stats io_stats;
static char io_mismatch[512];
static _Atomic uint64_t io_slowest_ms;	/* the longest pread/pwrite */

static void stat_add(uint64_t *field)
{
	pthread_mutex_lock(&io_lock);
	(*field)++;
	pthread_mutex_unlock(&io_lock);
}

/*
 * Open the slot's device and make sure the descriptor is the device named
 * kf-<slot>: a minor can be reused by another slot's new device.  The open
 * descriptor pins the device, so the name cannot change under it.
 */
static int open_slot(int s)
{
	unsigned int minor = atomic_load(&kf_slots[s].minor);
	char path[64], sys[128], name[64], want[32];
	struct stat st;
	ssize_t r;
	int fd, nfd;

	if (!minor)
		return -ENODEV;
	snprintf(path, sizeof(path), "/dev/dm-%u", minor - 1);
	fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st))
		goto bad;
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/dm/name",
		 major(st.st_rdev), minor(st.st_rdev));
	nfd = open(sys, O_RDONLY | O_CLOEXEC);
	if (nfd < 0)
		goto bad;
	r = read(nfd, name, sizeof(name) - 1);
	close(nfd);
	if (r <= 0)
		goto bad;
	name[r] = '\0';
	name[strcspn(name, "\n")] = '\0';
	snprintf(want, sizeof(want), KF_DEV_PREFIX "%d", s);
	if (strcmp(name, want))
		goto bad;
	return fd;
bad:
	close(fd);
	return -ESTALE;
}

static void fill_block(unsigned char *buf, int slot, int blk, uint64_t seed)
{
	cmk_fill(buf, KF_BLOCK, seed);
	/* a readable header for a mismatch report */
	snprintf((char *)buf, 64, "kfuzz slot %d block %d seed %016llx",
		 slot, blk, (unsigned long long)seed);
}

static void report_mismatch(struct kf_io_thread *t, int blk,
			    const unsigned char *got, unsigned int epoch)
{
	char head[40];
	size_t i;

	for (i = 0; i < sizeof(head) - 1; i++)
		head[i] = (got[i] >= 32 && got[i] < 127) ? (char)got[i] : '.';
	head[sizeof(head) - 1] = '\0';
	pthread_mutex_lock(&io_lock);
	io_stats.mismatches++;
	if (!io_mismatch[0])
		snprintf(io_mismatch, sizeof(io_mismatch),
			 "device kf-%d block %d (epoch %u): read back other data than written with seed %016llx; read starts \"%s\"",
			 t->slot, blk, epoch,
			 (unsigned long long)t->blocks[blk].seed, head);
	pthread_mutex_unlock(&io_lock);
}

/* A device without a key fails at once: leave the CPU to the operations. */
static void io_error(void)
{
	stat_add(&io_stats.io_errors);
	cmk_sleep_ms(2);
}

/* The I/O call of @t returned: note how long it took. */
static void idle(struct kf_io_thread *t)
{
	uint64_t took = cmk_now_ms() - atomic_load(&t->busy_since);
	uint64_t prev = atomic_load(&io_slowest_ms);

	while (took > prev &&
	       !atomic_compare_exchange_weak(&io_slowest_ms, &prev, took))
		;
	atomic_store(&t->busy_since, 0);
}

uint64_t kf_io_slowest_ms(void)
{
	return atomic_load(&io_slowest_ms);
}

static void busy(struct kf_io_thread *t, const char *what, int blk)
{
	snprintf(t->busy_what, sizeof(t->busy_what), "%s kf-%d block %d",
		 what, t->slot, blk);
	atomic_store(&t->busy_since, cmk_now_ms());
}

/* One batch of I/O through one open of the device. */
static void io_batch(struct kf_io_thread *t, unsigned char *wbuf,
		     unsigned char *rbuf)
{
	struct kf_slot *sl = &kf_slots[t->slot];
	unsigned int e0, e1;
	int fd, i;

	e0 = atomic_load(&sl->epoch);
	if (e0 & 1) {
		cmk_sleep_ms(5);
		return;
	}
	fd = open_slot(t->slot);
	if (fd < 0) {
		cmk_sleep_ms(fd == -ENODEV ? 20 : 5);
		return;
	}
	for (i = 0; i < 16 && atomic_load(&io_running); i++) {
		int blk = (int)kf_below(&t->rng, KF_BLOCKS);
		struct kf_block *b = &t->blocks[blk];
		off_t off = (off_t)blk * KF_BLOCK;
		ssize_t r;

		e0 = atomic_load(&sl->epoch);
		if (kf_below(&t->rng, 2)) {
			uint64_t seed = kf_rand(&t->rng);

			/* unknown until the write is known to be complete */
			b->valid = false;
			fill_block(wbuf, t->slot, blk, seed);
			busy(t, "write", blk);
			r = pwrite(fd, wbuf, KF_BLOCK, off);
			idle(t);
			e1 = atomic_load(&sl->epoch);
			if (r != KF_BLOCK) {
				io_error();
				continue;
			}
			stat_add(&io_stats.writes);
			if (e0 == e1 && !(e0 & 1)) {
				b->valid = true;
				b->epoch = e0;
				b->seed = seed;
			}
		} else {
			busy(t, "read", blk);
			r = pread(fd, rbuf, KF_BLOCK, off);
			idle(t);
			e1 = atomic_load(&sl->epoch);
			if (r != KF_BLOCK) {
				io_error();
				continue;
			}
			stat_add(&io_stats.reads);
			if (!b->valid || e0 != e1 || e0 != b->epoch)
				continue;
			fill_block(wbuf, t->slot, blk, b->seed);
			if (memcmp(wbuf, rbuf, KF_BLOCK))
				report_mismatch(t, blk, rbuf, e0);
			else
				stat_add(&io_stats.verified);
		}
	}
	close(fd);
}

static void *io_main(void *arg)
{
	struct kf_io_thread *t = arg;
	unsigned char *wbuf = cmk_alloc(KF_BLOCK), *rbuf = cmk_alloc(KF_BLOCK);

	if (!wbuf || !rbuf)
		goto out;
	while (atomic_load(&io_running))
		io_batch(t, wbuf, rbuf);
out:
	free(wbuf);
	free(rbuf);
	return NULL;
}

int kf_io_start(uint64_t seed)
{
	int s, err;

	memset(&io_stats, 0, sizeof(io_stats));
	io_mismatch[0] = '\0';
	atomic_store(&io_slowest_ms, 0);
	atomic_store(&io_running, true);
	for (s = 0; s < KF_SLOTS; s++) {
		struct kf_io_thread *t = &io_threads[s];

		memset(t->blocks, 0, sizeof(t->blocks));
		t->slot = s;
		t->rng = seed ^ (0x696f000000000000ULL + (uint64_t)s);
		atomic_store(&t->busy_since, 0);
		err = pthread_create(&t->tid, NULL, io_main, t);
		if (err) {
			atomic_store(&io_running, false);
			while (s--)
				pthread_join(io_threads[s].tid, NULL);
			return -err;
		}
	}
	io_started = true;
	return 0;
}

void kf_io_stop(void)
{
	int s;

	if (!io_started)
		return;
	atomic_store(&io_running, false);
	for (s = 0; s < KF_SLOTS; s++)
		pthread_join(io_threads[s].tid, NULL);
	io_started = false;
}

void kf_io_get_stats(struct kf_io_stats *st)
{
	pthread_mutex_lock(&io_lock);
	*st = io_stats;
	pthread_mutex_unlock(&io_lock);
}

const char *kf_io_mismatch(void)
{
	return io_mismatch;
}

uint64_t kf_io_busy_since(char *what, size_t sz)
{
	uint64_t oldest = 0;
	int s;

	if (!io_started)
		return 0;
	for (s = 0; s < KF_SLOTS; s++) {
		uint64_t b = atomic_load(&io_threads[s].busy_since);
		uint64_t rq = atomic_load(&kf_slots[s].requeued_ms);

		/* held again afresh after a noflush suspend and resume */
		if (b && rq > b)
			b = rq;
		if (b && (!oldest || b < oldest)) {
			oldest = b;
			snprintf(what, sz, "%s", io_threads[s].busy_what);
		}
	}
	return oldest;
}
