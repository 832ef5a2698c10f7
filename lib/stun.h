/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * STUN (RFC 8489, and RFC 5389 which it replaces) Binding messages: how a host behind a NAT
 * learns the address and port the outside sees it at.  The controller answers Binding
 * requests; the agent asks them and has to tell STUN from WireGuard on the one UDP port it
 * shares with the tunnel.  Both sides share this codec.
 *
 * Only what Binding needs is interpreted: XOR-MAPPED-ADDRESS, MAPPED-ADDRESS (what RFC 3489
 * servers send), SOFTWARE, ERROR-CODE, UNKNOWN-ATTRIBUTES and FINGERPRINT.  Everything
 * arrives from the network, so the decoder checks every length against the datagram and
 * refuses, with a message saying why, anything that does not add up.  MESSAGE-INTEGRITY is
 * recognised and stepped over but not verified: this codec carries no credentials.
 */
#ifndef NX_STUN_H
#define NX_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/errmsg.h"
#include "lib/prefix.h"

#define NX_STUN_MAGIC_COOKIE	0x2112A442u
#define NX_STUN_FINGERPRINT_XOR 0x5354554eu /* "STUN" */
#define NX_STUN_HEADER_LEN	20
#define NX_STUN_TXID_LEN	12
#define NX_STUN_DEFAULT_PORT	3478

/* Longest SOFTWARE value and ERROR-CODE reason phrase in bytes (128 characters). */
#define NX_STUN_TEXT_MAX    763
/* Most attribute types kept in struct nx_stun_msg's lists, and accepted by the error builder. */
#define NX_STUN_MAX_UNKNOWN 16
/* Room for any message the builders make (text at most NX_STUN_TEXT_MAX bytes each). */
#define NX_STUN_BUILD_MAX   2048

/* Message classes; the 14-bit message type interleaves them with a 12-bit method. */
enum nx_stun_class {
	NX_STUN_CLASS_REQUEST = 0,
	NX_STUN_CLASS_INDICATION = 1,
	NX_STUN_CLASS_SUCCESS = 2,
	NX_STUN_CLASS_ERROR = 3,
};

#define NX_STUN_METHOD_BINDING 0x001

/* The Binding message types. */
#define NX_STUN_BINDING_REQUEST	   0x0001
#define NX_STUN_BINDING_INDICATION 0x0011
#define NX_STUN_BINDING_SUCCESS	   0x0101
#define NX_STUN_BINDING_ERROR	   0x0111

/* Attribute types; below 0x8000 a receiver must understand them (comprehension-required). */
enum {
	NX_STUN_ATTR_MAPPED_ADDRESS = 0x0001,
	NX_STUN_ATTR_USERNAME = 0x0006,
	NX_STUN_ATTR_MESSAGE_INTEGRITY = 0x0008,
	NX_STUN_ATTR_ERROR_CODE = 0x0009,
	NX_STUN_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,
	NX_STUN_ATTR_REALM = 0x0014,
	NX_STUN_ATTR_NONCE = 0x0015,
	NX_STUN_ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001C,
	NX_STUN_ATTR_PASSWORD_ALGORITHM = 0x001D,
	NX_STUN_ATTR_USERHASH = 0x001E,
	NX_STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
	NX_STUN_ATTR_PRIORITY = 0x0024,
	NX_STUN_ATTR_USE_CANDIDATE = 0x0025,
	NX_STUN_ATTR_PASSWORD_ALGORITHMS = 0x8002,
	NX_STUN_ATTR_ALTERNATE_DOMAIN = 0x8003,
	NX_STUN_ATTR_SOFTWARE = 0x8022,
	NX_STUN_ATTR_ALTERNATE_SERVER = 0x8023,
	NX_STUN_ATTR_FINGERPRINT = 0x8028,
	NX_STUN_ATTR_ICE_CONTROLLED = 0x8029,
	NX_STUN_ATTR_ICE_CONTROLLING = 0x802A,
	NX_STUN_ATTR_RESPONSE_ORIGIN = 0x802B,
	NX_STUN_ATTR_OTHER_ADDRESS = 0x802C,
};

/* Error codes (ERROR-CODE) this suite sends or looks for. */
#define NX_STUN_ERR_BAD_REQUEST	      400
#define NX_STUN_ERR_UNKNOWN_ATTRIBUTE 420
#define NX_STUN_ERR_SERVER_ERROR      500

/* A transport address as STUN carries it; port in host byte order. */
struct nx_stun_addr {
	struct nx_addr addr;
	uint16_t port;
};

/*
 * A decoded message.  The text fields point into the decoded buffer (not NUL-terminated,
 * not validated as UTF-8) and are valid as long as it is.  For repeated attributes the
 * first occurrence counts.  Attributes after MESSAGE-INTEGRITY(-SHA256), other than the
 * ones allowed to follow it, are ignored as RFC 8489 §14.5 requires.
 */
struct nx_stun_msg {
	uint16_t type; /* message type: method and class */
	uint8_t txid[NX_STUN_TXID_LEN];

