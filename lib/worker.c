/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/worker.h"

struct nx_worker {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a job, its end, or stop */
	pthread_t thread;
	void (*fn)(void *); /* the job under way; NULL when idle */
	void *arg;
	bool stop;
};

static void *worker_main(void *p)
{
	struct nx_worker *wk = p;

	pthread_mutex_lock(&wk->lock);
	for (;;) {
		while (!wk->fn && !wk->stop)
			pthread_cond_wait(&wk->cond, &wk->lock);
		if (!wk->fn)
			break;
		pthread_mutex_unlock(&wk->lock);
		wk->fn(wk->arg);
		pthread_mutex_lock(&wk->lock);
		wk->fn = NULL;
		pthread_cond_broadcast(&wk->cond);
	}
	pthread_mutex_unlock(&wk->lock);
	return NULL;
}

struct nx_worker *nx_worker_new(const char *name)
{
	struct nx_worker *wk = calloc(1, sizeof(*wk));
	int rc;

	if (!wk)
		return NULL;
	pthread_mutex_init(&wk->lock, NULL);
	pthread_cond_init(&wk->cond, NULL);
	rc = pthread_create(&wk->thread, NULL, worker_main, wk);
	if (rc) {
		pthread_cond_destroy(&wk->cond);
		pthread_mutex_destroy(&wk->lock);
		free(wk);
		errno = rc;
		return NULL;
	}
	if (name) {
		char short_name[16]; /* the kernel keeps 15 characters */

		strncpy(short_name, name, sizeof(short_name) - 1);
		short_name[sizeof(short_name) - 1] = '\0';
		pthread_setname_np(wk->thread, short_name);
	}
	return wk;
}

void nx_worker_run(struct nx_worker *wk, void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&wk->lock);
	wk->arg = arg;
	wk->fn = fn;
	pthread_cond_broadcast(&wk->cond);
	pthread_mutex_unlock(&wk->lock);
}

void nx_worker_wait(struct nx_worker *wk)
{
	pthread_mutex_lock(&wk->lock);
	while (wk->fn)
		pthread_cond_wait(&wk->cond, &wk->lock);
	pthread_mutex_unlock(&wk->lock);
}

void nx_worker_free(struct nx_worker *wk)
{
	if (!wk)
		return;
	pthread_mutex_lock(&wk->lock);
	wk->stop = true;
	pthread_cond_broadcast(&wk->cond);
	pthread_mutex_unlock(&wk->lock);
	pthread_join(wk->thread, NULL);
	pthread_cond_destroy(&wk->cond);
	pthread_mutex_destroy(&wk->lock);
	free(wk);
}
