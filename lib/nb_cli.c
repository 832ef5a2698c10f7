/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * CLI to northbound glue: queued edits, one transaction per command (or per config file),
 * and the configuration commands every daemon shares.  See nb_cli.h.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/nb_cli.h"
#include "lib/paths.h"

#define NB_CLI_MAX_CHANGES 32

struct nb_cli_change {
	enum nx_nb_op op;
	char xpath[NX_VTY_XPATH_MAX];
	char *value;
};

struct nx_nb_cli_state {
	struct nb_cli_change changes[NB_CLI_MAX_CHANGES];
	size_t n_changes;
	bool overflow;
	struct nx_nb_candidate *file_cand; /* NX_VTY_FILE: the one transaction */
};

static struct nx_nb_cli_config nb_cli;

static struct nx_nb_cli_state *state_get(struct nx_vty *vty)
{
	if (!vty->nb)
		vty->nb = calloc(1, sizeof(*vty->nb));
	return vty->nb;
}

static void changes_clear(struct nx_nb_cli_state *st)
{
	for (size_t i = 0; i < st->n_changes; i++)
		free(st->changes[i].value);
	st->n_changes = 0;
	st->overflow = false;
}

void nx_nb_cli_state_free(struct nx_vty *vty)
{
	if (!vty->nb)
		return;
	changes_clear(vty->nb);
	nx_nb_candidate_free(vty->nb->file_cand);
	free(vty->nb);
	vty->nb = NULL;
}

void nx_nb_cli_enqueue(struct nx_vty *vty, enum nx_nb_op op, const char *xpath, const char *value)
{
	struct nx_nb_cli_state *st = state_get(vty);
	struct nb_cli_change *c;

	if (!st)
		return;
	if (st->n_changes >= NB_CLI_MAX_CHANGES) {
		st->overflow = true;
		return;
	}
	c = &st->changes[st->n_changes];
	if (strncmp(xpath, "./", 2) == 0)
		snprintf(c->xpath, sizeof(c->xpath), "%s/%s", nx_vty_cur_xpath(vty), xpath + 2);
	else
		nx_strlcpy(c->xpath, xpath, sizeof(c->xpath));
	c->op = op;
	c->value = value ? strdup(value) : NULL;
	st->n_changes++;
}

/* Applies the queued edits to cand; the first refusal is described in err. */
static int edits_apply(struct nx_nb_cli_state *st, struct nx_nb_candidate *cand, struct nx_err *err)
{
	if (st->overflow)
		return nx_err_set(err, E2BIG, "too many changes in one command");
	for (size_t i = 0; i < st->n_changes; i++) {
		struct nb_cli_change *c = &st->changes[i];
		int rc = nx_nb_candidate_edit(cand, c->op, c->xpath, c->value, err);

		if (rc < 0)
			return rc;
	}
	return 0;
}

int nx_nb_cli_apply(struct nx_vty *vty)
{
	struct nx_nb_cli_state *st = state_get(vty);
	struct nx_nb_candidate *cand = NULL;
	struct nx_err err = { "" };
	int rc;

	if (!st || !nb_cli.nb) {
		nx_vty_out(vty, "%% Configuration failed: no northbound\n");
		return NX_CMD_WARNING;
	}
	if (vty->kind == NX_VTY_FILE) {
		if (!st->file_cand)
			st->file_cand = nx_nb_candidate_new(nb_cli.nb);
		rc = st->file_cand ? edits_apply(st, st->file_cand, &err) : -ENOMEM;
		goto out;
	}

	cand = nx_nb_candidate_new(nb_cli.nb);
	if (!cand) {
		rc = nx_err_set(&err, ENOMEM, "out of memory");
		goto out;
	}
	rc = edits_apply(st, cand, &err);
	if (rc == 0) {
		rc = nx_nb_commit(nb_cli.nb, cand, "cli", NULL, &err);
		if (rc == -EALREADY)
			rc = 0;
	}
out:
	nx_nb_candidate_free(cand);
	changes_clear(st);
	if (rc < 0) {
		nx_vty_out(vty, "%% Configuration failed: %s\n",
			   err.msg[0] ? err.msg : strerror(-rc));
		return NX_CMD_WARNING;
	}
	return NX_CMD_SUCCESS;
}

static int file_finish(struct nx_vty *vty, struct nx_err *err)
{
	int rc;

	if (!vty->nb || !vty->nb->file_cand)
		return 0; /* an empty file */
	rc = nx_nb_commit(nb_cli.nb, vty->nb->file_cand, "config file", NULL, err);
	if (rc == -EALREADY)
		return 0;
	if (rc < 0) {
		char reason[NX_ERR_MAX];

		nx_strlcpy(reason, err ? err->msg : "", sizeof(reason));
		return nx_err_set(err, -rc, "%s: %s", vty->file, reason);
	}
	return 0;
}

