/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lib/jsondoc: the tokens of a document (types, counts, where each value
 * ends), member lookup, strings, integers, input without a NUL after it, documents larger
 * and deeper than the scanner's first allocations, and errors that leave no tokens.  What is
 * refused, and with which message, is tested through nx_json_parse (test_jsonutil), which
 * runs the same check; fuzz_json holds the two to each other.
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

#include "lib/jsondoc.h"

/* Parses s from a heap copy with nothing after it, so that a read past the end is caught by
 * the address sanitizer. */
static int parse_exact(struct nx_jdoc *d, const char *s, size_t depth, char **copy,
		       struct nx_err *err)
{
	size_t n = strlen(s);

	*copy = malloc(n ? n : 1);
	assert_non_null(*copy);
	memcpy(*copy, s, n);
	return nx_jdoc_parse(d, *copy, n, depth, err);
}

static void test_tokens(void **state)
{
	const char *s = "{\"a\":[1,{\"b\":null}],\"c\":\"x\",\"a\":true}";
	struct nx_jdoc d = NX_JDOC_INIT;
	struct nx_err err = { "" };
	size_t a, arr;

	(void)state;
	assert_int_equal(nx_jdoc_parse(&d, s, strlen(s), 4, &err), 0);
	/* { "a" [ 1 { "b" null } "c" "x" "a" true } */
	assert_int_equal(d.n, 11);
	assert_int_equal(nx_jdoc_type(&d, 0), NX_JT_OBJECT);
	assert_int_equal(d.tok[0].count, 3);
	assert_int_equal(nx_jdoc_next(&d, 0), 11);
	assert_int_equal(d.tok[0].len, strlen(s));
	arr = 2;
	assert_int_equal(nx_jdoc_type(&d, arr), NX_JT_ARRAY);
	assert_int_equal(d.tok[arr].count, 2);
	assert_int_equal(nx_jdoc_next(&d, arr), 7);
	assert_memory_equal(s + d.tok[arr].off, "[1,{\"b\":null}]", d.tok[arr].len);
	assert_int_equal(nx_jdoc_type(&d, 4), NX_JT_OBJECT);
	assert_int_equal(nx_jdoc_member(&d, 4, "b"), 6);
	assert_int_equal(nx_jdoc_type(&d, 6), NX_JT_NULL);

	/* A repeated name: the last value, as json-c keeps it. */
	a = nx_jdoc_member(&d, 0, "a");
	assert_int_equal(a, 10);
	assert_int_equal(nx_jdoc_type(&d, a), NX_JT_BOOL);
	assert_true(d.tok[a].truth);
	assert_int_equal(nx_jdoc_member(&d, 0, "c"), 8);
	assert_int_equal(nx_jdoc_member(&d, 0, "b"), 0);   /* only in a nested object */
	assert_int_equal(nx_jdoc_member(&d, arr, "a"), 0); /* not an object */
	assert_int_equal(nx_jdoc_member(&d, 0, ""), 0);
	assert_string_equal(nx_jdoc_type_name(&d, arr), "an array");
	assert_string_equal(nx_jdoc_type_name(&d, 3), "an integer");
	nx_jdoc_fini(&d);
}

static void test_empty_containers_and_scalars(void **state)
{
	static const struct {
		const char *in;
		enum nx_jtype type;
		size_t n;
	} docs[] = {
		{ "{}", NX_JT_OBJECT, 1 },     { " [ ] ", NX_JT_ARRAY, 1 },
		{ "null", NX_JT_NULL, 1 },     { "-0", NX_JT_INT, 1 },
		{ "1.5e-3", NX_JT_REAL, 1 },   { "\"\"", NX_JT_STRING, 1 },
		{ "[[],{}]", NX_JT_ARRAY, 3 },
	};
	struct nx_jdoc d = NX_JDOC_INIT;
	char *copy;

	(void)state;
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		assert_int_equal(parse_exact(&d, docs[i].in, 4, &copy, NULL), 0);
		assert_int_equal(d.n, docs[i].n);
		assert_int_equal(nx_jdoc_type(&d, 0), docs[i].type);
		assert_int_equal(d.tok[0].count, docs[i].n - 1);
		free(copy);
	}
	nx_jdoc_fini(&d);
}

