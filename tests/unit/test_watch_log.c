/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for nexsrv/nexsrv_watch_log.c, the parts of the watch streams that need no
 * database: the request body (good ones, edge cases, and every rejection naming the field
 * and saying why), stream filters, the exact lines sent, the bounded per-VPC change log
 * (order, duplicates, eviction by count and by bytes, what it covers), and where the tails
 * go in an initial list.
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
#include "nexsrv/nexsrv_watch.h"

#define UUID  "694aa002-5d19-495e-980b-3d8fd508ea10"
#define UUID2 "0d4c3b8e-8d0e-4f4e-9a43-1d3b3f4c5e6f"

static struct json_object *J(const char *text)
{
	struct nx_err err = { "" };
	struct json_object *o = nx_json_parse(text, strlen(text), 32, &err);

	if (!o)
		fail_msg("bad JSON in test: %s: %s", text, err.msg);
	return o;
}

/* Parses text and expects success. */
static struct json_object *parse_ok(const char *text, bool global, struct nexsrv_watch_request *r)
{
	struct nexsrv_input_error e = { "", { "" } };
	struct json_object *o = J(text);
	int rc = nexsrv_watch_request_parse(o, global, r, &e);

	if (rc != 0)
		fail_msg("%s: rejected: %s: %s", text, e.field, e.err.msg);
	return o;
}

/* Parses text and expects rc, the field and a piece of the message. */
static void parse_bad(const char *text, bool global, int rc, const char *field, const char *msg)
{
	struct nexsrv_input_error e = { "", { "" } };
	struct nexsrv_watch_request r;
	struct json_object *o = J(text);

	assert_int_equal(nexsrv_watch_request_parse(o, global, &r, &e), rc);
	assert_string_equal(e.field, field);
	if (!strstr(e.err.msg, msg))
		fail_msg("%s: message \"%s\" lacks \"%s\"", text, e.err.msg, msg);
	assert_int_equal(r.n, 0);
	json_object_put(o);
}

static void test_kinds(void **state)
{
	(void)state;
	for (int k = 0; k < NEXSRV_WATCH_KINDS; k++)
		assert_int_equal(nexsrv_watch_kind_parse(nexsrv_watch_kind_name(k)), k);
	assert_string_equal(nexsrv_watch_kind_name(NEXSRV_WATCH_SECURITY_GROUP), "security-group");
	assert_int_equal(nexsrv_watch_kind_parse("devices"), -1);
	assert_int_equal(nexsrv_watch_kind_parse("Device"), -1);
	assert_int_equal(nexsrv_watch_kind_parse(NULL), -1);
	assert_string_equal(nexsrv_watch_kind_name(7), "?");
}

