/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared immutable byte strings: a watch event's line is rendered once and queued by
 * reference on every stream it goes to, so a change reaching ten thousand streams costs one
 * buffer, not ten thousand copies.  The last reference frees it, from whichever thread.
 * Header-only so that the modules using it link on their own (unit tests included).
 */
#ifndef NEXSRV_SHARED_H
#define NEXSRV_SHARED_H

#include <stdlib.h>
#include <string.h>

struct nexsrv_shared {
	unsigned refs; /* atomic */
	size_t len;
	char data[]; /* len bytes, then a NUL */
};

/* A new string holding a copy of len bytes of data (one reference), or NULL. */
static inline struct nexsrv_shared *nexsrv_shared_new(const void *data, size_t len)
{
	struct nexsrv_shared *b;

	if (len > (size_t)-1 - sizeof(*b) - 1)
		return NULL;
	b = malloc(sizeof(*b) + len + 1);
	if (!b)
		return NULL;
	b->refs = 1;
	b->len = len;
	if (len)
		memcpy(b->data, data, len);
	b->data[len] = '\0';
	return b;
}

static inline struct nexsrv_shared *nexsrv_shared_ref(struct nexsrv_shared *b)
{
	__atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
	return b;
}

/* Drops a reference; NULL is a no-op. */
static inline void nexsrv_shared_unref(struct nexsrv_shared *b)
{
	if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(b);
}

#endif /* NEXSRV_SHARED_H */
