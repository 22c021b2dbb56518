/* SPDX-License-Identifier: GPL-2.0 */
/*
 * envelope.h - the KEK envelope: a small JSON file holding the KEK wrapped
 * by the customer's key, and what is needed to unwrap it.
 *
 *   {
 *     "format": "dm-cmk-kek",
 *     "version": 1,
 *     "kek_id": "<uuid>",
 *     "kek_version": 3,
 *     "provider": "local",
 *     "key_ref": "/etc/cmk/cmk.key",
 *     "encryption_context": { "service": "postgres" },
 *     "wrapped_kek": "<base64>",
 *     "created": "2025-11-27T20:48:00Z",
 *     "previous": { "kek_version": 2, "provider": ..., "key_ref": ...,
 *                   "encryption_context": ..., "wrapped_kek": ...,
 *                   "created": ... },           (only during a rotation)
 *     "retired": [ { same fields as "previous" }, ... ]
 *                                     (optional: older KEK versions, oldest
 *                                      first, kept to unwrap sealed objects)
 *   }
 *
 * Retired versions are unwrap-only: nothing is ever wrapped under them, no
 * device header refers to them (headers use the current or the previous
 * version), but an archive sealed under one stays openable for as long as
 * the envelope keeps it.  At most CMK_ENVELOPE_RETIRED_MAX of them, the
 * previous version counted.  An envelope without "retired" has none.
 *
 * Parsing is strict: unknown or missing fields, wrong types, bad base64,
 * a wrapped length the provider cannot produce all fail with a message
 * naming the file and the field.  See Documentation/formats.rst.
 */
#ifndef CMK_ENVELOPE_H
#define CMK_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/codec.h"
#include "core/encctx.h"
#include "core/err.h"
#include "kms/provider.h"
#include "core/secret.h"

#define CMK_ENVELOPE_FORMAT	"dm-cmk-kek"
#define CMK_ENVELOPE_VERSION	1
#define CMK_ENVELOPE_MAX_SIZE	(64 * 1024)
#define CMK_KEY_REF_MAX		2048
/* Retired KEK versions kept (previous included): bounds the file and KMS calls. */
#define CMK_ENVELOPE_RETIRED_MAX	16

/* One wrapping of one KEK version. */
struct cmk_kek_wrap {
	uint32_t kek_version;		/* >= 1 */
	char provider[CMK_PROVIDER_NAME_MAX];
	char *key_ref;			/* provider's name for the CMK */
	struct cmk_encctx ctx;		/* bound as AAD / EncryptionContext */
	unsigned char *wrapped;
	size_t wrapped_len;
	time_t created;
};

struct cmk_envelope {
	uint32_t version;		/* CMK_ENVELOPE_VERSION */
	uint8_t kek_id[CMK_UUID_LEN];
	struct cmk_kek_wrap cur;
	bool has_prev;
	struct cmk_kek_wrap prev;	/* older KEK version, during rotation */
	unsigned int n_retired;
	/* unwrap-only older versions, ascending kek_version, all < prev's */
	struct cmk_kek_wrap retired[CMK_ENVELOPE_RETIRED_MAX];
};

void cmk_envelope_init(struct cmk_envelope *env);
void cmk_envelope_free(struct cmk_envelope *env);

/* cmk_envelope_parse() - strict parse; @name (file name) prefixes errors. */
int cmk_envelope_parse(const char *json, size_t len, const char *name,
		       struct cmk_envelope *env, struct cmk_err *e);
int cmk_envelope_read(const char *path, struct cmk_envelope *env,
		      struct cmk_err *e);

/* cmk_envelope_to_json() - pretty JSON with a final newline; malloc'd. */
int cmk_envelope_to_json(const struct cmk_envelope *env, char **json,
			 struct cmk_err *e);
/* cmk_envelope_write() - atomic replace (tmp + fsync + rename), mode 0600. */
int cmk_envelope_write(const char *path, const struct cmk_envelope *env,
		       struct cmk_err *e);

/*
 * cmk_envelope_create() - new KEK id, KEK version 1, fresh random KEK
 * wrapped under @key_ref by @p with @ctx.  If @kek is not NULL the KEK is
 * handed back (locked memory) so the caller can use it right away.
 */
int cmk_envelope_create(struct cmk_provider *p, const char *key_ref,
			const struct cmk_encctx *ctx, struct cmk_envelope *env,
			struct cmk_secret **kek, struct cmk_kms_call *call,
			struct cmk_err *e);

/*
 * cmk_envelope_unwrap() - unwrap the current KEK (@previous false) or the
 * previous one.  @p must be the provider named in the envelope.
 */
int cmk_envelope_unwrap(struct cmk_provider *p, const struct cmk_envelope *env,
			bool previous, struct cmk_secret **kek,
			struct cmk_kms_call *call, struct cmk_err *e);

/*
 * cmk_envelope_find() - the wrapping of KEK version @version: current,
 * previous or retired; NULL if the envelope does not hold it.
 */
const struct cmk_kek_wrap *cmk_envelope_find(const struct cmk_envelope *env,
					     uint32_t version);

/*
 * cmk_envelope_unwrap_version() - unwrap KEK version @version (current,
 * previous or retired: for reading only).  -ENOENT if the envelope does not
 * hold it.  @p must be the provider named by that version's wrapping.
 */
int cmk_envelope_unwrap_version(struct cmk_provider *p,
				const struct cmk_envelope *env, uint32_t version,
				struct cmk_secret **kek,
				struct cmk_kms_call *call, struct cmk_err *e);

/* cmk_envelope_check() - a real unwrap of the current KEK, result wiped. */
int cmk_envelope_check(struct cmk_provider *p, const struct cmk_envelope *env,
		       struct cmk_kms_call *call, struct cmk_err *e);

/*
 * cmk_envelope_rewrap() - CMK rotation: unwrap every KEK version in the
 * envelope (current, previous and retired) with @from and wrap it again with @to under @key_ref (NULL:
 * keep) and @ctx (NULL: keep).  KEK bytes and versions do not change, so
 * device headers need no change.  On failure @env is unchanged.  When
 * @from == @to and the provider has a rewrap hook (AWS ReEncrypt), the
 * KEK is re-wrapped inside the KMS and the result proven by a check.
 */
int cmk_envelope_rewrap(struct cmk_provider *from, struct cmk_provider *to,
			const char *key_ref, const struct cmk_encctx *ctx,
			struct cmk_envelope *env, struct cmk_kms_call *call,
			struct cmk_err *e);

/*
 * cmk_envelope_rotate() - KEK rotation: a new random KEK becomes version
 * cur+1 under the same provider, key_ref and context; the current one moves
 * to "previous" until every header has been re-wrapped and
 * cmk_envelope_finish_rotation() retires it (unwrap-only, kept).  Refused
 * while a previous version is still present, and -ENOSPC when
 * CMK_ENVELOPE_RETIRED_MAX versions are already retired.  On failure @env
 * is unchanged.
 */
int cmk_envelope_rotate(struct cmk_provider *p, struct cmk_envelope *env,
			struct cmk_secret **new_kek, struct cmk_kms_call *call,
			struct cmk_err *e);
void cmk_envelope_finish_rotation(struct cmk_envelope *env);

#endif /* CMK_ENVELOPE_H */
