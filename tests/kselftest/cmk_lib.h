/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cmk_lib.h - helpers shared by the dm-cmk kselftests.
 *
 * Every function returns 0 (or a count) on success and a negative errno on
 * failure, unless documented otherwise; none of them prints key bytes.
 * The tests run as root inside a throw-away QEMU guest with /dev/ram0..3
 * (64 MiB each), dmsetup, dm-crypt and the dm-cmk module.
 */
#ifndef CMK_LIB_H
#define CMK_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/dm-cmk.h>

/* Every mapped device a test creates is named with this prefix. */
#define CMK_DM_PREFIX		"cmkt-"
#define CMK_RAM(n)		"/dev/ram" #n
#define CMK_RAM_BYTES		(64ULL << 20)
#define CMK_SECTOR		512ULL
#define CMK_ALIGN		4096

/* ------------------------------------------------------------------ */
/* processes                                                          */

/*
 * Run argv (NULL-terminated list after @arg0) with stdout and stderr
 * captured into @out (may be NULL).  Returns the exit status (0..255),
 * 128+signal for a killed child, or -errno if it could not be started.
 */
int cmk_run(char *out, size_t outsz, const char *arg0, ...)
	__attribute__((sentinel));

/* ------------------------------------------------------------------ */
/* device-mapper via dmsetup                                          */

/* The options of a cmk (or crypt) table line, beyond the device. */
struct cmk_table {
	uint64_t start;		/* first sector of the mapped device */
	uint64_t len;		/* length in 512-byte sectors */
	const char *cipher;	/* NULL: "aes-xts-plain64" */
	const char *key_name;	/* cmk only */
	uint64_t iv_offset;
	const char *dev;	/* backing device path */
	uint64_t offset;	/* start on the backing device, sectors */
	const char *opts;	/* space-separated optional args, or NULL */
};

/* Format a "cmk" table line; the option count is derived from opts. */
void cmk_table_cmk(char *buf, size_t sz, const struct cmk_table *t);
/* Format the equivalent dm-crypt table line with @key (64 bytes). */
void cmk_table_crypt(char *buf, size_t sz, const struct cmk_table *t,
		     const uint8_t *key);

/* dmsetup create --noudevsync + mknodes.  Returns dmsetup's status. */
int cmk_dm_create(const char *name, const char *table, char *out,
		  size_t outsz);
/* Remove a mapped device (resumes it first if needed).  0 or status. */
int cmk_dm_remove(const char *name);
/* Remove every mapped device whose name starts with CMK_DM_PREFIX. */
void cmk_dm_cleanup(void);
int cmk_dm_suspend(const char *name);
int cmk_dm_resume(const char *name);
int cmk_dm_reload(const char *name, const char *table, char *out,
		  size_t outsz);
/* "dmsetup table|status [--showkeys] name" into @out; returns status. */
int cmk_dm_table(const char *name, bool showkeys, char *out, size_t outsz);
int cmk_dm_status(const char *name, char *out, size_t outsz);
/* "/dev/mapper/<name>" */
void cmk_dm_path(char *buf, size_t sz, const char *name);
/* true if a mapped device of that name exists */
bool cmk_dm_exists(const char *name);
/* "dm-N" kernel name of a mapped device, for /sys/block lookups */
int cmk_dm_kname(const char *name, char *buf, size_t sz);

/* Parsed "dmsetup status" line of a cmk target (see the contract). */
struct cmk_status {
	uint64_t start, len;
	char state[16];		/* sealed | active | wiped */
	uint64_t generation;
	bool has_lease;		/* false when the field is "-" */
	uint64_t lease_left_ms;
	uint64_t reads, writes, io_errors, refused;
	uint64_t held;		/* bios waiting for a key */
	uint64_t rejected;	/* KEY_SETs refused: not the bound key */
};

int cmk_status_parse(const char *line, struct cmk_status *st);
/* dmsetup status + parse */
int cmk_dm_status_get(const char *name, struct cmk_status *st);

/* ------------------------------------------------------------------ */
/* kernel log                                                         */

