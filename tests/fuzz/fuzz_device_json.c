/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for the validation of the network resources' request bodies
 * (nexsrv/nexsrv_api_input.h): the input is a JSON document, read as a device
 * enrolment and a device update, as a VPC, a registration key and a security
 * group (created and updated), and its inbound_rules / outbound_rules alone.  Every rejection
 * must name why; what is accepted must be canonical: endpoints print and parse
 * back to themselves, advertised prefixes are normalised, a default route only
 * for an exit node, never twice, and normalised rules validate again to the same text.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonutil.h"
#include "nexsrv/nexsrv_api_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(int rc, const struct nexsrv_input_error *e)
{
	if (rc != -EINVAL && rc != -ENOENT && rc != -ENOMEM)
		abort();
	if (!e->err.msg[0])
		abort();
}

static void check_device(struct json_object *body, enum nexsrv_device_mode mode,
			 struct nexsrv_device_input *in)
{
	struct nexsrv_input_error e = { "", { "" } };
	struct json_object *eps;
	struct nx_sbuf lit;
	int rc = nexsrv_device_input_parse(body, mode, in, &e);

	if (rc < 0) {
		check_error(rc, &e);
		return;
	}
	if (mode == NEXSRV_DEVICE_CREATE && !(in->present & NEXSRV_DEV_PUBLIC_KEY))
		abort();
	if (in->n_endpoints > NEXSRV_DEVICE_MAX_EPS || in->n_advertise > NEXSRV_DEVICE_MAX_ADV)
		abort();
	for (size_t i = 0; i < in->n_advertise; i++) {
		struct nx_prefix n = in->advertise[i];

		nx_prefix_normalize(&n);
		if (nx_prefix_cmp(&n, &in->advertise[i]) != 0)
			abort();
		/* A default route is an exit node's; an update that leaves exit_node out
		 * defers the check to the handler, which knows the device. */
		if (nx_prefix_is_default(&n) && !in->exit_node &&
		    (mode == NEXSRV_DEVICE_CREATE || (in->present & NEXSRV_DEV_EXIT_NODE)))
			abort();
		for (size_t j = 0; j < i; j++)
			if (nx_prefix_cmp(&in->advertise[j], &in->advertise[i]) == 0)
				abort();
	}
	eps = nexsrv_device_endpoints_json(in);
	if (!eps || json_object_array_length(eps) != in->n_endpoints)
		abort();
	for (size_t i = 0; i < in->n_endpoints; i++) {
		const char *addr = NULL;
		struct nx_addr a;
		uint16_t port;

		if (nx_json_get_string(json_object_array_get_idx(eps, i), "address", &addr, NULL) <
			    0 ||
		    nx_endpoint_parse(addr, &a, &port, NULL) < 0 ||
		    !nx_addr_eq(&a, &in->endpoints[i].addr) || port != in->endpoints[i].port)
			abort();
	}
	json_object_put(eps);
	nx_sbuf_init(&lit, NULL, 0);
	if (nexsrv_device_advertise_literal(in, &lit) < 0 || nx_sbuf_str(&lit)[0] != '{')
		abort();
	nx_sbuf_fini(&lit);
}

static void check_rules(struct json_object *body, const char *key)
{
	struct nexsrv_input_error e = { "", { "" } };
	struct json_object *rules = NULL, *out = NULL, *again = NULL;
	char *t1, *t2;
	int rc;

	if (!json_object_object_get_ex(body, key, &rules))
		return;
	rc = nexsrv_secgroup_rules_parse(rules, key, &out, &e);
	if (rc < 0) {
		check_error(rc, &e);
		if (out)
			abort();
		return;
	}
	/* Normalised rules are accepted as they are. */
	if (nexsrv_secgroup_rules_parse(out, key, &again, &e) < 0)
		abort();
	t1 = nx_json_to_string(out, NX_JSON_PLAIN);
	t2 = nx_json_to_string(again, NX_JSON_PLAIN);
	if (!t1 || !t2 || strcmp(t1, t2) != 0)
		abort();
	free(t1);
	free(t2);
	json_object_put(out);
	json_object_put(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nexsrv_device_input *in;
	struct nexsrv_input_error e = { "", { "" } };
	struct nexsrv_vpc_input vpc;
	struct nexsrv_regkey_input rk;
	struct json_object *body;
	int rc;

	body = nx_json_parse((const char *)data, size, NX_JSON_DEFAULT_DEPTH, NULL);
	if (!body)
		return 0;
	in = malloc(sizeof(*in));
	if (!in)
		abort();
	check_device(body, NEXSRV_DEVICE_CREATE, in);
	check_device(body, NEXSRV_DEVICE_UPDATE, in);
	free(in);

	rc = nexsrv_vpc_input_parse(body, &vpc, &e);
	if (rc < 0)
		check_error(rc, &e);
	else if (vpc.ipv4_cidr.addr.family != AF_INET || vpc.ipv6_cidr.addr.family != AF_INET6 ||
		 !nexsrv_uuid_valid(vpc.organization_id))
		abort();
	for (int create = 0; create < 2; create++) {
		memset(&e, 0, sizeof(e));
		rc = nexsrv_regkey_input_parse(body, create, &rk, &e);
		if (rc < 0)
			check_error(rc, &e);
		else if (rk.expires_at && !nexsrv_input_rfc3339(rk.expires_at))
			abort();
	}
	for (int create = 0; create < 2; create++) {
		struct nexsrv_secgroup_input sg;

		memset(&e, 0, sizeof(e));
		rc = nexsrv_secgroup_input_parse(body, create, &sg, &e);
		if (rc < 0) {
			check_error(rc, &e);
			if (sg.rules[0] || sg.rules[1])
				abort();
		} else if (create && !nexsrv_uuid_valid(sg.vpc_id)) {
			abort();
		}
		nexsrv_secgroup_input_fini(&sg);
	}
	if (json_object_is_type(body, json_type_object)) {
		check_rules(body, "inbound_rules");
		check_rules(body, "outbound_rules");
	}
	json_object_put(body);
	return 0;
}
