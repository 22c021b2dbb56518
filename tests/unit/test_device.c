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

#include "device/binding.h"
#include "core/codec.h"
#include "device/device.h"
#include "core/keys.h"
#include "kms/local/provider_local.h"

struct fx {
	int fd;
	struct cmk_provider *p;
	struct cmk_envelope env;
	struct cmk_secret *kek;
	struct cmk_kek_pair k;
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


static const uint8_t boot1[CMK_UUID_LEN] = { 0xb0, 0x07, 1 };
static const uint8_t boot2[CMK_UUID_LEN] = { 0xb0, 0x07, 2 };

/* What the configuration and this machine expect of device "dev". */
static struct cmk_device_want want(enum cmk_mode mode, uint32_t sector_size)
{
	struct cmk_device_want w = {
		.name = "dev", .mode = mode, .sector_size = sector_size,
	};

	memcpy(w.this_boot, boot1, CMK_UUID_LEN);
	return w;
}

static int rekey(struct fx *fx, uint32_t sector_size, bool force,
		 struct cmk_header *h, struct cmk_secret **d, struct cmk_err *e)
{
	struct cmk_device_want w = want(CMK_MODE_EPHEMERAL, sector_size);

	return cmk_device_rekey_ephemeral(fx->fd, &fx->k, &w, force, false, h, d, e);
}

static int format_persistent(struct cmk_kek_pair *k, int fd, uint32_t sector_size,
			     struct cmk_header *h, struct cmk_secret **d,
			     struct cmk_err *e)
{
	return cmk_device_format(fd, k, CMK_MODE_PERSISTENT, sector_size, 0, boot1,
				 false, h, d, e);
}

/* A persistent open with no pin yet (first use). */
static int open_persistent(const struct cmk_kek_pair *k, int fd, struct cmk_header *h,
			   struct cmk_secret **d, struct cmk_err *e)
{
	struct cmk_device_want w = want(CMK_MODE_PERSISTENT, 4096);

	return cmk_device_unwrap(fd, k, &w, h, d, e);
}

static void device_ephemeral_rekey_shreds_previous_boot(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h1, h2, old;
	struct cmk_secret *d1 = NULL, *d2 = NULL, *x = NULL;
	uint8_t copy1[CMK_HDR_SIZE];
	struct cmk_err e;

	struct cmk_device_want w2 = want(CMK_MODE_EPHEMERAL, 4096);

	assert_int_equal(rekey(fx, 4096, false, &h1, &d1, &e), 0);
	assert_memory_equal(h1.boot_id, boot1, 16);	/* the boot that wrote it */
	assert_int_equal(pread(fx->fd, copy1, sizeof(copy1), 0), CMK_HDR_SIZE);
	/* the next boot */
	memcpy(w2.this_boot, boot2, CMK_UUID_LEN);
	assert_int_equal(cmk_device_rekey_ephemeral(fx->fd, &fx->k, &w2, false, false,
						    &h2, &d2, &e), 0);
	assert_false(cmk_secret_equal(d1, d2));
	assert_memory_equal(h1.device_uuid, h2.device_uuid, 16);
	assert_memory_equal(h2.boot_id, boot2, 16);
	/* a new boot counts again: the last boot's copies are never unwrapped */
	assert_int_equal(h2.sequence, 1);
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

	assert_int_equal(format_persistent(&fx->k, fx->fd, 512, &h, &d, &e), 0);
	cmk_secret_free(&d);
	assert_int_equal(rekey(fx, 512, false, &h, &d, &e), -EEXIST);
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
	assert_int_equal(rekey(fx, 4096, false, &h, &d, &e), 0);
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
		assert_int_equal(rekey(fx, 4096, false, &h, &d, &e), -EEXIST);
		assert_contains(e.msg, "not zero");
		assert_contains(e.msg, "format = always");
		assert_null(d);
		assert_untouched(fx->fd, where[i], 0x53, 4096);
		assert_int_equal(cmk_header_read(fx->fd, &h, NULL, &e), -ENODATA);
	}
	/* format = always: the operator said this disk is scratch */
	assert_int_equal(rekey(fx, 4096, true, &h, &d, &e), 0);
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
	assert_int_equal(rekey(fx, 4096, false, &h, &d, &e),
			 -EEXIST);
	assert_contains(e.msg, "does not say ephemeral");
	assert_null(d);
	assert_int_equal(rekey(fx, 4096, true, &h, &d, &e), 0);
	cmk_secret_free(&d);
}

