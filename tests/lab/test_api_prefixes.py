# SPDX-License-Identifier: GPL-2.0-or-later
"""Moving addresses: prefixes several devices of a VPC advertise, each with one active
holder (a device's active_cidrs), against a real PostgreSQL and the test OIDC provider.

Devices are enrolled with a registration key; a device is online while a watch stream
opened with its token and ?public_key= is open.  nexsrv runs with prefix-failover-grace
500 (ms).  Checked: the newest claim becomes active and the watch streams see both devices
change; a withdrawn holder hands over to the other claimant; a higher priority wins over a
newer claim; a deleted holder hands over; a holder that goes offline hands over once the
grace has passed (not before), and when it comes back it stays standby unless its priority
is higher; a device just enrolled counts as online for the grace; with every claimant
offline the holder keeps the prefix; exit nodes may advertise default routes (and get
tunnel addresses), others may not; claiming another device's tunnel address, a default
route without exit_node, a malformed prefix or priority are 4xx that change nothing in the
database; two replicas on one database under concurrent claims agree on one holder.
"""

import base64
import concurrent.futures
import http.client
import json
import os
import queue
import secrets
import socket
import threading
import time
import urllib.parse

import pytest

import nexsrv_env
from api import Api
from lab import wait_until

GRACE_MS = 500
P = "10.99.0.0/24"


class Stream:
    """A watch stream of a VPC, read line by line by a thread of its own."""

    def __init__(self, base, token, vpc, body, **query):
        u = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
        url = f"/api/vpcs/{vpc}/events"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        self.conn.request("POST", url, body=json.dumps(body),
                          headers={"Authorization": f"Bearer {token}",
                                   "Content-Type": "application/json"})
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.read()
        self.conn.sock.settimeout(None)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            while line := self.resp.readline():
                if line != b"\n":
                    self.lines.put(json.loads(line))
        except Exception:  # noqa: BLE001 - closed under the reader: the end
            pass
        self.lines.put(None)

    def changes_until(self, done, timeout=5.0):
        """The device values that came until done(values) holds."""
        values = []
        deadline = time.monotonic() + timeout
        while not done(values):
            try:
                event = self.lines.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                raise AssertionError(f"not within {timeout} s: {values}") from None
            assert event is not None, "the stream ended"
            if event.get("type") == "change":
                values.append(event["value"])
        return values

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


class Env(nexsrv_env.Env):
    def person(self, name):
        api = Api(self.base, self.idp.mint_token(f"{name}-{secrets.token_hex(4)}"))
        status, me, _ = api.get("/api/users/me")
        assert status == 200, me
        return api, me["id"]

    def tenant(self, name):
        """A person with a registration key for their default VPC: (api, vpc, key Api)."""
        api, uid = self.person(name)
        status, key, _ = api.post("/api/reg-keys", {"vpc_id": uid})
        assert status == 201, key
        return api, uid, self.token(key["bearer_token"])

    def enroll(self, key, vpc, **fields):
        body = {"vpc_id": vpc, "public_key": pubkey(), "hostname": "h", "os": "linux"}
        body.update(fields)
        status, dev, _ = key.post("/api/devices", body)
        assert status == 201, dev
        dev["api"] = self.token(dev["bearer_token"])
        return dev

    def online(self, dev):
        """Keeps dev online: its own watch stream with public_key=."""
        s = Stream(self.base, dev["api"].token, dev["vpc_id"], [{"kind": "vpc"}],
                   public_key=dev["public_key"])
        wait_until(lambda: self.is_online(dev), timeout=5, what="device online")
        return s

    def is_online(self, dev):
        return self.sql(f"SELECT online FROM devices WHERE id = '{dev['id']}'") == "t"

    def active(self, dev):
        status, body, _ = dev["api"].get(f"/api/devices/{dev['id']}")
        assert status == 200, body
        return body["active_cidrs"]

    def holders(self, vpc, prefix=P):
        """The devices of vpc whose active_cidrs hold prefix, from the database."""
        return self.sql(f"SELECT string_agg(id::text, ',' ORDER BY id) FROM devices WHERE "
                        f"vpc_id = '{vpc}' AND '{prefix}'::cidr = ANY (active_cidrs)").split(",")

    def vpc_rows(self, vpc):
        """Every row of vpc in the tables a device change touches, as text."""
        out = []
        for table in ("devices", "device_prefix_claims", "ipam_allocations", "tombstones",
                      "device_metadata"):
            out.append(self.sql(f"SELECT coalesce(string_agg(t::text, '|' ORDER BY t::text), "
                                f"'') FROM {table} t WHERE vpc_id = '{vpc}'"))
        return out


