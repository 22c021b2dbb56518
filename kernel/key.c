// SPDX-License-Identifier: GPL-2.0
/*
 * dm-cmk key slots: the whole life of a key, from install to wipe.
 *
 * A slot holds the key of one key_name.  Its state moves only through the
 * functions here, each called with the slot's own lock held:
 *
 *   SEALED --cmk_slot_install--> ACTIVE --cmk_slot_wipe--> WIPED
 *                                  ^                         |
 *                                  +----cmk_slot_install-----+
 *
 * The key exists only as the key schedule inside a crypto transform.  A
 * wipe unpublishes the transform, waits until no bio is using it, and then
 * overwrites the schedule with random bytes, so in-flight I/O either
 * finishes with the key it started with or fails; it never sees a zero or
 * half-written key.  The transform memory itself is freed with the slot,
 * and the crypto API frees it with kfree_sensitive().
 *
 * A slot is bound to the first key it takes: a device's key never changes
 * in its life (a KEK rotation re-wraps it), so any other key is refused,
 * whether the slot is active or wiped.  Only a new table, which makes a
 * new slot, takes a new key.  The slot keeps a keyed fingerprint of its
 * key (HMAC-SHA256 under a secret drawn when the module loads), never the
 * key.
 *
 * Locking: cmk_slots_lock guards the list of slots and nothing else; it is
 * never held while a key drains or while memory is allocated with
 * GFP_KERNEL, so one slot's wipe never stalls another slot's renewal.
 * Each slot has its own lock, taken after a reference was got from the
 * list (cmk_slot_get()); slots are freed when their last reference goes.
 */

#include <linux/jiffies.h>
#include <linux/platform_device.h>
#include <linux/random.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/suspend.h>
#include <linux/timekeeping.h>
#include <crypto/algapi.h>
#include <crypto/hash.h>
#include <crypto/skcipher.h>

#include "dm-cmk.h"

/* Guards cmk_slots (membership and order) and cmk_next_id only. */
static DEFINE_MUTEX(cmk_slots_lock);
static LIST_HEAD(cmk_slots);
static u64 cmk_next_id;

struct workqueue_struct *cmk_wq;

/* From PM_*_PREPARE to PM_POST_*: KEY_SET is refused, see cmk_pm_notify(). */
static bool cmk_sleeping;

/* VM forks seen since load; a KEY_SET may name the one it was made for. */
static atomic_t cmk_epoch = ATOMIC_INIT(0);

/* Keyed with a secret drawn at module load; fingerprints slots' keys. */
static struct crypto_shash *cmk_fpr_tfm;

bool cmk_name_valid(const char *name)
{
	size_t len = strnlen(name, DM_CMK_NAME_MAX + 1);
	size_t i;

	if (len == 0 || len > DM_CMK_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-')
			return false;
	}
	return true;
}

static u64 cmk_now_ns(void)
{
	return ktime_get_coarse_boottime_ns();
}

static void cmk_key_release(struct percpu_ref *ref)
{
	struct cmk_key *key = container_of(ref, struct cmk_key, users);

	complete(&key->drained);
}

/* Overwrite the key schedule with random key material. */
static void cmk_key_scrub(struct cmk_key *key)
{
	u8 junk[DM_CMK_KEY_LEN];

	do {
		get_random_bytes(junk, sizeof(junk));
	} while (!crypto_memneq(junk, junk + DM_CMK_KEY_LEN / 2,
				DM_CMK_KEY_LEN / 2));
	if (crypto_skcipher_setkey(key->tfm, junk, sizeof(junk)))
		DMERR("could not overwrite a key schedule: it stays until the device is removed");
	memzero_explicit(junk, sizeof(junk));
}

static int cmk_key_init_one(struct cmk_key *key)
{
	int ret;

	/* Like dm-crypt, refuse drivers that allocate memory per request. */
	key->tfm = crypto_alloc_skcipher(CMK_CRYPTO_ALG, 0,
					 CRYPTO_ALG_ALLOCATES_MEMORY);
	if (IS_ERR(key->tfm)) {
		ret = PTR_ERR(key->tfm);
		key->tfm = NULL;
		return ret;
	}
	init_completion(&key->drained);
	ret = percpu_ref_init(&key->users, cmk_key_release,
			      PERCPU_REF_INIT_DEAD, GFP_KERNEL);
	if (ret) {
		crypto_free_skcipher(key->tfm);
		key->tfm = NULL;
	}
	return ret;
}

static void cmk_key_destroy_one(struct cmk_key *key)
{
	if (!key->tfm)
		return;
	cmk_key_scrub(key);
	percpu_ref_exit(&key->users);
	crypto_free_skcipher(key->tfm);
	key->tfm = NULL;
}

/*
 * Retire a key that has just been unpublished: stop new users, wait for
 * the bios using it to finish their cryptography, then destroy the key
 * schedule.  Afterwards the key object is dead with no users, ready for
 * the next install.
 */
