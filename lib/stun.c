/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * STUN Binding messages: a strict decoder for datagrams from anyone, and builders for the
 * few messages this suite sends.  See stun.h for the contracts.
 *
 * The decoder walks the attributes once, checking each length against what is left of the
 * message before looking at a single value byte; the table below says which attributes it
 * knows and which of those it interprets.  Multi-byte fields are read and written a byte at
 * a time, so nothing depends on the alignment of the caller's buffer.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "lib/stun.h"

#define ATTR_HEADER_LEN	     4
#define FINGERPRINT_ATTR_LEN (ATTR_HEADER_LEN + 4)
#define INTEGRITY_LEN	     20 /* HMAC-SHA1 */
#define FAMILY_IPV4	     0x01
#define FAMILY_IPV6	     0x02
/* Attribute types below this one are comprehension-required. */
#define ATTR_OPTIONAL_MIN    0x8000
/* Longest reason phrase quoted in an error message. */
#define QUOTE_MAX	     64

/* What the decoder does with a known attribute's value. */
enum attr_kind {
	ATTR_OPAQUE, /* known, value not interpreted */
	ATTR_MAPPED,
	ATTR_XOR_MAPPED,
	ATTR_SOFTWARE,
	ATTR_ERROR_CODE,
	ATTR_UNKNOWN_ATTRIBUTES,
	ATTR_INTEGRITY,
	ATTR_INTEGRITY_SHA256,
	ATTR_FINGERPRINT,
};

static const struct attr_info {
	uint16_t type;
	enum attr_kind kind;
	const char *name;
} attr_table[] = {
	{ NX_STUN_ATTR_MAPPED_ADDRESS, ATTR_MAPPED, "MAPPED-ADDRESS" },
	{ NX_STUN_ATTR_USERNAME, ATTR_OPAQUE, "USERNAME" },
	{ NX_STUN_ATTR_MESSAGE_INTEGRITY, ATTR_INTEGRITY, "MESSAGE-INTEGRITY" },
	{ NX_STUN_ATTR_ERROR_CODE, ATTR_ERROR_CODE, "ERROR-CODE" },
	{ NX_STUN_ATTR_UNKNOWN_ATTRIBUTES, ATTR_UNKNOWN_ATTRIBUTES, "UNKNOWN-ATTRIBUTES" },
	{ NX_STUN_ATTR_REALM, ATTR_OPAQUE, "REALM" },
	{ NX_STUN_ATTR_NONCE, ATTR_OPAQUE, "NONCE" },
	{ NX_STUN_ATTR_MESSAGE_INTEGRITY_SHA256, ATTR_INTEGRITY_SHA256,
	  "MESSAGE-INTEGRITY-SHA256" },
	{ NX_STUN_ATTR_PASSWORD_ALGORITHM, ATTR_OPAQUE, "PASSWORD-ALGORITHM" },
	{ NX_STUN_ATTR_USERHASH, ATTR_OPAQUE, "USERHASH" },
	{ NX_STUN_ATTR_XOR_MAPPED_ADDRESS, ATTR_XOR_MAPPED, "XOR-MAPPED-ADDRESS" },
	{ NX_STUN_ATTR_PRIORITY, ATTR_OPAQUE, "PRIORITY" },
	{ NX_STUN_ATTR_USE_CANDIDATE, ATTR_OPAQUE, "USE-CANDIDATE" },
	{ NX_STUN_ATTR_PASSWORD_ALGORITHMS, ATTR_OPAQUE, "PASSWORD-ALGORITHMS" },
	{ NX_STUN_ATTR_ALTERNATE_DOMAIN, ATTR_OPAQUE, "ALTERNATE-DOMAIN" },
	{ NX_STUN_ATTR_SOFTWARE, ATTR_SOFTWARE, "SOFTWARE" },
	{ NX_STUN_ATTR_ALTERNATE_SERVER, ATTR_OPAQUE, "ALTERNATE-SERVER" },
	{ NX_STUN_ATTR_FINGERPRINT, ATTR_FINGERPRINT, "FINGERPRINT" },
	{ NX_STUN_ATTR_ICE_CONTROLLED, ATTR_OPAQUE, "ICE-CONTROLLED" },
	{ NX_STUN_ATTR_ICE_CONTROLLING, ATTR_OPAQUE, "ICE-CONTROLLING" },
	{ NX_STUN_ATTR_RESPONSE_ORIGIN, ATTR_OPAQUE, "RESPONSE-ORIGIN" },
	{ NX_STUN_ATTR_OTHER_ADDRESS, ATTR_OPAQUE, "OTHER-ADDRESS" },
};

