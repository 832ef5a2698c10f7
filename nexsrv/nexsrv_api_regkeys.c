/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Registration keys: secrets that let an agent join a VPC without a person at a browser
 * (nexd --reg-key RK:...).  Any member who reaches a VPC may create one for it; the key's
 * creator and the owners of the organization see, change and delete it.  A single-use key
 * creates exactly one device (nexsrv_api_devices.c); an expired one none.
 *
 *   GET    /api/reg-keys
 *   POST   /api/reg-keys       models.AddRegKey -> 201 models.RegKey with bearer_token
 *   GET    /api/reg-keys/{id}  ("me": the key presenting itself)
 *   PATCH  /api/reg-keys/{id}  models.UpdateRegKey
 *   DELETE /api/reg-keys/{id}  200 with the key as it was
 *
 * Only the SHA-256 of the token is stored (nexsrv_token.h): the token is in the create
 * response and nowhere else, unlike the original, which returned it on every read.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonutil.h"
#include "lib/strutil.h"
#include "nexsrv/nexsrv.h"
#include "nexsrv/nexsrv_api_net.h"
#include "nexsrv/nexsrv_http.h"
#include "nexsrv/nexsrv_token.h"

static const struct nexsrv_list_field regkey_fields[] = {
	{ "id", "r.id" },
	{ "owner_id", "r.owner_id" },
	{ "vpc_id", "r.vpc_id" },
	{ "description", "r.description" },
	{ "single_use", "r.single_use" },
	{ "security_group_id", "r.security_group_id" },
	{ "device_id", "r.device_id" },
	{ NULL, NULL },
};

static const struct nexsrv_api_list regkey_list = {
	.json = NEXSRV_REGKEY_JSON,
	.from = "reg_keys r",
	.fields = regkey_fields,
	.default_order = "r.created_at",
	.tiebreak = "r.id",
};

/*
 * The keys the caller reaches: a user, the keys of VPCs within reach that they created or
 * whose organization they own; a registration key, itself; a device, none.
 */
static void regkey_scope(struct nexsrv_sql *q, const struct nexsrv_caller *c)
{
	switch (c->kind) {
	case NEXSRV_CALLER_USER:
		nexsrv_sql_scope_vpc(q, c, "r.vpc_id");
		nexsrv_sql_add(q, " AND (r.owner_id = ");
		nexsrv_sql_param(q, c->user_id);
		nexsrv_sql_add(q, " OR EXISTS (SELECT 1 FROM memberships om WHERE "
				  "om.organization_id = r.organization_id AND 'owner' = ANY "
				  "(om.roles) AND om.user_id = ");
		nexsrv_sql_param(q, c->user_id);
		nexsrv_sql_add(q, "))");
		break;
	case NEXSRV_CALLER_REG_KEY:
		nexsrv_sql_add(q, "r.id = ");
		nexsrv_sql_param(q, c->reg_key_id);
		break;
	case NEXSRV_CALLER_DEVICE:
	default:
		nexsrv_sql_add(q, "FALSE");
		break;
	}
}

static int regkeys_list(struct nexsrv_req *req, void *arg)
{
	struct nexsrv *srv = arg;
	const struct nexsrv_caller *c = nexsrv_api_caller(req);
	struct nexsrv_sql where;
	PGconn *conn;
	int rc;

	if (!c)
		return 0;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		return 0;
	nexsrv_sql_init(&where);
	regkey_scope(&where, c);
	rc = nexsrv_api_list(req, conn, &regkey_list, &where);
	nexsrv_db_release(srv->db, conn);
	return rc;
}

/* The path's key id; "me" is the presenting key itself.  -EINVAL after answering. */
static int regkey_path_id(struct nexsrv_req *req, const struct nexsrv_caller *c,
			  char id[NEXSRV_INPUT_UUID_LEN])
{
	const char *s = nexsrv_req_param(req, "id");

	if (s && strcmp(s, "me") == 0) {
		if (c->kind != NEXSRV_CALLER_REG_KEY) {
			nexsrv_reply_not_found(req, "reg key");
			return -EINVAL;
		}
		nx_strlcpy(id, c->reg_key_id, NEXSRV_INPUT_UUID_LEN);
		return 0;
	}
	return nexsrv_api_path_uuid(req, "id", id);
}

