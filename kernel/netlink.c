// SPDX-License-Identifier: GPL-2.0
/*
 * The "dm-cmk" generic netlink family: the only way keys enter the kernel.
 *
 * The family exists only in the initial network namespace (block devices
 * are global).  Commands that change a key (KEY_SET, KEY_WIPE, LEASE_RENEW)
 * and the events group need CAP_SYS_ADMIN in the initial user namespace,
 * like the device-mapper ioctls that create the devices; GET needs
 * CAP_NET_ADMIN.  Attributes are validated strictly against one policy; the
 * key must be exactly DM_CMK_KEY_LEN bytes, given once, and every copy of
 * it in the request is zeroed as soon as the request has been handled.
 */

#include <net/genetlink.h>
#include <crypto/algapi.h>

#include "dm-cmk.h"

static const struct nla_policy cmk_policy[DM_CMK_A_MAX + 1] = {
	[DM_CMK_A_NAME] = { .type = NLA_NUL_STRING, .len = DM_CMK_NAME_MAX },
	[DM_CMK_A_KEY] = NLA_POLICY_EXACT_LEN(DM_CMK_KEY_LEN),
	[DM_CMK_A_GENERATION] = { .type = NLA_U64 },
	[DM_CMK_A_LEASE_MS] = { .type = NLA_U32 },
	[DM_CMK_A_FLAGS] = NLA_POLICY_MASK(NLA_U32, DM_CMK_F_ALL),
	[DM_CMK_A_REASON] = NLA_POLICY_MAX(NLA_U32, DM_CMK_REASON_MAX),
	[DM_CMK_A_EPOCH] = { .type = NLA_U32 },
};

static struct genl_family cmk_family;

/*
 * Like GENL_REQ_ATTR_CHECK(), which only reports the missing attribute's
 * type, but with a message a person can read.
 */
#define CMK_NL_REQUIRE(info, attr, msg) ({				\
	struct genl_info *__cmk_info = (info);				\
	bool __missing = GENL_REQ_ATTR_CHECK(__cmk_info, attr);		\
	if (__missing)							\
		NL_SET_ERR_MSG(__cmk_info->extack, msg);		\
	__missing;							\
})

/*
 * Commands that change a key need what creating the device needed:
 * CAP_SYS_ADMIN, of both the socket's opener and the sender, in the
 * initial user namespace.  CAP_NET_ADMIN alone (a network daemon, a
 * host-network container) is not enough.
 */
static int cmk_nl_may_change_keys(struct sk_buff *skb, struct genl_info *info)
{
	if (netlink_capable(skb, CAP_SYS_ADMIN))
		return 0;
	NL_SET_ERR_MSG(info->extack,
		       "changing a dm-cmk key needs CAP_SYS_ADMIN in the initial user namespace");
	return -EPERM;
}

/*
 * Find the slot named in the request and lock it, or explain why not.
 * Release with cmk_nl_slot_unlock().
 */
static struct cmk_slot *cmk_nl_slot_lock(struct genl_info *info)
{
	struct nlattr *attr = info->attrs[DM_CMK_A_NAME];
	struct cmk_slot *slot;

	if (CMK_NL_REQUIRE(info, DM_CMK_A_NAME,
			   "missing attribute: NAME (or FLAGS=ALL where allowed)"))
		return ERR_PTR(-EINVAL);
	if (!cmk_name_valid(nla_data(attr))) {
		NL_SET_ERR_MSG_ATTR(info->extack, attr,
				    "key name must be 1 to 64 characters of [A-Za-z0-9._:-]");
		return ERR_PTR(-EINVAL);
	}
	slot = cmk_slot_get(nla_data(attr));
	if (slot) {
		mutex_lock(&slot->lock);
		if (!slot->dead)
			return slot;
		mutex_unlock(&slot->lock);
		cmk_slot_put(slot);
	}
	NL_SET_ERR_MSG_ATTR(info->extack, attr,
			    "no dm-cmk device uses this key name");
	return ERR_PTR(-ENODEV);
}

static void cmk_nl_slot_unlock(struct cmk_slot *slot)
{
	mutex_unlock(&slot->lock);
	cmk_slot_put(slot);
}

/*
 * May @slot take a lease of @lease_ms?  0 asks for no lease at all, which
 * the table must allow.  Return: 0 or -ERANGE.
 */
