/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexsrv_http's own state, shared by its two files: the server and its requests
 * (nexsrv_http.c) and the streaming responses (nexsrv_http_stream.c).  Nothing else
 * includes it.
 */
#ifndef NEXSRV_HTTP_INT_H
#define NEXSRV_HTTP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "nexsrv/nexsrv_conns.h"
#include "nexsrv/nexsrv_http.h"

struct nexsrv_metric;
struct nexsrv_metrics;
struct nexsrv_ratelimit_tiers;
struct nexsrv_router;

/* libmicrohttpd allocates (and zeroes) this much with every streaming response, for the
 * stream's whole life: kept small (at 16 KiB it was a third of a stream's memory). */
#define STREAM_BLOCK	   512
#define STREAM_SEGS_INLINE 4 /* queued strings a stream holds without an allocation */
#define MONITOR_WAKE_ID	   0 /* epoll data of the monitor's eventfd; streams count from 1 */
#define MONITOR_MAX_EVENTS 64
#define STREAM_INDEX_MIN   256 /* buckets of the index of streams by id, at first */

/* ======================================================================================
 * Server, request and stream state
 */

/* What nexsrv knows of one of MHD's connections: its socket context. */
struct conn_slot {
	struct nexsrv_conn_addr addr;
	bool counted; /* in http->conns, until MHD closes it or a stream takes the socket */
};

struct hdr {
	char *name;
	char *value;
};

struct nexsrv_http {
	struct MHD_Daemon *mhd;
	uint16_t port;
	char listen[300];
	size_t body_limit;
	unsigned stop_timeout_ms;
	size_t stream_queue_limit;
	char *cert_pem;
	char *key_pem;
	size_t key_len;

	struct nexsrv_router *router;
	pthread_rwlock_t rl_lock;		  /* writers replace ratelimit */
	struct nexsrv_ratelimit_tiers *ratelimit; /* NULL: no rate limit */

	struct nexsrv_metrics *metrics;
	bool own_metrics;
	struct nexsrv_metric *m_requests, *m_duration, *m_in_flight, *m_streams, *m_rate_limited;

	pthread_mutex_t lock; /* hooks, in-flight count */
	pthread_cond_t idle;  /* in_flight dropped to 0 */
	unsigned long in_flight;
	nexsrv_auth_fn auth_fn;
	void *auth_arg;
	nexsrv_ready_fn ready_fn;
	void *ready_arg;
	bool stopping; /* atomic */
	bool starting; /* MHD messages go to start_msg */
	char start_msg[200];

	/* streams attached to a connection, and the thread that watches idle ones */
	pthread_mutex_t streams_lock;
	struct nexsrv_stream *streams;
	struct nexsrv_stream **by_id; /* the same, hashed by id: what the monitor's events name */
	size_t by_id_cap, n_streams;
	uint64_t next_stream_id;
	int mon_epfd;
	int mon_wakefd;
	bool mon_running;
	bool mon_stop; /* atomic */
	pthread_t mon_thread;

	/* Plain HTTP: a parked stream takes its socket from MHD (see stream_take_socket). */
	bool own_streams;
	struct nexsrv_conns *conns; /* the connection budget, MHD's and the streams' own */
	pthread_mutex_t reap_lock;  /* innermost: taken with a stream's lock held */
	struct nexsrv_stream *reap; /* own sockets to close, by the monitor */
	unsigned long n_own;	    /* streams on their own socket (http->lock; idle) */
};

struct nexsrv_req {
	struct nexsrv_http *http;
	struct MHD_Connection *conn;
	char *uri; /* the raw request target */
	char *raw_path;
	const char *method; /* MHD's string */
	const char *method_label;
	struct nexsrv_path path;
	struct nexsrv_query query;
	struct nexsrv_match match;
	bool routed, begun, in_flight;
	char client[INET6_ADDRSTRLEN];
	uint64_t start_ns;

