/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The OIDC device flow (RFC 8628), for a device enrolled by a person rather than with a
 * registration key: the service names its identity provider (POST /device/login/start), the
 * provider hands out a user code, nexd shows where to enter it and polls the token endpoint
 * until the person has approved.  The access token then creates the device; from there on
 * nexd uses only its device token, so the person's session may end.  The refresh token is
 * kept in the state directory (0600).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonutil.h"
#include "lib/paths.h"
#include "lib/strutil.h"
#include "nexd/nexd.h"

#define DEVICE_GRANT	   "urn:ietf:params:oauth:grant-type:device_code"
#define LOGIN_SCOPE	   "openid profile email offline_access"
#define REQUEST_TIMEOUT_MS 15000
#define POLL_MIN_S	   1
#define POLL_MAX_S	   60
#define LOGIN_FILE	   "nexd-login.json"

enum login_step {
	LOGIN_IDLE,
	LOGIN_START,	 /* POST {service}/device/login/start */
	LOGIN_DISCOVERY, /* GET {issuer}/.well-known/openid-configuration */
	LOGIN_AUTHORIZE, /* POST device_authorization_endpoint */
	LOGIN_WAIT,	 /* polling the token endpoint */
};

struct nexd_login {
	struct nexd *nexd;
	enum login_step step;
	struct nx_httpc_req *req;
	struct nx_timer poll;
	unsigned interval_s;
	uint64_t expires_at_ms;
	char client_id[256];
	char device_auth_ep[1024];
	char token_ep[1024];
	char device_code[1024];
	nexd_login_done_fn done;
	void *arg;
};

static void finish(struct nexd_login *l, const char *access_token, const char *why)
{
	nexd_login_done_fn done = l->done;

	l->step = LOGIN_IDLE;
	l->req = NULL;
	nx_timer_cancel(&l->poll);
	nx_memzero_explicit(l->device_code, sizeof(l->device_code));
	if (done)
		done(access_token, why, l->arg);
}

/* application/x-www-form-urlencoded value */
static void form_escape(struct nx_sbuf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~')
			nx_sbuf_printf(b, "%c", ch);
		else
			nx_sbuf_printf(b, "%%%02X", ch);
	}
}

static struct nx_httpc_req *login_request(struct nexd_login *l, const char *method, const char *url,
					  const char *form, nx_httpc_done_fn cb)
{
	struct nx_httpc_req_opts o = {
		.method = method,
		.url = url,
		.body = form,
		.body_len = form ? strlen(form) : 0,
		.content_type = form ? "application/x-www-form-urlencoded" : NULL,
		.timeout_ms = REQUEST_TIMEOUT_MS,
	};
	struct nx_err err = { 0 };
	struct nx_httpc_req *r = nx_httpc_start(l->nexd->http, &o, cb, l, &err);

	if (!r)
		finish(l, NULL, err.msg);
	return r;
}

static struct json_object *json_answer(long status, const char *body, size_t len,
				       const struct nx_err *err, char *why, size_t size)
{
	struct json_object *o;

	if (!status) {
		snprintf(why, size, "%s", err ? err->msg : "no answer");
		return NULL;
	}
	o = nx_json_parse(body, len, 16, NULL);
	if (!o)
		snprintf(why, size, "HTTP %ld with a body that is not JSON", status);
	return o;
}

static int copy_field(struct json_object *o, const char *key, char *dst, size_t size, char *why,
		      size_t wsize)
{
	const char *s;

	if (nx_json_get_string(o, key, &s, NULL) < 0 || !s[0] || strlen(s) >= size) {
		snprintf(why, wsize, "the answer has no usable \"%s\"", key);
		return -EINVAL;
	}
	nx_strlcpy(dst, s, size);
	return 0;
}

/* --- polling -------------------------------------------------------------------------------- */

static void keep_refresh_token(struct nexd *nexd, struct json_object *o)
{
	const char *refresh = NULL;
	struct json_object *keep;
	struct nx_err err = { 0 };
	char path[4096];
	const char *text;

	if (nx_json_get_string_opt(o, "refresh_token", &refresh, NULL) <= 0)
		return;
	keep = json_object_new_object();
	if (!keep || nx_json_object_add_string(keep, "refresh_token", refresh) < 0 ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", nexd->daemon->state_dir, LOGIN_FILE) >=
		    sizeof(path)) {
		json_object_put(keep);
		return;
	}
	text = json_object_to_json_string_ext(keep, JSON_C_TO_STRING_PLAIN);
	if (nx_write_file_atomic(path, text, strlen(text), 0600, &err) < 0)
		nx_warn("login: cannot keep the refresh token: %s", err.msg);
	nx_memzero_explicit((char *)text, strlen(text));
	json_object_put(keep);
}

