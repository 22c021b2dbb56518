// SPDX-License-Identifier: GPL-2.0
/*
 * kfuzz_ops.c - the operations of the dm-cmk kernel fuzzer: generic
 * netlink requests (well-formed and malformed), device-mapper ioctls
 * (create, table load with valid-ish or garbage arguments, suspend,
 * resume, remove, clear, message, status) and pauses that let short
 * leases run out.  Each one is drawn from its sub-seed alone.
 *
 * Nothing here logs key bytes: keys are named "good" (the slot's own
 * deterministic key) or "other".
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/dm-ioctl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "cmk_lib.h"
#include "kfuzz.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

/* A netlink reply that takes this long is a hang (the watchdog's too). */
#define KF_NL_TIMEOUT_MS	120000
#define KF_DM_BUF		16384

static struct cmk_nl nl;
static int dm_fd = -1;
static char *nl_rbuf;

/* ------------------------------------------------------------------ */
/* description buffer                                                 */

struct kf_desc {
	char *buf;
	size_t sz, len;
};

static void dprint(struct kf_desc *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void dprint(struct kf_desc *d, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!d->buf || d->len + 1 >= d->sz)
		return;
	va_start(ap, fmt);
	n = vsnprintf(d->buf + d->len, d->sz - d->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		d->len = d->len + (size_t)n < d->sz ? d->len + (size_t)n :
			 d->sz - 1;
}

/* Strings in a description: printable, short. */
static void dprint_str(struct kf_desc *d, const char *s)
{
	char tmp[72];
	size_t i;

	for (i = 0; s[i] && i < sizeof(tmp) - 1; i++)
		tmp[i] = (s[i] >= 32 && s[i] < 127) ? s[i] : '?';
	tmp[i] = '\0';
	dprint(d, "%s%s", tmp, s[i] ? "..." : "");
}

/* ------------------------------------------------------------------ */
/* keys and names                                                     */

static void good_key(uint8_t key[DM_CMK_KEY_LEN], int slot)
{
	cmk_key_make(key, 0x6b66757a7a000000ULL + (uint64_t)slot);
}

static const char *weird_names[] = {
	"", "kf-k", "kf-kX", "kf-k0 ", "kf/k0", "..",
	"kf-k0\x01", "x", "KF-K0",
	"kf-k0123456789012345678901234567890123456789012345678901234567890",
	"kf-k01234567890123456789012345678901234567890123456789012345678901",
};

/* The key_name an operation uses: mostly the slot's own. */
static void pick_key_name(uint64_t *r, int slot, char *buf, size_t sz)
{
	uint32_t p = kf_below(r, 100);

	if (p < 80)
		snprintf(buf, sz, KF_KEY_PREFIX "%d", slot);
	else if (p < 92)
		snprintf(buf, sz, KF_KEY_PREFIX "%u", kf_below(r, KF_SLOTS + 1));
	else
		snprintf(buf, sz, "%s",
			 weird_names[kf_below(r, sizeof(weird_names) /
						 sizeof(weird_names[0]))]);
}

/* Leases: short, so that they expire while the fuzzer runs. */
static uint32_t pick_lease(uint64_t *r)
{
	uint32_t p = kf_below(r, 100);

	if (p < 70)
		return 50 + kf_below(r, 3000);
	if (p < 80)
		return 1 + kf_below(r, 50);
	if (p < 88)
		return 0;
	if (p < 95)
		return 60000;
	return (uint32_t)kf_rand(r);
}

/* ------------------------------------------------------------------ */
/* generic netlink                                                    */

/*
 * Send @nlh and wait for its ack (and any dump before it).  Returns 0 or
 * the kernel's -errno; -ETIMEDOUT if nothing answers.
 */
static int nl_transact(struct nlmsghdr *nlh)
{
	uint64_t deadline = cmk_now_ms() + KF_NL_TIMEOUT_MS;
	int fd = mnl_socket_get_fd(nl.sock);

	if (mnl_socket_sendto(nl.sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now = cmk_now_ms();
		ssize_t n;
		int ret;

		if (now >= deadline)
			return -ETIMEDOUT;
		ret = poll(&pfd, 1, (int)(deadline - now));
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0)
			return ret ? -errno : -ETIMEDOUT;
		n = mnl_socket_recvfrom(nl.sock, nl_rbuf, 65536);
		if (n < 0) {
			if (errno == ENOBUFS || errno == EINTR)
				continue;
			return -errno;
		}
		ret = mnl_cb_run(nl_rbuf, (size_t)n, nlh->nlmsg_seq, nl.portid,
				 NULL, NULL);
		if (ret == MNL_CB_STOP)
			return 0;
		if (ret == MNL_CB_ERROR) {
			/* a late reply to an earlier request */
			if (errno == ESRCH || errno == EPROTO)
				continue;
			return -errno;
		}
	}
}

static struct nlmsghdr *nl_start(char *buf, uint8_t cmd, uint8_t version,
				 uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = nl.family;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++nl.seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = version;
	return nlh;
}

static int nl_finish(struct nlmsghdr *nlh, char *buf, size_t sz,
		     struct kf_desc *d)
{
	int err = nl_transact(nlh);

	explicit_bzero(buf, sz);	/* may have held a key */
	dprint(d, " -> %d", err);
	return err;
}

static const char *cmd_name(unsigned int cmd)
{
	static const char *names[] = { "UNSPEC", "KEY_SET", "KEY_WIPE",
				       "LEASE_RENEW", "GET", "EVENT" };

	return cmd < sizeof(names) / sizeof(names[0]) ? names[cmd] : "CMD?";
}

/* A well-formed request of one command, with plausible arguments. */
static void op_nl_command(uint64_t *r, int slot, unsigned int cmd, bool run,
			  struct kf_desc *d)
{
	char buf[MNL_SOCKET_BUFFER_SIZE], name[80];
	uint8_t key[DM_CMK_KEY_LEN];
	struct nlmsghdr *nlh;
	bool all = false, dump = false;

	pick_key_name(r, slot, name, sizeof(name));
	if (cmd == DM_CMK_CMD_GET) {
		dump = kf_below(r, 3) == 0;
		/* the doit without a name, for the epoch */
		all = !dump && kf_below(r, 5) == 0;
	} else if (cmd != DM_CMK_CMD_KEY_SET) {
		all = kf_below(r, 6) == 0;
	}
	nlh = nl_start(buf, (uint8_t)cmd, DM_CMK_GENL_VERSION,
		       dump ? NLM_F_DUMP : 0);
	dprint(d, "%s%s", cmd_name(cmd), dump ? " dump" : "");
	if (!all && !dump) {
		mnl_attr_put_strz(nlh, DM_CMK_A_NAME, name);
		dprint(d, " name=");
		dprint_str(d, name);
	}
	if (all) {
		mnl_attr_put_u32(nlh, DM_CMK_A_FLAGS, DM_CMK_F_ALL);
		dprint(d, " all");
	}
	if (cmd == DM_CMK_CMD_KEY_SET) {
		uint32_t lease = pick_lease(r);
		uint64_t gen = kf_below(r, 4) ? kf_below(r, 8) : kf_rand(r);
		int ks = slot;

		if (kf_below(r, 10) == 0) {
			cmk_key_make(key, kf_rand(r));
			dprint(d, " key=other");
		} else {
			if (kf_below(r, 8) == 0)
				ks = (int)kf_below(r, KF_SLOTS);
			good_key(key, ks);
			dprint(d, " key=good%d", ks);
		}
		mnl_attr_put(nlh, DM_CMK_A_KEY, DM_CMK_KEY_LEN, key);
		explicit_bzero(key, sizeof(key));
		mnl_attr_put_u32(nlh, DM_CMK_A_LEASE_MS, lease);
		mnl_attr_put_u64(nlh, DM_CMK_A_GENERATION, gen);
		dprint(d, " lease=%u gen=%llu", lease, (unsigned long long)gen);
		if (kf_below(r, 5) == 0) {
			uint32_t ep = kf_below(r, 2) ? 0 : (uint32_t)kf_rand(r);

			mnl_attr_put_u32(nlh, DM_CMK_A_EPOCH, ep);
			dprint(d, " epoch=%u", ep);
		}
	} else if (cmd == DM_CMK_CMD_KEY_WIPE) {
		if (kf_below(r, 3)) {
			uint32_t reason = kf_below(r, DM_CMK_REASON_MAX + 3);

			mnl_attr_put_u32(nlh, DM_CMK_A_REASON, reason);
			dprint(d, " reason=%u", reason);
		}
	} else if (cmd == DM_CMK_CMD_LEASE_RENEW) {
		uint32_t lease = pick_lease(r);

		mnl_attr_put_u32(nlh, DM_CMK_A_LEASE_MS, lease);
		dprint(d, " lease=%u", lease);
	}
	if (run)
		nl_finish(nlh, buf, sizeof(buf), d);
	explicit_bzero(buf, sizeof(buf));
}

/* Payload sizes that are wrong for most attribute types. */
static const uint16_t odd_sizes[] = { 0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 31,
				      63, 64, 65, 66, 128, 255, 256, 1024,
				      3000 };

/*
 * A request with random, duplicated, missing, oversized and wrong-typed
 * attributes, a random command, version and flags.
 */
static void op_nl_random(uint64_t *r, int slot, bool run, struct kf_desc *d)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	uint8_t payload[3100];
	struct nlmsghdr *nlh;
	unsigned int cmd = kf_below(r, 8), nattr = kf_below(r, 9), i;
	uint8_t version = kf_below(r, 6) ? DM_CMK_GENL_VERSION :
			  (uint8_t)kf_rand(r);
	uint16_t flags = kf_below(r, 5) ? 0 : NLM_F_DUMP;

	if (kf_below(r, 4) == 0)
		cmd = DM_CMK_CMD_KEY_SET;
	nlh = nl_start(buf, (uint8_t)cmd, version, flags);
	dprint(d, "NL_RANDOM cmd=%s(%u) v=%u%s attrs:", cmd_name(cmd), cmd,
	       version, flags ? " dump" : "");
	for (i = 0; i < nattr; i++) {
		uint16_t type = (uint16_t)kf_below(r, DM_CMK_A_MAX + 4);
		uint32_t how = kf_below(r, 10);
		uint16_t len;

		if (kf_below(r, 12) == 0)
			type |= kf_below(r, 2) ? NLA_F_NESTED :
				NLA_F_NET_BYTEORDER;
		switch (how) {
		case 0: case 1: case 2:	/* right size for an int */
			len = kf_below(r, 2) ? 4 : 8;
			cmk_fill(payload, len, kf_rand(r));
			break;
		case 3: {		/* a key-sized blob: good, or not */
			uint8_t key[DM_CMK_KEY_LEN];

			len = DM_CMK_KEY_LEN;
			if (kf_below(r, 2))
				good_key(key, slot);
			else
				cmk_fill(key, sizeof(key), kf_rand(r));
			memcpy(payload, key, len);
			explicit_bzero(key, sizeof(key));
			break;
		}
		case 4: case 5: {	/* a string, maybe unterminated */
			char name[80];

			pick_key_name(r, slot, name, sizeof(name));
			len = (uint16_t)strlen(name) + (kf_below(r, 3) ? 1 : 0);
			memcpy(payload, name, len);
			break;
		}
		default:
			len = odd_sizes[kf_below(r, sizeof(odd_sizes) /
						    sizeof(odd_sizes[0]))];
			cmk_fill(payload, len, kf_rand(r));
			break;
		}
		if (!mnl_attr_put_check(nlh, sizeof(buf), type, len, payload))
			break;
		dprint(d, " %u/%u", type, len);
	}
	if (kf_below(r, 10) == 0) {
		/* cut into the last attribute or into the genl header */
		uint32_t cut = kf_below(r, 8) + 1;

		if (nlh->nlmsg_len > NLMSG_HDRLEN + cut)
			nlh->nlmsg_len -= cut;
		dprint(d, " cut=%u", cut);
	}
	explicit_bzero(payload, sizeof(payload));
	if (run)
		nl_finish(nlh, buf, sizeof(buf), d);
	explicit_bzero(buf, sizeof(buf));
}

