/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Strict JSON read in place; see jsondoc.h.
 *
 * One pass: a lexer checks each token against RFC 8259 (strings: escapes, UTF-8, surrogate
 * pairs; numbers: grammar, 64-bit integer range, double overflow; literals) and a state
 * machine over an explicit stack of open containers checks the structure.  Where the
 * structure is wrong at a token that is itself malformed, the token's own error is reported:
 * it says more ("invalid literal 'a'" rather than "unexpected 'a'").
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsondoc.h"
#include "lib/jsonutil.h"

/* Longest piece of offending input quoted in a message. */
#define QUOTE_MAX 24
/* A number with a fraction or exponent is copied this far to be read by strtod. */
#define REAL_COPY 128

struct scan {
	const char *s;
	size_t len;
	struct nx_err *err;
	struct nx_jdoc *doc; /* NULL: check only */
};

static unsigned char peek(const struct scan *l, size_t i)
{
	return i < l->len ? (unsigned char)l->s[i] : 0;
}

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

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), or 0. */
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

static int lex_string(struct scan *l, size_t *pos, bool *escaped)
{
	size_t start = *pos, i = *pos + 1;
	long cp, lo;

	*escaped = false;
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
		*escaped = true;
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

static int bad_number(struct scan *l, size_t start, size_t end, const char *why)
{
	int n;

	if (end > l->len)
		end = l->len;
	n = end - start > QUOTE_MAX ? QUOTE_MAX : (int)(end - start);
	return nx_err_set(l->err, EINVAL, "invalid number '%.*s%s' at offset %zu: %s", n,
			  l->s + start, end - start > QUOTE_MAX ? "..." : "", start, why);
}

/* Whether the number of n bytes at s overflows a double. */
static bool real_overflows(const char *s, size_t n)
{
	char local[REAL_COPY], *copy = n < sizeof(local) ? local : malloc(n + 1);
	bool inf;

	if (!copy)
		return true; /* refused rather than read unchecked; never for API sizes */
	memcpy(copy, s, n);
	copy[n] = '\0';
	inf = isinf(strtod(copy, NULL));
	if (copy != local)
		free(copy);
	return inf;
}

static int lex_number(struct scan *l, size_t *pos, bool *integral)
{
	size_t start = *pos, i = *pos, j;
	unsigned char c;

	*integral = true;
	if (peek(l, i) == '-')
		i++;
	if (peek(l, i) == '0') {
		i++;
		if (is_digit(peek(l, i)))
			return bad_number(l, start, i + 1, "leading zero");
	} else if (is_digit(peek(l, i))) {
		while (is_digit(peek(l, i)))
			i++;
	} else {
		return bad_number(l, start, i + 1, "digit expected after '-'");
	}
	if (peek(l, i) == '.') {
		*integral = false;
		i++;
		if (!is_digit(peek(l, i)))
			return bad_number(l, start, i + 1, "digit expected after '.'");
		while (is_digit(peek(l, i)))
			i++;
	}
	if (peek(l, i) == 'e' || peek(l, i) == 'E') {
		*integral = false;
		i++;
		if (peek(l, i) == '+' || peek(l, i) == '-')
			i++;
		if (!is_digit(peek(l, i)))
			return bad_number(l, start, i + 1, "digit expected in exponent");
		while (is_digit(peek(l, i)))
			i++;
	}
	c = peek(l, i);
	if (is_alpha(c) || is_digit(c) || c == '.' || c == '+' || c == '-' || c == '_')
		return bad_number(l, start, i + 1, "unexpected character after number");

	if (*integral) {
		bool neg = l->s[start] == '-';
		uint64_t acc = 0;

		for (j = start + neg; j < i; j++) {
			unsigned int d = (unsigned char)l->s[j] - '0';

			if (acc > (UINT64_MAX - d) / 10)
				return bad_number(l, start, i, "integer out of 64-bit range");
			acc = acc * 10 + d;
		}
		if (neg && acc > (uint64_t)INT64_MAX + 1)
			return bad_number(l, start, i, "integer out of 64-bit range");
	} else if (real_overflows(l->s + start, i - start)) {
		return bad_number(l, start, i, "too large for a double");
	}
	*pos = i;
	return 0;
}

static int lex_literal(struct scan *l, size_t *pos, enum nx_jtype *type, bool *truth)
{
	size_t start = *pos, i = *pos, n;
	const char *s = l->s + start;

	while (is_alpha(peek(l, i)) || is_digit(peek(l, i)) || peek(l, i) == '_')
		i++;
	n = i - start;
	if (n == 4 && !memcmp(s, "true", 4)) {
		*type = NX_JT_BOOL;
		*truth = true;
	} else if (n == 5 && !memcmp(s, "false", 5)) {
		*type = NX_JT_BOOL;
		*truth = false;
	} else if (n == 4 && !memcmp(s, "null", 4)) {
		*type = NX_JT_NULL;
	} else {
		return nx_err_set(l->err, EINVAL, "invalid literal '%.*s%s' at offset %zu",
				  n > QUOTE_MAX ? QUOTE_MAX : (int)n, s, n > QUOTE_MAX ? "..." : "",
				  start);
	}
	*pos = i;
	return 0;
}

/* Appends a token; its index, or -ENOMEM. */
static long emit(struct scan *l, enum nx_jtype type, size_t off, size_t len)
{
	struct nx_jdoc *d = l->doc;
	struct nx_jtok *t;

	if (!d)
		return 0;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;

		t = realloc(d->tok, cap * sizeof(*t));
		if (!t)
			return nx_err_set(l->err, ENOMEM, "out of memory");
		d->tok = t;
		d->cap = cap;
	}
	t = &d->tok[d->n];
	memset(t, 0, sizeof(*t));
	t->type = (uint8_t)type;
	t->off = (uint32_t)off;
	t->len = (uint32_t)len;
	t->next = (uint32_t)(d->n + 1);
	return (long)d->n++;
}

