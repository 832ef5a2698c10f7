# SPDX-License-Identifier: GPL-2.0-or-later
"""nexsrv's watch streams end to end (POST /api/vpcs/{id}/events, POST /api/events) against a
real PostgreSQL and the test OIDC provider, read line by line as an agent reads them.

Checked: the original's API scenario request by request (initial list merged in revision
order with each kind's tail, then changes as they commit, a delete as "delete"); resuming
from a revision gives only what is newer; at_tail suppresses the tail; device-metadata key
prefixes; a resume from before the tombstone horizon gets the "re-list" error and the end
of the stream; public_key= keeps the device online exactly while its stream is open (and
a stop marks it offline); a deleted VPC, or the deleted device of a device token, ends the
stream after the deletes it caused; validation and tenancy (400 naming the field, 404 out
of reach, 403 for a registration key); a change made through a second nexsrv on the same
database reaches a stream on the first within a second; a change committed while nexsrv had
lost its LISTEN connection arrives after the reconnect; 200 idle streams on one VPC all get
one change while nexsrv's thread count stays small; a client that does not read is cut off
with an error line; heartbeats (empty lines) arrive; `show nexodus watchers` lists the
streams.  nexsrv runs with a 500 ms heartbeat (the test-only environment variable) and must
exit cleanly with no sanitizer report, the replica too.
"""

import base64
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
from fixtures import PG_BIN
from lab import wait_until

HEARTBEAT_ENV = "NEXSRV_TEST_WATCH_HEARTBEAT_MS"
FANOUT_SPLIT_ENV = "NEXSRV_TEST_WATCH_FANOUT_SPLIT"
HEARTBEAT_MS = 500
CONTENT_TYPE = "application/json;stream=watch"


class Watch:
    """One watch stream, read line by line by a thread of its own.

    .status, .headers; .body for a refused request.  next() returns the next event (an
    object), skipping heartbeats unless asked; None at the end of the stream.
    """

    def __init__(self, base, token, path, body, query=None, rcvbuf=None, read=True):
        u = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
        if rcvbuf:  # a small window: the server's writes back up sooner
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(15)
            self.sock.connect((u.hostname, u.port))
            self.conn.sock = self.sock
        else:
            self.conn.connect()
            self.sock = self.conn.sock
        url = path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.conn.request("POST", url, body=data, headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = self.resp.headers
        self.lines = queue.Queue()
        self.eof = False
        self.body = None
        if self.status != 200:
            self.body = json.loads(self.resp.read() or b"null")
            self.conn.close()
            return
        self.sock.settimeout(None)
        self.thread = threading.Thread(target=self._read, daemon=True)
        if read:
            self.thread.start()

    def start(self):
        """Starts reading a stream opened with read=False."""
        self.thread.start()

    def _read(self):
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                self.lines.put(line.decode())
        except Exception:  # noqa: BLE001 - closed under the reader: the end
            pass
        self.lines.put(None)

    def next(self, timeout=5.0, heartbeats=False):
        deadline = time.monotonic() + timeout
        while True:
            if self.eof:
                return None
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.001))
            except queue.Empty:
                raise AssertionError(f"no event within {timeout} s") from None
            if line is None:
                self.eof = True
                return None
            if line == "\n":
                if heartbeats:
                    return ""
                continue
            assert line.endswith("\n") and "\n" not in line[:-1], line
            return json.loads(line)

    def take(self, n, timeout=5.0):
        return [self.next(timeout) for _ in range(n)]

    def quiet(self, seconds=0.3):
        """Nothing but heartbeats arrives for a while."""
        try:
            event = self.next(timeout=seconds)
        except AssertionError:
            return True
        raise AssertionError(f"unexpected event {event}")

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


class Env(nexsrv_env.Env):
    def person(self, name):
        api = Api(self.base, self.idp.mint_token(f"{name}-{secrets.token_hex(4)}"))
        status, me, _ = api.get("/api/users/me")
        assert status == 200, me
        return api, me["id"]

    def watch(self, api, vpc, body, base=None, rcvbuf=None, read=True, **query):
        return Watch(base or self.base, api.token, f"/api/vpcs/{vpc}/events", body,
                     query or None, rcvbuf=rcvbuf, read=read)

    def online(self, device):
        return self.sql(f"SELECT online FROM devices WHERE id = '{device}'") == "t"


