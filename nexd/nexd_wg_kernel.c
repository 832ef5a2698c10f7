/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd's kernel WireGuard backend: the interface is a kernel "wireguard" link, configured
 * over the generic netlink family "wireguard".  Reading back is a dump that may span many
 * messages (one peer's allowed IPs can continue in the next one); writing a large peer list
 * is split over as many messages as it takes, each acknowledged before the next is sent, so
 * a device of thousands of peers is configured without any message outgrowing the kernel's
 * limits.
 */
#include "config.h"

#include <errno.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <netlink/attr.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include "lib/strutil.h"
#include "nexd/nexd.h"
#include "nexd/nexd_wg.h"

/* The size of each SET_DEVICE message: well below any socket buffer, and large enough that
 * a few hundred allowed IPs travel in one. */
#define WGK_MSG_SIZE 8192

struct wgk {
	struct nl_sock *genl;
	int family;
};

/* --- netlink plumbing ------------------------------------------------------------------- */

/* One request and every message of its reply, up to the ACK, the error or NLMSG_DONE. */
struct wgk_txn {
	int (*parse)(struct nl_msg *msg, void *arg);
	void *arg;
	int err; /* the first error: the kernel's or the parser's, negative errno */
	bool kernel_err;
	bool done;
	bool intr; /* the dump was interrupted by a change: its result is inconsistent */
};

static int wgk_txn_valid(struct nl_msg *msg, void *arg)
{
	struct wgk_txn *t = arg;
	int rc;

	/* Read on after a parser error: the rest of a dump must be drained from the socket. */
	if (t->parse && !t->err) {
		rc = t->parse(msg, t->arg);
		if (rc < 0)
			t->err = rc;
	}
	return NL_OK;
}

static int wgk_txn_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct wgk_txn *t = arg;

	(void)nla;
	if (!t->err) {
		t->err = e->error < 0 ? e->error : -EPROTO;
		t->kernel_err = true;
	}
	t->done = true;
	return NL_STOP;
}

static int wgk_txn_done(struct nl_msg *msg, void *arg)
{
	struct wgk_txn *t = arg;

	(void)msg;
	t->done = true;
	return NL_STOP;
}

static int wgk_txn_intr(struct nl_msg *msg, void *arg)
{
	struct wgk_txn *t = arg;

	(void)msg;
	t->intr = true;
	return NL_OK;
}

/* Sends msg (not freed) and reads the reply; parse is called for every data message.  0 or a
 * negative errno, with err naming what was asked (what) and why it failed. */
static int wgk_transact(struct nl_sock *sk, struct nl_msg *msg,
			int (*parse)(struct nl_msg *msg, void *arg), void *arg, const char *what,
			struct nx_err *err)
{
	struct wgk_txn t = { .parse = parse, .arg = arg };
	struct nl_cb *cb;
	int rc;

	nx_err_clear(err);
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!cb)
		return nx_err_set(err, ENOMEM, "%s: out of memory", what);
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, wgk_txn_valid, &t);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, wgk_txn_done, &t);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, wgk_txn_done, &t);
	nl_cb_set(cb, NL_CB_DUMP_INTR, NL_CB_CUSTOM, wgk_txn_intr, &t);
	nl_cb_err(cb, NL_CB_CUSTOM, wgk_txn_error, &t);

	rc = nl_send_auto(sk, msg);
	if (rc < 0) {
		rc = nx_err_set(err, EIO, "%s: netlink send: %s", what, nl_geterror(rc));
		goto out;
	}
	/* Up to the end of the reply even after a parser error, so that nothing of it is left
	 * for the next request to trip over. */
	while (!t.done) {
		rc = nl_recvmsgs(sk, cb);
		if (rc < 0 && !t.done) {
			if (t.err)
				break;
			rc = nx_err_set(err, EIO, "%s: netlink receive: %s", what, nl_geterror(rc));
			goto out;
		}
	}
	if (t.err) {
		/* A parser's error may carry its own message already. */
		rc = t.err;
		if (t.kernel_err)
			nx_err_set(err, -rc, "%s: %s", what, strerror(-rc));
		else if (err && !err->msg[0])
			nx_err_set(err, -rc, "%s: malformed reply from the kernel", what);
		goto out;
	}
	rc = t.intr ? -EAGAIN : 0;
out:
	nl_cb_put(cb);
	return rc;
}

