/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for the address arithmetic of nexsrv/nexsrv_ipam: which prefixes can be pools,
 * their usable bounds (no IPv4 network or broadcast address, no IPv6 subnet-router anycast
 * address), stepping through a pool with carries across bytes, and skipping the prefixes
 * devices advertise.  The allocation against the database is covered by the lab test
 * tests/lab/test_api_vpcs_devices.py.
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

#include "nexsrv/nexsrv_ipam.h"

#define assert_err_contains(e, sub)                                              \
	do {                                                                     \
		assert_true((e).msg[0] != '\0');                                 \
		if (!strstr((e).msg, (sub)))                                     \
			fail_msg("message \"%s\" lacks \"%s\"", (e).msg, (sub)); \
	} while (0)

static struct nx_prefix P(const char *s) {
	struct nx_prefix p;

	if (nx_prefix_parse(s, &p, 0, NULL) < 0)
		fail_msg("bad prefix in test: %s", s);
	return p;
}

static struct nx_addr
A(const char *s) {
	struct nx_addr a;

	if (nx_addr_parse(s, &a, NULL) < 0)
		fail_msg("bad address in test: %s", s);
	return a;
}

static void
assert_addr(const struct nx_addr *a, const char *want)
{
	char buf[NX_ADDR_STRLEN];

	nx_addr_format(a, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void test_pool_check(void **state)
{
	static const char *const good[] = { "100.64.0.0/10", "10.0.0.0/30", "0.0.0.0/0",
					    "200::/64",	     "fd00::/126",  "::/0" };
	struct nx_err err = { "" };

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct nx_prefix p = P(good[i]);

		assert_int_equal(nexsrv_ipam_pool_check(&p, NULL), 0);
	}

	struct nx_prefix p = P("10.0.0.0/31");

	assert_int_equal(nexsrv_ipam_pool_check(&p, &err), -EINVAL);
	assert_err_contains(err, "/30 or larger");
	assert_err_contains(err, "10.0.0.0/31");
	p = P("10.0.0.1/32");
	assert_int_equal(nexsrv_ipam_pool_check(&p, NULL), -EINVAL);
	p = P("fd00::/127");
	err.msg[0] = '\0';
	assert_int_equal(nexsrv_ipam_pool_check(&p, &err), -EINVAL);
	assert_err_contains(err, "/126 or larger");
	p = P("10.0.0.1/24");
	err.msg[0] = '\0';
	assert_int_equal(nexsrv_ipam_pool_check(&p, &err), -EINVAL);
	assert_err_contains(err, "host bits");
	memset(&p, 0, sizeof(p));
	err.msg[0] = '\0';
	assert_int_equal(nexsrv_ipam_pool_check(&p, &err), -EINVAL);
	assert_err_contains(err, "not an IPv4 or IPv6");
}

static void test_prefix_edges(void **state)
{
	static const struct {
		const char *prefix, *first, *last;
	} cases[] = {
		{ "10.1.2.0/23", "10.1.2.0", "10.1.3.255" },
		{ "10.1.3.77/23", "10.1.2.0", "10.1.3.255" }, /* host bits ignored */
		{ "100.64.0.0/10", "100.64.0.0", "100.127.255.255" },
		{ "192.0.2.7/32", "192.0.2.7", "192.0.2.7" },
		{ "0.0.0.0/0", "0.0.0.0", "255.255.255.255" },
		{ "200::/64", "200::", "200::ffff:ffff:ffff:ffff" },
		{ "2001:db8::/61", "2001:db8::", "2001:db8:0:7:ffff:ffff:ffff:ffff" },
		{ "::/0", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
	};
	struct nx_addr a;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nx_prefix p = P(cases[i].prefix);

		nexsrv_ipam_prefix_first(&p, &a);
		assert_addr(&a, cases[i].first);
		nexsrv_ipam_prefix_last(&p, &a);
		assert_addr(&a, cases[i].last);
	}
}

static void test_pool_bounds(void **state)
{
	static const struct {
		const char *pool, *first, *last;
	} cases[] = {
		{ "10.0.0.0/24", "10.0.0.1", "10.0.0.254" },
		{ "10.0.0.0/30", "10.0.0.1", "10.0.0.2" },
		{ "100.64.0.0/10", "100.64.0.1", "100.127.255.254" },
		{ "200::/64", "200::1", "200::ffff:ffff:ffff:ffff" },
		{ "fd00::/126", "fd00::1", "fd00::3" },
	};
	struct nx_addr first, last;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nx_prefix p = P(cases[i].pool);

		assert_int_equal(nexsrv_ipam_pool_bounds(&p, &first, &last), 0);
		assert_addr(&first, cases[i].first);
		assert_addr(&last, cases[i].last);
	}

	struct nx_prefix bad = P("10.0.0.0/31");

	assert_int_equal(nexsrv_ipam_pool_bounds(&bad, &first, &last), -EINVAL);
}

