// SPDX-License-Identifier: GPL-2.0
/*
 * binding.c - boot id, first-use pins and open records (see binding.h).
 */
#include "device/binding.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>

#include <json-c/json.h>

#include "core/fileio.h"

#define PIN_FORMAT	"dm-cmk-pin"
#define OPENED_FORMAT	"dm-cmk-opened"
#define FILE_MAX	4096

int cmk_boot_id(uint8_t id[CMK_UUID_LEN], struct cmk_err *e)
{
	char *buf = NULL;
	size_t len;
	int ret;

	ret = cmk_read_file(CMK_BOOT_ID_PATH, 64, &buf, &len, e);
	if (ret)
		return ret;
	if (len && buf[len - 1] == '\n')
		buf[len - 1] = '\0';
	if (cmk_uuid_parse(buf, id))
		ret = cmk_errf(e, -EINVAL, "%s: \"%.40s\" is not a UUID",
			       CMK_BOOT_ID_PATH, buf);
	free(buf);
	return ret;
}

static int path_of(char *out, size_t n, const char *dir, const char *sub,
		   const char *name, struct cmk_err *e)
{
	int r;

	/* The name is a file name in dir: never the directory or its parent. */
	if (!*name || !strcmp(name, ".") || !strcmp(name, "..") || strchr(name, '/'))
		return cmk_errf(e, -EINVAL, "device name \"%s\" is not usable as a file name",
				name);
	r = snprintf(out, n, "%s%s/%s", dir, sub, name);

	if (r < 0 || (size_t)r >= n)
		return cmk_errf(e, -ENAMETOOLONG, "%s%s/%s: path too long", dir, sub,
				name);
	return 0;
}

static void add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static void add_uuid(json_object *o, const char *k, const uint8_t u[CMK_UUID_LEN])
{
	char s[CMK_UUID_STR];

	cmk_uuid_format(u, s);
	add_str(o, k, s);
}

/* A new document with the fields every file of ours starts with. */
static json_object *doc_new(const char *format, const char *device)
{
	json_object *o = json_object_new_object();
	char t[CMK_TIME_STR];

	add_str(o, "format", format);
	json_object_object_add(o, "version", json_object_new_int(1));
	add_str(o, "device", device);
	if (!cmk_time_format(time(NULL), t))
		add_str(o, "written", t);
	return o;
}

static int doc_write(json_object *o, const char *dir, const char *path,
		     struct cmk_err *e)
{
	const char *text;
	int ret;

	ret = cmk_mkdir_durable(dir, 0700, e);
	if (ret)
		return ret;
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
					      JSON_C_TO_STRING_SPACED |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text)
		return cmk_errf(e, -ENOMEM, "%s: out of memory", path);
	return cmk_write_file_atomic(path, text, strlen(text), 0600, e);
}

/*
 * Read @path as one of our documents of @format for @device.  -ENOENT when
 * there is none; any other failure says what is wrong with the file.
 */
static int doc_read(const char *path, const char *format, const char *device,
		    json_object **out, struct cmk_err *e)
{
	json_tokener *tok = NULL;
	json_object *o = NULL, *v;
	char *buf = NULL;
	size_t len;
	int ret;

	*out = NULL;
	/* A pin others could write would let them pick the device's header. */
	ret = cmk_read_trusted_file(path, FILE_MAX,
				    strcmp(format, PIN_FORMAT) ? "record of what was opened" :
				    "pin file", &buf, &len, e);
	if (ret)
		return ret;
	tok = json_tokener_new();
	if (!tok) {
		ret = cmk_errf(e, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    buf[json_tokener_get_parse_end(tok) + strspn(buf + json_tokener_get_parse_end(tok), " \t\r\n")] ||
	    !json_object_is_type(o, json_type_object)) {
		ret = cmk_errf(e, -EBADMSG, "%s: not one JSON object", path);
		goto out;
	}
	if (!json_object_object_get_ex(o, "format", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), format) ||
	    !json_object_object_get_ex(o, "version", &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int(v) != 1) {
		ret = cmk_errf(e, -EBADMSG, "%s: not a %s version 1 file", path, format);
		goto out;
	}
	if (!json_object_object_get_ex(o, "device", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), device)) {
		ret = cmk_errf(e, -EBADMSG, "%s: not about device \"%s\"", path, device);
		goto out;
	}
	*out = o;
	o = NULL;
out:
	json_object_put(o);
	if (tok)
		json_tokener_free(tok);
	free(buf);
	return ret;
}

static int get_uuid(json_object *o, const char *k, const char *path,
		    uint8_t u[CMK_UUID_LEN], struct cmk_err *e)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    cmk_uuid_parse(json_object_get_string(v), u))
		return cmk_errf(e, -EBADMSG, "%s: field \"%s\": missing or not a UUID",
				path, k);
	return 0;
}

