/* SPDX-License-Identifier: GPL-2.0 */
/*
 * keysock.h - the agent's key socket: its wire format and its allow-list.
 *
 * cmk-agent hands out data keys for sealed objects over a Unix stream
 * socket (daemon/keyserver.h); cmkctl seal|unseal --agent asks it
 * (daemon/keyclient.h).  Both sides use this file.  Big-endian, as the
 * ESDK message whose fields it carries (Documentation/storage.rst, "Socket
 * protocol", has it byte by byte):
 *
 *   request   "CMKQ" | version 0x01 | op | body length (u16) | body
 *     op 0x01 new data key:  Key Value Pairs Length (u16) | Key Value Pairs
 *     op 0x02 open EDK:      Key Value Pairs Length (u16) | Key Value Pairs
 *                            | Key Provider ID Length (u16) | Key Provider ID
 *                            | Key Provider Information Length (u16) | ...
 *                            | Encrypted Data Key Length (u16) | ...
 *   response  "CMKR" | version 0x01 | status | body length (u16) | body
 *     ok, new data key: data key (32) | the EDK as in the request
 *     ok, open EDK:     data key (32)
 *     any error:        a message (UTF-8, no control characters)
 *
 * Key Value Pairs is the encryption context exactly as an ESDK header
 * serialises it (the EDK's AAD); the parser takes only its canonical form
 * (pairs sorted, unique, strict UTF-8, core/encctx's limits).
 */
#ifndef CMK_KEYSOCK_H
#define CMK_KEYSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/encctx.h"
#include "core/err.h"
#include "core/secret.h"
#include "format/esdk_keyring.h"

#define CMK_KEYSOCK_REQ_MAGIC	"CMKQ"
#define CMK_KEYSOCK_RESP_MAGIC	"CMKR"
#define CMK_KEYSOCK_VERSION	1
#define CMK_KEYSOCK_HDR_LEN	8
/* A whole request at most (a WAL segment's context takes ~60 bytes). */
#define CMK_KEYSOCK_REQ_MAX	8192
/* A whole response at most; error messages are cut to fit. */
#define CMK_KEYSOCK_RESP_MAX	1024
#define CMK_KEYSOCK_MSG_MAX	(CMK_KEYSOCK_RESP_MAX - CMK_KEYSOCK_HDR_LEN)
/* An EDK's fields at most (a raw AES keyring EDK takes ~150 bytes). */
#define CMK_KEYSOCK_EDK_FIELD_MAX 512

enum cmk_keysock_op {
	CMK_KEYSOCK_NEW_DATA_KEY = 1,
	CMK_KEYSOCK_OPEN_EDK = 2,
};

/* Response status; what a client tells its user and its exit status. */
enum cmk_keysock_status {
	CMK_KS_OK = 0,
	CMK_KS_BAD_REQUEST = 1,	/* malformed, too large: the connection ends */
	CMK_KS_NOT_PERMITTED = 2, /* the peer is not on the allow-list */
	CMK_KS_REVOKED = 3,	/* the CMK said no: refused until it says yes */
	CMK_KS_UNAVAILABLE = 4,	/* no KEK held now (booting, KMS away past grace_s) */
	CMK_KS_UNKNOWN_KEY = 5,	/* the EDK names a KEK (version) the agent does not hold */
	CMK_KS_NOT_AUTHENTIC = 6, /* the EDK does not open with this context */
	CMK_KS_INTERNAL = 7,	/* the agent failed (out of memory, randomness) */
	CMK_KS_BUSY = 8,	/* too many connections */
	CMK_KS_STATUS_MAX = CMK_KS_BUSY,
};

const char *cmk_keysock_status_name(enum cmk_keysock_status s);
const char *cmk_keysock_op_name(enum cmk_keysock_op op);

/**
 * struct cmk_keysock_req - a parsed request (owns its buffers)
 * @op: what is asked
 * @ctx: the encryption context (parsed, for checks and the audit line)
 * @ec: its serialisation as received (the AAD), @ec_len bytes (0: empty)
 * @edk: open EDK only: the EDK
 */
