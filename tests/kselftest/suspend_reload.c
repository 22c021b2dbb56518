// SPDX-License-Identifier: GPL-2.0
/*
 * suspend_reload - dmsetup suspend/resume and table reloads keep the key.
 *
 * Oracle: the contract: "targets with the same key_name on the same mapped
 * device share one key slot (table reload keeps the key)".  After suspend +
 * resume, or reload + resume with the same key_name, the device is still
 * active with the same generation and the data reads back.  A reload to a
 * different key_name gives a device that holds no key for the new name.
 */
#include "cmk_test.h"

#define DM_NAME		CMK_DM_PREFIX "susp"
#define KEY_NAME	"suspend-key"
#define DATA_BYTES	(256 * 1024)

FIXTURE(suspend_reload) {
	struct cmk_nl nl;
	struct cmk_table t;
	uint8_t key[DM_CMK_KEY_LEN];
	char path[128];
	unsigned char *data;
};

FIXTURE_SETUP(suspend_reload)
{
	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	cmk_key_make(self->key, 91);
	self->t = (struct cmk_table){
		.len = 16384, .key_name = KEY_NAME, .dev = CMK_RAM(0),
		.opts = "hold_ms:0",	/* refuse I/O at once */
	};
	ASSERT_CMK_CREATE(DM_NAME, &self->t);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 17);
	self->data = cmk_alloc(DATA_BYTES);
	ASSERT_NE(NULL, self->data);
	cmk_fill(self->data, DATA_BYTES, 92);
	ASSERT_EQ(0, cmk_dev_write(self->path, self->data, DATA_BYTES, 0,
				   true));
}

FIXTURE_TEARDOWN(suspend_reload)
{
	free(self->data);
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
}

/* Still active with generation 17, and the data reads back. */
static void expect_key_kept(struct __test_metadata *_metadata,
			    FIXTURE_DATA(suspend_reload) *self)
{
	unsigned char *back = cmk_alloc(DATA_BYTES);
	struct cmk_info in;

	ASSERT_NE(NULL, back);
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	EXPECT_EQ((uint32_t)DM_CMK_STATE_ACTIVE, in.state);
	EXPECT_EQ(17U, in.generation);
	ASSERT_STATUS_STATE(DM_NAME, "active");
	ASSERT_EQ(0, cmk_dev_read(self->path, back, DATA_BYTES, 0, true));
	EXPECT_EQ(0, memcmp(back, self->data, DATA_BYTES))
		TH_LOG("data does not read back");
	free(back);
}

TEST_F(suspend_reload, suspend_resume_keeps_key_and_data)
{
	ASSERT_EQ(0, cmk_dm_suspend(DM_NAME));
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_ACTIVE);
	ASSERT_EQ(0, cmk_dm_resume(DM_NAME));
	expect_key_kept(_metadata, self);
}

TEST_F(suspend_reload, reload_same_key_name_keeps_key)
{
	struct cmk_table t = self->t;
	char line[512], out[1024], table[1024];
	struct cmk_info in;

	/* same key_name, another lease limit */
	t.opts = "lease_ms:300000 hold_ms:0";
	cmk_table_cmk(line, sizeof(line), &t);
	ASSERT_EQ(0, cmk_dm_reload(DM_NAME, line, out, sizeof(out)))
		TH_LOG("reload: %s", out);
	/* the inactive table does not disturb the live one */
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_ACTIVE);
	ASSERT_EQ(0, cmk_dm_resume(DM_NAME));
	expect_key_kept(_metadata, self);
	ASSERT_EQ(0, cmk_dm_table(DM_NAME, false, table, sizeof(table)));
	EXPECT_NE(NULL, strstr(table, "lease_ms:300000"))
		TH_LOG("new table not live: %s", table);
	ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	if (in.has_lease_max)
		EXPECT_EQ(300000U, in.lease_max_ms);
}

TEST_F(suspend_reload, reload_while_suspended_keeps_key)
{
	char line[512], out[1024];

	ASSERT_EQ(0, cmk_dm_suspend(DM_NAME));
	cmk_table_cmk(line, sizeof(line), &self->t);
	ASSERT_EQ(0, cmk_dm_reload(DM_NAME, line, out, sizeof(out)))
		TH_LOG("reload: %s", out);
	ASSERT_EQ(0, cmk_dm_resume(DM_NAME));
	expect_key_kept(_metadata, self);
}

TEST_F(suspend_reload, wipe_while_suspended_holds_after_resume)
{
	unsigned char buf[4096];

	ASSERT_EQ(0, cmk_dm_suspend(DM_NAME));
	ASSERT_KEY_WIPE(&self->nl, KEY_NAME);
	ASSERT_EQ(0, cmk_dm_resume(DM_NAME));
	ASSERT_STATE(&self->nl, KEY_NAME, DM_CMK_STATE_WIPED);
	EXPECT_EQ(-EIO, cmk_dev_read(self->path, buf, sizeof(buf), 0, true));
	ASSERT_KEY_SET(&self->nl, KEY_NAME, self->key, CMK_LEASE_LONG, 17);
	expect_key_kept(_metadata, self);
}

/*
 * A reload to another key_name does not carry the old key over: the new
 * name has no key (I/O fails) until one is pushed for it, and the old name
 * is gone with the old table.
 */
TEST_F(suspend_reload, reload_other_key_name_starts_sealed)
{
	struct cmk_table t = self->t;
	unsigned char buf[4096];
	char line[512], out[1024];
	struct cmk_info in;

	t.key_name = "suspend-key-2";
	cmk_table_cmk(line, sizeof(line), &t);
	ASSERT_EQ(0, cmk_dm_reload(DM_NAME, line, out, sizeof(out)))
		TH_LOG("reload: %s", out);
	ASSERT_EQ(0, cmk_dm_resume(DM_NAME));
	ASSERT_STATE(&self->nl, "suspend-key-2", DM_CMK_STATE_SEALED);
	EXPECT_EQ(-EIO, cmk_dev_read(self->path, buf, sizeof(buf), 0, true));
	EXPECT_EQ(-ENODEV, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
	ASSERT_KEY_SET(&self->nl, "suspend-key-2", self->key, CMK_LEASE_LONG,
		       17);
	ASSERT_EQ(0, cmk_dev_read(self->path, buf, sizeof(buf), 0, true));
	EXPECT_EQ(0, memcmp(buf, self->data, sizeof(buf)));
}

TEST_HARNESS_MAIN
