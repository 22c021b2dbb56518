// SPDX-License-Identifier: GPL-2.0
/*
 * dm-cmk data path: AES-XTS with a plain64 IV, one crypto request per
 * encryption sector, byte for byte what dm-crypt's aes-xts-plain64 writes.
 *
 * Reads are remapped to the backing device as they are and decrypted in
 * place when they complete.  Writes are encrypted into bounce pages, which
 * go to the backing device in a bio of their own.  Everything a bio needs
 * lives in its per-bio data (struct cmk_io plus one skcipher request) or
 * comes from mempools, so the I/O path never depends on an allocation that
 * can fail.
 *
 * A bio takes a reference on the key only while doing its cryptography
 * (see cmk_key_get()), never while it waits for the backing device, so a
 * wipe waits at most for the crypto work of the bios already under way.
 * A bio that finds no key may wait for one (hold.c), in its per-bio data.
 *
 * Forward progress under memory pressure: writes take their bounce pages
 * before the key, from a per-target mempool whose target may use only its
 * share of RAM beyond the reserve (cmk_page_alloc()); continuations of
 * asynchronous crypto run in a workqueue of their own, which never waits
 * for bounce pages, so the writes whose pages the waiters need can always
 * finish.
 */

#include <linux/blkdev.h>
#include <linux/interrupt.h>
#include <linux/llist.h>
#include <linux/mm.h>
#include <linux/scatterlist.h>
#include <linux/workqueue.h>
#include <crypto/skcipher.h>
#include <asm/simd.h>

#include "compat.h"
#include "dm-cmk.h"

/* Largest write encrypted in one go; its bounce pages fit one bio. */
#define CMK_MAX_WRITE_SECTORS ((BIO_MAX_VECS << PAGE_SHIFT) >> SECTOR_SHIFT)

/*
 * Larger bios are cut into pieces of this size (whole encryption sectors)
 * when dm-cmk chooses where the crypto runs, see cmk_inline().
 */
#define CMK_PIECE_BYTES (64 * 1024)
#define CMK_PIECE_SECTORS (CMK_PIECE_BYTES >> SECTOR_SHIFT)

enum cmk_phase {
	CMK_PHASE_MAP,		/* held before mapping: map it now */
	CMK_PHASE_READ,		/* read completed: start decrypting */
	CMK_PHASE_WRITE,	/* write mapped: start encrypting */
	CMK_PHASE_CONTINUE,	/* an async request completed: go on */
};

/* Bounce pages beyond the reserves: a share of RAM for all targets. */
#define CMK_BOUNCE_RAM_PERCENT	2
static atomic_t cmk_nr_targets = ATOMIC_INIT(0);

/**
 * struct cmk_io - per-bio state, in the bio's per-bio data
 * @ct: the target
 * @bio: the bio device-mapper gave to cmk_map()
 * @clone: for writes, the bio carrying the ciphertext
 * @key: the key, held only during cryptography
 * @iter_in: what is left to encrypt or decrypt in @bio
 * @iter_out: where the next sector's ciphertext goes in @clone
 * @sector: IV sector of the next encryption sector, in 512-byte units
 * @end_io: for reads, @bio's completion handler, restored before ending it
 * @private: for reads, @bio's bi_private, restored likewise
 * @status: result so far
 * @cpu: the CPU cmk_map() ran on, whose &cmk_target.cpu_inflight counts
 *	the bio (its width checked against CONFIG_NR_CPUS below)
 * @phase: what @work does next, or where a held bio goes on,
 *	&enum cmk_phase
 * @work: runs the next phase in the target's workqueue
 * @held: the bio's place while it waits for a key (hold.c)
 * @bh_node: on this CPU's list of reads to decrypt in softirq context
 * @iv: IV of the request in flight
 * @sg_in: source of the request in flight
 * @sg_out: destination of the request in flight
 *
 * The skcipher request follows at &cmk_target.req_offset.
 */
