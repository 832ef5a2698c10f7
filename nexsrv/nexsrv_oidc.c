/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * OIDC access-token validation: the provider's discovery document and key
 * set, fetched lazily and cached, and the checks a bearer token must pass
 * before a request runs as the person it names.  See nexsrv_oidc.h for the
 * rules; this file keeps the network out of the hot path and makes sure a
 * stream of bad tokens costs the provider nothing.
 *
 * Locking: `lock` guards the cached state and is never held across a fetch
 * or a signature check; `fetch_lock` makes fetches one at a time and is
 * taken before `lock`.  A key set is reference-counted (under `lock`) so
 * that a validation in progress keeps using the set it started with while
 * another thread installs a new one.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjose/cjose.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#include "lib/base64.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "nexsrv/nexsrv_oidc.h"

NX_DEBUG_DECLARE(nexsrv_auth);

#define DISCOVERY_PATH "/.well-known/openid-configuration"

/* Keys taken from one key set; more is not a key set but an attack. */
#define MAX_JWKS_KEYS	  64
/* Entries of an "aud" array looked at. */
#define MAX_AUD_ENTRIES	  64
/* Nesting accepted in a JWS header and in a claims set. */
#define JWS_HEADER_DEPTH  4
#define JWS_PAYLOAD_DEPTH 16
/* Times beyond the year 9999 are not times. */
#define MAX_NUMERIC_DATE  INT64_C(253402300799)
/* RSA moduli accepted, in bits. */
#define RSA_MIN_BITS	  2048
#define RSA_MAX_BITS	  8192
/* Room for untrusted strings quoted in messages. */
#define QUOTE_LEN	  64

#define REJECT(err, ...)      nx_err_set((err), NEXSRV_OIDC_EREJECTED, __VA_ARGS__)
#define UNAVAILABLE(err, ...) nx_err_set((err), NEXSRV_OIDC_EUNAVAILABLE, __VA_ARGS__)

enum key_kind {
	KEY_RSA,
	KEY_EC_P256,
	KEY_ED25519,
};

static const char *const key_kind_names[] = {
	[KEY_RSA] = "an RSA key",
	[KEY_EC_P256] = "an EC P-256 key",
	[KEY_ED25519] = "an OKP Ed25519 key",
};

/* The signature algorithms accepted, and what each needs of its key. */
static const struct jws_alg {
	const char *name;
	enum key_kind kind;
	size_t sig_len; /* bytes of a signature; 0: the RSA modulus length */
} jws_algs[] = {
	{ "RS256", KEY_RSA, 0 },
	{ "ES256", KEY_EC_P256, 64 },
	{ "EdDSA", KEY_ED25519, 64 },
};

#define N_ALGS (sizeof(jws_algs) / sizeof(jws_algs[0]))

/* Media types a JWS header's "typ" may name (RFC 7519 §5.1, RFC 9068 §2.1). */
static const char *const accepted_typs[] = {
	"JWT",
	"at+jwt",
	"application/jwt",
	"application/at+jwt",
};

struct oidc_key {
	char kid[NEXSRV_OIDC_MAX_KID + 1];
	enum key_kind kind;
	size_t sig_len;	  /* bytes of a signature made with this key */
	cjose_jwk_t *jwk; /* RSA and EC keys */
	EVP_PKEY *pkey;	  /* Ed25519 keys */
};

struct oidc_keyset {
	unsigned refs; /* under nexsrv_oidc.lock */
	size_t n;
	struct oidc_key keys[];
};

struct nexsrv_oidc {
	/* Configuration, fixed after nexsrv_oidc_new(). */
	char *issuer;
	char *audience;
	char *ca_file;
	char *ca_path;
	char *discovery_url;
	bool issuer_https;
	bool insecure;
	unsigned leeway_s;
	unsigned fetch_timeout_ms;
	unsigned refetch_interval_s;
	unsigned jwks_max_age_s;

	/* Test hooks, set before first use. */
	nexsrv_oidc_fetch_fn fetch_hook;
	nexsrv_oidc_clock_fn clock_hook;
	void *hook_arg;

	pthread_mutex_t fetch_lock; /* one fetch at a time; taken before lock */
	pthread_mutex_t lock;	    /* everything below */
	bool discovered;
	struct nexsrv_oidc_endpoints ep;
	struct oidc_keyset *keys;    /* one reference held here */
	uint64_t generation;	     /* bumped whenever keys is replaced */
	bool attempted;		     /* a fetch has been tried */
	int64_t last_attempt;	     /* monotonic seconds of the last fetch attempt */
	int64_t keys_at;	     /* monotonic seconds keys were installed */
	char last_error[NX_ERR_MAX]; /* why the last fetch failed, "" if it did not */
};

/* A bearer token taken apart. */
struct jws_parts {
	const char *text;   /* the whole token */
	size_t len;	    /* its length */
	size_t signing_len; /* length of "header.payload" */
	const struct jws_alg *alg;
	char kid[NEXSRV_OIDC_MAX_KID + 1];
	struct json_object *header;
	struct json_object *claims;
	uint8_t *sig;
	size_t sig_len;
};

/* --- small helpers ---------------------------------------------------------- */

