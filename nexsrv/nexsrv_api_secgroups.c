/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Security groups: the firewall rules the agents apply to their tunnel interface.  A group
 * belongs to a VPC; everyone who reaches the VPC (its devices included) reads its groups,
 * owners of the VPC's organization change them.  A VPC's default group (id = VPC id) is
 * made with the VPC and cannot be deleted.  Rules are validated and stored in one canonical
 * spelling (nexsrv_secgroup_rules_parse), so agents never see a rule they cannot parse.
 *
 *   GET    /api/security-groups       ?gt_revision=N
 *   POST   /api/security-groups       models.AddSecurityGroup -> 201 models.SecurityGroup
 *   GET    /api/security-groups/{id}
 *   PATCH  /api/security-groups/{id}  models.UpdateSecurityGroup
 *   DELETE /api/security-groups/{id}  200 with the group as it was
 *
 * Invalid rules are 422 with the field, as in the original.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lib/jsonutil.h"
#include "nexsrv/nexsrv.h"
#include "nexsrv/nexsrv_api_net.h"
#include "nexsrv/nexsrv_http.h"

static const struct nexsrv_list_field secgroup_fields[] = {
	{ "id", "s.id" },
	{ "vpc_id", "s.vpc_id" },
	{ "description", "s.description" },
	{ "revision", "s.revision" },
	{ NULL, NULL },
};

const struct nexsrv_api_list nexsrv_secgroup_list = {
	.json = NEXSRV_SECGROUP_JSON,
	.from = "security_groups s",
	.fields = secgroup_fields,
	.default_order = "s.created_at",
	.tiebreak = "s.id",
};

/* A validated body and its rules serialised for the statement. */
struct secgroup_body {
	struct nexsrv_secgroup_input in;
	char *rules_text[2]; /* NULL: not given */
};

static void secgroup_body_fini(struct secgroup_body *b)
{
	nexsrv_secgroup_input_fini(&b->in);
	for (int i = 0; i < 2; i++) {
		free(b->rules_text[i]);
		b->rules_text[i] = NULL;
	}
}

/* Validates body; answers itself (422 for a rule, as the original, else 400) and returns a
 * negative errno when it is not acceptable. */
static int secgroup_body_parse(struct nexsrv_req *req, struct json_object *body, bool create,
			       struct secgroup_body *b)
{
	struct nexsrv_input_error e = { "", { "" } };
	struct nexsrv_api_reply r = { 0 };
	int rc;

