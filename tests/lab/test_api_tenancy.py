# SPDX-License-Identifier: GPL-2.0-or-later
"""Tenancy across the whole REST API: nothing of one tenant is visible to or changeable by
another, on any route.

Two people, alice and bob, each get an organization of their own (besides their default
one), a VPC in it, a security group, a registration key, devices (one enrolled with the key,
so with a device token; one beside it; one in their default VPC), device metadata and
invitations.  Then bob, and alice's own device token and registration key (which reach
their VPC only), try every route of the API on objects outside their reach.

The routes come from nexsrv's route tables (nexsrv_env.c_routes()), and every one of them
must have cases below: a new route without cases fails test_every_route_has_cases.  What
every attempt must show:
  * an object out of reach is 404, as a person (a token may get 400 or 403 for what its
    kind may never do), and the answer is exactly the one for an id that does not exist
    at all, so nothing tells that the object is there;
  * nothing changes: every row of every table is the same before and after;
  * no answer repeats a field of the other tenant's objects (ids, names, descriptions,
    keys, hostnames, addresses, metadata) that the request did not carry itself;
  * lists and their X-Total-Count hold exactly the caller's own rows, whatever the filter,
    and so do watch streams, also for the changes made while they are open.
"""

import base64
import json
import os
import secrets
import types
import urllib.parse
import uuid

import pytest

import nexsrv_env
from api import Api

TAG = secrets.token_hex(3)
PUBLIC_ROUTES = {("GET", "/private/live"), ("GET", "/private/ready"), ("GET", "/metrics"),
                 ("POST", "/device/login/start")}


class Env(nexsrv_env.Env):
    def person(self, name):
        sub = f"{name}-{TAG}"
        api = Api(self.base, self.idp.mint_token(sub))
        status, me, _ = api.get("/api/users/me")
        assert status == 200, me
        return api, me


@pytest.fixture(scope="module")
def env(postgres_cluster):
    with nexsrv_env.nexsrv_env(postgres_cluster, "test_api_tenancy",
                               extra=nexsrv_env.NO_RATE_LIMIT, env_class=Env) as e:
        yield e


def pubkey():
    return base64.b64encode(os.urandom(32)).decode()


def created(result, status=201):
    code, body, _ = result
    assert code == status, body
    return body


class Tenant:
    """Everything one person owns: .api (their token), .me, and the objects below."""

    def __init__(self, env, name, net):
        self.name = name
        self.api, self.me = env.person(name)
        self.uid = self.me["id"]  # = default organization = default VPC = its group
        self.email = f"{self.me['username']}@example.com"
        api = self.api
        self.org = created(api.post("/api/organizations", {
            "name": f"{name}-team-{TAG}", "description": f"{name}'s team {TAG}"}))
        self.vpc = created(api.post("/api/vpcs", {
            "organization_id": self.org["id"], "private_cidr": True,
            "ipv4_cidr": f"10.{net}.0.0/24", "ipv6_cidr": f"fd{net}::/64",
            "description": f"{name}'s vpc {TAG}"}))
        self.sg = created(api.post("/api/security-groups", {
            "vpc_id": self.vpc["id"], "description": f"{name}'s group {TAG}",
            "inbound_rules": [{"ip_protocol": "tcp", "from_port": 1000 + net,
                               "to_port": 1000 + net, "ip_ranges": [f"10.{net}.0.0/24"]}]}))
        self.rk = created(api.post("/api/reg-keys", {
            "vpc_id": self.vpc["id"], "description": f"{name}'s key {TAG}"}))
        self.rk_home = created(api.post("/api/reg-keys", {
            "vpc_id": self.uid, "description": f"{name}'s home key {TAG}"}))
        # A device enrolled with the key (its token is the device token used below), one
        # beside it, and one in the default VPC.
        self.dev = created(Api(env.base, self.rk["bearer_token"]).post("/api/devices", {
            "public_key": pubkey(), "hostname": f"{name}-dev-{TAG}", "os": "linux",
            "endpoints": [{"source": "local", "address": f"192.0.2.{net}:51820"}]}))
        self.mate = created(api.post("/api/devices", {
            "vpc_id": self.vpc["id"], "public_key": pubkey(), "hostname": f"{name}-mate-{TAG}",
            "os": "linux", "advertise_cidrs": [f"172.{net % 16 + 16}.{net}.0/24"]}))
        self.home = created(api.post("/api/devices", {
            "public_key": pubkey(), "hostname": f"{name}-home-{TAG}", "os": "linux"}))
        self.mdkey = f"{name}-md-{TAG}"
        self.mdvalue = f"{name}-secret-{TAG}"
        for dev in (self.dev, self.home):
            created(api.put(f"/api/devices/{dev['id']}/metadata/{self.mdkey}",
                            {"value": self.mdvalue}), 200)

    def invite(self, other):
        self.inv = created(self.api.post("/api/invitations", {
            "organization_id": self.org["id"], "user_id": other.uid}))
        self.inv_mail = created(self.api.post("/api/invitations", {
            "organization_id": self.org["id"], "email": f"{self.name}-friend-{TAG}@example.com"}))

    def dt(self, env):
        return Api(env.base, self.dev["bearer_token"])

    def rk_api(self, env):
        return Api(env.base, self.rk["bearer_token"])


