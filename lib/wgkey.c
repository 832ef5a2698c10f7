/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * WireGuard key generation and text forms; see wgkey.h.
 *
 * Curve25519 comes from OpenSSL 3 (EVP X25519).  The hex codec uses
 * arithmetic instead of branches or tables on key bytes, and temporary
 * copies of secrets are cleansed before returning.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "lib/base64.h"
#include "lib/wgkey.h"

#define WG_KEY_B64_CHARS (NX_WG_KEY_B64_LEN - 1)
#define WG_KEY_HEX_CHARS (NX_WG_KEY_HEX_LEN - 1)

/* Fills err with what OpenSSL says went wrong and empties its error queue. */
static int ossl_fail(struct nx_err *err, int code, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[160];

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	else
		snprintf(buf, sizeof(buf), "no further detail");
	ERR_clear_error();
	return nx_err_set(err, code, "%s: %s", what, buf);
}

/* Curve25519 scalar clamping (RFC 7748 §5), as every WireGuard tool does. */
static void wgkey_clamp(struct nx_wgkey *k)
{
	k->b[0] &= 248;
	k->b[31] &= 127;
	k->b[31] |= 64;
}

int nx_wgkey_generate_private(struct nx_wgkey *priv, struct nx_err *err)
{
	EVP_PKEY *pkey;
	struct nx_wgkey tmp;
	size_t len = sizeof(tmp.b);
	int rc = 0;

	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	if (!pkey)
		return ossl_fail(err, EIO, "X25519 key generation failed");

	if (EVP_PKEY_get_raw_private_key(pkey, tmp.b, &len) != 1) {
		rc = ossl_fail(err, EIO, "cannot extract X25519 private key");
		goto out;
	}
	if (len != sizeof(tmp.b)) {
		rc = nx_err_set(err, EIO, "X25519 private key is %zu bytes, expected %d", len,
				NX_WG_KEY_LEN);
		goto out;
	}
	wgkey_clamp(&tmp);
	*priv = tmp;
out:
	nx_wgkey_wipe(&tmp);
	EVP_PKEY_free(pkey);
	return rc;
}

int nx_wgkey_public_from_private(const struct nx_wgkey *priv, struct nx_wgkey *pub,
				 struct nx_err *err)
{
	EVP_PKEY *pkey;
	struct nx_wgkey tmp;
	size_t len = sizeof(tmp.b);
	int rc = 0;

	/* X25519 clamps the scalar itself, so unclamped input gives the same
	 * public key as its clamped form, just like `wg pubkey`. */
	pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv->b, sizeof(priv->b));
	if (!pkey)
		return ossl_fail(err, EIO, "cannot load X25519 private key");

	if (EVP_PKEY_get_raw_public_key(pkey, tmp.b, &len) != 1) {
		rc = ossl_fail(err, EIO, "cannot derive X25519 public key");
		goto out;
	}
	if (len != sizeof(tmp.b)) {
		rc = nx_err_set(err, EIO, "X25519 public key is %zu bytes, expected %d", len,
				NX_WG_KEY_LEN);
		goto out;
	}
	*pub = tmp;
out:
	EVP_PKEY_free(pkey);
	return rc;
}

int nx_wgkey_generate_preshared(struct nx_wgkey *psk, struct nx_err *err)
{
	struct nx_wgkey tmp;
	int rc = 0;

	if (RAND_priv_bytes(tmp.b, sizeof(tmp.b)) != 1)
		rc = ossl_fail(err, EIO, "random number generator failed");
	else
		*psk = tmp;
	nx_wgkey_wipe(&tmp);
	return rc;
}

void nx_wgkey_to_base64(const struct nx_wgkey *key, char out[NX_WG_KEY_B64_LEN])
{
	int n = nx_base64_encode(key->b, sizeof(key->b), out, NX_WG_KEY_B64_LEN);

	(void)n; /* cannot fail: the buffer size is fixed and sufficient */
}

