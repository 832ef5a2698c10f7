/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lib/vty: session node and context transitions, prompts, the built-in
 * commands, request kinds and framing, output truncation, config file reading (good file,
 * failing line, missing file, over-long line, NUL byte), and the socket server over a real
 * unix socket: replies and status bytes, pipelined requests, '?' and TAB requests, a client
 * sending a huge request without NUL, one vanishing mid-reply, the session limit, stale and
 * live sockets.  Socket clients run in a thread; the loop runs in the test's thread.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/command.h"
#include "lib/loop.h"
#include "lib/vty.h"

#define NODE_NEXODUS NX_NODE_DAEMON
#define XPATH	     "/m:nexodus"

static const struct nx_cmd_node nexodus_node = {
	.id = NODE_NEXODUS,
	.name = "nexodus",
	.prompt = "%s(config-nexodus)# ",
	.parent = NX_NODE_CONFIG,
};

/* What the handlers saw: the test's "daemon". */
struct testd {
	char log[1024];
	unsigned finish_calls;
	int finish_rc;
	int finish_node;
};

static void testd_log(struct nx_vty *vty, const char *what)
{
	struct testd *d = vty->daemon;

	if (d)
		nx_strlcat(d->log, what, sizeof(d->log));
}

NX_DEFUN(cmd_nexodus, "nexodus", "Nexodus agent configuration\n")
{
	vty->node = NODE_NEXODUS;
	if (nx_vty_push_xpath(vty, XPATH) < 0) {
		nx_vty_out(vty, "%% Too deeply nested\n");
		return NX_CMD_WARNING;
	}
	testd_log(vty, "nexodus;");
	return NX_CMD_SUCCESS;
}

NX_DEFUN(cmd_service_url, "[no] service-url URL", "Negate a command\nController URL\nURL\n")
{
	nx_vty_out(vty, "service-url=%s no=%d xpath=%s depth=%d\n",
		   nx_cmd_arg_get(argc, argv, "URL"), nx_cmd_arg_has(argc, argv, "no"),
		   nx_vty_cur_xpath(vty), vty->xpath_depth);
	testd_log(vty, "service-url;");
	return NX_CMD_SUCCESS;
}

NX_DEFUN(cmd_debug, "debug nexodus <peers|nat>$what", "Debugging\nNexodus\nPeers\nNAT\n")
{
	nx_vty_out(vty, "debug %s depth=%d\n", nx_cmd_arg_get(argc, argv, "what"),
		   vty->xpath_depth);
	testd_log(vty, "debug;");
	return NX_CMD_SUCCESS;
}

NX_DEFUN(cmd_fail, "fail", "Always refuses\n")
{
	nx_vty_out(vty, "%% Refused: fail was asked\nsecond line\n");
	return NX_CMD_WARNING;
}

NX_DEFUN(cmd_echo, "echo LINE", "Print text\nText\n")
{
	nx_vty_out(vty, "%s\n", nx_cmd_arg_get(argc, argv, "LINE"));
	return NX_CMD_SUCCESS;
}

/* "big N": N lines of 1 KiB. */
NX_DEFUN(cmd_big, "big (1-65535)$kib", "Print a lot\nKiB to print\n")
{
	static char line[1024];
	unsigned long n = strtoul(nx_cmd_arg_get(argc, argv, "kib"), NULL, 10);
	unsigned long i;

	if (!line[0])
		memset(line, 'x', sizeof(line) - 1);
	for (i = 0; i < n; i++)
		nx_vty_out(vty, "%s\n", line);
	return NX_CMD_SUCCESS;
}

static struct nx_cmd_tree *make_tree(void)
{
	struct nx_cmd_tree *tree = nx_cmd_tree_new();
	struct nx_err err;

	assert_non_null(tree);
	assert_int_equal(nx_cmd_node_install(tree, &nexodus_node), 0);
	err.msg[0] = '\0';
	assert_int_equal(nx_cmd_install(tree, NX_NODE_CONFIG, &cmd_nexodus, &err), 0);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_CONFIG, &cmd_debug, &err), 0);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_CONFIG, &cmd_fail, &err), 0);
	assert_int_equal(nx_cmd_install(tree, NODE_NEXODUS, &cmd_service_url, &err), 0);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &cmd_echo, &err), 0);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &cmd_big, &err), 0);
	assert_int_equal(nx_cmd_install(tree, NX_NODE_VIEW, &cmd_fail, &err), 0);
	assert_int_equal(nx_vty_install_basic_commands(tree, "testd"), 0);
	return tree;
}

static int setup_tree(void **state)
{
	*state = make_tree();
	return 0;
}

static int teardown_tree(void **state)
{
	nx_cmd_tree_free(*state);
	return 0;
}

/* Runs a line in a buffer session, returning its status; the output is in vty->out. */
static int run(struct nx_vty *vty, const char *line)
{
	nx_sbuf_reset(&vty->out);
	return nx_vty_execute(vty, line);
}

static const char *out(const struct nx_vty *vty)
{
	return nx_sbuf_str(&vty->out);
}

/* --- sessions ------------------------------------------------------------ */

