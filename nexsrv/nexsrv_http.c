/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The REST API's HTTP server on libmicrohttpd; the design is described in nexsrv_http.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <microhttpd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lib/jsonutil.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "nexsrv/nexsrv_http.h"
#include "nexsrv/nexsrv_http_int.h"
#include "nexsrv/nexsrv_metrics.h"
#include "nexsrv/nexsrv_ratelimit.h"

NX_DEBUG_DECLARE(nexsrv_api);

_Static_assert(NEXSRV_HTTP_CALLER_KEY_MAX == NEXSRV_RATELIMIT_KEY_MAX,
	       "a caller key must fit a rate-limit key");

#define ERR_INTERNAL_BODY "{\"error\":\"internal error\"}"
#define TLS_PRIORITIES	  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* ======================================================================================
 * Percent-decoding, paths and queries
 */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* True when s[0..len) is well-formed UTF-8 (no overlong forms, surrogates or > U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/*
 * Decodes in[0..len) into out (room for len bytes) and NUL-terminates it; *outlen is the
 * decoded length.  what names the part for messages ("path", "query").  Raw bytes must be
 * printable ASCII or >= 0x80; the result must be UTF-8 without NUL (and, for paths, without
 * control characters).
 */
static int pct_decode(const char *in, size_t len, char *out, size_t *outlen, bool plus_space,
		      bool allow_controls, const char *what, struct nx_err *err)
{
	size_t w = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c <= 0x20 || c == 0x7f)
			return nx_err_set(err, EINVAL, "invalid character 0x%02x in the %s", c,
					  what);
		if (c == '%') {
			int hi = len - i >= 3 ? hexval(in[i + 1]) : -1;
			int lo = len - i >= 3 ? hexval(in[i + 2]) : -1;

			if (hi < 0 || lo < 0) {
				char shown[8];
				size_t n = len - i < 3 ? len - i : 3;

				memcpy(shown, in + i, n);
				shown[n] = '\0';
				nx_str_printable(shown, sizeof(shown), shown);
				return nx_err_set(err, EINVAL,
						  "bad percent-encoding \"%s\" in the %s", shown,
						  what);
			}
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
			if (c == 0)
				return nx_err_set(err, EINVAL,
						  "%%00 (NUL) is not allowed in the %s", what);
			if (!allow_controls && (c < 0x20 || c == 0x7f))
				return nx_err_set(
					err, EINVAL,
					"control character %%%02X is not allowed in the %s", c,
					what);
		} else if (c == '+' && plus_space) {
			c = ' ';
		}
		out[w++] = (char)c;
	}
	out[w] = '\0';
	if (!utf8_valid((const unsigned char *)out, w))
		return nx_err_set(err, EINVAL, "the %s does not decode to valid UTF-8", what);
	*outlen = w;
	return 0;
}

void nexsrv_path_fini(struct nexsrv_path *path)
{
	if (!path)
		return;
	free(path->buf);
	memset(path, 0, sizeof(*path));
}

int nexsrv_path_parse(const char *raw, size_t len, struct nexsrv_path *out, struct nx_err *err)
{
	size_t pos = 1, w = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!raw || len == 0 || raw[0] != '/')
		return nx_err_set(err, EINVAL, "the path must start with '/'");
	if (len > NEXSRV_URI_MAX)
		return nx_err_set(err, E2BIG, "the path is longer than %d bytes", NEXSRV_URI_MAX);
	out->buf = malloc(len + 1);
	if (!out->buf)
		return nx_err_set(err, ENOMEM, "out of memory");
	for (;;) {
		const char *slash = memchr(raw + pos, '/', len - pos);
		size_t end = slash ? (size_t)(slash - raw) : len;
		size_t dlen;

		if (out->n == NEXSRV_PATH_MAX_SEGMENTS) {
			rc = nx_err_set(err, E2BIG, "the path has more than %d segments",
					NEXSRV_PATH_MAX_SEGMENTS);
			goto fail;
		}
		rc = pct_decode(raw + pos, end - pos, out->buf + w, &dlen, false, false, "path",
				err);
		if (rc < 0)
			goto fail;
		out->seg[out->n++] = out->buf + w;
		w += dlen + 1;
		if (end == len)
			break;
		pos = end + 1;
	}
	return 0;
fail:
	nexsrv_path_fini(out);
	return rc;
}

void nexsrv_query_fini(struct nexsrv_query *q)
{
	if (!q)
		return;
	free(q->buf);
	memset(q, 0, sizeof(*q));
}

int nexsrv_query_parse(const char *raw, size_t len, struct nexsrv_query *out, struct nx_err *err)
{
	size_t pos = 0, w = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len > NEXSRV_URI_MAX)
		return nx_err_set(err, E2BIG, "the query is longer than %d bytes", NEXSRV_URI_MAX);
	if (len == 0)
		return 0;
	out->buf = malloc(len + 1);
	if (!out->buf)
		return nx_err_set(err, ENOMEM, "out of memory");
	while (pos <= len) {
		const char *amp = memchr(raw + pos, '&', len - pos);
		size_t end = amp ? (size_t)(amp - raw) : len;
		const char *eq = memchr(raw + pos, '=', end - pos);
		size_t kend = eq ? (size_t)(eq - raw) : end;
		size_t klen, vlen;

		if (end > pos) {
			if (out->n == NEXSRV_QUERY_MAX_PARAMS) {
				rc = nx_err_set(err, E2BIG, "the query has more than %d parameters",
						NEXSRV_QUERY_MAX_PARAMS);
				goto fail;
			}
			rc = pct_decode(raw + pos, kend - pos, out->buf + w, &klen, true, true,
					"query", err);
			if (rc < 0)
				goto fail;
			out->p[out->n].key = out->buf + w;
			w += klen + 1;
			if (eq) {
				rc = pct_decode(eq + 1, end - kend - 1, out->buf + w, &vlen, true,
						true, "query", err);
				if (rc < 0)
					goto fail;
				out->p[out->n].value = out->buf + w;
				w += vlen + 1;
			} else {
				out->p[out->n].value = "";
			}
			out->n++;
		}
		if (!amp)
			break;
		pos = end + 1;
	}
	return 0;
fail:
	nexsrv_query_fini(out);
	return rc;
}

const char *nexsrv_query_get(const struct nexsrv_query *q, const char *key)
{
	for (size_t i = 0; q && key && i < q->n; i++)
		if (strcmp(q->p[i].key, key) == 0)
			return q->p[i].value;
	return NULL;
}

/* ======================================================================================
 * The routing table
 */

struct rroute {
	struct nexsrv_route route; /* method and pattern point to the copies below */
	char *method;
	char *pattern;
	char *segbuf; /* literal texts and parameter names */
	size_t n;
	const char *seg[NEXSRV_PATH_MAX_SEGMENTS];
	bool param[NEXSRV_PATH_MAX_SEGMENTS];
	uint64_t literals; /* bit 63 - i set when segment i is a literal */
};

struct nexsrv_router {
	pthread_rwlock_t lock;
	struct rroute **routes;
	size_t n, cap;
};

struct nexsrv_router *nexsrv_router_new(void)
{
	struct nexsrv_router *r = calloc(1, sizeof(*r));

	if (r)
		pthread_rwlock_init(&r->lock, NULL);
	return r;
}

static void rroute_free(struct rroute *rr)
{
	if (!rr)
		return;
	free(rr->method);
	free(rr->pattern);
	free(rr->segbuf);
	free(rr);
}

void nexsrv_router_free(struct nexsrv_router *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		rroute_free(r->routes[i]);
	free(r->routes);
	pthread_rwlock_destroy(&r->lock);
	free(r);
}

