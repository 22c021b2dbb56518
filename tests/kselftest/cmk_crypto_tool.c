// SPDX-License-Identifier: GPL-2.0
/*
 * cmk-crypto - the crypto_user client of cmk_crypto.c as a command, for
 * trying by hand in a guest what the pressure tests do:
 *
 *   cmk-crypto best NAME             which driver crypto_alloc_*(NAME) gets
 *   cmk-crypto get DRIVER            priority, refcnt, flags of DRIVER
 *   cmk-crypto add DRIVER PRIORITY   instantiate a template instance as
 *                                    an skcipher
 *   cmk-crypto prio DRIVER PRIORITY  change a priority
 *   cmk-crypto del DRIVER            unregister an unused instance
 *   cmk-crypto prefer DRIVER NAME    make DRIVER the best NAME
 *
 * e.g. cmk-crypto prefer 'cryptd(xts(ecb(aes-generic)))' 'xts(aes)'.
 * Exit status 0 on success, 1 with the kernel's error otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmk_crypto.h"

static void show(const struct cmk_crypto_alg *a)
{
	printf("%s driver=%s module=%s priority=%u refcnt=%u flags=0x%x%s\n",
	       a->name, a->driver, a->module, a->priority, a->refcnt,
	       a->flags, a->flags & CMK_CRYPTO_ALG_ASYNC ? " async" : "");
}

int main(int argc, char **argv)
{
	struct cmk_crypto_alg a;
	const char *cmd = argc > 1 ? argv[1] : "";
	int ret;

	if (argc == 3 && !strcmp(cmd, "best")) {
		ret = cmk_crypto_best(argv[2], &a);
		if (!ret)
			show(&a);
	} else if (argc == 3 && !strcmp(cmd, "get")) {
		ret = cmk_crypto_get(argv[2], &a);
		if (!ret)
			show(&a);
	} else if (argc == 4 && !strcmp(cmd, "add")) {
		ret = cmk_crypto_add(argv[2], CMK_CRYPTO_ALG_TYPE_SKCIPHER,
				     (uint32_t)strtoul(argv[3], NULL, 0));
	} else if (argc == 4 && !strcmp(cmd, "prio")) {
		ret = cmk_crypto_set_priority(argv[2],
					      (uint32_t)strtoul(argv[3], NULL, 0));
	} else if (argc == 3 && !strcmp(cmd, "del")) {
		ret = cmk_crypto_del(argv[2]);
	} else if (argc == 4 && !strcmp(cmd, "prefer")) {
		ret = cmk_crypto_prefer(argv[2], argv[3], &a);
		if (!ret) {
			printf("was: ");
			show(&a);
			if (!cmk_crypto_best(argv[3], &a)) {
				printf("now: ");
				show(&a);
			}
		}
	} else {
		fprintf(stderr, "usage: cmk-crypto best NAME | get DRIVER | add DRIVER PRIORITY |\n"
			"                  prio DRIVER PRIORITY | del DRIVER | prefer DRIVER NAME\n");
		return 2;
	}
	if (ret) {
		fprintf(stderr, "cmk-crypto %s %s: %s%s\n", cmd, argv[2],
			strerror(-ret),
			ret == -EPROTONOSUPPORT ? " (modprobe crypto_user)" : "");
		return 1;
	}
	return 0;
}
