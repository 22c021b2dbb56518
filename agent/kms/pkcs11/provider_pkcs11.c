// SPDX-License-Identifier: GPL-2.0
/*
 * provider_pkcs11.c - PKCS#11 provider (see provider_pkcs11.h,
 * Documentation/pkcs11.rst).
 */
#include "kms/pkcs11/provider_pkcs11.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <p11-kit/pkcs11.h>

#include "kms/pkcs11/p11uri.h"
#include "core/secret.h"

static const char *const p11_settings[] = {
	"module", "pin_file", "pin_env", NULL,
};

/* ---- CK_RV -> reason: the table of Documentation/pkcs11.rst --------------- */

static const struct {
	CK_RV rv;
	const char *name;
	enum cmk_reason reason;
	bool reopen;		/* close the session, open a new one, retry once */
} rv_tab[] = {
	/* the key owner or the token said no */
	{ CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED", CMK_R_DISABLED, false },
	{ CKR_KEY_HANDLE_INVALID,	"CKR_KEY_HANDLE_INVALID",	CMK_R_NOT_FOUND, true },
	{ CKR_OBJECT_HANDLE_INVALID,	"CKR_OBJECT_HANDLE_INVALID",	CMK_R_NOT_FOUND, true },
	{ CKR_KEY_TYPE_INCONSISTENT,	"CKR_KEY_TYPE_INCONSISTENT",	CMK_R_DENIED,	false },
	{ CKR_ENCRYPTED_DATA_INVALID,	"CKR_ENCRYPTED_DATA_INVALID",	CMK_R_INVALID_CIPHERTEXT, false },
	{ CKR_ENCRYPTED_DATA_LEN_RANGE,	"CKR_ENCRYPTED_DATA_LEN_RANGE",	CMK_R_INVALID_CIPHERTEXT, false },
	{ CKR_PIN_INCORRECT,		"CKR_PIN_INCORRECT",		CMK_R_DENIED,	false },
	{ CKR_PIN_INVALID,		"CKR_PIN_INVALID",		CMK_R_DENIED,	false },
	{ CKR_PIN_LEN_RANGE,		"CKR_PIN_LEN_RANGE",		CMK_R_DENIED,	false },
	{ CKR_PIN_LOCKED,		"CKR_PIN_LOCKED",		CMK_R_DENIED,	false },
	{ CKR_PIN_EXPIRED,		"CKR_PIN_EXPIRED",		CMK_R_DENIED,	false },
	{ CKR_USER_PIN_NOT_INITIALIZED,	"CKR_USER_PIN_NOT_INITIALIZED",	CMK_R_DENIED,	false },
	/* the device or the session could not answer now */
	{ CKR_DEVICE_ERROR,		"CKR_DEVICE_ERROR",		CMK_R_UNAVAILABLE, true },
	{ CKR_DEVICE_MEMORY,		"CKR_DEVICE_MEMORY",		CMK_R_UNAVAILABLE, true },
	{ CKR_DEVICE_REMOVED,		"CKR_DEVICE_REMOVED",		CMK_R_UNAVAILABLE, true },
	{ CKR_TOKEN_NOT_PRESENT,	"CKR_TOKEN_NOT_PRESENT",	CMK_R_UNAVAILABLE, true },
	{ CKR_TOKEN_NOT_RECOGNIZED,	"CKR_TOKEN_NOT_RECOGNIZED",	CMK_R_UNAVAILABLE, true },
	{ CKR_SLOT_ID_INVALID,		"CKR_SLOT_ID_INVALID",		CMK_R_UNAVAILABLE, true },
	{ CKR_SESSION_HANDLE_INVALID,	"CKR_SESSION_HANDLE_INVALID",	CMK_R_UNAVAILABLE, true },
	{ CKR_SESSION_CLOSED,		"CKR_SESSION_CLOSED",		CMK_R_UNAVAILABLE, true },
	{ CKR_SESSION_COUNT,		"CKR_SESSION_COUNT",		CMK_R_UNAVAILABLE, true },
	{ CKR_USER_NOT_LOGGED_IN,	"CKR_USER_NOT_LOGGED_IN",	CMK_R_UNAVAILABLE, true },
	{ CKR_OPERATION_ACTIVE,		"CKR_OPERATION_ACTIVE",		CMK_R_UNAVAILABLE, true },
	{ CKR_CRYPTOKI_NOT_INITIALIZED,	"CKR_CRYPTOKI_NOT_INITIALIZED",	CMK_R_UNAVAILABLE, true },
	{ CKR_GENERAL_ERROR,		"CKR_GENERAL_ERROR",		CMK_R_UNAVAILABLE, false },
	{ CKR_FUNCTION_FAILED,		"CKR_FUNCTION_FAILED",		CMK_R_UNAVAILABLE, false },
	{ CKR_FUNCTION_CANCELED,	"CKR_FUNCTION_CANCELED",	CMK_R_UNAVAILABLE, false },
	{ CKR_HOST_MEMORY,		"CKR_HOST_MEMORY",		CMK_R_UNAVAILABLE, false },
	/* local: named for messages only */
	{ CKR_OK,			"CKR_OK",			CMK_R_NONE,	false },
	{ CKR_ARGUMENTS_BAD,		"CKR_ARGUMENTS_BAD",		CMK_R_LOCAL,	false },
	{ CKR_MECHANISM_INVALID,	"CKR_MECHANISM_INVALID",	CMK_R_LOCAL,	false },
	{ CKR_MECHANISM_PARAM_INVALID,	"CKR_MECHANISM_PARAM_INVALID",	CMK_R_LOCAL,	false },
	{ CKR_DATA_LEN_RANGE,		"CKR_DATA_LEN_RANGE",		CMK_R_LOCAL,	false },
	{ CKR_BUFFER_TOO_SMALL,		"CKR_BUFFER_TOO_SMALL",		CMK_R_LOCAL,	false },
	{ CKR_FUNCTION_NOT_SUPPORTED,	"CKR_FUNCTION_NOT_SUPPORTED",	CMK_R_LOCAL,	false },
	{ CKR_USER_TYPE_INVALID,	"CKR_USER_TYPE_INVALID",	CMK_R_LOCAL,	false },
	{ CKR_ATTRIBUTE_TYPE_INVALID,	"CKR_ATTRIBUTE_TYPE_INVALID",	CMK_R_LOCAL,	false },
	{ CKR_TEMPLATE_INCONSISTENT,	"CKR_TEMPLATE_INCONSISTENT",	CMK_R_LOCAL,	false },
};

#define N_RV (sizeof(rv_tab) / sizeof(rv_tab[0]))

static int rv_index(CK_RV rv)
{
	for (size_t i = 0; i < N_RV; i++)
		if (rv_tab[i].rv == rv)
			return (int)i;
	return -1;
}

enum cmk_reason cmk_p11_reason(unsigned long rv)
{
	int i = rv_index(rv);

	return i >= 0 ? rv_tab[i].reason : CMK_R_LOCAL;
}

const char *cmk_p11_rv_name(unsigned long rv, char *buf, size_t len)
{
	int i = rv_index(rv);

	if (i >= 0)
		return rv_tab[i].name;
	snprintf(buf, len, "CKR_0x%lx", rv);
	return buf;
}

static bool rv_reopen(CK_RV rv)
{
	int i = rv_index(rv);

	return i >= 0 && rv_tab[i].reopen;
}

/* ---- modules: loaded once per process, reference-counted ---------------- */

struct p11mod {
	char *path;
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	bool owned;		/* our C_Initialize did it: ours to C_Finalize */
	int refs;
	struct p11mod *next;
};

static pthread_mutex_t mods_lock = PTHREAD_MUTEX_INITIALIZER;
static struct p11mod *mods;

static CK_RV mod_initialize(struct p11mod *m)
{
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;

	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = m->f->C_Initialize(&args);
	if (rv == CKR_OK)
		m->owned = true;
	/* Another user of the module in this process got there first. */
	return rv == CKR_CRYPTOKI_ALREADY_INITIALIZED ? CKR_OK : rv;
}

static int mod_get(const char *path, struct p11mod **out, struct cmk_err *e)
{
	CK_RV (*gfl)(CK_FUNCTION_LIST_PTR_PTR);
	struct p11mod *m;
	struct stat st;
	char rvb[32];
	CK_RV rv;
	int ret = 0;

	pthread_mutex_lock(&mods_lock);
	for (m = mods; m; m = m->next)
		if (!strcmp(m->path, path)) {
			m->refs++;
			*out = m;
			goto out;
		}
	if (stat(path, &st))
		ret = cmk_errf(e, -ENOENT,
			       "pkcs11: module %s: %s; install the HSM's PKCS#11 library or fix module-path / module",
			       path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		ret = cmk_errf(e, -EINVAL, "pkcs11: module %s is not a regular file", path);
	/* It will run inside the agent: only root (or the agent's user) may change it. */
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		ret = cmk_errf(e, -EPERM,
			       "pkcs11: module %s is writable by group or others (mode %04o); refusing to load it",
			       path, (unsigned int)(st.st_mode & 07777));
	else if (st.st_uid != 0 && st.st_uid != geteuid())
		ret = cmk_errf(e, -EPERM,
			       "pkcs11: module %s is owned by uid %u, not root; refusing to load it",
			       path, (unsigned int)st.st_uid);
	if (ret)
		goto out;
	m = calloc(1, sizeof(*m));
	if (!m || !(m->path = strdup(path))) {
		free(m);
		ret = cmk_errf(e, -ENOMEM, "pkcs11: out of memory");
		goto out;
	}
	m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!m->dl) {
		const char *why = dlerror();

		ret = cmk_errf(e, -ELIBBAD, "pkcs11: cannot load module %s: %.160s",
			       path, why ? why : "dlopen failed");
		goto fail;
	}
	*(void **)&gfl = dlsym(m->dl, "C_GetFunctionList");
	if (!gfl) {
		ret = cmk_errf(e, -ELIBBAD,
			       "pkcs11: %s is not a PKCS#11 module (no C_GetFunctionList)",
			       path);
		goto fail;
	}
	rv = gfl(&m->f);
	if (rv != CKR_OK || !m->f) {
		ret = cmk_errf(e, -ELIBBAD, "pkcs11: module %s: C_GetFunctionList failed: %s",
			       path, cmk_p11_rv_name(rv, rvb, sizeof(rvb)));
		goto fail;
	}
	if (m->f->version.major != 2) {
		ret = cmk_errf(e, -ELIBBAD,
			       "pkcs11: module %s speaks PKCS#11 %u.%u; this agent needs 2.x",
			       path, m->f->version.major, m->f->version.minor);
		goto fail;
	}
	rv = mod_initialize(m);
	if (rv != CKR_OK) {
		ret = cmk_err_kms(e, cmk_p11_reason(rv) == CMK_R_UNAVAILABLE ?
				  CMK_R_UNAVAILABLE : CMK_R_LOCAL,
				  "pkcs11: module %s: C_Initialize failed: %s", path,
				  cmk_p11_rv_name(rv, rvb, sizeof(rvb)));
		goto fail;
	}
	m->refs = 1;
	m->next = mods;
	mods = m;
	*out = m;
	goto out;
fail:
	if (m->dl)
		dlclose(m->dl);
	free(m->path);
	free(m);
out:
	pthread_mutex_unlock(&mods_lock);
	return ret;
}

static void mod_put(struct p11mod *m)
{
	struct p11mod **pp;

	if (!m)
		return;
	pthread_mutex_lock(&mods_lock);
	if (--m->refs == 0) {
		for (pp = &mods; *pp; pp = &(*pp)->next)
			if (*pp == m) {
				*pp = m->next;
				break;
			}
		if (m->owned)
			m->f->C_Finalize(NULL);
		dlclose(m->dl);
		free(m->path);
		free(m);
	}
	pthread_mutex_unlock(&mods_lock);
}

/* ---- provider state ---------------------------------------------------------- */

struct p11 {
	char *module;			/* setting, or NULL */
	char *pin_file;			/* setting, or NULL */
	char *pin_env;			/* setting, or NULL */
	struct p11mod *mod;
	bool have_sess;
	bool sess_stale;		/* reset: log out before the next call */
	CK_SESSION_HANDLE sess;
	CK_SLOT_ID slot;
	char *sel;			/* token selection the session is for */
	char token[40];			/* its label, for messages */
	bool have_rejected;
	unsigned char rejected_pin[SHA256_DIGEST_LENGTH];
	unsigned long calls;
};

static void p11_close_session(struct p11 *p)
{
	if (p->have_sess && p->mod)
		p->mod->f->C_CloseSession(p->sess);
	p->have_sess = false;
	free(p->sel);
	p->sel = NULL;
}

static void p11_close(void *priv)
{
	struct p11 *p = priv;

	if (!p)
		return;
	p11_close_session(p);
	mod_put(p->mod);
	free(p->module);
	free(p->pin_file);
	free(p->pin_env);
	OPENSSL_cleanse(p->rejected_pin, sizeof(p->rejected_pin));
	free(p);
}

static int p11_open(const struct cmk_kv *kv, size_t n, void **priv,
		    struct cmk_err *e)
{
	struct p11 *p = calloc(1, sizeof(*p));
	int ret = 0;

	if (!p)
		return cmk_errf(e, -ENOMEM, "pkcs11: out of memory");
	for (size_t i = 0; i < n && !ret; i++) {
		char **dst = !strcmp(kv[i].key, "module") ? &p->module :
			     !strcmp(kv[i].key, "pin_file") ? &p->pin_file :
			     &p->pin_env;

		if (!kv[i].value[0])
			ret = cmk_errf(e, -EINVAL, "pkcs11: %s is empty", kv[i].key);
		else if (dst != &p->pin_env && kv[i].value[0] != '/')
			ret = cmk_errf(e, -EINVAL, "pkcs11: %s must be an absolute path, got \"%s\"",
				       kv[i].key, kv[i].value);
		else {
			free(*dst);
			*dst = strdup(kv[i].value);
			if (!*dst)
				ret = cmk_errf(e, -ENOMEM, "pkcs11: out of memory");
		}
	}
	if (ret) {
		p11_close(p);
		return ret;
	}
	*priv = p;
	return 0;
}

/* The module for @u: setting and URI must agree; loaded on first use. */
static int p11_module(struct p11 *p, const struct cmk_p11uri *u,
		      struct cmk_err *e)
{
	const char *path = p->module ? p->module : u->module_path;

	if (p->module && u->module_path && strcmp(p->module, u->module_path))
		return cmk_errf(e, -EPERM,
				"pkcs11: the key reference names module %s but the configuration sets module = %s; refusing to load another module",
				u->module_path, p->module);
	if (!path)
		return cmk_errf(e, -EINVAL,
				"pkcs11: no module: add ?module-path=/path/to/module.so to the key reference or set module in [provider \"pkcs11\"]");
	if (p->mod) {
		if (!strcmp(p->mod->path, path))
			return 0;
		return cmk_errf(e, -EPERM,
				"pkcs11: this provider already uses module %s; %s needs another provider instance",
				p->mod->path, path);
	}
	return mod_get(path, &p->mod, e);
}

/* ---- PIN ------------------------------------------------------------------------ */

static int pin_from_file(const char *path, struct cmk_secret **pin,
			 struct cmk_err *e)
{
	struct stat st;
	ssize_t r;
	size_t len = 0;
	int fd, ret = 0;
	unsigned char *d;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return cmk_errf(e, -errno, "pkcs11: PIN file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		ret = cmk_errf(e, -EINVAL, "pkcs11: PIN file %s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & 0077) {
		ret = cmk_errf(e, -EPERM,
			       "pkcs11: PIN file %s is accessible to group or others (mode %04o); chmod 600 it",
			       path, (unsigned int)(st.st_mode & 07777));
		goto out;
	}
	ret = cmk_secret_new(pin, CMK_P11_PIN_MAX + 2, e);
	if (ret)
		goto out;
	d = cmk_secret_data(*pin);
	while (len < CMK_P11_PIN_MAX + 2) {
		r = read(fd, d + len, CMK_P11_PIN_MAX + 2 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = cmk_errf(e, -errno, "pkcs11: PIN file %s: %s", path,
				       strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len && d[len - 1] == '\n')
		len--;
	if (len && d[len - 1] == '\r')
		len--;
	if (len > CMK_P11_PIN_MAX) {
		ret = cmk_errf(e, -EINVAL, "pkcs11: PIN file %s: longer than %d bytes",
			       path, CMK_P11_PIN_MAX);
		goto out;
	}
	if (len == 0) {
		ret = cmk_errf(e, -EINVAL, "pkcs11: PIN file %s is empty", path);
		goto out;
	}
	ret = cmk_secret_truncate(*pin, len, e);
out:
	if (ret)
		cmk_secret_free(pin);
	close(fd);
	return ret;
}

static int pin_from_env(const char *name, struct cmk_secret **pin,
			struct cmk_err *e)
{
	const char *v = getenv(name);
	size_t len = v ? strlen(v) : 0;
	int ret;

	if (!len)
		return cmk_errf(e, -ENOENT, "pkcs11: environment variable %s is not set", name);
	if (len > CMK_P11_PIN_MAX)
		return cmk_errf(e, -EINVAL, "pkcs11: %s is longer than %d bytes",
				name, CMK_P11_PIN_MAX);
	ret = cmk_secret_new(pin, len, e);
	if (!ret)
		memcpy(cmk_secret_data(*pin), v, len);
	return ret;
}

/* The PIN by the documented order; *@pin stays NULL if none is configured. */
static int pin_get(struct p11 *p, const struct cmk_p11uri *u,
		   struct cmk_secret **pin, struct cmk_err *e)
{
	*pin = NULL;
	if (p->pin_file)
		return pin_from_file(p->pin_file, pin, e);
	if (p->pin_env)
		return pin_from_env(p->pin_env, pin, e);
	if (u->pin_file)
		return pin_from_file(u->pin_file, pin, e);
	if (getenv(CMK_P11_PIN_ENV) && *getenv(CMK_P11_PIN_ENV))
		return pin_from_env(CMK_P11_PIN_ENV, pin, e);
	return 0;
}

/* ---- slot, session, login ---------------------------------------------------------- */

/* A string that identifies the token selection of @u, to reuse sessions. */
static char *selection(const struct cmk_p11uri *u)
{
	char *s = NULL;
	char lv[32];

	snprintf(lv, sizeof(lv), "%d.%d", u->has_lib_version ? u->lib_ver_major : -1,
		 u->lib_ver_minor);
	if (asprintf(&s, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%d:%lu\x1f%s\x1f%s\x1f%s",
		     u->token ?: "", u->manufacturer ?: "", u->serial ?: "",
		     u->model ?: "", u->slot_description ?: "",
		     u->slot_manufacturer ?: "", u->has_slot_id, u->slot_id,
		     u->lib_manufacturer ?: "", u->lib_description ?: "", lv) < 0)
		return NULL;
	return s;
}

static bool token_matches(const struct cmk_p11uri *u, CK_SLOT_ID id,
			  const CK_SLOT_INFO *si, const CK_TOKEN_INFO *ti)
{
	if (u->has_slot_id && u->slot_id != id)
		return false;
	if (u->slot_description &&
	    !cmk_p11uri_field_eq(u->slot_description, si->slotDescription,
				 sizeof(si->slotDescription)))
		return false;
	if (u->slot_manufacturer &&
	    !cmk_p11uri_field_eq(u->slot_manufacturer, si->manufacturerID,
				 sizeof(si->manufacturerID)))
		return false;
	if (u->token && !cmk_p11uri_field_eq(u->token, ti->label, sizeof(ti->label)))
		return false;
	if (u->manufacturer &&
	    !cmk_p11uri_field_eq(u->manufacturer, ti->manufacturerID,
				 sizeof(ti->manufacturerID)))
		return false;
	if (u->serial &&
	    !cmk_p11uri_field_eq(u->serial, ti->serialNumber, sizeof(ti->serialNumber)))
		return false;
	if (u->model && !cmk_p11uri_field_eq(u->model, ti->model, sizeof(ti->model)))
		return false;
	return true;
}

/* Library attributes of the URI against C_GetInfo. */
static int library_matches(struct p11 *p, const struct cmk_p11uri *u,
			   struct cmk_err *e)
{
	CK_INFO info;
	CK_RV rv;
	char rvb[32];

	if (!u->lib_manufacturer && !u->lib_description && !u->has_lib_version)
		return 0;
	rv = p->mod->f->C_GetInfo(&info);
	if (rv != CKR_OK)
		return cmk_err_kms(e, CMK_R_UNAVAILABLE, "pkcs11: C_GetInfo failed: %s",
				   cmk_p11_rv_name(rv, rvb, sizeof(rvb)));
	if ((u->lib_manufacturer &&
	     !cmk_p11uri_field_eq(u->lib_manufacturer, info.manufacturerID,
				  sizeof(info.manufacturerID))) ||
	    (u->lib_description &&
	     !cmk_p11uri_field_eq(u->lib_description, info.libraryDescription,
				  sizeof(info.libraryDescription))) ||
	    (u->has_lib_version &&
	     (info.libraryVersion.major != u->lib_ver_major ||
	      (u->lib_ver_minor >= 0 && info.libraryVersion.minor != u->lib_ver_minor))))
		return cmk_errf(e, -ENODEV,
				"pkcs11: module %s does not match the library attributes of the key reference",
				p->mod->path);
	return 0;
}

/* The one slot whose token matches @u. */
static int find_slot(struct p11 *p, const struct cmk_p11uri *u,
		     CK_SLOT_ID *slot, CK_TOKEN_INFO *tinfo, struct cmk_err *e)
{
	CK_FUNCTION_LIST_PTR f = p->mod->f;
	CK_SLOT_ID *ids = NULL;
	CK_ULONG n = 0;
	CK_RV rv;
	char rvb[32], seen[160] = "", lab[33];
	int found = 0, ret = 0;

	rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv == CKR_OK && n) {
		ids = calloc(n, sizeof(*ids));
		if (!ids)
			return cmk_errf(e, -ENOMEM, "pkcs11: out of memory");
		rv = f->C_GetSlotList(CK_TRUE, ids, &n);
	}
	if (rv != CKR_OK) {
		ret = cmk_err_kms(e, cmk_p11_reason(rv) == CMK_R_LOCAL ? CMK_R_UNAVAILABLE :
				  cmk_p11_reason(rv),
				  "pkcs11: module %s: C_GetSlotList failed: %s",
				  p->mod->path, cmk_p11_rv_name(rv, rvb, sizeof(rvb)));
		goto out;
	}
	for (CK_ULONG i = 0; i < n; i++) {
		CK_SLOT_INFO si;
		CK_TOKEN_INFO ti;

		if (f->C_GetSlotInfo(ids[i], &si) != CKR_OK ||
		    f->C_GetTokenInfo(ids[i], &ti) != CKR_OK)
			continue;	/* removed meanwhile */
		cmk_p11uri_field_str(ti.label, sizeof(ti.label), lab, sizeof(lab));
		if (strlen(seen) + strlen(lab) + 4 < sizeof(seen))
			snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen),
				 "%s\"%s\"", seen[0] ? ", " : "", lab);
		if (!token_matches(u, ids[i], &si, &ti))
			continue;
		if (found++ == 0) {
			*slot = ids[i];
			*tinfo = ti;
		}
	}
	if (found > 1)
		ret = cmk_errf(e, -ENOTUNIQ,
			       "pkcs11: %d tokens match token=%s; add serial= (or slot-id=) to the key reference",
			       found, u->token ? u->token : "(any)");
	else if (!found)
		/* An HSM unplugged or a partition offline looks the same: retry. */
		ret = cmk_err_kms(e, CMK_R_UNAVAILABLE,
				  "pkcs11: no token matches token=%s%s%s (present: %s); is the HSM connected and the token initialised?",
				  u->token ? u->token : "(any)", u->serial ? " serial=" : "",
				  u->serial ? u->serial : "", seen[0] ? seen : "none");
out:
	free(ids);
	return ret;
}