static bool is_param_name(const char *s, size_t len)
{
	if (len == 0 || len > 32)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		      (i > 0 && c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* RFC 3986 pchar without pct-encoded: what a literal pattern segment may hold. */
static bool is_literal_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("-._~!$&'()*+,;=:@", c) != NULL;
}

/* Splits and checks a pattern into rr. */
static int pattern_parse(struct rroute *rr, const char *pattern, struct nx_err *err)
{
	size_t len = strlen(pattern), pos = 1, w = 0, n_params = 0;

	if (len == 0 || pattern[0] != '/')
		return nx_err_set(err, EINVAL, "route \"%s\": a pattern starts with '/'", pattern);
	if (len > NEXSRV_URI_MAX)
		return nx_err_set(err, EINVAL, "route: pattern too long");
	rr->segbuf = malloc(len + 1);
	if (!rr->segbuf)
		return nx_err_set(err, ENOMEM, "out of memory");
	for (;;) {
		const char *slash = strchr(pattern + pos, '/');
		size_t end = slash ? (size_t)(slash - pattern) : len;
		const char *s = pattern + pos;
		size_t slen = end - pos;

		if (rr->n == NEXSRV_PATH_MAX_SEGMENTS)
			return nx_err_set(err, EINVAL, "route \"%s\": more than %d segments",
					  pattern, NEXSRV_PATH_MAX_SEGMENTS);
		if (slen == 0 && !(len == 1))
			return nx_err_set(err, EINVAL, "route \"%s\": empty segment", pattern);
		if (slen >= 2 && s[0] == '{' && s[slen - 1] == '}') {
			if (!is_param_name(s + 1, slen - 2))
				return nx_err_set(err, EINVAL,
						  "route \"%s\": bad parameter name in segment %zu",
						  pattern, rr->n + 1);
			if (n_params == NEXSRV_ROUTE_MAX_PARAMS)
				return nx_err_set(err, EINVAL,
						  "route \"%s\": more than %d parameters", pattern,
						  NEXSRV_ROUTE_MAX_PARAMS);
			memcpy(rr->segbuf + w, s + 1, slen - 2);
			rr->segbuf[w + slen - 2] = '\0';
			for (size_t i = 0; i < rr->n; i++)
				if (rr->param[i] && strcmp(rr->seg[i], rr->segbuf + w) == 0)
					return nx_err_set(
						err, EINVAL,
						"route \"%s\": parameter {%s} appears twice",
						pattern, rr->seg[i]);
			rr->param[rr->n] = true;
			n_params++;
		} else {
			for (size_t i = 0; i < slen; i++)
				if (!is_literal_char(s[i]))
					return nx_err_set(
						err, EINVAL,
						"route \"%s\": character '%c' not allowed "
						"in a literal segment",
						pattern, s[i]);
			memcpy(rr->segbuf + w, s, slen);
			rr->segbuf[w + slen] = '\0';
			rr->literals |= 1ull << (63 - rr->n);
		}
		rr->seg[rr->n++] = rr->segbuf + w;
		w += slen + 1;
		if (end == len)
			break;
		pos = end + 1;
	}
	return 0;
}

static bool same_shape(const struct rroute *a, const struct rroute *b)
{
	if (a->n != b->n || strcmp(a->method, b->method) != 0)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		if (a->param[i] != b->param[i])
			return false;
		if (!a->param[i] && strcmp(a->seg[i], b->seg[i]) != 0)
			return false;
	}
	return true;
}

