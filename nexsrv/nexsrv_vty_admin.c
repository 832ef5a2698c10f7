/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexsrv's operator commands: set up a deployment from nexsh on the controller host, with no
 * identity provider — create an organization, a VPC in it, a registration key for it — and
 * look at what the database holds, and at the watch streams this process serves.
 *
 * An organization made here is owned by one system user, "operator" (idp_subject
 * "nexodus:operator"), created the first time it is needed: the schema wants every
 * organization to have an owner, and no person has signed in yet.  Registration keys belong
 * to the owner of their VPC's organization, so the devices that join with them do too.
 *
 * The commands run on the main thread and block it for as long as one short transaction
 * takes: a connection is borrowed with a bounded wait and every statement runs under a
 * statement timeout.  A registration key's text is printed once, by the command that creates
 * it; only its SHA-256 is stored, and no show command prints a secret.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "lib/jsonutil.h"
#include "lib/prefix.h"
#include "lib/strutil.h"
#include "lib/vty.h"
#include "nexsrv/nexsrv.h"
#include "nexsrv/nexsrv_auth.h"
#include "nexsrv/nexsrv_db.h"
#include "nexsrv/nexsrv_token.h"
#include "nexsrv/nexsrv_watch.h"

/* The system user that owns what the operator creates. */
#define OPERATOR_SUBJECT  "nexodus:operator"
#define OPERATOR_USERNAME "operator"

/* The default security group of a VPC has the VPC's id and this description. */
#define DEFAULT_SG_DESCRIPTION "default vpc security group"

/* How long a command may hold up the main loop waiting for a connection, and for one
 * statement. */
#define ADMIN_ACQUIRE_MS	   2000
#define ADMIN_STATEMENT_TIMEOUT_MS "5000"

#define UUID_BUFSIZE 37 /* 36 + NUL */

#define SHOW_HELP    "Show running system information\nNexodus service objects (database)\n"
#define JSON_HELP    "JSON output\n"
#define NEXODUS_HELP "Nexodus service objects (database)\n"

/* --- small helpers -------------------------------------------------------------------------- */

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The 8-4-4-4-12 hexadecimal form, the only one the API uses. */
static bool uuid_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (i >= 36 || !is_hex(s[i])) {
			return false;
		}
	}
	return i == 36;
}

/* Checks an id typed by the operator; prints why it is refused.  what: "organization". */
static bool check_uuid(struct nx_vty *vty, const char *what, const char *s)
{
	char q[80];

	if (uuid_valid(s))
		return true;
	nx_vty_out(vty,
		   "%% \"%s\" is not a valid %s id: expected a UUID "
		   "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)\n",
		   nx_str_printable(q, sizeof(q), s), what);
	return false;
}

/*
 * Rewrites a database error left in err by nexsrv_db_exec() into a sentence for the operator:
 * "The database is not available: ..." for a lost connection or a timeout, else
 * "<what>: <PostgreSQL's message>".  Returns rc.
 */
static int db_fail(struct nx_err *err, int rc, const char *what)
{
	char msg[NX_ERR_MAX];

	nx_strlcpy(msg, err->msg, sizeof(msg));
	if (rc == -ENOTCONN || rc == -ETIMEDOUT)
		return nx_err_set(err, -rc, "The database is not available: %s", msg);
	return nx_err_set(err, -rc, "%s: %s", what, msg);
}

/* First statement of every transaction here: bound how long it can stall the main loop. */
static int txn_setup(PGconn *conn, struct nx_err *err)
{
	int rc = nexsrv_db_exec(conn, "SET LOCAL statement_timeout = " ADMIN_STATEMENT_TIMEOUT_MS,
				0, NULL, NULL, err);

	return rc < 0 ? db_fail(err, rc, "Cannot set up the transaction") : 0;
}

/* The first column of the first row of res into out ("" when there is none). */
static void copy_first(const PGresult *res, char *out, size_t size)
{
	const char *v = PQntuples(res) > 0 ? nexsrv_db_text(res, 0, 0) : NULL;

	nx_strlcpy(out, v ? v : "", size);
}

/*
 * Runs fn in one transaction on a borrowed connection.  Everything the operator needs to
 * know when it fails is printed here ("% ..."), so a handler returns this as it is:
 * NX_CMD_SUCCESS or NX_CMD_WARNING.
 */
