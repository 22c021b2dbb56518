// SPDX-License-Identifier: GPL-2.0
/*
 * cmk_cipher_bench - the speed of an skcipher the way dm-crypt and dm-cmk
 * use it, for "make bench" (tests/bench/guest_bench.sh): one request per
 * encryption sector, in place on a page, with a plain64 IV, on a transform
 * allocated with the same flags as theirs, one worker bound to each CPU.
 * Loading the module runs the measurement and prints one line:
 *
 *   cmk_cipher_bench: alg=xts(aes) driver=... alg_async=0 inprogress=0
 *     busy=0 sector=512 dir=dec threads=2 ms=1002 mib_s=85.3
 *
 * alg_async is the driver's CRYPTO_ALG_ASYNC flag, which says only that it
 * may complete later; inprogress and busy count the requests that did
 * (returned -EINPROGRESS, or -EBUSY when backlogged), i.e. the path taken.
 *
 * It is a test helper for throw-away QEMU guests, never for a real system.
 */
#include <crypto/skcipher.h>
#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/cpumask.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/workqueue.h>

static char *alg = "xts(aes)";
module_param(alg, charp, 0444);
MODULE_PARM_DESC(alg, "algorithm or driver name (default xts(aes))");

static unsigned int sector = 512;
module_param(sector, uint, 0444);
MODULE_PARM_DESC(sector, "request size in bytes, 512..4096 (default 512)");

/* Bounded: module init holds the module lock while it runs. */
#define MS_MAX 60000
static unsigned int ms = 1000;
module_param(ms, uint, 0444);
MODULE_PARM_DESC(ms, "measuring time per worker in ms, 1..60000 (default 1000)");

static unsigned int threads;
module_param(threads, uint, 0444);
MODULE_PARM_DESC(threads, "workers, one per CPU (default: every online CPU)");

static bool encrypt;
module_param(encrypt, bool, 0444);
MODULE_PARM_DESC(encrypt, "encrypt (as writes do) instead of decrypt");

#define KEY_LEN 64	/* AES-256-XTS, as dm-cmk and the bench's dm-crypt */

/*
 * Every worker sets up, then waits at the gate until all are ready: the
 * rate is sum(bytes) / max(ns), honest only if they all run at once.
 */
struct bench_gate {
	atomic_t pending;		/* workers not yet at the gate */
	struct completion ready;	/* the last one arrived */
	struct completion go;		/* opened by init */
};

struct bench_worker {
	struct work_struct work;
	struct crypto_skcipher *tfm;
	struct bench_gate *gate;
	u64 bytes;
	u64 ns;
	u64 inprogress;		/* requests that returned -EINPROGRESS */
	u64 busy;		/* and -EBUSY (backlogged) */
	int err;
};

static void bench_arrive(struct bench_gate *gate)
{
	if (atomic_dec_and_test(&gate->pending))
		complete(&gate->ready);
	wait_for_completion(&gate->go);
}

/* Ask the clock only every so many requests: it is costly under TCG. */
#define CLOCK_EVERY 16

static void bench_run(struct work_struct *work)
{
	struct bench_worker *w = container_of(work, struct bench_worker, work);
	struct skcipher_request *req;
	struct scatterlist sg;
	struct page *page;
	DECLARE_CRYPTO_WAIT(wait);
	u64 start, now, sect = 0, limit = (u64)ms * NSEC_PER_MSEC;
	unsigned int off = 0, n = 0;
	u8 iv[16];
	int ret;

	page = alloc_page(GFP_KERNEL);
	req = skcipher_request_alloc(w->tfm, GFP_KERNEL);
	bench_arrive(w->gate);
	if (!page || !req) {
		w->err = -ENOMEM;
		goto out;
	}
	get_random_bytes(page_address(page), PAGE_SIZE);
	skcipher_request_set_callback(req, CRYPTO_TFM_REQ_MAY_BACKLOG,
				      crypto_req_done, &wait);
	start = ktime_get_ns();
	now = start;
	while (now - start < limit) {
		memset(iv, 0, sizeof(iv));
		*(__le64 *)iv = cpu_to_le64(sect++);
		sg_init_table(&sg, 1);
		sg_set_page(&sg, page, sector, off);
		skcipher_request_set_crypt(req, &sg, &sg, sector, iv);
		ret = encrypt ? crypto_skcipher_encrypt(req) :
				crypto_skcipher_decrypt(req);
		if (ret == -EINPROGRESS)
			w->inprogress++;
		else if (ret == -EBUSY)
			w->busy++;
		w->err = crypto_wait_req(ret, &wait);
		if (w->err)
			break;
		w->bytes += sector;
		off = (off + sector) & (PAGE_SIZE - 1);
		if (++n % CLOCK_EVERY == 0) {
			now = ktime_get_ns();
			cond_resched();
		}
	}
	w->ns = ktime_get_ns() - start;
out:
	skcipher_request_free(req);
	if (page)
		__free_page(page);
}

