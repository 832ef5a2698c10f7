/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * IP address management: every device of a VPC gets one IPv4 and one IPv6 tunnel address
 * from the VPC's pools (ipv4_cidr, ipv6_cidr), never the same one twice, even when many
 * devices enrol at the same moment through several replicas.
 *
 * The rules, per pool:
 *   - usable addresses: the pool without its first address (the IPv4 network address, the
 *     IPv6 subnet-router anycast address) and, for IPv4, without its last (broadcast);
 *   - a requested address is honoured when it is usable and free, refused otherwise;
 *   - without a request, an address that is neither allocated nor inside a prefix some
 *     device of the VPC advertises (so routes never shadow a tunnel address): the lowest
 *     released one (its device was deleted), else the next one of the pool's cursor, in
 *     constant time (nexodus_ipam_take() in migration 0002: one statement, the cursor row
 *     locked until commit, so the enrolments of a VPC take addresses in turn and, without
 *     failures, still get the lowest ones; an enrolment's INSERT takes them itself, with
 *     nexodus_ipam_take_or_fail() of migration 0004); once the cursor has passed the end of
 *     the pool, the pool is searched for the lowest gap;
 *   - the database decides: ipam_allocations has one row per address in use with
 *     PRIMARY KEY (vpc_id, address), so two transactions that pick the same address cannot
 *     both commit it; the loser sees the conflict (INSERT ... ON CONFLICT DO NOTHING) and
 *     moves on to the next candidate, a bounded number of times;
 *   - addresses are released with the device (ON DELETE CASCADE) in its delete transaction,
 *     and a trigger records them for reuse.
 *
 * The address arithmetic is pure (unit-tested without a database); the allocation runs on
 * the caller's connection inside the caller's transaction, so an enrolment that fails later
 * leaves no allocation behind.
 */
#ifndef NEXSRV_IPAM_H
#define NEXSRV_IPAM_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/errmsg.h"
#include "lib/prefix.h"
#include "lib/strutil.h"

/* Candidates tried by one allocation before it gives up (each costs one INSERT). */
#define NEXSRV_IPAM_ATTEMPTS 64

/* Longest pools accepted: a /30 has two usable IPv4 addresses, a /126 three IPv6 ones. */
#define NEXSRV_IPAM_V4_MAX_LEN 30
#define NEXSRV_IPAM_V6_MAX_LEN 126

/* --- address arithmetic (pure) ------------------------------------------------------------ */

/* Whether p can serve as a pool: IPv4 up to /30, IPv6 up to /126, no host bits set.  0 or
 * -EINVAL with err naming the prefix. */
int nexsrv_ipam_pool_check(const struct nx_prefix *pool, struct nx_err *err);

/* The first and last address of a prefix (host bits ignored). */
void nexsrv_ipam_prefix_first(const struct nx_prefix *p, struct nx_addr *out);
void nexsrv_ipam_prefix_last(const struct nx_prefix *p, struct nx_addr *out);

/* The lowest and the highest usable address of a pool (see above).  -EINVAL when the pool
 * has none (it failed nexsrv_ipam_pool_check). */
int nexsrv_ipam_pool_bounds(const struct nx_prefix *pool, struct nx_addr *first,
			    struct nx_addr *last);

/* Whether a is a usable address of pool (inside it, not its first, not its IPv4 last). */
bool nexsrv_ipam_usable(const struct nx_prefix *pool, const struct nx_addr *a);

/* *out = a + n within a's family; -ERANGE when that passes the family's last address. */
int nexsrv_ipam_addr_add(const struct nx_addr *a, uint64_t n, struct nx_addr *out);

/* The usable address after a (a itself need not be usable, but must be in the pool's
 * family); -ENOSPC when there is none. */
int nexsrv_ipam_next(const struct nx_prefix *pool, const struct nx_addr *a, struct nx_addr *out);

/*
 * Moves *cand forward to the lowest usable address >= *cand that lies in none of the n
 * prefixes of avoid (prefixes of another family are ignored).  0, or -ENOSPC when no such
 * address is left in the pool.
 */
int nexsrv_ipam_skip(const struct nx_prefix *pool, const struct nx_prefix *avoid, size_t n,
		     struct nx_addr *cand);

/* --- allocation (on the caller's connection, inside its transaction) ---------------------- */

/* A prefix some device of the VPC advertises, with that device. */
struct nexsrv_ipam_avoid {
	struct nx_prefix prefix;
	char device_id[37];
};

