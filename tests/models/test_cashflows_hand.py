"""Hand-computed checks of docs/model.md 2.2-2.4 and 2.6 on tiny scenarios.

Every expected number below is written out as arithmetic from the rules of docs/model.md, not
taken from a run of the solver. Decisions are forced (must_enter with earliest = latest,
commitments) wherever the expected value would otherwise depend on the optimiser's choice;
where the optimiser chooses, the choice is argued in a comment. All solves use
mip_rel_gap = 0 so the objective is the proven optimum.
"""

from __future__ import annotations

from typing import Any

import pytest

from lepton_alloc.models import solve_scenario

START = 2027


def approx(x: float) -> Any:
    return pytest.approx(x, rel=1e-9, abs=1e-9)


def scen(horizon: int, markets: list[dict[str, Any]], discount: float = 0.0, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": "hand",
        "start_year": START,
        "horizon_years": horizon,
        "discount_rate": discount,
        "markets": markets,
        "solver": {"time_limit_seconds": 60, "mip_rel_gap": 0},
    }
    d.update(extra)
    return d


def forced(mid: str, year: int, options: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    """A market that must be entered in exactly `year` (earliest = latest, must_enter)."""
    return {"id": mid, "earliest_entry_year": year, "latest_entry_year": year, "must_enter": True,
            "options": options, **kw}


def solve(d: dict[str, Any]) -> dict[str, Any]:
    res = solve_scenario(d, mip_rel_gap=0.0).to_dict()
    return res


def market(res: dict[str, Any], mid: str) -> dict[str, Any]:
    return next(m for m in res["markets"] if m["id"] == mid)


def row(res: dict[str, Any], mid: str, year: int) -> dict[str, Any]:
    return next(y for y in market(res, mid)["years"] if y["year"] == year)


def col(res: dict[str, Any], mid: str, field: str) -> list[float]:
    return [y[field] for y in market(res, mid)["years"]]


def total(res: dict[str, Any], field: str) -> list[float]:
    return [y[field] for y in res["years"]]


def assert_list(actual: list[float], expected: list[float]) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a == approx(e)


# --------------------------------------------------------------------------- 2.2 growth model


def test_share_growth_and_max_share_cap_binding_mid_horizon() -> None:
    # A enters 2027 (τ=0), B enters 2028 (τ=1); both S0=0.1, r=0.5, cap 0.2, margin 0.5,
    # M=100, g=0.1, d=0.1.  S(t) = min(0.2, 0.1*1.5**(t-τ)): 0.1, 0.15, 0.2 (0.225 capped), 0.2
    opt = {"mode": "build", "initial_share": 0.1, "share_growth": 0.5, "max_share": 0.2, "margin": 0.5}
    mk = dict(market_size=100, market_growth=0.1)
    res = solve(scen(4, [forced("A", 2027, [opt], **mk), forced("B", 2028, [opt], **mk)], discount=0.1))
    assert res["status"] == "optimal"

    size = [100 * 1.1**t for t in range(4)]
    share_a = [0.1, 0.1 * 1.5, min(0.2, 0.1 * 1.5**2), min(0.2, 0.1 * 1.5**3)]
    share_b = [0.0, 0.1, 0.1 * 1.5, min(0.2, 0.1 * 1.5**2)]
    assert share_a[2] == 0.2 and share_b[3] == 0.2  # the cap binds mid-horizon
    assert_list(col(res, "A", "expected_share"), share_a)
    assert_list(col(res, "B", "expected_share"), share_b)
    assert_list(col(res, "A", "expected_revenue"), [size[t] * share_a[t] for t in range(4)])
    assert_list(col(res, "A", "expected_contribution"), [0.5 * size[t] * share_a[t] for t in range(4)])
    assert_list(col(res, "B", "expected_contribution"), [0.5 * size[t] * share_b[t] for t in range(4)])
    assert_list(col(res, "A", "spend"), [0, 0, 0, 0])

    # growth 1.1**t and δ_t = 1.1**-t cancel: NPV_A = 50*(0.1+0.15+0.2+0.2), NPV_B = 50*(0.1+0.15+0.2)
    npv_a = 0.5 * 100 * (0.1 + 0.15 + 0.2 + 0.2)
    npv_b = 0.5 * 100 * (0.1 + 0.15 + 0.2)
    assert npv_a == approx(32.5) and npv_b == approx(22.5)
    assert market(res, "A")["expected_npv"] == approx(npv_a)
    assert market(res, "B")["expected_npv"] == approx(npv_b)
    assert res["objective_value"] == approx(npv_a + npv_b)
    assert res["kpis"]["expected_npv"] == approx(npv_a + npv_b)
    assert market(res, "B")["entry_year"] == 2028 and market(res, "B")["mode"] == "build"


def test_scenario_adjusted_size_and_share() -> None:
    # size[t,s] = M (1+g+Δg_s)^t; share = S0 (1 + r m_s)^(t-τ); T=2, d=0, entry 2027
    scen_list = [
        {"name": "bear", "probability": 0.25, "market_growth_delta": -0.05, "share_growth_multiplier": 0.5},
        {"name": "base", "probability": 0.5},
        {"name": "bull", "probability": 0.25, "market_growth_delta": 0.05, "share_growth_multiplier": 2.0},
    ]
    opt = {"mode": "build", "initial_share": 0.1, "share_growth": 0.2, "margin": 0.5}
    res = solve(scen(2, [forced("A", 2027, [opt], market_size=100, market_growth=0.1)],
                     growth_scenarios=scen_list))
    # NPV_s = 0.5*100*0.1 + 0.5*100*(1.1+Δ)*0.1*(1+0.2 m)
    npv = {
        "bear": 5 + 0.5 * 100 * 1.05 * 0.1 * (1 + 0.2 * 0.5),
        "base": 5 + 0.5 * 100 * 1.10 * 0.1 * (1 + 0.2 * 1.0),
        "bull": 5 + 0.5 * 100 * 1.15 * 0.1 * (1 + 0.2 * 2.0),
    }
    for k, v in npv.items():
        assert res["kpis"]["npv_by_scenario"][k] == approx(v)
    expected = 0.25 * npv["bear"] + 0.5 * npv["base"] + 0.25 * npv["bull"]
    assert res["objective_value"] == approx(expected)
    exp_share_1 = 0.25 * 0.1 * 1.1 + 0.5 * 0.1 * 1.2 + 0.25 * 0.1 * 1.4
    assert row(res, "A", 2028)["expected_share"] == approx(exp_share_1)
    exp_rev_1 = 0.25 * 105 * 0.11 + 0.5 * 110 * 0.12 + 0.25 * 115 * 0.14
    assert row(res, "A", 2028)["expected_revenue"] == approx(exp_rev_1)


def test_discount_factor_delta_t() -> None:
    # explicit flows of 1 every year, d = 0.25: NPV = Σ_t 1.25**-t, t = 0..3
    opt = {"mode": "build", "cash_flows": {"contribution": [1, 1, 1, 1]}}
    res = solve(scen(4, [forced("A", 2027, [opt])], discount=0.25))
    assert res["objective_value"] == approx(1 + 1 / 1.25 + 1 / 1.25**2 + 1 / 1.25**3)


# --------------------------------------------------------------------------- prehire, costs


def test_prehire_heads_and_salary_before_entry_not_before_year_zero() -> None:
    # A: enters 2028 (τ=1), headcount 3, prehire 2 -> heads for t >= τ-2 = -1, but only t >= 0
    #    salary 0.5, entry_cost 4, annual_cost 1, contribution 0.5*100*0.1 = 5 from τ.
    # B: enters 2029 (τ=2), headcount 2, prehire 1 -> heads for t >= 1; salary 1; contribution 5.
    a_opt = {"mode": "build", "initial_share": 0.1, "margin": 0.5, "entry_cost": 4, "annual_cost": 1,
             "headcount": 3, "prehire_years": 2}
    b_opt = {"mode": "partner", "initial_share": 0.1, "margin": 0.5, "headcount": 2, "prehire_years": 1}
    res = solve(scen(3, [
        forced("A", 2028, [a_opt], market_size=100, salary_per_head=0.5),
        forced("B", 2029, [b_opt], market_size=100, salary_per_head=1.0),
    ], discount=0.1))
    assert res["status"] == "optimal"

    assert_list(col(res, "A", "required_heads"), [3, 3, 3])
    assert_list(col(res, "A", "heads"), [3, 3, 3])
    assert_list(col(res, "A", "people_cost"), [3 * 0.5, 3 * 0.5, 3 * 0.5])
    assert_list(col(res, "A", "entry_cost"), [0, 4, 0])
    assert_list(col(res, "A", "annual_cost"), [0, 1, 1])
    assert_list(col(res, "A", "spend"), [1.5, 4 + 1 + 1.5, 1 + 1.5])
    assert_list(col(res, "A", "expected_contribution"), [0, 5, 5])
    assert_list(col(res, "B", "required_heads"), [0, 2, 2])
    assert_list(col(res, "B", "people_cost"), [0, 2, 2])
    assert_list(col(res, "B", "expected_contribution"), [0, 0, 5])

    npv_a = -1.5 + (5 - 6.5) / 1.1 + (5 - 2.5) / 1.1**2
    npv_b = -2 / 1.1 + (5 - 2) / 1.1**2
    assert market(res, "A")["expected_npv"] == approx(npv_a)
    assert market(res, "B")["expected_npv"] == approx(npv_b)
    assert res["objective_value"] == approx(npv_a + npv_b)
    assert_list(total(res, "heads"), [3, 3 + 2, 3 + 2])
    assert_list(total(res, "spend"), [1.5, 6.5 + 2, 2.5 + 2])


def test_compliance_cost_at_entry_minus_lead_and_lead_shifts_earliest_entry() -> None:
    # A: lead 2, compliance cost 3, must_enter, window 2027..2030 -> E_o = {2029, 2030}.
    #    entry_cost 2, annual 1, contribution 5/yr; d = 0.1.
    #    τ=2029: -3 + (5-2-1)/1.1**2 + (5-1)/1.1**3 = +1.658…
    #    τ=2030: -3/1.1 + (5-2-1)/1.1**3 = -1.22…  -> the optimum enters in 2029.
    # B: lead 1, earliest 2026 (before start, allowed), latest 2028 -> E_o = {max(-1,1)} = {2028};
    #    compliance 1 paid in 2027; contribution 0.5*10*0.2 = 1/yr from 2028.
    # C: lead 1, compliance cost 100, a loss-making option: not entered, no compliance paid.
    a_opt = {"mode": "build", "initial_share": 0.1, "margin": 0.5, "entry_cost": 2, "annual_cost": 1}
    b_opt = {"mode": "acquire", "initial_share": 0.2, "margin": 0.5}
    c_opt = {"mode": "build", "initial_share": 0.1, "margin": 0.5, "annual_cost": 10}
    res = solve(scen(4, [
        {"id": "A", "market_size": 100, "must_enter": True,
         "compliance": {"lead_time_years": 2, "cost": 3}, "options": [a_opt]},
        {"id": "B", "market_size": 10, "must_enter": True, "earliest_entry_year": 2026,
         "latest_entry_year": 2028, "compliance": {"lead_time_years": 1, "cost": 1}, "options": [b_opt]},
        {"id": "C", "market_size": 100, "compliance": {"lead_time_years": 1, "cost": 100}, "options": [c_opt]},
    ], discount=0.1))
    assert res["status"] == "optimal"
    assert market(res, "A")["entry_year"] == 2029
    assert market(res, "B")["entry_year"] == 2028
    assert market(res, "C")["entry_year"] is None and market(res, "C")["mode"] is None

    assert_list(col(res, "A", "compliance_cost"), [3, 0, 0, 0])
    assert_list(col(res, "A", "entry_cost"), [0, 0, 2, 0])
    assert_list(col(res, "A", "annual_cost"), [0, 0, 1, 1])
    assert_list(col(res, "B", "compliance_cost"), [1, 0, 0, 0])
    assert_list(col(res, "B", "expected_contribution"), [0, 1, 1, 1])
    assert_list(col(res, "C", "compliance_cost"), [0, 0, 0, 0])
    assert_list(col(res, "C", "spend"), [0, 0, 0, 0])

    npv_a = -3 + (5 - 2 - 1) / 1.1**2 + (5 - 1) / 1.1**3
    npv_b = -1 + 1 / 1.1 + 1 / 1.1**2 + 1 / 1.1**3
    assert market(res, "A")["expected_npv"] == approx(npv_a)
    assert res["objective_value"] == approx(npv_a + npv_b)


# --------------------------------------------------------------------------- explicit cash flows


def test_explicit_cash_flows_index_from_entry_truncated_no_scenario_adjustment() -> None:
    # A enters 2028 (τ=1), T=3: contribution[t-τ], cost[t-τ], headcount[t-τ]; lists longer
    # than the remaining years are truncated at T-1. Compliance lead 1, cost 2 -> paid 2027.
    # salary 0.5. Scenario deltas/multipliers must not touch explicit flows.
    # B enters 2027 with one-element lists: only year 0 has a flow.
    scen_list = [
        {"name": "bear", "probability": 0.25, "market_growth_delta": -0.05, "share_growth_multiplier": 0.5},
        {"name": "base", "probability": 0.5},
        {"name": "bull", "probability": 0.25, "market_growth_delta": 0.05, "share_growth_multiplier": 1.5},
    ]
    a_opt = {"mode": "partner", "cash_flows": {"contribution": [10, 20, 30, 40], "cost": [4, 1, 1, 1],
                                               "headcount": [1, 2, 3, 4]}}
    b_opt = {"mode": "build", "cash_flows": {"contribution": [3], "cost": [], "headcount": []}}
    res = solve(scen(3, [
        forced("A", 2028, [a_opt], market_size=100, market_growth=0.1, salary_per_head=0.5,
               compliance={"lead_time_years": 1, "cost": 2}),
        forced("B", 2027, [b_opt], market_size=50),
    ], discount=0.1, growth_scenarios=scen_list))
    assert res["status"] == "optimal"
    assert market(res, "A")["mode"] == "partner"

    assert_list(col(res, "A", "expected_contribution"), [0, 10, 20])
    assert_list(col(res, "A", "compliance_cost"), [2, 0, 0])
    assert_list(col(res, "A", "entry_cost"), [0, 0, 0])
    assert_list(col(res, "A", "required_heads"), [0, 1, 2])
    assert_list(col(res, "A", "people_cost"), [0, 0.5, 1.0])
    assert_list(col(res, "A", "spend"), [2, 4 + 0.5, 1 + 1.0])
    # explicit cash-flow options report contribution only (docs/model.md 3)
    assert_list(col(res, "A", "expected_revenue"), [0, 0, 0])
    assert_list(col(res, "B", "expected_contribution"), [3, 0, 0])

    npv_a = -2 + (10 - 4.5) / 1.1 + (20 - 2) / 1.1**2
    npv_b = 3.0
    for s in ("bear", "base", "bull"):
        assert res["kpis"]["npv_by_scenario"][s] == approx(npv_a + npv_b)
    assert res["objective_value"] == approx(npv_a + npv_b)


# --------------------------------------------------------------------------- 2.4 budget, heads


def _carry_case(carry: bool, year: int) -> dict[str, Any]:
    # entry_cost 8 + annual 1 = 9 in the entry year; budget 5 every year; contribution 5/yr
    opt = {"mode": "build", "initial_share": 0.1, "margin": 0.5, "entry_cost": 8, "annual_cost": 1}
    return scen(2, [forced("A", year, [opt], market_size=100)],
                budget={"limit": 5, "carry_over": carry})


def test_budget_carry_over_makes_late_plan_feasible() -> None:
    # entry in 2028: Spend = [0, 9]; per-year 9 > 5 infeasible; cumulative 0 <= 5, 9 <= 10 feasible
    res = solve(_carry_case(True, 2028))
    assert res["status"] == "optimal"
    assert res["objective_value"] == approx(5 - 9)
    assert_list(total(res, "spend"), [0, 9])
    assert_list(total(res, "budget_limit"), [5, 5])

    res_no = solve(_carry_case(False, 2028))
    assert res_no["status"] == "infeasible"
    assert res_no["objective_value"] is None


def test_budget_carry_over_does_not_allow_borrowing() -> None:
    # entry in 2027: Spend_0 = 9 > B_0 = 5, and the cumulative limit for 2027 is still 5
    assert solve(_carry_case(True, 2027))["status"] == "infeasible"


def test_net_hires_start_from_headcount_initial_people_not_paid() -> None:
    # 5 heads from 2027; max_net_hires 2; initial 3: H_0 - 3 = 2 <= 2 -> feasible.
    # salary 0.4: only the 5 required heads are paid (initial staff are not in H_t / Spend).
    opt = {"mode": "build", "initial_share": 0.1, "margin": 0.5, "headcount": 5}

    def case(initial: int) -> dict[str, Any]:
        return scen(2, [forced("A", 2027, [opt], market_size=100, salary_per_head=0.4)],
                    headcount={"max_net_hires": 2, "initial": initial})

    res = solve(case(3))
    assert res["status"] == "optimal"
    assert_list(total(res, "heads"), [5, 5])
    assert_list(total(res, "net_hires"), [5 - 3, 0])
    assert_list(total(res, "spend"), [5 * 0.4, 5 * 0.4])
    assert res["objective_value"] == approx(2 * (5 - 2.0))
    # initial 2: H_0 - 2 = 3 > 2 -> infeasible
    assert solve(case(2))["status"] == "infeasible"


def test_headcount_cap_counts_prehired_heads() -> None:
    # entry 2028 with prehire 1: 4 heads already in 2027; cap 3 in 2027 -> infeasible
    opt = {"mode": "build", "initial_share": 0.1, "margin": 0.5, "headcount": 4, "prehire_years": 1}
    d = scen(2, [forced("A", 2028, [opt], market_size=100)], headcount={"cap": [3, 10]})
    assert solve(d)["status"] == "infeasible"
    d["headcount"]["cap"] = [4, 4]
    assert solve(d)["status"] == "optimal"


# --------------------------------------------------------------------------- 2.6 terminal value


def test_terminal_value_excludes_one_off_costs_and_keeps_cash_flow_costs() -> None:
    # T=2, d=0.1, g=0.02, factor f = δ_1 (1+g)/(d-g) = (1/1.1)*1.02/0.08
    # A: growth model, enters 2028 (final year). contribution 5, entry 3, compliance (lead 0) 2,
    #    annual 1, 2 heads * 0.5 = 1. Net_1 = 5-3-2-1-1 = -2; Recurring_1 = -2 + 3 + 2 = 3.
    # B: cash_flows, enters 2028: contribution [5], cost [2] (recurring), compliance (lead 0) 1:
    #    Net_1 = 5-2-1 = 2; Recurring_1 = 2 + 1 = 3.
    # C: growth model, enters 2027 with entry cost 4 (not in the final year): Net = [1, 5],
    #    Recurring_1 = 5.
    f = (1 / 1.1) * 1.02 / (0.1 - 0.02)
    a_opt = {"mode": "build", "initial_share": 0.1, "margin": 0.5, "entry_cost": 3, "annual_cost": 1,
             "headcount": 2}
    b_opt = {"mode": "build", "cash_flows": {"contribution": [5], "cost": [2]}}
    c_opt = {"mode": "build", "initial_share": 0.1, "margin": 0.5, "entry_cost": 4}
    res = solve(scen(2, [
        forced("A", 2028, [a_opt], market_size=100, salary_per_head=0.5,
               compliance={"lead_time_years": 0, "cost": 2}),
        forced("B", 2028, [b_opt], compliance={"lead_time_years": 0, "cost": 1}),
        forced("C", 2027, [c_opt], market_size=100),
    ], discount=0.1, terminal_growth=0.02))
    assert res["status"] == "optimal"
    npv_a = -2 / 1.1 + 3 * f
    npv_b = 2 / 1.1 + 3 * f
    npv_c = (5 - 4) + 5 / 1.1 + 5 * f
    assert market(res, "A")["expected_npv"] == approx(npv_a)
    assert market(res, "B")["expected_npv"] == approx(npv_b)
    assert market(res, "C")["expected_npv"] == approx(npv_c)
    assert res["objective_value"] == approx(npv_a + npv_b + npv_c)
    assert res["kpis"]["expected_npv"] == approx(npv_a + npv_b + npv_c)
    assert_list(col(res, "A", "compliance_cost"), [0, 2])
    assert_list(col(res, "B", "annual_cost"), [0, 2])


def test_terminal_value_with_negative_growth_and_zero_discount() -> None:
    # d = 0, g = -0.5: f = δ_0 * (1-0.5)/(0+0.5) = 1; T=1, contribution 5, entry cost 3:
    # Net_0 = 2, Recurring_0 = 5, NPV = 2 + 5*1
    opt = {"mode": "build", "initial_share": 0.1, "margin": 0.5, "entry_cost": 3}
    res = solve(scen(1, [forced("A", 2027, [opt], market_size=100)], terminal_growth=-0.5))
    assert res["objective_value"] == approx(2 + 5 * (1 - 0.5) / (0 + 0.5))


# --------------------------------------------------------------------------- CVaR, objectives


def _cvar_case(lam: float, alpha: float) -> dict[str, Any]:
    # scenarios bear/base/bull, p = .25/.5/.25, Δg = -0.1/0/+0.1, T=2, d=0.
    # A (forced 2027): M=100, g=0.1, S0 .1, margin .5, entry 8:
    #   NPV_A,s = 5 + 5*(1.1+Δ) - 8 = 2, 2.5, 3
    # B (optional, only 2027): M=100, g=0, S0 .6, margin 1, entry 118:
    #   NPV_B,s = 60 + 60*(1+Δ) - 118 = -4, 2, 8   (E = 2 > 0)
    scen_list = [
        {"name": "bear", "probability": 0.25, "market_growth_delta": -0.1},
        {"name": "base", "probability": 0.5},
        {"name": "bull", "probability": 0.25, "market_growth_delta": 0.1},
    ]
    a = forced("A", 2027, [{"mode": "build", "initial_share": 0.1, "margin": 0.5, "entry_cost": 8}],
               market_size=100, market_growth=0.1)
    b = {"id": "B", "market_size": 100, "earliest_entry_year": 2027, "latest_entry_year": 2027,
         "options": [{"mode": "build", "initial_share": 0.6, "margin": 1.0, "entry_cost": 118}]}
    return scen(2, [a, b], growth_scenarios=scen_list,
                objective={"kind": "risk_adjusted_npv", "risk_aversion": lam, "cvar_alpha": alpha})


# tail mass 1-α: α=0.6 -> 0.4 = all of bear (0.25) + 0.15 of base (fractional);
#                α=0.9 -> 0.1 inside bear.
E_A, E_AB = 0.25 * 2 + 0.5 * 2.5 + 0.25 * 3, 0.25 * -2 + 0.5 * 4.5 + 0.25 * 11
CVAR_A = {0.6: (0.25 * 2 + 0.15 * 2.5) / 0.4, 0.9: 2.0}
CVAR_AB = {0.6: (0.25 * -2 + 0.15 * 4.5) / 0.4, 0.9: -2.0}


@pytest.mark.parametrize(
    "lam,alpha,enter_b",
    [
        (0.0, 0.6, True),   # 4.5 vs 2.5
        (0.5, 0.6, True),   # .5*4.5+.5*.4375 = 2.46875 vs .5*2.5+.5*2.1875 = 2.34375
        (0.8, 0.6, False),  # .2*4.5+.8*.4375 = 1.25 vs .2*2.5+.8*2.1875 = 2.25
        (0.5, 0.9, False),  # .5*4.5+.5*(-2) = 1.25 vs .5*2.5+.5*2 = 2.25
        (1.0, 0.6, False),  # 0.4375 vs 2.1875
    ],
)
def test_cvar_three_scenarios_fractional_tail(lam: float, alpha: float, enter_b: bool) -> None:
    assert E_A == approx(2.5) and E_AB == approx(4.5)
    assert CVAR_A[0.6] == approx(2.1875) and CVAR_AB[0.6] == approx(0.4375)
    res = solve(_cvar_case(lam, alpha))
    assert res["status"] == "optimal"
    e, cv = (E_AB, CVAR_AB[alpha]) if enter_b else (E_A, CVAR_A[alpha])
    assert (market(res, "B")["entry_year"] == 2027) is enter_b
    assert res["objective_value"] == approx((1 - lam) * e + lam * cv)
    assert res["kpis"]["expected_npv"] == approx(e)
    assert res["kpis"]["cvar"] == approx(cv)
    npv = {"bear": 2 - 4, "base": 2.5 + 2, "bull": 3 + 8} if enter_b else {"bear": 2, "base": 2.5, "bull": 3}
    for k, v in npv.items():
        assert res["kpis"]["npv_by_scenario"][k] == approx(v)


def test_cvar_floor_constraint() -> None:
    # expected_npv objective would enter B (4.5 > 2.5); min_cvar 1 at α=0.6 forbids it
    # (CVaR with B 0.4375 < 1 <= 2.1875 without)
    d = _cvar_case(0.0, 0.6)
    d["objective"] = {"kind": "expected_npv", "cvar_alpha": 0.6, "min_cvar": 1.0}
    res = solve(d)
    assert res["status"] == "optimal"
    assert market(res, "B")["entry_year"] is None
    assert res["objective_value"] == approx(E_A)
    # E[NPV] floor above 2.5 forces B in
    d["objective"] = {"kind": "expected_npv", "min_expected_npv": 3.0}
    res = solve(d)
    assert market(res, "B")["entry_year"] == 2027
    assert res["objective_value"] == approx(E_AB)
    d["objective"] = {"kind": "expected_npv", "min_expected_npv": 4.6}
    assert solve(d)["status"] == "infeasible"


def test_final_year_contribution_objective_ignores_costs() -> None:
    # T=3; two scenarios p=.5/.5 with Δg=-0.1/+0.1 and multipliers 0.5/1.5.
    # A (forced 2027): M=100, g=0.1, S0=0.1, r=0.1, margin 0.5, entry cost 100 (ignored).
    #   year 2029 (t=2): size 100*(1.0)**2 / 100*(1.2)**2, share 0.1*1.05**2 / 0.1*1.15**2
    # growth hiring 2 heads x 0.7 (salary 5 ignored) and growth investment 2 x 1.5 in T-1.
    scen_list = [
        {"name": "lo", "probability": 0.5, "market_growth_delta": -0.1, "share_growth_multiplier": 0.5},
        {"name": "hi", "probability": 0.5, "market_growth_delta": 0.1, "share_growth_multiplier": 1.5},
    ]
    opt = {"mode": "build", "initial_share": 0.1, "share_growth": 0.1, "margin": 0.5, "entry_cost": 100}
    res = solve(scen(3, [forced("A", 2027, [opt], market_size=100, market_growth=0.1, salary_per_head=5,
                                growth_hiring={"max_heads": 2, "contribution_per_head": 0.7},
                                growth_investment={"segments": [{"up_to": 2, "return_rate": 1.5}]})],
                     discount=0.1, growth_scenarios=scen_list, objective={"kind": "final_year_contribution"}))
    assert res["status"] == "optimal"
    lo = 0.5 * 100 * 1.0**2 * 0.1 * 1.05**2
    hi = 0.5 * 100 * 1.2**2 * 0.1 * 1.15**2
    expected = 0.5 * lo + 0.5 * hi + 2 * 0.7 + 2 * 1.5
    assert res["objective_value"] == approx(expected)
    assert res["kpis"]["final_year_contribution"] == approx(expected)
    last = row(res, "A", 2029)
    assert last["growth_hires"] == approx(2)
    assert last["growth_investment"] == approx(2)
    assert last["expected_contribution"] == approx(expected)


# --------------------------------------------------------------------------- 2.3 levers


def test_growth_investment_concave_segments_only_when_active() -> None:
    # segments: widths 1 @1.8, 2 @1.2, 1 @0.5. Profitable: the first two (rate > 1), not the third.
    # A enters 2028 (τ=1): no investment in 2027 (inactive), 3 in 2028: contribution 1.8*1 + 1.2*2.
    seg = {"segments": [{"up_to": 1, "return_rate": 1.8}, {"up_to": 3, "return_rate": 1.2},
                        {"up_to": 4, "return_rate": 0.5}]}
    opt = {"mode": "build", "initial_share": 0, "margin": 0}
    res = solve(scen(2, [forced("A", 2028, [opt], growth_investment=seg)], discount=0.1))
    assert_list(col(res, "A", "growth_investment"), [0, 3])
    assert_list(col(res, "A", "expected_contribution"), [0, 1.8 * 1 + 1.2 * 2])
    assert_list(col(res, "A", "spend"), [0, 3])
    assert res["objective_value"] == approx((1.8 + 2.4 - 3) / 1.1)

    # budget 2 per year: the best 2 units are 1 @1.8 + 1 @1.2 (concave: first segment first)
    res = solve(scen(2, [forced("A", 2028, [opt], growth_investment=seg)], discount=0.1, budget={"limit": 2}))
    assert_list(col(res, "A", "growth_investment"), [0, 2])
    assert_list(col(res, "A", "expected_contribution"), [0, 1.8 + 1.2])
    assert res["objective_value"] == approx((1.8 + 1.2 - 2) / 1.1)


def test_growth_hiring_salary_paid_and_contribution_added() -> None:
    # A enters 2028 (τ=1), 1 required head, salary 0.5; hires up to 3 at 0.8 each (0.8 > 0.5:
    # hire all 3 while active). Year t>=1: heads 4, people 2.0, contribution 5 + 3*0.8.
    # B (salary 1.0 > 0.8): no hires.
    opt = {"mode": "build", "initial_share": 0.1, "margin": 0.5, "headcount": 1}
    hire = {"max_heads": 3, "contribution_per_head": 0.8}
    b_opt = {"mode": "build", "initial_share": 0, "margin": 0}
    markets = [
        forced("A", 2028, [opt], market_size=100, salary_per_head=0.5, growth_hiring=hire),
        forced("B", 2027, [b_opt], salary_per_head=1.0, growth_hiring=hire),
    ]
    res = solve(scen(3, markets, discount=0.1))
    assert_list(col(res, "A", "growth_hires"), [0, 3, 3])
    assert_list(col(res, "A", "required_heads"), [0, 1, 1])
    assert_list(col(res, "A", "heads"), [0, 4, 4])
    assert_list(col(res, "A", "people_cost"), [0, 4 * 0.5, 4 * 0.5])
    assert_list(col(res, "A", "expected_contribution"), [0, 5 + 3 * 0.8, 5 + 3 * 0.8])
    assert_list(col(res, "B", "growth_hires"), [0, 0, 0])
    net = 5 + 2.4 - 2.0
    assert res["objective_value"] == approx(net / 1.1 + net / 1.1**2)

    # headcount cap 3: 1 required + at most 2 hires
    res = solve(scen(3, markets, discount=0.1, headcount={"cap": 3}))
    assert_list(col(res, "A", "growth_hires"), [0, 2, 2])
    net = 5 + 2 * 0.8 - 3 * 0.5
    assert res["objective_value"] == approx(net / 1.1 + net / 1.1**2)


# --------------------------------------------------------------------------- 2.5 previous plan


def _five() -> dict[str, Any]:
    return {"mode": "build", "initial_share": 0.1, "margin": 0.5}  # 0.5*100*0.1 = 5 per year


def test_previous_plan_penalty_and_constant_for_decisions_outside_E_o() -> None:
    # T=2, d=0, P=5. Options worth 5/yr (M=100) unless noted.
    # A: previous (partner, 2027) but partner is banned -> x ≡ 0: P always paid; enters build 2027 (10)
    # B: previously not entered, must_enter 2027 -> P·entered = 5; NPV 10
    # C: previous (build, 2027) = optimum -> no penalty; NPV 10
    # D: 1/yr option; previous (build, 2028): 2027 -> 2-5 = -3, 2028 -> 1, none -> -5: keeps 2028
    # E: previous (acquire, 2027), acquire not listed -> P constant; enters build 2027 (10)
    # F: previous (build, 2030), outside the horizon -> P constant; enters build 2027 (10)
    # G: no previous decision: no penalty either way (enters, 10)
    markets = [
        {"id": "A", "market_size": 100, "compliance": {"banned_modes": ["partner"]},
         "options": [_five(), {**_five(), "mode": "partner"}]},
        forced("B", 2027, [_five()], market_size=100),
        {"id": "C", "market_size": 100, "options": [_five()]},
        {"id": "D", "market_size": 20, "options": [_five()]},
        {"id": "E", "market_size": 100, "options": [_five()]},
        {"id": "F", "market_size": 100, "options": [_five()]},
        {"id": "G", "market_size": 100, "options": [_five()]},
    ]
    prev = {"change_penalty": 5, "decisions": [
        {"market_id": "A", "mode": "Partner", "entry_year": 2027},
        {"market_id": "B", "entered": False},
        {"market_id": "C", "mode": "build", "entry_year": 2027},
        {"market_id": "D", "entered": True, "mode": "build", "entry_year": 2028},
        {"market_id": "E", "mode": "acquire", "entry_year": 2027},
        {"market_id": "F", "mode": "build", "entry_year": 2030},
    ]}
    res = solve(scen(2, markets, previous_plan=prev))
    assert res["status"] == "optimal"
    dec = {m["id"]: (m["mode"], m["entry_year"]) for m in res["markets"]}
    assert dec == {"A": ("build", 2027), "B": ("build", 2027), "C": ("build", 2027),
                   "D": ("build", 2028), "E": ("build", 2027), "F": ("build", 2027),
                   "G": ("build", 2027)}
    npv = 10 + 10 + 10 + 1 + 10 + 10 + 10
    penalty = 5 * 4  # A (constant), B (entered), E (constant), F (constant)
    assert res["kpis"]["expected_npv"] == approx(npv)
    assert res["kpis"]["change_penalty"] == approx(penalty)
    assert res["objective_value"] == approx(npv - penalty)


def test_nothing_can_be_entered_is_optimal_with_objective_zero() -> None:
    # lead time 5 past a 2-year horizon: E_o empty, the empty plan is the (only) optimum
    d = scen(2, [{"id": "A", "market_size": 100, "compliance": {"lead_time_years": 5}, "options": [_five()]}])
    res = solve(d)
    assert res["status"] == "optimal"
    assert res["objective_value"] == approx(0)


def test_previous_plan_constant_only() -> None:
    # a market with no options that was previously entered: nothing can be done, objective = -P
    d = scen(2, [{"id": "A"}], previous_plan={"change_penalty": 7.5, "decisions": [
        {"market_id": "A", "mode": "build", "entry_year": 2027}]})
    res = solve(d)
    assert res["status"] == "optimal"
    assert res["objective_value"] == approx(-7.5)
    assert res["kpis"]["change_penalty"] == approx(7.5)


def test_previous_plan_penalty_with_final_year_objective() -> None:
    # the penalty is subtracted from every objective kind: final-year contribution 5, P = 2
    d = scen(2, [forced("A", 2027, [_five()], market_size=100)],
             previous_plan={"change_penalty": 2, "decisions": [{"market_id": "A", "entered": False}]},
             objective={"kind": "final_year_contribution"})
    assert solve(d)["objective_value"] == approx(5 - 2)


def test_max_average_risk() -> None:
    # A (risk 0.8, NPV 10) and B (risk 0.2, NPV 6), T=2, d=0; max average risk 0.4:
    # {A,B}: avg 0.5 > 0.4; {A}: 0.8; {B}: 0.2 -> enter B only, objective 6
    d = scen(2, [{"id": "A", "market_size": 100, "risk_score": 0.8, "options": [_five()]},
                 {"id": "B", "market_size": 60, "risk_score": 0.2, "options": [_five()]}],
             risk={"max_average_risk": 0.4})
    res = solve(d)
    assert market(res, "A")["entry_year"] is None and market(res, "B")["entry_year"] == 2027
    assert res["objective_value"] == approx(2 * 0.5 * 60 * 0.1)


def test_requires_delays_entry_until_prerequisite_is_active() -> None:
    # A (1/yr) can enter only from 2028; B (5/yr) requires A: active_B,t <= active_A,t.
    # B alone in 2027 is impossible; best: both in 2028 -> 1 + 5 (T=2, d=0)
    d = scen(2, [{"id": "A", "market_size": 20, "earliest_entry_year": 2028, "options": [_five()]},
                 {"id": "B", "market_size": 100, "requires": ["A"], "options": [_five()]}])
    res = solve(d)
    assert market(res, "A")["entry_year"] == 2028 and market(res, "B")["entry_year"] == 2028
    assert res["objective_value"] == approx(1 + 5)


def test_region_budget_share_over_horizon() -> None:
    # T=1. A (EMEA): 10 - 4 entry = 6; B (AM): 5 - 2 = 3. EMEA share <= 0.5 of total spend:
    # {A,B}: 4/6 > .5; {A}: 4/4 > .5; {B}: 0/2 -> B only, objective 3
    d = scen(1, [
        {"id": "A", "region": "EMEA", "market_size": 200, "options": [{**_five(), "entry_cost": 4}]},
        {"id": "B", "region": "AM", "market_size": 100, "options": [{**_five(), "entry_cost": 2}]},
    ], regions=[{"name": "EMEA", "max_budget_share": 0.5}])
    res = solve(d)
    assert market(res, "A")["entry_year"] is None and market(res, "B")["entry_year"] == 2027
    assert res["objective_value"] == approx(5 - 2)
    # share 2/3 admits {A,B}: 4/6 <= 2/3 -> 6 + 3
    d["regions"][0]["max_budget_share"] = 2 / 3
    assert solve(d)["objective_value"] == approx(6 + 3)


# --------------------------------------------------------------------------- commitments


def test_commitment_fixes_mode_and_year() -> None:
    # build would be better (10/yr) but partner (5/yr) 2028 is committed: objective 5 (one year)
    d = scen(2, [{"id": "A", "market_size": 100,
                  "options": [{**_five(), "margin": 1.0}, {**_five(), "mode": "partner"}]}],
             commitments=[{"market_id": "A", "mode": "PARTNER", "entry_year": 2028}])
    res = solve(d)
    assert market(res, "A")["mode"] == "partner" and market(res, "A")["entry_year"] == 2028
    assert res["objective_value"] == approx(5)


# --------------------------------------------------------------------------- payback KPI


def test_payback_year() -> None:
    # net [-6, 4, 4, 4] (contribution 4/yr, entry cost 10): cumulative -6, -2, 2, 6 -> 2029
    opt = {"mode": "build", "initial_share": 0.08, "margin": 0.5, "entry_cost": 10}
    res = solve(scen(4, [forced("A", 2027, [opt], market_size=100)]))
    assert_list(total(res, "expected_net_cash_flow"), [4 - 10, 4, 4, 4])
    assert res["kpis"]["payback_year"] == 2029
    assert res["objective_value"] == approx(-6 + 4 + 4 + 4)


def test_payback_year_none_when_never_negative_or_never_recovers() -> None:
    opt = {"mode": "build", "initial_share": 0.08, "margin": 0.5}
    assert solve(scen(4, [forced("A", 2027, [opt], market_size=100)]))["kpis"]["payback_year"] is None
    opt = {"mode": "build", "initial_share": 0.08, "margin": 0.5, "entry_cost": 30}
    # cumulative -26, -22, -18, -14
    assert solve(scen(4, [forced("A", 2027, [opt], market_size=100)]))["kpis"]["payback_year"] is None


def test_payback_year_after_later_dip() -> None:
    # A: 1 every year; B enters 2028 with cost 4 then contribution 4 in 2029:
    # net [1, -3, 1, 5], cumulative [1, -2, -1, 4] -> first >= 0 after negative: 2030
    a = forced("A", 2027, [{"mode": "build", "cash_flows": {"contribution": [1, 1, 1, 1]}}])
    b = forced("B", 2028, [{"mode": "build", "cash_flows": {"contribution": [0, 0, 4], "cost": [4]}}])
    res = solve(scen(4, [a, b]))
    assert_list(total(res, "expected_net_cash_flow"), [1, -3, 1, 5])
    assert res["kpis"]["payback_year"] == 2030
    assert res["objective_value"] == approx(4)
