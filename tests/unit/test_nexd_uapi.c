/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for nexd's UAPI text protocol: replies as wireguard-go writes them (IPv6
 * endpoints, thousands of peers), the exact text of set requests, and a table of malformed
 * replies that must each be refused with a message naming what is wrong.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/strutil.h"
#include "nexd/nexd_wg.h"

#define assert_err_contains(e, sub)                                              \
	do {                                                                     \
		assert_true((e).msg[0] != '\0');                                 \
		if (!strstr((e).msg, (sub)))                                     \
			fail_msg("message \"%s\" lacks \"%s\"", (e).msg, (sub)); \
	} while (0)

#define KEY_A "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a041"
#define KEY_B "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1"
#define KEY_C "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2"
#define KEY_Z "0000000000000000000000000000000000000000000000000000000000000000"

/* A reply from wireguard-go v0.0.20220316, as read from its socket. */
static const char real_reply[] = "private_key=" KEY_A "\n"
				 "listen_port=51999\n"
				 "fwmark=51820\n"
				 "public_key=" KEY_B "\n"
				 "preshared_key=" KEY_Z "\n"
				 "protocol_version=1\n"
				 "endpoint=[2001:db8::1]:51820\n"
				 "last_handshake_time_sec=1700000000\n"
				 "last_handshake_time_nsec=123456789\n"
				 "tx_bytes=18446744073709551615\n"
				 "rx_bytes=4096\n"
				 "persistent_keepalive_interval=25\n"
				 "allowed_ip=10.1.0.0/16\n"
				 "allowed_ip=fd00::/64\n"
				 "public_key=" KEY_C "\n"
				 "preshared_key=" KEY_Z "\n"
				 "protocol_version=1\n"
				 "endpoint=192.0.2.1:1\n"
				 "last_handshake_time_sec=0\n"
				 "last_handshake_time_nsec=0\n"
				 "tx_bytes=0\n"
				 "rx_bytes=0\n"
				 "persistent_keepalive_interval=0\n"
				 "errno=0\n"
				 "\n";

static void key_from_hex(const char *hex, struct nx_wgkey *k)
{
	assert_int_equal(nx_wgkey_from_hex(hex, k, NULL), 0);
}

static void assert_key(const struct nx_wgkey *k, const char *hex)
{
	char got[NX_WG_KEY_HEX_LEN];

	nx_wgkey_to_hex(k, got);
	assert_string_equal(got, hex);
}

static void assert_prefix(const struct nx_prefix *p, const char *want)
{
	char buf[NX_PREFIX_STRLEN];

	assert_string_equal(nx_prefix_format(p, buf, sizeof(buf)), want);
}

static void assert_endpoint(const struct nexd_wg_peer *peer, const char *want)
{
	char buf[NX_ENDPOINT_STRLEN];

	assert_string_equal(
		nx_endpoint_format(&peer->endpoint, peer->endpoint_port, buf, sizeof(buf)), want);
}

static void test_parse_real(void **state)
{
	struct nexd_wg_device dev;
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(nexd_uapi_parse_get(real_reply, strlen(real_reply), &dev, &err), 0);
	assert_true(dev.has_private_key);
	assert_key(&dev.private_key, KEY_A);
	assert_int_equal(dev.listen_port, 51999);
	assert_int_equal(dev.n_peers, 2);

	assert_key(&dev.peers[0].public_key, KEY_B);
	assert_int_equal(dev.peers[0].endpoint.family, AF_INET6);
	assert_endpoint(&dev.peers[0], "[2001:db8::1]:51820");
	assert_int_equal(dev.peers[0].last_handshake_s, 1700000000);
	assert_true(dev.peers[0].tx_bytes == UINT64_MAX);
	assert_int_equal(dev.peers[0].rx_bytes, 4096);
	assert_int_equal(dev.peers[0].keepalive_s, 25);
	assert_int_equal(dev.peers[0].n_allowed_ips, 2);
	assert_prefix(&dev.peers[0].allowed_ips[0], "10.1.0.0/16");
	assert_prefix(&dev.peers[0].allowed_ips[1], "fd00::/64");

	assert_key(&dev.peers[1].public_key, KEY_C);
	assert_endpoint(&dev.peers[1], "192.0.2.1:1");
	assert_int_equal(dev.peers[1].keepalive_s, 0);
	assert_int_equal(dev.peers[1].n_allowed_ips, 0);
	assert_int_equal(dev.peers[1].last_handshake_s, 0);
	nexd_wg_device_clear(&dev);
	assert_int_equal(dev.n_peers, 0);
	assert_null(dev.peers);
}

