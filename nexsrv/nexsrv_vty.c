/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexsrv's CLI.  Configuration commands only queue YANG edits and apply them
 * (lib/nb_cli.h); the northbound callbacks do the work.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "lib/jsonutil.h"
#include "lib/nb_cli.h"
#include "lib/strutil.h"
#include "nexsrv/nexsrv.h"
#include "nexsrv/nexsrv_db.h"
#include "nexsrv/nexsrv_http.h"

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
	NX_NB_CLI_LEAF_CMDS("max-connections", "(16-1000000)",
			    "Most client connections (watch streams included) at once\n",
			    "Connections\n"),
	NX_NB_CLI_LEAF_CMDS("max-connections-per-address", "(1-1000000)",
			    "Most client connections from one address at once\n", "Connections\n"),
	NX_NB_CLI_LEAF_CMDS("prefix-failover-grace", "(100-600000)",
			    "How long an offline device keeps the prefixes it holds\n",
			    "Milliseconds\n"),
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

/* --- show controller status ---------------------------------------------------------- */

/* What "show controller status" reports: controller-state of nexodus-controller.yang (status,
 * status-message, database-connected, watchers, version) and the parts behind it. */
struct controller_status {
	const char *status; /* the model's enumeration */
	char message[NX_ERR_MAX + 64];
	bool db_configured;
	bool db_connected;
	const char *db_state; /* nexsrv_db_state_name(), or NULL without a pool */
	const char *db_target;
	bool http_running;
	const char *http_listen;
	unsigned http_port;
	bool http_tls;
	unsigned long watchers;
	bool stun_running;
	struct nexsrv_stun_stats stun;
	bool oidc_configured;
};

/*
 * The status, from the running parts rather than the configuration: the database pool's
 * state (starting, ready, down, gate-failed) decides between starting, ready and not-ready;
 * a service without a pool is not-configured.  (stopping is never seen here: the CLI is not
 * served once the daemon is on its way out.)
 */
static void controller_status_get(struct nexsrv *srv, struct controller_status *st)
{
	char why[NX_ERR_MAX] = "";

	memset(st, 0, sizeof(*st));
	st->db_configured = srv->cfg.database[0] != '\0';
	if (!srv->db) {
		st->status = "not-configured";
		nx_strlcpy(
			st->message,
			st->db_configured
				? "a database was configured after the start: it is used after a "
				  "restart; the API is not served"
				: "no database is configured: the API is not served",
			sizeof(st->message));
	} else {
		enum nexsrv_db_state state = nexsrv_db_state(srv->db, why, sizeof(why));

		st->db_state = nexsrv_db_state_name(state);
		st->db_target = nexsrv_db_target(srv->db);
		/* the gate's failure comes from a working connection */
		st->db_connected = state == NEXSRV_DB_READY || state == NEXSRV_DB_GATE_FAILED;
		switch (state) {
		case NEXSRV_DB_STARTING:
			st->status = "starting";
			snprintf(st->message, sizeof(st->message),
				 "connecting to the database and applying schema migrations%s%s",
				 why[0] ? ": " : "", why);
			break;
		case NEXSRV_DB_READY:
			st->status = "ready";
			nx_strlcpy(st->message, "serving: the database answers",
				   sizeof(st->message));
			break;
		case NEXSRV_DB_DOWN:
			st->status = "not-ready";
			snprintf(st->message, sizeof(st->message),
				 "the database does not answer: %s",
				 why[0] ? why : "not reached yet");
			break;
		case NEXSRV_DB_GATE_FAILED:
			st->status = "not-ready";
			snprintf(st->message, sizeof(st->message), "schema migration failed: %s",
				 why[0] ? why : "no reason given");
			break;
		}
		if (!srv->cfg.database[0])
			nx_strlcat(st->message,
				   " (the database was removed from the configuration: it stays in "
				   "use until a restart)",
				   sizeof(st->message));
	}
	st->http_running = srv->http != NULL;
	st->http_listen = nexsrv_http_listen(srv->http);
	st->http_port = nexsrv_http_port(srv->http);
	st->http_tls = nexsrv_http_tls(srv->http);
	st->watchers = nexsrv_http_streams_open(srv->http);
	st->stun_running = nexsrv_stun_stats(srv, &st->stun);
	st->oidc_configured = srv->oidc != NULL;
}

/* Adds key to obj: a new object, or NULL when out of memory. */
static struct json_object *json_child(struct json_object *obj, const char *key)
{
	struct json_object *child = json_object_new_object();

	if (child && json_object_object_add(obj, key, child) < 0) {
		json_object_put(child);
		return NULL;
	}
	return child;
}

