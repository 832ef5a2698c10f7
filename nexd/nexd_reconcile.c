/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reconciliation: what the peer table asks for (WireGuard peers with their allowed IPs and
 * endpoints, one kernel route per allowed IP) is diffed against what WireGuard and the kernel
 * actually hold, and only the difference is written.  Someone else's changes to nexd's objects
 * are repaired on the next pass; objects that are not nexd's (other interfaces, other route
 * protocols) are never looked at.  Until the controller's first complete listing has arrived
 * nothing is removed: after a restart the adopted peers and routes keep forwarding.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "nexd/nexd.h"
#include "nexd/nexd_probe.h"
#include "nexd/nexd_reconcile.h"

/* One allowed IP some peer claims. */
struct claim {
	struct nx_prefix prefix;
	struct nexd_peer *peer; /* the device that claims it */
	struct nexd_peer *via;	/* whose WireGuard peer carries it: the device or its relay */
	bool tunnel;		/* the peer's own tunnel address, not an advertised prefix */
	bool probe;		/* its probe address: never moved to a relay */
};

bool nexd_claim_beats(const struct nexd_peer *a, bool a_tunnel, const struct nexd_peer *b,
		      bool b_tunnel)
{
	/* A device's own tunnel address is never taken by another's advertisement. */
	if (a_tunnel != b_tunnel)
		return a_tunnel;
	/* Else the newest claim: it is the one that keeps the prefix. */
	if (a->dev.revision != b->dev.revision)
		return a->dev.revision > b->dev.revision;
	return strcmp(a->dev.id, b->dev.id) < 0;
}

static int claim_cmp(const void *a, const void *b)
{
	const struct claim *x = a, *y = b;
	int c = nx_prefix_cmp(&x->prefix, &y->prefix);

	if (c)
		return c;
	if (x->peer == y->peer && x->tunnel == y->tunnel)
		return 0;
	return nexd_claim_beats(x->peer, x->tunnel, y->peer, y->tunnel) ? -1 : 1;
}

bool nexd_prefix_is_ours(const struct nexd *nexd, const struct nx_prefix *p)
{
	const struct nx_addr *own[] = { &nexd->id.tunnel_ipv4, &nexd->id.tunnel_ipv6 };

	for (size_t i = 0; i < 2; i++)
		if (own[i]->family && nx_prefix_contains_addr(p, own[i]))
			return true;
	for (size_t i = 0; i < nexd->cfg.n_advertise; i++)
		if (nx_prefix_cmp(&nexd->cfg.advertise[i], p) == 0)
			return true;
	return false;
}

static int add_claim(struct claim **v, size_t *n, size_t *cap, const struct nx_prefix *p,
		     struct nexd_peer *peer, bool tunnel, bool probe)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct claim *nv = realloc(*v, c * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[*n].prefix = *p;
	nx_prefix_normalize(&(*v)[*n].prefix);
	(*v)[*n].tunnel = tunnel;
	(*v)[*n].probe = probe;
	(*v)[*n].via = peer;
	(*v)[(*n)++].peer = peer;
	return 0;
}

bool nexd_peer_holds(const struct nexd_peer *p, const struct nx_prefix *prefix)
{
	if (!p->dev.has_active) /* a controller that does not elect: every claim stands */
		return true;
	for (size_t i = 0; i < p->dev.n_active; i++)
		if (nx_prefix_cmp(&p->dev.active[i], prefix) == 0)
			return true;
	return false;
}

