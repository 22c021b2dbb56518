/* SPDX-License-Identifier: GPL-2.0 */
/*
 * keyserver.h - cmk-agent's key socket: data keys for sealed objects.
 *
 * A Unix stream socket (key_socket, default <state_dir>/keys.sock) on
 * which an allowed peer asks for "a new data key for context C" (a fresh
 * 32-byte key and its EDK, wrapped under the current KEK version's
 * storage wrapping key) or "open this EDK for context C" (its data key).
 * The wire format is format/keysock.h; Documentation/storage.rst has it.
 *
 * Who: the socket file is created mode 0600 (0660 with key_socket_group),
 * owned by root; each connection's peer (SO_PEERCRED, SO_PEERGROUPS) must
 * be root or on key_socket_allow, else it gets "not permitted" and is
 * closed.  When: only while the agent holds the KEK, i.e. while the block
 * devices keep their keys (agentloop.h): active, degraded within grace_s,
 * fail-open.  Revoked: refused at once with the CMK's reason; starting or
 * unreachable past grace_s: "unavailable".
 *
 * It never blocks the agent's loop: every socket is non-blocking, the
 * listener and the clients live in one epoll set whose fd the main loop
 * polls; a request is answered in the call that completes it (an HKDF and
 * one AES-GCM, no KMS call).  A client gets CMK_KEYSERVER_TIMEOUT_MS to
 * complete each request and to take its answer, idle time included; then
 * it is closed.  At most CMK_KEYSERVER_MAX_CLIENTS at once (the next one
 * gets "busy").  Every request is audited (peer uid and pid, operation,
 * context, KEK version, outcome); keys never are.  Answers holding a key
 * are built in locked memory (struct cmk_secret) and wiped once sent.
 */
#ifndef CMK_KEYSERVER_H
#define CMK_KEYSERVER_H

#include <stdint.h>

#include "core/err.h"
#include "core/secret.h"
#include "daemon/agentloop.h"
#include "format/audit.h"
#include "format/config.h"
#include "format/keysock.h"
#include "volume/kek_store.h"

#define CMK_KEYSERVER_TIMEOUT_MS	5000
#define CMK_KEYSERVER_MAX_CLIENTS	64
/* Fairness: one uid's share, root's own slots, one connection's span. */
#define CMK_KEYSERVER_UID_MAX		(CMK_KEYSERVER_MAX_CLIENTS / 4)
#define CMK_KEYSERVER_ROOT_SLOTS	8
#define CMK_KEYSERVER_CONN_REQUESTS	1000
#define CMK_KEYSERVER_CONN_LIFETIME_MS	60000
#define CMK_KEYSERVER_SOCKET_NAME	"keys.sock"

struct cmk_keyserver;

/*
 * cmk_keyserver_open() - create the socket of @cfg in a directory that is
 * ours and writable by nobody else (a stale socket file there is replaced;
 * a live socket or anything else is refused) and serve keys from @keks
 * as @loop allows.  All pointers must outlive the server.
 */
int cmk_keyserver_open(struct cmk_keyserver **ks, const struct cmk_config *cfg,
		       struct cmk_audit *audit, const struct cmk_loop *loop,
		       const struct cmk_kek_store *keks, struct cmk_err *e);

/* cmk_keyserver_fd() - poll it for POLLIN, then call cmk_keyserver_run(). */
int cmk_keyserver_fd(const struct cmk_keyserver *ks);

/*
 * cmk_keyserver_run() - with @serve, accept, read, answer and write what
 * is ready now without waiting; always close clients past their deadline.
 * Returns the ms until the next deadline (UINT64_MAX: none).  The agent
 * serves only after the wake-up's kernel events and KMS answer were read
 * (a fork or revoke reported there refuses the request).
 */
uint64_t cmk_keyserver_run(struct cmk_keyserver *ks, uint64_t now_ms, bool serve);

/*
 * cmk_keyserver_drop_keys() - the KEK was forgotten (revoke, wipe, VM
 * fork): close every client whose answer holding a data key is not out
 * yet, wiping it, so nothing granted before the wipe leaves after it.
 */
void cmk_keyserver_drop_keys(struct cmk_keyserver *ks);

/* cmk_keyserver_close() - close every client (answers wiped), remove the socket. */
void cmk_keyserver_close(struct cmk_keyserver **ks);

/*
 * cmk_keyserver_answer() - the answer to @req as @loop and @keks allow it,
 * into @out (locked; an OK answer holds the data key), its length in
 * *@out_len; @kek_name gets the keyring's key name used ("" if none).
 * An EDK of a retired KEK version the agent has not unwrapped yet is
 * answered UNAVAILABLE (retry) and sets bit i (@keks->env.retired[i]) in
 * *@want (may be NULL).  Returns the status; @why explains a refusal.
 * Exposed for the tests.
 */
enum cmk_keysock_status cmk_keyserver_answer(const struct cmk_loop *loop,
					     const struct cmk_kek_store *keks,
					     const struct cmk_keysock_req *req,
					     struct cmk_secret *out, size_t *out_len,
					     char kek_name[CMK_ESDK_KEY_NAME_MAX],
					     uint32_t *want, struct cmk_err *why);

/*
 * cmk_keyserver_retired_wanted() - the retired KEK versions (bits: indexes
 * into the envelope's retired[]) requests asked for since the last call,
 * for cmk-agent to unwrap on its worker; clears them.  0 for a NULL @ks.
 */
uint32_t cmk_keyserver_retired_wanted(struct cmk_keyserver *ks);

#endif /* CMK_KEYSERVER_H */
