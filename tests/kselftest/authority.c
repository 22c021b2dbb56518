// SPDX-License-Identifier: GPL-2.0
/*
 * authority - who may touch a key, and which key a device takes.
 *
 * Capabilities.  Oracle: the contract in include/uapi/linux/dm-cmk.h.
 * KEY_SET, KEY_WIPE, LEASE_RENEW (one or all) and joining the "events"
 * group need CAP_SYS_ADMIN in the initial user namespace, as creating the
 * device did; GET needs CAP_NET_ADMIN.  A forked child drops capabilities
 * (capset) or enters a new user namespace, opens its own socket (or keeps
 * one opened before), and tries; a refused attempt must leave the device
 * exactly as it was (state, generation, lease, data).  Positive controls
 * drop only CAP_NET_ADMIN (key commands still work) or only CAP_SYS_ADMIN
 * (GET still works), so a refusal is due to the missing capability and
 * not to how the child was set up.
 *
 * Binding.  Oracle: the data.  A device takes the first key it is given
 * and no other: another key is refused with EKEYREJECTED (with a reason,
 * an event and a counter), whether the device is active or wiped, while
 * reads under the right key keep returning the right data; the same key
 * again is accepted; only a new table takes a new key.  A request with
 * two KEY attributes is refused.
 */
#include "cmk_test.h"

#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>

#define DM_NAME		CMK_DM_PREFIX "auth"
#define KEY_NAME	"auth-key"
#define GEN		5

FIXTURE(authority) {
	struct cmk_nl nl;
	uint8_t key[DM_CMK_KEY_LEN];
	uint8_t other[DM_CMK_KEY_LEN];
	char path[128];
	unsigned char data[65536];
	struct cmk_table t;
};

FIXTURE_SETUP(authority)
{
	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	self->t = (struct cmk_table){
		.len = 8192, .key_name = KEY_NAME, .dev = CMK_RAM(0),
		.opts = "hold_ms:0",
	};
	cmk_key_make(self->key, 51);
	cmk_key_make(self->other, 53);
	ASSERT_CMK_CREATE(DM_NAME, &self->t);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, GEN);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
	cmk_fill(self->data, sizeof(self->data), 52);
	ASSERT_EQ(0, cmk_dev_write(self->path, self->data, sizeof(self->data),
				   0, true));
}

FIXTURE_TEARDOWN(authority)
{
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
}

static int count_cb(const struct cmk_info *info, void *arg)
{
	(void)info;
	(*(int *)arg)++;
	return 0;
}

/* How the child is made less privileged before it tries. */
enum setup {
	DROP_CAPS,		/* capset: drop the given capabilities */
	USERNS_OLD_SOCKET,	/* open a socket, then enter a user namespace */
	USERNS_NETNS,		/* enter a user and a network namespace */
};

/*
 * In a child set up as @how (dropping @drop for DROP_CAPS), send @req (or,
 * if @req is NULL, join the "events" group); return its result (0 or
 * -errno) or a value >= 1000 if the child could not be set up.
 */
static int run_as(enum setup how, const struct cmk_req *req, const int *drop,
		  int ndrop)
{
	int pipefd[2], res = 1000, status;
	pid_t pid;

	if (pipe(pipefd))
		return 1001;
	pid = fork();
	if (pid < 0)
		return 1002;
	if (pid == 0) {
		struct cmk_nl nl;
		int r = 0, n = 0;

		close(pipefd[0]);
		switch (how) {
		case DROP_CAPS:
			r = cmk_drop_caps(drop, ndrop) ? 1003 : 0;
			if (!r)
				r = cmk_nl_open(&nl) ? 1004 : 0;
			break;
		case USERNS_OLD_SOCKET:
			r = cmk_nl_open(&nl) ? 1004 : 0;
			if (!r && unshare(CLONE_NEWUSER))
				r = 1005;
			break;
		case USERNS_NETNS:
			if (unshare(CLONE_NEWUSER | CLONE_NEWNET))
				r = 1005;
			/* The family is not there: that is a refusal too. */
			if (!r)
				r = cmk_nl_open(&nl);
			break;
		}
		if (!r) {
			r = req ? cmk_nl_request(&nl, req, count_cb, &n, NULL, 0) :
				  cmk_nl_subscribe(&nl);
			cmk_nl_close(&nl);
		}
		if (write(pipefd[1], &r, sizeof(r)) != sizeof(r))
			_exit(1);
		_exit(0);
	}
	close(pipefd[1]);
	if (read(pipefd[0], &res, sizeof(res)) != sizeof(res))
		res = 1006;
	close(pipefd[0]);
	waitpid(pid, &status, 0);
	return res;
}

