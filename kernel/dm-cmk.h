/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-cmk internal interfaces.
 *
 *   target.c   table parsing and the device-mapper target operations
 *   io.c       the encrypted data path
 *   key.c      key slots: install, bind, wipe, leases, table policy, and
 *              the events that wipe every key (suspend, VM fork)
 *   hold.c     bios that wait for a key that is only briefly away
 *   netlink.c  the "dm-cmk" generic netlink family
 */
#ifndef DM_CMK_H
#define DM_CMK_H

#include <linux/atomic.h>
#include <linux/bio.h>
#include <linux/device-mapper.h>
#include <linux/dm-ioctl.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mempool.h>
#include <linux/mutex.h>
#include <linux/percpu-refcount.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <uapi/linux/dm-cmk.h>

#define DM_MSG_PREFIX "cmk"

#define CMK_CIPHER		"aes-xts-plain64"
#define CMK_CRYPTO_ALG		"xts(aes)"
#define CMK_IV_SIZE		16
#define CMK_LEASE_MAX_MS_DEFAULT	600000U
#define CMK_LEASE_MAX_MS_LIMIT		86400000U
#define CMK_HOLD_MS_DEFAULT		30000U
#define CMK_HOLD_MS_LIMIT		600000U
#define CMK_FINGERPRINT_LEN		32

/**
 * struct cmk_key - one installed key: an AES-XTS transform and its users
 * @tfm: the transform; its key schedule is the only copy of the key
 * @users: one reference per bio doing cryptography with @tfm, plus the
 *	slot's own while the key is published; killed when the key is retired
 * @drained: completed when @users reaches zero after a kill
 * @deadline: CLOCK_BOOTTIME (coarse) in ns at which the lease runs out, 0
 *	for no lease; part of the key so that a reader that got the key sees
 *	its lease.  Boottime, so that time the system slept counts.
 *
 * Each slot owns two of these and alternates between them, so a new key
 * can be published before the old one has drained.  Neither allocates on
 * install, and both have the request size the targets reserved.
 */
struct cmk_key {
	struct crypto_skcipher *tfm;
	struct percpu_ref users;
	struct completion drained;
	u64 deadline;
};

enum cmk_slot_flags {
	CMK_SLOT_REFUSED_SENT,	/* IO_REFUSED event sent for this period */
};

/**
 * struct cmk_held - a bio waiting for its slot's key, see hold.c
 * @node: entry in &cmk_slot.held
 * @until: jiffies at which it gives up and fails; jiffies, not boottime,
 *	so that time the system slept does not count against it.  Set by the
 *	bio's first wait and kept by later ones, see cmk_hold()
 * @waited: @until is set
 */
struct cmk_held {
	struct list_head node;
	unsigned long until;
	bool waited;
};

/**
 * struct cmk_slot - the key of one key_name, shared by its targets
 * @node: entry in the global slot list, in creation order
 * @ref: references: the slot list's, and one per user between a lookup and
 *	its cmk_slot_put()
 * @lock: serialises every change of this slot's state, key and targets
 * @dead: the last target has gone; the slot is off the list
 * @id: creation number, the cursor of walks and dumps
 * @name: the key_name from the table
 * @md: the mapped device whose targets use this slot
 * @dev_name: @md's name when last looked up (dmsetup rename changes it)
 * @targets: number of targets attached
 * @state: &enum dm_cmk_state
 * @keys: the two key objects, see &struct cmk_key
 * @active: the published key, or NULL while sealed or wiped
 * @next: index in @keys of the key object to use for the next install
 * @reqsize: skcipher request context size of @keys' transforms
 * @generation: caller-chosen generation of the installed key
 * @wipe_reason: why the key was last wiped, &enum dm_cmk_reason
 * @bound: the slot has taken a key and takes no other
 * @fingerprint: HMAC-SHA256 of that key under a per-boot secret (key.c)
 * @lease_max_ms: largest lease accepted: the smallest lease_ms of the
 *	attached targets, so loading a laxer table cannot relax the live one
 * @allow_no_lease: every attached target has allow_no_lease
 * @hold_ms: the smallest hold_ms of the attached targets (for GET)
 * @sector_size: encryption sector size of the first attached target
 * @target_list: the attached targets (&cmk_target.slot_node)
 * @lease_work: wipes the key when its lease runs out
 * @refused_work: sends the IO_REFUSED event outside the I/O path
 * @hold_lock: protects @held, @nr_held, @hold_next, @hold_ok and
 *	@hold_requeue
 * @hold_ok: a bio that finds no key may wait for one (see hold.c)
 * @hold_requeue: a noflush suspend is under way: hand bios back to dm
 * @held: bios waiting for a key (&cmk_held.node)
 * @nr_held: entries in @held
 * @hold_next: jiffies at which @hold_work is due
 * @hold_work: fails held bios whose time is up
 * @flags: &enum cmk_slot_flags
 * @reads: bios read and decrypted
 * @writes: bios encrypted and written
 * @io_errors: bios failed by the backing device or by crypto
 * @refused: bios refused because no key was installed
 * @rejected: KEY_SETs refused because their key was not the bound one
 *
 * Fields other than the counters, @active and the hold fields change only
 * under @lock; the I/O path reads @active under RCU and @state with
 * READ_ONCE().
 */
