// SPDX-License-Identifier: GPL-2.0
/*
 * envelope.c - KEK envelope (see envelope.h).
 */
#include "format/envelope.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/fileio.h"
#include "core/keys.h"

#define INT32_FIELD_MAX 0x7fffffff

void cmk_envelope_init(struct cmk_envelope *env)
{
	memset(env, 0, sizeof(*env));
}

static void wrap_free(struct cmk_kek_wrap *w)
{
	free(w->key_ref);
	free(w->wrapped);
	cmk_encctx_free(&w->ctx);
	memset(w, 0, sizeof(*w));
}

void cmk_envelope_free(struct cmk_envelope *env)
{
	wrap_free(&env->cur);
	wrap_free(&env->prev);
	for (unsigned int i = 0; i < env->n_retired; i++)
		wrap_free(&env->retired[i]);
	memset(env, 0, sizeof(*env));
}

/* ---- parsing ---------------------------------------------------------- */

struct pctx {
	const char *name;	/* file name for messages */
	const char *where;	/* "", "previous." or "retired[N]." */
	struct cmk_err *e;
};

static int field_err(const struct pctx *c, const char *field, const char *why)
{
	return cmk_errf(c->e, -EINVAL, "%s: field \"%s%s\": %s", c->name,
			c->where, field, why);
}

static int get_field(const struct pctx *c, json_object *obj, const char *field,
		     json_type type, json_object **out)
{
	static const char *const type_names[] = {
		[json_type_null] = "null", [json_type_boolean] = "a boolean",
		[json_type_double] = "a number", [json_type_int] = "an integer",
		[json_type_object] = "an object", [json_type_array] = "an array",
		[json_type_string] = "a string",
	};
	char why[64];

	if (!json_object_object_get_ex(obj, field, out))
		return field_err(c, field, "missing");
	if (!json_object_is_type(*out, type)) {
		snprintf(why, sizeof(why), "must be %s", type_names[type]);
		return field_err(c, field, why);
	}
	return 0;
}

static int get_u32(const struct pctx *c, json_object *obj, const char *field,
		   uint32_t min, uint32_t *v)
{
	json_object *o;
	int64_t x;
	int ret = get_field(c, obj, field, json_type_int, &o);

	if (ret)
		return ret;
	errno = 0;
	x = json_object_get_int64(o);
	if (errno || x < (int64_t)min || x > INT32_FIELD_MAX) {
		char why[64];

		snprintf(why, sizeof(why), "must be an integer in %u..%d", min,
			 INT32_FIELD_MAX);
		return field_err(c, field, why);
	}
	*v = (uint32_t)x;
	return 0;
}

static int get_str(const struct pctx *c, json_object *obj, const char *field,
		   size_t max, const char **s)
{
	json_object *o;
	int ret = get_field(c, obj, field, json_type_string, &o);
	size_t len;

	if (ret)
		return ret;
	*s = json_object_get_string(o);
	len = (size_t)json_object_get_string_len(o);
	if (len == 0)
		return field_err(c, field, "must not be empty");
	if (strlen(*s) != len)
		return field_err(c, field, "must not contain NUL characters");
	if (len > max)
		return field_err(c, field, "too long");
	return 0;
}

static int check_known(const struct pctx *c, json_object *obj,
		       const char *const *known)
{
	json_object_object_foreach(obj, key, val) {
		const char *const *k;

		(void)val;
		for (k = known; *k; k++)
			if (strcmp(*k, key) == 0)
				break;
		if (!*k)
			return cmk_errf(c->e, -EINVAL,
					"%s: unknown field \"%s%s\" (written by a newer version?)",
					c->name, c->where, key);
	}
	return 0;
}

static int parse_ctx(const struct pctx *c, json_object *obj,
		     struct cmk_encctx *ctx)
{
	json_object *o;
	int ret = get_field(c, obj, "encryption_context", json_type_object, &o);

