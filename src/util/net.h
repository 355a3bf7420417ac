/*
 * IP addresses and CIDR ranges.
 */
#ifndef EA_UTIL_NET_H
#define EA_UTIL_NET_H

#include <stddef.h>

struct sockaddr;

/* An address or a range; IPv4 is stored as an IPv4-mapped IPv6 address. */
struct net_cidr {
	unsigned char addr[16];
	unsigned int prefix; /* 0..128 */
};

/*
 * Parses "192.0.2.0/24", "2001:db8::/32" or a bare address (a host range).
 * Host bits set past the prefix are refused. Returns 0 or -1.
 */
int net_cidr_parse(const char *s, struct net_cidr *r);

/* Parses a bare IPv4 or IPv6 address into 16 bytes. Returns 0 or -1. */
int net_addr_parse(const char *s, unsigned char r[16]);

/* 1 if addr falls in one of the n ranges, else 0. */
int net_cidr_match(
    const struct net_cidr *v, size_t n, const unsigned char addr[16]);

/*
 * Converts a socket address to 16 bytes and, when text is not NULL, its
 * printable form (IPv4 as dotted quad). Returns 0 or -1 (not IP).
 */
int net_sockaddr(
    const struct sockaddr *sa, unsigned char r[16], char *text, size_t textlen);

/* Prints 16 address bytes (IPv4-mapped as dotted quad). Returns 0 or -1. */
int net_addr_text(const unsigned char a[16], char *text, size_t textlen);

#endif