/* Every prefix some valid peer claims, each kept by exactly one peer, sorted by prefix. */
static int collect_claims(struct nexd *nexd, struct claim **out, size_t *n_out)
{
	struct claim *v = NULL;
	size_t n = 0, cap = 0, kept = 0;

	for (size_t i = 0; i < nexd_peers_count(nexd->peers); i++) {
		struct nexd_peer *p = nexd_peers_at(nexd->peers, i);
		struct nx_prefix host;

		if (!p->valid || p->shadowed)
			continue;
		/* A peer listing this device's own address gets no route to it. */
		if (p->dev.tunnel_ipv4.family &&
		    nx_prefix_from_addr(&host, &p->dev.tunnel_ipv4) == 0 &&
		    !nexd_prefix_is_ours(nexd, &host) &&
		    add_claim(&v, &n, &cap, &host, p, true, false) < 0)
			goto oom;
		if (p->dev.tunnel_ipv6.family &&
		    nx_prefix_from_addr(&host, &p->dev.tunnel_ipv6) == 0 &&
		    !nexd_prefix_is_ours(nexd, &host) &&
		    add_claim(&v, &n, &cap, &host, p, true, false) < 0)
			goto oom;
		/* The probe address, always on the device's own peer: the direct path stays
		 * testable while its traffic goes through a relay. */
		host.addr = p->probe_addr;
		host.len = 128;
		if (add_claim(&v, &n, &cap, &host, p, true, true) < 0)
			goto oom;
		for (size_t j = 0; j < p->dev.n_advertise; j++)
			if (nexd_peer_holds(p, &p->dev.advertise[j]) &&
			    !nexd_prefix_is_ours(nexd, &p->dev.advertise[j]) &&
			    add_claim(&v, &n, &cap, &p->dev.advertise[j], p, false, false) < 0)
				goto oom;
	}
	if (n)
		qsort(v, n, sizeof(v[0]), claim_cmp);
	for (size_t i = 0; i < n; i++)
		if (kept == 0 || nx_prefix_cmp(&v[kept - 1].prefix, &v[i].prefix) != 0)
			v[kept++] = v[i];
	*out = v;
	*n_out = kept;
	return 0;
oom:
	free(v);
	return -ENOMEM;
}

static bool on_local_net(const struct nexd *nexd, const struct nx_addr *a)
{
	for (size_t i = 0; i < nexd->n_local_endpoints; i++)
		if (nx_prefix_contains_addr(&nexd->local_nets[i], a))
			return true;
	return false;
}

/* The endpoint to configure for a peer and the path it stands for: a local address on a
 * subnet this host shares, else the reflexive one, else any address it reported. */
const struct nexd_device_endpoint *nexd_peer_endpoint(const struct nexd *nexd, struct nexd_peer *p)
{
	const struct nexd_device_endpoint *reflexive = NULL, *any = NULL;

	for (size_t i = 0; i < p->dev.n_endpoints; i++) {
		const struct nexd_device_endpoint *e = &p->dev.endpoints[i];

		if (!e->addr.family || !e->port)
			continue;
		if (strcmp(e->source, "local") == 0 && on_local_net(nexd, &e->addr)) {
			p->path = p->dev.relay ? "relay" : "direct-local";
			return e;
		}
		if (!reflexive && strncmp(e->source, "stun:", 5) == 0)
			reflexive = e;
		if (!any)
			any = e;
	}
	if (reflexive) {
		p->path = p->dev.relay ? "relay" : "reflexive";
		return reflexive;
	}
	p->path = any ? (p->dev.relay ? "relay" : "direct-local") : "none";
	return any;
}

static int wg_peer_cmp(const void *a, const void *b)
{
	return memcmp(((const struct nexd_wg_peer *)a)->public_key.b,
		      ((const struct nexd_wg_peer *)b)->public_key.b, NX_WG_KEY_LEN);
}

static bool same_prefixes(struct nx_prefix *a, size_t na, struct nx_prefix *b, size_t nb)
{
	if (na != nb)
		return false;
	if (na == 0)
		return true;
	qsort(a, na, sizeof(a[0]), nx_prefix_cmp_qsort);
	qsort(b, nb, sizeof(b[0]), nx_prefix_cmp_qsort);
	for (size_t i = 0; i < na; i++)
		if (nx_prefix_cmp(&a[i], &b[i]) != 0)
			return false;
	return true;
}

