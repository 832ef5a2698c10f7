/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The tunnel interface: which WireGuard backend carries it, its key and port, its tunnel
 * addresses and link state, and when the dataplane is reconciled (soon after a change, and
 * every few seconds so that drift made by someone else is repaired).  A stopped nexd leaves
 * the interface forwarding unless flush-on-exit says otherwise.
 */
#include "config.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "lib/strutil.h"
#include "nexd/nexd.h"
#include "nexd/nexd_probe.h"

#define RECONCILE_INTERVAL_MS 2000
#define TUNNEL_MTU	      1420

/* The interface or the WireGuard behind it is gone (wireguard-go killed, link deleted by
 * hand): set it up again; the next reconciliation puts the peers and routes back. */
static void dplane_restart(struct nexd *nexd)
{
	struct nx_err err = { 0 };

	nx_warn("dataplane: %s lost, setting it up again", nexd->cfg.ifname);
	nexd_wg_close(&nexd->wg, false);
	nexd->dplane_up = false;
	if (nexd_dplane_up(nexd, &err) < 0)
		nx_warn("dataplane: %s", err.msg);
}

static void reconcile_now(struct nexd *nexd)
{
	struct nx_err err = { 0 };
	int rc;

	nexd->full_pending = false;
	nexd_delta_discard(nexd);
	rc = nexd_reconcile(nexd, &err);

	if (rc == -ENODEV || rc == -ECONNREFUSED || rc == -ENOENT)
		dplane_restart(nexd);
	else if (rc < 0)
		nx_warn("dataplane: %s", err.msg);
}

static void reconcile_timer_fired(struct nx_timer *t, void *arg)
{
	struct nexd *nexd = arg;

	/* Without a tunnel nothing can drift: changes alone are written. */
	if (!nexd_dplane_null(nexd) || nexd->full_pending)
		reconcile_now(nexd);
	if (nexd_local_endpoints_refresh(nexd)) {
		nexd_ctrl_addresses_changed(nexd);
		nexd_nat_recheck_soon(nexd);
	}
	/* A path decision waiting on time is taken within a probe interval. */
	nx_timer_arm(t, nexd->path_pending ? NEXD_PROBE_FAST_MS : RECONCILE_INTERVAL_MS);
}

static void reconcile_deferred(struct nx_defer *d, void *arg)
{
	reconcile_now(arg);
}

bool nexd_dplane_null(const struct nexd *nexd)
{
	return nexd->wg.ops == &nexd_wg_null_ops;
}

void nexd_dplane_changed(struct nexd *nexd)
{
	if (!nexd->dplane_up)
		return;
	nexd->full_pending = true;
	nx_defer_schedule(&nexd->reconcile_soon);
}

static const struct nexd_wg_ops *choose_backend(const struct nexd *nexd)
{
	switch (nexd->cfg.backend) {
	case NEXD_WG_NULL:
		return &nexd_wg_null_ops;
	case NEXD_WG_KERNEL:
		return &nexd_wg_kernel_ops;
	case NEXD_WG_UAPI:
		return &nexd_wg_uapi_ops;
	case NEXD_WG_AUTO:
	default:
		return nexd_wg_kernel_available() ? &nexd_wg_kernel_ops : &nexd_wg_uapi_ops;
	}
}

/* The key and port: set only when they differ, so an adopted interface keeps its sessions. */
/* A port for a device that was given none: in the dynamic range, so that it is chosen by
 * nexd and known before the link is up (the kernel picks one only when the link comes up). */
static uint16_t random_port(void)
{
	uint16_t r = 0;

	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint16_t)nx_now_ms();
	return (uint16_t)(49152 + r % (65535 - 49152));
}

