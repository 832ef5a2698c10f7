/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for nexsrv/nexsrv_ratelimit: token buckets on a fake clock (burst, refill,
 * Retry-After times, rates from 1 to 1000000 per second), independent keys, the bounded
 * table, reconfiguration, bad input, and many threads on one bucket.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nexsrv/nexsrv_ratelimit.h"

#define MS 1000000ull
#define S  1000000000ull

static uint64_t fake_now;

static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return __atomic_load_n(&fake_now, __ATOMIC_RELAXED);
}

static struct nexsrv_ratelimit *new_rl(uint32_t rate, uint32_t burst, size_t max_keys)
{
	struct nx_err err = { "" };
	struct nexsrv_ratelimit *rl;

	fake_now = 1000 * S;
	rl = nexsrv_ratelimit_new(
		&(struct nexsrv_ratelimit_config){
			.rate = rate, .burst = burst, .max_keys = max_keys, .clock = fake_clock },
		&err);
	assert_non_null(rl);
	return rl;
}

static int take(struct nexsrv_ratelimit *rl, const char *key, uint64_t *retry_ms)
{
	return nexsrv_ratelimit_take(rl, key, strlen(key), retry_ms);
}

static void test_burst_then_refill(void **state)
{
	struct nexsrv_ratelimit *rl = new_rl(1, 3, 0);
	uint64_t retry = 0;

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(take(rl, "alice", &retry), 0);
	assert_int_equal(take(rl, "alice", &retry), -EAGAIN);
	assert_int_equal(retry, 1000);

	fake_now += 999 * MS;
	assert_int_equal(take(rl, "alice", &retry), -EAGAIN);
	assert_int_equal(retry, 1);
	fake_now += 1 * MS;
	assert_int_equal(take(rl, "alice", &retry), 0);
	assert_int_equal(take(rl, "alice", &retry), -EAGAIN);

	/* a long pause refills to the burst, not beyond */
	fake_now += 3600 * S;
	for (int i = 0; i < 3; i++)
		assert_int_equal(take(rl, "alice", NULL), 0);
	assert_int_equal(take(rl, "alice", NULL), -EAGAIN);
	nexsrv_ratelimit_free(rl);
}

static void test_keys_are_independent(void **state)
{
	struct nexsrv_ratelimit *rl = new_rl(1, 1, 0);
	const unsigned char a[] = { 0, 1, 2 }, b[] = { 0, 1, 3 };

	(void)state;
	assert_int_equal(nexsrv_ratelimit_take(rl, a, sizeof(a), NULL), 0);
	assert_int_equal(nexsrv_ratelimit_take(rl, a, sizeof(a), NULL), -EAGAIN);
	assert_int_equal(nexsrv_ratelimit_take(rl, b, sizeof(b), NULL), 0);
	/* a prefix is another key */
	assert_int_equal(nexsrv_ratelimit_take(rl, a, 2, NULL), 0);
	assert_int_equal(nexsrv_ratelimit_count(rl), 3);
	nexsrv_ratelimit_free(rl);
}

static void test_fractional_and_extreme_rates(void **state)
{
	struct nexsrv_ratelimit *rl = new_rl(3, 1, 0);
	uint64_t retry = 0;

	(void)state;
	/* 3 per second: a token every 333.33 ms */
	assert_int_equal(take(rl, "k", &retry), 0);
	assert_int_equal(take(rl, "k", &retry), -EAGAIN);
	assert_int_equal(retry, 334);
	fake_now += 333 * MS;
	assert_int_equal(take(rl, "k", &retry), -EAGAIN);
	assert_int_equal(retry, 1);
	fake_now += 1 * MS;
	assert_int_equal(take(rl, "k", &retry), 0);
	nexsrv_ratelimit_free(rl);

	/* the top of the range: a token every microsecond, Retry-After still >= 1 ms */
	rl = new_rl(NEXSRV_RATELIMIT_RATE_MAX, 1, 0);
	assert_int_equal(take(rl, "k", &retry), 0);
	assert_int_equal(take(rl, "k", &retry), -EAGAIN);
	assert_int_equal(retry, 1);
	fake_now += 1000;
	assert_int_equal(take(rl, "k", &retry), 0);
	nexsrv_ratelimit_free(rl);

	/* the largest bucket after an absurdly long pause: no overflow, exactly full */
	rl = new_rl(NEXSRV_RATELIMIT_RATE_MAX, NEXSRV_RATELIMIT_BURST_MAX, 0);
	assert_int_equal(take(rl, "k", NULL), 0);
	fake_now += (uint64_t)1 << 62;
	for (uint32_t i = 0; i < NEXSRV_RATELIMIT_BURST_MAX; i++)
		if (take(rl, "k", NULL) != 0)
			fail_msg("token %u refused", i);
	assert_int_equal(take(rl, "k", NULL), -EAGAIN);
	nexsrv_ratelimit_free(rl);
}

static void test_clock_going_back(void **state)
{
	struct nexsrv_ratelimit *rl = new_rl(1, 1, 0);

	(void)state;
	assert_int_equal(take(rl, "k", NULL), 0);
	fake_now -= 10 * S; /* a broken clock refills nothing and breaks nothing */
	assert_int_equal(take(rl, "k", NULL), -EAGAIN);
	fake_now += 10 * S;
	assert_int_equal(take(rl, "k", NULL), -EAGAIN);
	fake_now += 1 * S;
	assert_int_equal(take(rl, "k", NULL), 0);
	nexsrv_ratelimit_free(rl);
}

