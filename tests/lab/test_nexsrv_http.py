# SPDX-License-Identifier: GPL-2.0-or-later
"""nexsrv's HTTP server core, seen by a plain HTTP client (urllib) on loopback.

Without a database the service is alive (/private/live 200) but not ready (/private/ready
503 "not ready: no database": the database layer installs the real check), and /metrics
counts every request; "show controller status" says not-configured.  Errors are JSON:
unknown path 404, wrong method 405, an oversized body 413, a malformed path 400, a caller
over its rate limit 429 with Retry-After.  The rate limit has two tiers: every request is
charged to its client address (ten times the per-caller limit, for the many agents behind
one NAT address), and a verified caller also to its own identity: invented or freshly
minted tokens get no bucket of their own.  A rate-limit change through nexsh applies to the
running server at once.  With tls-cert/tls-key the API is HTTPS only; with neither TLS nor
insecure-http nexsrv refuses to start, saying why.  Every daemon must stop with exit status
0 (ASan's leak check runs at exit).
"""

import http.client
import json
import re
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from daemons import Daemon
from lab import wait_until

# rate-limit requests-per-second 1, burst 3 per caller: 10/s and a burst of 30 per address
# (NEXSRV_RATELIMIT_ADDRESS_FACTOR).
SLOW = " rate-limit requests-per-second 1\n rate-limit burst 3\n"
ADDRESS_BURST = 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(port, extra=""):
    return f"controller\n listen 127.0.0.1:{port}\n{extra}exit\n"


