/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for nexsrv/nexsrv_api_input: the request bodies of VPCs, security groups,
 * registration keys and devices.  Good bodies come out canonical; every rejection names
 * the field (as a JSON path) and says why, quoting the value where there is one.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/jsonutil.h"
#include "nexsrv/nexsrv_api_input.h"

#define KEY  "YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI="
#define UUID "694aa002-5d19-495e-980b-3d8fd508ea10"

static struct json_object *J(const char *text)
{
	struct nx_err err = { "" };
	struct json_object *o = nx_json_parse(text, strlen(text), 32, &err);

	if (!o)
		fail_msg("bad JSON in test: %s: %s", text, err.msg);
	return o;
}

static struct nexsrv_device_input *dev;

static int setup(void **state)
{
	(void)state;
	dev = calloc(1, sizeof(*dev));
	return dev ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(dev);
	return 0;
}

/* Parses text as a device body and expects rc; on failure field and a piece of the
 * message. */
static void device(const char *text, enum nexsrv_device_mode mode, int rc, const char *field,
		   const char *msg)
{
	struct nexsrv_input_error e = { "", { "" } };
	struct json_object *o = J(text);

	assert_int_equal(nexsrv_device_input_parse(o, mode, dev, &e), rc);
	if (rc < 0) {
		assert_string_equal(e.field, field);
		assert_true(e.err.msg[0] != '\0');
		if (!strstr(e.err.msg, msg))
			fail_msg("%s: message \"%s\" lacks \"%s\"", text, e.err.msg, msg);
	}
	json_object_put(o);
}

static void test_device_good(void **state)
{
	struct json_object *eps;
	struct nx_sbuf lit;
	char *text;

	(void)state;
	device("{\"vpc_id\":\"694AA002-5d19-495e-980b-3d8fd508ea10\",\"public_key\":\"" KEY "\","
	       "\"endpoints\":[{\"source\":\"local\",\"address\":\"172.17.0.3:58664\"},"
	       "{\"source\":\"stun:stun.example.net:3478\",\"address\":\"[2001:DB8::1]:1\"}],"
	       "\"advertise_cidrs\":[\"172.16.42.0/24\",\"fd00::1\"],\"relay\":true,"
	       "\"ipv4_tunnel_ips\":[{\"address\":\"100.64.0.5\",\"cidr\":\"x\"}],"
	       "\"hostname\":\"h\",\"os\":\"linux\",\"security_group_id\":\"\",\"extra\":[1]}",
	       NEXSRV_DEVICE_CREATE, 0, NULL, NULL);
	assert_string_equal(dev->vpc_id, UUID);
	assert_string_equal(dev->public_key, KEY);
	assert_true(dev->relay && !dev->symmetric_nat);
	assert_true(dev->present & NEXSRV_DEV_IPV4_REQUEST);
	assert_true(dev->present & NEXSRV_DEV_SECURITY_GROUP);
	assert_string_equal(dev->security_group_id, "");
	assert_int_equal(dev->n_endpoints, 2);
	assert_int_equal(dev->n_advertise, 2);
	eps = nexsrv_device_endpoints_json(dev);
	text = nx_json_to_string(eps, NX_JSON_PLAIN);
	assert_string_equal(text, "[{\"source\":\"local\",\"address\":\"172.17.0.3:58664\"},"
				  "{\"source\":\"stun:stun.example.net:3478\","
				  "\"address\":\"[2001:db8::1]:1\"}]");
	free(text);
	json_object_put(eps);
	nx_sbuf_init(&lit, NULL, 0);
	assert_int_equal(nexsrv_device_advertise_literal(dev, &lit), 0);
	assert_string_equal(nx_sbuf_str(&lit), "{172.16.42.0/24,fd00::1/128}");
	nx_sbuf_fini(&lit);

	/* an update: only what is there; null and "" hostname mean unchanged */
	device("{\"hostname\":\"\",\"endpoints\":[],\"advertise_cidrs\":null,\"relay\":null,"
	       "\"security_group_id\":null,\"public_key\":\"garbage\"}",
	       NEXSRV_DEVICE_UPDATE, 0, NULL, NULL);
	assert_int_equal(dev->present, NEXSRV_DEV_ENDPOINTS);
	assert_int_equal(dev->n_endpoints, 0);
}

