"""Why a scenario is infeasible (models/conflict.py, docs/model.md §3 "Infeasible scenarios").

Every case has a known cause, and its conflict set must name exactly the §4 rows of that cause.
Markets are one explicit-cash-flow ``build`` option enterable only in 2027, so the arithmetic is
by hand. After each explanation the suggested relaxations are applied to the scenario (each
limit moved to ``needed``) and the scenario must solve.
"""

from __future__ import annotations

import copy
from typing import Any

import highspy
import numpy as np
import pytest

from lepton_alloc.models import build_model, solve_model, solve_scenario
from lepton_alloc.models.conflict import (
    IIS_STRATEGIES,
    _Clock,
    _ElasticModel,
    apply_relaxations,
    explain_infeasibility,
    relaxation_words,
)
from lepton_alloc.models.result import Infeasibility, Relaxation, SolveStatus
from lepton_alloc.models.scenario import ScenarioError, parse_scenario


def market(market_id: str, cost: float | list[float], heads: int | list[int] = 0, region: str = "EMEA",
           must: bool = False, contribution: float = 50.0, **extra: Any) -> dict[str, Any]:
    costs = cost if isinstance(cost, list) else [cost]
    headcount = heads if isinstance(heads, list) else [heads]
    return {"id": market_id, "region": region, "must_enter": must, "latest_entry_year": 2027, **extra,
            "options": [{"mode": "build", "cash_flows": {"contribution": [0, contribution, contribution],
                                                         "cost": costs, "headcount": headcount}}]}


BASE: dict[str, Any] = {"name": "conflict", "start_year": 2027, "horizon_years": 3}

# (a) two must-enter markets at 70 each in 2027 against a yearly budget of 100
MUST_ENTER_BUDGET = {**BASE, "markets": [market("A", 70, must=True, name="Austria"), market("B", 70, must=True),
                                         market("C", 10)],
                     "budget": {"limit": 100}}
# (b) EMEA must enter 2 markets of 20 people each (in 2027), EMEA can staff 30
REGION_TALENT = {**BASE, "markets": [market("A", 10, heads=20), market("B", 10, heads=20), market("C", 10, heads=5, region="AMER")],
                 "regions": [{"name": "EMEA", "min_markets": 2, "talent_cap": 30}]}
# (c) an NPV floor of 500 where entering everything earns 2 x (100 - 10) = 180
NPV_FLOOR = {**BASE, "markets": [market("A", 10), market("B", 10)], "objective": {"min_expected_npv": 500}}
# (d) a commitment (a feasible mode) whose entry costs 120 against a budget of 100
COMMITMENT_BUDGET = {**BASE, "markets": [market("A", 120), market("B", 10)], "budget": {"limit": 100},
                     "commitments": [{"market_id": "A", "mode": "build", "entry_year": 2027}]}
# (e) integer-only: EMEA needs 2 of A, B, C; every pair overspends some year, but fractions fit
#     (A = 1, C = 0.82, B = 0.61 meets 2 markets within every budget).
#     Pairs: A+B 120 in 2027, B+C 140 in 2028, A+C 110 in 2029 (the cheapest fix: +10 in 2029).
INTEGER_ONLY = {**BASE, "markets": [market("A", [60, 0, 55]), market("B", [60, 70, 0]), market("C", [0, 70, 55])],
                "budget": {"limit": 100}, "regions": [{"name": "EMEA", "min_markets": 2}]}


def explain(raw: dict[str, Any], time_limit: float = 30.0) -> Infeasibility:
    am = build_model(parse_scenario(raw))
    assert solve_model(am).status == SolveStatus.INFEASIBLE
    return explain_infeasibility(am, time_limit=time_limit)


def assert_relaxations_make_it_feasible(raw: dict[str, Any], found: Infeasibility) -> None:
    assert found.relaxations, "an infeasible scenario needs at least one limit to move"
    sc = parse_scenario(raw)
    result = solve_scenario(parse_scenario(apply_relaxations(sc, found.relaxations)))
    assert result.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE), result.message


