/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd's configuration callbacks.  YANG types already refused malformed values; VALIDATE
 * here checks what the types cannot say, APPLY records the value in struct nexd_config.
 * The agent's subsystems read their configuration from there.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/strutil.h"
#include "nexd/nexd.h"

static struct nexd *nexd_of(const struct nx_nb_cb_args *args)
{
	return args->daemon;
}

static const char *value_of(const struct nx_nb_cb_args *args)
{
	return lyd_get_value(args->dnode);
}

/* Refuses a value that does not fit the fixed-size field it is applied to. */
static int validate_fits(struct nx_nb_cb_args *args, size_t size)
{
	if (strlen(value_of(args)) >= size) {
		snprintf(args->errmsg, args->errmsg_len, "%s: value longer than %zu characters",
			 args->dnode->schema->name, size - 1);
		return -EINVAL;
	}
	return 0;
}

/* Validates (size) and applies a string leaf into dst. */
static int string_leaf(struct nx_nb_cb_args *args, char *dst, size_t size)
{
	switch (args->event) {
	case NX_NB_EV_VALIDATE:
		return validate_fits(args, size);
	case NX_NB_EV_APPLY:
		nx_strlcpy(dst, value_of(args), size);
		nx_debug(&dbg_nexd_controller, "%s set", args->dnode->schema->name);
		return 0;
	default:
		return 0;
	}
}

static int string_leaf_clear(struct nx_nb_cb_args *args, char *dst)
{
	if (args->event == NX_NB_EV_APPLY)
		dst[0] = '\0';
	return 0;
}

int nexd_service_url_modify(struct nx_nb_cb_args *args)
{
	return string_leaf(args, nexd_of(args)->cfg.service_url,
			   sizeof(nexd_of(args)->cfg.service_url));
}

int nexd_service_url_destroy(struct nx_nb_cb_args *args)
{
	return string_leaf_clear(args, nexd_of(args)->cfg.service_url);
}

int nexd_vpc_id_modify(struct nx_nb_cb_args *args)
{
	return string_leaf(args, nexd_of(args)->cfg.vpc_id, sizeof(nexd_of(args)->cfg.vpc_id));
}

int nexd_vpc_id_destroy(struct nx_nb_cb_args *args)
{
	return string_leaf_clear(args, nexd_of(args)->cfg.vpc_id);
}

int nexd_reg_key_modify(struct nx_nb_cb_args *args)
{
	return string_leaf(args, nexd_of(args)->cfg.reg_key, sizeof(nexd_of(args)->cfg.reg_key));
}

int nexd_reg_key_destroy(struct nx_nb_cb_args *args)
{
	struct nexd *nexd = nexd_of(args);

	if (args->event == NX_NB_EV_APPLY)
		nx_memzero_explicit(nexd->cfg.reg_key, sizeof(nexd->cfg.reg_key));
	return 0;
}

int nexd_interface_modify(struct nx_nb_cb_args *args)
{
	return string_leaf(args, nexd_of(args)->cfg.ifname, sizeof(nexd_of(args)->cfg.ifname));
}

int nexd_listen_port_modify(struct nx_nb_cb_args *args)
{
	if (args->event == NX_NB_EV_APPLY)
		nexd_of(args)->cfg.listen_port =
			((const struct lyd_node_term *)args->dnode)->value.uint16;
	return 0;
}

int nexd_listen_port_destroy(struct nx_nb_cb_args *args)
{
	if (args->event == NX_NB_EV_APPLY)
		nexd_of(args)->cfg.listen_port = 0;
	return 0;
}

/* Maps the YANG enumeration to the backend both ways through one table. */
static const struct {
	const char *name;
	enum nexd_wg_backend backend;
} backends[] = {
	{ "auto", NEXD_WG_AUTO },
	{ "kernel", NEXD_WG_KERNEL },
	{ "uapi", NEXD_WG_UAPI },
	{ "null", NEXD_WG_NULL },
};

static int backend_from_name(const char *name, enum nexd_wg_backend *out)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		if (strcmp(backends[i].name, name) == 0) {
			*out = backends[i].backend;
			return 0;
		}
	}
	return -EINVAL;
}

