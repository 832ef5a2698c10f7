/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Northbound: configuration as YANG data, changed only by transactions (see northbound.h).
 *
 * The daemon's state follows its configuration through one path only: a candidate is
 * validated by libyang, diffed against running, and every difference becomes a callback
 * (validate, prepare, apply or abort).  Keeping that path single is what lets the CLI, the
 * configuration file and NETCONF share one meaning of "configure X".
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonutil.h"
#include "lib/log.h"
#include "lib/northbound.h"
#include "lib/strutil.h"
#include "lib/yang.h"

#define SECRET_MASK "********"

/* Deepest JSON configuration document accepted. */
#define NB_JSON_DEPTH 64

/* Copies keep the default flags: a default leaf must stay one in a candidate. */
#define NB_DUP_OPTS (LYD_DUP_RECURSIVE | LYD_DUP_WITH_FLAGS)

/* One row of the callback table, found by its normalised schema path. */
struct nb_entry {
	char *path;
	const struct nx_nb_node *node;
	size_t index; /* position in nx_nb.entries, for per-commit marks */
};

struct nb_log_entry {
	struct nx_nb_commit_info info;
	struct lyd_node *tree; /* the configuration this commit produced (NULL: empty) */
};

struct nx_nb {
	struct ly_ctx *ctx;
	const struct lys_module *mod;
	struct nb_entry *entries; /* sorted by path */
	size_t n_entries;
	void *daemon;
	struct lyd_node *running;
	struct nb_log_entry log[NX_NB_ROLLBACK_MAX]; /* ring: the oldest is overwritten */
	size_t log_next;			     /* slot of the next entry */
	size_t log_count;
	uint32_t last_id;
};

struct nx_nb_candidate {
	struct nx_nb *nb;
	struct lyd_node *tree; /* first sibling, or NULL */
};

typedef int (*nb_cb_fn)(struct nx_nb_cb_args *args);

/* One difference between running and the new configuration. */
struct nb_change {
	enum nx_nb_op op;
	nb_cb_fn cb;		       /* NULL: nothing to call */
	const struct lyd_node *dnode;  /* new tree (create, modify) or old tree (destroy) */
	const struct lyd_node *anchor; /* new-tree node where the apply_finish search starts */
	union nx_nb_resource resource;
};

struct nb_vec {
	struct nb_change *v;
	size_t n, cap;
};

struct nb_finish {
	const struct nb_entry *entry;
	const struct lyd_node *dnode;
};

/* Everything one commit computes before calling anybody. */
struct nb_txn {
	struct nb_vec dels, adds;
	struct nb_change *changes; /* dels then adds */
	size_t n_changes;
	struct nb_finish *finish;
	size_t n_finish;
};

/* --- the callback table ---------------------------------------------------- */

/*
 * Entries are matched by schema path: each xpath is resolved and normalised once at
 * nx_nb_new() (lysc_path, data form, so "/m:a/m:b" and "/m:a/b" are one entry) and kept
 * sorted; a node finds its entry by the same normalised path.  Nothing is stored in the
 * schema, so a context recompiled by modules loaded later (NETCONF) leaves nothing stale.
 */

static int entry_cmp(const void *a, const void *b)
{
	const struct nb_entry *ea = a, *eb = b;

	return strcmp(ea->path, eb->path);
}

static const struct nb_entry *nb_lookup(const struct nx_nb *nb, const struct lysc_node *snode)
{
	struct nb_entry key = { 0 };
	const struct nb_entry *found;

	if (!snode || !nb->n_entries)
		return NULL;
	key.path = lysc_path(snode, LYSC_PATH_DATA, NULL, 0);
	if (!key.path)
		return NULL;
	found = bsearch(&key, nb->entries, nb->n_entries, sizeof(*nb->entries), entry_cmp);
	free(key.path);
	return found;
}

static int nb_table_load(struct nx_nb *nb, const struct nx_nb_node *nodes, size_t n,
			 struct nx_err *err)
{
	const struct lysc_node *snode;
	char what[160];
	size_t i;

	if (!n)
		return 0;
	nb->entries = calloc(n, sizeof(*nb->entries));
	if (!nb->entries)
		return nx_err_set(err, ENOMEM, "northbound table: out of memory");

	for (i = 0; i < n; i++) {
		const struct nx_nb_node *node = &nodes[i];

		if (!node->xpath)
			return nx_err_set(err, EINVAL, "northbound table: entry %zu has no xpath",
					  i);
		snprintf(what, sizeof(what), "northbound table: \"%s\"", node->xpath);
		ly_err_clean(nb->ctx, NULL);
		snode = lys_find_path(nb->ctx, NULL, node->xpath, 0);
		if (!snode) {
			if (ly_err_last(nb->ctx))
				return nx_yang_err(nb->ctx, err, EINVAL, what);
			return nx_err_set(err, EINVAL, "%s: no such schema node", what);
		}
		if (node->cbs.modify && snode->nodetype != LYS_LEAF)
			return nx_err_set(err, EINVAL, "%s: only a leaf can have a modify callback",
					  what);
		if (lysc_is_key(snode) &&
		    (node->cbs.create || node->cbs.modify || node->cbs.destroy))
			return nx_err_set(err, EINVAL,
					  "%s: a list key changes only with its entry; give the "
					  "callbacks to the list",
					  what);
		nb->entries[i].path = lysc_path(snode, LYSC_PATH_DATA, NULL, 0);
		if (!nb->entries[i].path)
			return nx_err_set(err, ENOMEM, "northbound table: out of memory");
		nb->entries[i].node = node;
		nb->n_entries = i + 1;
	}