static void device_ephemeral_refuses_damaged_persistent_header(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_secret *d = NULL;
	uint8_t b[CMK_HDR_SIZE];
	struct cmk_err e;

	assert_int_equal(format_persistent(&fx->k, fx->fd, 4096, &h, &d, &e), 0);
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
		assert_int_equal(rekey(fx, 4096, force, &h, &d, &e), -EEXIST);
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

	assert_int_equal(open_persistent(&fx->k, fx->fd, &h, &d, &e), -ENODATA);
	assert_int_equal(format_persistent(&fx->k, fx->fd, 4096, &h, &d, &e), 0);
	assert_int_equal(format_persistent(&fx->k, fx->fd, 4096, &h, &d2, &e),
			 -EEXIST);
	assert_int_equal(open_persistent(&fx->k, fx->fd, &h, &d2, &e), 0);
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
	struct cmk_kek_pair k2;
	struct cmk_encctx ctx;
	struct cmk_secret *kek2 = NULL;
	struct cmk_err e;

	assert_int_equal(format_persistent(&fx->k, fx->fd, 4096, &h, &d, &e), 0);
	cmk_secret_free(&d);
	cmk_encctx_init(&ctx);
	assert_int_equal(cmk_envelope_create(fx->p, tu_path("cmk.key"), &ctx, &other, &kek2,
					     NULL, &e), 0);
	k2 = (struct cmk_kek_pair){ .env = &other, .cur = kek2 };
	assert_int_equal(open_persistent(&k2, fx->fd, &h, &d, &e), -EKEYREJECTED);
	assert_contains(e.msg, "wrong envelope for this device");
	cmk_envelope_free(&other);
	cmk_secret_free(&kek2);
}

static void device_persistent_open_during_kek_rotation(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h, r0;
	struct cmk_secret *d = NULL, *d2 = NULL, *new_kek = NULL;
	struct cmk_kek_pair k;
	struct cmk_err e;

	assert_int_equal(format_persistent(&fx->k, fx->fd, 4096, &h, &d, &e), 0);
	assert_int_equal(cmk_envelope_rotate(fx->p, &fx->env, &new_kek, NULL, &e), 0);
	/* header still under version 1: needs the previous KEK */
	k = (struct cmk_kek_pair){ .env = &fx->env, .cur = new_kek };
	assert_int_equal(open_persistent(&k, fx->fd, &h, &d2, &e), -EKEYREJECTED);
	assert_contains(e.msg, "version 1");
	k.prev = fx->kek;
	assert_int_equal(open_persistent(&k, fx->fd, &h, &d2, &e), 0);
	assert_true(cmk_secret_equal(d, d2));
	cmk_secret_free(&d2);
	/* re-wrap the header: now the current KEK alone opens it */
	assert_int_equal(cmk_header_rewrap(fx->fd, fx->kek, new_kek, fx->env.kek_id, 2, &r0, &h, &e), 0);
	cmk_envelope_finish_rotation(&fx->env);
	k.prev = NULL;
	assert_int_equal(open_persistent(&k, fx->fd, &h, &d2, &e), 0);
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

	assert_int_equal(rekey(fx, 4096, false, &h, &d, &e), 0);
	cmk_secret_free(&d);
	assert_int_equal(open_persistent(&fx->k, fx->fd, &h, &d, &e), -EMEDIUMTYPE);
	assert_contains(e.msg, "header is ephemeral but the device is configured persistent");
	assert_contains(e.msg, "ephemeral");
	assert_null(d);
}

/*
 * The repro: two persistent devices under one KEK, A's first MiB
 * copied onto B.  The copy is authentic under the KEK; only the pin on
 * B's device_uuid tells it is not B's.  Oracle: the refusal, its message,
 * no DEK handed out, and B's own header still opening.
 */
