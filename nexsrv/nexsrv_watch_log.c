/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The parts of the watch streams that need no database and no server (nexsrv_watch.h):
 * the request body, what a stream wants, the lines it is sent, the bounded change log a
 * VPC's streams are fed from, and where the tails go in an initial list.  Kept apart so
 * that they are unit-tested and fuzzed on their own.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonutil.h"
#include "lib/strutil.h"
#include "nexsrv/nexsrv_watch.h"

static const char *const kind_names[NEXSRV_WATCH_KINDS] = {
	[NEXSRV_WATCH_DEVICE] = "device",
	[NEXSRV_WATCH_SECURITY_GROUP] = "security-group",
	[NEXSRV_WATCH_DEVICE_METADATA] = "device-metadata",
	[NEXSRV_WATCH_VPC] = "vpc",
};

const char *nexsrv_watch_kind_name(enum nexsrv_watch_kind kind)
{
	return (unsigned)kind < NEXSRV_WATCH_KINDS ? kind_names[kind] : "?";
}

int nexsrv_watch_kind_parse(const char *s)
{
	for (int k = 0; s && k < NEXSRV_WATCH_KINDS; k++)
		if (strcmp(s, kind_names[k]) == 0)
			return k;
	return -1;
}

/* --- the request ------------------------------------------------------------------------- */

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

/* A string for messages: at most 40 characters, control characters escaped. */
static const char *quote(const char *s, char *buf, size_t size)
{
	char tmp[44];

	nx_strlcpy(tmp, s, sizeof(tmp));
	if (strlen(s) >= sizeof(tmp) - 3)
		memcpy(tmp + sizeof(tmp) - 4, "...", 4);
	return nx_str_printable(buf, size, tmp);
}

static const char *type_name(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
	case json_type_int:
		return "a number";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	}
	return "?";
}

/* One metadata key prefix. */
static int parse_prefix(struct json_object *v, const char *field, const char **out,
			struct nexsrv_input_error *e)
{
	const char *s;
	size_t len;
	int rc;

	if (!json_object_is_type(v, json_type_string))
		return fail(e, EINVAL, field, "expected a string, not %s", type_name(v));
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len != strlen(s))
		return fail(e, EINVAL, field, "contains a NUL character");
	if (len == 0)
		return fail(e, EINVAL, field,
			    "an empty prefix (leave prefix out to watch every key)");
	rc = nexsrv_input_text(s, NEXSRV_METADATA_KEY_MAX, field, e);
	if (rc < 0)
		return rc;
	*out = s;
	return 0;
}

static int parse_prefixes(struct json_object *v, const char *field, struct nexsrv_watch_spec *spec,
			  struct nexsrv_input_error *e)
{
	char f[NEXSRV_INPUT_FIELD_LEN + 24];
	size_t n;
	int rc;

	if (json_object_is_type(v, json_type_null))
		return 0;
	if (json_object_is_type(v, json_type_string)) {
		rc = parse_prefix(v, field, &spec->prefixes[0], e);
		if (rc == 0)
			spec->n_prefixes = 1;
		return rc;
	}
	if (!json_object_is_type(v, json_type_array))
		return fail(e, EINVAL, field, "expected a string or an array of strings, not %s",
			    type_name(v));
	n = json_object_array_length(v);
	if (n > NEXSRV_WATCH_MAX_PREFIXES)
		return fail(e, EINVAL, field, "%zu prefixes: at most %d", n,
			    NEXSRV_WATCH_MAX_PREFIXES);
	for (size_t i = 0; i < n; i++) {
		snprintf(f, sizeof(f), "%s[%zu]", field, i);
		rc = parse_prefix(json_object_array_get_idx(v, i), f, &spec->prefixes[i], e);
		if (rc < 0)
			return rc;
	}
	spec->n_prefixes = n;
	return 0;
}

