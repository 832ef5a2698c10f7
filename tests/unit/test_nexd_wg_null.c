/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The null WireGuard backend (benchmarks and tests) against a model of what WireGuard does
 * with allowed IPs: each prefix belongs to at most one peer, giving it to a peer takes it
 * from the one that had it, replacing a peer's list drops what is not in the new one, and
 * removing a peer drops all it had.  Random operations, the backend read back after each.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nexd/nexd_wg.h"

#define PEERS	 6
#define PREFIXES 120 /* past one growth of the owner table, with runs that wrap */
#define ROUNDS	 6000

static int owner[PREFIXES]; /* the model: the peer holding each prefix, -1 for none */
static bool present[PEERS];

static struct nx_wgkey peer_key(int i)
{
	struct nx_wgkey k;

	memset(&k, 0, sizeof(k));
	k.b[0] = (uint8_t)(i + 1);
	return k;
}

static struct nx_prefix prefix(int i)
{
	struct nx_prefix p;

	memset(&p, 0, sizeof(p));
	p.addr.family = AF_INET;
	p.addr.v4.s_addr = htonl(0x0a000000u | (uint32_t)i);
	p.len = 32;
	return p;
}

static int prefix_index(const struct nx_prefix *p)
{
	return (int)(ntohl(p->addr.v4.s_addr) & 0xffffff);
}

static int key_index(const struct nx_wgkey *k)
{
	return k->b[0] - 1;
}

/* The backend holds exactly what the model says. */
static void check(struct nexd_wg *wg)
{
	struct nexd_wg_device got = { 0 };
	struct nx_err err = { 0 };
	int seen[PREFIXES];
	bool peer_seen[PEERS] = { false };

	assert_int_equal(nexd_wg_get(wg, &got, &err), 0);
	for (int i = 0; i < PREFIXES; i++)
		seen[i] = -1;
	for (size_t i = 0; i < got.n_peers; i++) {
		int k = key_index(&got.peers[i].public_key);

		assert_true(k >= 0 && k < PEERS && present[k]);
		peer_seen[k] = true;
		for (size_t j = 0; j < got.peers[i].n_allowed_ips; j++) {
			int x = prefix_index(&got.peers[i].allowed_ips[j]);

			assert_int_equal(seen[x], -1); /* one holder, listed once */
			seen[x] = k;
		}
	}
	for (int k = 0; k < PEERS; k++)
		assert_int_equal(peer_seen[k], present[k]);
	for (int x = 0; x < PREFIXES; x++)
		assert_int_equal(seen[x], owner[x]);
	nexd_wg_device_clear(&got);
}

static void op(struct nexd_wg *wg, int k, unsigned flags, const int *xs, int n)
{
	struct nexd_wg_device change = { 0 };
	struct nexd_wg_peer *p = nexd_wg_device_add_peer(&change);
	struct nx_err err = { 0 };

	assert_non_null(p);
	p->public_key = peer_key(k);
	p->flags = flags;
	for (int i = 0; i < n; i++) {
		struct nx_prefix x = prefix(xs[i]);

		assert_int_equal(nexd_wg_peer_add_allowed_ip(p, &x), 0);
	}
	assert_int_equal(nexd_wg_set(wg, &change, &err), 0);
	nexd_wg_device_clear(&change);
}

static void test_random_against_model(void **state)
{
	struct nexd_wg wg = { 0 };
	struct nx_err err = { 0 };

	(void)state;
	srandom(20261130);
	for (int i = 0; i < PREFIXES; i++)
		owner[i] = -1;
	assert_int_equal(nexd_wg_open(&wg, &nexd_wg_null_ops, "null0", &err), 0);
	for (int round = 0; round < ROUNDS; round++) {
		int k = (int)(random() % PEERS), n = (int)(random() % 6), xs[6];
		long kind = random() % 10;

		for (int i = 0; i < n; i++)
			xs[i] = (int)(random() % PREFIXES); /* repeats too */
		if (kind == 0) {			    /* the peer goes, with all it held */
			op(&wg, k, NEXD_WG_PEER_REMOVE, NULL, 0);
			for (int x = 0; x < PREFIXES; x++)
				if (owner[x] == k)
					owner[x] = -1;
			present[k] = false;
		} else if (kind < 5) { /* its list becomes xs */
			op(&wg, k, NEXD_WG_PEER_REPLACE_ALLOWED_IPS, xs, n);
			for (int x = 0; x < PREFIXES; x++)
				if (owner[x] == k)
					owner[x] = -1;
			for (int i = 0; i < n; i++)
				owner[xs[i]] = k;
			present[k] = true;
		} else { /* xs are added to it, taken from whoever held them */
			op(&wg, k, 0, xs, n);
			for (int i = 0; i < n; i++)
				owner[xs[i]] = k;
			present[k] = true;
		}
		check(&wg);
	}
	nexd_wg_close(&wg, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_against_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