def test_must_enter_markets_against_a_yearly_budget_lp_iis() -> None:  # (a)
    found = explain(MUST_ENTER_BUDGET)
    assert found.method == "lp_iis"
    assert found.constraints == ["must_enter[A]", "must_enter[B]", "budget[2027]"]
    assert found.explanation == [
        "must_enter[A]: Austria (A) must be entered (entry allowed in 2027).",
        "must_enter[B]: B must be entered (entry allowed in 2027).",
        "budget[2027]: the 2027 budget allows USD 100 million of spending; must_enter[A] and must_enter[B] "
        "need at least USD 140 million in 2027.",
    ]
    assert found.relaxations == [Relaxation("budget[2027]", 100.0, 140.0, 40.0)]
    assert_relaxations_make_it_feasible(MUST_ENTER_BUDGET, found)


def test_relaxations_by_hand_in_the_scenario_dict() -> None:  # (a), moved without apply_relaxations
    found = explain(MUST_ENTER_BUDGET)
    raw = copy.deepcopy(MUST_ENTER_BUDGET)
    (relax,) = found.relaxations
    raw["budget"]["limit"] = relax.needed
    assert solve_scenario(parse_scenario(raw)).status == SolveStatus.OPTIMAL
    raw["budget"]["limit"] = relax.needed - 1  # and it is the least that works
    assert solve_scenario(parse_scenario(raw)).status == SolveStatus.INFEASIBLE


def test_region_minimum_above_its_talent_cap() -> None:  # (b)
    found = explain(REGION_TALENT)
    assert found.method == "lp_iis"
    assert found.constraints == ["region_min_markets[EMEA]", "talent_cap[EMEA,2027]"]
    assert found.explanation[0].endswith("at least 2 markets must be entered in EMEA; with talent_cap[EMEA,2027] at most 1 market can be.")
    assert found.explanation[1].endswith("EMEA can staff at most 30 people in 2027; region_min_markets[EMEA] needs at least 40 people there.")
    # raising the cap by 10 (a third) is a smaller move than dropping one of two required markets
    assert found.relaxations == [Relaxation("talent_cap[EMEA,2027]", 30.0, 40.0, 10.0)]
    assert_relaxations_make_it_feasible(REGION_TALENT, found)


def test_npv_floor_above_the_reachable_npv() -> None:  # (c)
    found = explain(NPV_FLOOR)
    assert found.method == "lp_iis"
    assert found.constraints == ["min_expected_npv"]
    assert found.explanation == ["min_expected_npv: the expected NPV must be at least USD 500 million; "
                                 "even with no other limit at most USD 180 million is reachable."]
    assert found.relaxations == [Relaxation("min_expected_npv", 500.0, 180.0, -320.0)]
    assert_relaxations_make_it_feasible(NPV_FLOOR, found)


def test_commitment_in_a_banned_mode_is_an_input_error_not_a_conflict() -> None:  # (d), first half
    raw = copy.deepcopy(COMMITMENT_BUDGET)
    raw["markets"][0]["compliance"] = {"banned_modes": ["build"]}
    with pytest.raises(ScenarioError) as error:
        parse_scenario(raw)
    assert [v.field for v in error.value.violations] == ["commitments[0].mode"]
    assert "banned" in error.value.violations[0].description


def test_commitment_whose_entry_exceeds_the_budget() -> None:  # (d)
    found = explain(COMMITMENT_BUDGET)
    assert found.method == "lp_iis"
    assert found.constraints == ["budget[2027]", "commitment[A]"]
    assert found.explanation == [
        "budget[2027]: the 2027 budget allows USD 100 million of spending; commitment[A] needs at least USD 120 million in 2027.",
        "commitment[A]: A is committed: it is entered by build in 2027.",
    ]
    assert found.relaxations == [Relaxation("budget[2027]", 100.0, 120.0, 20.0)]
    assert_relaxations_make_it_feasible(COMMITMENT_BUDGET, found)