	qsort(nb->entries, nb->n_entries, sizeof(*nb->entries), entry_cmp);
	for (i = 0; i < nb->n_entries; i++) {
		if (i > 0 && !strcmp(nb->entries[i - 1].path, nb->entries[i].path))
			return nx_err_set(err, EINVAL, "northbound table: \"%s\" appears twice",
					  nb->entries[i].path);
		nb->entries[i].index = i;
	}
	return 0;
}

/* --- life cycle ---------------------------------------------------------- */

struct nx_nb *nx_nb_new(const struct nx_nb_config *cfg, struct nx_err *err)
{
	struct nx_nb *nb;

	if (!cfg || !cfg->embedded || !cfg->modules || !cfg->module ||
	    (cfg->n_nodes && !cfg->nodes)) {
		nx_err_set(err, EINVAL, "northbound: incomplete configuration");
		return NULL;
	}
	nb = calloc(1, sizeof(*nb));
	if (!nb) {
		nx_err_set(err, ENOMEM, "northbound: out of memory");
		return NULL;
	}
	nb->daemon = cfg->daemon;

	nb->ctx = nx_yang_ctx_new(cfg->embedded, cfg->modules, err);
	if (!nb->ctx)
		goto fail;
	nb->mod = ly_ctx_get_module_implemented(nb->ctx, cfg->module);
	if (!nb->mod) {
		nx_err_set(err, EINVAL, "YANG module \"%s\" is not among the loaded modules",
			   cfg->module);
		goto fail;
	}
	if (nb_table_load(nb, cfg->nodes, cfg->n_nodes, err) < 0)
		goto fail;

	/* An empty configuration plus the schema's defaults (no callbacks are called). */
	ly_err_clean(nb->ctx, NULL);
	if (lyd_validate_module(&nb->running, nb->mod, LYD_VALIDATE_NO_STATE, NULL) != LY_SUCCESS) {
		nx_yang_err(nb->ctx, err, EINVAL, "default configuration");
		goto fail;
	}
	return nb;

fail:
	nx_nb_free(nb);
	return NULL;
}

void nx_nb_free(struct nx_nb *nb)
{
	size_t i;

	if (!nb)
		return;
	lyd_free_all(nb->running);
	for (i = 0; i < NX_NB_ROLLBACK_MAX; i++)
		lyd_free_all(nb->log[i].tree);
	for (i = 0; i < nb->n_entries; i++)
		free(nb->entries[i].path);
	free(nb->entries);
	if (nb->ctx)
		ly_ctx_destroy(nb->ctx);
	free(nb);
}

struct ly_ctx *nx_nb_ctx(const struct nx_nb *nb)
{
	return nb->ctx;
}

const struct lyd_node *nx_nb_running(const struct nx_nb *nb)
{
	return nb->running;
}

/* --- candidates ------------------------------------------------------------ */

struct nx_nb_candidate *nx_nb_candidate_new(struct nx_nb *nb)
{
	struct nx_nb_candidate *cand;

	cand = calloc(1, sizeof(*cand));
	if (!cand)
		return NULL;
	cand->nb = nb;
	if (nb->running && lyd_dup_siblings(nb->running, NULL, NB_DUP_OPTS, &cand->tree)) {
		free(cand);
		return NULL;
	}
	return cand;
}

void nx_nb_candidate_free(struct nx_nb_candidate *cand)
{
	if (!cand)
		return;
	lyd_free_all(cand->tree);
	free(cand);
}

const struct lyd_node *nx_nb_candidate_tree(const struct nx_nb_candidate *cand)
{
	return cand->tree;
}

/* The data path starts at a top-level node of the daemon's module. */
static int check_path_module(const struct nx_nb *nb, const char *xpath, struct nx_err *err)
{
	size_t len = strlen(nb->mod->name);

	if (!xpath || xpath[0] != '/')
		return nx_err_set(err, EINVAL, "\"%s\": not an absolute data path",
				  xpath ? xpath : "");
	if (strncmp(xpath + 1, nb->mod->name, len) != 0 || xpath[1 + len] != ':')
		return nx_err_set(err, EINVAL, "\"%s\": not a node of module %s", xpath,
				  nb->mod->name);
	return 0;
}

/* Every top-level node of tree belongs to the daemon's module. */
static int check_tree_module(const struct nx_nb *nb, const struct lyd_node *tree,
			     struct nx_err *err)
{
	const struct lyd_node *n;
	const struct lys_module *mod;

