/*
 * Unit tests for src/util/net.c: addresses, CIDR ranges and matching.
 * IPv4 is stored as an IPv4-mapped IPv6 address with the prefix plus 96.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "util/net.h"

static void
test_cidr_parse(void **state)
{
	static const struct {
		const char *in;
		int ok;
		const char *addr; /* net_addr_text() of the parsed range */
		unsigned int prefix;
	} cases[] = {
	    {"192.0.2.0/24", 1, "192.0.2.0", 120},
	    {"192.0.2.1", 1, "192.0.2.1", 128},
	    {"10.0.0.1/32", 1, "10.0.0.1", 128},
	    {"10.0.0.0/8", 1, "10.0.0.0", 104},
	    {"0.0.0.0/0", 1, "0.0.0.0", 96},
	    {"2001:db8::/32", 1, "2001:db8::", 32},
	    {"2001:DB8::1", 1, "2001:db8::1", 128},
	    {"::1/128", 1, "::1", 128},
	    {"::/0", 1, "::", 0},
	    {"::ffff:10.0.0.0/104", 1, "10.0.0.0", 104},
	    /* 63 bytes: the longest accepted input. */
	    {"0000:0000:0000:0000:0000:0000:0000:0000/00000000000000000000128",
		1, "::", 128},
	    /* 64 bytes of the same: over-long, refused. */
	    {"0000:0000:0000:0000:0000:0000:0000:0000/000000000000000000000128",
		0, NULL, 0},
	    {"10.0.0.0/33", 0, NULL, 0},
	    {"::1/129", 0, NULL, 0},
	    {"10.0.0.1/8", 0, NULL, 0},          /* host bits set */
	    {"192.168.1.129/25", 0, NULL, 0},    /* host bits set */
	    {"2001:db8::1/32", 0, NULL, 0},      /* host bits set */
	    {"::ffff:10.0.0.1/104", 0, NULL, 0}, /* host bits set */
	    {"", 0, NULL, 0},
	    {"/", 0, NULL, 0},
	    {"/8", 0, NULL, 0},
	    {"10.0.0.0/", 0, NULL, 0},
	    {"10.0.0.0/-1", 0, NULL, 0},
	    {"10.0.0.0/+8", 0, NULL, 0},
	    {"10.0.0.0/ 8", 0, NULL, 0},
	    {"10.0.0.0/8x", 0, NULL, 0},
	    {"10.0.0.0/8/8", 0, NULL, 0},
	    {"10.0.0.0//8", 0, NULL, 0},
	    {"10.0.0.0/4294967304", 0, NULL, 0}, /* 2^32 + 8 */
	    {"10.0.0.0/99999999999999999999999", 0, NULL, 0},
	    {"garbage", 0, NULL, 0},
	    {"10.0.0", 0, NULL, 0},
	    {"256.0.0.0/8", 0, NULL, 0},
	    {" 10.0.0.0/8", 0, NULL, 0},
	    {"10.0.0.0/8 ", 0, NULL, 0},
	    {"fe80::1%eth0", 0, NULL, 0},
	    {"[::1]", 0, NULL, 0},
	};
	struct net_cidr r, untouched;
	char text[64];
	size_t i;

	(void)state;
	memset(&untouched, 0xa5, sizeof(untouched));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got;

		memcpy(&r, &untouched, sizeof(r));
		got = net_cidr_parse(cases[i].in, &r);
		if (!cases[i].ok) {
			if (got != -1)
				fail_msg("net_cidr_parse(\"%s\"): got %d, "
					 "want -1",
				    cases[i].in, got);
			/* Outputs are written only on success. */
			assert_memory_equal(&r, &untouched, sizeof(r));
			continue;
		}
		if (got != 0)
			fail_msg("net_cidr_parse(\"%s\"): got %d, want 0",
			    cases[i].in, got);
		assert_int_equal(net_addr_text(r.addr, text, sizeof(text)), 0);
		assert_string_equal(text, cases[i].addr);
		if (r.prefix != cases[i].prefix)
			fail_msg("net_cidr_parse(\"%s\"): prefix %u, want %u",
			    cases[i].in, r.prefix, cases[i].prefix);
	}
}

