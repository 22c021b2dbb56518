// SPDX-License-Identifier: GPL-2.0
/*
 * fault_event - an event dm-cmk cannot allocate is not lost unawares.
 *
 * A KEY_SET allocates nothing under dm-cmk but its KEY_INSTALLED event
 * (the fault_alloc sweep shows it: every failure injected there leaves the
 * KEY_SET successful).  cmk-agent learns of wipes and installs from these
 * events and, after a socket overrun (ENOBUFS), reads every device's
 * state again.  So when the event cannot be built, every listener must
 * get ENOBUFS instead, as on an overrun.
 *
 * Oracle: failslab (debug kernel, CONFIG_FAULT_INJECTION_STACKTRACE_FILTER)
 * aimed at dm-cmk's text fails the first allocation of a KEY_SET on a
 * sealed device; the KEY_SET succeeds, and a subscribed listener receives
 * either the KEY_INSTALLED event or ENOBUFS, never nothing.  Without the
 * knobs (a stock kernel) the test skips.
 */
#include "cmk_test.h"

#include <fcntl.h>
#include <inttypes.h>

#define DM_NAME		CMK_DM_PREFIX "fevent"
#define KEY_NAME	"fevent-key"
#define FI		"/sys/kernel/debug/failslab/"

static int fi_write(const char *knob, const char *val)
{
	char path[128];
	int fd, err = 0;

	snprintf(path, sizeof(path), FI "%s", knob);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		err = -errno;
	close(fd);
	return err;
}

static long long fi_read(const char *knob)
{
	char path[128], buf[32] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), FI "%s", knob);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtoll(buf, NULL, 0) : -1;
}

/* dm-cmk's text, from /proc/kallsyms, as in fault_alloc. */
static int cmk_text_range(uint64_t *start, uint64_t *end)
{
	FILE *f = fopen("/proc/kallsyms", "re");
	char line[512];

	*start = UINT64_MAX;
	*end = 0;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a;
		char type;

		if (!strstr(line, "[dm_cmk]") ||
		    sscanf(line, "%llx %c", &a, &type) != 2 || !a ||
		    (type != 't' && type != 'T'))
			continue;
		if (a < *start)
			*start = a;
		if (a > *end)
			*end = a;
	}
	fclose(f);
	if (*start == UINT64_MAX)
		return -ENOENT;
	*end = (*end | 4095) + 4096 + 1;
	return 0;
}

/* The first allocation with dm-cmk on its stack fails, once. */
static int fi_arm(void)
{
	uint64_t s, e;
	char b[32];
	int err;

	err = cmk_text_range(&s, &e);
	err = err ?: fi_write("probability", "0");
	err = err ?: fi_write("task-filter", "N");
	err = err ?: fi_write("verbose", "1");
	err = err ?: fi_write("interval", "1");
	err = err ?: fi_write("ignore-gfp-wait", "N");
	err = err ?: fi_write("stacktrace-depth", "32");
	snprintf(b, sizeof(b), "0x%" PRIx64, s);
	err = err ?: fi_write("require-start", b);
	snprintf(b, sizeof(b), "0x%" PRIx64, e);
	err = err ?: fi_write("require-end", b);
	err = err ?: fi_write("reject-start", "0");
	err = err ?: fi_write("reject-end", "0");
	err = err ?: fi_write("space", "0");
	err = err ?: fi_write("times", "1");
	err = err ?: fi_write("probability", "100");
	return err;
}

static void fi_disarm(void)
{
	fi_write("probability", "0");
	fi_write("times", "0");
	fi_write("verbose", "0");
}

FIXTURE(fault_event) {
	struct cmk_nl nl, ev;
	uint8_t key[DM_CMK_KEY_LEN];
};

FIXTURE_SETUP(fault_event)
{
	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	ASSERT_NL_OPEN(&self->ev);
	cmk_key_make(self->key, 181);
}

FIXTURE_TEARDOWN(fault_event)
{
	fi_disarm();
	cmk_nl_close(&self->ev);
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
}

TEST_F_TIMEOUT(fault_event, fault_event_lost_gives_listeners_enobufs, 300)
{
	struct cmk_table t = {
		.len = 8192, .key_name = KEY_NAME, .dev = CMK_RAM(0),
	};
	struct cmk_info in;
	char ext[256];
	int ret, got;

	if (access(FI "require-start", W_OK))
		SKIP(return, "no " FI "require-start (debug kernel only)");
	ASSERT_CMK_CREATE(DM_NAME, &t);
	ASSERT_EQ(0, cmk_nl_subscribe(&self->ev));

	ASSERT_EQ(0, fi_arm());
	ret = cmk_key_set(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1,
			  ext, sizeof(ext));
	ASSERT_EQ(0, fi_read("times")) TH_LOG("no failure was injected");
	fi_disarm();
	ASSERT_EQ(0, ret) TH_LOG("KEY_SET: %s (%s)", strerror(-ret), ext);
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_ACTIVE);

	got = cmk_nl_wait_event(&self->ev, KEY_NAME,
				DM_CMK_EVENT_KEY_INSTALLED, 5000, &in);
	TH_LOG("listener: %s", got ? strerror(-got) : "KEY_INSTALLED");
	EXPECT_TRUE(got == 0 || got == -ENOBUFS)
		TH_LOG("the event was lost and the listener was not told");
}

TEST_HARNESS_MAIN
