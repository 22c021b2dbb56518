// SPDX-License-Identifier: GPL-2.0
/*
 * esdk_s3.c - seal into and open from S3 (see esdk_s3.h).
 *
 * esdk.c reads and writes file descriptors; S3 requests take and give
 * bytes.  A pipe and one thread join them: the thread uploads what the
 * sealer writes, or writes what the download brings for the opener to
 * read.  SIGPIPE is blocked while they run (threads inherit the mask): a
 * side that stops early makes the other's write fail with EPIPE instead
 * of killing the process.
 */
#include "format/esdk_s3.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kms/aws/s3.h"

#define CHUNK	65536

/* ---- SIGPIPE ----------------------------------------------------------------- */

static void sigpipe_block(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

/* Take a SIGPIPE this thread caused, then restore the mask. */
static void sigpipe_restore(const sigset_t *old)
{
	static const struct timespec zero = { 0, 0 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	while (sigtimedwait(&set, NULL, &zero) == SIGPIPE)
		;
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static int read_some(int fd, void *b, size_t n)
{
	ssize_t r;

	do
		r = read(fd, b, n);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : (int)r;
}

/* ---- the upload thread: pipe -> S3 ------------------------------------------------ */

struct up_job {
	int fd;
	struct cmk_s3_upload *u;
	int ret;
	struct cmk_err e;
};

static void *up_main(void *arg)
{
	struct up_job *j = arg;
	unsigned char *b = malloc(CHUNK);
	int n;

	if (!b) {
		j->ret = cmk_errf(&j->e, -ENOMEM, "s3: out of memory");
		goto out;
	}
	while ((n = read_some(j->fd, b, CHUNK)) > 0) {
		j->ret = cmk_s3_upload_write(j->u, b, (size_t)n, &j->e);
		if (j->ret)
			goto out;
	}
	if (n < 0)
		j->ret = cmk_errf(&j->e, n, "s3: reading the sealed stream: %s", strerror(-n));
out:
	free(b);
	/* The sealer's next write fails (EPIPE): it stops too. */
	close(j->fd);
	return NULL;
}

/* ---- the download thread: S3 -> pipe -------------------------------------------------- */

struct down_job {
	struct cmk_s3 *s3;
	const struct cmk_s3_obj *obj;
	int fd;
	int ret;
	struct cmk_err e;
};

static void *down_main(void *arg)
{
	struct down_job *j = arg;

	j->ret = cmk_s3_get(j->s3, j->obj, j->fd, &j->e);
	close(j->fd);	/* the opener sees the end of the message */
	return NULL;
}

/*
 * Open the object on a download thread into @out_fd.  Its error wins when
 * the download failed other than by the opener having stopped reading.
 */
static int open_obj(struct cmk_s3 *s3, const struct cmk_s3_obj *o, int out_fd,
		    const struct cmk_esdk_keysource *src,
		    const struct cmk_encctx *expect, const char *name,
		    struct cmk_esdk_info *info, struct cmk_err *e)
{
	struct down_job j = { .s3 = s3, .obj = o };
	pthread_t th;
	int p[2], r;

	if (pipe2(p, O_CLOEXEC))
		return cmk_errf(e, -errno, "s3: pipe: %s", strerror(errno));
	j.fd = p[1];
	r = pthread_create(&th, NULL, down_main, &j);
	if (r) {
		close(p[0]);
		close(p[1]);
		return cmk_errf(e, -r, "s3: cannot start the download thread: %s", strerror(r));
	}
	r = cmk_esdk_open_from(p[0], out_fd, src, expect, name, info, e);
	close(p[0]);
	pthread_join(th, NULL);
	if (j.ret && j.ret != -EPIPE) {
		*e = j.e;
		return j.ret;
	}
	return r;
}

/* ---- is the existing object the same? ------------------------------------------------------ */

struct cmp_job {
	int fd;			/* the plaintext the opener writes */
	int in_fd;		/* the input, read with pread from 0 */
	bool same;
	int ret;
	struct cmk_err e;
};

static void *cmp_main(void *arg)
{
	struct cmp_job *j = arg;
	unsigned char *a = malloc(CHUNK), *b = malloc(CHUNK);
	off_t off = 0;
	int n;

	j->same = false;
	if (!a || !b) {
		j->ret = cmk_errf(&j->e, -ENOMEM, "s3: out of memory");
		goto out;
	}
	while ((n = read_some(j->fd, a, CHUNK)) > 0) {
		size_t got = 0;

		while (got < (size_t)n) {
			ssize_t r = pread(j->in_fd, b + got, (size_t)n - got, off + (off_t)got);

			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				j->ret = cmk_errf(&j->e, -errno, "s3: reading the input again: %s",
						  strerror(errno));
				goto out;
			}
			if (r == 0)
				goto out;	/* the input is shorter */
			got += (size_t)r;
		}
		if (memcmp(a, b, (size_t)n))
			goto out;
		off += n;
	}
	if (n < 0)
		goto out;
	/* The input must end where the object does. */
	j->same = pread(j->in_fd, b, 1, off) == 0;
out:
	free(a);
	free(b);
	close(j->fd);
	return NULL;
}

/*
 * 0 if the object @o opens under @src with context @ctx and its plaintext
 * is the content of @in_fd; -EEXIST with the reason if not; other errors
 * (S3, KMS) when that cannot be decided.
 */
static int same_object(struct cmk_s3 *s3, const struct cmk_s3_obj *o, int in_fd,
		       const struct cmk_esdk_keysource *src,
		       const struct cmk_encctx *ctx, struct cmk_err *e)
{
	struct cmp_job j = { .in_fd = in_fd };
	struct stat st;
	pthread_t th;
	int p[2], r;

	if (fstat(in_fd, &st) || !S_ISREG(st.st_mode))
		return cmk_errf(e, -EEXIST,
				"s3://%s/%s exists already and the input is a stream that cannot be read again to compare: not replaced (remove the object, or seal from a file)",
				o->bucket, o->key);
	if (pipe2(p, O_CLOEXEC))
		return cmk_errf(e, -errno, "s3: pipe: %s", strerror(errno));
	j.fd = p[0];
	r = pthread_create(&th, NULL, cmp_main, &j);
	if (r) {
		close(p[0]);
		close(p[1]);
		return cmk_errf(e, -r, "s3: cannot start the compare thread: %s", strerror(r));
	}
	r = open_obj(s3, o, p[1], src, ctx, "the existing object", NULL, e);
	close(p[1]);
	pthread_join(th, NULL);
	if (r == -EPERM || r == -EBADMSG || r == -EKEYREJECTED || r == -EPROTO)
		return cmk_errf(e, -EEXIST,
				"s3://%s/%s exists already and is not this input sealed for this context (%s): not replaced",
				o->bucket, o->key, e->msg);
	/* The compare thread stopped reading at the first difference. */
	if (r == -EPIPE || (!r && !j.same))
		return cmk_errf(e, -EEXIST,
				"s3://%s/%s exists already with different content: not replaced (PostgreSQL: a different segment under this name; find out why before removing it)",
				o->bucket, o->key);
	if (r)
		return r;
	if (j.ret) {
		*e = j.e;
		return j.ret;
	}
	return 0;
}

/* ---- SIGINT, SIGTERM, SIGHUP during an upload ---------------------------------------------------- */

/*
 * A seal interrupted by a signal (PostgreSQL's shutdown sends SIGTERM to
 * archive_command, an operator types ^C) must not leave its parts
 * behind: the signals are blocked while the upload runs, and this thread
 * takes them, aborts the multipart upload under way, and lets the signal
 * end the process as it would have.
 */
struct watch {
	pthread_mutex_t mu;
	char upload_id[CMK_S3_UPLOAD_ID_MAX + 1];
	const struct cmk_s3_obj *obj;
	sigset_t sigs;
	atomic_bool done;
};

static void watch_id(void *arg, const char *id)
{
	struct watch *w = arg;

	pthread_mutex_lock(&w->mu);
	snprintf(w->upload_id, sizeof(w->upload_id), "%s", id);
	pthread_mutex_unlock(&w->mu);
}

static void *watch_main(void *arg)
{
	static const struct timespec tick = { 0, 100 * 1000 * 1000 };
	char id[CMK_S3_UPLOAD_ID_MAX + 1];
	struct watch *w = arg;
	struct cmk_s3 s3;
	struct cmk_err e;
	sigset_t one;
	int sig;

	while (!atomic_load(&w->done)) {
		sig = sigtimedwait(&w->sigs, NULL, &tick);
		if (sig <= 0)
			continue;
		pthread_mutex_lock(&w->mu);
		snprintf(id, sizeof(id), "%s", w->upload_id);
		pthread_mutex_unlock(&w->mu);
		if (id[0] && !cmk_s3_open(&s3, &e)) {
			if (cmk_s3_abort_upload_id(&s3, w->obj, id, &e))
				fprintf(stderr, "s3: interrupted: %s\n", e.msg);
			else
				fprintf(stderr, "s3: interrupted by signal %d: the upload of s3://%s/%s was aborted\n",
					sig, w->obj->bucket, w->obj->key);
			cmk_s3_close(&s3);
		}
		signal(sig, SIG_DFL);
		sigemptyset(&one);
		sigaddset(&one, sig);
		pthread_sigmask(SIG_UNBLOCK, &one, NULL);
		raise(sig);
		_exit(128 + sig);
	}
	return NULL;
}

/* ---- the two calls ------------------------------------------------------------------------------ */

int cmk_esdk_seal_s3(int in_fd, const char *url,
		     const struct cmk_esdk_keygen *kg,
		     const struct cmk_esdk_wrapkey *wk,
		     const struct cmk_encctx *ctx,
		     const struct cmk_esdk_seal_opts *opts,
		     const struct cmk_esdk_keysource *src,
		     struct cmk_esdk_info *info, bool *existed,
		     struct cmk_err *e)
{
	struct cmk_s3 s3;
	struct cmk_s3_obj o;
	struct cmk_s3_upload u = { 0 };
	struct up_job j = { .u = &u };
	struct watch w = { .mu = PTHREAD_MUTEX_INITIALIZER, .obj = &o };
	bool s3_open = false, started = false, watching = false;
	sigset_t old;
	pthread_t th, wth;
	int p[2] = { -1, -1 }, ret, r;

	*existed = false;
	sigemptyset(&w.sigs);
	sigaddset(&w.sigs, SIGINT);
	sigaddset(&w.sigs, SIGTERM);
	sigaddset(&w.sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &w.sigs, NULL);
	sigpipe_block(&old);	/* @old: the mask before either */
	ret = cmk_s3_url_parse(url, &o, e);
	if (!ret)
		ret = cmk_s3_open(&s3, e);
	if (ret)
		goto out;
	s3_open = true;
	ret = cmk_s3_upload_start(&s3, &o, &u, e);
	if (ret)
		goto out;
	u.id_changed = watch_id;
	u.id_arg = &w;
	r = pthread_create(&wth, NULL, watch_main, &w);
	if (r) {
		ret = cmk_errf(e, -r, "s3: cannot start the signal thread: %s", strerror(r));
		goto out;
	}
	watching = true;
	if (pipe2(p, O_CLOEXEC)) {
		ret = cmk_errf(e, -errno, "s3: pipe: %s", strerror(errno));
		goto out;
	}
	j.fd = p[0];
	r = pthread_create(&th, NULL, up_main, &j);
	if (r) {
		close(p[0]);
		ret = cmk_errf(e, -r, "s3: cannot start the upload thread: %s", strerror(r));
		goto out;
	}
	started = true;
	ret = kg ? cmk_esdk_seal_with(in_fd, p[1], kg, ctx, opts, info, e) :
		   cmk_esdk_seal(in_fd, p[1], wk, ctx, opts, info, e);
	close(p[1]);
	p[1] = -1;
	pthread_join(th, NULL);
	started = false;
	/* The uploader failed first if the sealer only saw the pipe close. */
	if (j.ret && (!ret || ret == -EPIPE)) {
		*e = j.e;
		ret = j.ret;
	}
	if (ret)
		goto out;
	ret = cmk_s3_upload_finish(&u, e);	/* frees @u */
	if (ret == -EEXIST) {
		ret = same_object(&s3, &o, in_fd, src, ctx, e);
		*existed = !ret;
	}
out:
	if (started)
		pthread_join(th, NULL);
	if (p[1] >= 0)
		close(p[1]);
	cmk_s3_upload_abort(&u);	/* no-op once finished */
	if (watching) {
		atomic_store(&w.done, true);
		pthread_join(wth, NULL);
	}
	if (s3_open)
		cmk_s3_close(&s3);
	sigpipe_restore(&old);
	return ret;
}

int cmk_esdk_open_s3(const char *url, int out_fd,
		     const struct cmk_esdk_keysource *src,
		     const struct cmk_encctx *expect,
		     struct cmk_esdk_info *info, struct cmk_err *e)
{
	struct cmk_s3 s3;
	struct cmk_s3_obj o;
	sigset_t old;
	int ret;

	sigpipe_block(&old);
	ret = cmk_s3_url_parse(url, &o, e);
	if (!ret)
		ret = cmk_s3_open(&s3, e);
	if (!ret) {
		ret = open_obj(&s3, &o, out_fd, src, expect, url, info, e);
		cmk_s3_close(&s3);
	}
	sigpipe_restore(&old);
	return ret;
}