/* A fresh wireguard-go: no key, no port, no peers; and a peer with no endpoint yet. */
static void test_parse_sparse(void **state)
{
	static const char empty[] = "errno=0\n\n";
	static const char no_endpoint[] = "public_key=" KEY_B "\n"
					  "protocol_version=1\n"
					  "allowed_ip=0.0.0.0/0\n"
					  "allowed_ip=::/0\n"
					  "errno=-0\n\n";
	static const char no_endpoint_ok[] = "public_key=" KEY_B "\n"
					     "protocol_version=1\n"
					     "allowed_ip=0.0.0.0/0\n"
					     "allowed_ip=::/0\n"
					     "errno=0\n\n";
	struct nexd_wg_device dev;
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(nexd_uapi_parse_get(empty, strlen(empty), &dev, &err), 0);
	assert_false(dev.has_private_key);
	assert_int_equal(dev.listen_port, 0);
	assert_int_equal(dev.n_peers, 0);
	nexd_wg_device_clear(&dev);

	assert_int_equal(nexd_uapi_parse_get(no_endpoint, strlen(no_endpoint), &dev, &err),
			 -EINVAL);
	assert_err_contains(err, "-0");

	assert_int_equal(nexd_uapi_parse_get(no_endpoint_ok, strlen(no_endpoint_ok), &dev, &err),
			 0);
	assert_int_equal(dev.n_peers, 1);
	assert_int_equal(dev.peers[0].endpoint.family, AF_UNSPEC);
	assert_int_equal(dev.peers[0].n_allowed_ips, 2);
	assert_true(nx_prefix_is_default(&dev.peers[0].allowed_ips[0]));
	assert_true(nx_prefix_is_default(&dev.peers[0].allowed_ips[1]));
	nexd_wg_device_clear(&dev);
}

/* 10,000 peers with IPv6 endpoints and two allowed IPs each (a few megabytes of reply). */
static void test_parse_many(void **state)
{
	enum { N = 10000 };
	struct nx_sbuf b;
	struct nexd_wg_device dev;
	struct nx_err err = { "" };

	(void)state;
	nx_sbuf_init(&b, NULL, 0);
	nx_sbuf_printf(&b, "private_key=%s\nlisten_port=51820\n", KEY_A);
	for (unsigned i = 0; i < N; i++) {
		nx_sbuf_printf(&b, "public_key=%060x%04x\n", 0xabcu, i);
		nx_sbuf_printf(&b, "preshared_key=%s\nprotocol_version=1\n", KEY_Z);
		nx_sbuf_printf(&b, "endpoint=[2001:db8::%x]:%u\n", i + 1, 1024 + i);
		nx_sbuf_printf(&b,
			       "last_handshake_time_sec=%u\nlast_handshake_time_nsec=0\n"
			       "tx_bytes=%u\nrx_bytes=%u\npersistent_keepalive_interval=25\n",
			       i, 2 * i, 3 * i);
		nx_sbuf_printf(&b, "allowed_ip=100.64.%u.%u/32\nallowed_ip=fd00:%x::/64\n", i / 256,
			       i % 256, i + 1);
	}
	nx_sbuf_puts(&b, "errno=0\n\n");
	assert_false(nx_sbuf_truncated(&b));

	assert_int_equal(nexd_uapi_parse_get(nx_sbuf_str(&b), nx_sbuf_len(&b), &dev, &err), 0);
	assert_int_equal(dev.n_peers, N);
	for (unsigned i = 0; i < N; i += 997) {
		char hex[NX_WG_KEY_HEX_LEN], ep[NX_ENDPOINT_STRLEN], pfx[NX_PREFIX_STRLEN];
		const struct nexd_wg_peer *p = &dev.peers[i];

		snprintf(hex, sizeof(hex), "%060x%04x", 0xabcu, i);
		assert_key(&p->public_key, hex);
		snprintf(ep, sizeof(ep), "[2001:db8::%x]:%u", i + 1, 1024 + i);
		assert_endpoint(p, ep);
		assert_int_equal(p->last_handshake_s, i);
		assert_int_equal(p->tx_bytes, 2 * i);
		assert_int_equal(p->rx_bytes, 3 * i);
		assert_int_equal(p->n_allowed_ips, 2);
		snprintf(pfx, sizeof(pfx), "100.64.%u.%u/32", i / 256, i % 256);
		assert_prefix(&p->allowed_ips[0], pfx);
		snprintf(pfx, sizeof(pfx), "fd00:%x::/64", i + 1);
		assert_prefix(&p->allowed_ips[1], pfx);
	}
	nexd_wg_device_clear(&dev);
	nx_sbuf_fini(&b);
}

