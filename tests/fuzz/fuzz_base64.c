/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for lib/base64.  Strict decoding makes the codecs bijective,
 * so any input a decoder accepts must re-encode to exactly itself, and any
 * byte string must survive encode then decode.  A rejection must say why.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decode with one alphabet; if accepted, re-encode and compare. */
static void check_decode(const char *in, size_t size, bool url)
{
	size_t cap = nx_base64_decoded_maxlen(size);
	uint8_t *dec = malloc(cap ? cap : 1);
	char *enc = NULL;
	struct nx_err err = { "" };
	int n, len, m;

	if (!dec)
		abort();
	n = url ? nx_base64url_decode(in, size, dec, cap, &err)
		: nx_base64_decode(in, size, dec, cap, &err);
	len = url ? nx_base64url_decoded_len(in, size, NULL)
		  : nx_base64_decoded_len(in, size, NULL);
	if (n != len)
		abort(); /* validation and decoding disagree */
	if (n < 0) {
		if (err.msg[0] == '\0')
			abort(); /* rejection without a message */
		goto out;
	}
	if ((size_t)n > cap)
		abort();

	enc = malloc(size + 1);
	if (!enc)
		abort();
	m = url ? nx_base64url_encode(dec, (size_t)n, enc, size + 1)
		: nx_base64_encode(dec, (size_t)n, enc, size + 1);
	if (m < 0 || (size_t)m != size || memcmp(enc, in, size) != 0)
		abort(); /* accepted input is not the canonical encoding */
out:
	free(enc);
	free(dec);
}

/* Encode arbitrary bytes; decoding must give them back. */
static void check_encode(const uint8_t *data, size_t size, bool url)
{
	size_t cap = url ? nx_base64url_encoded_len(size) : nx_base64_encoded_len(size);
	char *enc = malloc(cap);
	uint8_t *dec = malloc(size ? size : 1);
	int m, n;

	if (!enc || !dec)
		abort();
	m = url ? nx_base64url_encode(data, size, enc, cap)
		: nx_base64_encode(data, size, enc, cap);
	if (m < 0 || (size_t)m != cap - 1 || strlen(enc) != (size_t)m)
		abort();
	n = url ? nx_base64url_decode(enc, (size_t)m, dec, size, NULL)
		: nx_base64_decode(enc, (size_t)m, dec, size, NULL);
	if (n < 0 || (size_t)n != size || memcmp(dec, data, size) != 0)
		abort();
	free(enc);
	free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;

	check_decode(in, size, false);
	check_decode(in, size, true);
	check_encode(data, size, false);
	check_encode(data, size, true);
	return 0;
}
