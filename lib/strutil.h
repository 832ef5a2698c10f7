/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Bounded string helpers.
 *
 * Everything in the suite that copies, joins, formats or parses text goes
 * through these instead of strcpy/strcat/sprintf/atoi, so a buffer size is
 * always in view and untrusted input is rejected with a message rather than
 * silently misread.  Also home to the two helpers that handle secrets:
 * a constant-time compare and a wipe the compiler cannot elide.
 */
#ifndef NX_STRUTIL_H
#define NX_STRUTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/errmsg.h"

/*
 * BSD strlcpy: copies at most size-1 bytes of src into dst and always
 * NUL-terminates when size > 0.  Returns strlen(src); the copy was truncated
 * when the return value is >= size.
 */
size_t nx_strlcpy(char *dst, const char *src, size_t size);

/*
 * BSD strlcat: appends src to the NUL-terminated string in dst, which has
 * size bytes of storage in all.  Returns the length of the string it tried to
 * create (initial length of dst + strlen(src)); truncated when >= size.  If
 * dst holds no NUL within size bytes, nothing is written and size +
 * strlen(src) is returned.
 */
size_t nx_strlcat(char *dst, const char *src, size_t size);

/*
 * An append buffer for building text piece by piece.
 *
 * Fixed mode: nx_sbuf_init(&b, buf, sizeof(buf)) writes into caller storage;
 * text that does not fit is cut off, the buffer keeps the part that fit
 * (always NUL-terminated) and nx_sbuf_truncated() turns true.  Once
 * truncated, later appends are refused, so the content is always a prefix of
 * what was asked for.
 *
 * Growable mode: nx_sbuf_init(&b, NULL, 0) keeps the text on the heap and
 * grows as needed; it only truncates if memory runs out.  Release the storage
 * with nx_sbuf_fini(&b) (harmless in fixed mode too).
 *
 * The fields are private; use the accessors.
 */
struct nx_sbuf {
	char *buf;
	size_t size; /* bytes of storage, including the NUL */
	size_t len;  /* bytes of text, excluding the NUL */
	bool growable;
	bool truncated;
};

void nx_sbuf_init(struct nx_sbuf *b, char *buf, size_t size);

/* Appends formatted text.  Returns 0, -ENOSPC when a fixed buffer truncated
 * (now or earlier), -ENOMEM when a growable one could not grow, -EINVAL on a
 * formatting error. */
int nx_sbuf_printf(struct nx_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int nx_sbuf_vprintf(struct nx_sbuf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Appends a string verbatim; same returns as nx_sbuf_printf(). */
int nx_sbuf_puts(struct nx_sbuf *b, const char *s);

/* The text so far; never NULL, always NUL-terminated ("" when empty). */
const char *nx_sbuf_str(const struct nx_sbuf *b);
size_t nx_sbuf_len(const struct nx_sbuf *b);
bool nx_sbuf_truncated(const struct nx_sbuf *b);

/* Empties the buffer and clears the truncation flag; keeps the storage. */
void nx_sbuf_reset(struct nx_sbuf *b);

/* Frees growable storage and leaves the buffer empty with no storage. */
void nx_sbuf_fini(struct nx_sbuf *b);

/*
 * Strips leading and trailing ASCII whitespace (space, \t, \n, \v, \f, \r)
 * in place, moving the text to the start of s.  Returns s, so the result can
 * still be passed to free() when s came from the heap.
 */
char *nx_str_trim(char *s);

bool nx_str_startswith(const char *s, const char *prefix);
bool nx_str_endswith(const char *s, const char *suffix);

/*
 * Parses an unsigned decimal number in [min, max].  Only the digits 0-9 are
 * accepted: no sign, no whitespace, no 0x, not empty.  Leading zeros are read
 * as decimal ("010" is ten).  On success stores the value in *out and returns
 * 0; otherwise returns -EINVAL (not a number) or -ERANGE (outside [min, max],
 * including values beyond unsigned long long) and leaves *out alone, with a
 * message such as `"70000": out of range 1-65535`.
 */
int nx_parse_uint(const char *s, unsigned long long min, unsigned long long max,
		  unsigned long long *out, struct nx_err *err);

/*
 * Splits s on every occurrence of delim.
 *
 * Allocates one writable copy of s and stores it in *copyp; on success the
 * caller owns it and frees it with free(), which releases every field at
 * once.  fields[0..n-1] point into that copy, each NUL-terminated, and n is
 * returned.  Fields are not trimmed; empty fields are kept ("a,,b" gives
 * "a", "", "b"; "," gives two empty fields), except that an empty s gives no
 * fields at all (n = 0).  Entries of fields past n are left untouched.
 *
 * Errors: -E2BIG when s has more than max_fields fields, -EINVAL when delim
 * is '\0', -ENOMEM.  On error *copyp is set to NULL and nothing is owed.
 */
int nx_str_split(const char *s, char delim, char **fields, size_t max_fields, char **copyp);

/*
 * Copies s into buf (size bytes) for quoting in a message or a log line:
 * bytes outside printable ASCII become '?', and text that does not fit ends
 * in "...".  Returns buf.
 */
char *nx_str_printable(char *buf, size_t size, const char *s);

/*
 * Compares n bytes of a and b in time that depends only on n, not on where
 * they differ.  For secrets (keys, tokens, MACs).  True when equal; two empty
 * ranges are equal.
 */
bool nx_streq_ct(const void *a, const void *b, size_t n);

/* Zeroes n bytes at p in a way the compiler may not optimise away. */
void nx_memzero_explicit(void *p, size_t n);

#endif /* NX_STRUTIL_H */
