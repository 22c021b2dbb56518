// SPDX-License-Identifier: GPL-2.0
/*
 * dm-cmk held bios: I/O that waits for a key that is only briefly away.
 *
 * A lease that lapsed for a moment, a system resume or an agent restart
 * leaves a slot without its key for a few seconds.  Failing the I/O of
 * that moment with EIO would abort a filesystem journal: an outage made
 * by us.  So, like dm-multipath's queue_if_no_path, a bio that finds no
 * key waits on its slot's list for up to its table's hold_ms, and goes on
 * when a key is installed.  Only the customer's "no" fails I/O at once:
 * a wipe for REVOKED (or REQUESTED, or the device's removal) fails every
 * held bio and makes later ones fail without waiting.
 *
 * A held bio is not copied: it waits in its own per-bio data, so holding
 * costs no memory beyond what the submitter already committed.  Its time
 * is counted in jiffies, which stop while the system sleeps, so that a
 * bio held across a suspend still has its time left after resume.
 *
 * Whether a bio may wait (&cmk_slot.hold_ok) and the key it would wait
 * for (&cmk_slot.active) are checked together under &cmk_slot.hold_lock,
 * and cmk_slot_install() publishes the key before it takes that lock to
 * release the list: so a bio either sees the new key or is on the list
 * that the install releases, never neither.
 */

#include <linux/jiffies.h>

#include "dm-cmk.h"

/* hold_ms was too short: said the same way by the expiry and a re-hold. */
static void cmk_hold_log_timeout(struct cmk_slot *slot)
{
	DMERR_LIMIT("%s: I/O held for the key timed out, device is %s",
		    slot->name, cmk_state_name(READ_ONCE(slot->state)));
}

/**
 * cmk_hold() - wait for a key, if the slot's state allows it
 * @slot: the slot that had no usable key for the bio
 * @h: the bio's hold entry
 * @hold_ms: how long the bio may wait (its table's hold_ms)
 *
 * Context: any; takes &cmk_slot.hold_lock with interrupts disabled.
 * Return: &enum cmk_hold_result.  After %CMK_HOLD_HELD the bio belongs to
 * the hold list until cmk_io_unhold() is called for it.
 */
enum cmk_hold_result cmk_hold(struct cmk_slot *slot, struct cmk_held *h,
			      u32 hold_ms)
{
	enum cmk_hold_result ret = CMK_HOLD_REFUSE;
	unsigned long flags, now = jiffies;
	bool expired = false;

	spin_lock_irqsave(&slot->hold_lock, flags);
	if (cmk_slot_usable(slot)) {
		/* A key replaced under us: go on, even without a hold. */
		ret = CMK_HOLD_RETRY;
	} else if (slot->hold_ok && hold_ms && !slot->hold_requeue) {
		/*
		 * A bio released by a KEY_SET whose key was gone again before
		 * the bio could take it (a lease that ran out at once, another
		 * wipe, a read back from the disk after the key went) waits
		 * again, but only until the deadline of its first wait: at
		 * most hold_ms from then, however the key comes and goes.
		 */
		if (!h->waited) {
			h->until = now + msecs_to_jiffies(hold_ms);
			h->waited = true;
		} else if (time_after_eq(now, h->until)) {
			expired = true;
			goto out;
		}
		list_add_tail(&h->node, &slot->held);
		/*
		 * The expiry runs for the earliest entry: targets of one
		 * slot may have different hold_ms.
		 */
		if (!slot->nr_held || time_before(h->until, slot->hold_next)) {
			slot->hold_next = h->until;
			mod_delayed_work(cmk_wq, &slot->hold_work, h->until - now);
		}
		WRITE_ONCE(slot->nr_held, slot->nr_held + 1);
		ret = CMK_HOLD_HELD;
	} else if (slot->hold_requeue) {
		ret = CMK_HOLD_REQUEUE;
	}
out:
	spin_unlock_irqrestore(&slot->hold_lock, flags);
	/* As the expiry says it: hold_ms was too short, not a "no". */
	if (expired)
		cmk_hold_log_timeout(slot);
	return ret;
}