static void test_session_transitions(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct nx_vty vty;

	nx_vty_init(&vty, NX_VTY_BUFFER, tree, NULL, NX_NODE_VIEW);
	assert_int_equal(vty.node, NX_NODE_VIEW);
	assert_string_equal(nx_vty_cur_xpath(&vty), "");

	assert_int_equal(run(&vty, "configure terminal"), NX_CMD_SUCCESS);
	assert_int_equal(vty.node, NX_NODE_CONFIG);
	assert_int_equal(run(&vty, "nexodus"), NX_CMD_SUCCESS);
	assert_int_equal(vty.node, NODE_NEXODUS);
	assert_int_equal(vty.xpath_depth, 1);
	assert_string_equal(nx_vty_cur_xpath(&vty), XPATH);

	assert_int_equal(run(&vty, "service-url https://ctl.example"), NX_CMD_SUCCESS);
	assert_string_equal(out(&vty),
			    "service-url=https://ctl.example no=0 xpath=/m:nexodus depth=1\n");
	assert_int_equal(run(&vty, "no service-url x"), NX_CMD_SUCCESS);
	assert_non_null(strstr(out(&vty), "no=1"));

	/* exit: sub-node -> parent, context popped */
	assert_int_equal(run(&vty, "exit"), NX_CMD_SUCCESS);
	assert_int_equal(vty.node, NX_NODE_CONFIG);
	assert_int_equal(vty.xpath_depth, 0);
	assert_string_equal(nx_vty_cur_xpath(&vty), "");

	/* end from a sub-node goes to VIEW and clears the context */
	assert_int_equal(run(&vty, "nexodus"), NX_CMD_SUCCESS);
	assert_int_equal(run(&vty, "end"), NX_CMD_SUCCESS);
	assert_int_equal(vty.node, NX_NODE_VIEW);
	assert_int_equal(vty.xpath_depth, 0);

	/* abbreviated; a config command typed in a sub-node walks up and pops first */
	assert_int_equal(run(&vty, "conf t"), NX_CMD_SUCCESS);
	assert_int_equal(run(&vty, "nexodus"), NX_CMD_SUCCESS);
	assert_int_equal(run(&vty, "debug nexodus peers"), NX_CMD_SUCCESS);
	assert_string_equal(out(&vty), "debug peers depth=0\n");
	assert_int_equal(vty.node, NX_NODE_CONFIG);
	assert_int_equal(vty.xpath_depth, 0);

	/* "configure" alone; a VIEW command from a sub-node keeps the node */
	assert_int_equal(run(&vty, "nexodus"), NX_CMD_SUCCESS);
	assert_int_equal(run(&vty, "show version"), NX_CMD_SUCCESS);
	assert_int_equal(vty.node, NODE_NEXODUS);
	assert_int_equal(vty.xpath_depth, 1);

	/* quit is exit; CONFIG -> VIEW; VIEW -> the session closes */
	assert_int_equal(run(&vty, "quit"), NX_CMD_SUCCESS);
	assert_int_equal(vty.node, NX_NODE_CONFIG);
	assert_int_equal(run(&vty, "exit"), NX_CMD_SUCCESS);
	assert_int_equal(vty.node, NX_NODE_VIEW);
	assert_int_equal(run(&vty, "configure"), NX_CMD_SUCCESS);
	assert_int_equal(vty.node, NX_NODE_CONFIG);
	assert_int_equal(run(&vty, "end"), NX_CMD_SUCCESS);
	assert_int_equal(run(&vty, "end"), NX_CMD_SUCCESS); /* harmless at VIEW */
	assert_int_equal(vty.node, NX_NODE_VIEW);
	assert_int_equal(run(&vty, "exit"), NX_CMD_CLOSE);

	nx_vty_fini(&vty);
}

static void test_session_errors(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct nx_vty vty;

	nx_vty_init(&vty, NX_VTY_BUFFER, tree, NULL, NX_NODE_VIEW);
	assert_int_equal(run(&vty, "bogus command"), NX_CMD_ERR_NO_MATCH);
	assert_non_null(strstr(out(&vty), "% Unknown command: bogus command"));
	assert_true(nx_str_endswith(out(&vty), "\n"));

	assert_int_equal(run(&vty, "fail"), NX_CMD_WARNING);
	assert_string_equal(out(&vty), "% Refused: fail was asked\nsecond line\n");

	assert_int_equal(run(&vty, "show"), NX_CMD_ERR_INCOMPLETE);
	assert_non_null(strstr(out(&vty), "% Command incomplete"));

	/* blank and comment lines do nothing */
	assert_int_equal(run(&vty, ""), NX_CMD_SUCCESS);
	assert_int_equal(run(&vty, "   "), NX_CMD_SUCCESS);
	assert_int_equal(run(&vty, "! a comment"), NX_CMD_SUCCESS);
	assert_string_equal(out(&vty), "");
	assert_int_equal(vty.node, NX_NODE_VIEW);

	/* a sub-node command is unknown outside it */
	assert_int_equal(run(&vty, "service-url x"), NX_CMD_ERR_NO_MATCH);

	/* output accumulates between resets */
	nx_sbuf_reset(&vty.out);
	nx_vty_execute(&vty, "echo a");
	nx_vty_execute(&vty, "echo b c");
	assert_string_equal(out(&vty), "a\nb c\n");
	nx_vty_fini(&vty);
}

static void test_prompts(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct nx_vty vty;
	char buf[64];
	char tiny[6];

	nx_vty_init(&vty, NX_VTY_BUFFER, tree, NULL, NX_NODE_VIEW);
	vty.hostname = "nexd";
	nx_vty_prompt(&vty, buf, sizeof(buf));
	assert_string_equal(buf, "nexd# ");
	run(&vty, "configure terminal");
	nx_vty_prompt(&vty, buf, sizeof(buf));
	assert_string_equal(buf, "nexd(config)# ");
	run(&vty, "nexodus");
	nx_vty_prompt(&vty, buf, sizeof(buf));
	assert_string_equal(buf, "nexd(config-nexodus)# ");

	/* cut to fit, still terminated */
	nx_vty_prompt(&vty, tiny, sizeof(tiny));
	assert_string_equal(tiny, "nexd(");

	/* a host name with a '%' is printed as it is */
	vty.hostname = "a%sb%n";
	run(&vty, "end");
	nx_vty_prompt(&vty, buf, sizeof(buf));
	assert_string_equal(buf, "a%sb%n# ");

	/* no host name: the system's */
	vty.hostname = NULL;
	nx_vty_prompt(&vty, buf, sizeof(buf));
	assert_true(strlen(buf) > 2);
	assert_true(nx_str_endswith(buf, "# "));
	nx_vty_fini(&vty);
}