/* The claims a peer carries (its range of the claims ordered by carrier), as allowed IPs. */
static int peer_allowed_ips(struct nexd_wg_peer *wp, struct claim *const *carried, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (nexd_wg_peer_add_allowed_ip(wp, &carried[i]->prefix) < 0)
			return -ENOMEM;
	return 0;
}

/* Adds to `change` what it takes for WireGuard to hold the peer as desired. */
static int diff_peer(struct nexd *nexd, struct nexd_peer *p, const struct nexd_wg_peer *actual,
		     struct claim *const *carried, size_t n_carried, struct nexd_wg_device *change)
{
	const struct nexd_device_endpoint *ep = nexd_peer_endpoint(nexd, p);
	struct nexd_wg_peer want = { .public_key = p->dev.public_key }, *wp;
	bool ips_differ, ep_differs, ka_differs;

	if (p->via_relay)
		p->path = "via-relay";
	if (!actual || !actual->endpoint.family) { /* nothing configured stands */
		memset(&p->set_endpoint, 0, sizeof(p->set_endpoint));
		p->set_endpoint_port = 0;
	}

	if (peer_allowed_ips(&want, carried, n_carried) < 0)
		return -ENOMEM;
	ips_differ = !actual || !same_prefixes(want.allowed_ips, want.n_allowed_ips,
					       actual->allowed_ips, actual->n_allowed_ips);
	/* Set the endpoint when our choice changed or WireGuard has none; otherwise leave it,
	 * so WireGuard's own roaming to where the peer really is stays in effect. */
	ep_differs = ep &&
		     (!actual || !actual->endpoint.family ||
		      !nx_addr_eq(&ep->addr, &p->set_endpoint) || ep->port != p->set_endpoint_port);
	ka_differs = !actual || actual->keepalive_s != NEXD_PERSISTENT_KEEPALIVE_S;
	if (actual) {
		p->in_dataplane = true;
		p->endpoint = actual->endpoint;
		p->endpoint_port = actual->endpoint_port;
		p->last_handshake_s = actual->last_handshake_s;
		p->rx_bytes = actual->rx_bytes;
		p->tx_bytes = actual->tx_bytes;
	}
	if (!ips_differ && !ep_differs && !ka_differs) {
		free(want.allowed_ips);
		return 0;
	}
	wp = nexd_wg_device_add_peer(change);
	if (!wp) {
		free(want.allowed_ips);
		return -ENOMEM;
	}
	*wp = want;
	wp->keepalive_s = NEXD_PERSISTENT_KEEPALIVE_S;
	if (ips_differ) {
		wp->flags |= NEXD_WG_PEER_REPLACE_ALLOWED_IPS;
	} else {
		free(wp->allowed_ips);
		wp->allowed_ips = NULL;
		wp->n_allowed_ips = 0;
	}
	if (ep_differs) {
		wp->endpoint = ep->addr;
		wp->endpoint_port = ep->port;
		p->set_endpoint = ep->addr;
		p->set_endpoint_port = ep->port;
	}
	nx_debug(&dbg_nexd_dataplane, "peer %s (%s): %s%s%s", p->dev.id, p->dev.hostname,
		 actual ? "update" : "add", ips_differ ? " allowed-ips" : "",
		 ep_differs ? " endpoint" : "");
	return 0;
}

static int carrier_cmp(const void *a, const void *b)
{
	const struct claim *x = *(struct claim *const *)a, *y = *(struct claim *const *)b;

	return strcmp(x->via->dev.id, y->via->dev.id);
}

static int reconcile_peers(struct nexd *nexd, struct claim *claims, size_t n_claims,
			   struct nx_err *err)
{
	struct nexd_wg_device actual, change = { 0 };
	size_t n_peers = nexd_peers_count(nexd->peers), k = 0;
	/* The claims ordered by the device that carries them, as the peer table is: one walk
	 * hands each peer its own. */
	struct claim **carried = calloc(n_claims ? n_claims : 1, sizeof(*carried));
	int rc;

