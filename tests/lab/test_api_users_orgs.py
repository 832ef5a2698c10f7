# SPDX-License-Identifier: GPL-2.0-or-later
"""nexsrv's callers, users, organizations, invitations and feature flags, end to end: a real
nexsrv on loopback with a real PostgreSQL and the test OIDC provider (tests/idp) issuing
people's tokens.

One nexsrv, database and provider serve the whole module (every test uses people of its own,
so tests do not see each other); the test that needs the provider down before anyone signs
in starts its own.  What is checked: a person's first call creates their user, default
organization (id = user id), default VPC (id = user id, the default CIDRs) and security
group (id = VPC id), once, also under concurrent first calls; people see themselves only;
organizations are listed with X-Total-Count and sort/filter/range; invitations go from an
owner to a user and are accepted by that user only, never after they expire; whatever is
outside a caller's reach is 404 and changes nothing in the database; bad tokens are 401 and
create nothing; malformed bodies are 400 naming the field; a provider that cannot be reached
is 503.
"""

import base64
import concurrent.futures
import datetime
import hashlib
import json
import secrets
import uuid

import pytest

import nexsrv_env
from api import Api
from lab import Lab
from nexsrv_env import CLIENT_ID, start_nexsrv

DEFAULT_V4 = "100.64.0.0/10"
DEFAULT_V6 = "200::/64"


class Env(nexsrv_env.Env):
    """The module's service: .base, .idp, .db (psql), and people on demand."""

    def person(self, name, **mint):
        """A new person: (Api with their token, their sub); the name is made unique."""
        sub = f"{name}-{secrets.token_hex(4)}"
        return Api(self.base, self.idp.mint_token(sub, **mint)), sub

    def me(self, api):
        status, body, _ = api.get("/api/users/me")
        assert status == 200, body
        return body


@pytest.fixture(scope="module")
def env(postgres_cluster):
    with nexsrv_env.nexsrv_env(postgres_cluster, "test_api_users_orgs", env_class=Env) as e:
        yield e


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def count(env, table, where):
    return int(env.sql(f"SELECT count(*) FROM {table} WHERE {where}"))


def org_state(env, org_id):
    """What a cross-tenant attempt must not change: the organization and its members."""
    return env.sql(f"SELECT o.name, o.owner_id, array_agg(m.user_id::text || ':' || "
                   f"array_to_string(m.roles, ',') ORDER BY m.user_id) FROM organizations o "
                   f"JOIN memberships m ON m.organization_id = o.id WHERE o.id = '{org_id}' "
                   f"GROUP BY o.name, o.owner_id")


# --- first call ------------------------------------------------------------------------------


def test_first_call_provisions_user_org_vpc_group(env):
    alice, sub = env.person("alice")
    me = env.me(alice)
    uid = me["id"]
    assert me == {"id": uid, "full_name": me["full_name"], "picture": "", "username": sub}
    assert me["full_name"].startswith("Alice ")

    assert env.sql(f"SELECT id, username, email, email_verified FROM users "
                   f"WHERE idp_subject = '{sub}'") == f"{uid}|{sub}|{sub}@example.com|t"
    assert env.sql(f"SELECT name, description, owner_id FROM organizations WHERE id = '{uid}'") \
        == f"{sub}|{sub}'s organization|{uid}"
    assert env.sql(f"SELECT roles FROM memberships WHERE organization_id = '{uid}' "
                   f"AND user_id = '{uid}'") == "{owner}"
    assert env.sql(f"SELECT organization_id, ipv4_cidr, ipv6_cidr, private_cidr FROM vpcs "
                   f"WHERE id = '{uid}'") == f"{uid}|{DEFAULT_V4}|{DEFAULT_V6}|f"
    assert env.sql(f"SELECT vpc_id, organization_id, inbound_rules, outbound_rules "
                   f"FROM security_groups WHERE id = '{uid}'") == f"{uid}|{uid}|[]|[]"

    status, orgs, headers = alice.get("/api/organizations")
    assert status == 200
    assert orgs == [{"id": uid, "name": sub, "description": f"{sub}'s organization"}]
    assert headers["X-Total-Count"] == "1"

    # Later calls find the user; nothing more is created.
    assert env.me(alice)["id"] == uid
    assert count(env, "users", f"idp_subject = '{sub}'") == 1
    assert count(env, "organizations", f"owner_id = '{uid}'") == 1


