/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for nexsrv/nexsrv_metrics: the exposition format of counters, gauges and
 * histograms (labels, escaping, number spelling), registration rules and their messages,
 * update errors, the series bound, collectors, the /proc parsers and the process metrics,
 * and concurrent updates.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nexsrv/nexsrv_metrics.h"

#define assert_contains(hay, needle)                                          \
	do {                                                                  \
		if (!strstr((hay), (needle)))                                 \
			fail_msg("expected \"%s\" in:\n%s", (needle), (hay)); \
	} while (0)

/* Renders m into a heap string the caller frees. */
static char *render(struct nexsrv_metrics *m)
{
	struct nx_sbuf b;
	char *text;

	nx_sbuf_init(&b, NULL, 0);
	assert_int_equal(nexsrv_metrics_render(m, &b), 0);
	text = strdup(nx_sbuf_str(&b));
	nx_sbuf_fini(&b);
	assert_non_null(text);
	return text;
}

static void test_counter_and_gauge(void **state)
{
	struct nexsrv_metrics *m = nexsrv_metrics_new();
	struct nexsrv_metric *c, *g;
	double v;
	char *text;

	(void)state;
	c = nexsrv_metrics_counter(m, "jobs_total", "Jobs done.", NULL, NULL);
	g = nexsrv_metrics_gauge(m, "queue_depth", "Jobs waiting.", NULL, NULL);
	assert_non_null(c);
	assert_non_null(g);

	/* a family without labels shows 0 before anything happened */
	text = render(m);
	assert_string_equal(text, "# HELP jobs_total Jobs done.\n"
				  "# TYPE jobs_total counter\n"
				  "jobs_total 0\n"
				  "# HELP queue_depth Jobs waiting.\n"
				  "# TYPE queue_depth gauge\n"
				  "queue_depth 0\n");
	free(text);

	assert_int_equal(nexsrv_metric_add(c, NULL, 1), 0);
	assert_int_equal(nexsrv_metric_add(c, NULL, 2.5), 0);
	assert_int_equal(nexsrv_metric_set(g, NULL, 7), 0);
	assert_int_equal(nexsrv_metric_add(g, NULL, -10), 0);
	assert_int_equal(nexsrv_metric_get(c, NULL, &v), 0);
	assert_true(v == 3.5);
	text = render(m);
	assert_contains(text, "\njobs_total 3.5\n");
	assert_contains(text, "\nqueue_depth -3\n");
	free(text);

	/* specials and numbers that need all 17 digits */
	assert_int_equal(nexsrv_metric_set(g, NULL, NAN), 0);
	text = render(m);
	assert_contains(text, "\nqueue_depth NaN\n");
	free(text);
	assert_int_equal(nexsrv_metric_set(g, NULL, -INFINITY), 0);
	text = render(m);
	assert_contains(text, "\nqueue_depth -Inf\n");
	free(text);
	assert_int_equal(nexsrv_metric_set(g, NULL, 0.1), 0);
	text = render(m);
	assert_contains(text, "\nqueue_depth 0.1\n");
	free(text);
	assert_int_equal(nexsrv_metric_set(g, NULL, 9007199254740993.0), 0);
	text = render(m);
	assert_contains(text, "\nqueue_depth 9007199254740992\n");
	free(text);
	nexsrv_metrics_free(m);
}

static void test_labels_and_escaping(void **state)
{
	static const char *const labels[] = { "method", "route", "code", NULL };
	struct nexsrv_metrics *m = nexsrv_metrics_new();
	struct nexsrv_metric *c;
	char *text;

	(void)state;
	c = nexsrv_metrics_counter(m, "http_requests_total", "Requests,\nby \\route.", labels,
				   NULL);
	assert_non_null(c);
	assert_int_equal(nexsrv_metric_add(c, (const char *[]){ "GET", "/a/{id}", "200" }, 1), 0);
	assert_int_equal(nexsrv_metric_add(c, (const char *[]){ "GET", "/a/{id}", "200" }, 1), 0);
	assert_int_equal(nexsrv_metric_add(c, (const char *[]){ "POST", "q\"x\\y\nz", "404" }, 1),
			 0);
	text = render(m);
	assert_string_equal(text,
			    "# HELP http_requests_total Requests,\\nby \\\\route.\n"
			    "# TYPE http_requests_total counter\n"
			    "http_requests_total{method=\"GET\",route=\"/a/{id}\",code=\"200\"} 2\n"
			    "http_requests_total{method=\"POST\",route=\"q\\\"x\\\\y\\nz\","
			    "code=\"404\"} 1\n");
	free(text);

	/* ("ab","c") and ("a","bc") are different series */
	assert_int_equal(nexsrv_metric_add(c, (const char *[]){ "ab", "c", "" }, 1), 0);
	assert_int_equal(nexsrv_metric_add(c, (const char *[]){ "a", "bc", "" }, 1), 0);
	text = render(m);
	assert_contains(text, "{method=\"ab\",route=\"c\",code=\"\"} 1\n");
	assert_contains(text, "{method=\"a\",route=\"bc\",code=\"\"} 1\n");
	free(text);
	nexsrv_metrics_free(m);
}

