/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexsrv's STUN responder (stun-listen): tells each agent the address and port its Binding
 * requests arrive from, so an agent behind a NAT learns its reflexive endpoint from the
 * controller it already talks to instead of depending on a third-party STUN server.
 *
 * One non-blocking UDP socket on the main loop.  Only well-formed Binding requests are
 * answered, each with one response no larger than what it answers; everything else is
 * dropped without a word and counted, so the socket can neither be probed for errors nor
 * used to amplify.  Each wakeup reads a bounded batch, so a flood delays the rest of the
 * loop by one batch at most.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/prefix.h"
#include "lib/strutil.h"
#include "lib/stun.h"
#include "nexsrv/nexsrv.h"

NX_DEBUG_DECLARE(nexsrv_stun);

#define STUN_SOFTWARE "nexsrv"
/* Datagrams read per wakeup before the loop gets its turn again. */
#define STUN_BATCH    64
/* Larger datagrams are no Binding request of ours to answer (RFC 8489 §6.1: a STUN message
 * over UDP fits the path MTU). */
#define STUN_RECV_MAX 1500

struct nexsrv_stun {
	struct nx_fdwatch watch;
	int fd;
	struct nexsrv_stun_stats stats; /* updated atomically: readable from any thread */
	uint8_t rbuf[STUN_RECV_MAX];
	uint8_t sbuf[NX_STUN_BUILD_MAX];
};

static void count(uint64_t *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

/*
 * stun-listen "HOST:PORT" -> address and port: an IPv4 address, a bracketed IPv6 address,
 * or a name looked up once, now (the first address it resolves to is the one bound).
 */
static int resolve_listen(const char *text, struct nx_stun_addr *out, struct nx_err *err)
{
	const char *colon = strrchr(text, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM };
	struct addrinfo *res = NULL, *ai;
	unsigned long long port;
	char host[256];
	bool found = false;
	int rc;

	if (nx_endpoint_parse(text, &out->addr, &out->port, NULL) == 0)
		return 0;
	if (text[0] == '[')
		return nx_endpoint_parse(text, &out->addr, &out->port, err);
	if (!colon || colon == text)
		return nx_err_set(err, EINVAL, "\"%s\": expected HOST:PORT", text);
	if ((size_t)(colon - text) >= sizeof(host))
		return nx_err_set(err, EINVAL, "\"%s\": host name too long", text);
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	if (strchr(host, ':'))
		return nx_err_set(err, EINVAL, "\"%s\": an IPv6 address needs brackets: [%s]:PORT",
				  text, host);
	rc = nx_parse_uint(colon + 1, 1, 65535, &port, err);
	if (rc < 0)
		return rc;

	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0)
		return nx_err_set(err, ENOENT, "\"%s\": cannot resolve \"%s\": %s", text, host,
				  rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	for (ai = res; ai && !found; ai = ai->ai_next) {
		struct sockaddr_storage ss;

		if (ai->ai_addrlen > sizeof(ss))
			continue;
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		found = nx_addr_from_sockaddr(&ss, &out->addr, NULL) == 0;
	}
	freeaddrinfo(res);
	if (!found)
		return nx_err_set(err, EADDRNOTAVAIL, "\"%s\": \"%s\" has no IPv4 or IPv6 address",
				  text, host);
	out->port = (uint16_t)port;
	return 0;
}

/* A bound non-blocking UDP socket; IPv6 ones take IPv4 too ("[::]:3478" is dual-stack). */
static int open_socket(const struct nx_stun_addr *local, const char *text, struct nx_err *err)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd, off = 0, rc;

	rc = nx_addr_to_sockaddr(&local->addr, local->port, &ss, &sslen);
	if (rc < 0)
		return nx_err_set(err, -rc, "\"%s\": not an IPv4 or IPv6 address", text);
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return nx_err_set(err, errno, "\"%s\": socket: %s", text, strerror(errno));
	if (ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) < 0) {
		rc = nx_err_set(err, errno, "\"%s\": IPV6_V6ONLY: %s", text, strerror(errno));
		goto fail;
	}
	if (bind(fd, (const struct sockaddr *)&ss, sslen) < 0) {
		rc = nx_err_set(err, errno, "\"%s\": bind: %s", text, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}

/* An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d; tell it a.b.c.d. */
static void unmap_v4(struct nx_addr *a)
{
	struct in_addr v4;

	if (a->family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a->v6))
		return;
	memcpy(&v4, &a->v6.s6_addr[12], sizeof(v4));
	a->family = AF_INET;
	a->v4 = v4;
}

/* For debug messages only: formatting is not free, and a flood must stay cheap. */
static const char *addr_text(const struct nx_stun_addr *a, char buf[NX_ENDPOINT_STRLEN])
{
	return nx_endpoint_format(&a->addr, a->port, buf, NX_ENDPOINT_STRLEN);
}

