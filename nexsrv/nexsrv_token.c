/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Registration keys and device tokens: minting them from the system's
 * random generator and reducing presented ones to the hash the database
 * stores, after a syntax check strict enough that only what we minted can
 * pass.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "lib/base64.h"
#include "lib/strutil.h"
#include "nexsrv/nexsrv_token.h"

#define TOKEN_PREFIX_LEN 3

static const struct {
	enum nexsrv_token_kind kind;
	const char *prefix;
	const char *name;
} token_kinds[] = {
	{ NEXSRV_TOKEN_REG_KEY, "RK:", "registration key" },
	{ NEXSRV_TOKEN_DEVICE, "DT:", "device token" },
};

#define N_KINDS (sizeof(token_kinds) / sizeof(token_kinds[0]))

_Static_assert(TOKEN_PREFIX_LEN + (NEXSRV_TOKEN_RANDOM_BYTES * 4 + 2) / 3 == NEXSRV_TOKEN_LEN,
	       "token length follows from the prefix and the random bytes");

static int kind_index(enum nexsrv_token_kind kind)
{
	for (size_t i = 0; i < N_KINDS; i++)
		if (token_kinds[i].kind == kind)
			return (int)i;
	return -1;
}

static int sha256(const char *text, size_t len, uint8_t hash[NEXSRV_TOKEN_HASH_LEN])
{
	unsigned int n = 0;

	if (EVP_Digest(text, len, hash, &n, EVP_sha256(), NULL) != 1 ||
	    n != NEXSRV_TOKEN_HASH_LEN) {
		memset(hash, 0, NEXSRV_TOKEN_HASH_LEN);
		return -EIO;
	}
	return 0;
}

int nexsrv_token_new(enum nexsrv_token_kind kind, char *out, size_t outsize,
		     uint8_t hash[NEXSRV_TOKEN_HASH_LEN])
{
	uint8_t rnd[NEXSRV_TOKEN_RANDOM_BYTES];
	int idx = kind_index(kind);
	int rc;

	memset(hash, 0, NEXSRV_TOKEN_HASH_LEN);
	if (outsize > 0)
		out[0] = '\0';
	if (idx < 0)
		return -EINVAL;
	if (outsize < NEXSRV_TOKEN_BUFSIZE)
		return -ENOSPC;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		rc = -EIO;
		goto out;
	}
	memcpy(out, token_kinds[idx].prefix, TOKEN_PREFIX_LEN);
	rc = nx_base64url_encode(rnd, sizeof(rnd), out + TOKEN_PREFIX_LEN,
				 outsize - TOKEN_PREFIX_LEN);
	if (rc != NEXSRV_TOKEN_LEN - TOKEN_PREFIX_LEN) {
		rc = -EIO;
		goto out;
	}
	rc = sha256(out, NEXSRV_TOKEN_LEN, hash);
out:
	nx_memzero_explicit(rnd, sizeof(rnd));
	if (rc < 0)
		nx_memzero_explicit(out, outsize);
	return rc;
}

enum nexsrv_token_kind nexsrv_token_kind_of(const char *token)
{
	if (!token)
		return NEXSRV_TOKEN_NONE;
	for (size_t i = 0; i < N_KINDS; i++)
		if (strncmp(token, token_kinds[i].prefix, TOKEN_PREFIX_LEN) == 0)
			return token_kinds[i].kind;
	return NEXSRV_TOKEN_NONE;
}

const char *nexsrv_token_kind_name(enum nexsrv_token_kind kind)
{
	int idx = kind_index(kind);

	return idx < 0 ? "unknown token" : token_kinds[idx].name;
}

int nexsrv_token_hash(const char *token, uint8_t hash[NEXSRV_TOKEN_HASH_LEN], struct nx_err *err)
{
	uint8_t rnd[NEXSRV_TOKEN_RANDOM_BYTES];
	enum nexsrv_token_kind kind;
	size_t len;
	int rc;

	memset(hash, 0, NEXSRV_TOKEN_HASH_LEN);
	if (!token || !*token)
		return nx_err_set(err, EINVAL, "empty token");
	kind = nexsrv_token_kind_of(token);
	if (kind == NEXSRV_TOKEN_NONE)
		return nx_err_set(err, EINVAL,
				  "not a registration key or device token: expected the prefix "
				  "\"RK:\" or \"DT:\"");
	len = strnlen(token, NEXSRV_TOKEN_LEN + 1);
	if (len > NEXSRV_TOKEN_LEN)
		return nx_err_set(err, EINVAL, "%s longer than %d characters",
				  nexsrv_token_kind_name(kind), NEXSRV_TOKEN_LEN);
	if (len < NEXSRV_TOKEN_LEN)
		return nx_err_set(err, EINVAL, "%s of %zu characters, expected %d",
				  nexsrv_token_kind_name(kind), len, NEXSRV_TOKEN_LEN);

	/* Decoding is the strict syntax check: alphabet, no padding, no
	 * stray trailing bits; the bytes themselves are not needed. */
	rc = nx_base64url_decode(token + TOKEN_PREFIX_LEN, NEXSRV_TOKEN_LEN - TOKEN_PREFIX_LEN, rnd,
				 sizeof(rnd), NULL);
	nx_memzero_explicit(rnd, sizeof(rnd));
	if (rc != NEXSRV_TOKEN_RANDOM_BYTES)
		return nx_err_set(err, EINVAL,
				  "malformed %s: expected 43 characters of A-Z, a-z, 0-9, '-' and "
				  "'_' after the prefix",
				  nexsrv_token_kind_name(kind));

	rc = sha256(token, NEXSRV_TOKEN_LEN, hash);
	if (rc < 0)
		return nx_err_set(err, -rc, "hashing the %s failed", nexsrv_token_kind_name(kind));
	return 0;
}
