/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lib/loop: timers (fire once, re-arm moves, cancel, jitter
 * bounds), fd watchers on a pipe, signal handlers, coalesced defers and
 * stopping the loop from a callback.  Timeouts are a few milliseconds and
 * upper bounds are loose: the test machine may be busy.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/log.h"
#include "lib/loop.h"

/* Generous ceiling for "should have happened by now" on a busy machine. */
#define SLACK_MS 400

struct fixture {
	struct nx_loop *loop;
	struct nx_timer guard; /* stops a run that would otherwise hang */
	bool guard_fired;
};

static void guard_cb(struct nx_timer *t, void *arg)
{
	struct fixture *f = arg;

	(void)t;
	f->guard_fired = true;
	nx_loop_stop(f->loop);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->loop = nx_loop_new();
	assert_non_null(f->loop);
	nx_timer_init(f->loop, &f->guard, guard_cb, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nx_timer_fini(&f->guard);
	nx_loop_free(f->loop);
	free(f);
	return 0;
}

/* Runs the loop until a callback stops it or ms pass. */
static void run_for(struct fixture *f, uint64_t ms)
{
	f->guard_fired = false;
	nx_timer_arm(&f->guard, ms);
	assert_int_equal(nx_loop_run(f->loop), 0);
	nx_timer_cancel(&f->guard);
}

struct tcount {
	unsigned fired;
	uint64_t at_ms;
	bool armed_in_cb;
	struct nx_loop *stop; /* stop this loop when fired, if set */
};

static void count_cb(struct nx_timer *t, void *arg)
{
	struct tcount *c = arg;

	c->fired++;
	c->at_ms = nx_now_ms();
	c->armed_in_cb = nx_timer_armed(t);
	if (c->stop)
		nx_loop_stop(c->stop);
}

static void test_clocks(void **state)
{
	uint64_t a, b, wall;

	(void)state;
	a = nx_now_ms();
	b = nx_now_ms();
	assert_true(b >= a);
	wall = nx_now_ns_wall();
	assert_true(wall > 1700000000ull * 1000000000ull); /* after 2023 */
}

static void test_timer_fires_once(void **state)
{
	struct fixture *f = *state;
	struct tcount c = { 0 };
	struct nx_timer t;
	uint64_t start;

	nx_timer_init(f->loop, &t, count_cb, &c);
	assert_false(nx_timer_armed(&t));
	assert_int_equal(nx_timer_remaining_ms(&t), 0);

	start = nx_now_ms();
	nx_timer_arm(&t, 3);
	assert_true(nx_timer_armed(&t));
	assert_true(nx_timer_remaining_ms(&t) <= 3);

	run_for(f, 30);
	assert_true(f->guard_fired);
	assert_int_equal(c.fired, 1);
	assert_false(c.armed_in_cb); /* one-shot: disarmed before its callback */
	assert_false(nx_timer_armed(&t));
	assert_true(c.at_ms - start >= 3);
	assert_true(c.at_ms - start <= SLACK_MS);

	nx_timer_fini(&t);
	nx_timer_fini(&t); /* twice is harmless */
}

static void test_timer_rearm_moves(void **state)
{
	struct fixture *f = *state;
	struct tcount c = { 0 };
	struct nx_timer t;
	uint64_t start;

	nx_timer_init(f->loop, &t, count_cb, &c);

	/* Later: arm at 3 ms, move to 40 ms; at 15 ms it has not fired. */
	start = nx_now_ms();
	nx_timer_arm(&t, 3);
	nx_timer_arm(&t, 40);
	assert_true(nx_timer_remaining_ms(&t) > 3);
	run_for(f, 15);
	if (nx_now_ms() - start < 40) { /* a stalled machine may overshoot */
		assert_int_equal(c.fired, 0);
		assert_true(nx_timer_armed(&t));
	}
	c.stop = f->loop;
	run_for(f, SLACK_MS);
	assert_false(f->guard_fired);
	assert_int_equal(c.fired, 1);
	assert_true(c.at_ms - start >= 40);

	/* Sooner: arm at 300 ms, move to 2 ms; fires once, early. */
	memset(&c, 0, sizeof(c));
	start = nx_now_ms();
	nx_timer_arm(&t, 300);
	nx_timer_arm(&t, 2);
	run_for(f, 30);
	assert_int_equal(c.fired, 1);
	assert_true(c.at_ms - start < 300);

	/* Many re-arms: still one timer, one callback. */
	memset(&c, 0, sizeof(c));
	for (int i = 0; i < 100; i++)
		nx_timer_arm(&t, 1);
	run_for(f, 20);
	assert_int_equal(c.fired, 1);

	nx_timer_fini(&t);
}

static void test_timer_cancel(void **state)
{
	struct fixture *f = *state;
	struct tcount c = { 0 };
	struct nx_timer t, zeroed;

	memset(&zeroed, 0, sizeof(zeroed));
	nx_timer_cancel(&zeroed); /* never initialised: harmless */
	nx_timer_fini(&zeroed);
	assert_false(nx_timer_armed(&zeroed));

	nx_timer_init(f->loop, &t, count_cb, &c);
	nx_timer_cancel(&t); /* not armed: harmless */
	nx_timer_arm(&t, 2);
	nx_timer_cancel(&t);
	assert_false(nx_timer_armed(&t));
	assert_int_equal(nx_timer_remaining_ms(&t), 0);
	nx_timer_cancel(&t);
	run_for(f, 20);
	assert_int_equal(c.fired, 0);

	/* fini of an armed timer cancels it too. */
	nx_timer_arm(&t, 2);
	nx_timer_fini(&t);
	run_for(f, 20);
	assert_int_equal(c.fired, 0);
}

static void test_timer_jitter_bounds(void **state)
{
	struct fixture *f = *state;
	struct tcount c = { 0 };
	struct nx_timer t;
	uint64_t r, lo = UINT64_MAX, hi = 0, start;
	int i;

	nx_timer_init(f->loop, &t, count_cb, &c);
	for (i = 0; i < 500; i++) {
		start = nx_now_ms();
		nx_timer_arm_jitter(&t, 1000, 1000);
		r = nx_timer_remaining_ms(&t);
		/* remaining = delay - elapsed since arming */
		assert_true(r <= 2000);
		assert_true(r + (nx_now_ms() - start) >= 1000);
		lo = r < lo ? r : lo;
		hi = r > hi ? r : hi;
	}
	/* Spread over the range (failure odds ~2^-500 per side). */
	assert_true(lo < 1500);
	assert_true(hi >= 1500);

	/* No jitter: exactly base. */
	start = nx_now_ms();
	nx_timer_arm_jitter(&t, 1000, 0);
	r = nx_timer_remaining_ms(&t);
	assert_true(r <= 1000 && r + (nx_now_ms() - start) >= 1000);

	/* Huge values saturate instead of wrapping to "now". */
	nx_timer_arm_jitter(&t, UINT64_MAX - 5, UINT64_MAX);
	assert_true(nx_timer_remaining_ms(&t) > 1000000);
	nx_timer_cancel(&t);

	/* And it really fires inside the window. */
	start = nx_now_ms();
	nx_timer_arm_jitter(&t, 2, 3);
	c.stop = f->loop;
	run_for(f, SLACK_MS);
	assert_int_equal(c.fired, 1);
	assert_true(c.at_ms - start >= 2);

	nx_timer_fini(&t);
}

static void rearm_self_cb(struct nx_timer *t, void *arg)
{
	struct tcount *c = arg;

	if (++c->fired < 3)
		nx_timer_arm(t, 1);
	else
		nx_loop_stop(c->stop);
}

static void test_timer_periodic_from_callback(void **state)
{
	struct fixture *f = *state;
	struct tcount c = { .stop = f->loop };
	struct nx_timer t;

	nx_timer_init(f->loop, &t, rearm_self_cb, &c);
	nx_timer_arm(&t, 1);
	run_for(f, SLACK_MS);
	assert_false(f->guard_fired);
	assert_int_equal(c.fired, 3);
	nx_timer_fini(&t);
}

struct pipe_ctx {
	struct nx_fdwatch rw, ww;
	unsigned reads, writes;
	char last;
	struct nx_loop *loop;
	bool disable_write_on_fire;
	bool fini_on_read;
};

static void pipe_cb(struct nx_fdwatch *w, int fd, unsigned what, void *arg)
{
	struct pipe_ctx *p = arg;

	if (what == NX_READ) {
		assert_ptr_equal(w, &p->rw);
		assert_int_equal(read(fd, &p->last, 1), 1);
		p->reads++;
		if (p->fini_on_read)
			nx_fdwatch_fini(w); /* from its own callback */
		nx_loop_stop(p->loop);
	} else {
		assert_int_equal(what, NX_WRITE);
		assert_ptr_equal(w, &p->ww);
		p->writes++;
		if (p->disable_write_on_fire)
			nx_fdwatch_disable(w, NX_WRITE);
	}
}

static void test_fdwatch_pipe(void **state)
{
	struct fixture *f = *state;
	struct pipe_ctx p = { .loop = f->loop };
	int fds[2];

	assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(nx_fdwatch_init(f->loop, &p.rw, fds[0], NX_READ, pipe_cb, &p), 0);
	assert_int_equal(nx_fdwatch_enabled(&p.rw), NX_READ);

	/* Nothing to read: no callback. */
	run_for(f, 10);
	assert_true(f->guard_fired);
	assert_int_equal(p.reads, 0);

	assert_int_equal(write(fds[1], "a", 1), 1);
	run_for(f, SLACK_MS);
	assert_false(f->guard_fired);
	assert_int_equal(p.reads, 1);
	assert_int_equal(p.last, 'a');

	/* Disabled: the byte waits. */
	nx_fdwatch_disable(&p.rw, NX_READ);
	assert_int_equal(nx_fdwatch_enabled(&p.rw), 0);
	assert_int_equal(write(fds[1], "b", 1), 1);
	run_for(f, 15);
	assert_true(f->guard_fired);
	assert_int_equal(p.reads, 1);

	/* Re-enabled: it is read. */
	assert_int_equal(nx_fdwatch_enable(&p.rw, NX_READ), 0);
	assert_int_equal(nx_fdwatch_enable(&p.rw, NX_READ), 0); /* idempotent */
	run_for(f, SLACK_MS);
	assert_int_equal(p.reads, 2);
	assert_int_equal(p.last, 'b');

	/* A write watcher on an empty pipe is ready at once; disabling it
	 * from its callback stops it. */
	p.disable_write_on_fire = true;
	assert_int_equal(nx_fdwatch_init(f->loop, &p.ww, fds[1], NX_WRITE, pipe_cb, &p), 0);
	run_for(f, 15);
	assert_int_equal(p.writes, 1);
	assert_int_equal(nx_fdwatch_enabled(&p.ww), 0);
	nx_fdwatch_fini(&p.ww);

	/* A watcher may fini itself from its callback. */
	p.fini_on_read = true;
	assert_int_equal(write(fds[1], "c", 1), 1);
	run_for(f, SLACK_MS);
	assert_int_equal(p.reads, 3);
	assert_int_equal(nx_fdwatch_enabled(&p.rw), 0);
	nx_fdwatch_fini(&p.rw); /* already done: harmless */

	close(fds[0]);
	close(fds[1]);
}

static void test_fdwatch_bad_input(void **state)
{
	struct fixture *f = *state;
	struct pipe_ctx p = { .loop = f->loop };
	struct nx_fdwatch w;
	int fd;

	assert_int_equal(nx_fdwatch_init(f->loop, &w, -1, NX_READ, pipe_cb, &p), -EBADF);
	nx_fdwatch_fini(&w); /* left uninitialised: harmless */
	assert_int_equal(nx_fdwatch_init(f->loop, &w, 0, 0x10, pipe_cb, &p), -EINVAL);

	/* epoll refuses regular files; the error comes back, nothing leaks. */
	fd = open("/dev/null", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(nx_fdwatch_init(f->loop, &w, fd, NX_READ, pipe_cb, &p), -EIO);
	assert_int_equal(nx_fdwatch_enabled(&w), 0);
	/* Initialised with nothing enabled is fine. */
	assert_int_equal(nx_fdwatch_init(f->loop, &w, fd, 0, pipe_cb, &p), 0);
	assert_int_equal(nx_fdwatch_enable(&w, 0x4), -EINVAL);
	nx_fdwatch_fini(&w);
	close(fd);
}

struct sig_ctx {
	unsigned got;
	int signo;
	struct nx_loop *loop;
};

static void on_sig(int signo, void *arg)
{
	struct sig_ctx *s = arg;

	s->got++;
	s->signo = signo;
	nx_loop_stop(s->loop);
}

static void raise_cb(struct nx_timer *t, void *arg)
{
	(void)t;
	(void)arg;
	raise(SIGUSR1);
}

static void test_signal(void **state)
{
	struct fixture *f = *state;
	struct sig_ctx s = { .loop = f->loop };
	struct nx_timer t;

	assert_int_equal(nx_loop_on_signal(f->loop, SIGUSR1, on_sig, &s), 0);
	assert_int_equal(nx_loop_on_signal(f->loop, 0, on_sig, &s), -EINVAL);
	assert_int_equal(nx_loop_on_signal(f->loop, SIGKILL, on_sig, &s), -EINVAL);
	assert_int_equal(nx_loop_on_signal(f->loop, NSIG, on_sig, &s), -EINVAL);

	nx_timer_init(f->loop, &t, raise_cb, NULL);
	nx_timer_arm(&t, 1);
	run_for(f, SLACK_MS);
	assert_false(f->guard_fired);
	assert_int_equal(s.got, 1);
	assert_int_equal(s.signo, SIGUSR1);
	nx_timer_fini(&t);
	/* The handler is freed with the loop in teardown. */
}

struct defer_ctx {
	struct nx_defer d;
	unsigned calls;
	unsigned reschedule; /* times to reschedule itself */
	bool scheduled_in_cb;
};

static void defer_cb(struct nx_defer *d, void *arg)
{
	struct defer_ctx *c = arg;

	c->calls++;
	c->scheduled_in_cb = nx_defer_scheduled(d);
	if (c->reschedule) {
		c->reschedule--;
		nx_defer_schedule(d);
		nx_defer_schedule(d);
	}
}

static void test_defer_coalesces(void **state)
{
	struct fixture *f = *state;
	struct defer_ctx c = { 0 };

	nx_defer_init(f->loop, &c.d, defer_cb, &c);
	assert_false(nx_defer_scheduled(&c.d));
	nx_defer_schedule(&c.d);
	nx_defer_schedule(&c.d);
	nx_defer_schedule(&c.d);
	assert_true(nx_defer_scheduled(&c.d));
	run_for(f, 15);
	assert_int_equal(c.calls, 1);
	assert_false(c.scheduled_in_cb);
	assert_false(nx_defer_scheduled(&c.d));

	/* Cancelled: no call. */
	nx_defer_schedule(&c.d);
	nx_defer_cancel(&c.d);
	nx_defer_cancel(&c.d);
	run_for(f, 10);
	assert_int_equal(c.calls, 1);

	/* Rescheduling from the callback runs it again, once per request. */
	c.reschedule = 3;
	nx_defer_schedule(&c.d);
	run_for(f, 20);
	assert_int_equal(c.calls, 1 + 4);

	nx_defer_schedule(&c.d);
	nx_defer_fini(&c.d); /* fini cancels */
	run_for(f, 10);
	assert_int_equal(c.calls, 5);
	nx_defer_fini(&c.d);
}

static void forever_cb(struct nx_defer *d, void *arg)
{
	unsigned *n = arg;

	(*n)++;
	nx_defer_schedule(d);
}

static void test_defer_does_not_starve(void **state)
{
	struct fixture *f = *state;
	struct tcount c = { .stop = f->loop };
	struct nx_defer d;
	struct nx_timer t;
	unsigned spins = 0;

	/* A defer that always reschedules itself still lets timers run. */
	nx_defer_init(f->loop, &d, forever_cb, &spins);
	nx_timer_init(f->loop, &t, count_cb, &c);
	nx_defer_schedule(&d);
	nx_timer_arm(&t, 5);
	run_for(f, SLACK_MS);
	assert_false(f->guard_fired);
	assert_int_equal(c.fired, 1);
	assert_true(spins > 1);
	nx_timer_fini(&t);
	nx_defer_fini(&d);
}

struct stop_ctx {
	struct nx_loop *loop;
	unsigned after_stop;
};

static void stop_cb(struct nx_timer *t, void *arg)
{
	struct stop_ctx *s = arg;

	(void)t;
	nx_loop_stop(s->loop);
}

static void late_cb(struct nx_timer *t, void *arg)
{
	struct stop_ctx *s = arg;

	(void)t;
	s->after_stop++;
}

static void test_stop_from_callback(void **state)
{
	struct stop_ctx s = { 0 };
	struct nx_loop *loop = nx_loop_new();
	struct nx_timer stop, late;
	uint64_t start;

	(void)state;
	assert_non_null(loop);
	assert_non_null(nx_loop_base(loop));
	s.loop = loop;
	nx_timer_init(loop, &stop, stop_cb, &s);
	nx_timer_init(loop, &late, late_cb, &s);
	nx_timer_arm(&stop, 2);
	nx_timer_arm(&late, 60000);

	start = nx_now_ms();
	assert_int_equal(nx_loop_run(loop), 0);
	assert_true(nx_now_ms() - start < 60000);
	assert_int_equal(s.after_stop, 0);
	assert_true(nx_timer_armed(&late));

	/* The loop can be run again after a stop. */
	nx_timer_arm(&stop, 1);
	assert_int_equal(nx_loop_run(loop), 0);

	nx_timer_fini(&late);
	nx_timer_fini(&stop);
	nx_loop_free(loop);
	nx_loop_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clocks),
		cmocka_unit_test_setup_teardown(test_timer_fires_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_rearm_moves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_jitter_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_periodic_from_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fdwatch_pipe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fdwatch_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defer_coalesces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defer_does_not_starve, setup, teardown),
		cmocka_unit_test(test_stop_from_callback),
	};

	/* libevent's debug mode catches misuse of events (double assign,
	 * use after fini); it must be on before the first base exists. */
	event_enable_debug_mode();
	nx_log_init("test_loop", NX_LOG_TO_STDERR, NX_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
