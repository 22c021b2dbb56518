// SPDX-License-Identifier: GPL-2.0
/*
 * wipe_memory - once a key is wiped, no copy of it is left in RAM.
 *
 * Oracle: a scan of all of RAM through /proc/kcore for the first 16 bytes
 * of each half of a random XTS key.  Every AES key schedule starts with the
 * raw key words (for AES-256 the first two round keys are the key itself,
 * and the decryption schedule ends with the first one), as does any plain
 * copy of the key, so while the key is active the scan must find it - that
 * is the positive control (run once, with KEY_WIPE) that proves the scanner
 * sees the kernel's key material.  After the key leaves (KEY_WIPE, lease expiry,
 * device removal, replacement by another key) the same scan must find no
 * quarter anywhere: not in the tfm, not in the netlink request, not in a
 * freed buffer.
 *
 * The test holds the quarters only XORed with a constant byte and scans
 * XORed data, so its own memory cannot match; user copies of the key are
 * wiped right after the push.  Hits are re-read before they count.
 */
#include "cmk_test.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/random.h>

#define DM_NAME		CMK_DM_PREFIX "mem"
#define KEY_NAME	"memory-key"
#define MASK		0xa7
#define NQ		2	/* key[0..15] and key[32..47] */
#define QLEN		16
#define CHUNK		(4U << 20)

enum how { BY_KEY_WIPE, BY_LEASE_EXPIRY, BY_DEVICE_REMOVAL, BY_KEY_REPLACE };

FIXTURE(wipe_memory) {
	struct cmk_nl nl;
	char path[128];
	uint8_t masked[NQ][QLEN];	/* key quarters XOR MASK */
};

FIXTURE_VARIANT(wipe_memory) {
	enum how how;
};

FIXTURE_VARIANT_ADD(wipe_memory, key_wipe) {
	.how = BY_KEY_WIPE,
};

FIXTURE_VARIANT_ADD(wipe_memory, lease_expiry) {
	.how = BY_LEASE_EXPIRY,
};

FIXTURE_VARIANT_ADD(wipe_memory, device_removal) {
	.how = BY_DEVICE_REMOVAL,
};

FIXTURE_VARIANT_ADD(wipe_memory, key_replaced) {
	.how = BY_KEY_REPLACE,
};

struct scan_result {
	unsigned int hits[NQ];
	uint64_t bytes;
	uint64_t first_hit_paddr;
};

static void xor_mask(unsigned char *p, size_t n)
{
	uint64_t m = 0x0101010101010101ULL * MASK, w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		w ^= m;
		memcpy(p + i, &w, 8);
	}
	for (; i < n; i++)
		p[i] ^= MASK;
}

/* Re-read one candidate on its own, so a stale scan buffer cannot count. */
static bool confirm(int fd, off_t fo, const uint8_t *needle)
{
	unsigned char small[QLEN];

	if (pread(fd, small, QLEN, fo) != QLEN)
		return false;
	xor_mask(small, QLEN);
	return !memcmp(small, needle, QLEN);
}

static int kcore_scan(const uint8_t masked[NQ][QLEN], struct scan_result *res)
{
	const size_t over = QLEN - 1;
	unsigned char *buf = NULL;
	Elf64_Phdr *ph = NULL;
	Elf64_Ehdr eh;
	int fd, err = 0, i;

	memset(res, 0, sizeof(*res));
	fd = open("/proc/kcore", O_RDONLY);
	if (fd < 0)
		return -errno;
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_phentsize != sizeof(Elf64_Phdr)) {
		err = -EINVAL;
		goto out;
	}
	ph = calloc(eh.e_phnum, sizeof(*ph));
	buf = malloc(CHUNK + over);
	if (!ph || !buf) {
		err = -ENOMEM;
		goto out;
	}
	if (pread(fd, ph, eh.e_phnum * sizeof(*ph), (off_t)eh.e_phoff) !=
	    (ssize_t)(eh.e_phnum * sizeof(*ph))) {
		err = -EIO;
		goto out;
	}
	for (i = 0; i < eh.e_phnum; i++) {
		uint64_t off;

		/* RAM and kernel text; not vmalloc/vmemmap windows */
		if (ph[i].p_type != PT_LOAD || ph[i].p_paddr == (Elf64_Addr)-1)
			continue;
		for (off = 0; off < ph[i].p_filesz; off += CHUNK) {
			uint64_t n = ph[i].p_filesz - off;
			size_t back = off ? over : 0, len;
			off_t fo = (off_t)(ph[i].p_offset + off - back);
			ssize_t r;
			int q;

			if (n > CHUNK)
				n = CHUNK;
			len = back + n;
			r = pread(fd, buf, len, fo);
			if (r < 0) {
				err = -errno;
				goto out;
			}
			len = (size_t)r;
			res->bytes += len - back;
			xor_mask(buf, len);
			for (q = 0; q < NQ; q++) {
				unsigned char *p = buf, *hit;

				while ((hit = memmem(p, len - (p - buf),
						     masked[q], QLEN))) {
					off_t at = fo + (hit - buf);

					if (confirm(fd, at, masked[q])) {
						if (!res->first_hit_paddr)
							res->first_hit_paddr =
								ph[i].p_paddr +
								(at - ph[i].p_offset);
						res->hits[q]++;
					}
					p = hit + 1;
				}
			}
		}
	}
