# SPDX-License-Identifier: GPL-2.0-or-later
"""Real network topologies in Linux network namespaces, for the lab tests.

Every user-visible behaviour of nexd and nexsrv is checked against a real kernel
(veth pairs, bridges, nftables NAT, routes, wireguard-go) and real traffic.  A Lab
owns everything one test builds -- namespaces, processes, a temp dir -- under one
unique run prefix ("nxl" + 5 hex digits), records it in a marker file under
/run/nexodus-lab, and tears it all down however the test ends (pytest finalizer,
atexit, SIGTERM/SIGHUP).  sweep.py removes what a crashed run left behind.

    lab = Lab("label")                 # or the `lab` fixture
    pub = lab.switch("pub")            # a bridge alone in namespace <prefix>-pub
    s = lab.host("s")
    lab.link(s, pub, addr_a="203.0.113.10/24")
    r = lab.router("r", nat="cone", inside=(lan, "192.168.1.1/24"),
                   outside=(pub, "203.0.113.2/24"))
    lab.cmd(s, "ip", "route")          # run in a namespace; CmdError carries stderr
    wait_until(lambda: lab.ping_ok(a, "203.0.113.10"), timeout=5)
    wg = lab.wireguard(s, "wg0", address="10.99.0.1/24", listen_port=51820)  # wgdev.py
    lab.netem(s, ifname, delay_ms=40, loss=1.0)
    lab.teardown()                     # idempotent; also run by fixture/atexit/signal
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

LAB_DIR = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
RUN_DIR = "/run/nexodus-lab"
TMP_ROOT = "/tmp"
FAMILY = "nxl"
PREFIX_RE = re.compile(r"^nxl[0-9a-f]{5}$")
NS_RE = re.compile(r"^(nxl[0-9a-f]{5})-[A-Za-z0-9_.-]+$")
NODE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,23}$")
IFNAME_MAX = 15  # IFNAMSIZ - 1
STOP_TIMEOUT = 3.0


class LabError(Exception):
    """Something the lab could not build, run or tear down."""


class CmdError(LabError):
    """A command failed; carries argv, return code and both outputs."""

    def __init__(self, argv, returncode, stdout, stderr):
        self.argv = [str(a) for a in argv]
        self.returncode = returncode
        self.stdout = stdout or ""
        self.stderr = stderr or ""
        super().__init__(
            f"command failed (rc={returncode}): {shlex.join(self.argv)}\n"
            f"stderr: {self.stderr.strip()[-4000:]}\n"
            f"stdout: {self.stdout.strip()[-2000:]}"
        )


class WaitTimeout(AssertionError):
    """wait_until() gave up; the message holds the last value or exception."""


# ---------------------------------------------------------------------------
# small helpers


def _env(extra=None):
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    if extra:
        env.update(extra)
    return env


def run(argv, *, input=None, check=True, timeout=30.0, env=None, cwd=None):
    """Run argv to completion, capturing text output; raise CmdError on failure."""
    argv = [str(a) for a in argv]
    try:
        p = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_env(env),
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise CmdError(argv, None, out, f"timed out after {timeout}s") from None
    if check and p.returncode != 0:
        raise CmdError(argv, p.returncode, p.stdout, p.stderr)
    return p


def wait_until(fn, timeout=10.0, interval=0.1, what=None):
    """Call fn() until it returns a true value and return that value.

    Exceptions raised by fn (including failed asserts) count as "not yet".  After
    `timeout` seconds raise WaitTimeout naming the last value or exception.  This is
    the only way lab tests wait: bounded retries, never fixed sleeps.
    """
    deadline = time.monotonic() + timeout
    last, last_exc, tries = None, None, 0
    while True:
        tries += 1
        try:
            last = fn()
            last_exc = None
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - every failure means "retry"
            last_exc = e
        now = time.monotonic()
        if now >= deadline:
            break
        time.sleep(min(interval, deadline - now))
    desc = what or getattr(fn, "__name__", repr(fn))
    tail = f"last exception: {last_exc!r}" if last_exc is not None else f"last value: {last!r}"
    raise WaitTimeout(f"{desc}: not satisfied after {timeout:g}s ({tries} tries); {tail}") from last_exc


def proc_starttime(pid):
    """Start time of pid in clock ticks since boot (None if gone or a zombie)."""
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            stat = f.read()
    except (OSError, ValueError):
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def pid_alive(pid, starttime=None):
    """True if pid runs and (when given) started at `starttime` -- guards against reuse."""
    st = proc_starttime(pid)
    return st is not None and (starttime is None or st == starttime)


def netns_list():
    """Names of all named network namespaces (ip netns list)."""
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_pids(ns):
    p = run(["ip", "netns", "pids", ns], check=False)
    if p.returncode != 0:
        return []
    return [int(x) for x in p.stdout.split() if x.isdigit()]


def kill_netns(ns, timeout=5.0):
    """SIGKILL whatever still runs in namespace ns, then delete ns.  Lab-owned ns only."""
    for pid in netns_pids(ns):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until(lambda: not netns_pids(ns), timeout=timeout, interval=0.05, what=f"processes of {ns} gone")
    p = run(["ip", "netns", "del", ns], check=False)
    if p.returncode != 0 and ns in netns_list():  # gone already is fine (concurrent sweep)
        raise CmdError(["ip", "netns", "del", ns], p.returncode, p.stdout, p.stderr)


def _mounts_under(path):
    """Mount points at or below path in our mount namespace, deepest first."""
    path = os.path.realpath(path)
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split()[4]
                mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), mp)
                if mp == path or mp.startswith(path + "/"):
                    found.append(mp)
    except OSError:
        pass
    return sorted(found, key=len, reverse=True)


def remove_tree(path):
    """Unmount anything mounted below path, then delete it (never crossing mounts)."""
    for mp in _mounts_under(path):
        run(["umount", "-l", mp], check=False)
    if _mounts_under(path):
        raise LabError(f"{path}: still has mounts, not removing")

    def onerror(func, p, exc_info):
        if not isinstance(exc_info[1], FileNotFoundError):  # gone already is fine
            raise exc_info[1]

    shutil.rmtree(path, onerror=onerror)


def _ip_only(addr):
    return str(ipaddress.ip_interface(addr).ip)


# ---------------------------------------------------------------------------
# run registry: what sweep.py needs to clean up after a crashed run


class RunRecord:
    """Marker file RUN_DIR/<prefix>.json: owner pid (+start time), temp dirs, pids.

    Written before the run creates anything, updated as it goes, removed by a clean
    teardown.  A run whose owner is dead is fair game for sweep.py.
    """

    def __init__(self, prefix, data):
        self.prefix = prefix
        self.path = os.path.join(RUN_DIR, prefix + ".json")
        self.data = data
        self._lock = threading.Lock()

    @classmethod
    def create(cls, kind, label="", owner=None, owner_start=None):
        owner = os.getpid() if owner is None else owner
        if owner_start is None:
            owner_start = proc_starttime(owner)
        taken = {m.group(1) for m in map(NS_RE.match, netns_list()) if m}
        for _ in range(100):
            prefix = FAMILY + secrets.token_hex(3)[:5]
            if prefix in taken:
                continue
            data = {
                "prefix": prefix,
                "kind": kind,
                "label": label,
                "owner": owner,
                "owner_start": owner_start,
                "created": time.time(),
                "tmpdirs": [],
                "pids": [],
            }
            rec = cls(prefix, data)
            # Write aside, then link into place: exclusive, and never seen half-written.
            os.makedirs(RUN_DIR, mode=0o755, exist_ok=True)
            tmp = f"{rec.path}.{os.getpid()}.tmp"
            try:
                with open(tmp, "w") as f:
                    json.dump(data, f)
                os.link(tmp, rec.path)
            except (FileExistsError, FileNotFoundError):  # taken, or RUN_DIR just removed
                continue
            finally:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
            return rec
        raise LabError("could not reserve a run prefix")

    @classmethod
    def load(cls, path):
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            data = None
        prefix = os.path.basename(path)[: -len(".json")]
        if not PREFIX_RE.match(prefix):
            return None
        if not isinstance(data, dict):
            return None  # unreadable: not ours to judge
        return cls(prefix, data)

    @classmethod
    def all(cls):
        try:
            names = os.listdir(RUN_DIR)
        except FileNotFoundError:
            return []
        recs = (cls.load(os.path.join(RUN_DIR, n)) for n in sorted(names) if n.endswith(".json"))
        return [r for r in recs if r is not None]

    def owner_alive(self):
        owner = self.data.get("owner")
        return isinstance(owner, int) and pid_alive(owner, self.data.get("owner_start"))

    def save(self):
        with self._lock:
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                json.dump(self.data, f)
            os.replace(tmp, self.path)

    def add_tmpdir(self, path):
        self.data["tmpdirs"].append(path)
        self.save()

    def add_pid(self, pid):
        self.data["pids"].append([pid, proc_starttime(pid)])
        self.save()

    def drop_pid(self, pid):
        self.data["pids"] = [p for p in self.data["pids"] if p[0] != pid]
        self.save()

    def remove(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        try:
            os.rmdir(RUN_DIR)
        except OSError:
            pass


# ---------------------------------------------------------------------------
# teardown on every exit path: finalizers call teardown(); atexit and
# SIGTERM/SIGHUP run whatever is still registered.

_cleanups = {}
_cleanup_lock = threading.Lock()
_owner_pid = os.getpid()
_prev_handlers = {}
_handlers_installed = False


def register_cleanup(key, fn):
    _install_handlers()
    with _cleanup_lock:
        _cleanups[key] = fn


def unregister_cleanup(key):
    with _cleanup_lock:
        _cleanups.pop(key, None)


def run_cleanups():
    if os.getpid() != _owner_pid:
        return
    with _cleanup_lock:
        items = list(_cleanups.items())
    for key, fn in reversed(items):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - keep cleaning up the rest
            print(f"lab cleanup {key!r} failed: {e}", file=sys.stderr)
        unregister_cleanup(key)


def _on_signal(signum, frame):
    run_cleanups()
    prev = _prev_handlers.get(signum)
    if callable(prev):
        prev(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers():
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(run_cleanups)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        prev = signal.getsignal(sig)
        if prev is signal.SIG_IGN:
            continue
        _prev_handlers[sig] = prev
        signal.signal(sig, _on_signal)


# ---------------------------------------------------------------------------
# processes


class Proc:
    """A process started by the lab; output goes to a log file in the lab temp dir."""

    def __init__(self, name, argv, ns, popen, log_path):
        self.name = name
        self.argv = argv
        self.ns = ns
        self.popen = popen
        self.pid = popen.pid
        self.starttime = proc_starttime(popen.pid)
        self.log_path = log_path

    def __repr__(self):
        return f"<Proc {self.name} pid={self.pid} ns={self.ns}>"

    def alive(self):
        return self.popen.poll() is None

    @property
    def returncode(self):
        return self.popen.poll()

    def log(self, tail=None):
        try:
            with open(self.log_path, errors="replace") as f:
                text = f.read()
        except OSError:
            return ""
        if tail:
            text = "\n".join(text.splitlines()[-tail:])
        return text

    def check(self):
        """Raise with the log tail if the process has exited."""
        if not self.alive():
            raise LabError(f"{self.name} (pid {self.pid}) exited rc={self.returncode}:\n{self.log(40)}")
        return True

    def signal(self, sig):
        # Only while unreaped: the pid (= our session/process group) is then surely ours.
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout=STOP_TIMEOUT):
        stop_procs([self], timeout)
        return self.returncode


def stop_procs(procs, timeout=STOP_TIMEOUT):
    """SIGTERM all, wait up to timeout, SIGKILL stragglers; returns error strings."""
    live = [p for p in procs if p.alive()]
    for p in live:
        p.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in live:
        try:
            p.popen.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    errors = []
    for p in live:
        if p.alive():
            p.signal(signal.SIGKILL)
            try:
                p.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                errors.append(f"{p!r} survived SIGKILL")
    return errors


# ---------------------------------------------------------------------------
# topology objects


@dataclass
class Iface:
    node: "Node"
    name: str
    addrs: list = field(default_factory=list)
    peer: "Iface | None" = None

    def __str__(self):
        return self.name


@dataclass
class Link:
    """A veth pair; a is the first node's end, b the second's (a switch port if b is a switch)."""

    lab: "Lab"
    a: Iface
    b: Iface

    def down(self):
        self.lab.link_down(self.a.node, self.a.name)

    def up(self):
        self.lab.link_up(self.a.node, self.a.name)


@dataclass
class PingResult:
    transmitted: int
    received: int
    rtts: list
    output: str

    @property
    def ok(self):
        return self.received > 0


class Node:
    """A network namespace; its name in the kernel is '<prefix>-<name>'."""

    kind = "host"

    def __init__(self, lab, name, ns):
        self.lab = lab
        self.name = name
        self.ns = ns
        self.ifaces = {}
        self.routes = []  # (dst, via, dev) the lab installed; restored by link_up
        self.gateway = None

    def __str__(self):
        return self.ns

    def __repr__(self):
        return f"<{type(self).__name__} {self.ns}>"

    def cmd(self, *argv, **kw):
        return self.lab.cmd(self, *argv, **kw)

    def run(self, *argv, **kw):
        return self.lab.run(self, *argv, **kw)

    def popen(self, *argv, **kw):
        return self.lab.popen(self, *argv, **kw)

    def ping(self, addr, **kw):
        return self.lab.ping(self, addr, **kw)

    def ping_ok(self, addr, **kw):
        return self.lab.ping_ok(self, addr, **kw)

    def addr(self, ifname=None):
        """First address (without prefix length) of ifname or of the first interface."""
        ifaces = [self.ifaces[ifname]] if ifname else list(self.ifaces.values())
        for i in ifaces:
            if i.addrs:
                return _ip_only(i.addrs[0])
        raise LabError(f"{self.ns}: no address" + (f" on {ifname}" if ifname else ""))


class Switch(Node):
    """A LAN: a Linux bridge (br0) alone in its namespace; ports are veths."""

    kind = "switch"
    bridge = "br0"

    def __init__(self, lab, name, ns):
        super().__init__(lab, name, ns)
        self.members = []  # (node, iface) attached to this switch


class Router(Node):
    kind = "router"

    def __init__(self, lab, name, ns):
        super().__init__(lab, name, ns)
        self.nat = None
        self.outside_if = None
        self.inside_ifs = []

    @property
    def outside_addr(self):
        return self.addr(self.outside_if)


# ---------------------------------------------------------------------------
# the lab


class Lab:
    """Everything one test builds.  Use as a context manager or call teardown()."""

    _tc_netem_ok = None  # kernel has sch_netem? (probed once per process)

    def __init__(self, label="lab"):
        self.record = RunRecord.create("lab", label=label)
        self.prefix = self.record.prefix
        self.nodes = {}
        self.procs = []
        self.netems = {}
        self._nlinks = 0
        self._nqueue = 0
        self._torn_down = False
        register_cleanup(id(self), self.teardown)
        self.tmp = tempfile.mkdtemp(prefix=self.prefix + "-", dir=TMP_ROOT)
        self.record.add_tmpdir(self.tmp)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.teardown()

    def __repr__(self):
        return f"<Lab {self.prefix}>"

    # -- namespaces ---------------------------------------------------------

    def node(self, ref):
        """Node for a Node, short name or full namespace name."""
        if isinstance(ref, Node):
            if ref.lab is not self:
                raise LabError(f"{ref!r} belongs to another lab")
            return ref
        if ref in self.nodes:
            return self.nodes[ref]
        for n in self.nodes.values():
            if n.ns == ref:
                return n
        raise LabError(f"{ref!r} is not a namespace of {self!r}")

    def _ns_argv(self, ns, argv):
        argv = [str(a) for a in argv]
        if ns is None:
            return argv
        return ["ip", "netns", "exec", self.node(ns).ns, *argv]

    def _add_node(self, name, cls):
        if not NODE_NAME_RE.match(name):
            raise LabError(f"bad node name {name!r}")
        if name in self.nodes:
            raise LabError(f"node {name!r} exists")
        if self._torn_down:
            raise LabError(f"{self!r} is torn down")
        ns = f"{self.prefix}-{name}"
        node = cls(self, name, ns)
        run(["ip", "netns", "add", ns])
        self.nodes[name] = node
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        return node

    def host(self, name):
        return self._add_node(name, Node)

    def switch(self, name):
        sw = self._add_node(name, Switch)
        run(["ip", "-n", sw.ns, "link", "add", sw.bridge, "type", "bridge", "stp_state", "0",
             "forward_delay", "0", "mcast_snooping", "0"])
        run(["ip", "-n", sw.ns, "link", "set", sw.bridge, "up"])
        return sw

    def router(self, name, nat=None, inside=None, outside=None, outside_gw=None):
        """A forwarding namespace, optionally NATing to `outside`.

        inside / outside: (switch_or_node, "addr/len") -- or a list of those for inside.
        nat: None, "cone" (plain masquerade: keeps the source port when free, and one
        mapping for all destinations = endpoint-independent mapping) or "symmetric"
        (masquerade fully-random: a new random port per destination).  Both filter
        like conntrack does, per address and port (RFC 4787 APDF): only replies from
        the endpoint a flow was opened to come back in -- so "cone" is a
        port-restricted cone, not a full cone.  Hosts on an inside switch get their
        default route via the router.
        """
        if nat not in (None, "cone", "symmetric"):
            raise LabError(f"nat must be None, 'cone' or 'symmetric', not {nat!r}")
        r = self._add_node(name, Router)
        r.nat = nat
        self.sysctl(r, "net.ipv4.ip_forward", 1)
        self.sysctl(r, "net.ipv6.conf.all.forwarding", 1)
        if outside is not None:
            target, addr = outside[0], outside[1]
            r.outside_if = self.link(r, target, addr_a=addr).a.name
        if inside is not None:
            for target, addr in [inside] if isinstance(inside, tuple) else inside:
                ifc = self.link(r, target, addr_a=addr).a
                r.inside_ifs.append(ifc.name)
                target = self.node(target)
                if isinstance(target, Switch):
                    target.gateway = _ip_only(addr)
                    for member, _ in target.members:
                        self._auto_default(member, target)
        if outside_gw:
            self.route(r, "default", via=outside_gw)
        if nat:
            if not r.outside_if:
                raise LabError("a NAT router needs outside=")
            masq = "masquerade" if nat == "cone" else "masquerade fully-random"
            self.nft(r, f"""