@pytest.fixture(scope="module")
def env(postgres_cluster):
    # Two streams of a VPC are enough for its changes to go out from two threads here.
    os.environ[HEARTBEAT_ENV] = str(HEARTBEAT_MS)
    os.environ[FANOUT_SPLIT_ENV] = "2"
    try:
        with nexsrv_env.nexsrv_env(postgres_cluster, "test_api_events",
                                   extra=nexsrv_env.NO_RATE_LIMIT, env_class=Env) as e:
            yield e
    finally:
        del os.environ[HEARTBEAT_ENV]
        del os.environ[FANOUT_SPLIT_ENV]


def pubkey():
    return base64.b64encode(os.urandom(32)).decode()


def enroll(api, vpc, **fields):
    body = {"vpc_id": vpc, "public_key": pubkey(), "hostname": "host", "os": "linux"}
    body.update(fields)
    status, dev, _ = api.post("/api/devices", body)
    assert status == 201, dev
    return dev


def public(dev):
    """A device as reads return it (the token only comes with the enrolment)."""
    return {k: v for k, v in dev.items() if k != "bearer_token"}


def patched(api, dev, **fields):
    status, body, _ = api.patch(f"/api/devices/{dev['id']}", fields)
    assert status == 200, body
    return body


def tail(kind):
    return {"kind": kind, "type": "tail"}


# --- the original's scenario -------------------------------------------------------------------


def test_events_api_scenario(env):
    """nexodus-features/events-api.feature, request by request."""
    oliver, oliver_id = env.person("oliver")
    oscar, oscar_id = env.person("oscar")
    status, inv, _ = oscar.post("/api/invitations", {"user_id": oliver_id,
                                                     "organization_id": oscar_id})
    assert status == 201, inv
    assert oliver.post(f"/api/invitations/{inv['id']}/accept")[0] == 204

    status, sg, _ = oscar.get(f"/api/security-groups/{oscar_id}")
    assert status == 200 and sg["description"] == "default vpc security group"
    device1 = enroll(oscar, oscar_id, hostname="device1", symmetric_nat=True)

    w = env.watch(oliver, oscar_id, [{"kind": "security-group", "gt_revision": 0},
                                     {"kind": "device", "gt_revision": 0},
                                     {"kind": "device-metadata", "gt_revision": 0}])
    try:
        assert w.status == 200
        assert w.headers["Content-Type"] == CONTENT_TYPE
        assert w.take(5) == [
            tail("device-metadata"),
            {"kind": "security-group", "type": "change", "value": sg},
            tail("security-group"),
            {"kind": "device", "type": "change", "value": public(device1)},
            tail("device"),
        ]
        w.quiet()

        device2 = enroll(oscar, oscar_id, hostname="device2")
        assert w.next() == {"kind": "device", "type": "change", "value": public(device2)}

        status, md, _ = oscar.put(f"/api/devices/{device1['id']}/metadata/tcp:1024",
                                  {"address": "backend:8080"})
        assert status == 200, md
        assert w.next() == {"kind": "device-metadata", "type": "change", "value": md}

        status, sg2, _ = oscar.patch(f"/api/security-groups/{oscar_id}",
                                     {"id": oscar_id, "organization_id": oscar_id,
                                      "description": "update"})
        assert status == 200 and sg2["description"] == "update"
        assert w.next() == {"kind": "security-group", "type": "change", "value": sg2}

        d1 = patched(oscar, device1, hostname="renamed")
        assert d1["revision"] > device1["revision"]
        assert w.next() == {"kind": "device", "type": "change", "value": d1}

        status, gone, _ = oscar.delete(f"/api/devices/{device2['id']}")
        assert status == 200
        event = w.next()
        assert (event["kind"], event["type"]) == ("device", "delete")
        # The REST rendering of the row as it was; its revision is the delete's own.
        assert event["value"]["revision"] > gone["revision"]
        assert dict(event["value"], revision=gone["revision"]) == gone
        w.quiet()
    finally:
        w.close()


