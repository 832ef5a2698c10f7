/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd start-up: describes the agent to lib/daemon.c and maps its command-line flags onto
 * leaves of nexodus-agent.yang (a flag is never a second source of truth).
 */
#include "config.h"

#include <stdio.h>

#include "lib/strutil.h"
#include "nexd/nexd.h"

enum {
	OPT_SERVICE_URL = 256,
	OPT_REG_KEY,
	OPT_VPC_ID,
	OPT_INTERFACE,
	OPT_LISTEN_PORT,
	OPT_WG_BACKEND,
	OPT_STUN_SERVER,
	OPT_ADVERTISE_CIDR,
	OPT_RELAY,
	OPT_CA_FILE,
	OPT_INSECURE,
	OPT_FLUSH_ON_EXIT,
};

static const struct option nexd_options[] = {
	{ "service-url", required_argument, NULL, OPT_SERVICE_URL },
	{ "reg-key", required_argument, NULL, OPT_REG_KEY },
	{ "vpc-id", required_argument, NULL, OPT_VPC_ID },
	{ "interface", required_argument, NULL, OPT_INTERFACE },
	{ "listen-port", required_argument, NULL, OPT_LISTEN_PORT },
	{ "wg-backend", required_argument, NULL, OPT_WG_BACKEND },
	{ "stun-server", required_argument, NULL, OPT_STUN_SERVER },
	{ "advertise-cidr", required_argument, NULL, OPT_ADVERTISE_CIDR },
	{ "relay", no_argument, NULL, OPT_RELAY },
	{ "ca-file", required_argument, NULL, OPT_CA_FILE },
	{ "insecure-skip-tls-verify", no_argument, NULL, OPT_INSECURE },
	{ "flush-on-exit", no_argument, NULL, OPT_FLUSH_ON_EXIT },
	{ NULL, 0, NULL, 0 },
};

/* Flag -> leaf, one table.  A leaf-list flag adds one entry each time it is given; a flag
 * without argument creates an empty leaf. */
static const struct {
	int id;
	const char *xpath;
	bool list;
} flag_leaves[] = {
	{ OPT_SERVICE_URL, NEXD_XPATH "/service-url", false },
	{ OPT_REG_KEY, NEXD_XPATH "/registration-key", false },
	{ OPT_VPC_ID, NEXD_XPATH "/vpc-id", false },
	{ OPT_INTERFACE, NEXD_XPATH "/interface", false },
	{ OPT_LISTEN_PORT, NEXD_XPATH "/listen-port", false },
	{ OPT_WG_BACKEND, NEXD_XPATH "/wireguard-backend", false },
	{ OPT_STUN_SERVER, NEXD_XPATH "/stun-server", true },
	{ OPT_ADVERTISE_CIDR, NEXD_XPATH "/advertise-cidr", true },
	{ OPT_RELAY, NEXD_XPATH "/relay", false },
	{ OPT_CA_FILE, NEXD_XPATH "/ca-file", false },
	{ OPT_INSECURE, NEXD_XPATH "/insecure-skip-tls-verify", false },
	{ OPT_FLUSH_ON_EXIT, NEXD_XPATH "/flush-on-exit", false },
};

static int nexd_option(struct nx_daemon *d, int id, const char *arg)
{
	for (size_t i = 0; i < sizeof(flag_leaves) / sizeof(flag_leaves[0]); i++) {
		if (flag_leaves[i].id != id)
			continue;
		return nx_daemon_flag_edit(
			d, flag_leaves[i].list || !arg ? NX_NB_OP_CREATE : NX_NB_OP_MODIFY,
			flag_leaves[i].xpath, arg);
	}
	return -EINVAL;
}

static int nexd_init(struct nx_daemon *d, struct nx_err *err)
{
	struct nexd *nexd = d->ctx;
	int rc;

	nexd_config_from_tree(nexd, nx_nb_running(d->nb));
	rc = nexd_vty_init(nexd, err);
	if (rc == 0)
		rc = nexd_show_init(nexd, err);
	return rc;
}

/* After the configuration is committed: the key, the dataplane of an enrolled device (it
 * keeps forwarding before the controller answers), then the control session. */
static int nexd_start(struct nx_daemon *d, struct nx_err *err)
{
	struct nexd *nexd = d->ctx;
	int rc;

	rc = nexd_ctrl_new(nexd, err);
	if (rc < 0)
		return rc;
	nexd_ctrl_config_changed(nexd);
	return 0;
}

static void nexd_stop(struct nx_daemon *d)
{
	struct nexd *nexd = d->ctx;

	nexd_ctrl_free(nexd);
	nexd_dplane_down(nexd);
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
			"      --service-url URL          set service-url\n"
			"      --reg-key KEY              set registration-key (RK:... or "
			"URL#RK:...)\n"
			"      --vpc-id UUID              set vpc-id\n"
			"      --interface NAME           set interface\n"
			"      --listen-port N            set listen-port\n"
			"      --wg-backend NAME          set wireguard-backend (auto, kernel, "
			"uapi; null for benchmarks)\n"
			"      --stun-server HOST:PORT    add a stun-server (repeatable)\n"
			"      --advertise-cidr PREFIX    add an advertise-cidr (repeatable)\n"
			"      --relay                    set relay\n"
			"      --ca-file FILE             set ca-file\n"
			"      --insecure-skip-tls-verify set insecure-skip-tls-verify (tests "
			"only)\n"
			"      --flush-on-exit            set flush-on-exit\n",
		.init = nexd_init,
		.start = nexd_start,
		.stop = nexd_stop,
		.ctx = &nexd,
	};

	daemon.nb_nodes = nexd_nb_nodes;
	daemon.n_nb_nodes = nexd_nb_nodes_count;
	nexd.daemon = &daemon;
	return nx_daemon_main(&daemon, argc, argv);
}
