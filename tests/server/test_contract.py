"""The contract's newer parts, end to end through a real server: the scenario document source,
ValidateScenario, ListJobs views and history, job handles, revision numbering after re-create."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from lepton_alloc.clients.client import AllocationClient, AllocationError, AsyncAllocationClient
from lepton_alloc.models.loader import builtin_example_path, load_builtin_example
from lepton_alloc.models.scenario import entry_columns
from lepton_alloc.models.status import JobState
from lepton_alloc.server.app import RunningServer

from .conftest import TINY_OPTIMUM, tiny_scenario

TINY_DOC = """
name: tiny-doc
start_year: 2027
horizon_years: 3
markets:
  - {id: A, market_size: 100, options: [{mode: Build, initial_share: 0.1, margin: 0.5, entry_cost: 3}]}
  - {id: B, market_size: 50, options: [{mode: partner, initial_share: 0.2, margin: 0.5, entry_cost: 4}]}
budget: {limit: 10}
solver: {mip_rel_gap: 0}
"""


def test_document_source_solves_like_the_parsed_scenario(client: AllocationClient) -> None:
    from_doc = client.solve(document=TINY_DOC)
    assert from_doc.status == "optimal" and from_doc.objective_value == pytest.approx(TINY_OPTIMUM, abs=1e-6)
    parsed = tiny_scenario(name="tiny-doc")
    assert from_doc.scenario_sha256 == parsed.sha256()  # same canonical scenario, same hash
    assert (from_doc.currency, from_doc.money_unit) == ("USD", "millions")


def test_document_errors_use_the_file_paths_and_catch_misspelled_keys(client: AllocationClient) -> None:
    bad = TINY_DOC.replace("margin: 0.5, entry_cost: 3", "margin: 5, entry_cost: 3").replace(
        "solver: {mip_rel_gap: 0}", "solver: {mip_rel_gap: 0, time_limit_sconds: 5}")
    with pytest.raises(AllocationError) as info:
        client.solve(document=bad)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field: v.description for v in info.value.violations}
    assert fields == {"markets[0].options[0].margin": "must be between 0 and 1, got 5",
                      "solver.time_limit_sconds": "unknown field"}
    with pytest.raises(AllocationError) as info:
        client.solve(document="horizon_years: 3\nmarkets: [ {id: A\n")
    assert [v.field for v in info.value.violations] == ["<file>"]


def test_validate_answers_violations_or_model_size(client: AllocationClient) -> None:
    ok = client.validate(document=builtin_example_path().read_text(encoding="utf-8"))
    example = load_builtin_example()
    assert ok.valid and ok.violations == []
    assert ok.scenario_sha256 == example.sha256()
    assert (ok.markets, ok.years, ok.entry_columns) == (20, 10, entry_columns(example))
    assert ok.entry_columns > 0
    bad = client.validate(document=TINY_DOC.replace("horizon_years: 3", "horizon_years: 0"))
    assert not bad.valid and [v.field for v in bad.violations] == ["horizon_years"]
    assert bad.scenario_sha256 == "" and bad.entry_columns == 0


def test_list_jobs_summaries_by_default_full_on_request(client: AllocationClient) -> None:
    job = client.submit(tiny_scenario(name="listed"), request_id="list-view-1")
    result = job.result(timeout=60)
    assert result.objective_value == pytest.approx(TINY_OPTIMUM, abs=1e-6)
    jobs, _ = client.list_jobs(page_size=1000)
    mine = next(j for j in jobs if j.job_id == job.job_id)
    assert mine.result is not None and mine.result.markets == [] and mine.result.years == []
    assert mine.result.objective_value == pytest.approx(TINY_OPTIMUM, abs=1e-6)
    assert mine.result.kpis is not None and mine.result.kpis.markets_entered == 2
    assert [h[0] for h in mine.history] == [JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED]
    full, _ = client.list_jobs(page_size=1000, full=True)
    mine_full = next(j for j in full if j.job_id == job.job_id)
    assert mine_full.result == result  # the same result GetJob gives


def test_job_handle_result_and_cancel(client: AllocationClient) -> None:
    handle = client.submit(tiny_scenario(name="handle"))
    assert handle.state in (JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED)
    assert handle.result(timeout=60).objective_value == pytest.approx(TINY_OPTIMUM, abs=1e-6)
    assert handle.state == JobState.SUCCEEDED
    assert handle.cancel().state == JobState.SUCCEEDED  # cancelling an ended job changes nothing
    assert client.job(handle.job_id).info.result == handle.result()


def test_async_client_shares_the_implementation(server: RunningServer) -> None:
    async def run() -> tuple[float | None, bool, int]:
        async with AsyncAllocationClient(f"127.0.0.1:{server.port}") as c:
            handle = await c.submit(document=TINY_DOC)
            result = await handle.result(timeout=60)
            check = await c.validate(tiny_scenario())
            stored = await c.create_scenario("async-doc", document=TINY_DOC, timeout=10)
            return result.objective_value, check.valid, stored.revision

    objective, valid, revision = asyncio.run(run())
    assert objective == pytest.approx(TINY_OPTIMUM, abs=1e-6) and valid and revision == 1


def test_recreated_scenario_starts_at_revision_one(client: AllocationClient) -> None:
    first = client.create_scenario("again", document=TINY_DOC, description="first life")
    second = client.update_scenario("again", tiny_scenario(budget=20.0))
    assert (first.revision, second.revision) == (1, 2)
    client.delete_scenario("again")
    reborn = client.create_scenario("again", tiny_scenario(budget=5.0))
    assert reborn.revision == 1  # as the contract says, not 3
    assert client.get_scenario("again").scenario.budget.limit == (5.0, 5.0, 5.0)
    with pytest.raises(AllocationError) as info:
        client.get_scenario("again", revision=2)
    assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_create_with_both_sources_is_refused(client: AllocationClient) -> None:
    from lepton_alloc.proto import adapter
    from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2 as svc
    from lepton_alloc.proto.lepton.allocation.v1 import allocation_service_pb2_grpc as svc_grpc

    stub = svc_grpc.AllocationServiceStub(client._channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateScenario(svc.CreateScenarioRequest(name="both", scenario=adapter.scenario_to_proto(tiny_scenario()),
                                                      scenario_document=TINY_DOC), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "scenario_document" in (info.value.details() or "")


def test_stored_scenario_round_trips_currency_labels(client: AllocationClient, tmp_path: Path) -> None:
    doc = TINY_DOC + "currency: EUR\nmoney_unit: thousands\n"
    stored = client.create_scenario("eur-plan", document=doc)
    assert (stored.scenario.currency, stored.scenario.money_unit) == ("EUR", "thousands")
    result = client.solve(scenario_name="eur-plan")
    assert (result.currency, result.money_unit) == ("EUR", "thousands")


def test_worker_retires_after_a_large_model_and_the_next_solve_runs(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that solved a large model exits instead of collecting it; its successor serves."""
    from lepton_alloc.server import jobs

    from .conftest import start

    monkeypatch.setattr(jobs, "RETIRE_AFTER_COLUMNS", 1)  # every model counts as large here
    running = start(tmp_path, workers=1)
    try:
        worker = running.pool.workers[0]
        with AllocationClient(f"127.0.0.1:{running.port}", timeout=60) as c:
            first_pid = worker.pid
            assert c.solve(tiny_scenario()).objective_value == pytest.approx(TINY_OPTIMUM, abs=1e-6)
            worker.process.join(10)
            assert not worker.alive()  # it ended itself after answering
            assert c.solve(tiny_scenario(budget=7.0)).status == "optimal"  # a fresh worker took over
            second_pid = worker.pid
            assert second_pid != first_pid  # (it retires in turn: every model counts as large here)
            assert c.solve(tiny_scenario()).objective_value == pytest.approx(TINY_OPTIMUM, abs=1e-6)
            assert worker.pid not in (first_pid, second_pid) and worker.replaced == 0  # retired, not crashed
    finally:
        running.stop(grace=0.5)