def call(url, method="GET", data=None, headers=None, context=None):
    """(status, headers, body bytes) for any status, errors included."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def call_json(url, **kw):
    status, headers, body = call(url, **kw)
    assert headers["Content-Type"] == "application/json", (status, headers, body)
    return status, headers, json.loads(body)


def start(lab, cfg):
    d = Daemon(lab, "nexsrv", config=cfg)
    d.start()
    return d


@pytest.fixture
def served(lab):
    """nexsrv on plain HTTP with the api debug switch on: (daemon, base URL)."""
    port = free_port()
    d = start(lab, config(port, " insecure-http\n") + "debug controller api\n")
    try:
        yield d, f"http://127.0.0.1:{port}"
        assert d.stop() == 0, d.proc.log(40)
    finally:
        d.cleanup()


def metric(text, name, labels=""):
    """The value of one sample of the Prometheus text, or None."""
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def test_live_ready_and_metrics(served):
    d, base = served
    status, headers, body = call_json(base + "/private/live")
    assert (status, body) == (200, {})
    status, _, body = call_json(base + "/private/ready")
    assert status == 503
    assert body == {"error": "not ready: no database"}

    status, headers, text = call(base + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = text.decode()
    assert "# TYPE http_requests_total counter" in text
    assert "# TYPE http_request_duration_seconds histogram" in text
    live = '{method="GET",route="/private/live",code="200"}'
    ready = '{method="GET",route="/private/ready",code="503"}'
    assert metric(text, "http_requests_total", live) == 1
    assert metric(text, "http_requests_total", ready) == 1
    assert metric(text, "process_resident_memory_bytes") > 1e6
    assert metric(text, "process_cpu_seconds_total") >= 0
    assert metric(text, "process_open_fds") > 3
    # every sample line is NAME{LABELS} VALUE, every family has HELP and TYPE
    for line in text.splitlines():
        assert line.startswith("# ") or re.fullmatch(r'[a-zA-Z_:][\w:]*(\{.*\})? \S+', line), line
    assert len(re.findall(r"^# TYPE ", text, re.M)) == len(re.findall(r"^# HELP ", text, re.M))

    call(base + "/private/live")
    call(base + "/private/live")
    _, _, text = call(base + "/metrics")
    text = text.decode()
    assert metric(text, "http_requests_total", live) == 3
    assert metric(text, "http_requests_total", '{method="GET",route="/metrics",code="200"}') == 1
    assert metric(text, "http_request_duration_seconds_count",
                  '{method="GET",route="/private/live"}') == 3

    # one access-log line per request, through "debug controller api"
    wait_until(lambda: d.proc.log().count('"GET /private/live" 200') == 3,
               what="access log lines")


def test_errors_are_json(served):
    _, base = served
    status, _, body = call_json(base + "/api/nothing/here")
    assert (status, body) == (404, {"error": "not found"})
    status, headers, body = call_json(base + "/private/live", method="POST", data=b"{}")
    assert (status, body) == (405, {"error": "method not allowed"})
    assert headers["Allow"] == "GET, HEAD"
    status, _, body = call_json(base + "/private/live", data=b"x" * (2 * 1024 * 1024),
                                method="GET")
    assert status == 413
    assert body == {"error": "request body too large (limit 1048576 bytes)"}
    status, _, body = call_json(base + "/private/%zz")
    assert status == 400
    assert body == {"error": 'bad percent-encoding "%zz" in the path'}
    # a trailing slash is another path
    status, _, _ = call_json(base + "/private/live/")
    assert status == 404
    # HEAD is served by GET routes
    status, _, body = call(base + "/private/live", method="HEAD")
    assert (status, body) == (200, b"")


def until_429(request, limit=300):
    """Calls request(i) for i = 0, 1, ... until one answers 429; (i, that response)."""
    for i in range(limit):
        r = request(i)
        if r[0] == 429:
            return i, r
    pytest.fail(f"no 429 in {limit} requests")


def assert_429(response):
    _, headers, body = response
    assert headers["Retry-After"] == "1"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": "too many requests"}


def test_rate_limit(lab):
    port = free_port()
    d = start(lab, config(port, " insecure-http\n" + SLOW))
    try:
        base = f"http://127.0.0.1:{port}"
        # unauthenticated requests are held by their address, at ten times the per-caller
        # limit: a burst of 3 does not stop a NAT address's agents at their 4th request
        results = [call(base + "/private/live") for _ in range(6)]
        assert [r[0] for r in results] == [200] * 6
        # invented bearer tokens fail authentication (no OIDC provider here: 401) and get
        # no bucket of their own: they drain their address's bucket, then get 429
        n, limited = until_429(lambda i: call(
            base + "/api/users/me", headers={"Authorization": f"Bearer invented-{i}"}))
        assert n >= ADDRESS_BURST - 6
        assert_429(limited)
        # the bucket refills (at 10 per second)
        wait_until(lambda: call(base + "/metrics")[0] == 200, timeout=5,
                   what="a refilled token")
        time.sleep(0.2)
        _, _, text = call(base + "/metrics")
        text = text.decode()
        assert metric(text, "http_rate_limited_total") >= 1
        assert metric(text, "http_requests_total",
                      '{method="GET",route="/api/users/{id}",code="401"}') >= ADDRESS_BURST - 6
        assert d.stop() == 0, d.proc.log(40)
    finally:
        d.cleanup()


def test_rate_limit_per_verified_caller(lab, postgres, idp):
    """A person is one caller whatever token they present; another person from the same
    address has a bucket of their own."""
    port = free_port()
    d = start(lab, config(port, f" insecure-http\n database {postgres.conninfo}\n"
                                f" oidc-issuer {idp.issuer}\n oidc-audience {idp.audience}\n"
                                + SLOW))
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: call(base + "/private/ready")[0] == 200, timeout=15,
                   what="nexsrv ready")

        def me(sub):
            # a freshly minted token each time: a new token is no new bucket
            token = idp.mint_token(sub)
            return call(base + "/api/users/me", headers={"Authorization": f"Bearer {token}"})

        n, limited = until_429(lambda i: me("rl-alice"), limit=30)
        assert n >= 3  # the burst
        assert_429(limited)
        # bob, from the same address, is served
        assert me("rl-bob")[0] == 200
        assert me("rl-bob")[0] == 200
        # the bucket was alice's, not her tokens': every token of hers was refused or
        # served from it, and one user was created
        assert postgres.psql("SELECT count(*) FROM users WHERE idp_subject = 'rl-alice'") == "1"
        wait_until(lambda: me("rl-alice")[0] == 200, timeout=5, what="alice's bucket refilled")
        assert d.stop() == 0, d.proc.log(40)
    finally:
        d.cleanup()


def test_rate_limit_changed_at_run_time(lab):
    """rate-limit leaves changed through nexsh apply to the running server."""
    port = free_port()
    d = start(lab, config(port, " insecure-http\n" + SLOW))
    try:
        base = f"http://127.0.0.1:{port}"

        def live(i):
            return call(base + "/private/live")

        n, _ = until_429(live)
        assert n >= ADDRESS_BURST
        # raised: the same client is no longer held back
        r = d.nexsh("configure terminal", "controller", "rate-limit requests-per-second 100000",
                    "rate-limit burst 100000", "end")
        assert r.returncode == 0, r.stderr
        wait_until(lambda: "rate-limit: 100000 requests per second, burst 100000" in
                   d.proc.log(), timeout=5, what="the change logged")
        assert [live(i)[0] for i in range(100)] == [200] * 100
        # lowered: burst 1 per caller is 10 per address, refilling at 10 per second
        r = d.nexsh("configure terminal", "controller", "rate-limit requests-per-second 1",
                    "rate-limit burst 1", "end")
        assert r.returncode == 0, r.stderr
        started = time.monotonic()
        n, limited = until_429(live)
        elapsed = time.monotonic() - started
        assert 10 <= n <= 10 + 10 * elapsed + 1, (n, elapsed)
        assert_429(limited)
        # back to the defaults (50 per second, burst 100 per caller; 500 and 1000 per
        # address): the emptied bucket refills at the new rate, 250 tokens in half a second
        r = d.nexsh("configure terminal", "controller", "no rate-limit requests-per-second",
                    "no rate-limit burst", "end")
        assert r.returncode == 0, r.stderr
        wait_until(lambda: "rate-limit: 50 requests per second, burst 100" in d.proc.log(),
                   timeout=5, what="the defaults logged")
        time.sleep(0.5)
        assert [live(i)[0] for i in range(100)] == [200] * 100
        assert d.stop() == 0, d.proc.log(40)
    finally:
        d.cleanup()


def test_status_without_database(served):
    d, base = served
    r = d.nexsh("show controller status json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    port = int(base.rsplit(":", 1)[1])
    assert st["status"] == "not-configured"
    assert "no database is configured" in st["status-message"]
    assert st["database-connected"] is False
    assert st["database"] == {"configured": False}
    assert st["http"] == {"running": True, "listen": f"127.0.0.1:{port}", "port": port,
                          "tls": False}
    assert st["watchers"] == 0
    assert st["stun"] == {"running": False}
    assert st["oidc"] == {"configured": False}
    r = d.nexsh("show controller status")
    assert r.returncode == 0, r.stderr
    assert "Status:             not-configured\n" in r.stdout
    assert f"127.0.0.1:{port} (port {port}), plain HTTP" in r.stdout


def test_tls(lab):
    port = free_port()
    cert, key = f"{lab.tmp}/cert.pem", f"{lab.tmp}/key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=30)
    d = start(lab, config(port, f" tls-cert {cert}\n tls-key {key}\n"))
    try:
        ctx = ssl.create_default_context(cafile=cert)
        status, _, body = call_json(f"https://127.0.0.1:{port}/private/live", context=ctx)
        assert (status, body) == (200, {})
        status, _, body = call_json(f"https://localhost:{port}/private/ready", context=ctx)
        assert status == 503
        # without the certificate as trust anchor the client refuses the server
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            call(f"https://127.0.0.1:{port}/private/live", context=ssl.create_default_context())
        # plain HTTP on the HTTPS port gets no HTTP answer
        with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
            call(f"http://127.0.0.1:{port}/private/live")
        assert "over HTTPS" in d.proc.log()
        assert d.stop() == 0, d.proc.log(40)
    finally:
        d.cleanup()


def test_refuses_to_start_without_tls_or_insecure_http(lab):
    d = Daemon(lab, "nexsrv", config=config(free_port()))
    try:
        r = d.run_foreground()
    finally:
        d.cleanup()
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert ("refusing to serve the API without TLS: set tls-cert and tls-key, or insecure-http "
            "to serve plain HTTP") in out, out


def test_refuses_to_start_with_a_bad_key(lab):
    cert, key = f"{lab.tmp}/cert.pem", f"{lab.tmp}/other-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", f"{lab.tmp}/key.pem", "-out", cert, "-days", "1",
                    "-subj", "/CN=localhost"], check=True, capture_output=True, timeout=30)
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", key],
                   check=True, capture_output=True, timeout=30)
    d = Daemon(lab, "nexsrv", config=config(free_port(), f" tls-cert {cert}\n tls-key {key}\n"))
    try:
        r = d.run_foreground()
    finally:
        d.cleanup()
    assert r.returncode != 0
    assert f"tls-key {key} does not belong to tls-cert {cert}" in r.stdout + r.stderr