int nexsrv_router_add(struct nexsrv_router *r, const struct nexsrv_route *route, struct nx_err *err)
{
	struct rroute *rr;
	size_t mlen;
	int rc;

	if (!route || !route->method || !route->pattern || !route->handler)
		return nx_err_set(err, EINVAL, "route: method, pattern and handler are required");
	mlen = strlen(route->method);
	if (mlen == 0 || mlen > 16 || strspn(route->method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != mlen)
		return nx_err_set(err, EINVAL, "route %s: method \"%s\" is not an upper-case token",
				  route->pattern, route->method);
	rr = calloc(1, sizeof(*rr));
	if (!rr)
		return nx_err_set(err, ENOMEM, "out of memory");
	rc = pattern_parse(rr, route->pattern, err);
	if (rc < 0)
		goto fail;
	rr->method = strdup(route->method);
	rr->pattern = strdup(route->pattern);
	if (!rr->method || !rr->pattern) {
		rc = nx_err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	rr->route = *route;
	rr->route.method = rr->method;
	rr->route.pattern = rr->pattern;

	pthread_rwlock_wrlock(&r->lock);
	for (size_t i = 0; i < r->n; i++) {
		if (same_shape(r->routes[i], rr)) {
			rc = nx_err_set(err, EEXIST, "route %s %s: clashes with %s %s", rr->method,
					rr->pattern, r->routes[i]->method, r->routes[i]->pattern);
			pthread_rwlock_unlock(&r->lock);
			goto fail;
		}
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct rroute **routes = realloc(r->routes, cap * sizeof(*routes));

		if (!routes) {
			pthread_rwlock_unlock(&r->lock);
			rc = nx_err_set(err, ENOMEM, "out of memory");
			goto fail;
		}
		r->routes = routes;
		r->cap = cap;
	}
	r->routes[r->n++] = rr;
	pthread_rwlock_unlock(&r->lock);
	return 0;
fail:
	rroute_free(rr);
	return rc;
}

static bool path_fits(const struct rroute *rr, const struct nexsrv_path *path)
{
	if (rr->n != path->n)
		return false;
	for (size_t i = 0; i < rr->n; i++)
		if (!rr->param[i] && strcmp(rr->seg[i], path->seg[i]) != 0)
			return false;
	return true;
}

static void allow_add(char *allow, size_t size, const char *method)
{
	size_t mlen = strlen(method);

	for (const char *p = allow; (p = strstr(p, method)); p += mlen)
		if ((p == allow || p[-1] == ' ') && (p[mlen] == ',' || p[mlen] == '\0'))
			return;
	if (allow[0])
		nx_strlcat(allow, ", ", size);
	nx_strlcat(allow, method, size);
}

enum nexsrv_match_result nexsrv_router_match(struct nexsrv_router *r, const char *method,
					     const struct nexsrv_path *path, struct nexsrv_match *m)
{
	const struct rroute *best = NULL;
	int best_score = 0;
	bool any = false;

	memset(m, 0, sizeof(*m));
	pthread_rwlock_rdlock(&r->lock);
	for (size_t i = 0; i < r->n; i++) {
		const struct rroute *rr = r->routes[i];
		int score;

		if (!path_fits(rr, path))
			continue;
		any = true;
		allow_add(m->allow, sizeof(m->allow), rr->method);
		if (strcmp(rr->method, "GET") == 0)
			allow_add(m->allow, sizeof(m->allow), "HEAD");
		if (strcmp(rr->method, method) == 0)
			score = 2;
		else if (strcmp(method, "HEAD") == 0 && strcmp(rr->method, "GET") == 0)
			score = 1;
		else
			continue;
		if (!best || rr->literals > best->literals ||
		    (rr->literals == best->literals && score > best_score)) {
			best = rr;
			best_score = score;
		}
	}
	pthread_rwlock_unlock(&r->lock);
	if (!best)
		return any ? NEXSRV_MATCH_BAD_METHOD : NEXSRV_MATCH_NOT_FOUND;
	m->allow[0] = '\0';
	m->route = &best->route;
	for (size_t i = 0; i < best->n; i++) {
		if (!best->param[i])
			continue;
		m->params[m->n_params].key = best->seg[i];
		m->params[m->n_params].value = path->seg[i];
		m->n_params++;
	}
	return NEXSRV_MATCH_OK;
}

/* ======================================================================================
 * Request accessors and replies
 */

const char *nexsrv_req_method(const struct nexsrv_req *req)
{
	return req->method;
}

const char *nexsrv_req_path(const struct nexsrv_req *req)
{
	return req->raw_path ? req->raw_path : "";
}

const char *nexsrv_req_route(const struct nexsrv_req *req)
{
	return req->routed ? req->match.route->pattern : NULL;
}

const char *nexsrv_req_param(const struct nexsrv_req *req, const char *name)
{
	for (size_t i = 0; req->routed && name && i < req->match.n_params; i++)
		if (strcmp(req->match.params[i].key, name) == 0)
			return req->match.params[i].value;
	return NULL;
}

const char *nexsrv_req_query(const struct nexsrv_req *req, const char *name)
{
	return nexsrv_query_get(&req->query, name);
}

const char *nexsrv_req_header(const struct nexsrv_req *req, const char *name)
{
	return name ? MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *nexsrv_req_bearer(const struct nexsrv_req *req)
{
	const char *h = nexsrv_req_header(req, MHD_HTTP_HEADER_AUTHORIZATION);

	if (!h || strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
		return NULL;
	h += 6;
	while (*h == ' ' || *h == '\t')
		h++;
	return *h ? h : NULL;
}

const char *nexsrv_req_client(const struct nexsrv_req *req)
{
	return req->client;
}

const char *nexsrv_req_body(const struct nexsrv_req *req, size_t *len)
{
	if (len)
		*len = req->body_len;
	return req->body ? req->body : "";
}

void nexsrv_req_set_caller(struct nexsrv_req *req, void *caller, void (*free_fn)(void *))
{
	if (req->caller && req->caller_free)
		req->caller_free(req->caller);
	req->caller = caller;
	req->caller_free = free_fn;
}

void *nexsrv_req_caller(const struct nexsrv_req *req)
{
	return req->caller;
}

int nexsrv_req_set_caller_key(struct nexsrv_req *req, const void *key, size_t len)
{
	if (!key || len == 0 || len > sizeof(req->caller_key))
		return -EINVAL;
	memcpy(req->caller_key, key, len);
	req->caller_key_len = len;
	return 0;
}

struct nexsrv_http *nexsrv_req_http(const struct nexsrv_req *req)
{
	return req->http;
}

/* Header names and values MHD would refuse, or that we set ourselves. */
static bool header_ok(const char *name, const char *value)
{
	static const char *const reserved[] = { "Content-Length", "Transfer-Encoding", "Connection",
						NULL };

	if (!name || !value || !*name || strcspn(name, ":\r\n\t ") != strlen(name))
		return false;
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return false;
	for (size_t i = 0; reserved[i]; i++)
		if (strcasecmp(name, reserved[i]) == 0)
			return false;
	return true;
}

int nexsrv_reply_header(struct nexsrv_req *req, const char *name, const char *value)
{
	struct hdr *hdrs;
	char *n, *v;

	if (!header_ok(name, value))
		return -EINVAL;
	if (req->queued || req->stream)
		return -EALREADY;
	hdrs = realloc(req->hdrs, (req->n_hdrs + 1) * sizeof(*hdrs));
	if (!hdrs)
		return -ENOMEM;
	req->hdrs = hdrs;
	n = strdup(name);
	v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return -ENOMEM;
	}
	hdrs[req->n_hdrs].name = n;
	hdrs[req->n_hdrs].value = v;
	req->n_hdrs++;
	return 0;
}

bool nexsrv_req_has_header(const struct nexsrv_req *req, const char *name)
{
	for (size_t i = 0; i < req->n_hdrs; i++)
		if (strcasecmp(req->hdrs[i].name, name) == 0)
			return true;
	return false;
}

/* Takes over data (malloc'd); the content type is only recorded as a header. */
static int reply_take(struct nexsrv_req *req, unsigned status, const char *content_type, char *data,
		      size_t len)
{
	if (req->replied) {
		free(data);
		return -EALREADY;
	}
	if (status < 100 || status > 599)
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	if (!nexsrv_req_has_header(req, MHD_HTTP_HEADER_CONTENT_TYPE) &&
	    nexsrv_reply_header(req, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) < 0) {
		free(data);
		return -ENOMEM;
	}
	req->replied = true;
	req->status = status;
	req->resp = data;
	req->resp_len = len;
	return 0;
}

int nexsrv_reply_raw(struct nexsrv_req *req, unsigned status, const char *content_type,
		     const void *data, size_t len)
{
	char *copy = malloc(len ? len : 1);

	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, data, len);
	return reply_take(req, status, content_type, copy, len);
}

int nexsrv_reply_json(struct nexsrv_req *req, unsigned status, struct json_object *obj)
{
	char *text;

	if (req->replied) {
		json_object_put(obj);
		return -EALREADY;
	}
	text = nx_json_to_string(obj, NX_JSON_PLAIN);
	json_object_put(obj);
	if (!text)
		return -ENOMEM;
	return reply_take(req, status, "application/json", text, strlen(text));
}

/* Builds {"error": msg, key1: val1, key2: val2}, leaving out NULL values. */
static struct json_object *error_object(const char *msg, const char *k1, const char *v1,
					const char *k2, const char *v2)
{
	struct json_object *obj = json_object_new_object();

	if (!obj || nx_json_object_add_string(obj, "error", msg) < 0 ||
	    (v1 && nx_json_object_add_string(obj, k1, v1) < 0) ||
	    (v2 && nx_json_object_add_string(obj, k2, v2) < 0)) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

static int reply_error_object(struct nexsrv_req *req, unsigned status, struct json_object *obj)
{
	if (!obj)
		return -ENOMEM;
	return nexsrv_reply_json(req, status, obj);
}

int nexsrv_reply_error(struct nexsrv_req *req, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return reply_error_object(req, status, error_object(msg, NULL, NULL, NULL, NULL));
}

int nexsrv_reply_validation(struct nexsrv_req *req, const char *error, const char *field,
			    const char *reason)
{
	return reply_error_object(
		req, MHD_HTTP_BAD_REQUEST,
		error_object(error ? error : "validation error", "field", field, "reason", reason));
}

int nexsrv_reply_not_found(struct nexsrv_req *req, const char *resource)
{
	return reply_error_object(req, MHD_HTTP_NOT_FOUND,
				  error_object("not found", "resource", resource, NULL, NULL));
}

int nexsrv_req_json(struct nexsrv_req *req, struct json_object **out)
{
	struct nx_err err = { "" };

	if (!req->json) {
		req->json = nx_json_parse(req->body ? req->body : "", req->body_len,
					  NX_JSON_DEFAULT_DEPTH, &err);
		if (!req->json) {
			int rc = errno ? -errno : -EINVAL;

			nexsrv_reply_error(req, MHD_HTTP_BAD_REQUEST, "request json is invalid: %s",
					   err.msg[0] ? err.msg : "malformed");
			return rc;
		}
	}
	*out = req->json;
	return 0;
}

/* ======================================================================================
 * libmicrohttpd callbacks
 */

static const char *method_label(const char *method)
{
	static const char *const known[] = { "GET",   "HEAD",	"POST",	  "PUT",
					     "PATCH", "DELETE", "OPTIONS" };

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(method, known[i]) == 0)
			return known[i];
	return "OTHER";
}

static void client_address(struct MHD_Connection *conn, char *buf, size_t size)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	nx_strlcpy(buf, "?", size);
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
			  (socklen_t)size);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
			&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a))
			inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)size);
		else
			inet_ntop(AF_INET6, a, buf, (socklen_t)size);
	}
}