static void
test_cidr_match(void **state)
{
	static const struct {
		const char *range;
		const char *addr;
		int want;
	} cases[] = {
	    {"10.0.0.0/8", "10.1.2.3", 1},
	    {"10.0.0.0/8", "10.255.255.255", 1},
	    {"10.0.0.0/8", "11.0.0.0", 0},
	    {"10.0.0.0/8", "9.255.255.255", 0},
	    {"10.0.0.0/8", "::ffff:10.0.0.1", 1},
	    {"10.0.0.0/8", "2001:db8::1", 0},
	    {"10.0.0.0/8", "::a00:1", 0}, /* IPv4-compatible, not mapped */
	    {"10.0.0.0/9", "10.127.255.255", 1},
	    {"10.0.0.0/9", "10.128.0.0", 0},
	    {"192.168.1.128/25", "192.168.1.128", 1},
	    {"192.168.1.128/25", "192.168.1.255", 1},
	    {"192.168.1.128/25", "192.168.1.127", 0},
	    {"192.0.2.7", "192.0.2.7", 1},
	    {"192.0.2.7", "192.0.2.6", 0},
	    {"2001:db8::/32", "2001:db8:ffff::1", 1},
	    {"2001:db8::/32", "2001:db9::", 0},
	    {"2001:db8::/32", "10.0.0.1", 0},
	    {"2001:db8::/33", "2001:db8:7fff::", 1},
	    {"2001:db8::/33", "2001:db8:8000::", 0},
	    {"2001:db8::1", "2001:db8::1", 1},
	    {"2001:db8::1", "2001:db8::2", 0},
	    {"::/127", "::1", 1},
	    {"::/127", "::2", 0},
	    /* IPv4 0/0 is ::ffff:0:0/96: every IPv4 address, no IPv6. */
	    {"0.0.0.0/0", "1.2.3.4", 1},
	    {"0.0.0.0/0", "255.255.255.255", 1},
	    {"0.0.0.0/0", "::1", 0},
	    {"0.0.0.0/0", "2001:db8::1", 0},
	    /* IPv6 ::/0 matches everything, mapped IPv4 included. */
	    {"::/0", "::1", 1},
	    {"::/0", "2001:db8::1", 1},
	    {"::/0", "1.2.3.4", 1},
	};
	struct net_cidr r;
	unsigned char a[16];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got;

		assert_int_equal(net_cidr_parse(cases[i].range, &r), 0);
		assert_int_equal(net_addr_parse(cases[i].addr, a), 0);
		got = net_cidr_match(&r, 1, a);
		if (got != cases[i].want)
			fail_msg("net_cidr_match(%s, %s): got %d, want %d",
			    cases[i].range, cases[i].addr, got, cases[i].want);
	}
}

static void
test_cidr_match_list(void **state)
{
	static const char *const ranges[] = {
	    "127.0.0.0/8", "::1/128", "2001:db8::/48"};
	struct net_cidr v[3];
	unsigned char a[16];
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++)
		assert_int_equal(net_cidr_parse(ranges[i], &v[i]), 0);
	assert_int_equal(net_addr_parse("2001:db8:0:1::5", a), 0);
	assert_int_equal(net_cidr_match(v, 3, a), 1);
	assert_int_equal(net_cidr_match(v, 2, a), 0); /* only the first n */
	assert_int_equal(net_addr_parse("127.0.0.1", a), 0);
	assert_int_equal(net_cidr_match(v, 3, a), 1);
	assert_int_equal(net_cidr_match(v, 0, a), 0); /* empty list */
	assert_int_equal(net_addr_parse("192.0.2.1", a), 0);
	assert_int_equal(net_cidr_match(v, 3, a), 0);
}

