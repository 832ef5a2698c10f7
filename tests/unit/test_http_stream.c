/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for nexsrv/nexsrv_http over real sockets on 127.0.0.1 (ephemeral ports): the
 * streaming responses the watch streams are built on (chunks written from other threads,
 * 300 idle streams on a 4-thread pool, client disconnects, slow clients over HTTP and
 * HTTPS, a stop with streams open) and the request/response API the resource handlers use (JSON
 * bodies and errors, parameters, headers, auth hook, body limit, rate limit, keep-alive, metrics),
 * plus the start-up checks (listen addresses, TLS files).
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>
#include <json-c/json.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lib/jsonutil.h"
#include "lib/strutil.h"
#include "nexsrv/nexsrv_http.h"
#include "nexsrv/nexsrv_metrics.h"

#define WAIT_MS	    5000 /* the longest any condition below is waited for */
#define MAX_STREAMS 512

/* --- what the handlers saw, shared with the test thread ------------------------------ */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct nexsrv_stream *streams[MAX_STREAMS];
	size_t n_streams;
	unsigned closed_cb;		   /* close callbacks run */
	bool close_in_cb;		   /* the callback closes the stream itself */
	struct nexsrv_stream *last_closed; /* by callback */
} st = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void state_reset(bool close_in_cb)
{
	pthread_mutex_lock(&st.lock);
	st.n_streams = 0;
	st.closed_cb = 0;
	st.close_in_cb = close_in_cb;
	st.last_closed = NULL;
	pthread_mutex_unlock(&st.lock);
}

static struct timespec deadline_in(unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Waits until at least n streams were started; false on timeout. */
static bool wait_streams(size_t n)
{
	struct timespec dl = deadline_in(WAIT_MS);
	bool ok = true;

	pthread_mutex_lock(&st.lock);
	while (st.n_streams < n && ok)
		ok = pthread_cond_timedwait(&st.cond, &st.lock, &dl) != ETIMEDOUT;
	ok = st.n_streams >= n;
	pthread_mutex_unlock(&st.lock);
	return ok;
}

static bool wait_closed_cb(unsigned n)
{
	struct timespec dl = deadline_in(WAIT_MS);
	bool ok = true;

	pthread_mutex_lock(&st.lock);
	while (st.closed_cb < n && ok)
		ok = pthread_cond_timedwait(&st.cond, &st.lock, &dl) != ETIMEDOUT;
	ok = st.closed_cb >= n;
	pthread_mutex_unlock(&st.lock);
	return ok;
}

/* Until the stream writes straight to its socket (its connection parked, or let go of). */
static bool wait_state(struct nexsrv_stream *s, bool (*state)(struct nexsrv_stream *))
{
	for (int i = 0; i < WAIT_MS / 10; i++) {
		if (state(s))
			return true;
		usleep(10 * 1000);
	}
	return false;
}

static bool wait_direct(struct nexsrv_stream *s)
{
	return wait_state(s, nexsrv_stream_direct);
}

static void on_close(struct nexsrv_stream *s, void *arg)
{
	bool self;

	(void)arg;
	pthread_mutex_lock(&st.lock);
	st.closed_cb++;
	st.last_closed = s;
	self = st.close_in_cb;
	for (size_t i = 0; self && i < st.n_streams; i++)
		if (st.streams[i] == s)
			st.streams[i] = NULL;
	pthread_cond_broadcast(&st.cond);
	pthread_mutex_unlock(&st.lock);
	if (self)
		nexsrv_stream_close(s);
}

/* Closes the streams the test still holds (the producer's duty). */
static void close_streams(void)
{
	pthread_mutex_lock(&st.lock);
	for (size_t i = 0; i < st.n_streams; i++) {
		if (st.streams[i]) {
			nexsrv_stream_close(st.streams[i]);
			st.streams[i] = NULL;
		}
	}
	pthread_mutex_unlock(&st.lock);
}

/* --- handlers ------------------------------------------------------------------------- */

/* Handlers run on the server's threads, where a cmocka assertion cannot jump back to the
 * test: they count what went wrong, and every test checks the count at the end. */
static unsigned handler_failures;

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: handler check failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                          \
			__atomic_add_fetch(&handler_failures, 1, __ATOMIC_SEQ_CST);              \
		}                                                                                \
	} while (0)

static int h_stream(struct nexsrv_req *req, void *arg)
{
	struct nexsrv_stream *s;

	(void)arg;
	nexsrv_reply_header(req, "Content-Type", "application/x-ndjson");
	s = nexsrv_stream_start(req);
	if (!s)
		return -ENOMEM;
	CHECK(nexsrv_stream_start(req) == NULL); /* once */
	CHECK(nexsrv_reply_error(req, 500, "late") == -EALREADY);
	nexsrv_stream_set_close_cb(s, on_close, NULL);
	if (nexsrv_req_query(req, "greet"))
		CHECK(nexsrv_stream_write(s, "hello\n", 6) == 0);
	pthread_mutex_lock(&st.lock);
	if (st.n_streams < MAX_STREAMS)
		st.streams[st.n_streams++] = s;
	pthread_cond_broadcast(&st.cond);
	pthread_mutex_unlock(&st.lock);
	return 0;
}

static int h_echo(struct nexsrv_req *req, void *arg)
{
	struct json_object *body, *out, *a = NULL;
	const char *q = nexsrv_req_query(req, "q");
	const char *hdr = nexsrv_req_header(req, "x-test");
	int rc;

	(void)arg;
	rc = nexsrv_req_json(req, &body);
	if (rc < 0)
		return rc;
	CHECK(nexsrv_req_json(req, &a) == 0 && a == body); /* parsed once */
	out = json_object_new_object();
	nx_json_object_add_string(out, "id", nexsrv_req_param(req, "id"));
	nx_json_object_add_string(out, "q", q);
	nx_json_object_add_string(out, "hdr", hdr);
	nx_json_object_add_string(out, "client", nexsrv_req_client(req));
	nx_json_object_add_string(out, "route", nexsrv_req_route(req));
	nx_json_object_add_string(out, "method", nexsrv_req_method(req));
	nx_json_object_add_string(out, "path", nexsrv_req_path(req));
	nx_json_object_add_bool(out, "missing_is_null", nexsrv_req_param(req, "nope") == NULL);
	if (nx_json_get_array(body, "a", &a, NULL) == 0)
		json_object_object_add(out, "a", json_object_get(a));
	CHECK(nexsrv_reply_header(req, "X-Total-Count", "7") == 0);
	CHECK(nexsrv_reply_header(req, "Bad\nName", "x") == -EINVAL);
	CHECK(nexsrv_reply_header(req, "X-Ok", "a\r\nInjected: 1") == -EINVAL);
	CHECK(nexsrv_reply_header(req, "Content-Length", "1") == -EINVAL);
	return nexsrv_reply_json(req, 201, out);
}

static int h_auth(struct nexsrv_req *req, void *arg)
{
	struct json_object *out = json_object_new_object();

	(void)arg;
	nx_json_object_add_string(out, "caller", nexsrv_req_caller(req));
	return nexsrv_reply_json(req, 200, out);
}

static int h_valid(struct nexsrv_req *req, void *arg)
{
	(void)arg;
	return nexsrv_reply_validation(req, NEXSRV_ERR_PATH_PARAM, "uid",
				       "cannot delete owner of the organization");
}

static int h_notfound(struct nexsrv_req *req, void *arg)
{
	(void)arg;
	return nexsrv_reply_not_found(req, "vpc");
}

static int h_noreply(struct nexsrv_req *req, void *arg)
{
	(void)req;
	(void)arg;
	return -EIO;
}

