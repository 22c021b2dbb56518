// SPDX-License-Identifier: GPL-2.0
/*
 * dm-cmk: a device-mapper target that encrypts with AES-XTS under a key
 * that only the dm-cmk netlink family can install, and wipes it on demand
 * or when its lease runs out.
 *
 * Table line:
 *   <start> <len> cmk aes-xts-plain64 <key_name> <iv_offset> <dev_path>
 *       <offset> [<#opt_params> <opt_params>...]
 *
 * The table names the key; it never carries key bytes.  Ciphertext is
 * identical to dm-crypt's aes-xts-plain64 with the same options.
 */

#include <linux/blkdev.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <crypto/skcipher.h>

#include "dm-cmk.h"

#define CMK_MIN_IOS 64
#define CMK_USAGE "Not enough arguments: expected <cipher> <key_name> <iv_offset> <dev_path> <offset>"

static int cmk_parse_options(struct dm_target *ti, struct cmk_target *ct,
			     struct dm_arg_set *as)
{
	static const struct dm_arg _args[] = {
		{0, 9, "Invalid number of optional parameters"},
	};
	unsigned int count, value;
	const char *opt;
	int ret;

	if (!as->argc)
		return 0;
	ret = dm_read_arg_group(_args, as, &count, &ti->error);
	if (ret)
		return ret;

	while (count--) {
		opt = dm_shift_arg(as);
		if (!opt) {
			ti->error = "Missing optional parameter";
			return -EINVAL;
		}
		if (!strcasecmp(opt, "iv_large_sectors")) {
			set_bit(CMK_IV_LARGE_SECTORS, &ct->flags);
		} else if (!strcasecmp(opt, "allow_discards")) {
			set_bit(CMK_ALLOW_DISCARDS, &ct->flags);
		} else if (!strcasecmp(opt, "no_read_workqueue")) {
			set_bit(CMK_NO_READ_WORKQUEUE, &ct->flags);
		} else if (!strcasecmp(opt, "no_write_workqueue")) {
			set_bit(CMK_NO_WRITE_WORKQUEUE, &ct->flags);
		} else if (!strcasecmp(opt, "force_workqueue")) {
			set_bit(CMK_FORCE_WORKQUEUE, &ct->flags);
		} else if (!strcasecmp(opt, "allow_no_lease")) {
			set_bit(CMK_ALLOW_NO_LEASE, &ct->flags);
		} else if (str_has_prefix(opt, "sector_size:")) {
			if (kstrtouint(opt + strlen("sector_size:"), 10, &value) ||
			    (value != 512 && value != 4096)) {
				ti->error = "Invalid sector_size: expected 512 or 4096";
				return -EINVAL;
			}
			ct->sector_size = value;
		} else if (str_has_prefix(opt, "lease_ms:")) {
			if (kstrtouint(opt + strlen("lease_ms:"), 10, &value) ||
			    value == 0 || value > CMK_LEASE_MAX_MS_LIMIT) {
				ti->error = "Invalid lease_ms: expected 1 to 86400000";
				return -EINVAL;
			}
			ct->lease_max_ms = value;
		} else if (str_has_prefix(opt, "hold_ms:")) {
			if (kstrtouint(opt + strlen("hold_ms:"), 10, &value) ||
			    value > CMK_HOLD_MS_LIMIT) {
				ti->error = "Invalid hold_ms: expected 0 to 600000";
				return -EINVAL;
			}
			ct->hold_ms = value;
		} else {
			ti->error = "Unknown optional parameter";
			return -EINVAL;
		}
	}
	if (test_bit(CMK_FORCE_WORKQUEUE, &ct->flags) &&
	    (test_bit(CMK_NO_READ_WORKQUEUE, &ct->flags) ||
	     test_bit(CMK_NO_WRITE_WORKQUEUE, &ct->flags))) {
		ti->error = "force_workqueue conflicts with no_*_workqueue";
		return -EINVAL;
	}
	return 0;
}

