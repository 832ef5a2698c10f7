/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lib/httpc against a scripted HTTP/1.1 server in a thread of the test
 * process on an ephemeral port of 127.0.0.1: plain requests (bodies, headers, error
 * statuses, refused connections, no redirects), line streams (heartbeats, lines split
 * across chunks, idle timeout, limits, a refusing handler), cancellation and freeing from
 * inside callbacks, many concurrent requests, and the rejection of bad requests.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/httpc.h"
#include "lib/log.h"
#include "lib/loop.h"

#define WAIT_MS	  5000 /* the longest anything below is waited for */
#define MAX_CONNS 128
#define MAX_LINES 16

/* --- the scripted server ---------------------------------------------------------------- */

struct srv {
	int lfd;
	uint16_t port;
	int stop[2]; /* written once at stop: every thread polls the read end */
	pthread_t thr;
	pthread_mutex_t lock;
	pthread_t conns[MAX_CONNS];
	size_t n_conns;
	/* the last request to /echo */
	char method[16];
	char auth[256];
	char ctype[128];
	char body[1024];
	size_t body_len;
	unsigned closed; /* connections that saw the client go away */
};

struct conn {
	struct srv *s;
	int fd;
};

static void send_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

static void respond(int fd, int code, const char *reason, const char *extra, const char *body)
{
	char head[512];

	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n%s\r\n",
		 code, reason, strlen(body), extra ? extra : "");
	send_str(fd, head);
	send_str(fd, body);
}

static void stream_head(int fd)
{
	send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
		     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
}

static void chunk(int fd, const char *data, size_t n)
{
	char head[32];

	snprintf(head, sizeof(head), "%zx\r\n", n);
	send_str(fd, head);
	send_all(fd, data, n);
	send_str(fd, "\r\n");
}

/* Lets the previous chunk leave as its own segment, so the client reads it alone. */
static void pause_ms(long ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = ms * 1000000L };

	nanosleep(&ts, NULL);
}

/* Keeps the connection open until the client closes it or the server stops. */
static void hold_open(struct srv *s, int fd)
{
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
			       { .fd = s->stop[0], .events = POLLIN } };
	char buf[256];

	for (;;) {
		if (poll(p, 2, WAIT_MS) <= 0 || (p[1].revents & POLLIN))
			return;
		if (recv(fd, buf, sizeof(buf), 0) <= 0)
			break;
	}
	pthread_mutex_lock(&s->lock);
	s->closed++;
	pthread_mutex_unlock(&s->lock);
}

/* Copies the value of header name (case-insensitive) out of the header block. */
static void header_value(const char *head, const char *name, char *out, size_t size)
{
	const char *p = head;
	size_t nl = strlen(name), n;
	const char *end;

	out[0] = '\0';
	while ((p = strstr(p, "\r\n"))) {
		p += 2;
		if (!strncasecmp(p, name, nl) && p[nl] == ':') {
			p += nl + 1;
			while (*p == ' ')
				p++;
			end = strstr(p, "\r\n");
			n = end ? (size_t)(end - p) : strlen(p);
			if (n >= size)
				n = size - 1;
			memcpy(out, p, n);
			out[n] = '\0';
			return;
		}
	}
}

