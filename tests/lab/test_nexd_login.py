# SPDX-License-Identifier: GPL-2.0-or-later
"""Enrollment without a registration key: nexd runs the OIDC device flow against the
identity provider the service names, shows the user code, and once a person approves it
creates the device in that person's default VPC.  From then on it uses only its device
token: the person's tokens are not kept, except the refresh token (0600)."""

import json
import os
import re
import stat

import pytest

from idp import start_idp
from lab import Lab, wait_until
from nexd_env import Agent, Controller


@pytest.fixture
def login_env(postgres):
    lab = Lab(label="login")
    idp = ctl = agent = None
    try:
        lan = lab.switch("lan")
        ctl_node, a_node = lab.host("ctl"), lab.host("a")
        lab.link(ctl_node, lan, addr_a="10.0.0.1/24")
        lab.link(a_node, lan, addr_a="10.0.0.11/24")
        idp = start_idp(host="10.0.0.1", netns=ctl_node.ns,
                        log_path=os.path.join(lab.tmp, "idp.log"))
        ctl = Controller(lab, postgres, ctl_node, "10.0.0.1",
                         extra=f" oidc-issuer {idp.issuer}\n oidc-audience {idp.audience}\n"
                               f" oidc-client-id nexodus-cli\n").start()
        agent = Agent(lab, a_node, ctl.url, None)
        yield lab, idp, ctl, agent
        agent.assert_healthy()
    finally:
        if agent:
            agent.cleanup()
        if ctl:
            ctl.cleanup()
        if idp:
            idp.stop()
        lab.teardown()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_device_flow_enrollment(login_env):
    lab, idp, ctl, agent = login_env
    agent.start()

    # nexd shows where to log in and the code, in show nexodus status and in its log.
    st = wait_until(lambda: "log in at" in agent.status()["message"] and agent.status(),
                    timeout=20, what="user code shown")
    code = re.search(r"with the code (\S+)", st["message"]).group(1)
    assert st["state"] == "enrolling" and st["device_id"] is None
    assert code in agent.daemon.proc.log()

    approve = json.dumps({"user_code": code, "account": "alice"})
    lab.cmd(ctl.node, "curl", "-sf", "-X", "POST", "-H", "Content-Type: application/json",
            "-d", approve, f"{idp.issuer}/test/device/approve")
    try:
        st = agent.wait_connected(timeout=30)
    except AssertionError as e:
        raise AssertionError(f"{e}\nnexsrv:\n{ctl.daemon.proc.log(30)}") from e

    # The device is alice's, in her default VPC (whose id is her user id).
    user = ctl.db.psql(f"SELECT u.id FROM users u JOIN devices d ON d.owner_id = u.id "
                       f"WHERE d.id = '{st['device_id']}'")
    assert user and st["vpc_id"] == user
    assert st["tunnel_ipv4"]

    # What is kept, and how: the key and the device token 0600, the refresh token 0600;
    # no access token of the person is stored.
    state = agent.daemon.state_dir
    for name in ("nexd.key", "nexd-device.json", "nexd-login.json"):
        assert mode(os.path.join(state, name)) == 0o600, name
    with open(os.path.join(state, "nexd-device.json")) as f:
        device = json.load(f)
    assert device["token"].startswith("DT:")
    with open(os.path.join(state, "nexd-login.json")) as f:
        assert set(json.load(f)) == {"refresh_token"}

    # A restart is the same device, enrolled already: no second login.
    assert agent.stop() == 0
    agent.start()
    st2 = agent.wait_connected()
    assert st2["device_id"] == st["device_id"] and st2["tunnel_ipv4"] == st["tunnel_ipv4"]
    assert ctl.db.psql("SELECT count(*) FROM devices") == "1"
