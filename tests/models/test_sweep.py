"""Sweeps (docs/model.md §7): variants, warm solves, the summary and the robust plan.

Every figure is checked against something a wrong implementation would get wrong: hand-computed
optima of a two-market scenario, cold solves of the same variant scenarios, and the independent
evaluator of tests/models/feasibility.py on every variant's plan.
"""

from __future__ import annotations

import math

import pytest

from lepton_alloc.models import solve_scenario
from lepton_alloc.models.generator import generate_scenario
from lepton_alloc.models.scenario import ScenarioError, parse_scenario
from lepton_alloc.models.sweep import (
    Entry, SweepSpec, parse_sweep, parse_sweep_document, run_sweep, summarize, variant_scenario, variants,
)

from ..server.conftest import tiny_scenario
from .feasibility import PlanEvaluator


def grid(*axes: tuple[str, str, list[float]], **extra: object) -> dict[str, object]:
    return {"grid": [{"path": p, "how": h, "values": v} for p, h, v in axes], **extra}


# ----------------------------------------------------------------------------- hand-computed


def test_budget_grid_on_two_markets_matches_hand_computed_optima_and_summary() -> None:
    # A (build): 3 years x 0.5*100*0.1 = 15 contribution - entry 3 = 12; B (partner): 15 - 4 = 11.
    # budget 10/year: both (23); 3.5: A only (B's entry of 4 never fits a year); 2: nothing (0).
    base = tiny_scenario()
    spec = parse_sweep(grid(("budget.limit", "scale", [0.2, 0.35, 1.0]), robust_share=0.75), base)
    results, summary = run_sweep(base, spec)
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert [r.label for r in results] == ["base", "budget.limit ×0.2", "budget.limit ×0.35", "budget.limit ×1"]
    assert [r.objective_value for r in results] == pytest.approx([23.0, 0.0, 12.0, 23.0], abs=1e-6)
    assert [sorted(e.market_id for e in r.entries) for r in results] == [["A", "B"], [], ["A"], ["A", "B"]]
    assert [r.warm for r in results] == [False, True, True, True]  # one model, re-targeted three times
    assert all(r.status == "optimal" for r in results)
    # the summary
    freq = {f.market_id: f for f in summary.markets}
    assert (freq["A"].entered, freq["B"].entered) == (3, 2)
    assert freq["A"].modes == {"build": 3} and freq["A"].years == {2027: 3}
    assert summary.objective_percentiles["min"] == pytest.approx(0.0, abs=1e-6)
    assert summary.objective_percentiles["p50"] == pytest.approx(17.5, abs=1e-6)  # median of 0, 12, 23, 23
    assert summary.objective_percentiles["mean"] == pytest.approx(58.0 / 4, abs=1e-6)
    assert summary.changed_variants == [1, 2]
    # robust at 75 %: A enters (3 of 4), B is entered in 2 and left out in 2: decided per variant
    assert summary.robust_plan == [Entry("A", "build", 2027)]
    assert summary.robust_out == [] and summary.robust_open == ["B"]
    checks = {c.index: c for c in summary.robust_checks}
    assert checks[1].objective_value is None and checks[1].status == "infeasible"  # A's entry of 3 > budget 2
    assert [checks[i].objective_value for i in (0, 2, 3)] == pytest.approx([23.0, 12.0, 23.0], abs=1e-6)
    assert summary.robust_feasible == 3
    assert summary.robust_worst_regret == pytest.approx(0.0, abs=1e-6)


def test_robust_evaluation_equals_a_solve_with_its_decisions_written_into_the_scenario() -> None:
    # The robust plan's objective on each variant equals an independent solve of that variant
    # with the robust entries written as commitments and the kept-out markets given no option.
    base = tiny_scenario(budget=7.0)
    spec = parse_sweep(grid(("budget.limit", "scale", [0.6, 1.0]), robust_share=0.6), base)
    results, summary = run_sweep(base, spec)
    for check in summary.robust_checks:
        sc = variant_scenario(base, spec, check.index)
        raw = sc.to_dict()
        # the robust plan's entries as commitments, its kept-out markets without entry years
        raw["commitments"] = [{"market_id": e.market_id, "mode": e.mode, "entry_year": e.year} for e in summary.robust_plan]
        for m in raw["markets"]:
            if m["id"] in summary.robust_out:
                m["options"] = []
        fixed = solve_scenario(parse_scenario(raw))
        if fixed.objective_value is None:
            assert check.objective_value is None
        else:
            assert check.objective_value == pytest.approx(fixed.objective_value, abs=1e-6)
            own = results[check.index].objective_value
            assert check.regret == pytest.approx(own - fixed.objective_value, abs=1e-6)