static int cmk_nl_lease_check(struct cmk_slot *slot, u32 lease_ms,
			      struct netlink_ext_ack *extack)
{
	if (lease_ms == 0 && !slot->allow_no_lease) {
		NL_SET_ERR_MSG(extack,
			       "lease 0 (no lease) needs the table option allow_no_lease");
		return -ERANGE;
	}
	if (lease_ms > slot->lease_max_ms) {
		NL_SET_ERR_MSG(extack,
			       "lease is longer than the table option lease_ms allows");
		return -ERANGE;
	}
	return 0;
}

static bool cmk_nl_all(struct genl_info *info)
{
	struct nlattr *attr = info->attrs[DM_CMK_A_FLAGS];

	return attr && (nla_get_u32(attr) & DM_CMK_F_ALL);
}

/*
 * Zero every KEY attribute of the request, and count them: a request
 * must carry one key, and no copy may stay in the buffer, whichever one
 * the attribute table points at.
 */
static unsigned int cmk_nl_scrub_msg(struct genlmsghdr *genlhdr, int len)
{
	unsigned int n = 0;
	struct nlattr *nla;
	int rem;

	nla_for_each_attr(nla, (struct nlattr *)((u8 *)genlhdr + GENL_HDRLEN),
			  len, rem) {
		if (nla_type(nla) != DM_CMK_A_KEY)
			continue;
		memzero_explicit(nla_data(nla), nla_len(nla));
		n++;
	}
	return n;
}

static unsigned int cmk_nl_scrub_keys(struct genl_info *info)
{
	return cmk_nl_scrub_msg(info->genlhdr, genlmsg_len(info->genlhdr));
}

/*
 * A key belongs in KEY_SET only.  Any other request that carries one is
 * refused, and the key zeroed, so no command leaves key bytes behind.
 */
static int cmk_nl_refuse_keys(struct genl_info *info)
{
	if (!cmk_nl_scrub_keys(info))
		return 0;
	NL_SET_ERR_MSG(info->extack, "KEY belongs in KEY_SET only");
	return -EINVAL;
}

static unsigned int cmk_nl_count(struct genl_info *info, int type)
{
	unsigned int n = 0;
	struct nlattr *nla;
	int rem;

	nla_for_each_attr(nla, genlmsg_data(info->genlhdr),
			  genlmsg_len(info->genlhdr), rem)
		n += nla_type(nla) == type;
	return n;
}

static int cmk_nl_key_set(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *key_attr = info->attrs[DM_CMK_A_KEY];
	struct nlattr *gen_attr = info->attrs[DM_CMK_A_GENERATION];
	struct nlattr *epoch_attr = info->attrs[DM_CMK_A_EPOCH];
	struct cmk_slot *slot;
	u8 *key;
	u32 lease_ms;
	int ret;

	ret = cmk_nl_may_change_keys(skb, info);
	if (ret)
		goto out;
	if (CMK_NL_REQUIRE(info, DM_CMK_A_KEY, "missing attribute: KEY") ||
	    CMK_NL_REQUIRE(info, DM_CMK_A_LEASE_MS,
			   "missing attribute: LEASE_MS")) {
		ret = -EINVAL;
		goto out;
	}
	if (cmk_nl_count(info, DM_CMK_A_KEY) != 1) {
		NL_SET_ERR_MSG(info->extack,
			       "KEY given more than once: a request carries one key");
		ret = -EINVAL;
		goto out;
	}
	key = nla_data(key_attr);
	lease_ms = nla_get_u32(info->attrs[DM_CMK_A_LEASE_MS]);

	if (!crypto_memneq(key, key + DM_CMK_KEY_LEN / 2, DM_CMK_KEY_LEN / 2)) {
		NL_SET_ERR_MSG_ATTR(info->extack, key_attr,
				    "the two halves of an XTS key must differ");
		ret = -EINVAL;
		goto out;
	}

	slot = cmk_nl_slot_lock(info);
	if (IS_ERR(slot)) {
		ret = PTR_ERR(slot);
		goto out;
	}
	ret = cmk_nl_lease_check(slot, lease_ms, info->extack);
	if (!ret)
		ret = cmk_slot_install(slot, key,
				       gen_attr ? nla_get_u64(gen_attr) : 0,
				       lease_ms,
				       epoch_attr ? (s64)nla_get_u32(epoch_attr) : -1);
	cmk_nl_slot_unlock(slot);
	switch (ret) {
	case 0:
	case -ERANGE:		/* the lease check said why */
		break;
	case -EBUSY:
		NL_SET_ERR_MSG(info->extack,
			       "the system is suspending or resuming: try again after resume");
		break;
	case -EKEYREJECTED:
		NL_SET_ERR_MSG_ATTR(info->extack, key_attr,
				    "not this device's key: a device is bound to its first key, and no device takes another's");
		break;
	case -ESTALE:
		NL_SET_ERR_MSG_ATTR(info->extack, epoch_attr,
				    "the VM was forked since this key was unsealed: unseal it again");
		break;
	default:
		NL_SET_ERR_MSG_ATTR(info->extack, key_attr,
				    "the crypto API refused the key");
		break;
	}
out:
	/* Wipe the key in the request on every path, every copy. */
	cmk_nl_scrub_keys(info);
	return ret;
}

