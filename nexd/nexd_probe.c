/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * In-tunnel path probes (nexd_probe.h): one UDP socket on this device's probe address that
 * answers others' probes and sends its own, one 50 ms tick that paces them per peer, and a
 * table of peers sorted by probe address so an answer finds its peer by binary search.
 * When a peer's path turns ok or failed, the dataplane is reconciled to choose again.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nexd/nexd.h"
#include "nexd/nexd_probe.h"

#define TICK_MIN_MS   5 /* the timer never fires more often than this */
#define STABLE_AFTER  5 /* answers in a row before probing slows down */
/* A probe is missed when unanswered after max(ANSWER_MIN_MS, 2 srtt + 4 rttvar), never
 * later than the next one is due.  A late answer still proves the path (LATE_WINDOW). */
#define ANSWER_MIN_MS 100
#define LATE_WINDOW   8
#define PEER_READY_MS 2000 /* a peer's "ready" stands this long after its last probe said so */

struct entry {
	struct nx_addr addr; /* the peer's probe address (sort key) */
	struct nx_wgkey key;
	struct nexd_probe_result r;
	uint32_t seq;
	bool outstanding;
	uint64_t deadline_ms;	     /* when the outstanding probe counts as missed */
	uint32_t srtt_us, rttvar_us; /* smoothed as TCP does (RFC 6298) */
	bool ready;		     /* ours, sent in each probe */
	uint64_t peer_ready_at_ms;   /* when the peer last said it was ready (0: not) */
	unsigned answered_in_a_row;
	uint64_t sent_us;
	uint64_t next_ms;
};

struct nexd_probe {
	struct nexd *nexd;
	int fd;
	struct nx_fdwatch watch;
	struct nx_timer tick;
	struct entry *v;
	size_t n;
};

static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

