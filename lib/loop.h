/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemons' event loop: a thin layer over libevent 2 that gives timers,
 * fd watchers, deferred work and signal handlers the FRR shape — the
 * caller embeds the handle in its own struct, and the handle knows whether
 * it is scheduled, so work is never scheduled twice and can always be
 * cancelled on teardown.  The libevent base is exposed for libraries that
 * drive themselves from it (curl multi, microhttpd).
 *
 * Ownership: the caller owns every nx_timer / nx_fdwatch / nx_defer and must
 * nx_*_fini() each one before nx_loop_free() (asserted in debug builds).
 * A handle must not be moved or copied while initialised.  Handlers added
 * with nx_loop_on_signal() belong to the loop and are freed with it.
 *
 * A loop is used from one thread: the one that runs it.  Callbacks may arm,
 * cancel and fini any handle, including their own.
 *
 * Time: timers use CLOCK_MONOTONIC, read fresh at every arm (no cached
 * time), so a timer armed from a slow callback is still measured from "now".
 */
#ifndef NX_LOOP_H
#define NX_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>

struct nx_loop;

/* NULL on allocation failure. */
struct nx_loop *nx_loop_new(void);

/* Frees the loop and its signal handlers; NULL is a no-op.  All timers,
 * fd watchers and defers on it must have been fini'd. */
void nx_loop_free(struct nx_loop *loop);

/* Runs callbacks until nx_loop_stop(), even while nothing is scheduled.
 * Returns 0 after a stop, -EIO if libevent fails. */
int nx_loop_run(struct nx_loop *loop);

/* Makes nx_loop_run() return once the current callback finishes.  Has no
 * effect when the loop is not running. */
void nx_loop_stop(struct nx_loop *loop);

/* The underlying libevent base, for integrating other libraries. */
struct event_base *nx_loop_base(struct nx_loop *loop);

/* Calls cb on the loop (not in signal context) each time signo arrives.
 * 0, -EINVAL for a bad signal number, -ENOMEM, or -EIO. */
typedef void (*nx_signal_fn)(int signo, void *arg);
int nx_loop_on_signal(struct nx_loop *loop, int signo, nx_signal_fn cb, void *arg);

/* CLOCK_MONOTONIC in milliseconds: for intervals and deadlines. */
uint64_t nx_now_ms(void);

/* CLOCK_REALTIME in nanoseconds since the epoch: for timestamps only. */
uint64_t nx_now_ns_wall(void);

/* --- timers: one-shot, re-armable -------------------------------------- */

struct nx_timer;
typedef void (*nx_timer_fn)(struct nx_timer *t, void *arg);

struct nx_timer {
	struct event ev;
	struct nx_loop *loop; /* NULL while not initialised */
	nx_timer_fn cb;
	void *arg;
	uint64_t deadline_ms; /* nx_now_ms() at which it fires, when armed */
};

void nx_timer_init(struct nx_loop *loop, struct nx_timer *t, nx_timer_fn cb, void *arg);

/* Fires once, msec from now.  Arming an armed timer moves it. */
void nx_timer_arm(struct nx_timer *t, uint64_t msec);

/* As nx_timer_arm() with a delay drawn uniformly from
 * [base_ms, base_ms + jitter_ms] — for spreading out reconnects. */
void nx_timer_arm_jitter(struct nx_timer *t, uint64_t base_ms, uint64_t jitter_ms);

/* Disarms; harmless when not armed. */
void nx_timer_cancel(struct nx_timer *t);

/* True from arm until the callback starts or the timer is cancelled. */
bool nx_timer_armed(const struct nx_timer *t);

/* Milliseconds until the timer fires; 0 when not armed or overdue. */
uint64_t nx_timer_remaining_ms(const struct nx_timer *t);

/* Cancels and detaches from the loop.  Harmless on a zeroed or already
 * fini'd timer. */
void nx_timer_fini(struct nx_timer *t);

/* --- fd watchers: level-triggered, per direction ------------------------ */

#define NX_READ	 0x1u
#define NX_WRITE 0x2u

struct nx_fdwatch;
/* what is NX_READ or NX_WRITE: the direction that is ready. */
typedef void (*nx_fdwatch_fn)(struct nx_fdwatch *w, int fd, unsigned what, void *arg);

struct nx_fdwatch {
	struct event rev;
	struct event wev;
	struct nx_loop *loop; /* NULL while not initialised */
	nx_fdwatch_fn cb;
	void *arg;
	int fd;
	unsigned enabled; /* NX_READ | NX_WRITE */
};

/*
 * Watches fd — non-blocking, and the caller's to close after fini — and enables the
 * directions in what (0 is allowed).  -EBADF for a negative fd, -EINVAL for
 * unknown bits, -EIO when the backend refuses the fd (e.g. a regular file
 * with epoll); on error w is left uninitialised.
 */
int nx_fdwatch_init(struct nx_loop *loop, struct nx_fdwatch *w, int fd, unsigned what,
		    nx_fdwatch_fn cb, void *arg);

/* Enables / disables the given directions; the others are unchanged.
 * enable returns 0, -EINVAL or -EIO. */
int nx_fdwatch_enable(struct nx_fdwatch *w, unsigned what);
void nx_fdwatch_disable(struct nx_fdwatch *w, unsigned what);

/* The enabled directions. */
unsigned nx_fdwatch_enabled(const struct nx_fdwatch *w);

/* Stops watching and detaches; does not close the fd.  Harmless on a
 * zeroed or already fini'd watcher. */
void nx_fdwatch_fini(struct nx_fdwatch *w);

/* --- defer: run once on a later loop iteration, coalesced --------------- */

struct nx_defer;
typedef void (*nx_defer_fn)(struct nx_defer *d, void *arg);

struct nx_defer {
	struct event ev;
	struct nx_loop *loop; /* NULL while not initialised */
	nx_defer_fn cb;
	void *arg;
};

void nx_defer_init(struct nx_loop *loop, struct nx_defer *d, nx_defer_fn cb, void *arg);

/*
 * Runs the callback once on the next loop iteration, after pending I/O has
 * been polled; scheduling again before it runs changes nothing.  Scheduling
 * from the callback itself runs it again on the following iteration, so a
 * defer can process a queue in slices without starving I/O.
 */
void nx_defer_schedule(struct nx_defer *d);
void nx_defer_cancel(struct nx_defer *d);
bool nx_defer_scheduled(const struct nx_defer *d);

/* Cancels and detaches.  Harmless on a zeroed or already fini'd defer. */
void nx_defer_fini(struct nx_defer *d);

#endif /* NX_LOOP_H */