def test_concurrent_first_calls_create_one_user(env):
    bob, sub = env.person("bob")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: bob.get("/api/users/me"), range(8)))
    assert [r[0] for r in results] == [200] * 8, [r[1] for r in results]
    ids = {r[1]["id"] for r in results}
    assert len(ids) == 1
    uid = ids.pop()
    assert count(env, "users", f"idp_subject = '{sub}'") == 1
    assert count(env, "organizations", f"owner_id = '{uid}'") == 1
    assert count(env, "vpcs", f"organization_id = '{uid}'") == 1
    assert count(env, "security_groups", f"organization_id = '{uid}'") == 1


def test_default_org_name_taken_gets_suffix(env):
    # Someone already holds an organization named after the newcomer.
    holder, _ = env.person("holder")
    newcomer_sub = f"carol-{secrets.token_hex(4)}"
    status, _, _ = holder.post("/api/organizations", {"name": newcomer_sub})
    assert status == 201
    carol = Api(env.base, env.idp.mint_token(newcomer_sub))
    uid = env.me(carol)["id"]
    status, orgs, _ = carol.get("/api/organizations")
    assert status == 200 and [o["id"] for o in orgs] == [uid]
    assert orgs[0]["name"] == f"{newcomer_sub}-{uid[:8]}"


# --- users ------------------------------------------------------------------------------------


def test_users_see_only_themselves(env):
    alice, _ = env.person("alice")
    bob, _ = env.person("bob")
    a, b = env.me(alice), env.me(bob)

    assert alice.get(f"/api/users/{a['id']}")[:2] == (200, a)
    assert alice.get(f"/api/users/{a['id'].upper()}")[:2] == (200, a)
    status, users, headers = alice.get("/api/users")
    assert (status, users, headers["X-Total-Count"]) == (200, [a], "1")

    assert alice.get(f"/api/users/{b['id']}")[:2] == (404, {"error": "not found",
                                                            "resource": "user"})
    assert alice.delete(f"/api/users/{b['id']}")[:2] == (404, {"error": "not found",
                                                               "resource": "user"})
    assert count(env, "users", f"id = '{b['id']}'") == 1
    status, body, _ = alice.get("/api/users/not-a-uuid")
    assert (status, body["field"]) == (400, "id")
    status, body, _ = alice.get("/api/users", filter={"username": b["username"]})
    assert (status, body) == (200, [])


def test_user_deletes_self_and_comes_back(env):
    dave, sub = env.person("dave")
    uid = env.me(dave)["id"]
    status, body, _ = dave.delete("/api/users/me")
    assert status == 200 and body["id"] == uid
    for table, where in (("users", f"id = '{uid}'"), ("organizations", f"id = '{uid}'"),
                         ("vpcs", f"id = '{uid}'"), ("security_groups", f"id = '{uid}'"),
                         ("memberships", f"user_id = '{uid}'")):
        assert count(env, table, where) == 0, table
    # The next call starts afresh.
    again = env.me(dave)
    assert again["id"] != uid and again["username"] == sub
    assert count(env, "vpcs", f"id = '{again['id']}'") == 1


# --- organizations ----------------------------------------------------------------------------


