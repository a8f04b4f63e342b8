"""What-if re-solves (models/whatif.py): every step value and market value equals an independent
fresh solve (gap 0) of the scenario changed by editing its data; the warm, chunked runner, the
plan shortcuts and the time budget do not change any answer; a tiny budget marks answers cut
short instead of omitting them."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from lepton_alloc.models import Result, Scenario, SolveStatus, solve_scenario
from lepton_alloc.models.formulation import build_model
from lepton_alloc.models.generator import generate_scenario
from lepton_alloc.models.loader import load_builtin_example
from lepton_alloc.models.scenario import parse_scenario
from lepton_alloc.models.solve import solve_model
from lepton_alloc.models.whatif import (
    WhatIf,
    limit_values,
    market_values,
    market_values_from,
    plan_whatifs,
    run_whatifs,
    step_values,
    step_values_from,
)

REL = 1e-6


def _close(a: float | None, b: float | None) -> bool:
    assert a is not None and b is not None
    return abs(a - b) <= REL * max(1.0, abs(a), abs(b))


def _small(carry_over: bool = False) -> Scenario:
    """8 markets, 3 years, 2 regions; every limit family present, one region share below 1, an initial headcount."""
    d = generate_scenario(8, 3, seed=3, regions=2, carry_over=carry_over)
    d["headcount"]["initial"] = 3
    d["regions"][0]["min_markets"] = 1
    d["regions"][0]["max_markets"] = 3
    d["regions"][1]["max_budget_share"] = 0.6
    return parse_scenario(d)


def _fresh_step(sc: Scenario, w: WhatIf) -> Result:
    """An independent solve of the scenario with the limit of ``w`` moved: by editing the data, or for a
    cumulative budget row (whose limit is a sum of yearly budgets) a fresh build with that row's Param moved."""
    family, _, key = w.target.partition("[")
    key = key.rstrip("]")
    if family == "budget_cumulative":
        am = build_model(sc)
        am.model.limit[w.target] = w.moved
        from lepton_alloc.models.extract import extract_result
        return extract_result(am, solve_model(am, mip_rel_gap=0.0, time_limit=120))
    d: dict[str, Any] = sc.to_dict()
    t = None
    if family in ("budget", "headcount_cap", "net_hires") or family == "talent_cap":
        t = int(key.split(",")[-1]) - sc.start_year
    if family == "budget":
        d["budget"]["limit"][t] = w.moved
    elif family == "headcount_cap":
        d["headcount"]["cap"][t] = w.moved
    elif family == "net_hires":
        d["headcount"]["max_net_hires"][t] = w.moved
    elif family == "max_average_risk":
        d["risk"]["max_average_risk"] = w.moved
    else:
        region = next(g for g in d["regions"] if g["name"] == key.split(",")[0])
        if family == "talent_cap":
            region["talent_cap"][t] = w.moved
        elif family == "region_budget_share":
            region["max_budget_share"] = w.moved
        elif family == "region_min_markets":
            region["min_markets"] = int(w.moved)
        elif family == "region_max_markets":
            region["max_markets"] = int(w.moved)
        else:
            raise AssertionError(w.target)
    return solve_scenario(parse_scenario(d), mip_rel_gap=0.0)


def _forced(sc: Scenario, market_id: str, entered: bool) -> Result:
    """Forced out: the market loses its options; forced in: must_enter."""
    d = sc.to_dict()
    market = next(m for m in d["markets"] if m["id"] == market_id)
    if entered:
        market["options"] = []
    else:
        market["must_enter"] = True
    return solve_scenario(parse_scenario(d), mip_rel_gap=0.0)


@pytest.fixture(scope="module")
def example() -> tuple[Scenario, Result]:
    sc = load_builtin_example()
    res = solve_scenario(sc, mip_rel_gap=0.0)
    assert res.status == SolveStatus.OPTIMAL
    return sc, res


@pytest.fixture(scope="module", params=[False, True], ids=["yearly", "carry_over"])
def small(request: Any) -> tuple[Scenario, Result]:
    sc = _small(request.param)
    res = solve_scenario(sc, mip_rel_gap=0.0)
    assert res.status == SolveStatus.OPTIMAL
    return sc, res


def _check_steps(sc: Scenario, res: Result, steps: dict[str, list[Any]], relative_step: float = 0.05) -> int:
    values = limit_values(sc)
    checked = 0
    for name, found in steps.items():
        for st in found:
            w = WhatIf("step", name, st.direction, st.relative_step, values[name], st.limit)
            fresh = _fresh_step(sc, w)
            assert st.status == fresh.status, (name, st.direction)
            assert not st.cut_short
            if fresh.objective_value is None:
                assert st.objective is None
                continue
            assert _close(st.objective, fresh.objective_value), (name, st.direction, st.objective, fresh.objective_value)
            assert _close(st.objective_change, fresh.objective_value - res.objective_value)
            if st.direction == "down":  # a tighter limit never helps, a looser one never hurts
                assert st.objective <= res.objective_value + 1e-6
            else:
                assert st.objective >= res.objective_value - 1e-6
            if not _close(st.objective, res.objective_value):  # levers alone may move the objective, so only one way
                assert st.plan_changes is not None
            checked += 1
    return checked


