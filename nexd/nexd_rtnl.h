/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd's rtnetlink: the tunnel interface's link state and addresses, and the routes nexd owns.
 * A route is nexd's when its protocol is NEXD_RTPROT and it leaves through nexd's interface;
 * nothing else is ever changed.  Route writes are batched: many RTM_NEWROUTE/RTM_DELROUTE in
 * one send buffer, each asking for an ACK, the ACKs matched back by sequence number.
 */
#ifndef NEXD_RTNL_H
#define NEXD_RTNL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/errmsg.h"
#include "lib/prefix.h"

/* The route protocol number named "nexodus" in tools/rt_protos.d/nexodus.conf. */
#define NEXD_RTPROT 80

struct nexd_rtnl;

struct nexd_rtnl *nexd_rtnl_new(struct nx_err *err);
void nexd_rtnl_free(struct nexd_rtnl *nl);

/* The interface's index, 0 when there is no such interface, or a negative errno. */
int nexd_rtnl_link_index(struct nexd_rtnl *nl, const char *ifname);

/* Sets the MTU (0: leave it) and brings the link up. */
int nexd_rtnl_link_up(struct nexd_rtnl *nl, int ifindex, unsigned mtu, struct nx_err *err);

/* Deletes a link (used by --flush-on-exit and by backends that create links). */
int nexd_rtnl_link_del(struct nexd_rtnl *nl, int ifindex, struct nx_err *err);

/* Makes the interface hold exactly these addresses (the tunnel /32 and /128 given as host
 * prefixes): adds the missing ones, removes any other global address. */
int nexd_rtnl_addr_sync(struct nexd_rtnl *nl, int ifindex, const struct nx_prefix *addrs, size_t n,
			struct nx_err *err);

/* nexd's routes (protocol NEXD_RTPROT, through ifindex, main table), IPv4 and IPv6.  *out is
 * a malloc'd array of *n prefixes the caller frees. */
int nexd_rtnl_route_dump(struct nexd_rtnl *nl, int ifindex, struct nx_prefix **out, size_t *n,
			 struct nx_err *err);

/* One route write of a batch. */
struct nexd_route_op {
	struct nx_prefix prefix;
	bool del;  /* true: RTM_DELROUTE, false: RTM_NEWROUTE with NLM_F_REPLACE */
	int error; /* out: 0 or the kernel's negative errno for this route */
};

/* Sends all ops as batched messages and waits for every ACK.  Returns the number of ops that
 * failed (each op's error says why; deleting a route that is already gone counts as success),
 * or a negative errno when the socket itself failed. */
int nexd_rtnl_route_batch(struct nexd_rtnl *nl, int ifindex, struct nexd_route_op *ops, size_t n,
			  struct nx_err *err);

/* Turns on IPv4 and IPv6 forwarding (a subnet router or relay needs it); 0 or -errno. */
int nexd_rtnl_enable_forwarding(struct nx_err *err);

#endif /* NEXD_RTNL_H */
