/*
 * Unit tests for src/util/b64.c: the RFC 4648 vectors in the URL-safe
 * alphabet without padding, and a strict decoder (no padding, no foreign
 * characters, no stray bits, no impossible length, the cap respected).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/b64.h"

/* A string literal and its length without the terminating NUL. */
#define B(s) s, sizeof(s) - 1

static const struct {
	const char *raw;
	size_t n;
	const char *enc;
} vectors[] = {
    /* RFC 4648 §10. */
    {B(""), ""},
    {B("f"), "Zg"},
    {B("fo"), "Zm8"},
    {B("foo"), "Zm9v"},
    {B("foob"), "Zm9vYg"},
    {B("fooba"), "Zm9vYmE"},
    {B("foobar"), "Zm9vYmFy"},
    /* The two characters that differ from base64 (§5). */
    {B("\xfb\xff"), "-_8"},
    {B("\xfb\xef\xbe"), "----"},
    {B("\xff\xff\xff"), "____"},
    {B("\xff\xff\xfe"), "___-"},
    {B("\x00"), "AA"},
    {B("\x00\x00\x00"), "AAAA"},
    {B("\x03\xe0"), "A-A"},
    {B("\x14\xfb\x9c\x03\xd9\x7e"), "FPucA9l-"},
};

static void
test_encode_vectors(void **state)
{
	char out[64];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		memset(out, '#', sizeof(out));
		n = b64url_encode(
		    out, (const unsigned char *)vectors[i].raw, vectors[i].n);
		if (n != strlen(vectors[i].enc) ||
		    strcmp(out, vectors[i].enc) != 0)
			fail_msg("encode vector %zu: got '%s' (%zu), want '%s'",
			    i, out, n, vectors[i].enc);
		assert_int_equal(n, B64URL_LEN(vectors[i].n));
		assert_int_equal(out[n + 1], '#'); /* no byte past the NUL */
	}
}

static void
test_decode_vectors(void **state)
{
	unsigned char out[64];
	size_t i;
	long n;

	(void)state;
	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		memset(out, 0xaa, sizeof(out));
		n = b64url_decode(
		    out, sizeof(out), vectors[i].enc, strlen(vectors[i].enc));
		if (n != (long)vectors[i].n ||
		    memcmp(out, vectors[i].raw, vectors[i].n) != 0)
			fail_msg("decode vector %zu ('%s'): got %ld", i,
			    vectors[i].enc, n);
		assert_int_equal(out[vectors[i].n], 0xaa);
	}
}

static void
test_round_trip(void **state)
{
	unsigned char raw[200], back[200];
	char enc[B64URL_LEN(200) + 1];
	size_t n, i, len;

	(void)state;
	srand(4648);
	for (n = 0; n <= sizeof(raw); n++) {
		for (i = 0; i < n; i++)
			raw[i] = (unsigned char)rand();
		len = b64url_encode(enc, raw, n);
		assert_int_equal(len, B64URL_LEN(n));
		assert_int_not_equal(len % 4, 1);
		assert_null(memchr(enc, '=', len));
		assert_int_equal(b64url_decode(back, n, enc, len), (long)n);
		assert_memory_equal(raw, back, n);
	}
}

static void
test_decode_refused(void **state)
{
	static const struct {
		const char *name;
		const char *s;
		size_t n;
	} cases[] = {
	    {"padding ==", B("Zg==")},
	    {"padding =", B("Zm8=")},
	    {"padding on a full quad", B("Zm9v====")},
	    {"lone =", B("=")},
	    {"base64 +", B("+_8")},
	    {"base64 /", B("-/8")},
	    {"both + and /", B("++//")},
	    {"space", B("Zm9 v")},
	    {"leading space", B(" Zm9v")},
	    {"trailing space", B("Zm9v ")},
	    {"newline", B("Zm9v\nYmFy")},
	    {"tab", B("Zm\t9")},
	    {"dot", B("Zm9.")},
	    {"NUL inside", B("Zm\0v")},
	    {"8-bit byte", B("Zm\x80v")},
	    {"0xff byte", B("Zm\xffv")},
	    {"bad char in last pair", B("Zm9vY*")},
	    {"bad char in last triple", B("Zm9vYm!")},
	    /* One character: 6 bits, never a whole byte. */
	    {"length 1", B("Z")},
	    {"length 5", B("Zm9vY")},
	    {"length 9", B("Zm9vYmFyZ")},
	    /* The unused low bits of the last character must be zero. */
	    {"stray bits in 2", B("Zh")},
	    {"stray bits in 2, max", B("Z_")},
	    {"stray bits in 3", B("Zm9")},
	    {"stray bits in 3, low bit", B("Zm-")},
	    {"stray bits after a quad", B("Zm9vYh")},
	};

	unsigned char out[64];
	size_t i;
	long n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = b64url_decode(out, sizeof(out), cases[i].s, cases[i].n);
		if (n != -1)
			fail_msg(
			    "decode '%s' accepted (%ld)", cases[i].name, n);
	}
}

static void
test_decode_every_character(void **state)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char out[4];
	char in[4] = {'A', 'A', 'A', 'A'};
	int c;
	long n, want;

	(void)state;
	for (c = 0; c < 256; c++) {
		in[2] = (char)c;
		want = c != 0 && strchr(alphabet, c) != NULL ? 3 : -1;
		n = b64url_decode(out, sizeof(out), in, sizeof(in));
		if (n != want)
			fail_msg(
			    "character 0x%02x: got %ld, want %ld", c, n, want);
		if (n == 3) {
			size_t v = (size_t)(strchr(alphabet, c) - alphabet);

			assert_int_equal(out[0], 0);
			assert_int_equal(out[1], v >> 2);
			assert_int_equal(out[2], (v << 6) & 0xff);
		}
	}
}

static void
test_decode_cap(void **state)
{
	static const struct {
		const char *s;
		size_t cap;
		long want;
	} cases[] = {
	    {"Zm9vYmFy", 6, 6},
	    {"Zm9vYmFy", 5, -1},
	    {"Zm9vYmE", 5, 5},
	    {"Zm9vYmE", 4, -1},
	    {"Zm9vYg", 4, 4},
	    {"Zm9vYg", 3, -1},
	    {"Zg", 1, 1},
	    {"Zg", 0, -1},
	    {"", 0, 0},
	};

	unsigned char out[16];
	size_t i;
	long n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(out, 0xaa, sizeof(out));
		n = b64url_decode(
		    out, cases[i].cap, cases[i].s, strlen(cases[i].s));
		if (n != cases[i].want)
			fail_msg("decode '%s' cap %zu: got %ld, want %ld",
			    cases[i].s, cases[i].cap, n, cases[i].want);
		/* Nothing is ever written at or past the cap. */
		assert_int_equal(out[cases[i].cap], 0xaa);
	}
}

static void
test_decode_failure_leaves_nothing(void **state)
{
	unsigned char out[16];

	(void)state;
	/* "foobar" with its last character bad: nothing decoded stays. */
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(b64url_decode(out, sizeof(out), B("Zm9vYmF+")), -1);
	assert_memory_not_equal(out, "foo", 3);
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(b64url_decode(out, sizeof(out), B("Zm9vYh")), -1);
	assert_memory_not_equal(out, "foo", 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode_vectors),
	    cmocka_unit_test(test_decode_vectors),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_decode_refused),
	    cmocka_unit_test(test_decode_every_character),
	    cmocka_unit_test(test_decode_cap),
	    cmocka_unit_test(test_decode_failure_leaves_nothing),
	};

	return cmocka_run_group_tests_name("b64", tests, NULL, NULL);
}
