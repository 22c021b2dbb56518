// SPDX-License-Identifier: GPL-2.0
/*
 * cmk_bench - small helpers for the dm-cmk benchmark guest.
 *
 *   cmk_bench setkey NAME KEYFILE [LEASE_MS]
 *       install the 64-byte key read from KEYFILE for key_name NAME
 *       (generic netlink KEY_SET; default lease 600000 ms).
 *   cmk_bench cipher SIZE SECONDS THREADS
 *       raw kernel xts(aes) encryption throughput through AF_ALG: each of
 *       THREADS threads encrypts SIZE-byte requests (one request per
 *       sector, as a dm target issues them) for SECONDS seconds.  Prints
 *       "cipher size=SIZE threads=THREADS mib_s=<MiB/s> driver=<name>".
 *
 * Never prints key bytes.  Exit status 0 on success, 1 on error with a
 * message on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_alg.h>

#include "cmk_lib.h"

#ifndef SOL_ALG
#define SOL_ALG 279
#endif

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

struct cipher_job {
	size_t size;
	double seconds;
	int tfm;
	unsigned long long bytes;
	int err;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *cipher_thread(void *arg)
{
	struct cipher_job *j = arg;
	char cbuf[CMSG_SPACE(sizeof(__u32)) +
		  CMSG_SPACE(sizeof(struct af_alg_iv) + 16)] = { 0 };
	struct msghdr msg = { 0 };
	struct cmsghdr *c;
	struct af_alg_iv *iv;
	struct iovec io;
	unsigned char *in, *out;
	unsigned long long sector = 0;
	double end;
	int op;

	op = accept(j->tfm, NULL, 0);
	in = malloc(j->size);
	out = malloc(j->size);
	if (op < 0 || !in || !out) {
		j->err = op < 0 ? errno : ENOMEM;
		goto out;
	}
	memset(in, 0x5a, j->size);
	io.iov_base = in;
	io.iov_len = j->size;
	msg.msg_iov = &io;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_ALG;
	c->cmsg_type = ALG_SET_OP;
	c->cmsg_len = CMSG_LEN(sizeof(__u32));
	*(__u32 *)CMSG_DATA(c) = ALG_OP_ENCRYPT;
	c = CMSG_NXTHDR(&msg, c);
	c->cmsg_level = SOL_ALG;
	c->cmsg_type = ALG_SET_IV;
	c->cmsg_len = CMSG_LEN(sizeof(struct af_alg_iv) + 16);
	iv = (struct af_alg_iv *)CMSG_DATA(c);
	iv->ivlen = 16;

	end = now_s() + j->seconds;
	do {
		/* 64 requests between clock reads: plain64 IVs, one per sector */
		for (int i = 0; i < 64; i++) {
			memset(iv->iv, 0, 16);
			memcpy(iv->iv, &sector, sizeof(sector));
			sector++;
			if (sendmsg(op, &msg, 0) != (ssize_t)j->size ||
			    read(op, out, j->size) != (ssize_t)j->size) {
				j->err = errno ? errno : EIO;
				goto out;
			}
			j->bytes += j->size;
		}
	} while (now_s() < end);
out:
	free(in);
	free(out);
	if (op >= 0)
		close(op);
	return NULL;
}

static void driver_name(char *buf, size_t sz)
{
	char line[256], name[128] = "";
	FILE *f = fopen("/proc/crypto", "r");
	int prio = -1, best = -1, is_xts = 0;

	snprintf(buf, sz, "unknown");
	if (!f)
		return;
	/* the highest-priority driver registered for "xts(aes)" */
	while (fgets(line, sizeof(line), f)) {
		char v[128];

		if (sscanf(line, "name : %127s", v) == 1)
			is_xts = !strcmp(v, "xts(aes)");
		else if (sscanf(line, "driver : %127s", v) == 1)
			snprintf(name, sizeof(name), "%s", v);
		else if (sscanf(line, "priority : %d", &prio) == 1 && is_xts &&
			 prio > best) {
			best = prio;
			snprintf(buf, sz, "%s", name);
		}
	}
	fclose(f);
}

static int do_cipher(size_t size, double seconds, int threads)
{
	struct sockaddr_alg sa = {
		.salg_family = AF_ALG,
		.salg_type = "skcipher",
		.salg_name = "xts(aes)",
	};
	struct cipher_job *jobs;
	pthread_t *tids;
	unsigned char key[64];
	unsigned long long total = 0;
	char drv[128];
	double t0, t;
	int tfm, i, err = 0;

	if (!size || size % 16 || threads < 1 || seconds <= 0) {
		fprintf(stderr, "cmk_bench: cipher: bad arguments\n");
		return 1;
	}
	tfm = socket(AF_ALG, SOCK_SEQPACKET, 0);
	if (tfm < 0 || bind(tfm, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "cmk_bench: AF_ALG xts(aes): %s\n",
			strerror(errno));
		return 1;
	}
	/* any key with distinct halves; it protects nothing */
	for (i = 0; i < 64; i++)
		key[i] = (unsigned char)(i * 7 + 1);
	if (setsockopt(tfm, SOL_ALG, ALG_SET_KEY, key, sizeof(key))) {
		fprintf(stderr, "cmk_bench: ALG_SET_KEY: %s\n",
			strerror(errno));
		return 1;
	}
	jobs = calloc(threads, sizeof(*jobs));
	tids = calloc(threads, sizeof(*tids));
	if (!jobs || !tids)
		return 1;
	t0 = now_s();
	for (i = 0; i < threads; i++) {
		jobs[i] = (struct cipher_job){ .size = size,
					       .seconds = seconds, .tfm = tfm };
		pthread_create(&tids[i], NULL, cipher_thread, &jobs[i]);
	}
	for (i = 0; i < threads; i++) {
		pthread_join(tids[i], NULL);
		total += jobs[i].bytes;
		if (jobs[i].err)
			err = jobs[i].err;
	}
	t = now_s() - t0;
	close(tfm);
	free(jobs);
	free(tids);
	if (err) {
		fprintf(stderr, "cmk_bench: xts(aes) encrypt: %s\n",
			strerror(err));
		return 1;
	}
	driver_name(drv, sizeof(drv));
	printf("cipher size=%zu threads=%d mib_s=%.2f driver=%s\n", size,
	       threads, total / t / (1 << 20), drv);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "setkey"))
		return do_setkey(argv[2], argv[3],
				 argc > 4 ? strtoul(argv[4], NULL, 0) : 600000);
	if (argc == 5 && !strcmp(argv[1], "cipher"))
		return do_cipher(strtoul(argv[2], NULL, 0), atof(argv[3]),
				 atoi(argv[4]));
	fprintf(stderr,
		"usage: cmk_bench setkey NAME KEYFILE [LEASE_MS]\n"
		"       cmk_bench cipher SIZE SECONDS THREADS\n");
	return 2;
}