static int regkeys_get(struct nexsrv_req *req, void *arg)
{
	struct nexsrv *srv = arg;
	const struct nexsrv_caller *c = nexsrv_api_caller(req);
	char id[NEXSRV_INPUT_UUID_LEN];
	struct nexsrv_sql q;
	PGconn *conn;

	if (!c || regkey_path_id(req, c, id) < 0)
		return 0;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		return 0;
	nexsrv_sql_init(&q);
	nexsrv_sql_add(&q, "SELECT " NEXSRV_REGKEY_JSON " FROM reg_keys r WHERE r.id = ");
	nexsrv_sql_param(&q, id);
	nexsrv_sql_add(&q, " AND ");
	regkey_scope(&q, c);
	return nexsrv_api_reply_one(req, srv, conn, &q, "reg key");
}

/* --- changes ------------------------------------------------------------------------------- */

enum regkey_op {
	OP_CREATE,
	OP_UPDATE,
	OP_DELETE,
};

struct regkey_change {
	struct nexsrv_api_reply reply;
	const struct nexsrv_caller *caller;
	enum regkey_op op;
	char id[NEXSRV_INPUT_UUID_LEN];
	struct nexsrv_regkey_input in;
	char *settings; /* in.settings serialised */
	char token[NEXSRV_TOKEN_BUFSIZE];
	char hash[NEXSRV_DB_BYTEA_PARAM_SIZE(NEXSRV_TOKEN_HASH_LEN)];
};

/* The security group the body names must be one of vpc's: 1 yes, 0 no, or an error. */
static int secgroup_in_vpc(PGconn *conn, const char *sg, const char *vpc, struct nx_err *err)
{
	const char *params[] = { sg, vpc };

	return nexsrv_db_exec(conn, "SELECT 1 FROM security_groups WHERE id = $1 AND vpc_id = $2",
			      2, params, NULL, err);
}

static void set_optional(struct nexsrv_sql *q, const char *column, const char *value,
			 const char *cast)
{
	nexsrv_sql_add(q, ", %s = ", column);
	if (value && value[0]) {
		nexsrv_sql_param(q, value);
		nexsrv_sql_add(q, "%s", cast);
	} else {
		nexsrv_sql_add(q, "NULL");
	}
}

