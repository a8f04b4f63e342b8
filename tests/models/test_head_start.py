"""The head start (models/heuristic.py, docs/model.md §5): its plans are plans of the model, it
never changes what is optimal, and HiGHS reports the objective its returned plan has.

Every plan is checked by the independent checker of :mod:`.feasibility` (a second reading of
docs/model.md written without the project's model code), not by the row set the heuristic
itself checks against.
"""

from __future__ import annotations

import time
from typing import Any

import highspy
import numpy as np
import pytest

from lepton_alloc.models import SolveStatus, build_model, extract_result, parse_scenario, solve_model, solve_scenario
from lepton_alloc.models.generator import generate_scenario
from lepton_alloc.models.heuristic import _highs_model, head_start, improve, lp_relaxation
from lepton_alloc.models.highs_start import offered_start
from lepton_alloc.models.loader import builtin_example_path, parse_text
from lepton_alloc.models.rowset import RowSet, plan_objective
from lepton_alloc.models.solve import SolveOutcome, _check_objective

from .feasibility import check_plan
from .test_bruteforce import SEEDS, brute_force, generate


def _plan_result(raw: dict[str, Any], values: np.ndarray, objective: float) -> dict[str, Any]:
    """The head start's plan as a result (extracted like any solve's plan), for check_plan."""
    am = build_model(parse_scenario(raw))
    out = SolveOutcome(SolveStatus.FEASIBLE, objective, None, None, values, 0.0, 0.0, "head start")
    return extract_result(am, out, time.perf_counter()).to_dict()


def _checked_head_start(raw: dict[str, Any], seconds: float = 5.0, sub_mips: bool = True) -> Any:
    am = build_model(parse_scenario(raw))
    plan = head_start(am, seconds, sub_mips=sub_mips)
    if plan is None:
        return None
    assert plan.objective == pytest.approx(plan_objective(am, plan.values), rel=1e-12, abs=1e-12)
    lay = am.layout
    integers = plan.values[np.r_[np.arange(lay.n_x), lay.n_offset + np.arange(lay.n_market.size)]]
    assert np.array_equal(integers, np.round(integers))  # whole entry decisions and hires, exactly
    violations = check_plan(raw, _plan_result(raw, plan.values, plan.objective))
    assert violations == [], f"the head start's plan breaks docs/model.md: {violations}"
    return plan


GENERATED = [
    # (markets, years, seed, generator options): both families, every objective, CVaR, levers
    (20, 10, 0, {}),
    (30, 8, 1, {"carry_over": True}),
    (40, 10, 2, {"objective": "risk_adjusted_npv", "risk_aversion": 0.5}),
    (25, 6, 3, {"objective": "final_year_contribution", "levers_share": 0.3}),
    (50, 10, 4, {"levers_share": 0.3, "requires_share": 0.3}),
    (30, 10, 5, {"terminal_growth": 0.02, "discount_rate": 0.08}),
]


@pytest.mark.parametrize(("markets", "years", "seed", "options"), GENERATED)
def test_head_start_plans_of_generated_scenarios_pass_the_independent_checker(
        markets: int, years: int, seed: int, options: dict[str, Any]) -> None:
    raw = generate_scenario(markets, years, seed, time_limit=30, **options)
    plan = _checked_head_start(raw, seconds=3.0)
    assert plan is not None  # every generated scenario is feasible (generator docstring)
    assert plan.lp_bound is not None and plan.lp_bound >= plan.objective - 1e-6 * max(1.0, abs(plan.objective))


@pytest.mark.parametrize("seed", SEEDS)
def test_head_start_on_brute_force_instances(seed: int) -> None:
    """Feasible plans only (checked independently), never above the brute-force optimum, and
    the LP bound never below it; nothing found where the brute force finds nothing."""
    raw = generate(seed)
    best, _, _ = brute_force(raw)
    plan = _checked_head_start(raw, seconds=1.0)
    if best is None:
        assert plan is None
        return
    if plan is None:
        return  # a heuristic may find nothing (then HiGHS starts from scratch)
    tol = 1e-6 * max(1.0, abs(best))
    assert plan.objective <= best + tol
    if plan.lp_bound is not None:
        assert plan.lp_bound >= best - tol


