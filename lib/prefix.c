/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * IPv4/IPv6 addresses, prefixes and endpoints: strict parsing, canonical
 * formatting and prefix arithmetic.  See prefix.h for the contracts.
 *
 * inet_pton() alone is too lenient a gate for configuration (its rules vary
 * between C libraries, and it gives no reason when it says no), so each
 * parser first checks the shape of the text itself and only then asks
 * inet_pton() for the bytes.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/prefix.h"
#include "lib/strutil.h"

/* Longest valid text of each kind, NUL excluded: the longest address is
 * "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255". */
#define ADDR_TEXT_MAX	  (INET6_ADDRSTRLEN - 1)
#define PREFIX_TEXT_MAX	  (ADDR_TEXT_MAX + 4) /* "/128" */
#define ENDPOINT_TEXT_MAX (ADDR_TEXT_MAX + 8) /* "[" "]:" "65535" */

/* Room for quoting any acceptable-length input in a message. */
#define QUOTE_MAX  64
/* Quoting the start of an over-long input. */
#define QUOTE_LONG 32

static const char digits[] = "0123456789";

static unsigned int family_bits(sa_family_t family)
{
	switch (family) {
	case AF_INET:
		return 32;
	case AF_INET6:
		return 128;
	default:
		return 0;
	}
}

static const uint8_t *addr_bytes(const struct nx_addr *a)
{
	return a->family == AF_INET ? (const uint8_t *)&a->v4 : (const uint8_t *)&a->v6;
}

static uint8_t *addr_bytes_mut(struct nx_addr *a)
{
	return a->family == AF_INET ? (uint8_t *)&a->v4 : (uint8_t *)&a->v6;
}

/* The first nbits bits of a and b are equal. */
static bool bits_equal(const uint8_t *a, const uint8_t *b, unsigned int nbits)
{
	unsigned int whole = nbits / 8;
	unsigned int rest = nbits % 8;
	uint8_t mask;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return ((a[whole] ^ b[whole]) & mask) == 0;
}

/* Some bit of a past the first len bits is set. */
static bool host_bits_set(const struct nx_addr *a, unsigned int len)
{
	const uint8_t *p = addr_bytes(a);
	unsigned int nbytes = family_bits(a->family) / 8;
	unsigned int i = len / 8;

	if (i >= nbytes)
		return false;
	if (len % 8 && (p[i] & (0xff >> (len % 8))))
		return true;
	for (i = (len + 7) / 8; i < nbytes; i++)
		if (p[i])
			return true;
	return false;
}

/*
 * Checks what every parser requires of its whole input: present, not too
 * long, not empty, printable ASCII without whitespace.  Fills q with the
 * input quoted for messages.
 */
static int check_text(const char *s, size_t max, const char *what, char *q, size_t qsize,
		      struct nx_err *err)
{
	char lq[QUOTE_LONG];
	size_t len;
	size_t i;

	q[0] = '\0';
	if (!s)
		return nx_err_set(err, EINVAL, "missing %s", what);
	len = strnlen(s, max + 1);
	if (len > max)
		return nx_err_set(err, EINVAL,
				  "\"%s\": too long (a valid %s has at most %zu characters)",
				  nx_str_printable(lq, sizeof(lq), s), what, max);
	nx_str_printable(q, qsize, s);
	if (len == 0)
		return nx_err_set(err, EINVAL, "empty %s", what);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == ' ' || (c >= '\t' && c <= '\r'))
			return nx_err_set(err, EINVAL, "\"%s\": whitespace is not allowed", q);
		if (c < 0x20 || c >= 0x7f)
			return nx_err_set(err, EINVAL, "\"%s\": invalid byte 0x%02x", q, c);
	}
	return 0;
}

/*
 * For the _n parsers: copies n bytes of s into tmp (tmpsize must exceed the
 * valid maximum by at least 2, so an over-long input stays over-long) after
 * rejecting NUL bytes.
 */
static int copy_text(char *tmp, size_t tmpsize, const char *s, size_t n, const char *what,
		     struct nx_err *err)
{
	const char *nul;

	if (!s)
		return nx_err_set(err, EINVAL, "missing %s", what);
	nul = memchr(s, '\0', n);
	if (nul)
		return nx_err_set(err, EINVAL, "%s contains a NUL byte at offset %zu", what,
				  (size_t)(nul - s));
	if (n > tmpsize - 1)
		n = tmpsize - 1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return 0;
}