	if (ret)
		return ret;
	json_object_object_foreach(o, key, val) {
		char why[CMK_ERR_MSG_MAX];

		if (!json_object_is_type(val, json_type_string) ||
		    strlen(json_object_get_string(val)) !=
		    (size_t)json_object_get_string_len(val))
			return field_err(c, "encryption_context",
					 "values must be strings without NUL");
		ret = cmk_encctx_add(ctx, key, json_object_get_string(val), c->e);
		if (ret) {
			snprintf(why, sizeof(why), "%.200s", c->e->msg);
			return field_err(c, "encryption_context", why);
		}
	}
	return 0;
}

static int parse_wrap(const struct pctx *c, json_object *obj,
		      struct cmk_kek_wrap *w)
{
	const struct cmk_provider_ops *ops;
	const char *s;
	char why[CMK_ERR_MSG_MAX];
	int ret;

	ret = get_u32(c, obj, "kek_version", 1, &w->kek_version);
	if (ret)
		return ret;
	ret = get_str(c, obj, "provider", CMK_PROVIDER_NAME_MAX - 1, &s);
	if (ret)
		return ret;
	ops = cmk_provider_find(s);
	if (!ops) {
		snprintf(why, sizeof(why), "unknown provider \"%.31s\"; known: %s",
			 s, cmk_provider_names());
		return field_err(c, "provider", why);
	}
	snprintf(w->provider, sizeof(w->provider), "%s", s);
	ret = get_str(c, obj, "key_ref", CMK_KEY_REF_MAX, &s);
	if (ret)
		return ret;
	w->key_ref = strdup(s);
	if (!w->key_ref)
		return cmk_errf(c->e, -ENOMEM, "%s: out of memory", c->name);
	ret = parse_ctx(c, obj, &w->ctx);
	if (ret)
		return ret;
	ret = get_str(c, obj, "wrapped_kek", CMK_ENVELOPE_MAX_SIZE, &s);
	if (ret)
		return ret;
	ret = cmk_b64_decode(s, &w->wrapped, &w->wrapped_len, c->e);
	if (ret) {
		snprintf(why, sizeof(why), "%.200s", c->e->msg);
		return field_err(c, "wrapped_kek", why);
	}
	if (w->wrapped_len < ops->wrapped_kek_min ||
	    w->wrapped_len > ops->wrapped_kek_max) {
		snprintf(why, sizeof(why),
			 "wrapped length %zu bytes, provider \"%s\" produces %zu..%zu",
			 w->wrapped_len, ops->name, ops->wrapped_kek_min,
			 ops->wrapped_kek_max);
		return field_err(c, "wrapped_kek", why);
	}
	ret = get_str(c, obj, "created", CMK_TIME_STR, &s);
	if (ret)
		return ret;
	if (cmk_time_parse(s, &w->created))
		return field_err(c, "created",
				 "must be an RFC 3339 UTC time like 2025-01-31T23:59:59Z");
	return 0;
}

int cmk_envelope_parse(const char *json, size_t len, const char *name,
		       struct cmk_envelope *env, struct cmk_err *e)
{
	static const char *const top_fields[] = {
		"format", "version", "kek_id", "kek_version", "provider",
		"key_ref", "encryption_context", "wrapped_kek", "created",
		"previous", "retired", NULL,
	};
	static const char *const prev_fields[] = {
		"kek_version", "provider", "key_ref", "encryption_context",
		"wrapped_kek", "created", NULL,
	};
	struct pctx c = { .name = name, .where = "", .e = e };
	struct json_tokener *tok = NULL;
	json_object *root = NULL, *o;
	char where[32];
	const char *s;
	int ret;