# --- resuming ----------------------------------------------------------------------------------


def test_resume_and_at_tail(env):
    alice, uid = env.person("alice")
    a = enroll(alice, uid, hostname="a")
    b = enroll(alice, uid, hostname="b")
    b2 = patched(alice, b, hostname="b2")
    c = enroll(alice, uid, hostname="c")

    # From a's revision: b (as it is now) and c, then the tail.
    w = env.watch(alice, uid, [{"kind": "device", "gt_revision": a["revision"]}])
    try:
        assert w.take(3) == [{"kind": "device", "type": "change", "value": public(b2)},
                             {"kind": "device", "type": "change", "value": public(c)},
                             tail("device")]
        w.quiet()
    finally:
        w.close()

    # at_tail from the newest revision: no list, no tail, only what comes next.
    w = env.watch(alice, uid, [{"kind": "device", "gt_revision": c["revision"],
                                "at_tail": True}])
    try:
        w.quiet()
        a2 = patched(alice, a, hostname="a2")
        assert w.next() == {"kind": "device", "type": "change", "value": a2}
    finally:
        w.close()

    # at_tail from 0: the whole list (a resuming client still catches up), but no tail.
    w = env.watch(alice, uid, [{"kind": "device", "at_tail": True}])
    try:
        got = w.take(3)
        assert [e["value"]["hostname"] for e in got] == ["b2", "c", "a2"]
        assert all(e["type"] == "change" for e in got)
        w.quiet()
    finally:
        w.close()


def test_too_old_revision_must_relist(env):
    alice, uid = env.person("alice")
    old = enroll(alice, uid, hostname="old")
    assert alice.delete(f"/api/devices/{old['id']}")[0] == 200
    deleted_at = int(env.sql(f"SELECT revision FROM tombstones WHERE id = '{old['id']}'"))
    # Without a purge the delete is still seen by a client resuming from before it.
    w = env.watch(alice, uid, [{"kind": "device", "gt_revision": old["revision"]}])
    try:
        event = w.next()
        assert (event["type"], event["value"]["id"]) == ("delete", old["id"])
        assert event["value"]["revision"] == deleted_at
    finally:
        w.close()

    env.sql("SELECT nexodus_gc_tombstones('0 seconds')")
    horizon = int(env.sql("SELECT revision FROM tombstone_horizon"))
    assert horizon >= deleted_at
    w = env.watch(alice, uid, [{"kind": "security-group"},
                               {"kind": "device", "gt_revision": old["revision"]}])
    try:
        assert w.status == 200
        error = w.next()
        assert error["type"] == "error" and error["value"]["code"] == 410, error
        assert "re-list" in error["value"]["error"]
        assert set(error) == {"type", "value"} and set(error["value"]) == {"error", "code"}
        assert w.next() is None  # and the stream ends
    finally:
        w.close()
    # From the horizon itself, or a full list, all is well.
    for gt in (horizon, 0):
        w = env.watch(alice, uid, [{"kind": "device", "gt_revision": gt}])
        try:
            events = []
            while not events or events[-1]["type"] != "tail":
                events.append(w.next())
            assert all(e["type"] in ("change", "tail") for e in events)
        finally:
            w.close()


# --- kinds and filters -------------------------------------------------------------------------