static void pin_digest(const struct cmk_secret *pin, unsigned char *out)
{
	SHA256(cmk_secret_cdata(pin), cmk_secret_len(pin), out);
}

static int login(struct p11 *p, const struct cmk_p11uri *u,
		 const CK_TOKEN_INFO *ti, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *pin = NULL;
	unsigned char dg[SHA256_DIGEST_LENGTH];
	char rvb[32];
	CK_RV rv;
	int ret;

	ret = pin_get(p, u, &pin, e);
	if (ret)
		return ret;
	if (!pin) {
		if (ti->flags & CKF_LOGIN_REQUIRED)
			return cmk_errf(e, -ENOKEY,
					"pkcs11: token \"%s\" needs the user PIN: set pin_file or pin_env in [provider \"pkcs11\"], pin-source in the key reference, or %s",
					p->token, CMK_P11_PIN_ENV);
		return 0;
	}
	if (ti->flags & CKF_USER_PIN_LOCKED)
		return cmk_err_kms(e, CMK_R_DENIED,
				   "pkcs11: token \"%s\": the user PIN is locked; the security officer must unlock or reset it",
				   p->token);
	pin_digest(pin, dg);
	if (p->have_rejected && !CRYPTO_memcmp(dg, p->rejected_pin, sizeof(dg))) {
		OPENSSL_cleanse(dg, sizeof(dg));
		return cmk_err_kms(e, CMK_R_DENIED,
				   "pkcs11: token \"%s\" rejected this PIN before (CKR_PIN_INCORRECT); not presenting it again, so the token does not lock it; fix the PIN source",
				   p->token);
	}
	rv = p->mod->f->C_Login(p->sess, CKU_USER, cmk_secret_data(pin),
				cmk_secret_len(pin));
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
		p->have_rejected = false;
		OPENSSL_cleanse(dg, sizeof(dg));
		return 0;
	}
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_INVALID) {
		memcpy(p->rejected_pin, dg, sizeof(dg));
		p->have_rejected = true;
	}
	OPENSSL_cleanse(dg, sizeof(dg));
	return cmk_err_kms(e, cmk_p11_reason(rv),
			   "pkcs11: token \"%s\": C_Login failed: %s%s", p->token,
			   cmk_p11_rv_name(rv, rvb, sizeof(rvb)),
			   cmk_p11_reason(rv) == CMK_R_DENIED ?
			   "; the token refused the agent's PIN" : "");
}

