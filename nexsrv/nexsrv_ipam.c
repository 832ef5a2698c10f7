/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Tunnel address allocation from a VPC's pools: the arithmetic on addresses as big-endian
 * byte strings, and the search for a free address against ipam_allocations, whose primary
 * key is what keeps two devices from ever holding the same address (nexsrv_ipam.h).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strutil.h"
#include "nexsrv/nexsrv_db.h"
#include "nexsrv/nexsrv_ipam.h"

/* --- address arithmetic -------------------------------------------------------------------- */

static size_t addr_len(sa_family_t family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

static uint8_t *addr_bytes(struct nx_addr *a)
{
	return a->family == AF_INET ? (uint8_t *)&a->v4 : (uint8_t *)&a->v6;
}

/* Sets (ones) or clears the host bits of p's address into out. */
static void prefix_edge(const struct nx_prefix *p, bool ones, struct nx_addr *out)
{
	size_t len = addr_len(p->addr.family);
	uint8_t *b;

	*out = p->addr;
	b = addr_bytes(out);
	for (size_t i = 0; i < len; i++) {
		unsigned bit0 = (unsigned)i * 8; /* first bit of this byte */
		uint8_t host;

		if (bit0 + 8 <= p->len)
			continue;
		host = bit0 >= p->len ? 0xff : (uint8_t)(0xff >> (p->len - bit0));
		b[i] = ones ? (uint8_t)(b[i] | host) : (uint8_t)(b[i] & ~host);
	}
}

void nexsrv_ipam_prefix_first(const struct nx_prefix *p, struct nx_addr *out)
{
	prefix_edge(p, false, out);
}

void nexsrv_ipam_prefix_last(const struct nx_prefix *p, struct nx_addr *out)
{
	prefix_edge(p, true, out);
}

int nexsrv_ipam_addr_add(const struct nx_addr *a, uint64_t n, struct nx_addr *out)
{
	size_t len = addr_len(a->family);
	struct nx_addr r = *a;
	uint8_t *b = addr_bytes(&r);
	uint64_t carry = n;

	if (!len)
		return -EAFNOSUPPORT;
	for (size_t i = len; i-- > 0 && carry;) {
		uint64_t sum = b[i] + (carry & 0xff);

		b[i] = (uint8_t)sum;
		carry = (carry >> 8) + (sum >> 8);
	}
	if (carry)
		return -ERANGE;
	*out = r;
	return 0;
}

/* a - 1; a must not be the family's zero address. */
static void addr_dec(struct nx_addr *a)
{
	uint8_t *b = addr_bytes(a);

	for (size_t i = addr_len(a->family); i-- > 0;)
		if (b[i]--)
			break;
}

int nexsrv_ipam_pool_check(const struct nx_prefix *pool, struct nx_err *err)
{
	char text[NX_PREFIX_STRLEN];
	struct nx_addr first;
	unsigned max;

	nx_prefix_format(pool, text, sizeof(text));
	if (pool->addr.family == AF_INET)
		max = NEXSRV_IPAM_V4_MAX_LEN;
	else if (pool->addr.family == AF_INET6)
		max = NEXSRV_IPAM_V6_MAX_LEN;
	else
		return nx_err_set(err, EINVAL, "not an IPv4 or IPv6 prefix");
	if (pool->len > max)
		return nx_err_set(err, EINVAL, "\"%s\": a pool must be /%u or larger", text, max);
	nexsrv_ipam_prefix_first(pool, &first);
	if (!nx_addr_eq(&first, &pool->addr))
		return nx_err_set(err, EINVAL, "\"%s\": host bits are set", text);
	return 0;
}

int nexsrv_ipam_pool_bounds(const struct nx_prefix *pool, struct nx_addr *first,
			    struct nx_addr *last)
{
	if (nexsrv_ipam_pool_check(pool, NULL) < 0)
		return -EINVAL;
	nexsrv_ipam_prefix_first(pool, first);
	/* A pool is at most /30 or /126: first + 1 stays inside it. */
	nexsrv_ipam_addr_add(first, 1, first);
	nexsrv_ipam_prefix_last(pool, last);
	if (pool->addr.family == AF_INET)
		addr_dec(last);
	return 0;
}

bool nexsrv_ipam_usable(const struct nx_prefix *pool, const struct nx_addr *a)
{
	struct nx_addr first, last;

	if (a->family != pool->addr.family || nexsrv_ipam_pool_bounds(pool, &first, &last) < 0)
		return false;
	return nx_addr_cmp(a, &first) >= 0 && nx_addr_cmp(a, &last) <= 0;
}

int nexsrv_ipam_next(const struct nx_prefix *pool, const struct nx_addr *a, struct nx_addr *out)
{
	struct nx_addr first, last, n;

	if (a->family != pool->addr.family || nexsrv_ipam_pool_bounds(pool, &first, &last) < 0)
		return -EINVAL;
	if (nx_addr_cmp(a, &first) < 0) {
		*out = first;
		return 0;
	}
	if (nexsrv_ipam_addr_add(a, 1, &n) < 0 || nx_addr_cmp(&n, &last) > 0)
		return -ENOSPC;
	*out = n;
	return 0;
}

int nexsrv_ipam_skip(const struct nx_prefix *pool, const struct nx_prefix *avoid, size_t n,
		     struct nx_addr *cand)
{
	struct nx_addr first, last, c = *cand;
	bool moved;

	if (c.family != pool->addr.family || nexsrv_ipam_pool_bounds(pool, &first, &last) < 0)
		return -EINVAL;
	if (nx_addr_cmp(&c, &first) < 0)
		c = first;
	/* Each move puts c past the end of one prefix for good: at most n moves. */
	do {
		moved = false;
		if (nx_addr_cmp(&c, &last) > 0)
			return -ENOSPC;
		for (size_t i = 0; i < n; i++) {
			struct nx_addr end;

			if (!nx_prefix_contains_addr(&avoid[i], &c))
				continue;
			nexsrv_ipam_prefix_last(&avoid[i], &end);
			if (nexsrv_ipam_addr_add(&end, 1, &c) < 0)
				return -ENOSPC;
			moved = true;
		}
	} while (moved);
	*cand = c;
	return 0;
}

/* --- allocation ---------------------------------------------------------------------------- */

const char nexsrv_ipam_advertised_sql[] =
	"SELECT d.id, c::text FROM devices d CROSS JOIN LATERAL unnest(d.advertise_cidrs) c"
	" WHERE d.vpc_id = $1 AND d.advertise_cidrs <> '{}' AND masklen(c) > 0"
	" AND ($2::uuid IS NULL OR d.id <> $2::uuid)";

int nexsrv_ipam_advertised_read(const PGresult *res, int rows, struct nexsrv_ipam_avoid **out,
				size_t *n, struct nx_err *err)
{
	struct nexsrv_ipam_avoid *v;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	if (rows <= 0)
		return rows;
	v = calloc((size_t)rows, sizeof(*v));
	if (!v)
		return nx_err_set(err, ENOMEM, "advertised prefixes: out of memory");
	for (int i = 0; i < rows; i++) {
		const char *id = nexsrv_db_text(res, i, 0), *cidr = nexsrv_db_text(res, i, 1);

		if (!id || !cidr || nx_prefix_parse(cidr, &v[k].prefix, 0, NULL) < 0)
			continue; /* cannot happen with a cidr[] column */
		nx_strlcpy(v[k].device_id, id, sizeof(v[k].device_id));
		k++;
	}
	*out = v;
	*n = k;
	return (int)k;
}

int nexsrv_ipam_advertised(PGconn *conn, const char *vpc_id, const char *exclude_device,
			   struct nexsrv_ipam_avoid **out, size_t *n, struct nx_err *err)
{
	const char *params[] = { vpc_id, exclude_device };
	PGresult *res = NULL;
	int rows;

	*out = NULL;
	*n = 0;
	rows = nexsrv_db_exec(conn, nexsrv_ipam_advertised_sql, 2, params, &res, err);
	if (rows > 0)
		rows = nexsrv_ipam_advertised_read(res, rows, out, n, err);
	PQclear(res);
	return rows;
}

/* The device holding addr in the VPC, into holder ("" when none or unknown). */
static void find_holder(PGconn *conn, const char *vpc_id, const char *addr, char *holder,
			size_t size)
{
	static const char sql[] = "SELECT device_id FROM ipam_allocations"
				  " WHERE vpc_id = $1 AND address = $2::inet";
	const char *params[] = { vpc_id, addr };
	PGresult *res = NULL;

	if (holder && size)
		holder[0] = '\0';
	if (nexsrv_db_exec(conn, sql, 2, params, &res, NULL) == 1 && holder &&
	    nexsrv_db_text(res, 0, 0))
		nx_strlcpy(holder, nexsrv_db_text(res, 0, 0), size);
	PQclear(res);
}

/* Tries to take addr for device (may be NULL): 1 taken by us, 0 already someone's, or a
 * negative errno. */
static int try_insert(PGconn *conn, const char *vpc_id, const char *addr, const char *device,
		      struct nx_err *err)
{
	static const char sql[] = "INSERT INTO ipam_allocations (vpc_id, address, device_id)"
				  " VALUES ($1, $2::inet, $3::uuid) ON CONFLICT DO NOTHING";
	const char *params[] = { vpc_id, addr, device };

	return nexsrv_db_exec(conn, sql, 3, params, NULL, err);
}

/* The lowest unallocated address in [from, last] of the VPC, into *out: 1, 0 when there is
 * none, or a negative errno. */
static int lowest_free(PGconn *conn, const char *vpc_id, const struct nx_addr *from,
		       const struct nx_addr *last, struct nx_addr *out, struct nx_err *err)
{
	/* Either `from` itself or the address just after an allocated one: the first gap. */
	static const char sql[] =
		"SELECT host(s.c) FROM ("
		" SELECT $2::inet AS c"
		" UNION ALL"
		" SELECT a.address + 1 FROM ipam_allocations a"
		"  WHERE a.vpc_id = $1 AND a.address >= $2::inet AND a.address < $3::inet"
		") s WHERE s.c <= $3::inet AND NOT EXISTS ("
		" SELECT 1 FROM ipam_allocations b WHERE b.vpc_id = $1 AND b.address = s.c)"
		" ORDER BY s.c LIMIT 1";
	char from_s[NX_ADDR_STRLEN], last_s[NX_ADDR_STRLEN];
	const char *params[] = { vpc_id, nx_addr_format(from, from_s, sizeof(from_s)),
				 nx_addr_format(last, last_s, sizeof(last_s)) };
	PGresult *res = NULL;
	int rc = nexsrv_db_exec(conn, sql, 3, params, &res, err);

	if (rc == 1) {
		const char *text = nexsrv_db_text(res, 0, 0);

		if (!text || nx_addr_parse(text, out, NULL) < 0)
			rc = nx_err_set(err, EIO, "IPAM: unexpected address from the database");
	}
	PQclear(res);
	return rc;
}

static const struct nexsrv_ipam_avoid *avoided_by(const struct nexsrv_ipam_request *req,
						  const struct nx_addr *a)
{
	for (size_t i = 0; i < req->n_avoid; i++)
		if (nx_prefix_contains_addr(&req->avoid[i].prefix, a))
			return &req->avoid[i];
	return NULL;
}

static bool avoided_extra(const struct nexsrv_ipam_request *req, const struct nx_addr *a)
{
	for (size_t i = 0; i < req->n_avoid_extra; i++)
		if (!nx_prefix_is_default(&req->avoid_extra[i]) &&
		    nx_prefix_contains_addr(&req->avoid_extra[i], a))
			return true;
	return false;
}

static int allocate_requested(PGconn *conn, const struct nexsrv_ipam_request *req,
			      struct nx_addr *out, char *holder, size_t holder_size,
			      struct nx_err *err)
{
	char text[NX_ADDR_STRLEN], pool[NX_PREFIX_STRLEN];
	const struct nexsrv_ipam_avoid *adv;
	int rc;

	nx_addr_format(req->requested, text, sizeof(text));
	nx_prefix_format(&req->pool, pool, sizeof(pool));
	if (!nexsrv_ipam_usable(&req->pool, req->requested))
		return nx_err_set(err, EADDRNOTAVAIL, "%s is not a usable address of %s", text,
				  pool);
	adv = avoided_by(req, req->requested);
	if (adv || avoided_extra(req, req->requested)) {
		if (holder && holder_size)
			nx_strlcpy(holder, adv ? adv->device_id : "", holder_size);
		return nx_err_set(err, EEXIST, "%s lies in a prefix a device advertises", text);
	}
	rc = try_insert(conn, req->vpc_id, text, req->device_id, err);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		find_holder(conn, req->vpc_id, text, holder, holder_size);
		return nx_err_set(err, EEXIST, "%s is already allocated", text);
	}
	*out = *req->requested;
	return 0;
}