/* A sequence field: an integer 1..CMK_HDR_SEQ_MAX (0 allowed if @zero_ok). */
static int get_seq(json_object *o, const char *k, const char *path, bool zero_ok,
		   uint64_t *seq, struct cmk_err *e)
{
	json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    (x = json_object_get_int64(v)) < (zero_ok ? 0 : 1) ||
	    (uint64_t)x > CMK_HDR_SEQ_MAX)
		return cmk_errf(e, -EBADMSG, "%s: field \"%s\": missing or not an integer %d..2^63-1",
				path, k, zero_ok ? 0 : 1);
	*seq = (uint64_t)x;
	return 0;
}

/* ---- pins ------------------------------------------------------------------- */

int cmk_pin_read(const struct cmk_config *cfg, const struct cmk_config_device *d,
		 bool *have, uint8_t uuid[CMK_UUID_LEN], char *from, size_t n,
		 struct cmk_err *e)
{
	char path[4096];
	json_object *o;
	int ret;

	*have = false;
	if (d->has_uuid) {
		memcpy(uuid, d->uuid, CMK_UUID_LEN);
		*have = true;
		if (from)
			snprintf(from, n, "uuid in its [device] section");
		return 0;
	}
	ret = path_of(path, sizeof(path), cfg->pin_dir, "", d->name, e);
	if (ret)
		return ret;
	ret = doc_read(path, PIN_FORMAT, d->name, &o, e);
	if (ret == -ENOENT)
		return 0;
	if (ret) {
		cmk_err_prefix(e, "device %s: pin", d->name);
		return ret;
	}
	ret = get_uuid(o, "device_uuid", path, uuid, e);
	json_object_put(o);
	if (ret) {
		cmk_err_prefix(e, "device %s: pin", d->name);
		return ret;
	}
	*have = true;
	if (from)
		snprintf(from, n, "pin file %s", path);
	return 0;
}

/* Is the pin file @name in pin_dir readable and pinned to @uuid? */
static bool pin_file_is(const struct cmk_config *cfg, const char *name,
			const uint8_t uuid[CMK_UUID_LEN])
{
	uint8_t pin[CMK_UUID_LEN];
	char path[4096];
	json_object *o;
	struct cmk_err ignored;
	bool yes;

	if (path_of(path, sizeof(path), cfg->pin_dir, "", name, &ignored) ||
	    doc_read(path, PIN_FORMAT, name, &o, &ignored))
		return false;
	yes = !get_uuid(o, "device_uuid", path, pin, &ignored) &&
	      !memcmp(pin, uuid, CMK_UUID_LEN);
	json_object_put(o);
	return yes;
}

int cmk_pin_owner(const struct cmk_config *cfg, const uint8_t uuid[CMK_UUID_LEN],
		  char *name, size_t name_n, char *from, size_t from_n)
{
	struct dirent *de;
	DIR *dir;
	bool found = false;

	for (size_t i = 0; i < cfg->n_devices; i++) {
		const struct cmk_config_device *d = &cfg->devices[i];

		if (d->has_uuid && !memcmp(d->uuid, uuid, CMK_UUID_LEN)) {
			snprintf(name, name_n, "%s", d->name);
			snprintf(from, from_n, "uuid in its [device] section");
			return 1;
		}
	}
	/* Every pin file: one whose section was renamed or removed too. */
	dir = opendir(cfg->pin_dir);
	if (!dir)
		return 0;
	while (!found && (de = readdir(dir))) {
		if (de->d_name[0] == '.' || !pin_file_is(cfg, de->d_name, uuid))
			continue;
		snprintf(name, name_n, "%s", de->d_name);
		snprintf(from, from_n, "pin file %s/%s", cfg->pin_dir, de->d_name);
		found = true;
	}
	closedir(dir);
	return found;
}

bool cmk_pin_dir_volatile(const struct cmk_config *cfg)
{
	struct statfs sf;

	return !statfs(cfg->pin_dir, &sf) &&
	       (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC);
}

int cmk_pin_write(const struct cmk_config *cfg, const struct cmk_config_device *d,
		  const uint8_t uuid[CMK_UUID_LEN], struct cmk_err *e)
{
	char path[4096];
	json_object *o;
	int ret;

	ret = path_of(path, sizeof(path), cfg->pin_dir, "", d->name, e);
	if (ret)
		return ret;
	o = doc_new(PIN_FORMAT, d->name);
	add_uuid(o, "device_uuid", uuid);
	ret = doc_write(o, cfg->pin_dir, path, e);
	json_object_put(o);
	return ret;
}

/* ---- open records -------------------------------------------------------------- */

void cmk_opened_of(const struct cmk_header *h, struct cmk_opened *o)
{
	memset(o, 0, sizeof(*o));
	o->valid = true;
	memcpy(o->device_uuid, h->device_uuid, CMK_UUID_LEN);
	memcpy(o->boot_id, h->boot_id, CMK_UUID_LEN);
	o->sequence = h->sequence;
}

int cmk_opened_read(const struct cmk_config *cfg,
		    const struct cmk_config_device *d,
		    const uint8_t this_boot[CMK_UUID_LEN], struct cmk_opened *o,
		    struct cmk_err *e)
{
	uint8_t kboot[CMK_UUID_LEN];
	json_object *j = NULL, *v;
	char path[4096];
	int ret;