static struct nl_sock *wgk_socket(int protocol, struct nx_err *err)
{
	struct nl_sock *sk;
	int rc;

	sk = nl_socket_alloc();
	if (!sk) {
		nx_err_set(err, ENOMEM, "netlink socket: out of memory");
		return NULL;
	}
	rc = protocol == NETLINK_GENERIC ? genl_connect(sk) : nl_connect(sk, protocol);
	if (rc < 0) {
		nx_err_set(err, EIO, "netlink socket: %s", nl_geterror(rc));
		nl_socket_free(sk);
		return NULL;
	}
	/* Dump messages can be larger than a page: size each read by peeking first. */
	nl_socket_enable_msg_peek(sk);
	return sk;
}

/* --- the link (rtnetlink) ----------------------------------------------------------------- */

struct wgk_link_info {
	bool found;
	char kind[32];
};

static int wgk_parse_link(struct nl_msg *msg, void *arg)
{
	struct wgk_link_info *info = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct nlattr *tb[IFLA_MAX + 1], *li[IFLA_INFO_MAX + 1];

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return 0;
	if (nlmsg_parse(nlh, sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL) < 0)
		return -EPROTO;
	info->found = true;
	if (tb[IFLA_LINKINFO] &&
	    nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL) == 0 && li[IFLA_INFO_KIND])
		nla_strlcpy(info->kind, li[IFLA_INFO_KIND], sizeof(info->kind));
	return 0;
}

/* RTM_NEWLINK, RTM_GETLINK or RTM_DELLINK for the link named ifname. */
static struct nl_msg *wgk_link_msg(int type, int flags, const char *ifname, const char *kind)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct nl_msg *msg;
	struct nlattr *linkinfo;

	msg = nlmsg_alloc_simple(type, flags);
	if (!msg)
		return NULL;
	if (nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
	    nla_put_string(msg, IFLA_IFNAME, ifname) < 0)
		goto fail;
	if (kind) {
		linkinfo = nla_nest_start(msg, IFLA_LINKINFO);
		if (!linkinfo || nla_put_string(msg, IFLA_INFO_KIND, kind) < 0)
			goto fail;
		nla_nest_end(msg, linkinfo);
	}
	return msg;
fail:
	nlmsg_free(msg);
	return NULL;
}

static int wgk_link_lookup(struct nl_sock *rt, const char *ifname, struct wgk_link_info *info,
			   struct nx_err *err)
{
	char what[64];
	struct nl_msg *msg;
	int rc;

	memset(info, 0, sizeof(*info));
	msg = wgk_link_msg(RTM_GETLINK, 0, ifname, NULL);
	if (!msg)
		return nx_err_set(err, ENOMEM, "%s: out of memory", ifname);
	snprintf(what, sizeof(what), "looking up %s", ifname);
	rc = wgk_transact(rt, msg, wgk_parse_link, info, what, err);
	nlmsg_free(msg);
	if (rc == -ENODEV) {
		nx_err_clear(err);
		return 0;
	}
	return rc;
}

static int wgk_link_add(struct nl_sock *rt, const char *ifname, struct nx_err *err)
{
	char what[64];
	struct nl_msg *msg;
	int rc;

	msg = wgk_link_msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifname, "wireguard");
	if (!msg)
		return nx_err_set(err, ENOMEM, "%s: out of memory", ifname);
	snprintf(what, sizeof(what), "creating wireguard interface %s", ifname);
	rc = wgk_transact(rt, msg, NULL, NULL, what, err);
	nlmsg_free(msg);
	if (rc == -EOPNOTSUPP)
		nx_err_set(err, EOPNOTSUPP, "%s: the kernel has no WireGuard", what);
	return rc;
}

static int wgk_link_del(struct nl_sock *rt, const char *ifname, struct nx_err *err)
{
	char what[64];
	struct nl_msg *msg;
	int rc;

	msg = wgk_link_msg(RTM_DELLINK, 0, ifname, NULL);
	if (!msg)
		return nx_err_set(err, ENOMEM, "%s: out of memory", ifname);
	snprintf(what, sizeof(what), "deleting %s", ifname);
	rc = wgk_transact(rt, msg, NULL, NULL, what, err);
	nlmsg_free(msg);
	return rc;
}

/* --- reading the device (WG_CMD_GET_DEVICE dump) ------------------------------------------ */