static const char *const class_names[] = {
	[NX_STUN_CLASS_REQUEST] = "request",
	[NX_STUN_CLASS_INDICATION] = "indication",
	[NX_STUN_CLASS_SUCCESS] = "success response",
	[NX_STUN_CLASS_ERROR] = "error response",
};

static const struct {
	uint16_t code;
	const char *reason;
} error_reasons[] = {
	{ 300, "Try Alternate" }, { 400, "Bad Request" },	{ 401, "Unauthenticated" },
	{ 403, "Forbidden" },	  { 420, "Unknown Attribute" }, { 438, "Stale Nonce" },
	{ 500, "Server Error" },
};

/* CRC-32 (IEEE 802.3, reflected), four bits at a time. */
static const uint32_t crc_nibble[16] = {
	0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
	0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
	0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		crc = (crc >> 4) ^ crc_nibble[crc & 0xf];
		crc = (crc >> 4) ^ crc_nibble[crc & 0xf];
	}
	return ~crc;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* The 16 bytes an address is XORed with: the magic cookie, then the transaction id. */
static void xor_key(const uint8_t txid[NX_STUN_TXID_LEN], uint8_t key[16])
{
	put32(key, NX_STUN_MAGIC_COOKIE);
	memcpy(key + 4, txid, NX_STUN_TXID_LEN);
}

static const struct attr_info *attr_lookup(uint16_t type)
{
	for (size_t i = 0; i < sizeof(attr_table) / sizeof(attr_table[0]); i++)
		if (attr_table[i].type == type)
			return &attr_table[i];
	return NULL;
}

const char *nx_stun_attr_name(uint16_t type)
{
	const struct attr_info *info = attr_lookup(type);

	return info ? info->name : NULL;
}

bool nx_stun_is_stun(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (!p || len < NX_STUN_HEADER_LEN || (p[0] & 0xc0))
		return false;
	if (get32(p + 4) != NX_STUN_MAGIC_COOKIE)
		return false;
	return get16(p + 2) % 4 == 0 && (size_t)get16(p + 2) + NX_STUN_HEADER_LEN == len;
}

uint16_t nx_stun_type(uint16_t method, enum nx_stun_class cls)
{
	unsigned int c = (unsigned int)cls & 0x3;

	return (uint16_t)((method & 0x000f) | (method & 0x0070) << 1 | (method & 0x0f80) << 2 |
			  (c & 0x1) << 4 | (c & 0x2) << 7);
}

uint16_t nx_stun_type_method(uint16_t type)
{
	return (uint16_t)((type & 0x000f) | (type & 0x00e0) >> 1 | (type & 0x3e00) >> 2);
}

enum nx_stun_class nx_stun_type_class(uint16_t type)
{
	return (enum nx_stun_class)((type >> 4 & 0x1) | (type >> 7 & 0x2));
}

char *nx_stun_type_format(uint16_t type, char *buf, size_t size)
{
	uint16_t method = nx_stun_type_method(type);
	const char *cls = class_names[nx_stun_type_class(type)];

	if (size == 0)
		return buf;
	if (type & 0xc000)
		snprintf(buf, size, "type 0x%04x", type);
	else if (method == NX_STUN_METHOD_BINDING)
		snprintf(buf, size, "Binding %s", cls);
	else
		snprintf(buf, size, "method 0x%03x %s", method, cls);
	return buf;
}

/* " (NAME)" for a known attribute type, "" otherwise: for messages. */
static const char *attr_label(uint16_t type, char *buf, size_t size)
{
	const char *name = nx_stun_attr_name(type);

	if (!name)
		return "";
	snprintf(buf, size, " (%s)", name);
	return buf;
}

