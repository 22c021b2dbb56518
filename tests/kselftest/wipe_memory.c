// SPDX-License-Identifier: GPL-2.0
/*
 * wipe_memory - once a key is wiped, no copy of it is left in RAM.
 *
 * Oracle: a scan of all of RAM through /proc/kcore for the first 16 bytes
 * of each half of random XTS keys.  Every AES key schedule starts with the
 * raw key words (for AES-256 the first two round keys are the key itself,
 * and the decryption schedule ends with the first one), as does any plain
 * copy of a key.  Four devices get four keys, which leave in four ways:
 * KEY_WIPE, lease expiry, device removal, re-keying the device (a new
 * table with a new key_name: a slot only ever takes its first key).
 * While all four are active the scan must find every one of them - the
 * positive control that proves the scanner sees the kernel's key material;
 * after they left, the same scan must find none: not in a tfm, not in a
 * netlink request, not in a freed buffer.  (One scan of 2 GiB takes ~10 s
 * under TCG, hence one test for the four ways.)
 *
 * The test holds the key bytes only XORed with a constant and scans XORed
 * data, so its own memory cannot match; user copies of the keys are wiped
 * right after the push.  Hits are re-read before they count.
 */
#include "cmk_test.h"

#include <elf.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/random.h>
#include <sys/wait.h>

#define MASK		0xa7
#define NKEY		4
#define NQ		(2 * NKEY)	/* key[0..15], key[32..47] per key */
#define QLEN		16
#define CHUNK		(4U << 20)
/*
 * Leases must outlive a scan of all RAM: 60 s under a loaded TCG host
 * (CMK_LEASE_LONG, 60 s, ran out mid-test).  The default lease_max_ms.
 */
#define LEASE_SCAN	600000

static const char *kcore_path = "/proc/kcore";

enum how { BY_KEY_WIPE, BY_LEASE_EXPIRY, BY_DEVICE_REMOVAL, BY_KEY_REPLACE };

static const char *const how_name[NKEY] = {
	"KEY_WIPE", "lease expiry", "device removal", "re-keying by a new table",
};
static const char *const dm_names[NKEY] = {
	CMK_DM_PREFIX "mem0", CMK_DM_PREFIX "mem1", CMK_DM_PREFIX "mem2",
	CMK_DM_PREFIX "mem3",
};
static const char *const key_names[NKEY] = {
	"memory-0", "memory-1", "memory-2", "memory-3",
};
static const char *const rams[NKEY] = {
	CMK_RAM(0), CMK_RAM(1), CMK_RAM(2), CMK_RAM(3),
};

/* key[24..39]: only a plain copy of a whole key has these bytes in a row */
#define CROSS		24

FIXTURE(wipe_memory) {
	struct cmk_nl nl;
	uint8_t masked[NQ][QLEN];	/* key bytes XOR MASK */
	uint8_t cross[NKEY][QLEN];	/* key[CROSS..CROSS+15] XOR MASK */
};

#define NADDR		4

struct scan_result {
	unsigned int hits[NQ];
	unsigned int own[NQ];		/* in this process's own pages */
	uint64_t bytes;
	uint64_t first_hit_paddr;
	uint64_t paddr[NQ][NADDR];	/* where the first hits are */
};

/*
 * Any 16-byte needle, wherever it lies, contains the aligned 8-byte word
 * at needle[d..d+8) for d = (8 - addr % 8) % 8.  So the scan loads each
 * aligned word once and looks it up in a small table of the 8 possible
 * words of every needle (all held XORed with the mask), and only checks
 * the 16 bytes around a word that matched.  Under TCG this is several
 * times faster than one memmem() pass per needle.
 */
#define TBITS		9
#define TSIZE		(1U << TBITS)
#define MASK64		(0x0101010101010101ULL * MASK)

struct word_table {
	uint64_t word[TSIZE];		/* masked needle words */
	int16_t q[TSIZE];		/* needle, -1: empty slot */
	uint8_t d[TSIZE];		/* offset of the word in the needle */
};

