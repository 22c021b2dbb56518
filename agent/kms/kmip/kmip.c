// SPDX-License-Identifier: GPL-2.0
/*
 * kmip.c - KMIP request messages and response parsing (see kmip.h).
 */
#include "kms/kmip/kmip.h"

#include <errno.h>
#include <string.h>

/* ---- requests ---------------------------------------------------------- */

static void begin_request(struct cmk_ttlv_enc *w, struct cmk_kmip_version v,
			  uint32_t op)
{
	cmk_ttlv_begin(w, KMIP_TAG_REQUEST_MESSAGE);
	cmk_ttlv_begin(w, KMIP_TAG_REQUEST_HEADER);
	cmk_ttlv_begin(w, KMIP_TAG_PROTOCOL_VERSION);
	cmk_ttlv_int(w, KMIP_TAG_PROTOCOL_MAJOR, v.major);
	cmk_ttlv_int(w, KMIP_TAG_PROTOCOL_MINOR, v.minor);
	cmk_ttlv_end(w);
	cmk_ttlv_int(w, KMIP_TAG_BATCH_COUNT, 1);
	cmk_ttlv_end(w);
	cmk_ttlv_begin(w, KMIP_TAG_BATCH_ITEM);
	cmk_ttlv_enum(w, KMIP_TAG_OPERATION, op);
	cmk_ttlv_begin(w, KMIP_TAG_REQUEST_PAYLOAD);
}

static void end_request(struct cmk_ttlv_enc *w)
{
	cmk_ttlv_end(w);	/* payload */
	cmk_ttlv_end(w);	/* batch item */
	cmk_ttlv_end(w);	/* message */
}

void cmk_kmip_req_discover(struct cmk_ttlv_enc *w, struct cmk_kmip_version v,
			   const struct cmk_kmip_version *offer, size_t n)
{
	begin_request(w, v, KMIP_OP_DISCOVER_VERSIONS);
	for (size_t i = 0; i < n; i++) {
		cmk_ttlv_begin(w, KMIP_TAG_PROTOCOL_VERSION);
		cmk_ttlv_int(w, KMIP_TAG_PROTOCOL_MAJOR, offer[i].major);
		cmk_ttlv_int(w, KMIP_TAG_PROTOCOL_MINOR, offer[i].minor);
		cmk_ttlv_end(w);
	}
	end_request(w);
}

void cmk_kmip_req_locate(struct cmk_ttlv_enc *w, struct cmk_kmip_version v,
			 const char *name)
{
	begin_request(w, v, KMIP_OP_LOCATE);
	cmk_ttlv_begin(w, KMIP_TAG_ATTRIBUTE);
	cmk_ttlv_text(w, KMIP_TAG_ATTRIBUTE_NAME, "Object Type");
	cmk_ttlv_enum(w, KMIP_TAG_ATTRIBUTE_VALUE, KMIP_OBJ_SYMMETRIC_KEY);
	cmk_ttlv_end(w);
	cmk_ttlv_begin(w, KMIP_TAG_ATTRIBUTE);
	cmk_ttlv_text(w, KMIP_TAG_ATTRIBUTE_NAME, "Name");
	cmk_ttlv_begin(w, KMIP_TAG_ATTRIBUTE_VALUE);
	cmk_ttlv_text(w, KMIP_TAG_NAME_VALUE, name);
	cmk_ttlv_enum(w, KMIP_TAG_NAME_TYPE, KMIP_NAME_TEXT);
	cmk_ttlv_end(w);
	cmk_ttlv_end(w);
	end_request(w);
}

