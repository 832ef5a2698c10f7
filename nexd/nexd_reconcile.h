/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the full reconciliation (nexd_reconcile.c) and the one-peer delta (nexd_delta.c) must
 * decide alike: which prefixes a peer claims, which claim wins, where a peer is reached.
 * Private to the two.
 */
#ifndef NEXD_RECONCILE_H
#define NEXD_RECONCILE_H

#include <stdbool.h>

#include "nexd/nexd.h"

#define NEXD_PERSISTENT_KEEPALIVE_S 20

/* The prefix is this device's own (its tunnel or an advertise-cidr): never routed to a peer. */
bool nexd_prefix_is_ours(const struct nexd *nexd, const struct nx_prefix *p);

/* The peer is the active holder of a prefix it advertises (as the controller elected). */
bool nexd_peer_holds(const struct nexd_peer *p, const struct nx_prefix *prefix);

/* Whether a's claim of a prefix beats b's: a tunnel address before an advertisement, then the
 * newest device revision, then the lower device id. */
bool nexd_claim_beats(const struct nexd_peer *a, bool a_tunnel, const struct nexd_peer *b,
		      bool b_tunnel);

/* The endpoint to configure for a peer (and p->path); NULL when it reported none. */
const struct nexd_device_endpoint *nexd_peer_endpoint(const struct nexd *nexd, struct nexd_peer *p);

/* Hands the valid peers' keys to the prober. */
int nexd_probes_update(struct nexd *nexd);

#endif /* NEXD_RECONCILE_H */
