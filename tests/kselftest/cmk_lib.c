// SPDX-License-Identifier: GPL-2.0
/*
 * cmk_lib.c - helpers shared by the dm-cmk kselftests: dmsetup wrappers,
 * kernel log, block I/O, keys, the dm-cmk generic netlink client (libmnl),
 * capabilities, modules and null_blk.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "cmk_lib.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NLMSGERR_ATTR_MISS_TYPE
#define NLMSGERR_ATTR_MISS_TYPE 5
#endif
#ifndef NLM_F_CAPPED
#define NLM_F_CAPPED 0x100
#endif
#ifndef NLM_F_ACK_TLVS
#define NLM_F_ACK_TLVS 0x200
#endif

/* ------------------------------------------------------------------ */
/* processes                                                          */

int cmk_run(char *out, size_t outsz, const char *arg0, ...)
{
	const char *argv[32];
	int pipefd[2], status, n = 0;
	size_t used = 0;
	va_list ap;
	pid_t pid;

	argv[n++] = arg0;
	va_start(ap, arg0);
	while (n < 31 && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;

	if (out && outsz)
		out[0] = '\0';
	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		close(pipefd[0]);
		close(pipefd[1]);
		return err;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		/* No udev in the guest: libdevmapper makes the nodes itself. */
		setenv("DM_DISABLE_UDEV", "1", 1);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	for (;;) {
		char tmp[1024];
		ssize_t r = read(pipefd[0], tmp, sizeof(tmp));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (out && outsz > 1 && used < outsz - 1) {
			size_t c = (size_t)r;

			if (c > outsz - 1 - used)
				c = outsz - 1 - used;
			memcpy(out + used, tmp, c);
			used += c;
			out[used] = '\0';
		}
	}
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -ECHILD;
}

/* ------------------------------------------------------------------ */
/* device-mapper                                                      */

static int count_words(const char *s)
{
	int n = 0;
	bool in = false;

	for (; s && *s; s++) {
		if (isspace((unsigned char)*s)) {
			in = false;
		} else if (!in) {
			in = true;
			n++;
		}
	}
	return n;
}

void cmk_table_cmk(char *buf, size_t sz, const struct cmk_table *t)
{
	int n = snprintf(buf, sz, "%llu %llu cmk %s %s %llu %s %llu",
			 (unsigned long long)t->start,
			 (unsigned long long)t->len,
			 t->cipher ? t->cipher : "aes-xts-plain64",
			 t->key_name, (unsigned long long)t->iv_offset,
			 t->dev, (unsigned long long)t->offset);

	if (t->opts && count_words(t->opts) && n > 0 && (size_t)n < sz)
		snprintf(buf + n, sz - n, " %d %s", count_words(t->opts),
			 t->opts);
}

/*
 * dm-cmk's options in dm-crypt's words: force_workqueue is dm-crypt's
 * default behaviour, so dm-crypt gets the options without it.
 */
static void crypt_opts(char *buf, size_t sz, const char *opts)
{
	const char *w = opts, *e;
	size_t len = 0;

	buf[0] = '\0';
	while (w && *w) {
		while (isspace((unsigned char)*w))
			w++;
		for (e = w; *e && !isspace((unsigned char)*e); e++)
			;
		if (e > w && !(e - w == 15 && !strncmp(w, "force_workqueue", 15)) &&
		    len + (size_t)(e - w) + 2 < sz) {
			if (len)
				buf[len++] = ' ';
			memcpy(buf + len, w, e - w);
			len += e - w;
			buf[len] = '\0';
		}
		w = e;
	}
}

void cmk_table_crypt(char *buf, size_t sz, const struct cmk_table *t,
		     const uint8_t *key)
{
	char hex[2 * DM_CMK_KEY_LEN + 1];
	char opts[256];
	int n;

	cmk_hex(hex, key, DM_CMK_KEY_LEN, false);
	n = snprintf(buf, sz, "%llu %llu crypt %s %s %llu %s %llu",
		     (unsigned long long)t->start, (unsigned long long)t->len,
		     t->cipher ? t->cipher : "aes-xts-plain64", hex,
		     (unsigned long long)t->iv_offset, t->dev,
		     (unsigned long long)t->offset);
	explicit_bzero(hex, sizeof(hex));
	crypt_opts(opts, sizeof(opts), t->opts);
	if (count_words(opts) && n > 0 && (size_t)n < sz)
		snprintf(buf + n, sz - n, " %d %s", count_words(opts), opts);
}

void cmk_dm_path(char *buf, size_t sz, const char *name)
{
	snprintf(buf, sz, "/dev/mapper/%s", name);
}

static int read_small(const char *path, char *buf, size_t sz)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -errno;
	r = read(fd, buf, sz - 1);
	close(fd);
	if (r < 0)
		return -errno;
	buf[r] = '\0';
	while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == ' '))
		buf[--r] = '\0';
	return 0;
}

