/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for the pure parts of nexsrv/nexsrv_http: the path and query parsers
 * (segments, percent-decoding, what they refuse and why) and the routing table (pattern
 * rules, clashes, matching, parameters, precedence, 404 versus 405, HEAD).  No sockets.
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

#include "lib/strutil.h"
#include "nexsrv/nexsrv_http.h"

#define assert_rejected(rc, code, err, want)                                      \
	do {                                                                      \
		assert_int_equal((rc), -(code));                                  \
		assert_true((err).msg[0] != '\0');                                \
		if (!strstr((err).msg, (want)))                                   \
			fail_msg("expected \"%s\" in \"%s\"", (want), (err).msg); \
	} while (0)

static int path_parse(const char *s, struct nexsrv_path *p, struct nx_err *err)
{
	return nexsrv_path_parse(s, strlen(s), p, err);
}

static int query_parse(const char *s, struct nexsrv_query *q, struct nx_err *err)
{
	return nexsrv_query_parse(s, strlen(s), q, err);
}

static void test_path_segments(void **state)
{
	struct nexsrv_path p;
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(path_parse("/", &p, &err), 0);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.seg[0], "");
	nexsrv_path_fini(&p);

	assert_int_equal(path_parse("/api/vpcs", &p, &err), 0);
	assert_int_equal(p.n, 2);
	assert_string_equal(p.seg[0], "api");
	assert_string_equal(p.seg[1], "vpcs");
	nexsrv_path_fini(&p);

	/* a trailing slash is an empty last segment; so is a doubled slash in the middle */
	assert_int_equal(path_parse("/api/vpcs/", &p, &err), 0);
	assert_int_equal(p.n, 3);
	assert_string_equal(p.seg[2], "");
	nexsrv_path_fini(&p);
	assert_int_equal(path_parse("/a//b", &p, &err), 0);
	assert_int_equal(p.n, 3);
	assert_string_equal(p.seg[1], "");
	nexsrv_path_fini(&p);

	/* decoding happens per segment: an encoded '/' stays inside its segment */
	assert_int_equal(path_parse("/a%20b/c%2Fd/e+f/%C3%A9t%C3%A9/%7e", &p, &err), 0);
	assert_int_equal(p.n, 5);
	assert_string_equal(p.seg[0], "a b");
	assert_string_equal(p.seg[1], "c/d");
	assert_string_equal(p.seg[2], "e+f");
	assert_string_equal(p.seg[3], "\xc3\xa9t\xc3\xa9");
	assert_string_equal(p.seg[4], "~");
	nexsrv_path_fini(&p);

	/* raw UTF-8 is taken as it is; '.' and '..' are ordinary segments (no route has them) */
	assert_int_equal(path_parse("/\xc3\xa9/../.", &p, &err), 0);
	assert_int_equal(p.n, 3);
	assert_string_equal(p.seg[1], "..");
	nexsrv_path_fini(&p);

	/* exactly the maximum number of segments */
	{
		char buf[2 * NEXSRV_PATH_MAX_SEGMENTS + 2] = "";

		for (int i = 0; i < NEXSRV_PATH_MAX_SEGMENTS; i++)
			nx_strlcat(buf, "/x", sizeof(buf));
		assert_int_equal(path_parse(buf, &p, &err), 0);
		assert_int_equal(p.n, NEXSRV_PATH_MAX_SEGMENTS);
		nexsrv_path_fini(&p);
		nx_strlcat(buf, "/", sizeof(buf));
		assert_rejected(path_parse(buf, &p, &err), E2BIG, err, "more than 32 segments");
		assert_null(p.buf);
	}
	nexsrv_path_fini(NULL);
}

