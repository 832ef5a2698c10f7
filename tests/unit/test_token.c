/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for nexsrv/nexsrv_token: minted tokens have the documented
 * shape and hash back to what minting reported, hashes are stable across
 * releases (databases keep them), and every malformed token is refused with
 * a message that does not repeat it.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nexsrv/nexsrv_token.h"

#define assert_err_contains(e, sub)                                              \
	do {                                                                     \
		assert_true((e).msg[0] != '\0');                                 \
		if (!strstr((e).msg, (sub)))                                     \
			fail_msg("message \"%s\" lacks \"%s\"", (e).msg, (sub)); \
	} while (0)

static const uint8_t zero_hash[NEXSRV_TOKEN_HASH_LEN];

/* "RK:"/"DT:" + base64url of the bytes 0..31. */
#define FIXED_RANDOM "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

static void hex(const uint8_t *h, char out[2 * NEXSRV_TOKEN_HASH_LEN + 1])
{
	for (size_t i = 0; i < NEXSRV_TOKEN_HASH_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static void assert_rejected(const char *token, const char *msg_part)
{
	struct nx_err err = { "" };
	uint8_t hash[NEXSRV_TOKEN_HASH_LEN];

	memset(hash, 0xaa, sizeof(hash));
	assert_int_equal(nexsrv_token_hash(token, hash, &err), -EINVAL);
	assert_err_contains(err, msg_part);
	assert_memory_equal(hash, zero_hash, sizeof(hash));
	if (token && strlen(token) > 8)
		assert_null(strstr(err.msg, token + 3)); /* never echoed */
}

static void test_round_trip(void **state)
{
	static const enum nexsrv_token_kind kinds[] = { NEXSRV_TOKEN_REG_KEY, NEXSRV_TOKEN_DEVICE };
	static const char *const prefixes[] = { "RK:", "DT:" };

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		for (int i = 0; i < 50; i++) {
			char tok[NEXSRV_TOKEN_BUFSIZE];
			uint8_t h1[NEXSRV_TOKEN_HASH_LEN], h2[NEXSRV_TOKEN_HASH_LEN];
			struct nx_err err = { "" };

			assert_int_equal(nexsrv_token_new(kinds[k], tok, sizeof(tok), h1), 0);
			assert_int_equal(strlen(tok), NEXSRV_TOKEN_LEN);
			assert_memory_equal(tok, prefixes[k], 3);
			for (const char *c = tok + 3; *c; c++)
				assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
						       "qrstuvwxyz0123456789-_",
						       *c));
			assert_int_equal(nexsrv_token_kind_of(tok), kinds[k]);
			assert_int_equal(nexsrv_token_hash(tok, h2, &err), 0);
			assert_memory_equal(h1, h2, sizeof(h1));
			assert_memory_not_equal(h1, zero_hash, sizeof(h1));
		}
	}
}

static void test_tokens_differ(void **state)
{
	char a[NEXSRV_TOKEN_BUFSIZE], b[NEXSRV_TOKEN_BUFSIZE];
	uint8_t ha[NEXSRV_TOKEN_HASH_LEN], hb[NEXSRV_TOKEN_HASH_LEN];

	(void)state;
	assert_int_equal(nexsrv_token_new(NEXSRV_TOKEN_DEVICE, a, sizeof(a), ha), 0);
	assert_int_equal(nexsrv_token_new(NEXSRV_TOKEN_DEVICE, b, sizeof(b), hb), 0);
	assert_string_not_equal(a, b);
	assert_memory_not_equal(ha, hb, sizeof(ha));
}

