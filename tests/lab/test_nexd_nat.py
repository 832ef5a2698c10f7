# SPDX-License-Identifier: GPL-2.0-or-later
"""nexd's NAT discovery end to end: STUN from WireGuard's own port against the controller's
responder and a coturn server, the NAT type judged from the two answers and published to the
controller (symmetric_nat and a stun: endpoint), re-checked while running (a NAT that turns
symmetric is noticed), a STUN server that never answers costs nothing, and a device behind a
cone NAT and a public one carry traffic through their tunnel.  STUN servers given by name are
resolved without ever stopping the daemon: with a name server that never answers the VTY,
the tunnel and the other STUN server carry on, and a name from /etc/hosts is used.

    A 192.168.1.10 --lana-- Rc (cone NAT)      203.0.113.2 --+
    B 192.168.2.10 --lanb-- Rs (symmetric NAT) 203.0.113.3 --+-- pub -- ctl 203.0.113.1 (nexsrv)
                                               C 203.0.113.20 -+        s   203.0.113.10 (coturn)
"""

import json
import os
import shutil
import time
from datetime import datetime, timezone

import pytest

from lab import register_cleanup, unregister_cleanup, wait_until
from nexd_env import Agent, Controller
from nexsrv_env import sanitizer_report

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


# --- STUN servers by name ----------------------------------------------------------------------
#
#   D 203.0.113.21 --+
#   H 203.0.113.22 --+-- pub -- ctl 203.0.113.1 (nexsrv)   s 203.0.113.10 (coturn)
#                    +-- dns 203.0.113.53: drops every DNS query
#
# D and H are told (/etc/netns/<ns>/resolv.conf, which `ip netns exec` mounts over
# /etc/resolv.conf) to ask the name server that never answers.  D has a stun-server by a name
# only that server could resolve; H one by a name in its /etc/hosts (mounted the same way).

DNS = "203.0.113.53"
D_ADDR, H_ADDR = "203.0.113.21", "203.0.113.22"
DEAD_NAME = "stun.example.test"
HOSTS_NAME = "stun.lab.test"
NOWHERE = "203.0.113.99"  # nothing there
ETC_NETNS = "/etc/netns"
# A VTY request answers in milliseconds; a loop blocked on the name server stalls for seconds
# (the C library waits 5 s per try).  Generous for a loaded machine, still far from that.
VTY_MAX_S = 0.5
DROP_DNS = """
table inet nxlab_dns {
  chain input {
    type filter hook input priority filter; policy accept;
    udp dport 53 drop
    tcp dport 53 drop
  }
}
"""


def etc_netns(node, files, created):
    """Writes files ({name: text}) into /etc/netns/<ns>/, which `ip netns exec` mounts over
    /etc/<name> for everything started in the namespace.  The directory is appended to
    `created` first, so that the caller removes it however this ends."""
    path = os.path.join(ETC_NETNS, node.ns)
    os.makedirs(path)
    created.append(path)
    register_cleanup(("etc-netns", path), lambda: shutil.rmtree(path, ignore_errors=True))
    for name, text in files.items():
        with open(os.path.join(path, name), "w") as f:
            f.write(text)
    return path


def remove_etc_netns(created):
    for path in created:
        shutil.rmtree(path, ignore_errors=True)
        unregister_cleanup(("etc-netns", path))
    try:
        os.rmdir(ETC_NETNS)  # only when no other namespace has files there
    except OSError:
        pass


@pytest.fixture
def dnslab(postgres, lab, coturn, monkeypatch):
    monkeypatch.setenv("NEXD_NAT_INTERVAL_MS", str(INTERVAL_MS))
    ctl = None
    agents = {}
    created = []
    try:
        pub = lab.switch("pub")
        nodes = {n: lab.host(n) for n in ("ctl", "s", "dns", "d", "h")}
        for name, addr in (("ctl", CTL), ("s", STUN), ("dns", DNS), ("d", D_ADDR),
                           ("h", H_ADDR)):
            lab.link(nodes[name], pub, addr_a=f"{addr}/24")
        lab.nft(nodes["dns"], DROP_DNS)
        coturn(nodes["s"], STUN, 3478)
        resolv_conf = f"nameserver {DNS}\n"
        etc_netns(nodes["d"], {"resolv.conf": resolv_conf}, created)
        etc_netns(nodes["h"], {"resolv.conf": resolv_conf,
                               "hosts": f"127.0.0.1 localhost\n{STUN} {HOSTS_NAME}\n"}, created)

        ctl = Controller(lab, postgres, nodes["ctl"], CTL).start()
        vpc, key = ctl.bootstrap()
        agents["d"] = Agent(lab, nodes["d"], ctl.url, key,
                            args=["--stun-server", f"{DEAD_NAME}:3478"])
        agents["h"] = Agent(lab, nodes["h"], ctl.url, key,
                            args=["--stun-server", f"{HOSTS_NAME}:3478"])
        for ag in agents.values():
            ag.daemon.write_config("debug nexodus nat\n")
            ag.start()
        for ag in agents.values():
            ag.wait_connected()
        yield lab, ctl, agents
        for ag in agents.values():
            if ag.daemon.proc.returncode is None:  # still running (not stopped by the test)
                ag.assert_healthy()
            else:
                assert sanitizer_report(ag.daemon.proc.log()) is None, ag.daemon.proc.log()
    finally:
        for ag in agents.values():
            ag.cleanup()
        if ctl:
            ctl.cleanup()
        remove_etc_netns(created)