/* The avoid prefixes of the request as one plain array (for nexsrv_ipam_skip). */
static struct nx_prefix *avoid_array(const struct nexsrv_ipam_request *req, size_t *n)
{
	struct nx_prefix *v;
	size_t k = 0;

	*n = req->n_avoid + req->n_avoid_extra;
	v = calloc(*n ? *n : 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < req->n_avoid; i++)
		v[k++] = req->avoid[i].prefix;
	for (size_t i = 0; i < req->n_avoid_extra; i++)
		if (!nx_prefix_is_default(&req->avoid_extra[i]))
			v[k++] = req->avoid_extra[i];
	*n = k;
	return v;
}

/* The avoid prefixes of the request as a cidr[] literal into list. */
static void avoid_literal(const struct nx_prefix *avoid, size_t n, struct nx_sbuf *list)
{
	char text[NX_PREFIX_STRLEN];

	nx_sbuf_puts(list, "{");
	for (size_t i = 0; i < n; i++) {
		struct nx_prefix p = avoid[i];

		/* cidr wants no host bits: the prefix as a network */
		nexsrv_ipam_prefix_first(&avoid[i], &p.addr);
		nx_sbuf_printf(list, "%s%s", i ? "," : "",
			       nx_prefix_format(&p, text, sizeof(text)));
	}
	nx_sbuf_puts(list, "}");
}

