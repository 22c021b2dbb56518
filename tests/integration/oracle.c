// SPDX-License-Identifier: GPL-2.0
/*
 * oracle.c - cmk-oracle, the integration tests' independent view of the
 * keys.  Test-only; never installed.
 *
 * The tests own the key material at its root: they create the local CMK
 * key file and the KEK envelope themselves.  From those two files and a
 * device header, this helper recomputes every key the agent holds:
 *
 *   cmk   the 32 bytes of the local provider's key file;
 *   kek   the envelope's KEK (current and previous versions), unwrapped
 *         with the CMK (AES-256-GCM, AAD = the canonical context);
 *   dek   each device's DEK, unwrapped from its header with the KEK, and
 *         each of its two XTS halves.
 *
 * The DEK oracle is checked against an implementation we did not write:
 * "crypt" maps the device with the kernel's dm-crypt and the DEK, and the
 * tests read the data the agent's dm-cmk device wrote through it.  If the
 * oracle computed a wrong key, that read returns garbage and the test fails.
 *
 * Other secrets the test obtained from a peer it runs (a bearer token the
 * KMS emulator issued, a KEK the key owner's own client unwrapped) are
 * given as files: --secret NAME=FILE (the file's bytes, 8..128).
 *
 * Commands (exit 0 ok, 1 key found / check failed, 2 usage or oracle error):
 *
 *   scan [--cmk KEYFILE] [--kek ENVELOPE] [--device DEV]... [--secret N=F]... FILE...
 *       search each FILE for every key above, raw, as lower/upper-case hex
 *       and as standard and URL-safe base64 (at all three byte alignments,
 *       so a key inside a longer base64 string is found too).  Before
 *       scanning, every pattern is planted in a noise buffer (and, for
 *       base64, encoded inside a larger blob at each alignment) and must be
 *       found: a scanner that cannot find planted keys fails instead of
 *       reporting "clean".  Prints where a key was found, never its bytes.
 *   crypt NAME --kek ENVELOPE --device DEV
 *       create dm-crypt device NAME over DEV with DEV's current DEK (the
 *       key goes to the kernel in the table and is printed nowhere).
 *   reseal BOOT_ID --kek ENVELOPE --device DEV
 *       write DEV's header again with the same device_uuid and DEK, but
 *       boot_id BOOT_ID: what the agent of that boot wrote, i.e. what a disk
 *       attacker who saved the header in an earlier boot can write back
 *       (authentic under the KEK; only the boot id tells).
 *   plant-and-abort --cmk KEYFILE --kek ENVELOPE [--device DEV]...
 *       copy every key, raw and hex, into ordinary heap memory and abort():
 *       the positive control that a core file of a careless process does
 *       contain the keys and that "scan" finds them.
 *   jsonl FILE
 *       every line of FILE must be one JSON object with string fields
 *       "time" and "event"; prints the events, one per line.
 *   count STRING FILE
 *       how many times STRING (a test's plaintext marker, not a secret)
 *       occurs in FILE, binary-safe (busybox grep stops at NUL bytes);
 *       block devices are read with O_DIRECT, so no page cache answers.
 *   now-ms
 *       CLOCK_MONOTONIC in milliseconds (busybox date has no %N).
 *   wait-state KEY_NAME sealed|active|wiped TIMEOUT_MS [DEV]
 *       poll the kernel (netlink GET, every millisecond) until KEY_NAME is
 *       in that state and, with DEV, until a 4 KiB O_DIRECT read of DEV
 *       agrees (succeeds when active, fails with EIO otherwise).  Prints
 *       "state_ms=T io_ms=T reason=R" (CLOCK_MONOTONIC); exit 1 on timeout.
 *       Measurements only: the tests print them, never assert on them.
 *   notify-log SOCKET
 *       stand in for systemd's notification socket: bind a datagram
 *       socket at SOCKET and print "<now_ms> <message>" for every
 *       sd_notify() datagram (newlines shown as ';') until killed.  Run the
 *       agent with NOTIFY_SOCKET=SOCKET (and WATCHDOG_USEC) to see its
 *       READY=1, STATUS= and WATCHDOG=1 messages with their times.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libdevmapper.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/codec.h"
#include "format/envelope.h"
#include "core/fileio.h"
#include "device/genl.h"
#include "format/header.h"
#include "kms/provider.h"
#include "core/secret.h"

#define MAX_KEYS	32
#define MAX_PATS	(MAX_KEYS * 12)
#define PAT_MAX		256
#define SECRET_MAX	128	/* hex fits PAT_MAX; base64 fits the self-check */

