/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the NAT in front of this device does to WireGuard's port, checked continuously: the
 * reflexive endpoint peers can reach it at, and whether that mapping holds for every
 * destination (endpoint-independent) or changes with each (symmetric, where only a relay
 * helps).  Two STUN servers' answers decide: the controller's responder and the configured
 * stun-servers, in that order.  Networks change under a running device (a new uplink, a
 * NAT rebooted into another mode), so the check repeats; but an answer that flaps must not
 * be pushed to every peer each time, so a new view is published only when two checks in a
 * row agree on it.  Servers given by name are resolved on the loop (nexd_resolve.c): a DNS
 * server that does not answer delays only that server's answer, never the daemon.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/stun.h"
#include "lib/strutil.h"
#include "nexd/nexd.h"

#define NAT_INTERVAL_MS 20000
/* A view that differs from the published one is confirmed this soon, not a whole interval
 * later. */
#define NAT_CONFIRM_MS	2000
#define NAT_MAX_SERVERS (1 + NEXD_MAX_CONFIG_LIST)

enum srv_state { SRV_SKIPPED, SRV_PENDING, SRV_OK, SRV_FAILED };

struct nat_server {
	struct nexd_nat *nat;
	char name[300]; /* "stun:HOST:PORT" */
	enum srv_state state;
	uint16_t port;
	struct nexd_lookup *lookup; /* while its name is resolved (state SRV_PENDING) */
	struct nx_addr mapped;
	uint16_t mapped_port;
};

struct nexd_nat {
	struct nexd *nexd;
	struct nexd_stun *stun;
	struct nexd_resolver *resolver; /* for servers given by name; made on first use */
	uint16_t port;			/* the port stun sends from */
	uint64_t interval_ms;
	struct nx_timer timer;
	bool checking;
	bool recheck; /* asked for while a check was running */
	struct nat_server srv[NAT_MAX_SERVERS];
	size_t n_srv;
	bool have_candidate; /* a view differing from the published one, seen once */
	struct nexd_nat_state candidate;
	bool warned_none;
};

/* --- server names ----------------------------------------------------------------------------- */

/* The host of a service URL ("https://host:port/path", "http://[v6]"), into buf. */
static int url_host(const char *url, char *buf, size_t size)
{
	const char *p = strstr(url, "://"), *end;
	size_t n;

	if (!p)
		return -EINVAL;
	p += 3;
	end = p + strcspn(p, "/?#");
	/* userinfo, if any */
	for (const char *at = p; at < end; at++)
		if (*at == '@')
			p = at + 1;
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));

		if (!close)
			return -EINVAL;
		p++;
		n = (size_t)(close - p);
	} else {
		const char *colon = memchr(p, ':', (size_t)(end - p));

		n = (size_t)((colon ? colon : end) - p);
	}
	if (n == 0 || n >= size)
		return -EINVAL;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return 0;
}

/* "HOST:PORT", "[V6]:PORT" or a bare host (port 3478) into host and port. */
static int split_host_port(const char *s, char *host, size_t size, uint16_t *port)
{
	const char *colon, *h = s;
	size_t n;
	char *end;
	unsigned long v;

	*port = NX_STUN_DEFAULT_PORT;
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close)
			return -EINVAL;
		h = s + 1;
		n = (size_t)(close - h);
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] && !colon)
			return -EINVAL;
	} else {
		colon = strrchr(s, ':');
		if (colon && strchr(s, ':') != colon)
			colon = NULL; /* a bare IPv6 address */
		n = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (n == 0 || n >= size)
		return -EINVAL;
	memcpy(host, h, n);
	host[n] = '\0';
	if (colon) {
		errno = 0;
		v = strtoul(colon + 1, &end, 10);
		if (errno || end == colon + 1 || *end || v == 0 || v > 65535)
			return -EINVAL;
		*port = (uint16_t)v;
	}
	return 0;
}

/* --- publishing ------------------------------------------------------------------------------- */

/* Whether two views are the same for publishing.  Behind a symmetric NAT the port of the
 * first server's mapping means nothing to peers and may change with every flow the NAT
 * forgets, so only its address counts there. */
