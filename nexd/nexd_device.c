/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The controller's words, read as untrusted input (nexd_device.h).  nexsrv is the authority on
 * who is in the VPC, but nothing it sends is allowed to crash the agent or to put a route or a
 * peer into the dataplane that would take traffic away from the tunnel: every field is
 * type-checked and bounded here, and a rejected object is named field by field so that an
 * operator can tell which device the controller got wrong.  Fields that nexd does not know
 * are ignored, so that a newer controller may add some.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsondoc.h"
#include "lib/jsonutil.h"
#include "lib/strutil.h"
#include "nexd/nexd_device.h"

/* Nesting of a watch line: line, value, endpoints (or rules), entry, field. */
#define NEXD_EVENT_DEPTH     NX_JSON_DEFAULT_DEPTH
/* Entries of ipv4_tunnel_ips / ipv6_tunnel_ips (nexsrv gives one; only the first is used). */
#define NEXD_MAX_TUNNEL_IPS  8
/* allowed_ips: the tunnel addresses as host prefixes. */
#define NEXD_MAX_ALLOWED_IPS (2 * NEXD_MAX_TUNNEL_IPS)
/* Other text fields: bounded so that a message quoting them stays short. */
#define NEXD_OS_MAX	     256
#define NEXD_TIME_MAX	     64
#define NEXD_TEXT_MAX	     4096
/* Field paths in messages: "device.endpoints[15].address". */
#define NEXD_FIELD_LEN	     64
/* Quoted input in messages. */
#define NEXD_QUOTE_LEN	     48

/* --- messages ------------------------------------------------------------------------------ */