struct key {
	char name[96];
	struct cmk_secret *s;
};

/* A search pattern: one encoding of one key.  Its bytes live in @buf. */
struct pat {
	int key;
	const char *enc;
	size_t len;
	unsigned char *buf;	/* into the patterns' secret area */
};

static struct key keys[MAX_KEYS];
static int nkeys;
static struct pat pats[MAX_PATS];
static int npats;
static struct cmk_secret *pat_area;
static size_t pat_used;

static void free_keys(void)
{
	for (int i = 0; i < nkeys; i++)
		cmk_secret_free(&keys[i].s);
	cmk_secret_free(&pat_area);
	nkeys = 0;
	npats = 0;
}

static int oerr(const char *what, const struct cmk_err *e)
{
	fprintf(stderr, "cmk-oracle: %s: %s\n", what, e->msg);
	return 2;
}

static int add_key(const char *name, const unsigned char *p, size_t len)
{
	struct cmk_err e = { 0 };

	if (nkeys == MAX_KEYS) {
		fprintf(stderr, "cmk-oracle: too many keys\n");
		return 2;
	}
	snprintf(keys[nkeys].name, sizeof(keys[nkeys].name), "%s", name);
	if (cmk_secret_new(&keys[nkeys].s, len, &e))
		return oerr(name, &e);
	memcpy(cmk_secret_data(keys[nkeys].s), p, len);
	nkeys++;
	return 0;
}

static int load_cmk(const char *path)
{
	struct cmk_secret *s = NULL;
	struct cmk_err e = { 0 };
	unsigned char *buf;
	int fd, ret;
	ssize_t n;

	if (cmk_secret_new(&s, 64, &e))
		return oerr(path, &e);
	buf = cmk_secret_data(s);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "cmk-oracle: %s: %s\n", path, strerror(errno));
		cmk_secret_free(&s);
		return 2;
	}
	n = read(fd, buf, 64);
	close(fd);
	if (n != 32) {
		fprintf(stderr, "cmk-oracle: %s: expected a 32-byte key file\n", path);
		cmk_secret_free(&s);
		return 2;
	}
	ret = add_key("cmk", buf, 32);
	cmk_secret_free(&s);
	return ret;
}

/* Unwrap the KEK(s) of @env_path; @kek_out gets the current one. */
static int load_kek(const char *env_path, struct cmk_envelope *env,
		    struct cmk_secret **kek_out, struct cmk_secret **prev_out)
{
	struct cmk_provider *p = NULL;
	struct cmk_err e = { 0 };
	char name[64];
	int ret = 2;

	if (cmk_envelope_read(env_path, env, &e) ||
	    cmk_provider_open(env->cur.provider, NULL, 0, &p, &e) ||
	    cmk_envelope_unwrap(p, env, false, kek_out, NULL, &e)) {
		oerr(env_path, &e);
		goto out;
	}
	snprintf(name, sizeof(name), "kek_v%u", env->cur.kek_version);
	if (add_key(name, cmk_secret_cdata(*kek_out), cmk_secret_len(*kek_out)))
		goto out;
	if (env->has_prev) {
		if (cmk_envelope_unwrap(p, env, true, prev_out, NULL, &e)) {
			oerr(env_path, &e);
			goto out;
		}
		snprintf(name, sizeof(name), "kek_v%u", env->prev.kek_version);
		if (add_key(name, cmk_secret_cdata(*prev_out),
			    cmk_secret_len(*prev_out)))
			goto out;
	}
	ret = 0;
out:
	cmk_provider_close(&p);
	return ret;
}

