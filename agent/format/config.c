// SPDX-License-Identifier: GPL-2.0
/*
 * config.c - agent configuration parser (see config.h).
 */
#include "format/config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"

static const char *const policy_names[] = {
	[CMK_POLICY_WIPE] = "wipe",
	[CMK_POLICY_POWEROFF] = "poweroff",
	[CMK_POLICY_NONE] = "none",
	NULL,
};

static const char *const mode_names[] = {
	"", "ephemeral", "persistent", NULL,	/* index = enum cmk_mode */
};

static const char *const format_names[] = {
	"auto", "always", NULL,			/* index = enum cmk_format */
};

static const char *const bool_names[] = { "no", "yes", NULL };

static const char *const option_names[] = {
	"iv_large_sectors", "allow_discards", "no_read_workqueue",
	"no_write_workqueue", NULL,		/* bit i = option i */
};

const char *cmk_policy_name(enum cmk_policy p)
{
	if ((unsigned int)p > CMK_POLICY_NONE)
		return "unknown";
	return policy_names[p];
}

bool cmk_key_name_valid(const char *s)
{
	size_t len = strlen(s);

	if (len < 1 || len > CMK_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._:-", s[i]))
			return false;
	return true;
}

static bool dm_name_valid(const char *s)
{
	size_t len = strlen(s);

	if (len < 1 || len > CMK_DM_NAME_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._:+-", s[i]))
			return false;
	return true;
}

/* ---- settings tables ----------------------------------------------------- */

enum kind { K_UINT, K_PATH, K_STR, K_ENUM, K_NAME, K_DMNAME, K_OPTIONS, K_UUID };

struct setting {
	const char *key;
	enum kind kind;
	size_t off;
	uint32_t min, max;		/* K_UINT */
	const char *const *names;	/* K_ENUM: value = index */
	bool required;
};

#define A(f) offsetof(struct cmk_config, f)
#define D(f) offsetof(struct cmk_config_device, f)

#define UINT(k, o, lo, hi) { .key = k, .kind = K_UINT, .off = o, .min = lo, .max = hi }
#define OF(k, kd, o) { .key = k, .kind = kd, .off = o }
#define ENUM(k, o, n) { .key = k, .kind = K_ENUM, .off = o, .names = n }

static const struct setting agent_settings[] = {
	{ .key = "kek_envelope", .kind = K_PATH, .off = A(kek_envelope), .required = true },
	UINT("check_interval_s", A(check_interval_s), 1, 86400),
	UINT("check_interval_ms", A(check_interval_ms), 100, 86400000),
	UINT("jitter_pct", A(jitter_pct), 0, 50),
	UINT("lease_ms", A(lease_ms), 1000, 600000),
	UINT("check_timeout_ms", A(check_timeout_ms), CMK_CHECK_TIMEOUT_MIN_MS, 300000),
	UINT("grace_s", A(grace_s), 0, 86400),
	UINT("throttle_grace_s", A(throttle_grace_s), 0, 86400),
	UINT("boot_deadline_s", A(boot_deadline_s), 1, 3600),
	ENUM("policy", A(policy), policy_names),
	OF("audit_log", K_PATH, A(audit_log)),
	ENUM("syslog", A(syslog), bool_names),
	OF("metrics_path", K_PATH, A(metrics_path)),
	OF("state_dir", K_PATH, A(state_dir)),
	OF("pin_dir", K_PATH, A(pin_dir)),
	OF("hint_sqs_queue_url", K_STR, A(hint_sqs_queue_url)),
	OF("hint_sqs_region", K_STR, A(hint_sqs_region)),
	OF("key_socket", K_PATH, A(key_socket)),
	OF("key_socket_allow", K_STR, A(key_socket_allow)),
	OF("key_socket_group", K_STR, A(key_socket_group)),
	UINT("hint_spread_ms", A(hint_spread_ms), 0, 60000),
	{ .key = NULL }
};

static const struct setting device_settings[] = {
	{ .key = "backing", .kind = K_PATH, .off = D(backing), .required = true },
	OF("dm_name", K_DMNAME, D(dm_name)),
	OF("key_name", K_NAME, D(key_name)),
	{ .key = "mode", .kind = K_ENUM, .off = D(mode), .names = mode_names, .required = true },
	UINT("sector_size", D(sector_size), 512, 4096),
	UINT("hold_ms", D(hold_ms), 0, 600000),
	OF("options", K_OPTIONS, D(options)),
	ENUM("format", D(format), format_names),
	OF("uuid", K_UUID, D(uuid)),
	{ .key = NULL }
};

#define MAX_SETTINGS 32

/* ---- parser state ---------------------------------------------------------- */

enum section { S_NONE, S_AGENT, S_PROVIDER, S_DEVICE };

struct parser {
	const char *name;
	int line;
	struct cmk_config *c;
	struct cmk_err *e;
	enum section sec;
	int sec_line;
	void *obj;				/* config or device */
	const struct setting *table;
	int seen[MAX_SETTINGS];			/* line of first setting, 0 = unset */
	int agent_line;
	int lease_line;		/* where lease_ms was set, for validate() */
	int interval_s_line;	/* where check_interval_s was set */
	int interval_ms_line;	/* where check_interval_ms was set */
	int timeout_line;	/* where check_timeout_ms was set */
};

#define PERR(p, code, fmt, ...) \
	cmk_errf((p)->e, code, "%s:%d: " fmt, (p)->name, (p)->line, ##__VA_ARGS__)

static int set_value(struct parser *p, const struct setting *s, const char *v)
{
	char *base = p->obj;
	size_t i;

	switch (s->kind) {
	case K_UINT: {
		unsigned long long x;
		char *end;

		if (!isdigit((unsigned char)v[0]))
			return PERR(p, -EINVAL, "%s: \"%s\" is not a non-negative integer",
				    s->key, v);
		errno = 0;
		x = strtoull(v, &end, 10);
		if (errno || *end)
			return PERR(p, -EINVAL, "%s: \"%s\" is not a non-negative integer",
				    s->key, v);
		if (x < s->min || x > s->max)
			return PERR(p, -ERANGE, "%s: %llu is out of range %u..%u",
				    s->key, x, s->min, s->max);
		*(uint32_t *)(base + s->off) = (uint32_t)x;
		return 0;
	}
	case K_PATH: {
		char **dst = (char **)(base + s->off);

		if (v[0] != '/')
			return PERR(p, -EINVAL, "%s: \"%s\" is not an absolute path",
				    s->key, v);
		free(*dst);
		*dst = strdup(v);
		if (!*dst)
			return PERR(p, -ENOMEM, "out of memory");
		return 0;
	}
	case K_STR: {
		char **dst = (char **)(base + s->off);

		/* Checked by whoever uses it (the hint checks its URL at start). */
		free(*dst);
		*dst = strdup(v);
		if (!*dst)
			return PERR(p, -ENOMEM, "out of memory");
		return 0;
	}
	case K_ENUM:
		for (i = 0; s->names[i]; i++) {
			if (s->names[i][0] && strcmp(s->names[i], v) == 0) {
				if (s->names == bool_names)
					*(bool *)(base + s->off) = i;
				else
					*(int *)(base + s->off) = (int)i;
				return 0;
			}
		}
		{
			char list[128] = "";

			for (i = 0; s->names[i]; i++) {
				if (!s->names[i][0])
					continue;
				if (list[0])
					strncat(list, ", ", sizeof(list) - strlen(list) - 1);
				strncat(list, s->names[i], sizeof(list) - strlen(list) - 1);
			}
			return PERR(p, -EINVAL, "%s: \"%s\" is not one of %s",
				    s->key, v, list);
		}
	case K_NAME:
		if (!cmk_key_name_valid(v))
			return PERR(p, -EINVAL,
				    "%s: \"%s\" must match [A-Za-z0-9._:-]{1,64}",
				    s->key, v);
		snprintf(base + s->off, CMK_NAME_MAX + 1, "%s", v);
		return 0;
	case K_DMNAME:
		if (!dm_name_valid(v))
			return PERR(p, -EINVAL,
				    "%s: \"%s\" must match [A-Za-z0-9._:+-]{1,127}",
				    s->key, v);
		snprintf(base + s->off, CMK_DM_NAME_MAX + 1, "%s", v);
		return 0;
	case K_OPTIONS: {
		unsigned int *dst = (unsigned int *)(base + s->off);
		char tmp[CMK_CONFIG_MAX_LINE], *save = NULL, *tok;

		snprintf(tmp, sizeof(tmp), "%s", v);
		*dst = 0;
		for (tok = strtok_r(tmp, " \t", &save); tok;
		     tok = strtok_r(NULL, " \t", &save)) {
			for (i = 0; option_names[i]; i++)
				if (strcmp(tok, option_names[i]) == 0)
					break;
			if (!option_names[i])
				return PERR(p, -EINVAL,
					    "options: unknown option \"%s\" (known: iv_large_sectors allow_discards no_read_workqueue no_write_workqueue)",
					    tok);
			if (*dst & (1U << i))
				return PERR(p, -EINVAL, "options: \"%s\" given twice", tok);
			*dst |= 1U << i;
		}
		return 0;
	}
	case K_UUID:
		if (cmk_uuid_parse(v, (uint8_t *)(base + s->off)))
			return PERR(p, -EINVAL,
				    "%s: \"%s\" is not a UUID (8-4-4-4-12 hex digits, as cmkctl format prints it)",
				    s->key, v);
		return 0;
	}
	return PERR(p, -EINVAL, "internal error");
}

static bool seen(const struct parser *p, const char *key)
{
	for (int i = 0; p->table && p->table[i].key; i++)
		if (strcmp(p->table[i].key, key) == 0)
			return p->seen[i] != 0;
	return false;
}

static int seen_line(const struct parser *p, const char *key)
{
	for (int i = 0; p->table && p->table[i].key; i++)
		if (strcmp(p->table[i].key, key) == 0)
			return p->seen[i] ? p->seen[i] : p->sec_line;
	return p->line;
}

/* Check that the section just finished has its required keys. */
static int end_section(struct parser *p)
{
	if (!p->table)
		return 0;
	for (int i = 0; p->table[i].key; i++) {
		if (p->table[i].required && !p->seen[i])
			return cmk_errf(p->e, -EINVAL,
					"%s:%d: section is missing required key \"%s\"",
					p->name, p->sec_line, p->table[i].key);
	}
	if (p->sec == S_DEVICE) {
		struct cmk_config_device *d = p->obj;

		if (d->sector_size != 512 && d->sector_size != 4096)
			return cmk_errf(p->e, -EINVAL,
					"%s:%d: sector_size must be 512 or 4096",
					p->name, seen_line(p, "sector_size"));
		if (d->format != CMK_FORMAT_AUTO && d->mode != CMK_MODE_EPHEMERAL)
			return cmk_errf(p->e, -EINVAL,
					"%s:%d: format = always applies to ephemeral devices only (persistent devices are formatted with cmkctl format)",
					p->name, seen_line(p, "format"));
		d->has_uuid = seen(p, "uuid");
		if (d->has_uuid && d->mode != CMK_MODE_PERSISTENT)
			return cmk_errf(p->e, -EINVAL,
					"%s:%d: uuid applies to persistent devices only (an ephemeral device gets a new header every boot)",
					p->name, seen_line(p, "uuid"));
	}
	return 0;
}

static int parse_section(struct parser *p, char *s)
{
	struct cmk_config *c = p->c;
	char *end = s + strlen(s) - 1, *name = NULL;
	char kind[16];
	size_t klen;
	int ret;

	ret = end_section(p);
	if (ret)
		return ret;
	if (*end != ']')
		return PERR(p, -EINVAL, "section header must end with ']'");
	*end = '\0';
	s++;
	klen = strcspn(s, " \t");
	if (klen == 0 || klen >= sizeof(kind))
		return PERR(p, -EINVAL, "bad section header");
	memcpy(kind, s, klen);
	kind[klen] = '\0';
	s += klen;
	s += strspn(s, " \t");
	if (*s) {
		size_t nl;

		if (*s != '"' || s[strlen(s) - 1] != '"' || strlen(s) < 2)
			return PERR(p, -EINVAL,
				    "section name must be in double quotes: [%s \"name\"]",
				    kind);
		name = s + 1;
		nl = strlen(name);
		name[nl - 1] = '\0';
	}
	memset(p->seen, 0, sizeof(p->seen));
	p->sec_line = p->line;
	p->table = NULL;

	if (strcmp(kind, "agent") == 0) {
		if (name)
			return PERR(p, -EINVAL, "[agent] takes no name");
		if (p->agent_line)
			return PERR(p, -EINVAL, "duplicate [agent] section (first at line %d)",
				    p->agent_line);
		p->agent_line = p->line;
		p->sec = S_AGENT;
		p->obj = c;
		p->table = agent_settings;
		return 0;
	}
	if (strcmp(kind, "provider") == 0) {
		struct cmk_config_provider *pv;

		if (!name)
			return PERR(p, -EINVAL, "[provider] needs a name: [provider \"local\"]");
		if (!cmk_provider_find(name))
			return PERR(p, -EINVAL, "unknown provider \"%s\" (known: %s)",
				    name, cmk_provider_names());
		for (size_t i = 0; i < c->n_providers; i++)
			if (strcmp(c->providers[i].name, name) == 0)
				return PERR(p, -EINVAL,
					    "duplicate [provider \"%s\"] (first at line %d)",
					    name, c->providers[i].line);
		pv = realloc(c->providers, (c->n_providers + 1) * sizeof(*pv));
		if (!pv)
			return PERR(p, -ENOMEM, "out of memory");
		c->providers = pv;
		pv = &c->providers[c->n_providers++];
		memset(pv, 0, sizeof(*pv));
		snprintf(pv->name, sizeof(pv->name), "%s", name);
		pv->line = p->line;
		p->sec = S_PROVIDER;
		p->obj = pv;
		return 0;
	}
	if (strcmp(kind, "device") == 0) {
		struct cmk_config_device *d;

		if (!name)
			return PERR(p, -EINVAL, "[device] needs a name: [device \"pgtemp\"]");
		/* "." and ".." name files in state_dir and pin_dir: never. */
		if (!cmk_key_name_valid(name) || !strcmp(name, ".") || !strcmp(name, ".."))
			return PERR(p, -EINVAL,
				    "device name \"%s\" must match [A-Za-z0-9._:-]{1,64} and not be \".\" or \"..\"",
				    name);
		for (size_t i = 0; i < c->n_devices; i++)
			if (strcmp(c->devices[i].name, name) == 0)
				return PERR(p, -EINVAL,
					    "duplicate [device \"%s\"] (first at line %d)",
					    name, c->devices[i].line);
		d = realloc(c->devices, (c->n_devices + 1) * sizeof(*d));
		if (!d)
			return PERR(p, -ENOMEM, "out of memory");
		c->devices = d;
		d = &c->devices[c->n_devices++];
		memset(d, 0, sizeof(*d));
		snprintf(d->name, sizeof(d->name), "%s", name);
		snprintf(d->key_name, sizeof(d->key_name), "%s", name);
		snprintf(d->dm_name, sizeof(d->dm_name), "cmk-%s", name);
		d->sector_size = 4096;
		d->hold_ms = CMK_DEVICE_HOLD_MS;
		d->line = p->line;
		p->sec = S_DEVICE;
		p->obj = d;
		p->table = device_settings;
		return 0;
	}
	return PERR(p, -EINVAL, "unknown section [%s] (known: agent, provider, device)",
		    kind);
}

static int parse_setting(struct parser *p, char *s)
{
	char *eq = strchr(s, '='), *key = s, *val, *t;

	if (!eq)
		return PERR(p, -EINVAL, "expected \"key = value\"");
	*eq = '\0';
	val = eq + 1;
	for (t = eq; t > key && isspace((unsigned char)t[-1]); t--)
		t[-1] = '\0';
	val += strspn(val, " \t");
	if (!*key)
		return PERR(p, -EINVAL, "missing key before '='");
	for (t = key; *t; t++)
		if (!islower((unsigned char)*t) && !isdigit((unsigned char)*t) && *t != '_')
			return PERR(p, -EINVAL, "bad key \"%s\"", key);
	if (!*val)
		return PERR(p, -EINVAL, "%s: empty value", key);
	if (p->sec == S_NONE)
		return PERR(p, -EINVAL, "\"%s\" outside of any section", key);

	if (p->sec == S_PROVIDER) {
		struct cmk_config_provider *pv = p->obj;
		const struct cmk_provider_ops *ops = cmk_provider_find(pv->name);
		struct cmk_kv *kv;

		if (!cmk_provider_setting_ok(ops, key))
			return PERR(p, -EINVAL, "unknown key \"%s\" for provider \"%s\"",
				    key, pv->name);
		for (size_t i = 0; i < pv->n; i++)
			if (strcmp(pv->kv[i].key, key) == 0)
				return PERR(p, -EINVAL, "duplicate key \"%s\" (first at line %d)",
					    key, pv->kv[i].line);
		kv = realloc(pv->kv, (pv->n + 1) * sizeof(*kv));
		if (!kv)
			return PERR(p, -ENOMEM, "out of memory");
		pv->kv = kv;
		kv[pv->n].key = strdup(key);
		kv[pv->n].value = strdup(val);
		kv[pv->n].line = p->line;
		pv->n++;
		if (!kv[pv->n - 1].key || !kv[pv->n - 1].value)
			return PERR(p, -ENOMEM, "out of memory");
		return 0;
	}
	for (int i = 0; p->table[i].key; i++) {
		if (strcmp(p->table[i].key, key))
			continue;
		if (p->seen[i])
			return PERR(p, -EINVAL, "duplicate key \"%s\" (first at line %d)",
				    key, p->seen[i]);
		p->seen[i] = p->line;
		if (p->sec == S_AGENT && strcmp(key, "lease_ms") == 0)
			p->lease_line = p->line;
		if (p->sec == S_AGENT && strcmp(key, "check_interval_s") == 0)
			p->interval_s_line = p->line;
		if (p->sec == S_AGENT && strcmp(key, "check_interval_ms") == 0)
			p->interval_ms_line = p->line;
		if (p->sec == S_AGENT && strcmp(key, "check_timeout_ms") == 0)
			p->timeout_line = p->line;
		return set_value(p, &p->table[i], val);
	}
	return PERR(p, -EINVAL, "unknown key \"%s\" in [%s]", key,
		    p->sec == S_AGENT ? "agent" : "device");
}

/* @a and @b name the same directory (as written: trailing slashes aside). */
static bool same_dir(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	return la == lb && !memcmp(a, b, la);
}

/* Cross-section checks, reported at the line that introduced the problem. */
static int validate(struct parser *p)
{
	struct cmk_config *c = p->c;
	uint64_t worst, budget;

	if (!p->agent_line)
		return cmk_errf(p->e, -EINVAL, "%s: missing [agent] section", p->name);
	/* One interval, in one unit: two would leave the reader guessing. */
	if (p->interval_s_line && p->interval_ms_line)
		return cmk_errf(p->e, -EINVAL,
				"%s:%d: check_interval_ms and check_interval_s (line %d) both set; keep one",
				p->name, p->interval_ms_line, p->interval_s_line);
	if (!p->interval_ms_line)
		c->check_interval_ms = c->check_interval_s * 1000;
	else
		c->check_interval_s = (c->check_interval_ms + 999) / 1000;
	/*
	 * The timing rule (cmk-agent.rst): the longest time without an answer
	 * in normal operation - one interval with its jitter, then one check
	 * up to its deadline - fits in 3/4 of the lease; renewals every 1/4.
	 */
	worst = (uint64_t)c->check_interval_ms * (100 + c->jitter_pct) / 100;
	budget = (uint64_t)c->lease_ms * 3 / 4;
	if (!p->timeout_line) {
		if (budget < worst + CMK_CHECK_TIMEOUT_MIN_MS)
			return cmk_errf(p->e, -EINVAL,
					"%s:%d: lease_ms %u is too short for the check interval: the longest interval (%llu ms with jitter) plus a check (at least %d ms) must fit in 3/4 of the lease (%llu ms); raise lease_ms or shorten the interval",
					p->name, p->lease_line ? p->lease_line : p->agent_line,
					c->lease_ms, (unsigned long long)worst,
					CMK_CHECK_TIMEOUT_MIN_MS, (unsigned long long)budget);
		c->check_timeout_derived = true;
		c->check_timeout_ms = budget - worst < CMK_CHECK_TIMEOUT_DEFAULT_MAX_MS ?
				      (uint32_t)(budget - worst) :
				      CMK_CHECK_TIMEOUT_DEFAULT_MAX_MS;
	} else if (worst + c->check_timeout_ms > budget) {
		return cmk_errf(p->e, -EINVAL,
				"%s:%d: check_timeout_ms %u does not fit: the longest check interval (%llu ms with jitter) plus check_timeout_ms must fit in 3/4 of lease_ms %u (%llu ms); raise lease_ms or shorten the interval or the timeout",
				p->name, p->timeout_line, c->check_timeout_ms,
				(unsigned long long)worst, c->lease_ms,
				(unsigned long long)budget);
	}
	/*
	 * Pins must outlive a reboot (state_dir lives in /run), and their
	 * files, named after devices, must not meet opened/, revoked/, lock/.
	 */
	if (same_dir(c->pin_dir, c->state_dir))
		return cmk_errf(p->e, -EINVAL,
				"%s: pin_dir and state_dir are both %s: pins must outlive a reboot and state_dir is per boot; give pin_dir a persistent directory of its own (default %s)",
				p->name, c->pin_dir, CMK_PIN_DIR);
	for (size_t i = 0; i < c->n_devices; i++) {
		for (size_t j = 0; j < i; j++) {
			const struct cmk_config_device *a = &c->devices[j], *b = &c->devices[i];
			const char *what = NULL;

			if (!strcmp(a->key_name, b->key_name))
				what = "key_name";
			else if (!strcmp(a->dm_name, b->dm_name))
				what = "dm_name";
			else if (!strcmp(a->backing, b->backing))
				what = "backing";
			else if (a->has_uuid && b->has_uuid &&
				 !memcmp(a->uuid, b->uuid, CMK_UUID_LEN))
				what = "uuid";
			if (what)
				return cmk_errf(p->e, -EINVAL,
						"%s:%d: device \"%s\" has the same %s as device \"%s\" (line %d)",
						p->name, b->line, b->name, what,
						a->name, a->line);
		}
	}
	return 0;
}

static void set_defaults(struct cmk_config *c)
{
	memset(c, 0, sizeof(*c));
	c->check_interval_s = 30;
	c->jitter_pct = 10;
	c->lease_ms = 60000;
	c->grace_s = 300;
	c->throttle_grace_s = 900;
	c->hint_spread_ms = 2000;
	c->boot_deadline_s = 60;
	c->policy = CMK_POLICY_WIPE;
	c->syslog = true;
}

int cmk_config_parse(const char *text, size_t len, const char *name,
		     struct cmk_config *c, struct cmk_err *e)
{
	struct parser p = { .name = name, .c = c, .e = e };
	char line[CMK_CONFIG_MAX_LINE + 2];
	size_t pos = 0;
	int ret = 0;

	set_defaults(c);
	c->audit_log = strdup("/var/log/cmk/audit.log");
	c->state_dir = strdup(CMK_STATE_DIR);
	c->pin_dir = strdup(CMK_PIN_DIR);
	if (!c->audit_log || !c->state_dir || !c->pin_dir)
		return cmk_errf(e, -ENOMEM, "%s: out of memory", name);
	if (len > CMK_CONFIG_MAX_SIZE) {
		ret = cmk_errf(e, -EFBIG, "%s: larger than %d bytes", name,
			       CMK_CONFIG_MAX_SIZE);
		goto out;
	}
	while (pos < len) {
		size_t ll = 0;
		char *s, *t;

		p.line++;
		while (pos + ll < len && text[pos + ll] != '\n')
			ll++;
		if (ll > CMK_CONFIG_MAX_LINE) {
			ret = PERR(&p, -EINVAL, "line longer than %d bytes",
				   CMK_CONFIG_MAX_LINE);
			goto out;
		}
		memcpy(line, text + pos, ll);
		line[ll] = '\0';
		pos += ll + 1;
		if (strlen(line) != ll) {
			ret = PERR(&p, -EINVAL, "NUL byte in line");
			goto out;
		}
		for (t = line; *t; t++) {
			if ((unsigned char)*t < 0x20 && *t != '\t' && *t != '\r') {
				ret = PERR(&p, -EINVAL, "control character in line");
				goto out;
			}
		}
		s = line + strspn(line, " \t\r");
		for (t = s + strlen(s); t > s && isspace((unsigned char)t[-1]); t--)
			t[-1] = '\0';
		if (!*s || *s == '#' || *s == ';')
			continue;
		ret = *s == '[' ? parse_section(&p, s) : parse_setting(&p, s);
		if (ret)
			goto out;
	}
	ret = end_section(&p);
	if (ret)
		goto out;
	ret = validate(&p);
out:
	if (ret)
		cmk_config_free(c);
	return ret;
}

int cmk_config_load(const char *path, struct cmk_config *c, struct cmk_err *e)
{
	char *buf = NULL;
	size_t len;
	int ret;

	set_defaults(c);
	ret = cmk_read_trusted_file(path, CMK_CONFIG_MAX_SIZE, "configuration", &buf,
				    &len, e);
	if (ret)
		return ret;
	ret = cmk_config_parse(buf, len, path, c, e);
	free(buf);
	return ret;
}

void cmk_config_free(struct cmk_config *c)
{
	free(c->kek_envelope);
	free(c->audit_log);
	free(c->metrics_path);
	free(c->state_dir);
	free(c->pin_dir);
	free(c->hint_sqs_queue_url);
	free(c->hint_sqs_region);
	free(c->key_socket);
	free(c->key_socket_allow);
	free(c->key_socket_group);
	for (size_t i = 0; i < c->n_providers; i++) {
		for (size_t j = 0; j < c->providers[i].n; j++) {
			free((char *)c->providers[i].kv[j].key);
			free((char *)c->providers[i].kv[j].value);
		}
		free(c->providers[i].kv);
	}
	free(c->providers);
	for (size_t i = 0; i < c->n_devices; i++)
		free(c->devices[i].backing);
	free(c->devices);
	memset(c, 0, sizeof(*c));
}

size_t cmk_config_warnings(const struct cmk_config *c,
			   void (*warn)(void *ctx, const char *msg), void *ctx)
{
	char msg[CMK_ERR_MSG_MAX];
	size_t n = 0;

	if (c->check_timeout_derived &&
	    c->check_timeout_ms < CMK_CHECK_TIMEOUT_WARN_MS) {
		snprintf(msg, sizeof(msg),
			 "check_timeout_ms is not set, and what lease_ms %u leaves after the longest check interval is only %u ms: a KMS answer slower than that counts as a failure; set check_timeout_ms, raise lease_ms or shorten check_interval",
			 c->lease_ms, c->check_timeout_ms);
		warn(ctx, msg);
		n++;
	}
	for (size_t i = 0; i < c->n_devices; i++) {
		const struct cmk_config_device *d = &c->devices[i];

		if (!d->hold_ms || d->hold_ms > 2ULL * c->check_timeout_ms)
			continue;
		snprintf(msg, sizeof(msg),
			 "device \"%s\": hold_ms %u is not more than twice check_timeout_ms (%u ms): after a system sleep or a lost lease, a check under way that cannot be cancelled (PKCS#11) and the fresh check can take longer than the kernel holds I/O, and held I/O fails with EIO; raise hold_ms or lower check_timeout_ms",
			 d->name, d->hold_ms, c->check_timeout_ms);
		warn(ctx, msg);
		n++;
	}
	return n;
}

const struct cmk_config_provider *
cmk_config_provider(const struct cmk_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_providers; i++)
		if (strcmp(c->providers[i].name, name) == 0)
			return &c->providers[i];
	return NULL;
}

int cmk_device_table_options(const struct cmk_config_device *d, char *out,
			     size_t size)
{
	char opts[256] = "";
	int n = 0;

	if (d->sector_size != 512) {
		snprintf(opts, sizeof(opts), " sector_size:%u", d->sector_size);
		n++;
	}
	if (d->hold_ms != CMK_DEVICE_HOLD_MS) {
		snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts),
			 " hold_ms:%u", d->hold_ms);
		n++;
	}
	for (int i = 0; option_names[i]; i++) {
		if (d->options & (1U << i)) {
			strncat(opts, " ", sizeof(opts) - strlen(opts) - 1);
			strncat(opts, option_names[i], sizeof(opts) - strlen(opts) - 1);
			n++;
		}
	}
	if (n == 0) {
		if (size)
			out[0] = '\0';
		return 0;
	}
	if (snprintf(out, size, "%d%s", n, opts) >= (int)size)
		return -ENOSPC;
	return 0;
}

uint32_t cmk_device_header_flags(const struct cmk_config_device *d)
{
	return d->options & CMK_OPT_IV_LARGE_SECTORS ? CMK_HDR_F_IV_LARGE_SECTORS : 0;
}

int cmk_device_table_line(const struct cmk_config_device *d, const char *dev,
			  uint64_t dev_bytes, char *out, size_t size)
{
	uint64_t per = d->sector_size / 512, len;
	char opts[256];
	int n;

	if (dev_bytes < (uint64_t)CMK_HDR_AREA + d->sector_size)
		return -ENOSPC;
	len = (dev_bytes - CMK_HDR_AREA) / 512 / per * per;
	if (cmk_device_table_options(d, opts, sizeof(opts)))
		return -ENOSPC;
	n = snprintf(out, size, "0 %llu cmk %s %s 0 %s %d%s%s",
		     (unsigned long long)len, CMK_HDR_CIPHER, d->key_name,
		     dev ? dev : d->backing, CMK_HDR_DATA_OFFSET, opts[0] ? " " : "", opts);
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	return 0;
}
