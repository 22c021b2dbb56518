// SPDX-License-Identifier: GPL-2.0
/*
 * fileio.c - file helpers (see fileio.h).
 */
#include "core/fileio.h"
#include "core/random.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fs.h>

#include <openssl/crypto.h>

/* Owned by root or us, writable by no one else (a sticky directory may be). */
static int trusted(const char *path, const struct stat *st, bool dir,
		   const char *what, struct cmk_err *e)
{
	mode_t loose = st->st_mode & (S_IWGRP | S_IWOTH);

	if (st->st_uid != 0 && st->st_uid != geteuid())
		return cmk_errf(e, -EPERM,
				"%s %s%s is owned by uid %u, not root (or uid %u, which runs this); refusing it: chown root %s",
				what, dir ? "directory " : "", path, (unsigned int)st->st_uid,
				(unsigned int)geteuid(), path);
	if (loose && !(dir && (st->st_mode & S_ISVTX)))
		return cmk_errf(e, -EPERM,
				"%s %s%s is writable by %s (mode %04o): whoever can write it can point the agent at another key; refusing it: chmod go-w %s",
				what, dir ? "directory " : "", path,
				loose == (S_IWGRP | S_IWOTH) ? "group and others" :
				loose == S_IWGRP ? "its group" : "others",
				(unsigned int)(st->st_mode & 07777), path);
	return 0;
}

/*
 * Pop the next component of @rest (a path being resolved) into @comp: 1,
 * or 0 at the end, or -ENAMETOOLONG for a component longer than NAME_MAX.
 */
static int next_component(char *rest, char *comp, size_t n)
{
	size_t skip = strspn(rest, "/"), len = strcspn(rest + skip, "/");

	if (!len)
		return 0;
	if (len >= n)
		return -ENAMETOOLONG;
	memcpy(comp, rest + skip, len);
	comp[len] = '\0';
	memmove(rest, rest + skip + len, strlen(rest + skip + len) + 1);
	return 1;
}

/* @cur without its last component ("/" stays "/"). */
static void up(char *cur)
{
	char *slash = strrchr(cur, '/');

	if (slash == cur)
		cur[1] = '\0';
	else if (slash)
		*slash = '\0';
}

int cmk_trusted_path(const char *path, const char *what, char *real, size_t n,
		     struct cmk_err *e)
{
	char rest[2 * PATH_MAX], cur[PATH_MAX], cand[PATH_MAX],
	     target[PATH_MAX], comp[NAME_MAX + 1], cwd[PATH_MAX];
	struct stat st;
	int links = 0, got = 0, ret;

	if (!*path)
		return cmk_errf(e, -ENOENT, "%s: empty path", what);
	if (path[0] != '/' && !getcwd(cwd, sizeof(cwd)))
		return cmk_errf(e, -errno, "%s %s: cannot resolve: %s", what, path,
				strerror(errno));
	if (snprintf(rest, sizeof(rest), "%s/%s", path[0] == '/' ? "" : cwd, path) >=
	    (int)sizeof(rest))
		return cmk_errf(e, -ENAMETOOLONG, "%s %s: path too long", what, path);
	snprintf(cur, sizeof(cur), "/");
	if (lstat(cur, &st))
		return cmk_errf(e, -errno, "%s %s: cannot stat /: %s", what, path,
				strerror(errno));
	ret = trusted("/", &st, true, what, e);
	/*
	 * As the kernel walks it: every directory passed through and every
	 * link followed must be ours, or root's, and not writable by others,
	 * or someone else could swap what the path leads to.
	 */
	while (!ret && (got = next_component(rest, comp, sizeof(comp))) > 0) {
		bool last = !rest[strspn(rest, "/")], slash = rest[0] == '/';

		if (!strcmp(comp, "."))
			continue;
		if (!strcmp(comp, "..")) {
			up(cur);
			continue;
		}
		if (snprintf(cand, sizeof(cand), "%s%s%s", cur, strcmp(cur, "/") ? "/" : "",
			     comp) >= (int)sizeof(cand))
			return cmk_errf(e, -ENAMETOOLONG, "%s %s: path too long", what, path);
		if (lstat(cand, &st))
			return cmk_errf(e, -errno, "%s %s: cannot stat %s: %s", what, path,
					cand, strerror(errno));
		if (S_ISLNK(st.st_mode)) {
			ssize_t len;

			if (++links > 40)
				return cmk_errf(e, -ELOOP, "%s %s: too many symbolic links",
						what, path);
			if (st.st_uid != 0 && st.st_uid != geteuid())
				return cmk_errf(e, -EPERM,
						"%s %s: the symbolic link %s is owned by uid %u, not root (or uid %u, which runs this): whoever owns it decides where it leads; refusing it",
						what, path, cand, (unsigned int)st.st_uid,
						(unsigned int)geteuid());
			len = readlink(cand, target, sizeof(target) - 1);
			if (len < 0)
				return cmk_errf(e, -errno, "%s %s: cannot read link %s: %s",
						what, path, cand, strerror(errno));
			target[len] = '\0';
			if ((size_t)len + strlen(rest) + 2 > sizeof(rest))
				return cmk_errf(e, -ENAMETOOLONG, "%s %s: path too long",
						what, path);
			/*
			 * The link's target, then what was left (which starts
			 * with "/" if anything was), resolved from here.
			 */
			memmove(rest + len, rest, strlen(rest) + 1);
			memcpy(rest, target, (size_t)len);
			if (target[0] == '/')
				snprintf(cur, sizeof(cur), "/");
			continue;
		}
		if (last && slash && !S_ISDIR(st.st_mode))
			return cmk_errf(e, -ENOTDIR, "%s %s: %s is not a directory", what,
					path, cand);
		if (last) {
			if (snprintf(real, n, "%s", cand) >= (int)n)
				return cmk_errf(e, -ENAMETOOLONG, "%s %s: path too long",
						what, path);
			return 0;
		}
		if (!S_ISDIR(st.st_mode))
			return cmk_errf(e, -ENOTDIR, "%s %s: %s is not a directory", what,
					path, cand);
		ret = trusted(cand, &st, true, what, e);
		memcpy(cur, cand, sizeof(cur));
	}
	if (!ret && got < 0)
		ret = cmk_errf(e, got, "%s %s: a path component is longer than %d bytes",
			       what, path, NAME_MAX);
	else if (!ret)
		ret = cmk_errf(e, -EISDIR, "%s %s: not a file", what, path);
	return ret;
}