static int dev_dek(const char *dev, const struct cmk_envelope *env,
		   const struct cmk_secret *kek, const struct cmk_secret *prev,
		   struct cmk_header *h, struct cmk_secret **dek)
{
	struct cmk_err e = { 0 };
	const struct cmk_secret *k = kek;
	int fd;

	fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "cmk-oracle: %s: %s\n", dev, strerror(errno));
		return 2;
	}
	if (cmk_header_read(fd, h, NULL, &e)) {
		close(fd);
		return oerr(dev, &e);
	}
	close(fd);
	if (env->has_prev && h->kek_version == env->prev.kek_version)
		k = prev;
	if (!k || cmk_header_unwrap_dek(h, k, dek, &e))
		return oerr(dev, &e);
	return 0;
}

static int load_devs(char *const *devs, int ndevs, const struct cmk_envelope *env,
		     const struct cmk_secret *kek, const struct cmk_secret *prev)
{
	for (int i = 0; i < ndevs; i++) {
		struct cmk_secret *dek = NULL;
		struct cmk_header h;
		char name[96];
		const unsigned char *d;
		int ret;

		ret = dev_dek(devs[i], env, kek, prev, &h, &dek);
		if (ret)
			return ret;
		d = cmk_secret_cdata(dek);
		snprintf(name, sizeof(name), "dek:%s", devs[i]);
		ret = add_key(name, d, 64);
		snprintf(name, sizeof(name), "dek:%s:xts_half1", devs[i]);
		ret = ret ?: add_key(name, d, 32);
		snprintf(name, sizeof(name), "dek:%s:xts_half2", devs[i]);
		ret = ret ?: add_key(name, d + 32, 32);
		cmk_secret_free(&dek);
		if (ret)
			return ret;
	}
	return 0;
}

static unsigned char *pat_alloc(size_t len)
{
	unsigned char *p;

	if (pat_used + len > cmk_secret_len(pat_area))
		return NULL;
	p = cmk_secret_data(pat_area) + pat_used;
	pat_used += len;
	return p;
}

static int add_pat(int key, const char *enc, const unsigned char *src, size_t len)
{
	unsigned char *p;

	if (npats == MAX_PATS || !(p = pat_alloc(len)))
		return -1;
	memcpy(p, src, len);
	pats[npats++] = (struct pat){ .key = key, .enc = enc, .len = len, .buf = p };
	return 0;
}

/*
 * Build every encoding of every key.  Temporary encodings are made in the
 * patterns' own locked area (scratch at its end), never on the heap.
 */
static int build_patterns(void)
{
	static const char hexl[] = "0123456789abcdef", hexu[] = "0123456789ABCDEF";
	static const char *b64enc[3] = { "base64", "base64+1", "base64+2" };
	static const char *urlenc[3] = { "base64url", "base64url+1", "base64url+2" };
	struct cmk_err e = { 0 };
	unsigned char tmp[PAT_MAX];

	if (cmk_secret_new(&pat_area, CMK_SECRET_MAX, &e))
		return oerr("patterns", &e);
	for (int k = 0; k < nkeys; k++) {
		const unsigned char *d = cmk_secret_cdata(keys[k].s);
		size_t len = cmk_secret_len(keys[k].s);

		if (add_pat(k, "raw", d, len))
			goto full;
		for (size_t i = 0; i < len; i++) {
			tmp[2 * i] = hexl[d[i] >> 4];
			tmp[2 * i + 1] = hexl[d[i] & 15];
		}
		if (add_pat(k, "hex", tmp, 2 * len))
			goto full;
		for (size_t i = 0; i < len; i++) {
			tmp[2 * i] = hexu[d[i] >> 4];
			tmp[2 * i + 1] = hexu[d[i] & 15];
		}
		if (add_pat(k, "HEX", tmp, 2 * len))
			goto full;
		/*
		 * base64 of the key starting s bytes in, cut to whole 3-byte
		 * groups: this string appears in the base64 of any stream
		 * that holds the key where (position + s) % 3 == 0.
		 */
		for (int s = 0; s < 3; s++) {
			size_t n = (len - s) / 3 * 3;
			int m = EVP_EncodeBlock(tmp, d + s, (int)n);

			if (m <= 0 || add_pat(k, b64enc[s], tmp, (size_t)m))
				goto full;
			for (int i = 0; i < m; i++)
				tmp[i] = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : tmp[i];
			if (add_pat(k, urlenc[s], tmp, (size_t)m))
				goto full;
		}
	}
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return 0;
full:
	OPENSSL_cleanse(tmp, sizeof(tmp));
	fprintf(stderr, "cmk-oracle: pattern table full\n");
	return 2;
}

