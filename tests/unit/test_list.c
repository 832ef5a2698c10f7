/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for nexsrv/nexsrv_list: the sort, filter and range parameters of the REST
 * API's lists, what they turn into (ORDER BY text, parameterised WHERE terms, OFFSET and
 * LIMIT) and what they refuse and why.
 *
 * nexsrv_list.c reads the parameters through nexsrv_req_query() only; this file provides
 * that function over a request of its own, so no HTTP server is involved.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nexsrv/nexsrv_http.h"
#include "nexsrv/nexsrv_list.h"

struct nexsrv_req {
	const char *sort, *filter, *range;
};

const char *nexsrv_req_query(const struct nexsrv_req *req, const char *name)
{
	if (strcmp(name, "sort") == 0)
		return req->sort;
	if (strcmp(name, "filter") == 0)
		return req->filter;
	if (strcmp(name, "range") == 0)
		return req->range;
	return NULL;
}

static const struct nexsrv_list_field fields[] = {
	{ "id", "o.id" },	{ "name", "o.name" }, { "revision", "o.revision" },
	{ "relay", "o.relay" }, { NULL, NULL },
};

#define DEFAULT_ORDER "o.name ASC"

#define assert_rejected(rc, err, want)                                            \
	do {                                                                      \
		assert_int_equal((rc), -EINVAL);                                  \
		assert_true((err).msg[0] != '\0');                                \
		if (!strstr((err).msg, (want)))                                   \
			fail_msg("expected \"%s\" in \"%s\"", (want), (err).msg); \
	} while (0)

static int parse(const char *sort, const char *filter, const char *range, struct nexsrv_list *list,
		 struct nx_err *err)
{
	struct nexsrv_req req = { sort, filter, range };

	err->msg[0] = '\0';
	return nexsrv_list_parse(&req, fields, DEFAULT_ORDER, list, err);
}

/* Parses something that must be refused, checking that nothing is left allocated. */
static void refuse(const char *sort, const char *filter, const char *range, const char *want)
{
	struct nexsrv_list list;
	struct nx_err err;
	int rc = parse(sort, filter, range, &list, &err);

	assert_rejected(rc, err, want);
	assert_int_equal(list.n_filters, 0);
	nexsrv_list_fini(&list);
}

static void test_defaults(void **state)
{
	struct nexsrv_list list;
	struct nx_err err;

	(void)state;
	assert_int_equal(parse(NULL, NULL, NULL, &list, &err), 0);
	assert_string_equal(list.order_by, DEFAULT_ORDER);
	assert_int_equal(list.n_filters, 0);
	assert_int_equal(list.offset, 0);
	assert_int_equal(list.limit, NEXSRV_LIST_MAX_LIMIT);
	nexsrv_list_fini(&list);
	nexsrv_list_fini(&list); /* twice is harmless */
}

static void test_sort(void **state)
{
	struct nexsrv_list list;
	struct nx_err err;

	(void)state;
	assert_int_equal(parse("[\"name\",\"DESC\"]", NULL, NULL, &list, &err), 0);
	assert_string_equal(list.order_by, "o.name DESC");
	nexsrv_list_fini(&list);
	/* the direction in any case, whitespace as JSON allows */
	assert_int_equal(parse(" [ \"revision\" , \"asc\" ] ", NULL, NULL, &list, &err), 0);
	assert_string_equal(list.order_by, "o.revision ASC");
	nexsrv_list_fini(&list);
}

static void test_sort_refused(void **state)
{
	(void)state;
	refuse("", NULL, NULL, "sort: not valid JSON");
	refuse("name", NULL, NULL, "sort: not valid JSON");
	refuse("[\"name\"]", NULL, NULL, "sort: expected [\"field\"");
	refuse("[\"name\",\"ASC\",\"x\"]", NULL, NULL, "sort: expected");
	refuse("{\"name\":\"ASC\"}", NULL, NULL, "sort: expected");
	refuse("[1,\"ASC\"]", NULL, NULL, "sort: expected");
	refuse("[\"name\",null]", NULL, NULL, "sort: expected");
	refuse("[\"password\",\"ASC\"]", NULL, NULL, "sort: unknown field \"password\"");
	refuse("[\"name; DROP TABLE users\",\"ASC\"]", NULL, NULL, "sort: unknown field");
	refuse("[\"o.name\",\"ASC\"]", NULL, NULL, "sort: unknown field \"o.name\"");
	refuse("[\"name\",\"UP\"]", NULL, NULL, "sort: direction \"UP\" is neither ASC nor DESC");
	refuse("[\"name\",\"ASC; DELETE\"]", NULL, NULL, "neither ASC nor DESC");
	refuse("[[\"name\"],\"ASC\"]", NULL, NULL, "sort: expected");
	refuse("[\"name\",\"ASC\"] x", NULL, NULL, "sort: not valid JSON");
	/* an unprintable field name is not echoed raw */
	refuse("[\"\\u0001x\",\"ASC\"]", NULL, NULL, "unknown field \"?x\"");
}

