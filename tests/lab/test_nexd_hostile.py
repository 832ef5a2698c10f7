# SPDX-License-Identifier: GPL-2.0-or-later
"""nexd against a hostile controller: whatever the watch stream carries -- lines that are not
JSON, fields of the wrong type, lists far too long, lines of 20 MB, peers with nexd's own key,
tunnel addresses outside the VPC, default routes, prefixes over the whole pool, unknown event
types, errors -- nexd keeps running, names each object it refuses in its log, and the kernel
and WireGuard hold only what is valid.  A valid peer among the garbage is still installed,
and a hostile update of it never routes toward the bad address.

    ctl 10.0.0.1 (fake_controller.py) --+-- lan
    a   10.0.0.11 (nexd, wireguard-go) -+
"""

import base64
import uuid

import pytest

from fake_controller import FakeController, error_line
from lab import wait_until
from nexd_env import Agent, probe_addr

POOL4 = "100.64.0.0/10"
POOL6 = "fd00:100::/64"
SELF4 = "100.64.0.2"  # what the fake controller gives the enrolling device


@pytest.fixture
def env(lab):
    lan = lab.switch("lan")
    ctl, a = lab.host("ctl"), lab.host("a")
    lab.link(ctl, lan, addr_a="10.0.0.1/24")
    lab.link(a, lan, addr_a="10.0.0.11/24")
    fake = FakeController(lab, ctl, "10.0.0.1", heartbeat=1, ipv4_cidr=POOL4,
                          ipv6_cidr=POOL6).start()
    agent = Agent(lab, a, fake.url, fake.reg_key)
    try:
        agent.start()
        agent.wait_connected()
        assert agent.tunnel_ipv4 == SELF4
        yield fake, agent
        agent.assert_healthy()
    finally:
        agent.cleanup()
        fake.stop()


# --- what nexd says and what the dataplane holds -------------------------------------------------


class Log:
    """nexd's log from a mark on: expect() waits for text that appeared after the mark."""

    def __init__(self, agent):
        self.agent = agent
        self.mark()

    def mark(self):
        self.pos = len(self.agent.daemon.proc.log())

    def since(self):
        return self.agent.daemon.proc.log()[self.pos:]

    def expect(self, *texts, timeout=5, what=None):
        try:
            return wait_until(lambda: all(t in self.since() for t in texts) and self.since(),
                              timeout=timeout, interval=0.02, what=what or repr(texts))
        except AssertionError as e:
            raise AssertionError(f"{e}\nnexd log since the mark:\n{self.since()[-4000:]}") \
                from None


def wg_allowed(agent):
    """{public key: set of allowed IPs} that WireGuard holds on the agent's interface."""
    out = agent.lab.cmd(agent.node, "wg", "show", agent.ifname, "allowed-ips")
    held = {}
    for line in out.splitlines():
        if line.strip():
            key, *ips = line.split()
            held[key] = set(ips) - {"(none)"}
    return held


def dataplane(agent):
    """(IPv4 routes, IPv6 routes, WireGuard peers with their allowed IPs) of nexd."""
    return agent.kernel_routes("-4"), agent.kernel_routes("-6"), wg_allowed(agent)


def holds_exactly(agent, devices):
    """The kernel and WireGuard hold these devices' tunnel addresses and nothing else."""
    want4 = sorted(d["ipv4_tunnel_ips"][0]["address"] for d in devices)
    # Each valid peer also has its path-probe address (nexd/nexd_probe.h), on its own peer.
    want6 = sorted([d["ipv6_tunnel_ips"][0]["address"] for d in devices] +
                   [probe_addr(d["public_key"]) for d in devices])
    want_wg = {d["public_key"]: {d["ipv4_tunnel_ips"][0]["address"] + "/32",
                                 d["ipv6_tunnel_ips"][0]["address"] + "/128",
                                 probe_addr(d["public_key"]) + "/128"} for d in devices}
    return dataplane(agent) == (want4, want6, want_wg)


