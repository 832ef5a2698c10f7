/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the network resource handlers share (nexsrv_api_net.h): error replies in the
 * original's models, statements assembled with their parameters and the caller's scope,
 * transactions whose outcome is a reply, and list answers with X-Total-Count.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/jsonutil.h"
#include "nexsrv/nexsrv.h"
#include "nexsrv/nexsrv_api_net.h"
#include "nexsrv/nexsrv_http.h"

/* --- SQL assembly -------------------------------------------------------------------------- */

void nexsrv_sql_init(struct nexsrv_sql *q)
{
	memset(q, 0, sizeof(*q));
	nx_sbuf_init(&q->text, NULL, 0);
}

void nexsrv_sql_fini(struct nexsrv_sql *q)
{
	nx_sbuf_fini(&q->text);
	q->n = 0;
}

void nexsrv_sql_add(struct nexsrv_sql *q, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (nx_sbuf_vprintf(&q->text, fmt, ap) < 0)
		q->failed = true;
	va_end(ap);
}

void nexsrv_sql_param(struct nexsrv_sql *q, const char *value)
{
	if (q->n >= NEXSRV_SQL_MAX_PARAMS) {
		q->failed = true;
		return;
	}
	q->params[q->n++] = value;
	nexsrv_sql_add(q, "$%d", q->n);
}

static void sql_scope(struct nexsrv_sql *q, const struct nexsrv_caller *c, const char *column,
		      bool vpc)
{
	char pred[1024];
	int n = q->n, rc;

	if (q->n + 2 > NEXSRV_SQL_MAX_PARAMS) {
		q->failed = true;
		return;
	}
	pred[0] = '\0';
	rc = vpc ? nexsrv_scope_vpc(c, column, pred, sizeof(pred), q->params, &n)
		 : nexsrv_scope_org(c, column, pred, sizeof(pred), q->params, &n);
	if (rc < 0 || n < q->n || n > NEXSRV_SQL_MAX_PARAMS) {
		q->failed = true;
		return;
	}
	q->n = n;
	nexsrv_sql_add(q, "(%s)", pred);
}

void nexsrv_sql_scope_vpc(struct nexsrv_sql *q, const struct nexsrv_caller *c, const char *column)
{
	sql_scope(q, c, column, true);
}

void nexsrv_sql_scope_org(struct nexsrv_sql *q, const struct nexsrv_caller *c, const char *column)
{
	sql_scope(q, c, column, false);
}

int nexsrv_sql_exec(PGconn *conn, struct nexsrv_sql *q, PGresult **res, struct nx_err *err)
{
	if (res)
		*res = NULL;
	if (q->failed || nx_sbuf_truncated(&q->text))
		return nx_err_set(err, ENOMEM, "statement could not be assembled");
	return nexsrv_db_exec(conn, nx_sbuf_str(&q->text), q->n, q->params, res, err);
}

int nexsrv_sql_stmt(struct nexsrv_sql *q, struct nexsrv_db_stmt *st, struct nx_err *err)
{
	if (q->failed || nx_sbuf_truncated(&q->text))
		return nx_err_set(err, ENOMEM, "statement could not be assembled");
	*st = (struct nexsrv_db_stmt){ .sql = nx_sbuf_str(&q->text),
				       .nparams = q->n,
				       .params = q->params };
	return 0;
}

/* --- replies ------------------------------------------------------------------------------- */

void nexsrv_api_reply_reset(struct nexsrv_api_reply *r)
{
	json_object_put(r->body);
	r->body = NULL;
	r->status = 0;
}

int nexsrv_api_reply_set(struct nexsrv_api_reply *r, unsigned status, struct json_object *body)
{
	nexsrv_api_reply_reset(r);
	r->status = status;
	r->body = body;
	return 0;
}

