/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for nexd/nexd_device: the controller's watch lines, devices and VPCs as nexsrv
 * renders them, and everything a broken or hostile controller could send instead, each
 * refused with a message that names the field.
 */
#include "config.h"

#include <arpa/inet.h>
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

#include "lib/jsonutil.h"
#include "lib/strutil.h"
#include "nexd/nexd_device.h"

#define assert_err_contains(e, sub)                                              \
	do {                                                                     \
		assert_true((e).msg[0] != '\0');                                 \
		if (!strstr((e).msg, (sub)))                                     \
			fail_msg("message \"%s\" lacks \"%s\"", (e).msg, (sub)); \
	} while (0)

#define KEY_A  "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
#define KEY_B  "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08="
#define DEV_ID "5b0c4cf6-6e7e-4b6d-9c43-0c8f7e1b2a11"
#define VPC_ID "694aa002-5d19-495e-980b-3d8fd508ea10"
#define ORG_ID "0d4c3b8e-8d0e-4f4e-9a43-1d3b3f4c5e6f"

/* A device as NEXSRV_DEVICE_JSON renders it (fields in its order). */
#define DEVICE_JSON                                                                            \
	"{\"id\":\"" DEV_ID "\",\"owner_id\":\"" ORG_ID "\",\"vpc_id\":\"" VPC_ID "\","        \
	"\"public_key\":\"" KEY_A "\",\"hostname\":\"bbac3081d5e8\",\"os\":\"linux\","         \
	"\"endpoints\":[{\"source\":\"local\",\"address\":\"172.17.0.3:58664\"},"              \
	"{\"source\":\"stun:stun1.l.google.com:19302\",\"address\":\"[2001:db8::1]:58664\"}]," \
	"\"ipv4_tunnel_ips\":[{\"address\":\"100.64.0.5\",\"cidr\":\"100.64.0.0/10\"}],"       \
	"\"ipv6_tunnel_ips\":[{\"address\":\"200::5\",\"cidr\":\"200::/64\"}],"                \
	"\"allowed_ips\":[\"100.64.0.5/32\",\"200::5/128\"],"                                  \
	"\"advertise_cidrs\":[\"172.16.42.0/24\",\"fd00::/64\"],\"relay\":false,"              \
	"\"symmetric_nat\":true,\"security_group_id\":\"" VPC_ID "\",\"online\":true,"         \
	"\"online_at\":\"2024-05-01T10:00:00Z\",\"revision\":42}"

#define VPC_JSON                                                                      \
	"{\"id\":\"" VPC_ID "\",\"organization_id\":\"" ORG_ID "\",\"description\":"  \
	"\"default vpc\",\"ipv4_cidr\":\"100.64.0.0/10\",\"ipv6_cidr\":\"200::/64\"," \
	"\"private_cidr\":false,\"revision\":7}"

/* The document the parsers read, and the text its tokens point into. */
static struct nx_jdoc doc;
static char *doc_text;

/* obj as a document of its own text: the root's token (0), valid until the next call. */
static size_t doc_of(const struct json_object *obj)
{
	free(doc_text);
	doc_text = nx_json_to_string((struct json_object *)obj, NX_JSON_PLAIN);
	assert_non_null(doc_text);
	assert_int_equal(
		nx_jdoc_parse(&doc, doc_text, strlen(doc_text), NX_JSON_DEFAULT_DEPTH, NULL), 0);
	return 0;
}

static int free_doc(void **state)
{
	(void)state;
	nx_jdoc_fini(&doc);
	free(doc_text);
	doc_text = NULL;
	return 0;
}

static struct json_object *parse_json(const char *s)
{
	struct nx_err err = { "" };
	struct json_object *obj = nx_json_parse(s, strlen(s), NX_JSON_DEFAULT_DEPTH, &err);

	if (!obj)
		fail_msg("test JSON does not parse: %s", err.msg);
	return obj;
}

/* DEVICE_JSON with field key replaced by the JSON value val (or removed when val is NULL). */
static struct json_object *device_with(const char *key, const char *val)
{
	struct json_object *obj = parse_json(DEVICE_JSON);

	if (val && strcmp(val, "null") == 0)
		json_object_object_add(obj, key, NULL);
	else if (val)
		json_object_object_add(obj, key, parse_json(val));
	else
		json_object_object_del(obj, key);
	return obj;
}

static int parse_device_with(const char *key, const char *val, struct nexd_device_info *d,
			     struct nx_err *err)
{
	struct json_object *obj = device_with(key, val);
	int rc = nexd_device_parse(&doc, doc_of(obj), false, d, err);

	json_object_put(obj);
	return rc;
}

static void key_of(const char *b64, struct nx_wgkey *k)
{
	assert_int_equal(nx_wgkey_from_base64(b64, k, NULL), 0);
}

static void vpc_default(struct nexd_vpc_info *vpc)
{
	struct json_object *obj = parse_json(VPC_JSON);

	assert_int_equal(nexd_vpc_parse(&doc, doc_of(obj), vpc, NULL), 0);
	json_object_put(obj);
}

/* --- watch lines --------------------------------------------------------------------------- */

static void test_event_heartbeat(void **state)
{
	struct nexd_event ev;
	const char *lines[] = { "", "\n", "\r\n" };

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		assert_int_equal(nexd_event_parse(&doc, lines[i], strlen(lines[i]), &ev, NULL), 0);
		assert_int_equal(ev.type, NEXD_EV_HEARTBEAT);
		assert_int_equal(ev.value, 0);
	}
	assert_int_equal(nexd_event_parse(&doc, NULL, 0, &ev, NULL), 0);
	assert_int_equal(ev.type, NEXD_EV_HEARTBEAT);
}