def wait_holds(agent, devices, timeout=10):
    try:
        wait_until(lambda: holds_exactly(agent, devices), timeout=timeout, interval=0.05,
                   what="dataplane holds exactly " + ", ".join(
                       d["ipv4_tunnel_ips"][0]["address"] for d in devices))
    except AssertionError as e:
        raise AssertionError(f"{e}\nholds: {dataplane(agent)}\npeers: {agent.peers()}") \
            from None


def install_valid(fake, agent, n=1, first=3):
    """n valid peers 100.64.0.<first>..., pushed and installed; returns their devices."""
    devs = [fake.device(f"100.64.0.{first + i}", f"fd00:100::{first + i:x}",
                        endpoints=[{"source": "local", "address": f"10.0.0.{50 + i}:51820"}])
            for i in range(n)]
    for d in devs:
        fake.upsert(d)
    wait_holds(agent, devs)
    return devs


def no_new_watch(fake, before):
    """The garbage did not break the stream: no watch request since `before` of them."""
    assert len(fake.watch_requests()) == before, fake.watch_requests()[before:]


def peer_entry(agent, device_id):
    return next((p for p in agent.peers() if p["device_id"] == device_id), None)


# --- the cases -------------------------------------------------------------------------------------

def bytes_item(b):
    return {"raw_b64": base64.b64encode(b).decode()}


# (item pushed on the stream, text nexd must log for it)
MALFORMED_LINES = [
    ({"raw": "{"}, "watch line ignored: event: "),
    ({"raw": "this is not JSON"}, "watch line ignored: event: "),
    ({"raw": '{"type": "change", "kind": "device", "value": {'}, "watch line ignored: event: "),
    ({"raw": "[1, 2, 3]"}, "watch line ignored: event: must be an object, got an array"),
    ({"raw": '"change"'}, "watch line ignored: event: must be an object, got a string"),
    ({"raw": "42"}, "watch line ignored: event: must be an object, got an integer"),
    ({"raw": "null"}, "watch line ignored: event"),
    (bytes_item(b'{"type":"change","kind":"device",\x00"value":{}}'), "watch line ignored: event"),
    (bytes_item(b"\xff\xfe\xfd\xfc garbage \x80"), "watch line ignored: event"),
    ({"big": {"head": "", "fill": "[", "count": 100000}}, "watch line ignored: event"),
    ({"big": {"head": '{"a":', "fill": '{"a":', "count": 5000, "tail": "1" + "}" * 5001}},
     "watch line ignored: event"),
    ({"line": {"type": 5, "kind": "device"}},
     "watch line ignored: event.type: must be a string, got an integer"),
    ({"line": {"kind": "device", "value": {}}}, "watch line ignored: event.type: is missing"),
    ({"line": {"type": "change", "value": {}}}, "watch line ignored: event.kind: is missing"),
    ({"line": {"type": "change", "kind": "device"}},
     "watch line ignored: event.value: is missing"),
    ({"line": {"type": "change", "kind": "device", "value": [1]}},
     "watch line ignored: event.value: must be an object, got an array"),
    ({"line": {"type": "change", "kind": "device", "value": "x"}},
     "watch line ignored: event.value: must be an object, got a string"),
    ({"line": {"type": "change", "kind": "DEV ICE", "value": {}}},
     'watch line ignored: event.kind: "DEV ICE" is not a kind name'),
    ({"line": {"type": "change", "kind": ["device"], "value": {}}},
     "watch line ignored: event.kind: must be a string, got an array"),
    # An unknown event type.
    ({"line": {"type": "explode", "kind": "device", "value": {}}},
     'watch line ignored: event.type: "explode" is not one of change, delete, tail, error'),
    ({"line": {"type": "", "kind": "device"}}, "watch line ignored: event.type: "),
    # Malformed error lines are not errors: the stream goes on, nothing is re-listed.
    ({"line": {"type": "error", "value": {"code": "410", "error": "x"}}},
     "watch line ignored: event.value.code: must be an integer, got a string"),
    ({"line": {"type": "error", "value": "gone"}},
     "watch line ignored: event.value: must be an object, got a string"),
    ({"line": {"type": "error", "value": {"code": -410}}},
     "watch line ignored: event.value.code: -410 is out of range"),
    ({"line": {"type": "change", "kind": "device", "value": {}}},
     "device ignored: device.id: is missing"),
    ({"line": {"type": "delete", "kind": "device", "value": {"id": 5, "revision": 1}}},
     "device ignored: device.id: must be a string, got an integer"),
]

