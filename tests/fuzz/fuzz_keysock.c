// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_keysock.c - the agent's key socket request parser: whatever a
 * local peer sends (any uid that can connect reaches the parser only
 * after the allow-list, but the allow-list is configuration, so the
 * parser is held to hostile input anyway).
 *
 * Input: the bytes of one request.  Oracles: ASan/UBSan; the length the
 * framing announces agrees with the parse (a request parses only at
 * exactly that length); a request that parses is canonical: building it
 * again from what was parsed gives the same bytes (so no two requests
 * mean the same thing); the parsed context serialises back to exactly
 * the received AAD (the audited context is the AAD); and the response
 * parser stays in bounds on the same bytes, whatever their length.
 *
 *   make -C agent fuzz FUZZ_TARGETS=keysock
 *
 * Seeds in tests/fuzz/corpus/keysock: requests of both operations.
 */
#include <stdlib.h>
#include <string.h>

#include "core/secret.h"
#include "format/esdk.h"
#include "format/keysock.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmk_keysock_req req;
	enum cmk_keysock_status st;
	struct cmk_secret *dk = NULL;
	struct cmk_esdk_edk edk;
	struct cmk_err e;
	unsigned char *again;
	size_t len;
	ssize_t want;

	want = size ? cmk_keysock_req_len(data, size, &e) : 0;
	if (cmk_keysock_req_parse(data, size, &req, &e) == 0) {
		if (want != (ssize_t)size)
			abort();
		if (cmk_keysock_req_build(req.op, req.ec, req.ec_len, &req.edk,
					  &again, &len, &e))
			abort();
		if (len != size || memcmp(again, data, size))
			abort();
		free(again);
		/* the audited context is exactly the AAD the EDK is bound to */
		if (cmk_esdk_ec_serialize(&req.ctx, &again, &len, &e) ||
		    len != req.ec_len || (len && memcmp(again, req.ec, len)))
			abort();
		free(again);
		cmk_keysock_req_free(&req);
	}
	memset(&edk, 0, sizeof(edk));
	/* any length: the parser bounds itself (not only its caller) */
	if (cmk_keysock_resp_parse(data, size, CMK_KEYSOCK_NEW_DATA_KEY, &st, &dk,
				   &edk, &e) == 0) {
		cmk_secret_free(&dk);
		cmk_esdk_edk_free(&edk);
	}
	return 0;
}