static unsigned int slot_of(uint64_t w)
{
	return (unsigned int)((w * 0x9e3779b97f4a7c15ULL) >> (64 - TBITS));
}

static void table_build(struct word_table *t, const uint8_t masked[NQ][QLEN])
{
	unsigned int q, d, h;

	memset(t->q, 0xff, sizeof(t->q));
	for (q = 0; q < NQ; q++)
		for (d = 0; d < 8; d++) {
			uint64_t w;

			memcpy(&w, masked[q] + d, 8);
			for (h = slot_of(w); t->q[h] >= 0; h = (h + 1) % TSIZE)
				;
			t->word[h] = w;
			t->q[h] = (int16_t)q;
			t->d[h] = (uint8_t)d;
		}
}

/* Does buf[at..at+16) XOR MASK equal the masked needle? */
static bool match_at(const unsigned char *buf, const uint8_t *masked)
{
	int i;

	for (i = 0; i < QLEN; i++)
		if ((buf[i] ^ MASK) != masked[i])
			return false;
	return true;
}

/*
 * /proc/kcore copies every byte it returns through a page-sized kernel
 * bounce buffer (kmalloc'd, kfree'd unzeroed).  A read of a live key
 * leaves a copy there, which a later scan would find in freed slab memory
 * and blame on dm-cmk.  So every read of a key is followed by a read of a
 * page known to hold no needle (@clean_fo), which overwrites the buffer.
 */
static off_t clean_fo = -1;

static void flush_bounce(int fd, size_t len)
{
	static unsigned char junk[4096];

	if (clean_fo >= 0 && pread(fd, junk, len, clean_fo) < 0)
		clean_fo = -1;
}

/* Re-read one candidate on its own, so a stale scan buffer cannot count. */
static bool confirm(int fd, off_t fo, const uint8_t *masked)
{
	unsigned char small[QLEN];

	bool hit;

	if (pread(fd, small, QLEN, fo) != QLEN)
		return false;
	flush_bounce(fd, QLEN);
	hit = match_at(small, masked);
	/* a live key's bytes: never leave them for a forked child's copy */
	explicit_bzero(small, sizeof(small));
	return hit;
}

/* Does no aligned word of this 4 KiB page start a needle? */
static bool page_clean(const unsigned char *p, const struct word_table *t)
{
	size_t pos;

	for (pos = 0; pos < 4096; pos += 8) {
		uint64_t w;
		unsigned int h;

		memcpy(&w, p + pos, 8);
		w ^= MASK64;
		for (h = slot_of(w); t->q[h] >= 0; h = (h + 1) % TSIZE)
			if (t->word[h] == w)
				return false;
	}
	return true;
}

/* Sorted PFNs of every present page of this process. */
struct pfn_set {
	uint64_t *pfn;
	size_t n;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void own_pfns(struct pfn_set *set)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	int pm = open("/proc/self/pagemap", O_RDONLY);
	size_t cap = 0;
	char line[512];

	set->pfn = NULL;
	set->n = 0;
	while (maps && pm >= 0 && fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi, v;

		if (sscanf(line, "%lx-%lx", &lo, &hi) != 2 || strstr(line, "[vsyscall]"))
			continue;
		for (v = lo; v < hi; v += 4096) {
			uint64_t e;

			if (pread(pm, &e, 8, (off_t)(v / 4096 * 8)) != 8)
				break;
			if (!(e >> 63))
				continue;
			if (set->n == cap) {
				uint64_t *p;

				cap = cap ? 2 * cap : 4096;
				p = realloc(set->pfn, cap * sizeof(*p));
				if (!p)
					goto out;
				set->pfn = p;
			}
			set->pfn[set->n++] = e & ((1ULL << 55) - 1);
		}
	}
out:
	if (maps)
		fclose(maps);
	if (pm >= 0)
		close(pm);
	if (set->n)
		qsort(set->pfn, set->n, sizeof(*set->pfn), cmp_u64);
}

