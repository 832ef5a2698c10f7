# SPDX-License-Identifier: GPL-2.0-or-later
"""nexsrv's STUN responder (stun-listen), seen by a real STUN client (stun.py).

It tells a client the address and port its request came from: 127.0.0.1 and the client's
port on loopback, the NAT router's outside address behind a cone NAT; "[::]:PORT" answers
IPv4 (as IPv4) and IPv6 alike; a host name is resolved at start.  Garbage, truncated,
oversized and non-request datagrams get no answer and do not stop it answering; a request
with an attribute it does not know gets a 420.

Topology of the NAT test (public 203.0.113.0/24 switch "pub"):

    A 192.168.1.10 --lan-- R (cone NAT) 203.0.113.2 --+-- pub -- S 203.0.113.10 (nexsrv)
                                                      +-------- B 203.0.113.20
"""

import json
import os
import re
import socket

import pytest

from daemons import Daemon
from lab import LAB_DIR, PYTHON, wait_until

S_ADDR, R_OUT, B_ADDR = "203.0.113.10", "203.0.113.2", "203.0.113.20"

# Run in a namespace (argv: LAB_DIR HOST PORT FLOOD): sends what must go unanswered, checks
# that nothing comes back, sends a request with an unknown comprehension-required attribute
# (CHANGE-REQUEST) expecting a 420, then a good request from the same socket.  Prints JSON.
PROBE = r"""
import json, os, select, socket, struct, sys, time
sys.path.insert(0, sys.argv[1])
import stun

host, port, flood = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 0))
srv = (host, port)
tx = os.urandom(12)
req = stun.build_request(tx)


def hdr(mtype, length, cookie=stun.MAGIC_COOKIE):
    return struct.pack("!HHI", mtype, length, cookie) + tx


junk = [
    b"", b"garbage", req[:19],
    hdr(0x0001, 8),                                     # truncated: 8 bytes announced, none sent
    req + b"\0\0\0\0",                                  # bytes past the announced length
    hdr(0x0001, 2) + b"\0\0",                           # length not a multiple of 4
    hdr(0x0001, 0, 0x2112A443),                         # wrong magic cookie
    hdr(0x0001, 12) + struct.pack("!HHII", 0x0020, 8, 0, 0),  # XOR-MAPPED-ADDRESS, family 0
    hdr(0x0001, 8) + struct.pack("!HHI", 0x0020, 8, 0),  # XOR-MAPPED-ADDRESS overrunning
    hdr(0x0011, 0),                                     # Binding indication
    hdr(0x0101, 0),                                     # a response
    hdr(0x0003, 0),                                     # Allocate (TURN) request
    b"\x01\0\0\0" + bytes(144),                         # WireGuard handshake initiation
    os.urandom(1400),
    bytes(3000),                                        # larger than any request
]
for d in junk:
    s.sendto(d, srv)
for _ in range(flood):
    s.sendto(os.urandom(64), srv)
answered = 0
deadline = time.monotonic() + 0.5
while select.select([s], [], [], max(0.0, deadline - time.monotonic()))[0]:
    s.recvfrom(4096)
    answered += 1

tx2 = os.urandom(12)
s.sendto(struct.pack("!HHI", 0x0001, 8, stun.MAGIC_COOKIE) + tx2
         + struct.pack("!HHI", 0x0003, 4, 6), srv)
error = None
deadline = time.monotonic() + 3
while error is None and select.select([s], [], [], max(0.0, deadline - time.monotonic()))[0]:
    data, _ = s.recvfrom(4096)
    try:
        stun.parse_response(data, tx2)
        error = "answered with success"
    except stun.StunError as e:
        error = str(e)

print(json.dumps({"answered_junk": answered, "error": error,
                  "mapped": stun.binding(s, srv, timeout=3)}))
"""


def probe(lab, ns, host, port, flood=0):
    out = lab.cmd(ns, PYTHON, "-c", PROBE, LAB_DIR, host, port, flood, timeout=30)
    return json.loads(out)


def free_port(kind=socket.SOCK_DGRAM, host="127.0.0.1"):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def config(stun_listen):
    """No database; the API, which nexsrv will not start without saying how to serve it,
    on a free loopback port."""
    return (f"controller\n listen 127.0.0.1:{free_port(socket.SOCK_STREAM)}\n insecure-http\n"
            f" stun-listen {stun_listen}\nexit\ndebug controller stun\n")


@pytest.fixture
def nexsrv(lab):
    """nexsrv(stun_listen, ns=None): a started nexsrv answering STUN on stun_listen."""
    daemons = []

    def start(stun_listen, ns=None):
        d = Daemon(lab, "nexsrv", config=config(stun_listen), ns=ns)
        daemons.append(d)
        return d.start()

    try:
        yield start
    finally:
        for d in daemons:
            d.cleanup()


def bound_on(d):
    m = re.search(r"STUN responder on (\S+)", d.proc.log())
    assert m, d.proc.log()
    return m.group(1)


