// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_config.c - the agent.conf parser, and what is derived from a
 * parsed configuration (warnings, dm table lines, header flags).
 *
 * The settings of an aws, azure or gcp section are given to the provider
 * as the agent would (cmk_provider_open()), minus those naming local files
 * (a fuzzer must not read /dev/stdin); other providers load modules or
 * connect at open and stay out.
 *
 * Oracles: ASan/UBSan; every device of an accepted configuration gets a
 * table line that fits its buffer and names its backing device; a
 * provider that refuses its settings says why.
 */
#include <stdlib.h>
#include <string.h>

#include "format/config.h"
#include "fuzz.h"

static bool names_file(const char *k)
{
	static const char *const keys[] = {
		"ca_bundle", "client_secret_file", "service_account_key", "profile",
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(k, keys[i]))
			return true;
	return false;
}

static void open_provider(const struct cmk_config_provider *cp)
{
	struct cmk_kv kv[64];
	struct cmk_provider *p = NULL;
	struct cmk_err e;
	size_t n = 0;

	if (strcmp(cp->name, "aws") && strcmp(cp->name, "azure") &&
	    strcmp(cp->name, "gcp"))
		return;
	for (size_t i = 0; i < cp->n && n < sizeof(kv) / sizeof(kv[0]); i++)
		if (!names_file(cp->kv[i].key))
			kv[n++] = cp->kv[i];
	memset(&e, 0, sizeof(e));
	if (cmk_provider_open(cp->name, kv, n, &p, &e) == 0)
		cmk_provider_close(&p);
	else if (!e.msg[0])
		abort();
}

static void warn(void *ctx, const char *msg)
{
	*(size_t *)ctx += strlen(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmk_config c;
	struct cmk_err e;
	size_t sum = 0;
	char line[1024];

	if (size > CMK_CONFIG_MAX_SIZE)
		return 0;
	memset(&c, 0, sizeof(c));
	if (cmk_config_parse((const char *)data, size, "fuzz.conf", &c, &e)) {
		cmk_config_free(&c);
		return 0;
	}
	cmk_config_warnings(&c, warn, &sum);
	for (size_t i = 0; i < c.n_providers; i++) {
		if (cmk_config_provider(&c, c.providers[i].name) == NULL)
			abort();
		open_provider(&c.providers[i]);
	}
	for (size_t i = 0; i < c.n_devices; i++) {
		const struct cmk_config_device *d = &c.devices[i];

		cmk_device_header_flags(d);
		if (cmk_device_table_options(d, line, sizeof(line)) < 0)
			continue;
		if (cmk_device_table_line(d, "/dev/fuzz", 1ULL << 30, line,
					  sizeof(line)) == 0 &&
		    (strlen(line) >= sizeof(line) || !strstr(line, "/dev/fuzz")))
			abort();
	}
	cmk_config_free(&c);
	return 0;
}