	cmk_envelope_init(env);
	if (len > CMK_ENVELOPE_MAX_SIZE)
		return cmk_errf(e, -EFBIG, "%s: larger than %d bytes", name,
				CMK_ENVELOPE_MAX_SIZE);
	tok = json_tokener_new();
	if (!tok)
		return cmk_errf(e, -ENOMEM, "%s: out of memory", name);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, json, (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success) {
		ret = cmk_errf(e, -EINVAL, "%s: not valid JSON: %s (at offset %zu)",
			       name,
			       json_tokener_error_desc(json_tokener_get_error(tok)),
			       json_tokener_get_parse_end(tok));
		goto out;
	}
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
		if (json[i] != ' ' && json[i] != '\n' && json[i] != '\t' &&
		    json[i] != '\r') {
			ret = cmk_errf(e, -EINVAL,
				       "%s: trailing data after the JSON object at offset %zu",
				       name, i);
			goto out;
		}
	}
	if (!json_object_is_type(root, json_type_object)) {
		ret = cmk_errf(e, -EINVAL, "%s: not a JSON object", name);
		goto out;
	}
	ret = check_known(&c, root, top_fields);
	if (ret)
		goto out;
	ret = get_str(&c, root, "format", 64, &s);
	if (ret)
		goto out;
	if (strcmp(s, CMK_ENVELOPE_FORMAT)) {
		ret = field_err(&c, "format", "must be \"" CMK_ENVELOPE_FORMAT
				"\"; this is not a KEK envelope");
		goto out;
	}
	ret = get_u32(&c, root, "version", 0, &env->version);
	if (ret)
		goto out;
	if (env->version != CMK_ENVELOPE_VERSION) {
		ret = cmk_errf(e, -EPROTONOSUPPORT,
			       "%s: field \"version\": envelope version %u is not supported (this agent reads version %d); upgrade the agent",
			       name, env->version, CMK_ENVELOPE_VERSION);
		goto out;
	}
	ret = get_str(&c, root, "kek_id", 36, &s);
	if (ret)
		goto out;
	if (cmk_uuid_parse(s, env->kek_id)) {
		ret = field_err(&c, "kek_id", "must be a UUID like 0f8fad5b-d9cb-469f-a165-70867728950e");
		goto out;
	}
	ret = parse_wrap(&c, root, &env->cur);
	if (ret)
		goto out;
	if (json_object_object_get_ex(root, "previous", &o)) {
		if (!json_object_is_type(o, json_type_object)) {
			ret = field_err(&c, "previous", "must be an object");
			goto out;
		}
		c.where = "previous.";
		ret = check_known(&c, o, prev_fields);
		if (ret)
			goto out;
		ret = parse_wrap(&c, o, &env->prev);
		if (ret)
			goto out;
		if (env->prev.kek_version >= env->cur.kek_version) {
			ret = field_err(&c, "kek_version",
					"must be lower than the current kek_version");
			goto out;
		}
		env->has_prev = true;
	}
	if (json_object_object_get_ex(root, "retired", &o)) {
		size_t n;
		uint32_t below = env->has_prev ? env->prev.kek_version :
						 env->cur.kek_version;

		c.where = "";
		if (!json_object_is_type(o, json_type_array)) {
			ret = field_err(&c, "retired", "must be an array");
			goto out;
		}
		n = json_object_array_length(o);
		if (n + env->has_prev > CMK_ENVELOPE_RETIRED_MAX) {
			char why[80];

			snprintf(why, sizeof(why),
				 "more than %d retired KEK versions (the previous one counted)",
				 CMK_ENVELOPE_RETIRED_MAX);
			ret = field_err(&c, "retired", why);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			json_object *r = json_object_array_get_idx(o, i);
			struct cmk_kek_wrap *w = &env->retired[i];

			snprintf(where, sizeof(where), "retired[%zu].", i);
			c.where = where;
			if (!json_object_is_type(r, json_type_object)) {
				c.where = "";
				ret = field_err(&c, "retired", "entries must be objects");
				goto out;
			}
			ret = check_known(&c, r, prev_fields);
			if (ret)
				goto out;
			ret = parse_wrap(&c, r, w);
			env->n_retired = (unsigned int)i + 1;
			if (ret)
				goto out;
			if (i && w->kek_version <= env->retired[i - 1].kek_version) {
				ret = field_err(&c, "kek_version",
						"retired versions must be in ascending order");
				goto out;
			}
		}
		if (n && env->retired[n - 1].kek_version >= below) {
			ret = field_err(&c, "kek_version",
					"must be lower than the previous and current kek_version");
			goto out;
		}
	}
	ret = 0;
out:
	if (ret)
		cmk_envelope_free(env);
	json_object_put(root);
	json_tokener_free(tok);
	return ret;
}

int cmk_envelope_read(const char *path, struct cmk_envelope *env,
		      struct cmk_err *e)
{
	char *buf = NULL;
	size_t len;
	int ret;