static int cmk_nl_key_wipe(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *reason_attr = info->attrs[DM_CMK_A_REASON];
	enum dm_cmk_reason reason = DM_CMK_REASON_REQUESTED;
	struct cmk_slot *slot;
	int ret;

	ret = cmk_nl_refuse_keys(info) ?: cmk_nl_may_change_keys(skb, info);
	if (ret)
		return ret;
	if (reason_attr)
		reason = nla_get_u32(reason_attr);
	if (reason != DM_CMK_REASON_REQUESTED &&
	    reason != DM_CMK_REASON_REVOKED &&
	    reason != DM_CMK_REASON_KMS_UNREACHABLE) {
		NL_SET_ERR_MSG_ATTR(info->extack, reason_attr,
				    "this wipe reason is reserved for the kernel");
		return -EINVAL;
	}

	if (cmk_nl_all(info)) {
		cmk_wipe_all(reason);
		return 0;
	}
	slot = cmk_nl_slot_lock(info);
	if (IS_ERR(slot))
		return PTR_ERR(slot);
	cmk_slot_wipe(slot, reason);
	cmk_nl_slot_unlock(slot);
	return 0;
}

static int cmk_nl_lease_renew(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *lease_attr = info->attrs[DM_CMK_A_LEASE_MS];
	struct cmk_slot *slot;
	u32 lease_ms;
	u64 id = 0;
	int ret;

	ret = cmk_nl_refuse_keys(info) ?: cmk_nl_may_change_keys(skb, info);
	if (ret)
		return ret;
	if (CMK_NL_REQUIRE(info, DM_CMK_A_LEASE_MS,
			   "missing attribute: LEASE_MS"))
		return -EINVAL;
	lease_ms = nla_get_u32(lease_attr);

	if (cmk_nl_all(info)) {
		/* Renew every key that is live; skip the others. */
		while ((slot = cmk_slot_get_next(id))) {
			id = slot->id + 1;
			mutex_lock(&slot->lock);
			if (!slot->dead && slot->state == DM_CMK_STATE_ACTIVE &&
			    !cmk_nl_lease_check(slot, lease_ms, NULL))
				cmk_slot_renew(slot, lease_ms);
			cmk_nl_slot_unlock(slot);
		}
		return 0;
	}

	slot = cmk_nl_slot_lock(info);
	if (IS_ERR(slot))
		return PTR_ERR(slot);
	ret = cmk_nl_lease_check(slot, lease_ms, info->extack);
	if (!ret) {
		ret = cmk_slot_renew(slot, lease_ms);
		if (ret)
			NL_SET_ERR_MSG(info->extack,
				       "the device holds no key; install one with KEY_SET");
	}
	cmk_nl_slot_unlock(slot);
	return ret;
}

/*
 * Describe @slot in a message; never includes key material.
 * Context: the slot's lock held.
 */
