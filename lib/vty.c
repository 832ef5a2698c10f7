/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * VTY: the sessions that run command lines, the built-in commands every daemon shares, the
 * config file reader and the unix socket server nexsh talks to.  Everything a client sends
 * is untrusted: requests are bounded and framed by a pure function, replies are bounded and
 * written without blocking, and a client that misbehaves or vanishes costs only itself.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/command.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/nb_cli.h"
#include "lib/vty.h"

#define VTY_MAX_CLIENTS	    64
#define VTY_PENDING_CAP	    (64u << 10) /* no new request while more than this is unsent */
#define VTY_KEEP_OUTBUF	    (64u << 10) /* an idle client keeps at most this much buffer */
#define VTY_MAX_CANDIDATES  256
#define VTY_LISTEN_BACKLOG  16
#define VTY_ACCEPT_RETRY_MS 100
#define VTY_SOCKET_GROUP    "nexodus"
#define VTY_NODE_SCAN	    1024 /* node ids looked at when installing the basic commands */

#define VTY_TRUNC_NOTICE "% output truncated\n"
/* Output kept before the notice; the notice itself may go past it. */
#define VTY_OUT_CAP	 (NX_VTY_OUTPUT_MAX - sizeof(VTY_TRUNC_NOTICE) - 1)

/* --- sessions ------------------------------------------------------------ */

void nx_vty_init(struct nx_vty *vty, enum nx_vty_kind kind, const struct nx_cmd_tree *tree,
		 void *daemon, int node)
{
	memset(vty, 0, sizeof(*vty));
	vty->kind = kind;
	vty->tree = tree;
	vty->daemon = daemon;
	vty->node = node;
	nx_sbuf_init(&vty->out, NULL, 0);
}

void nx_vty_fini(struct nx_vty *vty)
{
	if (vty->nb)
		nx_nb_cli_state_free(vty);
	vty->nb = NULL;
	nx_sbuf_fini(&vty->out);
	vty->xpath_depth = 0;
}

/* Ends the output with the truncation notice, on a line of its own. */
static void vty_out_cut(struct nx_vty *vty)
{
	size_t len = nx_sbuf_len(&vty->out);

	if (len > 0 && nx_sbuf_str(&vty->out)[len - 1] != '\n')
		nx_sbuf_puts(&vty->out, "\n");
	nx_sbuf_puts(&vty->out, VTY_TRUNC_NOTICE);
}

void nx_vty_out(struct nx_vty *vty, const char *fmt, ...)
{
	size_t cur = nx_sbuf_len(&vty->out);
	size_t keep;
	va_list ap;
	va_list ap2;
	char *tmp;
	int n;

	if (cur > VTY_OUT_CAP)
		return; /* already cut: only the notice goes past the cap */

	va_start(ap, fmt);
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		goto out;
	if ((size_t)n <= VTY_OUT_CAP - cur) {
		nx_sbuf_vprintf(&vty->out, fmt, ap2);
		goto out;
	}

	/* Keep what fits, then say that the rest is gone. */
	keep = VTY_OUT_CAP - cur;
	tmp = malloc(keep + 1);
	if (tmp) {
		vsnprintf(tmp, keep + 1, fmt, ap2);
		nx_sbuf_puts(&vty->out, tmp);
		free(tmp);
	}
	vty_out_cut(vty);
out:
	va_end(ap2);
}

int nx_vty_push_xpath(struct nx_vty *vty, const char *xpath)
{
	if (vty->xpath_depth >= NX_VTY_XPATH_DEPTH)
		return -E2BIG;
	if (nx_strlcpy(vty->xpath[vty->xpath_depth], xpath, NX_VTY_XPATH_MAX) >= NX_VTY_XPATH_MAX) {
		vty->xpath[vty->xpath_depth][0] = '\0';
		return -ENAMETOOLONG;
	}
	vty->xpath_depth++;
	return 0;
}

void nx_vty_pop_xpath(struct nx_vty *vty)
{
	if (vty->xpath_depth <= 0)
		return;
	vty->xpath_depth--;
	vty->xpath[vty->xpath_depth][0] = '\0';
}

