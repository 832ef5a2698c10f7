/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * /api/invitations: how a person joins someone else's organization (models.Invitation).
 *
 *   GET    /api/invitations              those sent to the caller, and those of the
 *                                        organizations the caller owns
 *   POST   /api/invitations              an owner invites a user, by id or by email address
 *   GET    /api/invitations/{id}         one of them
 *   DELETE /api/invitations/{id}         withdrawn by an owner, or declined by the invitee
 *   POST   /api/invitations/{id}/accept  the invitee joins (with the invitation's roles);
 *                                        the invitation is used up
 *
 * As in the original service an invitation lasts a week, carries the roles owner and/or
 * member (member by default), and is refused (400) for someone already in the organization
 * and (409, naming it) while an earlier one to the same person is still valid.  An address
 * that belongs to a user (a verified one) invites that user; any other waits for the first
 * sign-in of whoever verifies it.  Only owners invite; the invitee and the organization's
 * owners see and delete an invitation, only the invitee accepts it.  Unlike the original,
 * an expired invitation cannot be accepted (it stays listed, with its expires_at, until
 * someone deletes it), and accepting when already a member adds the roles instead of
 * failing.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "lib/jsonutil.h"
#include "lib/strutil.h"
#include "nexsrv/nexsrv.h"
#include "nexsrv/nexsrv_auth.h"
#include "nexsrv/nexsrv_db.h"
#include "nexsrv/nexsrv_http.h"
#include "nexsrv/nexsrv_list.h"

#define INVITATION_TTL "7 days"
#define EMAIL_MAX      320

/* id, organization_id, user_id, email, roles (JSON), expires_at (RFC 3339, UTC) */
#define INVITATION_COLUMNS                                                     \
	"i.id, i.organization_id, i.user_id, i.email, array_to_json(i.roles)," \
	" to_char(i.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
/* ... then the sender (models.User) and the organization (models.Organization) */
#define INVITATION_DETAIL_COLUMNS                                                      \
	INVITATION_COLUMNS ", f.id, f.full_name, f.picture, f.username, o.id, o.name," \
			   " o.description"
#define INVITATION_FROM                                       \
	"invitations i JOIN users f ON f.id = i.from_user_id" \
	" JOIN organizations o ON o.id = i.organization_id"
/* The caller's reach ($1): invitations to them, and those of the organizations they own. */
#define INVITATION_SCOPE                                                                       \
	"(i.user_id = $1 OR i.organization_id IN (SELECT m.organization_id FROM memberships m" \
	" WHERE m.user_id = $1 AND 'owner' = ANY (m.roles)))"

static const struct nexsrv_list_field invitation_fields[] = {
	{ "id", "i.id" },
	{ "organization_id", "i.organization_id" },
	{ "user_id", "i.user_id" },
	{ "email", "i.email" },
	{ "expires_at", "i.expires_at" },
	{ NULL, NULL },
};

static const char *const allowed_roles[] = { "member", "owner" };

/* models.Invitation from INVITATION_COLUMNS (and with detail, the sender and the
 * organization after them); user_id and email are left out when unset, as the original's
 * omitempty does. */
static struct json_object *invitation_json(const PGresult *res, int row, bool detail)
{
	struct json_object *obj = json_object_new_object(), *roles = NULL, *from, *org;

	if (!obj)
		return NULL;
	if (nx_json_object_add_string(obj, "id", nexsrv_db_text(res, row, 0)) < 0 ||
	    nx_json_object_add_string(obj, "organization_id", nexsrv_db_text(res, row, 1)) < 0 ||
	    (nexsrv_db_text(res, row, 2) &&
	     nx_json_object_add_string(obj, "user_id", nexsrv_db_text(res, row, 2)) < 0) ||
	    (nexsrv_db_text(res, row, 3) &&
	     nx_json_object_add_string(obj, "email", nexsrv_db_text(res, row, 3)) < 0) ||
	    nexsrv_db_get_json(res, row, 4, &roles, NULL) < 0 || !roles ||
	    json_object_object_add(obj, "roles", roles) < 0)
		goto fail;
	roles = NULL;
	if (nx_json_object_add_string(obj, "expires_at", nexsrv_db_text(res, row, 5)) < 0)
		goto fail;
	if (!detail)
		return obj;
	from = nexsrv_api_user_json(res, row, 6);
	if (!from || json_object_object_add(obj, "from", from) < 0) {
		json_object_put(from);
		goto fail;
	}
	org = nexsrv_api_org_json(res, row, 10);
	if (!org || json_object_object_add(obj, "organization", org) < 0) {
		json_object_put(org);
		goto fail;
	}
	return obj;
fail:
	json_object_put(roles);
	json_object_put(obj);
	return NULL;
}

static int invitations_list(struct nexsrv_req *req, void *arg)
{
	struct nexsrv *srv = arg;
	struct nexsrv_list list;
	struct nx_err err = { "" };
	char from[1024] = INVITATION_FROM " WHERE " INVITATION_SCOPE;
	const char *params[1 + NEXSRV_LIST_MAX_FILTERS] = { nexsrv_caller(req)->user_id };
	int nparams = 1;
	struct json_object *arr = NULL;
	PGresult *res = NULL;
	long long total = 0;
	PGconn *conn;
	int rc;

	if (nexsrv_api_user_only(req) < 0)
		return 0;
	rc = nexsrv_list_parse(req, invitation_fields, "i.created_at ASC", &list, &err);
	if (rc < 0)
		return nexsrv_api_list_fail(req, rc, &err);
	rc = nexsrv_list_where(&list, from, sizeof(from), params, &nparams);
	if (rc < 0)
		goto out;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		goto out;
	rc = nexsrv_api_list_rows(conn, INVITATION_DETAIL_COLUMNS, from, &list, "i.id", params,
				  nparams, &res, &total, &err);
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
		struct json_object *o = invitation_json(res, i, true);

		if (!o || json_object_array_add(arr, o) < 0) {
			json_object_put(o);
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

/* --- creating ---------------------------------------------------------------------------- */

struct invitation_create {
	const char *org, *user_id, *caller;
	char email[EMAIL_MAX + 1]; /* normalised: trimmed, lower case; "" for none */
	char roles[32];		   /* a text[] literal: {member}, {owner}, {member,owner} */
	PGresult *row;
	char conflict_id[NEXSRV_UUID_LEN];
	/* a refusal: 404 resource, or 400 error/field */
	const char *not_found, *error, *field;
};

static int invitation_create_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	/* Owners only; the lock orders invitations to one organization, so that two at once
	 * for the same person cannot both pass the duplicate check. */
	static const char lock_org[] =
		"SELECT 1 FROM organizations o WHERE o.id = $1 AND EXISTS (SELECT 1 FROM"
		" memberships m WHERE m.organization_id = o.id AND m.user_id = $2"
		" AND 'owner' = ANY (m.roles)) FOR UPDATE";
	static const char by_email[] =
		"SELECT id FROM users WHERE lower(email) = $1 AND email_verified"
		" ORDER BY created_at LIMIT 1";
	static const char invitee[] =
		"SELECT coalesce(u.email, ''), EXISTS (SELECT 1 FROM memberships m"
		" WHERE m.organization_id = $2 AND m.user_id = u.id) FROM users u"
		" WHERE u.id = $1";
	static const char pending[] =
		"SELECT id FROM invitations WHERE organization_id = $1 AND expires_at > now()"
		" AND (user_id = $2 OR ($2 IS NULL AND lower(email) = $3)) LIMIT 1";
	static const char insert[] = "INSERT INTO invitations AS i (organization_id, user_id, "
				     "email, from_user_id, roles,"
				     " expires_at) VALUES ($1, $2, NULLIF($3, ''), $4, $5, now() + "
				     "interval '" INVITATION_TTL "') RETURNING " INVITATION_COLUMNS;
	struct invitation_create *c = arg;
	const char *lparams[] = { c->org, c->caller };
	char user_id[NEXSRV_UUID_LEN] = "";
	PGresult *res = NULL;
	bool member = false;
	int rc;

	PQclear(c->row);
	c->row = NULL;
	c->conflict_id[0] = '\0';
	rc = nexsrv_db_exec(conn, lock_org, 2, lparams, NULL, err);
	if (rc <= 0) {
		c->not_found = "organization";
		return rc < 0 ? rc : -ESRCH;
	}
	if (c->user_id) {
		nx_strlcpy(user_id, c->user_id, sizeof(user_id));
	} else {
		const char *eparams[] = { c->email };

		rc = nexsrv_db_exec(conn, by_email, 1, eparams, &res, err);
		if (rc > 0)
			nx_strlcpy(user_id, nexsrv_db_text(res, 0, 0), sizeof(user_id));
		PQclear(res);
		res = NULL;
		if (rc < 0)
			return rc;
	}
	if (user_id[0]) {
		const char *uparams[] = { user_id, c->org };

		rc = nexsrv_db_exec(conn, invitee, 2, uparams, &res, err);
		if (rc == 0) {
			c->not_found = "user";
			rc = -ESRCH;
		}
		if (rc > 0 && nexsrv_db_get_bool(res, 0, 1, &member, err) < 0)
			rc = -EIO;
		/* The invitee's verified address goes with the invitation, as in the
		 * original (it is what the invitation e-mail would go to). */
		if (rc > 0 && !c->email[0])
			nx_strlcpy(c->email, nexsrv_db_text(res, 0, 0), sizeof(c->email));
		PQclear(res);
		res = NULL;
		if (rc < 0)
			return rc;
		if (member) {
			c->error = "user is already in requested org";
			c->field = "organization";
			return -EPERM;
		}
	}
	{
		const char *pparams[] = { c->org, user_id[0] ? user_id : NULL, c->email };

		rc = nexsrv_db_exec(conn, pending, 3, pparams, &res, err);
		if (rc > 0)
			nx_strlcpy(c->conflict_id, nexsrv_db_text(res, 0, 0),
				   sizeof(c->conflict_id));
		PQclear(res);
		if (rc < 0)
			return rc;
		if (rc > 0)
			return -EEXIST;
	}
	{
		const char *iparams[] = { c->org, user_id[0] ? user_id : NULL, c->email, c->caller,
					  c->roles };

		rc = nexsrv_db_exec(conn, insert, 5, iparams, &c->row, err);
	}
	return rc < 0 ? rc : 0;
}

/* roles: absent, null or [] give {member}; otherwise a set of "owner" and "member". */
static int parse_roles(struct nexsrv_req *req, struct json_object *body, char *out, size_t size)
{
	struct json_object *arr = NULL;
	bool want[2] = { false, false };
	size_t n;

	if (!json_object_object_get_ex(body, "roles", &arr) ||
	    json_object_is_type(arr, json_type_null) ||
	    (json_object_is_type(arr, json_type_array) && json_object_array_length(arr) == 0)) {
		nx_strlcpy(out, "{member}", size);
		return 0;
	}
	if (!json_object_is_type(arr, json_type_array))
		goto bad;
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		struct json_object *r = json_object_array_get_idx(arr, i);
		size_t k;

		if (!json_object_is_type(r, json_type_string))
			goto bad;
		for (k = 0; k < 2; k++)
			if (strcmp(json_object_get_string(r), allowed_roles[k]) == 0)
				break;
		if (k == 2)
			goto bad;
		want[k] = true;
	}
	snprintf(out, size, "{%s%s%s}", want[0] ? "member" : "", want[0] && want[1] ? "," : "",
		 want[1] ? "owner" : "");
	return 0;
bad:
	nexsrv_reply_validation(req, "allowed values are: member, owner", "roles", NULL);
	return -EINVAL;
}

static int invitations_create(struct nexsrv_req *req, void *arg)
{
	struct nexsrv *srv = arg;
	struct invitation_create c = { .caller = nexsrv_caller(req)->user_id };
	const char *email = NULL;
	struct nx_err err = { "" };
	struct json_object *body, *conflict;
	PGconn *conn;
	char *e;
	int rc;

	if (nexsrv_api_user_only(req) < 0 || nexsrv_api_body_object(req, &body) < 0 ||
	    nexsrv_api_field_string(req, body, "organization_id", true, 64, &c.org) < 0 ||
	    nexsrv_api_field_string(req, body, "user_id", false, 64, &c.user_id) < 0 ||
	    nexsrv_api_field_string(req, body, "email", false, EMAIL_MAX, &email) < 0)
		return 0;
	if (!nexsrv_api_uuid_valid(c.org))
		return nexsrv_reply_validation(req, NEXSRV_ERR_FIELD_INVALID, "organization_id",
					       "expected a UUID");
	if (c.user_id && !nexsrv_api_uuid_valid(c.user_id))
		return nexsrv_reply_validation(req, NEXSRV_ERR_FIELD_INVALID, "user_id",
					       "expected a UUID");
	if (email) {
		nx_strlcpy(c.email, email, sizeof(c.email));
		e = nx_str_trim(c.email);
		for (; *e; e++)
			*e = (char)tolower((unsigned char)*e);
		e = strchr(c.email, '@');
		if (!e || e == c.email || !e[1])
			return nexsrv_reply_validation(req, NEXSRV_ERR_FIELD_INVALID, "email",
						       "expected an email address");
	}
	if (!c.user_id && !email)
		return nexsrv_reply_validation(req, NEXSRV_ERR_FIELD_MISSING, "email or user_id",
					       NULL);
	if (c.user_id && email)
		return nexsrv_reply_validation(req, NEXSRV_ERR_FIELD_INVALID, "email",
					       "give either email or user_id, not both");
	if (parse_roles(req, body, c.roles, sizeof(c.roles)) < 0)
		return 0;

	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		return 0;
	rc = nexsrv_db_run_txn(conn, NEXSRV_DB_READ_COMMITTED, invitation_create_txn, &c, &err);
	nexsrv_db_release(srv->db, conn);
	if (rc == -ESRCH) {
		rc = nexsrv_reply_not_found(req, c.not_found);
	} else if (rc == -EPERM) {
		rc = nexsrv_reply_validation(req, c.error, c.field, NULL);
	} else if (rc == -EEXIST) {
		conflict = json_object_new_object();
		rc = -ENOMEM;
		if (conflict && nx_json_object_add_string(conflict, "id", c.conflict_id) == 0 &&
		    nx_json_object_add_string(conflict, "error", "resource already exists") == 0)
			rc = nexsrv_reply_json(req, 409, conflict);
		else
			json_object_put(conflict);
	} else if (rc < 0) {
		rc = nexsrv_api_db_fail(req, rc, &err);
	} else {
		nx_info("invitation %s to organization %s sent by user %s",
			nexsrv_db_text(c.row, 0, 0), c.org, c.caller);
		rc = nexsrv_api_reply_object(req, 201, invitation_json(c.row, 0, false));
	}
	PQclear(c.row);
	return rc;
}

/* --- one invitation -------------------------------------------------------------------- */

static const char *path_id(struct nexsrv_req *req)
{
	const char *id = nexsrv_req_param(req, "id");

	if (nexsrv_api_uuid_valid(id))
		return id;
	nexsrv_reply_validation(req, NEXSRV_ERR_PATH_PARAM, "id", NULL);
	return NULL;
}

static int invitations_get(struct nexsrv_req *req, void *arg)
{
	static const char sql[] = "SELECT " INVITATION_DETAIL_COLUMNS " FROM " INVITATION_FROM
				  " WHERE i.id = $2 AND " INVITATION_SCOPE;
	struct nexsrv *srv = arg;
	const char *params[2] = { nexsrv_caller(req)->user_id };
	struct nx_err err = { "" };
	PGresult *res = NULL;
	PGconn *conn;
	int rc;

	if (nexsrv_api_user_only(req) < 0 || !(params[1] = path_id(req)))
		return 0;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		return 0;
	rc = nexsrv_db_exec(conn, sql, 2, params, &res, &err);
	nexsrv_db_release(srv->db, conn);
	if (rc < 0)
		rc = nexsrv_api_db_fail(req, rc, &err);
	else if (rc == 0)
		rc = nexsrv_reply_not_found(req, "invitation");
	else
		rc = nexsrv_api_reply_object(req, 200, invitation_json(res, 0, true));
	PQclear(res);
	return rc;
}

static int invitations_delete(struct nexsrv_req *req, void *arg)
{
	static const char sql[] = "DELETE FROM invitations i WHERE i.id = $2 AND " INVITATION_SCOPE;
	struct nexsrv *srv = arg;
	const char *params[2] = { nexsrv_caller(req)->user_id };
	struct nx_err err = { "" };
	PGconn *conn;
	int rc;

	if (nexsrv_api_user_only(req) < 0 || !(params[1] = path_id(req)))
		return 0;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		return 0;
	rc = nexsrv_db_exec(conn, sql, 2, params, NULL, &err);
	nexsrv_db_release(srv->db, conn);
	if (rc < 0)
		return nexsrv_api_db_fail(req, rc, &err);
	if (rc == 0)
		return nexsrv_reply_not_found(req, "invitation");
	return nexsrv_api_reply_no_content(req);
}

struct invitation_accept {
	const char *id, *caller;
	bool expired;
	char org[NEXSRV_UUID_LEN];
};

static int invitation_accept_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	static const char lock[] = "SELECT organization_id, array_to_json(roles),"
				   " expires_at <= now() FROM invitations"
				   " WHERE id = $1 AND user_id = $2 FOR UPDATE";
	/* Already a member (say, by another invitation): the roles add up. */
	static const char join[] =
		"INSERT INTO memberships (organization_id, user_id, roles)"
		" SELECT organization_id, user_id, roles FROM invitations WHERE id = $1"
		" ON CONFLICT (organization_id, user_id) DO UPDATE SET roles ="
		" (SELECT array_agg(DISTINCT r ORDER BY r) FROM"
		" unnest(memberships.roles || EXCLUDED.roles) r)";
	static const char used[] = "DELETE FROM invitations WHERE id = $1";
	struct invitation_accept *a = arg;
	const char *params[] = { a->id, a->caller };
	PGresult *res = NULL;
	int rc;

	a->expired = false;
	rc = nexsrv_db_exec(conn, lock, 2, params, &res, err);
	if (rc > 0) {
		nx_strlcpy(a->org, nexsrv_db_text(res, 0, 0), sizeof(a->org));
		if (nexsrv_db_get_bool(res, 0, 2, &a->expired, err) < 0)
			rc = -EIO;
	}
	PQclear(res);
	if (rc <= 0)
		return rc < 0 ? rc : -ESRCH;
	if (a->expired)
		return -EPERM;
	rc = nexsrv_db_exec(conn, join, 1, params, NULL, err);
	if (rc >= 0)
		rc = nexsrv_db_exec(conn, used, 1, params, NULL, err);
	return rc < 0 ? rc : 0;
}

