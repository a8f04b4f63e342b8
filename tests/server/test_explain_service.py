"""ExplainJob and ComparePlans through a real server: re-solves spread over the workers, answers
checked against independent local solves."""

from __future__ import annotations

import copy
from typing import Any

import grpc
import pytest

from lepton_alloc.clients.client import AllocationClient, AllocationError
from lepton_alloc.models import parse_scenario, solve_scenario

TIGHT: dict[str, Any] = {
    "name": "tight", "start_year": 2027, "horizon_years": 3,
    "markets": [
        {"id": "A", "market_size": 100, "options": [{"mode": "build", "initial_share": 0.1, "margin": 0.5, "entry_cost": 3}]},
        {"id": "B", "market_size": 50, "options": [{"mode": "partner", "initial_share": 0.2, "margin": 0.5, "entry_cost": 4}]},
        {"id": "C", "market_size": 30, "options": [{"mode": "acquire", "initial_share": 0.3, "margin": 0.4, "entry_cost": 6}]},
    ],
    "budget": {"limit": [5.0, 5.0, 5.0]},
    "solver": {"mip_rel_gap": 0},
}


def _local(raw: dict[str, Any]) -> float | None:
    return solve_scenario(parse_scenario(raw), mip_rel_gap=0.0).objective_value


def test_explain_job_step_and_market_values_equal_independent_solves(client: AllocationClient) -> None:
    job = client.submit(TIGHT)
    base = job.result(timeout=60)
    assert base.objective_value is not None
    explained = client.explain(job.job_id, relative_step=0.2, time_budget_seconds=60)
    assert explained.objective_value == base.objective_value
    budget_rows = {lim.constraint: lim for lim in explained.limits if lim.constraint.startswith("budget[")}
    assert set(budget_rows) == {"budget[2027]", "budget[2028]", "budget[2029]"}
    for name, lim in budget_rows.items():
        assert [st.direction for st in lim.steps] == ["down", "up"]
        year = int(name[len("budget["):-1])
        for st in lim.steps:
            moved = copy.deepcopy(TIGHT)
            moved["budget"]["limit"][year - 2027] = st.limit
            assert st.limit == pytest.approx(5.0 * (0.8 if st.direction == "down" else 1.2))
            expected = _local(moved)
            assert not st.cut_short and st.objective == pytest.approx(expected, abs=1e-6)
            assert st.objective_change == pytest.approx(expected - base.objective_value, abs=1e-6)
    values = {v.market_id: v for v in explained.market_values}
    assert set(values) == {"A", "B", "C"}
    for m in base.markets:
        forced = copy.deepcopy(TIGHT)
        spec = next(x for x in forced["markets"] if x["id"] == m.id)
        if m.entered:
            forced["markets"].remove(spec)  # forced out: as if the market were not there
        else:
            spec["must_enter"] = True
        v = values[m.id]
        assert v.entered == m.entered and not v.cut_short
        assert v.objective == pytest.approx(_local(forced), abs=1e-6)


def test_explain_job_refuses_a_job_without_a_plan(client: AllocationClient) -> None:
    infeasible = copy.deepcopy(TIGHT)
    # A (3) and B (4) must both enter in 2027 against a 2027 budget of 5
    infeasible["markets"][0]["must_enter"] = infeasible["markets"][1]["must_enter"] = True
    infeasible["markets"][0]["latest_entry_year"] = infeasible["markets"][1]["latest_entry_year"] = 2027
    job = client.submit(infeasible)
    job.result(timeout=60)
    assert job.info.result is not None and job.info.result.infeasibility is not None
    assert set(job.info.result.infeasibility.constraints) == {"must_enter[A]", "must_enter[B]", "budget[2027]"}
    with pytest.raises(AllocationError) as info:
        client.explain(job.job_id, time_budget_seconds=5)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(AllocationError) as info:
        client.explain(job.job_id, relative_step=1.5)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in info.value.violations] == ["relative_step"]


def test_compare_plans_of_two_jobs(client: AllocationClient) -> None:
    looser = copy.deepcopy(TIGHT)
    looser["budget"]["limit"] = [20.0, 20.0, 20.0]
    a, b = client.submit(TIGHT), client.submit(looser)
    ra, rb = a.result(timeout=60), b.result(timeout=60)
    comparison = client.compare(a.job_id, b.job_id)
    decisions_a = {m.id: (m.mode, m.entry_year) for m in ra.markets}
    decisions_b = {m.id: (m.mode, m.entry_year) for m in rb.markets}
    assert sorted(comparison.changed_markets) == sorted(k for k in decisions_a if decisions_a[k] != decisions_b[k])
    objective = next(k for k in comparison.kpis if k.name == "objective_value")
    assert objective.delta == pytest.approx(rb.objective_value - ra.objective_value)
    assert {lim.name for lim in comparison.limits} == {"budget[2027]", "budget[2028]", "budget[2029]"}
    assert all(lim.delta == pytest.approx(15.0) for lim in comparison.limits)
