/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexsrv's configuration callbacks.  Most leaves are plain values copied into struct
 * nexsrv_config: one table says where each goes, so one pair of callbacks serves them all.
 * Settings the running service can take without a restart are handed to it once a commit
 * has applied them (apply_finish).
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lib/strutil.h"
#include "nexsrv/nexsrv.h"
#include "nexsrv/nexsrv_http.h"

/* Leaf (its path below the controller container) -> field of struct nexsrv_config. */
enum field_kind { FIELD_STRING, FIELD_UINT32 };

#define FIELD(kind, path, member)                                   \
	{                                                           \
		kind, path, offsetof(struct nexsrv_config, member), \
			sizeof(((struct nexsrv_config *)0)->member) \
	}

static const struct field {
	enum field_kind kind;
	const char *path;
	size_t offset;
	size_t size;
} fields[] = {
	FIELD(FIELD_STRING, "listen", listen),
	FIELD(FIELD_STRING, "tls-cert", tls_cert),
	FIELD(FIELD_STRING, "tls-key", tls_key),
	FIELD(FIELD_STRING, "database", database),
	FIELD(FIELD_STRING, "oidc-issuer", oidc_issuer),
	FIELD(FIELD_STRING, "oidc-audience", oidc_audience),
	FIELD(FIELD_STRING, "oidc-client-id", oidc_client_id),
	FIELD(FIELD_STRING, "stun-listen", stun_listen),
	FIELD(FIELD_UINT32, "rate-limit/requests-per-second", rate_limit_rps),
	FIELD(FIELD_UINT32, "rate-limit/burst", rate_limit_burst),
	FIELD(FIELD_UINT32, "tombstone-retention", tombstone_retention_s),
	FIELD(FIELD_UINT32, "max-connections", max_connections),
	FIELD(FIELD_UINT32, "max-connections-per-address", max_connections_per_address),
	FIELD(FIELD_UINT32, "prefix-failover-grace", prefix_failover_grace_ms),
};

/* The table row of a leaf, found by its path below the controller container. */
static const struct field *field_of(const struct lyd_node *dnode)
{
	const struct lyd_node *parent = lyd_parent(dnode);
	char path[128];

	if (parent && parent->parent)
		snprintf(path, sizeof(path), "%s/%s", parent->schema->name, dnode->schema->name);
	else
		nx_strlcpy(path, dnode->schema->name, sizeof(path));
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strcmp(fields[i].path, path) == 0)
			return &fields[i];
	return NULL;
}

static void field_set(struct nexsrv_config *cfg, const struct field *f, const char *value)
{
	char *dst = (char *)cfg + f->offset;
	unsigned long long v;

	if (f->kind == FIELD_STRING)
		nx_strlcpy(dst, value, f->size);
	else if (nx_parse_uint(value, 0, UINT32_MAX, &v, NULL) == 0)
		*(uint32_t *)(void *)dst = (uint32_t)v;
}

int nexsrv_leaf_modify(struct nx_nb_cb_args *args)
{
	struct nexsrv *srv = args->daemon;
	const struct field *f = field_of(args->dnode);
	const char *value = lyd_get_value(args->dnode);

	if (!f) {
		snprintf(args->errmsg, args->errmsg_len, "%s: no field for this leaf",
			 args->dnode->schema->name);
		return -ENOENT;
	}
	if (args->event == NX_NB_EV_VALIDATE && f->kind == FIELD_STRING &&
	    strlen(value) >= f->size) {
		snprintf(args->errmsg, args->errmsg_len, "%s: value longer than %zu characters",
			 args->dnode->schema->name, f->size - 1);
		return -EINVAL;
	}
	if (args->event == NX_NB_EV_APPLY)
		field_set(&srv->cfg, f, value);
	return 0;
}

int nexsrv_leaf_destroy(struct nx_nb_cb_args *args)
{
	struct nexsrv *srv = args->daemon;
	const struct field *f = field_of(args->dnode);

	/* memzero: the database conninfo may hold a password. */
	if (args->event == NX_NB_EV_APPLY && f)
		nx_memzero_explicit((char *)&srv->cfg + f->offset, f->size);
	return 0;
}

/* The running tree starts with the model's defaults, which no callback announces: take
 * them (and anything else present) from the tree itself. */
void nexsrv_config_from_tree(struct nexsrv *srv, const struct lyd_node *tree)
{
	char xpath[256];

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *value;

		snprintf(xpath, sizeof(xpath), NEXSRV_XPATH "/%s", fields[i].path);
		value = tree ? nx_nb_get_string(tree, xpath) : NULL;
		if (value)
			field_set(&srv->cfg, &fields[i], value);
	}
}

/* rate-limit (either leaf) changed: the HTTP server, if it runs, takes the new values at
 * once.  Before the start the server reads them from cfg itself. */
void nexsrv_rate_limit_apply_finish(struct nx_nb_cb_args *args)
{
	struct nexsrv *srv = args->daemon;
	struct nx_err err = { "" };

	if (!srv->http)
		return;
	if (nexsrv_http_set_rate_limit(srv->http, srv->cfg.rate_limit_rps,
				       srv->cfg.rate_limit_burst, &err) < 0) {
		nx_err("rate-limit: cannot apply %u requests per second, burst %u: %s",
		       srv->cfg.rate_limit_rps, srv->cfg.rate_limit_burst, err.msg);
		return;
	}
	if (srv->cfg.rate_limit_rps)
		nx_info("rate-limit: %u requests per second, burst %u, per caller",
			srv->cfg.rate_limit_rps,
			srv->cfg.rate_limit_burst ? srv->cfg.rate_limit_burst
						  : srv->cfg.rate_limit_rps);
	else
		nx_info("rate-limit: off");
}

int nexsrv_insecure_http_create(struct nx_nb_cb_args *args)
{
	struct nexsrv *srv = args->daemon;

	if (args->event == NX_NB_EV_APPLY)
		srv->cfg.insecure_http = true;
	return 0;
}

int nexsrv_insecure_http_destroy(struct nx_nb_cb_args *args)
{
	struct nexsrv *srv = args->daemon;

	if (args->event == NX_NB_EV_APPLY)
		srv->cfg.insecure_http = false;
	return 0;
}

static int debug_set(struct nx_nb_cb_args *args, bool on)
{
	const char *value = lyd_get_value(args->dnode);
	struct nx_err err;

	if (args->event == NX_NB_EV_VALIDATE && !nx_debug_find(value)) {
		snprintf(args->errmsg, args->errmsg_len, "debug controller %s: no such subsystem",
			 value);
		return -ENOENT;
	}
	if (args->event == NX_NB_EV_APPLY)
		nx_debug_set(value, on, &err);
	return 0;
}

int nexsrv_debug_create(struct nx_nb_cb_args *args)
{
	return debug_set(args, true);
}

int nexsrv_debug_destroy(struct nx_nb_cb_args *args)
{
	return debug_set(args, false);
}
