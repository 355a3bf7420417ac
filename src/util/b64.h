/*
 * base64url without padding (RFC 4648 §5), as JOSE uses it.
 */
#ifndef EA_UTIL_B64_H
#define EA_UTIL_B64_H

#include <stddef.h>

/* Characters b64url_encode() writes for n bytes, without the NUL. */
#define B64URL_LEN(n) (((n)*4 + 2) / 3)

/*
 * Encodes n bytes of src into dst (at least B64URL_LEN(n) + 1 bytes),
 * NUL-terminated. Returns the length written.
 */
size_t b64url_encode(char *dst, const unsigned char *src, size_t n);

/*
 * Decodes n characters of src (strict: only A-Z a-z 0-9 - _, no padding,
 * no whitespace, and the unused low bits of the last character zero) into
 * dst, which has room for cap bytes. Returns the number of bytes, or -1.
 */
long b64url_decode(unsigned char *dst, size_t cap, const char *src, size_t n);

#endif
