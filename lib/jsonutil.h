/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * json-c helpers for the REST API and the agent's controller session.
 *
 * nx_json_parse accepts only strict RFC 8259 JSON of bounded size and depth
 * (json-c alone also takes NaN, 'single quotes', 1., raw control characters
 * in strings and silently clamps out-of-range integers), and says where the
 * input went wrong.  The getters tell a missing field apart from one of the
 * wrong type so that API errors can name the field and what was expected.
 */
#ifndef NX_JSONUTIL_H
#define NX_JSONUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "lib/errmsg.h"

/* Largest document nx_json_parse accepts. */
#define NX_JSON_MAX_BYTES     (1024 * 1024)
/* A sensible max_depth for API bodies. */
#define NX_JSON_DEFAULT_DEPTH 32
/* Largest max_depth nx_json_parse accepts (json-c allocates per level). */
#define NX_JSON_DEPTH_LIMIT   1024

/* Serialisation flags: compact / indented, '/' not escaped in either. */
#define NX_JSON_PLAIN  (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define NX_JSON_PRETTY (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE)

/*
 * Parses len bytes of buf (need not be NUL-terminated) as one JSON value
 * whose containers nest at most max_depth deep ("1" is depth 0, "[1]" and
 * "[]" depth 1).  Rejects empty or whitespace-only input, input over
 * NX_JSON_MAX_BYTES, embedded NUL bytes, invalid UTF-8, anything after the
 * value but whitespace, non-RFC 8259 syntax, integers outside
 * [INT64_MIN, UINT64_MAX], numbers that overflow a double, unpaired UTF-16
 * surrogate escapes and a top-level null.  Returns a new reference the
 * caller releases with json_object_put(), or NULL with errno and err set
 * (EINVAL malformed, E2BIG too large, ENOMEM).
 */
struct json_object *nx_json_parse(const char *buf, size_t len, size_t max_depth,
				  struct nx_err *err);

/*
 * Typed getters for field key of object obj.  On success they return 0 and
 * store the value; pointers (strings, objects, arrays) are borrowed and live
 * as long as obj.  Errors: -ENOENT if the field is missing, -EINVAL if obj
 * is not an object or the field has the wrong type (null included), -ERANGE
 * if an integer does not fit the requested type.  Strings containing a NUL
 * character (\u0000) are rejected with -EINVAL.  Integers must be JSON
 * integers: 1.0 and 1e3 are not.
 */
/* The type of a value in words for messages: "null", "a boolean", "an integer", "a number
 * with a fraction or exponent", "an object", "an array", "a string". */
const char *nx_json_type_name(const struct json_object *v);

int nx_json_get_string(struct json_object *obj, const char *key, const char **out,
		       struct nx_err *err);
int nx_json_get_int64(struct json_object *obj, const char *key, int64_t *out, struct nx_err *err);
int nx_json_get_uint64(struct json_object *obj, const char *key, uint64_t *out, struct nx_err *err);
int nx_json_get_bool(struct json_object *obj, const char *key, bool *out, struct nx_err *err);
int nx_json_get_object(struct json_object *obj, const char *key, struct json_object **out,
		       struct nx_err *err);
int nx_json_get_array(struct json_object *obj, const char *key, struct json_object **out,
		      struct nx_err *err);

/*
 * Optional variants: a missing field or one that is null leaves *out
 * untouched (so preset it to the default) and returns 0; a present field is
 * stored and returns 1; a wrong type or range is an error as above.
 */
int nx_json_get_string_opt(struct json_object *obj, const char *key, const char **out,
			   struct nx_err *err);
int nx_json_get_int64_opt(struct json_object *obj, const char *key, int64_t *out,
			  struct nx_err *err);
int nx_json_get_uint64_opt(struct json_object *obj, const char *key, uint64_t *out,
			   struct nx_err *err);
int nx_json_get_bool_opt(struct json_object *obj, const char *key, bool *out, struct nx_err *err);
int nx_json_get_object_opt(struct json_object *obj, const char *key, struct json_object **out,
			   struct nx_err *err);
int nx_json_get_array_opt(struct json_object *obj, const char *key, struct json_object **out,
			  struct nx_err *err);

/* Serialises obj (NULL gives "null") with json-c's JSON_C_TO_STRING_* flags
 * (or NX_JSON_PLAIN / NX_JSON_PRETTY) into a new string the caller frees
 * with free(); NULL on allocation failure. */
char *nx_json_to_string(struct json_object *obj, int flags);

/* Add or replace field key of object obj.  A NULL val is stored as JSON
 * null.  Return 0, -EINVAL if obj is not an object, or -ENOMEM. */
int nx_json_object_add_string(struct json_object *obj, const char *key, const char *val);
int nx_json_object_add_int64(struct json_object *obj, const char *key, int64_t val);
int nx_json_object_add_uint64(struct json_object *obj, const char *key, uint64_t val);
int nx_json_object_add_bool(struct json_object *obj, const char *key, bool val);
int nx_json_object_add_null(struct json_object *obj, const char *key);

#endif /* NX_JSONUTIL_H */
