/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The WireGuard UAPI text protocol (the "get=1" / "set=1" exchanges over wireguard-go's unix
 * socket), kept apart from the socket so it can be tested and fuzzed on its own.
 *
 * A reply comes from another process and is read strictly: every key must be one the protocol
 * defines, in the place it defines (device keys before the first peer), every value must parse
 * completely, lines are bounded, and the reply must end with "errno=N" and an empty line.
 * Anything else is refused with a message naming the line, so a half-understood dataplane is
 * never mistaken for the real one.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strutil.h"
#include "nexd/nexd_wg.h"

/* Longest accepted line, newline excluded: "private_key=" and 64 hex digits is 76, an IPv6
 * endpoint is under 70; anything much longer is not the protocol. */
#define UAPI_LINE_MAX  256
/* Largest accepted reply: 10,000 peers with a few allowed IPs each are a few megabytes. */
#define UAPI_REPLY_MAX (64u << 20)
/* errno values are small positive numbers (wireguard-go writes them negated). */
#define UAPI_ERRNO_MAX 4095

/* Device-level keys (bits of uapi_parser.dev_seen) and peer-level keys (peer_seen). */
enum uapi_key_id {
	K_PRIVATE_KEY,
	K_LISTEN_PORT,
	K_FWMARK,
	K_PUBLIC_KEY,
	K_PRESHARED_KEY,
	K_PROTOCOL_VERSION,
	K_ENDPOINT,
	K_LAST_HANDSHAKE_SEC,
	K_LAST_HANDSHAKE_NSEC,
	K_RX_BYTES,
	K_TX_BYTES,
	K_KEEPALIVE,
	K_ALLOWED_IP,
	K_ERRNO,
};

enum uapi_scope {
	SCOPE_DEVICE, /* before the first public_key */
	SCOPE_PEER,   /* after a public_key */
	SCOPE_ANY,
};

struct uapi_parser {
	struct nexd_wg_device *dev;
	struct nexd_wg_peer *peer; /* the peer being read, NULL before the first */
	unsigned dev_seen;	   /* 1 << K_* of the device keys met */
	unsigned peer_seen;	   /* 1 << K_* of the current peer's keys met */
	bool got_errno;
};

typedef int (*uapi_value_fn)(struct uapi_parser *p, const char *value, struct nx_err *err);

struct uapi_key {
	const char *name;
	enum uapi_key_id id;
	enum uapi_scope scope;
	bool repeatable;
	uapi_value_fn fn;
};

static int parse_number(const char *value, unsigned long long max, unsigned long long *out,
			struct nx_err *err)
{
	char q[48];

	/* nx_parse_uint() takes leading zeros; the protocol never writes them. */
	if (value[0] == '0' && value[1] != '\0')
		return nx_err_set(err, EINVAL, "\"%s\": leading zeros are not allowed",
				  nx_str_printable(q, sizeof(q), value));
	return nx_parse_uint(value, 0, max, out, err);
}

static int parse_key(const char *value, struct nx_wgkey *key, struct nx_err *err)
{
	return nx_wgkey_from_hex(value, key, err);
}

static int on_private_key(struct uapi_parser *p, const char *value, struct nx_err *err)
{
	int rc = parse_key(value, &p->dev->private_key, err);

	if (rc < 0)
		return rc;
	p->dev->has_private_key = !nx_wgkey_is_zero(&p->dev->private_key);
	return 0;
}

static int on_listen_port(struct uapi_parser *p, const char *value, struct nx_err *err)
{
	unsigned long long v;
	int rc = parse_number(value, UINT16_MAX, &v, err);

	if (rc < 0)
		return rc;
	p->dev->listen_port = (uint16_t)v;
	return 0;
}

static int on_fwmark(struct uapi_parser *p, const char *value, struct nx_err *err)
{
	unsigned long long v;

	(void)p;
	return parse_number(value, UINT32_MAX, &v, err);
}

static int on_public_key(struct uapi_parser *p, const char *value, struct nx_err *err)
{
	struct nx_wgkey key;
	int rc = parse_key(value, &key, err);

	if (rc < 0)
		return rc;
	p->peer = nexd_wg_device_add_peer(p->dev);
	if (!p->peer)
		return nx_err_set(err, ENOMEM, "out of memory for peer %zu", p->dev->n_peers + 1);
	p->peer->public_key = key;
	p->peer_seen = 0;
	return 0;
}

static int on_preshared_key(struct uapi_parser *p, const char *value, struct nx_err *err)
{
	struct nx_wgkey psk;
	int rc = parse_key(value, &psk, err);

	(void)p;
	nx_wgkey_wipe(&psk);
	return rc;
}

static int on_protocol_version(struct uapi_parser *p, const char *value, struct nx_err *err)
{
	(void)p;
	if (strcmp(value, "1") != 0)
		return nx_err_set(err, EPROTONOSUPPORT, "only protocol version 1 is understood");
	return 0;
}