/* First pattern found in @buf, or -1; *@off gets its offset. */
static int find_any(const unsigned char *buf, size_t len, size_t *off)
{
	for (int i = 0; i < npats; i++) {
		const unsigned char *p = memmem(buf, len, pats[i].buf, pats[i].len);

		if (p) {
			*off = (size_t)(p - buf);
			return i;
		}
	}
	return -1;
}

/*
 * The scanner's own positive control: each pattern planted at an odd
 * offset in noise must be found, and each key inside a base64-encoded blob
 * at offsets 0, 1 and 2 must be found too.  Noise is random, so the blob
 * contains no key unless planted.
 */
static int self_check(void)
{
	struct cmk_secret *area = NULL;
	struct cmk_err e = { 0 };
	unsigned char *noise, *enc;
	size_t off;
	int bad = 0;

	if (cmk_secret_random(&area, 4096, &e))
		return oerr("self-check", &e);
	noise = cmk_secret_data(area);
	enc = noise + 1024;
	for (int i = 0; i < npats; i++) {
		memcpy(noise + 333, pats[i].buf, pats[i].len);
		if (find_any(noise, 1024, &off) < 0 || off != 333) {
			fprintf(stderr, "cmk-oracle: self-check: %s %s planted but not found\n",
				keys[pats[i].key].name, pats[i].enc);
			bad = 1;
		}
		if (getrandom(noise, 1024, 0) != 1024)
			bad = 1;
	}
	for (int k = 0; k < nkeys; k++) {
		for (int s = 0; s < 3; s++) {
			size_t klen = cmk_secret_len(keys[k].s);

			memcpy(noise + 100 + s, cmk_secret_cdata(keys[k].s), klen);
			EVP_EncodeBlock(enc, noise, 300);
			if (find_any(enc, 400, &off) < 0) {
				fprintf(stderr, "cmk-oracle: self-check: %s inside base64 at alignment %d not found\n",
					keys[k].name, s);
				bad = 1;
			}
			if (getrandom(noise, 1024, 0) != 1024)
				bad = 1;
		}
	}
	cmk_secret_free(&area);
	return bad ? 2 : 0;
}

static int scan_file(const char *path)
{
	unsigned char *map;
	struct stat st;
	size_t off = 0;
	int fd, found = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "cmk-oracle: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 2;
	}
	if (S_ISBLK(st.st_mode)) {
		unsigned long long sz = 0;

		if (ioctl(fd, _IOR(0x12, 114, size_t), &sz)) {	/* BLKGETSIZE64 */
			close(fd);
			return 2;
		}
		st.st_size = (off_t)sz;
	}
	if (st.st_size == 0) {
		close(fd);
		printf("clean %s (empty)\n", path);
		return 0;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		fprintf(stderr, "cmk-oracle: %s: mmap: %s\n", path, strerror(errno));
		return 2;
	}
	/* Report every distinct (key, encoding) once. */
	for (int i = 0; i < npats; i++) {
		const unsigned char *p = memmem(map, (size_t)st.st_size,
						pats[i].buf, pats[i].len);

		if (p) {
			off = (size_t)(p - map);
			printf("FOUND %s %s in %s at offset %zu\n",
			       keys[pats[i].key].name, pats[i].enc, path, off);
			found = 1;
		}
	}
	munmap(map, (size_t)st.st_size);
	if (!found)
		printf("clean %s (%lld bytes, %d patterns)\n", path,
		       (long long)st.st_size, npats);
	return found;
}

