/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lib/wgkey: RFC 7748 X25519 vectors, vectors produced by
 * `wg genkey | wg pubkey` (hard-coded; wg is not needed to run this), key
 * generation, and the base64 and hex parsers' rejections.
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

#include "lib/wgkey.h"

#define assert_err_contains(e, sub)                                              \
	do {                                                                     \
		assert_true((e).msg[0] != '\0');                                 \
		if (!strstr((e).msg, (sub)))                                     \
			fail_msg("message \"%s\" lacks \"%s\"", (e).msg, (sub)); \
	} while (0)

/* RFC 7748 §6.1, hex. */
static const struct {
	const char *priv;
	const char *pub;
} rfc7748[] = {
	{ "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
	  "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a" },
	{ "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
	  "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f" },
};

/* base64 private -> public, as printed by `wg genkey` / `wg pubkey`.  The
 * last two are unclamped private keys, which wg clamps before use. */
static const struct {
	const char *priv;
	const char *pub;
} wg_vectors[] = {
	{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=",
	  "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=" },
	{ "XasIfmJKikt54X+Lg4AO5m87sSkmGLb9HC+LJ/+I4Os=",
	  "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=" },
	{ "MHPle/gmcssbttTHF1zB9kXoWaiIcxV1+0KnUGOXDFU=",
	  "OkT4wmkDDmcwa/U0wLX/fUC2uA7zix38RpSWEU2B/gY=" },
	{ "SOtRn8rB8IBD/kvkpDF08HdU3krNUA+GnnTXPSZyhl0=",
	  "IoWp5HvRKltnKJCuikQy2QkglZoqV+Q+hCNspAh4WFk=" },
	{ "GBf2zo8KVCnnSW4sQlzc1B8YMd/3KILq22oLGeXYJlc=",
	  "HZIQKX49SiMeuwfE/v2b/Vvhn85Q1lBe1Fg9roNrtHw=" },
	{ "//////////////////////////////////////////8=",
	  "hHwNLDdSNPNl5mCVUYejc1oPdhPRYJ06ak2MU66qWiI=" },
	{ "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	  "L+V9o0fNYkMVKNqsX7spBzD/9oSvxM/C7ZCZX1jLO3Q=" },
};

static void test_rfc7748(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rfc7748) / sizeof(rfc7748[0]); i++) {
		struct nx_wgkey priv, pub, want;
		struct nx_err err = { "" };
		char hex[NX_WG_KEY_HEX_LEN];

		assert_int_equal(nx_wgkey_from_hex(rfc7748[i].priv, &priv, &err), 0);
		assert_int_equal(nx_wgkey_from_hex(rfc7748[i].pub, &want, &err), 0);
		assert_int_equal(nx_wgkey_public_from_private(&priv, &pub, &err), 0);
		assert_true(nx_wgkey_eq(&pub, &want));
		nx_wgkey_to_hex(&pub, hex);
		assert_string_equal(hex, rfc7748[i].pub);
	}
}

static void test_wg_vectors(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(wg_vectors) / sizeof(wg_vectors[0]); i++) {
		struct nx_wgkey priv, pub;
		struct nx_err err = { "" };
		char b64[NX_WG_KEY_B64_LEN];

		assert_int_equal(nx_wgkey_from_base64(wg_vectors[i].priv, &priv, &err), 0);
		assert_int_equal(nx_wgkey_public_from_private(&priv, &pub, &err), 0);
		nx_wgkey_to_base64(&pub, b64);
		assert_string_equal(b64, wg_vectors[i].pub);
		nx_wgkey_to_base64(&priv, b64);
		assert_string_equal(b64, wg_vectors[i].priv);
	}
}

static void test_generate_private(void **state)
{
	struct nx_wgkey a, b, pa, pb, pa2;
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(nx_wgkey_generate_private(&a, &err), 0);
	assert_int_equal(nx_wgkey_generate_private(&b, &err), 0);
	assert_false(nx_wgkey_eq(&a, &b));
	assert_false(nx_wgkey_is_zero(&a));
	/* clamped */
	assert_int_equal(a.b[0] & 7, 0);
	assert_int_equal(a.b[31] & 0xc0, 0x40);
	assert_int_equal(b.b[0] & 7, 0);
	assert_int_equal(b.b[31] & 0xc0, 0x40);

	assert_int_equal(nx_wgkey_public_from_private(&a, &pa, &err), 0);
	assert_int_equal(nx_wgkey_public_from_private(&a, &pa2, &err), 0);
	assert_int_equal(nx_wgkey_public_from_private(&b, &pb, &err), 0);
	assert_true(nx_wgkey_eq(&pa, &pa2));
	assert_false(nx_wgkey_eq(&pa, &pb));
	assert_false(nx_wgkey_eq(&pa, &a));
}

static void test_generate_preshared(void **state)
{
	struct nx_wgkey a, b;

	(void)state;
	assert_int_equal(nx_wgkey_generate_preshared(&a, NULL), 0);
	assert_int_equal(nx_wgkey_generate_preshared(&b, NULL), 0);
	assert_false(nx_wgkey_eq(&a, &b));
	assert_false(nx_wgkey_is_zero(&a));
}