def test_every_step_value_equals_a_fresh_solve_small(small: tuple[Scenario, Result]) -> None:
    sc, res = small
    steps = step_values(sc, res, mip_rel_gap=0.0, time_budget=120)
    assert set(steps) == set(limit_values(sc))  # every limit is a key
    families = {name.split("[")[0] for name, found in steps.items() if found}
    assert families >= {"headcount_cap", "net_hires", "talent_cap", "region_max_markets", "region_min_markets",
                         "region_budget_share", "max_average_risk"}
    assert ("budget_cumulative" if sc.budget.carry_over else "budget") in families
    assert _check_steps(sc, res, steps) >= 30
    # shares stay within [0, 1]: a share of 1 only moves down; counts move by whole markets
    for name, found in steps.items():
        if name.startswith("region_budget_share") and limit_values(sc)[name] == 1.0:
            assert [s.direction for s in found] == ["down"]
        if name.startswith("region_m"):
            assert all(float(s.limit).is_integer() and s.limit != limit_values(sc)[name] for s in found)
        assert [s.direction for s in found] == sorted((s.direction for s in found), key=lambda d: d != "down")


def test_step_values_of_the_example_equal_fresh_solves(example: tuple[Scenario, Result]) -> None:
    sc, res = example
    # a binding cumulative budget row (a fresh build with that row's Param moved), a binding
    # talent cap, a headcount cap and the risk cap (coefficients: pushed by am.update)
    limits = ["budget_cumulative[2030]", "talent_cap[APAC,2036]", "headcount_cap[2030]", "max_average_risk"]
    steps = step_values(sc, res, limits=limits, mip_rel_gap=0.0, time_budget=300)
    assert list(steps) == limits
    assert all(len(s) == 2 for s in steps.values())
    assert _check_steps(sc, res, steps) == 8
    assert steps["budget_cumulative[2030]"][0].limit == pytest.approx(0.95 * limit_values(sc)["budget_cumulative[2030]"])
    assert steps["budget_cumulative[2030]"][0].objective_change < -1e-3  # binding: a real change


def test_cumulative_step_moves_only_that_row(example: tuple[Scenario, Result]) -> None:
    """budget_cumulative[2030] moved is not the same as the yearly budget of 2030 moved (that moves later rows too)."""
    sc, res = example
    w = next(w for w in plan_whatifs(sc, res, ["budget_cumulative[2030]"], markets=False) if w.direction == "down")
    out = run_whatifs(sc, res, [w], 120, mip_rel_gap=0.0)[0]
    d = sc.to_dict()
    d["budget"]["limit"][2030 - sc.start_year] -= limit_values(sc)["budget_cumulative[2030]"] - w.moved
    yearly = solve_scenario(parse_scenario(d), mip_rel_gap=0.0)
    assert out.objective is not None and yearly.objective_value is not None
    assert out.objective > yearly.objective_value + 1e-6


def test_market_values_equal_fresh_solves_small(small: tuple[Scenario, Result]) -> None:
    sc, res = small
    values = market_values(sc, res, mip_rel_gap=0.0, time_budget=120)
    assert [v.market_id for v in values] == [m.id for m in res.markets]  # every market, in order
    entered = {m.id: m.entered for m in res.markets}
    assert any(entered.values()) and not all(entered.values())
    for v in values:
        fresh = _forced(sc, v.market_id, entered[v.market_id])
        assert v.entered == entered[v.market_id]
        assert v.status == fresh.status and not v.cut_short
        if fresh.objective_value is None:
            assert v.objective is None
            continue
        assert _close(v.objective, fresh.objective_value), (v.market_id, v.objective, fresh.objective_value)
        assert v.objective_change is not None and v.objective_change <= 1e-6  # forcing never helps an optimum
        if not v.entered:
            assert v.mode is not None and v.entry_year is not None
        else:
            assert v.mode is None and v.blocking == []


def test_market_values_of_the_example(example: tuple[Scenario, Result]) -> None:
    sc, res = example
    by_id = {m.id: m for m in res.markets}
    chosen = ["DE", "CN", "NG"]  # entered; left out (blocked by several limits); left out
    assert by_id["DE"].entered and not by_id["CN"].entered and not by_id["NG"].entered
    specs = [w for w in plan_whatifs(sc, res, steps=False) if w.target in chosen]
    values = market_values_from(res, run_whatifs(sc, res, specs, 300, mip_rel_gap=0.0))
    assert [v.market_id for v in values] == [m.id for m in res.markets if m.id in chosen]
    for v in values:
        fresh = _forced(sc, v.market_id, by_id[v.market_id].entered)
        assert v.status == SolveStatus.OPTIMAL and _close(v.objective, fresh.objective_value)
        assert _close(v.objective_change, fresh.objective_value - res.objective_value)
        if not v.entered:
            # the reported option is the re-solve's: committing to it gives the same optimum
            assert v.mode is not None and v.entry_year is not None
            d = sc.to_dict()
            d["commitments"].append({"market_id": v.market_id, "mode": v.mode.value, "entry_year": v.entry_year})
            assert _close(solve_scenario(parse_scenario(d), mip_rel_gap=0.0).objective_value, v.objective)
    cn = next(v for v in values if v.market_id == "CN")
    assert cn.blocking and all(name.split("[")[0] in ("budget_cumulative", "talent_cap", "max_average_risk",
                                                      "headcount_cap", "net_hires", "region_max_markets",
                                                      "region_budget_share") for name in cn.blocking)


