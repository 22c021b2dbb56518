// SPDX-License-Identifier: GPL-2.0
/*
 * keysock.c - the key socket's wire format and allow-list (keysock.h).
 */
#include "format/keysock.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "format/esdk.h"

static const char *const status_names[] = {
	[CMK_KS_OK] = "ok",
	[CMK_KS_BAD_REQUEST] = "bad_request",
	[CMK_KS_NOT_PERMITTED] = "not_permitted",
	[CMK_KS_REVOKED] = "revoked",
	[CMK_KS_UNAVAILABLE] = "unavailable",
	[CMK_KS_UNKNOWN_KEY] = "unknown_key",
	[CMK_KS_NOT_AUTHENTIC] = "not_authentic",
	[CMK_KS_INTERNAL] = "internal",
	[CMK_KS_BUSY] = "busy",
};

const char *cmk_keysock_status_name(enum cmk_keysock_status s)
{
	return (unsigned int)s <= CMK_KS_STATUS_MAX ? status_names[s] : "unknown";
}

const char *cmk_keysock_op_name(enum cmk_keysock_op op)
{
	switch (op) {
	case CMK_KEYSOCK_NEW_DATA_KEY:
		return "new_data_key";
	case CMK_KEYSOCK_OPEN_EDK:
		return "open_edk";
	}
	return "unknown";
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(unsigned char *p, size_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put_hdr(unsigned char *p, const char *magic, unsigned int code,
		    size_t body_len)
{
	memcpy(p, magic, 4);
	p[4] = CMK_KEYSOCK_VERSION;
	p[5] = (unsigned char)code;
	put16(p + 6, body_len);
}

ssize_t cmk_keysock_req_len(const unsigned char *buf, size_t len,
			    struct cmk_err *e)
{
	size_t n = len < 4 ? len : 4;

	/* Garbage is refused as soon as it shows, not after 8 bytes. */
	if (memcmp(buf, CMK_KEYSOCK_REQ_MAGIC, n))
		return cmk_errf(e, -EBADMSG,
				"key socket request: bad magic (not \"%s\"): not a dm-cmk key request",
				CMK_KEYSOCK_REQ_MAGIC);
	if (len > 4 && buf[4] != CMK_KEYSOCK_VERSION)
		return cmk_errf(e, -EBADMSG,
				"key socket request: protocol version %u; this agent speaks %u",
				buf[4], CMK_KEYSOCK_VERSION);
	if (len < CMK_KEYSOCK_HDR_LEN)
		return 0;
	n = CMK_KEYSOCK_HDR_LEN + (size_t)get16(buf + 6);
	if (n > CMK_KEYSOCK_REQ_MAX)
		return cmk_errf(e, -EMSGSIZE,
				"key socket request: %zu bytes, more than the %d a request may have",
				n, CMK_KEYSOCK_REQ_MAX);
	return (ssize_t)n;
}

/* A cursor over a body: every take is bounds-checked, every field named. */
struct cur {
	const unsigned char *p;
	size_t left;
	size_t off;		/* offset in the request, for messages */
	struct cmk_err *e;
};

static int take(struct cur *c, size_t n, const char *field,
		const unsigned char **out)
{
	if (c->left < n)
		return cmk_errf(c->e, -EBADMSG,
				"key socket request: %s at offset %zu: %zu bytes wanted, %zu left in the body",
				field, c->off, n, c->left);
	*out = c->p;
	c->p += n;
	c->left -= n;
	c->off += n;
	return 0;
}

static int take16(struct cur *c, const char *field, uint16_t *v)
{
	const unsigned char *p = NULL;
	int ret = take(c, 2, field, &p);

	if (!ret)
		*v = get16(p);
	return ret;
}

/* A length-prefixed field of at most @max bytes, copied to *@out. */
static int take_blob(struct cur *c, const char *field, size_t max,
		     unsigned char **out, size_t *len)
{
	const unsigned char *p = NULL;
	uint16_t n;
	int ret;

	ret = take16(c, field, &n);
	if (ret)
		return ret;
	if (n > max)
		return cmk_errf(c->e, -EBADMSG,
				"key socket request: %s: %u bytes, at most %zu",
				field, n, max);
	ret = take(c, n, field, &p);
	if (ret)
		return ret;
	*out = malloc(n ? n : 1);
	if (!*out)
		return cmk_errf(c->e, -ENOMEM, "key socket request: out of memory");
	memcpy(*out, p, n);
	*len = n;
	return 0;
}

static int take_str(struct cur *c, const char *field, unsigned int pair,
		    char **out, size_t *len)
{
	const unsigned char *p = NULL;
	uint16_t n;
	int ret;

	ret = take16(c, field, &n);
	if (!ret)
		ret = take(c, n, field, &p);
	if (ret)
		return ret;
	if (memchr(p, 0, n) || !cmk_esdk_utf8_valid(p, n))
		return cmk_errf(c->e, -EBADMSG,
				"key socket request: encryption context pair %u: %s is not UTF-8 without NUL",
				pair, field);
	*out = strndup((const char *)p, n);
	if (!*out)
		return cmk_errf(c->e, -ENOMEM, "key socket request: out of memory");
	*len = n;
	return 0;
}

static int bytes_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int r = memcmp(a, b, al < bl ? al : bl);

	return r ? r : (al > bl) - (al < bl);
}

/* The encryption context: canonical ESDK Key Value Pairs, core/encctx's limits. */
static int parse_ec(struct cur *c, struct cmk_keysock_req *req)
{
	const unsigned char *at = NULL;
	char *prev = NULL, *k = NULL, *v = NULL;
	size_t prev_len = 0, kl, vl, start;
	uint16_t total, count;
	int ret;

	ret = take16(c, "Key Value Pairs Length", &total);
	if (ret)
		return ret;
	start = c->off;
	ret = take(c, total, "Key Value Pairs", &at);
	if (ret || !total)
		return ret;
	req->ec = malloc(total);
	if (!req->ec)
		return cmk_errf(c->e, -ENOMEM, "key socket request: out of memory");
	memcpy(req->ec, at, total);
	req->ec_len = total;
	{
		struct cur kv = { at, total, start, c->e };

		ret = take16(&kv, "Key Value Pair Count", &count);
		if (ret)
			return ret;
		if (!count)
			return cmk_errf(c->e, -EBADMSG,
					"key socket request: Key Value Pair Count 0 in a non-empty context");
		for (unsigned int i = 1; i <= count; i++) {
			ret = take_str(&kv, "the key", i, &k, &kl);
			if (!ret)
				ret = take_str(&kv, "the value", i, &v, &vl);
			if (ret)
				goto out;
			if (prev && bytes_cmp(prev, prev_len, k, kl) >= 0) {
				ret = cmk_errf(c->e, -EBADMSG,
					       "key socket request: encryption context pair %u: keys must be sorted by their bytes and unique",
					       i);
				goto out;
			}
			ret = cmk_encctx_add(&req->ctx, k, v, c->e);
			if (ret) {
				cmk_err_prefix(c->e, "key socket request: encryption context pair %u", i);
				ret = -EINVAL;
				goto out;
			}
			free(prev);
			prev = k;
			prev_len = kl;
			k = NULL;
			free(v);
			v = NULL;
		}
		if (kv.left)
			ret = cmk_errf(c->e, -EBADMSG,
				       "key socket request: Key Value Pairs Length %u, but the %u pairs take %zu bytes",
				       total, count, total - kv.left);
	}
out:
	free(prev);
	free(k);
	free(v);
	return ret;
}

int cmk_keysock_req_parse(const unsigned char *buf, size_t len,
			  struct cmk_keysock_req *req, struct cmk_err *e)
{
	struct cur c = { buf + CMK_KEYSOCK_HDR_LEN, 0, CMK_KEYSOCK_HDR_LEN, e };
	ssize_t want;
	int ret;

	memset(req, 0, sizeof(*req));
	cmk_encctx_init(&req->ctx);
	want = cmk_keysock_req_len(buf, len, e);
	if (want < 0)
		return (int)want;
	if (!want || (size_t)want != len)
		return cmk_errf(e, -EBADMSG,
				"key socket request: %zu bytes, but its header says %zd",
				len, want ? want : (ssize_t)CMK_KEYSOCK_HDR_LEN);
	c.left = len - CMK_KEYSOCK_HDR_LEN;
	req->op = buf[5];
	if (req->op != CMK_KEYSOCK_NEW_DATA_KEY && req->op != CMK_KEYSOCK_OPEN_EDK)
		return cmk_errf(e, -EBADMSG,
				"key socket request: operation 0x%02x unknown (0x01 new data key, 0x02 open EDK)",
				buf[5]);
	ret = parse_ec(&c, req);
	if (ret)
		goto out;
	if (req->op == CMK_KEYSOCK_OPEN_EDK) {
		struct cmk_esdk_edk *d = &req->edk;

		ret = take_blob(&c, "Key Provider ID", CMK_KEYSOCK_EDK_FIELD_MAX,
				&d->provider_id, &d->provider_id_len);
		if (!ret)
			ret = take_blob(&c, "Key Provider Information",
					CMK_KEYSOCK_EDK_FIELD_MAX, &d->info, &d->info_len);
		if (!ret)
			ret = take_blob(&c, "Encrypted Data Key",
					CMK_KEYSOCK_EDK_FIELD_MAX, &d->ct, &d->ct_len);
		if (ret)
			goto out;
		if (d->provider_id_len != strlen(CMK_ESDK_KEY_NAMESPACE) ||
		    memcmp(d->provider_id, CMK_ESDK_KEY_NAMESPACE, d->provider_id_len)) {
			ret = cmk_errf(e, -EINVAL,
				       "key socket request: Key Provider ID is not \"%s\": not an EDK of this agent",
				       CMK_ESDK_KEY_NAMESPACE);
			goto out;
		}
	}
	if (c.left)
		ret = cmk_errf(e, -EBADMSG,
			       "key socket request: %zu bytes after the last field", c.left);
out:
	if (ret)
		cmk_keysock_req_free(req);
	return ret;
}

void cmk_keysock_req_free(struct cmk_keysock_req *req)
{
	cmk_encctx_free(&req->ctx);
	free(req->ec);
	req->ec = NULL;
	req->ec_len = 0;
	cmk_esdk_edk_free(&req->edk);
}

static size_t edk_len(const struct cmk_esdk_edk *d)
{
	return 6 + d->provider_id_len + d->info_len + d->ct_len;
}

static unsigned char *put_edk(unsigned char *p, const struct cmk_esdk_edk *d)
{
	put16(p, d->provider_id_len);
	memcpy(p + 2, d->provider_id, d->provider_id_len);
	p += 2 + d->provider_id_len;
	put16(p, d->info_len);
	memcpy(p + 2, d->info, d->info_len);
	p += 2 + d->info_len;
	put16(p, d->ct_len);
	memcpy(p + 2, d->ct, d->ct_len);
	return p + 2 + d->ct_len;
}

static bool edk_fits(const struct cmk_esdk_edk *d)
{
	return d->provider_id_len <= CMK_KEYSOCK_EDK_FIELD_MAX &&
	       d->info_len <= CMK_KEYSOCK_EDK_FIELD_MAX &&
	       d->ct_len <= CMK_KEYSOCK_EDK_FIELD_MAX;
}

int cmk_keysock_req_build(enum cmk_keysock_op op, const unsigned char *ec,
			  size_t ec_len, const struct cmk_esdk_edk *edk,
			  unsigned char **out, size_t *out_len, struct cmk_err *e)
{
	size_t n = CMK_KEYSOCK_HDR_LEN + 2 + ec_len;
	unsigned char *p;

	if (op == CMK_KEYSOCK_OPEN_EDK) {
		if (!edk_fits(edk))
			return cmk_errf(e, -EMSGSIZE,
					"an EDK field is larger than the key socket carries (%d bytes)",
					CMK_KEYSOCK_EDK_FIELD_MAX);
		n += edk_len(edk);
	}
	if (n > CMK_KEYSOCK_REQ_MAX)
		return cmk_errf(e, -EMSGSIZE,
				"the encryption context (%zu bytes serialised) makes a key socket request of %zu bytes, more than %d: use a smaller context or --kek",
				ec_len, n, CMK_KEYSOCK_REQ_MAX);
	*out = p = malloc(n);
	if (!p)
		return cmk_errf(e, -ENOMEM, "key socket request: out of memory");
	put_hdr(p, CMK_KEYSOCK_REQ_MAGIC, op, n - CMK_KEYSOCK_HDR_LEN);
	p += CMK_KEYSOCK_HDR_LEN;
	put16(p, ec_len);
	if (ec_len)
		memcpy(p + 2, ec, ec_len);
	p += 2 + ec_len;
	if (op == CMK_KEYSOCK_OPEN_EDK)
		put_edk(p, edk);
	*out_len = n;
	return 0;
}

int cmk_keysock_resp_ok(struct cmk_secret *out, const struct cmk_secret *data_key,
			const struct cmk_esdk_edk *edk, size_t *len,
			struct cmk_err *e)
{
	size_t kl = cmk_secret_len(data_key);
	size_t n = CMK_KEYSOCK_HDR_LEN + kl + (edk ? edk_len(edk) : 0);
	unsigned char *p = cmk_secret_data(out);

	if (n > cmk_secret_len(out) || n > CMK_KEYSOCK_RESP_MAX ||
	    (edk && !edk_fits(edk)))
		return cmk_errf(e, -EMSGSIZE, "key socket response: %zu bytes do not fit", n);
	put_hdr(p, CMK_KEYSOCK_RESP_MAGIC, CMK_KS_OK, n - CMK_KEYSOCK_HDR_LEN);
	memcpy(p + CMK_KEYSOCK_HDR_LEN, cmk_secret_cdata(data_key), kl);
	if (edk)
		put_edk(p + CMK_KEYSOCK_HDR_LEN + kl, edk);
	*len = n;
	return 0;
}

size_t cmk_keysock_resp_err(unsigned char out[CMK_KEYSOCK_RESP_MAX],
			    enum cmk_keysock_status st, const char *msg)
{
	size_t n = strlen(msg);

	if (n > CMK_KEYSOCK_MSG_MAX)
		n = CMK_KEYSOCK_MSG_MAX;
	/* Never cut inside a UTF-8 sequence. */
	while (n && n < strlen(msg) && ((unsigned char)msg[n] & 0xc0) == 0x80)
		n--;
	put_hdr(out, CMK_KEYSOCK_RESP_MAGIC, st, n);
	memcpy(out + CMK_KEYSOCK_HDR_LEN, msg, n);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[CMK_KEYSOCK_HDR_LEN + i] < 0x20 ||
		    out[CMK_KEYSOCK_HDR_LEN + i] == 0x7f)
			out[CMK_KEYSOCK_HDR_LEN + i] = '?';
	return CMK_KEYSOCK_HDR_LEN + n;
}

