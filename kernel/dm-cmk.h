/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-cmk internal interfaces.
 *
 *   target.c   table parsing and the device-mapper target operations
 *   io.c       the encrypted data path
 *   key.c      key slots: install, wipe, leases, and the events that wipe
 *              every key (suspend, VM fork, unload)
 *   netlink.c  the "dm-cmk" generic netlink family
 */
#ifndef DM_CMK_H
#define DM_CMK_H

#include <linux/atomic.h>
#include <linux/bio.h>
#include <linux/device-mapper.h>
#include <linux/dm-ioctl.h>
#include <linux/list.h>
#include <linux/mempool.h>
#include <linux/mutex.h>
#include <linux/percpu-refcount.h>
#include <linux/workqueue.h>
#include <uapi/linux/dm-cmk.h>

#define DM_MSG_PREFIX "cmk"

#define CMK_CIPHER		"aes-xts-plain64"
#define CMK_CRYPTO_ALG		"xts(aes)"
#define CMK_IV_SIZE		16
#define CMK_LEASE_MAX_MS_DEFAULT	600000U
#define CMK_LEASE_MAX_MS_LIMIT		86400000U

/**
 * struct cmk_key - one installed key: an AES-XTS transform and its users
 * @tfm: the transform; its key schedule is the only copy of the key
 * @users: one reference per bio doing cryptography with @tfm, plus the
 *	slot's own while the key is published; killed when the key is retired
 * @drained: completed when @users reaches zero after a kill
 * @deadline: jiffies at which the lease runs out, 0 for no lease; part of
 *	the key so that a reader that got the key sees its lease
 *
 * Each slot owns two of these and alternates between them, so a new key
 * can be published before the old one has drained.  Neither allocates on
 * install, and both have the request size the targets reserved.
 */
struct cmk_key {
	struct crypto_skcipher *tfm;
	struct percpu_ref users;
	struct completion drained;
	unsigned long deadline;
};

enum cmk_slot_flags {
	CMK_SLOT_REFUSED_SENT,	/* IO_REFUSED event sent for this period */
};

/**
 * struct cmk_slot - the key of one key_name, shared by its targets
 * @node: entry in the global slot list, in creation order
 * @id: creation number, the dump cursor
 * @name: the key_name from the table
 * @md: the mapped device whose targets use this slot
 * @dev_name: @md's name when the slot was created (md->name is major:minor)
 * @targets: number of targets attached
 * @state: &enum dm_cmk_state
 * @keys: the two key objects, see &struct cmk_key
 * @active: the published key, or NULL while sealed or wiped
 * @next: index in @keys of the key object to use for the next install
 * @reqsize: skcipher request context size of @keys' transforms
 * @generation: caller-chosen generation of the installed key
 * @wipe_reason: why the key was last wiped, &enum dm_cmk_reason
 * @lease_max_ms: largest lease accepted: the smallest lease_ms of the
 *	attached targets, so loading a laxer table cannot relax the live one
 * @allow_no_lease: every attached target has allow_no_lease
 * @sector_size: encryption sector size of the first attached target
 * @target_list: the attached targets (&cmk_target.slot_node)
 * @lease_work: wipes the key when its lease runs out
 * @refused_work: sends the IO_REFUSED event outside the I/O path
 * @flags: &enum cmk_slot_flags
 * @reads: bios read and decrypted
 * @writes: bios encrypted and written
 * @io_errors: bios failed by the backing device or by crypto
 * @refused: bios refused because no key was installed
 *
 * All fields but the counters and @active are changed only under
 * cmk_mutex; the I/O path reads @active under RCU.
 */
struct cmk_slot {
	struct list_head node;
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
	u32 lease_max_ms;
	bool allow_no_lease;
	unsigned int sector_size;
	struct list_head target_list;
	struct delayed_work lease_work;
	struct work_struct refused_work;
	unsigned long flags;
	atomic64_t reads;
	atomic64_t writes;
	atomic64_t io_errors;
	atomic64_t refused;
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
 * @dev: the backing device
 * @start: offset of the data on @dev, in 512-byte sectors
 * @iv_offset: added to the sector number to form the IV
 * @sector_size: encryption sector size in bytes (512 or 4096)
 * @sector_shift: log2(@sector_size / 512)
 * @flags: &enum cmk_target_flags
 * @lease_max_ms: table option lease_ms
 * @slot: the key slot of this target's key_name
 * @slot_node: entry in the slot's target list
 * @req_offset: offset of the skcipher request in the per-bio data
 * @wq: crypto workqueue; also continues requests that went asynchronous
 * @inflight: data bios mapped and not yet completed, for the choice
 *	between inline crypto and @wq (see io.c)
 * @queued: bios waiting in @wq for a worker to start on them
 * @page_pool: bounce pages for the ciphertext of writes
 * @bs: bios carrying that ciphertext
 * @bounce_lock: serialises blocking bounce page allocation, see io.c
 */
struct cmk_target {
	struct dm_dev *dev;
	sector_t start;
	u64 iv_offset;
	unsigned int sector_size;
	unsigned int sector_shift;
	unsigned long flags;
	u32 lease_max_ms;
	struct cmk_slot *slot;
	struct list_head slot_node;
	unsigned int req_offset;
	struct workqueue_struct *wq;
	atomic_t inflight;
	atomic_t queued;
	mempool_t page_pool;
	struct bio_set bs;
	struct mutex bounce_lock;	/* one blocking bounce allocation at a time */
};

/* key.c */
extern struct mutex cmk_mutex;
extern struct list_head cmk_slots;

int cmk_slot_attach(struct cmk_target *ct, const char *name,
		    struct mapped_device *md, char **error);
void cmk_slot_detach(struct cmk_target *ct);
struct cmk_slot *cmk_slot_find(const char *name);
bool cmk_name_valid(const char *name);

int cmk_slot_install(struct cmk_slot *slot, const u8 *key, u64 generation,
		     u32 lease_ms);
void cmk_slot_wipe(struct cmk_slot *slot, enum dm_cmk_reason reason);
int cmk_slot_renew(struct cmk_slot *slot, u32 lease_ms);
void cmk_wipe_all(enum dm_cmk_reason reason);
bool cmk_slot_lease_left(struct cmk_slot *slot, u32 *left_ms);

struct cmk_key *cmk_key_get(struct cmk_slot *slot);

static inline void cmk_key_put(struct cmk_key *key)
{
	percpu_ref_put(&key->users);
}

void cmk_slot_note_refused(struct cmk_slot *slot);

int cmk_key_init(void);
void cmk_key_exit(void);

/* io.c */
unsigned int cmk_io_data_size(struct cmk_target *ct, unsigned int reqsize);
int cmk_map(struct dm_target *ti, struct bio *bio);

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