@pytest.fixture(scope="module")
def env(postgres_cluster):
    extra = nexsrv_env.NO_RATE_LIMIT + f" prefix-failover-grace {GRACE_MS}\n"
    with nexsrv_env.nexsrv_env(postgres_cluster, "test_api_prefixes", extra=extra,
                               env_class=Env) as e:
        yield e


def pubkey():
    return base64.b64encode(os.urandom(32)).decode()


def patch(dev, **fields):
    status, body, _ = dev["api"].patch(f"/api/devices/{dev['id']}", fields)
    assert status == 200, body
    return body


def test_newest_claim_withdraw_priority_delete(env):
    alice, vpc, key = env.tenant("alice")
    a = env.enroll(key, vpc, hostname="a")
    b = env.enroll(key, vpc, hostname="b")
    assert a["active_cidrs"] == [] and a["priority"] == 0 and a["exit_node"] is False
    sa, sb = env.online(a), env.online(b)
    status, now, _ = alice.get(f"/api/devices/{b['id']}")
    watcher = Stream(env.base, alice.token, vpc,
                     [{"kind": "device", "at_tail": True, "gt_revision": now["revision"]}])
    try:
        body = patch(a, advertise_cidrs=[P, "192.0.2.7/32"])
        assert body["active_cidrs"] == [P, "192.0.2.7/32"], body
        seen = watcher.changes_until(lambda v: any(x["id"] == a["id"] for x in v))
        assert seen[-1]["active_cidrs"] == [P, "192.0.2.7/32"]

        # B claims it too: the newest claim is active.  Both devices change, and the
        # watchers see exactly that.
        body = patch(b, advertise_cidrs=["fd00:99::/64", P])
        assert body["active_cidrs"] == ["fd00:99::/64", P], body
        assert body["advertise_cidrs"] == ["fd00:99::/64", P]
        assert env.active(a) == ["192.0.2.7/32"]
        seen = watcher.changes_until(lambda v: {x["id"] for x in v} >= {a["id"], b["id"]})
        last = {x["id"]: x for x in seen}
        assert last[a["id"]]["active_cidrs"] == ["192.0.2.7/32"]
        assert last[b["id"]]["active_cidrs"] == ["fd00:99::/64", P]
        assert last[a["id"]]["advertise_cidrs"] == [P, "192.0.2.7/32"]  # unchanged meaning
        assert env.holders(vpc) == [b["id"]]

        # B withdraws it: A again.
        body = patch(b, advertise_cidrs=["fd00:99::/64"])
        assert body["active_cidrs"] == ["fd00:99::/64"]
        assert env.active(a) == [P, "192.0.2.7/32"]
        # B claims it again (a new claim, the newest): B.
        assert patch(b, advertise_cidrs=["fd00:99::/64", P])["active_cidrs"] == \
            ["fd00:99::/64", P]
        assert env.active(a) == ["192.0.2.7/32"]

        # Priority: A's higher priority wins over B's newer claim; then B's higher one.
        body = patch(a, priority=10)
        assert body["priority"] == 10 and body["active_cidrs"] == [P, "192.0.2.7/32"]
        assert env.active(b) == ["fd00:99::/64"]
        assert patch(b, priority=20)["active_cidrs"] == ["fd00:99::/64", P]
        assert env.active(a) == ["192.0.2.7/32"]

        # The holder is deleted: A.
        status, body, _ = alice.delete(f"/api/devices/{b['id']}")
        assert status == 200, body
        assert env.active(a) == [P, "192.0.2.7/32"]
        assert env.holders(vpc) == [a["id"]]
        assert env.count("device_prefix_claims", f"device_id = '{b['id']}'") == 0
        seen = watcher.changes_until(
            lambda v: any(x["id"] == a["id"] and P in x["active_cidrs"] for x in v))
    finally:
        watcher.close()
        sa.close()
        sb.close()


def test_failover_after_grace_and_standby_on_return(env):
    _, vpc, key = env.tenant("bob")
    a = env.enroll(key, vpc, hostname="a")
    b = env.enroll(key, vpc, hostname="b")
    sa, sb = env.online(a), env.online(b)
    try:
        patch(a, advertise_cidrs=[P])
        assert patch(b, advertise_cidrs=[P])["active_cidrs"] == [P]

        # B goes offline: A takes over once the grace has passed, not before.
        sb.close()
        wait_until(lambda: not env.is_online(b), timeout=5, what="B offline")
        wait_until(lambda: env.active(a) == [P], timeout=5, what="A active")
        assert env.active(b) == []
        waited = float(env.sql(
            f"SELECT extract(epoch FROM c.active_at - d.offline_at) FROM "
            f"device_prefix_claims c, devices d WHERE c.device_id = '{a['id']}' AND "
            f"c.prefix = '{P}' AND d.id = '{b['id']}'"))
        assert GRACE_MS / 1000 <= waited < GRACE_MS / 1000 + 2, waited

        # B comes back: it stays standby (same priority)...
        sb = env.online(b)
        time.sleep(GRACE_MS / 1000 * 2)
        assert env.active(a) == [P] and env.active(b) == []
        # ...unless its priority is higher: then it takes the prefix at once, and again
        # each time it comes back.
        assert patch(b, priority=5)["active_cidrs"] == [P]
        sb.close()
        wait_until(lambda: env.active(a) == [P], timeout=5, what="A active again")
        sb = env.online(b)
        assert env.active(b) == [P] and env.active(a) == []

        # A device just enrolled counts as online for the grace: its claim, the newest,
        # is active; it never watches, so after the grace the prefix goes back to B.
        n = env.enroll(key, vpc, hostname="n", advertise_cidrs=[P], priority=5)
        assert n["active_cidrs"] == [P], n
        assert env.active(b) == []
        wait_until(lambda: env.active(b) == [P], timeout=5, what="B active after N's grace")
        assert env.active(n) == []
    finally:
        sa.close()
        sb.close()