static void device_adversarial_header_swap_refused_by_pin(void **state)
{
	struct fx *fx = *state;
	struct cmk_device_want w = want(CMK_MODE_PERSISTENT, 4096);
	struct cmk_header ha, hb, h;
	struct cmk_secret *da = NULL, *db = NULL, *d = NULL;
	uint8_t area[CMK_HDR_AREA];
	char ua[CMK_UUID_STR], ub[CMK_UUID_STR];
	struct cmk_err e;
	int fdb;

	fdb = open(tu_path("b.img"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fdb >= 0);
	assert_int_equal(ftruncate(fdb, 2 << 20), 0);
	assert_int_equal(format_persistent(&fx->k, fx->fd, 4096, &ha, &da, &e), 0);
	assert_int_equal(format_persistent(&fx->k, fdb, 4096, &hb, &db, &e), 0);
	/* B is pinned to its own header's device_uuid */
	w.has_pin = true;
	memcpy(w.pin, hb.device_uuid, CMK_UUID_LEN);
	w.pin_from = "uuid in agent.conf";
	assert_int_equal(cmk_device_unwrap(fdb, &fx->k, &w, &h, &d, &e), 0);
	assert_true(cmk_secret_equal(d, db));
	cmk_secret_free(&d);

	/* the attacker: dd if=A of=B bs=1M count=1 */
	assert_int_equal(pread(fx->fd, area, sizeof(area), 0), sizeof(area));
	assert_int_equal(pwrite(fdb, area, sizeof(area), 0), sizeof(area));
	assert_int_equal(cmk_device_unwrap(fdb, &fx->k, &w, &h, &d, &e), -EXDEV);
	assert_null(d);
	cmk_uuid_format(ha.device_uuid, ua);
	cmk_uuid_format(hb.device_uuid, ub);
	assert_contains(e.msg, "cmkctl pin dev");
	assert_contains(e.msg, ua);
	assert_contains(e.msg, ub);
	assert_contains(e.msg, "uuid in agent.conf");
	/* without the pin the copy would hand out A's DEK: the attack is real */
	w.has_pin = false;
	assert_int_equal(cmk_device_unwrap(fdb, &fx->k, &w, &h, &d, &e), 0);
	assert_true(cmk_secret_equal(d, da));
	cmk_secret_free(&d);
	cmk_secret_free(&da);
	cmk_secret_free(&db);
	close(fdb);
}

/*
 * A saved ephemeral header of an earlier boot written back: authentic, but
 * its boot_id is not this boot's.  Never unwrapped: not by a restore, and
 * not even with a record that matches it; an open replaces it.
 */
static void device_adversarial_previous_boot_header_refused(void **state)
{
	struct fx *fx = *state;
	struct cmk_device_want w = want(CMK_MODE_EPHEMERAL, 4096);
	struct cmk_header h1, h;
	struct cmk_secret *d1 = NULL, *d = NULL;
	struct cmk_opened rec;
	char b1[CMK_UUID_STR];
	struct cmk_err e;

	/* written by the previous boot (boot2), read in this one (boot1) */
	memcpy(w.this_boot, boot2, CMK_UUID_LEN);
	assert_int_equal(cmk_device_rekey_ephemeral(fx->fd, &fx->k, &w, false, false,
						    &h1, &d1, &e), 0);
	memcpy(w.this_boot, boot1, CMK_UUID_LEN);
	cmk_opened_of(&h1, &rec);
	w.running = true;
	w.opened = &rec;
	assert_int_equal(cmk_device_unwrap(fx->fd, &fx->k, &w, &h, &d, &e), -ESTALE);
	assert_null(d);
	cmk_uuid_format(boot2, b1);
	assert_contains(e.msg, "another boot");
	assert_contains(e.msg, b1);
	w.running = false;
	assert_int_equal(cmk_device_unwrap(fx->fd, &fx->k, &w, &h, &d, &e), -ESTALE);
	/* the next open replaces it with this boot's */
	assert_int_equal(rekey(fx, 4096, false, &h, &d, &e), 0);
	assert_false(cmk_secret_equal(d, d1));
	assert_memory_equal(h.boot_id, boot1, 16);
	cmk_secret_free(&d);
	cmk_secret_free(&d1);
}

/*
 * A rollback inside one boot: the device was re-keyed (closed and opened
 * again), and the older header of the same boot is written back.  Same
 * boot_id, same device_uuid; only the record's sequence tells.
 */
static void device_adversarial_rollback_within_boot_refused(void **state)
{
	struct fx *fx = *state;
	struct cmk_device_want w = want(CMK_MODE_EPHEMERAL, 4096);
	struct cmk_header h1, h2, h;
	struct cmk_secret *d1 = NULL, *d2 = NULL, *d = NULL;
	uint8_t old[2][CMK_HDR_SIZE];
	struct cmk_opened rec;
	struct cmk_err e;

	assert_int_equal(rekey(fx, 4096, false, &h1, &d1, &e), 0);
	assert_int_equal(pread(fx->fd, old[0], CMK_HDR_SIZE, 0), CMK_HDR_SIZE);
	assert_int_equal(pread(fx->fd, old[1], CMK_HDR_SIZE, 65536), CMK_HDR_SIZE);
	assert_int_equal(rekey(fx, 4096, false, &h2, &d2, &e), 0);
	cmk_opened_of(&h2, &rec);
	w.running = true;
	w.opened = &rec;
	assert_int_equal(cmk_device_unwrap(fx->fd, &fx->k, &w, &h, &d, &e), 0);
	assert_true(cmk_secret_equal(d, d2));
	cmk_secret_free(&d);

	assert_int_equal(pwrite(fx->fd, old[0], CMK_HDR_SIZE, 0), CMK_HDR_SIZE);
	assert_int_equal(pwrite(fx->fd, old[1], CMK_HDR_SIZE, 65536), CMK_HDR_SIZE);
	assert_int_equal(cmk_device_unwrap(fx->fd, &fx->k, &w, &h, &d, &e), -ESTALE);
	assert_null(d);
	assert_contains(e.msg, "it has sequence 1 ");
	assert_contains(e.msg, "but sequence 2 ");
	/* the same header without the record: the one that was rolled back */
	w.running = false;
	assert_int_equal(cmk_device_unwrap(fx->fd, &fx->k, &w, &h, &d, &e), 0);
	assert_true(cmk_secret_equal(d, d1));
	cmk_secret_free(&d);
	cmk_secret_free(&d1);
	cmk_secret_free(&d2);
}

/* A running device's header from another device of this boot: uuid differs. */
static void device_adversarial_running_header_of_other_device_refused(void **state)
{
	struct fx *fx = *state;
	struct cmk_device_want w = want(CMK_MODE_EPHEMERAL, 4096);
	struct cmk_header h1, h;
	struct cmk_secret *d1 = NULL, *d = NULL;
	struct cmk_opened rec;
	struct cmk_err e;

	assert_int_equal(rekey(fx, 4096, false, &h1, &d1, &e), 0);
	cmk_opened_of(&h1, &rec);
	rec.device_uuid[0] ^= 1;	/* what was opened was another device */
	w.running = true;
	w.opened = &rec;
	assert_int_equal(cmk_device_unwrap(fx->fd, &fx->k, &w, &h, &d, &e), -EXDEV);
	assert_contains(e.msg, "device_uuid");
	assert_null(d);
	/* and a running device without any record is not trusted either */
	w.opened = NULL;
	assert_int_equal(cmk_device_unwrap(fx->fd, &fx->k, &w, &h, &d, &e), -ESTALE);
	assert_contains(e.msg, "no record");
	cmk_secret_free(&d1);
}

/*
 * Section 4 of the issue: a persistent device formatted with 512-byte
 * sectors, configured (by default) as 4096, used to open and read garbage.
 * The header and the table must agree on the sector size and IV options.
 */
static void device_adversarial_sector_size_or_iv_mismatch_refused(void **state)
{
	struct fx *fx = *state;
	struct cmk_device_want w = want(CMK_MODE_PERSISTENT, 4096);
	struct cmk_header h;
	struct cmk_secret *d = NULL;
	struct cmk_err e;

	assert_int_equal(format_persistent(&fx->k, fx->fd, 512, &h, &d, &e), 0);
	cmk_secret_free(&d);
	assert_int_equal(cmk_device_unwrap(fx->fd, &fx->k, &w, &h, &d, &e), -EMEDIUMTYPE);
	assert_contains(e.msg, "sector size 512");
	assert_contains(e.msg, "sector_size = 512");
	assert_null(d);
	w.sector_size = 512;
	assert_int_equal(cmk_device_unwrap(fx->fd, &fx->k, &w, &h, &d, &e), 0);
	cmk_secret_free(&d);
	/* iv_large_sectors in the table, not in the header */
	w.flags = CMK_HDR_F_IV_LARGE_SECTORS;
	assert_int_equal(cmk_device_unwrap(fx->fd, &fx->k, &w, &h, &d, &e), -EMEDIUMTYPE);
	assert_contains(e.msg, "iv_large_sectors");
	assert_null(d);
	/* and a header that has it opens only with it */
	assert_int_equal(cmk_device_format(fx->fd, &fx->k, CMK_MODE_PERSISTENT, 4096,
					   CMK_HDR_F_IV_LARGE_SECTORS, boot1, true, &h, &d, &e), 0);
	cmk_secret_free(&d);
	assert_int_equal(h.flags, CMK_HDR_F_IV_LARGE_SECTORS);
	w.sector_size = 4096;
	assert_int_equal(cmk_device_unwrap(fx->fd, &fx->k, &w, &h, &d, &e), 0);
	cmk_secret_free(&d);
	w.flags = 0;
	assert_int_equal(cmk_device_unwrap(fx->fd, &fx->k, &w, &h, &d, &e), -EMEDIUMTYPE);
	/* an ephemeral re-key writes the configured geometry */
	assert_int_equal(ftruncate(fx->fd, 0), 0);
	assert_int_equal(ftruncate(fx->fd, 2 << 20), 0);
	w = want(CMK_MODE_EPHEMERAL, 512);
	w.flags = CMK_HDR_F_IV_LARGE_SECTORS;
	assert_int_equal(cmk_device_rekey_ephemeral(fx->fd, &fx->k, &w, false, false,
						    &h, &d, &e), 0);
	cmk_secret_free(&d);
	assert_int_equal(cmk_header_read(fx->fd, &h, NULL, &e), 0);
	assert_int_equal(h.sector_size, 512);
	assert_int_equal(h.flags, CMK_HDR_F_IV_LARGE_SECTORS);
}

/* An ephemeral re-key drops a device_uuid another device presents. */
static void device_adversarial_ephemeral_rekey_new_uuid_on_request(void **state)
{
	struct fx *fx = *state;
	struct cmk_device_want w = want(CMK_MODE_EPHEMERAL, 4096);
	struct cmk_header h1, h2;
	struct cmk_secret *d = NULL;
	struct cmk_err e;

	assert_int_equal(rekey(fx, 4096, false, &h1, &d, &e), 0);
	cmk_secret_free(&d);
	assert_int_equal(cmk_device_rekey_ephemeral(fx->fd, &fx->k, &w, false, true,
						    &h2, &d, &e), 0);
	cmk_secret_free(&d);
	assert_memory_not_equal(h1.device_uuid, h2.device_uuid, 16);
}

/*
 * What a first format cut by a power failure leaves (Documentation/
 * formats.rst): the header area zeroed, then only the first @keep bytes of
 * the first header copy it writes (at @copy) reached the disk, with
 * sequence @seq.  Built from a real first format's header, so the fields
 * the tear kept are the ones cmk_header_write() writes.
 */
static void torn_first_format(struct fx *fx, off_t copy, size_t keep, uint64_t seq)
{
	struct cmk_header h;
	struct cmk_secret *d = NULL;
	uint8_t b[CMK_HDR_SIZE];
	struct cmk_err e;

	assert_int_equal(ftruncate(fx->fd, 0), 0);
	assert_int_equal(ftruncate(fx->fd, 2 << 20), 0);
	assert_int_equal(format_persistent(&fx->k, fx->fd, 4096, &h, &d, &e), 0);
	cmk_secret_free(&d);
	assert_int_equal(h.sequence, 1);	/* what a first format writes */
	assert_int_equal(pread(fx->fd, b, sizeof(b), copy), CMK_HDR_SIZE);
	assert_int_equal(ftruncate(fx->fd, 0), 0);
	assert_int_equal(ftruncate(fx->fd, 2 << 20), 0);
	memset(b + keep, 0, sizeof(b) - keep);
	if (keep > CMK_HDR_OFF_SEQUENCE)
		cmk_put_le64(b + CMK_HDR_OFF_SEQUENCE, seq);
	assert_int_equal(pwrite(fx->fd, b, sizeof(b), copy), CMK_HDR_SIZE);
	assert_int_equal(cmk_header_read(fx->fd, &h, NULL, &e), -EUCLEAN);
}

/*
 * Formatting without force is refused with a message that says @why, and
 * leaves the first 1 MiB as it was.
 */
static void assert_format_refused_because(struct fx *fx, const char *why)
{
	static uint8_t before[CMK_HDR_AREA], after[CMK_HDR_AREA];
	struct cmk_header h;
	struct cmk_secret *d = NULL;
	bool interrupted = true;
	struct cmk_err e;

	assert_int_equal(pread(fx->fd, before, sizeof(before), 0), CMK_HDR_AREA);
	assert_int_equal(cmk_device_may_format(fx->fd, &interrupted, &e), -EEXIST);
	assert_false(interrupted);
	assert_contains(e.msg, why);
	assert_int_equal(format_persistent(&fx->k, fx->fd, 4096, &h, &d, &e), -EEXIST);
	assert_contains(e.msg, why);
	assert_contains(e.msg, "--force");
	assert_null(d);
	assert_int_equal(pread(fx->fd, after, sizeof(after), 0), CMK_HDR_AREA);
	assert_memory_equal(after, before, CMK_HDR_AREA);
}

/*
 * No magic in either copy, but the first 1 MiB is not zero: a file system,
 * a partition table, or a used dm-cmk device with only its two magics
 * wiped.  Oracle: -EEXIST naming the non-zero area and --force, nothing
 * written; an all-zero device still formats.
 */
static void device_format_refuses_nonzero_area_without_header(void **state)
{
	static const off_t where[] = {
		0, 510, 1080, 8, 65536 + 8, 4096, CMK_HDR_AREA - 1,
	};
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_secret *d = NULL;
	uint8_t one = 0x53;
	bool interrupted;
	struct cmk_err e;

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		assert_int_equal(ftruncate(fx->fd, 0), 0);
		assert_int_equal(ftruncate(fx->fd, 2 << 20), 0);
		assert_int_equal(pwrite(fx->fd, &one, 1, where[i]), 1);
		assert_int_equal(cmk_header_read(fx->fd, &h, NULL, &e), -ENODATA);
		assert_format_refused_because(fx, "first 1 MiB is not zero");
	}
	/* a used device: formatted, then both magics zeroed */
	assert_int_equal(ftruncate(fx->fd, 0), 0);
	assert_int_equal(ftruncate(fx->fd, 2 << 20), 0);
	assert_int_equal(format_persistent(&fx->k, fx->fd, 4096, &h, &d, &e), 0);
	cmk_secret_free(&d);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pwrite(fx->fd, "\0\0\0\0\0\0\0\0", 8,
					i * 65536 + CMK_HDR_OFF_MAGIC), 8);
	assert_int_equal(cmk_header_read(fx->fd, &h, NULL, &e), -ENODATA);
	assert_format_refused_because(fx, "first 1 MiB is not zero");
	/* control: the zeroed device formats without force */
	assert_int_equal(ftruncate(fx->fd, 0), 0);
	assert_int_equal(ftruncate(fx->fd, 2 << 20), 0);
	assert_int_equal(cmk_device_may_format(fx->fd, &interrupted, &e), 0);
	assert_false(interrupted);
	assert_int_equal(format_persistent(&fx->k, fx->fd, 4096, &h, &d, &e), 0);
	cmk_secret_free(&d);
}

