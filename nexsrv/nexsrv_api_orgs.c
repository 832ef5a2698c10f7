/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * /api/organizations: the tenants (models.Organization) and their members
 * (models.UserOrganization).
 *
 *   GET    /api/organizations                   those the caller belongs to
 *   POST   /api/organizations                   create one; the caller becomes its owner
 *   GET    /api/organizations/{id}              one of them
 *   DELETE /api/organizations/{id}              owners only; not a default organization,
 *                                               nor one that still has devices
 *   GET    /api/organizations/{id}/users        its members, with their roles
 *   GET    /api/organizations/{id}/users/{uid}  one member
 *   DELETE /api/organizations/{id}/users/{uid}  owners only; not themselves, and not the
 *                                               user whose default organization it is
 *
 * Rights follow the original service: members read, owners change.  An organization the
 * caller does not belong to is "not found", and so is one they only read when they try to
 * change it.  A registration key or device token reads the organization of its VPC (and
 * its members) and changes nothing.  Names are unique: a second organization of the same
 * name is a 409 that names the existing one when the caller can see it.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "lib/jsonutil.h"
#include "nexsrv/nexsrv.h"
#include "nexsrv/nexsrv_auth.h"
#include "nexsrv/nexsrv_db.h"
#include "nexsrv/nexsrv_http.h"
#include "nexsrv/nexsrv_list.h"

#define ORG_COLUMNS	    "o.id, o.name, o.description"
/* models.UserOrganization: organization_id, user_id, roles (JSON), then models.User. */
#define MEMBER_COLUMNS	    "m.organization_id, m.user_id, array_to_json(m.roles), " USER_COLUMNS
#define USER_COLUMNS	    "u.id, u.full_name, u.picture, u.username"
#define ORG_NAME_MAX	    255
#define ORG_DESCRIPTION_MAX 4096
#define SCOPE_MAX	    512

static const struct nexsrv_list_field org_fields[] = {
	{ "id", "o.id" },
	{ "name", "o.name" },
	{ "description", "o.description" },
	{ NULL, NULL },
};

static const struct nexsrv_list_field member_fields[] = {
	{ "organization_id", "m.organization_id" },
	{ "user_id", "m.user_id" },
	{ "username", "u.username" },
	{ "full_name", "u.full_name" },
	{ NULL, NULL },
};

/* A refusal decided inside a transaction, replied after it. */
struct refusal {
	unsigned status; /* 400 or 404 */
	const char *error;
	const char *field;
	const char *reason;
	const char *resource; /* 404 */
};

static int reply_refusal(struct nexsrv_req *req, const struct refusal *r)
{
	if (r->status == 404)
		return nexsrv_reply_not_found(req, r->resource);
	return nexsrv_reply_validation(req, r->error, r->field, r->reason);
}

static int refuse_not_found(struct refusal *r, const char *resource)
{
	*r = (struct refusal){ .status = 404, .resource = resource };
	return -ESRCH;
}

static int refuse_bad(struct refusal *r, const char *error, const char *field, const char *reason)
{
	*r = (struct refusal){ .status = 400, .error = error, .field = field, .reason = reason };
	return -EPERM;
}

static int reply_txn(struct nexsrv_req *req, int rc, const struct refusal *r,
		     const struct nx_err *err)
{
	if (rc == -ESRCH || rc == -EPERM)
		return reply_refusal(req, r);
	return nexsrv_api_db_fail(req, rc, err);
}

/* models.UserOrganization from MEMBER_COLUMNS at col. */
static struct json_object *member_json(const PGresult *res, int row, int col)
{
	struct json_object *obj = json_object_new_object(), *roles = NULL, *user;

	if (!obj)
		return NULL;
	if (nx_json_object_add_string(obj, "organization_id", nexsrv_db_text(res, row, col)) < 0 ||
	    nx_json_object_add_string(obj, "user_id", nexsrv_db_text(res, row, col + 1)) < 0 ||
	    nexsrv_db_get_json(res, row, col + 2, &roles, NULL) < 0 || !roles ||
	    json_object_object_add(obj, "roles", roles) < 0)
		goto fail;
	roles = NULL;
	user = nexsrv_api_user_json(res, row, col + 3);
	if (!user || json_object_object_add(obj, "user", user) < 0) {
		json_object_put(user);
		goto fail;
	}
	return obj;
fail:
	json_object_put(roles);
	json_object_put(obj);
	return NULL;
}

