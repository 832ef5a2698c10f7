/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The null WireGuard backend, for benchmarks and tests only: it keeps the device in memory
 * and forwards nothing, so that a thousand nexd processes can run on one machine and the
 * control path (watch, reconciliation, route bookkeeping with installed_at) be measured
 * without a tunnel each.  With it nexd creates no interface and writes no kernel routes.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sorted.h"
#include "nexd/nexd_wg.h"

static int copy_peer(struct nexd_wg_device *dst, const struct nexd_wg_peer *src)
{
	struct nexd_wg_peer *p = nexd_wg_device_add_peer(dst);

	if (!p)
		return -ENOMEM;
	*p = *src;
	p->allowed_ips = NULL;
	p->n_allowed_ips = 0;
	p->flags = 0;
	for (size_t i = 0; i < src->n_allowed_ips; i++)
		if (nexd_wg_peer_add_allowed_ip(p, &src->allowed_ips[i]) < 0)
			return -ENOMEM;
	return 0;
}

/* Who holds an allowed IP. */
struct owner {
	struct nx_prefix prefix;
	struct nx_wgkey key;
	bool used;
};

/* The device, its peers sorted by key, and who holds each allowed IP (a hash table: open
 * addressing, linear probing, at most half full), so that a change costs a binary search and
 * a few probes however many peers there are: the backend must not be what a benchmark
 * measures. */
struct null_dev {
	struct nexd_wg_device dev;
	struct owner *owners;
	size_t n_owners, n_slots;
};

static int null_open(struct nexd_wg *wg, struct nx_err *err)
{
	wg->priv = calloc(1, sizeof(struct null_dev));
	return wg->priv ? 0 : nx_err_set(err, ENOMEM, "out of memory");
}

static int null_get(struct nexd_wg *wg, struct nexd_wg_device *out, struct nx_err *err)
{
	const struct nexd_wg_device *dev = &((struct null_dev *)wg->priv)->dev;

	out->private_key = dev->private_key;
	out->has_private_key = dev->has_private_key;
	out->listen_port = dev->listen_port;
	for (size_t i = 0; i < dev->n_peers; i++)
		if (copy_peer(out, &dev->peers[i]) < 0)
			return nx_err_set(err, ENOMEM, "out of memory");
	return 0;
}

/* Public keys: ordered by their bytes, no secret to compare in constant time. */
static int key_cmp(const struct nx_wgkey *a, const struct nx_wgkey *b)
{
	return memcmp(a->b, b->b, NX_WG_KEY_LEN);
}

static int peer_key_cmp(const void *key, const void *elem)
{
	return key_cmp(key, &((const struct nexd_wg_peer *)elem)->public_key);
}

/* The index of the peer with key, or where it would go (*found false). */
static size_t peer_at(const struct nexd_wg_device *dev, const struct nx_wgkey *key, bool *found)
{
	return nx_sorted_find(key, dev->peers, dev->n_peers, sizeof(dev->peers[0]), peer_key_cmp,
			      found);
}

/* The slot holding p, or the free slot where it would go (*found false). */
static size_t owner_at(const struct null_dev *n, const struct nx_prefix *p, bool *found)
{
	size_t mask = n->n_slots - 1, i;

	*found = false;
	if (!n->n_slots)
		return 0;
	for (i = nx_prefix_hash(p) & mask; n->owners[i].used; i = (i + 1) & mask)
		if (nx_prefix_cmp(&n->owners[i].prefix, p) == 0) {
			*found = true;
			break;
		}
	return i;
}

/* Room for one more owner. */
static int owners_reserve(struct null_dev *n)
{
	struct owner *old = n->owners;
	size_t old_slots = n->n_slots, slots = old_slots ? old_slots * 2 : 64;
	bool found;

	if ((n->n_owners + 1) * 2 <= n->n_slots)
		return 0;
	n->owners = calloc(slots, sizeof(*n->owners));
	if (!n->owners) {
		n->owners = old;
		return -ENOMEM;
	}
	n->n_slots = slots;
	for (size_t i = 0; i < old_slots; i++)
		if (old[i].used)
			n->owners[owner_at(n, &old[i].prefix, &found)] = old[i];
	free(old);
	return 0;
}

