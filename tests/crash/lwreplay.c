// SPDX-License-Identifier: GPL-2.0
/*
 * cmk-lwreplay - read a dm-log-writes log and replay a range of its entries
 * onto a block device (test-only; written from the format described in the
 * kernel's Documentation/admin-guide/device-mapper/log-writes.rst and the
 * structures of drivers/md/dm-log-writes.c).
 *
 *   cmk-lwreplay count LOG            number of entries (end mark included)
 *   cmk-lwreplay list LOG             one line per entry: index, flags,
 *                                     sector, sectors, mark text
 *   cmk-lwreplay replay LOG DEV FROM TO
 *                                     write entries FROM..TO-1 onto DEV, in
 *                                     log order; a flush entry fsyncs DEV.
 *                                     Prints "changed" or "unchanged": did
 *                                     any byte of DEV change (a write of
 *                                     what DEV already held, or a flush,
 *                                     leaves the same state)
 *   cmk-lwreplay replay LOG DEV FROM TO SECTORS
 *                                     the same, but of entry TO-1 only its
 *                                     first SECTORS blocks: a write torn by
 *                                     the power cut
 *
 * Log layout: sector 0 (of the logged device's logical block size) holds
 * the super block; entries follow, each one block with struct
 * log_write_entry (and, for a mark, its text), then nr_sectors blocks of
 * data (none for a discard).  The log is what reached stable storage: a
 * write is logged only once a later flush (or its own FUA) completed, so
 * replaying the first N entries gives a state a power cut could leave.
 *
 * The log is read with O_DIRECT: dm-log-writes writes it below any page
 * cache of LOG.  A discard is replayed as zeros (one of the contents a
 * discarded range may read as).
 *
 * Exit 0 ok, 1 a malformed log or an I/O error (message on stderr), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <endian.h>

#define LW_MAGIC	0x6a736677736872ULL
#define LW_VERSION	1ULL
#define LW_FLUSH	(1u << 0)
#define LW_FUA		(1u << 1)
#define LW_DISCARD	(1u << 2)
#define LW_MARK		(1u << 3)
#define LW_METADATA	(1u << 4)
#define LW_MAX_BLOCK	65536u
#define LW_MAX_DATA	(64u << 20)

struct lw_super {
	uint64_t magic;
	uint64_t version;
	uint64_t nr_entries;
	uint32_t sectorsize;
} __attribute__((packed));

struct lw_entry {
	uint64_t sector;
	uint64_t nr_sectors;
	uint64_t flags;
	uint64_t data_len;
} __attribute__((packed));

struct lw_log {
	int fd;
	const char *path;
	uint32_t bs;		/* the log's block size */
	uint64_t n;		/* entries */
	uint64_t pos;		/* byte offset of the next entry */
	uint8_t *buf;		/* LW_MAX_DATA, aligned for O_DIRECT */
};

static int fail(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "cmk-lwreplay: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	return 1;
}

/* Read @len bytes (a multiple of the block size) at @off into lw->buf. */
static int lw_read(struct lw_log *lw, uint64_t off, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pread(lw->fd, lw->buf + done, len - done,
				  (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "cmk-lwreplay: %s: read at byte %" PRIu64 ": %s\n",
				lw->path, off + done, r ? strerror(errno) : "end of device");
			return 1;
		}
		done += (size_t)r;
	}
	return 0;
}

static int lw_open(struct lw_log *lw, const char *path)
{
	struct lw_super s;
	void *p;

	memset(lw, 0, sizeof(*lw));
	lw->fd = -1;
	lw->path = path;
	if (posix_memalign(&p, 4096, LW_MAX_DATA))
		return fail("%s: out of memory%s", path, "");
	lw->buf = p;
	lw->fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (lw->fd < 0)
		return fail("%s: %s", path, strerror(errno));
	if (lw_read(lw, 0, 4096))
		return 1;
	memcpy(&s, lw->buf, sizeof(s));
	if (le64toh(s.magic) != LW_MAGIC)
		return fail("%s: no dm-log-writes super block (magic)%s", path, "");
	if (le64toh(s.version) != LW_VERSION)
		return fail("%s: log version is not 1%s", path, "");
	lw->bs = le32toh(s.sectorsize);
	if (lw->bs < 512 || lw->bs > LW_MAX_BLOCK || (lw->bs & (lw->bs - 1)))
		return fail("%s: bad log block size%s", path, "");
	lw->n = le64toh(s.nr_entries);
	lw->pos = lw->bs;
	return 0;
}

/*
 * Read the next entry into @en; with @data, its data (nr_sectors blocks,
 * none for a discard or a mark) is then at lw->buf, its mark text at
 * lw->buf + 32 (without, the data is skipped).
 */
static int lw_next(struct lw_log *lw, struct lw_entry *en, uint64_t index,
		   int data)
{
	uint64_t len;

	if (lw_read(lw, lw->pos, lw->bs))
		return 1;
	memcpy(en, lw->buf, sizeof(*en));
	en->sector = le64toh(en->sector);
	en->nr_sectors = le64toh(en->nr_sectors);
	en->flags = le64toh(en->flags);
	en->data_len = le64toh(en->data_len);
	lw->pos += lw->bs;
	if (en->flags & (LW_DISCARD | LW_MARK))
		return 0;
	if (en->nr_sectors > LW_MAX_DATA / lw->bs) {
		fprintf(stderr, "cmk-lwreplay: %s: entry %" PRIu64 ": %" PRIu64
			" sectors is more than this tool reads\n", lw->path,
			index, en->nr_sectors);
		return 1;
	}
	len = en->nr_sectors * lw->bs;
	if (data && len && lw_read(lw, lw->pos, (size_t)len))
		return 1;
	lw->pos += len;
	return 0;
}

