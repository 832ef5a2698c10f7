/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lib/command: the command tree nexd's CLI runs on.  A realistic command set
 * (nexd's configuration CLI plus the usual show/configure/rollback commands) is matched,
 * described and completed; every class of bad syntax must be refused at install with a
 * message, and every bad line with the right status and message.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/command.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum {
	NODE_NEXODUS = NX_NODE_DAEMON,
	NODE_PEER,
};

static int handler(struct nx_vty *vty, int argc, const struct nx_cmd_arg *argv)
{
	(void)vty;
	(void)argc;
	(void)argv;
	return NX_CMD_SUCCESS;
}

#define CMD(var, syn, hlp) \
	static const struct nx_cmd var = { .syntax = syn, .help = hlp, .fn = handler }

/* the handler macro daemons use: it must define a usable command */
NX_DEFUN(show_version, "show version", "Show running system information\nVersion\n")
{
	return NX_CMD_SUCCESS;
}

/* VIEW */
CMD(configure, "configure [terminal]", "Enter configuration mode\nFrom the terminal\n");
CMD(show_run, "show running-config [json]",
    "Show running system information\nCurrent configuration\nJSON output\n");
CMD(show_peers, "show nexodus peers [json]",
    "Show running system information\nNexodus agent\nPeers\nJSON output\n");
CMD(rollback, "rollback configuration (1-20)$id",
    "Roll back\nConfiguration\nTransaction to roll back to\n");
CMD(write_mem, "write memory", "Write configuration\nTo the startup file\n");
CMD(echo, "echo LINE$text", "Print text\nText to print\n");
CMD(quit, "quit", "Leave the CLI\n");
static const struct nx_cmd dump = {
	.syntax = "dump internals",
	.help = "Dump\nInternal state\n",
	.fn = handler,
	.flags = NX_CMD_HIDDEN,
};

/* CONFIG */
CMD(nexodus, "nexodus", "Nexodus agent configuration\n");
CMD(debug, "[no] debug nexodus <controller|dataplane|peers|nat>$what",
    "Negate a command\nDebugging\nNexodus agent\nController\nDataplane\nPeers\nNAT traversal\n");
CMD(end, "end", "End configuration\n");
CMD(config_exit, "exit", "Leave configuration mode\n");

/* NEXODUS */
CMD(service_url, "service-url URL$url", "Controller URL\nURL\n");
CMD(no_service_url, "no service-url [URL]", "Negate a command\nController URL\nURL\n");
CMD(vpc_id, "vpc-id UUID$id", "VPC\nVPC ID\n");
CMD(no_vpc_id, "no vpc-id [UUID]", "Negate a command\nVPC\nVPC ID\n");
CMD(reg_key, "registration-key KEY$key", "Registration key\nKey\n");
CMD(no_reg_key, "no registration-key [KEY]", "Negate a command\nRegistration key\nKey\n");
CMD(interface, "interface IFNAME$ifname", "WireGuard interface\nInterface name\n");
CMD(no_interface, "no interface [IFNAME]", "Negate a command\nWireGuard interface\nName\n");
CMD(listen_port, "listen-port (1-65535)$port", "WireGuard listen port\nUDP port\n");
CMD(no_listen_port, "no listen-port [(1-65535)]", "Negate a command\nListen port\nUDP port\n");
CMD(backend, "wireguard-backend <auto|kernel|uapi>$backend",
    "WireGuard backend\nPick one\nKernel module\nUserspace (UAPI socket)\n");
CMD(no_backend, "no wireguard-backend [<auto|kernel|uapi>]",
    "Negate a command\nWireGuard backend\nPick one\nKernel module\nUserspace\n");
CMD(stun, "[no] stun-server HOST:PORT$server", "Negate a command\nSTUN server\nHost and port\n");
CMD(cidr, "[no] advertise-cidr <A.B.C.D/M|X:X::X:X/M>$prefix",
    "Negate a command\nAdvertise a prefix\nIPv4 prefix\nIPv6 prefix\n");
CMD(relay, "[no] relay", "Negate a command\nAct as a relay\n");
CMD(exit_node, "[no] exit-node", "Negate a command\nAct as an exit node\n");
CMD(nexodus_exit, "exit", "Leave the nexodus node\n");
CMD(description, "description LINE$text", "Description\nFree text\n");
CMD(peer, "peer WORD$name", "Static peer\nPeer name\n");

/* PEER */
CMD(allowed_ip, "allowed-ip <A.B.C.D|X:X::X:X>$ip", "Allowed address\nIPv4\nIPv6\n");

/* clang-format off */
static const struct {
	int node;
	const struct nx_cmd *cmd;
} command_set[] = {
	{ NX_NODE_VIEW, &configure },
	{ NX_NODE_VIEW, &show_run },
	{ NX_NODE_VIEW, &show_peers },
	{ NX_NODE_VIEW, &show_version },
	{ NX_NODE_VIEW, &rollback },
	{ NX_NODE_VIEW, &write_mem },
	{ NX_NODE_VIEW, &echo },
	{ NX_NODE_VIEW, &quit },
	{ NX_NODE_VIEW, &dump },
	{ NX_NODE_CONFIG, &nexodus },
	{ NX_NODE_CONFIG, &debug },
	{ NX_NODE_CONFIG, &end },
	{ NX_NODE_CONFIG, &config_exit },
	{ NODE_NEXODUS, &service_url },
	{ NODE_NEXODUS, &no_service_url },
	{ NODE_NEXODUS, &vpc_id },
	{ NODE_NEXODUS, &no_vpc_id },
	{ NODE_NEXODUS, &reg_key },
	{ NODE_NEXODUS, &no_reg_key },
	{ NODE_NEXODUS, &interface },
	{ NODE_NEXODUS, &no_interface },
	{ NODE_NEXODUS, &listen_port },
	{ NODE_NEXODUS, &no_listen_port },
	{ NODE_NEXODUS, &backend },
	{ NODE_NEXODUS, &no_backend },
	{ NODE_NEXODUS, &stun },
	{ NODE_NEXODUS, &cidr },
	{ NODE_NEXODUS, &relay },
	{ NODE_NEXODUS, &exit_node },
	{ NODE_NEXODUS, &nexodus_exit },
	{ NODE_NEXODUS, &description },
	{ NODE_NEXODUS, &peer },
	{ NODE_PEER, &allowed_ip },
};
/* clang-format on */

static const struct nx_cmd_node nexodus_node = {
	.id = NODE_NEXODUS,
	.name = "nexodus",
	.prompt = "%s(config-nexodus)# ",
	.parent = NX_NODE_CONFIG,
};

static const struct nx_cmd_node peer_node = {
	.id = NODE_PEER,
	.name = "peer",
	.prompt = "%s(config-nexodus-peer)# ",
	.parent = NODE_NEXODUS,
};

static int setup_tree(void **state)
{
	struct nx_cmd_tree *tree = nx_cmd_tree_new();
	struct nx_err err;
	size_t i;

	if (!tree)
		return -1;
	if (nx_cmd_node_install(tree, &nexodus_node) != 0 ||
	    nx_cmd_node_install(tree, &peer_node) != 0) {
		nx_cmd_tree_free(tree);
		return -1;
	}
	for (i = 0; i < ARRAY_SIZE(command_set); i++) {
		if (nx_cmd_install(tree, command_set[i].node, command_set[i].cmd, &err) != 0) {
			fprintf(stderr, "install \"%s\": %s\n", command_set[i].cmd->syntax,
				err.msg);
			nx_cmd_tree_free(tree);
			return -1;
		}
	}
	*state = tree;
	return 0;
}

static int teardown_tree(void **state)
{
	nx_cmd_tree_free(*state);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */

static struct nx_cmd_match match_buf;

/* Matches and checks status and, for errors, a substring of the message. */
static struct nx_cmd_match *expect_status(const struct nx_cmd_tree *tree, int node,
					  const char *line, int status, const char *want)
{
	struct nx_err err;
	int rc;

	memset(&err, 0x5a, sizeof(err));
	memset(&match_buf, 0x5a, sizeof(match_buf));
	rc = nx_cmd_match(tree, node, line, &match_buf, &err);
	if (rc != status ||
	    (status != NX_CMD_SUCCESS && (err.msg[0] == '\0' || !want || !strstr(err.msg, want))) ||
	    (status == NX_CMD_SUCCESS && err.msg[0] != '\0')) {
		print_error("node %d line \"%s\": rc=%d (want %d) msg=\"%s\" (want \"%s\")\n", node,
			    line, rc, status, err.msg, want ? want : "");
		fail();
	}
	return &match_buf;
}

/* Matches, expecting `cmd` at node `at`. */
static struct nx_cmd_match *expect_cmd(const struct nx_cmd_tree *tree, int node, const char *line,
				       const struct nx_cmd *cmd, int at)
{
	struct nx_cmd_match *m = expect_status(tree, node, line, NX_CMD_SUCCESS, NULL);

	if (m->cmd != cmd || m->node != at) {
		print_error("node %d line \"%s\": matched \"%s\" at node %d, want \"%s\" at %d\n",
			    node, line, m->cmd ? m->cmd->syntax : "(none)", m->node, cmd->syntax,
			    at);
		fail();
	}
	return m;
}

static void expect_arg(const struct nx_cmd_match *m, const char *name, const char *want)
{
	const char *got = nx_cmd_arg_get(m->argc, m->argv, name);

	if (!want) {
		if (got) {
			print_error("argument %s: \"%s\", want none\n", name, got);
			fail();
		}
		return;
	}
	if (!got || strcmp(got, want) != 0) {
		print_error("argument %s: \"%s\", want \"%s\"\n", name, got ? got : "(null)", want);
		fail();
	}
}

/* Runs describe (or complete) and compares the candidates' texts with a space-separated
 * list. */
static void expect_cands(const struct nx_cmd_tree *tree, int node, const char *line, bool tab,
			 const char *want)
{
	struct nx_cmd_candidate c[64];
	char got[1024] = "";
	int n, i;

	n = tab ? nx_cmd_complete(tree, node, line, c, ARRAY_SIZE(c))
		: nx_cmd_describe(tree, node, line, c, ARRAY_SIZE(c));
	if (n < 0) {
		print_error("%s \"%s\": rc=%d\n", tab ? "complete" : "describe", line, n);
		fail();
	}
	for (i = 0; i < n && i < (int)ARRAY_SIZE(c); i++) {
		if (i)
			strncat(got, " ", sizeof(got) - strlen(got) - 1);
		strncat(got, c[i].text, sizeof(got) - strlen(got) - 1);
	}
	if (strcmp(got, want) != 0) {
		print_error("%s at node %d \"%s\": got \"%s\", want \"%s\"\n",
			    tab ? "complete" : "describe", node, line, got, want);
		fail();
	}
}

static const char *cand_help(const struct nx_cmd_tree *tree, int node, const char *line,
			     const char *text)
{
	static struct nx_cmd_candidate c[64];
	int n, i;

	n = nx_cmd_describe(tree, node, line, c, ARRAY_SIZE(c));
	for (i = 0; i < n && i < (int)ARRAY_SIZE(c); i++)
		if (strcmp(c[i].text, text) == 0)
			return c[i].help;
	return NULL;
}

static void expect_install_bad(const char *syntax, const char *help, int code, const char *want)
{
	struct nx_cmd_tree *tree = nx_cmd_tree_new();
	struct nx_cmd cmd = { .syntax = syntax, .help = help, .fn = handler };
	struct nx_err err;
	int rc;

	assert_non_null(tree);
	memset(&err, 0, sizeof(err));
	rc = nx_cmd_install(tree, NX_NODE_CONFIG, &cmd, &err);
	if (rc != -code || err.msg[0] == '\0' || !strstr(err.msg, want)) {
		print_error("install \"%s\": rc=%d (want %d) msg=\"%s\" (want \"%s\")\n", syntax,
			    rc, -code, err.msg, want);
		fail();
	}
	nx_cmd_tree_free(tree);
}

/* ------------------------------------------------------------------------------------------ */

static void test_nodes(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct nx_cmd_node n = { .id = 42, .name = "x", .prompt = "%s(x)# ", .parent = 77 };
	const struct nx_cmd_node *got;

	got = nx_cmd_node_get(tree, NX_NODE_VIEW);
	assert_non_null(got);
	assert_string_equal(got->name, "view");
	assert_int_equal(got->parent, -1);
	got = nx_cmd_node_get(tree, NX_NODE_CONFIG);
	assert_non_null(got);
	assert_int_equal(got->parent, -1);
	got = nx_cmd_node_get(tree, NODE_NEXODUS);
	assert_non_null(got);
	assert_string_equal(got->prompt, "%s(config-nexodus)# ");
	assert_int_equal(got->parent, NX_NODE_CONFIG);
	assert_null(nx_cmd_node_get(tree, 1234));

	assert_int_equal(nx_cmd_node_install(tree, &nexodus_node), -EEXIST);
	assert_int_equal(nx_cmd_node_install(tree, &n), -EINVAL); /* parent 77 unknown */
	n.parent = NX_NODE_CONFIG;
	n.prompt = "%s %d# ";
	assert_int_equal(nx_cmd_node_install(tree, &n), -EINVAL); /* not one %s */
	n.prompt = "(x)# ";
	assert_int_equal(nx_cmd_node_install(tree, &n), -EINVAL);
	n.prompt = "%s(x)# ";
	n.name = NULL;
	assert_int_equal(nx_cmd_node_install(tree, &n), -EINVAL);
	n.name = "x";
	n.id = -3;
	assert_int_equal(nx_cmd_node_install(tree, &n), -EINVAL);
	assert_null(nx_cmd_node_get(tree, 42));
}

static void test_node_depth(void **state)
{
	struct nx_cmd_tree *tree = *state;

	assert_int_equal(nx_cmd_node_depth(tree, NX_NODE_VIEW), 0);
	assert_int_equal(nx_cmd_node_depth(tree, NX_NODE_CONFIG), 0);
	assert_int_equal(nx_cmd_node_depth(tree, NODE_NEXODUS), 1);
	assert_int_equal(nx_cmd_node_depth(tree, NODE_PEER), 2);
	assert_int_equal(nx_cmd_node_depth(tree, 999), -EINVAL);
}

static void test_exact_and_abbreviated(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct nx_cmd_match *m;

	m = expect_cmd(tree, NX_NODE_VIEW, "configure terminal", &configure, NX_NODE_VIEW);
	assert_int_equal(m->argc, 2);
	assert_int_equal(m->argv[0].type, NX_TOK_KEYWORD);
	assert_string_equal(m->argv[0].text, "configure");
	assert_string_equal(m->argv[1].name, "terminal");

	/* abbreviations give the whole keyword as the argument text */
	m = expect_cmd(tree, NX_NODE_VIEW, "conf t", &configure, NX_NODE_VIEW);
	assert_string_equal(m->argv[0].text, "configure");
	assert_string_equal(m->argv[1].text, "terminal");
	expect_cmd(tree, NX_NODE_VIEW, "configure", &configure, NX_NODE_VIEW);
	expect_cmd(tree, NX_NODE_VIEW, "  \tc  \r\n", &configure, NX_NODE_VIEW);

	m = expect_cmd(tree, NX_NODE_VIEW, "sh run", &show_run, NX_NODE_VIEW);
	assert_false(nx_cmd_arg_has(m->argc, m->argv, "json"));
	m = expect_cmd(tree, NX_NODE_VIEW, "sh ru j", &show_run, NX_NODE_VIEW);
	assert_true(nx_cmd_arg_has(m->argc, m->argv, "json"));
	m = expect_cmd(tree, NX_NODE_VIEW, "show nexodus peers json", &show_peers, NX_NODE_VIEW);
	assert_int_equal(m->argc, 4);
	expect_cmd(tree, NX_NODE_VIEW, "sh n p", &show_peers, NX_NODE_VIEW);
	expect_cmd(tree, NX_NODE_VIEW, "sh ver", &show_version, NX_NODE_VIEW);
	expect_cmd(tree, NX_NODE_VIEW, "w m", &write_mem, NX_NODE_VIEW);

	/* an exact keyword beats an abbreviation of a longer one */
	expect_cmd(tree, NODE_NEXODUS, "exit", &nexodus_exit, NODE_NEXODUS);
	expect_cmd(tree, NODE_NEXODUS, "exit-n", &exit_node, NODE_NEXODUS);

	/* hidden commands still run */
	expect_cmd(tree, NX_NODE_VIEW, "dump internals", &dump, NX_NODE_VIEW);
}

static void test_arguments_and_alternatives(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct nx_cmd_match *m;

	m = expect_cmd(tree, NODE_NEXODUS, "service-url https://try.nexodus.io", &service_url,
		       NODE_NEXODUS);
	expect_arg(m, "url", "https://try.nexodus.io");
	assert_int_equal(m->argv[1].type, NX_TOK_WORD);
	expect_arg(m, "URL", NULL); /* named: the token text is no longer its name */

	m = expect_cmd(tree, NODE_NEXODUS, "vpc-id 5e0c2ad6-0bd6-4aaf-8d5b-3f5e4b1c9a11", &vpc_id,
		       NODE_NEXODUS);
	expect_arg(m, "id", "5e0c2ad6-0bd6-4aaf-8d5b-3f5e4b1c9a11");

	m = expect_cmd(tree, NODE_NEXODUS, "listen-port 51820", &listen_port, NODE_NEXODUS);
	expect_arg(m, "port", "51820");
	assert_int_equal(m->argv[1].type, NX_TOK_RANGE);
	/* shape only: the value is checked where the user gets a message naming it */
	m = expect_cmd(tree, NODE_NEXODUS, "listen-port 0", &listen_port, NODE_NEXODUS);
	expect_arg(m, "port", "0");
	expect_status(tree, NODE_NEXODUS, "listen-port abc", NX_CMD_ERR_NO_MATCH,
		      "% Unknown command: listen-port abc");

	/* an alternative group's name applies to whichever alternative matched */
	m = expect_cmd(tree, NODE_NEXODUS, "wireguard-backend kernel", &backend, NODE_NEXODUS);
	expect_arg(m, "backend", "kernel");
	assert_true(nx_cmd_arg_has(m->argc, m->argv, "kernel"));
	assert_false(nx_cmd_arg_has(m->argc, m->argv, "uapi"));
	m = expect_cmd(tree, NODE_NEXODUS, "wi u", &backend, NODE_NEXODUS);
	expect_arg(m, "backend", "uapi");
	expect_status(tree, NODE_NEXODUS, "wireguard-backend bogus", NX_CMD_ERR_NO_MATCH,
		      "Unknown command");

	m = expect_cmd(tree, NODE_NEXODUS, "advertise-cidr 10.0.0.0/8", &cidr, NODE_NEXODUS);
	expect_arg(m, "prefix", "10.0.0.0/8");
	assert_int_equal(m->argv[1].type, NX_TOK_IPV4_PREFIX);
	m = expect_cmd(tree, NODE_NEXODUS, "advertise-cidr fd00:aa::/64", &cidr, NODE_NEXODUS);
	expect_arg(m, "prefix", "fd00:aa::/64");
	assert_int_equal(m->argv[1].type, NX_TOK_IPV6_PREFIX);
	m = expect_cmd(tree, NODE_NEXODUS, "advertise-cidr 10.0.0.0/33", &cidr, NODE_NEXODUS);
	expect_arg(m, "prefix", "10.0.0.0/33");
	expect_status(tree, NODE_NEXODUS, "advertise-cidr 10.0.0.0", NX_CMD_ERR_NO_MATCH,
		      "Unknown command");
	expect_status(tree, NODE_NEXODUS, "advertise-cidr 10.0.0.0/8/8", NX_CMD_ERR_NO_MATCH,
		      "Unknown command");
	expect_status(tree, NODE_NEXODUS, "advertise-cidr fz00::/8", NX_CMD_ERR_NO_MATCH,
		      "Unknown command");

	m = expect_cmd(tree, NODE_PEER, "allowed-ip 192.0.2.1", &allowed_ip, NODE_PEER);
	assert_int_equal(m->argv[1].type, NX_TOK_IPV4);
	expect_arg(m, "ip", "192.0.2.1");
	m = expect_cmd(tree, NODE_PEER, "allowed-ip 2001:db8::1", &allowed_ip, NODE_PEER);
	assert_int_equal(m->argv[1].type, NX_TOK_IPV6);
	expect_status(tree, NODE_PEER, "allowed-ip 5", NX_CMD_ERR_NO_MATCH, "Unknown command");
	expect_status(tree, NODE_PEER, "allowed-ip 10.0.0.0/8", NX_CMD_ERR_NO_MATCH, "Unknown");

	m = expect_cmd(tree, NODE_NEXODUS, "stun-server stun.l.google.com:19302", &stun,
		       NODE_NEXODUS);
	expect_arg(m, "server", "stun.l.google.com:19302");

	m = expect_cmd(tree, NX_NODE_VIEW, "rollback configuration 7", &rollback, NX_NODE_VIEW);
	expect_arg(m, "id", "7");
	expect_cmd(tree, NX_NODE_VIEW, "rollback configuration 99", &rollback, NX_NODE_VIEW);
}

static void test_optional_and_no(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct nx_cmd_match *m;

	m = expect_cmd(tree, NODE_NEXODUS, "no relay", &relay, NODE_NEXODUS);
	assert_true(nx_cmd_arg_has(m->argc, m->argv, "no"));
	m = expect_cmd(tree, NODE_NEXODUS, "relay", &relay, NODE_NEXODUS);
	assert_false(nx_cmd_arg_has(m->argc, m->argv, "no"));
	assert_int_equal(m->argc, 1);

	m = expect_cmd(tree, NODE_NEXODUS, "no service-url", &no_service_url, NODE_NEXODUS);
	expect_arg(m, "URL", NULL);
	m = expect_cmd(tree, NODE_NEXODUS, "no service-url https://x", &no_service_url,
		       NODE_NEXODUS);
	expect_arg(m, "URL", "https://x"); /* unnamed variable: named by its token text */

	m = expect_cmd(tree, NODE_NEXODUS, "no listen-port", &no_listen_port, NODE_NEXODUS);
	assert_int_equal(m->argc, 2);
	m = expect_cmd(tree, NODE_NEXODUS, "no listen-port 51820", &no_listen_port, NODE_NEXODUS);
	expect_arg(m, "(1-65535)", "51820");
	expect_cmd(tree, NODE_NEXODUS, "no wireguard-backend", &no_backend, NODE_NEXODUS);
	expect_cmd(tree, NODE_NEXODUS, "no wireguard-backend auto", &no_backend, NODE_NEXODUS);
	m = expect_cmd(tree, NODE_NEXODUS, "no advertise-cidr 10.1.0.0/16", &cidr, NODE_NEXODUS);
	assert_true(nx_cmd_arg_has(m->argc, m->argv, "no"));
	expect_arg(m, "prefix", "10.1.0.0/16");
	m = expect_cmd(tree, NODE_NEXODUS, "no stun-server a:1", &stun, NODE_NEXODUS);
	expect_arg(m, "server", "a:1");

	m = expect_cmd(tree, NX_NODE_CONFIG, "no debug nexodus nat", &debug, NX_NODE_CONFIG);
	assert_true(nx_cmd_arg_has(m->argc, m->argv, "no"));
	expect_arg(m, "what", "nat");
	m = expect_cmd(tree, NX_NODE_CONFIG, "deb nex p", &debug, NX_NODE_CONFIG);
	assert_false(nx_cmd_arg_has(m->argc, m->argv, "no"));
	expect_arg(m, "what", "peers");
}

static void test_errors(void **state)
{
	struct nx_cmd_tree *tree = *state;

	/* several commands fit equally well */
	expect_status(tree, NODE_NEXODUS, "e", NX_CMD_ERR_AMBIGUOUS, "% Ambiguous command: e");
	expect_status(tree, NODE_NEXODUS, "ex", NX_CMD_ERR_AMBIGUOUS, "exit-node");
	expect_status(tree, NODE_NEXODUS, "s stun:3478", NX_CMD_ERR_AMBIGUOUS,
		      "(could be: service-url URL; stun-server HOST:PORT)");
	expect_status(tree, NX_NODE_VIEW, "show running-config j x", NX_CMD_ERR_NO_MATCH,
		      "% Unknown command: show running-config j x");
	expect_status(tree, NX_NODE_CONFIG, "debug nexodus p", NX_CMD_SUCCESS, NULL);
	expect_status(tree, NODE_NEXODUS, "no wireguard-backend k", NX_CMD_SUCCESS, NULL);

	/* a prefix of a command */
	expect_status(tree, NX_NODE_VIEW, "show", NX_CMD_ERR_INCOMPLETE,
		      "% Command incomplete: show");
	expect_status(tree, NX_NODE_VIEW, "  sh   nexodus  ", NX_CMD_ERR_INCOMPLETE,
		      "% Command incomplete: sh   nexodus");
	expect_status(tree, NODE_NEXODUS, "service-url", NX_CMD_ERR_INCOMPLETE,
		      "Command incomplete: service-url");
	expect_status(tree, NX_NODE_VIEW, "rollback configuration", NX_CMD_ERR_INCOMPLETE,
		      "incomplete");
	expect_status(tree, NX_NODE_VIEW, "echo", NX_CMD_ERR_INCOMPLETE, "incomplete");

	/* nothing fits */
	expect_status(tree, NX_NODE_VIEW, "frobnicate", NX_CMD_ERR_NO_MATCH,
		      "% Unknown command: frobnicate");
	expect_status(tree, NX_NODE_VIEW, "show bogus", NX_CMD_ERR_NO_MATCH,
		      "% Unknown command: show bogus");
	expect_status(tree, NX_NODE_VIEW, "configure terminal now", NX_CMD_ERR_NO_MATCH,
		      "Unknown command");
	expect_status(tree, NX_NODE_VIEW, "showx", NX_CMD_ERR_NO_MATCH, "Unknown command");
	/* control characters are quoted safely */
	expect_status(tree, NX_NODE_VIEW, "fo\x1b[2Jo\x7f\xff", NX_CMD_ERR_NO_MATCH,
		      "% Unknown command: fo?[2Jo??");
	expect_status(tree, 777, "show version", NX_CMD_ERR_NO_MATCH, "Unknown node");
}

static void test_blank_and_comment(void **state)
{
	struct nx_cmd_tree *tree = *state;
	static const char *const lines[] = { "", "   ", "\t\r\n", "! a comment", "#x", "  ! x" };
	struct nx_cmd_match *m;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(lines); i++) {
		m = expect_status(tree, NODE_NEXODUS, lines[i], NX_CMD_SUCCESS, NULL);
		assert_null(m->cmd);
		assert_int_equal(m->argc, 0);
		assert_int_equal(m->node, NODE_NEXODUS);
	}
	m = expect_status(tree, NX_NODE_VIEW, NULL, NX_CMD_SUCCESS, NULL);
	assert_null(m->cmd);
}

static void test_walk_up_and_view_fallback(void **state)
{
	struct nx_cmd_tree *tree = *state;

	/* a sub-node falls back to its parents; the node that matched is reported */
	expect_cmd(tree, NODE_NEXODUS, "debug nexodus peers", &debug, NX_NODE_CONFIG);
	expect_cmd(tree, NODE_NEXODUS, "nexodus", &nexodus, NX_NODE_CONFIG);
	expect_cmd(tree, NODE_NEXODUS, "end", &end, NX_NODE_CONFIG);
	expect_cmd(tree, NODE_PEER, "relay", &relay, NODE_NEXODUS);
	expect_cmd(tree, NODE_PEER, "exit", &nexodus_exit, NODE_NEXODUS);
	expect_cmd(tree, NODE_PEER, "no debug nexodus controller", &debug, NX_NODE_CONFIG);
	expect_status(tree, NODE_NEXODUS, "debug", NX_CMD_ERR_INCOMPLETE, "incomplete: debug");

	/* VIEW commands run anywhere, without leaving the node */
	expect_cmd(tree, NX_NODE_CONFIG, "show running-config", &show_run, NX_NODE_CONFIG);
	expect_cmd(tree, NODE_NEXODUS, "sh run json", &show_run, NODE_NEXODUS);
	expect_cmd(tree, NODE_PEER, "write memory", &write_mem, NODE_PEER);
	expect_cmd(tree, NODE_NEXODUS, "rollback configuration 3", &rollback, NODE_NEXODUS);
	expect_cmd(tree, NX_NODE_CONFIG, "conf t", &configure, NX_NODE_CONFIG);
	expect_status(tree, NODE_NEXODUS, "show", NX_CMD_ERR_INCOMPLETE, "incomplete: show");

	/* ... but VIEW is nobody's parent: config commands do not run there */
	expect_status(tree, NX_NODE_VIEW, "relay", NX_CMD_ERR_NO_MATCH, "Unknown command: relay");
	expect_status(tree, NX_NODE_VIEW, "nexodus", NX_CMD_ERR_NO_MATCH, "Unknown command");
	expect_status(tree, NX_NODE_CONFIG, "relay", NX_CMD_ERR_NO_MATCH, "Unknown command");
}

static void test_line_argument(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct nx_cmd_match *m;
	char line[NX_CMD_LINE_MAX + 1];
	size_t len;
	int i;

	m = expect_cmd(tree, NX_NODE_VIEW, "echo  hello   big\tworld  \n", &echo, NX_NODE_VIEW);
	assert_int_equal(m->argc, 2);
	assert_int_equal(m->argv[1].type, NX_TOK_LINE);
	expect_arg(m, "text", "hello   big\tworld");
	m = expect_cmd(tree, NODE_NEXODUS, "desc uplink to the lab (rack 3)", &description,
		       NODE_NEXODUS);
	expect_arg(m, "text", "uplink to the lab (rack 3)");
	m = expect_cmd(tree, NX_NODE_VIEW, "echo !not a comment", &echo, NX_NODE_VIEW);
	expect_arg(m, "text", "!not a comment");

	/* LINE takes any number of words */
	len = (size_t)snprintf(line, sizeof(line), "echo");
	for (i = 0; i < 200; i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " w%d", i);
	m = expect_cmd(tree, NX_NODE_VIEW, line, &echo, NX_NODE_VIEW);
	assert_string_equal(nx_cmd_arg_get(m->argc, m->argv, "text"), line + 5);
}

static void test_too_long(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct nx_cmd_candidate c[4];
	char *line = malloc(NX_CMD_LINE_MAX + 2);
	size_t len;
	int i;

	assert_non_null(line);
	memset(line, 'a', NX_CMD_LINE_MAX + 1);
	line[NX_CMD_LINE_MAX + 1] = '\0';
	expect_status(tree, NX_NODE_VIEW, line, NX_CMD_ERR_TOO_LONG, "% Line too long");
	assert_int_equal(nx_cmd_describe(tree, NX_NODE_VIEW, line, c, ARRAY_SIZE(c)), -E2BIG);
	assert_int_equal(nx_cmd_complete(tree, NX_NODE_VIEW, line, c, ARRAY_SIZE(c)), -E2BIG);
	/* the limit itself is fine */
	line[NX_CMD_LINE_MAX] = '\0';
	expect_status(tree, NX_NODE_VIEW, line, NX_CMD_ERR_NO_MATCH, "% Unknown command: aaa");

	len = 0;
	for (i = 0; i < NX_CMD_MAX_WORDS; i++)
		len += (size_t)snprintf(line + len, NX_CMD_LINE_MAX + 2 - len, "x ");
	expect_status(tree, NX_NODE_VIEW, line, NX_CMD_ERR_NO_MATCH, "Unknown command");
	snprintf(line + len, NX_CMD_LINE_MAX + 2 - len, "x");
	expect_status(tree, NX_NODE_VIEW, line, NX_CMD_ERR_TOO_LONG, "% Too many words");
	free(line);
}

static void test_describe(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct nx_cmd_candidate c[2];

	expect_cands(tree, NX_NODE_VIEW, "", false,
		     "configure echo quit rollback show write"); /* hidden "dump" left out */
	expect_cands(tree, NX_NODE_VIEW, "show ", false, "nexodus running-config version");
	expect_cands(tree, NX_NODE_VIEW, "sh", false, "show");
	expect_cands(tree, NX_NODE_VIEW, "show r", false, "running-config");
	expect_cands(tree, NX_NODE_VIEW, "show running-config ", false, "<cr> json");
	expect_cands(tree, NX_NODE_VIEW, "show running-config json ", false, "<cr>");
	expect_cands(tree, NX_NODE_VIEW, "configure ", false, "<cr> terminal");
	expect_cands(tree, NX_NODE_VIEW, "rollback configuration ", false, "(1-20)");
	expect_cands(tree, NX_NODE_VIEW, "rollback configuration 1", false, "(1-20)");
	expect_cands(tree, NX_NODE_VIEW, "rollback configuration x", false, "");
	expect_cands(tree, NX_NODE_VIEW, "echo ", false, "LINE");
	expect_cands(tree, NX_NODE_VIEW, "echo a b ", false, "<cr> LINE");
	expect_cands(tree, NX_NODE_VIEW, "echo a b", false, "LINE");
	expect_cands(tree, NX_NODE_VIEW, "bogus ", false, "");
	expect_cands(tree, NX_NODE_VIEW, "! comment ", false, "");

	/* sorted, each once, across the [no] forms and separate commands */
	expect_cands(tree, NODE_NEXODUS, "no ", false,
		     "advertise-cidr exit-node interface listen-port registration-key relay "
		     "service-url stun-server vpc-id wireguard-backend");
	expect_cands(tree, NODE_NEXODUS, "advertise-cidr ", false, "A.B.C.D/M X:X::X:X/M");
	expect_cands(tree, NODE_NEXODUS, "advertise-cidr fd", false, "X:X::X:X/M");
	expect_cands(tree, NODE_NEXODUS, "advertise-cidr 10.0.0.0/", false, "A.B.C.D/M X:X::X:X/M");
	expect_cands(tree, NODE_NEXODUS, "advertise-cidr 10.0.0.0/8 ", false, "<cr>");
	expect_cands(tree, NODE_NEXODUS, "wireguard-backend ", false, "auto kernel uapi");
	expect_cands(tree, NODE_NEXODUS, "no wireguard-backend ", false, "<cr> auto kernel uapi");
	expect_cands(tree, NODE_NEXODUS, "listen-port ", false, "(1-65535)");
	expect_cands(tree, NODE_NEXODUS, "e", false, "exit exit-node");
	expect_cands(tree, NODE_PEER, "allowed-ip ", false, "A.B.C.D X:X::X:X");

	/* the same path as matching: parents, then VIEW */
	expect_cands(tree, NODE_NEXODUS, "debug ", false, "nexodus");
	expect_cands(tree, NODE_NEXODUS, "debug nexodus ", false, "controller dataplane nat peers");
	expect_cands(tree, NX_NODE_CONFIG, "show ", false, "nexodus running-config version");
	expect_cands(tree, NODE_PEER, "sh", false, "show");

	assert_string_equal(cand_help(tree, NX_NODE_VIEW, "show ", "running-config"),
			    "Current configuration");
	assert_string_equal(cand_help(tree, NX_NODE_VIEW, "show running-config ", "<cr>"), "");
	assert_string_equal(cand_help(tree, NODE_NEXODUS, "listen-port ", "(1-65535)"), "UDP port");
	assert_string_equal(cand_help(tree, NODE_NEXODUS, "advertise-cidr ", "X:X::X:X/M"),
			    "IPv6 prefix");

	/* the count is of all candidates; at most max are stored */
	assert_int_equal(nx_cmd_describe(tree, NX_NODE_VIEW, "", c, 2), 6);
	assert_string_equal(c[0].text, "configure");
	assert_string_equal(c[1].text, "echo");
	assert_int_equal(nx_cmd_describe(tree, NX_NODE_VIEW, "", NULL, 0), 6);
	assert_int_equal(nx_cmd_describe(tree, 555, "", c, 2), -EINVAL);
}

static void test_complete(void **state)
{
	struct nx_cmd_tree *tree = *state;

	expect_cands(tree, NODE_NEXODUS, "s", true, "service-url stun-server");
	expect_cands(tree, NODE_NEXODUS, "re", true, "registration-key relay");
	expect_cands(tree, NODE_NEXODUS, "no re", true, "registration-key relay");
	expect_cands(tree, NODE_NEXODUS, "wireguard-backend ", true, "auto kernel uapi");
	expect_cands(tree, NODE_NEXODUS, "wireguard-backend k", true, "kernel");
	expect_cands(tree, NODE_NEXODUS, "listen-port ", true, ""); /* variables are not keywords */
	expect_cands(tree, NX_NODE_VIEW, "sh", true, "show");
	expect_cands(tree, NX_NODE_VIEW, "sh r", true, "running-config");
	expect_cands(tree, NX_NODE_VIEW, "show running-config ", true, "json");
	expect_cands(tree, NX_NODE_VIEW, "d", true, ""); /* hidden */
	expect_cands(tree, NX_NODE_VIEW, "x", true, "");
	expect_cands(tree, NX_NODE_CONFIG, "sh", true, "show");
	expect_cands(tree, NODE_PEER, "deb", true, "debug");
}

static void count_cmd(const struct nx_cmd *cmd, void *arg)
{
	int *n = arg;

	assert_false(cmd->flags & NX_CMD_HIDDEN);
	(*n)++;
}

static void test_foreach(void **state)
{
	struct nx_cmd_tree *tree = *state;
	int n = 0;

	nx_cmd_foreach(tree, NX_NODE_VIEW, count_cmd, &n);
	assert_int_equal(n, 8); /* nine installed, one hidden */
	n = 0;
	nx_cmd_foreach(tree, NODE_PEER, count_cmd, &n);
	assert_int_equal(n, 1);
	n = 0;
	nx_cmd_foreach(tree, 999, count_cmd, &n);
	assert_int_equal(n, 0);
}

static void test_rank_and_ties(void **state)
{
	struct nx_cmd_tree *tree = nx_cmd_tree_new();
	struct nx_cmd_match m;
	struct nx_err err;
	CMD(ping_v4, "ping A.B.C.D", "Ping\nIPv4 address\n");
	CMD(ping_word, "ping WORD", "Ping\nHost name\n");
	CMD(ping_line, "ping LINE", "Ping\nAnything\n");
	CMD(mode, "mode <kernel|key>", "Mode\nKernel\nKey\n");
	CMD(port_a, "port (1-10)", "Port\nLow\n");
	CMD(port_b, "port HOST", "Port\nHost\n");
	CMD(port_c, "port NAME", "Port\nName\n");
	CMD(clear_a, "clear [all]", "Clear\nEverything\n");
	CMD(clear_b, "clear all [now]", "Clear\nEverything\nRight away\n");

	(void)state;
	assert_non_null(tree);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &ping_v4, &err), 0);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &ping_word, &err), 0);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &ping_line, &err), 0);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &mode, &err), 0);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &port_a, &err), 0);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &port_b, &err), 0);

	/* typed variable > WORD > LINE */
	expect_cmd(tree, NX_NODE_VIEW, "ping 192.0.2.1", &ping_v4, NX_NODE_VIEW);
	expect_cmd(tree, NX_NODE_VIEW, "ping host.example", &ping_word, NX_NODE_VIEW);
	expect_cmd(tree, NX_NODE_VIEW, "p host two", &ping_line, NX_NODE_VIEW);
	expect_cmd(tree, NX_NODE_VIEW, "port 5", &port_a, NX_NODE_VIEW);
	expect_cmd(tree, NX_NODE_VIEW, "port x", &port_b, NX_NODE_VIEW);

	/* equal matches: different commands, or different keywords of one command */
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &port_c, &err), 0);
	expect_status(tree, NX_NODE_VIEW, "port x", NX_CMD_ERR_AMBIGUOUS,
		      "(could be: port HOST; port NAME)");
	expect_status(tree, NX_NODE_VIEW, "mode k", NX_CMD_ERR_AMBIGUOUS,
		      "(could be: mode kernel; mode key)");
	expect_cmd(tree, NX_NODE_VIEW, "mode key", &mode, NX_NODE_VIEW);
	expect_cmd(tree, NX_NODE_VIEW, "mode ker", &mode, NX_NODE_VIEW);
	assert_int_equal(nx_cmd_match(tree, NX_NODE_VIEW, "mode ke", &m, NULL),
			 NX_CMD_ERR_AMBIGUOUS);

	/* overlapping syntaxes of two commands: the shared form is ambiguous */
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &clear_a, &err), 0);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &clear_b, &err), 0);
	expect_cmd(tree, NX_NODE_VIEW, "clear", &clear_a, NX_NODE_VIEW);
	expect_cmd(tree, NX_NODE_VIEW, "clear all now", &clear_b, NX_NODE_VIEW);
	expect_status(tree, NX_NODE_VIEW, "clear all", NX_CMD_ERR_AMBIGUOUS,
		      "(could be: clear all; clear all)");
	nx_cmd_tree_free(tree);
}

