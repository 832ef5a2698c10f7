/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexsh: the operator's shell for the Nexodus daemons, as vtysh is for FRR.  It holds no
 * command knowledge of its own: every line, every '?' and every TAB is a request to the
 * daemon's VTY socket, so the shell always matches the daemon it talks to.  Scripts use -c
 * (or a pipe on stdin) and get an exit status that says whether every command succeeded.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "lib/command.h"
#include "lib/paths.h"
#include "lib/strutil.h"
#include "lib/vty.h"

#define EXIT_CMD_FAILED 1
#define EXIT_NO_DAEMON	2
#define MAX_COMMANDS	256
#define REPLY_MAX	(NX_VTY_OUTPUT_MAX + 4096)

/* One connection to a daemon's VTY socket. */
struct conn {
	int fd;
	const char *daemon;
	const char *path;
	char *buf; /* bytes received and not yet consumed */
	size_t len;
	size_t cap;
};

/* A reply: the output (NUL-terminated, owned by the caller) and its status byte. */
struct reply {
	char *out;
	size_t len;
	int status;
};

static struct conn g_conn = { .fd = -1 };
static volatile sig_atomic_t g_sigint;

static void usage(FILE *fp)
{
	fprintf(fp,
		"Usage: nexsh [OPTION]...\n"
		"The Nexodus shell: runs commands on a Nexodus daemon through its VTY socket.\n"
		"\n"
		"  -c, --command CMD     run CMD and exit (repeatable; all run in one session)\n"
		"  -d, --daemon DAEMON   nexd (default) or nexsrv\n"
		"  -N, --pathspace NAME  talk to the instance started with -N NAME\n"
		"      --vty-socket PATH connect to PATH instead of the default socket\n"
		"  -h, --help            show this help and exit\n"
		"      --version         show the version and exit\n"
		"\n"
		"Without -c, commands are read from the terminal (with '?' help and TAB\n"
		"completion) or, when stdin is not a terminal, one per line from stdin.\n"
		"Exit status: 0 when every command succeeded, 1 when one failed, 2 when the\n"
		"daemon could not be reached.\n");
}

