/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lib/prefix: strict parsing of addresses, prefixes and
 * endpoints (every class of malformed input must be refused with a message
 * that says why), canonical formatting, and prefix arithmetic.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <cmocka.h>

#include "lib/prefix.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct good_case {
	const char *in;
	unsigned int flags;
	const char *out; /* canonical text */
};

struct bad_case {
	const char *in;
	unsigned int flags;
	int code;
	const char *want; /* substring of the message */
};

/* Fails the test with the input, code and message when the expectation
 * does not hold, so a table failure names its row. */
static void check_rejection(const char *what, const char *in, int rc, const struct nx_err *err,
			    int code, const char *want)
{
	if (rc != -code || err->msg[0] == '\0' || !strstr(err->msg, want)) {
		print_error("%s \"%s\": rc=%d (want %d) msg=\"%s\" (want \"%s\")\n", what,
			    in ? in : "(null)", rc, -code, err->msg, want);
		fail();
	}
}

static void expect_addr_ok(const char *in, sa_family_t family, const char *out)
{
	char buf[NX_ADDR_STRLEN];
	struct nx_addr a;
	struct nx_addr b;
	struct nx_err err;
	int rc;

	rc = nx_addr_parse(in, &a, &err);
	if (rc != 0) {
		print_error("address \"%s\": rc=%d msg=\"%s\"\n", in, rc, err.msg);
		fail();
	}
	assert_int_equal(a.family, family);
	assert_string_equal(nx_addr_format(&a, buf, sizeof(buf)), out);
	assert_int_equal(nx_addr_parse(buf, &b, &err), 0);
	assert_true(nx_addr_eq(&a, &b));
	assert_int_equal(nx_addr_parse_n(in, strlen(in), &b, &err), 0);
	assert_true(nx_addr_eq(&a, &b));
}

static void expect_addr_bad(const char *in, int code, const char *want)
{
	struct nx_addr a;
	struct nx_addr orig;
	struct nx_err err;
	int rc;

	memset(&a, 0x5a, sizeof(a));
	orig = a;
	err.msg[0] = '\0';
	rc = nx_addr_parse(in, &a, &err);
	check_rejection("address", in, rc, &err, code, want);
	assert_memory_equal(&a, &orig, sizeof(a));
	assert_int_equal(nx_addr_parse(in, &a, NULL), -code);
}

static void expect_prefix_bad(const char *in, unsigned int flags, int code, const char *want)
{
	struct nx_prefix p;
	struct nx_prefix orig;
	struct nx_err err;
	int rc;

	memset(&p, 0x5a, sizeof(p));
	orig = p;
	err.msg[0] = '\0';
	rc = nx_prefix_parse(in, &p, flags, &err);
	check_rejection("prefix", in, rc, &err, code, want);
	assert_memory_equal(&p, &orig, sizeof(p));
	assert_int_equal(nx_prefix_parse(in, &p, flags, NULL), -code);
}

static void expect_endpoint_bad(const char *in, int code, const char *want)
{
	struct nx_addr a;
	struct nx_addr orig;
	uint16_t port = 4242;
	struct nx_err err;
	int rc;

	memset(&a, 0x5a, sizeof(a));
	orig = a;
	err.msg[0] = '\0';
	rc = nx_endpoint_parse(in, &a, &port, &err);
	check_rejection("endpoint", in, rc, &err, code, want);
	assert_memory_equal(&a, &orig, sizeof(a));
	assert_int_equal(port, 4242);
}

static struct nx_prefix must_prefix(const char *s)
{
	struct nx_prefix p;
	struct nx_err err;

	if (nx_prefix_parse(s, &p, NX_PREFIX_ALLOW_HOST, &err) != 0) {
		print_error("prefix \"%s\": %s\n", s, err.msg);
		fail();
	}
	return p;
}

static struct nx_addr must_addr(const char *s)
{
	struct nx_addr a;
	struct nx_err err;

	if (nx_addr_parse(s, &a, &err) != 0) {
		print_error("address \"%s\": %s\n", s, err.msg);
		fail();
	}
	return a;
}

/* ---- addresses ---- */

