// SPDX-License-Identifier: GPL-2.0
/*
 * test_binding.c - the boot id, first-use pins and open records on disk.
 * Oracles: /proc's boot id read independently, the files read back, and
 * that damaged or foreign files are refused or ignored as documented
 * (formats.rst) - never taken for "no pin" (that would reopen first use).
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device/binding.h"

static struct cmk_config cfg;

static int setup(void **state)
{
	struct cmk_err e;
	char text[1024];

	if (tu_setup_tmpdir(state))
		return -1;
	snprintf(text, sizeof(text),
		 "[agent]\nkek_envelope = /k.json\nstate_dir = %s\n", tu_path("run"));
	snprintf(text + strlen(text), sizeof(text) - strlen(text),
		 "pin_dir = %s\n[device \"pa\"]\nbacking = /dev/null\nmode = persistent\n",
		 tu_path("var/lib/cmk/pins"));
	return cmk_config_parse(text, strlen(text), "agent.conf", &cfg, &e);
}

static int teardown(void **state)
{
	cmk_config_free(&cfg);
	return tu_teardown_tmpdir(state);
}

static void binding_adversarial_boot_id_is_the_kernels(void **state)
{
	uint8_t id[CMK_UUID_LEN];
	char s[CMK_UUID_STR], proc[64] = "";
	struct cmk_err e;
	FILE *f;

	(void)state;
	assert_int_equal(cmk_boot_id(id, &e), 0);
	cmk_uuid_format(id, s);
	f = fopen(CMK_BOOT_ID_PATH, "r");
	assert_non_null(f);
	assert_non_null(fgets(proc, sizeof(proc), f));
	fclose(f);
	assert_memory_equal(proc, s, 36);
}

static void binding_adversarial_pin_roundtrip_and_durable(void **state)
{
	const struct cmk_config_device *d = &cfg.devices[0];
	uint8_t u[CMK_UUID_LEN] = { 1, 2, 3 }, got[CMK_UUID_LEN];
	char from[256];
	struct stat st;
	struct cmk_err e;
	bool have;

	(void)state;
	assert_int_equal(cmk_pin_read(&cfg, d, &have, got, from, sizeof(from), &e), 0);
	assert_false(have);
	tu_fsync_count = 0;
	tu_fsync_record = true;
	assert_int_equal(cmk_pin_write(&cfg, d, u, &e), 0);
	tu_fsync_record = false;
	/* the new directories' entries and the file are on disk */
	assert_true(tu_fsynced(tu_path("var/lib/cmk/pins")));
	assert_true(tu_fsynced(tu_path("var/lib/cmk")));
	assert_int_equal(stat(tu_path("var/lib/cmk/pins/pa"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(cmk_pin_read(&cfg, d, &have, got, from, sizeof(from), &e), 0);
	assert_true(have);
	assert_memory_equal(got, u, CMK_UUID_LEN);
	assert_contains(from, "pins/pa");
}

/* A damaged pin must not read as "no pin": that would reopen first use. */
static void binding_adversarial_damaged_pin_is_an_error(void **state)
{
	static const char *const bad[] = {
		"",
		"{}",
		"{\"format\": \"dm-cmk-pin\", \"version\": 1, \"device\": \"pb\", \"device_uuid\": \"01020300-0000-0000-0000-000000000000\"}",
		"{\"format\": \"dm-cmk-pin\", \"version\": 1, \"device\": \"pa\", \"device_uuid\": \"nope\"}",
		"{\"format\": \"dm-cmk-pin\", \"version\": 2, \"device\": \"pa\", \"device_uuid\": \"01020300-0000-0000-0000-000000000000\"}",
		"{\"format\": \"dm-cmk-pin\", \"version\": 1, \"device\": \"pa\", \"device_uuid\": \"01020300-0000-0000-0000-000000000000\"} x",
	};
	const struct cmk_config_device *d = &cfg.devices[0];
	uint8_t u[CMK_UUID_LEN] = { 1 }, got[CMK_UUID_LEN];
	struct cmk_err e;
	bool have;

	(void)state;
	assert_int_equal(cmk_pin_write(&cfg, d, u, &e), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tu_write_file(tu_path("var/lib/cmk/pins/pa"), bad[i], strlen(bad[i]), 0600);
		if (cmk_pin_read(&cfg, d, &have, got, NULL, 0, &e) != -EBADMSG)
			fail_msg("pin file %zu accepted (have %d)", i, have);
		assert_contains(e.msg, "device pa: pin");
	}
}

static void binding_adversarial_opened_record_roundtrip(void **state)
{
	const struct cmk_config_device *d = &cfg.devices[0];
	struct cmk_opened o = { .valid = true, .device_uuid = { 7 }, .boot_id = { 8 },
				.sequence = 42 }, r;
	uint8_t boot[CMK_UUID_LEN] = { 9 };
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_opened_read(&cfg, d, boot, &r, &e), 0);
	assert_false(r.valid);
	assert_int_equal(cmk_opened_write(&cfg, d, boot, &o, &e), 0);
	assert_int_equal(cmk_opened_read(&cfg, d, boot, &r, &e), 0);
	assert_true(r.valid);
	assert_memory_equal(r.device_uuid, o.device_uuid, CMK_UUID_LEN);
	assert_memory_equal(r.boot_id, o.boot_id, CMK_UUID_LEN);
	assert_int_equal(r.sequence, 42);
	/* a record of another boot (a state_dir that outlived a reboot): none */
	boot[0] ^= 1;
	assert_int_equal(cmk_opened_read(&cfg, d, boot, &r, &e), 0);
	assert_false(r.valid);
	assert_int_equal(cmk_opened_clear(&cfg, d, &e), 0);
	assert_int_equal(access(tu_path("run/opened/pa"), F_OK), -1);
	assert_int_equal(cmk_opened_clear(&cfg, d, &e), 0);
}

/* A rotation moves a record on only from the header it names. */
static void binding_adversarial_rewrap_follows_only_a_matching_record(void **state)
{
	const struct cmk_config_device *d = &cfg.devices[0];
	struct cmk_header before, after, other;
	uint8_t boot[CMK_UUID_LEN];
	struct cmk_opened o, r;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_boot_id(boot, &e), 0);
	memset(&before, 0, sizeof(before));
	before.device_uuid[0] = 1;
	before.boot_id[0] = 2;
	before.sequence = 5;
	after = before;
	after.sequence = 6;
	other = before;
	other.sequence = 4;
	/* no record: nothing to follow, nothing written */
	assert_int_equal(cmk_opened_rewrap_begin(&cfg, d, &before, &e), 0);
	assert_int_equal(cmk_opened_rewrapped(&cfg, d, &after, &e), 0);
	assert_int_equal(cmk_opened_read(&cfg, d, boot, &r, &e), 0);
	assert_false(r.valid);
	/* a record of another header (two behind): left alone */
	cmk_opened_of(&other, &o);
	assert_int_equal(cmk_opened_write(&cfg, d, boot, &o, &e), 0);
	assert_int_equal(cmk_opened_rewrap_begin(&cfg, d, &before, &e), 0);
	assert_int_equal(cmk_opened_rewrapped(&cfg, d, &after, &e), 0);
	assert_int_equal(cmk_opened_read(&cfg, d, boot, &r, &e), 0);
	assert_int_equal(r.sequence, 4);
	assert_int_equal(r.pending, 0);
	/* the record of this header: announced, then moved on */
	cmk_opened_of(&before, &o);
	assert_int_equal(cmk_opened_write(&cfg, d, boot, &o, &e), 0);
	assert_int_equal(cmk_opened_rewrap_begin(&cfg, d, &before, &e), 0);
	assert_int_equal(cmk_opened_read(&cfg, d, boot, &r, &e), 0);
	assert_int_equal(r.sequence, 5);
	assert_int_equal(r.pending, 6);
	assert_int_equal(cmk_opened_rewrapped(&cfg, d, &after, &e), 0);
	assert_int_equal(cmk_opened_read(&cfg, d, boot, &r, &e), 0);
	assert_int_equal(r.sequence, 6);
	assert_int_equal(r.pending, 0);
}

