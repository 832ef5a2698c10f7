# SPDX-License-Identifier: GPL-2.0-or-later
"""nexsrv's operator commands, driven only through nexsh against a real PostgreSQL: an
organization, VPCs (with their default security group) and registration keys created without
any identity provider, the show commands in text and JSON, refusals with a message and
nothing written, and a controller without a usable database."""

import hashlib
import json
import re
import socket
import uuid

import pytest

from daemons import Daemon, free_port
from lab import wait_until

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RK_RE = re.compile(r"^RK:[A-Za-z0-9_-]{43}$")
UNKNOWN = "0badc0de-0000-4000-8000-000000000000"
TABLES = ("users", "organizations", "memberships", "vpcs", "security_groups", "reg_keys")


def controller_config(database=None):
    port = free_port(socket.SOCK_STREAM)
    text = f"controller\n listen 127.0.0.1:{port}\n insecure-http\n"
    if database:
        text += f" database {database}\n"
    return text + "exit\n"


@pytest.fixture
def nexsrv(lab):
    """nexsrv(database=None) -> a started Daemon; checked for sanitizer reports after."""
    started = []

    def make(database=None, wait_ready=True):
        d = Daemon(lab, "nexsrv", config=controller_config(database))
        started.append(d)
        d.start()
        if database and wait_ready:
            wait_until(lambda: re.search(r": ready", d.proc.log()), timeout=15,
                       what="database pool ready")
        return d

    try:
        yield make
    finally:
        for d in started:
            d.cleanup()
            if d.proc:
                log = d.proc.log()
                assert "Sanitizer" not in log and "runtime error" not in log, log


@pytest.fixture
def srv(nexsrv, postgres):
    d = nexsrv(postgres.conninfo)
    d.db = postgres
    return d


def ok(d, *commands):
    """Runs commands that must succeed; returns stdout."""
    r = d.nexsh(*commands)
    assert r.returncode == 0, f"{commands}: rc {r.returncode}\n{r.stdout}{r.stderr}"
    return r.stdout


def refused(d, command, message):
    """Runs a command that must fail with message; returns its output."""
    r = d.nexsh(command)
    out = r.stdout + r.stderr
    assert r.returncode != 0, f"{command}: accepted\n{out}"
    assert message in out, f"{command}: expected {message!r}\n{out}"
    return out


def one_id(d, command):
    out = ok(d, command).strip()
    assert UUID_RE.match(out), f"{command}: {out!r}"
    return out


def counts(db):
    return {t: int(db.psql(f"SELECT count(*) FROM {t}")) for t in TABLES}


def show_json(d, command):
    return json.loads(ok(d, command + " json"))


def test_organization_create(srv):
    db = srv.db
    org = one_id(srv, "nexodus organization create acme")
    assert db.psql(f"SELECT o.name, u.idp_subject, u.username FROM organizations o "
                   f"JOIN users u ON u.id = o.owner_id WHERE o.id = '{org}'") == \
        "acme|nexodus:operator|operator"
    assert db.psql(f"SELECT m.roles FROM memberships m JOIN users u ON u.id = m.user_id "
                   f"WHERE m.organization_id = '{org}' AND u.idp_subject = "
                   f"'nexodus:operator'") == "{owner}"

    # A second organization has the same (one) operator user as owner.
    org2 = one_id(srv, "nexodus organization create other")
    assert org2 != org
    assert db.psql("SELECT count(*) FROM users") == "1"
    assert db.psql("SELECT count(DISTINCT owner_id) FROM organizations") == "1"

    # Names are unique: the existing one is named.
    before = counts(db)
    out = refused(srv, "nexodus organization create acme", "already exists")
    assert org in out
    assert counts(db) == before


def test_vpc_create(srv):
    db = srv.db
    org = one_id(srv, "nexodus organization create acme")

    vpc = one_id(srv, f"nexodus vpc create organization {org}")
    assert db.psql(f"SELECT organization_id, ipv4_cidr, ipv6_cidr, private_cidr, description "
                   f"FROM vpcs WHERE id = '{vpc}'") == f"{org}|100.64.0.0/10|200::/64|f|"
    # Its default security group: the VPC's id, no rules (allow all).
    assert db.psql(f"SELECT vpc_id, organization_id, description, inbound_rules, "
                   f"outbound_rules FROM security_groups WHERE id = '{vpc}'") == \
        f"{vpc}|{org}|default vpc security group|[]|[]"

    custom = one_id(srv, f"nexodus vpc create organization {org} ipv4-cidr 10.20.0.0/16 "
                         f"ipv6-cidr fd00:20::/64 description lab network, second one")
    assert db.psql(f"SELECT ipv4_cidr, ipv6_cidr, private_cidr, description FROM vpcs "
                   f"WHERE id = '{custom}'") == \
        "10.20.0.0/16|fd00:20::/64|t|lab network, second one"
    assert db.psql(f"SELECT count(*) FROM security_groups WHERE id = '{custom}' AND "
                   f"vpc_id = '{custom}'") == "1"

    # One CIDR given, the other one the default; the IPv6 text comes out canonical.
    v6only = one_id(srv, f"nexodus vpc create organization {org} ipv6-cidr FD00:0030:0::/64")
    assert db.psql(f"SELECT ipv4_cidr, ipv6_cidr, private_cidr FROM vpcs "
                   f"WHERE id = '{v6only}'") == "100.64.0.0/10|fd00:30::/64|t"
    assert db.psql("SELECT count(*) FROM vpcs") == "3"
    assert db.psql("SELECT count(*) FROM security_groups") == "3"


