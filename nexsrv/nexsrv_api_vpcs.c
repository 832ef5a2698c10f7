/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * VPCs: the isolated networks devices join.  A VPC belongs to an organization; its members
 * see it, its owners change and delete it.  Creating one creates its default security
 * group (same id, no rules: everything allowed).  A user's default VPC (id = organization
 * id) cannot be deleted, nor can a VPC that still has devices.
 *
 *   GET    /api/vpcs                      VPCs within reach
 *   POST   /api/vpcs                      models.AddVPC -> 201 models.VPC
 *   GET    /api/vpcs/{id}
 *   PATCH  /api/vpcs/{id}                 models.UpdateVPC (description)
 *   DELETE /api/vpcs/{id}                 200 with the VPC as it was
 *   GET    /api/vpcs/{id}/devices         ?gt_revision=N: only newer revisions
 *   GET    /api/vpcs/{id}/metadata        ?gt_revision, prefix, key
 *   GET    /api/vpcs/{id}/security-groups ?gt_revision
 *
 * Registration keys and device tokens read their own VPC only, and change nothing here.
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

#define DEFAULT_SECGROUP_DESCRIPTION "default vpc security group"

static const struct nexsrv_list_field vpc_fields[] = {
	{ "id", "v.id" },
	{ "organization_id", "v.organization_id" },
	{ "description", "v.description" },
	{ "ipv4_cidr", "v.ipv4_cidr::text" },
	{ "ipv6_cidr", "v.ipv6_cidr::text" },
	{ "private_cidr", "v.private_cidr" },
	{ "revision", "v.revision" },
	{ NULL, NULL },
};

static const struct nexsrv_api_list vpc_list = {
	.json = NEXSRV_VPC_JSON,
	.from = "vpcs v",
	.fields = vpc_fields,
	.default_order = "v.created_at",
	.tiebreak = "v.id",
};

static int vpcs_list(struct nexsrv_req *req, void *arg)
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
	nexsrv_sql_scope_vpc(&where, c, "v.id");
	rc = nexsrv_api_list(req, conn, &vpc_list, &where);
	nexsrv_db_release(srv->db, conn);
	return rc;
}

/* --- create -------------------------------------------------------------------------------- */

struct vpc_create {
	struct nexsrv_api_reply reply;
	const struct nexsrv_caller *caller;
	struct nexsrv_vpc_input in;
};

static int vpc_create_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	struct vpc_create *t = arg;
	char v4[NX_PREFIX_STRLEN], v6[NX_PREFIX_STRLEN], id[NEXSRV_INPUT_UUID_LEN];
	struct json_object *obj = NULL;
	struct nexsrv_sql q;
	PGresult *res = NULL;
	int rc;

	nexsrv_api_reply_reset(&t->reply);
	nexsrv_sql_init(&q);
	nexsrv_sql_add(&q, "SELECT 1 FROM organizations o WHERE o.id = ");
	nexsrv_sql_param(&q, t->in.organization_id);
	nexsrv_sql_add(&q, " AND ");
	nexsrv_sql_scope_org(&q, t->caller, "o.id");
	rc = nexsrv_sql_exec(conn, &q, NULL, err);
	if (rc == 0)
		rc = nexsrv_api_reply_not_found(&t->reply, "organization");
	if (rc < 0)
		goto out;

	nexsrv_sql_fini(&q);
	nexsrv_sql_init(&q);
	nexsrv_sql_add(&q, "INSERT INTO vpcs AS v (organization_id, description, ipv4_cidr, "
			   "ipv6_cidr, private_cidr) VALUES (");
	nexsrv_sql_param(&q, t->in.organization_id);
	nexsrv_sql_add(&q, ", ");
	nexsrv_sql_param(&q, t->in.description ? t->in.description : "");
	nexsrv_sql_add(&q, ", ");
	nexsrv_sql_param(&q, nx_prefix_format(&t->in.ipv4_cidr, v4, sizeof(v4)));
	nexsrv_sql_add(&q, ", ");
	nexsrv_sql_param(&q, nx_prefix_format(&t->in.ipv6_cidr, v6, sizeof(v6)));
	nexsrv_sql_add(&q, ", ");
	nexsrv_sql_param(&q, t->in.private_cidr ? "true" : "false");
	nexsrv_sql_add(&q, ") RETURNING " NEXSRV_VPC_JSON ", v.id");
	rc = nexsrv_sql_exec(conn, &q, &res, err);
	if (rc != 1) {
		rc = rc < 0 ? rc : nx_err_set(err, EIO, "INSERT returned no row");
		goto out;
	}
	nx_strlcpy(id, nexsrv_db_text(res, 0, 1), sizeof(id));
	rc = nexsrv_api_row_json(res, 0, &obj, err);
	if (rc < 0)
		goto out;

	/* Its default security group: same id, no rules. */
	nexsrv_sql_fini(&q);
	nexsrv_sql_init(&q);
	nexsrv_sql_add(&q, "INSERT INTO security_groups (id, vpc_id, organization_id, description) "
			   "VALUES (");
	nexsrv_sql_param(&q, id);
	nexsrv_sql_add(&q, ", $1, ");
	nexsrv_sql_param(&q, t->in.organization_id);
	nexsrv_sql_add(&q, ", '" DEFAULT_SECGROUP_DESCRIPTION "')");
	rc = nexsrv_sql_exec(conn, &q, NULL, err);
	if (rc < 0)
		goto out;
	rc = nexsrv_api_reply_set(&t->reply, 201, obj);
	obj = NULL;
