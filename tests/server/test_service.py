"""The gRPC service against a real server over a real channel (no mocks)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lepton_alloc.clients.client import AllocationClient, AllocationError
from lepton_alloc.models import solve_scenario
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2 as svc
from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2_grpc as svc_grpc
from lepton_alloc.proto import adapter as convert

from .conftest import TINY_OPTIMUM, slow_scenario, start, tiny_scenario, wait_until


def test_solve_inline_matches_local_solve(client: AllocationClient) -> None:
    remote = client.solve(tiny_scenario())
    local = solve_scenario(tiny_scenario())
    assert remote.status == "optimal"
    assert remote.objective_value == pytest.approx(TINY_OPTIMUM, rel=1e-9)
    assert remote.objective_value == local.objective_value
    assert remote.decisions == local.decisions == {"A": ("build", 2027), "B": ("partner", 2027)}


def test_infeasible_is_a_successful_call(client: AllocationClient) -> None:
    sc = tiny_scenario(budget=1.0)
    raw = sc.to_dict()
    raw["markets"][0]["must_enter"] = True  # entry cost 3 > budget 1
    from lepton_alloc.models.scenario import parse_scenario

    result = client.solve(parse_scenario(raw))
    assert result.status == "infeasible"
    assert result.objective_value is None


def test_invalid_scenario_lists_every_field_path(server, client: AllocationClient) -> None:
    sc = tiny_scenario()
    msg = convert.scenario_to_proto(sc)
    msg.markets[1].options[0].margin = 2.0
    msg.discount_rate = 1.5
    msg.markets[0].id = "A"
    msg.markets[1].id = "A"
    stub = svc_grpc.AllocationServiceStub(grpc.insecure_channel(f"127.0.0.1:{server.port}"))
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitSolve(svc.SubmitSolveRequest(scenario=msg), timeout=10)
    err = AllocationError.from_rpc_error(info.value)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in err.violations}
    assert {"discount_rate", "markets[1].options[0].margin", "markets[1].id"} <= fields
    assert "Traceback" not in err.message
    # the server keeps serving
    assert client.solve(tiny_scenario()).status == "optimal"


def test_bad_request_fields(client: AllocationClient) -> None:
    with pytest.raises(AllocationError) as info:
        client.solve(tiny_scenario(), time_limit_seconds=-1)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in info.value.violations] == ["options.time_limit_seconds"]
    with pytest.raises(AllocationError) as info:
        client.get_job("no-such-job")
    assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_scenario_storage_and_solve_by_name(client: AllocationClient) -> None:
    s1 = client.create_scenario("emea-2027", tiny_scenario(budget=5.0), description="first")
    assert s1.revision == 1
    with pytest.raises(AllocationError) as info:
        client.create_scenario("emea-2027", tiny_scenario())
    assert info.value.code == grpc.StatusCode.ALREADY_EXISTS
    s2 = client.update_scenario("emea-2027", tiny_scenario(budget=10.0), description="more budget")
    assert s2.revision == 2 and s2.sha256 != s1.sha256
    assert client.get_scenario("emea-2027", revision=1).scenario == tiny_scenario(budget=5.0)
    assert client.get_scenario("emea-2027").revision == 2
    names = [s.name for s in client.list_scenarios()[0]]
    assert "emea-2027" in names
    # budget 5 a year admits one entry a year: A in 2027 (3 x 5 - 3 = 12) and B in 2028
    # (2 x 5 - 4 = 6), or the mirror image (11 + 7): 18; revision 2 admits both in 2027
    r1 = client.solve(scenario_name="emea-2027", revision=1)
    r2 = client.solve(scenario_name="emea-2027")
    assert r1.objective_value == pytest.approx(18.0) and r2.objective_value == pytest.approx(TINY_OPTIMUM)
    assert sorted(y for _, y in r1.decisions.values()) == [2027, 2028]
    client.delete_scenario("emea-2027")
    with pytest.raises(AllocationError) as info:
        client.get_scenario("emea-2027")
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(AllocationError) as info:
        client.create_scenario("bad name!", tiny_scenario())
    assert [v.field for v in info.value.violations] == ["name"]
    with pytest.raises(AllocationError) as info:  # '$' must not let a trailing newline through
        client.create_scenario("emea\n", tiny_scenario())
    assert [v.field for v in info.value.violations] == ["name"]


def test_submit_watch_get_list(client: AllocationClient) -> None:
    job = client.submit(tiny_scenario(), request_id="watch-1")
    events = list(client.watch(job.job_id, timeout=60))
    assert events[-1].kind == "done" and events[-1].state == "SUCCEEDED"
    final = events[-1].job
    assert final is not None and final.result is not None
    assert final.result.objective_value == pytest.approx(TINY_OPTIMUM)
    got = client.get_job(job.job_id)
    assert got.state == "SUCCEEDED" and [h[0] for h in got.history] == ["QUEUED", "RUNNING", "SUCCEEDED"]
    jobs, _ = client.list_jobs(state="succeeded", page_size=1000)
    assert job.job_id in {j.job_id for j in jobs}
    assert all(j.state == "SUCCEEDED" for j in jobs)


def test_idempotent_resubmission_runs_one_solve(server, client: AllocationClient) -> None:
    first = client.submit(tiny_scenario(name="idem"), request_id="idem-1")
    second = client.submit(tiny_scenario(name="idem"), request_id="idem-1")
    assert first.job_id == second.job_id
    client.watch(first.job_id, timeout=60).__next__()
    assert wait_until(lambda: client.get_job(first.job_id).state == "SUCCEEDED", 30)
    with pytest.raises(AllocationError) as info:
        client.submit(tiny_scenario(budget=3.0, name="idem"), request_id="idem-1")
    assert info.value.code == grpc.StatusCode.ALREADY_EXISTS
    audits = [a for a in server.store.list_audit(limit=10000) if a.job_id == first.job_id]
    assert len(audits) == 1  # exactly one solve ran


def test_only_a_waiting_solve_keeps_a_typed_result_in_memory(server, client: AllocationClient) -> None:
    # a unary Solve answers from the typed result its job leaves in memory; a job submitted
    # through the jobs API is read from the store, so nothing of it is kept in the server
    job = client.submit(tiny_scenario(name="kept"))
    assert wait_until(lambda: client.get_job(job.job_id).state == "SUCCEEDED", 30)
    assert server.manager.take_result(job.job_id) is None
    assert client.get_job(job.job_id).result.objective_value == pytest.approx(TINY_OPTIMUM)
    before = set(server.manager._results)
    solved = client.solve(tiny_scenario(name="kept"))  # its result was kept, then taken by the call
    assert solved.objective_value == pytest.approx(TINY_OPTIMUM) and set(server.manager._results) == before


def test_an_end_refused_because_the_job_had_ended_is_still_audited(server, client: AllocationClient) -> None:
    # the race a cancel or a take-over wins against a finishing solve, played out directly: the
    # job's end is recorded by the manager once more, the store refuses the move (the job is
    # terminal), and the end's audit record is written on its own; the job itself is unchanged
    from lepton_alloc.server.store import JobState

    job = client.submit(tiny_scenario(name="raced"))
    assert wait_until(lambda: client.get_job(job.job_id).state == "SUCCEEDED", 30)
    before = [a for a in server.store.list_audit(limit=10000) if a.job_id == job.job_id]
    assert [a.status for a in before] == ["optimal"]
    ended = server.manager._finish(job.job_id, JobState.CANCELLED, error="late",
                                   audit_of=server.manager._audit_of("cancelled", None, ""))
    assert ended.state == JobState.SUCCEEDED and ended.error is None
    after = [a for a in server.store.list_audit(limit=10000) if a.job_id == job.job_id]
    assert len(after) == 2 and after[0].status == "cancelled" and after[0].action == "solve"
    got = client.get_job(job.job_id)
    assert got.state == "SUCCEEDED" and [h[0] for h in got.history] == ["QUEUED", "RUNNING", "SUCCEEDED"]
    assert got.result is not None and got.result.objective_value == pytest.approx(TINY_OPTIMUM)


def test_the_last_progress_event_carries_the_best_plan_even_when_throttled(tmp_path: Path) -> None:
    # with a progress interval longer than the solve, every event after the first is held back;
    # the newest one is still sent before the job's end: the watcher's last progress event is the
    # solve's best plan, not the head start's first one (2,032.29 on the built-in example)
    from lepton_alloc.models import load_builtin_example

    running = start(tmp_path, workers=1, progress_interval=30.0)
    try:
        with AllocationClient(f"127.0.0.1:{running.port}") as c:
            job = c.submit(load_builtin_example())
            events = list(c.watch(job.job_id, timeout=60))
        progress = [e.progress for e in events if e.kind == "progress"]
        final = events[-1].job
        assert events[-1].kind == "done" and final is not None and final.result is not None
        assert final.result.status == "optimal" and final.result.objective_value == pytest.approx(2050.5771, abs=1e-3)
        assert len(progress) == 2  # the first event, and the newest one held back
        assert progress[0].objective == pytest.approx(2032.2877, abs=1e-3)  # the head start's plan
        assert progress[-1].objective == pytest.approx(final.result.objective_value, rel=1e-9)
    finally:
        running.stop(grace=0.5)


def test_progress_events_stream_incumbents(client: AllocationClient) -> None:
    job = client.submit(slow_scenario(), time_limit_seconds=6)
    progress = []
    final = None
    for ev in client.watch(job.job_id, timeout=60):
        if ev.kind == "progress":
            progress.append(ev.progress)
        if ev.kind == "done":
            final = ev.job
    assert final is not None and final.result is not None
    assert final.result.status == "feasible"  # time-limited with an incumbent: not "optimal"
    assert final.result.gap is not None and final.result.gap > 0
    incumbents = [p for p in progress if p.kind == "incumbent" and p.objective is not None]
    assert incumbents, "no incumbent events"
    # incumbents only improve (maximisation) and never beat the final best bound
    objs = [p.objective for p in incumbents]
    assert objs == sorted(objs)
    assert max(objs) <= final.result.best_bound + 1e-6 * abs(final.result.best_bound)
    times = [p.elapsed_seconds for p in progress]
    assert times == sorted(times)


def test_deadline_interrupts_the_solve_and_frees_the_worker(server, client: AllocationClient) -> None:
    t0 = time.monotonic()
    with pytest.raises(AllocationError) as info:
        client.solve(slow_scenario(), timeout=3.0)
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - t0 < 6
    # within 2 s the worker is idle again: it honoured the interrupt, or (HiGHS polls its
    # interrupt callback only between phases, sometimes seconds apart) it was killed and replaced
    assert wait_until(lambda: server.pool.busy_count() == 0, 2.0)
    assert all(w.alive() for w in server.pool.workers)
    assert client.solve(tiny_scenario()).status == "optimal"


def test_cancel_mid_solve(server, client: AllocationClient) -> None:
    job = client.submit(slow_scenario(seed=8))
    assert wait_until(lambda: client.get_job(job.job_id).state == "RUNNING", 20)
    time.sleep(1.0)
    t0 = time.monotonic()
    client.cancel(job.job_id)
    assert wait_until(lambda: client.get_job(job.job_id).state == "CANCELLED", 3.0)
    assert time.monotonic() - t0 < 2.0
    assert wait_until(lambda: server.pool.busy_count() == 0, 2.0)
    done = client.get_job(job.job_id)
    if done.result is not None:  # the best plan found before the cancel is kept
        assert done.result.status == "cancelled"


def test_solver_ignoring_interrupt_is_killed_and_replaced(server, client: AllocationClient) -> None:
    job = client.submit(tiny_scenario(), metadata=[("x-lepton-debug-ignore-cancel", "60")])
    assert wait_until(lambda: client.get_job(job.job_id).state == "RUNNING", 10)
    assert wait_until(lambda: any(w.busy_job == job.job_id for w in server.pool.workers), 5)
    busy = [w for w in server.pool.workers if w.busy_job == job.job_id][0]
    old_pid = busy.pid
    client.cancel(job.job_id)
    assert wait_until(lambda: client.get_job(job.job_id).state == "CANCELLED", 5.0)
    assert busy.pid != old_pid and busy.alive()
    assert "worker was replaced" in client.get_job(job.job_id).error
    assert client.solve(tiny_scenario()).objective_value == pytest.approx(TINY_OPTIMUM)


def test_health_reflection_and_metrics(tmp_path: Path) -> None:
    running = start(tmp_path, metrics_port=0, workers=1)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
        health_stub = health_pb2_grpc.HealthStub(channel)
        resp = health_stub.Check(health_pb2.HealthCheckRequest(service="lepton.allocation.v1.AllocationService"), timeout=5)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = list(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
        services = {s.name for s in answers[0].list_services_response.service}
        assert "lepton.allocation.v1.AllocationService" in services
        port = running.metrics.serve(0)
        with AllocationClient(f"127.0.0.1:{running.port}") as c:
            c.solve(tiny_scenario())
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'lepton_solves_total{status="optimal"} 1.0' in body
        assert "lepton_queue_depth" in body and "lepton_active_workers" in body
        running.health.set("lepton.allocation.v1.AllocationService", health_pb2.HealthCheckResponse.SERVING)
        running.stop(grace=0.5)
        channel.close()
    finally:
        running.stop(grace=0.5)


def test_queue_full_is_resource_exhausted(tmp_path: Path) -> None:
    running = start(tmp_path, workers=1, queue_size=2)
    try:
        with AllocationClient(f"127.0.0.1:{running.port}") as c:
            busy = c.submit(slow_scenario())
            assert wait_until(lambda: c.get_job(busy.job_id).state == "RUNNING", 20)
            waiting = c.submit(tiny_scenario())
            waiting_again = c.submit(tiny_scenario(), request_id="again-1")
            with pytest.raises(AllocationError) as info:
                c.submit(tiny_scenario())
            assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            # with a google.rpc.RetryInfo: a job's typical length over the workers; no job has
            # ended yet, so the first guess (one second) over the one worker
            assert info.value.retry_after == pytest.approx(1.0) and "retrying in 1 s" in str(info.value)
            # a full queue refuses before the scenario is read: an invalid one gets the same answer
            bad = "name: bad\nstart_year: 2027\nhorizon_years: 0\nmarkets: []\n"
            delays = []
            for call in (lambda: c.solve(document=bad), lambda: c.submit(document=bad)):
                with pytest.raises(AllocationError) as info:
                    call()
                assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value
                assert "queue" in str(info.value)
                delays.append(info.value.retry_after)
            # refused callers get turns one place apart (not one delay for all, which sent a crowd
            # back together): the second refusal 2 s, the third 3 s, less the time in between
            assert delays == [pytest.approx(2.0, abs=0.25), pytest.approx(3.0, abs=0.25)]
            # ... but a retry with a known request_id still gets its job back, full or not
            assert c.submit(tiny_scenario(), request_id="again-1").job_id == waiting_again.job_id
            c.cancel(busy.job_id)
            assert wait_until(lambda: c.get_job(waiting.job_id).state == "SUCCEEDED", 20)
            # three jobs have ended (the cancelled one, then two short ones): the guess follows
            # their lengths, within its bounds
            assert wait_until(lambda: c.get_job(waiting_again.job_id).state == "SUCCEEDED", 20)
            assert 0.05 <= running.manager.retry_after() <= 30.0 and running.manager.retry_after() != 1.0
            # the line of turns is never longer than the longest delay (30 s), however many were refused
            with running.manager._lock:
                turns = [running.manager._retry_turn() for _ in range(1000)]
            assert turns == sorted(turns) and turns[-1] == pytest.approx(30.0, abs=0.01) and max(turns) <= 30.0
            c.submit(tiny_scenario())  # room again
            with pytest.raises(AllocationError) as info:  # with room, the invalid scenario is judged
                c.submit(document=bad)
            assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert "horizon_years" in str(info.value)
    finally:
        running.stop(grace=0.5)


def test_restart_keeps_data_and_reports_interrupted_jobs(tmp_path: Path) -> None:
    db = tmp_path / "lepton.db"
    # a real server process, killed hard in the middle of a solve
    env = {**os.environ, "LEPTON_TEST_HOOKS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lepton_alloc.clients.cli", "serve", "--address", "127.0.0.1:0",
         "--database", str(db), "--workers", "1"],
        stderr=subprocess.PIPE, text=True, env=env)
    try:
        address = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and address is None:
            line = proc.stderr.readline()
            if line.startswith("listening on "):
                address = line.split()[-1]
        assert address, "server did not start"
        with AllocationClient(address) as c:
            c.create_scenario("keep", tiny_scenario(budget=5.0))
            c.update_scenario("keep", tiny_scenario(budget=10.0))
            done = c.submit(tiny_scenario())
            assert wait_until(lambda: c.get_job(done.job_id).state == "SUCCEEDED", 30)
            running = c.submit(slow_scenario())
            assert wait_until(lambda: c.get_job(running.job_id).state == "RUNNING", 30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    restarted = start(tmp_path, workers=1)
    try:
        with AllocationClient(f"127.0.0.1:{restarted.port}") as c:
            assert c.get_scenario("keep").revision == 2
            assert c.get_scenario("keep", revision=1).scenario == tiny_scenario(budget=5.0)
            finished = c.get_job(done.job_id)
            assert finished.state == "SUCCEEDED" and finished.result is not None
            assert finished.result.objective_value == pytest.approx(TINY_OPTIMUM)
            lost = c.get_job(running.job_id)
            assert lost.state == "FAILED"
            assert "server stopped" in lost.error
            assert json.loads(json.dumps(lost.history[-1]))[0] == "FAILED"
    finally:
        restarted.stop(grace=0.5)


def test_crashed_worker_fails_its_job_and_is_replaced(server, client: AllocationClient) -> None:
    job = client.submit(slow_scenario(seed=9))
    assert wait_until(lambda: any(w.busy_job == job.job_id for w in server.pool.workers), 20)
    worker = next(w for w in server.pool.workers if w.busy_job == job.job_id)
    time.sleep(1.0)  # the task has reached the worker and the solve is under way
    old_pid = worker.pid
    os.kill(old_pid, signal.SIGKILL)  # the solver process dies (OOM killer, segfault, …)
    assert wait_until(lambda: client.get_job(job.job_id).state == "FAILED", 10)
    failed = client.get_job(job.job_id)
    assert "crashed" in failed.error and "Traceback" not in failed.error
    assert worker.pid != old_pid and worker.alive()
    assert client.solve(tiny_scenario()).objective_value == pytest.approx(TINY_OPTIMUM)