	if (!carried)
		return nx_err_set(err, ENOMEM, "out of memory reconciling WireGuard peers");
	for (size_t i = 0; i < n_claims; i++)
		carried[i] = &claims[i];
	if (n_claims)
		qsort(carried, n_claims, sizeof(carried[0]), carrier_cmp);
	rc = nexd_wg_get(&nexd->wg, &actual, err);
	if (rc < 0) {
		free(carried);
		return rc;
	}
	if (actual.n_peers)
		qsort(actual.peers, actual.n_peers, sizeof(actual.peers[0]), wg_peer_cmp);
	for (size_t i = 0; i < n_peers; i++) {
		struct nexd_peer *p = nexd_peers_at(nexd->peers, i);
		struct nexd_wg_peer key = { .public_key = p->dev.public_key }, *a = NULL;
		size_t first;

		p->in_dataplane = false;
		while (k < n_claims && strcmp(carried[k]->via->dev.id, p->dev.id) < 0)
			k++;
		for (first = k; k < n_claims && carried[k]->via == p;)
			k++;
		if (!p->valid || p->shadowed)
			continue;
		if (actual.n_peers)
			a = bsearch(&key, actual.peers, actual.n_peers, sizeof(key), wg_peer_cmp);
		if (a)
			a->flags = 1; /* wanted: not swept below */
		rc = diff_peer(nexd, p, a, &carried[first], k - first, &change);
		if (rc < 0)
			goto out;
	}
	for (size_t i = 0; nexd->synced && i < actual.n_peers; i++) {
		struct nexd_wg_peer *wp;

		if (actual.peers[i].flags)
			continue;
		wp = nexd_wg_device_add_peer(&change);
		if (!wp) {
			rc = -ENOMEM;
			goto out;
		}
		wp->public_key = actual.peers[i].public_key;
		wp->flags = NEXD_WG_PEER_REMOVE;
		nx_debug(&dbg_nexd_dataplane, "peer removed: no longer listed by the controller");
	}
	rc = change.n_peers ? nexd_wg_set(&nexd->wg, &change, err) : 0;
	/* Written: every wanted peer is in WireGuard now (changes may follow as deltas). */
	for (size_t i = 0; rc == 0 && i < n_peers; i++) {
		struct nexd_peer *p = nexd_peers_at(nexd->peers, i);

		p->in_dataplane = p->valid && !p->shadowed;
	}
out:
	if (rc == -ENOMEM)
		nx_err_set(err, ENOMEM, "out of memory reconciling WireGuard peers");
	nexd_wg_device_clear(&actual);
	nexd_wg_device_clear(&change);
	free(carried);
	return rc;
}

static int route_cmp(const void *a, const void *b)
{
	return nx_prefix_cmp(&((const struct nexd_route *)a)->prefix,
			     &((const struct nexd_route *)b)->prefix);
}

const struct nexd_route *nexd_route_find(const struct nexd *nexd, const struct nx_prefix *p)
{
	struct nexd_route key = { .prefix = *p };

	if (!nexd->n_routes)
		return NULL;
	return bsearch(&key, nexd->routes, nexd->n_routes, sizeof(key), route_cmp);
}

/* The kernel's routes through the interface: one per claimed prefix. */
static int reconcile_routes(struct nexd *nexd, const struct claim *claims, size_t n_claims,
			    struct nx_err *err)
{
	struct nexd_route *routes = calloc(n_claims ? n_claims : 1, sizeof(*routes));
	struct nexd_route_op *ops = NULL;
	struct nx_prefix *have = NULL;
	size_t n_have = 0, n_ops = 0, i, j;
	uint64_t now = nx_now_ns_wall();
	int rc;