/* Open @path for reading after cmk_trusted_path(), and check the file itself. */
static int open_trusted(const char *path, const char *what, int *fdp,
			struct cmk_err *e)
{
	char real[PATH_MAX];
	struct stat st;
	int fd, ret;

	*fdp = -1;
	ret = cmk_trusted_path(path, what, real, sizeof(real), e);
	if (ret)
		return ret;
	fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return cmk_errf(e, -errno, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st))
		ret = cmk_errf(e, -errno, "%s: cannot stat: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		ret = cmk_errf(e, -EINVAL, "%s %s is not a regular file", what, path);
	else
		ret = trusted(real, &st, false, what, e);
	if (ret) {
		close(fd);
		return ret;
	}
	*fdp = fd;
	return 0;
}

int cmk_check_trusted_file(const char *path, const char *what, struct cmk_err *e)
{
	int fd, ret;

	ret = open_trusted(path, what, &fd, e);
	if (!ret)
		close(fd);
	return ret;
}

static int read_file(const char *path, size_t max, const char *trust_what,
		     char **bufp, size_t *lenp, struct cmk_err *e)
{
	char *buf = NULL;
	size_t len = 0;
	int fd, ret;

	*bufp = NULL;
	if (trust_what) {
		ret = open_trusted(path, trust_what, &fd, e);
		if (ret)
			return ret;
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return cmk_errf(e, -errno, "%s: cannot open: %s", path,
					strerror(errno));
	}
	buf = malloc(max + 1);
	if (!buf) {
		ret = cmk_errf(e, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, max + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = cmk_errf(e, -errno, "%s: read failed: %s", path,
				       strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			ret = cmk_errf(e, -EFBIG,
				       "%s: larger than %zu bytes; is this the right file?",
				       path, max);
			goto out;
		}
	}
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	buf = NULL;
	ret = 0;
out:
	/* What was read may be a secret (a client secret, a key file). */
	if (buf) {
		OPENSSL_cleanse(buf, max + 1);
		free(buf);
	}
	close(fd);
	return ret;
}

int cmk_read_file(const char *path, size_t max, char **bufp, size_t *lenp,
		  struct cmk_err *e)
{
	return read_file(path, max, NULL, bufp, lenp, e);
}

int cmk_read_trusted_file(const char *path, size_t max, const char *what,
			  char **bufp, size_t *lenp, struct cmk_err *e)
{
	return read_file(path, max, what, bufp, lenp, e);
}

int cmk_write_file_atomic(const char *path, const void *data, size_t len,
			  mode_t mode, struct cmk_err *e)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int fd = -1, dfd = -1, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp) ||
	    snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return cmk_errf(e, -ENAMETOOLONG, "%s: path too long", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return cmk_errf(e, -errno,
				"%s: cannot create temporary file next to it: %s",
				path, strerror(errno));
	if (fchmod(fd, mode)) {
		ret = cmk_errf(e, -errno, "%s: chmod failed: %s", tmp,
			       strerror(errno));
		goto out_unlink;
	}
	ret = cmk_pwrite_full(fd, data, len, 0, tmp, e);
	if (ret)
		goto out_unlink;
	if (fsync(fd)) {
		ret = cmk_errf(e, -errno, "%s: fsync failed: %s", tmp,
			       strerror(errno));
		goto out_unlink;
	}
	if (close(fd)) {
		fd = -1;
		ret = cmk_errf(e, -errno, "%s: close failed: %s", tmp,
			       strerror(errno));
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, path)) {
		ret = cmk_errf(e, -errno, "%s: rename from %s failed: %s", path,
			       tmp, strerror(errno));
		goto out_unlink;
	}
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd)) {
		ret = cmk_errf(e, -errno,
			       "%s: written, but fsync of its directory failed: %s",
			       path, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return ret;
	}
	close(dfd);
	return 0;

out_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return ret;
}