class Carol:
    def __init__(self, env):
        self.api, self.me = env.person("carol")
        self.uid = self.me["id"]


@pytest.fixture(scope="module")
def world(env):
    alice = Tenant(env, "alice", 77)
    bob = Tenant(env, "bob", 88)
    carol = Carol(env)
    alice.invite(carol)
    bob.invite(carol)
    return types.SimpleNamespace(alice=alice, bob=bob, carol=carol)


# --- targets: what a caller must not reach, and what it may use of its own ------------------


def full_target(t):
    """All of tenant t, as seen by somebody outside it."""
    ids = [t.uid, t.org["id"], t.vpc["id"], t.sg["id"], t.rk["id"], t.rk_home["id"],
           t.dev["id"], t.mate["id"], t.home["id"], t.inv["id"], t.inv_mail["id"]]
    markers = ids + [
        t.me["username"], t.email, t.org["name"], t.org["description"], t.vpc["description"],
        t.vpc["ipv4_cidr"], t.vpc["ipv6_cidr"], t.sg["description"], t.rk["description"],
        t.rk["bearer_token"], t.rk_home["bearer_token"], t.rk_home["description"],
        t.dev["bearer_token"], t.mdkey, t.mdvalue, t.inv_mail["email"],
        t.dev["ipv4_tunnel_ips"][0]["address"], t.mate["advertise_cidrs"][0],
        t.dev["endpoints"][0]["address"]]
    for d in (t.dev, t.mate, t.home):
        markers += [d["public_key"], d["hostname"]]
    ids.append(t.dev["public_key"])  # to watch with
    return types.SimpleNamespace(
        uid=t.uid, org=t.org["id"], org_name=t.org["name"], vpc=t.vpc["id"], sg=t.sg["id"],
        rk=t.rk["id"], dev=t.dev["id"], others=[t.mate["id"], t.home["id"]],
        dev_pubkey=t.dev["public_key"], mdkey=t.mdkey, inv=t.inv["id"],
        invs=[t.inv["id"], t.inv_mail["id"]], ids=ids, markers=markers)


def outside_target(t):
    """What of tenant t its own device token and registration key must not reach: all that
    is not in the VPC they belong to (the default organization, VPC and group, the devices
    and key there).  The person's ids are not markers: the token's own rows name them."""
    ids = [t.uid, t.rk_home["id"], t.home["id"], t.inv["id"], t.inv_mail["id"],
           t.home["public_key"]]
    markers = [t.rk_home["id"], t.rk_home["description"], t.rk_home["bearer_token"],
               t.home["id"], t.home["public_key"], t.home["hostname"], t.inv["id"],
               t.inv_mail["id"], t.inv_mail["email"], t.rk["bearer_token"]]
    return types.SimpleNamespace(
        uid=t.uid, org=t.uid, org_name=t.me["username"], vpc=t.uid, sg=t.uid,
        rk=t.rk_home["id"], dev=t.home["id"], others=[], dev_pubkey=t.home["public_key"],
        mdkey=t.mdkey, inv=t.inv["id"], invs=[t.inv["id"], t.inv_mail["id"]], ids=ids,
        markers=markers)