/* A logged-in session on the token @u selects (the existing one if it is). */
static int session(struct p11 *p, const struct cmk_p11uri *u, struct cmk_err *e)
{
	CK_TOKEN_INFO ti;
	CK_SLOT_ID slot = 0;
	char *sel, rvb[32];
	CK_RV rv;
	int ret;

	sel = selection(u);
	if (!sel)
		return cmk_errf(e, -ENOMEM, "pkcs11: out of memory");
	if (p->sess_stale) {
		p11_close_session(p);
		p->sess_stale = false;
	}
	if (p->have_sess && p->sel && !strcmp(p->sel, sel)) {
		free(sel);
		return 0;
	}
	p11_close_session(p);
	ret = library_matches(p, u, e);
	if (!ret)
		ret = find_slot(p, u, &slot, &ti, e);
	if (ret)
		goto out;
	cmk_p11uri_field_str(ti.label, sizeof(ti.label), p->token, sizeof(p->token));
	rv = p->mod->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &p->sess);
	if (rv != CKR_OK) {
		ret = cmk_err_kms(e, cmk_p11_reason(rv),
				  "pkcs11: token \"%s\": C_OpenSession failed: %s",
				  p->token, cmk_p11_rv_name(rv, rvb, sizeof(rvb)));
		goto out;
	}
	p->have_sess = true;
	p->slot = slot;
	ret = login(p, u, &ti, e);
	if (ret) {
		p11_close_session(p);
		goto out;
	}
	p->sel = sel;
	sel = NULL;
