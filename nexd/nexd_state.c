/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The device's identity in the state directory: the WireGuard private key (made here, 0600,
 * never sent anywhere) and what enrollment returned (device id, VPC, tunnel addresses and the
 * device token, 0600).  With them a restarted nexd is the same device and keeps its addresses;
 * after enrollment only the device token is used, so a user's login may expire.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/jsonutil.h"
#include "lib/paths.h"
#include "lib/strutil.h"
#include "nexd/nexd.h"

#define KEY_FILE    "nexd.key"
#define DEVICE_FILE "nexd-device.json"
#define DEVICE_MAX  16384

static int state_path(char *buf, size_t size, const char *dir, const char *file, struct nx_err *err)
{
	int n = snprintf(buf, size, "%s/%s", dir, file);

	if (n < 0 || (size_t)n >= size)
		return nx_err_set(err, ENAMETOOLONG, "state directory path too long: %s", dir);
	return 0;
}

/* Generates a private key and stores it in path (0600, replacing what was there). */
static int store_new_key(const char *state_dir, const char *path, struct nexd_identity *id,
			 struct nx_err *err)
{
	char b64[NX_WG_KEY_B64_LEN + 1];
	size_t len;
	int rc;

	rc = nx_mkdir_parents(state_dir, 0700, 1, err);
	if (rc == 0)
		rc = nx_wgkey_generate_private(&id->private_key, err);
	if (rc < 0)
		return rc;
	nx_wgkey_to_base64(&id->private_key, b64);
	len = strlen(b64);
	b64[len++] = '\n';
	rc = nx_write_file_atomic(path, b64, len, 0600, err);
	nx_memzero_explicit(b64, sizeof(b64));
	if (rc < 0)
		return rc;
	nx_notice("generated a new WireGuard key pair in %s", path);
	return nx_wgkey_public_from_private(&id->private_key, &id->public_key, err);
}

int nexd_identity_new_key(const char *state_dir, struct nexd_identity *id, struct nx_err *err)
{
	char path[4096];
	int rc = state_path(path, sizeof(path), state_dir, KEY_FILE, err);

	return rc < 0 ? rc : store_new_key(state_dir, path, id, err);
}

/* Loads the private key, generating and storing it on first use. */
int nexd_identity_load_key(const char *state_dir, struct nexd_identity *id, struct nx_err *err)
{
	char path[4096];
	char *text = NULL;
	size_t len;
	int rc;

	rc = state_path(path, sizeof(path), state_dir, KEY_FILE, err);
	if (rc < 0)
		return rc;
	rc = nx_read_file(path, 256, &text, &len, err);
	if (rc == -ENOENT) {
		return store_new_key(state_dir, path, id, err);
	} else if (rc < 0) {
		return rc;
	} else {
		rc = nx_wgkey_from_base64(nx_str_trim(text), &id->private_key, err);
		nx_memzero_explicit(text, len);
		free(text);
		if (rc < 0)
			return nx_err_set(err, EINVAL, "%s: not a WireGuard private key", path);
	}
	return nx_wgkey_public_from_private(&id->private_key, &id->public_key, err);
}

static int load_addr(struct json_object *o, const char *key, struct nx_addr *out,
		     struct nx_err *err)
{
	const char *s = NULL;
	int rc = nx_json_get_string_opt(o, key, &s, err);

	if (rc <= 0)
		return rc;
	return nx_addr_parse(s, out, err);
}

static int copy_string(struct json_object *o, const char *key, char *dst, size_t size,
		       struct nx_err *err)
{
	const char *s;
	int rc = nx_json_get_string(o, key, &s, err);

	if (rc < 0)
		return rc;
	if (strlen(s) >= size)
		return nx_err_set(err, EINVAL, "%s too long", key);
	nx_strlcpy(dst, s, size);
	return 0;
}

/* Loads what enrollment stored; -ENOENT when the device is not enrolled. The key must be
 * loaded already: a device file made with another key is refused. */
