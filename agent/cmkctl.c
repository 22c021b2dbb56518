// SPDX-License-Identifier: GPL-2.0
/*
 * cmkctl.c - operator CLI for dm-cmk (first verbs; thin over libcmk).
 *
 *   cmkctl kek create --provider local --key-ref FILE --out kek.json
 *   cmkctl kek create --provider aws --key-id ARN --out kek.json
 *   cmkctl kek create --provider gcp --key-ref projects/P/locations/L/keyRings/R/cryptoKeys/K
 *                     --out kek.json
 *   cmkctl kek create --provider pkcs11 --key-ref 'pkcs11:token=T;object=L?module-path=/m.so' --out kek.json
 *   cmkctl kek create --provider azure --key-ref https://VAULT.vault.azure.net/keys/NAME --out kek.json
 *   cmkctl kek create --provider kmip --key-ref NAME --set server=HOST[:PORT]
 *                     --set client_cert=PEM --set client_key=PEM --set ca_bundle=PEM --out kek.json
 *                     [--set region=...] [--set endpoint=...]
 *                     [--context key=value]... [--force]
 *   cmkctl kek info FILE
 *   cmkctl kek check FILE
 *   cmkctl header dump DEVICE
 *   cmkctl [--config FILE] header set-flags --iv-large-sectors|--no-iv-large-sectors NAME
 *   cmkctl format --kek FILE --mode ephemeral|persistent
 *                 [--sector-size 512|4096] [--iv-large-sectors] [--force] DEVICE
 *   cmkctl local-key create|enable|disable|destroy|status FILE
 *   cmkctl [--config FILE] open DEVICE | close [--force] DEVICE | status [--json]
 *   cmkctl [--config FILE] revoke [--device NAME]
 *   cmkctl [--config FILE] pin DEVICE [--uuid UUID]
 *   cmkctl [--config FILE] kek rewrap [--key-ref REF] | kek rotate
 *   cmkctl [--config FILE] seal|unseal --kek FILE [--context k=v]... [IN [OUT]]
 *   cmkctl [--config FILE] seal|unseal --agent | --socket PATH [--context k=v]... [IN [OUT]]
 *         (seal's OUT and unseal's IN may be s3://bucket/key)
 *
 * Exit status: 0 success; 1 usage or local error; 2 the KMS refused
 * (definitive: disabled, destroyed, denied, not found); 3 the KMS could not
 * be reached (transient); 4 no valid header / not formatted; 5 the kernel
 * or device-mapper refused (module not loaded, no such device, netlink
 * error); 6 the device's header was refused (another device's, an earlier
 * boot's, not what was opened, or not what the configuration says).
 * Documentation/cmkctl.rst is the manual.
 * Never prints key material, wrapped or not.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "format/audit.h"
#include "device/binding.h"
#include "format/config.h"
#include "device/device.h"
#include "device/dm.h"
#include "format/envelope.h"
#include "format/esdk.h"
#include "daemon/keyclient.h"
#include "format/esdk_s3.h"
#include "core/fileio.h"
#include "device/genl.h"
#include "format/header.h"
#include "kms/aws/s3.h"
#include "kms/http.h"
#include "volume/volume.h"
#include "core/keys.h"
#include "core/random.h"
#include "kms/provider.h"
#include "kms/local/provider_local.h"
#include "core/secret.h"

enum {
	EXIT_LOCAL = 1,
	EXIT_DEFINITIVE = 2,
	EXIT_TRANSIENT = 3,
	EXIT_NO_HEADER = 4,
	EXIT_KERNEL = 5,
	EXIT_REFUSED = 6,
	EXIT_BUSY = 7,
};

static const char *config_path = CMK_CONFIG_PATH;

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
	      "                    [--set SETTING=VALUE]...   (provider settings, as in agent.conf)\n"
	      "  cmkctl kek info FILE\n"
	      "  cmkctl kek check FILE\n"
	      "  cmkctl header dump DEVICE\n"
	      "  cmkctl [--config FILE] header set-flags --iv-large-sectors|--no-iv-large-sectors NAME\n"
	      "  cmkctl format --kek FILE --mode ephemeral|persistent [--sector-size 512|4096]\n"
	      "                [--iv-large-sectors] [--force] DEVICE\n"
	      "  cmkctl local-key create|enable|disable|destroy|status FILE\n"
	      "  cmkctl [--config FILE] seal --kek FILE|--agent|--socket PATH [--context k=v]...\n"
	      "                [--suite 0x0478|0x0578] [--frame-length N] [--force]\n"
	      "                [IN|- [OUT|-|s3://BUCKET/KEY]]\n"
	      "  cmkctl [--config FILE] unseal --kek FILE|--agent|--socket PATH [--context k=v]...\n"
	      "                [--suite 0x0478|0x0578] [--force] [IN|-|s3://BUCKET/KEY [OUT|-]]\n"
	      "  cmkctl [--config FILE] open DEVICE\n"
	      "  cmkctl [--config FILE] close [--force] DEVICE\n"
	      "  cmkctl [--config FILE] status [--json]\n"
	      "  cmkctl [--config FILE] check-now [--wait SECONDS | --no-wait]\n"
	      "  cmkctl [--config FILE] revoke [--device NAME]\n"
	      "  cmkctl [--config FILE] pin DEVICE [--uuid UUID]\n"
	      "  cmkctl [--config FILE] kek rewrap [--key-ref REF]\n"
	      "  cmkctl [--config FILE] kek rotate\n"
	      "exit: 0 ok, 1 error, 2 KMS refused, 3 KMS unreachable, 4 no valid header,\n"
	      "      5 kernel or device-mapper refused, 6 header or sealed object refused\n",
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
		{ "key-id", required_argument, NULL, 'k' },
		{ "set", required_argument, NULL, 's' },
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
	struct cmk_kv kv[16];
	size_t nkv = 0;
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
		case 's': {
			char *eq = strchr(optarg, '=');

			if (!eq || nkv == sizeof(kv) / sizeof(kv[0])) {
				fprintf(stderr, "cmkctl: --set wants setting=value (at most 16)\n");
				goto out;
			}
			*eq = '\0';
			kv[nkv++] = (struct cmk_kv){ optarg, eq + 1, 0 };
			break;
		}
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
	if (cmk_provider_open(provider, kv, nkv, &p, &e) ||
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
	for (unsigned int i = 0; i < env.n_retired; i++) {
		printf("retired (unwrap only, for sealed objects):\n");
		print_wrap("  ", &env.retired[i]);
	}
	cmk_envelope_free(&env);
	return 0;
}

/*
 * Open provider @name with the settings of its [provider "NAME"] section
 * when a config file exists (--config, or the default path); without one,
 * with none (the provider then uses its environment).  @cfg must outlive
 * the provider: free it with cmk_config_free() if *@loaded.
 */
static int ctl_provider_open(const char *name, struct cmk_config *cfg,
			     bool *loaded, struct cmk_provider **p,
			     struct cmk_err *e)
{
	const struct cmk_config_provider *pc = NULL;
	int ret;

	*loaded = false;
	if (access(config_path, F_OK) == 0) {
		ret = cmk_config_load(config_path, cfg, e);
		if (ret)
			return ret;
		*loaded = true;
		pc = cmk_config_provider(cfg, name);
	}
	return cmk_provider_open(name, pc ? pc->kv : NULL, pc ? pc->n : 0, p, e);
}

