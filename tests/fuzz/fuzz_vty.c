/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for what a VTY client controls: the byte stream of the socket.  The input is
 * split into requests by the server's framing function and each one is run, as the server
 * does, on a session over a small command tree with a sub-node; command lines, '?' and TAB
 * requests and prompt requests all come from the input.  The same requests then run in a
 * config-file session.  Bytes left after the last complete request go straight to
 * nx_vty_execute.
 *
 * Beyond "does not crash", it checks the contracts: framing never claims bytes it was not
 * given; the status is a known one; the output stays bounded; the context stack always
 * matches the node (the invariant of lib/vty.h); a config-file session never leaves CONFIG.
 * A broken contract aborts.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/command.h"
#include "lib/vty.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NODE_NEXODUS NX_NODE_DAEMON
#define MAX_REQUESTS 512
#define OUTPUT_BOUND (NX_VTY_OUTPUT_MAX + 64)

NX_DEFUN(f_nexodus, "nexodus", "Agent configuration\n")
{
	vty->node = NODE_NEXODUS;
	if (nx_vty_push_xpath(vty, "/m:nexodus") < 0)
		return NX_CMD_WARNING;
	return NX_CMD_SUCCESS;
}

NX_DEFUN(f_service_url, "[no] service-url URL", "Negate a command\nController\nURL\n")
{
	nx_vty_out(vty, "%s %s\n", nx_cmd_arg_get(argc, argv, "URL"), nx_vty_cur_xpath(vty));
	return NX_CMD_SUCCESS;
}

NX_DEFUN(f_port, "listen-port (1-65535)$port", "WireGuard port\nPort\n")
{
	nx_vty_out(vty, "%s\n", nx_cmd_arg_get(argc, argv, "port"));
	return NX_CMD_SUCCESS;
}

NX_DEFUN(f_cidr, "[no] advertise-cidr <A.B.C.D/M|X:X::X:X/M>$prefix",
	 "Negate a command\nAdvertise a prefix\nIPv4 prefix\nIPv6 prefix\n")
{
	nx_vty_out(vty, "%s\n", nx_cmd_arg_get(argc, argv, "prefix"));
	return NX_CMD_SUCCESS;
}

NX_DEFUN(f_debug, "[no] debug nexodus <peers|nat>$what", "Negate\nDebugging\nNexodus\nPeers\nNAT\n")
{
	return NX_CMD_SUCCESS;
}

NX_DEFUN(f_echo, "echo LINE", "Print\nText\n")
{
	nx_vty_out(vty, "%s\n", nx_cmd_arg_get(argc, argv, "LINE"));
	return NX_CMD_SUCCESS;
}

NX_DEFUN(f_fail, "fail [WORD]", "Refuse\nReason\n")
{
	nx_vty_out(vty, "%% refused\n");
	return NX_CMD_WARNING;
}

static const struct nx_cmd_node nexodus_node = {
	.id = NODE_NEXODUS,
	.name = "nexodus",
	.prompt = "%s(config-nexodus)# ",
	.parent = NX_NODE_CONFIG,
};

static struct nx_cmd_tree *build_tree(void)
{
	struct nx_cmd_tree *tree = nx_cmd_tree_new();

	if (!tree || nx_cmd_node_install(tree, &nexodus_node) < 0 ||
	    nx_cmd_install(tree, NX_NODE_CONFIG, &f_nexodus, NULL) < 0 ||
	    nx_cmd_install(tree, NX_NODE_CONFIG, &f_debug, NULL) < 0 ||
	    nx_cmd_install(tree, NODE_NEXODUS, &f_service_url, NULL) < 0 ||
	    nx_cmd_install(tree, NODE_NEXODUS, &f_port, NULL) < 0 ||
	    nx_cmd_install(tree, NODE_NEXODUS, &f_cidr, NULL) < 0 ||
	    nx_cmd_install(tree, NX_NODE_VIEW, &f_echo, NULL) < 0 ||
	    nx_cmd_install(tree, NX_NODE_VIEW, &f_fail, NULL) < 0 ||
	    nx_vty_install_basic_commands(tree, "fuzzd") < 0)
		abort();
	return tree;
}

static void check_session(const struct nx_cmd_tree *tree, const struct nx_vty *vty, int status)
{
	char prompt[128];

	if (status < NX_CMD_SUCCESS || status > NX_CMD_CLOSE)
		abort();
	if (nx_sbuf_len(&vty->out) > OUTPUT_BOUND)
		abort();
	if (vty->xpath_depth != nx_cmd_node_depth(tree, vty->node))
		abort();
	if (vty->kind == NX_VTY_FILE && vty->node == NX_NODE_VIEW)
		abort();
	nx_vty_prompt(vty, prompt, sizeof(prompt));
	if (strlen(prompt) < 2)
		abort();
}

static void run_stream(const struct nx_cmd_tree *tree, enum nx_vty_kind kind, const char *buf,
		       size_t size)
{
	int start = kind == NX_VTY_FILE ? NX_NODE_CONFIG : NX_NODE_VIEW;
	struct nx_vty vty;
	size_t off = 0;
	int requests = 0;
	char *rest;

	nx_vty_init(&vty, kind, tree, NULL, start);
	vty.hostname = "fuzzd";
	while (off < size && requests++ < MAX_REQUESTS) {
		int n = nx_vty_frame(buf + off, size - off);
		int status;

		if (n < 0)
			goto out; /* the server replies with an error and closes */
		if (n == 0)
			break;
		if ((size_t)n > size - off || buf[off + (size_t)n - 1] != '\0')
			abort();
		status = nx_vty_request(&vty, buf + off);
		check_session(tree, &vty, status);
		if (status == NX_CMD_CLOSE) { /* the server would close: start afresh */
			nx_vty_fini(&vty);
			nx_vty_init(&vty, kind, tree, NULL, start);
			vty.hostname = "fuzzd";
		}
		off += (size_t)n;
	}

	/* What is left, as one raw line (any bytes but NUL). */
	if (off < size && size - off <= 2 * NX_CMD_LINE_MAX) {
		rest = malloc(size - off + 1);
		if (!rest)
			goto out;
		memcpy(rest, buf + off, size - off);
		rest[size - off] = '\0';
		nx_sbuf_reset(&vty.out);
		check_session(tree, &vty, nx_vty_execute(&vty, rest));
		free(rest);
	}
out:
	nx_vty_fini(&vty);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct nx_cmd_tree *tree;

	if (!tree)
		tree = build_tree();
	run_stream(tree, NX_VTY_SOCKET, (const char *)data, size);
	run_stream(tree, NX_VTY_FILE, (const char *)data, size);
	return 0;
}
