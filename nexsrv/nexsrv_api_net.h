/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The network resources of the REST API: VPCs, security groups, registration keys and
 * devices (with their metadata), one file each:
 *
 *   nexsrv_api_vpcs.c       /api/vpcs, /api/vpcs/{id}[/devices|/metadata|/security-groups]
 *   nexsrv_api_secgroups.c  /api/security-groups[/{id}]
 *   nexsrv_api_regkeys.c    /api/reg-keys[/{id}]
 *   nexsrv_api_devices.c    /api/devices[/{id}[/metadata[/{key}]]], enrolment and IPAM
 *   nexsrv_api_net.c        what they share: replies decided in transactions, SQL assembly
 *                           with the caller's scope, lists (on nexsrv_api_misc.c's helpers)
 *   nexsrv_api_input.c      their request bodies, validated without a database
 *
 * Every handler scopes its reads and writes by the caller (nexsrv_auth.h): an object out
 * of reach is 404, a validation error 400 (422 where the original says so) with field and
 * reason, a conflict 409 with the existing object's id, a database that does not answer
 * 503.  Objects are rendered to JSON by PostgreSQL (json_build_object over the row), so a
 * list, a read, and the RETURNING of a write all give the same shape.
 */
#ifndef NEXSRV_API_NET_H
#define NEXSRV_API_NET_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "lib/errmsg.h"
#include "lib/strutil.h"
#include "nexsrv/nexsrv_api_input.h"
#include "nexsrv/nexsrv_auth.h"
#include "nexsrv/nexsrv_db.h"
#include "nexsrv/nexsrv_list.h"

struct nexsrv;
struct nexsrv_http;
struct nexsrv_req;
struct nexsrv_route;

/* --- route registration (arg of every route: the struct nexsrv) ---------------------------- */

int nexsrv_api_vpcs_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err);
int nexsrv_api_secgroups_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err);
int nexsrv_api_regkeys_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err);
int nexsrv_api_devices_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err);

/* A route of these resources: authenticated, its handler's arg the struct nexsrv (set by
 * nexsrv_api_routes_add). */
#define NEXSRV_API_ROUTE(m, p, h)                                                         \
	{                                                                                 \
		.method = (m), .pattern = (p), .handler = (h), .flags = NEXSRV_ROUTE_AUTH \
	}

/* --- JSON renderings of the rows (SQL expressions over the given table alias) -------------- */

#define NEXSRV_SQL_TIME(col) \
	"to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

#define NEXSRV_VPC_JSON                                                                       \
	"json_build_object('id', v.id, 'organization_id', v.organization_id, 'description', " \
	"v.description, 'ipv4_cidr', v.ipv4_cidr::text, 'ipv6_cidr', v.ipv6_cidr::text, "     \
	"'private_cidr', v.private_cidr, 'revision', v.revision)"

#define NEXSRV_SECGROUP_JSON                                                                 \
	"json_build_object('id', s.id, 'vpc_id', s.vpc_id, 'description', s.description, "   \
	"'inbound_rules', s.inbound_rules, 'outbound_rules', s.outbound_rules, 'revision', " \
	"s.revision)"

#define NEXSRV_REGKEY_EXPIRES NEXSRV_SQL_TIME("r.expires_at")
#define NEXSRV_REGKEY_JSON                                                                    \
	"json_build_object('id', r.id, 'owner_id', r.owner_id, 'vpc_id', r.vpc_id, "          \
	"'description', r.description, 'single_use', r.single_use, "                          \
	"'expires_at', " NEXSRV_REGKEY_EXPIRES ", 'security_group_id', r.security_group_id, " \
	"'settings', r.settings, 'device_id', r.device_id)"

/* allowed_ips: the tunnel addresses as host prefixes, IPv4 first.  active_cidrs: those of
 * advertise_cidrs this device is the elected holder of (migrations/0003_active_prefixes.sql);
 * the coalesce()s are for tombstones of rows older than that migration. */
