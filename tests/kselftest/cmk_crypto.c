// SPDX-License-Identifier: GPL-2.0
/*
 * cmk_crypto.c - a small crypto_user (NETLINK_CRYPTO) client, libmnl.
 * See cmk_crypto.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/netlink.h>

#include "cmk_crypto.h"

/* Headroom over the best priority, so nothing ties with it. */
#define PREFER_MARGIN	1000

struct crypto_xact {
	/* filled for every reported algorithm */
	int (*cb)(const struct cmk_crypto_alg *alg, void *arg);
	void *arg;
};

static int prio_attr_cb(const struct nlattr *attr, void *data)
{
	struct cmk_crypto_alg *alg = data;

	if (mnl_attr_get_type(attr) == CRYPTOCFGA_PRIORITY_VAL &&
	    mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
		alg->priority = mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

static int report_cb(const struct nlmsghdr *nlh, void *data)
{
	struct crypto_xact *x = data;
	const struct crypto_user_alg *u;
	struct cmk_crypto_alg alg;

	if (nlh->nlmsg_type != CRYPTO_MSG_GETALG ||
	    mnl_nlmsg_get_payload_len(nlh) < sizeof(*u))
		return MNL_CB_OK;
	u = mnl_nlmsg_get_payload(nlh);
	memset(&alg, 0, sizeof(alg));
	snprintf(alg.name, sizeof(alg.name), "%.*s", CRYPTO_MAX_NAME - 1,
		 u->cru_name);
	snprintf(alg.driver, sizeof(alg.driver), "%.*s", CRYPTO_MAX_NAME - 1,
		 u->cru_driver_name);
	snprintf(alg.module, sizeof(alg.module), "%.*s", CRYPTO_MAX_NAME - 1,
		 u->cru_module_name);
	alg.refcnt = u->cru_refcnt;
	alg.flags = u->cru_flags;
	if (mnl_attr_parse(nlh, sizeof(*u), prio_attr_cb, &alg) < 0)
		return MNL_CB_ERROR;
	if (x->cb && x->cb(&alg, x->arg))
		return MNL_CB_STOP;
	return MNL_CB_OK;
}

/*
 * Send one crypto_user request for @driver (and @priority if >= 0), run
 * @x->cb on every reported algorithm, wait for the ack or NLMSG_DONE.
 */
static int crypto_request(uint16_t type, uint16_t flags, const char *driver,
			  uint32_t alg_type, uint32_t alg_mask,
			  long long priority, struct crypto_xact *x)
{
	size_t bufsz = MNL_SOCKET_BUFFER_SIZE * 8;
	struct crypto_user_alg *u;
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	unsigned int portid, seq;
	char *buf;
	int ret;

	buf = calloc(1, bufsz);
	if (!buf)
		return -ENOMEM;
	nl = mnl_socket_open(NETLINK_CRYPTO);
	if (!nl) {
		/* EPROTONOSUPPORT: crypto_user is not loaded. */
		ret = -errno;
		free(buf);
		return ret;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	seq = (unsigned int)time(NULL);

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = seq;
	u = mnl_nlmsg_put_extra_header(nlh, sizeof(*u));
	if (driver)
		snprintf(u->cru_driver_name, sizeof(u->cru_driver_name), "%s",
			 driver);
	u->cru_type = alg_type;
	u->cru_mask = alg_mask;
	if (priority >= 0)
		mnl_attr_put_u32(nlh, CRYPTOCFGA_PRIORITY_VAL,
				 (uint32_t)priority);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, bufsz);

		if (n < 0) {
			ret = -errno;
			break;
		}
		ret = mnl_cb_run(buf, (size_t)n, seq, portid, report_cb, x);
		if (ret == MNL_CB_ERROR) {
			ret = errno ? -errno : -EIO;
			break;
		}
		if (ret == MNL_CB_STOP) {
			ret = 0;
			break;
		}
	}
out:
	mnl_socket_close(nl);
	free(buf);
	return ret;
}

static int copy_cb(const struct cmk_crypto_alg *alg, void *arg)
{
	*(struct cmk_crypto_alg *)arg = *alg;
	return 0;
}

int cmk_crypto_get(const char *driver, struct cmk_crypto_alg *out)
{
	struct crypto_xact x = { .cb = copy_cb, .arg = out };

	memset(out, 0, sizeof(*out));
	return crypto_request(CRYPTO_MSG_GETALG, NLM_F_ACK, driver, 0, 0, -1, &x);
}

struct best_arg {
	const char *name;
	struct cmk_crypto_alg *best;
	bool found;
};

static int best_cb(const struct cmk_crypto_alg *alg, void *arg)
{
	struct best_arg *b = arg;
	uint32_t bad = CMK_CRYPTO_ALG_LARVAL | CMK_CRYPTO_ALG_DEAD |
		       CMK_CRYPTO_ALG_DYING | CMK_CRYPTO_ALG_INTERNAL;

	if (strcmp(alg->name, b->name) || (alg->flags & bad) ||
	    !(alg->flags & CMK_CRYPTO_ALG_TESTED))
		return 0;
	if (!b->found || alg->priority > b->best->priority) {
		*b->best = *alg;
		b->found = true;
	}
	return 0;
}

int cmk_crypto_best(const char *name, struct cmk_crypto_alg *out)
{
	struct best_arg b = { .name = name, .best = out };
	struct crypto_xact x = { .cb = best_cb, .arg = &b };
	int ret;

	memset(out, 0, sizeof(*out));
	ret = crypto_request(CRYPTO_MSG_GETALG, NLM_F_DUMP, NULL, 0, 0, -1,
			     &x);
	if (ret)
		return ret;
	return b.found ? 0 : -ENOENT;
}

int cmk_crypto_add(const char *driver, uint32_t type, uint32_t priority)
{
	struct crypto_xact x = { 0 };
	int ret;

	ret = crypto_request(CRYPTO_MSG_NEWALG, NLM_F_ACK, driver, type,
			     type ? CMK_CRYPTO_ALG_TYPE_MASK : 0, priority, &x);
	/*
	 * Since Linux 6.7 templates build skciphers as lskciphers where
	 * they can, and the skcipher API looks them up with the mask 0xe
	 * (so that type 5 also matches 4): cryptd then refuses 0xf.
	 */
	if (ret == -EINVAL && type == CMK_CRYPTO_ALG_TYPE_SKCIPHER)
		ret = crypto_request(CRYPTO_MSG_NEWALG, NLM_F_ACK, driver,
				     type, CMK_CRYPTO_ALG_TYPE_SKCIPHER_MASK,
				     priority, &x);
	return ret;
}

int cmk_crypto_set_priority(const char *driver, uint32_t priority)
{
	struct crypto_xact x = { 0 };

	return crypto_request(CRYPTO_MSG_UPDATEALG, NLM_F_ACK, driver, 0, 0,
			      priority, &x);
}

int cmk_crypto_del(const char *driver)
{
	struct crypto_xact x = { 0 };

	return crypto_request(CRYPTO_MSG_DELALG, NLM_F_ACK, driver, 0, 0, -1, &x);
}

int cmk_crypto_prefer(const char *driver, const char *name,
		      struct cmk_crypto_alg *was)
{
	struct cmk_crypto_alg best, now;
	uint32_t prio;
	int ret;

	ret = cmk_crypto_best(name, &best);
	if (ret)
		return ret;
	if (was)
		*was = best;
	if (!strcmp(best.driver, driver))
		return 0;
	prio = best.priority + PREFER_MARGIN;
	ret = cmk_crypto_add(driver, best.flags & CMK_CRYPTO_ALG_TYPE_MASK,
			     prio);
	if (ret == -EEXIST)
		ret = cmk_crypto_set_priority(driver, prio);
	if (ret)
		return ret;
	ret = cmk_crypto_best(name, &now);
	if (ret)
		return ret;
	return strcmp(now.driver, driver) ? -EPROTO : 0;
}