static bool is_own(const struct pfn_set *set, uint64_t paddr)
{
	uint64_t pfn = paddr / 4096;

	return set->n && bsearch(&pfn, set->pfn, set->n, sizeof(pfn), cmp_u64);
}

static int kcore_scan(const uint8_t masked[NQ][QLEN], struct scan_result *res)
{
	struct pfn_set own = { NULL, 0 };
	const size_t over = 16;		/* keeps words aligned */
	struct word_table *t = malloc(sizeof(*t));
	unsigned char *buf = malloc(CHUNK + over);
	Elf64_Phdr *ph = NULL;
	Elf64_Ehdr eh;
	int fd, err = 0, i;

	memset(res, 0, sizeof(*res));
	clean_fo = -1;		/* found again: pages change between scans */
	fd = open(kcore_path, O_RDONLY);
	if (fd < 0) {
		err = -errno;
		goto out_free;
	}
	if (!t || !buf) {
		err = -ENOMEM;
		goto out;
	}
	table_build(t, masked);
	/* touch the buffers first, so that their pages are in the set */
	memset(buf, 0, CHUNK + over);
	own_pfns(&own);
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_phentsize != sizeof(Elf64_Phdr)) {
		err = -EINVAL;
		goto out;
	}
	ph = calloc(eh.e_phnum, sizeof(*ph));
	if (!ph) {
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
		int j;

		/* RAM and kernel text; not vmalloc/vmemmap windows */
		if (ph[i].p_type != PT_LOAD || ph[i].p_paddr == (Elf64_Addr)-1)
			continue;
		/*
		 * Physical memory seen through two windows (kernel text in
		 * RAM, a range listed twice) is scanned once, in the larger.
		 */
		for (j = 0; j < eh.e_phnum; j++)
			if (j != i && ph[j].p_type == PT_LOAD &&
			    ph[j].p_paddr != (Elf64_Addr)-1 &&
			    ph[j].p_paddr <= ph[i].p_paddr &&
			    ph[i].p_paddr + ph[i].p_filesz <=
			    ph[j].p_paddr + ph[j].p_filesz &&
			    (ph[j].p_filesz > ph[i].p_filesz || j < i))
				break;
		if (j < eh.e_phnum)
			continue;
		if (ph[i].p_offset % 8) {
			err = -EINVAL;
			goto out;
		}
		for (off = 0; off < ph[i].p_filesz; off += CHUNK) {
			uint64_t n = ph[i].p_filesz - off;
			size_t back = off ? over : 0, len, pos;
			off_t fo = (off_t)(ph[i].p_offset + off - back);
			ssize_t r;

			if (n > CHUNK)
				n = CHUNK;
			r = pread(fd, buf, back + n, fo);
			if (r < 0) {
				err = -errno;
				goto out;
			}
			len = (size_t)r;
			res->bytes += len > back ? len - back : 0;
			if (clean_fo < 0 && !back && len >= 4096 &&
			    page_clean(buf, t))
				clean_fo = fo;
			for (pos = 0; pos + 8 <= len; pos += 8) {
				uint64_t w;
				unsigned int h;

				memcpy(&w, buf + pos, 8);
				w ^= MASK64;
				for (h = slot_of(w); t->q[h] >= 0;
				     h = (h + 1) % TSIZE) {
					uint64_t pa;
					size_t at;
					int q = t->q[h];

					if (t->word[h] != w || pos < t->d[h])
						continue;
					at = pos - t->d[h];
					/*
					 * whole needle in this buffer, and not
					 * wholly in the overlap (counted before)
					 */
					if (at + QLEN > len || at + QLEN <= back)
						continue;
					if (!match_at(buf + at, masked[q]) ||
					    !confirm(fd, fo + (off_t)at, masked[q]))
						continue;
					pa = ph[i].p_paddr +
					     (fo + at - ph[i].p_offset);
					/* our own user memory is not a leak */
					if (is_own(&own, pa)) {
						res->own[q]++;
						continue;
					}
					if (!res->first_hit_paddr)
						res->first_hit_paddr = pa;
					if (res->hits[q] < NADDR)
						res->paddr[q][res->hits[q]] = pa;
					res->hits[q]++;
				}
			}
		}
	}
