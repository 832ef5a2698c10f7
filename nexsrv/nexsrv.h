/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexsrv, the Nexodus service (controller): shared declarations of its modules.
 *
 * nexsrv_main.c       start-up, command line
 * nexsrv_nb.c         the northbound callback table (nexodus-controller.yang)
 * nexsrv_nb_config.c  the configuration callbacks
 * nexsrv_vty.c        CLI commands
 * nexsrv_db.c         the database connection pool (nexsrv_db.h)
 * nexsrv_migrate.c    schema migrations (nexsrv_db.h)
 * nexsrv_stun.c       the STUN responder (stun-listen)
 * nexsrv_http.c       the HTTP server: routing, requests, limits, streams (nexsrv_http.h)
 * nexsrv_ratelimit.c  per-caller token buckets (nexsrv_ratelimit.h)
 * nexsrv_metrics.c    the Prometheus registry behind /metrics (nexsrv_metrics.h)
 * nexsrv_api_private.c  GET /private/live, /private/ready, /metrics
 * nexsrv_debug.c      debug switches
 */
#ifndef NEXSRV_H
#define NEXSRV_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/daemon.h"
#include "lib/log.h"

#define NEXSRV_YANG_MODULE "nexodus-controller"
#define NEXSRV_XPATH	   "/nexodus-controller:controller"
#define NEXSRV_XPATH_DEBUG "/nexodus-controller:debug"

enum nexsrv_node {
	NEXSRV_NODE_CONTROLLER = NX_NODE_DAEMON,
};

/* The configuration as applied: written only by northbound APPLY callbacks. */
struct nexsrv_config {
	char listen[300];
	char tls_cert[1024];
	char tls_key[1024];
	bool insecure_http;
	char database[4097]; /* the model allows 4096 characters */
	char oidc_issuer[1024];
	char oidc_audience[256];
	char oidc_client_id[256];
	char stun_listen[300];
	uint32_t rate_limit_rps;
	uint32_t rate_limit_burst;
	uint32_t tombstone_retention_s;
};

struct nexsrv_db;
struct nexsrv_http;
struct nexsrv_metrics;
struct nexsrv_stun;

struct nexsrv {
	struct nx_daemon *daemon;
	struct nexsrv_config cfg;
	struct nexsrv_db *db;		/* the pool (nexsrv_db.h); NULL without a database */
	struct nexsrv_stun *stun;	/* the STUN responder; NULL without stun-listen */
	struct nexsrv_metrics *metrics; /* GET /metrics */
	struct nexsrv_http *http;	/* the REST API's server */
};

extern const struct nx_nb_node nexsrv_nb_nodes[];
extern const size_t nexsrv_nb_nodes_count;

/* nexsrv_nb_config.c */
int nexsrv_leaf_modify(struct nx_nb_cb_args *args);
int nexsrv_leaf_destroy(struct nx_nb_cb_args *args);
void nexsrv_config_from_tree(struct nexsrv *srv, const struct lyd_node *tree);
int nexsrv_insecure_http_create(struct nx_nb_cb_args *args);
int nexsrv_insecure_http_destroy(struct nx_nb_cb_args *args);
int nexsrv_debug_create(struct nx_nb_cb_args *args);
int nexsrv_debug_destroy(struct nx_nb_cb_args *args);

/* nexsrv_vty.c */
int nexsrv_vty_init(struct nexsrv *srv, struct nx_err *err);

/* nexsrv_api_private.c: adds the operational routes to the server. */
int nexsrv_api_private_init(struct nexsrv_http *http, struct nx_err *err);

/* nexsrv_stun.c */
struct nexsrv_stun_stats {
	uint64_t requests;	  /* well-formed Binding requests received */
	uint64_t responses;	  /* success responses sent */
	uint64_t error_responses; /* 420 (Unknown Attribute) responses sent */
	uint64_t ignored;	  /* datagrams dropped unanswered: not a Binding request */
	uint64_t send_failures;	  /* answers the kernel did not take */
};

/* Opens the responder on cfg.stun_listen (a no-op when it is empty): resolves a host name
 * once, binds (an IPv6 address is dual-stack), starts answering on the daemon's loop.
 * 0, or a negative errno with a message naming the setting. */
int nexsrv_stun_start(struct nexsrv *srv, struct nx_err *err);

/* Closes the responder; harmless when none runs. */
void nexsrv_stun_stop(struct nexsrv *srv);

/* The counters since start; false (and zeros) when no responder runs.  Any thread may
 * call it between start and stop. */
bool nexsrv_stun_stats(const struct nexsrv *srv, struct nexsrv_stun_stats *out);

#endif /* NEXSRV_H */
