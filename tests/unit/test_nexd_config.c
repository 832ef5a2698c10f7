/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd's configuration through the whole management plane, without a daemon: config text
 * is read as one transaction into nexodus-agent.yang (the real, embedded model) through
 * nexd's own commands and callbacks, rendered back, and must come out exactly as it went in.
 * Invalid values are refused with a message naming them and change nothing.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/nb_cli.h"
#include "lib/vty.h"
#include "lib/yang.h"
#include "nexd/nexd.h"

static const char config_text[] = "! nexd configuration\n"
				  "!\n"
				  "nexodus\n"
				  " service-url https://nexodus.example.com\n"
				  " vpc-id 6f1c0b1e-2a3d-4c5e-8f90-a1b2c3d4e5f6\n"
				  " registration-key RK:secret-1\n"
				  " interface nx1\n"
				  " listen-port 51820\n"
				  " wireguard-backend kernel\n"
				  " stun-server stun.example.net:3478\n"
				  " stun-server 192.0.2.1:3478\n"
				  " advertise-cidr 10.99.0.0/24\n"
				  " advertise-cidr 2001:db8:99::/48\n"
				  " relay\n"
				  " exit-node\n"
				  "exit\n"
				  "!\n"
				  "debug nexodus nat\n"
				  "!\n"
				  "end\n";

struct fixture {
	struct nx_daemon daemon;
	struct nexd nexd;
	char path[64];
};

static int setup(void **state)
{
	static const char *const modules[] = { NEXD_YANG_MODULE, NULL };
	struct fixture *f = calloc(1, sizeof(*f));
	struct nx_err err = { "" };

	f->daemon.ctx = &f->nexd;
	f->nexd.daemon = &f->daemon;
	f->daemon.tree = nx_cmd_tree_new();
	f->daemon.nb = nx_nb_new(&(struct nx_nb_config){ .embedded = nx_yang_embedded_modules,
							 .modules = modules,
							 .module = NEXD_YANG_MODULE,
							 .nodes = nexd_nb_nodes,
							 .n_nodes = nexd_nb_nodes_count,
							 .daemon = &f->nexd },
				 &err);
	assert_non_null(f->daemon.nb);
	nexd_config_from_tree(&f->nexd, nx_nb_running(f->daemon.nb));
	assert_int_equal(nexd_vty_init(&f->nexd, &err), 0);
	assert_int_equal(
		nx_nb_cli_init(f->daemon.tree,
			       &(struct nx_nb_cli_config){ .nb = f->daemon.nb, .daemon = "nexd" }),
		0);
	assert_int_equal(nx_vty_install_basic_commands(f->daemon.tree, "nexd"), 0);
	snprintf(f->path, sizeof(f->path), "/tmp/test_nexd_config.%ld", (long)getpid());
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	nx_nb_free(f->daemon.nb);
	nx_cmd_tree_free(f->daemon.tree);
	free(f);
	return 0;
}

