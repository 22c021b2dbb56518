/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * dm-cmk: device-mapper target whose keys come from a customer-managed key.
 *
 * This header is the userspace API of the "dm-cmk" generic netlink family.
 * Keys are installed, renewed and wiped only through this family; the
 * device-mapper table names a key by its key_name and never carries key
 * bytes.  KEY_SET, KEY_WIPE, LEASE_RENEW and the "events" group need
 * CAP_SYS_ADMIN in the initial user namespace, like the device-mapper
 * ioctls; GET needs CAP_NET_ADMIN.  The family exists only in the initial
 * network namespace.
 */
#ifndef _UAPI_LINUX_DM_CMK_H
#define _UAPI_LINUX_DM_CMK_H

#include <linux/types.h>

#define DM_CMK_GENL_NAME	"dm-cmk"
#define DM_CMK_GENL_VERSION	1
#define DM_CMK_MCGRP_EVENTS	"events"

/* AES-256-XTS: two 256-bit AES keys, whose halves must differ. */
#define DM_CMK_KEY_LEN		64
/* Longest key_name, without the terminating NUL: [A-Za-z0-9._:-]{1,64}. */
#define DM_CMK_NAME_MAX		64

/**
 * enum dm_cmk_cmd - commands of the dm-cmk generic netlink family
 * @DM_CMK_CMD_UNSPEC: unused
 * @DM_CMK_CMD_KEY_SET: install the key of one device, or renew it.
 *	Requires %DM_CMK_A_NAME, %DM_CMK_A_KEY and %DM_CMK_A_LEASE_MS;
 *	%DM_CMK_A_GENERATION is optional (default 0).  The first key a device
 *	takes binds it: every later KEY_SET must carry the same key, or fails
 *	with EKEYREJECTED, as does a key another device is bound to.  Refused
 *	with EBUSY while the system is suspending, hibernating or resuming,
 *	and with ESTALE if %DM_CMK_A_EPOCH is given and the VM was forked
 *	since.
 * @DM_CMK_CMD_KEY_WIPE: wipe the key of %DM_CMK_A_NAME, or of every device
 *	when %DM_CMK_A_FLAGS has %DM_CMK_F_ALL.  %DM_CMK_A_REASON is optional.
 *	Wiping a device that holds no key succeeds.  The reply is sent after
 *	in-flight cryptography has drained and the key schedule is destroyed.
 * @DM_CMK_CMD_LEASE_RENEW: set the lease of %DM_CMK_A_NAME (or of every
 *	device holding a key, with %DM_CMK_F_ALL) to %DM_CMK_A_LEASE_MS from now.
 * @DM_CMK_CMD_GET: state of one device (doit, with %DM_CMK_A_NAME) or of
 *	all devices (dumpit).  A doit with %DM_CMK_F_ALL and no name answers
 *	with what is not per device: %DM_CMK_A_EPOCH.  Never returns key
 *	bytes.
 * @DM_CMK_CMD_EVENT: notification sent to the "events" multicast group.
 * @__DM_CMK_CMD_MAX: internal
 * @DM_CMK_CMD_MAX: highest command number
 */
enum dm_cmk_cmd {
	DM_CMK_CMD_UNSPEC,
	DM_CMK_CMD_KEY_SET,
	DM_CMK_CMD_KEY_WIPE,
	DM_CMK_CMD_LEASE_RENEW,
	DM_CMK_CMD_GET,
	DM_CMK_CMD_EVENT,

	__DM_CMK_CMD_MAX,
	DM_CMK_CMD_MAX = __DM_CMK_CMD_MAX - 1
};

/**
 * enum dm_cmk_attr - attributes of the dm-cmk family
 * @DM_CMK_A_UNSPEC: unused
 * @DM_CMK_A_PAD: padding for 64-bit attributes
 * @DM_CMK_A_NAME: NUL-terminated key_name, at most %DM_CMK_NAME_MAX chars
 * @DM_CMK_A_KEY: binary, exactly %DM_CMK_KEY_LEN bytes; request only
 * @DM_CMK_A_GENERATION: u64, caller-chosen key generation, echoed by GET
 * @DM_CMK_A_LEASE_MS: u32, lease length in milliseconds; 0 means no lease
 *	and is accepted only by tables with the allow_no_lease option
 * @DM_CMK_A_FLAGS: u32, %DM_CMK_F_* flags
 * @DM_CMK_A_REASON: u32, &enum dm_cmk_reason
 * @DM_CMK_A_STATE: u32, &enum dm_cmk_state
 * @DM_CMK_A_LEASE_LEFT_MS: u32, milliseconds until the lease expires
 *	(absent when the device holds no key or has no lease)
 * @DM_CMK_A_LEASE_MAX_MS: u32, largest lease this device accepts
 * @DM_CMK_A_DEVICE: string, name of the mapped device using this key_name
 * @DM_CMK_A_SECTOR_SIZE: u32, encryption sector size in bytes
 * @DM_CMK_A_READS: u64, bios read and decrypted
 * @DM_CMK_A_WRITES: u64, bios encrypted and written
 * @DM_CMK_A_IO_ERRORS: u64, bios failed by the backing device or crypto
 * @DM_CMK_A_REFUSED: u64, bios refused because the device held no key
 * @DM_CMK_A_EVENT: u32, &enum dm_cmk_event, in %DM_CMK_CMD_EVENT only
 * @DM_CMK_A_HOLD_MS: u32, how long I/O waits for a key before it fails
 *	(the table option hold_ms)
 * @DM_CMK_A_HELD: u32, bios waiting for a key now
 * @DM_CMK_A_REJECTED: u64, KEY_SETs refused because their key differs from
 *	the key the device is bound to
 * @DM_CMK_A_BOUND: flag, present once the device is bound to a key
 * @DM_CMK_A_EPOCH: u32, the number of VM forks the kernel has seen since
 *	dm-cmk was loaded (GET, events); in KEY_SET (optional), the epoch the
 *	key was unsealed in: a key unsealed before a fork is refused
 * @__DM_CMK_A_MAX: internal
 * @DM_CMK_A_MAX: highest attribute number
 */
