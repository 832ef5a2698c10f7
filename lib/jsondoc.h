/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Strict RFC 8259 JSON read in place.
 *
 * nx_jdoc_parse checks a document and records each of its values as a token in a flat
 * array, in document order; nothing is copied and no value is allocated, so a hot path that
 * reads a few fields of many small documents (the agent's watch stream) pays one pass over
 * the text.  The token array belongs to the document and is reused by its next parse.
 *
 * An object's token is followed by its members, each a key (a string token) and the value's
 * tokens; an array's by its elements.  Every token knows the index of the token after
 * everything it contains (nx_jdoc_next), so a reader steps over a value without looking into
 * it.  Token 0 is the document's top-level value, so 0 also serves as "no value".
 *
 * nx_json_check is the same check without the tokens; nx_json_parse (jsonutil.h) runs it
 * before json-c builds its tree.
 */
#ifndef NX_JSONDOC_H
#define NX_JSONDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/errmsg.h"

enum nx_jtype {
	NX_JT_NULL,
	NX_JT_BOOL,
	NX_JT_INT,  /* no fraction, no exponent; within [INT64_MIN, UINT64_MAX] */
	NX_JT_REAL, /* a fraction or an exponent; finite as a double */
	NX_JT_STRING,
	NX_JT_ARRAY,
	NX_JT_OBJECT,
};

struct nx_jtok {
	uint32_t off;	/* the value's first byte: a string's quote, a container's bracket */
	uint32_t len;	/* bytes; quotes and brackets included */
	uint32_t next;	/* index of the first token after this value and what it contains */
	uint32_t count; /* an object's members, an array's elements */
	uint8_t type;	/* enum nx_jtype */
	bool escaped;	/* a string with backslash escapes */
	bool truth;	/* a boolean's value */
};

struct nx_jdoc {
	const char *text; /* borrowed from the caller of nx_jdoc_parse */
	struct nx_jtok *tok;
	size_t n, cap;
};

#define NX_JDOC_INIT \
	{            \
		0    \
	}

/*
 * Checks len bytes of text (need not be NUL-terminated) as one JSON value nested at most
 * max_depth deep ("1" is depth 0, "[]" depth 1) and fills d's tokens; text must outlive
 * every use of d until the next parse.  Refuses what nx_json_parse refuses (empty input,
 * input over NX_JSON_MAX_BYTES, NUL bytes, invalid UTF-8, trailing data, any syntax outside
 * RFC 8259, integers outside [INT64_MIN, UINT64_MAX], numbers that overflow a double,
 * unpaired surrogate escapes) except a top-level null, which is a document here.  Returns 0,
 * or a negative errno with err set (EINVAL malformed, E2BIG too large, ENOMEM); d then holds
 * no tokens.
 */
int nx_jdoc_parse(struct nx_jdoc *d, const char *text, size_t len, size_t max_depth,
		  struct nx_err *err);
/* Frees d's tokens; d may be parsed again. */
void nx_jdoc_fini(struct nx_jdoc *d);

/* nx_jdoc_parse's checks, no tokens. */
int nx_json_check(const char *text, size_t len, size_t max_depth, struct nx_err *err);

static inline enum nx_jtype nx_jdoc_type(const struct nx_jdoc *d, size_t i)
{
	return (enum nx_jtype)d->tok[i].type;
}

/* The token after value i and all it contains. */
static inline size_t nx_jdoc_next(const struct nx_jdoc *d, size_t i)
{
	return d->tok[i].next;
}

/* "null", "a boolean", "an integer", "a number with a fraction or exponent", "a string",
 * "an array", "an object": the words nx_json_type_name uses. */
const char *nx_jdoc_type_name(const struct nx_jdoc *d, size_t i);

/* The value of member key of object obj (the last one when a name repeats, as json-c
 * keeps), or 0 when obj has none or is not an object. */
size_t nx_jdoc_member(const struct nx_jdoc *d, size_t obj, const char *key);

/*
 * String i, unescaped, into buf (NUL-terminated) with its length in *len (may be NULL).
 * Returns 0; -EINVAL when i is not a string or holds a NUL character (\u0000); -ENOSPC when
 * it does not fit size bytes with its NUL, *len then being the length it has.
 */
int nx_jdoc_string(const struct nx_jdoc *d, size_t i, char *buf, size_t size, size_t *len);

/* Integer i: 0, -EINVAL when it is not an integer, -ERANGE when it does not fit. */
int nx_jdoc_int64(const struct nx_jdoc *d, size_t i, int64_t *out);
int nx_jdoc_uint64(const struct nx_jdoc *d, size_t i, uint64_t *out);

#endif /* NX_JSONDOC_H */