def test_device_metadata_prefix(env):
    alice, uid = env.person("alice")
    dev = enroll(alice, uid)
    put = {}
    for key in ("tcp:80", "udp:53", "tcp:443"):
        status, md, _ = alice.put(f"/api/devices/{dev['id']}/metadata/{key}", {"k": key})
        assert status == 200
        put[key] = md
    w = env.watch(alice, uid, [{"kind": "device-metadata", "options": {"prefix": ["tcp:"]}}])
    w2 = env.watch(alice, uid, [{"kind": "device-metadata",
                                 "options": {"prefixes": ["udp:", "x"]}}])
    try:
        assert w.take(3) == [{"kind": "device-metadata", "type": "change", "value": put[k]}
                             for k in ("tcp:80", "tcp:443")] + [tail("device-metadata")]
        assert w2.take(2) == [{"kind": "device-metadata", "type": "change",
                               "value": put["udp:53"]}, tail("device-metadata")]
        status, md, _ = alice.put(f"/api/devices/{dev['id']}/metadata/udp:54", {"k": 1})
        assert w2.next() == {"kind": "device-metadata", "type": "change", "value": md}
        status, md, _ = alice.put(f"/api/devices/{dev['id']}/metadata/tcp:8080", {"k": 2})
        assert w.next() == {"kind": "device-metadata", "type": "change", "value": md}
        assert alice.delete(f"/api/devices/{dev['id']}/metadata/tcp:80")[0] == 204
        event = w.next()
        assert (event["type"], event["value"]["key"]) == ("delete", "tcp:80")
        assert event["value"]["device_id"] == dev["id"]
        assert event["value"]["value"] == {"k": "tcp:80"}
        w.quiet(0.2)
        w2.quiet(0.2)
    finally:
        w.close()
        w2.close()


def test_vpc_kind_and_vpc_deletion(env):
    alice, uid = env.person("alice")
    status, vpc, _ = alice.post("/api/vpcs", {"organization_id": uid, "description": "x"})
    assert status == 201
    w = Watch(env.base, alice.token, "/api/events",
              [{"kind": "vpc", "options": {"vpc-id": vpc["id"]}},
               {"kind": "security-group", "options": {"vpc-id": vpc["id"]}}])
    try:
        assert w.status == 200
        first = w.take(4)
        assert {"kind": "vpc", "type": "change", "value": vpc} in first
        status, vpc2, _ = alice.patch(f"/api/vpcs/{vpc['id']}", {"description": "y"})
        assert status == 200
        assert w.next() == {"kind": "vpc", "type": "change", "value": vpc2}
        assert alice.delete(f"/api/vpcs/{vpc['id']}")[0] == 200
        events = []
        while True:
            e = w.next()
            if e is None:
                break
            events.append(e)
        # Everything the delete took with it, then the end.
        assert sorted((e.get("kind"), e["type"]) for e in events[:2]) == [
            ("security-group", "delete"), ("vpc", "delete")]
        assert [e["value"]["id"] for e in events[:2]] == [vpc["id"]] * 2
        assert len(events) == 3 and events[2]["type"] == "error"
        assert events[2]["value"]["code"] == 404
    finally:
        w.close()


def test_device_token_stream_ends_with_its_device(env):
    alice, uid = env.person("alice")
    status, key, _ = alice.post("/api/reg-keys", {"vpc_id": uid})
    assert status == 201
    dev = enroll(env.token(key["bearer_token"]), uid)
    w = env.watch(env.token(dev["bearer_token"]), uid, [{"kind": "device-metadata"}],
                  public_key=dev["public_key"])
    try:
        assert w.next() == tail("device-metadata")
        status, md, _ = alice.put(f"/api/devices/{dev['id']}/metadata/k", {"v": 1})
        assert w.next() == {"kind": "device-metadata", "type": "change", "value": md}
        assert alice.delete(f"/api/devices/{dev['id']}")[0] == 200
        event = w.next()  # its metadata went with it
        assert (event["type"], event["value"]["key"]) == ("delete", "k")
        error = w.next()
        assert error["type"] == "error" and error["value"]["code"] == 401
        assert w.next() is None
    finally:
        w.close()


# --- online -------------------------------------------------------------------------------------


