/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The YANG context of a daemon: libyang 2 fed only from the models embedded in the binary, so
 * what a daemon accepts never depends on files lying around at run time.
 *
 * Choices made here:
 * - Search directories are disabled; every module (and every import or include it needs) is
 *   served from the embedded table by an import callback.  libyang's own built-in modules
 *   (ietf-inet-types, ietf-yang-types, ...) need no table entry.
 * - ietf-yang-library stays loaded (libyang's default): a NETCONF server on the same context
 *   needs it to describe the schema.  It holds only state data, so it never appears in a
 *   configuration tree.
 * - All features of the requested modules are enabled.
 * - libyang's own messages are routed to nx_log at debug level: users see an error only
 *   through the struct nx_err of the call that failed (nx_yang_err()).
 * - The table given to nx_yang_ctx_new() must outlive the context (the import callback stays
 *   installed so modules loaded later resolve their imports the same way).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/yang.h"

/* What a secret value looks like in messages. */
#define SECRET_MASK "********"

const struct nx_yang_embedded *nx_yang_find_embedded(const struct nx_yang_embedded *const *table,
						     const char *name)
{
	size_t i;

	if (!table || !name)
		return NULL;
	for (i = 0; table[i]; i++) {
		if (table[i]->name && !strcmp(table[i]->name, name))
			return table[i];
	}
	return NULL;
}

static const char *yang_level_name(LY_LOG_LEVEL level)
{
	switch (level) {
	case LY_LLERR:
		return "error";
	case LY_LLWRN:
		return "warning";
	case LY_LLVRB:
		return "verbose";
	default:
		return "debug";
	}
}

static void yang_log_clb(LY_LOG_LEVEL level, const char *msg, const char *path)
{
	nx_log(NX_LOG_DEBUG, "libyang %s: %s%s%s", yang_level_name(level), msg ? msg : "",
	       path ? " " : "", path ? path : "");
}

/* libyang asks for a module (or a submodule) it has not got: serve it from the table. */
static LY_ERR yang_import_clb(const char *mod_name, const char *mod_rev, const char *submod_name,
			      const char *submod_rev, void *user_data, LYS_INFORMAT *format,
			      const char **module_data,
			      ly_module_imp_data_free_clb *free_module_data)
{
	const struct nx_yang_embedded *const *table = user_data;
	const struct nx_yang_embedded *e;
	const char *name = submod_name ? submod_name : mod_name;
	const char *rev = submod_name ? submod_rev : mod_rev;

	e = nx_yang_find_embedded(table, name);
	if (!e || !e->text)
		return LY_ENOTFOUND;
	if (rev && e->revision && strcmp(rev, e->revision) != 0)
		return LY_ENOTFOUND;
	*format = LYS_IN_YANG;
	*module_data = e->text;
	*free_module_data = NULL;
	return LY_SUCCESS;
}

/* Copies the first "..." quoted part of s (without the quotes) into buf; false if none. */
static bool first_quoted(const char *s, char *buf, size_t size)
{
	const char *start, *end;
	size_t len;

	start = s ? strchr(s, '"') : NULL;
	if (!start)
		return false;
	start++;
	end = strchr(start, '"');
	if (!end)
		return false;
	len = (size_t)(end - start);
	if (len >= size)
		return false;
	memcpy(buf, start, len);
	buf[len] = '\0';
	return true;
}

/* The schema node a data or schema path of an error message names, looked up silently. */
static const struct lysc_node *err_path_node(const struct ly_ctx *ctx, const char *path)
{
	const struct lysc_node *snode;
	uint32_t quiet = 0;

	if (!path || path[0] != '/')
		return NULL;
	ly_temp_log_options(&quiet);
	snode = lys_find_path(ctx, NULL, path, 0);
	ly_temp_log_options(NULL);
	return snode;
}

/* One libyang error record as one line into err (see nx_yang_err()). */
static int format_err(const struct ly_ctx *ctx, const struct ly_err_item *e, struct nx_err *err,
		      int code, const char *what)
{
	char path[512], msg[NX_ERR_MAX], value[NX_ERR_MAX];
	const char *quote, *rest;
	bool have_path;

	if (!e || !e->msg)
		return nx_err_set(err, code, "%s%sunknown YANG error", what ? what : "",
				  what ? ": " : "");

	have_path = first_quoted(e->path, path, sizeof(path));
	if (!have_path && e->path && e->path[0] == '/') {
		nx_strlcpy(path, e->path, sizeof(path));
		have_path = true;
	}

	/* A value refused for a secret leaf is not repeated: libyang quotes the value first. */
	nx_strlcpy(msg, e->msg, sizeof(msg));
	if (have_path && nx_yang_is_secret(err_path_node(ctx, path)) &&
	    first_quoted(e->msg, value, sizeof(value))) {
		quote = strchr(e->msg, '"');
		rest = strchr(quote + 1, '"');
		snprintf(msg, sizeof(msg), "%.*s\"%s\"%s", (int)(quote - e->msg), e->msg,
			 SECRET_MASK, rest + 1);
	}

	if (have_path)
		return nx_err_set(err, code, "%s%s%s (path %s)", what ? what : "", what ? ": " : "",
				  msg, path);
	return nx_err_set(err, code, "%s%s%s", what ? what : "", what ? ": " : "", msg);
}

int nx_yang_err(const struct ly_ctx *ctx, struct nx_err *err, int code, const char *what)
{
	return format_err(ctx, ctx ? ly_err_last(ctx) : NULL, err, code, what);
}

static bool exts_have_secret(const struct lysc_ext_instance *exts)
{
	LY_ARRAY_COUNT_TYPE u;

	LY_ARRAY_FOR(exts, u)
	{
		const struct lysc_ext *def = exts[u].def;

		if (def && def->name && def->module && !strcmp(def->name, "secret") &&
		    !strcmp(def->module->name, "nexodus-types"))
			return true;
	}
	return false;
}

bool nx_yang_is_secret(const struct lysc_node *snode)
{
	const struct lysc_type *type = NULL;

	if (!snode)
		return false;
	if (exts_have_secret(snode->exts))
		return true;
	/* Also when written inside the leaf's type statement.  (An extension in a typedef is
	 * not kept in the compiled schema: put it on the leaf.) */
	if (snode->nodetype == LYS_LEAF)
		type = ((const struct lysc_node_leaf *)snode)->type;
	else if (snode->nodetype == LYS_LEAFLIST)
		type = ((const struct lysc_node_leaflist *)snode)->type;
	return type && exts_have_secret(type->exts);
}

struct ly_ctx *nx_yang_ctx_new(const struct nx_yang_embedded *const *table,
			       const char *const *modules, struct nx_err *err)
{
	const char *all_features[] = { "*", NULL }; /* every feature enabled */
	uint32_t log_opts = LY_LOLOG | LY_LOSTORE;
	const struct nx_yang_embedded *e;
	struct ly_ctx *ctx = NULL;
	size_t i;

	ly_set_log_clb(yang_log_clb, 1);

	if (!table || !modules) {
		nx_err_set(err, EINVAL, "no YANG modules to load");
		return NULL;
	}
	if (ly_ctx_new(NULL, LY_CTX_DISABLE_SEARCHDIRS, &ctx) != LY_SUCCESS) {
		nx_err_set(err, ENOMEM, "cannot create a YANG context");
		return NULL;
	}
	ly_ctx_set_module_imp_clb(ctx, yang_import_clb, (void *)table);

	/* Keep every error of a load: the first one is the cause ("Loading "x" module failed"
	 * of an import), the last only says that the requested module failed. */
	ly_temp_log_options(&log_opts);
	for (i = 0; modules[i]; i++) {
		e = nx_yang_find_embedded(table, modules[i]);
		if (!e) {
			nx_err_set(err, ENOENT, "YANG module \"%s\" is not embedded", modules[i]);
			goto fail;
		}
		ly_err_clean(ctx, NULL);
		if (!ly_ctx_load_module(ctx, e->name, e->revision, all_features)) {
			char what[96];

			snprintf(what, sizeof(what), "YANG module \"%s\"", e->name);
			format_err(ctx, ly_err_first(ctx), err, EINVAL, what);
			goto fail;
		}
	}
	ly_temp_log_options(NULL);
	ly_err_clean(ctx, NULL);
	return ctx;

fail:
	ly_temp_log_options(NULL);
	ly_ctx_destroy(ctx);
	return NULL;
}