out:
	json_object_put(obj);
	PQclear(res);
	nexsrv_sql_fini(&q);
	return rc;
}

static int vpcs_create(struct nexsrv_req *req, void *arg)
{
	struct vpc_create t = { .reply = { 0 } };
	struct nexsrv_input_error e = { "", { "" } };
	struct json_object *body;
	int rc;

	t.caller = nexsrv_api_caller(req);
	if (!t.caller)
		return 0;
	if (nexsrv_api_user_only(req) < 0)
		return 0;
	if (nexsrv_api_body_object(req, &body) < 0)
		return 0;
	rc = nexsrv_vpc_input_parse(body, &t.in, &e);
	if (rc < 0) {
		nexsrv_api_reply_input(&t.reply, 400, rc, &e);
		return nexsrv_api_send(req, &t.reply);
	}
	return nexsrv_api_txn(req, arg, vpc_create_txn, &t, &t.reply);
}

/* --- one VPC ------------------------------------------------------------------------------- */

static int vpcs_get(struct nexsrv_req *req, void *arg)
{
	return nexsrv_api_get_in_vpc(
		req, arg, "SELECT " NEXSRV_VPC_JSON " FROM vpcs v WHERE v.id = ", "v.id", "vpc");
}

/* PATCH and DELETE: the VPC locked, within reach of an owner of its organization. */
struct vpc_change {
	struct nexsrv_api_reply reply;
	const struct nexsrv_caller *caller;
	char id[NEXSRV_INPUT_UUID_LEN];
	const char *description; /* PATCH; NULL: unchanged */
	bool delete;
};