def test_organizations_crud_and_lists(env):
    olga, _ = env.person("olga")
    uid = env.me(olga)["id"]
    tag = secrets.token_hex(3)
    created = {}
    for name in ("zone-a", "zone-c", "zone-b"):
        status, org, _ = olga.post("/api/organizations",
                                   {"name": f"{name}-{tag}", "description": f"The {name}"})
        assert status == 201, org
        assert org == {"id": org["id"], "name": f"{name}-{tag}", "description": f"The {name}"}
        created[name] = org
        assert env.sql(f"SELECT roles FROM memberships WHERE organization_id = '{org['id']}' "
                       f"AND user_id = '{uid}'") == "{owner}"

    status, orgs, headers = olga.get("/api/organizations")
    assert status == 200 and headers["X-Total-Count"] == "4"
    assert headers["Access-Control-Expose-Headers"] == "X-Total-Count"
    names = [o["name"] for o in orgs]
    assert names == sorted(names)

    status, orgs, _ = olga.get("/api/organizations", sort=["name", "DESC"])
    assert [o["name"] for o in orgs] == sorted(names, reverse=True)
    status, orgs, headers = olga.get("/api/organizations", sort=["name", "ASC"], range=[1, 2])
    assert status == 200 and headers["X-Total-Count"] == "4"
    assert [o["name"] for o in orgs] == sorted(names)[1:3]
    status, orgs, headers = olga.get("/api/organizations",
                                     filter={"name": f"zone-b-{tag}"})
    assert (status, orgs, headers["X-Total-Count"]) == (200, [created["zone-b"]], "1")

    for query, field in (({"sort": '["name"]'}, "sort"),
                         ({"sort": ["password", "ASC"]}, "sort"),
                         ({"sort": ["name", "UP"]}, "sort"),
                         ({"filter": {"owner_id": uid}}, "filter"),
                         ({"filter": "[1]"}, "filter"),
                         ({"filter": {"id": "not-a-uuid"}}, "filter"),
                         ({"range": [5, 1]}, "range"),
                         ({"range": [-1, 3]}, "range"),
                         ({"range": "[0,"}, "range")):
        status, body, _ = olga.get("/api/organizations", **query)
        assert status == 400, (query, body)
        assert body["error"] == "query parameter invalid" and body["field"] == field, body
        assert body["reason"]

    zone_a = created["zone-a"]
    assert olga.get(f"/api/organizations/{zone_a['id']}")[:2] == (200, zone_a)

    # The same name again: 409 naming the existing one.
    status, body, _ = olga.post("/api/organizations", {"name": f"zone-a-{tag}"})
    assert (status, body) == (409, {"id": zone_a["id"], "error": "resource already exists"})

    status, body, _ = olga.delete(f"/api/organizations/{zone_a['id']}")
    assert (status, body) == (200, zone_a)
    assert olga.get(f"/api/organizations/{zone_a['id']}")[:2] == (
        404, {"error": "not found", "resource": "organization"})
    assert count(env, "organizations", f"id = '{zone_a['id']}'") == 0
    assert count(env, "memberships", f"organization_id = '{zone_a['id']}'") == 0

    # The default organization stays.
    status, body, _ = olga.delete(f"/api/organizations/{uid}")
    assert (status, body) == (400, {"error": "operation not allowed",
                                    "reason": "default organization cannot be deleted"})
    assert count(env, "organizations", f"id = '{uid}'") == 1


# --- invitations and tenancy ------------------------------------------------------------------


