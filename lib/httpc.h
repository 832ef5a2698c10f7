/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An asynchronous HTTP(S) client on the event loop: libcurl's multi interface driven by the
 * loop's fd watchers and one timer, so requests and long-lived streams (the agent's watch)
 * never block the daemon.  TLS peer and host verification stay on unless a client is created
 * with insecure_skip_verify.
 */
#ifndef NX_HTTPC_H
#define NX_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/errmsg.h"
#include "lib/loop.h"

struct nx_httpc;
struct nx_httpc_req;

struct nx_httpc_opts {
	const char *ca_file;	   /* PEM bundle to trust instead of the system's; NULL: system */
	bool insecure_skip_verify; /* the operator's explicit choice; logged when set */
	const char *user_agent;	   /* NULL: "nexodus/VERSION" */
};

struct nx_httpc *nx_httpc_new(struct nx_loop *loop, const struct nx_httpc_opts *opts,
			      struct nx_err *err);
/* Cancels every request still running (their callbacks are not called). */
void nx_httpc_free(struct nx_httpc *c);

/*
 * Completion.  status is the HTTP status; 0 when no response arrived (err says why: refused,
 * timed out, TLS failure, stream idle too long, body too large).  For a request without
 * on_line, body holds the whole response body (NUL-terminated, len bytes, "" when empty).
 * For a streaming request body is "" after a 2xx (the lines went to on_line) and the buffered
 * body of any other status.  The request is freed when this returns.
 */
typedef void (*nx_httpc_done_fn)(struct nx_httpc_req *r, long status, const char *body, size_t len,
				 const struct nx_err *err, void *arg);

/*
 * Streaming: each complete line of a 2xx response body, without its "\n" (an empty line is a
 * heartbeat and is delivered too), NUL-terminated.  Return 0 to go on, a negative errno to end
 * the request; done is then called with status and an err naming the callback's refusal.
 */
typedef int (*nx_httpc_line_fn)(struct nx_httpc_req *r, const char *line, size_t len, void *arg);

struct nx_httpc_req_opts {
	const char *method; /* "GET" (NULL), "POST", "PATCH", "PUT", "DELETE" */
	const char *url;
	const char *bearer; /* "Authorization: Bearer <bearer>" when not NULL */
	const char *body;   /* request body (copied), NULL for none */
	size_t body_len;
	const char *content_type; /* NULL: "application/json" when there is a body */
	const char *accept;	  /* NULL: "application/json" */
	long timeout_ms;	  /* whole request; 0: none (streams) */
	long connect_timeout_ms;  /* 0: 10 s */
	long idle_timeout_ms;	  /* end the request when no byte arrived for this long; 0: none */
	size_t max_body;	  /* largest body or line accepted; 0: 16 MiB */
	nx_httpc_line_fn on_line; /* set: streaming request */
};

/* Starts a request; done (and on_line) run later on the loop.  NULL and err on failure (then
 * no callback runs). */
struct nx_httpc_req *nx_httpc_start(struct nx_httpc *c, const struct nx_httpc_req_opts *o,
				    nx_httpc_done_fn done, void *arg, struct nx_err *err);

/* Stops a request before it completes; its callbacks are not called.  Safe from inside its
 * own on_line callback. */
void nx_httpc_cancel(struct nx_httpc_req *r);

/* Requests in flight (for tests and show commands). */
size_t nx_httpc_pending(const struct nx_httpc *c);

#endif /* NX_HTTPC_H */
