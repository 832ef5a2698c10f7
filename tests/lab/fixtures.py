# SPDX-License-Identifier: GPL-2.0-or-later
"""Services the lab tests run for real: a throwaway PostgreSQL 15 cluster and
coturn as a plain STUN server.

nexsrv stores its state in PostgreSQL and nexd learns its reflexive address by
STUN, so the lab starts the real programs rather than fakes.  Both register with
the lab's run registry (marker under /run/nexodus-lab) so a crashed run is swept.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import tempfile
import time

import lab as labmod
from lab import LabError, RunRecord, run, wait_until

PG_BIN = "/usr/lib/postgresql/15/bin"
PG_PORT = 5432  # the socket lives in a private directory, so the port never clashes


class PgCluster:
    """A PostgreSQL 15 cluster in a temp dir, run as user postgres, listening on a
    unix socket only (listen_addresses=''), fsync off.  start() / stop()."""

    def __init__(self, user="postgres"):
        self.user = user
        self.record = None
        self.tmp = None
        self.datadir = None
        self.sockdir = None
        self.postmaster_pid = None
        self.port = PG_PORT

    def _as_pg(self, *argv, timeout=60):
        return run(["runuser", "-u", self.user, "--", *argv], cwd=self.tmp, timeout=timeout)

    def start(self):
        pw = pwd.getpwnam(self.user)
        self.record = RunRecord.create("postgres", label="postgres cluster")
        labmod.register_cleanup(id(self), self.stop)
        self.tmp = tempfile.mkdtemp(prefix=self.record.prefix + "-", dir=labmod.TMP_ROOT)
        self.record.add_tmpdir(self.tmp)
        os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
        os.chmod(self.tmp, 0o700)
        self.datadir = os.path.join(self.tmp, "data")
        self.sockdir = self.tmp
        self._as_pg(f"{PG_BIN}/initdb", "-D", self.datadir, "-U", "postgres", "-A", "trust",
                    "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
        opts = (f"-c listen_addresses='' -c unix_socket_directories='{self.sockdir}' "
                f"-p {self.port} -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=50 -c shared_buffers=16MB")
        self._as_pg(f"{PG_BIN}/pg_ctl", "-D", self.datadir, "-l",
                    os.path.join(self.tmp, "postgres.log"), "-o", opts, "-w", "-t", "30", "start")
        with open(os.path.join(self.datadir, "postmaster.pid")) as f:
            self.postmaster_pid = int(f.readline())
        self.record.add_pid(self.postmaster_pid)
        return self

    def conninfo(self, dbname="postgres"):
        return f"host={self.sockdir} port={self.port} user=postgres dbname={dbname}"

    def psql(self, sql, dbname="postgres"):
        """Run SQL (one or more statements) with psql; returns unaligned, tuples-only
        output, stripped.  Raises CmdError (stderr included) on any SQL error."""
        p = run([f"{PG_BIN}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                 "-d", self.conninfo(dbname), "-f", "-"], input=sql)
        return p.stdout.strip()

    def create_database(self, name=None):
        name = name or "t_" + secrets.token_hex(4)
        self.psql(f'CREATE DATABASE "{name}"')
        return PgDatabase(self, name)

    def log(self):
        try:
            with open(os.path.join(self.tmp, "postgres.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        """pg_ctl stop -m immediate (kill as fallback), remove the temp dir."""
        if self.record is None:
            return
        errors = []
        if self.datadir and os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
            try:
                self._as_pg(f"{PG_BIN}/pg_ctl", "-D", self.datadir, "-m", "immediate", "-w",
                            "-t", "10", "stop", timeout=20)
            except LabError as e:
                errors.append(str(e))
        if self.postmaster_pid:
            rec = [p for p in self.record.data["pids"] if p[0] == self.postmaster_pid]
            st = rec[0][1] if rec else None
            if labmod.pid_alive(self.postmaster_pid, st):
                os.kill(self.postmaster_pid, 9)
                try:
                    wait_until(lambda: not labmod.pid_alive(self.postmaster_pid, st), timeout=5,
                               interval=0.05, what="postmaster gone")
                except AssertionError as e:
                    errors.append(str(e))
        if self.tmp:
            try:
                labmod.remove_tree(self.tmp)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{self.tmp}: {e}")
        labmod.unregister_cleanup(id(self))
        if errors:
            raise LabError("postgres teardown incomplete:\n" + "\n".join(errors))
        self.record.remove()
        self.record = None


class PgDatabase:
    """One fresh database in a PgCluster: .conninfo, .psql(sql), .drop()."""

    def __init__(self, cluster, name):
        self.cluster = cluster
        self.dbname = name
        self.conninfo = cluster.conninfo(name)

    def psql(self, sql):
        return self.cluster.psql(sql, dbname=self.dbname)

    def drop(self):
        self.cluster.psql(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')


class StunServer:
    """A coturn instance in STUN-only mode: .addr is "ip:port"."""

    def __init__(self, node, ip, port, proc, log_path):
        self.node = node
        self.ip = ip
        self.port = port
        self.addr = f"{ip}:{port}"
        self.proc = proc
        self.log_path = log_path

    def __repr__(self):
        return f"<StunServer {self.addr} in {self.node.ns} pid={self.proc.pid}>"

    def stop(self):
        self.proc.stop()


def start_coturn(lab, ns, ip, port=3478, name=None, timeout=10.0):
    """Start turnserver as a STUN-only server on ip:port inside ns (no config file,
    no CLI, no TLS/DTLS, state and log in the lab temp dir), tracked by the lab.
    Returns once a real STUN Binding request from ns is answered."""
    if not shutil.which("turnserver"):
        raise LabError("turnserver not found (Debian package coturn)")
    node = lab.node(ns)
    name = name or f"coturn-{node.name}-{port}"
    base = os.path.join(lab.tmp, name)
    # Log to stdout, i.e. the process log in the lab temp dir (shown on failure).
    argv = ["turnserver", "-n", "--stun-only", "--no-cli", "--no-tls", "--no-dtls",
            "-L", ip, "-p", port, "--log-file", "stdout", "--pidfile", base + ".pid",
            "--userdb", base + ".turndb", "--no-software-attribute"]
    proc = lab.popen(node, *argv, name=name, log=base + ".log")
    t0 = time.monotonic()

    def answers():
        proc.check()
        return lab.stun(node, f"{ip}:{port}", timeout=0.3)

    wait_until(answers, timeout=timeout, interval=0.05, what=f"coturn {ip}:{port} answers STUN")
    srv = StunServer(node, ip, int(port), proc, proc.log_path)
    srv.startup_s = time.monotonic() - t0
    return srv