static void test_request_good(void **state)
{
	struct nexsrv_watch_request r;
	struct json_object *o;

	(void)state;
	/* The original's API scenario. */
	o = parse_ok("[{\"kind\":\"security-group\",\"gt_revision\":0},{\"kind\":\"device\","
		     "\"gt_revision\":0},{\"kind\":\"device-metadata\",\"gt_revision\":0}]",
		     false, &r);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.spec[0].kind, NEXSRV_WATCH_SECURITY_GROUP);
	assert_int_equal(r.spec[1].kind, NEXSRV_WATCH_DEVICE);
	assert_int_equal(r.spec[2].kind, NEXSRV_WATCH_DEVICE_METADATA);
	assert_int_equal(r.spec[2].n_prefixes, 0);
	assert_string_equal(r.vpc_id, "");
	json_object_put(o);

	/* Everything given; null is "not given"; unknown members are ignored. */
	o = parse_ok("[{\"kind\":\"device-metadata\",\"gt_revision\":9223372036854775807,"
		     "\"at_tail\":true,\"options\":{\"prefix\":[\"tcp:\",\"udp:\"],\"x\":1},"
		     "\"extra\":[]},{\"kind\":\"vpc\",\"gt_revision\":null,\"at_tail\":null,"
		     "\"options\":null}]",
		     false, &r);
	assert_int_equal(r.n, 2);
	assert_true(r.spec[0].gt_revision == INT64_MAX);
	assert_true(r.spec[0].at_tail);
	assert_int_equal(r.spec[0].n_prefixes, 2);
	assert_string_equal(r.spec[0].prefixes[1], "udp:");
	assert_int_equal(r.spec[1].gt_revision, 0);
	assert_false(r.spec[1].at_tail);
	json_object_put(o);

	/* One prefix as a string; "prefixes" as the original decoded it. */
	o = parse_ok("[{\"kind\":\"device-metadata\",\"options\":{\"prefix\":\"k\"}}]", false, &r);
	assert_int_equal(r.spec[0].n_prefixes, 1);
	assert_string_equal(r.spec[0].prefixes[0], "k");
	json_object_put(o);
	o = parse_ok("[{\"kind\":\"device-metadata\",\"options\":{\"prefixes\":[\"a\",\"b\"]}}]",
		     false, &r);
	assert_int_equal(r.spec[0].n_prefixes, 2);
	json_object_put(o);

	/* POST /api/events: the VPC of every entry, lower-cased. */
	o = parse_ok("[{\"kind\":\"device\",\"options\":{\"vpc-id\":\"694AA002-5D19-495E-980B-"
		     "3D8FD508EA10\"}},{\"kind\":\"vpc\",\"options\":{\"vpc-id\":\"" UUID "\"}}]",
		     true, &r);
	assert_string_equal(r.vpc_id, UUID);
	json_object_put(o);
	/* On a VPC's path vpc-id may be left out, or given. */
	o = parse_ok("[{\"kind\":\"device\"},{\"kind\":\"vpc\",\"options\":{\"vpc-id\":\"" UUID
		     "\"}}]",
		     false, &r);
	assert_string_equal(r.vpc_id, UUID);
	json_object_put(o);
}