static int regkey_change_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	struct regkey_change *t = arg;
	char vpc[NEXSRV_INPUT_UUID_LEN], org[NEXSRV_INPUT_UUID_LEN], owner[NEXSRV_INPUT_UUID_LEN];
	struct json_object *obj = NULL;
	struct nexsrv_sql q;
	PGresult *res = NULL;
	bool may = false;
	int rc;

	nexsrv_api_reply_reset(&t->reply);
	nexsrv_sql_init(&q);
	if (t->op == OP_CREATE) {
		nx_strlcpy(vpc, t->in.vpc_id, sizeof(vpc));
		rc = nexsrv_api_vpc_reachable(conn, t->caller, vpc, org, err);
		if (rc == 0)
			rc = nexsrv_api_reply_not_found(&t->reply, "vpc");
		if (rc < 0)
			goto out;
	} else {
		nexsrv_sql_add(&q, "SELECT r.vpc_id, r.organization_id, r.owner_id FROM reg_keys r "
				   "WHERE r.id = ");
		nexsrv_sql_param(&q, t->id);
		nexsrv_sql_add(&q, " AND ");
		regkey_scope(&q, t->caller);
		nexsrv_sql_add(&q, " FOR UPDATE OF r");
		rc = nexsrv_sql_exec(conn, &q, &res, err);
		if (rc == 0)
			rc = nexsrv_api_reply_not_found(&t->reply, "reg key");
		if (rc < 0)
			goto out;
		nx_strlcpy(vpc, nexsrv_db_text(res, 0, 0), sizeof(vpc));
		nx_strlcpy(org, nexsrv_db_text(res, 0, 1), sizeof(org));
		nx_strlcpy(owner, nexsrv_db_text(res, 0, 2), sizeof(owner));
		PQclear(res);
		res = NULL;
		/* Within reach means creator or organization owner already; users only. */
		rc = nexsrv_api_may_modify(conn, t->caller, org, owner, &may, err);
		if (rc < 0)
			goto out;
		if (!may) {
			rc = nexsrv_api_reply_not_allowed(&t->reply, 403,
							  "only users change registration keys");
			goto out;
		}
		nexsrv_sql_fini(&q);
		nexsrv_sql_init(&q);
	}
	/* The syntax was checked without a database; the calendar is PostgreSQL's to check
	 * (30 February, hour 25), and a date it refuses is the field's fault. */
	if (t->in.expires_at) {
		const char *params[] = { t->in.expires_at };

		rc = nexsrv_db_exec(conn, "SELECT $1::timestamptz", 1, params, NULL, err);
		if (rc == -EINVAL)
			rc = nexsrv_api_reply_validation(&t->reply, t->op == OP_CREATE ? 400 : 422,
							 NEXSRV_ERR_FIELD_INVALID, "expires_at",
							 err->msg);
		if (rc < 0)
			goto out;
	}
	if ((t->in.present & NEXSRV_RK_SECURITY_GROUP) && t->in.security_group_id[0]) {
		rc = secgroup_in_vpc(conn, t->in.security_group_id, vpc, err);
		if (rc == 0)
			rc = nexsrv_api_reply_not_found(&t->reply, "security group");
		if (rc < 0)
			goto out;
	}

	switch (t->op) {
	case OP_CREATE:
		nexsrv_sql_add(&q, "INSERT INTO reg_keys AS r (owner_id, vpc_id, organization_id, "
				   "token_hash, description, single_use, expires_at, "
				   "security_group_id, settings) VALUES (");
		nexsrv_sql_param(&q, t->caller->user_id);
		nexsrv_sql_add(&q, ", ");
		nexsrv_sql_param(&q, vpc);
		nexsrv_sql_add(&q, ", ");
		nexsrv_sql_param(&q, org);
		nexsrv_sql_add(&q, ", ");
		nexsrv_sql_param(&q, t->hash);
		nexsrv_sql_add(&q, "::bytea, ");
		nexsrv_sql_param(&q, t->in.description ? t->in.description : "");
		nexsrv_sql_add(&q, ", ");
		nexsrv_sql_param(&q, t->in.single_use ? "true" : "false");
		nexsrv_sql_add(&q, ", ");
		nexsrv_sql_param(&q, t->in.expires_at);
		nexsrv_sql_add(&q, "::timestamptz, ");
		nexsrv_sql_param(&q, t->in.security_group_id[0] ? t->in.security_group_id : NULL);
		nexsrv_sql_add(&q, "::uuid, ");
		nexsrv_sql_param(&q, t->settings);
		nexsrv_sql_add(&q, "::jsonb)");
		break;
	case OP_UPDATE:
		nexsrv_sql_add(&q, "UPDATE reg_keys r SET description = ");
		if (t->in.present & NEXSRV_RK_DESCRIPTION)
			nexsrv_sql_param(&q, t->in.description);
		else
			nexsrv_sql_add(&q, "r.description");
		if (t->in.present & NEXSRV_RK_EXPIRES_AT)
			set_optional(&q, "expires_at", t->in.expires_at, "::timestamptz");
		if (t->in.present & NEXSRV_RK_SECURITY_GROUP)
			set_optional(&q, "security_group_id", t->in.security_group_id, "::uuid");
		if (t->in.present & NEXSRV_RK_SETTINGS)
			set_optional(&q, "settings", t->settings, "::jsonb");
		nexsrv_sql_add(&q, " WHERE r.id = ");
		nexsrv_sql_param(&q, t->id);
		break;
	case OP_DELETE:
		nexsrv_sql_add(&q, "DELETE FROM reg_keys r WHERE r.id = ");
		nexsrv_sql_param(&q, t->id);
		break;
	}
	nexsrv_sql_add(&q, " RETURNING " NEXSRV_REGKEY_JSON);
	rc = nexsrv_sql_exec(conn, &q, &res, err);
	if (rc == 1)
		rc = nexsrv_api_row_json(res, 0, &obj, err);
	else if (rc >= 0)
		rc = nx_err_set(err, EIO, "reg key statement returned %d rows", rc);
	if (rc < 0)
		goto out;
	/* The one and only time the token is seen. */
	if (t->op == OP_CREATE)
		nx_json_object_add_string(obj, "bearer_token", t->token);
	rc = nexsrv_api_reply_set(&t->reply, t->op == OP_CREATE ? 201 : 200, obj);
	obj = NULL;
