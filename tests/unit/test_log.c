/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lib/log: level filter, level names, the sink, truncation,
 * the stderr line format and its timestamp, syslog-only silence on stderr,
 * and the debug switch registry.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/errmsg.h"
#include "lib/log.h"

NX_DEBUG_DEFINE(tpeers, "test-peers", "Peer path selection");
NX_DEBUG_DEFINE(tnat, "test-nat", "NAT discovery");

struct capture {
	unsigned count;
	int level;
	char msg[NX_LOG_MSG_MAX + 16];
};

static struct capture cap;

static void capture_sink(int level, const char *msg, void *arg)
{
	struct capture *c = arg;

	c->count++;
	c->level = level;
	snprintf(c->msg, sizeof(c->msg), "%s", msg);
}

static int setup(void **state)
{
	(void)state;
	memset(&cap, 0, sizeof(cap));
	nx_log_init("test_log", 0, NX_LOG_DEBUG);
	nx_log_set_sink(capture_sink, &cap);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nx_log_fini();
	nx_debug_set_all(false);
	return 0;
}

/* Redirects fd 2 into a pipe; returns the read end, saves the old fd 2. */
static int stderr_capture_begin(int *saved)
{
	int p[2];

	assert_int_equal(pipe(p), 0);
	*saved = dup(STDERR_FILENO);
	assert_true(*saved >= 0);
	assert_true(dup2(p[1], STDERR_FILENO) >= 0);
	close(p[1]);
	return p[0];
}