static void test_request_bad(void **state)
{
	(void)state;
	parse_bad("{\"kind\":\"device\"}", false, -EINVAL, "request", "expected a JSON array");
	parse_bad("[]", false, -EINVAL, "request", "at least one");
	parse_bad("[{\"kind\":\"device\"},{\"kind\":\"vpc\"},{\"kind\":\"security-group\"},"
		  "{\"kind\":\"device-metadata\"},{\"kind\":\"device\"}]",
		  false, -EINVAL, "request", "at most 4");
	parse_bad("[7]", false, -EINVAL, "request[0]", "expected an object, not a number");
	parse_bad("[{}]", false, -ENOENT, "request[0].kind", "required");
	parse_bad("[{\"kind\":null}]", false, -ENOENT, "request[0].kind", "required");
	parse_bad("[{\"kind\":1}]", false, -EINVAL, "request[0].kind", "expected a string");
	parse_bad("[{\"kind\":\"devices\"}]", false, -EINVAL, "request[0].kind",
		  "unknown kind \"devices\"");
	parse_bad("[{\"kind\":\"dev\\u0000ice\"}]", false, -EINVAL, "request[0].kind",
		  "unknown kind");
	parse_bad("[{\"kind\":\"vpc\"},{\"kind\":\"vpc\"}]", false, -EINVAL, "request[1].kind",
		  "asked for twice");
	parse_bad("[{\"kind\":\"vpc\",\"gt_revision\":-1}]", false, -EINVAL,
		  "request[0].gt_revision", "-1: expected a revision from 0");
	parse_bad("[{\"kind\":\"vpc\",\"gt_revision\":9223372036854775808}]", false, -EINVAL,
		  "request[0].gt_revision", "9223372036854775808");
	parse_bad("[{\"kind\":\"vpc\",\"gt_revision\":1.5}]", false, -EINVAL,
		  "request[0].gt_revision", "expected an integer, not a number");
	parse_bad("[{\"kind\":\"vpc\",\"gt_revision\":\"3\"}]", false, -EINVAL,
		  "request[0].gt_revision", "not a string");
	parse_bad("[{\"kind\":\"vpc\",\"at_tail\":\"yes\"}]", false, -EINVAL, "request[0].at_tail",
		  "expected a boolean");
	parse_bad("[{\"kind\":\"vpc\",\"options\":[]}]", false, -EINVAL, "request[0].options",
		  "expected an object, not an array");
	parse_bad("[{\"kind\":\"device\",\"options\":{\"prefix\":\"a\"}}]", false, -EINVAL,
		  "request[0].options.prefix", "only device-metadata");
	parse_bad("[{\"kind\":\"device-metadata\",\"options\":{\"prefix\":\"a\","
		  "\"prefixes\":\"b\"}}]",
		  false, -EINVAL, "request[0].options.prefixes", "not both");
	parse_bad("[{\"kind\":\"device-metadata\",\"options\":{\"prefix\":7}}]", false, -EINVAL,
		  "request[0].options.prefix", "a string or an array of strings");
	parse_bad("[{\"kind\":\"device-metadata\",\"options\":{\"prefix\":[\"a\",\"\"]}}]", false,
		  -EINVAL, "request[0].options.prefix[1]", "an empty prefix");
	parse_bad("[{\"kind\":\"device-metadata\",\"options\":{\"prefix\":[\"a\\tb\"]}}]", false,
		  -EINVAL, "request[0].options.prefix[0]", "control character");
	parse_bad("[{\"kind\":\"device-metadata\",\"options\":{\"prefix\":[true]}}]", false,
		  -EINVAL, "request[0].options.prefix[0]", "expected a string, not a boolean");
	parse_bad("[{\"kind\":\"device-metadata\",\"options\":{\"prefix\":[\"1\",\"2\",\"3\",\"4\","
		  "\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\","
		  "\"17\"]}}]",
		  false, -EINVAL, "request[0].options.prefix", "17 prefixes: at most 16");
	parse_bad("[{\"kind\":\"device\",\"options\":{\"vpc-id\":\"nope\"}}]", false, -EINVAL,
		  "request[0].options.vpc-id", "\"nope\" is not a UUID");
	parse_bad("[{\"kind\":\"device\",\"options\":{\"vpc-id\":5}}]", false, -EINVAL,
		  "request[0].options.vpc-id", "expected a UUID string");
	parse_bad("[{\"kind\":\"device\"}]", true, -ENOENT, "request[0].options.vpc-id",
		  "required");
	parse_bad("[{\"kind\":\"device\",\"options\":{\"vpc-id\":\"" UUID
		  "\"}},{\"kind\":\"vpc\"}]",
		  true, -ENOENT, "request[1].options.vpc-id", "required");
	parse_bad("[{\"kind\":\"device\",\"options\":{\"vpc-id\":\"" UUID "\"}},{\"kind\":\"vpc\","
		  "\"options\":{\"vpc-id\":\"" UUID2 "\"}}]",
		  true, -EINVAL, "request[1].options.vpc-id", "one stream watches one VPC");
}

static void test_too_old(void **state)
{
	struct nexsrv_watch_request r;
	struct json_object *o;

	(void)state;
	o = parse_ok("[{\"kind\":\"device\",\"gt_revision\":5},{\"kind\":\"vpc\"}]", false, &r);
	assert_false(nexsrv_watch_request_too_old(&r, 0));
	assert_false(nexsrv_watch_request_too_old(&r, 5)); /* a delete at 5 was seen */
	assert_true(nexsrv_watch_request_too_old(&r, 6));
	json_object_put(o);
	o = parse_ok("[{\"kind\":\"device\"}]", false, &r); /* a full list is never too old */
	assert_false(nexsrv_watch_request_too_old(&r, 1000));
	json_object_put(o);
}