static int parse_vpc_id(struct json_object *v, const char *field, char *out,
			struct nexsrv_input_error *e)
{
	char q[64];
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return fail(e, EINVAL, field, "expected a UUID string, not %s", type_name(v));
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v) || !nexsrv_uuid_valid(s))
		return fail(e, EINVAL, field, "\"%s\" is not a UUID", quote(s, q, sizeof(q)));
	for (size_t i = 0; i < NEXSRV_INPUT_UUID_LEN - 1; i++)
		out[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
	out[NEXSRV_INPUT_UUID_LEN - 1] = '\0';
	return 0;
}

static int parse_options(struct json_object *opts, size_t i, bool global,
			 struct nexsrv_watch_spec *spec, char *vpc_id, struct nexsrv_input_error *e)
{
	char field[NEXSRV_INPUT_FIELD_LEN];
	struct json_object *v;
	int rc;

	snprintf(field, sizeof(field), "request[%zu].options", i);
	if (opts && !json_object_is_type(opts, json_type_object))
		return fail(e, EINVAL, field, "expected an object, not %s", type_name(opts));

	snprintf(field, sizeof(field), "request[%zu].options.vpc-id", i);
	if (opts && json_object_object_get_ex(opts, "vpc-id", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		rc = parse_vpc_id(v, field, vpc_id, e);
		if (rc < 0)
			return rc;
	} else if (global) {
		return fail(e, ENOENT, field, "required: the VPC to watch");
	}

	for (int k = 0; k < 2 && opts; k++) {
		const char *key = k == 0 ? "prefix" : "prefixes";

		if (!json_object_object_get_ex(opts, key, &v) ||
		    json_object_is_type(v, json_type_null))
			continue;
		snprintf(field, sizeof(field), "request[%zu].options.%s", i, key);
		if (spec->kind != NEXSRV_WATCH_DEVICE_METADATA)
			return fail(e, EINVAL, field, "only device-metadata takes key prefixes");
		if (spec->n_prefixes)
			return fail(e, EINVAL, field, "give prefix or prefixes, not both");
		rc = parse_prefixes(v, field, spec, e);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int parse_entry(struct json_object *entry, size_t i, bool global,
		       struct nexsrv_watch_request *out, struct nexsrv_input_error *e)
{
	struct nexsrv_watch_spec *spec = &out->spec[i];
	char field[NEXSRV_INPUT_FIELD_LEN], vpc[NEXSRV_INPUT_UUID_LEN] = "", q[64];
	struct json_object *v = NULL;
	const char *s;
	uint64_t gt = 0;
	int kind, rc;

	snprintf(field, sizeof(field), "request[%zu]", i);
	if (!json_object_is_type(entry, json_type_object))
		return fail(e, EINVAL, field, "expected an object, not %s", type_name(entry));

	snprintf(field, sizeof(field), "request[%zu].kind", i);
	if (!json_object_object_get_ex(entry, "kind", &v) || json_object_is_type(v, json_type_null))
		return fail(e, ENOENT, field,
			    "required: device, security-group, device-metadata or vpc");
	if (!json_object_is_type(v, json_type_string))
		return fail(e, EINVAL, field, "expected a string, not %s", type_name(v));
	s = json_object_get_string(v);
	kind = strlen(s) == (size_t)json_object_get_string_len(v) ? nexsrv_watch_kind_parse(s) : -1;
	if (kind < 0)
		return fail(e, EINVAL, field,
			    "unknown kind \"%s\": expected device, security-group, "
			    "device-metadata or vpc",
			    quote(s, q, sizeof(q)));
	for (size_t j = 0; j < i; j++)
		if ((int)out->spec[j].kind == kind)
			return fail(e, EINVAL, field, "kind \"%s\" is asked for twice", s);
	spec->kind = (enum nexsrv_watch_kind)kind;

	snprintf(field, sizeof(field), "request[%zu].gt_revision", i);
	if (json_object_object_get_ex(entry, "gt_revision", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_int))
			return fail(e, EINVAL, field, "expected an integer, not %s", type_name(v));
		rc = nx_json_get_uint64(entry, "gt_revision", &gt, NULL);
		if (rc < 0 || gt > INT64_MAX)
			return fail(e, EINVAL, field, "%s: expected a revision from 0 to %" PRId64,
				    json_object_to_json_string_ext(v, NX_JSON_PLAIN), INT64_MAX);
	}
	spec->gt_revision = (int64_t)gt;

	snprintf(field, sizeof(field), "request[%zu].at_tail", i);
	if (json_object_object_get_ex(entry, "at_tail", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_boolean))
			return fail(e, EINVAL, field, "expected a boolean, not %s", type_name(v));
		spec->at_tail = json_object_get_boolean(v);
	}

	v = NULL;
	if (json_object_object_get_ex(entry, "options", &v) &&
	    json_object_is_type(v, json_type_null))
		v = NULL;
	rc = parse_options(v, i, global, spec, vpc, e);
	if (rc < 0)
		return rc;
	if (vpc[0]) {
		if (out->vpc_id[0] && strcmp(out->vpc_id, vpc) != 0) {
			snprintf(field, sizeof(field), "request[%zu].options.vpc-id", i);
			return fail(
				e, EINVAL, field,
				"%s differs from the VPC asked for before: one stream watches one "
				"VPC",
				vpc);
		}
		memcpy(out->vpc_id, vpc, sizeof(vpc));
	}
	return 0;
}

int nexsrv_watch_request_parse(struct json_object *body, bool global,
			       struct nexsrv_watch_request *out, struct nexsrv_input_error *e)
{
	size_t n;
	int rc;