def test_everyone_offline_keeps_the_holder(env):
    _, vpc, key = env.tenant("carol")
    a = env.enroll(key, vpc, hostname="a")
    b = env.enroll(key, vpc, hostname="b")
    sa, sb = env.online(a), env.online(b)
    patch(a, advertise_cidrs=[P])
    patch(b, advertise_cidrs=[P])
    assert env.holders(vpc) == [b["id"]]
    sa.close()
    wait_until(lambda: not env.is_online(a), timeout=5, what="A offline")
    sb.close()
    wait_until(lambda: not env.is_online(b), timeout=5, what="B offline")
    time.sleep(GRACE_MS / 1000 * 3)
    assert env.holders(vpc) == [b["id"]]
    # The first to come back takes it.
    sa = env.online(a)
    try:
        assert env.holders(vpc) == [a["id"]]
    finally:
        sa.close()


def test_exit_nodes_and_bad_input_change_nothing(env):
    alice, vpc, key = env.tenant("dave")
    a = env.enroll(key, vpc, hostname="a", advertise_cidrs=[P])
    b = env.enroll(key, vpc, hostname="b")
    b_tunnel = b["ipv4_tunnel_ips"][0]["address"]
    b_tunnel6 = b["ipv6_tunnel_ips"][0]["address"]

    # An exit node may advertise default routes, still gets tunnel addresses, and holds them.
    e = env.enroll(key, vpc, hostname="exit", exit_node=True,
                   advertise_cidrs=["0.0.0.0/0", "::/0"])
    assert e["exit_node"] is True and e["active_cidrs"] == ["0.0.0.0/0", "::/0"], e
    assert e["ipv4_tunnel_ips"][0]["address"] and e["ipv6_tunnel_ips"][0]["address"]
    e2 = env.enroll(key, vpc, hostname="exit2")
    assert patch(e2, exit_node=True, advertise_cidrs=["0.0.0.0/0"])["active_cidrs"] == \
        ["0.0.0.0/0"]
    assert env.active(e) == ["::/0"]

    before = env.vpc_rows(vpc)
    refused = [
        # another device's tunnel address (409 naming it)
        (a, {"advertise_cidrs": [P, b_tunnel + "/32"]}, 409, "advertise_cidrs"),
        (a, {"advertise_cidrs": [b_tunnel6 + "/128"]}, 409, "advertise_cidrs"),
        (a, {"advertise_cidrs": ["100.64.0.0/10"]}, 409, "advertise_cidrs"),
        # default routes from devices that are not exit nodes
        (a, {"advertise_cidrs": [P, "0.0.0.0/0"]}, 400, "advertise_cidrs[1]"),
        (a, {"advertise_cidrs": ["::/0"]}, 400, "advertise_cidrs[0]"),
        (a, {"advertise_cidrs": ["0.0.0.0/0"], "exit_node": False}, 400,
         "advertise_cidrs[0]"),
        (e, {"exit_node": False}, 400, "exit_node"),
        (e, {"exit_node": False, "advertise_cidrs": ["::/0"]}, 400, "advertise_cidrs[0]"),
        # malformed prefixes
        (a, {"advertise_cidrs": ["10.99.0.0/33"]}, 400, "advertise_cidrs[0]"),
        (a, {"advertise_cidrs": ["10.99.0.1/24"]}, 400, "advertise_cidrs[0]"),
        (a, {"advertise_cidrs": ["ten.99.0.0/24"]}, 400, "advertise_cidrs[0]"),
        (a, {"advertise_cidrs": [P, 7]}, 400, "advertise_cidrs[1]"),
        (a, {"advertise_cidrs": [P, P]}, 400, "advertise_cidrs[1]"),
        # priority and exit_node
        (a, {"priority": -1}, 400, "priority"),
        (a, {"priority": 1001}, 400, "priority"),
        (a, {"priority": 2 ** 40}, 400, "priority"),
        (a, {"priority": "high"}, 400, "priority"),
        (a, {"priority": 1.5}, 400, "priority"),
        (a, {"exit_node": "yes"}, 400, "exit_node"),
    ]
    for dev, fields, code, field in refused:
        status, body, _ = dev["api"].patch(f"/api/devices/{dev['id']}", fields)
        assert status == code and body.get("field") == field, (fields, status, body)
        assert body.get("reason") or body.get("error"), body
    # The same at enrolment, where it applies.
    refused = [
        ({"advertise_cidrs": [P, b_tunnel + "/32"]}, 409, "advertise_cidrs"),
        ({"advertise_cidrs": ["0.0.0.0/0"]}, 400, "advertise_cidrs[0]"),
        ({"advertise_cidrs": [P, "::/0"], "exit_node": False}, 400, "advertise_cidrs[1]"),
        ({"advertise_cidrs": ["10.99.0.0/33"]}, 400, "advertise_cidrs[0]"),
        ({"priority": 1001}, 400, "priority"),
        ({"exit_node": 1}, 400, "exit_node"),
    ]
    for fields, code, field in refused:
        status, body, _ = key.post("/api/devices", {"vpc_id": vpc, "public_key": pubkey(),
                                                    **fields})
        assert status == code and body.get("field") == field, (fields, status, body)
    assert env.vpc_rows(vpc) == before

    # Taking its default route back turns an exit node into a plain device.
    body = patch(e, exit_node=False, advertise_cidrs=[])
    assert body["exit_node"] is False and body["active_cidrs"] == []
    assert env.active(e2) == ["0.0.0.0/0"]