const char *nx_vty_cur_xpath(const struct nx_vty *vty)
{
	if (vty->xpath_depth <= 0)
		return "";
	return vty->xpath[vty->xpath_depth - 1];
}

/* Pops context entries until the stack fits `node` (see the invariant in vty.h). */
static void vty_fit_xpath(struct nx_vty *vty, int node)
{
	int depth = nx_cmd_node_depth(vty->tree, node);

	if (depth < 0)
		depth = 0;
	while (vty->xpath_depth > depth)
		nx_vty_pop_xpath(vty);
}

void nx_vty_prompt(const struct nx_vty *vty, char *buf, size_t size)
{
	const struct nx_cmd_node *node = NULL;
	const char *fmt;
	const char *host = vty->hostname;
	char hostbuf[256];
	struct nx_sbuf b;
	const char *p;

	if (size == 0)
		return;
	if (vty->tree)
		node = nx_cmd_node_get(vty->tree, vty->node);
	if (node && node->prompt)
		fmt = node->prompt;
	else
		fmt = vty->node == NX_NODE_VIEW ? "%s# " : "%s(config)# ";
	if (!host) {
		if (gethostname(hostbuf, sizeof(hostbuf)) == 0) {
			hostbuf[sizeof(hostbuf) - 1] = '\0';
			host = hostbuf;
		} else {
			host = "localhost";
		}
	}

	/* The node's format has one %s for the host; it is expanded here, not by printf, so a
	 * stray conversion in it can do no harm. */
	nx_sbuf_init(&b, buf, size);
	for (p = fmt; *p; p++) {
		char c[2] = { *p, '\0' };

		if (p[0] == '%' && p[1] == 's') {
			nx_sbuf_puts(&b, host);
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			nx_sbuf_puts(&b, "%");
			p++;
		} else {
			nx_sbuf_puts(&b, c);
		}
	}
}

static const char *status_text(int status)
{
	switch (status) {
	case NX_CMD_ERR_NO_MATCH:
		return "% Unknown command";
	case NX_CMD_ERR_AMBIGUOUS:
		return "% Ambiguous command";
	case NX_CMD_ERR_INCOMPLETE:
		return "% Command incomplete";
	case NX_CMD_ERR_TOO_LONG:
		return "% Line too long";
	default:
		return "% Command failed";
	}
}

int nx_vty_execute(struct nx_vty *vty, const char *line)
{
	struct nx_cmd_match m;
	struct nx_err err;
	int rc;

	nx_err_clear(&err);
	rc = nx_cmd_match(vty->tree, vty->node, line, &m, &err);
	if (rc != NX_CMD_SUCCESS) {
		nx_vty_out(vty, "%s\n", err.msg[0] ? err.msg : status_text(rc));
		return rc;
	}
	if (!m.cmd)
		return NX_CMD_SUCCESS; /* blank or comment */

	vty->node = m.node;
	vty_fit_xpath(vty, m.node);
	rc = m.cmd->fn(vty, m.argc, m.argv);
	/* The config file is all configuration: nothing it runs takes it out of that. */
	if (vty->kind == NX_VTY_FILE && vty->node == NX_NODE_VIEW)
		vty->node = NX_NODE_CONFIG;
	return rc;
}

/* --- requests (socket protocol) ---------------------------------------- */

int nx_vty_frame(const char *buf, size_t len)
{
	size_t lim = len < NX_VTY_REQUEST_MAX + 1 ? len : NX_VTY_REQUEST_MAX + 1;
	const char *nul = memchr(buf, '\0', lim);
	size_t n;
	size_t i;

	if (!nul)
		return len > NX_VTY_REQUEST_MAX ? -E2BIG : 0;
	n = (size_t)(nul - buf);
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)buf[i];

		if (ch == '\t')
			continue;
		if (i == 0 && (ch == NX_VTY_REQ_COMPLETE || ch == NX_VTY_REQ_DESCRIBE ||
			       ch == NX_VTY_REQ_PROMPT))
			continue;
		if (ch < 0x20 || ch == 0x7f)
			return -EINVAL;
	}
	return (int)n + 1;
}