	cmk_envelope_init(env);
	ret = cmk_read_trusted_file(path, CMK_ENVELOPE_MAX_SIZE, "KEK envelope", &buf,
				    &len, e);
	if (ret)
		return ret;
	ret = cmk_envelope_parse(buf, len, path, env, e);
	free(buf);
	return ret;
}

/* ---- writing ---------------------------------------------------------- */

static int add(json_object *obj, const char *key, json_object *val)
{
	if (!val)
		return -ENOMEM;
	if (json_object_object_add(obj, key, val)) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

static int wrap_to_json(const struct cmk_kek_wrap *w, json_object *obj,
			struct cmk_err *e)
{
	char when[CMK_TIME_STR], *b64 = NULL;
	json_object *ctx;
	int ret;

	if (cmk_time_format(w->created, when))
		return cmk_errf(e, -EINVAL, "envelope: creation time out of range");
	ret = cmk_b64_encode(w->wrapped, w->wrapped_len, &b64, e);
	if (ret)
		return ret;
	ctx = json_object_new_object();
	ret = add(obj, "kek_version", json_object_new_int64(w->kek_version)) ?:
	      add(obj, "provider", json_object_new_string(w->provider)) ?:
	      add(obj, "key_ref", json_object_new_string(w->key_ref)) ?:
	      add(obj, "encryption_context", ctx);
	if (!ret) {
		for (size_t i = 0; i < w->ctx.n && !ret; i++)
			ret = add(ctx, w->ctx.pairs[i].key,
				  json_object_new_string(w->ctx.pairs[i].value));
	}
	ret = ret ?: add(obj, "wrapped_kek", json_object_new_string(b64)) ?:
		     add(obj, "created", json_object_new_string(when));
	free(b64);
	if (ret)
		return cmk_errf(e, ret, "envelope: out of memory");
	return 0;
}

int cmk_envelope_to_json(const struct cmk_envelope *env, char **json,
			 struct cmk_err *e)
{
	json_object *root = json_object_new_object(), *prev, *arr;
	char id[CMK_UUID_STR];
	const char *s;
	int ret;

	*json = NULL;
	if (!root)
		return cmk_errf(e, -ENOMEM, "envelope: out of memory");
	cmk_uuid_format(env->kek_id, id);
	ret = add(root, "format", json_object_new_string(CMK_ENVELOPE_FORMAT)) ?:
	      add(root, "version", json_object_new_int(CMK_ENVELOPE_VERSION)) ?:
	      add(root, "kek_id", json_object_new_string(id));
	if (ret) {
		ret = cmk_errf(e, ret, "envelope: out of memory");
		goto out;
	}
	ret = wrap_to_json(&env->cur, root, e);
	if (ret)
		goto out;
	if (env->has_prev) {
		prev = json_object_new_object();
		ret = add(root, "previous", prev);
		if (ret) {
			ret = cmk_errf(e, ret, "envelope: out of memory");
			goto out;
		}
		ret = wrap_to_json(&env->prev, prev, e);
		if (ret)
			goto out;
	}
	if (env->n_retired) {
		arr = json_object_new_array();
		ret = add(root, "retired", arr);
		for (unsigned int i = 0; !ret && i < env->n_retired; i++) {
			json_object *r = json_object_new_object();

			if (!r || json_object_array_add(arr, r)) {
				json_object_put(r);
				ret = -ENOMEM;
				break;
			}
			ret = wrap_to_json(&env->retired[i], r, e);
			if (ret)
				goto out;
		}
		if (ret) {
			ret = cmk_errf(e, ret, "envelope: out of memory");
			goto out;
		}
	}
	s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
					   JSON_C_TO_STRING_SPACED |
					   JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s || asprintf(json, "%s\n", s) < 0) {
		*json = NULL;
		ret = cmk_errf(e, -ENOMEM, "envelope: out of memory");
	} else if (strlen(*json) > CMK_ENVELOPE_MAX_SIZE) {
		/* Never write what no reader takes. */
		free(*json);
		*json = NULL;
		ret = cmk_errf(e, -EFBIG,
			       "envelope: would be larger than %d bytes (%u retired KEK versions); not written",
			       CMK_ENVELOPE_MAX_SIZE, env->n_retired);
	}
out:
	json_object_put(root);
	return ret;
}