	memset(out, 0, sizeof(*out));
	if (e)
		memset(e, 0, sizeof(*e));
	if (!json_object_is_type(body, json_type_array))
		return fail(e, EINVAL, "request", "expected a JSON array of watches, not %s",
			    type_name(body));
	n = json_object_array_length(body);
	if (n == 0)
		return fail(e, EINVAL, "request", "no watch: give at least one kind");
	if (n > NEXSRV_WATCH_KINDS)
		return fail(e, EINVAL, "request", "%zu watches: at most %d, one per kind", n,
			    NEXSRV_WATCH_KINDS);
	for (size_t i = 0; i < n; i++) {
		rc = parse_entry(json_object_array_get_idx(body, i), i, global, out, e);
		if (rc < 0) {
			memset(out, 0, sizeof(*out));
			return rc;
		}
		out->n = i + 1;
	}
	return 0;
}

bool nexsrv_watch_request_too_old(const struct nexsrv_watch_request *r, int64_t horizon)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->spec[i].gt_revision > 0 && r->spec[i].gt_revision < horizon)
			return true;
	return false;
}

/* --- filters ----------------------------------------------------------------------------- */

int nexsrv_watch_filter_init(struct nexsrv_watch_filter *f, const struct nexsrv_watch_request *r)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < r->n; i++) {
		const struct nexsrv_watch_spec *s = &r->spec[i];

		f->kinds |= 1u << s->kind;
		if (s->kind != NEXSRV_WATCH_DEVICE_METADATA || !s->n_prefixes)
			continue;
		f->prefixes = calloc(s->n_prefixes, sizeof(*f->prefixes));
		if (!f->prefixes)
			return -ENOMEM;
		for (size_t p = 0; p < s->n_prefixes; p++) {
			f->prefixes[p] = strdup(s->prefixes[p]);
			if (!f->prefixes[p]) {
				nexsrv_watch_filter_fini(f);
				return -ENOMEM;
			}
			f->n_prefixes = p + 1;
		}
	}
	return 0;
}

void nexsrv_watch_filter_fini(struct nexsrv_watch_filter *f)
{
	for (size_t i = 0; i < f->n_prefixes; i++)
		free(f->prefixes[i]);
	free(f->prefixes);
	memset(f, 0, sizeof(*f));
}

bool nexsrv_watch_filter_match(const struct nexsrv_watch_filter *f, enum nexsrv_watch_kind kind,
			       const char *key)
{
	if ((unsigned)kind >= NEXSRV_WATCH_KINDS || !(f->kinds & (1u << kind)))
		return false;
	if (kind != NEXSRV_WATCH_DEVICE_METADATA || !f->n_prefixes)
		return true;
	for (size_t i = 0; key && i < f->n_prefixes; i++)
		if (nx_str_startswith(key, f->prefixes[i]))
			return true;
	return false;
}