static void test_event_change_device(void **state)
{
	const char *line = "{\"kind\":\"device\",\"type\":\"change\",\"value\":" DEVICE_JSON "}\n";
	struct nexd_device_info d;
	struct nx_err err = { "" };
	struct nexd_event ev;
	char buf[NX_PREFIX_STRLEN];

	(void)state;
	assert_int_equal(nexd_event_parse(&doc, line, strlen(line), &ev, &err), 0);
	assert_int_equal(ev.type, NEXD_EV_CHANGE);
	assert_string_equal(ev.kind, "device");
	assert_true(ev.value != 0);
	assert_int_equal(nexd_device_parse(&doc, ev.value, false, &d, &err), 0);

	assert_string_equal(d.id, DEV_ID);
	assert_string_equal(d.vpc_id, VPC_ID);
	assert_string_equal(d.hostname, "bbac3081d5e8");
	assert_string_equal(nx_addr_format(&d.tunnel_ipv4, buf, sizeof(buf)), "100.64.0.5");
	assert_string_equal(nx_addr_format(&d.tunnel_ipv6, buf, sizeof(buf)), "200::5");
	assert_int_equal(d.n_endpoints, 2);
	assert_string_equal(d.endpoints[0].source, "local");
	assert_int_equal(d.endpoints[0].addr.family, AF_INET);
	assert_int_equal(d.endpoints[0].port, 58664);
	assert_string_equal(d.endpoints[1].source, "stun:stun1.l.google.com:19302");
	assert_int_equal(d.endpoints[1].addr.family, AF_INET6);
	assert_string_equal(nx_addr_format(&d.endpoints[1].addr, buf, sizeof(buf)), "2001:db8::1");
	assert_int_equal(d.n_advertise, 2);
	assert_string_equal(nx_prefix_format(&d.advertise[0], buf, sizeof(buf)), "172.16.42.0/24");
	assert_string_equal(nx_prefix_format(&d.advertise[1], buf, sizeof(buf)), "fd00::/64");
	assert_false(d.relay);
	assert_true(d.symmetric_nat);
	assert_true(d.online);
	assert_int_equal(d.revision, 42);
	nexd_device_info_clear(&d);
	assert_null(d.advertise);
	assert_null(d.endpoints);
}

static void test_event_delete_device(void **state)
{
	/* to_jsonb of the row as it was: its own column names and timestamp spelling. */
	const char *line = "{\"kind\":\"device\",\"type\":\"delete\",\"value\":{\"id\":\"" DEV_ID
			   "\",\"vpc_id\":\"" VPC_ID "\",\"organization_id\":\"" ORG_ID
			   "\",\"owner_id\":\"" ORG_ID "\",\"public_key\":\"" KEY_B
			   "\",\"hostname\":\"h\",\"os\":\"linux\","
			   "\"endpoints\":[],\"ipv4_tunnel_ips\":[],\"ipv6_tunnel_ips\":[],"
			   "\"advertise_cidrs\":[],\"relay\":false,\"symmetric_nat\":false,"
			   "\"security_group_id\":null,\"online\":false,\"online_at\":null,\"reg_"
			   "key_id\":null,"
			   "\"revision\":99,\"created_at\":\"2024-05-01T10:00:00.123456+00:00\","
			   "\"updated_at\":\"2024-05-01T10:00:00.123456+00:00\"}}";
	struct nexd_device_info d;
	struct nx_err err = { "" };
	struct nexd_event ev;
	struct nx_wgkey kb;
	struct json_object *min;

	(void)state;
	assert_int_equal(nexd_event_parse(&doc, line, strlen(line), &ev, &err), 0);
	assert_int_equal(ev.type, NEXD_EV_DELETE);
	assert_string_equal(ev.kind, "device");
	assert_int_equal(nexd_device_parse(&doc, ev.value, true, &d, &err), 0);
	key_of(KEY_B, &kb);
	assert_true(nx_wgkey_eq(&d.public_key, &kb));
	assert_string_equal(d.id, DEV_ID);
	assert_int_equal(d.revision, 99);
	nexd_device_info_clear(&d);

	/* Only id and revision are needed for a delete... */
	min = parse_json("{\"id\":\"" DEV_ID "\",\"revision\":3}");
	assert_int_equal(nexd_device_parse(&doc, doc_of(min), true, &d, &err), 0);
	assert_true(nx_wgkey_is_zero(&d.public_key));
	/* ...but not for a change. */
	assert_int_equal(nexd_device_parse(&doc, doc_of(min), false, &d, &err), -ENOENT);
	assert_err_contains(err, "device.vpc_id: is missing");
	json_object_put(min);

	min = parse_json("{\"revision\":3}");
	assert_int_equal(nexd_device_parse(&doc, doc_of(min), true, &d, &err), -ENOENT);
	assert_err_contains(err, "device.id: is missing");
	json_object_put(min);
}

static void test_event_vpc(void **state)
{
	const char *line = "{\"kind\":\"vpc\",\"type\":\"change\",\"value\":" VPC_JSON "}";
	struct nexd_vpc_info vpc;
	struct nx_err err = { "" };
	struct nexd_event ev;
	char buf[NX_PREFIX_STRLEN];

	(void)state;
	assert_int_equal(nexd_event_parse(&doc, line, strlen(line), &ev, &err), 0);
	assert_string_equal(ev.kind, "vpc");
	assert_int_equal(nexd_vpc_parse(&doc, ev.value, &vpc, &err), 0);
	assert_string_equal(vpc.id, VPC_ID);
	assert_string_equal(nx_prefix_format(&vpc.ipv4_cidr, buf, sizeof(buf)), "100.64.0.0/10");
	assert_string_equal(nx_prefix_format(&vpc.ipv6_cidr, buf, sizeof(buf)), "200::/64");
	assert_int_equal(vpc.revision, 7);
}

