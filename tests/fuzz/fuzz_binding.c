// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_binding.c - what the machine remembers, read back: pin files
 * (<pin_dir>/<name>) and records of what was opened in this boot
 * (<state_dir>/opened/<name>), JSON files the agent trusts to decide
 * which header a device may use.
 *
 * The input is written to both files in a private directory next to the
 * binary (tmpfs would not pass the trusted-path walk) and read through
 * cmk_pin_read() and cmk_opened_read() as the agent does, in the boot
 * 4f6c2b1e-0b8e-4a43-9c5e-3b0e1d7a9f21.  Oracles: ASan/UBSan; an accepted
 * record is valid only with a sequence of 1..2^63-1, a rejected one leaves
 * nothing valid behind.
 */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device/binding.h"
#include "fuzz.h"

static char dir[PATH_MAX - 64], pin_dir[PATH_MAX], state_dir[PATH_MAX];
static char pin_path[PATH_MAX + 16], opened_path[PATH_MAX + 16];

static void cleanup(void)
{
	char opened[PATH_MAX + 8];

	snprintf(opened, sizeof(opened), "%s/opened", state_dir);
	unlink(pin_path);
	unlink(opened_path);
	rmdir(opened);
	rmdir(state_dir);
	rmdir(pin_dir);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char exe[PATH_MAX];

	(void)argc;
	if (!realpath((*argv)[0], exe))
		abort();
	snprintf(dir, sizeof(dir), "%s/binding.%d", dirname(exe), (int)getpid());
	snprintf(pin_dir, sizeof(pin_dir), "%s/pins", dir);
	snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
	snprintf(pin_path, sizeof(pin_path), "%s/fuzz", pin_dir);
	snprintf(opened_path, sizeof(opened_path), "%s/opened/fuzz", state_dir);
	if (mkdir(dir, 0700) || mkdir(pin_dir, 0700) || mkdir(state_dir, 0700))
		abort();
	snprintf(exe, sizeof(exe), "%s/opened", state_dir);
	if (mkdir(exe, 0700))
		abort();
	atexit(cleanup);
	return 0;
}

static void put(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t boot[CMK_UUID_LEN] = {
		0x4f, 0x6c, 0x2b, 0x1e, 0x0b, 0x8e, 0x4a, 0x43,
		0x9c, 0x5e, 0x3b, 0x0e, 0x1d, 0x7a, 0x9f, 0x21,
	};
	struct cmk_config cfg;
	struct cmk_config_device d;
	struct cmk_opened o;
	uint8_t uuid[CMK_UUID_LEN];
	char from[256];
	bool have;
	struct cmk_err e;

	memset(&cfg, 0, sizeof(cfg));
	memset(&d, 0, sizeof(d));
	cfg.pin_dir = pin_dir;
	cfg.state_dir = state_dir;
	snprintf(d.name, sizeof(d.name), "fuzz");
	put(pin_path, data, size);
	put(opened_path, data, size);
	if (cmk_pin_read(&cfg, &d, &have, uuid, from, sizeof(from), &e) && have)
		abort();
	if (cmk_opened_read(&cfg, &d, boot, &o, &e)) {
		if (o.valid)
			abort();
	} else if (o.valid && (o.sequence == 0 || o.sequence > CMK_HDR_SEQ_MAX)) {
		abort();
	}
	return 0;
}