int cmk_keysock_resp_parse(const unsigned char *buf, size_t len,
			   enum cmk_keysock_op op, enum cmk_keysock_status *st,
			   struct cmk_secret **data_key, struct cmk_esdk_edk *edk,
			   struct cmk_err *e)
{
	struct cur c = { buf + CMK_KEYSOCK_HDR_LEN, 0, CMK_KEYSOCK_HDR_LEN, e };
	const unsigned char *p = NULL;
	char msg[CMK_KEYSOCK_MSG_MAX + 1];
	int ret;

	if (len < CMK_KEYSOCK_HDR_LEN || memcmp(buf, CMK_KEYSOCK_RESP_MAGIC, 4) ||
	    buf[4] != CMK_KEYSOCK_VERSION ||
	    len != CMK_KEYSOCK_HDR_LEN + (size_t)get16(buf + 6) || buf[5] > CMK_KS_STATUS_MAX)
		return cmk_errf(e, -EBADMSG,
				"key socket: the agent's answer is malformed (%zu bytes): another protocol version?",
				len);
	c.left = len - CMK_KEYSOCK_HDR_LEN;
	*st = buf[5];
	if (*st != CMK_KS_OK) {
		/* The bound is here, not in the caller: @len is any u16 frame. */
		if (c.left > CMK_KEYSOCK_MSG_MAX)
			return cmk_errf(e, -EBADMSG,
					"key socket: the agent's refusal carries %zu bytes of message (at most %d): another protocol version?",
					c.left, CMK_KEYSOCK_MSG_MAX);
		memcpy(msg, c.p, c.left);
		msg[c.left] = '\0';
		for (size_t i = 0; i < c.left; i++)
			if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
				msg[i] = '?';
		return cmk_errf(e, -EACCES, "the agent refused (%s): %s",
				cmk_keysock_status_name(*st), msg);
	}
	ret = take(&c, CMK_ESDK_DATA_KEY_LEN, "data key", &p);
	if (ret)
		return -EBADMSG;
	ret = cmk_secret_new(data_key, CMK_ESDK_DATA_KEY_LEN, e);
	if (ret)
		return ret;
	memcpy(cmk_secret_data(*data_key), p, CMK_ESDK_DATA_KEY_LEN);
	if (op == CMK_KEYSOCK_NEW_DATA_KEY) {
		memset(edk, 0, sizeof(*edk));
		ret = take_blob(&c, "Key Provider ID", CMK_KEYSOCK_EDK_FIELD_MAX,
				&edk->provider_id, &edk->provider_id_len);
		if (!ret)
			ret = take_blob(&c, "Key Provider Information",
					CMK_KEYSOCK_EDK_FIELD_MAX, &edk->info, &edk->info_len);
		if (!ret)
			ret = take_blob(&c, "Encrypted Data Key",
					CMK_KEYSOCK_EDK_FIELD_MAX, &edk->ct, &edk->ct_len);
	}
	if (!ret && c.left)
		ret = cmk_errf(e, -EBADMSG, "key socket: %zu bytes after the agent's answer",
			       c.left);
	if (ret) {
		if (op == CMK_KEYSOCK_NEW_DATA_KEY)
			cmk_esdk_edk_free(edk);
		cmk_secret_free(data_key);
		cmk_err_prefix(e, "key socket: the agent's answer is malformed");
		return -EBADMSG;
	}
	return 0;
}