static void serve(struct srv *s, int fd, const char *method, const char *path, const char *head,
		  const char *body, size_t body_len)
{
	char line[300];

	if (!strcmp(path, "/hello")) {
		respond(fd, 200, "OK", NULL, "hello world");
	} else if (!strncmp(path, "/n/", 3)) {
		snprintf(line, sizeof(line), "n=%s", path + 3);
		respond(fd, 200, "OK", NULL, line);
	} else if (!strcmp(path, "/echo")) {
		pthread_mutex_lock(&s->lock);
		snprintf(s->method, sizeof(s->method), "%s", method);
		header_value(head, "Authorization", s->auth, sizeof(s->auth));
		header_value(head, "Content-Type", s->ctype, sizeof(s->ctype));
		s->body_len = body_len < sizeof(s->body) ? body_len : sizeof(s->body) - 1;
		memcpy(s->body, body, s->body_len);
		s->body[s->body_len] = '\0';
		pthread_mutex_unlock(&s->lock);
		respond(fd, 201, "Created", NULL, "{\"ok\":true}");
	} else if (!strcmp(path, "/redirect")) {
		respond(fd, 302, "Found", "Location: /hello\r\n", "moved");
	} else if (!strcmp(path, "/big")) {
		static char big[5001];

		memset(big, 'x', sizeof(big) - 1);
		respond(fd, 200, "OK", NULL, big);
	} else if (!strcmp(path, "/stream")) {
		static const char *const parts[] = { "one\n", "\n", "spl", "it\r\n",
						     "three\nfour\n" };

		stream_head(fd);
		for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
			chunk(fd, parts[i], strlen(parts[i]));
			pause_ms(10);
		}
		send_str(fd, "0\r\n\r\n");
	} else if (!strcmp(path, "/longline")) {
		static char longl[5002];

		memset(longl, 'y', sizeof(longl) - 2);
		longl[sizeof(longl) - 2] = '\n';
		stream_head(fd);
		chunk(fd, "short\n", 6);
		chunk(fd, longl, strlen(longl));
		send_str(fd, "0\r\n\r\n");
	} else if (!strcmp(path, "/idle")) {
		stream_head(fd);
		chunk(fd, "hi\n", 3);
		hold_open(s, fd);
	} else if (!strcmp(path, "/lines")) {
		stream_head(fd);
		chunk(fd, "a\nb\nc\n", 6);
		pause_ms(10);
		chunk(fd, "d\n", 2);
		hold_open(s, fd);
	} else {
		respond(fd, 404, "Not Found", NULL, "no such thing");
	}
}

static void *conn_main(void *arg)
{
	struct conn *cn = arg;
	struct srv *s = cn->s;
	struct pollfd p[2] = { { .fd = cn->fd, .events = POLLIN },
			       { .fd = s->stop[0], .events = POLLIN } };
	char buf[8192], method[16], path[256];
	size_t len = 0, head_len, clen = 0;
	char clen_s[32], *eoh;
	ssize_t n;

	for (;;) {
		buf[len] = '\0';
		eoh = strstr(buf, "\r\n\r\n");
		if (eoh) {
			head_len = (size_t)(eoh - buf) + 4;
			header_value(buf, "Content-Length", clen_s, sizeof(clen_s));
			clen = strtoul(clen_s, NULL, 10);
			if (len >= head_len + clen)
				break;
		}
		if (len && buf[0] == 0x16)
			break;
		if (len >= sizeof(buf) - 1 || poll(p, 2, WAIT_MS) <= 0 || (p[1].revents & POLLIN))
			goto out;
		n = recv(cn->fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			goto out;
		len += (size_t)n;
	}
	if (len && buf[0] == 0x16) {
		/* A TLS ClientHello: answer in plain text, as a plain server does. */
		send_str(cn->fd, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
		goto out;
	}
	if (sscanf(buf, "%15s %255s", method, path) != 2)
		goto out;
	*eoh = '\0';
	serve(s, cn->fd, method, path, buf, eoh + 4, clen);
out:
	close(cn->fd);
	free(cn);
	return NULL;
}

static void *listen_main(void *arg)
{
	struct srv *s = arg;
	struct pollfd p[2] = { { .fd = s->lfd, .events = POLLIN },
			       { .fd = s->stop[0], .events = POLLIN } };
	struct conn *cn;
	int fd, one = 1;

	for (;;) {
		if (poll(p, 2, -1) < 0 || (p[1].revents & POLLIN))
			return NULL;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		cn = calloc(1, sizeof(*cn));
		if (!cn || s->n_conns == MAX_CONNS) {
			free(cn);
			close(fd);
			continue;
		}
		cn->s = s;
		cn->fd = fd;
		if (pthread_create(&s->conns[s->n_conns], NULL, conn_main, cn)) {
			free(cn);
			close(fd);
			continue;
		}
		s->n_conns++;
	}
}

static void srv_start(struct srv *s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	assert_int_equal(pipe(s->stop), 0);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->lfd, MAX_CONNS), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &sl), 0);
	s->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&s->thr, NULL, listen_main, s), 0);
}