static int kek_check(int argc, char **argv)
{
	struct cmk_provider *p = NULL;
	struct cmk_envelope env;
	struct cmk_kms_call call;
	struct cmk_config cfg;
	bool cfg_loaded;
	struct cmk_err e;
	int ret;

	if (argc != 2)
		return usage();
	if (cmk_envelope_read(argv[1], &env, &e))
		return fail(&e);
	if (ctl_provider_open(env.cur.provider, &cfg, &cfg_loaded, &p, &e) ||
	    cmk_envelope_check(p, &env, &call, &e)) {
		ret = fail(&e);
	} else {
		/* Not every KMS names its requests (Cloud KMS does not). */
		printf("ok: KEK version %u unwraps under %s (%ld ms%s%s)\n",
		       env.cur.kek_version, env.cur.key_ref, call.latency_ms,
		       call.request_id[0] ? ", request " : "", call.request_id);
		ret = 0;
	}
	cmk_provider_close(&p);
	if (cfg_loaded)
		cmk_config_free(&cfg);
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

	if (argc != 3)
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
	printf("%-14s 0x%x%s\n", "flags", h.flags,
	       h.flags & CMK_HDR_F_IV_LARGE_SECTORS ? " (iv_large_sectors)" : "");
	printf("%-14s %llu\n", "data_offset", (unsigned long long)h.data_offset);
	print_uuid("kek_id", h.kek_id);
	printf("%-14s %u\n", "kek_version", h.kek_version);
	print_uuid("boot_id", h.boot_id);
	print_time("write_time", (time_t)h.write_time);
	printf("%-14s AES-256-GCM, %u bytes (not shown)\n", "wrapped_dek", h.dek_len);
	return 0;
}

/*
 * The device to format, read-write; a block device also exclusively
 * (O_EXCL), so that a mounted one or one held by device-mapper (an open
 * dm-cmk mapping) is refused by the kernel rather than overwritten under
 * its user.  Says what failed; -1 then.
 */
static int open_for_format(const char *dev)
{
	struct stat st;
	int fd, err;

	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "cmkctl: %s: %s\n", dev, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISBLK(st.st_mode))
		return fd;
	close(fd);
	fd = open(dev, O_RDWR | O_CLOEXEC | O_EXCL);
	if (fd < 0) {
		err = errno;
		fprintf(stderr, "cmkctl: %s: exclusive open: %s%s\n", dev, strerror(err),
			err == EBUSY ? " (in use: mounted, or held by device-mapper such as an open dm-cmk device; unmount or close it first)" : "");
	}
	return fd;
}

/*
 * A torn copy A next to a blank copy B is what a first format cut short
 * leaves, but a used disk whose copy B and the end of copy A were zeroed
 * looks the same.  Its device_uuid tells them apart where this host pins
 * the device: a first format's uuid was never pinned (format prints it
 * only once it has succeeded).
 */
static int torn_header_unpinned(const char *dev, int fd, struct cmk_err *e)
{
	struct cmk_config cfg;
	uint8_t uuid[CMK_UUID_LEN];
	char name[256], from[4200], u[CMK_UUID_STR];
	int ret;

	if (access(config_path, F_OK) != 0) {
		fprintf(stderr, "cmkctl: %s: no %s: the damaged header's device_uuid is not checked against this host's pinned devices\n",
			dev, config_path);
		return 0;
	}
	ret = cmk_device_torn_uuid(fd, uuid, e);
	if (ret)
		return ret;
	ret = cmk_config_load(config_path, &cfg, e);
	if (ret)
		return ret;
	if (cmk_pin_owner(&cfg, uuid, name, sizeof(name), from, sizeof(from))) {
		cmk_uuid_format(uuid, u);
		ret = cmk_errf(e, -EEXIST,
			       "has a damaged dm-cmk header of device_uuid %s, which is device %s's (%s): a used disk, not an interrupted first format; formatting would destroy its data: check the device, or use --force",
			       u, name, from);
	}
	cmk_config_free(&cfg);
	return ret;
}