static int parse_v4(const char *s, struct in_addr *out, const char *q, struct nx_err *err)
{
	size_t span = strspn(s, "0123456789.");
	const char *p = s;
	int octets;

	if (s[span] != '\0')
		return nx_err_set(err, EINVAL,
				  "\"%s\": not an IPv4 or IPv6 address (unexpected character '%c')",
				  q, s[span]);

	for (octets = 0; octets < 4; octets++) {
		const char *start;
		unsigned int v = 0;

		if (octets > 0) {
			if (*p != '.')
				break;
			p++;
		}
		start = p;
		while (*p >= '0' && *p <= '9') {
			if (p - start == 3)
				return nx_err_set(err, EINVAL,
						  "\"%s\": IPv4 octet has more than 3 digits", q);
			v = v * 10 + (unsigned int)(*p - '0');
			p++;
		}
		if (p == start)
			return nx_err_set(err, EINVAL,
					  "\"%s\": empty IPv4 octet (expected A.B.C.D)", q);
		if (p - start > 1 && *start == '0')
			return nx_err_set(err, EINVAL,
					  "\"%s\": IPv4 octet with a leading zero (could be read "
					  "as octal; write it without)",
					  q);
		if (v > 255)
			return nx_err_set(err, EINVAL, "\"%s\": IPv4 octet %u exceeds 255", q, v);
	}
	if (octets < 4 || *p != '\0')
		return nx_err_set(err, EINVAL, "\"%s\": expected 4 dotted decimal octets (A.B.C.D)",
				  q);
	if (inet_pton(AF_INET, s, out) != 1)
		return nx_err_set(err, EINVAL, "\"%s\": not a valid IPv4 address", q);
	return 0;
}

static int parse_v6(const char *s, struct in6_addr *out, const char *q, struct nx_err *err)
{
	size_t span = strspn(s, "0123456789abcdefABCDEF:.");
	const char *dc;

	if (s[span] != '\0')
		return nx_err_set(err, EINVAL, "\"%s\": invalid character '%c' in IPv6 address", q,
				  s[span]);
	if (strstr(s, ":::"))
		return nx_err_set(err, EINVAL, "\"%s\": ':::' is not valid in an IPv6 address", q);
	dc = strstr(s, "::");
	if (dc && strstr(dc + 2, "::"))
		return nx_err_set(err, EINVAL,
				  "\"%s\": '::' may appear only once in an IPv6 address", q);
	if (inet_pton(AF_INET6, s, out) != 1)
		return nx_err_set(err, EINVAL, "\"%s\": not a valid IPv6 address", q);
	return 0;
}

/* Parses the address text s (a part of the input quoted in q). */
static int addr_parse(const char *s, struct nx_addr *out, const char *q, struct nx_err *err)
{
	struct nx_addr a;
	int rc;

	memset(&a, 0, sizeof(a));
	if (s[0] == '\0')
		return nx_err_set(err, EINVAL, "\"%s\": missing address", q);
	if (strpbrk(s, "[]"))
		return nx_err_set(err, EINVAL,
				  "\"%s\": brackets are not allowed here; write the bare address",
				  q);
	if (strchr(s, '%'))
		return nx_err_set(err, EINVAL, "\"%s\": zone ids ('%%...') are not supported", q);
	if (strchr(s, '/'))
		return nx_err_set(err, EINVAL,
				  "\"%s\": unexpected '/': expected an address, not a prefix", q);
	if (strchr(s, ':')) {
		a.family = AF_INET6;
		rc = parse_v6(s, &a.v6, q, err);
	} else {
		a.family = AF_INET;
		rc = parse_v4(s, &a.v4, q, err);
	}
	if (rc < 0)
		return rc;
	*out = a;
	return 0;
}

int nx_addr_parse(const char *s, struct nx_addr *out, struct nx_err *err)
{
	char q[QUOTE_MAX];
	int rc;

	rc = check_text(s, ADDR_TEXT_MAX, "address", q, sizeof(q), err);
	if (rc < 0)
		return rc;
	return addr_parse(s, out, q, err);
}

int nx_addr_parse_n(const char *s, size_t n, struct nx_addr *out, struct nx_err *err)
{
	char tmp[ADDR_TEXT_MAX + 2];
	int rc;

	rc = copy_text(tmp, sizeof(tmp), s, n, "address", err);
	if (rc < 0)
		return rc;
	return nx_addr_parse(tmp, out, err);
}

