/* SPDX-License-Identifier: GPL-2.0 */
/*
 * config.h - /etc/cmk/agent.conf.
 *
 * INI-like, one setting per line, '#' or ';' starts a comment line:
 *
 *   [agent]
 *   kek_envelope = /etc/cmk/kek.json
 *   check_interval_s = 30          # or check_interval_ms = 250 (one of them)
 *   jitter_pct = 10
 *   lease_ms = 60000
 *   check_timeout_ms = 12000       # default: what the lease leaves
 *   grace_s = 300
 *   throttle_grace_s = 900         # more, while the KMS only throttles
 *   policy = wipe                  # wipe | poweroff | none
 *   audit_log = /var/log/cmk/audit.log
 *   syslog = yes
 *   boot_deadline_s = 60
 *   metrics_path = /var/lib/prometheus/node-exporter/cmk.prom
 *   state_dir = /run/cmk           # agent.json, revoked/ and opened/<device>
 *   pin_dir = /var/lib/cmk/pins    # persistent devices' first-use pins
 *   hint_sqs_queue_url = https://sqs.eu-west-1.amazonaws.com/1234/cmk-vm-1
 *   hint_sqs_region = eu-west-1    # revocation hints (daemon/hint.h)
 *   key_socket = /run/cmk/keys.sock  # data keys for sealed objects
 *                                  # (default: <state_dir>/keys.sock)
 *   key_socket_allow = user:postgres group:backup uid:N gid:N  # besides root
 *   key_socket_group = postgres    # the socket file's group (mode 0660);
 *                                  # without it: root's, mode 0600
 *   hint_spread_ms = 2000          # an event hint's check, up to this late
 *
 *   [provider "local"]             # settings of one provider, checked
 *                                  # against that provider's own list
 *   [device "pgtemp"]
 *   backing = /dev/nvme1n1
 *   dm_name = cmk-pgtemp
 *   key_name = pgtemp
 *   mode = ephemeral               # ephemeral | persistent
 *   sector_size = 4096
 *   hold_ms = 30000                # I/O waits this long for a lost key
 *   options = no_read_workqueue no_write_workqueue
 *   format = auto                  # ephemeral only: auto | always
 *   uuid = 0f8fad5b-...            # persistent only: the header's device_uuid
 *
 * Strict: unknown sections or keys, bad values, duplicate keys, sections
 * or device names all fail with "file:line: message".  The full reference
 * is in Documentation/formats.rst.
 */
#ifndef CMK_CONFIG_H
#define CMK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "format/header.h"
#include "kms/provider.h"

#define CMK_CONFIG_MAX_SIZE	(256 * 1024)
#define CMK_CONFIG_MAX_LINE	4096
#define CMK_NAME_MAX		64	/* == DM_CMK_NAME_MAX */
#define CMK_DEVICE_HOLD_MS	30000	/* the kernel's hold_ms default */
#define CMK_DM_NAME_MAX		127

/*
 * enum cmk_policy - what the agent does beyond wiping
 * @CMK_POLICY_WIPE: after grace_s of transient KMS failures, wipe the keys
 *	(fail closed).  Default.
 * @CMK_POLICY_POWEROFF: like wipe, then power the VM off; also after a
 *	definitive revocation.
 * @CMK_POLICY_NONE: after grace_s of transient failures, keep keys and
 *	leases (fail open; audited).  Definitive revocations still wipe.
 */
enum cmk_policy {
	CMK_POLICY_WIPE,
	CMK_POLICY_POWEROFF,
	CMK_POLICY_NONE,
};

/* Device table options (bit set). */
enum {
	CMK_OPT_IV_LARGE_SECTORS = 1U << 0,
	CMK_OPT_ALLOW_DISCARDS = 1U << 1,
	CMK_OPT_NO_READ_WORKQUEUE = 1U << 2,
	CMK_OPT_NO_WRITE_WORKQUEUE = 1U << 3,
};

/*
 * enum cmk_format - when an ephemeral device may be re-keyed at boot
 * @CMK_FORMAT_AUTO: only with evidence that it is ours: an ephemeral
 *	header (valid or damaged) or an all-zero first 1 MiB.  Default.
 * @CMK_FORMAT_ALWAYS: also over unknown data (DANGEROUS: a wrong "backing"
 *	path destroys whatever that device holds).
 */
enum cmk_format {
	CMK_FORMAT_AUTO,
	CMK_FORMAT_ALWAYS,
};

struct cmk_config_provider {
	char name[CMK_PROVIDER_NAME_MAX];
	struct cmk_kv *kv;	/* strings owned by the config */
	size_t n;
	int line;
};

struct cmk_config_device {
	char name[CMK_NAME_MAX + 1];
	char *backing;
	char dm_name[CMK_DM_NAME_MAX + 1];
	char key_name[CMK_NAME_MAX + 1];
	enum cmk_mode mode;
	uint32_t sector_size;
	uint32_t hold_ms;
	unsigned int options;
	enum cmk_format format;
	bool has_uuid;			/* uuid set: pinned by the config */
	uint8_t uuid[CMK_UUID_LEN];
	int line;
};

