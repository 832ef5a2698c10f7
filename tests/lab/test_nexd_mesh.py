# SPDX-License-Identifier: GPL-2.0-or-later
"""nexd end to end on one LAN: three devices enroll with a registration key, build a full
mesh of WireGuard (wireguard-go) tunnels, route each other's /32 and /128 with protocol
nexodus, repair drift, survive their own restart and a controller outage without losing
packets, and drop a deleted device everywhere.

    ctl 10.0.0.1 (nexsrv) --+
    a   10.0.0.11 ----------+-- lan
    b   10.0.0.12 ----------+
    c   10.0.0.13 ----------+
"""

import itertools
import os
import re
import subprocess
import time

import pytest

from lab import Lab, wait_until
from idp import start_idp
from nexd_env import Agent, Controller, probe_addr, user_token


@pytest.fixture
def mesh(postgres):
    """A user (alice, of the test IdP) whose default VPC the three devices join with a
    registration key she made through the API."""
    lab = Lab(label="mesh")
    idp = ctl = agents = None
    try:
        lan = lab.switch("lan")
        nodes = {}
        for name, ip in (("ctl", "10.0.0.1"), ("a", "10.0.0.11"), ("b", "10.0.0.12"),
                         ("c", "10.0.0.13")):
            nodes[name] = lab.host(name)
            lab.link(nodes[name], lan, addr_a=f"{ip}/24")
        idp = start_idp(host="10.0.0.1", netns=nodes["ctl"].ns,
                        log_path=os.path.join(lab.tmp, "idp.log"))
        ctl = Controller(lab, postgres, nodes["ctl"], "10.0.0.1",
                         extra=f" oidc-issuer {idp.issuer}\n oidc-audience {idp.audience}\n"
                               f" oidc-client-id nexodus-cli\n").start()
        ctl.alice = user_token(lab, nodes["ctl"], idp, "alice")
        status, me = ctl.api("GET", "/api/users/me", ctl.alice)
        assert status == 200, me
        status, rk = ctl.api("POST", "/api/reg-keys", ctl.alice, {"vpc_id": me["id"]})
        assert status in (200, 201), rk
        agents = {n: Agent(lab, nodes[n], ctl.url, rk["bearer_token"]) for n in ("a", "b", "c")}
        for a in agents.values():
            a.start()
        for a in agents.values():
            a.wait_connected()
        yield lab, ctl, agents, postgres
        for a in agents.values():
            a.assert_healthy()
    finally:
        for a in (agents or {}).values():
            a.cleanup()
        if ctl:
            ctl.cleanup()
        if idp:
            idp.stop()
        lab.teardown()


def full_mesh(agents):
    """Every agent has every other as a healthy peer."""
    for a in agents.values():
        peers = a.peers()
        if len(peers) != len(agents) - 1 or not all(p["healthy"] for p in peers):
            return False
    return True


def ping_all(lab, agents, family):
    for x, y in itertools.permutations(agents.values(), 2):
        addr = y.tunnel_ipv4 if family == 4 else y.tunnel_ipv6
        if not lab.ping_ok(x.node, addr, timeout=1):
            return False
    return True


