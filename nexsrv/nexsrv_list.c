/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The list parameters of the REST API (sort, filter, range), parsed strictly.
 *
 * The original service handed them to its ORM unchecked: an unknown field or a malformed
 * value was silently ignored, and a sort string went into ORDER BY as written.  Here every
 * field is looked up in the handler's table, which alone decides the SQL text; values only
 * ever travel as statement parameters.  A parameter that does not parse is the client's
 * error (400) and every message starts with the parameter's name ("sort: ...") so that the
 * reply can name the field.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/jsonutil.h"
#include "lib/strutil.h"
#include "nexsrv/nexsrv_http.h"
#include "nexsrv/nexsrv_list.h"

/* Offsets and range bounds beyond this are refused: no list is that long. */
#define LIST_MAX_INDEX 1000000000000000LL

/* The parameters are tiny: [field, dir], {field: value, ...}, [start, end]. */
#define LIST_JSON_DEPTH 2

static const struct nexsrv_list_field *field_find(const struct nexsrv_list_field *fields,
						  const char *name)
{
	for (size_t i = 0; fields && fields[i].name; i++)
		if (strcmp(fields[i].name, name) == 0)
			return &fields[i];
	return NULL;
}

static struct json_object *param_json(const char *what, const char *text, struct nx_err *err)
{
	struct nx_err jerr = { "" };
	struct json_object *v = nx_json_parse(text, strlen(text), LIST_JSON_DEPTH, &jerr);

	if (!v)
		nx_err_set(err, EINVAL, "%s: not valid JSON: %s", what, jerr.msg);
	return v;
}

static int parse_sort(const char *text, const struct nexsrv_list_field *fields,
		      struct nexsrv_list *list, struct nx_err *err)
{
	struct json_object *v = param_json("sort", text, err);
	struct json_object *name, *dir;
	const struct nexsrv_list_field *f;
	char shown[64];
	const char *d;
	int rc = -EINVAL;

	if (!v)
		return -EINVAL;
	if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) != 2) {
		nx_err_set(err, EINVAL, "sort: expected [\"field\", \"ASC\" or \"DESC\"]");
		goto out;
	}
	name = json_object_array_get_idx(v, 0);
	dir = json_object_array_get_idx(v, 1);
	if (!json_object_is_type(name, json_type_string) ||
	    !json_object_is_type(dir, json_type_string)) {
		nx_err_set(err, EINVAL, "sort: expected [\"field\", \"ASC\" or \"DESC\"]");
		goto out;
	}
	f = field_find(fields, json_object_get_string(name));
	if (!f) {
		nx_err_set(err, EINVAL, "sort: unknown field \"%s\"",
			   nx_str_printable(shown, sizeof(shown), json_object_get_string(name)));
		goto out;
	}
	d = json_object_get_string(dir);
	if (strcasecmp(d, "ASC") != 0 && strcasecmp(d, "DESC") != 0) {
		nx_err_set(err, EINVAL, "sort: direction \"%s\" is neither ASC nor DESC",
			   nx_str_printable(shown, sizeof(shown), d));
		goto out;
	}
	if ((size_t)snprintf(list->order_by, sizeof(list->order_by), "%s %s", f->column,
			     strcasecmp(d, "ASC") == 0 ? "ASC" : "DESC") >=
	    sizeof(list->order_by)) {
		nx_err_set(err, EINVAL, "sort: the column of \"%s\" is too long", f->name);
		goto out;
	}
	rc = 0;
out:
	json_object_put(v);
	return rc;
}

/* A filter value as the text of a statement parameter: strings as they are, integers in
 * decimal, booleans as true/false; anything else is refused. */
static int filter_value(const char *key, struct json_object *val, char **out, struct nx_err *err)
{
	char shown[64], buf[32];

	switch (json_object_get_type(val)) {
	case json_type_string:
		if ((size_t)json_object_get_string_len(val) != strlen(json_object_get_string(val)))
			return nx_err_set(err, EINVAL,
					  "filter: the value of \"%s\" contains a NUL character",
					  nx_str_printable(shown, sizeof(shown), key));
		*out = strdup(json_object_get_string(val));
		break;
	case json_type_int:
		if (json_object_get_int64(val) == INT64_MAX &&
		    json_object_get_uint64(val) > INT64_MAX)
			snprintf(buf, sizeof(buf), "%llu",
				 (unsigned long long)json_object_get_uint64(val));
		else
			snprintf(buf, sizeof(buf), "%lld", (long long)json_object_get_int64(val));
		*out = strdup(buf);
		break;
	case json_type_boolean:
		*out = strdup(json_object_get_boolean(val) ? "true" : "false");
		break;
	default:
		return nx_err_set(err, EINVAL,
				  "filter: the value of \"%s\" must be a string, an integer or a "
				  "boolean",
				  nx_str_printable(shown, sizeof(shown), key));
	}
	return *out ? 0 : nx_err_set(err, ENOMEM, "filter: out of memory");
}

