/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd's WireGuard backends against the real dataplane, through nexd_wg_open/get/set/close
 * only, so the same steps check either backend: NEXD_TEST_WG_BACKEND=uapi (the default,
 * wireguard-go) or kernel.  The test runs in a network namespace and a mount namespace of its
 * own, with a private tmpfs on /var/run/wireguard, so it never sees the host's interfaces or
 * sockets.  Needs root and the backend (the wireguard-go binary, or a kernel with WireGuard);
 * without them it is skipped as a whole.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "nexd/nexd_wg.h"
#include "tests/children.h"

#define IFNAME	    "nxwgtest0"
#define SOCK_DIR    "/var/run/wireguard"
#define SOCK_PATH   SOCK_DIR "/" IFNAME ".sock"
#define LISTEN_PORT 51871
#define MANY	    2000

static const struct nexd_wg_ops *ops;
static struct nexd_wg wg;
static bool wg_open;
static struct nx_wgkey dev_key;
static struct nx_wgkey peer_keys[3];

#define assert_ok(expr, err)                                            \
	do {                                                            \
		int rc_ = (expr);                                       \
		if (rc_ != 0)                                           \
			fail_msg("%s: %d (%s)", #expr, rc_, (err).msg); \
	} while (0)

static void new_public_key(struct nx_wgkey *pub)
{
	struct nx_wgkey priv;

	assert_int_equal(nx_wgkey_generate_private(&priv, NULL), 0);
	assert_int_equal(nx_wgkey_public_from_private(&priv, pub, NULL), 0);
	nx_wgkey_wipe(&priv);
}

static void add_prefix(struct nexd_wg_peer *p, const char *text)
{
	struct nx_prefix pfx;

	assert_int_equal(nx_prefix_parse(text, &pfx, 0, NULL), 0);
	assert_int_equal(nexd_wg_peer_add_allowed_ip(p, &pfx), 0);
}

static struct nexd_wg_peer *add_peer(struct nexd_wg_device *dev, const struct nx_wgkey *key,
				     const char *endpoint, uint16_t keepalive)
{
	struct nexd_wg_peer *p = nexd_wg_device_add_peer(dev);

	assert_non_null(p);
	p->public_key = *key;
	if (endpoint)
		assert_int_equal(nx_endpoint_parse(endpoint, &p->endpoint, &p->endpoint_port, NULL),
				 0);
	p->keepalive_s = keepalive;
	return p;
}

static const struct nexd_wg_peer *find_peer(const struct nexd_wg_device *dev,
					    const struct nx_wgkey *key)
{
	for (size_t i = 0; i < dev->n_peers; i++)
		if (nx_wgkey_eq(&dev->peers[i].public_key, key))
			return &dev->peers[i];
	return NULL;
}

/* The peer as read back holds the endpoint, keepalive and (in any order) the allowed IPs. */
static void assert_peer(const struct nexd_wg_device *dev, const struct nx_wgkey *key,
			const char *endpoint, uint16_t keepalive, const char *const *ips,
			size_t n_ips)
{
	const struct nexd_wg_peer *p = find_peer(dev, key);
	char buf[NX_ENDPOINT_STRLEN];
	struct nx_prefix *got, want[8] = { 0 };

	assert_non_null(p);
	assert_string_equal(nx_endpoint_format(&p->endpoint, p->endpoint_port, buf, sizeof(buf)),
			    endpoint);
	assert_int_equal(p->keepalive_s, keepalive);
	assert_int_equal(p->n_allowed_ips, n_ips);
	assert_true(n_ips <= 8);
	for (size_t i = 0; i < n_ips; i++)
		assert_int_equal(nx_prefix_parse(ips[i], &want[i], 0, NULL), 0);
	got = malloc((n_ips ? n_ips : 1) * sizeof(*got));
	assert_non_null(got);
	memcpy(got, p->allowed_ips, n_ips * sizeof(*got));
	qsort(got, n_ips, sizeof(*got), nx_prefix_cmp_qsort);
	qsort(want, n_ips, sizeof(*want), nx_prefix_cmp_qsort);
	for (size_t i = 0; i < n_ips; i++)
		if (nx_prefix_cmp(&got[i], &want[i]) != 0)
			fail_msg("allowed IP %zu: %s", i,
				 nx_prefix_format(&got[i], buf, sizeof(buf)));
	free(got);
}

/* uapi: a wireguard-go that fails is reported with how it ended, and nothing is left open. */
static void test_open_failure(void **state)
{
	struct nexd_wg failed;
	struct nx_err err = { "" };
	const char *saved = getenv("NEXD_WIREGUARD_GO");
	char *copy = saved ? strdup(saved) : NULL;

	(void)state;
	if (ops != &nexd_wg_uapi_ops)
		return;
	assert_int_equal(setenv("NEXD_WIREGUARD_GO", "false", 1), 0);
	assert_int_equal(nexd_wg_open(&failed, ops, IFNAME, &err), -EIO);
	assert_true(strstr(err.msg, "exit status 1") != NULL);
	assert_int_equal(setenv("NEXD_WIREGUARD_GO", "/nonexistent/wireguard-go", 1), 0);
	assert_int_equal(nexd_wg_open(&failed, ops, IFNAME, &err), -ENOENT);
	assert_true(strstr(err.msg, "cannot run /nonexistent/wireguard-go") != NULL);
	if (copy)
		setenv("NEXD_WIREGUARD_GO", copy, 1);
	else
		unsetenv("NEXD_WIREGUARD_GO");
	free(copy);
	assert_int_equal(if_nametoindex(IFNAME), 0);
}

static void test_open_set_get(void **state)
{
	static const char *const ips0[] = { "10.100.0.1/32", "fd00:100::1/128" };
	static const char *const ips1[] = { "10.100.0.2/32", "192.168.10.0/24" };
	static const char *const ips2[] = { "10.100.0.3/32" };
	struct nexd_wg_device change = { 0 }, got;
	struct nexd_wg_peer *p;
	struct nx_err err = { "" };

	(void)state;
	if (ops == &nexd_wg_uapi_ops) {
		/* A socket left by a daemon that died: nobody listens, open() clears it. */
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);

		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", SOCK_PATH);
		assert_true(fd >= 0);
		assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
		close(fd);
	}
	assert_ok(nexd_wg_open(&wg, ops, IFNAME, &err), err);
	wg_open = true;
	assert_true(if_nametoindex(IFNAME) > 0);

	assert_int_equal(nx_wgkey_generate_private(&dev_key, NULL), 0);
	for (size_t i = 0; i < 3; i++)
		new_public_key(&peer_keys[i]);
	change.private_key = dev_key;
	change.has_private_key = true;
	change.listen_port = LISTEN_PORT;
	p = add_peer(&change, &peer_keys[0], "192.0.2.10:51820", 25);
	add_prefix(p, ips0[0]);
	add_prefix(p, ips0[1]);
	p = add_peer(&change, &peer_keys[1], "[2001:db8::20]:51821", 0);
	add_prefix(p, ips1[0]);
	add_prefix(p, ips1[1]);
	p = add_peer(&change, &peer_keys[2], "198.51.100.30:4500", 15);
	add_prefix(p, ips2[0]);
	assert_ok(nexd_wg_set(&wg, &change, &err), err);
	nexd_wg_device_clear(&change);

	assert_ok(nexd_wg_get(&wg, &got, &err), err);
	assert_true(got.has_private_key);
	assert_true(nx_wgkey_eq(&got.private_key, &dev_key));
	assert_int_equal(got.listen_port, LISTEN_PORT);
	assert_int_equal(got.n_peers, 3);
	assert_peer(&got, &peer_keys[0], "192.0.2.10:51820", 25, ips0, 2);
	assert_peer(&got, &peer_keys[1], "[2001:db8::20]:51821", 0, ips1, 2);
	assert_peer(&got, &peer_keys[2], "198.51.100.30:4500", 15, ips2, 1);
	for (size_t i = 0; i < got.n_peers; i++) {
		assert_int_equal(got.peers[i].last_handshake_s, 0);
		assert_int_equal(got.peers[i].rx_bytes, 0);
	}
	nexd_wg_device_clear(&got);
}

