/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A second thread for one job at a time: the caller hands it a share of a piece of work,
 * does its own share, and waits for it.  For work that one thread would do in a row on
 * a machine with a CPU to spare (nexsrv's fan-out of a change to thousands of streams).
 */
#ifndef NX_WORKER_H
#define NX_WORKER_H

struct nx_worker;

/* NULL when the thread cannot be started (errno set). */
struct nx_worker *nx_worker_new(const char *name);

/* Starts fn(arg) on the worker; it must be idle (nx_worker_wait() since the last run). */
void nx_worker_run(struct nx_worker *wk, void (*fn)(void *), void *arg);

/* Waits until the job started last is done: what it wrote is then visible here. */
void nx_worker_wait(struct nx_worker *wk);

/* Stops the thread (after its job, if any) and frees it; NULL is fine. */
void nx_worker_free(struct nx_worker *wk);

#endif
