/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for the command tree, which reads lines from anyone who can reach a daemon's
 * socket and syntax strings from the daemons' own definitions.
 *
 * The first byte selects what the rest is:
 *   0-3   a line, matched, described and completed at one node of nexd's tree
 *   6-7   the same at every node
 *   4     a syntax string (up to a newline), installed with a generated help text; the
 *         bytes after the newline steer a walk through its '?' candidates
 *   5     the bytes steer a walk through '?' candidates of nexd's tree (second byte: node)
 * Beyond "does not crash" it checks the contracts: statuses are known, errors carry a "% "
 * message, arguments are filled, candidates come sorted and unique, TAB offers a subset of
 * '?', a line that runs offers "<cr>", and a line built from '?' candidates up to "<cr>"
 * runs.  A broken contract aborts, which the fuzzer reports as a crash.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/command.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_CANDS     512
#define WALK_STEPS    80

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

static const struct {
	int node;
	struct nx_cmd cmd;
} command_set[] = {
	{ NX_NODE_VIEW, { "configure [terminal]", "Configure\nTerminal\n", handler, 0 } },
	{ NX_NODE_VIEW, { "show running-config [json]", "Show\nRunning\nJSON\n", handler, 0 } },
	{ NX_NODE_VIEW,
	  { "show nexodus peers [json]", "Show\nNexodus\nPeers\nJSON\n", handler, 0 } },
	{ NX_NODE_VIEW, { "show version", "Show\nVersion\n", handler, 0 } },
	{ NX_NODE_VIEW, { "rollback configuration (1-20)$id", "Roll\nConfig\nId\n", handler, 0 } },
	{ NX_NODE_VIEW, { "write memory", "Write\nMemory\n", handler, 0 } },
	{ NX_NODE_VIEW, { "echo LINE$text", "Echo\nText\n", handler, 0 } },
	{ NX_NODE_VIEW, { "dump internals", "Dump\nInternals\n", handler, NX_CMD_HIDDEN } },
	{ NX_NODE_CONFIG, { "nexodus", "Nexodus\n", handler, 0 } },
	{ NX_NODE_CONFIG,
	  { "[no] debug nexodus <controller|dataplane|peers|nat>$what",
	    "No\nDebug\nNexodus\nController\nDataplane\nPeers\nNAT\n", handler, 0 } },
	{ NX_NODE_CONFIG, { "end", "End\n", handler, 0 } },
	{ NX_NODE_CONFIG, { "exit", "Exit\n", handler, 0 } },
	{ NODE_NEXODUS, { "service-url URL$url", "Service\nURL\n", handler, 0 } },
	{ NODE_NEXODUS, { "no service-url [URL]", "No\nService\nURL\n", handler, 0 } },
	{ NODE_NEXODUS, { "vpc-id UUID$id", "VPC\nUUID\n", handler, 0 } },
	{ NODE_NEXODUS, { "registration-key KEY$key", "Key\nKey\n", handler, 0 } },
	{ NODE_NEXODUS, { "interface IFNAME$ifname", "Interface\nName\n", handler, 0 } },
	{ NODE_NEXODUS, { "listen-port (1-65535)$port", "Port\nPort\n", handler, 0 } },
	{ NODE_NEXODUS, { "no listen-port [(1-65535)]", "No\nPort\nPort\n", handler, 0 } },
	{ NODE_NEXODUS,
	  { "[no] wireguard-backend <auto|kernel|uapi>$backend",
	    "No\nBackend\nAuto\nKernel\nUAPI\n", handler, 0 } },
	{ NODE_NEXODUS, { "[no] stun-server HOST:PORT$server", "No\nSTUN\nServer\n", handler, 0 } },
	{ NODE_NEXODUS,
	  { "[no] advertise-cidr <A.B.C.D/M|X:X::X:X/M>$prefix", "No\nAdvertise\nIPv4\nIPv6\n",
	    handler, 0 } },
	{ NODE_NEXODUS, { "[no] relay", "No\nRelay\n", handler, 0 } },
	{ NODE_NEXODUS, { "[no] exit-node", "No\nExit node\n", handler, 0 } },
	{ NODE_NEXODUS, { "exit", "Exit\n", handler, 0 } },
	{ NODE_NEXODUS, { "description LINE$text", "Description\nText\n", handler, 0 } },
	{ NODE_NEXODUS, { "peer WORD$name", "Peer\nName\n", handler, 0 } },
	{ NODE_PEER, { "allowed-ip <A.B.C.D|X:X::X:X>$ip", "Allowed\nIPv4\nIPv6\n", handler, 0 } },
	{ NODE_PEER,
	  { "endpoint <A.B.C.D|X:X::X:X> [(1-65535)]", "Endpoint\nv4\nv6\nPort\n", handler, 0 } },
};