static int cmk_nl_fill(struct sk_buff *skb, struct cmk_slot *slot, u32 portid,
		       u32 seq, int flags, u8 cmd)
{
	enum dm_cmk_state state = slot->state;
	u32 lease_left;
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &cmk_family, flags, cmd);
	if (!hdr)
		return -EMSGSIZE;
	if (nla_put_string(skb, DM_CMK_A_NAME, slot->name) ||
	    nla_put_string(skb, DM_CMK_A_DEVICE, cmk_slot_dev_name(slot)) ||
	    nla_put_u32(skb, DM_CMK_A_STATE, state) ||
	    nla_put_u64_64bit(skb, DM_CMK_A_GENERATION, slot->generation,
			      DM_CMK_A_PAD) ||
	    nla_put_u32(skb, DM_CMK_A_LEASE_MAX_MS, slot->lease_max_ms) ||
	    nla_put_u32(skb, DM_CMK_A_SECTOR_SIZE, slot->sector_size) ||
	    nla_put_u64_64bit(skb, DM_CMK_A_READS,
			      atomic64_read(&slot->reads), DM_CMK_A_PAD) ||
	    nla_put_u64_64bit(skb, DM_CMK_A_WRITES,
			      atomic64_read(&slot->writes), DM_CMK_A_PAD) ||
	    nla_put_u64_64bit(skb, DM_CMK_A_IO_ERRORS,
			      atomic64_read(&slot->io_errors), DM_CMK_A_PAD) ||
	    nla_put_u64_64bit(skb, DM_CMK_A_REFUSED,
			      atomic64_read(&slot->refused), DM_CMK_A_PAD) ||
	    nla_put_u32(skb, DM_CMK_A_HOLD_MS, slot->hold_ms) ||
	    nla_put_u32(skb, DM_CMK_A_HELD, cmk_hold_count(slot)) ||
	    nla_put_u64_64bit(skb, DM_CMK_A_REJECTED,
			      atomic64_read(&slot->rejected), DM_CMK_A_PAD))
		goto cancel;
	if (slot->bound && nla_put_flag(skb, DM_CMK_A_BOUND))
		goto cancel;
	if (nla_put_u32(skb, DM_CMK_A_EPOCH, cmk_epoch_now()))
		goto cancel;
	if (cmk_slot_lease_left(slot, &lease_left) &&
	    nla_put_u32(skb, DM_CMK_A_LEASE_LEFT_MS, lease_left))
		goto cancel;
	if (state == DM_CMK_STATE_WIPED &&
	    nla_put_u32(skb, DM_CMK_A_REASON, slot->wipe_reason))
		goto cancel;
	genlmsg_end(skb, hdr);
	return 0;

cancel:
	genlmsg_cancel(skb, hdr);
	return -EMSGSIZE;
}

static int cmk_nl_get(struct sk_buff *skb, struct genl_info *info)
{
	struct cmk_slot *slot;
	struct sk_buff *msg;
	int ret;

	ret = cmk_nl_refuse_keys(info);
	if (ret)
		return ret;
	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;

	/* FLAGS=ALL without NAME: what is not per device (EPOCH). */
	if (cmk_nl_all(info) && !info->attrs[DM_CMK_A_NAME]) {
		void *hdr = genlmsg_put(msg, info->snd_portid, info->snd_seq,
					&cmk_family, 0, DM_CMK_CMD_GET);

		if (!hdr || nla_put_u32(msg, DM_CMK_A_EPOCH, cmk_epoch_now())) {
			nlmsg_free(msg);
			return -EMSGSIZE;
		}
		genlmsg_end(msg, hdr);
		return genlmsg_reply(msg, info);
	}

	slot = cmk_nl_slot_lock(info);
	if (IS_ERR(slot)) {
		nlmsg_free(msg);
		return PTR_ERR(slot);
	}
	ret = cmk_nl_fill(msg, slot, info->snd_portid, info->snd_seq, 0,
			  DM_CMK_CMD_GET);
	cmk_nl_slot_unlock(slot);
	if (ret) {
		nlmsg_free(msg);
		return ret;
	}
	return genlmsg_reply(msg, info);
}

/*
 * A dump request carrying a key: zero it (the request stays in memory for
 * the whole dump) and refuse.  The request skb is ours to write.
 */
static int cmk_nl_dump_start(struct netlink_callback *cb)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)cb->nlh;

	if (nlh->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN)
		return 0;
	if (!cmk_nl_scrub_msg(nlmsg_data(nlh),
			      nlmsg_len(nlh) - GENL_HDRLEN))
		return 0;
	NL_SET_ERR_MSG(cb->extack, "KEY belongs in KEY_SET only");
	return -EINVAL;
}

/* cb->args[0] holds the id of the next slot to report. */
static int cmk_nl_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct cmk_slot *slot;
	int ret = 0;

	while (!ret && (slot = cmk_slot_get_next(cb->args[0]))) {
		mutex_lock(&slot->lock);
		if (!slot->dead)
			ret = cmk_nl_fill(skb, slot, NETLINK_CB(cb->skb).portid,
					  cb->nlh->nlmsg_seq, NLM_F_MULTI,
					  DM_CMK_CMD_GET);
		if (!ret)
			cb->args[0] = slot->id + 1;
		cmk_nl_slot_unlock(slot);
	}
	return skb->len;
}