static void srv_stop(struct srv *s)
{
	assert_int_equal(write(s->stop[1], "x", 1), 1);
	pthread_join(s->thr, NULL);
	for (size_t i = 0; i < s->n_conns; i++)
		pthread_join(s->conns[i], NULL);
	close(s->lfd);
	close(s->stop[0]);
	close(s->stop[1]);
	pthread_mutex_destroy(&s->lock);
}

/* --- the client side -------------------------------------------------------------------- */

struct fixture {
	struct nx_loop *loop;
	struct nx_timer guard;
	bool guard_fired;
	struct nx_httpc *c;
	struct srv srv;
	char url[128];
};

/* What one request saw. */
struct result {
	struct fixture *f;
	unsigned done_calls;
	long status;
	char body[8192];
	size_t len;
	bool failed;
	char err[NX_ERR_MAX];
	char lines[MAX_LINES][64];
	size_t n_lines;
	uint64_t line_at_ms; /* when the last line arrived */
	uint64_t done_at_ms;
	bool stop_on_done;
	/* on_line behaviour */
	const char *cancel_at;	   /* cancel the request at this line */
	const char *refuse_at;	   /* return -EPROTO at this line */
	const char *free_at;	   /* free the client at this line */
	bool stop_on_line;	   /* stop the loop at each line */
	struct nx_httpc_req *then; /* started from on_line after the cancel */
	struct result *then_res;
	struct nx_httpc_req *cancel_other; /* cancelled from done */
	unsigned *count;		   /* shared completion counter */
	unsigned count_target;
};

static void guard_cb(struct nx_timer *t, void *arg)
{
	struct fixture *f = arg;

	(void)t;
	f->guard_fired = true;
	nx_loop_stop(f->loop);
}

static void run(struct fixture *f)
{
	f->guard_fired = false;
	nx_timer_arm(&f->guard, WAIT_MS);
	assert_int_equal(nx_loop_run(f->loop), 0);
	nx_timer_cancel(&f->guard);
	assert_false(f->guard_fired);
}

static const char *url(struct fixture *f, const char *path)
{
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u%s", f->srv.port, path);
	return f->url;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct nx_err err;

	assert_non_null(f);
	f->loop = nx_loop_new();
	assert_non_null(f->loop);
	nx_timer_init(f->loop, &f->guard, guard_cb, f);
	f->c = nx_httpc_new(f->loop, NULL, &err);
	assert_non_null(f->c);
	srv_start(&f->srv);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nx_httpc_free(f->c);
	srv_stop(&f->srv);
	nx_timer_fini(&f->guard);
	nx_loop_free(f->loop);
	free(f);
	return 0;
}

static void on_done(struct nx_httpc_req *r, long status, const char *body, size_t len,
		    const struct nx_err *err, void *arg)
{
	struct result *res = arg;

	(void)r;
	res->done_calls++;
	res->done_at_ms = nx_now_ms();
	res->status = status;
	assert_non_null(body);
	assert_int_equal(body[len], '\0');
	res->len = len;
	snprintf(res->body, sizeof(res->body), "%s", body);
	res->failed = err != NULL;
	if (err) {
		assert_true(err->msg[0] != '\0');
		snprintf(res->err, sizeof(res->err), "%s", err->msg);
	}
	if (res->cancel_other) {
		nx_httpc_cancel(res->cancel_other);
		res->cancel_other = NULL;
	}
	if (res->count && ++*res->count == res->count_target)
		nx_loop_stop(res->f->loop);
	if (res->stop_on_done)
		nx_loop_stop(res->f->loop);
}