static int do_format(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kek", required_argument, NULL, 'k' },
		{ "mode", required_argument, NULL, 'm' },
		{ "sector-size", required_argument, NULL, 's' },
		{ "iv-large-sectors", no_argument, NULL, 'i' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	CMK_SECRET_AUTO struct cmk_secret *kek = NULL;
	CMK_SECRET_AUTO struct cmk_secret *dek = NULL;
	const char *kek_path = NULL, *dev;
	struct cmk_provider *p = NULL;
	struct cmk_envelope env;
	struct cmk_config cfg;
	struct cmk_header h;
	struct cmk_kek_pair k;
	struct cmk_err e;
	uint8_t boot[CMK_UUID_LEN];
	enum cmk_mode mode = 0;
	unsigned long sector = 4096;
	uint32_t flags = 0;
	bool force = false, cfg_loaded = false, interrupted = false;
	char u[CMK_UUID_STR];
	int c, rc, fd = -1, ret = EXIT_LOCAL;

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
		case 'i':
			flags |= CMK_HDR_F_IV_LARGE_SECTORS;
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
	fd = open_for_format(dev);
	if (fd < 0)
		return EXIT_LOCAL;
	/* Before any KMS call: a refusal costs nothing. */
	if (!force) {
		rc = cmk_device_may_format(fd, &interrupted, &e);
		if (!rc && interrupted)
			rc = torn_header_unpinned(dev, fd, &e);
		if (rc) {
			fprintf(stderr, "cmkctl: %s: %s\n", dev, e.msg);
			goto out;
		}
	}
	if (cmk_boot_id(boot, &e) ||
	    cmk_envelope_read(kek_path, &env, &e) ||
	    ctl_provider_open(env.cur.provider, &cfg, &cfg_loaded, &p, &e) ||
	    cmk_envelope_unwrap(p, &env, false, &kek, NULL, &e)) {
		ret = fail(&e);
		goto out;
	}
	k = (struct cmk_kek_pair){ .env = &env, .cur = kek };
	/* force again: the device is checked once more just before zeroing. */
	rc = cmk_device_format(fd, &k, mode, (uint32_t)sector, flags, boot, force,
			       &h, &dek, &e);
	if (rc) {
		cmk_err_prefix(&e, "%s", dev);
		ret = fail(&e);
		goto out;
	}
	if (interrupted)
		fprintf(stderr, "cmkctl: %s: continuing an interrupted first format (one torn header copy, nothing stored under it)\n",
			dev);
	printf("formatted %s: %s, sector size %u%s, data at sector %d\n", dev,
	       cmk_mode_name(h.mode), h.sector_size,
	       flags ? ", iv_large_sectors" : "", CMK_HDR_DATA_OFFSET);
	if (mode == CMK_MODE_PERSISTENT) {
		/* The line that binds the configured device to this header. */
		cmk_uuid_format(h.device_uuid, u);
		printf("add to its [device] section in agent.conf:\n");
		printf("uuid = %s\n", u);
	}
	ret = 0;
out:
	close(fd);
	cmk_provider_close(&p);
	if (cfg_loaded)
		cmk_config_free(&cfg);
	cmk_envelope_free(&env);
	return ret;
}

/* ---- seal / unseal -------------------------------------------------------- */

/*
 * The storage wrapping keys of one KEK envelope, unwrapped on demand: an
 * unseal unwraps exactly the KEK version its EDK names (current, previous
 * or retired), so an unreachable version only fails the objects sealed
 * under it.  The KEK is unsealed through its provider here; the agent's
 * socket will hand out data keys instead.
 */
struct env_keys {
	struct cmk_envelope env;
	size_t n;
	struct cmk_esdk_wrapkey wk[2 + CMK_ENVELOPE_RETIRED_MAX];
	char holds[96];
};

static void env_keys_free(struct env_keys *k)
{
	while (k->n)
		cmk_esdk_wrapkey_free(&k->wk[--k->n]);
	cmk_envelope_free(&k->env);
}

static int env_keys_get(void *arg, const char *key_name,
			const struct cmk_esdk_wrapkey **wk, struct cmk_err *e)
{
	CMK_SECRET_AUTO struct cmk_secret *kek = NULL;
	struct env_keys *k = arg;
	const struct cmk_kek_wrap *w;
	struct cmk_provider *p = NULL;
	struct cmk_config cfg;
	bool cfg_loaded = false;
	uint8_t id[CMK_UUID_LEN];
	uint32_t v;
	int ret;

	if (cmk_esdk_key_name_parse(key_name, id, &v) ||
	    memcmp(id, k->env.kek_id, CMK_UUID_LEN))
		return -ENOENT;
	w = cmk_envelope_find(&k->env, v);
	if (!w)
		return -ENOENT;
	for (size_t i = 0; i < k->n; i++)
		if (!strcmp(k->wk[i].name, key_name)) {
			*wk = &k->wk[i];
			return 0;
		}
	if (k->n == sizeof(k->wk) / sizeof(k->wk[0]))
		return cmk_errf(e, -E2BIG, "too many KEK versions asked for");
	ret = ctl_provider_open(w->provider, &cfg, &cfg_loaded, &p, e);
	if (!ret)
		ret = cmk_envelope_unwrap_version(p, &k->env, v, &kek, NULL, e);
	if (!ret)
		ret = cmk_esdk_wrapkey_derive(kek, k->env.kek_id, v, &k->wk[k->n], e);
	if (!ret)
		*wk = &k->wk[k->n++];
	else
		cmk_err_prefix(e, "KEK version %u", v);
	cmk_provider_close(&p);
	if (cfg_loaded)
		cmk_config_free(&cfg);
	return ret;
}

/*
 * env_keys_load() - read the envelope at @path; with @current, unwrap the
 * current KEK version's wrapping key right away (sealing uses only it).
 */
static int env_keys_load(struct env_keys *k, const char *path, bool current,
			 struct cmk_err *e)
{
	const struct cmk_esdk_wrapkey *wk;
	char uuid[CMK_UUID_STR], name[CMK_ESDK_KEY_NAME_MAX];
	int ret;

	memset(k, 0, sizeof(*k));
	ret = cmk_envelope_read(path, &k->env, e);
	if (ret)
		return ret;
	cmk_uuid_format(k->env.kek_id, uuid);
	snprintf(k->holds, sizeof(k->holds), "kek/%s/v1..v%u", uuid,
		 k->env.cur.kek_version);
	if (!current)
		return 0;
	snprintf(name, sizeof(name), "kek/%s/v%u", uuid, k->env.cur.kek_version);
	ret = env_keys_get(k, name, &wk, e);
	if (ret)
		env_keys_free(k);
	return ret;
}

/*
 * ctl_agent_connect() - seal|unseal --agent (the socket agent.conf names)
 * or --socket PATH: data keys from cmk-agent, which holds the KEK.
 */
static int ctl_agent_connect(struct cmk_keyclient *kc, const char *sock,
			     struct cmk_esdk_keygen *kg,
			     struct cmk_esdk_keysource *src, struct cmk_err *e)
{
	struct cmk_config cfg;
	char path[sizeof(kc->path)];
	int ret;

	if (!sock) {
		ret = cmk_config_load(config_path, &cfg, e);
		if (ret) {
			cmk_err_prefix(e, "--agent reads the key socket's path from the configuration (or give --socket PATH)");
			return ret;
		}
		ret = cmk_keyclient_path(&cfg, path, sizeof(path), e);
		cmk_config_free(&cfg);
		if (ret)
			return ret;
		sock = path;
	}
	ret = cmk_keyclient_connect(kc, sock, e);
	if (ret)
		return ret;
	cmk_keyclient_keygen(kc, kg);
	cmk_keyclient_keysource(kc, src);
	return 0;
}

/*
 * do_seal() - seal (@unseal false) or unseal IN to OUT.  "-" or nothing is
 * stdin/stdout.  A file OUT appears only complete and authentic: written
 * unnamed (cmk_outfile) and linked when everything verified; never replaced
 * without --force.  On stdout a failed unseal may already have written
 * authenticated frames: the exit status is what says "discard it".
 */
static int do_seal(int argc, char **argv, bool unseal)
{
	static const struct option opts[] = {
		{ "kek", required_argument, NULL, 'k' },
		{ "context", required_argument, NULL, 'c' },
		{ "suite", required_argument, NULL, 's' },
		{ "frame-length", required_argument, NULL, 'l' },
		{ "force", no_argument, NULL, 'f' },
		{ "agent", no_argument, NULL, 'a' },
		{ "socket", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	struct cmk_keyclient kc = { .fd = -1 };
	struct cmk_esdk_keygen kg;
	struct cmk_esdk_seal_opts so = { 0 };
	struct env_keys keys = { 0 };
	struct cmk_esdk_keysource src = { .get = env_keys_get, .arg = &keys,
					   .holds = keys.holds };
	struct cmk_outfile of = { .fd = -1 };
	struct cmk_esdk_info info = { 0 };
	struct cmk_encctx ctx;
	struct cmk_err e;
	const char *kek_path = NULL, *in = "-", *out = "-", *sock = NULL;
	bool force = false, agent = false, s3_in, s3_out, existed = false;
	int c, in_fd = -1, out_fd = STDOUT_FILENO, ret = EXIT_LOCAL, r;
	char *end;

	cmk_encctx_init(&ctx);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			kek_path = optarg;
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
		case 's':
			/* the exact names: strtoul would take 0x10478 or " 478" */
			if (!strcasecmp(optarg, "0x0478")) {
				so.suite = CMK_ESDK_SUITE_COMMIT;
			} else if (!strcasecmp(optarg, "0x0578")) {
				so.suite = CMK_ESDK_SUITE_COMMIT_ECDSA;
			} else {
				fprintf(stderr, "cmkctl: --suite is 0x0478 or 0x0578\n");
				goto out;
			}
			break;
		case 'l': {
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || !v || v > CMK_ESDK_FRAME_MAX) {
				fprintf(stderr, "cmkctl: --frame-length is 1..%u\n",
					CMK_ESDK_FRAME_MAX);
				goto out;
			}
			so.frame_len = (uint32_t)v;
			break;
		}
		case 'f':
			force = true;
			break;
		case 'a':
			agent = true;
			break;
		case 'S':
			sock = optarg;
			agent = true;
			break;
		default:
			ret = usage();
			goto out;
		}
	}
	/* The KEK file (break-glass, offline) or the agent, exactly one. */
	if (!kek_path == !agent || argc - optind > 2 ||
	    (unseal && so.frame_len)) {
		ret = usage();
		goto out;
	}
	if (optind < argc)
		in = argv[optind++];
	if (optind < argc)
		out = argv[optind++];
	/* S3 objects: esdk_s3.h; never replaced, so no --force. */
	s3_in = unseal && cmk_s3_is_url(in);
	s3_out = !unseal && cmk_s3_is_url(out);
	if (s3_out && force) {
		fprintf(stderr, "cmkctl: %s: S3 objects are never replaced; --force does not apply\n", out);
		goto out;
	}
	if (strcmp(in, "-") && !s3_in) {
		in_fd = open(in, O_RDONLY | O_CLOEXEC);
		if (in_fd < 0) {
			fprintf(stderr, "cmkctl: %s: %s\n", in, strerror(errno));
			goto out;
		}
	}
	if (strcmp(out, "-") && !s3_out && !force && access(out, F_OK) == 0) {
		fprintf(stderr, "cmkctl: %s exists; not replaced (use --force)\n", out);
		goto out;
	}
	if (agent ? ctl_agent_connect(&kc, sock, &kg, &src, &e) :
		    env_keys_load(&keys, kek_path, !unseal, &e)) {
		ret = fail(&e);
		goto out;
	}
	/* unseal --suite: a reader whose writers all sign requires 0x0578 */
	if (unseal)
		src.suite = so.suite;
	if (strcmp(out, "-") && !s3_out) {
		if (cmk_outfile_open(&of, out, 0600, &e)) {
			ret = fail(&e);
			goto out;
		}
		out_fd = of.fd;
	}
	so.name = strcmp(in, "-") ? in : "(stdin)";
	r = s3_in ? cmk_esdk_open_s3(in, out_fd, &src, &ctx, &info, &e) :
	    s3_out ? cmk_esdk_seal_s3(in_fd < 0 ? STDIN_FILENO : in_fd, out,
				      agent ? &kg : NULL, &keys.wk[0], &ctx, &so,
				      &src, &info, &existed, &e) :
	    unseal ? cmk_esdk_open_from(in_fd < 0 ? STDIN_FILENO : in_fd, out_fd,
					&src, &ctx, so.name, &info, &e) :
		     agent ? cmk_esdk_seal_with(in_fd < 0 ? STDIN_FILENO : in_fd, out_fd,
						&kg, &ctx, &so, &info, &e) :
		     cmk_esdk_seal(in_fd < 0 ? STDIN_FILENO : in_fd, out_fd,
				   &keys.wk[0], &ctx, &so, &info, &e);
	if (r) {
		ret = (r == -EPERM || r == -EBADMSG || r == -EKEYREJECTED ||
		       r == -EPROTO) ?
		      EXIT_REFUSED : fail(&e);
		if (ret == EXIT_REFUSED)
			fprintf(stderr, "cmkctl: %s\n", e.msg);
		if (!strcmp(out, "-") && unseal && info.wrote)
			fprintf(stderr, "cmkctl: discard what was written to stdout\n");
		goto out;
	}
	if (of.fd >= 0 && cmk_outfile_commit(&of, force, &e)) {
		ret = fail(&e);
		goto out;
	}
	if (existed)
		fprintf(stderr, "cmkctl: %s exists already with the same content; not uploaded again\n", out);
	ret = 0;
out:
	cmk_outfile_abort(&of);
	if (in_fd >= 0)
		close(in_fd);
	env_keys_free(&keys);
	cmk_keyclient_close(&kc);
	cmk_encctx_free(&ctx);
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

/* ---- device verbs (need the config) ------------------------------------------------ */

struct ctl {
	struct cmk_config cfg;
	struct cmk_audit *audit;
	struct cmk_genl *genl;
	struct cmk_kek_store keks;
	struct cmk_volume_ctx vol;
	bool cfg_loaded;
};

static int fail_kernel(const struct cmk_err *e)
{
	fprintf(stderr, "cmkctl: %s\n", e->msg);
	return EXIT_KERNEL;
}

/* Load the config, open the audit log and (if @genl) the netlink client. */
static int ctl_setup(struct ctl *c, bool genl)
{
	struct cmk_err e;

	memset(c, 0, sizeof(*c));
	cmk_kek_store_init(&c->keks);
	if (cmk_config_load(config_path, &c->cfg, &e)) {
		fprintf(stderr, "cmkctl: %s\n", e.msg);
		return EXIT_LOCAL;
	}
	c->cfg_loaded = true;
	if (cmk_audit_open(c->cfg.audit_log, c->cfg.syslog, "cmkctl", &c->audit, &e)) {
		fprintf(stderr, "cmkctl: %s\n", e.msg);
		return EXIT_LOCAL;
	}
	c->vol.cfg = &c->cfg;
	c->vol.audit = c->audit;
	c->vol.keks = &c->keks;
	if (genl && cmk_genl_open(&c->genl, &e))
		return fail_kernel(&e);
	c->vol.genl = c->genl;
	return 0;
}

static int ctl_genl(struct ctl *c)
{
	struct cmk_err e;

	if (cmk_genl_open(&c->genl, &e))
		return fail_kernel(&e);
	c->vol.genl = c->genl;
	return 0;
}

static void ctl_done(struct ctl *c)
{
	cmk_kek_store_free(&c->keks);
	cmk_genl_close(&c->genl);
	cmk_audit_close(&c->audit);
	if (c->cfg_loaded)
		cmk_config_free(&c->cfg);
}

static const struct cmk_config_device *ctl_device(struct ctl *c, const char *name)
{
	const struct cmk_config_device *d = cmk_volume_find(&c->cfg, name);

	if (!d)
		fprintf(stderr, "cmkctl: no device \"%s\" in %s (give its section name, dm_name or key_name)\n",
			name, config_path);
	return d;
}

/*
 * The common start of a verb on one configured device: load the config,
 * find @name in it and connect to the kernel.  Return: 0 or an exit code;
 * the caller runs ctl_done() in either case.
 */
static int ctl_setup_device(struct ctl *c, const char *name,
			    const struct cmk_config_device **d)
{
	int ret = ctl_setup(c, false);

	if (ret)
		return ret;
	*d = ctl_device(c, name);
	if (!*d)
		return EXIT_LOCAL;
	return ctl_genl(c);
}

/* Exit code for a failed volume operation. */
static int fail_volume(const struct cmk_err *e, int ret)
{
	if (e->cls == CMK_EC_DEFINITIVE || e->cls == CMK_EC_TRANSIENT)
		return fail(e);
	if (ret == -EXDEV || ret == -ESTALE || ret == -EMEDIUMTYPE)
		return fprintf(stderr, "cmkctl: %s\n", e->msg), EXIT_REFUSED;
	if (ret == -ENODATA || ret == -EUCLEAN)
		return fprintf(stderr, "cmkctl: %s\n", e->msg), EXIT_NO_HEADER;
	if (ret == -ENODEV || ret == -ENOENT || ret == -EPERM || ret == -ENXIO ||
	    ret == -EIO || ret == -EINVAL || ret == -ERANGE)
		return fail_kernel(e);
	return fail(e);
}

/* Exit code for a failed header operation (no kernel involved). */
static int fail_header(const struct cmk_err *e, int ret)
{
	if (ret == -EXDEV || ret == -ESTALE || ret == -EMEDIUMTYPE ||
	    ret == -ENODATA || ret == -EUCLEAN)
		return fail_volume(e, ret);
	return fail(e);
}

static int do_open(int argc, char **argv)
{
	static const char *const done[] = {
		[CMK_VOLUME_OPENED] = "opened",
		[CMK_VOLUME_RESTORED] = "key restored",
		[CMK_VOLUME_RENEWED] = "key active, lease renewed",
	};
	const struct cmk_config_device *d;
	enum cmk_volume_how how;
	struct cmk_err e;
	struct ctl c;
	int ret;

	if (argc != 2)
		return usage();
	ret = ctl_setup_device(&c, argv[1], &d);
	if (ret)
		goto out;
	if (cmk_kek_store_load(&c.keks, &c.cfg, false, c.audit, &e)) {
		ret = fail(&e);
		goto out;
	}
	/* An explicit open ends an operator revocation. */
	if (cmk_volume_clear_revoked(&c.cfg, d, &e)) {
		ret = fail(&e);
		goto out;
	}
	ret = cmk_volume_open(&c.vol, d, &how, &e);
	cmk_kek_store_forget(&c.keks);
	if (ret) {
		ret = fail_volume(&e, ret);
		goto out;
	}
	printf("%s: /dev/mapper/%s %s (%s)\n", d->name, d->dm_name, done[how],
	       cmk_mode_name(d->mode));
	ret = 0;
out:
	ctl_done(&c);
	return ret;
}

/*
 * A device in use is not closed unless asked to: wiping the key under a
 * mounted filesystem fails its I/O and aborts its journal, which no one
 * running "close" by hand means to do.  The check races with a mount made
 * right after it, as cryptsetup's does; it catches the common mistake.
 */
static int refuse_busy(const struct cmk_config_device *d)
{
	unsigned int major, minor;
	char mnt[4096] = "";
	struct cmk_err e;
	int users, ret;

	ret = cmk_dm_users(d->dm_name, &users, &major, &minor, &e);
	if (ret == -ENXIO || (!ret && users <= 0))
		return 0;
	if (ret)
		return fail_volume(&e, ret);
	if (!cmk_dm_mount_point(major, minor, mnt, sizeof(mnt)))
		fprintf(stderr,
			"cmkctl: device %s (/dev/mapper/%s): in use, mounted on %s: nothing changed; unmount it first, or close --force to wipe the key under its users (their I/O then fails)\n",
			d->name, d->dm_name, mnt);
	else
		fprintf(stderr,
			"cmkctl: device %s (/dev/mapper/%s): in use, held open %d time%s (a process or a device stacked on it): nothing changed; stop its users first (see 'fuser -v /dev/mapper/%s' and 'dmsetup ls --tree'), or close --force to wipe the key under them (their I/O then fails)\n",
			d->name, d->dm_name, users, users == 1 ? "" : "s", d->dm_name);
	return EXIT_BUSY;
}

/* close DEVICE [--force]: wipe the key, remove the mapping and its record. */
static int do_close(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cmk_config_device *d;
	bool force = false;
	struct cmk_err e;
	struct ctl c;
	int ch, ret;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'f')
			return usage();
		force = true;
	}
	if (optind != argc - 1)
		return usage();
	ret = ctl_setup_device(&c, argv[optind], &d);
	if (ret)
		goto out;
	if (!force) {
		ret = refuse_busy(d);
		if (ret)
			goto out;
	}
	ret = cmk_volume_close(&c.vol, d, &e);
	if (ret) {
		ret = fail_volume(&e, ret);
		goto out;
	}
	printf("%s: key wiped, /dev/mapper/%s removed\n", d->name, d->dm_name);
	ret = 0;
