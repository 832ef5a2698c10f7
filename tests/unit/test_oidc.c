/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for nexsrv/nexsrv_oidc: bearer tokens signed here with keys
 * made here (RSA, EC P-256, Ed25519), the provider's discovery document and
 * key set served through the test fetch hook with a test clock, so every
 * case is exact and needs no network.  One test runs libcurl against a
 * small HTTP server on the loopback to cover the real fetch path.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "lib/base64.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "nexsrv/nexsrv_oidc.h"

#define ISSUER	      "https://idp.example.com/realms/nexodus"
#define AUDIENCE      "nexodus"
#define DISCOVERY_URL ISSUER "/.well-known/openid-configuration"
#define JWKS_URL      ISSUER "/protocol/openid-connect/certs"
#define TOKEN_URL     ISSUER "/protocol/openid-connect/token"
#define DEVICE_URL    ISSUER "/protocol/openid-connect/auth/device"
#define NOW	      INT64_C(1800000000)

#define assert_err_contains(e, sub)                                              \
	do {                                                                     \
		assert_true((e).msg[0] != '\0');                                 \
		if (!strstr((e).msg, (sub)))                                     \
			fail_msg("message \"%s\" lacks \"%s\"", (e).msg, (sub)); \
	} while (0)

/* --- keys and tokens made here ----------------------------------------------- */

enum { K_RSA, K_EC, K_ED, K_RSA2, K_EC2, K_ED2, K_RSA_SMALL, N_KEYS };

struct tkey {
	EVP_PKEY *pkey;
	const char *alg;
	char kid[32];
};

static struct tkey tkeys[N_KEYS];

static char *b64u(const void *data, size_t n)
{
	size_t size = nx_base64url_encoded_len(n);
	char *s = malloc(size);

	assert_non_null(s);
	assert_true(nx_base64url_encode(data, n, s, size) >= 0);
	return s;
}

static void add_b64u(struct json_object *o, const char *key, const uint8_t *data, size_t n)
{
	char *s = b64u(data, n);

	assert_int_equal(nx_json_object_add_string(o, key, s), 0);
	free(s);
}

static void add_bn(struct json_object *o, const char *key, EVP_PKEY *pkey, const char *param,
		   int pad)
{
	BIGNUM *bn = NULL;
	uint8_t buf[1024];
	int n;

	assert_int_equal(EVP_PKEY_get_bn_param(pkey, param, &bn), 1);
	n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
	assert_true(n > 0);
	add_b64u(o, key, buf, (size_t)n);
	BN_free(bn);
}

/* The public JWK of key k, with kid, use and alg. */
static struct json_object *jwk_of(int k)
{
	struct json_object *o = json_object_new_object();
	const struct tkey *t = &tkeys[k];

	if (strcmp(t->alg, "RS256") == 0) {
		nx_json_object_add_string(o, "kty", "RSA");
		add_bn(o, "n", t->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
		add_bn(o, "e", t->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
	} else if (strcmp(t->alg, "ES256") == 0) {
		nx_json_object_add_string(o, "kty", "EC");
		nx_json_object_add_string(o, "crv", "P-256");
		add_bn(o, "x", t->pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32);
		add_bn(o, "y", t->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
	} else {
		uint8_t x[32];
		size_t len = sizeof(x);

		assert_int_equal(EVP_PKEY_get_raw_public_key(t->pkey, x, &len), 1);
		nx_json_object_add_string(o, "kty", "OKP");
		nx_json_object_add_string(o, "crv", "Ed25519");
		add_b64u(o, "x", x, len);
	}
	nx_json_object_add_string(o, "kid", t->kid);
	nx_json_object_add_string(o, "use", "sig");
	nx_json_object_add_string(o, "alg", t->alg);
	return o;
}

/* {"keys": [...]} of the given keys, then of the extra JWKs (owned). */
static char *jwks_json(const int *ks, size_t n, struct json_object **extra, size_t nextra)
{
	struct json_object *doc = json_object_new_object(), *arr = json_object_new_array();
	char *s;

	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, jwk_of(ks[i]));
	for (size_t i = 0; i < nextra; i++)
		json_object_array_add(arr, extra[i]);
	json_object_object_add(doc, "keys", arr);
	s = nx_json_to_string(doc, NX_JSON_PLAIN);
	json_object_put(doc);
	assert_non_null(s);
	return s;
}

/* Signs "b64u(header).b64u(payload)" with key k, whatever the header says. */
static char *sign_raw(int k, const char *header, const char *payload)
{
	const struct tkey *t = &tkeys[k];
	char *h = b64u(header, strlen(header)), *p = b64u(payload, strlen(payload));
	size_t silen = strlen(h) + 1 + strlen(p), slen = 0;
	char *si = malloc(silen + 1), *sig_b64, *tok;
	bool ed = strcmp(t->alg, "EdDSA") == 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t sig[1024], raw[64];

	snprintf(si, silen + 1, "%s.%s", h, p);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, ed ? NULL : EVP_sha256(), NULL, t->pkey), 1);
	slen = sizeof(sig);
	assert_int_equal(EVP_DigestSign(ctx, sig, &slen, (const uint8_t *)si, silen), 1);
	EVP_MD_CTX_free(ctx);
	if (strcmp(t->alg, "ES256") == 0) {
		/* DER to the JWS form: r and s, 32 bytes each */
		const uint8_t *der = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &der, (long)slen);
		const BIGNUM *r, *s;

		assert_non_null(es);
		ECDSA_SIG_get0(es, &r, &s);
		BN_bn2binpad(r, raw, 32);
		BN_bn2binpad(s, raw + 32, 32);
		ECDSA_SIG_free(es);
		sig_b64 = b64u(raw, 64);
	} else {
		sig_b64 = b64u(sig, slen);
	}
	tok = malloc(silen + 2 + strlen(sig_b64));
	snprintf(tok, silen + 2 + strlen(sig_b64), "%s.%s", si, sig_b64);
	free(h);
	free(p);
	free(si);
	free(sig_b64);
	return tok;
}

static struct json_object *header_of(int k)
{
	struct json_object *h = json_object_new_object();

	nx_json_object_add_string(h, "alg", tkeys[k].alg);
	nx_json_object_add_string(h, "typ", "at+jwt");
	nx_json_object_add_string(h, "kid", tkeys[k].kid);
	return h;
}

static struct json_object *claims_base(void)
{
	struct json_object *c = json_object_new_object();

	nx_json_object_add_string(c, "iss", ISSUER);
	nx_json_object_add_string(c, "sub", "alice");
	nx_json_object_add_string(c, "aud", AUDIENCE);
	nx_json_object_add_int64(c, "exp", NOW + 300);
	nx_json_object_add_int64(c, "iat", NOW);
	nx_json_object_add_string(c, "email", "alice@example.com");
	nx_json_object_add_string(c, "preferred_username", "alice");
	nx_json_object_add_string(c, "name", "Alice");
	nx_json_object_add_string(c, "scope", "openid profile email");
	return c;
}

/* Signs header and claims (both released) with key k. */
static char *mint_obj(int k, struct json_object *hdr, struct json_object *claims)
{
	char *h = nx_json_to_string(hdr, NX_JSON_PLAIN),
	     *c = nx_json_to_string(claims, NX_JSON_PLAIN);
	char *tok = sign_raw(k, h, c);

	free(h);
	free(c);
	json_object_put(hdr);
	json_object_put(claims);
	return tok;
}

static char *mint(int k)
{
	return mint_obj(k, header_of(k), claims_base());
}