static void test_filter(void **state)
{
	struct nexsrv_list list;
	struct nx_err err;
	char where[256] = "x.owner = $1";
	const char *params[1 + NEXSRV_LIST_MAX_FILTERS] = { "me" };
	int n = 1;

	(void)state;
	assert_int_equal(
		parse(NULL, "{\"name\":\"web\",\"revision\":42,\"relay\":true}", NULL, &list, &err),
		0);
	assert_int_equal(list.n_filters, 3);
	assert_string_equal(list.filter_column[0], "o.name");
	assert_string_equal(list.filter_value[0], "web");
	assert_string_equal(list.filter_column[1], "o.revision");
	assert_string_equal(list.filter_value[1], "42");
	assert_string_equal(list.filter_column[2], "o.relay");
	assert_string_equal(list.filter_value[2], "true");
	assert_int_equal(nexsrv_list_where(&list, where, sizeof(where), params, &n), 0);
	assert_string_equal(where, "x.owner = $1 AND o.name = $2 AND o.revision = $3"
				   " AND o.relay = $4");
	assert_int_equal(n, 4);
	assert_string_equal(params[0], "me");
	assert_string_equal(params[1], "web");
	assert_string_equal(params[2], "42");
	assert_string_equal(params[3], "true");
	nexsrv_list_fini(&list);
	assert_int_equal(list.n_filters, 0);

	/* values are parameters whatever they hold; big and negative integers in decimal */
	assert_int_equal(parse(NULL,
			       "{\"name\":\"' OR 1=1 --\",\"revision\":18446744073709551615,"
			       "\"id\":-9223372036854775808}",
			       NULL, &list, &err),
			 0);
	assert_string_equal(list.filter_value[0], "' OR 1=1 --");
	assert_string_equal(list.filter_value[1], "18446744073709551615");
	assert_string_equal(list.filter_value[2], "-9223372036854775808");
	nexsrv_list_fini(&list);

	assert_int_equal(parse(NULL, "{}", NULL, &list, &err), 0);
	assert_int_equal(list.n_filters, 0);
	nexsrv_list_fini(&list);
}

static void test_filter_refused(void **state)
{
	(void)state;
	refuse(NULL, "", NULL, "filter: not valid JSON");
	refuse(NULL, "{\"name\":", NULL, "filter: not valid JSON");
	refuse(NULL, "[\"name\",\"web\"]", NULL, "filter: expected an object");
	refuse(NULL, "\"name\"", NULL, "filter: expected an object");
	refuse(NULL, "{\"owner_id\":\"x\"}", NULL, "filter: unknown field \"owner_id\"");
	/* the first fields were fine: what they allocated is released */
	refuse(NULL, "{\"name\":\"a\",\"id\":\"b\",\"nope\":1}", NULL, "unknown field \"nope\"");
	refuse(NULL, "{\"name\":null}", NULL, "must be a string, an integer or a boolean");
	refuse(NULL, "{\"name\":1.5}", NULL, "must be a string, an integer or a boolean");
	refuse(NULL, "{\"name\":[\"a\"]}", NULL, "must be a string");
	refuse(NULL, "{\"name\":{\"a\":1}}", NULL, "must be a string");
	refuse(NULL, "{\"name\":\"a\\u0000b\"}", NULL, "contains a NUL character");
	/* too deep for a filter */
	refuse(NULL, "{\"name\":[[[1]]]}", NULL, "filter: not valid JSON");
}

/* {"a":0,"b":1,...} with n fields. */
static void many_fields(char *buf, size_t size, int n)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s\"%c\":%d", i ? "," : "{",
					'a' + i, i);
	snprintf(buf + len, size - len, "}");
}

