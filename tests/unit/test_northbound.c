/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lib/yang and lib/northbound: the embedded-model context, the secret
 * extension, candidate edits and libyang's refusals, the commit phases and their order,
 * abort on a failed prepare, apply_finish, the rollback log, and the CLI/JSON renderers.
 *
 * The models are the test's own (a small "nexodus-types" with the secret extension and a
 * module "nx-test" exercising every kind of node); the real ones are only linked into the
 * daemons.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/errmsg.h"
#include "lib/northbound.h"
#include "lib/strutil.h"
#include "lib/yang.h"

/* --- models ------------------------------------------------------------------ */

static const char types_yang[] = "module nexodus-types {\n"
				 "  yang-version 1.1;\n"
				 "  namespace \"urn:nexodus:test:types\";\n"
				 "  prefix nxt;\n"
				 "  extension secret { description \"Never shown in clear.\"; }\n"
				 "  typedef port-number { type uint16 { range \"1..65535\"; } }\n"
				 "}\n";

static const char test_yang[] =
	"module nx-test {\n"
	"  yang-version 1.1;\n"
	"  namespace \"urn:nexodus:test\";\n"
	"  prefix nt;\n"
	"  import nexodus-types { prefix nxt; }\n"
	"  import ietf-inet-types { prefix inet; }\n"
	"  container top {\n"
	"    leaf url { type string { pattern 'https?://[^ ]+'; } }\n"
	"    leaf key { type string { length \"1..64\"; } nxt:secret; }\n"
	"    leaf psk { type string { pattern '[0-9a-f]{8}'; } nxt:secret; }\n"
	"    leaf token { type string { nxt:secret; } }\n"
	"    leaf port {\n"
	"      type nxt:port-number;\n"
	"      default 51820;\n"
	"      must \". != 1\" { error-message \"port 1 is reserved\"; }\n"
	"    }\n"
	"    leaf backend {\n"
	"      type enumeration { enum auto; enum kernel; enum uapi; }\n"
	"      default auto;\n"
	"    }\n"
	"    leaf-list server { type string; }\n"
	"    list peer {\n"
	"      key name;\n"
	"      leaf name { type string { length \"1..16\"; } }\n"
	"      leaf weight { type uint8 { range \"1..100\"; } default 10; }\n"
	"      leaf prefix { type inet:ip-prefix; }\n"
	"    }\n"
	"    leaf relay { type empty; }\n"
	"    leaf ifname {\n"
	"      type string {\n"
	"        pattern '[a-z0-9]{1,15}' { error-message \"expected an interface name\"; }\n"
	"      }\n"
	"    }\n"
	"    leaf-list secret-tag { type string; nxt:secret; }\n"
	"    list credential {\n"
	"      key id;\n"
	"      leaf id { type string; nxt:secret; }\n"
	"      leaf note { type string; }\n"
	"      leaf-list tag { type string; nxt:secret; }\n"
	"    }\n"
	"    leaf uptime { type uint32; config false; }\n"
	"  }\n"
	"}\n";

/* A module that imports one nobody has. */
static const char orphan_yang[] = "module nx-orphan {\n"
				  "  yang-version 1.1;\n"
				  "  namespace \"urn:nexodus:test:orphan\";\n"
				  "  prefix no;\n"
				  "  import nx-missing { prefix nm; }\n"
				  "  leaf x { type string; }\n"
				  "}\n";

static const char broken_yang[] = "module nx-broken {\n"
				  "  namespace \"urn:nexodus:test:broken\";\n"
				  "  prefix nb;\n"
				  "  leaf x { type no-such-type; }\n"
				  "}\n";

static const struct nx_yang_embedded emb_types = { "nexodus-types", NULL, types_yang };
static const struct nx_yang_embedded emb_test = { "nx-test", NULL, test_yang };
static const struct nx_yang_embedded emb_orphan = { "nx-orphan", NULL, orphan_yang };
static const struct nx_yang_embedded emb_broken = { "nx-broken", NULL, broken_yang };
static const struct nx_yang_embedded *const test_table[] = { &emb_types, &emb_test, &emb_orphan,
							     &emb_broken, NULL };
static const char *const test_modules[] = { "nx-test", NULL };

/* --- callbacks: record what the northbound asks --------------------------------------- */

struct trace {
	struct nx_sbuf log;
	const char *fail_validate; /* data path refused at VALIDATE */
	const char *fail_prepare;  /* data path refused at PREPARE */
	bool with_errmsg;	   /* the refusal carries a reason */
	int finish;		   /* apply_finish calls */
	int resources;		   /* taken at PREPARE, not yet released */
};