static void poll_fired(struct nx_timer *t, void *arg);

static void token_done(struct nx_httpc_req *r, long status, const char *body, size_t len,
		       const struct nx_err *err, void *arg)
{
	struct nexd_login *l = arg;
	struct json_object *o;
	const char *access = NULL, *error = NULL;
	char why[256];

	l->req = NULL;
	o = json_answer(status, body, len, err, why, sizeof(why));
	if (status == 200 && o && nx_json_get_string(o, "access_token", &access, NULL) == 0) {
		keep_refresh_token(l->nexd, o);
		nx_notice("login: approved");
		finish(l, access, NULL);
		json_object_put(o);
		return;
	}
	if (o)
		nx_json_get_string(o, "error", &error, NULL);
	if (error && strcmp(error, "slow_down") == 0 && l->interval_s < POLL_MAX_S)
		l->interval_s += 5;
	if (error &&
	    (strcmp(error, "authorization_pending") == 0 || strcmp(error, "slow_down") == 0)) {
		if (nx_now_ms() < l->expires_at_ms) {
			nx_timer_arm(&l->poll, (uint64_t)l->interval_s * 1000);
			json_object_put(o);
			return;
		}
		snprintf(why, sizeof(why), "the code expired before it was used");
	} else if (error) {
		char clean[128];

		snprintf(why, sizeof(why), "the identity provider refused: %s",
			 nx_str_printable(clean, sizeof(clean), error));
	} else if (o) {
		snprintf(why, sizeof(why), "token endpoint answered HTTP %ld", status);
	}
	json_object_put(o);
	finish(l, NULL, why);
}

static void poll_fired(struct nx_timer *t, void *arg)
{
	struct nexd_login *l = arg;
	char form[2048];
	struct nx_sbuf b;

	nx_sbuf_init(&b, form, sizeof(form));
	nx_sbuf_puts(&b, "grant_type=");
	form_escape(&b, DEVICE_GRANT);
	nx_sbuf_puts(&b, "&device_code=");
	form_escape(&b, l->device_code);
	nx_sbuf_puts(&b, "&client_id=");
	form_escape(&b, l->client_id);
	if (nx_sbuf_truncated(&b)) {
		finish(l, NULL, "device code too long");
		return;
	}
	l->req = login_request(l, "POST", l->token_ep, nx_sbuf_str(&b), token_done);
}

/* --- the steps before it -------------------------------------------------------------------- */

static void authorize_done(struct nx_httpc_req *r, long status, const char *body, size_t len,
			   const struct nx_err *err, void *arg)
{
	struct nexd_login *l = arg;
	struct json_object *o;
	char why[256], user_code[64], uri[1024];
	const char *complete = NULL;
	int64_t interval = 5, expires = 600;

	l->req = NULL;
	o = json_answer(status, body, len, err, why, sizeof(why));
	if (!o)
		goto fail;
	if (status != 200) {
		snprintf(why, sizeof(why), "device authorization answered HTTP %ld", status);
		goto fail;
	}
	if (copy_field(o, "device_code", l->device_code, sizeof(l->device_code), why, sizeof(why)) <
		    0 ||
	    copy_field(o, "user_code", user_code, sizeof(user_code), why, sizeof(why)) < 0 ||
	    copy_field(o, "verification_uri", uri, sizeof(uri), why, sizeof(why)) < 0)
		goto fail;
	nx_json_get_string_opt(o, "verification_uri_complete", &complete, NULL);
	nx_json_get_int64_opt(o, "interval", &interval, NULL);
	nx_json_get_int64_opt(o, "expires_in", &expires, NULL);
	l->interval_s = interval < POLL_MIN_S	? POLL_MIN_S
			: interval > POLL_MAX_S ? POLL_MAX_S
						: (unsigned)interval;
	l->expires_at_ms = nx_now_ms() + (uint64_t)(expires > 0 ? expires : 600) * 1000;
	/* The one thing the person must read: on the console and in show nexodus status. */
	nx_strlcpy(why, "", sizeof(why));
	nx_notice("login: to enroll this device, visit %s and enter the code %s", uri, user_code);
	if (complete)
		nx_notice("login: or open %s", complete);
	nexd_set_state(l->nexd, NEXD_ENROLLING, "log in at %s with the code %s", uri, user_code);
	l->step = LOGIN_WAIT;
	nx_timer_arm(&l->poll, (uint64_t)l->interval_s * 1000);
	json_object_put(o);
	return;
fail:
	json_object_put(o);
	finish(l, NULL, why);
}