int cmk_envelope_write(const char *path, const struct cmk_envelope *env,
		       struct cmk_err *e)
{
	char *json = NULL;
	int ret = cmk_envelope_to_json(env, &json, e);

	if (ret)
		return ret;
	ret = cmk_write_file_atomic(path, json, strlen(json), 0600, e);
	free(json);
	return ret;
}

/* ---- key operations ----------------------------------------------------- */

static int wrap_one(struct cmk_provider *p, const char *key_ref,
		    const struct cmk_encctx *ctx, const struct cmk_secret *kek,
		    uint32_t version, struct cmk_kek_wrap *w,
		    struct cmk_kms_call *call, struct cmk_err *e)
{
	int ret;

	memset(w, 0, sizeof(*w));
	if (!key_ref || !*key_ref || strlen(key_ref) > CMK_KEY_REF_MAX)
		return cmk_errf(e, -EINVAL, "envelope: key reference must be 1..%d characters",
				CMK_KEY_REF_MAX);
	w->kek_version = version;
	snprintf(w->provider, sizeof(w->provider), "%s", cmk_provider_name(p));
	w->created = time(NULL);
	w->key_ref = strdup(key_ref);
	if (!w->key_ref)
		return cmk_errf(e, -ENOMEM, "envelope: out of memory");
	ret = cmk_encctx_copy(&w->ctx, ctx, e);
	if (ret)
		goto out;
	ret = cmk_provider_wrap(p, key_ref, kek, ctx, &w->wrapped,
				&w->wrapped_len, call, e);
	if (ret) {
		cmk_err_prefix(e, "wrapping KEK version %u", version);
		goto out;
	}
	if (w->wrapped_len < cmk_provider_ops(p)->wrapped_kek_min ||
	    w->wrapped_len > cmk_provider_ops(p)->wrapped_kek_max)
		ret = cmk_errf(e, -EPROTO,
			       "provider \"%s\" returned a wrapped KEK of unexpected length %zu",
			       cmk_provider_name(p), w->wrapped_len);
out:
	if (ret)
		wrap_free(w);
	return ret;
}

int cmk_envelope_create(struct cmk_provider *p, const char *key_ref,
			const struct cmk_encctx *ctx, struct cmk_envelope *env,
			struct cmk_secret **kekp, struct cmk_kms_call *call,
			struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *kek = NULL;
	int ret;

	cmk_envelope_init(env);
	if (kekp)
		*kekp = NULL;
	env->version = CMK_ENVELOPE_VERSION;
	ret = cmk_uuid_generate(env->kek_id, e);
	if (ret)
		goto out;
	ret = cmk_kek_generate(&kek, e);
	if (ret)
		goto out;
	ret = wrap_one(p, key_ref, ctx, kek, 1, &env->cur, call, e);
	if (ret)
		goto out;
	if (kekp) {
		*kekp = kek;
		kek = NULL;
	}
out:
	if (ret)
		cmk_envelope_free(env);
	return ret;
}

static int unwrap_one(struct cmk_provider *p, const struct cmk_kek_wrap *w,
		      struct cmk_secret **kek, struct cmk_kms_call *call,
		      struct cmk_err *e)
{
	int ret;

	if (strcmp(w->provider, cmk_provider_name(p)))
		return cmk_errf(e, -EINVAL,
				"envelope names provider \"%s\" but \"%s\" was given",
				w->provider, cmk_provider_name(p));
	ret = cmk_provider_unwrap(p, w->key_ref, w->wrapped, w->wrapped_len,
				  &w->ctx, kek, call, e);
	if (ret)
		return ret;
	ret = cmk_kek_check(*kek, e);
	if (ret) {
		cmk_secret_free(kek);
		e->cls = CMK_EC_DEFINITIVE;
		e->reason = CMK_R_INVALID_CIPHERTEXT;
	}
	return ret;
}

