/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lib/jsonutil: what nx_json_parse accepts and rejects (with
 * offsets), typed getters (missing vs wrong type vs out of range), optional
 * getters, serialisation and the add helpers.
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

#include "lib/jsonutil.h"

#define assert_err_contains(e, sub)                                              \
	do {                                                                     \
		assert_true((e).msg[0] != '\0');                                 \
		if (!strstr((e).msg, (sub)))                                     \
			fail_msg("message \"%s\" lacks \"%s\"", (e).msg, (sub)); \
	} while (0)

static struct json_object *parse(const char *s, size_t depth, struct nx_err *err)
{
	return nx_json_parse(s, strlen(s), depth, err);
}

/* Parses s and checks it serialises (compactly) to want. */
static void expect_ok(const char *s, size_t depth, const char *want)
{
	struct nx_err err = { "" };
	struct json_object *o = parse(s, depth, &err);
	char *out;

	if (!o)
		fail_msg("\"%s\" rejected: %s", s, err.msg);
	out = nx_json_to_string(o, NX_JSON_PLAIN);
	assert_non_null(out);
	assert_string_equal(out, want);
	free(out);
	json_object_put(o);
}

static void test_parse_good(void **state)
{
	(void)state;
	expect_ok("{}", 1, "{}");
	expect_ok("[]", 1, "[]");
	expect_ok("{\"a\":1,\"b\":[true,false,null],\"c\":\"x\"}", 2,
		  "{\"a\":1,\"b\":[true,false,null],\"c\":\"x\"}");
	expect_ok(" \t\r\n{ \"a\" : [ 1 , 2 ] }\n ", 2, "{\"a\":[1,2]}");
	/* bare scalars, including a number that ends the input */
	expect_ok("123", 0, "123");
	expect_ok("-0", 0, "0");
	expect_ok("0", 0, "0");
	expect_ok("1.5e3", 0, "1.5e3");
	expect_ok("-0.25E-2", 0, "-0.25E-2");
	expect_ok("\"hi\"", 0, "\"hi\"");
	expect_ok("true", 0, "true");
	/* integer limits */
	expect_ok("[9223372036854775807,-9223372036854775808,18446744073709551615]", 1,
		  "[9223372036854775807,-9223372036854775808,18446744073709551615]");
	/* escapes, UTF-8 and surrogate pairs */
	expect_ok("\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\"", 0, "\"a\\\"\\\\/\\b\\f\\n\\r\\t\"");
	expect_ok("\"\\u00e9\xc3\xa9\\ud83d\\ude00\xf0\x9f\x98\x80\"", 0,
		  "\"\xc3\xa9\xc3\xa9\xf0\x9f\x98\x80\xf0\x9f\x98\x80\"");
	expect_ok("\"/path\"", 0, "\"/path\"");
	/* depth exactly at the limit */
	expect_ok("[[1]]", 2, "[[1]]");
	expect_ok("{\"a\":{\"b\":{}}}", 3, "{\"a\":{\"b\":{}}}");
	expect_ok("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
		  NX_JSON_DEFAULT_DEPTH,
		  "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
}

/* The buffer need not be NUL-terminated: only len bytes are read. */
static void test_parse_slice(void **state)
{
	static const char buf[] = "[1,2]xyz";
	struct nx_err err = { "" };
	struct json_object *o;

	(void)state;
	o = nx_json_parse(buf, 5, 1, &err);
	assert_non_null(o);
	assert_int_equal(json_object_array_length(o), 2);
	json_object_put(o);

	o = nx_json_parse("12345", 3, 0, &err);
	assert_non_null(o);
	assert_int_equal(json_object_get_int64(o), 123);
	json_object_put(o);
}

struct bad_json {
	const char *in;
	size_t depth;
	const char *msg;
};

static const struct bad_json bad_json[] = {
	/* empty, trailing garbage */
	{ " \n\t", 4, "no JSON value in input (only whitespace)" },
	{ "{} x", 4, "trailing data after the JSON value at offset 3" },
	{ "{}{}", 4, "trailing data after the JSON value at offset 2" },
	{ "1 2", 4, "trailing data after the JSON value at offset 2" },
	{ "\"a\"\"b\"", 4, "trailing data after the JSON value at offset 3" },
	{ "[1]]", 4, "trailing data after the JSON value at offset 3" },
	{ "]", 4, "unexpected character ']' at offset 0" },
	{ ":", 4, "unexpected character ':' at offset 0" },
	{ "\xef\xbb\xbf{}", 4, "unexpected byte 0xef at offset 0" },
	/* depth */
	{ "[[[1]]]", 2, "nesting deeper than 2 at offset 2" },
	{ "[[]]", 1, "nesting deeper than 1 at offset 1" },
	{ "[]", 0, "nesting deeper than 0 at offset 0" },
	{ "{\"a\":{\"b\":{}}}", 2, "nesting deeper than 2 at offset 10" },
	/* incomplete */
	{ "[1", 4, "unexpected end of input at offset 2 (1 unclosed bracket)" },
	{ "{\"a\":[", 4, "unexpected end of input at offset 6 (2 unclosed brackets)" },
	{ "\"abc", 4, "unterminated string starting at offset 0" },
	{ "[\"abc\\", 4, "unterminated string starting at offset 1" },
	/* literals and lenient json-c syntax */
	{ "NaN", 4, "invalid literal 'NaN' at offset 0" },
	{ "[Infinity]", 4, "invalid literal 'Infinity' at offset 1" },
	{ "[-Infinity]", 4, "invalid number '-I' at offset 1: digit expected after '-'" },
	{ "True", 4, "invalid literal 'True' at offset 0" },
	{ "[nulls]", 4, "invalid literal 'nulls' at offset 1" },
	{ "{'a':1}", 4, "unexpected character ''' at offset 1" },
	{ "{a:1}", 4, "invalid literal 'a' at offset 1" },
	{ "[1,/*c*/2]", 4, "unexpected character '/' at offset 3" },
	{ "[1,\v2]", 4, "unexpected byte 0x0b at offset 3" },
	/* numbers */
	{ "01", 4, "invalid number '01' at offset 0: leading zero" },
	{ "[-01]", 4, "invalid number '-01' at offset 1: leading zero" },
	{ "1.", 4, "invalid number '1.' at offset 0: digit expected after '.'" },
	{ "[1.e5]", 4, "digit expected after '.'" },
	{ ".5", 4, "unexpected character '.' at offset 0" },
	{ "+1", 4, "unexpected character '+' at offset 0" },
	{ "[1e]", 4, "invalid number '1e]' at offset 1: digit expected in exponent" },
	{ "[1E+]", 4, "digit expected in exponent" },
	{ "[1-2]", 4, "invalid number '1-' at offset 1: unexpected character after number" },
	{ "[12a]", 4, "unexpected character after number" },
	{ "18446744073709551616", 4,
	  "invalid number '18446744073709551616' at offset 0: integer out of 64-bit range" },
	{ "[-9223372036854775809]", 4, "at offset 1: integer out of 64-bit range" },
	{ "99999999999999999999999999999999", 4, "'999999999999999999999999...'" },
	{ "1e999", 4, "invalid number '1e999' at offset 0: too large for a double" },
	{ "[-1.5e400]", 4, "too large for a double" },
	/* strings */
	{ "\"a\tb\"", 4, "unescaped control character 0x09 in string at offset 2" },
	{ "[\"\n\"]", 4, "unescaped control character 0x0a in string at offset 2" },
	{ "\"\\x41\"", 4, "invalid escape '\\x' at offset 1" },
	{ "\"\\'\"", 4, "invalid escape '\\'' at offset 1" },
	{ "\"\\u12\"", 4, "invalid \\u escape at offset 1 (4 hex digits expected)" },
	{ "\"\\u12g4\"", 4, "invalid \\u escape at offset 1" },
	{ "\"\\ud800\"", 4, "unpaired UTF-16 surrogate \\ud800 at offset 1" },
	{ "\"\\ud800\\u0041\"", 4, "unpaired UTF-16 surrogate \\ud800 at offset 1" },
	{ "\"x\\udc00\"", 4, "unpaired UTF-16 surrogate \\udc00 at offset 2" },
	{ "\"\xc3\x28\"", 4, "invalid UTF-8 at offset 1" },
	{ "\"\xc0\xaf\"", 4, "invalid UTF-8 at offset 1" },
	{ "\"ab\xed\xa0\x80\"", 4, "invalid UTF-8 at offset 3" },
	{ "\"\xf4\x90\x80\x80\"", 4, "invalid UTF-8 at offset 1" },
	{ "\"\xe2\x82\"", 4, "invalid UTF-8 at offset 1" },
	/* structure (reported by json-c, still with an offset) */
	{ "[1 2]", 4, "at offset 3" },
	{ "[1,]", 4, "at offset 3" },
	{ "[1}", 4, "at offset 2" },
	{ "{1:2}", 4, "at offset 1" },
	{ "{\"a\" 1}", 4, "at offset 5" },
	{ "[,1]", 4, "at offset 1" },
	/* top-level null */
	{ "null", 4, "top-level value is null" },
	{ " null ", 4, "top-level value is null" },
};

static void test_parse_rejects(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
		struct nx_err err = { "" };
		struct json_object *o;

		errno = 0;
		o = parse(bad_json[i].in, bad_json[i].depth, &err);
		if (o)
			fail_msg("\"%s\" accepted", bad_json[i].in);
		assert_int_equal(errno, EINVAL);
		assert_err_contains(err, bad_json[i].msg);
		assert_null(parse(bad_json[i].in, bad_json[i].depth, NULL));
	}
}

