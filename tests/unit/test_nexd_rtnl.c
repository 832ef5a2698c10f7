/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd's rtnetlink against a real kernel: the test moves itself into a network namespace of
 * its own (it is its own process; the namespace goes when it exits) with dummy (or ifb) interfaces,
 * and checks what the kernel holds afterwards through libnl's own caches, not through the module
 * under test.  nexd must change only its own routes (protocol 80 through its interface), so
 * routes of other protocols and of other interfaces are planted and must survive everything.
 * Needs root; skipped otherwise.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <net/if.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>

#include "lib/prefix.h"
#include "nexd/nexd_rtnl.h"

extern char **environ;

static bool ready;
static struct nexd_rtnl *nl;
static struct nl_sock *check_sk; /* libnl's view of the kernel, for the checks */
static int d0, d1;

static int run_ip(bool quiet, const char *const *args)
{
	const char *argv[16] = { "/sbin/ip" };
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int i, rc, status;

	for (i = 0; i < 14 && args[i]; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	if (posix_spawn_file_actions_init(&fa) != 0)
		return -1;
	if (quiet)
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	rc = posix_spawn(&pid, "/sbin/ip", &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return -1;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define IP(...) run_ip(false, (const char *const[]){ __VA_ARGS__, NULL })

/* A dummy interface, or an ifb one where the kernel has no dummy driver (both hold
 * addresses and routes and carry nothing). */
static int add_link(const char *name)
{
	if (run_ip(true, (const char *const[]){ "link", "add", name, "type", "dummy", NULL }) == 0)
		return 0;
	return IP("link", "add", name, "type", "ifb");
}

static int group_setup(void **state)
{
	struct nx_err err = { "" };

	if (geteuid() != 0)
		return 0;
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "# unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return 0;
	}
	if (add_link("d0") != 0 || add_link("d1") != 0 || IP("link", "set", "d1", "up") != 0)
		return -1;
	nl = nexd_rtnl_new(&err);
	if (!nl) {
		fprintf(stderr, "# nexd_rtnl_new: %s\n", err.msg);
		return -1;
	}
	check_sk = nl_socket_alloc();
	if (!check_sk || nl_connect(check_sk, NETLINK_ROUTE) < 0)
		return -1;
	d0 = nexd_rtnl_link_index(nl, "d0");
	d1 = nexd_rtnl_link_index(nl, "d1");
	ready = d0 > 0 && d1 > 0;
	return ready ? 0 : -1;
}

static int group_teardown(void **state)
{
	nexd_rtnl_free(nl);
	if (check_sk)
		nl_socket_free(check_sk);
	return 0;
}

#define NEED_ROOT()                                                                       \
	do {                                                                              \
		if (!ready) {                                                             \
			print_message("# needs root and a network namespace: skipped\n"); \
			skip();                                                           \
		}                                                                         \
	} while (0)

static struct nx_prefix pfx(const char *s)
{
	struct nx_prefix p;

	assert_int_equal(nx_prefix_parse(s, &p, NX_PREFIX_ALLOW_HOST, NULL), 0);
	return p;
}

static bool nl_addr_to_prefix(struct nl_addr *a, struct nx_prefix *p)
{
	memset(p, 0, sizeof(*p));
	if (!a)
		return false;
	p->addr.family = (sa_family_t)nl_addr_get_family(a);
	p->len = (uint8_t)nl_addr_get_prefixlen(a);
	if (p->addr.family == AF_INET && nl_addr_get_len(a) == 4)
		memcpy(&p->addr.v4, nl_addr_get_binary_addr(a), 4);
	else if (p->addr.family == AF_INET6 && nl_addr_get_len(a) == 16)
		memcpy(&p->addr.v6, nl_addr_get_binary_addr(a), 16);
	else if (nl_addr_get_len(a) != 0)
		return false;
	return true;
}

/* The addresses on ifindex, as "addr/len" with the kernel's flags. */
struct seen_addr {
	struct nx_prefix p;
	unsigned flags;
	int scope;
};

static size_t kernel_addrs(int ifindex, struct seen_addr *out, size_t max)
{
	struct nl_cache *cache = NULL;
	struct nl_object *o;
	size_t n = 0;

	assert_int_equal(rtnl_addr_alloc_cache(check_sk, &cache), 0);
	for (o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;

		if (rtnl_addr_get_ifindex(a) != ifindex || n == max)
			continue;
		assert_true(nl_addr_to_prefix(rtnl_addr_get_local(a), &out[n].p));
		out[n].p.len = (uint8_t)rtnl_addr_get_prefixlen(a);
		out[n].flags = rtnl_addr_get_flags(a);
		out[n].scope = rtnl_addr_get_scope(a);
		n++;
	}
	nl_cache_free(cache);
	return n;
}

static const struct seen_addr *find_addr(const struct seen_addr *v, size_t n, const char *s)
{
	struct nx_prefix p = pfx(s);
	size_t i;

	for (i = 0; i < n; i++)
		if (nx_prefix_cmp(&v[i].p, &p) == 0)
			return &v[i];
	return NULL;
}

/* Whether the kernel has dst through oif with protocol proto in the main table. */
static bool kernel_route(const char *dst, int oif, int proto)
{
	struct nx_prefix want = pfx(dst);
	struct nl_cache *cache = NULL;
	struct nl_object *o;
	bool found = false;

	assert_int_equal(rtnl_route_alloc_cache(check_sk, AF_UNSPEC, 0, &cache), 0);
	for (o = nl_cache_get_first(cache); o && !found; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;
		struct nx_prefix p;

		if (rtnl_route_get_table(r) != RT_TABLE_MAIN ||
		    rtnl_route_get_protocol(r) != proto || rtnl_route_get_nnexthops(r) != 1 ||
		    rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, 0)) != oif)
			continue;
		if (nl_addr_to_prefix(rtnl_route_get_dst(r), &p) && nx_prefix_cmp(&p, &want) == 0)
			found = true;
	}
	nl_cache_free(cache);
	return found;
}