static void test_histogram(void **state)
{
	static const char *const labels[] = { "route", NULL };
	static const double bounds[] = { 0.005, 0.1, 1 };
	struct nexsrv_metrics *m = nexsrv_metrics_new();
	struct nexsrv_metric *h;
	const char *route[] = { "/x" };
	double count;
	char *text;

	(void)state;
	h = nexsrv_metrics_histogram(m, "dur_seconds", "Durations.", labels, bounds, 3, NULL);
	assert_non_null(h);
	assert_int_equal(nexsrv_metric_observe(h, route, 0.005), 0); /* le is inclusive */
	assert_int_equal(nexsrv_metric_observe(h, route, 0.05), 0);
	assert_int_equal(nexsrv_metric_observe(h, route, 0.5), 0);
	assert_int_equal(nexsrv_metric_observe(h, route, 42), 0);
	assert_int_equal(nexsrv_metric_get(h, route, &count), 0);
	assert_true(count == 4);
	text = render(m);
	assert_string_equal(text, "# HELP dur_seconds Durations.\n"
				  "# TYPE dur_seconds histogram\n"
				  "dur_seconds_bucket{route=\"/x\",le=\"0.005\"} 1\n"
				  "dur_seconds_bucket{route=\"/x\",le=\"0.1\"} 2\n"
				  "dur_seconds_bucket{route=\"/x\",le=\"1\"} 3\n"
				  "dur_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n"
				  "dur_seconds_sum{route=\"/x\"} 42.555\n"
				  "dur_seconds_count{route=\"/x\"} 4\n");
	free(text);

	/* without labels, the le label stands alone; the default buckets are valid */
	h = nexsrv_metrics_histogram(m, "plain_seconds", "P.", NULL, nexsrv_metric_default_buckets,
				     nexsrv_metric_default_buckets_count, NULL);
	assert_non_null(h);
	text = render(m);
	assert_contains(text, "\nplain_seconds_bucket{le=\"0.005\"} 0\n");
	assert_contains(text, "\nplain_seconds_bucket{le=\"+Inf\"} 0\n");
	assert_contains(text, "\nplain_seconds_sum 0\nplain_seconds_count 0\n");
	free(text);
	nexsrv_metrics_free(m);
}

#define assert_refused(call, code, want)                   \
	do {                                               \
		struct nx_err err_ = { "" };               \
		struct nx_err *err = &err_;                \
		assert_null(call);                         \
		(void)(code);                              \
		assert_non_null(strstr(err_.msg, (want))); \
	} while (0)

static void test_registration_rules(void **state)
{
	static const char *const dup[] = { "a", "a", NULL };
	static const char *const reserved[] = { "__x", NULL };
	static const char *const le[] = { "le", NULL };
	static const char *const bad[] = { "9a", NULL };
	static const char *const one[] = { "a", NULL };
	static const char *const other[] = { "b", NULL };
	static const char *const nine[] = { "a", "b", "c", "d", "e", "f", "g", "h", "i", NULL };
	static const double down[] = { 1, 0.5 };
	static const double nan_bound[] = { NAN };
	struct nexsrv_metrics *m = nexsrv_metrics_new();
	struct nexsrv_metric *f;

	(void)state;
	assert_refused(nexsrv_metrics_counter(m, "9lives", "", NULL, err), EINVAL, "invalid name");
	assert_refused(nexsrv_metrics_counter(m, "a-b", "", NULL, err), EINVAL, "invalid name");
	assert_refused(nexsrv_metrics_counter(m, "", "", NULL, err), EINVAL, "invalid name");
	assert_refused(nexsrv_metrics_counter(m, "x", "", dup, err), EINVAL, "duplicate label");
	assert_refused(nexsrv_metrics_counter(m, "x", "", reserved, err), EINVAL,
		       "invalid label name \"__x\"");
	assert_refused(nexsrv_metrics_counter(m, "x", "", bad, err), EINVAL,
		       "invalid label name \"9a\"");
	assert_refused(nexsrv_metrics_counter(m, "x", "", nine, err), EINVAL, "more than 8 labels");
	assert_refused(nexsrv_metrics_histogram(m, "h", "", le, down, 1, err), EINVAL,
		       "\"le\" is reserved");
	assert_refused(nexsrv_metrics_histogram(m, "h", "", NULL, down, 2, err), EINVAL,
		       "strictly increasing");
	assert_refused(nexsrv_metrics_histogram(m, "h", "", NULL, nan_bound, 1, err), EINVAL,
		       "finite");
	assert_refused(nexsrv_metrics_histogram(m, "h", "", NULL, down, 0, err), EINVAL,
		       "0 buckets");

	/* a colon is allowed in metric names (recording rules), not in label names */
	assert_non_null(nexsrv_metrics_gauge(m, "ns:x", "", NULL, NULL));

	f = nexsrv_metrics_counter(m, "x_total", "", one, NULL);
	assert_non_null(f);
	assert_ptr_equal(nexsrv_metrics_counter(m, "x_total", "other help", one, NULL), f);
	assert_refused(nexsrv_metrics_gauge(m, "x_total", "", one, err), EEXIST,
		       "already registered differently");
	assert_refused(nexsrv_metrics_counter(m, "x_total", "", other, err), EEXIST,
		       "already registered differently");
	assert_refused(nexsrv_metrics_counter(m, "x_total", "", NULL, err), EEXIST,
		       "already registered differently");
	nexsrv_metrics_free(m);
}