def test_invitation_end_to_end_and_cross_tenant(env):
    alice, _ = env.person("alice")
    bob, _ = env.person("bob")
    eve, _ = env.person("eve")
    a, b, e = env.me(alice), env.me(bob), env.me(eve)
    status, team, _ = alice.post("/api/organizations", {"name": f"team-{secrets.token_hex(3)}"})
    assert status == 201
    org = team["id"]
    before = org_state(env, org)

    # Before any invitation, bob reaches nothing of alice's.
    nf_org = {"error": "not found", "resource": "organization"}
    assert bob.get(f"/api/organizations/{org}")[:2] == (404, nf_org)
    assert bob.get(f"/api/organizations/{org}/users")[:2] == (404, nf_org)
    assert bob.get(f"/api/organizations/{org}/users/{a['id']}")[:2] == (404, nf_org)
    assert bob.delete(f"/api/organizations/{org}")[:2] == (404, nf_org)
    assert bob.delete(f"/api/organizations/{org}/users/{a['id']}")[:2] == (404, nf_org)
    assert bob.delete(f"/api/users/{a['id']}/organizations/{org}")[:2] == (404, nf_org)
    assert bob.post("/api/invitations", {"organization_id": org, "user_id": b["id"]})[:2] == (
        404, nf_org)
    status, orgs, _ = bob.get("/api/organizations", filter={"id": org})
    assert (status, orgs) == (200, [])
    assert org_state(env, org) == before

    # alice invites bob by id.
    status, inv, _ = alice.post("/api/invitations", {"organization_id": org,
                                                     "user_id": b["id"]})
    assert status == 201, inv
    assert set(inv) == {"id", "organization_id", "user_id", "email", "roles", "expires_at"}
    assert (inv["organization_id"], inv["user_id"], inv["roles"]) == (org, b["id"], ["member"])
    assert inv["email"] == f"{b['username']}@example.com"
    expires = datetime.datetime.fromisoformat(inv["expires_at"].replace("Z", "+00:00"))
    week = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=7)
    assert abs((expires - week).total_seconds()) < 120

    # A second one while the first is valid: 409 naming it.
    status, body, _ = alice.post("/api/invitations", {"organization_id": org,
                                                      "user_id": b["id"]})
    assert (status, body) == (409, {"id": inv["id"], "error": "resource already exists"})

    # Both ends see it, with the sender and the organization; nobody else does.
    expected = dict(inv, **{"from": a, "organization": team})
    for who in (alice, bob):
        status, invs, headers = who.get("/api/invitations")
        assert (status, invs, headers["X-Total-Count"]) == (200, [expected], "1")
        assert who.get(f"/api/invitations/{inv['id']}")[:2] == (200, expected)
    nf_inv = {"error": "not found", "resource": "invitation"}
    assert eve.get("/api/invitations")[:2] == (200, [])
    assert eve.get(f"/api/invitations/{inv['id']}")[:2] == (404, nf_inv)
    assert eve.delete(f"/api/invitations/{inv['id']}")[:2] == (404, nf_inv)
    assert eve.post(f"/api/invitations/{inv['id']}/accept")[:2] == (404, nf_inv)
    # Only the invitee accepts.
    assert alice.post(f"/api/invitations/{inv['id']}/accept")[:2] == (404, nf_inv)
    assert count(env, "invitations", f"id = '{inv['id']}'") == 1
    assert org_state(env, org) == before

    status, body, _ = bob.post(f"/api/invitations/{inv['id']}/accept")
    assert (status, body) == (204, None)
    assert count(env, "invitations", f"id = '{inv['id']}'") == 0
    assert bob.get("/api/invitations")[:2] == (200, [])
    assert bob.post(f"/api/invitations/{inv['id']}/accept")[:2] == (404, nf_inv)

    # bob is a member now: he reads the organization and its members ...
    status, orgs, _ = bob.get("/api/organizations")
    assert status == 200 and team in orgs and len(orgs) == 2
    assert bob.get(f"/api/organizations/{org}")[:2] == (200, team)
    status, members, headers = bob.get(f"/api/organizations/{org}/users",
                                       sort=["username", "ASC"])
    assert status == 200 and headers["X-Total-Count"] == "2"
    alice_member = {"organization_id": org, "user_id": a["id"], "roles": ["owner"], "user": a}
    bob_member = {"organization_id": org, "user_id": b["id"], "roles": ["member"], "user": b}
    assert members == sorted([alice_member, bob_member], key=lambda m: m["user"]["username"])
    assert bob.get(f"/api/organizations/{org}/users/{a['id']}")[:2] == (200, alice_member)
    assert bob.get(f"/api/organizations/{org}/users/{e['id']}")[:2] == (
        404, {"error": "not found", "resource": "user_organization"})

    # ... but changes nothing: members read, owners change.
    after_join = org_state(env, org)
    assert bob.delete(f"/api/organizations/{org}")[:2] == (404, nf_org)
    assert bob.delete(f"/api/organizations/{org}/users/{a['id']}")[:2] == (404, nf_org)
    assert bob.post("/api/invitations", {"organization_id": org, "user_id": e["id"]})[:2] == (
        404, nf_org)
    assert org_state(env, org) == after_join

    # The owner cannot remove herself; inviting a member again is refused.
    status, body, _ = alice.delete(f"/api/organizations/{org}/users/{a['id']}")
    assert (status, body) == (400, {"error": "path parameter invalid", "field": "uid",
                                    "reason": "cannot delete owner of the organization"})
    status, body, _ = alice.post("/api/invitations", {"organization_id": org,
                                                      "user_id": b["id"]})
    assert (status, body) == (400, {"error": "user is already in requested org",
                                    "field": "organization"})

    # bob leaves by himself; alice invites him back and removes him.
    status, body, _ = bob.delete(f"/api/users/me/organizations/{org}")
    assert (status, body) == (200, b)
    assert bob.get(f"/api/organizations/{org}")[:2] == (404, nf_org)
    status, inv2, _ = alice.post("/api/invitations", {"organization_id": org,
                                                      "user_id": b["id"], "roles": ["owner"]})
    assert status == 201 and inv2["roles"] == ["owner"]
    assert bob.post(f"/api/invitations/{inv2['id']}/accept")[0] == 204
    assert env.sql(f"SELECT roles FROM memberships WHERE organization_id = '{org}' "
                   f"AND user_id = '{b['id']}'") == "{owner}"
    status, body, _ = alice.delete(f"/api/organizations/{org}/users/{b['id']}")
    assert (status, body) == (200, {"organization_id": org, "user_id": b["id"],
                                    "roles": ["owner"], "user": b})
    assert count(env, "memberships", f"organization_id = '{org}' AND user_id = '{b['id']}'") \
        == 0