struct cmk_io {
	struct cmk_target *ct;
	struct bio *bio;
	struct bio *clone;
	struct cmk_key *key;
	struct bvec_iter iter_in;
	struct bvec_iter iter_out;
	u64 sector;
	bio_end_io_t *end_io;
	void *private;
	blk_status_t status;
	u16 cpu;
	enum cmk_phase phase;
	struct work_struct work;
	struct cmk_held held;
	struct llist_node bh_node;
	u8 iv[CMK_IV_SIZE] __aligned(__alignof__(u64));
	struct scatterlist sg_in;
	struct scatterlist sg_out;
};

/* CPU numbers run up to NR_CPUS - 1: &cmk_io.cpu must hold them all. */
static_assert(CONFIG_NR_CPUS <=
	      1UL << (BITS_PER_BYTE * sizeof_field(struct cmk_io, cpu)));

unsigned int cmk_io_data_size(struct cmk_target *ct, unsigned int reqsize)
{
	ct->req_offset = ALIGN(sizeof(struct cmk_io), CRYPTO_MINALIGN);
	return ALIGN(ct->req_offset + sizeof(struct skcipher_request) + reqsize,
		     ARCH_KMALLOC_MINALIGN);
}

static inline struct skcipher_request *cmk_io_req(struct cmk_io *io)
{
	return (void *)io + io->ct->req_offset;
}

static void cmk_crypt_step(struct cmk_io *io);
static void cmk_read_crypt(struct cmk_io *io);
static void cmk_write_crypt(struct cmk_io *io);
static void cmk_read_submit(struct cmk_io *io);

static void cmk_io_work(struct work_struct *work)
{
	struct cmk_io *io = container_of(work, struct cmk_io, work);

	if (io->phase != CMK_PHASE_CONTINUE)
		atomic_dec(&io->ct->queued);
	switch (io->phase) {
	case CMK_PHASE_MAP:
		if (bio_data_dir(io->bio) == READ)
			cmk_read_submit(io);
		else
			cmk_write_crypt(io);
		break;
	case CMK_PHASE_READ:
		cmk_read_crypt(io);
		break;
	case CMK_PHASE_WRITE:
		cmk_write_crypt(io);
		break;
	case CMK_PHASE_CONTINUE:
		cmk_crypt_step(io);
		break;
	}
}

static void cmk_io_queue(struct cmk_io *io, enum cmk_phase phase)
{
	io->phase = phase;
	atomic_inc(&io->ct->queued);
	queue_work(io->ct->wq, &io->work);
}

/*
 * Continue after an asynchronous request, in the workqueue that never
 * waits for memory (see the top of this file).
 */
static void cmk_io_continue(struct cmk_io *io)
{
	io->phase = CMK_PHASE_CONTINUE;
	queue_work(io->ct->cont_wq, &io->work);
}

/*
 * Where to do a bio's crypto when the table leaves the choice to dm-cmk:
 * inline (in the submitter's context for writes, the completion's for
 * reads, softirq context after a hard interrupt: cmk_read_bh()) or in the
 * target's workqueue.
 *
 * A bio smaller than a piece is done inline: for 4 KiB I/O the hop to a
 * worker costs more than the cipher, and with several submitters each
 * already runs on its own CPU.  It goes to the workqueue only while more
 * bios are in flight than there are CPUs.
 *
 * Larger bios arrive cut into pieces (cmk_map()).  A piece goes to the
 * workqueue while fewer than two per CPU wait there, and is done inline
 * once the workers are that far behind.  So one large bio, or a stream of
 * them from one submitter, keeps every CPU mostly busy, with the submitter
 * taking the share its own fio or database work leaves it, even on a
 * device that completes bios before submit_bio() returns (brd, null_blk),
 * where the in-flight count never shows the queue depth.  A shorter queue
 * (one piece per other CPU) measured slower at queue depth 32 in the runs
 * that chose this rule, though not yet in an independent one.  On
 * null_blk 1 MiB reads at queue depth 32 this rule left the CPUs 3-4 %
 * more idle than force_workqueue at the same cost per MiB, and ran at
 * 0.97 of its rate (two runs).  With one CPU there is no one to share
 * with: every piece is done inline.
 * Documentation/benchmarks.rst has the measurements and profiles.
 */
