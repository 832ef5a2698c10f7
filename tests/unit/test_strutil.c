/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lib/strutil: the bounded copy/append/format helpers, the
 * strict number parser, splitting, and the secret-handling helpers.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/strutil.h"

/* Asserts that rc is -code and err names the problem (contains want). */
#define assert_rejected(rc, code, err, want)                \
	do {                                                \
		assert_int_equal((rc), -(code));            \
		assert_true((err).msg[0] != '\0');          \
		assert_non_null(strstr((err).msg, (want))); \
	} while (0)

static void test_strlcpy(void **state)
{
	char buf[8];

	(void)state;
	assert_int_equal(nx_strlcpy(buf, "abc", sizeof(buf)), 3);
	assert_string_equal(buf, "abc");

	/* exact fit: 7 characters + NUL */
	assert_int_equal(nx_strlcpy(buf, "1234567", sizeof(buf)), 7);
	assert_string_equal(buf, "1234567");

	/* truncation: return value says how long it wanted to be */
	assert_int_equal(nx_strlcpy(buf, "123456789", sizeof(buf)), 9);
	assert_string_equal(buf, "1234567");

	assert_int_equal(nx_strlcpy(buf, "", sizeof(buf)), 0);
	assert_string_equal(buf, "");

	/* size 1: only the NUL */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(nx_strlcpy(buf, "abc", 1), 3);
	assert_int_equal(buf[0], '\0');
	assert_int_equal(buf[1], 'x');

	/* size 0: nothing written */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(nx_strlcpy(buf, "abc", 0), 3);
	assert_int_equal(buf[0], 'x');
}

static void test_strlcat(void **state)
{
	char buf[8];

	(void)state;
	nx_strlcpy(buf, "ab", sizeof(buf));
	assert_int_equal(nx_strlcat(buf, "cd", sizeof(buf)), 4);
	assert_string_equal(buf, "abcd");

	assert_int_equal(nx_strlcat(buf, "efg", sizeof(buf)), 7);
	assert_string_equal(buf, "abcdefg");

	/* full: nothing more fits, return is the wanted length */
	assert_int_equal(nx_strlcat(buf, "hij", sizeof(buf)), 10);
	assert_string_equal(buf, "abcdefg");

	nx_strlcpy(buf, "abcde", sizeof(buf));
	assert_int_equal(nx_strlcat(buf, "xyz123", sizeof(buf)), 11);
	assert_string_equal(buf, "abcdexy");

	assert_int_equal(nx_strlcat(buf, "", sizeof(buf)), 7);

	/* no NUL within size: untouched, returns size + strlen(src) */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(nx_strlcat(buf, "abc", 4), 4 + 3);
	assert_memory_equal(buf, "xxxxxxxx", 8);

	assert_int_equal(nx_strlcat(buf, "abc", 0), 3);
}

static void test_sbuf_fixed(void **state)
{
	char storage[16];
	struct nx_sbuf b;

	(void)state;
	memset(storage, 'x', sizeof(storage));
	nx_sbuf_init(&b, storage, sizeof(storage));
	assert_string_equal(nx_sbuf_str(&b), "");
	assert_int_equal(nx_sbuf_len(&b), 0);
	assert_false(nx_sbuf_truncated(&b));

	assert_int_equal(nx_sbuf_printf(&b, "%s=%d", "mtu", 1420), 0);
	assert_int_equal(nx_sbuf_puts(&b, ", "), 0);
	assert_string_equal(nx_sbuf_str(&b), "mtu=1420, ");
	assert_int_equal(nx_sbuf_len(&b), 10);
	assert_ptr_equal(nx_sbuf_str(&b), storage);

	/* 15 characters fit exactly */
	assert_int_equal(nx_sbuf_printf(&b, "%05u", 7u), 0);
	assert_string_equal(nx_sbuf_str(&b), "mtu=1420, 00007");
	assert_false(nx_sbuf_truncated(&b));

	/* one more character truncates */
	assert_int_equal(nx_sbuf_puts(&b, "!"), -ENOSPC);
	assert_true(nx_sbuf_truncated(&b));
	assert_string_equal(nx_sbuf_str(&b), "mtu=1420, 00007");

	/* and sticks, even for an empty append */
	assert_int_equal(nx_sbuf_puts(&b, ""), -ENOSPC);
	assert_true(nx_sbuf_truncated(&b));

	nx_sbuf_reset(&b);
	assert_false(nx_sbuf_truncated(&b));
	assert_string_equal(nx_sbuf_str(&b), "");

	/* a long append keeps the part that fits */
	assert_int_equal(nx_sbuf_printf(&b, "%s", "0123456789abcdefghij"), -ENOSPC);
	assert_string_equal(nx_sbuf_str(&b), "0123456789abcde");
	assert_int_equal(nx_sbuf_len(&b), 15);
	assert_true(nx_sbuf_truncated(&b));

	/* fini in fixed mode does not free caller storage */
	nx_sbuf_fini(&b);
	assert_string_equal(nx_sbuf_str(&b), "");
}