def test_replicas_agree_under_concurrent_claims(env):
    alice, vpc, key = env.tenant("erin")
    replica, base2 = nexsrv_env.start_nexsrv(env.lab, env.db.conninfo, env.idp,
                                             extra=nexsrv_env.NO_RATE_LIMIT +
                                             f" prefix-failover-grace {GRACE_MS}\n")
    streams = []
    try:
        devs = [env.enroll(key, vpc, hostname=f"d{i}") for i in range(12)]
        streams = [env.online(d) for d in devs]
        apis = [Api(env.base if i % 2 else base2, d["api"].token) for i, d in enumerate(devs)]

        def claim(i):
            status, body, _ = apis[i].patch(f"/api/devices/{devs[i]['id']}",
                                            {"advertise_cidrs": [P, f"10.98.{i}.0/24"]})
            assert status == 200, body
            return body

        for _ in range(2):  # claim, withdraw everything, claim again
            with concurrent.futures.ThreadPoolExecutor(len(devs)) as pool:
                list(pool.map(claim, range(len(devs))))
            holders = env.holders(vpc)
            newest = env.sql(f"SELECT device_id FROM device_prefix_claims WHERE vpc_id = "
                             f"'{vpc}' AND prefix = '{P}' ORDER BY claimed_at DESC LIMIT 1")
            assert holders == [newest]
            for d in devs:  # each holds its own prefix
                assert any(c.startswith("10.98.") for c in env.active(d))
            with concurrent.futures.ThreadPoolExecutor(len(devs)) as pool:
                list(pool.map(lambda i: apis[i].patch(f"/api/devices/{devs[i]['id']}",
                                                      {"advertise_cidrs": []}),
                              range(len(devs))))
            assert env.holders(vpc) == [""]
            assert env.count("device_prefix_claims", f"vpc_id = '{vpc}'") == 0
    finally:
        for s in streams:
            s.close()
        assert replica.stop() == 0, replica.proc.log(60)
        log = replica.proc.log()
        replica.cleanup()
        assert nexsrv_env.sanitizer_report(log) is None, log


def test_grace_is_configuration(env):
    """prefix-failover-grace: in the running configuration, range checked, changed at run
    time."""
    d = env.daemon

    def running():
        r = d.nexsh("show running-config")
        assert r.returncode == 0, r.stderr
        return r.stdout

    assert f" prefix-failover-grace {GRACE_MS}\n" in running()
    for bad in ("50", "600001", "fast"):
        r = d.nexsh("configure terminal", "controller", f"prefix-failover-grace {bad}")
        assert r.returncode != 0, bad
        assert f" prefix-failover-grace {GRACE_MS}\n" in running()
    r = d.nexsh("configure terminal", "controller", "prefix-failover-grace 700")
    assert r.returncode == 0, r.stderr
    try:
        assert " prefix-failover-grace 700\n" in running()
    finally:
        r = d.nexsh("configure terminal", "controller", f"prefix-failover-grace {GRACE_MS}")
        assert r.returncode == 0, r.stderr