static void test_filter_limit(void **state)
{
	/* an object holds a name once (the last wins): nine distinct names are needed */
	static const struct nexsrv_list_field wide[] = {
		{ "a", "c.a" }, { "b", "c.b" }, { "c", "c.c" }, { "d", "c.d" }, { "e", "c.e" },
		{ "f", "c.f" }, { "g", "c.g" }, { "h", "c.h" }, { "i", "c.i" }, { NULL, NULL },
	};
	struct nexsrv_list list;
	struct nx_err err = { "" };
	char many[256];
	struct nexsrv_req req = { NULL, many, NULL };

	(void)state;
	many_fields(many, sizeof(many), NEXSRV_LIST_MAX_FILTERS + 1);
	assert_int_equal(nexsrv_list_parse(&req, wide, "c.a", &list, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "filter: more than 8 fields"));
	assert_int_equal(list.n_filters, 0);

	/* exactly the maximum is fine */
	many_fields(many, sizeof(many), NEXSRV_LIST_MAX_FILTERS);
	assert_int_equal(nexsrv_list_parse(&req, wide, "c.a", &list, &err), 0);
	assert_int_equal(list.n_filters, NEXSRV_LIST_MAX_FILTERS);
	assert_string_equal(list.filter_column[7], "c.h");
	assert_string_equal(list.filter_value[7], "7");
	nexsrv_list_fini(&list);
}

static void test_range(void **state)
{
	struct nexsrv_list list;
	struct nx_err err;

	(void)state;
	assert_int_equal(parse(NULL, NULL, "[0,24]", &list, &err), 0);
	assert_int_equal(list.offset, 0);
	assert_int_equal(list.limit, 25);
	nexsrv_list_fini(&list);
	assert_int_equal(parse(NULL, NULL, "[10,10]", &list, &err), 0);
	assert_int_equal(list.offset, 10);
	assert_int_equal(list.limit, 1);
	nexsrv_list_fini(&list);
	/* a page is never larger than the maximum */
	assert_int_equal(parse(NULL, NULL, "[100,99999]", &list, &err), 0);
	assert_int_equal(list.offset, 100);
	assert_int_equal(list.limit, NEXSRV_LIST_MAX_LIMIT);
	nexsrv_list_fini(&list);
	/* all three together */
	assert_int_equal(parse("[\"id\",\"DESC\"]", "{\"relay\":false}", "[5,9]", &list, &err), 0);
	assert_string_equal(list.order_by, "o.id DESC");
	assert_string_equal(list.filter_value[0], "false");
	assert_int_equal(list.offset, 5);
	assert_int_equal(list.limit, 5);
	nexsrv_list_fini(&list);
}

static void test_range_refused(void **state)
{
	(void)state;
	refuse(NULL, NULL, "", "range: not valid JSON");
	refuse(NULL, NULL, "[0,", "range: not valid JSON");
	refuse(NULL, NULL, "[0]", "range: expected [first, last]");
	refuse(NULL, NULL, "[0,1,2]", "range: expected [first, last]");
	refuse(NULL, NULL, "{\"first\":0}", "range: expected [first, last]");
	refuse(NULL, NULL, "[5,1]", "range: last (1) is before first (5)");
	refuse(NULL, NULL, "[-1,3]", "range: first is out of range");
	refuse(NULL, NULL, "[0,-3]", "range: last is out of range");
	refuse(NULL, NULL, "[\"0\",1]", "range: first is not an integer");
	refuse(NULL, NULL, "[0,1.0]", "range: last is not an integer");
	refuse(NULL, NULL, "[0,1e3]", "range: last is not an integer");
	refuse(NULL, NULL, "[0,18446744073709551615]", "range: last is out of range");
	refuse(NULL, NULL, "[1000000000000001,1000000000000002]", "range: first is out of range");
	/* the first bad parameter is the one reported */
	refuse("[\"nope\",\"ASC\"]", "{\"nope\":1}", "[2,1]", "sort: unknown field");
	refuse("[\"name\",\"ASC\"]", "{\"nope\":1}", "[2,1]", "filter: unknown field");
}

static void test_where_overflow(void **state)
{
	struct nexsrv_list list;
	struct nx_err err;
	char where[24] = "a = $1";
	const char *params[1 + NEXSRV_LIST_MAX_FILTERS] = { "x" };
	int n = 1;

	(void)state;
	assert_int_equal(parse(NULL, "{\"name\":\"a\",\"id\":\"b\"}", NULL, &list, &err), 0);
	assert_int_equal(nexsrv_list_where(&list, where, sizeof(where), params, &n), -ENOSPC);
	assert_int_equal(strncmp(where, "a = $1", 6), 0);
	nexsrv_list_fini(&list);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),       cmocka_unit_test(test_sort),
		cmocka_unit_test(test_sort_refused),   cmocka_unit_test(test_filter),
		cmocka_unit_test(test_filter_refused), cmocka_unit_test(test_filter_limit),
		cmocka_unit_test(test_range),	       cmocka_unit_test(test_range_refused),
		cmocka_unit_test(test_where_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
