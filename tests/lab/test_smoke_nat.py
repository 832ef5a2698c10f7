# SPDX-License-Identifier: GPL-2.0-or-later
"""Smoke test of the lab itself: cone and symmetric NAT routers behave as named
(seen by STUN from inside), and wireguard-go tunnels cross both NATs.

Topology (public 203.0.113.0/24 switch "pub"):

    A 192.168.1.10 --lana-- Rc (cone NAT)      203.0.113.2 --+
                                                              +-- pub -- S .10, .11 (2x coturn, wg)
    B 192.168.2.10 --lanb-- Rs (symmetric NAT) 203.0.113.3 --+
"""

import os

import lab as labmod
from lab import wait_until

S1, S2 = "203.0.113.10", "203.0.113.11"
RC_OUT, RS_OUT = "203.0.113.2", "203.0.113.3"
WG_PORT_S, WG_PORT_A, WG_PORT_B = 51820, 51821, 51822


def build(lab):
    pub = lab.switch("pub")
    s = lab.host("s")
    s_link = lab.link(s, pub, addr_a=[f"{S1}/24", f"{S2}/24"])
    lana, lanb = lab.switch("lana"), lab.switch("lanb")
    rc = lab.router("rc", nat="cone", inside=(lana, "192.168.1.1/24"), outside=(pub, f"{RC_OUT}/24"))
    rs = lab.router("rs", nat="symmetric", inside=(lanb, "192.168.2.1/24"),
                    outside=(pub, f"{RS_OUT}/24"))
    a, b = lab.host("a"), lab.host("b")
    lab.link(a, lana, addr_a="192.168.1.10/24")
    lab.link(b, lanb, addr_a="192.168.2.10/24")
    return s, s_link, rc, rs, a, b


def test_nat_stun_and_wireguard(lab, coturn):
    s, s_link, rc, rs, a, b = build(lab)

    # Kernel state the lab promised: default routes, forwarding, NAT rules.
    assert "default via 192.168.1.1" in lab.cmd(a, "ip", "route", "show", "default")
    assert "default via 192.168.2.1" in lab.cmd(b, "ip", "route", "show", "default")
    assert lab.cmd(rc, "sysctl", "-n", "net.ipv4.ip_forward").strip() == "1"
    rc_rules, rs_rules = lab.cmd(rc, "nft", "list", "ruleset"), lab.cmd(rs, "nft", "list", "ruleset")
    assert "masquerade" in rc_rules and "fully-random" not in rc_rules
    assert "masquerade fully-random" in rs_rules

    # Both NATed hosts reach the public server.
    wait_until(lambda: lab.ping_ok(a, S1), timeout=5, what="A pings S")
    wait_until(lambda: lab.ping_ok(b, S1), timeout=5, what="B pings S")
    # ... but the outside cannot open a flow inward (stateful NAT filtering).
    lab.route(s, "192.168.1.0/24", via=RC_OUT)
    assert not lab.ping_ok(s, "192.168.1.10", timeout=0.5), "cone NAT let an unsolicited ping in"

    stun1, stun2 = coturn(s, S1, 3478), coturn(s, S2, 3479)

    # Cone: same local port to two servers -> one mapping, Rc's address, port kept.
    r = lab.stun(a, stun1.addr, stun2.addr, local_port=40000)
    assert [x["server"] for x in r] == [stun1.addr, stun2.addr]
    assert r[0]["mapped"] == r[1]["mapped"], f"cone NAT mapping depends on destination: {r}"
    assert r[0]["mapped_ip"] == RC_OUT
    assert r[0]["mapped_port"] == 40000, f"cone NAT did not keep the source port: {r}"

    # Symmetric: same local port -> a different mapping per destination.
    r = lab.stun(b, stun1.addr, stun2.addr, local_port=40000)
    assert {x["mapped_ip"] for x in r} == {RS_OUT}
    assert r[0]["mapped_port"] != r[1]["mapped_port"], f"symmetric NAT reused a mapping: {r}"

    # WireGuard: S listens publicly; A and B initiate from behind their NATs.
    ws = lab.wireguard(s, "wg0", address="10.99.0.1/24", listen_port=WG_PORT_S)
    wa = lab.wireguard(a, "wg0", address="10.99.0.2/24", listen_port=WG_PORT_A)
    wb = lab.wireguard(b, "wg0", address="10.99.0.3/24", listen_port=WG_PORT_B)
    ws.add_peer(wa.public_key, allowed_ips=["10.99.0.2/32"])
    ws.add_peer(wb.public_key, allowed_ips=["10.99.0.3/32"])
    for w in (wa, wb):
        w.add_peer(ws.public_key, endpoint=f"{S1}:{WG_PORT_S}", allowed_ips=["10.99.0.1/32"])
    assert "10.99.0.0/24 dev wg0" in lab.cmd(a, "ip", "route")
    assert lab.wg(a, wa, "show", "wg0", "listen-port").strip() == str(WG_PORT_A)

    for host, w, nat_out in ((a, wa, RC_OUT), (b, wb, RS_OUT)):
        wait_until(lambda: lab.ping_ok(host, "10.99.0.1"), timeout=10,
                   what=f"{host.name} pings S over WireGuard")
        peer = w.peer(ws.public_key)
        assert peer["latest_handshake"] > 0, peer
        assert peer["rx_bytes"] > 0 and peer["tx_bytes"] > 0, peer
        seen_by_s = ws.peer(w.public_key)
        assert seen_by_s["endpoint"].rsplit(":", 1)[0] == nat_out, seen_by_s
        assert seen_by_s["latest_handshake"] > 0, seen_by_s
    # Through the cone NAT the source port survived, so S sees A at Rc:WG_PORT_A.
    assert ws.peer(wa.public_key)["endpoint"] == f"{RC_OUT}:{WG_PORT_A}"

    # The tunnel really carries the traffic: cut the underlay, the tunnel ping fails.
    s_link.down()
    assert not lab.ping_ok(a, "10.99.0.1", timeout=0.5)
    s_link.up()
    wait_until(lambda: lab.ping_ok(a, "10.99.0.1"), timeout=10, what="tunnel back after link_up")

    # Teardown leaves nothing behind.
    prefix, tmp, marker = lab.prefix, lab.tmp, lab.record.path
    procs = [(p.pid, p.starttime) for p in lab.procs]
    assert len(procs) >= 5
    lab.teardown()
    assert not [n for n in labmod.netns_list() if n.startswith(prefix + "-")]
    assert not os.path.exists(tmp)
    assert not os.path.exists(marker)
    assert not [p for p, st in procs if labmod.pid_alive(p, st)]
    with open("/proc/self/mountinfo") as f:
        assert prefix not in f.read()