static void test_format_set(void **state)
{
	static const char want[] = "set=1\n"
				   "private_key=" KEY_A "\n"
				   "listen_port=51820\n"
				   "replace_peers=true\n"
				   "public_key=" KEY_B "\n"
				   "endpoint=[2001:db8::1]:51820\n"
				   "persistent_keepalive_interval=25\n"
				   "replace_allowed_ips=true\n"
				   "allowed_ip=10.1.0.0/16\n"
				   "allowed_ip=fd00::/64\n"
				   "public_key=" KEY_C "\n"
				   "remove=true\n"
				   "public_key=" KEY_Z "\n"
				   "update_only=true\n"
				   "endpoint=192.0.2.1:1\n"
				   "persistent_keepalive_interval=0\n"
				   "\n";
	struct nexd_wg_device dev = { 0 };
	struct nexd_wg_peer *p;
	struct nx_prefix pfx;
	struct nx_err err = { "" };
	char *text;
	size_t len;

	(void)state;
	key_from_hex(KEY_A, &dev.private_key);
	dev.has_private_key = true;
	dev.listen_port = 51820;
	dev.replace_peers = true;

	p = nexd_wg_device_add_peer(&dev);
	key_from_hex(KEY_B, &p->public_key);
	assert_int_equal(
		nx_endpoint_parse("[2001:db8::1]:51820", &p->endpoint, &p->endpoint_port, NULL), 0);
	p->keepalive_s = 25;
	p->flags = NEXD_WG_PEER_REPLACE_ALLOWED_IPS;
	assert_int_equal(nx_prefix_parse("10.1.0.0/16", &pfx, 0, NULL), 0);
	assert_int_equal(nexd_wg_peer_add_allowed_ip(p, &pfx), 0);
	assert_int_equal(nx_prefix_parse("fd00::/64", &pfx, 0, NULL), 0);
	assert_int_equal(nexd_wg_peer_add_allowed_ip(p, &pfx), 0);

	/* Removal carries nothing else, whatever else the peer holds. */
	p = nexd_wg_device_add_peer(&dev);
	key_from_hex(KEY_C, &p->public_key);
	p->flags = NEXD_WG_PEER_REMOVE;
	p->keepalive_s = 10;
	assert_int_equal(nexd_wg_peer_add_allowed_ip(p, &pfx), 0);

	p = nexd_wg_device_add_peer(&dev);
	p->flags = NEXD_WG_PEER_UPDATE_ONLY;
	assert_int_equal(nx_endpoint_parse("192.0.2.1:1", &p->endpoint, &p->endpoint_port, NULL),
			 0);

	assert_int_equal(nexd_uapi_format_set(&dev, &text, &len, &err), 0);
	assert_string_equal(text, want);
	assert_int_equal(len, strlen(want));
	free(text);
	nexd_wg_device_clear(&dev);

	/* An empty change is an empty set. */
	assert_int_equal(nexd_uapi_format_set(&dev, &text, &len, &err), 0);
	assert_string_equal(text, "set=1\n\n");
	assert_int_equal(len, 7);
	free(text);
}

