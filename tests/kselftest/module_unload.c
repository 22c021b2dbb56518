// SPDX-License-Identifier: GPL-2.0
/*
 * module_unload - dm_cmk cannot be unloaded under a live device; without
 * devices it unloads (taking its netlink family along) and loads again.
 *
 * Oracle: the module reference device-mapper holds for every table using
 * the target, and the contract (modprobe dm-cmk works).  After a reload the
 * whole path works again: netlink family, table, key push, I/O.  The module
 * is always loaded again at the end, whatever happened.
 */
#include "cmk_test.h"

#define DM_NAME		CMK_DM_PREFIX "mod"
#define KEY_NAME	"module-key"
#define MODNAME		"dm_cmk"

FIXTURE(module_unload) {
	uint8_t key[DM_CMK_KEY_LEN];
	char path[128];
};

FIXTURE_SETUP(module_unload)
{
	CMK_SETUP_CLEAN();
	cmk_key_make(self->key, 101);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);
}

FIXTURE_TEARDOWN(module_unload)
{
	cmk_dm_remove(DM_NAME);
	if (!cmk_module_loaded(MODNAME))
		cmk_modprobe("dm-cmk");
}

/* Create a device, push a key, write and read a block. */
static void use_device(struct __test_metadata *_metadata,
		       FIXTURE_DATA(module_unload) *self)
{
	struct cmk_table t = {
		.len = 8192, .key_name = KEY_NAME, .dev = CMK_RAM(0),
	};
	unsigned char buf[4096], back[4096];
	struct cmk_nl nl;

	ASSERT_NL_OPEN(&nl);
	if (!cmk_dm_exists(DM_NAME))
		ASSERT_CMK_CREATE(DM_NAME, &t);
	ASSERT_KEY_SET(&nl, KEY_NAME, self->key, CMK_LEASE_LONG, 1);
	cmk_fill(buf, sizeof(buf), 102);
	ASSERT_EQ(0, cmk_dev_write(self->path, buf, sizeof(buf), 0, true));
	ASSERT_EQ(0, cmk_dev_read(self->path, back, sizeof(back), 0, true));
	ASSERT_EQ(0, memcmp(buf, back, sizeof(buf)));
	cmk_nl_close(&nl);
}

TEST_F(module_unload, unload_refused_while_device_exists)
{
	int err;

	use_device(_metadata, self);
	err = cmk_module_unload(MODNAME);
	ASSERT_NE(0, err) TH_LOG("dm_cmk unloaded under a live device");
	EXPECT_TRUE(err == -EWOULDBLOCK || err == -EBUSY)
		TH_LOG("delete_module: %s", strerror(-err));
	ASSERT_TRUE(cmk_module_loaded(MODNAME));
	/* and the device still works */
	use_device(_metadata, self);
}

TEST_F_TIMEOUT(module_unload, unload_and_reload_without_devices, 60)
{
	int err;

	ASSERT_FALSE(cmk_dm_exists(DM_NAME));
	err = cmk_module_unload(MODNAME);
	ASSERT_EQ(0, err) TH_LOG("delete_module(dm_cmk): %s", strerror(-err));
	ASSERT_FALSE(cmk_module_loaded(MODNAME));
	/*
	 * (Resolving the family now would load the module again through its
	 * genl family alias, so its absence is not probed that way.)
	 */
	ASSERT_EQ(0, cmk_modprobe("dm-cmk"));
	ASSERT_TRUE(cmk_module_loaded(MODNAME));
	use_device(_metadata, self);
}

TEST_HARNESS_MAIN