# ----------------------------------------------------------------------------- warm = cold, independently checked


@pytest.mark.parametrize("seed", [0, 1])
def test_warm_variants_equal_cold_solves_and_pass_the_independent_evaluator(seed: int) -> None:
    raw = generate_scenario(12, 6, seed, levers_share=0.0, mip_rel_gap=0.0, time_limit=60)
    base = parse_scenario(raw)
    spec = parse_sweep(grid(("budget.limit", "scale", [0.7, 0.85, 1.15]), ("discount_rate", "add", [0.0, 0.04])), base)
    warm, _ = run_sweep(base, spec)
    cold, _ = run_sweep(base, spec, warm=False)
    assert sum(r.warm for r in warm) == len(warm) - 1 and not any(r.warm for r in cold)
    for w, c in zip(warm, cold):
        assert w.status == c.status == "optimal"
        assert w.objective_value == pytest.approx(c.objective_value, rel=1e-7, abs=1e-6)
        sc = variant_scenario(base, spec, w.index)
        ev = PlanEvaluator(sc.to_dict()).evaluate(
            {m.id: None for m in sc.markets} | {e.market_id: (e.mode, e.year - sc.start_year) for e in w.entries})
        assert ev["violations"] == []
        assert ev["objective"] == pytest.approx(w.objective_value, rel=1e-7, abs=1e-6)


# ----------------------------------------------------------------------------- variants


def test_grid_order_is_row_major_with_the_last_axis_fastest() -> None:
    base = tiny_scenario()
    spec = parse_sweep(grid(("budget.limit", "scale", [0.5, 2.0]), ("discount_rate", "set", [0.05, 0.1, 0.2])), base)
    vs = variants(spec)
    assert len(vs) == 1 + 6 and spec.variant_count == 6
    assert vs[2].label == "budget.limit ×0.5, discount_rate = 0.1"
    assert vs[4].label == "budget.limit ×2, discount_rate = 0.05"
    sc = variant_scenario(base, spec, 4)
    assert sc.budget.limit == (20.0, 20.0, 20.0) and sc.discount_rate == 0.05


def test_paths_name_years_list_elements_and_every_element() -> None:
    base = parse_scenario(generate_scenario(6, 5, 3, levers_share=0.0))
    y = base.start_year + 2
    spec = parse_sweep(grid((f"budget.limit[{y}]", "set", [123.0]), ("markets[*].market_growth", "add", [0.01])), base)
    sc = variant_scenario(base, spec, 1)
    assert sc.budget.limit[2] == 123.0
    assert [sc.budget.limit[t] for t in (0, 1, 3, 4)] == [base.budget.limit[t] for t in (0, 1, 3, 4)]
    assert [m.market_growth for m in sc.markets] == pytest.approx([m.market_growth + 0.01 for m in base.markets])
    mid = base.markets[1].id
    mode = base.markets[1].options[0].mode.value
    spec = parse_sweep(grid((f"markets[{mid}].options[{mode}].entry_cost", "scale", [2.0])), base)
    sc = variant_scenario(base, spec, 1)
    assert sc.markets[1].options[0].entry_cost == pytest.approx(2 * base.markets[1].options[0].entry_cost)
    assert sc.markets[0] == base.markets[0]


def test_monte_carlo_is_reproducible_per_draw_and_follows_its_distribution() -> None:
    base = parse_scenario(generate_scenario(8, 5, 1, levers_share=0.0))
    doc = {"monte_carlo": {"draws": 40, "seed": 11, "vary": [
        {"path": "markets[*].market_growth", "how": "set", "distribution": "uniform", "low": 0.01, "high": 0.05},
        {"path": "discount_rate", "how": "set", "distribution": "normal", "mean": 0.1, "sd": 0.5,
         "clip_low": 0.03, "clip_high": 0.2}]}}
    spec = parse_sweep(doc, base)
    a = [variant_scenario(base, spec, k) for k in range(1, 41)]
    assert variant_scenario(base, spec, 17) == a[16]  # draw 17 alone, in any process, is draw 17
    other = parse_sweep({**doc, "monte_carlo": {**doc["monte_carlo"], "seed": 12}}, base)  # type: ignore[dict-item]
    assert variant_scenario(base, other, 17) != a[16]
    growth = [m.market_growth for sc in a for m in sc.markets]
    assert min(growth) >= 0.01 and max(growth) <= 0.05 and len(set(growth)) == len(growth)
    rates = [sc.discount_rate for sc in a]
    assert min(rates) == 0.03 and max(rates) == 0.2  # sd 0.5 around 0.1: the clips are reached


