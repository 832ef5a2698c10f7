# SPDX-License-Identifier: GPL-2.0-or-later
"""nexsrv's network resources end to end: VPCs, security groups, registration keys, devices
(enrolment, device tokens, IPAM) and device metadata, against a real PostgreSQL and the test
OIDC provider.

One nexsrv, database and provider serve the module; every test uses people of its own.
Checked: VPC CRUD and its rules (the default VPC and a VPC with devices cannot be deleted);
a registration key enrols a device that gets a device token, which reads its VPC, changes
only its own device and creates nothing; a single-use key creates exactly one device under
50 concurrent enrolments; 200 concurrent enrolments with one key get 200 distinct
addresses, held in ipam_allocations; a requested address is honoured, a taken one is 409;
a deleted device's address is reused; addresses are never taken from advertised prefixes;
nothing of one tenant is visible to or changeable by another (and the database shows no
change); malformed bodies are 4xx naming the field and change nothing.
"""

import base64
import concurrent.futures
import ipaddress
import os
import secrets

import pytest

import nexsrv_env
from api import Api

DEFAULT_V4 = "100.64.0.0/10"
DEFAULT_V6 = "200::/64"


class Env(nexsrv_env.Env):
    def person(self, name):
        """A new person: (Api with their token, their user id = default VPC/org id)."""
        api = Api(self.base, self.idp.mint_token(f"{name}-{secrets.token_hex(4)}"))
        status, me, _ = api.get("/api/users/me")
        assert status == 200, me
        return api, me["id"]


@pytest.fixture(scope="module")
def env(postgres_cluster):
    # One key makes hundreds of calls at once here: no rate limit in the way.
    with nexsrv_env.nexsrv_env(postgres_cluster, "test_api_vpcs_devices",
                               extra=nexsrv_env.NO_RATE_LIMIT, env_class=Env) as e:
        yield e


def pubkey():
    return base64.b64encode(os.urandom(32)).decode()


def private_vpc(api, org, v4, v6="fd00:%x::/64" % secrets.randbits(16), description="lab"):
    status, vpc, _ = api.post("/api/vpcs", {"organization_id": org, "private_cidr": True,
                                            "ipv4_cidr": v4, "ipv6_cidr": v6,
                                            "description": description})
    assert status == 201, vpc
    return vpc


def enroll(api, vpc=None, **fields):
    body = {"public_key": pubkey(), "hostname": "host", "os": "linux"}
    if vpc:
        body["vpc_id"] = vpc
    body.update(fields)
    return api.post("/api/devices", body)


def reg_key(api, vpc_id, **fields):
    status, key, _ = api.post("/api/reg-keys", {"vpc_id": vpc_id, **fields})
    assert status == 201, key
    assert key["bearer_token"].startswith("RK:")
    return key


def tenant_snapshot(env, org):
    """Everything of organization org, as text: what another tenant must not change."""
    parts = []
    for table, where in (("vpcs", f"organization_id = '{org}'"),
                         ("security_groups", f"organization_id = '{org}'"),
                         ("reg_keys", f"organization_id = '{org}'"),
                         ("devices", f"organization_id = '{org}'"),
                         ("device_metadata", f"vpc_id IN (SELECT id FROM vpcs WHERE "
                                             f"organization_id = '{org}')"),
                         ("ipam_allocations", f"vpc_id IN (SELECT id FROM vpcs WHERE "
                                              f"organization_id = '{org}')")):
        parts.append(env.sql(f"SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), "
                             f"'') FROM {table} t WHERE {where}"))
    return parts


# --- VPCs ------------------------------------------------------------------------------------