static int vpc_change_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	struct vpc_change *t = arg;
	char org[NEXSRV_INPUT_UUID_LEN];
	struct json_object *obj = NULL;
	struct nexsrv_sql q;
	PGresult *res = NULL;
	bool owner = false;
	int rc;

	nexsrv_api_reply_reset(&t->reply);
	nexsrv_sql_init(&q);
	/* FOR UPDATE also holds off devices joining it meanwhile (their foreign key). */
	nexsrv_sql_add(&q, "SELECT v.organization_id, (SELECT count(*) FROM devices d WHERE "
			   "d.vpc_id = v.id) FROM vpcs v WHERE v.id = ");
	nexsrv_sql_param(&q, t->id);
	nexsrv_sql_add(&q, " AND ");
	nexsrv_sql_scope_vpc(&q, t->caller, "v.id");
	nexsrv_sql_add(&q, " FOR UPDATE OF v");
	rc = nexsrv_sql_exec(conn, &q, &res, err);
	if (rc == 0)
		rc = nexsrv_api_reply_not_found(&t->reply, "vpc");
	if (rc < 0)
		goto out;
	nx_strlcpy(org, nexsrv_db_text(res, 0, 0), sizeof(org));
	rc = nexsrv_api_may_modify(conn, t->caller, org, NULL, &owner, err);
	if (rc < 0)
		goto out;
	if (!owner) {
		rc = nexsrv_api_reply_not_allowed(
			&t->reply, 403, "only an owner of the organization may change its VPCs");
		goto out;
	}
	if (t->delete) {
		int64_t devices = 0;

		if (strcmp(org, t->id) == 0) {
			rc = nexsrv_api_reply_not_allowed(&t->reply, 400,
							  "default vpc cannot be deleted");
			goto out;
		}
		rc = nexsrv_db_get_int64(res, 0, 1, &devices, err);
		if (rc < 0)
			goto out;
		if (devices > 0) {
			rc = nexsrv_api_reply_not_allowed(
				&t->reply, 400,
				"vpc cannot be deleted while devices are still attached");
			goto out;
		}
	}
	PQclear(res);
	res = NULL;

	nexsrv_sql_fini(&q);
	nexsrv_sql_init(&q);
	if (t->delete) {
		nexsrv_sql_add(&q, "DELETE FROM vpcs v WHERE v.id = ");
		nexsrv_sql_param(&q, t->id);
	} else if (t->description) {
		nexsrv_sql_add(&q, "UPDATE vpcs v SET description = ");
		nexsrv_sql_param(&q, t->description);
		nexsrv_sql_add(&q, " WHERE v.id = ");
		nexsrv_sql_param(&q, t->id);
	} else {
		nexsrv_sql_add(&q, "SELECT " NEXSRV_VPC_JSON " FROM vpcs v WHERE v.id = ");
		nexsrv_sql_param(&q, t->id);
	}
	if (t->delete || t->description)
		nexsrv_sql_add(&q, " RETURNING " NEXSRV_VPC_JSON);
	rc = nexsrv_sql_exec(conn, &q, &res, err);
	if (rc == 1)
		rc = nexsrv_api_row_json(res, 0, &obj, err);
	else if (rc >= 0)
		rc = nx_err_set(err, EIO, "VPC %s vanished", t->id);
	if (rc < 0)
		goto out;
	rc = nexsrv_api_reply_set(&t->reply, 200, obj);
	obj = NULL;
out:
	json_object_put(obj);
	PQclear(res);
	nexsrv_sql_fini(&q);
	return rc;
}

static int vpc_change(struct nexsrv_req *req, struct nexsrv *srv, bool delete)
{
	struct vpc_change t = { .reply = { 0 }, .delete = delete };
	struct nexsrv_input_error e = { "", { "" } };
	struct json_object *body;
	int rc;

	t.caller = nexsrv_api_caller(req);
	if (!t.caller || nexsrv_api_path_uuid(req, "id", t.id) < 0)
		return 0;
	if (nexsrv_api_user_only(req) < 0)
		return 0;
	if (!delete) {
		struct json_object *v;

		if (nexsrv_api_body_object(req, &body) < 0)
			return 0;
		if (json_object_object_get_ex(body, "description", &v) && v) {
			if (!json_object_is_type(v, json_type_string)) {
				return nexsrv_reply_validation(req, NEXSRV_ERR_FIELD_INVALID,
							       "description", "must be a string");
			}
			t.description = json_object_get_string(v);
			rc = nexsrv_input_text(t.description, NEXSRV_DESCRIPTION_MAX, "description",
					       &e);
			if (rc < 0 ||
			    strlen(t.description) != (size_t)json_object_get_string_len(v)) {
				return nexsrv_reply_validation(
					req, NEXSRV_ERR_FIELD_INVALID, "description",
					e.err.msg[0] ? e.err.msg : "contains NUL");
			}
		}
	}
	return nexsrv_api_txn(req, srv, vpc_change_txn, &t, &t.reply);
}