int cmk_outfile_open(struct cmk_outfile *o, const char *path, mode_t mode,
		     struct cmk_err *e)
{
	char dir[PATH_MAX];

	memset(o, 0, sizeof(*o));
	o->fd = -1;
	if (snprintf(o->tmp, sizeof(o->tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(o->tmp) ||
	    snprintf(o->path, sizeof(o->path), "%s", path) >= (int)sizeof(o->path))
		return cmk_errf(e, -ENAMETOOLONG, "%s: path too long", path);
	/*
	 * An unnamed file (O_TMPFILE): if the process is killed before the
	 * commit, nothing of what it wrote stays behind under any name.
	 * Where the filesystem lacks O_TMPFILE, a named temporary file.
	 */
	snprintf(dir, sizeof(dir), "%s", path);
	o->fd = open(dirname(dir), O_TMPFILE | O_WRONLY | O_CLOEXEC, mode & 0777);
	if (o->fd >= 0) {
		o->tmp[0] = '\0';
		o->unnamed = true;
		if (fchmod(o->fd, mode)) {
			int ret = cmk_errf(e, -errno, "%s: chmod failed: %s",
					   path, strerror(errno));

			cmk_outfile_abort(o);
			return ret;
		}
		return 0;
	}
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return cmk_errf(e, -errno,
				"%s: cannot create a temporary file in its directory: %s",
				path, strerror(errno));
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd < 0) {
		o->tmp[0] = '\0';
		return cmk_errf(e, -errno,
				"%s: cannot create a temporary file next to it: %s",
				path, strerror(errno));
	}
	if (fchmod(o->fd, mode)) {
		int ret = cmk_errf(e, -errno, "%s: chmod failed: %s", o->tmp,
				   strerror(errno));

		cmk_outfile_abort(o);
		return ret;
	}
	return 0;
}

/*
 * Give the unnamed file of @o the name @path (-EEXIST if taken).
 * linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; /proc/self/fd does not.
 */
static int link_unnamed(const struct cmk_outfile *o, const char *path)
{
	char proc[64];

	if (!linkat(o->fd, "", AT_FDCWD, path, AT_EMPTY_PATH))
		return 0;
	if (errno != ENOENT && errno != EPERM)
		return -errno;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", o->fd);
	return linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) ? -errno : 0;
}

static int commit_unnamed(struct cmk_outfile *o, bool replace, struct cmk_err *e)
{
	int ret;

	if (!replace) {
		ret = link_unnamed(o, o->path);
	} else {
		/* A complete file under a temporary name, then renamed over. */
		for (int i = 0; i < 100; i++) {
			uint32_t r;

			if (cmk_random_fill(&r, sizeof(r), "a temporary name", e))
				return -EIO;
			if (snprintf(o->tmp, sizeof(o->tmp), "%s.tmp.%08x", o->path,
				     r) >= (int)sizeof(o->tmp))
				return cmk_errf(e, -ENAMETOOLONG, "%s: path too long",
						o->path);
			ret = link_unnamed(o, o->tmp);
			if (ret != -EEXIST)
				break;
		}
		if (!ret && rename(o->tmp, o->path))
			ret = -errno;
		if (ret)
			unlink(o->tmp);
		o->tmp[0] = '\0';
	}
	if (ret)
		return cmk_errf(e, ret, "%s: %s", o->path,
				ret == -EEXIST ? "exists already; not replaced" :
				strerror(-ret));
	return 0;
}