static void test_addr_parse_good(void **state)
{
	(void)state;
	expect_addr_ok("0.0.0.0", AF_INET, "0.0.0.0");
	expect_addr_ok("10.0.0.1", AF_INET, "10.0.0.1");
	expect_addr_ok("255.255.255.255", AF_INET, "255.255.255.255");
	expect_addr_ok("192.0.2.100", AF_INET, "192.0.2.100");
	expect_addr_ok("::", AF_INET6, "::");
	expect_addr_ok("::1", AF_INET6, "::1");
	expect_addr_ok("2001:db8::1", AF_INET6, "2001:db8::1");
	expect_addr_ok("2001:DB8:0:0:0:0:0:1", AF_INET6, "2001:db8::1");
	expect_addr_ok("2001:0db8:0000:0000:0000:0000:0000:0001", AF_INET6, "2001:db8::1");
	expect_addr_ok("fe80::1", AF_INET6, "fe80::1");
	expect_addr_ok("::ffff:192.0.2.1", AF_INET6, "::ffff:192.0.2.1");
	expect_addr_ok("1:2:3:4:5:6:7:8", AF_INET6, "1:2:3:4:5:6:7:8");
	expect_addr_ok("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", AF_INET6,
		       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	expect_addr_ok("fd00:0:0:1::", AF_INET6, "fd00:0:0:1::");
}

static void test_addr_parse_bad(void **state)
{
	static const struct bad_case cases[] = {
		{ "", 0, EINVAL, "empty address" },
		{ "1.2.3", 0, EINVAL, "expected 4 dotted decimal octets" },
		{ "1.2.3.4.5", 0, EINVAL, "expected 4 dotted decimal octets" },
		{ "1.2.3.4.", 0, EINVAL, "expected 4 dotted decimal octets" },
		{ "1", 0, EINVAL, "expected 4 dotted decimal octets" },
		{ "1..2.3", 0, EINVAL, "empty IPv4 octet" },
		{ ".1.2.3", 0, EINVAL, "empty IPv4 octet" },
		{ "256.0.0.1", 0, EINVAL, "octet 256 exceeds 255" },
		{ "1.2.3.999", 0, EINVAL, "octet 999 exceeds 255" },
		{ "1.2.3.1000", 0, EINVAL, "more than 3 digits" },
		{ "01.2.3.4", 0, EINVAL, "leading zero" },
		{ "1.2.3.00", 0, EINVAL, "leading zero" },
		{ "0x1.2.3.4", 0, EINVAL, "unexpected character 'x'" },
		{ "1.2.3.-4", 0, EINVAL, "unexpected character '-'" },
		{ "host.example", 0, EINVAL, "not an IPv4 or IPv6 address" },
		{ " 1.2.3.4", 0, EINVAL, "whitespace" },
		{ "1.2.3.4 ", 0, EINVAL, "whitespace" },
		{ "1.2.3.4\n", 0, EINVAL, "whitespace" },
		{ "1.2.\t3.4", 0, EINVAL, "whitespace" },
		{ "1.2.3.4\x01", 0, EINVAL, "invalid byte 0x01" },
		{ "1.2.3.\xc3\xa9", 0, EINVAL, "invalid byte 0xc3" },
		{ "[::1]", 0, EINVAL, "brackets" },
		{ "fe80::1%eth0", 0, EINVAL, "zone ids" },
		{ "fe80::1%1", 0, EINVAL, "zone ids" },
		{ "10.0.0.0/8", 0, EINVAL, "expected an address, not a prefix" },
		{ "::1::2", 0, EINVAL, "'::' may appear only once" },
		{ "1:::2", 0, EINVAL, "':::'" },
		{ "gggg::1", 0, EINVAL, "invalid character 'g'" },
		{ "2001:db8::1:", 0, EINVAL, "not a valid IPv6 address" },
		{ ":2001:db8::1", 0, EINVAL, "not a valid IPv6 address" },
		{ "12345::", 0, EINVAL, "not a valid IPv6 address" },
		{ "1:2:3:4:5:6:7:8:9", 0, EINVAL, "not a valid IPv6 address" },
		{ "1:2:3:4:5:6:7", 0, EINVAL, "not a valid IPv6 address" },
		{ "::ffff:01.2.3.4", 0, EINVAL, "not a valid IPv6 address" },
		{ "::ffff:1.2.3", 0, EINVAL, "not a valid IPv6 address" },
		{ ":", 0, EINVAL, "not a valid IPv6 address" },
		{ "0000000000000000000000000000000000000000000000000000", 0, EINVAL, "too long" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++)
		expect_addr_bad(cases[i].in, cases[i].code, cases[i].want);
	expect_addr_bad(NULL, EINVAL, "missing address");
}

static void test_addr_parse_n(void **state)
{
	static const char nul_inside[] = "10.0.0.1\0garbage";
	struct nx_addr a;
	struct nx_err err;
	int rc;

	(void)state;
	/* a length that stops before the end of a longer buffer */
	assert_int_equal(nx_addr_parse_n("10.0.0.1xyz", 8, &a, &err), 0);
	assert_false(nx_addr_eq(&a, &(struct nx_addr){ 0 }));
	assert_true(nx_addr_eq(
		&a, &(struct nx_addr){ .family = AF_INET, .v4.s_addr = htonl(0x0a000001) }));

	rc = nx_addr_parse_n(nul_inside, sizeof(nul_inside) - 1, &a, &err);
	check_rejection("address_n", "10.0.0.1\\0garbage", rc, &err, EINVAL,
			"NUL byte at offset 8");

	rc = nx_addr_parse_n("10.0.0.1\0", 9, &a, &err);
	check_rejection("address_n", "10.0.0.1\\0", rc, &err, EINVAL, "NUL byte at offset 8");

	rc = nx_addr_parse_n("", 0, &a, &err);
	check_rejection("address_n", "", rc, &err, EINVAL, "empty address");

	rc = nx_addr_parse_n("1111111111111111111111111111111111111111111111111111111111111111", 64,
			     &a, &err);
	check_rejection("address_n", "1111...", rc, &err, EINVAL, "too long");

	rc = nx_addr_parse_n(NULL, 0, &a, &err);
	check_rejection("address_n", NULL, rc, &err, EINVAL, "missing address");
}

/* ---- prefixes ---- */

static void test_prefix_parse_good(void **state)
{
	static const struct good_case cases[] = {
		{ "10.0.0.0/8", 0, "10.0.0.0/8" },
		{ "10.0.0.0/8", NX_PREFIX_STRICT, "10.0.0.0/8" },
		{ "0.0.0.0/0", NX_PREFIX_STRICT, "0.0.0.0/0" },
		{ "192.0.2.1/32", NX_PREFIX_STRICT, "192.0.2.1/32" },
		/* host bits kept without STRICT: an interface address */
		{ "10.1.2.3/24", 0, "10.1.2.3/24" },
		{ "10.1.2.3/24", NX_PREFIX_ALLOW_HOST, "10.1.2.3/24" },
		{ "255.255.255.255/0", 0, "255.255.255.255/0" },
		{ "::/0", NX_PREFIX_STRICT, "::/0" },
		{ "2001:db8::/32", NX_PREFIX_STRICT, "2001:db8::/32" },
		{ "2001:DB8:0::/48", 0, "2001:db8::/48" },
		{ "fd00::1/64", 0, "fd00::1/64" },
		{ "::1/128", NX_PREFIX_STRICT, "::1/128" },
		{ "::ffff:10.0.0.0/104", NX_PREFIX_STRICT, "::ffff:10.0.0.0/104" },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128", NX_PREFIX_STRICT,
		  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128" },
		/* bare addresses with ALLOW_HOST */
		{ "192.0.2.7", NX_PREFIX_ALLOW_HOST, "192.0.2.7/32" },
		{ "192.0.2.7", NX_PREFIX_ALLOW_HOST | NX_PREFIX_STRICT, "192.0.2.7/32" },
		{ "2001:db8::7", NX_PREFIX_ALLOW_HOST, "2001:db8::7/128" },
		{ "::", NX_PREFIX_ALLOW_HOST | NX_PREFIX_STRICT, "::/128" },
	};
	char buf[NX_PREFIX_STRLEN];
	struct nx_prefix p;
	struct nx_prefix q;
	struct nx_err err;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		if (nx_prefix_parse(cases[i].in, &p, cases[i].flags, &err) != 0) {
			print_error("prefix \"%s\" flags %u: %s\n", cases[i].in, cases[i].flags,
				    err.msg);
			fail();
		}
		assert_string_equal(nx_prefix_format(&p, buf, sizeof(buf)), cases[i].out);
		assert_int_equal(nx_prefix_parse(buf, &q, cases[i].flags, &err), 0);
		assert_int_equal(nx_prefix_cmp(&p, &q), 0);
		assert_int_equal(nx_prefix_parse_n(cases[i].in, strlen(cases[i].in), &q,
						   cases[i].flags, &err),
				 0);
		assert_int_equal(nx_prefix_cmp(&p, &q), 0);
	}
}

static void test_prefix_parse_bad(void **state)
{
	static const struct bad_case cases[] = {
		/* missing or empty parts */
		{ "", 0, EINVAL, "empty prefix" },
		{ "", NX_PREFIX_ALLOW_HOST, EINVAL, "empty prefix" },
		{ "10.0.0.0", 0, EINVAL, "missing prefix length" },
		{ "2001:db8::", NX_PREFIX_STRICT, EINVAL, "missing prefix length" },
		{ "10.0.0.0/", 0, EINVAL, "missing prefix length after '/'" },
		{ "10.0.0.0/", NX_PREFIX_ALLOW_HOST, EINVAL, "missing prefix length after '/'" },
		{ "/8", 0, EINVAL, "missing address before '/'" },
		{ "/", 0, EINVAL, "missing address before '/'" },
		/* length not a plain decimal number */
		{ "10.0.0.0/abc", 0, EINVAL, "prefix length \"abc\" is not a decimal number" },
		{ "10.0.0.0/-1", 0, EINVAL, "not a decimal number" },
		{ "10.0.0.0/+8", 0, EINVAL, "not a decimal number" },
		{ "10.0.0.0/0x8", 0, EINVAL, "not a decimal number" },
		{ "10.0.0.0/8x", 0, EINVAL, "not a decimal number" },
		{ "10.0.0.0/8.0", 0, EINVAL, "not a decimal number" },
		{ "10.0.0.0/8:", 0, EINVAL, "not a decimal number" },
		/* leading zeros, too many digits, out of range */
		{ "10.0.0.0/08", 0, EINVAL, "leading zero" },
		{ "10.0.0.0/00", 0, EINVAL, "leading zero" },
		{ "::/0128", 0, EINVAL, "leading zero" },
		{ "10.0.0.0/1234", 0, EINVAL, "too long (at most 3 digits)" },
		{ "::/99999999999999999999", 0, EINVAL, "too long" },
		{ "10.0.0.0/33", 0, ERANGE, "\"10.0.0.0/33\": prefix length 33 exceeds 32" },
		{ "10.0.0.0/255", 0, ERANGE, "prefix length 255 exceeds 32" },
		{ "10.0.0.0/999", 0, ERANGE, "prefix length 999 exceeds 32" },
		{ "::/129", 0, ERANGE, "prefix length 129 exceeds 128" },
		{ "2001:db8::/256", 0, ERANGE, "prefix length 256 exceeds 128" },
		/* extra characters */
		{ "10.0.0.0/8/8", 0, EINVAL, "more than one '/'" },
		{ "10.0.0.0//8", 0, EINVAL, "more than one '/'" },
		{ "10.0.0.0/8/", 0, EINVAL, "more than one '/'" },
		{ "10.0.0.0/8 ", 0, EINVAL, "whitespace" },
		{ "10.0.0.0 /8", 0, EINVAL, "whitespace" },
		{ "10.0.0.0/ 8", 0, EINVAL, "whitespace" },
		{ "\t10.0.0.0/8", 0, EINVAL, "whitespace" },
		{ "10.0.0.0/8\x7f", 0, EINVAL, "invalid byte 0x7f" },
		/* bad address part, quoted whole */
		{ "10.0.0.256/24", 0, EINVAL, "\"10.0.0.256/24\": IPv4 octet 256 exceeds 255" },
		{ "10.0.0/24", 0, EINVAL, "expected 4 dotted decimal octets" },
		{ "010.0.0.0/8", 0, EINVAL, "leading zero" },
		{ "[::1]/128", 0, EINVAL, "brackets" },
		{ "fe80::%eth0/64", 0, EINVAL, "zone ids" },
		{ "fe80::/64%eth0", 0, EINVAL, "not a decimal number" },
		{ "2001:db8:::/48", 0, EINVAL, "':::'" },
		{ "host/24", NX_PREFIX_ALLOW_HOST, EINVAL, "not an IPv4 or IPv6 address" },
		{ "1.2.3.4.5", NX_PREFIX_ALLOW_HOST, EINVAL, "expected 4 dotted decimal octets" },
		/* host bits with STRICT */
		{ "10.0.0.1/24", NX_PREFIX_STRICT, EINVAL, "did you mean 10.0.0.0/24?" },
		{ "10.0.0.1/24", NX_PREFIX_STRICT | NX_PREFIX_ALLOW_HOST, EINVAL, "host bits set" },
		{ "0.0.0.1/0", NX_PREFIX_STRICT, EINVAL, "did you mean 0.0.0.0/0?" },
		{ "10.255.255.255/9", NX_PREFIX_STRICT, EINVAL, "did you mean 10.128.0.0/9?" },
		{ "2001:db8::1/64", NX_PREFIX_STRICT, EINVAL, "did you mean 2001:db8::/64?" },
		{ "::1/127", NX_PREFIX_STRICT, EINVAL, "did you mean ::/127?" },
		/* over-long input */
		{ "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/1280", 0, EINVAL, "too long" },
		{ "10.0.0.0/8,10.0.0.0/8,10.0.0.0/8,10.0.0.0/8,10.0.0.0/8", 0, EINVAL,
		  "at most 49 characters" },
		/* bad flags */
		{ "10.0.0.0/8", 0x80, EINVAL, "unknown prefix parse flags" },
	};
	char longbuf[4096];
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++)
		expect_prefix_bad(cases[i].in, cases[i].flags, cases[i].code, cases[i].want);
	expect_prefix_bad(NULL, 0, EINVAL, "missing prefix");

	memset(longbuf, '1', sizeof(longbuf) - 1);
	longbuf[sizeof(longbuf) - 1] = '\0';
	expect_prefix_bad(longbuf, 0, EINVAL, "too long");
}