def test_vpc_crud(env):
    alice, uid = env.person("alice")
    status, vpcs, headers = alice.get("/api/vpcs")
    assert status == 200 and headers["X-Total-Count"] == "1"
    default = vpcs[0]
    assert default == {"id": uid, "organization_id": uid, "description": default["description"],
                       "ipv4_cidr": DEFAULT_V4, "ipv6_cidr": DEFAULT_V6,
                       "private_cidr": False, "revision": default["revision"]}
    # the default VPC cannot go
    status, body, _ = alice.delete(f"/api/vpcs/{uid}")
    assert (status, body) == (400, {"error": "operation not allowed",
                                    "reason": "default vpc cannot be deleted"})

    status, extra, _ = alice.post("/api/vpcs", {"organization_id": uid, "description": "extra"})
    assert status == 201, extra
    assert extra["ipv4_cidr"] == DEFAULT_V4 and extra["private_cidr"] is False
    assert extra["description"] == "extra" and extra["organization_id"] == uid
    # ... with its default security group (same id, no rules)
    status, sg, _ = alice.get(f"/api/security-groups/{extra['id']}")
    assert status == 200, sg
    assert sg["vpc_id"] == extra["id"] and sg["inbound_rules"] == [] == sg["outbound_rules"]
    status, sgs, _ = alice.get(f"/api/vpcs/{extra['id']}/security-groups")
    assert status == 200 and [s["id"] for s in sgs] == [extra["id"]]

    status, vpcs, headers = alice.get("/api/vpcs")
    assert [v["id"] for v in vpcs] == [uid, extra["id"]] and headers["X-Total-Count"] == "2"
    status, body, _ = alice.patch(f"/api/vpcs/{extra['id']}", {"description": "renamed"})
    assert status == 200 and body["description"] == "renamed"
    assert body["revision"] > extra["revision"]
    status, got, _ = alice.get(f"/api/vpcs/{extra['id']}")
    assert (status, got) == (200, body)

    # not while a device is attached
    status, dev, _ = enroll(alice, extra["id"])
    assert status == 201, dev
    status, body, _ = alice.delete(f"/api/vpcs/{extra['id']}")
    assert (status, body) == (400, {"error": "operation not allowed", "reason":
                                    "vpc cannot be deleted while devices are still attached"})
    assert alice.delete(f"/api/devices/{dev['id']}")[0] == 200
    status, gone, _ = alice.delete(f"/api/vpcs/{extra['id']}")
    assert status == 200 and gone["id"] == extra["id"]
    assert alice.get(f"/api/vpcs/{extra['id']}")[0] == 404
    assert env.count("security_groups", f"vpc_id = '{extra['id']}'") == 0

    # private pools, and bad ones
    vpc = private_vpc(alice, uid, "10.10.0.0/24", "fd10::/64")
    assert (vpc["ipv4_cidr"], vpc["ipv6_cidr"], vpc["private_cidr"]) == \
        ("10.10.0.0/24", "fd10::/64", True)
    for body, field in (({"private_cidr": True, "ipv4_cidr": "100.64.0.0//10",
                          "ipv6_cidr": "200::/64"}, "ipv4_cidr"),
                        ({"private_cidr": True, "ipv4_cidr": "10.0.0.0/8",
                          "ipv6_cidr": "200:://64"}, "ipv6_cidr"),
                        ({"private_cidr": True, "ipv4_cidr": "10.0.0.0/31",
                          "ipv6_cidr": "fd00::/64"}, "ipv4_cidr"),
                        ({"ipv4_cidr": "10.0.0.0/8"}, "ipv4_cidr"),
                        ({"private_cidr": "yes"}, "private_cidr"),
                        ({"description": 7}, "description")):
        status, err, _ = alice.post("/api/vpcs", {"organization_id": uid, **body})
        assert status == 400 and err["field"] == field, (body, err)
    status, err, _ = alice.post("/api/vpcs", {"description": "no org"})
    assert status == 400 and err["field"] == "organization_id"
    status, err, _ = alice.post("/api/vpcs", b'{"organization_id": ')
    assert status == 400 and err["error"].startswith("request json is invalid")


# --- registration keys, enrolment, device tokens ----------------------------------------------