static void test_strings(void **state)
{
	const char *s = "[\"plain\",\"tab\\tq\\\"s\\\\\\/\",\"\\u00e9\\u20ac\\ud83d\\ude00\","
			"\"a\\u0000b\",\"0123456789\",\"\\u0041BCDEFGHIJ\"]";
	struct nx_jdoc d = NX_JDOC_INIT;
	struct nx_err err = { "" };
	char buf[16];
	size_t n;

	(void)state;
	assert_int_equal(nx_jdoc_parse(&d, s, strlen(s), 2, &err), 0);
	assert_int_equal(nx_jdoc_string(&d, 1, buf, sizeof(buf), &n), 0);
	assert_string_equal(buf, "plain");
	assert_false(d.tok[1].escaped);
	assert_int_equal(nx_jdoc_string(&d, 2, buf, sizeof(buf), &n), 0);
	assert_string_equal(buf, "tab\tq\"s\\/");
	assert_true(d.tok[2].escaped);
	assert_int_equal(nx_jdoc_string(&d, 3, buf, sizeof(buf), &n), 0);
	assert_string_equal(buf, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	assert_int_equal(n, 9);
	/* A NUL character cannot be a C string. */
	assert_int_equal(nx_jdoc_string(&d, 4, buf, sizeof(buf), &n), -EINVAL);
	assert_int_equal(n, 3);
	/* Too long for the buffer: the length it has, plain or escaped. */
	assert_int_equal(nx_jdoc_string(&d, 5, buf, 10, &n), -ENOSPC);
	assert_int_equal(n, 10);
	assert_int_equal(nx_jdoc_string(&d, 5, buf, 11, &n), 0);
	assert_string_equal(buf, "0123456789");
	assert_int_equal(nx_jdoc_string(&d, 6, buf, 10, &n), -ENOSPC);
	assert_int_equal(n, 10);
	/* Not a string. */
	assert_int_equal(nx_jdoc_string(&d, 0, buf, sizeof(buf), NULL), -EINVAL);
	nx_jdoc_fini(&d);
}

static void test_escaped_keys(void **state)
{
	const char *s = "{\"\\u0061\":1,\"b\\\"c\":2,\"\\ud83d\\ude00\":3}";
	struct nx_jdoc d = NX_JDOC_INIT;
	int64_t v;

	(void)state;
	assert_int_equal(nx_jdoc_parse(&d, s, strlen(s), 2, NULL), 0);
	assert_int_equal(nx_jdoc_int64(&d, nx_jdoc_member(&d, 0, "a"), &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(nx_jdoc_int64(&d, nx_jdoc_member(&d, 0, "b\"c"), &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(nx_jdoc_int64(&d, nx_jdoc_member(&d, 0, "\xf0\x9f\x98\x80"), &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(nx_jdoc_member(&d, 0, "\xf0\x9f\x98"), 0);
	assert_int_equal(nx_jdoc_member(&d, 0, "ab"), 0);
	nx_jdoc_fini(&d);
}

static void test_integers(void **state)
{
	const char *s = "[-9223372036854775808,9223372036854775807,9223372036854775808,"
			"18446744073709551615,-1,-0,1.0]";
	struct nx_jdoc d = NX_JDOC_INIT;
	int64_t i;
	uint64_t u;

	(void)state;
	assert_int_equal(nx_jdoc_parse(&d, s, strlen(s), 2, NULL), 0);
	assert_int_equal(nx_jdoc_int64(&d, 1, &i), 0);
	assert_true(i == INT64_MIN);
	assert_int_equal(nx_jdoc_uint64(&d, 1, &u), -ERANGE);
	assert_int_equal(nx_jdoc_int64(&d, 2, &i), 0);
	assert_true(i == INT64_MAX);
	assert_int_equal(nx_jdoc_int64(&d, 3, &i), -ERANGE);
	assert_int_equal(nx_jdoc_uint64(&d, 3, &u), 0);
	assert_true(u == (uint64_t)INT64_MAX + 1);
	assert_int_equal(nx_jdoc_uint64(&d, 4, &u), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(nx_jdoc_int64(&d, 5, &i), 0);
	assert_true(i == -1);
	assert_int_equal(nx_jdoc_uint64(&d, 5, &u), -ERANGE);
	assert_int_equal(nx_jdoc_uint64(&d, 6, &u), 0);
	assert_true(u == 0);
	assert_int_equal(nx_jdoc_int64(&d, 7, &i), -EINVAL); /* 1.0 is not an integer */
	assert_int_equal(nx_jdoc_int64(&d, 0, &i), -EINVAL);
	nx_jdoc_fini(&d);
}

/* Values that end the input: nothing is read past it. */
static void test_no_terminator(void **state)
{
	static const char *good[] = { "123", "-0", "1.5e3", "true", "null", "\"ab\"", "[1]" };
	static const char *bad[] = { "12.",   "1e",	 "-",  "tru",	 "\"ab",
				     "\"a\\", "\"\\u00", "[1", "{\"a\"", "{\"a\":" };
	struct nx_jdoc d = NX_JDOC_INIT;
	struct nx_err err;
	char *copy;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (parse_exact(&d, good[i], 2, &copy, &err) != 0)
			fail_msg("\"%s\" refused: %s", good[i], err.msg);
		free(copy);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		if (parse_exact(&d, bad[i], 2, &copy, &err) != -EINVAL)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_true(err.msg[0] != '\0');
		assert_int_equal(d.n, 0);
		free(copy);
	}
	nx_jdoc_fini(&d);
}

/* More tokens than the first allocation, deeper than the first stack; then a refused
 * document leaves none, and the same doc parses again. */
static void test_large_and_deep(void **state)
{
	struct nx_jdoc d = NX_JDOC_INIT;
	size_t depth = 300, n = 5000, off = 0;
	char *s = malloc(n * 8 + 2 * depth + 16);
	int64_t v;

	(void)state;
	assert_non_null(s);
	s[off++] = '[';
	for (size_t i = 0; i < n; i++)
		off += (size_t)sprintf(s + off, "%s%zu", i ? "," : "", i);
	s[off++] = ']';
	assert_int_equal(nx_jdoc_parse(&d, s, off, 1, NULL), 0);
	assert_int_equal(d.n, n + 1);
	assert_int_equal(d.tok[0].count, n);
	assert_int_equal(nx_jdoc_int64(&d, n, &v), 0);
	assert_int_equal(v, (int64_t)n - 1);

	memset(s, '[', depth);
	memset(s + depth, ']', depth);
	assert_int_equal(nx_jdoc_parse(&d, s, 2 * depth, depth, NULL), 0);
	assert_int_equal(d.n, depth);
	assert_int_equal(nx_jdoc_next(&d, 0), depth);
	assert_int_equal(nx_jdoc_next(&d, depth - 1), depth);
	assert_int_equal(d.tok[depth - 2].count, 1);
	assert_int_equal(nx_jdoc_parse(&d, s, 2 * depth, depth - 1, NULL), -EINVAL);
	assert_int_equal(d.n, 0);
	assert_int_equal(nx_jdoc_parse(&d, "[true]", 6, 1, NULL), 0);
	assert_int_equal(d.n, 2);
	free(s);
	nx_jdoc_fini(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_empty_containers_and_scalars),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_escaped_keys),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_no_terminator),
		cmocka_unit_test(test_large_and_deep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
