/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for the address, prefix and endpoint parsers, which read text
 * from users and from the network.
 *
 * Beyond "does not crash", it checks the contracts: a rejection always comes
 * with a message; whatever is accepted formats to text that parses back to
 * the same value; the length-taking variants agree with the string ones and
 * refuse embedded NULs; STRICT results carry no host bits.  A broken
 * contract aborts, which the fuzzer reports as a crash.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/prefix.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned int all_flags[] = {
	0,
	NX_PREFIX_ALLOW_HOST,
	NX_PREFIX_STRICT,
	NX_PREFIX_ALLOW_HOST | NX_PREFIX_STRICT,
};

static unsigned int bits_of(const struct nx_addr *a)
{
	switch (a->family) {
	case AF_INET:
		return 32;
	case AF_INET6:
		return 128;
	default:
		abort();
	}
}

static void check_rc(int rc, const struct nx_err *err)
{
	if (rc > 0 || (rc < 0 && err->msg[0] == '\0'))
		abort();
}

static void check_prefix(const char *s, const uint8_t *data, size_t size, bool has_nul,
			 unsigned int flags)
{
	char buf[NX_PREFIX_STRLEN];
	struct nx_prefix p;
	struct nx_prefix q;
	struct nx_prefix norm;
	struct nx_err err;
	int rc;
	int rc_n;

	err.msg[0] = '\0';
	rc = nx_prefix_parse(s, &p, flags, &err);
	check_rc(rc, &err);

	err.msg[0] = '\0';
	rc_n = nx_prefix_parse_n((const char *)data, size, &q, flags, &err);
	check_rc(rc_n, &err);
	if (has_nul ? rc_n == 0 : rc_n != rc)
		abort();
	if (rc_n == 0 && nx_prefix_cmp(&p, &q) != 0)
		abort();
	if (rc < 0)
		return;

	if (p.len > bits_of(&p.addr))
		abort();
	norm = p;
	nx_prefix_normalize(&norm);
	if ((flags & NX_PREFIX_STRICT) && nx_prefix_cmp(&norm, &p) != 0)
		abort();
	if (!nx_prefix_contains(&norm, &p) || !nx_prefix_contains(&p, &norm) ||
	    !nx_prefix_contains(&p, &p) || !nx_prefix_overlap(&p, &norm) ||
	    !nx_prefix_contains_addr(&p, &p.addr))
		abort();
	if (nx_prefix_is_default(&p) != (p.len == 0))
		abort();

	/* what parses without a flag parses the same with ALLOW_HOST */
	if (!(flags & NX_PREFIX_ALLOW_HOST)) {
		if (nx_prefix_parse(s, &q, flags | NX_PREFIX_ALLOW_HOST, NULL) != 0 ||
		    nx_prefix_cmp(&p, &q) != 0)
			abort();
	}

	nx_prefix_format(&p, buf, sizeof(buf));
	if (nx_prefix_parse(buf, &q, flags, NULL) != 0 || nx_prefix_cmp(&p, &q) != 0)
		abort();
}

static void check_addr(const char *s, const uint8_t *data, size_t size, bool has_nul)
{
	char buf[NX_ADDR_STRLEN];
	struct nx_addr a;
	struct nx_addr b;
	struct nx_prefix p;
	struct nx_prefix q;
	struct nx_err err;
	int rc;
	int rc_n;

	err.msg[0] = '\0';
	rc = nx_addr_parse(s, &a, &err);
	check_rc(rc, &err);

	err.msg[0] = '\0';
	rc_n = nx_addr_parse_n((const char *)data, size, &b, &err);
	check_rc(rc_n, &err);
	if (has_nul ? rc_n == 0 : rc_n != rc)
		abort();
	if (rc_n == 0 && !nx_addr_eq(&a, &b))
		abort();
	if (rc < 0)
		return;

	nx_addr_format(&a, buf, sizeof(buf));
	if (nx_addr_parse(buf, &b, NULL) != 0 || !nx_addr_eq(&a, &b))
		abort();

	/* a bare address is a host prefix under ALLOW_HOST */
	if (nx_prefix_from_addr(&p, &a) != 0 || !nx_prefix_is_host(&p))
		abort();
	if (nx_prefix_parse(s, &q, NX_PREFIX_ALLOW_HOST | NX_PREFIX_STRICT, NULL) != 0 ||
	    nx_prefix_cmp(&p, &q) != 0)
		abort();
}

static void check_endpoint(const char *s, const uint8_t *data, size_t size, bool has_nul)
{
	char buf[NX_ENDPOINT_STRLEN];
	struct sockaddr_storage ss;
	struct nx_addr a;
	struct nx_addr b;
	uint16_t port;
	uint16_t port2;
	struct nx_err err;
	int rc;
	int rc_n;

	err.msg[0] = '\0';
	rc = nx_endpoint_parse(s, &a, &port, &err);
	check_rc(rc, &err);

	err.msg[0] = '\0';
	rc_n = nx_endpoint_parse_n((const char *)data, size, &b, &port2, &err);
	check_rc(rc_n, &err);
	if (has_nul ? rc_n == 0 : rc_n != rc)
		abort();
	if (rc_n == 0 && (!nx_addr_eq(&a, &b) || port != port2))
		abort();
	if (rc < 0)
		return;

	if (port == 0)
		abort();
	nx_endpoint_format(&a, port, buf, sizeof(buf));
	if (nx_endpoint_parse(buf, &b, &port2, NULL) != 0 || !nx_addr_eq(&a, &b) || port != port2)
		abort();

	if (nx_addr_to_sockaddr(&a, port, &ss, NULL) != 0 ||
	    nx_addr_from_sockaddr(&ss, &b, &port2) != 0 || !nx_addr_eq(&a, &b) || port != port2)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool has_nul = memchr(data, '\0', size) != NULL;
	char *s;
	size_t i;

	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	for (i = 0; i < sizeof(all_flags) / sizeof(all_flags[0]); i++)
		check_prefix(s, data, size, has_nul, all_flags[i]);
	check_addr(s, data, size, has_nul);
	check_endpoint(s, data, size, has_nul);

	free(s);
	return 0;
}
