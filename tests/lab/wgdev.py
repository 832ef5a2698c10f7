# SPDX-License-Identifier: GPL-2.0-or-later
"""wireguard-go devices for the lab: the userspace WireGuard the tests run against
(the lab kernel has no wireguard module).

Each device runs as `wireguard-go -f IF` in its node's network namespace and in a
private mount namespace of its own whose /run is a lab temp dir (bind mount), so
instances never see each other's UAPI sockets, never touch the host's
/var/run/wireguard, and the socket is reachable from the host at WgDev.uapi_path.
`wg` runs in the same net + mount namespaces through nsenter.
"""

import os

from lab import LabError, run, wait_until


def wg_genkey():
    return run(["wg", "genkey"]).stdout.strip()


def wg_pubkey(private_key):
    return run(["wg", "pubkey"], input=private_key + "\n").stdout.strip()


def wg_keypair():
    priv = wg_genkey()
    return priv, wg_pubkey(priv)


class WgDev:
    """A wireguard-go device.  Its /run is a lab dir bind-mounted in a private mount
    namespace, so the UAPI socket is at `uapi_path` on the host and instances never
    see each other's sockets nor the host's /var/run/wireguard."""

    def __init__(self, lab, node, ifname, proc, rundir):
        self.lab = lab
        self.node = node
        self.ifname = ifname
        self.proc = proc
        self.rundir = rundir
        self.uapi_path = os.path.join(rundir, "wireguard", ifname + ".sock")
        self.private_key = None
        self.public_key = None
        self.listen_port = None

    def __repr__(self):
        return f"<WgDev {self.node.ns}/{self.ifname} pid={self.proc.pid}>"

    def wg(self, *args, input=None, check=True):
        """Run `wg ARGS` in this device's net + mount namespace; returns stdout."""
        self.proc.check()
        argv = ["nsenter", "-t", str(self.proc.pid), "-n", "-m", "wg", *[str(a) for a in args]]
        return run(argv, input=input, check=check).stdout

    def set_private_key(self, private_key):
        self.wg("set", self.ifname, "private-key", "/dev/stdin", input=private_key + "\n")
        self.private_key = private_key
        self.public_key = wg_pubkey(private_key)

    def set_listen_port(self, port):
        self.wg("set", self.ifname, "listen-port", port)
        self.listen_port = int(port)

    def add_peer(self, public_key, endpoint=None, allowed_ips=(), keepalive=None):
        args = ["set", self.ifname, "peer", public_key]
        if endpoint:
            args += ["endpoint", endpoint]
        if allowed_ips:
            args += ["allowed-ips", ",".join(allowed_ips)]
        if keepalive:
            args += ["persistent-keepalive", keepalive]
        self.wg(*args)

    def remove_peer(self, public_key):
        self.wg("set", self.ifname, "peer", public_key, "remove")

    def show(self):
        """`wg show IF dump` parsed: {public_key, listen_port, fwmark, peers: {pub: {...}}}."""
        lines = self.wg("show", self.ifname, "dump").splitlines()
        if not lines:
            raise LabError(f"{self!r}: empty wg dump")
        _priv, pub, port, fwmark = lines[0].split("\t")
        dev = {"public_key": pub, "listen_port": int(port), "fwmark": fwmark, "peers": {}}
        for line in lines[1:]:
            f = line.split("\t")
            dev["peers"][f[0]] = {
                "preshared_key": f[1],
                "endpoint": None if f[2] == "(none)" else f[2],
                "allowed_ips": [] if f[3] == "(none)" else f[3].split(","),
                "latest_handshake": int(f[4]),
                "rx_bytes": int(f[5]),
                "tx_bytes": int(f[6]),
                "keepalive": None if f[7] == "off" else int(f[7]),
            }
        return dev

    def peer(self, public_key):
        return self.show()["peers"][public_key]

    def stop(self):
        self.proc.stop()




def start(lab, ns, ifname="wg0", address=None, private_key=None, listen_port=None, mtu=None):
    """Start wireguard-go for ifname in ns (tracked by lab), set the private key
    (generated if None), listen port, MTU and address(es), and bring it up."""
    node = lab.node(ns)
    rundir = os.path.join(lab.tmp, f"wg-{node.name}-{ifname}")
    os.makedirs(rundir)
    # ip netns exec already runs us in a mount namespace that is a slave of the host's;
    # unshare once more with private propagation, then give wireguard-go its own /run.
    script = 'mount --bind "$1" /run && exec wireguard-go -f "$2"'
    proc = lab.popen(node, "unshare", "--mount", "--propagation", "private", "--",
                     "sh", "-c", script, "sh", rundir, ifname,
                     name=f"wireguard-go-{node.name}-{ifname}",
                     env={"LOG_LEVEL": "verbose", "WG_PROCESS_FOREGROUND": "1"})
    dev = WgDev(lab, node, ifname, proc, rundir)

    def ready():
        proc.check()
        return os.path.exists(dev.uapi_path) and lab.run(
            node, "ip", "link", "show", ifname, check=False).returncode == 0

    wait_until(ready, timeout=10, interval=0.02, what=f"wireguard-go {node.ns}/{ifname}")
    dev.set_private_key(private_key or wg_genkey())
    if listen_port:
        dev.set_listen_port(listen_port)
    if mtu:
        run(["ip", "-n", node.ns, "link", "set", ifname, "mtu", mtu])
    for a in [address] if isinstance(address, str) else (address or []):
        run(["ip", "-n", node.ns, "addr", "add", a, "dev", ifname])
    run(["ip", "-n", node.ns, "link", "set", ifname, "up"])
    return dev