/* {"error": error} plus up to two more string members (skipped when NULL or ""). */
static struct json_object *error_body(const char *error, const char *k1, const char *v1,
				      const char *k2, const char *v2)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	nx_json_object_add_string(o, "error", error);
	if (k1 && v1 && v1[0])
		nx_json_object_add_string(o, k1, v1);
	if (k2 && v2 && v2[0])
		nx_json_object_add_string(o, k2, v2);
	return o;
}

int nexsrv_api_reply_error(struct nexsrv_api_reply *r, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	nexsrv_api_reply_set(r, status, error_body(msg, NULL, NULL, NULL, NULL));
	return NEXSRV_API_REJECT;
}

int nexsrv_api_reply_validation(struct nexsrv_api_reply *r, unsigned status, const char *error,
				const char *field, const char *reason)
{
	nexsrv_api_reply_set(r, status, error_body(error, "field", field, "reason", reason));
	return NEXSRV_API_REJECT;
}

int nexsrv_api_reply_input(struct nexsrv_api_reply *r, unsigned status, int rc,
			   const struct nexsrv_input_error *e)
{
	return nexsrv_api_reply_validation(
		r, status, rc == -ENOENT ? NEXSRV_ERR_FIELD_MISSING : NEXSRV_ERR_FIELD_INVALID,
		e->field[0] ? e->field : "body", e->err.msg);
}

int nexsrv_api_reply_not_found(struct nexsrv_api_reply *r, const char *resource)
{
	nexsrv_api_reply_set(r, 404, error_body("not found", "resource", resource, NULL, NULL));
	return NEXSRV_API_REJECT;
}

int nexsrv_api_reply_conflict(struct nexsrv_api_reply *r, const char *error, const char *id,
			      const char *field)
{
	nexsrv_api_reply_set(r, 409, error_body(error, "id", id, "field", field));
	return NEXSRV_API_REJECT;
}

int nexsrv_api_reply_not_allowed(struct nexsrv_api_reply *r, unsigned status, const char *reason)
{
	nexsrv_api_reply_set(r, status,
			     error_body("operation not allowed", "reason", reason, NULL, NULL));
	return NEXSRV_API_REJECT;
}

int nexsrv_api_send(struct nexsrv_req *req, struct nexsrv_api_reply *r)
{
	int rc;

	if (!r->status || !r->body) {
		nexsrv_api_reply_reset(r);
		return nexsrv_reply_error(req, 500, "internal error");
	}
	if (r->status == 204) { /* No Content: no body at all */
		nexsrv_api_reply_reset(r);
		return nexsrv_api_reply_no_content(req);
	}
	rc = nexsrv_reply_json(req, r->status, r->body);
	r->body = NULL; /* the reply took it */
	r->status = 0;
	return rc;
}

int nexsrv_api_db_failed(struct nexsrv_req *req, int rc, const struct nx_err *err)
{
	const char *why = err && err->msg[0] ? err->msg : "invalid value";

	if (rc == -EINVAL)
		return nexsrv_reply_error(req, 400, "invalid value: %s", why);
	if (rc == -EEXIST)
		return nexsrv_reply_error(req, 409, "conflict: %s", why);
	return nexsrv_api_db_fail(req, rc, err);
}

int nexsrv_api_txn(struct nexsrv_req *req, struct nexsrv *srv, nexsrv_db_txn_fn fn, void *arg,
		   struct nexsrv_api_reply *r)
{
	struct nx_err err = { "" };
	PGconn *conn = nexsrv_api_db_acquire(req, srv);
	int rc;

	if (!conn) {
		nexsrv_api_reply_reset(r);
		return 0;
	}
	rc = nexsrv_db_run_txn(conn, NEXSRV_DB_READ_COMMITTED, fn, arg, &err);
	if (rc == -ENOTCONN)
		nexsrv_db_check_now(srv->db);
	nexsrv_db_release(srv->db, conn);
	if (rc >= 0 || rc == NEXSRV_API_REJECT)
		return nexsrv_api_send(req, r);
	nexsrv_api_reply_reset(r);
	return nexsrv_api_db_failed(req, rc, &err);
}

