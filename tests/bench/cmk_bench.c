// SPDX-License-Identifier: GPL-2.0
/*
 * cmk_bench - small helpers for the dm-cmk benchmark guest.
 *
 *   cmk_bench setkey NAME KEYFILE [LEASE_MS]
 *       install the 64-byte key read from KEYFILE for key_name NAME
 *       (generic netlink KEY_SET; default lease 600000 ms).
 *
 * Never prints key bytes.  Exit status 0 on success, 1 on error with a
 * message on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmk_lib.h"

static int do_setkey(const char *name, const char *keyfile, uint32_t lease)
{
	uint8_t key[DM_CMK_KEY_LEN];
	struct cmk_nl nl;
	char ext[256] = "";
	int fd, ret;

	fd = open(keyfile, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "cmk_bench: open %s: %s\n", keyfile,
			strerror(errno));
		return 1;
	}
	ret = read(fd, key, sizeof(key));
	close(fd);
	if (ret != (int)sizeof(key)) {
		fprintf(stderr, "cmk_bench: %s: need %d key bytes\n", keyfile,
			DM_CMK_KEY_LEN);
		return 1;
	}
	ret = cmk_nl_open(&nl);
	if (ret) {
		fprintf(stderr, "cmk_bench: dm-cmk netlink family: %s\n",
			strerror(-ret));
		goto out;
	}
	ret = cmk_key_set(&nl, name, key, lease, 1, ext, sizeof(ext));
	cmk_nl_close(&nl);
	if (ret)
		fprintf(stderr, "cmk_bench: KEY_SET %s: %s %s\n", name,
			strerror(-ret), ext);
out:
	memset(key, 0, sizeof(key));
	__asm__ __volatile__("" : : "r"(key) : "memory");
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "setkey"))
		return do_setkey(argv[2], argv[3],
				 argc > 4 ? strtoul(argv[4], NULL, 0) : 600000);
	fprintf(stderr,
		"usage: cmk_bench setkey NAME KEYFILE [LEASE_MS]\n");
	return 2;
}