static void cmk_dtr(struct dm_target *ti)
{
	struct cmk_target *ct = ti->private;

	if (!ct)
		return;
	if (ct->wq)
		destroy_workqueue(ct->wq);
	if (ct->cont_wq)
		destroy_workqueue(ct->cont_wq);
	cmk_slot_detach(ct);
	bioset_exit(&ct->bs);
	cmk_bounce_pool_exit(ct);
	mutex_destroy(&ct->bounce_lock);
	if (ct->dev)
		dm_put_device(ti, ct->dev);
	free_percpu(ct->cpu_inflight);
	kfree(ct);
	ti->private = NULL;
}

/*
 * Construct a target:
 * <cipher> <key_name> <iv_offset> <dev_path> <offset> [<#opts> <opts>...]
 */
static int cmk_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	unsigned long long value;
	struct cmk_target *ct;
	const char *name;
	char dummy;
	int ret;

	if (argc < 5) {
		ti->error = CMK_USAGE;
		return -EINVAL;
	}

	ct = kzalloc(sizeof(*ct), GFP_KERNEL);
	if (!ct) {
		ti->error = "Cannot allocate target context";
		return -ENOMEM;
	}
	ti->private = ct;
	ct->ti = ti;
	ct->sector_size = SECTOR_SIZE;
	ct->lease_max_ms = CMK_LEASE_MAX_MS_DEFAULT;
	ct->hold_ms = CMK_HOLD_MS_DEFAULT;
	mutex_init(&ct->bounce_lock);

	ret = -EINVAL;
	if (strcmp(dm_shift_arg(&as), CMK_CIPHER)) {
		ti->error = "Invalid cipher: only aes-xts-plain64 is supported";
		goto bad;
	}

	name = dm_shift_arg(&as);
	if (!cmk_name_valid(name)) {
		ti->error = "Invalid key name: expected 1 to 64 characters of [A-Za-z0-9._:-]";
		goto bad;
	}

	if (sscanf(dm_shift_arg(&as), "%llu%c", &value, &dummy) != 1) {
		ti->error = "Invalid iv_offset: expected a sector number";
		goto bad;
	}
	ct->iv_offset = value;

	ret = dm_get_device(ti, dm_shift_arg(&as), dm_table_get_mode(ti->table),
			    &ct->dev);
	if (ret) {
		ti->error = "Backing device lookup failed";
		goto bad;
	}

	ret = -EINVAL;
	if (sscanf(dm_shift_arg(&as), "%llu%c", &value, &dummy) != 1 ||
	    value != (sector_t)value) {
		ti->error = "Invalid device offset: expected a sector number";
		goto bad;
	}
	ct->start = value;

	ret = cmk_parse_options(ti, ct, &as);
	if (ret)
		goto bad;
	if (as.argc) {
		ti->error = "Too many arguments";
		ret = -EINVAL;
		goto bad;
	}

	ct->sector_shift = __ffs(ct->sector_size) - SECTOR_SHIFT;
	ret = -EINVAL;
	if (ti->len & ((ct->sector_size >> SECTOR_SHIFT) - 1)) {
		ti->error = "Device length is not a multiple of sector_size";
		goto bad;
	}
	if (ct->iv_offset & ((ct->sector_size >> SECTOR_SHIFT) - 1)) {
		ti->error = "Invalid iv_offset: not a multiple of sector_size";
		goto bad;
	}

	ret = cmk_bounce_pool_init(ct);
	if (ret) {
		ti->error = "Cannot allocate bounce page pool";
		goto bad;
	}
	ret = bioset_init(&ct->bs, CMK_MIN_IOS, 0, BIOSET_NEED_BVECS);
	if (ret) {
		ti->error = "Cannot allocate bio set";
		goto bad;
	}

	ret = cmk_slot_attach(ct, name, dm_table_get_md(ti->table),
			      &ti->error);
	if (ret)
		goto bad;

	ct->wq = alloc_workqueue("kcmkd/%s", WQ_CPU_INTENSIVE | WQ_MEM_RECLAIM |
				 WQ_UNBOUND, num_online_cpus(), ct->slot->name);
	ct->cont_wq = alloc_workqueue("kcmkd_cont/%s", WQ_CPU_INTENSIVE |
				      WQ_MEM_RECLAIM | WQ_UNBOUND | WQ_HIGHPRI,
				      0, ct->slot->name);
	if (!ct->wq || !ct->cont_wq) {
		ti->error = "Cannot allocate crypto workqueue";
		ret = -ENOMEM;
		goto bad;
	}
	ct->cpu_inflight = alloc_percpu(atomic_t);
	if (!ct->cpu_inflight) {
		ti->error = "Cannot allocate in-flight counters";
		ret = -ENOMEM;
		goto bad;
	}

	ti->per_io_data_size = cmk_io_data_size(ct, ct->slot->reqsize);
	ti->num_flush_bios = 1;
	/* Swap on dm-cmk: bound the swap bios in flight, as dm-crypt does. */
	ti->limit_swap_bios = true;
	if (test_bit(CMK_ALLOW_DISCARDS, &ct->flags))
		ti->num_discard_bios = 1;
	return 0;