/* Allowed IPs are appended, or replaced with NEXD_WG_PEER_REPLACE_ALLOWED_IPS; a peer
 * listed without an endpoint keeps the one it has. */
static void test_allowed_ips(void **state)
{
	static const char *const appended[] = { "10.100.0.2/32", "192.168.10.0/24",
						"172.16.0.0/12" };
	static const char *const replaced[] = { "10.100.0.22/32", "fd00:100::22/128" };
	struct nexd_wg_device change = { 0 }, got;
	struct nexd_wg_peer *p;
	struct nx_err err = { "" };

	(void)state;
	p = add_peer(&change, &peer_keys[1], NULL, 0);
	add_prefix(p, "172.16.0.0/12");
	assert_ok(nexd_wg_set(&wg, &change, &err), err);
	nexd_wg_device_clear(&change);
	assert_ok(nexd_wg_get(&wg, &got, &err), err);
	assert_peer(&got, &peer_keys[1], "[2001:db8::20]:51821", 0, appended, 3);
	nexd_wg_device_clear(&got);

	p = add_peer(&change, &peer_keys[1], "[2001:db8::21]:51822", 0);
	p->flags = NEXD_WG_PEER_REPLACE_ALLOWED_IPS;
	add_prefix(p, replaced[0]);
	add_prefix(p, replaced[1]);
	assert_ok(nexd_wg_set(&wg, &change, &err), err);
	nexd_wg_device_clear(&change);
	assert_ok(nexd_wg_get(&wg, &got, &err), err);
	assert_int_equal(got.n_peers, 3);
	assert_peer(&got, &peer_keys[1], "[2001:db8::21]:51822", 0, replaced, 2);
	nexd_wg_device_clear(&got);
}

