# SPDX-License-Identifier: GPL-2.0-or-later
"""nexd's path selection end to end (tests/lab/paths_topology.py draws the network): two
devices on one LAN talk directly over their local addresses, two behind endpoint-independent
NATs over their reflexive ones without a relay, two behind symmetric NATs through a relay;
when the relay in use dies, a direct path is cut, the NAT forgets its mappings or a device
moves, traffic carries on within the promised time, measured from a ping every 20 ms.

One topology serves the whole module (eight agents take a while to enroll); the tests run in
file order and each puts back what it broke.
"""

import pytest

import paths_topology as pt
from lab import Lab, wait_until
from test_nexd_nat import FLUSH_CONNTRACK

FAILOVER_MAX_S = 2.0


@pytest.fixture(scope="module")
def topo(postgres_cluster):
    db = postgres_cluster.create_database()
    lab = Lab(label="nexd-paths")
    t = None
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("NEXD_NAT_INTERVAL_MS", str(pt.NAT_INTERVAL_MS))
            t = pt.build(lab, db)
            for name in t.relay_names:
                pt.relay_counters_init(t, name)
            yield t
        for ag in t.agents.values():
            ag.assert_healthy()
    finally:
        if t:
            t.cleanup()
        lab.teardown()
        db.drop()


def both(t, a, b, path, timeout=20):
    """Waits until a and b each show the other on `path`, healthy."""
    A, B = t.agents[a], t.agents[b]
    wait_until(lambda: pt.path_is(A, B, path) and pt.path_is(B, A, path), timeout=timeout,
               what=f"{a} <-> {b} {path}")


def pings_both_ways(t, a, b, timeout=20):
    A, B = t.agents[a], t.agents[b]
    wait_until(lambda: t.lab.ping_ok(A.node, B.tunnel_ipv4, timeout=0.5)
               and t.lab.ping_ok(B.node, A.tunnel_ipv4, timeout=0.5),
               timeout=timeout, what=f"{a} <-> {b} ping")


def test_same_lan_direct_local(topo):
    t = topo
    l1, l2 = t.agents["l1"], t.agents["l2"]
    pings_both_ways(t, "l1", "l2")
    both(t, "l1", "l2", "direct-local")
    assert pt.peer_of(l1, l2)["endpoint"].startswith("192.168.5.11:")
    assert pt.peer_of(l2, l1)["endpoint"].startswith("192.168.5.10:")
    assert pt.relay_in_use(t, l1, l2) is None and pt.relay_in_use(t, l2, l1) is None


def test_cone_to_cone_reflexive_without_relay(topo):
    t = topo
    c1, c2 = t.agents["c1"], t.agents["c2"]
    pings_both_ways(t, "c1", "c2")
    both(t, "c1", "c2", "reflexive")
    assert pt.peer_of(c1, c2)["endpoint"].startswith(pt.SITES["c2"][2] + ":")
    assert pt.peer_of(c2, c1)["endpoint"].startswith(pt.SITES["c1"][2] + ":")
    assert pt.relay_in_use(t, c1, c2) is None and pt.relay_in_use(t, c2, c1) is None

    # No relay forwards a single packet of theirs while 100 pings cross each way.
    a4, b4 = c1.tunnel_ipv4, c2.tunnel_ipv4
    before = [pt.relays_forwarded(t, a4, b4), pt.relays_forwarded(t, b4, a4)]
    r = t.lab.ping(c1.node, b4, count=100, interval=0.02, timeout=1)
    assert r.received == 100, r.output
    r = t.lab.ping(c2.node, a4, count=100, interval=0.02, timeout=1)
    assert r.received == 100, r.output
    after = [pt.relays_forwarded(t, a4, b4), pt.relays_forwarded(t, b4, a4)]
    assert after == before, f"a relay forwarded cone <-> cone traffic: {before} -> {after}"


def test_symmetric_to_symmetric_via_relay(topo):
    t = topo
    s1, s2 = t.agents["s1"], t.agents["s2"]
    wait_until(lambda: pt.peer_of(s1, s2)["path"] == "via-relay"
               and pt.peer_of(s2, s1)["path"] == "via-relay", timeout=20, what="via-relay")
    pings_both_ways(t, "s1", "s2")
    # The traffic really crosses a relay: its counter for the pair moves.
    a4, b4 = s1.tunnel_ipv4, s2.tunnel_ipv4
    before = sum(pt.relays_forwarded(t, a4, b4).values())
    r = t.lab.ping(s1.node, b4, count=20, interval=0.02, timeout=1)
    assert r.received > 0, r.output
    assert sum(pt.relays_forwarded(t, a4, b4).values()) - before >= r.received


