// SPDX-License-Identifier: GPL-2.0
/*
 * test_envelope.c - the KEK envelope.
 * Oracles: round trips through the file, the documented field list checked
 * with json-c in the test, the local provider's key file, and mutations of
 * a valid document (each must fail with a message naming the field).
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "format/envelope.h"
#include "format/esdk.h"
#include "kms/local/provider_local.h"

struct fx {
	struct cmk_provider *p;
	struct cmk_encctx ctx;
	struct cmk_envelope env;
	struct cmk_secret *kek;
	char key[512], path[512];
	char *json;
};

static int setup(void **state)
{
	static struct fx fx;
	struct cmk_err e;

	if (tu_setup_tmpdir(state))
		return -1;
	memset(&fx, 0, sizeof(fx));
	snprintf(fx.key, sizeof(fx.key), "%s", tu_path("cmk.key"));
	snprintf(fx.path, sizeof(fx.path), "%s", tu_path("kek.json"));
	cmk_encctx_init(&fx.ctx);
	if (cmk_local_key_create(fx.key, &e) ||
	    cmk_provider_open("local", NULL, 0, &fx.p, &e) ||
	    cmk_encctx_add(&fx.ctx, "service", "postgres", &e) ||
	    cmk_envelope_create(fx.p, fx.key, &fx.ctx, &fx.env, &fx.kek, NULL, &e) ||
	    cmk_envelope_write(fx.path, &fx.env, &e))
		return -1;
	fx.json = tu_read_file(fx.path, NULL);
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	cmk_provider_close(&fx->p);
	cmk_encctx_free(&fx->ctx);
	cmk_envelope_free(&fx->env);
	cmk_secret_free(&fx->kek);
	free(fx->json);
	return tu_teardown_tmpdir(state);
}

static void envelope_roundtrip(void **state)
{
	struct fx *fx = *state;
	struct cmk_envelope r;
	struct cmk_secret *kek = NULL;
	struct cmk_err e;

	if (cmk_envelope_read(fx->path, &r, &e))
		fail_msg("%s", e.msg);
	assert_int_equal(r.version, 1);
	assert_memory_equal(r.kek_id, fx->env.kek_id, 16);
	assert_int_equal(r.cur.kek_version, 1);
	assert_string_equal(r.cur.provider, "local");
	assert_string_equal(r.cur.key_ref, fx->key);
	assert_int_equal(r.cur.ctx.n, 1);
	assert_string_equal(cmk_encctx_get(&r.cur.ctx, "service"), "postgres");
	assert_int_equal(r.cur.wrapped_len, fx->env.cur.wrapped_len);
	assert_memory_equal(r.cur.wrapped, fx->env.cur.wrapped, r.cur.wrapped_len);
	assert_int_equal(r.cur.created, fx->env.cur.created);
	assert_false(r.has_prev);
	assert_int_equal(cmk_envelope_unwrap(fx->p, &r, false, &kek, NULL, &e), 0);
	assert_true(cmk_secret_equal(kek, fx->kek));
	assert_int_equal(cmk_envelope_check(fx->p, &r, NULL, &e), 0);
	cmk_secret_free(&kek);
	cmk_envelope_free(&r);
}

static void envelope_json_has_exactly_documented_fields(void **state)
{
	static const char *const fields[] = {
		"format", "version", "kek_id", "kek_version", "provider",
		"key_ref", "encryption_context", "wrapped_kek", "created",
	};
	struct fx *fx = *state;
	json_object *o = json_tokener_parse(fx->json), *v;
	struct stat sb;
	int n = 0;

	assert_non_null(o);
	json_object_object_foreach(o, k, val) {
		(void)k;
		(void)val;
		n++;
	}
	assert_int_equal(n, 9);
	for (size_t i = 0; i < 9; i++)
		assert_true(json_object_object_get_ex(o, fields[i], &v));
	json_object_object_get_ex(o, "format", &v);
	assert_string_equal(json_object_get_string(v), "dm-cmk-kek");
	json_object_object_get_ex(o, "wrapped_kek", &v);
	assert_int_equal(json_object_get_string_len(v), 4 * ((CMK_LOCAL_OVERHEAD + 32 + 2) / 3));
	json_object_put(o);
	assert_int_equal(stat(fx->path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	/* the KEK never appears in the file in any form we can think of */
	{
		char *b64 = NULL;
		struct cmk_err e;

		assert_int_equal(cmk_b64_encode(cmk_secret_cdata(fx->kek), 32, &b64, &e), 0);
		assert_null(strstr(fx->json, b64));
		free(b64);
	}
}

