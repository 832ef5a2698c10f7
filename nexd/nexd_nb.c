/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd's northbound callback table: one row per node of nexodus-agent.yang that the daemon
 * acts on or shows in the CLI.  The callbacks live in nexd_nb_config.c (configuration) and
 * below (CLI rendering, which only formats).
 */
#include "config.h"

#include "lib/nb_cli.h"
#include "nexd/nexd.h"

static void show_nexodus(struct nx_sbuf *out, const struct lyd_node *dnode, unsigned flags)
{
	nx_sbuf_puts(out, "nexodus\n");
}

static void show_nexodus_end(struct nx_sbuf *out, const struct lyd_node *dnode, unsigned flags)
{
	nx_sbuf_puts(out, "exit\n!\n");
}

static void show_debug(struct nx_sbuf *out, const struct lyd_node *dnode, unsigned flags)
{
	nx_sbuf_printf(out, "debug nexodus %s\n", nx_nb_show_value(dnode, flags));
}

const struct nx_nb_node nexd_nb_nodes[] = {
	{ .xpath = NEXD_XPATH,
	  .cbs = { .apply_finish = nexd_config_apply_finish,
		   .cli_show = show_nexodus,
		   .cli_show_end = show_nexodus_end } },
	{ .xpath = NEXD_XPATH "/service-url",
	  .cbs = { .modify = nexd_service_url_modify,
		   .destroy = nexd_service_url_destroy,
		   .cli_show = nx_nb_cli_show_leaf } },
	{ .xpath = NEXD_XPATH "/vpc-id",
	  .cbs = { .modify = nexd_vpc_id_modify,
		   .destroy = nexd_vpc_id_destroy,
		   .cli_show = nx_nb_cli_show_leaf } },
	{ .xpath = NEXD_XPATH "/registration-key",
	  .cbs = { .modify = nexd_reg_key_modify,
		   .destroy = nexd_reg_key_destroy,
		   .cli_show = nx_nb_cli_show_leaf } },
	{ .xpath = NEXD_XPATH "/interface",
	  .cbs = { .modify = nexd_interface_modify, .cli_show = nx_nb_cli_show_leaf } },
	{ .xpath = NEXD_XPATH "/listen-port",
	  .cbs = { .modify = nexd_listen_port_modify,
		   .destroy = nexd_listen_port_destroy,
		   .cli_show = nx_nb_cli_show_leaf } },
	{ .xpath = NEXD_XPATH "/wireguard-backend",
	  .cbs = { .modify = nexd_backend_modify, .cli_show = nx_nb_cli_show_leaf } },
	{ .xpath = NEXD_XPATH "/stun-server",
	  .cbs = { .create = nexd_stun_server_create,
		   .destroy = nexd_stun_server_destroy,
		   .cli_show = nx_nb_cli_show_leaf } },
	{ .xpath = NEXD_XPATH "/advertise-cidr",
	  .cbs = { .create = nexd_advertise_cidr_create,
		   .destroy = nexd_advertise_cidr_destroy,
		   .cli_show = nx_nb_cli_show_leaf } },
	{ .xpath = NEXD_XPATH "/priority",
	  .cbs = { .modify = nexd_priority_modify, .cli_show = nx_nb_cli_show_leaf } },
	{ .xpath = NEXD_XPATH "/relay",
	  .cbs = { .create = nexd_relay_create,
		   .destroy = nexd_relay_destroy,
		   .cli_show = nx_nb_cli_show_leaf } },
	{ .xpath = NEXD_XPATH "/exit-node",
	  .cbs = { .create = nexd_exit_node_create,
		   .destroy = nexd_exit_node_destroy,
		   .cli_show = nx_nb_cli_show_leaf } },
	{ .xpath = NEXD_XPATH "/ca-file",
	  .cbs = { .modify = nexd_ca_file_modify,
		   .destroy = nexd_ca_file_destroy,
		   .cli_show = nx_nb_cli_show_leaf } },
	{ .xpath = NEXD_XPATH "/insecure-skip-tls-verify",
	  .cbs = { .create = nexd_insecure_create,
		   .destroy = nexd_insecure_destroy,
		   .cli_show = nx_nb_cli_show_leaf } },
	{ .xpath = NEXD_XPATH "/flush-on-exit",
	  .cbs = { .create = nexd_flush_on_exit_create,
		   .destroy = nexd_flush_on_exit_destroy,
		   .cli_show = nx_nb_cli_show_leaf } },
	{ .xpath = NEXD_XPATH_DEBUG "/nexodus",
	  .cbs = { .create = nexd_debug_create,
		   .destroy = nexd_debug_destroy,
		   .cli_show = show_debug } },
};
const size_t nexd_nb_nodes_count = sizeof(nexd_nb_nodes) / sizeof(nexd_nb_nodes[0]);
