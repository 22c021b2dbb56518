/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cmk_crypto.h - the kernel's crypto_user interface (NETLINK_CRYPTO,
 * module crypto_user, CONFIG_CRYPTO_USER=m on Debian's 6.1 and 6.12):
 * look algorithms up, instantiate a template with a chosen priority, change
 * a priority, delete an instance.  The pressure tests use it to make the
 * kernel hand dm-cmk an asynchronous xts(aes) (cryptd) instead of the
 * synchronous-in-practice AES-NI one.
 *
 * Functions return 0 or a negative errno (the kernel's, for a refused
 * request).  Everything needs CAP_NET_ADMIN.
 */
#ifndef CMK_CRYPTO_H
#define CMK_CRYPTO_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/cryptouser.h>

/* cra_flags bits (include/linux/crypto.h, not in the UAPI). */
#define CMK_CRYPTO_ALG_TYPE_MASK	0x0000000f
#define CMK_CRYPTO_ALG_TYPE_SKCIPHER	0x00000005
#define CMK_CRYPTO_ALG_TYPE_SKCIPHER_MASK 0x0000000e
#define CMK_CRYPTO_ALG_LARVAL		0x00000010
#define CMK_CRYPTO_ALG_DEAD		0x00000020
#define CMK_CRYPTO_ALG_DYING		0x00000040
#define CMK_CRYPTO_ALG_ASYNC		0x00000080
#define CMK_CRYPTO_ALG_TESTED		0x00000400
#define CMK_CRYPTO_ALG_INSTANCE		0x00000800
#define CMK_CRYPTO_ALG_INTERNAL		0x00002000

/*
 * A forced-asynchronous AES-XTS: cryptd running the generic C AES in the
 * xts template.  Its cra_name is "xts(aes)", so crypto_alloc_skcipher()
 * picks it once its priority is the highest.
 */
#define CMK_CRYPTD_XTS			"cryptd(xts(ecb(aes-generic)))"

struct cmk_crypto_alg {
	char name[CRYPTO_MAX_NAME];	/* cra_name, e.g. "xts(aes)" */
	char driver[CRYPTO_MAX_NAME];	/* cra_driver_name */
	char module[CRYPTO_MAX_NAME];
	uint32_t priority;
	/*
	 * The kernel's reference count: one per transform allocated from it
	 * (and per instance built on it), plus one the report itself holds
	 * when asked by driver name.  Compare two readings, not values.
	 */
	uint32_t refcnt;
	uint32_t flags;			/* CMK_CRYPTO_ALG_* */
};

/* GETALG of one algorithm by driver name. */
int cmk_crypto_get(const char *driver, struct cmk_crypto_alg *out);
/*
 * The algorithm crypto_alloc_*(@name) would pick now: among the tested,
 * live, non-internal algorithms whose cra_name is @name, the one with the
 * highest priority (dump of every algorithm).  -ENOENT if none.
 */
int cmk_crypto_best(const char *name, struct cmk_crypto_alg *out);
/*
 * NEWALG: instantiate @driver (a template instance such as
 * CMK_CRYPTD_XTS; the kernel loads the template modules) as an algorithm
 * of @type (CMK_CRYPTO_ALG_TYPE_*: templates such as cryptd that build
 * several types need it; 0 for any) with @priority.  -EEXIST if it
 * already exists (then use cmk_crypto_set_priority()).
 */
int cmk_crypto_add(const char *driver, uint32_t type, uint32_t priority);
/* UPDATEALG: new priority for an existing algorithm. */
int cmk_crypto_set_priority(const char *driver, uint32_t priority);
/* DELALG: unregister a template instance nobody uses (-EBUSY if used). */
int cmk_crypto_del(const char *driver);

/*
 * Make @driver the preferred implementation of its cra_name: create it
 * (or take the existing one) with a priority above the current best.
 * @was gets the best before (may be NULL).  Then checks that the kernel
 * now picks @driver: -EPROTO if not.
 */
int cmk_crypto_prefer(const char *driver, const char *name,
		      struct cmk_crypto_alg *was);

#endif /* CMK_CRYPTO_H */
