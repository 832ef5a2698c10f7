/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemons talk to the controller over HTTP(S) without ever blocking their one event
 * loop: a single request (enrollment, a PATCH) and a long-lived line stream (the watch) are
 * both transfers of one libcurl multi handle whose sockets and timer live on the loop.
 *
 * Re-entrancy: user callbacks run either from inside curl_multi_socket_action() (on_line,
 * through the write callback) or after it returned (done).  libcurl refuses to have handles
 * added or removed while it runs a callback, so a request cancelled or started from on_line
 * is parked (zombie / add queue) and settled as soon as socket_action returns.  The client
 * itself is freed late in the same way when nx_httpc_free() comes from one of its callbacks.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "lib/httpc.h"
#include "lib/log.h"
#include "lib/strutil.h"

#define HTTPC_DEFAULT_CONNECT_MS 10000L
#define HTTPC_DEFAULT_MAX_BODY	 (16u * 1024u * 1024u)

enum req_state {
	REQ_QUEUED, /* started from inside libcurl; added once socket_action returns */
	REQ_ACTIVE, /* in the multi handle */
	REQ_ZOMBIE, /* cancelled from inside libcurl; removed once socket_action returns */
	REQ_DONE,   /* done is running; freed when it returns */
};

/* One socket libcurl asked us to watch. */
struct httpc_sock {
	struct nx_fdwatch w;
	struct nx_httpc *c;
	struct httpc_sock *prev, *next;
};

struct nx_httpc_req {
	struct nx_httpc *c;
	enum req_state state;
	struct nx_httpc_req *prev, *next; /* c->live, while QUEUED or ACTIVE */
	struct nx_httpc_req *qnext; /* c->addq (QUEUED, or ZOMBIE never added) or c->zombies */
	bool added;		    /* in the multi handle */

	CURL *easy;
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];

	nx_httpc_done_fn done;
	nx_httpc_line_fn on_line;
	void *arg;
	size_t max_body;

	long idle_ms;
	uint64_t last_rx_ms;
	struct nx_timer idle;

	bool got_body;	/* the first body byte arrived; status and streaming are known */
	bool streaming; /* on_line set and a 2xx status */
	long status;

	char *buf; /* body (non-streaming) or the unfinished line (streaming) */
	size_t len, cap;

	bool failed;  /* ended by us: fail says why */
	bool refused; /* ... because on_line refused a line: keep the HTTP status */
	struct nx_err fail;
};

struct nx_httpc {
	struct nx_loop *loop;
	CURLM *multi;
	struct nx_timer timer;
	struct httpc_sock *socks;

	struct nx_httpc_req *live;
	size_t pending;
	struct nx_httpc_req *addq;
	struct nx_httpc_req *zombies;

	unsigned depth; /* frames of ours on the stack that use the client */
	bool in_curl;	/* inside curl_multi_socket_action() */
	bool dying;	/* nx_httpc_free() was called from a callback */

	char *ca_file;
	char *user_agent;
	bool insecure;
};

/* --- libcurl, once per process --------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* --- request list helpers ------------------------------------------------------------- */

static void live_link(struct nx_httpc *c, struct nx_httpc_req *r)
{
	r->prev = NULL;
	r->next = c->live;
	if (c->live)
		c->live->prev = r;
	c->live = r;
	c->pending++;
}

static void live_unlink(struct nx_httpc *c, struct nx_httpc_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		c->live = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	assert(c->pending > 0);
	c->pending--;
}

static void req_free(struct nx_httpc_req *r)
{
	if (r->added)
		curl_multi_remove_handle(r->c->multi, r->easy);
	nx_timer_fini(&r->idle);
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	free(r->buf);
	free(r);
}

/* --- buffers and failures ------------------------------------------------------------- */