static int64_t mono_now(const struct nexsrv_oidc *o)
{
	struct timespec ts;

	if (o->clock_hook)
		return o->clock_hook(o->hook_arg);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int64_t wall_now(const struct nexsrv_oidc *o)
{
	if (o->clock_hook)
		return o->clock_hook(o->hook_arg);
	return (int64_t)time(NULL);
}

/* For messages: s made printable and cut to QUOTE_LEN. */
static const char *quote(char buf[QUOTE_LEN], const char *s)
{
	return nx_str_printable(buf, QUOTE_LEN, s);
}

static bool has_control_chars(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/*
 * An absolute http(s) URL with a host, no whitespace or control characters,
 * at most NEXSRV_OIDC_MAX_URL long; https when need_https.
 */
static int check_url(const char *what, const char *url, bool need_https, struct nx_err *err)
{
	char q[QUOTE_LEN];
	const char *host;

	if (strlen(url) > NEXSRV_OIDC_MAX_URL)
		return nx_err_set(err, EINVAL, "%s is longer than %d characters", what,
				  NEXSRV_OIDC_MAX_URL);
	for (const char *c = url; *c; c++)
		if ((unsigned char)*c <= 0x20 || *c == 0x7f)
			return nx_err_set(err, EINVAL,
					  "%s \"%s\": spaces or control characters in a URL", what,
					  quote(q, url));
	if (nx_str_startswith(url, "https://"))
		host = url + strlen("https://");
	else if (nx_str_startswith(url, "http://") && !need_https)
		host = url + strlen("http://");
	else
		return nx_err_set(err, EINVAL, "%s \"%s\": expected an %s URL", what, quote(q, url),
				  need_https ? "https://" : "http:// or https://");
	if (*host == '\0' || *host == '/' || *host == '?' || *host == '#')
		return nx_err_set(err, EINVAL, "%s \"%s\": no host in the URL", what,
				  quote(q, url));
	return 0;
}

/* Decodes n characters of strict base64url at s into a new buffer. */
static int b64url_decode_alloc(const char *what, const char *s, size_t n, uint8_t **out,
			       size_t *outlen, struct nx_err *err)
{
	struct nx_err e;
	size_t size = nx_base64_decoded_maxlen(n);
	uint8_t *buf;
	int rc;

	buf = malloc(size ? size : 1);
	if (!buf)
		return nx_err_set(err, ENOMEM, "out of memory");
	rc = nx_base64url_decode(s, n, buf, size, &e);
	if (rc < 0) {
		free(buf);
		return REJECT(err, "%s is not valid base64url: %s", what, e.msg);
	}
	*out = buf;
	*outlen = (size_t)rc;
	return 0;
}

/* Decodes a base64url JWK member into buf of exactly want bytes (0: any up
 * to size); returns the length or -EINVAL. */
static int jwk_member(struct json_object *jwk, const char *name, uint8_t *buf, size_t size,
		      size_t want, struct nx_err *err)
{
	struct nx_err e;
	const char *s;
	int rc;

	rc = nx_json_get_string(jwk, name, &s, &e);
	if (rc < 0)
		return nx_err_set(err, EINVAL, "\"%s\": %s", name, e.msg);
	rc = nx_base64url_decode(s, strlen(s), buf, size, &e);
	if (rc == -ENOSPC)
		return nx_err_set(err, EINVAL, "\"%s\" is too long", name);
	if (rc < 0)
		return nx_err_set(err, EINVAL, "\"%s\": %s", name, e.msg);
	if (rc == 0 || (want && (size_t)rc != want))
		return nx_err_set(err, EINVAL, "\"%s\" has %d bytes, expected %zu", name, rc, want);
	return rc;
}

/* --- key sets --------------------------------------------------------------- */

static void keyset_free(struct oidc_keyset *ks)
{
	if (!ks)
		return;
	for (size_t i = 0; i < ks->n; i++) {
		if (ks->keys[i].jwk)
			cjose_jwk_release(ks->keys[i].jwk);
		EVP_PKEY_free(ks->keys[i].pkey);
	}
	free(ks);
}

static struct oidc_keyset *keyset_ref_locked(struct oidc_keyset *ks)
{
	if (ks)
		ks->refs++;
	return ks;
}

static void keyset_put(struct nexsrv_oidc *o, struct oidc_keyset *ks)
{
	bool last;

	if (!ks)
		return;
	pthread_mutex_lock(&o->lock);
	last = --ks->refs == 0;
	pthread_mutex_unlock(&o->lock);
	if (last)
		keyset_free(ks);
}

/* A minimal public JWK with only the members given, for cjose_jwk_import:
 * whatever else the provider put in (private parts included) is left out. */
static cjose_jwk_t *cjose_import_members(struct json_object *jwk, const char *const *members,
					 struct nx_err *err)
{
	struct json_object *min = json_object_new_object();
	cjose_jwk_t *key = NULL;
	cjose_err cerr;
	char *text = NULL;
	const char *v;

	memset(&cerr, 0, sizeof(cerr));
	if (!min)
		goto nomem;
	for (; *members; members++) {
		if (nx_json_get_string(jwk, *members, &v, err) < 0) {
			json_object_put(min);
			return NULL;
		}
		if (nx_json_object_add_string(min, *members, v) < 0)
			goto nomem;
	}
	text = nx_json_to_string(min, NX_JSON_PLAIN);
	if (!text)
		goto nomem;
	key = cjose_jwk_import(text, strlen(text), &cerr);
	if (!key)
		nx_err_set(err, EINVAL, "not accepted by cjose: %s",
			   cerr.message ? cerr.message : "unknown error");
	free(text);
	json_object_put(min);
	return key;
nomem:
	json_object_put(min);
	nx_err_set(err, ENOMEM, "out of memory");
	return NULL;
}

static int import_rsa(struct json_object *jwk, struct oidc_key *key, struct nx_err *err)
{
	static const char *const members[] = { "kty", "n", "e", NULL };
	uint8_t n[RSA_MAX_BITS / 8 + 1], e[8];
	uint64_t exponent = 0;
	size_t i, bits;
	int len, rc;

	len = jwk_member(jwk, "n", n, sizeof(n), 0, err);
	if (len < 0)
		return len;
	rc = jwk_member(jwk, "e", e, sizeof(e), 0, err);
	if (rc < 0)
		return rc;
	for (i = 0; i < (size_t)rc; i++)
		exponent = exponent << 8 | e[i];
	if (exponent < 3 || !(exponent & 1))
		return nx_err_set(err, EINVAL, "RSA exponent %" PRIu64 " is not an odd number >= 3",
				  exponent);
	for (i = 0; i < (size_t)len && n[i] == 0; i++)
		;
	bits = i < (size_t)len ? 8 * ((size_t)len - i - 1) : 0;
	for (unsigned top = i < (size_t)len ? n[i] : 0; top; top >>= 1)
		bits++;
	if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS)
		return nx_err_set(err, EINVAL, "RSA modulus of %zu bits, expected %d to %d", bits,
				  RSA_MIN_BITS, RSA_MAX_BITS);
	key->jwk = cjose_import_members(jwk, members, err);
	if (!key->jwk)
		return -EINVAL;
	key->sig_len = (bits + 7) / 8;
	return 0;
}

static int import_ec(struct json_object *jwk, struct oidc_key *key, struct nx_err *err)
{
	static const char *const members[] = { "kty", "crv", "x", "y", NULL };
	uint8_t coord[32];
	int rc;

	rc = jwk_member(jwk, "x", coord, sizeof(coord), sizeof(coord), err);
	if (rc < 0)
		return rc;
	rc = jwk_member(jwk, "y", coord, sizeof(coord), sizeof(coord), err);
	if (rc < 0)
		return rc;
	key->jwk = cjose_import_members(jwk, members, err);
	if (!key->jwk)
		return -EINVAL;
	key->sig_len = 64;
	return 0;
}

/* cjose 0.6 has no OKP keys: Ed25519 public keys go straight to OpenSSL. */
static int import_ed25519(struct json_object *jwk, struct oidc_key *key, struct nx_err *err)
{
	uint8_t x[32];
	int rc;

	rc = jwk_member(jwk, "x", x, sizeof(x), sizeof(x), err);
	if (rc < 0)
		return rc;
	key->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, sizeof(x));
	if (!key->pkey)
		return nx_err_set(err, EINVAL, "\"x\" is not an Ed25519 public key");
	key->sig_len = 64;
	return 0;
}

