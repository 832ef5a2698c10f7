/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lib/base64: RFC 4648 vectors, the full alphabet, buffer
 * sizing and every class of input the strict decoders reject.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/base64.h"

#define assert_err_contains(e, sub)                                              \
	do {                                                                     \
		assert_true((e).msg[0] != '\0');                                 \
		if (!strstr((e).msg, (sub)))                                     \
			fail_msg("message \"%s\" lacks \"%s\"", (e).msg, (sub)); \
	} while (0)

/* RFC 4648 §10 */
static const struct {
	const char *plain;
	const char *b64;
	const char *b64url;
} rfc4648[] = {
	{ "", "", "" },
	{ "f", "Zg==", "Zg" },
	{ "fo", "Zm8=", "Zm8" },
	{ "foo", "Zm9v", "Zm9v" },
	{ "foob", "Zm9vYg==", "Zm9vYg" },
	{ "fooba", "Zm9vYmE=", "Zm9vYmE" },
	{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
};

static const char std_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void test_rfc4648_vectors(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		const char *p = rfc4648[i].plain;
		size_t n = strlen(p);
		char enc[16];
		uint8_t dec[16];
		struct nx_err err = { "" };

		assert_int_equal(nx_base64_encode((const uint8_t *)p, n, enc, sizeof(enc)),
				 strlen(rfc4648[i].b64));
		assert_string_equal(enc, rfc4648[i].b64);
		assert_int_equal(nx_base64url_encode((const uint8_t *)p, n, enc, sizeof(enc)),
				 strlen(rfc4648[i].b64url));
		assert_string_equal(enc, rfc4648[i].b64url);

		assert_int_equal(nx_base64_decode(rfc4648[i].b64, strlen(rfc4648[i].b64), dec,
						  sizeof(dec), &err),
				 n);
		assert_memory_equal(dec, p, n);
		assert_int_equal(nx_base64url_decode(rfc4648[i].b64url, strlen(rfc4648[i].b64url),
						     dec, sizeof(dec), &err),
				 n);
		assert_memory_equal(dec, p, n);

		assert_int_equal(
			nx_base64_decoded_len(rfc4648[i].b64, strlen(rfc4648[i].b64), &err), n);
		assert_int_equal(nx_base64url_decoded_len(rfc4648[i].b64url,
							  strlen(rfc4648[i].b64url), &err),
				 n);
	}
}

/* Every 6-bit value maps to the RFC 4648 character and back. */
static void test_full_alphabet(void **state)
{
	unsigned int v;

	(void)state;
	for (v = 0; v < 64; v++) {
		uint8_t in = (uint8_t)(v << 2), out;
		char enc[8];
		struct nx_err err = { "" };

		assert_int_equal(nx_base64_encode(&in, 1, enc, sizeof(enc)), 4);
		assert_int_equal(enc[0], std_alphabet[v]);
		assert_int_equal(nx_base64_decode(enc, 4, &out, 1, &err), 1);
		assert_int_equal(out, in);

		assert_int_equal(nx_base64url_encode(&in, 1, enc, sizeof(enc)), 2);
		assert_int_equal(enc[0], url_alphabet[v]);
		assert_int_equal(nx_base64url_decode(enc, 2, &out, 1, &err), 1);
		assert_int_equal(out, in);
	}
}

static void test_high_values(void **state)
{
	static const uint8_t in[] = { 0xfb, 0xff, 0xbf, 0x00, 0x10, 0x83 };
	char enc[16];
	uint8_t dec[8];

	(void)state;
	assert_int_equal(nx_base64_encode(in, sizeof(in), enc, sizeof(enc)), 8);
	assert_string_equal(enc, "+/+/ABCD");
	assert_int_equal(nx_base64url_encode(in, sizeof(in), enc, sizeof(enc)), 8);
	assert_string_equal(enc, "-_-_ABCD");
	assert_int_equal(nx_base64url_decode("-_-_ABCD", 8, dec, sizeof(dec), NULL), 6);
	assert_memory_equal(dec, in, sizeof(in));
	assert_int_equal(nx_base64_decode("+/+/ABCD", 8, dec, sizeof(dec), NULL), 6);
	assert_memory_equal(dec, in, sizeof(in));
}