/* Replies 200 with the rows of res as an array made by fn, and X-Total-Count. */
static int reply_rows(struct nexsrv_req *req, PGresult *res, long long total,
		      struct json_object *(*fn)(const PGresult *, int, int))
{
	struct json_object *arr = json_object_new_array();

	if (!arr)
		return -ENOMEM;
	for (int i = 0; i < PQntuples(res); i++) {
		struct json_object *o = fn(res, i, 0);

		if (!o || json_object_array_add(arr, o) < 0) {
			json_object_put(o);
			json_object_put(arr);
			return -ENOMEM;
		}
	}
	nexsrv_api_total_count(req, total);
	return nexsrv_reply_json(req, 200, arr);
}

static struct json_object *org_row_json(const PGresult *res, int row, int col)
{
	return nexsrv_api_org_json(res, row, col);
}

/* A list query's failure: a filter value the column's type refuses is the client's. */
static int list_query_fail(struct nexsrv_req *req, int rc, const struct nx_err *err)
{
	if (rc == -EINVAL)
		return nexsrv_reply_validation(req, "query parameter invalid", "filter", err->msg);
	return nexsrv_api_db_fail(req, rc, err);
}

static int orgs_list(struct nexsrv_req *req, void *arg)
{
	struct nexsrv *srv = arg;
	struct nexsrv_list list;
	struct nx_err err = { "" };
	char scope[SCOPE_MAX], from[SCOPE_MAX + 512];
	const char *params[2 + NEXSRV_LIST_MAX_FILTERS];
	int nparams = 0;
	PGresult *res = NULL;
	long long total = 0;
	PGconn *conn;
	int rc;

	rc = nexsrv_list_parse(req, org_fields, "o.name ASC", &list, &err);
	if (rc < 0)
		return nexsrv_api_list_fail(req, rc, &err);
	rc = nexsrv_scope_org(nexsrv_caller(req), "o.id", scope, sizeof(scope), params, &nparams);
	if (rc == 0) {
		snprintf(from, sizeof(from), "organizations o WHERE %s", scope);
		rc = nexsrv_list_where(&list, from, sizeof(from), params, &nparams);
	}
	if (rc < 0)
		goto out;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		goto out;
	rc = nexsrv_api_list_rows(conn, ORG_COLUMNS, from, &list, "o.id", params, nparams, &res,
				  &total, &err);
	nexsrv_db_release(srv->db, conn);
	rc = rc < 0 ? list_query_fail(req, rc, &err) : reply_rows(req, res, total, org_row_json);
out:
	PQclear(res);
	nexsrv_list_fini(&list);
	return rc;
}

struct org_create {
	const char *name, *description, *caller;
	PGresult *org;
	char conflict_id[NEXSRV_UUID_LEN]; /* "" when not the caller's to see */
};

static int org_create_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	static const char insert_org[] =
		"INSERT INTO organizations AS o (name, description, owner_id) VALUES ($1, $2, $3)"
		" ON CONFLICT (name) DO NOTHING RETURNING " ORG_COLUMNS;
	static const char existing[] =
		"SELECT o.id, EXISTS (SELECT 1 FROM memberships m WHERE m.organization_id = o.id"
		" AND m.user_id = $2) FROM organizations o WHERE o.name = $1";
	static const char insert_owner[] = "INSERT INTO memberships (organization_id, user_id,"
					   " roles) VALUES ($1, $2, '{owner}')";
	struct org_create *c = arg;
	const char *params[] = { c->name, c->description, c->caller };
	const char *owner[2];
	PGresult *res = NULL;
	bool visible = false;
	int rc;

	PQclear(c->org);
	c->org = NULL;
	c->conflict_id[0] = '\0';
	rc = nexsrv_db_exec(conn, insert_org, 3, params, &c->org, err);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		const char *eparams[] = { c->name, c->caller };

		rc = nexsrv_db_exec(conn, existing, 2, eparams, &res, err);
		if (rc == 0) /* deleted meanwhile: try again */
			rc = nx_err_set(err, EAGAIN, "organization %s vanished", c->name);
		if (rc > 0 && nexsrv_db_get_bool(res, 0, 1, &visible, err) == 0 && visible)
			nx_strlcpy(c->conflict_id, nexsrv_db_text(res, 0, 0),
				   sizeof(c->conflict_id));
		PQclear(res);
		return rc < 0 ? rc : -EEXIST;
	}
	owner[0] = nexsrv_db_text(c->org, 0, 0);
	owner[1] = c->caller;
	rc = nexsrv_db_exec(conn, insert_owner, 2, owner, NULL, err);
	return rc < 0 ? rc : 0;
}

