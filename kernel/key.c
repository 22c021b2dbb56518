// SPDX-License-Identifier: GPL-2.0
/*
 * dm-cmk key slots: the whole life of a key, from install to wipe.
 *
 * A slot holds the key of one key_name.  Its state moves only through the
 * functions here, each called with cmk_mutex held:
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
 */

#include <linux/jiffies.h>
#include <linux/random.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/suspend.h>
#include <crypto/algapi.h>
#include <crypto/skcipher.h>

#include "dm-cmk.h"

/* Serialises every change of slot state, and the slot list. */
DEFINE_MUTEX(cmk_mutex);
LIST_HEAD(cmk_slots);

static struct workqueue_struct *cmk_wq;
static u64 cmk_next_id;

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
	unsigned long deadline = READ_ONCE(key->deadline);

	return deadline && time_after_eq(jiffies, deadline);
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

/* Give @key a lease of @lease_ms from now (0: none), and arm the wipe. */
static void cmk_set_lease(struct cmk_slot *slot, struct cmk_key *key,
			  u32 lease_ms)
{
	unsigned long deadline;

	if (lease_ms == 0) {
		WRITE_ONCE(key->deadline, 0);
		cancel_delayed_work(&slot->lease_work);
		return;
	}
	/* One word, read once: 0 is reserved for "no lease". */
	deadline = jiffies + msecs_to_jiffies(lease_ms);
	WRITE_ONCE(key->deadline, deadline ? deadline : 1);
	mod_delayed_work(cmk_wq, &slot->lease_work, msecs_to_jiffies(lease_ms));
}

/* The published key, or NULL.  Context: cmk_mutex held. */
static struct cmk_key *cmk_slot_key(struct cmk_slot *slot)
{
	return rcu_dereference_protected(slot->active,
					 lockdep_is_held(&cmk_mutex));
}

/**
 * cmk_slot_install() - install @key and make the slot ACTIVE
 * @slot: the slot, in any state
 * @key: %DM_CMK_KEY_LEN bytes whose halves differ; the caller wipes it
 * @generation: caller's generation number, reported by GET
 * @lease_ms: lease, already accepted by cmk_lease_check()
 *
 * Invariant: outside cmk_mutex, @slot->keys[@slot->next] is never published
 * and has no users.  The new key is set on that object and published before
 * the previous key is retired, so replacing a key does not fail I/O.
 *
 * Context: cmk_mutex held.
 * Return: 0, or the crypto API's error; the slot is unchanged on error.
 */
int cmk_slot_install(struct cmk_slot *slot, const u8 *key, u64 generation,
		     u32 lease_ms)
{
	struct cmk_key *new = &slot->keys[slot->next];
	struct cmk_key *old;
	int ret;

	lockdep_assert_held(&cmk_mutex);

	ret = crypto_skcipher_setkey(new->tfm, key, DM_CMK_KEY_LEN);
	if (ret) {
		cmk_key_scrub(new);
		return ret;
	}
	percpu_ref_reinit(&new->users);

	/* The lease is set before the key is published: readers see both. */
	cmk_set_lease(slot, new, lease_ms);
	old = rcu_replace_pointer(slot->active, new,
				  lockdep_is_held(&cmk_mutex));
	slot->next ^= 1;
	slot->generation = generation;
	WRITE_ONCE(slot->state, DM_CMK_STATE_ACTIVE);
	/* A refusal not yet reported is stale now: don't send it after this. */
	cancel_work(&slot->refused_work);
	clear_bit(CMK_SLOT_REFUSED_SENT, &slot->flags);

	if (old)
		cmk_key_retire(old);

	DMINFO("%s: key installed, generation %llu, lease %u ms",
	       slot->name, generation, lease_ms);
	cmk_netlink_notify(slot, DM_CMK_EVENT_KEY_INSTALLED, 0);
	return 0;
}

/**
 * cmk_slot_wipe() - wipe the key of @slot; I/O fails from now on
 * @slot: the slot
 * @reason: why, reported in the event and the kernel log
 *
 * When this returns, no bio is using the key and its schedule has been
 * overwritten.  A slot without a key is left as it is.
 *
 * Context: cmk_mutex held; sleeps.
 */
void cmk_slot_wipe(struct cmk_slot *slot, enum dm_cmk_reason reason)
{
	struct cmk_key *old;

	lockdep_assert_held(&cmk_mutex);

	old = rcu_replace_pointer(slot->active, NULL,
				  lockdep_is_held(&cmk_mutex));
	if (!old)
		return;
	WRITE_ONCE(slot->state, DM_CMK_STATE_WIPED);
	slot->wipe_reason = reason;
	cancel_delayed_work(&slot->lease_work);
	cmk_key_retire(old);

	DMINFO("%s: key wiped (%s)", slot->name, cmk_reason_name(reason));
	cmk_netlink_notify(slot, DM_CMK_EVENT_KEY_WIPED, reason);
}

