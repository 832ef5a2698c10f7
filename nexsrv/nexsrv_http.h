/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The HTTP server core of the REST API: listening (HTTPS, or plain HTTP when asked), a
 * routing table, a request/response API for the resource handlers, the limits that keep
 * one client from hurting the others, streaming responses for the watch streams, metrics
 * and an access log.  Built on libmicrohttpd (MHD) with its GnuTLS backend.
 *
 * Threading.  MHD runs its own pool of threads (MHD_USE_INTERNAL_POLLING_THREAD |
 * MHD_USE_EPOLL, cfg.threads of them), each serving many connections.  Handlers run on those
 * threads and may block (a database query).  A streaming response whose queue is empty
 * suspends its connection (MHD_suspend_connection), so an idle watch stream holds no thread.
 * nexsrv_stream_write() from any thread then sends the bytes itself, straight to the socket
 * (one sendmsg; MHD does not touch a suspended connection), except over TLS, whose records
 * are MHD's to write: there it queues them and resumes the connection.  Suspended
 * connections are invisible to MHD, so one extra thread watches their sockets (epoll) to
 * learn when a client goes away, and to send the rest when a slow client's socket takes
 * more.  Nothing here touches the main thread's event loop.
 *
 * A request, step by step (on one pool thread):
 *   1. the request line: the raw URI is split into path and query, both percent-decoded
 *      (nexsrv_path_parse, nexsrv_query_parse), and the path is looked up in the routes;
 *   2. while stopping: 503, and the connection closes;
 *   3. a Content-Length above the body limit: 413 at once (the body is not read, the
 *      connection closes) if the client waits for 100-continue or the body is over
 *      NEXSRV_HTTP_DISCARD_FACTOR times the limit; otherwise 413 after the body was read
 *      and dropped;
 *   4. the rate limit, address tier: one token from the bucket of the client's address
 *      (see "Rate limits" below); none left: 429 with Retry-After;
 *   5. a malformed path or query: 400; no route for the path: 404 {"error":"not found"}; a
 *      route for the path but not the method: 405 with Allow;
 *   6. routes flagged NEXSRV_ROUTE_AUTH: the auth hook (no hook: 401), then the rate limit,
 *      caller tier: one token from the bucket of the caller the hook identified; none
 *      left: 429 with Retry-After;
 *   7. the body is collected (413 if a chunked one outgrows the limit);
 *   8. the handler, which replies with one nexsrv_reply_*() call or starts a stream; a
 *      handler that returns without replying produces 500.
 * A refusal in steps 4-6 is sent once the body has been read and dropped (up to the
 * discard bound), so that keep-alive survives and a client still sending does not lose the
 * answer to a connection reset; a client waiting for 100-continue gets it at once instead.
 * Every response is JSON with Content-Type application/json (nexsrv_reply_raw() excepted,
 * for GET /metrics); error bodies follow the original service's models.BaseError
 * ({"error": "..."}) and models.ValidationError ({"error", "field", "reason"}).  Responses
 * MHD generates itself, before any of the above (a request line or headers it cannot
 * parse or that exceed the memory limit), are MHD's own short HTML pages.
 *
 * Rate limits (rate_limit_rps, rate_limit_burst; nexsrv_ratelimit.h) come in two tiers, so
 * that nothing a client makes up selects the bucket it is charged to:
 *   - the address tier: every request, whatever it is (unauthenticated, to an unknown path,
 *     with a token that then fails authentication), takes a token from the bucket of its
 *     client address (IPv4 /32, IPv6 /64).  That bucket is NEXSRV_RATELIMIT_ADDRESS_FACTOR
 *     times the per-caller rate and burst: many agents behind one NAT address are many
 *     callers, and this tier only has to stop floods that name no verified caller;
 *   - the caller tier: a request to a NEXSRV_ROUTE_AUTH route that the auth hook let
 *     through also takes a token from the bucket of its caller, keyed by the verified
 *     identity the hook gave with nexsrv_req_set_caller_key() (nexsrv: the user id, the
 *     registration key id or the device id; never the bearer token, of which a caller can
 *     invent or mint any number).  A hook that names no key has the request charged to its
 *     client address in this tier, at the per-caller rate.
 * A request refused by either tier is not run; the tokens it took stay taken.
 *
 * Routing.  A route is { method, pattern, handler, flags, arg }.  A pattern is a path whose
 * segments are literals or {name} parameters ("/api/vpcs/{id}/events").  A request path
 * matches when it has the same number of segments and every literal equals the decoded
 * segment; a trailing slash is an empty last segment, not special ("/api/vpcs/" does not
 * match "/api/vpcs").  When several patterns match, the one with a literal where the other
 * has a parameter, at the first place they differ, wins ("/api/devices/metadata" before
 * "/api/devices/{id}").  HEAD is served by GET routes.  Routes can be added at any time; a
 * setup callback in the config adds them before the server listens.
 *
 * Graceful stop (nexsrv_http_stop): turn new connections away, answer requests on
 * kept-alive connections with 503, end every stream cleanly (its queued bytes are still
 * sent), wait for requests in progress up to cfg.stop_timeout_ms, then close everything.
 */