static int run_without(const struct cmk_req *req, const int *drop, int ndrop)
{
	return run_as(DROP_CAPS, req, drop, ndrop);
}

static const int no_sys_admin[] = { CAP_SYS_ADMIN };
static const int no_net_admin[] = { CAP_NET_ADMIN };
static const int no_admin[] = { CAP_NET_ADMIN, CAP_SYS_ADMIN };

/* The device is untouched: still active, same generation, lease, data. */
static void expect_unchanged(struct __test_metadata *_metadata,
			     FIXTURE_DATA(authority) *self)
{
	unsigned char back[sizeof(self->data)];
	struct cmk_info in;

	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ((uint32_t)DM_CMK_STATE_ACTIVE, in.state);
	EXPECT_EQ((uint64_t)GEN, in.generation);
	ASSERT_TRUE(in.has_lease_left);
	EXPECT_LT((uint32_t)CMK_LEASE_LONG / 2, in.lease_left_ms)
		TH_LOG("the lease was changed to %u ms", in.lease_left_ms);
	ASSERT_EQ(0, cmk_dev_read(self->path, back, sizeof(back), 0, true));
	EXPECT_EQ(0, memcmp(back, self->data, sizeof(back)));
}

/* The requests every "may not" test tries. */
static void key_requests(FIXTURE_DATA(authority) *self, struct cmk_req r[5])
{
	r[0] = (struct cmk_req){
		.cmd = DM_CMK_CMD_KEY_SET, .name = KEY_NAME, .key = self->key,
		.key_len = DM_CMK_KEY_LEN, .has_lease = true,
		.lease_ms = 1000, .has_generation = true, .generation = 99,
	};
	r[1] = (struct cmk_req){ .cmd = DM_CMK_CMD_KEY_WIPE, .name = KEY_NAME };
	r[2] = (struct cmk_req){ .cmd = DM_CMK_CMD_KEY_WIPE, .has_flags = true,
				 .flags = DM_CMK_F_ALL };
	r[3] = (struct cmk_req){ .cmd = DM_CMK_CMD_LEASE_RENEW, .name = KEY_NAME,
				 .has_lease = true, .lease_ms = 1000 };
	r[4] = (struct cmk_req){ .cmd = DM_CMK_CMD_LEASE_RENEW,
				 .has_flags = true, .flags = DM_CMK_F_ALL,
				 .has_lease = true, .lease_ms = 1000 };
}

static const char *request_name(int i)
{
	static const char *const names[] = {
		"KEY_SET", "KEY_WIPE", "KEY_WIPE ALL", "LEASE_RENEW",
		"LEASE_RENEW ALL",
	};

	return i >= 0 && i < 5 ? names[i] : "?";
}

/* A network daemon or host-network container: CAP_NET_ADMIN only. */
TEST_F(authority, net_admin_without_sys_admin_changes_no_key)
{
	struct cmk_req r[5];
	int i;

	key_requests(self, r);
	for (i = 0; i < 5; i++)
		EXPECT_EQ(-EPERM, run_without(&r[i], no_sys_admin, 1))
			TH_LOG("%s with CAP_NET_ADMIN only", request_name(i));
	expect_unchanged(_metadata, self);
}

TEST_F(authority, net_admin_without_sys_admin_gets_no_events)
{
	EXPECT_EQ(-EPERM, run_without(NULL, no_sys_admin, 1));
}

/* GET stays with CAP_NET_ADMIN: monitoring needs no key authority. */
TEST_F(authority, net_admin_without_sys_admin_may_get)
{
	struct cmk_req get = { .cmd = DM_CMK_CMD_GET, .name = KEY_NAME };
	struct cmk_req dump = { .cmd = DM_CMK_CMD_GET, .dump = true };

	EXPECT_EQ(0, run_without(&get, no_sys_admin, 1));
	EXPECT_EQ(0, run_without(&dump, no_sys_admin, 1));
}

TEST_F(authority, no_admin_caps_may_do_nothing)
{
	struct cmk_req get = { .cmd = DM_CMK_CMD_GET, .name = KEY_NAME };
	struct cmk_req dump = { .cmd = DM_CMK_CMD_GET, .dump = true };
	struct cmk_req r[5];
	int i;

	key_requests(self, r);
	for (i = 0; i < 5; i++)
		EXPECT_EQ(-EPERM, run_without(&r[i], no_admin, 2))
			TH_LOG("%s without admin capabilities", request_name(i));
	EXPECT_EQ(-EPERM, run_without(&get, no_admin, 2));
	EXPECT_EQ(-EPERM, run_without(&dump, no_admin, 2));
	EXPECT_EQ(-EPERM, run_without(NULL, no_admin, 2));
	expect_unchanged(_metadata, self);
}

