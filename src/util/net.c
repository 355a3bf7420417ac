/*
 * IP addresses and CIDR ranges.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdlib.h>
#include <string.h>

#include "util/net.h"

static const unsigned char v4mapped[12] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int
is_v4mapped(const unsigned char a[16])
{
	return memcmp(a, v4mapped, sizeof(v4mapped)) == 0;
}

int
net_addr_parse(const char *s, unsigned char r[16])
{
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		memcpy(r, v4mapped, sizeof(v4mapped));
		memcpy(r + 12, &a4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, r) == 1)
		return 0;
	return -1;
}

int
net_cidr_parse(const char *s, struct net_cidr *r)
{
	char buf[64], *slash, *end;
	unsigned long prefix;
	unsigned char a[16];
	int v4;
	unsigned int i, maxp;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = '\0';
	if (net_addr_parse(buf, a) == -1)
		return -1;
	v4 = strchr(buf, ':') == NULL;
	maxp = v4 ? 32 : 128;
	prefix = maxp;
	if (slash != NULL) {
		if (*slash < '0' || *slash > '9')
			return -1;
		prefix = strtoul(slash, &end, 10);
		if (*end != '\0' || prefix > maxp)
			return -1;
	}
	if (v4)
		prefix += 96;
	for (i = (unsigned int)prefix; i < 128; i++)
		if (a[i / 8] & (0x80 >> (i % 8)))
			return -1;
	memcpy(r->addr, a, 16);
	r->prefix = (unsigned int)prefix;
	return 0;
}

int
net_cidr_match(const struct net_cidr *v, size_t n, const unsigned char a[16])
{
	size_t k;
	unsigned int bytes, bits;

	for (k = 0; k < n; k++) {
		bytes = v[k].prefix / 8;
		bits = v[k].prefix % 8;
		if (memcmp(v[k].addr, a, bytes) != 0)
			continue;
		if (bits != 0 &&
		    ((v[k].addr[bytes] ^ a[bytes]) & (0xff00 >> bits)) != 0)
			continue;
		return 1;
	}
	return 0;
}

int
net_addr_text(const unsigned char a[16], char *text, size_t textlen)
{
	if (is_v4mapped(a))
		return inet_ntop(AF_INET, a + 12, text, (socklen_t)textlen) ==
			NULL
		    ? -1
		    : 0;
	return inet_ntop(AF_INET6, a, text, (socklen_t)textlen) == NULL ? -1
									: 0;
}

int
net_sockaddr(
    const struct sockaddr *sa, unsigned char r[16], char *text, size_t textlen)
{
	unsigned char a[16];

	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		memcpy(a, v4mapped, sizeof(v4mapped));
		memcpy(a + 12, &s4->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		memcpy(a, &s6->sin6_addr, 16);
	} else
		return -1;
	if (text != NULL && net_addr_text(a, text, textlen) == -1)
		return -1;
	memcpy(r, a, 16);
	return 0;
}