	if (!routes)
		return nx_err_set(err, ENOMEM, "out of memory reconciling routes");
	/* Without a tunnel (null backend) the kernel holds nothing: the table alone is kept. */
	rc = nexd_dplane_null(nexd)
		     ? 0
		     : nexd_rtnl_route_dump(nexd->rtnl, nexd->ifindex, &have, &n_have, err);
	if (rc < 0)
		goto out;
	for (i = 0; i < n_have; i++)
		nx_prefix_normalize(&have[i]);
	if (n_have)
		qsort(have, n_have, sizeof(have[0]), nx_prefix_cmp_qsort);
	ops = calloc(n_claims + n_have + 1, sizeof(*ops));
	if (!ops) {
		rc = nx_err_set(err, ENOMEM, "out of memory reconciling routes");
		goto out;
	}
	/* Both lists sorted: one merge finds what to add and what to sweep. */
	for (i = 0, j = 0; i < n_claims || j < n_have;) {
		int c = i == n_claims ? 1
			: j == n_have ? -1
				      : nx_prefix_cmp(&claims[i].prefix, &have[j]);

		if (c > 0) {
			if (nexd->synced) {
				ops[n_ops].prefix = have[j];
				ops[n_ops++].del = true;
			}
			j++;
			continue;
		}
		if (c < 0)
			ops[n_ops++].prefix = claims[i].prefix;
		else
			j++;
		i++;
	}
	if (n_ops && !nexd_dplane_null(nexd))
		rc = nexd_rtnl_route_batch(nexd->rtnl, nexd->ifindex, ops, n_ops, err);
	for (size_t k = 0; k < n_ops; k++)
		if (ops[k].error)
			nx_warn("route %s %s failed: %s", ops[k].del ? "delete" : "add",
				nx_prefix_format(&ops[k].prefix, (char[NX_PREFIX_STRLEN]){ 0 },
						 NX_PREFIX_STRLEN),
				strerror(-ops[k].error));
	/* The table show commands read; a route keeps its time while its peer keeps it. */
	for (i = 0; i < n_claims; i++) {
		const struct nexd_route *old = nexd_route_find(nexd, &claims[i].prefix);

		routes[i].prefix = claims[i].prefix;
		routes[i].peer = claims[i].via->dev.public_key;
		routes[i].installed = true;
		routes[i].installed_at_ns = old && nx_wgkey_eq(&old->peer, &routes[i].peer)
						    ? old->installed_at_ns
						    : now;
	}
	for (size_t k = 0; k < n_ops; k++) {
		struct nexd_route *r;

		if (ops[k].del || !ops[k].error)
			continue;
		r = bsearch(&(struct nexd_route){ .prefix = ops[k].prefix }, routes, n_claims,
			    sizeof(*r), route_cmp);
		if (r)
			r->installed = false;
	}
	free(nexd->routes);
	nexd->routes = routes;
	nexd->n_routes = n_claims;
	routes = NULL;
	rc = rc < 0 ? rc : 0;
out:
	free(routes);
	free(ops);
	free(have);
	return rc;
}

static int reconcile_addresses(struct nexd *nexd, struct nx_err *err)
{
	struct nx_prefix addrs[3];
	size_t n = 0;

	if (nexd->id.tunnel_ipv4.family &&
	    nx_prefix_from_addr(&addrs[n], &nexd->id.tunnel_ipv4) == 0)
		n++;
	if (nexd->id.tunnel_ipv6.family &&
	    nx_prefix_from_addr(&addrs[n], &nexd->id.tunnel_ipv6) == 0)
		n++;
	nexd_probe_addr(&nexd->id.public_key, &addrs[n].addr);
	addrs[n++].len = 128;
	return nexd_rtnl_addr_sync(nexd->rtnl, nexd->ifindex, addrs, n, err);
}

static int peer_key_cmp(const void *a, const void *b)
{
	const struct nexd_peer *x = *(struct nexd_peer *const *)a;
	const struct nexd_peer *y = *(struct nexd_peer *const *)b;
	int c = memcmp(x->dev.public_key.b, y->dev.public_key.b, NX_WG_KEY_LEN);

	if (c)
		return c;
	if (x->dev.revision != y->dev.revision)
		return x->dev.revision > y->dev.revision ? -1 : 1;
	return strcmp(x->dev.id, y->dev.id);
}

/* One WireGuard peer per key: when devices share a public key (which a sound controller never
 * allows) only the newest is programmed; the others are shadowed. */