/*
 * Positive control: CAP_SYS_ADMIN without CAP_NET_ADMIN may change keys
 * (the same key again, a renewal, a wipe) and join the events group.
 */
TEST_F(authority, sys_admin_without_net_admin_changes_keys)
{
	struct cmk_req set = {
		.cmd = DM_CMK_CMD_KEY_SET, .name = KEY_NAME, .key = self->key,
		.key_len = DM_CMK_KEY_LEN, .has_lease = true,
		.lease_ms = CMK_LEASE_LONG, .has_generation = true,
		.generation = GEN,
	};
	struct cmk_req renew = { .cmd = DM_CMK_CMD_LEASE_RENEW,
				 .name = KEY_NAME, .has_lease = true,
				 .lease_ms = CMK_LEASE_LONG };
	struct cmk_req wipe = { .cmd = DM_CMK_CMD_KEY_WIPE, .name = KEY_NAME };

	EXPECT_EQ(0, run_without(&set, no_net_admin, 1));
	EXPECT_EQ(0, run_without(&renew, no_net_admin, 1));
	EXPECT_EQ(0, run_without(NULL, no_net_admin, 1));
	expect_unchanged(_metadata, self);
	EXPECT_EQ(0, run_without(&wipe, no_net_admin, 1));
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_WIPED);
}

/*
 * Root of a new user namespace has every capability there, but none in
 * the initial one: refused, even on a socket opened before the unshare
 * (whose opener was privileged).
 */
TEST_F(authority, userns_root_changes_no_key)
{
	struct cmk_req r[5];
	int i;

	key_requests(self, r);
	for (i = 0; i < 5; i++)
		EXPECT_EQ(-EPERM, run_as(USERNS_OLD_SOCKET, &r[i], NULL, 0))
			TH_LOG("%s from a user namespace", request_name(i));
	EXPECT_EQ(-EPERM, run_as(USERNS_OLD_SOCKET, NULL, NULL, 0));
	expect_unchanged(_metadata, self);
}

/* In its own network namespace, the family does not even exist. */
TEST_F(authority, userns_netns_root_cannot_reach_family)
{
	struct cmk_req r[5];
	int i, ret;

	key_requests(self, r);
	for (i = 0; i < 5; i++) {
		ret = run_as(USERNS_NETNS, &r[i], NULL, 0);
		EXPECT_TRUE(ret == -ENOENT || ret == -EPERM)
			TH_LOG("%s from a user+net namespace: %d (%s)",
			       request_name(i), ret,
			       ret < 0 ? strerror(-ret) : "setup failed");
	}
	expect_unchanged(_metadata, self);
}

/* ---- binding --------------------------------------------------------- */

static void expect_rejected(struct __test_metadata *_metadata,
			    FIXTURE_DATA(authority) *self, uint64_t rejected)
{
	struct cmk_status st;
	struct cmk_info in;
	char ext[256] = "";
	int ret;

	ret = cmk_key_set(&self->nl, KEY_NAME, self->other, CMK_LEASE_LONG, 77,
			  ext, sizeof(ext));
	EXPECT_EQ(-EKEYREJECTED, ret)
		TH_LOG("KEY_SET of another key: %s (%s)", strerror(-ret), ext);
	EXPECT_TRUE(cmk_contains_any(ext, "bound"))
		TH_LOG("extack does not say why: '%s'", ext);
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_TRUE(in.bound);
	EXPECT_EQ(rejected, in.rejected);
	EXPECT_NE(77U, in.generation);
	ASSERT_EQ(0, cmk_dm_status_get(DM_NAME, &st));
	EXPECT_EQ(rejected, st.rejected);
}

TEST_F(authority, bound_device_rejects_other_key_while_active)
{
	struct cmk_nl ev;
	struct cmk_info in;

	ASSERT_NL_OPEN(&ev);
	ASSERT_EQ(0, cmk_nl_subscribe(&ev));
	expect_rejected(_metadata, self, 1);
	ASSERT_EQ(0, cmk_nl_wait_event(&ev, KEY_NAME,
				       DM_CMK_EVENT_KEY_REJECTED, 10000, &in))
		TH_LOG("no KEY_REJECTED event");
	EXPECT_EQ((uint32_t)DM_CMK_STATE_ACTIVE, in.state);
	cmk_nl_close(&ev);
	/* the right key is still the one in use */
	expect_unchanged(_metadata, self);
}