/* Parse @json after applying @mutate; expect failure naming @needle. */
typedef void (*mutator)(json_object *root, const char *field);

static void expect_rejected(struct fx *fx, mutator m, const char *field,
			    const char *needle, int code)
{
	json_object *o = json_tokener_parse(fx->json);
	struct cmk_envelope r;
	struct cmk_err e;
	const char *s;
	int ret;

	assert_non_null(o);
	m(o, field);
	s = json_object_to_json_string(o);
	ret = cmk_envelope_parse(s, strlen(s), "kek.json", &r, &e);
	if (ret == 0)
		fail_msg("mutation of \"%s\" accepted", field);
	if (code)
		assert_int_equal(ret, code);
	assert_contains(e.msg, "kek.json");
	assert_contains(e.msg, needle);
	json_object_put(o);
}

static json_object *target(json_object *root, const char **field)
{
	const char *dot = strchr(*field, '.');
	json_object *sub;

	if (!dot)
		return root;
	assert_true(json_object_object_get_ex(root, "previous", &sub));
	*field = dot + 1;
	return sub;
}

static void m_delete(json_object *root, const char *field)
{
	json_object *t = target(root, &field);

	json_object_object_del(t, field);
}

static void m_wrong_type(json_object *root, const char *field)
{
	json_object *t = target(root, &field), *v;

	json_object_object_get_ex(t, field, &v);
	if (json_object_is_type(v, json_type_int))
		json_object_object_add(t, field, json_object_new_string("1"));
	else if (json_object_is_type(v, json_type_object))
		json_object_object_add(t, field, json_object_new_array());
	else
		json_object_object_add(t, field, json_object_new_int(7));
}

static void add_previous(struct fx *fx)
{
	struct cmk_err e;

	cmk_envelope_free(&fx->env);
	assert_int_equal(cmk_envelope_read(fx->path, &fx->env, &e), 0);
	assert_int_equal(cmk_envelope_rotate(fx->p, &fx->env, NULL, NULL, &e), 0);
	assert_int_equal(cmk_envelope_write(fx->path, &fx->env, &e), 0);
	free(fx->json);
	fx->json = tu_read_file(fx->path, NULL);
}

static const char *const all_fields[] = {
	"format", "version", "kek_id", "kek_version", "provider", "key_ref",
	"encryption_context", "wrapped_kek", "created",
	"previous.kek_version", "previous.provider", "previous.key_ref",
	"previous.encryption_context", "previous.wrapped_kek", "previous.created",
};

static void envelope_missing_field_rejected(void **state)
{
	struct fx *fx = *state;

	add_previous(fx);
	for (size_t i = 0; i < sizeof(all_fields) / sizeof(all_fields[0]); i++) {
		char needle[64];

		snprintf(needle, sizeof(needle), "\"%s\": missing", all_fields[i]);
		expect_rejected(fx, m_delete, all_fields[i], needle, -EINVAL);
	}
}

static void envelope_wrong_type_rejected(void **state)
{
	struct fx *fx = *state;

	add_previous(fx);
	for (size_t i = 0; i < sizeof(all_fields) / sizeof(all_fields[0]); i++) {
		char needle[64];

		snprintf(needle, sizeof(needle), "\"%s\": must be", all_fields[i]);
		expect_rejected(fx, m_wrong_type, all_fields[i], needle, -EINVAL);
	}
	expect_rejected(fx, m_wrong_type, "previous", "\"previous\": must be an object",
			-EINVAL);
}

static void m_set_string(json_object *root, const char *spec)
{
	/* spec is "field=value" */
	char f[64];
	const char *eq = strchr(spec, '=');

	snprintf(f, sizeof(f), "%.*s", (int)(eq - spec), spec);
	json_object_object_add(root, f, json_object_new_string(eq + 1));
}