static bool same_view(const struct nexd_nat_state *a, const struct nexd_nat_state *b)
{
	if (a->known != b->known)
		return false;
	if (!a->known)
		return true;
	return a->symmetric == b->symmetric && a->single_server == b->single_server &&
	       nx_addr_eq(&a->reflexive, &b->reflexive) &&
	       (a->symmetric || a->reflexive_port == b->reflexive_port) &&
	       strcmp(a->server, b->server) == 0;
}

static const char *view_format(const struct nexd_nat_state *v, char *buf, size_t size)
{
	char ep[NX_ENDPOINT_STRLEN];

	if (!v->known)
		snprintf(buf, size, "unknown (no STUN server answered)");
	else
		snprintf(buf, size, "reflexive %s (%s), %s",
			 nx_endpoint_format(&v->reflexive, v->reflexive_port, ep, sizeof(ep)),
			 v->server,
			 v->single_server ? "NAT type unknown (one server answered)"
			 : v->symmetric	  ? "symmetric NAT"
					  : "endpoint-independent mapping");
	return buf;
}

static void publish(struct nexd_nat *n, const struct nexd_nat_state *v)
{
	struct nexd *nexd = n->nexd;
	char buf[512];

	nexd->nat_state = *v;
	n->have_candidate = false;
	nx_notice("NAT: %s", view_format(v, buf, sizeof(buf)));
	nexd_ctrl_report_soon(nexd);
}

/* A check has ended with view v. */
static void conclude(struct nexd_nat *n, struct nexd_nat_state *v)
{
	struct nexd_nat_state *cur = &n->nexd->nat_state;
	char buf[512];
	uint64_t next = n->interval_ms;

	v->checked_at_ms = nx_now_ms();
	v->checks = cur->checks + 1;
	nx_debug(&dbg_nexd_nat, "check %u: %s", v->checks, view_format(v, buf, sizeof(buf)));
	if (cur->checks == 0) {
		publish(n, v); /* the first check publishes at once */
	} else if (same_view(v, cur)) {
		n->have_candidate = false;
		cur->checked_at_ms = v->checked_at_ms;
		cur->checks = v->checks;
	} else if (n->have_candidate && same_view(v, &n->candidate)) {
		publish(n, v);
	} else {
		nx_debug(&dbg_nexd_nat, "view changed; publishing when the next check agrees");
		n->candidate = *v;
		n->have_candidate = true;
		cur->checked_at_ms = v->checked_at_ms;
		cur->checks = v->checks;
		if (next > NAT_CONFIRM_MS)
			next = NAT_CONFIRM_MS;
	}
	n->checking = false;
	if (n->recheck) {
		n->recheck = false;
		next = 0;
	}
	nx_timer_arm(&n->timer, next);
}

/* Stops resolving the names of servers no longer waited for. */
static void cancel_lookups(struct nexd_nat *n)
{
	for (size_t i = 0; i < n->n_srv; i++) {
		nexd_lookup_cancel(n->srv[i].lookup);
		n->srv[i].lookup = NULL;
	}
}

/* Decides once the first two servers that answer, in configured order, have answered (or
 * everything before them has failed). */
static void evaluate(struct nexd_nat *n)
{
	struct nat_server *got[2] = { NULL, NULL };
	struct nexd_nat_state v = { 0 };
	size_t k = 0;

	for (size_t i = 0; i < n->n_srv && k < 2; i++) {
		if (n->srv[i].state == SRV_PENDING)
			return;
		if (n->srv[i].state == SRV_OK)
			got[k++] = &n->srv[i];
	}
	nexd_stun_cancel_all(n->stun);
	cancel_lookups(n);
	for (size_t i = 0; i < n->n_srv; i++)
		if (n->srv[i].state == SRV_PENDING)
			n->srv[i].state = SRV_SKIPPED;
	if (k > 0) {
		v.known = true;
		v.reflexive = got[0]->mapped;
		v.reflexive_port = got[0]->mapped_port;
		nx_strlcpy(v.server, got[0]->name, sizeof(v.server));
		if (k == 1)
			v.single_server = true;
		else
			v.symmetric = !nx_addr_eq(&got[0]->mapped, &got[1]->mapped) ||
				      got[0]->mapped_port != got[1]->mapped_port;
	}
	conclude(n, &v);
}