static int admin_run(struct nx_vty *vty, nexsrv_db_txn_fn fn, void *arg)
{
	struct nexsrv *srv = vty->daemon;
	struct nx_err err;
	PGconn *conn;
	int rc;

	nx_err_clear(&err);
	if (vty->kind == NX_VTY_FILE) {
		nx_vty_out(vty, "%% This is an operator command: it does not belong in a "
				"configuration file\n");
		return NX_CMD_WARNING;
	}
	if (!srv->db) {
		nx_vty_out(vty, "%% The database is not available: no database is configured "
				"(set \"database\" under \"controller\")\n");
		return NX_CMD_WARNING;
	}
	conn = nexsrv_db_acquire(srv->db, ADMIN_ACQUIRE_MS, &err);
	if (!conn) {
		nx_vty_out(vty, "%% The database is not available: %s\n", err.msg);
		return NX_CMD_WARNING;
	}
	rc = nexsrv_db_run_txn(conn, NEXSRV_DB_READ_COMMITTED, fn, arg, &err);
	nexsrv_db_release(srv->db, conn);
	if (rc < 0) {
		nx_vty_out(vty, "%% %s\n", err.msg[0] ? err.msg : "The database command failed");
		return NX_CMD_WARNING;
	}
	return NX_CMD_SUCCESS;
}

/* --- nexodus organization create NAME ------------------------------------------------------- */

struct org_create {
	const char *name;
	char id[UUID_BUFSIZE]; /* out */
};

/* The operator user's id, creating the user the first time. */
static int operator_user(PGconn *conn, char *id, size_t size, struct nx_err *err)
{
	static const char *const params[] = { OPERATOR_SUBJECT, OPERATOR_USERNAME };
	PGresult *res;
	int rc;

	rc = nexsrv_db_exec(conn,
			    "INSERT INTO users (idp_subject, username) VALUES ($1, $2) "
			    "ON CONFLICT (idp_subject) DO NOTHING",
			    2, params, NULL, err);
	if (rc < 0)
		return db_fail(err, rc, "Cannot create the operator user");
	rc = nexsrv_db_exec(conn, "SELECT id FROM users WHERE idp_subject = $1", 1, params, &res,
			    err);
	if (rc < 0)
		return db_fail(err, rc, "Cannot read the operator user");
	copy_first(res, id, size);
	PQclear(res);
	if (!id[0]) /* deleted again between the two statements: let the transaction rerun */
		return nx_err_set(err, EAGAIN, "The operator user went away; try again");
	return 0;
}

static int org_create_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	struct org_create *oc = arg;
	char owner[UUID_BUFSIZE];
	const char *params[2];
	PGresult *res;
	int rc;

	rc = txn_setup(conn, err);
	if (rc < 0)
		return rc;
	rc = operator_user(conn, owner, sizeof(owner), err);
	if (rc < 0)
		return rc;

	params[0] = oc->name;
	params[1] = owner;
	rc = nexsrv_db_exec(conn,
			    "INSERT INTO organizations (name, owner_id) VALUES ($1, $2) "
			    "ON CONFLICT (name) DO NOTHING RETURNING id",
			    2, params, &res, err);
	if (rc < 0)
		return db_fail(err, rc, "Cannot create the organization");
	copy_first(res, oc->id, sizeof(oc->id));
	PQclear(res);
	if (!oc->id[0]) {
		char existing[UUID_BUFSIZE];

		rc = nexsrv_db_exec(conn, "SELECT id FROM organizations WHERE name = $1", 1, params,
				    &res, err);
		if (rc < 0)
			return db_fail(err, rc, "Cannot create the organization");
		copy_first(res, existing, sizeof(existing));
		PQclear(res);
		return nx_err_set(err, EEXIST, "An organization named \"%s\" already exists: %s",
				  oc->name, existing[0] ? existing : "(just deleted)");
	}

	params[0] = oc->id;
	params[1] = owner;
	rc = nexsrv_db_exec(conn,
			    "INSERT INTO memberships (organization_id, user_id, roles) "
			    "VALUES ($1, $2, '{owner}')",
			    2, params, NULL, err);
	if (rc < 0)
		return db_fail(err, rc, "Cannot record the organization's owner");
	return 0;
}

NX_DEFUN(nexodus_org_create, "nexodus organization create NAME$name",
	 NEXODUS_HELP "Organizations\nCreate an organization owned by the operator\n"
		      "Name (unique)\n")
{
	struct org_create oc = { .name = nx_cmd_arg_get(argc, argv, "name") };
	int rc;

	rc = admin_run(vty, org_create_txn, &oc);
	if (rc != NX_CMD_SUCCESS)
		return rc;
	nx_info("operator: created organization %s", oc.id);
	nx_vty_out(vty, "%s\n", oc.id);
	return NX_CMD_SUCCESS;
}

/* --- nexodus vpc create organization ORG-ID ... --------------------------------------------- */