static int conn_open(struct conn *c, const char *daemon, const char *path)
{
	struct sockaddr_un sa;
	size_t n = strlen(path);
	int fd;

	c->daemon = daemon;
	c->path = path;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (n >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, n + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	c->fd = fd;
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

static int send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends one request: an optional kind byte, the line, the NUL. */
static int conn_send(struct conn *c, char kind, const char *line)
{
	int rc = 0;

	if (kind)
		rc = send_all(c->fd, &kind, 1);
	if (rc == 0)
		rc = send_all(c->fd, line, strlen(line) + 1);
	return rc;
}

/* Where the reply trailer (three NULs, then the status byte) starts, or -1. */
static long find_trailer(const char *buf, size_t len, size_t from)
{
	size_t i;

	for (i = from; i + 4 <= len; i++)
		if (buf[i] == '\0' && buf[i + 1] == '\0' && buf[i + 2] == '\0')
			return (long)i;
	return -1;
}

/* Reads one reply.  0, or a negative errno (-ECONNRESET when the daemon hung up). */
static int conn_recv(struct conn *c, struct reply *r)
{
	size_t scanned = 0;
	long t;

	memset(r, 0, sizeof(*r));
	for (;;) {
		ssize_t n;

		t = find_trailer(c->buf, c->len, scanned);
		if (t >= 0)
			break;
		scanned = c->len >= 3 ? c->len - 3 : 0;
		if (c->len >= REPLY_MAX)
			return -EMSGSIZE;
		if (c->cap - c->len < 4096) {
			size_t cap = c->cap ? c->cap * 2 : 16384;
			char *p = realloc(c->buf, cap);

			if (!p)
				return -ENOMEM;
			c->buf = p;
			c->cap = cap;
		}
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		c->len += (size_t)n;
	}

	r->out = malloc((size_t)t + 1);
	if (!r->out)
		return -ENOMEM;
	memcpy(r->out, c->buf, (size_t)t);
	r->out[t] = '\0';
	r->len = (size_t)t;
	r->status = (unsigned char)c->buf[t + 3];
	c->len -= (size_t)t + 4;
	memmove(c->buf, c->buf + t + 4, c->len);
	return 0;
}

/* One round trip.  On failure prints why and returns a negative errno. */
static int conn_request(struct conn *c, char kind, const char *line, struct reply *r)
{
	int rc;

	memset(r, 0, sizeof(*r));
	if (c->fd < 0)
		return -ENOTCONN;
	rc = conn_send(c, kind, line);
	if (rc == 0)
		rc = conn_recv(c, r);
	if (rc < 0) {
		fprintf(stderr, "nexsh: lost the connection to %s at %s: %s\n", c->daemon, c->path,
			rc == -ECONNRESET ? "closed by the daemon" : strerror(-rc));
		conn_close(c);
	}
	return rc;
}

/* Runs a command line and prints its output: stdout on success, stderr otherwise.
 * Returns the status byte, or -1 when the connection is gone. */
static int run_command(struct conn *c, const char *line, bool all_to_stdout)
{
	struct reply r;
	FILE *fp;

	if (conn_request(c, 0, line, &r) < 0)
		return -1;
	fp = (r.status == NX_CMD_SUCCESS || r.status == NX_CMD_CLOSE || all_to_stdout) ? stdout
										       : stderr;
	if (fp == stderr)
		fflush(stdout);
	fwrite(r.out, 1, r.len, fp);
	fflush(fp);
	free(r.out);
	return r.status;
}

/* Folds one command's status into the exit status; true to go on. */
static bool account(int status, int *exit_code)
{
	if (status < 0) {
		*exit_code = EXIT_NO_DAEMON;
		return false;
	}
	if (status == NX_CMD_CLOSE)
		return false;
	if (status != NX_CMD_SUCCESS)
		*exit_code = EXIT_CMD_FAILED;
	return true;
}

static int run_commands(struct conn *c, char **cmds, int ncmds)
{
	int exit_code = 0;
	int i;

	for (i = 0; i < ncmds; i++)
		if (!account(run_command(c, cmds[i], false), &exit_code))
			break;
	return exit_code;
}

/* Reads one line of at most size - 1 bytes (without its newline) from fp.  Returns false at
 * the end of input.  A longer line is consumed whole and flagged, as is one holding a NUL. */
static bool read_line(FILE *fp, char *buf, size_t size, bool *too_long, bool *nul)
{
	size_t len = 0;
	int ch;

	*too_long = false;
	*nul = false;
	while ((ch = getc(fp)) != EOF && ch != '\n') {
		if (ch == '\0')
			*nul = true;
		if (len < size - 1)
			buf[len++] = (char)ch;
		else
			*too_long = true;
	}
	buf[len] = '\0';
	return ch != EOF || len > 0 || *too_long;
}

/* Commands from a pipe or a file, one per line. */
static int run_stdin(struct conn *c)
{
	char line[NX_CMD_LINE_MAX + 2];
	unsigned lineno = 0;
	int exit_code = 0;
	bool too_long;
	bool nul;

	while (read_line(stdin, line, sizeof(line), &too_long, &nul)) {
		size_t len = strlen(line);

		lineno++;
		while (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (too_long || len > NX_CMD_LINE_MAX) {
			fprintf(stderr, "nexsh: stdin:%u: line too long\n", lineno);
			exit_code = EXIT_CMD_FAILED;
			continue;
		}
		if (nul) {
			fprintf(stderr, "nexsh: stdin:%u: NUL byte in line\n", lineno);
			exit_code = EXIT_CMD_FAILED;
			continue;
		}
		if (len == 0)
			continue;
		if (!account(run_command(c, line, false), &exit_code))
			break;
	}
	return exit_code;
}

/* --- interactive --------------------------------------------------------- */

/* Candidates from the last COMPLETE request, handed to readline one by one. */
static char **g_matches;
static size_t g_nmatches;

static void free_matches(void)
{
	size_t i;

	for (i = 0; i < g_nmatches; i++)
		free(g_matches[i]);
	free(g_matches);
	g_matches = NULL;
	g_nmatches = 0;
}

/* The line before the cursor, for '?' and TAB. */
static char *line_to_point(void)
{
	int point = rl_point;

	if (point < 0 || point > rl_end)
		point = rl_end;
	return strndup(rl_line_buffer, (size_t)point);
}

static void fetch_matches(void)
{
	struct reply r;
	char *line;
	char *p;
	char *nl;

	free_matches();
	line = line_to_point();
	if (!line)
		return;
	if (conn_request(&g_conn, NX_VTY_REQ_COMPLETE, line, &r) < 0) {
		free(line);
		return;
	}
	free(line);
	if (r.status == NX_CMD_SUCCESS) {
		for (p = r.out; *p; p = nl + 1) {
			char **m;

			nl = strchr(p, '\n');
			if (!nl)
				break;
			*nl = '\0';
			if (!*p)
				continue;
			m = realloc(g_matches, (g_nmatches + 1) * sizeof(*m));
			if (!m)
				break;
			g_matches = m;
			g_matches[g_nmatches] = strdup(p);
			if (g_matches[g_nmatches])
				g_nmatches++;
		}
	}
	free(r.out);
}

static char *match_generator(const char *text, int state)
{
	static size_t next;
	size_t tlen = strlen(text);

	if (state == 0) {
		fetch_matches();
		next = 0;
	}
	while (next < g_nmatches) {
		const char *m = g_matches[next++];

		if (strncmp(m, text, tlen) == 0)
			return strdup(m);
	}
	return NULL;
}

static char **nexsh_completion(const char *text, int start, int end)
{
	(void)start;
	(void)end;
	rl_attempted_completion_over = 1; /* never fall back to file names */
	return rl_completion_matches(text, match_generator);
}

/* '?': what may come next, in FRR's layout, then the line again as it was. */
static int describe_key(int count, int key)
{
	struct reply r;
	size_t width = 0;
	char *line;
	char *p;
	char *nl;

	(void)count;
	(void)key;
	line = line_to_point();
	if (!line)
		return 0;
	rl_crlf();
	if (conn_request(&g_conn, NX_VTY_REQ_DESCRIBE, line, &r) < 0) {
		free(line);
		rl_done = 1;
		return 0;
	}
	free(line);

	for (p = r.out; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		size_t w = strcspn(p, "\t\n");

		if (w > width)
			width = w;
	}
	if (r.status != NX_CMD_SUCCESS || r.len == 0) {
		printf("%% There is no matched command.\n");
	} else {
		for (p = r.out; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
			size_t w = strcspn(p, "\t\n");
			const char *help = p[w] == '\t' ? p + w + 1 : "";

			*nl = '\0';
			printf("  %-*.*s  %s\n", (int)width, (int)w, p, help);
		}
	}
	fflush(stdout);
	free(r.out);
	rl_on_new_line();
	rl_redisplay();
	return 0;
}

static void on_sigint(int signo)
{
	(void)signo;
	g_sigint = 1;
}

/* Ctrl-C: drop the line being typed and start a new one. */
static int sigint_hook(void)
{
	if (!g_sigint)
		return 0;
	g_sigint = 0;
	rl_replace_line("", 0);
	rl_point = rl_end = 0;
	rl_crlf();
	rl_on_new_line();
	rl_redisplay();
	return 0;
}

static int fetch_prompt(struct conn *c, char *buf, size_t size)
{
	struct reply r;

	if (conn_request(c, NX_VTY_REQ_PROMPT, "", &r) < 0)
		return -1;
	if (r.status == NX_CMD_SUCCESS && r.len > 0)
		nx_str_printable(buf, size, r.out);
	else
		snprintf(buf, size, "%s# ", c->daemon);
	free(r.out);
	return 0;
}

/* Ends the line after Ctrl-D, unless readline did (8.1 and later do when bracketed paste is
 * on). */
static void eof_newline(void)
{
	const char *bp = rl_variable_value("enable-bracketed-paste");

	if (rl_readline_version >= 0x0801 && bp && strcmp(bp, "on") == 0)
		return;
	printf("\n");
}

static int run_interactive(struct conn *c)
{
	struct sigaction sa;
	char prompt[256];

	rl_readline_name = "nexsh";
	rl_catch_signals = 0;
	rl_signal_event_hook = sigint_hook;
	rl_attempted_completion_function = nexsh_completion;
	rl_basic_word_break_characters = " \t\n";
	rl_completer_word_break_characters = " \t\n";
	rl_bind_key('?', describe_key);
	using_history();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: readline must see EINTR */

	for (;;) {
		char *line;
		char *s;
		int status;

		if (fetch_prompt(c, prompt, sizeof(prompt)) < 0)
			return EXIT_NO_DAEMON;
		line = readline(prompt);
		if (!line) { /* Ctrl-D */
			eof_newline();
			break;
		}
		s = nx_str_trim(line);
		if (!*s) {
			free(line);
			continue;
		}
		add_history(s);
		status = run_command(c, s, true);
		free(line);
		if (status < 0)
			return EXIT_NO_DAEMON;
		if (status == NX_CMD_CLOSE)
			break;
	}
	return 0; /* a failed command was shown; leaving the shell is not a failure */
}

enum {
	OPT_VTY_SOCKET = 256,
	OPT_VERSION,
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "command", required_argument, NULL, 'c' },
		{ "daemon", required_argument, NULL, 'd' },
		{ "pathspace", required_argument, NULL, 'N' },
		{ "vty-socket", required_argument, NULL, OPT_VTY_SOCKET },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	char *cmds[MAX_COMMANDS];
	int ncmds = 0;
	const char *daemon = "nexd";
	const char *pathspace = NULL;
	const char *socket_path = NULL;
	char pathbuf[sizeof(((struct sockaddr_un *)0)->sun_path) + 64];
	struct nx_err err;
	int opt;
	int rc;

	while ((opt = getopt_long(argc, argv, "c:d:N:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (ncmds >= MAX_COMMANDS) {
				fprintf(stderr, "nexsh: at most %d -c commands\n", MAX_COMMANDS);
				return EXIT_CMD_FAILED;
			}
			if (strlen(optarg) > NX_CMD_LINE_MAX) {
				fprintf(stderr, "nexsh: command longer than %d bytes\n",
					NX_CMD_LINE_MAX);
				return EXIT_CMD_FAILED;
			}
			cmds[ncmds++] = optarg;
			break;
		case 'd':
			if (strcmp(optarg, "nexd") != 0 && strcmp(optarg, "nexsrv") != 0) {
				fprintf(stderr,
					"nexsh: unknown daemon \"%s\": expected nexd or nexsrv\n",
					optarg);
				return EXIT_CMD_FAILED;
			}
			daemon = optarg;
			break;
		case 'N':
			if (nx_pathspace_check(optarg, &err) < 0) {
				fprintf(stderr, "nexsh: %s\n", err.msg);
				return EXIT_CMD_FAILED;
			}
			pathspace = optarg;
			break;
		case OPT_VTY_SOCKET:
			socket_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("nexsh (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_CMD_FAILED;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "nexsh: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return EXIT_CMD_FAILED;
	}

	if (!socket_path) {
		rc = nx_path_vty(pathbuf, sizeof(pathbuf), daemon, pathspace);
		if (rc < 0) {
			fprintf(stderr, "nexsh: cannot build the socket path: %s\n", strerror(-rc));
			return EXIT_NO_DAEMON;
		}
		socket_path = pathbuf;
	}

	signal(SIGPIPE, SIG_IGN);
	if (conn_open(&g_conn, daemon, socket_path) < 0) {
		fprintf(stderr, "nexsh: cannot connect to %s at %s: %s\n", daemon, socket_path,
			strerror(errno));
		return EXIT_NO_DAEMON;
	}

	if (ncmds > 0)
		rc = run_commands(&g_conn, cmds, ncmds);
	else if (isatty(STDIN_FILENO))
		rc = run_interactive(&g_conn);
	else
		rc = run_stdin(&g_conn);

	free_matches();
	conn_close(&g_conn);
	return rc;
}