out:
	flush_bounce(fd, 4096);
	close(fd);
out_free:
	free(own.pfn);
	free(ph);
	if (buf)	/* it held RAM with the live keys in it */
		explicit_bzero(buf, CHUNK + over);
	free(buf);
	free(t);
	return err;
}

/*
 * Leave no key byte of ours behind where the scan could find it and blame
 * the kernel: dead stack below us (a forked dmsetup copies our stack page
 * on write, and that copy is freed unwiped) and vector registers (saved in
 * our task's FPU state on every context switch and copied by fork).  The
 * registers get non-zero junk: registers in their initial state may not be
 * written back by XSAVEOPT, leaving the old bytes in memory.
 */
static void __attribute__((noinline)) scrub_stack(void)
{
	unsigned char pad[128 * 1024];

	explicit_bzero(pad, sizeof(pad));
	__asm__ __volatile__("" : : "r"(pad) : "memory");
}

__attribute__((target("avx2"))) static void junk_ymm(void)
{
	__asm__ __volatile__(
		"vpcmpeqd %%ymm0, %%ymm0, %%ymm0\n\t"
		"vpcmpeqd %%ymm1, %%ymm1, %%ymm1\n\t"
		"vpcmpeqd %%ymm2, %%ymm2, %%ymm2\n\t"
		"vpcmpeqd %%ymm3, %%ymm3, %%ymm3\n\t"
		"vpcmpeqd %%ymm4, %%ymm4, %%ymm4\n\t"
		"vpcmpeqd %%ymm5, %%ymm5, %%ymm5\n\t"
		"vpcmpeqd %%ymm6, %%ymm6, %%ymm6\n\t"
		"vpcmpeqd %%ymm7, %%ymm7, %%ymm7\n\t"
		"vpcmpeqd %%ymm8, %%ymm8, %%ymm8\n\t"
		"vpcmpeqd %%ymm9, %%ymm9, %%ymm9\n\t"
		"vpcmpeqd %%ymm10, %%ymm10, %%ymm10\n\t"
		"vpcmpeqd %%ymm11, %%ymm11, %%ymm11\n\t"
		"vpcmpeqd %%ymm12, %%ymm12, %%ymm12\n\t"
		"vpcmpeqd %%ymm13, %%ymm13, %%ymm13\n\t"
		"vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n\t"
		"vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n\t"
		: : : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
		  "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
		  "xmm14", "xmm15");
}

static void junk_xmm(void)
{
	__asm__ __volatile__(
		"pcmpeqd %%xmm0, %%xmm0\n\t"
		"pcmpeqd %%xmm1, %%xmm1\n\t"
		"pcmpeqd %%xmm2, %%xmm2\n\t"
		"pcmpeqd %%xmm3, %%xmm3\n\t"
		"pcmpeqd %%xmm4, %%xmm4\n\t"
		"pcmpeqd %%xmm5, %%xmm5\n\t"
		"pcmpeqd %%xmm6, %%xmm6\n\t"
		"pcmpeqd %%xmm7, %%xmm7\n\t"
		"pcmpeqd %%xmm8, %%xmm8\n\t"
		"pcmpeqd %%xmm9, %%xmm9\n\t"
		"pcmpeqd %%xmm10, %%xmm10\n\t"
		"pcmpeqd %%xmm11, %%xmm11\n\t"
		"pcmpeqd %%xmm12, %%xmm12\n\t"
		"pcmpeqd %%xmm13, %%xmm13\n\t"
		"pcmpeqd %%xmm14, %%xmm14\n\t"
		"pcmpeqd %%xmm15, %%xmm15\n\t"
		: : : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
		  "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
		  "xmm14", "xmm15");
}