	char *body;
	size_t body_len, body_cap;
	uint64_t dropped; /* body bytes read and thrown away after the limit */
	bool too_large;
	struct json_object *json;

	void *caller;
	void (*caller_free)(void *);
	unsigned char caller_key[NEXSRV_HTTP_CALLER_KEY_MAX]; /* the caller tier's key */
	size_t caller_key_len;				      /* 0: none set */

	bool replied, queued, close_after;
	bool http10, http11; /* the request's version: a stream's body is chunked in 1.1 */
	unsigned status;
	char *resp;
	size_t resp_len;
	struct hdr *hdrs;
	size_t n_hdrs;
	struct nexsrv_stream *stream;
	bool stream_handed; /* MHD's response now holds the stream's attachment */
};

struct stream_seg {
	struct nexsrv_shared *buf;
	size_t off; /* bytes of it already sent */
};

struct nexsrv_stream {
	struct nexsrv_stream *next, *prev; /* http->streams, while attached */
	struct nexsrv_stream *id_next;	   /* http->by_id's chain */
	uint64_t id;
	struct nexsrv_http *http; /* while attached */
	pthread_mutex_t lock;
	pthread_cond_t cb_done;
	unsigned refs;		     /* the producer's, and the attachment's */
	struct MHD_Connection *conn; /* while attached */
	int fd;
	bool attached, suspended, watching;
	/* Suspended, with every byte MHD produced sent: the socket is the stream's own until
	 * it resumes, and writes go straight to it (see stream_direct_send). */
	bool can_direct, direct;
	gnutls_session_t tls; /* MHD's session of an HTTPS connection: records go through it */
	bool tls_pending;     /* GnuTLS holds bytes the socket did not take yet */
	bool held;	      /* writes only queue: nexsrv_stream_hold() */
	bool chunked;	      /* the body is chunked (HTTP/1.1); else it ends with the connection */
	bool out_armed;	      /* the monitor also waits for the socket to take more */
	bool closed;	      /* by the producer */
	bool gone;	      /* the client went away */
	bool ending;	      /* the server is stopping */
	/* The socket is the stream's own: MHD closed its connection after the headers and
	 * the first lines, so its memory goes with it.  Writes are all direct. */
	bool own, can_own, reaping, counted;
	size_t end_off; /* bytes of the last chunk sent, at the end of an own socket */
	struct nexsrv_conn_addr addr;
	struct nexsrv_stream *reap_next;
	/* The queue: a ring of references to shared strings, the first partly sent. */
	struct stream_seg *segs; /* seg_inline, or a larger array while many are queued */
	size_t seg_head, seg_n, seg_cap;
	struct stream_seg seg_inline[STREAM_SEGS_INLINE];
	size_t q_len, q_limit; /* bytes queued, and the most that may be */
	nexsrv_stream_close_fn on_close;
	void *on_close_arg;
	bool cb_running;
	pthread_t cb_thread;
};

static inline bool http_stopping(const struct nexsrv_http *http)
{
	return __atomic_load_n(&http->stopping, __ATOMIC_SEQ_CST);
}

/* --- nexsrv_http_stream.c ------------------------------------------------------------- */

/* MHD's content reader of a streaming response, and its free callback. */
ssize_t nexsrv_stream_reader(void *cls, uint64_t pos, char *buf, size_t max);
void nexsrv_stream_response_free(void *cls);
/* The connection side lets go of the stream (also when the request ended before a reply). */
void nexsrv_stream_detach(struct nexsrv_stream *s);
/* The stop: every stream ends after its queue; then those still writing are cut short. */
void nexsrv_streams_end_all(struct nexsrv_http *http);
void nexsrv_streams_release_all(struct nexsrv_http *http);
/* The thread that watches parked streams' sockets, and closes the own ones that ended. */
void *nexsrv_stream_monitor_main(void *arg);

/* --- nexsrv_http.c --------------------------------------------------------------------- */

bool nexsrv_req_has_header(const struct nexsrv_req *req, const char *name);

#endif