/* Fills key from one member of a key set's "keys"; -EINVAL (with the reason)
 * for a key that is not usable for RS256, ES256 or EdDSA signatures. */
static int import_key(struct json_object *jwk, struct oidc_key *key, struct nx_err *err)
{
	const char *kty, *kid, *use = NULL, *alg = NULL, *crv = NULL;
	char q[QUOTE_LEN], q2[QUOTE_LEN];
	int rc;

	if (!json_object_is_type(jwk, json_type_object))
		return nx_err_set(err, EINVAL, "not a JSON object");
	if (nx_json_get_string(jwk, "kty", &kty, err) < 0 ||
	    nx_json_get_string(jwk, "kid", &kid, err) < 0 ||
	    nx_json_get_string_opt(jwk, "use", &use, err) < 0 ||
	    nx_json_get_string_opt(jwk, "alg", &alg, err) < 0 ||
	    nx_json_get_string_opt(jwk, "crv", &crv, err) < 0)
		return -EINVAL;
	if (*kid == '\0' || strlen(kid) > NEXSRV_OIDC_MAX_KID)
		return nx_err_set(err, EINVAL, "kid of %zu characters, expected 1 to %d",
				  strlen(kid), NEXSRV_OIDC_MAX_KID);
	if (use && strcmp(use, "sig") != 0)
		return nx_err_set(err, EINVAL, "\"use\" is \"%s\", not \"sig\"", quote(q, use));

	if (strcmp(kty, "RSA") == 0)
		key->kind = KEY_RSA;
	else if (strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-256") == 0)
		key->kind = KEY_EC_P256;
	else if (strcmp(kty, "OKP") == 0 && crv && strcmp(crv, "Ed25519") == 0)
		key->kind = KEY_ED25519;
	else
		return nx_err_set(err, EINVAL, "key type \"%s\"%s%s not supported", quote(q, kty),
				  crv ? " curve " : "", crv ? quote(q2, crv) : "");
	if (alg) {
		size_t i;

		for (i = 0; i < N_ALGS; i++)
			if (jws_algs[i].kind == key->kind && strcmp(jws_algs[i].name, alg) == 0)
				break;
		if (i == N_ALGS)
			return nx_err_set(err, EINVAL, "alg \"%s\" not supported for %s",
					  quote(q, alg), key_kind_names[key->kind]);
	}
	nx_strlcpy(key->kid, kid, sizeof(key->kid));

	switch (key->kind) {
	case KEY_RSA:
		rc = import_rsa(jwk, key, err);
		break;
	case KEY_EC_P256:
		rc = import_ec(jwk, key, err);
		break;
	case KEY_ED25519:
		rc = import_ed25519(jwk, key, err);
		break;
	default:
		rc = nx_err_set(err, EINVAL, "internal error: key kind %d", (int)key->kind);
		break;
	}
	return rc;
}

/* The key called kid of the given kind: 0, -ENOENT when no key has that
 * kid, -EMEDIUMTYPE when only keys of another kind do (*other says which). */
static int find_key(const struct oidc_keyset *ks, const char *kid, enum key_kind kind,
		    const struct oidc_key **out, enum key_kind *other)
{
	int rc = -ENOENT;

	for (size_t i = 0; i < ks->n; i++) {
		if (strcmp(ks->keys[i].kid, kid) != 0)
			continue;
		if (ks->keys[i].kind == kind) {
			*out = &ks->keys[i];
			return 0;
		}
		*other = ks->keys[i].kind;
		rc = -EMEDIUMTYPE;
	}
	return rc;
}

static int parse_jwks(const char *url, const char *body, size_t len, struct oidc_keyset **out,
		      struct nx_err *err)
{
	struct json_object *doc, *keys;
	struct oidc_keyset *ks = NULL;
	struct nx_err e;
	size_t n;
	int rc;

	doc = nx_json_parse(body, len, NX_JSON_DEFAULT_DEPTH, &e);
	if (!doc)
		return nx_err_set(err, errno == ENOMEM ? ENOMEM : EINVAL,
				  "key set at %s is not valid JSON: %s", url, e.msg);
	rc = nx_json_get_array(doc, "keys", &keys, &e);
	if (rc < 0) {
		rc = nx_err_set(err, EINVAL, "key set at %s: %s", url, e.msg);
		goto out;
	}
	n = json_object_array_length(keys);
	if (n > MAX_JWKS_KEYS) {
		rc = nx_err_set(err, EINVAL, "key set at %s has %zu keys, more than %d", url, n,
				MAX_JWKS_KEYS);
		goto out;
	}
	ks = calloc(1, sizeof(*ks) + n * sizeof(ks->keys[0]));
	if (!ks) {
		rc = nx_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	ks->refs = 1;
	for (size_t i = 0; i < n; i++) {
		struct oidc_key *key = &ks->keys[ks->n];
		const struct oidc_key *dup;
		enum key_kind other;

		rc = import_key(json_object_array_get_idx(keys, i), key, &e);
		if (rc == -ENOMEM) {
			nx_err_set(err, ENOMEM, "out of memory");
			goto out;
		}
		if (rc == 0 && find_key(ks, key->kid, key->kind, &dup, &other) == 0)
			rc = nx_err_set(&e, EEXIST, "a key of the same type has the same kid");
		if (rc < 0) {
			char q[QUOTE_LEN];

			nx_debug(&dbg_nexsrv_auth,
				 "key set at %s: key %zu (kid \"%s\") ignored: %s", url, i,
				 quote(q, key->kid), e.msg);
			if (key->jwk)
				cjose_jwk_release(key->jwk);
			EVP_PKEY_free(key->pkey);
			memset(key, 0, sizeof(*key));
			continue;
		}
		ks->n++;
	}
	if (ks->n == 0) {
		rc = nx_err_set(err, EINVAL,
				"key set at %s has no usable key (RSA, EC P-256 or Ed25519 with a "
				"kid)",
				url);
		goto out;
	}
	nx_debug(&dbg_nexsrv_auth, "key set at %s: %zu of %zu keys usable", url, ks->n, n);
	*out = ks;
	ks = NULL;
	rc = 0;
out:
	keyset_free(ks);
	json_object_put(doc);
	return rc;
}

/* --- fetching --------------------------------------------------------------- */

struct body_buf {
	char *data;
	size_t len;
	size_t cap;
	bool too_big;
};

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct body_buf *b = arg;
	size_t n = size * nmemb;

	if (size != 0 && n / size != nmemb)
		return 0;
	if (n > NEXSRV_OIDC_MAX_BODY - b->len) {
		b->too_big = true;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > NEXSRV_OIDC_MAX_BODY + 1)
			cap = NEXSRV_OIDC_MAX_BODY + 1;
		p = realloc(b->data, cap);
		if (!p)
			return 0;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static int curl_get(const struct nexsrv_oidc *o, const char *url, char **body, size_t *len,
		    struct nx_err *err)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct body_buf b = { NULL, 0, 0, false };
	struct curl_slist *hdrs = NULL;
	CURLcode cc = CURLE_OK;
	long status = 0;
	CURL *c;
	int rc;

	c = curl_easy_init();
	hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (!c || !hdrs) {
		rc = nx_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
#define SETOPT(opt, val)                                      \
	do {                                                  \
		if (cc == CURLE_OK)                           \
			cc = curl_easy_setopt(c, (opt), val); \
	} while (0)
	SETOPT(CURLOPT_URL, url);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_TIMEOUT_MS, (long)o->fetch_timeout_ms);
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)o->fetch_timeout_ms);
	SETOPT(CURLOPT_ERRORBUFFER, errbuf);
	SETOPT(CURLOPT_WRITEFUNCTION, body_write);
	SETOPT(CURLOPT_WRITEDATA, &b);
	SETOPT(CURLOPT_HTTPHEADER, hdrs);
	SETOPT(CURLOPT_USERAGENT, PACKAGE_NAME "-nexsrv/" PACKAGE_VERSION);
	SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)NEXSRV_OIDC_MAX_BODY);
	SETOPT(CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L);
	if (o->ca_file)
		SETOPT(CURLOPT_CAINFO, o->ca_file);
	if (o->ca_path)
		SETOPT(CURLOPT_CAPATH, o->ca_path);