static int write_small(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t r;
	int err = 0;

	if (fd < 0)
		return -errno;
	r = write(fd, val, strlen(val));
	if (r < 0)
		err = -errno;
	else if ((size_t)r != strlen(val))
		err = -EIO;
	close(fd);
	return err;
}

int cmk_dm_kname(const char *name, char *buf, size_t sz)
{
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	int err = -ENOENT;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[512], dmname[256];

		if (strncmp(de->d_name, "dm-", 3))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/dm/name",
			 de->d_name);
		if (read_small(path, dmname, sizeof(dmname)))
			continue;
		if (!strcmp(dmname, name)) {
			snprintf(buf, sz, "%s", de->d_name);
			err = 0;
			break;
		}
	}
	closedir(d);
	return err;
}

bool cmk_dm_exists(const char *name)
{
	char kname[64];

	return cmk_dm_kname(name, kname, sizeof(kname)) == 0;
}

int cmk_dm_create(const char *name, const char *table, char *out,
		  size_t outsz)
{
	int st = cmk_run(out, outsz, "dmsetup", "create", "--noudevsync",
			 name, "--table", table, NULL);

	if (st)
		return st;
	return cmk_run(NULL, 0, "dmsetup", "mknodes", name, NULL);
}

int cmk_dm_remove(const char *name)
{
	int st;

	if (!cmk_dm_exists(name))
		return 0;
	st = cmk_run(NULL, 0, "dmsetup", "remove", "--noudevsync", name,
		     NULL);
	if (!st)
		return 0;
	/* A suspended device (a test that died mid-way) must resume first. */
	cmk_run(NULL, 0, "dmsetup", "resume", "--noudevsync", name, NULL);
	st = cmk_run(NULL, 0, "dmsetup", "remove", "--noudevsync", "--retry",
		     name, NULL);
	if (!st)
		return 0;
	return cmk_run(NULL, 0, "dmsetup", "remove", "--noudevsync",
		       "--force", name, NULL);
}

void cmk_dm_cleanup(void)
{
	int pass;

	/* Stacked devices (crypt over cmk) need more than one pass. */
	for (pass = 0; pass < 3; pass++) {
		char names[32][128];
		int n = 0, i;
		DIR *d = opendir("/sys/block");
		struct dirent *de;

		if (!d)
			return;
		while ((de = readdir(d)) && n < 32) {
			char path[512];

			if (strncmp(de->d_name, "dm-", 3))
				continue;
			snprintf(path, sizeof(path), "/sys/block/%s/dm/name",
				 de->d_name);
			if (read_small(path, names[n], sizeof(names[n])))
				continue;
			if (!strncmp(names[n], CMK_DM_PREFIX,
				     strlen(CMK_DM_PREFIX)))
				n++;
		}
		closedir(d);
		if (!n)
			return;
		for (i = 0; i < n; i++)
			cmk_dm_remove(names[i]);
	}
}

int cmk_dm_suspend(const char *name)
{
	return cmk_run(NULL, 0, "dmsetup", "suspend", "--noudevsync", name,
		       NULL);
}

int cmk_dm_resume(const char *name)
{
	return cmk_run(NULL, 0, "dmsetup", "resume", "--noudevsync", name,
		       NULL);
}

int cmk_dm_reload(const char *name, const char *table, char *out,
		  size_t outsz)
{
	return cmk_run(out, outsz, "dmsetup", "reload", "--noudevsync", name,
		       "--table", table, NULL);
}

int cmk_dm_table(const char *name, bool showkeys, char *out, size_t outsz)
{
	if (showkeys)
		return cmk_run(out, outsz, "dmsetup", "table", "--showkeys",
			       name, NULL);
	return cmk_run(out, outsz, "dmsetup", "table", name, NULL);
}

int cmk_dm_status(const char *name, char *out, size_t outsz)
{
	return cmk_run(out, outsz, "dmsetup", "status", name, NULL);
}

int cmk_status_parse(const char *line, struct cmk_status *st)
{
	unsigned long long start, len, gen, r, w, e, ref, held, rej;
	char type[16], state[16], lease[32];
	int n;

	memset(st, 0, sizeof(*st));
	n = sscanf(line, "%llu %llu %15s %15s %llu %31s %llu %llu %llu %llu %llu %llu",
		   &start, &len, type, state, &gen, lease, &r, &w, &e, &ref,
		   &held, &rej);
	if (n != 12 || strcmp(type, "cmk"))
		return -EINVAL;
	st->held = held;
	st->rejected = rej;
	st->start = start;
	st->len = len;
	snprintf(st->state, sizeof(st->state), "%s", state);
	st->generation = gen;
	if (strcmp(lease, "-")) {
		char *end;

		st->has_lease = true;
		st->lease_left_ms = strtoull(lease, &end, 10);
		if (*end)
			return -EINVAL;
	}
	st->reads = r;
	st->writes = w;
	st->io_errors = e;
	st->refused = ref;
	return 0;
}