static int prefix_parse(const char *s, struct nx_prefix *out, unsigned int flags, const char *q,
			struct nx_err *err)
{
	char abuf[ADDR_TEXT_MAX + 1];
	char nbuf[NX_PREFIX_STRLEN];
	struct nx_prefix p;
	const char *slash;
	const char *lp;
	size_t alen;
	size_t llen;
	unsigned int bits;
	unsigned int len = 0;
	int rc;

	memset(&p, 0, sizeof(p));
	slash = strchr(s, '/');
	if (!slash) {
		if (!(flags & NX_PREFIX_ALLOW_HOST))
			return nx_err_set(err, EINVAL,
					  "\"%s\": missing prefix length (expected ADDRESS/LENGTH)",
					  q);
		rc = addr_parse(s, &p.addr, q, err);
		if (rc < 0)
			return rc;
		p.len = (uint8_t)family_bits(p.addr.family);
		goto out;
	}

	alen = (size_t)(slash - s);
	if (alen == 0)
		return nx_err_set(err, EINVAL, "\"%s\": missing address before '/'", q);
	if (alen > ADDR_TEXT_MAX)
		return nx_err_set(err, EINVAL, "\"%s\": address part is too long", q);
	memcpy(abuf, s, alen);
	abuf[alen] = '\0';

	lp = slash + 1;
	if (*lp == '\0')
		return nx_err_set(err, EINVAL, "\"%s\": missing prefix length after '/'", q);
	if (strchr(lp, '/'))
		return nx_err_set(err, EINVAL, "\"%s\": more than one '/'", q);

	rc = addr_parse(abuf, &p.addr, q, err);
	if (rc < 0)
		return rc;
	bits = family_bits(p.addr.family);

	llen = strspn(lp, digits);
	if (lp[llen] != '\0')
		return nx_err_set(err, EINVAL,
				  "\"%s\": prefix length \"%s\" is not a decimal number", q, lp);
	if (lp[0] == '0' && lp[1] != '\0')
		return nx_err_set(err, EINVAL, "\"%s\": prefix length \"%s\" has a leading zero", q,
				  lp);
	if (llen > 3)
		return nx_err_set(err, EINVAL,
				  "\"%s\": prefix length \"%s\" is too long (at most 3 digits)", q,
				  lp);
	for (; *lp; lp++)
		len = len * 10 + (unsigned int)(*lp - '0');
	if (len > bits)
		return nx_err_set(err, ERANGE, "\"%s\": prefix length %u exceeds %u", q, len, bits);
	p.len = (uint8_t)len;

out:
	if ((flags & NX_PREFIX_STRICT) && host_bits_set(&p.addr, p.len)) {
		struct nx_prefix norm = p;

		nx_prefix_normalize(&norm);
		return nx_err_set(err, EINVAL, "\"%s\": host bits set past /%u (did you mean %s?)",
				  q, (unsigned int)p.len,
				  nx_prefix_format(&norm, nbuf, sizeof(nbuf)));
	}
	*out = p;
	return 0;
}

int nx_prefix_parse(const char *s, struct nx_prefix *out, unsigned int flags, struct nx_err *err)
{
	char q[QUOTE_MAX];
	int rc;

	if (flags & ~(NX_PREFIX_ALLOW_HOST | NX_PREFIX_STRICT))
		return nx_err_set(err, EINVAL, "unknown prefix parse flags 0x%x", flags);
	rc = check_text(s, PREFIX_TEXT_MAX, "prefix", q, sizeof(q), err);
	if (rc < 0)
		return rc;
	return prefix_parse(s, out, flags, q, err);
}

int nx_prefix_parse_n(const char *s, size_t n, struct nx_prefix *out, unsigned int flags,
		      struct nx_err *err)
{
	char tmp[PREFIX_TEXT_MAX + 2];
	int rc;

	rc = copy_text(tmp, sizeof(tmp), s, n, "prefix", err);
	if (rc < 0)
		return rc;
	return nx_prefix_parse(tmp, out, flags, err);
}

static int endpoint_parse(const char *s, struct nx_addr *addr, uint16_t *port, const char *q,
			  struct nx_err *err)
{
	char abuf[ENDPOINT_TEXT_MAX + 1];
	unsigned long long v;
	struct nx_err perr;
	struct nx_addr a;
	const char *close;
	const char *colon;
	const char *pp;
	size_t alen;
	int rc;