/* Whether slot h lies cyclically in (i, j]. */
static bool between(size_t h, size_t i, size_t j)
{
	return i <= j ? i < h && h <= j : i < h || h <= j;
}

/* Deletes p; the entries after it in its run move back into the gap where their own hash
 * allows, so that lookups never need a tombstone. */
static void owner_del(struct null_dev *n, const struct nx_prefix *p)
{
	size_t mask = n->n_slots - 1, i, j;
	bool found;

	i = owner_at(n, p, &found);
	if (!found)
		return;
	n->owners[i].used = false;
	n->n_owners--;
	for (j = (i + 1) & mask; n->owners[j].used; j = (j + 1) & mask) {
		if (between(nx_prefix_hash(&n->owners[j].prefix) & mask, i, j))
			continue;
		n->owners[i] = n->owners[j];
		n->owners[j].used = false;
		i = j;
	}
}

static void drop_ip(struct nexd_wg_peer *p, const struct nx_prefix *pfx)
{
	for (size_t j = 0; j < p->n_allowed_ips; j++)
		if (nx_prefix_cmp(&p->allowed_ips[j], pfx) == 0) {
			p->allowed_ips[j] = p->allowed_ips[--p->n_allowed_ips];
			return;
		}
}

/* A prefix belongs to one peer at a time, as in WireGuard: setting it moves it. */
static int give_ip(struct null_dev *n, struct nexd_wg_peer *to, const struct nx_prefix *pfx)
{
	bool found;
	size_t i = owner_at(n, pfx, &found);

	if (found) {
		size_t k;

		if (key_cmp(&n->owners[i].key, &to->public_key) == 0)
			return 0;
		k = peer_at(&n->dev, &n->owners[i].key, &found);
		if (found)
			drop_ip(&n->dev.peers[k], pfx);
		n->owners[i].key = to->public_key;
	} else {
		if (owners_reserve(n) < 0)
			return -ENOMEM;
		i = owner_at(n, pfx, &found);
		n->owners[i] =
			(struct owner){ .prefix = *pfx, .key = to->public_key, .used = true };
		n->n_owners++;
	}
	return nexd_wg_peer_add_allowed_ip(to, pfx);
}

static void clear_ips(struct null_dev *n, struct nexd_wg_peer *p)
{
	for (size_t j = 0; j < p->n_allowed_ips; j++)
		owner_del(n, &p->allowed_ips[j]);
	p->n_allowed_ips = 0;
}

static int prefix_key_cmp(const void *key, const void *elem)
{
	return nx_prefix_cmp(key, elem);
}

/* The peer's allowed IPs become ips.  Those it keeps stay where they are in the owner table:
 * taking one out and putting it back moves the rest of the table twice. */
static int replace_ips(struct null_dev *n, struct nexd_wg_peer *p, const struct nx_prefix *ips,
		       size_t n_ips)
{
	struct nx_prefix *sorted = n_ips ? malloc(n_ips * sizeof(*sorted)) : NULL;
	size_t kept;

	if (n_ips && !sorted)
		return -ENOMEM;
	if (n_ips) {
		memcpy(sorted, ips, n_ips * sizeof(*sorted));
		qsort(sorted, n_ips, sizeof(*sorted), nx_prefix_cmp_qsort);
	}
	for (size_t j = 0; j < p->n_allowed_ips;) {
		bool keep;

		nx_sorted_find(&p->allowed_ips[j], sorted, n_ips, sizeof(*sorted), prefix_key_cmp,
			       &keep);
		if (keep) {
			j++;
			continue;
		}
		owner_del(n, &p->allowed_ips[j]);
		p->allowed_ips[j] = p->allowed_ips[--p->n_allowed_ips];
	}
	free(sorted);
	/* What it keeps is its already: only the others are looked up in the owner table. */
	kept = p->n_allowed_ips;
	if (kept)
		qsort(p->allowed_ips, kept, sizeof(p->allowed_ips[0]), nx_prefix_cmp_qsort);
	for (size_t j = 0; j < n_ips; j++) {
		bool has;

		nx_sorted_find(&ips[j], p->allowed_ips, kept, sizeof(p->allowed_ips[0]),
			       prefix_key_cmp, &has);
		if (!has && give_ip(n, p, &ips[j]) < 0)
			return -ENOMEM;
	}
	return 0;
}

