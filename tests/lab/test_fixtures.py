# SPDX-License-Identifier: GPL-2.0-or-later
"""Tests of the lab's own fixtures: PostgreSQL, coturn, link impairment and
failure, and the sweeper that cleans up after crashed runs."""

import json
import os
import secrets
import subprocess
import tempfile

import pytest

import lab as labmod
from lab import PYTHON, RunRecord, run, wait_until

SWEEP = os.path.join(labmod.LAB_DIR, "sweep.py")


def two_hosts(lab):
    lan = lab.switch("lan")
    h1, h2 = lab.host("h1"), lab.host("h2")
    l1 = lab.link(h1, lan, addr_a="10.0.0.1/24")
    lab.link(h2, lan, addr_a="10.0.0.2/24")
    return h1, h2, l1


def test_postgres(postgres):
    assert postgres.psql("SELECT 1") == "1"
    assert postgres.dbname.startswith("t_") and f"dbname={postgres.dbname}" in postgres.conninfo
    postgres.psql("CREATE TABLE peers (id serial PRIMARY KEY, pubkey text NOT NULL UNIQUE);"
                  "INSERT INTO peers (pubkey) VALUES ('k1'), ('k2');")
    assert postgres.psql("SELECT count(*) FROM peers") == "2"
    with pytest.raises(labmod.CmdError, match="duplicate key"):
        postgres.psql("INSERT INTO peers (pubkey) VALUES ('k1')")
    # The conninfo string is what nexsrv gets; psql must reach the same database with it.
    out = run(["/usr/lib/postgresql/15/bin/psql", "-X", "-A", "-t", "-d", postgres.conninfo,
               "-c", "SELECT current_database(), current_setting('listen_addresses'), "
                     "current_setting('fsync')"]).stdout.strip()
    assert out == f"{postgres.dbname}||off"


def test_postgres_database_is_fresh(postgres):
    assert postgres.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'peers'") == "0"


def test_coturn_answers_stun(lab, coturn):
    h1, h2, _ = two_hosts(lab)
    srv = coturn(h1, "10.0.0.1", 3478)
    assert srv.proc.alive()
    (r,) = lab.stun(h2, srv.addr, local_port=41000)
    assert r["attribute"] == "XOR-MAPPED-ADDRESS"
    assert (r["mapped_ip"], r["mapped_port"]) == ("10.0.0.2", 41000)  # no NAT in between
    # Nothing listens on the next port: the client must report failure, not invent an answer.
    p = lab.run(h2, PYTHON, os.path.join(labmod.LAB_DIR, "stun.py"), "--server", "10.0.0.1:3400",
                "--timeout", "0.3", check=False)
    assert p.returncode == 1 and "no binding response" in p.stderr


def test_netem_delay_and_loss(lab):
    h1, h2, l1 = two_hosts(lab)
    wait_until(lambda: lab.ping_ok(h1, "10.0.0.2"), timeout=5)
    base = lab.ping(h1, "10.0.0.2", count=3, interval=0.05)
    assert base.received == 3 and max(base.rtts) < 20, base

    lab.netem(h1, l1.a.name, delay_ms=40)
    r = lab.ping(h1, "10.0.0.2", count=4, interval=0.05)
    assert r.received == 4 and min(r.rtts) >= 40, r
    assert max(r.rtts) < 40 + 200, r

    lab.netem(h1, l1.a.name, loss=100)
    r = lab.ping(h1, "10.0.0.2", count=3, interval=0.05, timeout=0.3)
    assert r.transmitted == 3 and r.received == 0, r

    lab.netem_clear(h1, l1.a.name)
    r = wait_until(lambda: lab.ping(h1, "10.0.0.2", count=3, interval=0.05), timeout=5)
    assert r.received == 3 and max(r.rtts) < 20, r


def test_link_down_up(lab):
    h1, h2, l1 = two_hosts(lab)
    r = lab.router("r", inside=(l1.b.node, "10.0.0.254/24"))
    assert lab.cmd(h1, "ip", "route", "show", "default").startswith("default via 10.0.0.254")
    wait_until(lambda: lab.ping_ok(h1, "10.0.0.2"), timeout=5)

    lab.link_down(h1, l1.a.name)
    assert "state DOWN" in lab.cmd(h1, "ip", "link", "show", l1.a.name)
    assert not lab.ping_ok(h1, "10.0.0.2", timeout=0.5)
    assert lab.cmd(h1, "ip", "route", "show", "default") == ""  # the kernel dropped it

    lab.link_up(h1, l1.a.name)
    wait_until(lambda: lab.ping_ok(h1, "10.0.0.2"), timeout=5, what="ping after link_up")
    assert "default via 10.0.0.254" in lab.cmd(h1, "ip", "route", "show", "default")
    assert lab.ping_ok(h1, r.addr())


def test_wait_until_reports_last_value():
    calls = []
    assert wait_until(lambda: calls.append(1) or len(calls) >= 3, timeout=2, interval=0.01)
    with pytest.raises(AssertionError, match=r"never: not satisfied .* last value: 0"):
        wait_until(lambda: 0, timeout=0.1, interval=0.02, what="never")
    with pytest.raises(AssertionError, match="last exception: ZeroDivisionError"):
        wait_until(lambda: 1 / 0, timeout=0.1, interval=0.02)


def test_sweeper_removes_dead_runs_only(lab):
    live = lab.host("live")  # a namespace of a live run: must survive
    control = f"nxlctl-{secrets.token_hex(3)}"  # not the lab family: must survive
    victim_ns = None
    leaked = None
    fake = None
    try:
        run(["ip", "netns", "add", control])
        # A fake run whose owner is dead: owner pid + start time of a finished process.
        owner = subprocess.Popen(["sleep", "30"])
        owner_start = labmod.proc_starttime(owner.pid)
        owner.kill()
        owner.wait()
        fake = RunRecord.create("lab", label="fake dead run", owner=owner.pid,
                                owner_start=owner_start)
        victim_ns = f"{fake.prefix}-leaked"
        run(["ip", "netns", "add", victim_ns])
        leaked = subprocess.Popen(["ip", "netns", "exec", victim_ns, "sleep", "300"],
                                  start_new_session=True)
        fake.add_pid(leaked.pid)
        tmp = tempfile.mkdtemp(prefix=fake.prefix + "-", dir=labmod.TMP_ROOT)
        with open(os.path.join(tmp, "state"), "w") as f:
            f.write("x")
        fake.add_tmpdir(tmp)
        assert json.load(open(fake.path))["owner"] == owner.pid

        run([PYTHON, SWEEP])  # (a concurrent lab session may sweep the same dead run)

        names = labmod.netns_list()
        assert victim_ns not in names
        assert control in names, "sweeper touched a namespace outside the lab family"
        assert live.ns in names, "sweeper touched a live run"
        assert os.path.exists(lab.record.path) and os.path.isdir(lab.tmp)
        assert wait_until(lambda: leaked.poll() is not None, timeout=5)
        assert not os.path.exists(tmp)
        assert not os.path.exists(fake.path)
        # Nothing left to do on a second pass (for this run at least).
        assert fake.prefix not in run([PYTHON, SWEEP]).stdout
    finally:
        if leaked is not None and leaked.poll() is None:
            leaked.kill()
            leaked.wait()
        if victim_ns and victim_ns in labmod.netns_list():
            labmod.kill_netns(victim_ns)
        if fake is not None:
            for d in fake.data["tmpdirs"]:
                if os.path.exists(d):
                    labmod.remove_tree(d)
            fake.remove()
        if control in labmod.netns_list():
            run(["ip", "netns", "del", control])
