# SPDX-License-Identifier: GPL-2.0-or-later
"""What nexsrv does with input it must refuse, on every route, and when its database goes
away under load.

Every route that takes a JSON body gets malformed JSON, a body of the wrong type, each of
its fields with values of the wrong type, ids that exist nowhere, malformed addresses and
keys, and bodies over the size limit (sent whole, chunked, and announced with
Expect: 100-continue); every route with ids in its path gets malformed and unknown ids;
every authenticated route gets bearer tokens that must not pass (expired, not yet valid,
forged, for another audience or issuer, unsigned, garbage, registration keys and device
tokens that are malformed, deleted, used up or expired); every list gets sort, filter and
range parameters it must refuse, and filters of every type on every field; every path
gets the methods it does not serve.  Each answer must be a 4xx JSON error naming the field
or parameter where there is one (401 for tokens, 405 for methods), and the database must
not change at all.  The routes come from nexsrv's route tables: a route with a body and
no cases here fails test_every_body_route_has_cases.

Then the database is restarted while four clients keep reading and writing and a watch
stream is open: meanwhile /private/ready says 503 and the API answers 503 JSON promptly
(never 500, never a hang); afterwards it recovers by itself, every write it acknowledged
is in the database, and watch streams deliver changes again.  The daemon must survive
all of it without a sanitizer report.
"""

import base64
import hashlib
import json
import os
import secrets
import socket
import threading
import time
import types
import urllib.parse
import uuid

import pytest

import nexsrv_env
from api import Api
from fixtures import PG_BIN, PgCluster
from lab import Lab, wait_until

TAG = secrets.token_hex(3)
req = nexsrv_env.request
BODY_LIMIT = 1024 * 1024  # NEXSRV_HTTP_DEFAULT_BODY_LIMIT
UUID_PARAMS = ("id", "uid", "organization")
PUBLIC_ROUTES = {("GET", "/private/live"), ("GET", "/private/ready"), ("GET", "/metrics"),
                 ("POST", "/device/login/start")}


class Env(nexsrv_env.Env):
    def person(self, name):
        api = Api(self.base, self.idp.mint_token(f"{name}-{secrets.token_hex(2)}-{TAG}"))
        status, me, _ = api.get("/api/users/me")
        assert status == 200, me
        return api, me["id"]


@pytest.fixture(scope="module")
def env(postgres_cluster):
    with nexsrv_env.nexsrv_env(postgres_cluster, "test_api_robustness",
                               extra=nexsrv_env.NO_RATE_LIMIT, env_class=Env) as e:
        yield e


def pubkey():
    return base64.b64encode(os.urandom(32)).decode()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ok(result, status=201):
    code, body, _ = result
    assert code == status, body
    return body


@pytest.fixture(scope="module")
def world(env):
    """alice with an organization, a VPC, a group, a key and a device; bob to invite."""
    alice, uid = env.person("alice")
    _, bob = env.person("bob")
    org = ok(alice.post("/api/organizations", {"name": f"robust-{TAG}"}))["id"]
    vpc = ok(alice.post("/api/vpcs", {"organization_id": org, "private_cidr": True,
                                      "ipv4_cidr": "10.60.0.0/24",
                                      "ipv6_cidr": "fd60::/64"}))["id"]
    sg = ok(alice.post("/api/security-groups", {"vpc_id": vpc}))["id"]
    rk = ok(alice.post("/api/reg-keys", {"vpc_id": vpc}))
    dev = ok(Api(env.base, rk["bearer_token"]).post("/api/devices", {
        "public_key": pubkey(), "hostname": "victim", "os": "linux"}))
    ok(alice.put(f"/api/devices/{dev['id']}/metadata/k", {"v": 1}), 200)
    inv = ok(alice.post("/api/invitations", {"organization_id": org, "user_id": bob}))["id"]
    return types.SimpleNamespace(alice=alice, uid=uid, bob=bob, org=org, vpc=vpc, sg=sg,
                                 rk=rk["id"], rk_token=rk["bearer_token"], dev=dev["id"],
                                 dt=dev["bearer_token"], inv=inv)


# --- the routes with a body, and what their fields are ---------------------------------------

# Per route: its path parameters (from the world), a valid body, and its fields' types.
# Types: str (text), uuid, bool, array, object, time (RFC 3339 text), any (metadata).
BODY_ROUTES = {
    ("POST", "/api/organizations"): (
        {}, lambda w: {"name": f"org-{secrets.token_hex(4)}", "description": "d"},
        {"name": "str", "description": "str"}),
    ("POST", "/api/invitations"): (
        {}, lambda w: {"organization_id": w.org, "user_id": w.bob, "roles": ["member"]},
        {"organization_id": "uuid", "user_id": "uuid", "email": "str", "roles": "array"}),
    ("POST", "/api/vpcs"): (
        {}, lambda w: {"organization_id": w.org, "description": "d", "private_cidr": True,
                       "ipv4_cidr": "10.61.0.0/24", "ipv6_cidr": "fd61::/64"},
        {"organization_id": "uuid", "description": "str", "private_cidr": "bool",
         "ipv4_cidr": "str", "ipv6_cidr": "str"}),
    ("PATCH", "/api/vpcs/{id}"): (
        {"id": "vpc"}, lambda w: {"description": "d"}, {"description": "str"}),
    ("POST", "/api/security-groups"): (
        {}, lambda w: {"vpc_id": w.vpc, "description": "d", "inbound_rules": [],
                       "outbound_rules": []},
        {"vpc_id": "uuid", "description": "str", "inbound_rules": "array",
         "outbound_rules": "array"}),
    ("PATCH", "/api/security-groups/{id}"): (
        {"id": "sg"}, lambda w: {"description": "d"},
        {"description": "str", "inbound_rules": "array", "outbound_rules": "array"}),
    ("POST", "/api/reg-keys"): (
        {}, lambda w: {"vpc_id": w.vpc, "description": "d", "single_use": True,
                       "expires_at": "2099-01-01T00:00:00Z", "security_group_id": w.sg,
                       "settings": {"relay": True}},
        {"vpc_id": "uuid", "description": "str", "single_use": "bool", "expires_at": "time",
         "security_group_id": "uuid", "settings": "object"}),
    ("PATCH", "/api/reg-keys/{id}"): (
        {"id": "rk"}, lambda w: {"description": "d"},
        {"description": "str", "expires_at": "time", "security_group_id": "uuid",
         "settings": "object"}),
    ("POST", "/api/devices"): (
        {}, lambda w: {"vpc_id": w.vpc, "public_key": pubkey(), "hostname": "h", "os": "linux",
                       "endpoints": [{"source": "local", "address": "192.0.2.1:51820"}],
                       "advertise_cidrs": ["172.20.0.0/24"], "relay": False,
                       "symmetric_nat": False, "security_group_id": w.sg},
        {"vpc_id": "uuid", "public_key": "str", "hostname": "str", "os": "str",
         "endpoints": "array", "advertise_cidrs": "array", "ipv4_tunnel_ips": "array",
         "relay": "bool", "symmetric_nat": "bool", "security_group_id": "uuid"}),
    ("PATCH", "/api/devices/{id}"): (
        {"id": "dev"}, lambda w: {"hostname": "h2"},
        {"hostname": "str", "endpoints": "array", "advertise_cidrs": "array", "relay": "bool",
         "symmetric_nat": "bool", "security_group_id": "uuid", "vpc_id": "uuid"}),
    ("PUT", "/api/devices/{id}/metadata/{key}"): (
        {"id": "dev", "key": "k"}, lambda w: {"v": 2}, {}),
    # Watch requests are arrays of objects: the fields are those of the first one.
    ("POST", "/api/vpcs/{id}/events"): (
        {"id": "vpc"}, lambda w: [{"kind": "device", "gt_revision": 0, "at_tail": False,
                                   "options": {}}],
        {"kind": "str", "gt_revision": "int", "at_tail": "bool", "options": "object"}),
    ("POST", "/api/events"): (
        {}, lambda w: [{"kind": "device", "gt_revision": 0, "options": {"vpc-id": w.vpc}}],
        {"kind": "str", "gt_revision": "int", "at_tail": "bool", "options": "object"}),
}
# Where a field of an array body is (what errors name).
ARRAY_FIELD = "request[0]."