static void scrub_own_traces(void)
{
	scrub_stack();
	if (__builtin_cpu_supports("avx2"))
		junk_ymm();
	else
		junk_xmm();
}

static unsigned int key_hits(const struct scan_result *r, int k)
{
	return r->hits[2 * k] + r->hits[2 * k + 1];
}

/* What kind of page holds @paddr (/proc/kpageflags), for the log. */
static void page_kind(uint64_t paddr, char *buf, size_t sz)
{
	static const struct { int bit; const char *name; } f[] = {
		{ 7, "slab" }, { 10, "buddy(free)" }, { 11, "mmap" },
		{ 12, "anon" }, { 5, "lru" }, { 15, "compound_head" },
		{ 16, "compound_tail" }, { 22, "thp" }, { 3, "uptodate" },
		{ 20, "nopage" }, { 21, "ksm" }, { 25, "pgtable" },
	};
	uint64_t flags = 0;
	size_t used = 0, i;
	int fd = open("/proc/kpageflags", O_RDONLY);

	buf[0] = '\0';
	if (fd < 0)
		return;
	if (pread(fd, &flags, 8, (off_t)(paddr / 4096 * 8)) == 8) {
		used = (size_t)snprintf(buf, sz, "flags 0x%llx",
					(unsigned long long)flags);
		for (i = 0; i < ARRAY_SIZE(f) && used < sz; i++)
			if (flags & (1ULL << f[i].bit))
				used += (size_t)snprintf(buf + used, sz - used,
							 " %s", f[i].name);
	}
	close(fd);
}

/* Find @paddr in this process's memory: "vaddr in <mapping>", or "". */
static void own_mapping(uint64_t paddr, char *buf, size_t sz)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	int pm = open("/proc/self/pagemap", O_RDONLY);
	char line[512];

	buf[0] = '\0';
	if (!maps || pm < 0)
		goto out;
	while (fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi, v;

		if (sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			continue;
		for (v = lo; v < hi; v += 4096) {
			uint64_t e;

			if (pread(pm, &e, 8, (off_t)(v / 4096 * 8)) != 8)
				break;
			if ((e >> 63) && (e & ((1ULL << 55) - 1)) == paddr / 4096) {
				line[strcspn(line, "\n")] = '\0';
				snprintf(buf, sz, "our 0x%lx in %.200s",
					 v + (unsigned long)(paddr % 4096), line);
				goto out;
			}
		}
	}
out:
	if (maps)
		fclose(maps);
	if (pm >= 0)
		close(pm);
}

static void log_addrs(struct __test_metadata *_metadata,
		      const struct scan_result *r, int k)
{
	int half, j;

	for (half = 0; half < 2; half++)
		for (j = 0; j < NADDR && j < (int)r->hits[2 * k + half]; j++) {
			char kind[160], own[300];

			page_kind(r->paddr[2 * k + half][j], kind, sizeof(kind));
			own_mapping(r->paddr[2 * k + half][j], own, sizeof(own));
			TH_LOG("  key %d half %d copy at physical 0x%llx (%s) %s",
			       k, half,
			       (unsigned long long)r->paddr[2 * k + half][j],
			       kind, own);
		}
}