static int load(struct fixture *f, const char *text, struct nx_err *err)
{
	FILE *fp = fopen(f->path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	return nx_nb_cli_read_config(f->daemon.tree, &f->nexd, f->path, err);
}

static char *render(struct fixture *f, unsigned flags)
{
	struct nx_sbuf buf;
	char *s;

	nx_sbuf_init(&buf, NULL, 0);
	nx_nb_cli_render_file(nx_nb_running(f->daemon.nb), flags, &buf);
	s = strdup(nx_sbuf_str(&buf));
	nx_sbuf_fini(&buf);
	return s;
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct nx_err err = { "" };
	char *text;

	assert_int_equal(load(f, config_text, &err), 0);
	text = render(f, NX_NB_SHOW_SECRETS);
	assert_string_equal(text, config_text);
	free(text);

	/* Without the flag the secret is masked, and nothing else changes. */
	text = render(f, 0);
	assert_non_null(strstr(text, " registration-key ********\n"));
	assert_null(strstr(text, "secret-1"));
	free(text);

	/* The callbacks applied it. */
	assert_string_equal(f->nexd.cfg.service_url, "https://nexodus.example.com");
	assert_string_equal(f->nexd.cfg.ifname, "nx1");
	assert_int_equal(f->nexd.cfg.listen_port, 51820);
	assert_int_equal(f->nexd.cfg.backend, NEXD_WG_KERNEL);
	assert_true(f->nexd.cfg.relay && f->nexd.cfg.exit_node);
	assert_true(nx_debug_find("nat")->on);
}

/* One line in an interactive session at the nexodus node. */
static int configure(struct fixture *f, const char *line, char **out)
{
	struct nx_vty vty;
	int status;

	nx_vty_init(&vty, NX_VTY_BUFFER, f->daemon.tree, &f->nexd, NX_NODE_VIEW);
	assert_int_equal(nx_vty_execute(&vty, "configure terminal"), NX_CMD_SUCCESS);
	assert_int_equal(nx_vty_execute(&vty, "nexodus"), NX_CMD_SUCCESS);
	nx_sbuf_reset(&vty.out);
	status = nx_vty_execute(&vty, line);
	*out = strdup(nx_sbuf_str(&vty.out) ? nx_sbuf_str(&vty.out) : "");
	nx_vty_fini(&vty);
	return status;
}

static void test_invalid_values(void **state)
{
	static const struct {
		const char *line, *value;
	} bad[] = {
		{ "advertise-cidr 10.0.0.0/33", "10.0.0.0/33" },
		{ "advertise-cidr 2001:db8::/129", "2001:db8::/129" },
		{ "vpc-id 1234", "1234" },
		{ "listen-port 0", "\"0\"" },
		{ "wireguard-backend foo", "foo" },
		{ "interface name-too-long-for-linux", "name-too-long-for-linux" },
		{ "stun-server nohostport", "nohostport" },
		{ "service-url ftp://x", "ftp://x" },
	};
	struct fixture *f = *state;
	struct nx_err err = { "" };
	char *before, *after, *out;

	assert_int_equal(load(f, config_text, &err), 0);
	before = render(f, NX_NB_SHOW_SECRETS);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(configure(f, bad[i].line, &out), NX_CMD_WARNING);
		if (!strstr(out, bad[i].value))
			fail_msg("\"%s\": message does not name %s: %s", bad[i].line, bad[i].value,
				 out);
		free(out);
		after = render(f, NX_NB_SHOW_SECRETS);
		assert_string_equal(after, before);
		free(after);
	}
	free(before);
}

static void test_file_errors_name_the_line(void **state)
{
	struct fixture *f = *state;
	struct nx_err err = { "" };
	char where[96];

	assert_int_equal(load(f, "nexodus\n relay\n listen-port 0\nexit\n", &err), -EINVAL);
	snprintf(where, sizeof(where), "%s:3:", f->path);
	assert_non_null(strstr(err.msg, where));
	assert_null(nx_nb_get_string(nx_nb_running(f->daemon.nb), NEXD_XPATH "/relay"));
	assert_false(f->nexd.cfg.relay);
}

static void test_no_forms(void **state)
{
	struct fixture *f = *state;
	struct nx_err err = { "" };
	char *out, *text;

	assert_int_equal(load(f, config_text, &err), 0);
	static const char *const lines[] = {
		"no service-url",
		"no vpc-id",
		"no registration-key",
		"no interface",
		"no listen-port",
		"no wireguard-backend",
		"no stun-server stun.example.net:3478",
		"no stun-server 192.0.2.1:3478",
		"no advertise-cidr 10.99.0.0/24",
		"no advertise-cidr 2001:db8:99::/48",
		"no relay",
		"no exit-node",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		assert_int_equal(configure(f, lines[i], &out), NX_CMD_SUCCESS);
		free(out);
	}
	text = render(f, NX_NB_SHOW_SECRETS);
	assert_string_equal(text, "! nexd configuration\n!\ndebug nexodus nat\n!\nend\n");
	free(text);
	assert_string_equal(f->nexd.cfg.ifname, "nexodus0"); /* back to the default */
	assert_int_equal(f->nexd.cfg.backend, NEXD_WG_AUTO);
	assert_false(f->nexd.cfg.relay);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_errors_name_the_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_forms, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