static void test_prefix_parse_n(void **state)
{
	static const char nul_inside[] = "10.0.0.0/8\0junk";
	static const char nul_len[] = "10.0.0.0/2\0004";
	struct nx_prefix p;
	struct nx_err err;
	char longbuf[300];
	int rc;

	(void)state;
	rc = nx_prefix_parse_n(nul_inside, sizeof(nul_inside) - 1, &p, 0, &err);
	check_rejection("prefix_n", "10.0.0.0/8\\0junk", rc, &err, EINVAL,
			"prefix contains a NUL byte at offset 10");
	rc = nx_prefix_parse_n(nul_len, sizeof(nul_len) - 1, &p, 0, &err);
	check_rejection("prefix_n", "10.0.0.0/2\\04", rc, &err, EINVAL, "NUL byte at offset 10");
	rc = nx_prefix_parse_n("\0", 1, &p, NX_PREFIX_ALLOW_HOST, &err);
	check_rejection("prefix_n", "\\0", rc, &err, EINVAL, "NUL byte at offset 0");

	/* the C-string form stops at the NUL */
	assert_int_equal(nx_prefix_parse(nul_inside, &p, 0, &err), 0);
	assert_int_equal(p.len, 8);

	/* only n bytes are read */
	assert_int_equal(nx_prefix_parse_n("10.0.0.0/24", 10, &p, 0, &err), 0);
	assert_int_equal(p.len, 2);

	memset(longbuf, '1', sizeof(longbuf));
	rc = nx_prefix_parse_n(longbuf, sizeof(longbuf), &p, 0, &err);
	check_rejection("prefix_n", "1111...", rc, &err, EINVAL, "too long");

	rc = nx_prefix_parse_n("10.0.0.0/8", 10, &p, 0x4, &err);
	check_rejection("prefix_n", "flags", rc, &err, EINVAL, "unknown prefix parse flags");
}