int nexsrv_ipam_take_args(const struct nexsrv_ipam_request *req, struct nexsrv_ipam_take_args *a,
			  struct nx_err *err)
{
	struct nx_addr first, last;
	struct nx_prefix *avoid;
	size_t n_avoid;
	char pool[NX_PREFIX_STRLEN];

	nx_sbuf_init(&a->avoid, NULL, 0);
	if (nexsrv_ipam_pool_bounds(&req->pool, &first, &last) < 0)
		return nx_err_set(err, EINVAL, "%s cannot serve as an address pool",
				  nx_prefix_format(&req->pool, pool, sizeof(pool)));
	nx_addr_format(&first, a->first, sizeof(a->first));
	nx_addr_format(&last, a->last, sizeof(a->last));
	avoid = avoid_array(req, &n_avoid);
	if (avoid)
		avoid_literal(avoid, n_avoid, &a->avoid);
	free(avoid);
	if (!avoid || nx_sbuf_truncated(&a->avoid)) {
		nx_sbuf_fini(&a->avoid);
		return nx_err_set(err, ENOMEM, "IPAM: out of memory");
	}
	return 0;
}

void nexsrv_ipam_take_args_fini(struct nexsrv_ipam_take_args *a)
{
	nx_sbuf_fini(&a->avoid);
}

