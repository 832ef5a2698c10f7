# SPDX-License-Identifier: GPL-2.0-or-later
"""nexd's NAT discovery end to end: STUN from WireGuard's own port against the controller's
responder and a coturn server, the NAT type judged from the two answers and published to the
controller (symmetric_nat and a stun: endpoint), re-checked while running (a NAT that turns
symmetric is noticed), a STUN server that never answers costs nothing, and a device behind a
cone NAT and a public one carry traffic through their tunnel.

    A 192.168.1.10 --lana-- Rc (cone NAT)      203.0.113.2 --+
    B 192.168.2.10 --lanb-- Rs (symmetric NAT) 203.0.113.3 --+-- pub -- ctl 203.0.113.1 (nexsrv)
                                               C 203.0.113.20 -+        s   203.0.113.10 (coturn)
"""

import json
import time

import pytest

from lab import wait_until
from nexd_env import Agent, Controller

CTL, STUN, C_ADDR = "203.0.113.1", "203.0.113.10", "203.0.113.20"
RC_OUT, RS_OUT = "203.0.113.2", "203.0.113.3"
SILENT = f"{STUN}:3999"  # nothing listens there
CTL_STUN = f"stun:{CTL}:3478"
INTERVAL_MS = 2000

# Flushes the conntrack table of the namespace it runs in (ctnetlink IPCTNL_MSG_CT_DELETE
# without attributes), so that flows opened before a NAT rule change are NATed anew.
FLUSH_CONNTRACK = r"""
import socket, struct
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
s.bind((0, 0))
for family in (socket.AF_INET, socket.AF_INET6):
    body = struct.pack("BBH", family, 0, 0)
    hdr = struct.pack("=IHHII", 16 + len(body), (1 << 8) | 2, 0x1 | 0x4, 1, 0)
    s.send(hdr + body)
    reply = s.recv(4096)
    err = struct.unpack("=i", reply[16:20])[0]
    assert err == 0, f"conntrack flush: error {err}"
"""


@pytest.fixture
def natlab(postgres, lab, coturn, monkeypatch):
    monkeypatch.setenv("NEXD_NAT_INTERVAL_MS", str(INTERVAL_MS))
    ctl = None
    agents = {}
    try:
        pub = lab.switch("pub")
        nodes = {n: lab.host(n) for n in ("ctl", "s", "a", "b", "c")}
        lab.link(nodes["ctl"], pub, addr_a=f"{CTL}/24")
        lab.link(nodes["s"], pub, addr_a=f"{STUN}/24")
        lab.link(nodes["c"], pub, addr_a=f"{C_ADDR}/24")
        lana, lanb = lab.switch("lana"), lab.switch("lanb")
        rc = lab.router("rc", nat="cone", inside=(lana, "192.168.1.1/24"),
                        outside=(pub, f"{RC_OUT}/24"))
        lab.router("rs", nat="symmetric", inside=(lanb, "192.168.2.1/24"),
                   outside=(pub, f"{RS_OUT}/24"))
        lab.link(nodes["a"], lana, addr_a="192.168.1.10/24")
        lab.link(nodes["b"], lanb, addr_a="192.168.2.10/24")
        coturn(nodes["s"], STUN, 3478)

        ctl = Controller(lab, postgres, nodes["ctl"], CTL).start()
        vpc, key = ctl.bootstrap()
        stun_args = ["--stun-server", f"{STUN}:3478"]
        # A also has a server that never answers, listed before the one that does.
        agents["a"] = Agent(lab, nodes["a"], ctl.url, key,
                            args=["--stun-server", SILENT, *stun_args])
        agents["b"] = Agent(lab, nodes["b"], ctl.url, key, args=stun_args)
        agents["c"] = Agent(lab, nodes["c"], ctl.url, key, args=stun_args)
        for ag in agents.values():
            ag.start()
        for ag in agents.values():
            ag.wait_connected()
        yield lab, ctl, agents, rc
        for ag in agents.values():
            ag.assert_healthy()
    finally:
        for ag in agents.values():
            ag.cleanup()
        if ctl:
            ctl.cleanup()


def controller_device(ctl, agent):
    """The controller's record of agent's device."""
    key = agent.status()["public_key"]
    devices = json.loads(ctl.admin("show nexodus devices json"))["devices"]
    found = [d for d in devices if d["public_key"] == key]
    assert len(found) == 1, devices
    return found[0]


def stun_endpoints(endpoints):
    return [e for e in endpoints or [] if e["source"].startswith("stun:")]


def published(ctl, agent, symmetric, reflexive_ip):
    """The controller holds the agent's NAT view: symmetric_nat and a stun: endpoint at
    reflexive_ip."""
    d = controller_device(ctl, agent)
    eps = stun_endpoints(d["endpoints"])
    return (d["symmetric_nat"] is symmetric and len(eps) == 1
            and eps[0]["address"].rsplit(":", 1)[0] == reflexive_ip and d)


def nat_view(agent):
    st = agent.status()
    return st["symmetric_nat"], stun_endpoints(st["endpoints"]), st


