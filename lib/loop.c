/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Event loop glue over libevent 2; see loop.h.  Each handle embeds its
 * struct event and is assigned (not allocated) at init, so initialising a
 * handle cannot fail and libevent's own pending state answers "is it
 * scheduled?" — the single source of truth that prevents double scheduling.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/loop.h"

struct loop_signal {
	struct loop_signal *next;
	struct event *ev;
	nx_signal_fn cb;
	void *arg;
	int signo;
};

struct nx_loop {
	struct event_base *base;
	struct loop_signal *signals;
	unsigned live; /* initialised timers, fd watchers and defers */
};

/* --- clocks ------------------------------------------------------------- */

uint64_t nx_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t nx_now_ns_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static struct timeval ms_to_tv(uint64_t msec)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(msec / 1000u);
	tv.tv_usec = (suseconds_t)(msec % 1000u * 1000u);
	return tv;
}

/* --- jitter ------------------------------------------------------------- */

/*
 * Jitter only has to de-synchronise peers, not resist prediction: a small
 * per-thread generator (SplitMix64) seeded from the kernel is plenty.
 */
static __thread uint64_t rng_state;
static __thread bool rng_seeded;

static uint64_t rng_next(void)
{
	uint64_t z;

	if (!rng_seeded) {
		if (getrandom(&rng_state, sizeof(rng_state), GRND_NONBLOCK) !=
		    (ssize_t)sizeof(rng_state))
			rng_state = nx_now_ns_wall() ^ ((uint64_t)getpid() << 32) ^
				    (uint64_t)(uintptr_t)&rng_state;
		rng_seeded = true;
	}
	rng_state += 0x9e3779b97f4a7c15ull;
	z = rng_state;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, max], without modulo bias. */
static uint64_t rng_upto(uint64_t max)
{
	uint64_t n, floor, r;

	if (max == UINT64_MAX)
		return rng_next();
	n = max + 1;
	floor = (0 - n) % n; /* 2^64 mod n: reject the short first bucket */
	do {
		r = rng_next();
	} while (r < floor);
	return r % n;
}

/* --- the loop ----------------------------------------------------------- */

static void libevent_log(int severity, const char *msg)
{
	int level;

	switch (severity) {
	case EVENT_LOG_DEBUG:
		level = NX_LOG_DEBUG;
		break;
	case EVENT_LOG_MSG:
		level = NX_LOG_INFO;
		break;
	case EVENT_LOG_WARN:
		level = NX_LOG_WARNING;
		break;
	default:
		level = NX_LOG_ERR;
		break;
	}
	nx_log(level, "libevent: %s", msg);
}

static pthread_once_t libevent_once = PTHREAD_ONCE_INIT;

static void libevent_setup(void)
{
	event_set_log_callback(libevent_log);
}

struct nx_loop *nx_loop_new(void)
{
	struct event_config *cfg = NULL;
	struct nx_loop *loop;

	pthread_once(&libevent_once, libevent_setup);

	loop = calloc(1, sizeof(*loop));
	if (!loop)
		goto fail;
	cfg = event_config_new();
	if (!cfg)
		goto fail;
	/* Millisecond timers need a precise clock, and a fresh reading at
	 * every arm so that slow callbacks do not shorten timers. */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER | EVENT_BASE_FLAG_NO_CACHE_TIME);
	loop->base = event_base_new_with_config(cfg);
	if (!loop->base)
		goto fail;
	event_config_free(cfg);
	return loop;

fail:
	nx_err("cannot create the event loop");
	if (cfg)
		event_config_free(cfg);
	free(loop);
	return NULL;
}

void nx_loop_free(struct nx_loop *loop)
{
	struct loop_signal *s, *next;

	if (!loop)
		return;
	if (loop->live)
		nx_err("event loop freed with %u timers/watchers/defers still initialised",
		       loop->live);
	assert(loop->live == 0);

	for (s = loop->signals; s; s = next) {
		next = s->next;
		event_free(s->ev);
		free(s);
	}
	event_base_free(loop->base);
	free(loop);
}