def test_full_mesh_routes_and_delete(mesh):
    lab, ctl, agents, db = mesh
    # Traffic in both families brings the handshakes that make every peer healthy.
    wait_until(lambda: ping_all(lab, agents, 4), timeout=20, what="IPv4 full mesh pings")
    wait_until(lambda: ping_all(lab, agents, 6), timeout=20, what="IPv6 full mesh pings")
    wait_until(lambda: full_mesh(agents), timeout=10, what="every peer healthy")

    for a in agents.values():
        others = [o for o in agents.values() if o is not a]
        assert a.kernel_routes("-4") == sorted(f"{o.tunnel_ipv4}" for o in others)
        probes = [probe_addr(o.status()["public_key"]) for o in others]
        assert a.kernel_routes("-6") == sorted([o.tunnel_ipv6 for o in others] + probes)
        st = a.status()
        assert st["controller"]["connected"] and st["controller"]["revision"] > 0
        for p in a.peers():
            assert p["path"] == "direct-local", p
            assert p["endpoint"].startswith("10.0.0."), p
        routes = {r["prefix"] for r in a.routes()}
        assert routes == {f"{o.tunnel_ipv4}/32" for o in others} | \
            {f"{o.tunnel_ipv6}/128" for o in others} | {f"{x}/128" for x in probes}
        # One route looked up by its prefix (the same entry), and a prefix with none.
        one = a.show(f"routes {others[0].tunnel_ipv6}/128")["routes"]
        assert one == [r for r in a.routes() if r["prefix"] == f"{others[0].tunnel_ipv6}/128"]
        assert one[0]["peer_public_key"] == others[0].status()["public_key"]
        assert a.show("routes 192.0.2.0/24")["routes"] == []

    # Its owner deletes device C through the API: it disappears from A and B within a second.
    c = agents["c"]
    c_id, c_key = c.status()["device_id"], c.status()["public_key"]
    status, _ = ctl.api("DELETE", f"/api/devices/{c_id}", ctl.alice)
    assert status in (200, 204), status
    t0 = time.monotonic()
    assert db.psql(f"SELECT count(*) FROM devices WHERE id = '{c_id}'") == "0"
    for a in (agents["a"], agents["b"]):
        wait_until(lambda: c_key not in a.wg_peers() and
                   f"{c.tunnel_ipv4}" not in a.kernel_routes("-4"),
                   timeout=2, interval=0.02, what="deleted device gone")
    assert time.monotonic() - t0 < 1.5
    wait_until(lambda: c.status()["state"] == "error", timeout=5, what="C told it was deleted")


def test_drift_is_repaired(mesh):
    lab, ctl, agents, db = mesh
    a, b = agents["a"], agents["b"]
    b_key = b.status()["public_key"]
    wait_until(lambda: b_key in a.wg_peers(), timeout=10)

    lab.cmd(a.node, "ip", "route", "del", f"{b.tunnel_ipv4}/32", "dev", a.ifname)
    lab.cmd(a.node, "wg", "set", a.ifname, "peer", b_key, "remove")
    # A foreign route on the same interface is not ours: it must survive reconciliation.
    lab.cmd(a.node, "ip", "route", "add", "192.0.2.0/24", "dev", a.ifname)
    wait_until(lambda: b_key in a.wg_peers() and b.tunnel_ipv4 in a.kernel_routes("-4"),
               timeout=5, interval=0.1, what="drift repaired within 5 s")
    a.wait_reaches(b, timeout=5)
    assert "192.0.2.0/24" in lab.cmd(a.node, "ip", "route", "show", "dev", a.ifname)


def pinger(lab, node, addr, interval=0.02, count=None):
    """A background ping every `interval` seconds; returns the Proc."""
    argv = ["ping", "-n", "-i", str(interval), "-W", "1", addr]
    if count:
        argv[1:1] = ["-c", str(count)]
    return lab.popen(node, *argv, name="pinger")


def ping_loss(proc):
    """Stops the ping: (requests sent, the sequence numbers that got no reply).  The last
    request may still be in flight when the ping stops: it does not count as lost."""
    proc.signal(2)
    wait_until(lambda: not proc.alive(), timeout=5)
    log = proc.log()
    m = re.search(r"^(\d+) packets transmitted", log, re.M)
    assert m, "no ping summary:\n" + log
    sent = int(m.group(1))
    answered = {int(x) for x in re.findall(r"bytes from .*icmp_seq=(\d+)", log)}
    return sent, sorted(set(range(1, sent)) - answered)


