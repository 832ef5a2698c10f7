/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd, the Nexodus agent: shared declarations of its modules.
 *
 * nexd_main.c       start-up, command line
 * nexd_nb.c         the northbound callback table (nexodus-agent.yang)
 * nexd_nb_config.c  the configuration callbacks
 * nexd_vty.c        CLI commands
 * nexd_debug.c      debug switches
 */
#ifndef NEXD_H
#define NEXD_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/daemon.h"
#include "lib/log.h"

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
};

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
};

struct nexd {
	struct nx_daemon *daemon;
	struct nexd_config cfg;
};

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
int nexd_debug_create(struct nx_nb_cb_args *args);
int nexd_debug_destroy(struct nx_nb_cb_args *args);
void nexd_config_from_tree(struct nexd *nexd, const struct lyd_node *tree);

/* nexd_vty.c */
int nexd_vty_init(struct nexd *nexd, struct nx_err *err);
const char *nexd_status(const struct nexd *nexd);

/* nexd_debug.c */
NX_DEBUG_DECLARE(nexd_controller);
NX_DEBUG_DECLARE(nexd_dataplane);
NX_DEBUG_DECLARE(nexd_peers);
NX_DEBUG_DECLARE(nexd_nat);

#endif /* NEXD_H */
