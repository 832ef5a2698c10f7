/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd's show commands: status, peers and routes, with fixed JSON keys for programs and
 * plain text for people.  They only read the daemon's state; nothing is refreshed here.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/jsonutil.h"
#include "lib/nb_cli.h"
#include "nexd/nexd.h"
#include "nexd/nexd_probe.h"

/* WireGuard rejects a session older than this: without a newer handshake the peer is not
 * proven reachable. */
#define HANDSHAKE_HEALTHY_S 180

static void add_addr(struct json_object *o, const char *key, const struct nx_addr *a)
{
	char buf[NX_ADDR_STRLEN];

	if (a->family)
		nx_json_object_add_string(o, key, nx_addr_format(a, buf, sizeof(buf)));
	else
		nx_json_object_add_null(o, key);
}

static void print_json(struct nx_vty *vty, struct json_object *o)
{
	char *s = nx_json_to_string(o, NX_JSON_PLAIN);

	nx_vty_out(vty, "%s\n", s ? s : "{}");
	free(s);
	json_object_put(o);
}

static const char *addr_str(const struct nx_addr *a, char *buf, size_t size)
{
	return a->family ? nx_addr_format(a, buf, size) : "-";
}

/* --- status -------------------------------------------------------------------------------- */

static struct json_object *status_json(const struct nexd *nexd)
{
	struct json_object *o = json_object_new_object(), *eps = json_object_new_array(),
			   *ctl = json_object_new_object();
	char buf[NX_ENDPOINT_STRLEN], key[NX_WG_KEY_B64_LEN];

	nx_json_object_add_string(o, "state", nexd_state_name(nexd->state));
	nx_json_object_add_string(o, "message", nexd->state_msg);
	if (nexd->id.device_id[0])
		nx_json_object_add_string(o, "device_id", nexd->id.device_id);
	else
		nx_json_object_add_null(o, "device_id");
	if (nexd->id.vpc_id[0])
		nx_json_object_add_string(o, "vpc_id", nexd->id.vpc_id);
	else
		nx_json_object_add_null(o, "vpc_id");
	if (nexd->have_identity) {
		nx_wgkey_to_base64(&nexd->id.public_key, key);
		nx_json_object_add_string(o, "public_key", key);
	} else {
		nx_json_object_add_null(o, "public_key");
	}
	nx_json_object_add_string(o, "interface", nexd->cfg.ifname);
	nx_json_object_add_int64(o, "listen_port", nexd->id.listen_port);
	add_addr(o, "tunnel_ipv4", &nexd->id.tunnel_ipv4);
	add_addr(o, "tunnel_ipv6", &nexd->id.tunnel_ipv6);
	for (size_t i = 0; i < nexd->n_local_endpoints; i++) {
		const struct nexd_endpoint *e = &nexd->local_endpoints[i];
		struct json_object *ep = json_object_new_object();

		nx_json_object_add_string(ep, "source", e->source);
		nx_json_object_add_string(ep, "address",
					  nx_endpoint_format(&e->addr, e->port, buf, sizeof(buf)));
		json_object_array_add(eps, ep);
	}
	if (nexd->nat_state.known && nexd->nat_state.reflexive.family) {
		struct json_object *ep = json_object_new_object();

		nx_json_object_add_string(ep, "source", nexd->nat_state.server);
		nx_json_object_add_string(ep, "address",
					  nx_endpoint_format(&nexd->nat_state.reflexive,
							     nexd->nat_state.reflexive_port, buf,
							     sizeof(buf)));
		json_object_array_add(eps, ep);
	}
	json_object_object_add(o, "endpoints", eps);
	/* Not known until NAT discovery has answered. */
	if (nexd->nat_state.known)
		nx_json_object_add_bool(o, "symmetric_nat", nexd->nat_state.symmetric);
	else
		nx_json_object_add_null(o, "symmetric_nat");
	nx_json_object_add_string(ctl, "url", nexd_ctrl_service(nexd));
	nx_json_object_add_bool(ctl, "connected", nexd_ctrl_connected(nexd));
	nx_json_object_add_int64(ctl, "revision", nexd_ctrl_revision(nexd));
	json_object_object_add(o, "controller", ctl);
	return o;
}