static void envelope_bad_base64_rejected(void **state)
{
	struct fx *fx = *state;

	expect_rejected(fx, m_set_string, "wrapped_kek=!!!!", "\"wrapped_kek\": not valid base64",
			-EINVAL);
	expect_rejected(fx, m_set_string, "wrapped_kek=QUFB\n", "\"wrapped_kek\": not valid base64",
			-EINVAL);
}

static void envelope_wrong_wrapped_length_rejected(void **state)
{
	struct fx *fx = *state;
	char spec[128], *b64;
	unsigned char raw[CMK_LOCAL_OVERHEAD + 31] = { 1 };
	struct cmk_err e;

	assert_int_equal(cmk_b64_encode(raw, sizeof(raw), &b64, &e), 0);
	snprintf(spec, sizeof(spec), "wrapped_kek=%s", b64);
	expect_rejected(fx, m_set_string, spec, "\"wrapped_kek\": wrapped length 60 bytes",
			-EINVAL);
	free(b64);
}

static void m_version(json_object *root, const char *v)
{
	json_object_object_add(root, "version", json_object_new_int(atoi(v)));
}

static void envelope_wrong_version_rejected(void **state)
{
	struct fx *fx = *state;

	expect_rejected(fx, m_version, "2", "envelope version 2 is not supported",
			-EPROTONOSUPPORT);
	expect_rejected(fx, m_version, "0", "\"version\"", -EPROTONOSUPPORT);
}

static void envelope_bad_values_rejected(void **state)
{
	struct fx *fx = *state;

	expect_rejected(fx, m_set_string, "format=luks2", "\"format\"", -EINVAL);
	expect_rejected(fx, m_set_string, "kek_id=not-a-uuid", "\"kek_id\": must be a UUID",
			-EINVAL);
	expect_rejected(fx, m_set_string, "created=2025-13-01T00:00:00Z", "\"created\"",
			-EINVAL);
	expect_rejected(fx, m_set_string, "provider=aws-typo", "unknown provider", -EINVAL);
	expect_rejected(fx, m_set_string, "key_ref=", "\"key_ref\": must not be empty",
			-EINVAL);
	expect_rejected(fx, m_set_string, "surprise=1", "unknown field \"surprise\"", -EINVAL);
}

static void m_kek_version(json_object *root, const char *v)
{
	json_object_object_add(root, "kek_version", json_object_new_int64(atoll(v)));
}

static void m_ctx_value(json_object *root, const char *v)
{
	json_object *c;

	json_object_object_get_ex(root, "encryption_context", &c);
	if (strcmp(v, "int") == 0)
		json_object_object_add(c, "n", json_object_new_int(1));
	else
		json_object_object_add(c, "bad", json_object_new_string(v));
}

static void envelope_bad_numbers_and_context_rejected(void **state)
{
	struct fx *fx = *state;

	expect_rejected(fx, m_kek_version, "0", "\"kek_version\": must be an integer", -EINVAL);
	expect_rejected(fx, m_kek_version, "4294967296", "\"kek_version\"", -EINVAL);
	expect_rejected(fx, m_kek_version, "-1", "\"kek_version\"", -EINVAL);
	expect_rejected(fx, m_ctx_value, "int", "\"encryption_context\": values must be strings",
			-EINVAL);
	expect_rejected(fx, m_ctx_value, "a\tb", "\"encryption_context\"", -EINVAL);
}

static void envelope_not_json_rejected(void **state)
{
	static const char *const bad[] = {
		"", "{", "[]", "{\"format\":\"dm-cmk-kek\"} x", "{'a':1}", "nul",
	};
	struct cmk_envelope r;
	struct cmk_err e;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cmk_envelope_parse(bad[i], strlen(bad[i]), "x.json", &r, &e) == 0)
			fail_msg("accepted <%s>", bad[i]);
		assert_contains(e.msg, "x.json");
	}
}

static void envelope_trailing_data_rejected(void **state)
{
	struct fx *fx = *state;
	struct cmk_envelope r;
	struct cmk_err e;
	char *s;
	int ret;

	assert_int_equal(asprintf(&s, "%s\n{}", fx->json) > 0, 1);
	ret = cmk_envelope_parse(s, strlen(s), "kek.json", &r, &e);
	free(s);
	assert_int_equal(ret, -EINVAL);
	assert_contains(e.msg, "kek.json: ");
	/* json-c's strict mode or our own check, whichever sees it first */
	if (!strstr(e.msg, "trailing data"))
		assert_contains(e.msg, "not valid JSON");
}