#ifndef NEXSRV_HTTP_H
#define NEXSRV_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/errmsg.h"

struct json_object;
struct nexsrv_http;
struct nexsrv_metrics;
struct nexsrv_req;
struct nexsrv_shared;
struct nexsrv_stream;

/* --- limits and their defaults (a config field at 0 means the default) ----------------- */
#define NEXSRV_HTTP_DEFAULT_THREADS	     4
#define NEXSRV_HTTP_DEFAULT_BODY_LIMIT	     (1024 * 1024)
/* Per connection: the request line and headers, and the buffers of the reply.  The read
 * buffer is half of it and must hold the request head (the API answers a request line of 27
 * kB with a JSON error, not libmicrohttpd's HTML 414).  An open watch stream keeps about
 * half of it resident (measured), plus ~5 kB of its own. */
#define NEXSRV_HTTP_DEFAULT_MEMORY_LIMIT     (64 * 1024)
#define NEXSRV_HTTP_DEFAULT_TIMEOUT_S	     60
/* max_connections 0: RLIMIT_NOFILE less a reserve for other descriptors, at most the cap */
#define NEXSRV_HTTP_FD_RESERVE		     256
#define NEXSRV_HTTP_MAX_CONNECTIONS_CAP	     1000000
#define NEXSRV_HTTP_FALLBACK_MAX_CONNECTIONS 4096
#define NEXSRV_HTTP_DEFAULT_PER_IP	     512
#define NEXSRV_HTTP_DEFAULT_STOP_TIMEOUT_MS  5000
#define NEXSRV_HTTP_DEFAULT_STREAM_QUEUE     (4 * 1024 * 1024)
/* A body over the limit is still read (and dropped) up to this many times the limit, so
 * that the client sees the 413; beyond that the connection is closed after the 413. */
#define NEXSRV_HTTP_DISCARD_FACTOR	     4
/* Largest TLS certificate or key file read. */
#define NEXSRV_HTTP_PEM_MAX		     (1024 * 1024)

struct nexsrv_http_config {
	/* "HOST:PORT": an IPv4 address, a bracketed IPv6 address ("[::]:8080" accepts both
	 * families), or a DNS name (its first address that binds).  Port 0 picks a free port
	 * (see nexsrv_http_port()). */
	const char *listen;
	/* PEM files for HTTPS; both or neither.  Without them insecure_http must be set, or
	 * the server refuses to start. */
	const char *tls_cert;
	const char *tls_key;
	bool insecure_http;
	unsigned threads;	     /* MHD pool threads */
	size_t body_limit;	     /* request body bytes; more: 413 */
	size_t memory_limit;	     /* MHD_OPTION_CONNECTION_MEMORY_LIMIT: bounds the headers */
	unsigned timeout_s;	     /* MHD_OPTION_CONNECTION_TIMEOUT: idle connections close */
	unsigned max_connections;    /* in all, MHD's and the streams' own sockets */
	unsigned per_ip_connections; /* from one client address, likewise */
	uint32_t rate_limit_rps;     /* per caller (see "Rate limits"); 0: no rate limit */
	uint32_t rate_limit_burst;   /* 0: same as rate_limit_rps */
	unsigned stop_timeout_ms;    /* how long a stop waits for requests in progress */
	size_t stream_queue_limit;   /* bytes a stream may queue for a slow client */
	/* Where request metrics go; NULL: the server makes (and frees) its own registry. */
	struct nexsrv_metrics *metrics;
	/* Called once the server exists, before it listens: add routes, set hooks.  A
	 * negative return (with err set) fails the start. */
	int (*setup)(struct nexsrv_http *http, void *arg, struct nx_err *err);
	void *setup_arg;
};

/* Starts the server, or returns NULL with err saying why (a bad listen address, a port in
 * use, an unreadable or mismatched certificate and key, neither TLS nor insecure-http). */
struct nexsrv_http *nexsrv_http_start(const struct nexsrv_http_config *cfg, struct nx_err *err);

/* Stops gracefully (see above) and frees everything; NULL is a no-op.  Streams still held
 * by their producers stay valid until nexsrv_stream_close(), but are ended. */
