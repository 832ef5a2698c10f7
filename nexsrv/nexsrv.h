/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexsrv, the Nexodus service (controller): shared declarations of its modules.
 *
 * nexsrv_main.c       start-up, command line
 * nexsrv_nb.c         the northbound callback table (nexodus-controller.yang)
 * nexsrv_nb_config.c  the configuration callbacks
 * nexsrv_vty.c        CLI commands
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
	char database[2048];
	char oidc_issuer[1024];
	char oidc_audience[256];
	char oidc_client_id[256];
	char stun_listen[300];
	uint32_t rate_limit_rps;
	uint32_t rate_limit_burst;
	uint32_t tombstone_retention_s;
};

struct nexsrv {
	struct nx_daemon *daemon;
	struct nexsrv_config cfg;
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

#endif /* NEXSRV_H */
