/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The operational endpoints an orchestrator and a monitoring system use, outside /api:
 *
 *   GET /private/live   200 {} while the process serves HTTP at all (liveness probe)
 *   GET /private/ready  200 {} when the readiness check says the service can do its work
 *                       (the database layer installs it), else 503 {"error": "not ready: ..."}
 *                       so that a load balancer sends requests elsewhere
 *   GET /metrics        the Prometheus registry, in the text exposition format
 *
 * None of them needs authentication or touches the database themselves.
 */
#include "config.h"

#include <errno.h>

#include <json-c/json.h>

#include "lib/strutil.h"
#include "nexsrv/nexsrv.h"
#include "nexsrv/nexsrv_http.h"
#include "nexsrv/nexsrv_metrics.h"

static int reply_empty(struct nexsrv_req *req, unsigned status)
{
	struct json_object *obj = json_object_new_object();

	return obj ? nexsrv_reply_json(req, status, obj) : -ENOMEM;
}

static int private_live(struct nexsrv_req *req, void *arg)
{
	(void)arg;
	return reply_empty(req, 200);
}

static int private_ready(struct nexsrv_req *req, void *arg)
{
	char why[200];

	(void)arg;
	if (nexsrv_http_ready(nexsrv_req_http(req), why, sizeof(why)))
		return reply_empty(req, 200);
	return nexsrv_reply_error(req, 503, "not ready: %s", why[0] ? why : "unknown");
}

static int private_metrics(struct nexsrv_req *req, void *arg)
{
	struct nx_sbuf out;
	int rc;

	(void)arg;
	nx_sbuf_init(&out, NULL, 0);
	rc = nexsrv_metrics_render(nexsrv_http_metrics(nexsrv_req_http(req)), &out);
	if (rc == 0)
		rc = nexsrv_reply_raw(req, 200, NEXSRV_METRICS_CONTENT_TYPE, nx_sbuf_str(&out),
				      nx_sbuf_len(&out));
	nx_sbuf_fini(&out);
	return rc;
}

static const struct nexsrv_route private_routes[] = {
	{ .method = "GET", .pattern = "/private/live", .handler = private_live },
	{ .method = "GET", .pattern = "/private/ready", .handler = private_ready },
	{ .method = "GET", .pattern = "/metrics", .handler = private_metrics },
};

int nexsrv_api_private_init(struct nexsrv_http *http, struct nx_err *err)
{
	for (size_t i = 0; i < sizeof(private_routes) / sizeof(private_routes[0]); i++) {
		int rc = nexsrv_http_route_add(http, &private_routes[i], err);

		if (rc < 0)
			return rc;
	}
	return 0;
}