static void discovery_done(struct nx_httpc_req *r, long status, const char *body, size_t len,
			   const struct nx_err *err, void *arg)
{
	struct nexd_login *l = arg;
	struct json_object *o;
	char why[256], form[1024];
	struct nx_sbuf b;

	l->req = NULL;
	o = json_answer(status, body, len, err, why, sizeof(why));
	if (!o ||
	    (status != 200 && snprintf(why, sizeof(why), "discovery answered HTTP %ld", status)) ||
	    copy_field(o, "token_endpoint", l->token_ep, sizeof(l->token_ep), why, sizeof(why)) <
		    0) {
		json_object_put(o);
		finish(l, NULL, why);
		return;
	}
	json_object_put(o);
	nx_sbuf_init(&b, form, sizeof(form));
	nx_sbuf_puts(&b, "client_id=");
	form_escape(&b, l->client_id);
	nx_sbuf_puts(&b, "&scope=");
	form_escape(&b, LOGIN_SCOPE);
	l->step = LOGIN_AUTHORIZE;
	l->req = login_request(l, "POST", l->device_auth_ep, nx_sbuf_str(&b), authorize_done);
}

static void start_done(struct nx_httpc_req *r, long status, const char *body, size_t len,
		       const struct nx_err *err, void *arg)
{
	struct nexd_login *l = arg;
	struct json_object *o;
	char why[256], issuer[1024], url[1200];

	l->req = NULL;
	o = json_answer(status, body, len, err, why, sizeof(why));
	if (o && status != 200) {
		const char *msg = NULL;
		char clean[200];

		nx_json_get_string(o, "error", &msg, NULL);
		snprintf(why, sizeof(why), "the service cannot log in devices: HTTP %ld%s%s",
			 status, msg ? ": " : "",
			 msg ? nx_str_printable(clean, sizeof(clean), msg) : "");
	}
	if (!o || status != 200 ||
	    copy_field(o, "client_id", l->client_id, sizeof(l->client_id), why, sizeof(why)) < 0 ||
	    copy_field(o, "device_authorization_endpoint", l->device_auth_ep,
		       sizeof(l->device_auth_ep), why, sizeof(why)) < 0 ||
	    copy_field(o, "issuer", issuer, sizeof(issuer), why, sizeof(why)) < 0) {
		json_object_put(o);
		finish(l, NULL, why);
		return;
	}
	json_object_put(o);
	snprintf(url, sizeof(url), "%s%s.well-known/openid-configuration", issuer,
		 nx_str_endswith(issuer, "/") ? "" : "/");
	l->step = LOGIN_DISCOVERY;
	l->req = login_request(l, "GET", url, NULL, discovery_done);
}

int nexd_login_start(struct nexd *nexd, const char *service, nexd_login_done_fn done, void *arg)
{
	struct nexd_login *l = nexd->login;
	char url[1200];

	if (!l) {
		l = calloc(1, sizeof(*l));
		if (!l)
			return -ENOMEM;
		l->nexd = nexd;
		nx_timer_init(nexd->daemon->loop, &l->poll, poll_fired, l);
		nexd->login = l;
	}
	nexd_login_cancel(nexd);
	l->done = done;
	l->arg = arg;
	snprintf(url, sizeof(url), "%s/device/login/start", service);
	nexd_set_state(nexd, NEXD_ENROLLING, "asking the service how to log in");
	l->step = LOGIN_START;
	l->req = login_request(l, "POST", url, "", start_done);
	return l->req ? 0 : -EIO;
}

void nexd_login_cancel(struct nexd *nexd)
{
	struct nexd_login *l = nexd->login;

	if (!l)
		return;
	if (l->req)
		nx_httpc_cancel(l->req);
	l->req = NULL;
	nx_timer_cancel(&l->poll);
	l->step = LOGIN_IDLE;
	nx_memzero_explicit(l->device_code, sizeof(l->device_code));
}

void nexd_login_free(struct nexd *nexd)
{
	struct nexd_login *l = nexd->login;

	if (!l)
		return;
	nexd_login_cancel(nexd);
	nx_timer_fini(&l->poll);
	free(l);
	nexd->login = NULL;
}