/* One attribute of a request being mutated. */
struct kf_attr {
	uint16_t type, len;
	uint8_t data[80];
};

static void attr_set(struct kf_attr *a, uint16_t type, const void *p,
		     uint16_t len)
{
	a->type = type;
	a->len = len;
	memcpy(a->data, p, len);
}

/*
 * A well-formed request of a random command, then one to three mutations:
 * an attribute duplicated (same or other value), dropped, resized, given
 * another type, flagged nested, or set to a boundary value.  Close to what
 * the policy accepts, so the handlers behind it run.
 */
static void op_nl_mutated(uint64_t *r, int slot, bool run, struct kf_desc *d)
{
	static const char *mut_names[] = { "dup", "drop", "resize", "retype",
					   "nested", "boundary" };
	char buf[MNL_SOCKET_BUFFER_SIZE], name[80];
	unsigned int cmd = 1 + kf_below(r, 4), n = 0, i, nmut;
	uint8_t key[DM_CMK_KEY_LEN];
	struct kf_attr attrs[12];
	struct nlmsghdr *nlh;
	uint32_t u32;
	uint64_t u64;

	pick_key_name(r, slot, name, sizeof(name));
	attr_set(&attrs[n++], DM_CMK_A_NAME, name, (uint16_t)strlen(name) + 1);
	if (cmd == DM_CMK_CMD_KEY_SET) {
		good_key(key, slot);
		attr_set(&attrs[n++], DM_CMK_A_KEY, key, DM_CMK_KEY_LEN);
		explicit_bzero(key, sizeof(key));
		u64 = kf_below(r, 8);
		attr_set(&attrs[n++], DM_CMK_A_GENERATION, &u64, 8);
	}
	if (cmd == DM_CMK_CMD_KEY_SET || cmd == DM_CMK_CMD_LEASE_RENEW) {
		u32 = pick_lease(r);
		attr_set(&attrs[n++], DM_CMK_A_LEASE_MS, &u32, 4);
	}
	if (cmd == DM_CMK_CMD_KEY_WIPE) {
		u32 = kf_below(r, DM_CMK_REASON_MAX + 1);
		attr_set(&attrs[n++], DM_CMK_A_REASON, &u32, 4);
	}
	if (kf_below(r, 4) == 0) {
		u32 = DM_CMK_F_ALL;
		attr_set(&attrs[n++], DM_CMK_A_FLAGS, &u32, 4);
	}
	dprint(d, "NL_MUTATED %s", cmd_name(cmd));
	nmut = 1 + kf_below(r, 3);
	while (nmut--) {
		unsigned int m = kf_below(r, 6), k = kf_below(r, n);
		struct kf_attr *a = &attrs[k];

		dprint(d, " %s(%u)", mut_names[m], a->type & NLA_TYPE_MASK);
		switch (m) {
		case 0:
			if (n < sizeof(attrs) / sizeof(attrs[0])) {
				attrs[n] = *a;
				if (kf_below(r, 2))
					cmk_fill(attrs[n].data,
						 attrs[n].len < 8 ? attrs[n].len : 8,
						 kf_rand(r));
				n++;
			}
			break;
		case 1:
			attrs[k] = attrs[--n];
			if (!n)
				nmut = 0;
			break;
		case 2:
			a->len = (uint16_t)kf_below(r, sizeof(a->data) + 1);
			cmk_fill(a->data, a->len, kf_rand(r));
			break;
		case 3:
			a->type = (uint16_t)(1 + kf_below(r, DM_CMK_A_MAX + 2));
			break;
		case 4:
			a->type |= NLA_F_NESTED;
			break;
		default:
			if (a->len == 4 || a->len == 8)
				memset(a->data, kf_below(r, 2) ? 0xff : 0, a->len);
			break;
		}
	}
	nlh = nl_start(buf, (uint8_t)cmd, DM_CMK_GENL_VERSION, 0);
	for (i = 0; i < n; i++)
		mnl_attr_put(nlh, attrs[i].type, attrs[i].len, attrs[i].data);
	explicit_bzero(attrs, sizeof(attrs));
	if (run)
		nl_finish(nlh, buf, sizeof(buf), d);
	explicit_bzero(buf, sizeof(buf));
}