int nexd_identity_load(const char *state_dir, struct nexd_identity *id, struct nx_err *err)
{
	char path[4096], pub[NX_WG_KEY_B64_LEN];
	struct json_object *o = NULL;
	char *text = NULL;
	const char *key;
	int64_t port = 0;
	size_t len;
	int rc;

	rc = state_path(path, sizeof(path), state_dir, DEVICE_FILE, err);
	if (rc < 0)
		return rc;
	rc = nx_read_file(path, DEVICE_MAX, &text, &len, err);
	if (rc < 0)
		return rc;
	o = nx_json_parse(text, len, 8, err);
	if (!o) {
		rc = -EINVAL;
		goto out;
	}
	nx_wgkey_to_base64(&id->public_key, pub);
	if ((rc = copy_string(o, "service_url", id->service_url, sizeof(id->service_url), err)) <
		    0 ||
	    (rc = copy_string(o, "device_id", id->device_id, sizeof(id->device_id), err)) < 0 ||
	    (rc = copy_string(o, "vpc_id", id->vpc_id, sizeof(id->vpc_id), err)) < 0 ||
	    (rc = copy_string(o, "token", id->token, sizeof(id->token), err)) < 0 ||
	    (rc = nx_json_get_string(o, "public_key", &key, err)) < 0 ||
	    (rc = load_addr(o, "tunnel_ipv4", &id->tunnel_ipv4, err)) < 0 ||
	    (rc = load_addr(o, "tunnel_ipv6", &id->tunnel_ipv6, err)) < 0 ||
	    (rc = nx_json_get_int64_opt(o, "listen_port", &port, err)) < 0)
		goto out;
	if (strcmp(key, pub) != 0) {
		rc = nx_err_set(err, EINVAL, "%s belongs to another key (%s)", path, key);
		goto out;
	}
	id->listen_port = port > 0 && port < 65536 ? (uint16_t)port : 0;
	rc = 0;
out:
	if (rc < 0) {
		char msg[NX_ERR_MAX];

		if (err) {
			nx_strlcpy(msg, err->msg, sizeof(msg));
			nx_err_set(err, -rc == ENOENT ? EINVAL : -rc, "%s: %s", path, msg);
		}
		rc = rc == -ENOENT ? -EINVAL : rc;
		memset(id->device_id, 0, sizeof(id->device_id));
		nx_memzero_explicit(id->token, sizeof(id->token));
		id->service_url[0] = '\0';
	}
	json_object_put(o);
	if (text)
		nx_memzero_explicit(text, len);
	free(text);
	return rc;
}

int nexd_identity_save(const char *state_dir, const struct nexd_identity *id, struct nx_err *err)
{
	char path[4096], pub[NX_WG_KEY_B64_LEN], a4[NX_ADDR_STRLEN], a6[NX_ADDR_STRLEN];
	struct json_object *o = json_object_new_object();
	const char *text;
	int rc = -ENOMEM;

	nx_wgkey_to_base64(&id->public_key, pub);
	if (!o || nx_json_object_add_string(o, "service_url", id->service_url) < 0 ||
	    nx_json_object_add_string(o, "device_id", id->device_id) < 0 ||
	    nx_json_object_add_string(o, "vpc_id", id->vpc_id) < 0 ||
	    nx_json_object_add_string(o, "public_key", pub) < 0 ||
	    nx_json_object_add_string(o, "token", id->token) < 0 ||
	    nx_json_object_add_int64(o, "listen_port", id->listen_port) < 0)
		goto out;
	if (id->tunnel_ipv4.family &&
	    nx_json_object_add_string(o, "tunnel_ipv4",
				      nx_addr_format(&id->tunnel_ipv4, a4, sizeof(a4))) < 0)
		goto out;
	if (id->tunnel_ipv6.family &&
	    nx_json_object_add_string(o, "tunnel_ipv6",
				      nx_addr_format(&id->tunnel_ipv6, a6, sizeof(a6))) < 0)
		goto out;
	rc = state_path(path, sizeof(path), state_dir, DEVICE_FILE, err);
	if (rc < 0)
		goto out;
	rc = nx_mkdir_parents(state_dir, 0700, 1, err);
	if (rc < 0)
		goto out;
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
	rc = nx_write_file_atomic(path, text, strlen(text), 0600, err);
	/* The token is a secret: do not leave it in json-c's buffer. */
	nx_memzero_explicit((char *)text, strlen(text));
out:
	json_object_put(o);
	if (rc == -ENOMEM)
		nx_err_set(err, ENOMEM, "out of memory saving the device identity");
	return rc;
}

int nexd_identity_forget(const char *state_dir, struct nx_err *err)
{
	char path[4096];
	int rc = state_path(path, sizeof(path), state_dir, DEVICE_FILE, err);

	if (rc == 0 && unlink(path) < 0 && errno != ENOENT)
		rc = nx_err_set(err, errno, "cannot remove %s: %s", path, strerror(errno));
	return rc;
}