/* A scalar value at *pos: lexed and emitted. */
static int scalar(struct scan *l, size_t *pos)
{
	size_t start = *pos;
	unsigned char c = peek(l, start);
	enum nx_jtype type = NX_JT_NULL;
	bool flag = false;
	long t;
	int rc;

	if (c == '"') {
		rc = lex_string(l, pos, &flag);
		type = NX_JT_STRING;
	} else if (c == '-' || is_digit(c)) {
		rc = lex_number(l, pos, &flag);
		type = flag ? NX_JT_INT : NX_JT_REAL;
		flag = false;
	} else if (is_alpha(c)) {
		rc = lex_literal(l, pos, &type, &flag);
	} else {
		return unexpected(l->err, c, start);
	}
	if (rc < 0)
		return rc;
	t = emit(l, type, start, *pos - start);
	if (t < 0)
		return (int)t;
	if (l->doc) {
		if (type == NX_JT_STRING)
			l->doc->tok[t].escaped = flag;
		else
			l->doc->tok[t].truth = flag;
	}
	return 0;
}

/* What does not belong at offset i: the token's own error if it is malformed, else that it
 * is unexpected here. */
static int misplaced(struct scan *l, size_t i)
{
	size_t pos = i;
	unsigned char c = peek(l, i);
	int rc;

	if (c == '"' || c == '-' || is_digit(c) || is_alpha(c)) {
		struct nx_jdoc *doc = l->doc;

		l->doc = NULL; /* lexed for its error only */
		rc = scalar(l, &pos);
		l->doc = doc;
		if (rc < 0)
			return rc;
	}
	return unexpected(l->err, c, i);
}

enum want {
	WANT_VALUE,	     /* at the top, after ':' or after ',' in an array */
	WANT_VALUE_OR_CLOSE, /* after '[' */
	WANT_KEY,	     /* after ',' in an object */
	WANT_KEY_OR_CLOSE,   /* after '{' */
	WANT_COLON,	     /* after a key */
	WANT_COMMA_OR_CLOSE, /* after a value in a container */
	WANT_NOTHING,	     /* after the top-level value */
};

struct frame {
	uint32_t tok; /* the container's token */
	uint32_t count;
	bool object;
};