/*
 * A re-wrap interrupted after its header write, before the record moved
 * (cmkctl killed; or an agent version without the announcement): the
 * record is one behind the authentic header.  Running the rotation again
 * (cmk_opened_rewrapped() from its "already re-wrapped" path) repairs it;
 * a record two behind is not touched.  Oracle: the record read back.
 */
static void binding_adversarial_interrupted_rewrap_record_catches_up(void **state)
{
	const struct cmk_config_device *d = &cfg.devices[0];
	struct cmk_header h;
	uint8_t boot[CMK_UUID_LEN];
	struct cmk_opened o, r;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_boot_id(boot, &e), 0);
	memset(&h, 0, sizeof(h));
	h.device_uuid[0] = 1;
	h.boot_id[0] = 2;
	h.sequence = 8;
	cmk_opened_of(&h, &o);
	o.sequence = 7;
	assert_int_equal(cmk_opened_write(&cfg, d, boot, &o, &e), 0);
	assert_int_equal(cmk_opened_rewrapped(&cfg, d, &h, &e), 0);
	assert_int_equal(cmk_opened_read(&cfg, d, boot, &r, &e), 0);
	assert_int_equal(r.sequence, 8);
	o.sequence = 6;
	assert_int_equal(cmk_opened_write(&cfg, d, boot, &o, &e), 0);
	assert_int_equal(cmk_opened_rewrapped(&cfg, d, &h, &e), 0);
	assert_int_equal(cmk_opened_read(&cfg, d, boot, &r, &e), 0);
	assert_int_equal(r.sequence, 6);
	/* another device_uuid one behind: not this header's record */
	o.sequence = 7;
	o.device_uuid[0] = 9;
	assert_int_equal(cmk_opened_write(&cfg, d, boot, &o, &e), 0);
	assert_int_equal(cmk_opened_rewrapped(&cfg, d, &h, &e), 0);
	assert_int_equal(cmk_opened_read(&cfg, d, boot, &r, &e), 0);
	assert_int_equal(r.sequence, 7);
}