def still_serving(d):
    d.proc.check()
    assert d.vty(b"show version")[1] == 0


def test_loopback(lab, nexsrv):
    port = free_port()
    d = nexsrv(f"127.0.0.1:{port}")
    assert bound_on(d) == f"127.0.0.1:{port}"

    local = free_port()
    [r] = lab.stun(None, f"127.0.0.1:{port}", local_port=local)
    assert r["attribute"] == "XOR-MAPPED-ADDRESS"
    assert (r["mapped_ip"], r["mapped_port"]) == ("127.0.0.1", local)
    assert r["software"] == "nexsrv"

    out = probe(lab, None, "127.0.0.1", port)
    assert out["answered_junk"] == 0, out
    assert out["error"].startswith("binding error 420 Unknown Attribute"), out
    assert out["mapped"]["mapped_ip"] == "127.0.0.1", out
    still_serving(d)
    log = d.proc.log()
    assert "ignored 7 bytes from 127.0.0.1:" in log
    assert "message length 8 does not match the 0 bytes after the header" in log
    assert "XOR-MAPPED-ADDRESS: unknown address family 0x00" in log
    assert "(XOR-MAPPED-ADDRESS) of 8 bytes at offset 20 overruns" in log
    assert "ignored a 3000-byte datagram" in log
    assert "answered with 420" in log


def test_dual_stack_and_names(lab, nexsrv):
    h = lab.host("h")
    d = nexsrv("[::]:3478", ns=h)
    assert bound_on(d) == "[::]:3478"
    # IPv4 over the dual-stack socket is answered as IPv4, not ::ffff:127.0.0.1.
    [r4] = lab.stun(h, "127.0.0.1:3478", local_port=40000)
    assert (r4["mapped_ip"], r4["mapped_port"]) == ("127.0.0.1", 40000)
    [r6] = lab.stun(h, "[::1]:3478", local_port=40001)
    assert (r6["mapped_ip"], r6["mapped_port"]) == ("::1", 40001)
    out = probe(lab, h, "::1", 3478)
    assert out["answered_junk"] == 0 and out["mapped"]["mapped_ip"] == "::1", out

    # A name is resolved once at start; the address it bound is the one that answers.
    d2 = nexsrv("localhost:3479", ns=h)
    addr = bound_on(d2)
    assert addr in ("127.0.0.1:3479", "[::1]:3479"), addr
    [r] = lab.stun(h, addr)
    assert r["mapped_ip"] == addr.rsplit(":", 1)[0].strip("[]")
    still_serving(d)
    still_serving(d2)


def test_refused_start(lab, nexsrv):
    """A stun-listen that cannot be bound stops the start with a message naming it."""
    h = lab.host("h")
    first = nexsrv("127.0.0.1:3478", ns=h)
    d = Daemon(lab, "nexsrv", config=config("127.0.0.1:3478"), ns=h)
    try:
        p = lab.run(h, *d.argv(), check=False, timeout=10)
    finally:  # its runtime directory sits beside the first one's
        d.vty_path = os.path.join(os.path.dirname(os.path.dirname(first.vty_path)),
                                  d.pathspace, "nexsrv.vty")
        d.cleanup()
    assert p.returncode != 0
    assert 'stun-listen "127.0.0.1:3478": bind: Address already in use' in p.stdout + p.stderr


def test_behind_nat(lab, nexsrv):
    pub, lan = lab.switch("pub"), lab.switch("lan")
    s, a, b = lab.host("s"), lab.host("a"), lab.host("b")
    lab.link(s, pub, addr_a=f"{S_ADDR}/24")
    lab.link(b, pub, addr_a=f"{B_ADDR}/24")
    r = lab.router("r", nat="cone", inside=(lan, "192.168.1.1/24"), outside=(pub, f"{R_OUT}/24"))
    lab.link(a, lan, addr_a="192.168.1.10/24")
    d = nexsrv(f"{S_ADDR}:3478", ns=s)
    server = f"{S_ADDR}:3478"

    # Behind the NAT, the answer is the router's outside address (a cone NAT keeps the port).
    [m] = lab.stun(a, server, local_port=40000)
    assert m["mapped_ip"] == r.outside_addr == R_OUT, m
    assert m["mapped_port"] == 40000, m
    # Without a NAT, the host's own address.
    [m] = lab.stun(b, server, local_port=40000)
    assert (m["mapped_ip"], m["mapped_port"]) == (B_ADDR, 40000), m

    # Garbage, a truncated request and a flood through the NAT: no answers, and the
    # responder keeps answering.
    out = probe(lab, a, S_ADDR, 3478, flood=2000)
    assert out["answered_junk"] == 0, out
    assert out["error"].startswith("binding error 420"), out
    assert out["mapped"]["mapped_ip"] == R_OUT, out
    wait_until(lambda: lab.stun(a, server, local_port=40000)[0]["mapped"] == f"{R_OUT}:40000",
               timeout=10, what="STUN answers after the flood")
    still_serving(d)
