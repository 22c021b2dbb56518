/* SPDX-License-Identifier: GPL-2.0 */
/*
 * genl.h - client of the kernel's "dm-cmk" generic netlink family.
 *
 * The only way the agent hands keys to the kernel.  Requests that carry a
 * key are built in locked secret memory and wiped after sending.  Kernel
 * errors come back as a negative errno with the kernel's extended-ACK
 * message in the struct cmk_err.
 */
#ifndef CMK_GENL_H
#define CMK_GENL_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/dm-cmk.h>

#include "core/err.h"
#include "core/secret.h"

struct cmk_genl;

/**
 * struct cmk_dev_info - one device as the kernel reports it (GET)
 * @name: key_name
 * @device: name of the mapped device
 * @state: &enum dm_cmk_state
 * @generation: generation of the installed key
 * @has_lease: @lease_left_ms is meaningful
 * @lease_left_ms: time until the kernel wipes the key by itself
 * @lease_max_ms: longest lease the table accepts
 * @sector_size: encryption sector size
 * @reason: why the key was wiped (state WIPED only), &enum dm_cmk_reason
 * @reads: bios read
 * @writes: bios written
 * @io_errors: bios failed
 * @refused: bios refused for lack of a key
 * @has_epoch: @epoch is meaningful (a kernel that counts VM forks)
 * @epoch: VM forks the kernel has seen since dm-cmk was loaded
 * @bound: the device is bound to the first key it took: the kernel refuses
 *	any other (false also from a dm-cmk module older than key binding)
 */
struct cmk_dev_info {
	char name[DM_CMK_NAME_MAX + 1];
	char device[128];
	uint32_t state;
	uint64_t generation;
	bool has_lease;
	uint32_t lease_left_ms;
	uint32_t lease_max_ms;
	uint32_t sector_size;
	uint32_t reason;
	uint64_t reads;
	uint64_t writes;
	uint64_t io_errors;
	uint64_t refused;
	bool has_epoch;
	uint32_t epoch;
	bool bound;
};

typedef int (*cmk_genl_dump_cb)(const struct cmk_dev_info *info, void *arg);

/**
 * struct cmk_event - one message of the "events" multicast group
 * @event: &enum dm_cmk_event
 * @info: the device it is about: name, device, state, generation, and for
 *	%DM_CMK_EVENT_KEY_WIPED the reason
 */
struct cmk_event {
	uint32_t event;
	struct cmk_dev_info info;
};

typedef void (*cmk_genl_event_cb)(const struct cmk_event *ev, void *arg);

/* cmk_genl_open() - connect and resolve the family (loads no module). */
int cmk_genl_open(struct cmk_genl **out, struct cmk_err *e);
void cmk_genl_close(struct cmk_genl **g);

/*
 * cmk_genl_key_set() - install @key (DM_CMK_KEY_LEN bytes) for @name.  With
 * an epoch set (cmk_genl_set_epoch()) the request carries it, and a kernel
 * that has seen a VM fork since refuses it with ESTALE.
 */
int cmk_genl_key_set(struct cmk_genl *g, const char *name,
		     const struct cmk_secret *key, uint64_t generation,
		     uint32_t lease_ms, struct cmk_err *e);

/* cmk_genl_key_wipe() - wipe the key of @name, or every key if NULL. */
int cmk_genl_key_wipe(struct cmk_genl *g, const char *name,
		      enum dm_cmk_reason reason, struct cmk_err *e);

/* cmk_genl_lease_renew() - renew @name's lease, or every lease if NULL. */
int cmk_genl_lease_renew(struct cmk_genl *g, const char *name,
			 uint32_t lease_ms, struct cmk_err *e);

/* cmk_genl_get() - state of @name; -ENODEV if no device uses it. */
int cmk_genl_get(struct cmk_genl *g, const char *name,
		 struct cmk_dev_info *info, struct cmk_err *e);

/*
 * cmk_genl_set_epoch() - the VM-fork epoch the keys @g installs from now on
 * were unsealed in (cmk_genl_epoch() read before the unseal began), or -1
 * to send none.
 */
void cmk_genl_set_epoch(struct cmk_genl *g, int64_t epoch);

/*
 * cmk_genl_epoch() - the kernel's VM-fork epoch now (GET with FLAGS=ALL: no
 * device needed); -ENOMSG when the module answers without one; -EINVAL
 * when it refuses a GET without NAME (an older module, which may still
 * report EPOCH per device: cmk_genl_dump()); other errors: the read failed.
 */
int cmk_genl_epoch(struct cmk_genl *g, uint32_t *epoch, struct cmk_err *e);

/* cmk_genl_dump() - call @cb for every dm-cmk device. */
int cmk_genl_dump(struct cmk_genl *g, cmk_genl_dump_cb cb, void *arg,
		  struct cmk_err *e);

/*
 * cmk_genl_events_open() - a socket of its own subscribed to the family's
 * "events" group (CAP_SYS_ADMIN), non-blocking, for poll().  Only
 * cmk_genl_events_read(), cmk_genl_fd() and cmk_genl_close() apply to it.
 */
int cmk_genl_events_open(struct cmk_genl **out, struct cmk_err *e);

/* cmk_genl_fd() - the socket's file descriptor. */
int cmk_genl_fd(const struct cmk_genl *g);

/*
 * cmk_genl_events_read() - call @cb for every event queued on @g, without
 * waiting.  -ENOBUFS: the socket overran and events were lost; read the
 * devices' state with GET instead.
 */
int cmk_genl_events_read(struct cmk_genl *g, cmk_genl_event_cb cb, void *arg,
			 struct cmk_err *e);

const char *cmk_state_str(uint32_t state);
const char *cmk_wipe_reason_str(uint32_t reason);

#endif /* CMK_GENL_H */