static void envelope_write_failure_keeps_old_file(void **state)
{
	struct fx *fx = *state;
	struct cmk_err e;
	DIR *d;
	struct dirent *de;
	char *now;
	int files = 0;

	tu_pwrite_budget = 10;	/* the temporary file write fails midway */
	assert_int_equal(cmk_envelope_write(fx->path, &fx->env, &e), -EIO);
	tu_pwrite_budget = -1;
	now = tu_read_file(fx->path, NULL);
	assert_string_equal(now, fx->json);
	free(now);
	d = opendir(tu_tmpdir());
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".tmp."))
			files++;
	closedir(d);
	assert_int_equal(files, 0);
}

static void envelope_rotate_keeps_previous(void **state)
{
	struct fx *fx = *state;
	struct cmk_envelope r;
	struct cmk_secret *new_kek = NULL, *k = NULL;
	struct cmk_err e;

	assert_int_equal(cmk_envelope_rotate(fx->p, &fx->env, &new_kek, NULL, &e), 0);
	assert_false(cmk_secret_equal(new_kek, fx->kek));
	assert_int_equal(cmk_envelope_write(fx->path, &fx->env, &e), 0);
	assert_int_equal(cmk_envelope_read(fx->path, &r, &e), 0);
	assert_true(r.has_prev);
	assert_int_equal(r.cur.kek_version, 2);
	assert_int_equal(r.prev.kek_version, 1);
	assert_memory_equal(r.kek_id, fx->env.kek_id, 16);
	assert_int_equal(cmk_envelope_unwrap(fx->p, &r, true, &k, NULL, &e), 0);
	assert_true(cmk_secret_equal(k, fx->kek));
	cmk_secret_free(&k);
	assert_int_equal(cmk_envelope_unwrap(fx->p, &r, false, &k, NULL, &e), 0);
	assert_true(cmk_secret_equal(k, new_kek));
	cmk_secret_free(&k);
	/* a second rotation must wait until the first is finished */
	assert_int_equal(cmk_envelope_rotate(fx->p, &r, NULL, NULL, &e), -EBUSY);
	cmk_envelope_finish_rotation(&r);
	assert_false(r.has_prev);
	assert_int_equal(cmk_envelope_unwrap(fx->p, &r, true, &k, NULL, &e), -ENOENT);
	assert_int_equal(cmk_envelope_rotate(fx->p, &r, NULL, NULL, &e), 0);
	assert_int_equal(r.cur.kek_version, 3);
	cmk_envelope_free(&r);
	cmk_secret_free(&new_kek);
}

/* The storage wrapping key of KEK version @v, unwrapped from @env. */
static void wrapkey_of(struct fx *fx, const struct cmk_envelope *env, uint32_t v,
		       struct cmk_esdk_wrapkey *wk)
{
	struct cmk_secret *k = NULL;
	struct cmk_err e;

	assert_int_equal(cmk_envelope_unwrap_version(fx->p, env, v, &k, NULL, &e), 0);
	assert_int_equal(cmk_esdk_wrapkey_derive(k, env->kek_id, v, wk, &e), 0);
	cmk_secret_free(&k);
}

static int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("obj", MFD_CLOEXEC);

	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/*
 * Seal, rotate twice, unseal the first object.  Oracle: the plaintext
 * sealed under KEK version 1 comes back byte for byte from the envelope
 * as written and re-read after two finished rotations, which keeps
 * versions 1 and 2 as retired (unwrap-only) and wraps with version 3 only.
 */
