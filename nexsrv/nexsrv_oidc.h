/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * OIDC bearer-token validation for the REST API.
 *
 * People authenticate with access tokens from the configured OpenID Connect
 * provider.  The service checks them locally, without asking the provider
 * per request: the provider's discovery document names its key set
 * (jwks_uri), which is fetched once and cached; a token is accepted when it
 * is a compact JWS signed with one of those keys (RS256, ES256 or EdDSA) and
 * its claims name this issuer and audience and are current.  The discovery
 * document also names the endpoints of the device authorization flow, which
 * the service passes on to agents that start a login.
 *
 * Network use is lazy and bounded: nothing is fetched until the first token
 * (or the first endpoints request) arrives; a token with an unknown kid
 * makes the key set be fetched again, but at most once per
 * refetch_interval_s for the whole process, so a flood of forged kids cannot
 * make the service hammer the provider; failed fetches are retried no more
 * often either.  Bodies are limited to NEXSRV_OIDC_MAX_BODY bytes and parsed
 * with nx_json_parse; redirects are not followed; only http and https are
 * spoken, and TLS peers are verified unless the test-only
 * insecure_skip_tls_verify is set.
 *
 * Signatures: RS256 and ES256 are verified with cjose (cjose_jws_import +
 * cjose_jws_verify).  cjose 0.6 knows no OKP keys, so EdDSA (Ed25519, RFC
 * 8037) is verified with OpenSSL's EVP_DigestVerify on a public key made
 * from the JWK's "x" parameter.  Before either, the token is parsed here
 * strictly (three unpadded base64url parts, JSON header and payload), alg
 * "none" and any alg but RS256/ES256/EdDSA are refused, and the key chosen
 * by kid must be of the type the alg needs (RSA of at least 2048 bits, EC
 * P-256, OKP Ed25519) with a signature of the matching length.
 *
 * Thread safety: nexsrv_oidc_validate() and nexsrv_oidc_endpoints() may be
 * called from any number of threads at once.  Create and free the object
 * while no other thread uses it.
 */
#ifndef NEXSRV_OIDC_H
#define NEXSRV_OIDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/errmsg.h"

/* Defaults that nexsrv_oidc_config_init() fills in. */
#define NEXSRV_OIDC_DEFAULT_LEEWAY_S	       60
#define NEXSRV_OIDC_DEFAULT_FETCH_TIMEOUT_MS   5000
#define NEXSRV_OIDC_DEFAULT_REFETCH_INTERVAL_S 10
#define NEXSRV_OIDC_DEFAULT_JWKS_MAX_AGE_S     3600

/* Largest leeway accepted in the configuration. */
#define NEXSRV_OIDC_MAX_LEEWAY_S 3600
/* Longer bearer tokens are rejected before any decoding. */
#define NEXSRV_OIDC_MAX_TOKEN	 16384
/* Largest discovery document or key set accepted. */
#define NEXSRV_OIDC_MAX_BODY	 (256 * 1024)
/* Longest kid accepted, in a token or a key set. */
#define NEXSRV_OIDC_MAX_KID	 256
/* Longest URL accepted, configured or discovered (NUL excluded). */
#define NEXSRV_OIDC_MAX_URL	 2047

/*
 * Return codes of nexsrv_oidc_validate() and nexsrv_oidc_endpoints(),
 * negated: the token was refused (HTTP 401), the provider could not be
 * reached or sent something unusable (HTTP 503).  -ENOMEM is possible too.
 */
#define NEXSRV_OIDC_EREJECTED	 EACCES
#define NEXSRV_OIDC_EUNAVAILABLE EAGAIN

struct nexsrv_oidc_config {
	/* The issuer exactly as tokens carry it in "iss", http(s) URL. */
	const char *issuer;
	/* The audience a token's "aud" (string or array) must contain. */
	const char *audience;
	/* Clock skew tolerated on exp, nbf and iat, in seconds. */
	unsigned leeway_s;
	/* Trust anchors for https: a PEM bundle and/or a hashed directory;
	 * NULL for libcurl's defaults (the system store). */
	const char *ca_file;
	const char *ca_path;
	/* Tests only: do not verify the provider's TLS certificate or host
	 * name.  Never set it in production; a warning is logged. */
	bool insecure_skip_tls_verify;
	/* Whole-transfer limit of one fetch, in milliseconds. */
	unsigned fetch_timeout_ms;
	/* At most one fetch per this many seconds, process-wide, for unknown
	 * kids and for retries after a failure. */
	unsigned refetch_interval_s;
	/* Once the cached key set is this old, the next request refreshes it
	 * (so keys the provider revoked stop working) while concurrent ones go
	 * on with the old set, as everyone does if the refresh fails; 0: never. */
	unsigned jwks_max_age_s;
};

