"""Sweeps through a real server (real workers, real SQLite file, real gRPC channel)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from lepton_alloc.clients.client import AllocationClient, AllocationError, AsyncAllocationClient
from lepton_alloc.models.generator import generate_scenario
from lepton_alloc.models.scenario import parse_scenario
from lepton_alloc.models.status import JobState
from lepton_alloc.models.sweep import parse_sweep, run_sweep
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2 as svc
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2_grpc as svc_grpc
from lepton_alloc.server.app import RunningServer

from .conftest import start, tiny_scenario

GRID = {"grid": [{"path": "budget.limit", "how": "scale", "values": [0.2, 0.35, 1.0]}], "robust_share": 0.75}


def test_sweep_stream_answers_every_variant_as_the_local_run_and_is_stored(client: AllocationClient) -> None:
    base = tiny_scenario()
    events = list(client.sweep(GRID, base))
    kinds = [e.kind for e in events]
    assert kinds[0] == "state" and kinds[-2:] == ["summary", "done"]
    assert kinds.count("variant") == 4 and kinds.count("robust") == 4
    job_id = events[0].job_id
    assert job_id and all(e.job_id == job_id for e in events) and all(e.total == 4 for e in events)
    streamed = sorted((e.variant for e in events if e.variant), key=lambda v: v.index)
    local, local_summary = run_sweep(base, parse_sweep(GRID, base))
    assert [v.objective_value for v in streamed] == pytest.approx([23.0, 0.0, 12.0, 23.0], abs=1e-6)
    for remote, here in zip(streamed, local):
        assert (remote.index, remote.label, remote.status) == (here.index, here.label, here.status)
        assert remote.objective_value == pytest.approx(here.objective_value, abs=1e-6)
        assert remote.plan() == here.plan()
    done = events[-1].job
    assert done is not None and done.state == JobState.SUCCEEDED and done.kind == "sweep"
    summary = events[-2].summary
    assert summary is not None and summary.robust_plan == local_summary.robust_plan and summary.robust_feasible == 3
    # fetched later: the same answers, from the database
    info = client.get_sweep(job_id)
    assert (info.total, info.done) == (4, 4) and info.job.kind == "sweep"
    assert [(v.index, v.objective_value, v.plan()) for v in info.variants] == [(v.index, v.objective_value, v.plan()) for v in streamed]
    assert info.summary is not None and len(info.summary.robust_checks) == 4
    assert info.spec["grid"][0]["how"] == "SWEEP_CHANGE_SCALE"
    # watched after it ended: everything stored, in order, then the summary and the job
    replay = list(client.watch_sweep(job_id))
    assert [e.kind for e in replay] == ["state"] + ["variant"] * 4 + ["robust"] * 4 + ["summary", "done"]
    # paged reads give every variant once
    first, token = client.get_sweep_page(job_id, page_size=3)
    second, last = client.get_sweep_page(job_id, page_size=3, page_token=token)
    assert [v.index for v in first.variants + second.variants] == [0, 1, 2, 3] and last == ""


def test_the_asyncio_client_streams_a_sweep_as_the_sync_one(client: AllocationClient, server: RunningServer) -> None:
    base = tiny_scenario()

    async def run() -> tuple[list[Any], list[Any], Any]:
        async with AsyncAllocationClient(f"127.0.0.1:{server.port}", timeout=60) as c:
            events = [e async for e in c.sweep(GRID, base)]
            replay = [e async for e in c.watch_sweep(events[0].job_id)]
            with pytest.raises(AllocationError) as bad:  # a failure is the client's error, naming the field
                [e async for e in c.sweep({"grid": [{"path": "budget.nope", "how": "scale", "values": [1.0]}]}, base)]
            assert bad.value.code == grpc.StatusCode.INVALID_ARGUMENT and "budget.nope" in str(bad.value)
            return events, replay, await c.get_sweep(events[0].job_id)

    events, replay, info = asyncio.run(run())
    assert [e.kind for e in events][0] == "state" and [e.kind for e in events][-2:] == ["summary", "done"]
    streamed = sorted((e.variant for e in events if e.variant), key=lambda v: v.index)
    assert [v.objective_value for v in streamed] == pytest.approx([23.0, 0.0, 12.0, 23.0], abs=1e-6)
    assert [e.kind for e in replay] == ["state"] + ["variant"] * 4 + ["robust"] * 4 + ["summary", "done"]
    assert events[-1].job is not None and events[-1].job.state == JobState.SUCCEEDED
    # the same job read by the sync client: the same answers
    again = client.get_sweep(events[0].job_id)
    assert [(v.index, v.objective_value, v.plan()) for v in info.variants] == \
        [(v.index, v.objective_value, v.plan()) for v in again.variants] == \
        [(v.index, v.objective_value, v.plan()) for v in streamed]
    assert info.summary is not None and info.summary.robust_plan == again.summary.robust_plan


def test_a_sweeps_parts_teach_the_retry_delay(tmp_path: Path) -> None:
    # a waiting job starts when any worker task ends, a sweep's part as much as a solve: a server
    # that has run only a sweep no longer gives the first guess (1 s over the workers)
    running = start(tmp_path, workers=2)
    try:
        assert running.manager.retry_after() == pytest.approx(0.5)
        with AllocationClient(f"127.0.0.1:{running.port}") as c:
            events = list(c.sweep(GRID, tiny_scenario()))
        assert [e.kind for e in events][-2:] == ["summary", "done"]
        jobs = running.store.list_jobs(page_size=100)[0]
        assert [j.kind for j in jobs] == ["sweep"]  # no single solve ran
        assert running.manager.retry_after() < 0.5  # tiny parts: far shorter than the guess
    finally:
        running.stop(grace=0.5)


def test_submit_sweep_is_idempotent_and_listed_as_a_sweep_job(client: AllocationClient) -> None:
    base = tiny_scenario()
    a = client.submit_sweep(GRID, base, request_id="sweep-idem-1")
    b = client.submit_sweep(GRID, base, request_id="sweep-idem-1")
    assert a.job_id == b.job_id and a.kind == "sweep"
    with pytest.raises(AllocationError) as ei:
        client.submit_sweep({**GRID, "robust_share": 0.5}, base, request_id="sweep-idem-1")
    assert ei.value.code_name == "ALREADY_EXISTS"
    watched = list(client.watch(a.job_id))  # WatchJob of a sweep: its state changes, then the ended job
    assert watched[0].kind == "state" and watched[-1].job is not None
    assert watched[-1].job.kind == "sweep" and watched[-1].job.state == JobState.SUCCEEDED
    jobs, _ = client.list_jobs(page_size=50)
    assert any(j.job_id == a.job_id and j.kind == "sweep" for j in jobs)


def test_bad_sweeps_are_invalid_argument_naming_the_field_and_nothing_is_stored(client: AllocationClient, server: RunningServer) -> None:
    base = tiny_scenario()
    before = len(client.list_jobs(page_size=1000)[0])
    cases: list[tuple[Any, str]] = [
        ({"grid": [{"path": "budget.limt", "how": "scale", "values": [1]}]}, "sweep_document: grid[0].path"),
        ({"grid": [{"path": "budget.limit", "how": "scale", "values": [-1]}]}, "sweep_document: grid[0].values[0]"),
        ({"monte_carlo": {"draws": 3, "vary": [{"path": "discount_rate", "how": "add", "distribution": "normal"}]}},
         "sweep_document: monte_carlo.vary[0]"),
        ("grid: [", "sweep_document: <file>"),
    ]
    for sweep, field in cases:
        with pytest.raises(AllocationError) as ei:
            client.submit_sweep(sweep, base)
        assert ei.value.code_name == "INVALID_ARGUMENT"
        assert field in [v.field for v in ei.value.violations], ei.value.violations
    # a message whose enum was left unspecified (what protobufjs sends for an unknown word)
    from lepton_alloc.proto.lepton.allocation.v1 import sweep_pb2
    from lepton_alloc.proto import adapter

    req = svc.SubmitSweepRequest(scenario=adapter.scenario_to_proto(base),
                                 sweep=sweep_pb2.SweepSpec(grid=[sweep_pb2.SweepAxis(path="budget.limit", values=[1.0])]))
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        with pytest.raises(grpc.RpcError) as rpc:
            svc_grpc.AllocationServiceStub(ch).SubmitSweep(req, timeout=30)
        assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "sweep.grid[0].how" in rpc.value.details()
        # a Sweep stream with a bad request fails the same way
        with pytest.raises(grpc.RpcError) as rpc:
            list(svc_grpc.AllocationServiceStub(ch).Sweep(svc.SweepRequest(scenario=req.scenario, sweep=req.sweep), timeout=30))
        assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(client.list_jobs(page_size=1000)[0]) == before
    with pytest.raises(AllocationError) as ei:
        client.get_sweep("no-such-sweep")
    assert ei.value.code_name == "NOT_FOUND"
    assert client.solve(base).objective_value == pytest.approx(23.0)  # still serving


def test_cancel_stops_a_running_sweep_keeps_its_answers_and_the_server_serves(client: AllocationClient) -> None:
    base = parse_scenario(generate_scenario(60, 10, 5, time_limit=3.0, mip_rel_gap=0.0))
    spec = {"monte_carlo": {"draws": 40, "seed": 1, "vary": [
        {"path": "markets[*].market_growth", "how": "add", "distribution": "normal", "mean": 0, "sd": 0.01}]}}
    job = client.submit_sweep(spec, base)
    seen: list[Any] = []
    cancelled_at: list[float] = []

    def watch() -> None:
        for ev in client.watch_sweep(job.job_id, timeout=120):
            seen.append(ev)
            if ev.kind == "variant" and not cancelled_at and sum(e.kind == "variant" for e in seen) >= 2:
                cancelled_at.append(time.monotonic())
                client.cancel(job.job_id)

    t = threading.Thread(target=watch)
    t.start()
    t.join(120)
    assert not t.is_alive() and cancelled_at
    assert seen[-1].kind == "done" and seen[-1].job is not None and seen[-1].job.state == JobState.CANCELLED
    info = client.get_sweep(job.job_id)
    answered = [v for v in info.variants if v.status != "error"]
    assert 2 <= len(answered) < 41 and len(info.variants) == 41  # every variant is accounted for
    assert all("cancelled" in v.message for v in info.variants if v.status == "error")
    # finished before the cancel: a plan; stopped by it: status cancelled (with its best plan, if any)
    assert all(v.objective_value is not None or v.status == "cancelled" for v in answered)
    assert sum(v.objective_value is not None for v in answered) >= 2
    assert client.solve(tiny_scenario()).objective_value == pytest.approx(23.0)


def test_a_version_1_database_is_upgraded_and_keeps_its_jobs(tmp_path: Path) -> None:
    """A database written before sweeps existed (schema 1) opens with its jobs intact."""
    from lepton_alloc.server.store import SCHEMA_VERSION, JobRecord, open_store

    from .conftest import legacy_sqlite

    db = tmp_path / "v1.db"
    legacy_sqlite(db, 1, "INSERT INTO jobs (job_id, state, created_at, result_json) VALUES ('old', 'SUCCEEDED', 1.0, '{}')")
    store = open_store(str(db))
    try:
        assert store.schema_version == SCHEMA_VERSION
        old = store.get_job("old")
        assert old.kind == "solve" and old.result_json == "{}" and old.state == "SUCCEEDED"
        job, _ = store.create_job(JobRecord(job_id="new", kind="sweep"))
        assert job.kind == "sweep"
    finally:
        store.close()


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A Ray cluster of one node started as an operator would (``ray start --head``), and a
    server pointed at it (sweep_executor: HOST:PORT of its head)."""
    import socket
    import subprocess
    import sys

    import os
    import secrets

    ray_cli = str(Path(sys.executable).with_name("ray"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Ray's token authentication, as an operator would run it: the same token for the cluster
    # and for the server that drives it (RAY_AUTH_TOKEN in both environments)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)
    subprocess.run([ray_cli, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                    "--include-dashboard=false", "--disable-usage-stats"], check=True, capture_output=True, timeout=180)
    try:
        running = start(tmp_path_factory.mktemp("ray"), sweep_executor=f"127.0.0.1:{port}", ray_actors=2)
        yield running
        running.stop(grace=1.0)
        import ray

        # the stopped server let go of the cluster: a process still connected when the cluster
        # stops is ended by Ray a while later (it ended this test run, in the tests after this one)
        assert not ray.is_initialized()
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, timeout=120)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_the_same_sweep_on_ray_equals_the_worker_pool_variant_by_variant(client: AllocationClient, ray_server: RunningServer) -> None:
    """A Ray cluster with 2 actors (each keeps its model warm) against the local worker pool."""
    base = parse_scenario(generate_scenario(10, 5, 2, levers_share=0.0, mip_rel_gap=0.0))
    spec = {"monte_carlo": {"draws": 12, "seed": 4, "vary": [
        {"path": "markets[*].market_growth", "how": "add", "distribution": "normal", "mean": 0, "sd": 0.02},
        {"path": "budget.limit", "how": "scale", "distribution": "uniform", "low": 0.8, "high": 1.2}]}}
    pool = [e for e in client.sweep(spec, base)]
    with AllocationClient(f"127.0.0.1:{ray_server.port}") as ray_client:
        on_ray = [e for e in ray_client.sweep(spec, base)]
        info = ray_client.get_sweep(on_ray[0].job_id)
    assert "Ray" in " ".join(h[2] for h in info.job.history)
    a = sorted((e.variant for e in pool if e.variant), key=lambda v: v.index)
    b = sorted((e.variant for e in on_ray if e.variant), key=lambda v: v.index)
    assert len(a) == len(b) == 13
    for x, y in zip(a, b):
        assert (x.index, x.status) == (y.index, y.status)
        assert x.objective_value == pytest.approx(y.objective_value, rel=1e-9, abs=1e-6)
    assert sum(v.warm for v in b) >= 13 - 2  # each actor builds once, then re-uses its model
    sa = next(e.summary for e in pool if e.summary)
    sb = next(e.summary for e in on_ray if e.summary)
    assert sa is not None and sb is not None
    assert sa.objective_percentiles == pytest.approx(sb.objective_percentiles)
    assert json.dumps(sorted(sa.statuses.items())) == json.dumps(sorted(sb.statuses.items()))
