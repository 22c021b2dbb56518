// SPDX-License-Identifier: GPL-2.0
/*
 * keyclient.c - the client side of the agent's key socket (keyclient.h).
 */
#include "daemon/keyclient.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/secret.h"
#include "format/keysock.h"

int cmk_keyclient_path(const struct cmk_config *cfg, char *out, size_t len,
		       struct cmk_err *e)
{
	int n = cfg->key_socket ? snprintf(out, len, "%s", cfg->key_socket) :
		snprintf(out, len, "%s/keys.sock", cfg->state_dir);

	if (n < 0 || (size_t)n >= len)
		return cmk_errf(e, -ENAMETOOLONG, "key socket path too long for a Unix socket");
	return 0;
}

/*
 * The data keys go only to a server running as root (cmk-agent) or as
 * this very uid (no privilege crossed): a socket file left by someone
 * else, or a directory an attacker could write, must not receive the
 * EDKs and hand back data keys of its choosing.
 */
static int server_is_agent(struct cmk_keyclient *kc, struct cmk_err *e)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);

	if (getsockopt(kc->fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) || cl != sizeof(cred)) {
		int err = errno ? errno : EPROTO;

		cmk_keyclient_close(kc);
		return cmk_errf(e, -err, "key socket %s: SO_PEERCRED: %s", kc->path,
				strerror(err));
	}
	if (cred.uid != 0 && cred.uid != geteuid()) {
		cmk_keyclient_close(kc);
		cmk_errf(e, -EPERM,
			 "key socket %s: served by uid %u (pid %d), not root: not cmk-agent; refusing to send it anything (check the path and who made it)",
			 kc->path, (unsigned int)cred.uid, (int)cred.pid);
		e->cls = CMK_EC_LOCAL;
		return -EPERM;
	}
	return 0;
}

