// SPDX-License-Identifier: GPL-2.0
/*
 * cmkctl.c - operator CLI for dm-cmk (first verbs; thin over libcmk).
 *
 *   cmkctl kek create --provider local --key-ref FILE --out kek.json
 *                     [--context key=value]... [--force]
 *   cmkctl kek info FILE
 *   cmkctl kek check FILE
 *   cmkctl header dump DEVICE
 *   cmkctl format --kek FILE --mode ephemeral|persistent
 *                 [--sector-size 512|4096] [--force] DEVICE
 *   cmkctl local-key create|enable|disable|destroy|status FILE
 *
 * Exit status: 0 success; 1 usage or local error; 2 the KMS refused
 * (definitive: disabled, destroyed, denied, not found); 3 the KMS could not
 * be reached (transient); 4 no valid header / not formatted.
 * Never prints key material, wrapped or not.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "envelope.h"
#include "header.h"
#include "keys.h"
#include "provider.h"
#include "provider_local.h"
#include "secret.h"

enum {
	EXIT_LOCAL = 1,
	EXIT_DEFINITIVE = 2,
	EXIT_TRANSIENT = 3,
	EXIT_NO_HEADER = 4,
};

static int fail(const struct cmk_err *e)
{
	fprintf(stderr, "cmkctl: %s\n", e->msg);
	switch (e->cls) {
	case CMK_EC_DEFINITIVE:
		return EXIT_DEFINITIVE;
	case CMK_EC_TRANSIENT:
		return EXIT_TRANSIENT;
	default:
		return EXIT_LOCAL;
	}
}

static int usage(void)
{
	fputs("usage:\n"
	      "  cmkctl kek create --provider NAME --key-ref REF --out FILE [--context k=v]... [--force]\n"
	      "  cmkctl kek info FILE\n"
	      "  cmkctl kek check FILE\n"
	      "  cmkctl header dump DEVICE\n"
	      "  cmkctl format --kek FILE --mode ephemeral|persistent [--sector-size 512|4096] [--force] DEVICE\n"
	      "  cmkctl local-key create|enable|disable|destroy|status FILE\n"
	      "exit: 0 ok, 1 error, 2 KMS refused, 3 KMS unreachable, 4 no valid header\n",
	      stderr);
	return EXIT_LOCAL;
}

static void print_uuid(const char *label, const uint8_t u[CMK_UUID_LEN])
{
	char s[CMK_UUID_STR];

	cmk_uuid_format(u, s);
	printf("%-14s %s\n", label, s);
}

static void print_time(const char *label, time_t t)
{
	char s[CMK_TIME_STR];

	if (cmk_time_format(t, s))
		snprintf(s, sizeof(s), "(invalid)");
	printf("%-14s %s\n", label, s);
}

/* ---- kek ------------------------------------------------------------------ */

static int kek_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "provider", required_argument, NULL, 'p' },
		{ "key-ref", required_argument, NULL, 'k' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "out", required_argument, NULL, 'o' },
		{ "context", required_argument, NULL, 'c' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *provider = "local", *key_ref = NULL, *out = NULL;
	struct cmk_provider *p = NULL;
	struct cmk_envelope env;
	struct cmk_encctx ctx;
	struct cmk_kms_call call;
	struct cmk_err e;
	bool force = false;
	int c, ret = EXIT_LOCAL;
	char id[CMK_UUID_STR];

	cmk_encctx_init(&ctx);
	cmk_envelope_init(&env);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			provider = optarg;
			break;
		case 'k':
			key_ref = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'f':
			force = true;
			break;
		case 'c': {
			char *eq = strchr(optarg, '=');

			if (!eq) {
				fprintf(stderr, "cmkctl: --context wants key=value\n");
				goto out;
			}
			*eq = '\0';
			if (cmk_encctx_add(&ctx, optarg, eq + 1, &e)) {
				ret = fail(&e);
				goto out;
			}
			break;
		}
		default:
			ret = usage();
			goto out;
		}
	}
	if (!key_ref || !out || optind != argc) {
		ret = usage();
		goto out;
	}
	if (!force && access(out, F_OK) == 0) {
		fprintf(stderr, "cmkctl: %s exists; a new KEK would orphan every device under the old one (use --force)\n",
			out);
		goto out;
	}
	if (cmk_provider_open(provider, NULL, 0, &p, &e) ||
	    cmk_envelope_create(p, key_ref, &ctx, &env, NULL, &call, &e) ||
	    cmk_envelope_write(out, &env, &e)) {
		ret = fail(&e);
		goto out;
	}
	cmk_uuid_format(env.kek_id, id);
	printf("created %s: KEK %s version %u, wrapped by %s under %s\n", out,
	       id, env.cur.kek_version, provider, key_ref);
	ret = 0;