char *nexsrv_watch_filter_describe(const struct nexsrv_watch_filter *f, char *buf, size_t size)
{
	struct nx_sbuf b;
	char q[64];

	nx_sbuf_init(&b, buf, size);
	for (int k = 0; k < NEXSRV_WATCH_KINDS; k++) {
		if (!(f->kinds & (1u << k)))
			continue;
		nx_sbuf_printf(&b, "%s%s", nx_sbuf_len(&b) ? "," : "", kind_names[k]);
		if (k != NEXSRV_WATCH_DEVICE_METADATA || !f->n_prefixes)
			continue;
		nx_sbuf_puts(&b, "(prefix ");
		for (size_t i = 0; i < f->n_prefixes; i++)
			nx_sbuf_printf(&b, "%s%s", i ? " " : "",
				       quote(f->prefixes[i], q, sizeof(q)));
		nx_sbuf_puts(&b, ")");
	}
	if (nx_sbuf_truncated(&b) && size > 4)
		memcpy(buf + size - 4, "...", 4);
	return buf;
}

/* --- lines ------------------------------------------------------------------------------- */

/* obj serialised compactly plus "\n", into *line; takes obj. */
static int finish_line(struct json_object *obj, char **line, size_t *len)
{
	char *text = obj ? nx_json_to_string(obj, NX_JSON_PLAIN) : NULL;
	size_t n;

	json_object_put(obj);
	*line = NULL;
	*len = 0;
	if (!text)
		return -ENOMEM;
	n = strlen(text);
	*line = realloc(text, n + 2);
	if (!*line) {
		free(text);
		return -ENOMEM;
	}
	(*line)[n] = '\n';
	(*line)[n + 1] = '\0';
	*len = n + 1;
	return 0;
}

int nexsrv_watch_line(enum nexsrv_watch_kind kind, bool deleted, bool tail,
		      struct json_object *value, char **line, size_t *len)
{
	struct json_object *obj = json_object_new_object();

	if (obj && (nx_json_object_add_string(obj, "kind", nexsrv_watch_kind_name(kind)) < 0 ||
		    nx_json_object_add_string(obj, "type",
					      tail	? "tail"
					      : deleted ? "delete"
							: "change") < 0 ||
		    (!tail && json_object_object_add(obj, "value", json_object_get(value)) < 0))) {
		json_object_put(obj);
		obj = NULL;
	}
	return finish_line(obj, line, len);
}

int nexsrv_watch_error_line(int code, const char *msg, char **line, size_t *len)
{
	struct json_object *obj = json_object_new_object(), *v = json_object_new_object();

	if (!obj || !v || nx_json_object_add_string(v, "error", msg) < 0 ||
	    nx_json_object_add_int64(v, "code", code) < 0 ||
	    nx_json_object_add_string(obj, "type", "error") < 0 ||
	    json_object_object_add(obj, "value", v) < 0) {
		json_object_put(v);
		json_object_put(obj);
		obj = NULL;
	}
	return finish_line(obj, line, len);
}

/* --- events and the change log ----------------------------------------------------------- */

struct nexsrv_watch_event *nexsrv_watch_event_new(int64_t revision, enum nexsrv_watch_kind kind,
						  bool deleted, const char *id, const char *key,
						  struct json_object *value)
{
	struct nexsrv_watch_event *ev;
	char *line = NULL;

	if (!id || strlen(id) >= NEXSRV_INPUT_UUID_LEN)
		return NULL;
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return NULL;
	ev->revision = revision;
	ev->kind = kind;
	ev->deleted = deleted;
	nx_strlcpy(ev->id, id, sizeof(ev->id));
	if ((key && !(ev->key = strdup(key))) ||
	    nexsrv_watch_line(kind, deleted, false, value, &line, &ev->len) < 0 ||
	    !(ev->shared = nexsrv_shared_new(line, ev->len))) {
		free(line);
		nexsrv_watch_event_free(ev);
		return NULL;
	}
	free(line);
	ev->line = ev->shared->data;
	return ev;
}

