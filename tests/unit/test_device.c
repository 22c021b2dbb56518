// SPDX-License-Identifier: GPL-2.0
/*
 * test_device.c - boot paths: ephemeral re-key (crypto-shredding) and
 * persistent open, across a KEK rotation.  Oracles: header contents read
 * back, DEK equality/inequality, and the previous boot's header no longer
 * yielding its DEK.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "device.h"
#include "keys.h"
#include "provider_local.h"

struct fx {
	int fd;
	struct cmk_provider *p;
	struct cmk_envelope env;
	struct cmk_secret *kek;
	struct cmk_keks k;
};

static int setup(void **state)
{
	static struct fx fx;
	struct cmk_encctx ctx;
	struct cmk_err e;

	if (tu_setup_tmpdir(state))
		return -1;
	memset(&fx, 0, sizeof(fx));
	cmk_encctx_init(&ctx);
	fx.fd = open(tu_path("dev.img"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fx.fd < 0 || ftruncate(fx.fd, 2 << 20) ||
	    cmk_local_key_create(tu_path("cmk.key"), &e) ||
	    cmk_provider_open("local", NULL, 0, &fx.p, &e) ||
	    cmk_envelope_create(fx.p, tu_path("cmk.key"), &ctx, &fx.env, &fx.kek, NULL, &e))
		return -1;
	fx.k.env = &fx.env;
	fx.k.cur = fx.kek;
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	close(fx->fd);
	cmk_provider_close(&fx->p);
	cmk_envelope_free(&fx->env);
	cmk_secret_free(&fx->kek);
	return tu_teardown_tmpdir(state);
}

static void device_ephemeral_rekey_shreds_previous_boot(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h1, h2, old;
	struct cmk_secret *d1 = NULL, *d2 = NULL, *x = NULL;
	uint8_t copy1[CMK_HDR_SIZE];
	struct cmk_err e;

	assert_int_equal(cmk_device_rekey_ephemeral(fx->fd, &fx->k, 4096, false, &h1, &d1, &e), 0);
	assert_int_equal(pread(fx->fd, copy1, sizeof(copy1), 0), CMK_HDR_SIZE);
	assert_int_equal(cmk_device_rekey_ephemeral(fx->fd, &fx->k, 4096, false, &h2, &d2, &e), 0);
	assert_false(cmk_secret_equal(d1, d2));
	assert_memory_equal(h1.device_uuid, h2.device_uuid, 16);
	assert_memory_not_equal(h1.boot_id, h2.boot_id, 16);
	assert_int_equal(h2.sequence, h1.sequence + 1);
	/* neither on-disk copy still wraps the first boot's DEK */
	for (off_t off = 0; off <= 65536; off += 65536) {
		uint8_t b[CMK_HDR_SIZE];

		assert_int_equal(pread(fx->fd, b, sizeof(b), off), CMK_HDR_SIZE);
		assert_memory_not_equal(b, copy1, CMK_HDR_SIZE);
		assert_int_equal(cmk_header_decode(b, "X", &old, &e), 0);
		assert_int_equal(cmk_header_unwrap_dek(&old, fx->kek, &x, &e), 0);
		assert_true(cmk_secret_equal(x, d2));
		cmk_secret_free(&x);
	}
	cmk_secret_free(&d1);
	cmk_secret_free(&d2);
}

static void device_ephemeral_refuses_persistent_header(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_secret *d = NULL;
	struct cmk_err e;

	assert_int_equal(cmk_device_format_persistent(fx->fd, &fx->k, 512, false, &h, &d, &e), 0);
	cmk_secret_free(&d);
	assert_int_equal(cmk_device_rekey_ephemeral(fx->fd, &fx->k, 512, false, &h, &d, &e), -EEXIST);
	assert_contains(e.msg, "persistent");
	assert_null(d);
}

static void device_ephemeral_replaces_damaged_ephemeral_header(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_secret *d = NULL;
	uint8_t junk[CMK_HDR_SIZE];
	struct cmk_err e;

	/* magic, version and mode "ephemeral", but no valid checksum */
	memset(junk, 0, sizeof(junk));
	memcpy(junk, CMK_HDR_MAGIC, 8);
	cmk_put_le32(junk + CMK_HDR_OFF_VERSION, CMK_HDR_VERSION);
	cmk_put_le32(junk + CMK_HDR_OFF_MODE, CMK_MODE_EPHEMERAL);
	memset(junk + 2048, 0xee, 64);
	assert_int_equal(pwrite(fx->fd, junk, sizeof(junk), 0), CMK_HDR_SIZE);
	assert_int_equal(cmk_header_read(fx->fd, &h, NULL, &e), -EUCLEAN);
	assert_int_equal(cmk_device_rekey_ephemeral(fx->fd, &fx->k, 4096, false, &h, &d, &e), 0);
	assert_int_equal(cmk_header_read(fx->fd, &h, NULL, &e), 0);
	assert_int_equal(h.mode, CMK_MODE_EPHEMERAL);
	cmk_secret_free(&d);
}