def test_reg_key_enrolls_device_with_device_token(env):
    alice, uid = env.person("alice")
    key = reg_key(alice, uid, description="lab key")
    assert key["vpc_id"] == uid and key["owner_id"] == uid and key["single_use"] is False
    assert key["security_group_id"] is None and key["settings"] is None
    # stored as its hash only, returned only once
    assert env.count("reg_keys", f"id = '{key['id']}' AND octet_length(token_hash) = 32") == 1
    status, got, _ = alice.get(f"/api/reg-keys/{key['id']}")
    assert status == 200 and "bearer_token" not in got and got["id"] == key["id"]
    status, keys, _ = alice.get("/api/reg-keys")
    assert [k["id"] for k in keys] == [key["id"]]

    rk = env.token(key["bearer_token"])
    status, me, _ = rk.get("/api/reg-keys/me")
    assert status == 200 and me["id"] == key["id"]
    status, dev, _ = enroll(rk, uid, endpoints=[{"source": "local",
                                                 "address": "192.168.1.5:51820"}])
    assert status == 201, dev
    assert dev["bearer_token"].startswith("DT:") and dev["owner_id"] == uid
    assert dev["security_group_id"] == uid and dev["online"] is False and dev["online_at"] is None
    v4 = dev["ipv4_tunnel_ips"][0]
    v6 = dev["ipv6_tunnel_ips"][0]
    assert v4["cidr"] == DEFAULT_V4 and v6["cidr"] == DEFAULT_V6
    assert ipaddress.ip_address(v4["address"]) in ipaddress.ip_network(DEFAULT_V4)
    assert dev["allowed_ips"] == [v4["address"] + "/32", v6["address"] + "/128"]
    assert env.count("devices", f"id = '{dev['id']}' AND reg_key_id = '{key['id']}' AND "
                                "octet_length(bearer_token_hash) = 32") == 1
    # the token is not shown again
    status, got, _ = alice.get(f"/api/devices/{dev['id']}")
    assert status == 200 and "bearer_token" not in got

    # a second device of the same VPC, by alice herself
    status, other, _ = enroll(alice, uid)
    assert status == 201, other
    status, extra, _ = alice.post("/api/vpcs", {"organization_id": uid})
    assert status == 201

    dt = env.token(dev["bearer_token"])
    assert dt.get(f"/api/vpcs/{uid}")[0] == 200
    status, devs, _ = dt.get(f"/api/vpcs/{uid}/devices")
    assert status == 200 and {d["id"] for d in devs} == {dev["id"], other["id"]}
    assert dt.get(f"/api/vpcs/{extra['id']}")[0] == 404
    assert dt.get(f"/api/security-groups/{uid}")[0] == 200
    status, body, _ = dt.patch(f"/api/devices/{dev['id']}", {
        "hostname": "renamed", "relay": True, "symmetric_nat": True,
        "endpoints": [{"source": "stun:stun.example.net:3478", "address": "[2001:db8::1]:4242"}],
        "advertise_cidrs": ["172.16.0.0/24"]})
    assert status == 200, body
    assert body["hostname"] == "renamed" and body["relay"] is True
    assert body["endpoints"] == [{"source": "stun:stun.example.net:3478",
                                  "address": "[2001:db8::1]:4242"}]
    assert body["advertise_cidrs"] == ["172.16.0.0/24"]
    assert body["revision"] > dev["revision"]
    # ... but not another device, nor its own security group, nor new devices
    status, body, _ = dt.patch(f"/api/devices/{other['id']}", {"hostname": "evil"})
    assert status == 404 and body["resource"] == "device"
    status, body, _ = dt.patch(f"/api/devices/{dev['id']}", {"security_group_id": None})
    assert status == 200  # null: unchanged
    status, body, _ = dt.patch(f"/api/devices/{dev['id']}", {"security_group_id": ""})
    assert status == 403, body
    assert enroll(dt, uid)[0] == 403
    assert dt.delete(f"/api/devices/{dev['id']}")[0] == 403
    assert dt.post("/api/vpcs", {"organization_id": uid})[0] == 403
    assert dt.post("/api/reg-keys", {"vpc_id": uid})[0] == 403
    assert dt.get("/api/reg-keys")[1] == []
    assert env.sql(f"SELECT hostname FROM devices WHERE id = '{other['id']}'") == "host"

    # a registration key enrols into its own VPC only
    status, body, _ = enroll(rk, extra["id"])
    assert status == 400 and body["field"] == "vpc_id"
    # same public key twice in a VPC: 409 with the device holding it
    status, body, _ = enroll(alice, uid, public_key=dev["public_key"])
    assert status == 409 and body["id"] == dev["id"]

    # deleting the key leaves the device and its token working
    status, body, _ = alice.delete(f"/api/reg-keys/{key['id']}")
    assert status == 200 and body["id"] == key["id"]
    assert rk.get(f"/api/vpcs/{uid}")[0] == 401
    assert dt.get(f"/api/devices/{dev['id']}")[0] == 200
    assert alice.delete(f"/api/devices/{dev['id']}")[0] == 200
    assert dt.get(f"/api/vpcs/{uid}")[0] == 401


def test_single_use_key_concurrent(env):
    alice, uid = env.person("alice")
    key = reg_key(alice, uid, single_use=True)
    rk = env.token(key["bearer_token"])
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda _: enroll(rk, uid), range(50)))
    statuses = sorted(r[0] for r in results)
    assert statuses.count(201) == 1, statuses
    assert all(400 <= s < 500 for s in statuses if s != 201), statuses
    created = next(r[1] for r in results if r[0] == 201)
    assert env.count("devices", f"reg_key_id = '{key['id']}'") == 1
    assert env.sql(f"SELECT device_id IS NOT DISTINCT FROM '{created['id']}' AND used_at IS NOT "
                   f"NULL FROM reg_keys WHERE id = '{key['id']}'") == "t"
    assert env.count("ipam_allocations", f"vpc_id = '{uid}'") == 2
    assert enroll(rk, uid)[0] in (400, 401)