static void test_device_bad(void **state)
{
	static const struct {
		const char *body, *field, *msg;
		int rc;
	} cases[] = {
		{ "{}", "public_key", "required", -ENOENT },
		{ "{\"public_key\":\"abc\"}", "public_key", "44", -EINVAL },
		{ "{\"public_key\":7}", "public_key", "must be a string", -EINVAL },
		{ "{\"public_key\":\"" KEY "\",\"vpc_id\":\"test\"}", "vpc_id",
		  "\"test\" is not a UUID", -EINVAL },
		{ "{\"public_key\":\"" KEY "\",\"advertise_cidrs\":[\"10.0.0.0/33\"]}",
		  "advertise_cidrs[0]", "10.0.0.0/33", -EINVAL },
		{ "{\"public_key\":\"" KEY "\",\"advertise_cidrs\":[\"10.0.0.0/8\",\"0.0.0.0/0\"]}",
		  "advertise_cidrs[1]", "exit nodes", -EINVAL },
		{ "{\"public_key\":\"" KEY "\",\"advertise_cidrs\":[\"::/0\"]}",
		  "advertise_cidrs[0]", "default route", -EINVAL },
		{ "{\"public_key\":\"" KEY "\",\"advertise_cidrs\":[\"10.0.0.1/24\"]}",
		  "advertise_cidrs[0]", "10.0.0.1/24", -EINVAL },
		{ "{\"public_key\":\"" KEY
		  "\",\"advertise_cidrs\":[\"10.1.0.0/16\",\"10.1.0.0/16\"]}",
		  "advertise_cidrs[1]", "twice", -EINVAL },
		{ "{\"public_key\":\"" KEY "\",\"advertise_cidrs\":[5]}", "advertise_cidrs[0]",
		  "must be a string", -EINVAL },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\"}]}",
		  "endpoints[0].address", "required", -ENOENT },
		{ "{\"public_key\":\"" KEY
		  "\",\"endpoints\":[{\"source\":\"x\",\"address\":\"1.2.3.4:5\"}]}",
		  "endpoints[0].source", "\"x\"", -EINVAL },
		{ "{\"public_key\":\"" KEY
		  "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"h:5\"}]}",
		  "endpoints[0].address", "h:5", -EINVAL },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[1]}", "endpoints[0]", "an object",
		  -EINVAL },
		{ "{\"public_key\":\"" KEY "\",\"hostname\":\"a\\u0001\"}", "hostname",
		  "control character", -EINVAL },
		{ "{\"public_key\":\"" KEY "\",\"relay\":\"yes\"}", "relay", "boolean", -EINVAL },
		{ "{\"public_key\":\"" KEY "\",\"ipv4_tunnel_ips\":[{\"address\":\"::1\"}]}",
		  "ipv4_tunnel_ips[0].address", "IPv4", -EINVAL },
		{ "{\"public_key\":\"" KEY "\",\"ipv4_tunnel_ips\":[{},{}]}", "ipv4_tunnel_ips",
		  "single", -EINVAL },
		{ "[1]", "", "JSON object", -EINVAL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		device(cases[i].body, NEXSRV_DEVICE_CREATE, cases[i].rc, cases[i].field,
		       cases[i].msg);
}

static void test_device_limits(void **state)
{
	struct nx_sbuf b;

	(void)state;
	nx_sbuf_init(&b, NULL, 0);
	nx_sbuf_puts(&b, "{\"advertise_cidrs\":[");
	for (int i = 0; i <= NEXSRV_DEVICE_MAX_ADV; i++)
		nx_sbuf_printf(&b, "%s\"10.%d.%d.0/24\"", i ? "," : "", i / 256, i % 256);
	nx_sbuf_puts(&b, "]}");
	device(nx_sbuf_str(&b), NEXSRV_DEVICE_UPDATE, -EINVAL, "advertise_cidrs", "at most");
	nx_sbuf_reset(&b);
	nx_sbuf_printf(&b, "{\"hostname\":\"%0*d\"}", NEXSRV_HOSTNAME_MAX + 1, 0);
	device(nx_sbuf_str(&b), NEXSRV_DEVICE_UPDATE, -EINVAL, "hostname", "at most 255");
	nx_sbuf_reset(&b);
	nx_sbuf_printf(&b, "{\"hostname\":\"%0*d\"}", NEXSRV_HOSTNAME_MAX, 0);
	device(nx_sbuf_str(&b), NEXSRV_DEVICE_UPDATE, 0, NULL, NULL);
	nx_sbuf_fini(&b);
}

static void rules(const char *text, int rc, const char *field, const char *msg, const char *want)
{
	struct nexsrv_input_error e = { "", { "" } };
	struct json_object *o = J(text), *out = NULL;
	char *s;

	assert_int_equal(nexsrv_secgroup_rules_parse(o, "inbound_rules", &out, &e), rc);
	if (rc < 0) {
		assert_null(out);
		assert_string_equal(e.field, field);
		if (!strstr(e.err.msg, msg))
			fail_msg("%s: message \"%s\" lacks \"%s\"", text, e.err.msg, msg);
	} else {
		s = nx_json_to_string(out, NX_JSON_PLAIN);
		assert_string_equal(s, want);
		free(s);
	}
	json_object_put(out);
	json_object_put(o);
}