/* What a validated token says about its holder.  Strings are "" when the
 * claim is absent. */
struct nexsrv_claims {
	char sub[256];
	char email[320];
	char preferred_username[256];
	char name[256];
	int64_t expires_at; /* exp, seconds since the epoch */
	int64_t issued_at;  /* iat, 0 when absent */
};

/* The provider's endpoints from its discovery document. */
struct nexsrv_oidc_endpoints {
	char issuer[NEXSRV_OIDC_MAX_URL + 1];
	char jwks_uri[NEXSRV_OIDC_MAX_URL + 1];
	char token_endpoint[NEXSRV_OIDC_MAX_URL + 1];
	/* "" when the provider does not offer the device flow. */
	char device_authorization_endpoint[NEXSRV_OIDC_MAX_URL + 1];
};

struct nexsrv_oidc;

/* Zeroes cfg and sets the defaults above (TLS verification on). */
void nexsrv_oidc_config_init(struct nexsrv_oidc_config *cfg);

/*
 * Creates a validator from cfg (copied; cfg may be discarded afterwards).
 * Fetches nothing.  Returns NULL with err set (and errno) when issuer is not
 * an http(s) URL, audience is missing, leeway exceeds
 * NEXSRV_OIDC_MAX_LEEWAY_S, the timeout is 0, or memory runs out.
 * Call it from the main thread before the HTTP workers start (it
 * initialises libcurl).
 */
struct nexsrv_oidc *nexsrv_oidc_new(const struct nexsrv_oidc_config *cfg, struct nx_err *err);

/* Frees o (NULL is fine).  No other thread may be using it. */
void nexsrv_oidc_free(struct nexsrv_oidc *o);

/*
 * Validates bearer, the token text of an "Authorization: Bearer" header
 * (without the word Bearer), and on success fills *out and returns 0.
 *
 * Order: the compact JWS is parsed strictly (at most NEXSRV_OIDC_MAX_TOKEN
 * bytes; header with a supported alg and a kid; typ, if present, "JWT" or
 * "at+jwt"; no "crit"), then the claims are checked (iss equals the issuer;
 * aud contains the audience; exp > now - leeway; nbf, if present, <= now +
 * leeway; iat, if present, <= now + leeway and <= exp; sub a non-empty
 * string), so that a token that could never pass causes no fetch; then the
 * key is looked up by kid (fetching discovery and the key set on first use,
 * fetching the key set again for an unknown kid within the rate limit) and
 * the signature is verified.
 *
 * Returns -NEXSRV_OIDC_EREJECTED with err saying why the token was refused,
 * -NEXSRV_OIDC_EUNAVAILABLE with err saying what went wrong with the
 * provider (no key set could be obtained), or -ENOMEM.  *out is written
 * only on success.
 */
int nexsrv_oidc_validate(struct nexsrv_oidc *o, const char *bearer, struct nexsrv_claims *out,
			 struct nx_err *err);

/*
 * Copies the discovered endpoints to *out, fetching the discovery document
 * (and the key set) first if that has not happened yet.  Returns 0 or
 * -NEXSRV_OIDC_EUNAVAILABLE / -ENOMEM with err set.
 */
int nexsrv_oidc_endpoints(struct nexsrv_oidc *o, struct nexsrv_oidc_endpoints *out,
			  struct nx_err *err);

/* --- test hooks: for unit tests and fuzz targets only --------------------- */

/*
 * Replaces the HTTP GET: fetch is called (with o's fetch lock held, so one
 * call at a time) with the URL to get and must return 0 and a malloc()ed
 * body in *body (owned by the caller afterwards) and its length in *len, or
 * a negative errno with err set.  clock, if not NULL, replaces both the wall
 * clock (claims) and the monotonic clock (rate limits) with its seconds.
 * Set before the first use of o; NULL fetch restores libcurl.
 */
typedef int (*nexsrv_oidc_fetch_fn)(void *arg, const char *url, char **body, size_t *len,
				    struct nx_err *err);
typedef int64_t (*nexsrv_oidc_clock_fn)(void *arg);
void nexsrv_oidc_set_test_hooks(struct nexsrv_oidc *o, nexsrv_oidc_fetch_fn fetch,
				nexsrv_oidc_clock_fn clock, void *arg);

#endif /* NEXSRV_OIDC_H */
