// SPDX-License-Identifier: GPL-2.0
/*
 * test_audit.c - the audit log.  Oracle: json-c parses each line back; the
 * file holds one line per event whatever the message contains.
 */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "format/audit.h"

static const char *get(json_object *o, const char *k)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v))
		return NULL;
	return json_object_get_string(v);
}

static char **lines_of(const char *path, int *n)
{
	char *buf = tu_read_file(path, NULL), *save = NULL, *l;
	char **out = calloc(16, sizeof(char *));

	*n = 0;
	for (l = strtok_r(buf, "\n", &save); l && *n < 16; l = strtok_r(NULL, "\n", &save))
		out[(*n)++] = strdup(l);
	free(buf);
	return out;
}

static void free_lines(char **l, int n)
{
	for (int i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

static void audit_one_json_line_per_event(void **state)
{
	struct cmk_audit *a = NULL;
	struct cmk_err e;
	struct cmk_audit_event ok = {
		.event = "kms_call", .device = "pgtemp", .key_name = "pgtemp",
		.provider = "local", .key_ref = "/etc/cmk/cmk.key",
		.operation = "check", .outcome = "success", .latency_ms = 3,
		.request_id = "local-00",
	};
	struct cmk_audit_event bad = {
		.event = "kms_call", .provider = "local", .operation = "unwrap",
		.outcome = "failure", .cls = CMK_EC_DEFINITIVE,
		.reason = CMK_R_DISABLED, .latency_ms = -1,
		.message = "local key x: key disabled\n{\"forged\":1}",
		.important = true,
	};
	json_object *o;
	char **l;
	int n;

	(void)state;
	assert_int_equal(cmk_audit_open(tu_path("audit.log"), false, NULL, &a, &e), 0);
	assert_int_equal(cmk_audit_log(a, &ok, &e), 0);
	assert_int_equal(cmk_audit_log(a, &bad, &e), 0);
	cmk_audit_close(&a);
	assert_null(a);

	l = lines_of(tu_path("audit.log"), &n);
	assert_int_equal(n, 2);
	o = json_tokener_parse(l[0]);
	assert_non_null(o);
	assert_string_equal(get(o, "event"), "kms_call");
	assert_string_equal(get(o, "device"), "pgtemp");
	assert_string_equal(get(o, "key_ref"), "/etc/cmk/cmk.key");
	assert_string_equal(get(o, "outcome"), "success");
	assert_string_equal(get(o, "latency_ms"), "3");
	assert_string_equal(get(o, "request_id"), "local-00");
	assert_null(get(o, "error_class"));
	assert_int_equal(strlen(get(o, "time")), 24);	/* ...T..:..:..\.mmmZ */
	assert_int_equal(get(o, "time")[23], 'Z');
	json_object_put(o);

	o = json_tokener_parse(l[1]);
	assert_non_null(o);
	assert_string_equal(get(o, "error_class"), "definitive");
	assert_string_equal(get(o, "reason"), "disabled");
	assert_null(get(o, "latency_ms"));
	assert_null(get(o, "device"));
	assert_string_equal(get(o, "message"), bad.message);
	json_object_put(o);
	free_lines(l, n);
}

static void audit_file_private_and_appended(void **state)
{
	struct cmk_audit *a = NULL;
	struct cmk_audit_event ev = { .event = "key_wipe", .outcome = "success",
				      .latency_ms = -1, .important = true };
	struct cmk_err e;
	struct stat sb;
	char **l;
	int n;

	(void)state;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(cmk_audit_open(tu_path("a.log"), false, NULL, &a, &e), 0);
		assert_int_equal(cmk_audit_log(a, &ev, &e), 0);
		cmk_audit_close(&a);
	}
	assert_int_equal(stat(tu_path("a.log"), &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	l = lines_of(tu_path("a.log"), &n);
	assert_int_equal(n, 2);
	free_lines(l, n);
	assert_int_equal(cmk_audit_open("/nonexistent-dir/x.log", false, NULL, &a, &e), -ENOENT);
	assert_contains(e.msg, "/nonexistent-dir/x.log");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(audit_one_json_line_per_event),
		cmocka_unit_test(audit_file_private_and_appended),
	};

	return cmocka_run_group_tests_name("audit", tests, tu_setup_tmpdir,
					   tu_teardown_tmpdir);
}
