/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexsrv_http's streaming responses (the watch streams): a queue of shared strings per
 * stream, parked connections, writes straight to a parked stream's socket, the monitor
 * thread that notices hang-ups and full sockets, and the streams' part of a stop.  See
 * "Threading" in nexsrv_http.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/log.h"
#include "nexsrv/nexsrv_http_int.h"
#include "nexsrv/nexsrv_metrics.h"
#include "nexsrv/nexsrv_shared.h"

NX_DEBUG_DECLARE(nexsrv_api);

static void monitor_unwatch(struct nexsrv_stream *s)
{
	if (s->watching) {
		epoll_ctl(s->http->mon_epfd, EPOLL_CTL_DEL, s->fd, NULL);
		s->watching = false;
		s->out_armed = false;
	}
}

/* Watched from the first suspension until the stream detaches, edge-triggered: the hang-up
 * is reported once, and waking the stream costs no system call here. */
static void monitor_watch(struct nexsrv_stream *s)
{
	struct epoll_event ev = { .events = EPOLLRDHUP | EPOLLET, .data.u64 = s->id };

	if (s->watching || s->fd < 0)
		return;
	if (epoll_ctl(s->http->mon_epfd, EPOLL_CTL_ADD, s->fd, &ev) == 0 ||
	    (errno == EEXIST && epoll_ctl(s->http->mon_epfd, EPOLL_CTL_MOD, s->fd, &ev) == 0))
		s->watching = true;
	else
		nx_debug(&dbg_nexsrv_api, "stream %llu: cannot watch for disconnects: %s",
			 (unsigned long long)s->id, strerror(errno));
}

static void own_end(struct nexsrv_stream *s);

/* Hands a suspended stream's connection back to MHD (to send what is queued, or to end the
 * body); stream lock held.  A stream writing directly keeps the socket until its queue has
 * gone out: a chunk half sent must be finished before MHD frames the next.  A stream on its
 * own socket ends its body itself. */
static void stream_wake(struct nexsrv_stream *s)
{
	if (s->own) {
		if (!s->seg_n && (s->closed || s->ending || http_stopping(s->http)))
			own_end(s);
		return;
	}
	if (s->direct) {
		if (s->seg_n || s->tls_pending)
			return; /* stream_writable wakes it once the queue is out */
		s->direct = false;
	}
	if (s->suspended && s->attached) {
		s->suspended = false;
		MHD_resume_connection(s->conn);
	}
}

/* Hands a stream on its own socket to the monitor, which closes the socket and lets go of the
 * stream (its close callback may not run on a producer's thread); stream lock held. */
static void stream_reap(struct nexsrv_stream *s)
{
	struct nexsrv_http *http = s->http;
	uint64_t one = 1;

	if (s->reaping)
		return;
	s->reaping = true;
	s->refs++;
	pthread_mutex_lock(&http->reap_lock);
	s->reap_next = http->reap;
	http->reap = s;
	pthread_mutex_unlock(&http->reap_lock);
	if (write(http->mon_wakefd, &one, sizeof(one)) < 0)
		nx_err("http: cannot wake the stream monitor: %s", strerror(errno));
}

/* The client is gone (hung up, or a send failed): MHD resumes the connection to close it, and
 * the close callback runs when it frees the response (an own socket: the monitor closes it);
 * stream lock held. */
static void stream_lost(struct nexsrv_stream *s)
{
	if (!s->attached)
		return;
	s->gone = true;
	s->direct = false;
	monitor_unwatch(s);
	if (s->own) {
		stream_reap(s);
		return;
	}
	if (s->suspended) {
		s->suspended = false;
		MHD_resume_connection(s->conn);
	}
}

/* Asks the monitor to report when the socket takes more.  Edge-triggered, so once armed it
 * stays: a report comes only after a send found the socket full. */
static bool monitor_want_out(struct nexsrv_stream *s)
{
	struct epoll_event ev = { .events = EPOLLRDHUP | EPOLLOUT | EPOLLET, .data.u64 = s->id };

	if (!s->out_armed && s->watching &&
	    epoll_ctl(s->http->mon_epfd, EPOLL_CTL_MOD, s->fd, &ev) == 0)
		s->out_armed = true;
	return s->out_armed;
}

/* "<hex length>\r\n" into buf (at least CHUNK_HEADER_MAX bytes): its length.  (By hand:
 * snprintf was a tenth of the user time of a delivery.) */
