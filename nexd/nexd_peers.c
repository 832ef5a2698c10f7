/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The peer table: every other device of the VPC as the controller last described it, keyed by
 * device id (an array kept sorted, so a listing of thousands costs a binary search per event
 * and the dataplane diff walks it in order).  A listing from revision 0 marks every entry
 * stale first and sweeps the ones it did not mention at its tail.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "nexd/nexd.h"
#include "nexd/nexd_probe.h"

struct nexd_peers {
	struct nexd_peer **v;
	size_t n, cap;
};

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
	free(t);
}

/* The index of id, or where it would go (*found false). */
static size_t lookup(const struct nexd_peers *t, const char *id, bool *found)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->v[mid]->dev.id, id);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

struct nexd_peer *nexd_peers_upsert(struct nexd_peers *t, struct nexd_device_info *d)
{
	bool found;
	size_t i = lookup(t, d->id, &found);
	struct nexd_peer *p;

	if (found) {
		p = t->v[i];
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
	p->dev = *d;
	memset(d, 0, sizeof(*d));
	nexd_probe_addr(&p->dev.public_key, &p->probe_addr);
	p->stale = false;
	return p;
}

void nexd_peers_remove(struct nexd_peers *t, const char *device_id)
{
	bool found;
	size_t i = lookup(t, device_id, &found);

	if (!found)
		return;
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

/* Linear: used by show commands and for the rare key lookups, not per event. */
struct nexd_peer *nexd_peers_find_key(struct nexd_peers *t, const struct nx_wgkey *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (nx_wgkey_eq(&t->v[i]->dev.public_key, key))
			return t->v[i];
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
			peer_free(t->v[i]);
			swept++;
		} else {
			t->v[kept++] = t->v[i];
		}
	}
	t->n = kept;
	return swept;
}
