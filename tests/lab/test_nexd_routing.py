# SPDX-License-Identifier: GPL-2.0-or-later
"""nexd as a router among routers: a subnet router carries a LAN that runs no agent into the
VPC, and FRR's zebra learns nexd's routes (protocol nexodus) as kernel routes, leaves them
alone, and bgpd hands them to a neighbour that installs them as BGP routes.

Subnet router:

    ctl 10.0.0.1 (nexsrv) --+
    a   10.0.0.11 ----------+-- lan     a --- h 192.168.50.10 (no nexd, default via a)
    c   10.0.0.13 ----------+           192.168.50.1, advertise-cidr 192.168.50.0/24

FRR:

    ctl 10.0.0.1 (nexsrv) --+
    a   10.0.0.11 ----------+-- lan     a 172.31.0.1 --- n 172.31.0.2
    b   10.0.0.12 ----------+           zebra+bgpd       zebra+bgpd
    c   10.0.0.13 ----------+           AS 65001   eBGP  AS 65002

Every FRR daemon runs from the lab temp dir with its own config, pid file, VTY sockets,
zebra API socket and pathspace, so two instances (and any system FRR) never meet.
"""

import json
import os
import shutil

import pytest

from lab import wait_until
from nexd_env import Agent, Controller, probe_addr

FRR_DIR = "/usr/lib/frr"
FRR_RUN_DIR = "/var/run/frr"  # -N PATHSPACE makes FRR_RUN_DIR/PATHSPACE
FRR_TMP_DIR = "/var/tmp/frr"  # each daemon's crash-log dir: DAEMON.PID
FRR_USER = "frr"  # Debian's daemons drop to frr:frr; their VTY group frrvty needs it
RTPROT_NEXODUS = "80"

SUBNET = "192.168.50.0/24"
SUBNET_ROUTER_ADDR = "192.168.50.1"
SUBNET_HOST_ADDR = "192.168.50.10"


class Vpc:
    """A LAN with nexsrv on it and agents enrolled with one registration key."""

    def __init__(self, lab, ctl, key, lan, db):
        self.lab, self.ctl, self.key, self.lan, self.db = lab, ctl, key, lan, db
        self.agents = {}
        self.frrs = []  # stopped and cleaned up before the agents

    def device(self, name, ip):
        node = self.lab.host(name)
        self.lab.link(node, self.lan, addr_a=f"{ip}/24")
        return node

    def agent(self, node, args=()):
        a = Agent(self.lab, node, self.ctl.url, self.key, args=args)
        self.agents[node.name] = a
        return a


@pytest.fixture
def vpc(lab, postgres):
    """The `lab` fixture tears the namespaces down (and attaches process logs on failure)."""
    ctl = net = None
    try:
        lan = lab.switch("lan")
        ctl_node = lab.host("ctl")
        lab.link(ctl_node, lan, addr_a="10.0.0.1/24")
        ctl = Controller(lab, postgres, ctl_node, "10.0.0.1").start()
        _, key = ctl.bootstrap()
        net = Vpc(lab, ctl, key, lan, postgres)
        yield net
        for a in net.agents.values():
            a.assert_healthy()
    finally:
        for f in (net.frrs if net else []):
            f.cleanup()
        for a in (net.agents if net else {}).values():
            a.cleanup()
        if ctl:
            ctl.cleanup()


# --- subnet router ----------------------------------------------------------------------------


def probe(agent):
    """An agent's path-probe address, routed by its peers like its tunnel addresses."""
    return probe_addr(agent.status()["public_key"])


def sysctl(lab, node, key):
    return lab.cmd(node, "sysctl", "-n", key).strip()