/* Every length of a few addresses: non-strict text round-trips as given;
 * the normalised prefix round-trips under STRICT. */
static void roundtrip_lengths(const char *addr, unsigned int maxlen)
{
	char in[NX_PREFIX_STRLEN + 8];
	char out[NX_PREFIX_STRLEN];
	struct nx_prefix p;
	struct nx_prefix q;
	struct nx_err err;
	unsigned int len;

	for (len = 0; len <= maxlen; len++) {
		snprintf(in, sizeof(in), "%s/%u", addr, len);
		assert_int_equal(nx_prefix_parse(in, &p, 0, &err), 0);
		assert_int_equal(p.len, len);
		assert_string_equal(nx_prefix_format(&p, out, sizeof(out)), in);

		nx_prefix_normalize(&p);
		nx_prefix_format(&p, out, sizeof(out));
		assert_int_equal(nx_prefix_parse(out, &q, NX_PREFIX_STRICT, &err), 0);
		assert_int_equal(nx_prefix_cmp(&p, &q), 0);
		assert_true(nx_prefix_is_host(&p) == (len == maxlen));
		assert_true(nx_prefix_is_default(&p) == (len == 0));
	}
	snprintf(in, sizeof(in), "%s/%u", addr, maxlen + 1);
	assert_int_equal(nx_prefix_parse(in, &p, 0, &err), -ERANGE);
}

