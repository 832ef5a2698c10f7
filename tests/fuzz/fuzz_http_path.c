/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for the REST API's request-target parsers (nexsrv_path_parse,
 * nexsrv_query_parse) and the routing table, which see every request line from the
 * network before anything else does.
 *
 * The input is a raw request target, "path?query".  Beyond "does not crash", it checks the
 * contracts: a rejection comes with a message and leaves nothing allocated; what is
 * accepted is valid UTF-8 without NUL (paths: without control characters), no longer than
 * the input, and survives a round trip through percent-encoding; a route match hands out
 * parameters that are exactly the path's segments.  A broken contract aborts.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nexsrv/nexsrv_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int handler(struct nexsrv_req *req, void *arg)
{
	(void)req;
	(void)arg;
	return 0;
}

static const char *const patterns[] = {
	"/",
	"/private/live",
	"/api/vpcs/{id}",
	"/api/vpcs/{id}/events",
	"/api/devices/metadata",
	"/api/devices/{id}",
	"/api/organizations/{org}/users/{uid}",
	"/api/{kind}/{id}/{sub}",
};

static struct nexsrv_router *router(void)
{
	static struct nexsrv_router *r;

	if (!r) {
		r = nexsrv_router_new();
		if (!r)
			abort();
		for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++)
			if (nexsrv_router_add(r,
					      &(struct nexsrv_route){ .method = "GET",
								      .pattern = patterns[i],
								      .handler = handler },
					      NULL) < 0)
				abort();
	}
	return r;
}

static bool utf8_ok(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i], need, cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			need = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			need = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			need = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (len - i <= need)
			return false;
		for (unsigned k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

/* Appends s percent-encoded (everything but unreserved characters) to out at *pos. */
static void encode(char *out, size_t *pos, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			out[(*pos)++] = (char)c;
		} else {
			out[(*pos)++] = '%';
			out[(*pos)++] = hex[c >> 4];
			out[(*pos)++] = hex[c & 15];
		}
	}
}

static void check_path(const char *raw, size_t len)
{
	struct nexsrv_path p, again;
	struct nx_err err;
	struct nexsrv_match m;
	enum nexsrv_match_result res;
	size_t total = 0, pos = 0;
	char *enc;
	int rc;

	err.msg[0] = '\0';
	rc = nexsrv_path_parse(raw, len, &p, &err);
	if (rc < 0) {
		if (err.msg[0] == '\0' || p.buf || p.n)
			abort();
		return;
	}
	if (rc != 0 || p.n < 1 || p.n > NEXSRV_PATH_MAX_SEGMENTS)
		abort();
	for (size_t i = 0; i < p.n; i++) {
		size_t n = strlen(p.seg[i]);

		if (!utf8_ok((const unsigned char *)p.seg[i], n))
			abort();
		for (size_t k = 0; k < n; k++)
			if ((unsigned char)p.seg[i][k] < 0x20 || p.seg[i][k] == 0x7f)
				abort();
		total += n;
	}
	if (total + p.n > len) /* the leading '/' and the separators are gone */
		abort();

	/* round trip: every segment fully encoded parses back to itself */
	enc = malloc(3 * total + p.n + 1);
	if (!enc)
		abort();
	for (size_t i = 0; i < p.n; i++) {
		enc[pos++] = '/';
		encode(enc, &pos, p.seg[i]);
	}
	if (nexsrv_path_parse(enc, pos, &again, NULL) != 0 || again.n != p.n)
		abort();
	for (size_t i = 0; i < p.n; i++)
		if (strcmp(again.seg[i], p.seg[i]) != 0)
			abort();
	nexsrv_path_fini(&again);
	free(enc);

	/* routing: parameters are the path's own segments */
	res = nexsrv_router_match(router(), "GET", &p, &m);
	if (res == NEXSRV_MATCH_OK) {
		size_t found = 0;

		if (!m.route || m.n_params > NEXSRV_ROUTE_MAX_PARAMS)
			abort();
		for (size_t k = 0; k < m.n_params; k++)
			for (size_t i = 0; i < p.n; i++)
				found += m.params[k].value == p.seg[i];
		if (found != m.n_params)
			abort();
	} else if (res == NEXSRV_MATCH_BAD_METHOD) {
		abort(); /* every route here is GET */
	}
	if (nexsrv_router_match(router(), "POST", &p, &m) == NEXSRV_MATCH_OK)
		abort();
	nexsrv_path_fini(&p);
}

static void check_query(const char *raw, size_t len)
{
	struct nexsrv_query q, again;
	struct nx_err err;
	size_t total = 0, pos = 0;
	char *enc;
	int rc;

	err.msg[0] = '\0';
	rc = nexsrv_query_parse(raw, len, &q, &err);
	if (rc < 0) {
		if (err.msg[0] == '\0' || q.buf || q.n)
			abort();
		return;
	}
	if (rc != 0 || q.n > NEXSRV_QUERY_MAX_PARAMS)
		abort();
	for (size_t i = 0; i < q.n; i++) {
		size_t kl = strlen(q.p[i].key), vl = strlen(q.p[i].value);

		if (!utf8_ok((const unsigned char *)q.p[i].key, kl) ||
		    !utf8_ok((const unsigned char *)q.p[i].value, vl))
			abort();
		total += kl + vl;
		/* the first value of a key is what lookups return */
		if (nexsrv_query_get(&q, q.p[i].key) == NULL)
			abort();
	}
	if (total > len)
		abort();

	enc = malloc(3 * total + 2 * q.n + 1);
	if (!enc)
		abort();
	for (size_t i = 0; i < q.n; i++) {
		if (i)
			enc[pos++] = '&';
		encode(enc, &pos, q.p[i].key);
		enc[pos++] = '=';
		encode(enc, &pos, q.p[i].value);
	}
	if (nexsrv_query_parse(enc, pos, &again, NULL) != 0)
		abort();
	/* "=" alone is a pair with an empty key: pairs survive, empty pairs never appear */
	if (again.n != q.n)
		abort();
	for (size_t i = 0; i < q.n; i++)
		if (strcmp(again.p[i].key, q.p[i].key) != 0 ||
		    strcmp(again.p[i].value, q.p[i].value) != 0)
			abort();
	nexsrv_query_fini(&again);
	free(enc);
	nexsrv_query_fini(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *raw = (const char *)data;
	const char *qm = memchr(raw, '?', size);
	size_t plen = qm ? (size_t)(qm - raw) : size;

	check_path(raw, plen);
	if (qm)
		check_query(qm + 1, size - plen - 1);
	return 0;
}
