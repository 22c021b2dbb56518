// SPDX-License-Identifier: GPL-2.0
/*
 * test_azure_vault_pin.c - "vault = https://..." pins the Key Vault an
 * envelope may name, as aws pins key_id and gcp key_name: a managed
 * identity's token is good for every vault the identity may use, so an
 * envelope naming another vault must not make the agent fetch a token for
 * it or send it one.  Oracle: a loopback listener stands for "another
 * vault" and counts the connections it got - none when refused; the pinned
 * vault itself (spelled differently: case, :443) is let through, and
 * reaching it shows as a connection.  Nothing answers, so no token is ever
 * fetched (IMDS points at a closed port).
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "kms/provider.h"
#include "kms/azure/provider_azure.h"

static int listener(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Connections that reached @fd so far (accepted and closed). */
static int connections(int fd)
{
	int n = 0, c;

	while ((c = accept(fd, NULL, NULL)) >= 0) {
		close(c);
		n++;
	}
	return n;
}

static int unwrap_with(struct cmk_provider *p, const char *key_ref, struct cmk_err *e)
{
	static const unsigned char ct[256] = { 1 };
	struct cmk_secret *kek = NULL;
	unsigned char *blob = NULL;
	size_t bl = 0;
	int ret;

	assert_int_equal(cmk_azure_blob_pack(CMK_AZURE_ALG_RSA_OAEP_256, "0123abcd", ct,
					     sizeof(ct), &blob, &bl, e), 0);
	ret = cmk_provider_unwrap(p, key_ref, blob, bl, NULL, &kek, NULL, e);
	assert_null(kek);
	free(blob);
	return ret;
}

static void azure_adversarial_vault_pin_refuses_other_vault(void **state)
{
	struct cmk_kv kv[] = {
		{ "vault", "https://pinned.vault.azure.net/", 1 },
		{ "imds_endpoint", "http://127.0.0.1:9", 2 },
		{ "verify_challenge_resource", "no", 3 },
		{ "max_attempts", "1", 4 },
		{ "timeout_ms", "500", 5 },
	};
	struct cmk_provider *p = NULL;
	struct cmk_secret *kek = tu_secret_of("0123456789abcdef0123456789abcdef");
	unsigned char *w = NULL;
	size_t wl = 0;
	struct cmk_err e;
	char other[128];
	int port, fd = listener(&port);

	(void)state;
	snprintf(other, sizeof(other), "https://127.0.0.1:%d/keys/cmk", port);
	assert_int_equal(cmk_provider_open("azure", kv, 5, &p, &e), 0);
	assert_int_equal(unwrap_with(p, other, &e), -EPERM);
	assert_int_equal(e.cls, CMK_EC_LOCAL);
	assert_contains(e.msg, "pins vault = https://pinned.vault.azure.net");
	assert_contains(e.msg, other);
	assert_int_equal(cmk_provider_wrap(p, other, kek, NULL, &w, &wl, NULL, &e), -EPERM);
	assert_null(w);
	assert_int_equal(connections(fd), 0);
	cmk_provider_close(&p);
	cmk_secret_free(&kek);
	close(fd);
}

static void azure_adversarial_vault_pin_lets_pinned_vault_through(void **state)
{
	char pin[128], ref[128];
	struct cmk_kv kv[] = {
		{ "vault", pin, 1 },
		{ "imds_endpoint", "http://127.0.0.1:9", 2 },
		{ "verify_challenge_resource", "no", 3 },
		{ "max_attempts", "1", 4 },
		{ "timeout_ms", "500", 5 },
		{ "connect_timeout_ms", "500", 6 },
	};
	struct cmk_provider *p = NULL;
	struct cmk_err e;
	int port, fd = listener(&port);

	(void)state;
	snprintf(pin, sizeof(pin), "HTTPS://127.0.0.1:%d", port);
	snprintf(ref, sizeof(ref), "https://127.0.0.1:%d/keys/cmk", port);
	assert_int_equal(cmk_provider_open("azure", kv, 6, &p, &e), 0);
	/* past the pin: the request goes out, nobody answers (transient) */
	assert_true(unwrap_with(p, ref, &e) < 0);
	assert_int_equal(e.cls, CMK_EC_TRANSIENT);
	assert_true(connections(fd) >= 1);
	cmk_provider_close(&p);
	close(fd);
}

static void azure_adversarial_vault_pin_setting_checked_at_open(void **state)
{
	static const char *const bad[] = {
		"http://pinned.vault.azure.net", "https://pinned.vault.azure.net/keys/k",
		"pinned.vault.azure.net", "https://", "https://a b",
	};
	struct cmk_provider *p = NULL;
	struct cmk_err e;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cmk_kv kv = { "vault", bad[i], 1 };

		if (cmk_provider_open("azure", &kv, 1, &p, &e) != -EINVAL)
			fail_msg("vault = %s accepted", bad[i]);
		assert_contains(e.msg, "vault");
	}
	{
		struct cmk_kv kv = { "vault", "https://pinned.vault.azure.net:443", 1 };

		assert_int_equal(cmk_provider_open("azure", &kv, 1, &p, &e), 0);
		cmk_provider_close(&p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(azure_adversarial_vault_pin_refuses_other_vault),
		cmocka_unit_test(azure_adversarial_vault_pin_lets_pinned_vault_through),
		cmocka_unit_test(azure_adversarial_vault_pin_setting_checked_at_open),
	};

	unsetenv("AZURE_CLIENT_SECRET");
	unsetenv("AZURE_CA_BUNDLE");
	return cmocka_run_group_tests_name("azure_vault_pin", tests, NULL, NULL);
}
