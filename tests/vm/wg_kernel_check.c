/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kernel WireGuard backend against a real kernel (run inside the test VM, as root, in a
 * network namespace of its own): create and adopt, read back what was set, peer lists and
 * allowed-IP lists large enough that both the dump and the set span many netlink messages,
 * the per-peer flags, replace-peers, and the errors.  Prints TAP; exits non-zero on failure,
 * 77 (skip) when not root or without the kernel's WireGuard.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "nexd/nexd_wg.h"

#define IFNAME "nxk0"

static int n_tests, n_failed;
static unsigned last_set_msgs; /* from the backend's debug log: messages of the last set */

static void log_sink(int level, const char *msg, void *arg)
{
	const char *p = strstr(msg, " set in ");

	(void)level;
	(void)arg;
	if (p)
		last_set_msgs = (unsigned)strtoul(p + strlen(" set in "), NULL, 10);
}

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	n_tests++;
	if (!ok)
		n_failed++;
	printf("%sok %d - ", ok ? "" : "not ", n_tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Distinct, deterministic 32-byte public keys. */
static void test_key(struct nx_wgkey *k, unsigned i, unsigned salt)
{
	uint32_t x = i * 2654435761u ^ salt;

	for (int b = 0; b < NX_WG_KEY_LEN; b++) {
		x = x * 1103515245u + 12345u;
		k->b[b] = (uint8_t)(x >> 16);
	}
	k->b[0] = (uint8_t)i;
	k->b[1] = (uint8_t)(i >> 8);
}

static void v4(struct nx_prefix *p, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t len)
{
	memset(p, 0, sizeof(*p));
	p->addr.family = AF_INET;
	p->addr.v4.s_addr = htonl((uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | d);
	p->len = len;
}

static void v6(struct nx_prefix *p, uint16_t w1, uint16_t w2, uint8_t len)
{
	memset(p, 0, sizeof(*p));
	p->addr.family = AF_INET6;
	p->addr.v6.s6_addr[0] = 0xfd;
	p->addr.v6.s6_addr[2] = (uint8_t)(w1 >> 8);
	p->addr.v6.s6_addr[3] = (uint8_t)w1;
	p->addr.v6.s6_addr[4] = (uint8_t)(w2 >> 8);
	p->addr.v6.s6_addr[5] = (uint8_t)w2;
	p->len = len;
}

static const struct nexd_wg_peer *find_peer(const struct nexd_wg_device *dev,
					    const struct nx_wgkey *k)
{
	for (size_t i = 0; i < dev->n_peers; i++)
		if (nx_wgkey_eq(&dev->peers[i].public_key, k))
			return &dev->peers[i];
	return NULL;
}

/* Same allowed IPs as a set (the kernel returns them in its own order). */
static bool same_ips(const struct nexd_wg_peer *a, const struct nexd_wg_peer *b)
{
	struct nx_prefix *x, *y;
	bool same;

	if (a->n_allowed_ips != b->n_allowed_ips)
		return false;
	if (!a->n_allowed_ips)
		return true;
	x = calloc(a->n_allowed_ips, sizeof(*x));
	y = calloc(b->n_allowed_ips, sizeof(*y));
	if (!x || !y) {
		free(x);
		free(y);
		return false;
	}
	memcpy(x, a->allowed_ips, a->n_allowed_ips * sizeof(*x));
	memcpy(y, b->allowed_ips, b->n_allowed_ips * sizeof(*y));
	qsort(x, a->n_allowed_ips, sizeof(*x), nx_prefix_cmp_qsort);
	qsort(y, b->n_allowed_ips, sizeof(*y), nx_prefix_cmp_qsort);
	same = true;
	for (size_t i = 0; i < a->n_allowed_ips && same; i++)
		same = nx_prefix_cmp(&x[i], &y[i]) == 0;
	free(x);
	free(y);
	return same;
}

/* Every peer of want is in got with the same endpoint, keepalive and allowed IPs. */
static bool same_peers(const struct nexd_wg_device *want, const struct nexd_wg_device *got)
{
	if (want->n_peers != got->n_peers)
		return false;
	for (size_t i = 0; i < want->n_peers; i++) {
		const struct nexd_wg_peer *w = &want->peers[i], *g = find_peer(got, &w->public_key);

		if (!g || !same_ips(w, g) || w->keepalive_s != g->keepalive_s)
			return false;
		if (w->endpoint.family != AF_UNSPEC && (!nx_addr_eq(&w->endpoint, &g->endpoint) ||
							w->endpoint_port != g->endpoint_port))
			return false;
	}
	return true;
}

static int ip_link(const char *args)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "ip link %s >/dev/null 2>&1", args);
	return system(cmd);
}