static void test_parse_limits(void **state)
{
	struct nx_err err = { "" };
	char *big;

	(void)state;
	errno = 0;
	assert_null(nx_json_parse("", 0, 4, &err));
	assert_int_equal(errno, EINVAL);
	assert_err_contains(err, "empty input");
	assert_null(nx_json_parse(NULL, 0, 4, &err));
	assert_err_contains(err, "empty input");

	assert_null(nx_json_parse("[1,\0 2]", 7, 4, &err));
	assert_int_equal(errno, EINVAL);
	assert_err_contains(err, "NUL byte at offset 3");

	assert_null(nx_json_parse("1", 1, NX_JSON_DEPTH_LIMIT + 1, &err));
	assert_err_contains(err, "maximum depth 1025 exceeds the limit of 1024");

	/* exactly the limit is fine; one more byte is not */
	big = malloc(NX_JSON_MAX_BYTES + 1);
	assert_non_null(big);
	memset(big, ' ', NX_JSON_MAX_BYTES + 1);
	big[0] = '[';
	big[1] = ']';
	{
		struct json_object *o = nx_json_parse(big, NX_JSON_MAX_BYTES, 1, &err);

		assert_non_null(o);
		json_object_put(o);
	}
	errno = 0;
	assert_null(nx_json_parse(big, NX_JSON_MAX_BYTES + 1, 1, &err));
	assert_int_equal(errno, E2BIG);
	assert_err_contains(err, "input of 1048577 bytes exceeds the limit of 1048576 bytes");
	free(big);
}