int cmk_dm_status_get(const char *name, struct cmk_status *st)
{
	char out[1024];
	int rc = cmk_dm_status(name, out, sizeof(out));

	if (rc)
		return rc > 0 ? -EIO : rc;
	return cmk_status_parse(out, st);
}

/* ------------------------------------------------------------------ */
/* kernel log                                                         */

int cmk_klog_mark(char *mark, size_t sz)
{
	static unsigned int counter;
	struct timespec ts;
	char line[160];
	int err;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(mark, sz, "cmk-selftest-mark-%d-%ld%09ld-%u", getpid(),
		 (long)ts.tv_sec, ts.tv_nsec, counter++);
	snprintf(line, sizeof(line), "%s\n", mark);
	err = write_small("/dev/kmsg", line);
	return err;
}

char *cmk_klog_since(const char *mark)
{
	int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf, *p, *res;
	int n;

	if (size <= 0)
		size = 1 << 20;
	buf = malloc((size_t)size + 1);
	if (!buf)
		return NULL;
	n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, size);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	p = NULL;
	for (char *q = buf; (q = strstr(q, mark)); q++)
		p = q;
	if (!p) {
		free(buf);
		return NULL;
	}
	res = strdup(p + strlen(mark));
	free(buf);
	return res;
}

int cmk_klog_cmk_error(const char *mark, char *msg, size_t sz)
{
	char *log = cmk_klog_since(mark), *line, *save = NULL;
	int err = -ENOENT;

	if (!log)
		return -ENOENT;
	for (line = strtok_r(log, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *p;

		if (!strstr(line, "device-mapper: table:"))
			continue;
		p = strstr(line, ": cmk: ");
		if (!p)
			continue;
		snprintf(msg, sz, "%s", p + strlen(": cmk: "));
		err = 0;
	}
	free(log);
	return err;
}

bool cmk_contains_any(const char *s, const char *alternatives)
{
	char buf[256], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", alternatives);
	for (tok = strtok_r(buf, "|", &save); tok;
	     tok = strtok_r(NULL, "|", &save))
		if (strcasestr(s, tok))
			return true;
	return false;
}

/* ------------------------------------------------------------------ */
/* block I/O                                                          */

void *cmk_alloc(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, CMK_ALIGN, len ? len : CMK_ALIGN))
		return NULL;
	memset(p, 0, len);
	return p;
}

int cmk_open(const char *path, bool direct)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0));

	return fd < 0 ? -errno : fd;
}

int cmk_pread(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done,
				  off + (off_t)done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ENODATA;
		done += (size_t)r;
	}
	return 0;
}

int cmk_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pwrite(fd, (const char *)buf + done, len - done,
				   off + (off_t)done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ENODATA;
		done += (size_t)r;
	}
	return 0;
}

int cmk_dev_read(const char *path, void *buf, size_t len, off_t off,
		 bool direct)
{
	void *bounce = direct ? cmk_alloc(len) : buf;
	int fd, err;

	if (!bounce)
		return -ENOMEM;
	fd = cmk_open(path, direct);
	if (fd < 0) {
		err = fd;
		goto out;
	}
	err = cmk_pread(fd, bounce, len, off);
	close(fd);
	if (!err && direct)
		memcpy(buf, bounce, len);
out:
	if (direct)
		free(bounce);
	return err;
}

int cmk_dev_write(const char *path, const void *buf, size_t len, off_t off,
		  bool direct)
{
	void *bounce = NULL;
	int fd, err, err2;

	if (direct) {
		bounce = cmk_alloc(len);
		if (!bounce)
			return -ENOMEM;
		memcpy(bounce, buf, len);
	}
	fd = cmk_open(path, direct);
	if (fd < 0) {
		err = fd;
		goto out;
	}
	err = cmk_pwrite(fd, direct ? bounce : buf, len, off);
	err2 = fsync(fd) ? -errno : 0;
	if (!err)
		err = err2;
	close(fd);
out:
	free(bounce);
	return err;
}

int cmk_dev_flushbuf(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, BLKFLSBUF, 0))
		err = -errno;
	close(fd);
	return err;
}