static int mark_shadowed(struct nexd *nexd)
{
	size_t n = nexd_peers_count(nexd->peers), m = 0;
	struct nexd_peer **v = calloc(n ? n : 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct nexd_peer *p = nexd_peers_at(nexd->peers, i);

		p->shadowed = false;
		if (p->valid)
			v[m++] = p;
	}
	if (m)
		qsort(v, m, sizeof(v[0]), peer_key_cmp);
	/* Sorted newest first within a key: every later one of the same key is shadowed. */
	for (size_t i = 1; i < m; i++) {
		if (!nx_wgkey_eq(&v[i]->dev.public_key, &v[i - 1]->dev.public_key))
			continue;
		v[i]->shadowed = true;
		nx_debug(&dbg_nexd_peers, "peer %s shares its key with a newer device: ignored",
			 v[i]->dev.id);
	}
	free(v);
	return 0;
}

/* Hands the heap's free pages back to the kernel.  A listing of thousands of devices, a show
 * command's JSON for every peer or a pass's temporary arrays leave megabytes of free chunks
 * below live ones, where free() cannot shrink the heap: they would stay resident for good
 * (3 MB of nexd's 6 MB with 1,000 peers).  Once per pass, a few microseconds. */
static void release_free_memory(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

/* --- path selection ------------------------------------------------------------------------ */

/* How long a path that has never answered is given before its traffic goes via a relay, and
 * how long a direct path must answer again before traffic comes back to it (hysteresis). */
#define PROVE_TIMEOUT_MS 1500
#define RETURN_AFTER_MS	 2000

int nexd_probes_update(struct nexd *nexd)
{
	size_t n = nexd_peers_count(nexd->peers), m = 0;
	struct nx_wgkey *keys = calloc(n ? n : 1, sizeof(*keys));
	int rc;

	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct nexd_peer *p = nexd_peers_at(nexd->peers, i);

		if (p->valid && !p->shadowed)
			keys[m++] = p->dev.public_key;
	}
	rc = nexd_probe_set_peers(nexd, keys, m);
	free(keys);
	return rc;
}

static bool relay_answers(struct nexd *nexd, const struct nexd_peer *relay)
{
	struct nexd_probe_result r;

	return relay && relay->valid && !relay->shadowed && relay->dev.relay &&
	       nexd_probe_get(nexd, &relay->dev.public_key, &r) && r.ok;
}

/* The relay to go through: the answering relay with the lowest public key — a choice both ends
 * of a pair make alike, as they must (WireGuard drops a packet that arrives from a peer other
 * than the one its source address is routed to), and that moves only when that relay stops
 * or starts answering.  Not sticky: a choice made while one relay was not yet proven would
 * otherwise keep the two ends apart. */
static struct nexd_peer *choose_relay(struct nexd *nexd)
{
	struct nexd_peer *best = NULL;

	for (size_t i = 0; i < nexd_peers_count(nexd->peers); i++) {
		struct nexd_peer *r = nexd_peers_at(nexd->peers, i);

		if (relay_answers(nexd, r) &&
		    (!best ||
		     memcmp(r->dev.public_key.b, best->dev.public_key.b, NX_WG_KEY_LEN) < 0))
			best = r;
	}
	return best;
}

/* Per peer: direct while its direct path answers (or is still being proven); through a
 * relay once it failed, or never answered within PROVE_TIMEOUT_MS; back to direct when the
 * direct path has answered for RETURN_AFTER_MS and the peer says (in its probes) that it is
 * ready too, so that both ends switch together.  Relays, and this device when it is one,
 * always go direct.  Sets nexd->path_pending while a decision waits on time. */
