// SPDX-License-Identifier: GPL-2.0
/*
 * provider_local.c - the key-file provider for demos and tests (see
 * provider_local.h).  NOT FOR PRODUCTION.
 */
#include "kms/local/provider_local.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/aead.h"
#include "core/fileio.h"

_Static_assert(CMK_LOCAL_KEY_LEN == CMK_AEAD_KEY_LEN &&
	       CMK_LOCAL_NONCE_LEN == CMK_AEAD_NONCE_LEN &&
	       CMK_LOCAL_TAG_LEN == CMK_AEAD_TAG_LEN,
	       "a key file's wrap is core/aead's AES-256-GCM");

static const char *const local_settings[] = { NULL };

static const char *const state_names[] = {
	[CMK_LOCAL_ENABLED] = "enabled",
	[CMK_LOCAL_DISABLED] = "disabled",
	[CMK_LOCAL_DESTROYED] = "destroyed",
};

const char *cmk_local_state_name(enum cmk_local_state state)
{
	if ((unsigned int)state > CMK_LOCAL_DESTROYED)
		return "unknown";
	return state_names[state];
}

static int state_path(const char *key, char out[PATH_MAX], struct cmk_err *e)
{
	if (snprintf(out, PATH_MAX, "%s.state", key) >= PATH_MAX)
		return cmk_errf(e, -ENAMETOOLONG, "%s: path too long", key);
	return 0;
}

/*
 * open_regular() - open @path for reading without blocking or following a
 * symlink, and only if it is a regular file owned by us: a FIFO planted as
 * the key or state file must not hang the agent (no checks, no renewals).
 * Returns the fd (blocking again), or -errno with the reason in @e:
 * -EINVAL not a regular file, -EACCES another owner, -ELOOP a symlink.
 */
