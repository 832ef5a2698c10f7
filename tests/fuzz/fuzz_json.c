/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for lib/jsonutil.  A document nx_json_parse accepts must
 * serialise to text that parses again and serialises identically; every
 * rejection must carry a message; the typed getters must agree with the
 * type json-c reports for every field of a top-level object.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nx_err err = { "" };
	struct json_object *obj, *again = NULL;
	char *s1 = NULL, *s2 = NULL;

	obj = nx_json_parse((const char *)data, size, NX_JSON_DEFAULT_DEPTH, &err);
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