static int on_line(struct nx_httpc_req *r, const char *line, size_t len, void *arg)
{
	struct result *res = arg;
	struct fixture *f = res->f;
	struct nx_httpc_req_opts o = { 0 };
	char u[96];

	assert_int_equal(strlen(line), len);
	assert_true(res->n_lines < MAX_LINES);
	snprintf(res->lines[res->n_lines++], sizeof(res->lines[0]), "%s", line);
	res->line_at_ms = nx_now_ms();
	if (res->stop_on_line)
		nx_loop_stop(f->loop);
	if (res->cancel_at && !strcmp(line, res->cancel_at)) {
		nx_httpc_cancel(r);
		assert_int_equal(nx_httpc_pending(f->c), 0);
		nx_httpc_cancel(r); /* twice is harmless */
		/* The client goes on: a request started from here runs. */
		snprintf(u, sizeof(u), "http://127.0.0.1:%u/hello", f->srv.port);
		o.url = u;
		res->then = nx_httpc_start(f->c, &o, on_done, res->then_res, NULL);
		assert_non_null(res->then);
		assert_int_equal(nx_httpc_pending(f->c), 1);
	}
	if (res->free_at && !strcmp(line, res->free_at)) {
		nx_httpc_free(f->c);
		f->c = NULL;
		nx_loop_stop(f->loop);
	}
	if (res->refuse_at && !strcmp(line, res->refuse_at))
		return -EPROTO;
	return 0;
}

static struct nx_httpc_req *start(struct fixture *f, struct nx_httpc_req_opts *o,
				  struct result *res)
{
	struct nx_httpc_req *r;
	struct nx_err err = { "" };

	res->f = f;
	r = nx_httpc_start(f->c, o, on_done, res, &err);
	if (!r)
		fail_msg("start %s: %s", o->url, err.msg);
	return r;
}

/* --- tests ------------------------------------------------------------------------------ */

static void test_get(void **state)
{
	struct fixture *f = *state;
	struct nx_httpc_req_opts o = { .url = url(f, "/hello"), .timeout_ms = WAIT_MS };
	struct result res = { .stop_on_done = true };

	start(f, &o, &res);
	assert_int_equal(nx_httpc_pending(f->c), 1);
	run(f);
	assert_int_equal(res.done_calls, 1);
	assert_false(res.failed);
	assert_int_equal(res.status, 200);
	assert_string_equal(res.body, "hello world");
	assert_int_equal(res.len, 11);
	assert_int_equal(nx_httpc_pending(f->c), 0);
}

static void test_post_json(void **state)
{
	struct fixture *f = *state;
	const char *json = "{\"hostname\":\"node1\",\"n\":1}";
	struct nx_httpc_req_opts o = { .method = "POST",
				       .url = url(f, "/echo"),
				       .bearer = "tok.en-123",
				       .body = json,
				       .body_len = strlen(json) };
	struct result res = { .stop_on_done = true };

	start(f, &o, &res);
	run(f);
	assert_false(res.failed);
	assert_int_equal(res.status, 201);
	assert_string_equal(res.body, "{\"ok\":true}");
	pthread_mutex_lock(&f->srv.lock);
	assert_string_equal(f->srv.method, "POST");
	assert_string_equal(f->srv.auth, "Bearer tok.en-123");
	assert_string_equal(f->srv.ctype, "application/json");
	assert_string_equal(f->srv.body, json);
	pthread_mutex_unlock(&f->srv.lock);

	/* Another method, another content type; no bearer. */
	memset(&res, 0, sizeof(res));
	res.stop_on_done = true;
	o = (struct nx_httpc_req_opts){ .method = "PATCH",
					.url = url(f, "/echo"),
					.body = "x=1",
					.body_len = 3,
					.content_type = "text/plain" };
	start(f, &o, &res);
	run(f);
	assert_int_equal(res.status, 201);
	pthread_mutex_lock(&f->srv.lock);
	assert_string_equal(f->srv.method, "PATCH");
	assert_string_equal(f->srv.auth, "");
	assert_string_equal(f->srv.ctype, "text/plain");
	assert_string_equal(f->srv.body, "x=1");
	pthread_mutex_unlock(&f->srv.lock);

	/* DELETE without a body. */
	memset(&res, 0, sizeof(res));
	res.stop_on_done = true;
	o = (struct nx_httpc_req_opts){ .method = "DELETE", .url = url(f, "/echo") };
	start(f, &o, &res);
	run(f);
	assert_int_equal(res.status, 201);
	pthread_mutex_lock(&f->srv.lock);
	assert_string_equal(f->srv.method, "DELETE");
	assert_int_equal(f->srv.body_len, 0);
	pthread_mutex_unlock(&f->srv.lock);
}