TEST_F(authority, bound_device_rejects_other_key_after_wipe)
{
	unsigned char back[sizeof(self->data)];

	ASSERT_KEY_WIPE(&self->nl, KEY_NAME);
	expect_rejected(_metadata, self, 1);
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_WIPED);
	/* the same key again is how a wiped device comes back */
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, GEN);
	ASSERT_EQ(0, cmk_dev_read(self->path, back, sizeof(back), 0, true));
	EXPECT_EQ(0, memcmp(back, self->data, sizeof(back)));
	expect_rejected(_metadata, self, 2);
	expect_unchanged(_metadata, self);
}

struct reader {
	const char *path;
	const unsigned char *data;
	size_t len;
	volatile bool stop;
	unsigned long reads, bad, errors;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	unsigned char *buf = cmk_alloc(r->len);
	int fd = cmk_open(r->path, true);

	if (!buf || fd < 0) {
		r->errors++;
		free(buf);
		return NULL;
	}
	while (!r->stop) {
		if (cmk_pread(fd, buf, r->len, 0)) {
			r->errors++;
			continue;
		}
		r->reads++;
		r->bad += !!memcmp(buf, r->data, r->len);
	}
	close(fd);
	free(buf);
	return NULL;
}

/*
 * The silent corruption the binding prevents: readers in flight while
 * someone pushes another key.  Every read returns the written data.
 */
TEST_F_TIMEOUT(authority, other_key_under_reads_never_corrupts, 120)
{
	struct reader rd = { .path = self->path, .data = self->data,
			     .len = sizeof(self->data) };
	pthread_t th;
	int i, refused = 0;

	ASSERT_EQ(0, pthread_create(&th, NULL, reader_main, &rd));
	for (i = 0; i < 200; i++)
		refused += cmk_key_set(&self->nl, KEY_NAME, self->other,
				       CMK_LEASE_LONG, 100 + i, NULL, 0) ==
			   -EKEYREJECTED;
	cmk_sleep_ms(200);
	rd.stop = true;
	pthread_join(th, NULL);
	TH_LOG("%lu reads during 200 KEY_SETs of another key", rd.reads);
	EXPECT_EQ(200, refused);
	EXPECT_LT(0UL, rd.reads);
	EXPECT_EQ(0UL, rd.errors);
	EXPECT_EQ(0UL, rd.bad) TH_LOG("%lu reads returned other data", rd.bad);
	expect_unchanged(_metadata, self);
}

TEST_F(authority, duplicate_key_attributes_refused)
{
	struct cmk_req r = {
		.cmd = DM_CMK_CMD_KEY_SET, .name = KEY_NAME, .key = self->key,
		.key_len = DM_CMK_KEY_LEN, .key2 = self->key, .has_lease = true,
		.lease_ms = 1000, .has_generation = true, .generation = 98,
	};
	char ext[256] = "";

	EXPECT_EQ(-EINVAL, cmk_nl_request(&self->nl, &r, NULL, NULL, ext,
					  sizeof(ext)));
	EXPECT_TRUE(cmk_contains_any(ext, "more than once")) TH_LOG("'%s'", ext);
	r.key2 = self->other;
	EXPECT_EQ(-EINVAL, cmk_nl_request(&self->nl, &r, NULL, NULL, ext,
					  sizeof(ext)));
	expect_unchanged(_metadata, self);
}

/* Only a new table takes a new key: remove and create, or a new name. */
TEST_F(authority, new_table_takes_new_key)
{
	struct cmk_table t = self->t;
	char line[512], out[1024];
	struct cmk_info in;

	ASSERT_DM_REMOVE(DM_NAME);
	ASSERT_CMK_CREATE(DM_NAME, &self->t);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->other, CMK_LEASE_LONG, 2);

	t.key_name = KEY_NAME "-2";
	cmk_table_cmk(line, sizeof(line), &t);
	ASSERT_EQ(0, cmk_dm_reload(DM_NAME, line, out, sizeof(out)))
		TH_LOG("reload: %s", out);
	ASSERT_EQ(0, cmk_dm_resume(DM_NAME));
	ASSERT_KEY_SET(&self->nl, t.key_name, self->key, CMK_LEASE_LONG, 3);
	EXPECT_EQ(-ENODEV, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
}