static const struct sockaddr *client_sockaddr(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	return ci ? ci->client_addr : NULL;
}

/*
 * The rate limit (see nexsrv_http.h): takes one token from the bucket of the client's
 * address (caller false), or from the verified caller's (caller true: the key the auth hook
 * set; a hook that set none has the request charged to the client's address in the caller
 * tier).  True when the request may go on; false after replying 429 with Retry-After.
 */
static bool rate_allow(struct nexsrv_req *req, bool caller)
{
	struct nexsrv_http *http = req->http;
	unsigned char key[NEXSRV_RATELIMIT_ADDRESS_KEY_MAX];
	uint64_t retry_ms = 0;
	char secs[24];
	int rc = 0;

	pthread_rwlock_rdlock(&http->rl_lock);
	if (http->ratelimit && !caller) {
		rc = nexsrv_ratelimit_take_address(http->ratelimit, client_sockaddr(req->conn),
						   &retry_ms);
	} else if (http->ratelimit && req->caller_key_len) {
		rc = nexsrv_ratelimit_take_caller(http->ratelimit, req->caller_key,
						  req->caller_key_len, &retry_ms);
	} else if (http->ratelimit) {
		size_t len = nexsrv_ratelimit_address_key(client_sockaddr(req->conn), key);

		rc = nexsrv_ratelimit_take_caller(http->ratelimit, key, len, &retry_ms);
	}
	pthread_rwlock_unlock(&http->rl_lock);
	if (rc != -EAGAIN)
		return true;
	nx_debug(&dbg_nexsrv_api, "%s: rate limited by the %s", req->client,
		 caller ? "caller's bucket" : "client address's bucket");
	snprintf(secs, sizeof(secs), "%llu", (unsigned long long)((retry_ms + 999) / 1000));
	nexsrv_metric_add(http->m_rate_limited, NULL, 1);
	nexsrv_reply_header(req, MHD_HTTP_HEADER_RETRY_AFTER, secs);
	nexsrv_reply_error(req, MHD_HTTP_TOO_MANY_REQUESTS, "too many requests");
	return false;
}

/* MHD's logger: start-up messages explain a failed start; later ones are client noise
 * (resets, bad TLS handshakes) for the api debug switch. */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct nexsrv_http *http = cls;
	char msg[300];
	size_t len;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r' || msg[len - 1] == '.'))
		msg[--len] = '\0';
	if (__atomic_load_n(&http->starting, __ATOMIC_SEQ_CST)) {
		nx_strlcpy(http->start_msg, msg, sizeof(http->start_msg));
		nx_info("http: libmicrohttpd: %s", msg);
	} else {
		nx_debug(&dbg_nexsrv_api, "libmicrohttpd: %s", msg);
	}
}

/* The connection budget (nexsrv_conns.h): MHD asks before it takes a connection... */
static enum MHD_Result mhd_accept(void *cls, const struct sockaddr *sa, socklen_t len)
{
	struct nexsrv_http *http = cls;
	struct nexsrv_conn_addr a;

	if (http_stopping(http))
		return MHD_NO; /* (stands in for MHD_quiesce_daemon: see nexsrv_http_stop) */
	nexsrv_conn_addr_from(sa, len, &a);
	if (nexsrv_conns_allow(http->conns, &a))
		return MHD_YES;
	nx_debug(&dbg_nexsrv_api, "connection refused: at the connection limit (%u in all)",
		 nexsrv_conns_total(http->conns));
	return MHD_NO;
}

/* ...and says when it has one, and when not any more (a stream that took the socket then
 * holds the connection's count). */
static void mhd_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			   enum MHD_ConnectionNotificationCode code)
{
	struct nexsrv_http *http = cls;
	struct conn_slot *slot = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

		slot = calloc(1, sizeof(*slot)); /* without memory: not counted */
		if (slot) {
			nexsrv_conn_addr_from(ci ? ci->client_addr : NULL,
					      sizeof(struct sockaddr_storage), &slot->addr);
			slot->counted = nexsrv_conns_add(http->conns, &slot->addr) == 0;
		}
		*socket_context = slot;
	} else if (slot) {
		if (slot->counted)
			nexsrv_conns_remove(http->conns, &slot->addr);
		free(slot);
		*socket_context = NULL;
	}
}

/* Keeps MHD from decoding the path: it is split into segments first, then decoded. */
static size_t mhd_unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

/* The first callback of a request: keeps the raw target and starts the request. */
static void *mhd_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct nexsrv_req *req = calloc(1, sizeof(*req));

	if (!req)
		return NULL;
	req->http = cls;
	req->conn = conn;
	req->start_ns = nexsrv_monotonic_ns(NULL);
	req->uri = strdup(uri ? uri : "");
	if (!req->uri) {
		free(req);
		return NULL;
	}
	return req;
}

static void req_free(struct nexsrv_req *req)
{
	if (req->stream && !req->stream_handed)
		nexsrv_stream_detach(req->stream);
	if (req->caller && req->caller_free)
		req->caller_free(req->caller);
	json_object_put(req->json);
	nexsrv_path_fini(&req->path);
	nexsrv_query_fini(&req->query);
	for (size_t i = 0; i < req->n_hdrs; i++) {
		free(req->hdrs[i].name);
		free(req->hdrs[i].value);
	}
	free(req->hdrs);
	free(req->resp);
	free(req->body);
	free(req->raw_path);
	free(req->uri);
	free(req);
}

static void mhd_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			  enum MHD_RequestTerminationCode toe)
{
	struct nexsrv_http *http = cls;
	struct nexsrv_req *req = *con_cls;

	(void)conn;
	*con_cls = NULL;
	if (!req)
		return;
	if (req->begun) {
		const char *route = req->routed ? req->match.route->pattern : "unmatched";
		double secs = (double)(nexsrv_monotonic_ns(NULL) - req->start_ns) / 1e9;
		char code[8], path[160], method[24];
		const char *labels[3] = { req->method_label, route, code };

		snprintf(code, sizeof(code), "%u", req->queued ? req->status : 0);
		nexsrv_metric_add(http->m_requests, labels, 1);
		if (!req->stream)
			nexsrv_metric_observe(http->m_duration, labels, secs);
		nx_debug(&dbg_nexsrv_api, "%s \"%s %s\" %s %.3f ms%s%s", req->client,
			 nx_str_printable(method, sizeof(method), req->method),
			 nx_str_printable(path, sizeof(path), req->uri), code, secs * 1e3,
			 req->stream ? " stream" : "",
			 toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
			 : req->stream && nexsrv_stream_own(req->stream)
				 ? " (socket kept by the stream)"
				 : " (not completed)");
	}
	if (req->in_flight) {
		nexsrv_metric_add(http->m_in_flight, NULL, -1);
		pthread_mutex_lock(&http->lock);
		if (--http->in_flight == 0)
			pthread_cond_broadcast(&http->idle);
		pthread_mutex_unlock(&http->lock);
	}
	req_free(req);
}

/* Hands the reply (or the stream) to MHD. */
static enum MHD_Result req_queue(struct nexsrv_req *req)
{
	struct MHD_Response *resp;
	enum MHD_Result rc;

