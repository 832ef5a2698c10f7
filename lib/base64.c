/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Strict base64 and base64url; see base64.h.
 *
 * The mapping between 6-bit values and characters is done with arithmetic
 * instead of table lookups so that encoding and decoding private keys does
 * not index memory by secret data.  Only the rejection paths branch on the
 * input, and those reveal nothing beyond "this input is invalid".
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "lib/base64.h"

struct b64_alphabet {
	int c62;	   /* character for value 62 */
	int c63;	   /* character for value 63 */
	bool padded;	   /* '=' padding to a multiple of 4 */
	const char *name;  /* for messages */
	int other62;	   /* value-62 character of the other alphabet */
	int other63;	   /* value-63 character of the other alphabet */
	const char *other; /* name of the other alphabet */
};

static const struct b64_alphabet b64_std = {
	.c62 = '+',
	.c63 = '/',
	.padded = true,
	.name = "base64",
	.other62 = '-',
	.other63 = '_',
	.other = "base64url",
};

static const struct b64_alphabet b64_url = {
	.c62 = '-',
	.c63 = '_',
	.padded = false,
	.name = "base64url",
	.other62 = '+',
	.other63 = '/',
	.other = "standard base64",
};

/* All ones if lo <= x <= hi, else 0; x, lo and hi must lie in 0..255.
 * Relies on arithmetic right shift of negative ints (gcc and clang). */
static inline int ct_in_range(int x, int lo, int hi)
{
	return ((lo - 1 - x) & (x - hi - 1)) >> 8;
}

/* 6-bit value of character c, or -1 if c is not in the alphabet. */
static inline int b64_value(unsigned char c, const struct b64_alphabet *a)
{
	int x = c;
	int v = -1;

	v += ct_in_range(x, 'A', 'Z') & (x - 'A' + 1);
	v += ct_in_range(x, 'a', 'z') & (x - 'a' + 27);
	v += ct_in_range(x, '0', '9') & (x - '0' + 53);
	v += ct_in_range(x, a->c62, a->c62) & 63;
	v += ct_in_range(x, a->c63, a->c63) & 64;
	return v;
}

/* Character for the low 6 bits of v. */
static inline char b64_char(unsigned int v, const struct b64_alphabet *a)
{
	int x = (int)(v & 0x3f);
	int c = 'A' + x;

	c += ((25 - x) >> 8) & ('a' - 'A' - 26);      /* 26..51 */
	c += ((51 - x) >> 8) & ('0' - 'a' - 26);      /* 52..61 */
	c += ((61 - x) >> 8) & (a->c62 - ('0' + 10)); /* 62 */
	c += ((62 - x) >> 8) & (a->c63 - a->c62 - 1); /* 63 */
	return (char)c;
}

size_t nx_base64_encoded_len(size_t n)
{
	size_t groups = n / 3 + (n % 3 != 0);

	if (groups > (SIZE_MAX - 1) / 4)
		return 0;
	return groups * 4 + 1;
}

size_t nx_base64url_encoded_len(size_t n)
{
	size_t full = n / 3;
	size_t rem = n % 3;

	if (full > (SIZE_MAX - 4) / 4)
		return 0;
	return full * 4 + (rem ? rem + 1 : 0) + 1;
}

size_t nx_base64_decoded_maxlen(size_t inlen)
{
	return (inlen / 4) * 3 + (inlen % 4 ? 2 : 0);
}

static int b64_encode(const uint8_t *in, size_t n, char *out, size_t outsize,
		      const struct b64_alphabet *a)
{
	size_t need = a->padded ? nx_base64_encoded_len(n) : nx_base64url_encoded_len(n);
	size_t i, o = 0;

	if (need == 0 || need - 1 > INT_MAX)
		return -EOVERFLOW;
	if (!out || outsize < need)
		return -ENOSPC;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = b64_char(w >> 18, a);
		out[o++] = b64_char(w >> 12, a);
		out[o++] = b64_char(w >> 6, a);
		out[o++] = b64_char(w, a);
	}
	if (n - i == 1) {
		uint32_t w = (uint32_t)in[i] << 16;

		out[o++] = b64_char(w >> 18, a);
		out[o++] = b64_char(w >> 12, a);
		if (a->padded) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = b64_char(w >> 18, a);
		out[o++] = b64_char(w >> 12, a);
		out[o++] = b64_char(w >> 6, a);
		if (a->padded)
			out[o++] = '=';
	}
	out[o] = '\0';
	return (int)o;
}

int nx_base64_encode(const uint8_t *in, size_t n, char *out, size_t outsize)
{
	return b64_encode(in, n, out, outsize, &b64_std);
}

int nx_base64url_encode(const uint8_t *in, size_t n, char *out, size_t outsize)
{
	return b64_encode(in, n, out, outsize, &b64_url);
}

static const char *ws_name(unsigned char c)
{
	switch (c) {
	case ' ':
		return "space";
	case '\t':
		return "tab";
	case '\n':
		return "newline";
	case '\r':
		return "carriage return";
	case '\v':
		return "vertical tab";
	case '\f':
		return "form feed";
	default:
		return NULL;
	}
}

static int b64_bad_char(const struct b64_alphabet *a, unsigned char c, size_t off,
			struct nx_err *err)
{
	const char *ws = ws_name(c);