static void cmk_key_retire(struct cmk_key *key)
{
	reinit_completion(&key->drained);
	percpu_ref_kill(&key->users);
	wait_for_completion(&key->drained);
	cmk_key_scrub(key);
}

static bool cmk_key_expired(struct cmk_key *key)
{
	u64 deadline = READ_ONCE(key->deadline);

	return deadline && cmk_now_ns() >= deadline;
}

/**
 * cmk_key_get() - take a reference on the usable key of a slot
 * @slot: the slot
 *
 * Return: the key, to be released with cmk_key_put() as soon as the bio's
 * cryptography is done, or NULL if the slot holds no key or its lease has
 * run out.  Safe in any context.
 */
struct cmk_key *cmk_key_get(struct cmk_slot *slot)
{
	struct cmk_key *key;

	rcu_read_lock();
	key = rcu_dereference(slot->active);
	if (key && !percpu_ref_tryget_live(&key->users))
		key = NULL;
	rcu_read_unlock();
	if (!key)
		return NULL;

	/* Enforce the lease here too, in case the lease work runs late. */
	if (cmk_key_expired(key)) {
		cmk_key_put(key);
		mod_delayed_work(cmk_wq, &slot->lease_work, 0);
		return NULL;
	}
	return key;
}

/**
 * cmk_slot_usable() - does @slot have a published key with lease left?
 * @slot: the slot
 *
 * Context: any.
 * Return: true if a bio could take a key now.
 */
bool cmk_slot_usable(struct cmk_slot *slot)
{
	struct cmk_key *key;
	bool usable;

	rcu_read_lock();
	key = rcu_dereference(slot->active);
	usable = key && !cmk_key_expired(key);
	rcu_read_unlock();
	return usable;
}

/* Give @key a lease of @lease_ms from now (0: none), and arm the wipe. */
static void cmk_set_lease(struct cmk_slot *slot, struct cmk_key *key,
			  u32 lease_ms)
{
	if (lease_ms == 0) {
		WRITE_ONCE(key->deadline, 0);
		cancel_delayed_work(&slot->lease_work);
		return;
	}
	WRITE_ONCE(key->deadline, cmk_now_ns() + (u64)lease_ms * NSEC_PER_MSEC);
	mod_delayed_work(cmk_wq, &slot->lease_work, msecs_to_jiffies(lease_ms));
}

/* The published key, or NULL.  Context: the slot's lock held. */
static struct cmk_key *cmk_slot_key(struct cmk_slot *slot)
{
	return rcu_dereference_protected(slot->active,
					 lockdep_is_held(&slot->lock));
}

/* The keyed fingerprint of @key that binds a slot to it. */
static int cmk_fingerprint(const u8 *key, u8 out[CMK_FINGERPRINT_LEN])
{
	SHASH_DESC_ON_STACK(desc, cmk_fpr_tfm);
	int ret;

	desc->tfm = cmk_fpr_tfm;
	ret = crypto_shash_digest(desc, key, DM_CMK_KEY_LEN, out);
	shash_desc_zero(desc);
	return ret;
}

/*
 * Is @fpr the key of another slot?  A device's key is its own: the same
 * key on two devices would reuse XTS tweaks across them, and is how a
 * header copied from one device to another would show here.
 */
static bool cmk_fingerprint_in_use(struct cmk_slot *slot, const u8 *fpr)
{
	struct cmk_slot *other;
	bool used = false;

	mutex_lock(&cmk_slots_lock);
	list_for_each_entry(other, &cmk_slots, node) {
		/*
		 * Pairs with the release in cmk_slot_install(): a bound
		 * slot's fingerprint is complete and never changes.
		 */
		if (other != slot && smp_load_acquire(&other->bound) &&
		    !crypto_memneq(fpr, other->fingerprint, CMK_FINGERPRINT_LEN)) {
			used = true;
			break;
		}
	}
	mutex_unlock(&cmk_slots_lock);
	return used;
}

/**
 * cmk_epoch_now() - how many VM forks the kernel has seen since load
 *
 * Return: the epoch a key unsealed now belongs to.
 */
u32 cmk_epoch_now(void)
{
	return atomic_read(&cmk_epoch);
}

/* Reasons after which I/O waits for the key instead of failing at once. */
static bool cmk_reason_holds(enum dm_cmk_reason reason)
{
	return reason != DM_CMK_REASON_REVOKED &&
	       reason != DM_CMK_REASON_REQUESTED &&
	       reason != DM_CMK_REASON_DESTROY;
}

