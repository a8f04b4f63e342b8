"""Fixtures: a real server (real worker processes, real SQLite file) on a free port."""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest

from lepton_alloc.clients.client import AllocationClient
from lepton_alloc.models.generator import generate_scenario
from lepton_alloc.models.scenario import Scenario, parse_scenario
from lepton_alloc.server.app import RunningServer, start_server
from lepton_alloc.server.config import load_config


def start(tmp: Path, **overrides: Any) -> RunningServer:
    settings = {"address": "127.0.0.1:0", "workers": 2, "queue_size": 4, "database": str(tmp / "lepton.db"),
                "metrics_port": 0, "test_hooks": True, "grace": 1.0, "kill_grace": 1.0, "max_time_limit": 120}
    settings.update(overrides)
    return start_server(load_config(None, settings, env={}))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start(tmp_path_factory.mktemp("srv"))
    yield running
    running.stop(grace=1.0)


@pytest.fixture()
def client(server: RunningServer) -> Iterator[AllocationClient]:
    with AllocationClient(f"127.0.0.1:{server.port}", timeout=60.0) as c:
        yield c


def tiny_scenario(budget: float = 10.0, name: str = "tiny") -> Scenario:
    """Two markets, hand-checkable: A (build) pays, B (partner) pays; budget allows both."""
    return parse_scenario({
        "name": name, "start_year": 2027, "horizon_years": 3,
        "markets": [
            {"id": "A", "market_size": 100, "options": [
                {"mode": "build", "initial_share": 0.1, "margin": 0.5, "entry_cost": 3}]},
            {"id": "B", "market_size": 50, "options": [
                {"mode": "partner", "initial_share": 0.2, "margin": 0.5, "entry_cost": 4}]},
        ],
        "budget": {"limit": budget},
        "solver": {"mip_rel_gap": 0},
    })


# A: 3 years x 0.5*100*0.1 = 15 contribution, -3 entry => 12; B: 3 x 0.5*50*0.2 = 15 - 4 => 11.
TINY_OPTIMUM = 23.0


def slow_scenario(seed: int = 7) -> Scenario:
    """A generated scenario that HiGHS (one thread) cannot close to gap 0 within many seconds."""
    return parse_scenario(generate_scenario(150, 10, seed=seed, mip_rel_gap=0.0, time_limit=100))


def wait_until(predicate: Any, timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


# ------------------------------------------------------------------------------ databases
def _postgres_admin_url() -> str:
    import os

    url = os.environ.get("LEPTON_TEST_POSTGRES", "")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("LEPTON_TEST_POSTGRES is empty: .ci/ensure-postgres could not start PostgreSQL")
        pytest.skip("no PostgreSQL for this run (LEPTON_TEST_POSTGRES is empty; `make test` starts one)")
    return url


@contextlib.contextmanager
def fresh_database(kind: str, tmp: Path) -> Iterator[str]:
    """The url of a new, empty database of ``kind`` ('sqlite': a file under ``tmp``;
    'postgresql': a database created on the test server and dropped afterwards)."""
    if kind == "sqlite":
        yield str(tmp / f"store-{uuid.uuid4().hex[:8]}.db")
        return
    import psycopg

    admin = _postgres_admin_url()
    name = f"lepton_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each kind: the test runs once on SQLite and once on PostgreSQL."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


def legacy_sqlite(path: Path, version: int, *rows: str) -> None:
    """A SQLite file as an earlier release wrote it: schema ``version`` (its upgrade steps applied
    in order), then ``rows`` (INSERT statements) — for the tests of upgrading in place."""
    import sqlite3

    from lepton_alloc.server.store import _UPGRADES

    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
    for v in range(1, version + 1):
        for sql in _UPGRADES[v]:
            raw.execute(sql)
        raw.execute("INSERT INTO schema_version VALUES (?, 0)", (v,))
    for sql in rows:
        raw.execute(sql)
    raw.commit()
    raw.close()
