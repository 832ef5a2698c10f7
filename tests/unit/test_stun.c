/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lib/stun: the RFC 5769 test vectors (FINGERPRINT checked, MESSAGE-INTEGRITY
 * stepped over), builder/decoder round trips, the classifier, and a table of malformed
 * messages that must each be refused with a message saying what is wrong.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/stun.h"

#define assert_err_contains(e, sub)                                              \
	do {                                                                     \
		assert_true((e).msg[0] != '\0');                                 \
		if (!strstr((e).msg, (sub)))                                     \
			fail_msg("message \"%s\" lacks \"%s\"", (e).msg, (sub)); \
	} while (0)

/* RFC 5769 §2.1: Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
 * MESSAGE-INTEGRITY and FINGERPRINT. */
static const uint8_t rfc5769_request[] = {
	0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
	0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e,
	0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24,
	0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1,
	0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68,
	0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c,
	0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5,
	0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
};

/* RFC 5769 §2.2: success response, 192.0.2.1 port 32853. */
static const uint8_t rfc5769_ipv4_response[] = {
	0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
	0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74,
	0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01,
	0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99,
	0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b,
	0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};

/* RFC 5769 §2.3: success response, 2001:db8:1234:5678:11:2233:4455:6677 port 32853. */
static const uint8_t rfc5769_ipv6_response[] = {
	0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
	0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74,
	0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02,
	0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5,
	0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6,
	0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
	0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
};

/* RFC 5769 §2.4: request with long-term credentials (USERNAME, NONCE, REALM,
 * MESSAGE-INTEGRITY last, no FINGERPRINT). */
static const uint8_t rfc5769_long_term_request[] = {
	0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72,
	0xc0, 0x29, 0xda, 0x41, 0x2e, 0x00, 0x06, 0x00, 0x12, 0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88,
	0xe3, 0x83, 0xaa, 0xe3, 0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00, 0x00,
	0x15, 0x00, 0x1c, 0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39, 0x35, 0x34, 0x64, 0x36,
	0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54, 0x76, 0x79, 0x36, 0x34, 0x73,
	0x41, 0x00, 0x14, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72,
	0x67, 0x00, 0x00, 0x08, 0x00, 0x14, 0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e, 0x02,
	0xb8, 0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2, 0x8c, 0xa8, 0x96, 0x66,
};

static const uint8_t rfc5769_txid[NX_STUN_TXID_LEN] = {
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
};