def test_invitation_by_email_decline_and_withdraw(env):
    alice, _ = env.person("alice")
    carol, carol_sub = env.person("carol")
    c = env.me(carol)
    env.me(alice)
    status, team, _ = alice.post("/api/organizations", {"name": f"mail-{secrets.token_hex(3)}"})
    org = team["id"]

    # An address of a known user invites that user.
    status, inv, _ = alice.post("/api/invitations", {"organization_id": org,
                                                     "email": f" {carol_sub.upper()}@Example.COM"})
    assert status == 201, inv
    assert (inv["user_id"], inv["email"]) == (c["id"], f"{carol_sub}@example.com")
    # The invitee declines it.
    assert carol.delete(f"/api/invitations/{inv['id']}")[:2] == (204, None)
    assert count(env, "invitations", f"id = '{inv['id']}'") == 0

    # An unknown address waits for whoever signs in with it, then is theirs.
    newbie_sub = f"newbie-{secrets.token_hex(4)}"
    status, inv, _ = alice.post("/api/invitations", {"organization_id": org,
                                                     "email": f"{newbie_sub}@example.com"})
    assert status == 201 and "user_id" not in inv
    newbie = Api(env.base, env.idp.mint_token(newbie_sub))
    n = env.me(newbie)
    status, invs, _ = newbie.get("/api/invitations")
    assert status == 200 and [i["id"] for i in invs] == [inv["id"]]
    assert invs[0]["user_id"] == n["id"]
    # The sender withdraws it.
    assert alice.delete(f"/api/invitations/{inv['id']}")[:2] == (204, None)
    assert newbie.get("/api/invitations")[:2] == (200, [])