const struct cmk_kek_wrap *cmk_envelope_find(const struct cmk_envelope *env,
					     uint32_t version)
{
	if (env->cur.kek_version == version)
		return &env->cur;
	if (env->has_prev && env->prev.kek_version == version)
		return &env->prev;
	for (unsigned int i = 0; i < env->n_retired; i++)
		if (env->retired[i].kek_version == version)
			return &env->retired[i];
	return NULL;
}

int cmk_envelope_unwrap_version(struct cmk_provider *p,
				const struct cmk_envelope *env, uint32_t version,
				struct cmk_secret **kek,
				struct cmk_kms_call *call, struct cmk_err *e)
{
	const struct cmk_kek_wrap *w = cmk_envelope_find(env, version);

	*kek = NULL;
	if (!w)
		return cmk_errf(e, -ENOENT,
				"envelope holds no KEK version %u (current %u)",
				version, env->cur.kek_version);
	return unwrap_one(p, w, kek, call, e);
}

int cmk_envelope_unwrap(struct cmk_provider *p, const struct cmk_envelope *env,
			bool previous, struct cmk_secret **kek,
			struct cmk_kms_call *call, struct cmk_err *e)
{
	*kek = NULL;
	if (previous && !env->has_prev)
		return cmk_errf(e, -ENOENT,
				"envelope has no previous KEK version (no rotation in progress)");
	return unwrap_one(p, previous ? &env->prev : &env->cur, kek, call, e);
}

int cmk_envelope_check(struct cmk_provider *p, const struct cmk_envelope *env,
		       struct cmk_kms_call *call, struct cmk_err *e)
{
	const struct cmk_kek_wrap *w = &env->cur;

	if (strcmp(w->provider, cmk_provider_name(p)))
		return cmk_errf(e, -EINVAL,
				"envelope names provider \"%s\" but \"%s\" was given",
				w->provider, cmk_provider_name(p));
	return cmk_provider_check(p, w->key_ref, w->wrapped, w->wrapped_len,
				  &w->ctx, call, e);
}

/*
 * Re-wrap inside the KMS (provider rewrap hook, e.g. AWS ReEncrypt): the
 * KEK never reaches this host during the rewrap.  The result is proven by
 * a check (a real unwrap whose result is wiped) before it is accepted, so
 * a bad answer can never replace a working envelope.
 */
static int rewrap_in_kms(struct cmk_provider *p, const struct cmk_kek_wrap *old,
			 const char *key_ref, const struct cmk_encctx *ctx,
			 struct cmk_kek_wrap *w, struct cmk_kms_call *call,
			 struct cmk_err *e)
{
	int ret;

	memset(w, 0, sizeof(*w));
	if (!key_ref || !*key_ref || strlen(key_ref) > CMK_KEY_REF_MAX)
		return cmk_errf(e, -EINVAL, "envelope: key reference must be 1..%d characters",
				CMK_KEY_REF_MAX);
	w->kek_version = old->kek_version;
	snprintf(w->provider, sizeof(w->provider), "%s", cmk_provider_name(p));
	w->created = time(NULL);
	w->key_ref = strdup(key_ref);
	if (!w->key_ref)
		return cmk_errf(e, -ENOMEM, "envelope: out of memory");
	ret = cmk_encctx_copy(&w->ctx, ctx, e);
	if (!ret)
		ret = cmk_provider_rewrap(p, old->key_ref, old->wrapped,
					  old->wrapped_len, &old->ctx, key_ref,
					  ctx, &w->wrapped, &w->wrapped_len,
					  call, e);
	if (!ret && (w->wrapped_len < cmk_provider_ops(p)->wrapped_kek_min ||
		     w->wrapped_len > cmk_provider_ops(p)->wrapped_kek_max))
		ret = cmk_errf(e, -EPROTO,
			       "provider \"%s\" returned a wrapped KEK of unexpected length %zu",
			       cmk_provider_name(p), w->wrapped_len);
	if (!ret)
		ret = cmk_provider_check(p, key_ref, w->wrapped, w->wrapped_len,
					 ctx, call, e);
	if (ret) {
		cmk_err_prefix(e, "re-wrapping KEK version %u", old->kek_version);
		wrap_free(w);
	}
	return ret;
}