/* Formatting without force is refused: the device has a (damaged) header. */
static void assert_format_refused(struct fx *fx)
{
	assert_format_refused_because(fx, "dm-cmk header; formatting would destroy its data");
}

/*
 * Oracle: a first format cut inside the first copy it writes (copy A: the
 * first 512-byte sector of it, sequence 1; only the first 32 bytes,
 * sequence still 0; all but the checksum), copy B and the rest of the area
 * zero, is formatted again without force, and the new header opens with
 * the DEK it returned.
 */
static void device_format_crash_torn_first_copy_continues(void **state)
{
	static const struct {
		size_t keep;
		uint64_t seq;
	} cut[] = {
		{ 512, 1 }, { 32, 0 }, { 512, 0 }, { 4064, 1 },
	};
	struct fx *fx = *state;
	struct cmk_header h, h2;
	struct cmk_secret *d = NULL, *d2 = NULL;
	bool interrupted;
	struct cmk_err e;

	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		torn_first_format(fx, 0, cut[i].keep, cut[i].seq);
		assert_int_equal(cmk_device_may_format(fx->fd, &interrupted, &e), 0);
		assert_true(interrupted);
		assert_int_equal(format_persistent(&fx->k, fx->fd, 4096, &h, &d, &e), 0);
		assert_int_equal(h.sequence, 1);
		assert_int_equal(open_persistent(&fx->k, fx->fd, &h2, &d2, &e), 0);
		assert_memory_equal(h.device_uuid, h2.device_uuid, CMK_UUID_LEN);
		assert_true(cmk_secret_equal(d, d2));
		cmk_secret_free(&d);
		cmk_secret_free(&d2);
	}
}