int nx_wgkey_from_base64(const char *s, struct nx_wgkey *out, struct nx_err *err)
{
	struct nx_wgkey tmp;
	struct nx_err e;
	size_t len;
	int n;

	if (!s)
		return nx_err_set(err, EINVAL, "no key given");
	len = strlen(s);

	n = nx_base64_decoded_len(s, len, &e);
	if (n < 0) {
		if (len != WG_KEY_B64_CHARS)
			return nx_err_set(err, -n, "key must be %d base64 characters; got %zu (%s)",
					  WG_KEY_B64_CHARS, len, e.msg);
		return nx_err_set(err, -n, "invalid key: %s", e.msg);
	}
	if (n != NX_WG_KEY_LEN)
		return nx_err_set(err, EINVAL, "key must be %d bytes; got %d", NX_WG_KEY_LEN, n);

	n = nx_base64_decode(s, len, tmp.b, sizeof(tmp.b), &e);
	if (n != NX_WG_KEY_LEN) {
		/* Validated above; reaching this is a bug in the codec. */
		nx_wgkey_wipe(&tmp);
		return nx_err_set(err, EINVAL, "invalid key: %s", n < 0 ? e.msg : "short decode");
	}
	*out = tmp;
	nx_wgkey_wipe(&tmp);
	return 0;
}

/* All ones if lo <= x <= hi, else 0 (x, lo, hi in 0..255). */
static inline int ct_in_range(int x, int lo, int hi)
{
	return ((lo - 1 - x) & (x - hi - 1)) >> 8;
}

/* Value of hex digit c, or -1. */
static inline int hex_value(unsigned char c)
{
	int x = c;
	int v = -1;

	v += ct_in_range(x, '0', '9') & (x - '0' + 1);
	v += ct_in_range(x, 'a', 'f') & (x - 'a' + 11);
	v += ct_in_range(x, 'A', 'F') & (x - 'A' + 11);
	return v;
}

/* Lowercase hex digit for x (0..15). */
static inline char hex_char(unsigned int v)
{
	int x = (int)(v & 0xf);

	return (char)('0' + x + (((9 - x) >> 8) & ('a' - '0' - 10)));
}

void nx_wgkey_to_hex(const struct nx_wgkey *key, char out[NX_WG_KEY_HEX_LEN])
{
	size_t i;

	for (i = 0; i < sizeof(key->b); i++) {
		out[2 * i] = hex_char(key->b[i] >> 4);
		out[2 * i + 1] = hex_char(key->b[i]);
	}
	out[WG_KEY_HEX_CHARS] = '\0';
}

int nx_wgkey_from_hex(const char *s, struct nx_wgkey *out, struct nx_err *err)
{
	struct nx_wgkey tmp;
	size_t len, i;

	if (!s)
		return nx_err_set(err, EINVAL, "no key given");
	len = strlen(s);
	if (len != WG_KEY_HEX_CHARS)
		return nx_err_set(err, EINVAL, "hex key must be %d characters; got %zu",
				  WG_KEY_HEX_CHARS, len);

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (hex_value(c) < 0) {
			nx_wgkey_wipe(&tmp);
			if (c >= 0x21 && c < 0x7f)
				return nx_err_set(err, EINVAL,
						  "invalid hex character '%c' at offset %zu", c, i);
			return nx_err_set(err, EINVAL,
					  "invalid byte 0x%02x at offset %zu in hex key", c, i);
		}
		if (i % 2)
			tmp.b[i / 2] =
				(uint8_t)(hex_value((unsigned char)s[i - 1]) << 4 | hex_value(c));
	}
	*out = tmp;
	nx_wgkey_wipe(&tmp);
	return 0;
}

bool nx_wgkey_is_zero(const struct nx_wgkey *key)
{
	uint8_t acc = 0;
	size_t i;

	for (i = 0; i < sizeof(key->b); i++)
		acc |= key->b[i];
	/* (acc - 1) >> 8 is 1 only when acc == 0 */
	return (((unsigned int)acc - 1) >> 8) & 1;
}

bool nx_wgkey_eq(const struct nx_wgkey *a, const struct nx_wgkey *b)
{
	return CRYPTO_memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

void nx_wgkey_wipe(struct nx_wgkey *key)
{
	OPENSSL_cleanse(key, sizeof(*key));
}
