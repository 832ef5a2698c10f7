# SPDX-License-Identifier: GPL-2.0-or-later
"""nexd's management plane, end to end: the daemon is driven only through nexsh and its VTY
socket, and what it says is checked against the config file it writes and against yanglint.
"""

import json
import os
import pty
import select
import signal
import stat
import subprocess

import pytest

from daemons import REQ_COMPLETE, REQ_DESCRIBE, REQ_PROMPT, Daemon, program, yanglint_data
from lab import wait_until
from nexd_env import remove_stale_wg_sockets

VPC = "6f1c0b1e-2a3d-4c5e-8f90-a1b2c3d4e5f6"
@pytest.fixture(autouse=True)
def _wireguard_sockets(lab):
    """The daemons here use the default interface names; once their namespaces are gone,
    the UAPI sockets their wireguard-go left are removed."""
    yield
    lab.teardown()
    remove_stale_wg_sockets(["nexodus0", "nx9"])


def nexd_daemon(lab, **kw):
    """nexd in a network namespace of its own: with a service-url it creates its WireGuard
    interface, which must never appear on this machine's own network."""
    nexd_daemon.count = getattr(nexd_daemon, "count", 0) + 1
    return Daemon(lab, "nexd", ns=lab.host(f"n{nexd_daemon.count}"), **kw)


CONFIG = f"""! nexd configuration
!
nexodus
 service-url https://nexodus.example.com
 vpc-id {VPC}
 registration-key RK:secret-value-1
 listen-port 51820
 wireguard-backend uapi
 stun-server 192.0.2.1:3478
 stun-server stun.example.net:3478
 advertise-cidr 10.99.0.0/24
 advertise-cidr 2001:db8:99::/48
 relay
exit
!
debug nexodus peers
!
end
"""


@pytest.fixture
def nexd(lab):
    d = nexd_daemon(lab, config=CONFIG)
    try:
        yield d.start()
    finally:
        d.cleanup()


def running(d):
    r = d.nexsh("show running-config")
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_config_round_trips(nexd):
    # File -> YANG -> text: exactly the file, the secret masked.
    assert running(nexd) == CONFIG.replace("RK:secret-value-1", "********")