#define CHUNK_HEADER_MAX 20
static size_t chunk_header(char *buf, size_t len)
{
	size_t digits = 1;

	for (size_t rest = len >> 4; rest; rest >>= 4)
		digits++;
	for (size_t i = digits; i-- > 0; len >>= 4)
		buf[i] = "0123456789abcdef"[len & 15];
	buf[digits] = '\r';
	buf[digits + 1] = '\n';
	return digits + 2;
}

/* What a queued string is on the wire: framed as one chunk when the body is chunked. */
static size_t seg_wire_len(const struct nexsrv_stream *s, const struct stream_seg *g)
{
	char hdr[CHUNK_HEADER_MAX];

	return s->chunked ? chunk_header(hdr, g->buf->len) + g->buf->len + 2 : g->buf->len;
}

/* Drops n bytes sent directly from the head of the queue. */
static void direct_sent(struct nexsrv_stream *s, size_t n)
{
	while (n) {
		struct stream_seg *g = &s->segs[s->seg_head];
		size_t left = seg_wire_len(s, g) - g->off;

		if (n < left) {
			g->off += n;
			return;
		}
		n -= left;
		s->q_len -= g->buf->len;
		nexsrv_shared_unref(g->buf);
		g->buf = NULL;
		s->seg_head = (s->seg_head + 1) % s->seg_cap;
		s->seg_n--;
	}
	if (!s->seg_n)
		s->seg_head = 0;
}

#define DIRECT_CHUNKS 16 /* queued strings per sendmsg */

/* A queued string as its parts on the wire: "<length>\r\n", the string, "\r\n" when the body
 * is chunked, else the string alone.  The count of parts. */
static int frame_seg(const struct nexsrv_stream *s, const struct stream_seg *g,
		     char hdr[CHUNK_HEADER_MAX], struct iovec part[3])
{
	static char crlf[] = "\r\n";
	int n = 0;

	if (s->chunked)
		part[n++] = (struct iovec){ hdr, chunk_header(hdr, g->buf->len) };
	part[n++] = (struct iovec){ g->buf->data, g->buf->len };
	if (s->chunked)
		part[n++] = (struct iovec){ crlf, 2 };
	return n;
}

/* stream_direct_send over TLS: GnuTLS buffers a batch of chunks while corked and writes it as
 * records on uncork; what the socket does not take stays in GnuTLS (tls_pending) until the
 * next uncork.  While the connection is suspended the session is the stream's alone. */
static int stream_direct_send_tls(struct nexsrv_stream *s)
{
	ssize_t rc;

	for (;;) {
		if (!s->tls_pending) {
			if (!s->seg_n)
				return 0;
			gnutls_record_cork(s->tls);
			for (size_t i = 0; s->seg_n && i < DIRECT_CHUNKS; i++) {
				struct stream_seg *g = &s->segs[s->seg_head];
				struct iovec part[3];
				char hdr[CHUNK_HEADER_MAX];
				int n_part = frame_seg(s, g, hdr, part);

				for (int k = 0; k < n_part; k++)
					if (gnutls_record_send(s->tls, part[k].iov_base,
							       part[k].iov_len) < 0)
						return -EIO;
				direct_sent(s, seg_wire_len(s, g));
			}
			s->tls_pending = true;
		}
		rc = gnutls_record_uncork(s->tls, 0);
		if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
			return monitor_want_out(s) ? 0 : -EIO;
		if (rc < 0) {
			nx_debug(&dbg_nexsrv_api, "stream %llu: %s", (unsigned long long)s->id,
				 gnutls_strerror((int)rc));
			return -EIO;
		}
		s->tls_pending = false;
	}
}

/*
 * Sends the queue straight to the socket; stream lock held.  While its connection is
 * suspended MHD neither reads nor writes the socket, and it suspended only after sending
 * all it had (MHD asks the stream for more only when its buffer went out): the stream can
 * go on with the body itself, each string one chunk, and a delivery costs one sendmsg
 * instead of a resume, a send and a suspend on an MHD thread, whose resume also walks every
 * suspended connection.  0 when the queue went out or the socket is full (the monitor
 * reports when it takes more: stream_writable), else -errno: the client is gone.
 */