static void query_done(int result, const struct nx_addr *mapped, uint16_t mapped_port, void *arg)
{
	struct nat_server *sv = arg;

	if (result == 0) {
		sv->state = SRV_OK;
		sv->mapped = *mapped;
		sv->mapped_port = mapped_port;
	} else {
		nx_debug(&dbg_nexd_nat, "%s: %s", sv->name,
			 result == -ETIMEDOUT ? "no answer"
			 : result == -EPROTO  ? "error response"
					      : strerror(-result));
		sv->state = SRV_FAILED;
	}
	evaluate(sv->nat);
}

/* Queries the first of addrs a query can be sent to, in order.  0 when a query is under way. */
static int query_addrs(struct nat_server *sv, const struct nx_addr *addrs, size_t n_addrs)
{
	struct nx_err err = { 0 };
	int rc = -ENOENT;

	for (size_t i = 0; i < n_addrs; i++) {
		sv->state = SRV_PENDING;
		rc = nexd_stun_query(sv->nat->stun, &addrs[i], sv->port, query_done, sv, &err);
		if (rc == 0)
			return 0;
		sv->state = SRV_FAILED;
		nx_debug(&dbg_nexd_nat, "%s: %s", sv->name, err.msg);
	}
	return rc;
}

static void resolved(int result, const struct nx_addr *addrs, size_t n_addrs, const char *why,
		     void *arg)
{
	struct nat_server *sv = arg;
	char buf[NX_ADDR_STRLEN];

	sv->lookup = NULL;
	if (result < 0) {
		nx_debug(&dbg_nexd_nat, "%s: skipped: %s", sv->name, why);
		sv->state = SRV_FAILED;
	} else {
		nx_debug(&dbg_nexd_nat, "%s: resolved to %s%s", sv->name,
			 nx_addr_format(&addrs[0], buf, sizeof(buf)),
			 n_addrs > 1 ? " and others" : "");
		if (query_addrs(sv, addrs, n_addrs) < 0)
			sv->state = SRV_FAILED;
	}
	evaluate(sv->nat);
}

/* Starts a query to host:port.  An address is queried at once; a name is resolved first, on
 * the loop, and the server stays pending meanwhile (a DNS server that does not answer must
 * not stop the daemon).  0 when a query or a lookup is under way. */
static int query_host(struct nat_server *sv, const char *host, uint16_t port)
{
	struct nexd_nat *n = sv->nat;
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICHOST };
	struct addrinfo *res = NULL;
	struct nx_addr addrs[NEXD_RESOLVE_MAX_ADDRS];
	struct nx_err err = { 0 };
	size_t n_addrs = 0;
	int rc;

	sv->port = port;
	/* An address only: this never asks a name server. */
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc == 0) {
		for (struct addrinfo *ai = res; ai && n_addrs < NEXD_RESOLVE_MAX_ADDRS;
		     ai = ai->ai_next) {
			struct sockaddr_storage ss = { 0 };

			if (ai->ai_addrlen > sizeof(ss))
				continue;
			memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
			if (nx_addr_from_sockaddr(&ss, &addrs[n_addrs], NULL) == 0)
				n_addrs++;
		}
		freeaddrinfo(res);
		return query_addrs(sv, addrs, n_addrs);
	}
	if (rc != EAI_NONAME) {
		nx_debug(&dbg_nexd_nat, "%s: skipped: %s", sv->name, gai_strerror(rc));
		return -ENOENT;
	}
	if (!n->resolver)
		n->resolver = nexd_resolver_new(n->nexd->daemon->loop);
	if (!n->resolver) {
		nx_debug(&dbg_nexd_nat, "%s: skipped: out of memory", sv->name);
		return -ENOMEM;
	}
	nx_debug(&dbg_nexd_nat, "%s: resolving %s", sv->name, host);
	sv->state = SRV_PENDING;
	sv->lookup = nexd_resolve(n->resolver, host, resolved, sv, &err);
	if (!sv->lookup) {
		sv->state = SRV_FAILED;
		nx_debug(&dbg_nexd_nat, "%s: skipped: %s", sv->name, err.msg);
		return -ENOENT;
	}
	return 0;
}

/* --- the check -------------------------------------------------------------------------------- */