static struct json_object *controller_status_json(const struct nexsrv *srv,
						  const struct controller_status *st)
{
	struct json_object *top = json_object_new_object();
	struct json_object *db, *http, *stun, *oidc;
	int rc = 0;

	if (!top)
		return NULL;
	rc |= nx_json_object_add_string(top, "status", st->status);
	rc |= nx_json_object_add_string(top, "status-message", st->message);
	rc |= nx_json_object_add_bool(top, "database-connected", st->db_connected);
	rc |= nx_json_object_add_uint64(top, "watchers", st->watchers);
	rc |= nx_json_object_add_string(top, "version", PACKAGE_VERSION);

	db = json_child(top, "database");
	http = json_child(top, "http");
	stun = json_child(top, "stun");
	oidc = json_child(top, "oidc");
	if (!db || !http || !stun || !oidc)
		goto fail;
	rc |= nx_json_object_add_bool(db, "configured", st->db_configured);
	if (st->db_state) {
		rc |= nx_json_object_add_string(db, "state", st->db_state);
		rc |= nx_json_object_add_string(db, "target", st->db_target);
	}
	rc |= nx_json_object_add_bool(http, "running", st->http_running);
	if (st->http_running) {
		rc |= nx_json_object_add_string(http, "listen", st->http_listen);
		rc |= nx_json_object_add_uint64(http, "port", st->http_port);
		rc |= nx_json_object_add_bool(http, "tls", st->http_tls);
	}
	rc |= nx_json_object_add_bool(stun, "running", st->stun_running);
	if (st->stun_running) {
		rc |= nx_json_object_add_string(stun, "listen", srv->cfg.stun_listen);
		rc |= nx_json_object_add_uint64(stun, "requests", st->stun.requests);
		rc |= nx_json_object_add_uint64(stun, "responses", st->stun.responses);
		rc |= nx_json_object_add_uint64(stun, "error-responses", st->stun.error_responses);
		rc |= nx_json_object_add_uint64(stun, "ignored", st->stun.ignored);
		rc |= nx_json_object_add_uint64(stun, "send-failures", st->stun.send_failures);
	}
	rc |= nx_json_object_add_bool(oidc, "configured", st->oidc_configured);
	if (st->oidc_configured)
		rc |= nx_json_object_add_string(oidc, "issuer", srv->cfg.oidc_issuer);
	if (rc == 0)
		return top;
fail:
	json_object_put(top);
	return NULL;
}

static void controller_status_text(struct nx_vty *vty, const struct nexsrv *srv,
				   const struct controller_status *st)
{
	nx_vty_out(vty, "Status:             %s\n", st->status);
	nx_vty_out(vty, "                    %s\n", st->message);
	if (st->db_state)
		nx_vty_out(vty, "Database:           %s (%s, %s)\n", st->db_target, st->db_state,
			   st->db_connected ? "connected" : "not connected");
	else
		nx_vty_out(vty, "Database:           %s\n",
			   st->db_configured ? "not in use until a restart" : "not configured");
	if (st->http_running)
		nx_vty_out(vty, "REST API:           %s (port %u), %s\n", st->http_listen,
			   st->http_port, st->http_tls ? "HTTPS" : "plain HTTP (insecure-http)");
	else
		nx_vty_out(vty, "REST API:           not running\n");
	nx_vty_out(vty, "Watch streams:      %lu\n", st->watchers);
	if (st->stun_running)
		nx_vty_out(vty,
			   "STUN responder:     %s: %" PRIu64 " requests, %" PRIu64
			   " responses, %" PRIu64 " error responses, %" PRIu64 " ignored, %" PRIu64
			   " send failures\n",
			   srv->cfg.stun_listen, st->stun.requests, st->stun.responses,
			   st->stun.error_responses, st->stun.ignored, st->stun.send_failures);
	else
		nx_vty_out(vty, "STUN responder:     not running (no stun-listen)\n");
	if (st->oidc_configured)
		nx_vty_out(vty, "OIDC issuer:        %s\n", srv->cfg.oidc_issuer);
	else
		nx_vty_out(vty, "OIDC issuer:        none (only registration keys and device "
				"tokens are accepted)\n");
	nx_vty_out(vty, "Version:            %s\n", PACKAGE_VERSION);
}

NX_DEFUN(show_controller_status, "show controller status [json]",
	 "Show running system information\nNexodus service\nService status\nJSON output\n")
{
	struct nexsrv *srv = vty->daemon;
	struct controller_status st;
	struct json_object *obj;
	char *text;

	controller_status_get(srv, &st);
	if (!nx_cmd_arg_has(argc, argv, "json")) {
		controller_status_text(vty, srv, &st);
		return NX_CMD_SUCCESS;
	}
	obj = controller_status_json(srv, &st);
	text = obj ? nx_json_to_string(obj, NX_JSON_PRETTY) : NULL;
	json_object_put(obj);
	if (!text) {
		nx_vty_out(vty, "%% Cannot render the JSON output: out of memory\n");
		return NX_CMD_WARNING;
	}
	nx_vty_out(vty, "%s\n", text);
	free(text);
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
