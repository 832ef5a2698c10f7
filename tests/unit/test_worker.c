/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lib/worker: a job runs on another thread, what it wrote is seen after the
 * wait, jobs follow one another, and freeing an idle worker (or NULL) stops it.
 */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/worker.h"

struct job {
	pthread_t ran_on;
	unsigned long sum;
	unsigned n;
};

static void add_up(void *arg)
{
	struct job *j = arg;

	j->ran_on = pthread_self();
	for (unsigned i = 1; i <= j->n; i++)
		j->sum += i;
}

static void test_halves(void **state)
{
	struct nx_worker *wk = nx_worker_new("test-worker");

	(void)state;
	assert_non_null(wk);
	for (unsigned round = 1; round <= 1000; round++) {
		struct job theirs = { .n = round }, mine = { .n = round };

		nx_worker_run(wk, add_up, &theirs);
		add_up(&mine);
		nx_worker_wait(wk);
		assert_int_equal(theirs.sum, (unsigned long)round * (round + 1) / 2);
		assert_int_equal(theirs.sum, mine.sum);
		assert_false(pthread_equal(theirs.ran_on, pthread_self()));
	}
	nx_worker_wait(wk); /* idle: returns at once */
	nx_worker_free(wk);
	nx_worker_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_halves),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