NX_DEFUN(show_nexodus_status, "show nexodus status [json]",
	 "Show running system information\nNexodus agent\nAgent status\nJSON output\n")
{
	const struct nexd *nexd = vty->daemon;
	char a4[NX_ADDR_STRLEN], a6[NX_ADDR_STRLEN], key[NX_WG_KEY_B64_LEN] = "-";
	char ep[NX_ENDPOINT_STRLEN];

	if (nx_cmd_arg_has(argc, argv, "json")) {
		print_json(vty, status_json(nexd));
		return NX_CMD_SUCCESS;
	}
	if (nexd->have_identity)
		nx_wgkey_to_base64(&nexd->id.public_key, key);
	nx_vty_out(vty, "State:       %s%s%s%s\n", nexd_state_name(nexd->state),
		   nexd->state_msg[0] ? " (" : "", nexd->state_msg, nexd->state_msg[0] ? ")" : "");
	nx_vty_out(vty, "Device:      %s\n", nexd->id.device_id[0] ? nexd->id.device_id : "-");
	nx_vty_out(vty, "VPC:         %s\n", nexd->id.vpc_id[0] ? nexd->id.vpc_id : "-");
	nx_vty_out(vty, "Public key:  %s\n", key);
	nx_vty_out(vty, "Interface:   %s, port %u\n", nexd->cfg.ifname, nexd->id.listen_port);
	nx_vty_out(vty, "Tunnel:      %s %s\n", addr_str(&nexd->id.tunnel_ipv4, a4, sizeof(a4)),
		   addr_str(&nexd->id.tunnel_ipv6, a6, sizeof(a6)));
	if (nexd->nat_state.known)
		nx_vty_out(vty, "NAT:         %s, reflexive %s (%s)\n",
			   nexd->nat_state.single_server ? "type unknown (one STUN server answered)"
			   : nexd->nat_state.symmetric	 ? "symmetric"
							 : "endpoint-independent mapping",
			   nx_endpoint_format(&nexd->nat_state.reflexive,
					      nexd->nat_state.reflexive_port, ep, sizeof(ep)),
			   nexd->nat_state.server);
	else
		nx_vty_out(vty, "NAT:         unknown\n");
	nx_vty_out(vty, "Service:     %s (%s, revision %" PRId64 ")\n",
		   nexd_ctrl_service(nexd)[0] ? nexd_ctrl_service(nexd) : "-",
		   nexd_ctrl_connected(nexd) ? "connected" : "not connected",
		   nexd_ctrl_revision(nexd));
	return NX_CMD_SUCCESS;
}

/* --- peers --------------------------------------------------------------------------------- */

static int64_t handshake_age(const struct nexd_peer *p)
{
	time_t now = time(NULL);

	return p->last_handshake_s > 0 && now >= p->last_handshake_s ? now - p->last_handshake_s
								     : -1;
}

/* Healthy: the path in use answers probes (the relay's own path when traffic goes through
 * it); without probes (null backend), a recent WireGuard handshake. */
static bool peer_healthy(const struct nexd *nexd, const struct nexd_peer *p)
{
	struct nexd_probe_result r;
	const struct nx_wgkey *key = p->via_relay ? &p->relay_key : &p->dev.public_key;
	int64_t age = handshake_age(p);

	if (!p->valid || p->shadowed || !p->in_dataplane)
		return false;
	if (nexd_probe_get(nexd, key, &r))
		return r.ok;
	return age >= 0 && age < HANDSHAKE_HEALTHY_S;
}

static bool vpc_has_relay(struct nexd *nexd)
{
	for (size_t i = 0; i < nexd_peers_count(nexd->peers); i++) {
		const struct nexd_peer *p = nexd_peers_at(nexd->peers, i);

		if (p->valid && p->dev.relay)
			return true;
	}
	return false;
}