static const char *ev_name(enum nx_nb_event ev)
{
	switch (ev) {
	case NX_NB_EV_VALIDATE:
		return "validate";
	case NX_NB_EV_PREPARE:
		return "prepare";
	case NX_NB_EV_ABORT:
		return "abort";
	case NX_NB_EV_APPLY:
		return "apply";
	}
	return "?";
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

static int cb_record(struct nx_nb_cb_args *args)
{
	struct trace *t = args->daemon;
	char *path = lyd_path(args->dnode, LYD_PATH_STD, NULL, 0);
	const char *v = NULL;
	int rc = 0;

	assert_non_null(path);
	if (args->dnode->schema->nodetype & LYD_NODE_TERM)
		v = lyd_get_value(args->dnode);
	nx_sbuf_printf(&t->log, "%s %s %s%s%s\n", ev_name(args->event), op_name(args->op), path,
		       v && v[0] ? "=" : "", v && v[0] ? v : "");

	switch (args->event) {
	case NX_NB_EV_VALIDATE:
		if (t->fail_validate && !strcmp(path, t->fail_validate)) {
			if (t->with_errmsg)
				snprintf(args->errmsg, args->errmsg_len, "%s is not welcome here",
					 v ? v : path);
			rc = -EPERM;
		}
		break;
	case NX_NB_EV_PREPARE:
		if (t->fail_prepare && !strcmp(path, t->fail_prepare)) {
			if (t->with_errmsg)
				snprintf(args->errmsg, args->errmsg_len, "no room for %s", path);
			rc = 1; /* a positive refusal is -EINVAL */
			break;
		}
		/* a resource that ABORT or APPLY must give back (ASan sees a leak otherwise) */
		args->resource->ptr = malloc(16);
		assert_non_null(args->resource->ptr);
		t->resources++;
		break;
	case NX_NB_EV_ABORT:
	case NX_NB_EV_APPLY:
		assert_non_null(args->resource->ptr);
		free(args->resource->ptr);
		args->resource->ptr = NULL;
		t->resources--;
		break;
	}
	free(path);
	return rc;
}

static void cb_finish(struct nx_nb_cb_args *args)
{
	struct trace *t = args->daemon;
	char *path = lyd_path(args->dnode, LYD_PATH_STD, NULL, 0);

	assert_int_equal(args->event, NX_NB_EV_APPLY);
	nx_sbuf_printf(&t->log, "finish %s\n", path);
	t->finish++;
	free(path);
}

static void show_top(struct nx_sbuf *out, const struct lyd_node *dnode, unsigned flags)
{
	nx_sbuf_puts(out, "top\n");
}

static void show_top_end(struct nx_sbuf *out, const struct lyd_node *dnode, unsigned flags)
{
	nx_sbuf_puts(out, "exit\n");
}

/* " <leaf name> <value>" for the leaves of top, one more space for the leaves of a peer. */
static void show_leaf(struct nx_sbuf *out, const struct lyd_node *dnode, unsigned flags)
{
	const char *v = nx_nb_show_value(dnode, flags);
	bool in_peer = !strcmp(lyd_parent(dnode)->schema->name, "peer");

	nx_sbuf_printf(out, "%s %s%s%s\n", in_peer ? " " : "", dnode->schema->name,
		       v && v[0] ? " " : "", v ? v : "");
}

static void show_peer(struct nx_sbuf *out, const struct lyd_node *dnode, unsigned flags)
{
	nx_sbuf_printf(out, " peer %s\n", nx_nb_get_string(dnode, "name"));
}

static void show_peer_end(struct nx_sbuf *out, const struct lyd_node *dnode, unsigned flags)
{
	nx_sbuf_puts(out, " exit-peer\n");
}

static const struct nx_nb_node test_nodes[] = {
	{ .xpath = "/nx-test:top",
	  .cbs = { .apply_finish = cb_finish,
		   .cli_show = show_top,
		   .cli_show_end = show_top_end } },
	{ .xpath = "/nx-test:top/url",
	  .cbs = { .modify = cb_record, .destroy = cb_record, .cli_show = show_leaf } },
	{ .xpath = "/nx-test:top/key",
	  .cbs = { .modify = cb_record, .destroy = cb_record, .cli_show = show_leaf } },
	{ .xpath = "/nx-test:top/psk",
	  .cbs = { .modify = cb_record, .destroy = cb_record, .cli_show = show_leaf } },
	{ .xpath = "/nx-test:top/port", .cbs = { .modify = cb_record, .cli_show = show_leaf } },
	{ .xpath = "/nx-test:top/backend", .cbs = { .modify = cb_record, .cli_show = show_leaf } },
	{ .xpath = "/nx-test:top/server",
	  .cbs = { .create = cb_record, .destroy = cb_record, .cli_show = show_leaf } },
	{ .xpath = "/nx-test:top/peer",
	  .cbs = { .create = cb_record,
		   .destroy = cb_record,
		   .apply_finish = cb_finish,
		   .cli_show = show_peer,
		   .cli_show_end = show_peer_end } },
	/* written with a prefix on every step: the same node */
	{ .xpath = "/nx-test:top/nx-test:peer/nx-test:weight",
	  .cbs = { .modify = cb_record, .cli_show = show_leaf } },
	{ .xpath = "/nx-test:top/peer/prefix",
	  .cbs = { .modify = cb_record, .destroy = cb_record, .cli_show = show_leaf } },
	{ .xpath = "/nx-test:top/relay",
	  .cbs = { .create = cb_record, .destroy = cb_record, .cli_show = show_leaf } },
};

/* --- fixture ------------------------------------------------------------------------ */

struct fixture {
	struct nx_nb *nb;
	struct trace trace;
};

static struct nx_nb_config test_config(const struct nx_nb_node *nodes, size_t n, void *daemon)
{
	struct nx_nb_config cfg = {
		.embedded = test_table,
		.modules = test_modules,
		.module = "nx-test",
		.nodes = nodes,
		.n_nodes = n,
		.daemon = daemon,
	};

	return cfg;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct nx_nb_config cfg;
	struct nx_err err = { "" };

	assert_non_null(f);
	nx_sbuf_init(&f->trace.log, NULL, 0);
	cfg = test_config(test_nodes, sizeof(test_nodes) / sizeof(test_nodes[0]), &f->trace);
	f->nb = nx_nb_new(&cfg, &err);
	if (!f->nb)
		fail_msg("nx_nb_new: %s", err.msg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(f->trace.resources, 0);
	nx_nb_free(f->nb);
	nx_sbuf_fini(&f->trace.log);
	free(f);
	return 0;
}

/* Forgets what was recorded so far. */
static void trace_reset(struct fixture *f)
{
	nx_sbuf_reset(&f->trace.log);
	f->trace.finish = 0;
}

#define TOP "/nx-test:top"

struct edit {
	enum nx_nb_op op;
	const char *xpath;
	const char *value;
};

/* Applies edits to a fresh candidate and commits; returns the commit's result. */
static int commit_edits(struct fixture *f, const struct edit *edits, size_t n, uint32_t *id,
			struct nx_err *err)
{
	struct nx_nb_candidate *cand = nx_nb_candidate_new(f->nb);
	size_t i;
	int rc;

	assert_non_null(cand);
	for (i = 0; i < n; i++) {
		rc = nx_nb_candidate_edit(cand, edits[i].op, edits[i].xpath, edits[i].value, err);
		if (rc)
			fail_msg("edit %s: %s", edits[i].xpath, err->msg);
	}
	rc = nx_nb_commit(f->nb, cand, "test", id, err);
	nx_nb_candidate_free(cand);
	return rc;
}

#define COMMIT(f, id, err, ...)                                                             \
	({                                                                                  \
		const struct edit edits_[] = { __VA_ARGS__ };                               \
		commit_edits((f), edits_, sizeof(edits_) / sizeof(edits_[0]), (id), (err)); \
	})

#define SET(path, val)                         \
	{                                      \
		NX_NB_OP_MODIFY, (path), (val) \
	}
#define ADD(path)                             \
	{                                     \
		NX_NB_OP_CREATE, (path), NULL \
	}
#define DEL(path)                              \
	{                                      \
		NX_NB_OP_DESTROY, (path), NULL \
	}

static const char *running_str(struct fixture *f, const char *xpath)
{
	return nx_nb_get_string(nx_nb_running(f->nb), xpath);
}

/* Asserts rc is -code and err says something containing want. */
#define assert_rejected(rc, code, err, want)                                 \
	do {                                                                 \
		assert_int_equal((rc), -(code));                             \
		assert_true((err).msg[0] != '\0');                           \
		if (!strstr((err).msg, (want)))                              \
			fail_msg("\"%s\" not in \"%s\"", (want), (err).msg); \
	} while (0)

/* --- lib/yang ------------------------------------------------------------------------ */

static void test_yang_ctx(void **state)
{
	struct nx_err err = { "" };
	const char *orphan[] = { "nx-orphan", NULL };
	const char *broken[] = { "nx-broken", NULL };
	const char *absent[] = { "nx-test", "nx-absent", NULL };
	const struct lysc_node *snode;
	struct ly_ctx *ctx;

	(void)state;
	assert_ptr_equal(nx_yang_find_embedded(test_table, "nx-test"), &emb_test);
	assert_null(nx_yang_find_embedded(test_table, "nx-absent"));
	assert_null(nx_yang_find_embedded(NULL, "nx-test"));

	ctx = nx_yang_ctx_new(test_table, test_modules, &err);
	assert_non_null(ctx);
	/* the import came from the table and the built-in modules from libyang */
	assert_non_null(ly_ctx_get_module(ctx, "nexodus-types", NULL));
	assert_non_null(ly_ctx_get_module_implemented(ctx, "nx-test"));
	assert_non_null(ly_ctx_get_module_implemented(ctx, "ietf-yang-library"));

	snode = lys_find_path(ctx, NULL, TOP "/key", 0);
	assert_true(nx_yang_is_secret(snode));
	/* written inside the type statement */
	assert_true(nx_yang_is_secret(lys_find_path(ctx, NULL, TOP "/token", 0)));
	assert_false(nx_yang_is_secret(lys_find_path(ctx, NULL, TOP "/url", 0)));
	assert_false(nx_yang_is_secret(lys_find_path(ctx, NULL, TOP, 0)));
	assert_false(nx_yang_is_secret(NULL));

	/* nx_yang_err: the last error, with its path */
	assert_null(lys_find_path(ctx, NULL, TOP "/nope", 0));
	assert_int_equal(nx_yang_err(ctx, &err, EINVAL, "lookup"), -EINVAL);
	assert_non_null(strstr(err.msg, "lookup: "));
	assert_non_null(strstr(err.msg, "nope"));
	ly_err_clean(ctx, NULL);
	assert_int_equal(nx_yang_err(ctx, &err, EIO, "x"), -EIO);
	assert_non_null(strstr(err.msg, "unknown"));
	ly_ctx_destroy(ctx);

	/* refusals */
	assert_null(nx_yang_ctx_new(test_table, absent, &err));
	assert_non_null(strstr(err.msg, "\"nx-absent\" is not embedded"));
	assert_null(nx_yang_ctx_new(test_table, orphan, &err));
	assert_non_null(strstr(err.msg, "\"nx-orphan\""));
	assert_non_null(strstr(err.msg, "\"nx-missing\"")); /* the cause, not the consequence */
	assert_null(nx_yang_ctx_new(test_table, broken, &err));
	assert_non_null(strstr(err.msg, "nx-broken"));
	assert_non_null(strstr(err.msg, "no-such-type"));
	assert_null(nx_yang_ctx_new(NULL, test_modules, &err));
	assert_true(err.msg[0] != '\0');
}

/* --- nx_nb_new ------------------------------------------------------------------------ */

static void test_new_refuses_bad_table(void **state)
{
	static const struct nx_nb_node typo[] = {
		{ .xpath = "/nx-test:top/url", .cbs = { .modify = cb_record } },
		{ .xpath = "/nx-test:top/prot", .cbs = { .modify = cb_record } },
	};
	static const struct nx_nb_node twice[] = {
		{ .xpath = "/nx-test:top/url", .cbs = { .modify = cb_record } },
		{ .xpath = "/nx-test:top/nx-test:url", .cbs = { .destroy = cb_record } },
	};
	static const struct nx_nb_node modify_container[] = {
		{ .xpath = "/nx-test:top", .cbs = { .modify = cb_record } },
	};
	static const struct nx_nb_node key_cb[] = {
		{ .xpath = "/nx-test:top/peer/name", .cbs = { .modify = cb_record } },
	};
	static const struct nx_nb_node no_xpath[] = {
		{ .xpath = NULL, .cbs = { .modify = cb_record } },
	};
	static const struct nx_nb_node other_module[] = {
		{ .xpath = "/nx-absent:top", .cbs = { .create = cb_record } },
	};
	struct nx_err err = { "" };
	struct nx_nb_config cfg;

	(void)state;
	cfg = test_config(typo, 2, NULL);
	assert_null(nx_nb_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "\"/nx-test:top/prot\""));
	assert_non_null(strstr(err.msg, "prot"));

	cfg = test_config(twice, 2, NULL);
	assert_null(nx_nb_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "twice"));

	cfg = test_config(modify_container, 1, NULL);
	assert_null(nx_nb_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "modify"));

	cfg = test_config(key_cb, 1, NULL);
	assert_null(nx_nb_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "list key"));

	cfg = test_config(no_xpath, 1, NULL);
	assert_null(nx_nb_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "no xpath"));

	cfg = test_config(other_module, 1, NULL);
	assert_null(nx_nb_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "nx-absent"));

	/* the daemon's module must be among those loaded */
	cfg = test_config(NULL, 0, NULL);
	cfg.module = "nexodus-absent";
	assert_null(nx_nb_new(&cfg, &err));
	assert_non_null(strstr(err.msg, "nexodus-absent"));

	cfg = test_config(NULL, 0, NULL);
	cfg.modules = NULL;
	assert_null(nx_nb_new(&cfg, &err));
	assert_true(err.msg[0] != '\0');

	/* an empty table is fine */
	cfg = test_config(NULL, 0, NULL);
	{
		struct nx_nb *nb = nx_nb_new(&cfg, &err);

		assert_non_null(nb);
		nx_nb_free(nb);
	}
	nx_nb_free(NULL);
}

