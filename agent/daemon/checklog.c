// SPDX-License-Identifier: GPL-2.0
/*
 * checklog.c - which CMK checks get an audit line (see checklog.h).
 */
#include "daemon/checklog.h"

#include <string.h>

void cmk_checklog_init(struct cmk_checklog *c, uint64_t every_ms)
{
	memset(c, 0, sizeof(*c));
	c->every_ms = every_ms;
}

static void written(struct cmk_checklog *c, uint64_t now, int ret,
		    enum cmk_reason reason)
{
	c->any = true;
	c->last_ms = now;
	c->last_ret = ret;
	c->last_reason = ret ? reason : CMK_R_NONE;
	c->held = false;
}

bool cmk_checklog_ended(struct cmk_checklog *c, uint64_t now, int ret,
			enum cmk_reason reason)
{
	c->held = false;
	if (!c->any || now - c->last_ms >= c->every_ms ||
	    (ret != 0) != (c->last_ret != 0) ||
	    (ret && reason != c->last_reason)) {
		written(c, now, ret, reason);
		return true;
	}
	/* Only a yes allows a KEY_SET. */
	c->held = !ret;
	return false;
}

bool cmk_checklog_key_set(struct cmk_checklog *c, uint64_t now)
{
	if (!c->held)
		return false;
	written(c, now, 0, CMK_R_NONE);
	return true;
}

void cmk_checklog_done(struct cmk_checklog *c)
{
	c->held = false;
}