int nx_nb_cli_read_config(const struct nx_cmd_tree *tree, void *daemon, const char *path,
			  struct nx_err *err)
{
	return nx_vty_read_config(tree, daemon, path, file_finish, err);
}

void nx_nb_cli_render_file(const struct lyd_node *tree, unsigned flags, struct nx_sbuf *out)
{
	nx_sbuf_printf(out, "! %s configuration\n!\n", nb_cli.daemon ? nb_cli.daemon : "");
	nx_nb_render_cli(nb_cli.nb, tree, flags, out);
	nx_sbuf_puts(out, "!\nend\n");
}

/* Writes an XPath string literal for value; -EINVAL when it holds both quote characters. */
static int xpath_literal(char *buf, size_t size, const char *value)
{
	char q = strchr(value, '\'') ? '"' : '\'';

	if (q == '"' && strchr(value, '"'))
		return -EINVAL;
	snprintf(buf, size, "%c%s%c", q, value, q);
	return 0;
}

int nx_nb_cli_leaf_cmd(struct nx_vty *vty, int argc, const struct nx_cmd_arg *argv)
{
	bool no = nx_cmd_arg_has(argc, argv, "no");
	const char *value = nx_cmd_arg_get(argc, argv, "value");
	char path[NX_VTY_XPATH_MAX], schema_path[NX_VTY_XPATH_MAX], lit[NX_VTY_XPATH_MAX];
	struct nx_sbuf rel;
	const struct lysc_node *snode;

	nx_sbuf_init(&rel, path, sizeof(path));
	nx_sbuf_puts(&rel, ".");
	for (int i = no ? 1 : 0;
	     i < argc && argv[i].type == NX_TOK_KEYWORD && strcmp(argv[i].name, "value") != 0; i++)
		nx_sbuf_printf(&rel, "/%s", argv[i].text);
	snprintf(schema_path, sizeof(schema_path), "%s%s", nx_vty_cur_xpath(vty), path + 1);
	snode = lys_find_path(nx_nb_ctx(nb_cli.nb), NULL, schema_path, 0);
	if (!snode || nx_sbuf_truncated(&rel)) {
		nx_vty_out(vty, "%% Internal error: no schema node %s\n", schema_path);
		return NX_CMD_WARNING;
	}

	if (snode->nodetype == LYS_LEAFLIST) {
		if (!value || xpath_literal(lit, sizeof(lit), value) < 0) {
			nx_vty_out(vty, "%% %s: a value may not hold both ' and \"\n", snode->name);
			return NX_CMD_WARNING;
		}
		nx_sbuf_printf(&rel, "[.=%s]", lit);
		/* The value goes along too, so that a refusal can name it. */
		nx_nb_cli_enqueue(vty, no ? NX_NB_OP_DESTROY : NX_NB_OP_CREATE, path, value);
	} else if (((const struct lysc_node_leaf *)snode)->type->basetype == LY_TYPE_EMPTY) {
		nx_nb_cli_enqueue(vty, no ? NX_NB_OP_DESTROY : NX_NB_OP_CREATE, path, NULL);
	} else {
		nx_nb_cli_enqueue(vty, no ? NX_NB_OP_DESTROY : NX_NB_OP_MODIFY, path, value);
	}
	return nx_nb_cli_apply(vty);
}

int nx_nb_cli_enter_node(struct nx_vty *vty, const char *xpath, int node)
{
	int rc;

	nx_nb_cli_enqueue(vty, NX_NB_OP_CREATE, xpath, NULL);
	rc = nx_nb_cli_apply(vty);
	if (rc != NX_CMD_SUCCESS)
		return rc;
	if (nx_vty_push_xpath(vty, xpath) < 0) {
		nx_vty_out(vty, "%% Too deeply nested\n");
		return NX_CMD_WARNING;
	}
	vty->node = node;
	return NX_CMD_SUCCESS;
}

/* Writes the names of dnode's ancestors below the top-level container, then its own. */
static void show_names(struct nx_sbuf *out, const struct lyd_node *dnode)
{
	if (dnode->parent && dnode->parent->parent)
		show_names(out, lyd_parent(dnode));
	nx_sbuf_printf(out, " %s", dnode->schema->name);
}

void nx_nb_cli_show_leaf(struct nx_sbuf *out, const struct lyd_node *dnode, unsigned flags)
{
	show_names(out, dnode);
	if (dnode->schema->nodetype == LYS_LEAF &&
	    ((const struct lysc_node_leaf *)dnode->schema)->type->basetype == LY_TYPE_EMPTY)
		nx_sbuf_puts(out, "\n");
	else
		nx_sbuf_printf(out, " %s\n", nx_nb_show_value(dnode, flags));
}

