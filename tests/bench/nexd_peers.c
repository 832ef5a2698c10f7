/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Peer-programming driver for nexd's benchmark (tests/bench/bench-nexd-peers): how long nexd
 * takes to hand a WireGuard interface N peers (one /32 allowed IP and an endpoint each) in one
 * nexd_wg_set(), and to read them back with nexd_wg_get(), next to `wg setconf` and
 * `wg showconf` doing the same with the same peers.  A VPC of thousands of devices is
 * thousands of peers at start-up and on every reconnect, so this bounds convergence as much
 * as the route writes do.
 *
 * One run, in a network namespace and a mount namespace of its own (private tmpfs on
 * /var/run/wireguard and /tmp; all gone when the process exits): for each backend available
 * (uapi: wireguard-go; kernel: when the kernel can make wireguard links), nexd programs a
 * fresh interface and reads it back, and `wg` does the same on another fresh interface.
 * Every step is checked (the device must hold N peers).  Needs root.
 *
 *   nexd_peers [--peers N] [--wg PATH] [--wg-first]
 *
 * --wg-first measures wg(8) before nexd (the driver script alternates the order).
 *
 * Output ends with one "RESULT key=value ..." line (milliseconds) per backend measured, for
 * the driver script to parse.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/errmsg.h"
#include "lib/prefix.h"
#include "lib/wgkey.h"
#include "nexd/nexd_wg.h"
#include "tests/children.h"

extern char **environ;

#define SOCK_DIR    "/var/run/wireguard"
#define CONF_PATH   "/tmp/nexd_peers.conf"
#define SHOW_PATH   "/tmp/nexd_peers.show"
#define LISTEN_PORT 51820