struct opts {
	const char *cmk, *kek;
	char *devs[8];
	int ndevs;
	char *secrets[8];
	int nsecrets;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "cmk", required_argument, NULL, 'c' },
		{ "kek", required_argument, NULL, 'k' },
		{ "device", required_argument, NULL, 'd' },
		{ "secret", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	optind = 1;
	while ((c = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
		switch (c) {
		case 'c': o->cmk = optarg; break;
		case 'k': o->kek = optarg; break;
		case 'd':
			if (o->ndevs == 8)
				return -1;
			o->devs[o->ndevs++] = optarg;
			break;
		case 's':
			if (o->nsecrets == 8 || !strchr(optarg, '='))
				return -1;
			o->secrets[o->nsecrets++] = optarg;
			break;
		default: return -1;
		}
	}
	return optind;
}

/* --secret NAME=FILE: the file's bytes are a key to search for. */
static int load_secret(const char *arg)
{
	const char *eq = strchr(arg, '=');
	struct cmk_secret *s = NULL;
	struct cmk_err e = { 0 };
	char name[64];
	ssize_t n;
	int fd, ret;

	snprintf(name, sizeof(name), "%.*s", (int)(eq - arg), arg);
	if (cmk_secret_new(&s, SECRET_MAX + 1, &e))
		return oerr(name, &e);
	fd = open(eq + 1, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, cmk_secret_data(s), SECRET_MAX + 1);
	if (fd >= 0)
		close(fd);
	if (n < 8 || n > SECRET_MAX) {
		fprintf(stderr, "cmk-oracle: --secret %s: %s must hold 8..%d bytes\n",
			name, eq + 1, SECRET_MAX);
		cmk_secret_free(&s);
		return 2;
	}
	ret = add_key(name, cmk_secret_cdata(s), (size_t)n);
	cmk_secret_free(&s);
	return ret;
}

/* Every key of @o into keys[]. */
static int load_all(const struct opts *o)
{
	struct cmk_secret *kek = NULL, *prev = NULL;
	struct cmk_envelope env;
	int ret = 0;

	cmk_envelope_init(&env);
	if (o->cmk)
		ret = load_cmk(o->cmk);
	if (!ret && o->kek)
		ret = load_kek(o->kek, &env, &kek, &prev);
	if (!ret && o->ndevs)
		ret = (o->kek && kek) ? load_devs(o->devs, o->ndevs, &env, kek, prev) : 2;
	for (int i = 0; !ret && i < o->nsecrets; i++)
		ret = load_secret(o->secrets[i]);
	cmk_secret_free(&kek);
	cmk_secret_free(&prev);
	cmk_envelope_free(&env);
	return ret;
}

static int cmd_scan(int argc, char **argv)
{
	struct opts o;
	int i = parse_opts(argc, argv, &o), ret, worst = 0;

	if (i < 0 || i >= argc || (!o.cmk && !o.kek && !o.nsecrets)) {
		fprintf(stderr, "usage: cmk-oracle scan [--cmk F] [--kek F] [--device D]... [--secret NAME=F]... FILE...\n");
		return 2;
	}
	ret = load_all(&o);
	ret = ret ?: build_patterns();
	ret = ret ?: self_check();
	if (ret) {
		free_keys();
		return 2;
	}
	printf("oracle:");
	for (int k = 0; k < nkeys; k++)
		printf(" %s", keys[k].name);
	printf("; %d patterns; planted-key self-check passed\n", npats);
	for (; i < argc; i++) {
		ret = scan_file(argv[i]);
		if (ret > worst)
			worst = ret;
	}
	free_keys();
	return worst;
}

static int cmd_crypt(int argc, char **argv)
{
	struct cmk_secret *kek = NULL, *prev = NULL, *dek = NULL, *params = NULL;
	static const char hexl[] = "0123456789abcdef";
	struct cmk_envelope env;
	struct cmk_err e = { 0 };
	struct dm_task *dmt = NULL;
	struct cmk_header h;
	unsigned long long bytes = 0, len;
	const char *name;
	char *p;
	struct opts o;
	int i, fd, ret = 2;

	/* argv[1] is NAME; the options follow it. */
	i = argc >= 2 ? parse_opts(argc - 1, argv + 1, &o) : -1;
	if (i < 0 || i != argc - 1 || !o.kek || o.ndevs != 1) {
		fprintf(stderr, "usage: cmk-oracle crypt NAME --kek F --device D\n");
		return 2;
	}
	name = argv[1];
	cmk_envelope_init(&env);
	if (load_kek(o.kek, &env, &kek, &prev) ||
	    dev_dek(o.devs[0], &env, kek, prev, &h, &dek))
		goto out;
	fd = open(o.devs[0], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, _IOR(0x12, 114, size_t), &bytes)) {
		fprintf(stderr, "cmk-oracle: %s: cannot get its size\n", o.devs[0]);
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	len = (bytes / 512 - h.data_offset) / (h.sector_size / 512) * (h.sector_size / 512);
	if (cmk_secret_new(&params, 1024, &e)) {
		oerr("crypt", &e);
		goto out;
	}
	p = (char *)cmk_secret_data(params);
	memcpy(p, "aes-xts-plain64 ", 16);
	for (int j = 0; j < 64; j++) {
		p[16 + 2 * j] = hexl[cmk_secret_cdata(dek)[j] >> 4];
		p[16 + 2 * j + 1] = hexl[cmk_secret_cdata(dek)[j] & 15];
	}
	snprintf(p + 16 + 128, 1024 - 16 - 128, " 0 %s %llu%s", o.devs[0],
		 (unsigned long long)h.data_offset,
		 h.sector_size == 4096 ? " 1 sector_size:4096" : "");
	dm_udev_set_sync_support(0);
	dmt = dm_task_create(DM_DEVICE_CREATE);
	if (!dmt || !dm_task_set_name(dmt, name) ||
	    !dm_task_add_target(dmt, 0, len, "crypt", p) || !dm_task_run(dmt)) {
		fprintf(stderr, "cmk-oracle: dm-crypt device %s could not be created\n", name);
		goto out;
	}
	dm_task_update_nodes();
	ret = 0;
out:
	if (dmt)
		dm_task_destroy(dmt);	/* libdevmapper wipes its table copy */
	cmk_secret_free(&params);
	cmk_secret_free(&dek);
	cmk_secret_free(&kek);
	cmk_secret_free(&prev);
	cmk_envelope_free(&env);
	return ret;
}

static int cmd_reseal(int argc, char **argv)
{
	struct cmk_secret *kek = NULL, *prev = NULL, *dek = NULL;
	struct cmk_envelope env;
	struct cmk_err e = { 0 };
	struct cmk_header h;
	uint8_t boot[CMK_UUID_LEN];
	struct opts o;
	int i, fd, ret = 2;

	/* argv[1] is BOOT_ID; the options follow it. */
	i = argc >= 2 ? parse_opts(argc - 1, argv + 1, &o) : -1;
	if (i < 0 || i != argc - 1 || !o.kek || o.ndevs != 1 ||
	    cmk_uuid_parse(argv[1], boot)) {
		fprintf(stderr, "usage: cmk-oracle reseal BOOT_ID --kek F --device D\n");
		return 2;
	}
	cmk_envelope_init(&env);
	if (load_kek(o.kek, &env, &kek, &prev) ||
	    dev_dek(o.devs[0], &env, kek, prev, &h, &dek))
		goto out;
	fd = open(o.devs[0], O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "cmk-oracle: %s: %s\n", o.devs[0], strerror(errno));
		goto out;
	}
	memcpy(h.boot_id, boot, CMK_UUID_LEN);
	if (cmk_header_write(fd, &h, h.kek_version == env.cur.kek_version ? kek : prev,
			     dek, &e))
		oerr(o.devs[0], &e);
	else
		ret = 0;
	close(fd);
out:
	cmk_secret_free(&dek);
	cmk_secret_free(&kek);
	cmk_secret_free(&prev);
	cmk_envelope_free(&env);
	free_keys();
	return ret;
}