static int setup_device(struct nexd *nexd, struct nx_err *err)
{
	struct nexd_wg_device cur, change = { 0 };
	uint16_t port = nexd->cfg.listen_port ? nexd->cfg.listen_port : nexd->id.listen_port;
	bool chosen = false;
	int rc;

	rc = nexd_wg_get(&nexd->wg, &cur, err);
	if (rc < 0)
		return rc;
	if (!cur.has_private_key || !nx_wgkey_eq(&cur.private_key, &nexd->id.private_key)) {
		change.private_key = nexd->id.private_key;
		change.has_private_key = true;
	}
	if (!port && !cur.listen_port) {
		port = random_port();
		chosen = true;
	}
	if (port && port != cur.listen_port)
		change.listen_port = port;
	nexd_wg_device_clear(&cur);
	for (int tries = 0; change.has_private_key || change.listen_port; tries++) {
		rc = nexd_wg_set(&nexd->wg, &change, err);
		/* A port of our own choosing that is taken: choose again. */
		if (rc == -EADDRINUSE && chosen && tries < 8) {
			change.listen_port = random_port();
			continue;
		}
		nx_wgkey_wipe(&change.private_key);
		if (rc < 0)
			return rc;
		break;
	}
	/* The port in use is kept for restarts. */
	rc = nexd_wg_get(&nexd->wg, &cur, err);
	if (rc < 0)
		return rc;
	if (cur.listen_port != nexd->id.listen_port) {
		nexd->id.listen_port = cur.listen_port;
		if (nexd->id.device_id[0] &&
		    nexd_identity_save(nexd->daemon->state_dir, &nexd->id, err) < 0)
			nx_warn("cannot keep the listen port: %s", err->msg);
	}
	nexd_wg_device_clear(&cur);
	return 0;
}

int nexd_dplane_set_key(struct nexd *nexd, struct nx_err *err)
{
	struct nexd_wg_device change = { .private_key = nexd->id.private_key,
					 .has_private_key = true };
	int rc;

	if (!nexd->dplane_up)
		return 0; /* setup_device gives it when the interface comes up */
	rc = nexd_wg_set(&nexd->wg, &change, err);
	nx_wgkey_wipe(&change.private_key);
	nexd_dplane_changed(nexd); /* the probe address follows the public key */
	return rc;
}

int nexd_dplane_up(struct nexd *nexd, struct nx_err *err)
{
	const struct nexd_wg_ops *ops;
	int rc;

	if (nexd->dplane_up)
		return 0;
	if (!nexd->rtnl && !(nexd->rtnl = nexd_rtnl_new(err)))
		return -EIO;
	ops = choose_backend(nexd);
	rc = nexd_wg_open(&nexd->wg, ops, nexd->cfg.ifname, err);
	if (rc < 0)
		return rc;
	rc = setup_device(nexd, err);
	if (rc < 0)
		goto fail;
	if (!nexd_dplane_null(nexd)) {
		rc = nexd_rtnl_link_index(nexd->rtnl, nexd->cfg.ifname);
		if (rc <= 0) {
			rc = nx_err_set(err, ENODEV, "interface %s vanished", nexd->cfg.ifname);
			goto fail;
		}
		nexd->ifindex = rc;
		rc = nexd_rtnl_link_up(nexd->rtnl, nexd->ifindex, TUNNEL_MTU, err);
		if (rc < 0)
			goto fail;
	}
	nx_notice("dataplane: %s up (%s backend, port %u)", nexd->cfg.ifname, ops->name,
		  nexd->id.listen_port);
	nexd->dplane_up = true;
	if (!nexd->reconcile_timer_ready) {
		nx_timer_init(nexd->daemon->loop, &nexd->reconcile_timer, reconcile_timer_fired,
			      nexd);
		nx_defer_init(nexd->daemon->loop, &nexd->reconcile_soon, reconcile_deferred, nexd);
		nexd->reconcile_timer_ready = true;
	}
	nexd_local_endpoints_refresh(nexd);
	nexd_dplane_changed(nexd);
	nx_timer_arm(&nexd->reconcile_timer, RECONCILE_INTERVAL_MS);
	/* Nothing to discover or probe without a tunnel. */
	if (nexd_dplane_null(nexd))
		return 0;
	if (nexd_nat_start(nexd, err) < 0)
		nx_warn("dataplane: NAT discovery off: %s", err->msg);
	nx_err_clear(err);
	if (nexd_probe_start(nexd, err) < 0)
		nx_warn("dataplane: path probes off: %s", err->msg);
	nx_err_clear(err);
	return 0;
fail:
	nexd_wg_close(&nexd->wg, false);
	return rc;
}