static int vpcs_patch(struct nexsrv_req *req, void *arg)
{
	return vpc_change(req, arg, false);
}

static int vpcs_delete(struct nexsrv_req *req, void *arg)
{
	return vpc_change(req, arg, true);
}

/* --- what a VPC holds ---------------------------------------------------------------------- */

enum vpc_child {
	CHILD_DEVICES,
	CHILD_METADATA,
	CHILD_SECGROUPS,
};

static int vpc_children(struct nexsrv_req *req, struct nexsrv *srv, enum vpc_child what)
{
	const struct nexsrv_caller *c = nexsrv_api_caller(req);
	char id[NEXSRV_INPUT_UUID_LEN], rev[24];
	struct nx_err err = { "" };
	struct nexsrv_api_list list;
	struct nexsrv_sql where;
	int64_t gt = 0;
	PGconn *conn;
	int rc, has_gt = 0;

	if (!c || nexsrv_api_path_uuid(req, "id", id) < 0)
		return 0;
	if (what != CHILD_METADATA && (has_gt = nexsrv_api_gt_revision(req, &gt)) < 0)
		return 0;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		return 0;
	rc = nexsrv_api_vpc_reachable(conn, c, id, NULL, &err);
	if (rc <= 0) {
		rc = rc == 0 ? nexsrv_reply_not_found(req, "vpc")
			     : nexsrv_api_db_failed(req, rc, &err);
		goto out;
	}
	if (what == CHILD_METADATA) {
		rc = nexsrv_api_metadata_list(req, conn, "m.vpc_id", id);
		goto out;
	}
	nexsrv_sql_init(&where);
	nexsrv_sql_add(&where, "%s = ", what == CHILD_DEVICES ? "d.vpc_id" : "s.vpc_id");
	nexsrv_sql_param(&where, id);
	if (has_gt) {
		snprintf(rev, sizeof(rev), "%" PRId64, gt);
		nexsrv_sql_add(&where, " AND %s > ",
			       what == CHILD_DEVICES ? "d.revision" : "s.revision");
		nexsrv_sql_param(&where, rev);
	}
	list = what == CHILD_DEVICES ? nexsrv_device_list : nexsrv_secgroup_list;
	if (has_gt) /* what a watcher catching up wants: in revision order */
		list.default_order = what == CHILD_DEVICES ? "d.revision" : "s.revision";
	rc = nexsrv_api_list(req, conn, &list, &where);
out:
	nexsrv_db_release(srv->db, conn);
	return rc;
}

static int vpcs_devices(struct nexsrv_req *req, void *arg)
{
	return vpc_children(req, arg, CHILD_DEVICES);
}

static int vpcs_metadata(struct nexsrv_req *req, void *arg)
{
	return vpc_children(req, arg, CHILD_METADATA);
}

static int vpcs_secgroups(struct nexsrv_req *req, void *arg)
{
	return vpc_children(req, arg, CHILD_SECGROUPS);
}

int nexsrv_api_vpcs_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err)
{
	static const struct nexsrv_route routes[] = {
		NEXSRV_API_ROUTE("GET", "/api/vpcs", vpcs_list),
		NEXSRV_API_ROUTE("POST", "/api/vpcs", vpcs_create),
		NEXSRV_API_ROUTE("GET", "/api/vpcs/{id}", vpcs_get),
		NEXSRV_API_ROUTE("PATCH", "/api/vpcs/{id}", vpcs_patch),
		NEXSRV_API_ROUTE("DELETE", "/api/vpcs/{id}", vpcs_delete),
		NEXSRV_API_ROUTE("GET", "/api/vpcs/{id}/devices", vpcs_devices),
		NEXSRV_API_ROUTE("GET", "/api/vpcs/{id}/metadata", vpcs_metadata),
		NEXSRV_API_ROUTE("GET", "/api/vpcs/{id}/security-groups", vpcs_secgroups),
	};

	return nexsrv_api_routes_add(http, routes, sizeof(routes) / sizeof(routes[0]), srv, err);
}