static void test_update_errors(void **state)
{
	static const char *const one[] = { "a", NULL };
	struct nexsrv_metrics *m = nexsrv_metrics_new();
	struct nexsrv_metric *c = nexsrv_metrics_counter(m, "c_total", "", one, NULL);
	struct nexsrv_metric *g = nexsrv_metrics_gauge(m, "g", "", NULL, NULL);
	struct nexsrv_metric *h =
		nexsrv_metrics_histogram(m, "h", "", NULL, nexsrv_metric_default_buckets, 1, NULL);
	const char *v[] = { "x" };
	const char *nullv[] = { NULL };
	double out;
	char name[16];

	(void)state;
	assert_int_equal(nexsrv_metric_add(c, NULL, 1), -EINVAL);  /* labels missing */
	assert_int_equal(nexsrv_metric_add(c, nullv, 1), -EINVAL); /* NULL value */
	assert_int_equal(nexsrv_metric_add(c, v, -1), -EINVAL);	   /* counters only go up */
	assert_int_equal(nexsrv_metric_add(c, v, NAN), -EINVAL);
	assert_int_equal(nexsrv_metric_observe(c, v, 1), -EINVAL); /* not a histogram */
	assert_int_equal(nexsrv_metric_add(h, NULL, 1), -EINVAL);  /* a histogram observes */
	assert_int_equal(nexsrv_metric_set(h, NULL, 1), -EINVAL);
	assert_int_equal(nexsrv_metric_observe(h, NULL, NAN), -EINVAL);
	assert_int_equal(nexsrv_metric_add(NULL, NULL, 1), -EINVAL);
	assert_int_equal(nexsrv_metric_get(c, v, &out), -ENOENT);
	assert_int_equal(nexsrv_metric_set(g, NULL, -5), 0);
	assert_int_equal(nexsrv_metric_set(c, v, 10), 0); /* a total read from elsewhere */
	assert_int_equal(nexsrv_metric_get(c, v, &out), 0);
	assert_true(out == 10);

	/* the series bound */
	for (int i = 0; i < NEXSRV_METRIC_MAX_SERIES - 1; i++) {
		const char *vals[] = { name };

		snprintf(name, sizeof(name), "s%d", i);
		assert_int_equal(nexsrv_metric_add(c, vals, 1), 0);
	}
	assert_int_equal(nexsrv_metric_add(c, (const char *[]){ "one-too-many" }, 1), -E2BIG);
	assert_int_equal(nexsrv_metric_add(c, (const char *[]){ "s0" }, 1), 0); /* existing: fine */
	nexsrv_metrics_free(m);
}

static int collected;

static void collect(struct nexsrv_metrics *m, void *arg)
{
	collected++;
	nexsrv_metric_set(arg, NULL, collected);
	(void)m;
}

static void test_collectors(void **state)
{
	struct nexsrv_metrics *m = nexsrv_metrics_new();
	struct nexsrv_metric *g = nexsrv_metrics_gauge(m, "renders", "", NULL, NULL);
	char *text;
	int i;

	(void)state;
	collected = 0;
	assert_int_equal(nexsrv_metrics_add_collector(m, collect, g), 0);
	text = render(m);
	assert_contains(text, "\nrenders 1\n");
	free(text);
	text = render(m);
	assert_contains(text, "\nrenders 2\n");
	free(text);
	for (i = 1; i < NEXSRV_METRIC_MAX_COLLECTORS; i++)
		assert_int_equal(nexsrv_metrics_add_collector(m, collect, g), 0);
	assert_int_equal(nexsrv_metrics_add_collector(m, collect, g), -E2BIG);
	nexsrv_metrics_free(m);
}