static void
test_addr_parse(void **state)
{
	static const unsigned char v4[16] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
	static const unsigned char v6[16] = {
	    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

	static const struct {
		const char *in;
		const unsigned char *want; /* NULL: refused */
	} cases[] = {
	    {"192.0.2.1", v4},
	    {"::ffff:192.0.2.1", v4},
	    {"2001:db8::1", v6},
	    {"2001:0DB8:0:0:0:0:0:1", v6},
	    {"", NULL},
	    {"192.0.2", NULL},
	    {"192.0.2.1.5", NULL},
	    {"192.0.2.01", NULL},
	    {"0xc0.0.2.1", NULL},
	    {"192.0.2.1 ", NULL},
	    {" 192.0.2.1", NULL},
	    {"192.0.2.1/32", NULL},
	    {"localhost", NULL},
	    {"[::1]", NULL},
	    {"::1%lo", NULL},
	    {"2001:db8:::1", NULL},
	};

	unsigned char a[16], untouched[16];
	size_t i;

	(void)state;
	memset(untouched, 0x5a, sizeof(untouched));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got;

		memcpy(a, untouched, sizeof(a));
		got = net_addr_parse(cases[i].in, a);
		if (got != (cases[i].want != NULL ? 0 : -1))
			fail_msg(
			    "net_addr_parse(\"%s\"): got %d", cases[i].in, got);
		if (cases[i].want != NULL)
			assert_memory_equal(a, cases[i].want, 16);
	}
}

static void
test_addr_text(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"192.0.2.1", "192.0.2.1"},
	    {"::ffff:192.0.2.1", "192.0.2.1"},
	    {"0.0.0.0", "0.0.0.0"},
	    {"255.255.255.255", "255.255.255.255"},
	    {"2001:DB8::1", "2001:db8::1"},
	    {"0:0:0:0:0:0:0:1", "::1"},
	    {"::", "::"},
	    {"fe80::1:2:3:4", "fe80::1:2:3:4"},
	    {"2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6"},
	};

	unsigned char a[16], b[16];
	char text[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(net_addr_parse(cases[i].in, a), 0);
		assert_int_equal(net_addr_text(a, text, sizeof(text)), 0);
		assert_string_equal(text, cases[i].want);
		/* And back: the text parses to the same bytes. */
		assert_int_equal(net_addr_parse(text, b), 0);
		assert_memory_equal(a, b, 16);
	}
}

static void
test_addr_text_short_buffer(void **state)
{
	unsigned char a[16];
	char text[16];

	(void)state;
	assert_int_equal(net_addr_parse("192.0.2.1", a), 0);
	assert_int_equal(net_addr_text(a, text, 10), 0); /* 9 + NUL */
	assert_string_equal(text, "192.0.2.1");
	assert_int_equal(net_addr_text(a, text, 9), -1);
	assert_int_equal(net_addr_parse("2001:db8::1", a), 0);
	assert_int_equal(net_addr_text(a, text, 12), 0);
	assert_string_equal(text, "2001:db8::1");
	assert_int_equal(net_addr_text(a, text, 11), -1);
}

static void
test_sockaddr(void **state)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	struct sockaddr_un su;
	unsigned char a[16], want[16];
	char text[64];

	(void)state;
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "198.51.100.7", &s4.sin_addr), 1);
	assert_int_equal(
	    net_sockaddr((struct sockaddr *)&s4, a, text, sizeof(text)), 0);
	assert_string_equal(text, "198.51.100.7");
	assert_int_equal(net_addr_parse("198.51.100.7", want), 0);
	assert_memory_equal(a, want, 16);

	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::7", &s6.sin6_addr), 1);
	assert_int_equal(net_sockaddr((struct sockaddr *)&s6, a, NULL, 0), 0);
	assert_int_equal(net_addr_parse("2001:db8::7", want), 0);
	assert_memory_equal(a, want, 16);

	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	assert_int_equal(
	    net_sockaddr((struct sockaddr *)&su, a, text, sizeof(text)), -1);
	assert_int_equal(net_sockaddr(NULL, a, text, sizeof(text)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cidr_parse),
	    cmocka_unit_test(test_cidr_match),
	    cmocka_unit_test(test_cidr_match_list),
	    cmocka_unit_test(test_addr_parse),
	    cmocka_unit_test(test_addr_text),
	    cmocka_unit_test(test_addr_text_short_buffer),
	    cmocka_unit_test(test_sockaddr),
	};

	return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