def test_registration_key_create(srv):
    db = srv.db
    org = one_id(srv, "nexodus organization create acme")
    vpc = one_id(srv, f"nexodus vpc create organization {org}")

    token = ok(srv, f"nexodus registration-key create vpc {vpc}").strip()
    assert RK_RE.match(token), token
    digest = hashlib.sha256(token.encode()).hexdigest()
    row = db.psql("SELECT encode(token_hash, 'hex'), vpc_id, organization_id, single_use, "
                  "expires_at IS NULL, device_id IS NULL, used_at IS NULL FROM reg_keys")
    assert row == f"{digest}|{vpc}|{org}|f|t|t|t"
    # Owned by the organization's owner (the operator user here).
    assert db.psql("SELECT u.idp_subject FROM reg_keys k JOIN users u ON u.id = k.owner_id") \
        == "nexodus:operator"
    # Only the hash is stored: the clear text is nowhere in the database.
    dump = db.psql("SELECT row_to_json(k)::text FROM reg_keys k")
    assert token not in dump and token[3:] not in dump

    token2 = ok(srv, f"nexodus registration-key create vpc {vpc} single-use "
                     f"expires-in 3600").strip()
    assert RK_RE.match(token2) and token2 != token
    digest2 = hashlib.sha256(token2.encode()).hexdigest()
    row = db.psql(f"SELECT single_use, round(extract(epoch FROM expires_at - created_at)) "
                  f"FROM reg_keys WHERE token_hash = decode('{digest2}', 'hex')")
    single, lifetime = row.split("|")
    assert single == "t"
    assert 3595 <= float(lifetime) <= 3605, row

    # Printed once: never by a show command, never in the log.
    shows = ok(srv, "show nexodus organizations", "show nexodus vpcs", "show nexodus devices",
               "show nexodus organizations json", "show nexodus vpcs json",
               "show nexodus devices json")
    for t in (token, token2):
        assert t not in shows and t[3:] not in shows
        assert t[3:] not in srv.proc.log()
    assert digest not in shows


def test_show(srv):
    db = srv.db
    org = one_id(srv, "nexodus organization create acme")
    vpc = one_id(srv, f"nexodus vpc create organization {org} description main")
    vpc2 = one_id(srv, f"nexodus vpc create organization {org} ipv4-cidr 10.9.0.0/16")
    # Devices come through the REST API; one is put in directly, with a token hash that
    # must never be shown.
    dev = str(uuid.uuid4())
    secret_hash = hashlib.sha256(b"DT:whatever").hexdigest()
    db.psql(f"""INSERT INTO devices (id, vpc_id, organization_id, owner_id, public_key,
                    hostname, ipv4_tunnel_ips, endpoints, advertise_cidrs, online,
                    bearer_token_hash)
                SELECT '{dev}', v.id, v.organization_id, o.owner_id, 'pk-one', 'host-one',
                    '[{{"address": "100.64.0.1", "cidr": "100.64.0.0/10"}}]',
                    '[{{"source": "local", "address": "192.0.2.1:51820"}}]',
                    '{{192.168.7.0/24}}', true, decode('{secret_hash}', 'hex')
                FROM vpcs v JOIN organizations o ON o.id = v.organization_id
                WHERE v.id = '{vpc}'""")

    text = ok(srv, "show nexodus organizations")
    assert text.splitlines()[0].split() == ["ID", "Name", "Owner", "VPCs", "Devices"]
    assert re.search(rf"^{org}\s+acme\s+operator\s+2\s+1$", text, re.M), text

    orgs = show_json(srv, "show nexodus organizations")["organizations"]
    assert len(orgs) == 1
    assert orgs[0]["id"] == org and orgs[0]["name"] == "acme"
    assert orgs[0]["owner"] == "operator" and orgs[0]["vpcs"] == 2 and orgs[0]["devices"] == 1
    assert UUID_RE.match(orgs[0]["owner_id"])

    text = ok(srv, "show nexodus vpcs")
    assert re.search(rf"^{vpc}\s+acme\s+100\.64\.0\.0/10\s+200::/64\s+1\s+main$", text, re.M), \
        text
    assert re.search(rf"^{vpc2}\s+acme\s+10\.9\.0\.0/16\s+200::/64\s+0\s+-$", text, re.M), text
    vpcs = {v["id"]: v for v in show_json(srv, "show nexodus vpcs")["vpcs"]}
    assert set(vpcs) == {vpc, vpc2}
    assert vpcs[vpc]["organization_id"] == org and vpcs[vpc]["description"] == "main"
    assert vpcs[vpc]["private_cidr"] is False and vpcs[vpc2]["private_cidr"] is True
    assert vpcs[vpc2]["ipv4_cidr"] == "10.9.0.0/16" and vpcs[vpc]["devices"] == 1
    assert isinstance(vpcs[vpc]["revision"], int)

    text = ok(srv, "show nexodus devices")
    assert re.search(rf"^{dev}\s+{vpc}\s+host-one\s+100\.64\.0\.1\s+yes$", text, re.M), text
    devs = show_json(srv, "show nexodus devices")["devices"]
    assert [d["id"] for d in devs] == [dev]
    d = devs[0]
    assert d["vpc_id"] == vpc and d["hostname"] == "host-one" and d["public_key"] == "pk-one"
    assert d["ipv4_tunnel_ips"] == [{"address": "100.64.0.1", "cidr": "100.64.0.0/10"}]
    assert d["endpoints"] == [{"source": "local", "address": "192.0.2.1:51820"}]
    assert d["advertise_cidrs"] == ["192.168.7.0/24"] and d["online"] is True
    assert not any("token" in k for k in d)
    assert secret_hash not in json.dumps(devs)

    assert [x["id"] for x in show_json(srv, f"show nexodus devices vpc {vpc}")["devices"]] == \
        [dev]
    assert show_json(srv, f"show nexodus devices vpc {vpc2}") == {"devices": []}
    assert ok(srv, f"show nexodus devices vpc {vpc2}").split() == \
        ["ID", "VPC", "Hostname", "Tunnel", "IPv4", "Online"]