static int vty_candidates(struct nx_vty *vty, const char *line, bool describe)
{
	struct nx_cmd_candidate *cand;
	size_t i;
	int n;

	cand = calloc(VTY_MAX_CANDIDATES, sizeof(*cand));
	if (!cand)
		return NX_CMD_WARNING;
	if (describe)
		n = nx_cmd_describe(vty->tree, vty->node, line, cand, VTY_MAX_CANDIDATES);
	else
		n = nx_cmd_complete(vty->tree, vty->node, line, cand, VTY_MAX_CANDIDATES);
	if (n < 0) {
		free(cand);
		return n == -E2BIG ? NX_CMD_ERR_TOO_LONG : NX_CMD_ERR_NO_MATCH;
	}
	for (i = 0; i < (size_t)n && i < VTY_MAX_CANDIDATES; i++) {
		cand[i].text[sizeof(cand[i].text) - 1] = '\0';
		cand[i].help[sizeof(cand[i].help) - 1] = '\0';
		if (describe)
			nx_vty_out(vty, "%s\t%s\n", cand[i].text, cand[i].help);
		else
			nx_vty_out(vty, "%s\n", cand[i].text);
	}
	free(cand);
	return NX_CMD_SUCCESS;
}

int nx_vty_request(struct nx_vty *vty, const char *req)
{
	char prompt[256];

	nx_sbuf_reset(&vty->out);
	switch (req[0]) {
	case NX_VTY_REQ_COMPLETE:
		return vty_candidates(vty, req + 1, false);
	case NX_VTY_REQ_DESCRIBE:
		return vty_candidates(vty, req + 1, true);
	case NX_VTY_REQ_PROMPT:
		nx_vty_prompt(vty, prompt, sizeof(prompt));
		nx_vty_out(vty, "%s", prompt);
		return NX_CMD_SUCCESS;
	default:
		return nx_vty_execute(vty, req);
	}
}

/* --- built-in commands --------------------------------------------------- */

static char vty_progname[64] = "nexodus";

NX_DEFUN(vty_configure, "configure [terminal]",
	 "Configuration from vty interface\nConfiguration terminal\n")
{
	vty->node = NX_NODE_CONFIG;
	vty_fit_xpath(vty, NX_NODE_CONFIG);
	return NX_CMD_SUCCESS;
}

NX_DEFUN(vty_end, "end", "End current mode and change to enable mode\n")
{
	if (vty->node != NX_NODE_VIEW)
		vty->node = vty->kind == NX_VTY_FILE ? NX_NODE_CONFIG : NX_NODE_VIEW;
	while (vty->xpath_depth > 0)
		nx_vty_pop_xpath(vty);
	return NX_CMD_SUCCESS;
}

static int vty_exit_node(struct nx_vty *vty)
{
	const struct nx_cmd_node *node;

	if (vty->node == NX_NODE_VIEW)
		return vty->kind == NX_VTY_FILE ? NX_CMD_SUCCESS : NX_CMD_CLOSE;
	if (vty->node == NX_NODE_CONFIG) {
		if (vty->kind != NX_VTY_FILE)
			vty->node = NX_NODE_VIEW;
	} else {
		node = nx_cmd_node_get(vty->tree, vty->node);
		vty->node = node ? node->parent : NX_NODE_CONFIG;
		if (vty->kind == NX_VTY_FILE && vty->node == NX_NODE_VIEW)
			vty->node = NX_NODE_CONFIG;
	}
	vty_fit_xpath(vty, vty->node);
	return NX_CMD_SUCCESS;
}

NX_DEFUN(vty_exit, "exit", "Exit current mode and down to previous mode\n")
{
	return vty_exit_node(vty);
}

NX_DEFUN(vty_quit, "quit", "Exit current mode and down to previous mode\n")
{
	return vty_exit_node(vty);
}

NX_DEFUN(vty_show_version, "show version", "Show running system information\nVersion\n")
{
	nx_vty_out(vty, "%s (%s) %s\n", vty_progname, PACKAGE_NAME, PACKAGE_VERSION);
	return NX_CMD_SUCCESS;
}