def test_multi_use_key_200_concurrent(env):
    alice, uid = env.person("alice")
    vpc = private_vpc(alice, uid, "10.20.0.0/16", "fd20::/64")
    key = reg_key(alice, vpc["id"])
    rk = env.token(key["bearer_token"])
    with concurrent.futures.ThreadPoolExecutor(200) as pool:
        results = list(pool.map(lambda _: enroll(rk, vpc["id"]), range(200)))
    assert [r[0] for r in results] == [201] * 200, [r for r in results if r[0] != 201][:3]
    v4 = {r[1]["ipv4_tunnel_ips"][0]["address"] for r in results}
    v6 = {r[1]["ipv6_tunnel_ips"][0]["address"] for r in results}
    assert len(v4) == 200 and len(v6) == 200
    # the lowest addresses, past the network address
    assert v4 == {str(ipaddress.ip_address("10.20.0.1") + i) for i in range(200)}
    vid = vpc["id"]
    assert env.count("devices", f"vpc_id = '{vid}'") == 200
    assert env.count("ipam_allocations", f"vpc_id = '{vid}' AND device_id IS NOT NULL") == 400
    assert env.count("ipam_allocations", f"vpc_id = '{vid}'") == 400
    assert env.sql(f"SELECT count(DISTINCT d.ipv4_tunnel_ips->0->>'address') FROM devices d "
                   f"JOIN ipam_allocations a ON a.device_id = d.id AND host(a.address) = "
                   f"d.ipv4_tunnel_ips->0->>'address' WHERE d.vpc_id = '{vid}'") == "200"
    status, devs, headers = alice.get(f"/api/vpcs/{vid}/devices", range=[0, 9])
    assert status == 200 and len(devs) == 10 and headers["X-Total-Count"] == "200"
    # gt_revision: only what changed after
    revs = sorted(r[1]["revision"] for r in results)
    status, devs, _ = alice.get(f"/api/vpcs/{vid}/devices", gt_revision=str(revs[-4]))
    assert status == 200 and [d["revision"] for d in devs] == revs[-3:]
    assert [d["revision"] for d in devs] == sorted(d["revision"] for d in devs)


def test_ipam_requested_release_and_advertised(env):
    alice, uid = env.person("alice")
    vpc = private_vpc(alice, uid, "10.30.0.0/24", "fd30::/64")
    vid = vpc["id"]
    status, a, _ = enroll(alice, vid, ipv4_tunnel_ips=[{"address": "10.30.0.50"}])
    assert status == 201 and a["ipv4_tunnel_ips"][0]["address"] == "10.30.0.50"
    status, body, _ = enroll(alice, vid, ipv4_tunnel_ips=[{"address": "10.30.0.50"}])
    assert status == 409 and body["id"] == a["id"] and body["field"] == "ipv4_tunnel_ips"
    for bad in ("10.31.0.1", "10.30.0.0", "10.30.0.255"):
        status, body, _ = enroll(alice, vid, ipv4_tunnel_ips=[{"address": bad}])
        assert status == 400 and body["field"] == "ipv4_tunnel_ips", (bad, body)
    status, b, _ = enroll(alice, vid)
    assert status == 201 and b["ipv4_tunnel_ips"][0]["address"] == "10.30.0.1"
    assert b["ipv6_tunnel_ips"][0]["address"] == "fd30::2"  # fd30::1 is a's
    # a deleted device's addresses go back to the pool
    status, gone, _ = alice.delete(f"/api/devices/{b['id']}")
    assert status == 200 and gone["id"] == b["id"]
    assert env.count("ipam_allocations", f"device_id = '{b['id']}'") == 0
    assert env.count("ipam_allocations", f"vpc_id = '{vid}' AND host(address) = '10.30.0.1'") == 0
    status, c, _ = enroll(alice, vid)
    assert status == 201 and c["ipv4_tunnel_ips"][0]["address"] == "10.30.0.1"

    # a prefix somebody advertises is never handed out: 10.30.0.0/29 holds c's address, so
    # nobody may advertise it ...
    status, body, _ = enroll(alice, vid, advertise_cidrs=["10.30.0.0/29"])
    assert status == 409 and body["id"] == c["id"] and body["field"] == "advertise_cidrs"
    # ... so it advertises 10.30.0.8/29, and the next addresses skip it
    status, d, _ = enroll(alice, vid, advertise_cidrs=["10.30.0.8/29"])
    assert status == 201, d
    used = []
    for _ in range(8):
        status, e, _ = enroll(alice, vid)
        assert status == 201
        used.append(e["ipv4_tunnel_ips"][0]["address"])
    assert not any(ipaddress.ip_address(u) in ipaddress.ip_network("10.30.0.8/29")
                   for u in used + [d["ipv4_tunnel_ips"][0]["address"]]), used
    assert used == ["10.30.0.%d" % i for i in (3, 4, 5, 6, 7, 16, 17, 18)], used
    status, body, _ = enroll(alice, vid, ipv4_tunnel_ips=[{"address": "10.30.0.9"}])
    assert status == 409 and body["id"] == d["id"]