/* Answers one datagram of n bytes (n may exceed the buffer: MSG_TRUNC) from src. */
static void stun_datagram(struct nexsrv_stun *st, size_t n, const struct sockaddr_storage *src,
			  socklen_t srclen)
{
	char text[NX_ENDPOINT_STRLEN];
	struct nx_stun_addr from;
	struct nx_stun_msg msg;
	struct nx_err err = { "" };
	ssize_t sent;
	int rc, len;

	if (nx_addr_from_sockaddr(src, &from.addr, &from.port) < 0) {
		count(&st->stats.ignored);
		return;
	}
	unmap_v4(&from.addr);
	if (n > sizeof(st->rbuf)) {
		count(&st->stats.ignored);
		nx_debug(&dbg_nexsrv_stun, "ignored a %zu-byte datagram from %s: too large", n,
			 addr_text(&from, text));
		return;
	}

	rc = nx_stun_decode_request(st->rbuf, n, &msg, &err);
	if (rc == 0) {
		count(&st->stats.requests);
		len = nx_stun_build_binding_success(st->sbuf, sizeof(st->sbuf), msg.txid, &from,
						    STUN_SOFTWARE);
	} else if (rc == -ENOTSUP) {
		count(&st->stats.requests);
		len = nx_stun_build_binding_error(
			st->sbuf, sizeof(st->sbuf), msg.txid, NX_STUN_ERR_UNKNOWN_ATTRIBUTE, NULL,
			msg.unknown_required, msg.n_unknown_required, STUN_SOFTWARE);
	} else {
		count(&st->stats.ignored);
		nx_debug(&dbg_nexsrv_stun, "ignored %zu bytes from %s: %s", n,
			 addr_text(&from, text), err.msg);
		return;
	}
	if (len < 0) {
		count(&st->stats.send_failures);
		nx_err("nexsrv: STUN: cannot build the answer to %s: %s", addr_text(&from, text),
		       strerror(-len));
		return;
	}

	sent = sendto(st->fd, st->sbuf, (size_t)len, 0, (const struct sockaddr *)src, srclen);
	if (sent != len) {
		count(&st->stats.send_failures);
		nx_debug(&dbg_nexsrv_stun, "answer to %s not sent: %s", addr_text(&from, text),
			 sent < 0 ? strerror(errno) : "short write");
		return;
	}
	if (rc == 0) {
		count(&st->stats.responses);
		nx_debug(&dbg_nexsrv_stun, "Binding request from %s answered",
			 addr_text(&from, text));
	} else {
		count(&st->stats.error_responses);
		nx_debug(&dbg_nexsrv_stun, "Binding request from %s answered with 420: %s",
			 addr_text(&from, text), err.msg);
	}
}

static void stun_readable(struct nx_fdwatch *w, int fd, unsigned what, void *arg)
{
	struct nexsrv_stun *st = arg;

	(void)w;
	(void)what;
	for (int i = 0; i < STUN_BATCH; i++) {
		struct sockaddr_storage src;
		socklen_t srclen = sizeof(src);
		ssize_t n = recvfrom(fd, st->rbuf, sizeof(st->rbuf), MSG_TRUNC,
				     (struct sockaddr *)&src, &srclen);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				nx_debug(&dbg_nexsrv_stun, "recvfrom: %s", strerror(errno));
			return;
		}
		stun_datagram(st, (size_t)n, &src, srclen);
	}
}

int nexsrv_stun_start(struct nexsrv *srv, struct nx_err *err)
{
	const char *spec = srv->cfg.stun_listen;
	char text[NX_ENDPOINT_STRLEN];
	struct nx_stun_addr local;
	struct nexsrv_stun *st;
	int rc;

	if (!spec[0] || srv->stun)
		return 0;
	memset(&local, 0, sizeof(local));
	rc = resolve_listen(spec, &local, err);
	if (rc < 0)
		goto fail;
	st = calloc(1, sizeof(*st));
	if (!st)
		return nx_err_set(err, ENOMEM, "STUN responder: out of memory");
	st->fd = open_socket(&local, spec, err);
	if (st->fd < 0) {
		rc = st->fd;
		free(st);
		goto fail;
	}
	rc = nx_fdwatch_init(srv->daemon->loop, &st->watch, st->fd, NX_READ, stun_readable, st);
	if (rc < 0) {
		close(st->fd);
		free(st);
		return nx_err_set(err, -rc, "STUN responder: cannot watch its socket: %s",
				  strerror(-rc));
	}
	srv->stun = st;
	nx_info("nexsrv: STUN responder on %s",
		nx_endpoint_format(&local.addr, local.port, text, sizeof(text)));
	return 0;
fail:
	/* Say which setting failed: "stun-listen "...": bind: Address in use". */
	if (err) {
		char msg[NX_ERR_MAX];

		nx_strlcpy(msg, err->msg, sizeof(msg));
		nx_err_set(err, -rc, "stun-listen %s", msg);
	}
	return rc;
}

void nexsrv_stun_stop(struct nexsrv *srv)
{
	struct nexsrv_stun *st = srv->stun;

	if (!st)
		return;
	nx_fdwatch_fini(&st->watch);
	close(st->fd);
	free(st);
	srv->stun = NULL;
}

bool nexsrv_stun_stats(const struct nexsrv *srv, struct nexsrv_stun_stats *out)
{
	const struct nexsrv_stun *st = srv->stun;

	memset(out, 0, sizeof(*out));
	if (!st)
		return false;
	out->requests = __atomic_load_n(&st->stats.requests, __ATOMIC_RELAXED);
	out->responses = __atomic_load_n(&st->stats.responses, __ATOMIC_RELAXED);
	out->error_responses = __atomic_load_n(&st->stats.error_responses, __ATOMIC_RELAXED);
	out->ignored = __atomic_load_n(&st->stats.ignored, __ATOMIC_RELAXED);
	out->send_failures = __atomic_load_n(&st->stats.send_failures, __ATOMIC_RELAXED);
	return true;
}