int cmk_dev_size(const char *path, uint64_t *bytes)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, BLKGETSIZE64, bytes))
		err = -errno;
	close(fd);
	return err;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void cmk_fill(void *buf, size_t len, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t s = seed;

	while (len) {
		uint64_t v = splitmix64(&s);
		size_t c = len < 8 ? len : 8;

		memcpy(p, &v, c);
		p += c;
		len -= c;
	}
}

void cmk_key_make(uint8_t key[DM_CMK_KEY_LEN], uint64_t seed)
{
	cmk_fill(key, DM_CMK_KEY_LEN, seed ^ 0x6b65792d73656564ULL);
	if (!memcmp(key, key + DM_CMK_KEY_LEN / 2, DM_CMK_KEY_LEN / 2))
		key[0] ^= 0xff;
}

void cmk_hex(char *out, const uint8_t *in, size_t len, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

bool cmk_contains_key(const void *hay, size_t haylen, const uint8_t *key)
{
	const size_t half = DM_CMK_KEY_LEN / 2;
	char hex[2 * DM_CMK_KEY_LEN + 1];
	bool found = false;
	int upper;

	if (memmem(hay, haylen, key, half) ||
	    memmem(hay, haylen, key + half, half))
		return true;
	for (upper = 0; upper < 2 && !found; upper++) {
		cmk_hex(hex, key, DM_CMK_KEY_LEN, upper);
		/* either half in hex covers the whole key too */
		found = memmem(hay, haylen, hex, 2 * half) ||
			memmem(hay, haylen, hex + 2 * half, 2 * half);
	}
	explicit_bzero(hex, sizeof(hex));
	return found;
}

/* ------------------------------------------------------------------ */
/* netlink                                                            */

struct xact {
	struct cmk_nl *nl;
	cmk_info_cb cb;
	void *arg;
	int err;
	int cb_err;
	char *ext;
	size_t extsz;
	bool resolving;
};

static int extack_attr_cb(const struct nlattr *attr, void *data)
{
	struct xact *x = data;

	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG && x->ext &&
	    x->extsz && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
		snprintf(x->ext, x->extsz, "%s", mnl_attr_get_str(attr));
	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MISS_TYPE &&
	    mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
		x->nl->miss_type = mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

static int cb_error(const struct nlmsghdr *nlh, void *data)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	struct xact *x = data;
	unsigned int off;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e))) {
		x->err = -EBADMSG;
		return MNL_CB_ERROR;
	}
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		if (nlh->nlmsg_flags & NLM_F_CAPPED)
			off = sizeof(*e);
		else
			off = sizeof(e->error) + e->msg.nlmsg_len;
		if (mnl_nlmsg_size(off) <= nlh->nlmsg_len)
			mnl_attr_parse(nlh, off, extack_attr_cb, x);
	}
	if (e->error == 0)
		return MNL_CB_STOP;
	x->err = e->error;
	return MNL_CB_ERROR;
}

static int cb_done(const struct nlmsghdr *nlh, void *data)
{
	struct xact *x = data;

	if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int)) {
		int e;

		memcpy(&e, mnl_nlmsg_get_payload(nlh), sizeof(e));
		if (e < 0)
			x->err = e;
		if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) &&
		    mnl_nlmsg_size(sizeof(int)) <= nlh->nlmsg_len)
			mnl_attr_parse(nlh, sizeof(int), extack_attr_cb, x);
	}
	return x->err ? MNL_CB_ERROR : MNL_CB_STOP;
}

static int ctrl_grp_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (type <= CTRL_ATTR_MCAST_GRP_MAX)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int ctrl_attr_cb(const struct nlattr *attr, void *data)
{
	struct cmk_nl *nl = data;

	switch (mnl_attr_get_type(attr)) {
	case CTRL_ATTR_FAMILY_ID:
		if (mnl_attr_validate(attr, MNL_TYPE_U16) >= 0)
			nl->family = mnl_attr_get_u16(attr);
		break;
	case CTRL_ATTR_MCAST_GROUPS: {
		const struct nlattr *grp;

		mnl_attr_for_each_nested(grp, attr) {
			const struct nlattr *tb[CTRL_ATTR_MCAST_GRP_MAX + 1] = {
				NULL };

			mnl_attr_parse_nested(grp, ctrl_grp_cb, tb);
			if (tb[CTRL_ATTR_MCAST_GRP_NAME] &&
			    tb[CTRL_ATTR_MCAST_GRP_ID] &&
			    !strcmp(mnl_attr_get_str(tb[CTRL_ATTR_MCAST_GRP_NAME]),
				    DM_CMK_MCGRP_EVENTS))
				nl->events_group =
					mnl_attr_get_u32(tb[CTRL_ATTR_MCAST_GRP_ID]);
		}
		break;
	}
	default:
		break;
	}
	return MNL_CB_OK;
}