static void test_text_forms(void **state)
{
	struct nx_wgkey k, k2;
	char b64[NX_WG_KEY_B64_LEN], hex[NX_WG_KEY_HEX_LEN];
	struct nx_err err = { "" };

	(void)state;
	assert_int_equal(
		nx_wgkey_from_base64("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=", &k, &err), 0);
	nx_wgkey_to_hex(&k, hex);
	assert_int_equal(strlen(hex), 64);
	assert_string_equal(hex, rfc7748[0].priv);

	/* uppercase and mixed case hex are accepted; output is lowercase */
	assert_int_equal(nx_wgkey_from_hex(
				 "77076D0A7318A57D3C16C17251B26645DF4C2F87EBC0992AB177FBA51DB92C2A",
				 &k2, &err),
			 0);
	assert_true(nx_wgkey_eq(&k, &k2));
	assert_int_equal(nx_wgkey_from_hex(
				 "77076d0A7318a57D3C16C17251B26645DF4C2F87EBC0992AB177FBA51DB92c2A",
				 &k2, &err),
			 0);
	assert_true(nx_wgkey_eq(&k, &k2));

	nx_wgkey_to_base64(&k2, b64);
	assert_int_equal(strlen(b64), 44);
	assert_string_equal(b64, "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=");

	/* every hex digit value survives */
	memset(&k, 0, sizeof(k));
	for (size_t i = 0; i < NX_WG_KEY_LEN; i++)
		k.b[i] = (uint8_t)((i & 0xf) << 4 | (15 - (i & 0xf)));
	nx_wgkey_to_hex(&k, hex);
	assert_int_equal(nx_wgkey_from_hex(hex, &k2, &err), 0);
	assert_true(nx_wgkey_eq(&k, &k2));
	assert_string_equal(hex, "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
				 "0f1e2d3c4b5a69788796a5b4c3d2e1f0");
}

static void test_base64_rejects(void **state)
{
	static const struct {
		const char *in;
		const char *msg;
	} bad[] = {
		{ "", "key must be 32 bytes; got 0" },
		{ "AAAA", "key must be 32 bytes; got 3" },
		{ "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "key must be 32 bytes; got 30" },
		{ "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		  "key must be 32 bytes; got 36" },
		{ "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=AAAA",
		  "key must be 44 base64 characters; got 48" },
		/* '=' dropped */
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo",
		  "key must be 44 base64 characters; got 43 (base64: length 43 is not a multiple "
		  "of 4)" },
		/* trailing newline, as read from a file */
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n",
		  "key must be 44 base64 characters; got 45 (base64: whitespace (newline) at "
		  "offset "
		  "44" },
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC!=",
		  "invalid key: base64: invalid character '!' at offset 42" },
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC==",
		  "invalid key: base64: non-canonical encoding" },
		/* non-canonical: 'p' leaves the two unused bits set */
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCp=",
		  "invalid key: base64: non-canonical encoding: unused low bits of the character "
		  "at "
		  "offset 42" },
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25L=o=",
		  "invalid key: base64: misplaced padding '=' at offset 41" },
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo-", "(base64url alphabet?)" },
		{ " wdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=",
		  "whitespace (space) at offset 0" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct nx_wgkey k;
		struct nx_err err = { "" };

		memset(&k, 0x5a, sizeof(k));
		assert_int_equal(nx_wgkey_from_base64(bad[i].in, &k, &err), -EINVAL);
		assert_err_contains(err, bad[i].msg);
		assert_int_equal(k.b[0], 0x5a);
		assert_int_equal(nx_wgkey_from_base64(bad[i].in, &k, NULL), -EINVAL);
	}
	{
		struct nx_wgkey k;
		struct nx_err err = { "" };

		assert_int_equal(nx_wgkey_from_base64(NULL, &k, &err), -EINVAL);
		assert_err_contains(err, "no key given");
	}
}

static void test_hex_rejects(void **state)
{
	static const struct {
		const char *in;
		const char *msg;
	} bad[] = {
		{ "", "hex key must be 64 characters; got 0" },
		{ "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2",
		  "hex key must be 64 characters; got 63" },
		{ "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a0",
		  "hex key must be 64 characters; got 65" },
		{ "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a\n",
		  "hex key must be 64 characters; got 65" },
		{ "77076d0a73g8a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
		  "invalid hex character 'g' at offset 10" },
		{ "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2 ",
		  "invalid byte 0x20 at offset 63" },
		{ "\xff"
		  "7076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
		  "invalid byte 0xff at offset 0" },
		{ "0x076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
		  "invalid hex character 'x' at offset 1" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct nx_wgkey k;
		struct nx_err err = { "" };

		memset(&k, 0x5a, sizeof(k));
		assert_int_equal(nx_wgkey_from_hex(bad[i].in, &k, &err), -EINVAL);
		assert_err_contains(err, bad[i].msg);
		assert_int_equal(k.b[0], 0x5a);
	}
}

static void test_compare_wipe(void **state)
{
	struct nx_wgkey a, b;

	(void)state;
	memset(&a, 0, sizeof(a));
	assert_true(nx_wgkey_is_zero(&a));
	a.b[31] = 1;
	assert_false(nx_wgkey_is_zero(&a));
	a.b[31] = 0;
	a.b[0] = 0x80;
	assert_false(nx_wgkey_is_zero(&a));

	memset(&b, 0, sizeof(b));
	assert_false(nx_wgkey_eq(&a, &b));
	b.b[0] = 0x80;
	assert_true(nx_wgkey_eq(&a, &b));
	b.b[17] = 1;
	assert_false(nx_wgkey_eq(&a, &b));

	memset(&a, 0xff, sizeof(a));
	nx_wgkey_wipe(&a);
	assert_true(nx_wgkey_is_zero(&a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7748),		 cmocka_unit_test(test_wg_vectors),
		cmocka_unit_test(test_generate_private), cmocka_unit_test(test_generate_preshared),
		cmocka_unit_test(test_text_forms),	 cmocka_unit_test(test_base64_rejects),
		cmocka_unit_test(test_hex_rejects),	 cmocka_unit_test(test_compare_wipe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
