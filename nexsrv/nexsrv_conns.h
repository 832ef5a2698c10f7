/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The HTTP server's connection budget: how many connections it holds, in all and from each
 * client address, counted over libmicrohttpd's connections and the watch streams nexsrv
 * writes on sockets of its own.  A new connection is admitted only under both limits.
 * Thread-safe.
 */
#ifndef NEXSRV_CONNS_H
#define NEXSRV_CONNS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* A client address as a key: IPv4 as its IPv4-mapped IPv6 form. */
struct nexsrv_conn_addr {
	uint8_t a[16];
};

struct nexsrv_conns;

struct nexsrv_conns *nexsrv_conns_new(unsigned max_total, unsigned max_per_addr);
void nexsrv_conns_free(struct nexsrv_conns *c);

/* The key of sa; false for an address family that is neither IPv4 nor IPv6 (admitted and
 * counted under the all-zero key). */
bool nexsrv_conn_addr_from(const struct sockaddr *sa, socklen_t len, struct nexsrv_conn_addr *out);

/* Whether one more connection from a fits under both limits (it is not counted yet). */
bool nexsrv_conns_allow(struct nexsrv_conns *c, const struct nexsrv_conn_addr *a);
/* Counts a connection from a, and forgets it.  add fails (-ENOMEM) only without memory
 * for a new address; the connection then goes uncounted and remove must not be called. */
int nexsrv_conns_add(struct nexsrv_conns *c, const struct nexsrv_conn_addr *a);
void nexsrv_conns_remove(struct nexsrv_conns *c, const struct nexsrv_conn_addr *a);

unsigned nexsrv_conns_total(struct nexsrv_conns *c);
unsigned nexsrv_conns_from(struct nexsrv_conns *c, const struct nexsrv_conn_addr *a);

#endif
