// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_envelope.c - the KEK envelope parser: the envelope file is JSON
 * the agent reads at every start (and again when it changes).
 *
 * Oracles: ASan/UBSan; an accepted envelope serialises, and what it
 * serialises to parses again to the same envelope (same JSON out).
 */
#include <stdlib.h>
#include <string.h>

#include "format/envelope.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmk_envelope env, env2;
	char *json = NULL, *json2 = NULL;
	struct cmk_err e;

	if (size > CMK_ENVELOPE_MAX_SIZE)
		return 0;
	cmk_envelope_init(&env);
	cmk_envelope_init(&env2);
	if (cmk_envelope_parse((const char *)data, size, "fuzz", &env, &e))
		goto out;
	if (cmk_envelope_to_json(&env, &json, &e))
		abort();
	if (cmk_envelope_parse(json, strlen(json), "fuzz again", &env2, &e) ||
	    cmk_envelope_to_json(&env2, &json2, &e) || strcmp(json, json2))
		abort();
out:
	free(json);
	free(json2);
	cmk_envelope_free(&env);
	cmk_envelope_free(&env2);
	return 0;
}