static void test_usable(void **state)
{
	struct nx_prefix v4 = P("10.0.0.0/24"), v6 = P("fd00::/64");
	struct nx_addr a;

	(void)state;
	a = A("10.0.0.1");
	assert_true(nexsrv_ipam_usable(&v4, &a));
	a = A("10.0.0.254");
	assert_true(nexsrv_ipam_usable(&v4, &a));
	a = A("10.0.0.0"); /* network */
	assert_false(nexsrv_ipam_usable(&v4, &a));
	a = A("10.0.0.255"); /* broadcast */
	assert_false(nexsrv_ipam_usable(&v4, &a));
	a = A("10.0.1.1");
	assert_false(nexsrv_ipam_usable(&v4, &a));
	a = A("fd00::1");
	assert_false(nexsrv_ipam_usable(&v4, &a)); /* other family */
	assert_true(nexsrv_ipam_usable(&v6, &a));
	a = A("fd00::"); /* subnet-router anycast */
	assert_false(nexsrv_ipam_usable(&v6, &a));
	a = A("fd00::ffff:ffff:ffff:ffff"); /* no broadcast in IPv6 */
	assert_true(nexsrv_ipam_usable(&v6, &a));
	a = A("fd00:0:0:1::");
	assert_false(nexsrv_ipam_usable(&v6, &a));
}

static void test_addr_add(void **state)
{
	struct nx_addr a, r;

	(void)state;
	a = A("10.0.0.255");
	assert_int_equal(nexsrv_ipam_addr_add(&a, 1, &r), 0);
	assert_addr(&r, "10.0.1.0");
	a = A("10.255.255.255");
	assert_int_equal(nexsrv_ipam_addr_add(&a, 1, &r), 0);
	assert_addr(&r, "11.0.0.0");
	assert_int_equal(nexsrv_ipam_addr_add(&a, 0, &r), 0);
	assert_addr(&r, "10.255.255.255");
	a = A("0.0.0.0");
	assert_int_equal(nexsrv_ipam_addr_add(&a, 0x01020304, &r), 0);
	assert_addr(&r, "1.2.3.4");
	a = A("255.255.255.255");
	r = A("1.1.1.1");
	assert_int_equal(nexsrv_ipam_addr_add(&a, 1, &r), -ERANGE);
	assert_addr(&r, "1.1.1.1"); /* untouched */
	a = A("0.0.0.1");
	assert_int_equal(nexsrv_ipam_addr_add(&a, UINT64_MAX, &r), -ERANGE);

	a = A("::ffff:ffff");
	assert_int_equal(nexsrv_ipam_addr_add(&a, 1, &r), 0);
	assert_addr(&r, "::1:0:0");
	a = A("200::ffff:ffff:ffff:ffff");
	assert_int_equal(nexsrv_ipam_addr_add(&a, 1, &r), 0);
	assert_addr(&r, "200:0:0:1::");
	a = A("::");
	assert_int_equal(nexsrv_ipam_addr_add(&a, UINT64_MAX, &r), 0);
	assert_addr(&r, "::ffff:ffff:ffff:ffff");
	assert_int_equal(nexsrv_ipam_addr_add(&r, UINT64_MAX, &r), 0);
	assert_addr(&r, "::1:ffff:ffff:ffff:fffe");
	a = A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
	assert_int_equal(nexsrv_ipam_addr_add(&a, 1, &r), 0);
	assert_int_equal(nexsrv_ipam_addr_add(&a, 2, &r), -ERANGE);

	memset(&a, 0, sizeof(a));
	assert_int_equal(nexsrv_ipam_addr_add(&a, 1, &r), -EAFNOSUPPORT);
}

