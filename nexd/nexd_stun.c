/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * STUN Binding transactions sent from WireGuard's own UDP port without owning it.
 *
 * The port belongs to WireGuard (the kernel's socket, or wireguard-go's), so a second UDP
 * socket cannot bind it, and the answers must not be taken away from it either.  Raw sockets
 * give both: a datagram written with WireGuard's port as its source leaves exactly as
 * WireGuard's own would (the same NAT mapping), and every UDP datagram arriving on the host
 * is also copied to a raw socket, filtered in the kernel by a classic BPF program down to
 * those for WireGuard's port carrying the STUN magic cookie.  WireGuard still gets its copy
 * of each answer and drops it as an unknown message type; its own traffic is never touched.
 * Raw sockets need CAP_NET_RAW.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/stun.h"
#include "nexd/nexd.h"

#define STUN_SOFTWARE "nexd"
/* Waits after the first send, each retransmission, and the last: about 3 s in all. */
static const unsigned retransmit_ms[] = { 250, 500, 1000, 1250 };
#define N_WAITS	 (sizeof(retransmit_ms) / sizeof(retransmit_ms[0]))
/* Largest datagram read: bigger ones are truncated and then ignored. */
#define RECV_MAX 2048

struct stun_query {
	struct stun_query *next;
	struct nexd_stun *s;
	struct nx_addr server;
	uint16_t port;
	uint8_t txid[NX_STUN_TXID_LEN];
	uint8_t msg[NX_STUN_BUILD_MAX];
	size_t msg_len;
	unsigned waits; /* timer expiries so far */
	int failed;	/* a send error to report, 0 if none */
	struct nx_timer timer;
	nexd_stun_done_fn done;
	void *arg;
};

struct nexd_stun {
	struct nx_loop *loop;
	uint16_t local_port;
	int fd[2]; /* [0] IPv4, [1] IPv6; -1 when missing */
	struct nx_fdwatch watch[2];
	struct stun_query *queries;
};

static int fam_index(sa_family_t family)
{
	return family == AF_INET6 ? 1 : 0;
}

/* --- the kernel-side filter ----------------------------------------------------------------- */

/* IPv4 raw sockets see the IP header: the UDP header starts at 4 * IHL. */
static int attach_filter4(int fd, uint16_t port)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),
		BPF_STMT(BPF_LD | BPF_H | BPF_IND, 2), /* UDP destination port */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_IND, 8 + 4), /* STUN magic cookie */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NX_STUN_MAGIC_COOKIE, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

/* IPv6 raw sockets see the datagram from the UDP header on. */
static int attach_filter6(int fd, uint16_t port)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 2), /* UDP destination port */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 8 + 4), /* STUN magic cookie */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NX_STUN_MAGIC_COOKIE, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

/* --- sending -------------------------------------------------------------------------------- */

static uint32_t sum16(uint32_t sum, const uint8_t *p, size_t len)
{
	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

/* The UDP checksum over the pseudo-header (RFC 768, RFC 8200 §8.1) and the datagram. */
static uint16_t udp_checksum(const struct nx_addr *src, const struct nx_addr *dst,
			     const uint8_t *udp, size_t len)
{
	uint32_t sum = 0;
	uint8_t tail[4] = { 0, 0, 0, IPPROTO_UDP };
	uint8_t ulen[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			    (uint8_t)len };
	uint16_t c;

	if (src->family == AF_INET) {
		sum = sum16(sum, (const uint8_t *)&src->v4, 4);
		sum = sum16(sum, (const uint8_t *)&dst->v4, 4);
	} else {
		sum = sum16(sum, (const uint8_t *)&src->v6, 16);
		sum = sum16(sum, (const uint8_t *)&dst->v6, 16);
	}
	sum = sum16(sum, ulen, 4);
	sum = sum16(sum, tail, 4);
	sum = sum16(sum, udp, len);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	c = (uint16_t)~sum;
	return c ? c : 0xffff; /* 0 means "no checksum" in IPv4 and is invalid in IPv6 */
}

/* The source address the kernel will give a datagram to dst: what a connected UDP socket
 * is bound to (connecting sends nothing). */
static int source_for(const struct nx_addr *dst, uint16_t port, struct nx_addr *src)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, rc = 0;

	if (nx_addr_to_sockaddr(dst, port, &ss, &len) < 0)
		return -EAFNOSUPPORT;
	fd = socket(dst->family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		rc = -errno;
		goto out;
	}
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		rc = -errno;
		goto out;
	}
	rc = nx_addr_from_sockaddr(&ss, src, NULL);