out:
	free(sel);
	return ret;
}

static void describe_key(const struct cmk_p11uri *u, char *out, size_t len)
{
	size_t o;

	snprintf(out, len, "%s%s", u->object ? "object=" : "", u->object ? u->object : "");
	if (u->has_id) {
		o = strlen(out);
		snprintf(out + o, len - o, "%sid=", u->object ? ";" : "");
		for (size_t i = 0; i < u->id_len && strlen(out) + 4 < len; i++) {
			o = strlen(out);
			snprintf(out + o, len - o, "%%%02x", u->id[i]);
		}
	}
}

/* The AES secret key @u names: CK_RV, and *@h; *@found = 0, 1 or 2 (many). */
static CK_RV find_key(struct p11 *p, const struct cmk_p11uri *u,
		      CK_OBJECT_HANDLE *h, CK_ULONG *found)
{
	CK_FUNCTION_LIST_PTR f = p->mod->f;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE t[4] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
	};
	CK_OBJECT_HANDLE hs[2];
	CK_ULONG nt = 2;
	CK_RV rv, rv2;

	if (u->object)
		t[nt++] = (CK_ATTRIBUTE){ CKA_LABEL, u->object, strlen(u->object) };
	if (u->has_id)
		t[nt++] = (CK_ATTRIBUTE){ CKA_ID, u->id, u->id_len };
	*found = 0;
	rv = f->C_FindObjectsInit(p->sess, t, nt);
	if (rv != CKR_OK)
		return rv;
	rv = f->C_FindObjects(p->sess, hs, 2, found);
	rv2 = f->C_FindObjectsFinal(p->sess);
	if (rv == CKR_OK)
		rv = rv2;
	if (rv == CKR_OK && *found)
		*h = hs[0];
	return rv;
}