def test_the_head_start_finds_the_builtin_examples_plan_within_one_percent() -> None:
    raw = parse_text(builtin_example_path().read_text())
    plan = _checked_head_start(raw, seconds=5.0)
    optimum = 2050.5771  # the example's proven optimum (test_examples, README)
    assert optimum * 0.99 <= plan.objective <= optimum + 1e-3


def test_fix_and_optimize_only_improves_and_stays_feasible() -> None:
    raw = generate_scenario(60, 10, 7, time_limit=30)
    am = build_model(parse_scenario(raw))
    first = head_start(am, 1.0, sub_mips=False)
    assert first is not None
    better = improve(am, first, 3.0)
    assert better.objective >= first.objective
    assert better.objective == pytest.approx(plan_objective(am, better.values), rel=1e-12)
    assert check_plan(raw, _plan_result(raw, better.values, better.objective)) == []


# ----------------------------------------------------------------------------- the start and HiGHS


def _reported_and_own(am: Any, rows: RowSet, start: np.ndarray, through_callback: bool) -> tuple[float, float]:
    h = _highs_model(am, rows, integer=True)
    h.setOptionValue("mip_rel_gap", 0.0)
    if through_callback:
        with offered_start(h, start):
            h.run()
    else:
        solution = highspy.HighsSolution()
        solution.col_value = start.tolist()
        solution.value_valid = True
        h.setSolution(solution)
        h.run()
    reported = float(h.getInfo().objective_function_value) + am.objective_constant
    return reported, plan_objective(am, np.asarray(h.getSolution().col_value, dtype=float))


def _plain_lp_order_plan(am: Any, rows: RowSet) -> Any:
    """The greedy pass in the LP's order without LP rounding's tiers and levers, then the local search."""
    from lepton_alloc.models.heuristic import HeadStart, _eject_search, _fill_levers, _finish, _greedy, _local_search, _priced_use, _Search

    x, dual, _ = lp_relaxation(am, rows, 10.0)
    nx = am.layout.n_x
    probe = _Search(am, rows)
    density = probe.obj[:nx] / np.maximum(_priced_use(probe, np.abs(dual)), 1e-12)
    s = _greedy(am, rows, np.lexsort((-density, -np.round(x[:nx], 6))))
    _eject_search(s, lambda: False)
    _local_search(s, lambda: False)
    _fill_levers(s)
    found = _finish(s, rows)
    return None if found is None else HeadStart(found[0], found[1], 0.0)


def test_setsolution_start_can_return_a_plan_without_the_reported_objective_and_the_callback_does_not() -> None:
    """The HiGHS 1.16 pitfall models/highs_start.py works around (brute-force instance 53): a start
    given by setSolution is mapped into presolve's reduced space, where its objective is the
    optimum's; HiGHS then reports that objective but returns the original start vector."""
    raw = generate(53)
    best, _, _ = brute_force(raw)
    am = build_model(parse_scenario(raw))
    rows = RowSet(am.rows)
    start = _plain_lp_order_plan(am, rows)  # the head start's first plan before its LP rounding (which finds the optimum here)
    assert start is not None and start.objective < best - 1.0  # a start worse than the optimum
    reported, own = _reported_and_own(am, rows, start.values, through_callback=False)
    if abs(reported - own) <= 1e-6 * max(1.0, abs(own)):
        pytest.skip("this HiGHS returns a consistent plan after setSolution (the pitfall is fixed)")
    assert reported == pytest.approx(best, rel=1e-9) and own == pytest.approx(start.objective, rel=1e-9)
    reported, own = _reported_and_own(am, rows, start.values, through_callback=True)
    assert reported == pytest.approx(own, rel=1e-9) == pytest.approx(best, rel=1e-9)


