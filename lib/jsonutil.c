/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * json-c helpers; see jsonutil.h.
 *
 * Parsing happens in two passes.  nx_json_check (jsondoc.c) checks the input against
 * RFC 8259 (json-c is lenient about numbers, literals, quotes and control characters, and
 * clamps integers that do not fit 64 bits), its structure, nesting depth and trailing data,
 * so every error carries an exact offset; json_tokener then builds the tree from a
 * NUL-terminated copy.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsondoc.h"
#include "lib/jsonutil.h"

struct json_object *nx_json_parse(const char *buf, size_t len, size_t max_depth, struct nx_err *err)
{
	struct json_tokener *tok = NULL;
	struct json_object *obj = NULL;
	enum json_tokener_error jerr;
	char *copy = NULL;
	int rc;

	rc = nx_json_check(buf, len, max_depth, err);
	if (rc < 0)
		goto out;
	copy = malloc(len + 1);
	if (!copy) {
		rc = nx_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	memcpy(copy, buf, len);
	copy[len] = '\0';

	/* json-c counts a container holding a value one level deeper than
	 * we do; the check has already enforced max_depth exactly. */
	tok = json_tokener_new_ex((int)max_depth + 1);
	if (!tok) {
		rc = nx_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/* Including the NUL lets json-c finish a top-level number. */
	obj = json_tokener_parse_ex(tok, copy, (int)len + 1);
	jerr = json_tokener_get_error(tok);
	if (jerr != json_tokener_success) {
		json_object_put(obj);
		obj = NULL;
		rc = nx_err_set(err, EINVAL, "%s at offset %zu", json_tokener_error_desc(jerr),
				json_tokener_get_parse_end(tok));
		goto out;
	}
	if (!obj)
		rc = nx_err_set(err, EINVAL, "top-level value is null");
out:
	if (tok) /* json_tokener_free(NULL) crashes */
		json_tokener_free(tok);
	free(copy);
	if (rc < 0)
		errno = -rc;
	return obj;
}

const char *nx_json_type_name(const struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
		return "a number with a fraction or exponent";
	case json_type_int:
		return "an integer";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	}
	return "an unknown type";
}

/* Returns 1 with *v set if field key exists with type want, 0 if it is
 * absent or null and optional, or a negative errno. */
static int get_field(struct json_object *obj, const char *key, enum json_type want,
		     const char *want_desc, bool optional, struct json_object **v,
		     struct nx_err *err)
{
	*v = NULL;
	if (!obj || !json_object_is_type(obj, json_type_object))
		return nx_err_set(err, EINVAL, "cannot read field \"%s\" from %s", key,
				  nx_json_type_name(obj));
	if (!json_object_object_get_ex(obj, key, v)) {
		if (optional)
			return 0;
		return nx_err_set(err, ENOENT, "missing required field \"%s\"", key);
	}
	if (!*v && optional)
		return 0;
	if (!json_object_is_type(*v, want))
		return nx_err_set(err, EINVAL, "field \"%s\" must be %s, got %s", key, want_desc,
				  nx_json_type_name(*v));
	return 1;
}

static int get_string(struct json_object *obj, const char *key, const char **out, bool optional,
		      struct nx_err *err)
{
	struct json_object *v;
	const char *s;
	int rc;

	rc = get_field(obj, key, json_type_string, "a string", optional, &v, err);
	if (rc <= 0)
		return rc;
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v))
		return nx_err_set(err, EINVAL, "field \"%s\" contains a NUL character", key);
	*out = s;
	return 1;
}

static int get_int64(struct json_object *obj, const char *key, int64_t *out, bool optional,
		     struct nx_err *err)
{
	struct json_object *v;
	int64_t i;
	int rc;

	rc = get_field(obj, key, json_type_int, "an integer", optional, &v, err);
	if (rc <= 0)
		return rc;
	/* json-c saturates values above INT64_MAX stored as unsigned. */
	i = json_object_get_int64(v);
	if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
		return nx_err_set(err, ERANGE,
				  "field \"%s\": %" PRIu64 " is out of range for a signed "
				  "64-bit integer",
				  key, json_object_get_uint64(v));
	*out = i;
	return 1;
}

static int get_uint64(struct json_object *obj, const char *key, uint64_t *out, bool optional,
		      struct nx_err *err)
{
	struct json_object *v;
	int64_t i;
	int rc;

	rc = get_field(obj, key, json_type_int, "a non-negative integer", optional, &v, err);
	if (rc <= 0)
		return rc;
	i = json_object_get_int64(v);
	if (i < 0)
		return nx_err_set(err, ERANGE,
				  "field \"%s\" must be a non-negative integer, got %" PRId64, key,
				  i);
	*out = json_object_get_uint64(v);
	return 1;
}