#undef SETOPT
	if (cc != CURLE_OK) {
		rc = nx_err_set(err, EINVAL, "GET %s: %s", url, curl_easy_strerror(cc));
		goto out;
	}

	cc = curl_easy_perform(c);
	if (b.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
		rc = nx_err_set(err, E2BIG, "GET %s: response larger than %d bytes", url,
				NEXSRV_OIDC_MAX_BODY);
		goto out;
	}
	if (cc != CURLE_OK) {
		rc = nx_err_set(err, EIO, "GET %s: %s", url,
				errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		rc = nx_err_set(err, EIO, "GET %s: HTTP status %ld", url, status);
		goto out;
	}
	if (b.len == 0) {
		rc = nx_err_set(err, EIO, "GET %s: empty response", url);
		goto out;
	}
	*body = b.data;
	*len = b.len;
	b.data = NULL;
	rc = 0;
out:
	free(b.data);
	curl_slist_free_all(hdrs);
	if (c)
		curl_easy_cleanup(c);
	return rc;
}

/* GET url into a new NUL-less-safe buffer of at most NEXSRV_OIDC_MAX_BODY
 * bytes, through the test hook when one is set. */
static int http_get(const struct nexsrv_oidc *o, const char *url, char **body, size_t *len,
		    struct nx_err *err)
{
	int rc;

	*body = NULL;
	*len = 0;
	if (!o->fetch_hook)
		return curl_get(o, url, body, len, err);
	rc = o->fetch_hook(o->hook_arg, url, body, len, err);
	if (rc < 0) {
		free(*body);
		*body = NULL;
		return rc;
	}
	if (!*body || *len > NEXSRV_OIDC_MAX_BODY) {
		free(*body);
		*body = NULL;
		return nx_err_set(err, E2BIG, "GET %s: no response or one larger than %d bytes",
				  url, NEXSRV_OIDC_MAX_BODY);
	}
	return 0;
}

/* Copies the optional URL member name of doc into dst ("" when absent). */
static int discovered_url(const struct nexsrv_oidc *o, struct json_object *doc, const char *name,
			  bool required, char *dst, size_t size, struct nx_err *err)
{
	const char *v = NULL;
	struct nx_err e;
	int rc;

	rc = required ? nx_json_get_string(doc, name, &v, &e)
		      : nx_json_get_string_opt(doc, name, &v, &e);
	if (rc < 0)
		return nx_err_set(err, EINVAL, "%s", e.msg);
	dst[0] = '\0';
	if (!v)
		return 0;
	rc = check_url(name, v, o->issuer_https, err);
	if (rc < 0)
		return rc;
	nx_strlcpy(dst, v, size);
	return 0;
}

static int discover(const struct nexsrv_oidc *o, struct nexsrv_oidc_endpoints *ep,
		    struct nx_err *err)
{
	struct json_object *doc = NULL;
	const char *issuer;
	char *body = NULL;
	struct nx_err e;
	char q[QUOTE_LEN];
	size_t len;
	int rc;

	rc = http_get(o, o->discovery_url, &body, &len, &e);
	if (rc < 0)
		return nx_err_set(err, -rc, "%s", e.msg);
	doc = nx_json_parse(body, len, NX_JSON_DEFAULT_DEPTH, &e);
	if (!doc) {
		rc = nx_err_set(err, EINVAL, "%s is not valid JSON: %s", o->discovery_url, e.msg);
		goto out;
	}
	rc = nx_json_get_string(doc, "issuer", &issuer, &e);
	if (rc < 0) {
		rc = nx_err_set(err, EINVAL, "%s: %s", o->discovery_url, e.msg);
		goto out;
	}
	if (strcmp(issuer, o->issuer) != 0) {
		rc = nx_err_set(err, EINVAL, "%s names issuer \"%s\", expected \"%s\"",
				o->discovery_url, quote(q, issuer), o->issuer);
		goto out;
	}
	memset(ep, 0, sizeof(*ep));
	nx_strlcpy(ep->issuer, o->issuer, sizeof(ep->issuer));
	if ((rc = discovered_url(o, doc, "jwks_uri", true, ep->jwks_uri, sizeof(ep->jwks_uri),
				 &e)) < 0 ||
	    (rc = discovered_url(o, doc, "token_endpoint", false, ep->token_endpoint,
				 sizeof(ep->token_endpoint), &e)) < 0 ||
	    (rc = discovered_url(o, doc, "device_authorization_endpoint", false,
				 ep->device_authorization_endpoint,
				 sizeof(ep->device_authorization_endpoint), &e)) < 0) {
		rc = nx_err_set(err, EINVAL, "%s: %s", o->discovery_url, e.msg);
		goto out;
	}
	rc = 0;
out:
	json_object_put(doc);
	free(body);
	return rc;
}

static int fetch_jwks(const struct nexsrv_oidc *o, const char *url, struct oidc_keyset **ks,
		      struct nx_err *err)
{
	char *body = NULL;
	size_t len;
	int rc;

	rc = http_get(o, url, &body, &len, err);
	if (rc == 0)
		rc = parse_jwks(url, body, len, ks, err);
	free(body);
	return rc;
}

/*
 * With fetch_lock held: discovery unless done, then the key set, which
 * replaces the cached one on success.  On failure the cached state stays
 * as it was and the reason is remembered for the requests that follow.
 */
