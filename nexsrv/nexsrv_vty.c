/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexsrv's CLI.  Configuration commands only queue YANG edits and apply them
 * (lib/nb_cli.h); the northbound callbacks do the work.
 */
#include "config.h"

#include "lib/nb_cli.h"
#include "nexsrv/nexsrv.h"

static const struct nx_cmd_node controller_node = {
	.id = NEXSRV_NODE_CONTROLLER,
	.name = "controller",
	.prompt = "%s(config-controller)# ",
	.parent = NX_NODE_CONFIG,
};

static const struct nx_cmd controller_cmds[] = {
	NX_NB_CLI_LEAF_CMDS("listen", "WORD", "Address and port the REST API listens on\n",
			    "ADDRESS:PORT\n"),
	NX_NB_CLI_LEAF_CMDS("tls-cert", "WORD", "TLS certificate file (PEM)\n", "File name\n"),
	NX_NB_CLI_LEAF_CMDS("tls-key", "WORD", "TLS private key file (PEM)\n", "File name\n"),
	NX_NB_CLI_FLAG_CMD("insecure-http",
			   "Serve plain HTTP (behind a TLS-terminating proxy, or for tests)\n"),
	NX_NB_CLI_LEAF_CMDS("database", "LINE", "PostgreSQL connection\n",
			    "libpq conninfo (host=... dbname=...) or postgresql:// URI\n"),
	NX_NB_CLI_LEAF_CMDS("oidc-issuer", "WORD",
			    "OpenID Connect issuer whose tokens are accepted\n", "Issuer URL\n"),
	NX_NB_CLI_LEAF_CMDS("oidc-audience", "WORD", "Audience access tokens must carry\n",
			    "Audience\n"),
	NX_NB_CLI_LEAF_CMDS("oidc-client-id", "WORD",
			    "OIDC client id agents use for the device flow\n", "Client id\n"),
	NX_NB_CLI_LEAF_CMDS("stun-listen", "WORD", "Address and port of the STUN responder\n",
			    "ADDRESS:PORT\n"),
	NX_NB_CLI_LEAF_CMDS("rate-limit requests-per-second", "(1-1000000)",
			    "Per-caller request rate limit\nSustained requests per second\n",
			    "Rate\n"),
	NX_NB_CLI_LEAF_CMDS("rate-limit burst", "(1-1000000)",
			    "Per-caller request rate limit\nRequests allowed in a burst\n",
			    "Burst\n"),
	NX_NB_CLI_LEAF_CMDS("tombstone-retention", "(60-31536000)",
			    "How long deleted objects stay visible to watchers\n", "Seconds\n"),
};

NX_DEFUN(controller_enter, "controller", "Nexodus service configuration\n")
{
	return nx_nb_cli_enter_node(vty, NEXSRV_XPATH, NEXSRV_NODE_CONTROLLER);
}

NX_DEFUN(no_controller, "no controller",
	 NX_NB_CLI_NO_HELP "Remove the whole service configuration\n")
{
	nx_nb_cli_enqueue(vty, NX_NB_OP_DESTROY, NEXSRV_XPATH, NULL);
	return nx_nb_cli_apply(vty);
}

NX_DEFUN(debug_controller, "[no] debug controller <api|database|auth|watch|stun>$subsystem",
	 NX_NB_CLI_NO_HELP "Debugging functions\nNexodus service\nREST API requests\nDatabase\n"
			   "Token validation\nWatch streams\nSTUN responder\n")
{
	char xpath[NX_VTY_XPATH_MAX];

	snprintf(xpath, sizeof(xpath), NEXSRV_XPATH_DEBUG "/controller[.='%s']",
		 nx_cmd_arg_get(argc, argv, "subsystem"));
	nx_nb_cli_enqueue(vty,
			  nx_cmd_arg_has(argc, argv, "no") ? NX_NB_OP_DESTROY : NX_NB_OP_CREATE,
			  xpath, NULL);
	return nx_nb_cli_apply(vty);
}

NX_DEFUN(show_controller_status, "show controller status [json]",
	 "Show running system information\nNexodus service\nService status\nJSON output\n")
{
	const struct nexsrv *srv = vty->daemon;
	/* Serving the API comes with the REST layer; until then a configured service is
	 * "not-ready" in the model's terms. */
	const char *status = srv->cfg.database[0] ? "not-ready" : "not-configured";

	if (nx_cmd_arg_has(argc, argv, "json")) {
		nx_vty_out(vty, "{\"status\":\"%s\"}\n", status);
		return NX_CMD_SUCCESS;
	}
	nx_vty_out(vty, "Status: %s\n",
		   srv->cfg.database[0] ? status : "not configured (set database)");
	return NX_CMD_SUCCESS;
}

int nexsrv_vty_init(struct nexsrv *srv, struct nx_err *err)
{
	struct nx_cmd_tree *tree = srv->daemon->tree;
	static const struct {
		int node;
		const struct nx_cmd *cmd;
	} cmds[] = {
		{ NX_NODE_CONFIG, &controller_enter },
		{ NX_NODE_CONFIG, &no_controller },
		{ NX_NODE_CONFIG, &debug_controller },
		{ NX_NODE_VIEW, &show_controller_status },
	};
	int rc = nx_cmd_node_install(tree, &controller_node);

	for (size_t i = 0; rc == 0 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		rc = nx_cmd_install(tree, cmds[i].node, cmds[i].cmd, err);
	for (size_t i = 0; rc == 0 && i < sizeof(controller_cmds) / sizeof(controller_cmds[0]); i++)
		rc = nx_cmd_install(tree, NEXSRV_NODE_CONTROLLER, &controller_cmds[i], err);
	if (rc == 0)
		rc = nexsrv_vty_admin_init(srv, err);
	return rc;
}