static int on_endpoint(struct uapi_parser *p, const char *value, struct nx_err *err)
{
	return nx_endpoint_parse(value, &p->peer->endpoint, &p->peer->endpoint_port, err);
}

static int on_last_handshake_sec(struct uapi_parser *p, const char *value, struct nx_err *err)
{
	unsigned long long v;
	int rc = parse_number(value, INT64_MAX, &v, err);

	if (rc < 0)
		return rc;
	p->peer->last_handshake_s = (int64_t)v;
	return 0;
}

static int on_last_handshake_nsec(struct uapi_parser *p, const char *value, struct nx_err *err)
{
	unsigned long long v;

	(void)p;
	return parse_number(value, 999999999, &v, err);
}

static int on_rx_bytes(struct uapi_parser *p, const char *value, struct nx_err *err)
{
	unsigned long long v;
	int rc = parse_number(value, UINT64_MAX, &v, err);

	if (rc < 0)
		return rc;
	p->peer->rx_bytes = v;
	return 0;
}

static int on_tx_bytes(struct uapi_parser *p, const char *value, struct nx_err *err)
{
	unsigned long long v;
	int rc = parse_number(value, UINT64_MAX, &v, err);

	if (rc < 0)
		return rc;
	p->peer->tx_bytes = v;
	return 0;
}

static int on_keepalive(struct uapi_parser *p, const char *value, struct nx_err *err)
{
	unsigned long long v;
	int rc = parse_number(value, UINT16_MAX, &v, err);

	if (rc < 0)
		return rc;
	p->peer->keepalive_s = (uint16_t)v;
	return 0;
}

static int on_allowed_ip(struct uapi_parser *p, const char *value, struct nx_err *err)
{
	struct nx_prefix pfx;
	int rc = nx_prefix_parse(value, &pfx, 0, err);

	if (rc < 0)
		return rc;
	if (nexd_wg_peer_add_allowed_ip(p->peer, &pfx) < 0)
		return nx_err_set(err, ENOMEM, "out of memory for allowed IPs");
	return 0;
}

/* "errno=N": wireguard-go writes "-N", the C implementations "N"; both mean error N. */
static int on_errno(struct uapi_parser *p, const char *value, struct nx_err *err)
{
	unsigned long long v;
	const char *digits = value[0] == '-' ? value + 1 : value;
	int rc;

	rc = parse_number(digits, UAPI_ERRNO_MAX, &v, err);
	if (rc < 0)
		return rc;
	if (v == 0 && digits != value)
		return nx_err_set(err, EINVAL, "\"-0\" is not an error number");
	p->got_errno = true;
	if (v != 0)
		return nx_err_set(err, (int)v, "the WireGuard device reported errno=%llu (%s)", v,
				  strerror((int)v));
	return 0;
}

static const struct uapi_key uapi_keys[] = {
	{ "private_key", K_PRIVATE_KEY, SCOPE_DEVICE, false, on_private_key },
	{ "listen_port", K_LISTEN_PORT, SCOPE_DEVICE, false, on_listen_port },
	{ "fwmark", K_FWMARK, SCOPE_DEVICE, false, on_fwmark },
	{ "public_key", K_PUBLIC_KEY, SCOPE_ANY, true, on_public_key },
	{ "preshared_key", K_PRESHARED_KEY, SCOPE_PEER, false, on_preshared_key },
	{ "protocol_version", K_PROTOCOL_VERSION, SCOPE_PEER, false, on_protocol_version },
	{ "endpoint", K_ENDPOINT, SCOPE_PEER, false, on_endpoint },
	{ "last_handshake_time_sec", K_LAST_HANDSHAKE_SEC, SCOPE_PEER, false,
	  on_last_handshake_sec },
	{ "last_handshake_time_nsec", K_LAST_HANDSHAKE_NSEC, SCOPE_PEER, false,
	  on_last_handshake_nsec },
	{ "rx_bytes", K_RX_BYTES, SCOPE_PEER, false, on_rx_bytes },
	{ "tx_bytes", K_TX_BYTES, SCOPE_PEER, false, on_tx_bytes },
	{ "persistent_keepalive_interval", K_KEEPALIVE, SCOPE_PEER, false, on_keepalive },
	{ "allowed_ip", K_ALLOWED_IP, SCOPE_PEER, true, on_allowed_ip },
	{ "errno", K_ERRNO, SCOPE_ANY, false, on_errno },
};

static const struct uapi_key *uapi_key_find(const char *name)
{
	for (size_t i = 0; i < sizeof(uapi_keys) / sizeof(uapi_keys[0]); i++)
		if (strcmp(uapi_keys[i].name, name) == 0)
			return &uapi_keys[i];
	return NULL;
}