FIXTURE_SETUP(wipe_memory)
{
	unsigned char *buf = cmk_alloc(65536);
	int k, i;

	CMK_SETUP_CLEAN();
	ASSERT_NL_OPEN(&self->nl);
	ASSERT_NE(NULL, buf);
	for (k = 0; k < NKEY; k++) {
		struct cmk_table t = {
			.len = 8192, .key_name = key_names[k], .dev = rams[k],
		};
		uint8_t key[DM_CMK_KEY_LEN];
		char path[128];

		ASSERT_CMK_CREATE(dm_names[k], &t);
		/* keys no other test ever used; keep only masked bytes */
		ASSERT_EQ((ssize_t)sizeof(key),
			  getrandom(key, sizeof(key), 0));
		if (!memcmp(key, key + 32, 32))
			key[0] ^= 1;
		for (i = 0; i < QLEN; i++) {
			self->masked[2 * k][i] = key[i] ^ MASK;
			self->masked[2 * k + 1][i] = key[32 + i] ^ MASK;
			self->cross[k][i] = key[CROSS + i] ^ MASK;
		}
		ASSERT_KEY_SET(&self->nl, key_names[k], key, LEASE_SCAN,
			       1);
		explicit_bzero(key, sizeof(key));
		scrub_own_traces();
		/* use each key on both paths */
		cmk_dm_path(path, sizeof(path), dm_names[k]);
		cmk_fill(buf, 65536, 111 + k);
		ASSERT_EQ(0, cmk_dev_write(path, buf, 65536, 0, true));
		ASSERT_EQ(0, cmk_dev_read(path, buf, 65536, 0, true));
	}
	free(buf);
}

FIXTURE_TEARDOWN(wipe_memory)
{
	int k;

	cmk_nl_close(&self->nl);
	for (k = 0; k < NKEY; k++)
		cmk_dm_remove(dm_names[k]);
}

TEST_F_TIMEOUT(wipe_memory, no_key_bytes_in_ram_after_wipe_expiry_removal_replace,
	       300)
{
	struct scan_result before, after;
	uint8_t other[DM_CMK_KEY_LEN];
	char line[512], out[1024];
	struct cmk_table t;
	uint64_t t0, end;
	struct cmk_info in;
	int err, k;

	/* positive control: every live key schedule is visible to the scan */
	t0 = cmk_now_ms();
	err = kcore_scan((const uint8_t (*)[QLEN])self->masked, &before);
	ASSERT_EQ(0, err) TH_LOG("/proc/kcore: %s", strerror(-err));
	TH_LOG("active keys: scanned %llu MiB in %llu ms",
	       (unsigned long long)(before.bytes >> 20),
	       (unsigned long long)(cmk_now_ms() - t0));
	ASSERT_LT(64ULL << 20, before.bytes) TH_LOG("scanned too little RAM");
	for (k = 0; k < NKEY; k++) {
		unsigned int h = key_hits(&before, k);

		TH_LOG("active key %d: %u + %u copies (and %u in our own memory)",
		       k, before.hits[2 * k], before.hits[2 * k + 1],
		       before.own[2 * k] + before.own[2 * k + 1]);
		log_addrs(_metadata, &before, k);
		ASSERT_LT(0U, h)
			TH_LOG("active key %d not found: the scan would not see a leak either",
			       k);
	}

	/*
	 * The scan copied live key bytes through our buffers and stack; the
	 * dmsetup fork below must not take a copy-on-write original of them
	 * away, out of reach of our scrub, and free it for the second scan.
	 */
	scrub_own_traces();

	ASSERT_KEY_WIPE(&self->nl, key_names[BY_KEY_WIPE]);
	ASSERT_EQ(0, cmk_lease_renew(&self->nl, key_names[BY_LEASE_EXPIRY],
				     1500, NULL, 0));
	ASSERT_DM_REMOVE(dm_names[BY_DEVICE_REMOVAL]);
	/* A device changes its key only with a new table (a new slot). */
	t = (struct cmk_table){
		.len = 8192, .key_name = "memory-3b", .dev = rams[BY_KEY_REPLACE],
	};
	cmk_table_cmk(line, sizeof(line), &t);
	ASSERT_EQ(0, cmk_dm_reload(dm_names[BY_KEY_REPLACE], line, out,
				   sizeof(out)))
		TH_LOG("reload %s: %s", dm_names[BY_KEY_REPLACE], out);
	ASSERT_EQ(0, cmk_dm_resume(dm_names[BY_KEY_REPLACE]));
	cmk_key_make(other, 112);
	ASSERT_KEY_SET(&self->nl, "memory-3b", other, LEASE_SCAN, 2);
	explicit_bzero(other, sizeof(other));
	scrub_own_traces();
	end = cmk_now_ms() + 60000;
	do {
		cmk_sleep_ms(200);
		ASSERT_EQ(0, cmk_get(&self->nl, key_names[BY_LEASE_EXPIRY], &in,
				     NULL, 0));
	} while (in.state != DM_CMK_STATE_WIPED && cmk_now_ms() < end);
	ASSERT_EQ((uint32_t)DM_CMK_STATE_WIPED, in.state)
		TH_LOG("the 1500 ms lease did not expire within 60 s");

	t0 = cmk_now_ms();
	err = kcore_scan((const uint8_t (*)[QLEN])self->masked, &after);
	ASSERT_EQ(0, err) TH_LOG("/proc/kcore: %s", strerror(-err));
	TH_LOG("after: scanned %llu MiB in %llu ms",
	       (unsigned long long)(after.bytes >> 20),
	       (unsigned long long)(cmk_now_ms() - t0));
	for (k = 0; k < NKEY; k++) {
		unsigned int h = key_hits(&after, k);
		const char *how = how_name[k];

		if (after.own[2 * k] + after.own[2 * k + 1])
			TH_LOG("key %d: %u copies in the test's own memory (ignored)",
			       k, after.own[2 * k] + after.own[2 * k + 1]);
		EXPECT_EQ(0U, h)
			TH_LOG("key bytes still in RAM after %s (%u + %u copies)",
			       how, after.hits[2 * k], after.hits[2 * k + 1]);
		if (h)
			log_addrs(_metadata, &after, k);
	}
}