/*
 * A torn copy B next to an all-zero copy A: a first format writes A first
 * (cmk_header_write() on a zeroed area), so this is not what one leaves.
 */
static void device_format_crash_torn_refused_copy_b(void **state)
{
	static const uint64_t seq[] = { 1, 0 };
	struct fx *fx = *state;

	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		torn_first_format(fx, 65536, 512, seq[i]);
		assert_format_refused(fx);
	}
}

/*
 * Bytes of the torn copy after its last defined field (reserved and
 * checksum, 236..4095) that are not zero: a first format writes zeros
 * there, so something else wrote them.  Includes one non-zero checksum
 * byte other than the first (M9).
 */
static void device_format_crash_torn_refused_tail_not_zero(void **state)
{
	static const size_t where[] = {
		CMK_HDR_OFF_RESERVED, 300, 511, 512, 2048, CMK_HDR_OFF_CHECKSUM - 1,
		CMK_HDR_OFF_CHECKSUM, CMK_HDR_OFF_CHECKSUM + 1,
		CMK_HDR_OFF_CHECKSUM + 17, CMK_HDR_SIZE - 1,
	};
	struct fx *fx = *state;
	uint8_t one = 0x40;

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		torn_first_format(fx, 0, 512, 1);
		assert_int_equal(pwrite(fx->fd, &one, 1, (off_t)where[i]), 1);
		assert_format_refused(fx);
	}
}