struct cmk_slot {
	struct list_head node;
	struct kref ref;
	struct mutex lock;	/* this slot's state, key and targets */
	bool dead;
	u64 id;
	char name[DM_CMK_NAME_MAX + 1];
	struct mapped_device *md;
	char dev_name[DM_NAME_LEN];
	unsigned int targets;
	enum dm_cmk_state state;
	struct cmk_key keys[2];
	struct cmk_key __rcu *active;
	unsigned int next;
	unsigned int reqsize;
	u64 generation;
	enum dm_cmk_reason wipe_reason;
	bool bound;
	u8 fingerprint[CMK_FINGERPRINT_LEN];
	u32 lease_max_ms;
	bool allow_no_lease;
	u32 hold_ms;
	unsigned int sector_size;
	struct list_head target_list;
	struct delayed_work lease_work;
	struct work_struct refused_work;
	spinlock_t hold_lock;	/* the hold fields, see above */
	bool hold_ok;
	bool hold_requeue;
	struct list_head held;
	unsigned int nr_held;
	unsigned long hold_next;
	struct delayed_work hold_work;
	unsigned long flags;
	atomic64_t reads;
	atomic64_t writes;
	atomic64_t io_errors;
	atomic64_t refused;
	atomic64_t rejected;
};

enum cmk_target_flags {
	CMK_IV_LARGE_SECTORS,
	CMK_ALLOW_DISCARDS,
	CMK_NO_READ_WORKQUEUE,
	CMK_NO_WRITE_WORKQUEUE,
	CMK_ALLOW_NO_LEASE,
	CMK_FORCE_WORKQUEUE,
};

/**
 * struct cmk_target - one dm-cmk target instance (a table line)
 * @ti: the device-mapper target
 * @dev: the backing device
 * @start: offset of the data on @dev, in 512-byte sectors
 * @iv_offset: added to the sector number to form the IV
 * @sector_size: encryption sector size in bytes (512 or 4096)
 * @sector_shift: log2(@sector_size / 512)
 * @flags: &enum cmk_target_flags
 * @lease_max_ms: table option lease_ms
 * @hold_ms: table option hold_ms
 * @slot: the key slot of this target's key_name
 * @slot_node: entry in the slot's target list
 * @req_offset: offset of the skcipher request in the per-bio data
 * @wq: crypto workqueue: reads to decrypt, writes to encrypt (these may
 *	wait for bounce pages), bios released from a hold
 * @cont_wq: continues requests that went asynchronous; never waits for
 *	memory, so it drains even while every @wq worker waits for pages
 * @inflight: data bios mapped and not yet completed, for the choice
 *	between inline crypto and @wq (see io.c)
 * @cpu_inflight: the same, per CPU the bio was mapped on: whether a read
 *	completed by an interrupt is alone among the bios of its CPU (io.c)
 * @queued: bios waiting in @wq for a worker to start on them
 * @page_pool: bounce pages for the ciphertext of writes
 * @pages: bounce pages allocated beyond @page_pool's reserve, see io.c
 * @bs: bios carrying that ciphertext
 * @bounce_lock: serialises blocking bounce page allocation, see io.c
 */
struct cmk_target {
	struct dm_target *ti;
	struct dm_dev *dev;
	sector_t start;
	u64 iv_offset;
	unsigned int sector_size;
	unsigned int sector_shift;
	unsigned long flags;
	u32 lease_max_ms;
	u32 hold_ms;
	struct cmk_slot *slot;
	struct list_head slot_node;
	unsigned int req_offset;
	struct workqueue_struct *wq;
	struct workqueue_struct *cont_wq;
	atomic_t inflight;
	atomic_t __percpu *cpu_inflight;
	atomic_t queued;
	mempool_t page_pool;
	atomic_long_t pages;
	struct bio_set bs;
	struct mutex bounce_lock;	/* one blocking bounce allocation at a time */
};