ZERO_KEY = base64.b64encode(bytes(32)).decode()

# (fields replaced in an otherwise valid device, text nexd must log)
WRONG_FIELDS = [
    ({"id": 5}, "device.id: must be a string, got an integer"),
    ({"id": "../../etc/passwd"}, 'device.id: "../../etc/passwd" is not a UUID'),
    ({"id": None}, "device.id: is missing"),
    ({"revision": "7"}, "device.revision: must be an integer, got a string"),
    ({"revision": 1.5}, "device.revision: must be an integer, got a number"),
    ({"revision": -1}, "device.revision: -1 is negative"),
    ({"revision": 18446744073709551615}, "device.revision: "),
    ({"vpc_id": []}, "device.vpc_id: must be a string, got an array"),
    ({"vpc_id": "vpc"}, 'device.vpc_id: "vpc" is not a UUID'),
    ({"public_key": 1}, "device.public_key: must be a string, got an integer"),
    ({"public_key": None}, "device.public_key: is missing"),
    ({"public_key": "not-a-key"}, "device.public_key: \"not-a-key\" is not a WireGuard key"),
    ({"public_key": ZERO_KEY}, "device.public_key: the all-zero key is not a public key"),
    ({"hostname": {}}, "device.hostname: must be a string, got an object"),
    ({"hostname": "evil\x1b[31mred"}, "device.hostname: contains a control character"),
    ({"hostname": "h" * 300}, "device.hostname: is 300 bytes long"),
    ({"endpoints": "10.0.0.5:51820"}, "device.endpoints: must be an array, got a string"),
    ({"endpoints": [5]}, "device.endpoints[0]: must be an object, got an integer"),
    ({"endpoints": [{"source": "local"}]}, "device.endpoints[0].address: is missing"),
    ({"endpoints": [{"source": "local", "address": "999.0.0.1:51820"}]},
     "device.endpoints[0].address: "),
    ({"endpoints": [{"source": "local", "address": 5}]},
     "device.endpoints[0].address: must be a string, got an integer"),
    ({"endpoints": [{"source": "local", "address": f"10.0.1.{i}:51820"} for i in range(33)]},
     "device.endpoints: has 33 entries, at most 32 are allowed"),
    ({"ipv4_tunnel_ips": "100.64.9.9"}, "device.ipv4_tunnel_ips: must be an array, got a string"),
    ({"ipv4_tunnel_ips": [{"address": 7}]},
     "device.ipv4_tunnel_ips[0].address: must be a string, got an integer"),
    ({"ipv4_tunnel_ips": [{"address": "fd00:100::99"}]}, "is not an IPv4 address"),
    ({"ipv4_tunnel_ips": [{"address": "100.64.1.300"}]}, "device.ipv4_tunnel_ips[0].address: "),
    ({"ipv4_tunnel_ips": [{"address": "100.64.9.9", "cidr": "nonsense"}]},
     "device.ipv4_tunnel_ips[0].cidr: "),
    ({"ipv4_tunnel_ips": ["100.64.9.9"]},
     "device.ipv4_tunnel_ips[0]: must be an object, got a string"),
    ({"ipv6_tunnel_ips": {}}, "device.ipv6_tunnel_ips: must be an array, got an object"),
    ({"ipv6_tunnel_ips": [{"address": "100.64.9.9"}]}, "is not an IPv6 address"),
    ({"advertise_cidrs": "10.0.0.0/8"}, "device.advertise_cidrs: must be an array, got a string"),
    ({"advertise_cidrs": [1]}, "device.advertise_cidrs[0]: must be a string, got an integer"),
    ({"advertise_cidrs": ["10.0.0.0/33"]}, "device.advertise_cidrs[0]: "),
    ({"advertise_cidrs": ["192.168.7.0/24", None]},
     "device.advertise_cidrs[1]: must be a string, got null"),
    ({"relay": "yes"}, "device.relay: must be a boolean, got a string"),
    ({"symmetric_nat": 0}, "device.symmetric_nat: must be a boolean, got an integer"),
    ({"online": [True]}, "device.online: must be a boolean, got an array"),
    ({"allowed_ips": [5]}, "device.allowed_ips[0]: must be a string, got an integer"),
    ({"allowed_ips": ["x"]}, "device.allowed_ips[0]: "),
    ({"security_group_id": 5}, "device.security_group_id: must be a string, got an integer"),
    ({"owner_id": "me"}, 'device.owner_id: "me" is not a UUID'),
    ({"os": "linux\n"}, "device.os: contains a control character"),
    ({"online_at": 1700000000}, "device.online_at: must be a string, got an integer"),
]