static int refresh_locked(struct nexsrv_oidc *o, struct nx_err *err)
{
	struct nexsrv_oidc_endpoints *ep = NULL;
	struct oidc_keyset *ks = NULL, *old;
	struct nx_err e, reason;
	const char *stage = "discovery";
	int rc;

	pthread_mutex_lock(&o->lock);
	o->attempted = true;
	o->last_attempt = mono_now(o);
	pthread_mutex_unlock(&o->lock);

	/* Only this thread (holding fetch_lock) writes ep and discovered. */
	if (!o->discovered) {
		ep = malloc(sizeof(*ep));
		if (!ep) {
			rc = nx_err_set(&e, ENOMEM, "out of memory");
			goto fail;
		}
		rc = discover(o, ep, &e);
		if (rc < 0)
			goto fail;
		pthread_mutex_lock(&o->lock);
		o->ep = *ep;
		o->discovered = true;
		pthread_mutex_unlock(&o->lock);
		nx_info("OIDC: discovered %s: jwks_uri %s", o->issuer, o->ep.jwks_uri);
	}
	stage = "key set";
	rc = fetch_jwks(o, o->ep.jwks_uri, &ks, &e);
	if (rc < 0)
		goto fail;

	pthread_mutex_lock(&o->lock);
	old = o->keys;
	o->keys = ks;
	o->generation++;
	o->keys_at = mono_now(o);
	o->last_error[0] = '\0';
	pthread_mutex_unlock(&o->lock);
	keyset_put(o, old);
	free(ep);
	nx_debug(&dbg_nexsrv_auth, "OIDC key set of %s installed: %zu keys", o->issuer, ks->n);
	return 0;

fail:
	free(ep);
	if (rc != -ENOMEM)
		rc = -NEXSRV_OIDC_EUNAVAILABLE;
	nx_err_set(&reason, -rc, "%s failed: %s", stage, e.msg);
	nx_err_set(err, -rc, "OIDC provider unavailable: %s", reason.msg);
	pthread_mutex_lock(&o->lock);
	nx_strlcpy(o->last_error, reason.msg, sizeof(o->last_error));
	pthread_mutex_unlock(&o->lock);
	nx_warn("OIDC: %s %s failed: %s", o->issuer, stage, e.msg);
	return rc;
}

/* With lock held: may a fetch start now? */
static bool fetch_allowed_locked(const struct nexsrv_oidc *o, int64_t now)
{
	return !o->attempted || now - o->last_attempt >= (int64_t)o->refetch_interval_s;
}

static bool stale_locked(const struct nexsrv_oidc *o, int64_t now)
{
	return o->jwks_max_age_s && now - o->keys_at >= (int64_t)o->jwks_max_age_s &&
	       fetch_allowed_locked(o, now);
}

/*
 * A reference to the current key set in *ksp, its generation in *gen.  The
 * first call fetches; a key set older than jwks_max_age_s is refreshed by
 * whichever request finds the fetch lock free (the others go on with the
 * old set; so does everyone if the refresh fails).
 */
static int keys_get(struct nexsrv_oidc *o, struct oidc_keyset **ksp, uint64_t *gen,
		    struct nx_err *err)
{
	int64_t now = mono_now(o);
	bool have, stale = false;
	int rc = 0;

	pthread_mutex_lock(&o->lock);
	have = o->keys != NULL;
	if (have)
		stale = stale_locked(o, now);
	if (have && !stale) {
		*ksp = keyset_ref_locked(o->keys);
		*gen = o->generation;
		pthread_mutex_unlock(&o->lock);
		return 0;
	}
	pthread_mutex_unlock(&o->lock);

	if (have) {
		if (pthread_mutex_trylock(&o->fetch_lock) == 0) {
			pthread_mutex_lock(&o->lock);
			stale = stale_locked(o, mono_now(o));
			pthread_mutex_unlock(&o->lock);
			if (stale)
				refresh_locked(o, NULL);
			pthread_mutex_unlock(&o->fetch_lock);
		}
		pthread_mutex_lock(&o->lock);
		*ksp = keyset_ref_locked(o->keys);
		*gen = o->generation;
		pthread_mutex_unlock(&o->lock);
		return 0;
	}

	pthread_mutex_lock(&o->fetch_lock);
	pthread_mutex_lock(&o->lock);
	if (!o->keys && !fetch_allowed_locked(o, mono_now(o)))
		rc = UNAVAILABLE(err, "OIDC provider unavailable (retried at most every %u s): %s",
				 o->refetch_interval_s, o->last_error);
	pthread_mutex_unlock(&o->lock);
	if (rc == 0 && !o->keys)
		rc = refresh_locked(o, err);
	if (rc == 0) {
		pthread_mutex_lock(&o->lock);
		*ksp = keyset_ref_locked(o->keys);
		*gen = o->generation;
		pthread_mutex_unlock(&o->lock);
	}
	pthread_mutex_unlock(&o->fetch_lock);
	return rc;
}

/*
 * For a kid missing from key set generation *gen: a key set newer than
 * that, the one another thread installed meanwhile or else one fetched now
 * if the rate limit allows.  Returns 1 with a reference in *ksp, *gen
 * updated and *fetched saying whether this call fetched it; 0 when there is
 * no newer set and the rate limit forbids a fetch; a negative errno when
 * the fetch failed.
 */
static int keys_refetch(struct nexsrv_oidc *o, uint64_t *gen, struct oidc_keyset **ksp,
			bool *fetched, struct nx_err *err)
{
	bool newer, allowed;
	int rc;

	*fetched = false;
	pthread_mutex_lock(&o->fetch_lock);
	pthread_mutex_lock(&o->lock);
	newer = o->generation != *gen;
	allowed = fetch_allowed_locked(o, mono_now(o));
	pthread_mutex_unlock(&o->lock);
	if (!newer) {
		if (!allowed) {
			rc = 0;
			goto out;
		}
		rc = refresh_locked(o, err);
		if (rc < 0)
			goto out;
		*fetched = true;
	}
	pthread_mutex_lock(&o->lock);
	*ksp = keyset_ref_locked(o->keys);
	*gen = o->generation;
	pthread_mutex_unlock(&o->lock);
	rc = 1;
out:
	pthread_mutex_unlock(&o->fetch_lock);
	return rc;
}

/* --- the token -------------------------------------------------------------- */

static void parts_fini(struct jws_parts *p)
{
	json_object_put(p->header);
	json_object_put(p->claims);
	free(p->sig);
	memset(p, 0, sizeof(*p));
}

/* Decodes a base64url part holding a JSON object. */
static int decode_json_part(const char *what, const char *s, size_t n, size_t depth,
			    struct json_object **out, struct nx_err *err)
{
	struct json_object *obj;
	uint8_t *buf = NULL;
	struct nx_err e;
	size_t len;
	int rc;