/* A token of key k with one claim set to the JSON value text (NULL deletes). */
static char *mint_claim(int k, const char *name, const char *json)
{
	struct json_object *c = claims_base();

	if (json) {
		struct json_object *v = json_tokener_parse(json);

		assert_true(v || strcmp(json, "null") == 0);
		json_object_object_add(c, name, v);
	} else {
		json_object_object_del(c, name);
	}
	return mint_obj(k, header_of(k), c);
}

/* A token of key k with one header member set (NULL deletes). */
static char *mint_header(int k, const char *name, const char *json)
{
	struct json_object *h = header_of(k);

	if (json)
		json_object_object_add(h, name, json_tokener_parse(json));
	else
		json_object_object_del(h, name);
	return mint_obj(k, h, claims_base());
}

static void gen_keys(void)
{
	static const struct {
		const char *type;
		const char *alg;
		size_t bits;
	} spec[N_KEYS] = {
		[K_RSA] = { "RSA", "RS256", 2048 },	  [K_EC] = { "EC", "ES256", 0 },
		[K_ED] = { "ED25519", "EdDSA", 0 },	  [K_RSA2] = { "RSA", "RS256", 2048 },
		[K_EC2] = { "EC", "ES256", 0 },		  [K_ED2] = { "ED25519", "EdDSA", 0 },
		[K_RSA_SMALL] = { "RSA", "RS256", 1024 },
	};

	for (int i = 0; i < N_KEYS; i++) {
		if (strcmp(spec[i].type, "RSA") == 0)
			tkeys[i].pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", spec[i].bits);
		else if (strcmp(spec[i].type, "EC") == 0)
			tkeys[i].pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		else
			tkeys[i].pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		assert_non_null(tkeys[i].pkey);
		tkeys[i].alg = spec[i].alg;
		snprintf(tkeys[i].kid, sizeof(tkeys[i].kid), "key-%d-%s", i, spec[i].alg);
	}
}

static int group_setup(void **state)
{
	(void)state;
	gen_keys();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < N_KEYS; i++)
		EVP_PKEY_free(tkeys[i].pkey);
	return 0;
}

/* --- the provider, as the fetch hook ------------------------------------------ */

struct fx {
	pthread_mutex_t lock;
	char *jwks;	 /* served at JWKS_URL */
	char *discovery; /* served at DISCOVERY_URL */
	int jwks_fetches;
	int discovery_fetches;
	bool fail;
	int64_t now; /* atomic */
	struct nexsrv_oidc *o;
};

static char *default_discovery(void)
{
	return strdup("{\"issuer\":\"" ISSUER "\",\"jwks_uri\":\"" JWKS_URL
		      "\",\"token_endpoint\":\"" TOKEN_URL
		      "\",\"device_authorization_endpoint\":\"" DEVICE_URL
		      "\",\"id_token_signing_alg_values_supported\":[\"RS256\"]}");
}