static size_t kernel_route_count(int oif, int proto)
{
	struct nl_cache *cache = NULL;
	struct nl_object *o;
	size_t n = 0;

	assert_int_equal(rtnl_route_alloc_cache(check_sk, AF_UNSPEC, 0, &cache), 0);
	for (o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;

		if (rtnl_route_get_table(r) == RT_TABLE_MAIN &&
		    rtnl_route_get_protocol(r) == proto && rtnl_route_get_nnexthops(r) == 1 &&
		    rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, 0)) == oif)
			n++;
	}
	nl_cache_free(cache);
	return n;
}

static void test_link_index(void **state)
{
	NEED_ROOT();
	assert_true(d0 > 0);
	assert_int_not_equal(d0, d1);
	assert_int_equal(nexd_rtnl_link_index(nl, "d0"), d0);
	assert_int_equal(nexd_rtnl_link_index(nl, "nosuchlink0"), 0);
	assert_int_equal(nexd_rtnl_link_index(nl, ""), -EINVAL);
	assert_int_equal(nexd_rtnl_link_index(nl, "a-name-too-long-for-linux"), -EINVAL);
	assert_int_equal(nexd_rtnl_link_index(nl, "lo"), 1);
}

static void test_link_up(void **state)
{
	struct nx_err err = { "" };
	struct rtnl_link *link = NULL;

	NEED_ROOT();
	assert_int_equal(nexd_rtnl_link_up(nl, d0, 1380, &err), 0);
	assert_int_equal(rtnl_link_get_kernel(check_sk, d0, NULL, &link), 0);
	assert_true(rtnl_link_get_flags(link) & IFF_UP);
	assert_int_equal(rtnl_link_get_mtu(link), 1380);
	rtnl_link_put(link);

	/* 0: MTU left as it is */
	assert_int_equal(nexd_rtnl_link_up(nl, d0, 0, &err), 0);
	assert_int_equal(rtnl_link_get_kernel(check_sk, d0, NULL, &link), 0);
	assert_int_equal(rtnl_link_get_mtu(link), 1380);
	rtnl_link_put(link);

	assert_int_equal(nexd_rtnl_link_up(nl, 999999, 0, &err), -ENODEV);
	assert_non_null(strstr(err.msg, "interface 999999"));
	assert_int_equal(nexd_rtnl_link_up(nl, 0, 0, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "invalid interface index 0"));
}

