/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A small wg(8)-like front end to nexd's kernel WireGuard backend, so tests can program an
 * interface exactly the way nexd does (nexd_wg_open/set/get/close) without the whole agent:
 *
 *   nexd_wg_tool set IFNAME [private-key FILE] [listen-port N] [replace-peers]
 *                [peer KEY [remove] [update-only] [endpoint ADDR:PORT]
 *                [allowed-ips P[,P...]] [replace-allowed-ips] [persistent-keepalive N]]...
 *   nexd_wg_tool show IFNAME
 *   nexd_wg_tool del IFNAME
 *
 * "set" creates the interface when it does not exist and adopts it when it does.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nexd/nexd_wg.h"

static int usage(void)
{
	fprintf(stderr, "usage: nexd_wg_tool set|show|del IFNAME [ARGS...]\n");
	return 2;
}

static int parse_u16(const char *s, uint16_t *out, struct nx_err *err)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > 65535 || s[0] == '-')
		return nx_err_set(err, EINVAL, "\"%s\" is not a number from 0 to 65535", s);
	*out = (uint16_t)v;
	return 0;
}

static int read_key_file(const char *path, struct nx_wgkey *key, struct nx_err *err)
{
	char buf[128];
	size_t n;
	FILE *f;
	int rc;

	f = fopen(path, "r");
	if (!f)
		return nx_err_set(err, errno, "%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	rc = nx_wgkey_from_base64(buf, key, err);
	memset(buf, 0, sizeof(buf));
	return rc;
}

static int parse_allowed_ips(struct nexd_wg_peer *peer, const char *list, struct nx_err *err)
{
	const char *s = list, *comma;
	struct nx_prefix p;
	int rc;

	while (*s) {
		comma = strchr(s, ',');
		rc = nx_prefix_parse_n(s, comma ? (size_t)(comma - s) : strlen(s), &p,
				       NX_PREFIX_ALLOW_HOST, err);
		if (rc < 0)
			return rc;
		nx_prefix_normalize(&p);
		rc = nexd_wg_peer_add_allowed_ip(peer, &p);
		if (rc < 0)
			return nx_err_set(err, -rc, "out of memory");
		if (!comma)
			break;
		s = comma + 1;
	}
	return 0;
}

static int parse_set(int argc, char **argv, struct nexd_wg_device *dev, struct nx_err *err)
{
	struct nexd_wg_peer *peer = NULL;
	int rc = 0;

	for (int i = 0; i < argc; i++) {
		const char *kw = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes_value = true;

		if (!strcmp(kw, "replace-peers")) {
			dev->replace_peers = true;
			takes_value = false;
		} else if (peer && !strcmp(kw, "remove")) {
			peer->flags |= NEXD_WG_PEER_REMOVE;
			takes_value = false;
		} else if (peer && !strcmp(kw, "update-only")) {
			peer->flags |= NEXD_WG_PEER_UPDATE_ONLY;
			takes_value = false;
		} else if (peer && !strcmp(kw, "replace-allowed-ips")) {
			peer->flags |= NEXD_WG_PEER_REPLACE_ALLOWED_IPS;
			takes_value = false;
		} else if (!val) {
			return nx_err_set(err, EINVAL, "\"%s\" wants a value", kw);
		} else if (!strcmp(kw, "private-key")) {
			rc = read_key_file(val, &dev->private_key, err);
			dev->has_private_key = rc == 0;
		} else if (!strcmp(kw, "listen-port")) {
			rc = parse_u16(val, &dev->listen_port, err);
		} else if (!strcmp(kw, "peer")) {
			peer = nexd_wg_device_add_peer(dev);
			if (!peer)
				return nx_err_set(err, ENOMEM, "out of memory");
			rc = nx_wgkey_from_base64(val, &peer->public_key, err);
		} else if (peer && !strcmp(kw, "endpoint")) {
			rc = nx_endpoint_parse(val, &peer->endpoint, &peer->endpoint_port, err);
		} else if (peer && !strcmp(kw, "allowed-ips")) {
			rc = parse_allowed_ips(peer, val, err);
		} else if (peer && !strcmp(kw, "persistent-keepalive")) {
			rc = parse_u16(val, &peer->keepalive_s, err);
		} else {
			return nx_err_set(err, EINVAL, "unknown keyword \"%s\"", kw);
		}
		if (rc < 0)
			return rc;
		if (takes_value)
			i++;
	}
	return 0;
}

static void show(const char *ifname, const struct nexd_wg_device *dev)
{
	char b64[NX_WG_KEY_B64_LEN], buf[NX_ENDPOINT_STRLEN];
	struct nx_wgkey pub;

	printf("interface: %s\n", ifname);
	if (dev->has_private_key &&
	    nx_wgkey_public_from_private(&dev->private_key, &pub, NULL) == 0) {
		nx_wgkey_to_base64(&pub, b64);
		printf("  public key: %s\n", b64);
	}
	printf("  listening port: %u\n", dev->listen_port);
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct nexd_wg_peer *p = &dev->peers[i];

		nx_wgkey_to_base64(&p->public_key, b64);
		printf("peer: %s\n", b64);
		if (p->endpoint.family != AF_UNSPEC)
			printf("  endpoint: %s\n",
			       nx_endpoint_format(&p->endpoint, p->endpoint_port, buf,
						  sizeof(buf)));
		printf("  allowed ips:");
		for (size_t j = 0; j < p->n_allowed_ips; j++)
			printf("%s%s", j ? ", " : " ",
			       nx_prefix_format(&p->allowed_ips[j], buf, sizeof(buf)));
		printf("%s\n", p->n_allowed_ips ? "" : " (none)");
		printf("  latest handshake: %lld\n", (long long)p->last_handshake_s);
		printf("  transfer: %llu received, %llu sent\n", (unsigned long long)p->rx_bytes,
		       (unsigned long long)p->tx_bytes);
		if (p->keepalive_s)
			printf("  persistent keepalive: every %u seconds\n", p->keepalive_s);
	}
}

int main(int argc, char **argv)
{
	struct nexd_wg_device dev = { 0 };
	struct nx_err err = { 0 };
	struct nexd_wg wg;
	const char *cmd, *ifname;
	int rc, argi = 1;

	if (argc - argi < 2)
		return usage();
	cmd = argv[argi];
	ifname = argv[argi + 1];
	argi += 2;
	if (strcmp(cmd, "set") && strcmp(cmd, "show") && strcmp(cmd, "del"))
		return usage();
	if (!strcmp(cmd, "set")) {
		rc = parse_set(argc - argi, argv + argi, &dev, &err);
		if (rc < 0)
			goto out;
	} else if (argc != argi) {
		return usage();
	}

	rc = nexd_wg_open(&wg, &nexd_wg_kernel_ops, ifname, &err);
	if (rc < 0)
		goto out;
	if (!strcmp(cmd, "set")) {
		rc = nexd_wg_set(&wg, &dev, &err);
	} else if (!strcmp(cmd, "show")) {
		rc = nexd_wg_get(&wg, &dev, &err);
		if (rc == 0)
			show(ifname, &dev);
	}
	nexd_wg_close(&wg, !strcmp(cmd, "del"));
out:
	nexd_wg_device_clear(&dev);
	if (rc < 0) {
		fprintf(stderr, "nexd_wg_tool: %s %s: %s\n", cmd, ifname,
			err.msg[0] ? err.msg : strerror(-rc));
		return 1;
	}
	return 0;
}