static int info_attr_cb(const struct nlattr *attr, void *data)
{
	struct cmk_info *in = data;
	uint16_t len = mnl_attr_get_payload_len(attr);
	const void *p = mnl_attr_get_payload(attr);
	uint32_t u32 = 0;
	uint64_t u64 = 0;

	if (len == 4)
		memcpy(&u32, p, 4);
	if (len == 8)
		memcpy(&u64, p, 8);

	switch (mnl_attr_get_type(attr)) {
	case DM_CMK_A_NAME:
		snprintf(in->name, sizeof(in->name), "%.*s", (int)len,
			 (const char *)p);
		break;
	case DM_CMK_A_DEVICE:
		snprintf(in->device, sizeof(in->device), "%.*s", (int)len,
			 (const char *)p);
		break;
	case DM_CMK_A_STATE:
		in->has_state = len == 4;
		in->state = u32;
		break;
	case DM_CMK_A_LEASE_LEFT_MS:
		in->has_lease_left = len == 4;
		in->lease_left_ms = u32;
		break;
	case DM_CMK_A_LEASE_MAX_MS:
		in->has_lease_max = len == 4;
		in->lease_max_ms = u32;
		break;
	case DM_CMK_A_SECTOR_SIZE:
		in->has_sector_size = len == 4;
		in->sector_size = u32;
		break;
	case DM_CMK_A_EVENT:
		in->has_event = len == 4;
		in->event = u32;
		break;
	case DM_CMK_A_REASON:
		in->has_reason = len == 4;
		in->reason = u32;
		break;
	case DM_CMK_A_GENERATION:
		in->has_generation = len == 8;
		in->generation = u64;
		break;
	case DM_CMK_A_READS:
		in->has_counters = len == 8;
		in->reads = u64;
		break;
	case DM_CMK_A_WRITES:
		in->writes = u64;
		break;
	case DM_CMK_A_IO_ERRORS:
		in->io_errors = u64;
		break;
	case DM_CMK_A_REFUSED:
		in->refused = u64;
		break;
	case DM_CMK_A_HOLD_MS:
		in->has_hold = len == 4;
		in->hold_ms = u32;
		break;
	case DM_CMK_A_HELD:
		in->held = u32;
		break;
	case DM_CMK_A_REJECTED:
		in->rejected = u64;
		break;
	case DM_CMK_A_BOUND:
		in->bound = true;
		break;
	case DM_CMK_A_EPOCH:
		in->has_epoch = len == 4;
		in->epoch = u32;
		break;
	default:
		break;
	}
	return MNL_CB_OK;
}

static void info_decode(const struct nlmsghdr *nlh, struct cmk_info *in)
{
	const struct genlmsghdr *g = mnl_nlmsg_get_payload(nlh);
	size_t raw = nlh->nlmsg_len;

	memset(in, 0, sizeof(*in));
	in->cmd = g->cmd;
	if (raw > sizeof(in->raw))
		raw = sizeof(in->raw);
	memcpy(in->raw, nlh, raw);
	in->raw_len = raw;
	mnl_attr_parse(nlh, sizeof(*g), info_attr_cb, in);
}

static int cb_data(const struct nlmsghdr *nlh, void *data)
{
	struct xact *x = data;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct genlmsghdr))
		return MNL_CB_OK;
	if (x->resolving) {
		mnl_attr_parse(nlh, sizeof(struct genlmsghdr), ctrl_attr_cb,
			       x->nl);
		return MNL_CB_OK;
	}
	if (x->cb) {
		struct cmk_info *in = malloc(sizeof(*in));
		int r;

		if (!in)
			return MNL_CB_ERROR;
		info_decode(nlh, in);
		r = x->cb(in, x->arg);
		free(in);
		if (r && !x->cb_err)
			x->cb_err = r;
	}
	return MNL_CB_OK;
}

static int transact(struct cmk_nl *nl, struct nlmsghdr *nlh, struct xact *x)
{
	mnl_cb_t ctl[NLMSG_MIN_TYPE] = { NULL };
	size_t bufsz = MNL_SOCKET_BUFFER_SIZE * 4;
	char *buf;
	int ret;

	ctl[NLMSG_ERROR] = cb_error;
	ctl[NLMSG_DONE] = cb_done;
	if (x->ext && x->extsz)
		x->ext[0] = '\0';
	nl->miss_type = 0;
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	buf = malloc(bufsz);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ret = mnl_socket_recvfrom(nl->sock, buf, bufsz);
		if (ret < 0) {
			ret = -errno;
			break;
		}
		ret = mnl_cb_run2(buf, ret, nlh->nlmsg_seq, nl->portid,
				  cb_data, x, ctl, NLMSG_MIN_TYPE);
		if (ret == MNL_CB_ERROR) {
			ret = x->err ? x->err : -errno;
			break;
		}
		if (ret == MNL_CB_STOP) {
			ret = x->err;
			break;
		}
	}
	free(buf);
	if (!ret && x->cb_err)
		ret = x->cb_err;
	return ret;
}

