/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Route-write driver for nexd's benchmark (tests/bench/bench-nexd-routes): how long nexd's
 * batched rtnetlink takes to install and remove N host routes, next to `ip -batch` doing
 * the same to the same kernel.  A peer list of thousands of devices becomes thousands of
 * routes at start-up and on every reconnect, so this is the cost that bounds convergence.
 *
 * One run, in a network namespace of its own (gone when the process exits) with a dummy
 * (or ifb) interface: nexd adds N routes, then deletes them; then `ip -batch` adds the same
 * N routes and deletes them.  Every step is checked against a dump.  Needs root.
 *
 *   nexd_routes [--routes N] [--ip PATH]
 *
 * Output ends with one line "RESULT key=value ..." (milliseconds) for the driver to parse.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/errmsg.h"
#include "lib/prefix.h"
#include "nexd/nexd_rtnl.h"

extern char **environ;

static const char *ip_path = "/sbin/ip";

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int run_ip(bool quiet, const char *const *args)
{
	const char *argv[16] = { ip_path };
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int i, rc, status;

	for (i = 0; i < 14 && args[i]; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	if (posix_spawn_file_actions_init(&fa) != 0)
		return -1;
	if (quiet)
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	rc = posix_spawn(&pid, ip_path, &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fprintf(stderr, "nexd_routes: %s: %s\n", ip_path, strerror(rc));
		return -1;
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define IP(...) run_ip(false, (const char *const[]){ __VA_ARGS__, NULL })

static int count_routes(struct nexd_rtnl *nl, int ifindex, size_t *n)
{
	struct nx_err err = { "" };
	struct nx_prefix *v = NULL;

	if (nexd_rtnl_route_dump(nl, ifindex, &v, n, &err) < 0) {
		fprintf(stderr, "nexd_routes: dump: %s\n", err.msg);
		return -1;
	}
	free(v);
	return 0;
}

static int expect_routes(struct nexd_rtnl *nl, int ifindex, size_t want, const char *after)
{
	size_t n = 0;

	if (count_routes(nl, ifindex, &n) < 0)
		return -1;
	if (n != want) {
		fprintf(stderr, "nexd_routes: after %s: %zu routes, expected %zu\n", after, n,
			want);
		return -1;
	}
	return 0;
}

static int nexd_pass(struct nexd_rtnl *nl, int ifindex, struct nexd_route_op *ops, size_t n,
		     bool del, double *ms)
{
	struct nx_err err = { "" };
	double t0;
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		ops[i].del = del;
	t0 = now_ms();
	rc = nexd_rtnl_route_batch(nl, ifindex, ops, n, &err);
	*ms = now_ms() - t0;
	if (rc != 0) {
		fprintf(stderr, "nexd_routes: batch %s: %d: %s\n", del ? "delete" : "add", rc,
			err.msg);
		return -1;
	}
	return 0;
}

static int write_ip_batch(const char *path, const struct nexd_route_op *ops, size_t n, bool del)
{
	char buf[NX_PREFIX_STRLEN];
	FILE *f = fopen(path, "w");
	size_t i;
	int rc = 0;

	if (!f)
		return -1;
	/* The same request nexd sends: replace (create), protocol 80, scope link, main table. */
	for (i = 0; i < n; i++)
		if (fprintf(f, "route %s %s dev d0 proto 80%s\n", del ? "del" : "replace",
			    nx_prefix_format(&ops[i].prefix, buf, sizeof(buf)),
			    del ? "" : " scope link") < 0)
			rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

static int ip_pass(const char *path, double *ms)
{
	double t0 = now_ms();
	int rc = IP("-batch", path);

	*ms = now_ms() - t0;
	if (rc != 0) {
		fprintf(stderr, "nexd_routes: ip -batch %s: exit %d\n", path, rc);
		return -1;
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: nexd_routes [--routes N] [--ip PATH]\n"
		   "  --routes N  host routes written (default 10000)\n"
		   "  --ip PATH   the ip utility (default /sbin/ip)\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "routes", required_argument, NULL, 'n' },
		{ "ip", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char tmpl[] = "/tmp/nexd-routes-XXXXXX";
	char add_path[64] = "", del_path[64] = "";
	struct nexd_route_op *ops = NULL;
	struct nexd_rtnl *nl = NULL;
	struct nx_err err = { "" };
	double nexd_add, nexd_del, ip_add, ip_del;
	unsigned long n = 10000;
	char *end;
	int c, ifindex, rc = 1;
	size_t i;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || n == 0 || n > 4000000) {
				fprintf(stderr,
					"nexd_routes: --routes: not a count 1-4000000: %s\n",
					optarg);
				return 2;
			}
			break;
		case 'i':
			ip_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "nexd_routes: needs root (a network namespace of its own)\n");
		return 1;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "nexd_routes: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return 1;
	}
	if (run_ip(true, (const char *const[]){ "link", "add", "d0", "type", "dummy", NULL }) !=
		    0 &&
	    IP("link", "add", "d0", "type", "ifb") != 0) {
		fprintf(stderr, "nexd_routes: cannot create a dummy or ifb interface\n");
		return 1;
	}

	ops = calloc(n, sizeof(*ops));
	if (!ops)
		goto out;
	for (i = 0; i < n; i++) {
		ops[i].prefix.addr.family = AF_INET;
		ops[i].prefix.addr.v4.s_addr = htonl(0x0a000000u + 0x10000u + (uint32_t)i);
		ops[i].prefix.len = 32;
	}
	nl = nexd_rtnl_new(&err);
	if (!nl) {
		fprintf(stderr, "nexd_routes: %s\n", err.msg);
		goto out;
	}
	ifindex = nexd_rtnl_link_index(nl, "d0");
	if (ifindex <= 0 || nexd_rtnl_link_up(nl, ifindex, 0, &err) < 0) {
		fprintf(stderr, "nexd_routes: d0: %s\n", err.msg[0] ? err.msg : "no index");
		goto out;
	}

	if (nexd_pass(nl, ifindex, ops, n, false, &nexd_add) < 0 ||
	    expect_routes(nl, ifindex, n, "nexd's add") < 0 ||
	    nexd_pass(nl, ifindex, ops, n, true, &nexd_del) < 0 ||
	    expect_routes(nl, ifindex, 0, "nexd's delete") < 0)
		goto out;

	if (!mkdtemp(tmpl)) {
		fprintf(stderr, "nexd_routes: mkdtemp: %s\n", strerror(errno));
		goto out;
	}
	snprintf(add_path, sizeof(add_path), "%s/add", tmpl);
	snprintf(del_path, sizeof(del_path), "%s/del", tmpl);
	if (write_ip_batch(add_path, ops, n, false) < 0 ||
	    write_ip_batch(del_path, ops, n, true) < 0) {
		fprintf(stderr, "nexd_routes: cannot write the ip batch files in %s\n", tmpl);
		goto out;
	}
	if (ip_pass(add_path, &ip_add) < 0 || expect_routes(nl, ifindex, n, "ip's add") < 0 ||
	    ip_pass(del_path, &ip_del) < 0 || expect_routes(nl, ifindex, 0, "ip's delete") < 0)
		goto out;

	printf("routes %lu: nexd add %.1f ms, delete %.1f ms; ip -batch add %.1f ms, delete %.1f "
	       "ms\n",
	       n, nexd_add, nexd_del, ip_add, ip_del);
	printf("RESULT routes=%lu nexd_add_ms=%.3f nexd_del_ms=%.3f ip_add_ms=%.3f "
	       "ip_del_ms=%.3f\n",
	       n, nexd_add, nexd_del, ip_add, ip_del);
	rc = 0;
out:
	if (add_path[0])
		unlink(add_path);
	if (del_path[0])
		unlink(del_path);
	if (add_path[0])
		rmdir(tmpl);
	nexd_rtnl_free(nl);
	free(ops);
	return rc;
}
