/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-caller token buckets for the REST API's rate limit, and its two tiers (per client
 * address, per verified caller); see nexsrv_ratelimit.h.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "nexsrv/nexsrv_ratelimit.h"

#define NSHARDS	  16u
#define NANO	  1000000000ull /* token units per token, and ns per second */
#define NS_PER_MS 1000000ull

struct bucket {
	struct bucket *next;
	uint64_t hash;
	uint64_t tokens; /* billionths of a token */
	uint64_t last;	 /* clock when tokens was last brought up to date */
	size_t keylen;
	unsigned char key[NEXSRV_RATELIMIT_KEY_MAX];
};

struct shard {
	pthread_mutex_t lock;
	struct bucket **table;
	size_t mask; /* table size - 1, a power of two minus one */
	size_t count;
	size_t max;
};

struct nexsrv_ratelimit {
	uint64_t params; /* rate << 32 | burst, read and written atomically */
	uint64_t seed;
	nexsrv_clock_fn clock;
	void *clock_arg;
	struct shard shards[NSHARDS];
};

uint64_t nexsrv_monotonic_ns(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NANO + (uint64_t)ts.tv_nsec;
}

static int check_params(uint32_t rate, uint32_t burst, struct nx_err *err)
{
	if (rate < 1 || rate > NEXSRV_RATELIMIT_RATE_MAX)
		return nx_err_set(err, EINVAL,
				  "rate limit: %u requests per second is out of range 1-%u", rate,
				  NEXSRV_RATELIMIT_RATE_MAX);
	if (burst < 1 || burst > NEXSRV_RATELIMIT_BURST_MAX)
		return nx_err_set(err, EINVAL, "rate limit: burst %u is out of range 1-%u", burst,
				  NEXSRV_RATELIMIT_BURST_MAX);
	return 0;
}

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

struct nexsrv_ratelimit *nexsrv_ratelimit_new(const struct nexsrv_ratelimit_config *cfg,
					      struct nx_err *err)
{
	struct nexsrv_ratelimit *rl;
	size_t max_keys = cfg->max_keys ? cfg->max_keys : NEXSRV_RATELIMIT_DEFAULT_MAX_KEYS;
	size_t per_shard = (max_keys + NSHARDS - 1) / NSHARDS;
	size_t size = 16;
	unsigned i;

	if (check_params(cfg->rate, cfg->burst, err) < 0)
		return NULL;
	rl = calloc(1, sizeof(*rl));
	if (!rl) {
		nx_err_set(err, ENOMEM, "rate limit: out of memory");
		return NULL;
	}
	rl->params = (uint64_t)cfg->rate << 32 | cfg->burst;
	rl->clock = cfg->clock ? cfg->clock : nexsrv_monotonic_ns;
	rl->clock_arg = cfg->clock_arg;
	/* The seed only spreads keys over the table; a weak one costs speed, not safety. */
	if (getrandom(&rl->seed, sizeof(rl->seed), GRND_NONBLOCK) != sizeof(rl->seed))
		rl->seed = nexsrv_monotonic_ns(NULL) ^ (uint64_t)(uintptr_t)rl;
	while (size < per_shard && size < ((size_t)1 << 30))
		size <<= 1;
	for (i = 0; i < NSHARDS; i++) {
		struct shard *s = &rl->shards[i];

		pthread_mutex_init(&s->lock, NULL);
		s->max = per_shard;
		s->mask = size - 1;
		s->table = calloc(size, sizeof(*s->table));
		if (!s->table) {
			for (unsigned j = i + 1; j < NSHARDS; j++)
				pthread_mutex_init(&rl->shards[j].lock, NULL);
			nexsrv_ratelimit_free(rl);
			nx_err_set(err, ENOMEM, "rate limit: out of memory");
			return NULL;
		}
	}
	return rl;
}

void nexsrv_ratelimit_free(struct nexsrv_ratelimit *rl)
{
	if (!rl)
		return;
	for (unsigned i = 0; i < NSHARDS; i++) {
		struct shard *s = &rl->shards[i];

		if (s->table) {
			for (size_t j = 0; j <= s->mask; j++) {
				struct bucket *b = s->table[j];

				while (b) {
					struct bucket *next = b->next;

					free(b);
					b = next;
				}
			}
			free(s->table);
		}
		pthread_mutex_destroy(&s->lock);
	}
	free(rl);
}