static int h_slow(struct nexsrv_req *req, void *arg)
{
	struct json_object *out = json_object_new_object();

	(void)arg;
	usleep(300 * 1000); /* a database query in progress during a stop */
	return nexsrv_reply_json(req, 200, out);
}

/* A request that stays in progress until the test opens the gate (or WAIT_MS passes). */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool entered, open;
} gate = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void gate_set(bool *flag)
{
	pthread_mutex_lock(&gate.lock);
	*flag = true;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
}

/* Waits (bounded) until *flag is set; whether it is. */
static bool gate_wait(bool *flag)
{
	struct timespec deadline = deadline_in(WAIT_MS);
	bool set;

	pthread_mutex_lock(&gate.lock);
	while (!*flag && pthread_cond_timedwait(&gate.cond, &gate.lock, &deadline) == 0)
		;
	set = *flag;
	pthread_mutex_unlock(&gate.lock);
	return set;
}

static int h_gate(struct nexsrv_req *req, void *arg)
{
	(void)arg;
	gate_set(&gate.entered);
	gate_wait(&gate.open);
	return nexsrv_reply_json(req, 200, json_object_new_object());
}

static int auth_hook(struct nexsrv_req *req, void *arg)
{
	const char *token = nexsrv_req_bearer(req);
	char long_key[NEXSRV_HTTP_CALLER_KEY_MAX + 1];

	(void)arg;
	memset(long_key, 'k', sizeof(long_key));
	CHECK(nexsrv_req_set_caller_key(req, "x", 0) == -EINVAL);
	CHECK(nexsrv_req_set_caller_key(req, NULL, 1) == -EINVAL);
	CHECK(nexsrv_req_set_caller_key(req, long_key, sizeof(long_key)) == -EINVAL);
	/* "good" and "good-again" are two tokens of one caller; "bob" is another caller;
	 * "nokey" is let through without a caller key */
	if (token && (strcmp(token, "good") == 0 || strcmp(token, "good-again") == 0)) {
		nexsrv_req_set_caller(req, strdup("alice"), free);
		CHECK(nexsrv_req_set_caller_key(req, "user:alice", 10) == 0);
		return 0;
	}
	if (token && strcmp(token, "bob") == 0) {
		nexsrv_req_set_caller(req, strdup("bob"), free);
		CHECK(nexsrv_req_set_caller_key(req, long_key, sizeof(long_key) - 1) == 0);
		return 0;
	}
	if (token && strcmp(token, "nokey") == 0) {
		nexsrv_req_set_caller(req, strdup("carol"), free);
		return 0;
	}
	if (token && strcmp(token, "custom") == 0) {
		nexsrv_reply_error(req, 403, "token %s is revoked", token);
		return -EPERM;
	}
	return -EACCES;
}

static const struct nexsrv_route routes[] = {
	{ .method = "GET", .pattern = "/stream", .handler = h_stream },
	{ .method = "POST", .pattern = "/echo/{id}", .handler = h_echo },
	{ .method = "GET", .pattern = "/auth", .handler = h_auth, .flags = NEXSRV_ROUTE_AUTH },
	{ .method = "GET", .pattern = "/valid", .handler = h_valid },
	{ .method = "GET", .pattern = "/notfound", .handler = h_notfound },
	{ .method = "GET", .pattern = "/noreply", .handler = h_noreply },
	{ .method = "GET", .pattern = "/slow", .handler = h_slow },
	{ .method = "GET", .pattern = "/gate", .handler = h_gate },
};

static int setup_routes(struct nexsrv_http *http, void *arg, struct nx_err *err)
{
	(void)arg;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (nexsrv_http_route_add(http, &routes[i], err) < 0)
			return -EINVAL;
	return 0;
}

static void stop(struct nexsrv_http *http)
{
	nexsrv_http_stop(http);
	assert_int_equal(__atomic_load_n(&handler_failures, __ATOMIC_SEQ_CST), 0);
}

static struct nexsrv_http *start(struct nexsrv_http_config cfg)
{
	struct nx_err err = { "" };
	struct nexsrv_http *http;

	if (!cfg.listen)
		cfg.listen = "127.0.0.1:0";
	cfg.insecure_http = true;
	cfg.setup = setup_routes;
	http = nexsrv_http_start(&cfg, &err);
	if (!http)
		fail_msg("start: %s", err.msg);
	assert_true(nexsrv_http_port(http) != 0);
	return http;
}

/* --- a small HTTP/1.1 client ------------------------------------------------------------ */

struct conn {
	int fd;
	gnutls_session_t tls; /* set by conn_start_tls() */
	gnutls_certificate_credentials_t cred;
	size_t len;
	char buf[1 << 16];
};

struct resp {
	int status;
	char head[4096];
	char body[1 << 14];
	size_t len;
};

static struct conn *conn_open(uint16_t port, int rcvbuf)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = WAIT_MS / 1000 };

	assert_non_null(c);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (rcvbuf)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		fail_msg("connect: %s", strerror(errno));
	return c;
}

/* TLS from here on (the server's certificate is not checked: this tests the server). */
static void conn_start_tls(struct conn *c)
{
	int rc;

	assert_int_equal(gnutls_certificate_allocate_credentials(&c->cred), 0);
	assert_int_equal(gnutls_init(&c->tls, GNUTLS_CLIENT), 0);
	assert_int_equal(gnutls_set_default_priority(c->tls), 0);
	assert_int_equal(gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, c->cred), 0);
	gnutls_transport_set_int(c->tls, c->fd);
	do
		rc = gnutls_handshake(c->tls);
	while (rc < 0 && !gnutls_error_is_fatal(rc));
	if (rc < 0)
		fail_msg("TLS handshake: %s", gnutls_strerror(rc));
}

static void conn_close(struct conn *c)
{
	if (c) {
		if (c->tls) {
			gnutls_deinit(c->tls);
			gnutls_certificate_free_credentials(c->cred);
		}
		close(c->fd);
		free(c);
	}
}

static void conn_send(struct conn *c, const char *data, size_t len)
{
	while (len) {
		ssize_t n = c->tls ? gnutls_record_send(c->tls, data, len)
				   : send(c->fd, data, len, MSG_NOSIGNAL);

		if (n <= 0)
			fail_msg("send: %s", strerror(errno));
		data += n;
		len -= (size_t)n;
	}
}

static void conn_sends(struct conn *c, const char *s)
{
	conn_send(c, s, strlen(s));
}

/* Reads more into the buffer; false at EOF or timeout. */
static bool conn_fill(struct conn *c)
{
	ssize_t n;

	assert_true(c->len < sizeof(c->buf));
	if (c->tls)
		n = gnutls_record_recv(c->tls, c->buf + c->len, sizeof(c->buf) - c->len);
	else
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n <= 0)
		return false;
	c->len += (size_t)n;
	return true;
}