static void test_link_del(void **state)
{
	struct nx_err err = { "" };
	int d2;

	NEED_ROOT();
	assert_int_equal(add_link("d2"), 0);
	d2 = nexd_rtnl_link_index(nl, "d2");
	assert_true(d2 > 0);
	assert_int_equal(nexd_rtnl_link_del(nl, d2, &err), 0);
	assert_int_equal(nexd_rtnl_link_index(nl, "d2"), 0);
	assert_int_equal(nexd_rtnl_link_del(nl, d2, &err), -ENODEV);
	assert_non_null(strstr(err.msg, "link delete: interface"));
	assert_int_equal(nexd_rtnl_link_del(nl, -3, &err), -EINVAL);
	assert_true(err.msg[0]);
}

static void test_addr_sync(void **state)
{
	struct nx_err err = { "" };
	struct seen_addr seen[32];
	const struct seen_addr *a;
	struct nx_prefix want[3];
	size_t n, i, globals;
	bool had_ll = false;

	NEED_ROOT();
	assert_int_equal(nexd_rtnl_link_up(nl, d0, 0, &err), 0);
	/* Strays: another global address, the tunnel address with another length. */
	assert_int_equal(IP("addr", "add", "192.0.2.99/24", "dev", "d0"), 0);
	assert_int_equal(IP("addr", "add", "100.64.0.5/10", "dev", "d0"), 0);
	assert_int_equal(IP("-6", "addr", "add", "2001:db8::99/64", "dev", "d0", "nodad"), 0);
	assert_int_equal(IP("-6", "addr", "add", "fe80::1234/64", "dev", "d0", "nodad"), 0);
	/* An address of another interface is none of this. */
	assert_int_equal(IP("addr", "add", "198.18.0.1/32", "dev", "d1"), 0);

	want[0] = pfx("100.64.0.5/32");
	want[1] = pfx("fd00::5/128");
	assert_int_equal(nexd_rtnl_addr_sync(nl, d0, want, 2, &err), 0);
	n = kernel_addrs(d0, seen, 32);
	for (i = 0, globals = 0; i < n; i++) {
		if (seen[i].scope == RT_SCOPE_UNIVERSE)
			globals++;
		if (seen[i].p.addr.family == AF_INET6 && seen[i].p.addr.v6.s6_addr[0] == 0xfe)
			had_ll = true;
	}
	assert_int_equal(globals, 2);
	assert_non_null(find_addr(seen, n, "100.64.0.5/32"));
	a = find_addr(seen, n, "fd00::5/128");
	assert_non_null(a);
	assert_false(a->flags & IFA_F_TENTATIVE); /* usable at once */
	assert_true(a->flags & IFA_F_NODAD);
	assert_true(had_ll);
	assert_non_null(find_addr(seen, n, "fe80::1234/64")); /* link-local left alone */
	assert_null(find_addr(seen, n, "192.0.2.99/24"));
	assert_null(find_addr(seen, n, "2001:db8::99/64"));
	n = kernel_addrs(d1, seen, 32);
	assert_non_null(find_addr(seen, n, "198.18.0.1/32"));

	/* Again: nothing to do. */
	assert_int_equal(nexd_rtnl_addr_sync(nl, d0, want, 2, &err), 0);
	n = kernel_addrs(d0, seen, 32);
	assert_non_null(find_addr(seen, n, "100.64.0.5/32"));
	assert_non_null(find_addr(seen, n, "fd00::5/128"));

	/* A new address replaces the old ones; the same address twice is one. */
	want[0] = pfx("100.64.0.6/32");
	want[1] = pfx("100.64.0.6/32");
	assert_int_equal(nexd_rtnl_addr_sync(nl, d0, want, 2, &err), 0);
	n = kernel_addrs(d0, seen, 32);
	assert_non_null(find_addr(seen, n, "100.64.0.6/32"));
	assert_null(find_addr(seen, n, "100.64.0.5/32"));
	assert_null(find_addr(seen, n, "fd00::5/128"));
	assert_non_null(find_addr(seen, n, "fe80::1234/64"));

	/* None: every global address goes. */
	assert_int_equal(nexd_rtnl_addr_sync(nl, d0, NULL, 0, &err), 0);
	n = kernel_addrs(d0, seen, 32);
	for (i = 0; i < n; i++)
		assert_int_not_equal(seen[i].scope, RT_SCOPE_UNIVERSE);

	/* Bad input changes nothing. */
	want[0] = pfx("100.64.0.7/32");
	want[1] = pfx("10.0.0.0/24");
	assert_int_equal(nexd_rtnl_addr_sync(nl, d0, want, 2, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "\"10.0.0.0/24\" is not a host prefix"));
	memset(&want[1], 0, sizeof(want[1]));
	assert_int_equal(nexd_rtnl_addr_sync(nl, d0, want, 2, &err), -EAFNOSUPPORT);
	assert_true(err.msg[0]);
	n = kernel_addrs(d0, seen, 32);
	assert_null(find_addr(seen, n, "100.64.0.7/32"));
	assert_int_equal(nexd_rtnl_addr_sync(nl, 999999, want, 1, &err), -ENODEV);
	assert_non_null(strstr(err.msg, "999999"));
}