	if (!req->replied) {
		reply_take(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json",
			   strdup(ERR_INTERNAL_BODY), strlen(ERR_INTERNAL_BODY));
		if (!req->resp) {
			req->replied = true;
			req->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		}
	}
	if (req->stream) {
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
							 nexsrv_stream_reader, req->stream,
							 nexsrv_stream_response_free);
		if (resp)
			req->stream_handed = true;
	} else if (req->resp) {
		resp = MHD_create_response_from_buffer(req->resp_len, req->resp,
						       MHD_RESPMEM_MUST_FREE);
		if (resp)
			req->resp = NULL;
	} else {
		resp = MHD_create_response_from_buffer(strlen(ERR_INTERNAL_BODY),
						       (void *)ERR_INTERNAL_BODY,
						       MHD_RESPMEM_PERSISTENT);
	}
	if (!resp)
		return MHD_NO;
	for (size_t i = 0; i < req->n_hdrs; i++)
		MHD_add_response_header(resp, req->hdrs[i].name, req->hdrs[i].value);
	if (req->close_after)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	rc = MHD_queue_response(req->conn, req->status, resp);
	MHD_destroy_response(resp);
	req->queued = rc == MHD_YES;
	if (req->stream) {
		/* A stream may stay open for days: keep nothing it no longer needs. */
		json_object_put(req->json);
		req->json = NULL;
		free(req->body);
		req->body = NULL;
		req->body_len = req->body_cap = 0;
		for (size_t i = 0; i < req->n_hdrs; i++) {
			free(req->hdrs[i].name);
			free(req->hdrs[i].value);
		}
		free(req->hdrs);
		req->hdrs = NULL;
		req->n_hdrs = 0;
	}
	return rc;
}

enum begin_result {
	BEGIN_CONTINUE,	   /* read the body, then run the handler */
	BEGIN_REPLY_NOW,   /* answered; the body is not read and the connection closes */
	BEGIN_REPLY_LATER, /* answered; the body is read and dropped, keep-alive survives */
};

/*
 * What happens on the request line and headers: see the steps in nexsrv_http.h.  A refusal
 * is normally sent after the body has been read (and dropped): MHD closes the connection
 * after a reply queued this early, and a client still sending would then lose the reply to
 * a reset.  Only a client waiting for 100-continue, a body too large to be worth reading,
 * and a stopping server get the early reply.
 */
static enum begin_result req_begin(struct nexsrv_req *req, const char *method)
{
	struct nexsrv_http *http = req->http;
	struct nx_err err = { "" };
	char *q = strchr(req->uri, '?');
	size_t plen = q ? (size_t)(q - req->uri) : strlen(req->uri);
	enum nexsrv_match_result mr = NEXSRV_MATCH_NOT_FOUND;
	const char *cl = nexsrv_req_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *expect = nexsrv_req_header(req, MHD_HTTP_HEADER_EXPECT);
	enum begin_result refuse = expect && strcasecmp(expect, "100-continue") == 0
					   ? BEGIN_REPLY_NOW
					   : BEGIN_REPLY_LATER;
	unsigned long long body_size;
	nexsrv_auth_fn auth_fn;
	void *auth_arg;
	int rc;

	req->method = method;
	req->method_label = method_label(method);
	client_address(req->conn, req->client, sizeof(req->client));
	req->raw_path = strndup(req->uri, plen);
	if (!req->raw_path) {
		nexsrv_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return BEGIN_REPLY_NOW;
	}
	rc = nexsrv_path_parse(req->uri, plen, &req->path, &err);
	if (rc == 0 && q)
		rc = nexsrv_query_parse(q + 1, strlen(q + 1), &req->query, &err);
	if (rc == 0) {
		mr = nexsrv_router_match(http->router, method, &req->path, &req->match);
		req->routed = mr == NEXSRV_MATCH_OK;
	}

	if (http_stopping(http)) {
		req->close_after = true;
		nexsrv_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the service is stopping");
		return BEGIN_REPLY_NOW;
	}

	if (cl && nx_parse_uint(cl, 0, UINT64_MAX, &body_size, NULL) == 0 &&
	    body_size > http->body_limit) {
		req->too_large = true;
		if (refuse == BEGIN_REPLY_NOW ||
		    body_size > (unsigned long long)http->body_limit * NEXSRV_HTTP_DISCARD_FACTOR) {
			req->close_after = true;
			nexsrv_reply_error(req, MHD_HTTP_CONTENT_TOO_LARGE,
					   "request body too large (limit %zu bytes)",
					   http->body_limit);
			return BEGIN_REPLY_NOW;
		}
	}

	if (!rate_allow(req, false))
		return refuse;

	if (rc < 0) {
		nexsrv_reply_error(req, MHD_HTTP_BAD_REQUEST, "%s", err.msg);
		return refuse;
	}
	if (mr == NEXSRV_MATCH_NOT_FOUND) {
		nexsrv_reply_error(req, MHD_HTTP_NOT_FOUND, "not found");
		return refuse;
	}
	if (mr == NEXSRV_MATCH_BAD_METHOD) {
		nexsrv_reply_header(req, MHD_HTTP_HEADER_ALLOW, req->match.allow);
		nexsrv_reply_error(req, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
		return refuse;
	}

	if (req->match.route->flags & NEXSRV_ROUTE_AUTH) {
		pthread_mutex_lock(&http->lock);
		auth_fn = http->auth_fn;
		auth_arg = http->auth_arg;
		pthread_mutex_unlock(&http->lock);
		rc = auth_fn ? auth_fn(req, auth_arg) : -EACCES;
		if (rc < 0 || req->replied) {
			if (!req->replied) {
				nexsrv_reply_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
						    "Bearer");
				nexsrv_reply_error(req, MHD_HTTP_UNAUTHORIZED, "unauthorized");
			}
			return refuse;
		}
		if (!rate_allow(req, true))
			return refuse;
	}
	return BEGIN_CONTINUE;
}

/* Collects body bytes, or drops them once the request is refused or over the limit;
 * false when so much was dropped that the connection should be closed instead. */
static bool req_body(struct nexsrv_req *req, const char *data, size_t len)
{
	size_t limit = req->http->body_limit;

	if (!req->replied && !req->too_large && len > limit - req->body_len) {
		req->too_large = true;
		req->dropped = req->body_len;
		free(req->body);
		req->body = NULL;
		req->body_len = req->body_cap = 0;
	}
	if (req->replied || req->too_large) {
		req->dropped += len;
		return req->dropped <= (uint64_t)limit * NEXSRV_HTTP_DISCARD_FACTOR;
	}
	if (req->body_len + len + 1 > req->body_cap) {
		size_t cap = req->body_cap ? req->body_cap : 4096;
		char *body;

		while (cap < req->body_len + len + 1)
			cap *= 2;
		if (cap > limit + 1)
			cap = limit + 1;
		body = realloc(req->body, cap);
		if (!body)
			return false;
		req->body = body;
		req->body_cap = cap;
	}
	memcpy(req->body + req->body_len, data, len);
	req->body_len += len;
	req->body[req->body_len] = '\0';
	return true;
}