def test_subnet_router(vpc):
    lab = vpc.lab
    a_node = vpc.device("a", "10.0.0.11")
    c_node = vpc.device("c", "10.0.0.13")
    h = lab.host("h")
    lab.link(h, a_node, addr_a=f"{SUBNET_HOST_ADDR}/24", addr_b=f"{SUBNET_ROUTER_ADDR}/24")
    lab.route(h, "default", via=SUBNET_ROUTER_ADDR)
    # New namespaces may inherit forwarding from the host: start from off, so that nexd is
    # what turns it on.
    lab.cmd(a_node, "sysctl", "-qw", "net.ipv4.ip_forward=0")
    assert sysctl(lab, a_node, "net.ipv4.ip_forward") == "0"

    a = vpc.agent(a_node, args=["--advertise-cidr", SUBNET]).start()
    c = vpc.agent(c_node).start()
    a.wait_connected()
    c.wait_connected()
    a_key = a.status()["public_key"]

    # C routes the advertised prefix through its tunnel, to A.
    wait_until(lambda: SUBNET in c.kernel_routes("-4"), timeout=20,
               what=f"{SUBNET} proto nexodus on C")
    out = lab.cmd(c_node, "ip", "-4", "route", "show", SUBNET)
    assert f"dev {c.ifname} proto {RTPROT_NEXODUS}" in out, out
    assert c.kernel_routes("-4") == sorted([SUBNET, a.tunnel_ipv4])
    route = [r for r in c.routes() if r["prefix"] == SUBNET]
    assert len(route) == 1 and route[0]["peer_public_key"] == a_key, c.routes()
    assert route[0]["installed"], route
    # A does not route its own prefix into the tunnel; it has only C's address there.
    assert a.kernel_routes("-4") == [c.tunnel_ipv4]
    assert SUBNET not in {r["prefix"] for r in a.routes()}
    assert sysctl(lab, a_node, "net.ipv4.ip_forward") == "1"

    # H sees C's tunnel address as the source and answers through A, which routes the reply
    # into the tunnel.
    lab.nft(h, f"""
table ip nxlab_seen {{
  chain input {{
    type filter hook input priority filter; policy accept;
    ip saddr {c.tunnel_ipv4} icmp type echo-request counter
  }}
}}
""")
    wait_until(lambda: lab.ping_ok(c_node, SUBNET_HOST_ADDR), timeout=20,
               what=f"C pings {SUBNET_HOST_ADDR} behind A")
    res = lab.ping(c_node, SUBNET_HOST_ADDR, count=5, interval=0.1)
    assert res.received == res.transmitted == 5, res.output
    ruleset = json.loads(lab.cmd(h, "nft", "-j", "list", "table", "ip", "nxlab_seen"))
    counters = [x["counter"] for r in ruleset["nftables"] if "rule" in r
                for x in r["rule"]["expr"] if "counter" in x]
    assert counters and counters[0]["packets"] >= 6, ruleset


# --- FRR interop --------------------------------------------------------------------------------


class Frr:
    """zebra + bgpd of their own in namespace `node`, run in the foreground by the lab
    (stopped by PID), everything under <lab tmp>/frr-<node>."""

    def __init__(self, lab, node, bgpd_config, zebra_config=""):
        if not os.access(os.path.join(FRR_DIR, "zebra"), os.X_OK):
            pytest.fail("FRR is not installed (Debian package frr): run tools/deps")
        self.lab, self.node = lab, node
        self.pathspace = f"{lab.prefix}{node.name}"
        # FRR drops to frr:frr: the lab temp dir must be traversable, its own dir writable.
        os.chmod(lab.tmp, 0o711)
        self.dir = os.path.join(lab.tmp, f"frr-{node.name}")
        os.makedirs(self.dir)
        shutil.chown(self.dir, FRR_USER, FRR_USER)
        self.zsock = os.path.join(self.dir, "zserv.api")
        self.configs = {}
        for daemon, text in (("zebra", f"hostname {node.name}\n{zebra_config}"),
                             ("bgpd", bgpd_config)):
            path = os.path.join(self.dir, f"{daemon}.conf")
            with open(path, "w") as f:
                f.write(text)
            shutil.chown(path, FRR_USER, FRR_USER)
            self.configs[daemon] = path
        self.procs = {}  # the running (or last) instance of each daemon
        self.started = []  # every instance, for cleanup

    def _start(self, daemon):
        argv = [os.path.join(FRR_DIR, daemon), "-N", self.pathspace, "-f", self.configs[daemon],
                "-i", os.path.join(self.dir, f"{daemon}.pid"), "--vty_socket", self.dir,
                "-z", self.zsock, "-P", "0", "--log", "stdout", "--log-level", "info"]
        proc = self.lab.popen(self.node, *argv, name=f"{daemon}-{self.node.name}")
        self.procs[daemon] = proc
        self.started.append((daemon, proc))
        vty = os.path.join(self.dir, f"{daemon}.vty")
        wait_until(lambda: proc.check() and os.path.exists(vty) and
                   self.lab.run(self.node, "vtysh", "--vty_socket", self.dir, "-c",
                                "show version", check=False).returncode == 0,
                   timeout=15, what=f"{daemon} in {self.node.name} answering")

    def start(self):
        self._start("zebra")
        self._start("bgpd")
        return self

    def vtysh(self, command):
        return self.lab.cmd(self.node, "vtysh", "--vty_socket", self.dir, "-c", command)

    def json(self, command):
        return json.loads(self.vtysh(command + " json"))

    def stop(self, daemon=None):
        """Stops bgpd then zebra (or just `daemon`) by PID; returns their exit codes."""
        codes = {}
        for d in ([daemon] if daemon else ["bgpd", "zebra"]):
            proc = self.procs.get(d)
            if proc:
                codes[d] = proc.stop()
        return codes

    def cleanup(self):
        """Stops the daemons and removes what they left outside the lab temp dir."""
        self.stop()
        try:
            os.rmdir(os.path.join(FRR_RUN_DIR, self.pathspace))
        except (FileNotFoundError, OSError):
            pass
        for d, proc in self.started:
            path = os.path.join(FRR_TMP_DIR, f"{d}.{proc.pid}")
            if os.path.isdir(path) and not proc.alive():
                shutil.rmtree(path, ignore_errors=True)


