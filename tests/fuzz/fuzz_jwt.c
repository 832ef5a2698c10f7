/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for nexsrv/nexsrv_oidc: arbitrary bytes as a bearer token
 * against a fixed key set (RS256, ES256 and EdDSA keys whose private halves
 * signed the valid seeds) served by the test fetch hook at a fixed time, so
 * there is no network and every run is repeatable.  A token must be
 * refused with a message or accepted with a subject; the provider never
 * becomes "unavailable", since the hook always answers.
 *
 * The private keys were thrown away after signing the seeds valid-*: a new
 * valid seed needs a new key set here (and all valid-* seeds re-signed).
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nexsrv/nexsrv_oidc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ISSUER	 "https://idp.example.com/realms/nexodus"
#define JWKS_URL ISSUER "/jwks"
/* The seeds were minted for exp = NOW + 300. */
#define NOW	 INT64_C(1800000000)

static const char discovery[] = "{\"issuer\":\"" ISSUER "\",\"jwks_uri\":\"" JWKS_URL "\"}";

static const char jwks[] =
	"{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"rsa-1\",\"use\":\"sig\",\"alg\":\"RS256\",\"n"
	"\":\"tHw0NXCU4ESql9_HDgOPUU1Q7uD_zWvJ_7UilPKunGTy3Zzw2z6ghIOwtFXRB7iT0UY4wpG5_crAt98"
	"yaI5rBcmjqKNFToFcg0m1JhFw3-HvDOkJnyyM_LIzxHr0RoSpe2mkjbMQoIuWSpYfgcV_JwJuSsc7gYbKU1b"
	"jeKnOcvfPSszBYPigRgSqaw8NqVkp65ZyRE-1aQ-VUya9CD9YyN7QiEfDVgtVS-i78X2eY91FTy4T2VYCCEN"
	"EDZM-j0drsQZPxds4kTfB-SATWJ_A9xyaIWvFfnc9BAYPn5Vws5FS4NVin9kl7YvLrkilJ_G1_VlOOqekazt"
	"uPN-fd8sLeQ\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\"kid\":\"ec-1\",\"use\":\"sig\",\"alg"
	"\":\"ES256\",\"crv\":\"P-256\",\"x\":\"SiJy4-A6wVleIER2CTVBqMEJ5m1Sp7dZMAGF9gGfU0U\""
	",\"y\":\"59sjMcKhIlsJZjyatmZqg-sERsD9IOFdzCFSEQfmnJE\"},{\"kty\":\"OKP\",\"kid\":\"e"
	"d-1\",\"use\":\"sig\",\"alg\":\"EdDSA\",\"crv\":\"Ed25519\",\"x\":\"UlXfE-DxZqAg0IBA"
	"k-G-TXGb5Q7UIEtA5_xh43_rhj8\"}]}";

static int fixed_fetch(void *arg, const char *url, char **body, size_t *len, struct nx_err *err)
{
	const char *src = strcmp(url, JWKS_URL) == 0 ? jwks : discovery;

	*body = strdup(src);
	if (!*body)
		return nx_err_set(err, ENOMEM, "out of memory");
	*len = strlen(src);
	return 0;
}

static int64_t fixed_clock(void *arg)
{
	return NOW;
}

static struct nexsrv_oidc *validator(void)
{
	static struct nexsrv_oidc *o;
	struct nexsrv_oidc_config cfg;

	if (o)
		return o;
	nexsrv_oidc_config_init(&cfg);
	cfg.issuer = ISSUER;
	cfg.audience = "nexodus";
	/* every unknown kid refetches (from memory): the refetch path is fuzzed too */
	cfg.refetch_interval_s = 0;
	o = nexsrv_oidc_new(&cfg, NULL);
	if (!o)
		abort();
	nexsrv_oidc_set_test_hooks(o, fixed_fetch, fixed_clock, NULL);
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nexsrv_oidc *o = validator();
	struct nexsrv_claims claims;
	struct nx_err err = { "" };
	char *tok;
	int rc;

	tok = malloc(size + 1);
	if (!tok)
		return 0;
	memcpy(tok, data, size);
	tok[size] = '\0';

	rc = nexsrv_oidc_validate(o, tok, &claims, &err);
	if (rc == 0) {
		if (claims.sub[0] == '\0' || claims.expires_at <= NOW - 60 ||
		    strnlen(tok, NEXSRV_OIDC_MAX_TOKEN + 1) > NEXSRV_OIDC_MAX_TOKEN)
			abort();
	} else if ((rc != -NEXSRV_OIDC_EREJECTED && rc != -ENOMEM) || err.msg[0] == '\0') {
		abort();
	}
	free(tok);
	return 0;
}