static void test_status_404_and_redirect(void **state)
{
	struct fixture *f = *state;
	struct nx_httpc_req_opts o = { .url = url(f, "/nowhere") };
	struct result res = { .stop_on_done = true };

	start(f, &o, &res);
	run(f);
	assert_false(res.failed);
	assert_int_equal(res.status, 404);
	assert_string_equal(res.body, "no such thing");

	/* A streaming request with an error status gets the body in done, no lines. */
	memset(&res, 0, sizeof(res));
	res.stop_on_done = true;
	o = (struct nx_httpc_req_opts){ .url = url(f, "/nowhere"), .on_line = on_line };
	start(f, &o, &res);
	run(f);
	assert_int_equal(res.status, 404);
	assert_string_equal(res.body, "no such thing");
	assert_int_equal(res.n_lines, 0);

	/* Redirects are not followed. */
	memset(&res, 0, sizeof(res));
	res.stop_on_done = true;
	o = (struct nx_httpc_req_opts){ .url = url(f, "/redirect") };
	start(f, &o, &res);
	run(f);
	assert_false(res.failed);
	assert_int_equal(res.status, 302);
	assert_string_equal(res.body, "moved");
}

static void test_refused(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct nx_httpc_req_opts o = { 0 };
	struct result res = { .stop_on_done = true };
	char u[64];
	int fd;

	/* A port that was just free and has no listener. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(u, sizeof(u), "http://127.0.0.1:%u/", ntohs(sa.sin_port));
	close(fd);

	o.url = u;
	start(f, &o, &res);
	run(f);
	assert_int_equal(res.done_calls, 1);
	assert_true(res.failed);
	assert_int_equal(res.status, 0);
	assert_non_null(strcasestr(res.err, "connect"));
	assert_string_equal(res.body, "");
}

static void test_timeout_and_tls(void **state)
{
	struct fixture *f = *state;
	struct nx_httpc_req_opts o = { .url = url(f, "/idle"), .timeout_ms = 150 };
	struct result res = { .stop_on_done = true };
	char u[128];

	/* The whole-request timeout. */
	start(f, &o, &res);
	run(f);
	assert_true(res.failed);
	assert_int_equal(res.status, 0);
	assert_non_null(strcasestr(res.err, "timed out"));

	/* TLS to a plain HTTP server fails the handshake (verification on by default). */
	memset(&res, 0, sizeof(res));
	res.stop_on_done = true;
	snprintf(u, sizeof(u), "https://127.0.0.1:%u/hello", f->srv.port);
	o = (struct nx_httpc_req_opts){ .url = u };
	start(f, &o, &res);
	run(f);
	assert_true(res.failed);
	assert_int_equal(res.status, 0);
}

static void test_stream(void **state)
{
	struct fixture *f = *state;
	struct nx_httpc_req_opts o = { .url = url(f, "/stream"), .on_line = on_line };
	struct result res = { .stop_on_done = true };

	start(f, &o, &res);
	run(f);
	assert_int_equal(res.done_calls, 1);
	assert_false(res.failed);
	assert_int_equal(res.status, 200);
	assert_string_equal(res.body, "");
	assert_int_equal(res.n_lines, 5);
	assert_string_equal(res.lines[0], "one");
	assert_string_equal(res.lines[1], ""); /* the heartbeat */
	assert_string_equal(res.lines[2], "split");
	assert_string_equal(res.lines[3], "three");
	assert_string_equal(res.lines[4], "four");
}

static void test_stream_refused_by_handler(void **state)
{
	struct fixture *f = *state;
	struct nx_httpc_req_opts o = { .url = url(f, "/stream"), .on_line = on_line };
	struct result res = { .stop_on_done = true, .refuse_at = "split" };

	start(f, &o, &res);
	run(f);
	assert_int_equal(res.done_calls, 1);
	assert_true(res.failed);
	assert_int_equal(res.status, 200);
	assert_int_equal(res.n_lines, 3);
	assert_non_null(strstr(res.err, "refused"));
}