/*
 * Pins and records are files a root process could find damaged: fields of
 * the wrong JSON type (null where a string belongs) are refused as
 * malformed, never dereferenced.  Before: "format": null crashed the
 * reader (strcmp on NULL).  Oracle: -EBADMSG naming the file, no crash.
 */
static void binding_adversarial_null_fields_refused(void **state)
{
	static const char *const bad[] = {
		"{\"format\": null, \"version\": 1, \"device\": \"pa\"}\n",
		"{\"format\": 7, \"version\": 1, \"device\": \"pa\"}\n",
		"{\"format\": \"dm-cmk-pin\", \"version\": 1, \"device\": null}\n",
		"{\"format\": \"dm-cmk-pin\", \"version\": null, \"device\": \"pa\"}\n",
		"{\"format\": \"dm-cmk-pin\", \"version\": 1, \"device\": \"pa\", \"device_uuid\": null}\n",
	};
	static const char *const bad_rec[] = {
		"{\"format\": null, \"version\": 1, \"device\": \"pa\"}\n",
		"{\"format\": \"dm-cmk-opened\", \"version\": 1, \"device\": \"pa\", \"kernel_boot_id\": null}\n",
	};
	const struct cmk_config_device *d = &cfg.devices[0];
	uint8_t got[CMK_UUID_LEN], boot[CMK_UUID_LEN];
	struct cmk_opened r;
	struct cmk_err e;
	bool have;

	(void)state;
	assert_int_equal(cmk_boot_id(boot, &e), 0);
	assert_int_equal(mkdir(tu_path("var"), 0700), 0);
	assert_int_equal(mkdir(tu_path("var/lib"), 0700), 0);
	assert_int_equal(mkdir(tu_path("var/lib/cmk"), 0700), 0);
	assert_int_equal(mkdir(tu_path("var/lib/cmk/pins"), 0700), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tu_write_file(tu_path("var/lib/cmk/pins/pa"), bad[i], strlen(bad[i]), 0600);
		if (cmk_pin_read(&cfg, d, &have, got, NULL, 0, &e) != -EBADMSG)
			fail_msg("pin file %zu accepted (have %d)", i, have);
		assert_contains(e.msg, "pins/pa");
	}
	assert_int_equal(mkdir(tu_path("run"), 0700), 0);
	assert_int_equal(mkdir(tu_path("run/opened"), 0700), 0);
	for (size_t i = 0; i < sizeof(bad_rec) / sizeof(bad_rec[0]); i++) {
		tu_write_file(tu_path("run/opened/pa"), bad_rec[i], strlen(bad_rec[i]), 0600);
		assert_int_equal(cmk_opened_read(&cfg, d, boot, &r, &e), -EBADMSG);
		assert_false(r.valid);
	}
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(binding_adversarial_boot_id_is_the_kernels),
		T(binding_adversarial_pin_roundtrip_and_durable),
		T(binding_adversarial_damaged_pin_is_an_error),
		T(binding_adversarial_opened_record_roundtrip),
		T(binding_adversarial_rewrap_follows_only_a_matching_record),
		T(binding_adversarial_interrupted_rewrap_record_catches_up),
		T(binding_adversarial_null_fields_refused),
	};

	return cmocka_run_group_tests_name("binding", tests, NULL, NULL);
}