static void test_event_tail_error(void **state)
{
	const char *tail = "{\"kind\":\"device\",\"type\":\"tail\"}\n";
	const char *gone = "{\"type\":\"error\",\"value\":{\"error\":\"the resume point was "
			   "purged: list again\",\"code\":410}}\n";
	const char *other = "{\"kind\":\"security-group\",\"type\":\"change\",\"value\":{\"id\":"
			    "\"x\",\"inbound_rules\":[]}}";
	struct nx_err err = { "" };
	struct nexd_event ev;

	(void)state;
	assert_int_equal(nexd_event_parse(&doc, tail, strlen(tail), &ev, &err), 0);
	assert_int_equal(ev.type, NEXD_EV_TAIL);
	assert_string_equal(ev.kind, "device");
	assert_int_equal(ev.value, 0);

	assert_int_equal(nexd_event_parse(&doc, gone, strlen(gone), &ev, &err), 0);
	assert_int_equal(ev.type, NEXD_EV_ERROR);
	assert_int_equal(ev.error_code, NEXD_EV_ERR_TOO_OLD);
	assert_string_equal(ev.error, "the resume point was purged: list again");
	assert_string_equal(ev.kind, "");

	/* Kinds nexd does not act on still parse: the caller skips them. */
	assert_int_equal(nexd_event_parse(&doc, other, strlen(other), &ev, &err), 0);
	assert_string_equal(ev.kind, "security-group");
}

static void test_event_rejects(void **state)
{
	static const struct {
		const char *line;
		int rc;
		const char *msg;
	} bad[] = {
		{ "{", -EINVAL, "event: " },
		{ "   ", -EINVAL, "event: " },
		{ "{\"type\":\"change\"} x", -EINVAL, "event: " },
		{ "{\"type\":NaN}", -EINVAL, "event: " },
		{ "[1,2]", -EINVAL, "event: must be an object, got an array" },
		{ "\"change\"", -EINVAL, "event: must be an object, got a string" },
		{ "{\"kind\":\"device\"}", -ENOENT, "event.type: is missing" },
		{ "{\"kind\":\"device\",\"type\":7}", -EINVAL,
		  "event.type: must be a string, got an integer" },
		{ "{\"kind\":\"device\",\"type\":\"upsert\"}", -EINVAL,
		  "event.type: \"upsert\" is not one of" },
		{ "{\"type\":\"change\",\"value\":{}}", -ENOENT, "event.kind: is missing" },
		{ "{\"kind\":[],\"type\":\"change\",\"value\":{}}", -EINVAL,
		  "event.kind: must be a string, got an array" },
		{ "{\"kind\":\"device-metadata-and-more-too-long\",\"type\":\"tail\"}", -EINVAL,
		  "event.kind: is 33 bytes long" },
		{ "{\"kind\":\"Dev ice\",\"type\":\"tail\"}", -EINVAL,
		  "event.kind: \"Dev ice\" is not a kind name" },
		{ "{\"kind\":\"device\",\"type\":\"change\"}", -ENOENT, "event.value: is missing" },
		{ "{\"kind\":\"device\",\"type\":\"delete\",\"value\":null}", -ENOENT,
		  "event.value: is missing" },
		{ "{\"kind\":\"device\",\"type\":\"change\",\"value\":[]}", -EINVAL,
		  "event.value: must be an object, got an array" },
		{ "{\"type\":\"error\"}", -ENOENT, "event.value: is missing" },
		{ "{\"type\":\"error\",\"value\":{\"error\":\"x\"}}", -ENOENT,
		  "event.value.code: is missing" },
		{ "{\"type\":\"error\",\"value\":{\"error\":\"x\",\"code\":\"410\"}}", -EINVAL,
		  "event.value.code: must be an integer, got a string" },
		{ "{\"type\":\"error\",\"value\":{\"error\":\"x\",\"code\":99999999999}}", -ERANGE,
		  "event.value.code: 99999999999 is out of range" },
		{ "{\"type\":\"error\",\"value\":{\"error\":1,\"code\":410}}", -EINVAL,
		  "event.value.error: must be a string" },
	};
	struct nexd_event ev;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct nx_err err = { "" };
		int rc = nexd_event_parse(&doc, bad[i].line, strlen(bad[i].line), &ev, &err);

		if (rc != bad[i].rc)
			fail_msg("%s: rc %d, want %d (%s)", bad[i].line, rc, bad[i].rc, err.msg);
		assert_err_contains(err, bad[i].msg);
		assert_int_equal(ev.value, 0);
	}
}

static void test_event_control_in_error(void **state)
{
	const char *line = "{\"type\":\"error\",\"value\":{\"error\":\"a\\u0007b\",\"code\":500}}";
	struct nexd_event ev;

	(void)state;
	assert_int_equal(nexd_event_parse(&doc, line, strlen(line), &ev, NULL), 0);
	assert_string_equal(ev.error, "a?b");
	assert_int_equal(ev.error_code, 500);
}

/* --- devices ------------------------------------------------------------------------------- */

static void test_device_minimal(void **state)
{
	struct json_object *obj = parse_json("{\"id\":\"" DEV_ID "\",\"vpc_id\":\"" VPC_ID
					     "\",\"public_key\":\"" KEY_A "\",\"revision\":0,"
					     "\"future_field\":{\"x\":[1,2]}}");
	struct nexd_device_info d;
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(nexd_device_parse(&doc, doc_of(obj), false, &d, &err), 0);
	assert_int_equal(d.tunnel_ipv4.family, AF_UNSPEC);
	assert_int_equal(d.tunnel_ipv6.family, AF_UNSPEC);
	assert_int_equal(d.n_endpoints, 0);
	assert_int_equal(d.n_advertise, 0);
	assert_string_equal(d.hostname, "");
	nexd_device_info_clear(&d);
	json_object_put(obj);
}

