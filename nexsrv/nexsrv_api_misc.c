/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The small endpoints, and what every resource handler shares.
 *
 *   GET  /api/fflags          the feature flags, {"name": bool, ...}
 *   GET  /api/fflags/{name}   one of them, {"name": bool}, or 404
 *   POST /device/login/start  where an agent starts the OIDC device login: the provider's
 *                             device authorization endpoint, its issuer and the client id
 *                             (models.DeviceStartResponse); 503 while no provider is
 *                             configured or it does not answer
 *
 * The flags are those of the original service, fixed here: this service implements
 * organizations, devices and security groups, and neither sites nor the CA, which the
 * original keeps behind flags that are off unless configured.
 *
 * The helpers below give every handler the same answers for the same situations: a
 * database that is away is a 503, a malformed body or field a 400 naming the field, a
 * registration key or device token on a person's endpoint a 403.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "lib/jsonutil.h"
#include "lib/strutil.h"
#include "nexsrv/nexsrv.h"
#include "nexsrv/nexsrv_auth.h"
#include "nexsrv/nexsrv_db.h"
#include "nexsrv/nexsrv_http.h"
#include "nexsrv/nexsrv_list.h"
#include "nexsrv/nexsrv_oidc.h"

static const struct {
	const char *name;
	bool enabled;
} fflags[] = {
	{ "ca", false },
	{ "devices", true },
	{ "multi-organization", true },
	{ "security-groups", true },
	{ "sites", false },
};

/* The device-flow client agents are told about; read once when the routes are added (a
 * change of oidc-client-id takes a restart, as listen and TLS do). */
static char device_client_id[sizeof(((struct nexsrv_config *)0)->oidc_client_id)];

static int fflags_list(struct nexsrv_req *req, void *arg)
{
	struct json_object *obj = json_object_new_object();

	(void)arg;
	if (!obj)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(fflags) / sizeof(fflags[0]); i++)
		if (nx_json_object_add_bool(obj, fflags[i].name, fflags[i].enabled) < 0) {
			json_object_put(obj);
			return -ENOMEM;
		}
	return nexsrv_reply_json(req, 200, obj);
}

static int fflags_get(struct nexsrv_req *req, void *arg)
{
	const char *name = nexsrv_req_param(req, "name");
	struct json_object *obj;

	(void)arg;
	for (size_t i = 0; i < sizeof(fflags) / sizeof(fflags[0]); i++) {
		if (strcmp(fflags[i].name, name) != 0)
			continue;
		obj = json_object_new_object();
		if (!obj || nx_json_object_add_bool(obj, fflags[i].name, fflags[i].enabled) < 0) {
			json_object_put(obj);
			return -ENOMEM;
		}
		return nexsrv_reply_json(req, 200, obj);
	}
	return nexsrv_reply_not_found(req, "flag");
}

/* RFC 3339 with nanoseconds in UTC, as the original's clients parse server_time. */
static void format_now(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	char day[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%09ldZ", day, ts.tv_nsec);
}

static int device_login_start(struct nexsrv_req *req, void *arg)
{
	struct nexsrv *srv = arg;
	struct nexsrv_oidc_endpoints *ep = NULL;
	struct nx_err err = { "" };
	struct json_object *obj = NULL;
	char now[64];
	int rc;

	if (!srv->oidc)
		return nexsrv_reply_error(req, 503,
					  "login is not available: no oidc-issuer is "
					  "configured");
	if (!device_client_id[0])
		return nexsrv_reply_error(req, 503,
					  "device login is not available: no "
					  "oidc-client-id is configured");
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return -ENOMEM;
	rc = nexsrv_oidc_endpoints(srv->oidc, ep, &err);
	if (rc == -ENOMEM)
		goto out;
	if (rc < 0) {
		rc = nexsrv_reply_error(req, 503, "the OIDC provider is unavailable: %s", err.msg);
		goto out;
	}
	if (!ep->device_authorization_endpoint[0]) {
		rc = nexsrv_reply_error(req, 503,
					"the OIDC provider offers no device "
					"authorization endpoint");
		goto out;
	}
	format_now(now, sizeof(now));
	obj = json_object_new_object();
	rc = -ENOMEM;
	if (!obj || nx_json_object_add_string(obj, "client_id", device_client_id) < 0 ||
	    nx_json_object_add_string(obj, "device_authorization_endpoint",
				      ep->device_authorization_endpoint) < 0 ||
	    nx_json_object_add_string(obj, "issuer", ep->issuer) < 0 ||
	    nx_json_object_add_string(obj, "server_time", now) < 0)
		goto out;
	rc = nexsrv_reply_json(req, 200, obj);
	obj = NULL;
out:
	json_object_put(obj);
	free(ep);
	return rc;
}

static const struct nexsrv_route misc_routes[] = {
	{ .method = "GET",
	  .pattern = "/api/fflags",
	  .handler = fflags_list,
	  .flags = NEXSRV_ROUTE_AUTH },
	{ .method = "GET",
	  .pattern = "/api/fflags/{name}",
	  .handler = fflags_get,
	  .flags = NEXSRV_ROUTE_AUTH },
	{ .method = "POST", .pattern = "/device/login/start", .handler = device_login_start },
};

int nexsrv_api_misc_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err)
{
	nx_strlcpy(device_client_id, srv->cfg.oidc_client_id, sizeof(device_client_id));
	return nexsrv_api_routes_add(http, misc_routes,
				     sizeof(misc_routes) / sizeof(misc_routes[0]), srv, err);
}