/* Fetched once: an implicit fetch per digest costs more than the digest (peer upserts). */
static void sha256_fetch(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void nexd_probe_addr(const struct nx_wgkey *key, struct nx_addr *out)
{
	uint8_t digest[32];
	unsigned int len = sizeof(digest);

	/* fd6e:6578:6f64 ("nexod") then 80 bits of SHA-256 of the key. */
	memset(out, 0, sizeof(*out));
	out->family = AF_INET6;
	out->v6.s6_addr[0] = 0xfd;
	out->v6.s6_addr[1] = 0x6e;
	out->v6.s6_addr[2] = 0x65;
	out->v6.s6_addr[3] = 0x78;
	out->v6.s6_addr[4] = 0x6f;
	out->v6.s6_addr[5] = 0x64;
	pthread_once(&sha256_once, sha256_fetch);
	if (!sha256 || EVP_Digest(key->b, sizeof(key->b), digest, &len, sha256, NULL) != 1)
		memcpy(digest, key->b, 10); /* never in practice; still unique per key */
	memcpy(&out->v6.s6_addr[6], digest, 10);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int entry_cmp(const void *a, const void *b)
{
	return nx_addr_cmp(&((const struct entry *)a)->addr, &((const struct entry *)b)->addr);
}

static struct entry *find(const struct nexd_probe *p, const struct nx_addr *addr)
{
	struct entry key = { .addr = *addr };

	return p->n ? bsearch(&key, p->v, p->n, sizeof(key), entry_cmp) : NULL;
}

static void send_probe(struct nexd_probe *p, struct entry *e, uint64_t now)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	uint8_t buf[NEXD_PROBE_MSG_LEN];
	struct nexd_probe_msg m = { NEXD_PROBE_REQUEST, 0, 0 };

	e->seq++;
	e->outstanding = true;
	e->sent_us = now_us();
	m.flags = e->ready ? NEXD_PROBE_FLAG_READY : 0;
	m.seq = e->seq;
	nexd_probe_encode(buf, &m);
	if (nx_addr_to_sockaddr(&e->addr, NEXD_PROBE_PORT, &ss, &sl) < 0)
		return;
	/* No route yet, or WireGuard has no session: it counts as a probe not answered. */
	(void)sendto(p->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&ss, sl);
}

static uint64_t answer_timeout_ms(const struct entry *e, uint64_t interval_ms)
{
	uint64_t t = (2u * (uint64_t)e->srtt_us + 4u * e->rttvar_us) / 1000u;

	if (t < ANSWER_MIN_MS)
		t = ANSWER_MIN_MS;
	return t < interval_ms ? t : interval_ms;
}

static void missed(struct entry *e, bool *changed)
{
	e->outstanding = false;
	e->r.misses++;
	e->answered_in_a_row = 0;
	if (e->r.ok && e->r.misses >= NEXD_PROBE_MISSES) {
		e->r.ok = false;
		e->r.ok_since_ms = 0;
		*changed = true;
		nx_debug(&dbg_nexd_peers, "probe: direct path to a peer failed");
	}
}

static void tick(struct nx_timer *t, void *arg)
{
	struct nexd_probe *p = arg;
	uint64_t now = nx_now_ms(), next = now + NEXD_PROBE_STABLE_MS;
	bool changed = false;

	for (size_t i = 0; i < p->n; i++) {
		struct entry *e = &p->v[i];
		uint64_t interval;

		/* A miss is known at its deadline, and the next probe goes at once. */
		if (e->outstanding && now >= e->deadline_ms) {
			missed(e, &changed);
			e->next_ms = now;
		}
		if (now >= e->next_ms) {
			send_probe(p, e, now);
			interval = !e->r.ok || e->r.misses || e->answered_in_a_row < STABLE_AFTER
					   ? NEXD_PROBE_FAST_MS
					   : NEXD_PROBE_STABLE_MS;
			e->next_ms = now + interval;
			e->deadline_ms = now + answer_timeout_ms(e, interval);
		}
		if (e->next_ms < next)
			next = e->next_ms;
		if (e->outstanding && e->deadline_ms < next)
			next = e->deadline_ms;
	}
	if (changed)
		nexd_dplane_changed(p->nexd);
	/* Sleep until the next probe or deadline is due. */
	nx_timer_arm(t, next - now < TICK_MIN_MS ? TICK_MIN_MS : next - now);
}

static void rtt_sample(struct entry *e, uint32_t rtt_us)
{
	uint32_t d;

	e->r.rtt_us = rtt_us;
	if (!e->srtt_us) {
		e->srtt_us = rtt_us;
		e->rttvar_us = rtt_us / 2;
		return;
	}
	d = e->srtt_us > rtt_us ? e->srtt_us - rtt_us : rtt_us - e->srtt_us;
	e->rttvar_us = (3 * e->rttvar_us + d) / 4;
	e->srtt_us = (7 * e->srtt_us + rtt_us) / 8;
}

static void on_readable(struct nx_fdwatch *w, int fd, unsigned what, void *arg)
{
	struct nexd_probe *p = arg;

	for (int budget = 256; budget > 0; budget--) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		uint8_t buf[64];
		struct nexd_probe_msg m;
		struct nx_addr from;
		struct entry *e;
		uint32_t ago;
		uint64_t now;
		ssize_t n =
			recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&ss, &sl);

		if (n < 0)
			return;
		if (nexd_probe_decode(buf, (size_t)n, &m) < 0 ||
		    nx_addr_from_sockaddr(&ss, &from, NULL) < 0)
			continue;
		e = find(p, &from);
		if (m.type == NEXD_PROBE_REQUEST) {
			bool ready = m.flags & NEXD_PROBE_FLAG_READY;

			now = nx_now_ms();
			/* Paths are chosen again when the peer starts wanting the direct path, not
			 * on each of its probes. */
			if (e && ready &&
			    (!e->peer_ready_at_ms || now - e->peer_ready_at_ms >= PEER_READY_MS))
				nexd_dplane_changed(p->nexd);
			if (e)
				e->peer_ready_at_ms = ready ? now : 0;
			m.type = NEXD_PROBE_REPLY;
			nexd_probe_encode(buf, &m);
			(void)sendto(fd, buf, NEXD_PROBE_MSG_LEN, MSG_DONTWAIT,
				     (struct sockaddr *)&ss, sl);
			continue;
		}
		if (!e)
			continue;
		ago = e->seq - m.seq; /* how many probes ago it was sent */
		if (ago >= LATE_WINDOW)
			continue;
		/* The latest probe answered, or an earlier one late: the path carries either
		 * way, so a slow path is slow, not failed. */
		if (ago == 0 && e->outstanding) {
			e->outstanding = false;
			rtt_sample(e, (uint32_t)(now_us() - e->sent_us));
		}
		e->r.misses = 0;
		e->answered_in_a_row++;
		e->r.ever = true;
		if (!e->r.ok) {
			e->r.ok = true;
			e->r.ok_since_ms = nx_now_ms();
			nx_debug(&dbg_nexd_peers, "probe: direct path to a peer answers (%u us)",
				 e->r.rtt_us);
			nexd_dplane_changed(p->nexd);
		}
	}
}