static void make_ops(struct nexd_route_op *ops, size_t n4, size_t n6, bool del)
{
	char buf[64];
	size_t i;

	for (i = 0; i < n4 + n6; i++) {
		if (i < n4)
			snprintf(buf, sizeof(buf), "10.%zu.%zu.%zu/32", 100 + i / 65536,
				 (i / 256) % 256, i % 256);
		else
			snprintf(buf, sizeof(buf), "fd00:1::%zx/128", i - n4 + 1);
		memset(&ops[i], 0, sizeof(ops[i]));
		ops[i].prefix = pfx(buf);
		ops[i].del = del;
		ops[i].error = 12345; /* must be overwritten */
	}
}

static void check_dump_equals(const struct nexd_route_op *ops, size_t n)
{
	struct nx_err err = { "" };
	struct nx_prefix *got = NULL, *want;
	size_t ngot = 0, i;

	assert_int_equal(nexd_rtnl_route_dump(nl, d0, &got, &ngot, &err), 0);
	assert_int_equal(ngot, n);
	want = calloc(n ? n : 1, sizeof(*want));
	assert_non_null(want);
	for (i = 0; i < n; i++)
		want[i] = ops[i].prefix;
	if (n) {
		qsort(want, n, sizeof(*want), nx_prefix_cmp_qsort);
		qsort(got, ngot, sizeof(*got), nx_prefix_cmp_qsort);
	}
	for (i = 0; i < n; i++)
		assert_int_equal(nx_prefix_cmp(&got[i], &want[i]), 0);
	free(want);
	free(got);
}

static void plant_foreign_routes(void)
{
	/* Another protocol through nexd's interface, nexd's protocol through another. */
	assert_int_equal(IP("route", "replace", "198.51.100.1/32", "dev", "d0", "proto", "static"),
			 0);
	assert_int_equal(
		IP("-6", "route", "replace", "2001:db8:ff::1/128", "dev", "d0", "proto", "static"),
		0);
	assert_int_equal(IP("route", "replace", "198.51.100.2/32", "dev", "d1", "proto", "80"), 0);
	/* The same prefix as one of nexd's, through the other interface. */
	assert_int_equal(
		IP("route", "replace", "10.100.0.7/32", "dev", "d1", "proto", "80", "metric", "50"),
		0);
}

static void check_foreign_routes(void)
{
	assert_true(kernel_route("198.51.100.1/32", d0, RTPROT_STATIC));
	assert_true(kernel_route("2001:db8:ff::1/128", d0, RTPROT_STATIC));
	assert_true(kernel_route("198.51.100.2/32", d1, NEXD_RTPROT));
	assert_true(kernel_route("10.100.0.7/32", d1, NEXD_RTPROT));
}