/* One NUL-terminated line without its newline.  The message goes to err unprefixed. */
static int uapi_line(struct uapi_parser *p, char *line, struct nx_err *err)
{
	char q[64];
	char *eq = strchr(line, '=');
	const struct uapi_key *k;
	unsigned *seen;

	if (!eq)
		return nx_err_set(err, EINVAL, "\"%s\" is not key=value",
				  nx_str_printable(q, sizeof(q), line));
	*eq = '\0';
	k = uapi_key_find(line);
	if (!k)
		return nx_err_set(err, EINVAL, "unknown key \"%s\"",
				  nx_str_printable(q, sizeof(q), line));
	if (k->scope == SCOPE_DEVICE && p->peer)
		return nx_err_set(err, EINVAL, "device key %s after the first peer", k->name);
	if (k->scope == SCOPE_PEER && !p->peer)
		return nx_err_set(err, EINVAL, "%s before any public_key", k->name);
	seen = p->peer && k->scope != SCOPE_ANY ? &p->peer_seen : &p->dev_seen;
	if (!k->repeatable) {
		if (*seen & (1u << k->id))
			return nx_err_set(err, EINVAL, "%s given twice", k->name);
		*seen |= 1u << k->id;
	}
	return k->fn(p, eq + 1, err);
}

int nexd_uapi_parse_get(const char *reply, size_t len, struct nexd_wg_device *dev,
			struct nx_err *err)
{
	struct uapi_parser p = { .dev = dev };
	char line[UAPI_LINE_MAX + 1];
	struct nx_err sub = { "" };
	size_t pos = 0;
	unsigned lineno = 0;
	int rc = 0;

	memset(dev, 0, sizeof(*dev));
	if (len > UAPI_REPLY_MAX) {
		rc = nx_err_set(err, E2BIG, "UAPI reply of %zu bytes exceeds the limit of %u", len,
				UAPI_REPLY_MAX);
		goto out;
	}
	while (pos < len) {
		size_t avail = len - pos, n;
		const char *nl;

		lineno++;
		nl = memchr(reply + pos, '\n',
			    avail < UAPI_LINE_MAX + 1 ? avail : UAPI_LINE_MAX + 1);
		if (!nl) {
			if (avail > UAPI_LINE_MAX)
				rc = nx_err_set(err, EINVAL,
						"UAPI reply line %u is longer than %d bytes",
						lineno, UAPI_LINE_MAX);
			else
				rc = nx_err_set(
					err, EPROTO,
					"UAPI reply line %u has no newline (reply cut short)",
					lineno);
			goto out;
		}
		n = (size_t)(nl - (reply + pos));
		if (memchr(reply + pos, '\0', n)) {
			rc = nx_err_set(err, EINVAL, "UAPI reply line %u contains a NUL byte",
					lineno);
			goto out;
		}
		if (n == 0) {
			if (!p.got_errno) {
				rc = nx_err_set(
					err, EPROTO,
					"UAPI reply line %u: empty line before errno=", lineno);
				goto out;
			}
			if (pos + 1 != len) {
				rc = nx_err_set(
					err, EPROTO,
					"UAPI reply line %u: data after the final empty line",
					lineno + 1);
				goto out;
			}
			return 0;
		}
		if (p.got_errno) {
			rc = nx_err_set(
				err, EPROTO,
				"UAPI reply line %u: expected the final empty line after errno=",
				lineno);
			goto out;
		}
		memcpy(line, reply + pos, n);
		line[n] = '\0';
		rc = uapi_line(&p, line, &sub);
		nx_memzero_explicit(line, sizeof(line));
		if (rc < 0) {
			rc = nx_err_set(err, -rc, "UAPI reply line %u: %s", lineno, sub.msg);
			goto out;
		}
		pos += n + 1;
	}
	if (!p.got_errno)
		rc = nx_err_set(err, EPROTO, "UAPI reply ends without errno= (%u lines)", lineno);
	else
		rc = nx_err_set(err, EPROTO, "UAPI reply ends without the final empty line");
out:
	nexd_wg_device_clear(dev);
	return rc;
}

static int format_peer(struct nx_sbuf *b, const struct nexd_wg_peer *peer, size_t idx,
		       struct nx_err *err)
{
	const unsigned known =
		NEXD_WG_PEER_REMOVE | NEXD_WG_PEER_REPLACE_ALLOWED_IPS | NEXD_WG_PEER_UPDATE_ONLY;
	char hex[NX_WG_KEY_HEX_LEN], text[NX_ENDPOINT_STRLEN];