static int parse_filter(const char *text, const struct nexsrv_list_field *fields,
			struct nexsrv_list *list, struct nx_err *err)
{
	struct json_object *v = param_json("filter", text, err);
	const struct nexsrv_list_field *f;
	char shown[64];
	int rc = -EINVAL;

	if (!v)
		return -EINVAL;
	if (!json_object_is_type(v, json_type_object)) {
		nx_err_set(err, EINVAL, "filter: expected an object {\"field\": value, ...}");
		goto out;
	}
	json_object_object_foreach (v, key, val) {
		f = field_find(fields, key);
		if (!f) {
			rc = nx_err_set(err, EINVAL, "filter: unknown field \"%s\"",
					nx_str_printable(shown, sizeof(shown), key));
			goto out;
		}
		if (list->n_filters >= NEXSRV_LIST_MAX_FILTERS) {
			rc = nx_err_set(err, EINVAL, "filter: more than %d fields",
					NEXSRV_LIST_MAX_FILTERS);
			goto out;
		}
		rc = filter_value(key, val, &list->filter_value[list->n_filters], err);
		if (rc < 0)
			goto out;
		list->filter_column[list->n_filters++] = f->column;
	}
	rc = 0;
out:
	json_object_put(v);
	return rc;
}

static int range_bound(struct json_object *b, const char *which, long long *out, struct nx_err *err)
{
	int64_t n;

	if (!json_object_is_type(b, json_type_int))
		return nx_err_set(err, EINVAL, "range: %s is not an integer", which);
	n = json_object_get_int64(b);
	if (n < 0 || n > LIST_MAX_INDEX)
		return nx_err_set(err, EINVAL, "range: %s is out of range 0-%lld", which,
				  LIST_MAX_INDEX);
	*out = n;
	return 0;
}

static int parse_range(const char *text, struct nexsrv_list *list, struct nx_err *err)
{
	struct json_object *v = param_json("range", text, err);
	long long start, end;
	int rc = -EINVAL;

	if (!v)
		return -EINVAL;
	if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) != 2) {
		nx_err_set(err, EINVAL, "range: expected [first, last]");
		goto out;
	}
	if (range_bound(json_object_array_get_idx(v, 0), "first", &start, err) < 0 ||
	    range_bound(json_object_array_get_idx(v, 1), "last", &end, err) < 0)
		goto out;
	if (end < start) {
		nx_err_set(err, EINVAL, "range: last (%lld) is before first (%lld)", end, start);
		goto out;
	}
	list->offset = start;
	list->limit = end - start + 1;
	if (list->limit > NEXSRV_LIST_MAX_LIMIT)
		list->limit = NEXSRV_LIST_MAX_LIMIT;
	rc = 0;
out:
	json_object_put(v);
	return rc;
}

int nexsrv_list_parse(struct nexsrv_req *req, const struct nexsrv_list_field *fields,
		      const char *default_order, struct nexsrv_list *list, struct nx_err *err)
{
	const char *sort = nexsrv_req_query(req, "sort");
	const char *filter = nexsrv_req_query(req, "filter");
	const char *range = nexsrv_req_query(req, "range");
	int rc = 0;

	memset(list, 0, sizeof(*list));
	list->limit = NEXSRV_LIST_MAX_LIMIT;
	if (nx_strlcpy(list->order_by, default_order ? default_order : "",
		       sizeof(list->order_by)) >= sizeof(list->order_by))
		return nx_err_set(err, EINVAL, "sort: the default order is too long");
	if (sort)
		rc = parse_sort(sort, fields, list, err);
	if (rc == 0 && filter)
		rc = parse_filter(filter, fields, list, err);
	if (rc == 0 && range)
		rc = parse_range(range, list, err);
	if (rc < 0)
		nexsrv_list_fini(list);
	return rc;
}

int nexsrv_list_where(const struct nexsrv_list *list, char *where, size_t size, const char **params,
		      int *nparams)
{
	struct nx_sbuf b;

	if (!size)
		return -ENOSPC;
	nx_sbuf_init(&b, where + strlen(where), size - strlen(where));
	for (int i = 0; i < list->n_filters; i++) {
		params[*nparams] = list->filter_value[i];
		(*nparams)++;
		nx_sbuf_printf(&b, " AND %s = $%d", list->filter_column[i], *nparams);
	}
	return nx_sbuf_truncated(&b) ? -ENOSPC : 0;
}

void nexsrv_list_fini(struct nexsrv_list *list)
{
	for (int i = 0; i < list->n_filters; i++) {
		free(list->filter_value[i]);
		list->filter_value[i] = NULL;
		list->filter_column[i] = NULL;
	}
	list->n_filters = 0;
}
