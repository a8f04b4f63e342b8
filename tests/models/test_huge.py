"""Huge models (docs/model.md §6.2): the head start is the whole solve, HiGHS's search is not run.

The size threshold is lowered for the test (a model of 4 million non-zeros takes minutes); the
path is the one a 10,000-market scenario takes. Its plan is checked by the independent
feasibility checker, and its bound against the optimum HiGHS proves on the normal path.
"""

from __future__ import annotations

import pytest

from lepton_alloc.models import SolveStatus, build_model, extract_result, parse_scenario, solve_model
from lepton_alloc.models import solve as solve_module
from lepton_alloc.models.generator import generate_scenario

from .feasibility import check_plan


@pytest.mark.parametrize("seed, levers", [(0, False), (1, True)])
def test_a_huge_model_is_solved_by_the_head_start_alone_with_an_honest_bound(
        monkeypatch: pytest.MonkeyPatch, seed: int, levers: bool) -> None:
    opts = {"carry_over": True, "levers_share": 1.0, "objective": "risk_adjusted_npv"} if levers else {}
    raw = generate_scenario(60, 8, seed, mip_rel_gap=1e-6, time_limit=20, **opts)
    sc = parse_scenario(raw)
    exact = solve_model(build_model(sc), mip_rel_gap=1e-6, time_limit=120)  # the normal path, HiGHS proves it
    assert exact.status == SolveStatus.OPTIMAL
    monkeypatch.setattr(solve_module, "HUGE_MODEL_NONZEROS", 1)
    am = build_model(sc, pyomo=False)  # as solve_scenario builds it: the Pyomo model on first use
    out = solve_model(am, time_limit=8)
    assert am.solver is None and out.transfer_seconds == 0.0  # the model never went to HiGHS's search
    assert "too large for HiGHS's search" in out.message
    assert out.best_bound is not None and out.objective_value is not None
    # a valid plan, no better than the optimum; a valid bound, no lower than it
    assert out.objective_value <= exact.objective_value + 1e-6 * abs(exact.objective_value)
    assert out.best_bound >= exact.objective_value - 1e-6 * abs(exact.objective_value)
    assert out.gap == pytest.approx((out.best_bound - out.objective_value) / abs(out.objective_value))
    assert out.status == (SolveStatus.OPTIMAL if out.gap <= 1e-6 else SolveStatus.FEASIBLE)
    res = extract_result(am, out)
    assert not am.materialised  # nor was a Pyomo model made for it (4-5 s of the build at 10,000 markets)
    assert check_plan(raw, res.to_dict()) == []  # includes: the objective is the plan's own


def test_a_huge_model_stops_once_its_plan_is_within_the_gap_of_the_lp_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = generate_scenario(60, 8, 2, mip_rel_gap=0.05, time_limit=60)
    monkeypatch.setattr(solve_module, "HUGE_MODEL_NONZEROS", 1)
    am = build_model(parse_scenario(raw))
    out = solve_model(am)
    assert out.status == SolveStatus.OPTIMAL and out.gap is not None and out.gap <= 0.05, (out.status, out.gap)
    # it stopped at its first plan within the gap: every earlier step's plan was further away
    steps = [st for st in out.head_start.steps if not st[0].startswith("lp relaxation")]
    bound = out.best_bound
    assert all((bound - objective) / abs(objective) > 0.05 for _name, objective, _t in steps[:-1])
    assert (bound - steps[-1][1]) / abs(steps[-1][1]) <= 0.05
    assert check_plan(raw, extract_result(am, out).to_dict()) == []