def test_ipam_cursor_at_the_end_searches_the_pool(env):
    """Addresses the cursor passed by (an advertised prefix, withdrawn since) are found by
    searching the pool once the cursor has none left; a full pool is a 409 that leaves
    nothing behind."""
    alice, uid = env.person("alice")
    vpc = private_vpc(alice, uid, "10.40.0.0/29", "fd40::/64")  # usable: .1 to .6
    vid = vpc["id"]
    key = reg_key(alice, vid, single_use=True)
    rk = env.token(key["bearer_token"])
    # a single-use key with a prefix: the key is marked, the holder elected, in one go
    status, a, _ = enroll(rk, vid, advertise_cidrs=["10.40.0.0/30"])
    assert status == 201, a
    assert a["ipv4_tunnel_ips"][0]["address"] == "10.40.0.4"
    assert a["advertise_cidrs"] == ["10.40.0.0/30"] and a["active_cidrs"] == ["10.40.0.0/30"]
    assert env.sql(f"SELECT device_id FROM reg_keys WHERE id = '{key['id']}'") == a["id"]
    got = [enroll(alice, vid) for _ in range(2)]
    assert [(s, d["ipv4_tunnel_ips"][0]["address"]) for s, d, _ in got] == \
        [(201, "10.40.0.5"), (201, "10.40.0.6")]
    status, body, _ = alice.patch(f"/api/devices/{a['id']}", {"advertise_cidrs": []})
    assert status == 200, body
    got = [enroll(alice, vid) for _ in range(3)]
    assert [(s, d["ipv4_tunnel_ips"][0]["address"]) for s, d, _ in got] == \
        [(201, "10.40.0.1"), (201, "10.40.0.2"), (201, "10.40.0.3")]
    before = env.count("ipam_allocations", f"vpc_id = '{vid}'")
    status, body, _ = enroll(alice, vid)
    assert status == 409 and "no free address" in body["error"], body
    assert env.count("ipam_allocations", f"vpc_id = '{vid}'") == before == 12
    assert env.count("devices", f"vpc_id = '{vid}'") == 6


# --- tenancy ---------------------------------------------------------------------------------


def test_cross_tenant_is_not_found_and_changes_nothing(env):
    alice, uid = env.person("alice")
    bob, bob_id = env.person("bob")
    vpc = private_vpc(alice, uid, "10.50.0.0/24", "fd50::/64")
    status, dev, _ = enroll(alice, vpc["id"])
    assert status == 201
    key = reg_key(alice, vpc["id"])
    status, sg, _ = alice.post("/api/security-groups", {"vpc_id": vpc["id"], "description": "x"})
    assert status == 201, sg
    assert alice.put(f"/api/devices/{dev['id']}/metadata/k", {"v": 1})[0] == 200
    before = tenant_snapshot(env, uid)

    for path, resource in ((f"/api/vpcs/{vpc['id']}", "vpc"),
                           (f"/api/vpcs/{uid}", "vpc"),
                           (f"/api/devices/{dev['id']}", "device"),
                           (f"/api/reg-keys/{key['id']}", "reg key"),
                           (f"/api/security-groups/{sg['id']}", "security group")):
        for call in (bob.get, bob.delete, lambda p: bob.patch(p, {"description": "evil",
                                                                  "hostname": "evil"})):
            status, body, _ = call(path)
            assert status == 404 and body["resource"] == resource, (path, status, body)
    for path in (f"/api/vpcs/{vpc['id']}/devices", f"/api/vpcs/{vpc['id']}/metadata",
                 f"/api/vpcs/{vpc['id']}/security-groups", f"/api/devices/{dev['id']}/metadata",
                 f"/api/devices/{dev['id']}/metadata/k"):
        assert bob.get(path)[0] == 404, path
    assert bob.put(f"/api/devices/{dev['id']}/metadata/k", {"evil": 1})[0] == 404
    assert bob.delete(f"/api/devices/{dev['id']}/metadata/k")[0] == 404
    assert bob.delete(f"/api/devices/{dev['id']}/metadata")[0] == 404
    status, body, _ = enroll(bob, vpc["id"])
    assert (status, body) == (404, {"error": "not found", "resource": "vpc"})
    assert bob.post("/api/reg-keys", {"vpc_id": vpc["id"]})[0] == 404
    assert bob.post("/api/security-groups", {"vpc_id": vpc["id"]})[0] == 404
    assert bob.post("/api/vpcs", {"organization_id": uid})[0] == 404
    for path in ("/api/vpcs", "/api/devices", "/api/reg-keys", "/api/security-groups"):
        status, items, _ = bob.get(path)
        assert status == 200
        assert not any(i.get("organization_id") == uid or i.get("vpc_id") in (uid, vpc["id"])
                       or i["id"] in (uid, vpc["id"]) for i in items), (path, items)
    # bob's device token reaches nothing of alice's either
    status, bdev, _ = enroll(bob, bob_id)
    assert status == 201
    bdt = env.token(bdev["bearer_token"])
    assert bdt.patch(f"/api/devices/{dev['id']}", {"hostname": "evil"})[0] == 404
    assert bdt.get(f"/api/vpcs/{vpc['id']}/devices")[0] == 404
    assert tenant_snapshot(env, uid) == before