static const struct nx_cmd_node extra_nodes[] = {
	{ NODE_NEXODUS, "nexodus", "%s(config-nexodus)# ", NX_NODE_CONFIG },
	{ NODE_PEER, "peer", "%s(config-nexodus-peer)# ", NODE_NEXODUS },
};

static const int all_nodes[] = { NX_NODE_VIEW, NX_NODE_CONFIG, NODE_NEXODUS, NODE_PEER };

static struct nx_cmd_match match;
static struct nx_cmd_candidate desc[MAX_CANDS];
static struct nx_cmd_candidate tab[MAX_CANDS];
static char line_buf[NX_CMD_LINE_MAX + 2];

static const struct nx_cmd_tree *nexd_tree(void)
{
	static struct nx_cmd_tree *tree;
	struct nx_err err;
	size_t i;

	if (tree)
		return tree;
	tree = nx_cmd_tree_new();
	if (!tree)
		abort();
	for (i = 0; i < ARRAY_SIZE(extra_nodes); i++)
		if (nx_cmd_node_install(tree, &extra_nodes[i]) != 0)
			abort();
	for (i = 0; i < ARRAY_SIZE(command_set); i++) {
		if (nx_cmd_install(tree, command_set[i].node, &command_set[i].cmd, &err) != 0) {
			fprintf(stderr, "%s\n", err.msg);
			abort();
		}
	}
	return tree;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Runs nx_cmd_match and checks its result; returns the status. */
static int check_match(const struct nx_cmd_tree *tree, int node, const char *line)
{
	struct nx_err err;
	int rc, i;

	memset(err.msg, 'x', sizeof(err.msg) - 1);
	err.msg[sizeof(err.msg) - 1] = '\0';
	rc = nx_cmd_match(tree, node, line, &match, &err);
	switch (rc) {
	case NX_CMD_SUCCESS:
		if (err.msg[0] != '\0' || !nx_cmd_node_get(tree, match.node))
			abort();
		if (!match.cmd) {
			if (match.argc != 0)
				abort();
			break;
		}
		if (match.argc < 1 || match.argc > NX_CMD_MAX_WORDS)
			abort();
		for (i = 0; i < match.argc; i++) {
			const struct nx_cmd_arg *a = &match.argv[i];

			if (!a->name || !a->text || !a->text[0] || is_space(a->text[0]))
				abort();
			if (nx_cmd_arg_get(match.argc, match.argv, a->name) == NULL)
				abort();
			if (a->type == NX_TOK_KEYWORD &&
			    !nx_cmd_arg_has(match.argc, match.argv, a->text))
				abort();
		}
		break;
	case NX_CMD_ERR_NO_MATCH:
	case NX_CMD_ERR_AMBIGUOUS:
	case NX_CMD_ERR_INCOMPLETE:
	case NX_CMD_ERR_TOO_LONG:
		if (strncmp(err.msg, "% ", 2) != 0 || match.cmd)
			abort();
		break;
	default:
		abort();
	}
	return rc;
}

/* Sorted strictly ascending, so sorted and without duplicates. */
static void check_sorted(const struct nx_cmd_candidate *c, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (!memchr(c[i].text, '\0', sizeof(c[i].text)) ||
		    !memchr(c[i].help, '\0', sizeof(c[i].help)) || c[i].text[0] == '\0')
			abort();
		if (i > 0 && strcmp(c[i - 1].text, c[i].text) >= 0)
			abort();
	}
}