static bool wgk_attr_len_is(const struct nlattr *a, int len)
{
	return nla_len(a) == len;
}

static int wgk_parse_allowed_ip(struct nexd_wg_peer *peer, struct nlattr *attr, struct nx_err *err)
{
	struct nlattr *tb[WGALLOWEDIP_A_MAX + 1];
	struct nx_prefix p = { 0 };
	uint16_t family;
	uint8_t cidr;
	int alen;

	if (nla_parse_nested(tb, WGALLOWEDIP_A_MAX, attr, NULL) < 0 || !tb[WGALLOWEDIP_A_FAMILY] ||
	    !tb[WGALLOWEDIP_A_IPADDR] || !tb[WGALLOWEDIP_A_CIDR_MASK] ||
	    !wgk_attr_len_is(tb[WGALLOWEDIP_A_FAMILY], 2) ||
	    !wgk_attr_len_is(tb[WGALLOWEDIP_A_CIDR_MASK], 1))
		return nx_err_set(err, EPROTO, "kernel sent a malformed allowed IP");
	family = nla_get_u16(tb[WGALLOWEDIP_A_FAMILY]);
	cidr = nla_get_u8(tb[WGALLOWEDIP_A_CIDR_MASK]);
	if (family == AF_INET) {
		alen = sizeof(p.addr.v4);
	} else if (family == AF_INET6) {
		alen = sizeof(p.addr.v6);
	} else {
		/* A family this model does not know: not ours to report. */
		return 0;
	}
	if (!wgk_attr_len_is(tb[WGALLOWEDIP_A_IPADDR], alen) || cidr > alen * 8)
		return nx_err_set(err, EPROTO, "kernel sent a malformed allowed IP");
	p.addr.family = family;
	memcpy(family == AF_INET ? (void *)&p.addr.v4 : (void *)&p.addr.v6,
	       nla_data(tb[WGALLOWEDIP_A_IPADDR]), alen);
	p.len = cidr;
	if (nexd_wg_peer_add_allowed_ip(peer, &p) < 0)
		return nx_err_set(err, ENOMEM, "reading allowed IPs: out of memory");
	return 0;
}

static int wgk_parse_endpoint(struct nexd_wg_peer *peer, const struct nlattr *attr,
			      struct nx_err *err)
{
	struct sockaddr_storage ss = { 0 };
	int len = nla_len(attr);

	if (len == sizeof(struct sockaddr_in) || len == sizeof(struct sockaddr_in6)) {
		memcpy(&ss, nla_data(attr), len);
		if ((ss.ss_family == AF_INET && len == sizeof(struct sockaddr_in)) ||
		    (ss.ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6))) {
			nx_addr_from_sockaddr(&ss, &peer->endpoint, &peer->endpoint_port);
			return 0;
		}
	}
	return nx_err_set(err, EPROTO, "kernel sent a malformed peer endpoint");
}

