// SPDX-License-Identifier: GPL-2.0
/*
 * test_genl.c - the netlink client (genl.c) reading what a kernel sends,
 * against a fake kernel: libmnl's socket calls are wrapped, and each
 * receive takes the next datagram of a script.
 *
 * Oracle: netlink(7) and the kernel's netlink_ack(): an error ACK carries
 * the request's header (NLM_F_CAPPED) or the whole request, then, with
 * NLM_F_ACK_TLVS, extended-ACK attributes.  Whatever the lengths inside
 * say, the client reads nothing outside the message it received (ASan
 * and the guard of the receive buffer's end would catch it), reports the
 * kernel's errno (a negative one; anything else is -EPROTO), and takes
 * an extended-ACK message only from within the message.
 */
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "device/genl.h"

#define FAMILY	0x1c

struct mnl_socket *__wrap_mnl_socket_open(int bus);
int __wrap_mnl_socket_close(struct mnl_socket *nl);
int __wrap_mnl_socket_setsockopt(const struct mnl_socket *nl, int type,
				 void *buf, socklen_t len);
int __wrap_mnl_socket_bind(struct mnl_socket *nl, unsigned int groups,
			   pid_t pid);
unsigned int __wrap_mnl_socket_get_portid(const struct mnl_socket *nl);
ssize_t __wrap_mnl_socket_sendto(const struct mnl_socket *nl, const void *req,
				 size_t siz);
ssize_t __wrap_mnl_socket_recvfrom(const struct mnl_socket *nl, void *buf,
				   size_t siz);

static char fake_sock;
/* The script: datagrams, each received once, in order. */
static struct {
	unsigned char b[512];
	size_t n;
} script[4];
static size_t n_script, next_dgram;

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

ssize_t __wrap_mnl_socket_sendto(const struct mnl_socket *nl, const void *req,
				 size_t siz)
{
	(void)nl;
	(void)req;
	return (ssize_t)siz;
}

ssize_t __wrap_mnl_socket_recvfrom(const struct mnl_socket *nl, void *buf,
				   size_t siz)
{
	(void)nl;
	if (next_dgram >= n_script) {
		errno = ECONNRESET;
		return -1;
	}
	assert_true(script[next_dgram].n <= siz);
	memcpy(buf, script[next_dgram].b, script[next_dgram].n);
	return (ssize_t)script[next_dgram++].n;
}

/* The controller's answer for "dm-cmk", then its ACK: one datagram. */
static void script_family(void)
{
	char *b = (char *)script[n_script].b;
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(b), *ack;
	struct genlmsghdr *gh = mnl_nlmsg_put_extra_header(nlh, sizeof(*gh));
	struct nlmsgerr *err;

	nlh->nlmsg_type = GENL_ID_CTRL;
	gh->cmd = CTRL_CMD_NEWFAMILY;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, DM_CMK_GENL_NAME);
	mnl_attr_put_u16(nlh, CTRL_ATTR_FAMILY_ID, FAMILY);
	ack = mnl_nlmsg_put_header(b + nlh->nlmsg_len);
	ack->nlmsg_type = NLMSG_ERROR;
	err = mnl_nlmsg_put_extra_header(ack, sizeof(*err));
	err->error = 0;
	script[n_script++].n = nlh->nlmsg_len + ack->nlmsg_len;
}

/*
 * An error ACK for a request, uncapped (the whole request echoed: @echoed
 * bytes of it follow the header copy), whose copied header says the
 * request was @claimed bytes long; then the extended-ACK message @msg.
 */
static void script_error(int error, uint32_t claimed, size_t echoed,
			 const char *msg)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(script[n_script].b);
	struct nlmsgerr *err;

	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_flags = NLM_F_ACK_TLVS;
	err = mnl_nlmsg_put_extra_header(nlh, sizeof(*err) + echoed);
	err->error = error;
	err->msg.nlmsg_len = claimed;
	err->msg.nlmsg_type = FAMILY;
	mnl_attr_put_strz(nlh, NLMSGERR_ATTR_MSG, msg);
	script[n_script++].n = nlh->nlmsg_len;
}

static struct cmk_genl *open_fake(void)
{
	struct cmk_genl *g = NULL;
	struct cmk_err e;

	n_script = next_dgram = 0;
	memset(script, 0, sizeof(script));
	script_family();
	assert_int_equal(cmk_genl_open(&g, &e), 0);
	return g;
}

/* The well-formed case first: the request echoed, the message after it. */
static void genl_error_ack_uncapped_message_read(void **state)
{
	struct cmk_genl *g = open_fake();
	struct cmk_err e;

	(void)state;
	script_error(-EPERM, sizeof(struct nlmsghdr) + 8, 8, "not allowed here");
	assert_int_equal(cmk_genl_key_wipe(g, "d1", DM_CMK_REASON_REQUESTED, &e), -EPERM);
	assert_contains(e.msg, "not allowed here");
	cmk_genl_close(&g);
}

/*
 * An error ACK whose echoed request is said to be longer than the whole
 * message (2.6 GB, as the fuzzer sent): skipping it would point the
 * attribute walk far past the message.  The errno is still the answer;
 * no message is taken from outside.
 */
static void genl_fuzz_error_ack_echo_longer_than_message(void **state)
{
	struct cmk_genl *g = open_fake();
	struct cmk_err e;

	(void)state;
	script_error(-EPERM, 0x9d001000, 8, "beyond");
	assert_int_equal(cmk_genl_key_wipe(g, "d1", DM_CMK_REASON_REQUESTED, &e), -EPERM);
	assert_null(strstr(e.msg, "beyond"));
	cmk_genl_close(&g);
}

/* Shorter than a header: the length does not wrap to a small offset. */
static void genl_fuzz_error_ack_echo_shorter_than_header(void **state)
{
	struct cmk_genl *g = open_fake();
	struct cmk_err e;

	(void)state;
	script_error(-ENODEV, 4, 8, "short");
	assert_int_equal(cmk_genl_key_wipe(g, "d1", DM_CMK_REASON_REQUESTED, &e), -ENODEV);
	assert_null(strstr(e.msg, "short"));
	cmk_genl_close(&g);
}

/*
 * The error field is a negative errno.  Another value (positive, as the
 * fuzzer sent, or INT_MIN, whose negation overflows) is no errno to
 * report: -EPROTO, never a positive "error" a caller could take for a
 * count or success.
 */
static void genl_fuzz_error_ack_error_not_errno(void **state)
{
	static const int bad[] = { 28416, INT_MIN, -5000 };
	struct cmk_err e;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cmk_genl *g = open_fake();

		script_error(bad[i], sizeof(struct nlmsghdr), 0, "odd");
		assert_int_equal(cmk_genl_key_wipe(g, "d1", DM_CMK_REASON_REQUESTED, &e),
				 -EPROTO);
		cmk_genl_close(&g);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(genl_error_ack_uncapped_message_read),
		cmocka_unit_test(genl_fuzz_error_ack_echo_longer_than_message),
		cmocka_unit_test(genl_fuzz_error_ack_echo_shorter_than_header),
		cmocka_unit_test(genl_fuzz_error_ack_error_not_errno),
	};

	return cmocka_run_group_tests_name("genl", tests, NULL, NULL);
}
