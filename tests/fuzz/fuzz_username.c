/*
 * libFuzzer target: the user name rules. authn_username_ok() decides what
 * reaches a backend, rg_canonical_user() what the sign-in regulation
 * counts under, str_utf8_valid() and str_has_control() are checked
 * against an independent decoder written here (Unicode 15, table 3-7).
 *
 * Invariants (a violation traps): an accepted name is 1-256 bytes of valid
 * UTF-8 without NUL or control characters; its canonical form always fits
 * AUTHN_CANON_MAX, is no longer, has no surrounding blanks or ASCII
 * capitals, is still valid UTF-8 without controls, and canonicalises to
 * itself; str_utf8_valid() and str_has_control() agree with the decoder.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authn/authn.h"
#include "ratelimit/regulate.h"
#include "util/str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Reference UTF-8 decoder: 1 when valid; *ctl_r set when a code point is
 * a C0 control, DEL or a C1 control.
 */
static int
ref_utf8(const unsigned char *p, size_t n, int *ctl_r)
{
	size_t i = 0;
	int ctl = 0;

	while (i < n) {
		unsigned long cp;
		unsigned char b = p[i];
		size_t need, k;
		unsigned char lo = 0x80, hi = 0xbf;

		if (b <= 0x7f) {
			if (b < 0x20 || b == 0x7f)
				ctl = 1;
			i++;
			continue;
		}
		if (b >= 0xc2 && b <= 0xdf) {
			need = 1;
			cp = b & 0x1f;
		} else if (b == 0xe0) {
			need = 2, lo = 0xa0, cp = b & 0x0f;
		} else if ((b >= 0xe1 && b <= 0xec) || b == 0xee || b == 0xef) {
			need = 2, cp = b & 0x0f;
		} else if (b == 0xed) {
			need = 2, hi = 0x9f, cp = b & 0x0f;
		} else if (b == 0xf0) {
			need = 3, lo = 0x90, cp = b & 0x07;
		} else if (b >= 0xf1 && b <= 0xf3) {
			need = 3, cp = b & 0x07;
		} else if (b == 0xf4) {
			need = 3, hi = 0x8f, cp = b & 0x07;
		} else {
			return 0;
		}
		if (n - i <= need)
			return 0;
		for (k = 1; k <= need; k++) {
			unsigned char c = p[i + k];

			if (k == 1 ? (c < lo || c > hi)
				   : (c < 0x80 || c > 0xbf))
				return 0;
			cp = cp << 6 | (c & 0x3f);
		}
		if (cp >= 0x80 && cp <= 0x9f)
			ctl = 1;
		i += need + 1;
	}
	*ctl_r = ctl;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char *z = NULL, canon[AUTHN_CANON_MAX], again[AUTHN_CANON_MAX];
	size_t cn, i;
	int ok, valid, ctl = 0;

	valid = ref_utf8(data, size, &ctl);
	if (str_utf8_valid(s, size) != valid)
		__builtin_trap();
	/* On valid UTF-8 the byte scan must see exactly the code points. */
	if (valid && str_has_control(s, size) != ctl)
		__builtin_trap();
	(void)authn_password_ok(s, size);

	ok = authn_username_ok(s, size);
	if (!ok)
		goto canon_only;
	if (size == 0 || size > AUTHN_USER_MAX ||
	    memchr(s, '\0', size) != NULL || !valid || ctl)
		__builtin_trap();
	/* The route copies the name into a NUL-terminated buffer. */
	if ((z = malloc(size + 1)) == NULL)
		return 0;
	memcpy(z, s, size);
	z[size] = '\0';
	if (rg_canonical_user(z, canon, sizeof(canon)) == -1)
		__builtin_trap();
	cn = strlen(canon);
	if (cn > size || !str_utf8_valid(canon, cn) ||
	    str_has_control(canon, cn))
		__builtin_trap();
	if (cn > 0 && (canon[0] == ' ' || canon[cn - 1] == ' '))
		__builtin_trap();
	for (i = 0; i < cn; i++)
		if (canon[i] >= 'A' && canon[i] <= 'Z')
			__builtin_trap();
	if (rg_canonical_user(canon, again, sizeof(again)) == -1 ||
	    strcmp(canon, again) != 0)
		__builtin_trap();
	free(z);
	return 0;

canon_only:
	/*
	 * Any UTF-8 string without NUL, refused names too: its canonical
	 * form fits a buffer of exactly its size, one byte less is refused (a
	 * heap buffer of that size, so ASan sees a write past it). A cap of 0
	 * is not asked about: no caller passes one. Invalid UTF-8 only has to
	 * be memory safe: callers pass names authn_username_ok() accepted.
	 */
	if ((z = malloc(size + 1)) == NULL)
		return 0;
	memcpy(z, s, size);
	z[size] = '\0';
	if (rg_canonical_user(z, canon, sizeof(canon)) == 0 && valid &&
	    strlen(z) == size) {
		char *exact, *small = NULL;

		cn = strlen(canon);
		if ((exact = malloc(cn + 1)) != NULL &&
		    (cn == 0 || (small = malloc(cn)) != NULL)) {
			if (rg_canonical_user(z, exact, cn + 1) != 0 ||
			    strcmp(exact, canon) != 0 ||
			    (cn > 0 && rg_canonical_user(z, small, cn) != -1))
				__builtin_trap();
		}
		free(small);
		free(exact);
	}
	free(z);
	return 0;
}