bad:
	cmk_dtr(ti);
	return ret;
}

static void cmk_status(struct dm_target *ti, status_type_t type,
		       unsigned int status_flags, char *result,
		       unsigned int maxlen)
{
	struct cmk_target *ct = ti->private;
	struct cmk_slot *slot = ct->slot;
	enum dm_cmk_state state = READ_ONCE(slot->state);
	unsigned int sz = 0;
	unsigned int nopts;
	u32 lease_left;

	switch (type) {
	case STATUSTYPE_INFO:
		DMEMIT("%s %llu ", cmk_state_name(state), slot->generation);
		if (cmk_slot_lease_left(slot, &lease_left))
			DMEMIT("%u", lease_left);
		else
			DMEMIT("-");
		DMEMIT(" %lld %lld %lld %lld %u %lld",
		       (long long)atomic64_read(&slot->reads),
		       (long long)atomic64_read(&slot->writes),
		       (long long)atomic64_read(&slot->io_errors),
		       (long long)atomic64_read(&slot->refused),
		       cmk_hold_count(slot),
		       (long long)atomic64_read(&slot->rejected));
		break;

	case STATUSTYPE_TABLE:
		DMEMIT("%s %s %llu %s %llu", CMK_CIPHER, slot->name,
		       ct->iv_offset, ct->dev->name,
		       (unsigned long long)ct->start);
		nopts = test_bit(CMK_IV_LARGE_SECTORS, &ct->flags) +
			test_bit(CMK_ALLOW_DISCARDS, &ct->flags) +
			test_bit(CMK_NO_READ_WORKQUEUE, &ct->flags) +
			test_bit(CMK_NO_WRITE_WORKQUEUE, &ct->flags) +
			test_bit(CMK_FORCE_WORKQUEUE, &ct->flags) +
			test_bit(CMK_ALLOW_NO_LEASE, &ct->flags) +
			(ct->sector_size != SECTOR_SIZE) +
			(ct->lease_max_ms != CMK_LEASE_MAX_MS_DEFAULT) +
			(ct->hold_ms != CMK_HOLD_MS_DEFAULT);
		if (!nopts)
			break;
		DMEMIT(" %u", nopts);
		if (ct->sector_size != SECTOR_SIZE)
			DMEMIT(" sector_size:%u", ct->sector_size);
		if (test_bit(CMK_IV_LARGE_SECTORS, &ct->flags))
			DMEMIT(" iv_large_sectors");
		if (test_bit(CMK_ALLOW_DISCARDS, &ct->flags))
			DMEMIT(" allow_discards");
		if (test_bit(CMK_NO_READ_WORKQUEUE, &ct->flags))
			DMEMIT(" no_read_workqueue");
		if (test_bit(CMK_NO_WRITE_WORKQUEUE, &ct->flags))
			DMEMIT(" no_write_workqueue");
		if (test_bit(CMK_FORCE_WORKQUEUE, &ct->flags))
			DMEMIT(" force_workqueue");
		if (ct->lease_max_ms != CMK_LEASE_MAX_MS_DEFAULT)
			DMEMIT(" lease_ms:%u", ct->lease_max_ms);
		if (ct->hold_ms != CMK_HOLD_MS_DEFAULT)
			DMEMIT(" hold_ms:%u", ct->hold_ms);
		if (test_bit(CMK_ALLOW_NO_LEASE, &ct->flags))
			DMEMIT(" allow_no_lease");
		break;

	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",cipher=%s,key_name=%s,iv_offset=%llu,sector_size=%u",
		       CMK_CIPHER, slot->name, ct->iv_offset, ct->sector_size);
		DMEMIT(",iv_large_sectors=%c,allow_discards=%c",
		       test_bit(CMK_IV_LARGE_SECTORS, &ct->flags) ? 'y' : 'n',
		       test_bit(CMK_ALLOW_DISCARDS, &ct->flags) ? 'y' : 'n');
		DMEMIT(",lease_ms=%u,allow_no_lease=%c,hold_ms=%u,state=%s;",
		       ct->lease_max_ms,
		       test_bit(CMK_ALLOW_NO_LEASE, &ct->flags) ? 'y' : 'n',
		       ct->hold_ms, cmk_state_name(state));
		break;
	}
}