static void test_sbuf_tiny(void **state)
{
	char one[1] = { 'x' };
	char none[1] = { 'x' };
	struct nx_sbuf b;

	(void)state;
	nx_sbuf_init(&b, one, sizeof(one));
	assert_string_equal(nx_sbuf_str(&b), "");
	assert_int_equal(nx_sbuf_puts(&b, ""), 0);
	assert_false(nx_sbuf_truncated(&b));
	assert_int_equal(nx_sbuf_puts(&b, "a"), -ENOSPC);
	assert_true(nx_sbuf_truncated(&b));
	assert_int_equal(one[0], '\0');

	nx_sbuf_init(&b, none, 0);
	assert_string_equal(nx_sbuf_str(&b), "");
	assert_int_equal(none[0], 'x');
	/* nothing to add, nothing lost */
	assert_int_equal(nx_sbuf_puts(&b, ""), 0);
	assert_false(nx_sbuf_truncated(&b));
	assert_int_equal(nx_sbuf_puts(&b, "a"), -ENOSPC);
	assert_true(nx_sbuf_truncated(&b));
	assert_int_equal(nx_sbuf_len(&b), 0);
	assert_int_equal(none[0], 'x');
}

static void test_sbuf_growable(void **state)
{
	struct nx_sbuf b;
	size_t i;

	(void)state;
	nx_sbuf_init(&b, NULL, 0);
	assert_string_equal(nx_sbuf_str(&b), "");
	assert_int_equal(nx_sbuf_len(&b), 0);

	for (i = 0; i < 1000; i++)
		assert_int_equal(nx_sbuf_printf(&b, "%03zu,", i), 0);
	assert_int_equal(nx_sbuf_len(&b), 4000);
	assert_int_equal(strlen(nx_sbuf_str(&b)), 4000);
	assert_false(nx_sbuf_truncated(&b));
	assert_memory_equal(nx_sbuf_str(&b), "000,001,002,", 12);
	assert_string_equal(nx_sbuf_str(&b) + 3996, "999,");

	/* one append larger than the current storage */
	nx_sbuf_reset(&b);
	assert_int_equal(nx_sbuf_printf(&b, "%-10000s|", "x"), 0);
	assert_int_equal(nx_sbuf_len(&b), 10001);
	assert_int_equal(nx_sbuf_str(&b)[10000], '|');

	nx_sbuf_fini(&b);
	assert_string_equal(nx_sbuf_str(&b), "");
	assert_int_equal(nx_sbuf_len(&b), 0);
	/* fini twice is harmless */
	nx_sbuf_fini(&b);

	/* fini without any append */
	nx_sbuf_init(&b, NULL, 0);
	nx_sbuf_fini(&b);
}

static void test_trim(void **state)
{
	char a[] = "  \t hello world \r\n";
	char b[] = "nothing";
	char c[] = " \t\n\v\f\r ";
	char d[] = "";
	char e[] = "x ";
	char f[] = "\tx";

	(void)state;
	assert_ptr_equal(nx_str_trim(a), a);
	assert_string_equal(a, "hello world");
	assert_string_equal(nx_str_trim(b), "nothing");
	assert_string_equal(nx_str_trim(c), "");
	assert_string_equal(nx_str_trim(d), "");
	assert_string_equal(nx_str_trim(e), "x");
	assert_string_equal(nx_str_trim(f), "x");
}

static void test_startswith_endswith(void **state)
{
	(void)state;
	assert_true(nx_str_startswith("interface wg0", "interface "));
	assert_true(nx_str_startswith("abc", "abc"));
	assert_true(nx_str_startswith("abc", ""));
	assert_true(nx_str_startswith("", ""));
	assert_false(nx_str_startswith("ab", "abc"));
	assert_false(nx_str_startswith("abc", "b"));
	assert_false(nx_str_startswith("", "a"));

	assert_true(nx_str_endswith("nexd.conf", ".conf"));
	assert_true(nx_str_endswith("abc", "abc"));
	assert_true(nx_str_endswith("abc", ""));
	assert_true(nx_str_endswith("", ""));
	assert_false(nx_str_endswith("bc", "abc"));
	assert_false(nx_str_endswith("abc", "b"));
	assert_false(nx_str_endswith("", "a"));
}

