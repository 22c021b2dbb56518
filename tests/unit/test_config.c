// SPDX-License-Identifier: GPL-2.0
/*
 * test_config.c - /etc/cmk/agent.conf parser.  Oracle: the documented
 * format; every rejection must carry "file:line:" of the offending line.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/config.h"

#define AGENT "[agent]\nkek_envelope = /etc/cmk/kek.json\n"

static int parse(const char *text, struct cmk_config *c, struct cmk_err *e)
{
	return cmk_config_parse(text, strlen(text), "agent.conf", c, e);
}

static void expect_error(const char *text, const char *where, const char *what)
{
	struct cmk_config c;
	struct cmk_err e;

	if (parse(text, &c, &e) == 0) {
		cmk_config_free(&c);
		fail_msg("accepted:\n%s", text);
	}
	assert_contains(e.msg, where);
	assert_contains(e.msg, what);
}

static void config_full_example_parses(void **state)
{
	static const char text[] =
		"# dm-cmk agent\n"
		"[agent]\n"
		"kek_envelope = /etc/cmk/kek.json\n"
		"check_interval_s = 20\n"
		"jitter_pct = 5\n"
		"lease_ms = 45000\n"
		"grace_s = 120\n"
		"policy = poweroff\n"
		"audit_log = /var/log/cmk/audit.log\n"
		"syslog = no\n"
		"boot_deadline_s = 30\n"
		"metrics_path = /var/lib/node/cmk.prom\n"
		"\n"
		"[provider \"local\"]\n"
		"\n"
		"[device \"pgtemp\"]\n"
		"  backing = /dev/nvme1n1  \n"
		"dm_name = pg-temp\n"
		"key_name = pg.temp:1\n"
		"mode = ephemeral\n"
		"sector_size = 4096\n"
		"options = no_read_workqueue no_write_workqueue allow_discards\n"
		"; second device with defaults\n"
		"[device \"wal\"]\n"
		"backing = /dev/vdb\n"
		"mode = persistent\n";
	struct cmk_config c;
	struct cmk_err e;
	char opts[128];

	(void)state;
	if (parse(text, &c, &e))
		fail_msg("%s", e.msg);
	assert_string_equal(c.kek_envelope, "/etc/cmk/kek.json");
	assert_int_equal(c.check_interval_s, 20);
	assert_int_equal(c.jitter_pct, 5);
	assert_int_equal(c.lease_ms, 45000);
	assert_int_equal(c.grace_s, 120);
	assert_int_equal(c.policy, CMK_POLICY_POWEROFF);
	assert_false(c.syslog);
	assert_int_equal(c.boot_deadline_s, 30);
	assert_string_equal(c.metrics_path, "/var/lib/node/cmk.prom");
	assert_int_equal(c.n_providers, 1);
	assert_non_null(cmk_config_provider(&c, "local"));
	assert_int_equal(c.n_devices, 2);
	assert_string_equal(c.devices[0].backing, "/dev/nvme1n1");
	assert_string_equal(c.devices[0].dm_name, "pg-temp");
	assert_string_equal(c.devices[0].key_name, "pg.temp:1");
	assert_int_equal(c.devices[0].mode, CMK_MODE_EPHEMERAL);
	assert_int_equal(c.devices[0].line, 16);
	assert_int_equal(cmk_device_table_options(&c.devices[0], opts, sizeof(opts)), 0);
	assert_string_equal(opts, "4 sector_size:4096 allow_discards no_read_workqueue no_write_workqueue");
	assert_string_equal(c.devices[1].dm_name, "cmk-wal");
	assert_string_equal(c.devices[1].key_name, "wal");
	assert_int_equal(c.devices[1].mode, CMK_MODE_PERSISTENT);
	assert_int_equal(c.devices[1].sector_size, 4096);
	assert_int_equal(c.devices[1].hold_ms, CMK_DEVICE_HOLD_MS);
	cmk_config_free(&c);
}

static void config_defaults_applied(void **state)
{
	struct cmk_config c;
	struct cmk_err e;
	struct cmk_config_device d = { .sector_size = 512,
					 .hold_ms = CMK_DEVICE_HOLD_MS };
	char opts[64];

	(void)state;
	assert_int_equal(parse(AGENT, &c, &e), 0);
	assert_int_equal(c.check_interval_s, 30);
	assert_int_equal(c.jitter_pct, 10);
	assert_int_equal(c.lease_ms, 60000);
	assert_int_equal(c.grace_s, 300);
	assert_int_equal(c.throttle_grace_s, 900);
	assert_int_equal(c.hint_spread_ms, 2000);
	assert_int_equal(c.policy, CMK_POLICY_WIPE);
	assert_true(c.syslog);
	assert_string_equal(c.audit_log, "/var/log/cmk/audit.log");
	assert_null(c.metrics_path);
	assert_string_equal(c.pin_dir, "/var/lib/cmk/pins");
	assert_int_equal(c.n_devices, 0);
	cmk_config_free(&c);
	assert_int_equal(cmk_device_table_options(&d, opts, sizeof(opts)), 0);
	assert_string_equal(opts, "");
}

static void config_unknown_key_rejected_with_line(void **state)
{
	(void)state;
	expect_error(AGENT "lease = 5\n", "agent.conf:3:", "unknown key \"lease\"");
	expect_error(AGENT "[device \"d\"]\nbacking = /dev/x\nmode = ephemeral\nlease_ms = 1\n",
		     "agent.conf:6:", "unknown key \"lease_ms\" in [device]");
	expect_error(AGENT "[provider \"local\"]\nregion = eu\n", "agent.conf:4:",
		     "unknown key \"region\" for provider \"local\"");
}

static void config_unknown_section_rejected_with_line(void **state)
{
	(void)state;
	expect_error(AGENT "\n[agnet]\n", "agent.conf:4:", "unknown section [agnet]");
	expect_error(AGENT "[provider \"aws2\"]\n", "agent.conf:3:", "unknown provider \"aws2\"");
	expect_error(AGENT "[device]\n", "agent.conf:3:", "needs a name");
	expect_error(AGENT "[device pg]\n", "agent.conf:3:", "double quotes");
	expect_error(AGENT "[device \"a b\"]\n", "agent.conf:3:", "must match");
	expect_error(AGENT "[agent \"x\"]\n", "agent.conf:3:", "takes no name");
	expect_error("kek_envelope = /x\n", "agent.conf:1:", "outside of any section");
	expect_error(AGENT "[device \"d\"\n", "agent.conf:3:", "must end with ']'");
}

static void config_duplicates_rejected_with_lines(void **state)
{
	(void)state;
	expect_error(AGENT "grace_s = 1\ngrace_s = 2\n", "agent.conf:4:",
		     "duplicate key \"grace_s\" (first at line 3)");
	expect_error(AGENT "[agent]\n", "agent.conf:3:", "duplicate [agent] section (first at line 1)");
	expect_error(AGENT "[device \"d\"]\nbacking = /dev/a\nmode = ephemeral\n"
		     "[device \"d\"]\n", "agent.conf:6:", "duplicate [device \"d\"] (first at line 3)");
	expect_error(AGENT "[provider \"local\"]\n[provider \"local\"]\n", "agent.conf:4:",
		     "duplicate [provider \"local\"]");
	expect_error(AGENT "[device \"a\"]\nbacking = /dev/a\nmode = ephemeral\n"
		     "[device \"b\"]\nbacking = /dev/b\nmode = ephemeral\nkey_name = a\n",
		     "agent.conf:6:", "same key_name as device \"a\" (line 3)");
	expect_error(AGENT "[device \"a\"]\nbacking = /dev/a\nmode = ephemeral\n"
		     "[device \"b\"]\nbacking = /dev/a\nmode = ephemeral\n",
		     "agent.conf:6:", "same backing");
	expect_error(AGENT "[device \"a\"]\nbacking = /dev/a\nmode = ephemeral\n"
		     "[device \"b\"]\nbacking = /dev/b\nmode = ephemeral\ndm_name = cmk-a\n",
		     "agent.conf:6:", "same dm_name");
}

static void config_bad_values_rejected_with_line(void **state)
{
	static const struct { const char *line, *what; } agent_bad[] = {
		{ "check_interval_s = 0", "out of range 1..86400" },
		{ "check_interval_s = -1", "not a non-negative integer" },
		{ "check_interval_s = +5", "not a non-negative integer" },
		{ "check_interval_s = 12abc", "not a non-negative integer" },
		{ "check_interval_s = 99999999999999999999999", "not a non-negative integer" },
		{ "jitter_pct = 51", "out of range 0..50" },
		{ "lease_ms = 999", "out of range 1000..600000" },
		{ "policy = maybe", "not one of wipe, poweroff, none" },
		{ "syslog = true", "not one of no, yes" },
		{ "audit_log = relative.log", "not an absolute path" },
		{ "grace_s =", "empty value" },
		{ "Grace_s = 1", "bad key" },
		{ "= 1", "missing key" },
		{ "just words", "expected \"key = value\"" },
	};
	static const struct { const char *line, *what; } dev_bad[] = {
		{ "mode = temp", "not one of ephemeral, persistent" },
		{ "sector_size = 1024", "sector_size must be 512 or 4096" },
		{ "sector_size = 8192", "out of range 512..4096" },
		{ "options = fast", "unknown option \"fast\"" },
		{ "options = allow_discards allow_discards", "given twice" },
		{ "key_name = has space", "must match [A-Za-z0-9._:-]{1,64}" },
		{ "key_name = " "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  "must match" },
		{ "dm_name = ../x", "must match" },
	};
	char text[512], where[32];

	(void)state;
	for (size_t i = 0; i < sizeof(agent_bad) / sizeof(agent_bad[0]); i++) {
		snprintf(text, sizeof(text), AGENT "%s\n", agent_bad[i].line);
		expect_error(text, "agent.conf:3:", agent_bad[i].what);
	}
	for (size_t i = 0; i < sizeof(dev_bad) / sizeof(dev_bad[0]); i++) {
		bool is_mode = strncmp(dev_bad[i].line, "mode", 4) == 0;

		snprintf(text, sizeof(text),
			 AGENT "[device \"d\"]\nbacking = /dev/x\n%s\n%s\n",
			 is_mode ? "# no mode yet" : "mode = ephemeral", dev_bad[i].line);
		snprintf(where, sizeof(where), "agent.conf:%d:", 6);
		expect_error(text, where, dev_bad[i].what);
	}
}

static void config_missing_required_rejected(void **state)
{
	(void)state;
	expect_error("[agent]\ncheck_interval_s = 5\n", "agent.conf:1:",
		     "missing required key \"kek_envelope\"");
	expect_error(AGENT "[device \"d\"]\nmode = ephemeral\n\n[device \"e\"]\n",
		     "agent.conf:3:", "missing required key \"backing\"");
	expect_error(AGENT "[device \"d\"]\nbacking = /dev/x\n", "agent.conf:3:",
		     "missing required key \"mode\"");
	expect_error("# nothing\n", "agent.conf", "missing [agent] section");
}

/*
 * Review finding 14: a device name is a file name in state_dir and pin_dir
 * (pins, records, revoke markers, locks): "." and ".." named the
 * directories themselves.  And pins kept in state_dir (per boot) are gone
 * at every reboot.  Oracle: refused at load, with the line and the reason.
 */