/**
 * cmk_slot_install() - install @key and make the slot ACTIVE
 * @slot: the slot, in any state
 * @key: %DM_CMK_KEY_LEN bytes whose halves differ; the caller wipes it
 * @generation: caller's generation number, reported by GET
 * @lease_ms: lease, already accepted by the table's policy
 * @epoch: the VM-fork epoch the key was unsealed in (cmk_epoch_now()), or
 *	a negative value if the caller does not say
 *
 * Invariant: outside the slot's lock, @slot->keys[@slot->next] is never
 * published and has no users.  The new key is set on that object and
 * published before the previous key is retired, so re-installing a key
 * does not fail I/O.  A slot takes only the key it was first given, and
 * no slot takes a key another slot is bound to.
 *
 * Context: the slot's lock held.
 * Return: 0; -EBUSY while the system sleeps; -ESTALE if the VM was forked
 * since @epoch; -EKEYREJECTED for a key that is not the bound one, or is
 * another device's; or the crypto API's error.  The slot is unchanged on
 * error.
 */
int cmk_slot_install(struct cmk_slot *slot, const u8 *key, u64 generation,
		     u32 lease_ms, s64 epoch)
{
	struct cmk_key *new = &slot->keys[slot->next];
	u8 fpr[CMK_FINGERPRINT_LEN];
	struct cmk_key *old;
	int ret;

	lockdep_assert_held(&slot->lock);

	if (READ_ONCE(cmk_sleeping))
		return -EBUSY;
	/* The fork's notifier counts before it wipes: see cmk_vmfork_notify(). */
	if (epoch >= 0 && epoch != (u32)atomic_read(&cmk_epoch))
		return -ESTALE;
	ret = cmk_fingerprint(key, fpr);
	if (ret)
		goto out;
	if (slot->bound ? crypto_memneq(fpr, slot->fingerprint, sizeof(fpr)) :
			  cmk_fingerprint_in_use(slot, fpr)) {
		atomic64_inc(&slot->rejected);
		DMWARN_LIMIT("%s: KEY_SET refused: not the key this device is bound to",
			     slot->name);
		cmk_netlink_notify(slot, DM_CMK_EVENT_KEY_REJECTED, 0);
		ret = -EKEYREJECTED;
		goto out;
	}

	ret = crypto_skcipher_setkey(new->tfm, key, DM_CMK_KEY_LEN);
	if (ret) {
		cmk_key_scrub(new);
		goto out;
	}
	percpu_ref_reinit(&new->users);

	/* The lease is set before the key is published: readers see both. */
	cmk_set_lease(slot, new, lease_ms);
	/* Should the lease lapse, I/O waits for the next install. */
	cmk_hold_set_ok(slot, true);
	old = rcu_replace_pointer(slot->active, new,
				  lockdep_is_held(&slot->lock));
	slot->next ^= 1;
	slot->generation = generation;
	WRITE_ONCE(slot->state, DM_CMK_STATE_ACTIVE);
	if (!slot->bound) {
		memcpy(slot->fingerprint, fpr, sizeof(fpr));
		/* Others read the fingerprint once they see it bound. */
		smp_store_release(&slot->bound, true);
	}
	/* A refusal not yet reported is stale now: don't send it after this. */
	cancel_work(&slot->refused_work);
	clear_bit(CMK_SLOT_REFUSED_SENT, &slot->flags);

	if (old)
		cmk_key_retire(old);
	/* The key is published: what waited for it goes on. */
	cmk_hold_release(slot, CMK_UNHOLD_RESUME);

	DMINFO("%s: key installed, generation %llu, lease %u ms",
	       slot->name, generation, lease_ms);
	cmk_netlink_notify(slot, DM_CMK_EVENT_KEY_INSTALLED, 0);
out:
	memzero_explicit(fpr, sizeof(fpr));
	return ret;
}

/**
 * cmk_slot_wipe() - wipe the key of @slot; I/O waits or fails from now on
 * @slot: the slot
 * @reason: why, reported in the event and the kernel log
 *
 * When this returns, no bio is using the key and its schedule has been
 * overwritten.  After REVOKED, REQUESTED or DESTROY, bios waiting for a
 * key fail, and later ones fail at once; after any other reason they wait
 * for the next install up to their hold_ms.  A slot without a key is left
 * as it is, except that one of those three reasons ends every wait.
 *
 * Context: the slot's lock held; sleeps.
 */
void cmk_slot_wipe(struct cmk_slot *slot, enum dm_cmk_reason reason)
{
	bool holds = cmk_reason_holds(reason);
	struct cmk_key *old = cmk_slot_key(slot);

	lockdep_assert_held(&slot->lock);

	if (!old) {
		/*
		 * A fork is news even to a slot without a key: its agent
		 * must unseal again before it installs anything.
		 */
		if (reason == DM_CMK_REASON_VMFORK) {
			if (slot->state == DM_CMK_STATE_WIPED && slot->hold_ok)
				slot->wipe_reason = reason;
			cmk_netlink_notify(slot, DM_CMK_EVENT_KEY_WIPED, reason);
			return;
		}
		if (holds || (!slot->hold_ok && slot->wipe_reason == reason))
			return;
		/* No key to wipe, but the customer's "no" ends every wait. */
		cmk_hold_set_ok(slot, false);
		cmk_hold_release(slot, CMK_UNHOLD_FAIL);
		if (reason == DM_CMK_REASON_DESTROY)
			return;
		WRITE_ONCE(slot->state, DM_CMK_STATE_WIPED);
		slot->wipe_reason = reason;
		cmk_netlink_notify(slot, DM_CMK_EVENT_KEY_WIPED, reason);
		return;
	}

	/* Decide the fate of waiting bios before the key is gone. */
	cmk_hold_set_ok(slot, holds);
	WRITE_ONCE(slot->state, DM_CMK_STATE_WIPED);
	slot->wipe_reason = reason;
	rcu_replace_pointer(slot->active, NULL, lockdep_is_held(&slot->lock));
	cancel_delayed_work(&slot->lease_work);
	cmk_key_retire(old);
	if (!holds)
		cmk_hold_release(slot, CMK_UNHOLD_FAIL);

	DMINFO("%s: key wiped (%s)", slot->name, cmk_reason_name(reason));
	cmk_netlink_notify(slot, DM_CMK_EVENT_KEY_WIPED, reason);
}