static void test_idle_timeout(void **state)
{
	struct fixture *f = *state;
	struct nx_httpc_req_opts o = { .url = url(f, "/idle"),
				       .on_line = on_line,
				       .idle_timeout_ms = 200 };
	struct result res = { .stop_on_done = true };
	uint64_t quiet;

	start(f, &o, &res);
	run(f);
	assert_int_equal(res.done_calls, 1);
	assert_int_equal(res.n_lines, 1);
	assert_string_equal(res.lines[0], "hi");
	assert_true(res.failed);
	assert_int_equal(res.status, 0);
	assert_string_equal(res.err, "no data for 200 ms");
	quiet = res.done_at_ms - res.line_at_ms;
	assert_true(quiet >= 199);
	assert_true(quiet < 200 + 1000);
}

static void test_cancel_in_on_line(void **state)
{
	struct fixture *f = *state;
	struct nx_httpc_req_opts o = { .url = url(f, "/lines"), .on_line = on_line };
	struct result then = { .stop_on_done = true };
	struct result res = { .cancel_at = "b", .then_res = &then };

	then.f = f;
	start(f, &o, &res);
	run(f);
	/* The cancelled stream said nothing more; the one started from on_line completed. */
	assert_int_equal(res.done_calls, 0);
	assert_int_equal(res.n_lines, 2);
	assert_string_equal(res.lines[1], "b");
	assert_int_equal(then.done_calls, 1);
	assert_int_equal(then.status, 200);
	assert_string_equal(then.body, "hello world");
	assert_int_equal(nx_httpc_pending(f->c), 0);
}

static void test_cancel_from_other_done(void **state)
{
	struct fixture *f = *state;
	struct nx_httpc_req_opts o1 = { .url = url(f, "/idle"), .on_line = on_line };
	struct result res1 = { 0 };
	struct nx_httpc_req_opts o2 = { 0 };
	struct result res2 = { .stop_on_done = true };
	struct nx_httpc_req *r1;

	r1 = start(f, &o1, &res1);
	o2.url = url(f, "/hello");
	res2.cancel_other = r1;
	start(f, &o2, &res2);
	assert_int_equal(nx_httpc_pending(f->c), 2);
	run(f);
	assert_int_equal(res2.done_calls, 1);
	assert_int_equal(res1.done_calls, 0);
	assert_int_equal(nx_httpc_pending(f->c), 0);
}

static void test_free_with_requests(void **state)
{
	struct fixture *f = *state;
	struct nx_httpc_req_opts o = { .url = url(f, "/idle"), .on_line = on_line };
	struct result res1 = { .stop_on_line = true }, res2 = { 0 };

	/* Freed from inside on_line, with another stream open. */
	start(f, &o, &res1);
	start(f, &o, &res2);
	res1.free_at = "hi";
	res2.free_at = "hi";
	run(f);
	assert_null(f->c);
	assert_int_equal(res1.done_calls + res2.done_calls, 0);

	/* Freed from outside with a stream in flight (teardown frees this one). */
	f->c = nx_httpc_new(f->loop, NULL, NULL);
	assert_non_null(f->c);
	memset(&res1, 0, sizeof(res1));
	res1.stop_on_line = true;
	start(f, &o, &res1);
	run(f);
	assert_int_equal(res1.n_lines, 1);
	assert_int_equal(nx_httpc_pending(f->c), 1);
}

static void test_max_body(void **state)
{
	struct fixture *f = *state;
	struct nx_httpc_req_opts o = { .url = url(f, "/big"), .max_body = 1000 };
	struct result res = { .stop_on_done = true };

	start(f, &o, &res);
	run(f);
	assert_true(res.failed);
	assert_int_equal(res.status, 0);
	assert_non_null(strstr(res.err, "exceeds the limit of 1000"));
	assert_string_equal(res.body, "");

	/* The same body fits the default limit. */
	memset(&res, 0, sizeof(res));
	res.stop_on_done = true;
	o.max_body = 0;
	start(f, &o, &res);
	run(f);
	assert_false(res.failed);
	assert_int_equal(res.len, 5000);

	/* A stream line over the limit. */
	memset(&res, 0, sizeof(res));
	res.stop_on_done = true;
	o = (struct nx_httpc_req_opts){ .url = url(f, "/longline"),
					.on_line = on_line,
					.max_body = 1000 };
	start(f, &o, &res);
	run(f);
	assert_true(res.failed);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.n_lines, 1);
	assert_non_null(strstr(res.err, "line"));
	assert_non_null(strstr(res.err, "1000"));
}

