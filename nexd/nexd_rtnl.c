/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd's rtnetlink: how Linux is told about the tunnel interface's link, its addresses and the
 * routes nexd owns.  A peer list of thousands of devices turns into thousands of routes, so
 * route writes travel as batches: many requests in one sendmsg, every one asking for an ACK,
 * the ACKs matched back to their requests by sequence number.  The batch is sized so that
 * every ACK fits the socket's receive buffer; a lost ACK would leave a route's fate unknown.
 * Only routes of protocol NEXD_RTPROT through nexd's interface are ever read or written.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h> /* before the kernel's headers, which then defer to it */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>

#include "lib/prefix.h"
#include "nexd/nexd.h"
#include "nexd/nexd_rtnl.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* Receive buffer asked for: room for the ACKs of one batch (forced when privileged). */
#define RTNL_RCVBUF	 (8 * 1024 * 1024)
#define RTNL_SNDBUF	 (1024 * 1024)
/* What one queued ACK costs the receive buffer (skb overhead included), with margin for the
 * larger error ACKs that carry an extended-ACK message. */
#define RTNL_ACK_COST	 1536
/* Bounds of the number of requests per sendmsg. */
#define RTNL_WINDOW_MIN	 16
#define RTNL_WINDOW_MAX	 2048
/* Largest request built here (a route: header, rtmsg, three attributes). */
#define RTNL_MSG_MAX	 256
/* Datagrams per recvmmsg and the room for each (an ACK is 36 bytes, an error with its
 * extended-ACK message a few hundred). */
#define RTNL_RECV_VLEN	 64
#define RTNL_RECV_BUFLEN 2048
/* How long a reply may take before the socket is given up as lost. */
#define RTNL_TIMEOUT_S	 10
/* A dump interrupted by a concurrent change is retried this many times. */
#define RTNL_DUMP_TRIES	 5

#define ERR_PENDING INT_MIN

struct nexd_rtnl {
	struct nl_sock *sk;
	int fd;
	uint32_t port;
	size_t window;	     /* requests per sendmsg */
	size_t sndmax;	     /* bytes per sendmsg */
	uint8_t *sbuf;	     /* sndmax bytes */
	uint8_t *rbuf;	     /* RTNL_RECV_VLEN x RTNL_RECV_BUFLEN */
	uint32_t *seq_index; /* window entries: request k of a batch -> caller's index */
	int *seq_error;	     /* window entries: request k's answer, ERR_PENDING until then */
	bool broken;	     /* replies may be left unread: reopen before the next use */
};

/* Maps a libnl error code back to the errno it most likely came from. */
static int nle_to_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_SUCCESS:
		return 0;
	case NLE_NOMEM:
		return ENOMEM;
	case NLE_INTR:
		return EINTR;
	case NLE_BAD_SOCK:
		return EBADF;
	case NLE_AGAIN: /* the receive timeout of a blocking socket */
		return ETIMEDOUT;
	case NLE_EXIST:
		return EEXIST;
	case NLE_INVAL:
		return EINVAL;
	case NLE_RANGE:
		return ERANGE;
	case NLE_MSGSIZE:
		return EMSGSIZE;
	case NLE_OPNOTSUPP:
		return EOPNOTSUPP;
	case NLE_AF_NOSUPPORT:
		return EAFNOSUPPORT;
	case NLE_OBJ_NOTFOUND:
		return ENOENT;
	case NLE_NOADDR:
		return EADDRNOTAVAIL;
	case NLE_PERM:
		return EPERM;
	case NLE_NOACCESS:
		return EACCES;
	case NLE_BUSY:
		return EBUSY;
	case NLE_NODEV:
		return ENODEV;
	case NLE_DUMP_INTR:
		return EAGAIN;
	default:
		return EIO;
	}
}

static void rtnl_close(struct nexd_rtnl *nl)
{
	if (nl->sk)
		nl_socket_free(nl->sk);
	nl->sk = NULL;
	nl->fd = -1;
}