static int __init cmk_cipher_bench_init(void)
{
	struct crypto_skcipher *tfm;
	struct workqueue_struct *wq = NULL;
	struct bench_worker *workers = NULL;
	struct bench_gate gate;
	unsigned int i, cpu, nr;
	u64 bytes = 0, ns = 0, inprogress = 0, busy = 0, tenths;
	u8 key[KEY_LEN];
	int ret;

	if (sector < 16 || sector > PAGE_SIZE || !is_power_of_2(sector) ||
	    !ms || ms > MS_MAX)
		return -EINVAL;
	nr = threads ? min(threads, num_online_cpus()) : num_online_cpus();

	/* The flags dm-crypt and dm-cmk allocate with. */
	tfm = crypto_alloc_skcipher(alg, 0, CRYPTO_ALG_ALLOCATES_MEMORY);
	if (IS_ERR(tfm)) {
		pr_err("cmk_cipher_bench: no transform for %s: %ld\n", alg,
		       PTR_ERR(tfm));
		return PTR_ERR(tfm);
	}
	get_random_bytes(key, sizeof(key));
	ret = crypto_skcipher_setkey(tfm, key, sizeof(key));
	memzero_explicit(key, sizeof(key));
	if (ret) {
		pr_err("cmk_cipher_bench: setkey on %s: %d\n", alg, ret);
		goto out;
	}

	ret = -ENOMEM;
	workers = kcalloc(nr, sizeof(*workers), GFP_KERNEL);
	wq = alloc_workqueue("cmk_cipher_bench", WQ_CPU_INTENSIVE, 0);
	if (!workers || !wq)
		goto out;
	atomic_set(&gate.pending, nr);
	init_completion(&gate.ready);
	init_completion(&gate.go);
	i = 0;
	for_each_online_cpu(cpu) {
		if (i == nr)
			break;
		workers[i].tfm = tfm;
		workers[i].gate = &gate;
		INIT_WORK(&workers[i].work, bench_run);
		queue_work_on(cpu, wq, &workers[i].work);
		i++;
	}
	/* a CPU gone offline since nr was counted must not hold the gate */
	if (i < nr && atomic_sub_and_test(nr - i, &gate.pending))
		complete(&gate.ready);
	wait_for_completion(&gate.ready);
	complete_all(&gate.go);
	flush_workqueue(wq);

	ret = 0;
	for (i = 0; i < nr; i++) {
		if (workers[i].err && !ret)
			ret = workers[i].err;
		bytes += workers[i].bytes;
		ns = max(ns, workers[i].ns);
		inprogress += workers[i].inprogress;
		busy += workers[i].busy;
	}
	if (ret) {
		pr_err("cmk_cipher_bench: %s failed: %d\n", alg, ret);
		goto out;
	}
	/* MiB/s = bytes * 1e9 / ns / 2^20, in tenths; 128-bit intermediate. */
	tenths = mul_u64_u64_div_u64(bytes, 10 * NSEC_PER_SEC,
				     max_t(u64, ns, 1)) >> 20;
	pr_info("cmk_cipher_bench: alg=%s driver=%s alg_async=%d inprogress=%llu busy=%llu sector=%u dir=%s threads=%u ms=%llu mib_s=%llu.%llu\n",
		alg, crypto_skcipher_driver_name(tfm),
		!!(crypto_skcipher_alg(tfm)->base.cra_flags & CRYPTO_ALG_ASYNC),
		inprogress, busy, sector, encrypt ? "enc" : "dec", nr,
		div_u64(ns, NSEC_PER_MSEC), div_u64(tenths, 10), tenths % 10);
out:
	if (wq)
		destroy_workqueue(wq);
	kfree(workers);
	crypto_free_skcipher(tfm);
	return ret;
}

static void __exit cmk_cipher_bench_exit(void)
{
}

module_init(cmk_cipher_bench_init);
module_exit(cmk_cipher_bench_exit);
MODULE_DESCRIPTION("dm-cmk bench: in-kernel skcipher speed per sector");
MODULE_LICENSE("GPL");