# --- malformed input -------------------------------------------------------------------------


def test_malformed_device_bodies(env):
    alice, uid = env.person("alice")
    status, victim, _ = enroll(alice, uid)
    assert status == 201
    tunnel = victim["ipv4_tunnel_ips"][0]["address"]
    before = tenant_snapshot(env, uid)
    cases = [
        ({"public_key": "not a key"}, "public_key"),
        ({"public_key": base64.b64encode(os.urandom(31)).decode()}, "public_key"),
        ({"public_key": None}, "public_key"),
        ({"advertise_cidrs": ["10.0.0.0/33"]}, "advertise_cidrs[0]"),
        ({"advertise_cidrs": ["10.0.0.1/24"]}, "advertise_cidrs[0]"),
        ({"advertise_cidrs": ["192.168.0.0/16", "0.0.0.0/0"]}, "advertise_cidrs[1]"),
        ({"advertise_cidrs": ["::/0"]}, "advertise_cidrs[0]"),
        ({"advertise_cidrs": ["10.8.0.0/16", tunnel + "/32"]}, "advertise_cidrs"),
        ({"advertise_cidrs": "10.0.0.0/8"}, "advertise_cidrs"),
        ({"advertise_cidrs": ["10.9.0.0/16"] * 2}, "advertise_cidrs[1]"),
        ({"advertise_cidrs": [f"10.{i // 256}.{i % 256}.0/24" for i in range(300)]},
         "advertise_cidrs"),
        ({"endpoints": [{"source": "local", "address": "1.2.3.4"}]}, "endpoints[0].address"),
        ({"endpoints": [{"source": "carrier-pigeon", "address": "1.2.3.4:5"}]},
         "endpoints[0].source"),
        ({"endpoints": {"source": "local"}}, "endpoints"),
        ({"hostname": 5}, "hostname"),
        ({"hostname": "x" * 300}, "hostname"),
        ({"hostname": "a\nb"}, "hostname"),
        ({"relay": "yes"}, "relay"),
        ({"symmetric_nat": 1}, "symmetric_nat"),
        ({"vpc_id": "test"}, "vpc_id"),
        ({"security_group_id": 12}, "security_group_id"),
        ({"ipv4_tunnel_ips": [{"address": "fd00::1"}]}, "ipv4_tunnel_ips[0].address"),
        ({"ipv4_tunnel_ips": [{"address": "10.0.0.1"}, {"address": "10.0.0.2"}]},
         "ipv4_tunnel_ips"),
    ]
    for fields, field in cases:
        status, body, _ = enroll(alice, uid, **fields)
        assert 400 <= status < 500 and body.get("field") == field, (fields, status, body)
        assert body.get("reason") or body.get("error"), body
        # the same through PATCH where it applies (a device may advertise its own address)
        if field.split("[")[0] in ("advertise_cidrs", "endpoints", "hostname", "relay",
                                   "symmetric_nat") and status != 409:
            status, body, _ = alice.patch(f"/api/devices/{victim['id']}", fields)
            assert 400 <= status < 500 and body.get("field") == field, (fields, status, body)
    for raw in (b"[]", b"null", b"{", b'{"public_key": "a"', "\"x\"".encode()):
        status, body, _ = alice.post("/api/devices", raw)
        assert status == 400 and body["error"].startswith("request json is invalid"), raw
    status, body, _ = alice.post("/api/devices", b'{"hostname": "' + b"x" * (2 << 20) + b'"}')
    assert status == 413, body
    status, body, _ = alice.patch("/api/devices/not-a-uuid", {"hostname": "x"})
    assert status == 400 and body["field"] == "id"
    assert tenant_snapshot(env, uid) == before