def test_public_key_marks_device_online_while_open(env):
    alice, uid = env.person("alice")
    status, key, _ = alice.post("/api/reg-keys", {"vpc_id": uid})
    assert status == 201
    dev = enroll(env.token(key["bearer_token"]), uid)
    other = enroll(alice, uid)
    dt = env.token(dev["bearer_token"])
    assert not env.online(dev["id"])

    w = env.watch(dt, uid, [{"kind": "device"}], public_key=dev["public_key"])
    try:
        assert w.status == 200
        assert env.online(dev["id"])
        assert env.sql(f"SELECT online_at IS NOT NULL FROM devices WHERE id = '{dev['id']}'") \
            == "t"
        events = []
        while not events or events[-1]["type"] != "tail":
            events.append(w.next())
        mine = [e["value"] for e in events if e.get("value", {}).get("id") == dev["id"]]
        assert mine and mine[-1]["online"] is True and mine[-1]["online_at"]
        assert not env.online(other["id"])
        # The peers' streams learn of it like any change.
        peer = env.watch(alice, uid, [{"kind": "device", "at_tail": True,
                                       "gt_revision": mine[-1]["revision"]}])
    finally:
        w.close()
    try:
        wait_until(lambda: not env.online(dev["id"]), timeout=5, what="device offline")
        event = peer.next()
        assert event["value"]["id"] == dev["id"] and event["value"]["online"] is False
    finally:
        peer.close()

    # A person may keep one of their own devices online; not another person's, nor a key
    # that is no WireGuard key.
    w = env.watch(alice, uid, [{"kind": "device"}], public_key=other["public_key"])
    try:
        assert w.status == 200 and env.online(other["id"])
    finally:
        w.close()
    wait_until(lambda: not env.online(other["id"]), timeout=5, what="other offline")
    bob, _ = env.person("bob")
    assert env.watch(dt, uid, [{"kind": "device"}],
                     public_key=other["public_key"]).status == 404
    assert env.watch(alice, uid, [{"kind": "device"}], public_key=pubkey()).body == {
        "error": "not found", "resource": "device"}
    bad = env.watch(alice, uid, [{"kind": "device"}], public_key="abc")
    assert bad.status == 400 and bad.body["field"] == "public_key"
    assert not env.online(other["id"])


# --- validation and tenancy ---------------------------------------------------------------------


def test_validation_and_tenancy(env):
    alice, uid = env.person("alice")
    eve, eve_id = env.person("eve")
    status, key, _ = alice.post("/api/reg-keys", {"vpc_id": uid})
    dev = enroll(env.token(key["bearer_token"]), uid)
    ok = [{"kind": "device"}]

    for body, field in (({"kind": "device"}, "request"),
                        ([], "request"),
                        ([{"kind": "device"}] * 2, "request[1].kind"),
                        ([{"kind": "devices"}], "request[0].kind"),
                        ([{}], "request[0].kind"),
                        ([7], "request[0]"),
                        ([{"kind": "device", "gt_revision": -1}], "request[0].gt_revision"),
                        ([{"kind": "device", "gt_revision": "5"}], "request[0].gt_revision"),
                        ([{"kind": "device", "at_tail": 1}], "request[0].at_tail"),
                        ([{"kind": "device", "options": []}], "request[0].options"),
                        ([{"kind": "device", "options": {"prefix": "x"}}],
                         "request[0].options.prefix"),
                        ([{"kind": "device-metadata", "options": {"prefix": [""]}}],
                         "request[0].options.prefix[0]"),
                        ([{"kind": "device", "options": {"vpc-id": "nope"}}],
                         "request[0].options.vpc-id"),
                        ([{"kind": "device", "options": {"vpc-id": eve_id}}],
                         "options.vpc-id")):
        w = env.watch(alice, uid, body)
        assert w.status == 400 and w.body["field"] == field, (body, w.body)
        assert w.body["error"] in ("invalid data in field", "field not present")
    w = env.watch(alice, uid, b"[{")
    assert w.status == 400 and w.body["error"].startswith("request json is invalid")
    w = Watch(env.base, alice.token, "/api/events", ok)
    assert (w.status, w.body["field"]) == (400, "request[0].options.vpc-id")
    w = Watch(env.base, alice.token, "/api/vpcs/not-a-uuid/events", ok)
    assert (w.status, w.body["field"]) == (400, "id")

    # Out of reach: 404, whichever way it is asked; a registration key may not watch.
    nf = {"error": "not found", "resource": "vpc"}
    assert (env.watch(eve, uid, ok).status, env.watch(eve, uid, ok).body) == (404, nf)
    w = Watch(env.base, eve.token, "/api/events",
              [{"kind": "device", "options": {"vpc-id": uid}}])
    assert (w.status, w.body) == (404, nf)
    assert env.watch(env.token(dev["bearer_token"]), eve_id, ok).status == 404
    assert env.watch(alice, eve_id, ok).status == 404
    w = env.watch(env.token(key["bearer_token"]), uid, ok)
    assert w.status == 403
    assert Watch(env.base, None, f"/api/vpcs/{uid}/events", ok).status == 401
    # ... and eve's own VPC is hers to watch
    w = env.watch(eve, eve_id, ok)
    try:
        assert w.status == 200 and w.next() == tail("device")
    finally:
        w.close()