/* The transaction id of the hand-made messages below. */
#define TXID "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c"
static const uint8_t test_txid[NX_STUN_TXID_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
/* A header: type and length as two-byte literals. */
#define HDR(type, len) type len "\x21\x12\xa4\x42" TXID

static struct nx_stun_addr stun_addr(const char *ip, uint16_t port)
{
	struct nx_stun_addr a;

	memset(&a, 0, sizeof(a));
	assert_int_equal(nx_addr_parse(ip, &a.addr, NULL), 0);
	a.port = port;
	return a;
}

static void assert_stun_addr_equal(const struct nx_stun_addr *got, const char *ip, uint16_t port)
{
	char buf[NX_ENDPOINT_STRLEN], want[NX_ENDPOINT_STRLEN];
	struct nx_stun_addr w = stun_addr(ip, port);

	if (!nx_addr_eq(&got->addr, &w.addr) || got->port != port)
		fail_msg("mapped %s, expected %s",
			 nx_endpoint_format(&got->addr, got->port, buf, sizeof(buf)),
			 nx_endpoint_format(&w.addr, port, want, sizeof(want)));
}

static void assert_text_equal(const uint8_t *p, size_t n, const char *want)
{
	assert_int_equal(n, strlen(want));
	assert_memory_equal(p, want, n);
}

/* --- RFC 5769 ------------------------------------------------------------------------- */

static void test_rfc5769_request(void **state)
{
	struct nx_stun_msg msg;
	struct nx_err err = { "" };

	(void)state;
	assert_true(nx_stun_is_stun(rfc5769_request, sizeof(rfc5769_request)));
	assert_int_equal(
		nx_stun_decode_request(rfc5769_request, sizeof(rfc5769_request), &msg, &err), 0);
	assert_int_equal(msg.type, NX_STUN_BINDING_REQUEST);
	assert_memory_equal(msg.txid, rfc5769_txid, NX_STUN_TXID_LEN);
	assert_true(msg.has_software);
	assert_text_equal(msg.software, msg.software_len, "STUN test client");
	assert_true(msg.has_integrity);
	assert_true(msg.has_fingerprint);
	assert_int_equal(msg.n_unknown_required, 0);
	assert_false(msg.has_xor_mapped);
	assert_false(msg.has_mapped);
	assert_false(msg.has_error);
}

static void test_rfc5769_ipv4_response(void **state)
{
	struct nx_stun_addr mapped;
	struct nx_stun_msg msg;
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(
		nx_stun_decode(rfc5769_ipv4_response, sizeof(rfc5769_ipv4_response), &msg, &err),
		0);
	assert_int_equal(msg.type, NX_STUN_BINDING_SUCCESS);
	assert_true(msg.has_fingerprint);
	assert_true(msg.has_integrity);
	/* "test vector" is 11 bytes; its padding byte is a space, which must not count. */
	assert_text_equal(msg.software, msg.software_len, "test vector");
	assert_true(msg.has_xor_mapped);
	assert_stun_addr_equal(&msg.xor_mapped, "192.0.2.1", 32853);

	assert_int_equal(nx_stun_parse_binding_response(rfc5769_ipv4_response,
							sizeof(rfc5769_ipv4_response), rfc5769_txid,
							&mapped, &err),
			 0);
	assert_stun_addr_equal(&mapped, "192.0.2.1", 32853);
}

static void test_rfc5769_ipv6_response(void **state)
{
	struct nx_stun_addr mapped;
	struct nx_stun_msg msg;
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(
		nx_stun_decode(rfc5769_ipv6_response, sizeof(rfc5769_ipv6_response), &msg, &err),
		0);
	assert_true(msg.has_fingerprint);
	assert_true(msg.has_integrity);
	assert_stun_addr_equal(&msg.xor_mapped, "2001:db8:1234:5678:11:2233:4455:6677", 32853);

	assert_int_equal(nx_stun_parse_binding_response(rfc5769_ipv6_response,
							sizeof(rfc5769_ipv6_response), rfc5769_txid,
							&mapped, &err),
			 0);
	assert_stun_addr_equal(&mapped, "2001:db8:1234:5678:11:2233:4455:6677", 32853);
}

static void test_rfc5769_long_term_request(void **state)
{
	struct nx_stun_msg msg;
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(nx_stun_decode_request(rfc5769_long_term_request,
						sizeof(rfc5769_long_term_request), &msg, &err),
			 0);
	assert_true(msg.has_integrity);
	assert_false(msg.has_fingerprint);
	assert_int_equal(msg.n_unknown_required, 0);
}

/* Any changed bit of a vector breaks its FINGERPRINT, or its shape — except in the type of
 * FINGERPRINT itself, which then becomes another attribute. */
static void test_rfc5769_tampered(void **state)
{
	uint8_t buf[sizeof(rfc5769_ipv4_response)];
	struct nx_stun_msg msg;
	struct nx_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++) {
		if (i == sizeof(buf) - 8 || i == sizeof(buf) - 7)
			continue;
		memcpy(buf, rfc5769_ipv4_response, sizeof(buf));
		buf[i] ^= 0x01;
		err.msg[0] = '\0';
		assert_int_equal(nx_stun_decode(buf, sizeof(buf), &msg, &err), -EBADMSG);
		assert_true(err.msg[0] != '\0');
	}
	memcpy(buf, rfc5769_ipv4_response, sizeof(buf));
	buf[30] ^= 0x20; /* in SOFTWARE */
	assert_int_equal(nx_stun_decode(buf, sizeof(buf), &msg, &err), -EBADMSG);
	assert_err_contains(err, "FINGERPRINT 0xc07d4c96 does not match");
}

/* --- round trips ----------------------------------------------------------------------- */

static void test_request_round_trip(void **state)
{
	uint8_t buf[NX_STUN_BUILD_MAX], txid[NX_STUN_TXID_LEN], txid2[NX_STUN_TXID_LEN];
	struct nx_stun_msg msg;
	struct nx_err err = { "" };
	int len;

	(void)state;
	len = nx_stun_build_binding_request(buf, sizeof(buf), "nexd 1.0", txid);
	assert_int_equal(len, 20 + 12 + 8);
	assert_true(nx_stun_is_stun(buf, (size_t)len));
	assert_int_equal(nx_stun_decode_request(buf, (size_t)len, &msg, &err), 0);
	assert_memory_equal(msg.txid, txid, NX_STUN_TXID_LEN);
	assert_text_equal(msg.software, msg.software_len, "nexd 1.0");
	assert_true(msg.has_fingerprint);

	/* Without SOFTWARE; a fresh transaction id each time. */
	len = nx_stun_build_binding_request(buf, sizeof(buf), NULL, txid2);
	assert_int_equal(len, 20 + 8);
	assert_int_equal(nx_stun_decode_request(buf, (size_t)len, &msg, &err), 0);
	assert_false(msg.has_software);
	assert_memory_not_equal(txid, txid2, NX_STUN_TXID_LEN);
}