/* key.c */
extern struct workqueue_struct *cmk_wq;

int cmk_slot_attach(struct cmk_target *ct, const char *name,
		    struct mapped_device *md, char **error);
void cmk_slot_detach(struct cmk_target *ct);
struct cmk_slot *cmk_slot_get(const char *name);
struct cmk_slot *cmk_slot_get_next(u64 id);
void cmk_slot_put(struct cmk_slot *slot);
bool cmk_name_valid(const char *name);

int cmk_slot_install(struct cmk_slot *slot, const u8 *key, u64 generation,
		     u32 lease_ms, s64 epoch);
u32 cmk_epoch_now(void);
void cmk_slot_wipe(struct cmk_slot *slot, enum dm_cmk_reason reason);
int cmk_slot_renew(struct cmk_slot *slot, u32 lease_ms);
void cmk_wipe_all(enum dm_cmk_reason reason);
bool cmk_slot_lease_left(struct cmk_slot *slot, u32 *left_ms);
const char *cmk_slot_dev_name(struct cmk_slot *slot);

struct cmk_key *cmk_key_get(struct cmk_slot *slot);
bool cmk_slot_usable(struct cmk_slot *slot);

static inline void cmk_key_put(struct cmk_key *key)
{
	percpu_ref_put(&key->users);
}

void cmk_slot_note_refused(struct cmk_slot *slot);

int cmk_key_init(void);
void cmk_key_exit(void);

/* hold.c */
enum cmk_hold_result {
	CMK_HOLD_HELD,		/* queued; cmk_io_unhold() will be called */
	CMK_HOLD_RETRY,		/* a key is there now: go on */
	CMK_HOLD_REFUSE,	/* no key and no waiting: fail the bio */
	CMK_HOLD_REQUEUE,	/* noflush suspend: hand it back to dm */
};

enum cmk_unhold {
	CMK_UNHOLD_RESUME,	/* the key is back */
	CMK_UNHOLD_FAIL,	/* time is up, or the key was revoked */
	CMK_UNHOLD_REQUEUE,	/* noflush suspend: dm re-issues it later */
};

enum cmk_hold_result cmk_hold(struct cmk_slot *slot, struct cmk_held *h,
			      u32 hold_ms);
void cmk_hold_set_ok(struct cmk_slot *slot, bool ok);
void cmk_hold_release(struct cmk_slot *slot, enum cmk_unhold how);
void cmk_hold_expire_work(struct work_struct *work);
void cmk_hold_suspend(struct cmk_slot *slot, bool noflush);
void cmk_hold_resume(struct cmk_slot *slot);
unsigned int cmk_hold_count(struct cmk_slot *slot);

/* io.c */
void cmk_io_init(void);
void cmk_io_exit(void);
unsigned int cmk_io_data_size(struct cmk_target *ct, unsigned int reqsize);
int cmk_map(struct dm_target *ti, struct bio *bio);
void cmk_io_unhold(struct cmk_held *h, enum cmk_unhold how);
int cmk_bounce_pool_init(struct cmk_target *ct);
void cmk_bounce_pool_exit(struct cmk_target *ct);

/* netlink.c */
int cmk_netlink_init(void);
void cmk_netlink_exit(void);
void cmk_netlink_notify(struct cmk_slot *slot, enum dm_cmk_event event,
			enum dm_cmk_reason reason);

static inline const char *cmk_state_name(enum dm_cmk_state state)
{
	switch (state) {
	case DM_CMK_STATE_SEALED:
		return "sealed";
	case DM_CMK_STATE_ACTIVE:
		return "active";
	case DM_CMK_STATE_WIPED:
		return "wiped";
	}
	return "unknown";
}

static inline const char *cmk_reason_name(enum dm_cmk_reason reason)
{
	switch (reason) {
	case DM_CMK_REASON_REQUESTED:
		return "requested";
	case DM_CMK_REASON_REVOKED:
		return "revoked";
	case DM_CMK_REASON_LEASE_EXPIRED:
		return "lease expired";
	case DM_CMK_REASON_SUSPEND:
		return "suspend";
	case DM_CMK_REASON_VMFORK:
		return "VM fork";
	case DM_CMK_REASON_DESTROY:
		return "device removed";
	case DM_CMK_REASON_KMS_UNREACHABLE:
		return "KMS unreachable";
	case DM_CMK_REASON_POLICY:
		return "table policy";
	default:
		return "unknown";
	}
}

#endif /* DM_CMK_H */