void nexsrv_http_stop(struct nexsrv_http *http);

/* The bound TCP port (useful with port 0); 0 for NULL. */
uint16_t nexsrv_http_port(const struct nexsrv_http *http);
/* The listen address the server was started with ("" for NULL). */
const char *nexsrv_http_listen(const struct nexsrv_http *http);
/* Whether it serves HTTPS. */
bool nexsrv_http_tls(const struct nexsrv_http *http);
/* The streaming responses open now (watch streams); 0 for NULL.  Any thread. */
unsigned long nexsrv_http_streams_open(struct nexsrv_http *http);

/* The metrics registry requests are counted in: http_requests_total{method,route,code},
 * http_request_duration_seconds{method,route}, http_requests_in_flight,
 * http_streams_open, http_rate_limited_total. */
struct nexsrv_metrics *nexsrv_http_metrics(struct nexsrv_http *http);

/* Changes the rate limit at run time, both tiers (rps and burst per caller; the address
 * tier follows, see "Rate limits"); rps 0 turns it off, burst 0 is the same as rps.
 * Buckets keep their tokens, capped at the new burst.  0 or -EINVAL with err set. */
int nexsrv_http_set_rate_limit(struct nexsrv_http *http, uint32_t rps, uint32_t burst,
			       struct nx_err *err);

/* --- readiness (GET /private/ready) ------------------------------------------------- */

/* True when the service can serve; otherwise false with a short reason in why. */
typedef bool (*nexsrv_ready_fn)(void *arg, char *why, size_t why_size);

/* Installs the readiness check (the database layer's).  Without one the service is not
 * ready ("no database"): it cannot serve the API. */
void nexsrv_http_set_ready_check(struct nexsrv_http *http, nexsrv_ready_fn fn, void *arg);
bool nexsrv_http_ready(struct nexsrv_http *http, char *why, size_t why_size);

/* --- authentication ----------------------------------------------------------------- */

/*
 * Runs before the handler of every route flagged NEXSRV_ROUTE_AUTH, on the pool thread,
 * before the body is read.  Returns 0 to let the request through (normally after
 * nexsrv_req_set_caller() and nexsrv_req_set_caller_key()), or a negative errno to refuse
 * it: unless the hook replied itself, the client gets 401 {"error":"unauthorized"} with
 * WWW-Authenticate: Bearer.  With no hook installed such routes always get 401.  The
 * caller tier of the rate limit is charged after a hook that returned 0.
 */
typedef int (*nexsrv_auth_fn)(struct nexsrv_req *req, void *arg);
void nexsrv_http_set_auth_hook(struct nexsrv_http *http, nexsrv_auth_fn fn, void *arg);

/* --- routes -------------------------------------------------------------------------- */

/* A handler replies (nexsrv_reply_*) or starts a stream, and returns 0; a negative errno
 * without a reply becomes 500. */
typedef int (*nexsrv_handler_fn)(struct nexsrv_req *req, void *arg);

enum nexsrv_route_flags {
	NEXSRV_ROUTE_AUTH = 1u << 0, /* run the auth hook first */
};

#define NEXSRV_ROUTE_MAX_PARAMS 8

struct nexsrv_route {
	const char *method;  /* "GET", "POST", ... (upper case) */
	const char *pattern; /* "/api/vpcs/{id}" */
	nexsrv_handler_fn handler;
	unsigned flags;
	void *arg; /* handed to the handler */
};

/* Adds a route (copied).  -EINVAL for a bad method or pattern, -EEXIST when a route with
 * the same method and the same pattern shape exists; err says which. */
int nexsrv_http_route_add(struct nexsrv_http *http, const struct nexsrv_route *route,
			  struct nx_err *err);

/* --- the request ---------------------------------------------------------------------- */

/* Valid during the handler (and the auth hook). */
const char *nexsrv_req_method(const struct nexsrv_req *req);
const char *nexsrv_req_path(const struct nexsrv_req *req);  /* raw (still encoded), no query */
const char *nexsrv_req_route(const struct nexsrv_req *req); /* the matched pattern */
/* The decoded value of path parameter {name}, or NULL. */
const char *nexsrv_req_param(const struct nexsrv_req *req, const char *name);
/* The decoded value of query parameter name (the first if repeated; "" for "?name"), or
 * NULL when absent. */