static void test_small(struct nexd_wg *wg)
{
	struct nexd_wg_device want = { 0 }, got = { 0 };
	struct nexd_wg_peer *p;
	struct nx_err err = { 0 };
	struct nx_prefix pfx;
	int rc;

	rc = nexd_wg_get(wg, &got, &err);
	check(rc == 0 && got.n_peers == 0 && !got.has_private_key,
	      "a new interface has no key and no peers (%s)", err.msg);
	nexd_wg_device_clear(&got);

	rc = nx_wgkey_generate_private(&want.private_key, &err);
	want.has_private_key = rc == 0;
	want.listen_port = 51820;
	p = nexd_wg_device_add_peer(&want);
	test_key(&p->public_key, 1, 0);
	nx_endpoint_parse("192.0.2.1:51821", &p->endpoint, &p->endpoint_port, NULL);
	p->keepalive_s = 25;
	v4(&pfx, 10, 1, 0, 0, 16);
	nexd_wg_peer_add_allowed_ip(p, &pfx);
	v6(&pfx, 1, 0, 64);
	nexd_wg_peer_add_allowed_ip(p, &pfx);
	p = nexd_wg_device_add_peer(&want);
	test_key(&p->public_key, 2, 0);
	nx_endpoint_parse("[2001:db8::2]:4500", &p->endpoint, &p->endpoint_port, NULL);
	v4(&pfx, 10, 2, 0, 1, 32);
	nexd_wg_peer_add_allowed_ip(p, &pfx);
	p = nexd_wg_device_add_peer(&want);
	test_key(&p->public_key, 3, 0);

	rc = nexd_wg_set(wg, &want, &err);
	check(rc == 0, "set a private key, a port and 3 peers (%s)", err.msg);
	rc = nexd_wg_get(wg, &got, &err);
	check(rc == 0 && got.has_private_key && nx_wgkey_eq(&got.private_key, &want.private_key),
	      "the private key reads back");
	check(got.listen_port == 51820, "the listen port reads back (%u)", got.listen_port);
	check(same_peers(&want, &got), "3 peers read back with endpoints, keepalive, allowed IPs");
	nexd_wg_device_clear(&got);

	/* Appending allowed IPs, then replacing them. */
	nexd_wg_device_clear(&want);
	p = nexd_wg_device_add_peer(&want);
	test_key(&p->public_key, 3, 0);
	v4(&pfx, 10, 3, 0, 0, 24);
	nexd_wg_peer_add_allowed_ip(p, &pfx);
	rc = nexd_wg_set(wg, &want, &err);
	v4(&pfx, 10, 4, 0, 0, 24);
	p->allowed_ips[0] = pfx; /* the same peer again, with another prefix */
	rc = rc ? rc : nexd_wg_set(wg, &want, &err);
	rc = rc ? rc : nexd_wg_get(wg, &got, &err);
	{
		const struct nexd_wg_peer *g = rc ? NULL : find_peer(&got, &p->public_key);

		check(g && g->n_allowed_ips == 2, "allowed IPs are appended without the flag");
	}
	nexd_wg_device_clear(&got);
	p->flags = NEXD_WG_PEER_REPLACE_ALLOWED_IPS;
	rc = nexd_wg_set(wg, &want, &err);
	rc = rc ? rc : nexd_wg_get(wg, &got, &err);
	{
		const struct nexd_wg_peer *g = rc ? NULL : find_peer(&got, &p->public_key);

		check(g && same_ips(g, p), "REPLACE_ALLOWED_IPS replaces them");
		check(g && g->endpoint.family == AF_UNSPEC && got.n_peers == 3,
		      "a change without an endpoint leaves the peers as they were");
	}
	nexd_wg_device_clear(&got);

	/* Update-only on an absent peer creates nothing; remove removes. */
	nexd_wg_device_clear(&want);
	p = nexd_wg_device_add_peer(&want);
	test_key(&p->public_key, 99, 0);
	p->flags = NEXD_WG_PEER_UPDATE_ONLY;
	p = nexd_wg_device_add_peer(&want);
	test_key(&p->public_key, 2, 0);
	p->flags = NEXD_WG_PEER_REMOVE;
	rc = nexd_wg_set(wg, &want, &err);
	rc = rc ? rc : nexd_wg_get(wg, &got, &err);
	check(rc == 0 && got.n_peers == 2 && !find_peer(&got, &want.peers[0].public_key) &&
		      !find_peer(&got, &want.peers[1].public_key),
	      "UPDATE_ONLY creates no peer, REMOVE removes one (%zu left)", got.n_peers);
	nexd_wg_device_clear(&got);

	/* Bad input is refused before anything reaches the kernel. */
	want.peers[0].flags = 0;
	v4(&pfx, 10, 9, 0, 0, 24);
	pfx.len = 40;
	nexd_wg_peer_add_allowed_ip(&want.peers[0], &pfx);
	err.msg[0] = '\0';
	rc = nexd_wg_set(wg, &want, &err);
	check(rc == -EINVAL && strstr(err.msg, "allowed IP"), "a /40 IPv4 prefix is refused: %s",
	      err.msg);
	nexd_wg_device_clear(&want);
}