def test_malformed_lines_and_wrong_types(env):
    """Each bad line or device is ignored with a message naming what is wrong; a valid peer
    pushed among them is installed; the stream is never broken by garbage."""
    fake, agent = env
    (v,) = install_valid(fake, agent)
    log = Log(agent)
    watches = len(fake.watch_requests())

    for item, text in MALFORMED_LINES:
        log.mark()
        fake.push(item)
        log.expect(text, what=f"{item!r}"[:200])

    # Kinds nexd does not know are skipped silently; a delete of an unknown device is a no-op.
    fake.push({"line": {"type": "change", "kind": "wormhole", "value": {"x": [1, {"y": 2}]}}},
              {"line": {"type": "delete", "kind": "device",
                        "value": {"id": str(uuid.uuid4()), "revision": 2}}})

    garbage_addrs = []
    for i, (fields, text) in enumerate(WRONG_FIELDS):
        addr = f"100.64.1.{i + 1}"
        garbage_addrs.append(addr)
        d = fake.device(addr, f"fd00:100::1:{i + 1:x}", revision=100 + i)
        d.update(fields)
        for k in [k for k, val in fields.items() if val is None]:
            del d[k]
        log.mark()
        fake.push({"line": {"type": "change", "kind": "device", "value": d}})
        log.expect("device ignored: " + text if text.startswith("device.") else text,
                   "device ignored: ", what=text)
        if i == len(WRONG_FIELDS) // 2:  # a valid peer among the garbage
            w = fake.device("100.64.0.4", "fd00:100::4",
                            endpoints=[{"source": "local", "address": "10.0.0.60:51820"}])
            fake.upsert(w)

    wait_holds(agent, [v, w])
    routes4, _, held = dataplane(agent)
    assert not set(garbage_addrs) & set(routes4)
    agent.assert_healthy()
    no_new_watch(fake, watches)
    assert agent.status()["state"] == "connected"