static void test_secgroup_rules(void **state)
{
	(void)state;
	rules("[{\"ip_protocol\":\"TCP\",\"from_port\":22,\"to_port\":22,\"ip_ranges\":"
	      "[\"10.0.0.0/8\",\"192.168.1.1\",\"172.16.0.1-172.16.0.9\",\"2001:DB8::/32\"]},"
	      "{\"ip_protocol\":\"icmpv6\"}]",
	      0, NULL, NULL,
	      "[{\"ip_protocol\":\"tcp\",\"from_port\":22,\"to_port\":22,\"ip_ranges\":"
	      "[\"10.0.0.0/8\",\"192.168.1.1\",\"172.16.0.1-172.16.0.9\",\"2001:db8::/32\"]},"
	      "{\"ip_protocol\":\"icmpv6\",\"from_port\":0,\"to_port\":0,\"ip_ranges\":[]}]");
	rules("[]", 0, NULL, NULL, "[]");
	rules("[{}]", -ENOENT, "inbound_rules[0].ip_protocol", "required", NULL);
	rules("[{\"ip_protocol\":\"sctp\"}]", -EINVAL, "inbound_rules[0].ip_protocol", "\"sctp\"",
	      NULL);
	rules("[{\"ip_protocol\":\"tcp\",\"from_port\":65536}]", -EINVAL,
	      "inbound_rules[0].from_port", "65536", NULL);
	rules("[{\"ip_protocol\":\"tcp\",\"to_port\":-1}]", -EINVAL, "inbound_rules[0].to_port",
	      "-1", NULL);
	rules("[{\"ip_protocol\":\"tcp\",\"from_port\":2,\"to_port\":1}]", -EINVAL,
	      "inbound_rules[0].to_port", "above", NULL);
	rules("[{\"ip_protocol\":\"tcp\",\"from_port\":1.5}]", -EINVAL,
	      "inbound_rules[0].from_port", "integer", NULL);
	rules("[{\"ip_protocol\":\"udp\",\"ip_ranges\":[\"10.0.0.9-10.0.0.1\"]}]", -EINVAL,
	      "inbound_rules[0].ip_ranges[0]", "after its end", NULL);
	rules("[{\"ip_protocol\":\"udp\",\"ip_ranges\":[\"10.0.0.1-fd00::1\"]}]", -EINVAL,
	      "inbound_rules[0].ip_ranges[0]", "mix", NULL);
	rules("[{\"ip_protocol\":\"ipv6\",\"ip_ranges\":[\"10.0.0.0/8\"]}]", -EINVAL,
	      "inbound_rules[0].ip_ranges[0]", "IPv4 address in a rule of an IPv6", NULL);
	rules("[{\"ip_protocol\":\"tcp\",\"ip_ranges\":[\"10.0.0.1/8\"]}]", -EINVAL,
	      "inbound_rules[0].ip_ranges[0]", "10.0.0.1/8", NULL);
	rules("[{\"ip_protocol\":\"tcp\"},5]", -EINVAL, "inbound_rules[1]", "an object", NULL);
	rules("{}", -EINVAL, "inbound_rules", "an array", NULL);
}

static void test_vpc(void **state)
{
	struct nexsrv_input_error e = { "", { "" } };
	struct nexsrv_vpc_input in;
	char buf[NX_PREFIX_STRLEN];
	struct json_object *o;

	(void)state;
	o = J("{\"organization_id\":\"" UUID "\",\"description\":\"d\"}");
	assert_int_equal(nexsrv_vpc_input_parse(o, &in, &e), 0);
	assert_string_equal(nx_prefix_format(&in.ipv4_cidr, buf, sizeof(buf)), "100.64.0.0/10");
	assert_string_equal(nx_prefix_format(&in.ipv6_cidr, buf, sizeof(buf)), "200::/64");
	assert_string_equal(in.description, "d");
	json_object_put(o);

	o = J("{\"organization_id\":\"" UUID "\",\"private_cidr\":true,\"ipv4_cidr\":"
	      "\"10.1.0.0/16\",\"ipv6_cidr\":\"fd00::/48\"}");
	assert_int_equal(nexsrv_vpc_input_parse(o, &in, &e), 0);
	assert_string_equal(nx_prefix_format(&in.ipv4_cidr, buf, sizeof(buf)), "10.1.0.0/16");
	json_object_put(o);

	static const struct {
		const char *body, *field, *msg;
	} bad[] = {
		{ "{}", "organization_id", "required" },
		{ "{\"organization_id\":\"" UUID "\",\"ipv4_cidr\":\"10.0.0.0/8\"}", "ipv4_cidr",
		  "private_cidr" },
		{ "{\"organization_id\":\"" UUID "\",\"private_cidr\":true,\"ipv4_cidr\":"
		  "\"100.64.0.0//10\",\"ipv6_cidr\":\"fd00::/64\"}",
		  "ipv4_cidr", "100.64.0.0//10" },
		{ "{\"organization_id\":\"" UUID "\",\"private_cidr\":true,\"ipv4_cidr\":"
		  "\"10.0.0.0/8\"}",
		  "ipv6_cidr", "required" },
		{ "{\"organization_id\":\"" UUID "\",\"private_cidr\":true,\"ipv4_cidr\":"
		  "\"fd00::/64\",\"ipv6_cidr\":\"fd00::/64\"}",
		  "ipv4_cidr", "IPv4" },
		{ "{\"organization_id\":\"" UUID "\",\"private_cidr\":true,\"ipv4_cidr\":"
		  "\"10.0.0.0/31\",\"ipv6_cidr\":\"fd00::/64\"}",
		  "ipv4_cidr", "/30 or larger" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&e, 0, sizeof(e));
		o = J(bad[i].body);
		assert_true(nexsrv_vpc_input_parse(o, &in, &e) < 0);
		assert_string_equal(e.field, bad[i].field);
		if (!strstr(e.err.msg, bad[i].msg))
			fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].body, e.err.msg, bad[i].msg);
		json_object_put(o);
	}
}