/**
 * cmk_slot_renew() - extend the lease of an ACTIVE slot
 * @slot: the slot
 * @lease_ms: new lease from now, already accepted by the table's policy
 *
 * A lease that has already run out is not revived: the key is wiped.
 *
 * Context: the slot's lock held.
 * Return: 0, or -ENOKEY if the slot holds no (live) key.
 */
int cmk_slot_renew(struct cmk_slot *slot, u32 lease_ms)
{
	struct cmk_key *key = cmk_slot_key(slot);

	lockdep_assert_held(&slot->lock);
	if (!key)
		return -ENOKEY;
	if (cmk_key_expired(key)) {
		cmk_slot_wipe(slot, DM_CMK_REASON_LEASE_EXPIRED);
		return -ENOKEY;
	}
	cmk_set_lease(slot, key, lease_ms);
	return 0;
}

/**
 * cmk_slot_lease_left() - time left on the lease of the published key
 * @slot: the slot
 * @left_ms: set to the milliseconds left (0 once run out)
 *
 * Return: false if the slot holds no key or its key has no lease.
 */
bool cmk_slot_lease_left(struct cmk_slot *slot, u32 *left_ms)
{
	u64 deadline = 0, now = cmk_now_ns();
	struct cmk_key *key;

	rcu_read_lock();
	key = rcu_dereference(slot->active);
	if (key)
		deadline = READ_ONCE(key->deadline);
	rcu_read_unlock();
	if (!deadline)
		return false;
	*left_ms = now >= deadline ? 0 :
		   min_t(u64, div_u64(deadline - now, NSEC_PER_MSEC), U32_MAX);
	return true;
}

/**
 * cmk_slot_dev_name() - the current name of the slot's mapped device
 * @slot: the slot
 *
 * Looked up each time, so that dmsetup rename shows in GET and events;
 * the last name seen is kept for when the device is being removed.
 *
 * Context: the slot's lock held.
 * Return: the name, valid while the lock is held.
 */
const char *cmk_slot_dev_name(struct cmk_slot *slot)
{
	char name[DM_NAME_LEN];

	lockdep_assert_held(&slot->lock);
	if (!slot->dead && !dm_copy_name_and_uuid(slot->md, name, NULL))
		strscpy(slot->dev_name, name, sizeof(slot->dev_name));
	return slot->dev_name;
}

static void cmk_lease_work(struct work_struct *work)
{
	struct cmk_slot *slot = container_of(to_delayed_work(work),
					     struct cmk_slot, lease_work);
	struct cmk_key *key;
	u64 now = cmk_now_ns();

	mutex_lock(&slot->lock);
	key = cmk_slot_key(slot);
	if (key && key->deadline && now >= key->deadline)
		cmk_slot_wipe(slot, DM_CMK_REASON_LEASE_EXPIRED);
	else if (key && key->deadline)
		/* The timer counts awake time only: look again later. */
		mod_delayed_work(cmk_wq, &slot->lease_work,
				 nsecs_to_jiffies(key->deadline - now) + 1);
	mutex_unlock(&slot->lock);
}

static void cmk_refused_work(struct work_struct *work)
{
	struct cmk_slot *slot = container_of(work, struct cmk_slot,
					     refused_work);

	mutex_lock(&slot->lock);
	if (READ_ONCE(slot->state) != DM_CMK_STATE_ACTIVE)
		cmk_netlink_notify(slot, DM_CMK_EVENT_IO_REFUSED, 0);
	mutex_unlock(&slot->lock);
}

/* Count a refused bio; tell userspace once per sealed or wiped period. */
void cmk_slot_note_refused(struct cmk_slot *slot)
{
	atomic64_inc(&slot->refused);
	if (!test_and_set_bit(CMK_SLOT_REFUSED_SENT, &slot->flags))
		queue_work(cmk_wq, &slot->refused_work);
}

/* ---- slot lifetime ------------------------------------------------------ */