static void test_prefix_roundtrip(void **state)
{
	(void)state;
	roundtrip_lengths("0.0.0.0", 32);
	roundtrip_lengths("255.255.255.255", 32);
	roundtrip_lengths("10.20.30.40", 32);
	roundtrip_lengths("::", 128);
	roundtrip_lengths("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128);
	roundtrip_lengths("2001:db8:1234:5678:9abc:def0:1357:2468", 128);
}

static void test_prefix_strict(void **state)
{
	struct nx_prefix p;
	struct nx_err err;
	unsigned int len;
	char in[NX_PREFIX_STRLEN];

	(void)state;
	/* 10.0.0.1 has its last bit set: valid under STRICT only as /32 */
	for (len = 0; len <= 32; len++) {
		snprintf(in, sizeof(in), "10.0.0.1/%u", len);
		if (len == 32) {
			assert_int_equal(nx_prefix_parse(in, &p, NX_PREFIX_STRICT, &err), 0);
		} else {
			err.msg[0] = '\0';
			assert_int_equal(nx_prefix_parse(in, &p, NX_PREFIX_STRICT, &err), -EINVAL);
			assert_non_null(strstr(err.msg, "host bits set"));
		}
	}
	/* 128.0.0.0 only has the first bit: valid for every length >= 1 */
	for (len = 0; len <= 32; len++) {
		snprintf(in, sizeof(in), "128.0.0.0/%u", len);
		assert_int_equal(nx_prefix_parse(in, &p, NX_PREFIX_STRICT, &err),
				 len ? 0 : -EINVAL);
	}
	for (len = 0; len <= 128; len++) {
		snprintf(in, sizeof(in), "8000::/%u", len);
		assert_int_equal(nx_prefix_parse(in, &p, NX_PREFIX_STRICT, &err),
				 len ? 0 : -EINVAL);
		snprintf(in, sizeof(in), "::1/%u", len);
		assert_int_equal(nx_prefix_parse(in, &p, NX_PREFIX_STRICT, &err),
				 len == 128 ? 0 : -EINVAL);
	}
}

static void test_prefix_normalize(void **state)
{
	char buf[NX_PREFIX_STRLEN];
	struct nx_prefix p;

	(void)state;
	p = must_prefix("10.1.2.3/24");
	nx_prefix_normalize(&p);
	assert_string_equal(nx_prefix_format(&p, buf, sizeof(buf)), "10.1.2.0/24");

	p = must_prefix("10.255.255.255/9");
	nx_prefix_normalize(&p);
	assert_string_equal(nx_prefix_format(&p, buf, sizeof(buf)), "10.128.0.0/9");

	p = must_prefix("1.2.3.4/0");
	nx_prefix_normalize(&p);
	assert_string_equal(nx_prefix_format(&p, buf, sizeof(buf)), "0.0.0.0/0");

	p = must_prefix("1.2.3.4/32");
	nx_prefix_normalize(&p);
	assert_string_equal(nx_prefix_format(&p, buf, sizeof(buf)), "1.2.3.4/32");

	p = must_prefix("2001:db8:ffff:ffff::1/35");
	nx_prefix_normalize(&p);
	assert_string_equal(nx_prefix_format(&p, buf, sizeof(buf)), "2001:db8:e000::/35");

	p = must_prefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127");
	nx_prefix_normalize(&p);
	assert_string_equal(nx_prefix_format(&p, buf, sizeof(buf)),
			    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127");

	/* unknown family: left alone */
	memset(&p, 0, sizeof(p));
	p.len = 7;
	nx_prefix_normalize(&p);
	assert_int_equal(p.len, 7);
}

static void test_prefix_host_default(void **state)
{
	struct nx_prefix p;
	struct nx_addr a;

	(void)state;
	assert_true(nx_prefix_is_host(&(struct nx_prefix){ must_addr("1.2.3.4"), 32 }));
	assert_false(nx_prefix_is_host(&(struct nx_prefix){ must_addr("1.2.3.4"), 31 }));
	assert_false(nx_prefix_is_host(&(struct nx_prefix){ must_addr("::1"), 32 }));
	assert_true(nx_prefix_is_host(&(struct nx_prefix){ must_addr("::1"), 128 }));
	assert_true(nx_prefix_is_default(&(struct nx_prefix){ must_addr("0.0.0.0"), 0 }));
	assert_true(nx_prefix_is_default(&(struct nx_prefix){ must_addr("::"), 0 }));
	assert_true(nx_prefix_is_default(&(struct nx_prefix){ must_addr("1.2.3.4"), 0 }));
	assert_false(nx_prefix_is_default(&(struct nx_prefix){ must_addr("0.0.0.0"), 1 }));

	memset(&p, 0, sizeof(p));
	assert_false(nx_prefix_is_host(&p));
	assert_false(nx_prefix_is_default(&p));

	a = must_addr("2001:db8::5");
	assert_int_equal(nx_prefix_from_addr(&p, &a), 0);
	assert_int_equal(p.len, 128);
	assert_true(nx_addr_eq(&p.addr, &a));
	assert_true(nx_prefix_is_host(&p));
	assert_true(nx_prefix_contains_addr(&p, &a));

	a = must_addr("192.0.2.5");
	assert_int_equal(nx_prefix_from_addr(&p, &a), 0);
	assert_int_equal(p.len, 32);
	assert_int_equal(nx_prefix_cmp(&p, &(struct nx_prefix){ must_addr("192.0.2.5"), 32 }), 0);

	memset(&a, 0, sizeof(a));
	assert_int_equal(nx_prefix_from_addr(&p, &a), -EAFNOSUPPORT);
}

/* ---- arithmetic ---- */

/* Flips bit k (0 = most significant) of a. */
static struct nx_addr flip_bit(struct nx_addr a, unsigned int k)
{
	uint8_t *b = a.family == AF_INET ? (uint8_t *)&a.v4 : (uint8_t *)&a.v6;

	b[k / 8] ^= (uint8_t)(0x80 >> (k % 8));
	return a;
}

/*
 * For an address A and every pair of lengths i, j: A/i contains A/j iff
 * i <= j, and the two always overlap.  For B = A with bit k flipped:
 * A/i contains B iff i <= k, and A/i overlaps B/j iff min(i, j) <= k.
 */
static void check_containment(const char *addr, unsigned int maxlen)
{
	struct nx_addr a = must_addr(addr);
	struct nx_prefix pi;
	struct nx_prefix pj;
	unsigned int i;
	unsigned int j;
	unsigned int k;

	for (i = 0; i <= maxlen; i++) {
		pi = (struct nx_prefix){ a, (uint8_t)i };
		assert_true(nx_prefix_contains_addr(&pi, &a));
		for (j = 0; j <= maxlen; j++) {
			pj = (struct nx_prefix){ a, (uint8_t)j };
			if (nx_prefix_contains(&pi, &pj) != (i <= j)) {
				print_error("%s: /%u contains /%u wrong\n", addr, i, j);
				fail();
			}
			assert_true(nx_prefix_overlap(&pi, &pj));
		}
	}

	for (k = 0; k < maxlen; k++) {
		struct nx_addr b = flip_bit(a, k);

		assert_false(nx_addr_eq(&a, &b));
		for (i = 0; i <= maxlen; i++) {
			pi = (struct nx_prefix){ a, (uint8_t)i };
			if (nx_prefix_contains_addr(&pi, &b) != (i <= k)) {
				print_error("%s: /%u contains bit %u flipped wrong\n", addr, i, k);
				fail();
			}
			for (j = 0; j <= maxlen; j += 1) {
				unsigned int m = i < j ? i : j;

				pj = (struct nx_prefix){ b, (uint8_t)j };
				if (nx_prefix_overlap(&pi, &pj) != (m <= k) ||
				    nx_prefix_overlap(&pj, &pi) != (m <= k) ||
				    nx_prefix_contains(&pi, &pj) != (i <= j && i <= k)) {
					print_error("%s: /%u vs flipped %u /%u wrong\n", addr, i, k,
						    j);
					fail();
				}
			}
		}
	}
}

static void test_containment_v4(void **state)
{
	(void)state;
	check_containment("10.20.30.40", 32);
	check_containment("0.0.0.0", 32);
	check_containment("255.255.255.255", 32);
}

static void test_containment_v6(void **state)
{
	(void)state;
	check_containment("2001:db8:1234:5678:9abc:def0:1357:2468", 128);
	check_containment("::", 128);
}

static void test_containment_examples(void **state)
{
	struct nx_prefix p10 = must_prefix("10.0.0.0/8");
	struct nx_prefix p10_1 = must_prefix("10.1.0.0/16");
	struct nx_prefix p11 = must_prefix("11.0.0.0/8");
	struct nx_prefix host = must_prefix("10.1.2.3/24"); /* host bits kept */
	struct nx_addr a = must_addr("10.1.2.200");

	(void)state;
	assert_true(nx_prefix_contains(&p10, &p10_1));
	assert_false(nx_prefix_contains(&p10_1, &p10));
	assert_true(nx_prefix_overlap(&p10, &p10_1));
	assert_true(nx_prefix_overlap(&p10_1, &p10));
	assert_false(nx_prefix_overlap(&p10, &p11));
	assert_false(nx_prefix_contains(&p10, &p11));
	assert_true(nx_prefix_contains(&p10, &p10));

	/* host bits are ignored by the arithmetic */
	assert_true(nx_prefix_contains_addr(&host, &a));
	assert_true(nx_prefix_contains(&p10_1, &host));
	assert_true(nx_prefix_contains(&host, &(struct nx_prefix){ a, 32 }));

	/* an invalid length never contains anything */
	p10.len = 33;
	assert_false(nx_prefix_contains(&p10, &p10_1));
	assert_false(nx_prefix_contains_addr(&p10, &a));
	assert_false(nx_prefix_contains(&p10_1, &p10));
	assert_false(nx_prefix_overlap(&p10, &(struct nx_prefix){ a, 40 }));
}

static void test_family_mixing(void **state)
{
	struct nx_prefix v4_any = must_prefix("0.0.0.0/0");
	struct nx_prefix v6_any = must_prefix("::/0");
	struct nx_prefix v6_zero = must_prefix("::/128");
	struct nx_prefix v4_zero = must_prefix("0.0.0.0/32");
	struct nx_prefix mapped = must_prefix("::ffff:10.0.0.0/104");
	struct nx_prefix v4_10 = must_prefix("10.0.0.0/8");
	struct nx_addr a4 = must_addr("1.2.3.4");
	struct nx_addr a6 = must_addr("::ffff:1.2.3.4");
	struct nx_prefix unspec;

	(void)state;
	assert_false(nx_prefix_contains(&v4_any, &v6_zero));
	assert_false(nx_prefix_contains(&v6_any, &v4_zero));
	assert_false(nx_prefix_overlap(&v4_any, &v6_any));
	assert_false(nx_prefix_overlap(&v6_any, &v4_any));
	assert_false(nx_prefix_contains_addr(&v4_any, &a6));
	assert_false(nx_prefix_contains_addr(&v6_any, &a4));
	assert_false(nx_prefix_contains(&v4_10, &mapped));
	assert_false(nx_prefix_contains(&mapped, &v4_10));
	assert_true(nx_prefix_contains_addr(&v6_any, &a6));
	assert_true(nx_prefix_contains_addr(&v4_any, &a4));

	/* the same 4 bytes in a mapped address are a different address */
	assert_false(nx_addr_eq(&a4, &a6));
	assert_true(nx_addr_cmp(&a4, &a6) < 0);
	assert_true(nx_addr_cmp(&a6, &a4) > 0);
	/* all IPv4 sorts before all IPv6, whatever the bytes */
	assert_true(nx_prefix_cmp(&(struct nx_prefix){ must_addr("255.255.255.255"), 32 },
				  &v6_any) < 0);
	assert_true(nx_prefix_cmp(&v6_zero, &v4_any) > 0);

	/* an unspecified prefix contains and overlaps nothing, not even itself */
	memset(&unspec, 0, sizeof(unspec));
	assert_false(nx_prefix_contains(&unspec, &unspec));
	assert_false(nx_prefix_overlap(&unspec, &unspec));
	assert_false(nx_prefix_contains(&unspec, &v4_any));
	assert_false(nx_prefix_contains(&v4_any, &unspec));
	assert_true(nx_addr_eq(&unspec.addr, &unspec.addr));
}

static void test_cmp_and_sort(void **state)
{
	static const char *const sorted[] = {
		"0.0.0.0/0",	 "0.0.0.0/8",	    "10.0.0.0/8",     "10.0.0.0/16",
		"10.0.0.1/32",	 "10.0.1.0/24",	    "192.168.0.0/16", "255.255.255.255/32",
		"::/0",		 "::/128",	    "::1/128",	      "2001:db8::/32",
		"2001:db8::/64", "2001:db8::1/128", "fe80::/10",      "ffff::/16",
	};
	static const size_t order[] = { 11, 3, 15, 0, 8, 6, 13, 1, 9, 4, 14, 7, 2, 10, 5, 12 };
	struct nx_prefix v[ARRAY_SIZE(sorted)];
	struct nx_addr addrs[4];
	char buf[NX_PREFIX_STRLEN];
	size_t i;
	size_t j;

	(void)state;
	assert_int_equal(ARRAY_SIZE(order), ARRAY_SIZE(sorted));
	for (i = 0; i < ARRAY_SIZE(sorted); i++)
		v[i] = must_prefix(sorted[order[i]]);
	qsort(v, ARRAY_SIZE(v), sizeof(v[0]), nx_prefix_cmp_qsort);
	for (i = 0; i < ARRAY_SIZE(sorted); i++)
		assert_string_equal(nx_prefix_format(&v[i], buf, sizeof(buf)), sorted[i]);

	/* antisymmetric and consistent */
	for (i = 0; i < ARRAY_SIZE(v); i++) {
		for (j = 0; j < ARRAY_SIZE(v); j++) {
			int c = nx_prefix_cmp(&v[i], &v[j]);

			assert_int_equal(c, -nx_prefix_cmp(&v[j], &v[i]));
			assert_int_equal(c, (i > j) - (i < j));
		}
	}

	addrs[0] = must_addr("2001:db8::1");
	addrs[1] = must_addr("10.0.0.2");
	addrs[2] = must_addr("::");
	addrs[3] = must_addr("10.0.0.1");
	qsort(addrs, ARRAY_SIZE(addrs), sizeof(addrs[0]), nx_addr_cmp_qsort);
	assert_string_equal(nx_addr_format(&addrs[0], buf, sizeof(buf)), "10.0.0.1");
	assert_string_equal(nx_addr_format(&addrs[1], buf, sizeof(buf)), "10.0.0.2");
	assert_string_equal(nx_addr_format(&addrs[2], buf, sizeof(buf)), "::");
	assert_string_equal(nx_addr_format(&addrs[3], buf, sizeof(buf)), "2001:db8::1");

	/* equality ignores bytes outside the family's address */
	addrs[0] = must_addr("10.0.0.1");
	memset(&addrs[1], 0xee, sizeof(addrs[1]));
	addrs[1].family = AF_INET;
	addrs[1].v4 = addrs[0].v4;
	assert_true(nx_addr_eq(&addrs[0], &addrs[1]));
}

/* ---- formatting ---- */

static void test_format_edges(void **state)
{
	struct nx_prefix p = must_prefix("2001:db8::1/64");
	struct nx_addr a;
	char buf[NX_ENDPOINT_STRLEN];
	char small[8];

	(void)state;
	/* truncated, always terminated */
	memset(small, 'x', sizeof(small));
	assert_ptr_equal(nx_prefix_format(&p, small, sizeof(small)), small);
	assert_string_equal(small, "2001:db");
	assert_string_equal(nx_addr_format(&p.addr, small, sizeof(small)), "2001:db");
	assert_string_equal(nx_endpoint_format(&p.addr, 51820, small, sizeof(small)), "[2001:d");
	assert_string_equal(nx_addr_format(&p.addr, small, 1), "");
	small[0] = 'x';
	nx_addr_format(&p.addr, small, 0);
	nx_prefix_format(&p, small, 0);
	nx_endpoint_format(&p.addr, 1, small, 0);
	assert_int_equal(small[0], 'x');

	memset(&a, 0, sizeof(a));
	assert_string_equal(nx_addr_format(&a, buf, sizeof(buf)), "(invalid)");
	a.family = AF_UNIX;
	assert_string_equal(nx_addr_format(&a, buf, sizeof(buf)), "(invalid)");

	/* the longest texts fit the advertised sizes */
	a = must_addr("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
	assert_int_equal(strlen(nx_addr_format(&a, buf, NX_ADDR_STRLEN)), 39);
	a = must_addr("::ffff:255.255.255.255");
	p = (struct nx_prefix){ a, 128 };
	assert_string_equal(nx_prefix_format(&p, buf, NX_PREFIX_STRLEN),
			    "::ffff:255.255.255.255/128");
	assert_string_equal(nx_endpoint_format(&a, 65535, buf, NX_ENDPOINT_STRLEN),
			    "[::ffff:255.255.255.255]:65535");
}

/* ---- endpoints ---- */

static void test_endpoint_good(void **state)
{
	static const struct {
		const char *in;
		sa_family_t family;
		uint16_t port;
		const char *out;
	} cases[] = {
		{ "192.0.2.1:51820", AF_INET, 51820, "192.0.2.1:51820" },
		{ "0.0.0.0:1", AF_INET, 1, "0.0.0.0:1" },
		{ "255.255.255.255:65535", AF_INET, 65535, "255.255.255.255:65535" },
		{ "[2001:db8::1]:51820", AF_INET6, 51820, "[2001:db8::1]:51820" },
		{ "[2001:DB8:0::1]:443", AF_INET6, 443, "[2001:db8::1]:443" },
		{ "[::]:9", AF_INET6, 9, "[::]:9" },
		{ "[::ffff:192.0.2.1]:1", AF_INET6, 1, "[::ffff:192.0.2.1]:1" },
		{ "192.0.2.1:0080", AF_INET, 80, "192.0.2.1:80" },
		{ "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", AF_INET6, 65535,
		  "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535" },
	};
	char buf[NX_ENDPOINT_STRLEN];
	struct nx_addr a;
	struct nx_addr b;
	uint16_t port;
	uint16_t port2;
	struct nx_err err;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		if (nx_endpoint_parse(cases[i].in, &a, &port, &err) != 0) {
			print_error("endpoint \"%s\": %s\n", cases[i].in, err.msg);
			fail();
		}
		assert_int_equal(a.family, cases[i].family);
		assert_int_equal(port, cases[i].port);
		assert_string_equal(nx_endpoint_format(&a, port, buf, sizeof(buf)), cases[i].out);
		assert_int_equal(nx_endpoint_parse(buf, &b, &port2, &err), 0);
		assert_true(nx_addr_eq(&a, &b));
		assert_int_equal(port, port2);
		assert_int_equal(
			nx_endpoint_parse_n(cases[i].in, strlen(cases[i].in), &b, &port2, &err), 0);
		assert_true(nx_addr_eq(&a, &b));
	}
}

static void test_endpoint_bad(void **state)
{
	static const struct bad_case cases[] = {
		{ "", 0, EINVAL, "empty endpoint" },
		{ "192.0.2.1", 0, EINVAL, "missing port (expected ADDRESS:PORT)" },
		{ "192.0.2.1:", 0, EINVAL, "missing port after ':'" },
		{ ":51820", 0, EINVAL, "missing address before ':'" },
		{ "192.0.2.1:0", 0, ERANGE, "port \"0\": out of range 1-65535" },
		{ "192.0.2.1:65536", 0, ERANGE, "out of range 1-65535" },
		{ "192.0.2.1:99999999999999999999999", 0, ERANGE, "out of range" },
		{ "192.0.2.1:-1", 0, EINVAL, "sign not allowed" },
		{ "192.0.2.1:+80", 0, EINVAL, "sign not allowed" },
		{ "192.0.2.1:80x", 0, EINVAL, "not a decimal number" },
		{ "192.0.2.1:0x50", 0, EINVAL, "not a decimal number" },
		{ "192.0.2.1: 80", 0, EINVAL, "whitespace" },
		{ "192.0.2.1:80 ", 0, EINVAL, "whitespace" },
		{ "192.0.2.256:80", 0, EINVAL, "octet 256 exceeds 255" },
		{ "192.0.2:80", 0, EINVAL, "expected 4 dotted decimal octets" },
		{ "host.example:80", 0, EINVAL, "not an IPv4 or IPv6 address" },
		{ "2001:db8::1:51820", 0, EINVAL, "must be written [ADDRESS]:PORT" },
		{ "::1:80", 0, EINVAL, "must be written [ADDRESS]:PORT" },
		{ "[2001:db8::1]", 0, EINVAL, "missing port (expected [ADDRESS]:PORT)" },
		{ "[2001:db8::1]:", 0, EINVAL, "missing port after ':'" },
		{ "[2001:db8::1]51820", 0, EINVAL, "expected ':PORT' after ']'" },
		{ "[2001:db8::1]:80:80", 0, EINVAL, "not a decimal number" },
		{ "[2001:db8::1", 0, EINVAL, "missing ']'" },
		{ "[]:80", 0, EINVAL, "missing address inside '[]'" },
		{ "[192.0.2.1]:80", 0, EINVAL, "brackets are only for IPv6" },
		{ "[[::1]]:80", 0, EINVAL, "brackets" },
		{ "[fe80::1%eth0]:51820", 0, EINVAL, "zone ids" },
		{ "[::1/128]:80", 0, EINVAL, "not a prefix" },
		{ "[1::2::3]:80", 0, EINVAL, "'::' may appear only once" },
		{ "192.0.2.1/32:80", 0, EINVAL, "not a prefix" },
		{ "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:655350", 0, EINVAL, "too long" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++)
		expect_endpoint_bad(cases[i].in, cases[i].code, cases[i].want);
	expect_endpoint_bad(NULL, EINVAL, "missing endpoint");
}

static void test_endpoint_parse_n(void **state)
{
	static const char nul_inside[] = "192.0.2.1:80\0001";
	struct nx_addr a;
	uint16_t port;
	struct nx_err err;
	int rc;

	(void)state;
	rc = nx_endpoint_parse_n(nul_inside, sizeof(nul_inside) - 1, &a, &port, &err);
	check_rejection("endpoint_n", "192.0.2.1:80\\01", rc, &err, EINVAL,
			"endpoint contains a NUL byte at offset 12");
	assert_int_equal(nx_endpoint_parse_n("192.0.2.1:8080", 12, &a, &port, &err), 0);
	assert_int_equal(port, 80);
}

/* ---- sockaddr ---- */

static void test_sockaddr(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct nx_addr a;
	struct nx_addr b;
	socklen_t len = 0;
	uint16_t port = 0;

	(void)state;
	a = must_addr("192.0.2.1");
	assert_int_equal(nx_addr_to_sockaddr(&a, 51820, &ss, &len), 0);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(sin->sin_port, htons(51820));
	assert_int_equal(sin->sin_addr.s_addr, htonl(0xc0000201));
	assert_int_equal(nx_addr_from_sockaddr(&ss, &b, &port), 0);
	assert_true(nx_addr_eq(&a, &b));
	assert_int_equal(port, 51820);

	a = must_addr("2001:db8::1");
	assert_int_equal(nx_addr_to_sockaddr(&a, 1, &ss, &len), 0);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(sin6->sin6_port, htons(1));
	assert_int_equal(sin6->sin6_scope_id, 0);
	assert_int_equal(sin6->sin6_flowinfo, 0);
	assert_memory_equal(&sin6->sin6_addr, &a.v6, 16);
	assert_int_equal(nx_addr_to_sockaddr(&a, 65535, &ss, NULL), 0);
	assert_int_equal(nx_addr_from_sockaddr(&ss, &b, &port), 0);
	assert_true(nx_addr_eq(&a, &b));
	assert_int_equal(port, 65535);
	assert_int_equal(nx_addr_from_sockaddr(&ss, &b, NULL), 0);

	/* scope id is not carried */
	sin6->sin6_scope_id = 3;
	assert_int_equal(nx_addr_from_sockaddr(&ss, &b, NULL), 0);
	assert_true(nx_addr_eq(&a, &b));

	memset(&a, 0, sizeof(a));
	assert_int_equal(nx_addr_to_sockaddr(&a, 1, &ss, &len), -EAFNOSUPPORT);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	b = must_addr("10.0.0.1");
	assert_int_equal(nx_addr_from_sockaddr(&ss, &b, &port), -EAFNOSUPPORT);
	assert_true(nx_addr_eq(
		&b, &(struct nx_addr){ .family = AF_INET, .v4.s_addr = htonl(0x0a000001) }));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_parse_good),
		cmocka_unit_test(test_addr_parse_bad),
		cmocka_unit_test(test_addr_parse_n),
		cmocka_unit_test(test_prefix_parse_good),
		cmocka_unit_test(test_prefix_parse_bad),
		cmocka_unit_test(test_prefix_parse_n),
		cmocka_unit_test(test_prefix_roundtrip),
		cmocka_unit_test(test_prefix_strict),
		cmocka_unit_test(test_prefix_normalize),
		cmocka_unit_test(test_prefix_host_default),
		cmocka_unit_test(test_containment_v4),
		cmocka_unit_test(test_containment_v6),
		cmocka_unit_test(test_containment_examples),
		cmocka_unit_test(test_family_mixing),
		cmocka_unit_test(test_cmp_and_sort),
		cmocka_unit_test(test_format_edges),
		cmocka_unit_test(test_endpoint_good),
		cmocka_unit_test(test_endpoint_bad),
		cmocka_unit_test(test_endpoint_parse_n),
		cmocka_unit_test(test_sockaddr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