out:
	free(buf);
	free(ph);
	close(fd);
	return err;
}

static unsigned int total(const struct scan_result *r)
{
	return r->hits[0] + r->hits[1];
}

FIXTURE_SETUP(wipe_memory)
{
	struct cmk_table t = {
		.len = 8192, .key_name = KEY_NAME, .dev = CMK_RAM(0),
	};
	uint8_t key[DM_CMK_KEY_LEN];
	unsigned char *buf = cmk_alloc(65536);
	int q, i;

	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	ASSERT_CMK_CREATE(DM_NAME, &t);
	cmk_dm_path(self->path, sizeof(self->path), DM_NAME);

	/* a key no other test ever used; keep only its masked quarters */
	ASSERT_EQ((ssize_t)sizeof(key), getrandom(key, sizeof(key), 0));
	if (!memcmp(key, key + 32, 32))
		key[0] ^= 1;
	for (q = 0; q < NQ; q++)
		for (i = 0; i < QLEN; i++)
			self->masked[q][i] = key[q * DM_CMK_KEY_LEN / 2 + i] ^ MASK;
	ASSERT_KEY_SET(&self->nl, KEY_NAME, key, CMK_LEASE_LONG, 1);
	explicit_bzero(key, sizeof(key));

	/* use the key on both paths */
	ASSERT_NE(NULL, buf);
	cmk_fill(buf, 65536, 111);
	ASSERT_EQ(0, cmk_dev_write(self->path, buf, 65536, 0, true));
	ASSERT_EQ(0, cmk_dev_read(self->path, buf, 65536, 0, true));
	free(buf);
}

FIXTURE_TEARDOWN(wipe_memory)
{
	cmk_nl_close(&self->nl);
	cmk_dm_remove(DM_NAME);
}

TEST_F_TIMEOUT(wipe_memory, key_bytes_gone_from_ram, 300)
{
	struct scan_result before, after;
	uint8_t other[DM_CMK_KEY_LEN];
	uint64_t t0;
	int err;

	/* positive control: the live key schedule is visible to the scan */
	if (variant->how == BY_KEY_WIPE) {
		t0 = cmk_now_ms();
		err = kcore_scan((const uint8_t (*)[QLEN])self->masked, &before);
		ASSERT_EQ(0, err) TH_LOG("/proc/kcore: %s", strerror(-err));
		TH_LOG("active key: scanned %llu MiB in %llu ms, found %u + %u",
		       (unsigned long long)(before.bytes >> 20),
		       (unsigned long long)(cmk_now_ms() - t0),
		       before.hits[0], before.hits[1]);
		ASSERT_LT(0U, total(&before))
			TH_LOG("the scan cannot see an active key: it would not see a leak either");
	}

	switch (variant->how) {
	case BY_KEY_WIPE:
		ASSERT_KEY_WIPE(&self->nl, KEY_NAME);
		break;
	case BY_LEASE_EXPIRY: {
		uint64_t end = cmk_now_ms() + 60000;
		struct cmk_info in;

		ASSERT_EQ(0, cmk_lease_renew(&self->nl, KEY_NAME, 1500, NULL,
					     0));
		do {
			cmk_sleep_ms(200);
			ASSERT_EQ(0, cmk_get(&self->nl, KEY_NAME, &in, NULL, 0));
		} while (in.state != DM_CMK_STATE_WIPED && cmk_now_ms() < end);
		ASSERT_EQ((uint32_t)DM_CMK_STATE_WIPED, in.state);
		break;
	}
	case BY_DEVICE_REMOVAL:
		ASSERT_DM_REMOVE(DM_NAME);
		break;
	case BY_KEY_REPLACE:
		cmk_key_make(other, 112);
		ASSERT_KEY_SET(&self->nl, KEY_NAME, other, CMK_LEASE_LONG, 2);
		explicit_bzero(other, sizeof(other));
		break;
	}

	t0 = cmk_now_ms();
	err = kcore_scan((const uint8_t (*)[QLEN])self->masked, &after);
	ASSERT_EQ(0, err) TH_LOG("/proc/kcore: %s", strerror(-err));
	TH_LOG("after: scanned %llu MiB in %llu ms, found %u + %u",
	       (unsigned long long)(after.bytes >> 20),
	       (unsigned long long)(cmk_now_ms() - t0), after.hits[0],
	       after.hits[1]);
	ASSERT_LT(64ULL << 20, after.bytes) TH_LOG("scanned too little RAM");
	EXPECT_EQ(0U, total(&after))
		TH_LOG("key bytes still in RAM after the wipe (first at physical 0x%llx)",
		       (unsigned long long)after.first_hit_paddr);
}

TEST_HARNESS_MAIN
