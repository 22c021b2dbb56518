/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kfuzz.h - the dm-cmk kernel fuzzer (tests/kselftest/kfuzz*.c).
 *
 * An operation is fully determined by one 64-bit "sub-seed": the kind of
 * operation and every argument are drawn from it alone, never from the
 * results of earlier operations.  A run's sequence is therefore a function
 * of its seed, and any subset of a recorded sequence replays the same
 * operations, which is what the minimizer needs.
 */
#ifndef KFUZZ_H
#define KFUZZ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Devices "kf-0".."kf-3" on /dev/ram0..3, keys "kf-k0".."kf-k3". */
#define KF_SLOTS	4
#define KF_DEV_PREFIX	"kf-"
#define KF_KEY_PREFIX	"kf-k"
#define KF_RAM_SECTORS	131072ULL	/* 64 MiB, brd rd_size=65536 */
/* The verifier's region: the first KF_BLOCKS blocks of each device. */
#define KF_BLOCK	4096
#define KF_BLOCKS	256

/*
 * Per device slot, shared between the operation thread and the I/O
 * threads.  @epoch is odd while an operation may change the mapping of the
 * slot's device (create, resume of a new table, remove); data written in
 * one even epoch must read back unchanged in the same epoch.  @minor is
 * the device's minor + 1, or 0 when the slot has no device.
 */
struct kf_slot {
	atomic_uint epoch;
	atomic_uint minor;
	/*
	 * When a noflush suspend or a resume of the slot's device last ran
	 * (ms).  A noflush suspend hands held bios back to device-mapper,
	 * which issues them again after the resume, where they may be held
	 * afresh for their table's hold_ms (Documentation/dm-cmk.rst): an
	 * I/O's hang clock starts again then.
	 */
	_Atomic uint64_t requeued_ms;
};

extern struct kf_slot kf_slots[KF_SLOTS];

static inline void kf_mapping_begin(int s)
{
	atomic_fetch_add(&kf_slots[s].epoch, 1);
}

static inline void kf_mapping_end(int s)
{
	atomic_fetch_add(&kf_slots[s].epoch, 1);
}

/*
 * The version of the mapping from sub-seed to operation: bump it whenever
 * kfuzz_ops.c draws differently, so a replay file (which names it) is not
 * silently replayed as other operations.
 */
#define KF_GEN_VERSION	1

/* splitmix64: the one PRNG of the fuzzer. */
static inline uint64_t kf_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint32_t kf_below(uint64_t *s, uint32_t n)
{
	return n ? (uint32_t)(kf_rand(s) % n) : 0;
}

/* The sub-seed of operation @idx of the run seeded with @seed. */
static inline uint64_t kf_op_seed(uint64_t seed, uint64_t idx)
{
	uint64_t s = seed ^ (idx * 0xd1342543de82ef95ULL);

	return kf_rand(&s);
}

/* ---- kfuzz_ops.c: generate and run one operation ------------------ */

enum kf_op_class { KF_OP_NETLINK, KF_OP_DM, KF_OP_OTHER, KF_OP_CLASSES };

int kf_ops_init(void);
void kf_ops_exit(void);
/*
 * Run the operation of sub-seed @sub.  @desc gets a one-line description
 * (never key bytes) and the result.  Returns its class.
 */
enum kf_op_class kf_op_run(uint64_t sub, char *desc, size_t sz);
/* Describe without running. */
void kf_op_describe(uint64_t sub, char *desc, size_t sz);
/*
 * Resume every kf- device (a suspended one would hold the I/O threads).
 * Resuming a loaded inactive table changes the mapping: epochs move.
 */
void kf_resume_all(void);
/* For a hang report: the state of each kf- device, as # lines. */
void kf_print_slots(void);
/*
 * Back to a known state: resume and remove every kf- device, wipe every
 * key.  Returns 0, or -errno if a device could not be removed.
 */
int kf_reset(void);

/* ---- kfuzz_io.c: O_DIRECT writers and verifiers ------------------- */

struct kf_io_stats {
	uint64_t writes, reads, verified, io_errors, mismatches;
};

int kf_io_start(uint64_t seed);
void kf_io_stop(void);
void kf_io_get_stats(struct kf_io_stats *st);
/* The longest single pread/pwrite of the run so far, in ms. */
uint64_t kf_io_slowest_ms(void);
/* The first mismatch's description, or "" when there was none. */
const char *kf_io_mismatch(void);
/*
 * The oldest I/O still in flight: its start (CLOCK_MONOTONIC ms) or 0,
 * and its description.
 */
uint64_t kf_io_busy_since(char *what, size_t sz);

#endif /* KFUZZ_H */