/* Why a peer cannot be reached, in words, for people reading show nexodus peers. */
static const char *unreachable_why(struct nexd *nexd, const struct nexd_peer *p)
{
	bool relay = vpc_has_relay(nexd);

	if (!p->dev.n_endpoints)
		return "it reported no address to reach it at";
	if (p->via_relay)
		return "the relay it is routed through does not answer";
	if (p->dev.symmetric_nat && nexd->nat_state.known && nexd->nat_state.symmetric)
		return relay ? "both sides behind symmetric NAT; waiting for a relay path"
			     : "both sides behind symmetric NAT and no relay in this VPC";
	if (!relay)
		return "no answer on the direct path, and no relay in this VPC";
	return "no answer on the direct path yet";
}

static struct json_object *peer_json(struct nexd *nexd, const struct nexd_peer *p)
{
	struct json_object *o = json_object_new_object(), *ips = json_object_new_array();
	struct nexd_probe_result r;
	char buf[NX_ENDPOINT_STRLEN], key[NX_WG_KEY_B64_LEN];
	int64_t age = handshake_age(p);

	nx_wgkey_to_base64(&p->dev.public_key, key);
	nx_json_object_add_string(o, "device_id", p->dev.id);
	nx_json_object_add_string(o, "hostname", p->dev.hostname);
	nx_json_object_add_string(o, "public_key", key);
	add_addr(o, "tunnel_ipv4", &p->dev.tunnel_ipv4);
	add_addr(o, "tunnel_ipv6", &p->dev.tunnel_ipv6);
	for (size_t i = 0; i < nexd->n_routes; i++)
		if (nx_wgkey_eq(&nexd->routes[i].peer, &p->dev.public_key))
			json_object_array_add(ips,
					      json_object_new_string(nx_prefix_format(
						      &nexd->routes[i].prefix, buf, sizeof(buf))));
	json_object_object_add(o, "allowed_ips", ips);
	if (p->endpoint.family)
		nx_json_object_add_string(
			o, "endpoint",
			nx_endpoint_format(&p->endpoint, p->endpoint_port, buf, sizeof(buf)));
	else
		nx_json_object_add_null(o, "endpoint");
	nx_json_object_add_string(o, "path", p->valid ? p->path : "none");
	nx_json_object_add_bool(o, "healthy", peer_healthy(nexd, p));
	if (nexd_probe_get(nexd, &p->dev.public_key, &r) && r.ever)
		json_object_object_add(o, "probe_rtt_ms",
				       json_object_new_double(r.rtt_us / 1000.0));
	else
		nx_json_object_add_null(o, "probe_rtt_ms");
	if (age >= 0)
		nx_json_object_add_int64(o, "latest_handshake_age_s", age);
	else
		nx_json_object_add_null(o, "latest_handshake_age_s");
	nx_json_object_add_uint64(o, "rx_bytes", p->rx_bytes);
	nx_json_object_add_uint64(o, "tx_bytes", p->tx_bytes);
	if (!p->valid)
		nx_json_object_add_string(o, "ignored", p->reason ? p->reason : "");
	else if (p->shadowed)
		nx_json_object_add_string(o, "ignored",
					  "its public key is also used by a newer device");
	return o;
}