static int wgk_parse_peer(struct nexd_wg_device *dev, struct nlattr *attr, struct nx_err *err)
{
	struct nlattr *tb[WGPEER_A_MAX + 1], *a;
	struct nexd_wg_peer *peer;
	struct nx_wgkey key;
	int rem, rc;

	if (nla_parse_nested(tb, WGPEER_A_MAX, attr, NULL) < 0 || !tb[WGPEER_A_PUBLIC_KEY] ||
	    !wgk_attr_len_is(tb[WGPEER_A_PUBLIC_KEY], NX_WG_KEY_LEN))
		return nx_err_set(err, EPROTO, "kernel sent a peer without a public key");
	memcpy(key.b, nla_data(tb[WGPEER_A_PUBLIC_KEY]), NX_WG_KEY_LEN);

	/* A peer cut at a message boundary goes on, same key, in the next message. */
	if (dev->n_peers && nx_wgkey_eq(&dev->peers[dev->n_peers - 1].public_key, &key)) {
		peer = &dev->peers[dev->n_peers - 1];
	} else {
		peer = nexd_wg_device_add_peer(dev);
		if (!peer)
			return nx_err_set(err, ENOMEM, "reading peers: out of memory");
		peer->public_key = key;
	}

	if (tb[WGPEER_A_ENDPOINT]) {
		rc = wgk_parse_endpoint(peer, tb[WGPEER_A_ENDPOINT], err);
		if (rc < 0)
			return rc;
	}
	if ((a = tb[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL])) {
		if (!wgk_attr_len_is(a, 2))
			return nx_err_set(err, EPROTO, "kernel sent a malformed keepalive");
		peer->keepalive_s = nla_get_u16(a);
	}
	if ((a = tb[WGPEER_A_LAST_HANDSHAKE_TIME])) {
		struct __kernel_timespec ts;

		if (!wgk_attr_len_is(a, sizeof(ts)))
			return nx_err_set(err, EPROTO, "kernel sent a malformed handshake time");
		memcpy(&ts, nla_data(a), sizeof(ts));
		peer->last_handshake_s = ts.tv_sec;
	}
	if ((a = tb[WGPEER_A_RX_BYTES])) {
		if (!wgk_attr_len_is(a, 8))
			return nx_err_set(err, EPROTO, "kernel sent a malformed byte count");
		peer->rx_bytes = nla_get_u64(a);
	}
	if ((a = tb[WGPEER_A_TX_BYTES])) {
		if (!wgk_attr_len_is(a, 8))
			return nx_err_set(err, EPROTO, "kernel sent a malformed byte count");
		peer->tx_bytes = nla_get_u64(a);
	}
	if (tb[WGPEER_A_ALLOWEDIPS]) {
		nla_for_each_nested(a, tb[WGPEER_A_ALLOWEDIPS], rem)
		{
			rc = wgk_parse_allowed_ip(peer, a, err);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

struct wgk_get {
	struct nexd_wg_device *dev;
	struct nx_err *err;
};

static int wgk_parse_device(struct nl_msg *msg, void *arg)
{
	struct wgk_get *g = arg;
	struct nexd_wg_device *dev = g->dev;
	struct nlattr *tb[WGDEVICE_A_MAX + 1], *a;
	int rem, rc;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, WGDEVICE_A_MAX, NULL) < 0)
		return nx_err_set(g->err, EPROTO, "kernel sent a malformed device message");
	if ((a = tb[WGDEVICE_A_PRIVATE_KEY])) {
		if (!wgk_attr_len_is(a, NX_WG_KEY_LEN))
			return nx_err_set(g->err, EPROTO, "kernel sent a malformed private key");
		memcpy(dev->private_key.b, nla_data(a), NX_WG_KEY_LEN);
		dev->has_private_key = !nx_wgkey_is_zero(&dev->private_key);
	}
	if ((a = tb[WGDEVICE_A_LISTEN_PORT])) {
		if (!wgk_attr_len_is(a, 2))
			return nx_err_set(g->err, EPROTO, "kernel sent a malformed listen port");
		dev->listen_port = nla_get_u16(a);
	}
	if (tb[WGDEVICE_A_PEERS]) {
		nla_for_each_nested(a, tb[WGDEVICE_A_PEERS], rem)
		{
			rc = wgk_parse_peer(dev, a, g->err);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static struct nl_msg *wgk_genl_msg(struct wgk *k, int flags, uint8_t cmd, const char *ifname)
{
	struct nl_msg *msg;

	msg = nlmsg_alloc_size(WGK_MSG_SIZE);
	if (!msg)
		return NULL;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, k->family, 0, flags, cmd,
			 WG_GENL_VERSION) ||
	    nla_put_string(msg, WGDEVICE_A_IFNAME, ifname) < 0) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

static int wgk_get(struct nexd_wg *wg, struct nexd_wg_device *out, struct nx_err *err)
{
	struct wgk *k = wg->priv;
	struct wgk_get g = { .dev = out, .err = err };
	char what[64];
	struct nl_msg *msg;
	int rc = -EAGAIN;

	snprintf(what, sizeof(what), "reading %s", wg->ifname);
	/* A change during the dump makes it inconsistent; read again (a few times). */
	for (int attempt = 0; attempt < 5 && rc == -EAGAIN; attempt++) {
		nexd_wg_device_clear(out);
		nx_err_clear(err);
		msg = wgk_genl_msg(k, NLM_F_DUMP, WG_CMD_GET_DEVICE, wg->ifname);
		if (!msg)
			return nx_err_set(err, ENOMEM, "%s: out of memory", what);
		rc = wgk_transact(k->genl, msg, wgk_parse_device, &g, what, err);
		nlmsg_free(msg);
	}
	if (rc == -EAGAIN)
		nx_err_set(err, EAGAIN, "%s: the device kept changing during the dump", what);
	return rc;
}

/* --- writing the device (WG_CMD_SET_DEVICE, split) ---------------------------------------- */

/* The whole change is checked before the first message goes: a change refused halfway
 * would leave the device half changed. */
static int wgk_check_change(const struct nexd_wg_device *change, struct nx_err *err)
{
	const unsigned known =
		NEXD_WG_PEER_REMOVE | NEXD_WG_PEER_REPLACE_ALLOWED_IPS | NEXD_WG_PEER_UPDATE_ONLY;
	char b64[NX_WG_KEY_B64_LEN];

	for (size_t i = 0; i < change->n_peers; i++) {
		const struct nexd_wg_peer *p = &change->peers[i];

		nx_wgkey_to_base64(&p->public_key, b64);
		if (p->flags & ~known)
			return nx_err_set(err, EINVAL, "peer %s: unknown flags 0x%x", b64,
					  p->flags & ~known);
		if (p->flags & NEXD_WG_PEER_REMOVE)
			continue; /* nothing else of it is sent */
		if (p->endpoint.family != AF_UNSPEC && p->endpoint.family != AF_INET &&
		    p->endpoint.family != AF_INET6)
			return nx_err_set(err, EAFNOSUPPORT,
					  "peer %s: endpoint of unknown family %u", b64,
					  p->endpoint.family);
		if (p->endpoint.family != AF_UNSPEC && p->endpoint_port == 0)
			return nx_err_set(err, EINVAL, "peer %s: endpoint port 0", b64);
		for (size_t j = 0; j < p->n_allowed_ips; j++) {
			const struct nx_prefix *ip = &p->allowed_ips[j];

			if ((ip->addr.family != AF_INET && ip->addr.family != AF_INET6) ||
			    ip->len > (ip->addr.family == AF_INET ? 32 : 128))
				return nx_err_set(err, EINVAL,
						  "peer %s: allowed IP %zu is not a valid prefix",
						  b64, j);
		}
	}
	return 0;
}

static int wgk_put_allowed_ip(struct nl_msg *msg, const struct nx_prefix *p)
{
	struct nlattr *nest;

	nest = nla_nest_start(msg, 0);
	if (!nest)
		return -1;
	if (nla_put_u16(msg, WGALLOWEDIP_A_FAMILY, p->addr.family) < 0 ||
	    nla_put(msg, WGALLOWEDIP_A_IPADDR,
		    p->addr.family == AF_INET ? sizeof(p->addr.v4) : sizeof(p->addr.v6),
		    p->addr.family == AF_INET ? (const void *)&p->addr.v4
					      : (const void *)&p->addr.v6) < 0 ||
	    nla_put_u8(msg, WGALLOWEDIP_A_CIDR_MASK, p->len) < 0) {
		nla_nest_cancel(msg, nest);
		return -1;
	}
	nla_nest_end(msg, nest);
	return 0;
}

/* The attributes a peer carries once, in the message where it starts. */
static int wgk_put_peer_head(struct nl_msg *msg, const struct nexd_wg_peer *p)
{
	uint32_t flags = 0;

	if (p->flags & NEXD_WG_PEER_REMOVE)
		flags |= WGPEER_F_REMOVE_ME;
	if (p->flags & NEXD_WG_PEER_REPLACE_ALLOWED_IPS)
		flags |= WGPEER_F_REPLACE_ALLOWEDIPS;
	if (p->flags & NEXD_WG_PEER_UPDATE_ONLY)
		flags |= WGPEER_F_UPDATE_ONLY;
	if (flags && nla_put_u32(msg, WGPEER_A_FLAGS, flags) < 0)
		return -1;
	if (p->flags & NEXD_WG_PEER_REMOVE)
		return 0;
	if (p->endpoint.family != AF_UNSPEC) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (nx_addr_to_sockaddr(&p->endpoint, p->endpoint_port, &ss, &len) < 0 ||
		    nla_put(msg, WGPEER_A_ENDPOINT, len, &ss) < 0)
			return -1;
	}
	if (nla_put_u16(msg, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, p->keepalive_s) < 0)
		return -1;
	return 0;
}

/* Where the next message resumes: peer index, whether that peer's head went already, and how
 * many of its allowed IPs. */
struct wgk_cursor {
	size_t peer;
	size_t ip;
	bool started;
};

/* Adds what fits of the peers from cur on; returns true when all of them went. */
static bool wgk_fill_peers(struct nl_msg *msg, const struct nexd_wg_device *change,
			   struct wgk_cursor *cur)
{
	struct nlattr *peers, *peer, *ips;

	if (cur->peer == change->n_peers)
		return true;
	peers = nla_nest_start(msg, WGDEVICE_A_PEERS);
	if (!peers)
		return false;
	for (; cur->peer < change->n_peers; cur->peer++, cur->ip = 0, cur->started = false) {
		const struct nexd_wg_peer *p = &change->peers[cur->peer];
		bool full = false;

		peer = nla_nest_start(msg, 0);
		if (!peer || nla_put(msg, WGPEER_A_PUBLIC_KEY, NX_WG_KEY_LEN, p->public_key.b) < 0)
			goto cancel_peer;
		if (!cur->started) {
			if (wgk_put_peer_head(msg, p) < 0)
				goto cancel_peer;
		} else if (nla_put_u32(msg, WGPEER_A_FLAGS, WGPEER_F_UPDATE_ONLY) < 0) {
			/* The rest of a peer the previous message created or updated: it
			 * must exist, and its allowed IPs are appended, never replaced. */
			goto cancel_peer;
		}
		if (!(p->flags & NEXD_WG_PEER_REMOVE) && cur->ip < p->n_allowed_ips) {
			size_t first = cur->ip;

			ips = nla_nest_start(msg, WGPEER_A_ALLOWEDIPS);
			if (!ips) {
				full = true;
			} else {
				for (; cur->ip < p->n_allowed_ips; cur->ip++) {
					if (wgk_put_allowed_ip(msg, &p->allowed_ips[cur->ip]) < 0) {
						full = true;
						break;
					}
				}
				if (cur->ip == first)
					nla_nest_cancel(msg, ips);
				else
					nla_nest_end(msg, ips);
			}
			/* A continuation that carries no allowed IP carries nothing. */
			if (full && cur->started && cur->ip == first)
				goto cancel_peer;
		}
		nla_nest_end(msg, peer);
		cur->started = true;
		if (full)
			break;
		continue;
	cancel_peer:
		if (peer)
			nla_nest_cancel(msg, peer);
		break;
	}
	nla_nest_end(msg, peers);
	return cur->peer == change->n_peers;
}

/* The first message of a set may carry the private key: no copy of it is left in the heap. */
static void wgk_msg_free_wiped(struct nl_msg *msg)
{
	nx_memzero_explicit(nlmsg_hdr(msg), nlmsg_hdr(msg)->nlmsg_len);
	nlmsg_free(msg);
}

static int wgk_set(struct nexd_wg *wg, const struct nexd_wg_device *change, struct nx_err *err)
{
	struct wgk *k = wg->priv;
	struct wgk_cursor cur = { 0 };
	struct nl_msg *msg;
	char what[64];
	bool first = true, all;
	unsigned n_msgs = 0;
	int rc;

	rc = wgk_check_change(change, err);
	if (rc < 0)
		return rc;
	snprintf(what, sizeof(what), "configuring %s", wg->ifname);
	do {
		struct wgk_cursor before = cur;

		msg = wgk_genl_msg(k, NLM_F_ACK, WG_CMD_SET_DEVICE, wg->ifname);
		if (!msg)
			return nx_err_set(err, ENOMEM, "%s: out of memory", what);
		/* Device-level changes go in the first message only: a later one with
		 * REPLACE_PEERS would remove the peers the earlier ones just set. */
		if (first) {
			if ((change->has_private_key &&
			     nla_put(msg, WGDEVICE_A_PRIVATE_KEY, NX_WG_KEY_LEN,
				     change->private_key.b) < 0) ||
			    (change->listen_port &&
			     nla_put_u16(msg, WGDEVICE_A_LISTEN_PORT, change->listen_port) < 0) ||
			    (change->replace_peers &&
			     nla_put_u32(msg, WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS) < 0)) {
				wgk_msg_free_wiped(msg);
				return nx_err_set(err, EMSGSIZE, "%s: message too small", what);
			}
		}
		all = wgk_fill_peers(msg, change, &cur);
		if (!first && !all && cur.peer == before.peer && cur.ip == before.ip &&
		    cur.started == before.started) {
			wgk_msg_free_wiped(msg);
			return nx_err_set(err, EMSGSIZE, "%s: a peer does not fit a message", what);
		}
		rc = wgk_transact(k->genl, msg, NULL, NULL, what, err);
		wgk_msg_free_wiped(msg);
		if (rc < 0)
			return rc;
		first = false;
		n_msgs++;
	} while (!all);
	nx_debug(&dbg_nexd_dataplane, "wireguard: %s: %zu peer(s) set in %u message(s)", wg->ifname,
		 change->n_peers, n_msgs);
	return 0;
}

/* --- open/close ------------------------------------------------------------------------- */

static void wgk_free(struct wgk *k)
{
	if (!k)
		return;
	if (k->genl)
		nl_socket_free(k->genl);
	free(k);
}

static int wgk_open(struct nexd_wg *wg, struct nx_err *err)
{
	struct wgk_link_info info;
	struct nl_sock *rt;
	struct wgk *k;
	bool created = false;
	int rc;

	k = calloc(1, sizeof(*k));
	if (!k)
		return nx_err_set(err, ENOMEM, "%s: out of memory", wg->ifname);
	rt = wgk_socket(NETLINK_ROUTE, err);
	if (!rt) {
		rc = -EIO;
		goto out;
	}
	rc = wgk_link_lookup(rt, wg->ifname, &info, err);
	if (rc < 0)
		goto out;
	if (info.found && strcmp(info.kind, "wireguard") != 0) {
		rc = nx_err_set(err, EEXIST, "%s exists and is not a wireguard interface (%s)",
				wg->ifname, info.kind[0] ? info.kind : "no kind");
		goto out;
	}
	if (!info.found) {
		rc = wgk_link_add(rt, wg->ifname, err);
		if (rc < 0)
			goto out;
		created = true;
		nx_debug(&dbg_nexd_dataplane, "wireguard: created kernel interface %s", wg->ifname);
	} else {
		nx_debug(&dbg_nexd_dataplane, "wireguard: adopted kernel interface %s", wg->ifname);
	}

	k->genl = wgk_socket(NETLINK_GENERIC, err);
	if (!k->genl) {
		rc = -EIO;
		goto out;
	}
	k->family = genl_ctrl_resolve(k->genl, WG_GENL_NAME);
	if (k->family < 0) {
		rc = nx_err_set(err, EOPNOTSUPP, "generic netlink family \"%s\": %s", WG_GENL_NAME,
				nl_geterror(k->family));
		goto out;
	}
	wg->priv = k;
	k = NULL;
	rc = 0;
out:
	if (rc < 0 && created)
		wgk_link_del(rt, wg->ifname, NULL);
	if (rt)
		nl_socket_free(rt);
	wgk_free(k);
	return rc;
}

static void wgk_close(struct nexd_wg *wg, bool destroy)
{
	struct nx_err err = { 0 };
	struct nl_sock *rt;

	if (destroy) {
		rt = wgk_socket(NETLINK_ROUTE, &err);
		if (rt && wgk_link_del(rt, wg->ifname, &err) < 0)
			nx_debug(&dbg_nexd_dataplane, "wireguard: %s", err.msg);
		if (rt)
			nl_socket_free(rt);
	}
	wgk_free(wg->priv);
	wg->priv = NULL;
}

const struct nexd_wg_ops nexd_wg_kernel_ops = {
	.name = "kernel",
	.open = wgk_open,
	.get = wgk_get,
	.set = wgk_set,
	.close = wgk_close,
};

bool nexd_wg_kernel_available(void)
{
	static int available = -1;
	struct nx_err err = { 0 };
	char name[IF_NAMESIZE];
	struct nl_sock *rt;
	uint32_t r = 0;

	if (available >= 0)
		return available;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16;
	snprintf(name, sizeof(name), "nxprobe%08x", r);
	available = 0;
	rt = wgk_socket(NETLINK_ROUTE, &err);
	if (rt && wgk_link_add(rt, name, &err) == 0) {
		available = 1;
		if (wgk_link_del(rt, name, &err) < 0)
			nx_debug(&dbg_nexd_dataplane, "wireguard: probe: %s", err.msg);
	}
	if (rt)
		nl_socket_free(rt);
	nx_debug(&dbg_nexd_dataplane, "wireguard: kernel backend %savailable%s%s",
		 available ? "" : "not ", available ? "" : ": ", available ? "" : err.msg);
	return available;
}