def own(t):
    """A caller's own objects that attempts combine with foreign ones."""
    return types.SimpleNamespace(uid=t.uid, org=t.org["id"], vpc=t.vpc["id"], dev=t.dev["id"],
                                 rk=t.rk["id"])


# --- attempts --------------------------------------------------------------------------------


class Attempt:
    """One request: route (method, pattern), its path parameters, body and query.
    expect: "404" (out of reach: 404 for a person; a token may get 400 or 403 for what its
    kind never does; the same answer as for ids that do not exist), "4xx" (any refusal,
    the same as for ids that do not exist), "list" (200 with none of the target's rows, or 403 for a token's kind, or 400 for a
    filter the route does not take), "neutral" (whatever it answers, it shows nothing of
    the target and changes nothing)."""

    def __init__(self, method, pattern, expect, params=None, body=None, query=None,
                 auth=True):
        self.method = method
        self.pattern = pattern
        self.expect = expect
        self.params = params or {}
        self.body = body
        self.query = query or {}
        self.auth = auth

    @property
    def route(self):
        return (self.method, self.pattern)

    @property
    def path(self):
        path = self.pattern
        for k, v in self.params.items():
            path = path.replace("{" + k + "}", urllib.parse.quote(v, safe=""))
        return path

    def text(self):
        """Everything the request carries, to tell an echo from a leak."""
        return " ".join([self.path, json.dumps(self.query), json.dumps(self.body)])

    def substituted(self, ids):
        """The same attempt with every id of ids replaced by a fresh random UUID."""
        # ids, and WireGuard keys (44 characters of base64): fresh ones of the same shape
        mapping = {i: pubkey() if len(i) == 44 and i.endswith("=") else str(uuid.uuid4())
                   for i in ids}

        def sub(v):
            if isinstance(v, str):
                for old, new in mapping.items():
                    v = v.replace(old, new)
                return v
            if isinstance(v, list):
                return [sub(x) for x in v]
            if isinstance(v, dict):
                return {k: sub(x) for k, x in v.items()}
            return v

        return Attempt(self.method, self.pattern, self.expect, sub(self.params),
                       sub(self.body), sub(self.query), self.auth)

    def __repr__(self):
        return f"{self.method} {self.path} {self.query or ''} {json.dumps(self.body)}"