static void test_success_round_trip(void **state)
{
	static const struct {
		const char *ip;
		uint16_t port;
	} cases[] = {
		{ "127.0.0.1", 40000 },
		{ "203.0.113.2", 1 },
		{ "0.0.0.0", 65535 },
		{ "255.255.255.255", 3478 },
		{ "::1", 51820 },
		{ "2001:db8::42", 8443 },
		{ "::ffff:192.0.2.1", 443 },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0x2112 },
	};
	uint8_t buf[NX_STUN_BUILD_MAX];
	struct nx_stun_addr a, mapped;
	struct nx_stun_msg msg;
	struct nx_err err = { "" };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int len;

		a = stun_addr(cases[i].ip, cases[i].port);
		len = nx_stun_build_binding_success(buf, sizeof(buf), test_txid, &a, "nexsrv");
		assert_true(len > 0);
		assert_true(nx_stun_is_stun(buf, (size_t)len));
		assert_int_equal(
			nx_stun_parse_binding_response(buf, (size_t)len, test_txid, &mapped, &err),
			0);
		assert_stun_addr_equal(&mapped, cases[i].ip, cases[i].port);
		assert_int_equal(nx_stun_decode(buf, (size_t)len, &msg, &err), 0);
		assert_int_equal(msg.type, NX_STUN_BINDING_SUCCESS);
		assert_true(msg.has_fingerprint);
		assert_text_equal(msg.software, msg.software_len, "nexsrv");
		/* Only the XORed form goes out. */
		assert_false(msg.has_mapped);
		assert_int_equal(len, 20 + (a.addr.family == AF_INET ? 12 : 24) + 12 + 8);
	}
}

static void test_error_round_trip(void **state)
{
	static const uint16_t unknown[] = { 0x0003, 0x7fff, 0x0042 };
	uint8_t buf[NX_STUN_BUILD_MAX];
	struct nx_stun_addr mapped;
	struct nx_stun_msg msg;
	struct nx_err err = { "" };
	int len;

	(void)state;
	len = nx_stun_build_binding_error(buf, sizeof(buf), test_txid, 420, NULL, unknown, 3,
					  "nexsrv");
	assert_true(len > 0);
	assert_int_equal(nx_stun_decode(buf, (size_t)len, &msg, &err), 0);
	assert_int_equal(msg.type, NX_STUN_BINDING_ERROR);
	assert_true(msg.has_error);
	assert_int_equal(msg.error_code, 420);
	assert_text_equal(msg.error_reason, msg.error_reason_len, "Unknown Attribute");
	assert_true(msg.has_unknown_attrs);
	assert_int_equal(msg.n_unknown_attrs, 3);
	assert_memory_equal(msg.unknown_attrs, unknown, sizeof(unknown));
	/* The unknown types are listed, not present: the error itself needs no 420. */
	assert_int_equal(msg.n_unknown_required, 0);

	assert_int_equal(nx_stun_parse_binding_response(buf, (size_t)len, test_txid, &mapped, &err),
			 -EPROTO);
	assert_err_contains(err, "420 \"Unknown Attribute\"");

	/* Own reason, no list, code with a number part. */
	len = nx_stun_build_binding_error(buf, sizeof(buf), test_txid, 599, "busy\nnow", NULL, 0,
					  NULL);
	assert_true(len > 0);
	assert_int_equal(nx_stun_decode(buf, (size_t)len, &msg, &err), 0);
	assert_int_equal(msg.error_code, 599);
	assert_false(msg.has_unknown_attrs);
	assert_int_equal(nx_stun_parse_binding_response(buf, (size_t)len, test_txid, &mapped, &err),
			 -EPROTO);
	assert_err_contains(err, "599 \"busy?now\"");
}

/* --- requests and responses the decoder must tell apart ------------------------------- */

