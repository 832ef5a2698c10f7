/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Host names resolved without ever stopping the loop.  nexd is a routing daemon: while it
 * waited on a DNS server that does not answer, path probes would miss their deadlines and
 * declare good paths dead, the watch stream would stall and the VTY would hang.  libevent's
 * resolver asks the name servers of /etc/resolv.conf (after /etc/hosts) from the loop itself,
 * with short timeouts and a hard deadline per lookup, so a dead DNS server delays only the
 * answers that needed it.  The files are read again when they change, as the C library does.
 *
 * libevent finishes a cancelled request only on a later loop iteration, and still touches
 * its evdns base then.  So an evdns base is never freed while it may owe a callback: one
 * that is replaced (the files changed) or whose resolver is freed is retired, and freed a
 * little after its last request has ended.  At exit the loop does not run again; what a
 * retired base still holds stays reachable from the list of them.
 */
#include "config.h"

#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <event2/dns.h>
#include <event2/util.h>

#include "nexd/nexd.h"

#define RESOLV_CONF	   "/etc/resolv.conf"
#define HOSTS_FILE	   "/etc/hosts"
/* Each query (A and AAAA go out together) waits 2 s for an answer and is sent twice, whatever
 * resolv.conf asks for: a name that cannot be resolved costs about 4 s. */
#define DNS_TIMEOUT_S	   "2"
#define DNS_ATTEMPTS	   "2"
/* Once one of A and AAAA is answered, how long the other is waited for. */
#define DNS_SKEW_S	   "1"
/* The bound on a whole lookup, whatever libevent does (search domains, another server). */
#define LOOKUP_DEADLINE_MS 6000
/* A retired base is freed this long after its last request ended: by then every callback
 * libevent queued for it has run. */
#define RETIRE_GRACE_MS	   1000

/* What a file was when it was read, to notice that it changed. */
struct file_stamp {
	bool exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

/* One evdns base: the name servers, options and hosts entries of one reading of the files. */
struct dns_core {
	struct event_base *base;
	struct evdns_base *dns;
	struct file_stamp resolv_conf, hosts;
	unsigned in_flight; /* evdns_getaddrinfo() requests whose callback has not run */
	bool retired;	    /* takes no new lookups; freed once in_flight is 0 */
	bool reap_scheduled;
	struct dns_core *next; /* on retired_cores */
};

struct nexd_resolver {
	struct nx_loop *loop;
	struct dns_core *core;	     /* NULL until the first lookup */
	struct nexd_lookup *lookups; /* whose caller waits */
};

struct nexd_lookup {
	struct nexd_resolver *r; /* NULL once nobody waits for the answer */
	struct nexd_lookup *next;
	struct dns_core *core;
	struct evdns_getaddrinfo_request *req; /* while libevent owes a callback */
	bool starting;			       /* inside evdns_getaddrinfo() */
	bool answered;
	struct nx_timer timer; /* the deadline, or 0 ms for an answer found at once */
	nexd_resolve_fn done;
	void *arg;
	int result;
	char why[128];
	struct nx_addr addrs[NEXD_RESOLVE_MAX_ADDRS];
	size_t n;
};

static struct dns_core *retired_cores;

/* --- files and families ----------------------------------------------------------------------- */

static void stamp_read(const char *path, struct file_stamp *s)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	if (stat(path, &st) < 0)
		return;
	s->exists = true;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->size = st.st_size;
	s->mtime = st.st_mtim;
}

static bool stamp_eq(const struct file_stamp *a, const struct file_stamp *b)
{
	return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* The families to ask for, as AI_ADDRCONFIG chooses them: those this host has an address of,
 * other than loopback (and IPv6 link-local, which reaches no server).  Read at each lookup,
 * since addresses come and go. */
static int usable_family(void)
{
	struct ifaddrs *ifa;
	bool v4 = false, v6 = false;

	if (getifaddrs(&ifa) < 0)
		return AF_UNSPEC;
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			struct sockaddr_in sin;

			memcpy(&sin, i->ifa_addr, sizeof(sin));
			if ((ntohl(sin.sin_addr.s_addr) >> 24) != 127)
				v4 = true;
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			struct sockaddr_in6 sin6;

			memcpy(&sin6, i->ifa_addr, sizeof(sin6));
			if (!IN6_IS_ADDR_LOOPBACK(&sin6.sin6_addr) &&
			    !IN6_IS_ADDR_LINKLOCAL(&sin6.sin6_addr))
				v6 = true;
		}
	}
	freeifaddrs(ifa);
	if (v4 && !v6)
		return AF_INET;
	if (v6 && !v4)
		return AF_INET6;
	return AF_UNSPEC;
}

/* --- evdns bases ------------------------------------------------------------------------------ */

/* A base on the files as they are now.  libevent reports name servers that fail, and come
 * back, through the loop's log. */