/* The cursor's next address, or the lowest released one (nexodus_ipam_take() in migration
 * 0002), allocated into *out: 1, 0 when the pool must be searched instead, or a negative
 * errno. */
static int take_next(PGconn *conn, const struct nexsrv_ipam_request *req,
		     const struct nx_addr *first, const struct nx_addr *last,
		     const struct nx_prefix *avoid, size_t n_avoid, struct nx_addr *out,
		     struct nx_err *err)
{
	static const char sql[] =
		"SELECT host(nexodus_ipam_take($1, $2::inet, $3::inet, $4::cidr[], $5::uuid))";
	char first_s[NX_ADDR_STRLEN], last_s[NX_ADDR_STRLEN];
	const char *params[5];
	struct nx_sbuf list;
	PGresult *res = NULL;
	const char *text;
	int rc;

	nx_sbuf_init(&list, NULL, 0);
	avoid_literal(avoid, n_avoid, &list);
	if (nx_sbuf_truncated(&list)) {
		rc = nx_err_set(err, ENOMEM, "IPAM: out of memory");
		goto out;
	}
	params[0] = req->vpc_id;
	params[1] = nx_addr_format(first, first_s, sizeof(first_s));
	params[2] = nx_addr_format(last, last_s, sizeof(last_s));
	params[3] = nx_sbuf_str(&list);
	params[4] = req->device_id;
	rc = nexsrv_db_exec(conn, sql, 5, params, &res, err);
	if (rc < 0)
		goto out;
	text = rc == 1 ? nexsrv_db_text(res, 0, 0) : NULL;
	if (!text) {
		rc = 0;
		goto out;
	}
	if (nx_addr_parse(text, out, NULL) < 0) {
		rc = nx_err_set(err, EIO, "IPAM: unexpected address from the database");
		goto out;
	}
	rc = 1;
out:
	PQclear(res);
	nx_sbuf_fini(&list);
	return rc;
}

