/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fileio.h - file helpers: whole-file reads with a size limit, atomic
 * replacement (temporary file + fsync + rename + directory fsync), and
 * full pread/pwrite loops.
 */
#ifndef CMK_FILEIO_H
#define CMK_FILEIO_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

/*
 * cmk_read_file() - read all of @path (at most @max bytes) into a
 * malloc'd, NUL-terminated buffer.  A larger file is an error (and what was
 * read of it is wiped).
 */
int cmk_read_file(const char *path, size_t max, char **buf, size_t *len,
		  struct cmk_err *e);

/*
 * cmk_read_trusted_file() - cmk_read_file() for a file that steers the
 * agent or holds a credential (agent.conf, the KEK envelope, pins and
 * records, a client secret, a service account key, AWS credentials):
 * whoever can write it can point the agent at another key or KMS.
 * Refused (-EPERM, the message says what to fix) unless the path passes
 * cmk_trusted_path() and it leads to a regular file owned by root or this
 * process's uid and writable by no one else.  The file is opened by the
 * path the walk resolved, without following a link, and checked once
 * opened.  @what names the file's role in messages ("configuration",
 * "KEK envelope").  A buffer that is not handed back is wiped.
 */
int cmk_read_trusted_file(const char *path, size_t max, const char *what,
			  char **buf, size_t *len, struct cmk_err *e);

/*
 * cmk_trusted_path() - walk @path as the kernel would: every directory it
 * passes through (from /, or the working directory's own path) must be
 * owned by root or this process's uid and not writable by group or others
 * unless sticky (as /tmp), and every symbolic link it follows must be owned
 * likewise: then nobody else can change where it leads.  @real gets the
 * resolved path of the last component (not checked itself: the caller
 * opens it with O_NOFOLLOW and checks the file).  -EPERM says which
 * component and what to fix.
 */
int cmk_trusted_path(const char *path, const char *what, char *real, size_t n,
		     struct cmk_err *e);

/*
 * cmk_check_trusted_file() - the checks of cmk_read_trusted_file() for a
 * file a library reads by its path (a CA bundle, a TLS client key):
 * nobody but root can change what the path leads to afterwards.
 */
int cmk_check_trusted_file(const char *path, const char *what, struct cmk_err *e);

/*
 * cmk_write_file_atomic() - replace @path with @len bytes of @data so that
 * a crash leaves either the old or the new contents: write "<path>.tmp.XXXXXX"
 * in the same directory with @mode, fsync it, rename it over @path, fsync
 * the directory.
 */
int cmk_write_file_atomic(const char *path, const void *data, size_t len,
			  mode_t mode, struct cmk_err *e);

/**
 * struct cmk_outfile - a file written in a stream, published whole or not
 * @fd: where to write
 * @path: the final name
 * @tmp: "<path>.tmp.XXXXXX" in the same directory, while unpublished
 *	(empty while @unnamed)
 * @unnamed: an O_TMPFILE file: no name at all until the commit, so a
 *	killed writer leaves nothing behind
 */
struct cmk_outfile {
	int fd;
	bool unnamed;
	char path[PATH_MAX];
	char tmp[PATH_MAX];
};

/*
 * cmk_outfile_open() - create an unnamed file (O_TMPFILE) in @path's
 * directory, or where the filesystem has no O_TMPFILE a named temporary
 * file beside @path (mode @mode).  Nothing appears under @path until
 * cmk_outfile_commit().
 */
int cmk_outfile_open(struct cmk_outfile *o, const char *path, mode_t mode,
		     struct cmk_err *e);

/*
 * cmk_outfile_commit() - fsync, rename to the final name (without
 * @replace: -EEXIST if it exists, atomically), fsync the directory.  On
 * failure the temporary file is removed.
 */
int cmk_outfile_commit(struct cmk_outfile *o, bool replace, struct cmk_err *e);

/* cmk_outfile_abort() - close and remove the temporary file, if any. */
void cmk_outfile_abort(struct cmk_outfile *o);

/* cmk_fsync_dir() - make the entries of directory @dir durable. */
int cmk_fsync_dir(const char *dir, struct cmk_err *e);

/*
 * cmk_mkdir_durable() - create directory @path with @mode, and its missing
 * parents, each entry made durable (its parent fsync'd); an existing
 * directory is fine.
 */
int cmk_mkdir_durable(const char *path, mode_t mode, struct cmk_err *e);

/* cmk_pread_full() / cmk_pwrite_full() - loop until all bytes moved. */
int cmk_pread_full(int fd, void *buf, size_t len, off_t off,
		   const char *what, struct cmk_err *e);
int cmk_pwrite_full(int fd, const void *buf, size_t len, off_t off,
		    const char *what, struct cmk_err *e);

/* cmk_dev_size() - size in bytes of a regular file or block device. */
int cmk_dev_size(int fd, uint64_t *size, struct cmk_err *e);

#endif /* CMK_FILEIO_H */