out:
	ctl_done(&c);
	return ret;
}

/* pin DEVICE [--uuid UUID]: bind a persistent device to a header. */
static int do_pin(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "uuid", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cmk_config_device *d;
	uint8_t want[CMK_UUID_LEN], got[CMK_UUID_LEN];
	bool given = false;
	char u[CMK_UUID_STR];
	struct cmk_header h;
	struct cmk_err e;
	struct ctl c;
	int ch, ret;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'u')
			return usage();
		if (cmk_uuid_parse(optarg, want)) {
			fprintf(stderr, "cmkctl: --uuid: \"%s\" is not a UUID\n", optarg);
			return EXIT_LOCAL;
		}
		given = true;
	}
	if (optind != argc - 1)
		return usage();
	ret = ctl_setup(&c, false);
	if (ret)
		goto out;
	ret = EXIT_LOCAL;
	d = ctl_device(&c, argv[optind]);
	if (!d)
		goto out;
	/* The header is authenticated before it is trusted with the pin. */
	if (!given && cmk_kek_store_load(&c.keks, &c.cfg, false, c.audit, &e)) {
		ret = fail(&e);
		goto out;
	}
	ret = cmk_volume_pin(&c.vol, d, given ? want : NULL, got, &h, &e);
	cmk_kek_store_forget(&c.keks);
	if (ret) {
		ret = fail_header(&e, ret);
		goto out;
	}
	cmk_uuid_format(got, u);
	printf("%s: pinned to device_uuid %s\n", d->name, u);
	if (h.sequence) {
		printf("%-14s %llu\n", "sequence", (unsigned long long)h.sequence);
		print_time("write_time", (time_t)h.write_time);
	}