def test_a_draw_that_breaks_a_field_is_that_variant_s_error_and_the_sweep_goes_on() -> None:
    base = tiny_scenario()
    spec = parse_sweep({"monte_carlo": {"draws": 30, "seed": 2, "vary": [
        {"path": "markets[A].market_growth", "how": "set", "distribution": "normal", "mean": -0.8, "sd": 0.5}]}}, base)
    results, summary = run_sweep(base, spec)
    invalid = [r for r in results if r.status == "invalid"]
    assert invalid and len(invalid) < 30
    assert all("markets[0].market_growth" in r.message for r in invalid)
    assert summary.statuses["invalid"] == len(invalid)
    assert summary.with_plan == len(results) - len(invalid)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("raw, field, words", [
    (grid(("budget.limt", "scale", [1.0])), "grid[0].path", "budget.limt is not a field"),
    (grid(("markets[XX].market_growth", "add", [0.1])), "grid[0].path", "no element with id 'XX'"),
    (grid(("markets[A]", "set", [1.0])), "grid[0].path", "name one of its numeric fields"),
    (grid(("headcount.cap", "scale", [1.0])), "grid[0].path", "not set in the base scenario"),
    (grid(("name", "set", [1.0])), "grid[0].path", "not a number"),
    (grid(("budget.limit", "scale", [-1.0])), "grid[0].values[0]", "must be between 0 and"),
    (grid(("budget.limit[1990]", "set", [1.0])), "grid[0].path", "outside the horizon"),
    ({"grid": [{"path": "budget.limit", "values": [1.0]}]}, "grid[0].how", "required"),
    ({"grid": [{"path": "budget.limit", "how": "SWEEP_CHANGE_UNSPECIFIED", "values": [1.0]}]}, "grid[0].how", "set"),
    ({}, "<root>", "either grid axes or monte_carlo"),
    ({"monte_carlo": {"draws": 5, "vary": [{"path": "discount_rate", "how": "set", "distribution": "normal", "mean": 0.1}]}},
     "monte_carlo.vary[0]", "needs sd"),
    ({"monte_carlo": {"draws": 0, "vary": [{"path": "discount_rate", "how": "set", "distribution": "uniform", "low": 0, "high": 1}]}},
     "monte_carlo.draws", ">= 1"),
    (grid(("budget.limit", "scale", [1.0] * 200), ("discount_rate", "set", [0.1] * 200)), "<root>", "at most 10,000"),
    ({**grid(("budget.limit", "scale", [1.0])), "robust_share": 0}, "robust_share", "> 0"),
    ({**grid(("budget.limit", "scale", [1.0])), "robust": 0.5}, "robust", "unknown field"),
])
def test_bad_sweeps_name_the_field(raw: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ScenarioError) as ei:
        parse_sweep(raw, tiny_scenario())
    found = {v.field: v.description for v in ei.value.violations}
    assert field in found, found
    assert words.lower() in (found[field]).lower() or any(words.lower() in d.lower() for d in found.values()), found


def test_a_sweep_document_in_yaml_reads_like_the_dict() -> None:
    text = "grid:\n  - path: budget.limit\n    how: scale\n    values: [0.5, 1.5]\nrobust_share: 0.9\n"
    spec = parse_sweep_document(text, tiny_scenario())
    assert isinstance(spec, SweepSpec) and spec.variant_count == 2 and spec.robust_share == 0.9
    with pytest.raises(ScenarioError) as ei:
        parse_sweep_document("grid: [", tiny_scenario(), prefix="sweep_document: ")
    assert ei.value.violations[0].field == "sweep_document: <file>"


def test_summary_of_no_plans_has_no_robust_plan() -> None:
    from lepton_alloc.models.sweep import VariantResult

    s = summarize([VariantResult(0, "base", "infeasible"), VariantResult(1, "x", "infeasible")], 0.8, ["A"])
    assert s.with_plan == 0 and s.robust_plan == [] and s.objective_percentiles == {}
    assert not math.isnan(s.markets[0].share)