static void test_filter(void **state)
{
	struct nexsrv_watch_request r;
	struct nexsrv_watch_filter f;
	struct json_object *o;
	char buf[160], small[12];

	(void)state;
	o = parse_ok("[{\"kind\":\"device\"},{\"kind\":\"device-metadata\",\"options\":{\"prefix\":"
		     "[\"tcp:\",\"udp:\"]}}]",
		     false, &r);
	assert_int_equal(nexsrv_watch_filter_init(&f, &r), 0);
	json_object_put(o); /* the filter keeps its own copies */
	assert_true(nexsrv_watch_filter_match(&f, NEXSRV_WATCH_DEVICE, NULL));
	assert_false(nexsrv_watch_filter_match(&f, NEXSRV_WATCH_VPC, NULL));
	assert_false(nexsrv_watch_filter_match(&f, NEXSRV_WATCH_SECURITY_GROUP, NULL));
	assert_true(nexsrv_watch_filter_match(&f, NEXSRV_WATCH_DEVICE_METADATA, "tcp:80"));
	assert_true(nexsrv_watch_filter_match(&f, NEXSRV_WATCH_DEVICE_METADATA, "udp:"));
	assert_false(nexsrv_watch_filter_match(&f, NEXSRV_WATCH_DEVICE_METADATA, "tcp"));
	assert_false(nexsrv_watch_filter_match(&f, NEXSRV_WATCH_DEVICE_METADATA, "x"));
	assert_false(nexsrv_watch_filter_match(&f, NEXSRV_WATCH_DEVICE_METADATA, NULL));
	assert_string_equal(nexsrv_watch_filter_describe(&f, buf, sizeof(buf)),
			    "device,device-metadata(prefix tcp: udp:)");
	assert_string_equal(nexsrv_watch_filter_describe(&f, small, sizeof(small)), "device,d...");
	nexsrv_watch_filter_fini(&f);
	assert_int_equal(f.kinds, 0);

	o = parse_ok("[{\"kind\":\"device-metadata\"}]", false, &r);
	assert_int_equal(nexsrv_watch_filter_init(&f, &r), 0);
	assert_true(nexsrv_watch_filter_match(&f, NEXSRV_WATCH_DEVICE_METADATA, "anything"));
	assert_false(nexsrv_watch_filter_match(&f, 9, "anything"));
	nexsrv_watch_filter_fini(&f);
	json_object_put(o);
}

static void test_lines(void **state)
{
	struct json_object *v = J("{\"id\":\"x\",\"n\":[1,{\"a\":\"b\\nc\"}],\"revision\":12}");
	char *line = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(nexsrv_watch_line(NEXSRV_WATCH_DEVICE, false, false, v, &line, &len), 0);
	assert_string_equal(line,
			    "{\"kind\":\"device\",\"type\":\"change\",\"value\":{\"id\":\"x\","
			    "\"n\":[1,{\"a\":\"b\\nc\"}],\"revision\":12}}\n");
	assert_int_equal(len, strlen(line));
	free(line);
	assert_int_equal(
		nexsrv_watch_line(NEXSRV_WATCH_DEVICE_METADATA, true, false, v, &line, &len), 0);
	assert_true(strncmp(line, "{\"kind\":\"device-metadata\",\"type\":\"delete\",\"value\":{",
			    50) == 0);
	free(line);
	assert_int_equal(
		nexsrv_watch_line(NEXSRV_WATCH_SECURITY_GROUP, false, true, NULL, &line, &len), 0);
	assert_string_equal(line, "{\"kind\":\"security-group\",\"type\":\"tail\"}\n");
	free(line);
	assert_int_equal(nexsrv_watch_error_line(410, "re-list \"now\"", &line, &len), 0);
	assert_string_equal(line,
			    "{\"type\":\"error\",\"value\":{\"error\":\"re-list \\\"now\\\"\","
			    "\"code\":410}}\n");
	assert_int_equal(len, strlen(line));
	free(line);
	json_object_put(v);
}

static struct nexsrv_watch_event *ev(int64_t rev, const char *key)
{
	struct json_object *v = json_object_new_object();
	struct nexsrv_watch_event *e;