struct vpc_create {
	const char *org_id;
	const char *description;
	char ipv4[NX_PREFIX_STRLEN]; /* "" for the schema's default */
	char ipv6[NX_PREFIX_STRLEN];
	char id[UUID_BUFSIZE]; /* out */
};

static int vpc_create_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	struct vpc_create *vc = arg;
	const char *params[5];
	char sql[384];
	char values[64];
	char columns[128];
	int n = 0, rc;
	PGresult *res;

	rc = txn_setup(conn, err);
	if (rc < 0)
		return rc;

	/* CIDRs left out take the column defaults; private_cidr says whether any was chosen. */
	params[n++] = vc->org_id;
	params[n++] = vc->description;
	params[n++] = vc->ipv4[0] || vc->ipv6[0] ? "true" : "false";
	nx_strlcpy(columns, "organization_id, description, private_cidr", sizeof(columns));
	nx_strlcpy(values, "$1, $2, $3", sizeof(values));
	if (vc->ipv4[0]) {
		params[n++] = vc->ipv4;
		nx_strlcat(columns, ", ipv4_cidr", sizeof(columns));
		snprintf(values + strlen(values), sizeof(values) - strlen(values), ", $%d", n);
	}
	if (vc->ipv6[0]) {
		params[n++] = vc->ipv6;
		nx_strlcat(columns, ", ipv6_cidr", sizeof(columns));
		snprintf(values + strlen(values), sizeof(values) - strlen(values), ", $%d", n);
	}
	snprintf(sql, sizeof(sql), "INSERT INTO vpcs (%s) VALUES (%s) RETURNING id", columns,
		 values);
	rc = nexsrv_db_exec(conn, sql, n, params, &res, err);
	if (rc == -ENOENT) /* the organization foreign key */
		return nx_err_set(err, ENOENT, "No such organization: %s", vc->org_id);
	if (rc < 0)
		return db_fail(err, rc, "Cannot create the VPC");
	copy_first(res, vc->id, sizeof(vc->id));
	PQclear(res);

	params[0] = vc->id;
	params[1] = vc->org_id;
	params[2] = DEFAULT_SG_DESCRIPTION;
	rc = nexsrv_db_exec(
		conn,
		"INSERT INTO security_groups (id, vpc_id, organization_id, description) "
		"VALUES ($1, $1, $2, $3)",
		3, params, NULL, err);
	if (rc < 0)
		return db_fail(err, rc, "Cannot create the VPC's default security group");
	return 0;
}

/* A CIDR option: parsed strictly, of the family the option names, in canonical form. */
static bool vpc_cidr(struct nx_vty *vty, const char *option, const char *text, int family,
		     char *out, size_t size)
{
	struct nx_prefix p;
	struct nx_err err;

	nx_err_clear(&err);
	if (!text)
		return true;
	if (nx_prefix_parse(text, &p, NX_PREFIX_STRICT, &err) < 0) {
		nx_vty_out(vty, "%% %s: %s\n", option, err.msg);
		return false;
	}
	if (p.addr.family != family) {
		nx_vty_out(vty, "%% %s: \"%s\" is an %s prefix; this option takes an %s prefix\n",
			   option, text, family == AF_INET ? "IPv6" : "IPv4",
			   family == AF_INET ? "IPv4" : "IPv6");
		return false;
	}
	nx_prefix_format(&p, out, size);
	return true;
}

/* The CIDR tokens also take the other family's shape, so that a prefix given to the wrong
 * option gets a message saying so rather than "unknown command". */
NX_DEFUN(nexodus_vpc_create,
	 "nexodus vpc create organization ORG-ID$org "
	 "[ipv4-cidr <A.B.C.D/M|X:X::X:X/M>$ipv4] [ipv6-cidr <X:X::X:X/M|A.B.C.D/M>$ipv6] "
	 "[description LINE$text]",
	 NEXODUS_HELP "VPCs\nCreate a VPC (and its default security group)\n"
		      "The organization it belongs to\nOrganization id\n"
		      "IPv4 pool of its tunnel addresses (default 100.64.0.0/10)\nIPv4 prefix\n"
		      "IPv6 prefix (refused: the wrong family)\n"
		      "IPv6 pool of its tunnel addresses (default 200::/64)\nIPv6 prefix\n"
		      "IPv4 prefix (refused: the wrong family)\n"
		      "Description\nText (the rest of the line)\n")
{
	struct vpc_create vc = {
		.org_id = nx_cmd_arg_get(argc, argv, "org"),
		.description = nx_cmd_arg_get(argc, argv, "text"),
	};
	int rc;

	if (!vc.description)
		vc.description = "";
	if (!check_uuid(vty, "organization", vc.org_id) ||
	    !vpc_cidr(vty, "ipv4-cidr", nx_cmd_arg_get(argc, argv, "ipv4"), AF_INET, vc.ipv4,
		      sizeof(vc.ipv4)) ||
	    !vpc_cidr(vty, "ipv6-cidr", nx_cmd_arg_get(argc, argv, "ipv6"), AF_INET6, vc.ipv6,
		      sizeof(vc.ipv6)))
		return NX_CMD_WARNING;

	rc = admin_run(vty, vpc_create_txn, &vc);
	if (rc != NX_CMD_SUCCESS)
		return rc;
	nx_info("operator: created VPC %s in organization %s", vc.id, vc.org_id);
	nx_vty_out(vty, "%s\n", vc.id);
	return NX_CMD_SUCCESS;
}