static int fx_fetch(void *arg, const char *url, char **body, size_t *len, struct nx_err *err)
{
	struct fx *f = arg;
	const char *src = NULL;
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	if (strcmp(url, DISCOVERY_URL) == 0) {
		f->discovery_fetches++;
		src = f->discovery;
	} else if (strcmp(url, JWKS_URL) == 0) {
		f->jwks_fetches++;
		src = f->jwks;
	}
	if (f->fail || !src) {
		rc = nx_err_set(err, EIO, "GET %s: connection refused (test)", url);
	} else {
		*body = strdup(src);
		*len = strlen(src);
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static int64_t fx_clock(void *arg)
{
	struct fx *f = arg;

	return __atomic_load_n(&f->now, __ATOMIC_SEQ_CST);
}

static void fx_advance(struct fx *f, int64_t s)
{
	__atomic_add_fetch(&f->now, s, __ATOMIC_SEQ_CST);
}

static void fx_set_jwks(struct fx *f, char *jwks)
{
	pthread_mutex_lock(&f->lock);
	free(f->jwks);
	f->jwks = jwks;
	pthread_mutex_unlock(&f->lock);
}

static void fx_set_discovery(struct fx *f, const char *doc)
{
	pthread_mutex_lock(&f->lock);
	free(f->discovery);
	f->discovery = strdup(doc);
	pthread_mutex_unlock(&f->lock);
}

static struct fx *fx_new_cfg(const struct nexsrv_oidc_config *cfg)
{
	static const int std[] = { K_RSA, K_EC, K_ED };
	struct fx *f = calloc(1, sizeof(*f));
	struct nx_err err = { "" };

	assert_non_null(f);
	pthread_mutex_init(&f->lock, NULL);
	f->now = NOW;
	f->discovery = default_discovery();
	f->jwks = jwks_json(std, 3, NULL, 0);
	f->o = nexsrv_oidc_new(cfg, &err);
	if (!f->o)
		fail_msg("nexsrv_oidc_new: %s", err.msg);
	nexsrv_oidc_set_test_hooks(f->o, fx_fetch, fx_clock, f);
	return f;
}

static void base_cfg(struct nexsrv_oidc_config *cfg)
{
	nexsrv_oidc_config_init(cfg);
	cfg->issuer = ISSUER;
	cfg->audience = AUDIENCE;
}

static struct fx *fx_new(void)
{
	struct nexsrv_oidc_config cfg;

	base_cfg(&cfg);
	return fx_new_cfg(&cfg);
}

static void fx_free(struct fx *f)
{
	nexsrv_oidc_free(f->o);
	free(f->jwks);
	free(f->discovery);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static int setup(void **state)
{
	*state = fx_new();
	return 0;
}

static int teardown(void **state)
{
	fx_free(*state);
	return 0;
}

static int fetches(struct fx *f)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->jwks_fetches;
	pthread_mutex_unlock(&f->lock);
	return n;
}

static void expect_ok_claims(struct fx *f, char *tok, struct nexsrv_claims *c)
{
	struct nx_err err = { "" };
	int rc = nexsrv_oidc_validate(f->o, tok, c, &err);

	if (rc != 0)
		fail_msg("token rejected (%d): %s", rc, err.msg);
	free(tok);
}

/* Validates tok (freed) and expects success. */
static void expect_ok(struct fx *f, char *tok)
{
	struct nexsrv_claims c;

	expect_ok_claims(f, tok, &c);
}

/* Validates tok (freed) and expects code with a message containing part. */
static void expect_code(struct fx *f, char *tok, int code, const char *part)
{
	struct nexsrv_claims c;
	struct nx_err err = { "" };
	int rc;

	memset(&c, 0x5a, sizeof(c));
	rc = nexsrv_oidc_validate(f->o, tok, &c, &err);
	if (rc != code)
		fail_msg("expected %d, got %d (%s) for a token meant to fail with \"%s\"", code, rc,
			 err.msg, part);
	assert_err_contains(err, part);
	assert_int_equal(c.sub[0], 0x5a); /* untouched */
	free(tok);
}

static void expect_reject(struct fx *f, char *tok, const char *part)
{
	expect_code(f, tok, -NEXSRV_OIDC_EREJECTED, part);
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

/* --- tests ------------------------------------------------------------------- */

static void test_valid_all_algs(void **state)
{
	struct fx *f = *state;
	static const int ks[] = { K_RSA, K_EC, K_ED };

	for (size_t i = 0; i < 3; i++) {
		struct nexsrv_claims c;

		expect_ok_claims(f, mint(ks[i]), &c);
		assert_string_equal(c.sub, "alice");
		assert_string_equal(c.email, "alice@example.com");
		assert_string_equal(c.preferred_username, "alice");
		assert_string_equal(c.name, "Alice");
		assert_int_equal(c.expires_at, NOW + 300);
		assert_int_equal(c.issued_at, NOW);
	}
	/* typ is optional and may be spelled as a media type */
	expect_ok(f, mint_header(K_RSA, "typ", NULL));
	expect_ok(f, mint_header(K_EC, "typ", "\"JWT\""));
	expect_ok(f, mint_header(K_ED, "typ", "\"application/at+jwt\""));
	/* optional claims may be missing or null */
	{
		struct nexsrv_claims c;
		struct json_object *cl = claims_base();

		json_object_object_del(cl, "email");
		json_object_object_del(cl, "iat");
		json_object_object_add(cl, "name", NULL);
		expect_ok_claims(f, mint_obj(K_RSA, header_of(K_RSA), cl), &c);
		assert_string_equal(c.email, "");
		assert_string_equal(c.name, "");
		assert_int_equal(c.issued_at, 0);
	}
	assert_int_equal(f->discovery_fetches, 1);
	assert_int_equal(fetches(f), 1);
}

/* A token of key k issued an hour ago that expires at exp (JSON number text). */
static char *mint_exp(int k, const char *exp)
{
	struct json_object *c = claims_base();

	json_object_object_add(c, "iat", json_object_new_int64(NOW - 3600));
	json_object_object_add(c, "exp", json_tokener_parse(exp));
	return mint_obj(k, header_of(k), c);
}

static void test_leeway(void **state)
{
	struct fx *f = *state;
	char buf[64];

	snprintf(buf, sizeof(buf), "%lld", (long long)(NOW - 61));
	expect_reject(f, mint_exp(K_RSA, buf), "token expired 61 s ago (leeway 60 s)");
	snprintf(buf, sizeof(buf), "%lld", (long long)(NOW - 60));
	expect_reject(f, mint_exp(K_EC, buf), "expired");
	snprintf(buf, sizeof(buf), "%lld", (long long)(NOW - 59));
	expect_ok(f, mint_exp(K_ED, buf));
	snprintf(buf, sizeof(buf), "%lld", (long long)(NOW - 30));
	expect_ok(f, mint_exp(K_RSA, buf));
	/* NumericDate may be fractional */
	snprintf(buf, sizeof(buf), "%lld.5", (long long)(NOW + 10));
	expect_ok(f, mint_exp(K_RSA, buf));

	/* the clock moves, the token does not */
	fx_advance(f, 300 + 59);
	expect_ok(f, mint(K_EC));
	fx_advance(f, 2);
	expect_reject(f, mint(K_EC), "expired");
}

static void test_nbf_iat(void **state)
{
	struct fx *f = *state;
	char buf[64];

	snprintf(buf, sizeof(buf), "%lld", (long long)(NOW + 61));
	expect_reject(f, mint_claim(K_RSA, "nbf", buf), "not valid yet");
	snprintf(buf, sizeof(buf), "%lld", (long long)(NOW + 3600));
	expect_reject(f, mint_claim(K_ED, "nbf", buf), "nbf is 3600 s ahead");
	snprintf(buf, sizeof(buf), "%lld", (long long)(NOW + 60));
	expect_ok(f, mint_claim(K_RSA, "nbf", buf));
	snprintf(buf, sizeof(buf), "%lld", (long long)(NOW - 100));
	expect_ok(f, mint_claim(K_RSA, "nbf", buf));
	expect_reject(f, mint_claim(K_RSA, "nbf", "\"soon\""), "nbf is not a number");

	snprintf(buf, sizeof(buf), "%lld", (long long)(NOW + 120));
	expect_reject(f, mint_claim(K_EC, "iat", buf), "issued 120 s in the future");
	snprintf(buf, sizeof(buf), "%lld", (long long)(NOW + 301));
	{
		struct json_object *c = claims_base();

		json_object_object_add(c, "iat", json_object_new_int64(NOW + 50));
		json_object_object_add(c, "exp", json_object_new_int64(NOW + 40));
		expect_reject(f, mint_obj(K_RSA, header_of(K_RSA), c), "iat > exp");
	}
}

static void test_claims_required(void **state)
{
	struct fx *f = *state;
	char big[400];

	expect_reject(f, mint_claim(K_RSA, "exp", NULL), "no exp claim");
	expect_reject(f, mint_claim(K_RSA, "exp", "\"1800000300\""), "exp is not a number");
	expect_reject(f, mint_claim(K_RSA, "exp", "-5"), "exp is not a valid time");
	expect_reject(f, mint_claim(K_RSA, "exp", "1e300"), "exp is not a valid time");
	expect_reject(f, mint_claim(K_RSA, "exp", "18446744073709551615"), "not a valid time");
	expect_reject(f, mint_claim(K_RSA, "sub", NULL), "no sub claim");
	expect_reject(f, mint_claim(K_RSA, "sub", "\"\""), "sub claim is empty");
	expect_reject(f, mint_claim(K_RSA, "sub", "42"), "sub claim is not a string");
	expect_reject(f, mint_claim(K_RSA, "sub", "\"al\\nice\""), "control characters");
	memset(big, 'a', sizeof(big));
	memcpy(big + sizeof(big) - 16, "@example.com\"", 14); /* includes the NUL */
	big[0] = '"';
	expect_reject(f, mint_claim(K_RSA, "email", big), "email claim is longer than 319");
	expect_reject(f, mint_claim(K_RSA, "name", "[\"Alice\"]"), "name claim is not a string");
}

static void test_issuer(void **state)
{
	struct fx *f = *state;

	expect_reject(f, mint_claim(K_RSA, "iss", "\"https://evil.example.com\""),
		      "iss \"https://evil.example.com\" is not this service's issuer");
	expect_reject(f, mint_claim(K_EC, "iss", "\"" ISSUER "/\""),
		      "is not this service's issuer");
	expect_reject(f, mint_claim(K_ED, "iss", "\"HTTPS://idp.example.com/realms/nexodus\""),
		      "issuer");
	expect_reject(f, mint_claim(K_RSA, "iss", NULL), "no iss");
	expect_reject(f, mint_claim(K_RSA, "iss", "7"), "no iss string");
	assert_int_equal(fetches(f), 0); /* claims are checked before any fetch */
}

static void test_audience(void **state)
{
	struct fx *f = *state;

	expect_reject(f, mint_claim(K_RSA, "aud", "\"other\""),
		      "aud \"other\" is not this service's audience \"nexodus\"");
	expect_ok(f, mint_claim(K_RSA, "aud", "[\"account\",\"nexodus\"]"));
	expect_ok(f, mint_claim(K_ED, "aud", "[\"nexodus\"]"));
	expect_reject(f, mint_claim(K_EC, "aud", "[\"account\",\"nexodus-x\"]"),
		      "aud does not contain");
	expect_reject(f, mint_claim(K_EC, "aud", "[]"), "aud is an empty array");
	expect_reject(f, mint_claim(K_EC, "aud", "[1,\"nexodus\"]"), "aud[0] is not a string");
	expect_reject(f, mint_claim(K_EC, "aud", "{\"nexodus\":true}"), "neither a string");
	expect_reject(f, mint_claim(K_EC, "aud", NULL), "no aud claim");
}

static void test_alg_none_and_unsupported(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = { "HS256", "RS384", "RS512",  "PS256",
					   "ES384", "ES512", "ES256K", "Ed25519" };
	char *payload, *h, *p, tok[4096];
	struct json_object *c = claims_base();

	payload = nx_json_to_string(c, NX_JSON_PLAIN);
	json_object_put(c);
	p = b64u(payload, strlen(payload));
	h = b64u("{\"alg\":\"none\",\"typ\":\"JWT\"}",
		 strlen("{\"alg\":\"none\",\"typ\":\"JWT\"}"));
	snprintf(tok, sizeof(tok), "%s.%s.", h, p);
	expect_reject(f, xstrdup(tok), "alg \"none\"");
	snprintf(tok, sizeof(tok), "%s.%s.c2lnbmF0dXJl", h, p);
	expect_reject(f, xstrdup(tok), "alg \"none\"");
	free(h);
	h = b64u("{\"alg\":\"NONE\",\"kid\":\"x\"}", strlen("{\"alg\":\"NONE\",\"kid\":\"x\"}"));
	snprintf(tok, sizeof(tok), "%s.%s.", h, p);
	expect_reject(f, xstrdup(tok), "unsigned token");
	free(h);
	free(p);
	free(payload);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char alg[32];

		snprintf(alg, sizeof(alg), "\"%s\"", bad[i]);
		expect_reject(f, mint_header(K_RSA, "alg", alg), "is not accepted");
	}
	expect_reject(f, mint_header(K_RSA, "alg", "\"rs256\""), "alg \"rs256\" is not accepted");
	expect_reject(f, mint_header(K_RSA, "alg", NULL), "header has no alg");
	expect_reject(f, mint_header(K_RSA, "alg", "256"), "header has no alg");
	/* a doubled alg: both JSON parsers take the last one */
	{
		char hdr[256];

		snprintf(hdr, sizeof(hdr), "{\"alg\":\"RS256\",\"kid\":\"%s\",\"alg\":\"HS256\"}",
			 tkeys[K_RSA].kid);
		payload = nx_json_to_string(c = claims_base(), NX_JSON_PLAIN);
		json_object_put(c);
		expect_reject(f, sign_raw(K_RSA, hdr, payload), "alg \"HS256\"");
		free(payload);
	}
	assert_int_equal(fetches(f), 0);
}

static void test_alg_key_mismatch(void **state)
{
	struct fx *f = *state;
	struct json_object *h;

	expect_ok(f, mint(K_RSA));
	/* RS256 header, kid of the EC key, signed by the EC key */
	h = header_of(K_EC);
	json_object_object_add(h, "alg", json_object_new_string("RS256"));
	expect_reject(f, mint_obj(K_EC, h, claims_base()),
		      "is an EC P-256 key, alg RS256 needs an RSA key");
	h = header_of(K_ED);
	json_object_object_add(h, "alg", json_object_new_string("ES256"));
	expect_reject(f, mint_obj(K_ED, h, claims_base()), "is an OKP Ed25519 key");
	h = header_of(K_RSA);
	json_object_object_add(h, "alg", json_object_new_string("EdDSA"));
	expect_reject(f, mint_obj(K_RSA, h, claims_base()), "is an RSA key, alg EdDSA");
	/* the classic confusion: HMAC with the RSA public key as secret */
	h = header_of(K_RSA);
	json_object_object_add(h, "alg", json_object_new_string("HS256"));
	expect_reject(f, mint_obj(K_RSA, h, claims_base()), "HS256");
	assert_int_equal(fetches(f), 1); /* a known kid never causes a fetch */
}

static void test_unknown_kid_refetch(void **state)
{
	struct fx *f = *state;
	static const int rotated[] = { K_RSA, K_EC, K_ED, K_RSA2 };

	expect_ok(f, mint(K_RSA));
	assert_int_equal(fetches(f), 1);

	/* within the rate limit: no fetch */
	expect_reject(f, mint_header(K_RSA, "kid", "\"nope\""),
		      "no key with kid \"nope\" (the key set was fetched less than 10 s ago)");
	assert_int_equal(fetches(f), 1);

	/* after it: exactly one refetch, then the verdict */
	fx_advance(f, 10);
	expect_reject(f, mint_header(K_RSA, "kid", "\"nope\""),
		      "no key with kid \"nope\" in the provider's key set");
	assert_int_equal(fetches(f), 2);
	expect_reject(f, mint_header(K_RSA, "kid", "\"nope2\""), "less than 10 s ago");
	assert_int_equal(fetches(f), 2);

	/* the provider adds a key: found after one refetch */
	fx_set_jwks(f, jwks_json(rotated, 4, NULL, 0));
	expect_reject(f, mint(K_RSA2), "less than 10 s ago");
	fx_advance(f, 11);
	expect_ok(f, mint(K_RSA2));
	assert_int_equal(fetches(f), 3);
	expect_ok(f, mint(K_RSA));
	expect_ok(f, mint(K_RSA2));
	assert_int_equal(fetches(f), 3);
	assert_int_equal(f->discovery_fetches, 1);
}

static void test_forged_kid_flood(void **state)
{
	struct fx *f = *state;
	char kid[64];

	expect_ok(f, mint(K_EC));
	fx_advance(f, 60);
	for (int i = 0; i < 2000; i++) {
		snprintf(kid, sizeof(kid), "\"forged-%d\"", i);
		expect_reject(f, mint_header(K_EC, "kid", kid), "no key with kid");
	}
	/* one refetch for the first forged kid, none for the other 1999 */
	assert_int_equal(fetches(f), 2);
	assert_int_equal(f->discovery_fetches, 1);
	expect_ok(f, mint(K_EC));
}

/* Token parts of tok as separately allocated strings. */
static void split3(const char *tok, char **h, char **p, char **s)
{
	const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');

	*h = strndup(tok, (size_t)(d1 - tok));
	*p = strndup(d1 + 1, (size_t)(d2 - d1 - 1));
	*s = strdup(d2 + 1);
}

static char *join3(const char *h, const char *p, const char *s)
{
	size_t n = strlen(h) + strlen(p) + strlen(s) + 3;
	char *t = malloc(n);

	snprintf(t, n, "%s.%s.%s", h, p, s);
	return t;
}

static void test_tampered(void **state)
{
	struct fx *f = *state;
	static const int ks[] = { K_RSA, K_EC, K_ED };

	for (size_t i = 0; i < 3; i++) {
		char *good = mint(ks[i]), *other = mint_claim(ks[i], "sub", "\"mallory\"");
		char *h1, *p1, *s1, *h2, *p2, *s2, *sig_b64;
		uint8_t sig[1024];
		int n;

		split3(good, &h1, &p1, &s1);
		split3(other, &h2, &p2, &s2);
		/* payload of one token, signature of the other */
		expect_reject(f, join3(h1, p2, s1), "bad signature");
		expect_reject(f, join3(h2, p1, s2), "bad signature");

		/* one bit of the signature flipped */
		n = nx_base64url_decode(s1, strlen(s1), sig, sizeof(sig), NULL);
		assert_true(n > 0);
		sig[n / 2] ^= 0x01;
		sig_b64 = b64u(sig, (size_t)n);
		expect_reject(f, join3(h1, p1, sig_b64), "bad signature");
		free(sig_b64);
		sig[n / 2] ^= 0x01;

		/* a signature of the wrong length */
		sig_b64 = b64u(sig, (size_t)n - 1);
		expect_reject(f, join3(h1, p1, sig_b64), "signature of");
		free(sig_b64);

		/* untouched, still fine */
		expect_ok(f, join3(h1, p1, s1));
		free(h1);
		free(p1);
		free(s1);
		free(h2);
		free(p2);
		free(s2);
		free(good);
		free(other);
	}
	/* the kid of a published key, signed by another key of the same type */
	expect_reject(f, mint_obj(K_RSA2, header_of(K_RSA), claims_base()), "bad signature");
	expect_reject(f, mint_obj(K_EC2, header_of(K_EC), claims_base()), "bad signature");
	expect_reject(f, mint_obj(K_ED2, header_of(K_ED), claims_base()), "bad signature");
}

static void test_malformed(void **state)
{
	struct fx *f = *state;
	char *good = mint(K_RSA), *h, *p, *s, *huge, *hp;
	char buf[512];
	size_t n;

	split3(good, &h, &p, &s);
	expect_reject(f, NULL, "no token");
	expect_reject(f, xstrdup(""), "empty token");
	expect_reject(f, xstrdup("abc"), "found 1");
	snprintf(buf, sizeof(buf), "%s.%s", h, p);
	expect_reject(f, xstrdup(buf), "expected 3 parts separated by '.', found 2");
	expect_reject(f, join3(h, p, "sig.extra"), "found 4");
	expect_reject(f, join3("", p, s), "empty header");
	expect_reject(f, join3(h, "", s), "empty payload");
	expect_reject(f, join3(h, p, ""), "token has no signature");
	expect_reject(f, join3("eyJ!", p, s), "header is not valid base64url");
	snprintf(buf, sizeof(buf), "%s=", h);
	expect_reject(f, join3(buf, p, s), "header is not valid base64url");
	snprintf(buf, sizeof(buf), "%s", h);
	buf[3] = '+';
	expect_reject(f, join3(buf, p, s), "header is not valid base64url");
	expect_reject(f, join3(h, p, "c2ln*"), "signature is not valid base64url");
	expect_reject(f, join3(h, "e30=", s), "payload is not valid base64url");

	hp = b64u("not json", 8);
	expect_reject(f, join3(hp, p, s), "header is not valid JSON");
	expect_reject(f, join3(h, hp, s), "payload is not valid JSON");
	free(hp);
	hp = b64u("[1,2]", 5);
	expect_reject(f, join3(hp, p, s), "header is not a JSON object");
	expect_reject(f, join3(h, hp, s), "payload is not a JSON object");
	free(hp);
	{
		static const char nul_inside[] = "{\"alg\":\"RS256\",\"kid\":\"a\0b\"}";

		hp = b64u(nul_inside, sizeof(nul_inside) - 1);
	}
	expect_reject(f, join3(hp, p, s), "header is not valid JSON");
	free(hp);

	expect_reject(f, mint_header(K_RSA, "kid", NULL), "header has no kid");
	expect_reject(f, mint_header(K_RSA, "kid", "\"\""), "kid of 0 characters");
	memset(buf, 'k', 300);
	buf[0] = '"';
	buf[299] = '"';
	buf[300] = '\0';
	expect_reject(f, mint_header(K_RSA, "kid", buf), "kid of 298 characters");
	expect_reject(f, mint_header(K_RSA, "typ", "\"JWE\""), "typ \"JWE\" is not accepted");
	expect_reject(f, mint_header(K_RSA, "typ", "\"logout+jwt\""), "typ");
	expect_reject(f, mint_header(K_RSA, "typ", "1"), "typ is not a string");
	expect_reject(f, mint_header(K_RSA, "crit", "[\"exp\"]"), "crit");

	/* over 16 KiB: refused before anything is decoded */
	n = NEXSRV_OIDC_MAX_TOKEN + 1;
	huge = malloc(n + 1);
	memset(huge, 'A', n);
	huge[n] = '\0';
	huge[100] = '.';
	huge[200] = '.';
	expect_reject(f, huge, "token longer than 16384 bytes");
	{
		char pad[NEXSRV_OIDC_MAX_TOKEN];

		memset(pad, 'x', sizeof(pad) - 1);
		pad[0] = '"';
		pad[sizeof(pad) - 2] = '"';
		pad[sizeof(pad) - 1] = '\0';
		expect_reject(f, mint_claim(K_RSA, "padding", pad), "longer than 16384");
	}
	/* exactly at the limit is parsed (and fails later for its own reasons) */
	huge = malloc(NEXSRV_OIDC_MAX_TOKEN + 1);
	memset(huge, 'A', NEXSRV_OIDC_MAX_TOKEN);
	huge[NEXSRV_OIDC_MAX_TOKEN] = '\0';
	huge[100] = '.';
	huge[200] = '.';
	expect_reject(f, huge, "header is not valid JSON");

	assert_int_equal(fetches(f), 0);
	assert_int_equal(f->discovery_fetches, 0);
	free(h);
	free(p);
	free(s);
	free(good);
}

static void test_provider_unavailable(void **state)
{
	struct fx *f = *state;

	f->fail = true;
	expect_code(f, mint(K_RSA), -NEXSRV_OIDC_EUNAVAILABLE,
		    "OIDC provider unavailable: discovery failed: GET " DISCOVERY_URL
		    ": connection refused");
	assert_int_equal(f->discovery_fetches, 1);
	/* no second attempt within the interval */
	expect_code(
		f, mint(K_RSA), -NEXSRV_OIDC_EUNAVAILABLE,
		"OIDC provider unavailable (retried at most every 10 s): discovery failed: GET");
	assert_int_equal(f->discovery_fetches, 1);
	/* bad tokens are still told apart: 401, not 503 */
	expect_reject(f, mint_claim(K_RSA, "aud", "\"x\""), "aud");

	fx_advance(f, 10);
	f->fail = false;
	fx_set_jwks(f, xstrdup("{\"keys\": "));
	expect_code(f, mint(K_RSA), -NEXSRV_OIDC_EUNAVAILABLE,
		    "key set failed: key set at " JWKS_URL " is not valid JSON");
	assert_int_equal(f->discovery_fetches, 2);
	assert_int_equal(fetches(f), 1);

	fx_advance(f, 10);
	fx_set_jwks(f, xstrdup("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2VjcmV0\"}]}"));
	expect_code(f, mint(K_RSA), -NEXSRV_OIDC_EUNAVAILABLE, "has no usable key");
	assert_int_equal(f->discovery_fetches, 2); /* discovery is kept */

	fx_advance(f, 10);
	{
		static const int std[] = { K_RSA, K_EC, K_ED };

		fx_set_jwks(f, jwks_json(std, 3, NULL, 0));
	}
	expect_ok(f, mint(K_RSA));
	assert_int_equal(fetches(f), 3);
}

static void test_discovery_checks(void **state)
{
	struct nexsrv_oidc_config cfg;
	struct fx *f;
	char *big;

	(void)state;
	base_cfg(&cfg);
	cfg.refetch_interval_s = 0; /* every request may fetch */
	f = fx_new_cfg(&cfg);

	fx_set_discovery(f,
			 "{\"issuer\":\"https://evil.example.com\",\"jwks_uri\":\"" JWKS_URL "\"}");
	expect_code(f, mint(K_RSA), -EAGAIN,
		    "names issuer \"https://evil.example.com\", expected \"" ISSUER "\"");
	fx_set_discovery(f, "{\"issuer\":\"" ISSUER "/\",\"jwks_uri\":\"" JWKS_URL "\"}");
	expect_code(f, mint(K_RSA), -EAGAIN, "names issuer");
	fx_set_discovery(f, "{\"issuer\":\"" ISSUER "\"}");
	expect_code(f, mint(K_RSA), -EAGAIN, "jwks_uri");
	fx_set_discovery(f, "{\"issuer\":\"" ISSUER
			    "\",\"jwks_uri\":\"http://idp.example.com/certs\"}");
	expect_code(f, mint(K_RSA), -EAGAIN,
		    "jwks_uri \"http://idp.example.com/certs\": expected an https:// URL");
	fx_set_discovery(f, "{\"issuer\":\"" ISSUER "\",\"jwks_uri\":\"" JWKS_URL
			    "\",\"token_endpoint\":\"file:///etc/passwd\"}");
	expect_code(f, mint(K_RSA), -EAGAIN, "token_endpoint");
	fx_set_discovery(f, "[]");
	expect_code(f, mint(K_RSA), -EAGAIN, "issuer");
	fx_set_discovery(f, "<html>");
	expect_code(f, mint(K_RSA), -EAGAIN, "is not valid JSON");

	/* bodies over 256 KiB are refused */
	big = malloc(NEXSRV_OIDC_MAX_BODY + 2);
	memset(big, ' ', NEXSRV_OIDC_MAX_BODY + 1);
	big[0] = '{';
	big[NEXSRV_OIDC_MAX_BODY] = '}';
	big[NEXSRV_OIDC_MAX_BODY + 1] = '\0';
	fx_set_discovery(f, big);
	free(big);
	expect_code(f, mint(K_RSA), -EAGAIN, "larger than 262144 bytes");

	/* a minimal document works; device flow absent */
	fx_set_discovery(f, "{\"issuer\":\"" ISSUER "\",\"jwks_uri\":\"" JWKS_URL "\"}");
	expect_ok(f, mint(K_RSA));
	{
		struct nexsrv_oidc_endpoints ep;
		struct nx_err err = { "" };

		assert_int_equal(nexsrv_oidc_endpoints(f->o, &ep, &err), 0);
		assert_string_equal(ep.jwks_uri, JWKS_URL);
		assert_string_equal(ep.token_endpoint, "");
		assert_string_equal(ep.device_authorization_endpoint, "");
	}
	fx_free(f);
}

/* Collects debug lines (the reasons keys are ignored). */
static void capture_sink(int level, const char *msg, void *arg)
{
	struct nx_sbuf *b = arg;

	if (level == NX_LOG_DEBUG)
		nx_sbuf_printf(b, "%s\n", msg);
}

static void test_jwks_filtering(void **state)
{
	struct nexsrv_oidc_config cfg;
	struct json_object *extra[6];
	struct fx *f;
	static const int good[] = { K_RSA };
	static const char *const reasons[] = {
		"\"use\" is \"enc\", not \"sig\"",
		"alg \"ES256\" not supported for an OKP Ed25519 key",
		"RSA modulus of 1024 bits, expected 2048 to 8192",
		"key type \"EC\" curve P-384 not supported",
		"RSA exponent 1 is not an odd number >= 3",
		"\"x\" has 3 bytes, expected 32",
	};
	struct nx_sbuf log;
	char *big;

	(void)state;
	base_cfg(&cfg);
	cfg.refetch_interval_s = 0;
	f = fx_new_cfg(&cfg);
	nx_sbuf_init(&log, NULL, 0);
	nx_log_set_sink(capture_sink, &log);
	assert_int_equal(nx_debug_set("auth", true, NULL), 0);

	extra[0] = jwk_of(K_EC);
	json_object_object_add(extra[0], "use", json_object_new_string("enc"));
	extra[1] = jwk_of(K_ED);
	json_object_object_add(extra[1], "alg", json_object_new_string("ES256"));
	extra[2] = jwk_of(K_RSA_SMALL);
	extra[3] = jwk_of(K_EC2);
	json_object_object_add(extra[3], "crv", json_object_new_string("P-384"));
	extra[4] = jwk_of(K_RSA2);
	json_object_object_add(extra[4], "e", json_object_new_string("AQ")); /* e = 1 */
	extra[5] = jwk_of(K_ED2);
	json_object_object_add(extra[5], "x", json_object_new_string("AAAA"));
	fx_set_jwks(f, jwks_json(good, 1, extra, 6));

	expect_ok(f, mint(K_RSA));
	nx_debug_set("auth", false, NULL);
	nx_log_set_sink(NULL, NULL);
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (!strstr(nx_sbuf_str(&log), reasons[i]))
			fail_msg("no \"%s\" in the debug log:\n%s", reasons[i], nx_sbuf_str(&log));
	assert_non_null(strstr(nx_sbuf_str(&log), "1 of 7 keys usable"));
	nx_sbuf_fini(&log);
	expect_reject(f, mint(K_EC), "no key with kid");
	expect_reject(f, mint(K_ED), "no key with kid");
	expect_reject(f, mint(K_RSA_SMALL), "no key with kid");
	expect_reject(f, mint(K_EC2), "no key with kid");
	expect_reject(f, mint(K_RSA2), "no key with kid");
	expect_reject(f, mint(K_ED2), "no key with kid");

	/* a key set of more than 64 keys is not one */
	{
		int many[65];

		for (int i = 0; i < 65; i++)
			many[i] = K_EC;
		fx_set_jwks(f, jwks_json(many, 65, NULL, 0));
	}
	expect_code(f, mint(K_EC), -EAGAIN, "more than 64");
	/* nor is one over the size limit */
	big = malloc(NEXSRV_OIDC_MAX_BODY + 100);
	memset(big, ' ', NEXSRV_OIDC_MAX_BODY + 99);
	memcpy(big, "{\"keys\":[]}", 11);
	big[NEXSRV_OIDC_MAX_BODY + 99] = '\0';
	fx_set_jwks(f, big);
	expect_code(f, mint(K_EC), -EAGAIN, "larger than");
	/* the old keys are kept through failed refreshes */
	expect_ok(f, mint(K_RSA));
	fx_free(f);
}

static void test_stale_refresh(void **state)
{
	struct nexsrv_oidc_config cfg;
	struct fx *f;

	(void)state;
	base_cfg(&cfg);
	cfg.jwks_max_age_s = 100;
	f = fx_new_cfg(&cfg);

	expect_ok(f, mint(K_ED));
	fx_advance(f, 99);
	expect_ok(f, mint(K_ED));
	assert_int_equal(fetches(f), 1);
	fx_advance(f, 1);
	expect_ok(f, mint(K_ED));
	assert_int_equal(fetches(f), 2);

	/* a failing refresh leaves the old keys working */
	f->fail = true;
	fx_advance(f, 100);
	expect_ok(f, mint(K_ED));
	assert_int_equal(fetches(f), 3);
	expect_ok(f, mint(K_RSA));
	assert_int_equal(fetches(f), 3); /* retried only after refetch_interval_s */
	fx_advance(f, 10);
	expect_ok(f, mint(K_EC));
	assert_int_equal(fetches(f), 4);
	assert_int_equal(f->discovery_fetches, 1);
	fx_free(f);
}

static void test_endpoints(void **state)
{
	struct fx *f = *state;
	struct nexsrv_oidc_endpoints ep;
	struct nx_err err = { "" };

	assert_int_equal(nexsrv_oidc_endpoints(f->o, &ep, &err), 0);
	assert_string_equal(ep.issuer, ISSUER);
	assert_string_equal(ep.jwks_uri, JWKS_URL);
	assert_string_equal(ep.token_endpoint, TOKEN_URL);
	assert_string_equal(ep.device_authorization_endpoint, DEVICE_URL);
	assert_int_equal(nexsrv_oidc_endpoints(f->o, &ep, &err), 0);
	expect_ok(f, mint(K_RSA));
	assert_int_equal(f->discovery_fetches, 1);
	assert_int_equal(fetches(f), 1);
}

static void test_endpoints_unavailable(void **state)
{
	struct fx *f = *state;
	struct nexsrv_oidc_endpoints ep;
	struct nx_err err = { "" };

	f->fail = true;
	assert_int_equal(nexsrv_oidc_endpoints(f->o, &ep, &err), -NEXSRV_OIDC_EUNAVAILABLE);
	assert_err_contains(err, "OIDC provider unavailable");
}

static int64_t fixed_clock(void *arg)
{
	(void)arg;
	return NOW;
}

static int record_url(void *arg, const char *url, char **body, size_t *len, struct nx_err *err)
{
	nx_strlcpy(arg, url, 256);
	return nx_err_set(err, EIO, "not served");
}

static void test_config(void **state)
{
	struct nexsrv_oidc_config cfg;
	struct nexsrv_oidc *o;
	struct nexsrv_claims c;
	struct nx_err err = { "" };
	char url[256] = "";
	static const struct {
		const char *issuer, *audience;
		unsigned leeway, timeout;
		const char *msg;
	} bad[] = {
		{ NULL, "a", 60, 1000, "issuer is required" },
		{ "", "a", 60, 1000, "issuer is required" },
		{ "ftp://idp.example.com", "a", 60, 1000, "expected an http:// or https:// URL" },
		{ "https://", "a", 60, 1000, "no host" },
		{ "https://idp.example.com/a b", "a", 60, 1000, "spaces or control characters" },
		{ "idp.example.com", "a", 60, 1000, "expected an http" },
		{ "https://idp.example.com", NULL, 60, 1000, "audience is required" },
		{ "https://idp.example.com", "", 60, 1000, "audience is required" },
		{ "https://idp.example.com", "a", 3601, 1000, "leeway of 3601 s exceeds 3600 s" },
		{ "https://idp.example.com", "a", 60, 0, "timeout of 0" },
	};

	(void)state;
	nexsrv_oidc_config_init(&cfg);
	assert_int_equal(cfg.leeway_s, 60);
	assert_false(cfg.insecure_skip_tls_verify);
	assert_int_equal(cfg.refetch_interval_s, 10);
	assert_true(cfg.fetch_timeout_ms > 0);
	assert_null(nexsrv_oidc_new(NULL, &err));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		nexsrv_oidc_config_init(&cfg);
		cfg.issuer = bad[i].issuer;
		cfg.audience = bad[i].audience;
		cfg.leeway_s = bad[i].leeway;
		cfg.fetch_timeout_ms = bad[i].timeout;
		err.msg[0] = '\0';
		errno = 0;
		assert_null(nexsrv_oidc_new(&cfg, &err));
		assert_int_equal(errno, EINVAL);
		assert_err_contains(err, bad[i].msg);
	}

	/* a terminating '/' is dropped before the well-known path */
	nexsrv_oidc_config_init(&cfg);
	cfg.issuer = "https://idp.example.com/";
	cfg.audience = "a";
	o = nexsrv_oidc_new(&cfg, &err);
	assert_non_null(o);
	nexsrv_oidc_set_test_hooks(o, record_url, fixed_clock, url);
	{
		struct json_object *cl = claims_base();
		char *tok;

		json_object_object_add(cl, "iss",
				       json_object_new_string("https://idp.example.com/"));
		json_object_object_add(cl, "aud", json_object_new_string("a"));
		tok = mint_obj(K_RSA, header_of(K_RSA), cl);
		assert_int_equal(nexsrv_oidc_validate(o, tok, &c, &err), -EAGAIN);
		free(tok);
	}
	assert_string_equal(url, "https://idp.example.com/.well-known/openid-configuration");
	nexsrv_oidc_free(o);
	nexsrv_oidc_free(NULL);
}

/* --- 8 threads validating while the provider rotates its keys ---------------- */

#define CONC_THREADS 8
#define CONC_ITERS   300
#define POOL	     6

struct conc {
	struct fx *f;
	char *tokens[POOL]; /* valid, one per key of the pool */
	char *forged[POOL]; /* kid of pool[i], signed by its sibling */
	unsigned seq;	    /* seqlock over the published key set: odd while it changes */
	unsigned validations;
	unsigned ok;
	unsigned unexpected;
	char first_error[NX_ERR_MAX + 64];
	pthread_mutex_t lock;
};

static const int pool[POOL] = { K_RSA, K_EC, K_ED, K_RSA2, K_EC2, K_ED2 };

static void conc_unexpected(struct conc *cc, const char *what, const char *msg)
{
	pthread_mutex_lock(&cc->lock);
	if (cc->unexpected++ == 0)
		snprintf(cc->first_error, sizeof(cc->first_error), "%s: %s", what, msg);
	pthread_mutex_unlock(&cc->lock);
}

static void *conc_worker(void *arg)
{
	struct conc *cc = arg;

	for (int i = 0; i < CONC_ITERS; i++) {
		unsigned s1 = __atomic_load_n(&cc->seq, __ATOMIC_SEQ_CST), s2;
		/* step s publishes pool[s % POOL] and pool[(s + 1) % POOL] */
		int k = (int)((s1 / 2 + (unsigned)(i & 1)) % POOL);
		struct nexsrv_claims c;
		struct nx_err err = { "" };
		int rc;

		rc = nexsrv_oidc_validate(cc->f->o, cc->tokens[k], &c, &err);
		s2 = __atomic_load_n(&cc->seq, __ATOMIC_SEQ_CST);
		if (rc == 0)
			__atomic_add_fetch(&cc->ok, 1, __ATOMIC_SEQ_CST);
		else if (s1 == s2 && !(s1 & 1))
			conc_unexpected(cc, "valid token refused with a stable key set", err.msg);
		else if (rc != -NEXSRV_OIDC_EREJECTED)
			conc_unexpected(cc, "unexpected code", err.msg);

		rc = nexsrv_oidc_validate(cc->f->o, cc->forged[k], &c, &err);
		if (rc != -NEXSRV_OIDC_EREJECTED)
			conc_unexpected(cc, "forged token", rc == 0 ? "accepted" : err.msg);
		__atomic_add_fetch(&cc->validations, 2, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static void test_concurrent_rotation(void **state)
{
	struct nexsrv_oidc_config cfg;
	struct conc cc;
	pthread_t th[CONC_THREADS];
	char *sets[POOL];
	unsigned step = 0, last = 0;
	static const int siblings[POOL] = { K_RSA2, K_EC2, K_ED2, K_RSA, K_EC, K_ED };

	(void)state;
	memset(&cc, 0, sizeof(cc));
	pthread_mutex_init(&cc.lock, NULL);
	base_cfg(&cfg);
	cfg.refetch_interval_s = 0; /* every unknown kid may fetch: the most contention */
	cc.f = fx_new_cfg(&cfg);
	for (int i = 0; i < POOL; i++) {
		int pair[2] = { pool[i], pool[(i + 1) % POOL] };

		sets[i] = jwks_json(pair, 2, NULL, 0);
		cc.tokens[i] = mint(pool[i]);
		cc.forged[i] = mint_obj(siblings[i], header_of(pool[i]), claims_base());
	}
	fx_set_jwks(cc.f, xstrdup(sets[0]));

	for (int i = 0; i < CONC_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, conc_worker, &cc), 0);
	/* rotate after every ~40 validations until the workers are done */
	while (__atomic_load_n(&cc.validations, __ATOMIC_SEQ_CST) < CONC_THREADS * CONC_ITERS * 2) {
		unsigned v = __atomic_load_n(&cc.validations, __ATOMIC_SEQ_CST);

		if (v - last < 40) {
			sched_yield();
			continue;
		}
		last = v;
		step++;
		__atomic_add_fetch(&cc.seq, 1, __ATOMIC_SEQ_CST);
		fx_set_jwks(cc.f, xstrdup(sets[step % POOL]));
		__atomic_add_fetch(&cc.seq, 1, __ATOMIC_SEQ_CST);
	}
	for (int i = 0; i < CONC_THREADS; i++)
		pthread_join(th[i], NULL);

	if (cc.unexpected)
		fail_msg("%u unexpected results, first: %s", cc.unexpected, cc.first_error);
	assert_true(step > 10);
	assert_true(cc.ok > CONC_THREADS * CONC_ITERS / 2);
	print_message("# %u rotations, %u of %d valid tokens accepted, %d key set fetches\n", step,
		      cc.ok, CONC_THREADS * CONC_ITERS, fetches(cc.f));

	for (int i = 0; i < POOL; i++) {
		free(sets[i]);
		free(cc.tokens[i]);
		free(cc.forged[i]);
	}
	fx_free(cc.f);
	pthread_mutex_destroy(&cc.lock);
}

/* --- the real fetch path: libcurl against a loopback HTTP server ------------- */

struct httpd {
	int fd;
	int port;
	pthread_t th;
	char issuer[64];
	char *discovery;
	char *jwks;
	int requests;
};

static void send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void *httpd_main(void *arg)
{
	struct httpd *h = arg;
	char req[4096], head[256], path[256];
	static char big[NEXSRV_OIDC_MAX_BODY + 4096];

	memset(big, ' ', sizeof(big) - 1);
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	for (;;) {
		int c = accept(h->fd, NULL, NULL);
		size_t n = 0;
		const char *body = NULL;
		int status = 200;

		if (c < 0)
			break;
		h->requests++;
		while (n < sizeof(req) - 1) {
			ssize_t r = recv(c, req + n, sizeof(req) - 1 - n, 0);

			if (r <= 0)
				break;
			n += (size_t)r;
			req[n] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		req[n] = '\0';
		if (sscanf(req, "GET %255s ", path) != 1)
			path[0] = '\0';
		if (strcmp(path, "/.well-known/openid-configuration") == 0)
			body = h->discovery;
		else if (strcmp(path, "/jwks") == 0)
			body = h->jwks;
		else if (strcmp(path, "/big/.well-known/openid-configuration") == 0)
			body = big;
		else {
			status = 404;
			body = "{\"error\":\"not found\"}";
		}
		snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, strlen(body));
		send_all(c, head, strlen(head));
		send_all(c, body, strlen(body));
		close(c);
	}
	return NULL;
}

static void test_curl_fetch(void **state)
{
	static const int std[] = { K_RSA, K_EC, K_ED };
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	struct nexsrv_oidc_config cfg;
	struct nexsrv_oidc *o;
	struct nexsrv_oidc_endpoints ep;
	struct nexsrv_claims c;
	struct nx_err err = { "" };
	struct httpd h;
	char doc[512], big_issuer[96], missing_issuer[96], *tok;
	struct json_object *cl;

	(void)state;
	memset(&h, 0, sizeof(h));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	h.fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(h.fd >= 0);
	assert_int_equal(bind(h.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(h.fd, 16), 0);
	assert_int_equal(getsockname(h.fd, (struct sockaddr *)&sa, &salen), 0);
	h.port = ntohs(sa.sin_port);
	snprintf(h.issuer, sizeof(h.issuer), "http://127.0.0.1:%d", h.port);
	snprintf(doc, sizeof(doc),
		 "{\"issuer\":\"%s\",\"jwks_uri\":\"%s/jwks\",\"token_endpoint\":\"%s/token\","
		 "\"device_authorization_endpoint\":\"%s/device\"}",
		 h.issuer, h.issuer, h.issuer, h.issuer);
	h.discovery = doc;
	h.jwks = jwks_json(std, 3, NULL, 0);
	assert_int_equal(pthread_create(&h.th, NULL, httpd_main, &h), 0);

	base_cfg(&cfg);
	cfg.issuer = h.issuer;
	cfg.fetch_timeout_ms = 5000;
	o = nexsrv_oidc_new(&cfg, &err);
	assert_non_null(o);
	cl = claims_base();
	json_object_object_add(cl, "iss", json_object_new_string(h.issuer));
	json_object_object_add(cl, "exp", json_object_new_int64((int64_t)time(NULL) + 300));
	json_object_object_add(cl, "iat", json_object_new_int64((int64_t)time(NULL)));
	tok = mint_obj(K_ED, header_of(K_ED), cl);
	if (nexsrv_oidc_validate(o, tok, &c, &err) != 0)
		fail_msg("over HTTP: %s", err.msg);
	free(tok);
	assert_string_equal(c.sub, "alice");
	assert_int_equal(nexsrv_oidc_endpoints(o, &ep, &err), 0);
	assert_true(nx_str_endswith(ep.device_authorization_endpoint, "/device"));
	assert_int_equal(h.requests, 2);
	nexsrv_oidc_free(o);

	/* an oversized body and a 404 */
	snprintf(big_issuer, sizeof(big_issuer), "%s/big", h.issuer);
	cfg.issuer = big_issuer;
	o = nexsrv_oidc_new(&cfg, &err);
	assert_int_equal(nexsrv_oidc_endpoints(o, &ep, &err), -EAGAIN);
	assert_err_contains(err, "larger than 262144 bytes");
	nexsrv_oidc_free(o);
	snprintf(missing_issuer, sizeof(missing_issuer), "%s/missing", h.issuer);
	cfg.issuer = missing_issuer;
	o = nexsrv_oidc_new(&cfg, &err);
	assert_int_equal(nexsrv_oidc_endpoints(o, &ep, &err), -EAGAIN);
	assert_err_contains(err, "HTTP status 404");
	nexsrv_oidc_free(o);

	shutdown(h.fd, SHUT_RDWR);
	pthread_join(h.th, NULL);
	close(h.fd);

	/* nobody listening any more */
	cfg.issuer = h.issuer;
	o = nexsrv_oidc_new(&cfg, &err);
	assert_int_equal(nexsrv_oidc_endpoints(o, &ep, &err), -EAGAIN);
	assert_err_contains(err,
			    "OIDC provider unavailable: discovery failed: GET http://127.0.0.1:");
	nexsrv_oidc_free(o);
	free(h.jwks);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_valid_all_algs),
		T(test_leeway),
		T(test_nbf_iat),
		T(test_claims_required),
		T(test_issuer),
		T(test_audience),
		T(test_alg_none_and_unsupported),
		T(test_alg_key_mismatch),
		T(test_unknown_kid_refetch),
		T(test_forged_kid_flood),
		T(test_tampered),
		T(test_malformed),
		T(test_provider_unavailable),
		cmocka_unit_test(test_discovery_checks),
		cmocka_unit_test(test_jwks_filtering),
		cmocka_unit_test(test_stale_refresh),
		T(test_endpoints),
		T(test_endpoints_unavailable),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_concurrent_rotation),
		cmocka_unit_test(test_curl_fetch),
	};
#undef T

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