def test_expired_invitation_cannot_be_accepted(env):
    alice, _ = env.person("alice")
    bob, _ = env.person("bob")
    b = env.me(bob)
    env.me(alice)
    status, team, _ = alice.post("/api/organizations", {"name": f"old-{secrets.token_hex(3)}"})
    status, inv, _ = alice.post("/api/invitations", {"organization_id": team["id"],
                                                     "user_id": b["id"]})
    assert status == 201
    env.sql(f"UPDATE invitations SET expires_at = now() - interval '1 minute' "
            f"WHERE id = '{inv['id']}'")
    status, body, _ = bob.post(f"/api/invitations/{inv['id']}/accept")
    assert (status, body) == (400, {"error": "operation not allowed",
                                    "reason": "invitation has expired"})
    assert count(env, "memberships", f"organization_id = '{team['id']}' "
                                     f"AND user_id = '{b['id']}'") == 0
    assert count(env, "invitations", f"id = '{inv['id']}'") == 1
    # An expired invitation does not block a new one.
    status, inv2, _ = alice.post("/api/invitations", {"organization_id": team["id"],
                                                      "user_id": b["id"]})
    assert status == 201 and inv2["id"] != inv["id"]


# --- bad tokens and bodies --------------------------------------------------------------------


def test_bad_tokens_are_401_and_create_nothing(env):
    good = env.idp.mint_token(f"mallory-{secrets.token_hex(4)}")
    h, p, s = good.split(".")
    payload = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    forged_sub = f"forged-{secrets.token_hex(4)}"
    forged = ".".join([h, b64url(json.dumps(dict(payload, sub=forged_sub)).encode()), s])
    cases = {
        "expired": env.idp.mint_token(f"expired-{secrets.token_hex(4)}", expires_in=-3600),
        "audience": env.idp.mint_token(f"aud-{secrets.token_hex(4)}", aud="someone-else"),
        "issuer": env.idp.mint_token(f"iss-{secrets.token_hex(4)}",
                                     claims={"iss": "http://127.0.0.1:1/evil"}),
        "forged": forged,
        "garbage": "not.a.token",
        "reg key": "RK:" + b64url(secrets.token_bytes(32)),
        "device token": "DT:" + b64url(secrets.token_bytes(32)),
        "malformed reg key": "RK:short",
    }
    users_before = count(env, "users", "true")
    for what, token in cases.items():
        status, body, headers = Api(env.base, token).get("/api/users/me")
        assert status == 401, (what, body)
        assert body["error"].startswith("unauthorized"), (what, body)
        assert headers["WWW-Authenticate"].startswith("Bearer"), what
    status, body, headers = Api(env.base).get("/api/organizations")
    assert (status, body, headers["WWW-Authenticate"]) == (401, {"error": "unauthorized"},
                                                           "Bearer")
    assert count(env, "users", "true") == users_before
    assert count(env, "users", f"idp_subject = '{forged_sub}' OR idp_subject LIKE 'expired-%' "
                               f"OR idp_subject LIKE 'aud-%' OR idp_subject LIKE 'iss-%'") == 0


RESERVED = ('unauthorized: subject "{}" is reserved for built-in users: subjects beginning '
            'with "nexodus:" are not accepted from the OIDC provider')


