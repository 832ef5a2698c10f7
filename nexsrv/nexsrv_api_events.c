/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The watch stream routes (nexsrv_watch.h):
 *
 *   POST /api/vpcs/{id}/events   [{"kind", "gt_revision", "at_tail", "options"}, ...]
 *   POST /api/events             the same, the VPC in options["vpc-id"]
 *
 * Both take ?public_key=<the device's WireGuard key>: that device is marked online while the
 * stream is open (a device token: only its own device; a person: one of their devices in
 * that VPC).  People and device tokens may watch the VPCs they reach; registration keys may
 * not (403).  The request is checked here before anything reaches the database: 400 naming
 * the field for a malformed body, a VPC that is not a UUID or a bad public key; the hub
 * answers 404 for a VPC or device out of reach, and then streams.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "lib/strutil.h"
#include "lib/wgkey.h"
#include "nexsrv/nexsrv.h"
#include "nexsrv/nexsrv_api_net.h"
#include "nexsrv/nexsrv_http.h"
#include "nexsrv/nexsrv_watch.h"

static int events(struct nexsrv_req *req, struct nexsrv *srv, bool global)
{
	const struct nexsrv_caller *c = nexsrv_api_caller(req);
	struct nexsrv_input_error e = { "", { "" } };
	const char *public_key = nexsrv_req_query(req, "public_key");
	char vpc[NEXSRV_INPUT_UUID_LEN] = "", key[NX_WG_KEY_B64_LEN];
	struct nexsrv_watch_request wr;
	struct json_object *body;
	struct nx_err why = { "" };
	struct nx_wgkey wg;
	int rc;

	if (!c)
		return 0;
	if (c->kind == NEXSRV_CALLER_REG_KEY)
		return nexsrv_api_forbid(req, "a registration key cannot watch a VPC");
	if (!global && nexsrv_api_path_uuid(req, "id", vpc) < 0)
		return 0;
	if (nexsrv_req_json(req, &body) < 0)
		return 0;
	rc = nexsrv_watch_request_parse(body, global, &wr, &e);
	if (rc < 0)
		return nexsrv_reply_validation(
			req, rc == -ENOENT ? NEXSRV_ERR_FIELD_MISSING : NEXSRV_ERR_FIELD_INVALID,
			e.field, e.err.msg);
	if (global)
		memcpy(vpc, wr.vpc_id, sizeof(vpc));
	else if (wr.vpc_id[0] && strcmp(wr.vpc_id, vpc) != 0)
		return nexsrv_reply_validation(req, NEXSRV_ERR_FIELD_INVALID, "options.vpc-id",
					       "differs from the VPC of the path");
	if (public_key) {
		/* An unescaped '+' of base64 arrives as a space, which base64 never has. */
		nx_strlcpy(key, public_key, sizeof(key));
		for (char *p = key; *p; p++)
			if (*p == ' ')
				*p = '+';
		if (strlen(public_key) >= sizeof(key) || nx_wgkey_from_base64(key, &wg, &why) < 0)
			return nexsrv_reply_validation(req, "query parameter invalid", "public_key",
						       why.msg[0] ? why.msg
								  : "not a WireGuard key: expected "
								    "44 characters of base64");
		nx_wgkey_to_base64(&wg, key);
		nx_wgkey_wipe(&wg);
		public_key = key;
	}
	if (!srv->watch)
		return nexsrv_reply_error(req, 503,
					  "watch streams are not available: no database is "
					  "configured");
	return nexsrv_watch_serve(srv->watch, req, c, vpc, &wr, public_key);
}

static int vpc_events(struct nexsrv_req *req, void *arg)
{
	return events(req, arg, false);
}

static int all_events(struct nexsrv_req *req, void *arg)
{
	return events(req, arg, true);
}

int nexsrv_api_events_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err)
{
	static const struct nexsrv_route routes[] = {
		NEXSRV_API_ROUTE("POST", "/api/vpcs/{id}/events", vpc_events),
		NEXSRV_API_ROUTE("POST", "/api/events", all_events),
	};

	return nexsrv_api_routes_add(http, routes, sizeof(routes) / sizeof(routes[0]), srv, err);
}
