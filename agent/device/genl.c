// SPDX-License-Identifier: GPL-2.0
/*
 * genl.c - client of the kernel's "dm-cmk" generic netlink family (libmnl).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "device/genl.h"

/* Big enough for any request of ours, and for a page of dump replies. */
#define CMK_GENL_BUF	8192

struct cmk_genl {
	struct mnl_socket *sock;
	uint16_t family;
	uint32_t events_group;		/* multicast group id, 0 if none */
	int64_t epoch;			/* sent with KEY_SET if >= 0 */
	unsigned int portid;
	unsigned int seq;
	char ext[CMK_ERR_MSG_MAX];	/* extended ACK message of the last error */
	char buf[CMK_GENL_BUF];		/* replies; never holds key bytes */
};

const char *cmk_state_str(uint32_t state)
{
	switch (state) {
	case DM_CMK_STATE_SEALED:
		return "sealed";
	case DM_CMK_STATE_ACTIVE:
		return "active";
	case DM_CMK_STATE_WIPED:
		return "wiped";
	}
	return "unknown";
}

const char *cmk_wipe_reason_str(uint32_t reason)
{
	static const char *const names[] = {
		[DM_CMK_REASON_REQUESTED] = "requested",
		[DM_CMK_REASON_REVOKED] = "revoked",
		[DM_CMK_REASON_LEASE_EXPIRED] = "lease_expired",
		[DM_CMK_REASON_SUSPEND] = "suspend",
		[DM_CMK_REASON_VMFORK] = "vmfork",
		[DM_CMK_REASON_DESTROY] = "destroy",
		[DM_CMK_REASON_KMS_UNREACHABLE] = "kms_unreachable",
		[DM_CMK_REASON_POLICY] = "policy",
	};

	if (reason < sizeof(names) / sizeof(names[0]) && names[reason])
		return names[reason];
	return "unknown";
}

/* What every callback of one request gets: the socket, and the caller's. */
struct cmk_talk {
	struct cmk_genl *g;
	mnl_cb_t cb;
	void *arg;
};

/* Extended ACK attributes of an error message. */
static int cmk_genl_ext_attr(const struct nlattr *attr, void *data)
{
	struct cmk_genl *g = data;

	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
		snprintf(g->ext, sizeof(g->ext), "%s", mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

static int cmk_genl_on_error(const struct nlmsghdr *nlh, void *data)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	struct cmk_genl *g = ((struct cmk_talk *)data)->g;
	unsigned int offset;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*err))) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (err->error == 0)
		return MNL_CB_STOP;

	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		size_t left = mnl_nlmsg_get_payload_len(nlh) - sizeof(*err);

		offset = sizeof(*err);
		/*
		 * Uncapped, the request comes back whole before the TLVs: skip
		 * it only if it lies within this message (libmnl would walk
		 * wherever a larger offset points).
		 */
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
			if (err->msg.nlmsg_len < sizeof(struct nlmsghdr) ||
			    err->msg.nlmsg_len - sizeof(struct nlmsghdr) > left)
				goto out;
			offset += err->msg.nlmsg_len - sizeof(struct nlmsghdr);
		}
		mnl_attr_parse(nlh, offset, cmk_genl_ext_attr, g);
	}
out:
	/* A kernel's error is a negative errno: anything else is no answer. */
	errno = err->error < 0 && err->error > -4096 ? -err->error : EPROTO;
	return MNL_CB_ERROR;
}

static int cmk_genl_on_done(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(void)data;
	return MNL_CB_STOP;
}

static int cmk_genl_on_data(const struct nlmsghdr *nlh, void *data)
{
	struct cmk_talk *t = data;

	return t->cb ? t->cb(nlh, t->arg) : MNL_CB_OK;
}

static struct nlmsghdr *cmk_genl_put(struct cmk_genl *g, void *buf,
				     uint16_t type, uint8_t cmd, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *gh;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++g->seq;
	gh = mnl_nlmsg_put_extra_header(nlh, sizeof(*gh));
	gh->cmd = cmd;
	gh->version = DM_CMK_GENL_VERSION;
	return nlh;
}