static void test_install_errors(void **state)
{
	struct nx_cmd_tree *tree = nx_cmd_tree_new();
	struct nx_cmd dup = { .syntax = "show   version", .help = "a\nb\n", .fn = handler };
	struct nx_cmd nofn = { .syntax = "foo", .help = "Foo\n" };
	struct nx_err err;
	char many[400];
	char deep[200];
	size_t len = 0;
	int i;

	/* brackets */
	expect_install_bad("show <a|b", "1\n2\n3\n", EINVAL, "unbalanced '<': no closing '>'");
	expect_install_bad("show [a", "1\n2\n", EINVAL, "unbalanced '['");
	expect_install_bad("show <a]", "1\n2\n", EINVAL, "'<' closed by ']'");
	expect_install_bad("show b>", "1\n2\n", EINVAL, "'>' without an opening '<'");
	expect_install_bad("show b]", "1\n2\n", EINVAL, "']' without an opening '['");
	expect_install_bad("show a|b", "1\n2\n3\n", EINVAL, "'|' outside");
	expect_install_bad("show foo<a>", "1\n2\n3\n", EINVAL, "missing space before '<'");
	/* empty parts */
	expect_install_bad("show <a||b>", "1\n2\n3\n", EINVAL, "empty alternative in '<...>'");
	expect_install_bad("show <>", "1\n", EINVAL, "empty alternative");
	expect_install_bad("show [ ]", "1\n", EINVAL, "empty alternative in '[...]'");
	expect_install_bad("show <|a>", "1\n2\n", EINVAL, "empty alternative");
	expect_install_bad("", "", EINVAL, "empty syntax");
	expect_install_bad("  \t ", "", EINVAL, "empty syntax");
	expect_install_bad("[a] [b]", "1\n2\n", EINVAL, "matches an empty line");
	/* LINE */
	expect_install_bad("echo LINE more", "1\n2\n3\n", EINVAL, "LINE must be the last token");
	expect_install_bad("echo [LINE] x", "1\n2\n3\n", EINVAL, "LINE must be the last");
	/* ranges */
	expect_install_bad("port (10-1)", "1\n2\n", EINVAL, "\"(10-1)\": minimum exceeds maximum");
	expect_install_bad("port (1-)", "1\n2\n", EINVAL, "bad range \"(1-)\"");
	expect_install_bad("port (-5)", "1\n2\n", EINVAL, "bad range");
	expect_install_bad("port (a-b)", "1\n2\n", EINVAL, "bad range \"(a-b)\"");
	expect_install_bad("port (1-2-3)", "1\n2\n", EINVAL, "bad range");
	expect_install_bad("port (1-99999999999999999999999)", "1\n2\n", EINVAL, "bad range");
	/* tokens and names */
	expect_install_bad("Show version", "1\n2\n", EINVAL, "\"Show\": mixes upper and lower");
	expect_install_bad("show 1WORD", "1\n2\n", EINVAL, "starts with a capital letter");
	expect_install_bad("sh!ow", "1\n", EINVAL, "bad character '!' in a keyword");
	expect_install_bad("show -x", "1\n2\n", EINVAL, "bad character '-'");
	expect_install_bad("show WO#RD", "1\n2\n", EINVAL, "bad character '#' in a variable");
	expect_install_bad("show ver\x01", "1\n2\n", EINVAL, "bad character 0x01");
	expect_install_bad("show $x", "1\n", EINVAL, "'$' without a token");
	expect_install_bad("show WORD$", "1\n2\n", EINVAL, "'$' not followed by a name");
	expect_install_bad("show WORD$a$b", "1\n2\n", EINVAL, "missing space before '$'");
	expect_install_bad("show WORD$a.b", "1\n2\n", EINVAL, "missing space before '.'");
	expect_install_bad(
		"show "
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"1\n2\n", EINVAL, "is longer than 63 characters");
	/* help text */
	expect_install_bad("show version", "Show\n", EINVAL, "help has 1 line for 2 tokens");
	expect_install_bad("show version", "Show\nVersion\nExtra\n", EINVAL,
			   "help has 3 lines for 2 tokens");
	expect_install_bad("show version", NULL, EINVAL, "help has 0 lines for 2 tokens");
	expect_install_bad("[no] debug <a|b>", "1\n2\n3\n", EINVAL, "help has 3 lines for 4");

	/* limits: forms, tokens, nesting */
	expect_install_bad("[a] [b] [c] [d] [e] [f] [g] [h] [i] x", "", EINVAL,
			   "more than 256 forms");
	for (i = 0; i < NX_CMD_MAX_WORDS + 1; i++)
		len += (size_t)snprintf(many + len, sizeof(many) - len, "%sk", i ? " " : "");
	expect_install_bad(many, "", EINVAL, "more than 64 tokens");
	len = 0;
	for (i = 0; i < 20; i++)
		len += (size_t)snprintf(deep + len, sizeof(deep) - len, "<a ");
	for (i = 0; i < 20; i++)
		len += (size_t)snprintf(deep + len, sizeof(deep) - len, ">");
	expect_install_bad(deep, "", EINVAL, "nested deeper than 16");

	/* duplicates (spacing does not matter), unknown nodes, missing handlers */
	(void)state;
	assert_non_null(tree);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &show_version, &err), 0);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &show_version, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "already installed"));
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &dup, &err), -EEXIST);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_CONFIG, &dup, &err), 0);
	assert_int_equal(nx_cmd_install(tree, 4242, &relay, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "node 4242 is not installed"));
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &nofn, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "no handler"));
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, NULL, &err), -EINVAL);
	assert_true(err.msg[0] != '\0');
	nx_cmd_tree_free(tree);
}

