/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexsrv start-up: describes the service to lib/daemon.c and maps its command-line flags
 * onto leaves of nexodus-controller.yang (a flag is never a second source of truth).
 */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "nexsrv/nexsrv.h"
#include "nexsrv/nexsrv_api_net.h"
#include "nexsrv/nexsrv_auth.h"
#include "nexsrv/nexsrv_db.h"
#include "nexsrv/nexsrv_http.h"
#include "nexsrv/nexsrv_metrics.h"
#include "nexsrv/nexsrv_oidc.h"
#include "nexsrv/nexsrv_watch.h"

#define NEXSRV_MALLOC_ARENAS 2

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

/* The database: migrated before anything serves.  An unreachable database does not stop the
 * start (the pool keeps trying, and migrates once it gets through); a failed migration or a
 * schema newer than this nexsrv does. */
static int start_database(struct nexsrv *srv, struct nx_err *err)
{
	const struct nexsrv_db_options opts = {
		.size = NEXSRV_DB_DEFAULT_SIZE,
		.gate = nexsrv_migrate_gate,
		.gate_name = "schema migration",
	};

	if (!srv->cfg.database[0]) {
		nx_info("nexsrv: no database configured: the API is not served");
		return 0;
	}
	srv->db = nexsrv_db_open_opts(srv->cfg.database, &opts, err);
	return srv->db ? 0 : -EINVAL;
}

/* The routes, added before the server accepts its first connection. */
static int http_setup(struct nexsrv_http *http, void *arg, struct nx_err *err)
{
	struct nexsrv *srv = arg;
	int rc = nexsrv_api_private_init(http, err);

	if (rc == 0)
		rc = nexsrv_api_users_init(http, srv, err);
	if (rc == 0)
		rc = nexsrv_api_orgs_init(http, srv, err);
	if (rc == 0)
		rc = nexsrv_api_invitations_init(http, srv, err);
	if (rc == 0)
		rc = nexsrv_api_misc_init(http, srv, err);
	if (rc == 0)
		rc = nexsrv_api_vpcs_init(http, srv, err);
	if (rc == 0)
		rc = nexsrv_api_secgroups_init(http, srv, err);
	if (rc == 0)
		rc = nexsrv_api_regkeys_init(http, srv, err);
	if (rc == 0)
		rc = nexsrv_api_devices_init(http, srv, err);
	if (rc == 0)
		rc = nexsrv_api_events_init(http, srv, err);
	if (rc == 0)
		nexsrv_http_set_auth_hook(http, nexsrv_auth_hook, srv);
	return rc;
}

/* People's tokens: checked against the OIDC provider's keys, fetched on first use.  Without
 * an issuer only registration keys and device tokens are accepted. */
static int start_oidc(struct nexsrv *srv, struct nx_err *err)
{
	struct nexsrv_oidc_config oc;

	if (!srv->cfg.oidc_issuer[0]) {
		nx_info("nexsrv: no oidc-issuer configured: only registration keys and device "
			"tokens are accepted");
		return 0;
	}
	nexsrv_oidc_config_init(&oc);
	oc.issuer = srv->cfg.oidc_issuer;
	oc.audience = srv->cfg.oidc_audience[0] ? srv->cfg.oidc_audience : NULL;
	srv->oidc = nexsrv_oidc_new(&oc, err);
	return srv->oidc ? 0 : -EINVAL;
}

/* The REST API's server, last: everything it serves is in place by then.  The configuration
 * is read once here; changing listen or TLS takes a restart. */
static int start_http(struct nexsrv *srv, struct nx_err *err)
{
	const struct nexsrv_config *c = &srv->cfg;

	srv->metrics = nexsrv_metrics_new();
	if (!srv->metrics)
		return nx_err_set(err, ENOMEM, "metrics: out of memory");
	if (nexsrv_metrics_add_process(srv->metrics, err) < 0)
		return -EINVAL;
	srv->http = nexsrv_http_start(
		&(struct nexsrv_http_config){
			.listen = c->listen,
			.tls_cert = c->tls_cert,
			.tls_key = c->tls_key,
			.insecure_http = c->insecure_http,
			.rate_limit_rps = c->rate_limit_rps,
			.rate_limit_burst = c->rate_limit_burst,
			.max_connections = c->max_connections,
			.per_ip_connections = c->max_connections_per_address,
			.metrics = srv->metrics,
			.setup = http_setup,
			.setup_arg = srv,
		},
		err);
	return srv->http ? 0 : -EINVAL;
}

/* Every watch stream holds a descriptor: the soft limit goes up to the hard one, which
 * is the administrator's to set (systemd's LimitNOFILE=). */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		nx_warn("nexsrv: cannot raise the descriptor limit to %llu: %s",
			(unsigned long long)rl.rlim_max, strerror(errno));
}

static int nexsrv_start(struct nx_daemon *d, struct nx_err *err)
{
	struct nexsrv *srv = d->ctx;
	int rc;

	raise_nofile();
	rc = start_database(srv, err);

	if (rc == 0)
		rc = nexsrv_stun_start(srv, err);
	if (rc == 0)
		rc = nexsrv_watch_start(srv, err);
	if (rc == 0)
		rc = start_oidc(srv, err);
	if (rc == 0)
		rc = start_http(srv, err);
	if (rc == 0 && srv->db) /* /private/ready follows the database */
		nexsrv_http_set_ready_check(srv->http, nexsrv_db_ready_check, srv->db);
	return rc;
}

static void nexsrv_stop(struct nx_daemon *d)
{
	struct nexsrv *srv = d->ctx;

	nexsrv_http_stop(srv->http);
	srv->http = NULL;
	nexsrv_watch_stop(srv); /* after the streams ended, before the pool closes */
	nexsrv_oidc_free(srv->oidc);
	srv->oidc = NULL;
	nexsrv_metrics_free(srv->metrics);
	srv->metrics = NULL;
	nexsrv_stun_stop(srv);
	nexsrv_db_close(srv->db);
	srv->db = NULL;
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
		.start = nexsrv_start,
		.stop = nexsrv_stop,
		.ctx = &srv,
	};

	/* Few malloc arenas: the threads allocate little, but each arena they would otherwise
	 * get keeps its own free memory (with thousands of streams, megabytes of it). */
	mallopt(M_ARENA_MAX, NEXSRV_MALLOC_ARENAS);
	daemon.nb_nodes = nexsrv_nb_nodes;
	daemon.n_nb_nodes = nexsrv_nb_nodes_count;
	srv.daemon = &daemon;
	return nx_daemon_main(&daemon, argc, argv);
}