def bgpd_config(asn, router_id, neighbor, neighbor_as, redistribute_kernel=False):
    return (f"router bgp {asn}\n"
            f" bgp router-id {router_id}\n"
            " no bgp ebgp-requires-policy\n"
            " no bgp network import-check\n"
            f" neighbor {neighbor} remote-as {neighbor_as}\n"
            f" neighbor {neighbor} timers connect 1\n"
            f" neighbor {neighbor} advertisement-interval 0\n"
            " address-family ipv4 unicast\n"
            + ("  redistribute kernel\n" if redistribute_kernel else "")
            + " exit-address-family\n"
            "exit\n")


def kernel_routes_by_proto(lab, node, proto):
    out = lab.cmd(node, "ip", "-4", "route", "show", "proto", proto)
    return sorted(line.split()[0] for line in out.splitlines() if line.strip())


def foreign_routes(lab, node):
    """Routes in node's main tables (both families) that neither the kernel nor nexd made."""
    out = lab.cmd(node, "ip", "-4", "route", "show") + lab.cmd(node, "ip", "-6", "route", "show")
    mine = (" proto kernel ", f" proto {RTPROT_NEXODUS} ")
    return [line for line in out.splitlines()
            if line.strip() and not any(m in f"{line} " for m in mine)]


def test_frr_learns_and_advertises_nexd_routes(vpc):
    lab = vpc.lab
    a_node = vpc.device("a", "10.0.0.11")
    b_node = vpc.device("b", "10.0.0.12")
    c_node = vpc.device("c", "10.0.0.13")
    n = lab.host("n")
    lab.link(a_node, n, addr_a="172.31.0.1/30", addr_b="172.31.0.2/30")

    # FRR runs in A before nexd: zebra learns the interface and the routes as they come.
    frr_a = Frr(lab, a_node, bgpd_config(65001, "172.31.0.1", "172.31.0.2", 65002,
                                         redistribute_kernel=True))
    frr_n = Frr(lab, n, bgpd_config(65002, "172.31.0.2", "172.31.0.1", 65001))
    vpc.frrs += [frr_a, frr_n]
    frr_a.start()
    frr_n.start()
    wait_until(lambda: frr_n.json("show ip bgp summary")["ipv4Unicast"]["peers"]
               ["172.31.0.1"]["state"] == "Established", timeout=20, what="BGP session up")

    agents = {x.name: vpc.agent(x).start() for x in (a_node, b_node, c_node)}
    for x in agents.values():
        x.wait_connected()
    a, b, c = agents["a"], agents["b"], agents["c"]
    peers = sorted([b.tunnel_ipv4, c.tunnel_ipv4])
    wait_until(lambda: a.kernel_routes("-4") == peers, timeout=20, what="A's peer routes")

    # zebra in A holds them as kernel routes through nexd's interface.
    def zebra_kernel_routes():
        rib = frr_a.json("show ip route kernel")
        return sorted(p.split("/")[0] for p, entries in rib.items()
                      if any(e["protocol"] == "kernel" and e.get("selected") and
                             any(h.get("interfaceName") == a.ifname
                                 for h in e.get("nexthops", []))
                             for e in entries))

    wait_until(lambda: zebra_kernel_routes() == peers, timeout=10,
               what="zebra in A learns nexd's routes")

    # N learns them over BGP, with A as next hop, and its zebra installs them.
    def n_bgp_routes():
        return kernel_routes_by_proto(lab, n, "bgp") == peers

    wait_until(n_bgp_routes, timeout=20, what="N installs the peers' /32s as proto bgp")
    bgp = frr_n.json("show ip bgp")["routes"]
    for ip in peers:
        paths = bgp[f"{ip}/32"]
        assert any(p.get("bestpath") for p in paths), paths
        assert paths[0]["nexthops"][0]["ip"] == "172.31.0.1", paths
    for ip in peers:
        out = lab.cmd(n, "ip", "-4", "route", "show", f"{ip}/32")
        assert "via 172.31.0.1" in out and "proto bgp" in out, out

    # zebra left nexd's routes as nexd made them, installed nothing of its own in A, and nexd
    # still counts them as installed.
    assert a.kernel_routes("-4") == peers
    assert a.kernel_routes("-6") == sorted([b.tunnel_ipv6, c.tunnel_ipv6, probe(b), probe(c)])
    assert foreign_routes(lab, a_node) == []
    assert all(r["installed"] for r in a.routes()), a.routes()
    wait_until(lambda: lab.ping_ok(a_node, b.tunnel_ipv4) and lab.ping_ok(a_node, c.tunnel_ipv4),
               timeout=20, what="A still reaches its peers")

    # A device deleted at the service: nexd removes its route, zebra and BGP withdraw it.
    c_id = c.status()["device_id"]
    vpc.db.psql(f"DELETE FROM devices WHERE id = '{c_id}'")
    wait_until(lambda: a.kernel_routes("-4") == [b.tunnel_ipv4], timeout=5,
               what="nexd in A drops C's route")
    wait_until(lambda: kernel_routes_by_proto(lab, n, "bgp") == [b.tunnel_ipv4], timeout=20,
               what="N drops C's route")
    assert f"{c.tunnel_ipv4}/32" not in frr_n.json("show ip bgp")["routes"]
    wait_until(lambda: c.status()["state"] == "error", timeout=5, what="C told it was deleted")

    # zebra and bgpd in A stop: nexd's routes stay, and N loses what A announced.
    codes = frr_a.stop()
    assert codes == {"bgpd": 0, "zebra": 0}, codes
    assert a.kernel_routes("-4") == [b.tunnel_ipv4]
    assert lab.ping_ok(a_node, b.tunnel_ipv4)
    wait_until(lambda: kernel_routes_by_proto(lab, n, "bgp") == [], timeout=20,
               what="N withdraws A's routes once A's bgpd is gone")

    # FRR starts again with nexd's route already in place: zebra's startup sweep of stale
    # routes leaves protocol nexodus alone, and N learns the route again.
    frr_a.start()
    wait_until(lambda: zebra_kernel_routes() == [b.tunnel_ipv4], timeout=10,
               what="zebra in A reads nexd's route at startup")
    wait_until(lambda: kernel_routes_by_proto(lab, n, "bgp") == [b.tunnel_ipv4], timeout=20,
               what="N learns B's route again")
    assert a.kernel_routes("-4") == [b.tunnel_ipv4]
    assert a.kernel_routes("-6") == sorted([b.tunnel_ipv6, probe(b)])
    assert foreign_routes(lab, a_node) == []
    assert lab.ping_ok(a_node, b.tunnel_ipv4)