/**
 * cmk_slot_renew() - extend the lease of an ACTIVE slot
 * @slot: the slot
 * @lease_ms: new lease from now, already accepted by cmk_lease_check()
 *
 * A lease that has already run out is not revived: the key is wiped.
 *
 * Context: cmk_mutex held.
 * Return: 0, or -ENOKEY if the slot holds no (live) key.
 */
int cmk_slot_renew(struct cmk_slot *slot, u32 lease_ms)
{
	struct cmk_key *key = cmk_slot_key(slot);

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
	unsigned long deadline = 0, now = jiffies;
	struct cmk_key *key;

	rcu_read_lock();
	key = rcu_dereference(slot->active);
	if (key)
		deadline = READ_ONCE(key->deadline);
	rcu_read_unlock();
	if (!deadline)
		return false;
	*left_ms = time_after_eq(now, deadline) ? 0 :
		   jiffies_to_msecs(deadline - now);
	return true;
}

static void cmk_lease_work(struct work_struct *work)
{
	struct cmk_slot *slot = container_of(to_delayed_work(work),
					     struct cmk_slot, lease_work);
	struct cmk_key *key;

	mutex_lock(&cmk_mutex);
	key = cmk_slot_key(slot);
	if (key && cmk_key_expired(key))
		cmk_slot_wipe(slot, DM_CMK_REASON_LEASE_EXPIRED);
	mutex_unlock(&cmk_mutex);
}

static void cmk_refused_work(struct work_struct *work)
{
	struct cmk_slot *slot = container_of(work, struct cmk_slot,
					     refused_work);

	mutex_lock(&cmk_mutex);
	cmk_netlink_notify(slot, DM_CMK_EVENT_IO_REFUSED, 0);
	mutex_unlock(&cmk_mutex);
}

/* Count a refused bio; tell userspace once per sealed or wiped period. */
void cmk_slot_note_refused(struct cmk_slot *slot)
{
	atomic64_inc(&slot->refused);
	if (!test_and_set_bit(CMK_SLOT_REFUSED_SENT, &slot->flags))
		queue_work(cmk_wq, &slot->refused_work);
}

/* Context: cmk_mutex held. */
void cmk_wipe_all(enum dm_cmk_reason reason)
{
	struct cmk_slot *slot;

	lockdep_assert_held(&cmk_mutex);
	list_for_each_entry(slot, &cmk_slots, node)
		cmk_slot_wipe(slot, reason);
}

/* Context: cmk_mutex held. */
struct cmk_slot *cmk_slot_find(const char *name)
{
	struct cmk_slot *slot;

	lockdep_assert_held(&cmk_mutex);
	list_for_each_entry(slot, &cmk_slots, node)
		if (!strcmp(slot->name, name))
			return slot;
	return NULL;
}

static void cmk_slot_free(struct cmk_slot *slot)
{
	cmk_key_destroy_one(&slot->keys[0]);
	cmk_key_destroy_one(&slot->keys[1]);
	kfree(slot);
}

static struct cmk_slot *cmk_slot_create(const char *name,
					struct mapped_device *md)
{
	struct cmk_slot *slot;
	int ret;

	slot = kzalloc(sizeof(*slot), GFP_KERNEL);
	if (!slot)
		return ERR_PTR(-ENOMEM);
	strscpy(slot->name, name, sizeof(slot->name));
	slot->md = md;
	/* Not under dm's hash locks here, unlike in a destructor. */
	if (dm_copy_name_and_uuid(md, slot->dev_name, NULL))
		strscpy(slot->dev_name, dm_device_name(md), sizeof(slot->dev_name));
	slot->state = DM_CMK_STATE_SEALED;
	INIT_LIST_HEAD(&slot->target_list);
	INIT_DELAYED_WORK(&slot->lease_work, cmk_lease_work);
	INIT_WORK(&slot->refused_work, cmk_refused_work);
	atomic64_set(&slot->reads, 0);
	atomic64_set(&slot->writes, 0);
	atomic64_set(&slot->io_errors, 0);
	atomic64_set(&slot->refused, 0);

	ret = cmk_key_init_one(&slot->keys[0]);
	if (!ret)
		ret = cmk_key_init_one(&slot->keys[1]);
	if (ret) {
		cmk_slot_free(slot);
		return ERR_PTR(ret);
	}
	slot->reqsize = max(crypto_skcipher_reqsize(slot->keys[0].tfm),
			    crypto_skcipher_reqsize(slot->keys[1].tfm));
	slot->id = cmk_next_id++;
	list_add_tail(&slot->node, &cmk_slots);
	return slot;
}