static void envelope_seal_rotate_twice_unseal_first_object(void **state)
{
	static const char plain[] = "WAL segment 000000010000000000000001";
	struct fx *fx = *state;
	struct cmk_esdk_seal_opts so = { .name = "seg1" };
	struct cmk_esdk_wrapkey wk1 = { 0 }, back = { 0 };
	const struct cmk_esdk_wrapkey *keys[1] = { &back };
	struct cmk_envelope r;
	struct cmk_encctx ctx;
	struct cmk_err e;
	char got[sizeof(plain)] = { 0 };
	int in, sealed, out;

	cmk_encctx_init(&ctx);
	assert_int_equal(cmk_encctx_add(&ctx, "segment", "1", &e), 0);
	wrapkey_of(fx, &fx->env, 1, &wk1);
	in = memfd_with(plain, sizeof(plain));
	sealed = memfd_with(NULL, 0);
	assert_int_equal(cmk_esdk_seal(in, sealed, &wk1, &ctx, &so, NULL, &e), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(cmk_envelope_rotate(fx->p, &fx->env, NULL, NULL, &e), 0);
		cmk_envelope_finish_rotation(&fx->env);
		assert_int_equal(cmk_envelope_write(fx->path, &fx->env, &e), 0);
	}
	assert_int_equal(cmk_envelope_read(fx->path, &r, &e), 0);
	assert_int_equal(r.cur.kek_version, 3);
	assert_false(r.has_prev);
	assert_int_equal(r.n_retired, 2);
	assert_int_equal(r.retired[0].kek_version, 1);
	assert_int_equal(r.retired[1].kek_version, 2);
	wrapkey_of(fx, &r, 1, &back);
	assert_string_equal(back.name, wk1.name);
	out = memfd_with(NULL, 0);
	assert_int_equal(lseek(sealed, 0, SEEK_SET), 0);
	assert_int_equal(cmk_esdk_open(sealed, out, keys, 1, &ctx, "seg1", NULL, &e), 0);
	assert_int_equal(pread(out, got, sizeof(got), 0), (ssize_t)sizeof(plain));
	assert_memory_equal(got, plain, sizeof(plain));
	close(in);
	close(sealed);
	close(out);
	cmk_esdk_wrapkey_free(&wk1);
	cmk_esdk_wrapkey_free(&back);
	cmk_encctx_free(&ctx);
	cmk_envelope_free(&r);
}

/*
 * CMK re-wrap covers retired versions too.  Oracle: after rewrap to a
 * second CMK and disabling the first, retired version 1 still unwraps to
 * the same KEK bytes (same wrapping key name and bytes).
 */
static void envelope_rewrap_keeps_retired_versions(void **state)
{
	struct fx *fx = *state;
	struct cmk_secret *k = NULL;
	char key2[512];
	struct cmk_err e;

	snprintf(key2, sizeof(key2), "%s", tu_path("cmk2.key"));
	assert_int_equal(cmk_local_key_create(key2, &e), 0);
	assert_int_equal(cmk_envelope_rotate(fx->p, &fx->env, NULL, NULL, &e), 0);
	cmk_envelope_finish_rotation(&fx->env);
	assert_int_equal(cmk_envelope_rewrap(fx->p, fx->p, key2, NULL, &fx->env, NULL, &e), 0);
	assert_int_equal(fx->env.n_retired, 1);
	assert_string_equal(fx->env.retired[0].key_ref, key2);
	assert_int_equal(cmk_local_key_set_state(fx->key, CMK_LOCAL_DISABLED, &e), 0);
	assert_int_equal(cmk_envelope_unwrap_version(fx->p, &fx->env, 1, &k, NULL, &e), 0);
	assert_true(cmk_secret_equal(k, fx->kek));
	cmk_secret_free(&k);
	assert_int_equal(cmk_envelope_unwrap_version(fx->p, &fx->env, 7, &k, NULL, &e), -ENOENT);
}

/*
 * Bounded: CMK_ENVELOPE_RETIRED_MAX retired versions, then rotation is
 * refused (-ENOSPC) rather than dropping the oldest; the full envelope
 * still writes and parses.  Oracle: the count and the error.
 */