static int get_bool(struct json_object *obj, const char *key, bool *out, bool optional,
		    struct nx_err *err)
{
	struct json_object *v;
	int rc;

	rc = get_field(obj, key, json_type_boolean, "a boolean", optional, &v, err);
	if (rc <= 0)
		return rc;
	*out = json_object_get_boolean(v);
	return 1;
}

static int get_typed(struct json_object *obj, const char *key, enum json_type want,
		     const char *want_desc, struct json_object **out, bool optional,
		     struct nx_err *err)
{
	struct json_object *v;
	int rc;

	rc = get_field(obj, key, want, want_desc, optional, &v, err);
	if (rc <= 0)
		return rc;
	*out = v;
	return 1;
}

/* Required getters report success as 0. */
static int required(int rc)
{
	return rc < 0 ? rc : 0;
}

int nx_json_get_string(struct json_object *obj, const char *key, const char **out,
		       struct nx_err *err)
{
	return required(get_string(obj, key, out, false, err));
}

int nx_json_get_int64(struct json_object *obj, const char *key, int64_t *out, struct nx_err *err)
{
	return required(get_int64(obj, key, out, false, err));
}

int nx_json_get_uint64(struct json_object *obj, const char *key, uint64_t *out, struct nx_err *err)
{
	return required(get_uint64(obj, key, out, false, err));
}

int nx_json_get_bool(struct json_object *obj, const char *key, bool *out, struct nx_err *err)
{
	return required(get_bool(obj, key, out, false, err));
}

int nx_json_get_object(struct json_object *obj, const char *key, struct json_object **out,
		       struct nx_err *err)
{
	return required(get_typed(obj, key, json_type_object, "an object", out, false, err));
}

int nx_json_get_array(struct json_object *obj, const char *key, struct json_object **out,
		      struct nx_err *err)
{
	return required(get_typed(obj, key, json_type_array, "an array", out, false, err));
}

int nx_json_get_string_opt(struct json_object *obj, const char *key, const char **out,
			   struct nx_err *err)
{
	return get_string(obj, key, out, true, err);
}

int nx_json_get_int64_opt(struct json_object *obj, const char *key, int64_t *out,
			  struct nx_err *err)
{
	return get_int64(obj, key, out, true, err);
}

int nx_json_get_uint64_opt(struct json_object *obj, const char *key, uint64_t *out,
			   struct nx_err *err)
{
	return get_uint64(obj, key, out, true, err);
}

int nx_json_get_bool_opt(struct json_object *obj, const char *key, bool *out, struct nx_err *err)
{
	return get_bool(obj, key, out, true, err);
}

int nx_json_get_object_opt(struct json_object *obj, const char *key, struct json_object **out,
			   struct nx_err *err)
{
	return get_typed(obj, key, json_type_object, "an object", out, true, err);
}

int nx_json_get_array_opt(struct json_object *obj, const char *key, struct json_object **out,
			  struct nx_err *err)
{
	return get_typed(obj, key, json_type_array, "an array", out, true, err);
}

char *nx_json_to_string(struct json_object *obj, int flags)
{
	const char *s = json_object_to_json_string_ext(obj, flags);

	return s ? strdup(s) : NULL;
}

/* Adds v (a new reference, or NULL for JSON null) under key; consumes v. */
static int add_value(struct json_object *obj, const char *key, struct json_object *v)
{
	if (!obj || !key || !json_object_is_type(obj, json_type_object)) {
		json_object_put(v);
		return -EINVAL;
	}
	if (json_object_object_add(obj, key, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

int nx_json_object_add_string(struct json_object *obj, const char *key, const char *val)
{
	struct json_object *v = NULL;

	if (val) {
		v = json_object_new_string(val);
		if (!v)
			return -ENOMEM;
	}
	return add_value(obj, key, v);
}

int nx_json_object_add_int64(struct json_object *obj, const char *key, int64_t val)
{
	struct json_object *v = json_object_new_int64(val);

	return v ? add_value(obj, key, v) : -ENOMEM;
}

int nx_json_object_add_uint64(struct json_object *obj, const char *key, uint64_t val)
{
	struct json_object *v = json_object_new_uint64(val);

	return v ? add_value(obj, key, v) : -ENOMEM;
}

int nx_json_object_add_bool(struct json_object *obj, const char *key, bool val)
{
	struct json_object *v = json_object_new_boolean(val);

	return v ? add_value(obj, key, v) : -ENOMEM;
}

int nx_json_object_add_null(struct json_object *obj, const char *key)
{
	return add_value(obj, key, NULL);
}