static void test_xpath_stack(void **state)
{
	struct nx_vty vty;
	char longx[NX_VTY_XPATH_MAX + 8];
	int i;

	(void)state;
	nx_vty_init(&vty, NX_VTY_BUFFER, NULL, NULL, NX_NODE_CONFIG);
	nx_vty_pop_xpath(&vty); /* harmless when empty */
	assert_int_equal(vty.xpath_depth, 0);
	for (i = 0; i < NX_VTY_XPATH_DEPTH; i++) {
		char x[32];

		snprintf(x, sizeof(x), "/m:level%d", i);
		assert_int_equal(nx_vty_push_xpath(&vty, x), 0);
		assert_string_equal(nx_vty_cur_xpath(&vty), x);
	}
	assert_int_equal(nx_vty_push_xpath(&vty, "/m:one-too-many"), -E2BIG);
	assert_int_equal(vty.xpath_depth, NX_VTY_XPATH_DEPTH);
	nx_vty_pop_xpath(&vty);
	assert_string_equal(nx_vty_cur_xpath(&vty), "/m:level6");

	memset(longx, 'a', sizeof(longx) - 1);
	longx[sizeof(longx) - 1] = '\0';
	assert_true(nx_vty_push_xpath(&vty, longx) < 0);
	assert_string_equal(nx_vty_cur_xpath(&vty), "/m:level6");
	nx_vty_fini(&vty);
}

static void test_basic_commands(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct nx_vty vty;

	/* a second call is harmless (every command is already there) */
	assert_int_equal(nx_vty_install_basic_commands(tree, "testd"), 0);

	nx_vty_init(&vty, NX_VTY_BUFFER, tree, NULL, NX_NODE_VIEW);
	assert_int_equal(run(&vty, "show version"), NX_CMD_SUCCESS);
	assert_non_null(strstr(out(&vty), "testd"));
	assert_non_null(strstr(out(&vty), PACKAGE_VERSION));

	assert_int_equal(run(&vty, "list"), NX_CMD_SUCCESS);
	assert_non_null(strstr(out(&vty), "  configure [terminal]\n"));
	assert_non_null(strstr(out(&vty), "  show version\n"));
	assert_null(strstr(out(&vty), "service-url"));

	run(&vty, "configure terminal");
	run(&vty, "nexodus");
	assert_int_equal(run(&vty, "list"), NX_CMD_SUCCESS);
	assert_non_null(strstr(out(&vty), "  [no] service-url URL\n"));
	assert_non_null(strstr(out(&vty), "  exit\n"));
	assert_non_null(strstr(out(&vty), "  end\n"));
	assert_int_equal(vty.node, NODE_NEXODUS); /* list stays where it is */
	nx_vty_fini(&vty);

	/* a FILE session never leaves CONFIG */
	nx_vty_init(&vty, NX_VTY_FILE, tree, NULL, NX_NODE_CONFIG);
	assert_int_equal(run(&vty, "nexodus"), NX_CMD_SUCCESS);
	assert_int_equal(run(&vty, "end"), NX_CMD_SUCCESS);
	assert_int_equal(vty.node, NX_NODE_CONFIG);
	assert_int_equal(vty.xpath_depth, 0);
	assert_int_equal(run(&vty, "exit"), NX_CMD_SUCCESS);
	assert_int_equal(vty.node, NX_NODE_CONFIG);
	assert_int_equal(run(&vty, "quit"), NX_CMD_SUCCESS);
	assert_int_equal(vty.node, NX_NODE_CONFIG);
	assert_int_equal(run(&vty, "nexodus"), NX_CMD_SUCCESS);
	assert_int_equal(run(&vty, "exit"), NX_CMD_SUCCESS);
	assert_int_equal(vty.node, NX_NODE_CONFIG);
	assert_int_equal(vty.xpath_depth, 0);
	nx_vty_fini(&vty);
}

static void test_request_kinds(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct nx_vty vty;

	nx_vty_init(&vty, NX_VTY_BUFFER, tree, NULL, NX_NODE_VIEW);
	vty.hostname = "nexd";

	assert_int_equal(nx_vty_request(&vty, "\x03"), NX_CMD_SUCCESS);
	assert_string_equal(out(&vty), "nexd# ");
	assert_int_equal(nx_vty_request(&vty, "\x03ignored"), NX_CMD_SUCCESS);
	assert_string_equal(out(&vty), "nexd# ");

	assert_int_equal(nx_vty_request(&vty, "\x02"
					      "conf"),
			 NX_CMD_SUCCESS);
	assert_string_equal(out(&vty), "configure\tConfiguration from vty interface\n");
	assert_int_equal(nx_vty_request(&vty, "\x02"
					      "configure "),
			 NX_CMD_SUCCESS);
	assert_non_null(strstr(out(&vty), "<cr>\t\n"));
	assert_non_null(strstr(out(&vty), "terminal\tConfiguration terminal\n"));
	assert_int_equal(nx_vty_request(&vty, "\x02"), NX_CMD_SUCCESS);
	assert_non_null(strstr(out(&vty), "show\t"));
	assert_non_null(strstr(out(&vty), "echo\t"));
	assert_int_equal(nx_vty_request(&vty, "\x02"
					      "zzz"),
			 NX_CMD_SUCCESS);
	assert_string_equal(out(&vty), "");

	assert_int_equal(nx_vty_request(&vty, "\x01"
					      "con"),
			 NX_CMD_SUCCESS);
	assert_string_equal(out(&vty), "configure\n");
	assert_int_equal(nx_vty_request(&vty, "\x01"
					      "configure t"),
			 NX_CMD_SUCCESS);
	assert_string_equal(out(&vty), "terminal\n");
	assert_int_equal(nx_vty_request(&vty, "\x01"
					      "echo "),
			 NX_CMD_SUCCESS);
	assert_string_equal(out(&vty), ""); /* a variable is not completed */

	/* a command line; the output is reset per request */
	assert_int_equal(nx_vty_request(&vty, "configure terminal"), NX_CMD_SUCCESS);
	assert_string_equal(out(&vty), "");
	assert_int_equal(nx_vty_request(&vty, "nexodus"), NX_CMD_SUCCESS);
	assert_int_equal(nx_vty_request(&vty, "\x03"), NX_CMD_SUCCESS);
	assert_string_equal(out(&vty), "nexd(config-nexodus)# ");
	assert_int_equal(nx_vty_request(&vty, "\x01"
					      "serv"),
			 NX_CMD_SUCCESS);
	assert_string_equal(out(&vty), "service-url\n");
	assert_int_equal(nx_vty_request(&vty, "\x02"
					      "service-url "),
			 NX_CMD_SUCCESS);
	assert_string_equal(out(&vty), "URL\tURL\n");
	assert_int_equal(nx_vty_request(&vty, "bogus"), NX_CMD_ERR_NO_MATCH);
	assert_non_null(strstr(out(&vty), "% Unknown command"));
	nx_vty_fini(&vty);
}