static enum MHD_Result mhd_request(void *cls, struct MHD_Connection *conn, const char *url,
				   const char *method, const char *version, const char *upload_data,
				   size_t *upload_data_size, void **con_cls)
{
	struct nexsrv_http *http = cls;
	struct nexsrv_req *req = *con_cls;

	(void)url;
	if (!req)
		return MHD_NO; /* out of memory in mhd_uri_log */
	if (!req->begun) {
		req->begun = true;
		req->http10 = strcmp(version, MHD_HTTP_VERSION_1_0) == 0;
		req->http11 = strcmp(version, MHD_HTTP_VERSION_1_1) == 0;
		req->in_flight = true;
		pthread_mutex_lock(&http->lock);
		http->in_flight++;
		pthread_mutex_unlock(&http->lock);
		nexsrv_metric_add(http->m_in_flight, NULL, 1);
		if (req_begin(req, method) == BEGIN_REPLY_NOW)
			return req_queue(req);
		return MHD_YES;
	}
	if (*upload_data_size) {
		bool ok = req_body(req, upload_data, *upload_data_size);

		*upload_data_size = 0;
		return ok ? MHD_YES : MHD_NO;
	}
	if (req->replied) {
		/* refused before the body */
	} else if (req->too_large) {
		nexsrv_reply_error(req, MHD_HTTP_CONTENT_TOO_LARGE,
				   "request body too large (limit %zu bytes)", http->body_limit);
	} else {
		int rc = req->match.route->handler(req, req->match.route->arg);

		if (!req->replied)
			nx_warn("http: %s %s: handler %s without a reply", req->method,
				req->match.route->pattern, rc < 0 ? strerror(-rc) : "returned");
	}
	return req_queue(req);
}

/* ======================================================================================
 * Start and stop
 */

/* "HOST:PORT" / "[V6]:PORT" into host and port. */
static int listen_parse(const char *s, char *host, size_t size, uint16_t *port, bool *v6,
			struct nx_err *err)
{
	const char *colon;
	unsigned long long p;
	size_t hlen;

	*v6 = false;
	if (!s || !*s)
		return nx_err_set(err, EINVAL, "listen: no address given");
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return nx_err_set(err, EINVAL, "listen %s: expected [IPV6]:PORT", s);
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= size)
			return nx_err_set(err, EINVAL, "listen %s: bad IPv6 address", s);
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		colon = close + 1;
		*v6 = true;
	} else {
		colon = strrchr(s, ':');
		if (!colon || colon == s)
			return nx_err_set(err, EINVAL, "listen %s: expected HOST:PORT", s);
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen))
			return nx_err_set(err, EINVAL,
					  "listen %s: an IPv6 address needs brackets: [ADDR]:PORT",
					  s);
		if (hlen >= size)
			return nx_err_set(err, EINVAL, "listen %s: host name too long", s);
		memcpy(host, s, hlen);
		host[hlen] = '\0';
	}
	if (nx_parse_uint(colon + 1, 0, 65535, &p, NULL) < 0)
		return nx_err_set(err, EINVAL, "listen %s: bad port \"%s\" (expected 0-65535)", s,
				  colon + 1);
	*port = (uint16_t)p;
	return 0;
}

/* Resolves and binds the listen address; the listening socket or -errno with err set. */
static int listen_open(const char *listen_addr, bool *is_v6, struct nx_err *err)
{
	char host[256], portstr[8];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *res = NULL, *ai;
	uint16_t port = 0;
	bool v6 = false;
	int rc, fd = -1, saved = 0;

	if (listen_parse(listen_addr, host, sizeof(host), &port, &v6, err) < 0)
		return -EINVAL;
	snprintf(portstr, sizeof(portstr), "%u", port);
	hints.ai_family = v6 ? AF_INET6 : AF_UNSPEC;
	if (v6)
		hints.ai_flags |= AI_NUMERICHOST;
	rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0)
		return nx_err_set(err, EINVAL, "listen %s: %s", listen_addr, gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		int one = 1;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6) {
			const struct sockaddr_in6 *sin6 = (const void *)ai->ai_addr;
			/* [::] serves both families; a specific IPv6 address only itself */
			int v6only = IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr) ? 0 : 1;

			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
		}
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 511) == 0) {
			*is_v6 = ai->ai_family == AF_INET6;
			break;
		}
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return nx_err_set(err, saved ? saved : EADDRNOTAVAIL, "cannot listen on %s: %s",
				  listen_addr, strerror(saved ? saved : EADDRNOTAVAIL));
	return fd;
}

/* Reads a PEM file whole (NUL-terminated). */
static int read_pem(const char *what, const char *path, char **out, size_t *outlen,
		    struct nx_err *err)
{
	struct stat st;
	size_t len = 0;
	char *buf = NULL;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return nx_err_set(err, errno, "%s %s: %s", what, path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = nx_err_set(err, EINVAL, "%s %s: not a regular file", what, path);
		goto out;
	}
	if (st.st_size <= 0 || st.st_size > NEXSRV_HTTP_PEM_MAX) {
		rc = nx_err_set(err, EINVAL, "%s %s: empty or larger than %d bytes", what, path,
				NEXSRV_HTTP_PEM_MAX);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = nx_err_set(err, ENOMEM, "%s: out of memory", what);
		goto out;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = nx_err_set(err, n < 0 ? errno : EIO, "%s %s: %s", what, path,
					n < 0 ? strerror(errno) : "file shrank while reading");
			goto out;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
out:
	if (buf) {
		nx_memzero_explicit(buf, len);
		free(buf);
	}
	close(fd);
	return rc;
}

static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Checks that the PEMs hold a certificate and its private key, to say so clearly. */
static int tls_check(const char *cert_path, const char *cert_pem, const char *key_path,
		     const char *key_pem, struct nx_err *err)
{
	BIO *cb = BIO_new_mem_buf(cert_pem, -1);
	BIO *kb = BIO_new_mem_buf(key_pem, -1);
	X509 *x = cb ? PEM_read_bio_X509(cb, NULL, no_password, NULL) : NULL;
	EVP_PKEY *pk = kb ? PEM_read_bio_PrivateKey(kb, NULL, no_password, NULL) : NULL;
	int rc = 0;

	if (!x)
		rc = nx_err_set(err, EINVAL, "tls-cert %s: no PEM certificate in it", cert_path);
	else if (!pk)
		rc = nx_err_set(err, EINVAL,
				"tls-key %s: no PEM private key in it (encrypted keys are not "
				"supported)",
				key_path);
	else if (X509_check_private_key(x, pk) != 1)
		rc = nx_err_set(err, EINVAL, "tls-key %s does not belong to tls-cert %s", key_path,
				cert_path);
	EVP_PKEY_free(pk);
	X509_free(x);
	BIO_free(kb);
	BIO_free(cb);
	ERR_clear_error();
	return rc;
}

static int metrics_init(struct nexsrv_http *http, struct nx_err *err)
{
	static const char *const req_labels[] = { "method", "route", "code", NULL };
	static const char *const dur_labels[] = { "method", "route", NULL };
	struct nexsrv_metrics *m = http->metrics;

	http->m_requests = nexsrv_metrics_counter(m, "http_requests_total",
						  "HTTP requests answered, by route and status.",
						  req_labels, err);
	http->m_duration = nexsrv_metrics_histogram(
		m, "http_request_duration_seconds",
		"Time from the request line to the end of the response (streams excluded).",
		dur_labels, nexsrv_metric_default_buckets, nexsrv_metric_default_buckets_count,
		err);
	http->m_in_flight = nexsrv_metrics_gauge(m, "http_requests_in_flight",
						 "HTTP requests being served.", NULL, err);
	http->m_streams = nexsrv_metrics_gauge(
		m, "http_streams_open", "Streaming responses (watch streams) open.", NULL, err);
	http->m_rate_limited = nexsrv_metrics_counter(
		m, "http_rate_limited_total", "Requests refused by the rate limit.", NULL, err);
	if (!http->m_requests || !http->m_duration || !http->m_in_flight || !http->m_streams ||
	    !http->m_rate_limited)
		return -EINVAL;
	return 0;
}

static void http_free(struct nexsrv_http *http)
{
	if (http->mon_running) {
		uint64_t one = 1;

		__atomic_store_n(&http->mon_stop, true, __ATOMIC_SEQ_CST);
		if (write(http->mon_wakefd, &one, sizeof(one)) < 0)
			nx_err("http: cannot wake the stream monitor: %s", strerror(errno));
		pthread_join(http->mon_thread, NULL);
	}
	if (http->mon_epfd >= 0)
		close(http->mon_epfd);
	if (http->mon_wakefd >= 0)
		close(http->mon_wakefd);
	nexsrv_router_free(http->router);
	nexsrv_ratelimit_tiers_free(http->ratelimit);
	if (http->own_metrics)
		nexsrv_metrics_free(http->metrics);
	free(http->cert_pem);
	if (http->key_pem) {
		nx_memzero_explicit(http->key_pem, http->key_len);
		free(http->key_pem);
	}
	pthread_cond_destroy(&http->idle);
	pthread_rwlock_destroy(&http->rl_lock);
	pthread_mutex_destroy(&http->lock);
	pthread_mutex_destroy(&http->streams_lock);
	pthread_mutex_destroy(&http->reap_lock);
	nexsrv_conns_free(http->conns);
	free(http->by_id);
	free(http);
}

/* As many connections as descriptors, less a reserve for the database pool, the VTY, logs
 * and the listeners. */
static unsigned default_max_connections(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return NEXSRV_HTTP_FALLBACK_MAX_CONNECTIONS;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > NEXSRV_HTTP_MAX_CONNECTIONS_CAP)
		return NEXSRV_HTTP_MAX_CONNECTIONS_CAP;
	if (rl.rlim_cur < 2 * NEXSRV_HTTP_FD_RESERVE)
		return rl.rlim_cur > 128 ? (unsigned)rl.rlim_cur - 64 : 64;
	return (unsigned)rl.rlim_cur - NEXSRV_HTTP_FD_RESERVE;
}