int nx_loop_run(struct nx_loop *loop)
{
	if (event_base_loop(loop->base, EVLOOP_NO_EXIT_ON_EMPTY) < 0)
		return -EIO;
	return 0;
}

void nx_loop_stop(struct nx_loop *loop)
{
	event_base_loopbreak(loop->base);
}

struct event_base *nx_loop_base(struct nx_loop *loop)
{
	return loop->base;
}

static void signal_trampoline(evutil_socket_t fd, short what, void *arg)
{
	struct loop_signal *s = arg;

	(void)fd;
	(void)what;
	s->cb(s->signo, s->arg);
}

int nx_loop_on_signal(struct nx_loop *loop, int signo, nx_signal_fn cb, void *arg)
{
	struct loop_signal *s;

	if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP || !cb)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cb = cb;
	s->arg = arg;
	s->signo = signo;
	s->ev = evsignal_new(loop->base, signo, signal_trampoline, s);
	if (!s->ev) {
		free(s);
		return -ENOMEM;
	}
	if (event_add(s->ev, NULL) < 0) {
		event_free(s->ev);
		free(s);
		return -EIO;
	}
	s->next = loop->signals;
	loop->signals = s;
	return 0;
}

/* Every handle's fini ends here: the event is idle and forgotten. */
static void handle_release(struct nx_loop *loop, struct event *ev)
{
	event_del(ev);
	event_debug_unassign(ev);
	assert(loop->live > 0);
	loop->live--;
}

/* --- timers ------------------------------------------------------------- */

static void timer_trampoline(evutil_socket_t fd, short what, void *arg)
{
	struct nx_timer *t = arg;

	(void)fd;
	(void)what;
	t->cb(t, t->arg);
}

void nx_timer_init(struct nx_loop *loop, struct nx_timer *t, nx_timer_fn cb, void *arg)
{
	memset(t, 0, sizeof(*t));
	event_assign(&t->ev, loop->base, -1, 0, timer_trampoline, t);
	t->loop = loop;
	t->cb = cb;
	t->arg = arg;
	loop->live++;
}

void nx_timer_arm(struct nx_timer *t, uint64_t msec)
{
	struct timeval tv = ms_to_tv(msec);

	assert(t->loop);
	t->deadline_ms = add_sat(nx_now_ms(), msec);
	/* On a pending event this replaces the timeout: it moves, and is
	 * never queued twice. */
	if (evtimer_add(&t->ev, &tv) < 0)
		nx_err("cannot arm a %llu ms timer", (unsigned long long)msec);
}

void nx_timer_arm_jitter(struct nx_timer *t, uint64_t base_ms, uint64_t jitter_ms)
{
	nx_timer_arm(t, add_sat(base_ms, rng_upto(jitter_ms)));
}

void nx_timer_cancel(struct nx_timer *t)
{
	if (t->loop)
		evtimer_del(&t->ev);
}

bool nx_timer_armed(const struct nx_timer *t)
{
	return t->loop && evtimer_pending(&t->ev, NULL);
}

uint64_t nx_timer_remaining_ms(const struct nx_timer *t)
{
	uint64_t now;

	if (!nx_timer_armed(t))
		return 0;
	now = nx_now_ms();
	return t->deadline_ms > now ? t->deadline_ms - now : 0;
}

void nx_timer_fini(struct nx_timer *t)
{
	if (!t->loop)
		return;
	handle_release(t->loop, &t->ev);
	t->loop = NULL;
}

/* --- fd watchers -------------------------------------------------------- */

static void fdwatch_read(evutil_socket_t fd, short what, void *arg)
{
	struct nx_fdwatch *w = arg;

	(void)what;
	w->cb(w, (int)fd, NX_READ, w->arg);
}

static void fdwatch_write(evutil_socket_t fd, short what, void *arg)
{
	struct nx_fdwatch *w = arg;

	(void)what;
	w->cb(w, (int)fd, NX_WRITE, w->arg);
}