static bool cmk_inline(struct cmk_io *io, enum cmk_target_flags no_wq)
{
	struct cmk_target *ct = io->ct;
	unsigned int cpus = num_online_cpus();

	if (test_bit(no_wq, &ct->flags))
		return true;
	if (test_bit(CMK_FORCE_WORKQUEUE, &ct->flags))
		return false;
	if (io->iter_in.bi_size >= CMK_PIECE_BYTES)
		return cpus == 1 || atomic_read(&ct->queued) >= 2 * cpus;
	return atomic_read(&ct->inflight) <= cpus;
}

/* The bio counts as in flight from cmk_map() until it ends. */
static void cmk_inflight_inc(struct cmk_io *io)
{
	/* a hint: the count stays right if the submitter moves on */
	io->cpu = raw_smp_processor_id();
	atomic_inc(&io->ct->inflight);
	atomic_inc(per_cpu_ptr(io->ct->cpu_inflight, io->cpu));
}

static void cmk_inflight_dec(struct cmk_io *io)
{
	atomic_dec(per_cpu_ptr(io->ct->cpu_inflight, io->cpu));
	atomic_dec(&io->ct->inflight);
}

/* Complete the bio dm-cmk was given; @io is gone after this. */
static void cmk_bio_done(struct cmk_io *io, blk_status_t status)
{
	struct bio *bio = io->bio;

	cmk_inflight_dec(io);
	bio->bi_status = status;
	bio_endio(bio);
}

static void cmk_read_finish(struct cmk_io *io)
{
	struct bio *bio = io->bio;

	bio->bi_end_io = io->end_io;
	bio->bi_private = io->private;
	cmk_bio_done(io, io->status);
}

static void cmk_free_bounce(struct cmk_io *io, struct bio *clone)
{
	struct bio_vec *bv;
	struct bvec_iter_all iter;

	bio_for_each_segment_all(bv, clone, iter)
		mempool_free(bv->bv_page, &io->ct->page_pool);
}

static void cmk_write_endio(struct bio *clone)
{
	struct cmk_io *io = clone->bi_private;
	struct cmk_slot *slot = io->ct->slot;
	blk_status_t status = clone->bi_status;

	cmk_free_bounce(io, clone);
	bio_put(clone);
	if (status)
		atomic64_inc(&slot->io_errors);
	else
		atomic64_inc(&slot->writes);
	cmk_bio_done(io, status);
}

/* All sectors are done (or one failed): hand the bio on. */
static void cmk_crypt_finish(struct cmk_io *io)
{
	struct cmk_slot *slot = io->ct->slot;

	cmk_key_put(io->key);
	io->key = NULL;
	if (io->status)
		atomic64_inc(&slot->io_errors);

	if (bio_data_dir(io->bio) == READ) {
		if (!io->status)
			atomic64_inc(&slot->reads);
		cmk_read_finish(io);
		return;
	}
	if (io->status) {
		cmk_free_bounce(io, io->clone);
		bio_put(io->clone);
		cmk_bio_done(io, io->status);
		return;
	}
	dm_submit_bio_remap(io->bio, io->clone);
}

static void cmk_crypt_advance(struct cmk_io *io)
{
	unsigned int len = io->ct->sector_size;

	bio_advance_iter(io->bio, &io->iter_in, len);
	if (io->clone)
		bio_advance_iter(io->clone, &io->iter_out, len);
	io->sector += len >> SECTOR_SHIFT;
}

/*
 * Completion of a request that went asynchronous.  -EINPROGRESS only says
 * a backlogged request has started; the real completion follows.  Carry on
 * in the workqueue, not in the crypto driver's completion context.
 */
