/*
 * libFuzzer target: tok_keyset_from_jwks(), the guard's reading of the
 * daemon's (or anyone's) JWKS document: jansson, member types, base64url
 * of x/y/n/e, OpenSSL key import and point checks, kid rules.
 *
 * Invariants (a violation traps): success gives a keyset holding at least
 * one key, each findable by its own kid; failure gives no keyset and a
 * message; the keyset's JWKS is JSON again and is accepted again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "token/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tok_keyset *ks = NULL, *again = NULL;
	const struct tok_key *k;
	json_t *doc = NULL, *keys, *v;
	char err[256], *jwks = NULL;
	size_t i;

	err[0] = '\0';
	if (tok_keyset_from_jwks(
		(const char *)data, size, &ks, err, sizeof(err)) == -1) {
		if (ks != NULL || err[0] == '\0')
			__builtin_trap();
		return 0;
	}
	if (ks == NULL)
		__builtin_trap();
	/* The keys as a JWKS again (what the guard would republish). */
	if ((jwks = tok_keyset_jwks(ks)) == NULL)
		goto out;
	if ((doc = json_loads(jwks, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !json_is_array(keys = json_object_get(doc, "keys")))
		__builtin_trap();
	json_array_foreach(keys, i, v)
	{
		const char *kid = json_string_value(json_object_get(v, "kid"));

		if (kid == NULL || (k = tok_keyset_find(ks, kid)) == NULL ||
		    strcmp(tok_key_kid(k), kid) != 0)
			__builtin_trap();
	}
	if (tok_keyset_from_jwks(
		jwks, strlen(jwks), &again, err, sizeof(err)) == -1)
		__builtin_trap();
out:
	json_decref(doc);
	free(jwks);
	tok_keyset_free(again);
	tok_keyset_free(ks);
	return 0;
}
