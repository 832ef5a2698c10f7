/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The peer table: every other device of the VPC as the controller last described it, keyed by
 * device id (an array kept sorted, so a listing of thousands costs a binary search per event
 * and the dataplane diff walks it in order).  A listing from revision 0 marks every entry
 * stale first and sweeps the ones it did not mention at its tail.
 *
 * Beside it, an index of claims: every prefix a peer names (its tunnel and probe addresses,
 * each advertised prefix, held or not) to the peer, in an open-addressing hash table that
 * may hold a prefix several times, so that the peers contending for a prefix are found
 * without a walk of the whole table.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sorted.h"
#include "nexd/nexd.h"
#include "nexd/nexd_probe.h"

struct claim_slot {
	struct nx_prefix prefix;
	struct nexd_peer *peer; /* NULL: never used; GONE: removed */
};

static struct nexd_peer gone_marker;
#define GONE (&gone_marker)

struct nexd_peers {
	struct nexd_peer **v;
	size_t n, cap;
	struct claim_slot *slots; /* a power of two of them, at most half used */
	size_t n_slots, used, live;
};

/* --- the claim index ------------------------------------------------------------------------ */

/* Where a claim of p goes: the first slot never used or freed along p's probe sequence. */
static size_t free_slot(const struct claim_slot *slots, size_t n_slots, const struct nx_prefix *p)
{
	size_t i = nx_prefix_hash(p) & (n_slots - 1);

	while (slots[i].peer && slots[i].peer != GONE)
		i = (i + 1) & (n_slots - 1);
	return i;
}

/* Room for `extra` more claims without failing later. */
static int index_reserve(struct nexd_peers *t, size_t extra)
{
	struct claim_slot *slots;
	size_t n = t->n_slots ? t->n_slots : 64;

	if ((t->used + extra) * 2 <= t->n_slots)
		return 0;
	while ((t->live + extra) * 4 > n)
		n *= 2;
	slots = calloc(n, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_slots; i++)
		if (t->slots[i].peer && t->slots[i].peer != GONE)
			slots[free_slot(slots, n, &t->slots[i].prefix)] = t->slots[i];
	free(t->slots);
	t->slots = slots;
	t->n_slots = n;
	t->used = t->live;
	return 0;
}

static size_t n_claims(const struct nexd_device_info *d)
{
	return 3 + d->n_advertise;
}

/* Calls fn(t, prefix, p) for every prefix p names. */
static void each_claim(struct nexd_peers *t, struct nexd_peer *p,
		       void (*fn)(struct nexd_peers *, const struct nx_prefix *,
				  struct nexd_peer *))
{
	const struct nx_addr *own[] = { &p->dev.tunnel_ipv4, &p->dev.tunnel_ipv6, &p->probe_addr };
	struct nx_prefix x;

	for (size_t i = 0; i < 3; i++)
		if (own[i]->family && nx_prefix_from_addr(&x, own[i]) == 0)
			fn(t, &x, p);
	for (size_t i = 0; i < p->dev.n_advertise; i++) {
		x = p->dev.advertise[i];
		nx_prefix_normalize(&x);
		fn(t, &x, p);
	}
}

static void index_add(struct nexd_peers *t, const struct nx_prefix *x, struct nexd_peer *p)
{
	size_t i = free_slot(t->slots, t->n_slots, x);

	if (!t->slots[i].peer)
		t->used++;
	t->slots[i] = (struct claim_slot){ .prefix = *x, .peer = p };
	t->live++;
}

static void index_del(struct nexd_peers *t, const struct nx_prefix *x, struct nexd_peer *p)
{
	size_t i = nx_prefix_hash(x) & (t->n_slots - 1);

	for (; t->slots[i].peer; i = (i + 1) & (t->n_slots - 1))
		if (t->slots[i].peer == p && nx_prefix_cmp(&t->slots[i].prefix, x) == 0) {
			t->slots[i].peer = GONE;
			t->live--;
			return;
		}
}

struct nexd_peer *nexd_peers_claimant(const struct nexd_peers *t, const struct nx_prefix *x,
				      size_t *cursor)
{
	struct nx_prefix n = *x;
	size_t start;

	if (!t->n_slots)
		return NULL;
	nx_prefix_normalize(&n);
	start = nx_prefix_hash(&n);
	for (;; (*cursor)++) {
		const struct claim_slot *s = &t->slots[(start + *cursor) & (t->n_slots - 1)];

		if (!s->peer || *cursor >= t->n_slots)
			return NULL;
		if (s->peer != GONE && nx_prefix_cmp(&s->prefix, &n) == 0) {
			(*cursor)++;
			return s->peer;
		}
	}
}