static void vty_list_one(const struct nx_cmd *cmd, void *arg)
{
	nx_vty_out(arg, "  %s\n", cmd->syntax);
}

NX_DEFUN(vty_list, "list", "Print command list\n")
{
	nx_cmd_foreach(vty->tree, vty->node, vty_list_one, vty);
	return NX_CMD_SUCCESS;
}

/* Installs cmd at node; one already there is fine (the call may be repeated). */
static int vty_install(struct nx_cmd_tree *tree, int node, const struct nx_cmd *cmd)
{
	struct nx_err err;
	int rc;

	nx_err_clear(&err);
	rc = nx_cmd_install(tree, node, cmd, &err);
	if (rc == -EEXIST)
		return 0;
	if (rc < 0)
		nx_err("vty: cannot install \"%s\": %s", cmd->syntax, err.msg);
	return rc;
}

int nx_vty_install_basic_commands(struct nx_cmd_tree *tree, const char *progname)
{
	static const struct nx_cmd *const every_node[] = { &vty_end, &vty_exit, &vty_quit,
							   &vty_list };
	size_t i;
	int id;
	int rc;

	if (progname && progname[0])
		nx_strlcpy(vty_progname, progname, sizeof(vty_progname));

	rc = vty_install(tree, NX_NODE_VIEW, &vty_configure);
	if (rc < 0)
		return rc;
	rc = vty_install(tree, NX_NODE_VIEW, &vty_show_version);
	if (rc < 0)
		return rc;
	for (id = 0; id < VTY_NODE_SCAN; id++) {
		if (!nx_cmd_node_get(tree, id))
			continue;
		for (i = 0; i < sizeof(every_node) / sizeof(every_node[0]); i++) {
			rc = vty_install(tree, id, every_node[i]);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* --- config file --------------------------------------------------------- */

/* The first line of what a failed command printed, without its "% ". */
static void vty_first_error_line(const struct nx_vty *vty, int status, char *buf, size_t size)
{
	const char *s = nx_sbuf_str(&vty->out);
	size_t n;

	while (*s == '\n')
		s++;
	if (!*s)
		s = status_text(status);
	if (s[0] == '%' && s[1] == ' ')
		s += 2;
	n = strcspn(s, "\n");
	if (n >= size)
		n = size - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
}

int nx_vty_read_config(const struct nx_cmd_tree *tree, void *daemon, const char *path,
		       int (*finish)(struct nx_vty *vty, struct nx_err *err), struct nx_err *err)
{
	char line[NX_CMD_LINE_MAX + 2]; /* a line, a CR, the NUL */
	char reason[NX_ERR_MAX];
	struct nx_vty vty;
	unsigned lineno = 0;
	bool eof = false;
	FILE *f;
	int rc = 0;

	f = fopen(path, "re");
	if (!f) {
		int e = errno;

		return nx_err_set(err, e, "%s: %s", path, strerror(e));
	}
	nx_vty_init(&vty, NX_VTY_FILE, tree, daemon, NX_NODE_CONFIG);
	vty.file = path;

	while (!eof) {
		bool too_long = false;
		bool nul = false;
		size_t len = 0;
		int status;
		int c;

		for (;;) {
			c = getc(f);
			if (c == EOF) {
				eof = true;
				break;
			}
			if (c == '\n')
				break;
			if (c == '\0')
				nul = true;
			if (len < sizeof(line) - 1)
				line[len++] = (char)c;
			else
				too_long = true;
		}
		if (ferror(f)) {
			int e = errno ? errno : EIO;

			rc = nx_err_set(err, e, "%s: %s", path, strerror(e));
			goto out;
		}
		if (eof && len == 0 && !too_long)
			break;
		lineno++;
		line[len] = '\0';
		while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
			line[--len] = '\0';
		if (nul) {
			rc = nx_err_set(err, EINVAL, "%s:%u: NUL byte in line", path, lineno);
			goto out;
		}
		if (too_long || len > NX_CMD_LINE_MAX) {
			rc = nx_err_set(err, EINVAL, "%s:%u: line too long", path, lineno);
			goto out;
		}

		vty.lineno = lineno;
		nx_sbuf_reset(&vty.out);
		status = nx_vty_execute(&vty, line);
		if (status == NX_CMD_CLOSE)
			break;
		if (status != NX_CMD_SUCCESS) {
			vty_first_error_line(&vty, status, reason, sizeof(reason));
			rc = nx_err_set(err, EINVAL, "%s:%u: %s", path, lineno, reason);
			goto out;
		}
	}
	rc = finish ? finish(&vty, err) : 0;
out:
	nx_vty_fini(&vty);
	fclose(f);
	return rc;
}

/* --- socket server ------------------------------------------------------- */

struct vty_client {
	struct vty_client *next;
	struct vty_client *prev;
	struct nx_vty_server *srv;
	int fd;
	struct nx_fdwatch w;
	struct nx_vty vty;

	char in[NX_VTY_REQUEST_MAX + 1]; /* at most one request and its NUL */
	size_t inlen;

	char *out; /* replies not yet sent: out[outoff..outlen) */
	size_t outlen;
	size_t outoff;
	size_t outcap;

	bool eof;     /* the client will send nothing more */
	bool closing; /* close once the queued replies are sent */
};

struct nx_vty_server {
	struct nx_loop *loop;
	const struct nx_cmd_tree *tree;
	void *daemon;
	char *hostname;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev; /* of the socket file we created */
	ino_t ino;
	bool bound;
	int fd;
	struct nx_fdwatch w;
	struct nx_timer retry; /* re-enables accept after a transient failure */
	struct vty_client *clients;
	unsigned nclients;
	bool full_logged;
};

static size_t client_pending(const struct vty_client *c)
{
	return c->outlen - c->outoff;
}

static void client_free(struct vty_client *c)
{
	struct nx_vty_server *srv = c->srv;

	if (c->prev)
		c->prev->next = c->next;
	else
		srv->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nclients--;
	if (srv->nclients < VTY_MAX_CLIENTS)
		srv->full_logged = false;

	nx_fdwatch_fini(&c->w);
	close(c->fd);
	nx_vty_fini(&c->vty);
	free(c->out);
	free(c);
}

static int client_queue(struct vty_client *c, const char *data, size_t len)
{
	size_t need;

	if (len == 0)
		return 0;
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	need = c->outlen + len;
	if (need > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 4096;
		char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p)
			return -ENOMEM;
		c->out = p;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, data, len);
	c->outlen += len;
	return 0;
}

/* Queues vty->out and the reply trailer: three NULs and the status byte. */
static int client_reply(struct vty_client *c, int status)
{
	char trailer[4] = { 0, 0, 0, (char)(unsigned char)status };
	int rc;

	rc = client_queue(c, nx_sbuf_str(&c->vty.out), nx_sbuf_len(&c->vty.out));
	if (rc == 0)
		rc = client_queue(c, trailer, sizeof(trailer));
	nx_sbuf_reset(&c->vty.out);
	return rc;
}

/* Sends what it can without blocking.  False when the client is gone (and freed). */
static bool client_flush(struct vty_client *c)
{
	while (client_pending(c) > 0) {
		ssize_t n = send(c->fd, c->out + c->outoff, client_pending(c),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return true;
			client_free(c); /* EPIPE, ECONNRESET: it went away mid-reply */
			return false;
		}
		c->outoff += (size_t)n;
	}
	c->outoff = c->outlen = 0;
	if (c->outcap > VTY_KEEP_OUTBUF) {
		free(c->out);
		c->out = NULL;
		c->outcap = 0;
	}
	return true;
}

/* Runs the complete requests that are buffered, sends replies, and watches for what the
 * client needs next.  May free the client. */
static void client_pump(struct vty_client *c)
{
	unsigned want = 0;
	int status;
	int n;

	for (;;) {
		if (!client_flush(c))
			return;
		if (c->closing || client_pending(c) > VTY_PENDING_CAP)
			break;
		n = nx_vty_frame(c->in, c->inlen);
		if (n == 0) {
			if (c->eof)
				c->closing = true;
			break;
		}
		if (n < 0) {
			nx_sbuf_reset(&c->vty.out);
			if (n == -E2BIG) {
				nx_vty_out(&c->vty, "%% Line too long\n");
				status = NX_CMD_ERR_TOO_LONG;
			} else {
				nx_vty_out(
					&c->vty,
					"%% Invalid request: control character in command line\n");
				status = NX_CMD_ERR_NO_MATCH;
			}
			c->closing = true;
			c->inlen = 0;
		} else {
			status = nx_vty_request(&c->vty, c->in);
			memmove(c->in, c->in + n, c->inlen - (size_t)n);
			c->inlen -= (size_t)n;
			if (status == NX_CMD_CLOSE)
				c->closing = true;
		}
		if (client_reply(c, status) < 0) {
			client_free(c);
			return;
		}
	}

	if (c->closing && client_pending(c) == 0) {
		client_free(c);
		return;
	}
	if (!c->closing && !c->eof && client_pending(c) <= VTY_PENDING_CAP &&
	    c->inlen < sizeof(c->in))
		want |= NX_READ;
	if (client_pending(c) > 0)
		want |= NX_WRITE;
	nx_fdwatch_disable(&c->w, (NX_READ | NX_WRITE) & ~want);
	if (nx_fdwatch_enable(&c->w, want) < 0)
		client_free(c);
}

static void client_cb(struct nx_fdwatch *w, int fd, unsigned what, void *arg)
{
	struct vty_client *c = arg;

	(void)w;
	if ((what & NX_READ) && !c->eof && c->inlen < sizeof(c->in)) {
		ssize_t n = recv(fd, c->in + c->inlen, sizeof(c->in) - c->inlen, MSG_DONTWAIT);

		if (n > 0) {
			c->inlen += (size_t)n;
		} else if (n == 0) {
			c->eof = true;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			client_free(c);
			return;
		}
	}
	client_pump(c);
}

static void client_new(struct nx_vty_server *srv, int fd)
{
	struct vty_client *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return;
	}
	c->srv = srv;
	c->fd = fd;
	nx_vty_init(&c->vty, NX_VTY_SOCKET, srv->tree, srv->daemon, NX_NODE_VIEW);
	c->vty.hostname = srv->hostname;
	if (nx_fdwatch_init(srv->loop, &c->w, fd, NX_READ, client_cb, c) < 0) {
		nx_vty_fini(&c->vty);
		close(fd);
		free(c);
		return;
	}
	c->next = srv->clients;
	if (srv->clients)
		srv->clients->prev = c;
	srv->clients = c;
	srv->nclients++;
}

static void server_retry_cb(struct nx_timer *t, void *arg)
{
	struct nx_vty_server *srv = arg;

	(void)t;
	nx_fdwatch_enable(&srv->w, NX_READ);
}

static void server_accept_cb(struct nx_fdwatch *w, int fd, unsigned what, void *arg)
{
	struct nx_vty_server *srv = arg;

	(void)w;
	(void)what;
	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* Out of descriptors or memory: pause rather than spin. */
			nx_warn("vty %s: accept: %s", srv->path, strerror(errno));
			nx_fdwatch_disable(&srv->w, NX_READ);
			nx_timer_arm(&srv->retry, VTY_ACCEPT_RETRY_MS);
			return;
		}
		if (srv->nclients >= VTY_MAX_CLIENTS) {
			close(cfd);
			if (!srv->full_logged)
				nx_warn("vty %s: %d sessions open, refusing more", srv->path,
					VTY_MAX_CLIENTS);
			srv->full_logged = true;
			continue;
		}
		client_new(srv, cfd);
	}
}