static void config_adversarial_dot_names_and_pin_dir_refused(void **state)
{
	(void)state;
	expect_error(AGENT "[device \"..\"]\nbacking = /dev/x\nmode = persistent\n",
		     "agent.conf:3:", "not be \".\" or \"..\"");
	expect_error(AGENT "[device \".\"]\nbacking = /dev/x\nmode = persistent\n",
		     "agent.conf:3:", "not be \".\" or \"..\"");
	expect_error(AGENT "state_dir = /run/cmk\npin_dir = /run/cmk/\n", "agent.conf",
		     "pins must outlive a reboot");
}

static void config_lease_must_outlive_check_interval(void **state)
{
	(void)state;
	/* 60 s interval + 10 % jitter = 66 s > 3/4 of a 60 s lease */
	expect_error(AGENT "check_interval_s = 60\nlease_ms = 60000\n", "agent.conf:4:",
		     "lease_ms 60000 is too short for the check interval: the longest interval (66000 ms with jitter)");
	/* 30 s + 10 % = 33 s, + 100 ms for a check: more than 3/4 of 44 s */
	expect_error(AGENT "lease_ms = 44000\n", "agent.conf:3:", "must fit in 3/4 of the lease (33000 ms)");
}

/*
 * The timing rule of cmk-agent.rst: interval (+ jitter) + check_timeout_ms
 * <= 3/4 lease_ms.  Without check_timeout_ms the deadline is what the
 * lease leaves, at most 30 s.  Oracle: the documented inequality.
 */