/* ---- wrap / unwrap ------------------------------------------------------------------ */

struct op {
	bool enc;
	const unsigned char *in;	/* plaintext or IV|ct|tag */
	size_t in_len;
	const unsigned char *iv;
	unsigned char *aad;
	size_t aad_len;
	unsigned char *out;		/* ciphertext|tag, or plaintext (locked) */
	size_t out_len;			/* in: room; out: bytes written */
	bool init_ok;			/* C_*Init accepted key and parameters */
};

static CK_RV p11_crypt(struct p11 *p, CK_OBJECT_HANDLE key, struct op *o)
{
	CK_FUNCTION_LIST_PTR f = p->mod->f;
	CK_GCM_PARAMS gp = {
		.pIv = (CK_BYTE_PTR)o->iv, .ulIvLen = CMK_P11_IV_LEN,
		.ulIvBits = CMK_P11_IV_LEN * 8,
		.pAAD = o->aad, .ulAADLen = o->aad_len,
		.ulTagBits = CMK_P11_TAG_LEN * 8,
	};
	CK_MECHANISM m = { CKM_AES_GCM, &gp, sizeof(gp) };
	CK_ULONG n = o->out_len;
	CK_RV rv;

	o->init_ok = false;
	if (o->enc) {
		rv = f->C_EncryptInit(p->sess, &m, key);
		o->init_ok = rv == CKR_OK;
		if (rv == CKR_OK)
			rv = f->C_Encrypt(p->sess, (CK_BYTE_PTR)o->in, o->in_len,
					  o->out, &n);
	} else {
		rv = f->C_DecryptInit(p->sess, &m, key);
		o->init_ok = rv == CKR_OK;
		if (rv == CKR_OK)
			rv = f->C_Decrypt(p->sess, (CK_BYTE_PTR)o->in, o->in_len,
					  o->out, &n);
	}
	o->out_len = n;
	return rv;
}