/* Binds fd at path, replacing a stale socket file but never a live one. */
static int server_bind(int fd, const struct sockaddr_un *sa, const char *path, struct nx_err *err)
{
	struct stat st;
	int probe;
	int rc;
	int e;

	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		return 0;
	e = errno;
	if (e != EADDRINUSE)
		return nx_err_set(err, e, "cannot bind vty socket %s: %s", path, strerror(e));

	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
		return nx_err_set(err, EEXIST, "%s exists and is not a socket", path);

	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (probe < 0) {
		e = errno;
		return nx_err_set(err, e, "socket: %s", strerror(e));
	}
	rc = connect(probe, (const struct sockaddr *)sa, sizeof(*sa));
	e = errno;
	close(probe);
	if (rc == 0 || e == EAGAIN || e == EINPROGRESS)
		return nx_err_set(err, EADDRINUSE, "another daemon is listening on %s", path);
	if (e != ECONNREFUSED && e != ENOENT)
		return nx_err_set(err, e, "cannot check the existing socket %s: %s", path,
				  strerror(e));

	/* Nobody answers: a socket left behind by a daemon that died. */
	if (unlink(path) < 0 && errno != ENOENT) {
		e = errno;
		return nx_err_set(err, e, "cannot remove stale socket %s: %s", path, strerror(e));
	}
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		e = errno;
		return nx_err_set(err, e, "cannot bind vty socket %s: %s", path, strerror(e));
	}
	return 0;
}