/* Many peers: the set and the dump both span many messages. */
static void test_many_peers(struct nexd_wg *wg, unsigned n)
{
	struct nexd_wg_device want = { 0 }, got = { 0 };
	struct nx_err err = { 0 };
	struct nx_prefix pfx;
	double t0, t1, t2;
	int rc;

	want.replace_peers = true;
	for (unsigned i = 0; i < n; i++) {
		struct nexd_wg_peer *p = nexd_wg_device_add_peer(&want);

		test_key(&p->public_key, i, 0x5eed);
		nx_endpoint_parse("198.51.100.7:51820", &p->endpoint, &p->endpoint_port, NULL);
		p->endpoint_port = (uint16_t)(1024 + i);
		v4(&pfx, 10, (uint8_t)(100 + (i >> 8)), (uint8_t)i, 0, 24);
		nexd_wg_peer_add_allowed_ip(p, &pfx);
		v4(&pfx, 172, 16 + (uint8_t)(i >> 8), (uint8_t)i, 1, 32);
		nexd_wg_peer_add_allowed_ip(p, &pfx);
		v6(&pfx, 0x100, (uint16_t)i, 64);
		nexd_wg_peer_add_allowed_ip(p, &pfx);
	}
	t0 = now_s();
	rc = nexd_wg_set(wg, &want, &err);
	t1 = now_s();
	check(rc == 0, "replace-peers with %u peers (%.2f s) %s", n, t1 - t0, err.msg);
	check(last_set_msgs > 1, "... split over %u messages", last_set_msgs);
	rc = nexd_wg_get(wg, &got, &err);
	t2 = now_s();
	check(rc == 0 && got.n_peers == n, "%zu peers read back (%.2f s) %s", got.n_peers, t2 - t1,
	      err.msg);
	check(same_peers(&want, &got), "all %u peers read back exactly", n);
	check(got.listen_port == 51820 && got.has_private_key,
	      "replace-peers keeps the device's key and port");
	nexd_wg_device_clear(&got);
	nexd_wg_device_clear(&want);
}

/* One peer with more allowed IPs than a message holds, set with REPLACE_ALLOWED_IPS: the
 * flag must go with the first part only, or each part would replace the previous one. */
