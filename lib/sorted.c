/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include "lib/sorted.h"

size_t nx_sorted_find(const void *key, const void *base, size_t n, size_t size,
		      int (*cmp)(const void *key, const void *elem), bool *found)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp(key, (const char *)base + mid * size);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}