# --- fan-out ------------------------------------------------------------------------------------


def test_change_through_second_replica(env):
    alice, uid = env.person("alice")
    dev = enroll(alice, uid)
    replica, base2 = nexsrv_env.start_nexsrv(env.lab, env.db.conninfo, env.idp,
                                             extra=nexsrv_env.NO_RATE_LIMIT)
    try:
        other = Api(base2, alice.token)
        w1 = env.watch(alice, uid, [{"kind": "device", "at_tail": True,
                                     "gt_revision": dev["revision"]}])
        w2 = env.watch(alice, uid, [{"kind": "device", "at_tail": True,
                                     "gt_revision": dev["revision"]}], base=base2)
        try:
            t0 = time.monotonic()
            d2 = patched(other, dev, hostname="via-replica")
            assert w1.next(timeout=1.0) == {"kind": "device", "type": "change", "value": d2}
            assert time.monotonic() - t0 < 1.0
            assert w2.next(timeout=1.0)["value"] == d2
            d3 = patched(alice, dev, hostname="via-first")
            assert w2.next(timeout=1.0)["value"] == d3
            assert w1.next(timeout=1.0)["value"] == d3
            w1.quiet(0.2)
            w2.quiet(0.2)
            # A stream open while its nexsrv stops ends, and its device goes offline.
            w3 = env.watch(alice, uid, [{"kind": "vpc"}], base=base2,
                           public_key=dev["public_key"])
            assert w3.next() is not None and env.online(dev["id"])
            assert replica.stop() == 0, replica.proc.log(60)
            events = []
            while (e := w3.next()) is not None:
                events.append(e)
            assert all(e["type"] in ("change", "tail") for e in events), events
            assert not env.online(dev["id"])
        finally:
            w1.close()
            w2.close()
    finally:
        assert replica.stop() == 0, replica.proc.log(60)
        log = replica.proc.log()
        replica.cleanup()
        assert nexsrv_env.sanitizer_report(log) is None, log


def test_resync_after_losing_the_listen_connection(env):
    """A change committed while nexsrv had no LISTEN connection still arrives: after the
    reconnect the hub reads every watched VPC again from where it stood."""
    alice, uid = env.person("alice")
    dev = enroll(alice, uid)
    w = env.watch(alice, uid, [{"kind": "device", "gt_revision": dev["revision"]}])
    try:
        assert w.next() == tail("device")
        # One session: no other may connect meanwhile, nexsrv's are cut (its LISTEN too),
        # a change commits, then connections are allowed again.
        admin = f"{PG_BIN}/psql -X -q -v ON_ERROR_STOP=1 -d '{env.db.cluster.conninfo()}' -c"
        allow = f'ALTER DATABASE "{env.db.dbname}" ALLOW_CONNECTIONS'
        env.sql(f"""\\! {admin} '{allow} false'
SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid();
UPDATE devices SET hostname = 'resynced' WHERE id = '{dev['id']}';
SELECT pg_sleep(0.3);
\\! {admin} '{allow} true'
""")
        event = w.next(timeout=15)
        assert (event["type"], event["value"]["hostname"]) == ("change", "resynced")
        w.quiet(0.2)
    finally:
        w.close()
        wait_until(lambda: Api(env.base).get("/private/ready")[0] == 200, timeout=15,
                   what="nexsrv ready again")


