/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The request bodies of the network resources (VPCs, security groups, registration keys,
 * devices), checked before anything reaches the database.  These are pure functions of the
 * parsed JSON: they are unit-tested and fuzzed on their own, and a handler only runs SQL
 * with what they accepted.
 *
 * Every function fills field (the JSON path of the offending value, e.g.
 * "endpoints[1].address") and err (why, quoting the value) when it rejects something, so
 * that the API can answer {"error", "field", "reason"}.  Unknown fields are ignored, as the
 * original service (Go's encoding/json) does; a known field of the wrong type is an error;
 * null stands for "not given".
 */
#ifndef NEXSRV_API_INPUT_H
#define NEXSRV_API_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "lib/errmsg.h"
#include "lib/prefix.h"
#include "lib/strutil.h"
#include "lib/wgkey.h"

#define NEXSRV_INPUT_UUID_LEN	37 /* 36 + NUL */
#define NEXSRV_INPUT_FIELD_LEN	64
#define NEXSRV_DESCRIPTION_MAX	1024
#define NEXSRV_HOSTNAME_MAX	255
#define NEXSRV_OS_MAX		64
#define NEXSRV_SOURCE_MAX	300 /* "stun:" + host:port */
#define NEXSRV_DEVICE_MAX_EPS	32
#define NEXSRV_DEVICE_MAX_ADV	256
#define NEXSRV_SECGROUP_MAX	256 /* rules per direction */
#define NEXSRV_SECGROUP_RANGES	256 /* ip_ranges per rule */
#define NEXSRV_METADATA_KEY_MAX 256

/* Where and why: what the API reports for a rejected body. */
struct nexsrv_input_error {
	char field[NEXSRV_INPUT_FIELD_LEN];
	struct nx_err err;
};

/* A UUID in its canonical 8-4-4-4-12 hex form (either case). */
bool nexsrv_uuid_valid(const char *s);

/* Text without control characters, valid UTF-8 (json-c guarantees the UTF-8), at most max
 * bytes.  0 or -EINVAL with e filled for field. */
int nexsrv_input_text(const char *s, size_t max, const char *field, struct nexsrv_input_error *e);

/* --- VPCs ---------------------------------------------------------------------------------- */

#define NEXSRV_DEFAULT_IPV4_CIDR "100.64.0.0/10"
#define NEXSRV_DEFAULT_IPV6_CIDR "200::/64"

struct nexsrv_vpc_input {
	char organization_id[NEXSRV_INPUT_UUID_LEN]; /* "" when not given */
	const char *description;		     /* borrowed from the body; NULL: not given */
	struct nx_prefix ipv4_cidr, ipv6_cidr;	     /* the defaults unless given */
	bool private_cidr;
};

/*
 * POST /api/vpcs.  As the original: without private_cidr the pools must be the defaults (or
 * absent); with it, both must be given.  Pools must fit nexsrv_ipam_pool_check().
 * organization_id is required.
 */
int nexsrv_vpc_input_parse(struct json_object *body, struct nexsrv_vpc_input *in,
			   struct nexsrv_input_error *e);

/* --- security groups ----------------------------------------------------------------------- */

/*
 * One direction's rules (inbound_rules or outbound_rules; rules NULL or JSON null: none)
 * into a new, normalised JSON array in *out (json_object_put it): ip_protocol one of ipv4,
 * ipv6, icmp, icmpv4, icmpv6, tcp, udp (any case, stored lower case); from_port and to_port
 * 0-65535 with from_port <= to_port (0/0: any port); ip_ranges each an address, a CIDR or a
 * range "A-B" of one family with A <= B, in canonical text (none: any address), of the
 * protocol's family when it has one.  name is the field name for messages.
 */
int nexsrv_secgroup_rules_parse(struct json_object *rules, const char *name,
				struct json_object **out, struct nexsrv_input_error *e);

/* A security group body (models.AddSecurityGroup with create, else models.UpdateSecurityGroup):
 * vpc_id (create: required), description, and the rules of each direction, validated and
 * normalised as above (absent, or null in an update: unchanged). */
struct nexsrv_secgroup_input {
	char vpc_id[NEXSRV_INPUT_UUID_LEN];
	const char *description;      /* borrowed; NULL: not given */
	struct json_object *rules[2]; /* inbound_rules, outbound_rules (owned); NULL: not given */
};

extern const char *const nexsrv_secgroup_rule_keys[2]; /* "inbound_rules", "outbound_rules" */

int nexsrv_secgroup_input_parse(struct json_object *body, bool create,
				struct nexsrv_secgroup_input *in, struct nexsrv_input_error *e);
void nexsrv_secgroup_input_fini(struct nexsrv_secgroup_input *in);

/* --- registration keys --------------------------------------------------------------------- */

enum nexsrv_regkey_field {
	NEXSRV_RK_DESCRIPTION = 1u << 0,
	NEXSRV_RK_EXPIRES_AT = 1u << 1,
	NEXSRV_RK_SECURITY_GROUP = 1u << 2,
	NEXSRV_RK_SETTINGS = 1u << 3,
	NEXSRV_RK_SINGLE_USE = 1u << 4,
};

struct nexsrv_regkey_input {
	unsigned present;			       /* enum nexsrv_regkey_field bits */
	char vpc_id[NEXSRV_INPUT_UUID_LEN];	       /* create: required */
	const char *description;		       /* borrowed */
	bool single_use;			       /* create only */
	const char *expires_at;			       /* RFC 3339; NULL with the bit: none */
	char security_group_id[NEXSRV_INPUT_UUID_LEN]; /* "" with the bit: none */
	struct json_object *settings; /* borrowed object; NULL with the bit: none */
};

/*
 * POST (create) or PATCH a registration key (models.AddRegKey, models.UpdateRegKey).
 * expires_at: RFC 3339 ("2024-07-01T12:00:00Z", fractions and offsets allowed); in an
 * update null removes the expiry.  security_group_id: a UUID ("" or, in an update, null:
 * none).  settings: an object (null: none).
 */
int nexsrv_regkey_input_parse(struct json_object *body, bool create, struct nexsrv_regkey_input *in,
			      struct nexsrv_input_error *e);

/* Whether s is an RFC 3339 date-time (the syntax; the calendar is PostgreSQL's to check). */
bool nexsrv_input_rfc3339(const char *s);

/* --- devices ------------------------------------------------------------------------------- */

enum nexsrv_device_field {
	NEXSRV_DEV_VPC_ID = 1u << 0,
	NEXSRV_DEV_PUBLIC_KEY = 1u << 1,
	NEXSRV_DEV_HOSTNAME = 1u << 2,
	NEXSRV_DEV_OS = 1u << 3,
	NEXSRV_DEV_ENDPOINTS = 1u << 4,
	NEXSRV_DEV_ADVERTISE = 1u << 5,
	NEXSRV_DEV_IPV4_REQUEST = 1u << 6,
	NEXSRV_DEV_RELAY = 1u << 7,
	NEXSRV_DEV_SYMMETRIC_NAT = 1u << 8,
	NEXSRV_DEV_SECURITY_GROUP = 1u << 9,
	NEXSRV_DEV_PRIORITY = 1u << 10,
	NEXSRV_DEV_EXIT_NODE = 1u << 11,
};

/* The priority of a device's claims on the prefixes it advertises (see
 * migrations/0003_active_prefixes.sql): 0 unless set. */
#define NEXSRV_DEVICE_PRIORITY_MAX 1000

struct nexsrv_endpoint {
	char source[NEXSRV_SOURCE_MAX + 1]; /* "local" or "stun:<server>" */
	struct nx_addr addr;
	uint16_t port;
};

struct nexsrv_device_input {
	unsigned present; /* enum nexsrv_device_field bits: what the body set */
	char vpc_id[NEXSRV_INPUT_UUID_LEN];
	char public_key[NX_WG_KEY_B64_LEN];
	char hostname[NEXSRV_HOSTNAME_MAX + 1];
	char os[NEXSRV_OS_MAX + 1];
	char security_group_id[NEXSRV_INPUT_UUID_LEN]; /* "" with the bit set: none */
	bool relay;
	bool symmetric_nat;
	bool exit_node;
	unsigned priority; /* 0 to NEXSRV_DEVICE_PRIORITY_MAX */
	size_t n_endpoints;
	struct nexsrv_endpoint endpoints[NEXSRV_DEVICE_MAX_EPS];
	size_t n_advertise;
	struct nx_prefix advertise[NEXSRV_DEVICE_MAX_ADV]; /* normalised, no duplicates */
	size_t n_default;	     /* how many of them are default routes (0.0.0.0/0, ::/0) */
	size_t default_at;	     /* the index of the first, when there is one */
	struct nx_addr ipv4_request; /* with NEXSRV_DEV_IPV4_REQUEST */
};

enum nexsrv_device_mode {
	NEXSRV_DEVICE_CREATE, /* models.AddDevice: public_key required */
	NEXSRV_DEVICE_UPDATE, /* models.UpdateDevice: only what is present changes */
};

/*
 * A device body.  public_key: 44 characters of base64 giving 32 bytes.  endpoints: objects
 * {source, address} with address "A.B.C.D:PORT" or "[X:X::X:X]:PORT".  advertise_cidrs:
 * prefixes (a bare address is a host prefix), host bits clear, no duplicates; a default
 * route only with exit_node true in the same body (create: always; update: when exit_node
 * is given, else the handler checks the device's own exit_node).  exit_node: a boolean.
 * priority: an integer from 0 to NEXSRV_DEVICE_PRIORITY_MAX.  ipv4_tunnel_ips (create
 * only): at most one {address} of IPv4, the address asked for ("" or absent: any).
 * hostname, os: text.  security_group_id: a UUID, or null / "" for none.  vpc_id: a UUID.
 */
int nexsrv_device_input_parse(struct json_object *body, enum nexsrv_device_mode mode,
			      struct nexsrv_device_input *in, struct nexsrv_input_error *e);

/* The endpoints as the JSON array stored and served: [{"source", "address"}], canonical
 * addresses.  A new reference, NULL when out of memory. */
struct json_object *nexsrv_device_endpoints_json(const struct nexsrv_device_input *in);

/* The advertised prefixes as a PostgreSQL array literal ("{10.0.0.0/24,...}") into out
 * (growable).  0 or -ENOMEM. */
int nexsrv_device_advertise_literal(const struct nexsrv_device_input *in, struct nx_sbuf *out);

/* The rejection of a default route (in->advertise[in->default_at]) from a device that is
 * not an exit node: -EINVAL with e filled. */
int nexsrv_device_default_route_refused(const struct nexsrv_device_input *in,
					struct nexsrv_input_error *e);

/* A metadata key: 1-NEXSRV_METADATA_KEY_MAX bytes of text. */
int nexsrv_metadata_key_check(const char *key, struct nexsrv_input_error *e);

#endif /* NEXSRV_API_INPUT_H */