/*
 * Write a unique marker line to /dev/kmsg and return it in @mark, so that
 * later look-ups only see what was logged after it.
 */
int cmk_klog_mark(char *mark, size_t sz);
/* The kernel log after @mark (malloc'd, caller frees), or NULL. */
char *cmk_klog_since(const char *mark);
/*
 * The message of the last "device-mapper: table: ...: cmk: <message>" line
 * logged after @mark, i.e. the target's ti->error.  -ENOENT if none.
 */
int cmk_klog_cmk_error(const char *mark, char *msg, size_t sz);
/* Case-insensitive: does @s contain one of the '|'-separated words? */
bool cmk_contains_any(const char *s, const char *alternatives);

/* ------------------------------------------------------------------ */
/* block I/O                                                          */

void *cmk_alloc(size_t len);			/* CMK_ALIGN-aligned, zeroed */
int cmk_open(const char *path, bool direct);	/* fd or -errno */
/* Whole-buffer pread/pwrite; -errno, or -ENODATA on a short transfer. */
int cmk_pread(int fd, void *buf, size_t len, off_t off);
int cmk_pwrite(int fd, const void *buf, size_t len, off_t off);
/*
 * Open/transfer/close.  Direct I/O goes through an aligned bounce buffer,
 * so @buf need not be aligned.  Buffered writes are followed by fsync and
 * the error of either is returned.
 */
int cmk_dev_read(const char *path, void *buf, size_t len, off_t off,
		 bool direct);
int cmk_dev_write(const char *path, const void *buf, size_t len, off_t off,
		  bool direct);
/* fsync + drop the page cache of a block device (BLKFLSBUF). */
int cmk_dev_flushbuf(const char *path);
int cmk_dev_size(const char *path, uint64_t *bytes);

/* Deterministic pseudo-random bytes for @seed (splitmix64 stream). */
void cmk_fill(void *buf, size_t len, uint64_t seed);
/* Deterministic XTS key: 64 bytes whose two halves differ. */
void cmk_key_make(uint8_t key[DM_CMK_KEY_LEN], uint64_t seed);
/* Lower- or upper-case hex of @len bytes, NUL-terminated. */
void cmk_hex(char *out, const uint8_t *in, size_t len, bool upper);
/* Does @hay contain the key raw, or in lower/upper hex, or either half? */
bool cmk_contains_key(const void *hay, size_t haylen, const uint8_t *key);

/* ------------------------------------------------------------------ */
/* generic netlink client for the dm-cmk family (libmnl)              */

struct mnl_socket;

struct cmk_nl {
	struct mnl_socket *sock;
	uint16_t family;
	uint32_t events_group;
	uint32_t portid;
	uint32_t seq;
	/* NLMSGERR_ATTR_MISS_TYPE of the last request's error, or 0 */
	uint32_t miss_type;
	/* received but not yet consumed messages (events socket) */
	char *rbuf;
	size_t rlen, roff;
};

/* One GET reply, dump entry or event, decoded; raw keeps the message. */
struct cmk_info {
	uint8_t cmd;
	char name[DM_CMK_NAME_MAX + 2];
	char device[128];
	bool has_state, has_generation, has_lease_left, has_lease_max;
	bool has_sector_size, has_event, has_reason, has_counters;
	bool has_hold, bound, has_epoch;
	uint32_t state, lease_left_ms, lease_max_ms, sector_size;
	uint32_t event, reason, hold_ms, held, epoch;
	uint64_t generation, reads, writes, io_errors, refused, rejected;
	unsigned char raw[2048];
	size_t raw_len;
};

/*
 * A request.  Attributes are only sent when set: name != NULL, key != NULL
 * (with key_len bytes, any length), has_* flags.  extra_type != 0 adds a
 * u32 attribute of that (unknown) type.
 */
