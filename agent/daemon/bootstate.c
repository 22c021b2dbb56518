// SPDX-License-Identifier: GPL-2.0
/*
 * bootstate.c - a throttled boot's backoff across restarts (bootstate.h).
 */
#include "daemon/bootstate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/codec.h"
#include "core/fileio.h"

#define BOOTSTATE_MAX	4096

static int get_u64(json_object *o, const char *key, uint64_t *v)
{
	json_object *x;

	if (!json_object_object_get_ex(o, key, &x) ||
	    !json_object_is_type(x, json_type_int) || json_object_get_int64(x) < 0)
		return -EINVAL;
	*v = (uint64_t)json_object_get_int64(x);
	return 0;
}

int cmk_bootstate_load(const char *path, const uint8_t boot_id[CMK_UUID_LEN],
		       struct cmk_boot_backoff *b, struct cmk_err *e)
{
	uint8_t file_boot[CMK_UUID_LEN];
	json_object *o = NULL, *x;
	uint64_t n = 0;
	char *buf = NULL;
	size_t len;
	int ret;

	memset(b, 0, sizeof(*b));
	if (access(path, F_OK) && errno == ENOENT)
		return 0;
	ret = cmk_read_trusted_file(path, BOOTSTATE_MAX, "boot backoff state",
				    &buf, &len, e);
	if (ret)
		goto out;
	o = json_tokener_parse(buf);
	if (!o || !json_object_is_type(o, json_type_object) ||
	    get_u64(o, "throttles", &n) || n > 1000 ||
	    get_u64(o, "not_before_boottime_ms", &b->not_before_ms) ||
	    get_u64(o, "saved_boottime_ms", &b->saved_ms) ||
	    !json_object_object_get_ex(o, "kernel_boot_id", &x) ||
	    !json_object_is_type(x, json_type_string) ||
	    cmk_uuid_parse(json_object_get_string(x), file_boot)) {
		memset(b, 0, sizeof(*b));
		ret = cmk_errf(e, -EINVAL,
			       "%s: not a boot backoff state (kernel_boot_id, throttles, not_before_boottime_ms, saved_boottime_ms); ignored: the agent unseals at once",
			       path);
		goto out;
	}
	/*
	 * Another boot's (a state_dir on persistent storage): its
	 * CLOCK_BOOTTIME times mean nothing now.  No backoff to continue.
	 */
	if (memcmp(file_boot, boot_id, CMK_UUID_LEN)) {
		memset(b, 0, sizeof(*b));
		goto out;
	}
	b->throttles = (unsigned int)n;
out:
	json_object_put(o);
	free(buf);
	return ret;
}

int cmk_bootstate_save(const char *path, const uint8_t boot_id[CMK_UUID_LEN],
		       const struct cmk_boot_backoff *b, struct cmk_err *e)
{
	char boot[CMK_UUID_STR];
	json_object *o;
	const char *text;
	int ret;

	if (!b->throttles) {
		if (unlink(path) && errno != ENOENT)
			return cmk_errf(e, -errno, "cannot remove %s: %s", path,
					strerror(errno));
		return 0;
	}
	cmk_uuid_format(boot_id, boot);
	o = json_object_new_object();
	json_object_object_add(o, "kernel_boot_id", json_object_new_string(boot));
	json_object_object_add(o, "throttles", json_object_new_int64(b->throttles));
	json_object_object_add(o, "not_before_boottime_ms",
			       json_object_new_int64((int64_t)b->not_before_ms));
	json_object_object_add(o, "saved_boottime_ms",
			       json_object_new_int64((int64_t)b->saved_ms));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	ret = cmk_write_file_atomic(path, text, strlen(text), 0600, e);
	json_object_put(o);
	return ret;
}
