/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Load generator for nexsrv's benchmark (tests/bench/bench-nexsrv): one process drives
 * many HTTP requests at once through libcurl's multi interface, so that what is measured
 * is the server, not the cost of starting a client per device.
 *
 *   enroll: enrolls --count devices with one registration key, --concurrency requests in
 *           flight, each with a fresh X25519 public key; prints enrollments per second.
 *   watch:  holds --watchers streams on a VPC, then --count times sends one change (a PATCH
 *           of a device, or a trigger request to a reference broadcaster) and measures, for
 *           every stream, the time from sending the change to receiving its line; prints
 *           p50/p99/max and, with --pid, the server's RSS and CPU time.
 *
 * Output ends with one line "RESULT key=value ..." for the driver to parse.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/errmsg.h"
#include "lib/strutil.h"
#include "lib/wgkey.h"
#include "tests/bench/bench_util.h"
#include "tests/bench/http_response.h"

#define LINE_MAX_LEN  65536
#define WAIT_CHANGE_S 10.0
#define WAIT_OPEN_S   30.0 /* streams opening: give up after this long without progress */
#define PER_SOURCE_IP 400  /* streams per 127.x.y.z source address: under nexsrv's per-IP cap */

struct opts {
	const char *url;
	const char *token;
	const char *vpc;
	const char *device;
	const char *trigger; /* reference broadcaster: trigger URL instead of a PATCH */
	unsigned concurrency;
	unsigned count;
	unsigned watchers;
	unsigned readers; /* threads reading the streams */
	long pid;
};

static int parse_uint_opt(const char *name, const char *s, unsigned *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > 10000000UL) {
		fprintf(stderr, "nexsrv_load: --%s: \"%s\" is not a number up to 10000000\n", name,
			s);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			perror("nexsrv_load: setrlimit(RLIMIT_NOFILE)");
	}
}

/* --- a process's resident size and CPU time, from /proc ---------------------------------- */

static long proc_rss_kb(long pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* utime + stime in seconds, -1 when unreadable. */
static double proc_cpu_s(long pid)
{
	char path[64], buf[2048];
	unsigned long long ut, st;
	const char *p;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* comm may hold spaces */
	if (!p)
		return -1;
	/* after ") ": state(3) ... utime(14) stime(15) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* --- enroll ------------------------------------------------------------------------------ */

struct enroll_req {
	CURL *easy;
	struct curl_slist *hdrs;
	char body[512];
};

static size_t discard_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
	(void)ptr;
	(void)ud;
	return size * nmemb;
}

/* The public keys of count devices, made before the clock starts: a device makes its key
 * on its own machine, not on the server's.  NULL on failure (said why). */
static char (*enroll_keys(unsigned count))[NX_WG_KEY_B64_LEN]
{
	char(*keys)[NX_WG_KEY_B64_LEN] = calloc(count ? count : 1, sizeof(*keys));

	for (unsigned i = 0; keys && i < count; i++) {
		struct nx_wgkey priv, pub;
		struct nx_err err;

		if (nx_wgkey_generate_private(&priv, &err) < 0 ||
		    nx_wgkey_public_from_private(&priv, &pub, &err) < 0) {
			fprintf(stderr, "nexsrv_load: key: %s\n", err.msg);
			nx_wgkey_wipe(&priv);
			free(keys);
			return NULL;
		}
		nx_wgkey_wipe(&priv);
		nx_wgkey_to_base64(&pub, keys[i]);
	}
	return keys;
}

static void enroll_prepare(struct enroll_req *r, const struct opts *o, const char *endpoint,
			   unsigned seq, const char *key)
{
	snprintf(r->body, sizeof(r->body),
		 "{\"vpc_id\":\"%s\",\"public_key\":\"%s\",\"hostname\":\"bench-%u\",\"os\":"
		 "\"linux\"}",
		 o->vpc, key, seq);
	curl_easy_reset(r->easy);
	curl_easy_setopt(r->easy, CURLOPT_URL, endpoint);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, discard_cb);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT, 60L);
}