def attempts(T, O):
    """Every route tried on target T's objects by a caller whose own objects are O."""
    A = Attempt
    ev_body = [{"kind": "device", "gt_revision": 0}]
    out = [
        # users
        A("GET", "/api/users", "list", query={"filter": {"id": T.uid}}),
        A("GET", "/api/users", "list", query={"filter": {"username": T.org_name}}),
        A("GET", "/api/users/{id}", "404", {"id": T.uid}),
        A("DELETE", "/api/users/{id}", "404", {"id": T.uid}),
        A("DELETE", "/api/users/{id}/organizations/{organization}", "404",
          {"id": T.uid, "organization": T.org}),
        A("DELETE", "/api/users/{id}/organizations/{organization}", "404",
          {"id": "me", "organization": T.org}),
        A("DELETE", "/api/users/{id}/organizations/{organization}", "404",
          {"id": O.uid, "organization": T.uid}),
        # organizations
        A("GET", "/api/organizations", "list", query={"filter": {"id": T.org}}),
        A("GET", "/api/organizations", "list", query={"filter": {"name": T.org_name}}),
        A("GET", "/api/organizations", "list", query={"range": [0, 1000]}),
        A("POST", "/api/organizations", "neutral", body={"name": T.org_name}),
        A("GET", "/api/organizations/{id}", "404", {"id": T.org}),
        A("GET", "/api/organizations/{id}", "404", {"id": T.uid}),
        A("DELETE", "/api/organizations/{id}", "404", {"id": T.org}),
        A("DELETE", "/api/organizations/{id}", "404", {"id": T.uid}),
        A("GET", "/api/organizations/{id}/users", "404", {"id": T.org}),
        A("GET", "/api/organizations/{id}/users", "404", {"id": T.uid}),
        A("GET", "/api/organizations/{id}/users/{uid}", "404", {"id": T.org, "uid": T.uid}),
        A("DELETE", "/api/organizations/{id}/users/{uid}", "404", {"id": T.org, "uid": T.uid}),
        A("DELETE", "/api/organizations/{id}/users/{uid}", "404", {"id": T.org, "uid": O.uid}),
        # invitations
        A("GET", "/api/invitations", "list", query={"filter": {"organization_id": T.org}}),
        A("GET", "/api/invitations", "list", query={"filter": {"id": T.inv}}),
        A("POST", "/api/invitations", "404", body={"organization_id": T.org,
                                                   "user_id": O.uid}),
        A("POST", "/api/invitations", "404", body={"organization_id": T.org,
                                                   "email": f"x-{TAG}@example.com"}),
        A("POST", "/api/invitations", "404", body={"organization_id": T.uid,
                                                   "email": f"y-{TAG}@example.com"}),
        # feature flags: the same for everyone
        A("GET", "/api/fflags", "neutral"),
        A("GET", "/api/fflags/{name}", "neutral", {"name": "devices"}),
        # VPCs
        A("GET", "/api/vpcs", "list", query={"filter": {"id": T.vpc}}),
        A("GET", "/api/vpcs", "list", query={"filter": {"organization_id": T.org}}),
        A("POST", "/api/vpcs", "404", body={"organization_id": T.org}),
        A("POST", "/api/vpcs", "404", body={"organization_id": T.uid, "description": "x"}),
        A("POST", "/api/vpcs", "404", body={"organization_id": T.org, "private_cidr": True,
                                            "ipv4_cidr": "10.99.0.0/24",
                                            "ipv6_cidr": "fd99::/64"}),
        A("PATCH", "/api/vpcs/{id}", "neutral", {"id": O.vpc}, body={"organization_id": T.org}),
        A("GET", "/api/vpcs/{id}/devices", "list", {"id": O.vpc},
          query={"filter": {"vpc_id": T.vpc}}),
        A("GET", "/api/vpcs/{id}/security-groups", "list", {"id": O.vpc}),
        A("GET", "/api/vpcs/{id}/metadata", "list", {"id": O.vpc}, query={"key": T.mdkey}),
        A("GET", "/api/organizations/{id}/users", "list", {"id": O.org}),
        # security groups
        A("GET", "/api/security-groups", "list", query={"filter": {"id": T.sg}}),
        A("GET", "/api/security-groups", "list", query={"filter": {"vpc_id": T.vpc}}),
        A("GET", "/api/security-groups", "list", query={"gt_revision": "0"}),
        A("POST", "/api/security-groups", "404", body={"vpc_id": T.vpc, "description": "x"}),
        A("POST", "/api/security-groups", "404", body={"vpc_id": T.uid}),
        # registration keys
        A("GET", "/api/reg-keys", "list", query={"filter": {"id": T.rk}}),
        A("GET", "/api/reg-keys", "list", query={"filter": {"vpc_id": T.vpc}}),
        A("POST", "/api/reg-keys", "404", body={"vpc_id": T.vpc}),
        A("POST", "/api/reg-keys", "404", body={"vpc_id": T.uid, "single_use": True}),
        A("POST", "/api/reg-keys", "404", body={"vpc_id": O.vpc, "security_group_id": T.sg}),
        A("PATCH", "/api/reg-keys/{id}", "404", {"id": O.rk},
          body={"security_group_id": T.sg}),
        A("GET", "/api/reg-keys/{id}", "neutral", {"id": "me"}),
        # devices
        A("GET", "/api/devices", "list", query={"filter": {"id": T.dev}}),
        A("GET", "/api/devices", "list", query={"filter": {"vpc_id": T.vpc}}),
        A("GET", "/api/devices", "list", query={"filter": {"owner_id": T.uid}}),
        A("GET", "/api/devices", "list", query={"filter": {"public_key": T.dev_pubkey}}),
        A("POST", "/api/devices", "404", body={"vpc_id": T.vpc, "public_key": pubkey()}),
        A("POST", "/api/devices", "404", body={"vpc_id": T.uid, "public_key": pubkey()}),
        A("POST", "/api/devices", "4xx", body={"vpc_id": O.vpc, "public_key": pubkey(),
                                               "security_group_id": T.sg}),
        A("PATCH", "/api/devices/{id}", "4xx", {"id": O.dev}, body={"security_group_id": T.sg}),
        A("PATCH", "/api/devices/{id}", "4xx", {"id": O.dev}, body={"vpc_id": T.vpc}),
        A("GET", "/api/devices/{id}/metadata", "list", {"id": O.dev},
          query={"prefix": T.mdkey}),
        # watch streams: refused before anything is streamed
        A("POST", "/api/events", "404", body=[{"kind": "device", "gt_revision": 0,
                                               "options": {"vpc-id": T.vpc}}]),
        A("POST", "/api/vpcs/{id}/events", "404", {"id": O.vpc}, body=ev_body,
          query={"public_key": T.dev_pubkey}),
        # the caller's own VPC watched: none of the target's objects in the stream
        A("POST", "/api/vpcs/{id}/events", "neutral", {"id": O.vpc},
          body=[{"kind": k, "gt_revision": 0} for k in ("device", "security-group",
                                                          "device-metadata", "vpc")]),
        A("POST", "/api/events", "neutral",
          body=[{"kind": k, "gt_revision": 0, "options": {"vpc-id": O.vpc}}
                for k in ("device", "device-metadata")]),
    ]
    if T.uid != O.uid:  # the target's person in the caller's own organization
        out += [A("DELETE", "/api/users/{id}/organizations/{organization}", "4xx",
                  {"id": T.uid, "organization": O.org}),
                A("GET", "/api/organizations/{id}/users/{uid}", "4xx",
                  {"id": O.org, "uid": T.uid}),
                A("DELETE", "/api/organizations/{id}/users/{uid}", "4xx",
                  {"id": O.org, "uid": T.uid})]
    # One object of the target, every operation on it.
    for vpc in (T.vpc, T.uid):
        out += [A("GET", "/api/vpcs/{id}", "404", {"id": vpc}),
                A("PATCH", "/api/vpcs/{id}", "404", {"id": vpc}, body={"description": "evil"}),
                A("DELETE", "/api/vpcs/{id}", "404", {"id": vpc}),
                A("GET", "/api/vpcs/{id}/devices", "404", {"id": vpc}),
                A("GET", "/api/vpcs/{id}/devices", "404", {"id": vpc},
                  query={"gt_revision": "0"}),
                A("GET", "/api/vpcs/{id}/metadata", "404", {"id": vpc}),
                A("GET", "/api/vpcs/{id}/security-groups", "404", {"id": vpc}),
                A("POST", "/api/vpcs/{id}/events", "404", {"id": vpc}, body=ev_body)]
    for sg in {T.sg, T.uid, T.vpc}:
        out += [A("GET", "/api/security-groups/{id}", "404", {"id": sg}),
                A("PATCH", "/api/security-groups/{id}", "404", {"id": sg},
                  body={"description": "evil", "inbound_rules": []}),
                A("DELETE", "/api/security-groups/{id}", "404", {"id": sg})]
    out += [A("GET", "/api/reg-keys/{id}", "404", {"id": T.rk}),
            A("PATCH", "/api/reg-keys/{id}", "404", {"id": T.rk},
              body={"description": "evil", "expires_at": "2001-01-01T00:00:00Z"}),
            A("DELETE", "/api/reg-keys/{id}", "404", {"id": T.rk})]
    for dev in [T.dev] + T.others:
        md = "/api/devices/{id}/metadata"
        out += [A("GET", "/api/devices/{id}", "404", {"id": dev}),
                A("PATCH", "/api/devices/{id}", "404", {"id": dev},
                  body={"hostname": "evil", "relay": True}),
                A("DELETE", "/api/devices/{id}", "404", {"id": dev}),
                A("GET", md, "404", {"id": dev}),
                A("DELETE", md, "404", {"id": dev}),
                A("GET", md + "/{key}", "404", {"id": dev, "key": T.mdkey}),
                A("PUT", md + "/{key}", "404", {"id": dev, "key": T.mdkey}, body={"evil": 1}),
                A("PUT", md + "/{key}", "404", {"id": dev, "key": "new-key"}, body=[1]),
                A("DELETE", md + "/{key}", "404", {"id": dev, "key": T.mdkey})]
    for inv in T.invs:
        out += [A("GET", "/api/invitations/{id}", "404", {"id": inv}),
                A("DELETE", "/api/invitations/{id}", "404", {"id": inv}),
                A("POST", "/api/invitations/{id}/accept", "404", {"id": inv})]
    # Whole lists: whatever the sort, none of the target's rows.
    for path in ("/api/users", "/api/organizations", "/api/invitations", "/api/vpcs",
                 "/api/security-groups", "/api/reg-keys", "/api/devices"):
        out.append(A("GET", path, "list"))
        out.append(A("GET", path, "list", query={"sort": ["id", "DESC"], "range": [0, 500]}))
    # Routes without authentication show nothing of anybody.
    out += [A(m, p, "neutral", auth=False) for m, p in sorted(PUBLIC_ROUTES)]
    return out