static const char doc[] = "{"
			  "\"name\":\"dev1\","
			  "\"port\":51820,"
			  "\"neg\":-5,"
			  "\"big\":18446744073709551615,"
			  "\"min\":-9223372036854775808,"
			  "\"ratio\":1.5,"
			  "\"one\":1.0,"
			  "\"exp\":1e3,"
			  "\"on\":true,"
			  "\"off\":false,"
			  "\"nothing\":null,"
			  "\"obj\":{\"x\":1},"
			  "\"arr\":[1,2,3],"
			  "\"nul\":\"a\\u0000b\","
			  "\"empty\":\"\""
			  "}";

static int setup_doc(void **state)
{
	struct json_object *o = nx_json_parse(doc, strlen(doc), 4, NULL);

	*state = o;
	return o ? 0 : -1;
}

static int teardown_doc(void **state)
{
	json_object_put(*state);
	return 0;
}

struct get_case {
	const char *key;
	int code;
	const char *msg;
};

static void test_get_string(void **state)
{
	static const struct get_case bad[] = {
		{ "missing", -ENOENT, "missing required field \"missing\"" },
		{ "port", -EINVAL, "field \"port\" must be a string, got an integer" },
		{ "nothing", -EINVAL, "field \"nothing\" must be a string, got null" },
		{ "obj", -EINVAL, "got an object" },
		{ "arr", -EINVAL, "got an array" },
		{ "on", -EINVAL, "got a boolean" },
		{ "ratio", -EINVAL, "got a number with a fraction or exponent" },
		{ "nul", -EINVAL, "field \"nul\" contains a NUL character" },
	};
	struct json_object *o = *state;
	const char *s = NULL;
	struct nx_err err = { "" };
	size_t i;

	assert_int_equal(nx_json_get_string(o, "name", &s, &err), 0);
	assert_string_equal(s, "dev1");
	assert_int_equal(nx_json_get_string(o, "empty", &s, &err), 0);
	assert_string_equal(s, "");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = "untouched";
		err.msg[0] = '\0';
		assert_int_equal(nx_json_get_string(o, bad[i].key, &s, &err), bad[i].code);
		assert_err_contains(err, bad[i].msg);
		assert_string_equal(s, "untouched");
	}
}

