/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Validation of the network resources' request bodies (nexsrv_api_input.h): what a client
 * may send is decided here, without a database, so that it can be fuzzed and so that the
 * handlers only ever store values in one canonical spelling.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/jsonutil.h"
#include "nexsrv/nexsrv_api_input.h"
#include "nexsrv/nexsrv_ipam.h"

/* --- helpers ------------------------------------------------------------------------------- */

static int fail(struct nexsrv_input_error *e, int code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct nexsrv_input_error *e, int code, const char *field, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		nx_strlcpy(e->field, field, sizeof(e->field));
		va_start(ap, fmt);
		vsnprintf(e->err.msg, sizeof(e->err.msg), fmt, ap);
		va_end(ap);
	}
	return -code;
}

/* The message of a nx_json_get_* / parser error, relabelled to field. */
static int fail_err(struct nexsrv_input_error *e, int code, const char *field,
		    const struct nx_err *why)
{
	return fail(e, code < 0 ? -code : code, field, "%s", why->msg[0] ? why->msg : "invalid");
}

/* A member of obj: 1 with *v set when present and not null, 0 when absent or null. */
static int member(struct json_object *obj, const char *key, struct json_object **v)
{
	*v = NULL;
	if (!json_object_object_get_ex(obj, key, v) || !*v)
		return 0;
	return 1;
}

/* An optional string member; -EINVAL for another type or a NUL inside. */
static int opt_string(struct json_object *obj, const char *key, const char *field, const char **out,
		      struct nexsrv_input_error *e)
{
	struct json_object *v;
	const char *s;

	if (!member(obj, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return fail(e, EINVAL, field, "must be a string, got %s", nx_json_type_name(v));
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v))
		return fail(e, EINVAL, field, "contains a NUL character");
	*out = s;
	return 1;
}

static int opt_bool(struct json_object *obj, const char *key, bool *out,
		    struct nexsrv_input_error *e)
{
	struct json_object *v;

