/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What every daemon of the suite does the same way, as FRR's libfrr: command line
 * (-N, --config, --state-dir, --vty-socket, -d, -C, --log-level), paths, logging, the YANG
 * northbound and the command tree, the config file, the VTY socket, daemonizing, the pid
 * file, systemd readiness, signals, and an orderly stop.  A daemon describes itself in a
 * struct nx_daemon and calls nx_daemon_main().
 */
#ifndef NX_DAEMON_H
#define NX_DAEMON_H

#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

#include "lib/command.h"
#include "lib/errmsg.h"
#include "lib/loop.h"
#include "lib/northbound.h"
#include "lib/paths.h"
#include "lib/vty.h"

#define NX_DAEMON_MAX_FLAG_EDITS 32

struct nx_daemon {
	/* --- set by the daemon --- */
	const char *name;		 /* "nexd" */
	const char *description;	 /* one line for --help */
	const char *const *yang_modules; /* to load, NULL-terminated */
	const char *yang_module;	 /* the daemon's own */
	const struct nx_nb_node *nb_nodes;
	size_t n_nb_nodes;
	/* Daemon-specific options: long options (ids >= 256) and their handler, which usually
	 * turns a flag into a leaf with nx_daemon_flag_edit().  Returns 0 or -EINVAL after
	 * printing why. */
	const struct option *extra_options;
	int (*extra_option)(struct nx_daemon *d, int id, const char *arg);
	const char *extra_usage; /* lines for --help */
	/* After the northbound and the command tree exist: install nodes and commands. */
	int (*init)(struct nx_daemon *d, struct nx_err *err);
	/* After the config is loaded and the VTY listens, before the loop runs. */
	int (*start)(struct nx_daemon *d, struct nx_err *err);
	/* On the way out, loop stopped. */
	void (*stop)(struct nx_daemon *d);
	void *ctx; /* the daemon's own state; handed to northbound callbacks and handlers */

	/* --- filled in by nx_daemon_main --- */
	struct nx_loop *loop;
	struct nx_nb *nb;
	struct nx_cmd_tree *tree;
	struct nx_vty_server *vty;
	const char *pathspace; /* NULL for the default instance */
	char config_path[PATH_MAX];
	char state_dir[PATH_MAX];
	char vty_path[PATH_MAX];
	char pid_path[PATH_MAX];
	bool daemonize;
	bool check_only;

	/* Leaves set from the command line, committed after the config file. */
	struct {
		enum nx_nb_op op;
		char *xpath;
		char *value;
	} flag_edits[NX_DAEMON_MAX_FLAG_EDITS];
	size_t n_flag_edits;
};

/* Runs the daemon; returns the process exit status. */
int nx_daemon_main(struct nx_daemon *d, int argc, char **argv);

/* Records a leaf a command-line flag sets (0, or -E2BIG / -ENOMEM). */
int nx_daemon_flag_edit(struct nx_daemon *d, enum nx_nb_op op, const char *xpath,
			const char *value);

#endif /* NX_DAEMON_H */