/* ------------------------------------------------------------------ */
/* device-mapper ioctls                                               */

static struct dm_ioctl *dm_init(char *buf, int slot, uint32_t flags)
{
	struct dm_ioctl *io = (struct dm_ioctl *)buf;

	memset(buf, 0, KF_DM_BUF);
	io->version[0] = DM_VERSION_MAJOR;
	io->version[1] = 0;
	io->version[2] = 0;
	io->data_size = KF_DM_BUF;
	io->data_start = sizeof(*io);
	io->flags = flags;
	snprintf(io->name, sizeof(io->name), KF_DEV_PREFIX "%d", slot);
	return io;
}

static int dm_ioctl_run(unsigned long cmd, struct dm_ioctl *io)
{
	return ioctl(dm_fd, cmd, io) ? -errno : 0;
}

/* Targets of a table: up to 3 lines "<start> <len> <type> <params>". */
struct kf_table {
	int n;
	uint64_t start[3], len[3];
	char type[3][16];
	char params[3][512];
};

static const char *table_opts[] = {
	"iv_large_sectors", "allow_discards", "no_read_workqueue",
	"no_write_workqueue", "force_workqueue", "allow_no_lease",
	"sector_size:512", "sector_size:4096", "sector_size:1024",
	"sector_size:x", "lease_ms:0", "lease_ms:86400001", "hold_ms:600001",
	"hold_ms:-1", "frobnicate", "",
};