struct cmk_config {
	char *kek_envelope;
	uint32_t check_interval_s;	/* rounded up if set in ms */
	uint32_t check_interval_ms;	/* always valid after parsing */
	uint32_t jitter_pct;
	uint32_t lease_ms;
	uint32_t check_timeout_ms;	/* always valid after parsing */
	bool check_timeout_derived;	/* not set: what the lease leaves */
	uint32_t grace_s;
	uint32_t throttle_grace_s;	/* more grace while the KMS throttles */
	uint32_t boot_deadline_s;
	enum cmk_policy policy;
	char *audit_log;
	bool syslog;
	char *metrics_path;	/* NULL: no metrics */
	char *state_dir;	/* agent state file, revoke markers, open records */
	char *pin_dir;		/* persistent: first-use pins of persistent devices */
	char *hint_sqs_queue_url;	/* NULL: no revocation hint (daemon/hint.h) */
	char *hint_sqs_region;		/* NULL: from the URL or the environment */
	char *key_socket;		/* NULL: <state_dir>/keys.sock */
	char *key_socket_allow;		/* format/keysock.h; NULL: root only */
	char *key_socket_group;		/* group name or number; NULL: root's */
	uint32_t hint_spread_ms;	/* event hints: check at random within this */

	struct cmk_config_provider *providers;
	size_t n_providers;
	struct cmk_config_device *devices;
	size_t n_devices;
};

/*
 * Timing rule, checked at load (cmk-agent.rst, "Timing"): one check
 * interval with its jitter plus one check's deadline must fit in three
 * quarters of the lease; leases are renewed every quarter.  Without
 * check_timeout_ms the deadline is what the lease leaves, at most
 * CMK_CHECK_TIMEOUT_DEFAULT_MAX_MS.
 */
#define CMK_CHECK_TIMEOUT_MIN_MS		100
#define CMK_CHECK_TIMEOUT_DEFAULT_MAX_MS	30000
/* A derived deadline below this is allowed, with a warning. */
#define CMK_CHECK_TIMEOUT_WARN_MS		1000

#define CMK_CONFIG_PATH		"/etc/cmk/agent.conf"
#define CMK_STATE_DIR		"/run/cmk"
#define CMK_PIN_DIR		"/var/lib/cmk/pins"

int cmk_config_parse(const char *text, size_t len, const char *name,
		     struct cmk_config *c, struct cmk_err *e);
int cmk_config_load(const char *path, struct cmk_config *c, struct cmk_err *e);
void cmk_config_free(struct cmk_config *c);

const char *cmk_policy_name(enum cmk_policy p);

/*
 * cmk_config_warnings() - call @warn(@ctx, message) for each setting that
 * loads but is unwise, and return how many there were:
 *   - check_timeout_ms not set and the lease leaves less than
 *     CMK_CHECK_TIMEOUT_WARN_MS for a check;
 *   - a device whose hold_ms (not 0) is at most 2 x check_timeout_ms: after
 *     a system sleep or a lost lease, a check under way that cannot be
 *     cancelled (PKCS#11) and the fresh check can together outlast the
 *     kernel's hold, and held I/O fails with EIO.
 */
size_t cmk_config_warnings(const struct cmk_config *c,
			   void (*warn)(void *ctx, const char *msg), void *ctx);

/* cmk_config_provider() - the [provider "name"] section, or NULL. */
const struct cmk_config_provider *
cmk_config_provider(const struct cmk_config *c, const char *name);

/*
 * cmk_device_table_options() - "<#opt> opt..." for the dm table line
 * (sector_size:4096 and the option flags), or "" if there are none.
 */
int cmk_device_table_options(const struct cmk_config_device *d, char *out,
			     size_t size);

/*
 * cmk_device_header_flags() - the header flags (CMK_HDR_F_*) the table of
 * @d implies: a header must carry exactly these to be mapped with it.
 */
uint32_t cmk_device_header_flags(const struct cmk_config_device *d);

/*
 * cmk_device_table_line() - the dm-cmk table line for @d on a backing
 * device of @dev_bytes bytes, named @dev (major:minor of the device whose
 * header was checked; NULL: @d's backing path):
 *   "0 <len> cmk aes-xts-plain64 <key_name> 0 <dev> 2048 [<#opt> ...]"
 * <len> covers everything after the 1 MiB header, rounded down to whole
 * encryption sectors.  -ENOSPC if no data sector fits or @out is short.
 */
int cmk_device_table_line(const struct cmk_config_device *d, const char *dev,
			  uint64_t dev_bytes, char *out, size_t size);

/* cmk_key_name_valid() - [A-Za-z0-9._:-]{1,64} */
bool cmk_key_name_valid(const char *s);

#endif /* CMK_CONFIG_H */