# --- running them ----------------------------------------------------------------------------


def call(api, attempt):
    caller = api if attempt.auth else api.with_token(None)
    return nexsrv_env.request(caller, attempt.method, attempt.path, body=attempt.body,
                              stream_s=0.5, **attempt.query)


def leaks(markers, attempt, body):
    """Markers the answer shows that the request did not carry."""
    text = body if isinstance(body, str) else json.dumps(body)
    sent = attempt.text()
    return [m for m in markers if m and m in text and m not in sent]


def check(api, attempt, target, person, problems):
    status, body, headers = call(api, attempt)
    why = []
    shown = leaks(target.markers, attempt, body)
    if shown:
        why.append(f"shows {shown}")
    if attempt.expect in ("404", "4xx"):
        if attempt.expect == "404":
            allowed = {404} if person else {400, 403, 404}
        else:
            allowed = set(range(400, 500))
        if status not in allowed:
            why.append(f"status {status}")
        if not isinstance(body, dict) or not body.get("error"):
            why.append("no JSON error")
        ghost = call(api, attempt.substituted(target.ids))
        if (ghost[0], ghost[1]) != (status, body):
            why.append(f"differs from a nonexistent id: {ghost[0]} {ghost[1]}")
    elif attempt.expect == "list":
        if status == 200:
            if not isinstance(body, list):
                why.append("not a list")
            elif not attempt.query.get("range") and headers["X-Total-Count"] != str(len(body)):
                why.append(f"X-Total-Count {headers['X-Total-Count']} for {len(body)} rows")
        elif not (status == 400 and "filter" in attempt.query) and \
                not (status == 403 and not person):
            why.append(f"status {status}")
    if why:
        problems.append(f"{attempt!r} -> {status} {body!r}: {'; '.join(why)}")