	memset(b, 0, sizeof(*b));
	rc = nexsrv_secgroup_input_parse(body, create, &b->in, &e);
	if (rc < 0) {
		bool rule = strncmp(e.field, "inbound_rules", 13) == 0 ||
			    strncmp(e.field, "outbound_rules", 14) == 0;

		nexsrv_api_reply_input(&r, rule ? 422 : 400, rc, &e);
		nexsrv_api_send(req, &r);
		return rc;
	}
	for (int i = 0; i < 2; i++) {
		if (!b->in.rules[i])
			continue;
		b->rules_text[i] = nx_json_to_string(b->in.rules[i], NX_JSON_PLAIN);
		if (!b->rules_text[i]) {
			nexsrv_reply_error(req, 500, "out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

static int secgroups_list(struct nexsrv_req *req, void *arg)
{
	struct nexsrv *srv = arg;
	const struct nexsrv_caller *c = nexsrv_api_caller(req);
	struct nexsrv_api_list list = nexsrv_secgroup_list;
	struct nexsrv_sql where;
	char rev[24];
	int64_t gt = 0;
	PGconn *conn;
	int rc, has_gt;

	if (!c || (has_gt = nexsrv_api_gt_revision(req, &gt)) < 0)
		return 0;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		return 0;
	nexsrv_sql_init(&where);
	nexsrv_sql_scope_vpc(&where, c, "s.vpc_id");
	if (has_gt) {
		snprintf(rev, sizeof(rev), "%" PRId64, gt);
		nexsrv_sql_add(&where, " AND s.revision > ");
		nexsrv_sql_param(&where, rev);
		list.default_order = "s.revision";
	}
	rc = nexsrv_api_list(req, conn, &list, &where);
	nexsrv_db_release(srv->db, conn);
	return rc;
}

static int secgroups_get(struct nexsrv_req *req, void *arg)
{
	return nexsrv_api_get_in_vpc(
		req, arg,
		"SELECT " NEXSRV_SECGROUP_JSON " FROM security_groups s WHERE s.id = ", "s.vpc_id",
		"security group");
}

/* --- changes ------------------------------------------------------------------------------- */

enum secgroup_op {
	OP_CREATE,
	OP_UPDATE,
	OP_DELETE,
};

struct secgroup_change {
	struct nexsrv_api_reply reply;
	const struct nexsrv_caller *caller;
	enum secgroup_op op;
	char id[NEXSRV_INPUT_UUID_LEN]; /* update, delete */
	struct secgroup_body body;
};

/* For an update or a delete: the group's VPC and organization, 0 if out of reach. */
static int secgroup_locate(PGconn *conn, struct secgroup_change *t, char *vpc, char *org,
			   struct nx_err *err)
{
	struct nexsrv_sql q;
	PGresult *res = NULL;
	int rc;

	nexsrv_sql_init(&q);
	nexsrv_sql_add(&q, "SELECT s.vpc_id, s.organization_id FROM security_groups s "
			   "WHERE s.id = ");
	nexsrv_sql_param(&q, t->id);
	nexsrv_sql_add(&q, " AND ");
	nexsrv_sql_scope_vpc(&q, t->caller, "s.vpc_id");
	nexsrv_sql_add(&q, " FOR UPDATE OF s");
	rc = nexsrv_sql_exec(conn, &q, &res, err);
	if (rc == 1) {
		nx_strlcpy(vpc, nexsrv_db_text(res, 0, 0), NEXSRV_INPUT_UUID_LEN);
		nx_strlcpy(org, nexsrv_db_text(res, 0, 1), NEXSRV_INPUT_UUID_LEN);
	}
	PQclear(res);
	nexsrv_sql_fini(&q);
	return rc;
}

static void add_rules_params(struct nexsrv_sql *q, struct secgroup_body *b, bool create)
{
	for (int i = 0; i < 2; i++) {
		if (create) {
			nexsrv_sql_add(q, ", ");
			nexsrv_sql_param(q, b->rules_text[i] ? b->rules_text[i] : "[]");
			nexsrv_sql_add(q, "::jsonb");
		} else if (b->rules_text[i]) {
			nexsrv_sql_add(q, ", %s = ", nexsrv_secgroup_rule_keys[i]);
			nexsrv_sql_param(q, b->rules_text[i]);
			nexsrv_sql_add(q, "::jsonb");
		}
	}
}

static int secgroup_change_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	struct secgroup_change *t = arg;
	char vpc[NEXSRV_INPUT_UUID_LEN], org[NEXSRV_INPUT_UUID_LEN];
	struct json_object *obj = NULL;
	struct nexsrv_sql q;
	PGresult *res = NULL;
	bool owner = false;
	int rc;

	nexsrv_api_reply_reset(&t->reply);
	nexsrv_sql_init(&q);
	if (t->op == OP_CREATE) {
		nx_strlcpy(vpc, t->body.in.vpc_id, sizeof(vpc));
		rc = nexsrv_api_vpc_reachable(conn, t->caller, vpc, org, err);
		if (rc == 0)
			rc = nexsrv_api_reply_not_found(&t->reply, "vpc");
	} else {
		rc = secgroup_locate(conn, t, vpc, org, err);
		if (rc == 0)
			rc = nexsrv_api_reply_not_found(&t->reply, "security group");
	}
	if (rc < 0)
		goto out;
	rc = nexsrv_api_may_modify(conn, t->caller, org, NULL, &owner, err);
	if (rc < 0)
		goto out;
	if (!owner) {
		rc = nexsrv_api_reply_not_allowed(
			&t->reply, 403,
			"only an owner of the organization may change its security groups");
		goto out;
	}

	switch (t->op) {
	case OP_CREATE:
		nexsrv_sql_add(&q, "INSERT INTO security_groups AS s (vpc_id, organization_id, "
				   "description, inbound_rules, outbound_rules) VALUES (");
		nexsrv_sql_param(&q, vpc);
		nexsrv_sql_add(&q, ", ");
		nexsrv_sql_param(&q, org);
		nexsrv_sql_add(&q, ", ");
		nexsrv_sql_param(&q, t->body.in.description ? t->body.in.description : "");
		add_rules_params(&q, &t->body, true);
		nexsrv_sql_add(&q, ")");
		break;
	case OP_UPDATE:
		nexsrv_sql_add(&q, "UPDATE security_groups s SET description = ");
		if (t->body.in.description)
			nexsrv_sql_param(&q, t->body.in.description);
		else
			nexsrv_sql_add(&q, "s.description");
		add_rules_params(&q, &t->body, false);
		nexsrv_sql_add(&q, " WHERE s.id = ");
		nexsrv_sql_param(&q, t->id);
		break;
	case OP_DELETE:
		if (strcmp(t->id, vpc) == 0) {
			rc = nexsrv_api_reply_not_allowed(
				&t->reply, 400, "default security group cannot be deleted");
			goto out;
		}
		nexsrv_sql_add(&q, "DELETE FROM security_groups s WHERE s.id = ");
		nexsrv_sql_param(&q, t->id);
		break;
	}
	nexsrv_sql_add(&q, " RETURNING " NEXSRV_SECGROUP_JSON);
	rc = nexsrv_sql_exec(conn, &q, &res, err);
	if (rc == 1)
		rc = nexsrv_api_row_json(res, 0, &obj, err);
	else if (rc >= 0)
		rc = nx_err_set(err, EIO, "security group statement returned %d rows", rc);
	if (rc < 0)
		goto out;
	rc = nexsrv_api_reply_set(&t->reply, t->op == OP_CREATE ? 201 : 200, obj);
	obj = NULL;
out:
	json_object_put(obj);
	PQclear(res);
	nexsrv_sql_fini(&q);
	return rc;
}

static int secgroup_change(struct nexsrv_req *req, struct nexsrv *srv, enum secgroup_op op)
{
	struct secgroup_change t = { .reply = { 0 }, .op = op };
	struct json_object *body;
	int rc;

	t.caller = nexsrv_api_caller(req);
	if (!t.caller)
		return 0;
	if (op != OP_CREATE && nexsrv_api_path_uuid(req, "id", t.id) < 0)
		return 0;
	if (nexsrv_api_user_only(req) < 0)
		return 0;
	if (op != OP_DELETE) {
		if (nexsrv_api_body_object(req, &body) < 0)
			return 0;
		if (secgroup_body_parse(req, body, op == OP_CREATE, &t.body) < 0) {
			secgroup_body_fini(&t.body);
			return 0;
		}
	} else {
		memset(&t.body, 0, sizeof(t.body));
	}
	rc = nexsrv_api_txn(req, srv, secgroup_change_txn, &t, &t.reply);
	secgroup_body_fini(&t.body);
	return rc;
}

static int secgroups_create(struct nexsrv_req *req, void *arg)
{
	return secgroup_change(req, arg, OP_CREATE);
}

static int secgroups_patch(struct nexsrv_req *req, void *arg)
{
	return secgroup_change(req, arg, OP_UPDATE);
}

static int secgroups_delete(struct nexsrv_req *req, void *arg)
{
	return secgroup_change(req, arg, OP_DELETE);
}

int nexsrv_api_secgroups_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err)
{
	static const struct nexsrv_route routes[] = {
		NEXSRV_API_ROUTE("GET", "/api/security-groups", secgroups_list),
		NEXSRV_API_ROUTE("POST", "/api/security-groups", secgroups_create),
		NEXSRV_API_ROUTE("GET", "/api/security-groups/{id}", secgroups_get),
		NEXSRV_API_ROUTE("PATCH", "/api/security-groups/{id}", secgroups_patch),
		NEXSRV_API_ROUTE("DELETE", "/api/security-groups/{id}", secgroups_delete),
	};

	return nexsrv_api_routes_add(http, routes, sizeof(routes) / sizeof(routes[0]), srv, err);
}