/* --- the table ------------------------------------------------------------------------------ */

struct nexd_peers *nexd_peers_new(void)
{
	return calloc(1, sizeof(struct nexd_peers));
}

static void peer_free(struct nexd_peer *p)
{
	nexd_device_info_clear(&p->dev);
	free(p->reason);
	free(p);
}

void nexd_peers_free(struct nexd_peers *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		peer_free(t->v[i]);
	free(t->v);
	free(t->slots);
	free(t);
}

static int id_cmp(const void *id, const void *elem)
{
	return strcmp(id, (*(struct nexd_peer *const *)elem)->dev.id);
}

/* The index of id, or where it would go (*found false). */
static size_t lookup(const struct nexd_peers *t, const char *id, bool *found)
{
	return nx_sorted_find(id, t->v, t->n, sizeof(t->v[0]), id_cmp, found);
}

struct nexd_peer *nexd_peers_upsert(struct nexd_peers *t, struct nexd_device_info *d)
{
	bool found;
	size_t i = lookup(t, d->id, &found);
	struct nexd_peer *p;
	bool same_key = found && nx_wgkey_eq(&t->v[i]->dev.public_key, &d->public_key);

	if (index_reserve(t, n_claims(d)) < 0)
		return NULL;
	if (found) {
		p = t->v[i];
		each_claim(t, p, index_del);
		nexd_device_info_clear(&p->dev);
		/* Checked again by the caller for the new description. */
		free(p->reason);
		p->reason = NULL;
	} else {
		if (t->n == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 16;
			struct nexd_peer **v = realloc(t->v, cap * sizeof(*v));

			if (!v)
				return NULL;
			t->v = v;
			t->cap = cap;
		}
		p = calloc(1, sizeof(*p));
		if (!p)
			return NULL;
		memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof(t->v[0]));
		t->v[i] = p;
		t->n++;
		p->path = "none";
	}
	if (!same_key) /* a digest per key, not per event */
		nexd_probe_addr(&d->public_key, &p->probe_addr);
	p->dev = *d;
	memset(d, 0, sizeof(*d));
	each_claim(t, p, index_add);
	p->stale = false;
	return p;
}

void nexd_peers_remove(struct nexd_peers *t, const char *device_id)
{
	bool found;
	size_t i = lookup(t, device_id, &found);

	if (!found)
		return;
	each_claim(t, t->v[i], index_del);
	peer_free(t->v[i]);
	memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(t->v[0]));
	t->n--;
}

struct nexd_peer *nexd_peers_find(struct nexd_peers *t, const char *device_id)
{
	bool found;
	size_t i = lookup(t, device_id, &found);

	return found ? t->v[i] : NULL;
}

struct nexd_peer *nexd_peers_find_key(struct nexd_peers *t, const struct nx_wgkey *key,
				      const struct nexd_peer *except)
{
	struct nx_prefix probe = { .len = 128 };
	struct nexd_peer *p;
	size_t cursor = 0;

	/* Every peer claims the probe address of its key; except's is known already. */
	if (except && nx_wgkey_eq(&except->dev.public_key, key))
		probe.addr = except->probe_addr;
	else
		nexd_probe_addr(key, &probe.addr);
	while ((p = nexd_peers_claimant(t, &probe, &cursor)))
		if (p != except && nx_wgkey_eq(&p->dev.public_key, key))
			return p;
	return NULL;
}

size_t nexd_peers_count(const struct nexd_peers *t)
{
	return t->n;
}

struct nexd_peer *nexd_peers_at(struct nexd_peers *t, size_t i)
{
	return i < t->n ? t->v[i] : NULL;
}

void nexd_peers_mark_stale(struct nexd_peers *t)
{
	for (size_t i = 0; i < t->n; i++)
		t->v[i]->stale = true;
}

size_t nexd_peers_sweep_stale(struct nexd_peers *t)
{
	size_t kept = 0, swept = 0;

	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i]->stale) {
			each_claim(t, t->v[i], index_del);
			peer_free(t->v[i]);
			swept++;
		} else {
			t->v[kept++] = t->v[i];
		}
	}
	t->n = kept;
	return swept;
}
