"""The built model is reusable: a limit changed through its mutable Param and re-solved in place
(the persistent HiGHS interface) gives the same optimum as a fresh build of the changed scenario."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lepton_alloc.models import build_model, extract_result, solve_model
from lepton_alloc.models.generator import generate_scenario
from lepton_alloc.models.scenario import Budget, Headcount, parse_scenario


def _fresh(sc):  # noqa: ANN001, ANN202
    am = build_model(sc)
    return solve_model(am, mip_rel_gap=0.0)


def test_budget_and_headcount_resolve_in_place_match_fresh_builds() -> None:
    sc = parse_scenario(generate_scenario(8, 4, seed=11, mip_rel_gap=0.0, time_limit=60))
    assert sc.budget.limit is not None and sc.headcount.cap is not None
    am = build_model(sc)
    base = solve_model(am, mip_rel_gap=0.0)
    assert base.status == "optimal"
    solver = am._solver

    tighter = tuple(0.6 * b for b in sc.budget.limit)
    for t, b in enumerate(tighter):
        am.model.budget_limit_param[t] = b
    again = solve_model(am, mip_rel_gap=0.0)
    assert am._solver is solver  # re-solved in place, not rebuilt
    fresh = _fresh(replace(sc, budget=Budget(tighter, sc.budget.carry_over)))
    assert again.status == fresh.status == "optimal"
    assert again.objective_value == pytest.approx(fresh.objective_value, rel=1e-9, abs=1e-9)
    assert again.objective_value < base.objective_value  # the tighter budget binds

    caps = tuple(0.5 * c for c in sc.headcount.cap)
    for t, c in enumerate(caps):
        am.model.headcount_cap_param[t] = c
    third = solve_model(am, mip_rel_gap=0.0)
    fresh3 = _fresh(replace(sc, budget=Budget(tighter, sc.budget.carry_over),
                            headcount=Headcount(caps, sc.headcount.max_net_hires, sc.headcount.initial)))
    assert third.objective_value == pytest.approx(fresh3.objective_value, rel=1e-9, abs=1e-9)
    # the result of a re-solve is extracted like any other
    assert extract_result(am, third).status == "optimal"
