/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for what nexd reads from the controller (nexd/nexd_device.h): the input is one
 * line of the watch stream; a device or VPC in it is parsed (as a change, as a delete, as an
 * enrolment answer) and checked against a VPC and this device's key.  Every rejection must
 * name why; what is accepted must be within bounds, printable, normalised and never a
 * default route once checked.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nexd/nexd_device.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(int rc, const struct nx_err *err)
{
	if (rc >= 0 || !err->msg[0])
		abort();
}

static void check_text(const char *s, size_t size)
{
	size_t n = strnlen(s, size);

	if (n == size)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

static void check_device(const struct nexd_device_info *d, bool deleted)
{
	if (strlen(d->id) != NEXD_UUID_LEN - 1 || d->revision < 0)
		abort();
	if (deleted)
		return;
	if (nx_wgkey_is_zero(&d->public_key) || strlen(d->vpc_id) != NEXD_UUID_LEN - 1)
		abort();
	check_text(d->hostname, NEXD_HOSTNAME_MAX);
	if (d->n_endpoints > NEXD_MAX_ENDPOINTS || d->n_advertise > NEXD_MAX_ADVERTISE)
		abort();
	if ((d->n_endpoints && !d->endpoints) || (d->n_advertise && !d->advertise))
		abort();
	if ((d->tunnel_ipv4.family != AF_UNSPEC && d->tunnel_ipv4.family != AF_INET) ||
	    (d->tunnel_ipv6.family != AF_UNSPEC && d->tunnel_ipv6.family != AF_INET6))
		abort();
	for (size_t i = 0; i < d->n_endpoints; i++) {
		check_text(d->endpoints[i].source, NEXD_ENDPOINT_SRC_MAX);
		if (d->endpoints[i].port == 0)
			abort();
	}
	for (size_t i = 0; i < d->n_advertise; i++) {
		struct nx_prefix n = d->advertise[i];

		nx_prefix_normalize(&n);
		if (nx_prefix_cmp(&n, &d->advertise[i]) != 0)
			abort();
		for (size_t j = 0; j < i; j++)
			if (nx_prefix_cmp(&d->advertise[j], &d->advertise[i]) == 0)
				abort();
	}
}

/* Checked against vpc: accepted means no default route and nothing over the pools. */
static void check_install(const struct nexd_device_info *d, const struct nexd_vpc_info *vpc)
{
	static const struct nx_wgkey self = { { 1, 2, 3 } };
	struct nx_err err = { "" };
	int rc = nexd_device_check(d, vpc, &self, &err);

	if (rc < 0) {
		check_error(rc, &err);
		return;
	}
	for (size_t i = 0; i < d->n_advertise; i++) {
		if (nx_prefix_is_default(&d->advertise[i]))
			abort();
		if (vpc && (nx_prefix_contains(&d->advertise[i], &vpc->ipv4_cidr) ||
			    nx_prefix_contains(&d->advertise[i], &vpc->ipv6_cidr)))
			abort();
	}
	if (vpc && d->tunnel_ipv4.family == AF_INET && vpc->ipv4_cidr.addr.family == AF_INET &&
	    !nx_prefix_contains_addr(&vpc->ipv4_cidr, &d->tunnel_ipv4))
		abort();
}

static void fuzz_device(const struct nx_jdoc *doc, size_t v, bool deleted)
{
	struct nexd_vpc_info vpc;
	struct nexd_device_info d;
	struct nx_err err = { "" };
	char token[64];
	int rc;

	rc = nexd_device_parse(doc, v, deleted, &d, &err);
	if (rc < 0) {
		check_error(rc, &err);
		if (d.endpoints || d.advertise)
			abort();
		return;
	}
	check_device(&d, deleted);
	memset(&vpc, 0, sizeof(vpc));
	if (nx_prefix_parse("100.64.0.0/10", &vpc.ipv4_cidr, 0, NULL) < 0 ||
	    nx_prefix_parse("200::/64", &vpc.ipv6_cidr, 0, NULL) < 0)
		abort();
	check_install(&d, &vpc);
	check_install(&d, NULL);
	nexd_device_info_clear(&d);

	memset(&err, 0, sizeof(err));
	rc = nexd_device_parse_created(doc, v, &d, token, sizeof(token), &err);
	if (rc < 0) {
		check_error(rc, &err);
		return;
	}
	if (strncmp(token, "DT:", 3) != 0)
		abort();
	nexd_device_info_clear(&d);
}

static void fuzz_vpc(const struct nx_jdoc *doc, size_t v)
{
	struct nexd_vpc_info vpc;
	struct nexd_device_info d;
	struct nx_prefix adv[2];
	struct nx_err err = { "" };
	int rc = nexd_vpc_parse(doc, v, &vpc, &err);

	if (rc < 0) {
		check_error(rc, &err);
		return;
	}
	if (strlen(vpc.id) != NEXD_UUID_LEN - 1 ||
	    (vpc.ipv4_cidr.addr.family != AF_UNSPEC && vpc.ipv4_cidr.addr.family != AF_INET) ||
	    (vpc.ipv6_cidr.addr.family != AF_UNSPEC && vpc.ipv6_cidr.addr.family != AF_INET6))
		abort();
	/* A fixed peer against the VPC that came in. */
	memset(&d, 0, sizeof(d));
	d.public_key.b[0] = 9;
	if (nx_addr_parse("100.64.0.5", &d.tunnel_ipv4, NULL) < 0 ||
	    nx_addr_parse("200::5", &d.tunnel_ipv6, NULL) < 0 ||
	    nx_prefix_parse("172.16.0.0/12", &adv[0], 0, NULL) < 0 ||
	    nx_prefix_parse("fd00::/8", &adv[1], 0, NULL) < 0)
		abort();
	d.advertise = adv;
	d.n_advertise = 2;
	check_install(&d, &vpc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct nx_jdoc doc; /* reused, as nexd reuses its own */
	struct nexd_event ev;
	struct nx_err err = { "" };
	int rc = nexd_event_parse(&doc, (const char *)data, size, &ev, &err);

	if (rc < 0) {
		check_error(rc, &err);
		if (ev.value)
			abort();
		return 0;
	}
	switch (ev.type) {
	case NEXD_EV_HEARTBEAT:
	case NEXD_EV_TAIL:
		if (ev.value)
			abort();
		break;
	case NEXD_EV_ERROR:
		check_text(ev.error, sizeof(ev.error));
		break;
	case NEXD_EV_CHANGE:
	case NEXD_EV_DELETE:
		if (!ev.value)
			abort();
		if (strcmp(ev.kind, "device") == 0) {
			fuzz_device(&doc, ev.value, ev.type == NEXD_EV_DELETE);
		} else if (strcmp(ev.kind, "vpc") == 0) {
			fuzz_vpc(&doc, ev.value);
		} else {
			/* Whatever the kind, the value is read every way. */
			fuzz_device(&doc, ev.value, false);
			fuzz_device(&doc, ev.value, true);
			fuzz_vpc(&doc, ev.value);
		}
		break;
	}
	return 0;
}