def walk(env, api, targets, owner, person):
    """Every attempt of every target, with the database unchanged; returns the problems."""
    served = nexsrv_env.c_routes()
    before = nexsrv_env.db_snapshot(env.db)
    problems = []
    for target in targets:
        for attempt in attempts(target, owner):
            if attempt.route in served:  # cases written ahead of their route wait for it
                check(api, attempt, target, person, problems)
    diff = nexsrv_env.snapshot_diff(before, nexsrv_env.db_snapshot(env.db))
    if diff:
        problems.append("the database changed:\n" + diff)
    nexsrv_env.assert_healthy(env.daemon)
    return problems


# --- the tests -------------------------------------------------------------------------------


def dummy_target():
    n = types.SimpleNamespace(uid="u", org="o", org_name="n", vpc="v", sg="s", rk="r",
                              dev="d", others=[], dev_pubkey="k", mdkey="m", inv="i",
                              invs=["i"], ids=[], markers=[])
    return n


def test_every_route_has_cases():
    """Each route of nexsrv's tables is tried here; a new route needs cases above."""
    routes = nexsrv_env.c_routes()
    assert len(routes) > 40, routes  # the tables were found
    covered = {a.route for a in attempts(dummy_target(), dummy_target())}
    missing = routes - covered
    assert not missing, f"routes without tenancy cases: {sorted(missing)}"


