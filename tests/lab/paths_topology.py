# SPDX-License-Identifier: GPL-2.0-or-later
"""The path-selection topology shared by tests/lab/test_nexd_paths.py and
tests/bench/bench-nexd-failover: a controller and two relays on a "public" segment, and
sites behind NAT routers of each kind, so that every path nexd can choose has a pair of
devices that needs it.

    ctl 203.0.113.1 (nexsrv + STUN)   stun 203.0.113.10 (coturn)
    x1  203.0.113.31 (relay)          x2   203.0.113.32 (relay)        all on "pub"
    c1 192.168.1.10 --lan1-- n1 (cone)      203.0.113.2
    c2 192.168.2.10 --lan2-- n2 (cone)      203.0.113.3
    s1 192.168.3.10 --lan3-- n3 (symmetric) 203.0.113.4
    s2 192.168.4.10 --lan4-- n4 (symmetric) 203.0.113.5
    l1 192.168.5.10 -+
    l2 192.168.5.11 -+-lan5-- n5 (cone)     203.0.113.6

Also the measuring tools: a ping every 20 ms with kernel timestamps (ping -D) and the gap
in its replies, per-pair forwarding counters on a relay (nftables), the relay a device
sends a peer's traffic through.
"""

import re
import time

from fixtures import start_coturn
from lab import wait_until
from nexd_env import Agent, Controller

CTL, STUN = "203.0.113.1", "203.0.113.10"
RELAYS = {"x1": "203.0.113.31", "x2": "203.0.113.32"}
# name: (router, nat, outside address, lan, host address)
SITES = {
    "c1": ("n1", "cone", "203.0.113.2", "lan1", "192.168.1.10"),
    "c2": ("n2", "cone", "203.0.113.3", "lan2", "192.168.2.10"),
    "s1": ("n3", "symmetric", "203.0.113.4", "lan3", "192.168.3.10"),
    "s2": ("n4", "symmetric", "203.0.113.5", "lan4", "192.168.4.10"),
    "l1": ("n5", "cone", "203.0.113.6", "lan5", "192.168.5.10"),
    "l2": ("n5", "cone", "203.0.113.6", "lan5", "192.168.5.11"),
}
NAT_INTERVAL_MS = 5000
COUNTERS_TABLE = "nxpaths"
ROUTER_FIREWALL = """
table ip nxpaths_fw {{
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname "{out}" ct state established,related accept
    iifname "{out}" drop
  }}
}}
"""


class Topology:
    """Everything built by build(): lab nodes, links, the controller and the agents."""

    def __init__(self, lab):
        self.lab = lab
        self.nodes = {}
        self.links = {}  # name -> the Link from its node to its switch
        self.routers = {}
        self.ctl = None
        self.agents = {}
        self.relay_names = list(RELAYS)

    def agent(self, name):
        return self.agents[name]

    def cleanup(self):
        for ag in self.agents.values():
            ag.cleanup()
        if self.ctl:
            self.ctl.cleanup()


def build(lab, db, sites=tuple(SITES), relays=tuple(RELAYS), start=True):
    """Builds the networks, starts nexsrv, coturn and (with start) every agent, waits
    until they are connected.  Returns a Topology; call its cleanup() however it ends.
    The caller sets NEXD_NAT_INTERVAL_MS (NAT_INTERVAL_MS) in the environment: a mapping
    that changes is noticed within seconds."""
    t = Topology(lab)
    pub = lab.switch("pub")
    for name, addr in (("ctl", CTL), ("stun", STUN)):
        t.nodes[name] = lab.host(name)
        t.links[name] = lab.link(t.nodes[name], pub, addr_a=f"{addr}/24")
    for name in relays:
        t.nodes[name] = lab.host(name)
        t.links[name] = lab.link(t.nodes[name], pub, addr_a=f"{RELAYS[name]}/24")
    lans = {}
    for name in sites:
        rname, nat, out, lan, host = SITES[name]
        if lan not in lans:
            lans[lan] = lab.switch(lan)
            gw = host.rsplit(".", 1)[0] + ".1/24"
            r = t.routers[rname] = lab.router(rname, nat=nat, inside=(lans[lan], gw),
                                              outside=(pub, f"{out}/24"))
            # Like a home router's firewall: nothing unsolicited from outside reaches the
            # router itself.  Without it a peer's first packet, arriving before the inside
            # device has sent anything, is taken for the router's own and its conntrack
            # entry occupies the port the inside device's mapping needs: the NAT then maps
            # that device to another port, and hole punching between two such NATs fails.
            lab.nft(r, ROUTER_FIREWALL.format(out=r.outside_if))
        t.nodes[name] = lab.host(name)
        t.links[name] = lab.link(t.nodes[name], lans[lan], addr_a=f"{host}/24")
    start_coturn(lab, t.nodes["stun"], STUN, 3478)
    t.ctl = Controller(lab, db, t.nodes["ctl"], CTL).start()
    _, key = t.ctl.bootstrap()
    t.key = key
    stun_args = ["--stun-server", f"{STUN}:3478"]
    for name in relays:
        t.agents[name] = Agent(lab, t.nodes[name], t.ctl.url, key, args=[*stun_args, "--relay"])
    for name in sites:
        t.agents[name] = Agent(lab, t.nodes[name], t.ctl.url, key, args=stun_args)
    if start:
        for ag in t.agents.values():
            ag.start()
        for ag in t.agents.values():
            ag.wait_connected(timeout=30)
    return t