	rc = b64url_decode_alloc(what, s, n, &buf, &len, err);
	if (rc < 0)
		return rc;
	obj = nx_json_parse((const char *)buf, len, depth, &e);
	free(buf);
	if (!obj)
		return errno == ENOMEM ? nx_err_set(err, ENOMEM, "out of memory")
				       : REJECT(err, "%s is not valid JSON: %s", what, e.msg);
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return REJECT(err, "%s is not a JSON object", what);
	}
	*out = obj;
	return 0;
}

static int check_header(struct jws_parts *p, struct nx_err *err)
{
	const char *alg, *kid, *typ = NULL;
	struct json_object *crit;
	char q[QUOTE_LEN];
	size_t i;

	if (nx_json_get_string(p->header, "alg", &alg, NULL) < 0)
		return REJECT(err, "header has no alg string");
	if (strcasecmp(alg, "none") == 0)
		return REJECT(err, "alg \"none\" (an unsigned token) is not accepted");
	for (i = 0; i < N_ALGS; i++)
		if (strcmp(alg, jws_algs[i].name) == 0)
			break;
	if (i == N_ALGS)
		return REJECT(err, "alg \"%s\" is not accepted: expected RS256, ES256 or EdDSA",
			      quote(q, alg));
	p->alg = &jws_algs[i];

	if (json_object_object_get_ex(p->header, "crit", &crit))
		return REJECT(err, "header has \"crit\": no JWS extensions are understood");
	if (nx_json_get_string_opt(p->header, "typ", &typ, NULL) < 0)
		return REJECT(err, "header's typ is not a string");
	if (typ) {
		for (i = 0; i < sizeof(accepted_typs) / sizeof(accepted_typs[0]); i++)
			if (strcasecmp(typ, accepted_typs[i]) == 0)
				break;
		if (i == sizeof(accepted_typs) / sizeof(accepted_typs[0]))
			return REJECT(err, "typ \"%s\" is not accepted: expected JWT or at+jwt",
				      quote(q, typ));
	}
	if (nx_json_get_string(p->header, "kid", &kid, NULL) < 0)
		return REJECT(err, "header has no kid string");
	if (*kid == '\0' || strlen(kid) > NEXSRV_OIDC_MAX_KID)
		return REJECT(err, "kid of %zu characters, expected 1 to %d", strlen(kid),
			      NEXSRV_OIDC_MAX_KID);
	nx_strlcpy(p->kid, kid, sizeof(p->kid));
	return 0;
}

/* Takes the compact serialization apart; all three parts must decode. */
static int parse_compact(const char *bearer, struct jws_parts *p, struct nx_err *err)
{
	const char *dot1, *dot2, *end;
	size_t len, dots = 0;
	int rc;

	len = strnlen(bearer, NEXSRV_OIDC_MAX_TOKEN + 1);
	if (len == 0)
		return REJECT(err, "empty token");
	if (len > NEXSRV_OIDC_MAX_TOKEN)
		return REJECT(err, "token longer than %d bytes", NEXSRV_OIDC_MAX_TOKEN);
	for (size_t i = 0; i < len; i++)
		dots += bearer[i] == '.';
	if (dots != 2)
		return REJECT(err,
			      "not a compact JWS: expected 3 parts separated by '.', found %zu",
			      dots + 1);
	end = bearer + len;
	dot1 = memchr(bearer, '.', len);
	dot2 = memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1));
	if (dot1 == bearer || dot2 == dot1 + 1)
		return REJECT(err, "not a compact JWS: empty %s",
			      dot1 == bearer ? "header" : "payload");
	p->text = bearer;
	p->len = len;
	p->signing_len = (size_t)(dot2 - bearer);

	rc = decode_json_part("header", bearer, (size_t)(dot1 - bearer), JWS_HEADER_DEPTH,
			      &p->header, err);
	if (rc < 0)
		return rc;
	rc = check_header(p, err);
	if (rc < 0)
		return rc;
	if (dot2 + 1 == end)
		return REJECT(err, "token has no signature");
	rc = decode_json_part("payload", dot1 + 1, (size_t)(dot2 - dot1 - 1), JWS_PAYLOAD_DEPTH,
			      &p->claims, err);
	if (rc < 0)
		return rc;
	return b64url_decode_alloc("signature", dot2 + 1, (size_t)(end - dot2 - 1), &p->sig,
				   &p->sig_len, err);
}

/* A NumericDate claim (integer or fractional seconds): 0 and *out, 1 when
 * absent (or null), or a rejection. */
static int time_claim(struct json_object *claims, const char *name, int64_t *out,
		      struct nx_err *err)
{
	struct json_object *v;
	double d;

	if (!json_object_object_get_ex(claims, name, &v) || !v)
		return 1;
	switch (json_object_get_type(v)) {
	case json_type_int:
		*out = json_object_get_int64(v);
		break;
	case json_type_double:
		d = json_object_get_double(v);
		if (!(d >= 0 && d <= (double)MAX_NUMERIC_DATE))
			return REJECT(err, "%s is not a valid time", name);
		*out = (int64_t)d;
		break;
	default:
		return REJECT(err, "%s is not a number", name);
	}
	if (*out < 0 || *out > MAX_NUMERIC_DATE)
		return REJECT(err, "%s is not a valid time", name);
	return 0;
}

static int check_audience(const struct nexsrv_oidc *o, struct json_object *claims,
			  struct nx_err *err)
{
	struct json_object *aud;
	char q[QUOTE_LEN];
	size_t n;

	if (!json_object_object_get_ex(claims, "aud", &aud) || !aud)
		return REJECT(err, "token has no aud claim");
	if (json_object_is_type(aud, json_type_string)) {
		if (strcmp(json_object_get_string(aud), o->audience) == 0)
			return 0;
		return REJECT(err, "aud \"%s\" is not this service's audience \"%s\"",
			      quote(q, json_object_get_string(aud)), o->audience);
	}
	if (!json_object_is_type(aud, json_type_array))
		return REJECT(err, "aud is neither a string nor an array of strings");
	n = json_object_array_length(aud);
	if (n == 0)
		return REJECT(err, "aud is an empty array");
	if (n > MAX_AUD_ENTRIES)
		return REJECT(err, "aud has %zu entries, more than %d", n, MAX_AUD_ENTRIES);
	for (size_t i = 0; i < n; i++) {
		struct json_object *a = json_object_array_get_idx(aud, i);

		if (!json_object_is_type(a, json_type_string))
			return REJECT(err, "aud[%zu] is not a string", i);
		if (strcmp(json_object_get_string(a), o->audience) == 0)
			return 0;
	}
	return REJECT(err, "aud does not contain this service's audience \"%s\"", o->audience);
}