static void test_initial_running(void **state)
{
	struct fixture *f = *state;
	const struct lyd_node *run = nx_nb_running(f->nb);
	struct nx_nb_commit_info info[2];

	assert_non_null(nx_nb_ctx(f->nb));
	/* the defaults, nothing else, and no callback was called for them */
	assert_non_null(run);
	assert_int_equal(nx_nb_get_int(run, TOP "/port", -1), 51820);
	assert_string_equal(running_str(f, TOP "/backend"), "auto");
	assert_true(run->flags & LYD_DEFAULT);
	assert_null(running_str(f, TOP "/url"));
	assert_int_equal(nx_sbuf_len(&f->trace.log), 0);
	assert_int_equal(nx_nb_commit_list(f->nb, info, 2), 0);
}

/* --- commit ------------------------------------------------------------------------------ */

static void test_commit_phases(void **state)
{
	struct fixture *f = *state;
	struct nx_err err = { "" };
	uint32_t id = 0;
	int rc;

	rc = COMMIT(f, &id, &err, SET(TOP "/url", "https://a.example"), SET(TOP "/key", "s3cret"),
		    SET(TOP "/port", "1000"), ADD(TOP "/server[.='s1']"), SET(TOP "/server", "s2"),
		    SET(TOP "/peer[name='a']/weight", "20"), ADD(TOP "/relay"));
	assert_int_equal(rc, 0);
	assert_int_equal(id, 1);
	assert_string_equal(nx_sbuf_str(&f->trace.log),
			    "validate modify /nx-test:top/url=https://a.example\n"
			    "validate modify /nx-test:top/key=s3cret\n"
			    "validate modify /nx-test:top/port=1000\n"
			    "validate create /nx-test:top/server[.='s1']=s1\n"
			    "validate create /nx-test:top/server[.='s2']=s2\n"
			    "validate create /nx-test:top/peer[name='a']\n"
			    "validate modify /nx-test:top/peer[name='a']/weight=20\n"
			    "validate create /nx-test:top/relay\n"
			    "prepare modify /nx-test:top/url=https://a.example\n"
			    "prepare modify /nx-test:top/key=s3cret\n"
			    "prepare modify /nx-test:top/port=1000\n"
			    "prepare create /nx-test:top/server[.='s1']=s1\n"
			    "prepare create /nx-test:top/server[.='s2']=s2\n"
			    "prepare create /nx-test:top/peer[name='a']\n"
			    "prepare modify /nx-test:top/peer[name='a']/weight=20\n"
			    "prepare create /nx-test:top/relay\n"
			    "apply modify /nx-test:top/url=https://a.example\n"
			    "apply modify /nx-test:top/key=s3cret\n"
			    "apply modify /nx-test:top/port=1000\n"
			    "apply create /nx-test:top/server[.='s1']=s1\n"
			    "apply create /nx-test:top/server[.='s2']=s2\n"
			    "apply create /nx-test:top/peer[name='a']\n"
			    "apply modify /nx-test:top/peer[name='a']/weight=20\n"
			    "apply create /nx-test:top/relay\n"
			    "finish /nx-test:top\n"
			    "finish /nx-test:top/peer[name='a']\n");
	assert_string_equal(running_str(f, TOP "/url"), "https://a.example");
	assert_int_equal(nx_nb_get_int(nx_nb_running(f->nb), TOP "/port", -1), 1000);

	/* removals: children before their parents, destroys before creates */
	trace_reset(f);
	rc = COMMIT(f, &id, &err, SET(TOP "/peer[name='a']/prefix", "10.0.0.0/8"));
	assert_int_equal(rc, 0);
	assert_int_equal(id, 2);
	trace_reset(f);
	rc = COMMIT(f, &id, &err, DEL(TOP "/peer[name='a']"), DEL(TOP "/server[.='s1']"),
		    SET(TOP "/server", "s3"), DEL(TOP "/relay"), DEL(TOP "/key"));
	assert_int_equal(rc, 0);
	assert_string_equal(nx_sbuf_str(&f->trace.log),
			    "validate destroy /nx-test:top/key=s3cret\n"
			    "validate destroy /nx-test:top/server[.='s1']=s1\n"
			    "validate destroy /nx-test:top/peer[name='a']/prefix=10.0.0.0/8\n"
			    "validate destroy /nx-test:top/peer[name='a']\n"
			    "validate destroy /nx-test:top/relay\n"
			    "validate create /nx-test:top/server[.='s3']=s3\n"
			    "prepare destroy /nx-test:top/key=s3cret\n"
			    "prepare destroy /nx-test:top/server[.='s1']=s1\n"
			    "prepare destroy /nx-test:top/peer[name='a']/prefix=10.0.0.0/8\n"
			    "prepare destroy /nx-test:top/peer[name='a']\n"
			    "prepare destroy /nx-test:top/relay\n"
			    "prepare create /nx-test:top/server[.='s3']=s3\n"
			    "apply destroy /nx-test:top/key=s3cret\n"
			    "apply destroy /nx-test:top/server[.='s1']=s1\n"
			    "apply destroy /nx-test:top/peer[name='a']/prefix=10.0.0.0/8\n"
			    "apply destroy /nx-test:top/peer[name='a']\n"
			    "apply destroy /nx-test:top/relay\n"
			    "apply create /nx-test:top/server[.='s3']=s3\n"
			    "finish /nx-test:top\n");
	assert_false(nx_nb_exists(nx_nb_running(f->nb), TOP "/peer[name='a']"));
	assert_false(nx_nb_exists(nx_nb_running(f->nb), TOP "/relay"));
	assert_true(nx_nb_exists(nx_nb_running(f->nb), TOP "/server[.='s2']"));
}

