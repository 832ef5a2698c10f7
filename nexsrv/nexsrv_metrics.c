/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Prometheus registry behind GET /metrics; see nexsrv_metrics.h.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "nexsrv/nexsrv_metrics.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

static const char *const type_names[] = { "counter", "gauge", "histogram" };

#define SERIES_HASH 64

const double nexsrv_metric_default_buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
						 0.5,	1.0,  2.5,   5.0,  10.0 };
const size_t nexsrv_metric_default_buckets_count =
	sizeof(nexsrv_metric_default_buckets) / sizeof(nexsrv_metric_default_buckets[0]);

struct series {
	struct series *hnext; /* hash chain */
	struct series *next;  /* creation order */
	uint64_t hash;
	char **values;
	double value;	  /* counter, gauge */
	uint64_t *counts; /* histogram: per bucket (not cumulative), n_bounds + 1 */
	double sum;
	uint64_t count;
};

struct nexsrv_metric {
	struct nexsrv_metric *next;
	enum metric_type type;
	char *name;
	char *help;
	size_t n_labels;
	char *labels[NEXSRV_METRIC_MAX_LABELS];
	size_t n_bounds;
	double *bounds;
	pthread_mutex_t lock;
	struct series *table[SERIES_HASH];
	struct series *first, *last;
	size_t n_series;
};

struct nexsrv_metrics {
	pthread_mutex_t lock;
	struct nexsrv_metric *first, *last;
	struct {
		nexsrv_metrics_collect_fn fn;
		void *arg;
	} collectors[NEXSRV_METRIC_MAX_COLLECTORS];
	size_t n_collectors;
	/* process metrics */
	struct nexsrv_metric *proc_cpu, *proc_rss, *proc_vsize, *proc_fds, *proc_max_fds,
		*proc_start, *proc_threads;
	uint64_t btime;
};

struct nexsrv_metrics *nexsrv_metrics_new(void)
{
	struct nexsrv_metrics *m = calloc(1, sizeof(*m));

	if (m)
		pthread_mutex_init(&m->lock, NULL);
	return m;
}

static void series_free(struct series *s, size_t n_labels)
{
	for (size_t i = 0; s->values && i < n_labels; i++)
		free(s->values[i]);
	free(s->values);
	free(s->counts);
	free(s);
}