static struct dns_core *core_new(struct event_base *base, const struct file_stamp *resolv_conf,
				 const struct file_stamp *hosts, struct nx_err *err)
{
	static const char *const options[][2] = {
		{ "timeout:", DNS_TIMEOUT_S },
		{ "attempts:", DNS_ATTEMPTS },
		{ "getaddrinfo-allow-skew:", DNS_SKEW_S },
		/* Not every server or middlebox keeps the case of a question (0x20 encoding);
		 * the C library does not mix it either. */
		{ "randomize-case:", "0" },
	};
	struct dns_core *c;
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c) {
		nx_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	c->base = base;
	c->resolv_conf = *resolv_conf;
	c->hosts = *hosts;
	/* Not EVDNS_BASE_INITIALIZE_NAMESERVERS: with it libevent 2.1 makes no base at all when
	 * resolv.conf is missing or names no server, where the C library asks 127.0.0.1. */
	c->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!c->dns) {
		free(c);
		nx_err_set(err, ENOMEM, "cannot start a DNS resolver");
		return NULL;
	}
	/* Reads /etc/hosts as well (DNS_OPTION_HOSTSFILE). */
	rc = evdns_base_resolv_conf_parse(c->dns, DNS_OPTIONS_ALL, RESOLV_CONF);
	if (rc != 0 && rc != 1 && rc != 6)
		nx_debug(&dbg_nexd_nat, "DNS: %s unreadable (%d)", RESOLV_CONF, rc);
	if (evdns_base_count_nameservers(c->dns) == 0)
		evdns_base_nameserver_ip_add(c->dns, "127.0.0.1");
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
		if (evdns_base_set_option(c->dns, options[i][0], options[i][1]) < 0)
			nx_debug(&dbg_nexd_nat, "DNS: option %s%s refused", options[i][0],
				 options[i][1]);
	nx_debug(&dbg_nexd_nat, "DNS: %d name server(s) from %s%s",
		 evdns_base_count_nameservers(c->dns), RESOLV_CONF,
		 resolv_conf->exists ? "" : " (missing: 127.0.0.1)");
	return c;
}