int nexsrv_ratelimit_set(struct nexsrv_ratelimit *rl, uint32_t rate, uint32_t burst,
			 struct nx_err *err)
{
	int rc = check_params(rate, burst, err);

	if (rc == 0)
		__atomic_store_n(&rl->params, (uint64_t)rate << 32 | burst, __ATOMIC_RELAXED);
	return rc;
}

/* FNV-1a over the key, started from the table's seed. */
static uint64_t hash_key(uint64_t seed, const unsigned char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull ^ seed;

	for (size_t i = 0; i < len; i++) {
		h ^= key[i];
		h *= 0x100000001b3ull;
	}
	return h ^ (h >> 29);
}

/* Brings b's tokens up to now: rate tokens per second, at most cap. */
static void refill(struct bucket *b, uint64_t now, uint64_t rate, uint64_t cap)
{
	if (now > b->last && b->tokens < cap) {
		uint64_t deficit = cap - b->tokens;
		uint64_t elapsed = now - b->last;

		/* elapsed < deficit / rate here, so the product stays below deficit. */
		if (elapsed >= ceil_div(deficit, rate))
			b->tokens = cap;
		else
			b->tokens += elapsed * rate;
	}
	if (b->tokens > cap)
		b->tokens = cap;
	if (now > b->last)
		b->last = now;
}

/* A bucket that would be full by now is indistinguishable from no bucket. */
static bool refilled(const struct bucket *b, uint64_t now, uint64_t rate, uint64_t cap)
{
	if (b->tokens >= cap)
		return true;
	return now > b->last && now - b->last >= ceil_div(cap - b->tokens, rate);
}

static void shard_remove(struct shard *s, struct bucket **pp)
{
	struct bucket *b = *pp;

	*pp = b->next;
	free(b);
	s->count--;
}

/* Makes room for one more bucket: drops the refilled ones, else the least recently used. */
static void make_room(struct shard *s, uint64_t now, uint64_t rate, uint64_t cap)
{
	struct bucket **oldest = NULL;

	for (size_t i = 0; i <= s->mask; i++) {
		struct bucket **pp = &s->table[i];

		while (*pp) {
			if (refilled(*pp, now, rate, cap))
				shard_remove(s, pp);
			else
				pp = &(*pp)->next;
		}
	}
	if (s->count < s->max)
		return;
	for (size_t i = 0; i <= s->mask; i++)
		for (struct bucket **pp = &s->table[i]; *pp; pp = &(*pp)->next)
			if (!oldest || (*pp)->last < (*oldest)->last)
				oldest = pp;
	if (oldest)
		shard_remove(s, oldest);
}