static void test_get_int64(void **state)
{
	static const struct get_case bad[] = {
		{ "missing", -ENOENT, "missing required field \"missing\"" },
		{ "name", -EINVAL, "field \"name\" must be an integer, got a string" },
		{ "ratio", -EINVAL,
		  "must be an integer, got a number with a fraction or exponent" },
		{ "one", -EINVAL, "must be an integer, got a number" },
		{ "exp", -EINVAL, "must be an integer, got a number" },
		{ "nothing", -EINVAL, "got null" },
		{ "big", -ERANGE,
		  "field \"big\": 18446744073709551615 is out of range for a signed 64-bit "
		  "integer" },
	};
	struct json_object *o = *state;
	struct nx_err err = { "" };
	int64_t v = 0;
	size_t i;

	assert_int_equal(nx_json_get_int64(o, "port", &v, &err), 0);
	assert_int_equal(v, 51820);
	assert_int_equal(nx_json_get_int64(o, "neg", &v, &err), 0);
	assert_int_equal(v, -5);
	assert_int_equal(nx_json_get_int64(o, "min", &v, &err), 0);
	assert_true(v == INT64_MIN);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		err.msg[0] = '\0';
		assert_int_equal(nx_json_get_int64(o, bad[i].key, &v, &err), bad[i].code);
		assert_err_contains(err, bad[i].msg);
		assert_int_equal(v, 7);
	}
}

static void test_get_uint64(void **state)
{
	static const struct get_case bad[] = {
		{ "missing", -ENOENT, "missing required field \"missing\"" },
		{ "neg", -ERANGE, "field \"neg\" must be a non-negative integer, got -5" },
		{ "min", -ERANGE, "got -9223372036854775808" },
		{ "ratio", -EINVAL,
		  "field \"ratio\" must be a non-negative integer, got a number" },
		{ "one", -EINVAL, "got a number with a fraction or exponent" },
		{ "on", -EINVAL, "got a boolean" },
	};
	struct json_object *o = *state;
	struct nx_err err = { "" };
	uint64_t v = 0;
	size_t i;

	assert_int_equal(nx_json_get_uint64(o, "port", &v, &err), 0);
	assert_int_equal(v, 51820);
	assert_int_equal(nx_json_get_uint64(o, "big", &v, &err), 0);
	assert_true(v == UINT64_MAX);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		err.msg[0] = '\0';
		assert_int_equal(nx_json_get_uint64(o, bad[i].key, &v, &err), bad[i].code);
		assert_err_contains(err, bad[i].msg);
		assert_int_equal(v, 7);
	}
}