def test_refused_devices(env):
    """Well-formed devices that must not be installed: each is named in the log and in
    `show nexodus peers` with the reason, and reaches neither WireGuard nor the kernel."""
    fake, agent = env
    (v,) = install_valid(fake, agent)
    own_key = agent.status()["public_key"]
    cases = [
        (dict(public_key=own_key), "is this device's own key"),
        (dict(ipv4="10.1.2.3"), "device.ipv4_tunnel_ips: 10.1.2.3 is outside the VPC's pool "
                                "100.64.0.0/10"),
        (dict(ipv4="100.128.0.1"), "100.128.0.1 is outside the VPC's pool"),
        (dict(ipv6="fd00:200::5"), "device.ipv6_tunnel_ips: fd00:200::5 is outside the VPC's "
                                   "pool fd00:100::/64"),
        (dict(vpc_id=str(uuid.uuid4())), "is not this device's VPC"),
        (dict(advertise=["0.0.0.0/0"]), "0.0.0.0/0 is a default route"),
        (dict(advertise=["::/0"]), "::/0 is a default route"),
        (dict(advertise=["192.168.50.0/24", "0.0.0.0/0"]), "device.advertise_cidrs[1]: "),
        (dict(advertise=["100.0.0.0/8"]), "100.0.0.0/8 covers the VPC's pool 100.64.0.0/10"),
        (dict(advertise=["100.64.0.0/10"]), "covers the VPC's pool 100.64.0.0/10"),
        (dict(advertise=["64.0.0.0/2"]), "covers the VPC's pool 100.64.0.0/10"),
        (dict(advertise=["fd00::/8"]), "fd00::/8 covers the VPC's pool fd00:100::/64"),
    ]
    log = Log(agent)
    refused = []
    for i, (kw, text) in enumerate(cases):
        kw.setdefault("ipv4", f"100.64.2.{i + 1}")
        kw.setdefault("ipv6", f"fd00:100::2:{i + 1:x}")
        d = fake.device(**kw)
        refused.append((d, text))
        log.mark()
        fake.upsert(d)
        log.expect(f"peer {d['id']} ignored: ", text, what=text)

    wait_holds(agent, [v])
    routes4, routes6, _ = dataplane(agent)
    assert "192.168.50.0/24" not in routes4 and "0.0.0.0/0" not in routes4
    assert "default" not in routes4 and "default" not in routes6
    for d, text in refused:
        p = peer_entry(agent, d["id"])
        assert p and text in p.get("ignored", ""), p
    agent.assert_healthy()


def test_huge_lines(env):
    """Lists far over the limits are refused; a line beyond the stream's limit ends that stream
    only: nexd resumes from the revision it had, keeps its peers, and goes on."""
    fake, agent = env
    (v,) = install_valid(fake, agent)
    log = Log(agent)
    watches = len(fake.watch_requests())

    # 5,000 prefixes: a line under the JSON limit, a list over the advertise limit.
    d = fake.device("100.64.3.1", "fd00:100::3:1", revision=500,
                    advertise=[f"10.{i >> 8}.{i & 255}.0/24" for i in range(5000)])
    fake.push({"line": {"type": "change", "kind": "device", "value": d}})
    log.expect("device ignored: device.advertise_cidrs: has 5000 entries, at most 256")

    # 100,000 prefixes: about 2 MB, over the size of JSON nexd parses.
    log.mark()
    d = fake.device("100.64.3.2", "fd00:100::3:2", revision=501,
                    advertise=[f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}/32"
                               for i in range(100000)])
    fake.push({"line": {"type": "change", "kind": "device", "value": d}})
    log.expect("watch line ignored: event: ", "exceeds the limit")
    no_new_watch(fake, watches)
    revision = agent.status()["controller"]["revision"]
    stored = {d["id"]: d for d in fake.devices()}
    assert revision >= stored[v["id"]]["revision"] > 0

    # One line of 20 MB: the stream is given up, the next one resumes where nexd was.
    log.mark()
    fake.push({"big": {"head": '{"type":"change","kind":"device","value":{"hostname":"',
                       "fill": "x", "count": 20 * 1024 * 1024, "tail": '"}}'}})
    log.expect("watch ended: stream line", "the limit of 16777216 bytes", timeout=30)
    wait_until(lambda: len(fake.watch_requests()) > watches, timeout=30, interval=0.05,
               what="nexd watches again")
    again = fake.watch_requests()[watches]
    assert again["json"][0]["gt_revision"] == revision > 0, again
    agent.wait_connected(timeout=30)
    assert holds_exactly(agent, [v])  # the break removed nothing

    # And the new stream works.
    w = fake.device("100.64.0.4", "fd00:100::4",
                    endpoints=[{"source": "local", "address": "10.0.0.60:51820"}])
    fake.upsert(w)
    wait_holds(agent, [v, w])
    routes4, _, _ = dataplane(agent)
    assert "100.64.3.1" not in routes4 and "100.64.3.2" not in routes4
    assert not any(r.startswith("10.") for r in routes4), routes4
    agent.assert_healthy()


