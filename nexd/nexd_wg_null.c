/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The null WireGuard backend, for benchmarks and tests only: it keeps the device in memory
 * and forwards nothing, so that a thousand nexd processes can run on one machine and the
 * control path (watch, reconciliation, route bookkeeping with installed_at) be measured
 * without a tunnel each.  With it nexd creates no interface and writes no kernel routes.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nexd/nexd_wg.h"

static int copy_peer(struct nexd_wg_device *dst, const struct nexd_wg_peer *src)
{
	struct nexd_wg_peer *p = nexd_wg_device_add_peer(dst);

	if (!p)
		return -ENOMEM;
	*p = *src;
	p->allowed_ips = NULL;
	p->n_allowed_ips = 0;
	p->flags = 0;
	for (size_t i = 0; i < src->n_allowed_ips; i++)
		if (nexd_wg_peer_add_allowed_ip(p, &src->allowed_ips[i]) < 0)
			return -ENOMEM;
	return 0;
}

static int null_open(struct nexd_wg *wg, struct nx_err *err)
{
	wg->priv = calloc(1, sizeof(struct nexd_wg_device));
	return wg->priv ? 0 : nx_err_set(err, ENOMEM, "out of memory");
}

static int null_get(struct nexd_wg *wg, struct nexd_wg_device *out, struct nx_err *err)
{
	const struct nexd_wg_device *dev = wg->priv;

	out->private_key = dev->private_key;
	out->has_private_key = dev->has_private_key;
	out->listen_port = dev->listen_port;
	for (size_t i = 0; i < dev->n_peers; i++)
		if (copy_peer(out, &dev->peers[i]) < 0)
			return nx_err_set(err, ENOMEM, "out of memory");
	return 0;
}

static struct nexd_wg_peer *find(struct nexd_wg_device *dev, const struct nx_wgkey *key)
{
	for (size_t i = 0; i < dev->n_peers; i++)
		if (nx_wgkey_eq(&dev->peers[i].public_key, key))
			return &dev->peers[i];
	return NULL;
}

static void remove_peer(struct nexd_wg_device *dev, struct nexd_wg_peer *p)
{
	free(p->allowed_ips);
	*p = dev->peers[--dev->n_peers];
}

/* A prefix belongs to one peer at a time, as in WireGuard: setting it moves it. */
static void take_prefix(struct nexd_wg_device *dev, const struct nexd_wg_peer *to,
			const struct nx_prefix *pfx)
{
	for (size_t i = 0; i < dev->n_peers; i++) {
		struct nexd_wg_peer *p = &dev->peers[i];

		if (p == to)
			continue;
		for (size_t j = 0; j < p->n_allowed_ips; j++)
			if (nx_prefix_cmp(&p->allowed_ips[j], pfx) == 0)
				p->allowed_ips[j] = p->allowed_ips[--p->n_allowed_ips];
	}
}

static int null_set(struct nexd_wg *wg, const struct nexd_wg_device *change, struct nx_err *err)
{
	struct nexd_wg_device *dev = wg->priv;

	if (change->has_private_key) {
		dev->private_key = change->private_key;
		dev->has_private_key = true;
	}
	if (change->listen_port)
		dev->listen_port = change->listen_port;
	if (change->replace_peers)
		while (dev->n_peers)
			remove_peer(dev, &dev->peers[0]);
	for (size_t i = 0; i < change->n_peers; i++) {
		const struct nexd_wg_peer *c = &change->peers[i];
		struct nexd_wg_peer *p = find(dev, &c->public_key);

		if (c->flags & NEXD_WG_PEER_REMOVE) {
			if (p)
				remove_peer(dev, p);
			continue;
		}
		if (!p) {
			if (c->flags & NEXD_WG_PEER_UPDATE_ONLY)
				continue;
			p = nexd_wg_device_add_peer(dev);
			if (!p)
				return nx_err_set(err, ENOMEM, "out of memory");
			p->public_key = c->public_key;
		}
		if (c->endpoint.family) {
			p->endpoint = c->endpoint;
			p->endpoint_port = c->endpoint_port;
		}
		p->keepalive_s = c->keepalive_s;
		if (c->flags & NEXD_WG_PEER_REPLACE_ALLOWED_IPS)
			p->n_allowed_ips = 0;
		for (size_t j = 0; j < c->n_allowed_ips; j++) {
			take_prefix(dev, p, &c->allowed_ips[j]);
			if (nexd_wg_peer_add_allowed_ip(p, &c->allowed_ips[j]) < 0)
				return nx_err_set(err, ENOMEM, "out of memory");
		}
	}
	return 0;
}

static void null_close(struct nexd_wg *wg, bool destroy)
{
	struct nexd_wg_device *dev = wg->priv;

	if (dev) {
		nexd_wg_device_clear(dev);
		free(dev);
	}
	wg->priv = NULL;
}

const struct nexd_wg_ops nexd_wg_null_ops = {
	.name = "null",
	.open = null_open,
	.get = null_get,
	.set = null_set,
	.close = null_close,
};