static void request_id(struct p11 *p, struct cmk_kms_call *call)
{
	if (!call)
		return;
	p->calls++;
	snprintf(call->request_id, sizeof(call->request_id),
		 "pkcs11-%s-slot%lu-%lu", p->token, (unsigned long)p->slot, p->calls);
}

/*
 * A generic failure of C_Decrypt itself, after C_DecryptInit accepted the
 * key and the GCM parameters: SoftHSM2 (and others) report a failed tag
 * check this way instead of CKR_ENCRYPTED_DATA_INVALID.  But a network
 * HSM that is failing over answers the same (PKCS#11 2.40: "the requested
 * function could not be performed"), so this alone proves nothing.
 */
static bool generic_decrypt_failure(const struct op *o, CK_RV rv)
{
	return !o->enc && o->init_ok &&
	       (rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED);
}

/*
 * The differently shaped call that tells the two apart: a round trip of
 * random bytes (not secret) under the same key, mechanism and AAD, on the
 * session the caller just opened.  CKR_OK when the token encrypts and
 * decrypts with this key right now; otherwise the CK_RV that stopped it
 * (CKR_FUNCTION_FAILED if the bytes did not come back).  *@cannot: the
 * token will not let the probe encrypt at all, whatever its health - a
 * decrypt-only key (CKA_ENCRYPT false), or a token that refuses a GCM IV
 * chosen by the caller (FIPS-mode HSMs generate it themselves) - so the
 * probe can never tell a failing token from a refused ciphertext.
 */
static CK_RV probe_roundtrip(struct p11 *p, CK_OBJECT_HANDLE key,
			     const struct op *o, bool *cannot)
{
	unsigned char iv[CMK_P11_IV_LEN], pt[32], ct[32 + CMK_P11_TAG_LEN],
		      back[32 + CMK_P11_TAG_LEN];
	struct op enc = {
		.enc = true, .in = pt, .in_len = sizeof(pt), .iv = iv,
		.aad = o->aad, .aad_len = o->aad_len,
		.out = ct, .out_len = sizeof(ct),
	};
	struct op dec = {
		.enc = false, .in = ct, .in_len = sizeof(ct), .iv = iv,
		.aad = o->aad, .aad_len = o->aad_len,
		.out = back, .out_len = sizeof(back),
	};
	CK_RV rv;

	*cannot = false;
	if (getrandom(iv, sizeof(iv), 0) != sizeof(iv) ||
	    getrandom(pt, sizeof(pt), 0) != sizeof(pt))
		return CKR_FUNCTION_FAILED;
	rv = p11_crypt(p, key, &enc);
	*cannot = rv == CKR_KEY_FUNCTION_NOT_PERMITTED ||
		  rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_MECHANISM_INVALID ||
		  rv == CKR_FUNCTION_NOT_SUPPORTED || rv == CKR_KEY_TYPE_INCONSISTENT;
	if (rv == CKR_OK && enc.out_len != sizeof(ct))
		rv = CKR_FUNCTION_FAILED;
	if (rv == CKR_OK)
		rv = p11_crypt(p, key, &dec);
	if (rv == CKR_OK && (dec.out_len != sizeof(pt) ||
			     CRYPTO_memcmp(back, pt, sizeof(pt))))
		rv = CKR_FUNCTION_FAILED;
	OPENSSL_cleanse(back, sizeof(back));
	OPENSSL_cleanse(pt, sizeof(pt));
	return rv;
}

