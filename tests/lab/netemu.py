#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Userspace stand-in for tc netem on an Ethernet (veth) interface.

The lab kernel is built without sch_netem (and without nft `queue`), so
Lab.netem() diverts a link's egress frames to this program and lets it put them
back on the wire later.  Run inside the link's namespace, it creates a TAP device
(--tap); the lab then adds a clsact egress filter on --dev that redirects every
frame to the TAP (tc u32 + mirred).  Frames read from the TAP are held for
--delay-ms (+- --jitter-ms) or dropped with probability --loss percent, then sent
out of --dev through an AF_PACKET socket with PACKET_QDISC_BYPASS, which skips the
tc egress hook and so is not diverted again.  Prints "ready" once set up.
"""

import argparse
import errno
import fcntl
import heapq
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
SOL_PACKET = 263
PACKET_QDISC_BYPASS = 20


def open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dev", required=True, help="interface whose egress is impaired")
    ap.add_argument("--tap", required=True, help="name of the TAP device to create")
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--jitter-ms", type=float, default=0.0)
    ap.add_argument("--loss", type=float, default=0.0, help="percent")
    ap.add_argument("--limit", type=int, default=10000, help="max frames held (tail drop)")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    with open(f"/sys/class/net/{args.dev}/mtu") as f:
        mtu = int(f.read())
    tap = open_tap(args.tap)
    subprocess.run(["ip", "link", "set", args.tap, "mtu", str(mtu), "up"], check=True)
    out = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: send only
    out.bind((args.dev, 0))
    out.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
    print(f"ready dev={args.dev} tap={args.tap}", flush=True)

    held, n = [], 0
    while True:
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, _, frame = heapq.heappop(held)
            try:
                out.send(frame)
            except OSError as e:  # device busy or down: the frame is lost, as on a wire
                if e.errno not in (errno.ENOBUFS, errno.ENETDOWN, errno.ENXIO, errno.EAGAIN):
                    raise
        timeout = max(0.0, held[0][0] - now) if held else None
        r, _, _ = select.select([tap], [], [], timeout)
        if not r:
            continue
        now = time.monotonic()
        while True:
            try:
                frame = os.read(tap, 65536)
            except BlockingIOError:
                break
            if args.loss and rng.random() * 100.0 < args.loss:
                continue
            if len(held) >= args.limit:
                continue
            delay = args.delay_ms
            if args.jitter_ms:
                delay = max(0.0, delay + rng.uniform(-args.jitter_ms, args.jitter_ms))
            n += 1
            heapq.heappush(held, (now + delay / 1000.0, n, frame))


if __name__ == "__main__":
    sys.exit(main())