static void config_hang_check_timeout_derived_from_lease(void **state)
{
	struct cmk_config c;
	struct cmk_err e;

	(void)state;
	/* defaults: 3/4 * 60000 - 33000 */
	assert_int_equal(parse(AGENT, &c, &e), 0);
	assert_int_equal(c.check_timeout_ms, 12000);
	cmk_config_free(&c);
	/* the configuration: 3/4 * 8000 - 2000 */
	assert_int_equal(parse(AGENT "check_interval_s = 2\njitter_pct = 0\nlease_ms = 8000\n",
			       &c, &e), 0);
	assert_int_equal(c.check_timeout_ms, 4000);
	cmk_config_free(&c);
	/* a long lease: capped */
	assert_int_equal(parse(AGENT "lease_ms = 600000\n", &c, &e), 0);
	assert_int_equal(c.check_timeout_ms, 30000);
	cmk_config_free(&c);
	/* just enough for the smallest deadline */
	assert_int_equal(parse(AGENT "check_interval_ms = 650\njitter_pct = 0\nlease_ms = 1000\n",
			       &c, &e), 0);
	assert_int_equal(c.check_timeout_ms, 100);
	cmk_config_free(&c);
}

static void config_hang_check_timeout_must_fit_lease(void **state)
{
	struct cmk_config c;
	struct cmk_err e;
	const char *ok = AGENT "check_interval_s = 2\njitter_pct = 0\nlease_ms = 8000\n"
			       "check_timeout_ms = 4000\n";

	(void)state;
	assert_int_equal(parse(ok, &c, &e), 0);
	assert_int_equal(c.check_timeout_ms, 4000);
	cmk_config_free(&c);
	/* 2000 + 4001 > 6000 */
	expect_error(AGENT "check_interval_s = 2\njitter_pct = 0\nlease_ms = 8000\n"
		     "check_timeout_ms = 4001\n", "agent.conf:6:",
		     "check_timeout_ms 4001 does not fit: the longest check interval (2000 ms with jitter) plus check_timeout_ms must fit in 3/4 of lease_ms 8000 (6000 ms)");
	/* the old rule (lease > interval) let a 30 s call starve an 8 s lease */
	expect_error(AGENT "check_interval_s = 2\nlease_ms = 8000\ncheck_timeout_ms = 30000\n",
		     "agent.conf:5:", "does not fit");
	expect_error(AGENT "check_timeout_ms = 99\n", "agent.conf:3:", "out of range 100..300000");
	expect_error(AGENT "check_timeout_ms = 300001\n", "agent.conf:3:", "out of range 100..300000");
}

