/* SPDX-License-Identifier: GPL-2.0 */
/*
 * keyclient.h - the client side of cmk-agent's key socket (keyserver.h),
 * for cmkctl seal|unseal --agent / --socket PATH.
 *
 * The client never sees a KEK or a wrapping key: it asks the agent for a
 * fresh data key and its EDK (seal) or for the data key of an EDK (unseal)
 * and does the bulk AES-GCM itself (format/esdk.h).  Data keys arrive in
 * locked memory and are wiped after use.  Every exchange is bounded by
 * CMK_KEYCLIENT_TIMEOUT_MS.  A refusal keeps the agent's reason and maps
 * to an error class: revoked -> definitive (-EKEYREVOKED), unavailable or
 * busy -> transient (-EAGAIN), an EDK for another KEK -> -EKEYREJECTED, an
 * EDK that does not open -> -EBADMSG, not permitted -> -EACCES.  An
 * "unavailable" answer to open EDK (the agent unwraps a retired KEK
 * version when first asked for it) is asked again, on a new connection,
 * up to CMK_KEYCLIENT_RETRIES times, CMK_KEYCLIENT_RETRY_MS apart.
 */
#ifndef CMK_KEYCLIENT_H
#define CMK_KEYCLIENT_H

#include <stddef.h>

#include "core/err.h"
#include "format/config.h"
#include "format/esdk.h"

#define CMK_KEYCLIENT_TIMEOUT_MS	10000
#define CMK_KEYCLIENT_RETRIES		10
#define CMK_KEYCLIENT_RETRY_MS		500

struct cmk_keyclient {
	int fd;
	char path[108];
};

/*
 * cmk_keyclient_path() - the socket of configuration @cfg: key_socket, or
 * <state_dir>/keys.sock.
 */
int cmk_keyclient_path(const struct cmk_config *cfg, char *out, size_t len,
		       struct cmk_err *e);

/* cmk_keyclient_connect() - connect to the agent's socket at @path. */
int cmk_keyclient_connect(struct cmk_keyclient *kc, const char *path,
			  struct cmk_err *e);
void cmk_keyclient_close(struct cmk_keyclient *kc);

/* cmk_keyclient_keygen() - @kg asks @kc for each seal's data key. */
void cmk_keyclient_keygen(struct cmk_keyclient *kc, struct cmk_esdk_keygen *kg);

/* cmk_keyclient_keysource() - @src asks @kc to open each EDK. */
void cmk_keyclient_keysource(struct cmk_keyclient *kc,
			     struct cmk_esdk_keysource *src);

#endif /* CMK_KEYCLIENT_H */
