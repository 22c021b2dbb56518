// SPDX-License-Identifier: GPL-2.0
/*
 * forkwatch.c - the kernel's VM-fork epoch, as cmk-agent follows it
 * (see forkwatch.h).
 */
#include "forkwatch.h"

#include <errno.h>

void cmk_forkwatch_init(struct cmk_forkwatch *fw)
{
	fw->kek = CMK_EPOCH_NONE;
	fw->job = CMK_EPOCH_UNKNOWN;
	fw->acted = -1;
	fw->counts = false;
	cmk_err_clear(&fw->err);
}

int64_t cmk_forkwatch_read(struct cmk_forkwatch *fw, struct cmk_genl *g)
{
	uint32_t v;
	int ret = cmk_genl_epoch(g, &v, &fw->err);

	if (!ret) {
		fw->counts = true;
		return v;
	}
	/* The module does not count forks (any more: it was replaced). */
	if (ret == -ENOMSG) {
		fw->counts = false;
		return CMK_EPOCH_NONE;
	}
	return CMK_EPOCH_UNKNOWN;
}

void cmk_forkwatch_job_start(struct cmk_forkwatch *fw, struct cmk_genl *g)
{
	fw->job = cmk_forkwatch_read(fw, g);
}

int cmk_forkwatch_adopt(struct cmk_forkwatch *fw, struct cmk_genl *g,
			struct cmk_err *e)
{
	int64_t now = cmk_forkwatch_read(fw, g), then = fw->job;

	fw->job = CMK_EPOCH_UNKNOWN;
	if (then >= 0 && now == then) {
		fw->kek = now;
		return 0;
	}
	if (then == CMK_EPOCH_NONE && now == CMK_EPOCH_NONE) {
		fw->kek = CMK_EPOCH_NONE;
		return 0;
	}
	if (then >= 0 && now > then) {
		if (now > fw->acted)
			fw->acted = now;
		cmk_err_kms(e, CMK_R_UNAVAILABLE,
			    "a VM fork came while the KEK was being unsealed (VM-fork epoch %lld, now %lld): that KEK is not used; unsealing again",
			    (long long)then, (long long)now);
		return -ESTALE;
	}
	cmk_err_kms(e, CMK_R_UNAVAILABLE,
		    "cannot tell which VM-fork epoch the KEK was unsealed in (%s): that KEK is not used; unsealing again",
		    fw->err.msg[0] ? fw->err.msg : "the dm-cmk module changed while it was unsealed");
	return -EAGAIN;
}

void cmk_forkwatch_forget(struct cmk_forkwatch *fw)
{
	fw->kek = CMK_EPOCH_NONE;
}

bool cmk_forkwatch_seen(struct cmk_forkwatch *fw, bool has_epoch,
			uint32_t epoch, bool vmfork)
{
	if (!has_epoch)
		return vmfork;		/* an old module: every report counts */
	fw->counts = true;
	/* Another device's report of a fork acted on already. */
	if (fw->acted >= 0 && (int64_t)epoch <= fw->acted)
		return false;
	if (vmfork || (fw->kek >= 0 && (int64_t)epoch != fw->kek)) {
		fw->acted = epoch;
		return true;
	}
	return false;
}

bool cmk_forkwatch_kek_stale(struct cmk_forkwatch *fw, struct cmk_genl *g)
{
	int64_t now = cmk_forkwatch_read(fw, g);

	if (fw->kek < 0 || now < 0 || now == fw->kek)
		return false;
	if (now > fw->acted)
		fw->acted = now;
	return true;
}