int cmk_nl_open(struct cmk_nl *nl)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct xact x = { .nl = nl, .resolving = true };
	struct nlmsghdr *nlh;
	struct genlmsghdr *g;
	int one = 1, err;

	memset(nl, 0, sizeof(*nl));
	nl->sock = mnl_socket_open(NETLINK_GENERIC);
	if (!nl->sock)
		return -errno;
	/* Best effort: extended acks carry the kernel's error message. */
	mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto fail;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (uint32_t)time(NULL);

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = GENL_ID_CTRL;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = ++nl->seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = CTRL_CMD_GETFAMILY;
	g->version = 1;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, DM_CMK_GENL_NAME);
	err = transact(nl, nlh, &x);
	if (err)
		goto fail;
	if (!nl->family) {
		err = -ENOENT;
		goto fail;
	}
	return 0;
fail:
	mnl_socket_close(nl->sock);
	nl->sock = NULL;
	return err;
}

void cmk_nl_close(struct cmk_nl *nl)
{
	if (nl->sock)
		mnl_socket_close(nl->sock);
	free(nl->rbuf);
	memset(nl, 0, sizeof(*nl));
}

int cmk_nl_request(struct cmk_nl *nl, const struct cmk_req *req,
		   cmk_info_cb cb, void *arg, char *ext, size_t extsz)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct xact x = { .nl = nl, .cb = cb, .arg = arg, .ext = ext,
			  .extsz = extsz };
	struct nlmsghdr *nlh;
	struct genlmsghdr *g;
	int err;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = nl->family;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK |
			   (req->dump ? NLM_F_DUMP : 0);
	nlh->nlmsg_seq = ++nl->seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = req->cmd;
	g->version = DM_CMK_GENL_VERSION;
	if (req->name)
		mnl_attr_put_strz(nlh, DM_CMK_A_NAME, req->name);
	if (req->key)
		mnl_attr_put(nlh, DM_CMK_A_KEY, req->key_len, req->key);
	if (req->key2)
		mnl_attr_put(nlh, DM_CMK_A_KEY, DM_CMK_KEY_LEN, req->key2);
	if (req->has_generation)
		mnl_attr_put_u64(nlh, DM_CMK_A_GENERATION, req->generation);
	if (req->has_lease)
		mnl_attr_put_u32(nlh, DM_CMK_A_LEASE_MS, req->lease_ms);
	if (req->has_flags)
		mnl_attr_put_u32(nlh, DM_CMK_A_FLAGS, req->flags);
	if (req->has_reason)
		mnl_attr_put_u32(nlh, DM_CMK_A_REASON, req->reason);
	if (req->has_epoch)
		mnl_attr_put_u32(nlh, DM_CMK_A_EPOCH, req->epoch);
	if (req->extra_type)
		mnl_attr_put_u32(nlh, req->extra_type, 0x5a5a5a5a);
	err = transact(nl, nlh, &x);
	/* the request may have carried a key */
	explicit_bzero(buf, sizeof(buf));
	return err;
}

int cmk_key_set(struct cmk_nl *nl, const char *name, const uint8_t *key,
		uint32_t lease_ms, uint64_t generation, char *ext,
		size_t extsz)
{
	struct cmk_req r = {
		.cmd = DM_CMK_CMD_KEY_SET, .name = name, .key = key,
		.key_len = DM_CMK_KEY_LEN, .has_lease = true,
		.lease_ms = lease_ms, .has_generation = true,
		.generation = generation,
	};

	return cmk_nl_request(nl, &r, NULL, NULL, ext, extsz);
}

int cmk_key_wipe(struct cmk_nl *nl, const char *name, uint32_t reason,
		 char *ext, size_t extsz)
{
	struct cmk_req r = {
		.cmd = DM_CMK_CMD_KEY_WIPE, .name = name, .has_reason = true,
		.reason = reason,
	};

	return cmk_nl_request(nl, &r, NULL, NULL, ext, extsz);
}

int cmk_key_wipe_all(struct cmk_nl *nl, uint32_t reason, char *ext,
		     size_t extsz)
{
	struct cmk_req r = {
		.cmd = DM_CMK_CMD_KEY_WIPE, .has_flags = true,
		.flags = DM_CMK_F_ALL, .has_reason = true, .reason = reason,
	};

	return cmk_nl_request(nl, &r, NULL, NULL, ext, extsz);
}