def test_relayed_pair_is_stable(topo):
    t = topo
    s1, s2 = t.agents["s1"], t.agents["s2"]
    pings_both_ways(t, "s1", "s2")
    p = pt.Pinger(t.lab, s1.node, s2.tunnel_ipv4)
    seen = set()
    try:
        p.wait_replies(5)
        t0 = pt.now()
        end = t0 + 10
        while pt.now() < end:
            seen.add((pt.relay_in_use(t, s1, s2), pt.relay_in_use(t, s2, s1)))
        p.stop()
    finally:
        p.stop()
    gap, before, after = p.gap(since=t0, until=end)
    assert len(seen) == 1 and len(next(iter(seen))) == 2 and len(set(next(iter(seen)))) == 1, \
        f"relays (s1's, s2's) seen over 10 s: {seen}"
    assert gap < 0.2, f"{gap:.2f} s without a reply (seq {before} -> {after})"


def test_symmetric_to_cone_traffic(topo):
    t = topo
    for a, b in (("s1", "c1"), ("s2", "c2"), ("s1", "l1")):
        pings_both_ways(t, a, b)
        A, B = t.agents[a], t.agents[b]
        assert pt.peer_of(A, B)["path"] in ("reflexive", "via-relay")


def relay_for_pair(t, a, b):
    A, B = t.agents[a], t.agents[b]
    return wait_until(lambda: pt.relay_in_use(t, A, B) == pt.relay_in_use(t, B, A)
                      and pt.relay_in_use(t, A, B), timeout=20, what=f"{a} <-> {b} one relay")


def test_relay_dies_traffic_moves_to_the_other(topo):
    t = topo
    s1, s2 = t.agents["s1"], t.agents["s2"]
    pings_both_ways(t, "s1", "s2")
    used = relay_for_pair(t, "s1", "s2")
    other = [n for n in t.relay_names if n != used][0]
    p = pt.Pinger(t.lab, s1.node, s2.tunnel_ipv4)
    link = t.links[used]
    try:
        p.wait_replies(10)
        t0 = pt.now()
        link.down()  # the relay host is gone from the network
        since = pt.wait_flowing(p, t0, timeout=15)
        gap, before, after = p.gap(since=t0 - 0.5, until=since + 0.5)
        p.stop()
        print(f"relay {used} killed: gap {gap:.3f} s (seq {before} -> {after})")
        assert pt.relay_in_use(t, s1, s2) == other and pt.relay_in_use(t, s2, s1) == other
        assert gap <= FAILOVER_MAX_S, f"{gap:.2f} s without a reply (seq {before} -> {after})"
    finally:
        p.stop()
        link.up()
    wait_until(lambda: t.agents[used].status()["state"] == "connected", timeout=30,
               what="relay back")


def cut_rules(t, site, other):
    """nftables rules on site's NAT router dropping UDP between site and other's NAT."""
    return f"""
table ip nxpaths_cut {{
  chain forward {{
    type filter hook forward priority -5; policy accept;
    ip saddr {pt.SITES[site][4]} ip daddr {pt.SITES[other][2]} meta l4proto udp drop
    ip saddr {pt.SITES[other][2]} meta l4proto udp drop
  }}
}}
"""


