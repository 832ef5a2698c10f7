/* SPDX-License-Identifier: GPL-2.0-or-later */
/* nexsrv_conns: the connection budget in all and per client address. */
#include "config.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nexsrv/nexsrv_conns.h"

static struct nexsrv_conn_addr v4(const char *s)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct nexsrv_conn_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &in.sin_addr), 1);
	assert_true(nexsrv_conn_addr_from((struct sockaddr *)&in, sizeof(in), &a));
	return a;
}

static struct nexsrv_conn_addr v6(const char *s)
{
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	struct nexsrv_conn_addr a;

	assert_int_equal(inet_pton(AF_INET6, s, &in6.sin6_addr), 1);
	assert_true(nexsrv_conn_addr_from((struct sockaddr *)&in6, sizeof(in6), &a));
	return a;
}

static void test_per_address_limit(void **state)
{
	struct nexsrv_conns *c = nexsrv_conns_new(100, 3);
	struct nexsrv_conn_addr a = v4("192.0.2.1"), b = v4("192.0.2.2");

	(void)state;
	assert_non_null(c);
	for (int i = 0; i < 3; i++) {
		assert_true(nexsrv_conns_allow(c, &a));
		assert_int_equal(nexsrv_conns_add(c, &a), 0);
	}
	assert_false(nexsrv_conns_allow(c, &a));
	assert_true(nexsrv_conns_allow(c, &b)); /* another address has its own share */
	nexsrv_conns_remove(c, &a);
	assert_true(nexsrv_conns_allow(c, &a));
	assert_int_equal(nexsrv_conns_from(c, &a), 2);
	assert_int_equal(nexsrv_conns_total(c), 2);
	nexsrv_conns_free(c);
}

static void test_total_limit(void **state)
{
	struct nexsrv_conns *c = nexsrv_conns_new(2, 10);
	struct nexsrv_conn_addr a = v4("192.0.2.1"), b = v6("2001:db8::1");

	(void)state;
	assert_int_equal(nexsrv_conns_add(c, &a), 0);
	assert_int_equal(nexsrv_conns_add(c, &b), 0);
	assert_false(nexsrv_conns_allow(c, &a));
	assert_false(nexsrv_conns_allow(c, &b));
	nexsrv_conns_remove(c, &b);
	assert_true(nexsrv_conns_allow(c, &b));
	assert_int_equal(nexsrv_conns_from(c, &b), 0);
	nexsrv_conns_free(c);
}

/* An IPv4 client and its IPv4-mapped IPv6 form (a dual-stack listener) are one address. */
static void test_mapped_is_the_same_address(void **state)
{
	struct nexsrv_conns *c = nexsrv_conns_new(100, 1);
	struct nexsrv_conn_addr a = v4("198.51.100.7"), m = v6("::ffff:198.51.100.7");

	(void)state;
	assert_memory_equal(&a, &m, sizeof(a));
	assert_int_equal(nexsrv_conns_add(c, &a), 0);
	assert_false(nexsrv_conns_allow(c, &m));
	nexsrv_conns_free(c);
}

/* Many addresses (the table grows) come and go; the counts stay exact and removing an
 * address never seen changes nothing. */
static void test_many_addresses(void **state)
{
	struct nexsrv_conns *c = nexsrv_conns_new(100000, 2);
	char s[32];

	(void)state;
	for (int i = 0; i < 5000; i++) {
		struct nexsrv_conn_addr a;

		snprintf(s, sizeof(s), "10.%d.%d.1", i / 256, i % 256);
		a = v4(s);
		assert_int_equal(nexsrv_conns_add(c, &a), 0);
		assert_int_equal(nexsrv_conns_add(c, &a), 0);
	}
	assert_int_equal(nexsrv_conns_total(c), 10000);
	{
		struct nexsrv_conn_addr other = v4("172.16.0.1");

		nexsrv_conns_remove(c, &other);
		assert_int_equal(nexsrv_conns_total(c), 10000);
	}
	for (int i = 0; i < 5000; i++) {
		struct nexsrv_conn_addr a;

		snprintf(s, sizeof(s), "10.%d.%d.1", i / 256, i % 256);
		a = v4(s);
		assert_false(nexsrv_conns_allow(c, &a));
		nexsrv_conns_remove(c, &a);
		assert_int_equal(nexsrv_conns_from(c, &a), 1);
		nexsrv_conns_remove(c, &a);
		assert_int_equal(nexsrv_conns_from(c, &a), 0);
	}
	assert_int_equal(nexsrv_conns_total(c), 0);
	nexsrv_conns_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_address_limit),
		cmocka_unit_test(test_total_limit),
		cmocka_unit_test(test_mapped_is_the_same_address),
		cmocka_unit_test(test_many_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