struct nx_vty_server *nx_vty_server_new(struct nx_loop *loop, const char *path,
					const struct nx_cmd_tree *tree, void *daemon,
					const char *hostname, struct nx_err *err)
{
	struct nx_vty_server *srv = NULL;
	struct sockaddr_un sa;
	struct group *gr;
	struct stat st;
	int code = 0;
	int e;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (!path || !path[0] || strlen(path) >= sizeof(sa.sun_path)) {
		code = nx_err_set(err, ENAMETOOLONG, "vty socket path is empty or too long: %s",
				  path ? path : "(null)");
		goto fail;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);

	srv = calloc(1, sizeof(*srv));
	if (!srv) {
		code = nx_err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	srv->fd = -1;
	srv->loop = loop;
	srv->tree = tree;
	srv->daemon = daemon;
	nx_strlcpy(srv->path, path, sizeof(srv->path));
	srv->hostname = hostname ? strdup(hostname) : NULL;
	if (hostname && !srv->hostname) {
		code = nx_err_set(err, ENOMEM, "out of memory");
		goto fail;
	}

	srv->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->fd < 0) {
		e = errno;
		code = nx_err_set(err, e, "socket: %s", strerror(e));
		goto fail;
	}
	code = server_bind(srv->fd, &sa, path, err);
	if (code < 0)
		goto fail;
	if (lstat(path, &st) < 0) {
		e = errno;
		code = nx_err_set(err, e, "%s: %s", path, strerror(e));
		goto fail;
	}
	srv->dev = st.st_dev;
	srv->ino = st.st_ino;
	srv->bound = true;

	if (chmod(path, 0660) < 0) {
		e = errno;
		code = nx_err_set(err, e, "cannot set the mode of %s: %s", path, strerror(e));
		goto fail;
	}
	gr = getgrnam(VTY_SOCKET_GROUP);
	if (gr && chown(path, (uid_t)-1, gr->gr_gid) < 0)
		nx_warn("vty %s: cannot give the socket to group %s: %s", path, VTY_SOCKET_GROUP,
			strerror(errno));

	if (listen(srv->fd, VTY_LISTEN_BACKLOG) < 0) {
		e = errno;
		code = nx_err_set(err, e, "listen on %s: %s", path, strerror(e));
		goto fail;
	}
	nx_timer_init(loop, &srv->retry, server_retry_cb, srv);
	e = nx_fdwatch_init(loop, &srv->w, srv->fd, NX_READ, server_accept_cb, srv);
	if (e < 0) {
		code = nx_err_set(err, -e, "cannot watch %s: %s", path, strerror(-e));
		goto fail;
	}
	return srv;

fail:
	nx_vty_server_free(srv);
	errno = code < 0 ? -code : EINVAL;
	return NULL;
}

void nx_vty_server_free(struct nx_vty_server *srv)
{
	struct stat st;

	if (!srv)
		return;
	while (srv->clients)
		client_free(srv->clients);
	nx_fdwatch_fini(&srv->w);
	nx_timer_fini(&srv->retry);
	/* Remove the socket file only if it is still ours, not a successor's. */
	if (srv->bound && lstat(srv->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == srv->dev && st.st_ino == srv->ino)
		unlink(srv->path);
	if (srv->fd >= 0)
		close(srv->fd);
	free(srv->hostname);
	free(srv);
}
