/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd, the Nexodus agent: shared declarations of its modules.
 *
 * nexd_main.c       start-up, command line
 * nexd_nb.c         the northbound callback table (nexodus-agent.yang)
 * nexd_nb_config.c  the configuration callbacks
 * nexd_vty.c        CLI commands
 * nexd_debug.c      debug switches
 * nexd_state.c      the device's identity in the state directory
 * nexd_ctrl.c       the control session: enrollment, the watch stream, reporting endpoints
 * nexd_login.c      the OIDC device flow for enrollment without a registration key
 * nexd_peers.c      the peers the controller lists and the state the dataplane must hold
 * nexd_reconcile.c  diffing that state against WireGuard and the kernel, and repairing it
 * nexd_dplane.c     the tunnel interface: backend choice, keys, addresses, link
 * nexd_show.c       show commands
 * nexd_device.c     parsing and checking what the controller sends
 * nexd_delta.c      writing one peer's change without a full reconciliation
 * nexd_resolve.c    host names resolved on the loop (libevent's resolver)
 * nexd_rtnl.c       rtnetlink: links, addresses, batched routes
 * nexd_wg*.c        WireGuard backends (nexd_wg.h)
 */
#ifndef NEXD_H
#define NEXD_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/daemon.h"
#include "lib/httpc.h"
#include "lib/log.h"
#include "nexd/nexd_device.h"
#include "nexd/nexd_nat.h"
#include "nexd/nexd_rtnl.h"
#include "nexd/nexd_wg.h"

#define NEXD_YANG_MODULE "nexodus-agent"
#define NEXD_XPATH	 "/nexodus-agent:nexodus"
#define NEXD_XPATH_DEBUG "/nexodus-agent:debug"

enum nexd_node {
	NEXD_NODE_NEXODUS = NX_NODE_DAEMON,
};

enum nexd_wg_backend {
	NEXD_WG_AUTO,
	NEXD_WG_KERNEL,
	NEXD_WG_UAPI,
	NEXD_WG_NULL, /* benchmarks and tests only: no tunnel */
};

#define NEXD_MAX_CONFIG_LIST 64

/* The configuration as applied: written only by northbound APPLY callbacks. */
struct nexd_config {
	char service_url[1024];
	char vpc_id[40];
	char reg_key[256];
	char ifname[16];
	uint16_t listen_port; /* 0: not set (chosen at run time) */
	enum nexd_wg_backend backend;
	bool relay;
	bool exit_node;
	bool flush_on_exit;
	bool insecure_skip_tls_verify;
	uint16_t priority; /* for the prefixes it advertises (0-1000) */
	char ca_file[1024];
	struct nx_prefix advertise[NEXD_MAX_CONFIG_LIST];
	size_t n_advertise;
	char stun_servers[NEXD_MAX_CONFIG_LIST][256]; /* HOST:PORT, in the configured order */
	size_t n_stun_servers;
};

/* The device's identity (nexd_state.c): what enrollment produced, kept in the state directory
 * (0600) so that a restart is the same device with the same addresses. */
struct nexd_identity {
	struct nx_wgkey private_key; /* generated here, never sent anywhere */
	struct nx_wgkey public_key;
	char service_url[1024]; /* the service the device is enrolled with; "" when not enrolled */
	char device_id[NEXD_UUID_LEN];
	char vpc_id[NEXD_UUID_LEN];
	char token[512]; /* the device token, DT:... */
	struct nx_addr tunnel_ipv4;
	struct nx_addr tunnel_ipv6;
	uint16_t listen_port; /* the port WireGuard used last; kept across restarts */
};

int nexd_identity_load_key(const char *state_dir, struct nexd_identity *id, struct nx_err *err);
/* Replaces the key pair with a new one (stored 0600), for a device that is not enrolled. */
int nexd_identity_new_key(const char *state_dir, struct nexd_identity *id, struct nx_err *err);
int nexd_identity_load(const char *state_dir, struct nexd_identity *id, struct nx_err *err);
int nexd_identity_save(const char *state_dir, const struct nexd_identity *id, struct nx_err *err);
int nexd_identity_forget(const char *state_dir, struct nx_err *err);

enum nexd_state {
	NEXD_NOT_CONFIGURED,
	NEXD_ENROLLING,
	NEXD_CONNECTING,
	NEXD_CONNECTED,
	NEXD_ERROR,
};

const char *nexd_state_name(enum nexd_state s);

/* A route nexd holds (or has just adopted) through its interface. */
struct nexd_route {
	struct nx_prefix prefix;
	struct nx_wgkey peer; /* whose allowed IPs carry it; zero for an adopted, unclaimed one */
	uint64_t installed_at_ns; /* wall clock */
	bool installed;
};

struct nexd_peers;
struct nexd_delta;
struct nexd_ctrl;
struct nexd_nat;
struct nexd_probe;
struct nexd_login;

struct nexd {
	struct nx_daemon *daemon;
	struct nexd_config cfg;
	struct nexd_identity id;
	bool have_identity; /* the key is loaded (id.private_key/public_key valid) */

	enum nexd_state state;
	char state_msg[256];

	struct nx_httpc *http;
	struct nexd_ctrl *ctrl;
	struct nexd_login *login;
	struct nexd_nat *nat;	  /* nexd_nat.c */
	struct nexd_probe *probe; /* nexd_probe.c */
	struct nexd_nat_state nat_state;
	struct nexd_peers *peers;

	/* The dataplane (nexd_dplane.c, nexd_reconcile.c). */
	struct nexd_wg wg;
	struct nexd_rtnl *rtnl;
	int ifindex;
	bool dplane_up;
	struct nexd_vpc_info vpc;
	bool forwarding;      /* IP forwarding turned on (subnet router, relay) */
	bool relay_installed; /* the relay's nftables table is in place */
	bool path_pending;    /* a path decision waits on time: reconcile again soon */
	bool full_pending;    /* a full reconciliation is scheduled: deltas wait for it */
	/* The last full pass saw a relay, a peer through a relay or a shadowed one: device
	 * events go to full passes (nexd_delta.c). */
	bool full_only;
	struct nexd_delta *delta; /* peers' changes gathered for one write (nexd_delta.c) */
	bool synced; /* a complete listing has arrived since start: stale state may be swept */
	bool reconcile_timer_ready;
	struct nx_timer reconcile_timer;
	struct nx_defer reconcile_soon;
	struct nexd_route *routes; /* sorted by prefix */
	size_t n_routes;
	/* This host's addresses with their subnets, as last read (endpoints "local"). */
	struct nexd_endpoint local_endpoints[NEXD_MAX_ENDPOINTS];
	struct nx_prefix local_nets[NEXD_MAX_ENDPOINTS];
	size_t n_local_endpoints;
};

void nexd_set_state(struct nexd *nexd, enum nexd_state s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

extern const struct nx_nb_node nexd_nb_nodes[];
extern const size_t nexd_nb_nodes_count;

/* nexd_nb_config.c: the callbacks the table refers to. */
int nexd_service_url_modify(struct nx_nb_cb_args *args);
int nexd_service_url_destroy(struct nx_nb_cb_args *args);
int nexd_vpc_id_modify(struct nx_nb_cb_args *args);
int nexd_vpc_id_destroy(struct nx_nb_cb_args *args);
int nexd_reg_key_modify(struct nx_nb_cb_args *args);
int nexd_reg_key_destroy(struct nx_nb_cb_args *args);
int nexd_interface_modify(struct nx_nb_cb_args *args);
int nexd_listen_port_modify(struct nx_nb_cb_args *args);
int nexd_listen_port_destroy(struct nx_nb_cb_args *args);
int nexd_backend_modify(struct nx_nb_cb_args *args);
int nexd_stun_server_create(struct nx_nb_cb_args *args);
int nexd_stun_server_destroy(struct nx_nb_cb_args *args);
int nexd_advertise_cidr_create(struct nx_nb_cb_args *args);
int nexd_advertise_cidr_destroy(struct nx_nb_cb_args *args);
int nexd_relay_create(struct nx_nb_cb_args *args);
int nexd_relay_destroy(struct nx_nb_cb_args *args);
int nexd_exit_node_create(struct nx_nb_cb_args *args);
int nexd_exit_node_destroy(struct nx_nb_cb_args *args);
int nexd_priority_modify(struct nx_nb_cb_args *args);
int nexd_ca_file_modify(struct nx_nb_cb_args *args);
int nexd_ca_file_destroy(struct nx_nb_cb_args *args);
int nexd_insecure_create(struct nx_nb_cb_args *args);
int nexd_insecure_destroy(struct nx_nb_cb_args *args);
int nexd_flush_on_exit_create(struct nx_nb_cb_args *args);
int nexd_flush_on_exit_destroy(struct nx_nb_cb_args *args);
void nexd_config_apply_finish(struct nx_nb_cb_args *args);
int nexd_debug_create(struct nx_nb_cb_args *args);
int nexd_debug_destroy(struct nx_nb_cb_args *args);
void nexd_config_from_tree(struct nexd *nexd, const struct lyd_node *tree);

/* nexd_ctrl.c */
int nexd_ctrl_new(struct nexd *nexd, struct nx_err *err);
void nexd_ctrl_free(struct nexd *nexd);
/* The configuration changed (service-url, registration-key, vpc-id, advertise-cidr...). */
void nexd_ctrl_config_changed(struct nexd *nexd);
/* The local endpoints or advertised prefixes changed: report them to the controller. */
void nexd_ctrl_report_soon(struct nexd *nexd);
/* This host's addresses changed: reconnect from the new ones and report them. */
void nexd_ctrl_addresses_changed(struct nexd *nexd);
bool nexd_ctrl_connected(const struct nexd *nexd);
const char *nexd_ctrl_service(const struct nexd *nexd);
int64_t nexd_ctrl_revision(const struct nexd *nexd);

/* nexd_login.c: the OIDC device flow.  done gets the access token, or NULL and why. */
typedef void (*nexd_login_done_fn)(const char *access_token, const char *why, void *arg);
int nexd_login_start(struct nexd *nexd, const char *service, nexd_login_done_fn done, void *arg);
void nexd_login_cancel(struct nexd *nexd);
void nexd_login_free(struct nexd *nexd);

/* nexd_peers.c: the peer table, keyed by device id. */
struct nexd_peer {
	struct nexd_device_info dev;
	struct nx_addr probe_addr; /* nexd_probe_addr() of dev.public_key, set by upsert */
	/* malloc'd, why it is ignored when not valid (NULL when valid); upsert frees it */
	char *reason;
	const char *path; /* "direct-local", "reflexive", "relay", "via-relay", "none" */
	int64_t last_handshake_s;
	uint64_t rx_bytes, tx_bytes;
	/* what the dataplane holds for it, as last read */
	struct nx_addr endpoint;
	uint16_t endpoint_port;
	/* the endpoint nexd configured last, so WireGuard's own roaming is not fought */
	uint16_t set_endpoint_port;
	struct nx_addr set_endpoint;
	bool valid;    /* passed nexd_device_check(); else reason says why it is ignored */
	bool stale;    /* not seen again in the listing under way */
	bool shadowed; /* another, newer device has the same public key */
	bool in_dataplane;
	bool via_relay; /* its traffic goes through the relay relay_key */
	struct nx_wgkey relay_key;
};

struct nexd_peers *nexd_peers_new(void);
void nexd_peers_free(struct nexd_peers *t);
/* Takes over d's allocations (d is zeroed).  Returns the entry. */
struct nexd_peer *nexd_peers_upsert(struct nexd_peers *t, struct nexd_device_info *d);
void nexd_peers_remove(struct nexd_peers *t, const char *device_id);
struct nexd_peer *nexd_peers_find(struct nexd_peers *t, const char *device_id);
/* A peer other than except with public key key, through the claim index; NULL if none. */
struct nexd_peer *nexd_peers_find_key(struct nexd_peers *t, const struct nx_wgkey *key,
				      const struct nexd_peer *except);
size_t nexd_peers_count(const struct nexd_peers *t);
struct nexd_peer *nexd_peers_at(struct nexd_peers *t, size_t i); /* sorted by device id */
/* The peers that name prefix x (as a tunnel or probe address, or advertised, held or not),
 * one per call, in no order; NULL after the last.  *cursor starts at 0. */
struct nexd_peer *nexd_peers_claimant(const struct nexd_peers *t, const struct nx_prefix *x,
				      size_t *cursor);
void nexd_peers_mark_stale(struct nexd_peers *t);
size_t nexd_peers_sweep_stale(struct nexd_peers *t);

/* nexd_dplane.c */
int nexd_dplane_up(struct nexd *nexd, struct nx_err *err);
/* Gives WireGuard the identity's private key again (after nexd_identity_new_key()). */
int nexd_dplane_set_key(struct nexd *nexd, struct nx_err *err);
void nexd_dplane_down(struct nexd *nexd);
/* Something changed: reconcile on the next loop iteration. */
void nexd_dplane_changed(struct nexd *nexd);
/* The null backend (benchmarks, tests): no interface, no kernel routes. */
bool nexd_dplane_null(const struct nexd *nexd);
/* Re-reads this host's addresses (endpoints "local"); true when they changed. */
bool nexd_local_endpoints_refresh(struct nexd *nexd);

/* nexd_relay.c */
int nexd_relay_sync(struct nexd *nexd, struct nx_err *err);
void nexd_relay_remove(struct nexd *nexd);

/* nexd_reconcile.c */
int nexd_reconcile(struct nexd *nexd, struct nx_err *err);

/* nexd_delta.c: peers' changes written on their own (an allowed-IP move, a route), not by a
 * full reconciliation.  before() ahead of each peer table change (old: the peer as it was,
 * NULL if new), after() once it is made (now: the peer, NULL if removed); what a loop
 * iteration gathered is written at once on the next.  Whatever a delta cannot decide alone
 * (relays, shared keys, a full pass already due) schedules a full reconciliation instead. */
void nexd_delta_before(struct nexd *nexd, const struct nexd_peer *old);
void nexd_delta_after(struct nexd *nexd, const struct nexd_peer *now);
/* A full pass is starting: what deltas gathered is in it. */
void nexd_delta_discard(struct nexd *nexd);
void nexd_delta_free(struct nexd *nexd);
const struct nexd_route *nexd_route_find(const struct nexd *nexd, const struct nx_prefix *p);

/* nexd_show.c */
int nexd_show_init(struct nexd *nexd, struct nx_err *err);

/* nexd_vty.c */
int nexd_vty_init(struct nexd *nexd, struct nx_err *err);

/* nexd_debug.c */
NX_DEBUG_DECLARE(nexd_controller);
NX_DEBUG_DECLARE(nexd_dataplane);
NX_DEBUG_DECLARE(nexd_peers);
NX_DEBUG_DECLARE(nexd_nat);

#endif /* NEXD_H */