def test_invalid_inputs(srv):
    db = srv.db
    org = one_id(srv, "nexodus organization create acme")
    vpc = one_id(srv, f"nexodus vpc create organization {org}")
    before = counts(db)

    refused(srv, "nexodus vpc create organization not-a-uuid",
            '% "not-a-uuid" is not a valid organization id')
    refused(srv, f"nexodus vpc create organization {org}x", "is not a valid organization id")
    refused(srv, f"nexodus vpc create organization {UNKNOWN}",
            f"% No such organization: {UNKNOWN}")
    refused(srv, f"nexodus vpc create organization {org} ipv4-cidr 200::/64",
            '% ipv4-cidr: "200::/64" is an IPv6 prefix; this option takes an IPv4 prefix')
    refused(srv, f"nexodus vpc create organization {org} ipv6-cidr 10.0.0.0/8",
            '% ipv6-cidr: "10.0.0.0/8" is an IPv4 prefix; this option takes an IPv6 prefix')
    refused(srv, f"nexodus vpc create organization {org} ipv4-cidr 10.0.0.0/33", "33")
    refused(srv, f"nexodus vpc create organization {org} ipv4-cidr 10.1.2.3/8", "10.1.2.3/8")

    refused(srv, "nexodus registration-key create vpc 1234",
            '% "1234" is not a valid VPC id')
    refused(srv, f"nexodus registration-key create vpc {UNKNOWN}", f"% No such VPC: {UNKNOWN}")
    refused(srv, f"nexodus registration-key create vpc {vpc} expires-in 5",
            "% expires-in: \"5\": out of range 60-31536000")
    refused(srv, f"nexodus registration-key create vpc {vpc} single-use expires-in 31536001",
            "out of range 60-31536000")

    refused(srv, f"show nexodus devices vpc {UNKNOWN}", f"% No such VPC: {UNKNOWN}")
    refused(srv, "show nexodus devices vpc nope json", '"nope" is not a valid VPC id')

    assert counts(db) == before
    assert srv.proc.alive()


def test_database_not_configured(nexsrv):
    d = nexsrv()
    for command in ("nexodus organization create acme",
                    f"nexodus vpc create organization {UNKNOWN}",
                    f"nexodus registration-key create vpc {UNKNOWN}",
                    "show nexodus organizations", "show nexodus vpcs json",
                    "show nexodus devices"):
        refused(d, command, "% The database is not available: no database is configured")
    # Input errors are still reported as such.
    refused(d, "nexodus vpc create organization x", '"x" is not a valid organization id')
    assert d.proc.alive()


def test_database_down(nexsrv):
    """A database that does not answer: the commands say so at once, no hang."""
    port = free_port(socket.SOCK_STREAM)
    d = nexsrv(f"host=127.0.0.1 port={port} dbname=none user=none connect_timeout=1",
               wait_ready=False)
    refused(d, "nexodus organization create acme", "% The database is not available: ")
    refused(d, "show nexodus vpcs", "% The database is not available: ")
    assert d.proc.alive()