static int invitations_accept(struct nexsrv_req *req, void *arg)
{
	struct nexsrv *srv = arg;
	struct invitation_accept a = { .caller = nexsrv_caller(req)->user_id };
	struct nx_err err = { "" };
	PGconn *conn;
	int rc;

	if (nexsrv_api_user_only(req) < 0 || !(a.id = path_id(req)))
		return 0;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		return 0;
	rc = nexsrv_db_run_txn(conn, NEXSRV_DB_READ_COMMITTED, invitation_accept_txn, &a, &err);
	nexsrv_db_release(srv->db, conn);
	if (rc == -ESRCH)
		return nexsrv_reply_not_found(req, "invitation");
	if (rc == -EPERM)
		return nexsrv_reply_validation(req, "operation not allowed", NULL,
					       "invitation has expired");
	if (rc < 0)
		return nexsrv_api_db_fail(req, rc, &err);
	nx_info("user %s joined organization %s by invitation %s", a.caller, a.org, a.id);
	return nexsrv_api_reply_no_content(req);
}

static const struct nexsrv_route invitation_routes[] = {
	{ .method = "GET",
	  .pattern = "/api/invitations",
	  .handler = invitations_list,
	  .flags = NEXSRV_ROUTE_AUTH },
	{ .method = "POST",
	  .pattern = "/api/invitations",
	  .handler = invitations_create,
	  .flags = NEXSRV_ROUTE_AUTH },
	{ .method = "GET",
	  .pattern = "/api/invitations/{id}",
	  .handler = invitations_get,
	  .flags = NEXSRV_ROUTE_AUTH },
	{ .method = "DELETE",
	  .pattern = "/api/invitations/{id}",
	  .handler = invitations_delete,
	  .flags = NEXSRV_ROUTE_AUTH },
	{ .method = "POST",
	  .pattern = "/api/invitations/{id}/accept",
	  .handler = invitations_accept,
	  .flags = NEXSRV_ROUTE_AUTH },
};

int nexsrv_api_invitations_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err)
{
	return nexsrv_api_routes_add(http, invitation_routes,
				     sizeof(invitation_routes) / sizeof(invitation_routes[0]), srv,
				     err);
}
