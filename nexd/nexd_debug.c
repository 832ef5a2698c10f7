/* SPDX-License-Identifier: GPL-2.0-or-later */
/* nexd's debug switches: "debug nexodus <controller|dataplane|peers|nat>". */
#include "config.h"

#include "nexd/nexd.h"

NX_DEBUG_DEFINE(nexd_controller, "controller", "Control session with the Nexodus service");
NX_DEBUG_DEFINE(nexd_dataplane, "dataplane", "WireGuard and kernel route programming");
NX_DEBUG_DEFINE(nexd_peers, "peers", "Peer path selection");
NX_DEBUG_DEFINE(nexd_nat, "nat", "NAT discovery (STUN)");