/*
 * The lease policy of a slot is the strictest of its targets', so that
 * loading a laxer table (which may never be resumed) cannot relax the live
 * one.  A stricter table takes effect at once: fail closed.
 */
static void cmk_slot_update_policy(struct cmk_slot *slot)
{
	struct cmk_target *ct;

	slot->lease_max_ms = CMK_LEASE_MAX_MS_LIMIT;
	slot->allow_no_lease = true;
	list_for_each_entry(ct, &slot->target_list, slot_node) {
		slot->lease_max_ms = min(slot->lease_max_ms, ct->lease_max_ms);
		if (!test_bit(CMK_ALLOW_NO_LEASE, &ct->flags))
			slot->allow_no_lease = false;
	}
	ct = list_first_entry_or_null(&slot->target_list, struct cmk_target,
				      slot_node);
	if (ct)
		slot->sector_size = ct->sector_size;
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
 * key_name already in use.  The slot's lease policy becomes the strictest of
 * its targets' (see cmk_slot_update_policy()).
 *
 * Return: 0 or a negative errno.
 */
int cmk_slot_attach(struct cmk_target *ct, const char *name,
		    struct mapped_device *md, char **error)
{
	struct cmk_slot *slot;
	int ret = 0;

	mutex_lock(&cmk_mutex);
	slot = cmk_slot_find(name);
	if (slot && slot->md != md) {
		DMERR("key_name %s is already used by device %s",
		      name, slot->dev_name);
		*error = "key_name is already used by another mapped device";
		ret = -EBUSY;
		goto out;
	}
	if (!slot) {
		slot = cmk_slot_create(name, md);
		if (IS_ERR(slot)) {
			ret = PTR_ERR(slot);
			*error = ret == -ENOMEM ?
				"Cannot allocate key slot" :
				"Cannot allocate the xts(aes) transform";
			goto out;
		}
	}
	slot->targets++;
	list_add_tail(&ct->slot_node, &slot->target_list);
	cmk_slot_update_policy(slot);
	ct->slot = slot;
out:
	mutex_unlock(&cmk_mutex);
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

	mutex_lock(&cmk_mutex);
	list_del(&ct->slot_node);
	last = --slot->targets == 0;
	if (last) {
		cmk_slot_wipe(slot, DM_CMK_REASON_DESTROY);
		list_del(&slot->node);
	} else {
		cmk_slot_update_policy(slot);
	}
	mutex_unlock(&cmk_mutex);

	if (last) {
		cancel_delayed_work_sync(&slot->lease_work);
		cancel_work_sync(&slot->refused_work);
		cmk_slot_free(slot);
	}
}

static int cmk_pm_notify(struct notifier_block *nb, unsigned long action,
			 void *data)
{
	if (action == PM_HIBERNATION_PREPARE || action == PM_SUSPEND_PREPARE) {
		/*
		 * Hibernation calls us before it syncs, and suspend may be
		 * told not to sync: write dirty data out while the keys can
		 * still encrypt it, or it would fail with EIO.
		 */
		ksys_sync_helper();
		mutex_lock(&cmk_mutex);
		cmk_wipe_all(DM_CMK_REASON_SUSPEND);
		mutex_unlock(&cmk_mutex);
	}
	return NOTIFY_DONE;
}

/* A cloned VM must not run on with its parent's keys. */
static int cmk_vmfork_notify(struct notifier_block *nb, unsigned long action,
			     void *data)
{
	mutex_lock(&cmk_mutex);
	cmk_wipe_all(DM_CMK_REASON_VMFORK);
	mutex_unlock(&cmk_mutex);
	return NOTIFY_DONE;
}

static struct notifier_block cmk_pm_nb = {
	.notifier_call = cmk_pm_notify,
};

static struct notifier_block cmk_vmfork_nb = {
	.notifier_call = cmk_vmfork_notify,
};

int cmk_key_init(void)
{
	int ret;

	cmk_wq = alloc_workqueue("dm-cmk", WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	if (!cmk_wq)
		return -ENOMEM;
	ret = register_pm_notifier(&cmk_pm_nb);
	if (ret)
		goto err_wq;
	ret = register_random_vmfork_notifier(&cmk_vmfork_nb);
	if (ret)
		goto err_pm;
	return 0;

err_pm:
	unregister_pm_notifier(&cmk_pm_nb);
err_wq:
	destroy_workqueue(cmk_wq);
	return ret;
}

void cmk_key_exit(void)
{
	unregister_random_vmfork_notifier(&cmk_vmfork_nb);
	unregister_pm_notifier(&cmk_pm_nb);
	/* Every target holds a module reference, so no slot is left here. */
	destroy_workqueue(cmk_wq);
}