/* Write @len bytes of @c at @off. */
static void fill(int fd, off_t off, int c, size_t len)
{
	uint8_t b[4096];

	memset(b, c, sizeof(b));
	for (size_t done = 0; done < len; done += sizeof(b))
		assert_int_equal(pwrite(fd, b, sizeof(b), off + (off_t)done), sizeof(b));
}

static void assert_untouched(int fd, off_t off, int c, size_t len)
{
	uint8_t b[4096];

	for (size_t done = 0; done < len; done += sizeof(b)) {
		assert_int_equal(pread(fd, b, sizeof(b), off + (off_t)done), sizeof(b));
		for (size_t i = 0; i < sizeof(b); i++)
			assert_int_equal(b[i], c);
	}
}

static void device_ephemeral_refuses_unknown_data(void **state)
{
	/* where a file system or other data could sit in the header area */
	static const off_t where[] = { 0, 1024, 65536, CMK_HDR_AREA - 4096 };
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_secret *d = NULL;
	struct cmk_err e;

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		assert_int_equal(ftruncate(fx->fd, 0), 0);
		assert_int_equal(ftruncate(fx->fd, 2 << 20), 0);
		fill(fx->fd, where[i], 0x53, 4096);
		assert_int_equal(cmk_device_rekey_ephemeral(fx->fd, &fx->k, 4096, false,
							    &h, &d, &e), -EEXIST);
		assert_contains(e.msg, "not zero");
		assert_contains(e.msg, "format = always");
		assert_null(d);
		assert_untouched(fx->fd, where[i], 0x53, 4096);
		assert_int_equal(cmk_header_read(fx->fd, &h, NULL, &e), -ENODATA);
	}
	/* format = always: the operator said this disk is scratch */
	assert_int_equal(cmk_device_rekey_ephemeral(fx->fd, &fx->k, 4096, true, &h, &d, &e), 0);
	assert_int_equal(cmk_header_read(fx->fd, &h, NULL, &e), 0);
	cmk_secret_free(&d);
}

static void device_ephemeral_refuses_damaged_foreign_header(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_secret *d = NULL;
	uint8_t junk[CMK_HDR_SIZE];
	struct cmk_err e;

	memset(junk, 0, sizeof(junk));
	memcpy(junk, CMK_HDR_MAGIC, 8);	/* magic but no mode */
	assert_int_equal(pwrite(fx->fd, junk, sizeof(junk), 0), CMK_HDR_SIZE);
	assert_int_equal(cmk_device_rekey_ephemeral(fx->fd, &fx->k, 4096, false, &h, &d, &e),
			 -EEXIST);
	assert_contains(e.msg, "does not say ephemeral");
	assert_null(d);
	assert_int_equal(cmk_device_rekey_ephemeral(fx->fd, &fx->k, 4096, true, &h, &d, &e), 0);
	cmk_secret_free(&d);
}

static void device_ephemeral_refuses_damaged_persistent_header(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_secret *d = NULL;
	uint8_t b[CMK_HDR_SIZE];
	struct cmk_err e;

	assert_int_equal(cmk_device_format_persistent(fx->fd, &fx->k, 4096, false, &h, &d, &e), 0);
	cmk_secret_free(&d);
	/* damage both copies' checksums */
	for (off_t off = 0; off <= 65536; off += 65536) {
		assert_int_equal(pread(fx->fd, b, sizeof(b), off), CMK_HDR_SIZE);
		b[CMK_HDR_OFF_CHECKSUM] ^= 1;
		assert_int_equal(pwrite(fx->fd, b, sizeof(b), off), CMK_HDR_SIZE);
	}
	assert_int_equal(cmk_header_read(fx->fd, &h, NULL, &e), -EUCLEAN);
	/* refused even with format = always */
	for (int force = 0; force <= 1; force++) {
		assert_int_equal(cmk_device_rekey_ephemeral(fx->fd, &fx->k, 4096, force,
							    &h, &d, &e), -EEXIST);
		assert_contains(e.msg, "damaged persistent");
		assert_null(d);
	}
	assert_int_equal(pread(fx->fd, b, sizeof(b), 0), CMK_HDR_SIZE);
	assert_int_equal(cmk_get_le32(b + CMK_HDR_OFF_MODE), CMK_MODE_PERSISTENT);
}

