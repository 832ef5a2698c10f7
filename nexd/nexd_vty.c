/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd's CLI.  Configuration commands only queue YANG edits and apply them
 * (lib/nb_cli.h); the northbound callbacks do the work.  Show commands read the daemon.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/nb_cli.h"
#include "nexd/nexd.h"

static const struct nx_cmd_node nexodus_node = {
	.id = NEXD_NODE_NEXODUS,
	.name = "nexodus",
	.prompt = "%s(config-nexodus)# ",
	.parent = NX_NODE_CONFIG,
};

static const struct nx_cmd nexodus_cmds[] = {
	NX_NB_CLI_LEAF_CMDS("service-url", "WORD", "URL of the Nexodus service\n",
			    "https://host[:port]\n"),
	NX_NB_CLI_LEAF_CMDS("vpc-id", "WORD", "The VPC this device joins\n", "VPC UUID\n"),
	NX_NB_CLI_LEAF_CMDS("registration-key", "WORD",
			    "Registration key used to enroll this device\n", "The key (RK:...)\n"),
	NX_NB_CLI_LEAF_CMDS("interface", "WORD", "WireGuard interface name (default nexodus0)\n",
			    "Interface name\n"),
	NX_NB_CLI_LEAF_CMDS("listen-port", "(1-65535)", "WireGuard UDP listen port\n",
			    "Port number\n"),
	NX_NB_CLI_LEAF_CMDS(
		"wireguard-backend", "<auto|kernel|uapi|null|WORD>", "WireGuard implementation\n",
		"Kernel module when it works, else wireguard-go\nKernel module (netlink)\n"
		"wireguard-go (UAPI socket)\nNo tunnel (benchmarks and tests only)\nBackend "
		"name\n"),
	NX_NB_CLI_LIST_CMDS("stun-server", "WORD", "STUN server used to discover the NAT mapping\n",
			    "HOST:PORT\n"),
	NX_NB_CLI_LIST_CMDS("advertise-cidr", "<A.B.C.D/M|X:X::X:X/M>",
			    "Advertise a prefix reachable through this device\n",
			    "IPv4 prefix\nIPv6 prefix\n"),
	NX_NB_CLI_LEAF_CMDS("priority", "(0-1000)",
			    "Priority of this device's claim on the prefixes it advertises\n",
			    "Priority (higher wins)\n"),
	NX_NB_CLI_FLAG_CMD("relay",
			   "Relay traffic for peers that cannot reach each other directly\n"),
	NX_NB_CLI_FLAG_CMD("exit-node", "Offer this device as an exit node (default route)\n"),
	NX_NB_CLI_LEAF_CMDS("ca-file", "WORD", "Certificate authorities for the service's TLS\n",
			    "PEM file\n"),
	NX_NB_CLI_FLAG_CMD("insecure-skip-tls-verify",
			   "Do not verify the service's TLS certificate (tests only)\n"),
	NX_NB_CLI_FLAG_CMD("flush-on-exit",
			   "Remove the interface, peers and routes when nexd stops\n"),
};

NX_DEFUN(nexodus_enter, "nexodus", "Nexodus agent configuration\n")
{
	return nx_nb_cli_enter_node(vty, NEXD_XPATH, NEXD_NODE_NEXODUS);
}

NX_DEFUN(no_nexodus, "no nexodus",
	 NX_NB_CLI_NO_HELP "Remove the whole Nexodus agent configuration\n")
{
	nx_nb_cli_enqueue(vty, NX_NB_OP_DESTROY, NEXD_XPATH, NULL);
	return nx_nb_cli_apply(vty);
}

NX_DEFUN(debug_nexodus, "[no] debug nexodus <controller|dataplane|peers|nat>$subsystem",
	 NX_NB_CLI_NO_HELP "Debugging functions\nNexodus agent\nControl session with the service\n"
			   "WireGuard and route programming\nPeer path selection\nNAT discovery\n")
{
	char xpath[NX_VTY_XPATH_MAX];

	snprintf(xpath, sizeof(xpath), NEXD_XPATH_DEBUG "/nexodus[.='%s']",
		 nx_cmd_arg_get(argc, argv, "subsystem"));
	nx_nb_cli_enqueue(vty,
			  nx_cmd_arg_has(argc, argv, "no") ? NX_NB_OP_DESTROY : NX_NB_OP_CREATE,
			  xpath, NULL);
	return nx_nb_cli_apply(vty);
}

struct show_debug_ctx {
	struct nx_vty *vty;
	bool json;
	int n;
};

static int show_debug_one(struct nx_debug *dbg, void *arg)
{
	struct show_debug_ctx *ctx = arg;

	if (!dbg->on)
		return 0;
	if (ctx->json)
		nx_vty_out(ctx->vty, "%s\"%s\"", ctx->n ? "," : "", dbg->name);
	else
		nx_vty_out(ctx->vty, "  %s debugging is on\n", dbg->name);
	ctx->n++;
	return 0;
}

NX_DEFUN(show_debugging, "show debugging [json]",
	 "Show running system information\nDebugging switches that are on\nJSON output\n")
{
	struct show_debug_ctx ctx = { .vty = vty, .json = nx_cmd_arg_has(argc, argv, "json") };

	nx_vty_out(vty, ctx.json ? "{\"debugging\":[" : "nexd debugging status:\n");
	nx_debug_foreach(show_debug_one, &ctx);
	if (ctx.json)
		nx_vty_out(vty, "]}\n");
	return NX_CMD_SUCCESS;
}

int nexd_vty_init(struct nexd *nexd, struct nx_err *err)
{
	struct nx_cmd_tree *tree = nexd->daemon->tree;
	static const struct {
		int node;
		const struct nx_cmd *cmd;
	} cmds[] = {
		{ NX_NODE_CONFIG, &nexodus_enter },
		{ NX_NODE_CONFIG, &no_nexodus },
		{ NX_NODE_CONFIG, &debug_nexodus },
		{ NX_NODE_VIEW, &show_debugging },
	};
	int rc = nx_cmd_node_install(tree, &nexodus_node);

	for (size_t i = 0; rc == 0 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		rc = nx_cmd_install(tree, cmds[i].node, cmds[i].cmd, err);
	for (size_t i = 0; rc == 0 && i < sizeof(nexodus_cmds) / sizeof(nexodus_cmds[0]); i++)
		rc = nx_cmd_install(tree, NEXD_NODE_NEXODUS, &nexodus_cmds[i], err);
	return rc;
}
