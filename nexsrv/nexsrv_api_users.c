/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * /api/users: the people who use the service (models.User).
 *
 *   GET    /api/users                                       the caller, as a list
 *   GET    /api/users/{id}                                  the caller ("me" or their id)
 *   DELETE /api/users/{id}                                  the caller deletes themselves
 *   DELETE /api/users/{id}/organizations/{organization}     leave an organization, or (its
 *                                                           owner) remove someone from it
 *
 * As in the original service a person sees only themselves here, even the members of
 * their organizations (those are listed by /api/organizations/{id}/users): any other id is
 * "not found".  Deleting oneself is refused while one still owns devices; organizations of
 * which one is the only owner go too (refused while they still have devices), the others
 * pass to another owner, and the next authenticated call starts afresh with a new user.
 * These endpoints are for people: a registration key or device token gets 403.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "lib/jsonutil.h"
#include "nexsrv/nexsrv.h"
#include "nexsrv/nexsrv_auth.h"
#include "nexsrv/nexsrv_db.h"
#include "nexsrv/nexsrv_http.h"
#include "nexsrv/nexsrv_list.h"

#define USER_COLUMNS "u.id, u.full_name, u.picture, u.username"

static const struct nexsrv_list_field user_fields[] = {
	{ "id", "u.id" },
	{ "username", "u.username" },
	{ "full_name", "u.full_name" },
	{ "picture", "u.picture" },
	{ NULL, NULL },
};

/* The user id a path names: "me" is the caller; anything else must be a UUID (else 400). */
static const char *path_user(struct nexsrv_req *req, const char *name)
{
	const char *id = nexsrv_req_param(req, name);

	if (id && strcmp(id, "me") == 0)
		return nexsrv_caller(req)->user_id;
	if (!nexsrv_api_uuid_valid(id)) {
		nexsrv_reply_validation(req, NEXSRV_ERR_PATH_PARAM, name, NULL);
		return NULL;
	}
	return id;
}

static int users_list(struct nexsrv_req *req, void *arg)
{
	struct nexsrv *srv = arg;
	const struct nexsrv_caller *c = nexsrv_caller(req);
	struct nexsrv_list list;
	struct nx_err err = { "" };
	char from[512] = "users u WHERE u.id = $1";
	const char *params[1 + NEXSRV_LIST_MAX_FILTERS] = { c->user_id };
	int nparams = 1;
	struct json_object *arr = NULL;
	PGresult *res = NULL;
	long long total = 0;
	PGconn *conn;
	int rc;

	if (nexsrv_api_user_only(req) < 0)
		return 0;
	rc = nexsrv_list_parse(req, user_fields, "u.username ASC", &list, &err);
	if (rc < 0)
		return nexsrv_api_list_fail(req, rc, &err);
	rc = nexsrv_list_where(&list, from, sizeof(from), params, &nparams);
	if (rc < 0)
		goto out;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		goto out;
	rc = nexsrv_api_list_rows(conn, USER_COLUMNS, from, &list, "u.id", params, nparams, &res,
				  &total, &err);
	nexsrv_db_release(srv->db, conn);
	if (rc < 0) {
		rc = rc == -EINVAL ? nexsrv_reply_validation(req, "query parameter invalid",
							     "filter", err.msg)
				   : nexsrv_api_db_fail(req, rc, &err);
		goto out;
	}
	rc = -ENOMEM;
	arr = json_object_new_array();
	if (!arr)
		goto out;
	for (int i = 0; i < PQntuples(res); i++) {
		struct json_object *u = nexsrv_api_user_json(res, i, 0);

		if (!u || json_object_array_add(arr, u) < 0) {
			json_object_put(u);
			goto out;
		}
	}
	nexsrv_api_total_count(req, total);
	rc = nexsrv_reply_json(req, 200, arr);
	arr = NULL;
out:
	json_object_put(arr);
	PQclear(res);
	nexsrv_list_fini(&list);
	return rc;
}

static int users_get(struct nexsrv_req *req, void *arg)
{
	static const char sql[] = "SELECT " USER_COLUMNS " FROM users u"
				  " WHERE u.id = $1 AND u.id = $2";
	struct nexsrv *srv = arg;
	const struct nexsrv_caller *c = nexsrv_caller(req);
	struct nx_err err = { "" };
	const char *id, *params[2];
	PGresult *res = NULL;
	PGconn *conn;
	int rc;

	if (nexsrv_api_user_only(req) < 0)
		return 0;
	id = path_user(req, "id");
	if (!id)
		return 0;
	params[0] = id;
	params[1] = c->user_id;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		return 0;
	rc = nexsrv_db_exec(conn, sql, 2, params, &res, &err);
	nexsrv_db_release(srv->db, conn);
	if (rc < 0)
		return nexsrv_api_db_fail(req, rc, &err);
	if (rc == 0)
		rc = nexsrv_reply_not_found(req, "user");
	else
		rc = nexsrv_api_reply_object(req, 200, nexsrv_api_user_json(res, 0, 0));
	PQclear(res);
	return rc;
}

struct user_delete {
	const char *id;
	const char *caller;
	PGresult *user;	     /* the user as it was */
	const char *refusal; /* a 400's reason */
};