static void test_lengths(void **state)
{
	(void)state;
	assert_int_equal(nx_base64_encoded_len(0), 1);
	assert_int_equal(nx_base64_encoded_len(1), 5);
	assert_int_equal(nx_base64_encoded_len(2), 5);
	assert_int_equal(nx_base64_encoded_len(3), 5);
	assert_int_equal(nx_base64_encoded_len(4), 9);
	assert_int_equal(nx_base64_encoded_len(32), 45);
	assert_int_equal(nx_base64_encoded_len(SIZE_MAX), 0);
	assert_int_equal(nx_base64url_encoded_len(0), 1);
	assert_int_equal(nx_base64url_encoded_len(1), 3);
	assert_int_equal(nx_base64url_encoded_len(2), 4);
	assert_int_equal(nx_base64url_encoded_len(3), 5);
	assert_int_equal(nx_base64url_encoded_len(32), 44);
	assert_int_equal(nx_base64url_encoded_len(SIZE_MAX), 0);
	assert_int_equal(nx_base64_decoded_maxlen(0), 0);
	assert_int_equal(nx_base64_decoded_maxlen(2), 2);
	assert_int_equal(nx_base64_decoded_maxlen(4), 3);
	assert_int_equal(nx_base64_decoded_maxlen(44), 33);
	assert_int_equal(nx_base64_decoded_maxlen(43), 32);
}

static void test_encode_nospace(void **state)
{
	static const uint8_t in[] = "foobar";
	char enc[9];

	(void)state;
	memset(enc, 'x', sizeof(enc));
	assert_int_equal(nx_base64_encode(in, 6, enc, 8), -ENOSPC);
	assert_int_equal(enc[0], 'x');
	assert_int_equal(nx_base64_encode(in, 6, enc, 9), 8);
	assert_int_equal(nx_base64_encode(in, 6, NULL, 0), -ENOSPC);
	assert_int_equal(nx_base64_encode(NULL, 0, enc, 0), -ENOSPC);
	assert_int_equal(nx_base64_encode(NULL, 0, enc, 1), 0);
	assert_string_equal(enc, "");
	assert_int_equal(nx_base64url_encode(in, 5, enc, 7), -ENOSPC);
	assert_int_equal(nx_base64url_encode(in, 5, enc, 8), 7);
	assert_string_equal(enc, "Zm9vYmE");
}

struct bad_case {
	const char *in;
	size_t len; /* 0: strlen(in) */
	int code;
	const char *msg;
};

static const struct bad_case bad_std[] = {
	/* characters */
	{ "Zm9v!A==", 0, -EINVAL, "invalid character '!' at offset 4" },
	{ "Zm9v\x80\x41==", 0, -EINVAL, "invalid byte 0x80 at offset 4" },
	{ "Zm\0v", 4, -EINVAL, "invalid byte 0x00 at offset 2" },
	{ "Zm9-", 0, -EINVAL, "invalid character '-' at offset 3 (base64url alphabet?)" },
	{ "Zm_v", 0, -EINVAL, "invalid character '_' at offset 2 (base64url alphabet?)" },
	/* whitespace */
	{ "Zm9v\n", 0, -EINVAL, "whitespace (newline) at offset 4" },
	{ " Zm9v", 0, -EINVAL, "whitespace (space) at offset 0" },
	{ "Zm9v\r\n", 0, -EINVAL, "whitespace (carriage return) at offset 4" },
	{ "Zm\t9v", 0, -EINVAL, "whitespace (tab) at offset 2" },
	/* length */
	{ "Zm9", 0, -EINVAL, "length 3 is not a multiple of 4" },
	{ "Zg", 0, -EINVAL, "length 2 is not a multiple of 4" },
	{ "Zm9vY", 0, -EINVAL, "length 5 is not a multiple of 4" },
	/* padding */
	{ "Zg=v", 0, -EINVAL, "misplaced padding '=' at offset 2" },
	{ "Z===", 0, -EINVAL, "misplaced padding '=' at offset 1" },
	{ "====", 0, -EINVAL, "misplaced padding '=' at offset 0" },
	{ "Zg==Zm9v", 0, -EINVAL, "misplaced padding '=' at offset 2" },
	{ "Zm9=Zm9v", 0, -EINVAL, "misplaced padding '=' at offset 3" },
	{ "=m9v", 0, -EINVAL, "misplaced padding '=' at offset 0" },
	/* non-canonical trailing bits */
	{ "Zh==", 0, -EINVAL,
	  "non-canonical encoding: unused low bits of the character at offset 1" },
	{ "Zm9=", 0, -EINVAL,
	  "non-canonical encoding: unused low bits of the character at offset 2" },
	{ "Zm9vYh==", 0, -EINVAL, "offset 5 are not zero" },
	{ "Zm9vYmF=", 0, -EINVAL, "offset 6 are not zero" },
};

static const struct bad_case bad_url[] = {
	{ "Zg==", 0, -EINVAL, "padding '=' at offset 2 is not allowed" },
	{ "Zm8=", 0, -EINVAL, "padding '=' at offset 3 is not allowed" },
	{ "Zm9+", 0, -EINVAL, "invalid character '+' at offset 3 (standard base64 alphabet?)" },
	{ "/m9v", 0, -EINVAL, "invalid character '/' at offset 0 (standard base64 alphabet?)" },
	{ "Zm.v", 0, -EINVAL, "invalid character '.' at offset 2" },
	{ "Zm9v\n", 0, -EINVAL, "whitespace (newline) at offset 4" },
	{ "Zm9vY", 0, -EINVAL, "length 5 is impossible" },
	{ "Z", 0, -EINVAL, "length 1 is impossible" },
	{ "Zh", 0, -EINVAL,
	  "non-canonical encoding: unused low bits of the character at offset 1" },
	{ "Zm9", 0, -EINVAL,
	  "non-canonical encoding: unused low bits of the character at offset 2" },
};