static void add_server(struct nexd_nat *n, const char *host, uint16_t port, const char *label)
{
	struct nat_server *sv;

	if (n->n_srv >= NAT_MAX_SERVERS)
		return;
	sv = &n->srv[n->n_srv++];
	memset(sv, 0, sizeof(*sv));
	sv->nat = n;
	sv->state = SRV_FAILED;
	snprintf(sv->name, sizeof(sv->name), "stun:%s", label);
	if (query_host(sv, host, port) < 0)
		sv->state = SRV_FAILED;
}

static int ensure_stun(struct nexd_nat *n, struct nx_err *err)
{
	uint16_t port = n->nexd->id.listen_port;

	if (n->stun && n->port == port)
		return 0;
	nexd_stun_free(n->stun);
	n->stun = nexd_stun_new(n->nexd->daemon->loop, port, err);
	if (!n->stun)
		return -EIO;
	n->port = port;
	nx_debug(&dbg_nexd_nat, "STUN from port %u", port);
	return 0;
}

static void check_start(struct nexd_nat *n)
{
	struct nexd *nexd = n->nexd;
	struct nx_err err = { 0 };
	char host[256], label[300];
	uint16_t port;

	if (ensure_stun(n, &err) < 0) {
		nx_warn("NAT discovery: %s", err.msg);
		nx_timer_arm(&n->timer, n->interval_ms);
		return;
	}
	cancel_lookups(n); /* none should be left from the last check */
	n->checking = true;
	n->n_srv = 0;
	if (url_host(nexd_ctrl_service(nexd), host, sizeof(host)) == 0) {
		if (strchr(host, ':'))
			snprintf(label, sizeof(label), "[%s]:%d", host, NX_STUN_DEFAULT_PORT);
		else
			snprintf(label, sizeof(label), "%s:%d", host, NX_STUN_DEFAULT_PORT);
		add_server(n, host, NX_STUN_DEFAULT_PORT, label);
	}
	for (size_t i = 0; i < nexd->cfg.n_stun_servers; i++) {
		const char *s = nexd->cfg.stun_servers[i];

		if (split_host_port(s, host, sizeof(host), &port) < 0) {
			nx_debug(&dbg_nexd_nat, "stun-server %s: not HOST:PORT, skipped", s);
			continue;
		}
		add_server(n, host, port, s);
	}
	if (n->n_srv == 0 && !n->warned_none) {
		nx_debug(&dbg_nexd_nat, "no STUN server to ask");
		n->warned_none = true;
	}
	evaluate(n);
}

static void timer_fired(struct nx_timer *t, void *arg)
{
	(void)t;
	check_start(arg);
}

int nexd_nat_start(struct nexd *nexd, struct nx_err *err)
{
	struct nexd_nat *n = nexd->nat;
	const char *env;

	if (n) {
		nexd_nat_recheck_soon(nexd);
		return 0;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return nx_err_set(err, ENOMEM, "NAT discovery: out of memory");
	n->nexd = nexd;
	n->interval_ms = NAT_INTERVAL_MS;
	env = getenv("NEXD_NAT_INTERVAL_MS");
	if (env && *env) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(env, &end, 10);
		if (errno || *end || v < 100 || v > 3600000)
			nx_warn("NEXD_NAT_INTERVAL_MS=%s ignored (100-3600000)", env);
		else {
			n->interval_ms = v;
			nx_notice("NAT discovery every %lu ms (NEXD_NAT_INTERVAL_MS)", v);
		}
	}
	if (ensure_stun(n, err) < 0) {
		free(n);
		return -EIO;
	}
	nx_timer_init(nexd->daemon->loop, &n->timer, timer_fired, n);
	nexd->nat = n;
	nx_timer_arm(&n->timer, 0);
	return 0;
}

void nexd_nat_stop(struct nexd *nexd)
{
	struct nexd_nat *n = nexd->nat;

	if (!n)
		return;
	nx_timer_fini(&n->timer);
	nexd_resolver_free(n->resolver);
	nexd_stun_free(n->stun);
	free(n);
	nexd->nat = NULL;
}

void nexd_nat_recheck_soon(struct nexd *nexd)
{
	struct nexd_nat *n = nexd->nat;

	if (!n)
		return;
	nx_debug(&dbg_nexd_nat, "recheck requested");
	if (n->checking)
		n->recheck = true;
	else
		nx_timer_arm(&n->timer, 0);
}