static int cmd_enroll(const struct opts *o)
{
	struct enroll_req *reqs = NULL;
	char(*keys)[NX_WG_KEY_B64_LEN] = NULL;
	char endpoint[1024], auth[512];
	unsigned started = 0, ok = 0, failed = 0, status_err[6] = { 0 };
	CURLM *multi = NULL;
	int running = 0, rc = 1;
	double t0, dt;

	if (!o->vpc || !o->token) {
		fprintf(stderr, "nexsrv_load enroll: --vpc and --token are required\n");
		return 2;
	}
	snprintf(endpoint, sizeof(endpoint), "%s/api/devices", o->url);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token);
	reqs = calloc(o->concurrency, sizeof(*reqs));
	multi = curl_multi_init();
	keys = enroll_keys(o->count);
	if (!reqs || !multi || !keys)
		goto out;
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)o->concurrency);
	for (unsigned i = 0; i < o->concurrency; i++) {
		reqs[i].easy = curl_easy_init();
		reqs[i].hdrs = curl_slist_append(NULL, auth);
		reqs[i].hdrs = curl_slist_append(reqs[i].hdrs, "Content-Type: application/json");
		reqs[i].hdrs = curl_slist_append(reqs[i].hdrs, "Expect:");
		if (!reqs[i].easy || !reqs[i].hdrs)
			goto out;
	}

	t0 = bench_now_s();
	for (unsigned i = 0; i < o->concurrency && started < o->count; i++, started++) {
		enroll_prepare(&reqs[i], o, endpoint, started, keys[started]);
		curl_multi_add_handle(multi, reqs[i].easy);
	}
	do {
		struct CURLMsg *m;
		int left;

		curl_multi_perform(multi, &running);
		while ((m = curl_multi_info_read(multi, &left))) {
			struct enroll_req *r;
			long code = 0;
			char *priv;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
			r = (struct enroll_req *)(void *)priv;
			curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			if (m->data.result == CURLE_OK && code == 201) {
				ok++;
			} else {
				failed++;
				status_err[code >= 100 && code < 600 ? code / 100 : 0]++;
				if (failed <= 3)
					fprintf(stderr,
						"nexsrv_load: enrolment failed: %s, HTTP %ld\n",
						curl_easy_strerror(m->data.result), code);
			}
			curl_multi_remove_handle(multi, r->easy);
			if (started < o->count) {
				enroll_prepare(r, o, endpoint, started, keys[started]);
				started++;
				curl_multi_add_handle(multi, r->easy);
				running++;
			}
		}
		if (running)
			curl_multi_poll(multi, NULL, 0, 1000, NULL);
	} while (running);
	dt = bench_now_s() - t0;

	printf("enroll: %u enrolled, %u failed (HTTP 4xx %u, 5xx %u, no answer %u) in %.3f s, "
	       "%u in flight\n",
	       ok, failed, status_err[4], status_err[5], status_err[0], dt, o->concurrency);
	printf("RESULT enrolled=%u failed=%u seconds=%.3f per_s=%.1f\n", ok, failed, dt,
	       dt > 0 ? ok / dt : 0.0);
	rc = failed ? 1 : 0;
out:
	if (reqs) {
		for (unsigned i = 0; i < o->concurrency; i++) {
			if (reqs[i].easy) {
				curl_multi_remove_handle(multi, reqs[i].easy);
				curl_easy_cleanup(reqs[i].easy);
			}
			curl_slist_free_all(reqs[i].hdrs);
		}
		free(reqs);
	}
	if (multi)
		curl_multi_cleanup(multi);
	free(keys);
	return rc;
}

/* --- watch ------------------------------------------------------------------------------- */

/* Small: a delivery touches its stream's state, and 10,000 streams' buffers inline (64 kB
 * each) made every one of them a cache and TLB miss. */
struct stream {
	CURL *easy; /* connects it (CURLOPT_CONNECT_ONLY); then fd is read directly */
	int fd;
	int ep;		    /* its reader's epoll set */
	size_t len;	    /* of a line begun in an earlier read */
	bool ready;	    /* saw its first line: the initial list is done */
	bool done;	    /* the transfer ended (an error for a stream) */
	unsigned got_seq;   /* last change number seen */
	unsigned armed_seq; /* the change it was counted in (it became ready before it) */
	const char **mark;  /* the marker of the change in progress */
	double *t_sent;
	double *sample; /* where to store this stream's latency for the change in progress */
	unsigned *pending;
	unsigned *cur_seq;
	struct http_response http;
	char *line; /* a line begun in an earlier read (LINE_MAX_LEN bytes, when needed) */
};