out:
	cmk_provider_close(&p);
	cmk_envelope_free(&env);
	cmk_encctx_free(&ctx);
	return ret;
}

static void print_wrap(const char *prefix, const struct cmk_kek_wrap *w)
{
	char label[32];

	printf("%s%-*s %u\n", prefix, 14 - (int)strlen(prefix), "kek_version",
	       w->kek_version);
	printf("%s%-*s %s\n", prefix, 14 - (int)strlen(prefix), "provider",
	       w->provider);
	printf("%s%-*s %s\n", prefix, 14 - (int)strlen(prefix), "key_ref",
	       w->key_ref);
	for (size_t i = 0; i < w->ctx.n; i++)
		printf("%s%-*s %s=%s\n", prefix, 14 - (int)strlen(prefix),
		       "context", w->ctx.pairs[i].key, w->ctx.pairs[i].value);
	printf("%s%-*s %zu bytes (not shown)\n", prefix, 14 - (int)strlen(prefix),
	       "wrapped_kek", w->wrapped_len);
	snprintf(label, sizeof(label), "%screated", prefix);
	print_time(label, w->created);
}

static int kek_info(int argc, char **argv)
{
	struct cmk_envelope env;
	struct cmk_err e;

	if (argc != 2)
		return usage();
	if (cmk_envelope_read(argv[1], &env, &e))
		return fail(&e);
	printf("%-14s %u\n", "format", env.version);
	print_uuid("kek_id", env.kek_id);
	print_wrap("", &env.cur);
	if (env.has_prev) {
		printf("previous (rotation in progress):\n");
		print_wrap("  ", &env.prev);
	}
	cmk_envelope_free(&env);
	return 0;
}

static int kek_check(int argc, char **argv)
{
	struct cmk_provider *p = NULL;
	struct cmk_envelope env;
	struct cmk_kms_call call;
	struct cmk_err e;
	int ret;

	if (argc != 2)
		return usage();
	if (cmk_envelope_read(argv[1], &env, &e))
		return fail(&e);
	if (cmk_provider_open(env.cur.provider, NULL, 0, &p, &e) ||
	    cmk_envelope_check(p, &env, &call, &e)) {
		ret = fail(&e);
	} else {
		printf("ok: KEK version %u unwraps under %s (%ld ms, request %s)\n",
		       env.cur.kek_version, env.cur.key_ref, call.latency_ms,
		       call.request_id);
		ret = 0;
	}
	cmk_provider_close(&p);
	cmk_envelope_free(&env);
	return ret;
}

/* ---- header ----------------------------------------------------------------- */

static int header_dump(int argc, char **argv)
{
	struct cmk_header h;
	struct cmk_header_status st;
	struct cmk_err e;
	int fd, ret;

	if (argc != 3 || strcmp(argv[1], "dump"))
		return usage();
	fd = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "cmkctl: %s: %s\n", argv[2], strerror(errno));
		return EXIT_LOCAL;
	}
	ret = cmk_header_read(fd, &h, &st, &e);
	close(fd);
	for (int i = 0; i < 2; i++) {
		if (st.valid[i])
			printf("copy %c         valid, sequence %llu%s\n", 'A' + i,
			       (unsigned long long)st.sequence[i],
			       st.chosen == i ? " (in use)" : "");
		else
			printf("copy %c         invalid: %s\n", 'A' + i, st.why[i]);
	}
	if (ret) {
		fprintf(stderr, "cmkctl: %s: %s\n", argv[2], e.msg);
		return ret == -ENOSPC || ret == -EIO ? EXIT_LOCAL : EXIT_NO_HEADER;
	}
	if (st.copies_differ)
		printf("warning        copies have the same sequence but differ\n");
	printf("%-14s %u\n", "version", h.version);
	print_uuid("device_uuid", h.device_uuid);
	printf("%-14s %llu\n", "sequence", (unsigned long long)h.sequence);
	printf("%-14s %s\n", "mode", cmk_mode_name(h.mode));
	printf("%-14s %s\n", "cipher", h.cipher);
	printf("%-14s %u\n", "sector_size", h.sector_size);
	printf("%-14s %llu\n", "data_offset", (unsigned long long)h.data_offset);
	print_uuid("kek_id", h.kek_id);
	printf("%-14s %u\n", "kek_version", h.kek_version);
	print_uuid("boot_id", h.boot_id);
	print_time("write_time", (time_t)h.write_time);
	printf("%-14s AES-256-GCM, %u bytes (not shown)\n", "wrapped_dek", h.dek_len);
	return 0;
}

