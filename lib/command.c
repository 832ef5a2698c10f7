/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The command tree: every CLI of the suite (the daemons' sockets, their config files, nexsh)
 * runs its lines through here.  A command's syntax is checked and compiled once, when the
 * daemon starts, so that a mistake in a definition stops the daemon with a message instead of
 * surfacing as a command nobody can type; matching, '?' and TAB then work on that compiled
 * form and must hold up against whatever a user or a client sends.
 *
 * Each syntax string is expanded into its forms: the linear token sequences it accepts
 * ("[no] relay" is "no relay" and "relay").  A line is matched against every form of the
 * node; per word an exact keyword beats an abbreviated one, which beats a typed variable,
 * then WORD, then LINE, and the best form (compared word by word from the left) wins.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/command.h"
#include "lib/strutil.h"

#define CMD_FORMS_MAX  256 /* forms one syntax may expand to */
#define CMD_TOKENS_MAX 256 /* tokens in one syntax string */
#define CMD_DEPTH_MAX  16  /* nesting of <...> and [...] */
#define CMD_TEXT_MAX   64  /* a token's text or name, NUL included (== candidate text) */
#define CMD_HELP_MAX   128 /* a token's help line, NUL included (== candidate help) */
#define CMD_TIES_MAX   4   /* ambiguous forms named in a message */

/* How well one word matched one token; higher is better, 0 is no match. */
enum {
	RANK_NONE = 0,
	RANK_LINE,
	RANK_WORD,
	RANK_TYPED,
	RANK_PARTIAL,
	RANK_EXACT,
};

struct cmd_token {
	enum nx_cmd_token_type type;
	size_t len;		 /* of text */
	char text[CMD_TEXT_MAX]; /* keyword, or the variable as written ("A.B.C.D/M") */
	char name[CMD_TEXT_MAX]; /* from $name; "" when unnamed */
	char help[CMD_HELP_MAX];
};

/* One linear token sequence a syntax accepts: indexes into the command's tokens. */
struct cmd_form {
	uint16_t len;
	uint16_t tok[NX_CMD_MAX_WORDS];
};

struct cmd_entry {
	const struct nx_cmd *cmd;
	char *canon; /* the syntax with normalised spacing, to spot duplicates */
	struct cmd_token *toks;
	int ntoks;
	struct cmd_form *forms;
	int nforms;
};

struct cmd_node {
	struct nx_cmd_node node; /* name and prompt point at our own copies */
	char *name;
	char *prompt;
	struct cmd_entry **cmds;
	size_t ncmds;
	size_t cap;
};

struct nx_cmd_tree {
	struct cmd_node **nodes; /* pointers, so nx_cmd_node_get() results stay valid */
	size_t nnodes;
	size_t cap;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_lower(char c)
{
	return c >= 'a' && c <= 'z';
}

static bool is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* ------------------------------------------------------------------------------------------ */
/* Nodes                                                                                      */

static struct cmd_node *find_node(const struct nx_cmd_tree *tree, int id)
{
	size_t i;

	for (i = 0; i < tree->nnodes; i++)
		if (tree->nodes[i]->node.id == id)
			return tree->nodes[i];
	return NULL;
}

/* The node matching falls back to after `cn`, or NULL at the top. */
static const struct cmd_node *parent_node(const struct nx_cmd_tree *tree, const struct cmd_node *cn)
{
	if (cn->node.parent < 0)
		return NULL;
	return find_node(tree, cn->node.parent);
}

/* A prompt is a printf format: exactly one %s, otherwise only %%. */
static bool prompt_ok(const char *fmt)
{
	int strings = 0;
	const char *s;

	for (s = fmt; *s; s++) {
		if (*s != '%')
			continue;
		s++;
		if (*s == '%')
			continue;
		if (*s != 's')
			return false;
		strings++;
	}
	return strings == 1;
}

static void cmd_entry_free(struct cmd_entry *ce)
{
	if (!ce)
		return;
	free(ce->canon);
	free(ce->toks);
	free(ce->forms);
	free(ce);
}

static void cmd_node_free(struct cmd_node *cn)
{
	size_t i;

	if (!cn)
		return;
	for (i = 0; i < cn->ncmds; i++)
		cmd_entry_free(cn->cmds[i]);
	free(cn->cmds);
	free(cn->name);
	free(cn->prompt);
	free(cn);
}

int nx_cmd_node_install(struct nx_cmd_tree *tree, const struct nx_cmd_node *node)
{
	struct cmd_node *cn;
	struct cmd_node **nodes;
	size_t cap;

	if (!tree || !node || node->id < 0 || !node->name || !node->name[0] || !node->prompt ||
	    !prompt_ok(node->prompt))
		return -EINVAL;
	if (find_node(tree, node->id))
		return -EEXIST;
	if (node->parent >= 0 && !find_node(tree, node->parent))
		return -EINVAL;

	if (tree->nnodes == tree->cap) {
		cap = tree->cap ? tree->cap * 2 : 8;
		nodes = realloc(tree->nodes, cap * sizeof(*nodes));
		if (!nodes)
			return -ENOMEM;
		tree->nodes = nodes;
		tree->cap = cap;
	}
	cn = calloc(1, sizeof(*cn));
	if (!cn)
		return -ENOMEM;
	cn->name = strdup(node->name);
	cn->prompt = strdup(node->prompt);
	if (!cn->name || !cn->prompt) {
		cmd_node_free(cn);
		return -ENOMEM;
	}
	cn->node.id = node->id;
	cn->node.name = cn->name;
	cn->node.prompt = cn->prompt;
	cn->node.parent = node->parent < 0 ? -1 : node->parent;
	tree->nodes[tree->nnodes++] = cn;
	return 0;
}

const struct nx_cmd_node *nx_cmd_node_get(const struct nx_cmd_tree *tree, int id)
{
	const struct cmd_node *cn = tree ? find_node(tree, id) : NULL;

	return cn ? &cn->node : NULL;
}

int nx_cmd_node_depth(const struct nx_cmd_tree *tree, int node)
{
	const struct cmd_node *cn = tree ? find_node(tree, node) : NULL;
	size_t hops;
	int depth = 0;

	if (!cn)
		return -EINVAL;
	for (hops = 0; cn && hops < tree->nnodes; hops++) {
		if (cn->node.id == NX_NODE_CONFIG || cn->node.id == NX_NODE_VIEW)
			break;
		depth++;
		cn = parent_node(tree, cn);
	}
	return depth;
}

struct nx_cmd_tree *nx_cmd_tree_new(void)
{
	static const struct nx_cmd_node builtin[] = {
		{ .id = NX_NODE_VIEW, .name = "view", .prompt = "%s# ", .parent = -1 },
		{ .id = NX_NODE_CONFIG, .name = "config", .prompt = "%s(config)# ", .parent = -1 },
	};
	struct nx_cmd_tree *tree = calloc(1, sizeof(*tree));
	size_t i;

	if (!tree)
		return NULL;
	for (i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
		if (nx_cmd_node_install(tree, &builtin[i]) < 0) {
			nx_cmd_tree_free(tree);
			return NULL;
		}
	}
	return tree;
}

void nx_cmd_tree_free(struct nx_cmd_tree *tree)
{
	size_t i;

	if (!tree)
		return;
	for (i = 0; i < tree->nnodes; i++)
		cmd_node_free(tree->nodes[i]);
	free(tree->nodes);
	free(tree);
}

/* ------------------------------------------------------------------------------------------ */
/* Syntax compilation                                                                         */

/* A set of forms under construction. */
struct formset {
	struct cmd_form *v;
	int n;
	int cap;
};

struct parser {
	const char *s;
	size_t pos;
	struct cmd_token *toks; /* CMD_TOKENS_MAX of them */
	int ntoks;
	int depth;
	struct nx_sbuf canon;
	char quoted[72]; /* the syntax, printable, for messages */
	struct nx_err *err;
};

static int parse_error(struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int parse_error(struct parser *p, const char *fmt, ...)
{
	char reason[NX_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return nx_err_set(p->err, EINVAL, "command \"%s\": %s", p->quoted, reason);
}

static char cur(const struct parser *p)
{
	return p->s[p->pos];
}

static void fs_free(struct formset *fs)
{
	free(fs->v);
	fs->v = NULL;
	fs->n = 0;
	fs->cap = 0;
}

static int fs_add(struct parser *p, struct formset *fs, const struct cmd_form *f)
{
	struct cmd_form *v;
	int cap;

	if (fs->n >= CMD_FORMS_MAX)
		return parse_error(p, "expands to more than %d forms", CMD_FORMS_MAX);
	if (fs->n == fs->cap) {
		cap = fs->cap ? fs->cap * 2 : 4;
		if (cap > CMD_FORMS_MAX)
			cap = CMD_FORMS_MAX;
		v = realloc(fs->v, (size_t)cap * sizeof(*v));
		if (!v)
			return nx_err_set(p->err, ENOMEM, "out of memory");
		fs->v = v;
		fs->cap = cap;
	}
	fs->v[fs->n++] = *f;
	return 0;
}

/* acc := every form of acc followed by every form of next. */
static int fs_concat(struct parser *p, struct formset *acc, const struct formset *next)
{
	struct formset out = { 0 };
	struct cmd_form f;
	int i, j, rc = 0;

	if ((long)acc->n * next->n > CMD_FORMS_MAX)
		return parse_error(p, "expands to more than %d forms", CMD_FORMS_MAX);
	for (i = 0; i < acc->n && rc == 0; i++) {
		for (j = 0; j < next->n && rc == 0; j++) {
			const struct cmd_form *a = &acc->v[i];
			const struct cmd_form *b = &next->v[j];

			if (a->len + b->len > NX_CMD_MAX_WORDS) {
				rc = parse_error(p, "a form has more than %d tokens",
						 NX_CMD_MAX_WORDS);
				break;
			}
			f.len = (uint16_t)(a->len + b->len);
			memcpy(f.tok, a->tok, a->len * sizeof(f.tok[0]));
			memcpy(f.tok + a->len, b->tok, b->len * sizeof(f.tok[0]));
			rc = fs_add(p, &out, &f);
		}
	}
	if (rc < 0) {
		fs_free(&out);
		return rc;
	}
	fs_free(acc);
	*acc = out;
	return 0;
}

static int parse_range(struct parser *p, struct cmd_token *t)
{
	char q[CMD_TEXT_MAX];
	char lo[CMD_TEXT_MAX];
	char hi[CMD_TEXT_MAX];
	unsigned long long min, max;
	const char *dash;
	size_t len = t->len;

	nx_str_printable(q, sizeof(q), t->text);
	dash = strchr(t->text + 1, '-');
	if (len < 5 || t->text[len - 1] != ')' || !dash || dash == t->text + 1 ||
	    dash + 1 >= t->text + len - 1)
		return parse_error(p, "bad range \"%s\": expected (MIN-MAX)", q);
	memcpy(lo, t->text + 1, (size_t)(dash - t->text - 1));
	lo[dash - t->text - 1] = '\0';
	memcpy(hi, dash + 1, (size_t)(t->text + len - 1 - dash - 1));
	hi[t->text + len - 1 - dash - 1] = '\0';
	if (nx_parse_uint(lo, 0, ULLONG_MAX, &min, NULL) < 0 ||
	    nx_parse_uint(hi, 0, ULLONG_MAX, &max, NULL) < 0)
		return parse_error(p, "bad range \"%s\": expected (MIN-MAX) in decimal", q);
	if (min > max)
		return parse_error(p, "bad range \"%s\": minimum exceeds maximum", q);
	t->type = NX_TOK_RANGE;
	return 0;
}

static int bad_char(struct parser *p, const struct cmd_token *t, char c, const char *what)
{
	char q[CMD_TEXT_MAX];

	nx_str_printable(q, sizeof(q), t->text);
	if (c > 0x20 && c < 0x7f)
		return parse_error(p, "\"%s\": bad character '%c' in %s", q, c, what);
	return parse_error(p, "\"%s\": bad character 0x%02x in %s", q, (unsigned char)c, what);
}

/* Decides what kind of token an atom is. */
static int classify(struct parser *p, struct cmd_token *t)
{
	static const struct {
		const char *text;
		enum nx_cmd_token_type type;
	} fixed[] = {
		{ "LINE", NX_TOK_LINE },
		{ "A.B.C.D", NX_TOK_IPV4 },
		{ "A.B.C.D/M", NX_TOK_IPV4_PREFIX },
		{ "X:X::X:X", NX_TOK_IPV6 },
		{ "X:X::X:X/M", NX_TOK_IPV6_PREFIX },
	};
	static const char kw_punct[] = "-_.:/+=,@";
	static const char var_punct[] = "_-.:";
	char q[CMD_TEXT_MAX];
	bool upper = false, lower = false;
	const char *s = t->text;
	size_t i;

	if (s[0] == '(')
		return parse_range(p, t);
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (strcmp(s, fixed[i].text) == 0) {
			t->type = fixed[i].type;
			return 0;
		}
	}
	for (i = 0; s[i]; i++) {
		upper |= is_upper(s[i]);
		lower |= is_lower(s[i]);
	}
	nx_str_printable(q, sizeof(q), s);
	if (upper && lower)
		return parse_error(p,
				   "\"%s\": mixes upper and lower case (keywords are lower "
				   "case, variables upper case)",
				   q);
	if (upper) {
		if (!is_upper(s[0]))
			return parse_error(p, "\"%s\": a variable starts with a capital letter", q);
		for (i = 0; s[i]; i++)
			if (!is_upper(s[i]) && !is_digit(s[i]) && !strchr(var_punct, s[i]))
				return bad_char(p, t, s[i], "a variable");
		t->type = NX_TOK_WORD;
		return 0;
	}
	if (!is_lower(s[0]) && !is_digit(s[0]))
		return bad_char(p, t, s[0], "a keyword (it starts with a letter or digit)");
	for (i = 0; s[i]; i++)
		if (!is_lower(s[i]) && !is_digit(s[i]) && !strchr(kw_punct, s[i]))
			return bad_char(p, t, s[i], "a keyword");
	t->type = NX_TOK_KEYWORD;
	return 0;
}

static bool is_special(char c)
{
	return c == '<' || c == '>' || c == '[' || c == ']' || c == '|' || c == '$';
}

static int parse_atom(struct parser *p, struct formset *out)
{
	char head[24];
	char q[CMD_TEXT_MAX];
	struct cmd_form f = { 0 };
	struct cmd_token *t;
	size_t start = p->pos;
	size_t len;
	char c;
	int rc;

	while ((c = cur(p)) != '\0' && !is_space(c) && !is_special(c))
		p->pos++;
	len = p->pos - start;
	if (len >= CMD_TEXT_MAX) {
		memcpy(head, p->s + start, 20);
		head[20] = '\0';
		nx_str_printable(q, sizeof(q), head);
		return parse_error(p, "token \"%s...\" is longer than %d characters", q,
				   CMD_TEXT_MAX - 1);
	}
	if (p->ntoks >= CMD_TOKENS_MAX)
		return parse_error(p, "more than %d tokens", CMD_TOKENS_MAX);
	t = &p->toks[p->ntoks];
	memset(t, 0, sizeof(*t));
	memcpy(t->text, p->s + start, len);
	t->text[len] = '\0';
	t->len = len;
	rc = classify(p, t);
	if (rc < 0)
		return rc;
	f.len = 1;
	f.tok[0] = (uint16_t)p->ntoks;
	p->ntoks++;
	nx_sbuf_puts(&p->canon, t->text);
	out->n = 0;
	return fs_add(p, out, &f);
}

static int parse_seq(struct parser *p, struct formset *out);

/* "<a|b c>" or "[a|b]": the union of the alternatives, plus the empty form for [...]. */
static int parse_group(struct parser *p, struct formset *out)
{
	struct formset alt = { 0 };
	struct cmd_form empty = { 0 };
	char open = cur(p);
	char close = open == '<' ? '>' : ']';
	char c;
	int i, rc;

	if (p->depth >= CMD_DEPTH_MAX)
		return parse_error(p, "brackets nested deeper than %d", CMD_DEPTH_MAX);
	p->depth++;
	p->pos++;
	nx_sbuf_printf(&p->canon, "%c", open);
	out->n = 0;
	for (;;) {
		rc = parse_seq(p, &alt);
		if (rc < 0)
			goto out;
		if (rc == 0) {
			rc = parse_error(p, "empty alternative in '%c...%c'", open, close);
			goto out;
		}
		for (i = 0; i < alt.n; i++) {
			rc = fs_add(p, out, &alt.v[i]);
			if (rc < 0)
				goto out;
		}
		c = cur(p);
		if (c == '|') {
			p->pos++;
			nx_sbuf_puts(&p->canon, "|");
			continue;
		}
		if (c == close) {
			p->pos++;
			nx_sbuf_printf(&p->canon, "%c", close);
			break;
		}
		if (c == '\0')
			rc = parse_error(p, "unbalanced '%c': no closing '%c'", open, close);
		else
			rc = parse_error(p, "'%c' closed by '%c'", open, c);
		goto out;
	}
	rc = open == '[' ? fs_add(p, out, &empty) : 0;
out:
	p->depth--;
	fs_free(&alt);
	return rc;
}

/* "$name" after a token or group: names every token inside that has no name yet. */
static int parse_name(struct parser *p, int first_tok)
{
	size_t start, len;
	char c;
	int i;

	p->pos++;
	start = p->pos;
	while ((c = cur(p)) != '\0' &&
	       (is_lower(c) || is_upper(c) || is_digit(c) || c == '_' || c == '-'))
		p->pos++;
	len = p->pos - start;
	if (len == 0)
		return parse_error(p, "'$' not followed by a name");
	if (len >= CMD_TEXT_MAX)
		return parse_error(p, "argument name longer than %d characters", CMD_TEXT_MAX - 1);
	for (i = first_tok; i < p->ntoks; i++) {
		if (p->toks[i].name[0] == '\0') {
			memcpy(p->toks[i].name, p->s + start, len);
			p->toks[i].name[len] = '\0';
		}
	}
	nx_sbuf_printf(&p->canon, "$%.*s", (int)len, p->s + start);
	return 0;
}

static int parse_elem(struct parser *p, struct formset *out)
{
	int first_tok = p->ntoks;
	char c = cur(p);
	int rc;

	if (c == '<' || c == '[')
		rc = parse_group(p, out);
	else if (c == '$')
		rc = parse_error(p, "'$' without a token before it");
	else
		rc = parse_atom(p, out);
	if (rc < 0)
		return rc;
	if (cur(p) == '$') {
		rc = parse_name(p, first_tok);
		if (rc < 0)
			return rc;
	}
	c = cur(p);
	if (c != '\0' && !is_space(c) && c != '|' && c != '>' && c != ']') {
		if (c > 0x20 && c < 0x7f)
			return parse_error(p, "missing space before '%c'", c);
		return parse_error(p, "bad character 0x%02x", (unsigned char)c);
	}
	return 0;
}

/* Elements up to the end or a '|', '>' or ']'; returns how many, or a negative errno. */
static int parse_seq(struct parser *p, struct formset *out)
{
	struct formset elem = { 0 };
	struct cmd_form empty = { 0 };
	int nelem = 0;
	char c;
	int rc;

	out->n = 0;
	rc = fs_add(p, out, &empty);
	if (rc < 0)
		return rc;
	for (;;) {
		while (is_space(cur(p)))
			p->pos++;
		c = cur(p);
		if (c == '\0' || c == '|' || c == '>' || c == ']')
			break;
		if (nelem > 0)
			nx_sbuf_puts(&p->canon, " ");
		rc = parse_elem(p, &elem);
		if (rc < 0)
			goto out;
		rc = fs_concat(p, out, &elem);
		if (rc < 0)
			goto out;
		nelem++;
	}
	rc = nelem;
out:
	fs_free(&elem);
	return rc;
}

/* Splits the help text into the tokens' help lines. */
static int assign_help(struct parser *p, const char *help)
{
	const char *s = help ? help : "";
	const char *nl;
	int lines = 0;
	size_t len;
	int i;

	for (nl = s; *nl; nl++)
		if (*nl == '\n')
			lines++;
	if (*s && s[strlen(s) - 1] != '\n')
		lines++;
	if (lines != p->ntoks)
		return parse_error(p, "help has %d line%s for %d token%s", lines,
				   lines == 1 ? "" : "s", p->ntoks, p->ntoks == 1 ? "" : "s");
	for (i = 0; i < p->ntoks; i++) {
		nl = strchr(s, '\n');
		len = nl ? (size_t)(nl - s) : strlen(s);
		if (len >= CMD_HELP_MAX)
			len = CMD_HELP_MAX - 1;
		memcpy(p->toks[i].help, s, len);
		p->toks[i].help[len] = '\0';
		s = nl ? nl + 1 : s + strlen(s);
	}
	return 0;
}

static int compile(const struct nx_cmd *cmd, struct cmd_entry **cep, struct nx_err *err)
{
	struct parser p = { .s = cmd->syntax, .err = err };
	struct formset forms = { 0 };
	struct cmd_entry *ce = NULL;
	int i, j, rc;
	char c;

	nx_sbuf_init(&p.canon, NULL, 0);
	nx_str_printable(p.quoted, sizeof(p.quoted), cmd->syntax);
	p.toks = calloc(CMD_TOKENS_MAX, sizeof(*p.toks));
	if (!p.toks) {
		rc = nx_err_set(err, ENOMEM, "out of memory");
		goto out;
	}

	rc = parse_seq(&p, &forms);
	if (rc < 0)
		goto out;
	c = cur(&p);
	if (c == '|') {
		rc = parse_error(&p, "'|' outside '<...>' or '[...]'");
		goto out;
	}
	if (c == '>' || c == ']') {
		rc = parse_error(&p, "'%c' without an opening '%c'", c, c == '>' ? '<' : '[');
		goto out;
	}
	if (rc == 0) {
		rc = parse_error(&p, "empty syntax");
		goto out;
	}
	for (i = 0; i < forms.n; i++) {
		const struct cmd_form *f = &forms.v[i];

		if (f->len == 0) {
			rc = parse_error(&p, "every part is optional, so it matches an empty line");
			goto out;
		}
		for (j = 0; j + 1 < f->len; j++) {
			if (p.toks[f->tok[j]].type == NX_TOK_LINE) {
				rc = parse_error(&p, "LINE must be the last token");
				goto out;
			}
		}
	}
	rc = assign_help(&p, cmd->help);
	if (rc < 0)
		goto out;
	if (nx_sbuf_truncated(&p.canon)) {
		rc = nx_err_set(err, ENOMEM, "out of memory");
		goto out;
	}

	ce = calloc(1, sizeof(*ce));
	if (!ce || !(ce->canon = strdup(nx_sbuf_str(&p.canon))) ||
	    !(ce->toks = malloc((size_t)p.ntoks * sizeof(*ce->toks))) ||
	    !(ce->forms = malloc((size_t)forms.n * sizeof(*ce->forms)))) {
		rc = nx_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	ce->cmd = cmd;
	memcpy(ce->toks, p.toks, (size_t)p.ntoks * sizeof(*ce->toks));
	ce->ntoks = p.ntoks;
	memcpy(ce->forms, forms.v, (size_t)forms.n * sizeof(*ce->forms));
	ce->nforms = forms.n;
	*cep = ce;
	ce = NULL;
	rc = 0;
out:
	cmd_entry_free(ce);
	fs_free(&forms);
	free(p.toks);
	nx_sbuf_fini(&p.canon);
	return rc;
}

int nx_cmd_install(struct nx_cmd_tree *tree, int node, const struct nx_cmd *cmd, struct nx_err *err)
{
	struct cmd_entry *ce = NULL;
	struct cmd_entry **cmds;
	struct cmd_node *cn;
	char q[72];
	size_t i, cap;
	int rc;

	nx_err_clear(err);
	if (!tree || !cmd || !cmd->syntax)
		return nx_err_set(err, EINVAL, "command without a syntax");
	nx_str_printable(q, sizeof(q), cmd->syntax);
	cn = find_node(tree, node);
	if (!cn)
		return nx_err_set(err, EINVAL, "command \"%s\": node %d is not installed", q, node);
	if (!cmd->fn)
		return nx_err_set(err, EINVAL, "command \"%s\": no handler", q);

	rc = compile(cmd, &ce, err);
	if (rc < 0)
		return rc;
	for (i = 0; i < cn->ncmds; i++) {
		if (strcmp(cn->cmds[i]->canon, ce->canon) == 0) {
			cmd_entry_free(ce);
			return nx_err_set(err, EEXIST,
					  "command \"%s\": already installed in node %s", q,
					  cn->name);
		}
	}
	if (cn->ncmds == cn->cap) {
		cap = cn->cap ? cn->cap * 2 : 16;
		cmds = realloc(cn->cmds, cap * sizeof(*cmds));
		if (!cmds) {
			cmd_entry_free(ce);
			return nx_err_set(err, ENOMEM, "out of memory");
		}
		cn->cmds = cmds;
		cn->cap = cap;
	}
	cn->cmds[cn->ncmds++] = ce;
	return 0;
}

void nx_cmd_foreach(const struct nx_cmd_tree *tree, int node,
		    void (*fn)(const struct nx_cmd *cmd, void *arg), void *arg)
{
	const struct cmd_node *cn = tree ? find_node(tree, node) : NULL;
	size_t i;

	if (!cn || !fn)
		return;
	for (i = 0; i < cn->ncmds; i++)
		if (!(cn->cmds[i]->cmd->flags & NX_CMD_HIDDEN))
			fn(cn->cmds[i]->cmd, arg);
}

/* ------------------------------------------------------------------------------------------ */
/* Matching                                                                                   */

/* A line split into words (offsets into the line, which is not modified). */
struct words {
	const char *line;
	size_t end;    /* length of the line without trailing whitespace */
	int n;	       /* words recorded */
	bool more;     /* more than NX_CMD_MAX_WORDS words: the rest were not recorded */
	bool trailing; /* the line is blank or ends in whitespace */
	size_t off[NX_CMD_MAX_WORDS];
	size_t len[NX_CMD_MAX_WORDS];
};

static int split_words(const char *line, struct words *w)
{
	size_t size = strnlen(line, NX_CMD_LINE_MAX + 1);
	size_t i, start;

	if (size > NX_CMD_LINE_MAX)
		return -E2BIG;
	w->line = line;
	w->n = 0;
	w->more = false;
	w->end = size;
	while (w->end > 0 && is_space(line[w->end - 1]))
		w->end--;
	w->trailing = w->end == 0 || w->end < size;
	i = 0;
	for (;;) {
		while (i < w->end && is_space(line[i]))
			i++;
		if (i >= w->end)
			break;
		if (w->n == NX_CMD_MAX_WORDS) {
			w->more = true;
			break;
		}
		start = i;
		while (i < w->end && !is_space(line[i]))
			i++;
		w->off[w->n] = start;
		w->len[w->n] = i - start;
		w->n++;
	}
	return 0;
}

static bool is_comment(const struct words *w)
{
	return w->n > 0 && (w->line[w->off[0]] == '!' || w->line[w->off[0]] == '#');
}

/*
 * Address shapes.  `partial` accepts what could still grow into the shape (for '?').
 * IPv4: digits and dots, at least one dot; prefix: digits, dots and one slash.
 * IPv6: hex digits, ':' and '.', at least one ':'; prefix: the same plus one slash.
 */
static bool shape_ipv4(const char *s, size_t len, bool prefix, bool partial)
{
	size_t i, digits = 0, dots = 0, slashes = 0;

	for (i = 0; i < len; i++) {
		if (is_digit(s[i]))
			digits++;
		else if (s[i] == '.')
			dots++;
		else if (s[i] == '/' && prefix)
			slashes++;
		else
			return false;
	}
	if (slashes > 1)
		return false;
	if (partial)
		return true;
	if (prefix)
		return digits > 0 && slashes == 1;
	return digits > 0 && dots > 0;
}

static bool shape_ipv6(const char *s, size_t len, bool prefix, bool partial)
{
	size_t i, colons = 0, slashes = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == ':')
			colons++;
		else if (s[i] == '/' && prefix)
			slashes++;
		else if (!is_hex(s[i]) && s[i] != '.')
			return false;
	}
	if (slashes > 1)
		return false;
	if (partial)
		return true;
	return colons > 0 && (!prefix || slashes == 1);
}

static bool shape_number(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!is_digit(s[i]))
			return false;
	return len > 0;
}

/* How well word s (len bytes, not empty) fits token t; `partial` for a word still typed. */
static int rank_word(const struct cmd_token *t, const char *s, size_t len, bool partial)
{
	switch (t->type) {
	case NX_TOK_KEYWORD:
		if (len > t->len || memcmp(s, t->text, len) != 0)
			return RANK_NONE;
		return len == t->len ? RANK_EXACT : RANK_PARTIAL;
	case NX_TOK_WORD:
		return RANK_WORD;
	case NX_TOK_LINE:
		return RANK_LINE;
	case NX_TOK_IPV4:
		return shape_ipv4(s, len, false, partial) ? RANK_TYPED : RANK_NONE;
	case NX_TOK_IPV4_PREFIX:
		return shape_ipv4(s, len, true, partial) ? RANK_TYPED : RANK_NONE;
	case NX_TOK_IPV6:
		return shape_ipv6(s, len, false, partial) ? RANK_TYPED : RANK_NONE;
	case NX_TOK_IPV6_PREFIX:
		return shape_ipv6(s, len, true, partial) ? RANK_TYPED : RANK_NONE;
	case NX_TOK_RANGE:
		return shape_number(s, len) ? RANK_TYPED : RANK_NONE;
	}
	return RANK_NONE;
}

enum eval {
	EV_FAIL,   /* some word does not fit, or there are more words than tokens */
	EV_PREFIX, /* every word fits and the form wants more */
	EV_FULL,   /* every word fits and the form is complete */
	EV_LINE,   /* a LINE token took the remaining words (the form is complete) */
};

/* Fits the first nw words of w to form f, storing each word's rank. */
static enum eval eval_form(const struct cmd_entry *ce, const struct cmd_form *f,
			   const struct words *w, int nw, uint8_t *rank)
{
	const struct cmd_token *t;
	int i, j, r;

	for (i = 0; i < nw; i++) {
		if (i >= f->len)
			return EV_FAIL;
		t = &ce->toks[f->tok[i]];
		if (t->type == NX_TOK_LINE) {
			for (j = i; j < nw; j++)
				rank[j] = RANK_LINE;
			return EV_LINE;
		}
		r = rank_word(t, w->line + w->off[i], w->len[i], false);
		if (r == RANK_NONE)
			return EV_FAIL;
		rank[i] = (uint8_t)r;
	}
	return nw == f->len ? EV_FULL : EV_PREFIX;
}

/* The outcome of matching a line at one node. */
struct node_match {
	const struct cmd_entry *tie[CMD_TIES_MAX]; /* tie[0] is the best form */
	const struct cmd_form *tie_form[CMD_TIES_MAX];
	int nties; /* distinct forms with the best rank */
	uint8_t best_rank[NX_CMD_MAX_WORDS];
	bool incomplete;
};

/* Two forms are the same choice when they belong to one command and read alike
 * ("[a] [a]" yields "a" twice). */
static bool same_choice(const struct cmd_entry *a, const struct cmd_form *fa,
			const struct cmd_entry *b, const struct cmd_form *fb)
{
	int i;

	if (a != b || fa->len != fb->len)
		return false;
	for (i = 0; i < fa->len; i++) {
		const struct cmd_token *ta = &a->toks[fa->tok[i]];
		const struct cmd_token *tb = &b->toks[fb->tok[i]];

		if (ta->type != tb->type || strcmp(ta->text, tb->text) != 0)
			return false;
	}
	return true;
}

static void consider(struct node_match *nm, const struct cmd_entry *ce, const struct cmd_form *f,
		     const uint8_t *rank, int n)
{
	int c, i;

	c = nm->nties ? memcmp(rank, nm->best_rank, (size_t)n) : 1;
	if (c < 0)
		return;
	if (c > 0) {
		memcpy(nm->best_rank, rank, (size_t)n);
		nm->tie[0] = ce;
		nm->tie_form[0] = f;
		nm->nties = 1;
		return;
	}
	for (i = 0; i < nm->nties && i < CMD_TIES_MAX; i++)
		if (same_choice(nm->tie[i], nm->tie_form[i], ce, f))
			return;
	if (nm->nties < CMD_TIES_MAX) {
		nm->tie[nm->nties] = ce;
		nm->tie_form[nm->nties] = f;
	}
	nm->nties++;
}

static int match_node(const struct cmd_node *cn, const struct words *w, struct node_match *nm)
{
	uint8_t rank[NX_CMD_MAX_WORDS];
	size_t i;
	int j;

	memset(nm, 0, sizeof(*nm));
	for (i = 0; i < cn->ncmds; i++) {
		const struct cmd_entry *ce = cn->cmds[i];

		for (j = 0; j < ce->nforms; j++) {
			enum eval ev = eval_form(ce, &ce->forms[j], w, w->n, rank);

			if (ev == EV_FAIL || (w->more && ev != EV_LINE))
				continue;
			if (ev == EV_PREFIX)
				nm->incomplete = true;
			else
				consider(nm, ce, &ce->forms[j], rank, w->n);
		}
	}
	if (nm->nties == 1)
		return NX_CMD_SUCCESS;
	if (nm->nties > 1)
		return NX_CMD_ERR_AMBIGUOUS;
	return nm->incomplete ? NX_CMD_ERR_INCOMPLETE : NX_CMD_ERR_NO_MATCH;
}

/* Stores the winning form's arguments; variables' text is copied into m->words.  The words
 * are disjoint pieces of the line separated by whitespace, so they fit. */
static void fill_match(struct nx_cmd_match *m, const struct words *w, const struct cmd_entry *ce,
		       const struct cmd_form *f)
{
	size_t used = 0, len;
	int i;

	m->cmd = ce->cmd;
	m->argc = f->len;
	for (i = 0; i < f->len; i++) {
		const struct cmd_token *t = &ce->toks[f->tok[i]];
		struct nx_cmd_arg *a = &m->argv[i];

		a->type = t->type;
		a->name = t->name[0] ? t->name : t->text;
		if (t->type == NX_TOK_KEYWORD) {
			a->text = t->text;
			continue;
		}
		len = t->type == NX_TOK_LINE ? w->end - w->off[i] : w->len[i];
		if (used + len + 1 > sizeof(m->words))
			len = used < sizeof(m->words) ? sizeof(m->words) - used - 1 : 0;
		memcpy(m->words + used, w->line + w->off[i], len);
		m->words[used + len] = '\0';
		a->text = m->words + used;
		used += len + 1;
	}
}

/* Appends a form as text ("wireguard-backend kernel") for a message. */
static void describe_form(struct nx_sbuf *b, const struct cmd_entry *ce, const struct cmd_form *f)
{
	int i;

	for (i = 0; i < f->len; i++)
		nx_sbuf_printf(b, "%s%s", i ? " " : "", ce->toks[f->tok[i]].text);
}

static void match_error(struct nx_cmd_match *m, const struct words *w, int status,
			const struct node_match *nm, struct nx_err *err)
{
	char msg[NX_ERR_MAX];
	char q[200];
	struct nx_sbuf b;
	size_t start = w->n ? w->off[0] : 0;
	int i;

	/* m->words is free until a match fills it: use it to quote the trimmed line */
	memcpy(m->words, w->line + start, w->end - start);
	m->words[w->end - start] = '\0';
	switch (status) {
	case NX_CMD_ERR_AMBIGUOUS:
		nx_str_printable(q, 80, m->words);
		nx_sbuf_init(&b, msg, sizeof(msg));
		nx_sbuf_printf(&b, "%% Ambiguous command: %s (could be: ", q);
		for (i = 0; i < nm->nties && i < CMD_TIES_MAX; i++) {
			if (i)
				nx_sbuf_puts(&b, "; ");
			describe_form(&b, nm->tie[i], nm->tie_form[i]);
		}
		nx_sbuf_puts(&b, nm->nties > CMD_TIES_MAX ? "; ...)" : ")");
		if (nx_sbuf_truncated(&b) && sizeof(msg) > 5)
			memcpy(msg + sizeof(msg) - 5, "...)", 5);
		nx_err_set(err, EINVAL, "%s", msg);
		break;
	case NX_CMD_ERR_INCOMPLETE:
		nx_str_printable(q, sizeof(q), m->words);
		nx_err_set(err, EINVAL, "%% Command incomplete: %s", q);
		break;
	case NX_CMD_ERR_TOO_LONG:
		nx_err_set(err, E2BIG, "%% Too many words (at most %d)", NX_CMD_MAX_WORDS);
		break;
	default:
		nx_str_printable(q, sizeof(q), m->words);
		nx_err_set(err, EINVAL, "%% Unknown command: %s", q);
		break;
	}
	m->words[0] = '\0';
}

int nx_cmd_match(const struct nx_cmd_tree *tree, int node, const char *line, struct nx_cmd_match *m,
		 struct nx_err *err)
{
	const struct cmd_node *start = tree ? find_node(tree, node) : NULL;
	const struct cmd_node *cn;
	const struct cmd_node *view;
	struct node_match nm;
	struct words w;
	int status = NX_CMD_ERR_NO_MATCH;
	int at = node;
	bool seen_view = false;
	size_t hops;

	m->cmd = NULL;
	m->node = node;
	m->argc = 0;
	m->words[0] = '\0';
	nx_err_clear(err);
	if (split_words(line ? line : "", &w) < 0) {
		nx_err_set(err, E2BIG, "%% Line too long (over %d bytes)", NX_CMD_LINE_MAX);
		return NX_CMD_ERR_TOO_LONG;
	}
	if (w.n == 0 || is_comment(&w))
		return NX_CMD_SUCCESS;
	if (!start) {
		nx_err_set(err, EINVAL, "%% Unknown node %d", node);
		return NX_CMD_ERR_NO_MATCH;
	}

	/* the node itself, then its parents, then (as FRR does for "show ...") VIEW */
	for (cn = start, hops = 0; cn && hops < tree->nnodes; hops++) {
		seen_view |= cn->node.id == NX_NODE_VIEW;
		status = match_node(cn, &w, &nm);
		if (status != NX_CMD_ERR_NO_MATCH) {
			at = cn->node.id;
			break;
		}
		cn = parent_node(tree, cn);
	}
	if (status == NX_CMD_ERR_NO_MATCH && !seen_view && (view = find_node(tree, NX_NODE_VIEW)))
		status = match_node(view, &w, &nm);

	if (status == NX_CMD_SUCCESS) {
		fill_match(m, &w, nm.tie[0], nm.tie_form[0]);
		m->node = at;
		return NX_CMD_SUCCESS;
	}
	if (status == NX_CMD_ERR_NO_MATCH && w.more)
		status = NX_CMD_ERR_TOO_LONG;
	match_error(m, &w, status, &nm, err);
	return status;
}

const char *nx_cmd_arg_get(int argc, const struct nx_cmd_arg *argv, const char *name)
{
	int i;

	if (!argv || !name)
		return NULL;
	for (i = 0; i < argc; i++)
		if (argv[i].name && strcmp(argv[i].name, name) == 0)
			return argv[i].text;
	return NULL;
}

bool nx_cmd_arg_has(int argc, const struct nx_cmd_arg *argv, const char *kw)
{
	int i;

	if (!argv || !kw)
		return false;
	for (i = 0; i < argc; i++)
		if (argv[i].type == NX_TOK_KEYWORD && argv[i].text && strcmp(argv[i].text, kw) == 0)
			return true;
	return false;
}

/* ------------------------------------------------------------------------------------------ */
/* '?' and TAB                                                                                */

struct cand_list {
	struct nx_cmd_candidate *v;
	size_t n;
	size_t cap;
	int rc;
};

static void cand_add(struct cand_list *l, const char *text, const char *help)
{
	struct nx_cmd_candidate *v;
	size_t cap;

	if (l->rc < 0)
		return;
	if (l->n == l->cap) {
		cap = l->cap ? l->cap * 2 : 32;
		v = realloc(l->v, cap * sizeof(*v));
		if (!v) {
			l->rc = -ENOMEM;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	nx_strlcpy(l->v[l->n].text, text, sizeof(l->v[l->n].text));
	nx_strlcpy(l->v[l->n].help, help, sizeof(l->v[l->n].help));
	l->n++;
}

/*
 * Candidates at one node: for the next word when the line ends in whitespace, else for the
 * partial last word.  `keywords` limits them to keywords (TAB).  Returns how many forms are
 * still alive here, hidden ones and those without a keyword included: '?' and TAB stop at the
 * same node as matching does.
 */
static int collect_node(const struct cmd_node *cn, const struct words *w, bool keywords,
			struct cand_list *l)
{
	bool partial = !w->trailing && !w->more;
	int nw = partial ? w->n - 1 : w->n;
	uint8_t rank[NX_CMD_MAX_WORDS];
	int alive = 0;
	size_t i;
	int j;

	for (i = 0; i < cn->ncmds; i++) {
		const struct cmd_entry *ce = cn->cmds[i];
		bool show = !(ce->cmd->flags & NX_CMD_HIDDEN);

		for (j = 0; j < ce->nforms; j++) {
			const struct cmd_form *f = &ce->forms[j];
			const struct cmd_token *t;
			enum eval ev = eval_form(ce, f, w, nw, rank);

			if (ev == EV_FAIL || (w->more && ev != EV_LINE) ||
			    (ev == EV_FULL && partial))
				continue;
			if (ev == EV_FULL) {
				alive++;
				if (show && !keywords)
					cand_add(l, "<cr>", "");
				continue;
			}
			if (ev == EV_LINE) {
				alive++;
				t = &ce->toks[f->tok[f->len - 1]];
				if (show && !keywords) {
					cand_add(l, t->text, t->help);
					if (w->trailing)
						cand_add(l, "<cr>", "");
				}
				continue;
			}
			t = &ce->toks[f->tok[nw]];
			if (partial &&
			    rank_word(t, w->line + w->off[nw], w->len[nw], true) == RANK_NONE)
				continue;
			alive++;
			if (show && (!keywords || t->type == NX_TOK_KEYWORD))
				cand_add(l, t->text, t->help);
		}
	}
	return alive;
}

static int cand_cmp(const void *a, const void *b)
{
	const struct nx_cmd_candidate *x = a;
	const struct nx_cmd_candidate *y = b;
	int c = strcmp(x->text, y->text);

	if (c)
		return c;
	/* of duplicates the first is kept: one with help, if any has */
	if (!x->help[0] != !y->help[0])
		return x->help[0] ? -1 : 1;
	return strcmp(x->help, y->help);
}

static int collect(const struct nx_cmd_tree *tree, int node, const char *line, bool keywords,
		   struct nx_cmd_candidate *out, size_t max)
{
	const struct cmd_node *cn = tree ? find_node(tree, node) : NULL;
	const struct cmd_node *view;
	struct cand_list l = { 0 };
	struct words w;
	bool seen_view = false;
	size_t hops, i, n;
	int alive = 0;

	if (split_words(line ? line : "", &w) < 0)
		return -E2BIG;
	if (!cn)
		return -EINVAL;
	if (is_comment(&w))
		return 0;

	/* the first node on the matching path where some form is still alive */
	for (hops = 0; cn && hops < tree->nnodes && alive == 0; hops++) {
		seen_view |= cn->node.id == NX_NODE_VIEW;
		alive = collect_node(cn, &w, keywords, &l);
		cn = parent_node(tree, cn);
	}
	if (alive == 0 && !seen_view && (view = find_node(tree, NX_NODE_VIEW)))
		collect_node(view, &w, keywords, &l);
	if (l.rc < 0) {
		free(l.v);
		return l.rc;
	}

	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cand_cmp);
	for (i = 0, n = 0; i < l.n; i++) {
		if (n > 0 && strcmp(l.v[n - 1].text, l.v[i].text) == 0)
			continue;
		if (n != i)
			l.v[n] = l.v[i];
		n++;
	}
	for (i = 0; i < n && i < max && out; i++)
		out[i] = l.v[i];
	free(l.v);
	return n > INT_MAX ? INT_MAX : (int)n;
}

int nx_cmd_describe(const struct nx_cmd_tree *tree, int node, const char *line,
		    struct nx_cmd_candidate *out, size_t max)
{
	return collect(tree, node, line, false, out, max);
}

int nx_cmd_complete(const struct nx_cmd_tree *tree, int node, const char *line,
		    struct nx_cmd_candidate *out, size_t max)
{
	return collect(tree, node, line, true, out, max);
}