static int scan(struct scan *l, size_t max_depth)
{
	struct frame stack_local[64], *stack = stack_local;
	size_t i = 0, depth = 0, cap = sizeof(stack_local) / sizeof(stack_local[0]);
	enum want want = WANT_VALUE;
	bool any = false;
	int rc = 0;

	for (;;) {
		unsigned char c;

		while (i < l->len && is_json_ws((unsigned char)l->s[i]))
			i++;
		if (i == l->len)
			break;
		c = (unsigned char)l->s[i];
		if (want == WANT_NOTHING) {
			rc = nx_err_set(l->err, EINVAL,
					"trailing data after the JSON value at offset %zu", i);
			goto out;
		}
		any = true;
		if ((c == ']' && want == WANT_VALUE_OR_CLOSE) ||
		    (c == '}' && want == WANT_KEY_OR_CLOSE) ||
		    (want == WANT_COMMA_OR_CLOSE && c == (stack[depth - 1].object ? '}' : ']'))) {
			struct frame *f = &stack[--depth];

			if (l->doc) {
				struct nx_jtok *t = &l->doc->tok[f->tok];

				t->count = f->count;
				t->len = (uint32_t)(i + 1 - t->off);
				t->next = (uint32_t)l->doc->n;
			}
			i++;
			want = depth ? WANT_COMMA_OR_CLOSE : WANT_NOTHING;
			continue;
		}
		switch (want) {
		case WANT_VALUE:
		case WANT_VALUE_OR_CLOSE:
			if (depth)
				stack[depth - 1].count++;
			if (c == '{' || c == '[') {
				long t;

				if (depth + 1 > max_depth) {
					rc = nx_err_set(l->err, EINVAL,
							"nesting deeper than %zu at offset %zu",
							max_depth, i);
					goto out;
				}
				if (depth == cap) {
					struct frame *grown = malloc(2 * cap * sizeof(*grown));

					if (!grown) {
						rc = nx_err_set(l->err, ENOMEM, "out of memory");
						goto out;
					}
					memcpy(grown, stack, cap * sizeof(*grown));
					if (stack != stack_local)
						free(stack);
					stack = grown;
					cap *= 2;
				}
				t = emit(l, c == '{' ? NX_JT_OBJECT : NX_JT_ARRAY, i, 1);
				if (t < 0) {
					rc = (int)t;
					goto out;
				}
				stack[depth++] = (struct frame){ (uint32_t)t, 0, c == '{' };
				i++;
				want = c == '{' ? WANT_KEY_OR_CLOSE : WANT_VALUE_OR_CLOSE;
				continue;
			}
			rc = scalar(l, &i);
			if (rc < 0)
				goto out;
			want = depth ? WANT_COMMA_OR_CLOSE : WANT_NOTHING;
			continue;
		case WANT_KEY:
		case WANT_KEY_OR_CLOSE:
			rc = c == '"' ? scalar(l, &i) : misplaced(l, i);
			if (rc < 0)
				goto out;
			want = WANT_COLON;
			continue;
		case WANT_COLON:
			if (c != ':') {
				rc = misplaced(l, i);
				goto out;
			}
			i++;
			want = WANT_VALUE;
			continue;
		case WANT_COMMA_OR_CLOSE:
			if (c != ',') {
				rc = misplaced(l, i);
				goto out;
			}
			i++;
			want = stack[depth - 1].object ? WANT_KEY : WANT_VALUE;
			continue;
		case WANT_NOTHING:
			break;
		}
	}
	if (!any)
		rc = nx_err_set(l->err, EINVAL, "no JSON value in input (only whitespace)");
	else if (want != WANT_NOTHING)
		rc = nx_err_set(l->err, EINVAL,
				"unexpected end of input at offset %zu (%zu unclosed bracket%s)",
				l->len, depth, depth == 1 ? "" : "s");
out:
	if (stack != stack_local)
		free(stack);
	return rc;
}

static int scan_checked(struct scan *l, size_t max_depth)
{
	const char *nul;

	if (!l->s || l->len == 0)
		return nx_err_set(l->err, EINVAL, "empty input");
	if (l->len > NX_JSON_MAX_BYTES)
		return nx_err_set(l->err, E2BIG, "input of %zu bytes exceeds the limit of %d bytes",
				  l->len, NX_JSON_MAX_BYTES);
	if (max_depth > NX_JSON_DEPTH_LIMIT)
		return nx_err_set(l->err, EINVAL, "maximum depth %zu exceeds the limit of %d",
				  max_depth, NX_JSON_DEPTH_LIMIT);
	nul = memchr(l->s, '\0', l->len);
	if (nul)
		return nx_err_set(l->err, EINVAL, "NUL byte at offset %zu", (size_t)(nul - l->s));
	return scan(l, max_depth);
}

int nx_json_check(const char *text, size_t len, size_t max_depth, struct nx_err *err)
{
	struct scan l = { .s = text, .len = len, .err = err };

	return scan_checked(&l, max_depth);
}

int nx_jdoc_parse(struct nx_jdoc *d, const char *text, size_t len, size_t max_depth,
		  struct nx_err *err)
{
	struct scan l = { .s = text, .len = len, .err = err, .doc = d };
	int rc;

	d->text = text;
	d->n = 0;
	rc = scan_checked(&l, max_depth);
	if (rc < 0)
		d->n = 0;
	return rc;
}

void nx_jdoc_fini(struct nx_jdoc *d)
{
	free(d->tok);
	memset(d, 0, sizeof(*d));
}

/* --- reading ------------------------------------------------------------------------------- */