/* --- nexodus registration-key create vpc VPC-ID ... ----------------------------------------- */

struct regkey_create {
	const char *vpc_id;
	bool single_use;
	const char *expires_in; /* seconds, validated; NULL: never expires */
	uint8_t hash[NEXSRV_TOKEN_HASH_LEN];
	char id[UUID_BUFSIZE]; /* out */
};

static int regkey_create_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	struct regkey_create *rk = arg;
	char hash[NEXSRV_DB_BYTEA_PARAM_SIZE(NEXSRV_TOKEN_HASH_LEN)];
	char org[UUID_BUFSIZE], owner[UUID_BUFSIZE];
	const char *params[6];
	PGresult *res;
	int rc;

	rc = txn_setup(conn, err);
	if (rc < 0)
		return rc;

	params[0] = rk->vpc_id;
	rc = nexsrv_db_exec(conn,
			    "SELECT v.organization_id, o.owner_id FROM vpcs v "
			    "JOIN organizations o ON o.id = v.organization_id WHERE v.id = $1",
			    1, params, &res, err);
	if (rc < 0)
		return db_fail(err, rc, "Cannot read the VPC");
	if (rc == 0) {
		PQclear(res);
		return nx_err_set(err, ENOENT, "No such VPC: %s", rk->vpc_id);
	}
	nx_strlcpy(org, nexsrv_db_text(res, 0, 0), sizeof(org));
	nx_strlcpy(owner, nexsrv_db_text(res, 0, 1), sizeof(owner));
	PQclear(res);

	rc = nexsrv_db_bytea_param(rk->hash, sizeof(rk->hash), hash, sizeof(hash));
	if (rc < 0)
		return nx_err_set(err, -rc, "Cannot encode the key's hash");
	params[1] = org;
	params[2] = owner;
	params[3] = hash;
	params[4] = rk->single_use ? "true" : "false";
	params[5] = rk->expires_in;
	rc = nexsrv_db_exec(
		conn,
		"INSERT INTO reg_keys (vpc_id, organization_id, owner_id, token_hash, "
		"single_use, expires_at) "
		"VALUES ($1, $2, $3, $4::bytea, $5, now() + $6::integer * interval '1 s') "
		"RETURNING id",
		6, params, &res, err);
	if (rc == -ENOENT) /* the VPC went away since the first statement */
		return nx_err_set(err, ENOENT, "No such VPC: %s", rk->vpc_id);
	if (rc < 0)
		return db_fail(err, rc, "Cannot create the registration key");
	copy_first(res, rk->id, sizeof(rk->id));
	PQclear(res);
	return 0;
}

NX_DEFUN(nexodus_regkey_create,
	 "nexodus registration-key create vpc VPC-ID$vpc_id [single-use] "
	 "[expires-in (60-31536000)$seconds]",
	 NEXODUS_HELP "Registration keys (RK:...), which let agents join a VPC\n"
		      "Create a registration key; it is shown only this once\n"
		      "The VPC it lets devices join\nVPC id\n"
		      "The key registers one device, then is spent\n"
		      "The key stops working after a while\nSeconds\n")
{
	struct regkey_create rk = {
		.vpc_id = nx_cmd_arg_get(argc, argv, "vpc_id"),
		.single_use = nx_cmd_arg_has(argc, argv, "single-use"),
		.expires_in = nx_cmd_arg_get(argc, argv, "seconds"),
	};
	char token[NEXSRV_TOKEN_BUFSIZE];
	unsigned long long seconds;
	struct nx_err err;
	int rc;

	nx_err_clear(&err);
	if (!check_uuid(vty, "VPC", rk.vpc_id))
		return NX_CMD_WARNING;
	if (rk.expires_in && nx_parse_uint(rk.expires_in, 60, 31536000, &seconds, &err) < 0) {
		nx_vty_out(vty, "%% expires-in: %s seconds\n", err.msg);
		return NX_CMD_WARNING;
	}
	rc = nexsrv_token_new(NEXSRV_TOKEN_REG_KEY, token, sizeof(token), rk.hash);
	if (rc < 0) {
		nx_vty_out(vty, "%% Cannot make a registration key: %s\n", strerror(-rc));
		return NX_CMD_WARNING;
	}

	rc = admin_run(vty, regkey_create_txn, &rk);
	if (rc == NX_CMD_SUCCESS) {
		nx_info("operator: created registration key %s for VPC %s%s", rk.id, rk.vpc_id,
			rk.single_use ? " (single use)" : "");
		nx_vty_out(vty, "%s\n", token);
	}
	nx_memzero_explicit(token, sizeof(token));
	return rc;
}

