/*
 * Unit tests for src/util/sec.c: constant-time comparison, wiping, secret
 * file modes and reading, and the kernel CSPRNG.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/sec.h"

/* A string literal and its length without the terminating NUL. */
#define B(s) s, sizeof(s) - 1

#define MODE_MSG                                                          \
	"%s is readable or writable by group or others (mode %04o); run " \
	"chmod 600 on it"

static char dir[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ea-test-sec-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

/* Removes what the tests made, then the directory. */
static int
teardown(void **state)
{
	static const char *const files[] = {"s", "link", "mode"};
	char p[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/sub", dir);
	rmdir(p);
	return rmdir(dir);
}

/* Writes n bytes into dir/name with the given mode; returns the path. */
static const char *
put_file(const char *name, const char *data, size_t n, mode_t mode)
{
	static char p[128];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	unlink(p);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
	return p;
}

static void
test_equal(void **state)
{
	static const struct {
		const char *a, *b;
		size_t n;
		int want;
	} cases[] = {
	    {"abc", "abc", 3, 1},
	    {"abc", "abd", 3, 0},
	    {"xbc", "abc", 3, 0},
	    {"abc", "abd", 2, 1}, /* only n bytes count */
	    {"abc", "xyz", 0, 1},
	    {"a\0b", "a\0c", 3, 0}, /* not a string compare */
	    {"\x80", "\x00", 1, 0},
	    {"\x01", "\x00", 1, 0},
	};

	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = sec_equal(cases[i].a, cases[i].b, cases[i].n);

		if (got != cases[i].want)
			fail_msg("sec_equal case %zu: got %d, want %d", i, got,
			    cases[i].want);
	}
}

static void
test_wipe(void **state)
{
	unsigned char buf[32];
	size_t i;

	(void)state;
	memset(buf, 0xaa, sizeof(buf));
	sec_wipe(buf + 4, 16);
	for (i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], i >= 4 && i < 20 ? 0 : 0xaa);
	memset(buf, 0xaa, sizeof(buf));
	sec_wipe(buf, 0);
	assert_int_equal(buf[0], 0xaa);
	sec_wipe(NULL, 16); /* NULL-safe */
}

static void
test_file_mode_ok(void **state)
{
	static const struct {
		mode_t mode;
		int ok;
	} cases[] = {
	    {0600, 1},
	    {0400, 1},
	    {0200, 1},
	    {0700, 1},
	    {0640, 0},
	    {0644, 0},
	    {0604, 0},
	    {0660, 0},
	    {0602, 0}, /* world-writable only */
	    {0620, 0},
	    {0601, 0},
	    {0610, 0},
	};

	char err[256], want[256];
	const char *p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got;

		p = put_file("mode", B("x"), cases[i].mode);
		err[0] = '\0';
		got = sec_file_mode_ok(p, err, sizeof(err));
		if (got != (cases[i].ok ? 0 : -1))
			fail_msg("sec_file_mode_ok(mode %04o): got %d",
			    (unsigned)cases[i].mode, got);
		if (cases[i].ok) {
			assert_string_equal(err, "");
			continue;
		}
		snprintf(
		    want, sizeof(want), MODE_MSG, p, (unsigned)cases[i].mode);
		assert_string_equal(err, want);
	}
}

