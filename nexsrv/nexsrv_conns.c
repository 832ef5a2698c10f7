/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The HTTP server's connection budget (nexsrv_conns.h): a count in all and a hash of counts
 * by client address, an entry only while its address holds a connection.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "nexsrv/nexsrv_conns.h"

#define CONNS_BUCKETS_MIN 64

struct conn_entry {
	struct conn_entry *next;
	struct nexsrv_conn_addr addr;
	unsigned n;
};

struct nexsrv_conns {
	pthread_mutex_t lock;
	unsigned max_total, max_per_addr;
	unsigned total;
	struct conn_entry **bucket;
	size_t cap, n_addrs;
};

struct nexsrv_conns *nexsrv_conns_new(unsigned max_total, unsigned max_per_addr)
{
	struct nexsrv_conns *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->bucket = calloc(CONNS_BUCKETS_MIN, sizeof(*c->bucket));
	if (!c->bucket) {
		free(c);
		return NULL;
	}
	c->cap = CONNS_BUCKETS_MIN;
	c->max_total = max_total;
	c->max_per_addr = max_per_addr;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void nexsrv_conns_free(struct nexsrv_conns *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->cap; i++) {
		for (struct conn_entry *e = c->bucket[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(c->bucket);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

bool nexsrv_conn_addr_from(const struct sockaddr *sa, socklen_t len, struct nexsrv_conn_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		/* (memcpy by offset: a sockaddr's alignment is not sockaddr_in's) */
		out->a[10] = out->a[11] = 0xff;
		memcpy(out->a + 12, (const char *)sa + offsetof(struct sockaddr_in, sin_addr), 4);
		return true;
	}
	if (sa && sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		memcpy(out->a, (const char *)sa + offsetof(struct sockaddr_in6, sin6_addr), 16);
		return true;
	}
	return false;
}

/* FNV-1a: client addresses are not chosen to collide in a table this size matters for. */
static size_t addr_bucket(const struct nexsrv_conn_addr *a, size_t cap)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < sizeof(a->a); i++)
		h = (h ^ a->a[i]) * 0x100000001b3ull;
	return (size_t)(h ^ (h >> 32)) & (cap - 1);
}

static struct conn_entry **entry_slot(struct nexsrv_conns *c, const struct nexsrv_conn_addr *a)
{
	struct conn_entry **p = &c->bucket[addr_bucket(a, c->cap)];

	while (*p && memcmp(&(*p)->addr, a, sizeof(*a)) != 0)
		p = &(*p)->next;
	return p;
}

/* Doubles the buckets when addresses outnumber them; without memory chains grow longer. */
static void conns_grow(struct nexsrv_conns *c)
{
	size_t cap = c->cap * 2;
	struct conn_entry **v = calloc(cap, sizeof(*v));

	if (!v)
		return;
	for (size_t i = 0; i < c->cap; i++) {
		for (struct conn_entry *e = c->bucket[i], *next; e; e = next) {
			size_t b = addr_bucket(&e->addr, cap);

			next = e->next;
			e->next = v[b];
			v[b] = e;
		}
	}
	free(c->bucket);
	c->bucket = v;
	c->cap = cap;
}

bool nexsrv_conns_allow(struct nexsrv_conns *c, const struct nexsrv_conn_addr *a)
{
	struct conn_entry *e;
	bool ok;

	pthread_mutex_lock(&c->lock);
	e = *entry_slot(c, a);
	ok = c->total < c->max_total && (!e || e->n < c->max_per_addr);
	pthread_mutex_unlock(&c->lock);
	return ok;
}

int nexsrv_conns_add(struct nexsrv_conns *c, const struct nexsrv_conn_addr *a)
{
	struct conn_entry **slot, *e;

	pthread_mutex_lock(&c->lock);
	slot = entry_slot(c, a);
	e = *slot;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			pthread_mutex_unlock(&c->lock);
			return -ENOMEM;
		}
		e->addr = *a;
		*slot = e;
		if (++c->n_addrs > c->cap)
			conns_grow(c);
	}
	e->n++;
	c->total++;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void nexsrv_conns_remove(struct nexsrv_conns *c, const struct nexsrv_conn_addr *a)
{
	struct conn_entry **slot, *e;

	pthread_mutex_lock(&c->lock);
	slot = entry_slot(c, a);
	e = *slot;
	if (e) {
		c->total--;
		if (--e->n == 0) {
			*slot = e->next;
			free(e);
			c->n_addrs--;
		}
	}
	pthread_mutex_unlock(&c->lock);
}

unsigned nexsrv_conns_total(struct nexsrv_conns *c)
{
	unsigned n;

	pthread_mutex_lock(&c->lock);
	n = c->total;
	pthread_mutex_unlock(&c->lock);
	return n;
}

unsigned nexsrv_conns_from(struct nexsrv_conns *c, const struct nexsrv_conn_addr *a)
{
	struct conn_entry *e;
	unsigned n;

	pthread_mutex_lock(&c->lock);
	e = *entry_slot(c, a);
	n = e ? e->n : 0;
	pthread_mutex_unlock(&c->lock);
	return n;
}