static void test_device_normalizes(void **state)
{
	struct nexd_device_info d;
	struct nx_err err = { "" };
	char buf[NX_PREFIX_STRLEN];

	(void)state;
	/* Host bits cleared; the duplicates that leaves are dropped; upper-case UUIDs lowered. */
	assert_int_equal(parse_device_with("advertise_cidrs",
					   "[\"10.1.2.3/24\",\"10.1.2.0/24\",\"fd00::1/64\","
					   "\"192.0.2.7\"]",
					   &d, &err),
			 0);
	assert_int_equal(d.n_advertise, 3);
	assert_string_equal(nx_prefix_format(&d.advertise[0], buf, sizeof(buf)), "10.1.2.0/24");
	assert_string_equal(nx_prefix_format(&d.advertise[1], buf, sizeof(buf)), "fd00::/64");
	assert_string_equal(nx_prefix_format(&d.advertise[2], buf, sizeof(buf)), "192.0.2.7/32");
	nexd_device_info_clear(&d);

	assert_int_equal(
		parse_device_with("id", "\"5B0C4CF6-6E7E-4B6D-9C43-0C8F7E1B2A11\"", &d, &err), 0);
	assert_string_equal(d.id, DEV_ID);
	nexd_device_info_clear(&d);

	/* null is "not given" for optional fields. */
	assert_int_equal(parse_device_with("endpoints", "null", &d, &err), 0);
	assert_int_equal(d.n_endpoints, 0);
	nexd_device_info_clear(&d);
	assert_int_equal(parse_device_with("security_group_id", "\"\"", &d, &err), 0);
	nexd_device_info_clear(&d);
	assert_int_equal(parse_device_with("online_at", "null", &d, &err), 0);
	nexd_device_info_clear(&d);
}

static void test_device_wrong_types(void **state)
{
	static const struct {
		const char *key;
		const char *val;
		const char *msg;
	} bad[] = {
		{ "id", "17", "device.id: must be a string, got an integer" },
		{ "vpc_id", "[]", "device.vpc_id: must be a string, got an array" },
		{ "owner_id", "{}", "device.owner_id: must be a string, got an object" },
		{ "public_key", "true", "device.public_key: must be a string, got a boolean" },
		{ "hostname", "1.5", "device.hostname: must be a string, got a number" },
		{ "os", "[\"linux\"]", "device.os: must be a string, got an array" },
		{ "endpoints", "{}", "device.endpoints: must be an array, got an object" },
		{ "endpoints", "[\"1.2.3.4:5\"]", "device.endpoints[0]: must be an object" },
		{ "endpoints", "[{\"source\":1,\"address\":\"1.2.3.4:5\"}]",
		  "device.endpoints[0].source: must be a string" },
		{ "endpoints", "[{\"source\":\"local\",\"address\":5}]",
		  "device.endpoints[0].address: must be a string" },
		{ "ipv4_tunnel_ips", "\"100.64.0.5\"",
		  "device.ipv4_tunnel_ips: must be an array, got a string" },
		{ "ipv4_tunnel_ips", "[\"100.64.0.5\"]",
		  "device.ipv4_tunnel_ips[0]: must be an object" },
		{ "ipv4_tunnel_ips", "[{\"address\":false}]",
		  "device.ipv4_tunnel_ips[0].address: must be a string" },
		{ "ipv6_tunnel_ips", "[{\"address\":\"200::5\",\"cidr\":64}]",
		  "device.ipv6_tunnel_ips[0].cidr: must be a string" },
		{ "allowed_ips", "\"100.64.0.5/32\"", "device.allowed_ips: must be an array" },
		{ "allowed_ips", "[32]", "device.allowed_ips[0]: must be a string" },
		{ "advertise_cidrs", "\"10.0.0.0/8\"", "device.advertise_cidrs: must be an array" },
		{ "advertise_cidrs", "[[\"10.0.0.0/8\"]]",
		  "device.advertise_cidrs[0]: must be a string, got an array" },
		{ "relay", "\"false\"", "device.relay: must be a boolean, got a string" },
		{ "symmetric_nat", "0", "device.symmetric_nat: must be a boolean, got an integer" },
		{ "security_group_id", "5", "device.security_group_id: must be a string" },
		{ "online", "null", NULL }, /* null: not given */
		{ "online", "1", "device.online: must be a boolean" },
		{ "online_at", "1714557600", "device.online_at: must be a string" },
		{ "revision", "\"42\"", "device.revision: must be an integer, got a string" },
		{ "revision", "42.0", "device.revision: must be an integer, got a number" },
	};
	struct nexd_device_info d;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct nx_err err = { "" };
		int rc = parse_device_with(bad[i].key, bad[i].val, &d, &err);

		if (!bad[i].msg) {
			assert_int_equal(rc, 0);
			nexd_device_info_clear(&d);
			continue;
		}
		if (rc != -EINVAL)
			fail_msg("%s=%s: rc %d (%s)", bad[i].key, bad[i].val, rc, err.msg);
		assert_err_contains(err, bad[i].msg);
		/* Nothing is left allocated or half-filled. */
		assert_null(d.endpoints);
		assert_null(d.advertise);
		assert_string_equal(d.id, "");
	}
}