static const char *wg_path = "wg";
static bool wg_first; /* measure wg(8) before nexd */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Runs wg with args; stdout to out_path when given.  Its exit status, or -1. */
static int run_wg(const char *out_path, const char *const *args)
{
	const char *argv[8] = { wg_path };
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int i, rc, status;

	for (i = 0; i < 6 && args[i]; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	if (posix_spawn_file_actions_init(&fa) != 0)
		return -1;
	if (out_path)
		posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC,
						 0600);
	rc = posix_spawnp(&pid, wg_path, &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fprintf(stderr, "nexd_peers: %s: %s\n", wg_path, strerror(rc));
		return -1;
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define WG(out, ...) run_wg(out, (const char *const[]){ __VA_ARGS__, NULL })

/* The device nexd sets: a private key, a port, replace_peers, N peers with random keys,
 * allowed IP 100.64.0.0/10 + i + 1 and endpoint 198.18.0.0/15 + i + 1, port 51820 + i % 1000. */
static int make_device(struct nexd_wg_device *dev, size_t n)
{
	size_t i;

	memset(dev, 0, sizeof(*dev));
	if (nx_wgkey_generate_private(&dev->private_key, NULL) < 0)
		return -1;
	dev->has_private_key = true;
	dev->listen_port = LISTEN_PORT;
	dev->replace_peers = true;
	for (i = 0; i < n; i++) {
		struct nexd_wg_peer *p = nexd_wg_device_add_peer(dev);
		struct nx_wgkey priv;
		struct nx_prefix pfx = { 0 };
		int rc;

		if (!p)
			return -1;
		rc = nx_wgkey_generate_private(&priv, NULL);
		if (rc == 0)
			rc = nx_wgkey_public_from_private(&priv, &p->public_key, NULL);
		nx_wgkey_wipe(&priv);
		if (rc < 0)
			return -1;
		p->endpoint.family = AF_INET;
		p->endpoint.v4.s_addr = htonl(0xc6120000u + (uint32_t)i + 1);
		p->endpoint_port = (uint16_t)(LISTEN_PORT + i % 1000);
		pfx.addr.family = AF_INET;
		pfx.addr.v4.s_addr = htonl(0x64400000u + (uint32_t)i + 1);
		pfx.len = 32;
		if (nexd_wg_peer_add_allowed_ip(p, &pfx) < 0)
			return -1;
	}
	return 0;
}

/* The same device as a wg(8) configuration file, for `wg setconf`. */
static int write_conf(const struct nexd_wg_device *dev)
{
	char key[NX_WG_KEY_B64_LEN], ep[NX_ENDPOINT_STRLEN], ip[NX_PREFIX_STRLEN];
	FILE *f = fopen(CONF_PATH, "w");
	int rc = 0;

	if (!f)
		return -1;
	nx_wgkey_to_base64(&dev->private_key, key);
	if (fprintf(f, "[Interface]\nPrivateKey = %s\nListenPort = %u\n", key,
		    (unsigned)dev->listen_port) < 0)
		rc = -1;
	for (size_t i = 0; i < dev->n_peers && rc == 0; i++) {
		const struct nexd_wg_peer *p = &dev->peers[i];

		nx_wgkey_to_base64(&p->public_key, key);
		if (fprintf(f, "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s\nEndpoint = %s\n", key,
			    nx_prefix_format(&p->allowed_ips[0], ip, sizeof(ip)),
			    nx_endpoint_format(&p->endpoint, p->endpoint_port, ep, sizeof(ep))) < 0)
			rc = -1;
	}
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

/* The number of peers the interface holds (read with nexd_wg_get, not timed), or -1. */
static long peers_on(struct nexd_wg *wg)
{
	struct nexd_wg_device got;
	struct nx_err err = { "" };
	long n;

	if (nexd_wg_get(wg, &got, &err) < 0) {
		fprintf(stderr, "nexd_peers: %s: get: %s\n", wg->ifname, err.msg);
		return -1;
	}
	n = (long)got.n_peers;
	nexd_wg_device_clear(&got);
	return n;
}

static long count_peer_sections(const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");
	long n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strcmp(line, "[Peer]\n") == 0)
			n++;
	fclose(f);
	return n;
}

struct figures {
	double nexd_set, nexd_get, wg_set, wg_get;
};

static int bench_backend(const struct nexd_wg_ops *ops, const struct nexd_wg_device *dev,
			 struct figures *fig)
{
	struct nexd_wg wg_nexd = { 0 }, wg_tool = { 0 };
	struct nexd_wg_device got;
	struct nx_err err = { "" };
	bool open_nexd = false, open_tool = false;
	long want = (long)dev->n_peers, n;
	double t0;
	int rc = -1;

	for (int step = 0; step < 2; step++) {
		if ((step == 0) != wg_first) {
			/* nexd: one set with every peer, then one get. */
			if (nexd_wg_open(&wg_nexd, ops, "nxbench0", &err) < 0) {
				fprintf(stderr, "nexd_peers: %s: open nxbench0: %s\n", ops->name,
					err.msg);
				goto out;
			}
			open_nexd = true;
			t0 = now_ms();
			if (nexd_wg_set(&wg_nexd, dev, &err) < 0) {
				fprintf(stderr, "nexd_peers: %s: set: %s\n", ops->name, err.msg);
				goto out;
			}
			fig->nexd_set = now_ms() - t0;
			t0 = now_ms();
			if (nexd_wg_get(&wg_nexd, &got, &err) < 0) {
				fprintf(stderr, "nexd_peers: %s: get: %s\n", ops->name, err.msg);
				goto out;
			}
			fig->nexd_get = now_ms() - t0;
			n = (long)got.n_peers;
			nexd_wg_device_clear(&got);
			if (n != want) {
				fprintf(stderr,
					"nexd_peers: %s: nexd set %ld peers, read back %ld\n",
					ops->name, want, n);
				goto out;
			}
			nexd_wg_close(&wg_nexd, true);
			open_nexd = false;
		} else {
			/* wg(8) on a fresh interface started the same way: setconf, showconf. */
			if (nexd_wg_open(&wg_tool, ops, "nxbench1", &err) < 0) {
				fprintf(stderr, "nexd_peers: %s: open nxbench1: %s\n", ops->name,
					err.msg);
				goto out;
			}
			open_tool = true;
			t0 = now_ms();
			if (WG(NULL, "setconf", "nxbench1", CONF_PATH) != 0) {
				fprintf(stderr, "nexd_peers: %s: wg setconf failed\n", ops->name);
				goto out;
			}
			fig->wg_set = now_ms() - t0;
			t0 = now_ms();
			if (WG(SHOW_PATH, "showconf", "nxbench1") != 0) {
				fprintf(stderr, "nexd_peers: %s: wg showconf failed\n", ops->name);
				goto out;
			}
			fig->wg_get = now_ms() - t0;
			if ((n = peers_on(&wg_tool)) != want ||
			    (n = count_peer_sections(SHOW_PATH)) != want) {
				fprintf(stderr, "nexd_peers: %s: wg set %ld peers, read back %ld\n",
					ops->name, want, n);
				goto out;
			}
			nexd_wg_close(&wg_tool, true);
			open_tool = false;
		}
	}
	rc = 0;
out:
	if (open_nexd)
		nexd_wg_close(&wg_nexd, true);
	if (open_tool)
		nexd_wg_close(&wg_tool, true);
	unlink(SHOW_PATH);
	return rc;
}

/* Network and mount namespaces of this process's own, tmpfs on /tmp and /var/run/wireguard. */
static int enter_namespaces(void)
{
	struct stat st;

	if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0) {
		fprintf(stderr, "nexd_peers: unshare: %s\n", strerror(errno));
		return -1;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "nexd_peers: mount --make-rprivate /: %s\n", strerror(errno));
		return -1;
	}
	if (stat(SOCK_DIR, &st) < 0 && (mount("tmpfs", "/var/run", "tmpfs", 0, "mode=0755") < 0 ||
					mkdir(SOCK_DIR, 0755) < 0)) {
		fprintf(stderr, "nexd_peers: tmpfs on /var/run: %s\n", strerror(errno));
		return -1;
	}
	if (mount("tmpfs", SOCK_DIR, "tmpfs", 0, "mode=0755") < 0 ||
	    mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777") < 0) {
		fprintf(stderr, "nexd_peers: tmpfs: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static void report(const char *backend, size_t n, const struct figures *f)
{
	printf("%s: %zu peers: nexd set %.1f ms, wg setconf %.1f ms (%.2fx); "
	       "nexd get %.1f ms, wg showconf %.1f ms (%.2fx)\n",
	       backend, n, f->nexd_set, f->wg_set, f->nexd_set / f->wg_set, f->nexd_get, f->wg_get,
	       f->nexd_get / f->wg_get);
	printf("RESULT backend=%s peers=%zu nexd_set_ms=%.3f wg_set_ms=%.3f nexd_get_ms=%.3f "
	       "wg_get_ms=%.3f\n",
	       backend, n, f->nexd_set, f->wg_set, f->nexd_get, f->wg_get);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "peers", required_argument, NULL, 'n' },
		{ "wg", required_argument, NULL, 'w' },
		{ "wg-first", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct nexd_wg_device dev;
	struct figures fig;
	unsigned long n = 10000;
	char *end;
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || n == 0 || n > 1000000) {
				fprintf(stderr, "nexd_peers: --peers %s: expected 1..1000000\n",
					optarg);
				return 2;
			}
			break;
		case 'w':
			wg_path = optarg;
			break;
		case 'f':
			wg_first = true;
			break;
		default:
			fprintf(stderr, "usage: nexd_peers [--peers N] [--wg PATH] [--wg-first]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (geteuid() != 0) {
		fprintf(stderr, "nexd_peers: needs root (namespaces, tunnel devices)\n");
		return 1;
	}
	if (enter_namespaces() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	if (make_device(&dev, n) < 0 || write_conf(&dev) < 0) {
		fprintf(stderr, "nexd_peers: cannot prepare %lu peers\n", n);
		goto out;
	}
	if (bench_backend(&nexd_wg_uapi_ops, &dev, &fig) < 0)
		goto out;
	report("uapi", n, &fig);
	if (nexd_wg_kernel_available()) {
		if (bench_backend(&nexd_wg_kernel_ops, &dev, &fig) < 0)
			goto out;
		report("kernel", n, &fig);
	} else {
		printf("kernel: not measured: this kernel cannot create wireguard links\n");
	}
	rc = 0;
out:
	nexd_wg_device_clear(&dev);
	unlink(CONF_PATH);
	nx_test_stop_children();
	return rc;
}