static int rtnl_open(struct nexd_rtnl *nl, struct nx_err *err)
{
	int one = 1, rc, val;
	socklen_t len;
	struct timeval tv = { .tv_sec = RTNL_TIMEOUT_S };

	nl->sk = nl_socket_alloc();
	if (!nl->sk)
		return nx_err_set(err, ENOMEM, "rtnetlink: out of memory for a socket");
	/* Every write here asks for its ACK itself; dumps end with NLMSG_DONE. */
	nl_socket_disable_auto_ack(nl->sk);
	rc = nl_connect(nl->sk, NETLINK_ROUTE);
	if (rc < 0) {
		rc = nle_to_errno(rc);
		nl_socket_free(nl->sk);
		nl->sk = NULL;
		return nx_err_set(err, rc, "rtnetlink: cannot open a socket: %s", strerror(rc));
	}
	nl->fd = nl_socket_get_fd(nl->sk);
	nl->port = nl_socket_get_local_port(nl->sk);

	/* The receive buffer must hold a whole batch of ACKs.  Without the privilege to force
	 * it past net.core.rmem_max, the batch shrinks to what the buffer holds. */
	nl_socket_set_buffer_size(nl->sk, RTNL_RCVBUF, RTNL_SNDBUF);
	val = RTNL_RCVBUF;
	(void)setsockopt(nl->fd, SOL_SOCKET, SO_RCVBUFFORCE, &val, sizeof(val));
	val = RTNL_SNDBUF;
	(void)setsockopt(nl->fd, SOL_SOCKET, SO_SNDBUFFORCE, &val, sizeof(val));
	/* Error ACKs without a copy of the request, with the kernel's reason in words. */
	(void)setsockopt(nl->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	(void)setsockopt(nl->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	/* Let the kernel filter dumps (by interface, table, protocol); filtered again here for
	 * kernels that do not. */
	(void)setsockopt(nl->fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof(one));
	(void)setsockopt(nl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	nl_socket_set_msg_buf_size(nl->sk, 32768);

	val = 0;
	len = sizeof(val);
	if (getsockopt(nl->fd, SOL_SOCKET, SO_RCVBUF, &val, &len) < 0 || val <= 0)
		val = 212992;
	nl->window = (size_t)val / RTNL_ACK_COST;
	if (nl->window < RTNL_WINDOW_MIN)
		nl->window = RTNL_WINDOW_MIN;
	if (nl->window > RTNL_WINDOW_MAX)
		nl->window = RTNL_WINDOW_MAX;

	val = 0;
	len = sizeof(val);
	if (getsockopt(nl->fd, SOL_SOCKET, SO_SNDBUF, &val, &len) < 0 || val <= 0)
		val = 212992;
	/* The kernel refuses a sendmsg larger than the send buffer minus a little. */
	nl->sndmax = (size_t)val / 2;
	if (nl->sndmax > nl->window * RTNL_MSG_MAX)
		nl->sndmax = nl->window * RTNL_MSG_MAX;
	if (nl->sndmax < RTNL_MSG_MAX)
		nl->sndmax = RTNL_MSG_MAX;

	nl->broken = false;
	nx_debug(&dbg_nexd_dataplane, "rtnetlink: port %u, %zu requests / %zu bytes per batch",
		 nl->port, nl->window, nl->sndmax);
	return 0;
}

/* A socket that may hold unread replies of an abandoned exchange is replaced. */
static int rtnl_ready(struct nexd_rtnl *nl, struct nx_err *err)
{
	if (nl->sk && !nl->broken)
		return 0;
	rtnl_close(nl);
	return rtnl_open(nl, err);
}

struct nexd_rtnl *nexd_rtnl_new(struct nx_err *err)
{
	struct nexd_rtnl *nl = calloc(1, sizeof(*nl));

	if (!nl) {
		nx_err_set(err, ENOMEM, "rtnetlink: out of memory");
		return NULL;
	}
	nl->fd = -1;
	if (rtnl_open(nl, err) < 0)
		goto fail;
	/* Sized for the largest window any later socket could have. */
	nl->sbuf = malloc(RTNL_WINDOW_MAX * RTNL_MSG_MAX);
	nl->rbuf = malloc(RTNL_RECV_VLEN * RTNL_RECV_BUFLEN);
	nl->seq_index = calloc(RTNL_WINDOW_MAX, sizeof(*nl->seq_index));
	nl->seq_error = calloc(RTNL_WINDOW_MAX, sizeof(*nl->seq_error));
	if (!nl->sbuf || !nl->rbuf || !nl->seq_index || !nl->seq_error) {
		nx_err_set(err, ENOMEM, "rtnetlink: out of memory");
		goto fail;
	}
	return nl;
fail:
	nexd_rtnl_free(nl);
	return NULL;
}

void nexd_rtnl_free(struct nexd_rtnl *nl)
{
	if (!nl)
		return;
	rtnl_close(nl);
	free(nl->sbuf);
	free(nl->rbuf);
	free(nl->seq_index);
	free(nl->seq_error);
	free(nl);
}

/*
 * The batch engine.  build() makes request i (or says why it cannot be sent: then done()
 * gets that error and nothing is sent for it); done() gets every request's answer, with the
 * kernel's extended-ACK text when there is one.
 */
struct batch {
	void *ctx;
	/* 0 and *msg, or a negative errno for a request that is not sent */
	int (*build)(void *ctx, size_t i, struct nl_msg **msg);
	void (*done)(void *ctx, size_t i, int error, const char *why);
};

/* The extended-ACK message of an error ACK, or NULL. */
static const char *ack_reason(struct nlmsghdr *h, size_t len)
{
	const struct nlmsgerr *e = NLMSG_DATA(h);
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off;

	if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return NULL;
	off = NLMSG_HDRLEN + sizeof(*e);
	if (!(h->nlmsg_flags & NLM_F_CAPPED)) {
		if (e->msg.nlmsg_len < NLMSG_HDRLEN)
			return NULL;
		off += NLMSG_ALIGN(e->msg.nlmsg_len) - NLMSG_HDRLEN;
	}
	if (h->nlmsg_len > len || off >= h->nlmsg_len)
		return NULL;
	if (nla_parse(tb, NLMSGERR_ATTR_MAX, (void *)((uint8_t *)h + off),
		      (int)(h->nlmsg_len - off), NULL) < 0)
		return NULL;
	if (!tb[NLMSGERR_ATTR_MSG] || nla_len(tb[NLMSGERR_ATTR_MSG]) < 1)
		return NULL;
	/* The kernel NUL-terminates it; refuse one that is not. */
	if (((const char *)nla_data(tb[NLMSGERR_ATTR_MSG]))[nla_len(tb[NLMSGERR_ATTR_MSG]) - 1])
		return NULL;
	return nla_data(tb[NLMSGERR_ATTR_MSG]);
}

/* Reads ACKs until all cnt requests from seq_first on are answered. */
static int batch_collect(struct nexd_rtnl *nl, const struct batch *b, uint32_t seq_first,
			 size_t cnt, struct nx_err *err)
{
	struct mmsghdr mm[RTNL_RECV_VLEN];
	struct iovec iov[RTNL_RECV_VLEN];
	struct sockaddr_nl from[RTNL_RECV_VLEN];
	size_t answered = 0;
	int got, i;

	while (answered < cnt) {
		memset(mm, 0, sizeof(mm));
		for (i = 0; i < RTNL_RECV_VLEN; i++) {
			iov[i].iov_base = nl->rbuf + (size_t)i * RTNL_RECV_BUFLEN;
			iov[i].iov_len = RTNL_RECV_BUFLEN;
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
			mm[i].msg_hdr.msg_name = &from[i];
			mm[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		/* Block for the first datagram only, then take whatever else is queued. */
		got = recvmmsg(nl->fd, mm, RTNL_RECV_VLEN, MSG_WAITFORONE, NULL);
		if (got < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			nl->broken = true;
			if (e == EAGAIN || e == EWOULDBLOCK)
				return nx_err_set(
					err, ETIMEDOUT,
					"rtnetlink: no answer from the kernel to %zu of %zu "
					"requests within %d s",
					cnt - answered, cnt, RTNL_TIMEOUT_S);
			if (e == ENOBUFS)
				return nx_err_set(err, ENOBUFS,
						  "rtnetlink: receive buffer overrun, %zu of %zu "
						  "answers lost",
						  cnt - answered, cnt);
			return nx_err_set(err, e, "rtnetlink: receive: %s", strerror(e));
		}
		for (i = 0; i < got; i++) {
			struct nlmsghdr *h = iov[i].iov_base;
			int left = (int)mm[i].msg_len;

			if (mm[i].msg_hdr.msg_namelen < sizeof(from[i]) || from[i].nl_pid != 0)
				continue; /* not from the kernel */
			if (mm[i].msg_hdr.msg_flags & MSG_TRUNC && left > RTNL_RECV_BUFLEN)
				left = RTNL_RECV_BUFLEN;
			for (; nlmsg_ok(h, left); h = nlmsg_next(h, &left)) {
				const struct nlmsgerr *e;
				uint32_t k = h->nlmsg_seq - seq_first;

				if (h->nlmsg_type != NLMSG_ERROR || k >= cnt ||
				    h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
					continue;
				if (nl->seq_error[k] != ERR_PENDING)
					continue;
				e = NLMSG_DATA(h);
				nl->seq_error[k] = e->error > 0 ? -e->error : e->error;
				answered++;
				b->done(b->ctx, nl->seq_index[k], nl->seq_error[k],
					e->error ? ack_reason(h, (size_t)left) : NULL);
			}
		}
	}
	return 0;
}

/* Runs requests 0..n-1 of b.  0, or a negative errno when the socket failed (the requests
 * not answered then get that error too). */
static int batch_run(struct nexd_rtnl *nl, const struct batch *b, size_t n, struct nx_err *err)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	size_t i = 0, k;
	int rc;

	rc = rtnl_ready(nl, err);
	if (rc < 0)
		goto fail;
	while (i < n) {
		size_t len = 0, cnt = 0;
		uint32_t seq_first = 0;
		ssize_t sent;

		while (i < n && cnt < nl->window && len + RTNL_MSG_MAX <= nl->sndmax) {
			struct nl_msg *msg = NULL;
			struct nlmsghdr *h;

			rc = b->build(b->ctx, i, &msg);
			if (rc < 0) {
				b->done(b->ctx, i, rc, NULL);
				i++;
				continue;
			}
			h = nlmsg_hdr(msg);
			if (h->nlmsg_len > RTNL_MSG_MAX) {
				nlmsg_free(msg);
				b->done(b->ctx, i, -EMSGSIZE, NULL);
				i++;
				continue;
			}
			h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
			h->nlmsg_pid = nl->port;
			/* Consecutive numbers (libnl counts up by one): the answer to request
			 * k of this batch carries seq_first + k. */
			h->nlmsg_seq = nl_socket_use_seq(nl->sk);
			if (cnt == 0)
				seq_first = h->nlmsg_seq;
			memcpy(nl->sbuf + len, h, h->nlmsg_len);
			memset(nl->sbuf + len + h->nlmsg_len, 0,
			       NLMSG_ALIGN(h->nlmsg_len) - h->nlmsg_len);
			len += NLMSG_ALIGN(h->nlmsg_len);
			nlmsg_free(msg);
			nl->seq_index[cnt] = (uint32_t)i;
			nl->seq_error[cnt] = ERR_PENDING;
			cnt++;
			i++;
		}
		if (cnt == 0)
			continue;
		do {
			sent = sendto(nl->fd, nl->sbuf, len, 0, (struct sockaddr *)&kernel,
				      sizeof(kernel));
		} while (sent < 0 && errno == EINTR);
		if (sent < 0 || (size_t)sent != len) {
			int e = sent < 0 ? errno : EIO;

			/* Nothing of this batch was taken: hand its requests back as failed. */
			for (k = 0; k < cnt; k++)
				b->done(b->ctx, nl->seq_index[k], -e, NULL);
			nl->broken = true;
			rc = nx_err_set(err, e, "rtnetlink: send of %zu requests (%zu bytes): %s",
					cnt, len, strerror(e));
			goto fail;
		}
		rc = batch_collect(nl, b, seq_first, cnt, err);
		if (rc < 0) {
			for (k = 0; k < cnt; k++)
				if (nl->seq_error[k] == ERR_PENDING)
					b->done(b->ctx, nl->seq_index[k], rc, NULL);
			goto fail;
		}
	}
	return 0;
fail:
	for (; i < n; i++)
		b->done(b->ctx, i, rc, NULL);
	return rc;
}

/* One request through the batch engine: its answer, with the kernel's reason. */
struct single {
	struct nl_msg *msg;
	int error;
	char why[160];
};

static int single_build(void *ctx, size_t i, struct nl_msg **msg)
{
	struct single *s = ctx;

	*msg = s->msg;
	s->msg = NULL; /* the engine frees it */
	return *msg ? 0 : -ENOMEM;
}

static void single_done(void *ctx, size_t i, int error, const char *why)
{
	struct single *s = ctx;

	s->error = error;
	if (why)
		snprintf(s->why, sizeof(s->why), " (%s)", why);
}

/* Sends msg (taking it) and waits for its ACK: 0 or the kernel's negative errno, with *why
 * the kernel's reason or "". */
static int rtnl_talk(struct nexd_rtnl *nl, struct nl_msg *msg, char *why, size_t whysz,
		     struct nx_err *err)
{
	struct single s = { .msg = msg };
	struct batch b = { .ctx = &s, .build = single_build, .done = single_done };
	int rc;

	rc = batch_run(nl, &b, 1, err);
	if (s.msg)
		nlmsg_free(s.msg);
	snprintf(why, whysz, "%s", s.why);
	return rc < 0 ? rc : s.error;
}

/*
 * Dumps: a request, then every reply through cb until NLMSG_DONE.  Replies to anything else
 * (a stale answer) are skipped by sequence number.
 */
struct dump {
	uint32_t seq;
	bool done; /* NLMSG_DONE or an error ACK seen: nothing more will come */
	int error; /* the kernel's error for the dump, or one of the callback's own */
	char why[160];
	int (*valid)(struct nl_msg *msg, void *arg);
	void *arg;
};

static int dump_seq_check(struct nl_msg *msg, void *arg)
{
	struct dump *d = arg;

	return nlmsg_hdr(msg)->nlmsg_seq == d->seq ? NL_OK : NL_SKIP;
}

static int dump_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	struct dump *d = arg;

	d->error = e->error > 0 ? -e->error : e->error;
	d->done = true;
	return NL_STOP;
}

static int dump_finish(struct nl_msg *msg, void *arg)
{
	struct dump *d = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);

	d->done = true;
	/* NLMSG_DONE carries the dump's own error, if any. */
	if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
		int e = *(int *)nlmsg_data(h);

		if (e < 0 && d->error == 0)
			d->error = e;
	}
	return NL_STOP;
}

/* 0, or a negative errno (d->error when the kernel or the callback refused). */
static int rtnl_dump(struct nexd_rtnl *nl, struct nl_msg *req, struct dump *d, struct nx_err *err)
{
	struct nl_cb *cb = NULL, *orig;
	int rc;

	rc = rtnl_ready(nl, err);
	if (rc < 0)
		goto out;
	orig = nl_socket_get_cb(nl->sk); /* a reference */
	cb = orig ? nl_cb_clone(orig) : NULL;
	if (orig)
		nl_cb_put(orig);
	if (!cb) {
		rc = nx_err_set(err, ENOMEM, "rtnetlink: out of memory");
		goto out;
	}
	d->error = 0;
	d->done = false;
	nl_cb_set(cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, dump_seq_check, d);
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, d->valid, d->arg);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, dump_finish, d);
	nl_cb_err(cb, NL_CB_CUSTOM, dump_error, d);
	rc = nl_send_auto(nl->sk, req);
	if (rc < 0) {
		rc = -nle_to_errno(rc);
		nl->broken = true;
		nx_err_set(err, -rc, "rtnetlink: dump request: %s", strerror(-rc));
		goto out;
	}
	d->seq = nlmsg_hdr(req)->nlmsg_seq;
	rc = nl_recvmsgs(nl->sk, cb);
	/* Stopped before the end (by the callback, or a failure): the rest of the dump would
	 * still arrive, so this socket is done with. */
	if (!d->done)
		nl->broken = true;
	if (d->error < 0) {
		rc = d->error;
	} else if (rc < 0) {
		rc = -nle_to_errno(rc);
		if (rc == -EAGAIN) /* interrupted dump: the caller retries */
			goto out;
		nx_err_set(err, -rc, "rtnetlink: dump: %s", strerror(-rc));
	}
out:
	nl_cb_put(cb);
	nlmsg_free(req);
	return rc;
}