/*
 * authority: keys that the kernel refuses leave nothing behind either.
 * Oracle: the same RAM scan.  A device is bound to key 0 (live: the
 * positive control); key 1 is pushed to it and refused (not the bound
 * key), key 2 is sent twice in one request (refused), and key 3 comes
 * from a process without CAP_SYS_ADMIN (refused).  Every copy of keys 1
 * to 3 in the kernel's request buffers must have been zeroed.
 */
static void masked_key(uint8_t masked[NQ][QLEN], int k, uint8_t key[DM_CMK_KEY_LEN])
{
	int i;

	for (i = 0; i < QLEN; i++) {
		key[i] = masked[2 * k][i] ^ MASK;
		key[32 + i] = masked[2 * k + 1][i] ^ MASK;
	}
}

TEST_F_TIMEOUT(wipe_memory, authority_refused_keys_leave_no_bytes_in_ram, 300)
{
	static const int no_sys_admin[] = { CAP_SYS_ADMIN };
	struct cmk_table t = {
		.len = 8192, .key_name = "refused-0", .dev = CMK_RAM(0),
	};
	uint8_t masked[NQ][QLEN], key[DM_CMK_KEY_LEN], dup[DM_CMK_KEY_LEN];
	struct scan_result res;
	struct cmk_req r;
	int k, i, err, status;
	pid_t pid;

	/* the fixture's devices are not this test's subject */
	for (k = 0; k < NKEY; k++)
		ASSERT_DM_REMOVE(dm_names[k]);
	for (k = 0; k < NKEY; k++) {
		ASSERT_EQ((ssize_t)sizeof(key), getrandom(key, sizeof(key), 0));
		if (!memcmp(key, key + 32, 32))
			key[0] ^= 1;
		for (i = 0; i < QLEN; i++) {
			masked[2 * k][i] = key[i] ^ MASK;
			masked[2 * k + 1][i] = key[32 + i] ^ MASK;
		}
	}
	ASSERT_CMK_CREATE(CMK_DM_PREFIX "refused", &t);

	masked_key(masked, 0, key);
	ASSERT_KEY_SET(&self->nl, "refused-0", key, LEASE_SCAN, 1);
	masked_key(masked, 1, key);
	EXPECT_EQ(-EKEYREJECTED, cmk_key_set(&self->nl, "refused-0", key,
					     LEASE_SCAN, 2, NULL, 0));
	masked_key(masked, 2, dup);
	r = (struct cmk_req){
		.cmd = DM_CMK_CMD_KEY_SET, .name = "refused-0", .key = dup,
		.key_len = DM_CMK_KEY_LEN, .key2 = dup, .has_lease = true,
		.lease_ms = LEASE_SCAN,
	};
	EXPECT_EQ(-EINVAL, cmk_nl_request(&self->nl, &r, NULL, NULL, NULL, 0));
	explicit_bzero(dup, sizeof(dup));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct cmk_nl nl;
		int ret = 100;

		masked_key(masked, 3, key);
		if (!cmk_drop_caps(no_sys_admin, 1) && !cmk_nl_open(&nl)) {
			ret = cmk_key_set(&nl, "refused-0", key, LEASE_SCAN,
					  3, NULL, 0) == -EPERM ? 0 : 101;
			cmk_nl_close(&nl);
		}
		explicit_bzero(key, sizeof(key));
		scrub_own_traces();
		_exit(ret);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("the unprivileged KEY_SET was not refused");
	explicit_bzero(key, sizeof(key));
	scrub_own_traces();

	err = kcore_scan((const uint8_t (*)[QLEN])masked, &res);
	ASSERT_EQ(0, err) TH_LOG("/proc/kcore: %s", strerror(-err));
	TH_LOG("scanned %llu MiB; bound key: %u copies",
	       (unsigned long long)(res.bytes >> 20), key_hits(&res, 0));
	ASSERT_LT(0U, key_hits(&res, 0))
		TH_LOG("the live key was not found: the scan would miss a leak");
	for (k = 1; k < NKEY; k++) {
		EXPECT_EQ(0U, key_hits(&res, k))
			TH_LOG("refused key %d: %u copies in RAM", k,
			       key_hits(&res, k));
		if (key_hits(&res, k))
			log_addrs(_metadata, &res, k);
	}
	ASSERT_DM_REMOVE(CMK_DM_PREFIX "refused");
}

