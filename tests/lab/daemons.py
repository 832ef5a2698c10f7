# SPDX-License-Identifier: GPL-2.0-or-later
"""Run the suite's own daemons (nexd, nexsrv) and drive them through nexsh.

    d = Daemon(lab, "nexd", config="nexodus\\n service-url https://a.example\\nexit\\n",
               ns=lab.host("a"))
    d.start()                                  # waits until the VTY answers
    r = d.nexsh("configure terminal", "nexodus", "relay")   # CompletedProcess
    out, status = d.vty(b"show running-config")  # one raw request on the VTY socket
    d.stop()                                   # SIGTERM; returns the exit code

Daemon(..., ns=node) runs it in a lab namespace instead of the root one; its VTY socket is
still reachable from here, as namespaces share the file system.

Every instance gets its own pathspace (-N) derived from the lab prefix, its config file and
state dir in the lab temp dir; the daemon's runtime directory under .../nexodus/NAME is
removed by cleanup().  Binaries come from NX_BUILDDIR (tools/check sets it), else
build/check.
"""

import os
import re
import socket
import subprocess

from lab import wait_until

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILDDIR = os.environ.get("NX_BUILDDIR") or os.path.join(TOP, "build", "check")
PROGRAMS = {"nexd": "nexd/nexd", "nexsrv": "nexsrv/nexsrv", "nexsh": "vtysh/nexsh"}
YANG_DIR = os.path.join(TOP, "yang")

REQ_COMPLETE = b"\x01"
REQ_DESCRIBE = b"\x02"
REQ_PROMPT = b"\x03"


def program(name):
    path = os.path.join(BUILDDIR, PROGRAMS[name])
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{path} not built (set NX_BUILDDIR or run tools/check)")
    return path


class Daemon:
    _count = 0

    def __init__(self, lab, name, config=None, args=(), ns=None):
        Daemon._count += 1
        self.lab = lab
        self.name = name
        self.pathspace = f"t{lab.prefix[3:]}{Daemon._count}"
        self.config_path = os.path.join(lab.tmp, f"{self.pathspace}-{name}.conf")
        self.state_dir = os.path.join(lab.tmp, f"{self.pathspace}-state")
        self.args = list(args)
        self.ns = ns
        self.proc = None
        self.vty_path = None
        self.config_text = None
        os.makedirs(self.state_dir, exist_ok=True)
        if config is not None:
            self.write_config(config)

    def write_config(self, text):
        self.config_text = text
        with open(self.config_path, "w") as f:
            f.write(text)

    def argv(self, *extra):
        return [program(self.name), "-N", self.pathspace, "--config", self.config_path,
                "--state-dir", self.state_dir, *self.args, *extra]

    def check_config(self):
        """nexd -C: returns the CompletedProcess."""
        return subprocess.run(self.argv("-C"), capture_output=True, text=True, timeout=30)

    def run_foreground(self, timeout=10):
        """Runs the daemon expecting it to exit by itself (a refused start)."""
        return subprocess.run(self.argv(), capture_output=True, text=True, timeout=timeout)

    def start(self, timeout=10):
        self.proc = self.lab.popen(self.ns, *self.argv(), name=f"{self.name}-{self.pathspace}")

        def ready():
            self.proc.check()
            m = re.search(r"started \(vty (\S+), config", self.proc.log())
            if not m:
                return None
            self.vty_path = m.group(1)
            return self.vty(b"show version")[1] == 0

        wait_until(ready, timeout=timeout, what=f"{self.name} VTY answering")
        return self

    def stop(self):
        return self.proc.stop() if self.proc else None

    def run_dir(self):
        """The pathspace's runtime directory: beside the default VTY socket (see --help)."""
        usage = subprocess.run([program(self.name), "--help"], capture_output=True,
                               text=True, timeout=10).stdout
        default_vty = re.search(r"--vty-socket PATH .*\(default: (\S+)\)", usage).group(1)
        return os.path.join(os.path.dirname(default_vty), self.pathspace)

    def cleanup(self):
        """Stops the daemon and removes its runtime directory, however far it got."""
        self.stop()
        rundir = self.run_dir()
        if os.path.isdir(rundir):
            for entry in os.listdir(rundir):
                os.unlink(os.path.join(rundir, entry))
            os.rmdir(rundir)
        try:  # .../nexodus itself, when no other instance uses it
            os.rmdir(os.path.dirname(rundir))
        except OSError:
            pass

    def nexsh(self, *commands, timeout=30):
        argv = [program("nexsh"), "-d", self.name, "-N", self.pathspace]
        for c in commands:
            argv += ["-c", c]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def vty(self, request, timeout=5.0):
        """One request on the VTY socket; returns (output, status byte)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.vty_path)
            s.sendall(request + b"\0")
            data = b""
            while len(data) < 4 or data[-4:-1] != b"\0\0\0":
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError(f"VTY closed after {len(data)} bytes")
                data += chunk
        return data[:-4].decode(errors="replace"), data[-1]


def free_port(kind=socket.SOCK_DGRAM):
    """A port the kernel says is free on 127.0.0.1 right now (UDP by default)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def yanglint_data(module, json_text, tmpdir):
    """Validates JSON config data against a module of yang/ with yanglint."""
    path = os.path.join(tmpdir, f"{module}-data.json")
    with open(path, "w") as f:
        f.write(json_text)
    return subprocess.run(["yanglint", "-p", YANG_DIR, "-t", "config",
                           os.path.join(YANG_DIR, f"{module}.yang"), path],
                          capture_output=True, text=True, timeout=30)