def test_direct_path_cut_and_restored(topo):
    t = topo
    c1, c2 = t.agents["c1"], t.agents["c2"]
    router = t.routers[pt.SITES["c1"][0]]
    both(t, "c1", "c2", "reflexive")
    p = pt.Pinger(t.lab, c1.node, c2.tunnel_ipv4)
    try:
        p.wait_replies(10)
        t0 = pt.now()
        t.lab.nft(router, cut_rules(t, "c1", "c2"))
        wait_until(lambda: pt.peer_of(c1, c2)["path"] == "via-relay", timeout=10,
                   what="c1 sends c2's traffic via a relay")
        since = pt.wait_flowing(p, t0, timeout=15)
        gap, before, after = p.gap(since=t0, until=since + 0.5)
        print(f"direct path cut: gap {gap:.3f} s (seq {before} -> {after}) from cut "
              f"{since - t0:.3f} s; relays c1->c2 {pt.relay_in_use(t, c1, c2)} "
              f"c2->c1 {pt.relay_in_use(t, c2, c1)}")
        assert gap <= FAILOVER_MAX_S, f"{gap:.2f} s without a reply (seq {before} -> {after})"

        # Restored: back to the direct path, without losing the traffic on the way.
        t1 = pt.now()
        t.lab.cmd(router, "nft", "delete", "table", "ip", "nxpaths_cut")
        both(t, "c1", "c2", "reflexive", timeout=30)
        wait_until(lambda: pt.relay_in_use(t, c1, c2) is None
                   and pt.relay_in_use(t, c2, c1) is None, timeout=10, what="direct again")
        pt.wait_flowing(p, pt.now(), n=25, timeout=10)
        p.stop()
        gap, before, after = p.gap(since=t1, until=pt.now())
        print(f"direct path restored: longest gap {gap:.3f} s")
        assert gap <= FAILOVER_MAX_S, f"{gap:.2f} s without a reply returning to direct"
    finally:
        p.stop()
        t.lab.run(router, "nft", "delete", "table", "ip", "nxpaths_cut", check=False)


def test_nat_forgets_its_mappings(topo):
    t = topo
    c1, c2 = t.agents["c1"], t.agents["c2"]
    both(t, "c1", "c2", "reflexive", timeout=30)
    pids = {n: a.daemon.proc.pid for n, a in t.agents.items()}
    p = pt.Pinger(t.lab, c1.node, c2.tunnel_ipv4)
    try:
        p.wait_replies(10)
        t0 = pt.now()
        for name in ("c1", "c2"):
            t.lab.cmd(t.routers[pt.SITES[name][0]], "python3", "-c", FLUSH_CONNTRACK)
        since = pt.wait_flowing(p, t0, timeout=20)
        gap, before, after = p.gap(since=t0, until=since)
        p.stop()
        print(f"conntrack flushed: gap {gap:.3f} s")
    finally:
        p.stop()
    # Recovered by itself: same processes, each peer usable both ways, on a real path.
    pings_both_ways(t, "c1", "c2")
    assert {n: a.daemon.proc.pid for n, a in t.agents.items()} == pids
    for A, B in ((c1, c2), (c2, c1)):
        assert pt.peer_of(A, B)["path"] in ("reflexive", "via-relay")


def test_device_moves(topo):
    t = topo
    lab = t.lab
    l1, l2, c1 = t.agents["l1"], t.agents["l2"], t.agents["c1"]
    pings_both_ways(t, "l1", "l2")
    port = l1.status()["listen_port"]

    # l1 leaves the LAN it shares with l2 for c1's, behind another NAT.
    lab.cmd(l1.node, "ip", "link", "del", t.links["l1"].a.name)
    t.nodes["l1"].gateway = None
    t.nodes["l1"].routes = []
    t.links["l1"] = lab.link(t.nodes["l1"], lab.node("lan1"), addr_a="192.168.1.20/24")
    lab.route(t.nodes["l1"], "default", via="192.168.1.1")

    # Its peers learn the new endpoints from the controller: local for c1, reflexive for l2.
    def converged():
        e_c1 = pt.peer_of(c1, l1)
        e_l2 = pt.peer_of(l2, l1)
        return (e_c1["path"] == "direct-local" and e_c1["endpoint"] == f"192.168.1.20:{port}"
                and e_l2["path"] in ("reflexive", "via-relay")
                and pt.peer_of(l1, l2)["path"] in ("reflexive", "via-relay"))

    try:
        wait_until(converged, timeout=30, what="peers converge on l1's new place")
    except AssertionError:
        print("c1 sees l1:", pt.peer_of(c1, l1), "\nl2 sees l1:", pt.peer_of(l2, l1),
              "\nl1 sees l2:", pt.peer_of(l1, l2), "\nl1 status:", l1.status(),
              "\nl1 log:", l1.daemon.proc.log(30))
        raise
    pings_both_ways(t, "l1", "c1")
    pings_both_ways(t, "l1", "l2")