def with_field(doc, field, value):
    """doc with field set (in its first element for an array body)."""
    if isinstance(doc, list):
        return [dict(doc[0], **{field: value})] + doc[1:]
    return dict(doc, **{field: value})


def field_name(doc, field):
    return ARRAY_FIELD + field if isinstance(doc, list) else field
REQUIRED = {("POST", "/api/organizations"): ["name"],
            ("POST", "/api/invitations"): ["organization_id"],
            ("POST", "/api/vpcs"): ["organization_id"],
            ("POST", "/api/security-groups"): ["vpc_id"],
            ("POST", "/api/reg-keys"): ["vpc_id"],
            ("POST", "/api/devices"): ["public_key"],
            ("POST", "/api/vpcs/{id}/events"): ["kind"],
            ("POST", "/api/events"): ["kind", "options"]}
# Routes that take no body at all.
NO_BODY_ROUTES = {("POST", "/api/invitations/{id}/accept"), ("POST", "/device/login/start")}

WRONG = {
    "str": [5, 1.5, True, [], {}, ["x"], {"a": "b"}, "a\u0000b"],
    "uuid": [5, True, [], {}, "not-a-uuid", "1234", str(uuid.uuid4())[:-1],
             str(uuid.uuid4()) + "0", "g" + str(uuid.uuid4())[1:], "' OR 1=1 --"],
    "bool": ["yes", "true", 1, 0, [], {}],
    "array": ["x", 5, True, {}, {"0": "x"}],
    "object": ["x", 5, True, []],
    "int": ["5", 1.5, -1, True, [], {}, "x"],
    "time": [5, True, [], {}, "tomorrow", "2024-13-45T00:00:00Z", "2023-02-30T10:00:00Z",
             "2024-01-01T25:61:00Z", "99999-01-01T00:00:00Z", "2024-01-01"],
}

MALFORMED = [b"", b"{", b"}", b'{"a":', b"nul", b"{'a': 1}", b"[1,]", b'{"a": 1,}',
             b'{"a": 1} {"b": 2}', b"\xff\xfe", b'{"a": "\xff"}', b"NaN", b'{"a": 01}',
             b'{"a": "\\ud800"}', b"[" * 20000 + b"]" * 20000,
             b'{"a":' * 20000 + b"1" + b"}" * 20000]
WRONG_TOP = [b"[]", b"[{}]", b'"string"', b"5", b"true", b"null"]