static void test_path_rejects(void **state)
{
	static const struct {
		const char *path;
		const char *why;
	} bad[] = {
		{ "", "must start with '/'" },
		{ "api/vpcs", "must start with '/'" },
		{ "http://example.com/x", "must start with '/'" },
		{ "/a%zz", "bad percent-encoding \"%zz\" in the path" },
		{ "/a%2", "bad percent-encoding \"%2\" in the path" },
		{ "/a%", "bad percent-encoding \"%\" in the path" },
		{ "/%g0", "bad percent-encoding" },
		{ "/a%00b", "%00 (NUL) is not allowed in the path" },
		{ "/a%0Ab", "control character %0A is not allowed in the path" },
		{ "/a%7f", "control character %7F" },
		{ "/a b", "invalid character 0x20 in the path" },
		{ "/a\tb", "invalid character 0x09" },
		{ "/a\x7f", "invalid character 0x7f" },
		{ "/%ff", "does not decode to valid UTF-8" },
		{ "/%C0%AF", "does not decode to valid UTF-8" },       /* overlong '/' */
		{ "/%ED%A0%80", "does not decode to valid UTF-8" },    /* a surrogate */
		{ "/%F4%90%80%80", "does not decode to valid UTF-8" }, /* > U+10FFFF */
		{ "/\xc3", "does not decode to valid UTF-8" },
	};
	struct nexsrv_path p;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct nx_err err = { "" };
		int rc = path_parse(bad[i].path, &p, &err);

		if (rc != -EINVAL || !strstr(err.msg, bad[i].why))
			fail_msg("path \"%s\": rc %d, message \"%s\", expected \"%s\"", bad[i].path,
				 rc, err.msg, bad[i].why);
		assert_null(p.buf);
		assert_int_equal(p.n, 0);
	}

	{
		static char longpath[NEXSRV_URI_MAX + 2];
		struct nx_err err = { "" };

		memset(longpath, 'a', sizeof(longpath) - 1);
		longpath[0] = '/';
		assert_rejected(path_parse(longpath, &p, &err), E2BIG, err, "longer than 8192");
	}
	/* the length is what counts, not a NUL: an embedded NUL is a raw control byte */
	{
		struct nx_err err = { "" };

		assert_rejected(nexsrv_path_parse("/a\0b", 4, &p, &err), EINVAL, err,
				"invalid character 0x00");
	}
}

static void test_query(void **state)
{
	struct nexsrv_query q;
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(query_parse("", &q, &err), 0);
	assert_int_equal(q.n, 0);
	assert_null(nexsrv_query_get(&q, "a"));
	nexsrv_query_fini(&q);

	assert_int_equal(query_parse("gt_revision=42&at_tail=true", &q, &err), 0);
	assert_int_equal(q.n, 2);
	assert_string_equal(nexsrv_query_get(&q, "gt_revision"), "42");
	assert_string_equal(nexsrv_query_get(&q, "at_tail"), "true");
	assert_null(nexsrv_query_get(&q, "gt"));
	assert_null(nexsrv_query_get(&q, NULL));
	nexsrv_query_fini(&q);

	/* repeated keys: the first wins; empty pairs vanish; a bare key has the value "" */
	assert_int_equal(query_parse("&&a=1&a=2&flag&b=&=v&", &q, &err), 0);
	assert_int_equal(q.n, 5);
	assert_string_equal(nexsrv_query_get(&q, "a"), "1");
	assert_string_equal(q.p[1].value, "2");
	assert_string_equal(nexsrv_query_get(&q, "flag"), "");
	assert_string_equal(nexsrv_query_get(&q, "b"), "");
	assert_string_equal(nexsrv_query_get(&q, ""), "v");
	nexsrv_query_fini(&q);

	/* form encoding: '+' is a space, %2B a plus, '=' after the first is data */
	assert_int_equal(
		query_parse("filter=%7B%22name%22%3A%22a+b%2Bc%22%7D&eq=x=y&k%20ey=%0A", &q, &err),
		0);
	assert_string_equal(nexsrv_query_get(&q, "filter"), "{\"name\":\"a b+c\"}");
	assert_string_equal(nexsrv_query_get(&q, "eq"), "x=y");
	assert_string_equal(nexsrv_query_get(&q, "k ey"), "\n");
	nexsrv_query_fini(&q);

	/* the maximum number of parameters */
	{
		char buf[4 * NEXSRV_QUERY_MAX_PARAMS + 8] = "";

		for (int i = 0; i < NEXSRV_QUERY_MAX_PARAMS; i++)
			nx_strlcat(buf, "a=1&", sizeof(buf));
		assert_int_equal(query_parse(buf, &q, &err), 0);
		assert_int_equal(q.n, NEXSRV_QUERY_MAX_PARAMS);
		nexsrv_query_fini(&q);
		nx_strlcat(buf, "b", sizeof(buf));
		assert_rejected(query_parse(buf, &q, &err), E2BIG, err, "more than 64 parameters");
		assert_null(q.buf);
	}

	assert_rejected(query_parse("a=%zz", &q, &err), EINVAL, err,
			"bad percent-encoding \"%zz\" in the query");
	assert_rejected(query_parse("a=%00", &q, &err), EINVAL, err, "(NUL) is not allowed");
	assert_rejected(query_parse("%ff=1", &q, &err), EINVAL, err, "valid UTF-8");
	assert_rejected(query_parse("a=b c", &q, &err), EINVAL, err, "invalid character 0x20");
	nexsrv_query_fini(NULL);
}

