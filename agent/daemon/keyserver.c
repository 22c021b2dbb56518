// SPDX-License-Identifier: GPL-2.0
/*
 * keyserver.c - cmk-agent's key socket (keyserver.h).
 */
#include "daemon/keyserver.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/auditlimit.h"
#include "format/esdk_keyring.h"

/* Groups of a peer read at once (SO_PEERGROUPS); more: a second read. */
#define PEER_GROUPS_MAX	64
/* Connections accepted per run, so a flood cannot starve the agent's loop. */
#define ACCEPT_BATCH	16

/*
 * Refusals (not permitted, bad request, timeout) are audited one by one
 * CMK_AUDITLIMIT_BURST times per uid, then one a minute; the rest are
 * counted and written as one "suppressed" line a minute at most, so a
 * flood of connects cannot fill the audit log's disk
 * (daemon/auditlimit.h).
 */

struct client {
	int fd;
	uid_t uid;
	pid_t pid;
	uint64_t deadline_ms;
	uint64_t born_ms;		/* accepted */
	uint64_t idle_since_ms;		/* last answer out (or accepted) */
	unsigned int requests;
	size_t in_len;
	unsigned char in[CMK_KEYSOCK_REQ_MAX];
	struct cmk_secret *out;		/* the answer (may hold a data key) */
	size_t out_len, out_pos;
	bool close_after;		/* once the answer is out */
	bool out_key;			/* the answer holds a data key */
};

struct cmk_keyserver {
	int lfd;
	int epfd;
	bool bound;		/* the socket file is ours to remove */
	dev_t dev;		/* ... this one (not a file put there since) */
	ino_t ino;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct cmk_keysock_allow allow;
	struct cmk_audit *audit;
	const struct cmk_loop *loop;
	const struct cmk_kek_store *keks;
	struct client *clients[CMK_KEYSERVER_MAX_CLIENTS];
	size_t n_clients;
	uint64_t now_ms;
	uint32_t retired_wanted;	/* cmk_keyserver_retired_wanted() */
	struct cmk_auditlimit noise;	/* refusals audited per uid */
};

/* ---- the answer ------------------------------------------------------------ */