/**
 * cmk_hold_set_ok() - may bios that find no key wait for one?
 * @slot: the slot
 * @ok: true after a wipe for a reason that holds (or while sealed)
 *
 * Set before a key is unpublished, so a bio that finds it gone sees the
 * reason's answer.  A wipe that refuses to hold then fails what is held,
 * with cmk_hold_release(%CMK_UNHOLD_FAIL).
 *
 * Context: &cmk_slot.lock held.
 */
void cmk_hold_set_ok(struct cmk_slot *slot, bool ok)
{
	unsigned long flags;

	lockdep_assert_held(&slot->lock);
	spin_lock_irqsave(&slot->hold_lock, flags);
	slot->hold_ok = ok;
	spin_unlock_irqrestore(&slot->hold_lock, flags);
}

/* Take the whole list, or only the entries whose time is up. */
static void cmk_hold_take(struct cmk_slot *slot, struct list_head *out,
			  bool expired_only)
{
	unsigned long now = jiffies, next = 0, flags;
	struct cmk_held *h, *tmp;
	bool more = false;

	spin_lock_irqsave(&slot->hold_lock, flags);
	list_for_each_entry_safe(h, tmp, &slot->held, node) {
		if (expired_only && time_before(now, h->until)) {
			if (!more || time_before(h->until, next))
				next = h->until;
			more = true;
			continue;
		}
		list_move_tail(&h->node, out);
		WRITE_ONCE(slot->nr_held, slot->nr_held - 1);
	}
	if (more) {
		slot->hold_next = next;
		mod_delayed_work(cmk_wq, &slot->hold_work, next - now);
	}
	spin_unlock_irqrestore(&slot->hold_lock, flags);
}

static void cmk_hold_finish(struct list_head *list, enum cmk_unhold how)
{
	struct cmk_held *h, *tmp;

	list_for_each_entry_safe(h, tmp, list, node) {
		list_del_init(&h->node);
		cmk_io_unhold(h, how);
	}
}

/**
 * cmk_hold_release() - end every hold of @slot
 * @slot: the slot
 * @how: %CMK_UNHOLD_RESUME after an install, %CMK_UNHOLD_FAIL after a wipe
 *	that must not wait (REVOKED, REQUESTED, DESTROY)
 *
 * Context: process context; the bios are handed on outside the spinlock.
 */
void cmk_hold_release(struct cmk_slot *slot, enum cmk_unhold how)
{
	LIST_HEAD(list);

	cmk_hold_take(slot, &list, false);
	cmk_hold_finish(&list, how);
}

/* Fail the held bios whose time is up; re-arm for the next one. */
void cmk_hold_expire_work(struct work_struct *work)
{
	struct cmk_slot *slot = container_of(to_delayed_work(work),
					     struct cmk_slot, hold_work);
	LIST_HEAD(list);

	cmk_hold_take(slot, &list, true);
	if (!list_empty(&list))
		cmk_hold_log_timeout(slot);
	cmk_hold_finish(&list, CMK_UNHOLD_FAIL);
}

/**
 * cmk_hold_suspend() - a noflush suspend of the slot's device begins
 * @slot: the slot
 * @noflush: the suspend is a noflush one
 *
 * Device-mapper waits for every bio in flight before a suspend completes,
 * held ones too.  For a noflush suspend (a table swap that must not lose
 * I/O, as dm-multipath sees it) held bios are handed back to
 * device-mapper, which re-issues them after resume, and bios that find no
 * key until then are handed back at once.  A flushing suspend waits for
 * held bios as for any other, at most their hold_ms.
 *
 * Context: process context.
 */
void cmk_hold_suspend(struct cmk_slot *slot, bool noflush)
{
	unsigned long flags;

	if (!noflush)
		return;
	spin_lock_irqsave(&slot->hold_lock, flags);
	slot->hold_requeue = true;
	spin_unlock_irqrestore(&slot->hold_lock, flags);
	cmk_hold_release(slot, CMK_UNHOLD_REQUEUE);
}

/* cmk_hold_resume() - the suspend is over (or was undone): hold again. */
void cmk_hold_resume(struct cmk_slot *slot)
{
	unsigned long flags;

	spin_lock_irqsave(&slot->hold_lock, flags);
	slot->hold_requeue = false;
	spin_unlock_irqrestore(&slot->hold_lock, flags);
}

/* Number of bios waiting for a key now. */
unsigned int cmk_hold_count(struct cmk_slot *slot)
{
	return READ_ONCE(slot->nr_held);
}
