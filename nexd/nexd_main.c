/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd start-up: describes the agent to lib/daemon.c and maps its command-line flags onto
 * leaves of nexodus-agent.yang (a flag is never a second source of truth).
 */
#include "config.h"

#include <stdio.h>

#include "nexd/nexd.h"

enum {
	OPT_SERVICE_URL = 256,
	OPT_REG_KEY,
	OPT_VPC_ID,
	OPT_INTERFACE,
	OPT_WG_BACKEND,
};

static const struct option nexd_options[] = {
	{ "service-url", required_argument, NULL, OPT_SERVICE_URL },
	{ "reg-key", required_argument, NULL, OPT_REG_KEY },
	{ "vpc-id", required_argument, NULL, OPT_VPC_ID },
	{ "interface", required_argument, NULL, OPT_INTERFACE },
	{ "wg-backend", required_argument, NULL, OPT_WG_BACKEND },
	{ NULL, 0, NULL, 0 },
};

/* Flag -> leaf, one table. */
static const struct {
	int id;
	const char *xpath;
} flag_leaves[] = {
	{ OPT_SERVICE_URL, NEXD_XPATH "/service-url" },
	{ OPT_REG_KEY, NEXD_XPATH "/registration-key" },
	{ OPT_VPC_ID, NEXD_XPATH "/vpc-id" },
	{ OPT_INTERFACE, NEXD_XPATH "/interface" },
	{ OPT_WG_BACKEND, NEXD_XPATH "/wireguard-backend" },
};

static int nexd_option(struct nx_daemon *d, int id, const char *arg)
{
	for (size_t i = 0; i < sizeof(flag_leaves) / sizeof(flag_leaves[0]); i++)
		if (flag_leaves[i].id == id)
			return nx_daemon_flag_edit(d, NX_NB_OP_MODIFY, flag_leaves[i].xpath, arg);
	return -EINVAL;
}

static int nexd_init(struct nx_daemon *d, struct nx_err *err)
{
	nexd_config_from_tree(d->ctx, nx_nb_running(d->nb));
	return nexd_vty_init(d->ctx, err);
}

int main(int argc, char **argv)
{
	static const char *const modules[] = { NEXD_YANG_MODULE, NULL };
	static struct nexd nexd;
	static struct nx_daemon daemon = {
		.name = "nexd",
		.description = "The Nexodus agent: joins this device to a Nexodus VPC.",
		.yang_modules = modules,
		.yang_module = NEXD_YANG_MODULE,
		.extra_options = nexd_options,
		.extra_option = nexd_option,
		.extra_usage =
			"      --service-url URL   set service-url\n"
			"      --reg-key KEY       set registration-key\n"
			"      --vpc-id UUID       set vpc-id\n"
			"      --interface NAME    set interface\n"
			"      --wg-backend NAME   set wireguard-backend (auto, kernel, uapi)\n",
		.init = nexd_init,
		.ctx = &nexd,
	};

	daemon.nb_nodes = nexd_nb_nodes;
	daemon.n_nb_nodes = nexd_nb_nodes_count;
	nexd.daemon = &daemon;
	return nx_daemon_main(&daemon, argc, argv);
}