/* --- show commands --------------------------------------------------------------------------- */

/* How a result column becomes a JSON field. */
enum col_type {
	COL_TEXT,
	COL_BOOL,
	COL_INT,
	COL_JSON,
};

struct show_col {
	const char *key; /* JSON field; NULL: the column is for the text table only */
	enum col_type type;
};

/* A query behind a show command, run in a transaction. */
struct show_query {
	const char *check_sql; /* optional: must return a row, else "No such <check_what>" */
	const char *check_what;
	const char *sql;
	int nparams;
	const char *const *params;
	PGresult *res; /* out: the caller clears it */
};

static int show_query_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	struct show_query *q = arg;
	int rc;

	rc = txn_setup(conn, err);
	if (rc < 0)
		return rc;
	if (q->check_sql) {
		rc = nexsrv_db_exec(conn, q->check_sql, q->nparams, q->params, NULL, err);
		if (rc < 0)
			return db_fail(err, rc, "Cannot read the database");
		if (rc == 0)
			return nx_err_set(err, ENOENT, "No such %s: %s", q->check_what,
					  q->params[0]);
	}
	PQclear(q->res);
	q->res = NULL;
	rc = nexsrv_db_exec(conn, q->sql, q->nparams, q->params, &q->res, err);
	return rc < 0 ? db_fail(err, rc, "Cannot read the database") : 0;
}

/* One row as a JSON object of the keyed columns (SQL NULL is JSON null). */
static struct json_object *row_to_json(const PGresult *res, int row, const struct show_col *cols,
				       size_t ncols, struct nx_err *err)
{
	struct json_object *obj = json_object_new_object();
	struct json_object *v;
	int64_t i64;
	bool b;

	if (!obj)
		goto nomem;
	for (size_t c = 0; c < ncols; c++) {
		int col = (int)c;

		if (!cols[c].key)
			continue;
		v = NULL;
		if (!nexsrv_db_is_null(res, row, col)) {
			switch (cols[c].type) {
			case COL_TEXT:
				v = json_object_new_string(nexsrv_db_text(res, row, col));
				if (!v)
					goto nomem;
				break;
			case COL_BOOL:
				if (nexsrv_db_get_bool(res, row, col, &b, err) < 0)
					goto fail;
				v = json_object_new_boolean(b);
				break;
			case COL_INT:
				if (nexsrv_db_get_int64(res, row, col, &i64, err) < 0)
					goto fail;
				v = json_object_new_int64(i64);
				break;
			case COL_JSON:
				if (nexsrv_db_get_json(res, row, col, &v, err) < 0)
					goto fail;
				break;
			}
			if (!v && cols[c].type != COL_JSON)
				goto nomem;
		}
		if (json_object_object_add(obj, cols[c].key, v) < 0) {
			json_object_put(v);
			goto nomem;
		}
	}
	return obj;
nomem:
	nx_err_set(err, ENOMEM, "out of memory");
fail:
	json_object_put(obj);
	return NULL;
}

/* Prints {"<list>": [ rows... ]}. */
static int show_json(struct nx_vty *vty, const char *list, const PGresult *res,
		     const struct show_col *cols, size_t ncols)
{
	struct json_object *top = json_object_new_object();
	struct json_object *arr = json_object_new_array();
	struct nx_err err;
	char *text = NULL;
	int rc = NX_CMD_WARNING;

	nx_err_set(&err, ENOMEM, "out of memory");
	if (!top || !arr || json_object_object_add(top, list, arr) < 0) {
		json_object_put(arr);
		goto out;
	}
	for (int row = 0; row < PQntuples(res); row++) {
		struct json_object *obj = row_to_json(res, row, cols, ncols, &err);

		if (!obj)
			goto out;
		if (json_object_array_add(arr, obj) < 0) {
			json_object_put(obj);
			goto out;
		}
	}
	text = nx_json_to_string(top, NX_JSON_PRETTY);
	if (text) {
		nx_vty_out(vty, "%s\n", text);
		rc = NX_CMD_SUCCESS;
	}
out:
	if (rc != NX_CMD_SUCCESS)
		nx_vty_out(vty, "%% Cannot render the JSON output: %s\n", err.msg);
	free(text);
	json_object_put(top);
	return rc;
}