static void test_unknown_attributes(void **state)
{
	/* CHANGE-REQUEST (RFC 5780) is comprehension-required and not known here. */
	static const uint8_t change_request[] = HDR("\x00\x01", "\x00\x10") "\x00\x03\x00\x04"
									    "\x00\x00\x00\x06"
									    "\x00\x03\x00\x04"
									    "\x00\x00\x00\x00";
	/* An unknown comprehension-optional attribute is fine. */
	static const uint8_t optional[] = HDR("\x00\x01", "\x00\x08") "\xc0\x57\x00\x04"
								      "abcd";
	/* After MESSAGE-INTEGRITY everything but FINGERPRINT and -SHA256 is ignored,
	 * even what would otherwise be refused. */
	static const uint8_t after_mi[] = HDR("\x00\x01", "\x00\x2c") "\x00\x08\x00\x14"
								      "0123456789abcdefghij"
								      "\x00\x03\x00\x04"
								      "\x00\x00\x00\x06"
								      "\x00\x20\x00\x08"
								      "\x00\x07\x00\x00"
								      "\x00\x00\x00\x00";
	struct nx_stun_msg msg;
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(nx_stun_decode(change_request, sizeof(change_request) - 1, &msg, &err), 0);
	assert_int_equal(msg.n_unknown_required, 1);
	assert_int_equal(msg.unknown_required[0], 0x0003);
	assert_int_equal(
		nx_stun_decode_request(change_request, sizeof(change_request) - 1, &msg, &err),
		-ENOTSUP);
	assert_err_contains(err, "attribute 0x0003");
	assert_int_equal(msg.n_unknown_required, 1);

	assert_int_equal(nx_stun_decode_request(optional, sizeof(optional) - 1, &msg, &err), 0);
	assert_int_equal(msg.n_unknown_required, 0);

	assert_int_equal(nx_stun_decode_request(after_mi, sizeof(after_mi) - 1, &msg, &err), 0);
	assert_true(msg.has_integrity);
	assert_int_equal(msg.n_unknown_required, 0);
	assert_false(msg.has_xor_mapped);
}

static void test_not_a_binding_request(void **state)
{
	static const uint8_t indication[] = HDR("\x00\x11", "\x00\x00");
	static const uint8_t allocate[] = HDR("\x00\x03", "\x00\x00");
	static const uint8_t success[] = HDR("\x01\x01", "\x00\x00");
	struct nx_stun_msg msg;
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(nx_stun_decode_request(indication, 20, &msg, &err), -ENOMSG);
	assert_err_contains(err, "Binding indication is not a Binding request");
	assert_int_equal(nx_stun_decode_request(allocate, 20, &msg, &err), -ENOMSG);
	assert_err_contains(err, "method 0x003 request");
	assert_int_equal(nx_stun_decode_request(success, 20, &msg, &err), -ENOMSG);
	assert_err_contains(err, "Binding success response");
}

static void test_response_checks(void **state)
{
	static const uint8_t other_txid[NX_STUN_TXID_LEN] = { 0 };
	/* An RFC 3489 server answers with MAPPED-ADDRESS only: 192.0.2.7:4242. */
	static const uint8_t legacy[] = HDR("\x01\x01", "\x00\x0c") "\x00\x01\x00\x08"
								    "\x00\x01\x10\x92"
								    "\xc0\x00\x02\x07";
	static const uint8_t empty_success[] = HDR("\x01\x01", "\x00\x00");
	static const uint8_t empty_error[] = HDR("\x01\x11", "\x00\x00");
	static const uint8_t unknown_required[] = HDR("\x01\x01", "\x00\x14") "\x00\x20\x00\x08"
									      "\x00\x01\x31\x33"
									      "\xe1\x12\xa6\x43"
									      "\x00\x77\x00\x04"
									      "abcd";
	/* Both: XOR-MAPPED-ADDRESS (10.0.0.1:80) wins over MAPPED-ADDRESS. */
	static const uint8_t both[] = HDR("\x01\x01", "\x00\x18") "\x00\x01\x00\x08"
								  "\x00\x01\x10\x92"
								  "\xc0\x00\x02\x07"
								  "\x00\x20\x00\x08"
								  "\x00\x01\x21\x42"
								  "\x2b\x12\xa4\x43";
	uint8_t req[NX_STUN_BUILD_MAX], txid[NX_STUN_TXID_LEN];
	struct nx_stun_addr mapped;
	struct nx_err err = { "" };
	int len;

	(void)state;
	assert_int_equal(nx_stun_parse_binding_response(legacy, sizeof(legacy) - 1, test_txid,
							&mapped, &err),
			 0);
	assert_stun_addr_equal(&mapped, "192.0.2.7", 4242);
	assert_int_equal(
		nx_stun_parse_binding_response(both, sizeof(both) - 1, test_txid, &mapped, &err),
		0);
	assert_stun_addr_equal(&mapped, "10.0.0.1", 80);

	assert_int_equal(nx_stun_parse_binding_response(legacy, sizeof(legacy) - 1, other_txid,
							&mapped, &err),
			 -ESRCH);
	assert_err_contains(err, "another transaction");
	assert_int_equal(
		nx_stun_parse_binding_response(empty_success, 20, test_txid, &mapped, &err),
		-EBADMSG);
	assert_err_contains(err, "without XOR-MAPPED-ADDRESS or MAPPED-ADDRESS");
	assert_int_equal(nx_stun_parse_binding_response(empty_error, 20, test_txid, &mapped, &err),
			 -EBADMSG);
	assert_err_contains(err, "without ERROR-CODE");
	assert_int_equal(nx_stun_parse_binding_response(unknown_required,
							sizeof(unknown_required) - 1, test_txid,
							&mapped, &err),
			 -ENOTSUP);
	assert_err_contains(err, "0x0077");

	/* Our own request echoed back is not a response. */
	len = nx_stun_build_binding_request(req, sizeof(req), NULL, txid);
	assert_true(len > 0);
	assert_int_equal(nx_stun_parse_binding_response(req, (size_t)len, txid, &mapped, &err),
			 -ENOMSG);
	assert_err_contains(err, "Binding request is not a Binding response");
}

