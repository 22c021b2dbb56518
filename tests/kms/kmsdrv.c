// SPDX-License-Identifier: GPL-2.0
/*
 * kmsdrv.c - drives one provider of the agent library from a script, for
 * the tests against real KMS peers in tests/kms.  One long-lived process,
 * so credential caching and refresh (IMDS) behave as in cmk-agent.
 *
 * usage: kmsdrv PROVIDER ENVELOPE [setting=value]...
 * then one command per line on stdin, one answer line on stdout:
 *   check            -> "ok <ms> <request id>" | "err <class> <reason> <message>"
 *                       (a throttled error with a Retry-After:
 *                       "err transient throttled retry_after_ms=<ms> <message>")
 *   attempts N       -> "ok 0 -"; every later KMS request takes at most N
 *                       HTTP attempts, as on cmk-agent's worker (1); 0: the
 *                       provider's max_attempts
 *   unwrap           -> the same, for an unwrap whose KEK is wiped at once
 *   bench N          -> "bench n=N median_ms=M p90_ms=P max_ms=X" (N unwraps)
 *   deadline MS      -> "ok 0 -"; every later check and unwrap runs under
 *                       one deadline MS from its start (as cmk-agent's
 *                       check_timeout_ms, deadline.h); 0: none
 *   rewrap KEYREF    -> re-wrap the envelope under KEYREF and write it back
 *   reload           -> re-read the envelope file
 *   forget           -> "ok 0 -": reset the provider as cmk-agent's every
 *                       wipe does (cmk_provider_reset(): connection,
 *                       tokens, temporary credentials)
 *   snapshot FILE    -> write this process's memory as a core dump would
 *                       hold it to FILE: "ok <bytes> <mappings>"
 *   plant HEX        -> decode HEX into a heap block and free it unwiped
 *                       (the snapshot's positive control: the bytes exist
 *                       nowhere else, the command line holds only hex)
 * Never prints key material.
 *
 * The snapshot is the host-side stand-in for the agent's core dump: every
 * readable mapping the kernel would dump (private or anonymous, not
 * MADV_DONTDUMP - "dd" in /proc/self/smaps -, not I/O or PFN maps), read
 * through /proc/self/mem, including freed heap memory.  Scan it with
 * cmk-oracle scan --secret NAME=FILE.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/deadline.h"
#include "format/envelope.h"
#include "kms/http.h"
#include "kms/provider.h"
#include "core/secret.h"

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return x < y ? -1 : x > y;
}

static void report(int ret, const struct cmk_kms_call *call,
		   const struct cmk_err *e)
{
	if (ret && e->retry_after_ms)
		printf("err %s %s retry_after_ms=%u %s\n", cmk_err_class_name(e->cls),
		       cmk_reason_name(e->reason), e->retry_after_ms, e->msg);
	else if (ret)
		printf("err %s %s %s\n", cmk_err_class_name(e->cls),
		       cmk_reason_name(e->reason), e->msg);
	else
		printf("ok %ld %s\n", call->latency_ms,
		       call->request_id[0] ? call->request_id : "-");
	fflush(stdout);
}

static int dumpable(const char *flags, const char *perms, const char *path)
{
	if (perms[0] != 'r' || strstr(flags, " dd") || strstr(flags, " io") ||
	    strstr(flags, " pf"))
		return 0;
	if (!strcmp(path, "[vvar]") || !strcmp(path, "[vsyscall]"))
		return 0;
	/* shared file mappings are the file's, not the process's */
	return perms[3] == 'p' || !path[0] || !strncmp(path, "/dev/zero", 9) ||
	       !strncmp(path, "/SYSV", 5);
}