/*
 * After a generic C_Decrypt failure on two sessions: a third session, the
 * probe above, and then our ciphertext once more.  Returns 0 when the
 * unwrap worked after all; otherwise the error: definitive only if the
 * token decrypts its own round trip with this key but still refuses ours,
 * transient if the token cannot do the round trip either (failing over).
 */
static int confirm_generic(struct p11 *p, const struct cmk_p11uri *u,
			   struct op *o, size_t room, const char *kd,
			   CK_RV first, struct cmk_err *e)
{
	CK_OBJECT_HANDLE key = 0;
	CK_ULONG found = 0;
	char rvb[32], rvb2[32];
	bool cannot = false;
	CK_RV rv;
	int ret;

	p11_close_session(p);
	ret = session(p, u, e);
	if (ret)
		return ret;
	rv = find_key(p, u, &key, &found);
	if (rv == CKR_OK && found != 1)
		rv = CKR_KEY_HANDLE_INVALID;
	if (rv == CKR_OK)
		rv = probe_roundtrip(p, key, o, &cannot);
	if (cannot) {
		p11_close_session(p);
		return cmk_err_kms(e, CMK_R_UNAVAILABLE,
				   "pkcs11: token \"%s\" key %s: C_Decrypt failed with %s on two sessions and cannot be confirmed: the key will not encrypt a probe (%s: decrypt-only key, or the token refuses caller-chosen GCM IVs), so a failing token and a refused wrapped key look the same; not a revocation (grace_s and policy decide)",
				   p->token, kd, cmk_p11_rv_name(first, rvb, sizeof(rvb)),
				   cmk_p11_rv_name(rv, rvb2, sizeof(rvb2)));
	}
	if (rv != CKR_OK) {
		p11_close_session(p);
		return cmk_err_kms(e, CMK_R_UNAVAILABLE,
				   "pkcs11: token \"%s\" key %s: C_Decrypt failed with %s on two sessions, and a round trip of random bytes under the same key failed too (%s): the token is failing (HSM failover?), not refusing the wrapped key",
				   p->token, kd, cmk_p11_rv_name(first, rvb, sizeof(rvb)),
				   cmk_p11_rv_name(rv, rvb2, sizeof(rvb2)));
	}
	o->out_len = room;
	rv = p11_crypt(p, key, o);
	if (rv == CKR_OK)
		return 0;
	if (generic_decrypt_failure(o, rv))
		return cmk_err_kms(e, CMK_R_INVALID_CIPHERTEXT,
				   "pkcs11: token \"%s\" key %s: C_Decrypt failed with %s on three sessions while a round trip of random bytes under the same key works: the wrapped key does not decrypt under this key and encryption context",
				   p->token, kd, cmk_p11_rv_name(rv, rvb, sizeof(rvb)));
	if (rv_reopen(rv))
		p11_close_session(p);
	return cmk_err_kms(e, cmk_p11_reason(rv) == CMK_R_LOCAL ? CMK_R_UNAVAILABLE :
			   cmk_p11_reason(rv),
			   "pkcs11: token \"%s\" key %s: C_Decrypt failed: %s", p->token,
			   kd, cmk_p11_rv_name(rv, rvb, sizeof(rvb)));
}

/*
 * One call: module, session, key, then C_Encrypt/C_Decrypt.  A session or
 * device error closes the session and the whole sequence runs once more
 * on a new one (slot found again, login again).  So does a generic
 * C_Decrypt failure (above); if it happens again on the fresh session,
 * confirm_generic() decides between a failing token and a refusal.
 */
static int p11_call(struct p11 *p, const char *key_ref, struct op *o,
		    struct cmk_kms_call *call, struct cmk_err *e)
{
	const char *opname = o->enc ? "C_Encrypt" : "C_Decrypt";
	struct cmk_p11uri u;
	CK_OBJECT_HANDLE key = 0;
	CK_ULONG found;
	CK_RV rv = CKR_OK;
	char rvb[32], kd[96];
	size_t room = o->out_len;
	bool generic[2] = { false, false };
	int ret;

	ret = cmk_p11uri_parse(key_ref, &u, e);
	if (ret)
		return ret;
	describe_key(&u, kd, sizeof(kd));
	ret = p11_module(p, &u, e);
	if (ret)
		goto out;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (attempt) {
			p11_close_session(p);
			if (rv == CKR_CRYPTOKI_NOT_INITIALIZED)
				mod_initialize(p->mod);
		}
		ret = session(p, &u, e);
		if (ret) {
			/* Only a failure of the device itself is worth a second try. */
			if (attempt == 0 && e && e->cls == CMK_EC_TRANSIENT) {
				rv = CKR_DEVICE_ERROR;
				continue;
			}
			goto out;
		}
		request_id(p, call);
		rv = find_key(p, &u, &key, &found);
		if (rv == CKR_OK && found == 0) {
			ret = cmk_err_kms(e, CMK_R_NOT_FOUND,
					  "pkcs11: token \"%s\" has no AES secret key %s (destroyed, or not visible to the agent's user)",
					  p->token, kd);
			goto out;
		}
		if (rv == CKR_OK && found > 1) {
			ret = cmk_errf(e, -ENOTUNIQ,
				       "pkcs11: token \"%s\" has several AES keys %s; add id= to the key reference",
				       p->token, kd);
			goto out;
		}
		if (rv == CKR_OK) {
			o->out_len = room;
			rv = p11_crypt(p, key, o);
		}
		if (rv == CKR_OK || (!rv_reopen(rv) && !generic_decrypt_failure(o, rv)))
			break;
		generic[attempt] = generic_decrypt_failure(o, rv);
	}
	if (rv == CKR_OK) {
		ret = 0;
		goto out;
	}
	if (rv_reopen(rv))
		p11_close_session(p);
	if (generic[0] && generic[1]) {
		ret = confirm_generic(p, &u, o, room, kd, rv, e);
		goto out;
	}
	switch (cmk_p11_reason(rv)) {
	case CMK_R_DISABLED:
		ret = cmk_err_kms(e, CMK_R_DISABLED,
				  "pkcs11: token \"%s\" key %s: %s refused: %s (the key may not %s: CKA_%s is false)",
				  p->token, kd, opname, cmk_p11_rv_name(rv, rvb, sizeof(rvb)),
				  o->enc ? "encrypt" : "decrypt", o->enc ? "ENCRYPT" : "DECRYPT");
		break;
	case CMK_R_INVALID_CIPHERTEXT:
		ret = cmk_err_kms(e, CMK_R_INVALID_CIPHERTEXT,
				  "pkcs11: token \"%s\" key %s: %s: %s: the wrapped key does not decrypt under this key and encryption context",
				  p->token, kd, opname, cmk_p11_rv_name(rv, rvb, sizeof(rvb)));
		break;
	default:
		ret = cmk_err_kms(e, cmk_p11_reason(rv),
				  "pkcs11: token \"%s\" key %s: %s failed: %s", p->token,
				  kd, opname, cmk_p11_rv_name(rv, rvb, sizeof(rvb)));
		break;
	}