static int fail(struct nx_err *err, int code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* "field: reason"; returns -code. */
static int fail(struct nx_err *err, int code, const char *field, const char *fmt, ...)
{
	char why[NX_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return nx_err_set(err, code, "%s: %s", field, why);
}

/* Untrusted text, made safe and short for a message. */
static const char *quote(char *buf, size_t size, const char *s)
{
	return nx_str_printable(buf, size, s);
}

/* A message about element i of list, or a member of it, made from one about the element
 * alone (field "" or the member's name): "device.endpoints[1].address: ...".  Field names
 * are put together only on failure: every device of every event goes through here. */
static int in_element(struct nx_err *err, int rc, const char *list, size_t i)
{
	char msg[NX_ERR_MAX];

	if (!err)
		return rc;
	nx_strlcpy(msg, err->msg, sizeof(msg));
	nx_err_set(err, -rc, "%s[%zu]%s%s", list, i, msg[0] == ':' ? "" : ".", msg);
	return rc;
}

/* --- typed fields -------------------------------------------------------------------------- */

/* Member key of object obj: its token, or 0 when absent or null. */
static size_t member(const struct nx_jdoc *doc, size_t obj, const char *key)
{
	size_t v = nx_jdoc_member(doc, obj, key);

	return v && nx_jdoc_type(doc, v) != NX_JT_NULL ? v : 0;
}

/* Bytes that must not appear in text nexd prints or stores: C0 controls and DEL. */
static int check_text(const char *s, const char *field, struct nx_err *err)
{
	for (size_t i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return fail(err, EINVAL, field,
				    "contains a control character at offset %zu", i);
	}
	return 0;
}

/* String value v into buf (of max + 1 bytes): at most max bytes, no NUL, and with text no
 * control characters. */
static int string_value(const struct nx_jdoc *doc, size_t v, const char *field, size_t max,
			bool text, char *buf, struct nx_err *err)
{
	size_t n;
	int rc;

	if (nx_jdoc_type(doc, v) != NX_JT_STRING)
		return fail(err, EINVAL, field, "must be a string, got %s",
			    nx_jdoc_type_name(doc, v));
	rc = nx_jdoc_string(doc, v, buf, max + 1, &n);
	if (rc == -EINVAL)
		return fail(err, EINVAL, field, "contains a NUL character");
	if (rc < 0)
		return fail(err, EINVAL, field, "is %zu bytes long, at most %zu are allowed", n,
			    max);
	if (text && check_text(buf, field, err) < 0)
		return -EINVAL;
	return 0;
}

/*
 * String member key of obj (field names it in messages) into buf of max + 1 bytes: 1, or 0
 * when absent or null and !required.
 */
static int get_string(const struct nx_jdoc *doc, size_t obj, const char *field, const char *key,
		      bool required, size_t max, bool text, char *buf, struct nx_err *err)
{
	size_t v = member(doc, obj, key);
	int rc;

	if (!v) {
		if (required)
			return fail(err, ENOENT, field, "is missing");
		return 0;
	}
	rc = string_value(doc, v, field, max, text, buf, err);
	return rc < 0 ? rc : 1;
}

/* Integer member: 1 with *out set, 0 when absent or null and !required. */
static int get_int64(const struct nx_jdoc *doc, size_t obj, const char *field, const char *key,
		     bool required, int64_t *out, struct nx_err *err)
{
	size_t v = member(doc, obj, key);
	uint64_t u = 0;

	if (!v) {
		if (required)
			return fail(err, ENOENT, field, "is missing");
		return 0;
	}
	if (nx_jdoc_type(doc, v) != NX_JT_INT)
		return fail(err, EINVAL, field, "must be an integer, got %s",
			    nx_jdoc_type_name(doc, v));
	if (nx_jdoc_int64(doc, v, out) < 0) {
		nx_jdoc_uint64(doc, v, &u);
		return fail(err, ERANGE, field, "%" PRIu64 " is out of range", u);
	}
	return 1;
}

/* Boolean member: 1 with *out set, 0 when absent or null (then *out is left alone). */
static int get_bool(const struct nx_jdoc *doc, size_t obj, const char *field, const char *key,
		    bool *out, struct nx_err *err)
{
	size_t v = member(doc, obj, key);

	if (!v)
		return 0;
	if (nx_jdoc_type(doc, v) != NX_JT_BOOL)
		return fail(err, EINVAL, field, "must be a boolean, got %s",
			    nx_jdoc_type_name(doc, v));
	*out = doc->tok[v].truth;
	return 1;
}

/* Array member of at most max entries: 1 with *out set to its token, 0 when absent or null. */
static int get_array(const struct nx_jdoc *doc, size_t obj, const char *field, const char *key,
		     size_t max, size_t *out, struct nx_err *err)
{
	size_t v = member(doc, obj, key);

	if (!v)
		return 0;
	if (nx_jdoc_type(doc, v) != NX_JT_ARRAY)
		return fail(err, EINVAL, field, "must be an array, got %s",
			    nx_jdoc_type_name(doc, v));
	if (doc->tok[v].count > max)
		return fail(err, EINVAL, field, "has %zu entries, at most %zu are allowed",
			    (size_t)doc->tok[v].count, max);
	*out = v;
	return 1;
}

static bool uuid_valid(const char *s)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

	if (strlen(s) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++) {
		if (shape[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

/*
 * UUID member into out (lower case, "" when absent): 1, or 0 when absent or null and
 * !required.  With empty_ok an empty string counts as absent (security_group_id).
 */
static int get_uuid(const struct nx_jdoc *doc, size_t obj, const char *field, const char *key,
		    bool required, bool empty_ok, char out[NEXD_UUID_LEN], struct nx_err *err)
{
	char q[NEXD_QUOTE_LEN], s[NEXD_TEXT_MAX + 1];
	int rc;

	out[0] = '\0';
	rc = get_string(doc, obj, field, key, required, NEXD_TEXT_MAX, false, s, err);
	if (rc <= 0)
		return rc;
	if (empty_ok && !s[0])
		return 0;
	if (!uuid_valid(s))
		return fail(err, EINVAL, field, "\"%s\" is not a UUID", quote(q, sizeof(q), s));
	for (size_t i = 0; i < NEXD_UUID_LEN - 1; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[NEXD_UUID_LEN - 1] = '\0';
	return 1;
}

static int get_revision(const struct nx_jdoc *doc, size_t obj, const char *field, int64_t *out,
			struct nx_err *err)
{
	int rc = get_int64(doc, obj, field, "revision", true, out, err);

	if (rc < 0)
		return rc;
	if (*out < 0)
		return fail(err, ERANGE, field, "%" PRId64 " is negative", *out);
	return 0;
}

static int get_key(const struct nx_jdoc *doc, size_t obj, const char *field, bool required,
		   struct nx_wgkey *out, struct nx_err *err)
{
	struct nx_err why = { "" };
	char q[NEXD_QUOTE_LEN], s[NEXD_TEXT_MAX + 1];
	int rc = get_string(doc, obj, field, "public_key", required, NEXD_TEXT_MAX, false, s, err);

	if (rc <= 0)
		return rc;
	if (nx_wgkey_from_base64(s, out, &why) < 0)
		return fail(err, EINVAL, field, "\"%s\" is not a WireGuard key (%s)",
			    quote(q, sizeof(q), s), why.msg);
	if (nx_wgkey_is_zero(out))
		return fail(err, EINVAL, field, "the all-zero key is not a public key");
	return 1;
}

/* --- watch lines --------------------------------------------------------------------------- */

static const struct {
	const char *name;
	enum nexd_event_type type;
} event_types[] = {
	{ "change", NEXD_EV_CHANGE },
	{ "delete", NEXD_EV_DELETE },
	{ "tail", NEXD_EV_TAIL },
	{ "error", NEXD_EV_ERROR },
};

/* kind: short, lower-case words and dashes; kinds nexd does not know are kept for the caller
 * to skip. */
static int event_kind(const struct nx_jdoc *doc, bool required, struct nexd_event *ev,
		      struct nx_err *err)
{
	char q[NEXD_QUOTE_LEN], s[sizeof(ev->kind)];
	int rc;

	rc = get_string(doc, 0, "event.kind", "kind", required, sizeof(s) - 1, true, s, err);
	if (rc <= 0)
		return rc;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return fail(err, EINVAL, "event.kind", "\"%s\" is not a kind name",
				    quote(q, sizeof(q), s));
	nx_strlcpy(ev->kind, s, sizeof(ev->kind));
	return 0;
}

/* The value of a change, delete or error: an object. */
static int event_value(const struct nx_jdoc *doc, size_t *out, struct nx_err *err)
{
	size_t v = member(doc, 0, "value");

	if (!v)
		return fail(err, ENOENT, "event.value", "is missing");
	if (nx_jdoc_type(doc, v) != NX_JT_OBJECT)
		return fail(err, EINVAL, "event.value", "must be an object, got %s",
			    nx_jdoc_type_name(doc, v));
	*out = v;
	return 0;
}

static int event_error(const struct nx_jdoc *doc, struct nexd_event *ev, struct nx_err *err)
{
	char msg[NEXD_TEXT_MAX + 1] = "";
	int64_t code = 0;
	size_t v;
	int rc;

	if ((rc = event_value(doc, &v, err)) < 0)
		return rc;
	rc = get_int64(doc, v, "event.value.code", "code", true, &code, err);
	if (rc < 0)
		return rc;
	if (code < 0 || code > INT_MAX)
		return fail(err, ERANGE, "event.value.code", "%" PRId64 " is out of range", code);
	rc = get_string(doc, v, "event.value.error", "error", false, NEXD_TEXT_MAX, false, msg,
			err);
	if (rc < 0)
		return rc;
	ev->error_code = (int)code;
	/* Only ever logged: kept printable, and cut to fit. */
	nx_str_printable(ev->error, sizeof(ev->error), msg);
	return 0;
}

int nexd_event_parse(struct nx_jdoc *doc, const char *line, size_t len, struct nexd_event *ev,
		     struct nx_err *err)
{
	struct nx_err why = { "" };
	char q[NEXD_QUOTE_LEN], type[NEXD_TEXT_MAX + 1];
	size_t i;
	int rc;

	memset(ev, 0, sizeof(*ev));
	if (!line)
		len = 0;
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0) {
		ev->type = NEXD_EV_HEARTBEAT;
		return 0;
	}
	rc = nx_jdoc_parse(doc, line, len, NEXD_EVENT_DEPTH, &why);
	if (rc < 0)
		return fail(err, -rc, "event", "%s", why.msg);
	if (nx_jdoc_type(doc, 0) != NX_JT_OBJECT) {
		rc = fail(err, EINVAL, "event", "must be an object, got %s",
			  nx_jdoc_type_name(doc, 0));
		goto out;
	}
	rc = get_string(doc, 0, "event.type", "type", true, NEXD_TEXT_MAX, false, type, err);
	if (rc < 0)
		goto out;
	for (i = 0; i < sizeof(event_types) / sizeof(event_types[0]); i++)
		if (strcmp(type, event_types[i].name) == 0)
			break;
	if (i == sizeof(event_types) / sizeof(event_types[0])) {
		rc = fail(err, EINVAL, "event.type",
			  "\"%s\" is not one of change, delete, tail, error",
			  quote(q, sizeof(q), type));
		goto out;
	}
	ev->type = event_types[i].type;

	rc = event_kind(doc, ev->type != NEXD_EV_ERROR, ev, err);
	if (rc < 0)
		goto out;
	switch (ev->type) {
	case NEXD_EV_ERROR:
		rc = event_error(doc, ev, err);
		break;
	case NEXD_EV_CHANGE:
	case NEXD_EV_DELETE:
		rc = event_value(doc, &ev->value, err);
		break;
	case NEXD_EV_TAIL:
	case NEXD_EV_HEARTBEAT:
		rc = 0;
		break;
	}
out:
	if (rc < 0)
		memset(ev, 0, sizeof(*ev));
	return rc;
}

/* --- devices ------------------------------------------------------------------------------- */

static int device_endpoints(const struct nx_jdoc *doc, size_t obj, struct nexd_device_info *d,
			    struct nx_err *err)
{
	char source[NEXD_ENDPOINT_SRC_MAX], address[NX_ENDPOINT_STRLEN + 1];
	size_t list = 0, n, ep;
	int rc;

	rc = get_array(doc, obj, "device.endpoints", "endpoints", NEXD_MAX_ENDPOINTS, &list, err);
	if (rc <= 0)
		return rc;
	n = doc->tok[list].count;
	if (n == 0)
		return 0;
	d->endpoints = calloc(n, sizeof(*d->endpoints));
	if (!d->endpoints)
		return nx_err_set(err, ENOMEM, "device.endpoints: out of memory");
	ep = list + 1;
	for (size_t i = 0; i < n; i++, ep = nx_jdoc_next(doc, ep)) {
		struct nexd_device_endpoint *out = &d->endpoints[i];
		struct nx_err why = { "" };

		if (nx_jdoc_type(doc, ep) != NX_JT_OBJECT)
			rc = fail(err, EINVAL, "", "must be an object, got %s",
				  nx_jdoc_type_name(doc, ep));
		else
			rc = get_string(doc, ep, "source", "source", true, sizeof(source) - 1, true,
					source, err);
		if (rc < 0)
			return in_element(err, rc, "device.endpoints", i);
		out->source = strdup(source);
		if (!out->source)
			return nx_err_set(err, ENOMEM, "device.endpoints: out of memory");
		/* Counted from here on, so that a failure below frees this source too. */
		d->n_endpoints = i + 1;
		rc = get_string(doc, ep, "address", "address", true, sizeof(address) - 1, false,
				address, err);
		if (rc >= 0 && nx_endpoint_parse(address, &out->addr, &out->port, &why) < 0)
			rc = fail(err, EINVAL, "address", "%s", why.msg);
		if (rc < 0)
			return in_element(err, rc, "device.endpoints", i);
	}
	return 0;
}

/* One entry of ipv4_tunnel_ips / ipv6_tunnel_ips: its address into a. */
static int tunnel_ip(const struct nx_jdoc *doc, size_t ip, sa_family_t family, struct nx_addr *a,
		     struct nx_err *err)
{
	const char *fam = family == AF_INET ? "IPv4" : "IPv6";
	char address[NX_ADDR_STRLEN + 1], cidr[NX_PREFIX_STRLEN + 1];
	struct nx_err why = { "" };
	struct nx_prefix pool;
	int rc;

	if (nx_jdoc_type(doc, ip) != NX_JT_OBJECT)
		return fail(err, EINVAL, "", "must be an object, got %s",
			    nx_jdoc_type_name(doc, ip));
	rc = get_string(doc, ip, "address", "address", true, sizeof(address) - 1, false, address,
			err);
	if (rc < 0)
		return rc;
	if (nx_addr_parse(address, a, &why) < 0)
		return fail(err, EINVAL, "address", "%s", why.msg);
	if (a->family != family)
		return fail(err, EINVAL, "address", "%s is not an %s address", address, fam);
	rc = get_string(doc, ip, "cidr", "cidr", false, sizeof(cidr) - 1, false, cidr, err);
	if (rc <= 0)
		return rc;
	if (nx_prefix_parse(cidr, &pool, 0, &why) < 0)
		return fail(err, EINVAL, "cidr", "%s", why.msg);
	if (pool.addr.family != family)
		return fail(err, EINVAL, "cidr", "%s is not an %s prefix", cidr, fam);
	return 0;
}

/* The first address of ipv4_tunnel_ips / ipv6_tunnel_ips (field: "device." and key); every
 * entry is checked. */
static int device_tunnel_ip(const struct nx_jdoc *doc, size_t obj, const char *key,
			    const char *field, sa_family_t family, struct nx_addr *out,
			    struct nx_err *err)
{
	size_t list = 0, ip;
	int rc;

	rc = get_array(doc, obj, field, key, NEXD_MAX_TUNNEL_IPS, &list, err);
	if (rc <= 0)
		return rc;
	ip = list + 1;
	for (size_t i = 0; i < doc->tok[list].count; i++, ip = nx_jdoc_next(doc, ip)) {
		struct nx_addr a;

		rc = tunnel_ip(doc, ip, family, &a, err);
		if (rc < 0)
			return in_element(err, rc, field, i);
		if (i == 0)
			*out = a;
	}
	return 0;
}

/* Element i of list, a prefix string (NX_PREFIX_ALLOW_HOST). */
static int prefix_value(const struct nx_jdoc *doc, size_t v, const char *list, size_t i,
			struct nx_prefix *p, struct nx_err *err)
{
	char text[NX_PREFIX_STRLEN + 1];
	struct nx_err why = { "" };
	int rc = string_value(doc, v, "", sizeof(text) - 1, false, text, err);

	if (rc >= 0 && nx_prefix_parse(text, p, NX_PREFIX_ALLOW_HOST, &why) < 0)
		rc = fail(err, EINVAL, "", "%s", why.msg);
	return rc < 0 ? in_element(err, rc, list, i) : 0;
}

/* allowed_ips is derived from the tunnel addresses and not used, but still checked. */
static int device_allowed_ips(const struct nx_jdoc *doc, size_t obj, struct nx_err *err)
{
	size_t list = 0, v;
	struct nx_prefix p;
	int rc;

	rc = get_array(doc, obj, "device.allowed_ips", "allowed_ips", NEXD_MAX_ALLOWED_IPS, &list,
		       err);
	if (rc <= 0)
		return rc;
	v = list + 1;
	for (size_t i = 0; i < doc->tok[list].count; i++, v = nx_jdoc_next(doc, v))
		if ((rc = prefix_value(doc, v, "device.allowed_ips", i, &p, err)) < 0)
			return rc;
	return 0;
}

/* A list of prefixes (advertise_cidrs, active_cidrs; name: "device." and key): normalised,
 * duplicates dropped.  Returns 1 when the member is present, 0 when absent. */
static int prefix_list(const struct nx_jdoc *doc, size_t obj, const char *key, const char *name,
		       struct nx_prefix **out, size_t *n_out, struct nx_err *err)
{
	size_t list = 0, n, v;
	int rc;

	rc = get_array(doc, obj, name, key, NEXD_MAX_ADVERTISE, &list, err);
	if (rc <= 0)
		return rc;
	n = doc->tok[list].count;
	if (n == 0)
		return 1;
	*out = calloc(n, sizeof(**out));
	if (!*out)
		return nx_err_set(err, ENOMEM, "%s: out of memory", name);
	v = list + 1;
	for (size_t i = 0; i < n; i++, v = nx_jdoc_next(doc, v)) {
		struct nx_prefix p;
		bool dup = false;

		if ((rc = prefix_value(doc, v, name, i, &p, err)) < 0)
			return rc;
		nx_prefix_normalize(&p);
		for (size_t j = 0; j < *n_out && !dup; j++)
			dup = nx_prefix_cmp(&(*out)[j], &p) == 0;
		if (!dup)
			(*out)[(*n_out)++] = p;
	}
	return 1;
}

/* active_cidrs, when the controller elects holders: only prefixes this device advertises. */
static int device_active(const struct nx_jdoc *doc, size_t obj, struct nexd_device_info *d,
			 struct nx_err *err)
{
	int rc = prefix_list(doc, obj, "active_cidrs", "device.active_cidrs", &d->active,
			     &d->n_active, err);

	if (rc <= 0)
		return rc;
	d->has_active = true;
	for (size_t i = 0; i < d->n_active; i++) {
		bool found = false;

		for (size_t j = 0; j < d->n_advertise && !found; j++)
			found = nx_prefix_cmp(&d->active[i], &d->advertise[j]) == 0;
		if (!found) {
			char buf[NX_PREFIX_STRLEN], field[NEXD_FIELD_LEN];

			snprintf(field, sizeof(field), "device.active_cidrs[%zu]", i);
			return fail(err, EINVAL, field, "%s is not among advertise_cidrs",
				    nx_prefix_format(&d->active[i], buf, sizeof(buf)));
		}
	}
	return 0;
}

/* The fields nexd does not keep, checked for their type and size. */
static int device_other_fields(const struct nx_jdoc *doc, size_t obj, struct nx_err *err)
{
	char sg[NEXD_UUID_LEN], owner[NEXD_UUID_LEN], s[NEXD_OS_MAX + 1];
	int rc;

	if ((rc = get_uuid(doc, obj, "device.owner_id", "owner_id", false, false, owner, err)) < 0)
		return rc;
	if ((rc = get_uuid(doc, obj, "device.security_group_id", "security_group_id", false, true,
			   sg, err)) < 0)
		return rc;
	if ((rc = get_string(doc, obj, "device.os", "os", false, NEXD_OS_MAX, true, s, err)) < 0)
		return rc;
	if ((rc = get_string(doc, obj, "device.online_at", "online_at", false, NEXD_TIME_MAX, true,
			     s, err)) < 0)
		return rc;
	return device_allowed_ips(doc, obj, err);
}

static int device_parse(const struct nx_jdoc *doc, size_t v, bool deleted,
			struct nexd_device_info *d, struct nx_err *err)
{
	char hostname[NEXD_HOSTNAME_MAX] = "";
	int rc;

	if (nx_jdoc_type(doc, v) != NX_JT_OBJECT)
		return fail(err, EINVAL, "device", "must be an object, got %s",
			    nx_jdoc_type_name(doc, v));
	if ((rc = get_uuid(doc, v, "device.id", "id", true, false, d->id, err)) < 0)
		return rc;
	if ((rc = get_revision(doc, v, "device.revision", &d->revision, err)) < 0)
		return rc;
	if ((rc = get_uuid(doc, v, "device.vpc_id", "vpc_id", !deleted, false, d->vpc_id, err)) < 0)
		return rc;
	if ((rc = get_key(doc, v, "device.public_key", !deleted, &d->public_key, err)) < 0)
		return rc;
	/* A row as it was before its deletion: only what identifies the peer matters. */
	if (deleted)
		return 0;

	if ((rc = get_string(doc, v, "device.hostname", "hostname", false, NEXD_HOSTNAME_MAX - 1,
			     true, hostname, err)) < 0)
		return rc;
	d->hostname = strdup(hostname);
	if (!d->hostname)
		return nx_err_set(err, ENOMEM, "device.hostname: out of memory");
	if ((rc = device_endpoints(doc, v, d, err)) < 0)
		return rc;
	if ((rc = device_tunnel_ip(doc, v, "ipv4_tunnel_ips", "device.ipv4_tunnel_ips", AF_INET,
				   &d->tunnel_ipv4, err)) < 0)
		return rc;
	if ((rc = device_tunnel_ip(doc, v, "ipv6_tunnel_ips", "device.ipv6_tunnel_ips", AF_INET6,
				   &d->tunnel_ipv6, err)) < 0)
		return rc;
	if ((rc = prefix_list(doc, v, "advertise_cidrs", "device.advertise_cidrs", &d->advertise,
			      &d->n_advertise, err)) < 0 ||
	    (rc = device_active(doc, v, d, err)) < 0)
		return rc;
	if ((rc = get_bool(doc, v, "device.relay", "relay", &d->relay, err)) < 0)
		return rc;
	if ((rc = get_bool(doc, v, "device.symmetric_nat", "symmetric_nat", &d->symmetric_nat,
			   err)) < 0)
		return rc;
	if ((rc = get_bool(doc, v, "device.online", "online", &d->online, err)) < 0)
		return rc;
	return device_other_fields(doc, v, err);
}

int nexd_device_parse(const struct nx_jdoc *doc, size_t v, bool deleted,
		      struct nexd_device_info *out, struct nx_err *err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = device_parse(doc, v, deleted, out, err);
	if (rc < 0) {
		nexd_device_info_clear(out);
		return rc;
	}
	return 0;
}

void nexd_device_info_clear(struct nexd_device_info *d)
{
	if (!d)
		return;
	free(d->hostname);
	free(d->advertise);
	free(d->active);
	for (size_t i = 0; i < d->n_endpoints; i++)
		free(d->endpoints[i].source);
	free(d->endpoints);
	memset(d, 0, sizeof(*d));
}

int nexd_device_parse_created(const struct nx_jdoc *doc, size_t v, struct nexd_device_info *out,
			      char *token, size_t token_size, struct nx_err *err)
{
	char s[NEXD_TEXT_MAX + 1];
	int rc;

	if (token && token_size)
		token[0] = '\0';
	rc = nexd_device_parse(doc, v, false, out, err);
	if (rc < 0)
		return rc;
	rc = get_string(doc, v, "device.bearer_token", "bearer_token", true, NEXD_TEXT_MAX, false,
			s, err);
	if (rc < 0)
		goto fail;
	if (strncmp(s, "DT:", 3) != 0 || !s[3]) {
		rc = fail(err, EINVAL, "device.bearer_token", "is not a device token (\"DT:...\")");
		goto fail;
	}
	for (const char *p = s; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f) {
			rc = fail(err, EINVAL, "device.bearer_token",
				  "contains a byte that is not printable ASCII at offset %zu",
				  (size_t)(p - s));
			goto fail;
		}
	}
	if (!token || strlen(s) >= token_size) {
		rc = fail(err, ENOSPC, "device.bearer_token", "is %zu bytes long, too long for %zu",
			  strlen(s), token ? token_size : 0);
		goto fail;
	}
	nx_strlcpy(token, s, token_size);
	return 0;
fail:
	nexd_device_info_clear(out);
	return rc;
}

/* --- the VPC ------------------------------------------------------------------------------- */

static int vpc_pool(const struct nx_jdoc *doc, size_t v, const char *key, sa_family_t family,
		    struct nx_prefix *out, struct nx_err *err)
{
	struct nx_err why = { "" };
	char field[NEXD_FIELD_LEN], s[NX_PREFIX_STRLEN + 1];
	struct nx_prefix p;
	int rc;

	snprintf(field, sizeof(field), "vpc.%s", key);
	rc = get_string(doc, v, field, key, false, sizeof(s) - 1, false, s, err);
	if (rc <= 0)
		return rc;
	if (nx_prefix_parse(s, &p, 0, &why) < 0)
		return fail(err, EINVAL, field, "%s", why.msg);
	if (p.addr.family != family)
		return fail(err, EINVAL, field, "%s is not an %s prefix", s,
			    family == AF_INET ? "IPv4" : "IPv6");
	nx_prefix_normalize(&p);
	*out = p;
	return 0;
}

int nexd_vpc_parse(const struct nx_jdoc *doc, size_t v, struct nexd_vpc_info *out,
		   struct nx_err *err)
{
	char org[NEXD_UUID_LEN], s[NEXD_TEXT_MAX + 1];
	bool b = false;
	int rc;

	memset(out, 0, sizeof(*out));
	if (nx_jdoc_type(doc, v) != NX_JT_OBJECT) {
		rc = fail(err, EINVAL, "vpc", "must be an object, got %s",
			  nx_jdoc_type_name(doc, v));
		goto out;
	}
	if ((rc = get_uuid(doc, v, "vpc.id", "id", true, false, out->id, err)) < 0)
		goto out;
	if ((rc = get_revision(doc, v, "vpc.revision", &out->revision, err)) < 0)
		goto out;
	if ((rc = vpc_pool(doc, v, "ipv4_cidr", AF_INET, &out->ipv4_cidr, err)) < 0)
		goto out;
	if ((rc = vpc_pool(doc, v, "ipv6_cidr", AF_INET6, &out->ipv6_cidr, err)) < 0)
		goto out;
	if ((rc = get_uuid(doc, v, "vpc.organization_id", "organization_id", false, false, org,
			   err)) < 0)
		goto out;
	if ((rc = get_string(doc, v, "vpc.description", "description", false, NEXD_TEXT_MAX, false,
			     s, err)) < 0)
		goto out;
	if ((rc = get_bool(doc, v, "vpc.private_cidr", "private_cidr", &b, err)) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* --- whether a peer may be installed ------------------------------------------------------- */

static int check_tunnel(const struct nx_addr *a, const struct nx_prefix *pool, const char *field,
			struct nx_err *err)
{
	char at[NX_ADDR_STRLEN], pt[NX_PREFIX_STRLEN];

	if (a->family == AF_UNSPEC || pool->addr.family != a->family)
		return 0;
	if (nx_prefix_contains_addr(pool, a))
		return 0;
	return fail(err, EINVAL, field, "%s is outside the VPC's pool %s",
		    nx_addr_format(a, at, sizeof(at)), nx_prefix_format(pool, pt, sizeof(pt)));
}

int nexd_device_check(const struct nexd_device_info *d, const struct nexd_vpc_info *vpc,
		      const struct nx_wgkey *self_key, struct nx_err *err)
{
	char pt[NX_PREFIX_STRLEN], vt[NX_PREFIX_STRLEN];
	int rc;

	if (self_key && nx_wgkey_eq(&d->public_key, self_key)) {
		char key[NX_WG_KEY_B64_LEN];

		nx_wgkey_to_base64(&d->public_key, key);
		return fail(err, EEXIST, "device.public_key", "%s is this device's own key", key);
	}
	if (vpc && vpc->id[0] && d->vpc_id[0] && strcmp(vpc->id, d->vpc_id) != 0)
		return fail(err, EINVAL, "device.vpc_id", "%s is not this device's VPC %s",
			    d->vpc_id, vpc->id);
	if (vpc) {
		rc = check_tunnel(&d->tunnel_ipv4, &vpc->ipv4_cidr, "device.ipv4_tunnel_ips", err);
		if (rc < 0)
			return rc;
		rc = check_tunnel(&d->tunnel_ipv6, &vpc->ipv6_cidr, "device.ipv6_tunnel_ips", err);
		if (rc < 0)
			return rc;
	}
	for (size_t i = 0; i < d->n_advertise; i++) {
		const struct nx_prefix *p = &d->advertise[i];

		/* Exit nodes are not supported yet: a default route is never taken. */
		if (nx_prefix_is_default(p))
			rc = fail(err, EINVAL, "",
				  "%s is a default route: exit nodes are not supported",
				  nx_prefix_format(p, pt, sizeof(pt)));
		/* A route over the pool would take every other peer's address with it. */
		else if (vpc && ((vpc->ipv4_cidr.addr.family == AF_INET &&
				  nx_prefix_contains(p, &vpc->ipv4_cidr)) ||
				 (vpc->ipv6_cidr.addr.family == AF_INET6 &&
				  nx_prefix_contains(p, &vpc->ipv6_cidr))))
			rc = fail(err, EINVAL, "", "%s covers the VPC's pool %s",
				  nx_prefix_format(p, pt, sizeof(pt)),
				  nx_prefix_format(p->addr.family == AF_INET ? &vpc->ipv4_cidr
									     : &vpc->ipv6_cidr,
						   vt, sizeof(vt)));
		else
			continue;
		return in_element(err, rc, "device.advertise_cidrs", i);
	}
	return 0;
}
