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
 * nexsrv_api_vpcs.c, _secgroups.c, _regkeys.c, _devices.c  VPCs, security groups,
 *                     registration keys, devices and their metadata (nexsrv_api_net.h)
 * nexsrv_ipam.c       tunnel address allocation (nexsrv_ipam.h)
 * nexsrv_watch.c, _watch_log.c, nexsrv_api_events.c  the watch streams (nexsrv_watch.h)
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
	uint32_t max_connections;	      /* 0: from RLIMIT_NOFILE */
	uint32_t max_connections_per_address; /* 0: NEXSRV_HTTP_DEFAULT_PER_IP */
	uint32_t prefix_failover_grace_ms;    /* 0: NEXSRV_PREFIX_GRACE_DEFAULT_MS */
};

/* How long a device that went offline keeps the prefixes it holds (prefix-failover-grace). */
#define NEXSRV_PREFIX_GRACE_DEFAULT_MS	3000
/* How often the watch hub hands the prefixes of devices offline past the grace over. */
#define NEXSRV_PREFIX_FAILOVER_CHECK_MS 500

struct nexsrv_db;
struct nexsrv_http;
struct nexsrv_metrics;
struct nexsrv_oidc;
struct nexsrv_stun;
struct nexsrv_watch;

struct nexsrv {
	struct nx_daemon *daemon;
	struct nexsrv_config cfg;
	struct nexsrv_db *db;		/* the pool (nexsrv_db.h); NULL without a database */
	struct nexsrv_stun *stun;	/* the STUN responder; NULL without stun-listen */
	struct nexsrv_metrics *metrics; /* GET /metrics */
	struct nexsrv_http *http;	/* the REST API's server */
	struct nexsrv_oidc *oidc;	/* user token validation; NULL without oidc-issuer */
	struct nexsrv_watch *watch;	/* the watch streams' hub; NULL without a database */
};

/* The configured grace in milliseconds (any thread). */
static inline uint32_t nexsrv_prefix_grace_ms(const struct nexsrv *srv)
{
	uint32_t ms = __atomic_load_n(&srv->cfg.prefix_failover_grace_ms, __ATOMIC_RELAXED);

	return ms ? ms : NEXSRV_PREFIX_GRACE_DEFAULT_MS;
}

extern const struct nx_nb_node nexsrv_nb_nodes[];
extern const size_t nexsrv_nb_nodes_count;

/* nexsrv_nb_config.c */
int nexsrv_leaf_modify(struct nx_nb_cb_args *args);
int nexsrv_leaf_destroy(struct nx_nb_cb_args *args);
void nexsrv_config_from_tree(struct nexsrv *srv, const struct lyd_node *tree);
void nexsrv_rate_limit_apply_finish(struct nx_nb_cb_args *args);
int nexsrv_insecure_http_create(struct nx_nb_cb_args *args);
int nexsrv_insecure_http_destroy(struct nx_nb_cb_args *args);
int nexsrv_debug_create(struct nx_nb_cb_args *args);
int nexsrv_debug_destroy(struct nx_nb_cb_args *args);

/* nexsrv_vty.c */
int nexsrv_vty_init(struct nexsrv *srv, struct nx_err *err);

/* nexsrv_vty_admin.c: the operator commands (nexodus organization/vpc/registration-key
 * create, show nexodus ...), installed in the VIEW node. */
int nexsrv_vty_admin_init(struct nexsrv *srv, struct nx_err *err);

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

/* --- the REST API resources: each *_init adds its routes (handler arg: the struct nexsrv) */
struct json_object;
struct nexsrv_req;
struct nexsrv_route;
struct pg_conn;
struct pg_result;

int nexsrv_api_users_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err);
int nexsrv_api_orgs_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err);
int nexsrv_api_invitations_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err);
/* GET /api/fflags[/{name}], POST /device/login/start */
int nexsrv_api_misc_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err);
/* POST /api/vpcs/{id}/events, POST /api/events (nexsrv_api_events.c) */
int nexsrv_api_events_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err);

/* nexsrv_api_misc.c: what the resource handlers share.  The nexsrv_api_* functions that
 * take a request reply themselves when they fail (and then return a negative errno). */
int nexsrv_api_routes_add(struct nexsrv_http *http, const struct nexsrv_route *routes, size_t n,
			  struct nexsrv *srv, struct nx_err *err);
/* A UUID in its canonical text form (36 characters, hex digits in either case). */
bool nexsrv_api_uuid_valid(const char *s);
/* A pooled connection, or NULL after replying 503 (give it back with nexsrv_db_release). */
struct pg_conn *nexsrv_api_db_acquire(struct nexsrv_req *req, struct nexsrv *srv);
/* Replies to a failed query or transaction: 503 when the database is unavailable or busy,
 * 500 otherwise (logged). */
int nexsrv_api_db_fail(struct nexsrv_req *req, int rc, const struct nx_err *err);
/* 0 for a person's token; 403 {"error":"operation not allowed","reason"} for a
 * registration key or a device token. */
int nexsrv_api_user_only(struct nexsrv_req *req);
/* 400 {"error":"query parameter invalid","field":"sort|filter|range","reason":...} for a
 * failed nexsrv_list_parse (500 for -ENOMEM). */
int nexsrv_api_list_fail(struct nexsrv_req *req, int rc, const struct nx_err *err);
/* The rows of one page of a list and how many there are in all: "SELECT <columns> FROM
 * <from_where> ORDER BY <list order>, <tiebreak> OFFSET .. LIMIT ..", and the count(*) of
 * the same FROM and WHERE (from_where must already hold the list's filters). */
struct nexsrv_list;
int nexsrv_api_list_rows(struct pg_conn *conn, const char *columns, const char *from_where,
			 const struct nexsrv_list *list, const char *tiebreak, const char **params,
			 int nparams, struct pg_result **res, long long *total, struct nx_err *err);
/* X-Total-Count (exposed to browsers). */
int nexsrv_api_total_count(struct nexsrv_req *req, long long total);
/* The body as a JSON object (400 for malformed JSON or another JSON type). */
int nexsrv_api_body_object(struct nexsrv_req *req, struct json_object **out);
/* Field key of obj as a string of at most max bytes (NULL/absent/null leave *out): 400
 * naming the field when required and missing, of another type, or too long. */
int nexsrv_api_field_string(struct nexsrv_req *req, struct json_object *obj, const char *key,
			    bool required, size_t max, const char **out);
/* 204 with no body. */
int nexsrv_api_reply_no_content(struct nexsrv_req *req);
/* 200/201 with obj (taken over); NULL (out of memory) is -ENOMEM, which the server
 * answers with 500. */
int nexsrv_api_reply_object(struct nexsrv_req *req, unsigned status, struct json_object *obj);
/* models.User from 4 columns starting at col: id, full_name, picture, username. */
struct json_object *nexsrv_api_user_json(const struct pg_result *res, int row, int col);
/* models.Organization from 3 columns starting at col: id, name, description. */
struct json_object *nexsrv_api_org_json(const struct pg_result *res, int row, int col);

/* nexsrv_api_orgs.c: takes user_id out of organization org_id (with their devices and
 * registration keys there) and replies.  users_path: DELETE /api/users/{id}/organizations/
 * {organization}, where a member may also leave (not their default organization, nor as its
 * last owner), replying models.User; else DELETE /api/organizations/{id}/users/{uid}, for
 * owners only, replying models.UserOrganization. */
int nexsrv_api_org_member_delete(struct nexsrv_req *req, struct nexsrv *srv, const char *org_id,
				 const char *user_id, bool users_path);

#endif /* NEXSRV_H */