static int orgs_create(struct nexsrv_req *req, void *arg)
{
	struct nexsrv *srv = arg;
	struct org_create c = { .description = "", .caller = nexsrv_caller(req)->user_id };
	struct nx_err err = { "" };
	struct json_object *body, *conflict;
	PGconn *conn;
	int rc;

	if (nexsrv_api_user_only(req) < 0 || nexsrv_api_body_object(req, &body) < 0 ||
	    nexsrv_api_field_string(req, body, "name", true, ORG_NAME_MAX, &c.name) < 0 ||
	    nexsrv_api_field_string(req, body, "description", false, ORG_DESCRIPTION_MAX,
				    &c.description) < 0)
		return 0;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		return 0;
	rc = nexsrv_db_run_txn(conn, NEXSRV_DB_READ_COMMITTED, org_create_txn, &c, &err);
	nexsrv_db_release(srv->db, conn);
	if (rc == -EEXIST) {
		/* models.ConflictsError */
		conflict = json_object_new_object();
		rc = -ENOMEM;
		if (conflict &&
		    (!c.conflict_id[0] ||
		     nx_json_object_add_string(conflict, "id", c.conflict_id) == 0) &&
		    nx_json_object_add_string(conflict, "error", "resource already exists") == 0)
			rc = nexsrv_reply_json(req, 409, conflict);
		else
			json_object_put(conflict);
	} else if (rc < 0) {
		rc = nexsrv_api_db_fail(req, rc, &err);
	} else {
		nx_info("organization %s (%s) created by user %s", nexsrv_db_text(c.org, 0, 0),
			c.name, c.caller);
		rc = nexsrv_api_reply_object(req, 201, nexsrv_api_org_json(c.org, 0, 0));
	}
	PQclear(c.org);
	return rc;
}

/* The organization {name} of the path if the caller reads it: 1, or 0 after replying (400
 * for a malformed id, 404 outside the caller's reach, 503). */
static int org_readable(struct nexsrv_req *req, PGconn *conn, const char *id, PGresult **res)
{
	char sql[SCOPE_MAX + 128], scope[SCOPE_MAX];
	const char *params[3] = { id };
	struct nx_err err = { "" };
	int nparams = 1, rc;

	rc = nexsrv_scope_org(nexsrv_caller(req), "o.id", scope, sizeof(scope), params, &nparams);
	if (rc < 0)
		return rc;
	snprintf(sql, sizeof(sql),
		 "SELECT " ORG_COLUMNS " FROM organizations o WHERE o.id = $1"
		 " AND %s",
		 scope);
	rc = nexsrv_db_exec(conn, sql, nparams, params, res, &err);
	if (rc < 0) {
		nexsrv_api_db_fail(req, rc, &err);
		return 0;
	}
	if (rc == 0) {
		PQclear(*res);
		*res = NULL;
		nexsrv_reply_not_found(req, "organization");
		return 0;
	}
	return 1;
}

/* The {name} path parameter if it is a UUID, else NULL after a 400. */
static const char *path_uuid(struct nexsrv_req *req, const char *name)
{
	const char *id = nexsrv_req_param(req, name);

	if (nexsrv_api_uuid_valid(id))
		return id;
	nexsrv_reply_validation(req, NEXSRV_ERR_PATH_PARAM, name, NULL);
	return NULL;
}

