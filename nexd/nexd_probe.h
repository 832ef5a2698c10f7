/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * In-tunnel path probes, a BFD-like UDP echo between agents.  Every device answers on a probe
 * address of its own, derived from its public key inside NEXD_PROBE_PREFIX (so both sides
 * know it without asking the controller) and always routed to that device's own WireGuard
 * peer, never through a relay: a probe answered proves the direct path, whichever way the
 * device's traffic goes at the time.  Probes go every 100 ms while a path is being proven or
 * is suspect and every 500 ms while it is stable.  A probe is unanswered after
 * max(100 ms, 2 srtt + 4 rttvar), and the next goes at once; three unanswered in a row mark
 * the path failed.  A late answer still proves the path: slow is not failed.
 */
#ifndef NEXD_PROBE_H
#define NEXD_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/errmsg.h"
#include "lib/prefix.h"
#include "lib/wgkey.h"

#define NEXD_PROBE_PORT	     6174
#define NEXD_PROBE_PREFIX    "fd6e:6578:6f64::/48"
#define NEXD_PROBE_MISSES    3	 /* unanswered probes that fail a path */
#define NEXD_PROBE_FAST_MS   100 /* while proving or suspect */
#define NEXD_PROBE_STABLE_MS 500 /* while stable */

struct nexd;

/* The probe message, 16 bytes: "NXPB", type, flags, two zero bytes, the sequence number
 * (network order), four zero bytes.  A reply echoes the request's flags and number. */
#define NEXD_PROBE_MSG_LEN    16
#define NEXD_PROBE_REQUEST    1
#define NEXD_PROBE_REPLY      2
#define NEXD_PROBE_FLAG_READY 0x01 /* the sender wants the direct path to the receiver */

struct nexd_probe_msg {
	uint8_t type;
	uint8_t flags;
	uint32_t seq;
};

void nexd_probe_encode(uint8_t buf[NEXD_PROBE_MSG_LEN], const struct nexd_probe_msg *m);
/* 0, or -EBADMSG when the datagram is not a probe message (the caller ignores it). */
int nexd_probe_decode(const uint8_t *buf, size_t len, struct nexd_probe_msg *m);

/* The probe address of the device with this public key. */
void nexd_probe_addr(const struct nx_wgkey *key, struct nx_addr *out);

struct nexd_probe_result {
	bool ok;		   /* answered, and not NEXD_PROBE_MISSES times unanswered since */
	bool ever;		   /* answered at least once */
	unsigned misses;	   /* unanswered in a row */
	uint32_t rtt_us;	   /* of the last answer */
	uint64_t ok_since_ms;	   /* monotonic: when it last became ok (0 while not ok) */
	uint64_t probing_since_ms; /* when probing this peer started */
	bool peer_ready;	   /* the peer's last probe said it wants the direct path to us */
};

/* Binds [own probe address]:NEXD_PROBE_PORT on the tunnel interface (the address must be
 * on it: the dataplane adds it) and starts the probe timer. */
int nexd_probe_start(struct nexd *nexd, struct nx_err *err);
void nexd_probe_stop(struct nexd *nexd);

/* The peers to probe (their public keys); others are forgotten.  A peer's state survives
 * across calls while it stays listed. */
int nexd_probe_set_peers(struct nexd *nexd, const struct nx_wgkey *keys, size_t n);

/* Whether this device wants the direct path to a peer, carried in its probes so that both
 * ends leave a relay together (WireGuard drops what arrives from a peer other than the one
 * its source address is routed to).  A change sends a probe at once. */
void nexd_probe_set_ready(struct nexd *nexd, const struct nx_wgkey *key, bool ready);

/* The state of a peer's direct path; false when the peer is not probed. */
bool nexd_probe_get(const struct nexd *nexd, const struct nx_wgkey *key,
		    struct nexd_probe_result *out);

#endif /* NEXD_PROBE_H */
