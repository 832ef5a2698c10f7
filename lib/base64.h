/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Base64 (RFC 4648 §4, padded) and base64url (RFC 4648 §5, unpadded) codecs.
 *
 * Keys, tokens and JWT segments arrive from the network and from config
 * files, so decoding is strict: every input has exactly one accepted
 * spelling.  Whitespace, characters from the other alphabet, missing or
 * misplaced padding and non-zero bits after the last full byte are all
 * rejected with a message that names the problem and its offset.  As a
 * consequence decode followed by encode always returns the original text.
 */
#ifndef NX_BASE64_H
#define NX_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "lib/errmsg.h"

/* Buffer size (including the terminating NUL) that nx_base64_encode needs
 * for n input bytes; 0 if that size does not fit a size_t. */
size_t nx_base64_encoded_len(size_t n);

/* Same for nx_base64url_encode (no padding). */
size_t nx_base64url_encoded_len(size_t n);

/* Upper bound of the bytes any valid input of inlen characters decodes to,
 * in either alphabet.  Sizing a buffer with it never yields -ENOSPC. */
size_t nx_base64_decoded_maxlen(size_t inlen);

/* Encodes n bytes into out as NUL-terminated padded base64.  Returns the
 * number of characters written (excluding the NUL), -ENOSPC if outsize is
 * smaller than nx_base64_encoded_len(n) or -EOVERFLOW if the result would
 * not fit an int.  in may be NULL when n is 0. */
int nx_base64_encode(const uint8_t *in, size_t n, char *out, size_t outsize);

/* Same with the URL-safe alphabet ('-', '_') and no padding. */
int nx_base64url_encode(const uint8_t *in, size_t n, char *out, size_t outsize);

/* Decodes inlen characters of padded base64 (in need not be NUL-terminated)
 * into out.  Returns the number of bytes decoded, or a negative errno:
 * -EINVAL for malformed input, -ENOSPC if outsize is too small, -EOVERFLOW
 * if the result would not fit an int.  On failure out is left untouched. */
int nx_base64_decode(const char *in, size_t inlen, uint8_t *out, size_t outsize,
		     struct nx_err *err);

/* Same for unpadded base64url; '=' is rejected. */
int nx_base64url_decode(const char *in, size_t inlen, uint8_t *out, size_t outsize,
			struct nx_err *err);

/* Validates padded base64 exactly as nx_base64_decode does and returns the
 * number of bytes it would decode to, without writing anything. */
int nx_base64_decoded_len(const char *in, size_t inlen, struct nx_err *err);

/* Same for unpadded base64url. */
int nx_base64url_decoded_len(const char *in, size_t inlen, struct nx_err *err);

#endif /* NX_BASE64_H */