/* An optional (required: mandatory, non-empty) string claim into dst. */
static int string_claim(struct json_object *claims, const char *name, bool required, char *dst,
			size_t size, struct nx_err *err)
{
	const char *v = NULL;
	int rc;

	rc = nx_json_get_string_opt(claims, name, &v, NULL);
	if (rc < 0)
		return REJECT(err, "%s claim is not a string", name);
	dst[0] = '\0';
	if (!v || (!required && *v == '\0'))
		return required ? REJECT(err, "token has no %s claim", name) : 0;
	if (*v == '\0')
		return REJECT(err, "%s claim is empty", name);
	if (strlen(v) >= size)
		return REJECT(err, "%s claim is longer than %zu bytes", name, size - 1);
	if (has_control_chars(v))
		return REJECT(err, "%s claim contains control characters", name);
	nx_strlcpy(dst, v, size);
	return 0;
}

static int check_claims(const struct nexsrv_oidc *o, struct json_object *claims,
			struct nexsrv_claims *c, struct nx_err *err)
{
	int64_t now = wall_now(o), leeway = o->leeway_s, exp = 0, nbf = 0, iat = 0;
	const char *iss;
	char q[QUOTE_LEN];
	int rc;

	memset(c, 0, sizeof(*c));
	if (nx_json_get_string(claims, "iss", &iss, NULL) < 0)
		return REJECT(err, "token has no iss string");
	if (strcmp(iss, o->issuer) != 0)
		return REJECT(err, "iss \"%s\" is not this service's issuer \"%s\"", quote(q, iss),
			      o->issuer);
	rc = check_audience(o, claims, err);
	if (rc < 0)
		return rc;

	rc = time_claim(claims, "exp", &exp, err);
	if (rc < 0)
		return rc;
	if (rc > 0)
		return REJECT(err, "token has no exp claim");
	if (exp <= now - leeway)
		return REJECT(err, "token expired %" PRId64 " s ago (leeway %" PRId64 " s)",
			      now - exp, leeway);
	rc = time_claim(claims, "nbf", &nbf, err);
	if (rc < 0)
		return rc;
	if (rc == 0 && nbf > now + leeway)
		return REJECT(err,
			      "token not valid yet: nbf is %" PRId64 " s ahead (leeway %" PRId64
			      " s)",
			      nbf - now, leeway);
	rc = time_claim(claims, "iat", &iat, err);
	if (rc < 0)
		return rc;
	if (rc == 0 && iat > now + leeway)
		return REJECT(err,
			      "token issued %" PRId64 " s in the future (leeway %" PRId64 " s)",
			      iat - now, leeway);
	if (rc == 0 && iat > exp)
		return REJECT(err, "token issued after it expires (iat > exp)");

	if ((rc = string_claim(claims, "sub", true, c->sub, sizeof(c->sub), err)) < 0 ||
	    (rc = string_claim(claims, "email", false, c->email, sizeof(c->email), err)) < 0 ||
	    (rc = string_claim(claims, "preferred_username", false, c->preferred_username,
			       sizeof(c->preferred_username), err)) < 0 ||
	    (rc = string_claim(claims, "name", false, c->name, sizeof(c->name), err)) < 0)
		return rc;
	c->expires_at = exp;
	c->issued_at = iat;
	return 0;
}

static int verify_cjose(const struct jws_parts *p, const struct oidc_key *k, struct nx_err *err)
{
	cjose_jws_t *jws;
	cjose_err cerr;
	const char *alg;
	int rc;

	memset(&cerr, 0, sizeof(cerr));
	jws = cjose_jws_import(p->text, p->len, &cerr);
	if (!jws)
		return cerr.code == CJOSE_ERR_NO_MEMORY
			       ? nx_err_set(err, ENOMEM, "out of memory")
			       : REJECT(err, "token not accepted by cjose: %s",
					cerr.message ? cerr.message : "unknown error");
	/* cjose parses the header again with its own JSON parser: both must
	 * read the same alg, or a doubled member could pick the verifier. */
	alg = cjose_header_get(cjose_jws_get_protected(jws), CJOSE_HDR_ALG, &cerr);
	if (!alg || strcmp(alg, p->alg->name) != 0)
		rc = REJECT(err, "header's alg is ambiguous");
	else if (!cjose_jws_verify(jws, k->jwk, &cerr))
		rc = cerr.code == CJOSE_ERR_NO_MEMORY ? nx_err_set(err, ENOMEM, "out of memory")
						      : REJECT(err, "bad signature");
	else
		rc = 0;
	cjose_jws_release(jws);
	return rc;
}

static int verify_ed25519(const struct jws_parts *p, const struct oidc_key *k, struct nx_err *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc;

	if (!ctx)
		return nx_err_set(err, ENOMEM, "out of memory");
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) != 1)
		rc = REJECT(err, "Ed25519 verification could not start");
	else if (EVP_DigestVerify(ctx, p->sig, p->sig_len, (const unsigned char *)p->text,
				  p->signing_len) != 1)
		rc = REJECT(err, "bad signature");
	else
		rc = 0;
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int verify_signature(const struct jws_parts *p, const struct oidc_key *k, struct nx_err *err)
{
	size_t want = p->alg->sig_len ? p->alg->sig_len : k->sig_len;

	if (p->sig_len != want)
		return REJECT(err, "signature of %zu bytes, %s needs %zu", p->sig_len, p->alg->name,
			      want);
	return k->kind == KEY_ED25519 ? verify_ed25519(p, k, err) : verify_cjose(p, k, err);
}

/* --- API -------------------------------------------------------------------- */

void nexsrv_oidc_config_init(struct nexsrv_oidc_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->leeway_s = NEXSRV_OIDC_DEFAULT_LEEWAY_S;
	cfg->fetch_timeout_ms = NEXSRV_OIDC_DEFAULT_FETCH_TIMEOUT_MS;
	cfg->refetch_interval_s = NEXSRV_OIDC_DEFAULT_REFETCH_INTERVAL_S;
	cfg->jwks_max_age_s = NEXSRV_OIDC_DEFAULT_JWKS_MAX_AGE_S;
}

static char *strdup_opt(const char *s, bool *failed)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*failed = true;
	return d;
}

struct nexsrv_oidc *nexsrv_oidc_new(const struct nexsrv_oidc_config *cfg, struct nx_err *err)
{
	struct nexsrv_oidc *o = NULL;
	bool nomem = false;
	size_t ilen;
	int rc;

	if (!cfg || !cfg->issuer || !*cfg->issuer) {
		rc = nx_err_set(err, EINVAL, "an OIDC issuer is required");
		goto fail;
	}
	rc = check_url("OIDC issuer", cfg->issuer, false, err);
	if (rc < 0)
		goto fail;
	if (strlen(cfg->issuer) > NEXSRV_OIDC_MAX_URL - strlen(DISCOVERY_PATH)) {
		rc = nx_err_set(err, EINVAL, "OIDC issuer is longer than %zu characters",
				NEXSRV_OIDC_MAX_URL - strlen(DISCOVERY_PATH));
		goto fail;
	}
	if (!cfg->audience || !*cfg->audience) {
		rc = nx_err_set(err, EINVAL, "an OIDC audience is required with an issuer");
		goto fail;
	}
	if (cfg->leeway_s > NEXSRV_OIDC_MAX_LEEWAY_S) {
		rc = nx_err_set(err, EINVAL, "leeway of %u s exceeds %d s", cfg->leeway_s,
				NEXSRV_OIDC_MAX_LEEWAY_S);
		goto fail;
	}
	if (cfg->fetch_timeout_ms == 0) {
		rc = nx_err_set(err, EINVAL, "a fetch timeout of 0 ms");
		goto fail;
	}