def test_route_tables_match_server(env, world):
    """The routes read from the sources are those the server serves, and every route of
    the swagger (but sites, service networks and the CA) that it serves is among them."""
    api = world.carol.api
    routes = nexsrv_env.c_routes()

    def served(method, pattern):
        path = pattern
        for name in ("id", "uid", "organization"):
            path = path.replace("{" + name + "}", str(uuid.uuid4()))
        path = path.replace("{key}", "k").replace("{name}", "nope")
        a = Attempt(method, path, "neutral", auth=not pattern.startswith(
            ("/private", "/metrics")))
        status, body, _ = call(api, a)
        # The router's own answers: 404 without a resource, 405.
        return not (status == 405 or (status == 404 and isinstance(body, dict)
                                      and "resource" not in body))

    unserved = [r for r in sorted(routes) if not served(*r)]
    assert not unserved, f"in the tables but not served: {unserved}"
    hidden = [r for r in sorted(nexsrv_env.swagger_routes() - routes) if served(*r)]
    assert not hidden, f"served but not found in the route tables: {hidden}"


def test_lists_hold_exactly_own_rows(env, world):
    a, b = world.alice, world.bob
    dt, rk = a.dt(env), a.rk_api(env)
    vpc = a.vpc["id"]
    expected = {
        "bob": (b.api, {
            "/api/users": {b.uid},
            "/api/organizations": {b.uid, b.org["id"]},
            "/api/invitations": {b.inv["id"], b.inv_mail["id"]},
            "/api/vpcs": {b.uid, b.vpc["id"]},
            "/api/security-groups": {b.uid, b.vpc["id"], b.sg["id"]},
            "/api/reg-keys": {b.rk["id"], b.rk_home["id"]},
            "/api/devices": {b.dev["id"], b.mate["id"], b.home["id"]},
            f"/api/vpcs/{b.vpc['id']}/devices": {b.dev["id"], b.mate["id"]},
            f"/api/vpcs/{b.vpc['id']}/security-groups": {b.vpc["id"], b.sg["id"]},
        }),
        "alice's device token": (dt, {
            "/api/organizations": {a.org["id"]},
            "/api/vpcs": {vpc},
            "/api/security-groups": {vpc, a.sg["id"]},
            "/api/reg-keys": set(),
            "/api/devices": {a.dev["id"], a.mate["id"]},
            f"/api/vpcs/{vpc}/devices": {a.dev["id"], a.mate["id"]},
        }),
        "alice's registration key": (rk, {
            "/api/organizations": {a.org["id"]},
            "/api/vpcs": {vpc},
            "/api/security-groups": {vpc, a.sg["id"]},
            "/api/reg-keys": {a.rk["id"]},
            "/api/devices": {a.dev["id"], a.mate["id"]},
        }),
    }
    problems = []
    for who, (api, lists) in expected.items():
        for path, ids in lists.items():
            status, items, headers = api.get(path)
            got = {i["id"] for i in items} if status == 200 else status
            if got != ids or headers["X-Total-Count"] != str(len(ids)):
                problems.append(f"{who} {path}: {got} (X-Total-Count "
                                f"{headers['X-Total-Count']}), expected {ids}")
    # Members of alice's team as its device token sees them: alice alone.
    status, members, _ = dt.get(f"/api/organizations/{a.org['id']}/users")
    if status != 200 or [m["user_id"] for m in members] != [a.uid]:
        problems.append(f"alice's device token, members: {status} {members}")
    # carol, invited by both, sees both invitations and nothing else of either.
    status, invs, _ = world.carol.api.get("/api/invitations")
    if status != 200 or {i["id"] for i in invs} != {a.inv["id"], b.inv["id"]}:
        problems.append(f"carol's invitations: {status} {invs}")
    assert not problems, "\n".join(problems)