static bool has_text(const struct nx_cmd_candidate *c, int n, const char *text)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(c[i].text, text) == 0)
			return true;
	return false;
}

static void check_line(const struct nx_cmd_tree *tree, int node, const char *line)
{
	size_t len = strlen(line);
	int rc, nd, nc, i;

	rc = check_match(tree, node, line);
	if (len > NX_CMD_LINE_MAX && rc != NX_CMD_ERR_TOO_LONG)
		abort();

	nd = nx_cmd_describe(tree, node, line, desc, ARRAY_SIZE(desc));
	nc = nx_cmd_complete(tree, node, line, tab, ARRAY_SIZE(tab));
	if (nd < 0 || nc < 0) {
		if (nd != -E2BIG || nc != -E2BIG || len <= NX_CMD_LINE_MAX)
			abort();
		return;
	}
	if (nd > MAX_CANDS || nc > MAX_CANDS)
		abort(); /* more than this tree can offer */
	check_sorted(desc, nd);
	check_sorted(tab, nc);
	for (i = 0; i < nc; i++)
		if (!has_text(desc, nd, tab[i].text))
			abort();

	/* a line that runs a visible command offers <cr> once a space is typed */
	if (rc == NX_CMD_SUCCESS && match.cmd && !(match.cmd->flags & NX_CMD_HIDDEN) && len > 0 &&
	    !is_space(line[len - 1]) && len + 1 <= NX_CMD_LINE_MAX) {
		memcpy(line_buf, line, len);
		line_buf[len] = ' ';
		line_buf[len + 1] = '\0';
		nd = nx_cmd_describe(tree, node, line_buf, desc, ARRAY_SIZE(desc));
		if (nd <= 0 || !has_text(desc, nd > MAX_CANDS ? MAX_CANDS : nd, "<cr>"))
			abort();
	}
}

/* A word that fits the candidate's token. */
static const char *sample_word(const char *text, char *buf, size_t size)
{
	size_t i;

	if (strcmp(text, "A.B.C.D") == 0)
		return "192.0.2.1";
	if (strcmp(text, "A.B.C.D/M") == 0)
		return "10.0.0.0/8";
	if (strcmp(text, "X:X::X:X") == 0)
		return "2001:db8::1";
	if (strcmp(text, "X:X::X:X/M") == 0)
		return "fd00::/64";
	if (text[0] == '(') {
		for (i = 1; text[i] >= '0' && text[i] <= '9' && i < size; i++)
			buf[i - 1] = text[i];
		buf[i - 1] = '\0';
		return buf;
	}
	if (text[0] >= 'A' && text[0] <= 'Z')
		return "some-value";
	return text; /* a keyword, typed in full */
}

/*
 * Builds a line from '?' candidates, choosing with the steering bytes; whenever "<cr>" is
 * chosen, the line must run (or be ambiguous between equally good commands).
 */
static void walk(const struct nx_cmd_tree *tree, int node, const uint8_t *steer, size_t nsteer)
{
	char word[64];
	size_t len = 0, step;
	const char *w;
	int n, rc;

	line_buf[0] = '\0';
	for (step = 0; step < WALK_STEPS && step < nsteer; step++) {
		n = nx_cmd_describe(tree, node, line_buf, desc, ARRAY_SIZE(desc));
		if (n <= 0)
			abort(); /* every line built so far is on the way to a command */
		if (n > MAX_CANDS)
			n = MAX_CANDS;
		check_sorted(desc, n);
		w = desc[steer[step] % (unsigned)n].text;
		if (strcmp(w, "<cr>") == 0) {
			rc = check_match(tree, node, line_buf);
			if (rc != NX_CMD_SUCCESS && rc != NX_CMD_ERR_AMBIGUOUS)
				abort();
			if (rc == NX_CMD_SUCCESS && !match.cmd)
				abort();
			return;
		}
		w = sample_word(w, word, sizeof(word));
		if (len + strlen(w) + 2 > NX_CMD_LINE_MAX)
			return;
		len += (size_t)snprintf(line_buf + len, sizeof(line_buf) - len, "%s ", w);
	}
}