def test_commitment_is_released_when_it_is_the_cheaper_move() -> None:  # (d), the commitment gives way
    raw = copy.deepcopy(COMMITMENT_BUDGET)
    raw["markets"][0]["options"][0]["cash_flows"]["cost"] = [1000]  # +900 on a budget of 100: worse than releasing
    found = explain(raw)
    assert found.constraints == ["budget[2027]", "commitment[A]"]
    assert found.relaxations == [Relaxation("commitment[A]", 1.0, 0.0, -1.0)]
    assert relaxation_words(parse_scenario(raw), found.relaxations[0]) == "commitment[A]: release the commitment to A."
    assert_relaxations_make_it_feasible(raw, found)


def test_integer_only_infeasibility_goes_through_the_elastic_model() -> None:  # (e)
    am = build_model(parse_scenario(INTEGER_ONLY))
    assert solve_model(am).status == SolveStatus.INFEASIBLE
    lp = _ElasticModel(am, _Clock(10))
    lp.configure()
    assert lp.run(relax=True).status == "optimal"  # the LP relaxation has a plan: only whole markets conflict
    found = explain_infeasibility(am)
    assert found.method == "elastic"
    assert found.constraints == ["budget[2027]", "budget[2028]", "budget[2029]", "region_min_markets[EMEA]"]
    assert found.relaxations == [Relaxation("budget[2029]", 100.0, 110.0, 10.0)]
    assert found.explanation[3] == ("region_min_markets[EMEA]: at least 2 markets must be entered in EMEA; with "
                                    "budget[2027], budget[2028] and budget[2029] at most 1 market can be.")
    assert_relaxations_make_it_feasible(INTEGER_ONLY, found)


def test_must_enter_with_an_empty_window_is_its_own_conflict() -> None:  # docs reading 4
    raw = {**BASE, "markets": [market("A", 10, must=True, compliance={"lead_time_years": 5}), market("B", 10)]}
    found = explain(raw)
    assert found.constraints == ["must_enter[A]"]
    assert found.explanation == ["must_enter[A]: A must be entered (it has no allowed entry year)."]
    assert found.relaxations == [Relaxation("must_enter[A]", 1.0, 0.0, -1.0)]
    assert_relaxations_make_it_feasible(raw, found)


def test_cumulative_budget_money_words_use_the_scenario_currency_and_unit() -> None:
    raw = {**MUST_ENTER_BUDGET, "currency": "EUR", "money_unit": "thousands",
           "budget": {"limit": [100, 60, 30], "carry_over": True}}
    found = explain(raw)
    assert found.constraints == ["must_enter[A]", "must_enter[B]", "budget_cumulative[2027]"]
    assert found.explanation[2] == ("budget_cumulative[2027]: the budget with carry-over allows EUR 100 thousand of spending "
                                    "over 2027; must_enter[A] and must_enter[B] need at least EUR 140 thousand over 2027.")
    assert found.relaxations == [Relaxation("budget_cumulative[2027]", 100.0, 140.0, 40.0)]
    assert_relaxations_make_it_feasible(raw, found)


def test_headcount_and_net_hires_limits_in_people() -> None:
    raw = {**BASE, "markets": [market("A", 10, heads=30, must=True), market("B", 10, heads=5)],
           "headcount": {"max_net_hires": 10, "initial": 5}}
    found = explain(raw)
    assert found.constraints == ["must_enter[A]", "net_hires[2027]"]
    assert found.explanation[1] == ("net_hires[2027]: net hires in 2027 are limited to 10 people (from an initial staff of 5 people); "
                                    "must_enter[A] needs at least 25 people of net hires in 2027.")
    assert found.relaxations == [Relaxation("net_hires[2027]", 10.0, 25.0, 15.0)]
    assert_relaxations_make_it_feasible(raw, found)


def test_a_feasible_model_has_nothing_to_explain() -> None:
    raw = copy.deepcopy(MUST_ENTER_BUDGET)
    raw["budget"]["limit"] = 200
    am = build_model(parse_scenario(raw))
    with pytest.raises(ValueError, match="feasible"):
        explain_infeasibility(am)