	for (n = tree ? lyd_first_sibling(tree) : NULL; n; n = n->next) {
		mod = lyd_owner_module(n);
		if (!n->schema || mod != nb->mod)
			return nx_err_set(err, EINVAL, "\"%s\": not configuration of module %s",
					  LYD_NAME(n), nb->mod->name);
	}
	return 0;
}

/* Replaces every quoted occurrence of value in msg ("value", as libyang quotes values) by
 * the secret mask. */
static void mask_value(char *msg, size_t size, const char *value)
{
	char out[NX_ERR_MAX], needle[NX_ERR_MAX];
	struct nx_sbuf b;
	const char *p = msg, *hit;
	size_t nlen;

	if (!value[0] ||
	    (size_t)snprintf(needle, sizeof(needle), "\"%s\"", value) >= sizeof(needle))
		return;
	nlen = strlen(needle);
	nx_sbuf_init(&b, out, sizeof(out));
	while ((hit = strstr(p, needle))) {
		nx_sbuf_printf(&b, "%.*s\"%s\"", (int)(hit - p), p, SECRET_MASK);
		p = hit + nlen;
	}
	nx_sbuf_puts(&b, p);
	nx_strlcpy(msg, nx_sbuf_str(&b), size);
}

/* Copies a data path without its predicates ("[.='x']", "[name='y']"), which schema
 * lookups do not take; quotes inside predicates are honoured. */
