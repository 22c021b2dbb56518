// SPDX-License-Identifier: GPL-2.0
/*
 * cmk_cryptfault - test-only: an xts(aes) that fails every Nth request.
 *
 * Loaded only by the fault tests (tests/kselftest/fault_crypto.c) in a
 * guest, never in production: it registers "xts(aes)" with a priority
 * above every real driver, so a dm-cmk table loaded after it gets its
 * tfms from here.  Each request is passed to a real, synchronous xts(aes)
 * (the child tfm), except every @every-th one, which fails with -EIO
 * without touching the data.  With @async set, requests complete from a
 * workqueue through the request's callback, as a hardware driver's do;
 * otherwise they complete at once.  So both of dm-cmk's error paths, the
 * return value and the asynchronous completion, can be driven.
 *
 * The counters (requests seen, failures injected) let a test show that
 * dm-cmk's requests really went through here.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/atomic.h>
#include <linux/workqueue.h>
#include <crypto/aes.h>
#include <crypto/internal/skcipher.h>

static unsigned int every;
module_param(every, uint, 0644);
MODULE_PARM_DESC(every, "fail every Nth request with -EIO (0: never)");

static bool async;
module_param(async, bool, 0644);
MODULE_PARM_DESC(async, "complete requests from a workqueue");

static atomic_long_t cf_requests = ATOMIC_LONG_INIT(0);
static atomic_long_t cf_injected = ATOMIC_LONG_INIT(0);

static int cf_get_count(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%ld\n", atomic_long_read(kp->arg));
}

static const struct kernel_param_ops cf_count_ops = {
	.get = cf_get_count,
};

module_param_cb(requests, &cf_count_ops, &cf_requests, 0444);
MODULE_PARM_DESC(requests, "requests seen");
module_param_cb(injected, &cf_count_ops, &cf_injected, 0444);
MODULE_PARM_DESC(injected, "failures injected");

static struct workqueue_struct *cf_wq;

struct cf_ctx {
	struct crypto_skcipher *child;
};

/* The child's request comes last: its size is the child's business. */
struct cf_req {
	struct work_struct work;
	struct skcipher_request *req;
	bool encrypt;
	struct skcipher_request subreq;
};

/* The request's fate: -EIO for every @every-th request, else 0. */
static int cf_inject(void)
{
	unsigned int n = READ_ONCE(every);
	long seq = atomic_long_inc_return(&cf_requests);

	if (n && seq % n == 0) {
		atomic_long_inc(&cf_injected);
		return -EIO;
	}
	return 0;
}

/* Run @req on the child, synchronously; 0 or -errno. */
static int cf_child_crypt(struct skcipher_request *req, bool encrypt)
{
	struct cf_ctx *ctx = crypto_skcipher_ctx(crypto_skcipher_reqtfm(req));
	struct cf_req *rctx = skcipher_request_ctx(req);
	struct skcipher_request *sub = &rctx->subreq;

	skcipher_request_set_tfm(sub, ctx->child);
	skcipher_request_set_callback(sub, 0, NULL, NULL);
	skcipher_request_set_crypt(sub, req->src, req->dst, req->cryptlen,
				   req->iv);
	return encrypt ? crypto_skcipher_encrypt(sub) :
			 crypto_skcipher_decrypt(sub);
}

static void cf_work(struct work_struct *work)
{
	struct cf_req *rctx = container_of(work, struct cf_req, work);
	struct skcipher_request *req = rctx->req;
	int err = cf_inject();

	if (!err)
		err = cf_child_crypt(req, rctx->encrypt);
	skcipher_request_complete(req, err);
}

static int cf_crypt(struct skcipher_request *req, bool encrypt)
{
	struct cf_req *rctx = skcipher_request_ctx(req);
	int err;

	if (READ_ONCE(async)) {
		rctx->req = req;
		rctx->encrypt = encrypt;
		INIT_WORK(&rctx->work, cf_work);
		queue_work(cf_wq, &rctx->work);
		return -EINPROGRESS;
	}
	err = cf_inject();
	return err ?: cf_child_crypt(req, encrypt);
}

static int cf_encrypt(struct skcipher_request *req)
{
	return cf_crypt(req, true);
}

static int cf_decrypt(struct skcipher_request *req)
{
	return cf_crypt(req, false);
}

static int cf_setkey(struct crypto_skcipher *tfm, const u8 *key,
		     unsigned int keylen)
{
	struct cf_ctx *ctx = crypto_skcipher_ctx(tfm);

	return crypto_skcipher_setkey(ctx->child, key, keylen);
}

static int cf_init_tfm(struct crypto_skcipher *tfm)
{
	struct cf_ctx *ctx = crypto_skcipher_ctx(tfm);
	struct crypto_skcipher *child;

	/*
	 * A synchronous xts(aes) that allocates nothing per request: never
	 * this one (it is marked asynchronous), and usable from any context.
	 */
	child = crypto_alloc_skcipher("xts(aes)", 0,
				      CRYPTO_ALG_ASYNC |
				      CRYPTO_ALG_ALLOCATES_MEMORY);
	if (IS_ERR(child))
		return PTR_ERR(child);
	ctx->child = child;
	crypto_skcipher_set_reqsize(tfm, sizeof(struct cf_req) +
				    crypto_skcipher_reqsize(child));
	return 0;
}

static void cf_exit_tfm(struct crypto_skcipher *tfm)
{
	struct cf_ctx *ctx = crypto_skcipher_ctx(tfm);

	crypto_free_skcipher(ctx->child);
}

static struct skcipher_alg cf_alg = {
	.base = {
		.cra_name = "xts(aes)",
		.cra_driver_name = "xts-aes-cmkfault",
		/* above every real driver: dm-cmk's tfms come from here */
		.cra_priority = 10000,
		.cra_flags = CRYPTO_ALG_ASYNC,
		.cra_blocksize = AES_BLOCK_SIZE,
		.cra_ctxsize = sizeof(struct cf_ctx),
		.cra_module = THIS_MODULE,
	},
	.min_keysize = 2 * AES_MIN_KEY_SIZE,
	.max_keysize = 2 * AES_MAX_KEY_SIZE,
	.ivsize = AES_BLOCK_SIZE,
	.setkey = cf_setkey,
	.encrypt = cf_encrypt,
	.decrypt = cf_decrypt,
	.init = cf_init_tfm,
	.exit = cf_exit_tfm,
};

static int __init cf_init(void)
{
	int ret;

	cf_wq = alloc_workqueue("cmk_cryptfault", WQ_MEM_RECLAIM, 0);
	if (!cf_wq)
		return -ENOMEM;
	ret = crypto_register_skcipher(&cf_alg);
	if (ret)
		destroy_workqueue(cf_wq);
	return ret;
}

static void __exit cf_exit(void)
{
	crypto_unregister_skcipher(&cf_alg);
	destroy_workqueue(cf_wq);
}

module_init(cf_init);
module_exit(cf_exit);
MODULE_DESCRIPTION("test-only: an xts(aes) that fails every Nth request");
MODULE_LICENSE("GPL");