/* NEXD_WG_PEER_REMOVE removes; NEXD_WG_PEER_UPDATE_ONLY does not add an unknown peer. */
static void test_remove_update_only(void **state)
{
	static const char *const ips2[] = { "10.100.0.3/32" };
	struct nexd_wg_device change = { 0 }, got;
	struct nexd_wg_peer *p;
	struct nx_wgkey stranger;
	struct nx_err err = { "" };

	(void)state;
	new_public_key(&stranger);
	p = add_peer(&change, &peer_keys[0], NULL, 0);
	p->flags = NEXD_WG_PEER_REMOVE;
	p = add_peer(&change, &stranger, "192.0.2.99:1", 0);
	p->flags = NEXD_WG_PEER_UPDATE_ONLY;
	add_prefix(p, "10.99.0.0/16");
	p = add_peer(&change, &peer_keys[2], NULL, 15);
	p->flags = NEXD_WG_PEER_UPDATE_ONLY;
	assert_ok(nexd_wg_set(&wg, &change, &err), err);
	nexd_wg_device_clear(&change);

	assert_ok(nexd_wg_get(&wg, &got, &err), err);
	assert_int_equal(got.n_peers, 2);
	assert_null(find_peer(&got, &peer_keys[0]));
	assert_null(find_peer(&got, &stranger));
	assert_non_null(find_peer(&got, &peer_keys[1]));
	assert_peer(&got, &peer_keys[2], "198.51.100.30:4500", 15, ips2, 1);
	nexd_wg_device_clear(&got);
}