/* Optional parameters: hold_ms small, so held I/O keeps moving. */
static void gen_opts(uint64_t *r, char *buf, size_t sz)
{
	unsigned int n = 0, i, extra = kf_below(r, 4);
	char words[8][32];
	int len;

	if (kf_below(r, 20))
		snprintf(words[n++], sizeof(words[0]), "hold_ms:%u",
			 kf_below(r, 2000));
	if (kf_below(r, 3) == 0)
		snprintf(words[n++], sizeof(words[0]), "lease_ms:%u",
			 1 + kf_below(r, 10000));
	if (kf_below(r, 3) == 0)
		snprintf(words[n++], sizeof(words[0]), "sector_size:%u",
			 kf_below(r, 2) ? 512 : 4096);
	for (i = 0; i < extra && n < 8; i++) {
		uint32_t w = kf_below(r, sizeof(table_opts) /
					 sizeof(table_opts[0]));

		/* mostly options that load */
		if (w >= 8 && kf_below(r, 3))
			w = kf_below(r, 8);
		snprintf(words[n++], sizeof(words[0]), "%s", table_opts[w]);
	}
	buf[0] = '\0';
	if (!n && kf_below(r, 2))
		return;
	i = n;
	switch (kf_below(r, 12)) {
	case 0: i = n + 1; break;
	case 1: i = n ? n - 1 : 0; break;
	case 2: i = 99; break;
	default: break;
	}
	len = snprintf(buf, sz, " %u", i);
	for (i = 0; i < n && len > 0 && (size_t)len < sz; i++)
		len += snprintf(buf + len, sz - (size_t)len, " %s", words[i]);
}