static void envelope_retired_versions_are_bounded(void **state)
{
	struct fx *fx = *state;
	struct cmk_envelope r;
	struct cmk_err e;

	for (int i = 0; i < CMK_ENVELOPE_RETIRED_MAX; i++) {
		assert_int_equal(cmk_envelope_rotate(fx->p, &fx->env, NULL, NULL, &e), 0);
		cmk_envelope_finish_rotation(&fx->env);
	}
	assert_int_equal(fx->env.n_retired, CMK_ENVELOPE_RETIRED_MAX);
	assert_int_equal(cmk_envelope_rotate(fx->p, &fx->env, NULL, NULL, &e), -ENOSPC);
	assert_contains(e.msg, "retired KEK versions");
	assert_int_equal(cmk_envelope_write(fx->path, &fx->env, &e), 0);
	assert_int_equal(cmk_envelope_read(fx->path, &r, &e), 0);
	assert_int_equal(r.n_retired, CMK_ENVELOPE_RETIRED_MAX);
	assert_int_equal(r.retired[0].kek_version, 1);
	cmk_envelope_free(&r);
}

/*
 * "retired" is strict: an envelope without it (every envelope written
 * before it existed) parses with none; out-of-order or too-high versions
 * are refused naming the field.
 */
static void envelope_retired_field_is_strict(void **state)
{
	struct fx *fx = *state;
	json_object *o, *arr, *rv[3];
	struct cmk_envelope r;
	struct cmk_err e;
	const char *s;

	assert_null(strstr(fx->json, "retired"));
	assert_int_equal(cmk_envelope_parse(fx->json, strlen(fx->json), "kek.json", &r, &e), 0);
	assert_int_equal(r.n_retired, 0);
	cmk_envelope_free(&r);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cmk_envelope_rotate(fx->p, &fx->env, NULL, NULL, &e), 0);
		cmk_envelope_finish_rotation(&fx->env);
	}
	assert_int_equal(cmk_envelope_to_json(&fx->env, (char **)&s, &e), 0);
	o = json_tokener_parse(s);
	free((char *)s);
	json_object_object_get_ex(o, "retired", &arr);
	for (int i = 0; i < 3; i++)
		rv[i] = json_object_get(json_object_array_get_idx(arr, (size_t)i));
	arr = json_object_new_array();
	json_object_array_add(arr, json_object_get(rv[1]));
	json_object_array_add(arr, json_object_get(rv[0]));
	json_object_array_add(arr, json_object_get(rv[2]));
	json_object_object_add(o, "retired", arr);
	s = json_object_to_json_string(o);
	assert_int_equal(cmk_envelope_parse(s, strlen(s), "kek.json", &r, &e), -EINVAL);
	assert_contains(e.msg, "\"retired[1].kek_version\": retired versions must be in ascending order");
	json_object_object_add(rv[2], "kek_version", json_object_new_int(4));
	arr = json_object_new_array();
	for (int i = 0; i < 3; i++)
		json_object_array_add(arr, json_object_get(rv[i]));
	json_object_object_add(o, "retired", arr);
	s = json_object_to_json_string(o);
	assert_int_equal(cmk_envelope_parse(s, strlen(s), "kek.json", &r, &e), -EINVAL);
	assert_contains(e.msg, "must be lower than the previous and current kek_version");
	for (int i = 0; i < 3; i++)
		json_object_put(rv[i]);
	json_object_object_add(o, "retired", json_object_new_string("x"));
	s = json_object_to_json_string(o);
	assert_int_equal(cmk_envelope_parse(s, strlen(s), "kek.json", &r, &e), -EINVAL);
	assert_contains(e.msg, "\"retired\": must be an array");
	json_object_put(o);
}

static void envelope_previous_version_must_be_lower(void **state)
{
	struct fx *fx = *state;
	json_object *o, *prev;
	struct cmk_envelope r;
	struct cmk_err e;
	const char *s;

	add_previous(fx);
	o = json_tokener_parse(fx->json);
	json_object_object_get_ex(o, "previous", &prev);
	json_object_object_add(prev, "kek_version", json_object_new_int(2));
	s = json_object_to_json_string(o);
	assert_int_equal(cmk_envelope_parse(s, strlen(s), "kek.json", &r, &e), -EINVAL);
	assert_contains(e.msg, "\"previous.kek_version\": must be lower");
	json_object_put(o);
}