static int do_format(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kek", required_argument, NULL, 'k' },
		{ "mode", required_argument, NULL, 'm' },
		{ "sector-size", required_argument, NULL, 's' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	CMK_SECRET_AUTO struct cmk_secret *kek = NULL;
	CMK_SECRET_AUTO struct cmk_secret *dek = NULL;
	const char *kek_path = NULL, *dev;
	struct cmk_provider *p = NULL;
	struct cmk_envelope env;
	struct cmk_header h;
	struct cmk_err e;
	enum cmk_mode mode = 0;
	unsigned long sector = 4096;
	bool force = false;
	int c, fd = -1, ret = EXIT_LOCAL;

	cmk_envelope_init(&env);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			kek_path = optarg;
			break;
		case 'm':
			mode = !strcmp(optarg, "ephemeral") ? CMK_MODE_EPHEMERAL :
			       !strcmp(optarg, "persistent") ? CMK_MODE_PERSISTENT : 0;
			break;
		case 's':
			sector = strtoul(optarg, NULL, 10);
			break;
		case 'f':
			force = true;
			break;
		default:
			return usage();
		}
	}
	if (!kek_path || !mode || optind != argc - 1)
		return usage();
	dev = argv[optind];
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "cmkctl: %s: %s\n", dev, strerror(errno));
		return EXIT_LOCAL;
	}
	if (!force && cmk_header_read(fd, &h, NULL, &e) != -ENODATA) {
		fprintf(stderr, "cmkctl: %s already has a dm-cmk header (or a damaged one); formatting destroys its data (use --force)\n",
			dev);
		goto out;
	}
	if (cmk_envelope_read(kek_path, &env, &e) ||
	    cmk_provider_open(env.cur.provider, NULL, 0, &p, &e) ||
	    cmk_envelope_unwrap(p, &env, false, &kek, NULL, &e) ||
	    cmk_header_init(&h, mode, (uint32_t)sector, env.kek_id,
			    env.cur.kek_version, &e) ||
	    cmk_dek_generate(&dek, &e) ||
	    cmk_header_zero_area(fd, &e) ||
	    cmk_header_write(fd, &h, kek, dek, &e)) {
		ret = fail(&e);
		goto out;
	}
	printf("formatted %s: %s, sector size %u, data at sector %d\n", dev,
	       cmk_mode_name(h.mode), h.sector_size, CMK_HDR_DATA_OFFSET);
	ret = 0;
out:
	close(fd);
	cmk_provider_close(&p);
	cmk_envelope_free(&env);
	return ret;
}

/* ---- local-key ----------------------------------------------------------------- */

static int local_key(int argc, char **argv)
{
	static const struct { const char *verb; int state; } verbs[] = {
		{ "enable", CMK_LOCAL_ENABLED },
		{ "disable", CMK_LOCAL_DISABLED },
		{ "destroy", CMK_LOCAL_DESTROYED },
	};
	enum cmk_local_state st;
	struct cmk_err e;

	if (argc != 3)
		return usage();
	if (!strcmp(argv[1], "create")) {
		if (cmk_local_key_create(argv[2], &e))
			return fail(&e);
		printf("created %s (demo/test key file, NOT for production)\n", argv[2]);
		return 0;
	}
	if (!strcmp(argv[1], "status")) {
		if (cmk_local_key_get_state(argv[2], &st, &e))
			return fail(&e);
		printf("%s\n", cmk_local_state_name(st));
		return 0;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(argv[1], verbs[i].verb))
			continue;
		if (cmk_local_key_set_state(argv[2], verbs[i].state, &e))
			return fail(&e);
		printf("%s: %s\n", argv[2], cmk_local_state_name(verbs[i].state));
		return 0;
	}
	return usage();
}

int main(int argc, char **argv)
{
	struct cmk_err e;

	if (cmk_harden_process(&e)) {
		fprintf(stderr, "cmkctl: %s\n", e.msg);
		return EXIT_LOCAL;
	}
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "kek") && argc >= 3) {
		if (!strcmp(argv[2], "create"))
			return kek_create(argc - 2, argv + 2);
		if (!strcmp(argv[2], "info"))
			return kek_info(argc - 2, argv + 2);
		if (!strcmp(argv[2], "check"))
			return kek_check(argc - 2, argv + 2);
		return usage();
	}
	if (!strcmp(argv[1], "header"))
		return header_dump(argc - 1, argv + 1);
	if (!strcmp(argv[1], "format"))
		return do_format(argc - 1, argv + 1);
	if (!strcmp(argv[1], "local-key"))
		return local_key(argc - 1, argv + 1);
	return usage();
}