/* The organizations that go with the user: those they own with nobody else owning them. */
#define SOLE_OWNED_ORGS                                                                    \
	"SELECT o.id FROM organizations o WHERE (o.owner_id = $1 OR EXISTS (SELECT 1 FROM" \
	" memberships m WHERE m.organization_id = o.id AND m.user_id = $1"                 \
	" AND 'owner' = ANY (m.roles))) AND NOT EXISTS (SELECT 1 FROM memberships m"       \
	" WHERE m.organization_id = o.id AND m.user_id <> $1 AND 'owner' = ANY (m.roles))"

static int user_delete_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	static const char lock_user[] = "SELECT " USER_COLUMNS " FROM users u"
					" WHERE u.id = $1 AND u.id = $2 FOR UPDATE";
	static const char own_devices[] = "SELECT 1 FROM devices WHERE owner_id = $1 LIMIT 1";
	static const char org_devices[] = "SELECT 1 FROM devices WHERE organization_id IN"
					  " (" SOLE_OWNED_ORGS ") LIMIT 1";
	static const char delete_orgs[] = "DELETE FROM organizations WHERE id IN"
					  " (" SOLE_OWNED_ORGS ")";
	/* Organizations that stay keep an owner: one of the remaining owners. */
	static const char hand_over[] =
		"UPDATE organizations o SET owner_id = (SELECT m.user_id FROM memberships m"
		" WHERE m.organization_id = o.id AND m.user_id <> $1"
		" ORDER BY ('owner' = ANY (m.roles)) DESC, m.created_at, m.user_id LIMIT 1)"
		" WHERE o.owner_id = $1 AND EXISTS (SELECT 1 FROM memberships m"
		" WHERE m.organization_id = o.id AND m.user_id <> $1)";
	static const char delete_user[] = "DELETE FROM users WHERE id = $1";
	struct user_delete *d = arg;
	const char *params[] = { d->id, d->caller };
	int rc;

	PQclear(d->user);
	d->user = NULL;
	d->refusal = NULL;
	rc = nexsrv_db_exec(conn, lock_user, 2, params, &d->user, err);
	if (rc <= 0)
		return rc < 0 ? rc : -ESRCH;
	rc = nexsrv_db_exec(conn, own_devices, 1, params, NULL, err);
	if (rc > 0)
		d->refusal = "user cannot be deleted while devices owned by the user are still "
			     "attached";
	if (rc == 0) {
		rc = nexsrv_db_exec(conn, org_devices, 1, params, NULL, err);
		if (rc > 0)
			d->refusal = "organization cannot be deleted while devices are still "
				     "attached";
	}
	if (d->refusal)
		return -EPERM;
	if (rc >= 0)
		rc = nexsrv_db_exec(conn, delete_orgs, 1, params, NULL, err);
	if (rc >= 0)
		rc = nexsrv_db_exec(conn, hand_over, 1, params, NULL, err);
	if (rc >= 0)
		rc = nexsrv_db_exec(conn, delete_user, 1, params, NULL, err);
	return rc < 0 ? rc : 0;
}

static int users_delete(struct nexsrv_req *req, void *arg)
{
	struct nexsrv *srv = arg;
	struct user_delete d = { .caller = nexsrv_caller(req)->user_id };
	struct nx_err err = { "" };
	PGconn *conn;
	int rc;

	if (nexsrv_api_user_only(req) < 0)
		return 0;
	d.id = path_user(req, "id");
	if (!d.id)
		return 0;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		return 0;
	rc = nexsrv_db_run_txn(conn, NEXSRV_DB_READ_COMMITTED, user_delete_txn, &d, &err);
	nexsrv_db_release(srv->db, conn);
	if (rc == -ESRCH) {
		rc = nexsrv_reply_not_found(req, "user");
	} else if (rc == -EPERM) {
		rc = nexsrv_reply_validation(req, "operation not allowed", NULL, d.refusal);
	} else if (rc < 0) {
		rc = nexsrv_api_db_fail(req, rc, &err);
	} else {
		nx_info("user %s deleted", d.id);
		rc = nexsrv_api_reply_object(req, 200, nexsrv_api_user_json(d.user, 0, 0));
	}
	PQclear(d.user);
	return rc;
}

static int users_org_delete(struct nexsrv_req *req, void *arg)
{
	const char *id, *org;

	if (nexsrv_api_user_only(req) < 0)
		return 0;
	id = path_user(req, "id");
	if (!id)
		return 0;
	org = nexsrv_req_param(req, "organization");
	if (!nexsrv_api_uuid_valid(org))
		return nexsrv_reply_validation(req, NEXSRV_ERR_PATH_PARAM, "organization", NULL);
	return nexsrv_api_org_member_delete(req, arg, org, id, true);
}

static const struct nexsrv_route user_routes[] = {
	{ .method = "GET",
	  .pattern = "/api/users",
	  .handler = users_list,
	  .flags = NEXSRV_ROUTE_AUTH },
	{ .method = "GET",
	  .pattern = "/api/users/{id}",
	  .handler = users_get,
	  .flags = NEXSRV_ROUTE_AUTH },
	{ .method = "DELETE",
	  .pattern = "/api/users/{id}",
	  .handler = users_delete,
	  .flags = NEXSRV_ROUTE_AUTH },
	{ .method = "DELETE",
	  .pattern = "/api/users/{id}/organizations/{organization}",
	  .handler = users_org_delete,
	  .flags = NEXSRV_ROUTE_AUTH },
};

int nexsrv_api_users_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err)
{
	return nexsrv_api_routes_add(http, user_routes,
				     sizeof(user_routes) / sizeof(user_routes[0]), srv, err);
}