static void test_commit_no_changes(void **state)
{
	struct fixture *f = *state;
	struct nx_nb_candidate *cand;
	struct nx_err err = { "" };
	uint32_t id = 77;

	cand = nx_nb_candidate_new(f->nb);
	assert_non_null(cand);
	assert_rejected(nx_nb_commit(f->nb, cand, NULL, &id, &err), EALREADY, err, "no changes");
	assert_int_equal(id, 77);

	/* an edit that sets what is already there is no change either */
	assert_int_equal(nx_nb_candidate_edit(cand, NX_NB_OP_MODIFY, TOP "/backend", "auto", &err),
			 0);
	assert_int_equal(nx_nb_commit(f->nb, cand, NULL, &id, &err), 0);
	/* ... except that it is now explicit: a change of running without callbacks */
	assert_int_equal(nx_sbuf_len(&f->trace.log), 0);
	assert_rejected(nx_nb_commit(f->nb, cand, NULL, &id, &err), EALREADY, err, "no changes");
	nx_nb_candidate_free(cand);

	assert_rejected(COMMIT(f, &id, &err, DEL(TOP "/url")), EALREADY, err, "no changes");
}

static void test_edit_type_errors(void **state)
{
	struct fixture *f = *state;
	struct nx_nb_candidate *cand = nx_nb_candidate_new(f->nb);
	struct nx_err err = { "" };
	int rc;

	assert_non_null(cand);
	rc = nx_nb_candidate_edit(cand, NX_NB_OP_MODIFY, TOP "/port", "0", &err);
	assert_rejected(rc, EINVAL, err, "\"0\"");
	assert_non_null(strstr(err.msg, "range"));
	assert_non_null(strstr(err.msg, "(path /nx-test:top/port)"));

	rc = nx_nb_candidate_edit(cand, NX_NB_OP_MODIFY, TOP "/port", "70000", &err);
	assert_rejected(rc, EINVAL, err, "70000");

	rc = nx_nb_candidate_edit(cand, NX_NB_OP_MODIFY, TOP "/url", "ftp://x", &err);
	assert_rejected(rc, EINVAL, err, "\"ftp://x\"");
	assert_non_null(strstr(err.msg, "pattern"));

	/* the model's own message does not name the value: it is added */
	rc = nx_nb_candidate_edit(cand, NX_NB_OP_MODIFY, TOP "/ifname", "Bad Name!", &err);
	assert_rejected(rc, EINVAL, err, "\"Bad Name!\": expected an interface name");
	rc = nx_nb_candidate_edit(cand, NX_NB_OP_MODIFY, TOP "/ifname", "bad\tname", &err);
	assert_rejected(rc, EINVAL, err, "\"bad?name\": expected an interface name");

	rc = nx_nb_candidate_edit(cand, NX_NB_OP_MODIFY, TOP "/backend", "bogus", &err);
	assert_rejected(rc, EINVAL, err, "bogus");

	rc = nx_nb_candidate_edit(cand, NX_NB_OP_MODIFY, TOP "/peer[name='a']/prefix",
				  "10.0.0.0/33", &err);
	assert_rejected(rc, EINVAL, err, "10.0.0.0/33");

	rc = nx_nb_candidate_edit(cand, NX_NB_OP_CREATE, TOP "/peer[name='a-name-much-too-long']",
				  NULL, &err);
	assert_rejected(rc, EINVAL, err, "a-name-much-too-long");

	/* a secret value is not repeated back */
	rc = nx_nb_candidate_edit(cand, NX_NB_OP_MODIFY, TOP "/psk", "notHEX!!", &err);
	assert_rejected(rc, EINVAL, err, "pattern");
	assert_null(strstr(err.msg, "notHEX!!"));
	assert_non_null(strstr(err.msg, "********"));

	/* paths */
	rc = nx_nb_candidate_edit(cand, NX_NB_OP_MODIFY, TOP "/bogus", "1", &err);
	assert_rejected(rc, EINVAL, err, "bogus");
	rc = nx_nb_candidate_edit(cand, NX_NB_OP_MODIFY, "/nx-absent:top/x", "1", &err);
	assert_rejected(rc, EINVAL, err, "nx-test");
	rc = nx_nb_candidate_edit(cand, NX_NB_OP_MODIFY, "top/url", "https://x", &err);
	assert_rejected(rc, EINVAL, err, "absolute");
	rc = nx_nb_candidate_edit(cand, NX_NB_OP_DESTROY, TOP "/bogus", NULL, &err);
	assert_rejected(rc, EINVAL, err, "bogus");
	rc = nx_nb_candidate_edit(cand, (enum nx_nb_op)42, TOP "/url", NULL, &err);
	assert_rejected(rc, EINVAL, err, "42");

	/* the candidate is untouched by the refusals */
	assert_null(nx_nb_get_string(nx_nb_candidate_tree(cand), TOP "/url"));
	assert_false(nx_nb_exists(nx_nb_candidate_tree(cand), TOP "/peer"));
	nx_nb_candidate_free(cand);
}

static void test_edit_destroy(void **state)
{
	struct fixture *f = *state;
	struct nx_nb_candidate *cand = nx_nb_candidate_new(f->nb);
	struct nx_err err = { "" };

	assert_non_null(cand);
	/* removing what is not there is fine */
	assert_int_equal(nx_nb_candidate_edit(cand, NX_NB_OP_DESTROY, TOP "/url", NULL, &err), 0);
	assert_int_equal(
		nx_nb_candidate_edit(cand, NX_NB_OP_DESTROY, TOP "/peer[name='zz']", NULL, &err),
		0);
	assert_int_equal(nx_nb_candidate_edit(cand, NX_NB_OP_DESTROY, TOP "/peer[name='zz']/weight",
					      NULL, &err),
			 0);
	/* creating twice is one creation */
	assert_int_equal(
		nx_nb_candidate_edit(cand, NX_NB_OP_CREATE, TOP "/server[.='x']", NULL, &err), 0);
	assert_int_equal(
		nx_nb_candidate_edit(cand, NX_NB_OP_CREATE, TOP "/server[.='x']", NULL, &err), 0);
	assert_int_equal(
		nx_nb_candidate_edit(cand, NX_NB_OP_CREATE, TOP "/peer[name='b']", NULL, &err), 0);
	assert_int_equal(
		nx_nb_candidate_edit(cand, NX_NB_OP_CREATE, TOP "/peer[name='b']", NULL, &err), 0);
	/* a key goes only with its entry */
	assert_rejected(nx_nb_candidate_edit(cand, NX_NB_OP_DESTROY, TOP "/peer[name='b']/name",
					     NULL, &err),
			EINVAL, err, "key");
	/* the whole configuration */
	assert_int_equal(nx_nb_candidate_edit(cand, NX_NB_OP_DESTROY, TOP, NULL, &err), 0);
	assert_null(nx_nb_candidate_tree(cand));
	assert_int_equal(nx_nb_candidate_edit(cand, NX_NB_OP_DESTROY, TOP "/url", NULL, &err), 0);
	assert_rejected(nx_nb_candidate_edit(cand, NX_NB_OP_DESTROY, TOP "/nope", NULL, &err),
			EINVAL, err, "nope");
	/* committing the empty candidate gives back the defaults: nothing changed */
	assert_rejected(nx_nb_commit(f->nb, cand, NULL, NULL, &err), EALREADY, err, "no changes");
	assert_int_equal(nx_nb_candidate_edit(cand, NX_NB_OP_MODIFY, TOP "/url", "https://x", &err),
			 0);
	assert_string_equal(nx_nb_get_string(nx_nb_candidate_tree(cand), TOP "/url"), "https://x");
	assert_int_equal(nx_nb_commit(f->nb, cand, NULL, NULL, &err), 0);
	assert_string_equal(running_str(f, TOP "/url"), "https://x");
	nx_nb_candidate_free(cand);
}