/* --- request pieces ------------------------------------------------------------------------ */

const struct nexsrv_caller *nexsrv_api_caller(struct nexsrv_req *req)
{
	const struct nexsrv_caller *c = nexsrv_caller(req);

	if (!c)
		nexsrv_reply_error(req, 401, "unauthorized");
	return c;
}

int nexsrv_api_path_uuid(struct nexsrv_req *req, const char *name, char out[NEXSRV_INPUT_UUID_LEN])
{
	const char *s = nexsrv_req_param(req, name);

	if (!s || !nexsrv_uuid_valid(s)) {
		nexsrv_reply_validation(req, NEXSRV_ERR_PATH_PARAM, name, "not a UUID");
		return -EINVAL;
	}
	for (size_t i = 0; i < NEXSRV_INPUT_UUID_LEN - 1; i++)
		out[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
	out[NEXSRV_INPUT_UUID_LEN - 1] = '\0';
	return 0;
}

int nexsrv_api_gt_revision(struct nexsrv_req *req, int64_t *out)
{
	const char *s = nexsrv_req_query(req, "gt_revision");
	unsigned long long v;
	struct nx_err err = { "" };

	if (!s)
		return 0;
	if (nx_parse_uint(s, 0, INT64_MAX, &v, &err) < 0) {
		nexsrv_reply_validation(req, NEXSRV_ERR_FIELD_INVALID, "gt_revision", err.msg);
		return -EINVAL;
	}
	*out = (int64_t)v;
	return 1;
}

int nexsrv_api_forbid(struct nexsrv_req *req, const char *reason)
{
	struct json_object *o = error_body("operation not allowed", "reason", reason, NULL, NULL);

	return o ? nexsrv_reply_json(req, 403, o) : -ENOMEM;
}

int nexsrv_api_row_json(PGresult *res, int row, struct json_object **out, struct nx_err *err)
{
	int rc = nexsrv_db_get_json(res, row, 0, out, err);

	if (rc < 0)
		return rc;
	if (!*out)
		return nx_err_set(err, EIO, "row %d: null object", row);
	return 1;
}

int nexsrv_api_list(struct nexsrv_req *req, PGconn *conn, const struct nexsrv_api_list *l,
		    struct nexsrv_sql *where)
{
	struct nexsrv_list list;
	struct nx_err err = { "" };
	struct json_object *array = NULL;
	struct nx_sbuf from;
	PGresult *res = NULL;
	char filters[1024] = "";
	long long total = 0;
	int rc, rows;

	memset(&list, 0, sizeof(list));
	nx_sbuf_init(&from, NULL, 0);
	rc = nexsrv_list_parse(req, l->fields, l->default_order, &list, &err);
	if (rc < 0) {
		rc = nexsrv_api_list_fail(req, rc, &err);
		goto out;
	}
	if (where->n + list.n_filters > NEXSRV_SQL_MAX_PARAMS ||
	    nexsrv_list_where(&list, filters, sizeof(filters), where->params, &where->n) < 0) {
		rc = nexsrv_reply_validation(req, "query parameter invalid", "filter",
					     "too many filters");
		goto out;
	}
	nx_sbuf_printf(&from, "%s WHERE %s%s", l->from, nx_sbuf_str(&where->text), filters);
	if (where->failed || nx_sbuf_truncated(&where->text) || nx_sbuf_truncated(&from)) {
		rc = nexsrv_reply_error(req, 500, "internal server error");
		goto out;
	}
	rc = nexsrv_api_list_rows(conn, l->json, nx_sbuf_str(&from), &list, l->tiebreak,
				  where->params, where->n, &res, &total, &err);
	if (rc < 0)
		goto failed;
	rows = PQntuples(res);
	array = json_object_new_array_ext(rows > 0 ? rows : 1);
	if (!array) {
		rc = nexsrv_reply_error(req, 500, "internal server error");
		goto out;
	}
	for (int i = 0; i < rows; i++) {
		struct json_object *o;

		rc = nexsrv_api_row_json(res, i, &o, &err);
		if (rc < 0)
			goto failed;
		json_object_array_add(array, o);
	}
	nexsrv_api_total_count(req, total);
	rc = nexsrv_reply_json(req, 200, array);
	array = NULL;
	goto out;
failed:
	/* A value the database refuses here is a filter's (say, not a UUID for an id). */
	if (rc == -EINVAL)
		rc = nexsrv_reply_validation(req, "query parameter invalid", "filter", err.msg);
	else
		rc = nexsrv_api_db_failed(req, rc, &err);
out:
	json_object_put(array);
	PQclear(res);
	nx_sbuf_fini(&from);
	nexsrv_list_fini(&list);
	nexsrv_sql_fini(where);
	return rc;
}

int nexsrv_api_may_modify(PGconn *conn, const struct nexsrv_caller *c, const char *org_id,
			  const char *owner_id, bool *ok, struct nx_err *err)
{
	*ok = false;
	if (c->kind != NEXSRV_CALLER_USER)
		return 0;
	if (owner_id && strcmp(owner_id, c->user_id) == 0) {
		*ok = true;
		return 0;
	}
	return nexsrv_caller_is_owner(conn, c, org_id, ok, err);
}

int nexsrv_api_vpc_reachable(PGconn *conn, const struct nexsrv_caller *c, const char *vpc_id,
			     char org_id[NEXSRV_INPUT_UUID_LEN], struct nx_err *err)
{
	struct nexsrv_sql q;
	PGresult *res = NULL;
	int rc;

	nexsrv_sql_init(&q);
	nexsrv_sql_add(&q, "SELECT v.organization_id FROM vpcs v WHERE v.id = ");
	nexsrv_sql_param(&q, vpc_id);
	nexsrv_sql_add(&q, " AND ");
	nexsrv_sql_scope_vpc(&q, c, "v.id");
	rc = nexsrv_sql_exec(conn, &q, &res, err);
	if (rc == 1 && org_id && nexsrv_db_text(res, 0, 0))
		nx_strlcpy(org_id, nexsrv_db_text(res, 0, 0), NEXSRV_INPUT_UUID_LEN);
	PQclear(res);
	nexsrv_sql_fini(&q);
	return rc;
}

int nexsrv_api_reply_one(struct nexsrv_req *req, struct nexsrv *srv, PGconn *conn,
			 struct nexsrv_sql *q, const char *resource)
{
	struct json_object *obj = NULL;
	struct nx_err err = { "" };
	PGresult *res = NULL;
	int rc = nexsrv_sql_exec(conn, q, &res, &err);

	if (rc == 1)
		rc = nexsrv_api_row_json(res, 0, &obj, &err);
	if (rc == 0)
		rc = nexsrv_reply_not_found(req, resource);
	else if (rc < 0)
		rc = nexsrv_api_db_failed(req, rc, &err);
	else
		rc = nexsrv_reply_json(req, 200, obj);
	PQclear(res);
	nexsrv_sql_fini(q);
	nexsrv_db_release(srv->db, conn);
	return rc;
}

int nexsrv_api_get_in_vpc(struct nexsrv_req *req, struct nexsrv *srv, const char *select,
			  const char *vpc_column, const char *resource)
{
	const struct nexsrv_caller *c = nexsrv_api_caller(req);
	char id[NEXSRV_INPUT_UUID_LEN];
	struct nexsrv_sql q;
	PGconn *conn;

	if (!c || nexsrv_api_path_uuid(req, "id", id) < 0)
		return 0;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		return 0;
	nexsrv_sql_init(&q);
	nexsrv_sql_add(&q, "%s", select);
	nexsrv_sql_param(&q, id);
	nexsrv_sql_add(&q, " AND ");
	nexsrv_sql_scope_vpc(&q, c, vpc_column);
	return nexsrv_api_reply_one(req, srv, conn, &q, resource);
}