static void family_free(struct nexsrv_metric *f)
{
	struct series *s = f->first;

	while (s) {
		struct series *next = s->next;

		series_free(s, f->n_labels);
		s = next;
	}
	for (size_t i = 0; i < f->n_labels; i++)
		free(f->labels[i]);
	free(f->name);
	free(f->help);
	free(f->bounds);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void nexsrv_metrics_free(struct nexsrv_metrics *m)
{
	struct nexsrv_metric *f;

	if (!m)
		return;
	f = m->first;
	while (f) {
		struct nexsrv_metric *next = f->next;

		family_free(f);
		f = next;
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static bool valid_name(const char *s, bool colon)
{
	if (!s || !*s)
		return false;
	for (size_t i = 0; s[i]; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			  (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');

		if (!ok)
			return false;
	}
	return true;
}

static int check_family(const char *name, enum metric_type type, const char *const *labels,
			const double *bounds, size_t n_bounds, size_t *n_labels, struct nx_err *err)
{
	size_t n = 0;

	if (!valid_name(name, true))
		return nx_err_set(err, EINVAL, "metric \"%s\": invalid name", name ? name : "");
	for (; labels && labels[n]; n++) {
		if (n == NEXSRV_METRIC_MAX_LABELS)
			return nx_err_set(err, EINVAL, "metric %s: more than %d labels", name,
					  NEXSRV_METRIC_MAX_LABELS);
		if (!valid_name(labels[n], false) || strncmp(labels[n], "__", 2) == 0)
			return nx_err_set(err, EINVAL, "metric %s: invalid label name \"%s\"", name,
					  labels[n]);
		if (type == METRIC_HISTOGRAM && strcmp(labels[n], "le") == 0)
			return nx_err_set(err, EINVAL, "metric %s: label \"le\" is reserved", name);
		for (size_t j = 0; j < n; j++)
			if (strcmp(labels[j], labels[n]) == 0)
				return nx_err_set(err, EINVAL, "metric %s: duplicate label \"%s\"",
						  name, labels[n]);
	}
	if (type == METRIC_HISTOGRAM) {
		if (n_bounds < 1 || n_bounds > NEXSRV_METRIC_MAX_BUCKETS)
			return nx_err_set(err, EINVAL, "metric %s: %zu buckets (expected 1-%d)",
					  name, n_bounds, NEXSRV_METRIC_MAX_BUCKETS);
		for (size_t i = 0; i < n_bounds; i++)
			if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
				return nx_err_set(err, EINVAL,
						  "metric %s: bucket bounds must be finite and "
						  "strictly increasing",
						  name);
	}
	*n_labels = n;
	return 0;
}

static bool same_family(const struct nexsrv_metric *f, enum metric_type type,
			const char *const *labels, size_t n_labels, const double *bounds,
			size_t n_bounds)
{
	if (f->type != type || f->n_labels != n_labels)
		return false;
	for (size_t i = 0; i < n_labels; i++)
		if (strcmp(f->labels[i], labels[i]) != 0)
			return false;
	if (type != METRIC_HISTOGRAM)
		return true;
	return f->n_bounds == n_bounds &&
	       memcmp(f->bounds, bounds, n_bounds * sizeof(*bounds)) == 0;
}

static struct series *series_new(struct nexsrv_metric *f, uint64_t hash, const char *const *values);
static uint64_t hash_values(const char *const *values, size_t n);

static struct nexsrv_metric *family_register(struct nexsrv_metrics *m, enum metric_type type,
					     const char *name, const char *help,
					     const char *const *labels, const double *bounds,
					     size_t n_bounds, struct nx_err *err)
{
	struct nexsrv_metric *f;
	size_t n_labels = 0;

	if (check_family(name, type, labels, bounds, n_bounds, &n_labels, err) < 0)
		return NULL;
	pthread_mutex_lock(&m->lock);
	for (f = m->first; f; f = f->next)
		if (strcmp(f->name, name) == 0)
			break;
	if (f) {
		if (!same_family(f, type, labels, n_labels, bounds, n_bounds)) {
			nx_err_set(err, EEXIST, "metric %s: already registered differently", name);
			f = NULL;
		}
		pthread_mutex_unlock(&m->lock);
		return f;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		goto nomem;
	pthread_mutex_init(&f->lock, NULL);
	f->type = type;
	f->name = strdup(name);
	f->help = strdup(help ? help : "");
	f->n_labels = n_labels;
	if (!f->name || !f->help)
		goto nomem;
	for (size_t i = 0; i < n_labels; i++)
		if (!(f->labels[i] = strdup(labels[i])))
			goto nomem;
	if (type == METRIC_HISTOGRAM) {
		f->n_bounds = n_bounds;
		f->bounds = malloc(n_bounds * sizeof(*bounds));
		if (!f->bounds)
			goto nomem;
		memcpy(f->bounds, bounds, n_bounds * sizeof(*bounds));
	}
	if (n_labels == 0 && !series_new(f, hash_values(NULL, 0), NULL))
		goto nomem;
	/* Renders walk the list unlocked: publish the finished family atomically. */
	if (m->last)
		__atomic_store_n(&m->last->next, f, __ATOMIC_RELEASE);
	else
		__atomic_store_n(&m->first, f, __ATOMIC_RELEASE);
	m->last = f;
	pthread_mutex_unlock(&m->lock);
	return f;
nomem:
	pthread_mutex_unlock(&m->lock);
	if (f)
		family_free(f);
	nx_err_set(err, ENOMEM, "metric %s: out of memory", name);
	return NULL;
}

struct nexsrv_metric *nexsrv_metrics_counter(struct nexsrv_metrics *m, const char *name,
					     const char *help, const char *const *labels,
					     struct nx_err *err)
{
	return family_register(m, METRIC_COUNTER, name, help, labels, NULL, 0, err);
}

struct nexsrv_metric *nexsrv_metrics_gauge(struct nexsrv_metrics *m, const char *name,
					   const char *help, const char *const *labels,
					   struct nx_err *err)
{
	return family_register(m, METRIC_GAUGE, name, help, labels, NULL, 0, err);
}

struct nexsrv_metric *nexsrv_metrics_histogram(struct nexsrv_metrics *m, const char *name,
					       const char *help, const char *const *labels,
					       const double *bounds, size_t n_bounds,
					       struct nx_err *err)
{
	return family_register(m, METRIC_HISTOGRAM, name, help, labels, bounds, n_bounds, err);
}

/* FNV-1a over the values, each with its terminating NUL so that ("ab","c") != ("a","bc"). */
static uint64_t hash_values(const char *const *values, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		const char *s = values[i];

		do {
			h ^= (unsigned char)*s;
			h *= 0x100000001b3ull;
		} while (*s++);
	}
	return h;
}

/* Creates a series (family lock held, values already checked). */
static struct series *series_new(struct nexsrv_metric *f, uint64_t hash, const char *const *values)
{
	struct series *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->hash = hash;
	if (f->n_labels) {
		s->values = calloc(f->n_labels, sizeof(*s->values));
		if (!s->values)
			goto fail;
		for (size_t i = 0; i < f->n_labels; i++)
			if (!(s->values[i] = strdup(values[i])))
				goto fail;
	}
	if (f->type == METRIC_HISTOGRAM && !(s->counts = calloc(f->n_bounds + 1, sizeof(uint64_t))))
		goto fail;
	s->hnext = f->table[hash % SERIES_HASH];
	f->table[hash % SERIES_HASH] = s;
	if (f->last)
		f->last->next = s;
	else
		f->first = s;
	f->last = s;
	f->n_series++;
	return s;
fail:
	series_free(s, f->n_labels);
	return NULL;
}

/* Finds (or, when create, makes) the series of values; family lock held.  NULL with *rc. */
static struct series *series_find(struct nexsrv_metric *f, const char *const *values, bool create,
				  int *rc)
{
	uint64_t h;
	struct series *s;

	if (f->n_labels && !values) {
		*rc = -EINVAL;
		return NULL;
	}
	for (size_t i = 0; i < f->n_labels; i++) {
		if (!values[i]) {
			*rc = -EINVAL;
			return NULL;
		}
	}
	h = hash_values(values, f->n_labels);
	for (s = f->table[h % SERIES_HASH]; s; s = s->hnext) {
		size_t i;

		if (s->hash != h)
			continue;
		for (i = 0; i < f->n_labels; i++)
			if (strcmp(s->values[i], values[i]) != 0)
				break;
		if (i == f->n_labels)
			return s;
	}
	if (!create) {
		*rc = -ENOENT;
		return NULL;
	}
	if (f->n_series >= NEXSRV_METRIC_MAX_SERIES) {
		*rc = -E2BIG;
		return NULL;
	}
	s = series_new(f, h, values);
	if (!s)
		*rc = -ENOMEM;
	return s;
}

enum update { UPDATE_ADD, UPDATE_SET, UPDATE_OBSERVE };

static int update(struct nexsrv_metric *f, const char *const *values, double v, enum update op)
{
	struct series *s;
	int rc = 0;

	if (!f)
		return -EINVAL;
	switch (op) {
	case UPDATE_ADD:
		if (f->type == METRIC_HISTOGRAM || (f->type == METRIC_COUNTER && !(v >= 0)))
			return -EINVAL;
		break;
	case UPDATE_SET:
		if (f->type == METRIC_HISTOGRAM || (f->type == METRIC_COUNTER && !(v >= 0)))
			return -EINVAL;
		break;
	case UPDATE_OBSERVE:
		if (f->type != METRIC_HISTOGRAM || isnan(v))
			return -EINVAL;
		break;
	}
	pthread_mutex_lock(&f->lock);
	s = series_find(f, values, true, &rc);
	if (s) {
		switch (op) {
		case UPDATE_ADD:
			s->value += v;
			break;
		case UPDATE_SET:
			s->value = v;
			break;
		case UPDATE_OBSERVE: {
			size_t i = 0;

			while (i < f->n_bounds && v > f->bounds[i])
				i++;
			s->counts[i]++;
			s->sum += v;
			s->count++;
			break;
		}
		}
	}
	pthread_mutex_unlock(&f->lock);
	return s ? 0 : rc;
}

int nexsrv_metric_add(struct nexsrv_metric *f, const char *const *values, double v)
{
	return update(f, values, v, UPDATE_ADD);
}

int nexsrv_metric_set(struct nexsrv_metric *f, const char *const *values, double v)
{
	return update(f, values, v, UPDATE_SET);
}

int nexsrv_metric_observe(struct nexsrv_metric *f, const char *const *values, double v)
{
	return update(f, values, v, UPDATE_OBSERVE);
}

int nexsrv_metric_get(struct nexsrv_metric *f, const char *const *values, double *out)
{
	struct series *s;
	int rc = 0;

	if (!f)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	s = series_find(f, values, false, &rc);
	if (s)
		*out = f->type == METRIC_HISTOGRAM ? (double)s->count : s->value;
	pthread_mutex_unlock(&f->lock);
	return s ? 0 : rc;
}

int nexsrv_metrics_add_collector(struct nexsrv_metrics *m, nexsrv_metrics_collect_fn fn, void *arg)
{
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	if (m->n_collectors == NEXSRV_METRIC_MAX_COLLECTORS) {
		rc = -E2BIG;
	} else {
		m->collectors[m->n_collectors].fn = fn;
		m->collectors[m->n_collectors].arg = arg;
		m->n_collectors++;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* --- rendering ------------------------------------------------------------- */

/* Shortest of %.15g / %.17g that reads back as v; Prometheus spellings of the specials. */
static void fmt_double(char *buf, size_t size, double v)
{
	if (isnan(v)) {
		nx_strlcpy(buf, "NaN", size);
	} else if (isinf(v)) {
		nx_strlcpy(buf, v > 0 ? "+Inf" : "-Inf", size);
	} else {
		snprintf(buf, size, "%.15g", v);
		if (strtod(buf, NULL) != v)
			snprintf(buf, size, "%.17g", v);
	}
}

/* Text with \ and newline escaped (HELP), plus " (label values). */
static int put_escaped(struct nx_sbuf *out, const char *s, bool quote)
{
	int rc = 0;

	for (; *s && rc == 0; s++) {
		if (*s == '\\')
			rc = nx_sbuf_puts(out, "\\\\");
		else if (*s == '\n')
			rc = nx_sbuf_puts(out, "\\n");
		else if (quote && *s == '"')
			rc = nx_sbuf_puts(out, "\\\"");
		else
			rc = nx_sbuf_printf(out, "%c", *s);
	}
	return rc;
}

/* {a="x",b="y"} or {a="x",le="0.5"}; nothing when there are no labels and no le. */
static int put_labels(struct nx_sbuf *out, const struct nexsrv_metric *f, const struct series *s,
		      const char *le)
{
	int rc = 0;

	if (f->n_labels == 0 && !le)
		return 0;
	rc = nx_sbuf_puts(out, "{");
	for (size_t i = 0; i < f->n_labels && rc == 0; i++) {
		rc = nx_sbuf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
		if (rc == 0)
			rc = put_escaped(out, s->values[i], true);
		if (rc == 0)
			rc = nx_sbuf_puts(out, "\"");
	}
	if (rc == 0 && le)
		rc = nx_sbuf_printf(out, "%sle=\"%s\"", f->n_labels ? "," : "", le);
	if (rc == 0)
		rc = nx_sbuf_puts(out, "}");
	return rc;
}

static int render_family(struct nx_sbuf *out, struct nexsrv_metric *f)
{
	char num[64], le[64];
	int rc;

	rc = nx_sbuf_printf(out, "# HELP %s ", f->name);
	if (rc == 0)
		rc = put_escaped(out, f->help, false);
	if (rc == 0)
		rc = nx_sbuf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
	pthread_mutex_lock(&f->lock);
	for (const struct series *s = f->first; s && rc == 0; s = s->next) {
		if (f->type != METRIC_HISTOGRAM) {
			fmt_double(num, sizeof(num), s->value);
			rc = nx_sbuf_puts(out, f->name);
			if (rc == 0)
				rc = put_labels(out, f, s, NULL);
			if (rc == 0)
				rc = nx_sbuf_printf(out, " %s\n", num);
			continue;
		}
		uint64_t cumulative = 0;

		for (size_t i = 0; i <= f->n_bounds && rc == 0; i++) {
			cumulative += s->counts[i];
			if (i < f->n_bounds)
				fmt_double(le, sizeof(le), f->bounds[i]);
			else
				nx_strlcpy(le, "+Inf", sizeof(le));
			rc = nx_sbuf_printf(out, "%s_bucket", f->name);
			if (rc == 0)
				rc = put_labels(out, f, s, le);
			if (rc == 0)
				rc = nx_sbuf_printf(out, " %llu\n", (unsigned long long)cumulative);
		}
		fmt_double(num, sizeof(num), s->sum);
		if (rc == 0)
			rc = nx_sbuf_printf(out, "%s_sum", f->name);
		if (rc == 0)
			rc = put_labels(out, f, s, NULL);
		if (rc == 0)
			rc = nx_sbuf_printf(out, " %s\n%s_count", num, f->name);
		if (rc == 0)
			rc = put_labels(out, f, s, NULL);
		if (rc == 0)
			rc = nx_sbuf_printf(out, " %llu\n", (unsigned long long)s->count);
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int nexsrv_metrics_render(struct nexsrv_metrics *m, struct nx_sbuf *out)
{
	struct nexsrv_metric *f;
	size_t n;
	int rc = 0;

	/* Collectors are only ever appended: the first n entries stay valid unlocked. */
	pthread_mutex_lock(&m->lock);
	n = m->n_collectors;
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < n; i++)
		m->collectors[i].fn(m, m->collectors[i].arg);

	/* Families are only ever appended too; each renders under its own lock. */
	pthread_mutex_lock(&m->lock);
	f = m->first;
	pthread_mutex_unlock(&m->lock);
	for (; f && rc == 0; f = __atomic_load_n(&f->next, __ATOMIC_ACQUIRE))
		rc = render_family(out, f);
	return rc;
}

/* --- process metrics --------------------------------------------------------- */

int nexsrv_proc_stat_parse(const char *text, struct nexsrv_proc_stat *out, struct nx_err *err)
{
	/* Fields after the command name, numbered as in proc(5): state is field 3. */
	enum { F_UTIME = 14, F_STIME = 15, F_THREADS = 20, F_START = 22, F_VSIZE = 23, F_RSS = 24 };
	const char *p = strrchr(text, ')');
	struct nexsrv_proc_stat st = { 0 };
	int field = 3;

	if (!p || p[1] != ' ')
		return nx_err_set(err, EINVAL, "/proc stat: no command name in parentheses");
	p += 2;
	while (field <= F_RSS) {
		const char *end = p;
		unsigned long long v = 0;

		while (*end && *end != ' ' && *end != '\n')
			end++;
		if (end == p)
			return nx_err_set(err, EINVAL, "/proc stat: field %d missing", field);
		if (field >= F_UTIME) {
			char num[24];
			size_t len = (size_t)(end - p);

			if (len >= sizeof(num))
				return nx_err_set(err, EINVAL, "/proc stat: field %d too long",
						  field);
			memcpy(num, p, len);
			num[len] = '\0';
			/* rss may be negative in theory; treat anything non-numeric as bad */
			if (field == F_RSS && num[0] == '-')
				nx_strlcpy(num, "0", sizeof(num));
			if (nx_parse_uint(num, 0, UINT64_MAX, &v, err) < 0)
				return nx_err_set(err, EINVAL,
						  "/proc stat: field %d: \"%s\" is not a number",
						  field, num);
		}
		switch (field) {
		case F_UTIME:
			st.utime = v;
			break;
		case F_STIME:
			st.stime = v;
			break;
		case F_THREADS:
			st.threads = v;
			break;
		case F_START:
			st.starttime = v;
			break;
		case F_VSIZE:
			st.vsize = v;
			break;
		case F_RSS:
			st.rss = v;
			break;
		default:
			break;
		}
		field++;
		p = *end == ' ' ? end + 1 : end;
	}
	*out = st;
	return 0;
}

int nexsrv_proc_btime_parse(const char *text, uint64_t *btime, struct nx_err *err)
{
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, "btime ", 6) == 0) {
			char num[24];
			size_t len = strcspn(p + 6, "\n");
			unsigned long long v;

			if (len == 0 || len >= sizeof(num))
				break;
			memcpy(num, p + 6, len);
			num[len] = '\0';
			if (nx_parse_uint(num, 0, UINT64_MAX, &v, NULL) < 0)
				break;
			*btime = v;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return nx_err_set(err, EINVAL, "/proc/stat: no valid btime line");
}

/* Reads a small /proc file into buf (NUL-terminated); length or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

static long count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	long n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n > 0 ? n - 1 : 0; /* not counting the directory being read */
}

static void process_collect(struct nexsrv_metrics *m, void *arg)
{
	char buf[2048];
	struct nexsrv_proc_stat st;
	long ticks = sysconf(_SC_CLK_TCK);
	long page = sysconf(_SC_PAGESIZE);
	struct rlimit rl;
	long fds;
	int rc;

	(void)arg;
	rc = read_small("/proc/self/stat", buf, sizeof(buf)) > 0 ? 0 : -EIO;
	if (rc == 0)
		rc = nexsrv_proc_stat_parse(buf, &st, NULL);
	if (rc == 0 && ticks > 0 && page > 0) {
		nexsrv_metric_set(m->proc_cpu, NULL, (double)(st.utime + st.stime) / (double)ticks);
		nexsrv_metric_set(m->proc_rss, NULL, (double)st.rss * (double)page);
		nexsrv_metric_set(m->proc_vsize, NULL, (double)st.vsize);
		nexsrv_metric_set(m->proc_threads, NULL, (double)st.threads);
		if (m->btime)
			nexsrv_metric_set(m->proc_start, NULL,
					  (double)m->btime + (double)st.starttime / (double)ticks);
	}
	fds = count_open_fds();
	if (fds >= 0)
		nexsrv_metric_set(m->proc_fds, NULL, (double)fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		nexsrv_metric_set(m->proc_max_fds, NULL,
				  rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur);
}

int nexsrv_metrics_add_process(struct nexsrv_metrics *m, struct nx_err *err)
{
	char *buf;

	if (!(m->proc_cpu = nexsrv_metrics_counter(
		      m, "process_cpu_seconds_total",
		      "Total user and system CPU time spent in seconds.", NULL, err)) ||
	    !(m->proc_rss = nexsrv_metrics_gauge(m, "process_resident_memory_bytes",
						 "Resident memory size in bytes.", NULL, err)) ||
	    !(m->proc_vsize = nexsrv_metrics_gauge(m, "process_virtual_memory_bytes",
						   "Virtual memory size in bytes.", NULL, err)) ||
	    !(m->proc_fds = nexsrv_metrics_gauge(m, "process_open_fds",
						 "Number of open file descriptors.", NULL, err)) ||
	    !(m->proc_max_fds = nexsrv_metrics_gauge(m, "process_max_fds",
						     "Maximum number of open file descriptors.",
						     NULL, err)) ||
	    !(m->proc_start = nexsrv_metrics_gauge(
		      m, "process_start_time_seconds",
		      "Start time of the process since unix epoch in seconds.", NULL, err)) ||
	    !(m->proc_threads = nexsrv_metrics_gauge(m, "process_threads", "Number of OS threads.",
						     NULL, err)))
		return -EINVAL;
	/* /proc/stat is long on machines with many CPUs; btime comes after the cpu lines. */
	buf = malloc(256 * 1024);
	if (buf) {
		if (read_small("/proc/stat", buf, 256 * 1024) > 0)
			nexsrv_proc_btime_parse(buf, &m->btime, NULL);
		free(buf);
	}
	return nexsrv_metrics_add_collector(m, process_collect, NULL);
}