int cmk_lease_renew(struct cmk_nl *nl, const char *name, uint32_t lease_ms,
		    char *ext, size_t extsz)
{
	struct cmk_req r = {
		.cmd = DM_CMK_CMD_LEASE_RENEW, .name = name, .has_lease = true,
		.lease_ms = lease_ms,
	};

	return cmk_nl_request(nl, &r, NULL, NULL, ext, extsz);
}

int cmk_lease_renew_all(struct cmk_nl *nl, uint32_t lease_ms, char *ext,
			size_t extsz)
{
	struct cmk_req r = {
		.cmd = DM_CMK_CMD_LEASE_RENEW, .has_flags = true,
		.flags = DM_CMK_F_ALL, .has_lease = true, .lease_ms = lease_ms,
	};

	return cmk_nl_request(nl, &r, NULL, NULL, ext, extsz);
}

struct get_one {
	struct cmk_info *out;
	int count;
};

static int get_one_cb(const struct cmk_info *info, void *arg)
{
	struct get_one *g = arg;

	if (info->cmd != DM_CMK_CMD_GET)
		return 0;
	if (!g->count++)
		memcpy(g->out, info, sizeof(*info));
	return 0;
}

int cmk_get(struct cmk_nl *nl, const char *name, struct cmk_info *out,
	    char *ext, size_t extsz)
{
	struct cmk_req r = { .cmd = DM_CMK_CMD_GET, .name = name };
	struct get_one g = { .out = out };
	int err;

	memset(out, 0, sizeof(*out));
	err = cmk_nl_request(nl, &r, get_one_cb, &g, ext, extsz);
	if (err)
		return err;
	/* a doit answers with exactly one GET message */
	return g.count == 1 ? 0 : -EPROTO;
}

int cmk_dump(struct cmk_nl *nl, cmk_info_cb cb, void *arg, char *ext,
	     size_t extsz)
{
	struct cmk_req r = { .cmd = DM_CMK_CMD_GET, .dump = true };

	return cmk_nl_request(nl, &r, cb, arg, ext, extsz);
}

int cmk_nl_subscribe(struct cmk_nl *nl)
{
	int grp = (int)nl->events_group;

	if (!nl->events_group)
		return -ENOENT;
	if (mnl_socket_setsockopt(nl->sock, NETLINK_ADD_MEMBERSHIP, &grp,
				  sizeof(grp)) < 0)
		return -errno;
	return 0;
}

int cmk_nl_wait_event(struct cmk_nl *nl, const char *name, int event,
		      int timeout_ms, struct cmk_info *out)
{
	const size_t bufsz = 65536;
	uint64_t deadline = cmk_now_ms() + (uint64_t)timeout_ms;

	if (!nl->rbuf) {
		nl->rbuf = malloc(bufsz);
		if (!nl->rbuf)
			return -ENOMEM;
	}
	for (;;) {
		while (nl->roff < nl->rlen) {
			const struct nlmsghdr *nlh =
				(const void *)(nl->rbuf + nl->roff);
			size_t left = nl->rlen - nl->roff;

			if (!mnl_nlmsg_ok(nlh, (int)left)) {
				nl->roff = nl->rlen;
				break;
			}
			nl->roff += MNL_ALIGN(nlh->nlmsg_len);
			if (nlh->nlmsg_type != nl->family ||
			    mnl_nlmsg_get_payload_len(nlh) <
			    sizeof(struct genlmsghdr))
				continue;
			info_decode(nlh, out);
			if (out->cmd != DM_CMK_CMD_EVENT)
				continue;
			if (name && strcmp(out->name, name))
				continue;
			if (event >= 0 &&
			    (!out->has_event || out->event != (uint32_t)event))
				continue;
			return 0;
		}
		{
			struct pollfd pfd = {
				.fd = mnl_socket_get_fd(nl->sock),
				.events = POLLIN,
			};
			uint64_t now = cmk_now_ms();
			ssize_t r;
			int pr;

			if (now >= deadline)
				return -ETIMEDOUT;
			pr = poll(&pfd, 1, (int)(deadline - now));
			if (pr < 0 && errno == EINTR)
				continue;
			if (pr < 0)
				return -errno;
			if (pr == 0)
				return -ETIMEDOUT;
			r = mnl_socket_recvfrom(nl->sock, nl->rbuf, bufsz);
			if (r < 0)
				return -errno;
			nl->rlen = (size_t)r;
			nl->roff = 0;
		}
	}
}

/* ------------------------------------------------------------------ */
/* privileges, modules, null_blk                                      */