/* Suspend, resume: what happens to bios waiting for a key (hold.c). */
static void cmk_presuspend(struct dm_target *ti)
{
	struct cmk_target *ct = ti->private;

	cmk_hold_suspend(ct->slot, dm_noflush_suspending(ti));
}

static void cmk_resume(struct dm_target *ti)
{
	struct cmk_target *ct = ti->private;

	cmk_hold_resume(ct->slot);
}

static int cmk_iterate_devices(struct dm_target *ti,
			       iterate_devices_callout_fn fn, void *data)
{
	struct cmk_target *ct = ti->private;

	return fn(ti, ct->dev, ct->start, ti->len, data);
}

static void cmk_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct cmk_target *ct = ti->private;

	/* Bounce pages are not contiguous: one page per segment. */
	limits->max_segment_size = PAGE_SIZE;
	limits->logical_block_size = max_t(unsigned int,
					   limits->logical_block_size,
					   ct->sector_size);
	limits->physical_block_size = max_t(unsigned int,
					    limits->physical_block_size,
					    ct->sector_size);
	limits->io_min = max_t(unsigned int, limits->io_min, ct->sector_size);
	/* Each encryption sector must lie within one page segment. */
	limits->dma_alignment = limits->logical_block_size - 1;
}

static struct target_type cmk_target = {
	.name = "cmk",
	.version = {1, 4, 0},
	.module = THIS_MODULE,
	.ctr = cmk_ctr,
	.dtr = cmk_dtr,
	.map = cmk_map,
	.status = cmk_status,
	.presuspend = cmk_presuspend,
	.presuspend_undo = cmk_resume,
	.resume = cmk_resume,
	.iterate_devices = cmk_iterate_devices,
	.io_hints = cmk_io_hints,
};

static int __init dm_cmk_init(void)
{
	int ret;

	cmk_io_init();
	ret = cmk_key_init();
	if (ret)
		return ret;
	ret = cmk_netlink_init();
	if (ret)
		goto err_key;
	ret = dm_register_target(&cmk_target);
	if (ret)
		goto err_netlink;
	return 0;

err_netlink:
	cmk_netlink_exit();
err_key:
	cmk_key_exit();
	return ret;
}

static void __exit dm_cmk_exit(void)
{
	dm_unregister_target(&cmk_target);
	cmk_netlink_exit();
	cmk_key_exit();
	cmk_io_exit();
}

module_init(dm_cmk_init);
module_exit(dm_cmk_exit);

MODULE_DESCRIPTION(DM_NAME " target encrypting with customer-managed keys");
MODULE_AUTHOR("dm-cmk developers");
MODULE_LICENSE("GPL");