static int stream_direct_send(struct nexsrv_stream *s)
{
	if (s->tls)
		return stream_direct_send_tls(s);
	while (s->seg_n) {
		struct iovec iov[DIRECT_CHUNKS * 3];
		char hdr[DIRECT_CHUNKS][CHUNK_HEADER_MAX];
		size_t n_iov = 0, total = 0;
		ssize_t sent;

		for (size_t i = 0; i < s->seg_n && i < DIRECT_CHUNKS; i++) {
			struct stream_seg *g = &s->segs[(s->seg_head + i) % s->seg_cap];
			struct iovec part[3];
			size_t skip = g->off;
			int n_part = frame_seg(s, g, hdr[i], part);

			for (int k = 0; k < n_part; k++) {
				if (skip >= part[k].iov_len) {
					skip -= part[k].iov_len;
					continue;
				}
				iov[n_iov].iov_base = (char *)part[k].iov_base + skip;
				iov[n_iov].iov_len = part[k].iov_len - skip;
				total += iov[n_iov++].iov_len;
				skip = 0;
			}
		}
		sent = sendmsg(s->fd, &(struct msghdr){ .msg_iov = iov, .msg_iovlen = n_iov },
			       MSG_NOSIGNAL | MSG_DONTWAIT);
		if (sent < 0 && errno == EINTR)
			continue;
		if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (sent > 0)
			direct_sent(s, (size_t)sent);
		if (sent < 0 || (size_t)sent < total)
			return monitor_want_out(s) ? 0 : -EIO;
	}
	return 0;
}

/* The end of a body on a socket of its own, once its queue went out: the last chunk (HTTP/1.1),
 * then the monitor closes the socket; stream lock held. */
static void own_end(struct nexsrv_stream *s)
{
	static const char last[] = "0\r\n\r\n";

	while (s->chunked && s->end_off < sizeof(last) - 1) {
		ssize_t n = send(s->fd, last + s->end_off, sizeof(last) - 1 - s->end_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && monitor_want_out(s))
			return; /* stream_writable comes back */
		if (n < 0)
			break;
		s->end_off += (size_t)n;
	}
	stream_reap(s);
}

/* The monitor saw the socket of a stream writing directly take more; stream lock held. */
static void stream_writable(struct nexsrv_stream *s)
{
	if (!s->direct)
		return;
	if (stream_direct_send(s) < 0)
		stream_lost(s);
	else if (!s->seg_n && !s->tls_pending && (s->closed || s->ending || http_stopping(s->http)))
		stream_wake(s); /* the body ends (through MHD unless the socket is the stream's) */
}