static void test_install_good_edge_cases(void **state)
{
	struct nx_cmd_tree *tree = nx_cmd_tree_new();
	struct nx_cmd_match *m;
	struct nx_err err;
	/* nested groups, a named optional group, a help text without the final newline */
	CMD(nested, "set <mode <fast|slow>|level (0-9)$lvl>$what [verbose]$v",
	    "Set\nMode\nFast\nSlow\nLevel\nValue\nVerbose");
	CMD(range_wide, "id (0-18446744073709551615)", "Id\nValue\n");

	(void)state;
	assert_non_null(tree);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &nested, &err), 0);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &range_wide, &err), 0);

	m = expect_cmd(tree, NX_NODE_VIEW, "set mode slow verbose", &nested, NX_NODE_VIEW);
	assert_int_equal(m->argc, 4);
	expect_arg(m, "what", "mode"); /* the group name reaches every token inside */
	assert_string_equal(m->argv[2].name, "what");
	assert_string_equal(m->argv[2].text, "slow");
	expect_arg(m, "v", "verbose");
	m = expect_cmd(tree, NX_NODE_VIEW, "set level 4", &nested, NX_NODE_VIEW);
	expect_arg(m, "lvl", "4"); /* an inner name wins */
	expect_arg(m, "v", NULL);
	expect_cands(tree, NX_NODE_VIEW, "set ", false, "level mode");
	expect_cands(tree, NX_NODE_VIEW, "set level 3 ", false, "<cr> verbose");
	assert_string_equal(cand_help(tree, NX_NODE_VIEW, "set level 3 ", "verbose"), "Verbose");
	expect_cmd(tree, NX_NODE_VIEW, "id 18446744073709551615", &range_wide, NX_NODE_VIEW);
	nx_cmd_tree_free(tree);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nodes),
		cmocka_unit_test(test_node_depth),
		cmocka_unit_test(test_exact_and_abbreviated),
		cmocka_unit_test(test_arguments_and_alternatives),
		cmocka_unit_test(test_optional_and_no),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_blank_and_comment),
		cmocka_unit_test(test_walk_up_and_view_fallback),
		cmocka_unit_test(test_line_argument),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_complete),
		cmocka_unit_test(test_foreach),
		cmocka_unit_test(test_rank_and_ties),
		cmocka_unit_test(test_install_errors),
		cmocka_unit_test(test_install_good_edge_cases),
	};

	return cmocka_run_group_tests(tests, setup_tree, teardown_tree);
}
