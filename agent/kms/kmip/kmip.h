/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kmip.h - the few KMIP 1.x messages the kmip provider sends, and their
 * answers.  No I/O here: requests are encoded into a caller's buffer with
 * ttlv.h, responses are parsed from a buffer the transport read.
 *
 *   Discover Versions  which protocol versions the server speaks
 *   Locate             the Unique Identifier of the key with a Name
 *   Get Attributes     its State (why a Decrypt was refused)
 *   Encrypt, Decrypt   AES-GCM with IV, tag and Additional Data (AAD
 *                      needs KMIP 1.4: Authenticated Encryption
 *                      Additional Data / Tag)
 *
 * Every request is a one-item batch.  See Documentation/kmip.rst.
 */
#ifndef CMK_KMIP_H
#define CMK_KMIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "kms/kmip/ttlv.h"

/* Tags (KMIP 1.4 section 9.1.3.1) */
enum {
	KMIP_TAG_ATTRIBUTE		= 0x420008,
	KMIP_TAG_ATTRIBUTE_NAME		= 0x42000A,
	KMIP_TAG_ATTRIBUTE_VALUE	= 0x42000B,
	KMIP_TAG_BATCH_COUNT		= 0x42000D,
	KMIP_TAG_BATCH_ITEM		= 0x42000F,
	KMIP_TAG_BLOCK_CIPHER_MODE	= 0x420011,
	KMIP_TAG_CRYPTO_ALGORITHM	= 0x420028,
	KMIP_TAG_CRYPTO_PARAMETERS	= 0x42002B,
	KMIP_TAG_IV_COUNTER_NONCE	= 0x42003D,
	KMIP_TAG_MAX_RESPONSE_SIZE	= 0x420050,
	KMIP_TAG_NAME			= 0x420053,
	KMIP_TAG_NAME_TYPE		= 0x420054,
	KMIP_TAG_NAME_VALUE		= 0x420055,
	KMIP_TAG_OBJECT_TYPE		= 0x420057,
	KMIP_TAG_OPERATION		= 0x42005C,
	KMIP_TAG_PROTOCOL_VERSION	= 0x420069,
	KMIP_TAG_PROTOCOL_MAJOR		= 0x42006A,
	KMIP_TAG_PROTOCOL_MINOR		= 0x42006B,
	KMIP_TAG_REQUEST_HEADER		= 0x420077,
	KMIP_TAG_REQUEST_MESSAGE	= 0x420078,
	KMIP_TAG_REQUEST_PAYLOAD	= 0x420079,
	KMIP_TAG_RESPONSE_HEADER	= 0x42007A,
	KMIP_TAG_RESPONSE_MESSAGE	= 0x42007B,
	KMIP_TAG_RESPONSE_PAYLOAD	= 0x42007C,
	KMIP_TAG_RESULT_MESSAGE		= 0x42007D,
	KMIP_TAG_RESULT_REASON		= 0x42007E,
	KMIP_TAG_RESULT_STATUS		= 0x42007F,
	KMIP_TAG_STATE			= 0x42008D,
	KMIP_TAG_UNIQUE_IDENTIFIER	= 0x420094,
	KMIP_TAG_DATA			= 0x4200C2,
	KMIP_TAG_TAG_LENGTH		= 0x4200CE,
	KMIP_TAG_AE_ADDITIONAL_DATA	= 0x4200FE,
	KMIP_TAG_AE_TAG			= 0x4200FF,
};

enum {
	KMIP_OP_LOCATE			= 0x08,
	KMIP_OP_GET_ATTRIBUTES		= 0x0B,
	KMIP_OP_DISCOVER_VERSIONS	= 0x1E,
	KMIP_OP_ENCRYPT			= 0x1F,
	KMIP_OP_DECRYPT			= 0x20,
};

enum {
	KMIP_STATUS_SUCCESS = 0, KMIP_STATUS_FAILED, KMIP_STATUS_PENDING,
	KMIP_STATUS_UNDONE,
};

/* Result Reason values used in classification (9.1.3.2.29) */
enum {
	KMIP_RR_ITEM_NOT_FOUND		= 0x01,
	KMIP_RR_RESPONSE_TOO_LARGE	= 0x02,
	KMIP_RR_AUTH_NOT_SUCCESSFUL	= 0x03,
	KMIP_RR_INVALID_MESSAGE		= 0x04,
	KMIP_RR_OPERATION_NOT_SUPPORTED	= 0x05,
	KMIP_RR_MISSING_DATA		= 0x06,
	KMIP_RR_INVALID_FIELD		= 0x07,
	KMIP_RR_FEATURE_NOT_SUPPORTED	= 0x08,
	KMIP_RR_CANCELED		= 0x09,
	KMIP_RR_CRYPTOGRAPHIC_FAILURE	= 0x0A,
	KMIP_RR_ILLEGAL_OPERATION	= 0x0B,
	KMIP_RR_PERMISSION_DENIED	= 0x0C,
	KMIP_RR_OBJECT_ARCHIVED		= 0x0D,
	KMIP_RR_WRONG_KEY_STATE		= 0x27,	/* KMIP 2.0 */
	KMIP_RR_INCOMPATIBLE_USAGE_MASK	= 0x29,	/* KMIP 2.0 */
	KMIP_RR_INTERNAL_SERVER_ERROR	= 0x2A,	/* KMIP 2.0 */
	KMIP_RR_GENERAL_FAILURE		= 0x100,
};

