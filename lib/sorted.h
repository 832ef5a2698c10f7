/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Sorted arrays: the binary search that also says where a missing element goes, which
 * bsearch(3) does not, so that one search serves both a lookup and an insertion.
 */
#ifndef NX_SORTED_H
#define NX_SORTED_H

#include <stdbool.h>
#include <stddef.h>

/* The index of the element of base[0..n) (sorted by cmp) that equals key, *found true; or
 * the index where key would go to keep the order, *found false.  cmp(key, element) is
 * negative, zero or positive as key sorts before, with or after the element. */
size_t nx_sorted_find(const void *key, const void *base, size_t n, size_t size,
		      int (*cmp)(const void *key, const void *elem), bool *found);

#endif /* NX_SORTED_H */