static void test_commit_validation_error(void **state)
{
	struct fixture *f = *state;
	struct nx_err err = { "" };
	int rc;

	assert_int_equal(COMMIT(f, NULL, &err, SET(TOP "/port", "2000")), 0);
	trace_reset(f);
	/* libyang's own check at commit: the model's error-message */
	rc = COMMIT(f, NULL, &err, SET(TOP "/port", "1"), SET(TOP "/url", "https://b"));
	assert_rejected(rc, EINVAL, err, "port 1 is reserved");
	assert_int_equal(nx_sbuf_len(&f->trace.log), 0);
	assert_int_equal(nx_nb_get_int(nx_nb_running(f->nb), TOP "/port", -1), 2000);
	assert_null(running_str(f, TOP "/url"));

	/* state data is not configuration */
	rc = COMMIT(f, NULL, &err, SET(TOP "/uptime", "5"));
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err.msg, "uptime"));
}

static void test_validate_refuses(void **state)
{
	struct fixture *f = *state;
	struct nx_err err = { "" };
	int rc;

	assert_int_equal(COMMIT(f, NULL, &err, SET(TOP "/url", "https://ok")), 0);
	trace_reset(f);

	f->trace.fail_validate = TOP "/url";
	f->trace.with_errmsg = true;
	rc = COMMIT(f, NULL, &err, SET(TOP "/url", "https://evil"), SET(TOP "/port", "3000"));
	assert_int_equal(rc, -EPERM);
	assert_string_equal(err.msg, "https://evil is not welcome here");
	assert_string_equal(nx_sbuf_str(&f->trace.log),
			    "validate modify /nx-test:top/url=https://evil\n");
	assert_string_equal(running_str(f, TOP "/url"), "https://ok");
	assert_int_equal(nx_nb_get_int(nx_nb_running(f->nb), TOP "/port", -1), 51820);

	/* without a reason from the callback: a generic one naming the node */
	trace_reset(f);
	f->trace.with_errmsg = false;
	rc = COMMIT(f, NULL, &err, SET(TOP "/url", "https://evil"));
	assert_rejected(rc, EPERM, err, "/nx-test:top/url");
	assert_non_null(strstr(err.msg, "validate"));
	assert_string_equal(running_str(f, TOP "/url"), "https://ok");
}

static void test_prepare_failure_aborts(void **state)
{
	struct fixture *f = *state;
	struct nx_nb_commit_info info[4];
	struct nx_err err = { "" };
	int rc;

	assert_int_equal(COMMIT(f, NULL, &err, SET(TOP "/url", "https://ok")), 0);
	trace_reset(f);

	/* the second of two changes fails at PREPARE: the first is aborted */
	f->trace.fail_prepare = TOP "/port";
	f->trace.with_errmsg = true;
	rc = COMMIT(f, NULL, &err, SET(TOP "/url", "https://new"), SET(TOP "/port", "4000"));
	assert_int_equal(rc, -EINVAL);
	assert_string_equal(err.msg, "no room for /nx-test:top/port");
	assert_string_equal(nx_sbuf_str(&f->trace.log),
			    "validate modify /nx-test:top/url=https://new\n"
			    "validate modify /nx-test:top/port=4000\n"
			    "prepare modify /nx-test:top/url=https://new\n"
			    "prepare modify /nx-test:top/port=4000\n"
			    "abort modify /nx-test:top/url=https://new\n");
	assert_int_equal(f->trace.resources, 0);
	assert_int_equal(f->trace.finish, 0);
	/* running and the log are untouched */
	assert_string_equal(running_str(f, TOP "/url"), "https://ok");
	assert_int_equal(nx_nb_get_int(nx_nb_running(f->nb), TOP "/port", -1), 51820);
	assert_int_equal(nx_nb_commit_list(f->nb, info, 4), 1);

	/* aborts run newest first; a generic reason when none is given */
	trace_reset(f);
	f->trace.with_errmsg = false;
	rc = COMMIT(f, NULL, &err, SET(TOP "/url", "https://new"), SET(TOP "/key", "k"),
		    SET(TOP "/port", "4000"));
	assert_rejected(rc, EINVAL, err, "/nx-test:top/port");
	assert_non_null(strstr(err.msg, "prepare"));
	assert_non_null(strstr(nx_sbuf_str(&f->trace.log),
			       "abort modify /nx-test:top/key=k\n"
			       "abort modify /nx-test:top/url=https://new\n"));

	/* the same commit goes through once the daemon agrees */
	trace_reset(f);
	f->trace.fail_prepare = NULL;
	rc = COMMIT(f, NULL, &err, SET(TOP "/url", "https://new"), SET(TOP "/port", "4000"));
	assert_int_equal(rc, 0);
	assert_string_equal(running_str(f, TOP "/url"), "https://new");
}

static void test_apply_finish_once(void **state)
{
	struct fixture *f = *state;
	struct nx_err err = { "" };
	const char *log;

	assert_int_equal(COMMIT(f, NULL, &err, SET(TOP "/url", "https://a"), SET(TOP "/key", "k"),
				SET(TOP "/port", "5000"), SET(TOP "/peer[name='p1']/weight", "5"),
				SET(TOP "/peer[name='p2']/weight", "6")),
			 0);
	/* one call for top, one for the peer list although two entries changed */
	assert_int_equal(f->trace.finish, 2);
	log = nx_sbuf_str(&f->trace.log);
	assert_non_null(strstr(log, "finish /nx-test:top\nfinish /nx-test:top/peer[name='p1']\n"));

	/* a leaf of a peer changing reaches the peer's and top's apply_finish */
	trace_reset(f);
	assert_int_equal(COMMIT(f, NULL, &err, SET(TOP "/peer[name='p2']/weight", "7")), 0);
	assert_string_equal(nx_sbuf_str(&f->trace.log),
			    "validate modify /nx-test:top/peer[name='p2']/weight=7\n"
			    "prepare modify /nx-test:top/peer[name='p2']/weight=7\n"
			    "apply modify /nx-test:top/peer[name='p2']/weight=7\n"
			    "finish /nx-test:top/peer[name='p2']\n"
			    "finish /nx-test:top\n");

	/* a removed peer does not get its own apply_finish, its parent does */
	trace_reset(f);
	assert_int_equal(COMMIT(f, NULL, &err, DEL(TOP "/peer[name='p1']")), 0);
	assert_int_equal(f->trace.finish, 1);
	assert_non_null(strstr(nx_sbuf_str(&f->trace.log), "finish /nx-test:top\n"));
}

