/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the controller tells nexd, parsed and checked before it can touch the dataplane: the
 * lines of the watch stream, the devices (peers) and the VPC they share.  Everything here is
 * untrusted input: a malformed or hostile object is refused with a message naming the field,
 * one object at a time, and never reaches WireGuard or the routing table.
 */
#ifndef NEXD_DEVICE_H
#define NEXD_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/errmsg.h"
#include "lib/jsondoc.h"
#include "lib/prefix.h"
#include "lib/wgkey.h"

#define NEXD_UUID_LEN	      37 /* 36 characters + NUL */
#define NEXD_HOSTNAME_MAX     256
#define NEXD_MAX_ENDPOINTS    32
#define NEXD_MAX_ADVERTISE    256
#define NEXD_ENDPOINT_SRC_MAX 301 /* nexsrv accepts 300 bytes */

/* One line of the watch stream. */
enum nexd_event_type {
	NEXD_EV_HEARTBEAT, /* an empty line */
	NEXD_EV_CHANGE,
	NEXD_EV_DELETE,
	NEXD_EV_TAIL,
	NEXD_EV_ERROR,
};

#define NEXD_EV_ERR_TOO_OLD 410 /* resume point purged: watch again from revision 0 */

struct nexd_event {
	enum nexd_event_type type;
	char kind[24];	 /* "device", "vpc", "security-group", "device-metadata", "" */
	size_t value;	 /* change, delete: the value's token; 0 for the others */
	int error_code;	 /* NEXD_EV_ERROR: value.code (e.g. NEXD_EV_ERR_TOO_OLD) */
	char error[256]; /* NEXD_EV_ERROR: value.error */
};

/* Parses one line into doc (whose tokens it reuses; line must outlive the event's use). */
int nexd_event_parse(struct nx_jdoc *doc, const char *line, size_t len, struct nexd_event *ev,
		     struct nx_err *err);

struct nexd_endpoint {
	char source[NEXD_ENDPOINT_SRC_MAX]; /* "local", "stun:HOST:PORT" */
	struct nx_addr addr;
	uint16_t port;
};

/* An endpoint a device reported: kept per peer, so the text is sized to what was sent. */
struct nexd_device_endpoint {
	char *source; /* malloc'd: "local", "stun:HOST:PORT", ...; < NEXD_ENDPOINT_SRC_MAX */
	struct nx_addr addr;
	uint16_t port;
};

/* A device of the VPC as the controller describes it.  One is held per peer, so the text
 * fields are malloc'd to their length rather than kept at their maximum size. */
struct nexd_device_info {
	char id[NEXD_UUID_LEN];
	char vpc_id[NEXD_UUID_LEN];
	char *hostname; /* malloc'd, < NEXD_HOSTNAME_MAX; "" when absent, NULL only when zeroed */
	struct nx_wgkey public_key;
	struct nx_addr tunnel_ipv4; /* AF_UNSPEC when absent */
	struct nx_addr tunnel_ipv6;
	struct nx_prefix *advertise; /* advertise_cidrs, normalized; malloc'd */
	size_t n_advertise;
	/* active_cidrs: the advertised prefixes the controller made this device the active
	 * holder of; when has_active is false (a controller that does not elect), all are. */
	struct nx_prefix *active;
	size_t n_active;
	bool has_active;
	struct nexd_device_endpoint *endpoints; /* malloc'd, each with its source */
	size_t n_endpoints;
	bool relay;
	bool symmetric_nat;
	bool online;
	int64_t revision;
};

/* A device object (a "device" event's value, a list element, POST /api/devices' answer).
 * For a delete's value only id (and revision) are required. */
int nexd_device_parse(const struct nx_jdoc *doc, size_t v, bool deleted,
		      struct nexd_device_info *out, struct nx_err *err);
/* Frees what a parse allocated; the struct is then zeroed. */
void nexd_device_info_clear(struct nexd_device_info *d);

struct nexd_vpc_info {
	char id[NEXD_UUID_LEN];
	struct nx_prefix ipv4_cidr; /* AF_UNSPEC when absent */
	struct nx_prefix ipv6_cidr;
	int64_t revision;
};

int nexd_vpc_parse(const struct nx_jdoc *doc, size_t v, struct nexd_vpc_info *out,
		   struct nx_err *err);

/* Whether a peer may be installed: its tunnel addresses lie inside the VPC's pools, it is not
 * this device (self_key), no advertised prefix is a default route unless exit_ok, none covers
 * the VPC's pools or another peer's tunnel address is left to the caller.  Names the reason. */
int nexd_device_check(const struct nexd_device_info *d, const struct nexd_vpc_info *vpc,
		      const struct nx_wgkey *self_key, struct nx_err *err);

/* The answer to device creation: the device plus its bearer_token ("DT:..."). */
int nexd_device_parse_created(const struct nx_jdoc *doc, size_t v, struct nexd_device_info *out,
			      char *token, size_t token_size, struct nx_err *err);

#endif /* NEXD_DEVICE_H */