/* KEY belongs in KEY_SET: any other command that carries one is refused. */
TEST_F(authority, key_attribute_only_in_key_set)
{
	struct cmk_req r[4] = {
		{ .cmd = DM_CMK_CMD_KEY_WIPE, .name = KEY_NAME },
		{ .cmd = DM_CMK_CMD_LEASE_RENEW, .name = KEY_NAME,
		  .has_lease = true, .lease_ms = CMK_LEASE_LONG },
		{ .cmd = DM_CMK_CMD_GET, .name = KEY_NAME },
		{ .cmd = DM_CMK_CMD_GET, .dump = true },
	};
	char ext[256];
	int i, n;

	for (i = 0; i < 4; i++) {
		r[i].key = self->other;
		r[i].key_len = DM_CMK_KEY_LEN;
		ext[0] = '\0';
		n = 0;
		EXPECT_EQ(-EINVAL, cmk_nl_request(&self->nl, &r[i], count_cb, &n,
						  ext, sizeof(ext)))
			TH_LOG("command %d with a KEY attribute was accepted", i);
		/* a dump's start gets no extended ack back on 6.1 */
		if (!r[i].dump)
			EXPECT_TRUE(cmk_contains_any(ext, "KEY_SET only"))
				TH_LOG("command %d: '%s'", i, ext);
	}
	expect_unchanged(_metadata, self);
}

/*
 * Re-sending the bound key (with a new lease) under I/O never fails I/O,
 * even without a hold (the fixture's hold_ms:0): a reader that finds the
 * old key object retired retries with the new one.
 */
TEST_F_TIMEOUT(authority, same_key_again_under_reads_never_fails, 120)
{
	struct reader rd = { .path = self->path, .data = self->data,
			     .len = sizeof(self->data) };
	pthread_t th;
	int i, ok = 0;

	ASSERT_EQ(0, pthread_create(&th, NULL, reader_main, &rd));
	for (i = 0; i < 200; i++)
		ok += !cmk_key_set(&self->nl, KEY_NAME, self->key,
				   CMK_LEASE_LONG, GEN, NULL, 0);
	cmk_sleep_ms(200);
	rd.stop = true;
	pthread_join(th, NULL);
	TH_LOG("%lu reads during 200 KEY_SETs of the same key", rd.reads);
	EXPECT_EQ(200, ok);
	EXPECT_LT(0UL, rd.reads);
	EXPECT_EQ(0UL, rd.errors) TH_LOG("%lu reads failed", rd.errors);
	EXPECT_EQ(0UL, rd.bad);
}

/* No device takes a key another device is bound to. */
TEST_F(authority, key_of_another_device_rejected)
{
	struct cmk_table t = self->t;
	char ext[256] = "";
	int ret;

	t.key_name = KEY_NAME "-b";
	t.dev = CMK_RAM(1);
	ASSERT_CMK_CREATE(DM_NAME "-b", &t);
	ret = cmk_key_set(&self->nl, t.key_name, self->key, CMK_LEASE_LONG, 1,
			  ext, sizeof(ext));
	EXPECT_EQ(-EKEYREJECTED, ret) TH_LOG("%s (%s)", strerror(-ret), ext);
	ASSERT_STATE(&self->nl, t.key_name, DM_CMK_STATE_SEALED);
	/* its own key is fine */
	ASSERT_KEY_SET(&self->nl, t.key_name, self->other, CMK_LEASE_LONG, 1);
	ASSERT_DM_REMOVE(DM_NAME "-b");
	expect_unchanged(_metadata, self);
}

/* A key unsealed before a VM fork (an older epoch) is refused. */
TEST_F(authority, key_set_of_another_epoch_rejected)
{
	struct cmk_req r = {
		.cmd = DM_CMK_CMD_KEY_SET, .name = KEY_NAME, .key = self->key,
		.key_len = DM_CMK_KEY_LEN, .has_lease = true,
		.lease_ms = CMK_LEASE_LONG, .has_generation = true,
		.generation = GEN, .has_epoch = true,
	};
	struct cmk_info in;
	char ext[256] = "";

	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	ASSERT_TRUE(in.has_epoch);
	r.epoch = in.epoch + 1;
	EXPECT_EQ(-ESTALE, cmk_nl_request(&self->nl, &r, NULL, NULL, ext,
					  sizeof(ext)))
		TH_LOG("'%s'", ext);
	EXPECT_TRUE(cmk_contains_any(ext, "forked")) TH_LOG("'%s'", ext);
	r.epoch = in.epoch;
	EXPECT_EQ(0, cmk_nl_request(&self->nl, &r, NULL, NULL, ext,
				    sizeof(ext)))
		TH_LOG("'%s'", ext);
	expect_unchanged(_metadata, self);
}

TEST_HARNESS_MAIN