/* Quotes untrusted text for a message: non-printable bytes become '?', long text is cut. */
static const char *quote_text(const uint8_t *p, size_t n, char *buf, size_t size)
{
	size_t i, out = 0;

	for (i = 0; i < n && out + 4 < size && i < QUOTE_MAX; i++)
		buf[out++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
	if (i < n && out + 4 <= size) {
		memcpy(buf + out, "...", 3);
		out += 3;
	}
	buf[out] = '\0';
	return buf;
}

/* --- decoding -------------------------------------------------------------------------- */

static int decode_address(const struct attr_info *info, const uint8_t *v, size_t vlen,
			  const uint8_t txid[NX_STUN_TXID_LEN], struct nx_stun_addr *out,
			  struct nx_err *err)
{
	bool xored = info->kind == ATTR_XOR_MAPPED;
	uint8_t key[16];
	uint8_t family;
	size_t alen;
	uint8_t *dst;

	if (vlen < 4)
		return nx_err_set(err, EBADMSG, "%s of %zu bytes is too short for an address",
				  info->name, vlen);
	family = v[1];
	if (family == FAMILY_IPV4) {
		alen = 4;
		out->addr.family = AF_INET;
		dst = (uint8_t *)&out->addr.v4;
	} else if (family == FAMILY_IPV6) {
		alen = 16;
		out->addr.family = AF_INET6;
		dst = (uint8_t *)&out->addr.v6;
	} else {
		return nx_err_set(err, EBADMSG, "%s: unknown address family 0x%02x", info->name,
				  family);
	}
	if (vlen != 4 + alen)
		return nx_err_set(err, EBADMSG, "%s of %zu bytes: an %s address needs %zu",
				  info->name, vlen, alen == 4 ? "IPv4" : "IPv6", 4 + alen);
	memcpy(dst, v + 4, alen);
	out->port = get16(v + 2);
	if (xored) {
		xor_key(txid, key);
		out->port ^= (uint16_t)(NX_STUN_MAGIC_COOKIE >> 16);
		for (size_t i = 0; i < alen; i++)
			dst[i] ^= key[i];
	}
	return 0;
}

static int decode_error_code(const uint8_t *v, size_t vlen, struct nx_stun_msg *msg,
			     struct nx_err *err)
{
	unsigned int cls, number;

	if (vlen < 4)
		return nx_err_set(err, EBADMSG, "ERROR-CODE of %zu bytes is shorter than 4", vlen);
	if (vlen - 4 > NX_STUN_TEXT_MAX)
		return nx_err_set(err, EBADMSG, "ERROR-CODE reason of %zu bytes exceeds %d",
				  vlen - 4, NX_STUN_TEXT_MAX);
	cls = v[2] & 0x7;
	number = v[3];
	if (cls < 3 || cls > 6)
		return nx_err_set(err, EBADMSG, "ERROR-CODE class %u is outside 3-6", cls);
	if (number > 99)
		return nx_err_set(err, EBADMSG, "ERROR-CODE number %u exceeds 99", number);
	msg->has_error = true;
	msg->error_code = (uint16_t)(cls * 100 + number);
	msg->error_reason = v + 4;
	msg->error_reason_len = vlen - 4;
	return 0;
}

static int decode_unknown_attributes(const uint8_t *v, size_t vlen, struct nx_stun_msg *msg,
				     struct nx_err *err)
{
	if (vlen % 2)
		return nx_err_set(err, EBADMSG, "UNKNOWN-ATTRIBUTES of odd length %zu", vlen);
	msg->has_unknown_attrs = true;
	for (size_t i = 0; i + 1 < vlen && msg->n_unknown_attrs < NX_STUN_MAX_UNKNOWN; i += 2)
		msg->unknown_attrs[msg->n_unknown_attrs++] = get16(v + i);
	return 0;
}

static void note_unknown_required(struct nx_stun_msg *msg, uint16_t type)
{
	for (size_t i = 0; i < msg->n_unknown_required; i++)
		if (msg->unknown_required[i] == type)
			return;
	if (msg->n_unknown_required < NX_STUN_MAX_UNKNOWN)
		msg->unknown_required[msg->n_unknown_required++] = type;
}

/* Where the walk stands with respect to the integrity attributes (RFC 8489 §14.5, §14.6):
 * after one of them, only the attributes allowed to follow it are looked at. */
enum integrity_state { BEFORE_INTEGRITY, AFTER_INTEGRITY, AFTER_INTEGRITY_SHA256 };

static bool attr_ignored(enum integrity_state st, const struct attr_info *info)
{
	switch (st) {
	case BEFORE_INTEGRITY:
		return false;
	case AFTER_INTEGRITY:
		return !info ||
		       (info->kind != ATTR_INTEGRITY_SHA256 && info->kind != ATTR_FINGERPRINT);
	case AFTER_INTEGRITY_SHA256:
		return !info || info->kind != ATTR_FINGERPRINT;
	}
	return true;
}

/* One attribute whose value v[0..vlen) starts at offset off of buf. */
static int decode_attr(const uint8_t *buf, size_t off, uint16_t type, const uint8_t *v, size_t vlen,
		       struct nx_stun_msg *msg, enum integrity_state *st, struct nx_err *err)
{
	const struct attr_info *info = attr_lookup(type);
	uint32_t want;

	if (attr_ignored(*st, info))
		return 0;
	if (!info) {
		if (type < ATTR_OPTIONAL_MIN)
			note_unknown_required(msg, type);
		return 0;
	}
	switch (info->kind) {
	case ATTR_OPAQUE:
		return 0;
	case ATTR_MAPPED:
		if (msg->has_mapped)
			return 0;
		msg->has_mapped = true;
		return decode_address(info, v, vlen, msg->txid, &msg->mapped, err);
	case ATTR_XOR_MAPPED:
		if (msg->has_xor_mapped)
			return 0;
		msg->has_xor_mapped = true;
		return decode_address(info, v, vlen, msg->txid, &msg->xor_mapped, err);
	case ATTR_SOFTWARE:
		if (vlen > NX_STUN_TEXT_MAX)
			return nx_err_set(err, EBADMSG, "SOFTWARE of %zu bytes exceeds %d", vlen,
					  NX_STUN_TEXT_MAX);
		if (!msg->has_software) {
			msg->has_software = true;
			msg->software = v;
			msg->software_len = vlen;
		}
		return 0;
	case ATTR_ERROR_CODE:
		return msg->has_error ? 0 : decode_error_code(v, vlen, msg, err);
	case ATTR_UNKNOWN_ATTRIBUTES:
		return msg->has_unknown_attrs ? 0 : decode_unknown_attributes(v, vlen, msg, err);
	case ATTR_INTEGRITY:
		if (vlen != INTEGRITY_LEN)
			return nx_err_set(err, EBADMSG,
					  "MESSAGE-INTEGRITY of %zu bytes: must be %d", vlen,
					  INTEGRITY_LEN);
		msg->has_integrity = true;
		*st = AFTER_INTEGRITY;
		return 0;
	case ATTR_INTEGRITY_SHA256:
		if (vlen < 16 || vlen > 32 || vlen % 4)
			return nx_err_set(err, EBADMSG,
					  "MESSAGE-INTEGRITY-SHA256 of %zu bytes: must be 16-32, "
					  "a multiple of 4",
					  vlen);
		msg->has_integrity = true;
		*st = AFTER_INTEGRITY_SHA256;
		return 0;
	case ATTR_FINGERPRINT:
		if (vlen != 4)
			return nx_err_set(err, EBADMSG, "FINGERPRINT of %zu bytes: must be 4",
					  vlen);
		want = crc32_ieee(buf, off) ^ NX_STUN_FINGERPRINT_XOR;
		if (get32(v) != want)
			return nx_err_set(err, EBADMSG,
					  "FINGERPRINT 0x%08x does not match the message (0x%08x)",
					  get32(v), want);
		msg->has_fingerprint = true;
		return 0;
	}
	return 0;
}

int nx_stun_decode(const uint8_t *buf, size_t len, struct nx_stun_msg *msg, struct nx_err *err)
{
	enum integrity_state st = BEFORE_INTEGRITY;
	char label[40];
	size_t mlen, off;
	uint32_t cookie;
	int rc;

	memset(msg, 0, sizeof(*msg));
	if (!buf || len < NX_STUN_HEADER_LEN)
		return nx_err_set(err, EBADMSG,
				  "message of %zu bytes is shorter than the %d-byte STUN header",
				  buf ? len : 0, NX_STUN_HEADER_LEN);
	if (buf[0] & 0xc0)
		return nx_err_set(err, EBADMSG,
				  "first two bits are not zero (0x%02x): not a STUN message",
				  buf[0]);
	cookie = get32(buf + 4);
	if (cookie != NX_STUN_MAGIC_COOKIE)
		return nx_err_set(err, EBADMSG, "magic cookie 0x%08x is not 0x%08x", cookie,
				  NX_STUN_MAGIC_COOKIE);
	mlen = get16(buf + 2);
	if (mlen % 4)
		return nx_err_set(err, EBADMSG, "message length %zu is not a multiple of 4", mlen);
	if (mlen != len - NX_STUN_HEADER_LEN)
		return nx_err_set(
			err, EBADMSG,
			"message length %zu does not match the %zu bytes after the header", mlen,
			len - NX_STUN_HEADER_LEN);
	msg->type = get16(buf);
	memcpy(msg->txid, buf + 8, NX_STUN_TXID_LEN);

	for (off = NX_STUN_HEADER_LEN; off < len;) {
		size_t room = len - off;
		uint16_t type, vlen;

		if (room < ATTR_HEADER_LEN)
			return nx_err_set(
				err, EBADMSG,
				"%zu stray bytes at offset %zu: too short for an attribute", room,
				off);
		type = get16(buf + off);
		vlen = get16(buf + off + 2);
		room -= ATTR_HEADER_LEN;
		if (pad4(vlen) > room)
			return nx_err_set(
				err, EBADMSG,
				"attribute 0x%04x%s of %u bytes at offset %zu overruns the "
				"message (%zu bytes left)",
				type, attr_label(type, label, sizeof(label)), vlen, off, room);
		if (msg->has_fingerprint)
			return nx_err_set(
				err, EBADMSG,
				"attribute 0x%04x%s follows FINGERPRINT, which must be last", type,
				attr_label(type, label, sizeof(label)));
		rc = decode_attr(buf, off, type, buf + off + ATTR_HEADER_LEN, vlen, msg, &st, err);
		if (rc < 0)
			return rc;
		off += ATTR_HEADER_LEN + pad4(vlen);
	}
	return 0;
}

int nx_stun_decode_request(const uint8_t *buf, size_t len, struct nx_stun_msg *msg,
			   struct nx_err *err)
{
	char tbuf[48];
	int rc = nx_stun_decode(buf, len, msg, err);

	if (rc < 0)
		return rc;
	if (msg->type != NX_STUN_BINDING_REQUEST)
		return nx_err_set(err, ENOMSG, "%s is not a Binding request",
				  nx_stun_type_format(msg->type, tbuf, sizeof(tbuf)));
	if (msg->n_unknown_required > 0)
		return nx_err_set(err, ENOTSUP,
				  "Binding request with unknown comprehension-required attribute "
				  "0x%04x%s",
				  msg->unknown_required[0],
				  msg->n_unknown_required > 1 ? " (and others)" : "");
	return 0;
}

int nx_stun_parse_binding_response(const uint8_t *buf, size_t len,
				   const uint8_t txid[NX_STUN_TXID_LEN],
				   struct nx_stun_addr *mapped, struct nx_err *err)
{
	struct nx_stun_msg msg;
	enum nx_stun_class cls;
	char tbuf[48], reason[QUOTE_MAX + 8];
	int rc = nx_stun_decode(buf, len, &msg, err);

	if (rc < 0)
		return rc;
	if (memcmp(msg.txid, txid, NX_STUN_TXID_LEN) != 0)
		return nx_err_set(err, ESRCH, "%s of another transaction",
				  nx_stun_type_format(msg.type, tbuf, sizeof(tbuf)));
	cls = nx_stun_type_class(msg.type);
	if (nx_stun_type_method(msg.type) != NX_STUN_METHOD_BINDING ||
	    (cls != NX_STUN_CLASS_SUCCESS && cls != NX_STUN_CLASS_ERROR))
		return nx_err_set(err, ENOMSG, "%s is not a Binding response",
				  nx_stun_type_format(msg.type, tbuf, sizeof(tbuf)));
	if (msg.n_unknown_required > 0)
		return nx_err_set(err, ENOTSUP,
				  "Binding response with unknown comprehension-required attribute "
				  "0x%04x",
				  msg.unknown_required[0]);
	if (cls == NX_STUN_CLASS_ERROR) {
		if (!msg.has_error)
			return nx_err_set(err, EBADMSG,
					  "Binding error response without ERROR-CODE");
		return nx_err_set(
			err, EPROTO, "Binding error response %u \"%s\"", msg.error_code,
			quote_text(msg.error_reason, msg.error_reason_len, reason, sizeof(reason)));
	}
	if (msg.has_xor_mapped)
		*mapped = msg.xor_mapped;
	else if (msg.has_mapped)
		*mapped = msg.mapped;
	else
		return nx_err_set(err, EBADMSG,
				  "Binding success response without XOR-MAPPED-ADDRESS or "
				  "MAPPED-ADDRESS");
	return 0;
}

/* --- building -------------------------------------------------------------------------- */

/* Appends to buf until it is full; from then on only remembers that it overflowed. */
struct writer {
	uint8_t *buf;
	size_t size;
	size_t len;
	bool overflow;
};

static uint8_t *w_reserve(struct writer *w, size_t n)
{
	uint8_t *p;

	if (w->overflow || n > w->size - w->len) {
		w->overflow = true;
		return NULL;
	}
	p = w->buf + w->len;
	w->len += n;
	return p;
}

static void w_header(struct writer *w, uint16_t type, const uint8_t txid[NX_STUN_TXID_LEN])
{
	uint8_t *p = w_reserve(w, NX_STUN_HEADER_LEN);

	if (!p)
		return;
	put16(p, type);
	put16(p + 2, 0);
	put32(p + 4, NX_STUN_MAGIC_COOKIE);
	memcpy(p + 8, txid, NX_STUN_TXID_LEN);
}

/* An attribute whose value is filled in by the caller; the padding is zeroed here.
 * vlen is at most a few hundred bytes: callers bound their texts. */
static uint8_t *w_attr(struct writer *w, uint16_t type, size_t vlen)
{
	uint8_t *p = w_reserve(w, ATTR_HEADER_LEN + pad4(vlen));

	if (!p)
		return NULL;
	put16(p, type);
	put16(p + 2, (uint16_t)vlen);
	memset(p + ATTR_HEADER_LEN + vlen, 0, pad4(vlen) - vlen);
	return p + ATTR_HEADER_LEN;
}

static void w_text(struct writer *w, uint16_t type, const char *text, size_t n)
{
	uint8_t *v = w_attr(w, type, n);

	if (v)
		memcpy(v, text, n);
}

static void w_address(struct writer *w, uint16_t type, const struct nx_stun_addr *a,
		      const uint8_t txid[NX_STUN_TXID_LEN])
{
	size_t alen = a->addr.family == AF_INET ? 4 : 16;
	const uint8_t *src = a->addr.family == AF_INET ? (const uint8_t *)&a->addr.v4
						       : (const uint8_t *)&a->addr.v6;
	uint8_t key[16];
	uint8_t *v = w_attr(w, type, 4 + alen);

	if (!v)
		return;
	xor_key(txid, key);
	v[0] = 0;
	v[1] = alen == 4 ? FAMILY_IPV4 : FAMILY_IPV6;
	put16(v + 2, a->port ^ (uint16_t)(NX_STUN_MAGIC_COOKIE >> 16));
	for (size_t i = 0; i < alen; i++)
		v[4 + i] = src[i] ^ key[i];
}

/* Adds FINGERPRINT and sets the length; returns the message length or -ENOSPC. */
static int w_finish(struct writer *w)
{
	uint8_t *v;

	if (w->overflow || w->size - w->len < FINGERPRINT_ATTR_LEN)
		return -ENOSPC;
	/* The length covers FINGERPRINT itself; the CRC covers everything before it. */
	put16(w->buf + 2, (uint16_t)(w->len + FINGERPRINT_ATTR_LEN - NX_STUN_HEADER_LEN));
	v = w_attr(w, NX_STUN_ATTR_FINGERPRINT, 4);
	put32(v, crc32_ieee(w->buf, w->len - FINGERPRINT_ATTR_LEN) ^ NX_STUN_FINGERPRINT_XOR);
	return (int)w->len;
}

/* strlen of a text to send, or -EINVAL when over NX_STUN_TEXT_MAX; 0 for NULL. */
static int text_len(const char *s)
{
	size_t n = s ? strnlen(s, NX_STUN_TEXT_MAX + 1) : 0;

	return n > NX_STUN_TEXT_MAX ? -EINVAL : (int)n;
}

int nx_stun_build_binding_request(uint8_t *buf, size_t size, const char *software,
				  uint8_t txid[NX_STUN_TXID_LEN])
{
	struct writer w = { .buf = buf, .size = size };
	int slen = text_len(software);

	if (slen < 0)
		return slen;
	if (RAND_bytes(txid, NX_STUN_TXID_LEN) != 1)
		return -EIO;
	w_header(&w, NX_STUN_BINDING_REQUEST, txid);
	if (software)
		w_text(&w, NX_STUN_ATTR_SOFTWARE, software, (size_t)slen);
	return w_finish(&w);
}

int nx_stun_build_binding_success(uint8_t *buf, size_t size, const uint8_t txid[NX_STUN_TXID_LEN],
				  const struct nx_stun_addr *mapped, const char *software)
{
	struct writer w = { .buf = buf, .size = size };
	int slen = text_len(software);

	if (slen < 0)
		return slen;
	if (mapped->addr.family != AF_INET && mapped->addr.family != AF_INET6)
		return -EAFNOSUPPORT;
	w_header(&w, NX_STUN_BINDING_SUCCESS, txid);
	w_address(&w, NX_STUN_ATTR_XOR_MAPPED_ADDRESS, mapped, txid);
	if (software)
		w_text(&w, NX_STUN_ATTR_SOFTWARE, software, (size_t)slen);
	return w_finish(&w);
}

int nx_stun_build_binding_error(uint8_t *buf, size_t size, const uint8_t txid[NX_STUN_TXID_LEN],
				uint16_t code, const char *reason, const uint16_t *unknown,
				size_t n_unknown, const char *software)
{
	struct writer w = { .buf = buf, .size = size };
	int slen = text_len(software);
	int rlen;
	uint8_t *v;

	if (!reason)
		for (size_t i = 0; i < sizeof(error_reasons) / sizeof(error_reasons[0]); i++)
			if (error_reasons[i].code == code)
				reason = error_reasons[i].reason;
	rlen = text_len(reason);
	if (slen < 0 || rlen < 0 || code < 300 || code > 699 || n_unknown > NX_STUN_MAX_UNKNOWN ||
	    (n_unknown > 0 && !unknown))
		return -EINVAL;

	w_header(&w, NX_STUN_BINDING_ERROR, txid);
	v = w_attr(&w, NX_STUN_ATTR_ERROR_CODE, 4 + (size_t)rlen);
	if (v) {
		put16(v, 0);
		v[2] = (uint8_t)(code / 100);
		v[3] = (uint8_t)(code % 100);
		if (rlen)
			memcpy(v + 4, reason, (size_t)rlen);
	}
	if (n_unknown > 0) {
		v = w_attr(&w, NX_STUN_ATTR_UNKNOWN_ATTRIBUTES, 2 * n_unknown);
		for (size_t i = 0; v && i < n_unknown; i++)
			put16(v + 2 * i, unknown[i]);
	}
	if (software)
		w_text(&w, NX_STUN_ATTR_SOFTWARE, software, (size_t)slen);
	return w_finish(&w);
}