static void test_frame(void **state)
{
	char *buf = malloc(NX_VTY_REQUEST_MAX + 2);

	(void)state;
	assert_non_null(buf);
	assert_int_equal(nx_vty_frame("", 0), 0);
	assert_int_equal(nx_vty_frame("abc", 3), 0);
	assert_int_equal(nx_vty_frame("abc\0", 4), 4);
	assert_int_equal(nx_vty_frame("\0", 1), 1);
	assert_int_equal(nx_vty_frame("show version\0fail\0", 18), 13);
	assert_int_equal(nx_vty_frame("\x01"
				      "con\0",
				      5),
			 5);
	assert_int_equal(nx_vty_frame("\x02\0", 2), 2);
	assert_int_equal(nx_vty_frame("\x03\0", 2), 2);
	assert_int_equal(nx_vty_frame("a\tb\0", 4), 4);
	assert_int_equal(nx_vty_frame("caf\xc3\xa9\0", 6), 6);
	/* control bytes: only the kind, first */
	assert_int_equal(nx_vty_frame("a\x01"
				      "b\0",
				      4),
			 -EINVAL);
	assert_int_equal(nx_vty_frame("\x01\x02\0", 3), -EINVAL);
	assert_int_equal(nx_vty_frame("\x04"
				      "a\0",
				      3),
			 -EINVAL);
	assert_int_equal(nx_vty_frame("show\r\0", 6), -EINVAL);
	assert_int_equal(nx_vty_frame("a\nb\0", 4), -EINVAL);
	assert_int_equal(nx_vty_frame("\x7f\0", 2), -EINVAL);
	/* the length bound */
	memset(buf, 'a', NX_VTY_REQUEST_MAX + 2);
	assert_int_equal(nx_vty_frame(buf, NX_VTY_REQUEST_MAX), 0);
	assert_int_equal(nx_vty_frame(buf, NX_VTY_REQUEST_MAX + 1), -E2BIG);
	assert_int_equal(nx_vty_frame(buf, NX_VTY_REQUEST_MAX + 2), -E2BIG);
	buf[NX_VTY_REQUEST_MAX] = '\0';
	assert_int_equal(nx_vty_frame(buf, NX_VTY_REQUEST_MAX + 1), NX_VTY_REQUEST_MAX + 1);
	assert_int_equal(nx_vty_frame(buf, NX_VTY_REQUEST_MAX + 2), NX_VTY_REQUEST_MAX + 1);
	buf[NX_VTY_REQUEST_MAX] = 'a';
	buf[NX_VTY_REQUEST_MAX + 1] = '\0'; /* a NUL one byte too late */
	assert_int_equal(nx_vty_frame(buf, NX_VTY_REQUEST_MAX + 2), -E2BIG);
	free(buf);
}

static void test_output_truncated(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct nx_vty vty;
	size_t len;

	nx_vty_init(&vty, NX_VTY_BUFFER, tree, NULL, NX_NODE_VIEW);
	/* 17 MiB asked, 16 MiB allowed */
	assert_int_equal(nx_vty_request(&vty, "big 17408"), NX_CMD_SUCCESS);
	len = nx_sbuf_len(&vty.out);
	assert_true(len <= NX_VTY_OUTPUT_MAX + 1);
	assert_true(len > NX_VTY_OUTPUT_MAX - 64);
	assert_true(nx_str_endswith(out(&vty), "\n% output truncated\n"));
	/* the next request starts afresh */
	assert_int_equal(nx_vty_request(&vty, "big 2"), NX_CMD_SUCCESS);
	assert_int_equal(nx_sbuf_len(&vty.out), 2048);
	nx_vty_fini(&vty);
}

/* --- config file --------------------------------------------------------- */

struct tmpdir {
	char dir[64];
	char file[128];
};

static void tmpdir_make(struct tmpdir *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/nx-test-vty.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->file, sizeof(t->file), "%s/testd.conf", t->dir);
}

static void tmpdir_remove(struct tmpdir *t)
{
	unlink(t->file);
	rmdir(t->dir);
}

