/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * IPv4/IPv6 addresses, prefixes and WireGuard endpoints.
 *
 * Tunnel addresses, allowed IPs, advertised routes and peer endpoints all
 * arrive as text from users, the controller and the kernel.  This module is
 * the one place that turns that text into values, strictly (a string that
 * could mean two things is rejected, with a message saying why), and back
 * into canonical text; and it holds the prefix arithmetic (containment,
 * overlap, ordering) that routing decisions are built on.
 */
#ifndef NX_PREFIX_H
#define NX_PREFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "lib/errmsg.h"

/* An IPv4 or IPv6 address.  family is AF_INET or AF_INET6; a zeroed struct
 * (AF_UNSPEC) is "no address".  IPv4-mapped IPv6 addresses stay IPv6. */
struct nx_addr {
	sa_family_t family;
	union {
		struct in_addr v4;
		struct in6_addr v6;
	};
};

/* An address and a prefix length (0-32 or 0-128).  The bits past len are
 * host bits: nx_prefix_parse() keeps them unless told to reject them, and
 * the arithmetic below ignores them. */
struct nx_prefix {
	struct nx_addr addr;
	uint8_t len;
};

/* Buffer sizes for the formatters, NUL included. */
#define NX_ADDR_STRLEN	   (INET6_ADDRSTRLEN + 4)
#define NX_PREFIX_STRLEN   (INET6_ADDRSTRLEN + 4)
/* "[" address "]:" port */
#define NX_ENDPOINT_STRLEN (INET6_ADDRSTRLEN + 8)

/* nx_prefix_parse() flags */
/* A bare address is accepted as a host prefix (/32 or /128). */
#define NX_PREFIX_ALLOW_HOST 0x1u
/* Host bits must be zero: "10.0.0.1/24" is rejected, "10.0.0.0/24" is not. */
#define NX_PREFIX_STRICT     0x2u

/*
 * Parsers.  All return 0 on success and a negative errno otherwise (-EINVAL
 * for malformed text, -ERANGE for a number out of range), with a message in
 * err that quotes the input.  The output is written only on success.
 *
 * Text is accepted only in its plain form: no surrounding or embedded
 * whitespace, no zone ids ("%eth0"), no brackets except around an IPv6
 * endpoint address, IPv4 only as four dotted decimal octets without leading
 * zeros.  Input longer than the longest valid text is rejected without
 * being scanned further.
 *
 * The _n variants take a length instead of relying on a NUL and reject any
 * NUL byte within it (for text that came with a length, e.g. from the wire).
 */

/* "192.0.2.1" or "2001:db8::1" */
int nx_addr_parse(const char *s, struct nx_addr *out, struct nx_err *err);
int nx_addr_parse_n(const char *s, size_t n, struct nx_addr *out, struct nx_err *err);

/* "A.B.C.D/M" or "X:X::X:X/M"; flags are NX_PREFIX_* above.  The length is
 * decimal without leading zeros ("0" itself is fine). */
int nx_prefix_parse(const char *s, struct nx_prefix *out, unsigned int flags, struct nx_err *err);
int nx_prefix_parse_n(const char *s, size_t n, struct nx_prefix *out, unsigned int flags,
		      struct nx_err *err);

/* "A.B.C.D:PORT" or "[X:X::X:X]:PORT", port 1-65535 (host byte order in
 * *port).  Host names are not accepted. */
int nx_endpoint_parse(const char *s, struct nx_addr *addr, uint16_t *port, struct nx_err *err);
int nx_endpoint_parse_n(const char *s, size_t n, struct nx_addr *addr, uint16_t *port,
			struct nx_err *err);

/*
 * Formatters: canonical text (RFC 5952 for IPv6, as inet_ntop writes it)
 * into buf, truncated to size and always NUL-terminated when size > 0.
 * With buffers of the NX_*_STRLEN sizes nothing is ever truncated.  An
 * address of unknown family formats as "(invalid)".  Return buf.
 */
char *nx_addr_format(const struct nx_addr *a, char *buf, size_t size);
char *nx_prefix_format(const struct nx_prefix *p, char *buf, size_t size);
char *nx_endpoint_format(const struct nx_addr *a, uint16_t port, char *buf, size_t size);

/* Clears the host bits of p. */
void nx_prefix_normalize(struct nx_prefix *p);

/* Makes p the host prefix (/32 or /128) of a.  -EAFNOSUPPORT for a family
 * other than AF_INET/AF_INET6. */
int nx_prefix_from_addr(struct nx_prefix *p, const struct nx_addr *a);

/* A host prefix: /32 for IPv4, /128 for IPv6. */
bool nx_prefix_is_host(const struct nx_prefix *p);

/* A default route: length 0 (whatever host bits it carries). */
bool nx_prefix_is_default(const struct nx_prefix *p);

/* Every address of inner lies in outer.  False across families. */
bool nx_prefix_contains(const struct nx_prefix *outer, const struct nx_prefix *inner);
bool nx_prefix_contains_addr(const struct nx_prefix *p, const struct nx_addr *a);

/* a and b share at least one address (one contains the other).  False
 * across families. */
bool nx_prefix_overlap(const struct nx_prefix *a, const struct nx_prefix *b);

/*
 * Total orders, <0, 0 or >0: by family (AF_INET before AF_INET6), then by
 * address bytes in network order, then (prefixes) by length, shorter first.
 * Prefixes compare their stored bytes, host bits included; normalise first
 * when that matters.  The _qsort forms take pointers to the elements of an
 * array of struct nx_addr / struct nx_prefix, for qsort() and bsearch().
 */
int nx_addr_cmp(const struct nx_addr *a, const struct nx_addr *b);
int nx_prefix_cmp(const struct nx_prefix *a, const struct nx_prefix *b);
/* A hash of p for tables keyed by prefix: prefixes nx_prefix_cmp finds equal hash alike. */
uint32_t nx_prefix_hash(const struct nx_prefix *p);
int nx_addr_cmp_qsort(const void *a, const void *b);
int nx_prefix_cmp_qsort(const void *a, const void *b);

bool nx_addr_eq(const struct nx_addr *a, const struct nx_addr *b);

/*
 * Socket address conversions; port in host byte order.
 *
 * nx_addr_to_sockaddr() fills *ss (zeroing the rest) and, when lenp is not
 * NULL, the length to pass to bind/connect/sendto.  nx_addr_from_sockaddr()
 * reads an AF_INET or AF_INET6 address (an IPv6 scope id is not kept) and
 * its port (when port is not NULL).  Both return 0 or -EAFNOSUPPORT.
 */
int nx_addr_to_sockaddr(const struct nx_addr *a, uint16_t port, struct sockaddr_storage *ss,
			socklen_t *lenp);
int nx_addr_from_sockaddr(const struct sockaddr_storage *ss, struct nx_addr *a, uint16_t *port);

#endif /* NX_PREFIX_H */
