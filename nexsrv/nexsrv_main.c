/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexsrv start-up: describes the service to lib/daemon.c and maps its command-line flags
 * onto leaves of nexodus-controller.yang (a flag is never a second source of truth).
 */
#include "config.h"

#include <stdio.h>

#include "nexsrv/nexsrv.h"

enum {
	OPT_DATABASE = 256,
	OPT_LISTEN,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_INSECURE_HTTP,
	OPT_OIDC_ISSUER,
	OPT_OIDC_AUDIENCE,
	OPT_OIDC_CLIENT_ID,
	OPT_STUN_LISTEN,
};

static const struct option nexsrv_options[] = {
	{ "database", required_argument, NULL, OPT_DATABASE },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "insecure-http", no_argument, NULL, OPT_INSECURE_HTTP },
	{ "oidc-issuer", required_argument, NULL, OPT_OIDC_ISSUER },
	{ "oidc-audience", required_argument, NULL, OPT_OIDC_AUDIENCE },
	{ "oidc-client-id", required_argument, NULL, OPT_OIDC_CLIENT_ID },
	{ "stun-listen", required_argument, NULL, OPT_STUN_LISTEN },
	{ NULL, 0, NULL, 0 },
};

/* Flag -> leaf, one table; a flag without argument creates an empty leaf. */
static const struct {
	int id;
	const char *xpath;
} flag_leaves[] = {
	{ OPT_DATABASE, NEXSRV_XPATH "/database" },
	{ OPT_LISTEN, NEXSRV_XPATH "/listen" },
	{ OPT_TLS_CERT, NEXSRV_XPATH "/tls-cert" },
	{ OPT_TLS_KEY, NEXSRV_XPATH "/tls-key" },
	{ OPT_INSECURE_HTTP, NEXSRV_XPATH "/insecure-http" },
	{ OPT_OIDC_ISSUER, NEXSRV_XPATH "/oidc-issuer" },
	{ OPT_OIDC_AUDIENCE, NEXSRV_XPATH "/oidc-audience" },
	{ OPT_OIDC_CLIENT_ID, NEXSRV_XPATH "/oidc-client-id" },
	{ OPT_STUN_LISTEN, NEXSRV_XPATH "/stun-listen" },
};

static int nexsrv_option(struct nx_daemon *d, int id, const char *arg)
{
	for (size_t i = 0; i < sizeof(flag_leaves) / sizeof(flag_leaves[0]); i++)
		if (flag_leaves[i].id == id)
			return nx_daemon_flag_edit(d, arg ? NX_NB_OP_MODIFY : NX_NB_OP_CREATE,
						   flag_leaves[i].xpath, arg);
	return -EINVAL;
}

static int nexsrv_init(struct nx_daemon *d, struct nx_err *err)
{
	nexsrv_config_from_tree(d->ctx, nx_nb_running(d->nb));
	return nexsrv_vty_init(d->ctx, err);
}

int main(int argc, char **argv)
{
	static const char *const modules[] = { NEXSRV_YANG_MODULE, NULL };
	static struct nexsrv srv;
	static struct nx_daemon daemon = {
		.name = "nexsrv",
		.description = "The Nexodus service: REST API, OIDC, IPAM and watch streams.",
		.yang_modules = modules,
		.yang_module = NEXSRV_YANG_MODULE,
		.extra_options = nexsrv_options,
		.extra_option = nexsrv_option,
		.extra_usage = "      --database CONNINFO     set database (libpq conninfo)\n"
			       "      --listen ADDR:PORT      set listen\n"
			       "      --tls-cert FILE         set tls-cert\n"
			       "      --tls-key FILE          set tls-key\n"
			       "      --insecure-http         set insecure-http\n"
			       "      --oidc-issuer URL       set oidc-issuer\n"
			       "      --oidc-audience AUD     set oidc-audience\n"
			       "      --oidc-client-id ID     set oidc-client-id\n"
			       "      --stun-listen ADDR:PORT set stun-listen\n",
		.init = nexsrv_init,
		.ctx = &srv,
	};

	daemon.nb_nodes = nexsrv_nb_nodes;
	daemon.n_nb_nodes = nexsrv_nb_nodes_count;
	srv.daemon = &daemon;
	return nx_daemon_main(&daemon, argc, argv);
}