static int buf_append(struct nx_httpc_req *r, const char *p, size_t n)
{
	size_t need = r->len + n + 1, cap;
	char *nb;

	if (need > r->cap) {
		cap = r->cap ? r->cap : 512;
		while (cap < need)
			cap *= 2;
		nb = realloc(r->buf, cap);
		if (!nb)
			return -ENOMEM;
		r->buf = nb;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
	r->buf[r->len] = '\0';
	return 0;
}

/* Records why we end the request; the write callback then returns 0 and libcurl stops. */
static void req_fail(struct nx_httpc_req *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void req_fail(struct nx_httpc_req *r, const char *fmt, ...)
{
	va_list ap;

	if (r->failed)
		return;
	r->failed = true;
	va_start(ap, fmt);
	vsnprintf(r->fail.msg, sizeof(r->fail.msg), fmt, ap);
	va_end(ap);
}

/* --- body and lines -------------------------------------------------------------------- */

static void learn_status(struct nx_httpc_req *r)
{
	long status = 0;

	if (r->got_body)
		return;
	r->got_body = true;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	r->status = status;
	r->streaming = r->on_line && status >= 200 && status < 300;
}

/* Appends a chunk of a 2xx stream and hands every complete line to on_line.  Negative when
 * the request must end (failure recorded, or cancelled from the callback). */
static int stream_feed(struct nx_httpc_req *r, const char *p, size_t n)
{
	size_t start = 0, scan, end, llen;
	char *nl;
	int rc;

	scan = r->len; /* the kept tail has no '\n' */
	if (buf_append(r, p, n) < 0) {
		req_fail(r, "out of memory buffering a stream line");
		return -ENOMEM;
	}
	while ((nl = memchr(r->buf + scan, '\n', r->len - scan))) {
		end = (size_t)(nl - r->buf);
		llen = end - start;
		if (llen && r->buf[end - 1] == '\r')
			llen--;
		if (llen > r->max_body) {
			req_fail(r, "stream line of %zu bytes exceeds the limit of %zu", llen,
				 r->max_body);
			return -EMSGSIZE;
		}
		r->buf[start + llen] = '\0';
		rc = r->on_line(r, r->buf + start, llen, r->arg);
		if (r->state != REQ_ACTIVE)
			return -ECANCELED;
		if (rc < 0) {
			r->refused = true;
			req_fail(r, "the stream's line handler refused a line: %s", strerror(-rc));
			return rc;
		}
		start = end + 1;
		scan = start;
	}
	if (start) {
		memmove(r->buf, r->buf + start, r->len - start);
		r->len -= start;
		r->buf[r->len] = '\0';
	}
	/* One more byte may be the '\r' of a line of exactly max_body bytes. */
	if (r->len > r->max_body + 1) {
		req_fail(r, "stream line longer than the limit of %zu bytes", r->max_body);
		return -EMSGSIZE;
	}
	return 0;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct nx_httpc_req *r = arg;
	size_t n = size * nmemb;

	if (r->state != REQ_ACTIVE || r->failed)
		return 0;
	r->last_rx_ms = nx_now_ms();
	learn_status(r);
	if (r->streaming)
		return stream_feed(r, ptr, n) < 0 ? 0 : n;
	if (n > r->max_body - r->len) {
		req_fail(r, "response body exceeds the limit of %zu bytes", r->max_body);
		return 0;
	}
	if (buf_append(r, ptr, n) < 0) {
		req_fail(r, "out of memory buffering the response body");
		return 0;
	}
	return n;
}

/* Headers count as data for the idle timeout. */
static size_t header_cb(char *ptr, size_t size, size_t nitems, void *arg)
{
	struct nx_httpc_req *r = arg;

	(void)ptr;
	if (r->state != REQ_ACTIVE)
		return 0;
	r->last_rx_ms = nx_now_ms();
	return size * nitems;
}

/* --- completion ------------------------------------------------------------------------ */

/* Ends an ACTIVE request outside libcurl: done runs (unless the client is going away) and
 * the request is freed. */
static void req_complete(struct nx_httpc_req *r, CURLcode res)
{
	struct nx_httpc *c = r->c;
	struct nx_err cerr;
	const struct nx_err *err = NULL;
	const char *body = "";
	size_t len = 0;
	long status = 0;

	assert(r->state == REQ_ACTIVE && !c->in_curl);
	if (r->added)
		curl_multi_remove_handle(c->multi, r->easy);
	r->added = false;
	live_unlink(c, r);
	nx_timer_cancel(&r->idle);
	r->state = REQ_DONE;

	if (r->failed) {
		err = &r->fail;
		if (r->refused)
			status = r->status;
	} else if (res != CURLE_OK) {
		nx_err_set(&cerr, EIO, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
		err = &cerr;
	} else {
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
		if (!r->streaming && r->buf) {
			body = r->buf;
			len = r->len;
		}
	}
	if (!c->dying)
		r->done(r, status, body, len, err, r->arg);
	req_free(r);
}

/* After socket_action: settle what callbacks parked, then report finished transfers. */
static void settle(struct nx_httpc *c)
{
	struct nx_httpc_req *r;
	struct nx_err err;
	CURLMsg *msg;
	CURLMcode mc;
	CURLcode res;
	char *priv;
	int left;

	while ((r = c->zombies)) {
		c->zombies = r->qnext;
		req_free(r);
	}
	while ((r = c->addq)) {
		c->addq = r->qnext;
		r->qnext = NULL;
		if (r->state == REQ_ZOMBIE) {
			req_free(r);
			continue;
		}
		r->state = REQ_ACTIVE;
		mc = curl_multi_add_handle(c->multi, r->easy);
		if (mc != CURLM_OK) {
			/* Reported like any other failure: done still runs, on the loop. */
			nx_err_set(&err, EIO, "cannot start the request: %s",
				   curl_multi_strerror(mc));
			r->failed = true;
			r->fail = err;
			nx_timer_arm(&r->idle, 0);
			continue;
		}
		r->added = true;
	}
	while (!c->dying && (msg = curl_multi_info_read(c->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		res = msg->data.result;
		priv = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		r = (void *)priv;
		if (r && r->state == REQ_ACTIVE)
			req_complete(r, res);
	}
}

static void client_destroy(struct nx_httpc *c);

static void frame_enter(struct nx_httpc *c)
{
	c->depth++;
}

/* Leaves a frame; frees the client when it was freed from a callback.  Do not touch c
 * afterwards. */
static void frame_leave(struct nx_httpc *c)
{
	assert(c->depth > 0);
	if (--c->depth == 0 && c->dying)
		client_destroy(c);
}

static void socket_action(struct nx_httpc *c, curl_socket_t fd, int flags)
{
	int running;

	frame_enter(c);
	c->in_curl = true;
	curl_multi_socket_action(c->multi, fd, flags, &running);
	c->in_curl = false;
	settle(c);
	frame_leave(c);
}

/* --- the loop side ---------------------------------------------------------------------- */

static void fd_cb(struct nx_fdwatch *w, int fd, unsigned what, void *arg)
{
	struct httpc_sock *s = arg;

	(void)w;
	/* s may be freed by the action (CURL_POLL_REMOVE): use it before. */
	socket_action(s->c, fd, what == NX_READ ? CURL_CSELECT_IN : CURL_CSELECT_OUT);
}

static void sock_free(struct nx_httpc *c, struct httpc_sock *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		c->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	nx_fdwatch_fini(&s->w);
	free(s);
}

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct nx_httpc *c = userp;
	struct httpc_sock *s = socketp;
	unsigned want = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			curl_multi_assign(c->multi, fd, NULL);
			sock_free(c, s);
		}
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			goto fail;
		if (nx_fdwatch_init(c->loop, &s->w, fd, 0, fd_cb, s) < 0) {
			free(s);
			goto fail;
		}
		s->c = c;
		s->next = c->socks;
		if (c->socks)
			c->socks->prev = s;
		c->socks = s;
		curl_multi_assign(c->multi, fd, s);
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		want |= NX_READ;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		want |= NX_WRITE;
	nx_fdwatch_disable(&s->w, (NX_READ | NX_WRITE) & ~want);
	if (nx_fdwatch_enable(&s->w, want) < 0)
		goto fail;
	return 0;

fail:
	nx_err("http client: cannot watch socket %d", (int)fd);
	return -1;
}

static void timer_fired(struct nx_timer *t, void *arg)
{
	(void)t;
	socket_action(arg, CURL_SOCKET_TIMEOUT, 0);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct nx_httpc *c = userp;

	(void)multi;
	if (timeout_ms < 0)
		nx_timer_cancel(&c->timer);
	else
		nx_timer_arm(&c->timer, (uint64_t)timeout_ms);
	return 0;
}

/* A request's own timer: idle timeout, or a failure found while adding it. */
static void idle_fired(struct nx_timer *t, void *arg)
{
	struct nx_httpc_req *r = arg;
	struct nx_httpc *c = r->c;
	uint64_t quiet;

	if (!r->failed) {
		quiet = nx_now_ms() - r->last_rx_ms;
		if (quiet < (uint64_t)r->idle_ms) {
			nx_timer_arm(t, (uint64_t)r->idle_ms - quiet);
			return;
		}
		req_fail(r, "no data for %ld ms", r->idle_ms);
	}
	frame_enter(c);
	req_complete(r, CURLE_OPERATION_TIMEDOUT);
	frame_leave(c);
}

/* --- the client ------------------------------------------------------------------------ */

struct nx_httpc *nx_httpc_new(struct nx_loop *loop, const struct nx_httpc_opts *opts,
			      struct nx_err *err)
{
	struct nx_httpc *c;
	const char *ua;

	if (!loop) {
		nx_err_set(err, EINVAL, "http client: no event loop");
		return NULL;
	}
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK) {
		nx_err_set(err, EIO, "libcurl could not be initialised: %s",
			   curl_easy_strerror(global_rc));
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto nomem;
	c->loop = loop;
	ua = opts && opts->user_agent ? opts->user_agent : "nexodus/" PACKAGE_VERSION;
	c->user_agent = strdup(ua);
	if (!c->user_agent)
		goto nomem;
	if (opts && opts->ca_file) {
		c->ca_file = strdup(opts->ca_file);
		if (!c->ca_file)
			goto nomem;
	}
	c->insecure = opts && opts->insecure_skip_verify;
	c->multi = curl_multi_init();
	if (!c->multi)
		goto nomem;
	nx_timer_init(loop, &c->timer, timer_fired, c);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	if (c->insecure)
		nx_warn("http client: TLS certificate and host name verification is disabled "
			"(insecure-skip-verify); the controller's identity is not checked");
	return c;

nomem:
	nx_err_set(err, ENOMEM, "http client: out of memory");
	if (c) {
		free(c->user_agent);
		free(c->ca_file);
	}
	free(c);
	return NULL;
}

static void client_destroy(struct nx_httpc *c)
{
	struct nx_httpc_req *r;

	while ((r = c->zombies)) {
		c->zombies = r->qnext;
		req_free(r);
	}
	while ((r = c->addq)) {
		c->addq = r->qnext;
		if (r->state == REQ_QUEUED)
			live_unlink(c, r);
		req_free(r);
	}
	while ((r = c->live)) {
		live_unlink(c, r);
		req_free(r);
	}
	curl_multi_cleanup(c->multi);
	/* libcurl said REMOVE for every socket it closed; anything left is ours to drop. */
	while (c->socks)
		sock_free(c, c->socks);
	nx_timer_fini(&c->timer);
	free(c->user_agent);
	free(c->ca_file);
	free(c);
}

void nx_httpc_free(struct nx_httpc *c)
{
	if (!c || c->dying)
		return;
	if (c->depth == 0) {
		client_destroy(c);
		return;
	}
	/* From a callback: no more callbacks; the outermost frame frees. */
	c->dying = true;
	while (c->live)
		nx_httpc_cancel(c->live);
}

size_t nx_httpc_pending(const struct nx_httpc *c)
{
	return c ? c->pending : 0;
}

/* --- requests -------------------------------------------------------------------------- */

static bool has_crlf(const char *s)
{
	return s && strpbrk(s, "\r\n");
}

static int add_header(struct nx_httpc_req *r, const char *name, const char *value)
{
	char line[1024];
	struct curl_slist *l;
	int n;

	n = snprintf(line, sizeof(line), "%s: %s", name, value);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EMSGSIZE;
	l = curl_slist_append(r->headers, line);
	if (!l)
		return -ENOMEM;
	r->headers = l;
	return 0;
}

static const char *const methods[] = { "GET", "POST", "PATCH", "PUT", "DELETE" };

struct nx_httpc_req *nx_httpc_start(struct nx_httpc *c, const struct nx_httpc_req_opts *o,
				    nx_httpc_done_fn done, void *arg, struct nx_err *err)
{
	struct nx_httpc_req *r = NULL;
	const char *method;
	CURLcode res = CURLE_OK;
	CURLMcode mc;
	size_t i;
	int rc;

	if (!c || !o || !done) {
		nx_err_set(err, EINVAL, "http request: missing client, options or callback");
		return NULL;
	}
	if (c->dying) {
		nx_err_set(err, ESHUTDOWN, "http request: the client is being freed");
		return NULL;
	}
	if (!o->url || !*o->url) {
		nx_err_set(err, EINVAL, "http request: no URL");
		return NULL;
	}
	if (strncasecmp(o->url, "http://", 7) && strncasecmp(o->url, "https://", 8)) {
		nx_err_set(err, EINVAL, "\"%.64s\": only http:// and https:// URLs are allowed",
			   o->url);
		return NULL;
	}
	method = o->method ? o->method : "GET";
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (!strcmp(method, methods[i]))
			break;
	if (i == sizeof(methods) / sizeof(methods[0])) {
		nx_err_set(err, EINVAL, "\"%.32s\": unsupported HTTP method", method);
		return NULL;
	}
	if (has_crlf(o->bearer) || has_crlf(o->content_type) || has_crlf(o->accept)) {
		nx_err_set(err, EINVAL, "http request: a header value contains a line break");
		return NULL;
	}

	r = calloc(1, sizeof(*r));
	if (!r)
		goto nomem;
	r->c = c;
	r->done = done;
	r->on_line = o->on_line;
	r->arg = arg;
	r->max_body = o->max_body ? o->max_body : HTTPC_DEFAULT_MAX_BODY;
	r->idle_ms = o->idle_timeout_ms > 0 ? o->idle_timeout_ms : 0;
	nx_timer_init(c->loop, &r->idle, idle_fired, r);
	r->easy = curl_easy_init();
	if (!r->easy)
		goto nomem;

	if (o->bearer) {
		char auth[1024];
		int n = snprintf(auth, sizeof(auth), "Bearer %s", o->bearer);

		if (n < 0 || (size_t)n >= sizeof(auth)) {
			nx_err_set(err, EINVAL, "http request: bearer token too long");
			goto fail;
		}
		rc = add_header(r, "Authorization", auth);
		nx_memzero_explicit(auth, sizeof(auth));
		if (rc < 0)
			goto nomem;
	}
	rc = add_header(r, "Accept", o->accept ? o->accept : "application/json");
	if (!rc && o->body)
		rc = add_header(r, "Content-Type",
				o->content_type ? o->content_type : "application/json");
	/* No "Expect: 100-continue" round trip before a body. */
	if (!rc && o->body)
		rc = add_header(r, "Expect", "");
	if (rc == -EMSGSIZE) {
		nx_err_set(err, EINVAL, "http request: a header value is too long");
		goto fail;
	}
	if (rc < 0)
		goto nomem;

#define SETOPT(opt, val)                                               \
	do {                                                           \
		if (res == CURLE_OK)                                   \
			res = curl_easy_setopt(r->easy, (opt), (val)); \
	} while (0)

	SETOPT(CURLOPT_PRIVATE, (void *)r);
	SETOPT(CURLOPT_URL, o->url);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_ERRORBUFFER, r->errbuf);
	SETOPT(CURLOPT_USERAGENT, c->user_agent);
	SETOPT(CURLOPT_HTTPHEADER, r->headers);
	SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(CURLOPT_WRITEDATA, (void *)r);
	SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
	SETOPT(CURLOPT_HEADERDATA, (void *)r);
	SETOPT(CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 0L);
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS,
	       o->connect_timeout_ms > 0 ? o->connect_timeout_ms : HTTPC_DEFAULT_CONNECT_MS);
	SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
	if (c->ca_file)
		SETOPT(CURLOPT_CAINFO, c->ca_file);
	if (o->body) {
		SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
		SETOPT(CURLOPT_COPYPOSTFIELDS, o->body);
		if (strcmp(method, "POST"))
			SETOPT(CURLOPT_CUSTOMREQUEST, method);
	} else if (!strcmp(method, "GET")) {
		SETOPT(CURLOPT_HTTPGET, 1L);
	} else {
		SETOPT(CURLOPT_CUSTOMREQUEST, method);
	}
#undef SETOPT
	if (res != CURLE_OK) {
		nx_err_set(err, EINVAL, "http request: %s",
			   r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
		goto fail;
	}

	r->last_rx_ms = nx_now_ms();
	if (c->in_curl) {
		r->state = REQ_QUEUED;
		r->qnext = c->addq;
		c->addq = r;
	} else {
		mc = curl_multi_add_handle(c->multi, r->easy);
		if (mc != CURLM_OK) {
			nx_err_set(err, EIO, "http request: %s", curl_multi_strerror(mc));
			goto fail;
		}
		r->added = true;
		r->state = REQ_ACTIVE;
	}
	live_link(c, r);
	if (r->idle_ms)
		nx_timer_arm(&r->idle, (uint64_t)r->idle_ms);
	return r;

nomem:
	nx_err_set(err, ENOMEM, "http request: out of memory");
fail:
	if (r)
		req_free(r);
	return NULL;
}

void nx_httpc_cancel(struct nx_httpc_req *r)
{
	struct nx_httpc *c;

	if (!r || r->state == REQ_ZOMBIE || r->state == REQ_DONE)
		return;
	c = r->c;
	live_unlink(c, r);
	nx_timer_cancel(&r->idle);
	if (c->in_curl) {
		/* libcurl is running a callback: remove the handle once it returns. */
		if (r->state == REQ_ACTIVE) {
			r->qnext = c->zombies;
			c->zombies = r;
		}
		/* A queued one stays on the add queue, which drops it. */
		r->state = REQ_ZOMBIE;
		return;
	}
	assert(r->state == REQ_ACTIVE);
	req_free(r);
}