struct nexsrv_http *nexsrv_http_start(const struct nexsrv_http_config *cfg, struct nx_err *err)
{
	bool has_cert = cfg->tls_cert && cfg->tls_cert[0];
	bool has_key = cfg->tls_key && cfg->tls_key[0];
	struct nexsrv_http *http;
	struct MHD_OptionItem opts[24];
	struct epoll_event wake = { .events = EPOLLIN, .data.u64 = MONITOR_WAKE_ID };
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
			 MHD_USE_ERROR_LOG;
	size_t n = 0, cert_len = 0;
	int lfd = -1, mhd_fd;
	bool v6 = false;
	unsigned threads = cfg->threads ? cfg->threads : NEXSRV_HTTP_DEFAULT_THREADS;
	unsigned max_conn = cfg->max_connections ? cfg->max_connections : default_max_connections();
	struct stat st_mine, st_mhd;

	if (has_cert != has_key) {
		nx_err_set(err, EINVAL, "HTTPS needs both tls-cert and tls-key");
		return NULL;
	}
	if (!has_cert && !cfg->insecure_http) {
		nx_err_set(err, EINVAL,
			   "refusing to serve the API without TLS: set tls-cert and tls-key, or "
			   "insecure-http to serve plain HTTP");
		return NULL;
	}
	if (has_cert && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		nx_err_set(err, ENOTSUP, "this libmicrohttpd is built without TLS support");
		return NULL;
	}
	if (cfg->rate_limit_rps > NEXSRV_RATELIMIT_RATE_MAX ||
	    cfg->rate_limit_burst > NEXSRV_RATELIMIT_BURST_MAX) {
		nx_err_set(err, EINVAL, "rate limit out of range");
		return NULL;
	}

	http = calloc(1, sizeof(*http));
	if (!http) {
		nx_err_set(err, ENOMEM, "HTTP server: out of memory");
		return NULL;
	}
	pthread_mutex_init(&http->lock, NULL);
	pthread_rwlock_init(&http->rl_lock, NULL);
	pthread_mutex_init(&http->streams_lock, NULL);
	pthread_mutex_init(&http->reap_lock, NULL);
	pthread_cond_init(&http->idle, NULL);
	http->mon_epfd = http->mon_wakefd = -1;
	nx_strlcpy(http->listen, cfg->listen ? cfg->listen : "", sizeof(http->listen));
	http->body_limit = cfg->body_limit ? cfg->body_limit : NEXSRV_HTTP_DEFAULT_BODY_LIMIT;
	http->stop_timeout_ms =
		cfg->stop_timeout_ms ? cfg->stop_timeout_ms : NEXSRV_HTTP_DEFAULT_STOP_TIMEOUT_MS;
	http->stream_queue_limit = cfg->stream_queue_limit ? cfg->stream_queue_limit
							   : NEXSRV_HTTP_DEFAULT_STREAM_QUEUE;
	http->metrics = cfg->metrics;
	if (!http->metrics) {
		http->metrics = nexsrv_metrics_new();
		http->own_metrics = true;
	}
	http->router = nexsrv_router_new();
	http->by_id = calloc(STREAM_INDEX_MIN, sizeof(*http->by_id));
	http->by_id_cap = STREAM_INDEX_MIN;
	http->conns =
		nexsrv_conns_new(max_conn, cfg->per_ip_connections ? cfg->per_ip_connections
								   : NEXSRV_HTTP_DEFAULT_PER_IP);
	if (!http->metrics || !http->router || !http->by_id || !http->conns) {
		nx_err_set(err, ENOMEM, "HTTP server: out of memory");
		goto fail;
	}
	if (metrics_init(http, err) < 0)
		goto fail;
	if (cfg->rate_limit_rps &&
	    nexsrv_http_set_rate_limit(http, cfg->rate_limit_rps, cfg->rate_limit_burst, err) < 0)
		goto fail;

	if (has_cert) {
		if (read_pem("tls-cert", cfg->tls_cert, &http->cert_pem, &cert_len, err) < 0 ||
		    read_pem("tls-key", cfg->tls_key, &http->key_pem, &http->key_len, err) < 0 ||
		    tls_check(cfg->tls_cert, http->cert_pem, cfg->tls_key, http->key_pem, err) < 0)
			goto fail;
	}

	http->mon_epfd = epoll_create1(EPOLL_CLOEXEC);
	http->mon_wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (http->mon_epfd < 0 || http->mon_wakefd < 0 ||
	    epoll_ctl(http->mon_epfd, EPOLL_CTL_ADD, http->mon_wakefd, &wake) < 0) {
		nx_err_set(err, errno, "HTTP server: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&http->mon_thread, NULL, nexsrv_stream_monitor_main, http) != 0) {
		nx_err_set(err, EAGAIN, "HTTP server: cannot start the stream monitor thread");
		goto fail;
	}
	http->mon_running = true;

	if (cfg->setup && cfg->setup(http, cfg->setup_arg, err) < 0)
		goto fail;

	lfd = listen_open(http->listen, &v6, err);
	if (lfd < 0)
		goto fail;
	/* MHD closes the socket it was given on some failures and not on others: give it a
	 * duplicate, and close that too only if it is still the same socket afterwards. */
	mhd_fd = fcntl(lfd, F_DUPFD_CLOEXEC, 0);
	if (mhd_fd < 0) {
		nx_err_set(err, errno, "HTTP server: %s", strerror(errno));
		goto fail;
	}

	if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
		flags |= MHD_USE_EPOLL;
	else
		flags |= MHD_USE_POLL;
	if (has_cert) {
		flags |= MHD_USE_TLS;
	} else {
		/* MHD then closes a connection without shutting its socket down, which lets a
		 * stream keep the socket (stream_take_socket). */
		flags |= MHD_USE_TURBO;
		http->own_streams = true;
	}
	if (v6)
		flags |= MHD_USE_IPv6;
#define OPT(o, v, p)                                                 \
	opts[n++] = (struct MHD_OptionItem){ .option = (o),          \
					     .value = (intptr_t)(v), \
					     .ptr_value = (void *)(p) }
	OPT(MHD_OPTION_EXTERNAL_LOGGER, (void *)mhd_log, http); /* first: MHD insists */
	OPT(MHD_OPTION_LISTEN_SOCKET, mhd_fd, NULL);
	OPT(MHD_OPTION_THREAD_POOL_SIZE, threads, NULL);
	OPT(MHD_OPTION_CONNECTION_LIMIT, max_conn, NULL); /* (mhd_accept counts the streams too) */
	OPT(MHD_OPTION_NOTIFY_CONNECTION, (void *)mhd_connection, http);
	OPT(MHD_OPTION_CONNECTION_TIMEOUT,
	    cfg->timeout_s ? cfg->timeout_s : NEXSRV_HTTP_DEFAULT_TIMEOUT_S, NULL);
	OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    cfg->memory_limit ? cfg->memory_limit : NEXSRV_HTTP_DEFAULT_MEMORY_LIMIT, NULL);
	OPT(MHD_OPTION_NOTIFY_COMPLETED, (void *)mhd_completed, http);
	OPT(MHD_OPTION_URI_LOG_CALLBACK, (void *)mhd_uri_log, http);
	OPT(MHD_OPTION_UNESCAPE_CALLBACK, (void *)mhd_unescape_none, http);
	if (has_cert) {
		OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, http->cert_pem);
		OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, http->key_pem);
		OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, TLS_PRIORITIES);
	}
	OPT(MHD_OPTION_END, 0, NULL);
