/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for lib/wgkey's text forms.  A key string the parsers accept
 * must print back as the same text (hex ignoring case), and any 32 bytes
 * must survive both text forms and yield a public key.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/wgkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parsers(const char *s)
{
	struct nx_wgkey k;
	struct nx_err err = { "" };
	char b64[NX_WG_KEY_B64_LEN], hex[NX_WG_KEY_HEX_LEN];

	if (nx_wgkey_from_base64(s, &k, &err) == 0) {
		nx_wgkey_to_base64(&k, b64);
		if (strcmp(b64, s) != 0)
			abort();
	} else if (err.msg[0] == '\0') {
		abort();
	}

	err.msg[0] = '\0';
	if (nx_wgkey_from_hex(s, &k, &err) == 0) {
		nx_wgkey_to_hex(&k, hex);
		if (strcasecmp(hex, s) != 0)
			abort();
	} else if (err.msg[0] == '\0') {
		abort();
	}
}

static void check_raw(const uint8_t *data)
{
	static const struct nx_wgkey zero;
	struct nx_wgkey k, k2, pub;
	char b64[NX_WG_KEY_B64_LEN], hex[NX_WG_KEY_HEX_LEN];

	memcpy(k.b, data, NX_WG_KEY_LEN);
	nx_wgkey_to_base64(&k, b64);
	if (strlen(b64) != NX_WG_KEY_B64_LEN - 1 || nx_wgkey_from_base64(b64, &k2, NULL) != 0 ||
	    !nx_wgkey_eq(&k, &k2))
		abort();
	nx_wgkey_to_hex(&k, hex);
	if (strlen(hex) != NX_WG_KEY_HEX_LEN - 1 || nx_wgkey_from_hex(hex, &k2, NULL) != 0 ||
	    !nx_wgkey_eq(&k, &k2))
		abort();
	if (nx_wgkey_is_zero(&k) != (memcmp(k.b, zero.b, NX_WG_KEY_LEN) == 0))
		abort();
	k2.b[NX_WG_KEY_LEN - 1] ^= 1;
	if (nx_wgkey_eq(&k, &k2))
		abort();
	if (nx_wgkey_public_from_private(&k, &pub, NULL) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	check_parsers(s);
	free(s);

	if (size >= NX_WG_KEY_LEN)
		check_raw(data);
	return 0;
}