static void cmk_crypt_async_done(CMK_ASYNC_ARG, int err)
{
	struct cmk_io *io = cmk_async_data(arg);

	if (err == -EINPROGRESS)
		return;
	if (err) {
		/* as loud as a synchronous failure in cmk_crypt_step() */
		DMERR_LIMIT("%s: crypto error %d", io->ct->slot->name, err);
		io->status = BLK_STS_IOERR;
		io->iter_in.bi_size = 0;
	} else {
		cmk_crypt_advance(io);
	}
	cmk_io_continue(io);
}

/*
 * Encrypt or decrypt the rest of the bio, one encryption sector per
 * request.  Returns early when a request goes asynchronous; its completion
 * calls back in here.
 */
static void cmk_crypt_step(struct cmk_io *io)
{
	struct cmk_target *ct = io->ct;
	struct skcipher_request *req = cmk_io_req(io);
	bool write = bio_data_dir(io->bio) == WRITE;
	unsigned int len = ct->sector_size;
	struct bio_vec in, out;
	u64 iv_sector;
	int ret;

	while (io->iter_in.bi_size) {
		in = bio_iter_iovec(io->bio, io->iter_in);
		if (unlikely(in.bv_len < len || in.bv_offset & (len - 1) ||
			     io->iter_in.bi_size & (len - 1))) {
			/* io_hints promise sector-aligned segments. */
			DMERR_LIMIT("%s: misaligned bio segment",
				    ct->slot->name);
			io->status = BLK_STS_IOERR;
			break;
		}
		sg_init_table(&io->sg_in, 1);
		sg_set_page(&io->sg_in, in.bv_page, len, in.bv_offset);
		if (write) {
			out = bio_iter_iovec(io->clone, io->iter_out);
			sg_init_table(&io->sg_out, 1);
			sg_set_page(&io->sg_out, out.bv_page, len,
				    out.bv_offset);
		}

		iv_sector = io->sector;
		if (test_bit(CMK_IV_LARGE_SECTORS, &ct->flags))
			iv_sector >>= ct->sector_shift;
		memset(io->iv, 0, sizeof(io->iv));
		*(__le64 *)io->iv = cpu_to_le64(iv_sector);

		skcipher_request_set_tfm(req, io->key->tfm);
		skcipher_request_set_callback(req, CRYPTO_TFM_REQ_MAY_BACKLOG,
					      cmk_crypt_async_done, io);
		skcipher_request_set_crypt(req, &io->sg_in,
					   write ? &io->sg_out : &io->sg_in,
					   len, io->iv);
		ret = write ? crypto_skcipher_encrypt(req) :
			      crypto_skcipher_decrypt(req);
		if (ret == -EINPROGRESS || ret == -EBUSY)
			return;
		if (ret) {
			DMERR_LIMIT("%s: crypto error %d", ct->slot->name, ret);
			io->status = BLK_STS_IOERR;
			break;
		}
		cmk_crypt_advance(io);
	}
	cmk_crypt_finish(io);
}

/* Refuse a bio because the slot holds no usable key. */
static void cmk_refuse(struct cmk_target *ct)
{
	struct cmk_slot *slot = ct->slot;

	cmk_slot_note_refused(slot);
	DMERR_LIMIT("%s: I/O refused, device is %s", slot->name,
		    cmk_state_name(READ_ONCE(slot->state)));
}

/*
 * The slot has no usable key for @io: let it wait for one (it goes on in
 * @phase when a key comes), or tell the caller to fail it.
 */
static enum cmk_hold_result cmk_io_hold(struct cmk_io *io,
					enum cmk_phase phase)
{
	/* Set before it is on the list: a release may come at once. */
	io->phase = phase;
	return cmk_hold(io->ct->slot, &io->held, io->ct->hold_ms);
}

/**
 * cmk_io_unhold() - a held bio goes on, or fails
 * @h: the bio's hold entry, off the list
 * @how: %CMK_UNHOLD_RESUME: queue it to go on where it stopped;
 *	%CMK_UNHOLD_FAIL: fail it with EIO
 */