def test_restart_and_controller_outage_lose_nothing(mesh):
    lab, ctl, agents, db = mesh
    a, b = agents["a"], agents["b"]
    # A precondition, not a convergence test: two peers added at the same instant can each
    # drop the other's first handshake and wait WireGuard's 5 s retry.
    b.wait_reaches(a, timeout=20)

    # nexd on A restarts while B pings it every 20 ms: the dataplane never stops.
    p = pinger(lab, b.node, a.tunnel_ipv4)
    time.sleep(0.5)
    assert a.stop() == 0
    assert a.ifname in lab.cmd(a.node, "ip", "link", "show")  # left in place
    a.start()
    a.wait_connected()
    time.sleep(0.5)
    sent, lost = ping_loss(p)
    assert sent > 20 and not lost, f"requests {lost} of {sent} unanswered across a restart"

    # The controller stops for a while: forwarding goes on, the agents come back by themselves.
    p = pinger(lab, b.node, a.tunnel_ipv4)
    assert ctl.stop() == 0
    wait_until(lambda: a.status()["state"] != "connected", timeout=60,
               what="A notices the controller is gone")
    outage_end = time.monotonic() + 60
    while time.monotonic() < outage_end:  # the outage itself: traffic must flow throughout
        assert p.alive()
        time.sleep(1)
    ctl.start()
    for x in agents.values():
        x.wait_connected(timeout=60)
    sent, lost = ping_loss(p)
    assert sent > 50 and not lost, f"requests {lost} of {sent} unanswered in an outage"


def test_flush_on_exit_removes_everything(mesh):
    lab, ctl, agents, db = mesh
    a, b = agents["a"], agents["b"]
    wait_until(lambda: b.tunnel_ipv4 in a.kernel_routes("-4"), timeout=10)

    # The default stop leaves the dataplane (checked in the restart test); with
    # --flush-on-exit the interface, its peers and its routes go with nexd.
    assert a.stop() == 0
    a.daemon.args.append("--flush-on-exit")
    a.start()
    a.wait_connected()
    assert a.stop() == 0
    assert a.ifname not in lab.cmd(a.node, "ip", "link", "show")
    assert lab.cmd(a.node, "ip", "route", "show", "proto", "80") == ""
    assert lab.cmd(a.node, "ip", "-6", "route", "show", "proto", "80") == ""

    # Started again, the same device sets everything up anew.
    a.start()
    a.wait_connected()
    wait_until(lambda: b.tunnel_ipv4 in a.kernel_routes("-4"), timeout=10)


def test_enrollment_whose_answer_was_lost(postgres):
    """The service already has a device with nexd's public key, and nexd holds no device
    token for it (its enrollment's answer never arrived): nexd enrolls again with a new key
    pair instead of retrying a conflict forever."""
    lab = Lab(label="rekey")
    ctl = agent = None
    try:
        lan = lab.switch("lan")
        ctl_node, node = lab.host("ctl"), lab.host("a")
        lab.link(ctl_node, lan, addr_a="10.0.0.1/24")
        lab.link(node, lan, addr_a="10.0.0.11/24")
        ctl = Controller(lab, postgres, ctl_node, "10.0.0.1").start()
        vpc, reg_key = ctl.bootstrap()
        agent = Agent(lab, node, ctl.url, reg_key)
        private = subprocess.run(["wg", "genkey"], capture_output=True, text=True,
                                 check=True).stdout
        lost = subprocess.run(["wg", "pubkey"], input=private, capture_output=True, text=True,
                              check=True).stdout.strip()
        key_file = os.path.join(agent.daemon.state_dir, "nexd.key")
        with open(key_file, "w") as f:
            f.write(private)
        status, body = ctl.api("POST", "/api/devices", reg_key,
                               {"vpc_id": vpc, "public_key": lost})
        assert status == 201, body

        agent.start()
        me = agent.wait_connected()
        assert me["public_key"] != lost
        assert f"already has a device with public key {lost}" in agent.daemon.proc.log()
        assert os.stat(key_file).st_mode & 0o777 == 0o600
        with open(key_file) as f:
            assert f.read() != private
        status, devices = ctl.api("GET", f"/api/vpcs/{vpc}/devices", reg_key)
        assert status == 200, devices
        assert sorted(d["public_key"] for d in devices) == sorted([lost, me["public_key"]])
        agent.assert_healthy()
    finally:
        if agent:
            agent.cleanup()
        if ctl:
            ctl.cleanup()
        lab.teardown()