/*
 * A torn state whose header area cannot be read in full (a file shorter
 * than 1 MiB) or a device that cannot be read: an error, never "may
 * format".  Oracle: a non-zero return other than -EEXIST, interrupted
 * false, and the format writes nothing.
 */
static void device_format_crash_torn_short_or_unreadable_is_error(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_secret *d = NULL;
	uint8_t before[CMK_HDR_SIZE], after[CMK_HDR_SIZE];
	bool interrupted = true;
	struct cmk_err e;
	int wfd, ret;

	torn_first_format(fx, 0, 512, 1);
	assert_int_equal(ftruncate(fx->fd, 65536 + CMK_HDR_SIZE), 0);
	ret = cmk_device_may_format(fx->fd, &interrupted, &e);
	assert_int_not_equal(ret, 0);
	assert_int_not_equal(ret, -EEXIST);
	assert_false(interrupted);
	assert_contains(e.msg, "too small");
	assert_int_equal(pread(fx->fd, before, sizeof(before), 0), CMK_HDR_SIZE);
	assert_int_not_equal(format_persistent(&fx->k, fx->fd, 4096, &h, &d, &e), 0);
	assert_null(d);
	assert_int_equal(pread(fx->fd, after, sizeof(after), 0), CMK_HDR_SIZE);
	assert_memory_equal(after, before, CMK_HDR_SIZE);

	torn_first_format(fx, 0, 512, 1);
	wfd = open(tu_path("dev.img"), O_WRONLY);
	assert_true(wfd >= 0);
	interrupted = true;
	ret = cmk_device_may_format(wfd, &interrupted, &e);
	close(wfd);
	assert_int_equal(ret, -EBADF);
	assert_false(interrupted);
	assert_contains(e.msg, "read");
}