static void test_parse_uint_good(void **state)
{
	unsigned long long v = 0;
	struct nx_err err;

	(void)state;
	assert_int_equal(nx_parse_uint("0", 0, 10, &v, &err), 0);
	assert_int_equal(v, 0);
	assert_int_equal(nx_parse_uint("1", 1, 65535, &v, &err), 0);
	assert_int_equal(v, 1);
	assert_int_equal(nx_parse_uint("65535", 1, 65535, &v, &err), 0);
	assert_int_equal(v, 65535);
	assert_int_equal(nx_parse_uint("51820", 1, 65535, &v, NULL), 0);
	assert_int_equal(v, 51820);
	/* leading zeros are decimal, never octal */
	assert_int_equal(nx_parse_uint("010", 0, 100, &v, &err), 0);
	assert_int_equal(v, 10);
	assert_int_equal(nx_parse_uint("18446744073709551615", 0, ULLONG_MAX, &v, &err), 0);
	assert_true(v == ULLONG_MAX);
	assert_int_equal(nx_parse_uint("00000000000000000000000000042", 0, ULLONG_MAX, &v, &err),
			 0);
	assert_int_equal(v, 42);
}

static void test_parse_uint_bad(void **state)
{
	unsigned long long v = 1234;
	struct nx_err err;
	int rc;

	(void)state;
	rc = nx_parse_uint("70000", 1, 65535, &v, &err);
	assert_int_equal(rc, -ERANGE);
	assert_string_equal(err.msg, "\"70000\": out of range 1-65535");

	rc = nx_parse_uint("0", 1, 65535, &v, &err);
	assert_rejected(rc, ERANGE, err, "out of range 1-65535");

	rc = nx_parse_uint("18446744073709551616", 0, ULLONG_MAX, &v, &err);
	assert_rejected(rc, ERANGE, err, "out of range");

	rc = nx_parse_uint("99999999999999999999999999", 0, 10, &v, &err);
	assert_rejected(rc, ERANGE, err, "out of range 0-10");

	rc = nx_parse_uint("", 0, 10, &v, &err);
	assert_rejected(rc, EINVAL, err, "expected a decimal number");

	rc = nx_parse_uint(NULL, 0, 10, &v, &err);
	assert_rejected(rc, EINVAL, err, "missing");

	rc = nx_parse_uint("-1", 0, 10, &v, &err);
	assert_rejected(rc, EINVAL, err, "sign not allowed");
	rc = nx_parse_uint("+1", 0, 10, &v, &err);
	assert_rejected(rc, EINVAL, err, "sign not allowed");

	rc = nx_parse_uint(" 1", 0, 10, &v, &err);
	assert_rejected(rc, EINVAL, err, "whitespace");
	rc = nx_parse_uint("1 ", 0, 10, &v, &err);
	assert_rejected(rc, EINVAL, err, "whitespace");
	rc = nx_parse_uint("1\n", 0, 10, &v, &err);
	assert_rejected(rc, EINVAL, err, "whitespace");

	rc = nx_parse_uint("1a", 0, 10, &v, &err);
	assert_rejected(rc, EINVAL, err, "\"1a\": not a decimal number");
	rc = nx_parse_uint("0x10", 0, 100, &v, &err);
	assert_rejected(rc, EINVAL, err, "not a decimal number");
	rc = nx_parse_uint("1.5", 0, 100, &v, &err);
	assert_rejected(rc, EINVAL, err, "not a decimal number");
	rc = nx_parse_uint("\x01", 0, 100, &v, &err);
	assert_rejected(rc, EINVAL, err, "\"?\": not a decimal number");

	/* the output is untouched on failure */
	assert_true(v == 1234);

	/* NULL err is fine */
	assert_int_equal(nx_parse_uint("x", 0, 10, &v, NULL), -EINVAL);
}