def test_forcing_out_a_committed_market_is_infeasible(example: tuple[Scenario, Result]) -> None:
    sc, res = example
    out = run_whatifs(sc, res, [WhatIf("force_out", "US")], 60, mip_rel_gap=0.0)[0]
    assert out.status == SolveStatus.INFEASIBLE and out.objective is None and not out.cut_short


def test_tiny_time_budget_marks_every_resolve_cut_short(example: tuple[Scenario, Result]) -> None:
    sc, res = example
    specs = plan_whatifs(sc, res)
    outcomes = run_whatifs(sc, res, specs, time_budget=0.01, mip_rel_gap=0.0)
    assert [o.whatif for o in outcomes] == specs  # nothing omitted, order kept
    unproven = (SolveStatus.NO_SOLUTION, SolveStatus.FEASIBLE)
    for o in outcomes:
        if o.cut_short:  # not started (no plan), or stopped by its sliver of time (a plan at best)
            assert o.status in unproven and (o.objective is None) == (o.status == SolveStatus.NO_SOLUTION)
            assert o.solved or o.status == SolveStatus.NO_SOLUTION
        else:  # answered without a re-solve: a tighter limit the plan still meets
            assert o.whatif.kind == "step" and o.whatif.direction == "down"
            assert o.objective == res.objective_value and o.status == SolveStatus.OPTIMAL
    assert sum(o.cut_short for o in outcomes) >= len(specs) // 2
    values = market_values(sc, res, time_budget=0.01)
    # every answer is cut short, unless a re-solve proved infeasibility within its sliver (forcing
    # out the committed market US can be refuted by presolve alone, depending on the machine)
    assert len(values) == len(res.markets)
    assert all((v.cut_short and v.status in unproven) or (v.status == SolveStatus.INFEASIBLE and not v.cut_short)
               for v in values)
    assert sum(v.objective is None for v in values) >= len(values) - 2  # at most the first ones could start
    steps = step_values(sc, res, time_budget=0.01)
    assert set(steps) == set(limit_values(sc))
    assert all(s.cut_short for found in steps.values() for s in found if s.objective is None)


def test_a_short_budget_is_split_and_reported_honestly() -> None:
    """Generated 60 markets, 2 s for 12 re-solves: every spec answered; unproven ones are cut short.
    (How long it takes is a benchmark's business: bench/bench_explain.py.)"""
    sc = parse_scenario(generate_scenario(60, 8, seed=2))
    res = solve_scenario(sc, time_limit=20)
    specs = [w for w in plan_whatifs(sc, res) if w.kind != "step" or w.direction == "up"][:12]
    outcomes = run_whatifs(sc, res, specs, time_budget=2.0)
    assert len(outcomes) == len(specs)
    for o in outcomes:
        assert o.cut_short == (o.status not in (SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE))


def test_chunks_pickle_and_merge_to_the_same_answers(small: tuple[Scenario, Result]) -> None:
    sc, res = small
    specs = plan_whatifs(sc, res)
    assert pickle.loads(pickle.dumps(specs)) == specs
    chunks = [specs[k::3] for k in range(3)]
    merged = []
    for chunk in reversed(chunks):  # separate "workers", any order
        merged += pickle.loads(pickle.dumps(run_whatifs(pickle.loads(pickle.dumps(sc)), pickle.loads(pickle.dumps(res)),
                                                        chunk, 60, mip_rel_gap=0.0)))
    whole = run_whatifs(sc, res, specs, 60, mip_rel_gap=0.0)
    assert step_values_from(res, merged) == step_values_from(res, whole)
    assert market_values_from(res, merged) == market_values_from(res, whole)
    # and the same with the plan shortcuts and start solutions off
    plain = run_whatifs(sc, res, specs, 60, mip_rel_gap=0.0, use_plan=False)
    assert all(p.solved for p in plain if p.whatif.kind == "step")
    for a, b in zip(plain, whole):
        assert a.status == b.status
        if a.objective is not None:
            assert _close(a.objective, b.objective)


def test_a_zero_limit_has_no_step_and_unknown_limits_are_refused() -> None:
    d = _small().to_dict()
    d["regions"][1]["talent_cap"][0] = 0
    sc = parse_scenario(d)
    res = solve_scenario(sc, mip_rel_gap=0.0)
    name = f"talent_cap[{d['regions'][1]['name']},{sc.start_year}]"
    steps = step_values(sc, res, limits=[name], mip_rel_gap=0.0)
    assert steps == {name: []}
    with pytest.raises(ValueError, match="not a limit"):
        plan_whatifs(sc, res, ["budget[1999]"])