/* --- shared by the handlers ------------------------------------------------------------- */

int nexsrv_api_routes_add(struct nexsrv_http *http, const struct nexsrv_route *routes, size_t n,
			  struct nexsrv *srv, struct nx_err *err)
{
	for (size_t i = 0; i < n; i++) {
		struct nexsrv_route r = routes[i];
		int rc;

		r.arg = srv;
		rc = nexsrv_http_route_add(http, &r, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

bool nexsrv_api_uuid_valid(const char *s)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

	if (!s || strlen(s) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++) {
		char c = s[i];

		if (shape[i] == '-') {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return true;
}

struct pg_conn *nexsrv_api_db_acquire(struct nexsrv_req *req, struct nexsrv *srv)
{
	struct nx_err err = { "" };
	PGconn *conn;

	if (!srv->db) {
		nexsrv_reply_error(req, 503, "database unavailable: none is configured");
		return NULL;
	}
	conn = nexsrv_db_acquire(srv->db, NEXSRV_DB_ACQUIRE_TIMEOUT_MS, &err);
	if (!conn) {
		nx_warn("%s %s: %s", nexsrv_req_method(req), nexsrv_req_route(req), err.msg);
		nexsrv_reply_error(req, 503, "database unavailable");
	}
	return conn;
}

int nexsrv_api_db_fail(struct nexsrv_req *req, int rc, const struct nx_err *err)
{
	const char *why = err && err->msg[0] ? err->msg : strerror(-rc);

	switch (rc) {
	case -ENOTCONN:
	case -ETIMEDOUT:
	case -ESHUTDOWN:
	case -EAGAIN:
	case -EBUSY:
		nx_warn("%s %s: %s", nexsrv_req_method(req), nexsrv_req_route(req), why);
		return nexsrv_reply_error(req, 503, "database unavailable");
	default:
		nx_err("%s %s: %s", nexsrv_req_method(req), nexsrv_req_route(req), why);
		return nexsrv_reply_error(req, 500, "internal server error");
	}
}

int nexsrv_api_user_only(struct nexsrv_req *req)
{
	const struct nexsrv_caller *c = nexsrv_caller(req);
	struct json_object *obj;

	if (c && c->kind == NEXSRV_CALLER_USER)
		return 0;
	obj = json_object_new_object();
	if (!obj || nx_json_object_add_string(obj, "error", "operation not allowed") < 0 ||
	    nx_json_object_add_string(obj, "reason",
				      c && c->kind == NEXSRV_CALLER_DEVICE
					      ? "a device token cannot use this endpoint"
					      : "a registration key cannot use this endpoint") <
		    0) {
		json_object_put(obj);
		nexsrv_reply_error(req, 500, "internal server error");
		return -ENOMEM;
	}
	nexsrv_reply_json(req, 403, obj);
	return -EPERM;
}

int nexsrv_api_list_fail(struct nexsrv_req *req, int rc, const struct nx_err *err)
{
	static const char *const params[] = { "sort", "filter", "range" };
	const char *msg = err && err->msg[0] ? err->msg : "invalid";

	if (rc == -ENOMEM)
		return nexsrv_reply_error(req, 500, "internal server error");
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		size_t n = strlen(params[i]);

		if (strncmp(msg, params[i], n) == 0 && msg[n] == ':')
			return nexsrv_reply_validation(req, "query parameter invalid", params[i],
						       msg[n + 1] == ' ' ? msg + n + 2
									 : msg + n + 1);
	}
	return nexsrv_reply_validation(req, "query parameter invalid", NULL, msg);
}

int nexsrv_api_list_rows(struct pg_conn *conn, const char *columns, const char *from_where,
			 const struct nexsrv_list *list, const char *tiebreak, const char **params,
			 int nparams, struct pg_result **res, long long *total, struct nx_err *err)
{
	struct nx_sbuf sql;
	PGresult *count = NULL;
	int64_t n = 0;
	int rc;

	*res = NULL;
	nx_sbuf_init(&sql, NULL, 0);
	nx_sbuf_printf(&sql, "SELECT count(*) FROM %s", from_where);
	rc = nx_sbuf_truncated(&sql) ? -ENOMEM : 0;
	if (rc == 0)
		rc = nexsrv_db_exec(conn, nx_sbuf_str(&sql), nparams, params, &count, err);
	if (rc >= 0)
		rc = nexsrv_db_get_int64(count, 0, 0, &n, err);
	PQclear(count);
	if (rc < 0)
		goto out;
	*total = n;
	nx_sbuf_reset(&sql);
	nx_sbuf_printf(&sql, "SELECT %s FROM %s ORDER BY %s%s%s OFFSET %lld LIMIT %lld", columns,
		       from_where, list->order_by, list->order_by[0] && tiebreak ? ", " : "",
		       tiebreak ? tiebreak : "", list->offset, list->limit);
	rc = nx_sbuf_truncated(&sql) ? -ENOMEM : 0;
	if (rc == 0)
		rc = nexsrv_db_exec(conn, nx_sbuf_str(&sql), nparams, params, res, err);
out:
	nx_sbuf_fini(&sql);
	return rc < 0 ? rc : 0;
}

int nexsrv_api_total_count(struct nexsrv_req *req, long long total)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lld", total);
	nexsrv_reply_header(req, "Access-Control-Expose-Headers", "X-Total-Count");
	return nexsrv_reply_header(req, "X-Total-Count", buf);
}

int nexsrv_api_body_object(struct nexsrv_req *req, struct json_object **out)
{
	int rc = nexsrv_req_json(req, out);

	if (rc < 0)
		return rc;
	if (!json_object_is_type(*out, json_type_object)) {
		nexsrv_reply_error(req, 400, "request json is invalid: expected a JSON object");
		return -EINVAL;
	}
	return 0;
}

int nexsrv_api_field_string(struct nexsrv_req *req, struct json_object *obj, const char *key,
			    bool required, size_t max, const char **out)
{
	struct json_object *v = NULL;
	char reason[64];
	size_t len;

	if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null)) {
		if (!required)
			return 0;
		nexsrv_reply_validation(req, NEXSRV_ERR_FIELD_MISSING, key, NULL);
		return -EINVAL;
	}
	if (!json_object_is_type(v, json_type_string)) {
		nexsrv_reply_validation(req, NEXSRV_ERR_FIELD_INVALID, key, "expected a string");
		return -EINVAL;
	}
	len = (size_t)json_object_get_string_len(v);
	if (len != strlen(json_object_get_string(v))) {
		nexsrv_reply_validation(req, NEXSRV_ERR_FIELD_INVALID, key,
					"contains a NUL character");
		return -EINVAL;
	}
	if (required && len == 0) {
		nexsrv_reply_validation(req, NEXSRV_ERR_FIELD_MISSING, key, NULL);
		return -EINVAL;
	}
	if (len > max) {
		snprintf(reason, sizeof(reason), "longer than %zu bytes", max);
		nexsrv_reply_validation(req, NEXSRV_ERR_FIELD_INVALID, key, reason);
		return -EINVAL;
	}
	*out = json_object_get_string(v);
	return 1;
}

