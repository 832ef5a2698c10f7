/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * WireGuard keys: Curve25519 private/public keys and preshared keys.
 *
 * Keys travel in two spellings: base64 (config files, the REST API, `wg`
 * output) and hex (the WireGuard UAPI socket protocol).  Both parsers are
 * strict so that a key has exactly one accepted text form in each.  Private
 * and preshared keys are secrets: compare them with nx_wgkey_eq and wipe
 * them with nx_wgkey_wipe when done.
 */
#ifndef NX_WGKEY_H
#define NX_WGKEY_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/errmsg.h"

#define NX_WG_KEY_LEN	  32
#define NX_WG_KEY_B64_LEN 45 /* 44 characters + NUL */
#define NX_WG_KEY_HEX_LEN 65 /* 64 characters + NUL */

struct nx_wgkey {
	uint8_t b[NX_WG_KEY_LEN];
};

/* A fresh, clamped X25519 private key, as `wg genkey` makes. */
int nx_wgkey_generate_private(struct nx_wgkey *priv, struct nx_err *err);

/* The public key for priv (X25519 with the base point), as `wg pubkey`. */
int nx_wgkey_public_from_private(const struct nx_wgkey *priv, struct nx_wgkey *pub,
				 struct nx_err *err);

/* 32 random bytes from the private DRBG, as `wg genpsk`. */
int nx_wgkey_generate_preshared(struct nx_wgkey *psk, struct nx_err *err);

/* Writes the 44-character base64 form and a NUL. */
void nx_wgkey_to_base64(const struct nx_wgkey *key, char out[NX_WG_KEY_B64_LEN]);

/* Parses exactly 44 characters of canonical padded base64 (43 data
 * characters and one '=').  On failure *out is left untouched. */
int nx_wgkey_from_base64(const char *s, struct nx_wgkey *out, struct nx_err *err);

/* Writes the 64-character lowercase hex form and a NUL. */
void nx_wgkey_to_hex(const struct nx_wgkey *key, char out[NX_WG_KEY_HEX_LEN]);

/* Parses exactly 64 hex digits (either case).  On failure *out is left
 * untouched. */
int nx_wgkey_from_hex(const char *s, struct nx_wgkey *out, struct nx_err *err);

/* True if every byte is zero (the UAPI's "no key"); constant time. */
bool nx_wgkey_is_zero(const struct nx_wgkey *key);

/* Constant-time equality. */
bool nx_wgkey_eq(const struct nx_wgkey *a, const struct nx_wgkey *b);

/* Overwrites the key with zeros in a way the compiler cannot elide. */
void nx_wgkey_wipe(struct nx_wgkey *key);

#endif /* NX_WGKEY_H */