def test_nat_types_published(natlab):
    lab, ctl, agents, rc = natlab
    a, b, c = agents["a"], agents["b"], agents["c"]

    # A behind the cone NAT: one mapping, the router's address, WireGuard's port kept.
    _, eps, st = wait_until(lambda: nat_view(a)[0] is False and nat_view(a), timeout=20,
                            what="A's NAT checked")
    assert len(eps) == 1, st
    assert eps[0]["address"] == f"{RC_OUT}:{st['listen_port']}", st
    # The silent server (listed first among stun-servers) was passed over: the mapping is the
    # controller's answer, judged against coturn's.
    assert eps[0]["source"] == CTL_STUN, st
    d = wait_until(lambda: published(ctl, a, False, RC_OUT), timeout=20,
                   what="A's reflexive endpoint at the controller")
    assert stun_endpoints(d["endpoints"])[0]["address"] == f"{RC_OUT}:{st['listen_port']}", d

    # B behind the symmetric NAT.
    wait_until(lambda: nat_view(b)[0] is True, timeout=20, what="B sees a symmetric NAT")
    wait_until(lambda: published(ctl, b, True, RS_OUT), timeout=20,
               what="B's symmetric_nat at the controller")

    # C has no NAT: the mapping is its own address and port.
    wait_until(lambda: nat_view(c)[0] is False and nat_view(c), timeout=20, what="C checked")
    _, eps, st = nat_view(c)
    assert [e["address"] for e in eps] == [f"{C_ADDR}:{st['listen_port']}"], st
    wait_until(lambda: published(ctl, c, False, C_ADDR), timeout=20,
               what="C's endpoint at the controller")

    # The plain status says it too.
    r = a.daemon.nexsh("show nexodus status")
    assert "NAT:" in r.stdout and "endpoint-independent" in r.stdout, r.stdout

    # A stays responsive although one of its STUN servers never answers: asked over and over
    # through more than one check (each waits for the silent server's 3 s timeout).
    end = time.monotonic() + 2.5 * INTERVAL_MS / 1000
    while time.monotonic() < end:
        t0 = time.monotonic()
        a.status()
        assert time.monotonic() - t0 < 1, "status stalled"


def test_tunnel_cone_and_public(natlab):
    lab, ctl, agents, rc = natlab
    a, c = agents["a"], agents["c"]
    a4, c4 = a.tunnel_ipv4, c.tunnel_ipv4

    def both_ways():
        return lab.ping_ok(a.node, c4, timeout=1) and lab.ping_ok(c.node, a4, timeout=1)

    wait_until(both_ways, timeout=30, what="A and C ping each other through the tunnel")

    def traffic(agent, addr):
        """agent's peer with tunnel address addr, once nexd shows traffic both ways."""
        p = [p for p in agent.peers() if p["tunnel_ipv4"] == addr][0]
        return p["rx_bytes"] > 0 and p["tx_bytes"] > 0 and p["endpoint"] and p

    # nexd reads the counters back from WireGuard every few seconds.
    wait_until(lambda: traffic(a, c4), timeout=10, what="A shows traffic with C")
    peer_a = wait_until(lambda: traffic(c, a4), timeout=10, what="C shows traffic with A")
    assert peer_a["endpoint"].rsplit(":", 1)[0] == RC_OUT, peer_a


def test_nat_turns_symmetric(natlab):
    lab, ctl, agents, rc = natlab
    a = agents["a"]
    wait_until(lambda: published(ctl, a, False, RC_OUT), timeout=20,
               what="A published as endpoint-independent")

    # Rc becomes a symmetric NAT: masquerade fully-random, and the flows it already NATed
    # are forgotten so that every one is mapped anew.
    rules = lab.cmd(rc, "nft", "list", "ruleset")
    assert "masquerade" in rules and "fully-random" not in rules
    lab.cmd(rc, "nft", "flush", "ruleset")
    lab.nft(rc, rules.replace("masquerade", "masquerade fully-random"))
    assert "masquerade fully-random" in lab.cmd(rc, "nft", "list", "ruleset")
    lab.cmd(rc, "python3", "-c", FLUSH_CONNTRACK)
    t0 = time.monotonic()

    wait_until(lambda: nat_view(a)[0] is True, timeout=30, what="A sees its NAT symmetric")
    wait_until(lambda: published(ctl, a, True, RC_OUT), timeout=30 - (time.monotonic() - t0),
               what="A's symmetric_nat at the controller")
    assert time.monotonic() - t0 < 30

    # Damped: the change was published once (after the swap, while the NAT had no rule, a
    # check may have seen nothing; that alone is not published), and the view stays put
    # over further checks although each flow through the NAT now gets a random port.
    def publications():
        return [line for line in a.daemon.proc.log().splitlines() if "NOTICE: NAT: " in line]

    assert len(publications()) == 2, publications()
    # Stability can only be shown over time: status polled through three more checks.
    end = time.monotonic() + 3 * INTERVAL_MS / 1000
    wait_until(lambda: a.status()["symmetric_nat"] is True and time.monotonic() > end,
               timeout=10, what="three more checks")
    assert len(publications()) == 2, publications()