/* replace_peers with 2,000 peers: the old ones go, and the large reply reads back whole. */
static void test_replace_many(void **state)
{
	struct nexd_wg_device change = { 0 }, got;
	struct nx_wgkey *keys = calloc(MANY, sizeof(*keys));
	struct nexd_wg_peer *p0;
	struct nx_err err = { "" };

	(void)state;
	assert_non_null(keys);
	change.replace_peers = true;
	for (unsigned i = 0; i < MANY; i++) {
		char ep[NX_ENDPOINT_STRLEN], ip[NX_PREFIX_STRLEN];
		struct nexd_wg_peer *p;

		new_public_key(&keys[i]);
		if (i % 2)
			snprintf(ep, sizeof(ep), "[2001:db8:1::%x]:%u", i + 1, 10000 + i);
		else
			snprintf(ep, sizeof(ep), "203.0.113.%u:%u", i % 250 + 1, 10000 + i);
		p = add_peer(&change, &keys[i], ep, i % 3 ? 0 : 25);
		snprintf(ip, sizeof(ip), "100.64.%u.%u/32", i / 250, i % 250 + 1);
		add_prefix(p, ip);
		snprintf(ip, sizeof(ip), "fd00:64::%x/128", i + 1);
		add_prefix(p, ip);
	}
	assert_ok(nexd_wg_set(&wg, &change, &err), err);
	nexd_wg_device_clear(&change);

	assert_ok(nexd_wg_get(&wg, &got, &err), err);
	assert_int_equal(got.n_peers, MANY);
	assert_null(find_peer(&got, &peer_keys[1]));
	assert_null(find_peer(&got, &peer_keys[2]));
	for (unsigned i = 0; i < MANY; i += 7) {
		char ep[NX_ENDPOINT_STRLEN], ip4[NX_PREFIX_STRLEN], ip6[NX_PREFIX_STRLEN];
		const char *ips[2] = { ip4, ip6 };

		if (i % 2)
			snprintf(ep, sizeof(ep), "[2001:db8:1::%x]:%u", i + 1, 10000 + i);
		else
			snprintf(ep, sizeof(ep), "203.0.113.%u:%u", i % 250 + 1, 10000 + i);
		snprintf(ip4, sizeof(ip4), "100.64.%u.%u/32", i / 250, i % 250 + 1);
		snprintf(ip6, sizeof(ip6), "fd00:64::%x/128", i + 1);
		assert_peer(&got, &keys[i], ep, i % 3 ? 0 : 25, ips, 2);
	}
	nexd_wg_device_clear(&got);

	/* Back to one peer, for the restart below. */
	change.replace_peers = true;
	p0 = add_peer(&change, &keys[0], "203.0.113.1:10000", 25);
	add_prefix(p0, "100.64.0.1/32");
	add_prefix(p0, "fd00:64::1/128");
	assert_ok(nexd_wg_set(&wg, &change, &err), err);
	nexd_wg_device_clear(&change);
	peer_keys[0] = keys[0];
	free(keys);
}

/* Closing without destroying leaves the dataplane running; opening again adopts it. */
static void test_adopt(void **state)
{
	static const char *const ips[] = { "100.64.0.1/32", "fd00:64::1/128" };
	struct nexd_wg_device got;
	struct nx_err err = { "" };

	(void)state;
	nexd_wg_close(&wg, false);
	wg_open = false;
	assert_true(if_nametoindex(IFNAME) > 0);
	assert_ok(nexd_wg_open(&wg, ops, IFNAME, &err), err);
	wg_open = true;
	assert_ok(nexd_wg_get(&wg, &got, &err), err);
	assert_true(nx_wgkey_eq(&got.private_key, &dev_key));
	assert_int_equal(got.listen_port, LISTEN_PORT);
	assert_int_equal(got.n_peers, 1);
	assert_peer(&got, &peer_keys[0], "203.0.113.1:10000", 25, ips, 2);
	nexd_wg_device_clear(&got);
}