	json_object_object_add(v, "revision", json_object_new_int64(rev));
	e = nexsrv_watch_event_new(rev, key ? NEXSRV_WATCH_DEVICE_METADATA : NEXSRV_WATCH_DEVICE,
				   false, "694aa002-5d19-495e-980b-3d8fd508ea10", key, v);
	json_object_put(v);
	assert_non_null(e);
	return e;
}

static void test_event(void **state)
{
	struct json_object *v = J("{}");
	struct nexsrv_watch_event *e = ev(7, "tcp:1");

	(void)state;
	assert_string_equal(e->key, "tcp:1");
	assert_string_equal(e->id, UUID);
	assert_string_equal(e->line, "{\"kind\":\"device-metadata\",\"type\":\"change\",\"value\":"
				     "{\"revision\":7}}\n");
	nexsrv_watch_event_free(e);
	assert_null(nexsrv_watch_event_new(1, NEXSRV_WATCH_VPC, true, UUID "0", NULL, v));
	assert_null(nexsrv_watch_event_new(1, NEXSRV_WATCH_VPC, true, NULL, NULL, v));
	nexsrv_watch_event_free(NULL);
	json_object_put(v);
}

static void test_log(void **state)
{
	struct nexsrv_watch_log *log = nexsrv_watch_log_new(4, 1 << 20, 10);
	struct nexsrv_watch_event *dup;

	(void)state;
	assert_null(nexsrv_watch_log_new(0, 100, 0));
	assert_int_equal(nexsrv_watch_log_last(log), 10);
	assert_int_equal(nexsrv_watch_log_floor(log), 10);
	assert_true(nexsrv_watch_log_covers(log, 10));
	assert_false(nexsrv_watch_log_covers(log, 9)); /* started after it */
	assert_int_equal(nexsrv_watch_log_after(log, 0), 0);
	assert_null(nexsrv_watch_log_at(log, 0));

	/* Only newer revisions go in. */
	dup = ev(10, NULL);
	assert_int_equal(nexsrv_watch_log_append(log, dup), -EINVAL);
	nexsrv_watch_event_free(dup);
	assert_int_equal(nexsrv_watch_log_append(log, NULL), -EINVAL);
	for (int64_t r = 12; r <= 18; r += 2)
		assert_int_equal(nexsrv_watch_log_append(log, ev(r, NULL)), 0);
	dup = ev(15, NULL);
	assert_int_equal(nexsrv_watch_log_append(log, dup), -EINVAL);
	nexsrv_watch_event_free(dup);
	assert_int_equal(nexsrv_watch_log_count(log), 4);
	assert_int_equal(nexsrv_watch_log_last(log), 18);
	assert_int_equal(nexsrv_watch_log_floor(log), 10);
	/* after: the first event newer than the revision */
	assert_int_equal(nexsrv_watch_log_after(log, 10), 0);
	assert_int_equal(nexsrv_watch_log_after(log, 12), 1);
	assert_int_equal(nexsrv_watch_log_after(log, 13), 1);
	assert_int_equal(nexsrv_watch_log_after(log, 17), 3);
	assert_int_equal(nexsrv_watch_log_after(log, 18), 4);
	assert_int_equal(nexsrv_watch_log_after(log, 99), 4);
	assert_int_equal(nexsrv_watch_log_at(log, 2)->revision, 16);

	/* Full: the oldest goes, and with it the cover of what came before it. */
	assert_int_equal(nexsrv_watch_log_append(log, ev(20, NULL)), 0);
	assert_int_equal(nexsrv_watch_log_count(log), 4);
	assert_int_equal(nexsrv_watch_log_floor(log), 12);
	assert_false(nexsrv_watch_log_covers(log, 11));
	assert_true(nexsrv_watch_log_covers(log, 12));
	assert_int_equal(nexsrv_watch_log_at(log, 0)->revision, 14);
	assert_int_equal(nexsrv_watch_log_at(log, 3)->revision, 20);
	assert_int_equal(nexsrv_watch_log_after(log, 15), 1);
	/* around the ring a few times */
	for (int64_t r = 21; r < 40; r++)
		assert_int_equal(nexsrv_watch_log_append(log, ev(r, NULL)), 0);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(nexsrv_watch_log_at(log, i)->revision, 36 + (int64_t)i);
	assert_int_equal(nexsrv_watch_log_floor(log), 35);
	assert_int_equal(nexsrv_watch_log_after(log, 37), 2);
	nexsrv_watch_log_free(log);
	nexsrv_watch_log_free(NULL);
}