int nexd_probe_start(struct nexd *nexd, struct nx_err *err)
{
	struct nexd_probe *p;
	struct sockaddr_storage ss;
	struct nx_addr own;
	socklen_t sl;
	int one = 1;

	if (nexd->probe)
		return 0;
	p = calloc(1, sizeof(*p));
	if (!p)
		return nx_err_set(err, ENOMEM, "out of memory for path probes");
	p->nexd = nexd;
	nexd_probe_addr(&nexd->id.public_key, &own);
	nx_addr_to_sockaddr(&own, NEXD_PROBE_PORT, &ss, &sl);
	p->fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* Free bind: the address reaches the interface with the next reconciliation. */
	if (p->fd < 0 || setsockopt(p->fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one)) < 0 ||
	    bind(p->fd, (struct sockaddr *)&ss, sl) < 0) {
		int e = errno;

		if (p->fd >= 0)
			close(p->fd);
		free(p);
		return nx_err_set(err, e, "path probes: cannot bind UDP port %d: %s",
				  NEXD_PROBE_PORT, strerror(e));
	}
	nx_fdwatch_init(nexd->daemon->loop, &p->watch, p->fd, NX_READ, on_readable, p);
	nx_timer_init(nexd->daemon->loop, &p->tick, tick, p);
	nx_timer_arm(&p->tick, TICK_MIN_MS);
	nexd->probe = p;
	return 0;
}

void nexd_probe_stop(struct nexd *nexd)
{
	struct nexd_probe *p = nexd->probe;

	if (!p)
		return;
	nx_timer_fini(&p->tick);
	nx_fdwatch_fini(&p->watch);
	close(p->fd);
	free(p->v);
	free(p);
	nexd->probe = NULL;
}

int nexd_probe_set_peers(struct nexd *nexd, const struct nx_wgkey *keys, size_t n)
{
	struct nexd_probe *p = nexd->probe;
	struct entry *v;
	uint64_t now = nx_now_ms();

	if (!p)
		return 0;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct entry *old;

		nexd_probe_addr(&keys[i], &v[i].addr);
		old = find(p, &v[i].addr);
		if (old) {
			v[i] = *old;
			continue;
		}
		v[i].key = keys[i];
		v[i].r.probing_since_ms = now;
		/* Spread first probes over one fast interval: no burst after a listing. */
		v[i].next_ms = now + (i * 7919u) % NEXD_PROBE_FAST_MS;
	}
	if (n)
		qsort(v, n, sizeof(v[0]), entry_cmp);
	free(p->v);
	p->v = v;
	p->n = n;
	nx_timer_arm(&p->tick, TICK_MIN_MS); /* new peers: probe them soon */
	return 0;
}

bool nexd_probe_get(const struct nexd *nexd, const struct nx_wgkey *key,
		    struct nexd_probe_result *out)
{
	struct nx_addr addr;
	struct entry *e;

	if (!nexd->probe)
		return false;
	nexd_probe_addr(key, &addr);
	e = find(nexd->probe, &addr);
	if (!e)
		return false;
	*out = e->r;
	/* A peer that stopped saying so (it probes every 500 ms at the slowest) is not ready. */
	out->peer_ready = e->peer_ready_at_ms && nx_now_ms() - e->peer_ready_at_ms < PEER_READY_MS;
	return true;
}

void nexd_probe_set_ready(struct nexd *nexd, const struct nx_wgkey *key, bool ready)
{
	struct nx_addr addr;
	struct entry *e;

	if (!nexd->probe)
		return;
	nexd_probe_addr(key, &addr);
	e = find(nexd->probe, &addr);
	if (!e || e->ready == ready)
		return;
	e->ready = ready;
	e->next_ms = nx_now_ms(); /* tell the peer now */
	nx_timer_arm(&nexd->probe->tick, 0);
}