static void test_new_bad_args(void **state)
{
	char small[NEXSRV_TOKEN_LEN];
	char tok[NEXSRV_TOKEN_BUFSIZE];
	uint8_t h[NEXSRV_TOKEN_HASH_LEN];

	(void)state;
	memset(h, 0xaa, sizeof(h));
	assert_int_equal(nexsrv_token_new(NEXSRV_TOKEN_REG_KEY, small, sizeof(small), h), -ENOSPC);
	assert_string_equal(small, "");
	assert_memory_equal(h, zero_hash, sizeof(h));
	assert_int_equal(nexsrv_token_new(NEXSRV_TOKEN_NONE, tok, sizeof(tok), h), -EINVAL);
	assert_int_equal(nexsrv_token_new((enum nexsrv_token_kind)7, tok, sizeof(tok), h), -EINVAL);
	assert_string_equal(tok, "");
}

/* Stored hashes must never change meaning: SHA-256 of the full text. */
static void test_hash_stability(void **state)
{
	uint8_t h[NEXSRV_TOKEN_HASH_LEN];
	char hx[2 * NEXSRV_TOKEN_HASH_LEN + 1];
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(nexsrv_token_hash("RK:" FIXED_RANDOM, h, &err), 0);
	hex(h, hx);
	assert_string_equal(hx, "3e78b8bff629369f7563b3fa941c84d8ba1732f46ce05815f93d8add35e665ff");
	assert_int_equal(nexsrv_token_hash("DT:" FIXED_RANDOM, h, &err), 0);
	hex(h, hx);
	assert_string_equal(hx, "65cd07d08d0ffe5878ce736bd0c20b3c55ca4f498acb9e4da5159a69a1e1f3ae");
	assert_int_equal(nexsrv_token_kind_of("RK:" FIXED_RANDOM), NEXSRV_TOKEN_REG_KEY);
	assert_int_equal(nexsrv_token_kind_of("DT:" FIXED_RANDOM), NEXSRV_TOKEN_DEVICE);
}

static void test_wrong_prefix(void **state)
{
	(void)state;
	assert_rejected(NULL, "empty");
	assert_rejected("", "empty");
	assert_rejected("XX:" FIXED_RANDOM, "prefix");
	assert_rejected("rk:" FIXED_RANDOM, "prefix");
	assert_rejected("RK" FIXED_RANDOM "A", "prefix");
	assert_rejected(" RK:" FIXED_RANDOM, "prefix");
	assert_rejected("eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "prefix");
	assert_int_equal(nexsrv_token_kind_of("XX:abc"), NEXSRV_TOKEN_NONE);
	assert_int_equal(nexsrv_token_kind_of(NULL), NEXSRV_TOKEN_NONE);
	assert_int_equal(nexsrv_token_kind_of("RK"), NEXSRV_TOKEN_NONE);
}

static void test_wrong_length(void **state)
{
	char longer[200];

	(void)state;
	assert_rejected("RK:", "registration key of 3 characters, expected 46");
	assert_rejected("DT:" FIXED_RANDOM "A", "device token longer than 46");
	/* 42 characters: would be 31.5 bytes */
	assert_rejected("DT:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh", "of 45 characters");
	/* padded form of the same bytes */
	assert_rejected("RK:" FIXED_RANDOM "=", "longer than 46");
	memset(longer, 'A', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	memcpy(longer, "RK:", 3);
	assert_rejected(longer, "longer than 46");
}

static void test_bad_alphabet(void **state)
{
	char tok[NEXSRV_TOKEN_BUFSIZE];
	static const char bad[] = "+/=. \t\n*%\x80";

	(void)state;
	for (size_t i = 0; i < sizeof(bad) - 1; i++) {
		snprintf(tok, sizeof(tok), "RK:%s", FIXED_RANDOM);
		tok[20] = bad[i];
		assert_rejected(tok, "malformed registration key");
	}
	/* the last character carries 2 stray bits: only one spelling is valid */
	snprintf(tok, sizeof(tok), "DT:%s", FIXED_RANDOM);
	tok[NEXSRV_TOKEN_LEN - 1] = '9';
	assert_rejected(tok, "malformed device token");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_tokens_differ),
		cmocka_unit_test(test_new_bad_args), cmocka_unit_test(test_hash_stability),
		cmocka_unit_test(test_wrong_prefix), cmocka_unit_test(test_wrong_length),
		cmocka_unit_test(test_bad_alphabet),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