out:
	json_object_put(obj);
	PQclear(res);
	nexsrv_sql_fini(&q);
	return rc;
}

static int regkey_change(struct nexsrv_req *req, struct nexsrv *srv, enum regkey_op op)
{
	struct regkey_change *t = calloc(1, sizeof(*t));
	struct nexsrv_input_error e = { "", { "" } };
	uint8_t hash[NEXSRV_TOKEN_HASH_LEN];
	struct json_object *body;
	int rc = 0;

	if (!t)
		return -ENOMEM;
	t->op = op;
	t->caller = nexsrv_api_caller(req);
	if (!t->caller)
		goto out;
	if (op != OP_CREATE && regkey_path_id(req, t->caller, t->id) < 0)
		goto out;
	if (nexsrv_api_user_only(req) < 0)
		goto out;
	if (op != OP_DELETE) {
		if (nexsrv_api_body_object(req, &body) < 0)
			goto out;
		rc = nexsrv_regkey_input_parse(body, op == OP_CREATE, &t->in, &e);
		if (rc < 0) {
			nexsrv_api_reply_input(&t->reply, op == OP_CREATE ? 400 : 422, rc, &e);
			rc = nexsrv_api_send(req, &t->reply);
			goto out;
		}
		if (t->in.settings) {
			t->settings = nx_json_to_string(t->in.settings, NX_JSON_PLAIN);
			if (!t->settings) {
				rc = -ENOMEM;
				goto out;
			}
		}
	}
	if (op == OP_CREATE) {
		if (nexsrv_token_new(NEXSRV_TOKEN_REG_KEY, t->token, sizeof(t->token), hash) < 0 ||
		    nexsrv_db_bytea_param(hash, sizeof(hash), t->hash, sizeof(t->hash)) < 0) {
			rc = nexsrv_reply_error(req, 500, "cannot make a token");
			goto out;
		}
	}
	rc = nexsrv_api_txn(req, srv, regkey_change_txn, t, &t->reply);
out:
	nx_memzero_explicit(t->token, sizeof(t->token));
	free(t->settings);
	nexsrv_api_reply_reset(&t->reply);
	free(t);
	return rc;
}

static int regkeys_create(struct nexsrv_req *req, void *arg)
{
	return regkey_change(req, arg, OP_CREATE);
}

static int regkeys_patch(struct nexsrv_req *req, void *arg)
{
	return regkey_change(req, arg, OP_UPDATE);
}

static int regkeys_delete(struct nexsrv_req *req, void *arg)
{
	return regkey_change(req, arg, OP_DELETE);
}

int nexsrv_api_regkeys_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err)
{
	static const struct nexsrv_route routes[] = {
		NEXSRV_API_ROUTE("GET", "/api/reg-keys", regkeys_list),
		NEXSRV_API_ROUTE("POST", "/api/reg-keys", regkeys_create),
		NEXSRV_API_ROUTE("GET", "/api/reg-keys/{id}", regkeys_get),
		NEXSRV_API_ROUTE("PATCH", "/api/reg-keys/{id}", regkeys_patch),
		NEXSRV_API_ROUTE("DELETE", "/api/reg-keys/{id}", regkeys_delete),
	};

	return nexsrv_api_routes_add(http, routes, sizeof(routes) / sizeof(routes[0]), srv, err);
}