static int open_regular(const char *path, struct stat *sb, struct cmk_err *e)
{
	int fd, fl, ret;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return cmk_errf(e, -errno, "%s", errno == ELOOP ?
				"is a symbolic link (refused)" : strerror(errno));
	if (fstat(fd, sb)) {
		ret = cmk_errf(e, -errno, "fstat failed: %s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb->st_mode)) {
		ret = cmk_errf(e, -EINVAL, "not a regular file");
		goto fail;
	}
	if (sb->st_uid != geteuid()) {
		ret = cmk_errf(e, -EACCES, "owned by uid %u, not by this user (uid %u)",
			       (unsigned int)sb->st_uid, (unsigned int)geteuid());
		goto fail;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK)) {
		ret = cmk_errf(e, -errno, "fcntl failed: %s", strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return ret;
}

static void make_request_id(struct cmk_kms_call *call)
{
	unsigned char r[8] = { 0 };

	if (!call)
		return;
	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		memset(r, 0, sizeof(r));
	snprintf(call->request_id, sizeof(call->request_id),
		 "local-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2],
		 r[3], r[4], r[5], r[6], r[7]);
}

int cmk_local_key_get_state(const char *path, enum cmk_local_state *state,
			    struct cmk_err *e)
{
	char sp[PATH_MAX], buf[65];
	struct cmk_err tmp;
	struct stat sb;
	size_t len = 0;
	int fd, ret;

	ret = state_path(path, sp, e);
	if (ret)
		return ret;
	fd = open_regular(sp, &sb, &tmp);
	if (fd == -ENOENT) {
		*state = CMK_LOCAL_ENABLED;
		return 0;
	}
	if (fd < 0)
		return cmk_errf(e, fd, "%s: %s", sp, tmp.msg);
	if (sb.st_size >= (off_t)sizeof(buf)) {
		close(fd);
		return cmk_errf(e, -EFBIG, "%s: larger than %zu bytes; is this the right file?",
				sp, sizeof(buf) - 1);
	}
	len = (size_t)sb.st_size;
	ret = cmk_pread_full(fd, buf, len, 0, sp, e);
	close(fd);
	if (ret)
		return ret;
	buf[len] = '\0';
	if (strlen(buf) != len)
		len = strlen(buf);
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	for (int i = CMK_LOCAL_ENABLED; i <= CMK_LOCAL_DESTROYED; i++) {
		if (strcmp(buf, state_names[i]) == 0) {
			*state = (enum cmk_local_state)i;
			return 0;
		}
	}
	return cmk_errf(e, -EINVAL,
			"%s: state is not one of enabled, disabled, destroyed", sp);
}

/*
 * Load the key behind @path into locked memory, honouring its state.  All
 * failures are definitive: the "customer" removed, disabled or broke it.
 */
static int load_key(const char *path, struct cmk_secret **key,
		    struct cmk_err *e)
{
	enum cmk_local_state st;
	struct cmk_err tmp;
	struct stat sb;
	int fd = -1, ret;

	*key = NULL;
	if (!path || !*path)
		return cmk_err_kms(e, CMK_R_NOT_FOUND,
				   "local key: empty key reference; set key_ref to the key file path");
	ret = cmk_local_key_get_state(path, &st, &tmp);
	if (ret)
		return cmk_err_kms(e, CMK_R_DENIED, "local key %s: %s", path,
				   tmp.msg);
	if (st == CMK_LOCAL_DISABLED)
		return cmk_err_kms(e, CMK_R_DISABLED,
				   "local key %s: key disabled; enable it to restore access",
				   path);
	if (st == CMK_LOCAL_DESTROYED)
		return cmk_err_kms(e, CMK_R_DESTROYED,
				   "local key %s: key destroyed; data under it is unrecoverable",
				   path);
	fd = open_regular(path, &sb, &tmp);
	if (fd == -EACCES)
		return cmk_err_kms(e, CMK_R_DENIED, "local key %s: %s", path,
				   tmp.msg);
	if (fd < 0)
		return cmk_err_kms(e, CMK_R_NOT_FOUND,
				   "local key %s: not found or unusable: %s", path,
				   tmp.msg);
	if (sb.st_mode & 077) {
		ret = cmk_err_kms(e, CMK_R_DENIED,
				  "local key %s: refusing a key file readable by group or others; chmod 600 it",
				  path);
		goto out;
	}
	if (sb.st_size != CMK_LOCAL_KEY_LEN) {
		ret = cmk_err_kms(e, CMK_R_DENIED,
				  "local key %s: size %lld, a key file has exactly %d bytes",
				  path, (long long)sb.st_size, CMK_LOCAL_KEY_LEN);
		goto out;
	}
	ret = cmk_secret_new(key, CMK_LOCAL_KEY_LEN, e);
	if (ret)
		goto out;
	ret = cmk_pread_full(fd, cmk_secret_data(*key), CMK_LOCAL_KEY_LEN, 0,
			     path, &tmp);
	if (ret) {
		ret = cmk_err_kms(e, CMK_R_NOT_FOUND, "local key %s: %s", path,
				  tmp.msg);
		goto out;
	}
out:
	if (ret)
		cmk_secret_free(key);
	close(fd);
	return ret;
}

static int local_wrap(void *priv, const char *key_ref,
		      const struct cmk_secret *plain,
		      const struct cmk_encctx *ctx, unsigned char **wrapped,
		      size_t *wrapped_len, struct cmk_kms_call *call,
		      struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *key = NULL;
	unsigned char *aad = NULL, *out = NULL;
	size_t aad_len, plen = cmk_secret_len(plain), olen;
	int ret;

	(void)priv;
	make_request_id(call);
	ret = load_key(key_ref, &key, e);
	if (ret)
		goto out;
	ret = cmk_encctx_canonical(ctx, &aad, &aad_len, e);
	if (ret)
		goto out;
	olen = CMK_LOCAL_OVERHEAD + plen;
	out = malloc(olen);
	if (!out) {
		ret = cmk_errf(e, -ENOMEM, "local key %s: out of memory", key_ref);
		goto out;
	}
	out[0] = CMK_LOCAL_WRAP_VERSION;
	if (getrandom(out + 1, CMK_LOCAL_NONCE_LEN, 0) != CMK_LOCAL_NONCE_LEN) {
		ret = cmk_errf(e, -EIO, "local key %s: getrandom failed", key_ref);
		goto out;
	}
	if (cmk_aead_seal(key, out + 1, aad, aad_len, cmk_secret_cdata(plain),
			  plen, out + 1 + CMK_LOCAL_NONCE_LEN,
			  out + 1 + CMK_LOCAL_NONCE_LEN + plen)) {
		ret = cmk_errf(e, -EIO, "local key %s: AES-GCM encryption failed",
			       key_ref);
		goto out;
	}
	*wrapped = out;
	*wrapped_len = olen;
	out = NULL;
out:
	free(out);
	free(aad);
	return ret;
}

static int local_unwrap(void *priv, const char *key_ref,
			const unsigned char *wrapped, size_t wrapped_len,
			const struct cmk_encctx *ctx, struct cmk_secret **plain,
			struct cmk_kms_call *call, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *key = NULL;
	CMK_SECRET_AUTO struct cmk_secret *out = NULL;
	unsigned char *aad = NULL;
	size_t aad_len, plen;
	int ret;

	(void)priv;
	make_request_id(call);
	ret = load_key(key_ref, &key, e);
	if (ret)
		goto out;
	if (wrapped_len <= CMK_LOCAL_OVERHEAD ||
	    wrapped_len - CMK_LOCAL_OVERHEAD > CMK_SECRET_MAX ||
	    wrapped[0] != CMK_LOCAL_WRAP_VERSION) {
		ret = cmk_err_kms(e, CMK_R_INVALID_CIPHERTEXT,
				  "local key %s: wrapped key is malformed (length %zu or version byte)",
				  key_ref, wrapped_len);
		goto out;
	}
	plen = wrapped_len - CMK_LOCAL_OVERHEAD;
	ret = cmk_encctx_canonical(ctx, &aad, &aad_len, e);
	if (ret)
		goto out;
	ret = cmk_secret_new(&out, plen, e);
	if (ret)
		goto out;
	if (cmk_aead_open(key, wrapped + 1, aad, aad_len,
			  wrapped + 1 + CMK_LOCAL_NONCE_LEN, plen,
			  cmk_secret_data(out),
			  wrapped + wrapped_len - CMK_LOCAL_TAG_LEN)) {
		ret = cmk_err_kms(e, CMK_R_INVALID_CIPHERTEXT,
				  "local key %s: wrapped key does not decrypt under this key and encryption context",
				  key_ref);
		goto out;
	}
	*plain = out;
	out = NULL;
out:
	free(aad);
	return ret;
}

const struct cmk_provider_ops cmk_provider_local_ops = {
	.name = "local",
	.settings = local_settings,
	.wrapped_kek_min = CMK_LOCAL_OVERHEAD + 32,
	.wrapped_kek_max = CMK_LOCAL_OVERHEAD + 32,
	.wrap = local_wrap,
	.unwrap = local_unwrap,
};

int cmk_local_key_create(const char *path, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *key = NULL;
	int fd, ret;

	ret = cmk_secret_random(&key, CMK_LOCAL_KEY_LEN, e);
	if (ret)
		return ret;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return cmk_errf(e, -errno,
				"local key %s: cannot create (it must not exist yet): %s",
				path, strerror(errno));
	ret = cmk_pwrite_full(fd, cmk_secret_cdata(key), CMK_LOCAL_KEY_LEN, 0,
			      path, e);
	if (!ret && fsync(fd))
		ret = cmk_errf(e, -errno, "local key %s: fsync failed: %s", path,
			       strerror(errno));
	close(fd);
	if (ret)
		unlink(path);
	return ret;
}

static int zero_key_file(const char *path, struct cmk_err *e)
{
	unsigned char zero[CMK_LOCAL_KEY_LEN] = { 0 };
	int fd, ret;

	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return cmk_errf(e, -errno, "local key %s: cannot open to destroy: %s",
				path, strerror(errno));
	}
	ret = cmk_pwrite_full(fd, zero, sizeof(zero), 0, path, e);
	if (!ret && fsync(fd))
		ret = cmk_errf(e, -errno, "local key %s: fsync failed: %s", path,
			       strerror(errno));
	close(fd);
	return ret;
}

int cmk_local_key_set_state(const char *path, enum cmk_local_state state,
			    struct cmk_err *e)
{
	enum cmk_local_state cur;
	char sp[PATH_MAX], line[16];
	int ret;

	if ((unsigned int)state > CMK_LOCAL_DESTROYED)
		return cmk_errf(e, -EINVAL, "local key %s: bad state %d", path, state);
	ret = state_path(path, sp, e);
	if (ret)
		return ret;
	ret = cmk_local_key_get_state(path, &cur, e);
	if (ret)
		return ret;
	if (cur == CMK_LOCAL_DESTROYED && state != CMK_LOCAL_DESTROYED)
		return cmk_errf(e, -EPERM,
				"local key %s: destroyed keys cannot be re-enabled",
				path);
	snprintf(line, sizeof(line), "%s\n", state_names[state]);
	ret = cmk_write_file_atomic(sp, line, strlen(line), 0600, e);
	if (ret)
		return ret;
	if (state == CMK_LOCAL_DESTROYED)
		ret = zero_key_file(path, e);
	return ret;
}