void nexd_dplane_down(struct nexd *nexd)
{
	nexd_nat_stop(nexd);
	nexd_probe_stop(nexd);
	if (nexd->reconcile_timer_ready) {
		nx_timer_fini(&nexd->reconcile_timer);
		nx_defer_fini(&nexd->reconcile_soon);
		nexd->reconcile_timer_ready = false;
	}
	nexd_delta_free(nexd);
	if (nexd->dplane_up) {
		/* Removing the link takes its addresses and routes with it. */
		nexd_wg_close(&nexd->wg, nexd->cfg.flush_on_exit);
		if (nexd->cfg.flush_on_exit)
			nexd_relay_remove(nexd);
		nexd->dplane_up = false;
		if (nexd->cfg.flush_on_exit)
			nx_notice("dataplane: %s removed (flush-on-exit)", nexd->cfg.ifname);
		else
			nx_notice("dataplane: %s left forwarding with %zu route(s)",
				  nexd->cfg.ifname, nexd->n_routes);
	}
	nexd_rtnl_free(nexd->rtnl);
	nexd->rtnl = NULL;
	free(nexd->routes);
	nexd->routes = NULL;
	nexd->n_routes = 0;
}

static int prefix_len_of(const struct sockaddr *mask)
{
	struct sockaddr_storage ss;
	const unsigned char *b;
	size_t n;
	int len = 0;

	if (!mask)
		return -1;
	/* Copied: the sockaddr getifaddrs() hands out need not be aligned for the cast. */
	if (mask->sa_family == AF_INET) {
		memcpy(&ss, mask, sizeof(struct sockaddr_in));
		b = (const unsigned char *)&((const struct sockaddr_in *)&ss)->sin_addr;
		n = 4;
	} else if (mask->sa_family == AF_INET6) {
		memcpy(&ss, mask, sizeof(struct sockaddr_in6));
		b = (const unsigned char *)&((const struct sockaddr_in6 *)&ss)->sin6_addr;
		n = 16;
	} else {
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		len += __builtin_popcount(b[i]);
	return len;
}

bool nexd_local_endpoints_refresh(struct nexd *nexd)
{
	struct nexd_endpoint eps[NEXD_MAX_ENDPOINTS];
	struct nx_prefix nets[NEXD_MAX_ENDPOINTS];
	struct ifaddrs *ifa_list, *ifa;
	size_t n = 0;
	bool changed;

	if (getifaddrs(&ifa_list) < 0)
		return false;
	memset(eps, 0, sizeof(eps));
	memset(nets, 0, sizeof(nets));
	for (ifa = ifa_list; ifa && n < NEXD_MAX_ENDPOINTS; ifa = ifa->ifa_next) {
		struct sockaddr_storage ss = { 0 };
		struct nx_addr a;
		int len;

		if (!ifa->ifa_addr || !(ifa->ifa_flags & IFF_UP) ||
		    (ifa->ifa_flags & IFF_LOOPBACK) || strcmp(ifa->ifa_name, nexd->cfg.ifname) == 0)
			continue;
		if (ifa->ifa_addr->sa_family != AF_INET && ifa->ifa_addr->sa_family != AF_INET6)
			continue;
		memcpy(&ss, ifa->ifa_addr,
		       ifa->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
							   : sizeof(struct sockaddr_in6));
		if (nx_addr_from_sockaddr(&ss, &a, NULL) < 0)
			continue;
		if (a.family == AF_INET6 &&
		    (IN6_IS_ADDR_LINKLOCAL(&a.v6) || IN6_IS_ADDR_LOOPBACK(&a.v6)))
			continue;
		len = prefix_len_of(ifa->ifa_netmask);
		nx_strlcpy(eps[n].source, "local", sizeof(eps[n].source));
		eps[n].addr = a;
		eps[n].port = nexd->id.listen_port;
		nets[n].addr = a;
		nets[n].len = (uint8_t)(len < 0 ? (a.family == AF_INET ? 32 : 128) : len);
		nx_prefix_normalize(&nets[n]);
		n++;
	}
	freeifaddrs(ifa_list);
	changed = n != nexd->n_local_endpoints ||
		  memcmp(eps, nexd->local_endpoints, n * sizeof(eps[0])) != 0;
	memcpy(nexd->local_endpoints, eps, sizeof(eps));
	memcpy(nexd->local_nets, nets, sizeof(nets));
	nexd->n_local_endpoints = n;
	return changed;
}