const char *nexsrv_req_query(const struct nexsrv_req *req, const char *name);
/* A request header (case-insensitive name), or NULL. */
const char *nexsrv_req_header(const struct nexsrv_req *req, const char *name);
/* The token of "Authorization: Bearer <token>", or NULL. */
const char *nexsrv_req_bearer(const struct nexsrv_req *req);
/* The client's address as text ("192.0.2.1", "2001:db8::1"; IPv4-mapped shown as IPv4). */
const char *nexsrv_req_client(const struct nexsrv_req *req);
/* The body (NUL-terminated for convenience; may contain NULs); "" when there is none. */
const char *nexsrv_req_body(const struct nexsrv_req *req, size_t *len);
/*
 * Parses the body as JSON (nx_json_parse, depth NX_JSON_DEFAULT_DEPTH) and stores a
 * borrowed object in *out, owned by the request.  On error it replies 400
 * {"error":"request json is invalid: <why>"} and returns a negative errno: the handler
 * just returns.
 */
int nexsrv_req_json(struct nexsrv_req *req, struct json_object **out);
/* The caller the auth hook identified, and its destructor (run when the request ends). */
void nexsrv_req_set_caller(struct nexsrv_req *req, void *caller, void (*free_fn)(void *));
void *nexsrv_req_caller(const struct nexsrv_req *req);
/* The key of the caller's rate-limit bucket (see "Rate limits"): 1 to
 * NEXSRV_HTTP_CALLER_KEY_MAX bytes naming the verified identity, copied; set by the auth
 * hook.  0, or -EINVAL for a missing, empty or over-long key (then nothing is set). */
#define NEXSRV_HTTP_CALLER_KEY_MAX 48 /* NEXSRV_RATELIMIT_KEY_MAX */
int nexsrv_req_set_caller_key(struct nexsrv_req *req, const void *key, size_t len);
struct nexsrv_http *nexsrv_req_http(const struct nexsrv_req *req);

/* --- responses (one per request; a second one returns -EALREADY) -------------------- */

/* Replies status with obj serialised; takes over the caller's reference to obj. */
int nexsrv_reply_json(struct nexsrv_req *req, unsigned status, struct json_object *obj);
/* {"error": <formatted message>} */
int nexsrv_reply_error(struct nexsrv_req *req, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * 400 {"error": error, "field": field, "reason": reason}, field and reason left out when
 * NULL, as the original service's models.ValidationError (which sets "error" to one of the
 * NEXSRV_ERR_* texts below, or to the reason itself with only "field").
 */
int nexsrv_reply_validation(struct nexsrv_req *req, const char *error, const char *field,
			    const char *reason);
#define NEXSRV_ERR_PATH_PARAM	 "path parameter invalid"
#define NEXSRV_ERR_FIELD_MISSING "field not present"
#define NEXSRV_ERR_FIELD_INVALID "invalid data in field"
/* 404 {"error":"not found","resource": resource} (resource left out when NULL). */
int nexsrv_reply_not_found(struct nexsrv_req *req, const char *resource);
/* A body that is not JSON (GET /metrics). */
int nexsrv_reply_raw(struct nexsrv_req *req, unsigned status, const char *content_type,
		     const void *data, size_t len);
/* Adds a response header (e.g. X-Total-Count); before the reply or the stream start.
 * -EINVAL for a name or value with control characters. */
int nexsrv_reply_header(struct nexsrv_req *req, const char *name, const char *value);

/* --- streaming responses ------------------------------------------------------------ */

/*
 * Turns the request into a streaming 200 response (chunked on HTTP/1.1, Content-Type
 * application/json unless a header said otherwise) and returns the stream, or NULL
 * (already replied, out of memory, stopping).  The caller (the producer) owns one
 * reference and must call nexsrv_stream_close() exactly once.
 */
struct nexsrv_stream *nexsrv_stream_start(struct nexsrv_req *req);

/*
 * The close callback runs at most once, on an MHD thread with no lock held, when the
 * stream ends while the producer still holds it: the client went away, the connection
 * failed, or the server is stopping.  It may call nexsrv_stream_close().  Once
 * nexsrv_stream_close() has returned, it is not running and will never run (close waits
 * for a callback running on another thread: do not hold a lock the callback takes while
 * closing).  A client that goes away is noticed even while its stream is idle.
 */
typedef void (*nexsrv_stream_close_fn)(struct nexsrv_stream *stream, void *arg);
void nexsrv_stream_set_close_cb(struct nexsrv_stream *stream, nexsrv_stream_close_fn fn, void *arg);

/* Queues len bytes for the client, from any thread.  0, -EPIPE once the stream has ended
 * (client gone, server stopping, or closed), -ENOBUFS when the client is so slow that the
 * queue would exceed cfg.stream_queue_limit (nothing is queued then), -ENOMEM. */