/* The other copy is not entirely zero: one byte past its (absent) magic. */
static void device_format_crash_torn_refused_other_copy_not_zero(void **state)
{
	static const size_t where[] = { 8, 200, CMK_HDR_SIZE - 1 };
	struct fx *fx = *state;
	uint8_t one = 1;

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		torn_first_format(fx, 0, 512, 1);
		assert_int_equal(pwrite(fx->fd, &one, 1, 65536 + (off_t)where[i]), 1);
		assert_format_refused(fx);
	}
}

/* A torn copy with sequence 2 (a header that was once written before). */
static void device_format_crash_torn_refused_sequence_2(void **state)
{
	struct fx *fx = *state;

	torn_first_format(fx, 0, 512, 2);
	assert_format_refused(fx);
	torn_first_format(fx, 0, 512, 1ULL << 40);
	assert_format_refused(fx);
}

/* The magic with another version: a newer agent's header is never overwritten. */
static void device_format_crash_torn_refused_other_version(void **state)
{
	struct fx *fx = *state;
	struct cmk_header h;
	struct cmk_err e;

	torn_first_format(fx, 0, 512, 1);
	assert_int_equal(pwrite(fx->fd, "\x02\0\0\0", 4, CMK_HDR_OFF_VERSION), 4);
	assert_int_equal(cmk_header_read(fx->fd, &h, NULL, &e), -EUCLEAN);
	assert_contains(e.msg, "not supported");
	assert_format_refused(fx);
}

