# SPDX-License-Identifier: GPL-2.0-or-later
"""nexsrv's management plane, end to end through nexsh (see test_cli_nexd.py for nexd)."""

import json
import os
import socket
import stat

import pytest

from daemons import REQ_COMPLETE, REQ_DESCRIBE, Daemon, free_port, yanglint_data

CONFIG_TEMPLATE = """! nexsrv configuration
!
controller
 listen 127.0.0.1:{http}
 insecure-http
 database host=/run/postgresql dbname=nexodus password=pg-secret-1
 oidc-issuer https://idp.example.com/realms/nexodus
 oidc-audience nexodus
 stun-listen 127.0.0.1:{stun}
 rate-limit requests-per-second 200
 tombstone-retention 3600
exit
!
debug controller watch
!
end
"""


@pytest.fixture
def nexsrv(lab):
    config = CONFIG_TEMPLATE.format(http=free_port(socket.SOCK_STREAM), stun=free_port())
    d = Daemon(lab, "nexsrv", config=config)
    try:
        yield d.start()
    finally:
        d.cleanup()


def running(d):
    r = d.nexsh("show running-config")
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_config_round_trips_without_secrets(nexsrv):
    assert running(nexsrv) == nexsrv.config_text.replace(
        "host=/run/postgresql dbname=nexodus password=pg-secret-1", "********")


def test_configure_write_restart(nexsrv):
    r = nexsrv.nexsh("configure terminal", "controller", "rate-limit burst 500",
                     "oidc-client-id nexodus-cli", "no debug controller watch", "end",
                     "write memory")
    assert r.returncode == 0, r.stderr
    text = running(nexsrv)
    assert " rate-limit burst 500\n" in text and "debug controller watch" not in text
    assert stat.S_IMODE(os.stat(nexsrv.config_path).st_mode) == 0o600
    with open(nexsrv.config_path) as f:
        assert "password=pg-secret-1" in f.read()
    assert nexsrv.stop() == 0
    nexsrv.start()
    assert running(nexsrv) == text


@pytest.mark.parametrize("command,value", [
    ("listen 127.0.0.1:0", "127.0.0.1:0"),
    ("tombstone-retention 5", "5"),
    ("tls-cert /etc/nexodus/cert.pem", "tls-cert"),  # refused: insecure-http is set
    ("oidc-issuer ftp:/bad", "ftp:/bad"),
])
def test_invalid_values_are_refused(nexsrv, command, value):
    before = running(nexsrv)
    r = nexsrv.nexsh("configure terminal", "controller", command)
    assert r.returncode != 0
    assert value in r.stderr, r.stderr
    assert running(nexsrv) == before


def test_json_validates_and_help(nexsrv, lab):
    r = nexsrv.nexsh("show running-config json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["nexodus-controller:controller"]["database"] == "********"
    lint = yanglint_data("nexodus-controller", r.stdout, lab.tmp)
    assert lint.returncode == 0, lint.stderr

    out, status = nexsrv.vty(REQ_DESCRIBE + b"configure ")
    assert status == 0 and "terminal" in out
    out, status = nexsrv.vty(REQ_COMPLETE + b"show contr")
    assert status == 0 and out.split() == ["controller"]
