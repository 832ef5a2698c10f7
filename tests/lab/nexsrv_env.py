# SPDX-License-Identifier: GPL-2.0-or-later
"""One nexsrv with its own PostgreSQL database and the test OIDC provider: the service the
REST API tests talk to.

    with nexsrv_env(postgres_cluster, "test_api_x", extra=NO_RATE_LIMIT) as env:
        api = env.api(env.idp.mint_token("alice"))
        ...

nexsrv_env() starts the provider, creates a database in the given cluster, starts nexsrv
on a free loopback port and waits until it is ready (schema migrated); on the way out it
stops nexsrv, which must exit cleanly with no sanitizer report in its log, and removes
everything.  Test modules wrap it in a module-scoped fixture, with an Env subclass that
adds what they need (env_class=).

Also here, for the tests that must reach every route: the routes nexsrv serves, read from
its route tables (c_routes()), those of the swagger documents (swagger_routes()), a
snapshot of every table of a database (db_snapshot()) to show that a request changed
nothing, request() that also copes with a watch stream (it never ends), and Watch, a
watch stream held open and read in the background.
"""

import contextlib
import glob
import http.client
import json
import os
import re
import socket
import threading
import time
import urllib.parse

import yaml

from api import Api
from daemons import TOP, Daemon, free_port
from idp import start_idp
from lab import Lab, wait_until

CLIENT_ID = "nexodus-cli"
# For modules whose callers make many requests in a row: no rate limit in the way.
NO_RATE_LIMIT = " rate-limit requests-per-second 1000000\n rate-limit burst 1000000\n"
SANITIZER_MARKS = ("Sanitizer", "runtime error")


def nexsrv_config(port, conninfo, issuer, audience, client_id=CLIENT_ID, extra=""):
    return (f"controller\n listen 127.0.0.1:{port}\n insecure-http\n database {conninfo}\n"
            f" oidc-issuer {issuer}\n oidc-audience {audience}\n oidc-client-id {client_id}\n"
            f"{extra}exit\n")


def start_nexsrv(lab, conninfo, idp, extra=""):
    """Starts nexsrv on a free port and waits until /private/ready; (Daemon, base URL)."""
    port = free_port(socket.SOCK_STREAM)
    d = Daemon(lab, "nexsrv", config=nexsrv_config(port, conninfo, idp.issuer, idp.audience,
                                                   extra=extra))
    d.start()
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: Api(base).get("/private/ready")[0] == 200, timeout=15,
               what="nexsrv ready (database migrated)")
    return d, base


def sanitizer_report(log):
    """The first line of an ASan/UBSan report in a process log, or None."""
    for line in log.splitlines():
        if any(mark in line for mark in SANITIZER_MARKS):
            return line
    return None


def assert_healthy(daemon):
    """The daemon still runs and has written no sanitizer report."""
    assert daemon.proc.alive(), "nexsrv died:\n" + daemon.proc.log(60)
    report = sanitizer_report(daemon.proc.log())
    assert report is None, daemon.proc.log()


class Env:
    """The service: .base, .idp, .db (the PgDatabase), .daemon, .lab."""

    def __init__(self, base, idp, db, daemon, lab):
        self.base = base
        self.idp = idp
        self.db = db
        self.daemon = daemon
        self.lab = lab

    def api(self, token=None):
        return Api(self.base, token)

    def token(self, token):
        return Api(self.base, token)

    def sql(self, query):
        return self.db.psql(query)

    def count(self, table, where="true"):
        return int(self.sql(f"SELECT count(*) FROM {table} WHERE {where}"))


@contextlib.contextmanager
def nexsrv_env(postgres_cluster, label, extra="", env_class=Env):
    lab = Lab(label=label)
    idp = db = d = None
    try:
        idp = start_idp(log_path=os.path.join(lab.tmp, "idp.log"))
        db = postgres_cluster.create_database()
        d, base = start_nexsrv(lab, db.conninfo, idp, extra=extra)
        yield env_class(base, idp, db, d, lab)
        log = d.proc.log()
        assert d.stop() == 0, d.proc.log(60)
        assert sanitizer_report(log) is None, log
    finally:
        if d:
            d.cleanup()
        if idp:
            idp.stop()
        if db:
            db.drop()
        lab.teardown()


def request(api, method, path, body=None, headers=None, stream_s=1.0, **query):
    """As api.request() (same arguments and answer), but an answer streamed without a
    length (a watch stream never ends by itself) is read for stream_s seconds only: its
    body is then the text read."""
    u = urllib.parse.urlsplit(api.base_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=api.timeout)
    hdrs = {"Accept": "application/json"}
    if api.token is not None:
        hdrs["Authorization"] = f"Bearer {api.token}"
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else \
            body.encode() if isinstance(body, str) else json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    try:
        conn.request(method, api.url(path, query)[len(api.base_url):], body=data,
                     headers=hdrs)
        resp = conn.getresponse()
        if resp.getheader("Content-Length") is not None or resp.status != 200:
            raw = resp.read()
        else:
            raw = b""
            deadline = time.monotonic() + stream_s
            while time.monotonic() < deadline:
                conn.sock.settimeout(max(deadline - time.monotonic(), 0.01))
                try:
                    chunk = resp.read1(65536)
                except (socket.timeout, TimeoutError):
                    break  # the response cannot be read any more after a timeout
                if not chunk:
                    break
                raw += chunk
            return resp.status, raw.decode("utf-8", "replace"), resp.headers
        text = raw.decode("utf-8", "replace")
        try:
            return resp.status, json.loads(text) if text else None, resp.headers
        except ValueError:
            return resp.status, text, resp.headers
    finally:
        conn.close()


