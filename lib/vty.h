/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * VTY: CLI sessions.  A session runs command lines through the command tree and collects
 * their output.  Sessions come from three places: a client of the daemon's unix socket
 * (nexsh), the config file read at start-up, and tests (a buffer session).
 *
 * Socket protocol (FRR's vtysh framing, plus three request kinds):
 *   request:  one command line terminated by NUL.  When its first byte is
 *             NX_VTY_REQ_COMPLETE / NX_VTY_REQ_DESCRIBE / NX_VTY_REQ_PROMPT, the rest of the
 *             line is the partial input to complete or describe (ignored for PROMPT).
 *   reply:    output bytes, then three NUL bytes, then one status byte (enum nx_cmd_status).
 *             COMPLETE output: one candidate per line.  DESCRIBE output: "text\thelp\n" per
 *             candidate.  PROMPT output: the session's prompt ("nexd(config-nexodus)# ").
 * A client that sends a line longer than NX_CMD_LINE_MAX, or garbage, gets an error reply
 * and is disconnected; one that goes away mid-reply is dropped.  Neither harms the daemon.
 */
#ifndef NX_VTY_H
#define NX_VTY_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/command.h"
#include "lib/errmsg.h"
#include "lib/strutil.h"

struct nx_loop;

#define NX_VTY_REQ_COMPLETE '\x01'
#define NX_VTY_REQ_DESCRIBE '\x02'
#define NX_VTY_REQ_PROMPT   '\x03'

#define NX_VTY_OUTPUT_MAX  (16u << 20) /* one reply; beyond it output is cut with a notice */
#define NX_VTY_XPATH_MAX   512
#define NX_VTY_XPATH_DEPTH 8

enum nx_vty_kind {
	NX_VTY_SOCKET, /* a client of the unix socket */
	NX_VTY_FILE,   /* the config file: every line is one transaction's edit */
	NX_VTY_BUFFER, /* tests and internal callers */
};

struct nx_nb_cli_state; /* lib/nb_cli.c: edits queued by the current command */

struct nx_vty {
	enum nx_vty_kind kind;
	int node;
	const struct nx_cmd_tree *tree;
	void *daemon;	      /* the daemon's context, for handlers */
	const char *hostname; /* for prompts */
	struct nx_sbuf out;   /* output of the current request (growable) */

	/* Northbound CLI context: the data node a sub-node edits ("/nexodus-agent:nexodus"),
	 * pushed by the command that enters the sub-node, popped by exit.  Invariant:
	 * xpath_depth == nx_cmd_node_depth(node); a command matched at an ancestor node pops
	 * the extra entries before its handler runs. */
	char xpath[NX_VTY_XPATH_DEPTH][NX_VTY_XPATH_MAX];
	int xpath_depth;
	struct nx_nb_cli_state *nb; /* owned by lib/nb_cli.c; NULL until first used */

	const char *file; /* NX_VTY_FILE: path, for messages */
	unsigned lineno;  /* NX_VTY_FILE: current line */
};

/* Output for the current request. */
void nx_vty_out(struct nx_vty *vty, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A session not bound to a socket, at `node`; output collects in vty->out.  Free with
 * nx_vty_fini (which also releases the nb_cli state). */
void nx_vty_init(struct nx_vty *vty, enum nx_vty_kind kind, const struct nx_cmd_tree *tree,
		 void *daemon, int node);
void nx_vty_fini(struct nx_vty *vty);

/* Runs one line at the session's node; errors from matching are printed to vty->out as
 * "% ..." lines.  Returns enum nx_cmd_status. */
int nx_vty_execute(struct nx_vty *vty, const char *line);

/* The prompt of the session's current node: "HOST# ", "HOST(config)# ", ... */
void nx_vty_prompt(const struct nx_vty *vty, char *buf, size_t size);

/* Sub-node context stack (see struct nx_vty).  Push returns -E2BIG when full, -ENAMETOOLONG
 * for an xpath of NX_VTY_XPATH_MAX bytes or more. */
int nx_vty_push_xpath(struct nx_vty *vty, const char *xpath);
void nx_vty_pop_xpath(struct nx_vty *vty);
const char *nx_vty_cur_xpath(const struct nx_vty *vty); /* "" at top level */

/*
 * Runs one socket request on the session: a command line, or (by its first byte) a
 * COMPLETE / DESCRIBE / PROMPT request.  vty->out is reset and then holds the reply's output;
 * returns its status byte (enum nx_cmd_status).
 */
int nx_vty_request(struct nx_vty *vty, const char *req);

/*
 * Request framing, apart from the socket so it can be tested and fuzzed: looks at the first
 * request in buf[0..len).  Returns its length including the terminating NUL (the request is
 * the string at buf), 0 when its NUL has not arrived yet, -E2BIG when NX_VTY_REQUEST_MAX
 * bytes came without a NUL, -EINVAL when it holds a control byte (other than a tab, or the
 * request kind as first byte).
 */
#define NX_VTY_REQUEST_MAX (NX_CMD_LINE_MAX + 1) /* a kind byte + a line, NUL not counted */
int nx_vty_frame(const char *buf, size_t len);

/*
 * Reads a config file (CLI text) into a NX_VTY_FILE session at NX_NODE_CONFIG, one line at a
 * time.  Stops at the first failing line: err says "FILE:LINE: reason".  When every line
 * succeeded, calls finish(vty, err) (nb_cli commits the one transaction there) and returns
 * its result.  A missing file is -ENOENT (callers decide whether that is fine).
 */
int nx_vty_read_config(const struct nx_cmd_tree *tree, void *daemon, const char *path,
		       int (*finish)(struct nx_vty *vty, struct nx_err *err), struct nx_err *err);

/*
 * The daemon's unix socket server.  Creates the socket at `path` (mode 0660, group
 * "nexodus" when that group exists), replacing a stale socket file but refusing to take over
 * one a live daemon still answers on (-EADDRINUSE).  Built-in commands (configure terminal,
 * end, exit, quit, ...) are the tree's: see nx_vty_install_basic_commands().
 * On failure returns NULL with err set and errno the reason (EADDRINUSE for a live socket,
 * EEXIST for a path that is not a socket, ENAMETOOLONG, or the system call's).
 */
struct nx_vty_server;

struct nx_vty_server *nx_vty_server_new(struct nx_loop *loop, const char *path,
					const struct nx_cmd_tree *tree, void *daemon,
					const char *hostname, struct nx_err *err);
/* Closes every session and removes the socket file. */
void nx_vty_server_free(struct nx_vty_server *srv);

/* Installs the commands every daemon has: "configure [terminal]", "end", "exit", "quit",
 * "show version", "list" (in VIEW, CONFIG, and every node installed so far).  Call after the
 * daemon's nodes are installed. */
int nx_vty_install_basic_commands(struct nx_cmd_tree *tree, const char *progname);

#endif /* NX_VTY_H */