/**
 * cmk_netlink_notify() - tell the "events" group about a key event
 * @slot: the device
 * @event: what happened
 * @reason: why a key was wiped (%DM_CMK_EVENT_KEY_WIPED only)
 *
 * An event that cannot be built is not dropped unawares: every listener
 * gets ENOBUFS, as after an overrun of its socket, and reads the state of
 * every device again (cmk-agent does).
 *
 * Context: process context, the slot's lock held.
 */
void cmk_netlink_notify(struct cmk_slot *slot, enum dm_cmk_event event,
			enum dm_cmk_reason reason)
{
	struct sk_buff *skb;
	void *hdr;

	lockdep_assert_held(&slot->lock);

	/*
	 * NOIO: this runs under the slot's lock, and reclaim must not wait
	 * for writeback that waits for this slot's key (swap on dm-cmk).
	 */
	skb = genlmsg_new(NLMSG_GOODSIZE, GFP_NOIO);
	if (!skb)
		goto lost;
	hdr = genlmsg_put(skb, 0, 0, &cmk_family, 0, DM_CMK_CMD_EVENT);
	if (!hdr)
		goto fail;
	if (nla_put_u32(skb, DM_CMK_A_EVENT, event) ||
	    nla_put_string(skb, DM_CMK_A_NAME, slot->name) ||
	    nla_put_string(skb, DM_CMK_A_DEVICE, cmk_slot_dev_name(slot)) ||
	    nla_put_u32(skb, DM_CMK_A_STATE, slot->state) ||
	    nla_put_u64_64bit(skb, DM_CMK_A_GENERATION, slot->generation,
			      DM_CMK_A_PAD) ||
	    nla_put_u32(skb, DM_CMK_A_EPOCH, cmk_epoch_now()))
		goto fail;
	if (event == DM_CMK_EVENT_KEY_WIPED &&
	    nla_put_u32(skb, DM_CMK_A_REASON, reason))
		goto fail;
	genlmsg_end(skb, hdr);
	genlmsg_multicast(&cmk_family, skb, 0, 0, GFP_NOIO);
	return;

fail:
	nlmsg_free(skb);
lost:
	genl_set_err(&cmk_family, &init_net, 0, 0, -ENOBUFS);
}

static const struct genl_ops cmk_ops[] = {
	/* These three check CAP_SYS_ADMIN themselves, see above. */
	{
		.cmd = DM_CMK_CMD_KEY_SET,
		.doit = cmk_nl_key_set,
	},
	{
		.cmd = DM_CMK_CMD_KEY_WIPE,
		.doit = cmk_nl_key_wipe,
	},
	{
		.cmd = DM_CMK_CMD_LEASE_RENEW,
		.doit = cmk_nl_lease_renew,
	},
	{
		.cmd = DM_CMK_CMD_GET,
		.doit = cmk_nl_get,
		.start = cmk_nl_dump_start,
		.dumpit = cmk_nl_dump,
		.flags = GENL_ADMIN_PERM,
	},
};

static const struct genl_multicast_group cmk_mcgrps[] = {
	{ .name = DM_CMK_MCGRP_EVENTS, .flags = GENL_MCAST_CAP_SYS_ADMIN },
};

static struct genl_family cmk_family __ro_after_init = {
	.name = DM_CMK_GENL_NAME,
	.version = DM_CMK_GENL_VERSION,
	.maxattr = DM_CMK_A_MAX,
	.policy = cmk_policy,
	.netnsok = false,
	/* Slots have their own locks; don't hold genl_mutex through a drain. */
	.parallel_ops = true,
	.module = THIS_MODULE,
	.ops = cmk_ops,
	.n_ops = ARRAY_SIZE(cmk_ops),
	.mcgrps = cmk_mcgrps,
	.n_mcgrps = ARRAY_SIZE(cmk_mcgrps),
};

int __init cmk_netlink_init(void)
{
	return genl_register_family(&cmk_family);
}

void cmk_netlink_exit(void)
{
	genl_unregister_family(&cmk_family);
}
MODULE_ALIAS_GENL_FAMILY(DM_CMK_GENL_NAME);