out:
	close(fd);
	return rc;
}

static int send_query(struct stun_query *q)
{
	struct nexd_stun *s = q->s;
	uint8_t pkt[8 + NX_STUN_BUILD_MAX];
	size_t len = 8 + q->msg_len;
	struct sockaddr_storage ss;
	struct nx_addr src;
	socklen_t sslen;
	uint16_t csum;
	int fd = s->fd[fam_index(q->server.family)], rc;

	rc = source_for(&q->server, q->port, &src);
	if (rc < 0)
		return rc;
	pkt[0] = (uint8_t)(s->local_port >> 8);
	pkt[1] = (uint8_t)s->local_port;
	pkt[2] = (uint8_t)(q->port >> 8);
	pkt[3] = (uint8_t)q->port;
	pkt[4] = (uint8_t)(len >> 8);
	pkt[5] = (uint8_t)len;
	pkt[6] = pkt[7] = 0;
	memcpy(pkt + 8, q->msg, q->msg_len);
	csum = udp_checksum(&src, &q->server, pkt, len);
	pkt[6] = (uint8_t)(csum >> 8);
	pkt[7] = (uint8_t)csum;
	/* A raw socket's "port" is its protocol; 0 means the socket's own. */
	nx_addr_to_sockaddr(&q->server, 0, &ss, &sslen);
	if (sendto(fd, pkt, len, MSG_DONTWAIT, (struct sockaddr *)&ss, sslen) < 0) {
		/* A full queue is a lost datagram: the next retransmission covers it. */
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
			return 0;
		return -errno;
	}
	return 0;
}

/* --- transactions --------------------------------------------------------------------------- */