static void test_duplicates_first_wins(void **state)
{
	/* Two XOR-MAPPED-ADDRESS: 10.0.0.1:80, then 192.0.2.1:32853. */
	static const uint8_t dup[] = HDR("\x01\x01", "\x00\x18") "\x00\x20\x00\x08"
								 "\x00\x01\x21\x42"
								 "\x2b\x12\xa4\x43"
								 "\x00\x20\x00\x08"
								 "\x00\x01\xa1\x47"
								 "\xe1\x12\xa6\x43";
	struct nx_stun_msg msg;
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(nx_stun_decode(dup, sizeof(dup) - 1, &msg, &err), 0);
	assert_stun_addr_equal(&msg.xor_mapped, "10.0.0.1", 80);
}

/* --- malformed messages ---------------------------------------------------------------- */

#define RAW(s) (const uint8_t *)(s), sizeof(s) - 1

static const struct bad_case {
	const char *name;
	const uint8_t *data;
	size_t len;
	const char *why;
} bad_cases[] = {
	{ "empty", RAW(""), "0 bytes is shorter than the 20-byte STUN header" },
	{ "truncated header", (const uint8_t *)HDR("\x00\x01", "\x00\x00"), 19,
	  "19 bytes is shorter than the 20-byte STUN header" },
	{ "first bits set", RAW(HDR("\x40\x01", "\x00\x00")), "first two bits are not zero" },
	{ "bad cookie",
	  RAW("\x00\x01\x00\x00"
	      "\x21\x12\xa4\x43" TXID),
	  "magic cookie 0x2112a443 is not 0x2112a442" },
	{ "RFC 3489 header",
	  RAW("\x00\x01\x00\x00"
	      "\x00\x00\x00\x00" TXID),
	  "magic cookie 0x00000000" },
	{ "length not a multiple of 4", RAW(HDR("\x00\x01", "\x00\x02") "\x00\x00"),
	  "message length 2 is not a multiple of 4" },
	{ "length beyond the datagram", RAW(HDR("\x00\x01", "\x00\x08") "\x80\x22\x00\x00"),
	  "message length 8 does not match the 4 bytes after the header" },
	{ "bytes after the message", RAW(HDR("\x00\x01", "\x00\x00") "\x00\x00\x00\x00"),
	  "message length 0 does not match the 4 bytes" },
	{ "attribute overruns",
	  RAW(HDR("\x00\x01", "\x00\x08") "\x80\x22\x00\x08"
					  "abcd"),
	  "attribute 0x8022 (SOFTWARE) of 8 bytes at offset 20 overruns the message (4 bytes "
	  "left)" },
	{ "padding overruns",
	  RAW(HDR("\x00\x01", "\x00\x08") "\x80\x22\x00\x05"
					  "abcd"),
	  "of 5 bytes at offset 20 overruns" },
	{ "unknown attribute overruns", RAW(HDR("\x00\x01", "\x00\x04") "\x00\x77\x00\x01"),
	  "attribute 0x0077 of 1 bytes at offset 20 overruns" },
	{ "bad address family",
	  RAW(HDR("\x01\x01", "\x00\x0c") "\x00\x20\x00\x08"
					  "\x00\x03\x00\x00"
					  "\x00\x00\x00\x00"),
	  "XOR-MAPPED-ADDRESS: unknown address family 0x03" },
	{ "MAPPED-ADDRESS family 0",
	  RAW(HDR("\x01\x01", "\x00\x0c") "\x00\x01\x00\x08"
					  "\x00\x00\x00\x00"
					  "\x00\x00\x00\x00"),
	  "MAPPED-ADDRESS: unknown address family 0x00" },
	{ "XOR-MAPPED-ADDRESS IPv4 of 12 bytes",
	  RAW(HDR("\x01\x01", "\x00\x10") "\x00\x20\x00\x0c"
					  "\x00\x01\x00\x00"
					  "\x00\x00\x00\x00"
					  "\x00\x00\x00\x00"),
	  "XOR-MAPPED-ADDRESS of 12 bytes: an IPv4 address needs 8" },
	{ "XOR-MAPPED-ADDRESS IPv6 of 8 bytes",
	  RAW(HDR("\x01\x01", "\x00\x0c") "\x00\x20\x00\x08"
					  "\x00\x02\x00\x00"
					  "\x00\x00\x00\x00"),
	  "XOR-MAPPED-ADDRESS of 8 bytes: an IPv6 address needs 20" },
	{ "XOR-MAPPED-ADDRESS of 2 bytes",
	  RAW(HDR("\x01\x01", "\x00\x08") "\x00\x20\x00\x02"
					  "\x00\x01\x00\x00"),
	  "XOR-MAPPED-ADDRESS of 2 bytes is too short" },
	{ "FINGERPRINT of 8 bytes",
	  RAW(HDR("\x00\x01", "\x00\x0c") "\x80\x28\x00\x08"
					  "\x00\x00\x00\x00"
					  "\x00\x00\x00\x00"),
	  "FINGERPRINT of 8 bytes: must be 4" },
	{ "bad FINGERPRINT",
	  RAW(HDR("\x00\x01", "\x00\x08") "\x80\x28\x00\x04"
					  "\x00\x00\x00\x00"),
	  "FINGERPRINT 0x00000000 does not match the message" },
	{ "MESSAGE-INTEGRITY of 4 bytes",
	  RAW(HDR("\x00\x01", "\x00\x08") "\x00\x08\x00\x04"
					  "\x00\x00\x00\x00"),
	  "MESSAGE-INTEGRITY of 4 bytes: must be 20" },
	{ "MESSAGE-INTEGRITY-SHA256 of 12 bytes",
	  RAW(HDR("\x00\x01", "\x00\x10") "\x00\x1c\x00\x0c"
					  "0123456789ab"),
	  "MESSAGE-INTEGRITY-SHA256 of 12 bytes" },
	{ "ERROR-CODE class 2",
	  RAW(HDR("\x01\x11", "\x00\x08") "\x00\x09\x00\x04"
					  "\x00\x00\x02\x00"),
	  "ERROR-CODE class 2 is outside 3-6" },
	{ "ERROR-CODE number 100",
	  RAW(HDR("\x01\x11", "\x00\x08") "\x00\x09\x00\x04"
					  "\x00\x00\x04\x64"),
	  "ERROR-CODE number 100 exceeds 99" },
	{ "ERROR-CODE of 2 bytes",
	  RAW(HDR("\x01\x11", "\x00\x08") "\x00\x09\x00\x02"
					  "\x00\x00\x00\x00"),
	  "ERROR-CODE of 2 bytes is shorter than 4" },
	{ "UNKNOWN-ATTRIBUTES of odd length",
	  RAW(HDR("\x01\x11", "\x00\x08") "\x00\x0a\x00\x03"
					  "\x00\x03\x00\x00"),
	  "UNKNOWN-ATTRIBUTES of odd length 3" },
};