out:
	ctl_done(&c);
	return ret;
}

static int do_revoke(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cmk_config_device *one = NULL;
	const char *name = NULL;
	struct cmk_err e;
	struct ctl c;
	int ch, ret, wiped = 0;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'd')
			return usage();
		name = optarg;
	}
	if (optind != argc)
		return usage();
	ret = ctl_setup(&c, false);
	if (ret)
		goto out;
	ret = EXIT_LOCAL;
	if (name && !(one = ctl_device(&c, name)))
		goto out;
	ret = ctl_genl(&c);
	if (ret)
		goto out;
	for (size_t i = 0; i < c.cfg.n_devices; i++) {
		const struct cmk_config_device *d = &c.cfg.devices[i];
		int r;

		if (one && d != one)
			continue;
		/* Marker first: the agent must not restore in between. */
		if (cmk_volume_mark_revoked(&c.cfg, d, &e)) {
			ret = fail(&e);
			continue;
		}
		r = cmk_volume_wipe(&c.vol, d, DM_CMK_REASON_REVOKED, &e);
		if (r == -ENODEV) {
			printf("%s: not open (marked revoked)\n", d->name);
			continue;
		}
		if (r) {
			ret = fail_kernel(&e);
			continue;
		}
		printf("%s: key wiped (revoked); run \"cmkctl open %s\" to restore\n",
		       d->name, d->name);
		wiped++;
	}
	cmk_volume_audit(&c.vol, "revoke", one, "operator break-glass revoke (cmkctl revoke)",
			 NULL, true);
	(void)wiped;
out:
	ctl_done(&c);
	return ret;
}

/* ---- status ------------------------------------------------------------------------- */

struct status_ctx {
	bool json;
	json_object *arr;
	int n;
};