static void test_many_concurrent(void **state)
{
	struct fixture *f = *state;
	enum { N = 50 };
	static struct result res[N];
	char u[N][96];
	unsigned count = 0;
	char want[32];

	memset(res, 0, sizeof(res));
	for (int i = 0; i < N; i++) {
		struct nx_httpc_req_opts o = { .url = u[i] };

		snprintf(u[i], sizeof(u[i]), "http://127.0.0.1:%u/n/%d", f->srv.port, i);
		res[i].count = &count;
		res[i].count_target = N;
		start(f, &o, &res[i]);
	}
	assert_int_equal(nx_httpc_pending(f->c), N);
	run(f);
	assert_int_equal(count, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(res[i].done_calls, 1);
		assert_int_equal(res[i].status, 200);
		snprintf(want, sizeof(want), "n=%d", i);
		assert_string_equal(res[i].body, want);
	}
	assert_int_equal(nx_httpc_pending(f->c), 0);
}

static void test_bad_requests(void **state)
{
	struct fixture *f = *state;
	struct nx_httpc_req_opts o = { 0 };
	struct result res = { 0 };
	struct nx_err err;

	res.f = f;
	nx_err_clear(&err);
	assert_null(nx_httpc_start(f->c, &o, on_done, &res, &err));
	assert_non_null(strstr(err.msg, "URL"));

	o.url = "file:///etc/hostname";
	nx_err_clear(&err);
	assert_null(nx_httpc_start(f->c, &o, on_done, &res, &err));
	assert_non_null(strstr(err.msg, "http://"));

	o.url = url(f, "/hello");
	o.method = "TRACE";
	nx_err_clear(&err);
	assert_null(nx_httpc_start(f->c, &o, on_done, &res, &err));
	assert_non_null(strstr(err.msg, "TRACE"));

	o.method = NULL;
	o.bearer = "tok\r\nX-Evil: 1";
	nx_err_clear(&err);
	assert_null(nx_httpc_start(f->c, &o, on_done, &res, &err));
	assert_non_null(strstr(err.msg, "line break"));

	o.bearer = NULL;
	nx_err_clear(&err);
	assert_null(nx_httpc_start(f->c, &o, NULL, &res, &err));
	assert_true(err.msg[0] != '\0');

	assert_int_equal(nx_httpc_pending(f->c), 0);
	assert_int_equal(res.done_calls, 0);
	assert_null(nx_httpc_new(NULL, NULL, &err));
	assert_true(err.msg[0] != '\0');
}

static char warned[NX_LOG_MSG_MAX];
static unsigned n_warned;

static void warn_sink(int level, const char *msg, void *arg)
{
	(void)arg;
	if (level == NX_LOG_WARNING) {
		n_warned++;
		snprintf(warned, sizeof(warned), "%s", msg);
	}
}

static void test_insecure_warns(void **state)
{
	struct fixture *f = *state;
	struct nx_httpc_opts opts = { .insecure_skip_verify = true, .ca_file = "/nonexistent" };
	struct nx_httpc *c;

	n_warned = 0;
	nx_log_set_sink(warn_sink, NULL);
	c = nx_httpc_new(f->loop, &opts, NULL);
	nx_log_set_sink(NULL, NULL);
	assert_non_null(c);
	assert_int_equal(n_warned, 1);
	assert_non_null(strstr(warned, "verification"));
	nx_httpc_free(c);

	/* The secure default says nothing. */
	n_warned = 0;
	nx_log_set_sink(warn_sink, NULL);
	c = nx_httpc_new(f->loop, NULL, NULL);
	nx_log_set_sink(NULL, NULL);
	assert_non_null(c);
	assert_int_equal(n_warned, 0);
	nx_httpc_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_404_and_redirect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_and_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_refused_by_handler, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_in_on_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_from_other_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_insecure_warns, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