	if (!member(obj, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return fail(e, EINVAL, key, "must be a boolean, got %s", nx_json_type_name(v));
	*out = json_object_get_boolean(v);
	return 1;
}

static int opt_array(struct json_object *obj, const char *key, struct json_object **out,
		     struct nexsrv_input_error *e)
{
	struct json_object *v;

	if (!member(obj, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return fail(e, EINVAL, key, "must be an array, got %s", nx_json_type_name(v));
	*out = v;
	return 1;
}

bool nexsrv_uuid_valid(const char *s)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

	if (!s || strlen(s) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++) {
		if (shape[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

int nexsrv_input_text(const char *s, size_t max, const char *field, struct nexsrv_input_error *e)
{
	size_t n = strlen(s);

	if (n > max)
		return fail(e, EINVAL, field, "is %zu bytes long, at most %zu are allowed", n, max);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return fail(e, EINVAL, field, "contains a control character at offset %zu",
				    i);
	}
	return 0;
}

/* An optional UUID member into out ("" when absent, null or, with empty_ok, ""). */
static int opt_uuid(struct json_object *obj, const char *key, bool empty_ok, char *out,
		    struct nexsrv_input_error *e)
{
	const char *s = NULL;
	char q[48];
	int rc = opt_string(obj, key, key, &s, e);

	out[0] = '\0';
	if (rc <= 0)
		return rc;
	if (empty_ok && !s[0])
		return 1;
	if (!nexsrv_uuid_valid(s))
		return fail(e, EINVAL, key, "\"%s\" is not a UUID",
			    nx_str_printable(q, sizeof(q), s));
	for (size_t i = 0; i < NEXSRV_INPUT_UUID_LEN - 1; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[NEXSRV_INPUT_UUID_LEN - 1] = '\0';
	return 1;
}

/* --- VPCs ---------------------------------------------------------------------------------- */

static int vpc_pool(struct json_object *body, const char *key, sa_family_t family,
		    const char *deflt, bool private_cidr, struct nx_prefix *out,
		    struct nexsrv_input_error *e)
{
	struct nx_prefix def;
	struct nx_err why = { "" };
	const char *s = NULL;
	int rc;

	nx_prefix_parse(deflt, &def, 0, NULL);
	*out = def;
	rc = opt_string(body, key, key, &s, e);
	if (rc < 0)
		return rc;
	if (rc == 0 || !s[0]) {
		if (private_cidr)
			return fail(e, ENOENT, key, "required when private_cidr is set");
		return 0;
	}
	if (nx_prefix_parse(s, out, 0, &why) < 0)
		return fail_err(e, EINVAL, key, &why);
	if (out->addr.family != family)
		return fail(e, EINVAL, key, "must be an %s prefix",
			    family == AF_INET ? "IPv4" : "IPv6");
	if (nexsrv_ipam_pool_check(out, &why) < 0)
		return fail_err(e, EINVAL, key, &why);
	if (!private_cidr && nx_prefix_cmp(out, &def) != 0)
		return fail(e, EINVAL, key, "must be '%s' or not set when private_cidr is not set",
			    deflt);
	return 0;
}

int nexsrv_vpc_input_parse(struct json_object *body, struct nexsrv_vpc_input *in,
			   struct nexsrv_input_error *e)
{
	int rc;

	memset(in, 0, sizeof(*in));
	if (!json_object_is_type(body, json_type_object))
		return fail(e, EINVAL, "", "the body must be a JSON object, got %s",
			    nx_json_type_name(body));
	rc = opt_uuid(body, "organization_id", false, in->organization_id, e);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return fail(e, ENOENT, "organization_id", "required");
	rc = opt_string(body, "description", "description", &in->description, e);
	if (rc < 0)
		return rc;
	if (in->description &&
	    nexsrv_input_text(in->description, NEXSRV_DESCRIPTION_MAX, "description", e) < 0)
		return -EINVAL;
	rc = opt_bool(body, "private_cidr", &in->private_cidr, e);
	if (rc < 0)
		return rc;
	rc = vpc_pool(body, "ipv4_cidr", AF_INET, NEXSRV_DEFAULT_IPV4_CIDR, in->private_cidr,
		      &in->ipv4_cidr, e);
	if (rc < 0)
		return rc;
	return vpc_pool(body, "ipv6_cidr", AF_INET6, NEXSRV_DEFAULT_IPV6_CIDR, in->private_cidr,
			&in->ipv6_cidr, e);
}

/* --- security groups ----------------------------------------------------------------------- */

enum proto_family {
	FAM_ANY,
	FAM_V4,
	FAM_V6,
};

static const struct {
	const char *name;
	enum proto_family family;
} protocols[] = {
	{ "ipv4", FAM_V4 },   { "ipv6", FAM_V6 }, { "icmp", FAM_ANY }, { "icmpv4", FAM_V4 },
	{ "icmpv6", FAM_V6 }, { "tcp", FAM_ANY }, { "udp", FAM_ANY },
};

static int rule_port(struct json_object *rule, const char *key, const char *field, int64_t *out,
		     struct nexsrv_input_error *e)
{
	struct json_object *v;

	*out = 0;
	if (!member(rule, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return fail(e, EINVAL, field, "must be an integer, got %s", nx_json_type_name(v));
	*out = json_object_get_int64(v);
	if (*out < 0 || *out > 65535 ||
	    (*out == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX))
		return fail(e, EINVAL, field, "%s is not a port (0-65535)",
			    json_object_get_string(v));
	return 0;
}

/* One ip_ranges entry into canonical text (out of NX_PREFIX_STRLEN * 2 bytes). */
static int rule_range(const char *s, enum proto_family fam, const char *field, char *out,
		      size_t size, struct nexsrv_input_error *e)
{
	struct nx_err why = { "" };
	sa_family_t family;
	const char *dash = strchr(s, '-');

	if (dash) {
		struct nx_addr a, b;
		char as[NX_ADDR_STRLEN], bs[NX_ADDR_STRLEN];

		if (nx_addr_parse_n(s, (size_t)(dash - s), &a, &why) < 0 ||
		    nx_addr_parse(dash + 1, &b, &why) < 0)
			return fail_err(e, EINVAL, field, &why);
		if (a.family != b.family)
			return fail(e, EINVAL, field, "a range cannot mix IPv4 and IPv6");
		if (nx_addr_cmp(&a, &b) > 0)
			return fail(e, EINVAL, field, "range start %s is after its end %s",
				    nx_addr_format(&a, as, sizeof(as)),
				    nx_addr_format(&b, bs, sizeof(bs)));
		snprintf(out, size, "%s-%s", nx_addr_format(&a, as, sizeof(as)),
			 nx_addr_format(&b, bs, sizeof(bs)));
		family = a.family;
	} else if (strchr(s, '/')) {
		struct nx_prefix p;

		if (nx_prefix_parse(s, &p, NX_PREFIX_STRICT, &why) < 0)
			return fail_err(e, EINVAL, field, &why);
		nx_prefix_format(&p, out, size);
		family = p.addr.family;
	} else {
		struct nx_addr a;

		if (nx_addr_parse(s, &a, &why) < 0)
			return fail_err(e, EINVAL, field, &why);
		nx_addr_format(&a, out, size);
		family = a.family;
	}
	if ((fam == FAM_V4 && family != AF_INET) || (fam == FAM_V6 && family != AF_INET6))
		return fail(e, EINVAL, field, "an %s address in a rule of an %s protocol",
			    family == AF_INET ? "IPv4" : "IPv6", fam == FAM_V4 ? "IPv4" : "IPv6");
	return 0;
}

static int rule_parse(struct json_object *rule, const char *where, struct json_object *out,
		      struct nexsrv_input_error *e)
{
	char field[NEXSRV_INPUT_FIELD_LEN], text[2 * NX_PREFIX_STRLEN + 2], q[40];
	struct json_object *ranges = NULL, *list;
	const char *proto = NULL;
	enum proto_family fam = FAM_ANY;
	int64_t from, to;
	size_t i, n;
	int rc;

	if (!json_object_is_type(rule, json_type_object))
		return fail(e, EINVAL, where, "must be an object, got %s", nx_json_type_name(rule));
	snprintf(field, sizeof(field), "%s.ip_protocol", where);
	rc = opt_string(rule, "ip_protocol", field, &proto, e);
	if (rc < 0)
		return rc;
	if (rc == 0 || !proto[0])
		return fail(e, ENOENT, field,
			    "required (ipv4, ipv6, icmp, icmpv4, icmpv6, tcp, udp)");
	for (i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++)
		if (strcasecmp(proto, protocols[i].name) == 0)
			break;
	if (i == sizeof(protocols) / sizeof(protocols[0]))
		return fail(e, EINVAL, field,
			    "\"%s\" is not one of ipv4, ipv6, icmp, icmpv4, icmpv6, tcp, udp",
			    nx_str_printable(q, sizeof(q), proto));
	fam = protocols[i].family;
	json_object_object_add(out, "ip_protocol", json_object_new_string(protocols[i].name));

	snprintf(field, sizeof(field), "%s.from_port", where);
	if (rule_port(rule, "from_port", field, &from, e) < 0)
		return -EINVAL;
	snprintf(field, sizeof(field), "%s.to_port", where);
	if (rule_port(rule, "to_port", field, &to, e) < 0)
		return -EINVAL;
	if (from > to)
		return fail(e, EINVAL, field, "from_port %lld is above to_port %lld",
			    (long long)from, (long long)to);
	json_object_object_add(out, "from_port", json_object_new_int64(from));
	json_object_object_add(out, "to_port", json_object_new_int64(to));

	snprintf(field, sizeof(field), "%s.ip_ranges", where);
	if (member(rule, "ip_ranges", &ranges) && !json_object_is_type(ranges, json_type_array))
		return fail(e, EINVAL, field, "must be an array, got %s",
			    nx_json_type_name(ranges));
	n = ranges ? json_object_array_length(ranges) : 0;
	if (n > NEXSRV_SECGROUP_RANGES)
		return fail(e, EINVAL, field, "has %zu entries, at most %d are allowed", n,
			    NEXSRV_SECGROUP_RANGES);
	list = json_object_new_array();
	json_object_object_add(out, "ip_ranges", list);
	for (i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(ranges, i);

		snprintf(field, sizeof(field), "%s.ip_ranges[%zu]", where, i);
		if (!json_object_is_type(v, json_type_string))
			return fail(e, EINVAL, field, "must be a string, got %s",
				    nx_json_type_name(v));
		if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
			return fail(e, EINVAL, field, "contains a NUL character");
		if (rule_range(json_object_get_string(v), fam, field, text, sizeof(text), e) < 0)
			return -EINVAL;
		json_object_array_add(list, json_object_new_string(text));
	}
	return 0;
}

int nexsrv_secgroup_rules_parse(struct json_object *rules, const char *name,
				struct json_object **out, struct nexsrv_input_error *e)
{
	struct json_object *list;
	size_t n;
	int rc;

	*out = NULL;
	if (rules && !json_object_is_type(rules, json_type_array))
		return fail(e, EINVAL, name, "must be an array, got %s", nx_json_type_name(rules));
	n = rules ? json_object_array_length(rules) : 0;
	if (n > NEXSRV_SECGROUP_MAX)
		return fail(e, EINVAL, name, "has %zu rules, at most %d are allowed", n,
			    NEXSRV_SECGROUP_MAX);
	list = json_object_new_array();
	if (!list)
		return fail(e, ENOMEM, name, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct json_object *rule = json_object_new_object();
		char where[NEXSRV_INPUT_FIELD_LEN];

		if (!rule) {
			json_object_put(list);
			return fail(e, ENOMEM, name, "out of memory");
		}
		json_object_array_add(list, rule);
		snprintf(where, sizeof(where), "%s[%zu]", name, i);
		rc = rule_parse(json_object_array_get_idx(rules, i), where, rule, e);
		if (rc < 0) {
			json_object_put(list);
			return rc;
		}
	}
	*out = list;
	return 0;
}

const char *const nexsrv_secgroup_rule_keys[2] = { "inbound_rules", "outbound_rules" };

int nexsrv_secgroup_input_parse(struct json_object *body, bool create,
				struct nexsrv_secgroup_input *in, struct nexsrv_input_error *e)
{
	struct json_object *v;
	int rc;

	memset(in, 0, sizeof(*in));
	if (!json_object_is_type(body, json_type_object))
		return fail(e, EINVAL, "", "the body must be a JSON object, got %s",
			    nx_json_type_name(body));
	if (create) {
		rc = opt_uuid(body, "vpc_id", false, in->vpc_id, e);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return fail(e, ENOENT, "vpc_id", "required");
	}
	rc = opt_string(body, "description", "description", &in->description, e);
	if (rc < 0)
		return rc;
	if (in->description &&
	    nexsrv_input_text(in->description, NEXSRV_DESCRIPTION_MAX, "description", e) < 0)
		return -EINVAL;
	for (int i = 0; i < 2; i++) {
		const char *key = nexsrv_secgroup_rule_keys[i];

		if (!json_object_object_get_ex(body, key, &v) || (!v && !create))
			continue;
		rc = nexsrv_secgroup_rules_parse(v, key, &in->rules[i], e);
		if (rc < 0) {
			nexsrv_secgroup_input_fini(in);
			return rc;
		}
	}
	return 0;
}

void nexsrv_secgroup_input_fini(struct nexsrv_secgroup_input *in)
{
	for (int i = 0; i < 2; i++) {
		json_object_put(in->rules[i]);
		in->rules[i] = NULL;
	}
}

/* --- devices ------------------------------------------------------------------------------- */

static int device_public_key(struct json_object *body, struct nexsrv_device_input *in,
			     struct nexsrv_input_error *e)
{
	struct nx_err why = { "" };
	struct nx_wgkey key;
	const char *s = NULL;
	int rc = opt_string(body, "public_key", "public_key", &s, e);

	if (rc < 0)
		return rc;
	if (rc == 0 || !s[0])
		return fail(e, ENOENT, "public_key", "required");
	if (nx_wgkey_from_base64(s, &key, &why) < 0)
		return fail_err(e, EINVAL, "public_key", &why);
	nx_wgkey_to_base64(&key, in->public_key);
	in->present |= NEXSRV_DEV_PUBLIC_KEY;
	return 0;
}

static int endpoint_source(const char *s, const char *field, struct nexsrv_input_error *e)
{
	char q[40];

	if (strcmp(s, "local") == 0)
		return 0;
	if (strncmp(s, "stun:", 5) == 0 && s[5]) {
		if (nexsrv_input_text(s, NEXSRV_SOURCE_MAX, field, e) < 0)
			return -EINVAL;
		for (const char *p = s + 5; *p; p++)
			if (*p == ' ')
				return fail(e, EINVAL, field, "a STUN server has no spaces");
		return 0;
	}
	return fail(e, EINVAL, field, "\"%s\" is neither \"local\" nor \"stun:<server>\"",
		    nx_str_printable(q, sizeof(q), s));
}

static int device_endpoints(struct json_object *body, struct nexsrv_device_input *in,
			    struct nexsrv_input_error *e)
{
	struct json_object *list = NULL;
	char field[NEXSRV_INPUT_FIELD_LEN];
	size_t n;
	int rc = opt_array(body, "endpoints", &list, e);

	if (rc <= 0)
		return rc;
	n = json_object_array_length(list);
	if (n > NEXSRV_DEVICE_MAX_EPS)
		return fail(e, EINVAL, "endpoints", "has %zu entries, at most %d are allowed", n,
			    NEXSRV_DEVICE_MAX_EPS);
	for (size_t i = 0; i < n; i++) {
		struct json_object *ep = json_object_array_get_idx(list, i);
		struct nexsrv_endpoint *out = &in->endpoints[i];
		struct nx_err why = { "" };
		const char *source = NULL, *address = NULL;

		snprintf(field, sizeof(field), "endpoints[%zu]", i);
		if (!json_object_is_type(ep, json_type_object))
			return fail(e, EINVAL, field, "must be an object, got %s",
				    nx_json_type_name(ep));
		snprintf(field, sizeof(field), "endpoints[%zu].source", i);
		rc = opt_string(ep, "source", field, &source, e);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return fail(e, ENOENT, field, "required");
		if (endpoint_source(source, field, e) < 0)
			return -EINVAL;
		nx_strlcpy(out->source, source, sizeof(out->source));
		snprintf(field, sizeof(field), "endpoints[%zu].address", i);
		rc = opt_string(ep, "address", field, &address, e);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return fail(e, ENOENT, field, "required");
		if (nx_endpoint_parse(address, &out->addr, &out->port, &why) < 0)
			return fail_err(e, EINVAL, field, &why);
	}
	in->n_endpoints = n;
	in->present |= NEXSRV_DEV_ENDPOINTS;
	return 0;
}

static int device_advertise(struct json_object *body, struct nexsrv_device_input *in,
			    struct nexsrv_input_error *e)
{
	struct json_object *list = NULL;
	char field[NEXSRV_INPUT_FIELD_LEN], text[NX_PREFIX_STRLEN];
	size_t n;
	int rc = opt_array(body, "advertise_cidrs", &list, e);

	if (rc <= 0)
		return rc;
	n = json_object_array_length(list);
	if (n > NEXSRV_DEVICE_MAX_ADV)
		return fail(e, EINVAL, "advertise_cidrs", "has %zu entries, at most %d are allowed",
			    n, NEXSRV_DEVICE_MAX_ADV);
	for (size_t i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(list, i);
		struct nx_prefix *p = &in->advertise[i];
		struct nx_err why = { "" };

		snprintf(field, sizeof(field), "advertise_cidrs[%zu]", i);
		if (!json_object_is_type(v, json_type_string))
			return fail(e, EINVAL, field, "must be a string, got %s",
				    nx_json_type_name(v));
		if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
			return fail(e, EINVAL, field, "contains a NUL character");
		if (nx_prefix_parse(json_object_get_string(v), p,
				    NX_PREFIX_ALLOW_HOST | NX_PREFIX_STRICT, &why) < 0)
			return fail_err(e, EINVAL, field, &why);
		nx_prefix_format(p, text, sizeof(text));
		if (nx_prefix_is_default(p) && !in->n_default++)
			in->default_at = i;
		for (size_t j = 0; j < i; j++)
			if (nx_prefix_cmp(&in->advertise[j], p) == 0)
				return fail(e, EINVAL, field, "%s is listed twice", text);
	}
	in->n_advertise = n;
	in->present |= NEXSRV_DEV_ADVERTISE;
	return 0;
}

static int device_ipv4_request(struct json_object *body, struct nexsrv_device_input *in,
			       struct nexsrv_input_error *e)
{
	struct json_object *list = NULL, *ip;
	struct nx_err why = { "" };
	const char *address = NULL;
	int rc = opt_array(body, "ipv4_tunnel_ips", &list, e);

	if (rc <= 0 || json_object_array_length(list) == 0)
		return rc < 0 ? rc : 0;
	if (json_object_array_length(list) > 1)
		return fail(e, EINVAL, "ipv4_tunnel_ips",
			    "can only specify a single IPv4 address request");
	ip = json_object_array_get_idx(list, 0);
	if (!json_object_is_type(ip, json_type_object))
		return fail(e, EINVAL, "ipv4_tunnel_ips[0]", "must be an object, got %s",
			    nx_json_type_name(ip));
	rc = opt_string(ip, "address", "ipv4_tunnel_ips[0].address", &address, e);
	if (rc < 0)
		return rc;
	if (rc == 0 || !address[0])
		return 0;
	if (nx_addr_parse(address, &in->ipv4_request, &why) < 0)
		return fail_err(e, EINVAL, "ipv4_tunnel_ips[0].address", &why);
	if (in->ipv4_request.family != AF_INET)
		return fail(e, EINVAL, "ipv4_tunnel_ips[0].address", "must be an IPv4 address");
	in->present |= NEXSRV_DEV_IPV4_REQUEST;
	return 0;
}

static int device_priority(struct json_object *body, struct nexsrv_device_input *in,
			   struct nexsrv_input_error *e)
{
	struct json_object *v;
	int64_t n;

	if (!member(body, "priority", &v))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return fail(e, EINVAL, "priority", "must be an integer, got %s",
			    nx_json_type_name(v));
	n = json_object_get_int64(v);
	if (n < 0 || n > NEXSRV_DEVICE_PRIORITY_MAX) /* json-c clamps what int64 cannot hold */
		return fail(e, EINVAL, "priority", "%s is out of range: 0 to %d",
			    json_object_get_string(v), NEXSRV_DEVICE_PRIORITY_MAX);
	in->priority = (unsigned)n;
	in->present |= NEXSRV_DEV_PRIORITY;
	return 0;
}

/* hostname / os: optional text; with skip_empty an empty string counts as not given. */
static int device_text(struct json_object *body, const char *key, unsigned bit, char *out,
		       size_t size, bool skip_empty, struct nexsrv_device_input *in,
		       struct nexsrv_input_error *e)
{
	const char *s = NULL;
	int rc = opt_string(body, key, key, &s, e);

	if (rc <= 0 || (skip_empty && !s[0]))
		return rc < 0 ? rc : 0;
	if (nexsrv_input_text(s, size - 1, key, e) < 0)
		return -EINVAL;
	nx_strlcpy(out, s, size);
	in->present |= bit;
	return 0;
}

int nexsrv_device_input_parse(struct json_object *body, enum nexsrv_device_mode mode,
			      struct nexsrv_device_input *in, struct nexsrv_input_error *e)
{
	bool create = mode == NEXSRV_DEVICE_CREATE;
	int rc;

	memset(in, 0, sizeof(*in));
	if (!json_object_is_type(body, json_type_object))
		return fail(e, EINVAL, "", "the body must be a JSON object, got %s",
			    nx_json_type_name(body));
	rc = opt_uuid(body, "vpc_id", false, in->vpc_id, e);
	if (rc < 0)
		return rc;
	if (rc > 0)
		in->present |= NEXSRV_DEV_VPC_ID;
	if (create && (rc = device_public_key(body, in, e)) < 0)
		return rc;
	if ((rc = device_text(body, "hostname", NEXSRV_DEV_HOSTNAME, in->hostname,
			      sizeof(in->hostname), !create, in, e)) < 0)
		return rc;
	if (create &&
	    (rc = device_text(body, "os", NEXSRV_DEV_OS, in->os, sizeof(in->os), false, in, e)) < 0)
		return rc;
	if ((rc = device_endpoints(body, in, e)) < 0)
		return rc;
	if ((rc = device_advertise(body, in, e)) < 0)
		return rc;
	if (create && (rc = device_ipv4_request(body, in, e)) < 0)
		return rc;
	rc = opt_bool(body, "relay", &in->relay, e);
	if (rc < 0)
		return rc;
	if (rc > 0)
		in->present |= NEXSRV_DEV_RELAY;
	rc = opt_bool(body, "symmetric_nat", &in->symmetric_nat, e);
	if (rc < 0)
		return rc;
	if (rc > 0)
		in->present |= NEXSRV_DEV_SYMMETRIC_NAT;
	rc = opt_uuid(body, "security_group_id", true, in->security_group_id, e);
	if (rc < 0)
		return rc;
	/* In an update a null security_group_id means "unchanged", as Go reads it. */
	if (rc > 0)
		in->present |= NEXSRV_DEV_SECURITY_GROUP;
	if ((rc = device_priority(body, in, e)) < 0)
		return rc;
	rc = opt_bool(body, "exit_node", &in->exit_node, e);
	if (rc < 0)
		return rc;
	if (rc > 0)
		in->present |= NEXSRV_DEV_EXIT_NODE;
	/* A default route is an exit node's; without exit_node here, an update leaves the
	 * check to the handler, which knows the device. */
	if (in->n_default && !in->exit_node && (create || (in->present & NEXSRV_DEV_EXIT_NODE)))
		return nexsrv_device_default_route_refused(in, e);
	return 0;
}

int nexsrv_device_default_route_refused(const struct nexsrv_device_input *in,
					struct nexsrv_input_error *e)
{
	char field[NEXSRV_INPUT_FIELD_LEN], text[NX_PREFIX_STRLEN];

	snprintf(field, sizeof(field), "advertise_cidrs[%zu]", in->default_at);
	return fail(e, EINVAL, field,
		    "%s is a default route: only exit nodes (exit_node: true) may advertise it",
		    nx_prefix_format(&in->advertise[in->default_at], text, sizeof(text)));
}

struct json_object *nexsrv_device_endpoints_json(const struct nexsrv_device_input *in)
{
	struct json_object *list = json_object_new_array();
	char text[NX_ENDPOINT_STRLEN];

	if (!list)
		return NULL;
	for (size_t i = 0; i < in->n_endpoints; i++) {
		struct json_object *ep = json_object_new_object();

		if (!ep || json_object_array_add(list, ep) < 0) {
			json_object_put(ep);
			json_object_put(list);
			return NULL;
		}
		nx_endpoint_format(&in->endpoints[i].addr, in->endpoints[i].port, text,
				   sizeof(text));
		if (nx_json_object_add_string(ep, "source", in->endpoints[i].source) < 0 ||
		    nx_json_object_add_string(ep, "address", text) < 0) {
			json_object_put(list);
			return NULL;
		}
	}
	return list;
}

int nexsrv_device_advertise_literal(const struct nexsrv_device_input *in, struct nx_sbuf *out)
{
	char text[NX_PREFIX_STRLEN];

	nx_sbuf_puts(out, "{");
	for (size_t i = 0; i < in->n_advertise; i++)
		nx_sbuf_printf(out, "%s%s", i ? "," : "",
			       nx_prefix_format(&in->advertise[i], text, sizeof(text)));
	nx_sbuf_puts(out, "}");
	return nx_sbuf_truncated(out) ? -ENOMEM : 0;
}

int nexsrv_metadata_key_check(const char *key, struct nexsrv_input_error *e)
{
	if (!key || !key[0])
		return fail(e, EINVAL, "key", "must not be empty");
	return nexsrv_input_text(key, NEXSRV_METADATA_KEY_MAX, "key", e);
}

/* --- registration keys --------------------------------------------------------------------- */

/* n digits at *p, advancing it. */
static bool digits(const char **p, int n)
{
	for (int i = 0; i < n; i++, (*p)++)
		if (!isdigit((unsigned char)**p))
			return false;
	return true;
}

bool nexsrv_input_rfc3339(const char *s)
{
	const char *p = s;

	/* full-date "T" partial-time time-offset (RFC 3339 section 5.6) */
	if (!digits(&p, 4) || *p++ != '-' || !digits(&p, 2) || *p++ != '-' || !digits(&p, 2))
		return false;
	if (*p != 'T' && *p != 't')
		return false;
	p++;
	if (!digits(&p, 2) || *p++ != ':' || !digits(&p, 2) || *p++ != ':' || !digits(&p, 2))
		return false;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		for (int i = 0; isdigit((unsigned char)*p); i++, p++)
			if (i >= 9)
				return false;
	}
	if (*p == 'Z' || *p == 'z')
		return p[1] == '\0';
	if (*p != '+' && *p != '-')
		return false;
	p++;
	return digits(&p, 2) && *p++ == ':' && digits(&p, 2) && *p == '\0';
}

int nexsrv_regkey_input_parse(struct json_object *body, bool create, struct nexsrv_regkey_input *in,
			      struct nexsrv_input_error *e)
{
	struct json_object *v;
	char q[48];
	int rc;

	memset(in, 0, sizeof(*in));
	if (!json_object_is_type(body, json_type_object))
		return fail(e, EINVAL, "", "the body must be a JSON object, got %s",
			    nx_json_type_name(body));
	if (create) {
		rc = opt_uuid(body, "vpc_id", false, in->vpc_id, e);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return fail(e, ENOENT, "vpc_id", "required");
		rc = opt_bool(body, "single_use", &in->single_use, e);
		if (rc < 0)
			return rc;
		if (rc > 0)
			in->present |= NEXSRV_RK_SINGLE_USE;
	}
	rc = opt_string(body, "description", "description", &in->description, e);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		if (nexsrv_input_text(in->description, NEXSRV_DESCRIPTION_MAX, "description", e) <
		    0)
			return -EINVAL;
		in->present |= NEXSRV_RK_DESCRIPTION;
	}
	if (json_object_object_get_ex(body, "expires_at", &v)) {
		rc = opt_string(body, "expires_at", "expires_at", &in->expires_at, e);
		if (rc < 0)
			return rc;
		if (in->expires_at && !in->expires_at[0])
			in->expires_at = NULL;
		if (in->expires_at && !nexsrv_input_rfc3339(in->expires_at))
			return fail(e, EINVAL, "expires_at",
				    "\"%s\" is not an RFC 3339 time (2006-01-02T15:04:05Z)",
				    nx_str_printable(q, sizeof(q), in->expires_at));
		if (in->expires_at || !create)
			in->present |= NEXSRV_RK_EXPIRES_AT;
	}
	rc = opt_uuid(body, "security_group_id", true, in->security_group_id, e);
	if (rc < 0)
		return rc;
	if (rc > 0)
		in->present |= NEXSRV_RK_SECURITY_GROUP;
	if (member(body, "settings", &v)) {
		if (!json_object_is_type(v, json_type_object))
			return fail(e, EINVAL, "settings", "must be an object, got %s",
				    nx_json_type_name(v));
		in->settings = v;
		in->present |= NEXSRV_RK_SETTINGS;
	} else if (!create && json_object_object_get_ex(body, "settings", &v)) {
		in->present |= NEXSRV_RK_SETTINGS; /* null: remove them */
	}
	return 0;
}