/*
 * An accepted KEY_SET leaves no copy of its key in the request either.
 * Oracle: the RAM scan, while the four keys are live.  The crypto API
 * keeps an XTS key as two AES schedules, each starting with its half of
 * the key, so key[0..15] is found (the positive control) but key[24..39],
 * which straddles the halves, is not: only a plain copy of the whole key
 * holds those bytes in a row, such as the KEY attribute of the request's
 * buffer if the kernel did not zero it (dm-cmk.rst: the key in a request
 * is zeroed on every path).
 */
TEST_F_TIMEOUT(wipe_memory, accepted_key_set_request_zeroed, 300)
{
	uint8_t needles[NQ][QLEN];
	struct scan_result res;
	uint64_t t0;
	int err, k;

	for (k = 0; k < NKEY; k++) {
		memcpy(needles[2 * k], self->masked[2 * k], QLEN);
		memcpy(needles[2 * k + 1], self->cross[k], QLEN);
	}
	t0 = cmk_now_ms();
	err = kcore_scan((const uint8_t (*)[QLEN])needles, &res);
	ASSERT_EQ(0, err) TH_LOG("/proc/kcore: %s", strerror(-err));
	TH_LOG("scanned %llu MiB in %llu ms",
	       (unsigned long long)(res.bytes >> 20),
	       (unsigned long long)(cmk_now_ms() - t0));
	for (k = 0; k < NKEY; k++) {
		TH_LOG("live key %d: %u copies of key[0..15], %u of key[%d..%d]",
		       k, res.hits[2 * k], res.hits[2 * k + 1], CROSS,
		       CROSS + QLEN - 1);
		ASSERT_LT(0U, res.hits[2 * k])
			TH_LOG("live key %d not found: the scan would not see a leak either",
			       k);
		EXPECT_EQ(0U, res.hits[2 * k + 1])
			TH_LOG("a whole copy of accepted key %d is in RAM (the KEY_SET request not zeroed?)",
			       k);
		if (res.hits[2 * k + 1])
			log_addrs(_metadata, &res, k);
	}
}

TEST_HARNESS_MAIN