static void test_get_bool_object_array(void **state)
{
	struct json_object *o = *state, *sub = NULL;
	struct nx_err err = { "" };
	bool b = false;

	assert_int_equal(nx_json_get_bool(o, "on", &b, &err), 0);
	assert_true(b);
	assert_int_equal(nx_json_get_bool(o, "off", &b, &err), 0);
	assert_false(b);
	assert_int_equal(nx_json_get_bool(o, "port", &b, &err), -EINVAL);
	assert_err_contains(err, "field \"port\" must be a boolean, got an integer");
	assert_int_equal(nx_json_get_bool(o, "nope", &b, &err), -ENOENT);
	assert_err_contains(err, "missing required field \"nope\"");

	assert_int_equal(nx_json_get_object(o, "obj", &sub, &err), 0);
	assert_true(json_object_is_type(sub, json_type_object));
	assert_int_equal(nx_json_get_object(o, "arr", &sub, &err), -EINVAL);
	assert_err_contains(err, "field \"arr\" must be an object, got an array");
	assert_int_equal(nx_json_get_object(o, "nope", &sub, &err), -ENOENT);

	assert_int_equal(nx_json_get_array(o, "arr", &sub, &err), 0);
	assert_int_equal(json_object_array_length(sub), 3);
	assert_int_equal(nx_json_get_array(o, "obj", &sub, &err), -EINVAL);
	assert_err_contains(err, "field \"obj\" must be an array, got an object");
	assert_int_equal(nx_json_get_array(o, "nothing", &sub, &err), -EINVAL);
	assert_err_contains(err, "got null");

	/* the container itself must be an object */
	assert_int_equal(nx_json_get_array(sub, "x", &sub, &err), -EINVAL);
	assert_err_contains(err, "cannot read field \"x\" from an array");
	assert_int_equal(nx_json_get_bool(NULL, "x", &b, &err), -EINVAL);
	assert_err_contains(err, "cannot read field \"x\" from null");
	assert_int_equal(nx_json_get_bool(NULL, "x", &b, NULL), -EINVAL);
}

static void test_get_optional(void **state)
{
	struct json_object *o = *state, *sub = NULL;
	struct nx_err err = { "" };
	const char *s = "default";
	int64_t i = 9;
	uint64_t u = 9;
	bool b = true;

	/* absent or null: 0, value untouched */
	assert_int_equal(nx_json_get_string_opt(o, "missing", &s, &err), 0);
	assert_int_equal(nx_json_get_string_opt(o, "nothing", &s, &err), 0);
	assert_string_equal(s, "default");
	assert_int_equal(nx_json_get_int64_opt(o, "missing", &i, &err), 0);
	assert_int_equal(nx_json_get_uint64_opt(o, "nothing", &u, &err), 0);
	assert_int_equal(nx_json_get_bool_opt(o, "missing", &b, &err), 0);
	assert_int_equal(nx_json_get_object_opt(o, "missing", &sub, &err), 0);
	assert_int_equal(nx_json_get_array_opt(o, "nothing", &sub, &err), 0);
	assert_int_equal(i, 9);
	assert_int_equal(u, 9);
	assert_true(b);
	assert_null(sub);

	/* present: 1 */
	assert_int_equal(nx_json_get_string_opt(o, "name", &s, &err), 1);
	assert_string_equal(s, "dev1");
	assert_int_equal(nx_json_get_int64_opt(o, "neg", &i, &err), 1);
	assert_int_equal(i, -5);
	assert_int_equal(nx_json_get_uint64_opt(o, "port", &u, &err), 1);
	assert_int_equal(u, 51820);
	assert_int_equal(nx_json_get_bool_opt(o, "off", &b, &err), 1);
	assert_false(b);
	assert_int_equal(nx_json_get_object_opt(o, "obj", &sub, &err), 1);
	assert_int_equal(nx_json_get_array_opt(o, "arr", &sub, &err), 1);

	/* wrong type or range is still an error */
	assert_int_equal(nx_json_get_string_opt(o, "port", &s, &err), -EINVAL);
	assert_err_contains(err, "field \"port\" must be a string, got an integer");
	assert_int_equal(nx_json_get_uint64_opt(o, "neg", &u, &err), -ERANGE);
	assert_err_contains(err, "must be a non-negative integer, got -5");
	assert_int_equal(nx_json_get_int64_opt(o, "big", &i, &err), -ERANGE);
	assert_int_equal(nx_json_get_bool_opt(o, "name", &b, &err), -EINVAL);
	assert_int_equal(nx_json_get_object_opt(o, "arr", &sub, &err), -EINVAL);
	assert_int_equal(nx_json_get_array_opt(o, "obj", &sub, &err), -EINVAL);
}