struct warnings {
	int n;
	char last[CMK_ERR_MSG_MAX];
};

static void collect(void *ctx, const char *msg)
{
	struct warnings *w = ctx;

	w->n++;
	snprintf(w->last, sizeof(w->last), "%s", msg);
}

static size_t warnings_of(const char *text, struct warnings *w)
{
	struct cmk_config c;
	struct cmk_err e;
	size_t n;

	memset(w, 0, sizeof(*w));
	assert_int_equal(parse(text, &c, &e), 0);
	n = cmk_config_warnings(&c, collect, w);
	assert_int_equal(n, (size_t)w->n);
	cmk_config_free(&c);
	return n;
}

#define DEV(hold) "[device \"db\"]\nbacking = /dev/vdb\ndm_name = cmk-db\n" \
		  "key_name = db\nmode = ephemeral\n" hold

/*
 * Settings that load but are unwise are named: a derived deadline under
 * 1 s (it used to be as low as 100 ms, silently), and a device whose
 * hold_ms does not cover two check deadlines (a stale check that cannot
 * be cancelled, then the fresh one).  Oracle: config.h's rules; the
 * defaults (12 s deadline, 30 s hold) warn about nothing.
 */
static void config_timing_warnings_hold_ms_and_short_deadline(void **state)
{
	struct warnings w;

	(void)state;
	assert_int_equal(warnings_of(AGENT DEV(""), &w), 0);
	/* 100 ms derived: named */
	assert_int_equal(warnings_of(AGENT "check_interval_ms = 650\njitter_pct = 0\nlease_ms = 1000\n",
				     &w), 1);
	assert_contains(w.last, "only 100 ms");
	/* 100 ms set on purpose: the operator's choice */
	assert_int_equal(warnings_of(AGENT "check_interval_ms = 650\njitter_pct = 0\nlease_ms = 1000\n"
				     "check_timeout_ms = 100\n", &w), 0);
	/* hold_ms 24000 = 2 x 12000: warned, 24001 not, 0 (fail at once) not */
	assert_int_equal(warnings_of(AGENT DEV("hold_ms = 24000\n"), &w), 1);
	assert_contains(w.last, "device \"db\": hold_ms 24000 is not more than twice check_timeout_ms (12000 ms)");
	assert_int_equal(warnings_of(AGENT DEV("hold_ms = 24001\n"), &w), 0);
	assert_int_equal(warnings_of(AGENT DEV("hold_ms = 0\n"), &w), 0);
	/* a long lease derives 30 s: the default hold of 30 s is too short */
	assert_int_equal(warnings_of(AGENT "lease_ms = 600000\n" DEV(""), &w), 1);
	assert_contains(w.last, "hold_ms 30000");
}