static void cmk_slot_release(struct kref *ref)
{
	struct cmk_slot *slot = container_of(ref, struct cmk_slot, ref);

	/* Targets are gone, and their bios with them. */
	WARN_ON_ONCE(!list_empty(&slot->held));
	cancel_delayed_work_sync(&slot->lease_work);
	cancel_delayed_work_sync(&slot->hold_work);
	cancel_work_sync(&slot->refused_work);
	cmk_key_destroy_one(&slot->keys[0]);
	cmk_key_destroy_one(&slot->keys[1]);
	memzero_explicit(slot->fingerprint, sizeof(slot->fingerprint));
	mutex_destroy(&slot->lock);
	kfree(slot);
}

/* Drop a reference from cmk_slot_get() or cmk_slot_get_next(). */
void cmk_slot_put(struct cmk_slot *slot)
{
	kref_put(&slot->ref, cmk_slot_release);
}

/**
 * cmk_slot_get() - find the slot of @name and take a reference on it
 * @name: a valid key_name
 *
 * The caller takes the slot's lock and must then check &cmk_slot.dead.
 * Return: the slot, or NULL.
 */
struct cmk_slot *cmk_slot_get(const char *name)
{
	struct cmk_slot *slot, *found = NULL;

	mutex_lock(&cmk_slots_lock);
	list_for_each_entry(slot, &cmk_slots, node) {
		if (!strcmp(slot->name, name)) {
			kref_get(&slot->ref);
			found = slot;
			break;
		}
	}
	mutex_unlock(&cmk_slots_lock);
	return found;
}

/**
 * cmk_slot_get_next() - the first slot whose id is at least @id
 * @id: cursor; pass the last slot's id + 1 to walk every slot once
 *
 * Return: the slot with a reference taken, or NULL at the end.
 */
struct cmk_slot *cmk_slot_get_next(u64 id)
{
	struct cmk_slot *slot, *found = NULL;

	mutex_lock(&cmk_slots_lock);
	list_for_each_entry(slot, &cmk_slots, node) {
		if (slot->id >= id) {
			kref_get(&slot->ref);
			found = slot;
			break;
		}
	}
	mutex_unlock(&cmk_slots_lock);
	return found;
}

static struct cmk_slot *cmk_slot_alloc(const char *name,
				       struct mapped_device *md)
{
	struct cmk_slot *slot;
	int ret;

	slot = kzalloc(sizeof(*slot), GFP_KERNEL);
	if (!slot)
		return ERR_PTR(-ENOMEM);
	kref_init(&slot->ref);
	mutex_init(&slot->lock);
	strscpy(slot->name, name, sizeof(slot->name));
	slot->md = md;
	if (dm_copy_name_and_uuid(md, slot->dev_name, NULL))
		strscpy(slot->dev_name, dm_device_name(md), sizeof(slot->dev_name));
	slot->state = DM_CMK_STATE_SEALED;
	INIT_LIST_HEAD(&slot->target_list);
	INIT_DELAYED_WORK(&slot->lease_work, cmk_lease_work);
	INIT_WORK(&slot->refused_work, cmk_refused_work);
	spin_lock_init(&slot->hold_lock);
	INIT_LIST_HEAD(&slot->held);
	INIT_DELAYED_WORK(&slot->hold_work, cmk_hold_expire_work);
	/* A new device waits for its first key. */
	slot->hold_ok = true;
	atomic64_set(&slot->reads, 0);
	atomic64_set(&slot->writes, 0);
	atomic64_set(&slot->io_errors, 0);
	atomic64_set(&slot->refused, 0);
	atomic64_set(&slot->rejected, 0);

	ret = cmk_key_init_one(&slot->keys[0]);
	if (!ret)
		ret = cmk_key_init_one(&slot->keys[1]);
	if (ret) {
		cmk_slot_put(slot);
		return ERR_PTR(ret);
	}
	slot->reqsize = max(crypto_skcipher_reqsize(slot->keys[0].tfm),
			    crypto_skcipher_reqsize(slot->keys[1].tfm));
	return slot;
}

/* The tweak values of a target: up to two inclusive ranges. */
struct cmk_tweaks {
	unsigned int n;
	u64 lo[2], hi[2];
};

/*
 * The tweak of a sector is iv_offset + sector, modulo 2^64 as dm-crypt's
 * plain64 has it, and shifted down by sector_shift with iv_large_sectors
 * (then modulo 2^(64 - shift)).  A range that wraps is two ranges.
 */
static void cmk_iv_tweaks(const struct cmk_target *ct, struct cmk_tweaks *t)
{
	unsigned int shift = test_bit(CMK_IV_LARGE_SECTORS, &ct->flags) ?
			     ct->sector_shift : 0;
	u64 top = U64_MAX >> shift;	/* the largest tweak */
	u64 first = ct->iv_offset >> shift;
	u64 last = (ct->ti->len >> shift) - 1;	/* count - 1, len > 0 */

	if (last <= top - first) {
		t->n = 1;
		t->lo[0] = first;
		t->hi[0] = first + last;
	} else {
		t->n = 2;
		t->lo[0] = first;
		t->hi[0] = top;
		t->lo[1] = 0;
		t->hi[1] = last - (top - first) - 1;
	}
}

