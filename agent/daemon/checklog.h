/* SPDX-License-Identifier: GPL-2.0 */
/*
 * checklog.h - which CMK checks get an audit line.
 *
 * One line per check would be 4 lines a second at 250 ms, so cmk-agent
 * writes a check's line when its outcome (or the reason of a failure)
 * changes, and otherwise once per @every_ms.  But a key put back into the
 * kernel (KEY_SET: a restore after a lease expiry, a suspend, a lost key
 * no event told of) must always follow, in the log, the check whose yes
 * allowed it: a yes that was not written is held until the loop has used
 * it, and the first KEY_SET it allows writes it first.
 */
#ifndef CMK_CHECKLOG_H
#define CMK_CHECKLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

struct cmk_checklog {
	uint64_t every_ms;
	uint64_t last_ms;		/* when the last line was written */
	bool any;			/* a line was written */
	int last_ret;			/* of the check last written */
	enum cmk_reason last_reason;
	bool held;			/* a yes not written yet, in use */
};

void cmk_checklog_init(struct cmk_checklog *c, uint64_t every_ms);

/*
 * cmk_checklog_ended() - a check ended at @now with @ret (@reason when it
 * failed): true if its line is to be written now.  A yes not written now
 * is held until cmk_checklog_done().
 */
bool cmk_checklog_ended(struct cmk_checklog *c, uint64_t now, int ret,
			enum cmk_reason reason);

/*
 * cmk_checklog_key_set() - a KEY_SET is about to be made on the held yes:
 * true (once) if that check's line is to be written first.
 */
bool cmk_checklog_key_set(struct cmk_checklog *c, uint64_t now);

/* cmk_checklog_done() - the loop has used the check's answer. */
void cmk_checklog_done(struct cmk_checklog *c);

#endif /* CMK_CHECKLOG_H */