static void test_destroy(void **state)
{
	struct nexd_wg_device got;
	struct nx_err err = { "" };

	(void)state;
	nexd_wg_close(&wg, true);
	wg_open = false;
	assert_int_equal(if_nametoindex(IFNAME), 0);
	if (ops == &nexd_wg_uapi_ops)
		assert_int_equal(access(SOCK_PATH, F_OK), -1);
	/* A closed handle refuses politely. */
	assert_int_equal(nexd_wg_get(&wg, &got, &err), -ENODEV);
	assert_true(err.msg[0] != '\0');
}

static int group_teardown(void **state)
{
	(void)state;
	if (wg_open)
		nexd_wg_close(&wg, true);
	wg_open = false;
	nx_test_stop_children();
	return 0;
}

/* Network and mount namespaces of the test's own, and a tmpfs where wireguard-go puts its
 * sockets; everything goes away when the process exits. */
static int enter_namespaces(char *why, size_t size)
{
	struct stat st;

	if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0) {
		snprintf(why, size, "unshare: %s", strerror(errno));
		return -1;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		snprintf(why, size, "mount --make-rprivate /: %s", strerror(errno));
		return -1;
	}
	/* Without the directory on the host, cover /var/run itself (only in this namespace). */
	if (stat(SOCK_DIR, &st) < 0 && (mount("tmpfs", "/var/run", "tmpfs", 0, "mode=0755") < 0 ||
					mkdir(SOCK_DIR, 0755) < 0)) {
		snprintf(why, size, "tmpfs on /var/run: %s", strerror(errno));
		return -1;
	}
	if (mount("tmpfs", SOCK_DIR, "tmpfs", 0, "mode=0755") < 0) {
		snprintf(why, size, "tmpfs on %s: %s", SOCK_DIR, strerror(errno));
		return -1;
	}
	return 0;
}

static bool in_path(const char *bin)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (strchr(bin, '/'))
		return access(bin, X_OK) == 0;
	while (path && *path) {
		size_t n = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, bin);
		if (access(buf, X_OK) == 0)
			return true;
		path += n + (path[n] == ':');
	}
	return false;
}

static int skip_all(const char *why)
{
	/* TAP's plan for "nothing to run", which the harness counts as skipped. */
	printf("1..0 # SKIP %s\n", why);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_failure), cmocka_unit_test(test_open_set_get),
		cmocka_unit_test(test_allowed_ips),  cmocka_unit_test(test_remove_update_only),
		cmocka_unit_test(test_replace_many), cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_destroy),
	};
	const char *backend = getenv("NEXD_TEST_WG_BACKEND");
	const char *bin = getenv("NEXD_WIREGUARD_GO");
	char why[256];

	if (!backend || !*backend || strcmp(backend, "uapi") == 0) {
		ops = &nexd_wg_uapi_ops;
	} else if (strcmp(backend, "kernel") == 0) {
		ops = &nexd_wg_kernel_ops;
	} else {
		fprintf(stderr, "NEXD_TEST_WG_BACKEND=%s: expected uapi or kernel\n", backend);
		return 1;
	}
	if (geteuid() != 0)
		return skip_all("needs root (network namespaces, a tunnel device)");
	if (ops == &nexd_wg_uapi_ops && !in_path(bin && *bin ? bin : "wireguard-go"))
		return skip_all("wireguard-go not found");
	if (enter_namespaces(why, sizeof(why)) < 0)
		return skip_all(why);
	if (ops == &nexd_wg_kernel_ops && !nexd_wg_kernel_available())
		return skip_all("the kernel cannot create wireguard links");
	/* Output cut short by a reader must not stop the test before its teardown. */
	signal(SIGPIPE, SIG_IGN);
	/* Daemons that detach are reparented here, so they can be stopped and reaped. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	fprintf(stderr, "test_nexd_wg: backend %s\n", ops->name);
	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