NX_DEFUN(show_nexodus_peers, "show nexodus peers [json]",
	 "Show running system information\nNexodus agent\nThe other devices of the VPC\n"
	 "JSON output\n")
{
	struct nexd *nexd = vty->daemon;
	size_t n = nexd->peers ? nexd_peers_count(nexd->peers) : 0;
	char a4[NX_ADDR_STRLEN], ep[NX_ENDPOINT_STRLEN];

	if (nx_cmd_arg_has(argc, argv, "json")) {
		struct json_object *o = json_object_new_object(), *list = json_object_new_array();

		for (size_t i = 0; i < n; i++)
			json_object_array_add(list, peer_json(nexd, nexd_peers_at(nexd->peers, i)));
		json_object_object_add(o, "peers", list);
		print_json(vty, o);
		return NX_CMD_SUCCESS;
	}
	nx_vty_out(vty, "%-20s %-15s %-24s %-12s %-8s %s\n", "Hostname", "Tunnel IPv4", "Endpoint",
		   "Path", "Healthy", "Handshake");
	for (size_t i = 0; i < n; i++) {
		const struct nexd_peer *p = nexd_peers_at(nexd->peers, i);
		int64_t age = handshake_age(p);
		char hs[32];

		if (age >= 0)
			snprintf(hs, sizeof(hs), "%" PRId64 "s ago", age);
		else
			snprintf(hs, sizeof(hs), "never");
		nx_vty_out(vty, "%-20.20s %-15s %-24s %-12s %-8s %s\n", p->dev.hostname,
			   addr_str(&p->dev.tunnel_ipv4, a4, sizeof(a4)),
			   p->endpoint.family ? nx_endpoint_format(&p->endpoint, p->endpoint_port,
								   ep, sizeof(ep))
					      : "-",
			   p->valid ? p->path : "none", peer_healthy(nexd, p) ? "yes" : "no", hs);
		if (!p->valid)
			nx_vty_out(vty, "  ignored: %s\n", p->reason ? p->reason : "");
		else if (!peer_healthy(nexd, p) && nexd->probe)
			nx_vty_out(vty, "  unreachable: %s\n", unreachable_why(nexd, p));
	}
	return NX_CMD_SUCCESS;
}

/* --- routes -------------------------------------------------------------------------------- */

NX_DEFUN(show_nexodus_routes, "show nexodus routes [<A.B.C.D/M|X:X::X:X/M>$prefix] [json]",
	 "Show running system information\nNexodus agent\nRoutes through the tunnel\n"
	 "Only the route of this IPv4 prefix\nOnly the route of this IPv6 prefix\nJSON output\n")
{
	const struct nexd *nexd = vty->daemon;
	const char *only = nx_cmd_arg_get(argc, argv, "prefix");
	const struct nexd_route *first = nexd->routes, *end = nexd->routes + nexd->n_routes;
	char pfx[NX_PREFIX_STRLEN], key[NX_WG_KEY_B64_LEN];

	if (only) { /* one lookup: what a poller asks for, not the whole table */
		struct nx_prefix x;
		struct nx_err err = { 0 };

		if (nx_prefix_parse(only, &x, 0, &err) < 0) {
			nx_vty_out(vty, "%% %s\n", err.msg);
			return NX_CMD_WARNING;
		}
		nx_prefix_normalize(&x);
		first = nexd_route_find(nexd, &x);
		end = first ? first + 1 : NULL;
	}
	if (nx_cmd_arg_has(argc, argv, "json")) {
		struct json_object *o = json_object_new_object(), *list = json_object_new_array();

		for (const struct nexd_route *r = first; r && r < end; r++) {
			struct json_object *ro = json_object_new_object();

			nx_wgkey_to_base64(&r->peer, key);
			nx_json_object_add_string(ro, "prefix",
						  nx_prefix_format(&r->prefix, pfx, sizeof(pfx)));
			nx_json_object_add_string(ro, "peer_public_key", key);
			nx_json_object_add_bool(ro, "installed", r->installed);
			nx_json_object_add_uint64(ro, "installed_at", r->installed_at_ns);
			json_object_array_add(list, ro);
		}
		json_object_object_add(o, "routes", list);
		print_json(vty, o);
		return NX_CMD_SUCCESS;
	}
	nx_vty_out(vty, "%-43s %-45s %s\n", "Prefix", "Peer", "Installed");
	for (const struct nexd_route *r = first; r && r < end; r++) {
		nx_wgkey_to_base64(&r->peer, key);
		nx_vty_out(vty, "%-43s %-45s %s\n", nx_prefix_format(&r->prefix, pfx, sizeof(pfx)),
			   key, r->installed ? "yes" : "no");
	}
	return NX_CMD_SUCCESS;
}

int nexd_show_init(struct nexd *nexd, struct nx_err *err)
{
	static const struct nx_cmd *const cmds[] = {
		&show_nexodus_status,
		&show_nexodus_peers,
		&show_nexodus_routes,
	};
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		rc = nx_cmd_install(nexd->daemon->tree, NX_NODE_VIEW, cmds[i], err);
	return rc;
}
