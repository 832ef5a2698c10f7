/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-caller request rate limits of the REST API: one token bucket per caller, so that one
 * busy or misbehaving client gets 429 Too Many Requests while everybody else is served.
 *
 * A caller is an opaque key of up to NEXSRV_RATELIMIT_KEY_MAX bytes.  Each key's bucket holds
 * at most `burst` tokens and refills at `rate` tokens per second; a request takes one token.
 * Tokens are counted in billionths, so refills are exact at any rate from 1 to 1000000 per
 * second.
 *
 * The table is bounded (max_keys): a bucket that has refilled completely is the same as no
 * bucket and is dropped when room is needed; if none has, the least recently used goes.  The
 * clock is injectable so that tests run on a fake one.  All functions are thread-safe; the
 * table is split into shards with a lock each so that pool threads rarely contend.
 *
 * The REST API uses two such tables, the tiers below (struct nexsrv_ratelimit_tiers): one
 * keyed by the client's address, charged for every request, and one keyed by the verified
 * identity of the caller, charged once the caller is known.  A key the client chooses (a
 * bearer token before it is verified) never selects a bucket: inventing tokens would give
 * a client a fresh bucket for each.
 */
#ifndef NEXSRV_RATELIMIT_H
#define NEXSRV_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/errmsg.h"

#define NEXSRV_RATELIMIT_KEY_MAX	  48
#define NEXSRV_RATELIMIT_DEFAULT_MAX_KEYS 65536
#define NEXSRV_RATELIMIT_RATE_MAX	  1000000u
#define NEXSRV_RATELIMIT_BURST_MAX	  1000000u

/* A monotonic clock in nanoseconds. */
typedef uint64_t (*nexsrv_clock_fn)(void *arg);

struct nexsrv_ratelimit_config {
	uint32_t rate;	       /* tokens per second, 1..NEXSRV_RATELIMIT_RATE_MAX */
	uint32_t burst;	       /* bucket size, 1..NEXSRV_RATELIMIT_BURST_MAX */
	size_t max_keys;       /* buckets kept at most; 0: NEXSRV_RATELIMIT_DEFAULT_MAX_KEYS */
	nexsrv_clock_fn clock; /* NULL: CLOCK_MONOTONIC */
	void *clock_arg;
};

struct nexsrv_ratelimit;

/* NULL with err set (EINVAL for a rate or burst out of range, ENOMEM). */
struct nexsrv_ratelimit *nexsrv_ratelimit_new(const struct nexsrv_ratelimit_config *cfg,
					      struct nx_err *err);
void nexsrv_ratelimit_free(struct nexsrv_ratelimit *rl);

/* Changes rate and burst for every caller; buckets keep their tokens (capped at the new
 * burst).  0 or -EINVAL with err set. */
int nexsrv_ratelimit_set(struct nexsrv_ratelimit *rl, uint32_t rate, uint32_t burst,
			 struct nx_err *err);

/*
 * Takes one token from the bucket of key (len bytes, 1..NEXSRV_RATELIMIT_KEY_MAX); a new key
 * starts with a full bucket.  Returns 0 when the request may proceed, -EAGAIN when the
 * bucket is empty (then *retry_ms, if not NULL, is the time in milliseconds, at least 1,
 * until a token is available), -EINVAL for a bad key, -ENOMEM when a new bucket could not
 * be allocated (callers should let such a request through).
 */
int nexsrv_ratelimit_take(struct nexsrv_ratelimit *rl, const void *key, size_t len,
			  uint64_t *retry_ms);

/* The number of buckets held. */
size_t nexsrv_ratelimit_count(struct nexsrv_ratelimit *rl);

/* CLOCK_MONOTONIC in nanoseconds (the default clock). */
uint64_t nexsrv_monotonic_ns(void *arg);

/* --- the REST API's two tiers --------------------------------------------------------- */

/*
 * The address tier's rate and burst are this many times the caller tier's.  One address is
 * often many callers: the agents of a site behind one NAT address, each with its own device
 * token and its own caller bucket.  The address tier is only there to stop a flood that
 * names no caller (unauthenticated requests, invented or stolen-looking tokens that fail
 * authentication), so it must be generous enough never to be what limits a site's agents in
 * normal operation; ten agents at full per-caller speed fit in it.
 */
#define NEXSRV_RATELIMIT_ADDRESS_FACTOR 10

/* The longest address key: a family byte and an IPv6 /64. */
#define NEXSRV_RATELIMIT_ADDRESS_KEY_MAX 9

struct sockaddr;

/*
 * The address-tier key of a client address: IPv4 by its /32 (an IPv4-mapped IPv6 address is
 * the IPv4 address), IPv6 by its /64 (one host commonly holds a whole /64, and can pick any
 * address in it).  Writes at most NEXSRV_RATELIMIT_ADDRESS_KEY_MAX bytes and returns their
 * number; an unknown family (or NULL) is one shared key.
 */
size_t nexsrv_ratelimit_address_key(const struct sockaddr *sa, unsigned char *key);

/* rate (or burst) of the caller tier -> that of the address tier: times
 * NEXSRV_RATELIMIT_ADDRESS_FACTOR, at most NEXSRV_RATELIMIT_RATE_MAX (BURST_MAX). */
uint32_t nexsrv_ratelimit_address_rate(uint32_t rate);
uint32_t nexsrv_ratelimit_address_burst(uint32_t burst);

struct nexsrv_ratelimit_tiers;

/* Both tiers: cfg gives the caller tier's rate and burst (the address tier's are derived),
 * and max_keys and clock for each table.  NULL with err set as nexsrv_ratelimit_new(). */
struct nexsrv_ratelimit_tiers *nexsrv_ratelimit_tiers_new(const struct nexsrv_ratelimit_config *cfg,
							  struct nx_err *err);
void nexsrv_ratelimit_tiers_free(struct nexsrv_ratelimit_tiers *t);

/* Changes both tiers (rate and burst of the caller tier); 0 or -EINVAL with err set, and
 * then nothing changed. */
int nexsrv_ratelimit_tiers_set(struct nexsrv_ratelimit_tiers *t, uint32_t rate, uint32_t burst,
			       struct nx_err *err);

/* Takes one token from the bucket of the client address sa (address tier), or of the
 * verified caller key (caller tier).  Results as nexsrv_ratelimit_take(). */
int nexsrv_ratelimit_take_address(struct nexsrv_ratelimit_tiers *t, const struct sockaddr *sa,
				  uint64_t *retry_ms);
int nexsrv_ratelimit_take_caller(struct nexsrv_ratelimit_tiers *t, const void *key, size_t len,
				 uint64_t *retry_ms);

/* The table of one tier (for counts and tests). */
struct nexsrv_ratelimit *nexsrv_ratelimit_tier(struct nexsrv_ratelimit_tiers *t, bool address);

#endif /* NEXSRV_RATELIMIT_H */