def test_security_groups(env):
    alice, uid = env.person("alice")
    rules = [{"ip_protocol": "TCP", "from_port": 22, "to_port": 22,
              "ip_ranges": ["10.0.0.0/8", "192.168.1.1", "172.16.0.1-172.16.0.9"]},
             {"ip_protocol": "icmpv6", "ip_ranges": ["2001:db8::/32"]}]
    status, sg, _ = alice.post("/api/security-groups", {"vpc_id": uid, "description": "ssh",
                                                        "inbound_rules": rules})
    assert status == 201, sg
    assert sg["inbound_rules"][0] == {"ip_protocol": "tcp", "from_port": 22, "to_port": 22,
                                      "ip_ranges": ["10.0.0.0/8", "192.168.1.1",
                                                    "172.16.0.1-172.16.0.9"]}
    assert sg["inbound_rules"][1]["from_port"] == 0 and sg["outbound_rules"] == []
    before = tenant_snapshot(env, uid)
    for bad, field in (({"ip_protocol": "sctp"}, "inbound_rules[0].ip_protocol"),
                       ({"from_port": 1}, "inbound_rules[0].ip_protocol"),
                       ({"ip_protocol": "tcp", "from_port": 70000},
                        "inbound_rules[0].from_port"),
                       ({"ip_protocol": "tcp", "from_port": 90, "to_port": 80},
                        "inbound_rules[0].to_port"),
                       ({"ip_protocol": "tcp", "from_port": -1}, "inbound_rules[0].from_port"),
                       ({"ip_protocol": "udp", "ip_ranges": ["10.0.0.9-10.0.0.1"]},
                        "inbound_rules[0].ip_ranges[0]"),
                       ({"ip_protocol": "ipv4", "ip_ranges": ["fd00::/8"]},
                        "inbound_rules[0].ip_ranges[0]"),
                       ({"ip_protocol": "tcp", "ip_ranges": ["10.0.0.1/8"]},
                        "inbound_rules[0].ip_ranges[0]"),
                       ({"ip_protocol": "tcp", "ip_ranges": "10.0.0.0/8"},
                        "inbound_rules[0].ip_ranges")):
        status, body, _ = alice.patch(f"/api/security-groups/{sg['id']}",
                                      {"inbound_rules": [bad]})
        assert status == 422 and body["field"] == field, (bad, body)
    assert tenant_snapshot(env, uid) == before
    status, body, _ = alice.patch(f"/api/security-groups/{sg['id']}",
                                  {"outbound_rules": [{"ip_protocol": "udp", "from_port": 53,
                                                       "to_port": 53}]})
    assert status == 200 and body["inbound_rules"] == sg["inbound_rules"]
    assert body["outbound_rules"][0]["ip_ranges"] == [] and body["revision"] > sg["revision"]
    status, sgs, _ = alice.get("/api/security-groups", gt_revision=str(sg["revision"]))
    assert status == 200 and [s["id"] for s in sgs] == [sg["id"]]
    status, body, _ = alice.delete(f"/api/security-groups/{uid}")
    assert (status, body) == (400, {"error": "operation not allowed",
                                    "reason": "default security group cannot be deleted"})
    # a device in the group loses it with the group
    status, dev, _ = enroll(alice, uid, security_group_id=sg["id"])
    assert status == 201 and dev["security_group_id"] == sg["id"]
    status, body, _ = alice.delete(f"/api/security-groups/{sg['id']}")
    assert status == 200 and body["id"] == sg["id"]
    assert alice.get(f"/api/devices/{dev['id']}")[1]["security_group_id"] is None
    status, body, _ = enroll(alice, uid, security_group_id=sg["id"])
    assert status == 404 and body["resource"] == "security group"