#undef OPT

	__atomic_store_n(&http->starting, true, __ATOMIC_SEQ_CST);
	http->mhd = MHD_start_daemon(flags, 0, mhd_accept, http, mhd_request, http,
				     MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	__atomic_store_n(&http->starting, false, __ATOMIC_SEQ_CST);
	if (!http->mhd) {
		if (fstat(mhd_fd, &st_mhd) == 0 && fstat(lfd, &st_mine) == 0 &&
		    st_mhd.st_ino == st_mine.st_ino && st_mhd.st_dev == st_mine.st_dev)
			close(mhd_fd);
		nx_err_set(err, EINVAL, "HTTP server on %s: %s", http->listen,
			   http->start_msg[0] ? http->start_msg : "libmicrohttpd failed to start");
		goto fail;
	}
	close(lfd);
	lfd = -1;
	{
		const union MHD_DaemonInfo *di =
			MHD_get_daemon_info(http->mhd, MHD_DAEMON_INFO_BIND_PORT);

		http->port = di ? di->port : 0;
	}
	nx_notice("http: serving the API on %s (port %u) over %s", http->listen, http->port,
		  has_cert ? "HTTPS" : "plain HTTP (insecure-http)");
	return http;
fail:
	if (lfd >= 0)
		close(lfd);
	http_free(http);
	return NULL;
}

uint16_t nexsrv_http_port(const struct nexsrv_http *http)
{
	return http ? http->port : 0;
}

const char *nexsrv_http_listen(const struct nexsrv_http *http)
{
	return http ? http->listen : "";
}

bool nexsrv_http_tls(const struct nexsrv_http *http)
{
	return http && http->cert_pem;
}

unsigned long nexsrv_http_streams_open(struct nexsrv_http *http)
{
	unsigned long n;

	if (!http)
		return 0;
	pthread_mutex_lock(&http->streams_lock);
	n = http->n_streams;
	pthread_mutex_unlock(&http->streams_lock);
	return n;
}

struct nexsrv_metrics *nexsrv_http_metrics(struct nexsrv_http *http)
{
	return http->metrics;
}

int nexsrv_http_set_rate_limit(struct nexsrv_http *http, uint32_t rps, uint32_t burst,
			       struct nx_err *err)
{
	struct nexsrv_ratelimit_tiers *old = NULL, *rl = NULL;
	int rc = 0;

	if (!burst)
		burst = rps;
	pthread_rwlock_wrlock(&http->rl_lock);
	if (rps == 0) {
		old = http->ratelimit;
		http->ratelimit = NULL;
	} else if (http->ratelimit) {
		rc = nexsrv_ratelimit_tiers_set(http->ratelimit, rps, burst, err);
	} else {
		rl = nexsrv_ratelimit_tiers_new(
			&(struct nexsrv_ratelimit_config){ .rate = rps, .burst = burst }, err);
		if (rl)
			http->ratelimit = rl;
		else
			rc = -EINVAL;
	}
	pthread_rwlock_unlock(&http->rl_lock);
	/* Takers hold the read lock while they use the tables: nobody uses the old ones now. */
	nexsrv_ratelimit_tiers_free(old);
	return rc;
}

void nexsrv_http_set_ready_check(struct nexsrv_http *http, nexsrv_ready_fn fn, void *arg)
{
	pthread_mutex_lock(&http->lock);
	http->ready_fn = fn;
	http->ready_arg = arg;
	pthread_mutex_unlock(&http->lock);
}

bool nexsrv_http_ready(struct nexsrv_http *http, char *why, size_t why_size)
{
	nexsrv_ready_fn fn;
	void *arg;

	pthread_mutex_lock(&http->lock);
	fn = http->ready_fn;
	arg = http->ready_arg;
	pthread_mutex_unlock(&http->lock);
	if (http_stopping(http)) {
		nx_strlcpy(why, "the service is stopping", why_size);
		return false;
	}
	if (!fn) {
		nx_strlcpy(why, "no database", why_size);
		return false;
	}
	why[0] = '\0';
	return fn(arg, why, why_size);
}

void nexsrv_http_set_auth_hook(struct nexsrv_http *http, nexsrv_auth_fn fn, void *arg)
{
	pthread_mutex_lock(&http->lock);
	http->auth_fn = fn;
	http->auth_arg = arg;
	pthread_mutex_unlock(&http->lock);
}

int nexsrv_http_route_add(struct nexsrv_http *http, const struct nexsrv_route *route,
			  struct nx_err *err)
{
	return nexsrv_router_add(http->router, route, err);
}

void nexsrv_http_stop(struct nexsrv_http *http)
{
	struct timespec deadline;

	if (!http)
		return;
	/* From here mhd_accept turns every new connection away.  Not MHD_quiesce_daemon:
	 * with epoll and a thread pool it races the workers, which take the listening
	 * socket out of their epoll sets themselves once they see it quiesced, and
	 * libmicrohttpd (0.9.75) aborts the process when the loser's removal fails. */
	__atomic_store_n(&http->stopping, true, __ATOMIC_SEQ_CST);
	nexsrv_streams_end_all(http);

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += http->stop_timeout_ms / 1000;
	deadline.tv_nsec += (long)(http->stop_timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&http->lock);
	while (http->in_flight > 0 || http->n_own > 0)
		if (pthread_cond_timedwait(&http->idle, &http->lock, &deadline) == ETIMEDOUT)
			break;
	if (http->in_flight > 0)
		nx_warn("http: stopping with %lu requests still in progress", http->in_flight);
	pthread_mutex_unlock(&http->lock);

	nexsrv_streams_release_all(http);
	/* Streams on their own sockets end now: the monitor closes them and runs their close
	 * callbacks before it stops. */
	pthread_mutex_lock(&http->lock);
	while (http->n_own > 0)
		pthread_cond_wait(&http->idle, &http->lock);
	pthread_mutex_unlock(&http->lock);
	MHD_stop_daemon(http->mhd);
	http->mhd = NULL;
	nx_notice("http: stopped serving on %s", http->listen);
	http_free(http);
}