out:
	cmk_p11uri_free(&u);
	return ret;
}

static int p11_wrap(void *priv, const char *key_ref,
		    const struct cmk_secret *plain, const struct cmk_encctx *ctx,
		    unsigned char **wrapped, size_t *wrapped_len,
		    struct cmk_kms_call *call, struct cmk_err *e)
{
	size_t plen = cmk_secret_len(plain);
	unsigned char *out = NULL;
	struct op o = { .enc = true };
	int ret;

	if (plen == 0 || plen > 4096)
		return cmk_errf(e, -EINVAL, "pkcs11: wrap takes 1..4096 bytes");
	ret = cmk_encctx_canonical(ctx, &o.aad, &o.aad_len, e);
	if (ret)
		return ret;
	out = malloc(CMK_P11_OVERHEAD + plen);
	if (!out) {
		ret = cmk_errf(e, -ENOMEM, "pkcs11: out of memory");
		goto out;
	}
	out[0] = CMK_P11_WRAP_VERSION;
	if (getrandom(out + 1, CMK_P11_IV_LEN, 0) != CMK_P11_IV_LEN) {
		ret = cmk_errf(e, -EIO, "pkcs11: getrandom failed for the GCM IV");
		goto out;
	}
	o.iv = out + 1;
	o.in = cmk_secret_cdata(plain);
	o.in_len = plen;
	o.out = out + 1 + CMK_P11_IV_LEN;
	o.out_len = plen + CMK_P11_TAG_LEN;
	ret = p11_call(priv, key_ref, &o, call, e);
	if (ret)
		goto out;
	if (o.out_len != plen + CMK_P11_TAG_LEN) {
		ret = cmk_errf(e, -EPROTO,
			       "pkcs11: C_Encrypt returned %zu bytes for %zu; the module's AES-GCM does not append a %d-byte tag",
			       o.out_len, plen, CMK_P11_TAG_LEN);
		goto out;
	}
	*wrapped = out;
	*wrapped_len = CMK_P11_OVERHEAD + plen;
	out = NULL;
out:
	free(out);
	free(o.aad);
	return ret;
}

static int p11_unwrap(void *priv, const char *key_ref,
		      const unsigned char *wrapped, size_t wrapped_len,
		      const struct cmk_encctx *ctx, struct cmk_secret **plain,
		      struct cmk_kms_call *call, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *out = NULL;
	struct op o = { .enc = false };
	size_t plen;
	int ret;

	if (wrapped_len <= CMK_P11_OVERHEAD ||
	    wrapped_len - CMK_P11_OVERHEAD > 4096 ||
	    wrapped[0] != CMK_P11_WRAP_VERSION)
		return cmk_err_kms(e, CMK_R_INVALID_CIPHERTEXT,
				   "pkcs11: wrapped key is malformed (length %zu or version byte)",
				   wrapped_len);
	plen = wrapped_len - CMK_P11_OVERHEAD;
	ret = cmk_encctx_canonical(ctx, &o.aad, &o.aad_len, e);
	if (ret)
		return ret;
	/* Room for the whole input: some modules ask for it before the tag check. */
	ret = cmk_secret_new(&out, plen + CMK_P11_TAG_LEN, e);
	if (ret)
		goto out;
	o.iv = wrapped + 1;
	o.in = wrapped + 1 + CMK_P11_IV_LEN;
	o.in_len = plen + CMK_P11_TAG_LEN;
	o.out = cmk_secret_data(out);
	o.out_len = plen + CMK_P11_TAG_LEN;
	ret = p11_call(priv, key_ref, &o, call, e);
	if (ret)
		goto out;
	if (o.out_len != plen) {
		ret = cmk_errf(e, -EPROTO,
			       "pkcs11: C_Decrypt returned %zu bytes, expected %zu", o.out_len,
			       plen);
		goto out;
	}
	ret = cmk_secret_truncate(out, plen, e);
	if (ret)
		goto out;
	*plain = out;
	out = NULL;
out:
	free(o.aad);
	return ret;
}

/*
 * A wipe, a revocation or a VM fork: the logged-in session is not used
 * again.  Closing it (C_CloseSession ends the login) can block on a
 * network HSM, and a reset may be asked for on the main thread: it is
 * closed by the next call, on the worker, before it opens a new one.
 */
static void p11_reset(void *priv)
{
	struct p11 *p = priv;

	if (p->have_sess)
		p->sess_stale = true;
}

const struct cmk_provider_ops cmk_provider_pkcs11_ops = {
	.name = "pkcs11",
	.settings = p11_settings,
	.wrapped_kek_min = CMK_P11_OVERHEAD + 32,
	.wrapped_kek_max = CMK_P11_OVERHEAD + 32,
	.open = p11_open,
	.close = p11_close,
	.wrap = p11_wrap,
	.unwrap = p11_unwrap,
	.reset = p11_reset,
};