static void test_reconfigure(void **state)
{
	struct nexsrv_ratelimit *rl = new_rl(1, 10, 0);
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(take(rl, "k", NULL), 0); /* 9 left */
	assert_int_equal(nexsrv_ratelimit_set(rl, 1, 2, &err), 0);
	/* the bucket is capped at the new burst */
	assert_int_equal(take(rl, "k", NULL), 0);
	assert_int_equal(take(rl, "k", NULL), 0);
	assert_int_equal(take(rl, "k", NULL), -EAGAIN);
	/* a faster rate refills faster */
	assert_int_equal(nexsrv_ratelimit_set(rl, 1000, 2, &err), 0);
	fake_now += 1 * MS;
	assert_int_equal(take(rl, "k", NULL), 0);

	assert_int_equal(nexsrv_ratelimit_set(rl, 0, 2, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "0 requests per second is out of range"));
	assert_int_equal(nexsrv_ratelimit_set(rl, 1, 1000001, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "burst 1000001 is out of range"));
	nexsrv_ratelimit_free(rl);
}

static void test_bad_input(void **state)
{
	struct nx_err err = { "" };
	unsigned char key[NEXSRV_RATELIMIT_KEY_MAX + 1] = { 0 };
	struct nexsrv_ratelimit *rl;

	(void)state;
	assert_null(nexsrv_ratelimit_new(&(struct nexsrv_ratelimit_config){ .rate = 0, .burst = 1 },
					 &err));
	assert_non_null(strstr(err.msg, "out of range"));
	err.msg[0] = '\0';
	assert_null(nexsrv_ratelimit_new(&(struct nexsrv_ratelimit_config){ .rate = 1, .burst = 0 },
					 &err));
	assert_non_null(strstr(err.msg, "burst 0"));

	rl = new_rl(1, 1, 0);
	assert_int_equal(nexsrv_ratelimit_take(rl, key, 0, NULL), -EINVAL);
	assert_int_equal(nexsrv_ratelimit_take(rl, NULL, 1, NULL), -EINVAL);
	assert_int_equal(nexsrv_ratelimit_take(rl, key, sizeof(key), NULL), -EINVAL);
	assert_int_equal(nexsrv_ratelimit_take(rl, key, sizeof(key) - 1, NULL), 0);
	nexsrv_ratelimit_free(rl);
	nexsrv_ratelimit_free(NULL);
}

static void test_table_is_bounded(void **state)
{
	/* 16 keys at most: one per shard */
	struct nexsrv_ratelimit *rl = new_rl(1, 5, 16);
	unsigned allowed;
	char key[32];

	(void)state;
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "caller-%d", i);
		assert_int_equal(take(rl, key, NULL), 0);
		fake_now += 1 * MS;
	}
	assert_true(nexsrv_ratelimit_count(rl) <= 16);

	/* 100 callers on a clock that stands still: the first request of each passes, and
	 * so does the next one of a caller that was evicted meanwhile (it starts afresh) */
	nexsrv_ratelimit_free(rl);
	rl = new_rl(1, 1, 16);
	allowed = 0;
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "caller-%d", i % 100);
		allowed += take(rl, key, NULL) == 0;
	}
	assert_true(allowed > 100);
	assert_true(nexsrv_ratelimit_count(rl) <= 16);
	nexsrv_ratelimit_free(rl);
}

struct race {
	struct nexsrv_ratelimit *rl;
	unsigned allowed;
};

static void *race_main(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < 5000; i++)
		if (nexsrv_ratelimit_take(r->rl, "shared", 6, NULL) == 0)
			__atomic_add_fetch(&r->allowed, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void test_threads_share_one_bucket(void **state)
{
	struct race r = { .rl = new_rl(1, 1000, 0) };
	pthread_t t[4];

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race_main, &r), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	/* the clock stood still: exactly the burst got through */
	assert_int_equal(r.allowed, 1000);
	nexsrv_ratelimit_free(r.rl);
}

static void test_real_clock(void **state)
{
	struct nexsrv_ratelimit *rl = nexsrv_ratelimit_new(
		&(struct nexsrv_ratelimit_config){ .rate = 1, .burst = 1 }, NULL);
	uint64_t a = nexsrv_monotonic_ns(NULL), b;

	(void)state;
	assert_non_null(rl);
	assert_int_equal(nexsrv_ratelimit_take(rl, "x", 1, NULL), 0);
	assert_int_equal(nexsrv_ratelimit_take(rl, "x", 1, NULL), -EAGAIN);
	b = nexsrv_monotonic_ns(NULL);
	assert_true(b >= a);
	nexsrv_ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_refill),
		cmocka_unit_test(test_keys_are_independent),
		cmocka_unit_test(test_fractional_and_extreme_rates),
		cmocka_unit_test(test_clock_going_back),
		cmocka_unit_test(test_reconfigure),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_table_is_bounded),
		cmocka_unit_test(test_threads_share_one_bucket),
		cmocka_unit_test(test_real_clock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
