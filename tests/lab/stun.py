#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Minimal STUN Binding client (RFC 5389 / RFC 8489), stdlib only.

The lab uses it to see a NAT from the inside: run in a namespace, it sends Binding
requests from one local UDP socket to each server and prints, one JSON object per
line, the reflexive address the server saw (XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS
from an RFC 3489 server).  Same local port to two servers -> same mapping means
endpoint-independent mapping ("cone"); different mappings mean a symmetric NAT.

    ip netns exec NS /usr/bin/python3 stun.py --server 203.0.113.10:3478 --local-port 40000
"""

import argparse
import ipaddress
import json
import secrets
import select
import socket
import struct
import sys
import time

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111
ATTR_MAPPED_ADDRESS = 0x0001
ATTR_ERROR_CODE = 0x0009
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_SOFTWARE = 0x8022
HEADER = struct.Struct("!HHI12s")
FAMILY_V4, FAMILY_V6 = 0x01, 0x02


class StunError(Exception):
    pass


def build_request(txid):
    return HEADER.pack(BINDING_REQUEST, 0, MAGIC_COOKIE, txid)


def _parse_address(value, xor, txid):
    if len(value) < 4:
        raise StunError("address attribute too short")
    family, port = value[1], struct.unpack("!H", value[2:4])[0]
    raw = value[4:]
    if family == FAMILY_V4:
        if len(raw) != 4:
            raise StunError("bad IPv4 address length")
    elif family == FAMILY_V6:
        if len(raw) != 16:
            raise StunError("bad IPv6 address length")
    else:
        raise StunError(f"unknown address family {family}")
    if xor:
        port ^= MAGIC_COOKIE >> 16
        key = struct.pack("!I", MAGIC_COOKIE) + txid
        raw = bytes(b ^ k for b, k in zip(raw, key))
    return str(ipaddress.ip_address(raw)), port


def parse_response(data, txid):
    """Parse a Binding response for txid -> dict; raise StunError if it is not one."""
    if len(data) < HEADER.size:
        raise StunError("message shorter than a STUN header")
    mtype, mlen, cookie, rtxid = HEADER.unpack_from(data)
    if mtype & 0xC000:
        raise StunError("not a STUN message (top bits set)")
    if cookie != MAGIC_COOKIE:
        raise StunError("bad magic cookie")
    if rtxid != txid:
        raise StunError("transaction id mismatch")
    if mlen % 4 or HEADER.size + mlen > len(data):
        raise StunError(f"bad message length {mlen}")
    attrs = {}
    off, end = HEADER.size, HEADER.size + mlen
    while off + 4 <= end:
        atype, alen = struct.unpack_from("!HH", data, off)
        if off + 4 + alen > end:
            raise StunError(f"attribute 0x{atype:04x} overruns the message")
        attrs.setdefault(atype, data[off + 4 : off + 4 + alen])
        off += 4 + (alen + 3) // 4 * 4
    if mtype == BINDING_ERROR:
        ec = attrs.get(ATTR_ERROR_CODE, b"\0\0\0\0")
        code = (ec[2] & 0x7) * 100 + ec[3] if len(ec) >= 4 else 0
        reason = ec[4:].decode("utf-8", "replace")
        raise StunError(f"binding error {code} {reason}".strip())
    if mtype != BINDING_SUCCESS:
        raise StunError(f"unexpected message type 0x{mtype:04x}")
    result = {}
    if ATTR_XOR_MAPPED_ADDRESS in attrs:
        ip, port = _parse_address(attrs[ATTR_XOR_MAPPED_ADDRESS], True, txid)
        result["attribute"] = "XOR-MAPPED-ADDRESS"
    elif ATTR_MAPPED_ADDRESS in attrs:
        ip, port = _parse_address(attrs[ATTR_MAPPED_ADDRESS], False, txid)
        result["attribute"] = "MAPPED-ADDRESS"
    else:
        raise StunError("success response without a mapped address")
    result.update(mapped_ip=ip, mapped_port=port)
    if ATTR_SOFTWARE in attrs:
        result["software"] = attrs[ATTR_SOFTWARE].decode("utf-8", "replace")
    return result


def binding(sock, server, timeout=3.0, rto=0.1):
    """Send a Binding request to server=(ip, port) on sock, retransmitting with
    doubling RTO, until a matching response or timeout.  Returns parse_response()."""
    txid = secrets.token_bytes(12)
    req = build_request(txid)
    deadline = time.monotonic() + timeout
    next_send, wait = time.monotonic(), rto
    last_err = None
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if now >= next_send:
            sock.sendto(req, server)
            next_send, wait = now + wait, min(wait * 2, 1.6)
        r, _, _ = select.select([sock], [], [], max(0.0, min(next_send, deadline) - now))
        if not r:
            continue
        data, src = sock.recvfrom(2048)
        if (ipaddress.ip_address(src[0]), src[1]) != (ipaddress.ip_address(server[0]), server[1]):
            continue
        try:
            return parse_response(data, txid)
        except StunError as e:
            if "mismatch" in str(e):
                continue
            last_err = e
            break
    raise StunError(f"no binding response from {server[0]}:{server[1]} in {timeout}s"
                    + (f" ({last_err})" if last_err else ""))


def parse_hostport(text):
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected IP:PORT or [IPv6]:PORT")
    return str(ipaddress.ip_address(host)), int(port)


def fmt(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", type=parse_hostport, action="append", required=True,
                    help="IP:PORT of a STUN server (repeat to use the same socket for several)")
    ap.add_argument("--local-port", type=int, default=0)
    ap.add_argument("--local-ip", default=None)
    ap.add_argument("--timeout", type=float, default=3.0, help="per server, seconds")
    args = ap.parse_args(argv)
    v6 = ipaddress.ip_address(args.server[0][0]).version == 6
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((args.local_ip or ("::" if v6 else "0.0.0.0"), args.local_port))
        local = sock.getsockname()
        for server in args.server:
            try:
                res = binding(sock, server, timeout=args.timeout)
            except (StunError, OSError) as e:
                print(f"stun.py: {fmt(*server)}: {e}", file=sys.stderr)
                return 1
            out = {"server": fmt(*server), "local": fmt(local[0], local[1])}
            out.update(res)
            out["mapped"] = fmt(res["mapped_ip"], res["mapped_port"])
            print(json.dumps(out), flush=True)
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