static int status_dev(const struct cmk_dev_info *i, void *arg)
{
	struct status_ctx *s = arg;
	char lease[32] = "-";

	if (s->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "key_name", json_object_new_string(i->name));
		json_object_object_add(o, "device", json_object_new_string(i->device));
		json_object_object_add(o, "state", json_object_new_string(cmk_state_str(i->state)));
		json_object_object_add(o, "generation", json_object_new_int64((int64_t)i->generation));
		if (i->has_lease)
			json_object_object_add(o, "lease_left_ms", json_object_new_int64(i->lease_left_ms));
		json_object_object_add(o, "lease_max_ms", json_object_new_int64(i->lease_max_ms));
		json_object_object_add(o, "sector_size", json_object_new_int64(i->sector_size));
		if (i->state == DM_CMK_STATE_WIPED)
			json_object_object_add(o, "wipe_reason",
					       json_object_new_string(cmk_wipe_reason_str(i->reason)));
		json_object_object_add(o, "reads", json_object_new_int64((int64_t)i->reads));
		json_object_object_add(o, "writes", json_object_new_int64((int64_t)i->writes));
		json_object_object_add(o, "io_errors", json_object_new_int64((int64_t)i->io_errors));
		json_object_object_add(o, "refused", json_object_new_int64((int64_t)i->refused));
		json_object_array_add(s->arr, o);
		return 0;
	}
	if (!s->n++)
		printf("%-16s %-16s %-7s %10s %10s %10s %10s %8s %8s\n", "KEY_NAME", "DEVICE",
		       "STATE", "GENERATION", "LEASE_LEFT", "READS", "WRITES", "ERRORS",
		       "REFUSED");
	if (i->has_lease)
		snprintf(lease, sizeof(lease), "%u.%03us", i->lease_left_ms / 1000,
			 i->lease_left_ms % 1000);
	printf("%-16s %-16s %-7s %10llu %10s %10llu %10llu %8llu %8llu%s%s\n", i->name,
	       i->device, cmk_state_str(i->state), (unsigned long long)i->generation, lease,
	       (unsigned long long)i->reads, (unsigned long long)i->writes,
	       (unsigned long long)i->io_errors, (unsigned long long)i->refused,
	       i->state == DM_CMK_STATE_WIPED ? "  wiped: " : "",
	       i->state == DM_CMK_STATE_WIPED ? cmk_wipe_reason_str(i->reason) : "");
	return 0;
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, k, &v))
		return NULL;
	return json_object_get_string(v);
}

static int do_status(int argc, char **argv)
{
	struct status_ctx s = { 0 };
	json_object *agent = NULL, *out = NULL, *kek, *chk;
	char path[4096], *text = NULL;
	struct cmk_err e;
	struct ctl c;
	size_t len;
	int ret, kret;

	if (argc == 2 && !strcmp(argv[1], "--json"))
		s.json = true;
	else if (argc != 1)
		return usage();
	ret = ctl_setup(&c, false);
	if (ret)
		goto out;
	snprintf(path, sizeof(path), "%s/agent.json", c.cfg.state_dir);
	if (!cmk_read_file(path, 1 << 20, &text, &len, &e))
		agent = json_tokener_parse(text);
	s.arr = json_object_new_array();
	kret = cmk_genl_open(&c.genl, &e);
	if (!kret)
		kret = cmk_genl_dump(c.genl, status_dev, &s, &e);
	if (s.json) {
		out = json_object_new_object();
		json_object_object_add(out, "kernel", s.arr);
		s.arr = NULL;
		if (kret)
			json_object_object_add(out, "kernel_error", json_object_new_string(e.msg));
		json_object_object_add(out, "agent", agent);
		agent = NULL;
		puts(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						    JSON_C_TO_STRING_NOSLASHESCAPE));
	} else {
		if (kret)
			printf("kernel: %s\n", e.msg);
		else if (!s.n)
			printf("kernel: no dm-cmk devices\n");
		if (!agent) {
			printf("agent: no state in %s (not running?)\n", path);
		} else {
			json_object_object_get_ex(agent, "kek", &kek);
			json_object_object_get_ex(agent, "last_check", &chk);
			printf("agent: %s (pid %s, updated %s)\n", jstr(agent, "state"),
			       jstr(agent, "pid"), jstr(agent, "updated"));
			printf("  KEK %s version %s (%s %s)\n", jstr(kek, "id"),
			       jstr(kek, "version"), jstr(kek, "provider"), jstr(kek, "key_ref"));
			printf("  last check %s: %s%s%s (%s ms, %s checks)\n", jstr(chk, "time"),
			       jstr(chk, "result"), jstr(chk, "message") ? ": " : "",
			       jstr(chk, "message") ? jstr(chk, "message") : "",
			       jstr(chk, "latency_ms"), jstr(chk, "checks"));
		}
	}
	ret = 0;
out:
	json_object_put(s.arr);
	json_object_put(agent);
	json_object_put(out);
	free(text);
	ctl_done(&c);
	return ret;
}

/* ---- check-now ------------------------------------------------------------------ */

/* A token the agent does not list after this long is sent again. */
#define CHECK_NOW_RESEND_MS	1000

/* The agent's state file, parsed; NULL if it does not read. */
static json_object *read_agent_state(const char *path)
{
	json_object *o = NULL;
	char *text = NULL;
	struct cmk_err e;
	size_t len;

	if (!cmk_read_file(path, 1 << 20, &text, &len, &e))
		o = json_tokener_parse(text);
	free(text);
	return o;
}

/* Is @token in the agent's hints list @which ("answered_tokens", ...)? */
static bool token_in(json_object *st, const char *which, int token)
{
	json_object *h, *arr;

	if (!json_object_object_get_ex(st, "hints", &h) ||
	    !json_object_object_get_ex(h, which, &arr))
		return false;
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		if (json_object_get_int(json_object_array_get_idx(arr, i)) == token)
			return true;
	return false;
}

/*
 * A pidfd for @pid if it is a cmk-agent process (its comm, read after the
 * pidfd is open: a pid reused since then makes the signal fail, never go
 * to another process), else -1 with a message.
 */
