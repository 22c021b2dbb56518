// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_genl.c - the netlink client's parsing of what the kernel sends:
 * the generic netlink controller's family answer (id, multicast groups),
 * ACKs and errors with extended ACK attributes, GET and dump replies, and
 * multicast events.
 *
 * The socket is the fuzzer's: libmnl's socket calls (and recv()) are
 * wrapped at link time, so genl.c runs unchanged and every datagram it
 * receives comes from the input.  Input: datagrams, each a 16-bit
 * little-endian length and that many bytes.  The harness opens a client
 * (the family lookup reads datagrams), runs GET, a dump, the epoch query,
 * KEY_SET, KEY_WIPE and LEASE_RENEW (each reads until its ACK, an error or
 * the input's end), then opens an events socket and reads events from
 * what is left.  Oracles: ASan/UBSan; every device and event handed to a
 * caller has NUL-terminated names, an event has a name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>

#include "core/secret.h"
#include "device/genl.h"
#include "fuzz.h"

struct mnl_socket *__wrap_mnl_socket_open(int bus);
int __wrap_mnl_socket_close(struct mnl_socket *nl);
int __wrap_mnl_socket_setsockopt(const struct mnl_socket *nl, int type,
				 void *buf, socklen_t len);
int __wrap_mnl_socket_bind(struct mnl_socket *nl, unsigned int groups,
			   pid_t pid);
unsigned int __wrap_mnl_socket_get_portid(const struct mnl_socket *nl);
int __wrap_mnl_socket_get_fd(const struct mnl_socket *nl);
ssize_t __wrap_mnl_socket_sendto(const struct mnl_socket *nl, const void *req,
				 size_t siz);
ssize_t __wrap_mnl_socket_recvfrom(const struct mnl_socket *nl, void *buf,
				   size_t siz);
ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags);

static char fake_sock;
static int null_fd = -1;
static const uint8_t *in;
static size_t in_left;

struct mnl_socket *__wrap_mnl_socket_open(int bus)
{
	(void)bus;
	return (struct mnl_socket *)&fake_sock;
}

int __wrap_mnl_socket_close(struct mnl_socket *nl)
{
	(void)nl;
	return 0;
}

int __wrap_mnl_socket_setsockopt(const struct mnl_socket *nl, int type,
				 void *buf, socklen_t len)
{
	(void)nl;
	(void)type;
	(void)buf;
	(void)len;
	return 0;
}

int __wrap_mnl_socket_bind(struct mnl_socket *nl, unsigned int groups,
			   pid_t pid)
{
	(void)nl;
	(void)groups;
	(void)pid;
	return 0;
}

unsigned int __wrap_mnl_socket_get_portid(const struct mnl_socket *nl)
{
	(void)nl;
	return 4242;
}

int __wrap_mnl_socket_get_fd(const struct mnl_socket *nl)
{
	(void)nl;
	if (null_fd < 0)
		null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return null_fd;
}

ssize_t __wrap_mnl_socket_sendto(const struct mnl_socket *nl, const void *req,
				 size_t siz)
{
	(void)nl;
	(void)req;
	return (ssize_t)siz;
}

/*
 * The kernel frames what it sends: every message's nlmsg_len lies within
 * its datagram.  Keep that promise (libmnl relies on it: a length of 2^31
 * or more walks its loop out of the buffer), and fuzz what is inside.
 */
static void frame(uint8_t *buf, size_t n)
{
	while (n >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr h;

		memcpy(&h, buf, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > n) {
			h.nlmsg_len = (uint32_t)n;
			memcpy(buf, &h, sizeof(h));
		}
		if (NLMSG_ALIGN(h.nlmsg_len) >= n)
			break;
		buf += NLMSG_ALIGN(h.nlmsg_len);
		n -= NLMSG_ALIGN(h.nlmsg_len);
	}
}

/* The next datagram, cut to @siz as the kernel does (MSG_TRUNC). */
static ssize_t next_datagram(void *buf, size_t siz, int err)
{
	size_t n;

	if (in_left < 2) {
		errno = err;
		return -1;
	}
	n = (size_t)in[0] | (size_t)in[1] << 8;
	in += 2;
	in_left -= 2;
	if (n > in_left)
		n = in_left;
	memcpy(buf, in, n < siz ? n : siz);
	frame(buf, n < siz ? n : siz);
	in += n;
	in_left -= n;
	return (ssize_t)(n < siz ? n : siz);
}

ssize_t __wrap_mnl_socket_recvfrom(const struct mnl_socket *nl, void *buf,
				   size_t siz)
{
	(void)nl;
	/* A blocking socket with nothing more: as if the kernel went away. */
	return next_datagram(buf, siz, ECONNRESET);
}

ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags)
{
	(void)fd;
	(void)flags;
	return next_datagram(buf, len, EAGAIN);
}

static void check_info(const struct cmk_dev_info *info)
{
	if (strnlen(info->name, sizeof(info->name)) == sizeof(info->name) ||
	    strnlen(info->device, sizeof(info->device)) == sizeof(info->device))
		abort();
}

static int on_dev(const struct cmk_dev_info *info, void *arg)
{
	check_info(info);
	++*(unsigned int *)arg;
	return 0;
}

static void on_event(const struct cmk_event *ev, void *arg)
{
	check_info(&ev->info);
	if (!ev->info.name[0])
		abort();
	++*(unsigned int *)arg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmk_genl *g = NULL;
	struct cmk_secret *key = NULL;
	struct cmk_dev_info info;
	unsigned int n = 0;
	uint32_t epoch;
	struct cmk_err e;

	in = data;
	in_left = size;
	if (cmk_genl_open(&g, &e) == 0) {
		cmk_genl_get(g, "fuzz", &info, &e);
		check_info(&info);
		cmk_genl_dump(g, on_dev, &n, &e);
		cmk_genl_epoch(g, &epoch, &e);
		if (cmk_secret_new(&key, 64, &e))
			abort();
		cmk_genl_set_epoch(g, 7);
		cmk_genl_key_set(g, "fuzz", key, 1, 30000, &e);
		cmk_secret_free(&key);
		cmk_genl_key_wipe(g, "fuzz", DM_CMK_REASON_REVOKED, &e);
		cmk_genl_lease_renew(g, "fuzz", 30000, &e);
		cmk_genl_close(&g);
	}
	if (cmk_genl_events_open(&g, &e) == 0) {
		cmk_genl_events_read(g, on_event, &n, &e);
		cmk_genl_close(&g);
	}
	in = NULL;
	in_left = 0;
	return 0;
}
