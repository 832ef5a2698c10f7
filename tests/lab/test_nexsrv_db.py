# SPDX-License-Identifier: GPL-2.0-or-later
"""nexsrv's database layer against a real PostgreSQL 15: schema migrations at start-up
(once, under a lock, refusing a newer schema), the watch machinery of the schema (revisions,
tombstones, notifications, per-VPC ordering), and a database that is missing or goes away
(nexsrv starts anyway, is not ready, and recovers by itself), and what "show controller
status" says of it all.  The pool, query, transaction and LISTEN code is exercised in C by
tests/unit/test_nexsrv_db against a fresh database."""

import glob
import json
import os
import re
import secrets
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

import stun
from daemons import BUILDDIR, TOP, Daemon
from daemons import free_port as free_udp_port
from fixtures import PG_BIN
from lab import CmdError, wait_until

MIGRATIONS = sorted(os.path.basename(p) for p in
                    glob.glob(os.path.join(TOP, "nexsrv", "migrations", "[0-9]*_*.sql")))
LATEST = int(MIGRATIONS[-1][:4])
TABLES = {"schema_version", "users", "organizations", "memberships", "invitations", "vpcs",
          "security_groups", "reg_keys", "devices", "device_metadata", "ipam_allocations",
          "tombstones", "tombstone_horizon"}
MIGRATE_LOCK = 7960232640851894644  # "nxmigrat", nexsrv/nexsrv_migrate.c
SECRET = "pw-never-logged-" + secrets.token_hex(4)

U1 = "11111111-1111-1111-1111-111111111111"
U2 = "22222222-2222-2222-2222-222222222222"
D1 = "dddddddd-0000-0000-0000-000000000001"
D2 = "dddddddd-0000-0000-0000-000000000002"
D3 = "dddddddd-0000-0000-0000-000000000003"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(conninfo, port):
    # trust authentication ignores the password: it is there to prove it is never logged.
    return (f"controller\n listen 127.0.0.1:{port}\n insecure-http\n"
            f" database {conninfo} password={SECRET}\nexit\n")


@pytest.fixture
def daemons(lab):
    """daemons(conninfo) -> a Daemon (not started) on a free port, .port."""
    started = []

    def make(conninfo):
        port = free_port()
        d = Daemon(lab, "nexsrv", config=config(conninfo, port))
        d.port = port
        started.append(d)
        return d

    try:
        yield make
    finally:
        for d in started:
            d.cleanup()
            if d.proc:
                log = d.proc.log()
                assert SECRET not in log
                assert "Sanitizer" not in log and "runtime error" not in log, log


def log_has(d, pattern):
    return re.search(pattern, d.proc.log())


