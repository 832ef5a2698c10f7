/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The backend-independent half of nexd's WireGuard dataplane: the device model's memory and
 * the calls every caller goes through, so each backend call is logged the same way.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nexd/nexd.h"
#include "nexd/nexd_wg.h"

void nexd_wg_device_clear(struct nexd_wg_device *dev)
{
	for (size_t i = 0; i < dev->n_peers; i++)
		free(dev->peers[i].allowed_ips);
	free(dev->peers);
	nx_wgkey_wipe(&dev->private_key);
	memset(dev, 0, sizeof(*dev));
}

struct nexd_wg_peer *nexd_wg_device_add_peer(struct nexd_wg_device *dev)
{
	struct nexd_wg_peer *peers;

	/* Grow by doubling: get() of 10,000 peers must not be quadratic. */
	if ((dev->n_peers & (dev->n_peers - 1)) == 0) {
		size_t cap = dev->n_peers ? dev->n_peers * 2 : 1;

		peers = realloc(dev->peers, cap * sizeof(*peers));
		if (!peers)
			return NULL;
		dev->peers = peers;
	}
	memset(&dev->peers[dev->n_peers], 0, sizeof(dev->peers[0]));
	return &dev->peers[dev->n_peers++];
}

int nexd_wg_peer_add_allowed_ip(struct nexd_wg_peer *peer, const struct nx_prefix *p)
{
	struct nx_prefix *ips;

	size_t n = peer->n_allowed_ips;

	/* Room for 4 at first (a tunnel address of each family, a probe address, a prefix),
	 * doubled at each power of two from there. */
	if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
		size_t cap = n ? n * 2 : 4;

		ips = realloc(peer->allowed_ips, cap * sizeof(*ips));
		if (!ips)
			return -ENOMEM;
		peer->allowed_ips = ips;
	}
	peer->allowed_ips[peer->n_allowed_ips++] = *p;
	return 0;
}

int nexd_wg_open(struct nexd_wg *wg, const struct nexd_wg_ops *ops, const char *ifname,
		 struct nx_err *err)
{
	int rc;

	memset(wg, 0, sizeof(*wg));
	if (strlen(ifname) >= sizeof(wg->ifname))
		return nx_err_set(err, EINVAL, "interface name \"%s\" is too long", ifname);
	memcpy(wg->ifname, ifname, strlen(ifname) + 1);
	wg->ops = ops;
	rc = ops->open(wg, err);
	if (rc < 0)
		wg->ops = NULL;
	else
		nx_debug(&dbg_nexd_dataplane, "wireguard: %s opened with the %s backend", ifname,
			 ops->name);
	return rc;
}

int nexd_wg_get(struct nexd_wg *wg, struct nexd_wg_device *out, struct nx_err *err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (!wg->ops)
		return nx_err_set(err, ENODEV, "no WireGuard interface is open");
	rc = wg->ops->get(wg, out, err);
	if (rc < 0)
		nexd_wg_device_clear(out);
	return rc;
}

int nexd_wg_set(struct nexd_wg *wg, const struct nexd_wg_device *change, struct nx_err *err)
{
	int rc;

	if (!wg->ops)
		return nx_err_set(err, ENODEV, "no WireGuard interface is open");
	rc = wg->ops->set(wg, change, err);
	nx_debug(&dbg_nexd_dataplane, "wireguard: %s: set %zu peer(s): %s", wg->ifname,
		 change->n_peers, rc < 0 && err ? err->msg : "ok");
	return rc;
}

void nexd_wg_close(struct nexd_wg *wg, bool destroy)
{
	if (!wg->ops)
		return;
	nx_debug(&dbg_nexd_dataplane, "wireguard: %s closed%s", wg->ifname,
		 destroy ? ", interface removed" : ", interface left running");
	wg->ops->close(wg, destroy);
	wg->ops = NULL;
}
