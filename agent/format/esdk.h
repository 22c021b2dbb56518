/* SPDX-License-Identifier: GPL-2.0 */
/*
 * esdk.h - sealed storage objects as AWS Encryption SDK messages.
 *
 * cmk_esdk_seal() writes, and cmk_esdk_open() reads, ESDK messages of
 * format version 2.0, framed, with key commitment
 * (Documentation/storage.rst has the format byte by byte):
 *
 *   0x0478  AES-256-GCM, HKDF-SHA512, commit key, no signature (default)
 *   0x0578  the same with an ECDSA P-384 / SHA-384 signature in a footer
 *
 * Both stream in constant memory, whatever the object's size: a buffer
 * of max(1 MiB, one frame) that is read, encrypted or decrypted in place,
 * and written in batches of frames (the opener of a signed message holds
 * its final frame apart: one frame more); Documentation/storage.rst,
 * "Performance", has the bound.  The data key is wrapped by a raw AES keyring
 * (esdk_keyring.h) whose wrapping key the caller supplies; where that key
 * comes from (a KEK unsealed here, or the agent) is the caller's business.
 *
 * The opener parses every field strictly, names the field and its offset
 * when one is refused, checks the key commitment and the header tag before
 * any frame, and writes a frame's plaintext only once its tag verified
 * (the final frame of a signed message only once the signature verified).
 * A bad frame, footer or trailing data fails the whole call, but the
 * frames before it that verified are written to @out_fd: callers that write a
 * file write it under a temporary name and rename it only when the call
 * succeeded (cmkctl does); callers that stream to a pipe must treat a
 * failure as "discard everything".
 */
#ifndef CMK_ESDK_H
#define CMK_ESDK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/encctx.h"
#include "core/err.h"
#include "format/esdk_keyring.h"

#define CMK_ESDK_SUITE_COMMIT		0x0478
#define CMK_ESDK_SUITE_COMMIT_ECDSA	0x0578
#define CMK_ESDK_MESSAGE_ID_LEN		32
/*
 * 64 KiB frames: 0.05% overhead, within 3% of the AES-GCM speed of 1 MiB
 * frames, while any reader needs only 64 KiB to release authentic
 * plaintext (the SDKs default to 4096, which costs about 18%; storage.rst).
 */
#define CMK_ESDK_FRAME_DEFAULT		65536u
/* Largest frame written or read: above 1 MiB, the buffer is one frame. */
#define CMK_ESDK_FRAME_MAX		(16u << 20)
/* EDK entries read from a header at most. */
#define CMK_ESDK_MAX_EDKS		16
/* Encryption context key the SDKs reserve, and the signing suites' key. */
#define CMK_ESDK_RESERVED_PREFIX	"aws-crypto-"
#define CMK_ESDK_PUBKEY_CTX		"aws-crypto-public-key"

/**
 * struct cmk_esdk_seal_opts - how to seal
 * @suite: CMK_ESDK_SUITE_COMMIT (0 means this) or CMK_ESDK_SUITE_COMMIT_ECDSA
 * @frame_len: plaintext bytes per frame, 1..CMK_ESDK_FRAME_MAX (0: default)
 * @name: the object's name for messages (a path, "stdin")
 */
struct cmk_esdk_seal_opts {
	uint16_t suite;
	uint32_t frame_len;
	const char *name;
};

/**
 * struct cmk_esdk_info - what a seal wrote or an open read
 * @suite: algorithm suite ID
 * @frame_len: Frame Length of the header
 * @frames: number of frames, the final one included
 * @plaintext_len: bytes of plaintext
 * @message_id: Message ID
 * @key_name: the raw AES keyring key name whose EDK was used
 * @wrote: an open tried to write plaintext to its output; set on failure
 *	too (the other fields are not): the caller must discard that output
 */
struct cmk_esdk_info {
	uint16_t suite;
	uint32_t frame_len;
	uint32_t frames;
	uint64_t plaintext_len;
	uint8_t message_id[CMK_ESDK_MESSAGE_ID_LEN];
	char key_name[CMK_ESDK_KEY_NAME_MAX];
	bool wrote;
};

/*
 * cmk_esdk_seal() - read plaintext from @in_fd until end of file and write
 * one ESDK message to @out_fd, bound to encryption context @ctx (keys may
 * not start with "aws-crypto-").  @info may be NULL.
 */
int cmk_esdk_seal(int in_fd, int out_fd, const struct cmk_esdk_wrapkey *wk,
		  const struct cmk_encctx *ctx,
		  const struct cmk_esdk_seal_opts *opts,
		  struct cmk_esdk_info *info, struct cmk_err *e);

/**
 * struct cmk_esdk_keygen - where a seal's data key and its EDK come from
 * @new_key: a fresh CMK_ESDK_DATA_KEY_LEN-byte data key in *@data_key and
 *	its EDK in @edk, wrapped with AAD @ec (the serialised encryption
 *	context, @ec_len 0 when empty), and the keyring's key name
 * @arg: passed to @new_key
 */