static void flags_str(uint64_t f, char *s, size_t n)
{
	snprintf(s, n, "%s%s%s%s%s%s", f & LW_FLUSH ? "flush," : "",
		 f & LW_FUA ? "fua," : "", f & LW_DISCARD ? "discard," : "",
		 f & LW_MARK ? "mark," : "", f & LW_METADATA ? "meta," : "",
		 f ? "" : "write,");
	s[strlen(s) - 1] = '\0';
}

static int cmd_list(struct lw_log *lw)
{
	struct lw_entry en;
	char fl[64];

	for (uint64_t i = 0; i < lw->n; i++) {
		if (lw_next(lw, &en, i, 0))
			return 1;
		flags_str(en.flags, fl, sizeof(fl));
		printf("%" PRIu64 " %s sector=%" PRIu64 " sectors=%" PRIu64, i, fl,
		       en.sector, en.nr_sectors);
		if (en.flags & LW_MARK) {
			size_t l = en.data_len < lw->bs - sizeof(en) ?
				   (size_t)en.data_len : lw->bs - sizeof(en);

			printf(" mark=%.*s", (int)l, (char *)lw->buf + sizeof(en));
		}
		putchar('\n');
	}
	return 0;
}

/* Would writing @len bytes of @p at @off change @fd's contents? */
static int differs(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	static uint8_t cur[65536];

	while (len) {
		size_t c = len < sizeof(cur) ? len : sizeof(cur);
		ssize_t r = pread(fd, cur, c, (off_t)off);

		if (r != (ssize_t)c || memcmp(cur, p, c))
			return 1;
		p += c;
		off += c;
		len -= c;
	}
	return 0;
}

static int write_full(int fd, const uint8_t *p, size_t len, uint64_t off,
		      const char *dev)
{
	while (len) {
		ssize_t w = pwrite(fd, p, len, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return fail("%s: write: %s", dev, w ? strerror(errno) : "short");
		p += w;
		off += (uint64_t)w;
		len -= (size_t)w;
	}
	return 0;
}

static int cmd_replay(struct lw_log *lw, const char *dev, uint64_t from,
		      uint64_t to, uint64_t torn)
{
	static const uint8_t zero[65536];
	struct lw_entry en;
	int fd, ret = 1, changed = 0;

	if (to > lw->n || from > to)
		return fail("%s: range past the log's end%s", lw->path, "");
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fail("%s: %s", dev, strerror(errno));
	for (uint64_t i = 0; i < to; i++) {
		if (lw_next(lw, &en, i, i >= from))
			goto out;
		if (i < from || (en.flags & LW_MARK))
			continue;
		if (en.flags & LW_DISCARD) {
			uint64_t off = en.sector * lw->bs;
			uint64_t left = en.nr_sectors * lw->bs;

			while (left) {
				size_t c = left < sizeof(zero) ? (size_t)left : sizeof(zero);

				changed |= differs(fd, zero, c, off);
				if (write_full(fd, zero, c, off, dev))
					goto out;
				off += c;
				left -= c;
			}
		} else if (en.nr_sectors) {
			uint64_t ns = i + 1 == to && torn < en.nr_sectors ? torn : en.nr_sectors;
			size_t len = (size_t)(ns * lw->bs);

			changed |= differs(fd, lw->buf, len, en.sector * lw->bs);
			if (write_full(fd, lw->buf, len, en.sector * lw->bs, dev))
				goto out;
		}
		if ((en.flags & (LW_FLUSH | LW_FUA)) && fsync(fd)) {
			fail("%s: fsync: %s", dev, strerror(errno));
			goto out;
		}
	}
	if (fsync(fd)) {
		fail("%s: fsync: %s", dev, strerror(errno));
		goto out;
	}
	printf("%s\n", changed ? "changed" : "unchanged");
	ret = 0;
out:
	close(fd);
	return ret;
}

static int usage(void)
{
	fprintf(stderr, "usage: cmk-lwreplay count LOG | list LOG | replay LOG DEV FROM TO [SECTORS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct lw_log lw;
	char *end;
	unsigned long long from = 0, to = 0, torn = UINT64_MAX;
	int ret;

	if (argc < 3)
		return usage();
	if (!strcmp(argv[1], "replay")) {
		if (argc != 6 && argc != 7)
			return usage();
		errno = 0;
		from = strtoull(argv[4], &end, 10);
		if (errno || *end || end == argv[4])
			return usage();
		to = strtoull(argv[5], &end, 10);
		if (errno || *end || end == argv[5])
			return usage();
		if (argc == 7) {
			torn = strtoull(argv[6], &end, 10);
			if (errno || *end || end == argv[6])
				return usage();
		}
	} else if (argc != 3) {
		return usage();
	}
	ret = lw_open(&lw, argv[2]);
	if (!ret) {
		if (!strcmp(argv[1], "count"))
			printf("%" PRIu64 "\n", lw.n);
		else if (!strcmp(argv[1], "list"))
			ret = cmd_list(&lw);
		else if (!strcmp(argv[1], "replay"))
			ret = cmd_replay(&lw, argv[3], from, to, torn);
		else
			ret = usage();
	}
	if (lw.fd >= 0)
		close(lw.fd);
	free(lw.buf);
	return ret;
}
