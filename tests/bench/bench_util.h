/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the benchmark programs share: the clock they time with, and sorting samples. */
#ifndef NX_BENCH_UTIL_H
#define NX_BENCH_UTIL_H

#include <time.h>

/* Seconds on the monotonic clock (the same clock in every process of the machine). */
static inline double bench_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* qsort() order of doubles. */
static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

#endif