def threads(env):
    return len(os.listdir(f"/proc/{env.daemon.proc.pid}/task"))


def test_200_idle_streams_one_vpc(env):
    alice, uid = env.person("alice")
    dev = enroll(alice, uid)
    base_threads = threads(env)
    streams = []
    try:
        for _ in range(200):
            w = env.watch(alice, uid, [{"kind": "device", "gt_revision": dev["revision"]}])
            assert w.status == 200
            streams.append(w)
        for w in streams:
            assert w.next(timeout=10) == tail("device")
        out, status = env.daemon.vty(b"show nexodus watchers json")
        assert status == 0, out
        shown = json.loads(out)
        mine = [s for s in shown["watchers"] if s["vpc_id"] == uid]
        assert len(mine) == 200 and all(s["live"] for s in mine)
        assert threads(env) <= base_threads + 2, (base_threads, threads(env))
        changed = patched(alice, dev, hostname="fan-out")
        for w in streams:
            assert w.next(timeout=5) == {"kind": "device", "type": "change", "value": changed}
        assert threads(env) <= base_threads + 2
    finally:
        for w in streams:
            w.close()
    wait_until(lambda: not [s for s in json.loads(env.daemon.vty(
        b"show nexodus watchers json")[0])["watchers"] if s["vpc_id"] == uid],
        timeout=10, what="streams gone from show nexodus watchers")


def test_slow_client_is_cut_off(env):
    """A client that reads nothing is ended; the streams beside it, which the other half of
    a two-thread delivery may serve, get every change."""
    alice, uid = env.person("alice")
    dev = enroll(alice, uid)
    readers = [env.watch(alice, uid, [{"kind": "device-metadata"}]) for _ in range(2)]
    w = env.watch(alice, uid, [{"kind": "device-metadata"}], rcvbuf=4096, read=False)
    try:
        assert w.status == 200
        for r in readers:
            assert r.next(timeout=10) == tail("device-metadata")
        big = {"blob": "x" * (900 * 1024)}
        for i in range(16):  # ~14 MB for a client that reads nothing
            status, _, _ = alice.put(f"/api/devices/{dev['id']}/metadata/big{i}", big)
            assert status == 200
        for r in readers:
            keys = [r.next(timeout=10)["value"]["key"] for _ in range(16)]
            assert keys == [f"big{i}" for i in range(16)], keys
        for r in readers:
            r.close()
        wait_until(lambda: not [s for s in json.loads(env.daemon.vty(
            b"show nexodus watchers json")[0])["watchers"] if s["vpc_id"] == uid],
            timeout=10, what="the stream ended by the server")
        w.start()
        last = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            e = w.next(timeout=20)
            if e is None:
                break
            last = e
        assert w.eof, "the stream was not ended"
        assert last["type"] == "error" and last["value"]["code"] == 503, last.get("type")
    finally:
        w.close()
        for r in readers:
            r.close()


def test_heartbeat_and_show_watchers(env):
    alice, uid = env.person("alice")
    w = env.watch(alice, uid, [{"kind": "device"}, {"kind": "device-metadata",
                                                    "options": {"prefix": "tcp:"}}])
    try:
        assert w.take(2) == [tail("device"), tail("device-metadata")]
        t0 = time.monotonic()
        assert w.next(timeout=3 * HEARTBEAT_MS / 1000, heartbeats=True) == ""
        assert w.next(timeout=3 * HEARTBEAT_MS / 1000, heartbeats=True) == ""
        assert time.monotonic() - t0 >= HEARTBEAT_MS / 1000 * 0.5
        out, status = env.daemon.vty(b"show nexodus watchers")
        assert status == 0
        line = [ln for ln in out.splitlines() if uid in ln]
        assert len(line) == 1 and "device,device-metadata(prefix tcp:)" in line[0], out
        assert "user" in line[0]
    finally:
        w.close()
