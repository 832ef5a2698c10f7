/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAT discovery: STUN Binding requests sent from WireGuard's own listen port, so that the
 * mapping a NAT reports is the one WireGuard's packets get, and the NAT's behaviour judged
 * from two servers' answers (the same mapping: endpoint-independent; different: symmetric).
 *
 * WireGuard owns its UDP socket (in the kernel, or in wireguard-go), so nexd cannot bind the
 * port.  nexd_stun.c sends from beside it: a raw UDP socket writes datagrams with WireGuard's
 * port as source, and receives a copy of the answers through a BPF filter that passes only
 * UDP to that port carrying the STUN magic cookie.  WireGuard sees the answers too and drops
 * them as invalid; nothing of its own traffic is disturbed.
 */
#ifndef NEXD_NAT_H
#define NEXD_NAT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/errmsg.h"
#include "lib/loop.h"
#include "lib/prefix.h"

/* --- nexd_stun.c: one Binding transaction at a time per server, retransmitted ------------- */

struct nexd_stun;

/* result: 0 with the mapped address, -ETIMEDOUT when no valid answer came, -EPROTO for an
 * error response, another -errno when sending failed. */
typedef void (*nexd_stun_done_fn)(int result, const struct nx_addr *mapped, uint16_t mapped_port,
				  void *arg);

/* Raw sockets for IPv4 and IPv6 (either may be missing on a host without that family),
 * filtered to UDP datagrams for local_port. */
struct nexd_stun *nexd_stun_new(struct nx_loop *loop, uint16_t local_port, struct nx_err *err);
void nexd_stun_free(struct nexd_stun *s);

/* Starts a Binding request to server:port from local_port; done runs once, later, on the
 * loop.  Retransmits after 250 ms, 500 ms, 1 s, then gives up after about 3 s in all (a
 * server that never answers costs nothing but that timer).  Answers with another
 * transaction id, malformed, truncated or oversized datagrams are ignored. */
int nexd_stun_query(struct nexd_stun *s, const struct nx_addr *server, uint16_t port,
		    nexd_stun_done_fn done, void *arg, struct nx_err *err);

/* Cancels every query in flight (their callbacks are not called). */
void nexd_stun_cancel_all(struct nexd_stun *s);

/* --- nexd_resolve.c: host names resolved on the loop, never blocking it ------------------- */

struct nexd_resolver;
struct nexd_lookup;

#define NEXD_RESOLVE_MAX_ADDRS 8

/* result: 0 with n (1 to NEXD_RESOLVE_MAX_ADDRS) addresses, IPv4 ones first; else a negative
 * errno: -ENOENT (no such name), -ENODATA (no address of a usable family), -ETIMEDOUT (no
 * answer in time), -EIO (the name servers failed) or -ENOMEM, with why saying it in words. */
typedef void (*nexd_resolve_fn)(int result, const struct nx_addr *addrs, size_t n, const char *why,
				void *arg);

/* A resolver on loop; /etc/resolv.conf and /etc/hosts are read at the first lookup, and again
 * whenever they have changed.  NULL when out of memory. */
struct nexd_resolver *nexd_resolver_new(struct nx_loop *loop);
/* Forgets every lookup under way (their callbacks are not called); NULL is a no-op. */
void nexd_resolver_free(struct nexd_resolver *r);

/* Starts resolving host (a name: addresses are the caller's to recognise) to the addresses of
 * the families this host has.  done runs once, later, on the loop — within about 6 s even when
 * no name server answers — unless the lookup is cancelled first.  NULL (err says why) when
 * the lookup cannot start. */
struct nexd_lookup *nexd_resolve(struct nexd_resolver *r, const char *host, nexd_resolve_fn done,
				 void *arg, struct nx_err *err);
/* Its callback is not called.  Only before done has run; NULL is a no-op. */
void nexd_lookup_cancel(struct nexd_lookup *l);

/* --- nexd_nat.c: what the NAT does, checked continuously ---------------------------------- */

struct nexd;

/* The published view: changed only after two checks in a row agree, so a flapping answer is
 * not pushed to every peer. */
struct nexd_nat_state {
	bool known;	    /* at least one server answered */
	bool symmetric;	    /* two servers saw different mappings */
	bool single_server; /* only one server answered: symmetric is unknown, taken as false */
	struct nx_addr reflexive; /* the mapping the first server reported */
	uint16_t reflexive_port;
	char server[300];	/* "stun:HOST:PORT" of the server that reported it */
	uint64_t checked_at_ms; /* monotonic time of the last completed check */
	unsigned checks;	/* completed checks */
};

/* Starts checking (every 20 s, and at once after nexd_nat_recheck_soon) once the dataplane
 * is up; the servers are the controller's STUN responder (the service URL's host, port 3478)
 * and every configured stun-server.  Changes of the published view call
 * nexd_ctrl_report_soon(). */
int nexd_nat_start(struct nexd *nexd, struct nx_err *err);
void nexd_nat_stop(struct nexd *nexd);
/* Local addresses or the listen port changed: check again now. */
void nexd_nat_recheck_soon(struct nexd *nexd);

#endif /* NEXD_NAT_H */