/* A whole line of s (without its newline). */
static void stream_line(struct stream *s, const char *line, size_t len)
{
	static const char tail[] = "\"tail\"";
	const char *mark;
	unsigned seq;

	if (len == 0)
		return; /* keep-alive */
	if (!__atomic_load_n(&s->ready, __ATOMIC_RELAXED)) {
		if (memmem(line, len, tail, sizeof(tail) - 1))
			__atomic_store_n(&s->ready, true, __ATOMIC_RELAXED);
		return;
	}
	/* The change under way: its number published last (release) by the main thread, after
	 * what goes with it. */
	seq = __atomic_load_n(s->cur_seq, __ATOMIC_ACQUIRE);
	mark = __atomic_load_n(s->mark, __ATOMIC_RELAXED);
	if (mark && __atomic_load_n(&s->armed_seq, __ATOMIC_RELAXED) == seq && s->got_seq != seq &&
	    memmem(line, len, mark, strlen(mark))) {
		s->got_seq = seq;
		*__atomic_load_n(&s->sample, __ATOMIC_RELAXED) = bench_now_s() - *s->t_sent;
		__atomic_fetch_sub(s->pending, 1, __ATOMIC_RELEASE);
	}
}

/* Appends up to n bytes of a line to s->line (what does not fit is dropped). */
static void stream_append(struct stream *s, const char *p, size_t n)
{
	size_t room = LINE_MAX_LEN - s->len;

	if (!n || (!s->line && !(s->line = malloc(LINE_MAX_LEN))))
		return;
	if (n > room)
		n = room;
	memcpy(s->line + s->len, p, n);
	s->len += n;
}

static void stream_body(void *arg, const char *ptr, size_t n)
{
	struct stream *s = arg;
	const char *p = ptr, *end = ptr + n, *nl;

	/* Whole lines at a time, read where they arrived unless begun in an earlier read: the
	 * client must not be what the measurement measures. */
	while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
		if (s->len) {
			stream_append(s, p, (size_t)(nl - p));
			stream_line(s, s->line, s->len);
			s->len = 0;
		} else {
			stream_line(s, p, (size_t)(nl - p));
		}
		p = nl + 1;
	}
	stream_append(s, p, (size_t)(end - p));
}

