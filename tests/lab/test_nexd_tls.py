# SPDX-License-Identifier: GPL-2.0-or-later
"""nexd verifies the service's TLS certificate: against the system's authorities by default
(so a self-signed service is refused, with the reason shown), against --ca-file when given,
and not at all only with --insecure-skip-tls-verify, which it logs."""

import subprocess

import pytest

from lab import Lab, wait_until
from nexd_env import Agent, Controller

CTL = "10.0.0.1"


@pytest.fixture
def tls_env(postgres):
    lab = Lab(label="tls")
    ctl = None
    agents = []
    try:
        lan = lab.switch("lan")
        ctl_node = lab.host("ctl")
        lab.link(ctl_node, lan, addr_a=f"{CTL}/24")
        nodes = []
        for i, name in enumerate(("strict", "ca", "insecure")):
            nodes.append(lab.host(name))
            lab.link(nodes[-1], lan, addr_a=f"10.0.0.{11 + i}/24")
        cert, key = f"{lab.tmp}/cert.pem", f"{lab.tmp}/key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "1", "-subj", f"/CN={CTL}",
                        "-addext", f"subjectAltName=IP:{CTL}"],
                       check=True, capture_output=True, timeout=30)
        ctl = Controller(lab, postgres, ctl_node, CTL, tls=(cert, key)).start()
        _, reg_key = ctl.bootstrap()
        for node, args in zip(nodes, ([], ["--ca-file", cert], ["--insecure-skip-tls-verify"])):
            agents.append(Agent(lab, node, ctl.url, reg_key, args=args))
        yield lab, ctl, agents
        for a in agents:
            a.assert_healthy()
    finally:
        for a in agents:
            a.cleanup()
        if ctl:
            ctl.cleanup()
        lab.teardown()


def test_certificate_is_verified(tls_env):
    lab, ctl, (strict, with_ca, insecure) = tls_env
    for a in (strict, with_ca, insecure):
        a.start()

    with_ca.wait_connected()
    insecure.wait_connected()
    assert "TLS certificate and host name verification is disabled" in \
        insecure.daemon.proc.log()
    assert "verification is disabled" not in with_ca.daemon.proc.log()

    # The self-signed service is refused by default, and the status says why.
    st = wait_until(lambda: "certificate" in strict.status()["message"].lower() and
                    strict.status(), timeout=20, what="certificate refusal shown")
    assert st["state"] != "connected" and st["device_id"] is None
    assert ctl.db.psql("SELECT count(*) FROM devices") == "2"

    # The two that trust the service see each other.
    wait_until(lambda: len(with_ca.peers()) == 1 and len(insecure.peers()) == 1, timeout=10)