void cmk_io_unhold(struct cmk_held *h, enum cmk_unhold how)
{
	struct cmk_io *io = container_of(h, struct cmk_io, held);

	blk_status_t status = BLK_STS_DM_REQUEUE;

	if (how == CMK_UNHOLD_RESUME) {
		cmk_io_queue(io, io->phase);
		return;
	}
	if (how == CMK_UNHOLD_FAIL) {
		cmk_refuse(io->ct);
		status = BLK_STS_IOERR;
	}
	if (io->phase == CMK_PHASE_READ) {
		io->status = status;
		cmk_read_finish(io);
	} else {
		/* Not yet mapped, or a write whose bounce pages went back. */
		cmk_bio_done(io, status);
	}
}

/* Start decrypting a read that completed. */
static void cmk_read_crypt(struct cmk_io *io)
{
	for (;;) {
		io->key = cmk_key_get(io->ct->slot);
		if (io->key)
			break;
		switch (cmk_io_hold(io, CMK_PHASE_READ)) {
		case CMK_HOLD_HELD:
			return;
		case CMK_HOLD_REFUSE:
			cmk_refuse(io->ct);
			io->status = BLK_STS_IOERR;
			cmk_read_finish(io);
			return;
		case CMK_HOLD_REQUEUE:
			io->status = BLK_STS_DM_REQUEUE;
			cmk_read_finish(io);
			return;
		case CMK_HOLD_RETRY:
			break;
		}
	}
	cmk_crypt_step(io);
}

/*
 * A small read that completes in hard-interrupt context on the CPU that
 * mapped it (NVMe and multi-queue virtio-blk completing on the submitting
 * CPU; single-queue devices complete in BLOCK_SOFTIRQ, where reads are
 * decrypted inline anyway) while it is alone among the bios mapped on
 * that CPU is decrypted in softirq context there: no worker to wake for a
 * 4 KiB read at queue depth 1, one submitter per CPU.  With more in
 * flight from that CPU, the workqueue: softirq runs on the CPU the disk
 * interrupted and would leave the other CPUs idle (one fio job at queue
 * depth 32 did not gain from it, Documentation/benchmarks.rst).  A read
 * completed on another CPU goes to the workqueue too: that CPU may take
 * the interrupts of many submitters.  So do larger reads: their workers
 * are awake for the stream anyway, and their cipher would hold up other
 * softirq work (the network's).  Each CPU keeps a list of these reads (in
 * all the lists, at most one per target and CPU of mapping) and drains it
 * from a BH work item (Linux >= 6.9) or a tasklet, both in module data:
 * dm-crypt kept its tasklet in the per-bio data, where the bio that ends
 * in the handler frees it before the tasklet code is done with it, and
 * gave tasklets up (Linux 6.8) for that.
 */
struct cmk_bh {
	struct llist_head ios;
#ifdef CMK_HAVE_BH_WQ
	struct work_struct work;
#else
	struct tasklet_struct tasklet;
#endif
};

/*
 * Bytes one drain decrypts, the rest of its list goes to the workqueue: a
 * bound on the softirq time it adds, even with a generic (non-SIMD) XTS.
 */
#define CMK_BH_BUDGET	(64 * 1024)

static DEFINE_PER_CPU(struct cmk_bh, cmk_bh);

static void cmk_bh_drain(struct cmk_bh *bh)
{
	struct llist_node *first = llist_del_all(&bh->ios);
	unsigned int budget = CMK_BH_BUDGET;
	struct cmk_io *io, *next;

	/* oldest first; cmk_read_crypt() may end the bio and free @io */
	first = llist_reverse_order(first);
	llist_for_each_entry_safe(io, next, first, bh_node) {
		/*
		 * Where the FPU is taken (a hard interrupt came in the middle
		 * of kernel FPU use), a SIMD cipher would pass the request to
		 * cryptd: two hops instead of the workqueue's one.
		 */
		if (io->iter_in.bi_size <= budget && may_use_simd()) {
			budget -= io->iter_in.bi_size;
			cmk_read_crypt(io);
		} else {
			budget = 0;
			cmk_io_queue(io, CMK_PHASE_READ);
		}
	}
}

