/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A small Prometheus registry for nexsrv's GET /metrics: counters, gauges and histograms
 * with labels, rendered in the Prometheus text exposition format (version 0.0.4).
 *
 * Modules register their metric families once (at start-up) and then update series from
 * any thread: a series is one combination of label values, created on first use.  Label
 * values must come from small fixed sets (a route pattern, a status code), never from
 * request data, or the number of series explodes; past NEXSRV_METRIC_MAX_SERIES per family
 * new combinations are refused with -E2BIG.
 *
 * Collectors are callbacks that run at the start of every render to refresh gauges whose
 * value lives elsewhere; nexsrv_metrics_add_process() installs the standard process_*
 * metrics read from /proc/self.  All functions are thread-safe.
 */
#ifndef NEXSRV_METRICS_H
#define NEXSRV_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/errmsg.h"
#include "lib/strutil.h"

#define NEXSRV_METRICS_CONTENT_TYPE  "text/plain; version=0.0.4; charset=utf-8"
#define NEXSRV_METRIC_MAX_LABELS     8
#define NEXSRV_METRIC_MAX_BUCKETS    64
#define NEXSRV_METRIC_MAX_SERIES     10000
#define NEXSRV_METRIC_MAX_COLLECTORS 16

/* The usual latency buckets, in seconds (5 ms ... 10 s). */
extern const double nexsrv_metric_default_buckets[];
extern const size_t nexsrv_metric_default_buckets_count;

struct nexsrv_metrics;
struct nexsrv_metric; /* a family: name, help, type, label names */

struct nexsrv_metrics *nexsrv_metrics_new(void);
void nexsrv_metrics_free(struct nexsrv_metrics *m);

/*
 * Registers a family.  name is [a-zA-Z_:][a-zA-Z0-9_:]*; labels is a NULL-terminated list
 * of at most NEXSRV_METRIC_MAX_LABELS names [a-zA-Z_][a-zA-Z0-9_]* (not starting with "__",
 * no duplicates, no "le" for histograms), or NULL for none.  Histogram bounds are finite
 * and strictly increasing (1 to NEXSRV_METRIC_MAX_BUCKETS of them; +Inf is implicit).
 * Registering the same name again with the same type, labels and bounds returns the
 * existing family; anything else under that name fails with EEXIST.  Returns NULL with err
 * set on error.  A family without labels starts with one series at 0.
 */
struct nexsrv_metric *nexsrv_metrics_counter(struct nexsrv_metrics *m, const char *name,
					     const char *help, const char *const *labels,
					     struct nx_err *err);
struct nexsrv_metric *nexsrv_metrics_gauge(struct nexsrv_metrics *m, const char *name,
					   const char *help, const char *const *labels,
					   struct nx_err *err);
struct nexsrv_metric *nexsrv_metrics_histogram(struct nexsrv_metrics *m, const char *name,
					       const char *help, const char *const *labels,
					       const double *bounds, size_t n_bounds,
					       struct nx_err *err);

/*
 * Update the series named by values (one per label of the family, in order; NULL for a
 * family without labels).  add: counters (v >= 0) and gauges; set: gauges, and counters
 * whose total is kept elsewhere (e.g. CPU time from /proc); observe: histograms.
 * Return 0, -EINVAL (wrong type, value or label count, NULL value), -E2BIG (too many
 * series), -ENOMEM.
 */
int nexsrv_metric_add(struct nexsrv_metric *f, const char *const *values, double v);
int nexsrv_metric_set(struct nexsrv_metric *f, const char *const *values, double v);
int nexsrv_metric_observe(struct nexsrv_metric *f, const char *const *values, double v);

/* Reads a series: the value of a counter or gauge, the observation count of a histogram.
 * -ENOENT when the series does not exist yet. */
int nexsrv_metric_get(struct nexsrv_metric *f, const char *const *values, double *out);

/* fn runs at the start of every render, without locks held; it may update metrics. */
typedef void (*nexsrv_metrics_collect_fn)(struct nexsrv_metrics *m, void *arg);
int nexsrv_metrics_add_collector(struct nexsrv_metrics *m, nexsrv_metrics_collect_fn fn, void *arg);

/* Appends every family in registration order, series in creation order, to out.
 * 0, or the error of nx_sbuf_printf(). */
int nexsrv_metrics_render(struct nexsrv_metrics *m, struct nx_sbuf *out);

/*
 * Installs the process metrics, refreshed at every render: process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
 * process_max_fds, process_start_time_seconds, process_threads.
 */
int nexsrv_metrics_add_process(struct nexsrv_metrics *m, struct nx_err *err);

/* The fields of /proc/<pid>/stat the process metrics use. */
struct nexsrv_proc_stat {
	uint64_t utime; /* clock ticks */
	uint64_t stime; /* clock ticks */
	uint64_t threads;
	uint64_t starttime; /* clock ticks after boot */
	uint64_t vsize;	    /* bytes */
	uint64_t rss;	    /* pages */
};

/* Parses the text of /proc/<pid>/stat (the command name may hold spaces and parentheses).
 * 0 or -EINVAL with err set. */
int nexsrv_proc_stat_parse(const char *text, struct nexsrv_proc_stat *out, struct nx_err *err);

/* Finds "btime N" (boot time, seconds since the epoch) in the text of /proc/stat.
 * 0 or -EINVAL with err set. */
int nexsrv_proc_btime_parse(const char *text, uint64_t *btime, struct nx_err *err);

#endif /* NEXSRV_METRICS_H */