	memset(o, 0, sizeof(*o));
	ret = path_of(path, sizeof(path), cfg->state_dir, "/opened", d->name, e);
	if (ret)
		return ret;
	ret = doc_read(path, OPENED_FORMAT, d->name, &j, e);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		goto out;
	ret = get_uuid(j, "kernel_boot_id", path, kboot, e);
	if (ret)
		goto out;
	if (memcmp(kboot, this_boot, CMK_UUID_LEN))
		goto out;		/* another boot's: none for this one */
	ret = get_uuid(j, "device_uuid", path, o->device_uuid, e);
	if (!ret)
		ret = get_uuid(j, "boot_id", path, o->boot_id, e);
	if (!ret)
		ret = get_seq(j, "sequence", path, false, &o->sequence, e);
	if (!ret && json_object_object_get_ex(j, "rewrap_to", &v))
		ret = get_seq(j, "rewrap_to", path, false, &o->pending, e);
	if (ret)
		goto out;
	o->valid = true;
out:
	if (ret) {
		memset(o, 0, sizeof(*o));
		cmk_err_prefix(e, "device %s: record of what was opened", d->name);
	}
	json_object_put(j);
	return ret;
}

int cmk_opened_write(const struct cmk_config *cfg,
		     const struct cmk_config_device *d,
		     const uint8_t this_boot[CMK_UUID_LEN],
		     const struct cmk_opened *o, struct cmk_err *e)
{
	char path[4096], dir[4096];
	json_object *j;
	int ret;

	ret = path_of(path, sizeof(path), cfg->state_dir, "/opened", d->name, e);
	if (ret)
		return ret;
	snprintf(dir, sizeof(dir), "%s/opened", cfg->state_dir);
	j = doc_new(OPENED_FORMAT, d->name);
	add_uuid(j, "kernel_boot_id", this_boot);
	add_uuid(j, "device_uuid", o->device_uuid);
	add_uuid(j, "boot_id", o->boot_id);
	json_object_object_add(j, "sequence", json_object_new_int64((int64_t)o->sequence));
	if (o->pending)
		json_object_object_add(j, "rewrap_to",
				       json_object_new_int64((int64_t)o->pending));
	ret = doc_write(j, dir, path, e);
	json_object_put(j);
	if (ret)
		cmk_err_prefix(e, "device %s: record of what was opened", d->name);
	return ret;
}

int cmk_opened_clear(const struct cmk_config *cfg,
		     const struct cmk_config_device *d, struct cmk_err *e)
{
	char path[4096], dir[4096];
	int ret;

	ret = path_of(path, sizeof(path), cfg->state_dir, "/opened", d->name, e);
	if (ret)
		return ret;
	if (unlink(path)) {
		if (errno == ENOENT)
			return 0;
		return cmk_errf(e, -errno, "cannot remove %s: %s", path, strerror(errno));
	}
	snprintf(dir, sizeof(dir), "%s/opened", cfg->state_dir);
	return cmk_fsync_dir(dir, e);
}

/* This boot's record of @d, and whether it is the one of @h or announces it. */
static int record_for(const struct cmk_config *cfg, const struct cmk_config_device *d,
		      const struct cmk_header *h, uint64_t seq,
		      uint8_t boot[CMK_UUID_LEN], struct cmk_opened *o,
		      bool *match, struct cmk_err *e)
{
	int ret;

	*match = false;
	ret = cmk_boot_id(boot, e);
	if (!ret)
		ret = cmk_opened_read(cfg, d, boot, o, e);
	if (ret || !o->valid)
		return ret;
	*match = !memcmp(o->device_uuid, h->device_uuid, CMK_UUID_LEN) &&
		 !memcmp(o->boot_id, h->boot_id, CMK_UUID_LEN) &&
		 (o->sequence == seq || o->pending == seq);
	return 0;
}

int cmk_opened_rewrap_begin(const struct cmk_config *cfg,
			    const struct cmk_config_device *d,
			    const struct cmk_header *before, struct cmk_err *e)
{
	struct cmk_opened o;
	uint8_t boot[CMK_UUID_LEN];
	bool match;
	int ret;

	ret = record_for(cfg, d, before, before->sequence, boot, &o, &match, e);
	if (ret || !match || o.sequence != before->sequence)
		return ret;
	o.pending = before->sequence + 1;
	return cmk_opened_write(cfg, d, boot, &o, e);
}

int cmk_opened_rewrapped(const struct cmk_config *cfg,
			 const struct cmk_config_device *d,
			 const struct cmk_header *after, struct cmk_err *e)
{
	struct cmk_opened o;
	uint8_t boot[CMK_UUID_LEN];
	bool match = false;
	int ret;

	ret = record_for(cfg, d, after, after->sequence, boot, &o, &match, e);
	if (!ret && !match && o.valid && after->sequence > 1)
		ret = record_for(cfg, d, after, after->sequence - 1, boot, &o,
				 &match, e);
	if (ret || !match || (o.sequence == after->sequence && !o.pending))
		return ret;
	cmk_opened_of(after, &o);
	return cmk_opened_write(cfg, d, boot, &o, e);
}