static void conn_consume(struct conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* A line ending in CRLF, without it. */
static bool conn_line(struct conn *c, char *out, size_t size)
{
	char *eol;

	while (!(eol = memmem(c->buf, c->len, "\r\n", 2)))
		if (!conn_fill(c))
			return false;
	assert_true((size_t)(eol - c->buf) < size);
	memcpy(out, c->buf, (size_t)(eol - c->buf));
	out[eol - c->buf] = '\0';
	conn_consume(c, (size_t)(eol - c->buf) + 2);
	return true;
}

static bool conn_bytes(struct conn *c, char *out, size_t n)
{
	while (c->len < n)
		if (!conn_fill(c))
			return false;
	memcpy(out, c->buf, n);
	conn_consume(c, n);
	return true;
}

/* The status line and headers; r->head holds the header lines, lower-cased names. */
static bool read_head(struct conn *c, struct resp *r)
{
	char line[1024];

	memset(r, 0, sizeof(*r));
	if (!conn_line(c, line, sizeof(line)) || sscanf(line, "HTTP/1.%*d %d", &r->status) != 1)
		return false;
	while (conn_line(c, line, sizeof(line)) && line[0]) {
		for (char *p = line; *p && *p != ':'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		nx_strlcat(r->head, line, sizeof(r->head));
		nx_strlcat(r->head, "\n", sizeof(r->head));
	}
	return true;
}

/* The value of header name (lower case) in r, in a static buffer; NULL when absent. */
static const char *header(const struct resp *r, const char *name)
{
	static char value[512];
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "%s: ", name);
	for (p = r->head; (p = strstr(p, key)); p++) {
		if (p == r->head || p[-1] == '\n') {
			size_t n = strcspn(p + strlen(key), "\n");

			assert_true(n < sizeof(value));
			memcpy(value, p + strlen(key), n);
			value[n] = '\0';
			return value;
		}
	}
	return NULL;
}

/* One chunk of a chunked body into out; its length (0: the last), -1 on error. */
static long read_chunk(struct conn *c, char *out, size_t size)
{
	char line[64], crlf[2];
	unsigned long n;

	if (!conn_line(c, line, sizeof(line)))
		return -1;
	n = strtoul(line, NULL, 16);
	assert_true(n < size);
	if (!conn_bytes(c, out, n) || !conn_bytes(c, crlf, 2))
		return -1;
	out[n] = '\0';
	return (long)n;
}

/* A whole response (Content-Length or chunked body); false on EOF/timeout. */
static bool read_resp(struct conn *c, struct resp *r, bool head_only)
{
	const char *cl, *te;

	if (!read_head(c, r))
		return false;
	if (head_only)
		return true;
	te = header(r, "transfer-encoding");
	if (te && strcasecmp(te, "chunked") == 0) {
		char chunk[8192];
		long n;

		while ((n = read_chunk(c, chunk, sizeof(chunk))) > 0) {
			assert_true(r->len + (size_t)n < sizeof(r->body));
			memcpy(r->body + r->len, chunk, (size_t)n);
			r->len += (size_t)n;
		}
		return n == 0;
	}
	cl = header(r, "content-length");
	r->len = cl ? strtoul(cl, NULL, 10) : 0;
	assert_true(r->len < sizeof(r->body));
	if (!conn_bytes(c, r->body, r->len))
		return false;
	r->body[r->len] = '\0';
	return true;
}

/* One request on a fresh connection. */
static void request(uint16_t port, const char *req, struct resp *r)
{
	struct conn *c = conn_open(port, 0);

	conn_sends(c, req);
	assert_true(read_resp(c, r, false));
	conn_close(c);
}

/* The parsed JSON body; asserts it is JSON with the right Content-Type. */
static struct json_object *json_body(const struct resp *r)
{
	struct nx_err err = { "" };
	struct json_object *obj;

	assert_non_null(header(r, "content-type"));
	assert_string_equal(header(r, "content-type"), "application/json");
	obj = nx_json_parse(r->body, r->len, 8, &err);
	if (!obj)
		fail_msg("not JSON (%s): %s", err.msg, r->body);
	return obj;
}

static void assert_json_field(const struct resp *r, const char *key, const char *want)
{
	struct json_object *obj = json_body(r);
	const char *v = NULL;

	if (nx_json_get_string(obj, key, &v, NULL) < 0)
		fail_msg("no string \"%s\" in %s", key, r->body);
	if (strstr(v, want) == NULL)
		fail_msg("\"%s\" is \"%s\", expected \"%s\" in it", key, v, want);
	json_object_put(obj);
}

/* --- streams -------------------------------------------------------------------------- */

static const char stream_req[] = "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n";

/* Sends a stream request on c and reads the head of its 200: the server's side of it. */
static struct nexsrv_stream *open_stream(struct conn *c)
{
	struct resp r;

	conn_sends(c, stream_req);
	assert_true(wait_streams(1));
	assert_true(read_head(c, &r));
	assert_int_equal(r.status, 200);
	return st.streams[0];
}

struct writer {
	struct nexsrv_stream *s;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	assert_int_equal(nexsrv_stream_write(w->s, "world\n", 6), 0);
	assert_int_equal(nexsrv_stream_write(w->s, "", 0), 0);
	assert_int_equal(nexsrv_stream_write(w->s, "{\"n\":1}\n", 8), 0);
	nexsrv_stream_close(w->s);
	return NULL;
}

static void test_stream_chunks(void **state)
{
	struct nexsrv_http *http = start((struct nexsrv_http_config){ 0 });
	struct conn *c = conn_open(nexsrv_http_port(http), 0);
	struct writer w;
	struct resp r;
	char got[256] = "", chunk[256];
	pthread_t t;
	long n;

	(void)state;
	state_reset(false);
	conn_sends(c, "GET /stream?greet=1 HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_true(wait_streams(1));
	assert_true(read_head(c, &r));
	assert_int_equal(r.status, 200);
	assert_string_equal(header(&r, "transfer-encoding"), "chunked");
	assert_string_equal(header(&r, "content-type"), "application/x-ndjson");

	/* what was written before the response existed comes first */
	while (strlen(got) < 6 && (n = read_chunk(c, chunk, sizeof(chunk))) > 0)
		nx_strlcat(got, chunk, sizeof(got));
	assert_string_equal(got, "hello\n");
	/* over plain HTTP, MHD lets go of the parked connection: the socket is the stream's */
	assert_true(wait_state(st.streams[0], nexsrv_stream_own));

	/* then what another thread writes, and a clean end when it closes */
	w.s = st.streams[0];
	st.streams[0] = NULL; /* the writer closes it */
	assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
	while ((n = read_chunk(c, chunk, sizeof(chunk))) > 0)
		nx_strlcat(got, chunk, sizeof(got));
	assert_int_equal(n, 0);
	assert_string_equal(got, "hello\nworld\n{\"n\":1}\n");
	pthread_join(t, NULL);
	assert_int_equal(st.closed_cb, 0); /* the producer closed: no callback */

	/* the socket was the stream's: it closes after the body, cleanly (not a reset) */
	assert_int_equal(recv(c->fd, chunk, sizeof(chunk), 0), 0);
	conn_close(c);
	stop(http);
}

/* Whether the server closed c without an answer (refused at the connection limit). */
static bool conn_refused(struct conn *c)
{
	char b[64];
	ssize_t n;

	conn_sends(c, "GET /valid HTTP/1.1\r\nHost: t\r\n\r\n");
	n = recv(c->fd, b, sizeof(b), 0);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* Streams that left MHD for a socket of their own still count against the connection limits:
 * a client at its address's limit is refused until one of its streams ends. */
static void test_own_streams_count(void **state)
{
	enum { LIMIT = 3 };
	struct nexsrv_http *http =
		start((struct nexsrv_http_config){ .per_ip_connections = LIMIT });
	struct conn *c[LIMIT], *extra;
	struct resp r;
	bool admitted = false;

	(void)state;
	state_reset(false);
	for (int i = 0; i < LIMIT; i++) {
		c[i] = conn_open(nexsrv_http_port(http), 0);
		conn_sends(c[i], stream_req);
		assert_true(wait_streams((size_t)i + 1));
		assert_true(read_head(c[i], &r));
		assert_true(wait_state(st.streams[i], nexsrv_stream_own));
	}
	extra = conn_open(nexsrv_http_port(http), 0);
	assert_true(conn_refused(extra));
	conn_close(extra);

	/* one stream's client goes: its socket is closed and its share comes back */
	conn_close(c[0]);
	assert_true(wait_closed_cb(1));
	for (int i = 0; i < WAIT_MS / 10 && !admitted; i++) {
		extra = conn_open(nexsrv_http_port(http), 0);
		conn_sends(extra, "GET /valid HTTP/1.1\r\nHost: t\r\n\r\n");
		admitted = read_resp(extra, &r, false) && r.status == 400;
		conn_close(extra);
		if (!admitted)
			usleep(10 * 1000);
	}
	assert_true(admitted);
	close_streams();
	for (int i = 1; i < LIMIT; i++)
		conn_close(c[i]);
	stop(http);
}

/* A stream whose socket cannot be duplicated (no descriptor free: here the limit leaves room
 * for the accepted connection only) stays parked in MHD, writes still reach its client, and
 * it takes its socket on a write once a descriptor is free. */
static void test_stream_takes_socket_later(void **state)
{
	struct nexsrv_http *http = start((struct nexsrv_http_config){ 0 });
	struct conn *c = conn_open(nexsrv_http_port(http), 0);
	struct rlimit saved, tight;
	struct resp r;
	struct nexsrv_stream *s;
	char chunk[64];
	int next;

	(void)state;
	state_reset(false);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	/* a first request: the server has accepted the connection */
	conn_sends(c, "GET /valid HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_true(read_resp(c, &r, false));
	next = dup(0); /* the lowest free descriptor: the limit keeps the duplicate from it */
	assert_true(next >= 0);
	close(next);
	tight = saved;
	tight.rlim_cur = (rlim_t)next;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
	s = open_stream(c);
	assert_true(wait_direct(s));
	assert_false(nexsrv_stream_own(s));
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);

	assert_int_equal(nexsrv_stream_write(s, "event\n", 6), 0);
	assert_true(read_chunk(c, chunk, sizeof(chunk)) > 0);
	assert_string_equal(chunk, "event\n");
	assert_true(wait_state(s, nexsrv_stream_own));
	assert_int_equal(nexsrv_stream_write(s, "again\n", 6), 0);
	assert_true(read_chunk(c, chunk, sizeof(chunk)) > 0);
	assert_string_equal(chunk, "again\n");
	close_streams();
	assert_int_equal(read_chunk(c, chunk, sizeof(chunk)), 0);
	conn_close(c);
	stop(http);
}

/* Entries of a /proc/self directory (a task or a descriptor each). */
static long count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	long n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static long count_threads(void)
{
	return count_entries("/proc/self/task");
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void test_idle_streams_hold_no_thread(void **state)
{
	enum { N = 300 }; /* more than the stream index starts with */
	struct nexsrv_http *http = start((struct nexsrv_http_config){ .threads = 4 });
	static struct conn *c[N];
	long before = count_threads(), after;
	double cpu;
	struct resp r;
	char chunk[64];
	double open_streams = 0;

	(void)state;
	state_reset(false);
	for (int i = 0; i < N; i++) {
		c[i] = conn_open(nexsrv_http_port(http), 0);
		conn_sends(c[i], stream_req);
	}
	assert_true(wait_streams(N));
	for (int i = 0; i < N; i++) {
		assert_true(read_head(c[i], &r));
		assert_int_equal(r.status, 200);
	}
	after = count_threads();
	if (after - before > 1)
		fail_msg("%d idle streams took %ld threads (before %ld, after %ld)", N,
			 after - before, before, after);
	assert_int_equal(nexsrv_metric_get((struct nexsrv_metric *)nexsrv_metrics_gauge(
						   nexsrv_http_metrics(http), "http_streams_open",
						   "", NULL, NULL),
					   NULL, &open_streams),
			 0);
	assert_true(open_streams == N);

	/* idle means parked, not polling: next to no CPU while nothing happens */
	cpu = cpu_seconds();
	usleep(300 * 1000);
	cpu = cpu_seconds() - cpu;
	if (cpu > 0.1)
		fail_msg("%d idle streams used %.3f s of CPU in 0.3 s", N, cpu);

	/* every parked stream wakes up for a write (streams are numbered in the order the
	 * handlers ran, not the order of the connections: every client gets the same) */
	for (int i = 0; i < N; i++)
		assert_int_equal(nexsrv_stream_write(st.streams[i], "event\n", 6), 0);
	for (int i = 0; i < N; i++) {
		assert_true(read_chunk(c[i], chunk, sizeof(chunk)) > 0);
		assert_string_equal(chunk, "event\n");
	}
	close_streams();
	for (int i = 0; i < N; i++) {
		assert_int_equal(read_chunk(c[i], chunk, sizeof(chunk)), 0);
		conn_close(c[i]);
	}
	assert_int_equal(st.closed_cb, 0);
	stop(http);
}

static void test_client_disconnect(void **state)
{
	struct nexsrv_http *http = start((struct nexsrv_http_config){ 0 });
	struct conn *c = conn_open(nexsrv_http_port(http), 0);
	struct nexsrv_stream *s;

	(void)state;
	state_reset(false);
	s = open_stream(c);
	conn_close(c); /* while the stream is idle: only the socket watch can notice */
	assert_true(wait_closed_cb(1));
	assert_ptr_equal(st.last_closed, s);
	assert_int_equal(nexsrv_stream_write(s, "late\n", 5), -EPIPE);
	close_streams();
	stop(http);
}

static void test_close_from_callback(void **state)
{
	struct nexsrv_http *http = start((struct nexsrv_http_config){ 0 });
	struct conn *c = conn_open(nexsrv_http_port(http), 0);
	struct resp r;
	char chunk[64];

	(void)state;
	state_reset(true);
	conn_sends(c, "GET /stream?greet=1 HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_true(wait_streams(1));
	assert_true(read_head(c, &r));
	assert_true(read_chunk(c, chunk, sizeof(chunk)) > 0);
	conn_close(c);
	assert_true(wait_closed_cb(1));
	pthread_mutex_lock(&st.lock);
	assert_null(st.streams[0]); /* closed by the callback itself */
	pthread_mutex_unlock(&st.lock);
	stop(http);
}

static void test_slow_client(void **state)
{
	struct nexsrv_http *http =
		start((struct nexsrv_http_config){ .stream_queue_limit = 256 * 1024 });
	struct conn *c = conn_open(nexsrv_http_port(http), 4096);
	static char block[64 * 1024];
	int rc = 0, i;

	(void)state;
	state_reset(false);
	memset(block, 'x', sizeof(block));
	open_stream(c);
	/* the client reads nothing: kernel buffers fill, then the queue, then writes fail */
	for (i = 0; i < 4096 && rc == 0; i++)
		rc = nexsrv_stream_write(st.streams[0], block, sizeof(block));
	assert_int_equal(rc, -ENOBUFS);
	conn_close(c);
	assert_true(wait_closed_cb(1));
	close_streams();
	stop(http);
}

/* The body a reader gets: chunked (HTTP/1.1) up to its last chunk, else up to EOF. */
static size_t read_body(struct conn *c, bool chunked, char *out, size_t size)
{
	size_t len = 0;
	long n;

	if (chunked) {
		while ((n = read_chunk(c, out + len, size - len)) > 0)
			len += (size_t)n;
		assert_int_equal(n, 0); /* the last chunk, not an error */
		return len;
	}
	do {
		assert_true(len + c->len < size);
		memcpy(out + len, c->buf, c->len);
		len += c->len;
		c->len = 0;
	} while (conn_fill(c));
	return len;
}

static void make_cert(const char *dir, const char *name, char *cert, char *key, size_t size);

/* A client that falls behind and then reads everything gets every byte, in order, and a
 * clean end, whether the body is chunked or ends with the connection, over HTTP or HTTPS. */
static void slow_client_catches_up(const char *version, bool tls)
{
	enum { LINES = 16000, LINE = 400 }; /* more than the socket's buffer (tcp_wmem: 4 MB) */
	char dir[] = "/tmp/test_http_slow.XXXXXX", cert[128], key[128];
	struct nexsrv_http_config cfg = { .stream_queue_limit = 16 * 1024 * 1024 };
	struct nexsrv_http *http;
	struct conn *c;
	bool chunked = strcmp(version, "HTTP/1.1") == 0;
	char *want = malloc(LINES * LINE + 1), *got = malloc(LINES * LINE + 1024), req[128];
	struct nexsrv_stream *s;
	struct resp r;
	size_t len;

	assert_non_null(want);
	assert_non_null(got);
	if (tls) {
		assert_non_null(mkdtemp(dir));
		make_cert(dir, "s", cert, key, sizeof(cert));
		cfg.tls_cert = cert;
		cfg.tls_key = key;
	}
	http = start(cfg);
	c = conn_open(nexsrv_http_port(http), 4096);
	if (tls)
		conn_start_tls(c);
	state_reset(false);
	snprintf(req, sizeof(req), "GET /stream %s\r\nHost: t\r\n\r\n", version);
	conn_sends(c, req);
	assert_true(wait_streams(1));
	assert_true(read_head(c, &r));
	assert_int_equal(r.status, 200);
	assert_true((header(&r, "transfer-encoding") != NULL) == chunked);
	s = st.streams[0];
	st.streams[0] = NULL;
	assert_true(wait_direct(s));
	/* 6.4 MB while the client reads nothing: the socket fills, the rest waits queued */
	for (int i = 0; i < LINES; i++) {
		char *line = want + (size_t)i * LINE;

		snprintf(line, LINE, "%05d ", i);
		memset(line + 6, 'a' + i % 26, LINE - 7);
		line[LINE - 1] = '\n';
		assert_int_equal(nexsrv_stream_write(s, line, LINE), 0);
	}
	want[LINES * LINE] = '\0';
	nexsrv_stream_close(s);
	len = read_body(c, chunked, got, LINES * LINE + 1024);
	assert_int_equal(len, LINES * LINE);
	assert_memory_equal(got, want, len);
	free(want);
	free(got);
	conn_close(c);
	stop(http);
	if (tls) {
		unlink(cert);
		unlink(key);
		rmdir(dir);
	}
}

static void test_slow_client_catches_up(void **state)
{
	(void)state;
	slow_client_catches_up("HTTP/1.1", false);
	slow_client_catches_up("HTTP/1.0", false);
	slow_client_catches_up("HTTP/1.1", true);
	slow_client_catches_up("HTTP/1.0", true);
}

struct slow_req {
	uint16_t port;
	const char *path; /* default /slow */
	struct resp r;
};

static void *slow_main(void *arg)
{
	struct slow_req *s = arg;
	char req[128];

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n",
		 s->path ? s->path : "/slow");
	request(s->port, req, &s->r);
	return NULL;
}

static void *stop_main(void *arg)
{
	nexsrv_http_stop(arg);
	return NULL;
}

/* While a stop waits for a request in progress (held at a gate), a kept-alive connection's request
 * gets a 503 and a new connection is turned away (closed unanswered, or refused) at once: not
 * served, nor left in the listen queue until the stop ends. */
static void test_stop_turns_new_connections_away(void **state)
{
	struct nexsrv_http *http =
		start((struct nexsrv_http_config){ .stop_timeout_ms = 2 * WAIT_MS });
	uint16_t port = nexsrv_http_port(http);
	struct slow_req held = { .port = port, .path = "/gate" };
	struct conn *kept = conn_open(port, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	static const char req[] = "GET /valid HTTP/1.1\r\nHost: t\r\n\r\n";
	struct timeval tv = { .tv_sec = WAIT_MS / 1000 };
	int late;
	pthread_t t_slow, t_stop;
	struct resp r;
	char buf[64];
	ssize_t n;

	(void)state;
	conn_sends(kept, "GET /valid HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_true(read_resp(kept, &r, false));
	assert_int_equal(r.status, 400); /* (what /valid answers while serving) */
	gate.entered = gate.open = false;
	assert_int_equal(pthread_create(&t_slow, NULL, slow_main, &held), 0);
	assert_true(gate_wait(&gate.entered));
	assert_int_equal(pthread_create(&t_stop, NULL, stop_main, http), 0);
	/* the stop has begun once the kept-alive connection is answered 503 (bounded) */
	for (int i = 0; i < 200 && r.status != 503; i++) {
		conn_sends(kept, "GET /valid HTTP/1.1\r\nHost: t\r\n\r\n");
		assert_true(read_resp(kept, &r, false));
	}
	assert_int_equal(r.status, 503);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	late = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(late >= 0);
	setsockopt(late, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(late, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
		(void)send(late, req, sizeof(req) - 1, MSG_NOSIGNAL);
		n = recv(late, buf, sizeof(buf), 0);
		assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
	} else {
		assert_int_equal(errno, ECONNREFUSED);
	}
	gate_set(&gate.open); /* the stop, waiting for it, can end */
	pthread_join(t_stop, NULL);
	pthread_join(t_slow, NULL);
	assert_int_equal(held.r.status, 200);
	assert_int_equal(__atomic_load_n(&handler_failures, __ATOMIC_SEQ_CST), 0);
	close(late);
	conn_close(kept);
}

/* Clients that connect and ask as fast as they can, until told to stop. */
struct hammer {
	pthread_t thread;
	uint16_t port;
	bool stop; /* (atomic) */
	unsigned answered;
};

static void *hammer_main(void *arg)
{
	static const char req[] = "GET /valid HTTP/1.1\r\nHost: t\r\n\r\n";
	struct hammer *h = arg;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(h->port) };
	struct timeval tv = { .tv_sec = 1 };
	char buf[512];

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	while (!__atomic_load_n(&h->stop, __ATOMIC_RELAXED)) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			break;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof(req) - 1) &&
		    recv(fd, buf, sizeof(buf), 0) > 0)
			__atomic_add_fetch(&h->answered, 1, __ATOMIC_RELAXED);
		close(fd);
	}
	return NULL;
}

/* Stops while connections come and go, libmicrohttpd's workers busy with the listening
 * socket as each stop begins: MHD_quiesce_daemon raced them into an abort about once in 150
 * stops, so that 300 of them caught it in three runs of four. */
static void test_stop_under_load(void **state)
{
	long fds = count_entries("/proc/self/fd");

	(void)state;
	for (unsigned round = 0; round < 300; round++) {
		struct nexsrv_http *http = start((struct nexsrv_http_config){ .threads = 2 });
		struct hammer h[3];
		unsigned answered = 0;

		for (size_t i = 0; i < 3; i++) {
			h[i] = (struct hammer){ .port = nexsrv_http_port(http) };
			assert_int_equal(pthread_create(&h[i].thread, NULL, hammer_main, &h[i]), 0);
		}
		/* until the clients are well under way (bounded) */
		for (unsigned t = 0; t < 2000 && answered < 20 * (round % 4 + 1); t++) {
			usleep(1000);
			answered = 0;
			for (size_t i = 0; i < 3; i++)
				answered += __atomic_load_n(&h[i].answered, __ATOMIC_RELAXED);
		}
		assert_true(answered > 0);
		stop(http);
		for (size_t i = 0; i < 3; i++) {
			__atomic_store_n(&h[i].stop, true, __ATOMIC_RELAXED);
			pthread_join(h[i].thread, NULL);
		}
	}
	assert_int_equal(count_entries("/proc/self/fd"), fds); /* the listening sockets too */
}

static void test_stop_ends_streams(void **state)
{
	struct nexsrv_http *http = start((struct nexsrv_http_config){ 0 });
	struct conn *c = conn_open(nexsrv_http_port(http), 0);
	struct slow_req slow = { .port = nexsrv_http_port(http) };
	struct nexsrv_stream *s;
	char chunk[64];
	pthread_t t;

	(void)state;
	state_reset(false);
	s = open_stream(c);
	assert_int_equal(pthread_create(&t, NULL, slow_main, &slow), 0);
	usleep(100 * 1000); /* let the slow request reach its handler */
	assert_int_equal(nexsrv_stream_write(s, "last\n", 5), 0);

	stop(http);
	/* the request in progress finished; the stream delivered its queue and ended cleanly */
	pthread_join(t, NULL);
	assert_int_equal(slow.r.status, 200);
	assert_true(read_chunk(c, chunk, sizeof(chunk)) > 0);
	assert_string_equal(chunk, "last\n");
	assert_int_equal(read_chunk(c, chunk, sizeof(chunk)), 0);
	assert_int_equal(st.closed_cb, 1);
	/* the producer still holds the stream after the server is gone */
	assert_int_equal(nexsrv_stream_write(s, "x", 1), -EPIPE);
	close_streams();
	conn_close(c);
}

/* Whether the client has bytes to read within ms. */
static bool conn_readable(struct conn *c, int ms)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	return c->len || poll(&p, 1, ms) > 0;
}

/* Held writes go out on release, together; a close releases too. */
static void test_hold_release(void **state)
{
	struct nexsrv_http *http = start((struct nexsrv_http_config){ 0 });
	struct conn *c = conn_open(nexsrv_http_port(http), 0);
	struct nexsrv_stream *s;
	char got[64] = "", chunk[64];
	long n;

	(void)state;
	state_reset(false);
	s = open_stream(c);
	st.streams[0] = NULL;
	assert_true(wait_direct(s));
	nexsrv_stream_hold(s);
	assert_int_equal(nexsrv_stream_write(s, "a\n", 2), 0);
	assert_int_equal(nexsrv_stream_write(s, "b\n", 2), 0);
	assert_false(conn_readable(c, 100));
	nexsrv_stream_release(s);
	assert_true(conn_readable(c, WAIT_MS));
	while (strlen(got) < 4 && read_chunk(c, chunk, sizeof(chunk)) > 0)
		nx_strlcat(got, chunk, sizeof(got));
	assert_string_equal(got, "a\nb\n");
	nexsrv_stream_hold(s);
	assert_int_equal(nexsrv_stream_write(s, "c\n", 2), 0);
	nexsrv_stream_close(s);
	while ((n = read_chunk(c, chunk, sizeof(chunk))) > 0)
		nx_strlcat(got, chunk, sizeof(got));
	assert_int_equal(n, 0);
	assert_string_equal(got, "a\nb\nc\n");
	conn_close(c);
	stop(http);
}

/* A client that stops reading holds its stream's socket full: stopping the server still
 * ends, after stop_timeout_ms, with the stream closed. */
static void test_stop_with_slow_client(void **state)
{
	struct nexsrv_http *http = start((struct nexsrv_http_config){
		.stop_timeout_ms = 200, .stream_queue_limit = 16 * 1024 * 1024 });
	struct conn *c = conn_open(nexsrv_http_port(http), 4096);
	static char block[64 * 1024];

	(void)state;
	state_reset(false);
	memset(block, 'x', sizeof(block));
	/* once the stream writes directly, more than the socket holds (tcp_wmem: 4 MB) */
	assert_true(wait_direct(open_stream(c)));
	for (int i = 0; i < 128; i++)
		assert_int_equal(nexsrv_stream_write(st.streams[0], block, sizeof(block)), 0);
	stop(http);
	assert_int_equal(st.closed_cb, 1);
	assert_int_equal(nexsrv_stream_write(st.streams[0], "x", 1), -EPIPE);
	close_streams();
	conn_close(c);
}

/* --- the request API ------------------------------------------------------------------ */

static void test_request_api(void **state)
{
	struct nexsrv_http *http = start((struct nexsrv_http_config){ 0 });
	uint16_t port = nexsrv_http_port(http);
	struct conn *c = conn_open(port, 0);
	struct json_object *obj, *a;
	const char *v;
	char req[512];
	struct resp r;
	static const char body[] = "{\"a\": [1, 2]}";

	(void)state;
	snprintf(req, sizeof(req),
		 "POST /echo/abc%%20d?q=x%%2By+z&q=2 HTTP/1.1\r\nHost: t\r\nX-Test: hi\r\n"
		 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		 strlen(body), body);
	conn_sends(c, req);
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 201);
	assert_string_equal(header(&r, "x-total-count"), "7");
	obj = json_body(&r);
	assert_int_equal(nx_json_get_string(obj, "id", &v, NULL), 0);
	assert_string_equal(v, "abc d");
	assert_int_equal(nx_json_get_string(obj, "q", &v, NULL), 0);
	assert_string_equal(v, "x+y z");
	assert_int_equal(nx_json_get_string(obj, "hdr", &v, NULL), 0);
	assert_string_equal(v, "hi");
	assert_int_equal(nx_json_get_string(obj, "client", &v, NULL), 0);
	assert_string_equal(v, "127.0.0.1");
	assert_int_equal(nx_json_get_string(obj, "route", &v, NULL), 0);
	assert_string_equal(v, "/echo/{id}");
	assert_int_equal(nx_json_get_string(obj, "path", &v, NULL), 0);
	assert_string_equal(v, "/echo/abc%20d");
	assert_int_equal(nx_json_get_array(obj, "a", &a, NULL), 0);
	assert_int_equal(json_object_array_length(a), 2);
	json_object_put(obj);

	/* same connection: malformed JSON, then an empty body */
	conn_sends(c, "POST /echo/x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n{\"a\":");
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 400);
	assert_json_field(&r, "error", "request json is invalid: ");
	conn_sends(c, "POST /echo/x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 400);
	assert_json_field(&r, "error", "request json is invalid: ");

	/* the error shapes of the original service */
	conn_sends(c, "GET /valid HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body, "{\"error\":\"path parameter invalid\",\"field\":\"uid\","
				    "\"reason\":\"cannot delete owner of the organization\"}");
	conn_sends(c, "GET /notfound HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "{\"error\":\"not found\",\"resource\":\"vpc\"}");
	conn_sends(c, "GET /noreply HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 500);
	assert_string_equal(r.body, "{\"error\":\"internal error\"}");

	/* routing errors keep the connection */
	conn_sends(c, "GET /nothing/here HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "{\"error\":\"not found\"}");
	conn_sends(c, "DELETE /valid HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 405);
	assert_string_equal(header(&r, "allow"), "GET, HEAD");
	assert_string_equal(r.body, "{\"error\":\"method not allowed\"}");
	conn_sends(c, "GET /a%zz HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 400);
	assert_json_field(&r, "error", "bad percent-encoding \"%zz\" in the path");
	conn_sends(c, "GET /valid?x=%00 HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 400);
	assert_json_field(&r, "error", "(NUL) is not allowed in the query");
	/* a body sent to a missing route is read and dropped; the connection lives on */
	conn_sends(c, "POST /nothing HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 404);
	/* HEAD on a GET route: the status and headers without a body */
	conn_sends(c, "HEAD /notfound HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_true(read_resp(c, &r, true));
	assert_int_equal(r.status, 404);
	conn_sends(c, "GET /valid HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 400);
	conn_close(c);
	stop(http);
}

static void test_auth_hook(void **state)
{
	struct nexsrv_http *http = start((struct nexsrv_http_config){ 0 });
	uint16_t port = nexsrv_http_port(http);
	struct resp r;

	(void)state;
	/* no hook: routes that need one are refused */
	request(port, "GET /auth HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n\r\n", &r);
	assert_int_equal(r.status, 401);
	assert_string_equal(header(&r, "www-authenticate"), "Bearer");
	assert_string_equal(r.body, "{\"error\":\"unauthorized\"}");

	nexsrv_http_set_auth_hook(http, auth_hook, NULL);
	request(port, "GET /auth HTTP/1.1\r\nHost: t\r\nAuthorization: bearer   good\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"caller\":\"alice\"}");
	request(port, "GET /auth HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer bad\r\n\r\n", &r);
	assert_int_equal(r.status, 401);
	request(port, "GET /auth HTTP/1.1\r\nHost: t\r\nAuthorization: Basic Z29vZA==\r\n\r\n", &r);
	assert_int_equal(r.status, 401);
	request(port, "GET /auth HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	assert_int_equal(r.status, 401);
	request(port, "GET /auth HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer custom\r\n\r\n", &r);
	assert_int_equal(r.status, 403);
	assert_string_equal(r.body, "{\"error\":\"token custom is revoked\"}");
	/* routes without the flag never see the hook */
	request(port, "GET /valid HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	assert_int_equal(r.status, 400);
	stop(http);
}

static void test_body_limit(void **state)
{
	struct nexsrv_http *http = start((struct nexsrv_http_config){ .body_limit = 100 });
	uint16_t port = nexsrv_http_port(http);
	struct conn *c = conn_open(port, 0);
	char big[1024];
	struct resp r;

	(void)state;
	memset(big, ' ', sizeof(big));
	/* over the limit: read, dropped, 413, and the connection is still usable */
	conn_sends(c, "POST /echo/x HTTP/1.1\r\nHost: t\r\nContent-Length: 200\r\n\r\n");
	conn_send(c, big, 200);
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 413);
	assert_json_field(&r, "error", "request body too large (limit 100 bytes)");
	/* exactly at the limit is fine (a JSON body padded with spaces) */
	conn_sends(c, "POST /echo/x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{}");
	conn_send(c, big, 98);
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 201);
	/* chunked bodies are counted as they come */
	conn_sends(c, "POST /echo/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
		      "50\r\n");
	conn_send(c, big, 0x50);
	conn_sends(c, "\r\n50\r\n");
	conn_send(c, big, 0x50);
	conn_sends(c, "\r\n0\r\n\r\n");
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 413);
	conn_close(c);

	/* a client waiting for 100-continue is told at once and never sends the body */
	c = conn_open(port, 0);
	conn_sends(c, "POST /echo/x HTTP/1.1\r\nHost: t\r\nContent-Length: 200\r\n"
		      "Expect: 100-continue\r\n\r\n");
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 413);
	assert_string_equal(header(&r, "connection"), "close");
	conn_close(c);

	/* far too large to be worth reading: refused at once, connection closed */
	c = conn_open(port, 0);
	conn_sends(c, "POST /echo/x HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
	assert_true(read_resp(c, &r, false));
	assert_int_equal(r.status, 413);
	assert_string_equal(header(&r, "connection"), "close");
	conn_close(c);
	stop(http);
}

/* Waits until the metrics text holds needle: a request is counted when MHD says it is
 * complete, which may be just after its client read the response.  False on timeout. */
static bool wait_metric(struct nexsrv_http *http, const char *needle)
{
	struct nx_sbuf text;
	bool found = false;

	for (int waited = 0; !found && waited < WAIT_MS; waited += 10) {
		nx_sbuf_init(&text, NULL, 0);
		assert_int_equal(nexsrv_metrics_render(nexsrv_http_metrics(http), &text), 0);
		found = strstr(nx_sbuf_str(&text), needle) != NULL;
		if (!found && waited + 10 >= WAIT_MS)
			fprintf(stderr, "no \"%s\" in:\n%s", needle, nx_sbuf_str(&text));
		nx_sbuf_fini(&text);
		if (!found)
			usleep(10 * 1000);
	}
	return found;
}

static int auth_get(uint16_t port, const char *token, struct resp *r)
{
	char raw[256];

	snprintf(raw, sizeof(raw),
		 "GET /auth HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n", token);
	request(port, raw, r);
	return r->status;
}

static void test_rate_limit(void **state)
{
	/* per caller 1/s, burst 2; per client address (all of this test) 10/s, burst 20 */
	struct nexsrv_http *http =
		start((struct nexsrv_http_config){ .rate_limit_rps = 1, .rate_limit_burst = 2 });
	uint16_t port = nexsrv_http_port(http);
	struct nx_err err = { "" };
	struct resp r;
	int refused_at = -1;
	char token[32];

	(void)state;
	nexsrv_http_set_auth_hook(http, auth_hook, NULL);
	/* the caller tier: a verified caller has its bucket, whatever token it presents */
	assert_int_equal(auth_get(port, "good", &r), 200);
	assert_int_equal(auth_get(port, "good-again", &r), 200);
	assert_int_equal(auth_get(port, "good", &r), 429);
	assert_string_equal(header(&r, "retry-after"), "1");
	assert_string_equal(r.body, "{\"error\":\"too many requests\"}");
	assert_int_equal(auth_get(port, "good-again", &r), 429);
	/* another caller from the same address is not held back by the first */
	assert_int_equal(auth_get(port, "bob", &r), 200);
	assert_int_equal(auth_get(port, "bob", &r), 200);
	assert_int_equal(auth_get(port, "bob", &r), 429);
	/* a hook that names no key: the address is the caller, at the per-caller rate */
	assert_int_equal(auth_get(port, "nokey", &r), 200);
	assert_int_equal(auth_get(port, "nokey", &r), 200);
	assert_int_equal(auth_get(port, "nokey", &r), 429);

	/* the address tier: 10 of its 20 tokens are gone.  Invented tokens fail
	 * authentication and get no bucket of their own: they drain the address's. */
	for (int i = 0; i < 100 && refused_at < 0; i++) {
		snprintf(token, sizeof(token), "invented-%d", i);
		if (auth_get(port, token, &r) == 429)
			refused_at = i;
		else
			assert_int_equal(r.status, 401);
	}
	assert_true(refused_at >= 10); /* the 10 left, plus what refilled meanwhile */
	assert_true(refused_at < 100);
	assert_string_equal(header(&r, "retry-after"), "1");
	assert_string_equal(r.body, "{\"error\":\"too many requests\"}");

	assert_true(wait_metric(http, "\nhttp_rate_limited_total 5\n"));
	assert_true(wait_metric(
		http, "\nhttp_requests_total{method=\"GET\",route=\"/auth\",code=\"429\"} 5\n"));
	assert_true(wait_metric(
		http, "\nhttp_requests_total{method=\"GET\",route=\"/auth\",code=\"200\"} 6\n"));

	/* off, then on again at run time: fresh buckets */
	assert_int_equal(nexsrv_http_set_rate_limit(http, 0, 0, &err), 0);
	for (int i = 0; i < 5; i++) {
		request(port, "GET /valid HTTP/1.1\r\nHost: t\r\n\r\n", &r);
		assert_int_equal(r.status, 400);
		assert_int_equal(auth_get(port, "good", &r), 200);
	}
	assert_int_equal(nexsrv_http_set_rate_limit(http, 1, 1, &err), 0);
	assert_int_equal(auth_get(port, "good", &r), 200);
	assert_int_equal(auth_get(port, "good", &r), 429);
	/* a burst of 1 per caller is a burst of 10 per address: unauthenticated requests
	 * (unknown paths too) count there */
	refused_at = -1;
	for (int i = 0; i < 100 && refused_at < 0; i++) {
		request(port, "GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n", &r);
		if (r.status == 429)
			refused_at = i;
		else
			assert_int_equal(r.status, 404);
	}
	assert_true(refused_at >= 8 && refused_at < 100);
	assert_int_equal(nexsrv_http_set_rate_limit(http, 1, 5, &err), 0);
	assert_int_equal(nexsrv_http_set_rate_limit(http, 2000000, 1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "out of range"));
	stop(http);
}

/* --- start-up checks -------------------------------------------------------------------- */

static void expect_start_error(struct nexsrv_http_config cfg, const char *want)
{
	struct nx_err err = { "" };
	struct nexsrv_http *http = nexsrv_http_start(&cfg, &err);

	if (http) {
		stop(http);
		fail_msg("started, expected \"%s\"", want);
	}
	if (!strstr(err.msg, want))
		fail_msg("expected \"%s\" in \"%s\"", want, err.msg);
}

static void test_listen_errors(void **state)
{
	struct nexsrv_http *http = start((struct nexsrv_http_config){ 0 });
	char busy[32], want[128];
	struct nx_err err = { "" };

	(void)state;
	expect_start_error((struct nexsrv_http_config){ .listen = "127.0.0.1:0" },
			   "refusing to serve the API without TLS");
	expect_start_error(
		(struct nexsrv_http_config){ .listen = "nonsense", .insecure_http = true },
		"listen nonsense: expected HOST:PORT");
	expect_start_error((struct nexsrv_http_config){ .listen = "", .insecure_http = true },
			   "listen: no address given");
	expect_start_error(
		(struct nexsrv_http_config){ .listen = "127.0.0.1:65536", .insecure_http = true },
		"bad port \"65536\"");
	expect_start_error((struct nexsrv_http_config){ .listen = "::1:80", .insecure_http = true },
			   "an IPv6 address needs brackets");
	expect_start_error(
		(struct nexsrv_http_config){ .listen = "[::1:80", .insecure_http = true },
		"expected [IPV6]:PORT");
	expect_start_error(
		(struct nexsrv_http_config){ .listen = "[nothing]:80", .insecure_http = true },
		"listen [nothing]:80: ");
	expect_start_error(
		(struct nexsrv_http_config){ .listen = "192.0.2.1:8080", .insecure_http = true },
		"cannot listen on 192.0.2.1:8080: Cannot assign requested address");
	snprintf(busy, sizeof(busy), "127.0.0.1:%u", nexsrv_http_port(http));
	snprintf(want, sizeof(want), "cannot listen on %s: Address already in use", busy);
	expect_start_error((struct nexsrv_http_config){ .listen = busy, .insecure_http = true },
			   want);
	stop(http);

	/* a name, and the dual-stack wildcard */
	http = nexsrv_http_start(
		&(struct nexsrv_http_config){ .listen = "localhost:0", .insecure_http = true },
		&err);
	if (!http)
		fail_msg("localhost:0: %s", err.msg);
	stop(http);
	http = nexsrv_http_start(
		&(struct nexsrv_http_config){ .listen = "[::]:0", .insecure_http = true }, &err);
	if (http) {
		struct resp r;

		/* an IPv4 client reaches the IPv6 wildcard */
		request(nexsrv_http_port(http), "GET /x HTTP/1.1\r\nHost: t\r\n\r\n", &r);
		assert_int_equal(r.status, 404);
		stop(http);
	} else {
		assert_non_null(strstr(err.msg, "cannot listen")); /* a host without IPv6 */
	}
	nexsrv_http_stop(NULL);
}

/* A self-signed certificate and its key, as PEM files in dir. */
static void make_cert(const char *dir, const char *name, char *cert, char *key, size_t size)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *subj;
	FILE *f;

	assert_non_null(pk);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pk);
	subj = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
				   -1, 0);
	X509_set_issuer_name(x, subj);
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
	snprintf(cert, size, "%s/%s-cert.pem", dir, name);
	snprintf(key, size, "%s/%s-key.pem", dir, name);
	f = fopen(cert, "w");
	assert_non_null(f);
	PEM_write_X509(f, x);
	fclose(f);
	f = fopen(key, "w");
	assert_non_null(f);
	PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pk);
}

static void test_tls_files(void **state)
{
	char dir[] = "/tmp/test_http_tls.XXXXXX";
	char cert_a[128], key_a[128], cert_b[128], key_b[128], empty[160];
	struct nexsrv_http *http;
	struct nx_err err = { "" };
	struct resp r;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	make_cert(dir, "a", cert_a, key_a, sizeof(cert_a));
	make_cert(dir, "b", cert_b, key_b, sizeof(cert_b));
	snprintf(empty, sizeof(empty), "%s/empty.pem", dir);
	f = fopen(empty, "w");
	assert_non_null(f);
	fputs("not a certificate\n", f);
	fclose(f);

	expect_start_error(
		(struct nexsrv_http_config){ .listen = "127.0.0.1:0", .tls_cert = cert_a },
		"HTTPS needs both tls-cert and tls-key");
	expect_start_error((struct nexsrv_http_config){ .listen = "127.0.0.1:0",
							.tls_cert = "/nonexistent/cert.pem",
							.tls_key = key_a },
			   "tls-cert /nonexistent/cert.pem: No such file or directory");
	expect_start_error((struct nexsrv_http_config){ .listen = "127.0.0.1:0",
							.tls_cert = dir,
							.tls_key = key_a },
			   "not a regular file");
	expect_start_error((struct nexsrv_http_config){ .listen = "127.0.0.1:0",
							.tls_cert = empty,
							.tls_key = key_a },
			   "no PEM certificate in it");
	expect_start_error((struct nexsrv_http_config){ .listen = "127.0.0.1:0",
							.tls_cert = cert_a,
							.tls_key = cert_a },
			   "no PEM private key in it");
	expect_start_error((struct nexsrv_http_config){ .listen = "127.0.0.1:0",
							.tls_cert = cert_a,
							.tls_key = key_b },
			   "does not belong to tls-cert");

	http = nexsrv_http_start(&(struct nexsrv_http_config){ .listen = "127.0.0.1:0",
							       .tls_cert = cert_a,
							       .tls_key = key_a,
							       .setup = setup_routes },
				 &err);
	if (!http)
		fail_msg("HTTPS: %s", err.msg);
	/* plain HTTP gets no HTTP answer from an HTTPS port */
	{
		struct conn *c = conn_open(nexsrv_http_port(http), 0);

		conn_sends(c, "GET /valid HTTP/1.1\r\nHost: t\r\n\r\n");
		assert_false(read_head(c, &r) && r.status == 400);
		conn_close(c);
	}
	stop(http);
	unlink(cert_a);
	unlink(key_a);
	unlink(cert_b);
	unlink(key_b);
	unlink(empty);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_chunks),
		cmocka_unit_test(test_idle_streams_hold_no_thread),
		cmocka_unit_test(test_client_disconnect),
		cmocka_unit_test(test_close_from_callback),
		cmocka_unit_test(test_slow_client),
		cmocka_unit_test(test_slow_client_catches_up),
		cmocka_unit_test(test_stop_ends_streams),
		cmocka_unit_test(test_stop_with_slow_client),
		cmocka_unit_test(test_stop_under_load),
		cmocka_unit_test(test_stop_turns_new_connections_away),
		cmocka_unit_test(test_hold_release),
		cmocka_unit_test(test_request_api),
		cmocka_unit_test(test_auth_hook),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_listen_errors),
		cmocka_unit_test(test_tls_files),
		cmocka_unit_test(test_own_streams_count),
		cmocka_unit_test(test_stream_takes_socket_later),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
