#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A scripted stand-in for nexsrv, for lab tests of nexd.

nexd is driven by what the controller sends; to test how it copes with a controller that is
wrong, hostile or merely large, the controller must say exactly what a test wants, byte for
byte, at the moment the test wants it.  This server speaks the part of the API nexd uses
(enrollment, the VPC, the device watch stream, PATCH of its own device) with valid objects,
keeps a small device store, and lets the test script the watch streams and push arbitrary
lines into them while they are open.  Every request it receives is appended to a log (one
JSON object per line) that the test reads.  Python 3 standard library only.

Run as a program inside a lab namespace (see FakeController below):

    fake_controller.py --listen 10.0.0.1:8080 --log /tmp/x/requests.jsonl
                       [--reg-key RK:...] [--vpc-id UUID] [--ipv4-cidr 100.64.0.0/10]
                       [--ipv6-cidr fd00:100::/64] [--devices N] [--seed S]
                       [--script FILE] [--heartbeat SECONDS]

A watch stream sends, on every connection, the items of the script (default: the listing of
the store newer than the request's gt_revision, then a tail), then stays open: items pushed
later (POST /_fake/push) are sent on every open stream, and an empty line every --heartbeat
seconds.  Items (JSON objects):

    {"line": VALUE}        VALUE serialized compactly, then "\\n"
    {"raw": "TEXT"}        TEXT as is (UTF-8, lone surrogates as bytes), then "\\n"
    {"raw_b64": "..."}     the decoded bytes, then "\\n"
    {"big": {"head": H, "fill": F, "count": N, "sep": S, "tail": T}}
                           H + S.join([F] * N) + T + "\\n": huge lines without a huge push
    {"heartbeat": N}       N empty lines
    {"sleep": SECONDS}
    {"listing": true}      a change line for each stored device newer than gt_revision
    {"tail": true}         {"kind": "device", "type": "tail"}
    {"error": CODE, "message": "..."}   an error line (nexsrv closes the stream after one)
    {"close": true}        end the stream properly (last chunk)
    {"abort": true}        drop the connection mid-stream
    {"upsert": DEVICE}     (push only) store DEVICE (a new revision unless it has one) and
                           send its change line
    {"delete": ID}         (push only) remove device ID from the store, send a delete line

The script file holds a list of items, or {"streams": [[items of 1st stream], [2nd], ...]}
(streams after the last use the last list).  POST /_fake/script replaces it at run time.
POST /_fake/override {"method": M, "path": PREFIX, "status": S, "body": JSON | "raw": TEXT,
"times": N} answers the next N (default all) matching API requests with that instead.
GET /_fake/state gives the VPC, this device, the store size and the open streams.
Requests to /_fake/ are not logged.
"""

import argparse
import base64
import ipaddress
import json
import os
import random
import re
import secrets
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# --- keys: X25519 (RFC 7748), so that generated devices carry real WireGuard key pairs -------

_P = 2**255 - 19
_A24 = 121665


def x25519(scalar, u):
    """X25519(scalar, u) on 32-byte strings."""
    k = bytearray(scalar)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = int.from_bytes(k, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in range(254, -1, -1):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % _P, (x2 - z2) % _P
        aa, bb = a * a % _P, b * b % _P
        e = (aa - bb) % _P
        c, d = (x3 + z3) % _P, (x3 - z3) % _P
        da, cb = d * a % _P, c * b % _P
        x3 = (da + cb) ** 2 % _P
        z3 = x1 * (da - cb) ** 2 % _P
        x2 = aa * bb % _P
        z2 = e * (aa + _A24 * e) % _P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, _P - 2, _P) % _P).to_bytes(32, "little")


def keypair(rng=None):
    """A WireGuard key pair (private, public), both base64."""
    priv = bytes(rng.getrandbits(8) for _ in range(32)) if rng else secrets.token_bytes(32)
    pub = x25519(priv, (9).to_bytes(32, "little"))
    return base64.b64encode(priv).decode(), base64.b64encode(pub).decode()


# --- objects as nexsrv writes them ------------------------------------------------------------

DEFAULT_IPV4_CIDR = "100.64.0.0/10"
DEFAULT_IPV6_CIDR = "fd00:100::/64"


def make_device(vpc_id, ipv4=None, ipv6=None, public_key=None, revision=1, device_id=None,
                hostname=None, endpoints=None, advertise=(), ipv4_cidr=DEFAULT_IPV4_CIDR,
                ipv6_cidr=DEFAULT_IPV6_CIDR, **extra):
    """A device object shaped like nexsrv's (NEXSRV_DEVICE_JSON); extra fields override."""
    device_id = device_id or str(uuid.uuid4())
    v4 = [{"address": ipv4, "cidr": ipv4_cidr}] if ipv4 else []
    v6 = [{"address": ipv6, "cidr": ipv6_cidr}] if ipv6 else []
    d = {
        "id": device_id,
        "owner_id": str(uuid.UUID(int=1)),
        "vpc_id": vpc_id,
        "public_key": public_key or keypair()[1],
        "hostname": hostname or f"dev-{device_id[:8]}",
        "os": "linux",
        "endpoints": endpoints if endpoints is not None else [],
        "ipv4_tunnel_ips": v4,
        "ipv6_tunnel_ips": v6,
        "allowed_ips": [f"{ipv4}/32"] * bool(ipv4) + [f"{ipv6}/128"] * bool(ipv6),
        "advertise_cidrs": list(advertise),
        "relay": False,
        "symmetric_nat": False,
        "security_group_id": "",
        "online": True,
        "online_at": "2024-01-01T00:00:00Z",
        "revision": revision,
    }
    d.update(extra)
    return d


def change_line(device, kind="device"):
    return {"kind": kind, "type": "change", "value": device}


def delete_line(device, kind="device"):
    return {"kind": kind, "type": "delete", "value": device}


def error_line(code, message):
    return {"type": "error", "value": {"code": code, "error": message}}


TAIL_LINE = {"kind": "device", "type": "tail"}

# --- the server ---------------------------------------------------------------------------------


class State:
    def __init__(self, args):
        self.cond = threading.Condition()
        self.args = args
        self.reg_key = args.reg_key
        self.vpc = {
            "id": args.vpc_id,
            "organization_id": str(uuid.UUID(int=2)),
            "description": "fake controller VPC",
            "ipv4_cidr": args.ipv4_cidr,
            "ipv6_cidr": args.ipv6_cidr,
            "private_cidr": False,
            "revision": 1,
        }
        self.revision = 1
        self.devices = {}  # id -> device
        self.tokens = {}  # bearer token -> device id
        self.self_id = None
        self.pushed = []  # items every open stream sends, in order
        self.streams = 0  # connections so far
        self.open_streams = 0
        self.overrides = []
        self.script = None
        if args.script:
            with open(args.script) as f:
                self.script = json.load(f)
        self.log = open(args.log, "a", buffering=1)
        self.pool4 = ipaddress.ip_network(args.ipv4_cidr, strict=False)
        self.pool6 = ipaddress.ip_network(args.ipv6_cidr, strict=False)
        self.generate(args.devices, args.seed)

    def next_revision(self):
        self.revision += 1
        return self.revision

    def seen_revision(self, rev):
        # Hostile revisions (negative, beyond int64) are sent, not adopted.
        if isinstance(rev, int) and not isinstance(rev, bool) and self.revision < rev < 2**62:
            self.revision = rev

    def generate(self, n, seed):
        """n valid devices with real key pairs; tunnel addresses from .3 on (.2: this one)."""
        rng = random.Random(seed)
        for i in range(n):
            _, pub = keypair(rng)
            ip4 = str(self.pool4.network_address + 3 + i)
            ip6 = str(self.pool6.network_address + 3 + i)
            ep = f"198.18.{((i + 1) >> 8) & 255}.{(i + 1) & 255}:51820"
            d = make_device(self.vpc["id"], ip4, ip6, pub, revision=self.next_revision(),
                            device_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                            hostname=f"gen-{i}", endpoints=[{"source": "local", "address": ep}],
                            ipv4_cidr=self.args.ipv4_cidr, ipv6_cidr=self.args.ipv6_cidr)
            self.devices[d["id"]] = d

    def record(self, entry):
        with self.cond:
            self.log.write(json.dumps(entry) + "\n")

    def listing(self, gt_revision):
        with self.cond:
            devs = sorted(self.devices.values(), key=lambda d: d.get("revision", 0))
            return [change_line(d) for d in devs
                    if not isinstance(d.get("revision"), int) or d["revision"] > gt_revision]

    def upsert(self, device):
        """Stores device (a new revision unless it carries one); returns its change line."""
        with self.cond:
            device = dict(device)
            if not isinstance(device.get("revision"), int):
                device["revision"] = self.next_revision()
            self.seen_revision(device["revision"])
            self.devices[device.get("id")] = device
            return change_line(device)

    def delete(self, device_id):
        with self.cond:
            d = dict(self.devices.pop(device_id, None) or {"id": device_id})
            d["revision"] = self.next_revision()
            return delete_line(d)

    def push(self, items):
        """Pushed items go to every open stream; store changes are applied once, here."""
        out = []
        for item in items:
            if "upsert" in item:
                out.append({"line": self.upsert(item["upsert"])})
            elif "delete" in item:
                out.append({"line": self.delete(item["delete"])})
            else:
                value = item.get("line")
                if isinstance(value, dict) and isinstance(value.get("value"), dict):
                    with self.cond:
                        self.seen_revision(value["value"].get("revision"))
                out.append(item)
        with self.cond:
            self.pushed.extend(out)
            self.cond.notify_all()
        return len(out)

    def script_for(self, n):
        script = self.script
        if script is None:
            return [{"listing": True}, {"tail": True}]
        if isinstance(script, dict):
            streams = script.get("streams") or [[]]
            return streams[min(n, len(streams) - 1)]
        return script

    def take_override(self, method, path):
        with self.cond:
            for o in self.overrides:
                if o.get("method", method) == method and path.startswith(o.get("path", "")):
                    if o.get("times") is not None:
                        o["times"] -= 1
                        if o["times"] <= 0:
                            self.overrides.remove(o)
                    return o
        return None


class StreamClosed(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-nexsrv/1"
    state = None  # set in main()

    def log_message(self, fmt, *args):
        pass

    # -- plumbing ------------------------------------------------------------------------------

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def reply(self, status, body=None, raw=None):
        data = raw.encode() if raw is not None else \
            (json.dumps(body).encode() if body is not None else b"")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, msg):
        self.reply(status, {"error": msg})

    def bearer(self):
        auth = self.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    def dispatch(self, method):
        st = self.state
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        path, _, query = self.path.partition("?")
        if path.startswith("/_fake/"):
            return self.control(method, path, raw)
        body = raw.decode("utf-8", "replace")
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        st.record({"time": time.time(), "method": method, "path": path, "query": query,
                   "authorization": self.headers.get("Authorization"), "body": body,
                   "json": parsed})
        o = st.take_override(method, path)
        if o:
            return self.reply(o.get("status", 200), o.get("body"), o.get("raw"))
        m = re.fullmatch(r"/api/vpcs/([^/]+)(/events)?", path)
        if method == "GET" and path == "/api/reg-keys/me":
            return self.reg_key()
        if method == "POST" and path == "/api/devices":
            return self.create(parsed)
        if m and not self.device_token():
            return self.error(401, "invalid device token")
        if m and m.group(1) != st.vpc["id"]:
            return self.error(404, "no such VPC")
        if m and method == "GET" and not m.group(2):
            return self.reply(200, st.vpc)
        if m and method == "POST" and m.group(2):
            return self.watch(parsed)
        m = re.fullmatch(r"/api/devices/([^/]+)", path)
        if m and method == "PATCH":
            return self.patch(m.group(1), parsed)
        return self.error(404, "not found")

    # -- the API ---------------------------------------------------------------------------

    def reg_key_ok(self):
        key = self.bearer()
        return key is not None and key.startswith("RK:") and \
            (self.state.reg_key is None or key == self.state.reg_key)

    def device_token(self):
        return self.state.tokens.get(self.bearer() or "")

    def reg_key(self):
        if not self.reg_key_ok():
            return self.error(401, "invalid registration key")
        self.reply(200, {"id": str(uuid.UUID(int=3)), "vpc_id": self.state.vpc["id"],
                         "owner_id": str(uuid.UUID(int=1)), "description": "fake",
                         "single_use": False, "expiration": None})

    def create(self, req):
        st = self.state
        if not self.reg_key_ok():
            return self.error(401, "invalid registration key")
        if not isinstance(req, dict) or not isinstance(req.get("public_key"), str):
            return self.reply(400, {"error": "invalid request", "field": "public_key",
                                    "reason": "is missing"})
        with st.cond:
            for d in st.devices.values():  # enrolling again with the same key: same device
                if d.get("public_key") == req["public_key"] and d["id"] == st.self_id:
                    token = next(t for t, i in st.tokens.items() if i == d["id"])
                    return self.reply(200, dict(d, bearer_token=token))
            # Several devices may enroll: each takes the lowest host number not in use.
            used = {dev["ipv4_tunnel_ips"][0]["address"] for dev in st.devices.values()
                    if dev.get("ipv4_tunnel_ips")}
            host = 2
            while str(st.pool4.network_address + host) in used:
                host += 1
            d = make_device(st.vpc["id"], str(st.pool4.network_address + host),
                            str(st.pool6.network_address + host), req["public_key"],
                            revision=st.next_revision(), hostname=req.get("hostname"),
                            endpoints=req.get("endpoints") or [],
                            advertise=req.get("advertise_cidrs") or [],
                            ipv4_cidr=st.args.ipv4_cidr, ipv6_cidr=st.args.ipv6_cidr,
                            relay=bool(req.get("relay")),
                            symmetric_nat=bool(req.get("symmetric_nat")))
            token = "DT:" + secrets.token_urlsafe(24)
            st.tokens[token] = d["id"]
            st.self_id = d["id"]
            st.devices[d["id"]] = d
        st.push([{"upsert": d}])  # the devices already watching learn of it
        self.reply(201, dict(d, bearer_token=token))

    def patch(self, device_id, req):
        st = self.state
        if self.device_token() != device_id:
            return self.error(403, "not this device's token")
        if not isinstance(req, dict):
            return self.error(400, "invalid request")
        with st.cond:
            d = dict(st.devices.get(device_id) or {})
            if not d:
                return self.error(404, "no such device")
            for k in ("endpoints", "advertise_cidrs", "relay", "symmetric_nat", "hostname"):
                if k in req:
                    d[k] = req[k]
            d["revision"] = st.next_revision()
        st.push([{"upsert": d}])
        self.reply(200, d)

    # -- the watch stream ------------------------------------------------------------------

    def chunk(self, data):
        try:
            for i in range(0, len(data), 1 << 20):
                part = data[i:i + (1 << 20)]
                self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
            self.wfile.flush()
        except OSError as e:
            raise StreamClosed(str(e)) from None

    def send_item(self, item, gt_revision):
        """Sends one item; False when the stream is to end."""
        if "line" in item:
            self.chunk(json.dumps(item["line"], separators=(",", ":")).encode() + b"\n")
        elif "raw" in item:
            self.chunk(item["raw"].encode("utf-8", "surrogateescape") + b"\n")
        elif "raw_b64" in item:
            self.chunk(base64.b64decode(item["raw_b64"]) + b"\n")
        elif "big" in item:
            b = item["big"]
            text = b.get("head", "") + b.get("sep", "").join([b.get("fill", "x")] *
                                                              int(b.get("count", 0)))
            self.chunk((text + b.get("tail", "") + "\n").encode())
        elif "heartbeat" in item:
            self.chunk(b"\n" * int(item["heartbeat"] or 1))
        elif "sleep" in item:
            time.sleep(float(item["sleep"]))
        elif "listing" in item:
            lines = self.state.listing(gt_revision)
            for i in range(0, len(lines), 100):
                self.chunk(b"".join(json.dumps(x, separators=(",", ":")).encode() + b"\n"
                                    for x in lines[i:i + 100]))
        elif "tail" in item:
            self.chunk(json.dumps(TAIL_LINE).encode() + b"\n")
        elif "error" in item:
            self.chunk(json.dumps(error_line(item["error"], item.get("message", "error")))
                       .encode() + b"\n")
        elif "close" in item:
            self.chunk(b"")  # the last chunk
            return False
        elif "abort" in item:
            self.connection.shutdown(socket.SHUT_RDWR)
            return False
        return True

    def watch(self, req):
        st = self.state
        gt = 0
        if isinstance(req, list) and req and isinstance(req[0], dict):
            gt = req[0].get("gt_revision") if isinstance(req[0].get("gt_revision"), int) else 0
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.close_connection = True
        with st.cond:
            n = st.streams
            st.streams += 1
            st.open_streams += 1
            cursor = len(st.pushed)
        st.record({"time": time.time(), "event": "stream-open", "stream": n, "gt_revision": gt})
        why = "closed"
        try:
            for item in st.script_for(n):
                if not self.send_item(item, gt):
                    return
            beat = st.args.heartbeat
            next_beat = time.monotonic() + beat
            while True:
                with st.cond:
                    st.cond.wait_for(lambda: len(st.pushed) > cursor,
                                     timeout=max(0.0, next_beat - time.monotonic()))
                    items = st.pushed[cursor:]
                    cursor = len(st.pushed)
                for item in items:
                    if not self.send_item(item, gt):
                        return
                if time.monotonic() >= next_beat:
                    self.chunk(b"\n")
                    next_beat = time.monotonic() + beat
        except StreamClosed as e:
            why = f"peer gone: {e}"
        finally:
            with st.cond:
                st.open_streams -= 1
            st.record({"time": time.time(), "event": "stream-end", "stream": n, "why": why})

    # -- control -----------------------------------------------------------------------------

    def control(self, method, path, raw):
        st = self.state
        try:
            body = json.loads(raw) if raw else None
        except ValueError as e:
            return self.error(400, f"not JSON: {e}")
        if method == "POST" and path == "/_fake/push":
            items = body if isinstance(body, list) else [body]
            return self.reply(200, {"queued": st.push(items)})
        if method == "POST" and path == "/_fake/script":
            with st.cond:
                st.script = body
            return self.reply(200, {})
        if method == "POST" and path == "/_fake/override":
            with st.cond:
                st.overrides.append(body)
            return self.reply(200, {})
        if method == "GET" and path == "/_fake/state":
            with st.cond:
                return self.reply(200, {
                    "vpc": st.vpc, "self": st.devices.get(st.self_id), "revision": st.revision,
                    "devices": len(st.devices), "streams": st.streams,
                    "open_streams": st.open_streams})
        if method == "GET" and path == "/_fake/devices":
            with st.cond:
                return self.reply(200, list(st.devices.values()))
        return self.error(404, "no such control")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True, help="ADDR:PORT ([ADDR]:PORT for IPv6)")
    ap.add_argument("--log", required=True, help="request log, one JSON object per line")
    ap.add_argument("--reg-key", help="the only registration key accepted (default: any RK:)")
    ap.add_argument("--vpc-id", default=str(uuid.uuid4()))
    ap.add_argument("--ipv4-cidr", default=DEFAULT_IPV4_CIDR)
    ap.add_argument("--ipv6-cidr", default=DEFAULT_IPV6_CIDR)
    ap.add_argument("--devices", type=int, default=0, help="valid devices to generate")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--script", help="JSON file: the items each watch stream starts with")
    ap.add_argument("--heartbeat", type=float, default=15.0, help="seconds between heartbeats")
    args = ap.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    host = host.strip("[]")
    Handler.state = State(args)
    if ":" in host:
        Server.address_family = socket.AF_INET6
    server = Server((host, int(port)), Handler)
    print(f"fake controller ready on {args.listen}: VPC {args.vpc_id}, "
          f"{len(Handler.state.devices)} device(s)", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


# --- the test's side ----------------------------------------------------------------------------


class FakeController:
    """fake_controller.py in lab namespace `node`, listening on addr:port, plain HTTP.

        fake = FakeController(lab, node, "10.0.0.1", heartbeat=1).start()
        agent = Agent(lab, other, fake.url, fake.reg_key)
        fake.push({"upsert": make_device(fake.vpc_id, "100.64.0.3", "fd00:100::3")})
        fake.push({"raw": "{not json"}, {"error": 410, "message": "too old"}, {"close": True})
        fake.watch_requests()[-1]["json"][0]["gt_revision"]
    """

    _count = 0

    def __init__(self, lab, node, addr, port=8080, devices=0, seed=None, script=None,
                 heartbeat=15.0, reg_key=None, vpc_id=None, ipv4_cidr=DEFAULT_IPV4_CIDR,
                 ipv6_cidr=DEFAULT_IPV6_CIDR):
        FakeController._count += 1
        self.lab, self.node, self.addr, self.port = lab, node, addr, port
        self.name = f"fakectl{FakeController._count}"
        self.url = f"http://{addr}:{port}" if ":" not in addr else f"http://[{addr}]:{port}"
        self.reg_key = reg_key or "RK:" + secrets.token_urlsafe(16)
        self.vpc_id = vpc_id or str(uuid.uuid4())
        self.ipv4_cidr, self.ipv6_cidr = ipv4_cidr, ipv6_cidr
        self.log_path = os.path.join(lab.tmp, f"{self.name}-requests.jsonl")
        self.argv = ["/usr/bin/python3", os.path.abspath(__file__), "--listen",
                     f"{addr}:{port}" if ":" not in addr else f"[{addr}]:{port}",
                     "--log", self.log_path, "--reg-key", self.reg_key, "--vpc-id", self.vpc_id,
                     "--ipv4-cidr", ipv4_cidr, "--ipv6-cidr", ipv6_cidr,
                     "--devices", str(devices), "--heartbeat", str(heartbeat)]
        if seed is not None:
            self.argv += ["--seed", str(seed)]
        if script is not None:
            path = os.path.join(lab.tmp, f"{self.name}-script.json")
            with open(path, "w") as f:
                json.dump(script, f)
            self.argv += ["--script", path]
        self.proc = None

    def start(self, timeout=30):
        from lab import wait_until

        self.proc = self.lab.popen(self.node, *self.argv, name=self.name)
        wait_until(lambda: self.proc.check() and "ready" in self.proc.log(), timeout=timeout,
                   interval=0.05, what=f"{self.name} ready")
        return self

    def stop(self):
        return self.proc.stop() if self.proc else None

    def control(self, method, path, body=None, timeout=60):
        argv = ["curl", "-sS", "--fail-with-body", "-X", method, "--max-time", str(timeout)]
        if body is not None:
            argv += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        out = self.lab.cmd(self.node, *argv, f"{self.url}{path}",
                           input=json.dumps(body) if body is not None else None,
                           timeout=timeout + 5)
        return json.loads(out) if out.strip() else None

    def push(self, *items):
        """Sends items on every open watch stream (see the module's doc for items)."""
        return self.control("POST", "/_fake/push", list(items))

    def upsert(self, device):
        self.push({"upsert": device})

    def delete(self, device_id):
        self.push({"delete": device_id})

    def set_script(self, script):
        self.control("POST", "/_fake/script", script)

    def override(self, method, path, status, body=None, raw=None, times=None):
        o = {"method": method, "path": path, "status": status, "times": times}
        o.update({"body": body} if raw is None else {"raw": raw})
        self.control("POST", "/_fake/override", o)

    def state(self):
        return self.control("GET", "/_fake/state")

    def devices(self):
        return self.control("GET", "/_fake/devices")

    def device(self, ipv4=None, ipv6=None, **kw):
        """A valid device of this VPC (make_device).  Without a revision, upsert() gives it
        the store's next one; a device pushed as a "line" needs one."""
        kw.setdefault("revision", None)
        return make_device(kw.pop("vpc_id", self.vpc_id), ipv4, ipv6, ipv4_cidr=self.ipv4_cidr,
                           ipv6_cidr=self.ipv6_cidr, **kw)

    def log(self):
        """Every entry so far: requests ({method, path, query, authorization, body, json})
        and stream events ({event: stream-open|stream-end, stream, ...})."""
        entries = []
        try:
            with open(self.log_path) as f:
                for line in f:
                    if line.endswith("\n"):  # a line being written is skipped
                        entries.append(json.loads(line))
        except FileNotFoundError:
            pass
        return entries

    def requests(self, method=None, path=None):
        """Logged requests, optionally only those of method whose path starts with path."""
        return [e for e in self.log() if "method" in e and (method is None or
                e["method"] == method) and (path is None or e["path"].startswith(path))]

    def watch_requests(self):
        return [r for r in self.requests("POST", "/api/vpcs/") if r["path"].endswith("/events")]


if __name__ == "__main__":
    sys.exit(main())