static int agent_pidfd(long pid)
{
	char path[64], comm[32] = "";
	int pfd, fd;
	ssize_t n;

	pfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (pfd < 0) {
		fprintf(stderr, "cmkctl: the agent (pid %ld in its state file) is not running: %s\n",
			pid, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, comm, sizeof(comm) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0 || strcmp(comm, "cmk-agent\n")) {
		fprintf(stderr, "cmkctl: pid %ld is not cmk-agent (stale state file?); is the agent running?\n",
			pid);
		close(pfd);
		return -1;
	}
	return pfd;
}

/*
 * Why the agent has not run the check yet, from its state file's
 * hints.waiting_for (agentloop.h, cmk_loop_hint_wait()), as of the last
 * time it wrote it.
 */
static const char *hint_wait_text(json_object *st)
{
	static char buf[320];
	json_object *h = NULL, *v;
	const char *why = NULL;
	long in_s = -1;

	if (st && json_object_object_get_ex(st, "hints", &h) &&
	    json_object_object_get_ex(h, "waiting_for", &v))
		why = json_object_get_string(v);
	if (h && json_object_object_get_ex(h, "check_in_ms", &v))
		in_s = (long)((json_object_get_int64(v) + 999) / 1000);
	if (!why)
		return "its state file does not say why (an older agent: the hint budget while checks back off, a KMS hold (Retry-After) or a check under way)";
	if (!strcmp(why, "budget"))
		snprintf(buf, sizeof(buf), "the KMS checks are backing off (throttled or failing) and this VM's hint budget is spent - check-now is budgeted like any hint; the check runs in about %ld s, or at the next scheduled check (Documentation/fleet.rst)",
			 in_s);
	else if (!strcmp(why, "retry_after"))
		snprintf(buf, sizeof(buf), "the KMS asked to wait (Retry-After); the check runs in about %ld s",
			 in_s);
	else if (!strcmp(why, "schedule"))
		snprintf(buf, sizeof(buf), "the KMS checks are backing off and the hint budget is spent; the next scheduled check runs in about %ld s",
			 in_s);
	else if (!strcmp(why, "paced"))
		snprintf(buf, sizeof(buf), "checks for hints are paced (at least 1 s apart, an event's spread, a failed hint's retry); the check runs in about %ld s",
			 in_s);
	else if (!strcmp(why, "check_under_way"))
		return "a check is under way (up to check_timeout_ms); one more follows it";
	else if (!strcmp(why, "boot"))
		return "the agent is still unsealing at boot; the check runs right after the boot unseal succeeds";
	else
		return "the check has not started yet";
	return buf;
}

/*
 * check-now [--wait SECONDS | --no-wait]: ask the running agent for a real
 * CMK check now - SIGHUP with a random token (sigqueue through a pidfd),
 * the agent's hint entry (agentloop.h) - and wait until its state file
 * says the check that answers that token is done; print its outcome.
 * The hint has no authority: the KMS's answer decides, as for any check.
 */
static int do_check_now(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "wait", required_argument, NULL, 'w' },
		{ "no-wait", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	json_object *st = NULL, *v, *chk;
	long wait_ms = -1, pid;
	char path[4096], *end;
	bool no_wait = false;
	struct timespec t0, t;
	siginfo_t si;
	int c, pfd = -1, token = 0, ret;
	struct ctl ctl;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'w') {
			errno = 0;
			wait_ms = strtol(optarg, &end, 10) * 1000;
			if (errno || *end || wait_ms < 0 || wait_ms > 3600000)
				return usage();
		} else if (c == 'n') {
			no_wait = true;
		} else {
			return usage();
		}
	}
	if (optind != argc)
		return usage();
	ret = ctl_setup(&ctl, false);
	if (ret)
		goto out;
	ret = EXIT_LOCAL;
	/* Long enough for a check that runs into its deadline, and the pacing. */
	if (wait_ms < 0)
		wait_ms = (long)ctl.cfg.check_timeout_ms + 10000;
	snprintf(path, sizeof(path), "%s/agent.json", ctl.cfg.state_dir);
	st = read_agent_state(path);
	if (!st || !json_object_object_get_ex(st, "pid", &v)) {
		fprintf(stderr, "cmkctl: no agent state in %s: is cmk-agent running (and booted)?\n", path);
		goto out;
	}
	pid = json_object_get_int64(v);
	pfd = agent_pidfd(pid);
	if (pfd < 0)
		goto out;
	while (!token) {
		struct cmk_err re;

		if (cmk_random_fill(&token, sizeof(token), "check-now token", &re)) {
			fprintf(stderr, "cmkctl: %s\n", re.msg);
			goto out;
		}
	}
	memset(&si, 0, sizeof(si));
	si.si_signo = SIGHUP;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = token;
	if (syscall(SYS_pidfd_send_signal, pfd, SIGHUP, &si, 0)) {
		fprintf(stderr, "cmkctl: cannot signal the agent (pid %ld): %s\n", pid, strerror(errno));
		goto out;
	}
	if (no_wait) {
		printf("check requested from cmk-agent (pid %ld)\n", pid);
		ret = 0;
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long sent_ms = 0;;) {
		struct timespec slice = { 0, 50 * 1000000L };
		long ms;

		json_object_put(st);
		st = read_agent_state(path);
		if (st && token_in(st, "answered_tokens", token))
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		/*
		 * Not even pending a second later: our SIGHUP was merged into
		 * another caller's still pending one (a standard signal queues
		 * once).  Send it again; it joins the hints of the next check.
		 */
		if (ms - sent_ms >= CHECK_NOW_RESEND_MS &&
		    !(st && token_in(st, "pending_tokens", token))) {
			/* An agent gone since: no answer comes, said at the wait's end. */
			sent_ms = ms;
			(void)syscall(SYS_pidfd_send_signal, pfd, SIGHUP, &si, 0);
		}
		if (ms > wait_ms) {
			fprintf(stderr, "cmkctl: the agent (pid %ld) gave no answer to the check within %ld s: %s; see cmkctl status\n",
				pid, wait_ms / 1000, hint_wait_text(st));
			ret = EXIT_TRANSIENT;
			goto out;
		}
		nanosleep(&slice, NULL);
	}
	json_object_object_get_ex(st, "last_check", &chk);
	printf("CMK check: %s%s%s%s%s (agent %s)\n", jstr(chk, "result"),
	       jstr(chk, "reason") ? ": " : "", jstr(chk, "reason") ? jstr(chk, "reason") : "",
	       jstr(chk, "message") ? ": " : "", jstr(chk, "message") ? jstr(chk, "message") : "",
	       jstr(st, "state"));
	if (jstr(chk, "result") && !strcmp(jstr(chk, "result"), "success"))
		ret = 0;
	else if (jstr(chk, "error_class") && !strcmp(jstr(chk, "error_class"), "definitive"))
		ret = EXIT_DEFINITIVE;
	else if (jstr(chk, "error_class") && !strcmp(jstr(chk, "error_class"), "transient"))
		ret = EXIT_TRANSIENT;
	else
		ret = EXIT_LOCAL;
out:
	if (pfd >= 0)
		close(pfd);
	json_object_put(st);
	ctl_done(&ctl);
	return ret;
}

/*
 * header set-flags --iv-large-sectors | --no-iv-large-sectors DEVICE:
 * record a table option in a configured device's header (headers written
 * before the agent recorded them all say none).
 */
static int header_set_flags(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "iv-large-sectors", no_argument, NULL, 'i' },
		{ "no-iv-large-sectors", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cmk_config_device *d;
	struct cmk_header before, after;
	uint32_t flags = 0;
	bool set = false;
	struct cmk_err e;
	struct ctl c;
	int ch, ret;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'i' && ch != 'n')
			return usage();
		flags = ch == 'i' ? CMK_HDR_F_IV_LARGE_SECTORS : 0;
		set = true;
	}
	if (!set || optind != argc - 1)
		return usage();
	ret = ctl_setup(&c, false);
	if (ret)
		goto out;
	ret = EXIT_LOCAL;
	d = ctl_device(&c, argv[optind]);
	if (!d)
		goto out;
	if (cmk_kek_store_load(&c.keks, &c.cfg, false, c.audit, &e)) {
		ret = fail(&e);
		goto out;
	}
	ret = cmk_volume_set_flags(&c.vol, d, flags, &before, &after, &e);
	cmk_kek_store_forget(&c.keks);
	if (ret) {
		ret = fail_header(&e, ret);
		goto out;
	}
	if (after.sequence == before.sequence)
		printf("%s: header flags already 0x%x, unchanged\n", d->name, flags);
	else
		printf("%s: header flags 0x%x -> 0x%x%s (sequence %llu)\n", d->name,
		       before.flags, after.flags,
		       after.flags & CMK_HDR_F_IV_LARGE_SECTORS ? " (iv_large_sectors)" : "",
		       (unsigned long long)after.sequence);
out:
	ctl_done(&c);
	return ret;
}

static int do_header(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "dump"))
		return header_dump(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "set-flags"))
		return header_set_flags(argc - 1, argv + 1);
	return usage();
}

/* ---- kek rewrap / rotate -------------------------------------------------------------- */