static int orgs_get(struct nexsrv_req *req, void *arg)
{
	struct nexsrv *srv = arg;
	const char *id = path_uuid(req, "id");
	PGresult *res = NULL;
	PGconn *conn;
	int rc;

	if (!id)
		return 0;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		return 0;
	rc = org_readable(req, conn, id, &res);
	nexsrv_db_release(srv->db, conn);
	if (rc > 0)
		rc = nexsrv_api_reply_object(req, 200, nexsrv_api_org_json(res, 0, 0));
	PQclear(res);
	return rc;
}

struct org_delete {
	const char *id, *caller;
	PGresult *org;
	struct refusal refusal;
};

static int org_delete_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	static const char lock_org[] =
		"SELECT " ORG_COLUMNS " FROM organizations o WHERE o.id = $1 AND EXISTS (SELECT 1"
		" FROM memberships m WHERE m.organization_id = o.id AND m.user_id = $2"
		" AND 'owner' = ANY (m.roles)) FOR UPDATE";
	static const char is_default[] = "SELECT 1 FROM users WHERE id = $1";
	static const char has_devices[] =
		"SELECT 1 FROM devices WHERE organization_id = $1 LIMIT 1";
	static const char delete_org[] = "DELETE FROM organizations WHERE id = $1";
	struct org_delete *d = arg;
	const char *params[] = { d->id, d->caller };
	int rc;

	PQclear(d->org);
	d->org = NULL;
	rc = nexsrv_db_exec(conn, lock_org, 2, params, &d->org, err);
	if (rc <= 0)
		return rc < 0 ? rc : refuse_not_found(&d->refusal, "organization");
	rc = nexsrv_db_exec(conn, is_default, 1, params, NULL, err);
	if (rc > 0)
		return refuse_bad(&d->refusal, "operation not allowed", NULL,
				  "default organization cannot be deleted");
	if (rc == 0)
		rc = nexsrv_db_exec(conn, has_devices, 1, params, NULL, err);
	if (rc > 0)
		return refuse_bad(
			&d->refusal, "operation not allowed", NULL,
			"organization cannot be deleted while devices are still attached");
	if (rc == 0)
		rc = nexsrv_db_exec(conn, delete_org, 1, params, NULL, err);
	return rc < 0 ? rc : 0;
}

static int orgs_delete(struct nexsrv_req *req, void *arg)
{
	struct nexsrv *srv = arg;
	struct org_delete d = { .caller = nexsrv_caller(req)->user_id };
	struct nx_err err = { "" };
	PGconn *conn;
	int rc;

	if (nexsrv_api_user_only(req) < 0)
		return 0;
	d.id = path_uuid(req, "id");
	if (!d.id)
		return 0;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		return 0;
	rc = nexsrv_db_run_txn(conn, NEXSRV_DB_READ_COMMITTED, org_delete_txn, &d, &err);
	nexsrv_db_release(srv->db, conn);
	if (rc < 0) {
		rc = reply_txn(req, rc, &d.refusal, &err);
	} else {
		nx_info("organization %s deleted by user %s", d.id, d.caller);
		rc = nexsrv_api_reply_object(req, 200, nexsrv_api_org_json(d.org, 0, 0));
	}
	PQclear(d.org);
	return rc;
}

static int org_users_list(struct nexsrv_req *req, void *arg)
{
	struct nexsrv *srv = arg;
	const char *id = path_uuid(req, "id");
	struct nexsrv_list list;
	struct nx_err err = { "" };
	char from[1024] = "memberships m JOIN users u ON u.id = m.user_id"
			  " WHERE m.organization_id = $1";
	const char *params[1 + NEXSRV_LIST_MAX_FILTERS] = { id };
	int nparams = 1;
	PGresult *org = NULL, *res = NULL;
	long long total = 0;
	PGconn *conn;
	int rc;

	if (!id)
		return 0;
	rc = nexsrv_list_parse(req, member_fields, "u.full_name ASC", &list, &err);
	if (rc < 0)
		return nexsrv_api_list_fail(req, rc, &err);
	rc = nexsrv_list_where(&list, from, sizeof(from), params, &nparams);
	if (rc < 0)
		goto out;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		goto out;
	rc = org_readable(req, conn, id, &org);
	if (rc > 0)
		rc = nexsrv_api_list_rows(conn, MEMBER_COLUMNS, from, &list, "u.id", params,
					  nparams, &res, &total, &err);
	nexsrv_db_release(srv->db, conn);
	if (rc < 0)
		rc = list_query_fail(req, rc, &err);
	else if (org)
		rc = reply_rows(req, res, total, member_json);
out:
	PQclear(org);
	PQclear(res);
	nexsrv_list_fini(&list);
	return rc;
}

