/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexsrv's northbound callback table: one row per node of nexodus-controller.yang that the
 * daemon acts on or shows in the CLI.
 */
#include "config.h"

#include "lib/nb_cli.h"
#include "nexsrv/nexsrv.h"

static void show_controller(struct nx_sbuf *out, const struct lyd_node *dnode, unsigned flags)
{
	nx_sbuf_puts(out, "controller\n");
}

static void show_controller_end(struct nx_sbuf *out, const struct lyd_node *dnode, unsigned flags)
{
	nx_sbuf_puts(out, "exit\n!\n");
}

static void show_debug(struct nx_sbuf *out, const struct lyd_node *dnode, unsigned flags)
{
	nx_sbuf_printf(out, "debug controller %s\n", nx_nb_show_value(dnode, flags));
}

#define LEAF(path)                                       \
	{                                                \
		.xpath = NEXSRV_XPATH "/" path,          \
		.cbs = {.modify = nexsrv_leaf_modify,    \
			.destroy = nexsrv_leaf_destroy,  \
			.cli_show = nx_nb_cli_show_leaf, \
		}                                        \
	}

const struct nx_nb_node nexsrv_nb_nodes[] = {
	{ .xpath = NEXSRV_XPATH,
	  .cbs = { .cli_show = show_controller, .cli_show_end = show_controller_end } },
	LEAF("listen"),
	LEAF("tls-cert"),
	LEAF("tls-key"),
	{ .xpath = NEXSRV_XPATH "/insecure-http",
	  .cbs = { .create = nexsrv_insecure_http_create,
		   .destroy = nexsrv_insecure_http_destroy,
		   .cli_show = nx_nb_cli_show_leaf } },
	LEAF("database"),
	LEAF("oidc-issuer"),
	LEAF("oidc-audience"),
	LEAF("oidc-client-id"),
	LEAF("stun-listen"),
	{ .xpath = NEXSRV_XPATH "/rate-limit",
	  .cbs = { .apply_finish = nexsrv_rate_limit_apply_finish } },
	LEAF("rate-limit/requests-per-second"),
	LEAF("rate-limit/burst"),
	LEAF("tombstone-retention"),
	LEAF("max-connections"),
	LEAF("max-connections-per-address"),
	LEAF("prefix-failover-grace"),
	{ .xpath = NEXSRV_XPATH_DEBUG "/controller",
	  .cbs = { .create = nexsrv_debug_create,
		   .destroy = nexsrv_debug_destroy,
		   .cli_show = show_debug } },
};
const size_t nexsrv_nb_nodes_count = sizeof(nexsrv_nb_nodes) / sizeof(nexsrv_nb_nodes[0]);