int cmk_drop_caps(const int *caps, int ncaps)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
		.pid = 0,
	};
	struct __user_cap_data_struct data[2];
	int i;

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	for (i = 0; i < ncaps; i++) {
		uint32_t bit = 1U << (caps[i] % 32);
		int idx = caps[i] / 32;

		data[idx].effective &= ~bit;
		data[idx].permitted &= ~bit;
		data[idx].inheritable &= ~bit;
	}
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
}

bool cmk_module_loaded(const char *modname)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/module/%s/initstate", modname);
	return access(path, F_OK) == 0;
}

int cmk_module_unload(const char *modname)
{
	if (syscall(SYS_delete_module, modname, O_NONBLOCK))
		return -errno;
	return 0;
}

int cmk_modprobe(const char *name)
{
	return cmk_run(NULL, 0, "modprobe", name, NULL);
}

int cmk_ensure_module(void)
{
	if (!cmk_module_loaded("dm_cmk"))
		cmk_modprobe("dm-cmk");
	return cmk_module_loaded("dm_cmk") ? 0 : -ENOENT;
}

#define NULLB_CFG "/sys/kernel/config/nullb"

static int nullb_attr(const char *cfgname, const char *attr,
		      unsigned long val)
{
	char path[256], v[32];

	snprintf(path, sizeof(path), NULLB_CFG "/%s/%s", cfgname, attr);
	snprintf(v, sizeof(v), "%lu", val);
	return write_small(path, v);
}

static int nullb_make(const char *cfgname, unsigned int size_mb,
		      bool discard, unsigned int cache_mb, int irqmode,
		      unsigned long completion_nsec, char *path, size_t pathsz)
{
	char dir[256], idx[32];
	int err;

	if (access(NULLB_CFG, F_OK)) {
		if (!cmk_module_loaded("null_blk"))
			cmk_run(NULL, 0, "modprobe", "null_blk",
				"nr_devices=0", NULL);
		if (access(NULLB_CFG, F_OK) &&
		    mount("configfs", "/sys/kernel/config", "configfs", 0,
			  NULL) && errno != EBUSY)
			return -errno;
		if (access(NULLB_CFG, F_OK))
			return -ENOENT;
	}
	snprintf(dir, sizeof(dir), NULLB_CFG "/%s", cfgname);
	if (!access(dir, F_OK))
		cmk_nullb_destroy(cfgname);
	if (mkdir(dir, 0755))
		return -errno;
	err = nullb_attr(cfgname, "memory_backed", 1);
	if (!err)
		err = nullb_attr(cfgname, "size", size_mb);
	if (!err)
		err = nullb_attr(cfgname, "blocksize", 512);
	if (!err)
		err = nullb_attr(cfgname, "discard", discard);
	if (!err && cache_mb)
		err = nullb_attr(cfgname, "cache_size", cache_mb);
	if (!err && irqmode >= 0)
		err = nullb_attr(cfgname, "irqmode", irqmode);
	if (!err && irqmode == 2)
		err = nullb_attr(cfgname, "completion_nsec", completion_nsec);
	if (!err)
		err = nullb_attr(cfgname, "power", 1);
	if (!err) {
		char ipath[300];

		snprintf(ipath, sizeof(ipath), "%s/index", dir);
		err = read_small(ipath, idx, sizeof(idx));
	}
	if (err) {
		cmk_nullb_destroy(cfgname);
		return err;
	}
	/* newer kernels name the disk after the configfs item */
	snprintf(path, pathsz, "/dev/%s", cfgname);
	if (!access(path, F_OK))
		return 0;
	snprintf(path, pathsz, "/dev/nullb%s", idx);
	return access(path, F_OK) ? -ENODEV : 0;
}

int cmk_nullb_create(const char *cfgname, unsigned int size_mb, bool discard,
		     unsigned int cache_mb, char *path, size_t pathsz)
{
	return nullb_make(cfgname, size_mb, discard, cache_mb, -1, 0, path,
			  pathsz);
}

int cmk_nullb_create_irq(const char *cfgname, unsigned int size_mb,
			 int irqmode, unsigned long completion_nsec,
			 char *path, size_t pathsz)
{
	return nullb_make(cfgname, size_mb, false, 0, irqmode,
			  completion_nsec, path, pathsz);
}

int cmk_nullb_destroy(const char *cfgname)
{
	char dir[256];

	snprintf(dir, sizeof(dir), NULLB_CFG "/%s", cfgname);
	if (access(dir, F_OK))
		return 0;
	nullb_attr(cfgname, "power", 0);
	return rmdir(dir) ? -errno : 0;
}

/* ------------------------------------------------------------------ */
/* time                                                               */

uint64_t cmk_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void cmk_sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}
