/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Bounded string helpers: the suite's replacements for strcpy/strcat/sprintf/
 * atoi, plus the constant-time compare and wipe used for secrets.
 * See strutil.h for the contracts.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strutil.h"

/* Initial heap size of a growable sbuf. */
#define SBUF_MIN_ALLOC 64

size_t nx_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);
	size_t n;

	if (size > 0) {
		n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

size_t nx_strlcat(char *dst, const char *src, size_t size)
{
	size_t dlen = strnlen(dst, size);

	if (dlen == size)
		return size + strlen(src);
	return dlen + nx_strlcpy(dst + dlen, src, size - dlen);
}

void nx_sbuf_init(struct nx_sbuf *b, char *buf, size_t size)
{
	b->len = 0;
	b->truncated = false;
	if (buf) {
		b->buf = buf;
		b->size = size;
		b->growable = false;
		if (size > 0)
			buf[0] = '\0';
	} else {
		b->buf = NULL;
		b->size = 0;
		b->growable = true;
	}
}

/* Makes room for at least need bytes (text plus NUL).  Growable only. */
static int sbuf_grow(struct nx_sbuf *b, size_t need)
{
	size_t size = b->size ? b->size : SBUF_MIN_ALLOC;
	char *p;

	while (size < need) {
		if (size > SIZE_MAX / 2)
			return -ENOMEM;
		size *= 2;
	}
	p = realloc(b->buf, size);
	if (!p)
		return -ENOMEM;
	b->buf = p;
	b->size = size;
	return 0;
}

/* Records a truncation: the storage holds as much as fit. */
static int sbuf_cut(struct nx_sbuf *b, int code)
{
	b->truncated = true;
	if (b->size > 0) {
		if (b->len < b->size - 1)
			b->len = b->size - 1;
		b->buf[b->len] = '\0';
	}
	return code;
}

int nx_sbuf_vprintf(struct nx_sbuf *b, const char *fmt, va_list ap)
{
	size_t avail;
	va_list aq;
	int n;

	if (b->truncated)
		return b->growable ? -ENOMEM : -ENOSPC;

	avail = b->size - b->len;
	va_copy(aq, ap);
	n = vsnprintf(avail ? b->buf + b->len : NULL, avail, fmt, aq);
	va_end(aq);
	if (n < 0) {
		/* Encoding error: drop whatever vsnprintf may have left. */
		if (avail)
			b->buf[b->len] = '\0';
		return -EINVAL;
	}
	if (n == 0 || (size_t)n < avail) {
		b->len += (size_t)n;
		return 0;
	}
	if (!b->growable)
		return sbuf_cut(b, -ENOSPC);
	if ((size_t)n > SIZE_MAX - b->len - 1 || sbuf_grow(b, b->len + (size_t)n + 1) < 0)
		return sbuf_cut(b, -ENOMEM);
	vsnprintf(b->buf + b->len, b->size - b->len, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int nx_sbuf_printf(struct nx_sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = nx_sbuf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

int nx_sbuf_puts(struct nx_sbuf *b, const char *s)
{
	return nx_sbuf_printf(b, "%s", s);
}

const char *nx_sbuf_str(const struct nx_sbuf *b)
{
	return b->size > 0 ? b->buf : "";
}

size_t nx_sbuf_len(const struct nx_sbuf *b)
{
	return b->len;
}

bool nx_sbuf_truncated(const struct nx_sbuf *b)
{
	return b->truncated;
}

void nx_sbuf_reset(struct nx_sbuf *b)
{
	b->len = 0;
	b->truncated = false;
	if (b->size > 0)
		b->buf[0] = '\0';
}

void nx_sbuf_fini(struct nx_sbuf *b)
{
	if (b->growable)
		free(b->buf);
	b->buf = NULL;
	b->size = 0;
	b->len = 0;
	b->truncated = false;
}

/* Locale-independent whitespace test. */
static bool is_ascii_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

char *nx_str_trim(char *s)
{
	size_t start = 0;
	size_t end = strlen(s);

	while (end > 0 && is_ascii_space(s[end - 1]))
		end--;
	while (start < end && is_ascii_space(s[start]))
		start++;
	if (start > 0)
		memmove(s, s + start, end - start);
	s[end - start] = '\0';
	return s;
}

bool nx_str_startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool nx_str_endswith(const char *s, const char *suffix)
{
	size_t slen = strlen(s);
	size_t xlen = strlen(suffix);

	return xlen <= slen && memcmp(s + slen - xlen, suffix, xlen) == 0;
}

/* Longest input quoted back in an nx_parse_uint() message. */
#define UINT_QUOTE 48

int nx_parse_uint(const char *s, unsigned long long min, unsigned long long max,
		  unsigned long long *out, struct nx_err *err)
{
	char q[UINT_QUOTE];
	unsigned long long v;
	char *end;
	size_t i;

	if (!s)
		return nx_err_set(err, EINVAL, "missing number");
	nx_str_printable(q, sizeof(q), s);
	if (s[0] == '\0')
		return nx_err_set(err, EINVAL, "\"\": expected a decimal number");
	if (s[0] == '-' || s[0] == '+')
		return nx_err_set(err, EINVAL,
				  "\"%s\": sign not allowed, expected a plain decimal number", q);
	for (i = 0; s[i]; i++) {
		if (is_ascii_space(s[i]))
			return nx_err_set(err, EINVAL, "\"%s\": whitespace not allowed in a number",
					  q);
		if (s[i] < '0' || s[i] > '9')
			return nx_err_set(err, EINVAL, "\"%s\": not a decimal number", q);
	}

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0')
		return nx_err_set(err, EINVAL, "\"%s\": not a decimal number", q);
	if (errno == ERANGE || v < min || v > max)
		return nx_err_set(err, ERANGE, "\"%s\": out of range %llu-%llu", q, min, max);
	*out = v;
	return 0;
}

int nx_str_split(const char *s, char delim, char **fields, size_t max_fields, char **copyp)
{
	size_t n = 0;
	char *copy;
	char *p;

	*copyp = NULL;
	if (delim == '\0')
		return -EINVAL;

	if (max_fields > INT_MAX)
		max_fields = INT_MAX;

	copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	if (copy[0] == '\0') {
		*copyp = copy;
		return 0;
	}

	p = copy;
	for (;;) {
		char *next = strchr(p, delim);

		if (n == max_fields) {
			free(copy);
			return -E2BIG;
		}
		fields[n++] = p;
		if (!next)
			break;
		*next = '\0';
		p = next + 1;
	}
	*copyp = copy;
	return (int)n;
}

char *nx_str_printable(char *buf, size_t size, const char *s)
{
	static const char ellipsis[] = "...";
	size_t i;

	if (size == 0)
		return buf;
	for (i = 0; i < size - 1 && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	buf[i] = '\0';
	if (s[i] && size > sizeof(ellipsis))
		memcpy(buf + size - sizeof(ellipsis), ellipsis, sizeof(ellipsis));
	return buf;
}

bool nx_streq_ct(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *pa = a;
	const volatile unsigned char *pb = b;
	unsigned char diff = 0;
	size_t i;

	for (i = 0; i < n; i++)
		diff |= pa[i] ^ pb[i];
	return diff == 0;
}

void nx_memzero_explicit(void *p, size_t n)
{
	if (p && n > 0)
		explicit_bzero(p, n);
}