	if (s[0] == '[') {
		close = strchr(s, ']');
		if (!close)
			return nx_err_set(err, EINVAL, "\"%s\": missing ']' after the IPv6 address",
					  q);
		alen = (size_t)(close - (s + 1));
		if (alen == 0)
			return nx_err_set(err, EINVAL, "\"%s\": missing address inside '[]'", q);
		memcpy(abuf, s + 1, alen);
		abuf[alen] = '\0';
		rc = addr_parse(abuf, &a, q, err);
		if (rc < 0)
			return rc;
		if (a.family != AF_INET6)
			return nx_err_set(err, EINVAL,
					  "\"%s\": brackets are only for IPv6 addresses (write "
					  "A.B.C.D:PORT)",
					  q);
		if (close[1] == '\0')
			return nx_err_set(err, EINVAL,
					  "\"%s\": missing port (expected [ADDRESS]:PORT)", q);
		if (close[1] != ':')
			return nx_err_set(err, EINVAL, "\"%s\": expected ':PORT' after ']'", q);
		pp = close + 2;
	} else {
		colon = strchr(s, ':');
		if (!colon)
			return nx_err_set(err, EINVAL,
					  "\"%s\": missing port (expected ADDRESS:PORT)", q);
		if (strchr(colon + 1, ':'))
			return nx_err_set(err, EINVAL,
					  "\"%s\": an IPv6 endpoint must be written [ADDRESS]:PORT",
					  q);
		alen = (size_t)(colon - s);
		if (alen == 0)
			return nx_err_set(err, EINVAL, "\"%s\": missing address before ':'", q);
		memcpy(abuf, s, alen);
		abuf[alen] = '\0';
		rc = addr_parse(abuf, &a, q, err);
		if (rc < 0)
			return rc;
		pp = colon + 1;
	}

	if (*pp == '\0')
		return nx_err_set(err, EINVAL, "\"%s\": missing port after ':'", q);
	rc = nx_parse_uint(pp, 1, 65535, &v, &perr);
	if (rc < 0)
		return nx_err_set(err, rc, "\"%s\": port %s", q, perr.msg);
	*addr = a;
	*port = (uint16_t)v;
	return 0;
}

int nx_endpoint_parse(const char *s, struct nx_addr *addr, uint16_t *port, struct nx_err *err)
{
	char q[QUOTE_MAX];
	int rc;

	rc = check_text(s, ENDPOINT_TEXT_MAX, "endpoint", q, sizeof(q), err);
	if (rc < 0)
		return rc;
	return endpoint_parse(s, addr, port, q, err);
}

int nx_endpoint_parse_n(const char *s, size_t n, struct nx_addr *addr, uint16_t *port,
			struct nx_err *err)
{
	char tmp[ENDPOINT_TEXT_MAX + 2];
	int rc;

	rc = copy_text(tmp, sizeof(tmp), s, n, "endpoint", err);
	if (rc < 0)
		return rc;
	return nx_endpoint_parse(tmp, addr, port, err);
}

char *nx_addr_format(const struct nx_addr *a, char *buf, size_t size)
{
	char tmp[NX_ADDR_STRLEN];

	if (!family_bits(a->family) || !inet_ntop(a->family, addr_bytes(a), tmp, sizeof(tmp)))
		nx_strlcpy(tmp, "(invalid)", sizeof(tmp));
	nx_strlcpy(buf, tmp, size);
	return buf;
}

char *nx_prefix_format(const struct nx_prefix *p, char *buf, size_t size)
{
	char a[NX_ADDR_STRLEN];

	if (size > 0)
		snprintf(buf, size, "%s/%u", nx_addr_format(&p->addr, a, sizeof(a)),
			 (unsigned int)p->len);
	return buf;
}

char *nx_endpoint_format(const struct nx_addr *a, uint16_t port, char *buf, size_t size)
{
	char s[NX_ADDR_STRLEN];

	if (size == 0)
		return buf;
	nx_addr_format(a, s, sizeof(s));
	if (a->family == AF_INET6)
		snprintf(buf, size, "[%s]:%u", s, (unsigned int)port);
	else
		snprintf(buf, size, "%s:%u", s, (unsigned int)port);
	return buf;
}

void nx_prefix_normalize(struct nx_prefix *p)
{
	unsigned int nbytes = family_bits(p->addr.family) / 8;
	uint8_t *b = addr_bytes_mut(&p->addr);
	unsigned int i = p->len / 8;

	if (i >= nbytes)
		return;
	if (p->len % 8) {
		b[i] &= (uint8_t)(0xff << (8 - p->len % 8));
		i++;
	}
	memset(b + i, 0, nbytes - i);
}