static void config_check_interval_ms_parses(void **state)
{
	struct cmk_config c;
	struct cmk_err e;
	const char *t = AGENT "check_interval_ms = 250\nlease_ms = 2000\nstate_dir = /tmp/cmk-st\n";

	(void)state;
	assert_int_equal(parse(t, &c, &e), 0);
	assert_int_equal(c.check_interval_ms, 250);
	assert_int_equal(c.check_interval_s, 1);	/* rounded up */
	assert_string_equal(c.state_dir, "/tmp/cmk-st");
	cmk_config_free(&c);
	/* seconds still work and define the millisecond value */
	assert_int_equal(parse(AGENT "check_interval_s = 7\n", &c, &e), 0);
	assert_int_equal(c.check_interval_ms, 7000);
	assert_string_equal(c.state_dir, "/run/cmk");
	cmk_config_free(&c);
	/* defaults: 30 s */
	assert_int_equal(parse(AGENT, &c, &e), 0);
	assert_int_equal(c.check_interval_ms, 30000);
	cmk_config_free(&c);
}

static void config_check_interval_ms_validated(void **state)
{
	(void)state;
	expect_error(AGENT "check_interval_ms = 99\n", "agent.conf:3:",
		     "out of range 100..86400000");
	expect_error(AGENT "check_interval_ms = 86400001\n", "agent.conf:3:",
		     "out of range 100..86400000");
	expect_error(AGENT "check_interval_ms = 1.5\n", "agent.conf:3:",
		     "not a non-negative integer");
	expect_error(AGENT "check_interval_s = 1\ncheck_interval_ms = 500\n",
		     "agent.conf:4:", "check_interval_ms and check_interval_s (line 3) both set");
	/* 1000 ms + 10 % jitter = 1100 ms > 3/4 of a 1000 ms lease */
	expect_error(AGENT "check_interval_ms = 1000\nlease_ms = 1000\n", "agent.conf:4:",
		     "the longest interval (1100 ms with jitter)");
	expect_error(AGENT "state_dir = run/cmk\n", "agent.conf:3:",
		     "not an absolute path");
}

