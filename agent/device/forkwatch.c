// SPDX-License-Identifier: GPL-2.0
/*
 * forkwatch.c - the kernel's VM-fork epoch, as cmk-agent follows it
 * (see forkwatch.h).
 */
#include "device/forkwatch.h"

#include <errno.h>

void cmk_forkwatch_init(struct cmk_forkwatch *fw)
{
	fw->kek = CMK_EPOCH_NONE;
	fw->job = CMK_EPOCH_UNKNOWN;
	fw->acted = -1;
	fw->last = -1;
	fw->counts = false;
	fw->downgraded = false;
	fw->told = false;
	cmk_err_clear(&fw->err);
	cmk_err_clear(&fw->job_err);
}

/*
 * The kernel reported @v.  Epochs only grow while a module is loaded: a
 * lower one is a module loaded again (its count starts over), so the
 * forks acted on before say nothing about the new count.
 */
static void epoch_reported(struct cmk_forkwatch *fw, uint32_t v)
{
	if (fw->last >= 0 && (int64_t)v < fw->last)
		fw->acted = -1;
	fw->last = v;
	fw->counts = true;
	fw->downgraded = false;
	fw->told = false;
}

struct probe {
	unsigned int devices;
	bool has_epoch;
	uint32_t epoch;
};

static int probe_one(const struct cmk_dev_info *info, void *arg)
{
	struct probe *p = arg;

	p->devices++;
	if (info->has_epoch && !p->has_epoch) {
		p->has_epoch = true;
		p->epoch = info->epoch;	/* the kernel's: every device reports it */
	}
	return 0;
}

/*
 * A module that refuses GET without NAME: any device's EPOCH.  -ENOMSG:
 * its devices report none (the module has no epochs); -ENODEV: no device
 * to ask; other: the read failed.
 */
static int device_epoch(struct cmk_genl *g, uint32_t *epoch, struct cmk_err *e)
{
	struct probe p = { 0 };
	int ret = cmk_genl_dump(g, probe_one, &p, e);

	if (ret) {
		cmk_err_prefix(e, "VM-fork epoch: GET without a device refused, and listing the devices failed");
		return ret == -ENOMSG || ret == -ENODEV ? -EIO : ret;
	}
	if (!p.devices)
		return cmk_errf(e, -ENODEV,
				"this dm-cmk module reports its VM-fork epoch only per device, and there is no device yet");
	if (!p.has_epoch)
		return cmk_errf(e, -ENOMSG,
				"this dm-cmk module does not report its VM-fork epoch (older than the agent?): a clone is caught only by its vmfork events");
	*epoch = p.epoch;
	return 0;
}

int64_t cmk_forkwatch_read(struct cmk_forkwatch *fw, struct cmk_genl *g)
{
	uint32_t v;
	int ret;

	cmk_err_clear(&fw->err);
	ret = cmk_genl_epoch(g, &v, &fw->err);
	if (ret == -EINVAL)
		ret = device_epoch(g, &v, &fw->err);
	if (!ret) {
		epoch_reported(fw, v);
		return v;
	}
	/* The module does not count forks (any more: it was replaced). */
	if (ret == -ENOMSG) {
		fw->downgraded |= fw->counts;
		fw->counts = false;
		return CMK_EPOCH_NONE;
	}
	/* Per device only, and no device yet: nothing to tell, unless it counted. */
	if (ret == -ENODEV && !fw->counts)
		return CMK_EPOCH_NONE;
	return CMK_EPOCH_UNKNOWN;
}

void cmk_forkwatch_job_start(struct cmk_forkwatch *fw, struct cmk_genl *g)
{
	fw->job = cmk_forkwatch_read(fw, g);
	fw->job_err = fw->err;
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
	/* Both reads: the module has no epochs (never had, or no longer has). */
	if (then == CMK_EPOCH_NONE && now == CMK_EPOCH_NONE && !fw->counts) {
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
		    now == CMK_EPOCH_UNKNOWN && fw->err.msg[0] ? fw->err.msg :
		    then == CMK_EPOCH_UNKNOWN && fw->job_err.msg[0] ? fw->job_err.msg :
		    "the dm-cmk module changed while it was unsealed");
	return -EAGAIN;
}

bool cmk_forkwatch_tell(struct cmk_forkwatch *fw, struct cmk_err *e)
{
	if (fw->kek != CMK_EPOCH_NONE || fw->told)
		return false;
	fw->told = true;
	if (fw->downgraded)
		cmk_errf(e, -ENOMSG,
			 "the dm-cmk module stopped reporting its VM-fork epoch (replaced by an older one?): keys are installed without one, and a clone is caught only by its vmfork events; load the module that matches the agent");
	else
		cmk_errf(e, -ENOMSG, "%s", fw->err.msg[0] ? fw->err.msg :
			 "this dm-cmk module does not report its VM-fork epoch: a clone is caught only by its vmfork events");
	return true;
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
	epoch_reported(fw, epoch);
	/* Another device's report of a fork acted on already. */
	if (fw->acted >= 0 && (int64_t)epoch <= fw->acted)
		return false;
	if (vmfork || (fw->kek >= 0 && (int64_t)epoch != fw->kek) ||
	    (fw->job >= 0 && (int64_t)epoch != fw->job)) {
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

int cmk_forkwatch_source_open(struct cmk_forkwatch_source *s,
			      struct cmk_err *e)
{
	int ret;

	cmk_forkwatch_init(&s->fw);
	s->g = NULL;
	ret = cmk_genl_open(&s->g, e);
	if (ret)
		return ret;
	pthread_mutex_init(&s->mu, NULL);
	return 0;
}

int64_t cmk_forkwatch_source_read(void *arg)
{
	struct cmk_forkwatch_source *s = arg;
	int64_t v = CMK_EPOCH_UNKNOWN;
	struct cmk_err e;

	pthread_mutex_lock(&s->mu);
	/* A reloaded module has a new family id: open the socket again. */
	if (!s->g && cmk_genl_open(&s->g, &e))
		s->g = NULL;
	if (s->g)
		v = cmk_forkwatch_read(&s->fw, s->g);
	if (v == CMK_EPOCH_UNKNOWN)
		cmk_genl_close(&s->g);
	pthread_mutex_unlock(&s->mu);
	return v;
}

void cmk_forkwatch_source_close(struct cmk_forkwatch_source *s)
{
	cmk_genl_close(&s->g);
	pthread_mutex_destroy(&s->mu);
}