static int handler_a(struct nexsrv_req *req, void *arg)
{
	(void)req;
	(void)arg;
	return 0;
}

static int handler_b(struct nexsrv_req *req, void *arg)
{
	(void)req;
	(void)arg;
	return 0;
}

static int add(struct nexsrv_router *r, const char *method, const char *pattern, struct nx_err *err)
{
	return nexsrv_router_add(r,
				 &(struct nexsrv_route){ .method = method,
							 .pattern = pattern,
							 .handler = handler_a },
				 err);
}

static void test_route_rules(void **state)
{
	struct nexsrv_router *r = nexsrv_router_new();
	struct nx_err err = { "" };
	char pattern[128];

	(void)state;
	assert_int_equal(add(r, "GET", "/", &err), 0);
	assert_int_equal(add(r, "GET", "/api/vpcs/{id}/events", &err), 0);
	assert_int_equal(add(r, "POST", "/api/vpcs/{id}/events", &err), 0);
	assert_int_equal(add(r, "GET", "/api/vpcs/{id}/{what}", &err), 0);
	assert_int_equal(add(r, "GET", "/x:y/a@b/c~d/e.f-g_h/$&'()*+,;=!", &err), 0);

	assert_rejected(add(r, "GET", "/api/vpcs/{vpc}/events", &err), EEXIST, err,
			"clashes with GET /api/vpcs/{id}/events");
	assert_rejected(add(r, "get", "/x", &err), EINVAL, err, "method \"get\" is not an upper");
	assert_rejected(add(r, "", "/x", &err), EINVAL, err, "method \"\"");
	assert_rejected(add(r, "GET", "x", &err), EINVAL, err, "starts with '/'");
	assert_rejected(add(r, "GET", "", &err), EINVAL, err, "starts with '/'");
	assert_rejected(add(r, "GET", "/a//b", &err), EINVAL, err, "empty segment");
	assert_rejected(add(r, "GET", "/a/", &err), EINVAL, err, "empty segment");
	assert_rejected(add(r, "GET", "/{}", &err), EINVAL, err, "bad parameter name in segment 1");
	assert_rejected(add(r, "GET", "/a/{1x}", &err), EINVAL, err,
			"bad parameter name in segment 2");
	assert_rejected(add(r, "GET", "/{id}/{id}", &err), EINVAL, err, "{id} appears twice");
	assert_rejected(add(r, "GET", "/a{id}", &err), EINVAL, err, "character '{' not allowed");
	assert_rejected(add(r, "GET", "/a%20b", &err), EINVAL, err, "character '%' not allowed");
	assert_rejected(add(r, "GET", "/a b", &err), EINVAL, err, "character ' ' not allowed");
	assert_rejected(add(r, "GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", &err), EINVAL, err,
			"more than 8 parameters");
	pattern[0] = '\0';
	for (int i = 0; i <= NEXSRV_PATH_MAX_SEGMENTS; i++)
		nx_strlcat(pattern, "/s", sizeof(pattern));
	assert_rejected(add(r, "GET", pattern, &err), EINVAL, err, "more than 32 segments");
	assert_rejected(
		nexsrv_router_add(r, &(struct nexsrv_route){ .method = "GET", .pattern = "/z" },
				  &err),
		EINVAL, err, "handler are required");
	nexsrv_router_free(r);
	nexsrv_router_free(NULL);
}