def log_time(line):
    """The wall-clock time of a log line ("2026-11-30T10:00:00.123Z nexd: ...")."""
    when = datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    return when.replace(tzinfo=timezone.utc).timestamp()


def lookups(log, server):
    """[(start, end or None, outcome line)] of the lookups of server's name in log."""
    found = []
    for line in log.splitlines():
        if f"[nat] {server}: resolving " in line:
            found.append([log_time(line), None, None])
        elif (f"[nat] {server}: skipped: " in line or f"[nat] {server}: resolved to " in line) \
                and found and found[-1][1] is None:
            found[-1][1:] = [log_time(line), line]
    return [tuple(x) for x in found]


def test_dead_name_server_blocks_nothing(dnslab):
    lab, ctl, agents = dnslab
    d, h = agents["d"], agents["h"]
    server = f"stun:{DEAD_NAME}:3478"

    def log():
        return d.daemon.proc.log()

    # The check asks the name server, which never answers.
    wait_until(lambda: lookups(log(), server), timeout=10, what="D resolving the name")

    # The VTY answers at once, all through more than one whole lookup.
    t_start = time.time()
    for _ in range(20):
        t0 = time.monotonic()
        try:
            out, status = d.daemon.vty(b"show nexodus status json", timeout=5)
        except TimeoutError:
            raise AssertionError("the VTY did not answer within 5 s") from None
        took = time.monotonic() - t0
        assert status == 0 and json.loads(out)["state"] == "connected", out
        assert took < VTY_MAX_S, f"the VTY took {took:.3f} s"
        time.sleep(0.25)
    t_end = time.time()

    # Lookups were under way meanwhile; each gave up after its timeouts (2 s, twice), not
    # quicker (the name server really never answered) and not much later.
    done = [x for x in lookups(log(), server) if x[1] is not None]
    assert done, log()
    for start, end, line in done:
        assert 3.0 <= end - start <= 8.0, (end - start, line)
        assert "skipped" in line, line
    overlap = sum(max(0.0, min(end or t_end, t_end) - max(start, t_start))
                  for start, end, _ in lookups(log(), server))
    assert overlap >= 2.0, (overlap, lookups(log(), server))

    # The tunnel works: D reaches its peer H and back.
    wait_until(lambda: lab.ping_ok(d.node, h.tunnel_ipv4, timeout=1)
               and lab.ping_ok(h.node, d.tunnel_ipv4, timeout=1),
               timeout=30, what="D and H ping each other through the tunnel")

    # The check completes with the controller's responder alone: the reflexive endpoint is
    # known (D has no NAT: its own address and port), the NAT type is not (one answer).
    def nat_known():
        st = d.status()
        eps = stun_endpoints(st["endpoints"])
        return st["symmetric_nat"] is False and eps and st

    st = wait_until(nat_known, timeout=20, what="D's NAT checked")
    assert [(e["address"], e["source"]) for e in stun_endpoints(st["endpoints"])] == \
        [(f"{D_ADDR}:{st['listen_port']}", CTL_STUN)], st
    assert "type unknown (one STUN server answered)" in d.daemon.nexsh(
        "show nexodus status").stdout
    wait_until(lambda: published(ctl, d, False, D_ADDR), timeout=20,
               what="D's endpoint at the controller")

    # The server that cannot be resolved is mentioned only in debug messages.
    named = [line for line in log().splitlines() if DEAD_NAME in line]
    assert named and all(" DEBUG: [nat] " in line for line in named), named

    # Stopping while a lookup is under way is clean: exit status 0, no sanitizer report.
    wait_until(lambda: lookups(log(), server)[-1][1] is None, timeout=10,
               what="a lookup under way")
    assert d.stop() == 0, log()
    assert sanitizer_report(log()) is None, log()


def test_name_from_hosts_file(dnslab):
    lab, ctl, agents = dnslab
    h = agents["h"]
    server = f"stun:{HOSTS_NAME}:3478"

    def log():
        return h.daemon.proc.log()

    def status_text():
        return h.daemon.nexsh("show nexodus status").stdout

    # Resolved from /etc/hosts without a name server (the one configured never answers), and
    # asked: with two answers the NAT type is known.
    wait_until(lambda: "endpoint-independent" in status_text(), timeout=20,
               what="H's NAT checked with both servers")
    start, end, line = lookups(log(), server)[0]
    assert line.endswith(f"resolved to {STUN}") and end - start < 1.0, line
    assert f"STUN {STUN}:3478: Binding request" in log()

    # A changed /etc/hosts is read again: the name now leads nowhere, one server answers.
    with open(os.path.join(ETC_NETNS, h.node.ns, "hosts"), "w") as f:
        f.write(f"127.0.0.1 localhost\n{NOWHERE} {HOSTS_NAME}\n")
    wait_until(lambda: any(x[2] and x[2].endswith(f"resolved to {NOWHERE}")
                           for x in lookups(log(), server)),
               timeout=20, what="the new hosts entry used")
    wait_until(lambda: "type unknown (one STUN server answered)" in status_text(), timeout=20,
               what="H's NAT view with one server")