def test_error_lines_resume_or_relist(env):
    """An error line ends the stream: nexd resumes from its revision, except on 410 (the
    resume point is gone), where it lists again from revision 0 and drops what is no longer
    listed."""
    fake, agent = env
    v, w = install_valid(fake, agent, n=2)
    log = Log(agent)

    # A refused peer, known to nexd only (not in the fake's store): a re-list forgets it.
    bad = fake.device("10.99.0.1", "fd00:100::99", revision=900)
    fake.push({"line": {"type": "change", "kind": "device", "value": bad}})
    log.expect(f"peer {bad['id']} ignored: ")
    # A device the store no longer has, as if its delete had been purged from the log.
    gone = fake.device("100.64.0.9", "fd00:100::9", revision=901)
    fake.push({"line": {"type": "change", "kind": "device", "value": gone}})
    wait_holds(agent, [v, w, gone])

    # 500: resume from the newest revision seen.
    watches = len(fake.watch_requests())
    revision = agent.status()["controller"]["revision"]
    log.mark()
    fake.push({"error": 500, "message": "internal trouble"}, {"close": True})
    log.expect("the service ended the watch: internal trouble")
    wait_until(lambda: len(fake.watch_requests()) > watches, timeout=10, interval=0.05,
               what="nexd watches again after 500")
    assert fake.watch_requests()[watches]["json"][0]["gt_revision"] == revision > 0
    agent.wait_connected()
    wait_holds(agent, [v, w, gone])

    # 410: a listing from revision 0.
    watches = len(fake.watch_requests())
    log.mark()
    fake.push({"line": error_line(410, "resume point too old")}, {"close": True})
    log.expect("resume point too old, listing again")
    wait_until(lambda: len(fake.watch_requests()) > watches, timeout=10, interval=0.05,
               what="nexd watches again after 410")
    req = fake.watch_requests()[watches]
    assert req["json"][0]["gt_revision"] == 0, req
    assert req["json"][0]["kind"] == "device", req
    assert len(fake.watch_requests()) == watches + 1  # at once, and once
    agent.wait_connected()
    log.expect("peer(s) no longer listed")
    wait_holds(agent, [v, w])
    assert peer_entry(agent, bad["id"]) is None
    assert peer_entry(agent, gone["id"]) is None
    agent.assert_healthy()


def test_hostile_update_of_valid_peer(env):
    """A valid peer turned bad by an update leaves the dataplane; the bad address never gets
    a route nor an allowed IP; a valid update brings it back."""
    fake, agent = env
    v, w = install_valid(fake, agent, n=2)
    own_key = agent.status()["public_key"]
    log = Log(agent)

    def update(**changes):
        d = dict(v)
        d.update(changes)
        d.pop("revision")
        log.mark()
        fake.upsert(d)
        return d

    def never_toward(*prefixes):
        routes4, routes6, held = dataplane(agent)
        allowed = set().union(*held.values())
        for p in prefixes:
            addr, plen = p.split("/")
            shown = "default" if plen == "0" else addr if plen in ("32", "128") else p
            assert shown not in routes4 + routes6 and p not in allowed, \
                (p, routes4, routes6, held)

    hostile = [
        (dict(ipv4_tunnel_ips=[{"address": "10.9.9.9", "cidr": "10.0.0.0/8"}]),
         "10.9.9.9 is outside the VPC's pool", ["10.9.9.9/32"]),
        (dict(ipv6_tunnel_ips=[{"address": "2001:db8::9", "cidr": "2001:db8::/64"}]),
         "2001:db8::9 is outside the VPC's pool", ["2001:db8::9/128"]),
        (dict(advertise_cidrs=["0.0.0.0/0"]), "0.0.0.0/0 is a default route", ["0.0.0.0/0"]),
        (dict(advertise_cidrs=["192.168.9.0/24", "100.0.0.0/8"]), "covers the VPC's pool",
         ["192.168.9.0/24", "100.0.0.0/8"]),
        (dict(public_key=own_key), "is this device's own key", []),
    ]
    for changes, text, bad in hostile:
        update(**changes)
        log.expect(f"peer {v['id']} ignored: ", text, what=text)
        # The update is refused as a whole: v is out of the dataplane, w untouched.
        wait_holds(agent, [w])
        never_toward(*bad)
        assert text in peer_entry(agent, v["id"])["ignored"]

        # A valid update (a new address) makes v a peer again.
        back = dict(v)
        back.pop("revision")
        fake.upsert(back)
        wait_holds(agent, [v, w])

    moved = update(ipv4_tunnel_ips=[{"address": "100.64.0.5", "cidr": POOL4}],
                   allowed_ips=["100.64.0.5/32", v["allowed_ips"][1]])
    wait_holds(agent, [moved, w])
    never_toward("100.64.0.3/32")
    agent.assert_healthy()


