# SPDX-License-Identifier: GPL-2.0-or-later
"""pytest wiring for the lab tests.

Skips everything unless root, sweeps leftovers of crashed runs once per session,
and provides the fixtures:

  lab               a fresh Lab (namespaces, processes, temp dir) torn down after
                    the test; on failure its process logs are attached to the report
  postgres_cluster  one throwaway PostgreSQL 15 cluster per session (~1.5 s to start)
  postgres          a fresh database in it per test (.conninfo, .psql(sql)), dropped after
  coturn            factory: coturn(ns, ip, port=3478) -> StunServer (STUN only), in `lab`
  idp, idp_factory  the test OIDC provider (tests/idp), see idp.py
"""

import os

import pytest

import sweep
from fixtures import PgCluster, start_coturn
from idp import idp, idp_factory  # noqa: F401  (fixtures)
from lab import Lab

ROOT_MSG = ("lab tests need root (network namespaces, nftables, wireguard-go, PostgreSQL "
            "as user postgres): run `sudo /usr/bin/python3 -m pytest tests/lab`")


def pytest_runtest_setup(item):
    if os.geteuid() != 0:
        pytest.skip(ROOT_MSG)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        lab = item.funcargs.get("lab") if hasattr(item, "funcargs") else None
        if isinstance(lab, Lab) and not lab._torn_down:
            rep.sections.append((f"lab {lab.prefix} process logs", lab.dump_logs()))


@pytest.fixture(scope="session", autouse=True)
def _sweep_dead_runs():
    """Before the first test: remove what crashed earlier runs left (live runs are safe)."""
    if os.geteuid() == 0:
        sweep.sweep()
    yield


@pytest.fixture
def lab(request):
    lab = Lab(label=request.node.nodeid)
    try:
        yield lab
    finally:
        lab.teardown()


@pytest.fixture(scope="session")
def postgres_cluster():
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres(postgres_cluster):
    db = postgres_cluster.create_database()
    try:
        yield db
    finally:
        db.drop()


@pytest.fixture
def coturn(lab):
    def start(ns, ip, port=3478, name=None):
        return start_coturn(lab, ns, ip, port=port, name=name)

    return start