static void test_default_flip(void **state)
{
	struct fixture *f = *state;
	struct nx_sbuf out;
	struct nx_err err = { "" };

	assert_int_equal(COMMIT(f, NULL, &err, SET(TOP "/port", "1000"),
				SET(TOP "/peer[name='a']/weight", "50")),
			 0);
	trace_reset(f);

	/* back to the default: a modify with the default value */
	assert_int_equal(COMMIT(f, NULL, &err, DEL(TOP "/port"), DEL(TOP "/peer[name='a']/weight")),
			 0);
	assert_string_equal(nx_sbuf_str(&f->trace.log),
			    "validate modify /nx-test:top/port=51820\n"
			    "validate modify /nx-test:top/peer[name='a']/weight=10\n"
			    "prepare modify /nx-test:top/port=51820\n"
			    "prepare modify /nx-test:top/peer[name='a']/weight=10\n"
			    "apply modify /nx-test:top/port=51820\n"
			    "apply modify /nx-test:top/peer[name='a']/weight=10\n"
			    "finish /nx-test:top\n"
			    "finish /nx-test:top/peer[name='a']\n");
	assert_int_equal(nx_nb_get_int(nx_nb_running(f->nb), TOP "/port", -1), 51820);

	/* the default value set explicitly: no callback, but running shows it now */
	trace_reset(f);
	assert_int_equal(COMMIT(f, NULL, &err, SET(TOP "/port", "51820")), 0);
	assert_int_equal(nx_sbuf_len(&f->trace.log), 0);
	nx_sbuf_init(&out, NULL, 0);
	nx_nb_render_cli(f->nb, nx_nb_running(f->nb), 0, &out);
	assert_string_equal(nx_sbuf_str(&out), "top\n"
					       " port 51820\n"
					       " peer a\n"
					       " exit-peer\n"
					       "exit\n");
	nx_sbuf_fini(&out);
	assert_rejected(COMMIT(f, NULL, &err, SET(TOP "/port", "51820")), EALREADY, err,
			"no changes");

	/* a new list entry: its default leaves are told their values too */
	trace_reset(f);
	assert_int_equal(COMMIT(f, NULL, &err, ADD(TOP "/peer[name='c']")), 0);
	assert_string_equal(nx_sbuf_str(&f->trace.log),
			    "validate create /nx-test:top/peer[name='c']\n"
			    "validate modify /nx-test:top/peer[name='c']/weight=10\n"
			    "prepare create /nx-test:top/peer[name='c']\n"
			    "prepare modify /nx-test:top/peer[name='c']/weight=10\n"
			    "apply create /nx-test:top/peer[name='c']\n"
			    "apply modify /nx-test:top/peer[name='c']/weight=10\n"
			    "finish /nx-test:top/peer[name='c']\n"
			    "finish /nx-test:top\n");
}

/* --- rollback -------------------------------------------------------------------------- */

static void test_rollback(void **state)
{
	struct fixture *f = *state;
	struct nx_nb_commit_info info[8];
	struct nx_nb_candidate *cand;
	struct nx_err err = { "" };
	uint32_t id1 = 0, id2 = 0;
	time_t before = time(NULL);

	assert_int_equal(COMMIT(f, &id1, &err, SET(TOP "/url", "https://one")), 0);
	assert_int_equal(COMMIT(f, &id2, &err, SET(TOP "/url", "https://two"),
				ADD(TOP "/server[.='s1']"), SET(TOP "/key", "k2")),
			 0);
	assert_int_equal(id2, id1 + 1);
	trace_reset(f);

	assert_int_equal(nx_nb_rollback(f->nb, id1, &err), 0);
	assert_string_equal(nx_sbuf_str(&f->trace.log),
			    "validate destroy /nx-test:top/key=k2\n"
			    "validate destroy /nx-test:top/server[.='s1']=s1\n"
			    "validate modify /nx-test:top/url=https://one\n"
			    "prepare destroy /nx-test:top/key=k2\n"
			    "prepare destroy /nx-test:top/server[.='s1']=s1\n"
			    "prepare modify /nx-test:top/url=https://one\n"
			    "apply destroy /nx-test:top/key=k2\n"
			    "apply destroy /nx-test:top/server[.='s1']=s1\n"
			    "apply modify /nx-test:top/url=https://one\n"
			    "finish /nx-test:top\n");
	assert_string_equal(running_str(f, TOP "/url"), "https://one");
	assert_false(nx_nb_exists(nx_nb_running(f->nb), TOP "/server"));

	/* the log, newest first */
	assert_int_equal(nx_nb_commit_list(f->nb, info, 8), 3);
	assert_int_equal(info[0].id, id2 + 1);
	assert_string_equal(info[0].comment, "rollback to 1");
	assert_int_equal(info[1].id, id2);
	assert_string_equal(info[1].comment, "test");
	assert_int_equal(info[2].id, id1);
	assert_true(info[2].when >= before && info[2].when <= time(NULL));
	assert_int_equal(nx_nb_commit_list(f->nb, info, 1), 1);
	assert_int_equal(info[0].id, id2 + 1);

	/* forward again, then to the current configuration (nothing to do) */
	assert_int_equal(nx_nb_rollback(f->nb, id2, &err), 0);
	assert_string_equal(running_str(f, TOP "/url"), "https://two");
	assert_rejected(nx_nb_rollback(f->nb, id2, &err), EALREADY, err, "no changes");
	assert_rejected(nx_nb_rollback(f->nb, 99, &err), ENOENT, err, "99");

	/* an ordinary commit after rollbacks; no comment given */
	cand = nx_nb_candidate_new(f->nb);
	assert_non_null(cand);
	assert_int_equal(nx_nb_candidate_edit(cand, NX_NB_OP_MODIFY, TOP "/backend", "uapi", &err),
			 0);
	assert_int_equal(nx_nb_commit(f->nb, cand, NULL, NULL, &err), 0);
	nx_nb_candidate_free(cand);
	assert_int_equal(nx_nb_commit_list(f->nb, info, 8), 5);
	assert_string_equal(info[0].comment, "");
}

static void test_rollback_log_max(void **state)
{
	struct fixture *f = *state;
	struct nx_nb_commit_info info[NX_NB_ROLLBACK_MAX + 5];
	struct nx_err err = { "" };
	char port[8];
	uint32_t id = 0;
	int i;

	for (i = 1; i <= NX_NB_ROLLBACK_MAX + 5; i++) {
		snprintf(port, sizeof(port), "%d", 1000 + i);
		assert_int_equal(COMMIT(f, &id, &err, SET(TOP "/port", port)), 0);
		assert_int_equal(id, (uint32_t)i);
	}
	assert_int_equal(nx_nb_commit_list(f->nb, info, NX_NB_ROLLBACK_MAX + 5),
			 NX_NB_ROLLBACK_MAX);
	assert_int_equal(info[0].id, NX_NB_ROLLBACK_MAX + 5);
	assert_int_equal(info[NX_NB_ROLLBACK_MAX - 1].id, 6);
	for (i = 1; i < NX_NB_ROLLBACK_MAX; i++)
		assert_int_equal(info[i].id, info[i - 1].id - 1);

	assert_rejected(nx_nb_rollback(f->nb, 5, &err), ENOENT, err, "5");
	assert_int_equal(nx_nb_rollback(f->nb, 6, &err), 0);
	assert_int_equal(nx_nb_get_int(nx_nb_running(f->nb), TOP "/port", -1), 1006);
	/* the rollback itself took the oldest slot */
	assert_int_equal(nx_nb_commit_list(f->nb, info, NX_NB_ROLLBACK_MAX + 5),
			 NX_NB_ROLLBACK_MAX);
	assert_int_equal(info[0].id, NX_NB_ROLLBACK_MAX + 6);
	assert_int_equal(info[NX_NB_ROLLBACK_MAX - 1].id, 7);
	assert_rejected(nx_nb_rollback(f->nb, 6, &err), ENOENT, err, "6");
}