/* ---- allow-list ---------------------------------------------------------- */

static int parse_id(const char *s, unsigned long *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoul(s, &end, 10);
	return errno || *end || *v >= (unsigned long)(uint32_t)-1 ? -EINVAL : 0;
}

int cmk_keysock_allow_parse(const char *s, struct cmk_keysock_allow *a,
			    struct cmk_err *e)
{
	char *copy, *save = NULL, *w;
	int ret = 0;

	memset(a, 0, sizeof(*a));
	if (!s)
		return 0;
	copy = strdup(s);
	if (!copy)
		return cmk_errf(e, -ENOMEM, "key_socket_allow: out of memory");
	for (w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		char *val = strchr(w, ':');
		bool user;
		unsigned long id;

		if (!val || val == w || !val[1]) {
			ret = cmk_errf(e, -EINVAL,
				       "key_socket_allow: \"%s\" is not user:NAME, group:NAME, uid:N or gid:N",
				       w);
			break;
		}
		*val++ = '\0';
		if (!strcmp(w, "uid") || !strcmp(w, "gid")) {
			user = !strcmp(w, "uid");
			if (parse_id(val, &id)) {
				ret = cmk_errf(e, -EINVAL, "key_socket_allow: %s:%s is not a number",
					       w, val);
				break;
			}
		} else if (!strcmp(w, "user")) {
			struct passwd *pw = getpwnam(val);

			user = true;
			if (!pw) {
				ret = cmk_errf(e, -ENOENT, "key_socket_allow: no user \"%s\"", val);
				break;
			}
			id = pw->pw_uid;
		} else if (!strcmp(w, "group")) {
			struct group *gr = getgrnam(val);

			user = false;
			if (!gr) {
				ret = cmk_errf(e, -ENOENT, "key_socket_allow: no group \"%s\"", val);
				break;
			}
			id = gr->gr_gid;
		} else {
			ret = cmk_errf(e, -EINVAL,
				       "key_socket_allow: \"%s:\" is not user:, group:, uid: or gid:",
				       w);
			break;
		}
		if ((user ? a->n_uid : a->n_gid) == CMK_KEYSOCK_ALLOW_MAX) {
			ret = cmk_errf(e, -E2BIG, "key_socket_allow: more than %d %s",
				       CMK_KEYSOCK_ALLOW_MAX, user ? "users" : "groups");
			break;
		}
		if (user)
			a->uid[a->n_uid++] = (uid_t)id;
		else
			a->gid[a->n_gid++] = (gid_t)id;
	}
	free(copy);
	return ret;
}

bool cmk_keysock_allowed(const struct cmk_keysock_allow *a, uid_t uid,
			 const gid_t *gids, size_t n_gids)
{
	if (uid == 0)
		return true;
	for (size_t i = 0; i < a->n_uid; i++)
		if (a->uid[i] == uid)
			return true;
	for (size_t i = 0; i < a->n_gid; i++)
		for (size_t j = 0; j < n_gids; j++)
			if (a->gid[i] == gids[j])
				return true;
	return false;
}