/* Restores fd 2 and reads everything that was written meanwhile. */
static size_t stderr_capture_end(int saved, int rfd, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;

	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	while (len + 1 < size && (n = read(rfd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(rfd);
	return len;
}

static void test_level_filter(void **state)
{
	(void)state;
	nx_log_set_level(NX_LOG_NOTICE);
	assert_int_equal(nx_log_get_level(), NX_LOG_NOTICE);

	nx_info("info %d", 1);
	nx_log(NX_LOG_DEBUG, "debug");
	assert_int_equal(cap.count, 0);

	nx_notice("notice %d", 2);
	assert_int_equal(cap.count, 1);
	assert_int_equal(cap.level, NX_LOG_NOTICE);
	assert_string_equal(cap.msg, "notice 2");

	nx_warn("warn");
	assert_int_equal(cap.level, NX_LOG_WARNING);
	nx_err("err");
	assert_int_equal(cap.level, NX_LOG_ERR);
	assert_int_equal(cap.count, 3);

	nx_log_set_level(NX_LOG_ERR);
	nx_warn("dropped");
	assert_int_equal(cap.count, 3);

	nx_log_set_level(NX_LOG_DEBUG);
	nx_log(NX_LOG_DEBUG, "now visible");
	assert_int_equal(cap.count, 4);
	assert_int_equal(cap.level, NX_LOG_DEBUG);

	/* Out-of-range levels are clamped, never indexed blindly. */
	nx_log_set_level(99);
	assert_int_equal(nx_log_get_level(), NX_LOG_DEBUG);
	nx_log(42, "clamped");
	assert_int_equal(cap.level, NX_LOG_DEBUG);
	nx_log(-5, "clamped too");
	assert_int_equal(cap.level, 0);
}

static void test_level_names(void **state)
{
	struct nx_err err;

	(void)state;
	assert_string_equal(nx_log_level_name(NX_LOG_ERR), "ERR");
	assert_string_equal(nx_log_level_name(NX_LOG_WARNING), "WARNING");
	assert_string_equal(nx_log_level_name(NX_LOG_NOTICE), "NOTICE");
	assert_string_equal(nx_log_level_name(NX_LOG_INFO), "INFO");
	assert_string_equal(nx_log_level_name(NX_LOG_DEBUG), "DEBUG");
	assert_string_equal(nx_log_level_name(8), "UNKNOWN");
	assert_string_equal(nx_log_level_name(-1), "UNKNOWN");

	assert_int_equal(nx_log_level_parse("debugging", NULL), NX_LOG_DEBUG);
	assert_int_equal(nx_log_level_parse("Errors", NULL), NX_LOG_ERR);
	assert_int_equal(nx_log_level_parse("WARNING", NULL), NX_LOG_WARNING);
	assert_int_equal(nx_log_level_parse("notifications", NULL), NX_LOG_NOTICE);
	assert_int_equal(nx_log_level_parse("informational", NULL), NX_LOG_INFO);
	assert_int_equal(nx_log_level_parse("critical", NULL), 2);

	nx_err_clear(&err);
	assert_int_equal(nx_log_level_parse("loud", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "\"loud\""));
	assert_non_null(strstr(err.msg, "unknown log level"));

	nx_err_clear(&err);
	assert_int_equal(nx_log_level_parse("", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "empty"));
	assert_int_equal(nx_log_level_parse(NULL, NULL), -EINVAL);
}

static void test_sink_capture(void **state)
{
	(void)state;
	errno = EAGAIN;
	nx_info("peer %s up after %u ms", "abc", 12u);
	assert_int_equal(errno, EAGAIN); /* logging never clobbers errno */
	assert_int_equal(cap.count, 1);
	assert_int_equal(cap.level, NX_LOG_INFO);
	assert_string_equal(cap.msg, "peer abc up after 12 ms");

	/* One trailing newline is dropped; embedded control characters
	 * cannot forge a second line. */
	nx_info("line\n");
	assert_string_equal(cap.msg, "line");
	nx_info("a\nFAKE: b\r\x1b[31m\tc");
	assert_string_equal(cap.msg, "a?FAKE: b??[31m\tc");

	nx_log_set_sink(NULL, NULL);
	nx_info("not captured");
	assert_int_equal(cap.count, 3);
}

static void logging_sink(int level, const char *msg, void *arg)
{
	(void)level;
	(void)msg;
	(void)arg;
	cap.count++;
	nx_err("from inside the sink"); /* must be dropped, not deadlock */
}

static void test_sink_reentry(void **state)
{
	(void)state;
	nx_log_set_sink(logging_sink, NULL);
	nx_info("outer");
	assert_int_equal(cap.count, 1);
}

static void test_truncation(void **state)
{
	char big[5000];
	char fit[NX_LOG_MSG_MAX];
	size_t mlen = strlen(NX_LOG_TRUNCATED);

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[0] = 'A';

	nx_info("%s", big);
	assert_int_equal(strlen(cap.msg), NX_LOG_MSG_MAX - 1);
	assert_int_equal(cap.msg[0], 'A');
	assert_string_equal(cap.msg + NX_LOG_MSG_MAX - 1 - mlen, NX_LOG_TRUNCATED);

	/* Exactly the largest message that fits: untouched. */
	memset(fit, 'y', sizeof(fit) - 1);
	fit[sizeof(fit) - 1] = '\0';
	nx_info("%s", fit);
	assert_string_equal(cap.msg, fit);

	/* One byte more: truncated. */
	nx_info("%s!", fit);
	assert_int_equal(strlen(cap.msg), NX_LOG_MSG_MAX - 1);
	assert_string_equal(cap.msg + NX_LOG_MSG_MAX - 1 - mlen, NX_LOG_TRUNCATED);

	/* A debug prefix shares the same buffer. */
	nx_debug_set("test-peers", true, NULL);
	nx_debug(&dbg_tpeers, "%s", big);
	assert_int_equal(strlen(cap.msg), NX_LOG_MSG_MAX - 1);
	assert_memory_equal(cap.msg, "[test-peers] A", 14);
	assert_string_equal(cap.msg + NX_LOG_MSG_MAX - 1 - mlen, NX_LOG_TRUNCATED);
}

static void test_timestamp_format(void **state)
{
	char buf[NX_LOG_TIME_LEN];

	(void)state;
	assert_int_equal(nx_log_format_time(buf, sizeof(buf), 1796032800123456789ull), 24);
	assert_string_equal(buf, "2026-11-30T10:00:00.123Z");

	assert_int_equal(nx_log_format_time(buf, sizeof(buf), 0), 24);
	assert_string_equal(buf, "1970-01-01T00:00:00.000Z");

	/* Milliseconds are truncated, never rounded up into the next second. */
	assert_int_equal(nx_log_format_time(buf, sizeof(buf), 1796032859999999999ull), 24);
	assert_string_equal(buf, "2026-11-30T10:00:59.999Z");

	assert_int_equal(nx_log_format_time(buf, NX_LOG_TIME_LEN - 1, 0), -ENOSPC);
}

static void test_stderr_line(void **state)
{
	char out[2048];
	int saved, rfd;
	size_t len;

	(void)state;
	nx_log_init("tprog", NX_LOG_TO_STDERR, NX_LOG_INFO);
	assert_int_equal(nx_log_get_targets(), NX_LOG_TO_STDERR);

	rfd = stderr_capture_begin(&saved);
	nx_notice("hello %d", 42);
	nx_log(NX_LOG_DEBUG, "filtered");
	len = stderr_capture_end(saved, rfd, out, sizeof(out));

	/* "2026-11-30T10:00:00.123Z tprog: NOTICE: hello 42\n" */
	assert_int_equal(len, 24 + strlen(" tprog: NOTICE: hello 42\n"));
	assert_int_equal(out[4], '-');
	assert_int_equal(out[7], '-');
	assert_int_equal(out[10], 'T');
	assert_int_equal(out[13], ':');
	assert_int_equal(out[16], ':');
	assert_int_equal(out[19], '.');
	assert_int_equal(out[23], 'Z');
	assert_string_equal(out + 24, " tprog: NOTICE: hello 42\n");
}

static void test_syslog_only_is_silent_on_stderr(void **state)
{
	char out[256];
	int saved, rfd;

	(void)state;
	nx_log_init("tprog", NX_LOG_TO_SYSLOG, NX_LOG_DEBUG);
	nx_log_set_sink(capture_sink, &cap);

	rfd = stderr_capture_begin(&saved);
	nx_log(NX_LOG_DEBUG, "unit test: syslog-only target check");
	assert_int_equal(stderr_capture_end(saved, rfd, out, sizeof(out)), 0);
	assert_int_equal(cap.count, 1); /* the message was emitted */

	/* Targets 0: the sink alone. */
	nx_log_init("tprog", 0, NX_LOG_DEBUG);
	rfd = stderr_capture_begin(&saved);
	nx_err("nowhere");
	assert_int_equal(stderr_capture_end(saved, rfd, out, sizeof(out)), 0);
	assert_int_equal(cap.count, 2);
}

static int evaluations;

static int count_evaluation(void)
{
	return ++evaluations;
}

static void test_debug_switch(void **state)
{
	(void)state;
	/* Registered before main() by NX_DEBUG_DEFINE. */
	assert_ptr_equal(nx_debug_find("test-peers"), &dbg_tpeers);
	assert_ptr_equal(nx_debug_find("test-nat"), &dbg_tnat);
	assert_string_equal(dbg_tpeers.help, "Peer path selection");
	assert_false(nx_debug_on(&dbg_tpeers));

	/* Off: one branch, arguments not evaluated. */
	nx_debug(&dbg_tpeers, "value %d", count_evaluation());
	assert_int_equal(evaluations, 0);
	assert_int_equal(cap.count, 0);

	/* On: emitted at DEBUG even when the level filter is stricter. */
	nx_log_set_level(NX_LOG_ERR);
	assert_int_equal(nx_debug_set("test-peers", true, NULL), 0);
	assert_true(nx_debug_on(&dbg_tpeers));
	nx_debug(&dbg_tpeers, "value %d", count_evaluation());
	assert_int_equal(evaluations, 1);
	assert_int_equal(cap.count, 1);
	assert_int_equal(cap.level, NX_LOG_DEBUG);
	assert_string_equal(cap.msg, "[test-peers] value 1");

	nx_debug(&dbg_tnat, "still off");
	assert_int_equal(cap.count, 1);

	assert_int_equal(nx_debug_set("test-peers", false, NULL), 0);
	nx_debug(&dbg_tpeers, "off again");
	assert_int_equal(cap.count, 1);
}

struct walk {
	unsigned n;
	const char *names[16];
	unsigned stop_after;
};

static int walk_fn(struct nx_debug *dbg, void *arg)
{
	struct walk *w = arg;

	if (w->n < 16)
		w->names[w->n] = dbg->name;
	w->n++;
	return w->stop_after && w->n == w->stop_after ? 7 : 0;
}

static void test_debug_registry(void **state)
{
	struct nx_debug a = { .name = "aaa", .help = "first" };
	struct nx_debug z = { .name = "zzz", .help = "last" };
	struct nx_debug dup = { .name = "test-peers", .help = "dup" };
	struct nx_debug bad = { .name = "Bad", .help = "upper case" };
	struct nx_debug longname = { .name = "abcdefghijklmnopqrstuvwxyz0123456" };
	struct nx_debug empty = { .name = "" };
	struct nx_debug noname = { .name = NULL };
	struct nx_debug spaced = { .name = "a b" };
	struct walk w = { 0 };
	struct nx_err err;

	(void)state;
	assert_int_equal(nx_debug_register(&z), 0);
	assert_int_equal(nx_debug_register(&a), 0);
	assert_int_equal(nx_debug_register(&a), 0); /* idempotent */
	assert_int_equal(nx_debug_register(&dup), -EEXIST);
	assert_int_equal(nx_debug_register(&bad), -EINVAL);
	assert_int_equal(nx_debug_register(&longname), -EINVAL);
	assert_int_equal(nx_debug_register(&empty), -EINVAL);
	assert_int_equal(nx_debug_register(&noname), -EINVAL);
	assert_int_equal(nx_debug_register(&spaced), -EINVAL);
	assert_int_equal(nx_debug_register(NULL), -EINVAL);
	assert_ptr_equal(nx_debug_find("test-peers"), &dbg_tpeers);

	/* Walk in name order. */
	assert_int_equal(nx_debug_foreach(walk_fn, &w), 0);
	assert_int_equal(w.n, 4);
	assert_string_equal(w.names[0], "aaa");
	assert_string_equal(w.names[1], "test-nat");
	assert_string_equal(w.names[2], "test-peers");
	assert_string_equal(w.names[3], "zzz");

	memset(&w, 0, sizeof(w));
	w.stop_after = 2;
	assert_int_equal(nx_debug_foreach(walk_fn, &w), 7);
	assert_int_equal(w.n, 2);

	/* Unknown names. */
	nx_err_clear(&err);
	assert_int_equal(nx_debug_set("nosuch", true, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "\"nosuch\""));
	assert_non_null(strstr(err.msg, "unknown debug subsystem"));
	assert_int_equal(nx_debug_set("", true, NULL), -ENOENT);
	assert_int_equal(nx_debug_set(NULL, true, NULL), -ENOENT);
	assert_null(nx_debug_find("nosuch"));
	assert_null(nx_debug_find(NULL));

	/* All on, all off. */
	nx_debug_set_all(true);
	assert_true(nx_debug_on(&a) && nx_debug_on(&z) && nx_debug_on(&dbg_tpeers) &&
		    nx_debug_on(&dbg_tnat));
	assert_int_equal(nx_debug_set("zzz", false, NULL), 0);
	assert_false(nx_debug_on(&z));
	assert_true(nx_debug_on(&a));
	nx_debug_set_all(false);
	assert_false(nx_debug_on(&a) || nx_debug_on(&dbg_tpeers) || nx_debug_on(&dbg_tnat));

	/* Unregistering turns the switch off and forgets it. */
	nx_debug_set("aaa", true, NULL);
	nx_debug_unregister(&a);
	assert_false(nx_debug_on(&a));
	assert_null(nx_debug_find("aaa"));
	assert_int_equal(nx_debug_set("aaa", true, NULL), -ENOENT);
	nx_debug_unregister(&a); /* absent: no-op */
	nx_debug_unregister(&z);
	nx_debug_unregister(NULL);
	assert_null(nx_debug_find("zzz"));
}

#define THREADS		    4
#define MESSAGES_PER_THREAD 200

static void *log_thread(void *arg)
{
	int i;

	for (i = 0; i < MESSAGES_PER_THREAD; i++)
		nx_info("thread %ld message %d", (long)(intptr_t)arg, i);
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t th[THREADS];
	long i;

	(void)state;
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, log_thread, (void *)(intptr_t)i), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(cap.count, THREADS * MESSAGES_PER_THREAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_capture, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_reentry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timestamp_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stderr_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syslog_only_is_silent_on_stderr, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_debug_switch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debug_registry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