int cmk_envelope_rewrap(struct cmk_provider *from, struct cmk_provider *to,
			const char *key_ref, const struct cmk_encctx *ctx,
			struct cmk_envelope *env, struct cmk_kms_call *call,
			struct cmk_err *e)
{
	struct cmk_kek_wrap nw[2 + CMK_ENVELOPE_RETIRED_MAX];
	struct cmk_kek_wrap *old[2 + CMK_ENVELOPE_RETIRED_MAX];
	int ret = 0, done = 0, n = 0;

	memset(nw, 0, sizeof(nw));
	old[n++] = &env->cur;
	if (env->has_prev)
		old[n++] = &env->prev;
	for (unsigned int i = 0; i < env->n_retired; i++)
		old[n++] = &env->retired[i];
	for (int i = 0; i < n; i++) {
		CMK_SECRET_AUTO struct cmk_secret *kek = NULL;

		if (from == to && cmk_provider_ops(from)->rewrap &&
		    strcmp(old[i]->provider, cmk_provider_name(from)) == 0) {
			ret = rewrap_in_kms(from, old[i],
					    key_ref ? key_ref : old[i]->key_ref,
					    ctx ? ctx : &old[i]->ctx, &nw[i], call, e);
			if (ret)
				goto out;
			done = i + 1;
			continue;
		}
		ret = unwrap_one(from, old[i], &kek, call, e);
		if (ret)
			goto out;
		ret = wrap_one(to, key_ref ? key_ref : old[i]->key_ref,
			       ctx ? ctx : &old[i]->ctx, kek,
			       old[i]->kek_version, &nw[i], call, e);
		if (ret)
			goto out;
		done = i + 1;
	}
	for (int i = 0; i < done; i++) {
		wrap_free(old[i]);
		*old[i] = nw[i];
	}
	return 0;
out:
	for (int i = 0; i < n; i++)
		wrap_free(&nw[i]);
	return ret;
}

int cmk_envelope_rotate(struct cmk_provider *p, struct cmk_envelope *env,
			struct cmk_secret **new_kek, struct cmk_kms_call *call,
			struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *kek = NULL;
	struct cmk_kek_wrap nw;
	int ret;

	if (new_kek)
		*new_kek = NULL;
	if (env->has_prev)
		return cmk_errf(e, -EBUSY,
				"KEK rotation already in progress (previous version %u still present); re-wrap all device headers and finish it first",
				env->prev.kek_version);
	if (env->n_retired >= CMK_ENVELOPE_RETIRED_MAX)
		return cmk_errf(e, -ENOSPC,
				"KEK rotation refused: the envelope already keeps %d retired KEK versions (the limit); objects sealed under them would be stranded. Re-seal the objects of KEK version %u, then remove it from \"retired\" by hand",
				CMK_ENVELOPE_RETIRED_MAX, env->retired[0].kek_version);
	if (env->cur.kek_version >= INT32_FIELD_MAX)
		return cmk_errf(e, -EOVERFLOW, "KEK version would overflow");
	/* Prove the current KEK is still reachable before replacing it. */
	ret = cmk_envelope_check(p, env, call, e);
	if (ret)
		return ret;
	ret = cmk_kek_generate(&kek, e);
	if (ret)
		return ret;
	ret = wrap_one(p, env->cur.key_ref, &env->cur.ctx, kek,
		       env->cur.kek_version + 1, &nw, call, e);
	if (ret)
		return ret;
	env->prev = env->cur;
	env->has_prev = true;
	env->cur = nw;
	if (new_kek) {
		*new_kek = kek;
		kek = NULL;
	}
	return 0;
}

/*
 * The previous version becomes retired, never dropped: sealed objects
 * (Documentation/storage.rst) may still name it.  Room was checked by
 * cmk_envelope_rotate() and by the parser (previous counts as retired).
 */
void cmk_envelope_finish_rotation(struct cmk_envelope *env)
{
	if (!env->has_prev || env->n_retired >= CMK_ENVELOPE_RETIRED_MAX)
		return;
	env->retired[env->n_retired++] = env->prev;
	memset(&env->prev, 0, sizeof(env->prev));
	env->has_prev = false;
}