def ready_status(d):
    """The HTTP status of GET /private/ready."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{d.port}/private/ready", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def versions(db):
    return [int(v) for v in db.psql("SELECT version FROM schema_version ORDER BY 1").split()]


class Session:
    """A psql session kept open (for locks and transactions that must outlive a call)."""

    def __init__(self, conninfo):
        self.p = subprocess.Popen([f"{PG_BIN}/psql", "-X", "-q", "-A", "-t", "-v",
                                   "ON_ERROR_STOP=1", "-d", conninfo],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)

    def send(self, sql):
        self.p.stdin.write(sql + "\n")
        self.p.stdin.flush()

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            self.p.wait(10)


def test_start_migrates(daemons, postgres):
    d = daemons(postgres.conninfo).start()
    wait_until(lambda: log_has(d, r"database .*dbname=\S+ user=postgres: ready"), timeout=10,
               what="pool ready")
    assert log_has(d, rf"schema migrated from version 0 to {LATEST}\b")
    assert ready_status(d) == 200
    assert versions(postgres) == list(range(1, LATEST + 1))
    names = postgres.psql("SELECT name FROM schema_version ORDER BY version").split()
    assert names == [m[:-4] for m in MIGRATIONS]
    tables = set(postgres.psql(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").split())
    assert TABLES <= tables, TABLES - tables
    assert postgres.psql("SELECT to_regclass('revision_seq') IS NOT NULL") == "t"

    # A restart finds the schema up to date and changes nothing.
    d.stop()
    d2 = daemons(postgres.conninfo).start()
    wait_until(lambda: log_has(d2, r"schema up to date \(version %d\)" % LATEST), timeout=10)
    assert versions(postgres) == list(range(1, LATEST + 1))


def test_two_replicas_migrate_once(lab, daemons, postgres):
    """Both start while a third party holds the migration lock, so both are inside the
    migration step at the same time when it is released: one migrates, the other waits and
    finds the schema up to date."""
    a, b = daemons(postgres.conninfo), daemons(postgres.conninfo)
    holder = Session(postgres.conninfo)
    try:
        holder.send(f"SELECT pg_advisory_lock({MIGRATE_LOCK});")
        wait_until(lambda: postgres.psql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") == "1",
            what="lock held")
        for d in (a, b):  # Daemon.start() without its wait: both at once
            d.proc = lab.popen(None, *d.argv(), name=f"nexsrv-{d.pathspace}")
        wait_until(lambda: postgres.psql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") == "2",
            timeout=15, what="both replicas waiting for the migration lock")
    finally:
        holder.close()
    for d in (a, b):
        m = wait_until(lambda: d.proc.check() and re.search(r"started \(vty (\S+), config",
                                                            d.proc.log()),
                       timeout=20, what="replica started")
        d.vty_path = m.group(1)
    logs = a.proc.log() + b.proc.log()
    assert len(re.findall(r"schema migrated from version 0", logs)) == 1, logs
    assert len(re.findall(r"schema up to date", logs)) == 1, logs
    assert versions(postgres) == list(range(1, LATEST + 1))
    for d in (a, b):
        assert d.proc.alive()
        assert log_has(d, r": ready")


def test_newer_schema_refused(daemons, postgres):
    postgres.psql("CREATE TABLE schema_version (version integer PRIMARY KEY, name text NOT "
                  "NULL, applied_at timestamptz NOT NULL DEFAULT now());"
                  f"INSERT INTO schema_version VALUES ({LATEST + 41}, 'from_the_future');")
    d = daemons(postgres.conninfo)
    r = d.run_foreground(timeout=30)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert (f"database schema {LATEST + 41} is newer than this nexsrv knows ({LATEST}); "
            "upgrade nexsrv") in out
    assert SECRET not in out
    # Nothing was touched.
    assert postgres.psql("SELECT to_regclass('devices') IS NULL") == "t"


def test_failed_migration_rolls_back(daemons, postgres):
    """A database in a state migration 1 cannot handle (a table of that name already
    exists): nexsrv refuses to start and leaves nothing behind."""
    postgres.psql("CREATE TABLE vpcs (id int)")
    d = daemons(postgres.conninfo)
    r = d.run_foreground(timeout=30)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert re.search(r"migration 0001_initial failed: relation \"vpcs\" already exists", out)
    assert postgres.psql("SELECT to_regclass('schema_version') IS NULL") == "t"
    assert postgres.psql("SELECT to_regclass('users') IS NULL") == "t"


SEED = f"""
INSERT INTO users (id, idp_subject, username) VALUES ('{U1}', 'sub-1', 'bob'),
    ('{U2}', 'sub-2', 'alice');
INSERT INTO organizations (id, name, owner_id) VALUES ('{U1}', 'bob', '{U1}'),
    ('{U2}', 'alice', '{U2}');
INSERT INTO vpcs (id, organization_id) VALUES ('{U1}', '{U1}'), ('{U2}', '{U2}');
INSERT INTO security_groups (id, vpc_id, organization_id) VALUES ('{U1}', '{U1}', '{U1}');
INSERT INTO devices (id, vpc_id, organization_id, owner_id, public_key, security_group_id,
                     bearer_token_hash)
    VALUES ('{D1}', '{U1}', '{U1}', '{U1}', 'pk1', '{U1}', sha256('DT:x'));
INSERT INTO devices (id, vpc_id, organization_id, owner_id, public_key)
    VALUES ('{D2}', '{U1}', '{U1}', '{U1}', 'pk2'), ('{D3}', '{U2}', '{U2}', '{U2}', 'pk3');