static void strip_predicates(char *out, size_t size, const char *path)
{
	size_t n = 0;
	int depth = 0;
	char quote = 0;

	for (const char *p = path; *p && n + 1 < size; p++) {
		if (quote) {
			if (*p == quote)
				quote = 0;
		} else if (depth && (*p == '\'' || *p == '"')) {
			quote = *p;
		} else if (*p == '[') {
			depth++;
		} else if (*p == ']' && depth) {
			depth--;
		} else if (!depth) {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
}

/* The schema node of a data path, looked up without logging. */
static const struct lysc_node *find_schema(const struct nx_nb *nb, const char *path)
{
	const struct lysc_node *snode;
	char spath[1024];
	uint32_t quiet = 0;

	strip_predicates(spath, sizeof(spath), path);
	ly_temp_log_options(&quiet);
	snode = lys_find_path(nb->ctx, NULL, spath, 0);
	ly_temp_log_options(NULL);
	return snode;
}

/*
 * err holds libyang's refusal of value for the leaf snode: never repeat a secret value, and
 * name the value when the message does not (a model's own error-message does not; libyang's
 * messages quote it).
 */
static void name_value(struct nx_err *err, const struct lysc_node *snode, const char *value)
{
	char quoted[72], reason[NX_ERR_MAX];

	if (!err || !value || !value[0] || !snode || !(snode->nodetype & LYD_NODE_TERM))
		return;
	if (nx_yang_is_secret(snode)) {
		mask_value(err->msg, sizeof(err->msg), value);
		return;
	}
	if ((size_t)snprintf(reason, sizeof(reason), "\"%s\"", value) < sizeof(reason) &&
	    strstr(err->msg, reason))
		return;
	nx_strlcpy(reason, err->msg, sizeof(reason));
	nx_str_printable(quoted, sizeof(quoted), value);
	nx_err_set(err, EINVAL, "\"%s\": %s", quoted, reason);
}

/* libyang refused an edit: its reason, with the value named (see name_value()). */
static int edit_err(const struct nx_nb *nb, LY_ERR r, const char *xpath, const char *value,
		    struct nx_err *err)
{
	int rc = nx_yang_err(nb->ctx, err, r == LY_EMEM ? ENOMEM : EINVAL, NULL);

	if (value)
		name_value(err, find_schema(nb, xpath), value);
	return rc;
}

int nx_nb_candidate_edit(struct nx_nb_candidate *cand, enum nx_nb_op op, const char *xpath,
			 const char *value, struct nx_err *err)
{
	struct nx_nb *nb = cand->nb;
	struct lyd_node *node = NULL;
	LY_ERR r;
	int rc;

	rc = check_path_module(nb, xpath, err);
	if (rc < 0)
		return rc;
	ly_err_clean(nb->ctx, NULL);

	switch (op) {
	case NX_NB_OP_CREATE:
	case NX_NB_OP_MODIFY:
		r = lyd_new_path(cand->tree, nb->ctx, xpath, value, LYD_NEW_PATH_UPDATE, &node);
		if (r != LY_SUCCESS && r != LY_EEXIST)
			return edit_err(nb, r, xpath, value, err);
		if (!cand->tree)
			cand->tree = node;
		if (cand->tree)
			cand->tree = lyd_first_sibling(cand->tree);
		return 0;

	case NX_NB_OP_DESTROY:
		if (!cand->tree) {
			/* Nothing to remove; still refuse a path that is not in the schema. */
			if (!lys_find_path(nb->ctx, NULL, xpath, 0))
				return edit_err(nb, LY_EVALID, xpath, NULL, err);
			return 0;
		}
		r = lyd_find_path(cand->tree, xpath, 0, &node);
		if (r == LY_ENOTFOUND || r == LY_EINCOMPLETE)
			return 0;
		if (r != LY_SUCCESS)
			return edit_err(nb, r, xpath, NULL, err);
		if (node->schema && lysc_is_key(node->schema))
			return nx_err_set(err, EINVAL,
					  "\"%s\": a list key goes away only with its entry",
					  xpath);
		if (node == cand->tree)
			cand->tree = node->next;
		lyd_free_tree(node);
		if (cand->tree)
			cand->tree = lyd_first_sibling(cand->tree);
		return 0;
	}
	return nx_err_set(err, EINVAL, "\"%s\": unknown edit operation %d", xpath, (int)op);
}

/*
 * The text of the leaf at data path in a JSON document, or NULL (not found, or inside a list
 * or leaf-list, which the path cannot tell apart).  The members of RFC 7951 JSON are named
 * like the steps of libyang's data paths: "module:" where the module changes.
 */
static const char *json_leaf_text(struct json_object *doc, const char *path)
{
	struct json_object *cur = doc, *next;
	const char *p = path, *end;
	char name[128];
	size_t len;

	while (p && *p == '/') {
		p++;
		len = strcspn(p, "/[");
		end = p + len;
		if (!len || len >= sizeof(name) || *end == '[')
			return NULL;
		memcpy(name, p, len);
		name[len] = '\0';
		if (!json_object_is_type(cur, json_type_object) ||
		    !json_object_object_get_ex(cur, name, &next))
			return NULL;
		cur = next;
		p = end;
	}
	if (p && *p)
		return NULL;
	switch (json_object_get_type(cur)) {
	case json_type_string:
	case json_type_int:
	case json_type_double:
	case json_type_boolean:
		return json_object_get_string(cur);
	default:
		return NULL;
	}
}

/* libyang refused a JSON document: its reason, with the value named (see name_value()). */
static int json_err(const struct nx_nb *nb, struct json_object *doc, struct nx_err *err)
{
	struct ly_err_item *e = ly_err_last(nb->ctx);
	char path[256], reason[NX_ERR_MAX];
	const char *start, *end;
	int rc;

	rc = nx_yang_err(nb->ctx, err, EINVAL, NULL);
	if (!err)
		return rc;
	/* the data path is the quoted part of libyang's location ("Data location "/m:a/b".") */
	start = e && e->path ? strchr(e->path, '"') : NULL;
	end = start ? strchr(start + 1, '"') : NULL;
	if (end && (size_t)(end - start - 1) < sizeof(path)) {
		memcpy(path, start + 1, (size_t)(end - start - 1));
		path[end - start - 1] = '\0';
		name_value(err, find_schema(nb, path), json_leaf_text(doc, path));
	}
	nx_strlcpy(reason, err->msg, sizeof(reason));
	return nx_err_set(err, EINVAL, "JSON configuration: %s", reason);
}

int nx_nb_candidate_load_json(struct nx_nb_candidate *cand, const char *json, struct nx_err *err)
{
	struct nx_nb *nb = cand->nb;
	struct lyd_node *tree = NULL;
	struct json_object *obj;
	struct nx_err jerr;
	int rc;

	/*
	 * libyang takes a truncated document ("{\"m:c\": ") or trailing garbage for valid
	 * input, and an empty one for an empty configuration; a strict JSON parser checks the
	 * syntax first, so a damaged file cannot wipe the configuration.
	 */
	obj = nx_json_parse(json ? json : "", json ? strlen(json) : 0, NB_JSON_DEPTH, &jerr);
	if (!obj)
		return nx_err_set(err, EINVAL, "JSON configuration: %s", jerr.msg);
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return nx_err_set(err, EINVAL, "JSON configuration: not a JSON object");
	}

	ly_err_clean(nb->ctx, NULL);
	if (lyd_parse_data_mem(nb->ctx, json, LYD_JSON,
			       LYD_PARSE_STRICT | LYD_PARSE_ONLY | LYD_PARSE_NO_STATE, 0,
			       &tree) != LY_SUCCESS) {
		rc = json_err(nb, obj, err);
		json_object_put(obj);
		return rc;
	}
	json_object_put(obj);
	rc = check_tree_module(nb, tree, err);
	if (rc < 0) {
		lyd_free_all(tree);
		return rc;
	}
	lyd_free_all(cand->tree);
	cand->tree = tree;
	return 0;
}

/* --- commit ------------------------------------------------------------------ */

static int vec_push(struct nb_vec *v, const struct nb_change *c)
{
	struct nb_change *nv;
	size_t cap;

	if (v->n == v->cap) {
		cap = v->cap ? v->cap * 2 : 16;
		nv = realloc(v->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = *c;
	return 0;
}

static void txn_fini(struct nb_txn *txn)
{
	free(txn->dels.v);
	free(txn->adds.v);
	free(txn->changes);
	free(txn->finish);
}

/* The effective operation of a diff node: its own "yang:operation" or its parent's. */
static char diff_op(const struct lyd_node *dnode, char inherited)
{
	struct lyd_meta *meta = lyd_find_meta(dnode->meta, NULL, "yang:operation");
	const char *v = meta ? lyd_get_meta_value(meta) : NULL;

	return v && v[0] ? v[0] : inherited;
}

/* The instance of diff node d among siblings (of the old or the new tree). */
static const struct lyd_node *find_instance(const struct lyd_node *siblings,
					    const struct lyd_node *d)
{
	struct lyd_node *match = NULL;
	LY_ERR r;

	if (!siblings)
		return NULL;
	if (d->schema->nodetype & (LYS_LIST | LYS_LEAFLIST))
		r = lyd_find_sibling_first(siblings, d, &match);
	else
		r = lyd_find_sibling_val(siblings, d->schema, NULL, 0, &match);
	return r == LY_SUCCESS ? match : NULL;
}

static int add_change(const struct nx_nb *nb, struct nb_vec *v, enum nx_nb_op op,
		      const struct lyd_node *dnode, const struct lyd_node *anchor)
{
	const struct nb_entry *e = nb_lookup(nb, dnode->schema);
	struct nb_change c = { .op = op, .dnode = dnode, .anchor = anchor };

	if (e) {
		if (op == NX_NB_OP_CREATE && dnode->schema->nodetype == LYS_LEAF &&
		    e->node->cbs.modify)
			c.op = NX_NB_OP_MODIFY;
		switch (c.op) {
		case NX_NB_OP_CREATE:
			c.cb = e->node->cbs.create;
			break;
		case NX_NB_OP_MODIFY:
			c.cb = e->node->cbs.modify;
			break;
		case NX_NB_OP_DESTROY:
			c.cb = e->node->cbs.destroy;
			break;
		}
	}
	return vec_push(v, &c);
}

/*
 * How a commit turns into callbacks:
 * - The diff is taken with LYD_DIFF_DEFAULTS, so a leaf going back to its default is seen as
 *   a value change: its modify callback gets the default value.  A leaf that only changes
 *   between "default" and "explicitly set to the default value" calls nothing, but is still
 *   a change of running (show running-config prints it differently).
 * - Leaves: created -> modify (create when the entry has no modify callback); changed ->
 *   modify; removed -> destroy.  Leaf-list entries, list entries and containers: create and
 *   destroy.  A new entry's default leaves get modify like the others.  List keys get no
 *   calls of their own (their entry does).  A move inside an ordered-by-user list calls
 *   nothing (apply_finish of its ancestors still runs).
 * - Order: every destroy first (children before their parents), then creates and modifies
 *   (parents before their children), each in schema order.
 * - apply_finish runs once per table entry, after every APPLY, for entries that are the
 *   changed node or one of its ancestors in the new tree (a destroyed node's own
 *   apply_finish is not called; its ancestors' are).  It gets the first instance reached.
 * - The defaults running starts with at nx_nb_new() call nothing.
 */

/*
 * Walks diff siblings together with their instances in the old tree (running) and the new
 * one; new_parent is the new-tree node of the diff parent (NULL at the top or when the
 * parent is being removed).
 */
static int collect(const struct nx_nb *nb, struct nb_txn *txn, const struct lyd_node *diff,
		   const struct lyd_node *old_first, const struct lyd_node *new_first,
		   const struct lyd_node *new_parent, char inherited, struct nx_err *err)
{
	const struct lyd_node *d, *before, *after;
	char op, path[256];
	bool key;
	int rc;

	for (d = diff; d; d = d->next) {
		if (!d->schema)
			continue;
		op = diff_op(d, inherited);
		before = op == 'c' ? NULL : find_instance(old_first, d);
		after = op == 'd' ? NULL : find_instance(new_first, d);
		if ((op == 'c' || op == 'r' || op == 'n') ? !after : !before) {
			lyd_path(d, LYD_PATH_STD, path, sizeof(path));
			return nx_err_set(err, EIO, "commit: %s: changed node not found", path);
		}
		key = lysc_is_key(d->schema);

		rc = 0;
		if (op == 'c' && !key)
			rc = add_change(nb, &txn->adds, NX_NB_OP_CREATE, after, after);
		else if (op == 'r' && d->schema->nodetype == LYS_LEAF)
			rc = add_change(nb, &txn->adds, NX_NB_OP_MODIFY, after, after);
		else if (op == 'r') {
			/* a move in an ordered-by-user list: nothing to call */
			struct nb_change moved = { .op = NX_NB_OP_MODIFY,
						   .dnode = after,
						   .anchor = after };

			rc = vec_push(&txn->adds, &moved);
		}
		/* 'n': only the default flag of a leaf changed, or a parent of changes */
		if (rc < 0)
			return nx_err_set(err, ENOMEM, "commit: out of memory");

		rc = collect(nb, txn, lyd_child(d), before ? lyd_child(before) : NULL,
			     after ? lyd_child(after) : NULL, after, op == 'r' ? 'n' : op, err);
		if (rc < 0)
			return rc;

		if (op == 'd' && !key &&
		    add_change(nb, &txn->dels, NX_NB_OP_DESTROY, before, new_parent) < 0)
			return nx_err_set(err, ENOMEM, "commit: out of memory");
	}
	return 0;
}

/* Which table entries get apply_finish: each once, in the order the changes reach them. */
static int plan_finish(const struct nx_nb *nb, struct nb_txn *txn, struct nx_err *err)
{
	const struct lyd_node *n;
	const struct nb_entry *e;
	bool *done;
	size_t i;

	if (!nb->n_entries)
		return 0;
	done = calloc(nb->n_entries, sizeof(*done));
	txn->finish = calloc(nb->n_entries, sizeof(*txn->finish));
	if (!done || !txn->finish) {
		free(done);
		return nx_err_set(err, ENOMEM, "commit: out of memory");
	}
	for (i = 0; i < txn->n_changes; i++) {
		for (n = txn->changes[i].anchor; n; n = lyd_parent(n)) {
			e = nb_lookup(nb, n->schema);
			if (!e || !e->node->cbs.apply_finish || done[e->index])
				continue;
			done[e->index] = true;
			txn->finish[txn->n_finish].entry = e;
			txn->finish[txn->n_finish].dnode = n;
			txn->n_finish++;
		}
	}
	free(done);
	return 0;
}

static const char *op_name(enum nx_nb_op op)
{
	switch (op) {
	case NX_NB_OP_CREATE:
		return "create";
	case NX_NB_OP_MODIFY:
		return "modify";
	case NX_NB_OP_DESTROY:
		return "destroy";
	}
	return "?";
}

static int call(const struct nx_nb *nb, struct nb_change *c, enum nx_nb_event ev,
		struct nx_err *err)
{
	char msg[NX_ERR_MAX] = "", path[256];
	struct nx_nb_cb_args args = {
		.event = ev,
		.op = c->op,
		.dnode = c->dnode,
		.resource = &c->resource,
		.daemon = nb->daemon,
		.errmsg = msg,
		.errmsg_len = sizeof(msg),
	};
	int rc;

	rc = c->cb(&args);
	if (!rc)
		return 0;
	lyd_path(c->dnode, LYD_PATH_STD, path, sizeof(path));
	if (ev == NX_NB_EV_APPLY || ev == NX_NB_EV_ABORT) {
		/* cannot fail: say so, carry on */
		nx_log(NX_LOG_ERR, "northbound: %s %s returned %d at %s", path, op_name(c->op), rc,
		       ev == NX_NB_EV_APPLY ? "apply" : "abort");
		return 0;
	}
	if (msg[0])
		return nx_err_set(err, rc < 0 ? rc : EINVAL, "%s", msg);
	return nx_err_set(err, rc < 0 ? rc : EINVAL, "%s: %s refused at %s", path, op_name(c->op),
			  ev == NX_NB_EV_VALIDATE ? "validate" : "prepare");
}

static int run_phases(const struct nx_nb *nb, struct nb_txn *txn, struct nx_err *err)
{
	size_t i, j;
	int rc;

	for (i = 0; i < txn->n_changes; i++) {
		if (txn->changes[i].cb) {
			rc = call(nb, &txn->changes[i], NX_NB_EV_VALIDATE, err);
			if (rc < 0)
				return rc;
		}
	}
	for (i = 0; i < txn->n_changes; i++) {
		if (!txn->changes[i].cb)
			continue;
		rc = call(nb, &txn->changes[i], NX_NB_EV_PREPARE, err);
		if (rc < 0) {
			for (j = i; j-- > 0;) {
				if (txn->changes[j].cb)
					call(nb, &txn->changes[j], NX_NB_EV_ABORT, NULL);
			}
			return rc;
		}
	}
	for (i = 0; i < txn->n_changes; i++) {
		if (txn->changes[i].cb)
			call(nb, &txn->changes[i], NX_NB_EV_APPLY, NULL);
	}
	for (i = 0; i < txn->n_finish; i++) {
		struct nx_nb_cb_args args = {
			.event = NX_NB_EV_APPLY,
			.op = NX_NB_OP_MODIFY,
			.dnode = txn->finish[i].dnode,
			.daemon = nb->daemon,
		};

		txn->finish[i].entry->node->cbs.apply_finish(&args);
	}
	return 0;
}

static uint32_t log_add(struct nx_nb *nb, struct lyd_node *tree, const char *comment)
{
	struct nb_log_entry *e = &nb->log[nb->log_next];

	lyd_free_all(e->tree); /* the oldest, once the ring is full */
	e->tree = tree;
	e->info.id = ++nb->last_id;
	e->info.when = time(NULL);
	nx_strlcpy(e->info.comment, comment ? comment : "", sizeof(e->info.comment));
	nb->log_next = (nb->log_next + 1) % NX_NB_ROLLBACK_MAX;
	if (nb->log_count < NX_NB_ROLLBACK_MAX)
		nb->log_count++;
	return e->info.id;
}

int nx_nb_commit(struct nx_nb *nb, struct nx_nb_candidate *cand, const char *comment,
		 uint32_t *commit_id, struct nx_err *err)
{
	struct lyd_node *next_tree = NULL, *diff = NULL, *logged = NULL;
	struct nb_txn txn = { 0 };
	uint32_t id;
	int rc;

	rc = check_tree_module(nb, cand->tree, err);
	if (rc < 0)
		return rc;

	/* libyang validates a copy: defaults added, constraints checked */
	ly_err_clean(nb->ctx, NULL);
	if (cand->tree &&
	    lyd_dup_siblings(cand->tree, NULL, NB_DUP_OPTS, &next_tree) != LY_SUCCESS) {
		rc = nx_err_set(err, ENOMEM, "commit: out of memory");
		goto out;
	}
	if (lyd_validate_module(&next_tree, nb->mod, LYD_VALIDATE_NO_STATE, NULL) != LY_SUCCESS) {
		rc = nx_yang_err(nb->ctx, err, EINVAL, NULL);
		goto out;
	}
	if (lyd_diff_siblings(nb->running, next_tree, LYD_DIFF_DEFAULTS, &diff) != LY_SUCCESS) {
		rc = nx_yang_err(nb->ctx, err, EIO, "commit");
		goto out;
	}
	if (!diff) {
		rc = nx_err_set(err, EALREADY, "no changes");
		goto out;
	}

	rc = collect(nb, &txn, diff, nb->running, next_tree, NULL, 'n', err);
	if (rc < 0)
		goto out;
	txn.n_changes = txn.dels.n + txn.adds.n;
	if (txn.n_changes) {
		txn.changes = calloc(txn.n_changes, sizeof(*txn.changes));
		if (!txn.changes) {
			rc = nx_err_set(err, ENOMEM, "commit: out of memory");
			goto out;
		}
		if (txn.dels.n)
			memcpy(txn.changes, txn.dels.v, txn.dels.n * sizeof(*txn.changes));
		if (txn.adds.n)
			memcpy(txn.changes + txn.dels.n, txn.adds.v,
			       txn.adds.n * sizeof(*txn.changes));
	}
	rc = plan_finish(nb, &txn, err);
	if (rc < 0)
		goto out;
	/* the copy for the rollback log is taken now: nothing may fail after APPLY */
	if (next_tree && lyd_dup_siblings(next_tree, NULL, NB_DUP_OPTS, &logged) != LY_SUCCESS) {
		rc = nx_err_set(err, ENOMEM, "commit: out of memory");
		goto out;
	}

	rc = run_phases(nb, &txn, err);
	if (rc < 0)
		goto out;

	lyd_free_all(nb->running);
	nb->running = next_tree;
	next_tree = NULL;
	id = log_add(nb, logged, comment);
	logged = NULL;
	if (commit_id)
		*commit_id = id;
	rc = 0;

out:
	txn_fini(&txn);
	lyd_free_all(logged);
	lyd_free_all(diff);
	lyd_free_all(next_tree);
	return rc;
}

/* --- rollback log ------------------------------------------------------------ */

size_t nx_nb_commit_list(const struct nx_nb *nb, struct nx_nb_commit_info *out, size_t max)
{
	size_t i, slot;

	for (i = 0; i < nb->log_count && i < max; i++) {
		slot = (nb->log_next + NX_NB_ROLLBACK_MAX - 1 - i) % NX_NB_ROLLBACK_MAX;
		out[i] = nb->log[slot].info;
	}
	return i;
}

int nx_nb_rollback(struct nx_nb *nb, uint32_t id, struct nx_err *err)
{
	struct nx_nb_candidate cand = { .nb = nb };
	const struct nb_log_entry *e = NULL;
	char comment[sizeof(e->info.comment)];
	size_t i;
	int rc;

	for (i = 0; i < nb->log_count; i++) {
		if (nb->log[i].info.id == id) {
			e = &nb->log[i];
			break;
		}
	}
	if (!e)
		return nx_err_set(err, ENOENT, "commit %u is not in the rollback log", id);
	if (e->tree && lyd_dup_siblings(e->tree, NULL, NB_DUP_OPTS, &cand.tree) != LY_SUCCESS)
		return nx_err_set(err, ENOMEM, "rollback: out of memory");
	snprintf(comment, sizeof(comment), "rollback to %u", id);
	rc = nx_nb_commit(nb, &cand, comment, NULL, err);
	lyd_free_all(cand.tree);
	return rc;
}

/* --- rendering ------------------------------------------------------------------ */

static void render_node(const struct nx_nb *nb, const struct lyd_node *node, unsigned flags,
			struct nx_sbuf *out)
{
	const struct nb_entry *e;
	const struct lyd_node *child;

	if (!node->schema || lysc_is_key(node->schema))
		return;
	if ((node->flags & LYD_DEFAULT) && !(flags & NX_NB_SHOW_DEFAULTS))
		return;
	e = nb_lookup(nb, node->schema);
	if (e && e->node->cbs.cli_show)
		e->node->cbs.cli_show(out, node, flags);
	for (child = lyd_child(node); child; child = child->next)
		render_node(nb, child, flags, out);
	if (e && e->node->cbs.cli_show_end)
		e->node->cbs.cli_show_end(out, node, flags);
}

void nx_nb_render_cli(const struct nx_nb *nb, const struct lyd_node *tree, unsigned flags,
		      struct nx_sbuf *out)
{
	const struct lyd_node *n;

	for (n = tree ? lyd_first_sibling(tree) : NULL; n; n = n->next)
		render_node(nb, n, flags, out);
}

/*
 * Secrets (nexodus-types:secret) in a copy of the tree: a value becomes "********"; when the
 * leaf's type refuses that text (a pattern, a length) the leaf is left out instead, a secret
 * list key leaves out its whole entry, and secret leaf-list entries are always left out
 * (masking them would make duplicates).  Finds the secret nodes of a subtree: masked in
 * place, or added to drop.
 */
static int mask_secrets_r(struct lyd_node *node, unsigned flags, struct ly_set *drop)
{
	struct lyd_node *child;
	uint32_t quiet = 0;
	LY_ERR r;

	if (!node->schema)
		return 0;
	if ((node->schema->nodetype & LYD_NODE_TERM) && nx_yang_is_secret(node->schema)) {
		if ((node->flags & LYD_DEFAULT) && !(flags & NX_NB_SHOW_DEFAULTS))
			return 0; /* not printed anyway */
		if (lysc_is_key(node->schema))
			return ly_set_add(drop, lyd_parent(node), 0, NULL) ? -ENOMEM : 0;
		if (node->schema->nodetype == LYS_LEAFLIST)
			return ly_set_add(drop, node, 0, NULL) ? -ENOMEM : 0;
		ly_temp_log_options(&quiet);
		r = lyd_change_term(node, SECRET_MASK);
		ly_temp_log_options(NULL);
		if (r != LY_SUCCESS && r != LY_EEXIST)
			return ly_set_add(drop, node, 0, NULL) ? -ENOMEM : 0;
		return 0;
	}
	for (child = lyd_child(node); child; child = child->next) {
		if (mask_secrets_r(child, flags, drop) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int mask_secrets(struct lyd_node **tree, unsigned flags)
{
	struct ly_set *drop = NULL;
	struct lyd_node *n;
	uint32_t i;
	int rc = 0;

	if (ly_set_new(&drop) != LY_SUCCESS)
		return -ENOMEM;
	for (n = *tree; n && !rc; n = n->next)
		rc = mask_secrets_r(n, flags, drop);
	/* collected parents first: free children before their ancestors */
	for (i = drop->count; !rc && i-- > 0;) {
		n = drop->dnodes[i];
		if (n == *tree)
			*tree = n->next;
		lyd_free_tree(n);
	}
	ly_set_free(drop, NULL);
	return rc;
}

char *nx_nb_render_json(const struct nx_nb *nb, const struct lyd_node *tree, unsigned flags)
{
	struct lyd_node *copy = NULL;
	uint32_t opts = LYD_PRINT_WITHSIBLINGS;
	char *out = NULL;

	(void)nb;
	opts |= (flags & NX_NB_SHOW_DEFAULTS) ? LYD_PRINT_WD_ALL : LYD_PRINT_WD_EXPLICIT;
	if (tree && lyd_dup_siblings(lyd_first_sibling(tree), NULL, NB_DUP_OPTS, &copy))
		return NULL;
	if (copy && !(flags & NX_NB_SHOW_SECRETS) && mask_secrets(&copy, flags) < 0) {
		lyd_free_all(copy);
		return NULL;
	}
	if (lyd_print_mem(&out, copy, LYD_JSON, opts) != LY_SUCCESS) {
		free(out);
		out = NULL;
	}
	lyd_free_all(copy);
	return out;
}

const char *nx_nb_show_value(const struct lyd_node *dnode, unsigned flags)
{
	if (!dnode || !dnode->schema || !(dnode->schema->nodetype & LYD_NODE_TERM))
		return NULL;
	if (!(flags & NX_NB_SHOW_SECRETS) && nx_yang_is_secret(dnode->schema))
		return SECRET_MASK;
	return lyd_get_value(dnode);
}

/* --- getters ------------------------------------------------------------------ */

static const struct lyd_node *find_node(const struct lyd_node *dnode, const char *xpath)
{
	struct lyd_node *match = NULL;
	const struct lyd_node *found = NULL;
	struct ly_set *set = NULL;
	LY_ERR r;

	if (!dnode || !xpath)
		return NULL;
	r = lyd_find_path(dnode, xpath, 0, &match);
	if (r == LY_SUCCESS)
		return match;
	if (r == LY_ENOTFOUND || r == LY_EINCOMPLETE)
		return NULL;
	/* not a simple path (a condition, a function): full XPath */
	if (lyd_find_xpath(dnode, xpath, &set) == LY_SUCCESS && set->count)
		found = set->dnodes[0];
	ly_set_free(set, NULL);
	return found;
}

const char *nx_nb_get_string(const struct lyd_node *dnode, const char *xpath)
{
	const struct lyd_node *n = find_node(dnode, xpath);

	if (!n || !n->schema || !(n->schema->nodetype & LYD_NODE_TERM))
		return NULL;
	return lyd_get_value(n);
}

bool nx_nb_exists(const struct lyd_node *dnode, const char *xpath)
{
	return find_node(dnode, xpath) != NULL;
}

long long nx_nb_get_int(const struct lyd_node *dnode, const char *xpath, long long def)
{
	const char *s = nx_nb_get_string(dnode, xpath);
	char *end;
	long long v;

	if (!s || !s[0])
		return def;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return def;
	return v;
}