int nx_fdwatch_init(struct nx_loop *loop, struct nx_fdwatch *w, int fd, unsigned what,
		    nx_fdwatch_fn cb, void *arg)
{
	int rc;

	memset(w, 0, sizeof(*w));
	if (fd < 0)
		return -EBADF;
	if (what & ~(NX_READ | NX_WRITE))
		return -EINVAL;

	event_assign(&w->rev, loop->base, fd, EV_READ | EV_PERSIST, fdwatch_read, w);
	event_assign(&w->wev, loop->base, fd, EV_WRITE | EV_PERSIST, fdwatch_write, w);
	w->loop = loop;
	w->cb = cb;
	w->arg = arg;
	w->fd = fd;
	loop->live += 2;

	rc = nx_fdwatch_enable(w, what);
	if (rc < 0)
		nx_fdwatch_fini(w);
	return rc;
}

int nx_fdwatch_enable(struct nx_fdwatch *w, unsigned what)
{
	assert(w->loop);
	if (what & ~(NX_READ | NX_WRITE))
		return -EINVAL;
	if ((what & NX_READ) && !(w->enabled & NX_READ)) {
		if (event_add(&w->rev, NULL) < 0)
			return -EIO;
		w->enabled |= NX_READ;
	}
	if ((what & NX_WRITE) && !(w->enabled & NX_WRITE)) {
		if (event_add(&w->wev, NULL) < 0)
			return -EIO;
		w->enabled |= NX_WRITE;
	}
	return 0;
}

void nx_fdwatch_disable(struct nx_fdwatch *w, unsigned what)
{
	if (!w->loop)
		return;
	if ((what & NX_READ) && (w->enabled & NX_READ)) {
		event_del(&w->rev);
		w->enabled &= ~NX_READ;
	}
	if ((what & NX_WRITE) && (w->enabled & NX_WRITE)) {
		event_del(&w->wev);
		w->enabled &= ~NX_WRITE;
	}
}

unsigned nx_fdwatch_enabled(const struct nx_fdwatch *w)
{
	return w->loop ? w->enabled : 0;
}

void nx_fdwatch_fini(struct nx_fdwatch *w)
{
	if (!w->loop)
		return;
	handle_release(w->loop, &w->rev);
	handle_release(w->loop, &w->wev);
	w->enabled = 0;
	w->loop = NULL;
}

/* --- defer -------------------------------------------------------------- */

/*
 * A defer is a zero-length timer.  Expired timers are collected once per
 * iteration, after polling I/O, so one scheduled from a callback runs on
 * the next iteration rather than in the current one (which event_active()
 * would do, and which could starve I/O).
 */
static void defer_trampoline(evutil_socket_t fd, short what, void *arg)
{
	struct nx_defer *d = arg;

	(void)fd;
	(void)what;
	d->cb(d, d->arg);
}

void nx_defer_init(struct nx_loop *loop, struct nx_defer *d, nx_defer_fn cb, void *arg)
{
	memset(d, 0, sizeof(*d));
	event_assign(&d->ev, loop->base, -1, 0, defer_trampoline, d);
	d->loop = loop;
	d->cb = cb;
	d->arg = arg;
	loop->live++;
}

void nx_defer_schedule(struct nx_defer *d)
{
	static const struct timeval zero = { 0, 0 };

	assert(d->loop);
	if (evtimer_pending(&d->ev, NULL))
		return;
	if (evtimer_add(&d->ev, &zero) < 0)
		nx_err("cannot schedule deferred work");
}

void nx_defer_cancel(struct nx_defer *d)
{
	if (d->loop)
		evtimer_del(&d->ev);
}

bool nx_defer_scheduled(const struct nx_defer *d)
{
	return d->loop && evtimer_pending(&d->ev, NULL);
}

void nx_defer_fini(struct nx_defer *d)
{
	if (!d->loop)
		return;
	handle_release(d->loop, &d->ev);
	d->loop = NULL;
}