#define NEXSRV_DEVICE_JSON                                                                   \
	"json_build_object('id', d.id, 'owner_id', d.owner_id, 'vpc_id', d.vpc_id, "         \
	"'public_key', d.public_key, 'hostname', d.hostname, 'os', d.os, 'endpoints', "      \
	"d.endpoints, 'ipv4_tunnel_ips', d.ipv4_tunnel_ips, 'ipv6_tunnel_ips', "             \
	"d.ipv6_tunnel_ips, 'allowed_ips', (SELECT coalesce(jsonb_agg((t.e->>'address') || " \
	"CASE WHEN strpos(t.e->>'address', ':') > 0 THEN '/128' ELSE '/32' END ORDER BY "    \
	"t.n), '[]'::jsonb) FROM jsonb_array_elements(d.ipv4_tunnel_ips || "                 \
	"d.ipv6_tunnel_ips) WITH ORDINALITY AS t(e, n)), 'advertise_cidrs', "                \
	"to_jsonb(d.advertise_cidrs::text[]), 'active_cidrs', "                              \
	"to_jsonb(coalesce(d.active_cidrs, '{}'::cidr[])::text[]), 'priority', "             \
	"coalesce(d.priority, 0), 'exit_node', coalesce(d.exit_node, false), 'relay', "      \
	"d.relay, 'symmetric_nat', d.symmetric_nat, 'security_group_id', "                   \
	"d.security_group_id, 'online', d.online, 'online_at', " NEXSRV_SQL_TIME(            \
		"d.online_at") ", 'revision', d.revision)"

#define NEXSRV_METADATA_JSON                                                           \
	"json_build_object('device_id', m.device_id, 'key', m.key, 'value', m.value, " \
	"'revision', m.revision)"

/* --- SQL assembly -------------------------------------------------------------------------- */

#define NEXSRV_SQL_MAX_PARAMS 32

/* Statement text and its parameters ($1...), built piece by piece.  Parameter values are
 * borrowed: they must outlive the statement's execution. */
struct nexsrv_sql {
	struct nx_sbuf text;
	const char *params[NEXSRV_SQL_MAX_PARAMS];
	int n;
	bool failed; /* out of memory or of parameters: nexsrv_sql_exec() refuses */
};