static double pct(const double *sorted, size_t n, double p)
{
	size_t i;

	if (!n)
		return 0;
	i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

/* libcurl's sockets (the change requests, the streams while they connect) are driven by
 * the main thread through epoll and curl_multi_socket_action; once connected, a stream's
 * socket is read directly (http_response.h) by one of the reader threads, each with an
 * epoll set of its own: the client reads on as many CPUs as the server writes from.  A line
 * arriving on one stream costs the work of that stream, not a pass over all W of them. */
#define MAX_READERS 8

struct reader {
	pthread_t thread;
	int ep;
	struct sockdrv *d;
};

struct sockdrv {
	int curl_ep;
	long timeout_ms; /* curl's timer: -1 none */
	double deadline;
	struct stream *st;
	bool *ours; /* by descriptor: a stream's socket, read here, not by libcurl */
	int n_ours;
	unsigned ended; /* streams that ended (atomic) */
	struct reader readers[MAX_READERS];
	unsigned n_readers;
	bool stop;		 /* (atomic) */
	const unsigned *pending; /* streams yet to see the change under way (atomic) */
};

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct sockdrv *d = userp;
	struct epoll_event ev = { .data.u64 = (uint64_t)fd };

	(void)easy;
	(void)socketp;
	if (fd >= 0 && fd < d->n_ours && d->ours[fd])
		return 0;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(d->curl_ep, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
	if (epoll_ctl(d->curl_ep, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT)
		epoll_ctl(d->curl_ep, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct sockdrv *d = userp;

	(void)multi;
	d->timeout_ms = timeout_ms;
	d->deadline = timeout_ms >= 0 ? bench_now_s() + (double)timeout_ms / 1e3 : 0;
	return 0;
}

static void stream_end(struct sockdrv *d, struct stream *s, const char *why)
{
	if (__atomic_load_n(&s->done, __ATOMIC_RELAXED))
		return;
	__atomic_store_n(&s->done, true, __ATOMIC_RELAXED);
	if (__atomic_add_fetch(&d->ended, 1, __ATOMIC_RELAXED) <= 3)
		fprintf(stderr, "nexsrv_load: a stream ended: %s\n", why);
	if (s->fd >= 0 && s->ep >= 0)
		epoll_ctl(s->ep, EPOLL_CTL_DEL, s->fd, NULL);
}

/* The socket is in the epoll set edge-triggered (one readiness check per arrival, not two):
 * read until a read comes back short, which empties it. */
static void stream_read(struct sockdrv *d, struct stream *s)
{
	char buf[65536]; /* on the reader's own stack */
	ssize_t n;

	do {
		n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			stream_end(d, s, n == 0 ? "closed by the server" : strerror(errno));
			return;
		}
		switch (http_response_feed(&s->http, buf, (size_t)n)) {
		case 0:
			break;
		case 1:
			stream_end(d, s, "the response ended");
			return;
		default:
			stream_end(d, s,
				   s->http.status ? "HTTP status other than 200" : "bad response");
			return;
		}
	} while (n == (ssize_t)sizeof(buf));
}

/* A stream libcurl has connected: from here on its socket is read here. */
static void stream_start(struct sockdrv *d, struct stream *s, const char *request, size_t len)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = (uint64_t)(s - d->st) };
	curl_socket_t fd = CURL_SOCKET_BAD;

	if (curl_easy_getinfo(s->easy, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK ||
	    fd == CURL_SOCKET_BAD || fd >= d->n_ours) {
		stream_end(d, s, "no socket after connecting");
		return;
	}
	s->fd = fd;
	s->ep = d->readers[(size_t)(s - d->st) % d->n_readers].ep;
	d->ours[fd] = true;
	epoll_ctl(d->curl_ep, EPOLL_CTL_DEL, fd, NULL);
	if (send(fd, request, len, MSG_NOSIGNAL) != (ssize_t)len ||
	    epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		stream_end(d, s, strerror(errno));
}

/* Waits up to timeout_ms for libcurl's sockets, then lets the transfers concerned make
 * progress. */
static void pump(CURLM *multi, struct sockdrv *d, int timeout_ms)
{
	struct epoll_event evs[64];
	int n, running, wait = timeout_ms;

	if (d->timeout_ms >= 0) {
		double left = d->deadline - bench_now_s();
		int left_ms = left > 0 ? (int)(left * 1e3) + 1 : 0;

		if (left_ms < wait)
			wait = left_ms;
	}
	n = epoll_wait(d->curl_ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), wait);
	for (int i = 0; i < n; i++) {
		int flags = 0;

		if (evs[i].events & EPOLLIN)
			flags |= CURL_CSELECT_IN;
		if (evs[i].events & EPOLLOUT)
			flags |= CURL_CSELECT_OUT;
		if (evs[i].events & (EPOLLERR | EPOLLHUP))
			flags |= CURL_CSELECT_ERR;
		curl_multi_socket_action(multi, (curl_socket_t)evs[i].data.u64, flags, &running);
	}
	if (d->timeout_ms >= 0 && bench_now_s() >= d->deadline) {
		d->timeout_ms = -1;
		curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
}

/*
 * The change requests go through a multi handle of their own: the streams' holds W
 * connections, and a request looking for one to reuse has libcurl look over all the idle
 * ones (a poll() each) at most once a second: at W=10000, 30 ms of the client's main thread
 * between the clock's start and the request in one change of nine.
 */
static void trigger_pump(CURLM *tmulti, int wait_ms)
{
	int running;

	curl_multi_perform(tmulti, &running);
	curl_multi_poll(tmulti, NULL, 0, wait_ms, NULL);
}

/*
 * While a change is under way a reader naps between polls instead of sleeping in
 * epoll_wait: a thread asleep there is woken by the arrival itself, in the sender's
 * context, so every delivery would cost the server a wake-up (and the client a context
 * switch), which on a machine of its own a client never costs the server.  A nap adds at
 * most READER_NAP_NS to a latency, never takes anything off.
 */
#define READER_NAP_NS 200000

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct epoll_event evs[256];
	const int max = (int)(sizeof(evs) / sizeof(evs[0]));

	while (!__atomic_load_n(&r->d->stop, __ATOMIC_RELAXED)) {
		bool busy = r->d->pending && __atomic_load_n(r->d->pending, __ATOMIC_RELAXED);
		int n = epoll_wait(r->ep, evs, max, busy ? 0 : 100);

		for (int i = 0; i < n; i++)
			stream_read(r->d, &r->d->st[evs[i].data.u64]);
		if (busy && n < max)
			nanosleep(&(struct timespec){ .tv_nsec = READER_NAP_NS }, NULL);
	}
	return NULL;
}

/* Starts the reader threads: 0, or -1 with a message. */
static int readers_start(struct sockdrv *d, unsigned n)
{
	for (d->n_readers = 0; d->n_readers < n; d->n_readers++) {
		struct reader *r = &d->readers[d->n_readers];

		r->d = d;
		r->ep = epoll_create1(EPOLL_CLOEXEC);
		if (r->ep < 0 || pthread_create(&r->thread, NULL, reader_main, r) != 0) {
			perror("nexsrv_load: reader thread");
			if (r->ep >= 0)
				close(r->ep);
			return -1;
		}
	}
	return 0;
}

static void readers_stop(struct sockdrv *d)
{
	__atomic_store_n(&d->stop, true, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < d->n_readers; i++) {
		pthread_join(d->readers[i].thread, NULL);
		close(d->readers[i].ep);
	}
	d->n_readers = 0;
}

/* The request a stream sends once connected, into buf: its length, 0 when it does not fit
 * or the URL is not http:// (the streams are read from their sockets as they are). */
static size_t watch_request(const char *url, const char *token, const char *body, char *buf,
			    size_t size)
{
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	CURLU *u = curl_url();
	int n = -1;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK && strcmp(scheme, "http") == 0)
		n = snprintf(buf, size,
			     "POST %s HTTP/1.1\r\nHost: %s:%s\r\n%s%s%sContent-Type: "
			     "application/json\r\nContent-Length: %zu\r\n\r\n%s",
			     path, host, port, token ? "Authorization: Bearer " : "",
			     token ? token : "", token ? "\r\n" : "", strlen(body), body);
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

static int cmd_watch(const struct opts *o)
{
	struct stream *st = NULL;
	double *samples = NULL, t_sent = 0, t0, t_open, cpu0 = -1, cpu1 = -1, cpu_open = -1;
	double client0, client1; /* this process's CPU time: what the clients cost */
	char endpoint[1024], auth[512], patch_url[1024], body[256], mark_buf[64], trig_body[128],
		request[2048];
	const char *mark = NULL, *watch_body;
	struct curl_slist *hdrs = NULL;
	unsigned pending = 0, cur_seq = 0, ready, lost = 0, missed = 0, progress = 0, armed;
	double t_progress;
	size_t nsamples = 0, base, slots, request_len;
	struct rlimit nofile;
	CURLM *multi = NULL, *tmulti = NULL;
	CURL *trig = NULL;
	long rss0 = -1, rss_open = -1, rss1 = -1, rss2 = -1;
	struct sockdrv drv = { .curl_ep = -1, .timeout_ms = -1 };
	int rc = 1;

	if (!o->trigger && (!o->vpc || !o->token || !o->device)) {
		fprintf(stderr, "nexsrv_load watch: --vpc, --token and --device are required "
				"(or --trigger for a reference broadcaster)\n");
		return 2;
	}
	raise_nofile();
	if (o->trigger)
		snprintf(endpoint, sizeof(endpoint), "%s/watch", o->url);
	else
		snprintf(endpoint, sizeof(endpoint), "%s/api/vpcs/%s/events", o->url, o->vpc);
	snprintf(patch_url, sizeof(patch_url), "%s/api/devices/%s", o->url,
		 o->device ? o->device : "");
	watch_body = "[{\"kind\":\"device\",\"gt_revision\":0}]";
	request_len = watch_request(endpoint, o->token, watch_body, request, sizeof(request));
	if (!request_len) {
		fprintf(stderr, "nexsrv_load watch: %s: the streams are read over http:// only\n",
			endpoint);
		return 2;
	}
	if (o->token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	st = calloc(o->watchers, sizeof(*st));
	drv.st = st;
	drv.pending = &pending;
	drv.n_ours = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < (1u << 24)
			     ? (int)nofile.rlim_cur
			     : 1 << 24;
	drv.ours = calloc((size_t)drv.n_ours, sizeof(*drv.ours));
	samples = calloc((size_t)o->watchers * o->count + 1, sizeof(*samples));
	multi = curl_multi_init();
	tmulti = curl_multi_init();
	trig = curl_easy_init();
	if (!st || !samples || !multi || !tmulti || !trig || !hdrs || !drv.ours)
		goto out;
	drv.curl_ep = epoll_create1(EPOLL_CLOEXEC);
	if (drv.curl_ep < 0) {
		perror("nexsrv_load: epoll");
		goto out;
	}
	if (readers_start(&drv, o->readers) < 0)
		goto out;
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)o->watchers + 16);
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, &drv);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERDATA, &drv);

	/* The change requests' connection is opened (and kept alive) before the streams: a
	 * server at its connection limit could not take it later. */
	curl_easy_setopt(trig, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(trig, CURLOPT_WRITEFUNCTION, discard_cb);
	curl_easy_setopt(trig, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(trig, CURLOPT_TCP_NODELAY, 1L);
	if (o->trigger) {
		curl_easy_setopt(trig, CURLOPT_URL, o->trigger);
		curl_easy_setopt(trig, CURLOPT_POSTFIELDS, "warm-up");
	} else {
		curl_easy_setopt(trig, CURLOPT_URL, patch_url);
		curl_easy_setopt(trig, CURLOPT_CUSTOMREQUEST, "PATCH");
		curl_easy_setopt(trig, CURLOPT_POSTFIELDS, "{\"hostname\":\"bench-warm-up\"}");
	}
	curl_multi_add_handle(tmulti, trig);
	for (t0 = bench_now_s(); bench_now_s() - t0 < 10;) {
		struct CURLMsg *m;
		int left;
		bool done = false;

		trigger_pump(tmulti, 50);
		while ((m = curl_multi_info_read(tmulti, &left)))
			done |= m->msg == CURLMSG_DONE && m->easy_handle == trig;
		if (done)
			break;
	}
	curl_multi_remove_handle(tmulti, trig);

	if (o->pid > 0) {
		rss0 = proc_rss_kb(o->pid);
		cpu0 = proc_cpu_s(o->pid);
	}
	t0 = bench_now_s();
	for (unsigned i = 0; i < o->watchers; i++) {
		struct stream *s = &st[i];
		char src[32];

		s->fd = s->ep = -1;
		http_response_init(&s->http, stream_body, s);
		s->easy = curl_easy_init();
		if (!s->easy)
			goto out;
		s->mark = &mark;
		s->t_sent = &t_sent;
		s->pending = &pending;
		s->cur_seq = &cur_seq;
		s->sample = &samples[0];
		/* loopback sources spread over 127.1.x.y: nexsrv caps connections per address */
		snprintf(src, sizeof(src), "127.1.%u.%u", i / PER_SOURCE_IP / 250,
			 i / PER_SOURCE_IP % 250 + 1);
		curl_easy_setopt(s->easy, CURLOPT_URL, endpoint);
		curl_easy_setopt(s->easy, CURLOPT_INTERFACE, src);
		curl_easy_setopt(s->easy, CURLOPT_CONNECT_ONLY, 1L);
		curl_easy_setopt(s->easy, CURLOPT_PRIVATE, (char *)s);
		curl_easy_setopt(s->easy, CURLOPT_TCP_NODELAY, 1L);
		curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
		curl_multi_add_handle(multi, s->easy);
	}

	/* every stream open and past its initial list */
	t_progress = t0;
	for (;;) {
		struct CURLMsg *m;
		int left;

		pump(multi, &drv, 100);
		while ((m = curl_multi_info_read(multi, &left))) {
			struct stream *s;
			char *p;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
			s = (struct stream *)(void *)p;
			if (m->data.result == CURLE_OK)
				stream_start(&drv, s, request, request_len);
			else
				stream_end(&drv, s, curl_easy_strerror(m->data.result));
		}
		ready = lost = 0;
		for (unsigned i = 0; i < o->watchers; i++) {
			bool done = __atomic_load_n(&st[i].done, __ATOMIC_RELAXED);

			ready += __atomic_load_n(&st[i].ready, __ATOMIC_RELAXED) && !done;
			lost += done;
		}
		if (ready + lost >= o->watchers)
			break;
		if (ready + lost != progress) {
			progress = ready + lost;
			t_progress = bench_now_s();
		} else if (bench_now_s() - t_progress > WAIT_OPEN_S) {
			fprintf(stderr,
				"nexsrv_load: only %u of %u streams open, none more in %.0f s: "
				"going on with those\n",
				ready, o->watchers, WAIT_OPEN_S);
			break;
		}
	}
	t_open = bench_now_s() - t0;
	printf("watch: %u streams open in %.3f s (%u failed)\n", ready, t_open, lost);
	if (o->pid > 0) {
		/* At the last stream's answer the server may still be letting go of what the
		 * burst of connections needed: RSS then, and once it stops falling (<= 3 s). */
		cpu_open = proc_cpu_s(o->pid);
		rss_open = rss1 = proc_rss_kb(o->pid);
		for (int i = 0; i < 30; i++) {
			long prev = rss1;

			usleep(100 * 1000);
			rss1 = proc_rss_kb(o->pid);
			if (rss1 >= prev - prev / 100)
				break;
		}
	}

	client0 = proc_cpu_s(getpid());
	for (unsigned c = 1; c <= o->count; c++) {
		double start;

		snprintf(mark_buf, sizeof(mark_buf), "bench-change-%u-%ld", c, (long)getpid());
		if (o->trigger) {
			snprintf(trig_body, sizeof(trig_body), "%s", mark_buf);
			curl_easy_setopt(trig, CURLOPT_URL, o->trigger);
			curl_easy_setopt(trig, CURLOPT_POSTFIELDS, trig_body);
		} else {
			snprintf(body, sizeof(body), "{\"hostname\":\"%s\"}", mark_buf);
			curl_easy_setopt(trig, CURLOPT_URL, patch_url);
			curl_easy_setopt(trig, CURLOPT_CUSTOMREQUEST, "PATCH");
			curl_easy_setopt(trig, CURLOPT_POSTFIELDS, body);
		}
		armed = 0;
		for (unsigned i = 0; i < o->watchers; i++) {
			if (__atomic_load_n(&st[i].ready, __ATOMIC_RELAXED) &&
			    !__atomic_load_n(&st[i].done, __ATOMIC_RELAXED)) {
				samples[nsamples + armed] = -1; /* not received */
				__atomic_store_n(&st[i].sample, &samples[nsamples + armed],
						 __ATOMIC_RELAXED);
				__atomic_store_n(&st[i].armed_seq, c, __ATOMIC_RELAXED);
				armed++;
			}
		}
		base = nsamples;
		slots = armed;
		nsamples += armed;
		__atomic_store_n(&pending, armed, __ATOMIC_RELAXED);
		__atomic_store_n(&mark, mark_buf, __ATOMIC_RELAXED);
		t_sent = bench_now_s();
		__atomic_store_n(&cur_seq, c, __ATOMIC_RELEASE); /* the readers' cue */
		curl_multi_add_handle(tmulti, trig);
		start = t_sent;
		while (__atomic_load_n(&pending, __ATOMIC_ACQUIRE) &&
		       bench_now_s() - start < WAIT_CHANGE_S) {
			struct CURLMsg *m;
			int left;

			trigger_pump(tmulti, 5);
			while ((m = curl_multi_info_read(tmulti, &left))) {
				long code = 0;

				if (m->msg != CURLMSG_DONE || m->easy_handle != trig)
					continue;
				curl_easy_getinfo(trig, CURLINFO_RESPONSE_CODE, &code);
				if (m->data.result != CURLE_OK || code / 100 != 2)
					fprintf(stderr, "nexsrv_load: change %u: %s, HTTP %ld\n", c,
						curl_easy_strerror(m->data.result), code);
			}
		}
		curl_multi_remove_handle(tmulti, trig);
		pending = __atomic_load_n(&pending, __ATOMIC_ACQUIRE);
		if (pending) {
			fprintf(stderr,
				"nexsrv_load: change %u: %u streams did not see it in %.0f s\n", c,
				pending, WAIT_CHANGE_S);
			missed += pending;
			/* keep only the received ones */
			nsamples = base;
			for (size_t k = base; k < base + slots; k++)
				if (samples[k] >= 0)
					samples[nsamples++] = samples[k];
		}
		__atomic_store_n(&mark, NULL, __ATOMIC_RELAXED);
		/* let the trailing work of this change settle before the next one */
		for (double t = bench_now_s(); bench_now_s() - t < 0.05;)
			trigger_pump(tmulti, 10);
	}
	client1 = proc_cpu_s(getpid());
	if (o->pid > 0) {
		rss2 = proc_rss_kb(o->pid);
		cpu1 = proc_cpu_s(o->pid);
	}

	readers_stop(&drv);
	lost = 0;
	for (unsigned i = 0; i < o->watchers; i++)
		lost += st[i].done;
	/* missed deliveries are counted apart, not as latencies */
	qsort(samples, nsamples, sizeof(*samples), bench_cmp_double);
	printf("watch: %zu deliveries of %u changes to %u streams: p50 %.2f ms, p99 %.2f ms, "
	       "max %.2f ms, %u missed\n",
	       nsamples, o->count, ready, pct(samples, nsamples, 50) * 1e3,
	       pct(samples, nsamples, 99) * 1e3, nsamples ? samples[nsamples - 1] * 1e3 : 0.0,
	       missed);
	if (o->pid > 0)
		printf("watch: server pid %ld: RSS %ld kB idle, %ld kB at the last stream's "
		       "answer, "
		       "%ld kB with the streams open, %ld kB after the changes; CPU %.2f s to open "
		       "the streams, %.2f s for the changes\n",
		       o->pid, rss0, rss_open, rss1, rss2, cpu_open - cpu0, cpu1 - cpu_open);
	/* Per delivery, everything included (the change request, heartbeats meanwhile): less
	 * noisy than the latencies on a machine the clients share with the server. */
	printf("watch: CPU per delivery: server %.2f us, clients %.2f us\n",
	       o->pid > 0 && nsamples ? (cpu1 - cpu_open) * 1e6 / (double)nsamples : -1.0,
	       nsamples ? (client1 - client0) * 1e6 / (double)nsamples : -1.0);
	printf("RESULT streams=%u failed=%u open_s=%.3f samples=%zu missed=%u p50_ms=%.3f "
	       "p99_ms=%.3f max_ms=%.3f rss_idle_kb=%ld rss_open_kb=%ld rss_kb=%ld "
	       "rss_after_kb=%ld "
	       "cpu_open_s=%.2f cpu_changes_s=%.2f client_cpu_changes_s=%.2f\n",
	       ready, lost, t_open, nsamples, missed, pct(samples, nsamples, 50) * 1e3,
	       pct(samples, nsamples, 99) * 1e3, nsamples ? samples[nsamples - 1] * 1e3 : 0.0, rss0,
	       rss_open, rss1, rss2, o->pid > 0 ? cpu_open - cpu0 : -1.0,
	       o->pid > 0 ? cpu1 - cpu_open : -1.0, client1 - client0);
	rc = (lost || missed) ? 1 : 0;
out:
	readers_stop(&drv);
	if (st) {
		for (unsigned i = 0; i < o->watchers; i++) {
			if (st[i].easy) {
				curl_multi_remove_handle(multi, st[i].easy);
				curl_easy_cleanup(st[i].easy);
			}
			http_response_fini(&st[i].http);
			free(st[i].line);
		}
		free(st);
	}
	if (trig)
		curl_easy_cleanup(trig);
	if (multi)
		curl_multi_cleanup(multi);
	if (tmulti)
		curl_multi_cleanup(tmulti);
	curl_slist_free_all(hdrs);
	free(samples);
	if (drv.curl_ep >= 0)
		close(drv.curl_ep);
	free(drv.ours);
	return rc;
}

/* --- main -------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs("usage: nexsrv_load enroll --url URL --token RK:... --vpc ID [--concurrency N] "
	      "[--count N]\n"
	      "       nexsrv_load watch --url URL --token DT:... --vpc ID --device ID "
	      "[--watchers W] [--count N] [--readers N] [--pid PID]\n"
	      "       nexsrv_load watch --url URL --trigger URL [--watchers W] [--count N] "
	      "[--readers N] [--pid PID]\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "token", required_argument, NULL, 't' },
		{ "vpc", required_argument, NULL, 'v' },
		{ "device", required_argument, NULL, 'd' },
		{ "trigger", required_argument, NULL, 'T' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "count", required_argument, NULL, 'n' },
		{ "watchers", required_argument, NULL, 'w' },
		{ "readers", required_argument, NULL, 'r' },
		{ "pid", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .concurrency = 32, .count = 1000, .watchers = 1000, .readers = 2 };
	const char *cmd;
	unsigned pid = 0;
	int c, rc;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines reach a pipe as they happen */
	signal(SIGPIPE, SIG_IGN);	  /* (CURLOPT_NOSIGNAL: libcurl leaves it to us) */
	cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			o.url = optarg;
			break;
		case 't':
			o.token = optarg;
			break;
		case 'v':
			o.vpc = optarg;
			break;
		case 'd':
			o.device = optarg;
			break;
		case 'T':
			o.trigger = optarg;
			break;
		case 'c':
			if (parse_uint_opt("concurrency", optarg, &o.concurrency) < 0)
				return 2;
			break;
		case 'n':
			if (parse_uint_opt("count", optarg, &o.count) < 0)
				return 2;
			break;
		case 'w':
			if (parse_uint_opt("watchers", optarg, &o.watchers) < 0)
				return 2;
			break;
		case 'r':
			if (parse_uint_opt("readers", optarg, &o.readers) < 0)
				return 2;
			if (o.readers < 1 || o.readers > MAX_READERS) {
				fprintf(stderr, "nexsrv_load: --readers: from 1 to %d\n",
					MAX_READERS);
				return 2;
			}
			break;
		case 'p':
			if (parse_uint_opt("pid", optarg, &pid) < 0)
				return 2;
			o.pid = pid;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!o.url || optind != argc || !o.concurrency || !o.watchers) {
		usage(stderr);
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "nexsrv_load: curl_global_init failed\n");
		return 1;
	}
	if (!strcmp(cmd, "enroll")) {
		rc = cmd_enroll(&o);
	} else if (!strcmp(cmd, "watch")) {
		rc = cmd_watch(&o);
	} else {
		usage(stderr);
		rc = 2;
	}
	curl_global_cleanup();
	return rc;
}