enum dm_cmk_attr {
	DM_CMK_A_UNSPEC,
	DM_CMK_A_PAD,
	DM_CMK_A_NAME,
	DM_CMK_A_KEY,
	DM_CMK_A_GENERATION,
	DM_CMK_A_LEASE_MS,
	DM_CMK_A_FLAGS,
	DM_CMK_A_REASON,
	DM_CMK_A_STATE,
	DM_CMK_A_LEASE_LEFT_MS,
	DM_CMK_A_LEASE_MAX_MS,
	DM_CMK_A_DEVICE,
	DM_CMK_A_SECTOR_SIZE,
	DM_CMK_A_READS,
	DM_CMK_A_WRITES,
	DM_CMK_A_IO_ERRORS,
	DM_CMK_A_REFUSED,
	DM_CMK_A_EVENT,
	DM_CMK_A_HOLD_MS,
	DM_CMK_A_HELD,
	DM_CMK_A_REJECTED,
	DM_CMK_A_BOUND,
	DM_CMK_A_EPOCH,

	__DM_CMK_A_MAX,
	DM_CMK_A_MAX = __DM_CMK_A_MAX - 1
};

/* DM_CMK_A_FLAGS: apply KEY_WIPE or LEASE_RENEW to every device. */
#define DM_CMK_F_ALL		(1U << 0)

/**
 * enum dm_cmk_state - key state of a device
 * @DM_CMK_STATE_SEALED: created, no key installed yet; I/O waits up to the
 *	table's hold_ms for a key, then fails with EIO
 * @DM_CMK_STATE_ACTIVE: key installed and lease valid; I/O is served
 * @DM_CMK_STATE_WIPED: key wiped (revoked, lease expired, ...).  After a
 *	wipe for %DM_CMK_REASON_REVOKED, %DM_CMK_REASON_REQUESTED or
 *	%DM_CMK_REASON_DESTROY I/O fails with EIO at once; after any other
 *	it waits up to hold_ms for %DM_CMK_CMD_KEY_SET, then fails
 */
enum dm_cmk_state {
	DM_CMK_STATE_SEALED,
	DM_CMK_STATE_ACTIVE,
	DM_CMK_STATE_WIPED,
};

/**
 * enum dm_cmk_reason - why a key was wiped
 * @DM_CMK_REASON_REQUESTED: an operator asked (e.g. cmkctl close)
 * @DM_CMK_REASON_REVOKED: the customer-managed key was revoked
 * @DM_CMK_REASON_LEASE_EXPIRED: the lease ran out without renewal
 * @DM_CMK_REASON_SUSPEND: the system is suspending or hibernating
 * @DM_CMK_REASON_VMFORK: the virtual machine was forked or cloned
 * @DM_CMK_REASON_DESTROY: the last target using the key was destroyed
 * @DM_CMK_REASON_KMS_UNREACHABLE: the KMS stayed unreachable past the
 *	agent's grace period
 * @DM_CMK_REASON_POLICY: a table loaded for the device no longer allows the
 *	key's lease (no lease, where the new table requires one)
 * @__DM_CMK_REASON_MAX: internal
 * @DM_CMK_REASON_MAX: highest reason code
 */
enum dm_cmk_reason {
	DM_CMK_REASON_REQUESTED,
	DM_CMK_REASON_REVOKED,
	DM_CMK_REASON_LEASE_EXPIRED,
	DM_CMK_REASON_SUSPEND,
	DM_CMK_REASON_VMFORK,
	DM_CMK_REASON_DESTROY,
	DM_CMK_REASON_KMS_UNREACHABLE,
	DM_CMK_REASON_POLICY,

	__DM_CMK_REASON_MAX,
	DM_CMK_REASON_MAX = __DM_CMK_REASON_MAX - 1
};

/**
 * enum dm_cmk_event - what a %DM_CMK_CMD_EVENT reports
 * @DM_CMK_EVENT_KEY_INSTALLED: a key was installed (%DM_CMK_A_GENERATION)
 * @DM_CMK_EVENT_KEY_WIPED: a key was wiped (%DM_CMK_A_REASON)
 * @DM_CMK_EVENT_IO_REFUSED: I/O was refused because the device holds no
 *	key; sent once per sealed or wiped period
 * @DM_CMK_EVENT_KEY_REJECTED: a KEY_SET carried a key other than the one
 *	the device is bound to, and was refused (%DM_CMK_A_REJECTED counts)
 */
enum dm_cmk_event {
	DM_CMK_EVENT_KEY_INSTALLED,
	DM_CMK_EVENT_KEY_WIPED,
	DM_CMK_EVENT_IO_REFUSED,
	DM_CMK_EVENT_KEY_REJECTED,
};

#endif /* _UAPI_LINUX_DM_CMK_H */