static int cmd_plant_and_abort(int argc, char **argv)
{
	static const char hexl[] = "0123456789abcdef";
	struct opts o;

	if (parse_opts(argc, argv, &o) != argc || load_all(&o))
		return 2;
	for (int k = 0; k < nkeys; k++) {
		size_t len = cmk_secret_len(keys[k].s);
		unsigned char *raw = malloc(len), *hex = malloc(2 * len);
		const unsigned char *d = cmk_secret_cdata(keys[k].s);

		if (!raw || !hex)
			return 2;
		memcpy(raw, d, len);
		for (size_t i = 0; i < len; i++) {
			hex[2 * i] = (unsigned char)hexl[d[i] >> 4];
			hex[2 * i + 1] = (unsigned char)hexl[d[i] & 15];
		}
		/* Deliberately leaked: this process exists to be dumped. */
	}
	signal(SIGABRT, SIG_DFL);
	abort();
}

static int cmd_jsonl(int argc, char **argv)
{
	char *text = NULL, *line, *save = NULL;
	struct cmk_err e = { 0 };
	size_t len = 0;
	int n = 0, bad = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: cmk-oracle jsonl FILE\n");
		return 2;
	}
	if (cmk_read_file(argv[1], 16 << 20, &text, &len, &e))
		return oerr(argv[1], &e);
	if (len && text[len - 1] != '\n') {
		fprintf(stderr, "cmk-oracle: %s: last line is not terminated\n", argv[1]);
		bad = 1;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		enum json_tokener_error jerr;
		struct json_tokener *tok = json_tokener_new();
		struct json_object *o, *ev, *tm;

		n++;
		o = tok ? json_tokener_parse_ex(tok, line, (int)strlen(line)) : NULL;
		jerr = tok ? json_tokener_get_error(tok) : json_tokener_error_depth;
		if (!o || jerr != json_tokener_success ||
		    tok->char_offset != (int)strlen(line) ||
		    !json_object_is_type(o, json_type_object) ||
		    !json_object_object_get_ex(o, "event", &ev) ||
		    !json_object_is_type(ev, json_type_string) ||
		    !json_object_object_get_ex(o, "time", &tm) ||
		    !json_object_is_type(tm, json_type_string)) {
			fprintf(stderr, "cmk-oracle: %s:%d: not one JSON object with \"time\" and \"event\"\n",
				argv[1], n);
			bad = 1;
		} else {
			printf("%s\n", json_object_get_string(ev));
		}
		json_object_put(o);
		if (tok)
			json_tokener_free(tok);
	}
	free(text);
	return bad;
}