#ifdef CMK_HAVE_BH_WQ
static void cmk_bh_fn(struct work_struct *work)
{
	cmk_bh_drain(container_of(work, struct cmk_bh, work));
}

static void cmk_bh_kick(struct cmk_bh *bh)
{
	queue_work(system_bh_wq, &bh->work);
}
#else
static void cmk_bh_fn(struct tasklet_struct *t)
{
	struct cmk_bh *bh = from_tasklet(bh, t, tasklet);

	cmk_bh_drain(bh);
}

static void cmk_bh_kick(struct cmk_bh *bh)
{
	tasklet_schedule(&bh->tasklet);
}
#endif

/* Called in hard-interrupt context, or at least with interrupts off. */
static void cmk_read_bh(struct cmk_io *io)
{
	struct cmk_bh *bh = this_cpu_ptr(&cmk_bh);

	/* A list that was not empty has its drain on the way. */
	if (llist_add(&io->bh_node, &bh->ios))
		cmk_bh_kick(bh);
}

void __init cmk_io_init(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct cmk_bh *bh = per_cpu_ptr(&cmk_bh, cpu);

		init_llist_head(&bh->ios);
#ifdef CMK_HAVE_BH_WQ
		INIT_WORK(&bh->work, cmk_bh_fn);
#else
		tasklet_setup(&bh->tasklet, cmk_bh_fn);
#endif
	}
}

/* Every target is gone, so no read can be queued any more. */
void cmk_io_exit(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct cmk_bh *bh = per_cpu_ptr(&cmk_bh, cpu);

#ifdef CMK_HAVE_BH_WQ
		flush_work(&bh->work);
#else
		tasklet_kill(&bh->tasklet);
#endif
		WARN_ON_ONCE(!llist_empty(&bh->ios));
	}
}

static void cmk_read_endio(struct bio *bio)
{
	struct cmk_io *io = bio->bi_private;
	struct cmk_target *ct = io->ct;

	if (bio->bi_status) {
		atomic64_inc(&ct->slot->io_errors);
		io->status = bio->bi_status;
		cmk_read_finish(io);
		return;
	}
	if (!cmk_inline(io, CMK_NO_READ_WORKQUEUE))
		cmk_io_queue(io, CMK_PHASE_READ);
	else if (!in_hardirq() && !irqs_disabled())
		cmk_read_crypt(io);
	else if (io->iter_in.bi_size < CMK_PIECE_BYTES &&
		 io->cpu == smp_processor_id() &&
		 atomic_read(per_cpu_ptr(ct->cpu_inflight, io->cpu)) == 1)
		cmk_read_bh(io);
	else
		cmk_io_queue(io, CMK_PHASE_READ);
}

/*
 * Get bounce pages for a write.  Try without waiting first; if that fails,
 * wait for the pool, one bio at a time, so that two bios can never each
 * hold part of the reserve the other needs.
 */
static void cmk_alloc_bounce(struct cmk_io *io, unsigned int size)
{
	struct cmk_target *ct = io->ct;
	unsigned int nr = DIV_ROUND_UP(size, PAGE_SIZE);
	gfp_t gfp = GFP_NOWAIT | __GFP_NOWARN;
	bool locked = false;
	struct bio *clone;
	struct page *page;
	unsigned int i, len;

retry:
	/* Nobody polls for the clone: dm polls the bio it was given. */
	clone = bio_alloc_bioset(ct->dev->bdev, nr,
				 io->bio->bi_opf & ~REQ_POLLED, GFP_NOIO,
				 &ct->bs);
	for (i = 0; i < nr; i++) {
		page = mempool_alloc(&ct->page_pool, gfp);
		if (!page) {
			cmk_free_bounce(io, clone);
			bio_put(clone);
			mutex_lock(&ct->bounce_lock);
			locked = true;
			gfp = GFP_NOIO;
			goto retry;
		}
		len = min_t(unsigned int, size - i * PAGE_SIZE, PAGE_SIZE);
		__bio_add_page(clone, page, len, 0);
	}
	if (locked)
		mutex_unlock(&ct->bounce_lock);

	clone->bi_iter.bi_sector = ct->start + io->sector - ct->iv_offset;
	clone->bi_ioprio = io->bio->bi_ioprio;
	clone->bi_private = io;
	clone->bi_end_io = cmk_write_endio;
	bio_clone_blkg_association(clone, io->bio);
	io->clone = clone;
	io->iter_out = clone->bi_iter;
}