/* Help text with one line per token as the syntax appears to have, give or take `skew`. */
static char *make_help(const char *syntax, int skew)
{
	const char *s = syntax;
	size_t tokens = 0, i;
	char *help;

	while (*s) {
		if (is_space(*s) || strchr("<>[]|", *s)) {
			s++;
			continue;
		}
		if (*s != '$')
			tokens++;
		while (*s && !is_space(*s) && !strchr("<>[]|", *s))
			s++;
	}
	if (skew < 0 && tokens > 0)
		tokens--;
	else if (skew > 0)
		tokens++;
	help = malloc(tokens * 3 + 1);
	if (!help)
		abort();
	for (i = 0; i < tokens; i++)
		memcpy(help + i * 3, "h \n", 3);
	help[tokens * 3] = '\0';
	return help;
}

static void check_install(const char *syntax, const uint8_t *steer, size_t nsteer)
{
	struct nx_cmd_tree *tree = nx_cmd_tree_new();
	struct nx_cmd cmd = { .syntax = syntax, .fn = handler };
	struct nx_cmd wrong = { .syntax = syntax, .fn = handler };
	char *help = make_help(syntax, 0);
	char *more = make_help(syntax, 1);
	struct nx_err err;
	int rc;

	if (!tree)
		abort();
	cmd.help = help;
	wrong.help = more;
	memset(&err, 0, sizeof(err));
	rc = nx_cmd_install(tree, NX_NODE_CONFIG, &cmd, &err);
	if (rc != 0 && (rc != -EINVAL || err.msg[0] == '\0'))
		abort();
	if (rc == 0) {
		/* the same syntax again, or with a help line too many */
		if (nx_cmd_install(tree, NX_NODE_CONFIG, &cmd, &err) != -EEXIST || !err.msg[0])
			abort();
		if (nx_cmd_install(tree, NX_NODE_CONFIG, &wrong, &err) != -EINVAL ||
		    !strstr(err.msg, "help has"))
			abort();
		if (nx_cmd_describe(tree, NX_NODE_CONFIG, "", desc, ARRAY_SIZE(desc)) <= 0)
			abort();
		check_line(tree, NX_NODE_CONFIG, syntax);
		walk(tree, NX_NODE_CONFIG, steer, nsteer);
	}
	nx_cmd_tree_free(tree);
	free(help);
	free(more);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct nx_cmd_tree *tree = nexd_tree();
	unsigned sel;
	char *text, *nl;
	size_t i, len;

	if (size == 0)
		return 0;
	sel = data[0] & 7;
	len = size - 1;
	text = malloc(len + 1);
	if (!text)
		return 0;
	memcpy(text, data + 1, len);
	text[len] = '\0'; /* a line ends at its first NUL, as on the socket */

	switch (sel) {
	case 4:
		nl = strchr(text, '\n');
		if (nl)
			*nl = '\0';
		check_install(text, nl ? (const uint8_t *)nl + 1 : NULL,
			      nl ? len - (size_t)(nl + 1 - text) : 0);
		break;
	case 5:
		if (len > 0)
			walk(tree, all_nodes[data[1] & 3], data + 2, len - 1);
		break;
	case 6:
	case 7:
		for (i = 0; i < ARRAY_SIZE(all_nodes); i++)
			check_line(tree, all_nodes[i], text);
		break;
	default:
		check_line(tree, all_nodes[sel], text);
		break;
	}
	free(text);
	return 0;
}
