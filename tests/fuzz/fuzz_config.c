// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_config.c - the agent.conf parser, and what is derived from a
 * parsed configuration (warnings, dm table lines, header flags).
 *
 * Oracles: ASan/UBSan; every device of an accepted configuration gets a
 * table line that fits its buffer and names its backing device.
 */
#include <stdlib.h>
#include <string.h>

#include "format/config.h"
#include "fuzz.h"

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
	for (size_t i = 0; i < c.n_providers; i++)
		if (cmk_config_provider(&c, c.providers[i].name) == NULL)
			abort();
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
