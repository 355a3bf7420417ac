/*
 * Unit tests for src/util/str.c: UTF-8 validation, control characters,
 * case-insensitive comparison and hex encoding.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "util/str.h"

/* A string literal and its length without the terminating NUL. */
#define B(s) s, sizeof(s) - 1

struct bytes_case {
	const char *name;
	const char *s;
	size_t n;
	int want;
};

static const struct bytes_case utf8_cases[] = {
    {"empty", B(""), 1},
    {"ascii", B("hello, world"), 1},
    {"ascii with NUL", B("a\0b"), 1},
    {"2-byte U+00E9", B("\xc3\xa9"), 1},
    {"2-byte lowest U+0080", B("\xc2\x80"), 1},
    {"2-byte highest U+07FF", B("\xdf\xbf"), 1},
    {"3-byte U+20AC", B("\xe2\x82\xac"), 1},
    {"3-byte lowest U+0800", B("\xe0\xa0\x80"), 1},
    {"3-byte U+D7FF", B("\xed\x9f\xbf"), 1},
    {"3-byte U+E000", B("\xee\x80\x80"), 1},
    {"3-byte highest U+FFFF", B("\xef\xbf\xbf"), 1},
    {"4-byte U+1F600", B("\xf0\x9f\x98\x80"), 1},
    {"4-byte lowest U+10000", B("\xf0\x90\x80\x80"), 1},
    {"4-byte highest U+10FFFF", B("\xf4\x8f\xbf\xbf"), 1},
    {"mixed", B("a\xc3\xa9z\xe2\x82\xac!\xf0\x9f\x98\x80."), 1},
    {"overlong C0 80", B("\xc0\x80"), 0},
    {"overlong C1 BF", B("\xc1\xbf"), 0},
    {"overlong E0 80 80", B("\xe0\x80\x80"), 0},
    {"overlong E0 9F BF", B("\xe0\x9f\xbf"), 0},
    {"overlong F0 80 80 80", B("\xf0\x80\x80\x80"), 0},
    {"overlong F0 8F BF BF", B("\xf0\x8f\xbf\xbf"), 0},
    {"surrogate ED A0 80", B("\xed\xa0\x80"), 0},
    {"surrogate ED BF BF", B("\xed\xbf\xbf"), 0},
    {"above U+10FFFF F4 90 80 80", B("\xf4\x90\x80\x80"), 0},
    {"lead F5", B("\xf5\x80\x80\x80"), 0},
    {"byte FE", B("\xfe"), 0},
    {"byte FF", B("\xff"), 0},
    {"truncated 2-byte", B("\xc3"), 0},
    {"truncated 3-byte", B("\xe2\x82"), 0},
    {"truncated 4-byte", B("\xf0\x9f\x98"), 0},
    {"truncated after ascii", B("abc\xc3"), 0},
    {"truncated by length", "\xc3\xa9", 1, 0},
    {"lone continuation 80", B("\x80"), 0},
    {"lone continuation BF", B("\xbf"), 0},
    {"continuation inside ascii", B("a\x80z"), 0},
    {"extra continuation", B("\xc3\xa9\xa9"), 0},
    {"ascii instead of continuation", B("\xc3\x28"), 0},
    {"bad second continuation", B("\xe2\x82\x28"), 0},
    {"NUL instead of continuation", B("\xc3\0"), 0},
};

static void
test_utf8_valid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
		const struct bytes_case *tc = &utf8_cases[i];
		int got = str_utf8_valid(tc->s, tc->n);

		if (got != tc->want)
			fail_msg("str_utf8_valid(%s): got %d, want %d",
			    tc->name, got, tc->want);
	}
}

static const struct bytes_case control_cases[] = {
    {"empty", B(""), 0},
    {"plain text", B("Alice Example <alice@example.com>"), 0},
    {"space and tilde", B(" ~"), 0},
    {"tab", B("a\tb"), 1},
    {"newline", B("a\nb"), 1},
    {"carriage return", B("a\r"), 1},
    {"escape", B("\x1b[31m"), 1},
    {"unit separator 1F", B("\x1f"), 1},
    {"NUL inside length", B("a\0b"), 1},
    {"NUL past length", "a\0b", 1, 0},
    {"DEL", B("a\x7f"), 1},
    {"U+0080 C2 80", B("\xc2\x80"), 1},
    {"U+0085 NEL C2 85", B("x\xc2\x85y"), 1},
    {"U+009F C2 9F", B("\xc2\x9f"), 1},
    {"U+00A0 C2 A0", B("\xc2\xa0"), 0},
    {"U+00E9", B("\xc3\xa9"), 0},
    {"U+20AC", B("\xe2\x82\xac"), 0},
    {"C2 85 cut by length", "\xc2\x85", 1, 0},
};

static void
test_has_control(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(control_cases) / sizeof(control_cases[0]); i++) {
		const struct bytes_case *tc = &control_cases[i];
		int got = str_has_control(tc->s, tc->n);

		if (got != tc->want)
			fail_msg("str_has_control(%s): got %d, want %d",
			    tc->name, got, tc->want);
	}
}

static void
test_ieq(void **state)
{
	static const struct {
		const char *a, *b;
		int want;
	} cases[] = {
	    {"abc", "abc", 1}, {"abc", "ABC", 1}, {"Bearer", "bEARER", 1},
	    {"", "", 1}, {"abc", "abd", 0}, {"abc", "ab", 0}, {"ab", "abc", 0},
	    {"a", "", 0}, {"@", "`", 0}, /* differ by 0x20, but not letters */
	    {"[", "{", 0},
	    {"\xc3\xa9", "\xc3\x89", 0}, /* ASCII only: not e-acute */
	};

	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = str_ieq(cases[i].a, cases[i].b);

		if (got != cases[i].want)
			fail_msg("str_ieq(\"%s\", \"%s\"): got %d, want %d",
			    cases[i].a, cases[i].b, got, cases[i].want);
	}
}

static void
test_hex(void **state)
{
	static const struct {
		const char *src;
		size_t n;
		const char *want;
	} cases[] = {
	    {B(""), ""},
	    {B("\x00"), "00"},
	    {B("\xff"), "ff"},
	    {B("\xa0\x0f"), "a00f"},
	    {B("\x01\x23\x45\x67\x89\xab\xcd\xef"), "0123456789abcdef"},
	    {B("AZ"), "415a"},
	};

	char dst[40];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = cases[i].n;

		memset(dst, 'X', sizeof(dst));
		str_hex(dst, (const unsigned char *)cases[i].src, n);
		assert_string_equal(dst, cases[i].want);
		/* Exactly 2n digits and a NUL: the next byte is untouched. */
		assert_int_equal(dst[2 * n + 1], 'X');
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_utf8_valid),
	    cmocka_unit_test(test_has_control),
	    cmocka_unit_test(test_ieq),
	    cmocka_unit_test(test_hex),
	};

	return cmocka_run_group_tests_name("str", tests, NULL, NULL);
}