static void test_device_rejects(void **state)
{
	static const struct {
		const char *key;
		const char *val; /* NULL: field removed */
		int rc;
		const char *msg;
	} bad[] = {
		{ "id", NULL, -ENOENT, "device.id: is missing" },
		{ "id", "null", -ENOENT, "device.id: is missing" },
		{ "public_key", NULL, -ENOENT, "device.public_key: is missing" },
		{ "revision", NULL, -ENOENT, "device.revision: is missing" },
		{ "id", "\"xyz\"", -EINVAL, "device.id: \"xyz\" is not a UUID" },
		{ "id", "\"5b0c4cf6-6e7e-4b6d-9c43-0c8f7e1b2a1g\"", -EINVAL, "is not a UUID" },
		{ "vpc_id", "\"694aa002-5d19-495e-980b-3d8fd508ea1\"", -EINVAL,
		  "device.vpc_id: \"694aa002-5d19-495e-980b-3d8fd508ea1\" is not a UUID" },
		{ "id", "\"5b0c4cf6\\u00006e7e-4b6d-9c43-0c8f7e1b2a11\"", -EINVAL,
		  "device.id: contains a NUL character" },
		{ "public_key", "\"xyz\"", -EINVAL,
		  "device.public_key: \"xyz\" is not a WireGuard key" },
		{ "public_key", "\"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTm=\"", -EINVAL,
		  "is not a WireGuard key" },
		{ "public_key", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"", -EINVAL,
		  "device.public_key: the all-zero key" },
		{ "revision", "-1", -ERANGE, "device.revision: -1 is negative" },
		{ "revision", "18446744073709551615", -ERANGE,
		  "device.revision: 18446744073709551615 is out of range" },
		{ "endpoints", "[{\"source\":\"local\",\"address\":\"1.2.3.4:70000\"}]", -EINVAL,
		  "device.endpoints[0].address: " },
		{ "endpoints", "[{\"source\":\"local\",\"address\":\"1.2.3.4:0\"}]", -EINVAL,
		  "device.endpoints[0].address: " },
		{ "endpoints",
		  "[{\"source\":\"local\",\"address\":\"1.2.3.4:5\"},{\"source\":\"local\","
		  "\"address\":\"[2001:db8::1]:99999\"}]",
		  -EINVAL, "device.endpoints[1].address: " },
		{ "endpoints", "[{\"source\":\"local\",\"address\":\"example.com:51820\"}]",
		  -EINVAL, "device.endpoints[0].address: " },
		{ "endpoints", "[{\"source\":\"local\",\"address\":\"1.2.3.4\"}]", -EINVAL,
		  "device.endpoints[0].address: " },
		{ "endpoints", "[{\"source\":\"local\"}]", -ENOENT,
		  "device.endpoints[0].address: is missing" },
		{ "endpoints", "[{\"address\":\"1.2.3.4:5\"}]", -ENOENT,
		  "device.endpoints[0].source: is missing" },
		{ "endpoints", "[{\"source\":\"lo\\ncal\",\"address\":\"1.2.3.4:5\"}]", -EINVAL,
		  "device.endpoints[0].source: contains a control character at offset 2" },
		{ "hostname", "\"bad\\u0007host\"", -EINVAL,
		  "device.hostname: contains a control character at offset 3" },
		{ "hostname", "\"bad\\u007fhost\"", -EINVAL,
		  "device.hostname: contains a control character" },
		{ "hostname", "\"line\\nbreak\"", -EINVAL,
		  "device.hostname: contains a control character" },
		{ "ipv4_tunnel_ips", "[{\"address\":\"200::5\"}]", -EINVAL,
		  "device.ipv4_tunnel_ips[0].address: 200::5 is not an IPv4 address" },
		{ "ipv6_tunnel_ips", "[{\"address\":\"100.64.0.5\"}]", -EINVAL,
		  "device.ipv6_tunnel_ips[0].address: 100.64.0.5 is not an IPv6 address" },
		{ "ipv4_tunnel_ips", "[{\"address\":\"100.64.0.256\"}]", -EINVAL,
		  "device.ipv4_tunnel_ips[0].address: " },
		{ "ipv4_tunnel_ips", "[{\"cidr\":\"100.64.0.0/10\"}]", -ENOENT,
		  "device.ipv4_tunnel_ips[0].address: is missing" },
		{ "ipv4_tunnel_ips", "[{\"address\":\"100.64.0.5\",\"cidr\":\"200::/64\"}]",
		  -EINVAL, "device.ipv4_tunnel_ips[0].cidr: 200::/64 is not an IPv4 prefix" },
		{ "advertise_cidrs", "[\"10.0.0.0/33\"]", -EINVAL, "device.advertise_cidrs[0]: " },
		{ "advertise_cidrs", "[\"10.0.0.0/8\",\"fd00::/64 \"]", -EINVAL,
		  "device.advertise_cidrs[1]: " },
		{ "allowed_ips", "[\"100.64.0.5/32\",\"nope\"]", -EINVAL,
		  "device.allowed_ips[1]: " },
		{ "security_group_id", "\"sg-1\"", -EINVAL,
		  "device.security_group_id: \"sg-1\" is not a UUID" },
	};
	struct nexd_device_info d;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct nx_err err = { "" };
		int rc = parse_device_with(bad[i].key, bad[i].val, &d, &err);

		if (rc != bad[i].rc)
			fail_msg("%s=%s: rc %d, want %d (%s)", bad[i].key,
				 bad[i].val ? bad[i].val : "(none)", rc, bad[i].rc, err.msg);
		assert_err_contains(err, bad[i].msg);
		assert_null(d.endpoints);
		assert_null(d.advertise);
	}

	/* Not an object at all. */
	{
		struct json_object *arr = parse_json("[]");
		struct nx_err err = { "" };

		assert_int_equal(nexd_device_parse(&doc, doc_of(arr), false, &d, &err), -EINVAL);
		assert_err_contains(err, "device: must be an object, got an array");
		json_object_put(arr);
	}
}