const char *nx_jdoc_type_name(const struct nx_jdoc *d, size_t i)
{
	switch (nx_jdoc_type(d, i)) {
	case NX_JT_NULL:
		return "null";
	case NX_JT_BOOL:
		return "a boolean";
	case NX_JT_INT:
		return "an integer";
	case NX_JT_REAL:
		return "a number with a fraction or exponent";
	case NX_JT_STRING:
		return "a string";
	case NX_JT_ARRAY:
		return "an array";
	case NX_JT_OBJECT:
		return "an object";
	}
	return "an unknown type";
}

/* Writes code point cp as UTF-8 at out (room for 4); the bytes written. */
static size_t put_utf8(char *out, unsigned long cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Decodes the character at *s of a checked string into out (room for 4), advancing *s; the
 * bytes written. */
static size_t decode_one(const char **s, char *out)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *p = *s;
	unsigned long cp;

	if (*p != '\\') {
		out[0] = *p;
		*s = p + 1;
		return 1;
	}
	if (p[1] != 'u') {
		out[0] = to[strchr(from, p[1]) - from];
		*s = p + 2;
		return 1;
	}
	cp = (unsigned long)hex4(p + 2, 4);
	p += 6;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		cp = 0x10000 + ((cp - 0xd800) << 10) + ((unsigned long)hex4(p + 2, 4) - 0xdc00);
		p += 6;
	}
	*s = p;
	return put_utf8(out, cp);
}

int nx_jdoc_string(const struct nx_jdoc *d, size_t i, char *buf, size_t size, size_t *len)
{
	const struct nx_jtok *t = &d->tok[i];
	const char *s = d->text + t->off + 1, *end = d->text + t->off + t->len - 1;
	size_t n = 0;
	bool nul = false;

	if (t->type != NX_JT_STRING)
		return -EINVAL;
	if (!t->escaped) {
		n = (size_t)(end - s);
		if (n < size)
			memcpy(buf, s, n);
	} else {
		/* The lexer checked every escape: only their decoding is left. */
		while (s < end) {
			char one[4];
			size_t k = decode_one(&s, one);

			nul |= k == 1 && one[0] == '\0';
			if (n + k < size)
				memcpy(buf + n, one, k);
			n += k;
		}
	}
	if (len)
		*len = n;
	if (nul)
		return -EINVAL;
	if (n >= size)
		return -ENOSPC;
	buf[n] = '\0';
	return 0;
}

/* Whether key token k names key. */
static bool key_is(const struct nx_jdoc *d, size_t k, const char *key, size_t key_len)
{
	const struct nx_jtok *t = &d->tok[k];
	const char *s = d->text + t->off + 1, *end = d->text + t->off + t->len - 1;
	size_t n = 0;

	if (!t->escaped)
		return t->len - 2 == key_len && !memcmp(s, key, key_len);
	while (s < end) {
		char one[4];
		size_t m = decode_one(&s, one);

		if (m > key_len - n || memcmp(key + n, one, m) != 0)
			return false;
		n += m;
	}
	return n == key_len;
}

size_t nx_jdoc_member(const struct nx_jdoc *d, size_t obj, const char *key)
{
	size_t key_len = strlen(key), found = 0, k, end;

	if (obj >= d->n || d->tok[obj].type != NX_JT_OBJECT)
		return 0;
	end = d->tok[obj].next;
	for (k = obj + 1; k < end; k = d->tok[k + 1].next)
		if (key_is(d, k, key, key_len))
			found = k + 1;
	return found;
}

/* An integer token's magnitude and sign (the lexer checked its digits and range). */
static void int_value(const struct nx_jdoc *d, size_t i, uint64_t *mag, bool *neg)
{
	const struct nx_jtok *t = &d->tok[i];
	const char *s = d->text + t->off, *end = s + t->len;

	*neg = *s == '-';
	*mag = 0;
	for (s += *neg; s < end; s++)
		*mag = *mag * 10 + (uint64_t)(*s - '0');
}

int nx_jdoc_int64(const struct nx_jdoc *d, size_t i, int64_t *out)
{
	uint64_t mag;
	bool neg;

	if (d->tok[i].type != NX_JT_INT)
		return -EINVAL;
	int_value(d, i, &mag, &neg);
	if (neg) {
		*out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
		return 0;
	}
	if (mag > (uint64_t)INT64_MAX)
		return -ERANGE;
	*out = (int64_t)mag;
	return 0;
}

int nx_jdoc_uint64(const struct nx_jdoc *d, size_t i, uint64_t *out)
{
	uint64_t mag;
	bool neg;

	if (d->tok[i].type != NX_JT_INT)
		return -EINVAL;
	int_value(d, i, &mag, &neg);
	if (neg && mag)
		return -ERANGE;
	*out = mag;
	return 0;
}