/* State (9.1.3.2.17) */
enum {
	KMIP_STATE_PRE_ACTIVE = 1, KMIP_STATE_ACTIVE, KMIP_STATE_DEACTIVATED,
	KMIP_STATE_COMPROMISED, KMIP_STATE_DESTROYED,
	KMIP_STATE_DESTROYED_COMPROMISED,
};

#define KMIP_ALG_AES		0x03
#define KMIP_MODE_GCM		0x09
#define KMIP_OBJ_SYMMETRIC_KEY	0x02
#define KMIP_NAME_TEXT		0x01

#define CMK_KMIP_UID_MAX	128
#define CMK_KMIP_MSG_MAX	160

struct cmk_kmip_version {
	int major, minor;
};

/*
 * Request builders: a whole Request Message for protocol version @v into
 * @w.  Check the result with cmk_ttlv_enc_finish().
 */
void cmk_kmip_req_discover(struct cmk_ttlv_enc *w, struct cmk_kmip_version v,
			   const struct cmk_kmip_version *offer, size_t n);
/* Locate by Name (Uninterpreted Text String), Symmetric Keys only. */
void cmk_kmip_req_locate(struct cmk_ttlv_enc *w, struct cmk_kmip_version v,
			 const char *name);
void cmk_kmip_req_get_state(struct cmk_ttlv_enc *w, struct cmk_kmip_version v,
			    const char *uid);
/* AES-GCM Encrypt of @pt under @uid with @iv and @aad, @tag_len-byte tag. */
void cmk_kmip_req_encrypt(struct cmk_ttlv_enc *w, struct cmk_kmip_version v,
			  const char *uid, const unsigned char *pt, size_t ptn,
			  const unsigned char *iv, size_t ivn,
			  const unsigned char *aad, size_t aadn, int tag_len);
void cmk_kmip_req_decrypt(struct cmk_ttlv_enc *w, struct cmk_kmip_version v,
			  const char *uid, const unsigned char *ct, size_t ctn,
			  const unsigned char *iv, size_t ivn,
			  const unsigned char *aad, size_t aadn,
			  const unsigned char *tag, size_t tagn);

/**
 * struct cmk_kmip_resp - the one batch item of a Response Message
 * @version: the protocol version of the response header
 * @op: its Operation (0 if the server sent none, as for some errors)
 * @status: Result Status; @reason: Result Reason (0 if absent)
 * @message: Result Message, printable ASCII only, cut to fit
 * @payload: the Response Payload, valid while the buffer is (if @has_payload)
 */
struct cmk_kmip_resp {
	struct cmk_kmip_version version;
	uint32_t op, status, reason;
	char message[CMK_KMIP_MSG_MAX];
	bool has_payload;
	struct cmk_ttlv payload;
};

/*
 * cmk_kmip_parse_response() - parse a Response Message.  -EBADMSG if it is
 * not well-formed TTLV or not a one-item Response Message; -EPROTO if its
 * item answers another operation than @op.
 */
int cmk_kmip_parse_response(const unsigned char *buf, size_t len, uint32_t op,
			    struct cmk_kmip_resp *r);

/* Payload readers: -EBADMSG if the payload lacks what the operation returns. */
int cmk_kmip_discover_result(const struct cmk_kmip_resp *r,
			     struct cmk_kmip_version *out, size_t max,
			     size_t *n);
/* The first Unique Identifier and how many there were (0: none found). */
int cmk_kmip_locate_result(const struct cmk_kmip_resp *r,
			   char uid[CMK_KMIP_UID_MAX], size_t *count);
int cmk_kmip_state_result(const struct cmk_kmip_resp *r, uint32_t *state);
int cmk_kmip_encrypt_result(const struct cmk_kmip_resp *r,
			    const unsigned char **ct, size_t *ctn,
			    const unsigned char **iv, size_t *ivn,
			    const unsigned char **tag, size_t *tagn);
int cmk_kmip_decrypt_result(const struct cmk_kmip_resp *r,
			    const unsigned char **pt, size_t *ptn);

/*
 * cmk_kmip_classify() - the reason for a Result Status / Reason: Item Not
 * Found -> not_found, Permission Denied / Authentication Not Successful ->
 * denied, Cryptographic Failure -> invalid_ciphertext, Wrong Key Lifecycle
 * State -> revoked, Object Archived -> disabled (definitive); General
 * Failure, Internal Server Error, pending/undone and unknown reasons ->
 * unavailable (transient); request errors (Invalid Message, Invalid Field,
 * Operation Not Supported...) -> local.  CMK_R_NONE for success.
 */
enum cmk_reason cmk_kmip_classify(uint32_t status, uint32_t reason);

/* cmk_kmip_state_reason() - the reason a key in @state cannot decrypt. */
enum cmk_reason cmk_kmip_state_reason(uint32_t state);

const char *cmk_kmip_reason_name(uint32_t reason);
const char *cmk_kmip_state_name(uint32_t state);

#endif /* CMK_KMIP_H */