	o = calloc(1, sizeof(*o));
	if (!o) {
		rc = nx_err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(o);
		o = NULL;
		rc = nx_err_set(err, EIO, "libcurl could not be initialised");
		goto fail;
	}
	pthread_mutex_init(&o->lock, NULL);
	pthread_mutex_init(&o->fetch_lock, NULL);
	o->issuer = strdup_opt(cfg->issuer, &nomem);
	o->audience = strdup_opt(cfg->audience, &nomem);
	o->ca_file = strdup_opt(cfg->ca_file, &nomem);
	o->ca_path = strdup_opt(cfg->ca_path, &nomem);
	ilen = strlen(cfg->issuer);
	if (ilen > 0 && cfg->issuer[ilen - 1] == '/')
		ilen--; /* OIDC Discovery §4: drop a terminating '/' */
	o->discovery_url = malloc(ilen + sizeof(DISCOVERY_PATH));
	if (o->discovery_url) {
		memcpy(o->discovery_url, cfg->issuer, ilen);
		memcpy(o->discovery_url + ilen, DISCOVERY_PATH, sizeof(DISCOVERY_PATH));
	} else {
		nomem = true;
	}
	if (nomem) {
		rc = nx_err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	o->issuer_https = nx_str_startswith(cfg->issuer, "https://");
	o->insecure = cfg->insecure_skip_tls_verify;
	o->leeway_s = cfg->leeway_s;
	o->fetch_timeout_ms = cfg->fetch_timeout_ms;
	o->refetch_interval_s = cfg->refetch_interval_s;
	o->jwks_max_age_s = cfg->jwks_max_age_s;
	if (o->insecure)
		nx_warn("OIDC: TLS certificates of %s are NOT verified (a setting for tests only)",
			o->issuer);
	if (!o->issuer_https)
		nx_warn("OIDC: the keys of %s are fetched over plain http", o->issuer);
	return o;

fail:
	nexsrv_oidc_free(o);
	errno = -rc;
	return NULL;
}

void nexsrv_oidc_free(struct nexsrv_oidc *o)
{
	if (!o)
		return;
	keyset_free(o->keys);
	pthread_mutex_destroy(&o->lock);
	pthread_mutex_destroy(&o->fetch_lock);
	free(o->issuer);
	free(o->audience);
	free(o->ca_file);
	free(o->ca_path);
	free(o->discovery_url);
	free(o);
	curl_global_cleanup();
}

void nexsrv_oidc_set_test_hooks(struct nexsrv_oidc *o, nexsrv_oidc_fetch_fn fetch,
				nexsrv_oidc_clock_fn clock, void *arg)
{
	pthread_mutex_lock(&o->fetch_lock);
	o->fetch_hook = fetch;
	o->clock_hook = clock;
	o->hook_arg = arg;
	pthread_mutex_unlock(&o->fetch_lock);
}

int nexsrv_oidc_validate(struct nexsrv_oidc *o, const char *bearer, struct nexsrv_claims *out,
			 struct nx_err *err)
{
	struct oidc_keyset *ks = NULL;
	const struct oidc_key *key = NULL;
	struct nexsrv_claims c;
	struct jws_parts p;
	enum key_kind other = KEY_RSA;
	char q[QUOTE_LEN], q2[QUOTE_LEN];
	uint64_t gen = 0;
	int rc;

	memset(&p, 0, sizeof(p));
	if (!bearer) {
		rc = REJECT(err, "no token");
		goto out;
	}
	rc = parse_compact(bearer, &p, err);
	if (rc < 0)
		goto out;
	rc = check_claims(o, p.claims, &c, err);
	if (rc < 0)
		goto out;

	rc = keys_get(o, &ks, &gen, err);
	if (rc < 0)
		goto out;
	/*
	 * An unknown kid may be a key the provider just added.  A newer set
	 * that another thread installed meanwhile may have been fetched before
	 * the token was made, so the kid gets a second chance, in which a newer
	 * set can only come from a fetch that started after this lookup.
	 */
	rc = find_key(ks, p.kid, p.alg->kind, &key, &other);
	for (int tries = 0; rc == -ENOENT && tries < 2; tries++) {
		bool fetched;

		keyset_put(o, ks);
		ks = NULL;
		rc = keys_refetch(o, &gen, &ks, &fetched, err);
		if (rc < 0)
			goto out;
		if (rc == 0) {
			rc = REJECT(
				err,
				"no key with kid \"%s\" (the key set was fetched less than %u s "
				"ago)",
				quote(q, p.kid), o->refetch_interval_s);
			goto out;
		}
		rc = find_key(ks, p.kid, p.alg->kind, &key, &other);
		if (fetched)
			break;
	}
	if (rc == -ENOENT) {
		rc = REJECT(err, "no key with kid \"%s\" in the provider's key set",
			    quote(q, p.kid));
		goto out;
	}
	if (rc == -EMEDIUMTYPE) {
		rc = REJECT(err, "key \"%s\" is %s, alg %s needs %s", quote(q, p.kid),
			    key_kind_names[other], p.alg->name, key_kind_names[p.alg->kind]);
		goto out;
	}
	rc = verify_signature(&p, key, err);
	if (rc < 0)
		goto out;
	*out = c;
	nx_debug(&dbg_nexsrv_auth, "OIDC token of \"%s\" accepted (alg %s, kid \"%s\")",
		 quote(q, c.sub), p.alg->name, quote(q2, p.kid));
out:
	keyset_put(o, ks);
	parts_fini(&p);
	return rc;
}

int nexsrv_oidc_endpoints(struct nexsrv_oidc *o, struct nexsrv_oidc_endpoints *out,
			  struct nx_err *err)
{
	struct oidc_keyset *ks = NULL;
	uint64_t gen;
	int rc;

	pthread_mutex_lock(&o->lock);
	if (o->discovered) {
		*out = o->ep;
		pthread_mutex_unlock(&o->lock);
		return 0;
	}
	pthread_mutex_unlock(&o->lock);

	rc = keys_get(o, &ks, &gen, err);
	keyset_put(o, ks);
	pthread_mutex_lock(&o->lock);
	if (o->discovered) {
		*out = o->ep;
		rc = 0;
	} else if (rc == 0) {
		rc = UNAVAILABLE(err, "OIDC provider %s not discovered", o->issuer);
	}
	pthread_mutex_unlock(&o->lock);
	return rc;
}