static int org_user_get(struct nexsrv_req *req, void *arg)
{
	static const char sql[] = "SELECT " MEMBER_COLUMNS " FROM memberships m JOIN users u"
				  " ON u.id = m.user_id WHERE m.organization_id = $1"
				  " AND m.user_id = $2";
	struct nexsrv *srv = arg;
	const char *id = path_uuid(req, "id");
	const char *uid = id ? path_uuid(req, "uid") : NULL;
	const char *params[] = { id, uid };
	struct nx_err err = { "" };
	PGresult *org = NULL, *res = NULL;
	PGconn *conn;
	int rc;

	if (!uid)
		return 0;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		return 0;
	rc = org_readable(req, conn, id, &org);
	if (rc > 0)
		rc = nexsrv_db_exec(conn, sql, 2, params, &res, &err);
	nexsrv_db_release(srv->db, conn);
	if (rc < 0)
		rc = nexsrv_api_db_fail(req, rc, &err);
	else if (org && rc == 0)
		rc = nexsrv_reply_not_found(req, "user_organization");
	else if (org)
		rc = nexsrv_api_reply_object(req, 200, member_json(res, 0, 0));
	PQclear(org);
	PQclear(res);
	return rc;
}

struct member_delete {
	const char *org, *user, *caller;
	bool users_path;
	PGresult *member;
	struct refusal refusal;
};

static int member_delete_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	/* The caller's own membership, locked: two owners removing each other at once are
	 * ordered, and the last owner check below holds. */
	static const char lock_caller[] =
		"SELECT 'owner' = ANY (m.roles) FROM organizations o JOIN memberships m"
		" ON m.organization_id = o.id WHERE o.id = $1 AND m.user_id = $2 FOR UPDATE";
	static const char other_owners[] =
		"SELECT 1 FROM memberships WHERE organization_id = $1 AND user_id <> $2"
		" AND 'owner' = ANY (roles) LIMIT 1";
	static const char target[] = "SELECT " MEMBER_COLUMNS " FROM memberships m JOIN users u"
				     " ON u.id = m.user_id WHERE m.organization_id = $1"
				     " AND m.user_id = $2 FOR UPDATE OF m";
	static const char *const cleanup[] = {
		"DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2",
		"DELETE FROM reg_keys WHERE organization_id = $1 AND owner_id = $2",
		"DELETE FROM devices WHERE organization_id = $1 AND owner_id = $2",
		/* The organization's owner of record passes to a remaining owner (or member). */
		"UPDATE organizations o SET owner_id = (SELECT m.user_id FROM memberships m"
		" WHERE m.organization_id = o.id ORDER BY ('owner' = ANY (m.roles)) DESC,"
		" m.created_at, m.user_id LIMIT 1) WHERE o.id = $1 AND o.owner_id = $2"
		" AND EXISTS (SELECT 1 FROM memberships m WHERE m.organization_id = o.id)",
	};
	struct member_delete *d = arg;
	const char *cparams[] = { d->org, d->caller };
	const char *tparams[] = { d->org, d->user };
	bool self = strcasecmp(d->user, d->caller) == 0;
	bool owner = false, is_default = strcasecmp(d->org, d->user) == 0;
	PGresult *res = NULL;
	int rc;

	PQclear(d->member);
	d->member = NULL;
	rc = nexsrv_db_exec(conn, lock_caller, 2, cparams, &res, err);
	if (rc > 0 && nexsrv_db_get_bool(res, 0, 0, &owner, err) < 0)
		rc = -EIO;
	PQclear(res);
	if (rc <= 0)
		return rc < 0 ? rc : refuse_not_found(&d->refusal, "organization");
	/* Only owners change an organization; a member may only leave it (users path). */
	if (!owner && (!self || !d->users_path))
		return refuse_not_found(&d->refusal, "organization");
	if (!d->users_path && (self || is_default))
		return refuse_bad(&d->refusal, NEXSRV_ERR_PATH_PARAM, "uid",
				  "cannot delete owner of the organization");
	if (d->users_path && is_default)
		return refuse_bad(
			&d->refusal, "operation not allowed", NULL,
			self ? "a user cannot leave their default organization"
			     : "a user cannot be removed from their default organization");
	if (self && owner) {
		rc = nexsrv_db_exec(conn, other_owners, 2, cparams, NULL, err);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return refuse_bad(&d->refusal, "operation not allowed", NULL,
					  "the last owner cannot leave the organization");
	}
	rc = nexsrv_db_exec(conn, target, 2, tparams, &d->member, err);
	if (rc <= 0)
		return rc < 0 ? rc : refuse_not_found(&d->refusal, "user");
	for (size_t i = 0; i < sizeof(cleanup) / sizeof(cleanup[0]) && rc >= 0; i++)
		rc = nexsrv_db_exec(conn, cleanup[i], 2, tparams, NULL, err);
	return rc < 0 ? rc : 0;
}

