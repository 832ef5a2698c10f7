/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The command tree: CLI commands defined once, with typed tokens and help,
 * matched against a line of input, described ('?') and completed (TAB).
 *
 * A command is a syntax string plus one help line per token, e.g.
 *
 *   "[no] advertise-cidr <A.B.C.D/M|X:X::X:X/M>$prefix"
 *   "Negate a command\nAdvertise a prefix\nIPv4 prefix\nIPv6 prefix\n"
 *
 * Tokens:
 *   keyword          literal text; the user may abbreviate it ("conf t")
 *   WORD             any one word (all-uppercase name; WORD, URL, KEY, UUID, ... are all WORD)
 *   LINE             the rest of the line, spaces included (must be last)
 *   A.B.C.D          IPv4 address          A.B.C.D/M    IPv4 prefix
 *   X:X::X:X         IPv6 address          X:X::X:X/M   IPv6 prefix
 *   (MIN-MAX)        decimal number
 *   <a|b|c>          one of the alternatives (each alternative may be several tokens)
 *   [x y]            optional part
 *   TOKEN$name       names the argument; without it, a variable's name is its token text
 *                    (an alternative group's name applies to whichever alternative matched)
 *
 * Typed tokens match on shape (an IPv4 prefix token takes "10.0.0.0/33"): values are checked
 * where the user gets a message naming them — in YANG validation or the handler — rather than
 * an unhelpful "unknown command".
 *
 * Nodes are the CLI modes ("view", "config", a daemon's "nexodus" sub-node).  Matching at a
 * sub-node that fails is retried at its parents, as FRR does, so a config file needs no
 * indentation; the node the command matched at becomes the session's node.
 */
#ifndef NX_COMMAND_H
#define NX_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/errmsg.h"

/* Handler results; also the status byte of a VTY reply. */
enum nx_cmd_status {
	NX_CMD_SUCCESS = 0,
	NX_CMD_WARNING = 1,	   /* the handler refused; it printed why */
	NX_CMD_ERR_NO_MATCH = 2,   /* unknown command */
	NX_CMD_ERR_AMBIGUOUS = 3,  /* several commands match equally well */
	NX_CMD_ERR_INCOMPLETE = 4, /* a prefix of a command: more words needed */
	NX_CMD_ERR_TOO_LONG = 5,   /* line over NX_CMD_LINE_MAX or too many words */
	NX_CMD_CLOSE = 6,	   /* the session ends (quit) */
};

#define NX_CMD_LINE_MAX	 4096 /* bytes in one command line */
#define NX_CMD_MAX_WORDS 64   /* words in one command line; also the most tokens of a command */

/* Built-in nodes; daemons number theirs from NX_NODE_DAEMON. */
enum {
	NX_NODE_VIEW = 0,
	NX_NODE_CONFIG = 1,
	NX_NODE_DAEMON = 8,
};

struct nx_cmd_node {
	int id;
	const char *name; /* "nexodus" */
	const char
		*prompt; /* printf format with one %s for the host name: "%s(config-nexodus)# " */
	int parent;	 /* where "exit" goes; NX_NODE_CONFIG for config sub-nodes */
};

enum nx_cmd_token_type {
	NX_TOK_KEYWORD,
	NX_TOK_WORD,
	NX_TOK_LINE,
	NX_TOK_IPV4,
	NX_TOK_IPV4_PREFIX,
	NX_TOK_IPV6,
	NX_TOK_IPV6_PREFIX,
	NX_TOK_RANGE,
};

/* One matched token of a command: keywords and variables alike, in order. */
struct nx_cmd_arg {
	enum nx_cmd_token_type type;
	const char *name; /* "$name", else the token text ("WORD", "advertise-cidr") */
	const char *text; /* what the user typed; for keywords the full keyword */
};

struct nx_vty; /* opaque here: the session a handler prints to (lib/vty.h) */

typedef int (*nx_cmd_fn)(struct nx_vty *vty, int argc, const struct nx_cmd_arg *argv);

struct nx_cmd {
	const char *syntax;
	const char *help; /* one line per token, in syntax order, each ending in '\n' */
	nx_cmd_fn fn;
	unsigned flags;
};

#define NX_CMD_HIDDEN 0x1 /* matched, but not offered by '?' or TAB */

/*
 * Defines a command `name` (a struct nx_cmd) and opens its handler's body:
 *
 *   NX_DEFUN(show_version, "show version", "Show running system information\nVersion\n")
 *   {
 *           nx_vty_out(vty, "%s\n", PACKAGE_VERSION);
 *           return NX_CMD_SUCCESS;
 *   }
 */
#define NX_DEFUN(name, syn, hlp)                                                           \
	static int name##_fn(struct nx_vty *vty, int argc, const struct nx_cmd_arg *argv); \
	static const struct nx_cmd name = { .syntax = syn, .help = hlp, .fn = name##_fn }; \
	static int name##_fn(struct nx_vty *vty __attribute__((unused)),                   \
			     int argc __attribute__((unused)),                             \
			     const struct nx_cmd_arg *argv __attribute__((unused)))

/* The argument named `name` (by $name, else token text), or NULL when it did not match
 * (an optional part left out, another alternative taken). */
const char *nx_cmd_arg_get(int argc, const struct nx_cmd_arg *argv, const char *name);

/* True when the keyword `kw` was typed (e.g. "no", "json"). */
bool nx_cmd_arg_has(int argc, const struct nx_cmd_arg *argv, const char *kw);

struct nx_cmd_tree;

struct nx_cmd_tree *nx_cmd_tree_new(void);
void nx_cmd_tree_free(struct nx_cmd_tree *tree);

/* Registers a node (VIEW and CONFIG exist from the start).  -EEXIST, -EINVAL. */
int nx_cmd_node_install(struct nx_cmd_tree *tree, const struct nx_cmd_node *node);
const struct nx_cmd_node *nx_cmd_node_get(const struct nx_cmd_tree *tree, int id);

/* Adds a command to a node.  The command and its strings must outlive the tree.  A syntax
 * error, or a help text whose line count differs from the token count, is -EINVAL with a
 * message: a programming error the daemon reports at start-up.  -EEXIST for a duplicate. */
int nx_cmd_install(struct nx_cmd_tree *tree, int node, const struct nx_cmd *cmd,
		   struct nx_err *err);

/* The result of matching a line: the command, the node it matched at, its arguments. */
struct nx_cmd_match {
	const struct nx_cmd *cmd;
	int node;
	int argc;
	struct nx_cmd_arg argv[NX_CMD_MAX_WORDS];
	char words[NX_CMD_LINE_MAX +
		   1]; /* variables' argv[].text point here, keywords' into the tree */
};

/*
 * Matches `line` at `node`, then at its parents.  Returns NX_CMD_SUCCESS with m filled (the
 * caller runs m->cmd->fn(vty, m->argc, m->argv)), or an error status with err describing it:
 * "% Unknown command: foo", "% Ambiguous command: ...", "% Command incomplete: ...".
 * A blank line or a comment line ('!' or '#' first) returns NX_CMD_SUCCESS with m->cmd NULL.
 */
int nx_cmd_match(const struct nx_cmd_tree *tree, int node, const char *line, struct nx_cmd_match *m,
		 struct nx_err *err);

/* Number of nodes between `node` and NX_NODE_CONFIG (0 for CONFIG and VIEW). */
int nx_cmd_node_depth(const struct nx_cmd_tree *tree, int node);

/* One candidate for '?' or TAB. */
struct nx_cmd_candidate {
	char text[64]; /* "service-url", "WORD", "A.B.C.D/M", "(1-65535)", "<cr>" */
	char help[128];
};

/*
 * '?': what may come next.  When `line` ends in a space (or is empty), the candidates for the
 * next word, plus "<cr>" when the line is already a complete command; otherwise the
 * candidates for the partial last word.  Sorted by text, duplicates merged.  Returns the
 * number of candidates (at most max are stored) or a negative errno.
 */
int nx_cmd_describe(const struct nx_cmd_tree *tree, int node, const char *line,
		    struct nx_cmd_candidate *out, size_t max);

/* TAB: the keywords that complete the partial last word of `line` (the whole keyword, not the
 * remaining suffix).  Same return convention. */
int nx_cmd_complete(const struct nx_cmd_tree *tree, int node, const char *line,
		    struct nx_cmd_candidate *out, size_t max);

/* Calls fn for every visible command of a node (for "list" and docs). */
void nx_cmd_foreach(const struct nx_cmd_tree *tree, int node,
		    void (*fn)(const struct nx_cmd *cmd, void *arg), void *arg);

#endif /* NX_COMMAND_H */
