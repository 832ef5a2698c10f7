/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd's WireGuard dataplane: one small interface, two implementations.
 *
 *   uapi    wireguard-go started for the interface (it daemonizes, so it outlives nexd as a
 *           routing daemon's forwarding plane must) and configured with the UAPI text
 *           protocol over /var/run/wireguard/IFNAME.sock;
 *   kernel  the kernel's WireGuard over the generic netlink family "wireguard", big peer
 *           lists split over several messages.
 *
 * Both speak the model below: a device read back whole with get(), changed with set()
 * following wg(8)'s semantics (peers are added or updated, removed with NEXD_WG_PEER_REMOVE,
 * allowed IPs appended unless NEXD_WG_PEER_REPLACE_ALLOWED_IPS).
 */
#ifndef NEXD_WG_H
#define NEXD_WG_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/errmsg.h"
#include "lib/loop.h"
#include "lib/prefix.h"
#include "lib/wgkey.h"

#define NEXD_WG_PEER_REMOVE		 0x1u /* set(): remove this peer */
#define NEXD_WG_PEER_REPLACE_ALLOWED_IPS 0x2u /* set(): allowed_ips replace the peer's list */
#define NEXD_WG_PEER_UPDATE_ONLY	 0x4u /* set(): change the peer only if it exists */

struct nexd_wg_peer {
	struct nx_wgkey public_key;
	struct nx_addr endpoint; /* family AF_UNSPEC: none (set(): leave it unchanged) */
	uint16_t endpoint_port;
	uint16_t keepalive_s; /* persistent keepalive; 0: off */
	struct nx_prefix *allowed_ips;
	size_t n_allowed_ips;
	unsigned flags; /* NEXD_WG_PEER_*, set() only */
	/* get() only */
	int64_t last_handshake_s; /* unix seconds; 0: never */
	uint64_t rx_bytes, tx_bytes;
};

struct nexd_wg_device {
	struct nx_wgkey private_key;
	bool has_private_key; /* get(): the device has one; set(): change it */
	uint16_t listen_port; /* get(): the port in use; set(): 0 leaves it */
	bool replace_peers;   /* set(): peers not listed are removed */
	struct nexd_wg_peer *peers;
	size_t n_peers;
};

/* Frees the peers and their allowed IPs and wipes the private key; the struct is then empty. */
void nexd_wg_device_clear(struct nexd_wg_device *dev);

/* Appends a peer (zeroed, allowed_ips empty) and returns it, or NULL when out of memory. */
struct nexd_wg_peer *nexd_wg_device_add_peer(struct nexd_wg_device *dev);
/* Appends an allowed IP to a peer; 0 or -ENOMEM. */
int nexd_wg_peer_add_allowed_ip(struct nexd_wg_peer *peer, const struct nx_prefix *p);

struct nexd_wg;

struct nexd_wg_ops {
	const char *name; /* "uapi", "kernel" */
	/* Creates the interface, or adopts it as it is when it already exists (graceful
	 * restart: its peers keep forwarding). */
	int (*open)(struct nexd_wg *wg, struct nx_err *err);
	int (*get)(struct nexd_wg *wg, struct nexd_wg_device *out, struct nx_err *err);
	int (*set)(struct nexd_wg *wg, const struct nexd_wg_device *change, struct nx_err *err);
	/* destroy: remove the interface (and stop wireguard-go); else leave it all running. */
	void (*close)(struct nexd_wg *wg, bool destroy);
};

struct nexd_wg {
	const struct nexd_wg_ops *ops;
	char ifname[IF_NAMESIZE];
	void *priv; /* the backend's own state */
};

extern const struct nexd_wg_ops nexd_wg_uapi_ops;
extern const struct nexd_wg_ops nexd_wg_kernel_ops;
extern const struct nexd_wg_ops nexd_wg_null_ops; /* benchmarks and tests: in memory only */

/* True when the running kernel can create a wireguard link (probed once with a throwaway
 * link), which is what backend "auto" decides on. */
bool nexd_wg_kernel_available(void);

/* wg->ops->open() etc. through these, which also log under "debug nexodus dataplane". */
int nexd_wg_open(struct nexd_wg *wg, const struct nexd_wg_ops *ops, const char *ifname,
		 struct nx_err *err);
int nexd_wg_get(struct nexd_wg *wg, struct nexd_wg_device *out, struct nx_err *err);
int nexd_wg_set(struct nexd_wg *wg, const struct nexd_wg_device *change, struct nx_err *err);
void nexd_wg_close(struct nexd_wg *wg, bool destroy);

/* --- the UAPI text protocol (nexd_uapi.c; pure, fuzzed) ------------------------------------ */

/* Parses the reply to "get=1\n\n" (key=value lines ending with "errno=N" and an empty line)
 * into dev.  A non-zero errno in the reply, an unknown key, a malformed value or a missing
 * terminator is an error naming the line; dev is then cleared. */
int nexd_uapi_parse_get(const char *reply, size_t len, struct nexd_wg_device *dev,
			struct nx_err *err);

/* Formats "set=1\n...\n\n" for a change; *out is malloc'd (NUL-terminated), *out_len its length. */
int nexd_uapi_format_set(const struct nexd_wg_device *change, char **out, size_t *out_len,
			 struct nx_err *err);

/* Parses the reply to a set: "errno=0\n\n" is 0, "errno=N" is -N with err saying so. */
int nexd_uapi_parse_errno(const char *reply, size_t len, struct nx_err *err);

#endif /* NEXD_WG_H */