@pytest.mark.parametrize("seed", range(0, 200, 7))
def test_a_starting_plan_never_changes_the_reported_objective(seed: int) -> None:
    """Solved from the head start's plan: the reported objective is the returned plan's own
    (recomputed independently) and the brute-force optimum."""
    raw = generate(seed)
    best, _, _ = brute_force(raw)
    if best is None:
        return
    am = build_model(parse_scenario(raw))
    plan = head_start(am, 1.0, sub_mips=False)
    if plan is None:
        return
    out = solve_model(am, mip_rel_gap=0.0, start=plan.values, head_start=False)
    assert out.status == SolveStatus.OPTIMAL
    assert "HiGHS reported objective" not in out.message  # the self-check found nothing to correct
    res = extract_result(am, out, time.perf_counter()).to_dict()
    assert check_plan(raw, res) == []  # includes: objective_value == the plan's recomputed objective
    assert res["objective_value"] == pytest.approx(best, rel=1e-6, abs=1e-6)


def test_the_objective_self_check_reports_the_plans_own_objective() -> None:
    raw = parse_text(builtin_example_path().read_text())
    am = build_model(parse_scenario(raw))
    plan = head_start(am, 1.0, sub_mips=False)
    assert plan is not None
    out = SolveOutcome(SolveStatus.FEASIBLE, plan.objective + 100.0, None, None, plan.values, 0.0, 0.0, "x")
    _check_objective(am, out)
    assert out.objective_value == pytest.approx(plan.objective, rel=1e-12)
    assert "HiGHS reported objective" in out.message
    res = extract_result(am, out, time.perf_counter())  # the note reaches the result a user reads
    assert res.message.startswith("stopped by a limit") and "HiGHS reported objective" in res.message
    assert res.objective_value == pytest.approx(plan.objective, rel=1e-12)


# ----------------------------------------------------------------------------- in the solve


def test_the_progress_stream_starts_with_the_head_starts_plan() -> None:
    raw = generate_scenario(50, 10, 0, time_limit=20)
    events: list[Any] = []
    res = solve_scenario(raw, time_limit=10, on_progress=events.append)
    incumbents = [e for e in events if e.kind.value == "incumbent"]
    assert incumbents and incumbents[0].head_start
    assert incumbents[0].best_bound is not None and incumbents[0].best_bound >= incumbents[0].objective
    assert any(not e.head_start for e in events)  # then HiGHS's own events
    objectives = [e.objective for e in incumbents]
    assert objectives == sorted(objectives)  # each incumbent at least as good as the last
    assert res.objective_value is not None and res.objective_value >= objectives[0] - 1e-6
    assert check_plan(raw, res.to_dict()) == []


def test_a_large_scenario_gets_a_checked_plan_and_an_honest_bound_in_a_short_limit() -> None:
    """Above LARGE_MODEL_INTEGERS the head start runs its sub-MIPs; the bound reported is a
    valid one (>= the objective) and the gap is what it says."""
    raw = generate_scenario(500, 10, 3, time_limit=60)
    am = build_model(parse_scenario(raw))
    assert am.integer_count >= 10_000
    out = solve_model(am, time_limit=6.0)
    assert out.status in (SolveStatus.FEASIBLE, SolveStatus.OPTIMAL)
    assert out.best_bound is not None and out.best_bound >= out.objective_value - 1e-6 * abs(out.objective_value)
    assert out.gap == pytest.approx((out.best_bound - out.objective_value) / abs(out.objective_value), rel=1e-9, abs=1e-12)
    assert out.gap < 0.05  # a good plan: the LP bound is within a few per cent
    lp = lp_relaxation(am, RowSet(am.rows), 30.0)
    assert lp is not None and lp[2] >= out.objective_value - 1e-6 * abs(out.objective_value)
    res = extract_result(am, out, time.perf_counter()).to_dict()
    assert check_plan(raw, res) == []