	if (ws)
		return nx_err_set(err, EINVAL, "%s: whitespace (%s) at offset %zu is not allowed",
				  a->name, ws, off);
	if (c == a->other62 || c == a->other63)
		return nx_err_set(err, EINVAL,
				  "%s: invalid character '%c' at offset %zu (%s alphabet?)",
				  a->name, c, off, a->other);
	if (c >= 0x21 && c < 0x7f)
		return nx_err_set(err, EINVAL, "%s: invalid character '%c' at offset %zu", a->name,
				  c, off);
	return nx_err_set(err, EINVAL, "%s: invalid byte 0x%02x at offset %zu", a->name, c, off);
}

/*
 * Validates the whole input and stores the number of data (non-padding)
 * characters in *datalen.  Returns the decoded length or a negative errno.
 */
static int b64_check(const char *in, size_t inlen, const struct b64_alphabet *a, size_t *datalen,
		     struct nx_err *err)
{
	const char *pad;
	size_t i, dlen, rem, outlen;

	for (i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '=') {
			if (!a->padded)
				return nx_err_set(err, EINVAL,
						  "%s: padding '=' at offset %zu is not allowed",
						  a->name, i);
			continue;
		}
		if (b64_value(c, a) < 0)
			return b64_bad_char(a, c, i, err);
	}

	if (a->padded && inlen % 4 != 0)
		return nx_err_set(err, EINVAL, "%s: length %zu is not a multiple of 4", a->name,
				  inlen);
	if (!a->padded && inlen % 4 == 1)
		return nx_err_set(err, EINVAL,
				  "%s: length %zu is impossible (one character left over)", a->name,
				  inlen);

	dlen = inlen;
	pad = inlen ? memchr(in, '=', inlen) : NULL;
	if (pad) {
		dlen = (size_t)(pad - in);
		/* At most two '=', only at the very end. */
		if (inlen - dlen > 2 || in[inlen - 1] != '=')
			return nx_err_set(err, EINVAL, "%s: misplaced padding '=' at offset %zu",
					  a->name, dlen);
	}

	rem = dlen % 4;
	if (rem) {
		/* The last character carries 4 (rem 2) or 2 (rem 3) unused bits. */
		int mask = rem == 2 ? 0x0f : 0x03;

		if (b64_value((unsigned char)in[dlen - 1], a) & mask)
			return nx_err_set(err, EINVAL,
					  "%s: non-canonical encoding: unused low bits of the "
					  "character at offset %zu are not zero",
					  a->name, dlen - 1);
	}

	outlen = (dlen / 4) * 3 + (rem ? rem - 1 : 0);
	if (outlen > INT_MAX)
		return nx_err_set(err, EOVERFLOW, "%s: decoded length %zu is too large", a->name,
				  outlen);
	*datalen = dlen;
	return (int)outlen;
}

static int b64_decode(const char *in, size_t inlen, uint8_t *out, size_t outsize,
		      const struct b64_alphabet *a, struct nx_err *err)
{
	size_t dlen, i, o = 0;
	int outlen;

	outlen = b64_check(in, inlen, a, &dlen, err);
	if (outlen < 0)
		return outlen;
	if ((size_t)outlen > outsize)
		return nx_err_set(err, ENOSPC,
				  "%s: output buffer too small: %d bytes needed, %zu available",
				  a->name, outlen, outsize);

	for (i = 0; i + 4 <= dlen; i += 4) {
		uint32_t w = (uint32_t)b64_value((unsigned char)in[i], a) << 18 |
			     (uint32_t)b64_value((unsigned char)in[i + 1], a) << 12 |
			     (uint32_t)b64_value((unsigned char)in[i + 2], a) << 6 |
			     (uint32_t)b64_value((unsigned char)in[i + 3], a);

		out[o++] = (uint8_t)(w >> 16);
		out[o++] = (uint8_t)(w >> 8);
		out[o++] = (uint8_t)w;
	}
	if (dlen - i >= 2) {
		uint32_t w = (uint32_t)b64_value((unsigned char)in[i], a) << 18 |
			     (uint32_t)b64_value((unsigned char)in[i + 1], a) << 12;

		if (dlen - i == 3)
			w |= (uint32_t)b64_value((unsigned char)in[i + 2], a) << 6;
		out[o++] = (uint8_t)(w >> 16);
		if (dlen - i == 3)
			out[o++] = (uint8_t)(w >> 8);
	}
	return (int)o;
}

int nx_base64_decode(const char *in, size_t inlen, uint8_t *out, size_t outsize, struct nx_err *err)
{
	return b64_decode(in, inlen, out, outsize, &b64_std, err);
}

int nx_base64url_decode(const char *in, size_t inlen, uint8_t *out, size_t outsize,
			struct nx_err *err)
{
	return b64_decode(in, inlen, out, outsize, &b64_url, err);
}

int nx_base64_decoded_len(const char *in, size_t inlen, struct nx_err *err)
{
	size_t dlen;

	return b64_check(in, inlen, &b64_std, &dlen, err);
}

int nx_base64url_decoded_len(const char *in, size_t inlen, struct nx_err *err)
{
	size_t dlen;

	return b64_check(in, inlen, &b64_url, &dlen, err);
}
