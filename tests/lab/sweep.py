#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Remove what crashed lab runs left behind.

A run (a Lab, a throwaway PostgreSQL cluster) writes /run/nexodus-lab/<prefix>.json
before it creates anything and removes it after a clean teardown.  For every run
whose owner process is dead -- or for a namespace named like a lab run
(nxl + 5 hex digits + "-") that has no marker at all -- this kills the processes in
its namespaces and those it recorded (pid + start time must match), deletes the
namespaces, unmounts and removes its recorded temp dirs (only /tmp/<prefix>-*),
and drops the marker.  Live runs and anything not named like the lab are left
alone, so it is safe to run at any time:

    /usr/bin/python3 tests/lab/sweep.py [-n] [-v]
"""

import argparse
import glob
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lab  # noqa: E402


def _safe_tmpdir(prefix, path):
    real = os.path.realpath(path)
    return os.path.dirname(real) == lab.TMP_ROOT and os.path.basename(real).startswith(prefix + "-")


def _kill_recorded(pids, timeout=3.0):
    live = [(p, st) for p, st in pids if isinstance(p, int) and st is not None and lab.pid_alive(p, st)]
    for p, _ in live:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(lab.pid_alive(p, st) for p, st in live):
        time.sleep(0.05)
    for p, st in live:
        if lab.pid_alive(p, st):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return [p for p, _ in live]


def sweep(dry_run=False, log=None):
    """Clean up dead runs; returns a list of what was (or would be) done."""
    done = []

    def note(msg):
        done.append(msg)
        if log:
            log(msg)

    # Namespaces first, markers second: a run writes its marker before its first
    # namespace, so a namespace seen here without a marker is truly orphaned.
    by_prefix = {}
    for ns in lab.netns_list():
        m = lab.NS_RE.match(ns)
        if m:
            by_prefix.setdefault(m.group(1), []).append(ns)
    records = {r.prefix: r for r in lab.RunRecord.all()}
    for prefix in sorted(set(records) | set(by_prefix)):
        rec = records.get(prefix)
        if rec is not None and rec.owner_alive():
            continue
        if rec is None and os.path.exists(os.path.join(lab.RUN_DIR, prefix + ".json")):
            note(f"{prefix}: marker unreadable, leaving it alone")
            continue
        owner = rec.data.get("owner") if rec else None
        note(f"{prefix}: owner {owner if owner else '(no marker)'} is gone")
        for ns in by_prefix.get(prefix, []):
            note(f"{prefix}: kill processes in and delete namespace {ns}")
            if not dry_run:
                lab.kill_netns(ns)
        # Files a test gave a namespace (`ip netns exec` mounts /etc/netns/NS/* over /etc).
        for d in glob.glob(f"/etc/netns/{glob.escape(prefix)}-*"):
            note(f"{prefix}: remove {d}")
            if not dry_run:
                lab.remove_tree(d)
        if rec is None:
            continue
        pids = rec.data.get("pids") or []
        if dry_run:
            note(f"{prefix}: would kill recorded live pids")
        else:
            for p in _kill_recorded(pids):
                note(f"{prefix}: killed pid {p}")
        for d in rec.data.get("tmpdirs") or []:
            if not os.path.lexists(d):
                continue
            if not _safe_tmpdir(prefix, d):
                note(f"{prefix}: NOT removing {d} (not /tmp/{prefix}-*)")
                continue
            note(f"{prefix}: remove {d}")
            if not dry_run:
                lab.remove_tree(d)
        note(f"{prefix}: drop marker {rec.path}")
        if not dry_run:
            rec.remove()
    return done


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--dry-run", action="store_true", help="only say what would be done")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("sweep.py: needs root", file=sys.stderr)
        return 2
    done = sweep(dry_run=args.dry_run, log=None if args.quiet else print)
    if not done and not args.quiet:
        print("nothing to sweep")
    return 0


if __name__ == "__main__":
    sys.exit(main())
