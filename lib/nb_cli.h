/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * CLI to northbound glue (FRR's northbound_cli): configuration commands never touch daemon
 * state; they queue YANG edits and apply them as one transaction.  Also the commands every
 * daemon shares about its configuration: show running-config [json], write memory,
 * show configuration commit list, rollback configuration N.
 *
 * Interactive sessions commit each command on its own.  The config file is one transaction:
 * its edits accumulate in one candidate that is committed when the file has been read.
 */
#ifndef NX_NB_CLI_H
#define NX_NB_CLI_H

#include "lib/command.h"
#include "lib/northbound.h"
#include "lib/vty.h"

struct nx_nb_cli_config {
	struct nx_nb *nb;
	const char *daemon;	 /* "nexd": heads the config file */
	const char *config_path; /* where write memory writes */
};

/* Installs the shared commands into tree (VIEW) and remembers cfg for them.  One per
 * process: a second call replaces the first. */
int nx_nb_cli_init(struct nx_cmd_tree *tree, const struct nx_nb_cli_config *cfg);

/* Queues one edit for the current command.  A relative xpath ("./service-url") is taken
 * from the session's sub-node context (nx_vty_cur_xpath). */
void nx_nb_cli_enqueue(struct nx_vty *vty, enum nx_nb_op op, const char *xpath, const char *value);

/* Applies the queued edits: commits them (interactive) or adds them to the file's
 * transaction.  Prints "% Configuration failed: reason" and returns NX_CMD_WARNING when
 * refused; NX_CMD_SUCCESS otherwise (including "nothing changed"). */
int nx_nb_cli_apply(struct nx_vty *vty);

/* Reads the config file as one transaction (see lib/vty.h nx_vty_read_config).  A missing
 * file is -ENOENT (the caller decides whether that is fine). */
int nx_nb_cli_read_config(const struct nx_cmd_tree *tree, void *daemon, const char *path,
			  struct nx_err *err);

/* The configuration as the config file holds it: a header, the CLI text, "end". */
void nx_nb_cli_render_file(const struct lyd_node *tree, unsigned flags, struct nx_sbuf *out);

/*
 * A handler for the leaves of a sub-node, so that a daemon declares such commands by syntax
 * alone:  "NAME... VALUE$value", "no NAME... [VALUE$value]" and "[no] NAME..." for empty
 * leaves.  The keywords after an optional "no" name the node below the session's xpath
 * ("rate-limit burst" -> ./rate-limit/burst); the schema says whether it is a leaf (modify /
 * destroy), a leaf-list (create / destroy that entry) or an empty leaf (create / destroy).
 */
int nx_nb_cli_leaf_cmd(struct nx_vty *vty, int argc, const struct nx_cmd_arg *argv);

/* The matching cli_show callback: " NAME... VALUE" (secrets masked unless the flags allow),
 * or " NAME..." for an empty leaf; NAME... are the node's ancestors below the top-level
 * container, then the node itself. */
void nx_nb_cli_show_leaf(struct nx_sbuf *out, const struct lyd_node *dnode, unsigned flags);

/* Enters a configuration sub-node whose data is the container at xpath (created if need
 * be): the command that opens "nexodus", "controller", ... */
int nx_nb_cli_enter_node(struct nx_vty *vty, const char *xpath, int node);

/* Command table entries for nx_nb_cli_leaf_cmd: "NAME VALUE" with "no NAME [VALUE]" (a leaf),
 * "NAME VALUE" with "no NAME VALUE" (a leaf-list entry), "[no] NAME" (an empty leaf). */
#define NX_NB_CLI_NO_HELP "Negate a command or set its defaults\n"
#define NX_NB_CLI_LEAF_CMDS(syn, val, hlp, valhlp)                                            \
	{ .syntax = syn " " val "$value", .help = hlp valhlp, .fn = nx_nb_cli_leaf_cmd },     \
	{                                                                                     \
		.syntax = "no " syn " [" val "$value]", .help = NX_NB_CLI_NO_HELP hlp valhlp, \
		.fn = nx_nb_cli_leaf_cmd                                                      \
	}
#define NX_NB_CLI_LIST_CMDS(syn, val, hlp, valhlp)                                          \
	{ .syntax = syn " " val "$value", .help = hlp valhlp, .fn = nx_nb_cli_leaf_cmd },   \
	{                                                                                   \
		.syntax = "no " syn " " val "$value", .help = NX_NB_CLI_NO_HELP hlp valhlp, \
		.fn = nx_nb_cli_leaf_cmd                                                    \
	}
#define NX_NB_CLI_FLAG_CMD(syn, hlp)                                                           \
	{                                                                                      \
		.syntax = "[no] " syn, .help = NX_NB_CLI_NO_HELP hlp, .fn = nx_nb_cli_leaf_cmd \
	}

/* Frees a session's queued state (called by nx_vty_fini). */
void nx_nb_cli_state_free(struct nx_vty *vty);

#endif /* NX_NB_CLI_H */