struct cmk_esdk_keygen {
	int (*new_key)(void *arg, const unsigned char *ec, size_t ec_len,
		       struct cmk_secret **data_key, struct cmk_esdk_edk *edk,
		       char key_name[CMK_ESDK_KEY_NAME_MAX], struct cmk_err *e);
	void *arg;
};

/*
 * cmk_esdk_seal_with() - cmk_esdk_seal() with the data key from @kg (the
 * agent's socket hands out data keys and EDKs; the wrapping key stays
 * there).  The message is the same, byte for byte in its layout.
 */
int cmk_esdk_seal_with(int in_fd, int out_fd, const struct cmk_esdk_keygen *kg,
		       const struct cmk_encctx *ctx,
		       const struct cmk_esdk_seal_opts *opts,
		       struct cmk_esdk_info *info, struct cmk_err *e);

/*
 * cmk_esdk_ec_serialize() - the encryption context as a header's Key Value
 * Pairs (structures.md; nothing for an empty context); *@out is malloc'd.
 */
int cmk_esdk_ec_serialize(const struct cmk_encctx *c, unsigned char **out,
			  size_t *len, struct cmk_err *e);

/* cmk_esdk_utf8_valid() - strict UTF-8 (RFC 3629), as the ESDK requires. */
bool cmk_esdk_utf8_valid(const unsigned char *s, size_t n);

/*
 * cmk_esdk_open() - read one ESDK message from @in_fd and write its
 * plaintext to @out_fd.  The message must carry an EDK of one of the
 * @nkeys keyrings in @keys, and exactly the encryption context @expect
 * (besides "aws-crypto-public-key" in signed suites): a missing, extra or
 * different pair is refused, naming its key, before any key is unwrapped.
 * @name names the object in messages.  @info may be NULL.
 * Errors: -EBADMSG (malformed, tampered, not authentic), -EPROTO (a valid
 * ESDK message this reader does not take: version 1.0, non-framed, other
 * suites, limits), -EKEYREJECTED (no EDK for these keyrings),
 * -EPERM (encryption context differs, or another suite than the key
 * source's @suite), I/O errors.
 */
int cmk_esdk_open(int in_fd, int out_fd,
		  const struct cmk_esdk_wrapkey *const *keys, size_t nkeys,
		  const struct cmk_encctx *expect, const char *name,
		  struct cmk_esdk_info *info, struct cmk_err *e);

/**
 * struct cmk_esdk_keysource - wrapping keys handed out by key name, on demand
 * @get: set *@wk to the keyring named @key_name (it must stay valid until
 *	cmk_esdk_open_from() returns); -ENOENT if the caller holds none by
 *	that name (the EDK is skipped); any other error fails that EDK only:
 *	the next matching EDK is tried, and the first error is the one
 *	reported if none opens (e.g. a KMS refusal, -EACCES)
 * @arg: passed to @get
 * @holds: what the caller holds, for the message when no EDK is for it
 * @unwrap: instead of @get (then NULL): the data key of @edk, whose key
 *	name is @key_name, opened with AAD @ec by whoever holds the wrapping
 *	key (the agent); -ENOENT skips the EDK, any other error is as @get's
 * @suite: the only algorithm suite taken (a reader whose writers all sign
 *	sets CMK_ESDK_SUITE_COMMIT_ECDSA); another is refused with -EPERM
 *	from the header's first fields, before any key is asked for and
 *	any byte written; 0 takes both
 */
struct cmk_esdk_keysource {
	int (*get)(void *arg, const char *key_name,
		   const struct cmk_esdk_wrapkey **wk, struct cmk_err *e);
	void *arg;
	const char *holds;
	int (*unwrap)(void *arg, const char *key_name,
		      const struct cmk_esdk_edk *edk,
		      const unsigned char *ec, size_t ec_len,
		      struct cmk_secret **data_key, struct cmk_err *e);
	uint16_t suite;
};

/*
 * cmk_esdk_open_from() - cmk_esdk_open() with keys from @src: only the
 * wrapping key an EDK names is asked for (an object sealed under KEK
 * version 3 costs one unwrap of version 3, whatever else the envelope
 * holds).  Besides cmk_esdk_open()'s errors, whatever @get returned.
 */
int cmk_esdk_open_from(int in_fd, int out_fd,
		       const struct cmk_esdk_keysource *src,
		       const struct cmk_encctx *expect, const char *name,
		       struct cmk_esdk_info *info, struct cmk_err *e);

/* cmk_esdk_suite_name() - e.g. "0x0478 (AES-256-GCM, HKDF-SHA512, commit key)". */
const char *cmk_esdk_suite_name(uint16_t suite);

#endif /* CMK_ESDK_H */