static void core_reap(evutil_socket_t fd, short what, void *arg)
{
	struct dns_core *c = arg;

	(void)fd;
	(void)what;
	c->reap_scheduled = false;
	if (c->in_flight > 0)
		return; /* its last request reschedules this */
	for (struct dns_core **pp = &retired_cores; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	evdns_base_free(c->dns, 0);
	free(c);
}

/* Frees a retired core a little after its last request ended. */
static void core_reap_later(struct dns_core *c)
{
	static const struct timeval grace = { .tv_sec = RETIRE_GRACE_MS / 1000,
					      .tv_usec = (RETIRE_GRACE_MS % 1000) * 1000 };

	if (!c->retired || c->in_flight > 0 || c->reap_scheduled)
		return;
	/* On failure it stays on retired_cores: reachable, never in the way. */
	if (event_base_once(c->base, -1, EV_TIMEOUT, core_reap, c, &grace) == 0)
		c->reap_scheduled = true;
}

static void core_retire(struct dns_core *c)
{
	c->retired = true;
	c->next = retired_cores;
	retired_cores = c;
	core_reap_later(c);
}

/* The resolver's core, read again when resolv.conf or hosts has changed. */
static int core_refresh(struct nexd_resolver *r, struct nx_err *err)
{
	struct file_stamp resolv_conf, hosts;

	stamp_read(RESOLV_CONF, &resolv_conf);
	stamp_read(HOSTS_FILE, &hosts);
	if (r->core && stamp_eq(&resolv_conf, &r->core->resolv_conf) &&
	    stamp_eq(&hosts, &r->core->hosts))
		return 0;
	if (r->core) {
		nx_debug(&dbg_nexd_nat, "DNS: %s or %s changed, reading them again", RESOLV_CONF,
			 HOSTS_FILE);
		core_retire(r->core);
		r->core = NULL;
	}
	r->core = core_new(nx_loop_base(r->loop), &resolv_conf, &hosts, err);
	return r->core ? 0 : -ENOMEM;
}

/* --- lookups ---------------------------------------------------------------------------------- */

static int gai_result(int gai, char *why, size_t size)
{
	switch (gai) {
	case EVUTIL_EAI_NONAME:
		snprintf(why, size, "no such name");
		return -ENOENT;
	case EVUTIL_EAI_NODATA:
	case EVUTIL_EAI_ADDRFAMILY:
		snprintf(why, size, "no address for this name");
		return -ENODATA;
	case EVUTIL_EAI_MEMORY:
		snprintf(why, size, "out of memory");
		return -ENOMEM;
	case EVUTIL_EAI_FAIL:
		/* What libevent makes of timeouts and server failures alike. */
		snprintf(why, size, "the name servers failed or did not answer");
		return -EIO;
	default:
		snprintf(why, size, "%s", evutil_gai_strerror(gai));
		return -EIO;
	}
}

/* Keeps the answer in l: IPv4 addresses first, then IPv6, each in the order given. */
static void take_answer(struct nexd_lookup *l, int gai, const struct evutil_addrinfo *res)
{
	static const int families[] = { AF_INET, AF_INET6 };

	l->answered = true;
	l->n = 0;
	if (gai != 0) {
		l->result = gai_result(gai, l->why, sizeof(l->why));
		return;
	}
	for (size_t f = 0; f < 2; f++) {
		for (const struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next) {
			struct sockaddr_storage ss = { 0 };

			if (l->n == NEXD_RESOLVE_MAX_ADDRS)
				break;
			if (ai->ai_family != families[f] || !ai->ai_addr ||
			    ai->ai_addrlen > sizeof(ss))
				continue;
			memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
			if (nx_addr_from_sockaddr(&ss, &l->addrs[l->n], NULL) == 0)
				l->n++;
		}
	}
	if (l->n > 0) {
		l->result = 0;
	} else {
		l->result = -ENODATA;
		snprintf(l->why, sizeof(l->why), "no address for this name");
	}
}

/* Nobody waits for l any more: off the resolver's list, its timer stopped. */
static void lookup_detach(struct nexd_lookup *l)
{
	struct nexd_resolver *r = l->r;

	if (!r)
		return;
	for (struct nexd_lookup **pp = &r->lookups; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	l->r = NULL;
	nx_timer_fini(&l->timer);
}

/* Tells the caller; l is freed unless libevent still owes its callback (which frees it). */
static void lookup_report(struct nexd_lookup *l)
{
	nexd_resolve_fn done = l->done;
	void *arg = l->arg;

	lookup_detach(l);
	done(l->result, l->addrs, l->n, l->result < 0 ? l->why : NULL, arg);
	if (!l->req)
		free(l);
}

static void gai_done(int gai, struct evutil_addrinfo *res, void *arg)
{
	struct nexd_lookup *l = arg;
	struct dns_core *c = l->core;

	l->req = NULL;
	c->in_flight--;
	if (l->r)
		take_answer(l, gai, res);
	if (res)
		evutil_freeaddrinfo(res);
	core_reap_later(c);
	if (!l->r)
		free(l); /* cancelled, timed out, or its resolver is gone */
	else if (!l->starting)
		lookup_report(l);
	/* else answered inside evdns_getaddrinfo(): nexd_resolve() has it reported later */
}

static void lookup_timer(struct nx_timer *t, void *arg)
{
	struct nexd_lookup *l = arg;

	(void)t;
	if (!l->answered) {
		l->result = -ETIMEDOUT;
		l->n = 0;
		snprintf(l->why, sizeof(l->why), "no answer within %d s",
			 LOOKUP_DEADLINE_MS / 1000);
		/* Its callback comes on a later iteration and frees l. */
		if (l->req)
			evdns_getaddrinfo_cancel(l->req);
	}
	lookup_report(l);
}

struct nexd_lookup *nexd_resolve(struct nexd_resolver *r, const char *host, nexd_resolve_fn done,
				 void *arg, struct nx_err *err)
{
	struct evutil_addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_protocol = IPPROTO_UDP };
	struct evdns_getaddrinfo_request *req;
	struct nexd_lookup *l;

	if (!host || !*host) {
		nx_err_set(err, EINVAL, "empty host name");
		return NULL;
	}
	if (core_refresh(r, err) < 0)
		return NULL;
	l = calloc(1, sizeof(*l));
	if (!l) {
		nx_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	l->r = r;
	l->core = r->core;
	l->done = done;
	l->arg = arg;
	nx_timer_init(r->loop, &l->timer, lookup_timer, l);
	l->next = r->lookups;
	r->lookups = l;
	hints.ai_family = usable_family();

	l->core->in_flight++;
	l->starting = true;
	req = evdns_getaddrinfo(l->core->dns, host, NULL, &hints, gai_done, l);
	l->starting = false;
	if (req) {
		l->req = req;
		nx_timer_arm(&l->timer, LOOKUP_DEADLINE_MS);
		return l;
	}
	/* Answered at once (an address, /etc/hosts, or no request could be sent). */
	if (!l->answered) {
		l->result = -EIO;
		snprintf(l->why, sizeof(l->why), "the lookup could not start");
	}
	nx_timer_arm(&l->timer, 0);
	return l;
}

void nexd_lookup_cancel(struct nexd_lookup *l)
{
	if (!l)
		return;
	lookup_detach(l);
	if (l->req)
		evdns_getaddrinfo_cancel(l->req); /* its callback frees l */
	else
		free(l);
}

/* --- the resolver ----------------------------------------------------------------------------- */

struct nexd_resolver *nexd_resolver_new(struct nx_loop *loop)
{
	struct nexd_resolver *r = calloc(1, sizeof(*r));

	if (r)
		r->loop = loop;
	return r;
}

void nexd_resolver_free(struct nexd_resolver *r)
{
	if (!r)
		return;
	while (r->lookups) {
		struct nexd_lookup *l = r->lookups;

		lookup_detach(l);
		/* A request under way is not cancelled in libevent: that completes only on a
		 * later loop iteration, which at exit never comes.  It ends by itself within
		 * its timeouts, and its callback frees l. */
		if (!l->req)
			free(l);
	}
	if (r->core)
		core_retire(r->core);
	free(r);
}
