/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd's delta path (nexd_delta.c) held to its full reconciliation (nexd_reconcile.c): after
 * any sequence of device changes written as deltas, WireGuard (the in-memory null backend)
 * and nexd's route table must hold exactly what full passes make of the same peer table.
 * Two nexd instances are fed the same events: one writes them as deltas (and a full pass
 * only where the delta path falls back to one), the other reconciles fully after every
 * iteration; the two must hold the same after each.  Every few iterations a full pass is
 * also run on the first, as the periodic pass would, and must find nothing to change.
 * Seeded random sequences over twenty devices and a handful of contested prefixes check
 * that, and that the delta path really carries them (few iterations fall back to a full
 * pass); directed cases pin down a prefix moving between devices in one iteration, a holder
 * deleted, a prefix nobody claims any more, a device turning relay, a device refused for a
 * while, a key change, a shared key.
 *
 * NEXD_DELTA_SEED=N runs the random sequences with that seed only and prints every event.
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

#include <arpa/inet.h>
#include <cmocka.h>
#include <event2/event.h>

#include "lib/loop.h"
#include "nexd/nexd.h"

#define N_DEVS	20
#define N_POOL	8
#define VPC_ID	"6e657864-7670-4300-8000-000000000001"
#define SELF_ID "6e657864-7365-4c66-8000-000000000001"

/* Prefixes devices advertise, several devices at a time. */
static const char *const pool_text[N_POOL] = {
	"10.99.0.0/24",	    "10.99.9.9/32",   "10.99.0.0/25", "10.98.0.0/16",
	"2001:db8:99::/48", "100.64.0.12/32", /* device 2's tunnel address: its claim wins */
	"100.64.0.0/24",		      /* holds this device's own address: not routed */
	"192.168.77.0/24",		      /* this device advertises it too: not routed */
};

/* What the test means a device to be; turned into a struct nexd_device_info per event. */
struct model {
	bool exists;
	struct nx_wgkey key;
	unsigned adv, act; /* bit i: pool prefix i */
	bool has_active;
	unsigned ep; /* endpoint variant, see make_info() */
	unsigned ep_host;
	unsigned tun; /* last octet of its tunnel addresses in the pools; 0: none */
	bool v6;
	bool relay;
	bool bad; /* advertises a default route: refused by nexd_device_check() */
};

/* One nexd, without controller or tunnel. */
struct side {
	struct nx_daemon daemon;
	struct nexd nexd;
	unsigned soon_runs; /* reconcile_soon fired (the test runs the full pass itself) */
};

struct harness {
	struct side d; /* written as deltas */
	struct side f; /* reconciled fully after every iteration: the reference */
	struct nx_prefix pool[N_POOL];
	struct model dev[N_DEVS];
	int64_t revision;
	uint64_t rng;
	uint64_t seed;
	unsigned key_serial;
	bool verbose;
	/* The events so far, printed on failure (cut back to the recent past on long runs). */
	char *log;
	size_t log_len, log_cap;
	unsigned iteration;
};

/* --- the harness: a nexd without daemon, controller or tunnel ------------------------------ */

static void reconcile_soon(struct nx_defer *d, void *arg)
{
	struct side *s = arg;

	(void)d;
	s->soon_runs++;
}