	if (peer->flags & ~known)
		return nx_err_set(err, EINVAL, "peer %zu: unknown flags 0x%x", idx,
				  peer->flags & ~known);
	nx_wgkey_to_hex(&peer->public_key, hex);
	nx_sbuf_printf(b, "public_key=%s\n", hex);
	if (peer->flags & NEXD_WG_PEER_REMOVE) {
		nx_sbuf_puts(b, "remove=true\n");
		return 0;
	}
	if (peer->flags & NEXD_WG_PEER_UPDATE_ONLY)
		nx_sbuf_puts(b, "update_only=true\n");
	if (peer->endpoint.family != AF_UNSPEC) {
		if (peer->endpoint.family != AF_INET && peer->endpoint.family != AF_INET6)
			return nx_err_set(err, EAFNOSUPPORT, "peer %zu: endpoint family %u", idx,
					  peer->endpoint.family);
		if (peer->endpoint_port == 0)
			return nx_err_set(err, EINVAL, "peer %zu: endpoint %s without a port", idx,
					  nx_addr_format(&peer->endpoint, text, sizeof(text)));
		nx_sbuf_printf(b, "endpoint=%s\n",
			       nx_endpoint_format(&peer->endpoint, peer->endpoint_port, text,
						  sizeof(text)));
	}
	nx_sbuf_printf(b, "persistent_keepalive_interval=%u\n", (unsigned)peer->keepalive_s);
	if (peer->flags & NEXD_WG_PEER_REPLACE_ALLOWED_IPS)
		nx_sbuf_puts(b, "replace_allowed_ips=true\n");
	for (size_t i = 0; i < peer->n_allowed_ips; i++) {
		const struct nx_prefix *p = &peer->allowed_ips[i];

		if ((p->addr.family != AF_INET || p->len > 32) &&
		    (p->addr.family != AF_INET6 || p->len > 128))
			return nx_err_set(err, EINVAL, "peer %zu: allowed IP %zu is not a prefix",
					  idx, i);
		nx_sbuf_printf(b, "allowed_ip=%s\n", nx_prefix_format(p, text, sizeof(text)));
	}
	return 0;
}

int nexd_uapi_format_set(const struct nexd_wg_device *change, char **out, size_t *out_len,
			 struct nx_err *err)
{
	struct nx_sbuf b;
	char hex[NX_WG_KEY_HEX_LEN];
	int rc = 0;

	*out = NULL;
	*out_len = 0;
	nx_sbuf_init(&b, NULL, 0);
	nx_sbuf_puts(&b, "set=1\n");
	if (change->has_private_key) {
		nx_wgkey_to_hex(&change->private_key, hex);
		nx_sbuf_printf(&b, "private_key=%s\n", hex);
		nx_memzero_explicit(hex, sizeof(hex));
	}
	if (change->listen_port)
		nx_sbuf_printf(&b, "listen_port=%u\n", (unsigned)change->listen_port);
	if (change->replace_peers)
		nx_sbuf_puts(&b, "replace_peers=true\n");
	for (size_t i = 0; i < change->n_peers; i++) {
		rc = format_peer(&b, &change->peers[i], i, err);
		if (rc < 0)
			goto out;
	}
	nx_sbuf_puts(&b, "\n");
	if (nx_sbuf_truncated(&b)) {
		rc = nx_err_set(err, ENOMEM, "out of memory formatting a set of %zu peers",
				change->n_peers);
		goto out;
	}
	*out_len = nx_sbuf_len(&b);
	*out = strdup(nx_sbuf_str(&b));
	if (!*out) {
		*out_len = 0;
		rc = nx_err_set(err, ENOMEM, "out of memory formatting a set of %zu peers",
				change->n_peers);
	}
out:
	/* The text may hold the private key. */
	if (nx_sbuf_len(&b))
		nx_memzero_explicit((char *)nx_sbuf_str(&b), nx_sbuf_len(&b));
	nx_sbuf_fini(&b);
	return rc;
}

int nexd_uapi_parse_errno(const char *reply, size_t len, struct nx_err *err)
{
	struct uapi_parser p = { 0 };
	char line[32], q[48];
	struct nx_err sub = { "" };
	int rc;

	if (len < 3 || len - 2 >= sizeof(line) || reply[len - 1] != '\n' ||
	    reply[len - 2] != '\n' || memchr(reply, '\0', len) || memchr(reply, '\n', len - 2))
		goto bad;
	memcpy(line, reply, len - 2);
	line[len - 2] = '\0';
	if (strncmp(line, "errno=", 6) != 0)
		goto bad;
	rc = on_errno(&p, line + 6, &sub);
	if (rc < 0)
		return nx_err_set(err, -rc, "UAPI set: %s", sub.msg);
	return 0;
bad:
	memcpy(line, reply, len < sizeof(line) - 1 ? len : sizeof(line) - 1);
	line[len < sizeof(line) - 1 ? len : sizeof(line) - 1] = '\0';
	return nx_err_set(err, EPROTO,
			  "UAPI reply to set is not \"errno=N\" and an empty line: \"%s\"",
			  nx_str_printable(q, sizeof(q), line));
}