static int kek_rewrap(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key-ref", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cmk_config_provider *pc;
	const char *key_ref = NULL;
	struct cmk_provider *p = NULL;
	struct cmk_envelope env;
	struct cmk_kms_call call;
	struct cmk_err e;
	struct ctl c;
	int ch, ret;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'k')
			return usage();
		key_ref = optarg;
	}
	if (optind != argc)
		return usage();
	cmk_envelope_init(&env);
	ret = ctl_setup(&c, false);
	if (ret)
		goto out;
	pc = NULL;
	if (cmk_envelope_read(c.cfg.kek_envelope, &env, &e) ||
	    ((pc = cmk_config_provider(&c.cfg, env.cur.provider)), 0) ||
	    cmk_provider_open(env.cur.provider, pc ? pc->kv : NULL, pc ? pc->n : 0, &p, &e) ||
	    cmk_envelope_rewrap(p, p, key_ref, NULL, &env, &call, &e) ||
	    cmk_envelope_write(c.cfg.kek_envelope, &env, &e)) {
		cmk_volume_audit(&c.vol, "rotation", NULL, NULL, &e, true);
		ret = fail(&e);
		goto out;
	}
	cmk_volume_audit(&c.vol, "rotation", NULL, "KEK re-wrapped under the CMK (kek rewrap)",
			 NULL, true);
	printf("%s: KEK version %u%s re-wrapped under %s; device headers unchanged\n",
	       c.cfg.kek_envelope, env.cur.kek_version,
	       env.has_prev ? " (and the previous version)" : "", env.cur.key_ref);
	ret = 0;
out:
	cmk_provider_close(&p);
	cmk_envelope_free(&env);
	ctl_done(&c);
	return ret;
}

/*
 * KEK rotation: (1) a new KEK version, the old one kept as "previous", is
 * written to the envelope first, so every header stays readable whatever
 * happens next; (2) each header's DEK is re-wrapped under the new KEK (data
 * and DEK unchanged, I/O goes on); (3) only when all headers are done is
 * the previous version retired (kept, unwrap-only, for sealed objects).
 * Running it again resumes (2)-(3).
 */
static int kek_rotate(int argc, char **argv)
{
	const char *envp;
	struct cmk_secret *newk = NULL;
	struct cmk_kms_call call;
	struct cmk_err e;
	struct ctl c;
	int ret, left = 0;
	uint32_t newv, oldv;

	(void)argv;
	if (argc != 1)
		return usage();
	ret = ctl_setup(&c, false);
	if (ret)
		goto out;
	envp = c.cfg.kek_envelope;
	if (cmk_kek_store_load(&c.keks, &c.cfg, false, c.audit, &e)) {
		ret = fail(&e);
		goto out;
	}
	if (!c.keks.env.has_prev) {
		if (cmk_envelope_rotate(c.keks.p, &c.keks.env, &newk, &call, &e) ||
		    cmk_envelope_write(envp, &c.keks.env, &e)) {
			cmk_secret_free(&newk);
			cmk_volume_audit(&c.vol, "rotation", NULL, NULL, &e, true);
			ret = fail(&e);
			goto out;
		}
		/* cur is now the new KEK, prev the old one. */
		c.keks.prev = c.keks.cur;
		c.keks.cur = newk;
		printf("%s: new KEK version %u (previous version %u kept until all headers are re-wrapped)\n",
		       envp, c.keks.env.cur.kek_version, c.keks.env.prev.kek_version);
	} else {
		printf("%s: resuming the rotation to KEK version %u\n", envp,
		       c.keks.env.cur.kek_version);
	}
	newv = c.keks.env.cur.kek_version;
	oldv = c.keks.env.prev.kek_version;
	for (size_t i = 0; i < c.cfg.n_devices; i++) {
		const struct cmk_config_device *d = &c.cfg.devices[i];
		enum cmk_rewrap_how how;
		struct cmk_header h;

		ret = cmk_volume_rewrap(&c.vol, d, &how, &h, &e);
		if (ret) {
			fprintf(stderr, "cmkctl: %s (%s): %s\n", d->name, d->backing, e.msg);
			cmk_volume_audit(&c.vol, "rotation", d, NULL, &e, true);
			left++;
		} else if (how == CMK_REWRAP_NO_HEADER) {
			printf("%s: no header yet (will be written under version %u)\n", d->name, newv);
		} else if (how == CMK_REWRAP_ALREADY) {
			printf("%s: already under KEK version %u\n", d->name, newv);
		} else {
			printf("%s: DEK re-wrapped under KEK version %u (header sequence %llu)\n",
			       d->name, newv, (unsigned long long)h.sequence);
			cmk_volume_audit(&c.vol, "rotation", d, "header re-wrapped under the new KEK",
					 NULL, true);
		}
	}
	ret = 0;
	if (left) {
		fprintf(stderr, "cmkctl: %d device(s) not re-wrapped; the envelope keeps KEK version %u. Fix them and run \"cmkctl kek rotate\" again to finish.\n",
			left, oldv);
		ret = EXIT_LOCAL;
		goto out;
	}
	cmk_envelope_finish_rotation(&c.keks.env);
	if (cmk_envelope_write(envp, &c.keks.env, &e)) {
		ret = fail(&e);
		goto out;
	}
	cmk_volume_audit(&c.vol, "rotation", NULL, "KEK rotation finished", NULL, true);
	printf("%s: rotation finished, KEK version %u (version %u retired: kept to open sealed objects, never used to wrap)\n",
	       envp, newv, oldv);
out:
	ctl_done(&c);
	return ret;
}

int main(int argc, char **argv)
{
	struct cmk_err e;

	if (cmk_harden_process(&e) || cmk_http_global_init(&e)) {
		fprintf(stderr, "cmkctl: %s\n", e.msg);
		return EXIT_LOCAL;
	}
	if (argc >= 3 && (!strcmp(argv[1], "--config") || !strcmp(argv[1], "-c"))) {
		config_path = argv[2];
		argv[2] = argv[0];
		argc -= 2;
		argv += 2;
	} else if (argc >= 2 && !strncmp(argv[1], "--config=", 9)) {
		config_path = argv[1] + 9;
		argv[1] = argv[0];
		argc--;
		argv++;
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
		if (!strcmp(argv[2], "rewrap"))
			return kek_rewrap(argc - 2, argv + 2);
		if (!strcmp(argv[2], "rotate"))
			return kek_rotate(argc - 2, argv + 2);
		return usage();
	}
	if (!strcmp(argv[1], "open"))
		return do_open(argc - 1, argv + 1);
	if (!strcmp(argv[1], "close"))
		return do_close(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status"))
		return do_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "check-now"))
		return do_check_now(argc - 1, argv + 1);
	if (!strcmp(argv[1], "revoke"))
		return do_revoke(argc - 1, argv + 1);
	if (!strcmp(argv[1], "pin"))
		return do_pin(argc - 1, argv + 1);
	if (!strcmp(argv[1], "header"))
		return do_header(argc - 1, argv + 1);
	if (!strcmp(argv[1], "format"))
		return do_format(argc - 1, argv + 1);
	if (!strcmp(argv[1], "seal"))
		return do_seal(argc - 1, argv + 1, false);
	if (!strcmp(argv[1], "unseal"))
		return do_seal(argc - 1, argv + 1, true);
	if (!strcmp(argv[1], "local-key"))
		return local_key(argc - 1, argv + 1);
	return usage();
}