static bool cmk_tweaks_meet(const struct cmk_tweaks *a,
			    const struct cmk_tweaks *b)
{
	unsigned int i, j;

	for (i = 0; i < a->n; i++)
		for (j = 0; j < b->n; j++)
			if (a->lo[i] <= b->hi[j] && b->lo[j] <= a->hi[i])
				return true;
	return false;
}

/* Do @a and @b put the same tweak on the same backing block? */
static bool cmk_same_layout(const struct cmk_target *a,
			    const struct cmk_target *b)
{
	return a->dev->bdev == b->dev->bdev &&
	       a->start - a->iv_offset == b->start - b->iv_offset &&
	       a->sector_size == b->sector_size &&
	       test_bit(CMK_IV_LARGE_SECTORS, &a->flags) ==
	       test_bit(CMK_IV_LARGE_SECTORS, &b->flags);
}

/*
 * Would @ct reuse a tweak of another target under this key?  Two targets
 * with overlapping IV ranges encrypt different blocks with the same key
 * and tweak, which XTS must never do.  Within one table that is always
 * so.  A target of another table of the device (the live one during a
 * reload) may overlap only if it maps each tweak to the same block of the
 * same backing device: then they are the same blocks.
 *
 * Context: the slot's lock held.
 */
static bool cmk_iv_overlaps(struct cmk_slot *slot, struct cmk_target *ct)
{
	struct cmk_tweaks a, b;
	struct cmk_target *other;

	lockdep_assert_held(&slot->lock);
	cmk_iv_tweaks(ct, &a);
	list_for_each_entry(other, &slot->target_list, slot_node) {
		cmk_iv_tweaks(other, &b);
		if (!cmk_tweaks_meet(&a, &b))
			continue;
		if (other->ti->table == ct->ti->table ||
		    !cmk_same_layout(ct, other))
			return true;
	}
	return false;
}

/*
 * The lease policy of a slot is the strictest of its targets', so that
 * loading a laxer table (which may never be resumed) cannot relax the live
 * one.  A stricter table takes effect at once, on the live key too: its
 * lease is cut to the new maximum, and a key without a lease is wiped if
 * the new table requires one (fail closed).
 *
 * Context: the slot's lock held.
 */
static void cmk_slot_update_policy(struct cmk_slot *slot)
{
	struct cmk_target *ct;
	struct cmk_key *key;
	u64 limit;

	slot->lease_max_ms = CMK_LEASE_MAX_MS_LIMIT;
	slot->allow_no_lease = true;
	slot->hold_ms = CMK_HOLD_MS_LIMIT;
	list_for_each_entry(ct, &slot->target_list, slot_node) {
		slot->lease_max_ms = min(slot->lease_max_ms, ct->lease_max_ms);
		slot->hold_ms = min(slot->hold_ms, ct->hold_ms);
		if (!test_bit(CMK_ALLOW_NO_LEASE, &ct->flags))
			slot->allow_no_lease = false;
	}
	ct = list_first_entry_or_null(&slot->target_list, struct cmk_target,
				      slot_node);
	if (ct)
		slot->sector_size = ct->sector_size;

	key = cmk_slot_key(slot);
	if (!key)
		return;
	if (!key->deadline) {
		if (!slot->allow_no_lease)
			cmk_slot_wipe(slot, DM_CMK_REASON_POLICY);
		return;
	}
	limit = cmk_now_ns() + (u64)slot->lease_max_ms * NSEC_PER_MSEC;
	if (key->deadline > limit) {
		DMINFO("%s: lease cut to the new table's %u ms", slot->name,
		       slot->lease_max_ms);
		cmk_set_lease(slot, key, slot->lease_max_ms);
	}
}

/*
 * The live slot of @name, or a new one on the list, with a reference for
 * the caller and the slot's lock held; *@created tells which.  A new slot
 * is locked before it goes on the list, so nobody else can see it before
 * its creator has attached its first target (or taken it off again).  A
 * slot whose last target is just going is skipped: it is leaving the list.
 */
static struct cmk_slot *cmk_slot_get_or_create(const char *name,
					       struct mapped_device *md,
					       bool *created)
{
	struct cmk_slot *slot, *new = NULL;

	*created = false;
	for (;;) {
		slot = cmk_slot_get(name);
		if (!slot) {
			if (!new) {
				new = cmk_slot_alloc(name, md);
				if (IS_ERR(new))
					return new;
			}
			mutex_lock(&new->lock);
			mutex_lock(&cmk_slots_lock);
			/* Nobody may have added one meanwhile. */
			list_for_each_entry(slot, &cmk_slots, node)
				if (!strcmp(slot->name, name))
					break;
			if (list_entry_is_head(slot, &cmk_slots, node)) {
				new->id = cmk_next_id++;
				/* The list's reference, and the caller's. */
				kref_get(&new->ref);
				list_add_tail(&new->node, &cmk_slots);
				mutex_unlock(&cmk_slots_lock);
				*created = true;
				return new;
			}
			mutex_unlock(&cmk_slots_lock);
			mutex_unlock(&new->lock);
			continue;
		}
		mutex_lock(&slot->lock);
		if (!slot->dead)
			break;
		mutex_unlock(&slot->lock);
		cmk_slot_put(slot);
		cond_resched();
	}
	if (new)
		cmk_slot_put(new);
	return slot;
}