int nexsrv_api_reply_no_content(struct nexsrv_req *req)
{
	return nexsrv_reply_raw(req, 204, "application/json", "", 0);
}

int nexsrv_api_reply_object(struct nexsrv_req *req, unsigned status, struct json_object *obj)
{
	return obj ? nexsrv_reply_json(req, status, obj) : -ENOMEM;
}

/* An object of string fields named names[], from n columns of res starting at col (SQL
 * NULL becomes ""). */
static struct json_object *row_json(const PGresult *res, int row, int col, const char *const *names,
				    int n)
{
	struct json_object *obj = json_object_new_object();

	if (!obj)
		return NULL;
	for (int i = 0; i < n; i++) {
		const char *v = nexsrv_db_text(res, row, col + i);

		if (nx_json_object_add_string(obj, names[i], v ? v : "") < 0) {
			json_object_put(obj);
			return NULL;
		}
	}
	return obj;
}

struct json_object *nexsrv_api_user_json(const struct pg_result *res, int row, int col)
{
	static const char *const names[] = { "id", "full_name", "picture", "username" };

	return row_json(res, row, col, names, 4);
}

struct json_object *nexsrv_api_org_json(const struct pg_result *res, int row, int col)
{
	static const char *const names[] = { "id", "name", "description" };

	return row_json(res, row, col, names, 3);
}