static void test_routes(void **state)
{
	enum { N4 = 1000, N6 = 64 };
	struct nexd_route_op *ops;
	struct nx_err err = { "" };
	struct nx_prefix *got = NULL;
	size_t ngot = 0, i;

	NEED_ROOT();
	ops = calloc(N4 + N6, sizeof(*ops));
	assert_non_null(ops);
	assert_int_equal(nexd_rtnl_link_up(nl, d0, 0, &err), 0);
	plant_foreign_routes();

	/* Nothing of nexd's yet. */
	assert_int_equal(nexd_rtnl_route_dump(nl, d0, &got, &ngot, &err), 0);
	assert_int_equal(ngot, 0);
	free(got);

	make_ops(ops, N4, N6, false);
	assert_int_equal(nexd_rtnl_route_batch(nl, d0, ops, N4 + N6, &err), 0);
	for (i = 0; i < N4 + N6; i++)
		assert_int_equal(ops[i].error, 0);
	check_dump_equals(ops, N4 + N6);
	assert_int_equal(kernel_route_count(d0, NEXD_RTPROT), N4 + N6);
	assert_true(kernel_route("10.100.3.231/32", d0, NEXD_RTPROT));
	assert_true(kernel_route("fd00:1::40/128", d0, NEXD_RTPROT));
	check_foreign_routes();

	/* Writing them again replaces them: no error, no duplicates. */
	make_ops(ops, N4, N6, false);
	assert_int_equal(nexd_rtnl_route_batch(nl, d0, ops, N4 + N6, &err), 0);
	check_dump_equals(ops, N4 + N6);

	/* Delete them all; the others stay. */
	make_ops(ops, N4, N6, true);
	assert_int_equal(nexd_rtnl_route_batch(nl, d0, ops, N4 + N6, &err), 0);
	for (i = 0; i < N4 + N6; i++)
		assert_int_equal(ops[i].error, 0);
	check_dump_equals(ops, 0);
	assert_int_equal(kernel_route_count(d0, NEXD_RTPROT), 0);
	check_foreign_routes();

	/* Deleting what is not there succeeds, and leaves others' routes of that prefix. */
	make_ops(ops, 3, 1, true);
	ops[2].prefix = pfx("198.51.100.1/32"); /* static, through d0 */
	ops[1].prefix = pfx("198.51.100.2/32"); /* protocol 80, through d1 */
	assert_int_equal(nexd_rtnl_route_batch(nl, d0, ops, 4, &err), 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(ops[i].error, 0);
	check_foreign_routes();
	free(ops);
}

static void test_routes_chunked(void **state)
{
	/* More than one sendmsg's worth (the batch is at most 2048 requests). */
	enum { N4 = 5000, N6 = 300 };
	struct nexd_route_op *ops;
	struct nx_err err = { "" };

	NEED_ROOT();
	ops = calloc(N4 + N6, sizeof(*ops));
	assert_non_null(ops);
	assert_int_equal(nexd_rtnl_link_up(nl, d0, 0, &err), 0);
	make_ops(ops, N4, N6, false);
	assert_int_equal(nexd_rtnl_route_batch(nl, d0, ops, N4 + N6, &err), 0);
	check_dump_equals(ops, N4 + N6);
	make_ops(ops, N4, N6, true);
	assert_int_equal(nexd_rtnl_route_batch(nl, d0, ops, N4 + N6, &err), 0);
	check_dump_equals(ops, 0);
	free(ops);
}

static void test_routes_invalid(void **state)
{
	struct nexd_route_op ops[6];
	struct nx_err err = { "" };
	size_t i;

	NEED_ROOT();
	assert_int_equal(nexd_rtnl_link_up(nl, d0, 0, &err), 0);
	memset(ops, 0, sizeof(ops));
	ops[0].prefix = pfx("10.200.0.1/32");
	ops[1].prefix = pfx("10.200.0.1/24"); /* host bits: the kernel refuses */
	ops[2].prefix = pfx("10.200.0.2/32");
	ops[2].prefix.len = 33; /* refused before sending */
	/* ops[3]: no family */
	ops[4].prefix = pfx("fd00:2::1/128");
	ops[5].prefix = pfx("10.200.0.9/32");
	for (i = 0; i < 6; i++)
		ops[i].error = 12345;
	assert_int_equal(nexd_rtnl_route_batch(nl, d0, ops, 6, &err), 3);
	assert_int_equal(ops[0].error, 0);
	assert_int_equal(ops[1].error, -EINVAL);
	assert_int_equal(ops[2].error, -EINVAL);
	assert_int_equal(ops[3].error, -EAFNOSUPPORT);
	assert_int_equal(ops[4].error, 0);
	assert_int_equal(ops[5].error, 0);
	assert_non_null(strstr(err.msg, "3 of 6 route writes failed"));
	assert_non_null(strstr(err.msg, "10.200.0.1/24"));
	assert_true(kernel_route("10.200.0.1/32", d0, NEXD_RTPROT));
	assert_true(kernel_route("fd00:2::1/128", d0, NEXD_RTPROT));
	assert_true(kernel_route("10.200.0.9/32", d0, NEXD_RTPROT));

	/* Through an interface that does not exist: each fails, the socket stays usable. */
	memset(ops, 0, sizeof(ops));
	ops[0].prefix = pfx("10.201.0.1/32");
	ops[1].prefix = pfx("fd00:3::1/128");
	assert_int_equal(nexd_rtnl_route_batch(nl, 999999, ops, 2, &err), 2);
	assert_int_equal(ops[0].error, -ENODEV);
	assert_int_equal(ops[1].error, -ENODEV);
	assert_non_null(strstr(err.msg, "2 of 2 route writes failed"));
	assert_int_equal(nexd_rtnl_route_batch(nl, 0, ops, 2, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "invalid interface index"));

	/* Through a link that is down: refused per route. */
	memset(ops, 0, sizeof(ops));
	ops[0].prefix = pfx("10.202.0.1/32");
	assert_int_equal(add_link("d3"), 0);
	assert_int_equal(nexd_rtnl_route_batch(nl, nexd_rtnl_link_index(nl, "d3"), ops, 1, &err),
			 1);
	assert_int_equal(ops[0].error, -ENETDOWN);
	assert_true(err.msg[0]);

	/* Clean up, and an empty batch is nothing. */
	memset(ops, 0, sizeof(ops));
	ops[0].prefix = pfx("10.200.0.1/32");
	ops[1].prefix = pfx("fd00:2::1/128");
	ops[2].prefix = pfx("10.200.0.9/32");
	for (i = 0; i < 3; i++)
		ops[i].del = true;
	assert_int_equal(nexd_rtnl_route_batch(nl, d0, ops, 3, &err), 0);
	check_dump_equals(ops, 0);
	assert_int_equal(nexd_rtnl_route_batch(nl, d0, ops, 0, &err), 0);
	check_foreign_routes();
}

static void test_route_dump_bad(void **state)
{
	struct nx_err err = { "" };
	struct nx_prefix junk, *got = &junk; /* must come back NULL */
	size_t ngot = 7;

	NEED_ROOT();
	assert_int_equal(nexd_rtnl_route_dump(nl, 0, &got, &ngot, &err), -EINVAL);
	assert_null(got);
	assert_int_equal(ngot, 0);
	assert_non_null(strstr(err.msg, "invalid interface index"));
	/* The socket is still good after a refusal. */
	assert_int_equal(nexd_rtnl_route_dump(nl, d1, &got, &ngot, &err), 0);
	assert_int_equal(ngot, 2); /* the two planted through d1 */
	free(got);
}

static int read_sysctl(const char *path)
{
	char buf[8] = "";
	int fd = open(path, O_RDONLY);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return r > 0 ? buf[0] - '0' : -1;
}

static void test_forwarding(void **state)
{
	struct nx_err err = { "" };

	NEED_ROOT();
	/* Writes the namespace's own sysctls (they are per network namespace). */
	assert_int_equal(nexd_rtnl_enable_forwarding(&err), 0);
	assert_int_equal(read_sysctl("/proc/sys/net/ipv4/ip_forward"), 1);
	assert_int_equal(read_sysctl("/proc/sys/net/ipv6/conf/all/forwarding"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_link_index),     cmocka_unit_test(test_link_up),
		cmocka_unit_test(test_link_del),       cmocka_unit_test(test_addr_sync),
		cmocka_unit_test(test_routes),	       cmocka_unit_test(test_routes_chunked),
		cmocka_unit_test(test_routes_invalid), cmocka_unit_test(test_route_dump_bad),
		cmocka_unit_test(test_forwarding),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
