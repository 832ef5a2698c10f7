/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for nexsrv/nexsrv_ratelimit: token buckets on a fake clock (burst, refill,
 * Retry-After times, rates from 1 to 1000000 per second), independent keys, the bounded
 * table, reconfiguration, bad input, and many threads on one bucket; and the REST API's two
 * tiers: address keys (IPv4 /32, IPv6 /64), the address tier's generous limits, requests
 * that name no verified caller (invented tokens) held by their address, many callers behind
 * one NAT address each held by their own bucket.
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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

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

/* --- the two tiers ---------------------------------------------------------------------- */

static struct sockaddr_storage addr(const char *text)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(40000);
	} else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(40001);
	} else {
		fail_msg("bad test address %s", text);
	}
	return ss;
}

/* The address key of text, as a printable string of hex digits. */
static const char *akey(const char *text)
{
	static char hex[2 * NEXSRV_RATELIMIT_ADDRESS_KEY_MAX + 1];
	unsigned char key[NEXSRV_RATELIMIT_ADDRESS_KEY_MAX];
	struct sockaddr_storage ss = addr(text);
	size_t len = nexsrv_ratelimit_address_key((struct sockaddr *)&ss, key);

	assert_true(len >= 1 && len <= NEXSRV_RATELIMIT_ADDRESS_KEY_MAX);
	for (size_t i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	return hex;
}

static void test_address_keys(void **state)
{
	unsigned char key[NEXSRV_RATELIMIT_ADDRESS_KEY_MAX];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char a[64];

	(void)state;
	/* IPv4 by /32; the port does not matter */
	assert_string_equal(akey("192.0.2.1"), "34c0000201");
	snprintf(a, sizeof(a), "%s", akey("192.0.2.2"));
	assert_string_not_equal(akey("192.0.2.1"), a);
	/* an IPv4-mapped IPv6 address is the IPv4 address (a dual-stack socket) */
	assert_string_equal(akey("::ffff:192.0.2.1"), "34c0000201");
	/* IPv6 by /64: any address of a host's /64 is the same client */
	snprintf(a, sizeof(a), "%s", akey("2001:db8:1:2::1"));
	assert_string_equal(a, "3620010db800010002");
	assert_string_equal(akey("2001:db8:1:2:ffff:ffff:ffff:fffe"), a);
	assert_string_not_equal(akey("2001:db8:1:3::1"), a);
	/* no address, or another family: one shared key */
	assert_int_equal(nexsrv_ratelimit_address_key(NULL, key), 1);
	assert_int_equal(key[0], '?');
	assert_int_equal(nexsrv_ratelimit_address_key((struct sockaddr *)&sun, key), 1);
	assert_int_equal(key[0], '?');
}

static void test_address_tier_is_generous(void **state)
{
	(void)state;
	assert_int_equal(NEXSRV_RATELIMIT_ADDRESS_FACTOR, 10);
	assert_int_equal(nexsrv_ratelimit_address_rate(50), 500);
	assert_int_equal(nexsrv_ratelimit_address_burst(100), 1000);
	assert_int_equal(nexsrv_ratelimit_address_rate(1), 10);
	/* capped at the largest valid values, without overflow */
	assert_int_equal(nexsrv_ratelimit_address_rate(200000), NEXSRV_RATELIMIT_RATE_MAX);
	assert_int_equal(nexsrv_ratelimit_address_burst(NEXSRV_RATELIMIT_BURST_MAX),
			 NEXSRV_RATELIMIT_BURST_MAX);
	assert_int_equal(nexsrv_ratelimit_address_rate(UINT32_MAX), NEXSRV_RATELIMIT_RATE_MAX);
}

static struct nexsrv_ratelimit_tiers *new_tiers(uint32_t rate, uint32_t burst)
{
	struct nx_err err = { "" };
	struct nexsrv_ratelimit_tiers *t;

	fake_now = 1000 * S;
	t = nexsrv_ratelimit_tiers_new(&(struct nexsrv_ratelimit_config){ .rate = rate,
									  .burst = burst,
									  .clock = fake_clock },
				       &err);
	if (!t)
		fail_msg("tiers: %s", err.msg);
	return t;
}

/* One request as the HTTP server makes it: the address tier, then (when the caller was
 * verified, caller != NULL) the caller tier.  0 or -EAGAIN. */
static int api_request(struct nexsrv_ratelimit_tiers *t, const char *client, const char *caller,
		       uint64_t *retry_ms)
{
	struct sockaddr_storage ss = addr(client);
	int rc = nexsrv_ratelimit_take_address(t, (struct sockaddr *)&ss, retry_ms);

	if (rc == 0 && caller)
		rc = nexsrv_ratelimit_take_caller(t, caller, strlen(caller), retry_ms);
	return rc;
}

static void test_unverified_requests_are_held_by_address(void **state)
{
	/* per caller 1/s, burst 2: per address 10/s, burst 20 */
	struct nexsrv_ratelimit_tiers *t = new_tiers(1, 2);
	uint64_t retry = 0;

	(void)state;
	/* requests whose token fails authentication name no caller: however many tokens a
	 * client invents, its address's bucket is the one that empties */
	for (int i = 0; i < 20; i++)
		assert_int_equal(api_request(t, "198.51.100.7", NULL, &retry), 0);
	assert_int_equal(api_request(t, "198.51.100.7", NULL, &retry), -EAGAIN);
	assert_int_equal(retry, 100); /* 10 per second */
	/* a verified caller from there is held back too: the flood came from its address */
	assert_int_equal(api_request(t, "198.51.100.7", "ualice", NULL), -EAGAIN);
	/* the same for the whole /64 of an IPv6 client */
	for (int i = 0; i < 20; i++)
		assert_int_equal(
			api_request(t, i % 2 ? "2001:db8::1" : "2001:db8::2:3", NULL, NULL), 0);
	assert_int_equal(api_request(t, "2001:db8::ffff", NULL, NULL), -EAGAIN);
	/* other addresses are not affected */
	assert_int_equal(api_request(t, "198.51.100.8", NULL, NULL), 0);
	assert_int_equal(api_request(t, "2001:db8:0:1::1", "ualice", NULL), 0);
	/* the address refills at ten times the per-caller rate */
	fake_now += 100 * MS;
	assert_int_equal(api_request(t, "198.51.100.7", NULL, NULL), 0);
	assert_int_equal(api_request(t, "198.51.100.7", NULL, NULL), -EAGAIN);
	assert_int_equal(nexsrv_ratelimit_count(nexsrv_ratelimit_tier(t, true)), 4);
	assert_int_equal(nexsrv_ratelimit_count(nexsrv_ratelimit_tier(t, false)), 1);
	nexsrv_ratelimit_tiers_free(t);
}

static void test_callers_behind_one_nat_address(void **state)
{
	struct nexsrv_ratelimit_tiers *t = new_tiers(1, 2);
	char dev[16];

	(void)state;
	/* ten agents behind one address, each using its whole burst: all served */
	for (int d = 0; d < 10; d++) {
		snprintf(dev, sizeof(dev), "ddevice-%d", d);
		for (int i = 0; i < 2; i++)
			assert_int_equal(api_request(t, "203.0.113.1", dev, NULL), 0);
	}
	/* and then each at its own sustained rate, second after second */
	for (int sec = 0; sec < 5; sec++) {
		fake_now += 1 * S;
		for (int d = 0; d < 10; d++) {
			snprintf(dev, sizeof(dev), "ddevice-%d", d);
			assert_int_equal(api_request(t, "203.0.113.1", dev, NULL), 0);
		}
	}
	/* one of them going faster is refused by its own bucket, not the others' (five of
	 * them at their sustained rate leave the address room for the extra tries) */
	fake_now += 1 * S;
	assert_int_equal(api_request(t, "203.0.113.1", "ddevice-0", NULL), 0);
	assert_int_equal(api_request(t, "203.0.113.1", "ddevice-0", NULL), -EAGAIN);
	assert_int_equal(api_request(t, "203.0.113.1", "ddevice-0", NULL), -EAGAIN);
	for (int d = 1; d < 5; d++) {
		snprintf(dev, sizeof(dev), "ddevice-%d", d);
		assert_int_equal(api_request(t, "203.0.113.1", dev, NULL), 0);
	}
	/* a caller is the same caller from any address */
	assert_int_equal(api_request(t, "192.0.2.99", "ddevice-0", NULL), -EAGAIN);
	nexsrv_ratelimit_tiers_free(t);
}

static void test_tiers_reconfigure_and_bad_input(void **state)
{
	struct nexsrv_ratelimit_tiers *t = new_tiers(1, 1);
	struct nx_err err = { "" };

	(void)state;
	/* burst 1 per caller, 10 per address */
	assert_int_equal(api_request(t, "192.0.2.1", "u1", NULL), 0);
	assert_int_equal(api_request(t, "192.0.2.1", "u1", NULL), -EAGAIN);
	for (int i = 0; i < 8; i++)
		assert_int_equal(api_request(t, "192.0.2.1", NULL, NULL), 0);
	assert_int_equal(api_request(t, "192.0.2.1", NULL, NULL), -EAGAIN);

	/* both tiers follow a change */
	assert_int_equal(nexsrv_ratelimit_tiers_set(t, 100, 3, &err), 0);
	fake_now += 1 * S;
	for (int i = 0; i < 3; i++)
		assert_int_equal(api_request(t, "192.0.2.1", "u1", NULL), 0);
	assert_int_equal(api_request(t, "192.0.2.1", "u1", NULL), -EAGAIN);
	for (int i = 0; i < 26; i++)
		assert_int_equal(api_request(t, "192.0.2.1", NULL, NULL), 0);
	assert_int_equal(api_request(t, "192.0.2.1", NULL, NULL), -EAGAIN);

	/* a bad change changes nothing */
	assert_int_equal(nexsrv_ratelimit_tiers_set(t, 0, 3, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "0 requests per second is out of range"));
	assert_int_equal(nexsrv_ratelimit_tiers_set(t, 1, 2000000, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "burst 2000000 is out of range"));
	fake_now += 1 * S;
	for (int i = 0; i < 3; i++)
		assert_int_equal(api_request(t, "192.0.2.1", "u1", NULL), 0);
	assert_int_equal(api_request(t, "192.0.2.1", "u1", NULL), -EAGAIN);

	/* caller keys are checked as any key */
	assert_int_equal(nexsrv_ratelimit_take_caller(t, "", 0, NULL), -EINVAL);
	assert_int_equal(nexsrv_ratelimit_take_caller(t, NULL, 3, NULL), -EINVAL);
	nexsrv_ratelimit_tiers_free(t);
	nexsrv_ratelimit_tiers_free(NULL);

	err.msg[0] = '\0';
	assert_null(nexsrv_ratelimit_tiers_new(
		&(struct nexsrv_ratelimit_config){ .rate = 1, .burst = 0 }, &err));
	assert_non_null(strstr(err.msg, "burst 0 is out of range"));
	err.msg[0] = '\0';
	assert_null(nexsrv_ratelimit_tiers_new(
		&(struct nexsrv_ratelimit_config){ .rate = 1000001, .burst = 1 }, &err));
	assert_non_null(strstr(err.msg, "1000001 requests per second is out of range"));
	/* the largest per-caller values give the largest address tier, not an error */
	t = new_tiers(NEXSRV_RATELIMIT_RATE_MAX, NEXSRV_RATELIMIT_BURST_MAX);
	assert_int_equal(api_request(t, "192.0.2.1", "u1", NULL), 0);
	nexsrv_ratelimit_tiers_free(t);
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
		cmocka_unit_test(test_address_keys),
		cmocka_unit_test(test_address_tier_is_generous),
		cmocka_unit_test(test_unverified_requests_are_held_by_address),
		cmocka_unit_test(test_callers_behind_one_nat_address),
		cmocka_unit_test(test_tiers_reconfigure_and_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