def test_configure_and_write_memory_survive_restart(nexd):
    r = nexd.nexsh("configure terminal", "nexodus", "no relay", "exit-node",
                   "no stun-server 192.0.2.1:3478", "interface nx9", "end", "write memory")
    assert r.returncode == 0, r.stderr
    text = running(nexd)
    assert " exit-node\n" in text and " relay\n" not in text
    assert "stun-server 192.0.2.1:3478" not in text and " interface nx9\n" in text

    # The file holds the secret in clear, so only root may read it.
    st = os.stat(nexd.config_path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    with open(nexd.config_path) as f:
        saved = f.read()
    assert "registration-key RK:secret-value-1" in saved

    assert nexd.stop() == 0
    nexd.start()
    assert running(nexd) == text


@pytest.mark.parametrize("command,value", [
    ("advertise-cidr 10.0.0.0/33", "10.0.0.0/33"),
    ("vpc-id not-a-uuid", "not-a-uuid"),
    ("listen-port 0", "0"),
    ("wireguard-backend foo", "foo"),
    ("stun-server bad::host::", "bad::host::"),
])
def test_invalid_values_are_refused_and_change_nothing(nexd, command, value):
    before = running(nexd)
    r = nexd.nexsh("configure terminal", "nexodus", command)
    assert r.returncode != 0
    assert value in r.stderr, r.stderr
    assert running(nexd) == before


def test_malformed_command_fails(nexd):
    r = nexd.nexsh("show running-confg-typo")
    assert r.returncode != 0
    assert "Unknown command" in r.stderr


def test_running_config_json_validates(nexd, lab):
    r = nexd.nexsh("show running-config json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["nexodus-agent:nexodus"]["registration-key"] == "********"
    assert data["nexodus-agent:nexodus"]["vpc-id"] == VPC
    lint = yanglint_data("nexodus-agent", r.stdout, lab.tmp)
    assert lint.returncode == 0, lint.stderr


def test_help_and_completion_come_from_the_daemon(nexd):
    out, status = nexd.vty(REQ_DESCRIBE + b"show ")
    assert status == 0
    words = [line.split("\t")[0] for line in out.splitlines()]
    assert "running-config" in words and "version" in words

    out, status = nexd.vty(REQ_COMPLETE + b"show run")
    assert status == 0 and out.split() == ["running-config"]

    out, _ = nexd.vty(REQ_PROMPT)
    assert out.endswith("# ")


def test_rollback_restores_an_earlier_config(nexd):
    r = nexd.nexsh("configure terminal", "nexodus", "no relay")
    assert r.returncode == 0, r.stderr
    assert " relay\n" not in running(nexd)
    listing = nexd.nexsh("show configuration commit list json")
    commits = json.loads(listing.stdout)["commits"]
    first = min(c["id"] for c in commits)
    r = nexd.nexsh(f"rollback configuration {first}")
    assert r.returncode == 0, r.stderr
    assert running(nexd) == CONFIG.replace("RK:secret-value-1", "********")


def test_check_mode_and_refused_start(lab):
    good = nexd_daemon(lab, config=CONFIG)
    r = good.check_config()
    assert r.returncode == 0, r.stderr

    bad = nexd_daemon(lab, config="nexodus\n relay\n bogus-command 1\nexit\n")
    r = bad.check_config()
    assert r.returncode != 0
    assert f"{bad.config_path}:3" in r.stderr, r.stderr
    r = bad.run_foreground()
    assert r.returncode != 0 and f"{bad.config_path}:3" in r.stderr


def test_unconfigured_daemon_stays_up(lab):
    d = nexd_daemon(lab)  # no config file at all
    try:
        d.start()
        r = d.nexsh("show nexodus status json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["state"] == "not-configured"
    finally:
        d.cleanup()


def test_daemon_mode_detaches_and_stops_on_sigterm(lab):
    """-d: the command returns at once, the daemon keeps serving, its pid file names it,
    and SIGTERM stops it cleanly (socket and pid file removed)."""
    d = nexd_daemon(lab, config=CONFIG)
    d.vty_path = os.path.join(lab.tmp, f"{d.pathspace}.vty")
    rundir = d.run_dir()
    pid_file = os.path.join(rundir, "nexd.pid")

    r = lab.run(d.ns, *d.argv("-d", "--vty-socket", d.vty_path), check=False, timeout=10)
    assert r.returncode == 0, r.stderr
    pid = None
    try:
        wait_until(lambda: os.path.exists(pid_file) and d.vty(b"show version")[1] == 0,
                   timeout=10, what="detached nexd serving")
        with open(pid_file) as f:
            pid = int(f.read())
        assert os.readlink(f"/proc/{pid}/exe").endswith("/nexd")
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not os.path.exists(d.vty_path) and not os.path.exists(pid_file),
                   timeout=10, what="nexd stopped")
    finally:
        if pid and os.path.exists(f"/proc/{pid}"):  # ours: it is the pid the file named
            os.kill(pid, signal.SIGKILL)
        d.cleanup()


def test_interactive_shell_help_and_completion(nexd):
    """nexsh on a terminal: TAB completes through the daemon, '?' lists candidates."""

    master, slave = pty.openpty()
    p = subprocess.Popen([program("nexsh"), "-N", nexd.pathspace], stdin=slave, stdout=slave,
                         stderr=slave, close_fds=True)
    os.close(slave)
    seen = bytearray()

    def read_until(token, timeout=10):
        def got():
            while select.select([master], [], [], 0.05)[0]:
                try:
                    seen.extend(os.read(master, 4096))
                except OSError:
                    break
            return token in seen
        wait_until(got, timeout=timeout, what=f"{token!r} on the terminal")

    try:
        read_until(b"# ")
        os.write(master, b"show runn\t")
        read_until(b"show running-config")
        os.write(master, b" ?")
        read_until(b"json")
        os.write(master, b"\x15quit\r")  # ^U clears the line
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