static void test_split(void **state)
{
	char *fields[4];
	char *copy;
	const char *orig = "a,b,c";
	int n;

	(void)state;
	n = nx_str_split(orig, ',', fields, 4, &copy);
	assert_int_equal(n, 3);
	assert_non_null(copy);
	assert_string_equal(fields[0], "a");
	assert_string_equal(fields[1], "b");
	assert_string_equal(fields[2], "c");
	assert_ptr_equal(fields[0], copy);
	assert_string_equal(orig, "a,b,c");
	free(copy);

	n = nx_str_split("a,,b,", ',', fields, 4, &copy);
	assert_int_equal(n, 4);
	assert_string_equal(fields[0], "a");
	assert_string_equal(fields[1], "");
	assert_string_equal(fields[2], "b");
	assert_string_equal(fields[3], "");
	free(copy);

	n = nx_str_split(",", ',', fields, 4, &copy);
	assert_int_equal(n, 2);
	assert_string_equal(fields[0], "");
	assert_string_equal(fields[1], "");
	free(copy);

	fields[0] = NULL;
	n = nx_str_split("", ',', fields, 4, &copy);
	assert_int_equal(n, 0);
	assert_null(fields[0]);
	free(copy);

	n = nx_str_split("no delimiter", ',', fields, 4, &copy);
	assert_int_equal(n, 1);
	assert_string_equal(fields[0], "no delimiter");
	free(copy);

	/* exactly max_fields fits, one more does not */
	n = nx_str_split("1 2 3 4", ' ', fields, 4, &copy);
	assert_int_equal(n, 4);
	assert_string_equal(fields[3], "4");
	free(copy);
	n = nx_str_split("1 2 3 4 5", ' ', fields, 4, &copy);
	assert_int_equal(n, -E2BIG);
	assert_null(copy);

	n = nx_str_split("x", ',', fields, 0, &copy);
	assert_int_equal(n, -E2BIG);
	assert_null(copy);
	n = nx_str_split("", ',', fields, 0, &copy);
	assert_int_equal(n, 0);
	free(copy);

	n = nx_str_split("a,b", '\0', fields, 4, &copy);
	assert_int_equal(n, -EINVAL);
	assert_null(copy);

	/* fields can be trimmed in place */
	n = nx_str_split(" 10.0.0.0/8 , fd00::/8 ", ',', fields, 4, &copy);
	assert_int_equal(n, 2);
	assert_string_equal(nx_str_trim(fields[0]), "10.0.0.0/8");
	assert_string_equal(nx_str_trim(fields[1]), "fd00::/8");
	free(copy);
}

static void test_printable(void **state)
{
	char buf[8];

	(void)state;
	assert_string_equal(nx_str_printable(buf, sizeof(buf), "abc"), "abc");
	assert_string_equal(nx_str_printable(buf, sizeof(buf), "a\tb\x7f\xff"), "a?b??");
	assert_string_equal(nx_str_printable(buf, sizeof(buf), "1234567"), "1234567");
	assert_string_equal(nx_str_printable(buf, sizeof(buf), "12345678"), "1234...");
	assert_string_equal(nx_str_printable(buf, 3, "12345678"), "12");
	assert_string_equal(nx_str_printable(buf, 1, "12345678"), "");
	buf[0] = 'x';
	assert_ptr_equal(nx_str_printable(buf, 0, "abc"), buf);
	assert_int_equal(buf[0], 'x');
}

static void test_streq_ct(void **state)
{
	uint8_t a[32];
	uint8_t b[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (uint8_t)(i * 7 + 1);
	assert_true(nx_streq_ct(a, b, sizeof(a)));
	assert_true(nx_streq_ct(a, b, 0));
	assert_true(nx_streq_ct("x", "y", 0));

	for (i = 0; i < sizeof(a); i++) {
		b[i] ^= 0x80;
		assert_false(nx_streq_ct(a, b, sizeof(a)));
		assert_true(nx_streq_ct(a, b, i));
		b[i] ^= 0x80;
	}
	b[31] ^= 1;
	assert_false(nx_streq_ct(a, b, 32));
}

static void test_memzero_explicit(void **state)
{
	char secret[32];
	size_t i;

	(void)state;
	memset(secret, 0xa5, sizeof(secret));
	nx_memzero_explicit(secret, 16);
	for (i = 0; i < 16; i++)
		assert_int_equal(secret[i], 0);
	assert_int_equal((unsigned char)secret[16], 0xa5);
	nx_memzero_explicit(secret, sizeof(secret));
	for (i = 0; i < sizeof(secret); i++)
		assert_int_equal(secret[i], 0);
	nx_memzero_explicit(secret, 0);
	nx_memzero_explicit(NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strlcpy),
		cmocka_unit_test(test_strlcat),
		cmocka_unit_test(test_sbuf_fixed),
		cmocka_unit_test(test_sbuf_tiny),
		cmocka_unit_test(test_sbuf_growable),
		cmocka_unit_test(test_trim),
		cmocka_unit_test(test_startswith_endswith),
		cmocka_unit_test(test_parse_uint_good),
		cmocka_unit_test(test_parse_uint_bad),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_printable),
		cmocka_unit_test(test_streq_ct),
		cmocka_unit_test(test_memzero_explicit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
