/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Northbound: the daemon's configuration as YANG data, changed only by transactions.
 *
 * There is one running tree.  A change starts from a candidate (a private copy of running),
 * is edited, then committed: libyang validates the whole candidate, the candidate is diffed
 * against running (lyd_diff_siblings), and every changed node with callbacks goes through
 *
 *   VALIDATE  check the new value in context; refuse with a message for the user
 *   PREPARE   take what apply will need (memory, sockets); may fail
 *   APPLY     make it so; cannot fail              (or ABORT: release what PREPARE took)
 *
 * then apply_finish runs once per node that asked for it.  A commit that fails at any phase
 * before APPLY leaves running untouched.  The last NX_NB_ROLLBACK_MAX configurations are kept
 * so an earlier one can be committed again (rollback).
 *
 * Callbacks are a table keyed by schema path (as FRR's northbound):
 *   { .xpath = "/nexodus-agent:nexodus/service-url",
 *     .cbs = { .modify = svc_url_modify, .destroy = svc_url_destroy, .cli_show = svc_url_show } }
 */
#ifndef NX_NORTHBOUND_H
#define NX_NORTHBOUND_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <libyang/libyang.h>

#include "lib/errmsg.h"
#include "lib/strutil.h"

#define NX_NB_ROLLBACK_MAX 20

enum nx_nb_event {
	NX_NB_EV_VALIDATE,
	NX_NB_EV_PREPARE,
	NX_NB_EV_ABORT,
	NX_NB_EV_APPLY,
};

enum nx_nb_op {
	NX_NB_OP_CREATE,  /* a container, list entry or leaf-list entry appears (or a leaf is set
			   * for the first time, for leaves without a modify callback) */
	NX_NB_OP_MODIFY,  /* a leaf gets a value (created or changed) */
	NX_NB_OP_DESTROY, /* a node goes away */
};

/* What PREPARE took, handed back to ABORT or APPLY of the same change. */
union nx_nb_resource {
	void *ptr;
	int fd;
};

struct nx_nb_cb_args {
	enum nx_nb_event event;
	enum nx_nb_op op;
	/* The node in the new tree (create/modify) or in the old one (destroy). */
	const struct lyd_node *dnode;
	union nx_nb_resource *resource;
	void *daemon;
	/* VALIDATE and PREPARE: the reason, when returning non-zero. */
	char *errmsg;
	size_t errmsg_len;
};

/* Rendering flags for cli_show and the JSON/CLI renderers. */
#define NX_NB_SHOW_DEFAULTS 0x1 /* include leaves that hold their default value */
#define NX_NB_SHOW_SECRETS  0x2 /* secrets in clear: only for write memory, never show */

struct nx_nb_callbacks {
	int (*create)(struct nx_nb_cb_args *args);
	int (*modify)(struct nx_nb_cb_args *args);
	int (*destroy)(struct nx_nb_cb_args *args);
	/* Once per commit, after every APPLY, for each table entry whose subtree changed. */
	void (*apply_finish)(struct nx_nb_cb_args *args);
	/* CLI text for this node (one line, indented by the caller's convention). */
	void (*cli_show)(struct nx_sbuf *out, const struct lyd_node *dnode, unsigned flags);
	/* Closes a sub-node ("exit"), after the node's children are shown. */
	void (*cli_show_end)(struct nx_sbuf *out, const struct lyd_node *dnode, unsigned flags);
};

struct nx_nb_node {
	const char *xpath; /* schema path, module-qualified at the top */
	struct nx_nb_callbacks cbs;
};

struct nx_yang_embedded;

struct nx_nb_config {
	const struct nx_yang_embedded *const *embedded; /* where modules come from (lib/yang.h) */
	const char *const *modules;			/* YANG modules to load, NULL-terminated */
	const char *module; /* the daemon's own module: running holds its data */
	const struct nx_nb_node *nodes;
	size_t n_nodes;
	void *daemon; /* handed to callbacks */
};

struct nx_nb;

/* Loads the modules, checks that every table xpath exists in the schema (a typo is -EINVAL
 * with a message, a programming error), and starts with an empty running tree plus the
 * schema's defaults. */
struct nx_nb *nx_nb_new(const struct nx_nb_config *cfg, struct nx_err *err);
void nx_nb_free(struct nx_nb *nb);

struct ly_ctx *nx_nb_ctx(const struct nx_nb *nb);
const struct lyd_node *nx_nb_running(const struct nx_nb *nb); /* NULL when empty */

/* --- candidates ---------------------------------------------------------- */

struct nx_nb_candidate;

/* A copy of running, to edit. */
struct nx_nb_candidate *nx_nb_candidate_new(struct nx_nb *nb);
void nx_nb_candidate_free(struct nx_nb_candidate *cand);

/*
 * One edit.  xpath is a data path ("/nexodus-agent:nexodus/stun-server[.='1.2.3.4:3478']").
 * CREATE and MODIFY create missing parents; MODIFY sets the value; DESTROY removes the node
 * (removing one that is not there is not an error, as in FRR).  A value the type refuses is
 * -EINVAL with libyang's reason naming the value.
 */
int nx_nb_candidate_edit(struct nx_nb_candidate *cand, enum nx_nb_op op, const char *xpath,
			 const char *value, struct nx_err *err);

/* Replaces the candidate's data with a parsed tree (NETCONF edit-config, JSON load). */
int nx_nb_candidate_load_json(struct nx_nb_candidate *cand, const char *json, struct nx_err *err);

const struct lyd_node *nx_nb_candidate_tree(const struct nx_nb_candidate *cand);

/*
 * Commits the candidate: validate, prepare, apply (see top).  Returns 0 and sets *commit_id
 * (may be NULL) when running changed; -EALREADY ("no changes") when the candidate equals
 * running; a negative errno with err describing the first failure otherwise (running
 * untouched).  The candidate stays valid and may be freed or edited further.
 */
int nx_nb_commit(struct nx_nb *nb, struct nx_nb_candidate *cand, const char *comment,
		 uint32_t *commit_id, struct nx_err *err);

/* --- rollback log --------------------------------------------------------- */

struct nx_nb_commit_info {
	uint32_t id; /* increasing from 1 */
	time_t when;
	char comment[96];
};

/* Newest first; returns how many (at most max). */
size_t nx_nb_commit_list(const struct nx_nb *nb, struct nx_nb_commit_info *out, size_t max);

/* Commits again the configuration that commit `id` produced (it must still be in the log:
 * -ENOENT otherwise).  A new commit entry records the rollback. */
int nx_nb_rollback(struct nx_nb *nb, uint32_t id, struct nx_err *err);

/* --- rendering ------------------------------------------------------------ */

/* CLI text of a tree (running or a candidate's) through the cli_show callbacks, walking the
 * data tree in schema order.  Secret leaves are shown as "********" without
 * NX_NB_SHOW_SECRETS (the callbacks get flags and use nx_nb_show_value()). */
void nx_nb_render_cli(const struct nx_nb *nb, const struct lyd_node *tree, unsigned flags,
		      struct nx_sbuf *out);

/* JSON (RFC 7951, as libyang prints it; yanglint accepts it).  Secret leaves are replaced by
 * "********" unless NX_NB_SHOW_SECRETS.  Caller frees. */
char *nx_nb_render_json(const struct nx_nb *nb, const struct lyd_node *tree, unsigned flags);

/* A leaf's value for display: the canonical value, or "********" for a secret leaf without
 * NX_NB_SHOW_SECRETS. */
const char *nx_nb_show_value(const struct lyd_node *dnode, unsigned flags);

/* Convenience getters on a data tree, by data path relative to dnode (or absolute). NULL /
 * false / def when absent. */
const char *nx_nb_get_string(const struct lyd_node *dnode, const char *xpath);
bool nx_nb_exists(const struct lyd_node *dnode, const char *xpath);
long long nx_nb_get_int(const struct lyd_node *dnode, const char *xpath, long long def);

#endif /* NX_NORTHBOUND_H */