static void cmk_write_crypt(struct cmk_io *io)
{
	for (;;) {
		/* Allocate first: the key reference is held only for crypto. */
		cmk_alloc_bounce(io, io->iter_in.bi_size);
		io->key = cmk_key_get(io->ct->slot);
		if (io->key)
			break;
		/* No key: don't sit on bounce pages while waiting for one. */
		cmk_free_bounce(io, io->clone);
		bio_put(io->clone);
		io->clone = NULL;
		switch (cmk_io_hold(io, CMK_PHASE_WRITE)) {
		case CMK_HOLD_HELD:
			return;
		case CMK_HOLD_REFUSE:
			cmk_refuse(io->ct);
			cmk_bio_done(io, BLK_STS_IOERR);
			return;
		case CMK_HOLD_REQUEUE:
			cmk_bio_done(io, BLK_STS_DM_REQUEUE);
			return;
		case CMK_HOLD_RETRY:
			break;
		}
	}
	cmk_crypt_step(io);
}

/* Send @bio to the backing device, at the target's offset. */
static void cmk_remap(struct cmk_target *ct, struct bio *bio)
{
	bio_set_dev(bio, ct->dev->bdev);
	if (bio_sectors(bio))
		bio->bi_iter.bi_sector = ct->start +
			dm_target_offset(ct->ti, bio->bi_iter.bi_sector);
}

/* A read is decrypted when it completes: hook its completion. */
static void cmk_read_hook(struct cmk_io *io)
{
	struct bio *bio = io->bio;

	io->end_io = bio->bi_end_io;
	io->private = bio->bi_private;
	bio->bi_end_io = cmk_read_endio;
	bio->bi_private = io;
	cmk_remap(io->ct, bio);
}

/* A read that waited for the key before it was mapped goes out now. */
static void cmk_read_submit(struct cmk_io *io)
{
	cmk_read_hook(io);
	dm_submit_bio_remap(io->bio, NULL);
}

