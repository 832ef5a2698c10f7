/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Peers' changes, written on their own.  A device event touches a handful of prefixes: the
 * ones the peer claimed before and the ones it claims now.  The events of one loop iteration
 * are gathered (a move is two events, the new holder's and the old one's: written together,
 * the prefix never lacks a route in between); on the next, each touched prefix's winner is
 * decided again over the peer table (the rule of a full pass, nexd_reconcile.h) and only
 * what moved is written: each changed peer once (its allowed IPs replaced, its endpoint if
 * our choice changed), an allowed IP added to each other peer that won a prefix (WireGuard
 * moves it from the previous holder by itself), a route added or deleted where a prefix
 * appeared or vanished.  A prefix moving between peers needs no route change: the route only
 * names the interface.  Neither WireGuard nor the kernel is read back, so an agent with a
 * thousand peers handles a move in microseconds; drift is repaired by the periodic full pass.
 *
 * Relays (whose peers carry other devices' prefixes), devices sharing a key, a key that
 * changes, and anything arriving while a full pass is due are left to the full pass.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strutil.h"
#include "nexd/nexd.h"
#include "nexd/nexd_reconcile.h"

struct prefix_set {
	struct nx_prefix *v;
	size_t n, cap;
};

struct nexd_delta {
	struct nx_defer write;
	bool full;		    /* a full pass must decide instead */
	bool peers_changed;	    /* a peer came or went: the prober's list changes */
	struct prefix_set affected; /* what the changed peers claimed before and claim now */
	struct changed {
		char id[NEXD_UUID_LEN];
		bool fresh; /* new to WireGuard: not there under this key before */
	} * changed;	    /* the devices to program whole */
	size_t n_changed, cap_changed;
	struct nx_wgkey *removed; /* the keys of the peers that went */
	size_t n_removed, cap_removed;
};

static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
	size_t c;

	if (n < *cap)
		return v;
	c = *cap ? *cap * 2 : 8;
	v = realloc(v, c * size);
	if (v)
		*cap = c;
	return v;
}