/* Take a slot that its creator could not use off the list again. */
static void cmk_slot_unlist(struct cmk_slot *slot)
{
	lockdep_assert_held(&slot->lock);
	slot->dead = true;
	mutex_lock(&cmk_slots_lock);
	list_del(&slot->node);
	mutex_unlock(&cmk_slots_lock);
}

/**
 * cmk_slot_attach() - attach a new target to the slot of @name
 * @ct: the target; its options are already parsed
 * @name: the key_name, already validated
 * @md: the mapped device the target belongs to
 * @error: set to a message for ti->error on failure
 *
 * Targets of one mapped device that name the same key share its slot, which
 * is how a table reload keeps the key.  Another mapped device may not use a
 * key_name already in use, and targets of one table may not reuse each
 * other's tweaks.  The slot's lease policy becomes the strictest of its
 * targets' (see cmk_slot_update_policy()).
 *
 * Return: 0 or a negative errno.
 */
int cmk_slot_attach(struct cmk_target *ct, const char *name,
		    struct mapped_device *md, char **error)
{
	struct cmk_slot *slot;
	bool created;
	int ret = 0;

	slot = cmk_slot_get_or_create(name, md, &created);
	if (IS_ERR(slot)) {
		*error = PTR_ERR(slot) == -ENOMEM ?
			"Cannot allocate key slot" :
			"Cannot allocate the xts(aes) transform";
		return PTR_ERR(slot);
	}
	if (slot->md != md) {
		DMERR("key_name %s is already used by device %s",
		      name, cmk_slot_dev_name(slot));
		*error = "key_name is already used by another mapped device";
		ret = -EBUSY;
	} else if (cmk_iv_overlaps(slot, ct)) {
		*error = "key_name and IV range overlap another target (a tweak would be reused)";
		ret = -EINVAL;
	}
	if (!ret) {
		slot->targets++;
		list_add_tail(&ct->slot_node, &slot->target_list);
		ct->slot = slot;
		cmk_slot_update_policy(slot);
	}
	/* A slot made for a target that was refused goes again. */
	if (ret && created) {
		cmk_slot_unlist(slot);
		mutex_unlock(&slot->lock);
		cmk_slot_put(slot);	/* the list's */
	} else {
		mutex_unlock(&slot->lock);
	}
	/* The target keeps the caller's reference while attached. */
	if (ret)
		cmk_slot_put(slot);
	return ret;
}

/* Detach a target; the last one out wipes the key and frees the slot. */
void cmk_slot_detach(struct cmk_target *ct)
{
	struct cmk_slot *slot = ct->slot;
	bool last;

	if (!slot)
		return;
	ct->slot = NULL;

	mutex_lock(&slot->lock);
	list_del(&ct->slot_node);
	last = --slot->targets == 0;
	if (last) {
		cmk_slot_wipe(slot, DM_CMK_REASON_DESTROY);
		cmk_slot_unlist(slot);
	} else {
		cmk_slot_update_policy(slot);
	}
	mutex_unlock(&slot->lock);

	if (last)
		cmk_slot_put(slot);	/* the list's */
	cmk_slot_put(slot);		/* the target's */
}

/**
 * cmk_wipe_all() - wipe every slot's key
 * @reason: why
 *
 * Each slot is wiped under its own lock only, one after the other.
 * Context: process context; sleeps.
 */
void cmk_wipe_all(enum dm_cmk_reason reason)
{
	struct cmk_slot *slot;
	u64 id = 0;

	while ((slot = cmk_slot_get_next(id))) {
		id = slot->id + 1;
		mutex_lock(&slot->lock);
		if (!slot->dead)
			cmk_slot_wipe(slot, reason);
		mutex_unlock(&slot->lock);
		cmk_slot_put(slot);
	}
}

/* ---- system sleep and VM fork ------------------------------------------- */

/*
 * From the start of a suspend, hibernation or restore until it is over,
 * no key may be installed: a KMS check that completes in that window must
 * not put a key back into RAM for S3 or into a hibernation image.
 *
 * The keys themselves are wiped later, by cmk_pm_wipe(), once the freezer
 * has stopped every task: a task waiting for I/O that is held for a key
 * cannot be frozen, so wiping here, before the freezer, would make the
 * suspend fail (or, without a hold, fail that I/O).  Until then the PM
 * core's own sync (suspend, if sync_on_suspend is set; hibernation,
 * always) writes dirty data under the key.
 */