static void test_malformed(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct nx_stun_addr mapped;
		struct nx_stun_msg msg;
		struct nx_err err = { "" };
		uint8_t *copy = malloc(c->len ? c->len : 1);
		int rc;

		/* A heap copy of exactly the datagram's size: a read past it is an ASan error. */
		assert_non_null(copy);
		memcpy(copy, c->data, c->len);
		rc = nx_stun_decode(copy, c->len, &msg, &err);
		if (rc != -EBADMSG || !strstr(err.msg, c->why))
			fail_msg("%s: rc %d, message \"%s\", expected -EBADMSG and \"%s\"", c->name,
				 rc, err.msg, c->why);
		err.msg[0] = '\0';
		assert_int_equal(nx_stun_decode_request(copy, c->len, &msg, &err), -EBADMSG);
		assert_err_contains(err, c->why);
		err.msg[0] = '\0';
		assert_int_equal(
			nx_stun_parse_binding_response(copy, c->len, test_txid, &mapped, &err),
			-EBADMSG);
		assert_err_contains(err, c->why);
		/* Without an nx_err, the same code. */
		assert_int_equal(nx_stun_decode(copy, c->len, &msg, NULL), -EBADMSG);
		free(copy);
	}
}

/* CRC-32 the slow way, independent of the library's. */
static uint32_t ref_crc32(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int b = 0; b < 8; b++)
			crc = (crc >> 1) ^ (crc & 1 ? 0xedb88320u : 0);
	}
	return ~crc;
}