NX_DEFUN(show_running_config, "show running-config [json]",
	 "Show running system information\nCurrent operating configuration\nJSON output\n")
{
	const struct lyd_node *running = nx_nb_running(nb_cli.nb);

	if (nx_cmd_arg_has(argc, argv, "json")) {
		char *json = nx_nb_render_json(nb_cli.nb, running, 0);

		nx_vty_out(vty, "%s\n", json && json[0] ? json : "{}");
		free(json);
		return NX_CMD_SUCCESS;
	}
	struct nx_sbuf buf;

	nx_sbuf_init(&buf, NULL, 0);
	nx_nb_cli_render_file(running, 0, &buf);
	nx_vty_out(vty, "%s", nx_sbuf_str(&buf));
	nx_sbuf_fini(&buf);
	return NX_CMD_SUCCESS;
}

NX_DEFUN(write_memory, "<write [memory|file]|copy running-config startup-config>",
	 "Write running configuration to memory, network, or terminal\n"
	 "Write configuration to the startup configuration file\n"
	 "Write configuration to the startup configuration file\n"
	 "Copy configuration\nCopy from the running configuration\n"
	 "Copy to the startup configuration\n")
{
	struct nx_sbuf buf;
	struct nx_err err = { "" };
	int rc;

	if (!nb_cli.config_path) {
		nx_vty_out(vty, "%% No configuration file\n");
		return NX_CMD_WARNING;
	}
	nx_sbuf_init(&buf, NULL, 0);
	/* The file is the only place secrets are written in clear: it is 0600. */
	nx_nb_cli_render_file(nx_nb_running(nb_cli.nb), NX_NB_SHOW_SECRETS, &buf);
	rc = nx_sbuf_truncated(&buf) ? nx_err_set(&err, ENOMEM, "out of memory") : 0;
	if (rc == 0)
		rc = nx_mkdir_parents(nb_cli.config_path, 0755, 0, &err);
	if (rc == 0)
		rc = nx_write_file_atomic(nb_cli.config_path, nx_sbuf_str(&buf), nx_sbuf_len(&buf),
					  0600, &err);
	nx_sbuf_fini(&buf);
	if (rc < 0) {
		nx_vty_out(vty, "%% Can't write %s: %s\n", nb_cli.config_path, err.msg);
		return NX_CMD_WARNING;
	}
	nx_vty_out(vty, "Configuration saved to %s\n", nb_cli.config_path);
	return NX_CMD_SUCCESS;
}

NX_DEFUN(show_commit_list, "show configuration commit list [json]",
	 "Show running system information\nConfiguration\nCommits\nThe commits kept for "
	 "rollback\nJSON output\n")
{
	struct nx_nb_commit_info info[NX_NB_ROLLBACK_MAX];
	size_t n = nx_nb_commit_list(nb_cli.nb, info, NX_NB_ROLLBACK_MAX);
	bool json = nx_cmd_arg_has(argc, argv, "json");

	if (json)
		nx_vty_out(vty, "{\"commits\":[");
	else
		nx_vty_out(vty, "%-8s %-20s %s\n", "ID", "Time", "Comment");
	for (size_t i = 0; i < n; i++) {
		char when[32];
		struct tm tm;

		gmtime_r(&info[i].when, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (json)
			nx_vty_out(vty, "%s{\"id\":%u,\"time\":\"%s\",\"comment\":\"%s\"}",
				   i ? "," : "", info[i].id, when, info[i].comment);
		else
			nx_vty_out(vty, "%-8u %-20s %s\n", info[i].id, when, info[i].comment);
	}
	if (json)
		nx_vty_out(vty, "]}\n");
	return NX_CMD_SUCCESS;
}

NX_DEFUN(rollback_configuration, "rollback configuration (1-4294967295)$id",
	 "Roll back to an earlier configuration\nThe configuration\nCommit ID (show configuration "
	 "commit list)\n")
{
	unsigned long long id;
	struct nx_err err = { "" };
	int rc;

	rc = nx_parse_uint(nx_cmd_arg_get(argc, argv, "id"), 1, UINT32_MAX, &id, &err);
	if (rc == 0)
		rc = nx_nb_rollback(nb_cli.nb, (uint32_t)id, &err);
	if (rc == -EALREADY)
		rc = 0;
	if (rc < 0) {
		nx_vty_out(vty, "%% Rollback failed: %s\n", err.msg);
		return NX_CMD_WARNING;
	}
	return NX_CMD_SUCCESS;
}

int nx_nb_cli_init(struct nx_cmd_tree *tree, const struct nx_nb_cli_config *cfg)
{
	static const struct nx_cmd *const cmds[] = {
		&show_running_config,
		&write_memory,
		&show_commit_list,
		&rollback_configuration,
	};
	struct nx_err err;

	nb_cli = *cfg;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		int rc = nx_cmd_install(tree, NX_NODE_VIEW, cmds[i], &err);

		if (rc < 0)
			return rc;
	}
	return 0;
}
