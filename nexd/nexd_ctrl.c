/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control session with the service: enrollment with a registration key, then one watch
 * stream for the VPC's devices, resumed by revision after any break (jittered exponential
 * backoff) and re-listed from scratch when the service says the resume point is too old.
 * The device's endpoints and advertised prefixes are reported with PATCH when they change.
 * Everything runs on the loop through lib/httpc; nothing here blocks.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/jsonutil.h"
#include "lib/strutil.h"
#include "nexd/nexd.h"

#define BACKOFF_MIN_MS	       500
#define BACKOFF_MAX_MS	       30000
#define REQUEST_TIMEOUT_MS     15000
/* The service sends a heartbeat every 5 s: a stream silent for 12 s is dead (e.g. its NAT
 * mapping was lost), and is resumed on a new connection. */
#define STREAM_IDLE_TIMEOUT_MS 12000
#define REPORT_RETRY_MS	       1000

enum ctrl_step {
	STEP_IDLE,
	STEP_LOGIN,   /* the OIDC device flow (nexd_login.c) */
	STEP_USER,    /* GET /api/users/me: the user's default VPC */
	STEP_REG_KEY, /* GET /api/reg-keys/me: which VPC the key enrolls into */
	STEP_CREATE,  /* POST /api/devices */
	STEP_VPC,     /* GET /api/vpcs/{id} */
	STEP_WATCH,   /* POST /api/vpcs/{id}/events, open */
};

struct nexd_ctrl {
	struct nexd *nexd;
	enum ctrl_step step;
	struct nx_httpc_req *req;
	struct nx_httpc_req *report_req;
	struct nx_timer retry;
	struct nx_defer report;
	struct nx_timer report_retry;
	unsigned failures;
	char service[1024]; /* base URL, no trailing slash */
	char reg_key[1024];
	char enroll_vpc[NEXD_UUID_LEN];
	char *enroll_bearer; /* the registration key or the user's access token */
	int64_t revision;    /* the newest revision received */
	bool listing;	     /* a listing from revision 0 is under way */
	bool connected;	     /* the current stream delivered its tail */
	char *reported;	     /* the last report the service accepted */
	struct nx_jdoc doc;  /* the tokens of the last line or answer read, reused */
};

static const char *const state_names[] = {
	[NEXD_NOT_CONFIGURED] = "not-configured",
	[NEXD_ENROLLING] = "enrolling",
	[NEXD_CONNECTING] = "connecting",
	[NEXD_CONNECTED] = "connected",
	[NEXD_ERROR] = "error",
};