static enum cmk_keysock_status refuse(struct cmk_err *why, enum cmk_keysock_status st,
				      int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum cmk_keysock_status refuse(struct cmk_err *why, enum cmk_keysock_status st,
				      int code, const char *fmt, ...)
{
	char msg[CMK_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cmk_errf(why, code, "%s", msg);
	return st;
}

/* The KEK may be used only while the block devices may keep their keys. */
static enum cmk_keysock_status kek_usable(const struct cmk_loop *loop,
					  const struct cmk_kek_store *keks,
					  struct cmk_err *why)
{
	/*
	 * Peers are not root: they get the reason's name, never the KMS's
	 * text (it names the CMK's ARN and account, the endpoint, the
	 * credentials' source and access key id, local paths). The full
	 * error is in the root-only audit log.
	 */
	switch (loop->state) {
	case CMK_LS_REVOKED:
		return refuse(why, CMK_KS_REVOKED, -EKEYREVOKED,
			      "the CMK refused (%s): data keys are refused until it allows again; details in the agent's audit log",
			      cmk_reason_name(loop->last_err.reason));
	case CMK_LS_UNREACHABLE:
		return refuse(why, CMK_KS_UNAVAILABLE, -EAGAIN,
			      "the KMS has not answered for longer than grace_s, so the KEK was wiped (policy %s, %s); retry when it answers; details in the agent's audit log",
			      cmk_policy_name(loop->policy),
			      cmk_reason_name(loop->last_err.reason));
	case CMK_LS_STARTING:
		if (loop->boot_ret && loop->boot_ret != -EINPROGRESS)
			return refuse(why, CMK_KS_UNAVAILABLE, -EAGAIN,
				      "the agent failed to unseal the KEK (%s) and serves no keys; details in the agent's audit log",
				      cmk_reason_name(loop->boot_err.reason));
		/* a KMS that is slow or away at boot: say what it did so far */
		if (loop->boot_tries)
			return refuse(why, CMK_KS_UNAVAILABLE, -EAGAIN,
				      "the agent is still unsealing the KEK (%u attempt%s failed so far, the last: %s); retry shortly; details in the agent's audit log",
				      loop->boot_tries, loop->boot_tries == 1 ? "" : "s",
				      cmk_reason_name(loop->boot_err.reason));
		return refuse(why, CMK_KS_UNAVAILABLE, -EAGAIN,
			      "the agent is still unsealing the KEK (its first KMS call has not answered yet); retry shortly");
	case CMK_LS_ACTIVE:
	case CMK_LS_DEGRADED:
	case CMK_LS_FAIL_OPEN:
		break;
	}
	if (!loop->kek_held || !keks->cur)
		return refuse(why, CMK_KS_UNAVAILABLE, -EAGAIN,
			      "the agent holds no KEK right now (unsealing again after a VM fork or a wipe); retry shortly");
	return CMK_KS_OK;
}

/* The plain KEK of version @v, if the agent holds it (any version in the envelope). */
static const struct cmk_secret *kek_of(const struct cmk_kek_store *keks, uint32_t v)
{
	if (v == keks->env.cur.kek_version)
		return keks->cur;
	if (keks->env.has_prev && v == keks->env.prev.kek_version)
		return keks->prev;
	for (unsigned int i = 0; i < keks->env.n_retired; i++)
		if (v == keks->env.retired[i].kek_version)
			return keks->old[i];
	return NULL;
}

static enum cmk_keysock_status new_data_key(const struct cmk_kek_store *keks,
					    const struct cmk_keysock_req *req,
					    struct cmk_secret *out, size_t *out_len,
					    char *kek_name, struct cmk_err *why)
{
	CMK_SECRET_AUTO struct cmk_secret *dk = NULL;
	struct cmk_esdk_wrapkey wk = { 0 };
	struct cmk_esdk_edk edk = { 0 };
	enum cmk_keysock_status st = CMK_KS_INTERNAL;

	if (cmk_esdk_wrapkey_derive(keks->cur, keks->env.kek_id,
				    keks->env.cur.kek_version, &wk, why) ||
	    cmk_secret_random(&dk, CMK_ESDK_DATA_KEY_LEN, why) ||
	    cmk_esdk_edk_wrap(&wk, dk, req->ec, req->ec_len, &edk, why) ||
	    cmk_keysock_resp_ok(out, dk, &edk, out_len, why))
		goto out;
	snprintf(kek_name, CMK_ESDK_KEY_NAME_MAX, "%s", wk.name);
	st = CMK_KS_OK;
out:
	cmk_esdk_edk_free(&edk);
	cmk_esdk_wrapkey_free(&wk);
	return st;
}

static enum cmk_keysock_status open_edk(const struct cmk_kek_store *keks,
					const struct cmk_keysock_req *req,
					struct cmk_secret *out, size_t *out_len,
					char *kek_name, uint32_t *want,
					struct cmk_err *why)
{
	CMK_SECRET_AUTO struct cmk_secret *dk = NULL;
	struct cmk_esdk_wrapkey wk = { 0 };
	const struct cmk_secret *kek;
	enum cmk_keysock_status st;
	char name[CMK_ESDK_KEY_NAME_MAX], uuid[CMK_UUID_STR];
	uint8_t id[CMK_UUID_LEN];
	uint32_t v;

	if (cmk_esdk_edk_key_name(&req->edk, name) ||
	    cmk_esdk_key_name_parse(name, id, &v))
		return refuse(why, CMK_KS_UNKNOWN_KEY, -EKEYREJECTED,
			      "the EDK names no key of the form kek/<kek_id>/v<version>: not sealed by dm-cmk");
	snprintf(kek_name, CMK_ESDK_KEY_NAME_MAX, "%s", name);
	cmk_uuid_format(keks->env.kek_id, uuid);
	if (memcmp(id, keks->env.kek_id, CMK_UUID_LEN))
		return refuse(why, CMK_KS_UNKNOWN_KEY, -EKEYREJECTED,
			      "the EDK is for %s, another KEK than this agent's (%s)", name, uuid);
	kek = kek_of(keks, v);
	if (!kek) {
		/*
		 * Retired versions are unwrapped when first asked for, off
		 * the unseal's path: the caller retries (cmkctl does).
		 */
		for (unsigned int i = 0; i < keks->env.n_retired; i++)
			if (keks->env.retired[i].kek_version == v) {
				if (want)
					*want |= 1u << i;
				return refuse(why, CMK_KS_UNAVAILABLE, -EAGAIN,
					      "KEK version %u is retired and not unwrapped yet: the agent is asking the KMS for it now; retry in a few seconds (if it persists, see the agent's audit log, or open this object with cmkctl unseal --kek)",
					      v);
			}
		return refuse(why, CMK_KS_UNKNOWN_KEY, -EKEYREJECTED,
			      "KEK version %u is not in this agent's envelope (current v%u)",
			      v, keks->env.cur.kek_version);
	}
	if (cmk_esdk_wrapkey_derive(kek, keks->env.kek_id, v, &wk, why))
		return CMK_KS_INTERNAL;
	if (!cmk_esdk_edk_for(&wk, &req->edk) ||
	    cmk_esdk_edk_unwrap(&wk, &req->edk, req->ec, req->ec_len, &dk, why)) {
		st = refuse(why, CMK_KS_NOT_AUTHENTIC, -EBADMSG,
			    "the EDK does not open under %s with this encryption context (another object's EDK, another context, or tampered)",
			    name);
		goto out;
	}
	st = cmk_keysock_resp_ok(out, dk, NULL, out_len, why) ? CMK_KS_INTERNAL : CMK_KS_OK;
out:
	cmk_esdk_wrapkey_free(&wk);
	return st;
}

enum cmk_keysock_status cmk_keyserver_answer(const struct cmk_loop *loop,
					     const struct cmk_kek_store *keks,
					     const struct cmk_keysock_req *req,
					     struct cmk_secret *out, size_t *out_len,
					     char kek_name[CMK_ESDK_KEY_NAME_MAX],
					     uint32_t *want, struct cmk_err *why)
{
	enum cmk_keysock_status st;

	kek_name[0] = '\0';
	cmk_err_clear(why);
	st = kek_usable(loop, keks, why);
	if (st != CMK_KS_OK)
		return st;
	return req->op == CMK_KEYSOCK_NEW_DATA_KEY ?
	       new_data_key(keks, req, out, out_len, kek_name, why) :
	       open_edk(keks, req, out, out_len, kek_name, want, why);
}

/* ---- audit ------------------------------------------------------------------ */

/* The "suppressed" line of a uid whose refusals were held back. */
static void noise_summary(void *ctx, uint64_t uid, unsigned long logged,
			  unsigned long dropped, unsigned int span_s)
{
	struct cmk_keyserver *ks = ctx;
	struct cmk_audit_event ev = {
		.event = "key_socket",
		.operation = "suppressed",
		.outcome = "failure",
		.cls = CMK_EC_LOCAL,
		.reason = CMK_R_LOCAL,
		.latency_ms = -1,
		.request_id = "suppressed",
		.has_peer = true,
		.peer_uid = (long)uid,
		.peer_pid = 0,
	};
	char msg[160];
	struct cmk_err ae;

	if (!ks->audit)
		return;
	snprintf(msg, sizeof(msg),
		 "%lu more refused or bad requests from uid %u not logged one by one (%lu logged) in %u s",
		 dropped, (unsigned int)uid, logged, span_s);
	ev.message = msg;
	if (cmk_audit_log(ks->audit, &ev, &ae))
		fprintf(stderr, "cmk-agent: audit: %s\n", ae.msg);
}

static void audit(struct cmk_keyserver *ks, const struct client *c,
		  const char *op, const struct cmk_encctx *ctx,
		  const char *kek_name, enum cmk_keysock_status st,
		  const struct cmk_err *why)
{
	struct cmk_audit_event ev = {
		.event = "key_socket",
		.key_name = kek_name && kek_name[0] ? kek_name : NULL,
		.operation = op,
		.outcome = st == CMK_KS_OK ? "success" : "failure",
		.cls = st == CMK_KS_OK ? CMK_EC_NONE :
		       st == CMK_KS_REVOKED ? CMK_EC_DEFINITIVE :
		       st == CMK_KS_UNAVAILABLE ? CMK_EC_TRANSIENT : CMK_EC_LOCAL,
		.reason = st == CMK_KS_OK ? CMK_R_NONE :
			  st == CMK_KS_REVOKED ? ks->loop->last_err.reason : CMK_R_LOCAL,
		.latency_ms = -1,
		.request_id = st == CMK_KS_OK ? NULL : cmk_keysock_status_name(st),
		.message = st == CMK_KS_OK ? NULL : why->msg,
		.context = ctx,
		.has_peer = true,
		.peer_uid = (long)c->uid,
		.peer_pid = (long)c->pid,
	};
	struct cmk_err ae;

	if ((st == CMK_KS_NOT_PERMITTED || st == CMK_KS_BAD_REQUEST) &&
	    !cmk_auditlimit_admit(&ks->noise, c->uid, ks->now_ms))
		return;
	if (ev.cls != CMK_EC_NONE && ev.reason == CMK_R_NONE)
		ev.reason = CMK_R_LOCAL;
	if (ks->audit && cmk_audit_log(ks->audit, &ev, &ae))
		fprintf(stderr, "cmk-agent: audit: %s\n", ae.msg);
}

/* ---- clients ---------------------------------------------------------------- */

static void client_close(struct cmk_keyserver *ks, size_t i)
{
	struct client *c = ks->clients[i];

	epoll_ctl(ks->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	cmk_secret_free(&c->out);
	free(c);
	ks->clients[i] = ks->clients[--ks->n_clients];
}

static size_t client_index(const struct cmk_keyserver *ks, const struct client *c)
{
	for (size_t i = 0; i < ks->n_clients; i++)
		if (ks->clients[i] == c)
			return i;
	return SIZE_MAX;
}

static void want(struct cmk_keyserver *ks, struct client *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	epoll_ctl(ks->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Send what is left of the answer; wipe it once out.  false: close the client. */
static bool flush(struct cmk_keyserver *ks, struct client *c)
{
	while (c->out_pos < c->out_len) {
		ssize_t n = send(c->fd, cmk_secret_cdata(c->out) + c->out_pos,
				 c->out_len - c->out_pos, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			want(ks, c, EPOLLOUT);
			return true;
		}
		if (n <= 0)
			return false;
		c->out_pos += (size_t)n;
	}
	cmk_secret_wipe(c->out);
	c->out_len = c->out_pos = 0;
	c->out_key = false;
	if (c->close_after)
		return false;
	c->deadline_ms = ks->now_ms + CMK_KEYSERVER_TIMEOUT_MS;
	c->idle_since_ms = ks->now_ms;
	want(ks, c, EPOLLIN);
	return true;
}

static void answer_error(struct client *c, enum cmk_keysock_status st,
			 const struct cmk_err *why)
{
	c->out_len = cmk_keysock_resp_err(cmk_secret_data(c->out), st, why->msg);
	c->out_pos = 0;
}

/* One whole request in c->in: parse, answer, audit. */
static void serve(struct cmk_keyserver *ks, struct client *c)
{
	struct cmk_keysock_req req;
	enum cmk_keysock_status st;
	char kek_name[CMK_ESDK_KEY_NAME_MAX] = "";
	struct cmk_err why;
	int ret;

	ret = cmk_keysock_req_parse(c->in, c->in_len, &req, &why);
	c->in_len = 0;
	if (ret) {
		st = CMK_KS_BAD_REQUEST;
		audit(ks, c, "bad_request", NULL, NULL, st, &why);
		answer_error(c, st, &why);
		return;
	}
	st = cmk_keyserver_answer(ks->loop, ks->keks, &req, c->out, &c->out_len,
				  kek_name, &ks->retired_wanted, &why);
	c->out_pos = 0;
	c->out_key = st == CMK_KS_OK;
	/* A connection is not held forever: the client connects again. */
	if (++c->requests >= CMK_KEYSERVER_CONN_REQUESTS ||
	    ks->now_ms - c->born_ms >= CMK_KEYSERVER_CONN_LIFETIME_MS)
		c->close_after = true;
	if (st != CMK_KS_OK) {
		cmk_secret_wipe(c->out);
		answer_error(c, st, &why);
	}
	audit(ks, c, cmk_keysock_op_name(req.op), &req.ctx, kek_name, st, &why);
	cmk_keysock_req_free(&req);
}

/* Read what is there; answer a complete request.  false: close the client. */
static bool readable(struct cmk_keyserver *ks, struct client *c)
{
	for (;;) {
		struct cmk_err why;
		size_t need = CMK_KEYSOCK_HDR_LEN;
		ssize_t n, whole;

		whole = c->in_len ? cmk_keysock_req_len(c->in, c->in_len, &why) : 0;
		if (whole < 0) {
			/* Garbage or too large: answered, then closed (no way to resync). */
			audit(ks, c, "bad_request", NULL, NULL, CMK_KS_BAD_REQUEST, &why);
			answer_error(c, CMK_KS_BAD_REQUEST, &why);
			c->close_after = true;
			return flush(ks, c);
		}
		if (whole)
			need = (size_t)whole;
		if (c->in_len == need) {
			serve(ks, c);
			return flush(ks, c);	/* reads again once it is out */
		}
		n = recv(c->fd, c->in + c->in_len, need - c->in_len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0)
			return false;	/* gone (a half request is dropped) */
		c->in_len += (size_t)n;
	}
}

static void refuse_conn(struct client *c,
			enum cmk_keysock_status st, const struct cmk_err *why)
{
	unsigned char buf[CMK_KEYSOCK_RESP_MAX];
	size_t n = cmk_keysock_resp_err(buf, st, why->msg);

	/* Best effort: the socket is fresh, its buffer empty. */
	if (send(c->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return;
}

/* Between requests: nothing read of the next one, nothing left to send. */
static bool idle(const struct client *c)
{
	return !c->in_len && !c->out_len;
}

/*
 * Make room for a connection of @uid: its share is CMK_KEYSERVER_UID_MAX
 * connections (root's unbounded) and the last CMK_KEYSERVER_ROOT_SLOTS
 * slots are root's; past either, the longest idle connection that counts
 * against that limit (the uid's own; any other uid's; any) is closed so
 * the new one gets in.  false: every one of them is mid-request (busy).
 */
static bool make_room(struct cmk_keyserver *ks, uid_t uid)
{
	size_t mine = 0, others = 0, victim = SIZE_MAX;
	bool by_uid, by_table;

	for (size_t i = 0; i < ks->n_clients; i++) {
		if (ks->clients[i]->uid == uid)
			mine++;
		if (ks->clients[i]->uid != 0)
			others++;
	}
	by_uid = uid != 0 && mine >= CMK_KEYSERVER_UID_MAX;
	by_table = ks->n_clients >= CMK_KEYSERVER_MAX_CLIENTS ||
		   (uid != 0 && others >= CMK_KEYSERVER_MAX_CLIENTS - CMK_KEYSERVER_ROOT_SLOTS);
	if (!by_uid && !by_table)
		return true;
	for (size_t i = 0; i < ks->n_clients; i++) {
		const struct client *c = ks->clients[i];

		if (!idle(c) || (by_uid && c->uid != uid) ||
		    (!by_uid && uid != 0 && c->uid == 0))
			continue;
		if (victim == SIZE_MAX ||
		    c->idle_since_ms < ks->clients[victim]->idle_since_ms)
			victim = i;
	}
	if (victim == SIZE_MAX)
		return false;
	client_close(ks, victim);
	return true;
}

/*
 * The peer's primary group then its supplementary groups (SO_PEERGROUPS)
 * into @buf, or, when it has more than fit there (ERANGE: the kernel says
 * how many), into *@big (malloc'd; the caller frees it).  Returns the
 * array and its count in *@n; on any failure the primary group alone.
 */
static const gid_t *peer_groups(int fd, gid_t primary, gid_t buf[PEER_GROUPS_MAX + 1],
				gid_t **big, size_t *n)
{
	socklen_t gl = PEER_GROUPS_MAX * sizeof(gid_t);

	*big = NULL;
	*n = 1;
	buf[0] = primary;
	if (!getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, buf + 1, &gl)) {
		*n += gl / sizeof(gid_t);
		return buf;
	}
	if (errno != ERANGE || !gl)
		return buf;
	*big = malloc(gl + sizeof(gid_t));
	if (!*big)
		return buf;
	(*big)[0] = primary;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, *big + 1, &gl))
		return buf;
	*n += gl / sizeof(gid_t);
	return *big;
}

static void accept_one(struct cmk_keyserver *ks, int fd)
{
	struct client *c = calloc(1, sizeof(*c));
	struct epoll_event ev = { .events = EPOLLIN };
	gid_t buf[PEER_GROUPS_MAX + 1], *big = NULL;
	const gid_t *gids;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct cmk_err why;
	size_t ng = 0;
	bool allowed;

	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) || cl != sizeof(cred))
		goto drop;
	c->uid = cred.uid;
	c->pid = cred.pid;
	gids = peer_groups(fd, cred.gid, buf, &big, &ng);
	allowed = cmk_keysock_allowed(&ks->allow, cred.uid, gids, ng);
	free(big);
	if (!allowed) {
		cmk_errf(&why, -EPERM,
			 "uid %u (pid %d) may not use the key socket: not root and not on key_socket_allow",
			 (unsigned int)cred.uid, (int)cred.pid);
		audit(ks, c, "connect", NULL, NULL, CMK_KS_NOT_PERMITTED, &why);
		refuse_conn(c, CMK_KS_NOT_PERMITTED, &why);
		goto drop;
	}
	if (!make_room(ks, cred.uid)) {
		cmk_errf(&why, -EBUSY,
			 "the agent serves %zu connections (%d per uid, %d of them root's only), all of them mid-request; retry shortly",
			 ks->n_clients, CMK_KEYSERVER_UID_MAX, CMK_KEYSERVER_ROOT_SLOTS);
		refuse_conn(c, CMK_KS_BUSY, &why);
		goto drop;
	}
	if (cmk_secret_new(&c->out, CMK_KEYSOCK_RESP_MAX, &why)) {
		fprintf(stderr, "cmk-agent: key socket: %s\n", why.msg);
		goto drop;
	}
	c->deadline_ms = ks->now_ms + CMK_KEYSERVER_TIMEOUT_MS;
	c->born_ms = ks->now_ms;
	c->idle_since_ms = ks->now_ms;
	ev.data.ptr = c;
	if (epoll_ctl(ks->epfd, EPOLL_CTL_ADD, fd, &ev))
		goto drop;
	ks->clients[ks->n_clients++] = c;
	return;
drop:
	close(fd);
	cmk_secret_free(&c->out);
	free(c);
}

void cmk_keyserver_drop_keys(struct cmk_keyserver *ks)
{
	for (size_t i = 0; ks && i < ks->n_clients;) {
		if (ks->clients[i]->out_len && ks->clients[i]->out_key)
			client_close(ks, i);	/* wipes the answer */
		else
			i++;
	}
}

uint64_t cmk_keyserver_run(struct cmk_keyserver *ks, uint64_t now_ms, bool serve)
{
	struct epoll_event evs[16];
	uint64_t next = UINT64_MAX, noise;
	int n = 0;

	ks->now_ms = now_ms;
	if (serve)
		n = epoll_wait(ks->epfd, evs, 16, 0);
	for (int i = 0; i < n; i++) {
		struct client *c = evs[i].data.ptr;
		size_t at;
		bool keep;

		if (!c) {
			for (int k = 0; k < ACCEPT_BATCH; k++) {
				int fd = accept4(ks->lfd, NULL, NULL,
						 SOCK_NONBLOCK | SOCK_CLOEXEC);

				if (fd < 0)
					break;
				accept_one(ks, fd);
			}
			continue;
		}
		at = client_index(ks, c);
		if (at == SIZE_MAX)
			continue;	/* closed earlier in this batch */
		if (c->out_len)
			keep = !(evs[i].events & (EPOLLERR | EPOLLHUP)) && flush(ks, c);
		else
			keep = readable(ks, c);
		if (!keep)
			client_close(ks, client_index(ks, c));
	}
	for (size_t i = 0; i < ks->n_clients;) {
		struct client *c = ks->clients[i];

		if (idle(c) && now_ms - c->born_ms >= CMK_KEYSERVER_CONN_LIFETIME_MS) {
			client_close(ks, i);
			continue;
		}
		if (now_ms >= c->deadline_ms) {
			if (c->in_len || c->out_len) {
				struct cmk_err why;

				cmk_errf(&why, -ETIMEDOUT,
					 "closed: the client did not %s within %d ms",
					 c->out_len ? "take its answer" : "complete its request",
					 CMK_KEYSERVER_TIMEOUT_MS);
				audit(ks, c, "timeout", NULL, NULL, CMK_KS_BAD_REQUEST, &why);
			}
			client_close(ks, i);
			continue;
		}
		if (c->deadline_ms - now_ms < next)
			next = c->deadline_ms - now_ms;
		i++;
	}
	noise = cmk_auditlimit_tick(&ks->noise, now_ms);
	return noise < next ? noise : next;
}

/* ---- the socket ------------------------------------------------------------- */

static int socket_group(const char *s, gid_t *gid, struct cmk_err *e)
{
	struct group *gr;
	char *end;
	unsigned long v;

	if (*s >= '0' && *s <= '9') {
		errno = 0;
		v = strtoul(s, &end, 10);
		if (errno || *end || v >= (unsigned long)(uint32_t)-1)
			return cmk_errf(e, -EINVAL, "key_socket_group: \"%s\" is not a group", s);
		*gid = (gid_t)v;
		return 0;
	}
	gr = getgrnam(s);
	if (!gr)
		return cmk_errf(e, -ENOENT, "key_socket_group: no group \"%s\"", s);
	*gid = gr->gr_gid;
	return 0;
}

/* The parent directory: state_dir as the agent makes it (0700), another 0755. */
/*
 * The parent directory: state_dir as the agent makes it (0700), another
 * 0755.  It must be ours (root's) and writable by nobody else, or another
 * user could swap the socket file for a symlink between bind() and the
 * chown/chmod, or put their own socket there.
 */
static int parent_dir(const char *path, const char *state_dir, struct cmk_err *e)
{
	char dir[PATH_MAX];
	struct stat st;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	mkdir(dir, strcmp(dir, state_dir) ? 0755 : 0700);
	if (lstat(dir, &st))
		return cmk_errf(e, -errno, "key socket %s: directory %s: %s", path, dir,
				strerror(errno));
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
		return cmk_errf(e, -EPERM,
				"key socket %s: directory %s must be a directory owned by uid %u and writable by nobody else (it is %s, uid %u, mode %04o): choose another key_socket or fix the directory",
				path, dir, (unsigned int)geteuid(),
				S_ISDIR(st.st_mode) ? "a directory" :
				S_ISLNK(st.st_mode) ? "a symlink" : "not a directory",
				(unsigned int)st.st_uid, (unsigned int)(st.st_mode & 07777));
	return 0;
}

/*
 * Something at the socket's path: a socket nobody listens on (an earlier
 * run's) is removed; a live one (another agent) or anything else is not
 * ours.
 */
static int clear_path(const char *path, const struct sockaddr_un *sa,
		      struct cmk_err *e)
{
	struct stat st;
	int fd, live;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 :
		       cmk_errf(e, -errno, "key socket %s: %s", path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return cmk_errf(e, -EEXIST,
				"key socket %s: exists and is not a socket; not replaced",
				path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cmk_errf(e, -errno, "key socket: socket: %s", strerror(errno));
	live = !connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) ||
	       errno != ECONNREFUSED;
	close(fd);
	if (live)
		return cmk_errf(e, -EADDRINUSE,
				"key socket %s: in use (something answers there: another cmk-agent?); not replaced",
				path);
	if (unlink(path) && errno != ENOENT)
		return cmk_errf(e, -errno, "key socket %s: removing the old socket: %s",
				path, strerror(errno));
	return 0;
}

static int listen_on(struct cmk_keyserver *ks, const struct cmk_config *cfg,
		     struct cmk_err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t mode = cfg->key_socket_group ? 0660 : 0600;
	gid_t gid = 0;
	struct stat st;
	int n, ret;

	if (cfg->key_socket)
		n = snprintf(ks->path, sizeof(ks->path), "%s", cfg->key_socket);
	else
		n = snprintf(ks->path, sizeof(ks->path), "%s/%s", cfg->state_dir,
			     CMK_KEYSERVER_SOCKET_NAME);
	if (n < 0 || (size_t)n >= sizeof(ks->path))
		return cmk_errf(e, -ENAMETOOLONG,
				"key socket path %s%s: longer than the %zu bytes a Unix socket's name may have; set key_socket to a shorter path",
				cfg->key_socket ? cfg->key_socket : cfg->state_dir,
				cfg->key_socket ? "" : "/" CMK_KEYSERVER_SOCKET_NAME,
				sizeof(ks->path) - 1);
	if (cfg->key_socket_group) {
		ret = socket_group(cfg->key_socket_group, &gid, e);
		if (ret)
			return ret;
	}
	memcpy(sa.sun_path, ks->path, strlen(ks->path) + 1);
	ret = parent_dir(ks->path, cfg->state_dir, e);
	if (!ret)
		ret = clear_path(ks->path, &sa, e);
	if (ret)
		return ret;
	ks->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ks->lfd < 0)
		return cmk_errf(e, -errno, "key socket: socket: %s", strerror(errno));
	/*
	 * bind() gives the file the socket inode's mode less the umask: set
	 * the final mode on the fd first (no process-wide umask while other
	 * threads run).  Nobody can connect before listen(), below.
	 */
	if (fchmod(ks->lfd, mode))
		return cmk_errf(e, -errno, "key socket: fchmod: %s", strerror(errno));
	ret = bind(ks->lfd, (struct sockaddr *)&sa, sizeof(sa));
	if (ret)
		return cmk_errf(e, -errno, "key socket %s: bind: %s", ks->path,
				strerror(errno));
	if (lstat(ks->path, &st) || !S_ISSOCK(st.st_mode))
		return cmk_errf(e, -EIO, "key socket %s: not a socket after bind", ks->path);
	ks->bound = true;
	ks->dev = st.st_dev;
	ks->ino = st.st_ino;
	/* No symlink followed (the directory is checked too). */
	if ((cfg->key_socket_group && lchown(ks->path, 0, gid)) ||
	    (fchmodat(AT_FDCWD, ks->path, mode, AT_SYMLINK_NOFOLLOW) &&
	     (errno != EOPNOTSUPP || chmod(ks->path, mode))))
		return cmk_errf(e, -errno, "key socket %s: chown/chmod: %s", ks->path,
				strerror(errno));
	if (lstat(ks->path, &st) || !S_ISSOCK(st.st_mode) || st.st_ino != ks->ino ||
	    (st.st_mode & 07777) != mode || (cfg->key_socket_group && st.st_gid != gid))
		return cmk_errf(e, -EIO,
				"key socket %s: not the socket just made with mode %04o; refusing to serve",
				ks->path, (unsigned int)mode);
	if (listen(ks->lfd, 64))
		return cmk_errf(e, -errno, "key socket %s: listen: %s", ks->path,
				strerror(errno));
	return 0;
}

int cmk_keyserver_open(struct cmk_keyserver **out, const struct cmk_config *cfg,
		       struct cmk_audit *audit, const struct cmk_loop *loop,
		       const struct cmk_kek_store *keks, struct cmk_err *e)
{
	struct cmk_keyserver *ks = calloc(1, sizeof(*ks));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	int ret;

	*out = NULL;
	if (!ks)
		return cmk_errf(e, -ENOMEM, "key socket: out of memory");
	ks->lfd = ks->epfd = -1;
	ks->audit = audit;
	ks->loop = loop;
	ks->keks = keks;
	cmk_auditlimit_init(&ks->noise, CMK_AUDITLIMIT_PERIOD_MS, noise_summary, ks);
	ret = cmk_keysock_allow_parse(cfg->key_socket_allow, &ks->allow, e);
	if (!ret)
		ret = listen_on(ks, cfg, e);
	if (!ret) {
		ks->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (ks->epfd < 0 || epoll_ctl(ks->epfd, EPOLL_CTL_ADD, ks->lfd, &ev))
			ret = cmk_errf(e, -errno, "key socket: epoll: %s", strerror(errno));
	}
	if (ret) {
		cmk_keyserver_close(&ks);
		return ret;
	}
	*out = ks;
	return 0;
}

int cmk_keyserver_fd(const struct cmk_keyserver *ks)
{
	return ks ? ks->epfd : -1;
}

void cmk_keyserver_close(struct cmk_keyserver **p)
{
	struct cmk_keyserver *ks = *p;

	if (!ks)
		return;
	while (ks->n_clients)
		client_close(ks, ks->n_clients - 1);
	cmk_auditlimit_flush(&ks->noise);
	if (ks->lfd >= 0) {
		struct stat st;

		close(ks->lfd);
		/* Only the file bind() made: not one put there since. */
		if (ks->bound && !lstat(ks->path, &st) && st.st_dev == ks->dev &&
		    st.st_ino == ks->ino)
			unlink(ks->path);
	}
	if (ks->epfd >= 0)
		close(ks->epfd);
	free(ks);
	*p = NULL;
}

uint32_t cmk_keyserver_retired_wanted(struct cmk_keyserver *ks)
{
	uint32_t w = ks ? ks->retired_wanted : 0;

	if (ks)
		ks->retired_wanted = 0;
	return w;
}