static void query_unlink(struct stun_query *q)
{
	for (struct stun_query **pp = &q->s->queries; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
}

static void query_free(struct stun_query *q)
{
	nx_timer_fini(&q->timer);
	free(q);
}

static void query_finish(struct stun_query *q, int result, const struct nx_stun_addr *mapped)
{
	nexd_stun_done_fn done = q->done;
	void *arg = q->arg;

	query_unlink(q);
	query_free(q);
	done(result, mapped ? &mapped->addr : NULL, mapped ? mapped->port : 0, arg);
}

static void query_timer(struct nx_timer *t, void *arg)
{
	struct stun_query *q = arg;
	char ep[NX_ENDPOINT_STRLEN];
	int rc;

	(void)t;
	nx_endpoint_format(&q->server, q->port, ep, sizeof(ep));
	if (q->failed) {
		nx_debug(&dbg_nexd_nat, "STUN %s: sending failed: %s", ep, strerror(-q->failed));
		query_finish(q, q->failed, NULL);
		return;
	}
	if (++q->waits >= N_WAITS) {
		nx_debug(&dbg_nexd_nat, "STUN %s: no answer", ep);
		query_finish(q, -ETIMEDOUT, NULL);
		return;
	}
	nx_debug(&dbg_nexd_nat, "STUN %s: retransmitting (%u)", ep, q->waits);
	rc = send_query(q);
	if (rc < 0) {
		q->failed = rc;
		nx_timer_arm(&q->timer, 0);
		return;
	}
	nx_timer_arm(&q->timer, retransmit_ms[q->waits]);
}

int nexd_stun_query(struct nexd_stun *s, const struct nx_addr *server, uint16_t port,
		    nexd_stun_done_fn done, void *arg, struct nx_err *err)
{
	struct stun_query *q;
	char ep[NX_ENDPOINT_STRLEN];
	int rc;

	nx_endpoint_format(server, port, ep, sizeof(ep));
	if (server->family != AF_INET && server->family != AF_INET6)
		return nx_err_set(err, EAFNOSUPPORT, "STUN server %s: not an IP address", ep);
	if (!port)
		return nx_err_set(err, EINVAL, "STUN server %s: port 0", ep);
	if (s->fd[fam_index(server->family)] < 0)
		return nx_err_set(err, EAFNOSUPPORT, "STUN server %s: no IPv%c raw socket", ep,
				  server->family == AF_INET ? '4' : '6');
	q = calloc(1, sizeof(*q));
	if (!q)
		return nx_err_set(err, ENOMEM, "STUN server %s: out of memory", ep);
	q->s = s;
	q->server = *server;
	q->port = port;
	q->done = done;
	q->arg = arg;
	rc = nx_stun_build_binding_request(q->msg, sizeof(q->msg), STUN_SOFTWARE, q->txid);
	if (rc < 0) {
		free(q);
		return nx_err_set(err, -rc, "STUN server %s: cannot build a request: %s", ep,
				  strerror(-rc));
	}
	q->msg_len = (size_t)rc;
	nx_timer_init(s->loop, &q->timer, query_timer, q);
	q->next = s->queries;
	s->queries = q;
	nx_debug(&dbg_nexd_nat, "STUN %s: Binding request from port %u", ep, s->local_port);
	rc = send_query(q);
	if (rc < 0) {
		/* Reported through done, on the loop, like every other outcome. */
		q->failed = rc;
		nx_timer_arm(&q->timer, 0);
	} else {
		nx_timer_arm(&q->timer, retransmit_ms[0]);
	}
	return 0;
}

void nexd_stun_cancel_all(struct nexd_stun *s)
{
	while (s->queries) {
		struct stun_query *q = s->queries;

		s->queries = q->next;
		query_free(q);
	}
}

/* --- receiving ------------------------------------------------------------------------------ */

static void handle_answer(struct nexd_stun *s, const struct nx_addr *from, uint16_t from_port,
			  const uint8_t *msg, size_t len)
{
	struct stun_query *q;
	struct nx_stun_addr mapped;
	struct nx_err err = { 0 };
	char ep[NX_ENDPOINT_STRLEN];
	int rc;

	nx_endpoint_format(from, from_port, ep, sizeof(ep));
	if (len < NX_STUN_HEADER_LEN)
		return;
	for (q = s->queries; q; q = q->next)
		if (memcmp(q->txid, msg + 8, NX_STUN_TXID_LEN) == 0)
			break;
	if (!q) {
		nx_debug(&dbg_nexd_nat, "STUN %s: answer to no transaction of ours, ignored", ep);
		return;
	}
	if (q->port != from_port || !nx_addr_eq(&q->server, from)) {
		nx_debug(&dbg_nexd_nat, "STUN %s: answer from another address than asked, ignored",
			 ep);
		return;
	}
	rc = nx_stun_parse_binding_response(msg, len, q->txid, &mapped, &err);
	if (rc == -EPROTO) {
		nx_debug(&dbg_nexd_nat, "STUN %s: %s", ep, err.msg);
		query_finish(q, -EPROTO, NULL);
		return;
	}
	if (rc < 0) {
		nx_debug(&dbg_nexd_nat, "STUN %s: answer ignored: %s", ep, err.msg);
		return;
	}
	if (mapped.addr.family != AF_INET && mapped.addr.family != AF_INET6) {
		nx_debug(&dbg_nexd_nat, "STUN %s: answer without a usable address, ignored", ep);
		return;
	}
	{
		char m[NX_ENDPOINT_STRLEN];

		nx_debug(&dbg_nexd_nat, "STUN %s: mapped to %s", ep,
			 nx_endpoint_format(&mapped.addr, mapped.port, m, sizeof(m)));
	}
	query_finish(q, 0, &mapped);
}

/* One IPv4 datagram, IP header included. */
static void got_datagram4(struct nexd_stun *s, const uint8_t *p, size_t n)
{
	struct nx_addr from = { .family = AF_INET };
	size_t ihl, ulen;

	if (n < 20 || (p[0] >> 4) != 4)
		return;
	ihl = (size_t)(p[0] & 0xf) * 4;
	if (ihl < 20 || n < ihl + 8 || ((p[6] & 0x1f) | p[7]) != 0 || (p[6] & 0x20))
		return; /* fragments never reach raw sockets whole; refuse any that would */
	memcpy(&from.v4, p + 12, 4);
	p += ihl;
	n -= ihl;
	ulen = (size_t)p[4] << 8 | p[5];
	if (ulen < 8 || ulen > n || ((size_t)p[2] << 8 | p[3]) != s->local_port)
		return;
	handle_answer(s, &from, (uint16_t)(p[0] << 8 | p[1]), p + 8, ulen - 8);
}

/* One IPv6 datagram from the UDP header on; the source address comes from recvfrom. */
static void got_datagram6(struct nexd_stun *s, const struct sockaddr_storage *ss, const uint8_t *p,
			  size_t n)
{
	struct nx_addr from;
	size_t ulen;

	if (nx_addr_from_sockaddr(ss, &from, NULL) < 0 || n < 8)
		return;
	ulen = (size_t)p[4] << 8 | p[5];
	if (ulen < 8 || ulen > n || ((size_t)p[2] << 8 | p[3]) != s->local_port)
		return;
	handle_answer(s, &from, (uint16_t)(p[0] << 8 | p[1]), p + 8, ulen - 8);
}

static void readable(struct nx_fdwatch *w, int fd, unsigned what, void *arg)
{
	struct nexd_stun *s = arg;
	uint8_t buf[RECV_MAX];

	(void)w;
	(void)what;
	/* A bounded batch per wake-up, so a flood cannot hold the loop. */
	for (int i = 0; i < 32; i++) {
		struct sockaddr_storage ss;
		socklen_t sslen = sizeof(ss);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&ss, &sslen);

		if (n < 0)
			return;
		if ((size_t)n > sizeof(buf))
			continue; /* oversized: not a Binding answer */
		if (fd == s->fd[0])
			got_datagram4(s, buf, (size_t)n);
		else
			got_datagram6(s, &ss, buf, (size_t)n);
	}
}