table ip nxlab_nat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "{r.outside_if}" {masq}
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    iifname "{r.outside_if}" ct state established,related accept
    iifname "{r.outside_if}" drop
  }}
}}
""")
        return r

    def sysctl(self, ns, key, value):
        self.cmd(ns, "sysctl", "-q", "-w", f"{key}={value}")

    def nft(self, ns, ruleset):
        """Load an nftables ruleset (nft -f -) in ns."""
        self.cmd(ns, "nft", "-f", "-", input=ruleset)

    # -- links ---------------------------------------------------------------

    def link(self, a, b, addr_a=None, addr_b=None, ifname_a=None, ifname_b=None, mtu=None):
        """Connect a and b with a veth pair.  If b (or a) is a switch, the node is
        attached to its bridge.  addr_* are "ip/len" strings (or lists of them).
        Interface names default to <prefix>l<n>a / <prefix>l<n>b (unique per lab)."""
        a, b = self.node(a), self.node(b)
        if isinstance(a, Switch) and not isinstance(b, Switch):
            a, b, addr_a, addr_b, ifname_a, ifname_b = b, a, addr_b, addr_a, ifname_b, ifname_a
        if isinstance(b, Switch) and addr_b:
            raise LabError("a switch port has no address")
        self._nlinks += 1
        na = ifname_a or f"{self.prefix}l{self._nlinks}a"
        nb = ifname_b or f"{self.prefix}l{self._nlinks}b"
        for n in (na, nb):
            if len(n) > IFNAME_MAX:
                raise LabError(f"interface name {n!r} longer than {IFNAME_MAX}")
        argv = ["ip", "-n", a.ns, "link", "add", na]
        if mtu:
            argv += ["mtu", mtu]
        argv += ["type", "veth", "peer", "name", nb, "netns", b.ns]
        if mtu:
            argv += ["mtu", mtu]
        run(argv)
        ia, ib = Iface(a, na), Iface(b, nb)
        ia.peer, ib.peer = ib, ia
        a.ifaces[na], b.ifaces[nb] = ia, ib
        for node, ifc, addrs in ((a, ia, addr_a), (b, ib, addr_b)):
            if isinstance(node, Switch):
                run(["ip", "-n", node.ns, "link", "set", ifc.name, "master", node.bridge])
            for addr in [addrs] if isinstance(addrs, str) else (addrs or []):
                self.addr_add(node, ifc.name, addr)
            run(["ip", "-n", node.ns, "link", "set", ifc.name, "up"])
        if isinstance(b, Switch):
            b.members.append((a, ia))
            self._auto_default(a, b)
        if isinstance(a, Switch) and not isinstance(b, Switch):
            a.members.append((b, ib))
        return Link(self, ia, ib)

    def attach(self, node, switch, addr=None, **kw):
        """Plug node into switch; the node's end gets addr."""
        return self.link(node, switch, addr_a=addr, **kw)

    def addr_add(self, ns, ifname, addr):
        node = self.node(ns)
        extra = ["nodad"] if ipaddress.ip_interface(addr).version == 6 else []
        run(["ip", "-n", node.ns, "addr", "add", addr, "dev", ifname, *extra])
        if ifname in node.ifaces:
            node.ifaces[ifname].addrs.append(addr)

    def route(self, ns, dst, via=None, dev=None):
        """ip route replace dst [via] [dev] in ns; remembered so link_up restores it."""
        node = self.node(ns)
        argv = ["ip", "-n", node.ns, "route", "replace", dst]
        if via:
            argv += ["via", via]
        if dev:
            argv += ["dev", dev]
        run(argv)
        node.routes = [r for r in node.routes if r[0] != dst] + [(dst, via, dev)]

    def _auto_default(self, node, switch):
        if node.kind != "host" or node.gateway or not switch.gateway:
            return
        gw = ipaddress.ip_address(switch.gateway)
        for _, ifc in [m for m in switch.members if m[0] is node]:
            if any(gw in ipaddress.ip_interface(a).network for a in ifc.addrs):
                self.route(node, "default", via=switch.gateway)
                node.gateway = switch.gateway
                return

    def link_down(self, ns, ifname):
        run(["ip", "-n", self.node(ns).ns, "link", "set", ifname, "down"])

    def link_up(self, ns, ifname):
        """Bring ifname up and put back the routes the kernel dropped with it."""
        node = self.node(ns)
        run(["ip", "-n", node.ns, "link", "set", ifname, "up"])
        for dst, via, dev in node.routes:
            argv = ["ip", "-n", node.ns, "route", "replace", dst]
            argv += (["via", via] if via else []) + (["dev", dev] if dev else [])
            p = run(argv, check=False)
            if p.returncode != 0 and "unreachable" not in p.stderr.lower():
                raise CmdError(argv, p.returncode, p.stdout, p.stderr)

    # -- impairment ------------------------------------------------------------

    def netem(self, ns, ifname, delay_ms=0, loss=0.0, jitter_ms=0, seed=None):
        """Delay/drop frames leaving ifname in ns (loss in percent), like netem.

        Uses `tc qdisc ... netem` when the kernel has sch_netem.  This lab kernel
        lacks it, so the fallback diverts the interface's egress (clsact + u32 +
        mirred) to a TAP owned by netemu.py, which holds or drops each frame and sends
        it out of ifname, bypassing tc.  Ethernet interfaces (veth) only.  Returns the
        backend used: "tc" or "netemu".
        """
        node = self.node(ns)
        self.netem_clear(node, ifname)
        if Lab._tc_netem_ok is not False:
            argv = ["tc", "qdisc", "replace", "dev", ifname, "root", "netem"]
            if delay_ms or jitter_ms:
                argv += ["delay", f"{delay_ms}ms"] + ([f"{jitter_ms}ms"] if jitter_ms else [])
            if loss:
                argv += ["loss", f"{loss}%"]
            p = self.run(node, *argv, check=False)
            if p.returncode == 0:
                Lab._tc_netem_ok = True
                self.netems[(node.ns, ifname)] = ("tc", None)
                return "tc"
            if "unknown" not in p.stderr.lower():
                raise CmdError(argv, p.returncode, p.stdout, p.stderr)
            Lab._tc_netem_ok = False
        self._nqueue += 1
        tap = f"{self.prefix}n{self._nqueue}"
        argv = [PYTHON, os.path.join(LAB_DIR, "netemu.py"), "--dev", ifname, "--tap", tap,
                "--delay-ms", delay_ms, "--jitter-ms", jitter_ms, "--loss", loss]
        if seed is not None:
            argv += ["--seed", seed]
        proc = self.popen(node, *argv, name=f"netemu-{node.name}-{ifname}")
        try:
            wait_until(lambda: proc.check() and "ready" in proc.log(), timeout=5, interval=0.02,
                       what=f"netemu on {node.ns}/{ifname}")
            self.cmd(node, "tc", "qdisc", "add", "dev", ifname, "clsact")
            self.cmd(node, "tc", "filter", "add", "dev", ifname, "egress", "protocol", "all",
                     "prio", "1", "u32", "match", "u32", "0", "0",
                     "action", "mirred", "egress", "redirect", "dev", tap)
        except Exception:
            self.run(node, "tc", "qdisc", "del", "dev", ifname, "clsact", check=False)
            proc.stop()
            raise
        self.netems[(node.ns, ifname)] = ("netemu", proc)
        return "netemu"

    def netem_clear(self, ns, ifname):
        """Undo netem() on ifname (no-op if none)."""
        node = self.node(ns)
        kind, proc = self.netems.pop((node.ns, ifname), (None, None))
        if kind == "tc":
            self.run(node, "tc", "qdisc", "del", "dev", ifname, "root", check=False)
        elif kind == "netemu":
            self.run(node, "tc", "qdisc", "del", "dev", ifname, "clsact", check=False)
            proc.stop()

    # -- commands and processes ----------------------------------------------

    def run(self, ns, *argv, input=None, check=True, timeout=30.0, env=None):
        """Run argv in ns (None = the root namespace); returns CompletedProcess."""
        return run(self._ns_argv(ns, argv), input=input, check=check, timeout=timeout, env=env)

    def cmd(self, ns, *argv, **kw):
        """Run argv in ns; return its stdout, raise CmdError (with stderr) on failure."""
        return self.run(ns, *argv, **kw).stdout

    def popen(self, ns, *argv, name=None, env=None, log=None):
        """Start argv in ns in the background, tracked and killed at teardown.
        stdout+stderr go to log (default <tmp>/<name>.log)."""
        if self._torn_down:
            raise LabError(f"{self!r} is torn down")
        name = name or os.path.basename(str(argv[0]))
        log_path = log or os.path.join(self.tmp, f"{name}.{len(self.procs)}.log")
        full = self._ns_argv(ns, argv)
        with open(log_path, "ab") as logf:
            popen = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT, env=_env(env),
                                     start_new_session=True, cwd=self.tmp)
        proc = Proc(name, full, self.node(ns).ns if ns is not None else None, popen, log_path)
        self.procs.append(proc)
        self.record.add_pid(proc.pid)
        return proc

    def ping(self, ns, addr, count=1, timeout=1.0, interval=0.2, size=None):
        """ping from ns; returns PingResult (transmitted, received, rtts in ms)."""
        argv = ["ping", "-n", "-c", count, "-W", timeout, "-i", interval]
        if size:
            argv += ["-s", size]
        p = self.run(ns, *argv, addr, check=False, timeout=count * (interval + timeout) + 5)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", p.stdout)
        rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", p.stdout)]
        tx, rx = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        return PingResult(tx, rx, rtts, p.stdout + p.stderr)

    def ping_ok(self, ns, addr, count=1, timeout=1.0):
        """True if at least one echo reply came back."""
        return self.ping(ns, addr, count=count, timeout=timeout).ok

    def stun(self, ns, *servers, local_port=None, local_ip=None, timeout=3.0):
        """STUN Binding from ns to each server ("ip:port"), same local socket for all;
        returns stun.py's JSON results (mapped_ip, mapped_port, ...) in order."""
        argv = [PYTHON, os.path.join(LAB_DIR, "stun.py"), "--timeout", timeout]
        for s in servers:
            argv += ["--server", s]
        if local_port:
            argv += ["--local-port", local_port]
        if local_ip:
            argv += ["--local-ip", local_ip]
        out = self.cmd(ns, *argv, timeout=timeout * len(servers) + 10)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    # -- wireguard-go ------------------------------------------------------------

    def wireguard(self, ns, ifname="wg0", address=None, private_key=None, listen_port=None,
                  mtu=None):
        """Start wireguard-go for ifname in ns and configure it; returns a WgDev
        (see wgdev.py: own private mount namespace, UAPI socket at dev.uapi_path)."""
        import wgdev

        return wgdev.start(self, ns, ifname=ifname, address=address, private_key=private_key,
                           listen_port=listen_port, mtu=mtu)

    def wg(self, ns, dev, *args, input=None):
        """Run `wg ARGS` in the net + mount namespace of wireguard-go device dev."""
        if self.node(ns) is not dev.node:
            raise LabError(f"{dev!r} does not live in {ns}")
        return dev.wg(*args, input=input)

    # -- diagnostics and teardown ----------------------------------------------

    def dump_logs(self, tail=40):
        parts = []
        for p in self.procs:
            state = "running" if p.alive() else f"exited rc={p.returncode}"
            parts.append(f"--- {p.name} pid={p.pid} ns={p.ns} ({state}) {p.log_path}\n{p.log(tail)}")
        return "\n".join(parts)

    def teardown(self):
        """Kill tracked processes, delete namespaces and the temp dir, drop the marker.
        Idempotent; runs every step and raises at the end if any failed (the marker is
        then kept so sweep.py can finish the job once this process is gone)."""
        if self._torn_down:
            return
        self._torn_down = True
        errors = stop_procs(self.procs)
        for node in reversed(list(self.nodes.values())):
            try:
                kill_netns(node.ns)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{node.ns}: {e}")
        try:
            remove_tree(self.tmp)
        except Exception as e:  # noqa: BLE001
            errors.append(f"{self.tmp}: {e}")
        unregister_cleanup(id(self))
        if errors:
            raise LabError(f"{self!r}: teardown incomplete:\n" + "\n".join(errors))
        self.record.remove()


def ping_ok(ns_or_node, addr, count=1, timeout=1.0):
    """ping_ok for a Node (whose lab runs it) -- convenience for tests."""
    if not isinstance(ns_or_node, Node):
        raise LabError("ping_ok() needs a Node; use lab.ping_ok(ns, addr) for names")
    return ns_or_node.lab.ping_ok(ns_or_node, addr, count=count, timeout=timeout)