int cmk_outfile_commit(struct cmk_outfile *o, bool replace, struct cmk_err *e)
{
	char dir[PATH_MAX];
	int ret;

	if (o->unnamed) {
		if (fsync(o->fd)) {
			ret = cmk_errf(e, -errno, "%s: fsync failed: %s", o->path,
				       strerror(errno));
			goto fail;
		}
		ret = commit_unnamed(o, replace, e);
		if (ret)
			goto fail;
		if (close(o->fd)) {
			o->fd = -1;
			return cmk_errf(e, -errno, "%s: close failed: %s", o->path,
					strerror(errno));
		}
		o->fd = -1;
		snprintf(dir, sizeof(dir), "%s", o->path);
		return cmk_fsync_dir(dirname(dir), e);
	}
	if (fsync(o->fd)) {
		ret = cmk_errf(e, -errno, "%s: fsync failed: %s", o->tmp,
			       strerror(errno));
		goto fail;
	}
	if (close(o->fd)) {
		o->fd = -1;
		ret = cmk_errf(e, -errno, "%s: close failed: %s", o->tmp,
			       strerror(errno));
		goto fail;
	}
	o->fd = -1;
	ret = renameat2(AT_FDCWD, o->tmp, AT_FDCWD, o->path,
			replace ? 0 : RENAME_NOREPLACE) ? -errno : 0;
	if (ret == -EINVAL && !replace) {
		/*
		 * No RENAME_NOREPLACE here (NFS, some FUSE): link() also
		 * fails if the name exists, atomically; then drop the
		 * temporary name.
		 */
		ret = link(o->tmp, o->path) ? -errno : 0;
		if (!ret)
			unlink(o->tmp);
	}
	if (ret) {
		ret = cmk_errf(e, ret, "%s: %s", o->path,
			       ret == -EEXIST ? "exists already; not replaced" :
			       strerror(-ret));
		goto fail;
	}
	o->tmp[0] = '\0';
	snprintf(dir, sizeof(dir), "%s", o->path);
	return cmk_fsync_dir(dirname(dir), e);
fail:
	cmk_outfile_abort(o);
	return ret;
}

void cmk_outfile_abort(struct cmk_outfile *o)
{
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	if (o->tmp[0])
		unlink(o->tmp);
	o->tmp[0] = '\0';
}

int cmk_pread_full(int fd, void *buf, size_t len, off_t off,
		   const char *what, struct cmk_err *e)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cmk_errf(e, -errno, "%s: read of %zu bytes at %lld failed: %s",
					what, len, (long long)off, strerror(errno));
		if (n == 0)
			return cmk_errf(e, -ENOSPC,
					"%s: too small: need %lld bytes, ends at %lld",
					what, (long long)(off + (off_t)len),
					(long long)(off + (off_t)done));
		done += (size_t)n;
	}
	return 0;
}

int cmk_pwrite_full(int fd, const void *buf, size_t len, off_t off,
		    const char *what, struct cmk_err *e)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
				   off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cmk_errf(e, n < 0 ? -errno : -EIO,
					"%s: write of %zu bytes at %lld failed: %s",
					what, len, (long long)off,
					n < 0 ? strerror(errno) : "no progress");
		done += (size_t)n;
	}
	return 0;
}

int cmk_fsync_dir(const char *dir, struct cmk_err *e)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return cmk_errf(e, -errno, "cannot open %s: %s", dir, strerror(errno));
	if (fsync(fd))
		ret = cmk_errf(e, -errno, "fsync of %s failed: %s", dir, strerror(errno));
	close(fd);
	return ret;
}

int cmk_mkdir_durable(const char *path, mode_t mode, struct cmk_err *e)
{
	char parent[PATH_MAX];
	struct stat st;
	int ret;

	if (!stat(path, &st)) {
		if (!S_ISDIR(st.st_mode))
			return cmk_errf(e, -ENOTDIR, "%s exists and is not a directory",
					path);
		return 0;
	}
	if (errno != ENOENT)
		return cmk_errf(e, -errno, "cannot stat %s: %s", path, strerror(errno));
	if (snprintf(parent, sizeof(parent), "%s", path) >= (int)sizeof(parent))
		return cmk_errf(e, -ENAMETOOLONG, "%s: path too long", path);
	dirname(parent);
	if (strcmp(parent, path)) {
		ret = cmk_mkdir_durable(parent, mode, e);
		if (ret)
			return ret;
	}
	if (mkdir(path, mode) && errno != EEXIST)
		return cmk_errf(e, -errno, "cannot create %s: %s", path, strerror(errno));
	/* dirname() of a copy: the buffer above was changed in place. */
	snprintf(parent, sizeof(parent), "%s", path);
	return cmk_fsync_dir(dirname(parent), e);
}

int cmk_dev_size(int fd, uint64_t *size, struct cmk_err *e)
{
	struct stat sb;

	if (fstat(fd, &sb))
		return cmk_errf(e, -errno, "device: fstat failed: %s", strerror(errno));
	if (S_ISREG(sb.st_mode)) {
		*size = (uint64_t)sb.st_size;
		return 0;
	}
	if (S_ISBLK(sb.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size))
			return cmk_errf(e, -errno, "device: BLKGETSIZE64 failed: %s",
					strerror(errno));
		return 0;
	}
	return cmk_errf(e, -ENOTBLK, "device: neither a block device nor a regular file");
}
