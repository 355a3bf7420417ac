/*
 * libFuzzer target: base64url (src/util/b64.c), the first decoder every
 * token segment and JWK member meets.
 *
 * Invariants (a violation traps): the decoder is strict, so a string it
 * accepts is the one spelling of its bytes: encoding them gives the input
 * back. A length of 1 mod 4 never decodes. The decoded size is exactly
 * the one computed from the length, and a buffer one byte short is
 * refused. Encoding the input bytes and decoding that gives them back.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/b64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	unsigned char *dec = NULL, *back = NULL;
	char *enc = NULL;
	size_t need;
	long n;

	/* Exactly sized heap buffers: ASan sees a write one past them. */
	need = size / 4 * 3 + (size % 4 == 0 ? 0 : size % 4 - 1);
	if ((dec = malloc(need > 0 ? need : 1)) == NULL)
		goto out;
	n = b64url_decode(dec, need, s, size);
	if (n >= 0) {
		if (size % 4 == 1 || (size_t)n != need)
			__builtin_trap();
		if ((enc = malloc(B64URL_LEN((size_t)n) + 1)) == NULL)
			goto out;
		if (b64url_encode(enc, dec, (size_t)n) != size ||
		    memcmp(enc, s, size) != 0 || enc[size] != '\0')
			__builtin_trap();
		/* One byte short: refused, nothing written past it. */
		if (need > 0 && b64url_decode(dec, need - 1, s, size) != -1)
			__builtin_trap();
		free(enc);
		enc = NULL;
	} else if (n != -1) {
		__builtin_trap();
	}

	/* The other way round: any bytes survive encode and decode. */
	if ((enc = malloc(B64URL_LEN(size) + 1)) == NULL ||
	    (back = malloc(size > 0 ? size : 1)) == NULL)
		goto out;
	if (b64url_encode(enc, data, size) != B64URL_LEN(size))
		__builtin_trap();
	n = b64url_decode(back, size, enc, B64URL_LEN(size));
	if (n < 0 || (size_t)n != size || memcmp(back, data, size) != 0)
		__builtin_trap();
out:
	free(dec);
	free(enc);
	free(back);
	return 0;
}