/* Reads the prefixes the devices of vpc_id advertise (except exclude_device, may be NULL,
 * and default routes: an exit node's, they hold no address of the VPC; avoid_extra skips
 * them too) into a new array (*out, free() it; NULL when *n is 0).  The count, or a negative errno
 * from nexsrv_db_exec() with err set. */
int nexsrv_ipam_advertised(PGconn *conn, const char *vpc_id, const char *exclude_device,
			   struct nexsrv_ipam_avoid **out, size_t *n, struct nx_err *err);

/* nexsrv_ipam_advertised() in two halves, for a caller that runs the statement along with
 * others (nexsrv_db_pipeline()): its text ($1 the VPC, $2 the device left out or NULL), and
 * the reading of its result (rows: what the statement returned). */
extern const char nexsrv_ipam_advertised_sql[];
int nexsrv_ipam_advertised_read(const PGresult *res, int rows, struct nexsrv_ipam_avoid **out,
				size_t *n, struct nx_err *err);

struct nexsrv_ipam_request {
	const char *vpc_id;
	/* The device the address is for (it may be inserted later in the same transaction:
	 * the allocation's foreign key is checked at commit), or NULL: none yet, see
	 * nexsrv_ipam_assign(). */
	const char *device_id;
	struct nx_prefix pool;
	const struct nx_addr *requested;       /* NULL: a free address (see above) */
	const struct nexsrv_ipam_avoid *avoid; /* prefixes to stay out of */
	size_t n_avoid;
	const struct nx_prefix *avoid_extra; /* more of them (the new device's own), no owner */
	size_t n_avoid_extra;
};

/*
 * Allocates one address of req->pool for vpc_id (a row of ipam_allocations for
 * req->device_id) and stores it in *out.  0 on success;
 *   -EADDRNOTAVAIL  the requested address is not a usable address of the pool
 *   -EEXIST         the requested address is taken: holder gets the device holding it, or
 *                   the device advertising a prefix that contains it ("" when unknown)
 *   -ENOSPC         no free address left (or none found in NEXSRV_IPAM_ATTEMPTS tries)
 *   others          from nexsrv_db_exec() (-ENOTCONN, -EAGAIN, ...)
 * err says which in words.  holder may be NULL.
 */
int nexsrv_ipam_allocate(PGconn *conn, const struct nexsrv_ipam_request *req, struct nx_addr *out,
			 char *holder, size_t holder_size, struct nx_err *err);

/* Most requests nexsrv_ipam_allocate_set() takes at once. */
#define NEXSRV_IPAM_SET_MAX 4

/*
 * nexsrv_ipam_allocate() for n requests (the pools of one device, same vpc_id and
 * device_id): requested addresses first, then the others in one round trip, in the order
 * given (which must be the same for everyone: the pools' cursors are locked in it).  out[i]
 * for reqs[i].  On failure *failed is the request that failed, the others may be allocated:
 * roll the transaction back.
 */
int nexsrv_ipam_allocate_set(PGconn *conn, const struct nexsrv_ipam_request *reqs, size_t n,
			     struct nx_addr *out, size_t *failed, char *holder, size_t holder_size,
			     struct nx_err *err);

/*
 * For a statement that takes a free address of req->pool itself, as nexsrv_ipam_allocate()
 * does without a request but in constant time only: nexodus_ipam_take_or_fail(vpc_id,
 * first, last, avoid, device_id) of migration 0004 returns the address, and fails with
 * SQLSTATE NXI01 (-ENOSPC from nexsrv_db_exec()) where nexsrv_ipam_allocate() would go on
 * to search the pool.  Its arguments for req: 0, or -EINVAL (not a pool) or -ENOMEM with err
 * set; nexsrv_ipam_take_args_fini() frees them.
 */
struct nexsrv_ipam_take_args {
	char first[NX_ADDR_STRLEN], last[NX_ADDR_STRLEN];
	struct nx_sbuf avoid; /* a cidr[] literal */
};
int nexsrv_ipam_take_args(const struct nexsrv_ipam_request *req, struct nexsrv_ipam_take_args *a,
			  struct nx_err *err);
void nexsrv_ipam_take_args_fini(struct nexsrv_ipam_take_args *a);

/* Hands the n addresses just allocated in vpc_id to device_id.  0 or a negative errno. */
int nexsrv_ipam_assign(PGconn *conn, const char *vpc_id, const struct nx_addr *addrs, size_t n,
		       const char *device_id, struct nx_err *err);

#endif /* NEXSRV_IPAM_H */
