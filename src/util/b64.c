/*
 * base64url without padding (RFC 4648 §5), as JOSE uses it.
 *
 * The decoder is strict so that one token has one spelling: only the 64
 * URL-safe characters, no padding, no whitespace, no length of 1 mod 4,
 * and the unused low bits of the last character zero.
 */
#include <limits.h>

#include "util/b64.h"
#include "util/sec.h"

/* A value no character decodes to; any bit of it marks the input bad. */
#define XX 0x80

static const char enc[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* clang-format off */
static const unsigned char dec[256] = {
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, 62, XX, XX,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, XX, XX, XX, XX, XX, XX,
	XX,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, XX, XX, XX, XX, 63,
	XX, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
};

/* clang-format on */

size_t
b64url_encode(char *dst, const unsigned char *src, size_t n)
{
	size_t i, o = 0;
	unsigned long v;

	for (i = 0; i + 3 <= n; i += 3) {
		v = (unsigned long)src[i] << 16 |
		    (unsigned long)src[i + 1] << 8 | src[i + 2];
		dst[o++] = enc[(v >> 18) & 63];
		dst[o++] = enc[(v >> 12) & 63];
		dst[o++] = enc[(v >> 6) & 63];
		dst[o++] = enc[v & 63];
	}
	if (n - i == 1) {
		v = (unsigned long)src[i] << 16;
		dst[o++] = enc[(v >> 18) & 63];
		dst[o++] = enc[(v >> 12) & 63];
	} else if (n - i == 2) {
		v = (unsigned long)src[i] << 16 |
		    (unsigned long)src[i + 1] << 8;
		dst[o++] = enc[(v >> 18) & 63];
		dst[o++] = enc[(v >> 12) & 63];
		dst[o++] = enc[(v >> 6) & 63];
	}
	dst[o] = '\0';
	return o;
}

long
b64url_decode(unsigned char *dst, size_t cap, const char *src, size_t n)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t i, o = 0, rest = n % 4, need;
	unsigned long v;
	unsigned bad = 0;
	long ret = -1;

	/* One character carries 6 bits: never a whole byte. */
	if (rest == 1 || n / 4 > ((size_t)LONG_MAX - 2) / 3)
		goto out;
	need = n / 4 * 3 + (rest == 0 ? 0 : rest - 1);
	if (need > cap)
		goto out;
	for (i = 0; i + 4 <= n; i += 4) {
		bad |=
		    dec[s[i]] | dec[s[i + 1]] | dec[s[i + 2]] | dec[s[i + 3]];
		v = (unsigned long)dec[s[i]] << 18 |
		    (unsigned long)dec[s[i + 1]] << 12 |
		    (unsigned long)dec[s[i + 2]] << 6 | dec[s[i + 3]];
		dst[o++] = (unsigned char)(v >> 16);
		dst[o++] = (unsigned char)(v >> 8);
		dst[o++] = (unsigned char)v;
	}
	if (rest == 2) {
		bad |= dec[s[i]] | dec[s[i + 1]];
		/* The last character's low 4 bits fall outside the byte. */
		bad |= (dec[s[i + 1]] & 0x0f) != 0 ? XX : 0;
		v = (unsigned long)dec[s[i]] << 18 |
		    (unsigned long)dec[s[i + 1]] << 12;
		dst[o++] = (unsigned char)(v >> 16);
	} else if (rest == 3) {
		bad |= dec[s[i]] | dec[s[i + 1]] | dec[s[i + 2]];
		/* Its low 2 bits fall outside the two bytes. */
		bad |= (dec[s[i + 2]] & 0x03) != 0 ? XX : 0;
		v = (unsigned long)dec[s[i]] << 18 |
		    (unsigned long)dec[s[i + 1]] << 12 |
		    (unsigned long)dec[s[i + 2]] << 6;
		dst[o++] = (unsigned char)(v >> 16);
		dst[o++] = (unsigned char)(v >> 8);
	}
	if (bad & XX) {
		/* Nothing half-decoded is left behind. */
		sec_wipe(dst, o);
		goto out;
	}
	ret = (long)o;
out:
	return ret;
}