def test_reserved_subjects_are_refused(env):
    """OIDC subjects beginning with "nexodus:" belong to the service's built-in users (the
    operator of the bootstrap commands is "nexodus:operator"): a token naming one is 401
    with the reason, before anything is written, whether that user exists or not."""

    def token(sub):
        # the provider's account ids have no ':': the sub claim is set over it
        t = env.idp.mint_token(f"reserved-{secrets.token_hex(4)}", claims={"sub": sub})
        assert env.idp.verify(t)[1]["sub"] == sub
        return t

    users_before = count(env, "users", "true")
    orgs_before = count(env, "organizations", "true")
    for sub in ("nexodus:operator", "nexodus:admin", "nexodus:"):
        status, body, headers = Api(env.base, token(sub)).get("/api/users/me")
        assert (status, body) == (401, {"error": RESERVED.format(sub)}), (sub, body)
        assert headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert count(env, "users", "true") == users_before
    assert count(env, "users", "idp_subject LIKE 'nexodus:%' OR username LIKE 'reserved-%'") == 0

    # the operator user exists, as the bootstrap commands create it: its token is refused
    # all the same, and the operator's row is not rewritten from the token's claims
    env.sql("INSERT INTO users (idp_subject, username) VALUES ('nexodus:operator', "
            "'operator') ON CONFLICT (idp_subject) DO NOTHING")
    operator = ("SELECT id, username, full_name, picture, coalesce(email, ''), email_verified "
                "FROM users WHERE idp_subject = 'nexodus:operator'")
    before = env.sql(operator)
    api = Api(env.base, token("nexodus:operator"))
    status, body, _ = api.get("/api/users/me")
    assert (status, body) == (401, {"error": RESERVED.format("nexodus:operator")})
    status, body, _ = api.post("/api/organizations", {"name": f"op-{secrets.token_hex(4)}"})
    assert status == 401, body
    assert env.sql(operator) == before
    assert count(env, "organizations", "true") == orgs_before
    # a subject that merely contains the prefix is an ordinary person's
    sub = f"x-nexodus:{secrets.token_hex(4)}"
    status, body, _ = Api(env.base, token(sub)).get("/api/users/me")
    assert status == 200, body
    assert count(env, "users", f"idp_subject = '{sub}'") == 1


def test_reg_key_and_device_token_callers(env):
    alice, _ = env.person("alice")
    uid = env.me(alice)["id"]

    def secret(prefix):
        token = prefix + b64url(secrets.token_bytes(32))
        return token, "\\x" + hashlib.sha256(token.encode()).hexdigest()

    rk, rk_hash = secret("RK:")
    old, old_hash = secret("RK:")
    spent, spent_hash = secret("RK:")
    dt, dt_hash = secret("DT:")
    env.sql(f"""
        INSERT INTO reg_keys (owner_id, vpc_id, organization_id, token_hash, single_use,
                              expires_at, used_at)
        VALUES ('{uid}', '{uid}', '{uid}', '{rk_hash}', false, now() + interval '1 hour', NULL),
               ('{uid}', '{uid}', '{uid}', '{old_hash}', false, now() - interval '1 hour', NULL),
               ('{uid}', '{uid}', '{uid}', '{spent_hash}', true, NULL, now());
        INSERT INTO devices (vpc_id, organization_id, owner_id, public_key, bearer_token_hash)
        VALUES ('{uid}', '{uid}', '{uid}', '{b64url(secrets.token_bytes(32))}=', '{dt_hash}');
    """)
    default_org = alice.get(f"/api/organizations/{uid}")[1]
    for token in (rk, dt):
        caller = Api(env.base, token)
        assert caller.get("/api/organizations")[:2] == (200, [default_org])
        assert caller.get(f"/api/organizations/{uid}")[:2] == (200, default_org)
        status, body, _ = caller.get("/api/users/me")
        assert status == 403 and body["error"] == "operation not allowed", body
        assert caller.post("/api/organizations", {"name": "nope"})[0] == 403
        assert caller.delete(f"/api/organizations/{uid}")[0] == 403
        assert caller.get("/api/invitations")[0] == 403
    for token, why in ((old, "expired"), (spent, "used")):
        status, body, _ = Api(env.base, token).get("/api/organizations")
        assert status == 401 and why in body["error"], body