def test_no_time_left_still_answers() -> None:
    # (how long it takes is measured in bench/bench_explain.py, not asserted here)
    am = build_model(parse_scenario(INTEGER_ONLY))
    found = explain_infeasibility(am, time_limit=0.0)
    assert found.method == "elastic"
    assert set(found.constraints) >= {"budget[2027]", "budget[2028]", "budget[2029]", "region_min_markets[EMEA]"}
    assert len(found.explanation) == len(found.constraints)


def test_highs_default_iis_strategy_is_empty_on_row_conflicts() -> None:
    """Why IIS_STRATEGIES: HiGHS 1.16's default (light) strategy returns a valid but EMPTY IIS for
    a conflict between rows; FromLp | Irreducible finds it. If this changes with a HiGHS upgrade,
    revisit the strategy order in models/conflict.py."""
    am = build_model(parse_scenario(MUST_ENTER_BUDGET))
    em = _ElasticModel(am, _Clock(10))
    rows = am.rows
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.addVars(em.n, em.col_lb, em.col_ub)
    starts = np.cumsum([0] + [r.idx.size for r in rows[:-1]]).astype(np.int32)
    h.addRows(len(rows), em.row_lb, em.row_ub, int(sum(r.idx.size for r in rows)), starts,
              np.concatenate([r.idx for r in rows]).astype(np.int32), np.concatenate([r.coef for r in rows]))
    _, light = h.getIis()
    assert light.valid_ and list(light.row_index_) == []
    h.setOptionValue("iis_strategy", IIS_STRATEGIES[0])
    _, found = h.getIis()
    assert sorted(rows[k].name for k in found.row_index_) == ["budget[2027]", "must_enter[A]", "must_enter[B]"]


def test_a_large_infeasible_scenario_is_explained_under_a_time_limit() -> None:
    from lepton_alloc.models.generator import generate_scenario

    raw = generate_scenario(200, 10, 1)
    for m in raw["markets"]:
        m["must_enter"] = True  # far more than budget, headcount and region caps allow
    am = build_model(parse_scenario(raw))
    found = explain_infeasibility(am, time_limit=4.0)
    assert found.method == "lp_iis" and found.constraints and found.relaxations
    assert len(found.explanation) == len(found.constraints)


def test_ratio_limits_move_to_the_smallest_ratio_a_plan_reaches() -> None:
    # average risk: A (0.8) must be entered, B (0.1) is the only diluter -> at best (0.8 + 0.1) / 2 = 0.45
    risk = {**BASE, "markets": [market("A", 10, must=True, risk_score=0.8), market("B", 10, risk_score=0.1)],
            "risk": {"max_average_risk": 0.3}}
    found = explain(risk)
    assert found.constraints == ["must_enter[A]", "max_average_risk"]
    assert found.explanation[1] == ("max_average_risk: the average risk score of the entered markets may not exceed 0.3; "
                                    "with must_enter[A] it is at least 0.45.")
    assert found.relaxations == [Relaxation("max_average_risk", 0.3, 0.45, pytest.approx(0.15))]
    assert_relaxations_make_it_feasible(risk, found)
    # budget share: EMEA's A (70) must be entered, AMER's B (10) is all other spend -> at best 70 / 80
    share = {**BASE, "markets": [market("A", 70, must=True), market("B", 10, region="AMER")],
             "regions": [{"name": "EMEA", "max_budget_share": 0.8}]}
    found = explain(share)
    assert found.constraints == ["must_enter[A]", "region_budget_share[EMEA]"]
    assert found.explanation[1] == ("region_budget_share[EMEA]: EMEA may take at most 80 % of total spending over the horizon; "
                                    "with must_enter[A] it takes at least 87.5 %.")
    assert [r.constraint for r in found.relaxations] == ["region_budget_share[EMEA]"]
    assert found.relaxations[0].needed == pytest.approx(0.875)
    assert_relaxations_make_it_feasible(share, found)