# Malformed addresses, keys and such: (route, body given the world, field).
BAD_VALUES = [
    *[(("POST", "/api/vpcs"), lambda w, c=c: {
        "organization_id": w.org, "private_cidr": True, "ipv4_cidr": c,
        "ipv6_cidr": "fd62::/64"}, "ipv4_cidr")
      for c in ("10.0.0.0/33", "10.0.0.1/24", "300.0.0.0/8", "fd00::/64", "", "10.0.0.0",
                "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8/8", " 10.0.0.0/8", "10.0.0.0/31")],
    *[(("POST", "/api/vpcs"), lambda w, c=c: {
        "organization_id": w.org, "private_cidr": True, "ipv4_cidr": "10.62.0.0/24",
        "ipv6_cidr": c}, "ipv6_cidr")
      for c in ("fd00::/129", "10.0.0.0/8", "fd00::1/64", "fd00:::/64", "fd00::/127", "zz::/64")],
    *[(("POST", "/api/devices"), lambda w, k=k: {"vpc_id": w.vpc, "public_key": k},
       "public_key")
      for k in ("", "abc", "A" * 43, "A" * 45, "!" * 43 + "=",
                "-" + b64url(os.urandom(32))[1:] + "=", "_" + b64url(os.urandom(32))[1:] + "=",
                base64.b64encode(os.urandom(31)).decode(),
                base64.b64encode(os.urandom(33)).decode(), "A" * 4096)],
    *[(("POST", "/api/devices"), lambda w, a=a: {"vpc_id": w.vpc, "public_key": pubkey(),
                                                  "advertise_cidrs": [a]},
       "advertise_cidrs[0]")
      for a in ("10.0.0.0/33", "garbage", "::/0", "0.0.0.0/0", "10.0.0.1/8", "", "fd00::/200")],
    *[(("POST", "/api/devices"), lambda w, e=e: {"vpc_id": w.vpc, "public_key": pubkey(),
                                                  "endpoints": [e]}, f)
      for e, f in (({"source": "local", "address": "1.2.3.4:70000"}, "endpoints[0].address"),
                   ({"source": "local", "address": "[::1]"}, "endpoints[0].address"),
                   ({"source": "local", "address": "host:80"}, "endpoints[0].address"),
                   ({"source": "local", "address": "1.2.3.4:-1"}, "endpoints[0].address"),
                   ({"source": "local", "address": 5}, "endpoints[0].address"),
                   ({"source": "local"}, "endpoints[0].address"),
                   ({"source": 5, "address": "1.2.3.4:5"}, "endpoints[0].source"),
                   ({"source": "stun:", "address": "1.2.3.4:5"}, "endpoints[0].source"),
                   ("1.2.3.4:5", "endpoints[0]"))],
    *[(("POST", "/api/devices"), lambda w, t=t: {"vpc_id": w.vpc, "public_key": pubkey(),
                                                  "ipv4_tunnel_ips": [t]}, f)
      for t, f in (({"address": "300.1.1.1"}, "ipv4_tunnel_ips[0].address"),
                   ({"address": "fd00::1"}, "ipv4_tunnel_ips[0].address"),
                   ({"address": 5}, "ipv4_tunnel_ips[0].address"),
                   ({"address": "10.60.0.0"}, "ipv4_tunnel_ips"),
                   ({"address": "10.60.0.255"}, "ipv4_tunnel_ips"),
                   ({"address": "10.99.0.1"}, "ipv4_tunnel_ips"),
                   ("10.60.0.9", "ipv4_tunnel_ips[0]"))],
    *[(("PATCH", "/api/security-groups/{id}"), lambda w, r=r: {"inbound_rules": [r]}, f)
      for r, f in (({"ip_protocol": "tcp", "ip_ranges": ["10.0.0.0/33"]},
                    "inbound_rules[0].ip_ranges[0]"),
                   ({"ip_protocol": "tcp", "ip_ranges": ["1.2.3.4-1.2.3"]},
                    "inbound_rules[0].ip_ranges[0]"),
                   ({"ip_protocol": "tcp", "ip_ranges": ["1.2.3.4-fd00::1"]},
                    "inbound_rules[0].ip_ranges[0]"),
                   ({"ip_protocol": "tcp", "ip_ranges": [5]}, "inbound_rules[0].ip_ranges[0]"),
                   ({"ip_protocol": 5}, "inbound_rules[0].ip_protocol"),
                   ({"ip_protocol": "tcp", "from_port": "22"}, "inbound_rules[0].from_port"),
                   ({"ip_protocol": "tcp", "from_port": 1.5}, "inbound_rules[0].from_port"),
                   ({"ip_protocol": "tcp", "to_port": 2 ** 40}, "inbound_rules[0].to_port"),
                   ({"ip_protocol": "tcp", "to_port": -2 ** 40}, "inbound_rules[0].to_port"),
                   ("tcp", "inbound_rules[0]"))],
    *[(("POST", "/api/invitations"), lambda w, e=e: {"organization_id": w.org, "email": e},
       "email") for e in ("a@", "@b", "no-at", "", " ")],
    (("POST", "/api/invitations"), lambda w: {"organization_id": w.org, "user_id": w.bob,
                                              "roles": ["admin"]}, "roles"),
    (("POST", "/api/invitations"), lambda w: {"organization_id": w.org, "user_id": w.bob,
                                              "roles": [5]}, "roles"),
    *[(("POST", "/api/vpcs/{id}/events"), lambda w, b=b: b, f)
      for b, f in (([{"kind": "device"}, {"kind": "device"}], "request[1].kind"),
                   ([{"kind": "devices"}], "request[0].kind"),
                   ([{"kind": "device", "gt_revision": 2 ** 63 - 1}, {"kind": "vpc"},
                     {"kind": "security-group"}, {"kind": "device-metadata"},
                     {"kind": "device"}], "request"),
                   ([{"kind": "device-metadata", "options": {"prefix": ["p"] * 1000}}],
                    "request[0].options.prefix"),
                   ([{"kind": "device-metadata", "options": {"prefix": [""]}}],
                    "request[0].options.prefix[0]"),
                   ([{"kind": "device-metadata", "options": {"prefix": 5}}],
                    "request[0].options.prefix"),
                   ([{"kind": "device", "options": {"vpc-id": "nope"}}],
                    "request[0].options.vpc-id"),
                   ([{"kind": "device", "options": {"vpc-id": str(uuid.uuid4())}}],
                    "options.vpc-id"),
                   ([], "request"), ([5], "request[0]"))],
    (("POST", "/api/events"), lambda w: [{"kind": "device"}], "request[0].options.vpc-id"),
    (("POST", "/api/events"), lambda w: [{"kind": "device", "options": {"vpc-id": w.vpc}},
                                         {"kind": "vpc", "options": {"vpc-id": w.org}}],
     "request[1].options.vpc-id"),
    (("POST", "/api/organizations"), lambda w: {"name": "n" * 300}, "name"),
    (("POST", "/api/organizations"), lambda w: {"name": ""}, "name"),
    (("POST", "/api/organizations"), lambda w: {}, "name"),
    (("POST", "/api/vpcs"), lambda w: {"description": "no org"}, "organization_id"),
    (("POST", "/api/security-groups"), lambda w: {"description": "no vpc"}, "vpc_id"),
    (("POST", "/api/reg-keys"), lambda w: {"description": "no vpc"}, "vpc_id"),
    (("POST", "/api/devices"), lambda w: {"vpc_id": w.vpc}, "public_key"),
    (("PATCH", "/api/devices/{id}"), lambda w: {"hostname": "x" * 300}, "hostname"),
    (("PATCH", "/api/devices/{id}"), lambda w: {"hostname": "a\u0001b"}, "hostname"),
    (("PATCH", "/api/vpcs/{id}"), lambda w: {"description": "d" * 5000}, "description"),
]

# Ids that exist nowhere, in bodies: (route, body given the world, 404 resource).
UNKNOWN_IDS = [
    (("POST", "/api/invitations"), lambda w: {"organization_id": str(uuid.uuid4()),
                                              "user_id": w.bob}, "organization"),
    (("POST", "/api/invitations"), lambda w: {"organization_id": w.org,
                                              "user_id": str(uuid.uuid4())}, "user"),
    (("POST", "/api/vpcs"), lambda w: {"organization_id": str(uuid.uuid4())}, "organization"),
    (("POST", "/api/security-groups"), lambda w: {"vpc_id": str(uuid.uuid4())}, "vpc"),
    (("POST", "/api/reg-keys"), lambda w: {"vpc_id": str(uuid.uuid4())}, "vpc"),
    (("POST", "/api/reg-keys"), lambda w: {"vpc_id": w.vpc,
                                           "security_group_id": str(uuid.uuid4())},
     "security group"),
    (("PATCH", "/api/reg-keys/{id}"), lambda w: {"security_group_id": str(uuid.uuid4())},
     "security group"),
    (("POST", "/api/devices"), lambda w: {"vpc_id": str(uuid.uuid4()), "public_key": pubkey()},
     "vpc"),
    (("POST", "/api/devices"), lambda w: {"vpc_id": w.vpc, "public_key": pubkey(),
                                          "security_group_id": str(uuid.uuid4())},
     "security group"),
    (("PATCH", "/api/devices/{id}"), lambda w: {"security_group_id": str(uuid.uuid4())},
     "security group"),
]