/* A byte elsewhere in the first 1 MiB: not the area a format zeroed. */
static void device_format_crash_torn_refused_area_not_zero(void **state)
{
	static const off_t where[] = {
		CMK_HDR_SIZE, 8192, 65536 - 1, 65536 + CMK_HDR_SIZE,
		CMK_HDR_AREA - 1,
	};
	struct fx *fx = *state;
	uint8_t one = 0x80;

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		torn_first_format(fx, 0, 512, 1);
		assert_int_equal(pwrite(fx->fd, &one, 1, where[i]), 1);
		assert_format_refused(fx);
	}
}

/*
 * The copy was written to its end (the checksum is there) but does not
 * verify: a complete header damaged since, not a torn one.  And both
 * copies torn: a format never leaves two.
 */
static void device_format_crash_torn_refused_complete_or_two_copies(void **state)
{
	struct fx *fx = *state;
	uint8_t b[CMK_HDR_SIZE];
	struct cmk_header h;
	struct cmk_secret *d = NULL;
	struct cmk_err e;

	assert_int_equal(format_persistent(&fx->k, fx->fd, 4096, &h, &d, &e), 0);
	cmk_secret_free(&d);
	fill(fx->fd, 65536, 0, CMK_HDR_SIZE);		/* copy B wiped ... */
	assert_int_equal(pread(fx->fd, b, sizeof(b), 0), CMK_HDR_SIZE);
	b[CMK_HDR_OFF_RESERVED] ^= 1;			/* ... and A damaged */
	assert_int_equal(pwrite(fx->fd, b, sizeof(b), 0), CMK_HDR_SIZE);
	assert_int_equal(cmk_header_read(fx->fd, &h, NULL, &e), -EUCLEAN);
	assert_format_refused(fx);

	torn_first_format(fx, 0, 512, 1);
	assert_int_equal(pread(fx->fd, b, sizeof(b), 0), CMK_HDR_SIZE);
	assert_int_equal(pwrite(fx->fd, b, sizeof(b), 65536), CMK_HDR_SIZE);
	assert_format_refused(fx);
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
		T(device_adversarial_header_swap_refused_by_pin),
		T(device_adversarial_previous_boot_header_refused),
		T(device_adversarial_rollback_within_boot_refused),
		T(device_adversarial_running_header_of_other_device_refused),
		T(device_adversarial_sector_size_or_iv_mismatch_refused),
		T(device_adversarial_ephemeral_rekey_new_uuid_on_request),
		T(device_format_refuses_nonzero_area_without_header),
		T(device_format_crash_torn_first_copy_continues),
		T(device_format_crash_torn_refused_copy_b),
		T(device_format_crash_torn_refused_tail_not_zero),
		T(device_format_crash_torn_short_or_unreadable_is_error),
		T(device_format_crash_torn_refused_other_copy_not_zero),
		T(device_format_crash_torn_refused_sequence_2),
		T(device_format_crash_torn_refused_other_version),
		T(device_format_crash_torn_refused_area_not_zero),
		T(device_format_crash_torn_refused_complete_or_two_copies),
	};

	return cmocka_run_group_tests_name("device", tests, NULL, NULL);
}