struct cmk_keysock_req {
	enum cmk_keysock_op op;
	struct cmk_encctx ctx;
	unsigned char *ec;
	size_t ec_len;
	struct cmk_esdk_edk edk;
};

/*
 * cmk_keysock_req_len() - from the first @len bytes of a request: 0 if
 * its header is not complete yet, else the whole request's length; -EBADMSG
 * (bad magic or version) or -EMSGSIZE (over CMK_KEYSOCK_REQ_MAX), @e says
 * which.  Lets a server read exactly one request, and refuse garbage
 * after 8 bytes.
 */
ssize_t cmk_keysock_req_len(const unsigned char *buf, size_t len,
			    struct cmk_err *e);

/*
 * cmk_keysock_req_parse() - one whole request, strictly: every length must
 * fill exactly what it announces, the context must be canonical, the EDK's
 * Key Provider ID "dm-cmk".  -EBADMSG or -EINVAL with @e naming the field.
 */
int cmk_keysock_req_parse(const unsigned char *buf, size_t len,
			  struct cmk_keysock_req *req, struct cmk_err *e);
void cmk_keysock_req_free(struct cmk_keysock_req *req);

/*
 * cmk_keysock_req_build() - a request for @op with context @ec (ESDK
 * serialisation) and, for open, @edk; *@out is malloc'd.
 */
int cmk_keysock_req_build(enum cmk_keysock_op op, const unsigned char *ec,
			  size_t ec_len, const struct cmk_esdk_edk *edk,
			  unsigned char **out, size_t *out_len, struct cmk_err *e);

/*
 * cmk_keysock_resp_ok() - an OK response into @out (locked: it holds
 * @data_key), @edk NULL for open; its length, or -EMSGSIZE.
 */
int cmk_keysock_resp_ok(struct cmk_secret *out, const struct cmk_secret *data_key,
			const struct cmk_esdk_edk *edk, size_t *len,
			struct cmk_err *e);

/* cmk_keysock_resp_err() - an error response with @msg (cut to fit) into @out. */
size_t cmk_keysock_resp_err(unsigned char out[CMK_KEYSOCK_RESP_MAX],
			    enum cmk_keysock_status st, const char *msg);

/*
 * cmk_keysock_resp_parse() - a whole response to @op (@len bytes): its
 * status; on OK the data key in *@data_key (and for new, the EDK in @edk),
 * else the agent's message in @e.  -EBADMSG if malformed.
 */
int cmk_keysock_resp_parse(const unsigned char *buf, size_t len,
			   enum cmk_keysock_op op, enum cmk_keysock_status *st,
			   struct cmk_secret **data_key, struct cmk_esdk_edk *edk,
			   struct cmk_err *e);

/* ---- allow-list ---------------------------------------------------------- */

#define CMK_KEYSOCK_ALLOW_MAX	32

/**
 * struct cmk_keysock_allow - who may use the socket besides root
 * @uid: user ids
 * @gid: group ids (the peer's primary or supplementary groups)
 */
struct cmk_keysock_allow {
	uid_t uid[CMK_KEYSOCK_ALLOW_MAX];
	size_t n_uid;
	gid_t gid[CMK_KEYSOCK_ALLOW_MAX];
	size_t n_gid;
};

/*
 * cmk_keysock_allow_parse() - "user:NAME group:NAME uid:N gid:N ..."
 * (space-separated, names resolved now; empty: root only).  -EINVAL naming
 * the word that is not one, -ENOENT for an unknown user or group.
 */
int cmk_keysock_allow_parse(const char *s, struct cmk_keysock_allow *a,
			    struct cmk_err *e);

/*
 * cmk_keysock_allowed() - whether a peer (uid @uid, groups @gids) may ask:
 * uid 0, or an allowed uid, or any of its groups allowed.
 */
bool cmk_keysock_allowed(const struct cmk_keysock_allow *a, uid_t uid,
			 const gid_t *gids, size_t n_gids);

#endif /* CMK_KEYSOCK_H */