/* --- rendering ------------------------------------------------------------------------------ */

static void commit_sample(struct fixture *f)
{
	struct nx_err err = { "" };

	assert_int_equal(COMMIT(f, NULL, &err, SET(TOP "/url", "https://a.example"),
				SET(TOP "/key", "s3cret"), SET(TOP "/psk", "0123abcd"),
				SET(TOP "/token", "tok3n"), ADD(TOP "/server[.='s1']"),
				SET(TOP "/peer[name='a']/weight", "20"),
				SET(TOP "/peer[name='a']/prefix", "10.1.0.0/16"),
				ADD(TOP "/peer[name='b']"), ADD(TOP "/relay")),
			 0);
}

static void test_render_cli(void **state)
{
	struct fixture *f = *state;
	struct nx_nb_candidate *cand;
	struct nx_err err = { "" };
	struct nx_sbuf out;

	nx_sbuf_init(&out, NULL, 0);
	/* nothing but defaults: nothing to show */
	nx_nb_render_cli(f->nb, nx_nb_running(f->nb), 0, &out);
	assert_string_equal(nx_sbuf_str(&out), "");
	nx_nb_render_cli(f->nb, NULL, 0, &out);
	assert_string_equal(nx_sbuf_str(&out), "");

	commit_sample(f);
	nx_nb_render_cli(f->nb, nx_nb_running(f->nb), 0, &out);
	assert_string_equal(nx_sbuf_str(&out), "top\n"
					       " url https://a.example\n"
					       " key ********\n"
					       " psk ********\n"
					       " server s1\n"
					       " peer a\n"
					       "  weight 20\n"
					       "  prefix 10.1.0.0/16\n"
					       " exit-peer\n"
					       " peer b\n"
					       " exit-peer\n"
					       " relay\n"
					       "exit\n");

	nx_sbuf_reset(&out);
	nx_nb_render_cli(f->nb, nx_nb_running(f->nb), NX_NB_SHOW_DEFAULTS | NX_NB_SHOW_SECRETS,
			 &out);
	assert_string_equal(nx_sbuf_str(&out), "top\n"
					       " url https://a.example\n"
					       " key s3cret\n"
					       " psk 0123abcd\n"
					       " port 51820\n"
					       " backend auto\n"
					       " server s1\n"
					       " peer a\n"
					       "  weight 20\n"
					       "  prefix 10.1.0.0/16\n"
					       " exit-peer\n"
					       " peer b\n"
					       "  weight 10\n"
					       " exit-peer\n"
					       " relay\n"
					       "exit\n");

	/* a candidate renders the same way, edits included */
	cand = nx_nb_candidate_new(f->nb);
	assert_non_null(cand);
	assert_int_equal(
		nx_nb_candidate_edit(cand, NX_NB_OP_DESTROY, TOP "/peer[name='a']", NULL, &err), 0);
	assert_int_equal(
		nx_nb_candidate_edit(cand, NX_NB_OP_DESTROY, TOP "/peer[name='b']", NULL, &err), 0);
	assert_int_equal(nx_nb_candidate_edit(cand, NX_NB_OP_MODIFY, TOP "/port", "7", &err), 0);
	nx_sbuf_reset(&out);
	nx_nb_render_cli(f->nb, nx_nb_candidate_tree(cand), 0, &out);
	assert_string_equal(nx_sbuf_str(&out), "top\n"
					       " url https://a.example\n"
					       " key ********\n"
					       " psk ********\n"
					       " port 7\n"
					       " server s1\n"
					       " relay\n"
					       "exit\n");
	nx_nb_candidate_free(cand);
	nx_sbuf_fini(&out);

	/* nx_nb_show_value */
	{
		const struct lyd_node *run = nx_nb_running(f->nb);
		struct lyd_node *key = NULL, *top = NULL;

		assert_int_equal(lyd_find_path(run, TOP "/key", 0, &key), LY_SUCCESS);
		assert_string_equal(nx_nb_show_value(key, 0), "********");
		assert_string_equal(nx_nb_show_value(key, NX_NB_SHOW_SECRETS), "s3cret");
		assert_int_equal(lyd_find_path(run, TOP, 0, &top), LY_SUCCESS);
		assert_null(nx_nb_show_value(top, 0));
		assert_null(nx_nb_show_value(NULL, 0));
	}
}

static void test_render_json(void **state)
{
	struct fixture *f = *state;
	struct lyd_node *back = NULL;
	char *json;

	/* only defaults: an empty document, or the defaults when asked */
	json = nx_nb_render_json(f->nb, nx_nb_running(f->nb), 0);
	assert_non_null(json);
	assert_null(strstr(json, "51820"));
	assert_int_equal(lyd_parse_data_mem(nx_nb_ctx(f->nb), json, LYD_JSON, LYD_PARSE_STRICT,
					    LYD_VALIDATE_NO_STATE, &back),
			 LY_SUCCESS);
	lyd_free_all(back);
	back = NULL;
	free(json);
	json = nx_nb_render_json(f->nb, NULL, 0);
	assert_non_null(json);
	assert_non_null(strstr(json, "{"));
	free(json);

	commit_sample(f);
	json = nx_nb_render_json(f->nb, nx_nb_running(f->nb), 0);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"key\": \"********\""));
	assert_non_null(strstr(json, "\"token\": \"********\""));
	assert_null(strstr(json, "s3cret"));
	assert_null(strstr(json, "tok3n"));
	/* the psk's pattern refuses the mask: left out */
	assert_null(strstr(json, "psk"));
	assert_null(strstr(json, "0123abcd"));
	assert_non_null(strstr(json, "\"url\": \"https://a.example\""));
	assert_null(strstr(json, "51820"));
	/* what is printed parses back, strictly, and validates */
	assert_int_equal(lyd_parse_data_mem(nx_nb_ctx(f->nb), json, LYD_JSON, LYD_PARSE_STRICT,
					    LYD_VALIDATE_NO_STATE, &back),
			 LY_SUCCESS);
	assert_string_equal(nx_nb_get_string(back, TOP "/key"), "********");
	assert_string_equal(nx_nb_get_string(back, TOP "/peer[name='a']/prefix"), "10.1.0.0/16");
	lyd_free_all(back);
	back = NULL;
	free(json);

	/* running itself still holds the secrets */
	assert_string_equal(running_str(f, TOP "/key"), "s3cret");
	assert_string_equal(running_str(f, TOP "/psk"), "0123abcd");

	json = nx_nb_render_json(f->nb, nx_nb_running(f->nb),
				 NX_NB_SHOW_SECRETS | NX_NB_SHOW_DEFAULTS);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"key\": \"s3cret\""));
	assert_non_null(strstr(json, "\"psk\": \"0123abcd\""));
	assert_non_null(strstr(json, "\"port\": 51820"));
	assert_int_equal(lyd_parse_data_mem(nx_nb_ctx(f->nb), json, LYD_JSON, LYD_PARSE_STRICT,
					    LYD_VALIDATE_NO_STATE, &back),
			 LY_SUCCESS);
	assert_string_equal(nx_nb_get_string(back, TOP "/psk"), "0123abcd");
	lyd_free_all(back);
	free(json);
}