static void stream_unref(struct nexsrv_stream *s)
{
	bool last;

	pthread_mutex_lock(&s->lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&s->lock);
	if (!last)
		return;
	for (; s->seg_n; s->seg_n--, s->seg_head = (s->seg_head + 1) % s->seg_cap)
		nexsrv_shared_unref(s->segs[s->seg_head].buf);
	if (s->segs != s->seg_inline)
		free(s->segs);
	pthread_cond_destroy(&s->cb_done);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* --- attached streams, listed and indexed by id (streams_lock held) --- */

static size_t id_bucket(uint64_t id, size_t cap)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

static void streams_add(struct nexsrv_http *http, struct nexsrv_stream *s)
{
	size_t b;

	s->next = http->streams;
	if (s->next)
		s->next->prev = s;
	http->streams = s;
	if (++http->n_streams > http->by_id_cap) {
		size_t cap = http->by_id_cap * 2;
		struct nexsrv_stream **v = calloc(cap, sizeof(*v));

		/* Without memory the chains only grow longer. */
		for (size_t i = 0; v && i < http->by_id_cap; i++) {
			for (struct nexsrv_stream *x = http->by_id[i], *next; x; x = next) {
				next = x->id_next;
				x->id_next = v[id_bucket(x->id, cap)];
				v[id_bucket(x->id, cap)] = x;
			}
		}
		if (v) {
			free(http->by_id);
			http->by_id = v;
			http->by_id_cap = cap;
		}
	}
	b = id_bucket(s->id, http->by_id_cap);
	s->id_next = http->by_id[b];
	http->by_id[b] = s;
}

static void streams_remove(struct nexsrv_http *http, struct nexsrv_stream *s)
{
	struct nexsrv_stream **p = &http->by_id[id_bucket(s->id, http->by_id_cap)];

	while (*p != s)
		p = &(*p)->id_next;
	*p = s->id_next;
	http->n_streams--;
	if (s->prev)
		s->prev->next = s->next;
	else
		http->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = s->id_next = NULL;
}

static struct nexsrv_stream *streams_find(struct nexsrv_http *http, uint64_t id)
{
	struct nexsrv_stream *s = http->by_id[id_bucket(id, http->by_id_cap)];

	while (s && s->id != id)
		s = s->id_next;
	return s;
}

/* The connection side lets go of the stream: MHD freed its response, or the request ended
 * before there was one.  Runs the close callback unless the producer closed first. */
void nexsrv_stream_detach(struct nexsrv_stream *s)
{
	struct nexsrv_http *http = s->http;
	nexsrv_stream_close_fn fn = NULL;
	void *arg = NULL;

	pthread_mutex_lock(&http->streams_lock);
	streams_remove(http, s);
	pthread_mutex_unlock(&http->streams_lock);
	nexsrv_metric_add(http->m_streams, NULL, -1);

	pthread_mutex_lock(&s->lock);
	monitor_unwatch(s);
	s->suspended = false;
	s->attached = false;
	s->conn = NULL;
	s->http = NULL;
	if (s->on_close && !s->closed) {
		fn = s->on_close;
		arg = s->on_close_arg;
		s->on_close = NULL;
		s->cb_running = true;
		s->cb_thread = pthread_self();
	}
	pthread_mutex_unlock(&s->lock);
	if (fn) {
		fn(s, arg);
		pthread_mutex_lock(&s->lock);
		s->cb_running = false;
		pthread_cond_broadcast(&s->cb_done);
		pthread_mutex_unlock(&s->lock);
	}
	stream_unref(s);
}

/* MHD freed the stream's response: the stream lets go of the connection, unless it took the
 * socket (then MHD's reference goes, see stream_take_socket). */
void nexsrv_stream_response_free(void *cls)
{
	struct nexsrv_stream *s = cls;
	bool own;

	pthread_mutex_lock(&s->lock);
	own = s->own;
	pthread_mutex_unlock(&s->lock);
	if (own)
		stream_unref(s);
	else
		nexsrv_stream_detach(s);
}

/*
 * A parked stream of a plain HTTP connection takes the socket from MHD: a duplicate of it,
 * before the reader tells MHD to close the connection (MHD_USE_TURBO: it closes without a
 * shutdown, so the socket stays open through the duplicate).  A stream may last days, and
 * MHD's connection holds its memory pool (half of it written, ~32 KiB) for as long as it
 * exists; the stream alone holds a few hundred bytes.  Stream lock held.
 */
static bool stream_take_socket(struct nexsrv_stream *s)
{
	struct nexsrv_http *http = s->http;
	const union MHD_ConnectionInfo *ci;
	struct conn_slot *slot;
	int fd, mhd_fd = s->fd;

	if (!s->can_own)
		return false;
	fd = fcntl(mhd_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return false;
	monitor_unwatch(s); /* epoll names the descriptor: the duplicate is watched instead */
	s->fd = fd;
	monitor_watch(s);
	if (!s->watching) {
		close(fd);
		s->fd = mhd_fd;
		return false;
	}
	s->own = s->direct = true;
	/* The connection's place in the budget is the stream's now (on MHD's thread, or with
	 * the connection parked: MHD does not touch it either way). */
	ci = MHD_get_connection_info(s->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	slot = ci ? ci->socket_context : NULL;
	if (slot) {
		s->addr = slot->addr;
		s->counted = slot->counted;
		slot->counted = false;
	}
	s->conn = NULL;
	s->refs++; /* MHD's response holds one until MHD frees it */
	pthread_mutex_lock(&http->lock);
	http->n_own++;
	pthread_mutex_unlock(&http->lock);
	return true;
}

/* The monitor closes a stream's own socket after its end (or its client's): then the stream
 * is let go of as MHD would have, close callback and all. */
static void own_close(struct nexsrv_stream *s)
{
	struct nexsrv_http *http = s->http;
	char sink[512];

	pthread_mutex_lock(&s->lock);
	monitor_unwatch(s);
	if (!s->gone) {
		/* Unread bytes from the client would turn the close into a reset, which may
		 * drop the end of the body still in the socket's buffer. */
		(void)shutdown(s->fd, SHUT_WR);
		for (int i = 0; i < 16 && recv(s->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
			;
	}
	close(s->fd);
	s->fd = -1;
	pthread_mutex_unlock(&s->lock);
	if (s->counted)
		nexsrv_conns_remove(http->conns, &s->addr);
	pthread_mutex_lock(&http->lock);
	if (--http->n_own == 0)
		pthread_cond_broadcast(&http->idle);
	pthread_mutex_unlock(&http->lock);
	nexsrv_stream_detach(s);
	stream_unref(s); /* stream_reap's */
}

/* A stream left parked in MHD because no descriptor was free for the duplicate (a burst of
 * new connections, each holding one) tries again after a write that emptied its queue: MHD
 * resumes the connection only to close it.  Stream lock held. */
static void stream_retake(struct nexsrv_stream *s)
{
	struct MHD_Connection *conn = s->conn;

	if (s->own || !s->can_own || !s->suspended || s->seg_n || s->tls_pending ||
	    !stream_take_socket(s))
		return;
	s->suspended = false;
	MHD_resume_connection(conn);
}

static void streams_reap(struct nexsrv_http *http)
{
	struct nexsrv_stream *list;

	pthread_mutex_lock(&http->reap_lock);
	list = http->reap;
	http->reap = NULL;
	pthread_mutex_unlock(&http->reap_lock);
	for (struct nexsrv_stream *s = list, *next; s; s = next) {
		next = s->reap_next;
		own_close(s);
	}
}

bool nexsrv_stream_own(struct nexsrv_stream *s)
{
	bool own;

	pthread_mutex_lock(&s->lock);
	own = s->own;
	pthread_mutex_unlock(&s->lock);
	return own;
}

/* Copies up to max queued bytes into buf and drops what went out completely; stream lock
 * held.  The count copied. */
static size_t stream_dequeue(struct nexsrv_stream *s, char *buf, size_t max)
{
	size_t n = 0;

	while (n < max && s->seg_n) {
		struct stream_seg *g = &s->segs[s->seg_head];
		size_t len = g->buf->len - g->off;

		if (len > max - n)
			len = max - n;
		memcpy(buf + n, g->buf->data + g->off, len);
		n += len;
		g->off += len;
		if (g->off == g->buf->len) {
			nexsrv_shared_unref(g->buf);
			g->buf = NULL;
			s->seg_head = (s->seg_head + 1) % s->seg_cap;
			s->seg_n--;
		}
	}
	s->q_len -= n;
	if (!s->seg_n && s->segs != s->seg_inline) { /* back to the small ring */
		free(s->segs);
		s->segs = s->seg_inline;
		s->seg_cap = STREAM_SEGS_INLINE;
	}
	if (!s->seg_n)
		s->seg_head = 0;
	return n;
}

/* Appends a reference to b to the queue (stream lock held): 0 or -ENOMEM. */
static int stream_enqueue(struct nexsrv_stream *s, struct nexsrv_shared *b)
{
	if (s->seg_n == s->seg_cap) {
		size_t cap = s->seg_cap * 2;
		struct stream_seg *v = calloc(cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < s->seg_n; i++)
			v[i] = s->segs[(s->seg_head + i) % s->seg_cap];
		if (s->segs != s->seg_inline)
			free(s->segs);
		s->segs = v;
		s->seg_cap = cap;
		s->seg_head = 0;
	}
	s->segs[(s->seg_head + s->seg_n) % s->seg_cap] =
		(struct stream_seg){ .buf = nexsrv_shared_ref(b), .off = 0 };
	s->seg_n++;
	s->q_len += b->len;
	return 0;
}

ssize_t nexsrv_stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct nexsrv_stream *s = cls;
	ssize_t n;

	(void)pos;
	pthread_mutex_lock(&s->lock);
	if (s->own) {
		n = MHD_CONTENT_READER_END_WITH_ERROR; /* resumed to close: stream_retake */
	} else if (s->gone || !s->attached || s->direct) {
		/* (Still direct: MHD resumed the connection itself, to close it at its stop.) */
		s->direct = false;
		n = MHD_CONTENT_READER_END_WITH_ERROR;
	} else if (s->seg_n) {
		n = (ssize_t)stream_dequeue(s, buf, max);
	} else if (s->closed || s->ending || http_stopping(s->http)) {
		n = MHD_CONTENT_READER_END_OF_STREAM;
	} else if (stream_take_socket(s)) {
		n = MHD_CONTENT_READER_END_WITH_ERROR; /* MHD closes its descriptor only */
	} else {
		/* Nothing to send: park the connection until a write (or a disconnect). */
		monitor_watch(s);
		s->suspended = true;
		s->direct = s->can_direct && s->watching;
		MHD_suspend_connection(s->conn);
		n = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Twice the heartbeat interval, plus margin for a slow client on a lossy path. */
#define STREAM_USER_TIMEOUT_MS 12000

struct nexsrv_stream *nexsrv_stream_start(struct nexsrv_req *req)
{
	struct nexsrv_http *http = req->http;
	const union MHD_ConnectionInfo *ci;
	struct nexsrv_stream *s;

	if (req->replied || req->stream)
		return NULL;
	if (http_stopping(http)) {
		nexsrv_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the service is stopping");
		return NULL;
	}
	if (!nexsrv_req_has_header(req, MHD_HTTP_HEADER_CONTENT_TYPE) &&
	    nexsrv_reply_header(req, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") < 0)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cb_done, NULL);
	s->refs = 2;
	s->segs = s->seg_inline;
	s->seg_cap = STREAM_SEGS_INLINE;
	s->http = http;
	s->conn = req->conn;
	s->attached = true;
	s->q_limit = http->stream_queue_limit;
	ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	s->fd = ci ? ci->connect_fd : -1;
	s->chunked = req->http11;
	if (nexsrv_http_tls(http)) {
		ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
		s->tls = ci ? ci->tls_session : NULL;
	}
	s->can_direct =
		s->fd >= 0 && (s->tls || !nexsrv_http_tls(http)) && (req->http10 || req->http11);
	s->can_own = s->can_direct && !s->tls && http->own_streams;
	if (s->fd >= 0) {
		/* A client that vanished (power lost, link down, NAT mapping gone) never closes
		 * its stream: unacknowledged heartbeats end it after STREAM_USER_TIMEOUT_MS, so
		 * its device goes offline and its prefixes fail over. */
		unsigned int timeout = STREAM_USER_TIMEOUT_MS;

		(void)setsockopt(s->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof(timeout));
	}

	pthread_mutex_lock(&http->streams_lock);
	s->id = ++http->next_stream_id;
	streams_add(http, s);
	pthread_mutex_unlock(&http->streams_lock);
	nexsrv_metric_add(http->m_streams, NULL, 1);

	req->stream = s;
	req->replied = true;
	req->status = MHD_HTTP_OK;
	return s;
}

void nexsrv_stream_set_close_cb(struct nexsrv_stream *s, nexsrv_stream_close_fn fn, void *arg)
{
	pthread_mutex_lock(&s->lock);
	if (!s->closed) {
		s->on_close = fn;
		s->on_close_arg = arg;
	}
	pthread_mutex_unlock(&s->lock);
}

int nexsrv_stream_write_shared(struct nexsrv_stream *s, struct nexsrv_shared *b)
{
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if (s->closed || s->gone || s->ending || !s->attached) {
		rc = -EPIPE;
		goto out;
	}
	if (b->len == 0)
		goto out;
	if (b->len > s->q_limit - s->q_len) {
		rc = -ENOBUFS;
		goto out;
	}
	if (s->direct) {
		bool idle = s->seg_n == 0; /* else the socket is full: the monitor sends it */

		rc = stream_enqueue(s, b);
		if (rc == 0 && idle && !s->held && stream_direct_send(s) < 0) {
			stream_lost(s);
			rc = -EPIPE;
		} else if (rc == 0) {
			stream_retake(s);
		}
		goto out;
	}
	rc = stream_enqueue(s, b);
	if (rc == 0)
		stream_wake(s);
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int nexsrv_stream_write(struct nexsrv_stream *s, const void *data, size_t len)
{
	struct nexsrv_shared *b;
	int rc;

	if (len == 0) {
		pthread_mutex_lock(&s->lock);
		rc = s->closed || s->gone || s->ending || !s->attached ? -EPIPE : 0;
		pthread_mutex_unlock(&s->lock);
		return rc;
	}
	b = nexsrv_shared_new(data, len);
	if (!b)
		return -ENOMEM;
	rc = nexsrv_stream_write_shared(s, b);
	nexsrv_shared_unref(b);
	return rc;
}

void nexsrv_stream_hold(struct nexsrv_stream *s)
{
	pthread_mutex_lock(&s->lock);
	s->held = true;
	pthread_mutex_unlock(&s->lock);
}

void nexsrv_stream_release(struct nexsrv_stream *s)
{
	pthread_mutex_lock(&s->lock);
	s->held = false;
	/* (A full socket just says so again: the monitor sends the rest.) */
	if (s->direct && s->seg_n && stream_direct_send(s) < 0)
		stream_lost(s);
	else if (s->direct && !s->seg_n && (s->closed || s->ending || http_stopping(s->http)))
		stream_wake(s); /* held while the stop began: its body ends now */
	else if (s->direct)
		stream_retake(s);
	pthread_mutex_unlock(&s->lock);
}

bool nexsrv_stream_direct(struct nexsrv_stream *s)
{
	bool direct;

	pthread_mutex_lock(&s->lock);
	direct = s->direct;
	pthread_mutex_unlock(&s->lock);
	return direct;
}

void nexsrv_stream_close(struct nexsrv_stream *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->closed = true;
	s->on_close = NULL;
	s->held = false; /* its last lines go out now */
	if (s->direct && s->seg_n && stream_direct_send(s) < 0)
		stream_lost(s);
	stream_wake(s);
	/* The callback may be running on another thread right now: wait for it, unless it
	 * is this very thread closing from inside it. */
	while (s->cb_running && !pthread_equal(s->cb_thread, pthread_self()))
		pthread_cond_wait(&s->cb_done, &s->lock);
	pthread_mutex_unlock(&s->lock);
	stream_unref(s);
}

/* The monitor saw the client of stream id hang up, or its socket take more. */
static void stream_event(struct nexsrv_http *http, uint64_t id, uint32_t events)
{
	struct nexsrv_stream *s;

	pthread_mutex_lock(&http->streams_lock);
	s = streams_find(http, id);
	if (s) {
		pthread_mutex_lock(&s->lock);
		s->refs++;
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&http->streams_lock);
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	if (s->attached && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
		nx_debug(&dbg_nexsrv_api, "stream %llu: client went away",
			 (unsigned long long)s->id);
		stream_lost(s);
	} else if (s->attached && (events & EPOLLOUT)) {
		stream_writable(s);
	}
	pthread_mutex_unlock(&s->lock);
	stream_unref(s);
}

void *nexsrv_stream_monitor_main(void *arg)
{
	struct nexsrv_http *http = arg;
	struct epoll_event ev[MONITOR_MAX_EVENTS];

	while (!__atomic_load_n(&http->mon_stop, __ATOMIC_SEQ_CST)) {
		int n = epoll_wait(http->mon_epfd, ev, MONITOR_MAX_EVENTS, -1);

		if (n < 0 && errno != EINTR) {
			nx_err("http: stream monitor: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.u64 == MONITOR_WAKE_ID) {
				uint64_t v;

				if (read(http->mon_wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					nx_debug(&dbg_nexsrv_api, "stream monitor wake: %s",
						 strerror(errno));
				streams_reap(http);
				continue;
			}
			stream_event(http, ev[i].data.u64, ev[i].events);
		}
	}
	streams_reap(http);
	return NULL;
}

/* Ends every stream (stop): queued bytes still go out, then the chunked body ends. */
void nexsrv_streams_end_all(struct nexsrv_http *http)
{
	pthread_mutex_lock(&http->streams_lock);
	for (struct nexsrv_stream *s = http->streams; s; s = s->next) {
		pthread_mutex_lock(&s->lock);
		s->ending = true;
		stream_wake(s);
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&http->streams_lock);
}

/* Gives every stream still writing directly back to MHD, its client cut short: MHD must
 * not be stopped while it has suspended connections (it aborts). */
void nexsrv_streams_release_all(struct nexsrv_http *http)
{
	pthread_mutex_lock(&http->streams_lock);
	for (struct nexsrv_stream *s = http->streams; s; s = s->next) {
		pthread_mutex_lock(&s->lock);
		if (s->direct) {
			nx_debug(&dbg_nexsrv_api,
				 "stream %llu: the client did not read the end in time",
				 (unsigned long long)s->id);
			stream_lost(s);
		}
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&http->streams_lock);
}