int nexsrv_ipam_allocate(PGconn *conn, const struct nexsrv_ipam_request *req, struct nx_addr *out,
			 char *holder, size_t holder_size, struct nx_err *err)
{
	char pool[NX_PREFIX_STRLEN], text[NX_ADDR_STRLEN];
	struct nx_addr first, last, cand;
	struct nx_prefix *avoid = NULL;
	size_t n_avoid;
	int rc;

	if (holder && holder_size)
		holder[0] = '\0';
	nx_prefix_format(&req->pool, pool, sizeof(pool));
	if (nexsrv_ipam_pool_bounds(&req->pool, &first, &last) < 0)
		return nx_err_set(err, EINVAL, "%s cannot serve as an address pool", pool);
	if (req->requested)
		return allocate_requested(conn, req, out, holder, holder_size, err);

	avoid = avoid_array(req, &n_avoid);
	if (!avoid)
		return nx_err_set(err, ENOMEM, "IPAM: out of memory");
	rc = take_next(conn, req, &first, &last, avoid, n_avoid, out, err);
	if (rc != 0) {
		rc = rc < 0 ? rc : 0;
		goto out;
	}
	/* The cursor is at the end of the pool: search it for a gap. */
	cand = first;
	for (unsigned attempt = 0; attempt < NEXSRV_IPAM_ATTEMPTS; attempt++) {
		struct nx_addr free_addr;

		if (nexsrv_ipam_skip(&req->pool, avoid, n_avoid, &cand) < 0)
			break;
		rc = lowest_free(conn, req->vpc_id, &cand, &last, &free_addr, err);
		if (rc < 0)
			goto out;
		if (rc == 0)
			break;
		if (!nx_addr_eq(&free_addr, &cand)) {
			/* A later gap: it may lie in an advertised prefix, check again. */
			cand = free_addr;
			if (nexsrv_ipam_skip(&req->pool, avoid, n_avoid, &cand) < 0)
				break;
			if (!nx_addr_eq(&free_addr, &cand))
				continue;
		}
		rc = try_insert(conn, req->vpc_id, nx_addr_format(&cand, text, sizeof(text)),
				req->device_id, err);
		if (rc < 0)
			goto out;
		if (rc == 1) {
			*out = cand;
			rc = 0;
			goto out;
		}
		/* Taken since we looked (a concurrent enrolment): the next one. */
		if (nexsrv_ipam_next(&req->pool, &cand, &cand) < 0)
			break;
	}
	rc = nx_err_set(err, ENOSPC, "no free address left in %s", pool);
out:
	free(avoid);
	return rc;
}

/* The cursors of the pools of reqs (those with *done false) in one statement: done[i] set and
 * out[i] filled for each that got an address.  0 or a negative errno. */
static int take_next_set(PGconn *conn, const struct nexsrv_ipam_request *reqs, size_t n, bool *done,
			 struct nx_addr *out, struct nx_err *err)
{
	struct nexsrv_ipam_take_args args[NEXSRV_IPAM_SET_MAX];
	const char *params[2 + 3 * NEXSRV_IPAM_SET_MAX];
	size_t pos[NEXSRV_IPAM_SET_MAX], k = 0;
	struct nx_sbuf sql;
	int np = 2, rc = 0;
	PGresult *res = NULL;