static void test_regkey(void **state)
{
	struct nexsrv_input_error e = { "", { "" } };
	struct nexsrv_regkey_input in;
	struct json_object *o;

	(void)state;
	o = J("{\"vpc_id\":\"" UUID "\",\"single_use\":true,\"expires_at\":"
	      "\"2030-01-02T15:04:05.5+02:00\",\"settings\":{\"a\":1},\"description\":\"k\"}");
	assert_int_equal(nexsrv_regkey_input_parse(o, true, &in, &e), 0);
	assert_true(in.single_use);
	assert_string_equal(in.expires_at, "2030-01-02T15:04:05.5+02:00");
	assert_non_null(in.settings);
	json_object_put(o);

	o = J("{\"expires_at\":null,\"settings\":null,\"security_group_id\":\"\"}");
	assert_int_equal(nexsrv_regkey_input_parse(o, false, &in, &e), 0);
	assert_int_equal(in.present,
			 NEXSRV_RK_EXPIRES_AT | NEXSRV_RK_SETTINGS | NEXSRV_RK_SECURITY_GROUP);
	assert_null(in.expires_at);
	assert_null(in.settings);
	json_object_put(o);

	o = J("{\"vpc_id\":\"test\"}");
	assert_int_equal(nexsrv_regkey_input_parse(o, true, &in, &e), -EINVAL);
	assert_string_equal(e.field, "vpc_id");
	json_object_put(o);
	o = J("{\"expires_at\":\"tomorrow\"}");
	assert_int_equal(nexsrv_regkey_input_parse(o, false, &in, &e), -EINVAL);
	assert_string_equal(e.field, "expires_at");
	assert_non_null(strstr(e.err.msg, "RFC 3339"));
	json_object_put(o);
	o = J("{\"settings\":[1]}");
	assert_int_equal(nexsrv_regkey_input_parse(o, false, &in, &e), -EINVAL);
	assert_string_equal(e.field, "settings");
	json_object_put(o);
}

static void test_small_checks(void **state)
{
	struct nexsrv_input_error e = { "", { "" } };

	(void)state;
	assert_true(nexsrv_uuid_valid(UUID));
	assert_true(nexsrv_uuid_valid("694AA002-5D19-495E-980B-3D8FD508EA10"));
	assert_false(nexsrv_uuid_valid("694aa0025d19495e980b3d8fd508ea10"));
	assert_false(nexsrv_uuid_valid("694aa002-5d19-495e-980b-3d8fd508ea1g"));
	assert_false(nexsrv_uuid_valid(NULL));
	assert_true(nexsrv_input_rfc3339("2024-07-01T12:00:00Z"));
	assert_true(nexsrv_input_rfc3339("2024-07-01t12:00:00.123456789-05:30"));
	assert_false(nexsrv_input_rfc3339("2024-07-01T12:00:00.1234567890Z"));
	assert_false(nexsrv_input_rfc3339("2024-07-01 12:00:00Z"));
	assert_false(nexsrv_input_rfc3339("2024-07-01T12:00:00"));
	assert_false(nexsrv_input_rfc3339("2024-07-01T12:00:00Z "));
	assert_int_equal(nexsrv_metadata_key_check("tcp:1024", &e), 0);
	assert_int_equal(nexsrv_metadata_key_check("", &e), -EINVAL);
	assert_string_equal(e.field, "key");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_device_good),   cmocka_unit_test(test_device_bad),
		cmocka_unit_test(test_device_limits), cmocka_unit_test(test_secgroup_rules),
		cmocka_unit_test(test_vpc),	      cmocka_unit_test(test_regkey),
		cmocka_unit_test(test_small_checks),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