INSERT INTO device_metadata (device_id, key, value) VALUES ('{D1}', 'tcp:1024', '{{"a": 1}}');
INSERT INTO ipam_allocations (vpc_id, address, device_id) VALUES ('{U1}', '100.64.0.1', '{D1}');
"""


@pytest.fixture
def migrated(daemons, postgres):
    d = daemons(postgres.conninfo).start()
    wait_until(lambda: log_has(d, r": ready"), timeout=10, what="pool ready")
    postgres.psql(SEED)
    return postgres


def rev(db, table, where):
    return int(db.psql(f"SELECT revision FROM {table} WHERE {where}"))


def test_revisions_and_tombstones(migrated):
    db = migrated
    r0 = rev(db, "devices", f"id = '{D1}'")
    assert rev(db, "device_metadata", f"device_id = '{D1}'") > r0  # inserted later
    assert db.psql(f"SELECT vpc_id FROM device_metadata WHERE device_id = '{D1}'") == U1

    db.psql(f"UPDATE devices SET hostname = 'h1' WHERE id = '{D1}'")
    r1 = rev(db, "devices", f"id = '{D1}'")
    assert r1 > r0
    # An update that changes nothing is no change.
    db.psql(f"UPDATE devices SET hostname = 'h1' WHERE id = '{D1}'")
    assert rev(db, "devices", f"id = '{D1}'") == r1
    db.psql(f"UPDATE vpcs SET description = 'd' WHERE id = '{U1}'")
    assert rev(db, "vpcs", f"id = '{U1}'") > r1
    db.psql(f"UPDATE security_groups SET inbound_rules = '[{{\"ip_protocol\": \"tcp\"}}]'")
    r2 = rev(db, "security_groups", f"id = '{U1}'")
    db.psql(f"UPDATE device_metadata SET value = '2' WHERE device_id = '{D1}'")
    r3 = rev(db, "device_metadata", f"device_id = '{D1}'")
    assert r3 > r2

    # Deleting the device: its tombstone and its metadata's, after every revision so far;
    # its addresses are released.  The token hash is not kept.
    db.psql(f"DELETE FROM devices WHERE id = '{D1}'")
    rows = db.psql("SELECT kind, id, coalesce(key, ''), vpc_id, revision FROM tombstones "
                   "ORDER BY revision").splitlines()
    kinds = [r.split("|")[:4] for r in rows]
    assert sorted(kinds) == sorted([["device", D1, "", U1], ["device-metadata", D1, "tcp:1024",
                                                             U1]])
    assert all(int(r.split("|")[4]) > r3 for r in rows)
    value = db.psql(f"SELECT value FROM tombstones WHERE kind = 'device' AND id = '{D1}'")
    assert '"hostname": "h1"' in value and '"public_key": "pk1"' in value
    assert "bearer_token_hash" not in value
    assert db.psql(f"SELECT count(*) FROM ipam_allocations WHERE vpc_id = '{U1}'") == "0"

    # Deleting a VPC takes its security groups and devices with it, each with a tombstone.
    db.psql(f"DELETE FROM vpcs WHERE id = '{U1}'")
    assert db.psql(f"SELECT kind FROM tombstones WHERE vpc_id = '{U1}' AND kind IN "
                   f"('vpc', 'security-group') OR id = '{D2}' ORDER BY kind").split() == [
        "device", "security-group", "vpc"]

    # Garbage collection purges a prefix and moves the horizon.
    top = int(db.psql("SELECT max(revision) FROM tombstones"))
    assert int(db.psql("SELECT nexodus_gc_tombstones('0 seconds')")) >= 4
    assert int(db.psql("SELECT revision FROM tombstone_horizon")) == top
    assert db.psql("SELECT count(*) FROM tombstones") == "0"


def test_constraints(migrated):
    db = migrated

    def fails(sql, message):
        with pytest.raises(CmdError) as e:
            db.psql(sql)
        assert message in str(e.value), str(e.value)

    # Concurrent enrollments cannot get the same address.
    fails(f"INSERT INTO ipam_allocations (vpc_id, address, device_id) VALUES "
          f"('{U1}', '100.64.0.1', '{D2}')", "ipam_allocations_pkey")
    # One public key once per VPC (another VPC may have it).
    fails(f"INSERT INTO devices (vpc_id, organization_id, owner_id, public_key) VALUES "
          f"('{U1}', '{U1}', '{U1}', 'pk1')", "devices_vpc_id_public_key_key")
    db.psql(f"INSERT INTO devices (vpc_id, organization_id, owner_id, public_key) VALUES "
            f"('{U2}', '{U2}', '{U2}', 'pk1')")
    # A device's VPC belongs to its organization; its security group to its VPC.
    fails(f"INSERT INTO devices (vpc_id, organization_id, owner_id, public_key) VALUES "
          f"('{U1}', '{U2}', '{U1}', 'pkx')", "foreign key")
    fails(f"UPDATE devices SET security_group_id = '{U1}' WHERE id = '{D3}'", "foreign key")
    # Roles, token hashes, CIDR families, JSON shapes.
    fails(f"INSERT INTO memberships VALUES ('{U1}', '{U2}', '{{admin}}')", "check constraint")
    fails(f"INSERT INTO reg_keys (owner_id, vpc_id, organization_id, token_hash) VALUES "
          f"('{U1}', '{U1}', '{U1}', '\\x00')", "check constraint")
    fails(f"INSERT INTO vpcs (organization_id, ipv4_cidr) VALUES ('{U1}', '200::/64')",
          "check constraint")
    fails(f"UPDATE devices SET endpoints = '{{}}' WHERE id = '{D2}'", "check constraint")
    fails(f"INSERT INTO invitations (organization_id, from_user_id, expires_at) VALUES "
          f"('{U1}', '{U1}', now())", "check constraint")
    fails(f"INSERT INTO device_metadata (device_id, key, value) VALUES "
          f"('{U2}', 'k', '1')", f"device {U2} does not exist")
    # Deleting a security group leaves its devices without one.
    db.psql(f"DELETE FROM security_groups WHERE id = '{U1}'")
    assert db.psql(f"SELECT security_group_id IS NULL FROM devices WHERE id = '{D1}'") == "t"
    # Deleting a user takes what the user owns.
    db.psql(f"DELETE FROM users WHERE id = '{U2}'")
    assert db.psql(f"SELECT count(*) FROM vpcs WHERE id = '{U2}'") == "0"
    assert db.psql(f"SELECT count(*) FROM devices WHERE vpc_id = '{U2}'") == "0"


def test_notifications(migrated):
    db = migrated
    out = db.psql("LISTEN nexodus_changes;\n"
                  f"UPDATE devices SET relay = true WHERE id = '{D1}';\n"
                  f"DELETE FROM device_metadata WHERE device_id = '{D1}';\n"
                  "SELECT 'done';")
    notes = re.findall(r'Asynchronous notification "nexodus_changes" with payload "(.*)" '
                       r'received', out)
    assert len(notes) == 2, out
    r = rev(db, "devices", f"id = '{D1}'")
    assert re.search(rf'"kind" : "device", "type" : "change", "vpc_id" : "{U1}", '
                     rf'"revision" : {r}\}}', notes[0]), notes
    assert re.search(rf'"kind" : "device-metadata", "type" : "delete", "vpc_id" : "{U1}", '
                     r'"revision" : \d+', notes[1]), notes


def test_revisions_ordered_per_vpc(migrated):
    """A writer holds its VPC's revision lock until it commits, so a later writer to the
    same VPC cannot commit a revision that watchers could see before the earlier one; other
    VPCs are not held up."""
    db = migrated
    a = Session(db.conninfo)
    try:
        a.send(f"BEGIN; UPDATE devices SET hostname = 'a' WHERE id = '{D1}';")
        wait_until(lambda: db.psql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") == "1",
            what="writer holding the VPC lock")
        with pytest.raises(CmdError) as e:
            db.psql(f"SET lock_timeout = '300ms'; "
                    f"UPDATE devices SET hostname = 'b' WHERE id = '{D2}'")
        assert "lock timeout" in str(e.value)
        db.psql(f"SET lock_timeout = '5s'; UPDATE devices SET hostname = 'c' WHERE id = '{D3}'")
        a.send("COMMIT;")
        a.close()
        db.psql(f"SET lock_timeout = '5s'; UPDATE devices SET hostname = 'b' WHERE id = '{D2}'")
        assert rev(db, "devices", f"id = '{D2}'") > rev(db, "devices", f"id = '{D1}'")
    finally:
        a.close()


def test_unreachable_socket_dir(daemons, postgres):
    d = daemons("host=/nonexistent/nexsrv-lab dbname=x").start()
    wait_until(lambda: log_has(d, r"database host=/nonexistent/nexsrv-lab dbname=x: not "
                                  r"available, retrying: .*No such file or directory"),
               timeout=10)
    assert d.proc.alive()
    assert not log_has(d, r": ready")
    assert ready_status(d) == 503


def test_missing_database_recovers(daemons, postgres_cluster):
    """nexsrv pointed at a database that does not exist yet starts anyway, keeps trying,
    and migrates as soon as the database is created."""
    name = "t_late_" + secrets.token_hex(4)
    try:
        d = daemons(postgres_cluster.conninfo(name)).start()
        wait_until(lambda: log_has(d, rf'not available, retrying: .*database "{name}" does '
                                      r"not exist"), timeout=10)
        assert not log_has(d, r"schema migrated")
        assert ready_status(d) == 503
        postgres_cluster.psql(f'CREATE DATABASE "{name}"')
        wait_until(lambda: log_has(d, rf"schema migrated from version 0 to {LATEST}\b"),
                   timeout=20, what="migration after the database appeared")
        wait_until(lambda: log_has(d, rf"dbname={name} user=postgres: ready"), timeout=5)
        assert ready_status(d) == 200
        assert postgres_cluster.psql("SELECT max(version) FROM schema_version",
                                     dbname=name) == str(LATEST)
    finally:
        postgres_cluster.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_database_goes_away_and_back(daemons, postgres):
    """The database refuses connections and drops nexsrv's: nexsrv notices within a health
    check, keeps retrying, and is ready again once the database accepts connections."""
    d = daemons(postgres.conninfo).start()
    wait_until(lambda: log_has(d, r": ready"), timeout=10)
    name = postgres.dbname
    cluster = postgres.cluster
    try:
        cluster.psql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false;'
                     "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     f"WHERE datname = '{name}' AND pid <> pg_backend_pid();")
        wait_until(lambda: log_has(d, r"not available, retrying"), timeout=15,
                   what="outage noticed")
        assert ready_status(d) == 503
        ready_before = len(re.findall(r": ready", d.proc.log()))
    finally:
        cluster.psql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    wait_until(lambda: len(re.findall(r": ready", d.proc.log())) > ready_before, timeout=15,
               what="ready again")
    assert ready_status(d) == 200
    assert d.proc.alive()


def controller_status(d):
    """show controller status json, through nexsh."""
    r = d.nexsh("show controller status json")
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout
    return json.loads(r.stdout)


def test_show_controller_status(daemons, postgres):
    """The status follows the database (ready, not-ready while it is away, ready again) and
    reports the HTTP server, the STUN responder's counters, streams and OIDC."""
    d = daemons(postgres.conninfo)
    stun_port = free_udp_port()
    d.write_config(d.config_text.replace("exit\n", f" stun-listen 127.0.0.1:{stun_port}\nexit\n"))
    d.start()
    wait_until(lambda: controller_status(d)["status"] == "ready", timeout=15,
               what="status ready")
    st = controller_status(d)
    assert st["database-connected"] is True
    assert st["status-message"] == "serving: the database answers"
    assert st["watchers"] == 0
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", st["version"]), st
    assert st["database"]["configured"] is True
    assert st["database"]["state"] == "ready"
    assert f"dbname={postgres.dbname}" in st["database"]["target"]
    assert st["http"] == {"running": True, "listen": f"127.0.0.1:{d.port}", "port": d.port,
                          "tls": False}
    assert st["oidc"] == {"configured": False}
    assert st["stun"]["running"] is True and st["stun"]["requests"] == 0

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        mapped = stun.binding(s, ("127.0.0.1", stun_port))
        assert mapped["mapped_port"] == s.getsockname()[1], mapped
    st = controller_status(d)["stun"]
    assert st["listen"] == f"127.0.0.1:{stun_port}"
    assert st["requests"] >= 1 and st["responses"] >= 1, st
    assert st["error-responses"] == 0 and st["ignored"] == 0 and st["send-failures"] == 0

    name = postgres.dbname
    cluster = postgres.cluster
    try:
        cluster.psql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false;'
                     "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     f"WHERE datname = '{name}' AND pid <> pg_backend_pid();")
        wait_until(lambda: controller_status(d)["status"] == "not-ready", timeout=15,
                   what="status not-ready")
        st = controller_status(d)
        assert st["database-connected"] is False
        assert st["database"]["state"] == "down"
        # the last database error follows: refused, or the connection terminated
        prefix = "the database does not answer: "
        assert st["status-message"].startswith(prefix), st
        assert len(st["status-message"]) > len(prefix) + 10, st
        assert st["http"]["running"] is True
        r = d.nexsh("show controller status")
        assert r.returncode == 0, r.stderr
        assert "Status:             not-ready\n" in r.stdout, r.stdout
        assert f"dbname={name}" in r.stdout and "(down, not connected)" in r.stdout, r.stdout
        assert SECRET not in r.stdout
    finally:
        cluster.psql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    wait_until(lambda: controller_status(d)["status"] == "ready", timeout=15,
               what="status ready again")
    assert controller_status(d)["database-connected"] is True


def test_db_layer_in_c(postgres):
    """tests/unit/test_nexsrv_db with a database: pool, queries, transactions, LISTEN."""
    binary = os.path.join(BUILDDIR, "tests", "unit", "test_nexsrv_db")
    if not os.access(binary, os.X_OK):
        pytest.skip(f"{binary} not built (make check builds it)")
    env = dict(os.environ, NEXSRV_TEST_DB=postgres.conninfo, CMOCKA_MESSAGE_OUTPUT="STDOUT",
               ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    r = subprocess.run([binary], capture_output=True, text=True, timeout=120, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "left out" not in out and "SKIPPED" not in out, out
    assert "PASSED" in out, out