/* A JSON array of n elements, each the JSON text elem. */
static char *json_list(size_t n, const char *elem)
{
	struct nx_sbuf b;
	char *s;

	nx_sbuf_init(&b, NULL, 0);
	nx_sbuf_puts(&b, "[");
	for (size_t i = 0; i < n; i++)
		nx_sbuf_printf(&b, "%s%s", i ? "," : "", elem);
	nx_sbuf_puts(&b, "]");
	assert_false(nx_sbuf_truncated(&b));
	s = strdup(nx_sbuf_str(&b));
	nx_sbuf_fini(&b);
	assert_non_null(s);
	return s;
}

static void test_device_bounds(void **state)
{
	struct nexd_device_info d;
	struct nx_err err = { "" };
	char *list, name[NEXD_HOSTNAME_MAX + 2];

	(void)state;
	list = json_list(10000, "\"10.0.0.0/24\"");
	assert_int_equal(parse_device_with("advertise_cidrs", list, &d, &err), -EINVAL);
	assert_err_contains(err, "device.advertise_cidrs: has 10000 entries, at most 256");
	free(list);

	list = json_list(NEXD_MAX_ADVERTISE, "\"10.0.0.0/24\"");
	assert_int_equal(parse_device_with("advertise_cidrs", list, &d, &err), 0);
	assert_int_equal(d.n_advertise, 1);
	nexd_device_info_clear(&d);
	free(list);

	list = json_list(NEXD_MAX_ENDPOINTS + 1,
			 "{\"source\":\"local\",\"address\":\"1.2.3.4:5\"}");
	assert_int_equal(parse_device_with("endpoints", list, &d, &err), -EINVAL);
	assert_err_contains(err, "device.endpoints: has 33 entries, at most 32");
	free(list);

	list = json_list(NEXD_MAX_ENDPOINTS, "{\"source\":\"local\",\"address\":\"1.2.3.4:5\"}");
	assert_int_equal(parse_device_with("endpoints", list, &d, &err), 0);
	assert_int_equal(d.n_endpoints, NEXD_MAX_ENDPOINTS);
	nexd_device_info_clear(&d);
	free(list);

	/* hostname: up to 255 bytes. */
	memset(name, 'h', sizeof(name));
	name[0] = '"';
	name[NEXD_HOSTNAME_MAX] = '"';
	name[NEXD_HOSTNAME_MAX + 1] = '\0';
	assert_int_equal(parse_device_with("hostname", name, &d, &err), 0);
	assert_int_equal(strlen(d.hostname), NEXD_HOSTNAME_MAX - 1);
	nexd_device_info_clear(&d);
	name[NEXD_HOSTNAME_MAX] = 'h';
	name[NEXD_HOSTNAME_MAX + 1] = '"';
	list = calloc(1, sizeof(name) + 1);
	assert_non_null(list);
	memcpy(list, name, sizeof(name));
	assert_int_equal(parse_device_with("hostname", list, &d, &err), -EINVAL);
	assert_err_contains(err, "device.hostname: is 256 bytes long, at most 255");
	free(list);

	/* An endpoint source longer than nexd keeps. */
	{
		char eps[NEXD_ENDPOINT_SRC_MAX + 64];

		snprintf(eps, sizeof(eps),
			 "[{\"source\":\"stun:%0300d\",\"address\":\"1.2.3.4:5\"}]", 0);
		assert_int_equal(parse_device_with("endpoints", eps, &d, &err), -EINVAL);
		assert_err_contains(err,
				    "device.endpoints[0].source: is 305 bytes long, at most 300");
	}

	list = json_list(NEXD_MAX_ENDPOINTS + 1, "{\"address\":\"100.64.0.5\"}");
	assert_int_equal(parse_device_with("ipv4_tunnel_ips", list, &d, &err), -EINVAL);
	assert_err_contains(err, "device.ipv4_tunnel_ips: has 33 entries");
	free(list);
}

static void test_device_created(void **state)
{
	struct json_object *obj = parse_json(DEVICE_JSON);
	struct nexd_device_info d;
	struct nx_err err = { "" };
	char token[64];
	char small[8];

	(void)state;
	assert_int_equal(
		nexd_device_parse_created(&doc, doc_of(obj), &d, token, sizeof(token), &err),
		-ENOENT);
	assert_err_contains(err, "device.bearer_token: is missing");
	assert_null(d.endpoints);

	json_object_object_add(obj, "bearer_token", json_object_new_int(5));
	assert_int_equal(
		nexd_device_parse_created(&doc, doc_of(obj), &d, token, sizeof(token), &err),
		-EINVAL);
	assert_err_contains(err, "device.bearer_token: must be a string");

	json_object_object_add(obj, "bearer_token", json_object_new_string("RK:abc"));
	assert_int_equal(
		nexd_device_parse_created(&doc, doc_of(obj), &d, token, sizeof(token), &err),
		-EINVAL);
	assert_err_contains(err, "device.bearer_token: is not a device token");

	json_object_object_add(obj, "bearer_token", json_object_new_string("DT:a b"));
	assert_int_equal(
		nexd_device_parse_created(&doc, doc_of(obj), &d, token, sizeof(token), &err),
		-EINVAL);
	assert_err_contains(err, "device.bearer_token: contains a byte");

	json_object_object_add(
		obj, "bearer_token",
		json_object_new_string("DT:qpCkMmL8F2yWf1hNnS9dJtR4eV7uX0bZ3aG6cI5oK-_"));
	assert_int_equal(
		nexd_device_parse_created(&doc, doc_of(obj), &d, small, sizeof(small), &err),
		-ENOSPC);
	assert_err_contains(err, "device.bearer_token: is 46 bytes long");
	assert_string_equal(small, "");
	assert_null(d.endpoints);

	assert_int_equal(
		nexd_device_parse_created(&doc, doc_of(obj), &d, token, sizeof(token), &err), 0);
	assert_string_equal(token, "DT:qpCkMmL8F2yWf1hNnS9dJtR4eV7uX0bZ3aG6cI5oK-_");
	assert_string_equal(d.id, DEV_ID);
	assert_int_equal(d.n_endpoints, 2);
	nexd_device_info_clear(&d);

	/* A broken device is refused before the token is looked at. */
	json_object_object_add(obj, "public_key", json_object_new_string("xyz"));
	assert_int_equal(
		nexd_device_parse_created(&doc, doc_of(obj), &d, token, sizeof(token), &err),
		-EINVAL);
	assert_err_contains(err, "device.public_key: \"xyz\" is not a WireGuard key");
	assert_string_equal(token, "");
	json_object_put(obj);
}

