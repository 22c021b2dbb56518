/* SPDX-License-Identifier: GPL-2.0 */
/*
 * forkwatch.h - the kernel's VM-fork epoch, as cmk-agent follows it.
 *
 * dm-cmk counts the VM forks it has seen (its "epoch", dm-cmk.rst).  A KEK
 * unsealed before a fork came from the parent VM: the clone must unseal its
 * own before it installs any key.  The kernel refuses a KEY_SET whose EPOCH
 * is not its own (ESTALE), so every key the agent installs carries the
 * epoch its KEK was unsealed in; this module decides what that epoch is,
 * and when something the kernel reports reveals a fork:
 *
 *   job start   the epoch is read (GET, FLAGS=ALL: no device needed) before
 *               a KMS job asks the KMS anything.  A module that refuses a
 *               GET without NAME is asked for any device's EPOCH (GET
 *               dump); with no device yet, and before any epoch was
 *               reported, there is nothing to tell (none).
 *   adopt       before KEKs a job unwrapped are adopted, the epoch is read
 *               again.  Equal: adopted, and KEY_SET carries that epoch.
 *               Different: a fork came while the KMS was asked - not
 *               adopted, act as on the fork.  Unknown once the kernel has
 *               reported an epoch (a failed read, no device to ask): not
 *               adopted, try again - never a KEK of an epoch nobody knows.
 *   seen        every EPOCH the kernel reports (events, GET): a VMFORK
 *               event of any device (a fork is the whole kernel's) with an
 *               epoch not acted on yet, or any epoch other than the KEK's
 *               or the running job's, is a fork.  One fork reported by
 *               many devices is acted on once.  An epoch lower than the
 *               last one reported is a module loaded again: its count
 *               starts over, and so do the forks acted on.
 *
 * A module that does not report epochs (older than the agent: its GET
 * answers carry no EPOCH) leaves only the vmfork events; the agent says so
 * once (cmk_forkwatch_tell()), and sends no EPOCH.  So does a module that
 * replaced one that reported them (a downgrade), told once again.  A
 * module that reports EPOCH only per device cannot give one before the
 * first device exists: the boot unseal's KEK then carries none.
 */
#ifndef CMK_FORKWATCH_H
#define CMK_FORKWATCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "device/genl.h"

/* What an epoch read gave, besides a value >= 0. */
#define CMK_EPOCH_NONE		(-1)	/* the kernel does not count forks */
#define CMK_EPOCH_UNKNOWN	(-2)	/* the read failed */

/**
 * struct cmk_forkwatch - the epochs the agent's keys and jobs rest on
 * @kek: epoch the KEK in memory was unsealed in (what KEY_SET carries),
 *	or CMK_EPOCH_NONE (no KEK, or a kernel without epochs)
 * @job: epoch read when the running job began (or CMK_EPOCH_*)
 * @acted: the epoch of the last fork acted on, -1 before any
 * @last: the last epoch the kernel reported, -1 before any
 * @counts: the kernel has reported an epoch: from now on one is required
 *	(until a module answers that it has none: @downgraded)
 * @downgraded: the module stopped reporting epochs after it had
 * @told: cmk_forkwatch_tell() said that keys go without an epoch
 * @err: why the last read failed (cleared by every read)
 * @job_err: why the read at the job's start failed
 */
struct cmk_forkwatch {
	int64_t kek;
	int64_t job;
	int64_t acted;
	int64_t last;
	bool counts;
	bool downgraded;
	bool told;
	struct cmk_err err;
	struct cmk_err job_err;
};

void cmk_forkwatch_init(struct cmk_forkwatch *fw);

/* cmk_forkwatch_read() - the epoch now: >= 0, or CMK_EPOCH_NONE/UNKNOWN. */
int64_t cmk_forkwatch_read(struct cmk_forkwatch *fw, struct cmk_genl *g);

/* cmk_forkwatch_job_start() - a KMS job is about to ask the KMS. */
void cmk_forkwatch_job_start(struct cmk_forkwatch *fw, struct cmk_genl *g);

/*
 * cmk_forkwatch_adopt() - may the KEKs the job just unwrapped be adopted?
 * 0: yes, @fw->kek is their epoch.  -ESTALE: a fork came while the job
 * ran (act on it; @fw->acted records it).  -EAGAIN: the epoch is not known
 * on a kernel that reports one.  @e says why (transient) when not 0.
 */
int cmk_forkwatch_adopt(struct cmk_forkwatch *fw, struct cmk_genl *g,
			struct cmk_err *e);

/*
 * cmk_forkwatch_tell() - after an adoption: true once (per change) when the
 * KEK carries no epoch, with @e saying why (a module without epochs, or
 * one that replaced a module with them), to log (audit and journal).
 */
bool cmk_forkwatch_tell(struct cmk_forkwatch *fw, struct cmk_err *e);

/* cmk_forkwatch_forget() - the KEK in memory was wiped. */
void cmk_forkwatch_forget(struct cmk_forkwatch *fw);

/*
 * cmk_forkwatch_seen() - the kernel reported @epoch (@has_epoch) in an
 * event (a VMFORK wipe if @vmfork) or a GET.  True: a fork to act on now.
 */
bool cmk_forkwatch_seen(struct cmk_forkwatch *fw, bool has_epoch,
			uint32_t epoch, bool vmfork);

/*
 * cmk_forkwatch_kek_stale() - a KEY_SET was refused with ESTALE (volume.c
 * passes it on as -EKEYEXPIRED, apart from a stale header's -ESTALE): is
 * the KEK from before a fork?  Reads the
 * epoch; true (and recorded as acted on) when it is not the KEK's.
 */
bool cmk_forkwatch_kek_stale(struct cmk_forkwatch *fw, struct cmk_genl *g);

/**
 * struct cmk_forkwatch_source - the epoch now, for any thread: what
 * http.c checks before it reuses a kept TLS connection
 * (cmk_http_set_epoch_source()); its own netlink socket and lock
 * @mu: serialises reads
 * @g: the socket (NULL: reopened at the next read)
 * @fw: the reads' state (separate from the loop's)
 */
struct cmk_forkwatch_source {
	pthread_mutex_t mu;
	struct cmk_genl *g;
	struct cmk_forkwatch fw;
};

int cmk_forkwatch_source_open(struct cmk_forkwatch_source *s,
			      struct cmk_err *e);
/* cmk_forkwatch_source_read() - @arg: the source; as cmk_forkwatch_read(). */
int64_t cmk_forkwatch_source_read(void *arg);
void cmk_forkwatch_source_close(struct cmk_forkwatch_source *s);

#endif /* CMK_FORKWATCH_H */