	bool has_xor_mapped;
	struct nx_stun_addr xor_mapped; /* XOR-MAPPED-ADDRESS, un-XORed */
	bool has_mapped;
	struct nx_stun_addr mapped; /* MAPPED-ADDRESS */
	bool has_software;
	const uint8_t *software;
	size_t software_len;
	bool has_error;
	uint16_t error_code; /* 300-699 */
	const uint8_t *error_reason;
	size_t error_reason_len;
	/* UNKNOWN-ATTRIBUTES: the types it lists (the first NX_STUN_MAX_UNKNOWN of them). */
	bool has_unknown_attrs;
	uint16_t unknown_attrs[NX_STUN_MAX_UNKNOWN];
	size_t n_unknown_attrs;
	bool has_integrity;   /* MESSAGE-INTEGRITY or -SHA256 present (not verified) */
	bool has_fingerprint; /* FINGERPRINT present, and it matched */
	/* Comprehension-required attribute types this codec does not know, each once, in order
	 * of appearance (the first NX_STUN_MAX_UNKNOWN of them). */
	uint16_t unknown_required[NX_STUN_MAX_UNKNOWN];
	size_t n_unknown_required;
};

/*
 * Quick classifier for a datagram on a port shared with another protocol: true when it has
 * the shape of a STUN message — at least a header, the first two bits zero, the magic
 * cookie, and a length field that is a multiple of 4 and accounts for exactly the rest of
 * the datagram.  (A WireGuard message never passes: its length field bytes are zero and it
 * is longer than 20 bytes.)  The message itself is not checked; decode it for that.
 */
bool nx_stun_is_stun(const void *buf, size_t len);

/* Message type from method and class, and back. */
uint16_t nx_stun_type(uint16_t method, enum nx_stun_class cls);
uint16_t nx_stun_type_method(uint16_t type);
enum nx_stun_class nx_stun_type_class(uint16_t type);

/* "Binding request", "Binding success response", ...; "method 0x002 request" for methods
 * without a name.  Writes into buf (always NUL-terminated when size > 0) and returns it. */
char *nx_stun_type_format(uint16_t type, char *buf, size_t size);

/* "XOR-MAPPED-ADDRESS", ..., or NULL for a type this codec does not know. */
const char *nx_stun_attr_name(uint16_t type);

/*
 * Decodes any STUN message, one whole datagram.  0 on success; -EBADMSG when it is not a
 * well-formed STUN message: shorter than a header, first bits set, wrong magic cookie, a
 * length not a multiple of 4 or not matching the datagram, an attribute overrunning the
 * message, a known attribute of the wrong size or with a bad value (address family,
 * error class), anything after FINGERPRINT, or a FINGERPRINT that does not match.  err says
 * which.  Unknown attributes are not an error here (see n_unknown_required).
 * *msg is written in any case; it is meaningful only on success.
 */
int nx_stun_decode(const uint8_t *buf, size_t len, struct nx_stun_msg *msg, struct nx_err *err);

/*
 * Decodes a datagram that should be a Binding request.  0 on success; -EBADMSG as for
 * nx_stun_decode(); -ENOMSG for a well-formed message that is not a Binding request;
 * -ENOTSUP for a Binding request carrying comprehension-required attributes this codec
 * does not know — *msg is then complete, and the answer is a 420 error listing
 * msg->unknown_required.
 */
int nx_stun_decode_request(const uint8_t *buf, size_t len, struct nx_stun_msg *msg,
			   struct nx_err *err);

/*
 * Parses a datagram that should answer the Binding request with transaction id txid and
 * stores the mapped address: XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS when only that is
 * present.  0 on success; -EBADMSG as for nx_stun_decode() and for a success response
 * without a mapped address; -ESRCH for a message of another transaction (keep waiting);
 * -ENOMSG when it is not a Binding response; -ENOTSUP for a response with unknown
 * comprehension-required attributes; -EPROTO for an error response (code and reason in
 * err).  *mapped is written only on success.
 */
int nx_stun_parse_binding_response(const uint8_t *buf, size_t len,
				   const uint8_t txid[NX_STUN_TXID_LEN],
				   struct nx_stun_addr *mapped, struct nx_err *err);

/*
 * Builders.  Each writes one message into buf (size bytes; NX_STUN_BUILD_MAX is always
 * enough) ending with FINGERPRINT, and returns its length; -ENOSPC when buf is too small,
 * -EINVAL for a text longer than NX_STUN_TEXT_MAX, too many unknown attributes or an error
 * code outside 300-699, -EAFNOSUPPORT for an address that is neither IPv4 nor IPv6.
 * software (may be NULL) is sent as SOFTWARE.
 */

/* A Binding request with a fresh random transaction id, stored in txid (-EIO when the
 * random generator fails). */
int nx_stun_build_binding_request(uint8_t *buf, size_t size, const char *software,
				  uint8_t txid[NX_STUN_TXID_LEN]);

/* The success response to transaction txid telling the requester it was seen at mapped
 * (as XOR-MAPPED-ADDRESS; an IPv4-mapped IPv6 address is sent as is, so convert it first
 * when the request came in over IPv4 on a dual-stack socket). */
int nx_stun_build_binding_success(uint8_t *buf, size_t size, const uint8_t txid[NX_STUN_TXID_LEN],
				  const struct nx_stun_addr *mapped, const char *software);

/* The error response to transaction txid: ERROR-CODE code with reason (NULL: the standard
 * phrase for 300, 400, 401, 403, 420, 438 and 500, else none) and, when n_unknown > 0,
 * UNKNOWN-ATTRIBUTES listing unknown[0..n_unknown). */
int nx_stun_build_binding_error(uint8_t *buf, size_t size, const uint8_t txid[NX_STUN_TXID_LEN],
				uint16_t code, const char *reason, const uint16_t *unknown,
				size_t n_unknown, const char *software);

#endif /* NX_STUN_H */