# --- what a device shows ---------------------------------------------------------------------


def peer_of(agent, other):
    """agent's view of the peer `other` (an Agent), by tunnel address."""
    addr = other.tunnel_ipv4
    found = [p for p in agent.peers() if p["tunnel_ipv4"] == addr]
    assert len(found) == 1, f"{other.node} not among {agent.node}'s peers"
    return found[0]


def relay_in_use(t, agent, other):
    """The name of the relay whose WireGuard peer carries other's tunnel address on agent,
    or None when other's own peer carries it."""
    want = f"{other.tunnel_ipv4}/32"
    for p in agent.peers():
        if want in p["allowed_ips"]:
            for name in t.relay_names:
                if t.agents[name].tunnel_ipv4 == p["tunnel_ipv4"]:
                    return name
            return None
    raise AssertionError(f"no peer of {agent.node} carries {want}")


def path_is(agent, other, path, healthy=True):
    p = peer_of(agent, other)
    return p["path"] == path and (not healthy or p["healthy"]) and p


# --- relay forwarding counters ----------------------------------------------------------------


def relay_counters_init(t, name):
    """A table of our own on relay `name` whose forward chain counts per pair of addresses
    (see relay_forwarded); nexd's own table inet nexodus is not touched."""
    t.lab.nft(t.nodes[name], f"""
table inet {COUNTERS_TABLE} {{
  chain pairs {{
    type filter hook forward priority -10; policy accept;
  }}
}}
""")


def relay_count(t, name, src, dst):
    """Packets relay `name` has forwarded from tunnel address src to dst (0 before the
    counter existed: it is added on first use)."""
    node = t.nodes[name]
    rules = t.lab.cmd(node, "nft", "list", "chain", "inet", COUNTERS_TABLE, "pairs")
    m = re.search(rf"ip saddr {re.escape(src)} ip daddr {re.escape(dst)} counter packets (\d+)",
                  rules)
    if not m:
        t.lab.cmd(node, "nft", "add", "rule", "inet", COUNTERS_TABLE, "pairs", "ip", "saddr", src,
                  "ip", "daddr", dst, "counter")
        return 0
    return int(m.group(1))


def relays_forwarded(t, src, dst):
    """{relay: packets forwarded src -> dst} over every relay."""
    return {n: relay_count(t, n, src, dst) for n in t.relay_names}


# --- pings with timestamps ----------------------------------------------------------------------

PING_LINE = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)")


class Pinger:
    """ping -D every `interval` s in the background; gaps measured from reply timestamps."""

    def __init__(self, lab, node, addr, interval=0.02, size=None):
        self.lab, self.interval = lab, interval
        argv = ["ping", "-D", "-n", "-i", str(interval), "-W", "1"]
        if size:
            argv += ["-s", str(size)]
        self.proc = lab.popen(node, *argv, addr, name="pinger")
        self.stopped = False

    def replies(self):
        """[(wall time, seq)] of the replies so far."""
        out = []
        for line in self.proc.log().splitlines():
            m = PING_LINE.match(line)
            if m:
                out.append((float(m.group(1)), int(m.group(2))))
        return out

    def wait_replies(self, n=10, timeout=10, since=None):
        """Waits until n replies arrived (after wall time `since`)."""
        since = since or 0
        return wait_until(lambda: len([r for r in self.replies() if r[0] > since]) >= n,
                          timeout=timeout, interval=0.05, what=f"{n} ping replies")

    def stop(self):
        if not self.stopped:
            self.proc.signal(2)
            wait_until(lambda: not self.proc.alive(), timeout=5)
            self.stopped = True
        return self.replies()

    def gap(self, since=None, until=None):
        """The longest time without a reply between wall times since and until (the ends
        count as replies): (seconds, seq before, seq after)."""
        reps = sorted(self.replies())
        times = [(since, None)] if since else []
        times += [r for r in reps if (since is None or r[0] >= since)
                  and (until is None or r[0] <= until)]
        if until:
            times.append((until, None))
        best = (0.0, None, None)
        for (ta, sa), (tb, sb) in zip(times, times[1:]):
            if tb - ta > best[0]:
                best = (tb - ta, sa, sb)
        return best


def wait_flowing(pinger, since, n=25, timeout=15):
    """Waits until n replies in a row arrived after wall time since; returns the wall time
    of the first of them."""
    def run():
        reps = [r for r in sorted(pinger.replies()) if r[0] > since]
        streak = 1
        for i in range(1, len(reps)):
            streak = streak + 1 if reps[i][1] == reps[i - 1][1] + 1 else 1
            if streak >= n:
                return reps[i - n + 1][0]
        return None

    return wait_until(run, timeout=timeout, interval=0.05, what=f"{n} replies in a row")


def now():
    return time.time()
