# SPDX-License-Identifier: GPL-2.0-or-later
"""A VPC in the lab: nexsrv (with its own PostgreSQL database) in a namespace of its own,
an organization, a VPC and a registration key bootstrapped through nexsh, and nexd agents
started in other namespaces.  Everything is asserted through what a user or operator sees:
nexsh ... json, the kernel (ip route, wg) and traffic."""

import base64
import hashlib
import ipaddress
import json
import os
import socket

from daemons import Daemon
from lab import wait_until
from nexsrv_env import sanitizer_report

WG_RUN_DIR = "/var/run/wireguard"
SERVICE_PORT = 8080


def probe_addr(public_key):
    """The address a device answers path probes on (nexd/nexd_probe.h): fd6e:6578:6f64::/48
    and 80 bits of SHA-256 of its public key."""
    digest = hashlib.sha256(base64.b64decode(public_key)).digest()
    return str(ipaddress.IPv6Address(bytes.fromhex("fd6e65786f64") + digest[:10]))


def remove_stale_wg_sockets(ifnames):
    """Removes wireguard-go's UAPI sockets that nobody listens on any more (their daemon
    died with its namespace); a live one, someone else's, is left alone."""
    for name in ifnames:
        path = os.path.join(WG_RUN_DIR, f"{name}.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(path)
            except ConnectionRefusedError:
                os.unlink(path)
            except OSError:
                pass


class Controller:
    """nexsrv in namespace `node`, listening on addr:SERVICE_PORT, plain HTTP."""

    def __init__(self, lab, db, node, addr, extra="", tls=None):
        """tls: (cert, key) PEM files to serve HTTPS with; else plain HTTP."""
        self.lab, self.db, self.node, self.addr = lab, db, node, addr
        self.url = f"{'https' if tls else 'http'}://{addr}:{SERVICE_PORT}"
        self.cacert = tls[0] if tls else None
        transport = f" tls-cert {tls[0]}\n tls-key {tls[1]}\n" if tls else " insecure-http\n"
        config = (f"controller\n listen {addr}:{SERVICE_PORT}\n{transport}"
                  f" database {db.conninfo}\n stun-listen {addr}:3478\n"
                  f" rate-limit requests-per-second 1000000\n rate-limit burst 1000000\n"
                  f"{extra}exit\n")
        self.daemon = Daemon(lab, "nexsrv", config=config, ns=node)

    def start(self):
        self.daemon.start()
        ca = ["--cacert", self.cacert] if self.cacert else []
        wait_until(lambda: self.lab.run(self.node, "curl", "-sf", *ca,
                                        f"{self.url}/private/ready",
                                        check=False).returncode == 0,
                   timeout=20, what="nexsrv ready")
        return self

    def admin(self, command):
        r = self.daemon.nexsh(command)
        assert r.returncode == 0, f"{command}: {r.stdout}{r.stderr}"
        return r.stdout.strip()

    def bootstrap(self, name="lab", single_use=False):
        """An organization, a VPC and a registration key: (vpc_id, key)."""
        org = self.admin(f"nexodus organization create {name}")
        vpc = self.admin(f"nexodus vpc create organization {org}")
        key = self.admin(f"nexodus registration-key create vpc {vpc}"
                         + (" single-use" if single_use else ""))
        assert key.startswith("RK:"), key
        return vpc, key

    def api(self, method, path, token, body=None):
        """One REST request from the controller's namespace: (status, parsed body or None)."""
        argv = ["curl", "-s", "-X", method, "-w", "\n%{http_code}",
                "-H", f"Authorization: Bearer {token}"]
        if body is not None:
            argv += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
        out = self.lab.cmd(self.node, *argv, f"{self.url}{path}")
        text, status = out.rsplit("\n", 1)
        return int(status), (json.loads(text) if text.strip() else None)

    def stop(self):
        return self.daemon.stop()

    def cleanup(self):
        self.daemon.cleanup()


def user_token(lab, node, idp, sub):
    """An access token of the test IdP (running in namespace node) for user sub."""
    out = lab.cmd(node, "curl", "-sf", "-X", "POST", "-H", "Content-Type: application/json",
                  "-d", json.dumps({"sub": sub}), f"{idp.issuer}/test/token")
    return json.loads(out)["access_token"]


class Agent:
    """nexd in namespace `node` with a WireGuard interface named uniquely for the run."""

    _count = 0

    def __init__(self, lab, node, service_url, reg_key, args=(), backend="uapi"):
        Agent._count += 1
        self.lab, self.node = lab, node
        self.ifname = f"{lab.prefix}w{Agent._count}"
        key_args = ["--reg-key", reg_key] if reg_key else []
        self.daemon = Daemon(lab, "nexd", ns=node, args=[
            "--service-url", service_url, *key_args, "--interface", self.ifname,
            "--wg-backend", backend, *args])

    def start(self):
        self.daemon.start()
        return self

    def show(self, what):
        r = self.daemon.nexsh(f"show nexodus {what} json")
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout)

    def status(self):
        return self.show("status")

    def peers(self):
        return self.show("peers")["peers"]

    def routes(self):
        return self.show("routes")["routes"]

    def wait_connected(self, timeout=20):
        try:
            return wait_until(lambda: self.status()["state"] == "connected" and self.status(),
                              timeout=timeout, what=f"{self.node} connected")
        except AssertionError as e:
            raise AssertionError(f"{e}\nstatus: {self.status()}\nlog:\n"
                                 + self.daemon.proc.log(40)) from e

    @property
    def tunnel_ipv4(self):
        return self.status()["tunnel_ipv4"]

    @property
    def tunnel_ipv6(self):
        return self.status()["tunnel_ipv6"]

    def kernel_routes(self, family="-4"):
        """The prefixes of this agent's routes in the kernel (protocol nexodus)."""
        out = self.lab.cmd(self.node, "ip", family, "route", "show", "proto", "80",
                           "dev", self.ifname)
        return sorted(line.split()[0] for line in out.splitlines() if line.strip())

    def wg_peers(self):
        """Public keys WireGuard holds on this agent's interface."""
        out = self.lab.cmd(self.node, "wg", "show", self.ifname, "peers")
        return sorted(out.split())

    def describe(self):
        """What this agent holds, for a failure message: its peers, WireGuard's view of
        them and the end of its log."""
        parts = []
        for what, fn in (("peers", lambda: json.dumps(self.peers(), indent=1)),
                         ("wg", lambda: self.lab.cmd(self.node, "wg", "show", self.ifname))):
            try:
                parts.append(f"--- {self.node} {what}:\n{fn()}")
            except Exception as e:  # noqa: BLE001 - a description never fails
                parts.append(f"--- {self.node} {what}: {e!r}")
        parts.append(f"--- {self.node} log:\n{self.daemon.proc.log(40)}")
        return "\n".join(parts)

    def wait_reaches(self, other, timeout=10):
        """Waits until this agent pings other's tunnel address; else fails describing both."""
        addr = other.tunnel_ipv4
        try:
            wait_until(lambda: self.lab.ping_ok(self.node, addr), timeout=timeout,
                       what=f"{self.node} pings {other.node} at {addr}")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.describe()}\n{other.describe()}") from e

    def assert_healthy(self):
        assert self.daemon.proc.alive(), "nexd died:\n" + self.daemon.proc.log(60)
        report = sanitizer_report(self.daemon.proc.log())
        assert report is None, self.daemon.proc.log()

    def stop(self):
        return self.daemon.stop()

    def cleanup(self):
        """Stops nexd; wireguard-go dies with the namespace, its socket is removed here."""
        self.daemon.cleanup()
        try:  # the name is this run's own: its daemon dies with the namespace
            os.unlink(os.path.join(WG_RUN_DIR, f"{self.ifname}.sock"))
        except FileNotFoundError:
            pass