static void config_rejects_nul_and_control_characters(void **state)
{
	static const char text[] = "[agent]\nkek_envelope = /a\0b\n";
	struct cmk_config c;
	struct cmk_err e;

	(void)state;
	assert_int_equal(cmk_config_parse(text, sizeof(text) - 1, "agent.conf", &c, &e),
			 -EINVAL);
	assert_contains(e.msg, "agent.conf:2: NUL byte");
	expect_error("[agent]\nkek_envelope = /a\x1b[31m\n", "agent.conf:2:", "control character");
}

static void config_load_from_file(void **state)
{
	struct cmk_config c;
	struct cmk_err e;

	(void)state;
	tu_write_file(tu_path("agent.conf"), AGENT "grace_s = 9\n", strlen(AGENT) + 12, 0600);
	assert_int_equal(cmk_config_load(tu_path("agent.conf"), &c, &e), 0);
	assert_int_equal(c.grace_s, 9);
	cmk_config_free(&c);
	assert_int_equal(cmk_config_load(tu_path("missing.conf"), &c, &e), -ENOENT);
	assert_contains(e.msg, "missing.conf");
}

static void config_device_format(void **state)
{
	struct cmk_config c;
	struct cmk_err e;

	(void)state;
	assert_int_equal(parse(AGENT "[device \"a\"]\nbacking = /dev/x\nmode = ephemeral\n"
			       "[device \"b\"]\nbacking = /dev/y\nmode = ephemeral\nformat = always\n"
			       "[device \"c\"]\nbacking = /dev/z\nmode = persistent\nformat = auto\n",
			       &c, &e), 0);
	assert_int_equal(c.n_devices, 3);
	assert_int_equal(c.devices[0].format, CMK_FORMAT_AUTO);	/* default */
	assert_int_equal(c.devices[1].format, CMK_FORMAT_ALWAYS);
	assert_int_equal(c.devices[2].format, CMK_FORMAT_AUTO);
	cmk_config_free(&c);
	expect_error(AGENT "[device \"a\"]\nbacking = /dev/x\nmode = ephemeral\nformat = yes\n",
		     "agent.conf:6", "not one of auto, always");
	expect_error(AGENT "[device \"a\"]\nbacking = /dev/x\nmode = persistent\nformat = always\n",
		     "agent.conf:6", "ephemeral devices only");
}

/* A persistent device's uuid: the line cmkctl format prints. */
static void config_adversarial_device_uuid(void **state)
{
	static const uint8_t want[CMK_UUID_LEN] = {
		0x0f, 0x8f, 0xad, 0x5b, 0xd9, 0xcb, 0x46, 0x9f,
		0xa1, 0x65, 0x70, 0x86, 0x77, 0x28, 0x95, 0x0e,
	};
	struct cmk_config c;
	struct cmk_err e;

	(void)state;
	assert_int_equal(parse(AGENT "pin_dir = /srv/pins\n"
			       "[device \"a\"]\nbacking = /dev/x\nmode = persistent\n"
			       "uuid = 0F8FAD5B-D9CB-469F-A165-70867728950E\n"
			       "[device \"b\"]\nbacking = /dev/y\nmode = persistent\n",
			       &c, &e), 0);
	assert_string_equal(c.pin_dir, "/srv/pins");
	assert_true(c.devices[0].has_uuid);
	assert_memory_equal(c.devices[0].uuid, want, CMK_UUID_LEN);
	assert_false(c.devices[1].has_uuid);
	cmk_config_free(&c);
	expect_error(AGENT "[device \"a\"]\nbacking = /dev/x\nmode = persistent\nuuid = 0f8fad5b\n",
		     "agent.conf:6", "not a UUID");
	expect_error(AGENT "[device \"a\"]\nbacking = /dev/x\nmode = ephemeral\n"
		     "uuid = 0f8fad5b-d9cb-469f-a165-70867728950e\n",
		     "agent.conf:6", "persistent devices only");
	expect_error(AGENT "[device \"a\"]\nbacking = /dev/x\nmode = persistent\n"
		     "uuid = 0f8fad5b-d9cb-469f-a165-70867728950e\n"
		     "[device \"b\"]\nbacking = /dev/y\nmode = persistent\n"
		     "uuid = 0f8fad5b-d9cb-469f-a165-70867728950e\n",
		     "agent.conf:7", "same uuid as device \"a\"");
}