static const char *garbage_words[] = {
	"cmk", "aes-xts-plain64", "aes-cbc-essiv:sha256", "0", "-1",
	"18446744073709551615", "18446744073709551616", "/dev/ram0",
	"/dev/nonexistent", "253:0", "1:0", "kf-k0", "%s%n", "\\", "1",
	"4096", "hold_ms:1", "allow_no_lease",
};

/* A table for @slot: mostly one that loads, sometimes garbage. */
static void gen_table(uint64_t *r, int slot, struct kf_table *t)
{
	uint32_t mode = kf_below(r, 100);
	char name[80], opts[300];
	uint64_t offset = 0, len = KF_RAM_SECTORS, iv = 0;
	const char *cipher = "aes-xts-plain64";
	char dev[32];
	int i;

	memset(t, 0, sizeof(*t));
	snprintf(dev, sizeof(dev), "/dev/ram%d", slot);
	pick_key_name(r, slot, name, sizeof(name));
	if (mode < 10) {
		/* garbage: random words for a cmk (or other) target */
		unsigned int n = kf_below(r, 12), w;
		size_t l = 0;

		t->n = 1;
		t->len[0] = kf_below(r, 4) ? 2048 + kf_below(r, 8192) :
			    kf_rand(r) >> kf_below(r, 64);
		snprintf(t->type[0], sizeof(t->type[0]), "%s",
			 kf_below(r, 8) ? "cmk" : "crypt");
		for (w = 0; w < n; w++) {
			const char *word = garbage_words[kf_below(r,
				sizeof(garbage_words) / sizeof(garbage_words[0]))];

			l += (size_t)snprintf(t->params[0] + l,
					      sizeof(t->params[0]) - l, "%s%s",
					      w ? " " : "", word);
			if (l >= sizeof(t->params[0]))
				break;
		}
		return;
	}
	if (mode < 20)
		offset = kf_below(r, 64) * 8;
	if (mode >= 20 && mode < 26)
		offset = kf_rand(r) >> kf_below(r, 64);
	len = KF_RAM_SECTORS - (offset < KF_RAM_SECTORS ? offset : 0);
	if (kf_below(r, 8) == 0)
		len = 2048 + kf_below(r, (uint32_t)len - 2048 + 1);
	if (kf_below(r, 25) == 0)
		len += 1 + kf_below(r, 4096);
	if (kf_below(r, 10) == 0)
		iv = kf_below(r, 2) ? kf_below(r, 1U << 20) : kf_rand(r);
	if (kf_below(r, 25) == 0)
		cipher = kf_below(r, 2) ? "aes-cbc-essiv:sha256" : "aes-xts-plain";
	if (kf_below(r, 40) == 0)
		snprintf(dev, sizeof(dev), "/dev/ram%u", kf_below(r, 8) + 4);
	gen_opts(r, opts, sizeof(opts));
	t->n = kf_below(r, 8) ? 1 : 2;
	for (i = 0; i < t->n; i++) {
		uint64_t seg = t->n == 1 ? len : len / 2;
		uint64_t seg_iv = iv + (i ? (kf_below(r, 4) ? seg : 0) : 0);

		t->start[i] = i ? t->len[0] : 0;
		t->len[i] = i ? len - seg : seg;
		snprintf(t->type[i], sizeof(t->type[i]), "cmk");
		snprintf(t->params[i], sizeof(t->params[i]),
			 "%s %s %llu %s %llu%s", cipher,
			 name[0] ? name : "-", (unsigned long long)seg_iv, dev,
			 (unsigned long long)(offset + t->start[i]), opts);
	}
}