def test_the_head_start_reads_the_limits_as_they_stand_after_a_param_change() -> None:
    """A sweep moves a limit's mutable Param in place: the head start's plan must meet the moved
    limit (a plan for the old limit would be offered, and kept, though infeasible)."""
    raw = generate_scenario(30, 6, 11, time_limit=30)
    am = build_model(parse_scenario(raw))
    tighter = {**raw, "budget": {**raw["budget"], "limit": [0.5 * b for b in raw["budget"]["limit"]]}}
    for t, year in enumerate(am.scenario.years):
        am.model.limit[f"budget[{year}]"] = tighter["budget"]["limit"][t]
    plan = head_start(am, 2.0)
    assert plan is not None
    fresh = build_model(parse_scenario(tighter))
    assert RowSet(fresh.rows).violations(plan.values) == []
    assert check_plan(tighter, _plan_result(tighter, plan.values, plan.objective)) == []


def test_a_cancel_during_the_head_start_ends_the_solve_cancelled_with_its_plan() -> None:
    raw = generate_scenario(80, 10, 5, time_limit=60)
    am = build_model(parse_scenario(raw))
    out = solve_model(am, should_stop=lambda: True)
    assert out.status == SolveStatus.CANCELLED
    assert out.values is not None  # the greedy's plan, checked, is what the cancelled solve had
    assert check_plan(raw, extract_result(am, out, time.perf_counter()).to_dict()) == []


@pytest.mark.parametrize("markets", [30, 120])  # 120 markets: ~2,800 integers, the plan is not handed to HiGHS
def test_the_best_plan_of_the_progress_stream_never_goes_down(markets: int) -> None:
    raw = generate_scenario(markets, 10, 1, time_limit=20)
    events: list[Any] = []
    res = solve_scenario(raw, time_limit=4, on_progress=events.append)
    known = [e.objective for e in events if e.objective is not None]
    assert known and known == sorted(known)
    assert events[0].head_start
    assert res.objective_value is not None and res.objective_value >= known[-1] - 1e-6 * abs(known[-1])
    for e in events:  # every reported gap is the gap of the reported plan against the reported bound
        if e.objective is not None and e.best_bound is not None and e.gap is not None:
            assert e.gap == pytest.approx((e.best_bound - e.objective) / abs(e.objective), rel=1e-6, abs=1e-9)


def test_a_sub_mip_reports_each_better_plan_as_it_goes_each_a_checked_plan_of_the_whole_model() -> None:
    """A long sub-MIP (the first one of a huge model may run half its time limit) tells of its
    better plans while it runs: each one passes the independent checker with the objective it
    states, they only go up, and the plan it returns is no worse than the last one it told of."""
    from lepton_alloc.models.heuristic import _free_mask, _SubMip

    raw = generate_scenario(60, 8, 4, time_limit=20)
    am = build_model(parse_scenario(raw))
    rows = RowSet.of_model(am)
    start = head_start(am, 5.0, sub_mips=False)
    assert start is not None
    found: list[tuple[np.ndarray, float]] = []
    final = _SubMip(am, rows, None).solve(_free_mask(am, np.ones(am.layout.n_x, dtype=bool)), start.values, 10.0,
                                          on_found=found.append)
    assert found and final is not None
    objectives = [objective for _values, objective in found]
    assert all(b >= a - 1e-9 * max(1.0, abs(a)) for a, b in zip(objectives, objectives[1:]))
    assert final[1] >= objectives[-1] - 1e-9 * max(1.0, abs(objectives[-1]))
    for values, objective in found:
        assert plan_objective(am, values) == pytest.approx(objective, rel=1e-9)
        assert check_plan(raw, _plan_result(raw, values, objective)) == []