static int cmd_count(int argc, char **argv)
{
	const size_t chunk = 1 << 20;
	size_t mlen, keep = 0;
	unsigned long long count = 0;
	unsigned char *buf;
	void *mem;
	struct stat st;
	int fd;

	if (argc != 3 || !(mlen = strlen(argv[1])) || mlen > 4096) {
		fprintf(stderr, "usage: cmk-oracle count STRING FILE\n");
		return 2;
	}
	if (stat(argv[2], &st) || posix_memalign(&mem, 4096, chunk + 4096)) {
		fprintf(stderr, "cmk-oracle: %s: %s\n", argv[2], strerror(errno));
		return 2;
	}
	buf = mem;
	fd = open(argv[2], O_RDONLY | O_CLOEXEC | (S_ISBLK(st.st_mode) ? O_DIRECT : 0));
	if (fd < 0) {
		fprintf(stderr, "cmk-oracle: %s: %s\n", argv[2], strerror(errno));
		free(mem);
		return 2;
	}
	/* buf[0..keep) holds the tail of the previous chunk (< mlen bytes). */
	for (;;) {
		unsigned char *p, *end;
		ssize_t n;

		n = read(fd, buf + 4096, chunk);
		if (n < 0) {
			fprintf(stderr, "cmk-oracle: %s: %s\n", argv[2], strerror(errno));
			close(fd);
			free(mem);
			return 2;
		}
		if (n == 0)
			break;
		p = buf + 4096 - keep;
		end = buf + 4096 + n;
		while ((p = memmem(p, (size_t)(end - p), argv[1], mlen))) {
			count++;
			p += mlen;
		}
		keep = mlen - 1 < (size_t)n ? mlen - 1 : (size_t)n;
		memmove(buf + 4096 - keep, end - keep, keep);
	}
	close(fd);
	free(mem);
	printf("%llu\n", count);
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmd_wait_state(int argc, char **argv)
{
	struct cmk_genl *g = NULL;
	struct cmk_err e = { 0 };
	struct cmk_dev_info info;
	long long deadline, t_state = -1, t_io = -1;
	const char *last = "absent";
	void *buf = NULL;
	uint32_t want, reason = 0;
	int fd = -1;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: cmk-oracle wait-state KEY_NAME STATE TIMEOUT_MS [DEV]\n");
		return 2;
	}
	if (strcmp(argv[2], "sealed") == 0)
		want = DM_CMK_STATE_SEALED;
	else if (strcmp(argv[2], "active") == 0)
		want = DM_CMK_STATE_ACTIVE;
	else if (strcmp(argv[2], "wiped") == 0)
		want = DM_CMK_STATE_WIPED;
	else
		return 2;
	deadline = now_ms() + atoll(argv[3]);
	if (cmk_genl_open(&g, &e))
		return oerr("netlink", &e);
	if (argc < 5)
		t_io = 0;
	else if (posix_memalign(&buf, 4096, 4096))
		return 2;
	while ((t_state < 0 || t_io < 0) && now_ms() < deadline) {
		if (t_state < 0) {
			if (cmk_genl_get(g, argv[1], &info, &e) == 0) {
				last = cmk_state_str(info.state);
				if (info.state == want) {
					t_state = now_ms();
					reason = info.reason;
				}
			}
		}
		if (t_io < 0) {
			if (fd < 0)
				fd = open(argv[4], O_RDONLY | O_DIRECT | O_CLOEXEC);
			if (fd >= 0) {
				ssize_t n = pread(fd, buf, 4096, 0);
				bool ok = n == 4096;

				if (ok == (want == DM_CMK_STATE_ACTIVE) &&
				    (ok || errno == EIO))
					t_io = now_ms();
			}
		}
		if (t_state < 0 || t_io < 0)
			usleep(1000);
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	cmk_genl_close(&g);
	if (t_state < 0 || t_io < 0) {
		printf("timeout: state %s, I/O %s\n", last,
		       t_io < 0 ? "never agreed" : "agreed");
		return 1;
	}
	printf("state_ms=%lld io_ms=%lld reason=%s\n", t_state,
	       argc < 5 ? t_state : t_io,
	       want == DM_CMK_STATE_WIPED ? cmk_wipe_reason_str(reason) : "-");
	return 0;
}

static int cmd_notify_log(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char msg[4096];
	int fd;

	if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: cmk-oracle notify-log SOCKET\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "cmk-oracle: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		ssize_t n = recv(fd, msg, sizeof(msg) - 1, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "cmk-oracle: recv: %s\n", strerror(errno));
			return 2;
		}
		msg[n] = '\0';
		for (char *p = msg; *p; p++)
			if (*p == '\n')
				*p = ';';
		printf("%lld %s\n", now_ms(), msg);
	}
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "now-ms") == 0) {
		printf("%lld\n", now_ms());
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "count") == 0)
		return cmd_count(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "wait-state") == 0)
		return cmd_wait_state(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "scan") == 0)
		return cmd_scan(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "crypt") == 0)
		return cmd_crypt(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "reseal") == 0)
		return cmd_reseal(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "plant-and-abort") == 0)
		return cmd_plant_and_abort(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "jsonl") == 0)
		return cmd_jsonl(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "notify-log") == 0)
		return cmd_notify_log(argc - 1, argv + 1);
	fprintf(stderr, "usage: cmk-oracle scan|crypt|reseal|plant-and-abort|jsonl|count|now-ms|wait-state|notify-log ...\n");
	return 2;
}
