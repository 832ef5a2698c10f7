/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * json-c helpers; see jsonutil.h.
 *
 * Parsing happens in two passes over a NUL-terminated copy of the input.  A
 * small lexer checks every token against RFC 8259 (json-c is lenient about
 * numbers, literals, quotes and control characters, and clamps integers
 * that do not fit 64 bits), tracks nesting depth and finds trailing data,
 * so those errors carry exact offsets.  json_tokener then builds the tree
 * and catches what is left: structural mistakes such as "[1 2]" or "[}".
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonutil.h"

/* Longest piece of offending input quoted in a message. */
#define QUOTE_MAX 24

struct json_lexer {
	const char *s; /* NUL-terminated */
	size_t len;
	struct nx_err *err;
};

static bool is_json_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int unexpected(struct nx_err *err, unsigned char c, size_t off)
{
	if (c >= 0x21 && c < 0x7f)
		return nx_err_set(err, EINVAL, "unexpected character '%c' at offset %zu", c, off);
	return nx_err_set(err, EINVAL, "unexpected byte 0x%02x at offset %zu", c, off);
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_seq_len(const unsigned char *p, size_t avail)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] < 0xc2)
		return 0;
	if (p[0] < 0xe0) {
		n = 2;
	} else if (p[0] < 0xf0) {
		n = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;
		else if (p[0] == 0xed)
			hi = 0x9f;
	} else if (p[0] < 0xf5) {
		n = 4;
		if (p[0] == 0xf0)
			lo = 0x90;
		else if (p[0] == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* Value of 4 hex digits at p, or -1. */
static long hex4(const char *p, size_t avail)
{
	long v = 0;
	size_t i;

	if (avail < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		unsigned char c = (unsigned char)p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static int lex_string(struct json_lexer *l, size_t *pos)
{
	size_t start = *pos, i = *pos + 1;
	long cp, lo;

	for (;;) {
		unsigned char c;

		if (i >= l->len)
			return nx_err_set(l->err, EINVAL,
					  "unterminated string starting at offset %zu", start);
		c = (unsigned char)l->s[i];
		if (c == '"')
			break;
		if (c < 0x20)
			return nx_err_set(
				l->err, EINVAL,
				"unescaped control character 0x%02x in string at offset %zu", c, i);
		if (c >= 0x80) {
			size_t n = utf8_seq_len((const unsigned char *)l->s + i, l->len - i);

			if (!n)
				return nx_err_set(l->err, EINVAL, "invalid UTF-8 at offset %zu", i);
			i += n;
			continue;
		}
		if (c != '\\') {
			i++;
			continue;
		}
		if (i + 1 >= l->len)
			return nx_err_set(l->err, EINVAL,
					  "unterminated string starting at offset %zu", start);
		c = (unsigned char)l->s[i + 1];
		switch (c) {
		case '"':
		case '\\':
		case '/':
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't':
			i += 2;
			break;
		case 'u':
			cp = hex4(l->s + i + 2, l->len - i - 2);
			if (cp < 0)
				return nx_err_set(l->err, EINVAL,
						  "invalid \\u escape at offset %zu (4 hex digits "
						  "expected)",
						  i);
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return nx_err_set(
					l->err, EINVAL,
					"unpaired UTF-16 surrogate \\u%04lx at offset %zu", cp, i);
			if (cp >= 0xd800 && cp <= 0xdbff) {
				lo = -1;
				if (l->len - i >= 12 && l->s[i + 6] == '\\' && l->s[i + 7] == 'u')
					lo = hex4(l->s + i + 8, l->len - i - 8);
				if (lo < 0xdc00 || lo > 0xdfff)
					return nx_err_set(l->err, EINVAL,
							  "unpaired UTF-16 surrogate \\u%04lx at "
							  "offset %zu",
							  cp, i);
				i += 6;
			}
			i += 6;
			break;
		default:
			if (c >= 0x21 && c < 0x7f)
				return nx_err_set(l->err, EINVAL,
						  "invalid escape '\\%c' at offset %zu", c, i);
			return nx_err_set(l->err, EINVAL,
					  "invalid escape (backslash, byte 0x%02x) at offset %zu",
					  c, i);
		}
	}
	*pos = i + 1;
	return 0;
}

static int bad_number(struct json_lexer *l, size_t start, size_t end, const char *why)
{
	int n = end - start > QUOTE_MAX ? QUOTE_MAX : (int)(end - start);

	return nx_err_set(l->err, EINVAL, "invalid number '%.*s%s' at offset %zu: %s", n,
			  l->s + start, end - start > QUOTE_MAX ? "..." : "", start, why);
}

static int lex_number(struct json_lexer *l, size_t *pos)
{
	const char *s = l->s;
	size_t start = *pos, i = *pos, j;
	bool integral = true;
	unsigned char c;

	/* s[l->len] is NUL, so looking one past the input is safe. */
	if (s[i] == '-')
		i++;
	if (s[i] == '0') {
		i++;
		if (is_digit((unsigned char)s[i]))
			return bad_number(l, start, i + 1, "leading zero");
	} else if (is_digit((unsigned char)s[i])) {
		while (is_digit((unsigned char)s[i]))
			i++;
	} else {
		return bad_number(l, start, i + 1, "digit expected after '-'");
	}
	if (s[i] == '.') {
		integral = false;
		i++;
		if (!is_digit((unsigned char)s[i]))
			return bad_number(l, start, i + 1, "digit expected after '.'");
		while (is_digit((unsigned char)s[i]))
			i++;
	}
	if (s[i] == 'e' || s[i] == 'E') {
		integral = false;
		i++;
		if (s[i] == '+' || s[i] == '-')
			i++;
		if (!is_digit((unsigned char)s[i]))
			return bad_number(l, start, i + 1, "digit expected in exponent");
		while (is_digit((unsigned char)s[i]))
			i++;
	}
	c = (unsigned char)s[i];
	if (is_alpha(c) || is_digit(c) || c == '.' || c == '+' || c == '-' || c == '_')
		return bad_number(l, start, i + 1, "unexpected character after number");

	if (integral) {
		bool neg = s[start] == '-';
		uint64_t acc = 0;

		for (j = start + neg; j < i; j++) {
			unsigned int d = (unsigned char)s[j] - '0';

			if (acc > (UINT64_MAX - d) / 10)
				return bad_number(l, start, i, "integer out of 64-bit range");
			acc = acc * 10 + d;
		}
		if (neg && acc > (uint64_t)INT64_MAX + 1)
			return bad_number(l, start, i, "integer out of 64-bit range");
	} else if (isinf(strtod(s + start, NULL))) {
		return bad_number(l, start, i, "too large for a double");
	}
	*pos = i;
	return 0;
}

static int lex_literal(struct json_lexer *l, size_t *pos)
{
	size_t start = *pos, i = *pos, n;

	while (is_alpha((unsigned char)l->s[i]) || is_digit((unsigned char)l->s[i]) ||
	       l->s[i] == '_')
		i++;
	n = i - start;
	if ((n == 4 && !memcmp(l->s + start, "true", 4)) ||
	    (n == 5 && !memcmp(l->s + start, "false", 5)) ||
	    (n == 4 && !memcmp(l->s + start, "null", 4))) {
		*pos = i;
		return 0;
	}
	return nx_err_set(l->err, EINVAL, "invalid literal '%.*s%s' at offset %zu",
			  n > QUOTE_MAX ? QUOTE_MAX : (int)n, l->s + start,
			  n > QUOTE_MAX ? "..." : "", start);
}

/* Token-level RFC 8259 check, nesting depth and trailing data. */
static int json_lex(const char *s, size_t len, size_t max_depth, struct nx_err *err)
{
	struct json_lexer l = { .s = s, .len = len, .err = err };
	size_t i = 0, depth = 0;
	bool done = false, any = false;
	int rc;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (is_json_ws(c)) {
			i++;
			continue;
		}
		if (done)
			return nx_err_set(err, EINVAL,
					  "trailing data after the JSON value at offset %zu", i);
		any = true;
		switch (c) {
		case '{':
		case '[':
			if (++depth > max_depth)
				return nx_err_set(err, EINVAL,
						  "nesting deeper than %zu at offset %zu",
						  max_depth, i);
			i++;
			break;
		case '}':
		case ']':
			if (depth == 0)
				return unexpected(err, c, i);
			i++;
			done = --depth == 0;
			break;
		case ':':
		case ',':
			if (depth == 0)
				return unexpected(err, c, i);
			i++;
			break;
		case '"':
			rc = lex_string(&l, &i);
			if (rc < 0)
				return rc;
			done = depth == 0;
			break;
		default:
			if (c == '-' || is_digit(c))
				rc = lex_number(&l, &i);
			else if (is_alpha(c))
				rc = lex_literal(&l, &i);
			else
				rc = unexpected(err, c, i);
			if (rc < 0)
				return rc;
			done = depth == 0;
			break;
		}
	}
	if (!any)
		return nx_err_set(err, EINVAL, "no JSON value in input (only whitespace)");
	if (!done)
		return nx_err_set(err, EINVAL,
				  "unexpected end of input at offset %zu (%zu unclosed bracket%s)",
				  len, depth, depth == 1 ? "" : "s");
	return 0;
}

struct json_object *nx_json_parse(const char *buf, size_t len, size_t max_depth, struct nx_err *err)
{
	struct json_tokener *tok = NULL;
	struct json_object *obj = NULL;
	enum json_tokener_error jerr;
	const char *nul;
	char *copy = NULL;
	int rc = 0;

	if (!buf || len == 0) {
		rc = nx_err_set(err, EINVAL, "empty input");
		goto out;
	}
	if (len > NX_JSON_MAX_BYTES) {
		rc = nx_err_set(err, E2BIG, "input of %zu bytes exceeds the limit of %d bytes", len,
				NX_JSON_MAX_BYTES);
		goto out;
	}
	if (max_depth > NX_JSON_DEPTH_LIMIT) {
		rc = nx_err_set(err, EINVAL, "maximum depth %zu exceeds the limit of %d", max_depth,
				NX_JSON_DEPTH_LIMIT);
		goto out;
	}
	nul = memchr(buf, '\0', len);
	if (nul) {
		rc = nx_err_set(err, EINVAL, "NUL byte at offset %zu", (size_t)(nul - buf));
		goto out;
	}

	copy = malloc(len + 1);
	if (!copy) {
		rc = nx_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	memcpy(copy, buf, len);
	copy[len] = '\0';

	rc = json_lex(copy, len, max_depth, err);
	if (rc < 0)
		goto out;

	/* json-c counts a container holding a value one level deeper than
	 * we do; the lexer has already enforced max_depth exactly. */
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