int nexd_backend_modify(struct nx_nb_cb_args *args)
{
	enum nexd_wg_backend backend;

	if (backend_from_name(value_of(args), &backend) < 0) {
		snprintf(args->errmsg, args->errmsg_len, "wireguard-backend %s: not supported",
			 value_of(args));
		return -EINVAL;
	}
	if (args->event == NX_NB_EV_APPLY)
		nexd_of(args)->cfg.backend = backend;
	return 0;
}

/* The running tree starts with the model's defaults, which no callback announces. */
void nexd_config_from_tree(struct nexd *nexd, const struct lyd_node *tree)
{
	const char *ifname = nx_nb_get_string(tree, NEXD_XPATH "/interface");
	const char *backend = nx_nb_get_string(tree, NEXD_XPATH "/wireguard-backend");

	if (ifname)
		nx_strlcpy(nexd->cfg.ifname, ifname, sizeof(nexd->cfg.ifname));
	if (backend)
		backend_from_name(backend, &nexd->cfg.backend);
}

int nexd_stun_server_create(struct nx_nb_cb_args *args)
{
	struct nexd_config *cfg = &nexd_of(args)->cfg;

	if (args->event == NX_NB_EV_VALIDATE) {
		if (cfg->n_stun_servers >= NEXD_MAX_CONFIG_LIST) {
			snprintf(args->errmsg, args->errmsg_len,
				 "stun-server %s: at most %d servers", value_of(args),
				 NEXD_MAX_CONFIG_LIST);
			return -ENOSPC;
		}
		return validate_fits(args, sizeof(cfg->stun_servers[0]));
	}
	if (args->event == NX_NB_EV_APPLY && cfg->n_stun_servers < NEXD_MAX_CONFIG_LIST) {
		nx_strlcpy(cfg->stun_servers[cfg->n_stun_servers++], value_of(args),
			   sizeof(cfg->stun_servers[0]));
		nx_debug(&dbg_nexd_nat, "stun-server %s added", value_of(args));
	}
	return 0;
}

int nexd_stun_server_destroy(struct nx_nb_cb_args *args)
{
	struct nexd_config *cfg = &nexd_of(args)->cfg;

	if (args->event != NX_NB_EV_APPLY)
		return 0;
	for (size_t i = 0; i < cfg->n_stun_servers; i++) {
		if (strcmp(cfg->stun_servers[i], value_of(args)) == 0) {
			/* Keep the configured order: the first server's mapping is the one used. */
			memmove(cfg->stun_servers[i], cfg->stun_servers[i + 1],
				(cfg->n_stun_servers - i - 1) * sizeof(cfg->stun_servers[0]));
			cfg->n_stun_servers--;
			break;
		}
	}
	nx_debug(&dbg_nexd_nat, "stun-server %s removed", value_of(args));
	return 0;
}

/* libyang stores prefixes in canonical form (host bits cleared), as FRR does. */
int nexd_advertise_cidr_create(struct nx_nb_cb_args *args)
{
	struct nexd_config *cfg = &nexd_of(args)->cfg;
	struct nx_prefix p;

	if (nx_prefix_parse(value_of(args), &p, 0, NULL) < 0) {
		snprintf(args->errmsg, args->errmsg_len, "advertise-cidr %s: not a prefix",
			 value_of(args));
		return -EINVAL;
	}
	if (args->event == NX_NB_EV_VALIDATE && cfg->n_advertise >= NEXD_MAX_CONFIG_LIST) {
		snprintf(args->errmsg, args->errmsg_len,
			 "advertise-cidr %s: at most %d prefixes can be advertised", value_of(args),
			 NEXD_MAX_CONFIG_LIST);
		return -ENOSPC;
	}
	if (args->event == NX_NB_EV_APPLY && cfg->n_advertise < NEXD_MAX_CONFIG_LIST) {
		nx_prefix_normalize(&p);
		cfg->advertise[cfg->n_advertise++] = p;
		nx_debug(&dbg_nexd_peers, "advertise-cidr %s added", value_of(args));
	}
	return 0;
}