const char *nexd_state_name(enum nexd_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

void nexd_set_state(struct nexd *nexd, enum nexd_state s, const char *fmt, ...)
{
	char msg[sizeof(nexd->state_msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s != nexd->state || strcmp(msg, nexd->state_msg) != 0) {
		if (s == NEXD_ERROR)
			nx_warn("controller: %s", msg);
		else
			nx_notice("controller: %s%s%s", nexd_state_name(s), msg[0] ? ": " : "",
				  msg);
	}
	nexd->state = s;
	memcpy(nexd->state_msg, msg, sizeof(msg));
}

static void schedule_retry(struct nexd_ctrl *c)
{
	uint64_t base = BACKOFF_MIN_MS;

	for (unsigned i = 0; i < c->failures && base < BACKOFF_MAX_MS; i++)
		base *= 2;
	if (base > BACKOFF_MAX_MS)
		base = BACKOFF_MAX_MS;
	c->failures++;
	/* Half fixed, half random: a VPC's agents do not all come back in the same instant. */
	nx_timer_arm_jitter(&c->retry, base / 2, base / 2);
	nx_debug(&dbg_nexd_controller, "next attempt in about %llu ms", (unsigned long long)base);
}

static void forget_bearer(struct nexd_ctrl *c)
{
	if (c->enroll_bearer) {
		nx_memzero_explicit(c->enroll_bearer, strlen(c->enroll_bearer));
		free(c->enroll_bearer);
		c->enroll_bearer = NULL;
	}
}

static void ctrl_stop_requests(struct nexd_ctrl *c)
{
	nexd_login_cancel(c->nexd);
	forget_bearer(c);
	if (c->req)
		nx_httpc_cancel(c->req);
	c->req = NULL;
	c->step = STEP_IDLE;
	c->connected = false;
}

/* The service's error message in an API error body, else the HTTP status. */
static void api_error(long status, const char *body, size_t len, const struct nx_err *err,
		      char *out, size_t size)
{
	struct json_object *o;
	const char *msg = NULL;

	if (!status) {
		snprintf(out, size, "%s", err ? err->msg : "no answer");
		return;
	}
	o = len ? nx_json_parse(body, len, 8, NULL) : NULL;
	if (o && nx_json_get_string(o, "error", &msg, NULL) == 0) {
		const char *field = NULL, *reason = NULL;
		char clean[200], cfield[64], creason[200];

		nx_json_get_string_opt(o, "field", &field, NULL);
		nx_json_get_string_opt(o, "reason", &reason, NULL);
		snprintf(out, size, "HTTP %ld: %s%s%s%s%s", status,
			 nx_str_printable(clean, sizeof(clean), msg), field ? " (" : "",
			 field ? nx_str_printable(cfield, sizeof(cfield), field) : "",
			 reason ? ": " : "",
			 reason ? nx_str_printable(creason, sizeof(creason), reason) : "");
		if (field)
			nx_strlcat(out, ")", size);
	} else {
		snprintf(out, size, "HTTP %ld", status);
	}
	json_object_put(o);
}

static int url(char *buf, size_t size, const struct nexd_ctrl *c, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int url(char *buf, size_t size, const struct nexd_ctrl *c, const char *fmt, ...)
{
	size_t n = (size_t)snprintf(buf, size, "%s", c->service);
	va_list ap;
	int m;

	va_start(ap, fmt);
	m = n < size ? vsnprintf(buf + n, size - n, fmt, ap) : -1;
	va_end(ap);
	return m < 0 || n + (size_t)m >= size ? -ENAMETOOLONG : 0;
}

static void percent_encode(const char *s, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s && n + 4 < size; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.') {
			out[n++] = (char)ch;
		} else {
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		}
	}
	out[n] = '\0';
}

static struct nx_httpc_req *request(struct nexd_ctrl *c, const char *method, const char *u,
				    const char *bearer, const char *body, nx_httpc_done_fn done,
				    nx_httpc_line_fn on_line)
{
	struct nx_httpc_req_opts o = {
		.method = method,
		.url = u,
		.bearer = bearer,
		.body = body,
		.body_len = body ? strlen(body) : 0,
		.timeout_ms = on_line ? 0 : REQUEST_TIMEOUT_MS,
		.idle_timeout_ms = on_line ? STREAM_IDLE_TIMEOUT_MS : 0,
		.on_line = on_line,
	};
	struct nx_err err = { 0 };
	struct nx_httpc_req *r = nx_httpc_start(c->nexd->http, &o, done, c, &err);

	if (!r)
		nx_warn("controller: %s %s: %s", method, u, err.msg);
	return r;
}

/* --- what this device tells the service about itself ------------------------------------- */

/* endpoints, advertise_cidrs and relay, as POST /api/devices and PATCH take them. */
static struct json_object *self_description(const struct nexd *nexd)
{
	struct json_object *o = json_object_new_object(), *eps = json_object_new_array(),
			   *adv = json_object_new_array();
	char buf[NX_ENDPOINT_STRLEN];

	if (!o || !eps || !adv)
		goto oom;
	for (size_t i = 0; i < nexd->n_local_endpoints; i++) {
		const struct nexd_endpoint *e = &nexd->local_endpoints[i];
		struct json_object *ep = json_object_new_object();

		if (!ep || json_object_array_add(eps, ep) < 0) {
			json_object_put(ep);
			goto oom;
		}
		if (nx_json_object_add_string(ep, "source", e->source) < 0 ||
		    nx_json_object_add_string(ep, "address",
					      nx_endpoint_format(&e->addr, nexd->id.listen_port,
								 buf, sizeof(buf))) < 0)
			goto oom;
	}
	/* The reflexive endpoint the NAT gives WireGuard's port, once discovery has one. */
	if (nexd->nat_state.known && nexd->nat_state.reflexive.family) {
		struct json_object *ep = json_object_new_object();

		if (!ep || json_object_array_add(eps, ep) < 0) {
			json_object_put(ep);
			goto oom;
		}
		if (nx_json_object_add_string(ep, "source", nexd->nat_state.server) < 0 ||
		    nx_json_object_add_string(ep, "address",
					      nx_endpoint_format(&nexd->nat_state.reflexive,
								 nexd->nat_state.reflexive_port,
								 buf, sizeof(buf))) < 0)
			goto oom;
	}
	for (size_t i = 0; i < nexd->cfg.n_advertise; i++) {
		struct json_object *s = json_object_new_string(
			nx_prefix_format(&nexd->cfg.advertise[i], buf, sizeof(buf)));

		if (!s || json_object_array_add(adv, s) < 0) {
			json_object_put(s);
			goto oom;
		}
	}
	if (json_object_object_add(o, "endpoints", eps) < 0) {
		eps = NULL;
		goto oom;
	}
	eps = NULL;
	if (json_object_object_add(o, "advertise_cidrs", adv) < 0) {
		adv = NULL;
		goto oom;
	}
	adv = NULL;
	if (nx_json_object_add_bool(o, "relay", nexd->cfg.relay) < 0 ||
	    nx_json_object_add_bool(o, "exit_node", nexd->cfg.exit_node) < 0 ||
	    nx_json_object_add_int64(o, "priority", nexd->cfg.priority) < 0 ||
	    (nexd->nat_state.known &&
	     nx_json_object_add_bool(o, "symmetric_nat", nexd->nat_state.symmetric) < 0))
		goto oom;
	return o;
oom:
	json_object_put(eps);
	json_object_put(adv);
	json_object_put(o);
	return NULL;
}

static void report_done(struct nx_httpc_req *r, long status, const char *body, size_t len,
			const struct nx_err *err, void *arg)
{
	struct nexd_ctrl *c = arg;
	char why[256];

	c->report_req = NULL;
	if (status >= 200 && status < 300) {
		nx_debug(&dbg_nexd_controller, "endpoints and prefixes reported");
		/* What changed while the request was out is reported now. */
		nx_defer_schedule(&c->report);
		return;
	}
	api_error(status, body, len, err, why, sizeof(why));
	nx_warn("controller: reporting this device's endpoints failed: %s", why);
	free(c->reported);
	c->reported = NULL;
	/* A moved device's request may die with its old address: try again shortly. */
	nx_timer_arm_jitter(&c->report_retry, REPORT_RETRY_MS, REPORT_RETRY_MS);
}

static void report_retry_fired(struct nx_timer *t, void *arg)
{
	struct nexd_ctrl *c = arg;

	nx_defer_schedule(&c->report);
}

static void report_now(struct nx_defer *d, void *arg)
{
	struct nexd_ctrl *c = arg;
	struct nexd *nexd = c->nexd;
	struct json_object *o;
	char u[2048];
	char *body;

	if (!nexd->id.device_id[0] || c->report_req)
		return;
	o = self_description(nexd);
	body = o ? nx_json_to_string(o, NX_JSON_PLAIN) : NULL;
	json_object_put(o);
	if (!body || (c->reported && strcmp(body, c->reported) == 0) ||
	    url(u, sizeof(u), c, "/api/devices/%s", nexd->id.device_id) < 0) {
		free(body);
		return;
	}
	c->report_req = request(c, "PATCH", u, nexd->id.token, body, report_done, NULL);
	free(c->reported);
	c->reported = c->report_req ? body : NULL;
	if (!c->report_req)
		free(body);
}

void nexd_ctrl_report_soon(struct nexd *nexd)
{
	if (nexd->ctrl)
		nx_defer_schedule(&nexd->ctrl->report);
}

/* --- the watch stream ---------------------------------------------------------------------- */

static void watch_start(struct nexd_ctrl *c);

static void on_device(struct nexd_ctrl *c, const struct nexd_event *ev)
{
	struct nexd *nexd = c->nexd;
	struct nexd_device_info d = { 0 };
	struct nx_err err = { 0 };
	struct nexd_peer *p;
	bool deleted = ev->type == NEXD_EV_DELETE;

	if (nexd_device_parse(&c->doc, ev->value, deleted, &d, &err) < 0) {
		nx_warn("controller: device ignored: %s", err.msg);
		return;
	}
	if (d.revision > c->revision)
		c->revision = d.revision;
	if (strcmp(d.id, nexd->id.device_id) == 0) {
		if (deleted) {
			nexd_set_state(nexd, NEXD_ERROR,
				       "this device was deleted at the service; restart nexd to "
				       "enroll again");
			nexd_identity_forget(nexd->daemon->state_dir, NULL);
		}
		nexd_device_info_clear(&d);
		return;
	}
	/* A listing is written by one full pass at its tail; a change on its own. */
	if (c->listing)
		nexd_dplane_changed(nexd);
	else
		nexd_delta_before(nexd, nexd_peers_find(nexd->peers, d.id));
	if (deleted) {
		nx_debug(&dbg_nexd_peers, "peer %s deleted", d.id);
		nexd_peers_remove(nexd->peers, d.id);
		nexd_device_info_clear(&d);
		if (!c->listing)
			nexd_delta_after(nexd, NULL);
		return;
	}
	nx_err_clear(&err);
	p = nexd_peers_upsert(nexd->peers, &d);
	if (!p) {
		nexd_device_info_clear(&d);
		nx_warn("controller: out of memory for a peer");
		nexd_dplane_changed(nexd);
		return;
	}
	p->valid = nexd_device_check(&p->dev, &nexd->vpc, &nexd->id.public_key, &err) == 0;
	free(p->reason);
	p->reason = p->valid ? NULL : strdup(err.msg); /* NULL (out of memory): shown as "" */
	if (!p->valid)
		nx_warn("controller: peer %s ignored: %s", p->dev.id, err.msg);
	else
		nx_debug(&dbg_nexd_peers, "peer %s (%s) revision %lld", p->dev.id, p->dev.hostname,
			 (long long)p->dev.revision);
	if (!c->listing)
		nexd_delta_after(nexd, p);
}

static int on_line(struct nx_httpc_req *r, const char *line, size_t len, void *arg)
{
	struct nexd_ctrl *c = arg;
	struct nexd *nexd = c->nexd;
	struct nexd_event ev;
	struct nx_err err = { 0 };

	if (nexd_event_parse(&c->doc, line, len, &ev, &err) < 0) {
		nx_warn("controller: watch line ignored: %s", err.msg);
		return 0;
	}
	switch (ev.type) {
	case NEXD_EV_HEARTBEAT:
		break;
	case NEXD_EV_CHANGE:
	case NEXD_EV_DELETE:
		if (strcmp(ev.kind, "device") == 0)
			on_device(c, &ev);
		break;
	case NEXD_EV_TAIL:
		if (c->listing) {
			size_t n = nexd_peers_sweep_stale(nexd->peers);

			if (n)
				nx_notice("controller: %zu peer(s) no longer listed", n);
			c->listing = false;
		}
		c->connected = true;
		c->failures = 0;
		nexd->synced = true;
		nexd_set_state(nexd, NEXD_CONNECTED, "%zu peer(s)", nexd_peers_count(nexd->peers));
		nexd_dplane_changed(nexd);
		nexd_ctrl_report_soon(nexd);
		break;
	case NEXD_EV_ERROR:
		if (ev.error_code == NEXD_EV_ERR_TOO_OLD) {
			nx_notice("controller: resume point too old, listing again");
			c->revision = 0;
		} else if (ev.error_code == 401) {
			nexd_set_state(nexd, NEXD_ERROR, "the service ended the watch: %s",
				       ev.error);
		} else {
			nx_warn("controller: the service ended the watch: %s", ev.error);
		}
		return -ECONNRESET;
	}
	return 0;
}

static void watch_done(struct nx_httpc_req *r, long status, const char *body, size_t len,
		       const struct nx_err *err, void *arg)
{
	struct nexd_ctrl *c = arg;
	struct nexd *nexd = c->nexd;
	char why[256];

	c->req = NULL;
	c->step = STEP_IDLE;
	c->connected = false;
	api_error(status, body, len, err, why, sizeof(why));
	if (nexd->state == NEXD_ERROR)
		return;
	if (status == 401 || status == 403 || status == 404) {
		nexd_set_state(nexd, NEXD_ERROR, "the service refused the watch: %s", why);
		schedule_retry(c);
		return;
	}
	nexd_set_state(nexd, NEXD_CONNECTING, "watch ended: %s", why);
	/* A too-old resume point re-lists at once; anything else backs off. */
	if (c->revision == 0 && !c->listing)
		nx_timer_arm(&c->retry, 0);
	else
		schedule_retry(c);
}

static void watch_start(struct nexd_ctrl *c)
{
	struct nexd *nexd = c->nexd;
	char u[2048], key[NX_WG_KEY_B64_LEN], qkey[3 * NX_WG_KEY_B64_LEN], body[160];

	nx_wgkey_to_base64(&nexd->id.public_key, key);
	percent_encode(key, qkey, sizeof(qkey));
	if (url(u, sizeof(u), c, "/api/vpcs/%s/events?public_key=%s", nexd->id.vpc_id, qkey) < 0)
		return;
	snprintf(body, sizeof(body),
		 "[{\"kind\":\"device\",\"gt_revision\":%lld,\"at_tail\":false}]",
		 (long long)c->revision);
	c->listing = c->revision == 0;
	if (c->listing)
		nexd_peers_mark_stale(nexd->peers);
	c->step = STEP_WATCH;
	c->req = request(c, "POST", u, nexd->id.token, body, watch_done, on_line);
	if (!c->req) {
		c->step = STEP_IDLE;
		schedule_retry(c);
	}
}

static void vpc_done(struct nx_httpc_req *r, long status, const char *body, size_t len,
		     const struct nx_err *err, void *arg)
{
	struct nexd_ctrl *c = arg;
	struct nexd *nexd = c->nexd;
	struct nx_err perr = { 0 };
	char why[256];

	c->req = NULL;
	c->step = STEP_IDLE;
	if (status == 200 && nx_jdoc_parse(&c->doc, body, len, 16, &perr) == 0 &&
	    nexd_vpc_parse(&c->doc, 0, &nexd->vpc, &perr) == 0) {
		watch_start(c);
		return;
	}
	if (status == 200)
		snprintf(why, sizeof(why), "unusable VPC: %s", perr.msg);
	else
		api_error(status, body, len, err, why, sizeof(why));
	nexd_set_state(nexd, status == 401 || status == 404 ? NEXD_ERROR : NEXD_CONNECTING,
		       "reading VPC %s: %s", nexd->id.vpc_id, why);
	schedule_retry(c);
}

static void connect_start(struct nexd_ctrl *c)
{
	char u[2048];

	if (c->nexd->state != NEXD_ERROR)
		nexd_set_state(c->nexd, NEXD_CONNECTING, "%s", "");
	if (url(u, sizeof(u), c, "/api/vpcs/%s", c->nexd->id.vpc_id) < 0)
		return;
	c->step = STEP_VPC;
	c->req = request(c, "GET", u, c->nexd->id.token, NULL, vpc_done, NULL);
	if (!c->req) {
		c->step = STEP_IDLE;
		schedule_retry(c);
	}
}

/* --- enrollment ---------------------------------------------------------------------------- */

/* Whether an error answer names field as the conflict. */
static bool conflict_field_is(const char *body, size_t len, const char *field)
{
	struct json_object *o = len ? nx_json_parse(body, len, 8, NULL) : NULL;
	const char *f = NULL;
	bool is = o && nx_json_get_string_opt(o, "field", &f, NULL) > 0 && strcmp(f, field) == 0;

	json_object_put(o);
	return is;
}

/*
 * The service already has a device with this key, and this one is not enrolled: an earlier
 * enrollment's answer was lost (a timeout while the service was slow), or someone registered
 * this public key first.  Either way that device's token is out of reach, so this one enrolls
 * again with a new key pair; the other stays until deleted.
 */
static void rekey(struct nexd_ctrl *c)
{
	struct nexd *nexd = c->nexd;
	char key[NX_WG_KEY_B64_LEN];
	struct nx_err err = { 0 };

	nx_wgkey_to_base64(&nexd->id.public_key, key);
	nx_warn("controller: the service already has a device with public key %s (an earlier "
		"enrollment whose answer was lost?): enrolling with a new key pair",
		key);
	if (nexd_identity_new_key(nexd->daemon->state_dir, &nexd->id, &err) < 0 ||
	    nexd_dplane_set_key(nexd, &err) < 0)
		nexd_set_state(nexd, NEXD_ERROR, "enrollment: a new key pair: %s", err.msg);
	schedule_retry(c);
}

static void create_done(struct nx_httpc_req *r, long status, const char *body, size_t len,
			const struct nx_err *err, void *arg)
{
	struct nexd_ctrl *c = arg;
	struct nexd *nexd = c->nexd;
	struct nexd_device_info d = { 0 };
	struct nx_err perr = { 0 };
	char why[256];

	c->req = NULL;
	c->step = STEP_IDLE;
	if (status == 409 && conflict_field_is(body, len, "public_key")) {
		rekey(c);
		return;
	}
	if (status != 201 && status != 200) {
		api_error(status, body, len, err, why, sizeof(why));
		nexd_set_state(nexd, status >= 400 && status < 500 ? NEXD_ERROR : NEXD_ENROLLING,
			       "enrollment refused: %s", why);
		schedule_retry(c);
		return;
	}
	if (nx_jdoc_parse(&c->doc, body, len, 16, &perr) < 0 ||
	    nexd_device_parse_created(&c->doc, 0, &d, nexd->id.token, sizeof(nexd->id.token),
				      &perr) < 0) {
		nexd_set_state(nexd, NEXD_ERROR, "enrollment answer unusable: %s", perr.msg);
		schedule_retry(c);
		return;
	}
	nx_strlcpy(nexd->id.service_url, c->service, sizeof(nexd->id.service_url));
	nx_strlcpy(nexd->id.device_id, d.id, sizeof(nexd->id.device_id));
	nx_strlcpy(nexd->id.vpc_id, d.vpc_id[0] ? d.vpc_id : c->enroll_vpc,
		   sizeof(nexd->id.vpc_id));
	nexd->id.tunnel_ipv4 = d.tunnel_ipv4;
	nexd->id.tunnel_ipv6 = d.tunnel_ipv6;
	nexd_device_info_clear(&d);
	if (nexd_identity_save(nexd->daemon->state_dir, &nexd->id, &perr) < 0) {
		/* Without the token on disk a restart could not be this device again. */
		nexd_set_state(nexd, NEXD_ERROR, "enrolled, but %s", perr.msg);
		return;
	}
	nx_notice("controller: enrolled as device %s in VPC %s", nexd->id.device_id,
		  nexd->id.vpc_id);
	forget_bearer(c);
	c->revision = 0;
	nexd_dplane_changed(nexd); /* the tunnel addresses */
	connect_start(c);
}

static void create_start(struct nexd_ctrl *c)
{
	struct nexd *nexd = c->nexd;
	struct json_object *o;
	char u[2048], key[NX_WG_KEY_B64_LEN], host[256] = "";
	char *body;

	/* The local endpoints carry the port: it must be known before the device exists. */
	nexd_local_endpoints_refresh(nexd);
	o = self_description(nexd);
	nx_wgkey_to_base64(&nexd->id.public_key, key);
	gethostname(host, sizeof(host) - 1);
	if (!o || nx_json_object_add_string(o, "vpc_id", c->enroll_vpc) < 0 ||
	    nx_json_object_add_string(o, "public_key", key) < 0 ||
	    nx_json_object_add_string(o, "hostname", host) < 0 ||
	    nx_json_object_add_string(o, "os", "linux") < 0 ||
	    !(body = nx_json_to_string(o, NX_JSON_PLAIN))) {
		json_object_put(o);
		nx_warn("controller: cannot describe this device for enrollment");
		schedule_retry(c);
		return;
	}
	json_object_put(o);
	if (url(u, sizeof(u), c, "/api/devices") == 0) {
		c->step = STEP_CREATE;
		c->req = request(c, "POST", u, c->enroll_bearer, body, create_done, NULL);
	}
	free(body);
	if (!c->req) {
		c->step = STEP_IDLE;
		schedule_retry(c);
	}
}

static void reg_key_done(struct nx_httpc_req *r, long status, const char *body, size_t len,
			 const struct nx_err *err, void *arg)
{
	struct nexd_ctrl *c = arg;
	struct nexd *nexd = c->nexd;
	struct json_object *o = NULL;
	const char *vpc = NULL;
	char why[256];

	c->req = NULL;
	c->step = STEP_IDLE;
	if (status == 200 && (o = nx_json_parse(body, len, 16, NULL)) &&
	    nx_json_get_string(o, "vpc_id", &vpc, NULL) == 0 && strlen(vpc) == 36) {
		if (nexd->cfg.vpc_id[0] && strcmp(nexd->cfg.vpc_id, vpc) != 0)
			nx_warn("controller: vpc-id %s is configured, but the registration key "
				"enrolls into VPC %s",
				nexd->cfg.vpc_id, vpc);
		nx_strlcpy(c->enroll_vpc, vpc, sizeof(c->enroll_vpc));
		json_object_put(o);
		create_start(c);
		return;
	}
	json_object_put(o);
	api_error(status, body, len, err, why, sizeof(why));
	nexd_set_state(nexd, status >= 400 && status < 500 ? NEXD_ERROR : NEXD_ENROLLING,
		       "registration key refused: %s", why);
	schedule_retry(c);
}

static void enroll_start(struct nexd_ctrl *c)
{
	char u[2048];

	nexd_set_state(c->nexd, NEXD_ENROLLING, "%s", "");
	forget_bearer(c);
	c->enroll_bearer = strdup(c->reg_key);
	if (!c->enroll_bearer || url(u, sizeof(u), c, "/api/reg-keys/me") < 0) {
		schedule_retry(c);
		return;
	}
	c->step = STEP_REG_KEY;
	c->req = request(c, "GET", u, c->enroll_bearer, NULL, reg_key_done, NULL);
	if (!c->req) {
		c->step = STEP_IDLE;
		schedule_retry(c);
	}
}

/* Without a vpc-id a person's device joins their default VPC, whose id is their user id. */
static void user_done(struct nx_httpc_req *r, long status, const char *body, size_t len,
		      const struct nx_err *err, void *arg)
{
	struct nexd_ctrl *c = arg;
	struct json_object *o = NULL;
	const char *id = NULL;
	char why[256];

	c->req = NULL;
	c->step = STEP_IDLE;
	if (status == 200 && (o = nx_json_parse(body, len, 16, NULL)) &&
	    nx_json_get_string(o, "id", &id, NULL) == 0 && strlen(id) == 36) {
		nx_strlcpy(c->enroll_vpc, id, sizeof(c->enroll_vpc));
		json_object_put(o);
		create_start(c);
		return;
	}
	json_object_put(o);
	api_error(status, body, len, err, why, sizeof(why));
	nexd_set_state(c->nexd, NEXD_ERROR, "reading the user's default VPC: %s", why);
	forget_bearer(c);
	schedule_retry(c);
}

static void login_done(const char *access_token, const char *why, void *arg)
{
	struct nexd_ctrl *c = arg;
	char u[2048];

	c->step = STEP_IDLE;
	if (!access_token) {
		nexd_set_state(c->nexd, NEXD_ERROR, "login failed: %s", why);
		schedule_retry(c);
		return;
	}
	forget_bearer(c);
	c->enroll_bearer = strdup(access_token);
	if (!c->enroll_bearer) {
		schedule_retry(c);
		return;
	}
	if (c->nexd->cfg.vpc_id[0]) {
		nx_strlcpy(c->enroll_vpc, c->nexd->cfg.vpc_id, sizeof(c->enroll_vpc));
		create_start(c);
		return;
	}
	if (url(u, sizeof(u), c, "/api/users/me") < 0)
		return;
	c->step = STEP_USER;
	c->req = request(c, "GET", u, c->enroll_bearer, NULL, user_done, NULL);
	if (!c->req) {
		c->step = STEP_IDLE;
		schedule_retry(c);
	}
}

static void login_start(struct nexd_ctrl *c)
{
	c->step = STEP_LOGIN;
	if (nexd_login_start(c->nexd, c->service, login_done, c) < 0) {
		c->step = STEP_IDLE;
		schedule_retry(c);
	}
}

/* --- driving it ---------------------------------------------------------------------------- */

/* The service URL and the key from the configuration: a key may come in the URL form
 * https://host#RK:..., whose host part then names the service when service-url is unset. */
static void effective_config(const struct nexd *nexd, char *service, size_t ssize, char *key,
			     size_t ksize)
{
	const char *hash = strchr(nexd->cfg.reg_key, '#');
	size_t n;

	nx_strlcpy(service, nexd->cfg.service_url, ssize);
	nx_strlcpy(key, hash ? hash + 1 : nexd->cfg.reg_key, ksize);
	if (hash && !service[0]) {
		n = (size_t)(hash - nexd->cfg.reg_key);
		snprintf(service, ssize, "%.*s", (int)n, nexd->cfg.reg_key);
	}
	n = strlen(service);
	while (n && service[n - 1] == '/')
		service[--n] = '\0';
}

/* The key pair (made on first use) and what an earlier enrollment stored. */
static int load_identity(struct nexd *nexd)
{
	struct nx_err err = { 0 };
	int rc;

	if (nexd->have_identity)
		return 0;
	rc = nexd_identity_load_key(nexd->daemon->state_dir, &nexd->id, &err);
	if (rc < 0) {
		nexd_set_state(nexd, NEXD_ERROR, "%s", err.msg);
		return rc;
	}
	nexd->have_identity = true;
	rc = nexd_identity_load(nexd->daemon->state_dir, &nexd->id, &err);
	if (rc < 0 && rc != -ENOENT)
		nx_warn("ignoring the stored enrollment: %s", err.msg);
	else if (rc == 0)
		nx_notice("device %s in VPC %s (enrolled with %s)", nexd->id.device_id,
			  nexd->id.vpc_id, nexd->id.service_url);
	return 0;
}

static void advance(struct nexd_ctrl *c)
{
	struct nexd *nexd = c->nexd;

	if (c->step != STEP_IDLE)
		return;
	if (!c->service[0]) {
		nexd_set_state(nexd, NEXD_NOT_CONFIGURED, "set service-url and registration-key");
		return;
	}
	if (load_identity(nexd) < 0) {
		schedule_retry(c);
		return;
	}
	/* The interface first: an enrolled device keeps forwarding before the service answers,
	 * and a new one reports endpoints with the port WireGuard really listens on. */
	if (!nexd->dplane_up) {
		struct nx_err err = { 0 };

		if (nexd_dplane_up(nexd, &err) < 0) {
			nexd_set_state(nexd, NEXD_ERROR, "dataplane: %s", err.msg);
			schedule_retry(c);
			return;
		}
	}
	if (nexd->id.device_id[0] && strcmp(nexd->id.service_url, c->service) == 0) {
		connect_start(c);
		return;
	}
	if (c->reg_key[0])
		enroll_start(c);
	else
		login_start(c);
}

static void retry_fired(struct nx_timer *t, void *arg)
{
	advance(arg);
}

void nexd_ctrl_config_changed(struct nexd *nexd)
{
	struct nexd_ctrl *c = nexd->ctrl;
	char service[sizeof(c->service)], key[sizeof(c->reg_key)];

	if (!c)
		return;
	effective_config(nexd, service, sizeof(service), key, sizeof(key));
	if (strcmp(service, c->service) != 0 || strcmp(key, c->reg_key) != 0) {
		nx_strlcpy(c->service, service, sizeof(c->service));
		nx_strlcpy(c->reg_key, key, sizeof(c->reg_key));
		nx_memzero_explicit(key, sizeof(key));
		ctrl_stop_requests(c);
		nx_timer_cancel(&c->retry);
		c->failures = 0;
		advance(c);
	}
	nexd_ctrl_report_soon(nexd);
	nexd_dplane_changed(nexd);
}

/* This host's addresses changed (DHCP renew, a move to another network): connections made
 * from an address that is gone would only time out, so every connection is dropped and the
 * session resumes at once from the new address, reporting the new endpoints. */
void nexd_ctrl_addresses_changed(struct nexd *nexd)
{
	struct nexd_ctrl *c = nexd->ctrl;
	struct nx_httpc_opts ho = {
		.ca_file = nexd->cfg.ca_file[0] ? nexd->cfg.ca_file : NULL,
		.insecure_skip_verify = nexd->cfg.insecure_skip_tls_verify,
	};
	struct nx_err err = { 0 };
	struct nx_httpc *fresh;

	if (!c)
		return;
	fresh = nx_httpc_new(nexd->daemon->loop, &ho, &err);
	if (!fresh) {
		nx_warn("controller: %s", err.msg);
		nexd_ctrl_report_soon(nexd);
		return;
	}
	nx_notice("controller: local addresses changed, reconnecting");
	ctrl_stop_requests(c);
	if (c->report_req)
		nx_httpc_cancel(c->report_req);
	c->report_req = NULL;
	nx_httpc_free(nexd->http);
	nexd->http = fresh;
	c->failures = 0;
	nx_timer_cancel(&c->retry);
	advance(c);
	nexd_ctrl_report_soon(nexd);
}

bool nexd_ctrl_connected(const struct nexd *nexd)
{
	return nexd->ctrl && nexd->ctrl->connected;
}

int64_t nexd_ctrl_revision(const struct nexd *nexd)
{
	return nexd->ctrl ? nexd->ctrl->revision : 0;
}

const char *nexd_ctrl_service(const struct nexd *nexd)
{
	return nexd->ctrl ? nexd->ctrl->service : "";
}

int nexd_ctrl_new(struct nexd *nexd, struct nx_err *err)
{
	struct nx_httpc_opts ho = {
		.ca_file = nexd->cfg.ca_file[0] ? nexd->cfg.ca_file : NULL,
		.insecure_skip_verify = nexd->cfg.insecure_skip_tls_verify,
	};
	struct nexd_ctrl *c;

	nexd->peers = nexd_peers_new();
	nexd->http = nx_httpc_new(nexd->daemon->loop, &ho, err);
	c = calloc(1, sizeof(*c));
	if (!nexd->peers || !nexd->http || !c) {
		free(c);
		return nx_err_set(err, ENOMEM, "cannot start the control session");
	}
	c->nexd = nexd;
	nx_timer_init(nexd->daemon->loop, &c->retry, retry_fired, c);
	nx_defer_init(nexd->daemon->loop, &c->report, report_now, c);
	nx_timer_init(nexd->daemon->loop, &c->report_retry, report_retry_fired, c);
	nexd->ctrl = c;
	return 0;
}

void nexd_ctrl_free(struct nexd *nexd)
{
	struct nexd_ctrl *c = nexd->ctrl;

	if (c) {
		ctrl_stop_requests(c);
		if (c->report_req)
			nx_httpc_cancel(c->report_req);
		nx_timer_fini(&c->retry);
		nx_timer_fini(&c->report_retry);
		nx_defer_fini(&c->report);
		nexd_login_free(nexd);
		free(c->reported);
		nx_jdoc_fini(&c->doc);
		nx_memzero_explicit(c->reg_key, sizeof(c->reg_key));
		free(c);
		nexd->ctrl = NULL;
	}
	nx_httpc_free(nexd->http);
	nexd->http = NULL;
	nexd_peers_free(nexd->peers);
	nexd->peers = NULL;
}