static void test_after_fingerprint(void **state)
{
	uint8_t buf[20 + 8 + 8];
	uint32_t fp;
	struct nx_stun_msg msg;
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(ref_crc32((const uint8_t *)"123456789", 9), 0xcbf43926u);
	/* A correct FINGERPRINT (over the header, whose length covers all), then SOFTWARE. */
	memcpy(buf, HDR("\x00\x01", "\x00\x10"), 20);
	fp = ref_crc32(buf, 20) ^ NX_STUN_FINGERPRINT_XOR;
	memcpy(buf + 20, "\x80\x28\x00\x04", 4);
	buf[24] = (uint8_t)(fp >> 24);
	buf[25] = (uint8_t)(fp >> 16);
	buf[26] = (uint8_t)(fp >> 8);
	buf[27] = (uint8_t)fp;
	memcpy(buf + 28,
	       "\x80\x22\x00\x04"
	       "late",
	       8);
	assert_int_equal(nx_stun_decode(buf, sizeof(buf), &msg, &err), -EBADMSG);
	assert_err_contains(err, "attribute 0x8022 (SOFTWARE) follows FINGERPRINT");

	/* Cut before the SOFTWARE, the same FINGERPRINT no longer matches: the CRC covers the
	 * length field. */
	buf[3] = 0x08;
	assert_int_equal(nx_stun_decode(buf, 28, &msg, &err), -EBADMSG);
	assert_err_contains(err, "does not match");
	fp = ref_crc32(buf, 20) ^ NX_STUN_FINGERPRINT_XOR;
	buf[24] = (uint8_t)(fp >> 24);
	buf[25] = (uint8_t)(fp >> 16);
	buf[26] = (uint8_t)(fp >> 8);
	buf[27] = (uint8_t)fp;
	assert_int_equal(nx_stun_decode(buf, 28, &msg, &err), 0);
	assert_true(msg.has_fingerprint);
}