static int cmk_pm_notify(struct notifier_block *nb, unsigned long action,
			 void *data)
{
	switch (action) {
	case PM_HIBERNATION_PREPARE:
	case PM_SUSPEND_PREPARE:
	case PM_RESTORE_PREPARE:
		WRITE_ONCE(cmk_sleeping, true);
		break;
	case PM_POST_HIBERNATION:
	case PM_POST_SUSPEND:
	case PM_POST_RESTORE:
		WRITE_ONCE(cmk_sleeping, false);
		break;
	}
	return NOTIFY_DONE;
}

/*
 * Device PM callback, after the freezer: wipe every key before the system
 * sleeps (suspend, suspend-to-idle) or before the hibernation image is
 * taken (freeze) or the machine is powered off.  Writes that come later
 * wait for the key the agent installs after resume.
 */
static int cmk_pm_wipe(struct device *dev)
{
	cmk_wipe_all(DM_CMK_REASON_SUSPEND);
	return 0;
}

static const struct dev_pm_ops cmk_pm_ops = {
	.suspend = cmk_pm_wipe,
	.freeze = cmk_pm_wipe,
	.poweroff = cmk_pm_wipe,
};

/* Reboot, power-off, kexec: no key is left for whatever runs next. */
static void cmk_pm_shutdown(struct platform_device *pdev)
{
	cmk_wipe_all(DM_CMK_REASON_DESTROY);
}

static struct platform_driver cmk_pm_driver = {
	.shutdown = cmk_pm_shutdown,
	.driver = {
		.name = "dm-cmk",
		.pm = &cmk_pm_ops,
		/* Unbinding would silently turn the sleep wipe off. */
		.suppress_bind_attrs = true,
	},
};

static struct platform_device *cmk_pm_dev;

/* A cloned VM must not run on with its parent's keys. */
static int cmk_vmfork_notify(struct notifier_block *nb, unsigned long action,
			     void *data)
{
	/*
	 * Count first: a KEY_SET that holds a slot's lock now either saw the
	 * old epoch and is wiped below, or comes later and sees the new one
	 * (and is refused if its key was unsealed before the fork).
	 */
	atomic_inc(&cmk_epoch);
	cmk_wipe_all(DM_CMK_REASON_VMFORK);
	return NOTIFY_DONE;
}

static struct notifier_block cmk_pm_nb = {
	.notifier_call = cmk_pm_notify,
};

static struct notifier_block cmk_vmfork_nb = {
	.notifier_call = cmk_vmfork_notify,
};

static int cmk_fpr_init(void)
{
	u8 secret[32];
	int ret;

	cmk_fpr_tfm = crypto_alloc_shash("hmac(sha256)", 0, 0);
	if (IS_ERR(cmk_fpr_tfm)) {
		ret = PTR_ERR(cmk_fpr_tfm);
		cmk_fpr_tfm = NULL;
		return ret;
	}
	get_random_bytes(secret, sizeof(secret));
	ret = crypto_shash_setkey(cmk_fpr_tfm, secret, sizeof(secret));
	memzero_explicit(secret, sizeof(secret));
	if (ret) {
		crypto_free_shash(cmk_fpr_tfm);
		cmk_fpr_tfm = NULL;
	}
	return ret;
}

int cmk_key_init(void)
{
	int ret;

	ret = cmk_fpr_init();
	if (ret)
		return ret;
	cmk_wq = alloc_workqueue("dm-cmk", WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	if (!cmk_wq) {
		ret = -ENOMEM;
		goto err_fpr;
	}
	ret = platform_driver_register(&cmk_pm_driver);
	if (ret)
		goto err_wq;
	cmk_pm_dev = platform_device_register_simple("dm-cmk",
						     PLATFORM_DEVID_NONE,
						     NULL, 0);
	if (IS_ERR(cmk_pm_dev)) {
		ret = PTR_ERR(cmk_pm_dev);
		goto err_driver;
	}
	ret = register_pm_notifier(&cmk_pm_nb);
	if (ret)
		goto err_dev;
	ret = register_random_vmfork_notifier(&cmk_vmfork_nb);
	if (ret)
		goto err_pm;
	return 0;

err_pm:
	unregister_pm_notifier(&cmk_pm_nb);
err_dev:
	platform_device_unregister(cmk_pm_dev);
err_driver:
	platform_driver_unregister(&cmk_pm_driver);
err_wq:
	destroy_workqueue(cmk_wq);
err_fpr:
	crypto_free_shash(cmk_fpr_tfm);
	return ret;
}

void cmk_key_exit(void)
{
	unregister_random_vmfork_notifier(&cmk_vmfork_nb);
	unregister_pm_notifier(&cmk_pm_nb);
	platform_device_unregister(cmk_pm_dev);
	platform_driver_unregister(&cmk_pm_driver);
	/* Every target holds a module reference, so no slot is left here. */
	destroy_workqueue(cmk_wq);
	crypto_free_shash(cmk_fpr_tfm);
}