static void run_bad(const struct bad_case *c, size_t n, bool url)
{
	size_t i;

	for (i = 0; i < n; i++) {
		size_t len = c[i].len ? c[i].len : strlen(c[i].in);
		uint8_t out[16];
		struct nx_err err = { "" };
		int rc;

		memset(out, 0xa5, sizeof(out));
		rc = url ? nx_base64url_decode(c[i].in, len, out, sizeof(out), &err)
			 : nx_base64_decode(c[i].in, len, out, sizeof(out), &err);
		if (rc != c[i].code)
			fail_msg("\"%s\": rc %d, expected %d", c[i].in, rc, c[i].code);
		assert_err_contains(err, c[i].msg);
		/* output untouched on failure */
		assert_int_equal(out[0], 0xa5);

		err.msg[0] = '\0';
		rc = url ? nx_base64url_decoded_len(c[i].in, len, &err)
			 : nx_base64_decoded_len(c[i].in, len, &err);
		assert_int_equal(rc, c[i].code);
		assert_err_contains(err, c[i].msg);

		/* and callers may pass no err at all */
		rc = url ? nx_base64url_decode(c[i].in, len, out, sizeof(out), NULL)
			 : nx_base64_decode(c[i].in, len, out, sizeof(out), NULL);
		assert_int_equal(rc, c[i].code);
	}
}

static void test_decode_rejects(void **state)
{
	(void)state;
	run_bad(bad_std, sizeof(bad_std) / sizeof(bad_std[0]), false);
}

static void test_url_decode_rejects(void **state)
{
	(void)state;
	run_bad(bad_url, sizeof(bad_url) / sizeof(bad_url[0]), true);
}

static void test_decode_nospace(void **state)
{
	uint8_t out[6];
	struct nx_err err = { "" };

	(void)state;
	memset(out, 0xa5, sizeof(out));
	assert_int_equal(nx_base64_decode("Zm9vYmFy", 8, out, 5, &err), -ENOSPC);
	assert_err_contains(err, "output buffer too small: 6 bytes needed, 5 available");
	assert_int_equal(out[0], 0xa5);
	assert_int_equal(nx_base64url_decode("Zm9vYmE", 7, out, 4, &err), -ENOSPC);
	assert_err_contains(err, "5 bytes needed, 4 available");
	assert_int_equal(nx_base64_decode("Zm9vYmFy", 8, out, 6, &err), 6);
	assert_int_equal(nx_base64_decode("", 0, NULL, 0, &err), 0);
	assert_int_equal(nx_base64url_decode(NULL, 0, NULL, 0, &err), 0);
}

/* Only the exact canonical spelling of a value decodes. */
static void test_canonical_only(void **state)
{
	uint8_t out[4];
	char c;
	int accepted = 0;

	(void)state;
	/* "Z?==" decodes to one byte for 4 of the 64 second characters. */
	for (c = 0; c < 64; c++) {
		char in[5] = { 'Z', std_alphabet[(int)c], '=', '=', '\0' };

		if (nx_base64_decode(in, 4, out, sizeof(out), NULL) == 1)
			accepted++;
	}
	assert_int_equal(accepted, 4);
}

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 16;
}

static void test_roundtrip(void **state)
{
	uint32_t seed = 42;
	size_t n, i;

	(void)state;
	for (n = 0; n <= 200; n++) {
		uint8_t in[200], out[200];
		char enc[300];
		int len;

		for (i = 0; i < n; i++)
			in[i] = (uint8_t)lcg(&seed);

		len = nx_base64_encode(in, n, enc, sizeof(enc));
		assert_int_equal(len, nx_base64_encoded_len(n) - 1);
		assert_int_equal(nx_base64_decode(enc, (size_t)len, out, n, NULL), n);
		assert_memory_equal(in, out, n);

		len = nx_base64url_encode(in, n, enc, sizeof(enc));
		assert_int_equal(len, nx_base64url_encoded_len(n) - 1);
		assert_true(strchr(enc, '=') == NULL);
		assert_int_equal(nx_base64url_decode(enc, (size_t)len, out, n, NULL), n);
		assert_memory_equal(in, out, n);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),	   cmocka_unit_test(test_full_alphabet),
		cmocka_unit_test(test_high_values),	   cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_encode_nospace),	   cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_url_decode_rejects), cmocka_unit_test(test_decode_nospace),
		cmocka_unit_test(test_canonical_only),	   cmocka_unit_test(test_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