static void choose_paths(struct nexd *nexd, struct claim *claims, size_t n_claims)
{
	struct nexd_peer *answering = nexd->cfg.relay ? NULL : choose_relay(nexd);
	uint64_t now = nx_now_ms();

	nexd->path_pending = false;
	nexd->full_only = false;
	for (size_t i = 0; i < nexd_peers_count(nexd->peers); i++) {
		struct nexd_peer *p = nexd_peers_at(nexd->peers, i);
		struct nexd_probe_result r = { 0 };
		bool known = nexd_probe_get(nexd, &p->dev.public_key, &r);
		bool direct_failed =
			known && (r.ever ? !r.ok : now - r.probing_since_ms >= PROVE_TIMEOUT_MS);
		bool ready = r.ok && now - r.ok_since_ms >= RETURN_AFTER_MS;
		struct nexd_peer *relay = NULL;

		if (p->valid && !p->shadowed && !p->dev.relay)
			relay = answering;
		if (!relay) {
			p->via_relay = false;
		} else if (!p->via_relay && direct_failed) {
			p->via_relay = true;
			nx_notice("path: %s (%s) via relay %s: no direct path", p->dev.id,
				  p->dev.hostname, relay->dev.hostname);
		} else if (p->via_relay && ready && r.peer_ready) {
			p->via_relay = false;
			nx_notice("path: %s (%s) direct again", p->dev.id, p->dev.hostname);
		} else if (p->via_relay && !nx_wgkey_eq(&p->relay_key, &relay->dev.public_key)) {
			nx_notice("path: %s (%s) moves to relay %s", p->dev.id, p->dev.hostname,
				  relay->dev.hostname);
		}
		if (p->via_relay)
			p->relay_key = relay->dev.public_key;
		nexd->full_only |= p->valid && (p->dev.relay || p->via_relay || p->shadowed);
		/* Direct, or about to be: say so in the probes. */
		nexd_probe_set_ready(nexd, &p->dev.public_key, !p->via_relay || ready);
		if ((p->via_relay && r.ok) || (relay && known && !r.ever && !direct_failed))
			nexd->path_pending = true;
	}
	/* Every peer that goes through a relay goes through this one. */
	for (size_t i = 0; i < n_claims; i++)
		claims[i].via =
			claims[i].peer->via_relay && !claims[i].probe ? answering : claims[i].peer;
}

int nexd_reconcile(struct nexd *nexd, struct nx_err *err)
{
	struct claim *claims = NULL;
	size_t n_claims = 0;
	int rc, rc2;

	if (!nexd->dplane_up)
		return 0;
	if (!nexd_dplane_null(nexd)) {
		rc = nexd_rtnl_link_index(nexd->rtnl, nexd->cfg.ifname);
		if (rc <= 0)
			return nx_err_set(err, ENODEV, "interface %s is gone", nexd->cfg.ifname);
		nexd->ifindex = rc;
	}
	if (mark_shadowed(nexd) < 0 || nexd_probes_update(nexd) < 0 ||
	    collect_claims(nexd, &claims, &n_claims) < 0)
		return nx_err_set(err, ENOMEM, "out of memory reconciling");
	choose_paths(nexd, claims, n_claims);
	if (!nexd_dplane_null(nexd) && nexd_relay_sync(nexd, err) < 0)
		nx_warn("dataplane: %s", err->msg);
	/* A subnet router or relay forwards for its peers; forwarding is never turned off
	 * again, as other software on the host may rely on it by then. */
	if ((nexd->cfg.n_advertise || nexd->cfg.relay) && !nexd->forwarding &&
	    !nexd_dplane_null(nexd)) {
		rc = nexd_rtnl_enable_forwarding(err);
		if (rc < 0)
			nx_warn("dataplane: %s", err->msg);
		nexd->forwarding = rc == 0;
	}
	rc = nexd_dplane_null(nexd) ? 0 : reconcile_addresses(nexd, err);
	rc2 = reconcile_peers(nexd, claims, n_claims, err);
	rc = rc < 0 ? rc : rc2;
	/* Routes even when WireGuard failed: they only point at the interface. */
	rc2 = reconcile_routes(nexd, claims, n_claims, err);
	rc = rc < 0 ? rc : rc2;
	free(claims);
	release_free_memory();
	return rc;
}