def test_bob_reaches_nothing_of_alice(env, world):
    problems = walk(env, world.bob.api, [full_target(world.alice)], own(world.bob), True)
    assert not problems, "\n".join(problems)


def test_alice_device_token_reaches_only_its_vpc(env, world):
    a = world.alice
    problems = walk(env, a.dt(env), [full_target(world.bob), outside_target(a)], own(a),
                    False)
    assert not problems, "\n".join(problems)


def test_alice_reg_key_reaches_only_its_vpc(env, world):
    a = world.alice
    problems = walk(env, a.rk_api(env), [full_target(world.bob), outside_target(a)], own(a),
                    False)
    assert not problems, "\n".join(problems)


def test_alice_still_reaches_her_own(env, world):
    """The walk above changed nothing: alice reads all she made, her tokens still work."""
    a = world.alice
    assert a.api.get(f"/api/vpcs/{a.vpc['id']}")[0] == 200
    assert a.api.get(f"/api/devices/{a.home['id']}/metadata/{a.mdkey}")[1]["value"] == \
        {"value": a.mdvalue}
    assert a.api.get(f"/api/invitations/{a.inv['id']}")[0] == 200
    assert a.dt(env).get(f"/api/devices/{a.dev['id']}")[0] == 200
    assert a.rk_api(env).get("/api/reg-keys/me")[1]["id"] == a.rk["id"]
    nexsrv_env.assert_healthy(env.daemon)


def test_watch_streams_carry_only_their_vpc(env, world):
    """Changes alice makes reach the streams watching her VPC, and no other: not bob's,
    not her device token's when they are in her default VPC."""
    a, b = world.alice, world.bob
    bob_watch = nexsrv_env.Watch(b.api, b.vpc["id"])
    dt_watch = nexsrv_env.Watch(a.dt(env), a.vpc["id"])
    try:
        bob_watch.read_until('"tail"')
        dt_watch.read_until('"tail"')
        renamed = f"alice-renamed-{TAG}"
        home_renamed = f"alice-home-renamed-{TAG}"
        assert a.api.put(f"/api/devices/{a.home['id']}/metadata/{a.mdkey}-2",
                         {"home": home_renamed})[0] == 200
        assert a.api.patch(f"/api/devices/{a.home['id']}", {"hostname": home_renamed})[0] == 200
        assert a.api.patch(f"/api/security-groups/{a.uid}", {"description": home_renamed}
                           )[0] == 200
        assert a.api.put(f"/api/devices/{a.dev['id']}/metadata/{a.mdkey}-2",
                         {"v": renamed})[0] == 200
        assert a.api.patch(f"/api/security-groups/{a.sg['id']}", {"description": renamed}
                           )[0] == 200
        assert a.api.patch(f"/api/vpcs/{a.vpc['id']}", {"description": renamed})[0] == 200
        assert a.api.patch(f"/api/devices/{a.mate['id']}", {"hostname": renamed})[0] == 200
        # The device token sees its VPC's changes (the last one last) ...
        seen = dt_watch.read_until(f'"hostname":"{renamed}"')
        assert seen.count(renamed) >= 4, seen
        # ... and nothing of the default VPC; bob sees nothing of alice at all.
        assert home_renamed not in seen and a.home["id"] not in seen, seen
        theirs = bob_watch.read_until("never", timeout=1.0)
        shown = [m for m in full_target(a).markers + [renamed, home_renamed] if m in theirs]
        assert not shown, theirs
    finally:
        bob_watch.close()
        dt_watch.close()
    nexsrv_env.assert_healthy(env.daemon)