# --- claims that collide with what others own ------------------------------------------------------


def test_peer_claiming_own_tunnel_address(env):
    """A peer whose tunnel address is nexd's own gets no route and no allowed IP for it."""
    fake, agent = env
    (v,) = install_valid(fake, agent)
    h = fake.device(SELF4, "fd00:100::2",
                    endpoints=[{"source": "local", "address": "10.0.0.70:51820"}])
    fake.upsert(h)
    w = fake.device("100.64.0.4", "fd00:100::4")
    fake.upsert(w)  # a marker: once w is in, h has been through reconciliation
    wait_until(lambda: "100.64.0.4" in agent.kernel_routes("-4"), timeout=10)
    routes4, routes6, held = dataplane(agent)
    wrong = [SELF4 in routes4, "fd00:100::2" in routes6,
             bool({f"{SELF4}/32", "fd00:100::2/128"} & set().union(*held.values()))]
    assert not any(wrong), (wrong, routes4, routes6, held)
    agent.assert_healthy()


def test_peer_reusing_another_peers_key(env):
    """A second device with a valid peer's public key: WireGuard has one peer for the key, so
    the kernel must not route both devices' addresses into it (whichever of them nexd keeps,
    the routes and the key's allowed IPs agree and stay put)."""
    fake, agent = env
    (v,) = install_valid(fake, agent)
    h = fake.device("100.64.0.60", "fd00:100::60", public_key=v["public_key"],
                    endpoints=[{"source": "local", "address": "10.0.0.70:51820"}])
    fake.upsert(h)
    w = fake.device("100.64.0.4", "fd00:100::4")
    fake.upsert(w)  # a marker: once w is in, h has been through reconciliation
    wait_until(lambda: "100.64.0.4" in agent.kernel_routes("-4"), timeout=10)
    routes4, _, held = dataplane(agent)
    routed = {a for a in ("100.64.0.3", "100.64.0.60") if a in routes4}
    allowed = {a.split("/")[0] for a in held.get(v["public_key"], set()) if "." in a}
    assert len(routed) == 1 and routed == allowed, (routes4, held)
    agent.assert_healthy()


def test_peer_advertising_another_peers_address(env):
    """A newer device advertising a peer's tunnel /32 does not take it over."""
    fake, agent = env
    (v,) = install_valid(fake, agent)
    h = fake.device("100.64.0.61", "fd00:100::61", advertise=["100.64.0.3/32"],
                    endpoints=[{"source": "local", "address": "10.0.0.71:51820"}])
    fake.upsert(h)
    wait_until(lambda: "100.64.0.61" in agent.kernel_routes("-4"), timeout=10)
    held = wg_allowed(agent)
    assert "100.64.0.3/32" in held.get(v["public_key"], set()), held
    assert "100.64.0.3/32" not in held.get(h["public_key"], set()), held
    agent.assert_healthy()