int nx_prefix_from_addr(struct nx_prefix *p, const struct nx_addr *a)
{
	unsigned int bits = family_bits(a->family);

	if (!bits)
		return -EAFNOSUPPORT;
	memset(p, 0, sizeof(*p));
	p->addr = *a;
	p->len = (uint8_t)bits;
	return 0;
}

bool nx_prefix_is_host(const struct nx_prefix *p)
{
	unsigned int bits = family_bits(p->addr.family);

	return bits && p->len == bits;
}

bool nx_prefix_is_default(const struct nx_prefix *p)
{
	return family_bits(p->addr.family) && p->len == 0;
}

bool nx_prefix_contains(const struct nx_prefix *outer, const struct nx_prefix *inner)
{
	unsigned int bits = family_bits(outer->addr.family);

	if (!bits || inner->addr.family != outer->addr.family)
		return false;
	if (outer->len > inner->len || inner->len > bits)
		return false;
	return bits_equal(addr_bytes(&outer->addr), addr_bytes(&inner->addr), outer->len);
}

bool nx_prefix_contains_addr(const struct nx_prefix *p, const struct nx_addr *a)
{
	unsigned int bits = family_bits(p->addr.family);

	if (!bits || a->family != p->addr.family || p->len > bits)
		return false;
	return bits_equal(addr_bytes(&p->addr), addr_bytes(a), p->len);
}

bool nx_prefix_overlap(const struct nx_prefix *a, const struct nx_prefix *b)
{
	unsigned int bits = family_bits(a->addr.family);
	unsigned int len = a->len < b->len ? a->len : b->len;

	if (!bits || a->addr.family != b->addr.family || len > bits)
		return false;
	return bits_equal(addr_bytes(&a->addr), addr_bytes(&b->addr), len);
}

int nx_addr_cmp(const struct nx_addr *a, const struct nx_addr *b)
{
	unsigned int nbytes;
	int c;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	nbytes = family_bits(a->family) / 8;
	if (!nbytes)
		return 0;
	c = memcmp(addr_bytes(a), addr_bytes(b), nbytes);
	return (c > 0) - (c < 0);
}

int nx_prefix_cmp(const struct nx_prefix *a, const struct nx_prefix *b)
{
	int c = nx_addr_cmp(&a->addr, &b->addr);

	if (c)
		return c;
	return (a->len > b->len) - (a->len < b->len);
}

uint32_t nx_prefix_hash(const struct nx_prefix *p)
{
	const uint8_t *b = p->addr.family == AF_INET ? (const uint8_t *)&p->addr.v4
						     : (const uint8_t *)&p->addr.v6;
	size_t n = p->addr.family == AF_INET ? 4 : p->addr.family == AF_INET6 ? 16 : 0;
	uint32_t h = 2166136261u ^ p->len; /* FNV-1a */

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

int nx_addr_cmp_qsort(const void *a, const void *b)
{
	return nx_addr_cmp(a, b);
}

int nx_prefix_cmp_qsort(const void *a, const void *b)
{
	return nx_prefix_cmp(a, b);
}

bool nx_addr_eq(const struct nx_addr *a, const struct nx_addr *b)
{
	return nx_addr_cmp(a, b) == 0;
}

int nx_addr_to_sockaddr(const struct nx_addr *a, uint16_t port, struct sockaddr_storage *ss,
			socklen_t *lenp)
{
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	socklen_t len;

	switch (a->family) {
	case AF_INET:
		memset(ss, 0, sizeof(*ss));
		sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr = a->v4;
		len = sizeof(*sin);
		break;
	case AF_INET6:
		memset(ss, 0, sizeof(*ss));
		sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sin6->sin6_addr = a->v6;
		len = sizeof(*sin6);
		break;
	default:
		return -EAFNOSUPPORT;
	}
	if (lenp)
		*lenp = len;
	return 0;
}

int nx_addr_from_sockaddr(const struct sockaddr_storage *ss, struct nx_addr *a, uint16_t *port)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	switch (ss->ss_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)ss;
		memset(a, 0, sizeof(*a));
		a->family = AF_INET;
		a->v4 = sin->sin_addr;
		if (port)
			*port = ntohs(sin->sin_port);
		return 0;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)ss;
		memset(a, 0, sizeof(*a));
		a->family = AF_INET6;
		a->v6 = sin6->sin6_addr;
		if (port)
			*port = ntohs(sin6->sin6_port);
		return 0;
	default:
		return -EAFNOSUPPORT;
	}
}