static void device_persistent_open_returns_same_dek(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_secret *d = NULL, *d2 = NULL;
	struct cmk_err e;

	assert_int_equal(cmk_device_open_persistent(fx->fd, &fx->k, &h, &d, &e), -ENODATA);
	assert_int_equal(cmk_device_format_persistent(fx->fd, &fx->k, 4096, false, &h, &d, &e), 0);
	assert_int_equal(cmk_device_format_persistent(fx->fd, &fx->k, 4096, false, &h, &d2, &e),
			 -EEXIST);
	assert_int_equal(cmk_device_open_persistent(fx->fd, &fx->k, &h, &d2, &e), 0);
	assert_true(cmk_secret_equal(d, d2));
	cmk_secret_free(&d);
	cmk_secret_free(&d2);
}

static void device_persistent_open_refuses_other_kek(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_secret *d = NULL;
	struct cmk_envelope other;
	struct cmk_keks k2;
	struct cmk_encctx ctx;
	struct cmk_secret *kek2 = NULL;
	struct cmk_err e;

	assert_int_equal(cmk_device_format_persistent(fx->fd, &fx->k, 4096, false, &h, &d, &e), 0);
	cmk_secret_free(&d);
	cmk_encctx_init(&ctx);
	assert_int_equal(cmk_envelope_create(fx->p, tu_path("cmk.key"), &ctx, &other, &kek2,
					     NULL, &e), 0);
	k2 = (struct cmk_keks){ .env = &other, .cur = kek2 };
	assert_int_equal(cmk_device_open_persistent(fx->fd, &k2, &h, &d, &e), -EKEYREJECTED);
	assert_contains(e.msg, "wrong envelope for this device");
	cmk_envelope_free(&other);
	cmk_secret_free(&kek2);
}

static void device_persistent_open_during_kek_rotation(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_secret *d = NULL, *d2 = NULL, *new_kek = NULL;
	struct cmk_keks k;
	struct cmk_err e;

	assert_int_equal(cmk_device_format_persistent(fx->fd, &fx->k, 4096, false, &h, &d, &e), 0);
	assert_int_equal(cmk_envelope_rotate(fx->p, &fx->env, &new_kek, NULL, &e), 0);
	/* header still under version 1: needs the previous KEK */
	k = (struct cmk_keks){ .env = &fx->env, .cur = new_kek };
	assert_int_equal(cmk_device_open_persistent(fx->fd, &k, &h, &d2, &e), -EKEYREJECTED);
	assert_contains(e.msg, "version 1");
	k.prev = fx->kek;
	assert_int_equal(cmk_device_open_persistent(fx->fd, &k, &h, &d2, &e), 0);
	assert_true(cmk_secret_equal(d, d2));
	cmk_secret_free(&d2);
	/* re-wrap the header: now the current KEK alone opens it */
	assert_int_equal(cmk_header_rewrap(fx->fd, fx->kek, new_kek, fx->env.kek_id, 2, &h, &e), 0);
	cmk_envelope_finish_rotation(&fx->env);
	k.prev = NULL;
	assert_int_equal(cmk_device_open_persistent(fx->fd, &k, &h, &d2, &e), 0);
	assert_true(cmk_secret_equal(d, d2));
	cmk_secret_free(&d);
	cmk_secret_free(&d2);
	cmk_secret_free(&new_kek);
}

static void device_persistent_open_refuses_ephemeral_header(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_secret *d = NULL;
	struct cmk_err e;

	assert_int_equal(cmk_device_rekey_ephemeral(fx->fd, &fx->k, 4096, false, &h, &d, &e), 0);
	cmk_secret_free(&d);
	assert_int_equal(cmk_device_open_persistent(fx->fd, &fx->k, &h, &d, &e), -EINVAL);
	assert_contains(e.msg, "ephemeral");
	assert_null(d);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(device_ephemeral_rekey_shreds_previous_boot),
		T(device_ephemeral_refuses_persistent_header),
		T(device_ephemeral_replaces_damaged_ephemeral_header),
		T(device_ephemeral_refuses_unknown_data),
		T(device_ephemeral_refuses_damaged_foreign_header),
		T(device_ephemeral_refuses_damaged_persistent_header),
		T(device_persistent_open_returns_same_dek),
		T(device_persistent_open_refuses_other_kek),
		T(device_persistent_open_during_kek_rotation),
		T(device_persistent_open_refuses_ephemeral_header),
	};

	return cmocka_run_group_tests_name("device", tests, NULL, NULL);
}
