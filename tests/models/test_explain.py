"""Explanations of a plan (models/explain.py, docs/model.md §3): limits with use, slack, binding
status and local prices, and the objective split into its terms and per market.

The local prices are checked against an *independent* fixed-integer LP: a fresh Pyomo build of
the scenario with x and n fixed at the plan (``Var.fix``) and a moved limit Param, solved by
Pyomo's own HiGHS interface (not the highspy LP of models/explain.py). Designed scenarios have
hand-computable prices; on the built-in example and a generated scenario every price must be a
supergradient of the fixed LP's concave value function (right derivative <= price <= left
derivative), which is what a dual guarantees even at a degenerate vertex.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from lepton_alloc.models import build_model
from lepton_alloc.models.explain import (NOTE_ENTRY_ONLY, NOTE_INTEGER_ONLY, Explanation, explain_plan,
                                         fixed_lp)
from lepton_alloc.models.extract import extract_result
from lepton_alloc.models.formulation import AllocationModel
from lepton_alloc.models.generator import generate_scenario
from lepton_alloc.models.loader import load_builtin_example
from lepton_alloc.models.scenario import Scenario, parse_scenario
from lepton_alloc.models.solve import SolveOutcome, solve_model

from .test_bruteforce import generate as bruteforce_instance

REL = 1e-6


def _solve(raw: dict[str, Any] | Scenario, **options: Any) -> tuple[AllocationModel, SolveOutcome, Explanation]:
    sc = raw if isinstance(raw, Scenario) else parse_scenario(raw)
    am = build_model(sc)
    out = solve_model(am, **{"mip_rel_gap": 0.0, **options})
    return am, out, explain_plan(am, out)


def _limit(ex: Explanation, name: str) -> Any:
    return next(lim for lim in ex.limits if lim.constraint == name)


def _close(a: float, b: float, rel: float = REL) -> bool:
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def _pyomo_fixed_lp(sc: Scenario, values: np.ndarray, limits: dict[str, float] | None = None) -> float:
    """The fixed-integer LP's optimum, independently: Pyomo model, x and n fixed, limits moved
    (-inf when the moved limit leaves the fixed plan infeasible)."""
    from pyomo.contrib.solver.common.results import TerminationCondition
    from pyomo.contrib.solver.solvers.highs import Highs

    am = build_model(sc)
    for name, value in (limits or {}).items():
        am.model.limit[name] = value
    lay = am.layout
    integer = list(range(lay.n_x)) + list(range(lay.n_offset, lay.n_offset + lay.n_market.size))
    for k in integer:
        am.variables[k].fix(float(round(values[k])))
    result = Highs().solve(am.model, rel_gap=0.0, load_solutions=False, raise_exception_on_nonoptimal_result=False)
    if result.termination_condition in (TerminationCondition.provenInfeasible,
                                        TerminationCondition.infeasibleOrUnbounded):
        return -np.inf
    assert result.termination_condition == TerminationCondition.convergenceCriteriaSatisfied
    return float(result.incumbent_objective)


# ----------------------------------------------------------------------------- designed scenarios


def _cash_flow_market(mid: str, contribution: list[float], cost: list[float], **extra: Any) -> dict[str, Any]:
    return {"id": mid, "options": [{"mode": "build", "cash_flows": {"contribution": contribution, "cost": cost,
                                                                      **extra.pop("cf", {})}}], **extra}


def invest_scenario() -> dict[str, Any]:
    """Budget binds on growth investment, inside its second segment (a non-degenerate vertex).

    Year 0: spend 2 + y0 <= 5 -> y0 = 3 (segment 1 full, 1 of 4 in segment 2): price w_0 (1.3 - 1) = 0.3.
    Year 1: spend 2 + y1 <= 6 -> y1 = 4: price w_1 · 0.3 = 0.3 / 1.1.
    """
    return {
        "name": "invest", "start_year": 2030, "horizon_years": 2, "discount_rate": 0.1,
        "markets": [_cash_flow_market("A", [10, 10], [2, 2], latest_entry_year=2030, growth_investment={
            "segments": [{"up_to": 2, "return_rate": 1.8}, {"up_to": 6, "return_rate": 1.3}]})],
        "budget": {"limit": [5, 6]},
    }


def test_budget_price_on_growth_investment_by_hand_and_finite_difference() -> None:
    raw = invest_scenario()
    am, out, ex = _solve(raw)
    assert out.status == "optimal"
    b0, b1 = _limit(ex, "budget[2030]"), _limit(ex, "budget[2031]")
    assert (b0.use, b0.limit, b0.slack, b0.binds) == (pytest.approx(5.0), 5.0, pytest.approx(0.0, abs=1e-9), True)
    assert b0.local_price == pytest.approx(0.3, rel=1e-9)
    assert b1.local_price == pytest.approx(0.3 / 1.1, rel=1e-9)
    # the same from an independent LP, the limit raised by delta (the value function is linear there)
    sc = parse_scenario(raw)
    base = _pyomo_fixed_lp(sc, out.values)
    assert _close(base, out.objective_value)
    for lim in (b0, b1):
        delta = 0.01
        moved = _pyomo_fixed_lp(sc, out.values, {lim.constraint: lim.limit + delta})
        assert _close((moved - base) / delta, lim.local_price)
        # and lowered: still the same slope (not at a kink)
        lowered = _pyomo_fixed_lp(sc, out.values, {lim.constraint: lim.limit - delta})
        assert _close((base - lowered) / delta, lim.local_price)


def test_cumulative_budget_price_by_finite_difference() -> None:
    raw = invest_scenario()
    raw["budget"] = {"limit": [5, 6], "carry_over": True}
    am, out, ex = _solve(raw)
    sc = parse_scenario(raw)
    base = _pyomo_fixed_lp(sc, out.values)
    priced = [lim for lim in ex.limits if lim.constraint.startswith("budget_cumulative")]
    assert len(priced) == 2 and all(lim.local_price is not None for lim in priced)
    assert any(lim.binds and lim.local_price > 0 for lim in priced)
    for lim in priced:
        delta = 0.01
        moved = _pyomo_fixed_lp(sc, out.values, {lim.constraint: lim.limit + delta})
        assert _close((moved - base) / delta, lim.local_price)


def test_floor_price_is_negative_and_matches_finite_difference() -> None:
    """final_year_contribution with a return rate < 1: investing in the last year raises the
    objective (0.5 per unit) and lowers E[NPV] (0.5 per unit), so the E[NPV] floor binds:
    NPV = 18 - 0.5 y1 >= 15 -> y1 = 6; a unit higher floor costs 1 of objective."""
    raw = {
        "name": "floor", "start_year": 0, "horizon_years": 2,
        "markets": [_cash_flow_market("A", [10, 10], [1, 1], latest_entry_year=0, growth_investment={
            "segments": [{"up_to": 10, "return_rate": 0.5}]})],
        "objective": {"kind": "final_year_contribution", "min_expected_npv": 15},
    }
    am, out, ex = _solve(raw)
    floor = _limit(ex, "min_expected_npv")
    assert floor.use == pytest.approx(15.0) and floor.binds and floor.slack == pytest.approx(0.0, abs=1e-9)
    assert floor.local_price == pytest.approx(-1.0, rel=1e-9)
    sc = parse_scenario(raw)
    base = _pyomo_fixed_lp(sc, out.values)
    moved = _pyomo_fixed_lp(sc, out.values, {"min_expected_npv": 15.01})
    assert _close((moved - base) / 0.01, floor.local_price)


def test_region_budget_share_in_natural_units_and_price_per_unit_share() -> None:
    """EU spend 2 + y vs total 6 + y, share <= 0.5 -> y = 2; the objective 0.5 y(s) with
    y(s) = (6s - 2)/(1 - s), so d objective / d share = 0.5 · 4/(1 - s)^2 = 8."""
    raw: dict[str, Any] = {
        "name": "share", "start_year": 0, "horizon_years": 1,
        "markets": [
            _cash_flow_market("A", [10], [2], region="EU", growth_investment={"segments": [{"up_to": 10, "return_rate": 1.5}]}),
            _cash_flow_market("B", [10], [4], region="US"),
        ],
        "regions": [{"name": "EU", "max_budget_share": 0.5}, {"name": "US"}],
    }
    am, out, ex = _solve(raw)
    share = _limit(ex, "region_budget_share[EU]")
    assert share.use == pytest.approx(0.5) and share.limit == 0.5 and share.binds
    assert share.local_price == pytest.approx(8.0, rel=1e-9)
    # central difference of the independent fixed LP, the share itself moved (row coefficients change)
    delta = 1e-4
    values = []
    for s in (0.5 - delta, 0.5 + delta):
        moved = copy.deepcopy(raw)
        moved["regions"][0]["max_budget_share"] = s
        values.append(_pyomo_fixed_lp(parse_scenario(moved), out.values))
    assert _close((values[1] - values[0]) / (2 * delta), share.local_price)


def hiring_scenario() -> dict[str, Any]:
    """Headcount and talent caps bind on integer growth hires; growth investment exists (it
    touches the budget, which does not bind: a true, meaningful price 0)."""
    return {
        "name": "hiring", "start_year": 2030, "horizon_years": 2,
        "markets": [_cash_flow_market(
            "A", [10, 10], [1, 1], cf={"headcount": [2, 2]}, region="EU", salary_per_head=0.1, latest_entry_year=2030,
            growth_hiring={"max_heads": 5, "contribution_per_head": 1.0},
            growth_investment={"segments": [{"up_to": 1, "return_rate": 1.5}]})],
        "budget": {"limit": 100},
        "headcount": {"cap": [5, 100], "max_net_hires": 100},
        "regions": [{"name": "EU", "talent_cap": [100, 4]}],
    }


def test_caps_touched_only_by_integers_have_no_local_price() -> None:
    raw = hiring_scenario()
    am, out, ex = _solve(raw)
    cap, talent = _limit(ex, "headcount_cap[2030]"), _limit(ex, "talent_cap[EU,2031]")
    assert (cap.use, cap.slack, cap.binds) == (pytest.approx(5.0), pytest.approx(0.0, abs=1e-9), True)
    assert (talent.use, talent.slack, talent.binds) == (pytest.approx(4.0), pytest.approx(0.0, abs=1e-9), True)
    for lim in (cap, talent, _limit(ex, "net_hires[2030]")):
        assert lim.local_price is None and lim.local_price_note == NOTE_INTEGER_ONLY
    # the fixed LP indeed cannot move with them (0 would be a meaningless "price": the MIP would hire more)
    sc = parse_scenario(raw)
    base = _pyomo_fixed_lp(sc, out.values)
    for lim in (cap, talent):
        assert _close(_pyomo_fixed_lp(sc, out.values, {lim.constraint: lim.limit + 1}), base)
    raised = copy.deepcopy(raw)
    raised["headcount"]["cap"] = [6, 100]
    _, out_raised, _ = _solve(raised)
    assert out_raised.objective_value > out.objective_value + 0.5  # one more hire: +1 contribution - 0.1 salary
    # the budget has growth investment in it: a real price, 0 because it has slack
    budget = _limit(ex, "budget[2030]")
    assert budget.local_price == 0.0 and not budget.binds and budget.local_price_note == ""


def test_use_slack_binds_by_hand_and_entry_only_limits() -> None:
    """Budget 10, the plan spends 8: use 8, slack 2, not binding; no lever touches it."""
    raw: dict[str, Any] = {
        "name": "tiny", "start_year": 2030, "horizon_years": 1,
        "markets": [
            _cash_flow_market("A", [20], [7], region="EU", risk_score=0.2, cf={"headcount": [2]}),
            _cash_flow_market("B", [9], [1], region="US", risk_score=0.6),
        ],
        "budget": {"limit": 10},
        "headcount": {"initial": 3, "max_net_hires": 10, "cap": 2},
        "regions": [{"name": "EU", "min_markets": 1, "max_markets": 2}, {"name": "US", "max_markets": 1}],
        "risk": {"max_average_risk": 0.5},
    }
    am, out, ex = _solve(raw)
    assert out.status == "optimal"
    budget = _limit(ex, "budget[2030]")
    assert (budget.use, budget.limit, budget.slack, budget.binds) == (pytest.approx(8.0), 10.0, pytest.approx(2.0), False)
    risk = _limit(ex, "max_average_risk")
    assert (risk.use, risk.limit, risk.slack, risk.binds) == (pytest.approx(0.4), 0.5, pytest.approx(0.1), False)
    net = _limit(ex, "net_hires[2030]")  # H_0 - initial = 2 - 3
    assert (net.use, net.limit, net.slack) == (pytest.approx(-1.0), 10.0, pytest.approx(11.0))
    cap = _limit(ex, "headcount_cap[2030]")
    assert (cap.use, cap.slack, cap.binds) == (pytest.approx(2.0), pytest.approx(0.0), True)
    low, high = _limit(ex, "region_min_markets[EU]"), _limit(ex, "region_max_markets[US]")
    assert (low.use, low.limit, low.slack, low.binds) == (1.0, 1.0, 0.0, True)  # lower limit: slack = use - limit
    assert (high.use, high.limit, high.slack, high.binds) == (1.0, 1.0, 0.0, True)
    for lim in ex.limits:  # nothing continuous anywhere: no local price, never a 0
        assert lim.local_price is None and lim.local_price_note == NOTE_ENTRY_ONLY
    # spending exactly the budget binds, still without a local price
    raw["budget"]["limit"] = 8
    _, _, ex = _solve(raw)
    budget = _limit(ex, "budget[2030]")
    assert budget.binds and budget.slack == pytest.approx(0.0) and budget.local_price is None


def test_nothing_entered_risk_does_not_bind_and_no_plan_gives_nothing() -> None:
    raw = {"name": "none", "horizon_years": 1, "markets": [_cash_flow_market("A", [1], [5], risk_score=0.9)],
           "risk": {"max_average_risk": 0.1}}
    _, out, ex = _solve(raw)
    risk = _limit(ex, "max_average_risk")
    assert (risk.use, risk.binds) == (0.0, False)
    infeasible = {"name": "inf", "horizon_years": 1,
                  "markets": [_cash_flow_market("A", [1], [5], must_enter=True)], "budget": {"limit": 1}}
    _, out, ex = _solve(infeasible)
    assert out.values is None and ex.limits == [] and ex.objective_terms == [] and ex.market_terms == []


# ----------------------------------------------------------------------------- larger models: supergradient


def _assert_supergradients(sc: Scenario, out: SolveOutcome, ex: Explanation, families: tuple[str, ...]) -> int:
    """right derivative <= price <= left derivative of the independent fixed LP, per priced row."""
    base = _pyomo_fixed_lp(sc, out.values)
    checked = 0
    for lim in ex.limits:
        if lim.local_price is None or not lim.constraint.startswith(families):
            continue
        delta = 1e-3 * max(1.0, abs(lim.limit))
        bound = lim.limit + (float(sc.headcount.initial) if lim.constraint == f"net_hires[{sc.start_year}]" else 0.0)
        up = (_pyomo_fixed_lp(sc, out.values, {lim.constraint: bound + delta}) - base) / delta
        down = (base - _pyomo_fixed_lp(sc, out.values, {lim.constraint: bound - delta})) / delta
        tol = 1e-6 * max(1.0, abs(lim.local_price))
        assert up - tol <= lim.local_price <= down + tol, (lim.constraint, up, lim.local_price, down)
        if lim.binds:
            checked += 1
    return checked


def test_example_prices_are_supergradients_of_the_fixed_lp() -> None:
    sc = load_builtin_example()
    am, out, ex = _solve(sc, mip_rel_gap=None)
    lp = fixed_lp(am, out.values)
    assert lp.optimal and lp.objective >= out.objective_value - 1e-6 * abs(out.objective_value)
    assert _close(_pyomo_fixed_lp(sc, out.values), lp.objective)
    assert _assert_supergradients(sc, out, ex, ("budget", "min_expected_npv")) >= 1


def test_generated_prices_are_supergradients_of_the_fixed_lp() -> None:
    sc = parse_scenario(generate_scenario(40, 6, 3, levers_share=0.5, objective="risk_adjusted_npv",
                                          risk_aversion=0.4, time_limit=20, mip_rel_gap=1e-3))
    am, out, ex = _solve(sc, mip_rel_gap=None)
    assert out.values is not None
    assert any(lim.local_price is not None for lim in ex.limits)
    assert _assert_supergradients(sc, out, ex, ("budget",)) >= 3  # binding budgets with a price checked


# ----------------------------------------------------------------------------- objective decomposition


def _assert_decomposition(am: AllocationModel, out: SolveOutcome, ex: Explanation) -> None:
    assert out.values is not None and out.objective_value is not None
    total = sum(term.contribution for term in ex.objective_terms)
    assert abs(total - out.objective_value) <= 1e-9 * max(1.0, abs(out.objective_value)), (total, out.objective_value)
    for term in ex.objective_terms:
        assert term.contribution == term.weight * term.value
    kind = am.scenario.objective.kind
    names = [term.term for term in ex.objective_terms]
    assert names == {"expected_npv": ["expected_npv", "change_penalty"],
                     "risk_adjusted_npv": ["expected_npv", "cvar", "change_penalty"],
                     "final_year_contribution": ["final_year_contribution", "change_penalty"]}[kind]
    result = extract_result(am, out)
    assert result.kpis is not None
    kpis = result.kpis
    scale = max(1.0, abs(kpis.expected_npv))
    assert abs(sum(m.expected_npv for m in ex.market_terms) - kpis.expected_npv) <= 1e-9 * scale
    assert abs(sum(m.change_penalty for m in ex.market_terms) - kpis.change_penalty) <= 1e-9 * max(1.0, kpis.change_penalty)
    for terms, decision in zip(ex.market_terms, result.markets):
        assert terms.market_id == decision.id
        assert abs(terms.expected_npv - decision.expected_npv) <= 1e-9 * scale
    by_term = {term.term: term for term in ex.objective_terms}
    if "expected_npv" in by_term:
        assert abs(by_term["expected_npv"].value - kpis.expected_npv) <= 1e-9 * scale
    assert by_term["change_penalty"].value == pytest.approx(kpis.change_penalty, rel=1e-12, abs=1e-12)
    if "cvar" in by_term and out.gap == 0.0:
        assert by_term["cvar"].value == pytest.approx(kpis.cvar, rel=1e-6, abs=1e-6)
    # the terminal value independently: tv · expected recurring net cash flow of the last year
    sc = am.scenario
    if sc.terminal_growth is None:
        assert all(m.terminal_value == 0.0 for m in ex.market_terms)
    else:
        d, g, T = sc.discount_rate, sc.terminal_growth, sc.horizon_years
        tv = (1.0 + d) ** -(T - 1) * (1.0 + g) / (d - g)
        last = result.years[-1]
        one_offs = sum(m.years[-1].entry_cost + m.years[-1].compliance_cost for m in result.markets)
        expected_tv = tv * (last.expected_net_cash_flow + one_offs)
        assert abs(sum(m.terminal_value for m in ex.market_terms) - expected_tv) <= 1e-9 * max(scale, abs(expected_tv))


def test_decomposition_on_the_example() -> None:
    am, out, ex = _solve(load_builtin_example(), mip_rel_gap=None)
    _assert_decomposition(am, out, ex)
    penalised = {m.market_id: m.change_penalty for m in ex.market_terms if m.change_penalty}
    assert sum(penalised.values()) == pytest.approx(next(t.value for t in ex.objective_terms if t.term == "change_penalty"))


def test_constant_penalty_belongs_to_its_market() -> None:
    """A market previously entered with a banned mode pays P whatever happens: its own penalty."""
    raw = {
        "name": "penalty", "start_year": 0, "horizon_years": 2,
        "markets": [{"id": "A", "compliance": {"banned_modes": ["acquire"]},
                     "options": [{"mode": "build", "cash_flows": {"contribution": [5, 5], "cost": [1, 1]}},
                                 {"mode": "acquire", "cash_flows": {"contribution": [9, 9], "cost": [1, 1]}}]},
                    _cash_flow_market("B", [1], [5])],
        "previous_plan": {"change_penalty": 2.5, "decisions": [
            {"market_id": "A", "mode": "acquire", "entry_year": 0}, {"market_id": "B", "mode": "build", "entry_year": 0}]},
    }
    am, out, ex = _solve(raw)
    terms = {m.market_id: m for m in ex.market_terms}
    assert terms["A"].change_penalty == 2.5  # acquire is banned: the column does not exist
    assert terms["B"].change_penalty == pytest.approx(2.5)  # B (NPV -4) is not worth keeping: not re-entered
    _assert_decomposition(am, out, ex)


@pytest.mark.parametrize("seed", range(200))
def test_decomposition_on_bruteforce_instances(seed: int) -> None:
    am, out, ex = _solve(bruteforce_instance(seed))
    if out.values is None:
        assert ex.objective_terms == []
        return
    _assert_decomposition(am, out, ex)


@pytest.mark.parametrize("kind", ["expected_npv", "risk_adjusted_npv", "final_year_contribution"])
@pytest.mark.parametrize("seed", [1, 2])
def test_decomposition_on_generated_scenarios(kind: str, seed: int) -> None:
    raw = generate_scenario(30, 5, seed, objective=kind, risk_aversion=0.35, levers_share=0.4,
                            time_limit=20, mip_rel_gap=1e-3)
    if seed == 2:
        raw["previous_plan"] = {"change_penalty": 4.0, "decisions": [
            {"market_id": raw["markets"][0]["id"], "mode": "build", "entry_year": raw["start_year"] + 4},
            {"market_id": raw["markets"][1]["id"], "entered": False}]}
        raw["objective"]["min_cvar"] = -1e6
    am, out, ex = _solve(parse_scenario(raw), mip_rel_gap=None)
    _assert_decomposition(am, out, ex)
    assert ex.fixed_lp_status == "Optimal"


def test_explain_leaves_the_mip_intact_and_unpacks() -> None:
    am, out, ex = _solve(invest_scenario())
    limits, terms, markets = ex
    assert limits is ex.limits and terms is ex.objective_terms and markets is ex.market_terms
    again = solve_model(am, mip_rel_gap=0.0)  # the persistent MIP re-solves unchanged
    assert again.objective_value == pytest.approx(out.objective_value, rel=1e-12)
    assert all(v.domain.name in ("Binary", "NonNegativeIntegers") for v in am.model.x.values())
    assert not any(v.fixed for v in am.variables[:-1])