static void write_bytes(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static int finish_cb(struct nx_vty *vty, struct nx_err *err)
{
	struct testd *d = vty->daemon;

	(void)err;
	d->finish_calls++;
	d->finish_node = vty->node;
	return d->finish_rc;
}

static void test_read_config_good(void **state)
{
	static const char conf[] = "! testd configuration\n"
				   "nexodus\n"
				   " service-url https://ctl.example\r\n"
				   " no service-url x\n"
				   "exit\n"
				   "\n"
				   "nexodus\n"
				   "debug nexodus peers\n"
				   "end\n"
				   "exit\n"
				   "debug nexodus nat"; /* no final newline */
	struct nx_cmd_tree *tree = *state;
	struct testd d = { 0 };
	struct tmpdir t = { .dir = "" };
	struct nx_err err;

	tmpdir_make(&t);
	write_bytes(t.file, conf, sizeof(conf) - 1);
	err.msg[0] = '\0';
	assert_int_equal(nx_vty_read_config(tree, &d, t.file, finish_cb, &err), 0);
	assert_string_equal(d.log, "nexodus;service-url;service-url;nexodus;debug;debug;");
	assert_int_equal(d.finish_calls, 1);
	assert_int_equal(d.finish_node, NX_NODE_CONFIG);

	/* finish's result is the result */
	d.finish_rc = -EIO;
	assert_int_equal(nx_vty_read_config(tree, &d, t.file, finish_cb, &err), -EIO);
	assert_int_equal(d.finish_calls, 2);

	/* no finish, an empty file */
	write_bytes(t.file, "", 0);
	assert_int_equal(nx_vty_read_config(tree, &d, t.file, NULL, &err), 0);
	tmpdir_remove(&t);
}

static void test_read_config_bad_line(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct testd d = { 0 };
	struct tmpdir t = { .dir = "" };
	struct nx_err err;
	char want[256];

	tmpdir_make(&t);
	write_bytes(t.file, "nexodus\n service-url a\n bogus words\ndebug nexodus nat\n", 53);
	err.msg[0] = '\0';
	assert_int_equal(nx_vty_read_config(tree, &d, t.file, finish_cb, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: Unknown command: bogus words", t.file);
	assert_string_equal(err.msg, want);
	assert_int_equal(d.finish_calls, 0);
	assert_string_equal(d.log, "nexodus;service-url;"); /* stopped at the bad line */

	/* a handler's refusal: its first line, without "% " */
	write_bytes(t.file, "debug nexodus nat\nfail\n", 23);
	err.msg[0] = '\0';
	assert_int_equal(nx_vty_read_config(tree, &d, t.file, finish_cb, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: Refused: fail was asked", t.file);
	assert_string_equal(err.msg, want);

	/* an incomplete command */
	write_bytes(t.file, "\n\ndebug nexodus\n", 16);
	err.msg[0] = '\0';
	assert_int_equal(nx_vty_read_config(tree, &d, t.file, finish_cb, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: Command incomplete", t.file);
	assert_true(strncmp(err.msg, want, strlen(want)) == 0);
	assert_int_equal(d.finish_calls, 0);
	tmpdir_remove(&t);
}

static void test_read_config_missing(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct testd d = { 0 };
	struct nx_err err;

	err.msg[0] = '\0';
	assert_int_equal(
		nx_vty_read_config(tree, &d, "/nonexistent/nx/testd.conf", finish_cb, &err),
		-ENOENT);
	assert_string_equal(err.msg, "/nonexistent/nx/testd.conf: No such file or directory");
	assert_int_equal(d.finish_calls, 0);
}

static void test_read_config_long_line(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct testd d = { 0 };
	struct tmpdir t = { .dir = "" };
	struct nx_err err;
	char want[256];
	char *buf = malloc(3 * NX_CMD_LINE_MAX);
	size_t n;

	assert_non_null(buf);
	tmpdir_make(&t);

	/* a comment of exactly NX_CMD_LINE_MAX bytes (and a CR) is fine */
	n = 0;
	n += (size_t)snprintf(buf, 32, "debug nexodus nat\n!");
	memset(buf + n, 'c', NX_CMD_LINE_MAX - 1);
	n += NX_CMD_LINE_MAX - 1;
	buf[n++] = '\r';
	buf[n++] = '\n';
	write_bytes(t.file, buf, n);
	err.msg[0] = '\0';
	assert_int_equal(nx_vty_read_config(tree, &d, t.file, finish_cb, &err), 0);
	assert_int_equal(d.finish_calls, 1);

	/* one byte more is not */
	n = 0;
	n += (size_t)snprintf(buf, 32, "debug nexodus nat\n!");
	memset(buf + n, 'c', NX_CMD_LINE_MAX);
	n += NX_CMD_LINE_MAX;
	buf[n++] = '\n';
	write_bytes(t.file, buf, n);
	err.msg[0] = '\0';
	assert_int_equal(nx_vty_read_config(tree, &d, t.file, finish_cb, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: line too long", t.file);
	assert_string_equal(err.msg, want);

	/* far longer, without a newline at all */
	memset(buf, 'x', 3 * NX_CMD_LINE_MAX);
	write_bytes(t.file, buf, 3 * NX_CMD_LINE_MAX);
	err.msg[0] = '\0';
	assert_int_equal(nx_vty_read_config(tree, &d, t.file, finish_cb, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s:1: line too long", t.file);
	assert_string_equal(err.msg, want);
	assert_int_equal(d.finish_calls, 1);
	free(buf);
	tmpdir_remove(&t);
}

static void test_read_config_nul(void **state)
{
	struct nx_cmd_tree *tree = *state;
	struct testd d = { 0 };
	struct tmpdir t = { .dir = "" };
	struct nx_err err;
	char want[256];

	tmpdir_make(&t);
	write_bytes(t.file, "debug nexodus nat\ndebug\0 nexodus peers\n", 40);
	err.msg[0] = '\0';
	assert_int_equal(nx_vty_read_config(tree, &d, t.file, finish_cb, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: NUL byte in line", t.file);
	assert_string_equal(err.msg, want);
	assert_int_equal(d.finish_calls, 0);
	tmpdir_remove(&t);
}

/* --- socket server ------------------------------------------------------- */

struct srvfix {
	struct nx_cmd_tree *tree;
	struct nx_loop *loop;
	struct nx_vty_server *srv;
	struct nx_timer poll;
	struct nx_timer guard;
	bool guard_fired;
	int done; /* set by the client thread */
	struct tmpdir t;
	char path[128];
};

static void poll_cb(struct nx_timer *t, void *arg)
{
	struct srvfix *f = arg;

	if (__atomic_load_n(&f->done, __ATOMIC_ACQUIRE))
		nx_loop_stop(f->loop);
	else
		nx_timer_arm(t, 2);
}

static void guard_cb(struct nx_timer *t, void *arg)
{
	struct srvfix *f = arg;

	(void)t;
	f->guard_fired = true;
	nx_loop_stop(f->loop);
}

static int setup_server(void **state)
{
	struct srvfix *f = calloc(1, sizeof(*f));
	struct nx_err err;

	assert_non_null(f);
	f->tree = make_tree();
	f->loop = nx_loop_new();
	assert_non_null(f->loop);
	nx_timer_init(f->loop, &f->poll, poll_cb, f);
	nx_timer_init(f->loop, &f->guard, guard_cb, f);
	tmpdir_make(&f->t);
	snprintf(f->path, sizeof(f->path), "%s/testd.vty", f->t.dir);
	err.msg[0] = '\0';
	f->srv = nx_vty_server_new(f->loop, f->path, f->tree, NULL, "nexd", &err);
	if (!f->srv)
		fail_msg("server: %s", err.msg);
	*state = f;
	return 0;
}

static int teardown_server(void **state)
{
	struct srvfix *f = *state;

	nx_vty_server_free(f->srv);
	nx_timer_fini(&f->poll);
	nx_timer_fini(&f->guard);
	nx_loop_free(f->loop);
	nx_cmd_tree_free(f->tree);
	unlink(f->path);
	tmpdir_remove(&f->t);
	free(f);
	return 0;
}

struct client_run {
	struct srvfix *f;
	void (*fn)(struct srvfix *f, void *arg);
	void *arg;
};

static void *client_thread(void *arg)
{
	struct client_run *r = arg;

	r->fn(r->f, r->arg);
	__atomic_store_n(&r->f->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Runs fn in a thread while the loop serves it; asserts happen afterwards, here. */
static void run_client(struct srvfix *f, void (*fn)(struct srvfix *f, void *arg), void *arg)
{
	struct client_run r = { f, fn, arg };
	pthread_t th;

	f->done = 0;
	f->guard_fired = false;
	assert_int_equal(pthread_create(&th, NULL, client_thread, &r), 0);
	nx_timer_arm(&f->poll, 2);
	nx_timer_arm(&f->guard, 30000);
	assert_int_equal(nx_loop_run(f->loop), 0);
	nx_timer_cancel(&f->poll);
	nx_timer_cancel(&f->guard);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_false(f->guard_fired);
}

static int cli_connect(const char *path)
{
	struct sockaddr_un sa;
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	nx_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int cli_send(int fd, const void *data, size_t len)
{
	const char *p = data;

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

struct reply {
	char *out; /* NUL-terminated */
	size_t len;
	int status; /* -1: no reply (closed) */
};

/* Reads one reply: bytes up to three NULs, then the status byte.  Peeks first, so that it
 * never consumes bytes of the next reply. */
static void cli_recv(int fd, struct reply *r)
{
	char chunk[65536];
	size_t cap = 4096;
	size_t len = 0;
	int zeros = 0;
	char *buf = malloc(cap);

	r->status = -1;
	r->out = NULL;
	r->len = 0;
	if (!buf)
		return;
	while (r->status < 0) {
		ssize_t n = recv(fd, chunk, sizeof(chunk), MSG_PEEK);
		ssize_t take;
		ssize_t i;

		if (n <= 0)
			break;
		for (i = 0, take = n; i < n; i++) {
			if (zeros == 3) {
				r->status = (unsigned char)chunk[i];
				take = i + 1;
				break;
			}
			zeros = chunk[i] == '\0' ? zeros + 1 : 0;
		}
		if (recv(fd, chunk, (size_t)take, 0) != take)
			break;
		if (len + (size_t)take + 1 > cap) {
			char *p;

			while (len + (size_t)take + 1 > cap)
				cap *= 2;
			p = realloc(buf, cap);
			if (!p)
				break;
			buf = p;
		}
		memcpy(buf + len, chunk, (size_t)take);
		len += (size_t)take;
	}
	if (r->status >= 0)
		len -= 4;
	buf[len] = '\0';
	r->out = buf;
	r->len = len;
}

static void reply_free(struct reply *r)
{
	free(r->out);
	r->out = NULL;
}

/* True when the server has closed the connection: EOF without data, or a reset when it
 * closed with bytes of ours still unread. */
static bool cli_eof(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, 0);

	return n == 0 || (n < 0 && errno == ECONNRESET);
}

struct script {
	const char *req[16];
	size_t reqlen[16]; /* 0: strlen + 1 */
	int n;
	struct reply rep[16];
	bool want_eof; /* check that the server closes after the last reply */
	bool eof;
	int connect_failed;
};

static void script_fn(struct srvfix *f, void *arg)
{
	struct script *s = arg;
	int fd = cli_connect(f->path);
	int i;

	if (fd < 0) {
		s->connect_failed = 1;
		return;
	}
	for (i = 0; i < s->n; i++) {
		size_t len = s->reqlen[i] ? s->reqlen[i] : strlen(s->req[i]) + 1;

		if (cli_send(fd, s->req[i], len) < 0)
			break;
		cli_recv(fd, &s->rep[i]);
	}
	if (s->want_eof)
		s->eof = cli_eof(fd);
	close(fd);
}

static void script_free(struct script *s)
{
	int i;

	for (i = 0; i < s->n; i++)
		reply_free(&s->rep[i]);
}

static void test_server_requests(void **state)
{
	struct srvfix *f = *state;
	struct script first = { .req = { "configure terminal", "\x03" }, .n = 2 };
	struct script s = {
		.req = { "show version", "fail", "bogus", "show", "\x03", "configure terminal",
			 "\x03", "nexodus", "\x03",
			 "\x02"
			 "service-url ",
			 "\x01"
			 "se",
			 "service-url u1", "end", "exit" },
		.n = 14,
		.want_eof = true,
	};
	struct stat st;

	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);

	/* a reply without output as the very first */
	run_client(f, script_fn, &first);
	assert_int_equal(first.rep[0].status, NX_CMD_SUCCESS);
	assert_string_equal(first.rep[0].out, "");
	assert_string_equal(first.rep[1].out, "nexd(config)# ");
	script_free(&first);

	run_client(f, script_fn, &s);
	assert_false(s.connect_failed);
	assert_int_equal(s.rep[0].status, NX_CMD_SUCCESS);
	assert_non_null(strstr(s.rep[0].out, PACKAGE_VERSION));
	assert_int_equal(s.rep[1].status, NX_CMD_WARNING);
	assert_string_equal(s.rep[1].out, "% Refused: fail was asked\nsecond line\n");
	assert_int_equal(s.rep[2].status, NX_CMD_ERR_NO_MATCH);
	assert_non_null(strstr(s.rep[2].out, "% Unknown command: bogus"));
	assert_int_equal(s.rep[3].status, NX_CMD_ERR_INCOMPLETE);
	assert_int_equal(s.rep[4].status, NX_CMD_SUCCESS);
	assert_string_equal(s.rep[4].out, "nexd# ");
	assert_int_equal(s.rep[5].status, NX_CMD_SUCCESS);
	assert_string_equal(s.rep[5].out, "");
	assert_string_equal(s.rep[6].out, "nexd(config)# ");
	assert_string_equal(s.rep[8].out, "nexd(config-nexodus)# ");
	assert_int_equal(s.rep[9].status, NX_CMD_SUCCESS);
	assert_string_equal(s.rep[9].out, "URL\tURL\n");
	assert_int_equal(s.rep[10].status, NX_CMD_SUCCESS);
	assert_string_equal(s.rep[10].out, "service-url\n");
	assert_string_equal(s.rep[11].out, "service-url=u1 no=0 xpath=/m:nexodus depth=1\n");
	assert_int_equal(s.rep[12].status, NX_CMD_SUCCESS);
	/* exit at VIEW: the reply, then the server closes */
	assert_int_equal(s.rep[13].status, NX_CMD_CLOSE);
	assert_true(s.eof);
	script_free(&s);
}

/* Sends a batch of requests in one write and reads all their replies. */
struct batch {
	const char *data;
	size_t len;
	int nreplies;
	struct reply rep[8];
};

static void batch_fn(struct srvfix *f, void *arg)
{
	struct batch *b = arg;
	int fd = cli_connect(f->path);
	int i;

	if (fd < 0)
		return;
	if (cli_send(fd, b->data, b->len) == 0)
		for (i = 0; i < b->nreplies; i++)
			cli_recv(fd, &b->rep[i]);
	close(fd);
}

static void test_server_batch(void **state)
{
	struct srvfix *f = *state;
	static const char many[] = "echo one\0fail\0\x03\0configure terminal\0\x03\0";
	struct batch b = { .data = many, .len = sizeof(many) - 1, .nreplies = 5 };
	int i;

	run_client(f, batch_fn, &b);
	assert_string_equal(b.rep[0].out, "one\n");
	assert_int_equal(b.rep[0].status, NX_CMD_SUCCESS);
	assert_int_equal(b.rep[1].status, NX_CMD_WARNING);
	assert_string_equal(b.rep[2].out, "nexd# ");
	assert_int_equal(b.rep[3].status, NX_CMD_SUCCESS);
	assert_string_equal(b.rep[4].out, "nexd(config)# ");
	for (i = 0; i < b.nreplies; i++)
		reply_free(&b.rep[i]);
}

/* A huge request without NUL on one connection while another keeps working. */
struct garbage {
	struct reply before;
	struct reply bad;
	struct reply after;
	bool bad_eof;
	int send_rc;
};

static void garbage_fn(struct srvfix *f, void *arg)
{
	struct garbage *g = arg;
	size_t big = 1u << 20;
	char *junk = malloc(big);
	int good = cli_connect(f->path);
	int bad = cli_connect(f->path);

	if (!junk || good < 0 || bad < 0)
		goto out;
	cli_send(good, "echo before", 12);
	cli_recv(good, &g->before);

	memset(junk, 'x', big);
	g->send_rc = cli_send(bad, junk, big); /* the server stops reading: EPIPE */
	cli_recv(bad, &g->bad);
	g->bad_eof = cli_eof(bad);

	cli_send(good, "echo after", 11);
	cli_recv(good, &g->after);
out:
	free(junk);
	if (good >= 0)
		close(good);
	if (bad >= 0)
		close(bad);
}

static void test_server_garbage(void **state)
{
	struct srvfix *f = *state;
	struct garbage g = { 0 };

	run_client(f, garbage_fn, &g);
	assert_int_equal(g.before.status, NX_CMD_SUCCESS);
	assert_string_equal(g.before.out, "before\n");
	assert_int_equal(g.bad.status, NX_CMD_ERR_TOO_LONG);
	assert_string_equal(g.bad.out, "% Line too long\n");
	assert_true(g.bad_eof);
	assert_int_equal(g.after.status, NX_CMD_SUCCESS);
	assert_string_equal(g.after.out, "after\n");
	reply_free(&g.before);
	reply_free(&g.bad);
	reply_free(&g.after);
}

static void test_server_control_bytes(void **state)
{
	struct srvfix *f = *state;
	struct script s = { .req = { "echo ok", "echo \x1b[2J" }, .n = 2, .want_eof = true };

	run_client(f, script_fn, &s);
	assert_int_equal(s.rep[0].status, NX_CMD_SUCCESS);
	assert_int_equal(s.rep[1].status, NX_CMD_ERR_NO_MATCH);
	assert_non_null(strstr(s.rep[1].out, "% Invalid request"));
	assert_true(s.eof);
	script_free(&s);
}

/* Clients that leave mid-reply, then one that checks the server still answers. */
struct vanish {
	struct reply after;
	bool all_connected;
};

static void vanish_fn(struct srvfix *f, void *arg)
{
	struct vanish *v = arg;
	char some[100];
	int fd;
	int i;

	v->all_connected = true;
	for (i = 0; i < 3; i++) {
		fd = cli_connect(f->path);
		if (fd < 0) {
			v->all_connected = false;
			continue;
		}
		cli_send(fd, "big 8192", 9); /* 8 MiB */
		if (i == 1)
			(void)recv(fd, some, sizeof(some), 0); /* read a little first */
		if (i == 2)
			shutdown(fd, SHUT_WR);
		close(fd);
	}
	usleep(20000); /* let the server hit the closed sockets */
	fd = cli_connect(f->path);
	if (fd < 0)
		return;
	cli_send(fd, "echo still here", 16);
	cli_recv(fd, &v->after);
	close(fd);
}

static void test_server_client_vanishes(void **state)
{
	struct srvfix *f = *state;
	struct vanish v = { 0 };

	run_client(f, vanish_fn, &v);
	assert_true(v.all_connected);
	assert_int_equal(v.after.status, NX_CMD_SUCCESS);
	assert_string_equal(v.after.out, "still here\n");
	reply_free(&v.after);
}

/* A reply far larger than the socket buffer arrives whole. */
struct large {
	struct reply r;
};

static void large_fn(struct srvfix *f, void *arg)
{
	struct large *l = arg;
	int fd = cli_connect(f->path);

	if (fd < 0)
		return;
	cli_send(fd, "big 3072", 9);
	cli_recv(fd, &l->r);
	close(fd);
}

static void test_server_large_reply(void **state)
{
	struct srvfix *f = *state;
	struct large l = { 0 };
	size_t i;

	run_client(f, large_fn, &l);
	assert_int_equal(l.r.status, NX_CMD_SUCCESS);
	assert_int_equal(l.r.len, 3072u * 1024u);
	for (i = 1023; i < l.r.len; i += 1024)
		assert_int_equal(l.r.out[i], '\n');
	reply_free(&l.r);
}

/* The 65th simultaneous client is turned away; the 64 others are served. */
#define NCLIENTS 65
struct crowd {
	int served;
	bool last_closed;
};

static void crowd_fn(struct srvfix *f, void *arg)
{
	struct crowd *c = arg;
	int fds[NCLIENTS];
	int i;

	for (i = 0; i < NCLIENTS; i++) {
		fds[i] = cli_connect(f->path);
		/* one round trip each, so the server has accepted it before the next */
		if (i < NCLIENTS - 1 && fds[i] >= 0) {
			struct reply r;

			cli_send(fds[i], "\x03", 2);
			cli_recv(fds[i], &r);
			if (r.status == NX_CMD_SUCCESS)
				c->served++;
			reply_free(&r);
		}
	}
	if (fds[NCLIENTS - 1] >= 0) {
		struct reply r;

		cli_send(fds[NCLIENTS - 1], "\x03", 2);
		cli_recv(fds[NCLIENTS - 1], &r);
		c->last_closed = r.status == -1;
		reply_free(&r);
	}
	for (i = 0; i < NCLIENTS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static void test_server_client_limit(void **state)
{
	struct srvfix *f = *state;
	struct crowd c = { 0 };
	struct script s = { .req = { "echo again" }, .n = 1 };

	run_client(f, crowd_fn, &c);
	assert_int_equal(c.served, NCLIENTS - 1);
	assert_true(c.last_closed);

	/* once they are gone, there is room again */
	run_client(f, script_fn, &s);
	assert_string_equal(s.rep[0].out, "again\n");
	script_free(&s);
}

static void test_server_stale_and_live(void **state)
{
	struct srvfix *f = *state;
	struct sockaddr_un sa;
	struct nx_vty_server *other;
	struct nx_err err;
	struct script s = { .req = { "echo fresh" }, .n = 1 };
	char want[256];
	char path2[160];
	struct stat st;
	int fd;

	/* the live socket is refused */
	err.msg[0] = '\0';
	errno = 0;
	other = nx_vty_server_new(f->loop, f->path, f->tree, NULL, "nexd", &err);
	assert_null(other);
	assert_int_equal(errno, EADDRINUSE);
	snprintf(want, sizeof(want), "another daemon is listening on %s", f->path);
	assert_string_equal(err.msg, want);
	assert_int_equal(stat(f->path, &st), 0); /* and left alone */

	/* a stale socket (bound, never listened, closed) is replaced */
	nx_vty_server_free(f->srv);
	f->srv = NULL;
	assert_int_equal(stat(f->path, &st), -1); /* free removed ours */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	nx_strlcpy(sa.sun_path, f->path, sizeof(sa.sun_path));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(stat(f->path, &st), 0);

	err.msg[0] = '\0';
	f->srv = nx_vty_server_new(f->loop, f->path, f->tree, NULL, "nexd", &err);
	if (!f->srv)
		fail_msg("stale socket not replaced: %s", err.msg);
	run_client(f, script_fn, &s);
	assert_string_equal(s.rep[0].out, "fresh\n");
	script_free(&s);

	/* something that is not a socket is never removed */
	snprintf(path2, sizeof(path2), "%s/plain", f->t.dir);
	write_bytes(path2, "keep", 4);
	err.msg[0] = '\0';
	other = nx_vty_server_new(f->loop, path2, f->tree, NULL, "nexd", &err);
	assert_null(other);
	assert_non_null(strstr(err.msg, "not a socket"));
	assert_int_equal(stat(path2, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(path2);

	/* a path too long for a unix socket */
	memset(path2, 'a', sizeof(path2) - 1);
	path2[0] = '/';
	path2[sizeof(path2) - 1] = '\0';
	err.msg[0] = '\0';
	assert_null(nx_vty_server_new(f->loop, path2, f->tree, NULL, "nexd", &err));
	assert_non_null(strstr(err.msg, "too long"));
}

static void test_server_free_keeps_successor(void **state)
{
	struct srvfix *f = *state;
	struct stat st;
	char moved[160];

	/* another daemon's socket now sits at our path: free must not remove it */
	snprintf(moved, sizeof(moved), "%s/moved.vty", f->t.dir);
	assert_int_equal(rename(f->path, moved), 0);
	write_bytes(f->path, "", 0);
	nx_vty_server_free(f->srv);
	f->srv = NULL;
	assert_int_equal(stat(f->path, &st), 0);
	unlink(f->path);
	unlink(moved);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_session_transitions, setup_tree,
						teardown_tree),
		cmocka_unit_test_setup_teardown(test_session_errors, setup_tree, teardown_tree),
		cmocka_unit_test_setup_teardown(test_prompts, setup_tree, teardown_tree),
		cmocka_unit_test(test_xpath_stack),
		cmocka_unit_test_setup_teardown(test_basic_commands, setup_tree, teardown_tree),
		cmocka_unit_test_setup_teardown(test_request_kinds, setup_tree, teardown_tree),
		cmocka_unit_test(test_frame),
		cmocka_unit_test_setup_teardown(test_output_truncated, setup_tree, teardown_tree),
		cmocka_unit_test_setup_teardown(test_read_config_good, setup_tree, teardown_tree),
		cmocka_unit_test_setup_teardown(test_read_config_bad_line, setup_tree,
						teardown_tree),
		cmocka_unit_test_setup_teardown(test_read_config_missing, setup_tree,
						teardown_tree),
		cmocka_unit_test_setup_teardown(test_read_config_long_line, setup_tree,
						teardown_tree),
		cmocka_unit_test_setup_teardown(test_read_config_nul, setup_tree, teardown_tree),
		cmocka_unit_test_setup_teardown(test_server_requests, setup_server,
						teardown_server),
		cmocka_unit_test_setup_teardown(test_server_batch, setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_server_garbage, setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_server_control_bytes, setup_server,
						teardown_server),
		cmocka_unit_test_setup_teardown(test_server_client_vanishes, setup_server,
						teardown_server),
		cmocka_unit_test_setup_teardown(test_server_large_reply, setup_server,
						teardown_server),
		cmocka_unit_test_setup_teardown(test_server_client_limit, setup_server,
						teardown_server),
		cmocka_unit_test_setup_teardown(test_server_stale_and_live, setup_server,
						teardown_server),
		cmocka_unit_test_setup_teardown(test_server_free_keeps_successor, setup_server,
						teardown_server),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