static void envelope_rewrap_to_new_cmk_keeps_kek(void **state)
{
	struct fx *fx = *state;
	struct cmk_secret *k = NULL;
	struct cmk_encctx ctx2;
	char key2[512];
	struct cmk_err e;

	snprintf(key2, sizeof(key2), "%s", tu_path("cmk2.key"));
	assert_int_equal(cmk_local_key_create(key2, &e), 0);
	cmk_encctx_init(&ctx2);
	assert_int_equal(cmk_encctx_add(&ctx2, "service", "postgres-2", &e), 0);
	assert_int_equal(cmk_envelope_rewrap(fx->p, fx->p, key2, &ctx2, &fx->env, NULL, &e), 0);
	assert_string_equal(fx->env.cur.key_ref, key2);
	assert_int_equal(fx->env.cur.kek_version, 1);
	/* the old CMK is no longer needed */
	assert_int_equal(cmk_local_key_set_state(fx->key, CMK_LOCAL_DISABLED, &e), 0);
	assert_int_equal(cmk_envelope_unwrap(fx->p, &fx->env, false, &k, NULL, &e), 0);
	assert_true(cmk_secret_equal(k, fx->kek));
	cmk_secret_free(&k);
	/* and rewrapping from a disabled CMK fails definitively, leaving env */
	assert_int_equal(cmk_local_key_set_state(key2, CMK_LOCAL_DISABLED, &e), 0);
	assert_int_equal(cmk_envelope_rewrap(fx->p, fx->p, fx->key, NULL, &fx->env, NULL, &e),
			 -EKEYREVOKED);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_string_equal(fx->env.cur.key_ref, key2);
	cmk_encctx_free(&ctx2);
}

static void envelope_check_disabled_is_definitive(void **state)
{
	struct fx *fx = *state;
	struct cmk_kms_call call;
	struct cmk_err e;

	assert_int_equal(cmk_local_key_set_state(fx->key, CMK_LOCAL_DISABLED, &e), 0);
	assert_int_equal(cmk_envelope_check(fx->p, &fx->env, &call, &e), -EKEYREVOKED);
	assert_int_equal(e.cls, CMK_EC_DEFINITIVE);
	assert_int_equal(e.reason, CMK_R_DISABLED);
	assert_true(call.latency_ms >= 0);
	assert_contains(call.request_id, "local-");
}

/* Random byte edits of a valid envelope: parsing never crashes or leaks. */
static void envelope_random_mutations_handled(void **state)
{
	struct fx *fx = *state;
	size_t len = strlen(fx->json);
	char *buf = malloc(len + 1);
	unsigned int seed = 12345, accepted = 0;

	assert_non_null(buf);
	for (int i = 0; i < 3000; i++) {
		struct cmk_envelope r;
		struct cmk_err e;
		int edits = 1 + (int)(rand_r(&seed) % 3);

		memcpy(buf, fx->json, len + 1);
		for (int k = 0; k < edits; k++)
			buf[rand_r(&seed) % len] = (char)(rand_r(&seed) % 256);
		if (cmk_envelope_parse(buf, len, "m.json", &r, &e) == 0) {
			accepted++;
			cmk_envelope_free(&r);
		} else {
			assert_true(e.msg[0] != '\0');
		}
	}
	free(buf);
	/* most edits must be caught; a few land in harmless spots */
	assert_true(accepted < 3000 / 4);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(envelope_roundtrip),
		T(envelope_json_has_exactly_documented_fields),
		T(envelope_missing_field_rejected),
		T(envelope_wrong_type_rejected),
		T(envelope_bad_base64_rejected),
		T(envelope_wrong_wrapped_length_rejected),
		T(envelope_wrong_version_rejected),
		T(envelope_bad_values_rejected),
		T(envelope_bad_numbers_and_context_rejected),
		T(envelope_not_json_rejected),
		T(envelope_trailing_data_rejected),
		T(envelope_write_failure_keeps_old_file),
		T(envelope_rotate_keeps_previous),
		T(envelope_seal_rotate_twice_unseal_first_object),
		T(envelope_rewrap_keeps_retired_versions),
		T(envelope_retired_versions_are_bounded),
		T(envelope_retired_field_is_strict),
		T(envelope_previous_version_must_be_lower),
		T(envelope_rewrap_to_new_cmk_keeps_kek),
		T(envelope_check_disabled_is_definitive),
		T(envelope_random_mutations_handled),
	};

	return cmocka_run_group_tests_name("envelope", tests, NULL, NULL);
}