static void describe_table(const struct kf_table *t, struct kf_desc *d)
{
	int i;

	for (i = 0; i < t->n; i++) {
		dprint(d, "%s[%llu %llu %s ", i ? " " : " table=",
		       (unsigned long long)t->start[i],
		       (unsigned long long)t->len[i], t->type[i]);
		dprint_str(d, t->params[i]);
		dprint(d, "]");
	}
}

static int dm_load(int slot, const struct kf_table *t)
{
	char *buf = calloc(1, KF_DM_BUF);
	struct dm_ioctl *io;
	size_t off;
	int i, err;

	if (!buf)
		return -ENOMEM;
	io = dm_init(buf, slot, 0);
	io->target_count = (uint32_t)t->n;
	off = sizeof(*io);
	for (i = 0; i < t->n; i++) {
		struct dm_target_spec *sp = (void *)(buf + off);
		size_t plen = strlen(t->params[i]) + 1;
		size_t next = (sizeof(*sp) + plen + 7) & ~(size_t)7;

		sp->sector_start = t->start[i];
		sp->length = t->len[i];
		snprintf(sp->target_type, sizeof(sp->target_type), "%s",
			 t->type[i]);
		memcpy(sp + 1, t->params[i], plen);
		sp->next = (uint32_t)next;
		off += next;
	}
	err = dm_ioctl_run(DM_TABLE_LOAD, io);
	free(buf);
	return err;
}

static int dm_simple(int slot, unsigned long cmd, uint32_t flags,
		     uint32_t *dev_minor)
{
	char *buf = calloc(1, KF_DM_BUF);
	struct dm_ioctl *io;
	int err;

	if (!buf)
		return -ENOMEM;
	io = dm_init(buf, slot, flags);
	err = dm_ioctl_run(cmd, io);
	if (!err && dev_minor)
		*dev_minor = minor(io->dev);
	free(buf);
	return err;
}

static int dm_message(int slot, const char *msg)
{
	char *buf = calloc(1, KF_DM_BUF);
	struct dm_target_msg *m;
	struct dm_ioctl *io;
	int err;

	if (!buf)
		return -ENOMEM;
	io = dm_init(buf, slot, 0);
	m = (void *)(buf + sizeof(*io));
	m->sector = 0;
	snprintf(m->message, KF_DM_BUF - sizeof(*io) - sizeof(*m), "%s", msg);
	err = dm_ioctl_run(DM_TARGET_MSG, io);
	free(buf);
	return err;
}

/* The slot's device now: its minor, or none. */
static void refresh_minor(int slot)
{
	uint32_t mi;

	if (!dm_simple(slot, DM_DEV_STATUS, 0, &mi))
		atomic_store(&kf_slots[slot].minor, mi + 1);
	else
		atomic_store(&kf_slots[slot].minor, 0);
}

static const char *messages[] = {
	"key_set", "key wipe", "wipe", "@cancel_deferred_remove",
	"@stats_list", "@stats_create - /8", "@stats_print 0",
	"@stats_delete 0", "@stats_clear 0", "", "x", "key set 00",
};

enum kf_kind {
	K_NL_KEY_SET, K_NL_KEY_WIPE, K_NL_LEASE_RENEW, K_NL_GET,
	K_NL_RANDOM, K_NL_MUTATED, K_DM_CREATE, K_DM_LOAD, K_DM_RESUME, K_DM_SUSPEND,
	K_DM_REMOVE, K_DM_CLEAR, K_DM_MESSAGE, K_DM_STATUS, K_SLEEP,
	K_KINDS
};

static const unsigned int weights[K_KINDS] = {
	[K_NL_KEY_SET] = 16, [K_NL_KEY_WIPE] = 5, [K_NL_LEASE_RENEW] = 9,
	[K_NL_GET] = 5, [K_NL_RANDOM] = 8, [K_NL_MUTATED] = 12,
	[K_DM_CREATE] = 8,
	[K_DM_LOAD] = 8, [K_DM_RESUME] = 9, [K_DM_SUSPEND] = 5,
	[K_DM_REMOVE] = 4, [K_DM_CLEAR] = 2, [K_DM_MESSAGE] = 3,
	[K_DM_STATUS] = 4, [K_SLEEP] = 4,
};

static enum kf_kind pick_kind(uint64_t *r)
{
	unsigned int total = 0, k, x;

	for (k = 0; k < K_KINDS; k++)
		total += weights[k];
	x = kf_below(r, total);
	for (k = 0; k < K_KINDS; k++) {
		if (x < weights[k])
			return (enum kf_kind)k;
		x -= weights[k];
	}
	return K_SLEEP;
}