/* The header flags follow the table options that change the ciphertext. */
static void config_adversarial_header_flags_follow_iv_option(void **state)
{
	struct cmk_config_device d = { .sector_size = 4096,
				       .options = CMK_OPT_NO_READ_WORKQUEUE };

	(void)state;
	assert_int_equal(cmk_device_header_flags(&d), 0);
	d.options |= CMK_OPT_IV_LARGE_SECTORS;
	assert_int_equal(cmk_device_header_flags(&d), CMK_HDR_F_IV_LARGE_SECTORS);
}

static void config_table_line_matches_contract(void **state)
{
	struct cmk_config_device d = {
		.key_name = "pgtemp", .sector_size = 4096,
		.hold_ms = CMK_DEVICE_HOLD_MS,
		.options = CMK_OPT_NO_READ_WORKQUEUE,
	};
	char line[512];

	(void)state;
	d.backing = "/dev/vdb";
	/* 1 MiB header + 10 MiB + 3 stray 512-byte sectors */
	assert_int_equal(cmk_device_table_line(&d, NULL, (11ULL << 20) + 1536, line,
					       sizeof(line)), 0);
	assert_string_equal(line, "0 20480 cmk aes-xts-plain64 pgtemp 0 /dev/vdb 2048 "
			    "2 sector_size:4096 no_read_workqueue");
	d.sector_size = 512;
	d.options = 0;
	assert_int_equal(cmk_device_table_line(&d, NULL, (11ULL << 20) + 1536, line,
					       sizeof(line)), 0);
	assert_string_equal(line, "0 20483 cmk aes-xts-plain64 pgtemp 0 /dev/vdb 2048");
	/* hold_ms only when it is not the kernel's default */
	d.hold_ms = 0;
	assert_int_equal(cmk_device_table_line(&d, NULL, (11ULL << 20) + 1536, line,
					       sizeof(line)), 0);
	assert_string_equal(line, "0 20483 cmk aes-xts-plain64 pgtemp 0 /dev/vdb 2048 "
			    "1 hold_ms:0");
	d.hold_ms = CMK_DEVICE_HOLD_MS;
	assert_int_equal(cmk_device_table_line(&d, NULL, 1 << 20, line, sizeof(line)), -ENOSPC);
	assert_int_equal(cmk_device_table_line(&d, NULL, 4 << 20, line, 20), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_full_example_parses),
		cmocka_unit_test(config_defaults_applied),
		cmocka_unit_test(config_unknown_key_rejected_with_line),
		cmocka_unit_test(config_unknown_section_rejected_with_line),
		cmocka_unit_test(config_duplicates_rejected_with_lines),
		cmocka_unit_test(config_bad_values_rejected_with_line),
		cmocka_unit_test(config_missing_required_rejected),
		cmocka_unit_test(config_adversarial_dot_names_and_pin_dir_refused),
		cmocka_unit_test(config_lease_must_outlive_check_interval),
		cmocka_unit_test(config_hang_check_timeout_derived_from_lease),
		cmocka_unit_test(config_hang_check_timeout_must_fit_lease),
		cmocka_unit_test(config_timing_warnings_hold_ms_and_short_deadline),
		cmocka_unit_test(config_check_interval_ms_parses),
		cmocka_unit_test(config_check_interval_ms_validated),
		cmocka_unit_test(config_rejects_nul_and_control_characters),
		cmocka_unit_test(config_load_from_file),
		cmocka_unit_test(config_table_line_matches_contract),
		cmocka_unit_test(config_device_format),
		cmocka_unit_test(config_adversarial_device_uuid),
		cmocka_unit_test(config_adversarial_header_flags_follow_iv_option),
	};

	return cmocka_run_group_tests_name("config", tests, tu_setup_tmpdir,
					   tu_teardown_tmpdir);
}