int nexsrv_api_org_member_delete(struct nexsrv_req *req, struct nexsrv *srv, const char *org_id,
				 const char *user_id, bool users_path)
{
	struct member_delete d = {
		.org = org_id,
		.user = user_id,
		.caller = nexsrv_caller(req)->user_id,
		.users_path = users_path,
	};
	struct nx_err err = { "" };
	PGconn *conn = nexsrv_api_db_acquire(req, srv);
	int rc;

	if (!conn)
		return 0;
	rc = nexsrv_db_run_txn(conn, NEXSRV_DB_READ_COMMITTED, member_delete_txn, &d, &err);
	nexsrv_db_release(srv->db, conn);
	if (rc < 0) {
		rc = reply_txn(req, rc, &d.refusal, &err);
	} else {
		nx_info("user %s removed from organization %s by user %s", user_id, org_id,
			d.caller);
		rc = nexsrv_api_reply_object(req, 200,
					     users_path ? nexsrv_api_user_json(d.member, 0, 3)
							: member_json(d.member, 0, 0));
	}
	PQclear(d.member);
	return rc;
}

static int org_user_delete(struct nexsrv_req *req, void *arg)
{
	const char *id, *uid;

	if (nexsrv_api_user_only(req) < 0)
		return 0;
	id = path_uuid(req, "id");
	uid = id ? path_uuid(req, "uid") : NULL;
	if (!uid)
		return 0;
	return nexsrv_api_org_member_delete(req, arg, id, uid, false);
}

static const struct nexsrv_route org_routes[] = {
	{ .method = "GET",
	  .pattern = "/api/organizations",
	  .handler = orgs_list,
	  .flags = NEXSRV_ROUTE_AUTH },
	{ .method = "POST",
	  .pattern = "/api/organizations",
	  .handler = orgs_create,
	  .flags = NEXSRV_ROUTE_AUTH },
	{ .method = "GET",
	  .pattern = "/api/organizations/{id}",
	  .handler = orgs_get,
	  .flags = NEXSRV_ROUTE_AUTH },
	{ .method = "DELETE",
	  .pattern = "/api/organizations/{id}",
	  .handler = orgs_delete,
	  .flags = NEXSRV_ROUTE_AUTH },
	{ .method = "GET",
	  .pattern = "/api/organizations/{id}/users",
	  .handler = org_users_list,
	  .flags = NEXSRV_ROUTE_AUTH },
	{ .method = "GET",
	  .pattern = "/api/organizations/{id}/users/{uid}",
	  .handler = org_user_get,
	  .flags = NEXSRV_ROUTE_AUTH },
	{ .method = "DELETE",
	  .pattern = "/api/organizations/{id}/users/{uid}",
	  .handler = org_user_delete,
	  .flags = NEXSRV_ROUTE_AUTH },
};

int nexsrv_api_orgs_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err)
{
	return nexsrv_api_routes_add(http, org_routes, sizeof(org_routes) / sizeof(org_routes[0]),
				     srv, err);
}