	nx_sbuf_init(&sql, NULL, 0);
	params[0] = reqs[0].vpc_id;
	params[1] = reqs[0].device_id;
	nx_sbuf_puts(&sql, "SELECT ");
	for (size_t i = 0; i < n; i++) {
		struct nx_addr first, last;

		if (done[i] || strcmp(reqs[i].vpc_id, reqs[0].vpc_id) != 0 ||
		    (reqs[i].device_id == NULL) != (reqs[0].device_id == NULL) ||
		    (reqs[i].device_id && strcmp(reqs[i].device_id, reqs[0].device_id) != 0) ||
		    nexsrv_ipam_pool_bounds(&reqs[i].pool, &first, &last) < 0)
			continue; /* on its own, which says what is wrong */
		rc = nexsrv_ipam_take_args(&reqs[i], &args[k], err);
		if (rc < 0)
			goto out;
		params[np] = args[k].first;
		params[np + 1] = args[k].last;
		params[np + 2] = nx_sbuf_str(&args[k].avoid);
		nx_sbuf_printf(&sql,
			       "%shost(nexodus_ipam_take($1, $%d::inet, $%d::inet, $%d::cidr[], "
			       "$2::uuid))",
			       k ? ", " : "", np + 1, np + 2, np + 3);
		np += 3;
		pos[k++] = i;
	}
	if (!k)
		goto out;
	if (nx_sbuf_truncated(&sql)) {
		rc = nx_err_set(err, ENOMEM, "IPAM: out of memory");
		goto out;
	}
	rc = nexsrv_db_exec(conn, nx_sbuf_str(&sql), np, params, &res, err);
	if (rc < 0)
		goto out;
	for (size_t j = 0; rc == 1 && j < k; j++) {
		const char *text = nexsrv_db_text(res, 0, (int)j);

		if (!text)
			continue; /* the pool must be searched */
		if (nx_addr_parse(text, &out[pos[j]], NULL) < 0) {
			rc = nx_err_set(err, EIO, "IPAM: unexpected address from the database");
			goto out;
		}
		done[pos[j]] = true;
	}
	rc = 0;
out:
	PQclear(res);
	for (size_t j = 0; j < k; j++)
		nexsrv_ipam_take_args_fini(&args[j]);
	nx_sbuf_fini(&sql);
	return rc;
}

int nexsrv_ipam_allocate_set(PGconn *conn, const struct nexsrv_ipam_request *reqs, size_t n,
			     struct nx_addr *out, size_t *failed, char *holder, size_t holder_size,
			     struct nx_err *err)
{
	bool done[NEXSRV_IPAM_SET_MAX] = { false };
	int rc;

	*failed = 0;
	if (n == 0 || n > NEXSRV_IPAM_SET_MAX)
		return nx_err_set(err, EINVAL, "IPAM: %zu requests at once", n);
	/* Requested addresses first: each may be refused. */
	for (size_t i = 0; i < n; i++) {
		if (!reqs[i].requested)
			continue;
		rc = nexsrv_ipam_allocate(conn, &reqs[i], &out[i], holder, holder_size, err);
		if (rc < 0) {
			*failed = i;
			return rc;
		}
		done[i] = true;
	}
	rc = take_next_set(conn, reqs, n, done, out, err);
	if (rc < 0)
		return rc;
	/* What the cursors could not give: on its own, searching the pool. */
	for (size_t i = 0; i < n; i++) {
		if (done[i])
			continue;
		rc = nexsrv_ipam_allocate(conn, &reqs[i], &out[i], holder, holder_size, err);
		if (rc < 0) {
			*failed = i;
			return rc;
		}
	}
	return 0;
}

int nexsrv_ipam_assign(PGconn *conn, const char *vpc_id, const struct nx_addr *addrs, size_t n,
		       const char *device_id, struct nx_err *err)
{
	static const char sql[] = "UPDATE ipam_allocations SET device_id = $3"
				  " WHERE vpc_id = $1 AND address = ANY ($2::inet[])"
				  " AND device_id IS NULL";
	struct nx_sbuf list;
	char text[NX_ADDR_STRLEN];
	const char *params[3];
	int rc;

	nx_sbuf_init(&list, NULL, 0);
	nx_sbuf_puts(&list, "{");
	for (size_t i = 0; i < n; i++)
		nx_sbuf_printf(&list, "%s%s", i ? "," : "",
			       nx_addr_format(&addrs[i], text, sizeof(text)));
	nx_sbuf_puts(&list, "}");
	if (nx_sbuf_truncated(&list)) {
		rc = nx_err_set(err, ENOMEM, "IPAM: out of memory");
		goto out;
	}
	params[0] = vpc_id;
	params[1] = nx_sbuf_str(&list);
	params[2] = device_id;
	rc = nexsrv_db_exec(conn, sql, 3, params, NULL, err);
	if (rc >= 0 && (size_t)rc != n)
		rc = nx_err_set(err, EIO, "IPAM: %d of %zu addresses assigned to %s", rc, n,
				device_id);
	else if (rc >= 0)
		rc = 0;
out:
	nx_sbuf_fini(&list);
	return rc;
}