void nexsrv_sql_init(struct nexsrv_sql *q);
void nexsrv_sql_fini(struct nexsrv_sql *q);
/* Appends text. */
void nexsrv_sql_add(struct nexsrv_sql *q, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends "$N" for a new parameter value. */
void nexsrv_sql_param(struct nexsrv_sql *q, const char *value);
/* Appends "(<predicate>)": column within the caller's reach (nexsrv_scope_vpc / _org). */
void nexsrv_sql_scope_vpc(struct nexsrv_sql *q, const struct nexsrv_caller *c, const char *column);
void nexsrv_sql_scope_org(struct nexsrv_sql *q, const struct nexsrv_caller *c, const char *column);
/* Runs it (nexsrv_db_exec). */
int nexsrv_sql_exec(PGconn *conn, struct nexsrv_sql *q, PGresult **res, struct nx_err *err);
/* q as one statement of a pipeline (borrowing q's text and parameters): 0, or -ENOMEM when
 * it could not be assembled. */
int nexsrv_sql_stmt(struct nexsrv_sql *q, struct nexsrv_db_stmt *st, struct nx_err *err);

/* --- replies decided inside a transaction -------------------------------------------------- */

/* Returned by a transaction body that decided on an error reply: roll back, then send it. */
#define NEXSRV_API_REJECT (-ECANCELED)

struct nexsrv_api_reply {
	unsigned status;	  /* 0: none yet */
	struct json_object *body; /* owned */
};

void nexsrv_api_reply_reset(struct nexsrv_api_reply *r);
/* Sets the reply (takes body); returns 0. */
int nexsrv_api_reply_set(struct nexsrv_api_reply *r, unsigned status, struct json_object *body);
/* These set an error reply and return NEXSRV_API_REJECT. */
int nexsrv_api_reply_error(struct nexsrv_api_reply *r, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int nexsrv_api_reply_validation(struct nexsrv_api_reply *r, unsigned status, const char *error,
				const char *field, const char *reason);
/* The body validation error e (from nexsrv_api_input.h; rc -ENOENT: a missing field). */
int nexsrv_api_reply_input(struct nexsrv_api_reply *r, unsigned status, int rc,
			   const struct nexsrv_input_error *e);
/* 404 {"error": "not found", "resource": resource} */
int nexsrv_api_reply_not_found(struct nexsrv_api_reply *r, const char *resource);
/* 409 {"error": error, "id": id, "field": field} (id, field left out when NULL or "") */
int nexsrv_api_reply_conflict(struct nexsrv_api_reply *r, const char *error, const char *id,
			      const char *field);
/* status {"error": "operation not allowed", "reason": reason} */
int nexsrv_api_reply_not_allowed(struct nexsrv_api_reply *r, unsigned status, const char *reason);

/* Sends r (or 500 when it is empty); frees its body. */
int nexsrv_api_send(struct nexsrv_req *req, struct nexsrv_api_reply *r);

/*
 * Runs fn (a nexsrv_db_txn_fn whose arg holds r) in a transaction on a pooled connection
 * and answers req: from r when fn committed or rejected, 503 when the database is
 * unavailable, 500 otherwise.  fn must reset r at its start (it may run again after a
 * serialization failure).
 */
int nexsrv_api_txn(struct nexsrv_req *req, struct nexsrv *srv, nexsrv_db_txn_fn fn, void *arg,
		   struct nexsrv_api_reply *r);

/* Answers a failed database call: 400 for a value the database refused (a malformed list
 * filter), 409 for a unique violation, else as nexsrv_api_db_fail() (503 or 500). */
int nexsrv_api_db_failed(struct nexsrv_req *req, int rc, const struct nx_err *err);

/* --- request pieces ------------------------------------------------------------------------ */

/* The caller, or NULL after answering 401 (a route without authentication). */
const struct nexsrv_caller *nexsrv_api_caller(struct nexsrv_req *req);

/* Path parameter name as a UUID (lower case) into out; -EINVAL after answering 400. */
int nexsrv_api_path_uuid(struct nexsrv_req *req, const char *name, char out[NEXSRV_INPUT_UUID_LEN]);

/* The gt_revision query parameter: 1 with *out set, 0 when absent, -EINVAL after 400. */
int nexsrv_api_gt_revision(struct nexsrv_req *req, int64_t *out);

/* Answers 403 {"error": "operation not allowed", "reason": reason}. */
int nexsrv_api_forbid(struct nexsrv_req *req, const char *reason);

/* A row's first column (a JSON object) as a new object: 1, or a negative errno. */
int nexsrv_api_row_json(PGresult *res, int row, struct json_object **out, struct nx_err *err);

/* Runs q (one JSON column, at most one row) on conn and answers: 200 with the object, 404
 * naming resource when there is no row, else as nexsrv_api_db_failed().  Finishes q and
 * releases conn. */
int nexsrv_api_reply_one(struct nexsrv_req *req, struct nexsrv *srv, PGconn *conn,
			 struct nexsrv_sql *q, const char *resource);

/* GET of the object named by the path's {id} among the caller's VPCs: select is
 * "SELECT <json> FROM <table> <alias> WHERE <alias>.id = ", vpc_column the alias's VPC. */
int nexsrv_api_get_in_vpc(struct nexsrv_req *req, struct nexsrv *srv, const char *select,
			  const char *vpc_column, const char *resource);

/*
 * A list reply: "SELECT <json> FROM <from> WHERE <where's text>" with where's parameters,
 * plus the sort/filter/range of the request (fields: what may be sorted and filtered,
 * default_order: ORDER BY without them, tiebreak: a unique column appended to any order),
 * answered as a JSON array with X-Total-Count.  where is consumed (finished).
 */
struct nexsrv_api_list {
	const char *json;
	const char *from;
	const struct nexsrv_list_field *fields;
	const char *default_order;
	const char *tiebreak;
};
int nexsrv_api_list(struct nexsrv_req *req, PGconn *conn, const struct nexsrv_api_list *l,
		    struct nexsrv_sql *where);

/* Whether a USER caller may change objects of an organization they reach: a member who
 * owns the object (owner_id, may be NULL) or an owner of the organization.  0 with *ok set,
 * or a negative errno. */
int nexsrv_api_may_modify(PGconn *conn, const struct nexsrv_caller *c, const char *org_id,
			  const char *owner_id, bool *ok, struct nx_err *err);

/* --- shared between the resources ---------------------------------------------------------- */

/* Whether the caller reaches VPC vpc_id: 1 (its organization into org_id when not NULL),
 * 0 when not, or a negative errno with err set. */
int nexsrv_api_vpc_reachable(PGconn *conn, const struct nexsrv_caller *c, const char *vpc_id,
			     char org_id[NEXSRV_INPUT_UUID_LEN], struct nx_err *err);

/* How devices, security groups and metadata are listed (from "devices d", "security_groups
 * s", "device_metadata m"). */
extern const struct nexsrv_api_list nexsrv_device_list;
extern const struct nexsrv_api_list nexsrv_secgroup_list;
extern const struct nexsrv_api_list nexsrv_metadata_list;

/* Answers the metadata of one device or of one VPC (column "m.device_id" or "m.vpc_id" =
 * id), filtered by the query's gt_revision, prefix (comma-separated key prefixes) and key.
 * The caller has checked that the device or VPC is within reach. */
int nexsrv_api_metadata_list(struct nexsrv_req *req, PGconn *conn, const char *column,
			     const char *id);

#endif /* NEXSRV_API_NET_H */