static void test_log_bytes(void **state)
{
	struct nexsrv_watch_event *e = ev(1, NULL);
	size_t one = e->len;
	struct nexsrv_watch_log *log = nexsrv_watch_log_new(100, 3 * one, 0);

	(void)state;
	nexsrv_watch_event_free(e);
	for (int64_t r = 1; r <= 3; r++)
		assert_int_equal(nexsrv_watch_log_append(log, ev(r, NULL)), 0);
	assert_int_equal(nexsrv_watch_log_bytes(log), 3 * one);
	assert_int_equal(nexsrv_watch_log_floor(log), 0);
	assert_int_equal(nexsrv_watch_log_append(log, ev(4, NULL)), 0);
	assert_int_equal(nexsrv_watch_log_count(log), 3);
	assert_int_equal(nexsrv_watch_log_floor(log), 1);
	assert_int_equal(nexsrv_watch_log_bytes(log), 3 * one);
	nexsrv_watch_log_free(log);

	/* An event larger than the bound alone is still kept: the newest is always known. */
	log = nexsrv_watch_log_new(100, one / 2, 0);
	assert_int_equal(nexsrv_watch_log_append(log, ev(1, NULL)), 0);
	assert_int_equal(nexsrv_watch_log_append(log, ev(2, NULL)), 0);
	assert_int_equal(nexsrv_watch_log_count(log), 1);
	assert_int_equal(nexsrv_watch_log_floor(log), 1);
	assert_int_equal(nexsrv_watch_log_last(log), 2);
	nexsrv_watch_log_free(log);
}

static void test_tail_plan(void **state)
{
	/* The original's scenario: a security group, then a device; no metadata. */
	const enum nexsrv_watch_kind rows[] = { NEXSRV_WATCH_SECURITY_GROUP, NEXSRV_WATCH_DEVICE };
	const enum nexsrv_watch_kind mixed[] = { NEXSRV_WATCH_DEVICE, NEXSRV_WATCH_VPC,
						 NEXSRV_WATCH_DEVICE, 9 };
	long last[NEXSRV_WATCH_KINDS];

	(void)state;
	nexsrv_watch_tail_plan(rows, 2, last);
	assert_int_equal(last[NEXSRV_WATCH_SECURITY_GROUP], 0);
	assert_int_equal(last[NEXSRV_WATCH_DEVICE], 1);
	assert_int_equal(last[NEXSRV_WATCH_DEVICE_METADATA], -1); /* its tail goes first */
	assert_int_equal(last[NEXSRV_WATCH_VPC], -1);
	nexsrv_watch_tail_plan(mixed, 4, last);
	assert_int_equal(last[NEXSRV_WATCH_DEVICE], 2);
	assert_int_equal(last[NEXSRV_WATCH_VPC], 1);
	nexsrv_watch_tail_plan(NULL, 0, last);
	for (int k = 0; k < NEXSRV_WATCH_KINDS; k++)
		assert_int_equal(last[k], -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds),	    cmocka_unit_test(test_request_good),
		cmocka_unit_test(test_request_bad), cmocka_unit_test(test_too_old),
		cmocka_unit_test(test_filter),	    cmocka_unit_test(test_lines),
		cmocka_unit_test(test_event),	    cmocka_unit_test(test_log),
		cmocka_unit_test(test_log_bytes),   cmocka_unit_test(test_tail_plan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