static void test_long_software(void **state)
{
	uint8_t buf[NX_STUN_BUILD_MAX + 8], txid[NX_STUN_TXID_LEN];
	char text[NX_STUN_TEXT_MAX + 2];
	struct nx_stun_msg msg;
	struct nx_err err = { "" };
	int len;

	(void)state;
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(nx_stun_build_binding_request(buf, sizeof(buf), text, txid), -EINVAL);
	text[NX_STUN_TEXT_MAX] = '\0';
	len = nx_stun_build_binding_request(buf, sizeof(buf), text, txid);
	assert_true(len > 0);
	assert_int_equal(nx_stun_decode_request(buf, (size_t)len, &msg, &err), 0);
	assert_int_equal(msg.software_len, NX_STUN_TEXT_MAX);

	/* 764 bytes on the wire: build with a hole and patch the length by hand. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, HDR("\x00\x01", "\x03\x00"), 20);
	memcpy(buf + 20, "\x80\x22\x02\xfc", 4);
	memset(buf + 24, 'x', 764);
	assert_int_equal(nx_stun_decode(buf, 20 + 768, &msg, &err), -EBADMSG);
	assert_err_contains(err, "SOFTWARE of 764 bytes exceeds 763");
}

/* --- builders' refusals ------------------------------------------------------------------ */

static void test_build_errors(void **state)
{
	uint8_t full[NX_STUN_BUILD_MAX], txid[NX_STUN_TXID_LEN];
	struct nx_stun_addr a = stun_addr("192.0.2.1", 3478);
	struct nx_stun_addr none;
	uint16_t many[NX_STUN_MAX_UNKNOWN + 1] = { 0 };
	int need;

	(void)state;
	memset(&none, 0, sizeof(none));
	need = nx_stun_build_binding_success(full, sizeof(full), test_txid, &a, "nexsrv");
	assert_true(need > 0);
	/* Every smaller buffer is refused, and never written past (ASan: exact heap size). */
	for (int size = 0; size < need; size++) {
		uint8_t *buf = malloc(size ? (size_t)size : 1);

		assert_non_null(buf);
		assert_int_equal(
			nx_stun_build_binding_success(buf, (size_t)size, test_txid, &a, "nexsrv"),
			-ENOSPC);
		assert_int_equal(nx_stun_build_binding_request(buf, (size_t)size, "nexsrv", txid),
				 size >= 20 + 12 + 8 ? 20 + 12 + 8 : -ENOSPC);
		free(buf);
	}
	assert_int_equal(nx_stun_build_binding_success(full, sizeof(full), test_txid, &none, NULL),
			 -EAFNOSUPPORT);
	assert_int_equal(nx_stun_build_binding_error(full, sizeof(full), test_txid, 299, NULL, NULL,
						     0, NULL),
			 -EINVAL);
	assert_int_equal(nx_stun_build_binding_error(full, sizeof(full), test_txid, 700, NULL, NULL,
						     0, NULL),
			 -EINVAL);
	assert_int_equal(nx_stun_build_binding_error(full, sizeof(full), test_txid, 420, NULL, many,
						     NX_STUN_MAX_UNKNOWN + 1, NULL),
			 -EINVAL);
	assert_int_equal(nx_stun_build_binding_error(full, sizeof(full), test_txid, 420, NULL, NULL,
						     1, NULL),
			 -EINVAL);
	assert_true(nx_stun_build_binding_error(full, sizeof(full), test_txid, 420, NULL, many,
						NX_STUN_MAX_UNKNOWN, NULL) > 0);
}

/* --- classifier and type helpers -------------------------------------------------------- */

static void test_is_stun(void **state)
{
	uint8_t wg[148];

	(void)state;
	assert_true(nx_stun_is_stun(RAW(HDR("\x00\x01", "\x00\x00"))));
	assert_true(nx_stun_is_stun(rfc5769_ipv6_response, sizeof(rfc5769_ipv6_response)));
	assert_false(nx_stun_is_stun(NULL, 20));
	assert_false(nx_stun_is_stun(RAW(HDR("\x00\x01", "\x00\x00")) - 1));
	assert_false(nx_stun_is_stun(RAW(HDR("\x80\x01", "\x00\x00"))));
	assert_false(nx_stun_is_stun(RAW("\x00\x01\x00\x00"
					 "\x00\x00\x00\x00" TXID)));
	assert_false(nx_stun_is_stun(RAW(HDR("\x00\x01", "\x00\x04"))));
	assert_false(nx_stun_is_stun(RAW(HDR("\x00\x01", "\x00\x02") "\x00\x00")));
	/* A WireGuard handshake initiation whose sender index happens to be the cookie. */
	memset(wg, 0xa5, sizeof(wg));
	memcpy(wg,
	       "\x01\x00\x00\x00"
	       "\x21\x12\xa4\x42",
	       8);
	assert_false(nx_stun_is_stun(wg, sizeof(wg)));
	/* A WireGuard transport message of 32 bytes, same bad luck. */
	memcpy(wg,
	       "\x04\x00\x00\x00"
	       "\x21\x12\xa4\x42",
	       8);
	assert_false(nx_stun_is_stun(wg, 32));
}

static void test_types(void **state)
{
	char buf[48];

	(void)state;
	assert_int_equal(nx_stun_type(NX_STUN_METHOD_BINDING, NX_STUN_CLASS_REQUEST),
			 NX_STUN_BINDING_REQUEST);
	assert_int_equal(nx_stun_type(NX_STUN_METHOD_BINDING, NX_STUN_CLASS_INDICATION),
			 NX_STUN_BINDING_INDICATION);
	assert_int_equal(nx_stun_type(NX_STUN_METHOD_BINDING, NX_STUN_CLASS_SUCCESS),
			 NX_STUN_BINDING_SUCCESS);
	assert_int_equal(nx_stun_type(NX_STUN_METHOD_BINDING, NX_STUN_CLASS_ERROR),
			 NX_STUN_BINDING_ERROR);
	for (uint16_t m = 0; m < 0x1000; m++)
		for (int c = 0; c < 4; c++) {
			uint16_t t = nx_stun_type(m, (enum nx_stun_class)c);

			assert_true(t < 0x4000);
			assert_int_equal(nx_stun_type_method(t), m);
			assert_int_equal(nx_stun_type_class(t), c);
		}
	assert_string_equal(nx_stun_type_format(0x0001, buf, sizeof(buf)), "Binding request");
	assert_string_equal(nx_stun_type_format(0x0111, buf, sizeof(buf)),
			    "Binding error response");
	assert_string_equal(nx_stun_type_format(0x0113, buf, sizeof(buf)),
			    "method 0x003 error response");
	assert_string_equal(nx_stun_type_format(0xc001, buf, sizeof(buf)), "type 0xc001");
	assert_string_equal(nx_stun_attr_name(0x0020), "XOR-MAPPED-ADDRESS");
	assert_string_equal(nx_stun_attr_name(0x8028), "FINGERPRINT");
	assert_null(nx_stun_attr_name(0x0003));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc5769_request),
		cmocka_unit_test(test_rfc5769_ipv4_response),
		cmocka_unit_test(test_rfc5769_ipv6_response),
		cmocka_unit_test(test_rfc5769_long_term_request),
		cmocka_unit_test(test_rfc5769_tampered),
		cmocka_unit_test(test_request_round_trip),
		cmocka_unit_test(test_success_round_trip),
		cmocka_unit_test(test_error_round_trip),
		cmocka_unit_test(test_unknown_attributes),
		cmocka_unit_test(test_not_a_binding_request),
		cmocka_unit_test(test_response_checks),
		cmocka_unit_test(test_duplicates_first_wins),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_after_fingerprint),
		cmocka_unit_test(test_long_software),
		cmocka_unit_test(test_build_errors),
		cmocka_unit_test(test_is_stun),
		cmocka_unit_test(test_types),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