int nexsrv_stream_write(struct nexsrv_stream *stream, const void *data, size_t len);
/* The same for a shared string (nexsrv_shared.h), queued by reference: the stream takes a
 * reference of its own, the caller keeps its one.  What a fan-out uses: no copy per stream. */
int nexsrv_stream_write_shared(struct nexsrv_stream *stream, struct nexsrv_shared *buf);

/* Between hold and release, writes only queue; release sends what was queued together (one
 * send, one wakeup of the client for the lines of one commit).  A failure shows as the
 * stream's end, through its close callback. */
void nexsrv_stream_hold(struct nexsrv_stream *stream);
void nexsrv_stream_release(struct nexsrv_stream *stream);

/* Whether the stream's connection is parked with the socket the stream's own: writes go
 * straight to it.  (For tests and diagnostics.) */
bool nexsrv_stream_direct(struct nexsrv_stream *stream);
/* Whether MHD let go of the stream's connection and the socket is the stream's alone (plain
 * HTTP: see stream_take_socket).  The connection then closes after the body. */
bool nexsrv_stream_own(struct nexsrv_stream *stream);

/* Ends the stream after the queued bytes (a clean end of the chunked body) and drops the
 * producer's reference. */
void nexsrv_stream_close(struct nexsrv_stream *stream);

/* ======================================================================================
 * The parsers and the routing table underneath, pure functions exposed for tests and the
 * fuzz target.
 */

#define NEXSRV_URI_MAX		 8192
#define NEXSRV_PATH_MAX_SEGMENTS 32
#define NEXSRV_QUERY_MAX_PARAMS	 64

/* Decoded path segments: "/api/vpcs/a%20b" gives "api", "vpcs", "a b"; "/" gives one
 * empty segment. */
struct nexsrv_path {
	char *buf; /* owns the segment strings */
	size_t n;
	const char *seg[NEXSRV_PATH_MAX_SEGMENTS];
};

/*
 * Parses len bytes of a raw path (no query).  It must start with '/', hold only printable
 * ASCII besides bytes >= 0x80, use %XX escapes correctly, decode to valid UTF-8 without
 * NUL or control characters, and have at most NEXSRV_PATH_MAX_SEGMENTS segments and
 * NEXSRV_URI_MAX bytes.  '+' is a plain '+'.  0, or -EINVAL / -E2BIG / -ENOMEM with err set
 * and out empty.
 */
int nexsrv_path_parse(const char *raw, size_t len, struct nexsrv_path *out, struct nx_err *err);
void nexsrv_path_fini(struct nexsrv_path *path);

struct nexsrv_query_param {
	const char *key;
	const char *value;
};

struct nexsrv_query {
	char *buf; /* owns the strings */
	size_t n;
	struct nexsrv_query_param p[NEXSRV_QUERY_MAX_PARAMS];
};

/*
 * Parses len bytes of a raw query string (after '?') as application/x-www-form-urlencoded
 * pairs: split on '&', key and value on the first '=', '+' is a space, %XX escapes; empty
 * pairs are skipped, "key" alone has the value "".  Keys and values must decode to valid
 * UTF-8 without NUL; at most NEXSRV_QUERY_MAX_PARAMS pairs.  0, or -EINVAL / -E2BIG /
 * -ENOMEM with err set and out empty.
 */
int nexsrv_query_parse(const char *raw, size_t len, struct nexsrv_query *out, struct nx_err *err);
/* The first value of key, or NULL. */
const char *nexsrv_query_get(const struct nexsrv_query *q, const char *key);
void nexsrv_query_fini(struct nexsrv_query *q);

struct nexsrv_router;

struct nexsrv_router *nexsrv_router_new(void);
void nexsrv_router_free(struct nexsrv_router *r);
/* As nexsrv_http_route_add(). */
int nexsrv_router_add(struct nexsrv_router *r, const struct nexsrv_route *route,
		      struct nx_err *err);

enum nexsrv_match_result {
	NEXSRV_MATCH_OK,
	NEXSRV_MATCH_NOT_FOUND,	 /* no pattern fits the path */
	NEXSRV_MATCH_BAD_METHOD, /* patterns fit, none for this method: see allow */
};

struct nexsrv_match {
	const struct nexsrv_route *route; /* the router's copy; lives as long as the router */
	size_t n_params;
	struct nexsrv_query_param params[NEXSRV_ROUTE_MAX_PARAMS]; /* name, value (in path) */
	char allow[96]; /* "GET, HEAD, POST" for NEXSRV_MATCH_BAD_METHOD */
};

enum nexsrv_match_result nexsrv_router_match(struct nexsrv_router *r, const char *method,
					     const struct nexsrv_path *path,
					     struct nexsrv_match *m);

#endif /* NEXSRV_HTTP_H */