static enum kf_op_class op_dm(uint64_t *r, enum kf_kind kind, int slot,
			      bool run, struct kf_desc *d)
{
	struct kf_table t;
	uint32_t mi, flags = 0;
	int err = 0;

	switch (kind) {
	case K_DM_CREATE:
		gen_table(r, slot, &t);
		dprint(d, "DM_CREATE kf-%d", slot);
		describe_table(&t, d);
		if (!run)
			break;
		kf_mapping_begin(slot);
		err = dm_simple(slot, DM_DEV_CREATE, 0, &mi);
		if (!err) {
			atomic_store(&kf_slots[slot].minor, mi + 1);
			err = dm_load(slot, &t);
			if (!err)
				err = dm_simple(slot, DM_DEV_SUSPEND, 0, NULL);
			atomic_store(&kf_slots[slot].requeued_ms, cmk_now_ms());
		}
		kf_mapping_end(slot);
		break;
	case K_DM_LOAD:
		gen_table(r, slot, &t);
		dprint(d, "DM_LOAD kf-%d", slot);
		describe_table(&t, d);
		if (run)
			err = dm_load(slot, &t);
		break;
	case K_DM_RESUME:
		dprint(d, "DM_RESUME kf-%d", slot);
		if (!run)
			break;
		kf_mapping_begin(slot);
		err = dm_simple(slot, DM_DEV_SUSPEND, 0, NULL);
		atomic_store(&kf_slots[slot].requeued_ms, cmk_now_ms());
		kf_mapping_end(slot);
		break;
	case K_DM_SUSPEND:
		if (kf_below(r, 3) == 0)
			flags |= DM_NOFLUSH_FLAG;
		if (kf_below(r, 3) == 0)
			flags |= DM_SKIP_LOCKFS_FLAG;
		dprint(d, "DM_SUSPEND kf-%d flags=%#x", slot, flags);
		if (!run)
			break;
		if (flags & DM_NOFLUSH_FLAG)
			atomic_store(&kf_slots[slot].requeued_ms, cmk_now_ms());
		err = dm_simple(slot, DM_DEV_SUSPEND, flags | DM_SUSPEND_FLAG,
				NULL);
		if (flags & DM_NOFLUSH_FLAG)
			atomic_store(&kf_slots[slot].requeued_ms, cmk_now_ms());
		break;
	case K_DM_REMOVE:
		if (kf_below(r, 4) == 0)
			flags |= DM_DEFERRED_REMOVE;
		dprint(d, "DM_REMOVE kf-%d%s", slot,
		       flags ? " deferred" : "");
		if (!run)
			break;
		kf_mapping_begin(slot);
		err = dm_simple(slot, DM_DEV_REMOVE, flags, NULL);
		refresh_minor(slot);
		kf_mapping_end(slot);
		break;
	case K_DM_CLEAR:
		dprint(d, "DM_CLEAR kf-%d", slot);
		if (run)
			err = dm_simple(slot, DM_TABLE_CLEAR, 0, NULL);
		break;
	case K_DM_MESSAGE: {
		const char *m = messages[kf_below(r, sizeof(messages) /
						     sizeof(messages[0]))];

		dprint(d, "DM_MESSAGE kf-%d \"%s\"", slot, m);
		if (run)
			err = dm_message(slot, m);
		break;
	}
	case K_DM_STATUS:
		flags = kf_below(r, 2) ? DM_STATUS_TABLE_FLAG : 0;
		if (kf_below(r, 3) == 0)
			flags |= DM_QUERY_INACTIVE_TABLE_FLAG;
		dprint(d, "DM_STATUS kf-%d flags=%#x", slot, flags);
		if (run)
			err = dm_simple(slot, DM_TABLE_STATUS, flags, NULL);
		break;
	default:
		break;
	}
	if (run)
		dprint(d, " -> %d", err);
	return KF_OP_DM;
}

static enum kf_op_class op_do(uint64_t sub, bool run, char *desc, size_t sz)
{
	struct kf_desc d = { .buf = desc, .sz = sz };
	uint64_t r = sub;
	enum kf_kind kind = pick_kind(&r);
	int slot = (int)kf_below(&r, KF_SLOTS);
	unsigned int ms;