static void note(struct harness *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(struct harness *h, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (h->verbose)
		fprintf(stderr, "%s\n", line);
	if (h->log_len + (size_t)n + 2 > h->log_cap) {
		size_t cap = h->log_cap ? h->log_cap * 2 : 4096;
		char *v;

		while (cap < h->log_len + (size_t)n + 2)
			cap *= 2;
		v = realloc(h->log, cap);
		assert_non_null(v);
		h->log = v;
		h->log_cap = cap;
	}
	memcpy(h->log + h->log_len, line, (size_t)n);
	h->log_len += (size_t)n;
	h->log[h->log_len++] = '\n';
	h->log[h->log_len] = '\0';
}

static void parse_prefix(const char *s, struct nx_prefix *p)
{
	struct nx_err err = { 0 };

	assert_int_equal(nx_prefix_parse(s, p, 0, &err), 0);
	nx_prefix_normalize(p);
}

static void parse_addr(const char *s, struct nx_addr *a)
{
	struct nx_err err = { 0 };

	assert_int_equal(nx_addr_parse(s, a, &err), 0);
}

static void side_init(struct side *s)
{
	struct nexd *nexd = &s->nexd;
	struct nx_err err = { 0 };

	s->daemon.name = "nexd";
	s->daemon.loop = nx_loop_new();
	assert_non_null(s->daemon.loop);
	s->daemon.ctx = nexd;
	nexd->daemon = &s->daemon;
	nexd->peers = nexd_peers_new();
	assert_non_null(nexd->peers);
	assert_int_equal(nexd_wg_open(&nexd->wg, &nexd_wg_null_ops, "nx-delta", &err), 0);
	assert_true(nexd_dplane_null(nexd));

	/* This device: its key, addresses and one advertised prefix. */
	memset(nexd->id.private_key.b, 0x5a, NX_WG_KEY_LEN);
	memset(nexd->id.public_key.b, 0xa5, NX_WG_KEY_LEN);
	nexd->have_identity = true;
	snprintf(nexd->id.device_id, sizeof(nexd->id.device_id), "%s", SELF_ID);
	snprintf(nexd->id.vpc_id, sizeof(nexd->id.vpc_id), "%s", VPC_ID);
	parse_addr("100.64.0.1", &nexd->id.tunnel_ipv4);
	parse_addr("fd00:6e78::1", &nexd->id.tunnel_ipv6);
	parse_prefix("192.168.77.0/24", &nexd->cfg.advertise[0]);
	nexd->cfg.n_advertise = 1;
	snprintf(nexd->cfg.ifname, sizeof(nexd->cfg.ifname), "nx-delta");
	nexd->cfg.backend = NEXD_WG_NULL;

	snprintf(nexd->vpc.id, sizeof(nexd->vpc.id), "%s", VPC_ID);
	parse_prefix("100.64.0.0/10", &nexd->vpc.ipv4_cidr);
	parse_prefix("fd00:6e78::/64", &nexd->vpc.ipv6_cidr);

	/* A local subnet, so that peers' "local" endpoints on it are preferred. */
	snprintf(nexd->local_endpoints[0].source, sizeof(nexd->local_endpoints[0].source), "local");
	parse_addr("192.0.2.1", &nexd->local_endpoints[0].addr);
	nexd->local_endpoints[0].port = 51820;
	parse_prefix("192.0.2.0/24", &nexd->local_nets[0]);
	nexd->n_local_endpoints = 1;

	/* Up and synced, as after nexd_dplane_up() and a listing, without its timer. */
	nexd->dplane_up = true;
	nexd->synced = true;
	nx_defer_init(s->daemon.loop, &nexd->reconcile_soon, reconcile_soon, s);
	assert_int_equal(nexd_reconcile(nexd, &err), 0);
}

static void side_fini(struct side *s)
{
	struct nexd *nexd = &s->nexd;

	nexd_delta_free(nexd);
	nx_defer_fini(&nexd->reconcile_soon);
	nexd_wg_close(&nexd->wg, true);
	nexd_peers_free(nexd->peers);
	free(nexd->routes);
	nx_loop_free(s->daemon.loop);
}

/* The harnesses in use, freed by teardown() when a test fails half-way. */
static struct harness *live[4];

static struct harness *harness_new(uint64_t seed)
{
	struct harness *h = calloc(1, sizeof(*h));
	size_t k;

	assert_non_null(h);
	for (k = 0; k < 4; k++)
		if (!live[k]) {
			live[k] = h;
			break;
		}
	assert_true(k < 4);
	h->seed = seed;
	h->rng = seed;
	for (size_t i = 0; i < N_POOL; i++)
		parse_prefix(pool_text[i], &h->pool[i]);
	side_init(&h->d);
	side_init(&h->f);
	return h;
}

static void harness_free(struct harness *h)
{
	for (size_t k = 0; k < 4; k++)
		if (live[k] == h)
			live[k] = NULL;
	side_fini(&h->d);
	side_fini(&h->f);
	free(h->log);
	free(h);
}

/* splitmix64: small, seedable, the same everywhere. */
static uint64_t rnd(struct harness *h)
{
	uint64_t z = (h->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned pick(struct harness *h, unsigned n)
{
	return (unsigned)(rnd(h) % n);
}

/* A key no device had before (not this device's either). */
static void fresh_key(struct harness *h, struct nx_wgkey *k)
{
	unsigned s = ++h->key_serial;

	memset(k->b, 0, sizeof(k->b));
	k->b[0] = (uint8_t)(s >> 8);
	k->b[1] = (uint8_t)s;
	k->b[2] = 0x6b;
	for (size_t i = 3; i < NX_WG_KEY_LEN; i++)
		k->b[i] = (uint8_t)(k->b[i - 1] * 31 + s + i);
}

static void dev_id(unsigned i, char out[NEXD_UUID_LEN])
{
	snprintf(out, NEXD_UUID_LEN, "6e657864-6465-4076-8000-%012u", i);
}

/* The device index of a key, for messages; -1 for none. */
static int key_dev(const struct harness *h, const struct nx_wgkey *k)
{
	for (int i = 0; i < N_DEVS; i++)
		if (nx_wgkey_eq(&h->dev[i].key, k))
			return i;
	return -1;
}

static void set_addr4(struct nx_addr *a, uint32_t host_order)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	a->v4.s_addr = htonl(host_order);
}

static void add_endpoint(struct nexd_device_info *d, const char *source, uint32_t addr,
			 uint16_t port)
{
	struct nexd_device_endpoint *e = &d->endpoints[d->n_endpoints++];

	e->source = strdup(source);
	assert_non_null(e->source);
	set_addr4(&e->addr, addr);
	e->port = port;
}

/*
 * The controller's description of device i as the model has it.
 * Endpoint variants: 0 none; 1 local on this host's subnet; 2 reflexive; 3 local elsewhere
 * and reflexive; 4 local on the subnet and reflexive.
 */
static void make_info(struct harness *h, unsigned i, int64_t revision, struct nexd_device_info *d)
{
	const struct model *m = &h->dev[i];
	uint32_t host = 0xc0000200u + (m->ep_host & 0xff);	/* 192.0.2.x */
	uint32_t refl = 0xc6336400u + (m->ep_host & 0xff);	/* 198.51.100.x */
	uint32_t elsewhere = 0xcb007100u + (m->ep_host & 0xff); /* 203.0.113.x */
	uint16_t rport = (uint16_t)(40000 + m->ep_host);
	char name[32];

	memset(d, 0, sizeof(*d));
	dev_id(i, d->id);
	snprintf(d->vpc_id, sizeof(d->vpc_id), "%s", VPC_ID);
	snprintf(name, sizeof(name), "dev-%u", i);
	d->hostname = strdup(name);
	assert_non_null(d->hostname);
	d->public_key = m->key;
	if (m->tun)
		set_addr4(&d->tunnel_ipv4, 0x64400000u + m->tun); /* 100.64.0.tun */
	if (m->tun && m->v6) {
		parse_addr("fd00:6e78::", &d->tunnel_ipv6);
		d->tunnel_ipv6.v6.s6_addr[15] = (uint8_t)m->tun;
	}
	d->advertise = calloc(N_POOL + 1, sizeof(*d->advertise));
	d->active = calloc(N_POOL, sizeof(*d->active));
	d->endpoints = calloc(2, sizeof(*d->endpoints));
	assert_non_null(d->advertise);
	assert_non_null(d->active);
	assert_non_null(d->endpoints);
	for (unsigned b = 0; b < N_POOL; b++) {
		if (m->adv & (1u << b))
			d->advertise[d->n_advertise++] = h->pool[b];
		if (m->adv & m->act & (1u << b))
			d->active[d->n_active++] = h->pool[b];
	}
	if (m->bad)
		parse_prefix("0.0.0.0/0", &d->advertise[d->n_advertise++]);
	d->has_active = m->has_active;
	switch (m->ep) {
	case 1:
		add_endpoint(d, "local", host, 51820);
		break;
	case 2:
		add_endpoint(d, "stun:198.51.100.1:3478", refl, rport);
		break;
	case 3:
		add_endpoint(d, "local", elsewhere, 51820);
		add_endpoint(d, "stun:198.51.100.1:3478", refl, rport);
		break;
	case 4:
		add_endpoint(d, "local", host, 51821);
		add_endpoint(d, "stun:198.51.100.1:3478", refl, rport);
		break;
	default:
		break;
	}
	d->relay = m->relay;
	d->online = true;
	d->revision = revision;
}

static void log_event(struct harness *h, unsigned i, bool del)
{
	const struct model *m = &h->dev[i];
	char adv[256] = "", act[256] = "", pt[NX_PREFIX_STRLEN];
	size_t na = 0, nc = 0;

	if (del) {
		note(h, "  delete dev %u (rev %lld)", i, (long long)h->revision);
		return;
	}
	for (unsigned b = 0; b < N_POOL; b++) {
		if (!(m->adv & (1u << b)))
			continue;
		nx_prefix_format(&h->pool[b], pt, sizeof(pt));
		na += (size_t)snprintf(adv + na, sizeof(adv) - na, "%s%s", na ? "," : "", pt);
		if (m->act & (1u << b))
			nc += (size_t)snprintf(act + nc, sizeof(act) - nc, "%s%s", nc ? "," : "",
					       pt);
	}
	note(h, "  upsert dev %u rev %lld key #%02x%02x tun %u adv {%s%s} %s {%s} ep %u/%u%s%s", i,
	     (long long)h->revision, m->key.b[0], m->key.b[1], m->tun, adv,
	     m->bad ? (na ? ",0.0.0.0/0" : "0.0.0.0/0") : "",
	     m->has_active ? "active" : "no-active", act, m->ep, m->ep_host, m->v6 ? " v6" : "",
	     m->relay ? " relay" : "");
}

/* One device event, applied as nexd_ctrl.c's on_device() applies a change outside a
 * listing: before, the table change, the check, after (the reference side: without the
 * delta calls). */
static void apply_side(struct harness *h, struct side *s, unsigned i, bool del, bool delta)
{
	struct nexd *nexd = &s->nexd;
	struct nexd_device_info d;
	struct nx_err err = { 0 };
	struct nexd_peer *p;

	if (del) {
		memset(&d, 0, sizeof(d));
		dev_id(i, d.id);
		d.revision = h->revision;
	} else {
		make_info(h, i, h->revision, &d);
	}
	if (delta)
		nexd_delta_before(nexd, nexd_peers_find(nexd->peers, d.id));
	if (del) {
		nexd_peers_remove(nexd->peers, d.id);
		nexd_device_info_clear(&d);
		if (delta)
			nexd_delta_after(nexd, NULL);
		return;
	}
	p = nexd_peers_upsert(nexd->peers, &d);
	assert_non_null(p);
	p->valid = nexd_device_check(&p->dev, &nexd->vpc, &nexd->id.public_key, &err) == 0;
	free(p->reason);
	p->reason = p->valid ? NULL : strdup(err.msg);
	if (delta)
		nexd_delta_after(nexd, p);
}

static void apply(struct harness *h, unsigned i, bool del)
{
	h->revision++;
	h->dev[i].exists = !del;
	log_event(h, i, del);
	apply_side(h, &h->d, i, del, true);
	apply_side(h, &h->f, i, del, false);
}

/* --- snapshots: what WireGuard and the route table hold ------------------------------------ */

struct snap {
	struct nexd_wg_device wg;
	struct nexd_route *routes;
	size_t n_routes;
};

static int wg_peer_cmp(const void *a, const void *b)
{
	return memcmp(((const struct nexd_wg_peer *)a)->public_key.b,
		      ((const struct nexd_wg_peer *)b)->public_key.b, NX_WG_KEY_LEN);
}

static void snap_take(struct side *side, struct snap *s)
{
	struct nx_err err = { 0 };

	memset(s, 0, sizeof(*s));
	assert_int_equal(nexd_wg_get(&side->nexd.wg, &s->wg, &err), 0);
	if (s->wg.n_peers)
		qsort(s->wg.peers, s->wg.n_peers, sizeof(s->wg.peers[0]), wg_peer_cmp);
	for (size_t i = 0; i < s->wg.n_peers; i++)
		if (s->wg.peers[i].n_allowed_ips)
			qsort(s->wg.peers[i].allowed_ips, s->wg.peers[i].n_allowed_ips,
			      sizeof(struct nx_prefix), nx_prefix_cmp_qsort);
	s->n_routes = side->nexd.n_routes;
	s->routes = calloc(s->n_routes ? s->n_routes : 1, sizeof(*s->routes));
	assert_non_null(s->routes);
	if (s->n_routes)
		memcpy(s->routes, side->nexd.routes, s->n_routes * sizeof(*s->routes));
}

static void snap_free(struct snap *s)
{
	nexd_wg_device_clear(&s->wg);
	free(s->routes);
	memset(s, 0, sizeof(*s));
}

static bool peer_eq(const struct nexd_wg_peer *a, const struct nexd_wg_peer *b)
{
	if (!nx_wgkey_eq(&a->public_key, &b->public_key) ||
	    !nx_addr_eq(&a->endpoint, &b->endpoint) || a->endpoint_port != b->endpoint_port ||
	    a->keepalive_s != b->keepalive_s || a->n_allowed_ips != b->n_allowed_ips)
		return false;
	for (size_t i = 0; i < a->n_allowed_ips; i++)
		if (nx_prefix_cmp(&a->allowed_ips[i], &b->allowed_ips[i]) != 0)
			return false;
	return true;
}

static bool snap_eq(const struct snap *a, const struct snap *b)
{
	if (a->wg.n_peers != b->wg.n_peers || a->n_routes != b->n_routes)
		return false;
	for (size_t i = 0; i < a->wg.n_peers; i++)
		if (!peer_eq(&a->wg.peers[i], &b->wg.peers[i]))
			return false;
	for (size_t i = 0; i < a->n_routes; i++)
		if (nx_prefix_cmp(&a->routes[i].prefix, &b->routes[i].prefix) != 0 ||
		    !nx_wgkey_eq(&a->routes[i].peer, &b->routes[i].peer) ||
		    a->routes[i].installed != b->routes[i].installed)
			return false;
	return true;
}

/* Line k of a snapshot as text (peers, then routes); false past the end. */
static bool snap_line(const struct harness *h, const struct snap *s, size_t k, char *buf,
		      size_t size)
{
	char pt[NX_PREFIX_STRLEN], et[NX_ENDPOINT_STRLEN];
	size_t n;

	if (k < s->wg.n_peers) {
		const struct nexd_wg_peer *p = &s->wg.peers[k];

		n = (size_t)snprintf(
			buf, size, "peer dev %d key #%02x%02x endpoint %s keepalive %u:",
			key_dev(h, &p->public_key), p->public_key.b[0], p->public_key.b[1],
			p->endpoint.family
				? nx_endpoint_format(&p->endpoint, p->endpoint_port, et, sizeof(et))
				: "-",
			p->keepalive_s);
		for (size_t j = 0; j < p->n_allowed_ips && n < size; j++)
			n += (size_t)snprintf(buf + n, size - n, " %s",
					      nx_prefix_format(&p->allowed_ips[j], pt, sizeof(pt)));
		return true;
	}
	k -= s->wg.n_peers;
	if (k >= s->n_routes)
		return false;
	snprintf(buf, size, "route %s -> dev %d #%02x%02x%s",
		 nx_prefix_format(&s->routes[k].prefix, pt, sizeof(pt)),
		 key_dev(h, &s->routes[k].peer), s->routes[k].peer.b[0], s->routes[k].peer.b[1],
		 s->routes[k].installed ? "" : " (not installed)");
	return true;
}

static bool snap_has_line(const struct harness *h, const struct snap *s, const char *line)
{
	char buf[2048];

	for (size_t k = 0; snap_line(h, s, k, buf, sizeof(buf)); k++)
		if (strcmp(buf, line) == 0)
			return true;
	return false;
}

/* What a holds and b does not, and the reverse. */
static void snap_print_diff(const struct harness *h, const char *a_title, const struct snap *a,
			    const char *b_title, const struct snap *b)
{
	char buf[2048];

	fprintf(stderr, "  - %s: %zu peer(s), %zu route(s); + %s: %zu peer(s), %zu route(s)\n",
		a_title, a->wg.n_peers, a->n_routes, b_title, b->wg.n_peers, b->n_routes);
	for (size_t k = 0; snap_line(h, a, k, buf, sizeof(buf)); k++)
		if (!snap_has_line(h, b, buf))
			fprintf(stderr, "  - %s\n", buf);
	for (size_t k = 0; snap_line(h, b, k, buf, sizeof(buf)); k++)
		if (!snap_has_line(h, a, buf))
			fprintf(stderr, "  + %s\n", buf);
}

/* The events logged so far, the last `lines` of them. */
static void log_print(const struct harness *h, size_t lines)
{
	size_t i = h->log_len, n = 0;

	while (i > 0 && n <= lines)
		if (h->log[--i] == '\n')
			n++;
	if (h->log)
		fprintf(stderr, "%s%s", n > lines ? "  ...\n" : "",
			h->log + (n > lines ? i + 1 : 0));
}

/* --- iterations ----------------------------------------------------------------------------- */

/* As nexd_dplane.c's reconcile_now(). */
static void full_pass(struct side *s)
{
	struct nx_err err = { 0 };

	s->nexd.full_pending = false;
	nexd_delta_discard(&s->nexd);
	nx_defer_cancel(&s->nexd.reconcile_soon);
	if (nexd_reconcile(&s->nexd, &err) < 0)
		fail_msg("full pass: %s", err.msg);
}

/* Fails, saying where and showing both, unless a and b hold the same. */
static void snap_expect_eq(struct harness *h, struct snap *a, const char *a_title, struct snap *b,
			   const char *b_title, const char *what)
{
	if (snap_eq(a, b))
		return;
	fprintf(stderr, "seed %llu, iteration %u: %s\n", (unsigned long long)h->seed, h->iteration,
		what);
	log_print(h, 60);
	snap_print_diff(h, a_title, a, b_title, b);
	snap_free(a);
	snap_free(b);
	fail_msg("seed %llu, iteration %u: %s", (unsigned long long)h->seed, h->iteration, what);
}

/* One loop iteration, run without blocking: the deferred delta write. */
static void run_once(struct side *s)
{
	assert_true(event_base_loop(nx_loop_base(s->daemon.loop), EVLOOP_ONCE | EVLOOP_NONBLOCK) >=
		    0);
}

/*
 * Ends an iteration: runs the delta side's loop once (the deferred write) and its full pass
 * when one fell due, a full pass on the reference side, and compares the two.  With
 * periodic, a full pass on the delta side must then find nothing to change (and leaves it
 * as the periodic pass would).  Returns whether the delta side fell back to a full pass.
 */
static bool iterate_ex(struct harness *h, bool periodic)
{
	struct snap a, b;
	struct nx_err err = { 0 };
	bool fell_back;

	run_once(&h->d);
	fell_back = h->d.nexd.full_pending;
	if (fell_back)
		full_pass(&h->d);
	if (nexd_reconcile(&h->f.nexd, &err) < 0)
		fail_msg("full pass: %s", err.msg);
	note(h, "iteration %u done%s", h->iteration, fell_back ? ": full pass" : "");
	snap_take(&h->d, &a);
	snap_take(&h->f, &b);
	snap_expect_eq(h, &a, fell_back ? "after the fallback" : "after the delta", &b,
		       "full passes only", "WireGuard or routes differ from full passes");
	snap_free(&b);
	if (periodic) {
		if (nexd_reconcile(&h->d.nexd, &err) < 0)
			fail_msg("full pass: %s", err.msg);
		snap_take(&h->d, &b);
		snap_expect_eq(h, &a, "before a full pass", &b, "after a full pass",
			       "a full pass changed what deltas wrote");
		snap_free(&b);
	}
	snap_free(&a);
	h->iteration++;
	return fell_back;
}

static bool iterate(struct harness *h)
{
	return iterate_ex(h, false);
}

/* --- random sequences ---------------------------------------------------------------------- */

struct random_opts {
	bool oddities; /* relays, shared keys: events only a full pass decides */
};

static void new_device(struct harness *h, unsigned i)
{
	struct model *m = &h->dev[i];

	memset(m, 0, sizeof(*m));
	fresh_key(h, &m->key);
	for (unsigned b = 0; b < N_POOL; b++)
		if (pick(h, 4) == 0)
			m->adv |= 1u << b;
	m->has_active = pick(h, 2);
	m->act = (unsigned)rnd(h) & m->adv;
	m->ep = pick(h, 5);
	m->ep_host = 1 + pick(h, 200);
	m->tun = 10 + i;
	m->v6 = pick(h, 4) != 0;
	apply(h, i, false);
}

/* Another device than i that exists, or -1. */
static int other_device(struct harness *h, unsigned i)
{
	unsigned start = pick(h, N_DEVS);

	for (unsigned k = 0; k < N_DEVS; k++) {
		unsigned j = (start + k) % N_DEVS;

		if (j != i && h->dev[j].exists)
			return (int)j;
	}
	return -1;
}

static void random_event(struct harness *h, const struct random_opts *o)
{
	unsigned i = pick(h, N_DEVS), r = pick(h, 100);
	struct model *m = &h->dev[i];
	int j;

	if (!m->exists) {
		if (r < 85)
			new_device(h, i);
		else
			apply(h, i, true); /* a delete of a device nexd does not know */
		return;
	}
	if (r < 8) {
		apply(h, i, true);
		return;
	}
	if (r < 18) {
		m->ep = pick(h, 5);
		if (pick(h, 2))
			m->ep_host = 1 + pick(h, 200);
	} else if (r < 20) {
		fresh_key(h, &m->key);
	} else if (r < 22) {
		m->bad = !m->bad;
	} else if (r < 25) {
		/* the same description, a newer revision */
	} else if (r < 27) {
		m->has_active = !m->has_active;
	} else if (r < 29) {
		/* Readdressed: its own, this device's, one another may have, or none. */
		static const unsigned tuns[] = { 0, 1, 40, 41, 10 + N_DEVS / 2 };
		unsigned t = pick(h, 6);

		m->tun = t < 5 ? tuns[t] : 10 + i;
	} else if (r < 30) {
		m->v6 = !m->v6;
	} else if (o->oddities && r < 33) {
		m->relay = !m->relay;
	} else if (o->oddities && r < 35 && (j = other_device(h, i)) >= 0) {
		m->key = h->dev[j].key; /* two devices, one key */
	} else if (r < 60) {
		m->adv ^= 1u << pick(h, N_POOL);
		if (pick(h, 2))
			m->act ^= 1u << pick(h, N_POOL);
	} else if (r < 80) {
		m->act ^= 1u << pick(h, N_POOL);
	} else {
		m->adv = (unsigned)rnd(h) & ((1u << N_POOL) - 1) & (unsigned)rnd(h);
		m->act = (unsigned)rnd(h) & m->adv;
	}
	apply(h, i, false);
}

/* A prefix moving from one device to another: two events in one iteration, in either order,
 * by election (active_cidrs) or by revision (no election: the newest claim wins). */
static void random_move(struct harness *h)
{
	unsigned b = pick(h, N_POOL), from = pick(h, N_DEVS);
	int to = other_device(h, from);
	struct model *a = &h->dev[from];
	bool from_first = pick(h, 2);

	if (!a->exists || to < 0)
		return;
	note(h, " move %s from dev %u to dev %d (%s first)", pool_text[b], from, to,
	     from_first ? "loser" : "winner");
	for (int k = 0; k < 2; k++) {
		bool loser = (k == 0) == from_first;
		struct model *m = loser ? a : &h->dev[to];

		if (loser) {
			if (m->has_active && pick(h, 2))
				m->act &= ~(1u << b);
			else
				m->adv &= ~(1u << b);
		} else {
			m->adv |= 1u << b;
			m->act |= 1u << b;
		}
		apply(h, loser ? from : (unsigned)to, false);
	}
}

/* A relay that stops being one, or a device that shared a key getting one of its own: so
 * that the delta path gets the table back from the full pass now and then. */
static void heal(struct harness *h)
{
	unsigned start = pick(h, N_DEVS);

	for (unsigned k = 0; k < N_DEVS; k++) {
		unsigned i = (start + k) % N_DEVS;
		struct model *m = &h->dev[i];

		if (!m->exists)
			continue;
		if (m->relay) {
			m->relay = false;
		} else if (key_dev(h, &m->key) != (int)i) {
			fresh_key(h, &m->key);
		} else {
			bool shared = false;

			for (unsigned j = i + 1; j < N_DEVS; j++)
				shared |= h->dev[j].exists && nx_wgkey_eq(&h->dev[j].key, &m->key);
			if (!shared)
				continue;
			fresh_key(h, &m->key);
		}
		apply(h, i, false);
		return;
	}
}

static void run_random(uint64_t seed, unsigned iterations, const struct random_opts *o,
		       unsigned *n_fell_back)
{
	struct harness *h = harness_new(seed);
	const char *env = getenv("NEXD_DELTA_SEED");

	h->verbose = env && *env;
	*n_fell_back = 0;
	for (unsigned it = 0; it < iterations; it++) {
		unsigned n = pick(h, 8);

		note(h, "iteration %u:", h->iteration);
		/* Mostly one event, sometimes a burst, sometimes a move among them. */
		n = n < 4 ? 1 : n < 7 ? 2 : 3 + pick(h, 4);
		for (unsigned k = 0; k < n; k++)
			random_event(h, o);
		if (pick(h, 5) == 0)
			random_move(h);
		if (o->oddities && pick(h, 3) == 0)
			heal(h);
		if (iterate_ex(h, pick(h, 8) == 0))
			(*n_fell_back)++;
		/* Keep the run log to the recent past: the seed reproduces the rest. */
		if (!h->verbose && h->log_len > (1u << 20)) {
			h->log_len = 0;
			h->log[0] = '\0';
		}
	}
	harness_free(h);
}

static const uint64_t seeds[] = { 1, 2, 3, 7, 42, 1234567, 20261130, 0x6e657864 };

static bool seed_from_env(uint64_t *seed)
{
	const char *s = getenv("NEXD_DELTA_SEED");
	char *end;

	if (!s || !*s)
		return false;
	errno = 0;
	*seed = strtoull(s, &end, 0);
	if (errno || *end)
		fail_msg("NEXD_DELTA_SEED=%s is not a number", s);
	return true;
}

/* Ordinary changes: the delta path carries nearly all of them, and exactly. */
static void test_random_deltas(void **state)
{
	const struct random_opts o = { .oddities = false };
	size_t n_seeds = sizeof(seeds) / sizeof(seeds[0]);
	uint64_t one;
	bool env = seed_from_env(&one);
	unsigned iterations = 400;

	(void)state;
	for (size_t s = 0; s < (env ? 1 : n_seeds); s++) {
		uint64_t seed = env ? one : seeds[s];
		unsigned fell_back;

		run_random(seed, iterations, &o, &fell_back);
		print_message("seed %llu: %u iterations, %u fell back to a full pass\n",
			      (unsigned long long)seed, iterations, fell_back);
		if (fell_back * 10 >= iterations)
			fail_msg("seed %llu: %u of %u iterations fell back to a full pass",
				 (unsigned long long)seed, fell_back, iterations);
	}
}

/* With relays coming and going and keys shared: what falls back must come out the same. */
static void test_random_with_fallbacks(void **state)
{
	const struct random_opts o = { .oddities = true };
	size_t n_seeds = sizeof(seeds) / sizeof(seeds[0]);
	uint64_t one;
	bool env = seed_from_env(&one);
	unsigned iterations = 300;

	(void)state;
	for (size_t s = 0; s < (env ? 1 : n_seeds); s++) {
		uint64_t seed = env ? one : seeds[s] + 1000;
		unsigned fell_back;

		run_random(seed, iterations, &o, &fell_back);
		print_message("seed %llu: %u iterations, %u fell back to a full pass\n",
			      (unsigned long long)seed, iterations, fell_back);
		assert_true(fell_back > 0);
	}
}

/* --- directed cases ------------------------------------------------------------------------ */

static struct model *dev_new(struct harness *h, unsigned i, unsigned adv, unsigned act,
			     bool has_active)
{
	struct model *m = &h->dev[i];

	memset(m, 0, sizeof(*m));
	fresh_key(h, &m->key);
	m->adv = adv;
	m->act = act;
	m->has_active = has_active;
	m->ep = 1;
	m->ep_host = 10 + i;
	m->tun = 10 + i;
	m->v6 = true;
	m->exists = true;
	return m;
}

static bool peer_has(const struct nexd_wg_peer *p, const struct nx_prefix *x)
{
	for (size_t i = 0; p && i < p->n_allowed_ips; i++)
		if (nx_prefix_cmp(&p->allowed_ips[i], x) == 0)
			return true;
	return false;
}

/* The routes for x (0 or 1: the table is keyed by prefix) and the peer of the last. */
static size_t routes_for(const struct harness *h, const struct nx_prefix *x, struct nx_wgkey *peer)
{
	size_t n = 0;

	for (size_t i = 0; i < h->d.nexd.n_routes; i++)
		if (nx_prefix_cmp(&h->d.nexd.routes[i].prefix, x) == 0) {
			n++;
			if (peer)
				*peer = h->d.nexd.routes[i].peer;
		}
	return n;
}

/* Which WireGuard peers carry x. */
static size_t carriers(struct harness *h, const struct nx_prefix *x, struct nx_wgkey *who)
{
	struct snap s;
	size_t n = 0;

	snap_take(&h->d, &s);
	for (size_t i = 0; i < s.wg.n_peers; i++)
		if (peer_has(&s.wg.peers[i], x)) {
			n++;
			if (who)
				*who = s.wg.peers[i].public_key;
		}
	snap_free(&s);
	return n;
}

/* x is routed, to holder, and carried by holder's WireGuard peer alone. */
static void assert_held_by(struct harness *h, unsigned x, unsigned holder)
{
	struct nx_wgkey k = { { 0 } };

	assert_int_equal(routes_for(h, &h->pool[x], &k), 1);
	assert_int_equal(key_dev(h, &k), holder);
	assert_int_equal(carriers(h, &h->pool[x], &k), 1);
	assert_int_equal(key_dev(h, &k), holder);
}

static void assert_unrouted(struct harness *h, unsigned x)
{
	assert_int_equal(routes_for(h, &h->pool[x], NULL), 0);
	assert_int_equal(carriers(h, &h->pool[x], NULL), 0);
}

#define P_NET  0 /* 10.99.0.0/24 */
#define P_HOST 1 /* 10.99.9.9/32 */
#define P_WIDE 3 /* 10.98.0.0/16 */
#define BIT(x) (1u << (x))

/* A /32 moving from A to B in one iteration, the two events in either order, by election
 * and by revision: one route, B's allowed IPs carry it, A's do not, no full pass. */
static void test_move(void **state)
{
	(void)state;
	for (int elect = 0; elect < 2; elect++)
		for (int loser_first = 0; loser_first < 2; loser_first++) {
			struct harness *h = harness_new(100 + (uint64_t)(elect * 2 + loser_first));
			struct model *a = dev_new(h, 0, BIT(P_HOST), BIT(P_HOST), elect);
			struct model *b = dev_new(h, 1, elect ? BIT(P_HOST) : 0, 0, elect);

			apply(h, 0, false);
			apply(h, 1, false);
			dev_new(h, 2, BIT(P_NET), 0, false);
			apply(h, 2, false);
			assert_false(iterate(h));
			assert_held_by(h, P_HOST, 0);

			note(h, " move (elect %d, loser first %d)", elect, loser_first);
			for (int k = 0; k < 2; k++) {
				if ((k == 0) == (loser_first != 0)) {
					if (elect)
						a->act = 0;
					else
						a->adv = 0;
					apply(h, 0, false);
				} else {
					b->adv |= BIT(P_HOST);
					b->act |= BIT(P_HOST);
					apply(h, 1, false);
				}
			}
			assert_false(iterate(h));
			assert_held_by(h, P_HOST, 1);
			/* and back, one event per iteration */
			a->adv = a->act = BIT(P_HOST);
			apply(h, 0, false);
			assert_false(iterate(h));
			assert_held_by(h, P_HOST, 0); /* the newer claim */
			b->adv = b->act = 0;
			apply(h, 1, false);
			assert_false(iterate(h));
			assert_held_by(h, P_HOST, 0);
			harness_free(h);
		}
}

/* The holder of a prefix deleted: the remaining claimant gets it, the route stays. */
static void test_holder_deleted(void **state)
{
	struct harness *h = harness_new(200);

	(void)state;
	dev_new(h, 1, BIT(P_NET) | BIT(P_WIDE), 0, false);
	apply(h, 1, false);
	dev_new(h, 0, BIT(P_NET), 0, false);
	apply(h, 0, false); /* newer: holds P_NET */
	assert_false(iterate(h));
	assert_held_by(h, P_NET, 0);
	assert_held_by(h, P_WIDE, 1);

	apply(h, 0, true);
	assert_false(iterate(h));
	assert_held_by(h, P_NET, 1);
	assert_held_by(h, P_WIDE, 1);
	harness_free(h);
}

/* A prefix nobody claims any more loses its route and its allowed IP. */
static void test_unclaimed(void **state)
{
	struct harness *h = harness_new(300);
	struct model *a;

	(void)state;
	a = dev_new(h, 0, BIT(P_WIDE) | BIT(P_NET), BIT(P_WIDE) | BIT(P_NET), true);
	apply(h, 0, false);
	dev_new(h, 1, BIT(P_HOST), 0, false);
	apply(h, 1, false);
	assert_false(iterate(h));
	assert_held_by(h, P_WIDE, 0);

	a->adv = BIT(P_NET); /* withdrawn */
	apply(h, 0, false);
	assert_false(iterate(h));
	assert_unrouted(h, P_WIDE);
	assert_held_by(h, P_NET, 0);

	a->act = 0; /* still advertised, no longer elected */
	apply(h, 0, false);
	assert_false(iterate(h));
	assert_unrouted(h, P_NET);

	apply(h, 1, true); /* the only claimant deleted */
	assert_false(iterate(h));
	assert_unrouted(h, P_HOST);
	harness_free(h);
}

/* A device turning relay is the full pass's; once it is no relay again, deltas resume. */
static void test_relay_falls_back(void **state)
{
	struct harness *h = harness_new(400);
	struct model *a, *b;

	(void)state;
	a = dev_new(h, 0, BIT(P_NET), 0, false);
	apply(h, 0, false);
	b = dev_new(h, 1, BIT(P_HOST), 0, false);
	apply(h, 1, false);
	assert_false(iterate(h));

	a->relay = true;
	apply(h, 0, false);
	run_once(&h->d);
	assert_true(h->d.nexd.full_pending);
	assert_true(iterate(h));

	/* Any change while a relay is listed is the full pass's too. */
	b->ep = 2;
	apply(h, 1, false);
	assert_true(iterate(h));

	a->relay = false;
	apply(h, 0, false);
	assert_true(iterate(h));
	b->ep = 1;
	apply(h, 1, false);
	assert_false(iterate(h));
	harness_free(h);
}

/* A device refused for a while (a default route advertised) and then accepted again, with
 * the endpoints it had: its peer comes back whole, endpoint included. */
static void test_invalid_then_valid(void **state)
{
	struct harness *h = harness_new(500);
	struct model *a;

	(void)state;
	a = dev_new(h, 0, BIT(P_NET), 0, false);
	apply(h, 0, false);
	dev_new(h, 1, BIT(P_NET), 0, false);
	apply(h, 1, false);
	assert_false(iterate(h));

	a->bad = true;
	apply(h, 0, false);
	iterate(h);
	assert_held_by(h, P_NET, 1);

	a->bad = false;
	apply(h, 0, false);
	iterate(h);
	assert_held_by(h, P_NET, 0);
	harness_free(h);
}

/* A device whose key changes, its endpoints unchanged: the new peer has the endpoint. */
static void test_key_change(void **state)
{
	struct harness *h = harness_new(600);
	struct model *a;

	(void)state;
	a = dev_new(h, 0, BIT(P_NET), 0, false);
	apply(h, 0, false);
	dev_new(h, 1, BIT(P_HOST), 0, false);
	apply(h, 1, false);
	assert_false(iterate(h));

	fresh_key(h, &a->key);
	apply(h, 0, false);
	iterate(h);
	assert_held_by(h, P_NET, 0);
	harness_free(h);
}

/* A device taking the key another device has: the full pass decides (one is shadowed),
 * whichever of the two sorts first. */
static void test_shared_key(void **state)
{
	(void)state;
	for (unsigned k = 0; k < 2; k++) {
		unsigned taker = 1 - k, other = k; /* the one that sorts last first */
		struct harness *h = harness_new(700 + taker);

		dev_new(h, 0, BIT(P_NET), 0, false);
		apply(h, 0, false);
		dev_new(h, 1, BIT(P_WIDE), 0, false);
		apply(h, 1, false);
		assert_false(iterate(h));

		h->dev[taker].key = h->dev[other].key;
		apply(h, taker, false);
		assert_true(iterate(h));
		harness_free(h);
	}
}

/* Two events for one device in one iteration: its peer is written once, as it is now. */
static void test_same_device_twice(void **state)
{
	struct harness *h = harness_new(800);
	struct model *a;

	(void)state;
	a = dev_new(h, 0, BIT(P_NET), 0, false);
	apply(h, 0, false);
	assert_false(iterate(h));

	a->adv = BIT(P_NET) | BIT(P_WIDE);
	apply(h, 0, false);
	a->ep = 2;
	apply(h, 0, false);
	assert_false(iterate(h));
	assert_held_by(h, P_NET, 0);
	assert_held_by(h, P_WIDE, 0);
	harness_free(h);
}

/* A key changing twice in one iteration, through one another device has: that device's
 * peer stays. */
static void test_key_through_shared(void **state)
{
	struct harness *h = harness_new(900);
	struct model *a;

	(void)state;
	a = dev_new(h, 0, BIT(P_NET), 0, false);
	apply(h, 0, false);
	dev_new(h, 1, BIT(P_WIDE), 0, false);
	apply(h, 1, false);
	assert_false(iterate(h));

	a->key = h->dev[1].key;
	apply(h, 0, false);
	fresh_key(h, &a->key);
	apply(h, 0, false);
	iterate(h);
	assert_held_by(h, P_NET, 0);
	assert_held_by(h, P_WIDE, 1);
	harness_free(h);
}

/* A full pass adds a peer that reported no endpoint (here under a new key); when the
 * endpoint it had before comes back, deltas configure it. */
static void test_endpoint_after_full_pass(void **state)
{
	struct harness *h = harness_new(1000);
	struct model *a;

	(void)state;
	a = dev_new(h, 0, BIT(P_NET), 0, false);
	apply(h, 0, false);
	assert_false(iterate(h));

	fresh_key(h, &a->key);
	a->ep = 0;
	apply(h, 0, false);
	nexd_dplane_changed(&h->d.nexd); /* e.g. the tail of a listing */
	assert_true(iterate(h));

	a->ep = 1;
	apply(h, 0, false);
	assert_false(iterate(h));
	harness_free(h);
}

static int teardown(void **state)
{
	(void)state;
	for (size_t k = 0; k < 4; k++)
		if (live[k])
			harness_free(live[k]);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_move, teardown),
		cmocka_unit_test_teardown(test_holder_deleted, teardown),
		cmocka_unit_test_teardown(test_unclaimed, teardown),
		cmocka_unit_test_teardown(test_relay_falls_back, teardown),
		cmocka_unit_test_teardown(test_invalid_then_valid, teardown),
		cmocka_unit_test_teardown(test_key_change, teardown),
		cmocka_unit_test_teardown(test_shared_key, teardown),
		cmocka_unit_test_teardown(test_same_device_twice, teardown),
		cmocka_unit_test_teardown(test_key_through_shared, teardown),
		cmocka_unit_test_teardown(test_endpoint_after_full_pass, teardown),
		cmocka_unit_test_teardown(test_random_deltas, teardown),
		cmocka_unit_test_teardown(test_random_with_fallbacks, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