/*
 * Send @nlh and read replies until the ACK (or the end of a dump), calling
 * @cb for each data message.  Return: 0 or -errno, with g->ext set to the
 * kernel's message if it sent one.
 */
static int cmk_genl_talk(struct cmk_genl *g, const struct nlmsghdr *nlh,
			 mnl_cb_t cb, void *arg)
{
	mnl_cb_t ctl[NLMSG_MIN_TYPE] = {
		[NLMSG_ERROR] = cmk_genl_on_error,
		[NLMSG_DONE] = cmk_genl_on_done,
	};
	struct cmk_talk talk = { g, cb, arg };
	unsigned int seq = nlh->nlmsg_seq;
	ssize_t n;
	int ret;

	g->ext[0] = '\0';
	if (mnl_socket_sendto(g->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(g->sock, g->buf, sizeof(g->buf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run2(g->buf, n, seq, g->portid, cmk_genl_on_data,
				  &talk, ctl, NLMSG_MIN_TYPE);
	} while (ret > 0);
	return ret < 0 ? -errno : 0;
}

struct cmk_family_ctx {
	uint16_t id;
	uint32_t events_group;
};

/* One group of CTRL_ATTR_MCAST_GROUPS: remember the "events" one. */
static int cmk_mcgrp_attr(const struct nlattr *attr, void *data)
{
	const struct nlattr *a;
	const char *name = NULL;
	uint32_t id = 0;

	mnl_attr_for_each_nested(a, attr) {
		if (mnl_attr_get_type(a) == CTRL_ATTR_MCAST_GRP_NAME &&
		    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
			name = mnl_attr_get_str(a);
		else if (mnl_attr_get_type(a) == CTRL_ATTR_MCAST_GRP_ID &&
			 mnl_attr_validate(a, MNL_TYPE_U32) == 0)
			id = mnl_attr_get_u32(a);
	}
	if (name && id && strcmp(name, DM_CMK_MCGRP_EVENTS) == 0)
		((struct cmk_family_ctx *)data)->events_group = id;
	return MNL_CB_OK;
}

static int cmk_family_attr(const struct nlattr *attr, void *data)
{
	struct cmk_family_ctx *ctx = data;

	if (mnl_attr_get_type(attr) == CTRL_ATTR_FAMILY_ID &&
	    mnl_attr_validate(attr, MNL_TYPE_U16) == 0)
		ctx->id = mnl_attr_get_u16(attr);
	else if (mnl_attr_get_type(attr) == CTRL_ATTR_MCAST_GROUPS &&
		 mnl_attr_validate(attr, MNL_TYPE_NESTED) == 0)
		mnl_attr_parse_nested(attr, cmk_mcgrp_attr, ctx);
	return MNL_CB_OK;
}

static int cmk_family_msg(const struct nlmsghdr *nlh, void *data)
{
	mnl_attr_parse(nlh, sizeof(struct genlmsghdr), cmk_family_attr, data);
	return MNL_CB_OK;
}

int cmk_genl_open(struct cmk_genl **out, struct cmk_err *e)
{
	struct cmk_family_ctx fam = { 0 };
	char req[256] __attribute__((aligned(8)));
	struct cmk_genl *g;
	struct nlmsghdr *nlh;
	int one = 1;
	int ret;

	*out = NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return cmk_errf(e, -ENOMEM, "netlink: out of memory");
	g->seq = (unsigned int)time(NULL);
	g->epoch = -1;

	g->sock = mnl_socket_open(NETLINK_GENERIC);
	if (!g->sock) {
		ret = cmk_errf(e, -errno, "netlink: cannot open a generic netlink socket: %s",
			       strerror(errno));
		goto fail;
	}
	/* Extended ACK messages tell the operator what the kernel refused. */
	mnl_socket_setsockopt(g->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	/*
	 * Without NETLINK_CAP_ACK an error ACK echoes the whole request back,
	 * and a refused KEY_SET carries the key: refuse to run without it.
	 */
	if (mnl_socket_setsockopt(g->sock, NETLINK_CAP_ACK, &one, sizeof(one)) < 0) {
		ret = cmk_errf(e, -errno,
			       "netlink: cannot set NETLINK_CAP_ACK (%s): error replies would echo key material; refusing",
			       strerror(errno));
		goto fail;
	}
	if (mnl_socket_bind(g->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = cmk_errf(e, -errno, "netlink: bind failed: %s", strerror(errno));
		goto fail;
	}
	g->portid = mnl_socket_get_portid(g->sock);

	nlh = cmk_genl_put(g, req, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 0);
	((struct genlmsghdr *)mnl_nlmsg_get_payload(nlh))->version = 1;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, DM_CMK_GENL_NAME);
	ret = cmk_genl_talk(g, nlh, cmk_family_msg, &fam);
	if (ret == -ENOENT || (!ret && !fam.id)) {
		ret = cmk_errf(e, -ENOENT,
			       "netlink: the kernel has no dm-cmk family: load the module (modprobe dm-cmk)");
		goto fail;
	}
	if (ret) {
		ret = cmk_errf(e, ret, "netlink: cannot resolve the dm-cmk family: %s",
			       strerror(-ret));
		goto fail;
	}
	g->family = fam.id;
	g->events_group = fam.events_group;
	*out = g;
	return 0;

fail:
	cmk_genl_close(&g);
	return ret;
}

void cmk_genl_close(struct cmk_genl **g)
{
	if (!*g)
		return;
	if ((*g)->sock)
		mnl_socket_close((*g)->sock);
	free(*g);
	*g = NULL;
}

/* Turn a failed request into an error naming the command and the device. */
static int cmk_genl_fail(struct cmk_genl *g, struct cmk_err *e, int ret,
			 const char *what, const char *name)
{
	const char *hint = "";

	if (ret == -EPERM)
		hint = " (changing a key needs CAP_SYS_ADMIN, reading state CAP_NET_ADMIN)";
	else if (ret == -ENODEV)
		hint = " (no dm-cmk device uses this key name)";
	else if (ret == -EKEYREJECTED)
		hint = " (the device is bound to another key: its header is not the one it was opened with)";
	else if (ret == -EBUSY)
		hint = " (the system is suspending or resuming; retry after resume)";
	else if (ret == -ESTALE)
		hint = " (the VM was forked since this key's KEK was unsealed: unseal it again)";
	return cmk_errf(e, ret, "kernel refused %s for %s: %s%s%s%s", what,
			name ? name : "all devices", strerror(-ret),
			g->ext[0] ? ": " : "", g->ext, hint);
}

int cmk_genl_key_set(struct cmk_genl *g, const char *name,
		     const struct cmk_secret *key, uint64_t generation,
		     uint32_t lease_ms, struct cmk_err *e)
{
	struct cmk_secret *buf = NULL;
	struct nlmsghdr *nlh;
	int ret;

	if (cmk_secret_len(key) != DM_CMK_KEY_LEN)
		return cmk_errf(e, -EINVAL, "key for %s has %zu bytes, expected %d",
				name, cmk_secret_len(key), DM_CMK_KEY_LEN);
	/* The request holds the key: build it in locked memory. */
	ret = cmk_secret_new(&buf, 1024, e);
	if (ret)
		return ret;
	nlh = cmk_genl_put(g, cmk_secret_data(buf), g->family,
			   DM_CMK_CMD_KEY_SET, 0);
	mnl_attr_put_strz(nlh, DM_CMK_A_NAME, name);
	mnl_attr_put(nlh, DM_CMK_A_KEY, DM_CMK_KEY_LEN, cmk_secret_cdata(key));
	mnl_attr_put_u64(nlh, DM_CMK_A_GENERATION, generation);
	mnl_attr_put_u32(nlh, DM_CMK_A_LEASE_MS, lease_ms);
	if (g->epoch >= 0)
		mnl_attr_put_u32(nlh, DM_CMK_A_EPOCH, (uint32_t)g->epoch);
	ret = cmk_genl_talk(g, nlh, NULL, NULL);
	cmk_secret_free(&buf);
	if (ret)
		return cmk_genl_fail(g, e, ret, "KEY_SET", name);
	return 0;
}

int cmk_genl_key_wipe(struct cmk_genl *g, const char *name,
		      enum dm_cmk_reason reason, struct cmk_err *e)
{
	char req[512] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	int ret;

	nlh = cmk_genl_put(g, req, g->family, DM_CMK_CMD_KEY_WIPE, 0);
	if (name)
		mnl_attr_put_strz(nlh, DM_CMK_A_NAME, name);
	else
		mnl_attr_put_u32(nlh, DM_CMK_A_FLAGS, DM_CMK_F_ALL);
	mnl_attr_put_u32(nlh, DM_CMK_A_REASON, reason);
	ret = cmk_genl_talk(g, nlh, NULL, NULL);
	if (ret)
		return cmk_genl_fail(g, e, ret, "KEY_WIPE", name);
	return 0;
}

int cmk_genl_lease_renew(struct cmk_genl *g, const char *name,
			 uint32_t lease_ms, struct cmk_err *e)
{
	char req[512] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	int ret;

	nlh = cmk_genl_put(g, req, g->family, DM_CMK_CMD_LEASE_RENEW, 0);
	if (name)
		mnl_attr_put_strz(nlh, DM_CMK_A_NAME, name);
	else
		mnl_attr_put_u32(nlh, DM_CMK_A_FLAGS, DM_CMK_F_ALL);
	mnl_attr_put_u32(nlh, DM_CMK_A_LEASE_MS, lease_ms);
	ret = cmk_genl_talk(g, nlh, NULL, NULL);
	if (ret)
		return cmk_genl_fail(g, e, ret, "LEASE_RENEW", name);
	return 0;
}

static int cmk_info_attr(const struct nlattr *attr, void *data)
{
	struct cmk_dev_info *info = data;

	switch (mnl_attr_get_type(attr)) {
	case DM_CMK_A_NAME:
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
			snprintf(info->name, sizeof(info->name), "%s",
				 mnl_attr_get_str(attr));
		break;
	case DM_CMK_A_DEVICE:
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
			snprintf(info->device, sizeof(info->device), "%s",
				 mnl_attr_get_str(attr));
		break;
	case DM_CMK_A_STATE:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			info->state = mnl_attr_get_u32(attr);
		break;
	case DM_CMK_A_GENERATION:
		if (mnl_attr_validate(attr, MNL_TYPE_U64) == 0)
			info->generation = mnl_attr_get_u64(attr);
		break;
	case DM_CMK_A_LEASE_LEFT_MS:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0) {
			info->has_lease = true;
			info->lease_left_ms = mnl_attr_get_u32(attr);
		}
		break;
	case DM_CMK_A_LEASE_MAX_MS:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			info->lease_max_ms = mnl_attr_get_u32(attr);
		break;
	case DM_CMK_A_SECTOR_SIZE:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			info->sector_size = mnl_attr_get_u32(attr);
		break;
	case DM_CMK_A_REASON:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			info->reason = mnl_attr_get_u32(attr);
		break;
	case DM_CMK_A_READS:
		if (mnl_attr_validate(attr, MNL_TYPE_U64) == 0)
			info->reads = mnl_attr_get_u64(attr);
		break;
	case DM_CMK_A_WRITES:
		if (mnl_attr_validate(attr, MNL_TYPE_U64) == 0)
			info->writes = mnl_attr_get_u64(attr);
		break;
	case DM_CMK_A_IO_ERRORS:
		if (mnl_attr_validate(attr, MNL_TYPE_U64) == 0)
			info->io_errors = mnl_attr_get_u64(attr);
		break;
	case DM_CMK_A_REFUSED:
		if (mnl_attr_validate(attr, MNL_TYPE_U64) == 0)
			info->refused = mnl_attr_get_u64(attr);
		break;
	case DM_CMK_A_EPOCH:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0) {
			info->has_epoch = true;
			info->epoch = mnl_attr_get_u32(attr);
		}
		break;
	case DM_CMK_A_BOUND:
		if (mnl_attr_validate(attr, MNL_TYPE_FLAG) == 0)
			info->bound = true;
		break;
	}
	return MNL_CB_OK;
}

struct cmk_dump_ctx {
	cmk_genl_dump_cb cb;
	void *arg;
	int ret;
};

static int cmk_dump_msg(const struct nlmsghdr *nlh, void *data)
{
	struct cmk_dump_ctx *ctx = data;
	struct cmk_dev_info info;

	memset(&info, 0, sizeof(info));
	mnl_attr_parse(nlh, sizeof(struct genlmsghdr), cmk_info_attr, &info);
	if (ctx->ret == 0)
		ctx->ret = ctx->cb(&info, ctx->arg);
	return MNL_CB_OK;
}

static int cmk_get_one(const struct cmk_dev_info *info, void *arg)
{
	*(struct cmk_dev_info *)arg = *info;
	return 0;
}

int cmk_genl_get(struct cmk_genl *g, const char *name,
		 struct cmk_dev_info *info, struct cmk_err *e)
{
	struct cmk_dump_ctx ctx = { cmk_get_one, info, 0 };
	char req[512] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	int ret;

	memset(info, 0, sizeof(*info));
	nlh = cmk_genl_put(g, req, g->family, DM_CMK_CMD_GET, 0);
	mnl_attr_put_strz(nlh, DM_CMK_A_NAME, name);
	ret = cmk_genl_talk(g, nlh, cmk_dump_msg, &ctx);
	if (ret)
		return cmk_genl_fail(g, e, ret, "GET", name);
	return 0;
}

int cmk_genl_dump(struct cmk_genl *g, cmk_genl_dump_cb cb, void *arg,
		  struct cmk_err *e)
{
	struct cmk_dump_ctx ctx = { cb, arg, 0 };
	char req[256] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	int ret;

	nlh = cmk_genl_put(g, req, g->family, DM_CMK_CMD_GET, NLM_F_DUMP);
	ret = cmk_genl_talk(g, nlh, cmk_dump_msg, &ctx);
	if (ret)
		return cmk_genl_fail(g, e, ret, "GET (dump)", NULL);
	return ctx.ret;
}

void cmk_genl_set_epoch(struct cmk_genl *g, int64_t epoch)
{
	g->epoch = epoch;
}

/*
 * GET with FLAGS=ALL and no NAME: the kernel's answer about itself (EPOCH),
 * which needs no device, so the agent can read it before its first unseal.
 */
int cmk_genl_epoch(struct cmk_genl *g, uint32_t *epoch, struct cmk_err *e)
{
	struct cmk_dev_info info;
	struct cmk_dump_ctx ctx = { cmk_get_one, &info, 0 };
	char req[256] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	int ret;

	memset(&info, 0, sizeof(info));
	nlh = cmk_genl_put(g, req, g->family, DM_CMK_CMD_GET, 0);
	mnl_attr_put_u32(nlh, DM_CMK_A_FLAGS, DM_CMK_F_ALL);
	ret = cmk_genl_talk(g, nlh, cmk_dump_msg, &ctx);
	/*
	 * A module that answers about itself without EPOCH has none.  One
	 * that refuses GET without NAME (-EINVAL) may still report EPOCH per
	 * device: not decided here (forkwatch.c asks a device).
	 */
	if (!ret && !info.has_epoch)
		return cmk_errf(e, -ENOMSG,
				"this dm-cmk module does not report its VM-fork epoch (older than the agent?): a clone is caught only by its vmfork events");
	if (ret)
		return cmk_genl_fail(g, e, ret, "GET (VM-fork epoch)", NULL);
	*epoch = info.epoch;
	return 0;
}

int cmk_genl_fd(const struct cmk_genl *g)
{
	return mnl_socket_get_fd(g->sock);
}

int cmk_genl_events_open(struct cmk_genl **out, struct cmk_err *e)
{
	struct cmk_genl *g;
	int ret, fl;

	ret = cmk_genl_open(&g, e);
	if (ret)
		return ret;
	if (!g->events_group) {
		ret = cmk_errf(e, -ENOENT,
			       "netlink: the dm-cmk family has no \"%s\" group (module too old?)",
			       DM_CMK_MCGRP_EVENTS);
		goto fail;
	}
	if (mnl_socket_setsockopt(g->sock, NETLINK_ADD_MEMBERSHIP, &g->events_group,
				  sizeof(g->events_group)) < 0) {
		ret = cmk_errf(e, -errno,
			       "netlink: cannot join the dm-cmk \"%s\" group: %s%s",
			       DM_CMK_MCGRP_EVENTS, strerror(errno),
			       errno == EPERM ? " (needs CAP_SYS_ADMIN)" : "");
		goto fail;
	}
	fl = fcntl(cmk_genl_fd(g), F_GETFL);
	if (fl < 0 || fcntl(cmk_genl_fd(g), F_SETFL, fl | O_NONBLOCK) < 0) {
		ret = cmk_errf(e, -errno, "netlink: cannot make the events socket non-blocking: %s",
			       strerror(errno));
		goto fail;
	}
	*out = g;
	return 0;
fail:
	cmk_genl_close(&g);
	return ret;
}

struct cmk_event_ctx {
	struct cmk_genl *g;
	cmk_genl_event_cb cb;
	void *arg;
};

static int cmk_event_attr(const struct nlattr *attr, void *data)
{
	struct cmk_event *ev = data;

	if (mnl_attr_get_type(attr) == DM_CMK_A_EVENT) {
		if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			ev->event = mnl_attr_get_u32(attr);
		return MNL_CB_OK;
	}
	return cmk_info_attr(attr, &ev->info);
}

static int cmk_event_msg(const struct nlmsghdr *nlh, void *data)
{
	struct cmk_event_ctx *ctx = data;
	const struct genlmsghdr *gh;
	struct cmk_event ev;

	if (nlh->nlmsg_type != ctx->g->family ||
	    nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*gh)))
		return MNL_CB_OK;
	gh = mnl_nlmsg_get_payload(nlh);
	if (gh->cmd != DM_CMK_CMD_EVENT)
		return MNL_CB_OK;
	memset(&ev, 0, sizeof(ev));
	ev.event = UINT32_MAX;
	mnl_attr_parse(nlh, sizeof(*gh), cmk_event_attr, &ev);
	if (ev.event != UINT32_MAX && ev.info.name[0])
		ctx->cb(&ev, ctx->arg);
	return MNL_CB_OK;
}

int cmk_genl_events_read(struct cmk_genl *g, cmk_genl_event_cb cb, void *arg,
			 struct cmk_err *e)
{
	struct cmk_event_ctx ctx = { g, cb, arg };

	for (;;) {
		ssize_t n = recv(cmk_genl_fd(g), g->buf, sizeof(g->buf), MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == ENOBUFS)
				return cmk_errf(e, -ENOBUFS,
						"netlink: dm-cmk events were lost (socket overrun)");
			return cmk_errf(e, -errno, "netlink: reading dm-cmk events: %s",
					strerror(errno));
		}
		/* Not a reply to us: portid and sequence are 0. */
		if (mnl_cb_run(g->buf, (size_t)n, 0, 0, cmk_event_msg, &ctx) < 0)
			return cmk_errf(e, -EBADMSG, "netlink: malformed dm-cmk event: %s",
					strerror(errno));
	}
}