	if (sz)
		desc[0] = '\0';
	switch (kind) {
	case K_NL_KEY_SET:
		op_nl_command(&r, slot, DM_CMK_CMD_KEY_SET, run, &d);
		return KF_OP_NETLINK;
	case K_NL_KEY_WIPE:
		op_nl_command(&r, slot, DM_CMK_CMD_KEY_WIPE, run, &d);
		return KF_OP_NETLINK;
	case K_NL_LEASE_RENEW:
		op_nl_command(&r, slot, DM_CMK_CMD_LEASE_RENEW, run, &d);
		return KF_OP_NETLINK;
	case K_NL_GET:
		op_nl_command(&r, slot, DM_CMK_CMD_GET, run, &d);
		return KF_OP_NETLINK;
	case K_NL_RANDOM:
		op_nl_random(&r, slot, run, &d);
		return KF_OP_NETLINK;
	case K_NL_MUTATED:
		op_nl_mutated(&r, slot, run, &d);
		return KF_OP_NETLINK;
	case K_SLEEP:
		ms = kf_below(&r, 400);
		dprint(&d, "SLEEP %u ms", ms);
		if (run)
			cmk_sleep_ms(ms);
		return KF_OP_OTHER;
	default:
		return op_dm(&r, kind, slot, run, &d);
	}
}

enum kf_op_class kf_op_run(uint64_t sub, char *desc, size_t sz)
{
	return op_do(sub, true, desc, sz);
}

void kf_op_describe(uint64_t sub, char *desc, size_t sz)
{
	op_do(sub, false, desc, sz);
}

void kf_resume_all(void)
{
	int s;

	for (s = 0; s < KF_SLOTS; s++) {
		kf_mapping_begin(s);
		dm_simple(s, DM_DEV_SUSPEND, 0, NULL);
		kf_mapping_end(s);
	}
}

/*
 * For a hang report: each kf- device's dm flags, open count and active
 * table status (one line per target), printed as "# kfuzz: ..." lines.
 */
void kf_print_slots(void)
{
	char *buf = calloc(1, KF_DM_BUF);
	int s;

	if (!buf)
		return;
	for (s = 0; s < KF_SLOTS; s++) {
		struct dm_ioctl *io = dm_init(buf, s, 0);
		uint32_t i, off;
		int err;

		err = dm_ioctl_run(DM_DEV_STATUS, io);
		if (err) {
			printf("# kfuzz: kf-%d: no device (%d)\n", s, err);
			continue;
		}
		printf("# kfuzz: kf-%d: %s%s%s open %d event %u targets %u\n", s,
		       io->flags & DM_SUSPEND_FLAG ? "suspended" : "live",
		       io->flags & DM_ACTIVE_PRESENT_FLAG ? " active-table" : "",
		       io->flags & DM_INACTIVE_PRESENT_FLAG ? " inactive-table" : "",
		       io->open_count, io->event_nr, io->target_count);
		io = dm_init(buf, s, 0);
		if (dm_ioctl_run(DM_TABLE_STATUS, io))
			continue;
		off = io->data_start;
		for (i = 0; i < io->target_count && off < io->data_size; i++) {
			struct dm_target_spec *sp = (void *)(buf + off);

			printf("# kfuzz: kf-%d:   %s %llu+%llu: %s\n", s,
			       sp->target_type,
			       (unsigned long long)sp->sector_start,
			       (unsigned long long)sp->length,
			       (const char *)(sp + 1));
			if (!sp->next)
				break;
			off += sp->next;
		}
	}
	fflush(stdout);
	free(buf);
}

int kf_reset(void)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	int s, err = 0;

	for (s = 0; s < KF_SLOTS; s++) {
		int tries, e = 0;

		kf_mapping_begin(s);
		for (tries = 0; tries < 50; tries++) {
			dm_simple(s, DM_DEV_SUSPEND, 0, NULL);
			e = dm_simple(s, DM_DEV_REMOVE, 0, NULL);
			if (!e || e == -ENXIO)
				break;
			cmk_sleep_ms(100);
		}
		refresh_minor(s);
		kf_mapping_end(s);
		if (e && e != -ENXIO && !err)
			err = e;
	}
	if (nl.sock) {
		nlh = nl_start(buf, DM_CMK_CMD_KEY_WIPE, DM_CMK_GENL_VERSION, 0);
		mnl_attr_put_u32(nlh, DM_CMK_A_FLAGS, DM_CMK_F_ALL);
		nl_transact(nlh);
	}
	return err;
}

int kf_ops_init(void)
{
	int one = 1, err, s;

	nl_rbuf = malloc(65536);
	if (!nl_rbuf)
		return -ENOMEM;
	err = cmk_nl_open(&nl);
	if (err)
		return err;
	mnl_socket_setsockopt(nl.sock, NETLINK_EXT_ACK, &one, sizeof(one));
	dm_fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
	if (dm_fd < 0)
		return -errno;
	for (s = 0; s < KF_SLOTS; s++)
		refresh_minor(s);
	return 0;
}

void kf_ops_exit(void)
{
	if (dm_fd >= 0)
		close(dm_fd);
	dm_fd = -1;
	cmk_nl_close(&nl);
	free(nl_rbuf);
	nl_rbuf = NULL;
}