class Watch:
    """A watch stream of a VPC held open, read by a thread of its own: .text is what came
    so far, .ended whether the server ended it."""

    def __init__(self, api, vpc, kinds=("device", "security-group", "device-metadata", "vpc"),
                 gt_revision=0):
        u = urllib.parse.urlsplit(api.base_url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        self.conn.request("POST", f"/api/vpcs/{vpc}/events",
                          body=json.dumps([{"kind": k, "gt_revision": gt_revision}
                                           for k in kinds]),
                          headers={"Authorization": f"Bearer {api.token}",
                                   "Content-Type": "application/json"})
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.read()
        self.conn.sock.settimeout(None)
        self.text = ""
        self.ended = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        try:
            while True:
                chunk = self.resp.read1(65536)
                if not chunk:
                    break
                self.text += chunk.decode("utf-8", "replace")
        except Exception:  # noqa: BLE001  (closed under it: the end of the stream)
            pass
        self.ended = True

    def read_until(self, marker, timeout=5.0):
        """The text once marker is in it (and a little more time passed), or at timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and marker not in self.text and not self.ended:
            time.sleep(0.05)
        time.sleep(0.3)
        return self.text

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        self.conn.close()
        self.reader.join(5)


# --- the routes ------------------------------------------------------------------------------

# A route in nexsrv's C tables: {.method = "GET", .pattern = "/api/x"} (either order) or a
# macro taking ("GET", "/api/x", handler).
_ROUTE_RES = (
    re.compile(r'"(GET|HEAD|POST|PUT|PATCH|DELETE)"\s*,\s*(?:\.pattern\s*=\s*)?"(/[^"]*)"'),
    re.compile(r'\.pattern\s*=\s*"(/[^"]*)"\s*,\s*\.method\s*=\s*"([A-Z]+)"'),
)
# The original service's swagger (outside the tree, where present) and nexsrv's own.
SWAGGERS = ("/work/shared/reference/nexodus-api-v1.swagger.yaml",
            os.path.join(TOP, "doc", "api", "openapi.yaml"))
# What the swagger says differently from the original's router (reference/README.md).
SWAGGER_ERRATA = {"/api/vpc/{id}/events": "/api/vpcs/{id}/events"}


def c_routes(srcdir=os.path.join(TOP, "nexsrv")):
    """Every (method, pattern) in the route tables of nexsrv's sources."""
    routes = set()
    for path in sorted(glob.glob(os.path.join(srcdir, "*.c"))):
        with open(path, errors="replace") as f:
            text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)  # not in comments
        for m in _ROUTE_RES[0].finditer(text):
            routes.add((m.group(1), m.group(2)))
        for m in _ROUTE_RES[1].finditer(text):
            routes.add((m.group(2), m.group(1)))
    return routes


def swagger_routes(exclude=("/api/sites", "/api/service-networks", "/api/ServiceNetworks",
                            "/api/ca")):
    """(method, path) of the swagger documents' /api paths (those that exist), corrected,
    without the excluded ones."""
    routes = set()
    for name in SWAGGERS:
        if not os.path.exists(name):
            continue
        with open(name) as f:
            doc = yaml.safe_load(f)
        for path, ops in (doc.get("paths") or {}).items():
            path = SWAGGER_ERRATA.get(path, path)
            if not path.startswith("/api/") or path.startswith(exclude):
                continue
            for method in ops:
                if method in ("get", "post", "put", "patch", "delete"):
                    routes.add((method.upper(), path))
    return routes


# --- the database as a whole -----------------------------------------------------------------


def db_tables(db):
    out = db.psql("SELECT table_name FROM information_schema.tables WHERE table_schema = "
                  "'public' AND table_type = 'BASE TABLE' ORDER BY 1")
    return out.split()


def db_snapshot(db, tables=None):
    """Every row of every table (or of tables) as text: {table: sorted rows}."""
    tables = tables or db_tables(db)
    sql = " UNION ALL ".join(f"SELECT '{t}' || chr(9) || t::text FROM {t} t" for t in tables)
    rows = {t: [] for t in tables}
    for line in db.psql(sql).splitlines():
        table, _, row = line.partition("\t")
        rows[table].append(row)
    return {t: sorted(r) for t, r in rows.items()}


def snapshot_diff(before, after):
    """What changed between two db_snapshot()s, as text ("" when nothing)."""
    lines = []
    for table in sorted(set(before) | set(after)):
        b, a = set(before.get(table, [])), set(after.get(table, []))
        lines += [f"{table}: - {row}" for row in sorted(b - a)]
        lines += [f"{table}: + {row}" for row in sorted(a - b)]
    return "\n".join(lines)
