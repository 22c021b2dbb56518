/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few kernel API differences between Debian's 6.1 and 6.12 kernels
 * that dm-cmk touches.  Kbuild probes the headers and sets the CMK_HAVE_*
 * flags (see kernel/Kbuild); every difference is bridged in this file,
 * except CMK_HAVE_BH_WQ (BH workqueue or tasklet), which io.c's softirq
 * decryption of reads tests where it sets up its per-CPU drain.
 */
#ifndef DM_CMK_COMPAT_H
#define DM_CMK_COMPAT_H

#include <linux/crypto.h>

/*
 * Since Linux 6.3 a crypto completion callback receives the request's data
 * pointer; before, it received the request.  Declare callbacks as
 *   static void done(CMK_ASYNC_ARG, int err)
 * and get the data with cmk_async_data(arg).
 */
#ifdef CMK_HAVE_CRYPTO_CB_DATA
#define CMK_ASYNC_ARG void *arg

static inline void *cmk_async_data(void *arg)
{
	return arg;
}
#else
#define CMK_ASYNC_ARG struct crypto_async_request *arg

static inline void *cmk_async_data(struct crypto_async_request *arg)
{
	return arg->data;
}
#endif

#endif /* DM_CMK_COMPAT_H */
