/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lib/sorted: found elements, and where missing ones go (before the first,
 * between two, after the last, into an empty array), checked against a linear scan.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/sorted.h"

static int int_cmp(const void *key, const void *elem)
{
	int a = *(const int *)key, b = *(const int *)elem;

	return (a > b) - (a < b);
}

static void test_empty(void **state)
{
	bool found = true;
	int key = 3;

	(void)state;
	assert_int_equal(nx_sorted_find(&key, NULL, 0, sizeof(int), int_cmp, &found), 0);
	assert_false(found);
}

/* Every key from below the first to above the last, odd ones present, even ones missing. */
static void test_against_scan(void **state)
{
	int v[] = { 1, 3, 5, 7, 9, 11, 13 };

	(void)state;
	for (size_t n = 0; n <= sizeof(v) / sizeof(v[0]); n++)
		for (int key = 0; key <= 15; key++) {
			size_t want = 0;
			bool found;
			size_t i = nx_sorted_find(&key, v, n, sizeof(v[0]), int_cmp, &found);

			while (want < n && v[want] < key)
				want++;
			assert_int_equal(i, want);
			assert_int_equal(found, want < n && v[want] == key);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_against_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