static void test_format_set_rejects(void **state)
{
	struct nexd_wg_device dev = { 0 };
	struct nexd_wg_peer *p;
	struct nx_err err = { "" };
	char *text;
	size_t len;

	(void)state;
	p = nexd_wg_device_add_peer(&dev);
	assert_int_equal(nx_addr_parse("192.0.2.7", &p->endpoint, NULL), 0);
	assert_int_equal(nexd_uapi_format_set(&dev, &text, &len, &err), -EINVAL);
	assert_null(text);
	assert_err_contains(err, "192.0.2.7 without a port");

	p->endpoint_port = 9;
	p->flags = 0x80;
	assert_int_equal(nexd_uapi_format_set(&dev, &text, &len, &err), -EINVAL);
	assert_err_contains(err, "unknown flags 0x80");

	p->flags = 0;
	p->endpoint.family = AF_UNIX;
	assert_int_equal(nexd_uapi_format_set(&dev, &text, &len, &err), -EAFNOSUPPORT);
	assert_err_contains(err, "endpoint family");
	nexd_wg_device_clear(&dev);
}

static void test_parse_errno(void **state)
{
	static const struct {
		const char *reply;
		int rc;
		const char *msg;
	} cases[] = {
		{ "errno=0\n\n", 0, NULL },
		{ "errno=-22\n\n", -EINVAL, "errno=22" },
		{ "errno=5\n\n", -EIO, "errno=5 (" },
		{ "errno=0\n", -EPROTO, "not \"errno=N\"" },
		{ "errno=0\n\nx", -EPROTO, "not \"errno=N\"" },
		{ "listen_port=1\nerrno=0\n\n", -EPROTO, "listen_port=1" },
		{ "errno=zz\n\n", -EINVAL, "zz" },
		{ "errno=99999\n\n", -ERANGE, "99999" },
		{ "", -EPROTO, "not \"errno=N\"" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nx_err err = { "" };
		int rc = nexd_uapi_parse_errno(cases[i].reply, strlen(cases[i].reply), &err);

		if (rc != cases[i].rc)
			fail_msg("case %zu: rc %d, expected %d (%s)", i, rc, cases[i].rc, err.msg);
		if (cases[i].msg)
			assert_err_contains(err, cases[i].msg);
	}
}

static void test_parse_rejects(void **state)
{
	static const struct {
		const char *reply;
		int rc;
		const char *msg;
	} cases[] = {
		{ "public_key=zz" KEY_B "\nerrno=0\n\n", -EINVAL, "line 1: hex key must be 64" },
		{ "public_key=" KEY_B "\nallowed_ip=10.0.0.0/8\n", -EPROTO, "ends without errno=" },
		{ "", -EPROTO, "ends without errno=" },
		{ "errno=5\n\n", -EIO, "line 1: the WireGuard device reported errno=5" },
		{ "private_key=" KEY_A "\nerrno=-98\n\n", -EADDRINUSE, "line 2:" },
		{ "frobnicate=1\nerrno=0\n\n", -EINVAL, "line 1: unknown key \"frobnicate\"" },
		{ "public_key=" KEY_B
		  "\nallowed_ip=10.0.0.0/8aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "\nerrno=0\n\n",
		  -EINVAL, "line 2 is longer than 256 bytes" },
		{ "public_key=" KEY_B "\nendpoint=192.0.2.1\nerrno=0\n\n", -EINVAL,
		  "line 2: \"192.0.2.1\"" },
		{ "public_key=" KEY_B "\nendpoint=[2001:db8::1]\nerrno=0\n\n", -EINVAL, "line 2:" },
		{ "public_key=" KEY_B "\nendpoint=example.com:51820\nerrno=0\n\n", -EINVAL,
		  "line 2:" },
		{ "public_key=" KEY_B "\nallowed_ip=10.0.0.0/33\nerrno=0\n\n", -ERANGE,
		  "line 2: \"10.0.0.0/33\"" },
		{ "public_key=" KEY_B "\nallowed_ip=fd00::/129\nerrno=0\n\n", -ERANGE, "129" },
		{ "errno=0\n", -EPROTO, "ends without the final empty line" },
		{ "errno=0\n\nlisten_port=1\n", -EPROTO,
		  "line 3: data after the final empty line" },
		{ "errno=0\nerrno=0\n\n", -EPROTO, "line 2: expected the final empty line" },
		{ "\n", -EPROTO, "line 1: empty line before errno=" },
		{ "listen_port=1\n\nerrno=0\n\n", -EPROTO, "line 2: empty line before errno=" },
		{ "endpoint=192.0.2.1:5\nerrno=0\n\n", -EINVAL, "endpoint before any public_key" },
		{ "public_key=" KEY_B "\nlisten_port=1\nerrno=0\n\n", -EINVAL,
		  "line 2: device key listen_port after the first peer" },
		{ "listen_port=1\nlisten_port=2\nerrno=0\n\n", -EINVAL,
		  "line 2: listen_port given twice" },
		{ "public_key=" KEY_B "\nrx_bytes=1\nrx_bytes=1\nerrno=0\n\n", -EINVAL,
		  "line 3: rx_bytes given twice" },
		{ "listen_port=65536\nerrno=0\n\n", -ERANGE, "line 1:" },
		{ "listen_port=01\nerrno=0\n\n", -EINVAL, "leading zeros" },
		{ "listen_port=\nerrno=0\n\n", -EINVAL, "line 1:" },
		{ "listen_port=+1\nerrno=0\n\n", -EINVAL, "line 1:" },
		{ "public_key=" KEY_B "\nrx_bytes=-1\nerrno=0\n\n", -EINVAL, "line 2:" },
		{ "public_key=" KEY_B "\ntx_bytes=18446744073709551616\nerrno=0\n\n", -ERANGE,
		  "line 2:" },
		{ "public_key=" KEY_B "\nlast_handshake_time_nsec=1000000000\nerrno=0\n\n", -ERANGE,
		  "line 2:" },
		{ "public_key=" KEY_B "\nprotocol_version=2\nerrno=0\n\n", -EPROTONOSUPPORT,
		  "line 2: only protocol version 1" },
		{ "public_key=" KEY_B "\npersistent_keepalive_interval=70000\nerrno=0\n\n", -ERANGE,
		  "line 2:" },
		{ "listen_port 1\nerrno=0\n\n", -EINVAL,
		  "line 1: \"listen_port 1\" is not key=value" },
		{ "listen_port=1\r\nerrno=0\n\n", -EINVAL, "line 1:" },
		{ "errno=0", -EPROTO, "line 1 has no newline" },
		{ "errno=\n\n", -EINVAL, "line 1:" },
		{ "private_key=" KEY_A "0\nerrno=0\n\n", -EINVAL, "line 1: hex key must be 64" },
		{ "public_key=" KEY_B "\npreshared_key=xyz\nerrno=0\n\n", -EINVAL, "line 2:" },
		{ "fwmark=4294967296\nerrno=0\n\n", -ERANGE, "line 1:" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nexd_wg_device dev;
		struct nx_err err = { "" };
		int rc = nexd_uapi_parse_get(cases[i].reply, strlen(cases[i].reply), &dev, &err);

		if (rc != cases[i].rc)
			fail_msg("case %zu: rc %d, expected %d (%s)", i, rc, cases[i].rc, err.msg);
		assert_err_contains(err, cases[i].msg);
		/* Refused means nothing half-read is left behind. */
		assert_int_equal(dev.n_peers, 0);
		assert_null(dev.peers);
		assert_false(dev.has_private_key);
	}
}

/* Bytes a C string cannot carry: a NUL inside a line. */
static void test_parse_nul(void **state)
{
	static const char reply[] = "listen_port=1\0\nerrno=0\n\n";
	struct nexd_wg_device dev;
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(nexd_uapi_parse_get(reply, sizeof(reply) - 1, &dev, &err), -EINVAL);
	assert_err_contains(err, "line 1 contains a NUL byte");
	/* The length given is what counts: the text is read no further. */
	assert_int_equal(nexd_uapi_parse_get(real_reply, 20, &dev, &err), -EPROTO);
	assert_err_contains(err, "line 1 has no newline");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_real),	   cmocka_unit_test(test_parse_sparse),
		cmocka_unit_test(test_parse_many),	   cmocka_unit_test(test_format_set),
		cmocka_unit_test(test_format_set_rejects), cmocka_unit_test(test_parse_errno),
		cmocka_unit_test(test_parse_rejects),	   cmocka_unit_test(test_parse_nul),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