static void test_to_string(void **state)
{
	struct json_object *o;
	char *s;

	(void)state;
	s = nx_json_to_string(NULL, NX_JSON_PLAIN);
	assert_string_equal(s, "null");
	free(s);

	o = json_object_new_object();
	assert_int_equal(nx_json_object_add_string(o, "url", "https://x/y"), 0);
	s = nx_json_to_string(o, NX_JSON_PLAIN);
	assert_string_equal(s, "{\"url\":\"https://x/y\"}");
	free(s);
	s = nx_json_to_string(o, JSON_C_TO_STRING_PLAIN);
	assert_string_equal(s, "{\"url\":\"https:\\/\\/x\\/y\"}");
	free(s);
	s = nx_json_to_string(o, NX_JSON_PRETTY);
	assert_non_null(strchr(s, '\n'));
	free(s);
	json_object_put(o);
}

static void test_add(void **state)
{
	struct json_object *o, *arr;
	struct nx_err err = { "" };
	char *s;

	(void)state;
	o = json_object_new_object();
	assert_int_equal(nx_json_object_add_string(o, "s", "v"), 0);
	assert_int_equal(nx_json_object_add_string(o, "n", NULL), 0);
	assert_int_equal(nx_json_object_add_int64(o, "i", INT64_MIN), 0);
	assert_int_equal(nx_json_object_add_uint64(o, "u", UINT64_MAX), 0);
	assert_int_equal(nx_json_object_add_bool(o, "t", true), 0);
	assert_int_equal(nx_json_object_add_bool(o, "f", false), 0);
	assert_int_equal(nx_json_object_add_null(o, "z"), 0);
	/* replacing keeps one entry */
	assert_int_equal(nx_json_object_add_string(o, "s", "w"), 0);

	s = nx_json_to_string(o, NX_JSON_PLAIN);
	assert_string_equal(s, "{\"s\":\"w\",\"n\":null,\"i\":-9223372036854775808,"
			       "\"u\":18446744073709551615,\"t\":true,\"f\":false,\"z\":null}");

	/* and what was written reads back through the parser and getters */
	{
		struct json_object *p = nx_json_parse(s, strlen(s), 1, &err);
		const char *str = "x";
		uint64_t u = 0;

		assert_non_null(p);
		assert_int_equal(nx_json_get_string(p, "n", &str, &err), -EINVAL);
		assert_int_equal(nx_json_get_string_opt(p, "n", &str, &err), 0);
		assert_int_equal(nx_json_get_uint64(p, "u", &u, &err), 0);
		assert_true(u == UINT64_MAX);
		json_object_put(p);
	}
	free(s);

	arr = json_object_new_array();
	assert_int_equal(nx_json_object_add_string(arr, "s", "v"), -EINVAL);
	assert_int_equal(nx_json_object_add_int64(arr, "i", 1), -EINVAL);
	assert_int_equal(nx_json_object_add_bool(NULL, "b", true), -EINVAL);
	assert_int_equal(nx_json_object_add_null(o, NULL), -EINVAL);
	json_object_put(arr);
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_slice),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test_setup_teardown(test_get_string, setup_doc, teardown_doc),
		cmocka_unit_test_setup_teardown(test_get_int64, setup_doc, teardown_doc),
		cmocka_unit_test_setup_teardown(test_get_uint64, setup_doc, teardown_doc),
		cmocka_unit_test_setup_teardown(test_get_bool_object_array, setup_doc,
						teardown_doc),
		cmocka_unit_test_setup_teardown(test_get_optional, setup_doc, teardown_doc),
		cmocka_unit_test(test_to_string),
		cmocka_unit_test(test_add),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
