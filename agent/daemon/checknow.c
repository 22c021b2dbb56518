// SPDX-License-Identifier: GPL-2.0
/*
 * checknow.c - cmkctl check-now's tokens (see checknow.h).
 */
#include "daemon/checknow.h"

/* A free slot, else the oldest answered token's, else the oldest one's. */
static int pick_slot(const struct cmk_checknow *c, unsigned long answered)
{
	int best = -1;

	for (int i = 0; i < CMK_CHECKNOW_TOKENS; i++)
		if (!c->t[i].token)
			return i;
	for (int i = 0; i < CMK_CHECKNOW_TOKENS; i++)
		if (c->t[i].seq <= answered &&
		    (best < 0 || c->t[i].order < c->t[best].order))
			best = i;
	if (best >= 0)
		return best;
	for (int i = 0; i < CMK_CHECKNOW_TOKENS; i++)
		if (best < 0 || c->t[i].order < c->t[best].order)
			best = i;
	return best;
}

void cmk_checknow_add(struct cmk_checknow *c, int token, unsigned long seq,
		      unsigned long answered)
{
	int i;

	for (i = 0; i < CMK_CHECKNOW_TOKENS; i++)
		if (c->t[i].token == token)
			return;		/* resent: its first hint answers it */
	i = pick_slot(c, answered);
	c->t[i].token = token;
	c->t[i].seq = seq;
	c->t[i].order = ++c->received;
}

void cmk_checknow_json(const struct cmk_checknow *c, unsigned long answered,
		       json_object *hints)
{
	json_object *done = json_object_new_array();
	json_object *wait = json_object_new_array();

	for (int i = 0; i < CMK_CHECKNOW_TOKENS; i++)
		if (c->t[i].token)
			json_object_array_add(c->t[i].seq <= answered ? done : wait,
					      json_object_new_int(c->t[i].token));
	json_object_object_add(hints, "answered_tokens", done);
	json_object_object_add(hints, "pending_tokens", wait);
}