static void remove_peer(struct null_dev *n, size_t i)
{
	struct nexd_wg_device *dev = &n->dev;

	clear_ips(n, &dev->peers[i]);
	free(dev->peers[i].allowed_ips);
	memmove(&dev->peers[i], &dev->peers[i + 1], (--dev->n_peers - i) * sizeof(dev->peers[0]));
}

static struct nexd_wg_peer *insert_peer(struct nexd_wg_device *dev, size_t i,
					const struct nx_wgkey *key)
{
	if (!nexd_wg_device_add_peer(dev))
		return NULL;
	memmove(&dev->peers[i + 1], &dev->peers[i], (dev->n_peers - 1 - i) * sizeof(dev->peers[0]));
	memset(&dev->peers[i], 0, sizeof(dev->peers[0]));
	dev->peers[i].public_key = *key;
	return &dev->peers[i];
}

static int null_set(struct nexd_wg *wg, const struct nexd_wg_device *change, struct nx_err *err)
{
	struct null_dev *n = wg->priv;
	struct nexd_wg_device *dev = &n->dev;

	if (change->has_private_key) {
		dev->private_key = change->private_key;
		dev->has_private_key = true;
	}
	if (change->listen_port)
		dev->listen_port = change->listen_port;
	if (change->replace_peers)
		while (dev->n_peers)
			remove_peer(n, dev->n_peers - 1);
	for (size_t i = 0; i < change->n_peers; i++) {
		const struct nexd_wg_peer *c = &change->peers[i];
		bool found;
		size_t k = peer_at(dev, &c->public_key, &found);
		struct nexd_wg_peer *p = found ? &dev->peers[k] : NULL;

		if (c->flags & NEXD_WG_PEER_REMOVE) {
			if (p)
				remove_peer(n, k);
			continue;
		}
		if (!p) {
			if (c->flags & NEXD_WG_PEER_UPDATE_ONLY)
				continue;
			p = insert_peer(dev, k, &c->public_key);
			if (!p)
				return nx_err_set(err, ENOMEM, "out of memory");
		}
		if (c->endpoint.family) {
			p->endpoint = c->endpoint;
			p->endpoint_port = c->endpoint_port;
		}
		p->keepalive_s = c->keepalive_s;
		if (c->flags & NEXD_WG_PEER_REPLACE_ALLOWED_IPS) {
			if (replace_ips(n, p, c->allowed_ips, c->n_allowed_ips) < 0)
				return nx_err_set(err, ENOMEM, "out of memory");
			continue;
		}
		for (size_t j = 0; j < c->n_allowed_ips; j++)
			if (give_ip(n, p, &c->allowed_ips[j]) < 0)
				return nx_err_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

static void null_close(struct nexd_wg *wg, bool destroy)
{
	struct null_dev *n = wg->priv;

	if (n) {
		nexd_wg_device_clear(&n->dev);
		free(n->owners);
		free(n);
	}
	wg->priv = NULL;
}

const struct nexd_wg_ops nexd_wg_null_ops = {
	.name = "null",
	.open = null_open,
	.get = null_get,
	.set = null_set,
	.close = null_close,
};
