// SPDX-License-Identifier: GPL-2.0
/*
 * bad_table - malformed cmk table lines are refused, and the kernel log
 * says what was wrong.
 *
 * Oracle: the contract ("device-mapper: table: <dev>: cmk: <message>") and
 * the table grammar.  For each bad line "dmsetup create" must fail, leave no
 * device behind, and log a cmk error that names the offending part (a
 * case-insensitive key word).  A valid line built the same way is accepted,
 * so the refusals are caused by the one thing changed.
 */
#include "cmk_test.h"

#define DM_NAME		CMK_DM_PREFIX "bad"
#define DM_OTHER	CMK_DM_PREFIX "bad-other"

#define NAME65 "k2345678901234567890123456789012345678901234567890123456789012345"
#define NAME64 "k234567890123456789012345678901234567890123456789012345678901234"
_Static_assert(sizeof(NAME65) == DM_CMK_NAME_MAX + 2, "65 characters");
_Static_assert(sizeof(NAME64) == DM_CMK_NAME_MAX + 1, "64 characters");

FIXTURE(bad_table) {
	char mark[96];
};

FIXTURE_VARIANT(bad_table) {
	const char *table;
	const char *words;	/* '|'-separated key words */
	const char *not_words;	/* must not be blamed on these */
};

FIXTURE_VARIANT_ADD(bad_table, wrong_cipher) {
	.table = "0 16384 cmk aes-cbc-essiv:sha256 k 0 /dev/ram0 0",
	.words = "cipher",
};

FIXTURE_VARIANT_ADD(bad_table, cipher_without_iv_mode) {
	.table = "0 16384 cmk aes-xts k 0 /dev/ram0 0",
	.words = "cipher",
};

FIXTURE_VARIANT_ADD(bad_table, key_name_of_65_chars) {
	.table = "0 16384 cmk aes-xts-plain64 " NAME65 " 0 /dev/ram0 0",
	.words = "key_name|key name",
};

FIXTURE_VARIANT_ADD(bad_table, key_name_with_slash) {
	.table = "0 16384 cmk aes-xts-plain64 bad/name 0 /dev/ram0 0",
	.words = "key_name|key name",
};

FIXTURE_VARIANT_ADD(bad_table, key_name_with_dollar) {
	.table = "0 16384 cmk aes-xts-plain64 bad$name 0 /dev/ram0 0",
	.words = "key_name|key name",
};

FIXTURE_VARIANT_ADD(bad_table, key_name_that_looks_like_a_key) {
	/* 128 hex digits: a key where the name belongs is refused */
	.table = "0 16384 cmk aes-xts-plain64 "
		 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
		 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
		 " 0 /dev/ram0 0",
	.words = "key_name|key name",
};

FIXTURE_VARIANT_ADD(bad_table, missing_offset) {
	.table = "0 16384 cmk aes-xts-plain64 k 0 /dev/ram0",
	.words = "argument|args|<dev_path> <offset>",
};

FIXTURE_VARIANT_ADD(bad_table, missing_everything) {
	.table = "0 16384 cmk aes-xts-plain64",
	.words = "argument|args|<dev_path> <offset>",
};

FIXTURE_VARIANT_ADD(bad_table, bad_iv_offset) {
	.table = "0 16384 cmk aes-xts-plain64 k x12 /dev/ram0 0",
	.words = "iv_offset|iv offset",
};

FIXTURE_VARIANT_ADD(bad_table, iv_offset_not_multiple_of_sector_size) {
	.table = "0 16384 cmk aes-xts-plain64 k 3 /dev/ram0 0 "
		 "1 sector_size:4096",
	.words = "iv_offset|iv offset",
};

FIXTURE_VARIANT_ADD(bad_table, nonexistent_device) {
	.table = "0 16384 cmk aes-xts-plain64 k 0 /dev/nonexistent-cmk 0",
	.words = "device",
};

FIXTURE_VARIANT_ADD(bad_table, bad_offset) {
	.table = "0 16384 cmk aes-xts-plain64 k 0 /dev/ram0 12abc",
	.words = "offset",
	.not_words = "iv_offset|iv offset",
};

FIXTURE_VARIANT_ADD(bad_table, opt_count_larger_than_given) {
	.table = "0 16384 cmk aes-xts-plain64 k 0 /dev/ram0 0 3 "
		 "sector_size:4096",
	.words = "option|argument|feature",
};

FIXTURE_VARIANT_ADD(bad_table, opt_count_not_a_number) {
	.table = "0 16384 cmk aes-xts-plain64 k 0 /dev/ram0 0 extra",
	.words = "option|argument|feature",
};

FIXTURE_VARIANT_ADD(bad_table, unknown_option) {
	.table = "0 16384 cmk aes-xts-plain64 k 0 /dev/ram0 0 1 frobnicate",
	.words = "option|feature",
};

FIXTURE_VARIANT_ADD(bad_table, sector_size_1024) {
	.table = "0 16384 cmk aes-xts-plain64 k 0 /dev/ram0 0 "
		 "1 sector_size:1024",
	.words = "sector_size|sector size",
};

FIXTURE_VARIANT_ADD(bad_table, sector_size_not_a_number) {
	.table = "0 16384 cmk aes-xts-plain64 k 0 /dev/ram0 0 "
		 "1 sector_size:4k",
	.words = "sector_size|sector size",
};

FIXTURE_VARIANT_ADD(bad_table, length_not_multiple_of_sector_size) {
	.table = "0 16383 cmk aes-xts-plain64 k 0 /dev/ram0 0 "
		 "1 sector_size:4096",
	.words = "sector_size|sector size|multiple",
};

FIXTURE_VARIANT_ADD(bad_table, lease_ms_not_a_number) {
	.table = "0 16384 cmk aes-xts-plain64 k 0 /dev/ram0 0 "
		 "1 lease_ms:soon",
	.words = "lease",
};