static void test_proc_parsers(void **state)
{
	/* a command name with spaces and parentheses, as a process may call itself */
	static const char stat[] =
		"4242 (a) (b c) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 25 0 0 20 0 7 0 "
		"123456 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 "
		"0 0\n";
	struct nexsrv_proc_stat st;
	struct nx_err err = { "" };
	uint64_t btime = 0;

	(void)state;
	assert_int_equal(nexsrv_proc_stat_parse(stat, &st, &err), 0);
	assert_int_equal(st.utime, 150);
	assert_int_equal(st.stime, 25);
	assert_int_equal(st.threads, 7);
	assert_int_equal(st.starttime, 123456);
	assert_int_equal(st.vsize, 104857600);
	assert_int_equal(st.rss, 2560);

	assert_int_equal(nexsrv_proc_stat_parse("4242 nope S 1", &st, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "no command name"));
	assert_int_equal(nexsrv_proc_stat_parse("4242 (x) S 1 2 3", &st, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "field 7 missing"));
	assert_int_equal(
		nexsrv_proc_stat_parse("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 25 0 0 20 0 7 0 1 2 3",
				       &st, &err),
		-EINVAL);
	assert_non_null(strstr(err.msg, "field 14"));

	assert_int_equal(nexsrv_proc_btime_parse("cpu  1 2 3\nintr 5\nbtime 1700000000\n"
						 "processes 9\n",
						 &btime, &err),
			 0);
	assert_int_equal(btime, 1700000000);
	assert_int_equal(nexsrv_proc_btime_parse("cpu 1\nbtime x\n", &btime, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "no valid btime"));
	assert_int_equal(nexsrv_proc_btime_parse("", &btime, &err), -EINVAL);
}

static void test_process_metrics(void **state)
{
	struct nexsrv_metrics *m = nexsrv_metrics_new();
	char *text, *p;
	double rss = 0, fds = 0;

	(void)state;
	assert_int_equal(nexsrv_metrics_add_process(m, NULL), 0);
	text = render(m);
	p = strstr(text, "\nprocess_resident_memory_bytes ");
	assert_non_null(p);
	rss = strtod(p + strlen("\nprocess_resident_memory_bytes "), NULL);
	assert_true(rss > 1024 * 1024);
	p = strstr(text, "\nprocess_open_fds ");
	assert_non_null(p);
	fds = strtod(p + strlen("\nprocess_open_fds "), NULL);
	assert_true(fds >= 3);
	/* every metric appears exactly once */
	assert_null(strstr(strstr(text, "\nprocess_threads ") + 1, "\nprocess_threads "));
	assert_contains(text, "# TYPE process_cpu_seconds_total counter\n");
	assert_contains(text, "# TYPE process_start_time_seconds gauge\n");
	free(text);
	nexsrv_metrics_free(m);
}

struct race {
	struct nexsrv_metric *c, *h;
};

static void *race_main(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < 10000; i++) {
		nexsrv_metric_add(r->c, (const char *[]){ i % 2 ? "odd" : "even" }, 1);
		nexsrv_metric_observe(r->h, NULL, 0.01);
	}
	return NULL;
}

static void test_concurrent_updates(void **state)
{
	static const char *const labels[] = { "parity", NULL };
	struct nexsrv_metrics *m = nexsrv_metrics_new();
	struct race r = {
		.c = nexsrv_metrics_counter(m, "n_total", "", labels, NULL),
		.h = nexsrv_metrics_histogram(m, "d", "", NULL, nexsrv_metric_default_buckets,
					      nexsrv_metric_default_buckets_count, NULL),
	};
	pthread_t t[4];
	double odd, even, count;
	char *text;

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race_main, &r), 0);
	for (int i = 0; i < 20; i++)
		free(render(m)); /* renders race with the updates */
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(nexsrv_metric_get(r.c, (const char *[]){ "odd" }, &odd), 0);
	assert_int_equal(nexsrv_metric_get(r.c, (const char *[]){ "even" }, &even), 0);
	assert_int_equal(nexsrv_metric_get(r.h, NULL, &count), 0);
	assert_true(odd == 20000 && even == 20000 && count == 40000);
	text = render(m);
	assert_contains(text, "\nd_count 40000\n");
	free(text);
	nexsrv_metrics_free(m);
	nexsrv_metrics_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_and_gauge),
		cmocka_unit_test(test_labels_and_escaping),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_registration_rules),
		cmocka_unit_test(test_update_errors),
		cmocka_unit_test(test_collectors),
		cmocka_unit_test(test_proc_parsers),
		cmocka_unit_test(test_process_metrics),
		cmocka_unit_test(test_concurrent_updates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