void cmk_kmip_req_get_state(struct cmk_ttlv_enc *w, struct cmk_kmip_version v,
			    const char *uid)
{
	begin_request(w, v, KMIP_OP_GET_ATTRIBUTES);
	cmk_ttlv_text(w, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
	cmk_ttlv_text(w, KMIP_TAG_ATTRIBUTE_NAME, "State");
	end_request(w);
}

static void gcm_params(struct cmk_ttlv_enc *w, int tag_len)
{
	cmk_ttlv_begin(w, KMIP_TAG_CRYPTO_PARAMETERS);
	cmk_ttlv_enum(w, KMIP_TAG_BLOCK_CIPHER_MODE, KMIP_MODE_GCM);
	cmk_ttlv_enum(w, KMIP_TAG_CRYPTO_ALGORITHM, KMIP_ALG_AES);
	cmk_ttlv_int(w, KMIP_TAG_TAG_LENGTH, tag_len);
	cmk_ttlv_end(w);
}

void cmk_kmip_req_encrypt(struct cmk_ttlv_enc *w, struct cmk_kmip_version v,
			  const char *uid, const unsigned char *pt, size_t ptn,
			  const unsigned char *iv, size_t ivn,
			  const unsigned char *aad, size_t aadn, int tag_len)
{
	begin_request(w, v, KMIP_OP_ENCRYPT);
	cmk_ttlv_text(w, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
	gcm_params(w, tag_len);
	cmk_ttlv_bytes(w, KMIP_TAG_DATA, pt, ptn);
	cmk_ttlv_bytes(w, KMIP_TAG_IV_COUNTER_NONCE, iv, ivn);
	if (aadn)
		cmk_ttlv_bytes(w, KMIP_TAG_AE_ADDITIONAL_DATA, aad, aadn);
	end_request(w);
}

void cmk_kmip_req_decrypt(struct cmk_ttlv_enc *w, struct cmk_kmip_version v,
			  const char *uid, const unsigned char *ct, size_t ctn,
			  const unsigned char *iv, size_t ivn,
			  const unsigned char *aad, size_t aadn,
			  const unsigned char *tag, size_t tagn)
{
	begin_request(w, v, KMIP_OP_DECRYPT);
	cmk_ttlv_text(w, KMIP_TAG_UNIQUE_IDENTIFIER, uid);
	gcm_params(w, (int)tagn);
	cmk_ttlv_bytes(w, KMIP_TAG_DATA, ct, ctn);
	cmk_ttlv_bytes(w, KMIP_TAG_IV_COUNTER_NONCE, iv, ivn);
	if (aadn)
		cmk_ttlv_bytes(w, KMIP_TAG_AE_ADDITIONAL_DATA, aad, aadn);
	cmk_ttlv_bytes(w, KMIP_TAG_AE_TAG, tag, tagn);
	end_request(w);
}

/* ---- responses --------------------------------------------------------- */

static bool get_version(const struct cmk_ttlv *pv, struct cmk_kmip_version *v)
{
	int32_t ma, mi;

	if (!cmk_ttlv_get_int(pv, KMIP_TAG_PROTOCOL_MAJOR, &ma) ||
	    !cmk_ttlv_get_int(pv, KMIP_TAG_PROTOCOL_MINOR, &mi) ||
	    ma < 0 || mi < 0)
		return false;
	v->major = ma;
	v->minor = mi;
	return true;
}

int cmk_kmip_parse_response(const unsigned char *buf, size_t len, uint32_t op,
			    struct cmk_kmip_resp *r)
{
	struct cmk_ttlv msg, hdr, pv, item;
	int32_t count;
	size_t pos = 0;
	int items = 0;

	memset(r, 0, sizeof(*r));
	if (cmk_ttlv_parse(buf, len, &msg) ||
	    msg.tag != KMIP_TAG_RESPONSE_MESSAGE ||
	    msg.type != CMK_TTLV_STRUCTURE ||
	    !cmk_ttlv_find(&msg, KMIP_TAG_RESPONSE_HEADER, CMK_TTLV_STRUCTURE, &hdr) ||
	    !cmk_ttlv_find(&hdr, KMIP_TAG_PROTOCOL_VERSION, CMK_TTLV_STRUCTURE, &pv) ||
	    !get_version(&pv, &r->version) ||
	    !cmk_ttlv_get_int(&hdr, KMIP_TAG_BATCH_COUNT, &count) || count != 1)
		return -EBADMSG;
	while (cmk_ttlv_next(&msg, &pos, &item))
		if (item.tag == KMIP_TAG_BATCH_ITEM) {
			if (item.type != CMK_TTLV_STRUCTURE || items++)
				return -EBADMSG;
			break;
		}
	if (!items || !cmk_ttlv_get_enum(&item, KMIP_TAG_RESULT_STATUS, &r->status))
		return -EBADMSG;
	cmk_ttlv_get_enum(&item, KMIP_TAG_OPERATION, &r->op);
	cmk_ttlv_get_enum(&item, KMIP_TAG_RESULT_REASON, &r->reason);
	if (cmk_ttlv_get_text(&item, KMIP_TAG_RESULT_MESSAGE, r->message,
			      sizeof(r->message)))
		cmk_printable(r->message, strlen(r->message), r->message,
			      sizeof(r->message), true);
	r->has_payload = cmk_ttlv_find(&item, KMIP_TAG_RESPONSE_PAYLOAD,
				       CMK_TTLV_STRUCTURE, &r->payload);
	/* An error answer may omit the operation; a success may not. */
	if (r->op != op && (r->op || r->status == KMIP_STATUS_SUCCESS))
		return -EPROTO;
	return 0;
}

int cmk_kmip_discover_result(const struct cmk_kmip_resp *r,
			     struct cmk_kmip_version *out, size_t max,
			     size_t *n)
{
	struct cmk_ttlv c;
	size_t pos = 0;

	*n = 0;
	if (!r->has_payload)
		return 0;	/* no versions in common */
	while (cmk_ttlv_next(&r->payload, &pos, &c)) {
		if (c.tag != KMIP_TAG_PROTOCOL_VERSION)
			continue;
		if (c.type != CMK_TTLV_STRUCTURE)
			return -EBADMSG;
		if (*n < max) {
			if (!get_version(&c, &out[*n]))
				return -EBADMSG;
			(*n)++;
		}
	}
	return 0;
}

int cmk_kmip_locate_result(const struct cmk_kmip_resp *r,
			   char uid[CMK_KMIP_UID_MAX], size_t *count)
{
	struct cmk_ttlv c;
	size_t pos = 0;

	*count = 0;
	uid[0] = '\0';
	if (!r->has_payload)
		return 0;
	while (cmk_ttlv_next(&r->payload, &pos, &c)) {
		if (c.tag != KMIP_TAG_UNIQUE_IDENTIFIER)
			continue;
		if (c.type != CMK_TTLV_TEXT || c.len == 0 ||
		    c.len >= CMK_KMIP_UID_MAX)
			return -EBADMSG;
		if (!*count) {
			memcpy(uid, c.val, c.len);
			uid[c.len] = '\0';
			for (char *p = uid; *p; p++)
				if (*p <= ' ' || *p > '~')
					return -EBADMSG;
		}
		(*count)++;
	}
	return 0;
}

int cmk_kmip_state_result(const struct cmk_kmip_resp *r, uint32_t *state)
{
	struct cmk_ttlv a;
	size_t pos = 0;
	char name[16];

	if (!r->has_payload)
		return -EBADMSG;
	while (cmk_ttlv_next(&r->payload, &pos, &a)) {
		if (a.tag != KMIP_TAG_ATTRIBUTE || a.type != CMK_TTLV_STRUCTURE ||
		    !cmk_ttlv_get_text(&a, KMIP_TAG_ATTRIBUTE_NAME, name, sizeof(name)) ||
		    strcmp(name, "State"))
			continue;
		if (cmk_ttlv_get_enum(&a, KMIP_TAG_ATTRIBUTE_VALUE, state))
			return 0;
		return -EBADMSG;
	}
	return -EBADMSG;
}

int cmk_kmip_encrypt_result(const struct cmk_kmip_resp *r,
			    const unsigned char **ct, size_t *ctn,
			    const unsigned char **iv, size_t *ivn,
			    const unsigned char **tag, size_t *tagn)
{
	*iv = NULL;
	*ivn = 0;
	if (!r->has_payload ||
	    !cmk_ttlv_get_bytes(&r->payload, KMIP_TAG_DATA, ct, ctn) ||
	    !cmk_ttlv_get_bytes(&r->payload, KMIP_TAG_AE_TAG, tag, tagn))
		return -EBADMSG;
	cmk_ttlv_get_bytes(&r->payload, KMIP_TAG_IV_COUNTER_NONCE, iv, ivn);
	return 0;
}

int cmk_kmip_decrypt_result(const struct cmk_kmip_resp *r,
			    const unsigned char **pt, size_t *ptn)
{
	if (!r->has_payload ||
	    !cmk_ttlv_get_bytes(&r->payload, KMIP_TAG_DATA, pt, ptn))
		return -EBADMSG;
	return 0;
}

/* ---- classification ---------------------------------------------------- */

static const struct {
	uint32_t reason;
	const char *name;
	enum cmk_reason why;
} reasons[] = {
	{ KMIP_RR_ITEM_NOT_FOUND,	   "Item Not Found",		CMK_R_NOT_FOUND },
	{ KMIP_RR_RESPONSE_TOO_LARGE,	   "Response Too Large",	CMK_R_LOCAL },
	{ KMIP_RR_AUTH_NOT_SUCCESSFUL,	   "Authentication Not Successful", CMK_R_DENIED },
	{ KMIP_RR_INVALID_MESSAGE,	   "Invalid Message",		CMK_R_LOCAL },
	{ KMIP_RR_OPERATION_NOT_SUPPORTED, "Operation Not Supported",	CMK_R_LOCAL },
	{ KMIP_RR_MISSING_DATA,		   "Missing Data",		CMK_R_LOCAL },
	{ KMIP_RR_INVALID_FIELD,	   "Invalid Field",		CMK_R_LOCAL },
	{ KMIP_RR_FEATURE_NOT_SUPPORTED,   "Feature Not Supported",	CMK_R_LOCAL },
	{ KMIP_RR_CANCELED,		   "Operation Canceled By Requester", CMK_R_UNAVAILABLE },
	{ KMIP_RR_CRYPTOGRAPHIC_FAILURE,   "Cryptographic Failure",	CMK_R_INVALID_CIPHERTEXT },
	{ KMIP_RR_ILLEGAL_OPERATION,	   "Illegal Operation",		CMK_R_LOCAL },
	{ KMIP_RR_PERMISSION_DENIED,	   "Permission Denied",		CMK_R_DENIED },
	{ KMIP_RR_OBJECT_ARCHIVED,	   "Object Archived",		CMK_R_DISABLED },
	{ KMIP_RR_WRONG_KEY_STATE,	   "Wrong Key Lifecycle State",	CMK_R_REVOKED },
	{ KMIP_RR_INCOMPATIBLE_USAGE_MASK, "Incompatible Cryptographic Usage Mask", CMK_R_DENIED },
	{ KMIP_RR_INTERNAL_SERVER_ERROR,   "Internal Server Error",	CMK_R_UNAVAILABLE },
	{ KMIP_RR_GENERAL_FAILURE,	   "General Failure",		CMK_R_UNAVAILABLE },
};

#define N_REASONS (sizeof(reasons) / sizeof(reasons[0]))

enum cmk_reason cmk_kmip_classify(uint32_t status, uint32_t reason)
{
	if (status == KMIP_STATUS_SUCCESS)
		return CMK_R_NONE;
	if (status != KMIP_STATUS_FAILED)
		return CMK_R_UNAVAILABLE;	/* pending, undone: try again */
	for (size_t i = 0; i < N_REASONS; i++)
		if (reasons[i].reason == reason)
			return reasons[i].why;
	return CMK_R_UNAVAILABLE;
}

const char *cmk_kmip_reason_name(uint32_t reason)
{
	for (size_t i = 0; i < N_REASONS; i++)
		if (reasons[i].reason == reason)
			return reasons[i].name;
	return reason ? "(unknown reason)" : "(no reason)";
}

enum cmk_reason cmk_kmip_state_reason(uint32_t state)
{
	switch (state) {
	case KMIP_STATE_PRE_ACTIVE:
		return CMK_R_DISABLED;
	case KMIP_STATE_DEACTIVATED:
	case KMIP_STATE_COMPROMISED:
		return CMK_R_REVOKED;
	case KMIP_STATE_DESTROYED:
	case KMIP_STATE_DESTROYED_COMPROMISED:
		return CMK_R_DESTROYED;
	default:
		return CMK_R_DENIED;
	}
}

const char *cmk_kmip_state_name(uint32_t state)
{
	static const char *const names[] = {
		"(none)", "Pre-Active", "Active", "Deactivated", "Compromised",
		"Destroyed", "Destroyed Compromised",
	};

	return state < sizeof(names) / sizeof(names[0]) ? names[state] : "(unknown)";
}