def test_device_metadata(env):
    alice, uid = env.person("alice")
    status, dev, _ = enroll(alice, uid)
    assert status == 201
    base = f"/api/devices/{dev['id']}/metadata"
    status, md, _ = alice.put(base + "/tcp:1024", {"address": "backend:8080"})
    assert status == 200 and md == {"device_id": dev["id"], "key": "tcp:1024",
                                    "value": {"address": "backend:8080"},
                                    "revision": md["revision"]}
    assert alice.put(base + "/udp:1024", {"address": "asterisk:5060"})[0] == 200
    status, md2, _ = alice.put(base + "/tcp:1024", {"address": "backend:9090"})
    assert status == 200 and md2["revision"] > md["revision"]
    assert alice.get(base + "/tcp:1024")[1]["value"] == {"address": "backend:9090"}
    status, items, _ = alice.get(base)
    assert [i["key"] for i in items] == ["tcp:1024", "udp:1024"]
    status, items, _ = alice.get(base, prefix="udp:,bad:")
    assert [i["key"] for i in items] == ["udp:1024"]
    status, items, _ = alice.get(f"/api/vpcs/{uid}/metadata", key="tcp:1024")
    assert [i["value"] for i in items] == [{"address": "backend:9090"}]
    status, items, _ = alice.get(f"/api/vpcs/{uid}/metadata", gt_revision=str(md["revision"]))
    assert {i["key"] for i in items} == {"tcp:1024", "udp:1024"}
    # the device writes its own
    dt = env.token(dev["bearer_token"])
    assert dt.put(base + "/self", [1, 2, 3])[0] == 200
    status, body, _ = alice.delete(base + "/tcp:1024")
    assert (status, body) == (204, None)
    assert alice.get(base + "/tcp:1024")[0] == 404
    assert alice.delete(base + "/tcp:1024")[0] == 404
    assert alice.delete(base)[0] == 204
    assert alice.get(base)[1] == []


def test_reg_key_options_and_lists(env):
    alice, uid = env.person("alice")
    status, sg, _ = alice.post("/api/security-groups", {"vpc_id": uid, "description": "rk"})
    assert status == 201
    key = reg_key(alice, uid, security_group_id=sg["id"], description="with group",
                  expires_at="2099-01-02T03:04:05Z", settings={"relay": True})
    assert key["security_group_id"] == sg["id"] and key["settings"] == {"relay": True}
    assert key["expires_at"] == "2099-01-02T03:04:05Z"
    status, dev, _ = enroll(env.token(key["bearer_token"]), hostname="b-host")
    assert status == 201 and dev["security_group_id"] == sg["id"] and dev["vpc_id"] == uid
    status, body, _ = alice.patch(f"/api/reg-keys/{key['id']}",
                                  {"description": "changed", "expires_at": None,
                                   "settings": None})
    assert status == 200, body
    assert (body["description"], body["expires_at"], body["settings"]) == ("changed", None, None)
    status, body, _ = alice.patch(f"/api/reg-keys/{key['id']}", {"expires_at": "tomorrow"})
    assert status == 422 and body["field"] == "expires_at"
    status, body, _ = alice.post("/api/reg-keys", {"vpc_id": "test"})
    assert status == 400 and body["field"] == "vpc_id"
    status, body, _ = alice.post("/api/reg-keys", {"vpc_id": uid, "security_group_id":
                                                   "00000000-0000-0000-0000-000000000000"})
    assert status == 404 and body["resource"] == "security group"
    # an expired key enrols nothing
    old = reg_key(alice, uid, expires_at="2001-01-01T00:00:00Z")
    assert enroll(env.token(old["bearer_token"]))[0] == 401
    assert alice.get("/api/reg-keys/me")[0] == 404

    # lists: sort, filter, range, X-Total-Count
    for name in ("c-host", "a-host"):
        assert enroll(alice, uid, hostname=name)[0] == 201
    status, devs, headers = alice.get("/api/devices", sort=["hostname", "ASC"])
    assert [d["hostname"] for d in devs] == ["a-host", "b-host", "c-host"]
    assert headers["X-Total-Count"] == "3"
    status, devs, headers = alice.get("/api/devices", sort=["hostname", "DESC"], range=[1, 1])
    assert [d["hostname"] for d in devs] == ["b-host"] and headers["X-Total-Count"] == "3"
    status, devs, _ = alice.get("/api/devices", filter={"hostname": "c-host"})
    assert [d["hostname"] for d in devs] == ["c-host"]
    status, body, _ = alice.get("/api/devices", filter={"vpc_id": "not-a-uuid"})
    assert status == 400, body
    status, body, _ = alice.get("/api/devices", sort=["bearer_token_hash", "ASC"])
    assert status == 400, body