FIXTURE_VARIANT_ADD(bad_table, force_and_no_workqueue) {
	.table = "0 16384 cmk aes-xts-plain64 k 0 /dev/ram0 0 "
		 "2 force_workqueue no_read_workqueue",
	.words = "force_workqueue",
};

FIXTURE_SETUP(bad_table)
{
	CMK_SETUP_CLEAN();
}

FIXTURE_TEARDOWN(bad_table)
{
	cmk_dm_remove(DM_NAME);
	cmk_dm_remove(DM_OTHER);
}

TEST_F(bad_table, refused_with_reason_logged)
{
	char out[1024], msg[256] = "";
	int st, e;

	ASSERT_EQ(0, cmk_klog_mark(self->mark, sizeof(self->mark)));
	st = cmk_dm_create(DM_NAME, variant->table, out, sizeof(out));
	e = cmk_klog_cmk_error(self->mark, msg, sizeof(msg));
	ASSERT_NE(0, st) TH_LOG("bad table accepted");
	EXPECT_FALSE(cmk_dm_exists(DM_NAME))
		TH_LOG("a failed create left the device behind");
	ASSERT_EQ(0, e)
		TH_LOG("no 'device-mapper: table: ...: cmk:' line in the kernel log");
	TH_LOG("kernel: cmk: %s", msg);
	EXPECT_TRUE(cmk_contains_any(msg, variant->words))
		TH_LOG("message '%s' does not name '%s'", msg, variant->words);
	if (variant->not_words)
		EXPECT_FALSE(cmk_contains_any(msg, variant->not_words))
			TH_LOG("message '%s' blames '%s'", msg,
			       variant->not_words);
}

/* Positive controls: the same grammar, nothing wrong, is accepted. */
FIXTURE(good_table) {
	int unused;
};

FIXTURE_VARIANT(good_table) {
	const char *table;
};

FIXTURE_VARIANT_ADD(good_table, all_options) {
	.table = "0 16384 cmk aes-xts-plain64 good-name_1.2:x 8 /dev/ram0 16 "
		 "7 sector_size:4096 iv_large_sectors allow_discards "
		 "no_read_workqueue no_write_workqueue lease_ms:1000 "
		 "allow_no_lease",
};

FIXTURE_VARIANT_ADD(good_table, force_workqueue) {
	.table = "0 16384 cmk aes-xts-plain64 k 0 /dev/ram0 0 "
		 "2 sector_size:4096 force_workqueue",
};

FIXTURE_VARIANT_ADD(good_table, key_name_of_64_chars) {
	.table = "0 16384 cmk aes-xts-plain64 " NAME64 " 0 /dev/ram0 0",
};

FIXTURE_VARIANT_ADD(good_table, explicit_zero_options) {
	.table = "0 16384 cmk aes-xts-plain64 k 0 /dev/ram0 0 0",
};

FIXTURE_SETUP(good_table)
{
	CMK_SETUP_CLEAN();
}

FIXTURE_TEARDOWN(good_table)
{
	cmk_dm_remove(DM_NAME);
}

TEST_F(good_table, accepted)
{
	char out[1024], mark[96], msg[256] = "";
	int st;

	ASSERT_EQ(0, cmk_klog_mark(mark, sizeof(mark)));
	st = cmk_dm_create(DM_NAME, variant->table, out, sizeof(out));
	if (st)
		cmk_klog_cmk_error(mark, msg, sizeof(msg));
	ASSERT_EQ(0, st) TH_LOG("valid table refused: %s [kernel: %s]", out,
				msg);
	ASSERT_TRUE(cmk_dm_exists(DM_NAME));
}

/*
 * One key_name belongs to one mapped device: a second device using the same
 * key_name is refused (and the first keeps working).
 */
FIXTURE(key_name) {
	char mark[96];
};

FIXTURE_SETUP(key_name)
{
	CMK_SETUP_CLEAN();
}

FIXTURE_TEARDOWN(key_name)
{
	cmk_dm_remove(DM_NAME);
	cmk_dm_remove(DM_OTHER);
}

TEST_F(key_name, already_used_by_another_device_refused)
{
	struct cmk_table a = {
		.len = 8192, .key_name = "shared-name", .dev = CMK_RAM(0),
	};
	struct cmk_table b = {
		.len = 8192, .key_name = "shared-name", .dev = CMK_RAM(1),
	};
	char line[512], out[1024], msg[256] = "";
	uint8_t key[DM_CMK_KEY_LEN];
	struct cmk_nl nl;

	ASSERT_CMK_CREATE(DM_NAME, &a);
	cmk_table_cmk(line, sizeof(line), &b);
	ASSERT_EQ(0, cmk_klog_mark(self->mark, sizeof(self->mark)));
	ASSERT_NE(0, cmk_dm_create(DM_OTHER, line, out, sizeof(out)))
		TH_LOG("second device with the same key_name accepted");
	EXPECT_FALSE(cmk_dm_exists(DM_OTHER));
	ASSERT_EQ(0, cmk_klog_cmk_error(self->mark, msg, sizeof(msg)));
	TH_LOG("kernel: cmk: %s", msg);
	EXPECT_TRUE(cmk_contains_any(msg, "already|in use|used"))
		TH_LOG("message '%s' does not say the name is taken", msg);

	ASSERT_NL_OPEN(&nl);
	cmk_key_make(key, 31);
	ASSERT_KEY_SET(&nl, "shared-name", key, CMK_LEASE_LONG, 1);
	ASSERT_STATE(&nl, "shared-name", DM_CMK_STATE_ACTIVE);
	cmk_nl_close(&nl);
}

TEST_HARNESS_MAIN