/* Secrets that cannot be masked are left out, and the document stays loadable. */
static void test_render_json_secret_lists(void **state)
{
	struct fixture *f = *state;
	struct lyd_node *back = NULL;
	struct nx_err err = { "" };
	char *json;

	/* nodes without table entries: committed, nothing called */
	assert_int_equal(COMMIT(f, NULL, &err, ADD(TOP "/secret-tag[.='t1']"),
				ADD(TOP "/secret-tag[.='t2']"),
				SET(TOP "/credential[id='hidden-id']/note", "visible-note"),
				ADD(TOP "/credential[id='hidden-id']/tag[.='hidden-tag']"),
				ADD(TOP "/credential[id='other-id']"),
				SET(TOP "/url", "https://u")),
			 0);
	assert_null(strstr(nx_sbuf_str(&f->trace.log), "secret-tag"));
	assert_null(strstr(nx_sbuf_str(&f->trace.log), "credential"));

	json = nx_nb_render_json(f->nb, nx_nb_running(f->nb), 0);
	assert_non_null(json);
	assert_null(strstr(json, "t1"));
	assert_null(strstr(json, "hidden"));
	assert_null(strstr(json, "other-id"));
	/* a list entry named by a secret goes with everything in it */
	assert_null(strstr(json, "visible-note"));
	assert_non_null(strstr(json, "https://u"));
	assert_int_equal(lyd_parse_data_mem(nx_nb_ctx(f->nb), json, LYD_JSON, LYD_PARSE_STRICT,
					    LYD_VALIDATE_NO_STATE, &back),
			 LY_SUCCESS);
	lyd_free_all(back);
	free(json);

	json = nx_nb_render_json(f->nb, nx_nb_running(f->nb), NX_NB_SHOW_SECRETS);
	assert_non_null(json);
	assert_non_null(strstr(json, "hidden-tag"));
	assert_non_null(strstr(json, "visible-note"));
	assert_non_null(strstr(json, "t2"));
	free(json);
}

static void test_load_json(void **state)
{
	struct fixture *f = *state;
	struct nx_nb_candidate *cand = nx_nb_candidate_new(f->nb);
	struct nx_err err = { "" };
	char *json;

	assert_non_null(cand);
	assert_int_equal(
		nx_nb_candidate_load_json(cand,
					  "{\"nx-test:top\": {\"url\": \"https://j\","
					  " \"server\": [\"x\", \"y\"],"
					  " \"peer\": [{\"name\": \"p\", \"weight\": 3}]}}",
					  &err),
		0);
	assert_int_equal(nx_nb_commit(f->nb, cand, "json", NULL, &err), 0);
	assert_string_equal(running_str(f, TOP "/url"), "https://j");
	assert_int_equal(nx_nb_get_int(nx_nb_running(f->nb), TOP "/peer[name='p']/weight", 0), 3);
	assert_non_null(
		strstr(nx_sbuf_str(&f->trace.log), "apply create /nx-test:top/server[.='y']=y"));

	/* what render_json prints loads back to the same configuration */
	json = nx_nb_render_json(f->nb, nx_nb_running(f->nb), NX_NB_SHOW_SECRETS);
	assert_non_null(json);
	assert_int_equal(nx_nb_candidate_load_json(cand, json, &err), 0);
	free(json);
	assert_rejected(nx_nb_commit(f->nb, cand, NULL, NULL, &err), EALREADY, err, "no changes");

	/* refusals leave the candidate as it was */
	assert_rejected(nx_nb_candidate_load_json(cand, "{\"nx-test:top\": {\"port\": 0}}", &err),
			EINVAL, err, "\"0\"");
	assert_rejected(nx_nb_candidate_load_json(cand, "{\"nx-test:top\": {\"zzz\": 1}}", &err),
			EINVAL, err, "zzz");
	/* the value is named even where the model's message does not, never a secret one */
	assert_rejected(
		nx_nb_candidate_load_json(cand, "{\"nx-test:top\": {\"ifname\": \"Bad\"}}", &err),
		EINVAL, err, "JSON configuration: \"Bad\": expected an interface name");
	assert_rejected(
		nx_nb_candidate_load_json(cand, "{\"nx-test:top\": {\"port\": 70000}}", &err),
		EINVAL, err, "\"70000\"");
	assert_rejected(
		nx_nb_candidate_load_json(cand, "{\"nx-test:top\": {\"psk\": \"nothex!!\"}}", &err),
		EINVAL, err, "pattern");
	assert_null(strstr(err.msg, "nothex!!"));
	/* damaged documents are not an empty configuration */
	assert_rejected(nx_nb_candidate_load_json(cand, "{\"nx-test:top\": ", &err), EINVAL, err,
			"JSON");
	assert_rejected(nx_nb_candidate_load_json(cand, "{\"nx-test:top\": {}} xx", &err), EINVAL,
			err, "JSON");
	assert_rejected(nx_nb_candidate_load_json(cand, "", &err), EINVAL, err, "JSON");
	assert_rejected(nx_nb_candidate_load_json(cand, NULL, &err), EINVAL, err, "JSON");
	assert_rejected(nx_nb_candidate_load_json(cand, "[]", &err), EINVAL, err, "object");
	assert_rejected(nx_nb_candidate_load_json(cand, "{\"nx-absent:top\": {}}", &err), EINVAL,
			err, "nx-absent");
	assert_rejected(nx_nb_candidate_load_json(cand, "{\"nx-test:top\": {\"uptime\": 3}}", &err),
			EINVAL, err, "uptime");
	assert_string_equal(nx_nb_get_string(nx_nb_candidate_tree(cand), TOP "/url"), "https://j");

	/* an empty document empties the configuration */
	assert_int_equal(nx_nb_candidate_load_json(cand, "{}", &err), 0);
	assert_null(nx_nb_candidate_tree(cand));
	trace_reset(f);
	assert_int_equal(nx_nb_commit(f->nb, cand, NULL, NULL, &err), 0);
	assert_null(running_str(f, TOP "/url"));
	assert_non_null(
		strstr(nx_sbuf_str(&f->trace.log), "apply destroy /nx-test:top/peer[name='p']"));
	nx_nb_candidate_free(cand);
}

static void test_getters(void **state)
{
	struct fixture *f = *state;
	const struct lyd_node *run;
	struct lyd_node *top = NULL;

	commit_sample(f);
	run = nx_nb_running(f->nb);
	assert_int_equal(lyd_find_path(run, TOP, 0, &top), LY_SUCCESS);

	assert_string_equal(nx_nb_get_string(run, TOP "/url"), "https://a.example");
	assert_string_equal(nx_nb_get_string(top, "url"), "https://a.example");
	assert_string_equal(nx_nb_get_string(top, "peer[name='a']/prefix"), "10.1.0.0/16");
	assert_null(nx_nb_get_string(top, "peer[name='zz']/prefix"));
	assert_null(nx_nb_get_string(top, "peer[name='a']")); /* not a leaf */
	assert_null(nx_nb_get_string(NULL, "url"));
	/* more than a path: full XPath */
	assert_string_equal(nx_nb_get_string(top, "peer[weight > 15]/name"), "a");

	assert_int_equal(nx_nb_get_int(top, "port", -1), 51820);
	assert_int_equal(nx_nb_get_int(top, "peer[name='b']/weight", -1), 10);
	assert_int_equal(nx_nb_get_int(top, "url", -7), -7);
	assert_int_equal(nx_nb_get_int(top, "nothing", -8), -8);
	assert_int_equal(nx_nb_get_int(NULL, "port", -9), -9);

	assert_true(nx_nb_exists(top, "relay"));
	assert_true(nx_nb_exists(run, TOP "/peer[name='b']"));
	assert_true(nx_nb_exists(top, "server[.='s1']"));
	assert_false(nx_nb_exists(top, "server[.='s9']"));
	assert_false(nx_nb_exists(top, "uptime"));
	assert_false(nx_nb_exists(top, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yang_ctx),
		cmocka_unit_test(test_new_refuses_bad_table),
		cmocka_unit_test_setup_teardown(test_initial_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_phases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_no_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edit_type_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edit_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_validation_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_validate_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepare_failure_aborts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_finish_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_flip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_log_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_cli, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_json_secret_lists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_getters, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