/* --- the VPC ------------------------------------------------------------------------------- */

static void test_vpc(void **state)
{
	static const struct {
		const char *json;
		int rc;
		const char *msg;
	} cases[] = {
		{ "{\"id\":\"" VPC_ID "\",\"revision\":1}", 0, NULL },
		{ "{\"id\":\"" VPC_ID "\",\"revision\":1,\"ipv4_cidr\":null,\"ipv6_cidr\":null}", 0,
		  NULL },
		{ "{\"revision\":1}", -ENOENT, "vpc.id: is missing" },
		{ "{\"id\":\"vpc-1\",\"revision\":1}", -EINVAL, "vpc.id: \"vpc-1\" is not a UUID" },
		{ "{\"id\":\"" VPC_ID "\"}", -ENOENT, "vpc.revision: is missing" },
		{ "{\"id\":\"" VPC_ID "\",\"revision\":\"1\"}", -EINVAL,
		  "vpc.revision: must be an integer" },
		{ "{\"id\":\"" VPC_ID "\",\"revision\":1,\"ipv4_cidr\":\"200::/64\"}", -EINVAL,
		  "vpc.ipv4_cidr: 200::/64 is not an IPv4 prefix" },
		{ "{\"id\":\"" VPC_ID "\",\"revision\":1,\"ipv6_cidr\":\"10.0.0.0/8\"}", -EINVAL,
		  "vpc.ipv6_cidr: 10.0.0.0/8 is not an IPv6 prefix" },
		{ "{\"id\":\"" VPC_ID "\",\"revision\":1,\"ipv4_cidr\":\"100.64.0.0/33\"}", -EINVAL,
		  "vpc.ipv4_cidr: " },
		{ "{\"id\":\"" VPC_ID "\",\"revision\":1,\"ipv4_cidr\":[\"100.64.0.0/10\"]}",
		  -EINVAL, "vpc.ipv4_cidr: must be a string, got an array" },
		{ "{\"id\":\"" VPC_ID "\",\"revision\":1,\"private_cidr\":\"yes\"}", -EINVAL,
		  "vpc.private_cidr: must be a boolean" },
		{ "{\"id\":\"" VPC_ID "\",\"revision\":1,\"organization_id\":4}", -EINVAL,
		  "vpc.organization_id: must be a string" },
		{ "[]", -EINVAL, "vpc: must be an object, got an array" },
	};
	struct nexd_vpc_info vpc;
	char buf[NX_PREFIX_STRLEN];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct json_object *obj = parse_json(cases[i].json);
		struct nx_err err = { "" };
		int rc = nexd_vpc_parse(&doc, doc_of(obj), &vpc, &err);

		json_object_put(obj);
		if (rc != cases[i].rc)
			fail_msg("%s: rc %d, want %d (%s)", cases[i].json, rc, cases[i].rc,
				 err.msg);
		if (cases[i].msg)
			assert_err_contains(err, cases[i].msg);
		else
			assert_int_equal(vpc.ipv4_cidr.addr.family, AF_UNSPEC);
	}

	/* A pool with host bits is read as its network. */
	{
		struct json_object *obj = parse_json("{\"id\":\"" VPC_ID "\",\"revision\":1,"
						     "\"ipv4_cidr\":\"100.64.1.1/10\"}");

		assert_int_equal(nexd_vpc_parse(&doc, doc_of(obj), &vpc, NULL), 0);
		assert_string_equal(nx_prefix_format(&vpc.ipv4_cidr, buf, sizeof(buf)),
				    "100.64.0.0/10");
		json_object_put(obj);
	}
}

/* --- whether a peer may be installed ------------------------------------------------------- */

static int check_with(const char *key, const char *val, const struct nx_wgkey *self,
		      struct nx_err *err)
{
	struct nexd_vpc_info vpc;
	struct nexd_device_info d;
	int rc;

	vpc_default(&vpc);
	rc = parse_device_with(key, val, &d, err);
	if (rc < 0)
		fail_msg("%s=%s does not parse: %s", key, val, err->msg);
	rc = nexd_device_check(&d, &vpc, self, err);
	nexd_device_info_clear(&d);
	return rc;
}