/* --- set-up --------------------------------------------------------------------------------- */

static int open_raw(struct nexd_stun *s, int family, struct nx_err *err)
{
	int i = fam_index((sa_family_t)family), fd, rc;
	char drain[64];

	fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0) {
		rc = -errno;
		if (rc == -EPERM || rc == -EACCES)
			return nx_err_set(err, EPERM,
					  "NAT discovery needs raw sockets (CAP_NET_RAW): %s",
					  strerror(-rc));
		return nx_err_set(err, -rc, "raw IPv%c UDP socket: %s",
				  family == AF_INET ? '4' : '6', strerror(-rc));
	}
	if ((family == AF_INET ? attach_filter4 : attach_filter6)(fd, s->local_port) < 0) {
		rc = -errno;
		close(fd);
		return nx_err_set(err, -rc, "raw IPv%c UDP socket: BPF filter: %s",
				  family == AF_INET ? '4' : '6', strerror(-rc));
	}
	/* What queued before the filter was attached is unfiltered: drop it. */
	while (recv(fd, drain, sizeof(drain), MSG_DONTWAIT | MSG_TRUNC) >= 0)
		;
	rc = nx_fdwatch_init(s->loop, &s->watch[i], fd, NX_READ, readable, s);
	if (rc < 0) {
		close(fd);
		return nx_err_set(err, -rc, "raw IPv%c UDP socket: cannot watch it",
				  family == AF_INET ? '4' : '6');
	}
	s->fd[i] = fd;
	return 0;
}

struct nexd_stun *nexd_stun_new(struct nx_loop *loop, uint16_t local_port, struct nx_err *err)
{
	struct nexd_stun *s;
	struct nx_err e6 = { 0 };
	int rc4, rc6;

	if (!local_port) {
		nx_err_set(err, EINVAL, "STUN: no local port");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		nx_err_set(err, ENOMEM, "STUN: out of memory");
		return NULL;
	}
	s->loop = loop;
	s->local_port = local_port;
	s->fd[0] = s->fd[1] = -1;
	rc4 = open_raw(s, AF_INET, err);
	if (rc4 == -EPERM) {
		nexd_stun_free(s);
		return NULL;
	}
	rc6 = open_raw(s, AF_INET6, &e6);
	if (rc4 < 0 && rc6 < 0) {
		nexd_stun_free(s);
		return NULL;
	}
	if (rc4 < 0)
		nx_debug(&dbg_nexd_nat, "STUN: no IPv4: %s", err ? err->msg : "");
	if (rc6 < 0)
		nx_debug(&dbg_nexd_nat, "STUN: no IPv6: %s", e6.msg);
	nx_err_clear(err);
	return s;
}

void nexd_stun_free(struct nexd_stun *s)
{
	if (!s)
		return;
	nexd_stun_cancel_all(s);
	for (int i = 0; i < 2; i++)
		if (s->fd[i] >= 0) {
			nx_fdwatch_fini(&s->watch[i]);
			close(s->fd[i]);
		}
	free(s);
}