static int addr_len(sa_family_t family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

static const char *family_name(sa_family_t family)
{
	return family == AF_INET ? "IPv4" : "IPv6";
}

/* Copies an address attribute of the expected length into a. */
static bool attr_addr(const struct nlattr *nla, sa_family_t family, struct nx_addr *a)
{
	int alen = addr_len(family);

	if (!nla || alen == 0 || nla_len(nla) != alen)
		return false;
	memset(a, 0, sizeof(*a));
	a->family = family;
	memcpy(family == AF_INET ? (void *)&a->v4 : (void *)&a->v6, nla_data(nla), (size_t)alen);
	return true;
}

static bool attr_u32(const struct nlattr *nla, uint32_t *v)
{
	if (!nla || nla_len(nla) < (int)sizeof(uint32_t))
		return false;
	*v = nla_get_u32(nla);
	return true;
}

/* --- links ------------------------------------------------------------------------------- */

int nexd_rtnl_link_index(struct nexd_rtnl *nl, const char *ifname)
{
	struct rtnl_link *link = NULL;
	size_t len = ifname ? strnlen(ifname, IFNAMSIZ) : 0;
	int rc;

	if (len == 0 || len >= IFNAMSIZ)
		return -EINVAL;
	rc = rtnl_ready(nl, NULL);
	if (rc < 0)
		return rc;
	rc = rtnl_link_get_kernel(nl->sk, 0, ifname, &link);
	if (rc < 0) {
		rc = nle_to_errno(rc);
		if (rc == ENOENT || rc == ENODEV)
			return 0;
		nl->broken = true;
		return -rc;
	}
	rc = rtnl_link_get_ifindex(link);
	rtnl_link_put(link);
	return rc > 0 ? rc : -EIO;
}

int nexd_rtnl_link_up(struct nexd_rtnl *nl, int ifindex, unsigned mtu, struct nx_err *err)
{
	struct rtnl_link *orig = NULL, *change = NULL;
	struct nl_msg *msg = NULL;
	char why[160] = "";
	int rc;

	if (ifindex <= 0)
		return nx_err_set(err, EINVAL, "link up: invalid interface index %d", ifindex);
	if (mtu > INT_MAX)
		return nx_err_set(err, EINVAL, "link up: MTU %u out of range", mtu);
	orig = rtnl_link_alloc();
	change = rtnl_link_alloc();
	if (!orig || !change) {
		rc = nx_err_set(err, ENOMEM, "link up: out of memory");
		goto out;
	}
	rtnl_link_set_ifindex(orig, ifindex);
	rtnl_link_set_flags(change, IFF_UP);
	if (mtu)
		rtnl_link_set_mtu(change, mtu);
	rc = rtnl_link_build_change_request(orig, change, 0, &msg);
	if (rc < 0) {
		rc = nx_err_set(err, nle_to_errno(rc), "link up: cannot build the request: %s",
				nl_geterror(rc));
		goto out;
	}
	rc = rtnl_talk(nl, msg, why, sizeof(why), err);
	if (rc < 0 && !nl->broken) {
		if (mtu)
			nx_err_set(err, -rc, "link up: interface %d, MTU %u: %s%s", ifindex, mtu,
				   strerror(-rc), why);
		else
			nx_err_set(err, -rc, "link up: interface %d: %s%s", ifindex, strerror(-rc),
				   why);
	}
	if (rc == 0)
		nx_debug(&dbg_nexd_dataplane, "link %d up, MTU %u", ifindex, mtu);
out:
	if (orig)
		rtnl_link_put(orig);
	if (change)
		rtnl_link_put(change);
	return rc;
}

int nexd_rtnl_link_del(struct nexd_rtnl *nl, int ifindex, struct nx_err *err)
{
	struct rtnl_link *link;
	struct nl_msg *msg = NULL;
	char why[160] = "";
	int rc;

	if (ifindex <= 0)
		return nx_err_set(err, EINVAL, "link delete: invalid interface index %d", ifindex);
	link = rtnl_link_alloc();
	if (!link)
		return nx_err_set(err, ENOMEM, "link delete: out of memory");
	rtnl_link_set_ifindex(link, ifindex);
	rc = rtnl_link_build_delete_request(link, &msg);
	rtnl_link_put(link);
	if (rc < 0)
		return nx_err_set(err, nle_to_errno(rc),
				  "link delete: cannot build the request: %s", nl_geterror(rc));
	rc = rtnl_talk(nl, msg, why, sizeof(why), err);
	if (rc < 0 && !nl->broken)
		nx_err_set(err, -rc, "link delete: interface %d: %s%s", ifindex, strerror(-rc),
			   why);
	if (rc == 0)
		nx_debug(&dbg_nexd_dataplane, "link %d deleted", ifindex);
	return rc;
}

/* --- addresses --------------------------------------------------------------------------- */

struct addr_entry {
	struct nx_addr local;	/* IFA_LOCAL, or IFA_ADDRESS when there is none */
	struct nx_addr address; /* IFA_ADDRESS (the peer of a point-to-point address) */
	bool has_address;
	uint8_t prefixlen;
	uint8_t scope;
};

struct addr_list {
	int ifindex;
	struct addr_entry *v;
	size_t n, cap;
	int error;
};

static int addr_dump_cb(struct nl_msg *msg, void *arg)
{
	struct addr_list *l = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[IFA_MAX + 1];
	struct ifaddrmsg *ifa;
	struct addr_entry e = { 0 };

	if (h->nlmsg_type != RTM_NEWADDR || !nlmsg_valid_hdr(h, sizeof(*ifa)))
		return NL_SKIP;
	ifa = nlmsg_data(h);
	if ((int)ifa->ifa_index != l->ifindex ||
	    (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6))
		return NL_SKIP;
	if (nlmsg_parse(h, sizeof(*ifa), tb, IFA_MAX, NULL) < 0)
		return NL_SKIP;
	e.has_address = attr_addr(tb[IFA_ADDRESS], ifa->ifa_family, &e.address);
	if (!attr_addr(tb[IFA_LOCAL], ifa->ifa_family, &e.local)) {
		if (!e.has_address)
			return NL_SKIP;
		e.local = e.address;
	}
	e.prefixlen = ifa->ifa_prefixlen;
	e.scope = ifa->ifa_scope;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct addr_entry *v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			l->error = -ENOMEM;
			return NL_STOP;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = e;
	return NL_OK;
}

static int addr_list_get(struct nexd_rtnl *nl, struct addr_list *l, struct nx_err *err)
{
	struct ifaddrmsg ifa = { .ifa_family = AF_UNSPEC, .ifa_index = (uint32_t)l->ifindex };
	int rc = -EAGAIN, tries;

	for (tries = 0; tries < RTNL_DUMP_TRIES && rc == -EAGAIN; tries++) {
		struct dump d = { .valid = addr_dump_cb, .arg = l };
		struct nl_msg *req = nlmsg_alloc_simple(RTM_GETADDR, NLM_F_DUMP);

		l->n = 0;
		l->error = 0;
		if (!req || nlmsg_append(req, &ifa, sizeof(ifa), NLMSG_ALIGNTO) < 0) {
			nlmsg_free(req);
			return nx_err_set(err, ENOMEM, "address dump: out of memory");
		}
		rc = rtnl_dump(nl, req, &d, err);
		if (l->error < 0)
			return nx_err_set(err, -l->error, "address dump: out of memory");
	}
	if (rc < 0)
		return nx_err_set(err, -rc, "address dump of interface %d: %s", l->ifindex,
				  strerror(-rc));
	return 0;
}

static bool is_ipv6_link_local(const struct nx_addr *a)
{
	return a->family == AF_INET6 && a->v6.s6_addr[0] == 0xfe &&
	       (a->v6.s6_addr[1] & 0xc0) == 0x80;
}

static int addr_write(struct nexd_rtnl *nl, int ifindex, bool del, const struct addr_entry *e,
		      struct nx_err *err)
{
	struct ifaddrmsg ifa = {
		.ifa_family = e->local.family,
		.ifa_prefixlen = e->prefixlen,
		.ifa_scope = RT_SCOPE_UNIVERSE,
		.ifa_index = (uint32_t)ifindex,
	};
	int alen = addr_len(e->local.family);
	const void *local = e->local.family == AF_INET ? (const void *)&e->local.v4
						       : (const void *)&e->local.v6;
	const void *address = e->address.family == AF_INET ? (const void *)&e->address.v4
							   : (const void *)&e->address.v6;
	char buf[NX_ADDR_STRLEN], why[160] = "";
	struct nl_msg *msg;
	int rc;

	if (!del && e->local.family == AF_INET6)
		ifa.ifa_flags = IFA_F_NODAD; /* usable at once */
	if (del)
		ifa.ifa_scope = e->scope;
	msg = nlmsg_alloc_simple(del ? RTM_DELADDR : RTM_NEWADDR,
				 del ? 0 : NLM_F_CREATE | NLM_F_REPLACE);
	if (!msg || nlmsg_append(msg, &ifa, sizeof(ifa), NLMSG_ALIGNTO) < 0 ||
	    nla_put(msg, IFA_LOCAL, alen, local) < 0 ||
	    nla_put(msg, IFA_ADDRESS, alen, e->has_address ? address : local) < 0 ||
	    (!del && nla_put_u32(msg, IFA_FLAGS, ifa.ifa_flags) < 0)) {
		nlmsg_free(msg);
		return nx_err_set(err, ENOMEM, "address %s: out of memory", del ? "delete" : "add");
	}
	rc = rtnl_talk(nl, msg, why, sizeof(why), err);
	if (rc < 0 && !nl->broken)
		nx_err_set(err, -rc, "%s address %s/%u on interface %d: %s%s",
			   del ? "delete" : "add", nx_addr_format(&e->local, buf, sizeof(buf)),
			   e->prefixlen, ifindex, strerror(-rc), why);
	if (rc == 0)
		nx_debug(&dbg_nexd_dataplane, "%s address %s/%u on interface %d",
			 del ? "deleted" : "added", nx_addr_format(&e->local, buf, sizeof(buf)),
			 e->prefixlen, ifindex);
	return rc;
}

int nexd_rtnl_addr_sync(struct nexd_rtnl *nl, int ifindex, const struct nx_prefix *addrs, size_t n,
			struct nx_err *err)
{
	struct addr_list l = { .ifindex = ifindex };
	bool *present = NULL;
	char buf[NX_PREFIX_STRLEN];
	size_t i, j;
	int rc;

	if (ifindex <= 0)
		return nx_err_set(err, EINVAL, "address sync: invalid interface index %d", ifindex);
	for (i = 0; i < n; i++) {
		if (addr_len(addrs[i].addr.family) == 0)
			return nx_err_set(err, EAFNOSUPPORT,
					  "address sync: address %zu is neither IPv4 nor IPv6", i);
		if (!nx_prefix_is_host(&addrs[i]))
			return nx_err_set(err, EINVAL,
					  "address sync: \"%s\" is not a host prefix (/32 or /128)",
					  nx_prefix_format(&addrs[i], buf, sizeof(buf)));
	}
	present = calloc(n ? n : 1, sizeof(*present));
	if (!present)
		return nx_err_set(err, ENOMEM, "address sync: out of memory");
	rc = addr_list_get(nl, &l, err);
	if (rc < 0)
		goto out;

	/* Remove first: an address present with another length must go before it can come
	 * back as a host prefix. */
	for (j = 0; j < l.n; j++) {
		const struct addr_entry *e = &l.v[j];
		bool wanted = false;

		if (is_ipv6_link_local(&e->local))
			continue;
		for (i = 0; i < n; i++) {
			if (nx_addr_eq(&e->local, &addrs[i].addr) && e->prefixlen == addrs[i].len &&
			    (!e->has_address || nx_addr_eq(&e->address, &e->local))) {
				wanted = true;
				present[i] = true;
			}
		}
		if (wanted || e->scope != RT_SCOPE_UNIVERSE)
			continue;
		rc = addr_write(nl, ifindex, true, e, err);
		if (rc == -EADDRNOTAVAIL || rc == -ENOENT || rc == -ESRCH)
			rc = 0; /* gone already */
		if (rc < 0)
			goto out;
	}
	for (i = 0; i < n; i++) {
		struct addr_entry e = { .local = addrs[i].addr, .prefixlen = addrs[i].len };

		if (present[i])
			continue;
		/* The same address twice in the list is added once. */
		for (j = 0; j < i; j++)
			if (nx_addr_eq(&addrs[j].addr, &addrs[i].addr))
				break;
		if (j < i)
			continue;
		rc = addr_write(nl, ifindex, false, &e, err);
		if (rc < 0)
			goto out;
	}
	rc = 0;
out:
	free(l.v);
	free(present);
	return rc;
}

/* --- routes ------------------------------------------------------------------------------ */

struct route_list {
	int ifindex;
	struct nx_prefix *v;
	size_t n, cap;
	int error;
};

static int route_dump_cb(struct nl_msg *msg, void *arg)
{
	struct route_list *l = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[RTA_MAX + 1];
	struct rtmsg *rtm;
	struct nx_prefix p = { 0 };
	uint32_t table, oif;

	if (h->nlmsg_type != RTM_NEWROUTE || !nlmsg_valid_hdr(h, sizeof(*rtm)))
		return NL_SKIP;
	rtm = nlmsg_data(h);
	if (rtm->rtm_protocol != NEXD_RTPROT || rtm->rtm_type != RTN_UNICAST ||
	    (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6) ||
	    rtm->rtm_flags & RTM_F_CLONED)
		return NL_SKIP;
	if (nlmsg_parse(h, sizeof(*rtm), tb, RTA_MAX, NULL) < 0)
		return NL_SKIP;
	if (!attr_u32(tb[RTA_TABLE], &table))
		table = rtm->rtm_table;
	if (table != RT_TABLE_MAIN || !attr_u32(tb[RTA_OIF], &oif) || (int)oif != l->ifindex)
		return NL_SKIP;
	if (rtm->rtm_dst_len > (rtm->rtm_family == AF_INET ? 32 : 128))
		return NL_SKIP;
	if (tb[RTA_DST]) {
		if (!attr_addr(tb[RTA_DST], rtm->rtm_family, &p.addr))
			return NL_SKIP;
	} else {
		p.addr.family = rtm->rtm_family; /* the default route */
	}
	p.len = rtm->rtm_dst_len;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct nx_prefix *v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			l->error = -ENOMEM;
			return NL_STOP;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = p;
	return NL_OK;
}

static int route_dump_family(struct nexd_rtnl *nl, struct route_list *l, sa_family_t family,
			     struct nx_err *err)
{
	struct rtmsg rtm = {
		.rtm_family = family,
		.rtm_table = RT_TABLE_MAIN,
		.rtm_protocol = NEXD_RTPROT,
		.rtm_type = RTN_UNICAST,
	};
	size_t start = l->n;
	int rc = -EAGAIN, tries;

	for (tries = 0; tries < RTNL_DUMP_TRIES && rc == -EAGAIN; tries++) {
		struct dump d = { .valid = route_dump_cb, .arg = l };
		struct nl_msg *req = nlmsg_alloc_simple(RTM_GETROUTE, NLM_F_DUMP);

		l->n = start;
		l->error = 0;
		if (!req || nlmsg_append(req, &rtm, sizeof(rtm), NLMSG_ALIGNTO) < 0 ||
		    nla_put_u32(req, RTA_TABLE, RT_TABLE_MAIN) < 0 ||
		    nla_put_u32(req, RTA_OIF, (uint32_t)l->ifindex) < 0) {
			nlmsg_free(req);
			return nx_err_set(err, ENOMEM, "route dump: out of memory");
		}
		rc = rtnl_dump(nl, req, &d, err);
		if (l->error < 0)
			return nx_err_set(err, -l->error, "route dump: out of memory");
	}
	/* No such table, or the family is not there at all (IPv6 disabled): no routes. */
	if (rc == -ENOENT || rc == -EAFNOSUPPORT) {
		l->n = start;
		return 0;
	}
	if (rc < 0)
		return nx_err_set(err, -rc, "%s route dump of interface %d: %s",
				  family_name(family), l->ifindex, strerror(-rc));
	return 0;
}

int nexd_rtnl_route_dump(struct nexd_rtnl *nl, int ifindex, struct nx_prefix **out, size_t *n,
			 struct nx_err *err)
{
	struct route_list l = { .ifindex = ifindex };
	int rc;

	*out = NULL;
	*n = 0;
	if (ifindex <= 0)
		return nx_err_set(err, EINVAL, "route dump: invalid interface index %d", ifindex);
	rc = route_dump_family(nl, &l, AF_INET, err);
	if (rc == 0)
		rc = route_dump_family(nl, &l, AF_INET6, err);
	if (rc < 0) {
		free(l.v);
		return rc;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}

struct route_batch {
	int ifindex;
	struct nexd_route_op *ops;
	size_t failed;
	size_t first_failed; /* index of the first failure, n when none */
	char why[160];
};

static int route_build(void *ctx, size_t i, struct nl_msg **out)
{
	struct route_batch *rb = ctx;
	const struct nexd_route_op *op = &rb->ops[i];
	sa_family_t family = op->prefix.addr.family;
	int alen = addr_len(family);
	struct rtmsg rtm = {
		.rtm_family = family,
		.rtm_dst_len = op->prefix.len,
		.rtm_table = RT_TABLE_MAIN,
		.rtm_protocol = NEXD_RTPROT,
		.rtm_scope = op->del ? RT_SCOPE_NOWHERE : RT_SCOPE_LINK,
		.rtm_type = RTN_UNICAST,
	};
	struct nl_msg *msg;

	if (alen == 0)
		return -EAFNOSUPPORT;
	if (op->prefix.len > alen * 8)
		return -EINVAL;
	msg = nlmsg_alloc_simple(op->del ? RTM_DELROUTE : RTM_NEWROUTE,
				 op->del ? 0 : NLM_F_CREATE | NLM_F_REPLACE);
	if (!msg)
		return -ENOMEM;
	if (nlmsg_append(msg, &rtm, sizeof(rtm), NLMSG_ALIGNTO) < 0 ||
	    nla_put(msg, RTA_DST, alen,
		    family == AF_INET ? (const void *)&op->prefix.addr.v4
				      : (const void *)&op->prefix.addr.v6) < 0 ||
	    nla_put_u32(msg, RTA_OIF, (uint32_t)rb->ifindex) < 0) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	*out = msg;
	return 0;
}

static void route_done(void *ctx, size_t i, int error, const char *why)
{
	struct route_batch *rb = ctx;
	struct nexd_route_op *op = &rb->ops[i];

	/* Deleting what is already gone is what was wanted. */
	if (op->del && (error == -ESRCH || error == -ENOENT))
		error = 0;
	op->error = error;
	if (error == 0)
		return;
	/* Answers come in any order (refusals before sending first): keep the lowest index. */
	rb->failed++;
	if (i < rb->first_failed) {
		rb->first_failed = i;
		snprintf(rb->why, sizeof(rb->why), why ? " (%s)" : "%s", why ? why : "");
	}
}

int nexd_rtnl_route_batch(struct nexd_rtnl *nl, int ifindex, struct nexd_route_op *ops, size_t n,
			  struct nx_err *err)
{
	struct route_batch rb = { .ifindex = ifindex, .ops = ops, .first_failed = n };
	struct batch b = { .ctx = &rb, .build = route_build, .done = route_done };
	char buf[NX_PREFIX_STRLEN];
	size_t i;
	int rc;

	if (ifindex <= 0)
		return nx_err_set(err, EINVAL, "route batch: invalid interface index %d", ifindex);
	for (i = 0; i < n; i++)
		ops[i].error = 0;
	if (n == 0)
		return 0;
	rc = batch_run(nl, &b, n, err);
	if (rc < 0)
		return rc;
	if (rb.failed) {
		const struct nexd_route_op *op = &ops[rb.first_failed];

		nx_err_set(err, -op->error,
			   "%zu of %zu route writes failed; first: %s %s dev %d: %s%s", rb.failed,
			   n, op->del ? "delete" : "add",
			   nx_prefix_format(&op->prefix, buf, sizeof(buf)), ifindex,
			   strerror(-op->error), rb.why);
		nx_debug(&dbg_nexd_dataplane, "route batch: %s", err ? err->msg : "failures");
	} else {
		nx_debug(&dbg_nexd_dataplane, "route batch: %zu writes through interface %d", n,
			 ifindex);
	}
	return (int)(rb.failed > INT_MAX ? INT_MAX : rb.failed);
}

/* --- forwarding -------------------------------------------------------------------------- */

static int write_sysctl(const char *path, bool optional, struct nx_err *err)
{
	int fd, e;
	ssize_t w;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		if (optional && e == ENOENT)
			return 0;
		return nx_err_set(err, e, "enable forwarding: %s: %s", path, strerror(e));
	}
	do {
		w = write(fd, "1\n", 2);
	} while (w < 0 && errno == EINTR);
	e = w < 0 ? errno : w != 2 ? EIO : 0;
	if (close(fd) < 0 && e == 0)
		e = errno;
	if (e)
		return nx_err_set(err, e, "enable forwarding: %s: %s", path, strerror(e));
	return 0;
}

int nexd_rtnl_enable_forwarding(struct nx_err *err)
{
	int rc;

	rc = write_sysctl("/proc/sys/net/ipv4/ip_forward", false, err);
	if (rc < 0)
		return rc;
	/* A kernel booted without IPv6 has no such file: there is nothing to forward. */
	rc = write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", true, err);
	if (rc < 0)
		return rc;
	nx_debug(&dbg_nexd_dataplane, "IPv4 and IPv6 forwarding on");
	return 0;
}