static void test_next(void **state)
{
	struct nx_prefix v4 = P("10.0.0.0/30"), v6 = P("fd00::/126");
	struct nx_addr a, r;

	(void)state;
	a = A("9.255.255.255"); /* below the pool: its first usable address */
	assert_int_equal(nexsrv_ipam_next(&v4, &a, &r), 0);
	assert_addr(&r, "10.0.0.1");
	a = A("10.0.0.0");
	assert_int_equal(nexsrv_ipam_next(&v4, &a, &r), 0);
	assert_addr(&r, "10.0.0.1");
	a = A("10.0.0.1");
	assert_int_equal(nexsrv_ipam_next(&v4, &a, &r), 0);
	assert_addr(&r, "10.0.0.2");
	a = A("10.0.0.2"); /* the next would be the broadcast address */
	assert_int_equal(nexsrv_ipam_next(&v4, &a, &r), -ENOSPC);
	a = A("10.0.0.3");
	assert_int_equal(nexsrv_ipam_next(&v4, &a, &r), -ENOSPC);
	a = A("fd00::2");
	assert_int_equal(nexsrv_ipam_next(&v6, &a, &r), 0);
	assert_addr(&r, "fd00::3");
	a = A("fd00::3");
	assert_int_equal(nexsrv_ipam_next(&v6, &a, &r), -ENOSPC);
	assert_int_equal(nexsrv_ipam_next(&v4, &a, &r), -EINVAL); /* other family */
}

static void test_skip(void **state)
{
	struct nx_prefix pool = P("10.0.0.0/24");
	struct nx_addr c;

	(void)state;
	/* nothing to avoid: the candidate itself, or the pool's first usable address */
	c = A("10.0.0.7");
	assert_int_equal(nexsrv_ipam_skip(&pool, NULL, 0, &c), 0);
	assert_addr(&c, "10.0.0.7");
	c = A("10.0.0.0");
	assert_int_equal(nexsrv_ipam_skip(&pool, NULL, 0, &c), 0);
	assert_addr(&c, "10.0.0.1");

	/* past one prefix, and past a chain of them whatever their order */
	struct nx_prefix one[] = { P("10.0.0.0/29") };
	struct nx_prefix chain[] = { P("10.0.0.16/28"), P("10.0.0.8/29"), P("10.0.0.0/29"),
				     P("fd00::/8"), P("10.0.1.0/24") };

	c = A("10.0.0.1");
	assert_int_equal(nexsrv_ipam_skip(&pool, one, 1, &c), 0);
	assert_addr(&c, "10.0.0.8");
	c = A("10.0.0.1");
	assert_int_equal(nexsrv_ipam_skip(&pool, chain, 5, &c), 0);
	assert_addr(&c, "10.0.0.32");
	c = A("10.0.0.33"); /* not in any: stays */
	assert_int_equal(nexsrv_ipam_skip(&pool, chain, 5, &c), 0);
	assert_addr(&c, "10.0.0.33");

	/* the rest of the pool is advertised: nothing left (not the broadcast address) */
	struct nx_prefix top[] = { P("10.0.0.128/25") };

	c = A("10.0.0.200");
	assert_int_equal(nexsrv_ipam_skip(&pool, top, 1, &c), -ENOSPC);
	struct nx_prefix upto_broadcast[] = { P("10.0.0.128/26"), P("10.0.0.192/27"),
					      P("10.0.0.224/28"), P("10.0.0.240/29"),
					      P("10.0.0.248/30"), P("10.0.0.252/31") };

	c = A("10.0.0.130"); /* .128-.253 advertised: .254 is the last one left */
	assert_int_equal(nexsrv_ipam_skip(&pool, upto_broadcast, 6, &c), 0);
	assert_addr(&c, "10.0.0.254");
	struct nx_prefix last[] = { P("10.0.0.254/32"), P("10.0.0.128/26"), P("10.0.0.192/27"),
				    P("10.0.0.224/28"), P("10.0.0.240/29"), P("10.0.0.248/30"),
				    P("10.0.0.252/31") };

	c = A("10.0.0.130");
	assert_int_equal(nexsrv_ipam_skip(&pool, last, 7, &c), -ENOSPC);
	/* a prefix over the whole pool, or beyond the family's end */
	struct nx_prefix all[] = { P("0.0.0.0/0") };

	c = A("10.0.0.1");
	assert_int_equal(nexsrv_ipam_skip(&pool, all, 1, &c), -ENOSPC);
	struct nx_prefix v6pool = P("ffff:ffff:ffff:ffff::/64");
	struct nx_prefix v6end[] = { P("ffff:ffff:ffff:ffff:8000::/65") };

	c = A("ffff:ffff:ffff:ffff:8000::5");
	assert_int_equal(nexsrv_ipam_skip(&v6pool, v6end, 1, &c), -ENOSPC);
	c = A("fd00::1");
	assert_int_equal(nexsrv_ipam_skip(&pool, one, 1, &c), -EINVAL); /* other family */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_check),  cmocka_unit_test(test_prefix_edges),
		cmocka_unit_test(test_pool_bounds), cmocka_unit_test(test_usable),
		cmocka_unit_test(test_addr_add),    cmocka_unit_test(test_next),
		cmocka_unit_test(test_skip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
