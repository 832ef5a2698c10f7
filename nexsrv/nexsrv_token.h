/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The service's own opaque bearer secrets: registration keys, which let an
 * agent join a VPC without a person at a browser, and device tokens, which a
 * registered device presents from then on.
 *
 * A token is a kind prefix followed by 256 random bits in unpadded base64url
 * ("RK:" + 43 characters, "DT:" + 43 characters).  The service keeps only the
 * SHA-256 of a token's full text (prefix included, so the same random part
 * under two kinds hashes differently): a database leak gives nothing that can
 * be presented.  Presented tokens are syntax-checked strictly before hashing,
 * so garbage is turned away with a message and never reaches a lookup.
 */
#ifndef NEXSRV_TOKEN_H
#define NEXSRV_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "lib/errmsg.h"

enum nexsrv_token_kind {
	NEXSRV_TOKEN_NONE = 0,	  /* not a token of ours */
	NEXSRV_TOKEN_REG_KEY = 1, /* "RK:" registration key */
	NEXSRV_TOKEN_DEVICE = 2,  /* "DT:" device token */
};

/* Random bytes per token, bytes of a token hash. */
#define NEXSRV_TOKEN_RANDOM_BYTES 32
#define NEXSRV_TOKEN_HASH_LEN	  32
/* Length of a token's text: 3 prefix characters + 43 base64url characters. */
#define NEXSRV_TOKEN_LEN	  46
/* A buffer that holds any token, NUL included. */
#define NEXSRV_TOKEN_BUFSIZE	  (NEXSRV_TOKEN_LEN + 1)

/*
 * Creates a new token of the given kind (NEXSRV_TOKEN_REG_KEY or
 * NEXSRV_TOKEN_DEVICE) from RAND_bytes, writes its text, NUL-terminated, to
 * out and its SHA-256 to hash.  Returns 0; -EINVAL for another kind, -ENOSPC
 * if outsize < NEXSRV_TOKEN_BUFSIZE, -EIO if the random generator or the
 * digest failed.  On failure out (if it has room) holds "" and hash is
 * zeroed.  The text is the secret to hand out once; store only the hash.
 */
int nexsrv_token_new(enum nexsrv_token_kind kind, char *out, size_t outsize,
		     uint8_t hash[NEXSRV_TOKEN_HASH_LEN]);

/*
 * Checks that token is exactly a token of either kind (known prefix, 43
 * characters of the base64url alphabet, zero trailing bits: the only
 * spelling nexsrv_token_new can produce) and stores its SHA-256 in hash.
 * Returns 0, or -EINVAL with err naming what is wrong (the token itself is
 * never echoed: it may be a mistyped secret), or -EIO if the digest failed.
 * hash is zeroed on failure.  Use nexsrv_token_kind_of() to tell the kinds
 * apart after a successful call.
 */
int nexsrv_token_hash(const char *token, uint8_t hash[NEXSRV_TOKEN_HASH_LEN], struct nx_err *err);

/* The kind that token's prefix claims (NEXSRV_TOKEN_NONE for anything else,
 * NULL included); says nothing about the rest of the syntax. */
enum nexsrv_token_kind nexsrv_token_kind_of(const char *token);

/* "registration key", "device token", or "unknown token". */
const char *nexsrv_token_kind_name(enum nexsrv_token_kind kind);

#endif /* NEXSRV_TOKEN_H */
