/*
 * libFuzzer target: the Authorization header of a request to the guard
 * or to /v1/userinfo and /v1/verify. http_bearer() needs an MHD
 * connection; here the value is split on its first space, and what
 * follows "Bearer " (any case) -- or, without that scheme, the whole
 * value -- goes to tok_verify() as arbitrary bytes, against a keyset
 * built once from the test JWKS of fuzz_keys.h (an ES256 and an RS256
 * key), with a fixed issuer, audience and clock.
 *
 * Invariants (a violation traps): a refusal leaves *claims_r alone and
 * gives a reason other than TOK_OK; an acceptance gives TOK_OK and a
 * claims object with the expected iss and a non-empty sub.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "fuzz_keys.h"
#include "token/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tok_keyset *keyset;

static void
verify(const char *tok, size_t len)
{
	static const struct tok_expect e = {FUZZ_ISS, FUZZ_AUD, FUZZ_NOW, 30};
	enum tok_err why = TOK_INTERNAL;
	json_t *claims = NULL;
	const char *sub;

	if (tok_verify(keyset, tok, len, &e, &claims, &why) == -1) {
		if (claims != NULL || why == TOK_OK)
			__builtin_trap();
		return;
	}
	sub = json_string_value(json_object_get(claims, "sub"));
	if (why != TOK_OK || !json_is_object(claims) || sub == NULL ||
	    *sub == '\0' ||
	    strcmp(json_string_value(json_object_get(claims, "iss")),
		FUZZ_ISS) != 0)
		__builtin_trap();
	json_decref(claims);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *h = (const char *)data, *sp;
	char err[256];

	if (keyset == NULL &&
	    tok_keyset_from_jwks(fuzz_jwks, strlen(fuzz_jwks), &keyset, err,
		sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_bearer: test JWKS refused: %s\n", err);
		__builtin_trap();
	}
	/* Scheme, one space, credentials: the bytes stay in the fuzzer's
	 * buffer, so ASan sees any read past the token's end. */
	sp = memchr(h, ' ', size);
	if (sp != NULL && sp - h == 6 && strncasecmp(h, "Bearer", 6) == 0)
		verify(sp + 1, size - 7);
	else
		verify(h, size);
	return 0;
}