def path_of(pattern, params):
    for k, v in params.items():
        pattern = pattern.replace("{" + k + "}", urllib.parse.quote(v, safe=""))
    return pattern


def world_params(route, w):
    return {k: getattr(w, v) if v in ("vpc", "sg", "rk", "dev") else v
            for k, v in BODY_ROUTES[route][0].items()}


def is_error(body, field=None):
    """Whether body is a JSON error naming field (when given): "" when it is, else why."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), str) or \
            not body["error"]:
        return "not a JSON error"
    if field is not None:
        got = body.get("field")
        if got != field:
            return f"field {got!r}, expected {field!r}"
    return ""


class Changes:
    """Collects problems; the database must be the same at the end as at the start."""

    def __init__(self, env):
        self.env = env
        self.problems = []
        self.before = nexsrv_env.db_snapshot(env.db)

    def add(self, what, status, body, why):
        if why:
            self.problems.append(f"{what} -> {status} {str(body)[:300]}: {why}")

    def check(self):
        diff = nexsrv_env.snapshot_diff(self.before, nexsrv_env.db_snapshot(self.env.db))
        if diff:
            self.problems.append("the database changed:\n" + diff)
        nexsrv_env.assert_healthy(self.env.daemon)
        assert not self.problems, "\n".join(self.problems)


def raw_http(base, request, read_timeout=15.0):
    """Sends request bytes on a new connection; (status, parsed body) of the answer,
    (None, why) if the connection broke before one came."""
    u = urllib.parse.urlsplit(base)
    with socket.create_connection((u.hostname, u.port), timeout=read_timeout) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)
        try:
            s.sendall(request)
        except OSError:
            pass  # the answer may be there anyway
        data = b""
        try:
            while b"\r\n\r\n" not in data or not complete(data):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            if not data:
                return None, "timeout"
        except OSError as e:
            if not data:
                return None, str(e)
    head, _, body = data.partition(b"\r\n\r\n")
    if not head:
        return None, "no answer"
    status = int(head.split(b" ", 2)[1])
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, body.decode(errors="replace")


def complete(data):
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


# --- bodies ----------------------------------------------------------------------------------


def test_every_body_route_has_cases():
    routes = nexsrv_env.c_routes()
    with_body = {r for r in routes if r[0] in ("POST", "PUT", "PATCH")}
    missing = with_body - set(BODY_ROUTES) - NO_BODY_ROUTES
    assert not missing, f"routes with a body but no robustness cases: {sorted(missing)}"


def test_malformed_json_and_wrong_types(env, world):
    c = Changes(env)
    for route, (_, valid, fields) in BODY_ROUTES.items():
        if route not in nexsrv_env.c_routes():
            continue
        method, pattern = route
        path = path_of(pattern, world_params(route, world))
        cases = [(raw, "malformed") for raw in MALFORMED]
        if fields:  # a metadata value may be any JSON
            cases += [(raw, "top") for raw in WRONG_TOP]
        for raw, kind in cases:
            status, body, _ = req(world.alice, method, path, body=raw)
            what = f"{method} {path} {raw[:40]!r}"
            c.add(what, status, body, "" if status == 400 else f"status {status}")
            c.add(what, status, body, is_error(body))
            if kind == "malformed" and isinstance(body, dict) and "field" in body:
                c.add(what, status, body, "names a field")
        for field, kind in fields.items():
            name = field_name(valid(world), field)
            for value in WRONG[kind]:
                doc = with_field(valid(world), field, value)
                status, body, _ = req(world.alice, method, path, body=doc)
                what = f"{method} {path} {field}={value!r}"
                c.add(what, status, body,
                      "" if status in (400, 422) else f"status {status}")
                got = body.get("field", "") if isinstance(body, dict) else ""
                c.add(what, status, body, is_error(body))
                if not (got == name or got.startswith((name + "[", name + "."))):
                    c.add(what, status, body, f"field {got!r}, expected {name!r}")
            if field in REQUIRED.get(route, ()):  # given as null, it is missing
                doc = with_field(valid(world), field, None)
                status, body, _ = req(world.alice, method, path, body=doc)
                got = body.get("field", "") if isinstance(body, dict) else ""
                c.add(f"{method} {path} {field}=null", status, body,
                      is_error(body) or
                      ("" if status == 400 else f"status {status}") or
                      ("" if got == name or got.startswith(name + ".") else f"field {got!r}"))
    c.check()


def test_malformed_values(env, world):
    c = Changes(env)
    for route, make, field in BAD_VALUES:
        method, pattern = route
        path = path_of(pattern, world_params(route, world))
        doc = make(world)
        status, body, _ = req(world.alice, method, path, body=doc)
        what = f"{method} {path} {json.dumps(doc)[:120]}"
        c.add(what, status, body, "" if status in (400, 422) else f"status {status}")
        c.add(what, status, body, is_error(body, field))
        if isinstance(body, dict) and not body.get("reason") and body.get("error") == \
                "invalid data in field":
            c.add(what, status, body, "no reason")
    c.check()


def test_malformed_watch_queries(env, world):
    """public_key of a watch must be a WireGuard key."""
    c = Changes(env)
    body = [{"kind": "device"}]
    for key in ("x", "", "A" * 43, "A" * 45, pubkey()[:-2], "-" + pubkey()[1:], "%00",
                "a" * 5000):
        for path, doc in ((f"/api/vpcs/{world.vpc}/events", body),
                          ("/api/events", [{"kind": "device",
                                            "options": {"vpc-id": world.vpc}}])):
            status, out, _ = req(world.alice, "POST", path, body=doc, public_key=key)
            what = f"POST {path}?public_key={key[:20]}"
            c.add(what, status, out, "" if status == 400 else f"status {status}")
            c.add(what, status, out, is_error(out, "public_key"))
    c.check()


def test_unknown_ids(env, world):
    c = Changes(env)
    for route, make, resource in UNKNOWN_IDS:
        method, pattern = route
        path = path_of(pattern, world_params(route, world))
        status, body, _ = req(world.alice, method, path, body=make(world))
        c.add(f"{method} {path}", status, body,
              "" if (status, (body or {}).get("resource")) == (404, resource)
              else f"expected 404 {resource}")
    # Watches of a VPC that exists nowhere, or marking a device online that does not.
    for path, doc, query, resource in (
            ("/api/events", [{"kind": "device", "options": {"vpc-id": str(uuid.uuid4())}}],
             {}, "vpc"),
            (f"/api/vpcs/{world.vpc}/events", [{"kind": "device"}], {"public_key": pubkey()},
             "device")):
        status, body, _ = req(world.alice, "POST", path, body=doc, **query)
        c.add(f"POST {path} {query}", status, body,
              "" if (status, (body or {}).get("resource")) == (404, resource)
              else f"expected 404 {resource}")
    # Every route with ids in its path, with ids that exist nowhere.
    for method, pattern in sorted(nexsrv_env.c_routes()):
        names = [n for n in UUID_PARAMS if "{" + n + "}" in pattern]
        if not names:
            continue
        params = {n: str(uuid.uuid4()) for n in names}
        params.update(key="k", name="devices")
        body = None
        if (method, pattern) in BODY_ROUTES:
            body = BODY_ROUTES[(method, pattern)][1](world)
        path = path_of(pattern, params)
        status, out, _ = req(world.alice, method, path, body=body)
        c.add(f"{method} {path}", status, out,
              "" if status == 404 and isinstance(out, dict) and out.get("resource")
              else "expected 404 with the resource")
    c.check()


def test_malformed_ids_in_paths(env, world):
    c = Changes(env)
    good = {"id": None, "uid": world.uid, "organization": world.org}
    real = {"/api/vpcs": world.vpc, "/api/devices": world.dev, "/api/reg-keys": world.rk,
            "/api/security-groups": world.sg, "/api/organizations": world.org,
            "/api/invitations": world.inv, "/api/users": world.uid}
    bad_values = ["not-a-uuid", "1234", str(uuid.uuid4())[:-1], str(uuid.uuid4()) + "0",
                  "g" + str(uuid.uuid4())[1:], "{" + str(uuid.uuid4()) + "}",
                  str(uuid.uuid4()).replace("-", ""), " " + str(uuid.uuid4()),
                  "' OR 1=1 --", "%", "..", "a" * 5000, "\u00e9t\u00e9", "-1", "0", "null"]
    for method, pattern in sorted(nexsrv_env.c_routes()):
        names = [n for n in UUID_PARAMS if "{" + n + "}" in pattern]
        for name in names:
            for bad in bad_values:
                params = {n: good[n] or real.get("/" .join(pattern.split("/")[:3]))
                          for n in names}
                params.update({name: bad, "key": "k"})
                body = None
                if (method, pattern) in BODY_ROUTES:
                    body = BODY_ROUTES[(method, pattern)][1](world)
                path = path_of(pattern, params)
                status, out, _ = req(world.alice, method, path, body=body)
                what = f"{method} {path[:100]}"
                c.add(what, status, out, "" if status == 400 else f"status {status}")
                c.add(what, status, out, is_error(out, name))
    # Metadata keys: 1-256 bytes of text (control characters in a path: the router refuses
    # them, for any route).
    for key in ("", "k" * 257, "a\u0001b", "a\u007fb", "a\u0000b"):
        for method in ("GET", "PUT", "DELETE"):
            path = f"/api/devices/{world.dev}/metadata/" + urllib.parse.quote(key, safe="")
            status, out, _ = req(world.alice, method, path,
                                                 body={"v": 3} if method == "PUT" else None)
            what = f"{method} metadata key {key[:20]!r}"
            c.add(what, status, out, "" if status == 400 else f"status {status}")
            c.add(what, status, out, is_error(out, "key" if key.isprintable()
                                              else None))
    c.check()


def test_oversized_bodies(env, world):
    c = Changes(env)
    u = urllib.parse.urlsplit(env.base)
    auth = f"Authorization: Bearer {world.alice.token}\r\n".encode()
    for route, (_, valid, fields) in BODY_ROUTES.items():
        if route not in nexsrv_env.c_routes():
            continue
        method, pattern = route
        path = path_of(pattern, world_params(route, world))
        big = json.dumps(with_field(valid(world), "padding",
                                    "x" * (BODY_LIMIT + BODY_LIMIT // 2)))
        status, body, _ = req(world.alice, method, path, body=big)
        what = f"{method} {path} {len(big)} bytes"
        c.add(what, status, body, "" if status == 413 else f"status {status}")
        c.add(what, status, body, is_error(body))
        # The same, chunked: the length is known only as it grows.
        head = (f"{method} {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                "Connection: close\r\n").encode() + auth + b"\r\n"
        chunks = b""
        data = big.encode()
        for i in range(0, len(data), 64 * 1024):
            piece = data[i:i + 64 * 1024]
            chunks += b"%x\r\n" % len(piece) + piece + b"\r\n"
        status, body = raw_http(env.base, head + chunks + b"0\r\n\r\n")
        c.add(what + " chunked", status, body, "" if status == 413 else f"status {status}")
        c.add(what + " chunked", status, body, is_error(body))
    # Far over the limit, announced: refused before the body is sent.
    head = (f"POST /api/organizations HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {64 * BODY_LIMIT}\r\n"
            "Expect: 100-continue\r\n").encode() + auth + b"\r\n"
    status, body = raw_http(env.base, head)
    c.add("64 MiB announced", status, body, "" if status == 413 else f"status {status}")
    c.add("64 MiB announced", status, body, is_error(body))
    # ... and sent without waiting: the answer is 413 or the connection is cut, no more.
    status, body = raw_http(env.base, head.replace(b"Expect: 100-continue\r\n", b"") +
                            b"{" + b" " * (8 * BODY_LIMIT))
    c.add("8 MiB sent", status, body, "" if status == 413 or (status is None and body !=
                                                               "timeout") else f"status {status}")
    c.check()


# --- queries ---------------------------------------------------------------------------------

# What the lists may be sorted and filtered by, all of them together: each list takes some.
LIST_FIELDS = ["id", "name", "description", "organization_id", "vpc_id", "owner_id",
               "user_id", "username", "full_name", "picture", "email", "expires_at", "hostname",
               "os", "public_key", "relay", "symmetric_nat", "security_group_id", "online",
               "revision", "single_use", "device_id", "key", "ipv4_cidr", "ipv6_cidr",
               "private_cidr", "roles", "bearer_token_hash", "token_hash", "nosuch"]
QUERY_CASES = [
    *[("sort", v) for v in ("{", '["name"]', '["nosuch","ASC"]', '["id","UP"]', "[1,2]",
                            '"id"', "[]", '["id","ASC","x"]', '["id;drop","ASC"]',
                            '["id","ASC; DROP TABLE users"]', "x" * 3000, "[" * 2000)],
    *[("filter", v) for v in ("{", "[1]", '"x"', "5", '{"nosuch": "x"}', "{" * 2000,
                              '{"id": {"$ne": null}}', '{"id": ["a", "b"]}')],
    *[("range", v) for v in ("[5,1]", "[-1,3]", "[0,", '["a","b"]',
                             "[0,99999999999999999999]", "[0]", "[1.5,2]", "{}", "[0,1,2]",
                             '"0-10"')],
]


def test_malformed_queries(env, world):
    """Every list, with sort, filter and range it must refuse, and filters on every field
    with values of every type: 200 or a 400 naming the parameter, never anything else."""
    c = Changes(env)
    lists = []
    for method, pattern in sorted(nexsrv_env.c_routes() - PUBLIC_ROUTES):
        if method != "GET":
            continue
        params = {"id": {"/api/vpcs": world.vpc, "/api/devices": world.dev,
                         "/api/organizations": world.org}.get(
                             "/".join(pattern.split("/")[:3]), world.uid),
                  "uid": world.uid, "key": "k", "name": "devices"}
        path = path_of(pattern, params)
        status, body, _ = req(world.alice, "GET", path)
        if status != 200 or not isinstance(body, list):
            continue
        lists.append(path)
        for name, value in QUERY_CASES:
            status, out, _ = req(world.alice, "GET", path, **{name: value})
            what = f"GET {path}?{name}={value[:40]}"
            c.add(what, status, out, is_error(out, name) or
                  ("" if status == 400 else f"status {status}"))
        # A query over the server's limit is refused as a whole.
        status, out, _ = req(world.alice, "GET", path, filter="{" * 9000)
        c.add(f"GET {path}?filter=(9000 bytes)", status, out, is_error(out) or
              ("" if status == 400 else f"status {status}"))
        for field in LIST_FIELDS:
            for value in ("x", 5, True, None, {}, "a\u0000b", "' OR ''='"):
                status, out, _ = req(world.alice, "GET", path, filter={field: value})
                what = f"GET {path}?filter={json.dumps({field: value})}"
                if status == 200:
                    c.add(what, status, out, "" if isinstance(out, list) else "not a list")
                else:
                    c.add(what, status, out, is_error(out, "filter") or
                          ("" if status == 400 else f"status {status}"))
            status, out, _ = req(world.alice, "GET", path, sort=[field, "DESC"])
            c.add(f"GET {path}?sort={field}", status, out,
                  "" if status == 200 else is_error(out, "sort") or
                  ("" if status == 400 else f"status {status}"))
        for name, values in (("gt_revision", ("-1", "abc", "1e3", "99999999999999999999",
                                              "", " 1", "0x10")),
                             ("prefix", ("," * 40, "a," * 20)),
                             ("key", ("x" * 5000, ""))):
            for value in values:
                status, out, _ = req(world.alice, "GET", path, **{name: value})
                if status != 200:
                    c.add(f"GET {path}?{name}={value[:20]}", status, out,
                          is_error(out, name) or
                          ("" if status == 400 else f"status {status}"))
    assert len(lists) >= 12, lists
    c.check()


def test_wrong_methods(env, world):
    """A path served for other methods: 405 naming them, with a JSON error."""
    c = Changes(env)
    routes = nexsrv_env.c_routes()
    by_path = {}
    for method, pattern in routes:
        by_path.setdefault(pattern, set()).add(method)
    for pattern, methods in sorted(by_path.items()):
        path = path_of(pattern, {"id": world.vpc if "vpcs" in pattern else str(uuid.uuid4()),
                                 "uid": world.uid, "organization": world.org, "key": "k",
                                 "name": "devices"})
        for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - methods):
            status, out, headers = req(world.alice, method, path, body={})
            allow = {m.strip() for m in (headers["Allow"] or "").split(",")}
            c.add(f"{method} {path}", status, out,
                  is_error(out) or ("" if status == 405 else f"status {status}") or
                  ("" if methods <= allow else f"Allow: {headers['Allow']}"))
    c.check()


# --- tokens ----------------------------------------------------------------------------------


def forged_tokens(env, world):
    idp = env.idp
    good = idp.mint_token(f"mallory-{TAG}")
    h, p, s = good.split(".")
    header = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
    payload = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))

    def fresh(name):
        return f"{name}-{TAG}-{secrets.token_hex(3)}"

    def jws(hdr, pl, sig):
        return ".".join([b64url(json.dumps(hdr).encode()), b64url(json.dumps(pl).encode()),
                         sig])

    flipped = s[:-2] + ("A" if s[-2] != "A" else "B") + s[-1]
    tokens = {
        "expired": idp.mint_token(fresh("expired"), expires_in=-3600),
        "expired beyond the leeway": idp.mint_token(fresh("expired2"), expires_in=-90),
        "not yet valid": idp.mint_token(fresh("nbf"), nbf_in=3600),
        "issued in the future": idp.mint_token(fresh("iat"),
                                               claims={"iat": int(time.time()) + 3600}),
        "no exp": idp.mint_token(fresh("noexp"), claims={"exp": None}),
        "empty sub": idp.mint_token(fresh("nosub"), claims={"sub": ""}),
        "wrong audience": idp.mint_token(fresh("aud"), aud="someone-else"),
        "no audience": idp.mint_token(fresh("noaud"), claims={"aud": None}),
        "wrong issuer": idp.mint_token(fresh("iss"), claims={"iss": "http://127.0.0.1:1/x"}),
        "issuer with a slash": idp.mint_token(fresh("iss2"),
                                              claims={"iss": idp.issuer + "/"}),
        "unknown kid": idp.mint_token(fresh("kid"), kid="no-such-key"),
        "forged signature": ".".join([h, p, flipped]),
        "forged payload": jws(header, dict(payload, sub=fresh("forged")), s),
        "no signature": ".".join([h, p, ""]),
        "alg none": jws(dict(header, alg="none"), dict(payload, sub=fresh("none")), ""),
        "alg None": jws(dict(header, alg="None"), dict(payload, sub=fresh("none2")), s),
        "alg HS256": jws(dict(header, alg="HS256"), dict(payload, sub=fresh("hs")),
                         b64url(hashlib.sha256(b"x").digest())),
        "signature of the wrong length": ".".join([h, p, b64url(os.urandom(64))]),
        "two parts": f"{h}.{p}",
        "four parts": f"{h}.{p}.{s}.{s}",
        "garbage": "not.a.token",
        "junk": "x",
        "binary junk": b64url(os.urandom(200)),
        "long junk": "a" * 8000,
        "padded": f"{h}=.{p}.{s}",
        "reg key, unknown": "RK:" + b64url(secrets.token_bytes(32)),
        "reg key, short": "RK:short",
        "reg key, empty": "RK:",
        "reg key, padded": "RK:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "reg key, bad characters": "RK:" + "!" * 43,
        "reg key, long": "RK:" + b64url(secrets.token_bytes(300)),
        "reg key, lower case": "rk:" + world.rk_token[3:],
        "reg key, truncated": world.rk_token[:-1],
        "reg key, extended": world.rk_token + "A",
        "device token, unknown": "DT:" + b64url(secrets.token_bytes(32)),
        "device token, short": "DT:x",
        "device token, bad characters": "DT:" + "+" * 43,
        "device token, reg key's": "DT:" + world.rk_token[3:],
        "reg key, device token's": "RK:" + world.dt[3:],
    }
    return tokens


def revoked_tokens(env, world):
    """Registration keys and device tokens that were good once."""
    a = world.alice
    deleted = ok(a.post("/api/reg-keys", {"vpc_id": world.vpc}))
    ok(a.delete(f"/api/reg-keys/{deleted['id']}"), 200)
    expired = ok(a.post("/api/reg-keys", {"vpc_id": world.vpc,
                                          "expires_at": "2001-01-01T00:00:00Z"}))
    single = ok(a.post("/api/reg-keys", {"vpc_id": world.vpc, "single_use": True}))
    ok(Api(env.base, single["bearer_token"]).post("/api/devices", {"public_key": pubkey()}))
    gone = ok(a.post("/api/devices", {"vpc_id": world.vpc, "public_key": pubkey()}))
    ok(a.delete(f"/api/devices/{gone['id']}"), 200)
    return {"reg key, deleted": deleted["bearer_token"],
            "reg key, expired": expired["bearer_token"],
            "reg key, used up": single["bearer_token"],
            "device token, device deleted": gone["bearer_token"]}


def auth_requests(world):
    """One request per authenticated route: real ids, valid bodies."""
    ids = {"/api/vpcs": world.vpc, "/api/devices": world.dev, "/api/reg-keys": world.rk,
           "/api/security-groups": world.sg, "/api/organizations": world.org,
           "/api/invitations": world.inv, "/api/users": world.uid}
    out = []
    for method, pattern in sorted(nexsrv_env.c_routes() - PUBLIC_ROUTES):
        params = {"id": ids.get("/".join(pattern.split("/")[:3]), world.uid),
                  "uid": world.uid, "organization": world.org, "key": "k", "name": "devices"}
        body = BODY_ROUTES[(method, pattern)][1](world) if (method, pattern) in BODY_ROUTES \
            else None
        out.append((method, path_of(pattern, params), body))
    return out


def test_bad_tokens_are_401_on_every_route(env, world):
    revoked = revoked_tokens(env, world)
    c = Changes(env)
    tokens = dict(forged_tokens(env, world), **revoked)
    requests = auth_requests(world)
    assert len(requests) > 40
    for what, token in tokens.items():
        api = Api(env.base, token)
        for method, path, body in requests:
            status, out, headers = req(api, method, path, body=body)
            label = f"{what}: {method} {path}"
            c.add(label, status, out, "" if status == 401 else f"status {status}")
            c.add(label, status, out, is_error(out))
            if isinstance(out, dict) and not str(out.get("error", "")).startswith(
                    "unauthorized"):
                c.add(label, status, out, "error does not say unauthorized")
            if not (headers["WWW-Authenticate"] or "").startswith("Bearer"):
                c.add(label, status, out, "no WWW-Authenticate: Bearer")
            if len(token) >= 8 and token in json.dumps(out):
                c.add(label, status, out, "repeats the token")
    # No header, an empty one, other schemes.
    for header in (None, "", "Bearer", "Bearer ", "Bearer  ",
                   "Basic " + base64.b64encode(b"alice:secret").decode(), "Token " + world.dt,
                   "Bearer " + world.dt + " extra", "Bearer " + world.dt + "," + world.dt):
        for method, path, body in requests:
            hdrs = {} if header is None else {"Authorization": header}
            status, out, _ = req(Api(env.base), method, path, body=body, headers=hdrs)
            label = f"Authorization {header!r}: {method} {path}"
            c.add(label, status, out, "" if status == 401 else f"status {status}")
            c.add(label, status, out, is_error(out))
    c.check()
    # None of the people those tokens name was created.
    assert env.count("users", f"idp_subject LIKE '%-{TAG}-%'") == 0


# --- the database goes away and comes back -----------------------------------------------


class Traffic(threading.Thread):
    """A client that keeps calling until stopped, recording every answer."""

    def __init__(self, api, calls):
        super().__init__(daemon=True)
        self.api = api
        self.calls = calls
        self.stop = threading.Event()
        self.log = []  # (t0, t1, what, status, body, acked value)
        self.n = 0

    def run(self):
        while not self.stop.is_set():
            self.n += 1
            for what, fn in self.calls:
                t0 = time.monotonic()
                try:
                    status, body, acked = fn(self.api, self.n)
                except Exception as e:  # noqa: BLE001  (a broken connection is a finding)
                    status, body, acked = None, repr(e), None
                self.log.append((t0, time.monotonic(), what, status, body, acked))
            time.sleep(0.005)

    def successes_since(self, t):
        return [e for e in self.log if e[0] >= t and e[3] is not None and 200 <= e[3] < 300]


def create_org(api, n):
    name = f"restart-{TAG}-{n}-{secrets.token_hex(2)}"
    status, body, _ = api.post("/api/organizations", {"name": name})
    return status, body, (body["id"], name) if status == 201 else None


def list_vpcs(api, n):
    status, body, _ = api.get("/api/vpcs")
    return status, body, None


def get_me(api, n):
    status, body, _ = api.get("/api/users/me")
    return status, body, None


def pg_ctl(cluster, *args):
    return cluster._as_pg(f"{PG_BIN}/pg_ctl", "-D", cluster.datadir, *args, timeout=60)


def test_database_restart_mid_traffic(env):
    """A private PostgreSQL cluster (the session's is shared) restarted under load."""
    cluster = PgCluster()
    lab = Lab(label="test_database_restart_mid_traffic")
    d = None
    threads = []
    try:
        cluster.start()
        # What the cluster was started with, kept for a start with plain pg_ctl.
        cluster.psql(f"ALTER SYSTEM SET listen_addresses = '';"
                     f"ALTER SYSTEM SET unix_socket_directories = '{cluster.sockdir}';"
                     "ALTER SYSTEM SET fsync = off;")
        db = cluster.create_database()
        d, base = nexsrv_env.start_nexsrv(lab, db.conninfo, env.idp,
                                          extra=nexsrv_env.NO_RATE_LIMIT)
        writer = Api(base, env.idp.mint_token(f"writer-{TAG}"), timeout=30)
        reader = Api(base, env.idp.mint_token(f"reader-{TAG}"), timeout=30)
        uid = ok(writer.get("/api/users/me"), 200)["id"]
        dev = ok(writer.post("/api/devices", {"vpc_id": uid, "public_key": pubkey()}))

        def put_metadata(api, n):
            key = f"k{threading.get_ident()}-{n}"
            status, body, _ = api.put(f"/api/devices/{dev['id']}/metadata/{key}", {"n": n})
            return status, body, (key, n) if status == 200 else None

        threads = [Traffic(writer, [("org", create_org), ("metadata", put_metadata)])
                   for _ in range(3)]
        threads.append(Traffic(reader, [("vpcs", list_vpcs), ("me", get_me)]))
        for t in threads:
            t.start()
        wait_until(lambda: all(len(t.successes_since(0)) >= 5 for t in threads), timeout=20,
                   what="traffic flowing")
        # A watch open across the outage, from the end of what exists.
        old_watch = nexsrv_env.Watch(writer, uid, kinds=("device-metadata",))
        old_watch.read_until('"tail"')

        pg_ctl(cluster, "-m", "fast", "-w", "-t", "30", "stop")
        down_at = time.monotonic()
        wait_until(lambda: Api(base).get("/private/ready")[0] == 503, timeout=10,
                   what="/private/ready 503 while the database is down")
        status, body, _ = Api(base).get("/private/ready")
        assert status == 503 and isinstance(body, dict), body
        time.sleep(2)
        assert d.proc.alive()
        pg_ctl(cluster, "-l", os.path.join(cluster.tmp, "postgres.log"), "-w", "-t", "30",
               "start")
        up_at = time.monotonic()
        with open(os.path.join(cluster.datadir, "postmaster.pid")) as f:
            cluster.postmaster_pid = int(f.readline())
        cluster.record.add_pid(cluster.postmaster_pid)

        wait_until(lambda: Api(base).get("/private/ready")[0] == 200, timeout=20,
                   what="ready again after the restart")
        ready_s = time.monotonic() - up_at
        wait_until(lambda: all(len(t.successes_since(time.monotonic() - 1.0)) >= 3
                               for t in threads), timeout=20, what="traffic recovered")
        for t in threads:
            t.stop.set()
        for t in threads:
            t.join(timeout=40)
            assert not t.is_alive(), "a client hangs"

        # Watches after the outage: a new one gets live changes; the one from before either
        # was ended (its client resumes) or gets them too, never silence.
        new_watch = nexsrv_env.Watch(writer, uid, kinds=("device-metadata",))
        new_watch.read_until('"tail"')
        marker = f"after-restart-{TAG}"
        ok(writer.put(f"/api/devices/{dev['id']}/metadata/{marker}", {"n": 0}), 200)
        live = new_watch.read_until(marker, timeout=10)
        old_text = old_watch.read_until(marker, timeout=3)
        watch_problems = []
        if marker not in live:
            watch_problems.append(f"a watch opened after the restart missed a change: {live}")
        if marker not in old_text and not old_watch.ended:
            watch_problems.append("a watch open across the restart is neither ended nor "
                                  f"live: {old_text[-500:]}")
        old_watch.close()
        new_watch.close()

        problems = []
        log = [e for t in threads for e in t.log]
        outage = [e for e in log if down_at <= e[0] <= up_at]
        for t0, t1, what, status, body, _ in log:
            if t1 - t0 > 10:
                problems.append(f"{what} took {t1 - t0:.1f} s ({status})")
            if status is None or not (200 <= status < 300 or status == 503):
                problems.append(f"{what} at {t0 - down_at:+.2f} s: {status} {body}")
            elif status == 503 and (not isinstance(body, dict) or "unavailable" not in
                                    str(body.get("error"))):
                problems.append(f"{what}: 503 without a JSON error: {body}")
        if not any(e[3] == 503 for e in outage):
            problems.append("no 503 during the outage")
        # No acknowledged write lost.
        orgs = [e[5] for e in log if e[2] == "org" and e[5]]
        keys = [e[5] for e in log if e[2] == "metadata" and e[5]]
        stored = set(db.psql("SELECT id || ' ' || name FROM organizations").splitlines())
        lost = [o for o in orgs if f"{o[0]} {o[1]}" not in stored]
        if lost:
            problems.append(f"acknowledged organizations lost: {lost}")
        md = dict(line.split("|") for line in db.psql(
            f"SELECT key, value->>'n' FROM device_metadata WHERE device_id = '{dev['id']}'"
        ).splitlines())
        lost = [k for k, n in keys if md.get(k) != str(n)]
        if lost:
            problems.append(f"acknowledged metadata lost: {lost}")
        nexsrv_env.assert_healthy(d)
        assert not problems, "\n".join(problems[:40])
        assert not watch_problems, "\n".join(watch_problems)
        assert ready_s < 15, f"ready {ready_s:.1f} s after the database came back"
        assert len(orgs) > 5 and len(keys) > 5
        log_text = d.proc.log()
        assert d.stop() == 0, d.proc.log(60)
        assert nexsrv_env.sanitizer_report(log_text) is None, log_text
    finally:
        for t in threads:
            t.stop.set()
        if d:
            d.cleanup()
        lab.teardown()
        cluster.stop()