int cmk_map(struct dm_target *ti, struct bio *bio)
{
	struct cmk_target *ct = ti->private;
	struct cmk_io *io;
	sector_t sector;

	/* An empty flush carries no data; a discard only if allowed. */
	if (unlikely(bio->bi_opf & REQ_PREFLUSH) && !bio_has_data(bio)) {
		cmk_remap(ct, bio);
		return DM_MAPIO_REMAPPED;
	}
	if (bio_op(bio) == REQ_OP_DISCARD) {
		if (!test_bit(CMK_ALLOW_DISCARDS, &ct->flags))
			return DM_MAPIO_KILL;
		cmk_remap(ct, bio);
		return DM_MAPIO_REMAPPED;
	}
	if (unlikely(bio_op(bio) != REQ_OP_READ &&
		     bio_op(bio) != REQ_OP_WRITE))
		return DM_MAPIO_KILL;

	/* When dm-cmk chooses where the crypto runs: pieces, see cmk_inline() */
	if (bio_sectors(bio) > CMK_PIECE_SECTORS &&
	    !test_bit(CMK_FORCE_WORKQUEUE, &ct->flags) &&
	    !test_bit(bio_data_dir(bio) == WRITE ? CMK_NO_WRITE_WORKQUEUE :
		      CMK_NO_READ_WORKQUEUE, &ct->flags))
		dm_accept_partial_bio(bio, CMK_PIECE_SECTORS);
	else if (bio_data_dir(bio) == WRITE &&
		 bio_sectors(bio) > CMK_MAX_WRITE_SECTORS)
		dm_accept_partial_bio(bio, CMK_MAX_WRITE_SECTORS);

	sector = dm_target_offset(ti, bio->bi_iter.bi_sector);
	if (unlikely(sector & ((ct->sector_size >> SECTOR_SHIFT) - 1) ||
		     bio->bi_iter.bi_size & (ct->sector_size - 1)))
		return DM_MAPIO_KILL;

	io = dm_per_bio_data(bio, ti->per_io_data_size);
	io->ct = ct;
	io->bio = bio;
	io->clone = NULL;
	io->key = NULL;
	io->iter_in = bio->bi_iter;
	io->sector = sector + ct->iv_offset;
	io->status = BLK_STS_OK;
	INIT_WORK(&io->work, cmk_io_work);
	INIT_LIST_HEAD(&io->held.node);
	io->held.waited = false;
	cmk_inflight_inc(io);

	/* No key: wait for one before touching the backing device. */
	if (unlikely(READ_ONCE(ct->slot->state) != DM_CMK_STATE_ACTIVE)) {
		switch (cmk_io_hold(io, CMK_PHASE_MAP)) {
		case CMK_HOLD_HELD:
			return DM_MAPIO_SUBMITTED;
		case CMK_HOLD_REFUSE:
			cmk_inflight_dec(io);
			cmk_refuse(ct);
			return DM_MAPIO_KILL;
		case CMK_HOLD_REQUEUE:
			cmk_inflight_dec(io);
			return DM_MAPIO_REQUEUE;
		case CMK_HOLD_RETRY:
			break;
		}
	}

	if (bio_data_dir(bio) == READ) {
		cmk_read_hook(io);
		return DM_MAPIO_REMAPPED;
	}

	if (cmk_inline(io, CMK_NO_WRITE_WORKQUEUE))
		cmk_write_crypt(io);
	else
		cmk_io_queue(io, CMK_PHASE_WRITE);
	return DM_MAPIO_SUBMITTED;
}

/*
 * Bounce pages beyond a mempool's reserve come from the page allocator,
 * up to a share of RAM: 2 % for all targets together, split between them,
 * and at least CMK_BOUNCE_MIN_PAGES each.  A target over its share waits
 * for its own pages to come back (mempool_alloc() asks with __GFP_NORETRY
 * first, then takes from the reserve, then waits), so many writers under
 * memory pressure cannot eat the memory reclaim needs.  The count
 * includes the reserve (BIO_MAX_VECS pages), which the limit adds back.
 */
#define CMK_BOUNCE_MIN_PAGES	(4 * BIO_MAX_VECS)

static unsigned long cmk_pages_limit(void)
{
	unsigned long share = totalram_pages() * CMK_BOUNCE_RAM_PERCENT / 100;

	share /= max(atomic_read(&cmk_nr_targets), 1);
	return BIO_MAX_VECS + max_t(unsigned long, share, CMK_BOUNCE_MIN_PAGES);
}

static void *cmk_page_alloc(gfp_t gfp, void *data)
{
	struct cmk_target *ct = data;
	struct page *page;

	if (unlikely(atomic_long_read(&ct->pages) >= cmk_pages_limit()) &&
	    (gfp & __GFP_NORETRY))
		return NULL;
	page = alloc_page(gfp);
	if (page)
		atomic_long_inc(&ct->pages);
	return page;
}

static void cmk_page_free(void *page, void *data)
{
	struct cmk_target *ct = data;

	__free_page(page);
	atomic_long_dec(&ct->pages);
}

int cmk_bounce_pool_init(struct cmk_target *ct)
{
	int ret;

	atomic_long_set(&ct->pages, 0);
	ret = mempool_init(&ct->page_pool, BIO_MAX_VECS, cmk_page_alloc,
			   cmk_page_free, ct);
	if (!ret)
		atomic_inc(&cmk_nr_targets);
	return ret;
}

void cmk_bounce_pool_exit(struct cmk_target *ct)
{
	if (!mempool_initialized(&ct->page_pool))
		return;
	mempool_exit(&ct->page_pool);
	atomic_dec(&cmk_nr_targets);
}