int cmk_keyclient_connect(struct cmk_keyclient *kc, const char *path,
			  struct cmk_err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = {
		.tv_sec = CMK_KEYCLIENT_TIMEOUT_MS / 1000,
		.tv_usec = (CMK_KEYCLIENT_TIMEOUT_MS % 1000) * 1000,
	};

	kc->fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path) || strlen(path) >= sizeof(kc->path))
		return cmk_errf(e, -ENAMETOOLONG, "key socket %s: path too long", path);
	snprintf(kc->path, sizeof(kc->path), "%s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	kc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (kc->fd < 0)
		return cmk_errf(e, -errno, "key socket: socket: %s", strerror(errno));
	/* A stuck agent fails the call instead of hanging archive_command. */
	setsockopt(kc->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(kc->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(kc->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = errno;

		close(kc->fd);
		kc->fd = -1;
		cmk_errf(e, -err,
			 "key socket %s: cannot connect: %s (%s)", path, strerror(err),
			 err == ENOENT || err == ECONNREFUSED ?
			 "is cmk-agent running? key_socket in agent.conf says where it listens" :
			 err == EACCES ? "the socket file's mode or a directory on the way does not let this user in: see key_socket_group" :
			 "check the path");
		e->cls = err == EACCES ? CMK_EC_LOCAL : CMK_EC_TRANSIENT;
		return -err;
	}
	return server_is_agent(kc, e);
}

void cmk_keyclient_close(struct cmk_keyclient *kc)
{
	if (kc->fd >= 0)
		close(kc->fd);
	kc->fd = -1;
}

static int io_err(struct cmk_keyclient *kc, int err, const char *what,
		  struct cmk_err *e)
{
	cmk_errf(e, err ? -err : -EPIPE, "key socket %s: %s: %s", kc->path, what,
		 err == EAGAIN || err == EWOULDBLOCK ?
		 "no answer within the timeout (the agent is stuck or overloaded)" :
		 err ? strerror(err) : "the agent closed the connection");
	e->cls = CMK_EC_TRANSIENT;
	return err ? -err : -EPIPE;
}

static int read_full(struct cmk_keyclient *kc, unsigned char *p, size_t len,
		     struct cmk_err *e)
{
	while (len) {
		ssize_t n = recv(kc->fd, p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return io_err(kc, n < 0 ? errno : 0, "reading the answer", e);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A refusal's status as an error code and class (keyclient.h). */
static int refusal(enum cmk_keysock_status st, struct cmk_err *e)
{
	static const struct { int code; enum cmk_err_class cls; } map[] = {
		[CMK_KS_BAD_REQUEST] = { -EINVAL, CMK_EC_LOCAL },
		[CMK_KS_NOT_PERMITTED] = { -EACCES, CMK_EC_LOCAL },
		[CMK_KS_REVOKED] = { -EKEYREVOKED, CMK_EC_DEFINITIVE },
		[CMK_KS_UNAVAILABLE] = { -EAGAIN, CMK_EC_TRANSIENT },
		[CMK_KS_UNKNOWN_KEY] = { -EKEYREJECTED, CMK_EC_LOCAL },
		[CMK_KS_NOT_AUTHENTIC] = { -EBADMSG, CMK_EC_LOCAL },
		[CMK_KS_INTERNAL] = { -EIO, CMK_EC_LOCAL },
		[CMK_KS_BUSY] = { -EAGAIN, CMK_EC_TRANSIENT },
	};

	if (st == CMK_KS_OK || st > CMK_KS_STATUS_MAX)
		return -EPROTO;
	e->cls = map[st].cls;
	if (st == CMK_KS_REVOKED)
		e->reason = CMK_R_DISABLED;
	return map[st].code;
}

/* One request, one answer. */
static int exchange(struct cmk_keyclient *kc, enum cmk_keysock_op op,
		    const unsigned char *ec, size_t ec_len,
		    const struct cmk_esdk_edk *edk_in,
		    struct cmk_secret **data_key, struct cmk_esdk_edk *edk_out,
		    enum cmk_keysock_status *stp, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *resp = NULL;
	enum cmk_keysock_status st = CMK_KS_INTERNAL;
	unsigned char *req = NULL, *p;
	size_t req_len, body;
	int ret;

	if (kc->fd < 0)
		return cmk_errf(e, -ENOTCONN, "key socket: not connected");
	ret = cmk_keysock_req_build(op, ec, ec_len, edk_in, &req, &req_len, e);
	if (ret)
		return ret;
	for (size_t off = 0; off < req_len;) {
		ssize_t n = send(kc->fd, req + off, req_len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : 0;

			/* Refused at connect: the agent's answer is waiting. */
			if (err == EPIPE || err == ECONNRESET)
				break;
			ret = io_err(kc, err, "sending the request", e);
			goto out;
		}
		off += (size_t)n;
	}
	/* The answer goes to locked memory: it holds the data key. */
	ret = cmk_secret_new(&resp, CMK_KEYSOCK_RESP_MAX, e);
	if (ret)
		goto out;
	p = cmk_secret_data(resp);
	ret = read_full(kc, p, CMK_KEYSOCK_HDR_LEN, e);
	if (ret)
		goto out;
	body = (size_t)(p[6] << 8 | p[7]);
	if (CMK_KEYSOCK_HDR_LEN + body > CMK_KEYSOCK_RESP_MAX) {
		ret = cmk_errf(e, -EBADMSG, "key socket %s: an answer of %zu bytes: not a dm-cmk agent?",
			       kc->path, CMK_KEYSOCK_HDR_LEN + body);
		goto out;
	}
	ret = read_full(kc, p + CMK_KEYSOCK_HDR_LEN, body, e);
	if (ret)
		goto out;
	ret = cmk_keysock_resp_parse(p, CMK_KEYSOCK_HDR_LEN + body, op, &st,
				     data_key, edk_out, e);
	if (ret == -EACCES)
		ret = refusal(st, e);
	if (stp)
		*stp = st;
out:
	free(req);
	return ret;
}

static int new_key(void *arg, const unsigned char *ec, size_t ec_len,
		   struct cmk_secret **data_key, struct cmk_esdk_edk *edk,
		   char key_name[CMK_ESDK_KEY_NAME_MAX], struct cmk_err *e)
{
	int ret = exchange(arg, CMK_KEYSOCK_NEW_DATA_KEY, ec, ec_len, NULL,
			   data_key, edk, NULL, e);

	if (!ret && cmk_esdk_edk_key_name(edk, key_name)) {
		cmk_secret_free(data_key);
		cmk_esdk_edk_free(edk);
		return cmk_errf(e, -EPROTO, "key socket: the agent's EDK names no dm-cmk key");
	}
	return ret;
}

static int open_edk(void *arg, const char *key_name,
		    const struct cmk_esdk_edk *edk,
		    const unsigned char *ec, size_t ec_len,
		    struct cmk_secret **data_key, struct cmk_err *e)
{
	struct cmk_keyclient *kc = arg;
	char path[sizeof(kc->path)];
	int ret;

	(void)key_name;
	/*
	 * "Unavailable, retry": the agent is unwrapping the retired KEK
	 * version this EDK names (it does that only when first asked), or
	 * unsealing again.  A few tries on a fresh connection, then its
	 * reason.
	 */
	for (unsigned int i = 0;; i++) {
		enum cmk_keysock_status st = CMK_KS_INTERNAL;

		ret = exchange(kc, CMK_KEYSOCK_OPEN_EDK, ec, ec_len, edk, data_key,
			       NULL, &st, e);
		if (ret != -EAGAIN || st != CMK_KS_UNAVAILABLE ||
		    i + 1 >= CMK_KEYCLIENT_RETRIES)
			return ret;
		usleep(CMK_KEYCLIENT_RETRY_MS * 1000);
		snprintf(path, sizeof(path), "%s", kc->path);
		cmk_keyclient_close(kc);
		ret = cmk_keyclient_connect(kc, path, e);
		if (ret)
			return ret;
	}
}

void cmk_keyclient_keygen(struct cmk_keyclient *kc, struct cmk_esdk_keygen *kg)
{
	kg->new_key = new_key;
	kg->arg = kc;
}

void cmk_keyclient_keysource(struct cmk_keyclient *kc,
			     struct cmk_esdk_keysource *src)
{
	memset(src, 0, sizeof(*src));
	src->unwrap = open_edk;
	src->arg = kc;
	src->holds = "the agent's KEK versions";
}