void nexsrv_watch_event_free(struct nexsrv_watch_event *ev)
{
	if (!ev)
		return;
	free(ev->key);
	nexsrv_shared_unref(ev->shared);
	free(ev);
}

/* A ring of max events: ev[(head + i) % max] for i < n, oldest first. */
struct nexsrv_watch_log {
	struct nexsrv_watch_event **ev;
	size_t max, head, n;
	size_t bytes, max_bytes;
	int64_t floor, last;
};

struct nexsrv_watch_log *nexsrv_watch_log_new(size_t max_events, size_t max_bytes, int64_t base)
{
	struct nexsrv_watch_log *log;

	if (max_events == 0)
		return NULL;
	log = calloc(1, sizeof(*log));
	if (!log)
		return NULL;
	log->ev = calloc(max_events, sizeof(*log->ev));
	if (!log->ev) {
		free(log);
		return NULL;
	}
	log->max = max_events;
	log->max_bytes = max_bytes;
	log->floor = log->last = base;
	return log;
}

void nexsrv_watch_log_free(struct nexsrv_watch_log *log)
{
	if (!log)
		return;
	for (size_t i = 0; i < log->n; i++)
		nexsrv_watch_event_free(log->ev[(log->head + i) % log->max]);
	free(log->ev);
	free(log);
}

/* Drops the oldest event; the log no longer covers its revision. */
static void log_drop_oldest(struct nexsrv_watch_log *log)
{
	struct nexsrv_watch_event *ev = log->ev[log->head];

	log->floor = ev->revision;
	log->bytes -= ev->len;
	nexsrv_watch_event_free(ev);
	log->ev[log->head] = NULL;
	log->head = (log->head + 1) % log->max;
	log->n--;
}

int nexsrv_watch_log_append(struct nexsrv_watch_log *log, struct nexsrv_watch_event *ev)
{
	if (!ev || ev->revision <= log->last)
		return -EINVAL;
	while (log->n && (log->n == log->max || log->bytes + ev->len > log->max_bytes))
		log_drop_oldest(log);
	log->ev[(log->head + log->n) % log->max] = ev;
	log->n++;
	log->bytes += ev->len;
	log->last = ev->revision;
	/* An event alone over the byte bound is still held: the newest is always known. */
	return 0;
}

int64_t nexsrv_watch_log_last(const struct nexsrv_watch_log *log)
{
	return log->last;
}

int64_t nexsrv_watch_log_floor(const struct nexsrv_watch_log *log)
{
	return log->floor;
}

bool nexsrv_watch_log_covers(const struct nexsrv_watch_log *log, int64_t since)
{
	return since >= log->floor;
}

size_t nexsrv_watch_log_count(const struct nexsrv_watch_log *log)
{
	return log->n;
}

size_t nexsrv_watch_log_bytes(const struct nexsrv_watch_log *log)
{
	return log->bytes;
}

const struct nexsrv_watch_event *nexsrv_watch_log_at(const struct nexsrv_watch_log *log, size_t i)
{
	return i < log->n ? log->ev[(log->head + i) % log->max] : NULL;
}

size_t nexsrv_watch_log_after(const struct nexsrv_watch_log *log, int64_t since)
{
	size_t lo = 0, hi = log->n;

	while (lo < hi) { /* the first index whose revision > since */
		size_t mid = lo + (hi - lo) / 2;

		if (nexsrv_watch_log_at(log, mid)->revision > since)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* --- the initial list -------------------------------------------------------------------- */

void nexsrv_watch_tail_plan(const enum nexsrv_watch_kind *row_kinds, size_t n_rows,
			    long last_row[NEXSRV_WATCH_KINDS])
{
	for (int k = 0; k < NEXSRV_WATCH_KINDS; k++)
		last_row[k] = -1;
	for (size_t i = 0; i < n_rows; i++)
		if ((unsigned)row_kinds[i] < NEXSRV_WATCH_KINDS)
			last_row[row_kinds[i]] = (long)i;
}
