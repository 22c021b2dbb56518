// SPDX-License-Identifier: GPL-2.0
/*
 * cmk_splat - test-only: make the debug kernel report one kind of bug.
 *
 * Loaded only by tests/debug-kernel/harness_selftest.sh in a debug-kernel
 * guest, never with dm-cmk's tests: each load makes one report of the kind
 * named by kind= and then fails with -ECANCELED, so that the harness can be
 * shown to fail a run on it (a harness that cannot fail guards nothing).
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/mutex.h>
#include <linux/delay.h>
#include <linux/compiler.h>
#include <crypto/hash.h>

static char *kind = "";
module_param(kind, charp, 0444);
MODULE_PARM_DESC(kind, "warn, kasan, ubsan, leak, hung or lockdep");

static DEFINE_MUTEX(splat_a);
static DEFINE_MUTEX(splat_b);

static void splat_kasan(void)
{
	char *p = kmalloc(16, GFP_KERNEL);
	int index = 16;

	/* hidden: the compiler must not see the bug and refuse or drop it */
	OPTIMIZER_HIDE_VAR(index);
	if (p) {
		pr_info("cmk_splat: read %d\n", p[index]);
		kfree(p);
	}
}

static void splat_ubsan(void)
{
	int shift = 40;

	OPTIMIZER_HIDE_VAR(shift);
	pr_info("cmk_splat: shift %d\n", 1 << shift);
}

/* A tfm of the crypto API dm-cmk uses, and nothing refers to it. */
static void splat_leak(void)
{
	struct crypto_shash *tfm = crypto_alloc_shash("sha256", 0, 0);

	pr_info("cmk_splat: leaked a tfm: %d\n", IS_ERR(tfm) ? -1 : 0);
}

/* A -> B here, B -> A below: lockdep's circular dependency. */
static void splat_lockdep(void)
{
	mutex_lock(&splat_a);
	mutex_lock(&splat_b);
	mutex_unlock(&splat_b);
	mutex_unlock(&splat_a);

	mutex_lock(&splat_b);
	mutex_lock(&splat_a);
	mutex_unlock(&splat_a);
	mutex_unlock(&splat_b);
}

static int __init cmk_splat_init(void)
{
	if (!strcmp(kind, "warn"))
		WARN(1, "cmk_splat: deliberate warning\n");
	else if (!strcmp(kind, "kasan"))
		splat_kasan();
	else if (!strcmp(kind, "ubsan"))
		splat_ubsan();
	else if (!strcmp(kind, "leak"))
		splat_leak();
	else if (!strcmp(kind, "hung"))
		msleep(12000);	/* uninterruptible, past hung_task_timeout_secs */
	else if (!strcmp(kind, "lockdep"))
		splat_lockdep();
	else
		return -EINVAL;
	return -ECANCELED;
}
module_init(cmk_splat_init);

MODULE_DESCRIPTION("test-only: make the debug kernel report a bug");
MODULE_LICENSE("GPL");