static void test_check(void **state)
{
	static const struct {
		const char *key;
		const char *val;
		const char *msg; /* NULL: accepted */
	} cases[] = {
		{ "hostname", "\"x\"", NULL },
		/* A prefix inside the pool is nexsrv's to allow (IPAM keeps addresses out of it).
		 */
		{ "advertise_cidrs", "[\"100.64.200.0/24\"]", NULL },
		{ "advertise_cidrs", "[\"200::/96\"]", NULL },
		{ "ipv4_tunnel_ips", "[{\"address\":\"10.0.0.5\"}]",
		  "device.ipv4_tunnel_ips: 10.0.0.5 is outside the VPC's pool 100.64.0.0/10" },
		{ "ipv6_tunnel_ips", "[{\"address\":\"2001:db8::5\"}]",
		  "device.ipv6_tunnel_ips: 2001:db8::5 is outside the VPC's pool 200::/64" },
		{ "advertise_cidrs", "[\"10.0.0.0/8\",\"0.0.0.0/0\"]",
		  "device.advertise_cidrs[1]: 0.0.0.0/0 is a default route" },
		{ "advertise_cidrs", "[\"::/0\"]",
		  "device.advertise_cidrs[0]: ::/0 is a default route" },
		{ "advertise_cidrs", "[\"100.0.0.0/8\"]",
		  "device.advertise_cidrs[0]: 100.0.0.0/8 covers the VPC's pool 100.64.0.0/10" },
		{ "advertise_cidrs", "[\"100.64.0.0/10\"]",
		  "device.advertise_cidrs[0]: 100.64.0.0/10 covers the VPC's pool" },
		{ "advertise_cidrs", "[\"fd00::/64\",\"::/1\"]",
		  "device.advertise_cidrs[1]: ::/1 covers the VPC's pool 200::/64" },
		{ "vpc_id", "\"" ORG_ID "\"",
		  "device.vpc_id: " ORG_ID " is not this device's VPC" },
	};
	struct nx_wgkey self;

	(void)state;
	key_of(KEY_B, &self);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nx_err err = { "" };
		int rc = check_with(cases[i].key, cases[i].val, &self, &err);

		if (!cases[i].msg) {
			if (rc != 0)
				fail_msg("%s=%s: refused: %s", cases[i].key, cases[i].val, err.msg);
			continue;
		}
		if (rc != -EINVAL)
			fail_msg("%s=%s: rc %d (%s)", cases[i].key, cases[i].val, rc, err.msg);
		assert_err_contains(err, cases[i].msg);
	}
}

static void test_check_self_and_no_vpc(void **state)
{
	struct json_object *obj = parse_json(DEVICE_JSON);
	struct nexd_device_info d;
	struct nexd_vpc_info vpc;
	struct nx_err err = { "" };
	struct nx_wgkey self;

	(void)state;
	assert_int_equal(nexd_device_parse(&doc, doc_of(obj), false, &d, &err), 0);
	vpc_default(&vpc);
	key_of(KEY_A, &self);
	assert_int_equal(nexd_device_check(&d, &vpc, &self, &err), -EEXIST);
	assert_err_contains(err, "device.public_key: " KEY_A " is this device's own key");
	/* Without a key or a VPC only the VPC-free rules apply. */
	assert_int_equal(nexd_device_check(&d, NULL, NULL, &err), 0);
	/* A VPC without pools says nothing about tunnel addresses. */
	memset(&vpc.ipv4_cidr, 0, sizeof(vpc.ipv4_cidr));
	memset(&vpc.ipv6_cidr, 0, sizeof(vpc.ipv6_cidr));
	d.tunnel_ipv4.v4.s_addr = htonl(0x0a000001);
	assert_int_equal(nexd_device_check(&d, &vpc, NULL, &err), 0);
	nexd_device_info_clear(&d);
	json_object_put(obj);
}

/* active_cidrs: the elected subset of advertise_cidrs; absent means every prefix. */
static void test_device_active_cidrs(void **state)
{
	struct nexd_device_info d;
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(parse_device_with("active_cidrs", "[]", &d, &err), 0);
	assert_true(d.has_active);
	assert_int_equal(d.n_active, 0);
	nexd_device_info_clear(&d);

	assert_int_equal(parse_device_with("active_cidrs", "[\"172.16.42.7/24\"]", &d, &err), 0);
	assert_true(d.has_active);
	assert_int_equal(d.n_active, 1);
	assert_int_equal(nx_prefix_cmp(&d.active[0], &d.advertise[0]), 0);
	nexd_device_info_clear(&d);

	assert_int_equal(parse_device_with("active_cidrs", NULL, &d, &err), 0);
	assert_false(d.has_active);
	nexd_device_info_clear(&d);

	assert_int_equal(parse_device_with("active_cidrs", "[\"10.9.0.0/16\"]", &d, &err), -EINVAL);
	assert_err_contains(err,
			    "device.active_cidrs[0]: 10.9.0.0/16 is not among advertise_cidrs");
	assert_int_equal(parse_device_with("active_cidrs", "\"172.16.42.0/24\"", &d, &err),
			 -EINVAL);
	assert_err_contains(err, "device.active_cidrs: must be an array");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_device_active_cidrs),
		cmocka_unit_test(test_event_heartbeat),
		cmocka_unit_test(test_event_change_device),
		cmocka_unit_test(test_event_delete_device),
		cmocka_unit_test(test_event_vpc),
		cmocka_unit_test(test_event_tail_error),
		cmocka_unit_test(test_event_rejects),
		cmocka_unit_test(test_event_control_in_error),
		cmocka_unit_test(test_device_minimal),
		cmocka_unit_test(test_device_normalizes),
		cmocka_unit_test(test_device_wrong_types),
		cmocka_unit_test(test_device_rejects),
		cmocka_unit_test(test_device_bounds),
		cmocka_unit_test(test_device_created),
		cmocka_unit_test(test_vpc),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_check_self_and_no_vpc),
	};

	return cmocka_run_group_tests(tests, NULL, free_doc);
}