def test_malformed_bodies_are_400_with_field(env):
    olga, _ = env.person("olga")
    uid = env.me(olga)["id"]
    for body, field in (('{"name": 5}', "name"),
                        ('{"name": ""}', "name"),
                        ('{"description": "no name"}', "name"),
                        ('{"name": "x", "description": 7}', "description"),
                        ('{"name": null}', "name"),
                        (json.dumps({"name": "n" * 300}), "name")):
        status, out, _ = olga.post("/api/organizations", body)
        assert status == 400 and out["field"] == field, (body, out)
    for body in ("{", "[]", '"name"', "", '{"name": "x",}', "\xff"):
        status, out, _ = olga.post("/api/organizations", body)
        assert status == 400 and out["error"].startswith("request json is invalid"), (body, out)
        assert "field" not in out

    # Unknown fields are ignored, as the original's decoder does.
    name = f"extra-{secrets.token_hex(3)}"
    status, out, _ = olga.post("/api/organizations", {"name": name, "color": "red",
                                                      "id": str(uuid.uuid4())})
    assert status == 201 and out["name"] == name

    for body, field in (({"organization_id": "nope", "user_id": uid}, "organization_id"),
                        ({"user_id": uid}, "organization_id"),
                        ({"organization_id": uid, "user_id": 12}, "user_id"),
                        ({"organization_id": uid, "user_id": "x"}, "user_id"),
                        ({"organization_id": uid}, "email or user_id"),
                        ({"organization_id": uid, "email": "no-at-sign"}, "email"),
                        ({"organization_id": uid, "email": "a@b.c", "user_id": uid}, "email"),
                        ({"organization_id": uid, "user_id": uid, "roles": ["admin"]}, "roles"),
                        ({"organization_id": uid, "user_id": uid, "roles": "owner"}, "roles"),
                        ({"organization_id": uid, "user_id": uid, "roles": [1]}, "roles")):
        status, out, _ = olga.post("/api/invitations", body)
        assert status == 400 and out["field"] == field, (body, out)
    status, out, _ = olga.post("/api/invitations", {"organization_id": uid,
                                                    "user_id": str(uuid.uuid4())})
    assert (status, out) == (404, {"error": "not found", "resource": "user"})
    status, out, _ = olga.post("/api/invitations/not-a-uuid/accept")
    assert (status, out["field"]) == (400, "id")


# --- feature flags and device login -----------------------------------------------------------


def test_feature_flags(env):
    greg, _ = env.person("greg")
    flags = {"ca": False, "devices": True, "multi-organization": True, "security-groups": True,
             "sites": False}
    assert greg.get("/api/fflags")[:2] == (200, flags)
    assert greg.get("/api/fflags/devices")[:2] == (200, {"devices": True})
    assert greg.get("/api/fflags/sites")[:2] == (200, {"sites": False})
    assert greg.get("/api/fflags/nope")[:2] == (404, {"error": "not found", "resource": "flag"})
    assert Api(env.base).get("/api/fflags")[0] == 401


def test_device_login_start(env):
    status, body, _ = Api(env.base).post("/device/login/start")
    assert status == 200, body
    disc = env.idp.discovery()
    assert body["device_authorization_endpoint"] == disc["device_authorization_endpoint"]
    assert body["issuer"] == env.idp.issuer
    assert body["client_id"] == CLIENT_ID
    server = datetime.datetime.fromisoformat(body["server_time"][:26] + "+00:00")
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((server - now).total_seconds()) < 5


# --- the provider away ------------------------------------------------------------------------


def test_idp_down_before_first_call_is_503(postgres, idp_factory):
    lab = Lab(label="test_idp_down_before_first_call_is_503")
    d = None
    try:
        idp = idp_factory()
        d, base = start_nexsrv(lab, postgres.conninfo, idp)
        sub = f"early-{secrets.token_hex(4)}"
        token = idp.mint_token(sub)
        idp.stop()
        status, body, _ = Api(base, token).get("/api/users/me")
        assert status == 503 and "OIDC provider" in body["error"], body
        assert postgres.psql("SELECT count(*) FROM users") == "0"
        status, body, _ = Api(base).post("/device/login/start")
        assert status == 503, body
        assert d.stop() == 0, d.proc.log(60)
    finally:
        if d:
            d.cleanup()
        lab.teardown()