static int set_add(struct prefix_set *s, const struct nx_prefix *p)
{
	struct nx_prefix n = *p, *v;

	nx_prefix_normalize(&n);
	for (size_t i = 0; i < s->n; i++)
		if (nx_prefix_cmp(&s->v[i], &n) == 0)
			return 0;
	v = grow(s->v, &s->cap, s->n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->v = v;
	s->v[s->n++] = n;
	return 0;
}

static bool is_addr(const struct nx_prefix *p, const struct nx_addr *a)
{
	return a->family && p->addr.family == a->family &&
	       p->len == (a->family == AF_INET ? 32 : 128) && nx_addr_eq(&p->addr, a);
}

/* Whether p claims x, and whether as one of its own addresses (tunnel or probe). */
static bool claims(const struct nexd_peer *p, const struct nx_prefix *x, bool *tunnel)
{
	if (is_addr(x, &p->dev.tunnel_ipv4) || is_addr(x, &p->dev.tunnel_ipv6) ||
	    is_addr(x, &p->probe_addr)) {
		*tunnel = true;
		return true;
	}
	for (size_t i = 0; i < p->dev.n_advertise; i++)
		if (nx_prefix_cmp(&p->dev.advertise[i], x) == 0 &&
		    nexd_peer_holds(p, &p->dev.advertise[i])) {
			*tunnel = false;
			return true;
		}
	return false;
}

/* Every prefix p claims (tunnel and probe addresses, advertised prefixes it holds). */
static int add_claims(const struct nexd_peer *p, struct prefix_set *s)
{
	const struct nx_addr *own[] = { &p->dev.tunnel_ipv4, &p->dev.tunnel_ipv6, &p->probe_addr };
	struct nx_prefix host;

	for (size_t i = 0; i < 3; i++)
		if (own[i]->family && nx_prefix_from_addr(&host, own[i]) == 0 &&
		    set_add(s, &host) < 0)
			return -ENOMEM;
	for (size_t i = 0; i < p->dev.n_advertise; i++)
		if (nexd_peer_holds(p, &p->dev.advertise[i]) &&
		    set_add(s, &p->dev.advertise[i]) < 0)
			return -ENOMEM;
	return 0;
}

/* The peer whose claim of x wins, as a full pass would decide; NULL when none does. */
static struct nexd_peer *winner(struct nexd *nexd, const struct nx_prefix *x)
{
	struct nexd_peer *best = NULL, *p;
	bool best_tunnel = false;
	size_t cursor = 0;

	if (nexd_prefix_is_ours(nexd, x))
		return NULL;
	while ((p = nexd_peers_claimant(nexd->peers, x, &cursor))) {
		bool tunnel;

		if (!p->valid || p->shadowed || !claims(p, x, &tunnel))
			continue;
		if (!best || nexd_claim_beats(p, tunnel, best, best_tunnel)) {
			best = p;
			best_tunnel = tunnel;
		}
	}
	return best;
}

static void write_deferred(struct nx_defer *w, void *arg);

/* Public keys: no secret to hide by comparing in constant time, and this runs per peer. */
static bool same_key(const struct nx_wgkey *a, const struct nx_wgkey *b)
{
	return memcmp(a->b, b->b, NX_WG_KEY_LEN) == 0;
}

static struct nexd_delta *delta_get(struct nexd *nexd)
{
	if (!nexd->delta) {
		nexd->delta = calloc(1, sizeof(*nexd->delta));
		if (!nexd->delta)
			return NULL;
		nx_defer_init(nexd->daemon->loop, &nexd->delta->write, write_deferred, nexd);
	}
	return nexd->delta;
}

static void delta_reset(struct nexd_delta *d)
{
	d->full = d->peers_changed = false;
	d->affected.n = d->n_changed = d->n_removed = 0;
	nx_defer_cancel(&d->write);
}

void nexd_delta_before(struct nexd *nexd, const struct nexd_peer *old)
{
	struct nexd_delta *d = delta_get(nexd);
	struct nx_wgkey *v;

	if (!d) {
		nexd_dplane_changed(nexd);
		return;
	}
	nx_defer_schedule(&d->write);
	if (d->full || !old || !old->valid)
		return; /* nothing of it is programmed */
	/* A relayed or shadowed peer, or one no pass has programmed yet, is the full pass's. */
	if (old->shadowed || old->via_relay || old->dev.relay || !old->in_dataplane ||
	    add_claims(old, &d->affected) < 0) {
		d->full = true;
		return;
	}
	v = grow(d->removed, &d->cap_removed, d->n_removed, sizeof(*v));
	if (!v) {
		d->full = true;
		return;
	}
	/* Removed unless after() finds it under the same key. */
	d->removed = v;
	d->removed[d->n_removed++] = old->dev.public_key;
}

void nexd_delta_after(struct nexd *nexd, const struct nexd_peer *now)
{
	struct nexd_delta *d = nexd->delta;
	struct changed *v;
	bool had;

	if (!d || d->full)
		return;
	had = d->n_removed && now && same_key(&d->removed[d->n_removed - 1], &now->dev.public_key);
	if (!now || !now->valid) {
		d->peers_changed |= d->n_removed > 0;
		return;
	}
	if (had)
		d->n_removed--; /* the same peer, changed: programmed whole below */
	else
		d->peers_changed = true;
	if (add_claims(now, &d->affected) < 0) {
		d->full = true;
		return;
	}
	for (size_t i = 0; i < d->n_changed; i++)
		if (strcmp(d->changed[i].id, now->dev.id) == 0) {
			d->changed[i].fresh |= !had;
			return;
		}
	v = grow(d->changed, &d->cap_changed, d->n_changed, sizeof(*v));
	if (!v) {
		d->full = true;
		return;
	}
	d->changed = v;
	nx_strlcpy(v[d->n_changed].id, now->dev.id, sizeof(v->id));
	v[d->n_changed++].fresh = !had;
}

/* What only a full pass decides: relays anywhere (the last pass saw them, or a changed peer
 * is one), a key two peers share (or a removed one some peer still has), a pass already
 * due.  Keys are found through the claim index: no walk of every peer per write. */
static bool needs_full(struct nexd *nexd, const struct nexd_delta *d)
{
	if (d->full || nexd->full_pending || !nexd->synced || nexd->cfg.relay || nexd->full_only)
		return true;
	for (size_t j = 0; j < d->n_removed; j++) {
		const struct nexd_peer *q = nexd_peers_find_key(nexd->peers, &d->removed[j], NULL);

		if (q && q->valid)
			return true;
	}
	for (size_t j = 0; j < d->n_changed; j++) {
		const struct nexd_peer *p = nexd_peers_find(nexd->peers, d->changed[j].id), *q;

		if (!p || !p->valid)
			continue;
		if (p->dev.relay)
			return true;
		q = nexd_peers_find_key(nexd->peers, &p->dev.public_key, p);
		if (q && q->valid)
			return true;
	}
	return false;
}

static int route_cmp(const void *a, const void *b)
{
	return nx_prefix_cmp(&((const struct nexd_route *)a)->prefix,
			     &((const struct nexd_route *)b)->prefix);
}

/* Puts a route in the table show commands read (kept sorted by prefix). */
static int route_insert(struct nexd *nexd, const struct nexd_route *r)
{
	struct nexd_route *v = realloc(nexd->routes, (nexd->n_routes + 1) * sizeof(*v));
	size_t i = 0;

	if (!v)
		return -ENOMEM;
	nexd->routes = v;
	while (i < nexd->n_routes && route_cmp(&v[i], r) < 0)
		i++;
	memmove(&v[i + 1], &v[i], (nexd->n_routes - i) * sizeof(*v));
	v[i] = *r;
	nexd->n_routes++;
	return 0;
}

static void route_remove(struct nexd *nexd, const struct nexd_route *r)
{
	size_t i = (size_t)(r - nexd->routes);

	memmove(&nexd->routes[i], &nexd->routes[i + 1], (nexd->n_routes - i - 1) * sizeof(*r));
	nexd->n_routes--;
}

/* The WireGuard peer op for key in change, added when there is none yet. */
static struct nexd_wg_peer *peer_op(struct nexd_wg_device *change, const struct nx_wgkey *key)
{
	struct nexd_wg_peer *wp;

	for (size_t i = 0; i < change->n_peers; i++)
		if (same_key(&change->peers[i].public_key, key))
			return &change->peers[i];
	wp = nexd_wg_device_add_peer(change);
	if (wp) {
		wp->public_key = *key;
		wp->keepalive_s = NEXD_PERSISTENT_KEEPALIVE_S;
	}
	return wp;
}

/* What a write decided for an affected prefix. */
struct decision {
	struct nexd_peer *won; /* its holder now; NULL when none is */
	bool kept;	       /* its route already leads to won's key */
};

/* A changed peer as a whole: its allowed IPs (the touched prefixes it won: they include all
 * it claims) replaced, its endpoint when our choice differs from the one configured last
 * (else WireGuard's own roaming stands). */
static int program_peer(struct nexd *nexd, struct nexd_peer *p, bool fresh,
			const struct nexd_delta *d, const struct decision *dec,
			struct nexd_wg_device *change)
{
	const struct nexd_device_endpoint *ep = nexd_peer_endpoint(nexd, p);
	struct nexd_wg_peer *wp = peer_op(change, &p->dev.public_key);

	if (!wp)
		return -ENOMEM;
	wp->flags |= NEXD_WG_PEER_REPLACE_ALLOWED_IPS;
	for (size_t i = 0; i < d->affected.n; i++)
		if (dec[i].won == p && nexd_wg_peer_add_allowed_ip(wp, &d->affected.v[i]) < 0)
			return -ENOMEM;
	if (fresh || !p->in_dataplane) { /* whatever was configured before is gone */
		memset(&p->set_endpoint, 0, sizeof(p->set_endpoint));
		p->set_endpoint_port = 0;
	}
	if (ep && (!p->set_endpoint.family || !nx_addr_eq(&ep->addr, &p->set_endpoint) ||
		   ep->port != p->set_endpoint_port)) {
		wp->endpoint = ep->addr;
		wp->endpoint_port = ep->port;
		p->set_endpoint = ep->addr;
		p->set_endpoint_port = ep->port;
	}
	return 0;
}

static bool is_changed(const struct nexd_delta *d, const struct nexd_peer *p)
{
	for (size_t i = 0; i < d->n_changed; i++)
		if (strcmp(d->changed[i].id, p->dev.id) == 0)
			return true;
	return false;
}

/* The WireGuard side: removed peers, changed peers whole, prefixes to the peers that won
 * them.  Fills ops with the routes to add or delete. */
static int write_peers(struct nexd *nexd, struct nexd_delta *d, struct decision *dec,
		       struct nexd_route_op *ops, size_t *n_ops, struct nx_err *err)
{
	struct nexd_wg_device change = { 0 };
	int rc = -ENOMEM;

	*n_ops = 0;
	for (size_t i = 0; i < d->affected.n; i++) {
		const struct nexd_route *r = nexd_route_find(nexd, &d->affected.v[i]);
		struct nexd_peer *won = winner(nexd, &d->affected.v[i]);

		dec[i] = (struct decision){ won,
					    r && won && same_key(&r->peer, &won->dev.public_key) };
		if (won && !won->in_dataplane && !is_changed(d, won)) {
			rc = nx_err_set(err, EAGAIN, "peer %s is not programmed yet", won->dev.id);
			goto out;
		}
		if (won && !r)
			ops[(*n_ops)++] = (struct nexd_route_op){ .prefix = d->affected.v[i] };
		else if (!won && r)
			ops[(*n_ops)++] =
				(struct nexd_route_op){ .prefix = d->affected.v[i], .del = true };
	}
	for (size_t i = 0; i < d->n_removed; i++) {
		struct nexd_wg_peer *wp = peer_op(&change, &d->removed[i]);

		if (!wp)
			goto out;
		wp->flags = NEXD_WG_PEER_REMOVE;
	}
	for (size_t i = 0; i < d->n_changed; i++) {
		struct nexd_peer *p = nexd_peers_find(nexd->peers, d->changed[i].id);

		if (p && p->valid &&
		    program_peer(nexd, p, d->changed[i].fresh, d, dec, &change) < 0)
			goto out;
	}
	for (size_t i = 0; i < d->affected.n; i++) {
		struct nexd_wg_peer *wp;

		if (!dec[i].won || dec[i].kept || is_changed(d, dec[i].won))
			continue;
		wp = peer_op(&change, &dec[i].won->dev.public_key);
		if (!wp || nexd_wg_peer_add_allowed_ip(wp, &d->affected.v[i]) < 0)
			goto out;
	}
	rc = change.n_peers ? nexd_wg_set(&nexd->wg, &change, err) : 0;
	nx_debug(&dbg_nexd_dataplane, "delta: %zu prefix(es), %zu peer op(s), %zu route op(s)",
		 d->affected.n, change.n_peers, *n_ops);
out:
	if (rc == -ENOMEM)
		nx_err_set(err, ENOMEM, "out of memory");
	nexd_wg_device_clear(&change);
	return rc;
}

/* The kernel's routes, then the table show commands read: a prefix that moved keeps its
 * route and gets its new holder and time. */
static int write_routes(struct nexd *nexd, struct nexd_delta *d, const struct decision *dec,
			struct nexd_route_op *ops, size_t n_ops)
{
	struct nx_err err = { 0 };
	uint64_t t;

	if (n_ops && !nexd_dplane_null(nexd) &&
	    nexd_rtnl_route_batch(nexd->rtnl, nexd->ifindex, ops, n_ops, &err) < 0)
		nx_warn("dataplane: %s", err.msg);
	t = nx_now_ns_wall();
	for (size_t i = 0; i < d->affected.n; i++) {
		const struct nexd_route *r = nexd_route_find(nexd, &d->affected.v[i]);
		struct nexd_route nr = { .prefix = d->affected.v[i],
					 .installed_at_ns = t,
					 .installed = true };

		for (size_t k = 0; k < n_ops; k++)
			if (ops[k].error && nx_prefix_cmp(&ops[k].prefix, &nr.prefix) == 0) {
				nx_warn("route %s %s failed: %s", ops[k].del ? "delete" : "add",
					nx_prefix_format(&nr.prefix, (char[NX_PREFIX_STRLEN]){ 0 },
							 NX_PREFIX_STRLEN),
					strerror(-ops[k].error));
				nr.installed = false;
			}
		if (!dec[i].won) {
			if (r)
				route_remove(nexd, r);
			continue;
		}
		nr.peer = dec[i].won->dev.public_key;
		if (!r) {
			if (route_insert(nexd, &nr) < 0)
				return -ENOMEM;
		} else if (!same_key(&r->peer, &nr.peer) || !r->installed) {
			*(struct nexd_route *)r = nr;
		}
	}
	return 0;
}

static void write_deferred(struct nx_defer *w, void *arg)
{
	struct nexd *nexd = arg;
	struct nexd_delta *d = nexd->delta;
	size_t n = d->affected.n ? d->affected.n : 1, n_ops;
	struct decision *dec = calloc(n, sizeof(*dec));
	struct nexd_route_op *ops = calloc(n, sizeof(*ops));
	struct nx_err err = { 0 };
	int rc;

	if (!nexd->dplane_up)
		goto out;
	if (!dec || !ops || needs_full(nexd, d)) {
		nexd_dplane_changed(nexd);
		goto out;
	}
	rc = write_peers(nexd, d, dec, ops, &n_ops, &err);
	if (rc == 0)
		rc = write_routes(nexd, d, dec, ops, n_ops);
	if (rc == 0 && d->peers_changed)
		rc = nexd_probes_update(nexd);
	if (rc < 0) {
		nx_warn("dataplane: writing a change failed (%s): a full pass follows",
			rc == -ENOMEM ? "out of memory" : err.msg);
		nexd_dplane_changed(nexd);
		goto out;
	}
	for (size_t i = 0; i < d->n_changed; i++) {
		struct nexd_peer *p = nexd_peers_find(nexd->peers, d->changed[i].id);

		if (p && p->valid)
			p->in_dataplane = true;
	}
out:
	delta_reset(d);
	free(dec);
	free(ops);
}

void nexd_delta_discard(struct nexd *nexd)
{
	if (nexd->delta)
		delta_reset(nexd->delta);
}

void nexd_delta_free(struct nexd *nexd)
{
	struct nexd_delta *d = nexd->delta;

	if (!d)
		return;
	nx_defer_fini(&d->write);
	free(d->affected.v);
	free(d->changed);
	free(d->removed);
	free(d);
	nexd->delta = NULL;
}