struct cmk_req {
	uint8_t cmd;
	bool dump;
	const char *name;
	const void *key;
	size_t key_len;
	const void *key2;	/* a second KEY attribute (DM_CMK_KEY_LEN) */
	bool has_epoch;
	uint32_t epoch;
	bool has_lease;
	uint32_t lease_ms;
	bool has_generation;
	uint64_t generation;
	bool has_flags;
	uint32_t flags;
	bool has_reason;
	uint32_t reason;
	uint16_t extra_type;
};

typedef int (*cmk_info_cb)(const struct cmk_info *info, void *arg);

/* Open a socket and resolve the family (and its "events" group). */
int cmk_nl_open(struct cmk_nl *nl);
void cmk_nl_close(struct cmk_nl *nl);
/*
 * Send @req with NLM_F_ACK (and NLM_F_DUMP if req->dump), call @cb for
 * every reply message, wait for the ack / NLMSG_DONE.  Returns 0 or the
 * kernel's -errno; the extack message (if any) goes to @ext.
 */
int cmk_nl_request(struct cmk_nl *nl, const struct cmk_req *req,
		   cmk_info_cb cb, void *arg, char *ext, size_t extsz);

int cmk_key_set(struct cmk_nl *nl, const char *name, const uint8_t *key,
		uint32_t lease_ms, uint64_t generation, char *ext,
		size_t extsz);
int cmk_key_wipe(struct cmk_nl *nl, const char *name, uint32_t reason,
		 char *ext, size_t extsz);
int cmk_key_wipe_all(struct cmk_nl *nl, uint32_t reason, char *ext,
		     size_t extsz);
int cmk_lease_renew(struct cmk_nl *nl, const char *name, uint32_t lease_ms,
		    char *ext, size_t extsz);
int cmk_lease_renew_all(struct cmk_nl *nl, uint32_t lease_ms, char *ext,
			size_t extsz);
int cmk_get(struct cmk_nl *nl, const char *name, struct cmk_info *out,
	    char *ext, size_t extsz);
int cmk_dump(struct cmk_nl *nl, cmk_info_cb cb, void *arg, char *ext,
	     size_t extsz);

/* Join the "events" multicast group. */
int cmk_nl_subscribe(struct cmk_nl *nl);
/*
 * Wait up to @timeout_ms for the next event for key_name @name (any name
 * if NULL) with event type @event (any if < 0).  Other events are skipped.
 * Returns 0, -ETIMEDOUT or -errno.
 */
int cmk_nl_wait_event(struct cmk_nl *nl, const char *name, int event,
		      int timeout_ms, struct cmk_info *out);

/* ------------------------------------------------------------------ */
/* privileges, modules, null_blk                                      */

/* Remove capabilities from the effective, permitted and inheritable sets. */
int cmk_drop_caps(const int *caps, int ncaps);
bool cmk_module_loaded(const char *modname);
/* delete_module(name, O_NONBLOCK) */
int cmk_module_unload(const char *modname);
/* "modprobe <name>" */
int cmk_modprobe(const char *name);
/* Load dm-cmk if a previous test left it unloaded. */
int cmk_ensure_module(void);

/*
 * Create a memory-backed null_blk device through configfs (loading
 * null_blk and mounting configfs if needed) named @cfgname; the block
 * device path goes to @path.  cache_mb > 0 gives it a volatile write cache.
 */
int cmk_nullb_create(const char *cfgname, unsigned int size_mb, bool discard,
		     unsigned int cache_mb, char *path, size_t pathsz);
/*
 * The same, without discard or cache, completing each bio the way
 * @irqmode says (null_blk's irqmode: 0 in the submitter's context, 1 in
 * softirq context, 2 from a timer in hard-interrupt context,
 * @completion_nsec after it was queued).
 */
int cmk_nullb_create_irq(const char *cfgname, unsigned int size_mb,
			 int irqmode, unsigned long completion_nsec,
			 char *path, size_t pathsz);
int cmk_nullb_destroy(const char *cfgname);

/* ------------------------------------------------------------------ */
/* time                                                               */

uint64_t cmk_now_ms(void);		/* CLOCK_MONOTONIC */
void cmk_sleep_ms(unsigned int ms);

#endif /* CMK_LIB_H */