int nexsrv_ratelimit_take(struct nexsrv_ratelimit *rl, const void *key, size_t len,
			  uint64_t *retry_ms)
{
	uint64_t params = __atomic_load_n(&rl->params, __ATOMIC_RELAXED);
	uint64_t rate = params >> 32;
	uint64_t cap = (params & 0xffffffffu) * NANO;
	uint64_t h, now;
	struct shard *s;
	struct bucket *b;
	int rc;

	if (!key || len == 0 || len > NEXSRV_RATELIMIT_KEY_MAX)
		return -EINVAL;
	h = hash_key(rl->seed, key, len);
	s = &rl->shards[h % NSHARDS];
	now = rl->clock(rl->clock_arg);

	pthread_mutex_lock(&s->lock);
	for (b = s->table[(h / NSHARDS) & s->mask]; b; b = b->next)
		if (b->hash == h && b->keylen == len && memcmp(b->key, key, len) == 0)
			break;
	if (b) {
		refill(b, now, rate, cap);
	} else {
		if (s->count >= s->max)
			make_room(s, now, rate, cap);
		b = calloc(1, sizeof(*b));
		if (!b) {
			pthread_mutex_unlock(&s->lock);
			return -ENOMEM;
		}
		b->hash = h;
		b->keylen = len;
		memcpy(b->key, key, len);
		b->tokens = cap;
		b->last = now;
		b->next = s->table[(h / NSHARDS) & s->mask];
		s->table[(h / NSHARDS) & s->mask] = b;
		s->count++;
	}
	if (b->tokens >= NANO) {
		b->tokens -= NANO;
		rc = 0;
	} else {
		if (retry_ms) {
			uint64_t ms = ceil_div(ceil_div(NANO - b->tokens, rate), NS_PER_MS);

			*retry_ms = ms ? ms : 1;
		}
		rc = -EAGAIN;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

size_t nexsrv_ratelimit_count(struct nexsrv_ratelimit *rl)
{
	size_t n = 0;

	for (unsigned i = 0; i < NSHARDS; i++) {
		pthread_mutex_lock(&rl->shards[i].lock);
		n += rl->shards[i].count;
		pthread_mutex_unlock(&rl->shards[i].lock);
	}
	return n;
}

/* --- the two tiers -------------------------------------------------------------------- */

struct nexsrv_ratelimit_tiers {
	struct nexsrv_ratelimit *address;
	struct nexsrv_ratelimit *caller;
};

size_t nexsrv_ratelimit_address_key(const struct sockaddr *sa, unsigned char *key)
{
	if (sa && sa->sa_family == AF_INET) {
		key[0] = '4';
		memcpy(key + 1, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return 5;
	}
	if (sa && sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
			&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			key[0] = '4';
			memcpy(key + 1, &a->s6_addr[12], 4);
			return 5;
		}
		key[0] = '6';
		memcpy(key + 1, a->s6_addr, 8);
		return 9;
	}
	key[0] = '?';
	return 1;
}

static uint32_t scale(uint32_t v, uint32_t max)
{
	uint64_t s = (uint64_t)v * NEXSRV_RATELIMIT_ADDRESS_FACTOR;

	return s > max ? max : (uint32_t)s;
}

uint32_t nexsrv_ratelimit_address_rate(uint32_t rate)
{
	return scale(rate, NEXSRV_RATELIMIT_RATE_MAX);
}

uint32_t nexsrv_ratelimit_address_burst(uint32_t burst)
{
	return scale(burst, NEXSRV_RATELIMIT_BURST_MAX);
}

struct nexsrv_ratelimit_tiers *nexsrv_ratelimit_tiers_new(const struct nexsrv_ratelimit_config *cfg,
							  struct nx_err *err)
{
	struct nexsrv_ratelimit_config acfg = *cfg;
	struct nexsrv_ratelimit_tiers *t;

	if (check_params(cfg->rate, cfg->burst, err) < 0)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t) {
		nx_err_set(err, ENOMEM, "rate limit: out of memory");
		return NULL;
	}
	acfg.rate = nexsrv_ratelimit_address_rate(cfg->rate);
	acfg.burst = nexsrv_ratelimit_address_burst(cfg->burst);
	t->caller = nexsrv_ratelimit_new(cfg, err);
	t->address = t->caller ? nexsrv_ratelimit_new(&acfg, err) : NULL;
	if (!t->address) {
		nexsrv_ratelimit_tiers_free(t);
		return NULL;
	}
	return t;
}

void nexsrv_ratelimit_tiers_free(struct nexsrv_ratelimit_tiers *t)
{
	if (!t)
		return;
	nexsrv_ratelimit_free(t->address);
	nexsrv_ratelimit_free(t->caller);
	free(t);
}

int nexsrv_ratelimit_tiers_set(struct nexsrv_ratelimit_tiers *t, uint32_t rate, uint32_t burst,
			       struct nx_err *err)
{
	int rc = check_params(rate, burst, err);

	/* Checked first, so that either both tiers change or neither does. */
	if (rc < 0)
		return rc;
	rc = nexsrv_ratelimit_set(t->caller, rate, burst, err);
	if (rc == 0)
		rc = nexsrv_ratelimit_set(t->address, nexsrv_ratelimit_address_rate(rate),
					  nexsrv_ratelimit_address_burst(burst), err);
	return rc;
}

int nexsrv_ratelimit_take_address(struct nexsrv_ratelimit_tiers *t, const struct sockaddr *sa,
				  uint64_t *retry_ms)
{
	unsigned char key[NEXSRV_RATELIMIT_ADDRESS_KEY_MAX];
	size_t len = nexsrv_ratelimit_address_key(sa, key);

	return nexsrv_ratelimit_take(t->address, key, len, retry_ms);
}

int nexsrv_ratelimit_take_caller(struct nexsrv_ratelimit_tiers *t, const void *key, size_t len,
				 uint64_t *retry_ms)
{
	return nexsrv_ratelimit_take(t->caller, key, len, retry_ms);
}

struct nexsrv_ratelimit *nexsrv_ratelimit_tier(struct nexsrv_ratelimit_tiers *t, bool address)
{
	return address ? t->address : t->caller;
}