int nexd_advertise_cidr_destroy(struct nx_nb_cb_args *args)
{
	struct nexd_config *cfg = &nexd_of(args)->cfg;
	struct nx_prefix p;

	if (args->event != NX_NB_EV_APPLY || nx_prefix_parse(value_of(args), &p, 0, NULL) < 0)
		return 0;
	nx_prefix_normalize(&p);
	for (size_t i = 0; i < cfg->n_advertise; i++) {
		if (nx_prefix_cmp(&cfg->advertise[i], &p) == 0) {
			cfg->advertise[i] = cfg->advertise[--cfg->n_advertise];
			break;
		}
	}
	nx_debug(&dbg_nexd_peers, "advertise-cidr %s removed", value_of(args));
	return 0;
}

int nexd_priority_modify(struct nx_nb_cb_args *args)
{
	if (args->event == NX_NB_EV_APPLY)
		nexd_of(args)->cfg.priority =
			((const struct lyd_node_term *)args->dnode)->value.uint16;
	return 0;
}

int nexd_ca_file_modify(struct nx_nb_cb_args *args)
{
	return string_leaf(args, nexd_of(args)->cfg.ca_file, sizeof(nexd_of(args)->cfg.ca_file));
}

int nexd_ca_file_destroy(struct nx_nb_cb_args *args)
{
	return string_leaf_clear(args, nexd_of(args)->cfg.ca_file);
}

/* An empty leaf that sets or clears one flag of the configuration. */
static int flag_leaf(struct nx_nb_cb_args *args, bool *flag, bool on)
{
	if (args->event == NX_NB_EV_APPLY)
		*flag = on;
	return 0;
}

int nexd_insecure_create(struct nx_nb_cb_args *args)
{
	return flag_leaf(args, &nexd_of(args)->cfg.insecure_skip_tls_verify, true);
}

int nexd_insecure_destroy(struct nx_nb_cb_args *args)
{
	return flag_leaf(args, &nexd_of(args)->cfg.insecure_skip_tls_verify, false);
}

int nexd_flush_on_exit_create(struct nx_nb_cb_args *args)
{
	return flag_leaf(args, &nexd_of(args)->cfg.flush_on_exit, true);
}

int nexd_flush_on_exit_destroy(struct nx_nb_cb_args *args)
{
	return flag_leaf(args, &nexd_of(args)->cfg.flush_on_exit, false);
}

int nexd_relay_create(struct nx_nb_cb_args *args)
{
	return flag_leaf(args, &nexd_of(args)->cfg.relay, true);
}

int nexd_relay_destroy(struct nx_nb_cb_args *args)
{
	return flag_leaf(args, &nexd_of(args)->cfg.relay, false);
}

int nexd_exit_node_create(struct nx_nb_cb_args *args)
{
	return flag_leaf(args, &nexd_of(args)->cfg.exit_node, true);
}

int nexd_exit_node_destroy(struct nx_nb_cb_args *args)
{
	return flag_leaf(args, &nexd_of(args)->cfg.exit_node, false);
}

/* After a commit that touched the agent's configuration: the control session and the
 * dataplane act on the new values (service changed, key given, prefixes advertised...). */
void nexd_config_apply_finish(struct nx_nb_cb_args *args)
{
	nexd_ctrl_config_changed(nexd_of(args));
}

static int debug_set(struct nx_nb_cb_args *args, bool on)
{
	struct nx_err err;

	if (args->event == NX_NB_EV_VALIDATE && !nx_debug_find(value_of(args))) {
		snprintf(args->errmsg, args->errmsg_len, "debug nexodus %s: no such subsystem",
			 value_of(args));
		return -ENOENT;
	}
	if (args->event == NX_NB_EV_APPLY)
		nx_debug_set(value_of(args), on, &err);
	return 0;
}

int nexd_debug_create(struct nx_nb_cb_args *args)
{
	return debug_set(args, true);
}

int nexd_debug_destroy(struct nx_nb_cb_args *args)
{
	return debug_set(args, false);
}