static void
test_file_mode_not_regular(void **state)
{
	char err[256], want[256], p[128];

	(void)state;
	snprintf(p, sizeof(p), "%s/sub", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(sec_file_mode_ok(p, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s is not a regular file", p);
	assert_string_equal(err, want);
	assert_int_equal(rmdir(p), 0);

	assert_int_equal(sec_file_mode_ok(p, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "cannot read %s: %s", p, strerror(ENOENT));
	assert_string_equal(err, want);
}

enum read_err {
	RF_OK,
	RF_LONG,
	RF_EMPTY,
	RF_MODE,
};

static void
test_read_file(void **state)
{
	static const struct {
		const char *name;
		const char *data;
		size_t n;
		mode_t mode;
		size_t max;
		enum read_err err;
		const char *want;
		size_t want_len;
	} cases[] = {
	    {"plain", B("s3cret"), 0600, 64, RF_OK, B("s3cret")},
	    {"newline dropped", B("s3cret\n"), 0600, 64, RF_OK, B("s3cret")},
	    {"CRLF dropped", B("s3cret\r\n"), 0600, 64, RF_OK, B("s3cret")},
	    {"one newline only", B("s3cret\n\n"), 0600, 64, RF_OK,
		B("s3cret\n")},
	    {"inner newline kept", B("a\nb\n"), 0600, 64, RF_OK, B("a\nb")},
	    {"NUL byte kept", B("a\0b"), 0600, 64, RF_OK, B("a\0b")},
	    {"mode 0400", B("s3cret"), 0400, 64, RF_OK, B("s3cret")},
	    {"exactly max", B("12345678"), 0600, 8, RF_OK, B("12345678")},
	    {"over max", B("123456789"), 0600, 8, RF_LONG, NULL, 0},
	    {"over max by a newline", B("12345678\n"), 0600, 8, RF_LONG, NULL,
		0},
	    {"empty", B(""), 0600, 64, RF_EMPTY, NULL, 0},
	    {"only a newline", B("\n"), 0600, 64, RF_EMPTY, NULL, 0},
	    {"only CRLF", B("\r\n"), 0600, 64, RF_EMPTY, NULL, 0},
	    {"mode 0644", B("s3cret"), 0644, 64, RF_MODE, NULL, 0},
	    {"mode 0640", B("s3cret"), 0640, 64, RF_MODE, NULL, 0},
	    {"mode 0604", B("s3cret"), 0604, 64, RF_MODE, NULL, 0},
	};

	char err[256], want[256];
	struct sec_buf *b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *p =
		    put_file("s", cases[i].data, cases[i].n, cases[i].mode);

		err[0] = '\0';
		b = sec_read_file(p, cases[i].max, err, sizeof(err));
		if (cases[i].err == RF_OK) {
			if (b == NULL)
				fail_msg("sec_read_file(%s): refused: %s",
				    cases[i].name, err);
			if (b->len != cases[i].want_len ||
			    memcmp(b->p, cases[i].want, b->len) != 0) {
				sec_buf_free(&b);
				fail_msg("sec_read_file(%s): wrong contents",
				    cases[i].name);
			}
			sec_buf_free(&b);
			assert_null(b);
			continue;
		}
		if (b != NULL) {
			sec_buf_free(&b);
			fail_msg(
			    "sec_read_file(%s): not refused", cases[i].name);
		}
		if (cases[i].err == RF_LONG)
			snprintf(want, sizeof(want),
			    "%s is longer than %zu bytes", p, cases[i].max);
		else if (cases[i].err == RF_EMPTY)
			snprintf(want, sizeof(want), "%s is empty", p);
		else
			snprintf(want, sizeof(want), MODE_MSG, p,
			    (unsigned)cases[i].mode);
		if (strcmp(err, want) != 0)
			fail_msg("sec_read_file(%s): error '%s', want '%s'",
			    cases[i].name, err, want);
	}
}

static void
test_read_file_symlink(void **state)
{
	char err[256], want[256], lnk[128];
	struct sec_buf *b;
	const char *p;

	(void)state;
	p = put_file("s", B("s3cret"), 0600);
	b = sec_read_file(p, 64, err, sizeof(err));
	assert_non_null(b); /* the target itself is fine */
	sec_buf_free(&b);

	snprintf(lnk, sizeof(lnk), "%s/link", dir);
	unlink(lnk);
	assert_int_equal(symlink(p, lnk), 0);
	b = sec_read_file(lnk, 64, err, sizeof(err));
	assert_null(b);
	snprintf(
	    want, sizeof(want), "cannot open %s: %s", lnk, strerror(ELOOP));
	assert_string_equal(err, want);
	assert_int_equal(unlink(lnk), 0);
}

static void
test_read_file_missing_and_dir(void **state)
{
	char err[256], want[256], p[128];
	struct sec_buf *b;

	(void)state;
	snprintf(p, sizeof(p), "%s/missing", dir);
	b = sec_read_file(p, 64, err, sizeof(err));
	assert_null(b);
	snprintf(want, sizeof(want), "cannot open %s: %s", p, strerror(ENOENT));
	assert_string_equal(err, want);

	b = sec_read_file(dir, 64, err, sizeof(err));
	assert_null(b);
	snprintf(want, sizeof(want), "%s is not a regular file", dir);
	assert_string_equal(err, want);
}

static void
test_buf_free(void **state)
{
	struct sec_buf *b, *none = NULL;
	char err[256];

	(void)state;
	b = sec_read_file(
	    put_file("s", B("s3cret\n"), 0600), 64, err, sizeof(err));
	assert_non_null(b);
	assert_int_equal(b->len, 6);
	sec_buf_free(&b);
	assert_null(b);
	sec_buf_free(&b);    /* already NULL */
	sec_buf_free(&none); /* never set */
	sec_buf_free(NULL);
}

static void
test_random(void **state)
{
	unsigned char a[65], b[65];
	size_t i, changed = 0;

	(void)state;
	memset(a, 0x5a, sizeof(a));
	memset(b, 0x5a, sizeof(b));
	assert_int_equal(sec_random(a, 64), 0);
	assert_int_equal(sec_random(b, 64), 0);
	for (i = 0; i < 64; i++)
		changed += a[i] != 0x5a;
	/* 64 random bytes keep the fill in fewer than 8 (p < 1e-10). */
	assert_true(changed > 56);
	assert_memory_not_equal(a, b, 64);
	assert_int_equal(a[64], 0x5a); /* not one byte more */
	assert_int_equal(b[64], 0x5a);
	assert_int_equal(sec_random(a, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_equal),
	    cmocka_unit_test(test_wipe),
	    cmocka_unit_test(test_file_mode_ok),
	    cmocka_unit_test(test_file_mode_not_regular),
	    cmocka_unit_test(test_read_file),
	    cmocka_unit_test(test_read_file_symlink),
	    cmocka_unit_test(test_read_file_missing_and_dir),
	    cmocka_unit_test(test_buf_free),
	    cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests_name("sec", tests, setup, teardown);
}