static void test_many_ips(struct nexd_wg *wg, unsigned n)
{
	struct nexd_wg_device want = { 0 }, got = { 0 };
	const struct nexd_wg_peer *g;
	struct nexd_wg_peer *p;
	struct nx_err err = { 0 };
	struct nx_prefix pfx;
	int rc;

	want.replace_peers = true;
	p = nexd_wg_device_add_peer(&want);
	test_key(&p->public_key, 7, 0xa11);
	v4(&pfx, 192, 168, 0, 0, 16);
	nexd_wg_peer_add_allowed_ip(p, &pfx);
	rc = nexd_wg_set(wg, &want, &err);
	check(rc == 0, "one peer with one allowed IP %s", err.msg);

	p->flags = NEXD_WG_PEER_REPLACE_ALLOWED_IPS;
	p->n_allowed_ips = 0;
	want.replace_peers = false;
	for (unsigned j = 0; j < n; j++) {
		if (j % 2)
			v4(&pfx, 100, (uint8_t)(64 + (j >> 16)), (uint8_t)(j >> 8), (uint8_t)j, 32);
		else
			v6(&pfx, 0x200, (uint16_t)j, 48);
		nexd_wg_peer_add_allowed_ip(p, &pfx);
	}
	/* A second peer after it: it must still be sent, in whichever message. */
	p = nexd_wg_device_add_peer(&want);
	test_key(&p->public_key, 8, 0xa11);
	v4(&pfx, 10, 200, 0, 0, 24);
	nexd_wg_peer_add_allowed_ip(p, &pfx);

	rc = nexd_wg_set(wg, &want, &err);
	check(rc == 0, "REPLACE_ALLOWED_IPS with %u allowed IPs %s", n, err.msg);
	check(last_set_msgs > 1, "... split over %u messages", last_set_msgs);
	rc = nexd_wg_get(wg, &got, &err);
	g = rc ? NULL : find_peer(&got, &want.peers[0].public_key);
	check(g && g->n_allowed_ips == n, "the %u allowed IPs read back as one peer (%zu)", n,
	      g ? g->n_allowed_ips : 0);
	check(g && same_ips(g, &want.peers[0]), "exactly those, the old one replaced");
	check(rc == 0 && got.n_peers == 2 && find_peer(&got, &want.peers[1].public_key),
	      "the peer after it was set too");
	nexd_wg_device_clear(&got);
	nexd_wg_device_clear(&want);
}

int main(void)
{
	struct nexd_wg wg, wg2;
	struct nexd_wg_device got = { 0 };
	struct nx_err err = { 0 };
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	nx_log_init("wg_kernel_check", 0, NX_LOG_INFO);
	nx_log_set_sink(log_sink, NULL);
	nx_debug_set("dataplane", true, NULL);
	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root\n");
		return 77;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		printf("1..0 # SKIP unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return 77;
	}
	if (!nexd_wg_kernel_available()) {
		printf("1..0 # SKIP the kernel has no WireGuard\n");
		return 77;
	}
	check(nexd_wg_kernel_available(), "the kernel backend is available (probe cached)");
	check(system("test -z \"$(ip -o link show type wireguard)\"") == 0,
	      "the probe left no link behind");

	rc = nexd_wg_open(&wg, &nexd_wg_kernel_ops, IFNAME, &err);
	check(rc == 0, "open creates " IFNAME " (%s)", err.msg);
	if (rc < 0)
		goto out;
	check(ip_link("show " IFNAME " type wireguard") == 0, IFNAME " is a wireguard link");

	test_small(&wg);
	test_many_peers(&wg, 1000);
	test_many_ips(&wg, 3000);

	/* close without destroy leaves it forwarding; open adopts it as it is. */
	nexd_wg_close(&wg, false);
	check(ip_link("show " IFNAME) == 0, "close(false) leaves the interface");
	rc = nexd_wg_open(&wg, &nexd_wg_kernel_ops, IFNAME, &err);
	rc = rc ? rc : nexd_wg_get(&wg, &got, &err);
	check(rc == 0 && got.n_peers == 2, "open adopts it with its peers (%zu) %s", got.n_peers,
	      err.msg);
	nexd_wg_device_clear(&got);
	nexd_wg_close(&wg, true);
	check(ip_link("show " IFNAME) != 0, "close(true) removes the interface");

	/* A link of another kind with the name is not taken over. */
	check(ip_link("add nxveth0 type veth peer name nxveth1") == 0, "a veth pair for the next");
	err.msg[0] = '\0';
	rc = nexd_wg_open(&wg2, &nexd_wg_kernel_ops, "nxveth0", &err);
	check(rc == -EEXIST && strstr(err.msg, "not a wireguard"), "a veth link is refused: %s",
	      err.msg);
	if (rc == 0)
		nexd_wg_close(&wg2, false);
	ip_link("del nxveth0");

	err.msg[0] = '\0';
	rc = nexd_wg_open(&wg2, &nexd_wg_kernel_ops, "a-name-far-too-long", &err);
	check(rc == -EINVAL && err.msg[0], "an over-long name is refused: %s", err.msg);
out:
	printf("1..%d\n", n_tests);
	printf("# %d passed, %d failed\n", n_tests - n_failed, n_failed);
	nx_log_fini();
	return n_failed ? 1 : 0;
}