static enum nexsrv_match_result match(struct nexsrv_router *r, const char *method, const char *path,
				      struct nexsrv_match *m)
{
	struct nexsrv_path p;
	enum nexsrv_match_result res;

	assert_int_equal(path_parse(path, &p, NULL), 0);
	res = nexsrv_router_match(r, method, &p, m);
	/* parameter values point into p: copy what the caller checks before freeing */
	{
		static char values[NEXSRV_ROUTE_MAX_PARAMS][64];

		for (size_t i = 0; res == NEXSRV_MATCH_OK && i < m->n_params; i++) {
			snprintf(values[i], sizeof(values[i]), "%s", m->params[i].value);
			m->params[i].value = values[i];
		}
	}
	nexsrv_path_fini(&p);
	return res;
}

static void test_route_matching(void **state)
{
	struct nexsrv_router *r = nexsrv_router_new();
	struct nexsrv_match m;
	int tag_list = 1, tag_get = 2;

	(void)state;
	assert_int_equal(nexsrv_router_add(r,
					   &(struct nexsrv_route){ .method = "GET",
								   .pattern = "/api/devices",
								   .handler = handler_a,
								   .arg = &tag_list },
					   NULL),
			 0);
	assert_int_equal(nexsrv_router_add(r,
					   &(struct nexsrv_route){ .method = "GET",
								   .pattern = "/api/devices/{id}",
								   .handler = handler_b,
								   .flags = NEXSRV_ROUTE_AUTH,
								   .arg = &tag_get },
					   NULL),
			 0);
	assert_int_equal(add(r, "DELETE", "/api/devices/{id}", NULL), 0);
	assert_int_equal(add(r, "POST", "/api/devices/metadata", NULL), 0);
	assert_int_equal(add(r, "GET", "/api/orgs/{org}/users/{uid}", NULL), 0);
	assert_int_equal(add(r, "GET", "/api/{kind}/special", NULL), 0);
	assert_int_equal(add(r, "GET", "/api/orgs/{org}/{sub}", NULL), 0);

	assert_int_equal(match(r, "GET", "/api/devices", &m), NEXSRV_MATCH_OK);
	assert_ptr_equal(m.route->handler, handler_a);
	assert_ptr_equal(m.route->arg, &tag_list);
	assert_string_equal(m.route->pattern, "/api/devices");
	assert_int_equal(m.n_params, 0);

	assert_int_equal(match(r, "GET", "/api/devices/d%201", &m), NEXSRV_MATCH_OK);
	assert_ptr_equal(m.route->handler, handler_b);
	assert_int_equal(m.route->flags, NEXSRV_ROUTE_AUTH);
	assert_int_equal(m.n_params, 1);
	assert_string_equal(m.params[0].key, "id");
	assert_string_equal(m.params[0].value, "d 1");

	assert_int_equal(match(r, "GET", "/api/orgs/o1/users/u2", &m), NEXSRV_MATCH_OK);
	assert_string_equal(m.route->pattern, "/api/orgs/{org}/users/{uid}");
	assert_int_equal(m.n_params, 2);
	assert_string_equal(m.params[0].key, "org");
	assert_string_equal(m.params[0].value, "o1");
	assert_string_equal(m.params[1].key, "uid");
	assert_string_equal(m.params[1].value, "u2");

	/* a literal beats a parameter at the first place they differ... */
	assert_int_equal(match(r, "POST", "/api/devices/metadata", &m), NEXSRV_MATCH_OK);
	assert_string_equal(m.route->pattern, "/api/devices/metadata");
	assert_int_equal(match(r, "GET", "/api/orgs/special", &m), NEXSRV_MATCH_OK);
	assert_string_equal(m.route->pattern, "/api/{kind}/special");
	assert_int_equal(match(r, "GET", "/api/orgs/x/special", &m), NEXSRV_MATCH_OK);
	assert_string_equal(m.route->pattern, "/api/orgs/{org}/{sub}");
	/* ...but only among routes for the method: GET falls back to the parameter */
	assert_int_equal(match(r, "GET", "/api/devices/metadata", &m), NEXSRV_MATCH_OK);
	assert_string_equal(m.route->pattern, "/api/devices/{id}");
	assert_string_equal(m.params[0].value, "metadata");

	/* the trailing slash is not special; case matters; segments count */
	assert_int_equal(match(r, "GET", "/api/devices/", &m), NEXSRV_MATCH_OK);
	assert_string_equal(m.route->pattern, "/api/devices/{id}");
	assert_string_equal(m.params[0].value, "");
	assert_int_equal(match(r, "GET", "/api/Devices", &m), NEXSRV_MATCH_NOT_FOUND);
	assert_int_equal(match(r, "GET", "/api", &m), NEXSRV_MATCH_NOT_FOUND);
	assert_int_equal(match(r, "GET", "/api/devices/a/b/c", &m), NEXSRV_MATCH_NOT_FOUND);
	assert_int_equal(match(r, "GET", "/", &m), NEXSRV_MATCH_NOT_FOUND);
	/* literals compare decoded: an encoded unreserved character is the same character */
	assert_int_equal(match(r, "GET", "/api/devic%65s", &m), NEXSRV_MATCH_OK);
	assert_string_equal(m.route->pattern, "/api/devices");

	/* 405, and which methods would do */
	assert_int_equal(match(r, "PUT", "/api/devices/x", &m), NEXSRV_MATCH_BAD_METHOD);
	assert_null(m.route);
	assert_string_equal(m.allow, "GET, HEAD, DELETE");
	assert_int_equal(match(r, "DELETE", "/api/devices", &m), NEXSRV_MATCH_BAD_METHOD);
	assert_string_equal(m.allow, "GET, HEAD");

	/* HEAD is served by GET routes, and a HEAD route of its own wins */
	assert_int_equal(match(r, "HEAD", "/api/devices", &m), NEXSRV_MATCH_OK);
	assert_string_equal(m.route->method, "GET");
	assert_int_equal(add(r, "HEAD", "/api/devices", NULL), 0);
	assert_int_equal(match(r, "HEAD", "/api/devices", &m), NEXSRV_MATCH_OK);
	assert_string_equal(m.route->method, "HEAD");
	assert_int_equal(match(r, "POST", "/api/devices", &m), NEXSRV_MATCH_BAD_METHOD);
	assert_string_equal(m.allow, "GET, HEAD");
	nexsrv_router_free(r);
}

static void test_route_is_copied(void **state)
{
	struct nexsrv_router *r = nexsrv_router_new();
	struct nexsrv_match m;
	char method[8] = "GET", pattern[32] = "/tmp/{x}";

	(void)state;
	assert_int_equal(nexsrv_router_add(r,
					   &(struct nexsrv_route){ .method = method,
								   .pattern = pattern,
								   .handler = handler_a },
					   NULL),
			 0);
	nx_strlcpy(method, "PUT", sizeof(method));
	nx_strlcpy(pattern, "/changed", sizeof(pattern));
	assert_int_equal(match(r, "GET", "/tmp/1", &m), NEXSRV_MATCH_OK);
	assert_string_equal(m.route->pattern, "/tmp/{x}");
	assert_string_equal(m.params[0].key, "x");
	nexsrv_router_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_segments),  cmocka_unit_test(test_path_rejects),
		cmocka_unit_test(test_query),	       cmocka_unit_test(test_route_rules),
		cmocka_unit_test(test_route_matching), cmocka_unit_test(test_route_is_copied),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
