/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for lib/jsonutil and lib/jsondoc.  A document nx_json_parse
 * accepts must serialise to text that parses again and serialises
 * identically; every rejection must carry a message; the typed getters must
 * agree with the type json-c reports for every field of a top-level object.
 * nx_jdoc_parse must accept exactly what nx_json_parse accepts (and a
 * top-level null), read from a buffer with no NUL after it, and its tokens
 * must hold what json-c's tree holds, value by value.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsondoc.h"
#include "lib/jsonutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_getters(struct json_object *obj)
{
	json_object_object_foreach (obj, key, val) {
		enum json_type t = json_object_get_type(val);
		struct json_object *sub;
		const char *s;
		int64_t i;
		uint64_t u;
		bool b;
		int rc;

		rc = nx_json_get_string(obj, key, &s, NULL);
		if ((rc == 0) !=
		    (t == json_type_string && strlen(json_object_get_string(val)) ==
						      (size_t)json_object_get_string_len(val)))
			abort();
		rc = nx_json_get_int64(obj, key, &i, NULL);
		if (rc == -ENOENT || (rc == 0 && t != json_type_int))
			abort();
		rc = nx_json_get_uint64(obj, key, &u, NULL);
		if (rc == -ENOENT || (rc == 0 && t != json_type_int))
			abort();
		rc = nx_json_get_bool(obj, key, &b, NULL);
		if ((rc == 0) != (t == json_type_boolean))
			abort();
		rc = nx_json_get_object(obj, key, &sub, NULL);
		if ((rc == 0) != (t == json_type_object))
			abort();
		rc = nx_json_get_array(obj, key, &sub, NULL);
		if ((rc == 0) != (t == json_type_array))
			abort();
		rc = nx_json_get_bool_opt(obj, key, &b, NULL);
		if (rc == 0 && t != json_type_null)
			abort();
	}
}

/* Token i of d holds what v holds. */
static void same_value(const struct nx_jdoc *d, size_t i, struct json_object *v)
{
	enum nx_jtype t = nx_jdoc_type(d, i);
	char buf[256];
	size_t n, k;
	int64_t i64;
	uint64_t u64;
	int rc;

	switch (json_object_get_type(v)) {
	case json_type_null:
		if (t != NX_JT_NULL)
			abort();
		break;
	case json_type_boolean:
		if (t != NX_JT_BOOL || d->tok[i].truth != (bool)json_object_get_boolean(v))
			abort();
		break;
	case json_type_int:
		if (t != NX_JT_INT)
			abort();
		rc = nx_jdoc_int64(d, i, &i64);
		if (rc == 0 ? i64 != json_object_get_int64(v) : rc != -ERANGE)
			abort();
		if (rc == -ERANGE &&
		    (nx_jdoc_uint64(d, i, &u64) != 0 || u64 != json_object_get_uint64(v)))
			abort();
		break;
	case json_type_double:
		if (t != NX_JT_REAL)
			abort();
		break;
	case json_type_string:
		if (t != NX_JT_STRING)
			abort();
		rc = nx_jdoc_string(d, i, buf, sizeof(buf), &n);
		/* json-c 0.16 turns some valid surrogate pairs (\\ud837\\ude00) into U+FFFD. */
		if (memmem(json_object_get_string(v), (size_t)json_object_get_string_len(v),
			   "\xef\xbf\xbd", 3))
			break;
		if (n != (size_t)json_object_get_string_len(v))
			abort();
		if (memchr(json_object_get_string(v), '\0', n) ? rc != -EINVAL
		    : n >= sizeof(buf)			       ? rc != -ENOSPC
				       : rc != 0 || memcmp(buf, json_object_get_string(v), n) != 0)
			abort();
		break;
	case json_type_array:
		if (t != NX_JT_ARRAY || d->tok[i].count != json_object_array_length(v))
			abort();
		k = i + 1;
		for (size_t e = 0; e < d->tok[i].count; e++, k = nx_jdoc_next(d, k))
			same_value(d, k, json_object_array_get_idx(v, e));
		if (k != nx_jdoc_next(d, i))
			abort();
		break;
	case json_type_object:
		if (t != NX_JT_OBJECT)
			abort();
		/* Each key's last value (json-c keeps the last).  json-c cuts a key at a NUL
		 * character, so such a key may overwrite another there: objects holding
		 * one are not compared member by member. */
		for (k = i + 1; k < nx_jdoc_next(d, i); k = nx_jdoc_next(d, k + 1))
			if (nx_jdoc_string(d, k, buf, sizeof(buf), &n) == -EINVAL)
				return;
		for (k = i + 1; k < nx_jdoc_next(d, i); k = nx_jdoc_next(d, k + 1)) {
			struct json_object *val;

			if (nx_jdoc_string(d, k, buf, sizeof(buf), &n) != 0 ||
			    nx_jdoc_member(d, i, buf) != k + 1)
				continue;
			if (!json_object_object_get_ex(v, buf, &val))
				abort();
			same_value(d, k + 1, val);
		}
		break;
	}
}

static void check_jdoc(const uint8_t *data, size_t size, struct json_object *obj)
{
	struct nx_err err = { "" };
	struct nx_jdoc d = NX_JDOC_INIT;
	char *exact = malloc(size ? size : 1); /* no NUL after the input */
	int rc;

	if (!exact)
		abort();
	memcpy(exact, data, size);
	rc = nx_jdoc_parse(&d, exact, size, NX_JSON_DEFAULT_DEPTH, &err);
	if (obj) {
		if (rc != 0)
			abort();
		same_value(&d, 0, obj);
	} else if (rc == 0) {
		/* Only a top-level null is a document here and not there. */
		if (nx_jdoc_type(&d, 0) != NX_JT_NULL)
			abort();
	} else if (err.msg[0] == '\0') {
		abort();
	}
	if (rc == 0 && d.tok[0].next != d.n)
		abort();
	nx_jdoc_fini(&d);
	free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nx_err err = { "" };
	struct json_object *obj, *again = NULL;
	char *s1 = NULL, *s2 = NULL;

	obj = nx_json_parse((const char *)data, size, NX_JSON_DEFAULT_DEPTH, &err);
	check_jdoc(data, size, obj);
	if (!obj) {
		if (err.msg[0] == '\0')
			abort();
		return 0;
	}
	if (json_object_is_type(obj, json_type_object))
		check_getters(obj);

	s1 = nx_json_to_string(obj, NX_JSON_PLAIN);
	if (!s1)
		abort();
	again = nx_json_parse(s1, strlen(s1), NX_JSON_DEFAULT_DEPTH, &err);
	if (!again)
		abort(); /* our own output must be acceptable input */
	s2 = nx_json_to_string(again, NX_JSON_PLAIN);
	if (!s2 || strcmp(s1, s2) != 0)
		abort();

	free(s2);
	free(s1);
	json_object_put(again);
	json_object_put(obj);
	return 0;
}