/* A cell for the text tables: "-" for SQL NULL and for empty text. */
static const char *cell(const PGresult *res, int row, int col)
{
	const char *v = nexsrv_db_text(res, row, col);

	return v && v[0] ? v : "-";
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* --- show nexodus organizations [json] --- */

static const struct show_col org_cols[] = {
	{ "id", COL_TEXT },	  { "name", COL_TEXT },	      { "description", COL_TEXT },
	{ "owner_id", COL_TEXT }, { "owner", COL_TEXT },      { "vpcs", COL_INT },
	{ "devices", COL_INT },	  { "created_at", COL_TEXT },
};

NX_DEFUN(show_nexodus_orgs, "show nexodus organizations [json]",
	 SHOW_HELP "Organizations\n" JSON_HELP)
{
	struct show_query q = {
		.sql = "SELECT o.id, o.name, o.description, o.owner_id, u.username, "
		       "(SELECT count(*) FROM vpcs v WHERE v.organization_id = o.id), "
		       "(SELECT count(*) FROM devices d WHERE d.organization_id = o.id), "
		       "to_json(o.created_at) #>> '{}' "
		       "FROM organizations o JOIN users u ON u.id = o.owner_id "
		       "ORDER BY o.name, o.id",
	};
	int rc = admin_run(vty, show_query_txn, &q);

	if (rc != NX_CMD_SUCCESS)
		goto out;
	if (nx_cmd_arg_has(argc, argv, "json")) {
		rc = show_json(vty, "organizations", q.res, org_cols, COUNT(org_cols));
		goto out;
	}
	nx_vty_out(vty, "%-36s  %-20s  %-12s  %5s  %7s\n", "ID", "Name", "Owner", "VPCs",
		   "Devices");
	for (int r = 0; r < PQntuples(q.res); r++)
		nx_vty_out(vty, "%-36s  %-20s  %-12s  %5s  %7s\n", cell(q.res, r, 0),
			   cell(q.res, r, 1), cell(q.res, r, 4), cell(q.res, r, 5),
			   cell(q.res, r, 6));
out:
	PQclear(q.res);
	return rc;
}

/* --- show nexodus vpcs [json] --- */

static const struct show_col vpc_cols[] = {
	{ "id", COL_TEXT },	      { "organization_id", COL_TEXT }, { "organization", COL_TEXT },
	{ "description", COL_TEXT },  { "ipv4_cidr", COL_TEXT },       { "ipv6_cidr", COL_TEXT },
	{ "private_cidr", COL_BOOL }, { "revision", COL_INT },	       { "devices", COL_INT },
	{ "created_at", COL_TEXT },
};

NX_DEFUN(show_nexodus_vpcs, "show nexodus vpcs [json]", SHOW_HELP "VPCs\n" JSON_HELP)
{
	struct show_query q = {
		.sql = "SELECT v.id, v.organization_id, o.name, v.description, v.ipv4_cidr, "
		       "v.ipv6_cidr, v.private_cidr, v.revision, "
		       "(SELECT count(*) FROM devices d WHERE d.vpc_id = v.id), "
		       "to_json(v.created_at) #>> '{}' "
		       "FROM vpcs v JOIN organizations o ON o.id = v.organization_id "
		       "ORDER BY o.name, v.created_at, v.id",
	};
	int rc = admin_run(vty, show_query_txn, &q);

	if (rc != NX_CMD_SUCCESS)
		goto out;
	if (nx_cmd_arg_has(argc, argv, "json")) {
		rc = show_json(vty, "vpcs", q.res, vpc_cols, COUNT(vpc_cols));
		goto out;
	}
	nx_vty_out(vty, "%-36s  %-20s  %-18s  %-24s  %7s  %s\n", "ID", "Organization", "IPv4 CIDR",
		   "IPv6 CIDR", "Devices", "Description");
	for (int r = 0; r < PQntuples(q.res); r++)
		nx_vty_out(vty, "%-36s  %-20s  %-18s  %-24s  %7s  %s\n", cell(q.res, r, 0),
			   cell(q.res, r, 2), cell(q.res, r, 4), cell(q.res, r, 5),
			   cell(q.res, r, 8), cell(q.res, r, 3));
out:
	PQclear(q.res);
	return rc;
}

/* --- show nexodus devices [vpc VPC-ID] [json] --- */

/* Never the device token's hash: secrets are not shown. */
#define DEVICE_COLUMNS                                                                           \
	"SELECT d.id, d.vpc_id, d.organization_id, d.owner_id, d.hostname, d.os, d.public_key, " \
	"d.ipv4_tunnel_ips, d.ipv6_tunnel_ips, d.endpoints, "                                    \
	"array_to_json(d.advertise_cidrs), d.relay, d.symmetric_nat, d.security_group_id, "      \
	"d.online, to_json(d.online_at) #>> '{}', d.revision, "                                  \
	"to_json(d.created_at) #>> '{}', d.ipv4_tunnel_ips -> 0 ->> 'address' "                  \
	"FROM devices d "
#define DEVICE_ORDER " ORDER BY d.vpc_id, d.hostname, d.id"

static const struct show_col device_cols[] = {
	{ "id", COL_TEXT },
	{ "vpc_id", COL_TEXT },
	{ "organization_id", COL_TEXT },
	{ "owner_id", COL_TEXT },
	{ "hostname", COL_TEXT },
	{ "os", COL_TEXT },
	{ "public_key", COL_TEXT },
	{ "ipv4_tunnel_ips", COL_JSON },
	{ "ipv6_tunnel_ips", COL_JSON },
	{ "endpoints", COL_JSON },
	{ "advertise_cidrs", COL_JSON },
	{ "relay", COL_BOOL },
	{ "symmetric_nat", COL_BOOL },
	{ "security_group_id", COL_TEXT },
	{ "online", COL_BOOL },
	{ "online_at", COL_TEXT },
	{ "revision", COL_INT },
	{ "created_at", COL_TEXT },
	{ NULL, COL_TEXT }, /* the first tunnel IPv4 address, for the table */
};

NX_DEFUN(show_nexodus_devices, "show nexodus devices [vpc VPC-ID$vpc_id] [json]",
	 SHOW_HELP "Devices\nOnly the devices of one VPC\nVPC id\n" JSON_HELP)
{
	const char *vpc = nx_cmd_arg_get(argc, argv, "vpc_id");
	const char *params[1] = { vpc };
	struct show_query q = { .sql = DEVICE_COLUMNS DEVICE_ORDER };
	int rc;

	if (vpc) {
		if (!check_uuid(vty, "VPC", vpc))
			return NX_CMD_WARNING;
		q.check_sql = "SELECT 1 FROM vpcs WHERE id = $1";
		q.check_what = "VPC";
		q.sql = DEVICE_COLUMNS "WHERE d.vpc_id = $1" DEVICE_ORDER;
		q.nparams = 1;
		q.params = params;
	}
	rc = admin_run(vty, show_query_txn, &q);
	if (rc != NX_CMD_SUCCESS)
		goto out;
	if (nx_cmd_arg_has(argc, argv, "json")) {
		rc = show_json(vty, "devices", q.res, device_cols, COUNT(device_cols));
		goto out;
	}
	nx_vty_out(vty, "%-36s  %-36s  %-20s  %-15s  %s\n", "ID", "VPC", "Hostname", "Tunnel IPv4",
		   "Online");
	for (int r = 0; r < PQntuples(q.res); r++) {
		const char *online = nexsrv_db_text(q.res, r, 14);

		nx_vty_out(vty, "%-36s  %-36s  %-20s  %-15s  %s\n", cell(q.res, r, 0),
			   cell(q.res, r, 1), cell(q.res, r, 4), cell(q.res, r, 18),
			   online && online[0] == 't' ? "yes" : "no");
	}
out:
	PQclear(q.res);
	return rc;
}

/* --- show nexodus watchers [json] --- */

static const char *watcher_caller(const struct nexsrv_watcher_info *w)
{
	return w->caller_kind == NEXSRV_CALLER_DEVICE ? "device" : "user";
}

/* The open watch streams of this nexsrv (not of other replicas): no database involved. */
static int show_watchers_json(struct nx_vty *vty, const struct nexsrv_watcher_info *ws, size_t n,
			      const struct nexsrv_watch_stats *st)
{
	struct json_object *top = json_object_new_object(), *arr = json_object_new_array();
	char *text = NULL;
	bool ok = top && arr && json_object_object_add(top, "watchers", arr) == 0;

	if (!ok)
		json_object_put(arr);
	for (size_t i = 0; ok && i < n; i++) {
		struct json_object *o = json_object_new_object();
		char since[32];
		struct tm tm;

		gmtime_r(&ws[i].since, &tm);
		strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
		ok = o && json_object_array_add(arr, o) == 0;
		if (!ok) {
			json_object_put(o);
			break;
		}
		ok = nx_json_object_add_string(o, "vpc_id", ws[i].vpc_id) == 0 &&
		     nx_json_object_add_string(o, "caller", watcher_caller(&ws[i])) == 0 &&
		     nx_json_object_add_string(o, "caller_id", ws[i].caller_id) == 0 &&
		     (ws[i].online_device[0]
			      ? nx_json_object_add_string(o, "online_device", ws[i].online_device)
			      : nx_json_object_add_null(o, "online_device")) == 0 &&
		     nx_json_object_add_string(o, "client", ws[i].client) == 0 &&
		     nx_json_object_add_string(o, "kinds", ws[i].kinds) == 0 &&
		     nx_json_object_add_int64(o, "last_revision", ws[i].last_revision) == 0 &&
		     nx_json_object_add_bool(o, "live", ws[i].live) == 0 &&
		     nx_json_object_add_string(o, "since", since) == 0;
	}
	ok = ok && nx_json_object_add_uint64(top, "streams", st->streams) == 0 &&
	     nx_json_object_add_uint64(top, "vpcs", st->vpcs) == 0 &&
	     nx_json_object_add_uint64(top, "log_events", st->log_events) == 0 &&
	     nx_json_object_add_uint64(top, "log_bytes", st->log_bytes) == 0 &&
	     nx_json_object_add_uint64(top, "events", st->events) == 0 &&
	     nx_json_object_add_uint64(top, "ended_behind", st->ended_behind) == 0 &&
	     nx_json_object_add_bool(top, "listening", st->listening) == 0;
	if (ok)
		text = nx_json_to_string(top, NX_JSON_PRETTY);
	if (text)
		nx_vty_out(vty, "%s\n", text);
	else
		nx_vty_out(vty, "%% Cannot render the JSON output: out of memory\n");
	free(text);
	json_object_put(top);
	return text ? NX_CMD_SUCCESS : NX_CMD_WARNING;
}

NX_DEFUN(show_nexodus_watchers, "show nexodus watchers [json]",
	 SHOW_HELP "Open watch streams of this service\n" JSON_HELP)
{
	struct nexsrv *srv = vty->daemon;
	struct nexsrv_watcher_info *ws = NULL;
	struct nexsrv_watch_stats st;
	size_t n = 0;
	int rc = NX_CMD_SUCCESS;

	if (nexsrv_watch_list(srv->watch, &ws, &n, &st) < 0) {
		nx_vty_out(vty, "%% Cannot list the watch streams: out of memory\n");
		return NX_CMD_WARNING;
	}
	if (nx_cmd_arg_has(argc, argv, "json")) {
		rc = show_watchers_json(vty, ws, n, &st);
		free(ws);
		return rc;
	}
	if (!srv->watch)
		nx_vty_out(vty, "Watch streams are not served: no database is configured.\n");
	else
		nx_vty_out(vty,
			   "%zu stream(s) on %zu VPC(s); change logs hold %zu event(s), %zu "
			   "bytes; %llu event(s) read; %llu stream(s) ended for falling behind; "
			   "LISTEN %s\n",
			   st.streams, st.vpcs, st.log_events, st.log_bytes,
			   (unsigned long long)st.events, (unsigned long long)st.ended_behind,
			   st.listening ? "up" : "down");
	if (n)
		nx_vty_out(vty, "%-36s  %-6s  %-36s  %-40s  %10s  %s\n", "VPC", "Caller",
			   "User/device", "Kinds", "Revision", "Since");
	for (size_t i = 0; i < n; i++) {
		char since[32];
		struct tm tm;

		gmtime_r(&ws[i].since, &tm);
		strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
		nx_vty_out(vty, "%-36s  %-6s  %-36s  %-40s  %10lld  %s%s\n", ws[i].vpc_id,
			   watcher_caller(&ws[i]), ws[i].caller_id, ws[i].kinds,
			   (long long)ws[i].last_revision, since, ws[i].live ? "" : " (listing)");
	}
	free(ws);
	return rc;
}

/* --- installation ---------------------------------------------------------------------------- */

int nexsrv_vty_admin_init(struct nexsrv *srv, struct nx_err *err)
{
	static const struct nx_cmd *const cmds[] = {
		&nexodus_org_create,	&nexodus_vpc_create, &nexodus_regkey_create,
		&show_nexodus_orgs,	&show_nexodus_vpcs,  &show_nexodus_devices,
		&show_nexodus_watchers,
	};
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < COUNT(cmds); i++)
		rc = nx_cmd_install(srv->daemon->tree, NX_NODE_VIEW, cmds[i], err);
	return rc;
}