static int snapshot(const char *out, long *bytes, int *maps)
{
	static unsigned char buf[1 << 16];
	char line[512], perms[8], path[256], hdr[512] = "";
	unsigned long lo = 0, hi = 0;
	FILE *sm = fopen("/proc/self/smaps", "re");
	int mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ret = 0;

	*bytes = 0;
	*maps = 0;
	if (!sm || mem < 0 || fd < 0) {
		ret = -1;
		goto out;
	}
	while (fgets(line, sizeof(line), sm)) {
		if (strncmp(line, "VmFlags:", 8)) {
			if (strchr(line, '-') && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
				snprintf(hdr, sizeof(hdr), "%s", line);
			continue;
		}
		path[0] = '\0';
		if (sscanf(hdr, "%*x-%*x %7s %*s %*s %*s %255[^\n]", perms, path) < 1 ||
		    !dumpable(line + 8, perms, path) || hi - lo > (1UL << 32))
			continue;
		(*maps)++;
		for (unsigned long a = lo; a < hi; a += sizeof(buf)) {
			size_t want = hi - a < sizeof(buf) ? hi - a : sizeof(buf);
			ssize_t n = pread(mem, buf, want, (off_t)a);

			if (n <= 0)
				break;
			if (write(fd, buf, (size_t)n) != n) {
				ret = -1;
				goto out;
			}
			*bytes += n;
		}
	}
out:
	memset(buf, 0, sizeof(buf));
	if (sm)
		fclose(sm);
	if (mem >= 0)
		close(mem);
	if (fd >= 0 && close(fd))
		ret = -1;
	return ret;
}

int main(int argc, char **argv)
{
	struct cmk_kv kv[32];
	struct cmk_provider *p = NULL;
	struct cmk_envelope env;
	struct cmk_kms_call call;
	struct cmk_err e;
	char line[4096];
	uint64_t deadline_ms = 0;
	size_t n = 0;
	int ret;

	if (argc < 3) {
		fprintf(stderr, "usage: kmsdrv PROVIDER ENVELOPE [k=v]...\n");
		return 2;
	}
	if (cmk_harden_process(&e) || cmk_http_global_init(&e)) {
		fprintf(stderr, "kmsdrv: %s\n", e.msg);
		return 1;
	}
	for (int i = 3; i < argc && n < 32; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq) {
			fprintf(stderr, "kmsdrv: %s is not k=v\n", argv[i]);
			return 2;
		}
		*eq = '\0';
		kv[n++] = (struct cmk_kv){ argv[i], eq + 1, 0 };
	}
	cmk_envelope_init(&env);
	if (cmk_provider_open(argv[1], kv, n, &p, &e) ||
	    cmk_envelope_read(argv[2], &env, &e)) {
		fprintf(stderr, "kmsdrv: %s\n", e.msg);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		memset(&call, 0, sizeof(call));
		if (strcmp(line, "check") == 0) {
			cmk_deadline_set(deadline_ms ? cmk_deadline_now_ms() + deadline_ms : 0);
			ret = cmk_envelope_check(p, &env, &call, &e);
			cmk_deadline_set(0);
			report(ret, &call, &e);
		} else if (strcmp(line, "unwrap") == 0) {
			CMK_SECRET_AUTO struct cmk_secret *kek = NULL;

			cmk_deadline_set(deadline_ms ? cmk_deadline_now_ms() + deadline_ms : 0);
			ret = cmk_envelope_unwrap(p, &env, false, &kek, &call, &e);
			cmk_deadline_set(0);
			report(ret, &call, &e);
		} else if (strncmp(line, "attempts ", 9) == 0) {
			cmk_http_thread_max_attempts(atoi(line + 9));
			report(0, &call, &e);
		} else if (strncmp(line, "deadline ", 9) == 0) {
			deadline_ms = strtoull(line + 9, NULL, 10);
			report(0, &call, &e);
		} else if (strncmp(line, "bench ", 6) == 0) {
			int k = atoi(line + 6), bad = 0;
			long *t = calloc(k > 0 ? (size_t)k : 1, sizeof(long));

			for (int i = 0; t && i < k; i++) {
				CMK_SECRET_AUTO struct cmk_secret *kek = NULL;
				long t0 = now_ms();

				if (cmk_envelope_unwrap(p, &env, false, &kek, &call, &e))
					bad++;
				t[i] = now_ms() - t0;
			}
			if (t && k > 0) {
				qsort(t, (size_t)k, sizeof(long), cmp_long);
				printf("bench n=%d failed=%d median_ms=%ld p90_ms=%ld max_ms=%ld\n",
				       k, bad, t[k / 2], t[k * 9 / 10], t[k - 1]);
			} else {
				printf("err local local bad count\n");
			}
			fflush(stdout);
			free(t);
		} else if (strncmp(line, "rewrap ", 7) == 0) {
			ret = cmk_envelope_rewrap(p, p, line + 7, NULL, &env, &call, &e);
			if (!ret)
				ret = cmk_envelope_write(argv[2], &env, &e);
			report(ret, &call, &e);
		} else if (strcmp(line, "forget") == 0) {
			cmk_provider_reset(p);
			report(0, &call, &e);
		} else if (strcmp(line, "reload") == 0) {
			cmk_envelope_free(&env);
			cmk_envelope_init(&env);
			ret = cmk_envelope_read(argv[2], &env, &e);
			report(ret, &call, &e);
		} else if (strncmp(line, "snapshot ", 9) == 0) {
			long bytes;
			int maps;

			if (snapshot(line + 9, &bytes, &maps))
				printf("err local local snapshot failed\n");
			else
				printf("ok %ld %d\n", bytes, maps);
			fflush(stdout);
		} else if (strncmp(line, "plant ", 6) == 0) {
			size_t l = strlen(line + 6) / 2;
			unsigned char *b = calloc(1, 64 + l);

			/* past the bytes free() reuses for its list pointers */
			for (size_t i = 0; b && i < l; i++) {
				unsigned int x;

				if (sscanf(line + 6 + 2 * i, "%2x", &x) == 1)
					b[64 + i] = (unsigned char)x;
			}
			free(b);
			printf("ok 0 -\n");
			fflush(stdout);
		} else if (strcmp(line, "quit") == 0) {
			break;
		} else {
			printf("err local local unknown command\n");
			fflush(stdout);
		}
	}
	cmk_envelope_free(&env);
	cmk_provider_close(&p);
	return 0;
}
