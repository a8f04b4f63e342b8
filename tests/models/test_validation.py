"""Scenario validation (docs/model.md section 1): every invalid kind names its exact field path(s),
all violations come in one error, and the valid edge cases of the page are accepted."""

from __future__ import annotations

import copy
import json
from typing import Any
from collections.abc import Callable

import pytest

from lepton_alloc.models import ScenarioError, load_scenario_text, parse_scenario, solve_scenario


def base() -> dict[str, Any]:
    """A small valid scenario every case below breaks in one place."""
    return {
        "name": "validation",
        "start_year": 2027,
        "horizon_years": 3,
        "discount_rate": 0.1,
        "markets": [
            {"id": "A", "region": "EMEA", "market_size": 100, "market_growth": 0.05,
             "options": [{"mode": "build", "initial_share": 0.1, "margin": 0.5}]},
            {"id": "B", "market_size": 50,
             "options": [{"mode": "partner", "initial_share": 0.1, "margin": 0.5},
                         {"mode": "acquire", "initial_share": 0.2, "margin": 0.3, "headcount": 2}]},
        ],
    }


def test_base_is_valid() -> None:
    s = parse_scenario(base())
    assert [m.id for m in s.markets] == ["A", "B"]


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def f(d: dict[str, Any]) -> None:
        node = d
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return f


def _del(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def f(d: dict[str, Any]) -> None:
        node = d
        for k in path[:-1]:
            node = node[k]
        del node[path[-1]]
    return f


def _top(**kw: Any) -> Callable[[dict[str, Any]], None]:
    def f(d: dict[str, Any]) -> None:
        d.update(kw)
    return f


def _opt(k: int, **kw: Any) -> Callable[[dict[str, Any]], None]:
    """Update markets[0].options[k] (kw=None deletes a key)."""
    def f(d: dict[str, Any]) -> None:
        o = d["markets"][0]["options"][k] if k < len(d["markets"][0]["options"]) else None
        if o is None:
            o = {}
            d["markets"][0]["options"].append(o)
        for key, v in kw.items():
            if v is None:
                o.pop(key, None)
            else:
                o[key] = v
    return f


def _mkt(i: int, **kw: Any) -> Callable[[dict[str, Any]], None]:
    def f(d: dict[str, Any]) -> None:
        d["markets"][i].update(kw)
    return f


def _all(*fs: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def f(d: dict[str, Any]) -> None:
        for g in fs:
            g(d)
    return f


TWO_SCEN = [{"name": "bear", "probability": 0.5, "share_growth_multiplier": 2.0, "market_growth_delta": -0.5},
            {"name": "base", "probability": 0.5}]
SEGS = lambda *pairs: {"segments": [{"up_to": u, "return_rate": r} for u, r in pairs]}  # noqa: E731
REGION = {"name": "EMEA"}

# (case id, mutation, exact set of violation field paths)
CASES: list[tuple[str, Callable[[dict[str, Any]], None], set[str]]] = [
    # -- top level
    ("missing horizon", _del(["horizon_years"]), {"horizon_years"}),
    ("horizon null", _top(horizon_years=None), {"horizon_years"}),
    ("horizon 0", _top(horizon_years=0), {"horizon_years"}),
    ("horizon 51", _top(horizon_years=51), {"horizon_years"}),
    ("horizon 2.5", _top(horizon_years=2.5), {"horizon_years"}),
    ("horizon string", _top(horizon_years="3"), {"horizon_years"}),
    ("horizon bool", _top(horizon_years=True), {"horizon_years"}),
    ("start_year string", _top(start_year="2027"), {"start_year"}),
    ("discount 1.0", _top(discount_rate=1.0), {"discount_rate"}),
    ("discount negative", _top(discount_rate=-0.01), {"discount_rate"}),
    ("discount NaN", _top(discount_rate=float("nan")), {"discount_rate"}),
    ("discount inf", _top(discount_rate=float("inf")), {"discount_rate"}),
    ("terminal_growth == discount", _top(terminal_growth=0.1), {"terminal_growth"}),
    ("terminal_growth > discount", _top(terminal_growth=0.2), {"terminal_growth"}),
    ("terminal_growth <= -1", _top(terminal_growth=-1.0), {"terminal_growth"}),
    ("name not text", _top(name=12), {"name"}),
    ("unknown top field", _top(colour="red"), {"colour"}),
    ("markets missing", _del(["markets"]), {"markets"}),
    ("markets not a list", _top(markets={"id": "A"}), {"markets"}),
    # -- markets
    ("duplicate market id", _mkt(1, id="A"), {"markets[1].id"}),
    ("id with a space", _mkt(0, id="D E"), {"markets[0].id"}),
    ("id with a slash", _mkt(0, id="a/b"), {"markets[0].id"}),
    ("id empty", _mkt(0, id=""), {"markets[0].id"}),
    ("id 65 chars", _mkt(0, id="x" * 65), {"markets[0].id"}),
    ("id missing", _del(["markets", 0, "id"]), {"markets[0].id"}),
    ("id number", _mkt(0, id=7), {"markets[0].id"}),
    ("negative market_size", _mkt(0, market_size=-1), {"markets[0].market_size"}),
    ("market_size string", _mkt(0, market_size="100"), {"markets[0].market_size"}),
    ("market_size inf", _mkt(0, market_size=float("inf")), {"markets[0].market_size"}),
    ("market_size bool", _mkt(0, market_size=False), {"markets[0].market_size"}),
    ("market_growth -1", _mkt(0, market_growth=-1.0), {"markets[0].market_growth"}),
    ("market_growth -1.5", _mkt(0, market_growth=-1.5), {"markets[0].market_growth"}),
    ("1+g+Δg <= 0 in a scenario",
     _all(_mkt(0, market_growth=-0.5), _top(growth_scenarios=copy.deepcopy(TWO_SCEN))),
     {"markets[0].market_growth"}),
    ("risk 1.5", _mkt(0, risk_score=1.5), {"markets[0].risk_score"}),
    ("risk negative", _mkt(0, risk_score=-0.1), {"markets[0].risk_score"}),
    ("salary negative", _mkt(0, salary_per_head=-1), {"markets[0].salary_per_head"}),
    ("must_enter string", _mkt(0, must_enter="yes"), {"markets[0].must_enter"}),
    ("must_enter 1", _mkt(0, must_enter=1), {"markets[0].must_enter"}),
    ("unknown market field", _mkt(0, sise=3), {"markets[0].sise"}),
    ("compliance lead negative", _mkt(0, compliance={"lead_time_years": -1}),
     {"markets[0].compliance.lead_time_years"}),
    ("compliance lead 1.5", _mkt(0, compliance={"lead_time_years": 1.5}),
     {"markets[0].compliance.lead_time_years"}),
    ("compliance cost negative", _mkt(0, compliance={"cost": -2}), {"markets[0].compliance.cost"}),
    ("banned_modes unknown mode", _mkt(0, compliance={"banned_modes": ["build", "franchise"]}),
     {"markets[0].compliance.banned_modes[1]"}),
    ("compliance unknown field", _mkt(0, compliance={"lead": 1}), {"markets[0].compliance.lead"}),
    ("earliest > latest", _mkt(0, earliest_entry_year=2029, latest_entry_year=2028),
     {"markets[0].earliest_entry_year"}),
    ("earliest past last year, latest omitted", _mkt(0, earliest_entry_year=2030),
     {"markets[0].earliest_entry_year"}),
    ("latest 2028.5", _mkt(0, latest_entry_year=2028.5), {"markets[0].latest_entry_year"}),
    ("requires unknown market", _mkt(0, requires=["ZZ"]), {"markets[0].requires[0]"}),
    ("requires itself", _mkt(0, requires=["A"]), {"markets[0].requires[0]"}),
    ("requires not a list", _mkt(0, requires="B"), {"markets[0].requires"}),
    ("segments up_to not increasing", _mkt(0, growth_investment=SEGS((2, 1.5), (2, 1.2))),
     {"markets[0].growth_investment.segments[1].up_to"}),
    ("segments up_to decreasing", _mkt(0, growth_investment=SEGS((2, 1.5), (1, 1.2))),
     {"markets[0].growth_investment.segments[1].up_to"}),
    ("segments up_to 0", _mkt(0, growth_investment=SEGS((0, 1.5))),
     {"markets[0].growth_investment.segments[0].up_to"}),
    ("segments return_rate increasing", _mkt(0, growth_investment=SEGS((1, 1.2), (2, 1.5))),
     {"markets[0].growth_investment.segments[1].return_rate"}),
    ("segments return_rate negative", _mkt(0, growth_investment=SEGS((1, -0.1))),
     {"markets[0].growth_investment.segments[0].return_rate"}),
    ("segments empty", _mkt(0, growth_investment={"segments": []}), {"markets[0].growth_investment.segments"}),
    ("growth_hiring max_heads negative", _mkt(0, growth_hiring={"max_heads": -1, "contribution_per_head": 1}),
     {"markets[0].growth_hiring.max_heads"}),
    ("growth_hiring max_heads 1.5", _mkt(0, growth_hiring={"max_heads": 1.5, "contribution_per_head": 1}),
     {"markets[0].growth_hiring.max_heads"}),
    ("growth_hiring contribution NaN",
     _mkt(0, growth_hiring={"max_heads": 2, "contribution_per_head": float("nan")}),
     {"markets[0].growth_hiring.contribution_per_head"}),
    # -- options
    ("margin 2", _opt(0, margin=2), {"markets[0].options[0].margin"}),
    ("margin negative", _opt(0, margin=-0.1), {"markets[0].options[0].margin"}),
    ("margin bool", _opt(0, margin=True), {"markets[0].options[0].margin"}),
    ("margin missing", _opt(0, margin=None), {"markets[0].options[0].margin"}),
    ("initial_share missing", _opt(0, initial_share=None), {"markets[0].options[0].initial_share"}),
    ("initial_share 1.2", _opt(0, initial_share=1.2), {"markets[0].options[0].initial_share"}),
    ("max_share 0", _opt(0, max_share=0), {"markets[0].options[0].max_share"}),
    ("max_share 1.1", _opt(0, max_share=1.1), {"markets[0].options[0].max_share"}),
    ("share_growth -1", _opt(0, share_growth=-1), {"markets[0].options[0].share_growth"}),
    ("share_growth ok in base, 1+r*m <= 0 in a scenario",
     _all(_opt(0, share_growth=-0.5), _top(growth_scenarios=[
         {"name": "bear", "probability": 0.5, "share_growth_multiplier": 2.0}, {"name": "base", "probability": 0.5}])),
     {"markets[0].options[0].share_growth"}),
    ("headcount 2.5", _opt(0, headcount=2.5), {"markets[0].options[0].headcount"}),
    ("headcount negative", _opt(0, headcount=-1), {"markets[0].options[0].headcount"}),
    ("prehire 1.5", _opt(0, prehire_years=1.5), {"markets[0].options[0].prehire_years"}),
    ("entry_cost negative", _opt(0, entry_cost=-1), {"markets[0].options[0].entry_cost"}),
    ("annual_cost string", _opt(0, annual_cost="3"), {"markets[0].options[0].annual_cost"}),
    ("cash_flows with initial_share",
     _opt(0, margin=None, cash_flows={"contribution": [1, 2]}), {"markets[0].options[0].initial_share"}),
    ("cash_flows with initial_share and margin",
     _opt(0, cash_flows={"contribution": [1, 2]}),
     {"markets[0].options[0].initial_share", "markets[0].options[0].margin"}),
    ("cash_flows with headcount",
     _opt(0, initial_share=None, margin=None, headcount=3, cash_flows={"contribution": [1]}),
     {"markets[0].options[0].headcount"}),
    ("negative cash_flows.cost",
     _opt(0, initial_share=None, margin=None, cash_flows={"contribution": [1, 2], "cost": [1, -0.5]}),
     {"markets[0].options[0].cash_flows.cost[1]"}),
    ("cash_flows.headcount 1.5",
     _opt(0, initial_share=None, margin=None, cash_flows={"headcount": [1.5]}),
     {"markets[0].options[0].cash_flows.headcount[0]"}),
    ("cash_flows.contribution inf",
     _opt(0, initial_share=None, margin=None, cash_flows={"contribution": [1, float("inf")]}),
     {"markets[0].options[0].cash_flows.contribution[1]"}),
    ("cash_flows unknown field",
     _opt(0, initial_share=None, margin=None, cash_flows={"revenue": [1]}),
     {"markets[0].options[0].cash_flows.revenue"}),
    ("two options with the same mode (case-insensitive)",
     _mkt(1, options=[{"mode": "partner", "initial_share": 0.1, "margin": 0.5},
                      {"mode": "PARTNER", "initial_share": 0.1, "margin": 0.5}]),
     {"markets[1].options[1].mode"}),
    ("unknown mode", _opt(0, mode="franchise"), {"markets[0].options[0].mode"}),
    ("mode missing", _opt(0, mode=None), {"markets[0].options[0].mode"}),
    ("unknown option field", _opt(0, marginn=0.3), {"markets[0].options[0].marginn"}),
    # -- budget / headcount
    ("budget.limit list of wrong length", _top(budget={"limit": [1, 2]}), {"budget.limit"}),
    ("budget.limit negative number", _top(budget={"limit": -5}), {"budget.limit"}),
    ("budget.limit negative entry", _top(budget={"limit": [5, -1, 5]}), {"budget.limit[1]"}),
    ("budget.limit string entry", _top(budget={"limit": [5, "x", 5]}), {"budget.limit[1]"}),
    ("budget.carry_over string", _top(budget={"limit": 5, "carry_over": "true"}), {"budget.carry_over"}),
    ("headcount.cap wrong length", _top(headcount={"cap": [1, 2, 3, 4]}), {"headcount.cap"}),
    ("max_net_hires negative", _top(headcount={"max_net_hires": -1}), {"headcount.max_net_hires"}),
    ("headcount.initial 2.5", _top(headcount={"initial": 2.5}), {"headcount.initial"}),
    ("headcount.initial negative", _top(headcount={"initial": -1}), {"headcount.initial"}),
    # -- growth scenarios
    ("probabilities not summing to 1", _top(growth_scenarios=[
        {"name": "a", "probability": 0.5}, {"name": "b", "probability": 0.4}]), {"growth_scenarios"}),
    ("probability 0", _top(growth_scenarios=[
        {"name": "a", "probability": 0.0}, {"name": "b", "probability": 1.0}]), {"growth_scenarios[0].probability"}),
    ("probability missing", _top(growth_scenarios=[{"name": "a"}]), {"growth_scenarios[0].probability"}),
    ("duplicate scenario names", _top(growth_scenarios=[
        {"name": "a", "probability": 0.5}, {"name": "a", "probability": 0.5}]), {"growth_scenarios[1].name"}),
    ("multiplier 0", _top(growth_scenarios=[{"name": "a", "probability": 1, "share_growth_multiplier": 0}]),
     {"growth_scenarios[0].share_growth_multiplier"}),
    ("multiplier negative", _top(growth_scenarios=[{"name": "a", "probability": 1, "share_growth_multiplier": -1}]),
     {"growth_scenarios[0].share_growth_multiplier"}),
    ("growth_scenarios empty list", _top(growth_scenarios=[]), {"growth_scenarios"}),
    # -- regions
    ("region name no market carries", _top(regions=[{"name": "APAC"}]), {"regions[0].name"}),
    ("duplicate region name", _top(regions=[REGION, REGION]), {"regions[1].name"}),
    ("region min_markets > max_markets", _top(regions=[{"name": "EMEA", "min_markets": 2, "max_markets": 1}]),
     {"regions[0].min_markets"}),
    ("region min_markets negative", _top(regions=[{"name": "EMEA", "min_markets": -1}]),
     {"regions[0].min_markets"}),
    ("max_budget_share 1.5", _top(regions=[{"name": "EMEA", "max_budget_share": 1.5}]),
     {"regions[0].max_budget_share"}),
    ("talent_cap wrong length", _top(regions=[{"name": "EMEA", "talent_cap": [1]}]), {"regions[0].talent_cap"}),
    # -- risk
    ("max_average_risk 1.2", _top(risk={"max_average_risk": 1.2}), {"risk.max_average_risk"}),
    # -- commitments
    ("commitment with unlisted mode", _top(commitments=[{"market_id": "A", "mode": "acquire", "entry_year": 2027}]),
     {"commitments[0].mode"}),
    ("commitment with banned mode", _all(
        _mkt(0, compliance={"banned_modes": ["BUILD"]}),
        _top(commitments=[{"market_id": "A", "mode": "build", "entry_year": 2027}])),
     {"commitments[0].mode"}),
    ("commitment with unknown mode", _top(commitments=[{"market_id": "A", "mode": "lease", "entry_year": 2027}]),
     {"commitments[0].mode"}),
    ("commitment year past the horizon",
     _top(commitments=[{"market_id": "A", "mode": "build", "entry_year": 2030}]), {"commitments[0].entry_year"}),
    ("commitment year before the lead time", _all(
        _mkt(0, compliance={"lead_time_years": 1}),
        _top(commitments=[{"market_id": "A", "mode": "build", "entry_year": 2027}])),
     {"commitments[0].entry_year"}),
    ("commitment year after latest", _all(
        _mkt(0, latest_entry_year=2027),
        _top(commitments=[{"market_id": "A", "mode": "build", "entry_year": 2028}])),
     {"commitments[0].entry_year"}),
    ("commitment twice for one market", _top(commitments=[
        {"market_id": "A", "mode": "build", "entry_year": 2027},
        {"market_id": "A", "mode": "build", "entry_year": 2028}]), {"commitments[1].market_id"}),
    ("commitment unknown market", _top(commitments=[{"market_id": "ZZ", "mode": "build", "entry_year": 2027}]),
     {"commitments[0].market_id"}),
    # -- previous plan
    ("previous_plan unknown market", _top(previous_plan={"change_penalty": 1, "decisions": [
        {"market_id": "ZZ", "entered": False}]}), {"previous_plan.decisions[0].market_id"}),
    ("previous_plan market twice", _top(previous_plan={"change_penalty": 1, "decisions": [
        {"market_id": "A", "entered": False}, {"market_id": "A", "entered": False}]}),
     {"previous_plan.decisions[1].market_id"}),
    ("previous_plan negative penalty", _top(previous_plan={"change_penalty": -1}), {"previous_plan.change_penalty"}),
    ("previous_plan entered without year", _top(previous_plan={"change_penalty": 1, "decisions": [
        {"market_id": "A", "entered": True, "mode": "build"}]}), {"previous_plan.decisions[0].entry_year"}),
    ("previous_plan unknown mode", _top(previous_plan={"change_penalty": 1, "decisions": [
        {"market_id": "A", "mode": "lease", "entry_year": 2027}]}), {"previous_plan.decisions[0].mode"}),
    # -- objective / solver
    ("objective kind unknown", _top(objective={"kind": "max_revenue"}), {"objective.kind"}),
    ("risk_aversion 2", _top(objective={"kind": "risk_adjusted_npv", "risk_aversion": 2}), {"objective.risk_aversion"}),
    ("risk_aversion negative", _top(objective={"risk_aversion": -0.1}), {"objective.risk_aversion"}),
    ("cvar_alpha 1", _top(objective={"cvar_alpha": 1}), {"objective.cvar_alpha"}),
    ("cvar_alpha 0", _top(objective={"cvar_alpha": 0}), {"objective.cvar_alpha"}),
    ("min_expected_npv NaN", _top(objective={"min_expected_npv": float("nan")}), {"objective.min_expected_npv"}),
    ("time_limit 0", _top(solver={"time_limit_seconds": 0}), {"solver.time_limit_seconds"}),
    ("mip_rel_gap -1", _top(solver={"mip_rel_gap": -1}), {"solver.mip_rel_gap"}),
    ("solver unknown field", _top(solver={"threads": 4}), {"solver.threads"}),
]


def _errors(d: Any) -> ScenarioError:
    with pytest.raises(ScenarioError) as ei:
        parse_scenario(d)
    return ei.value


@pytest.mark.parametrize("mutate,fields", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_kind_names_exact_fields(mutate: Callable[[dict[str, Any]], None], fields: set[str]) -> None:
    d = base()
    mutate(d)
    err = _errors(d)
    assert {v.field for v in err.violations} == fields, err.violations
    assert all(v.description for v in err.violations)
    text = str(err)
    assert "Traceback" not in text and all("Traceback" not in v.description for v in err.violations)
    for f in fields:
        assert f in text


def test_at_least_thirty_distinct_kinds() -> None:
    assert len({c[0] for c in CASES}) == len(CASES) >= 30


def test_requires_cycle() -> None:
    d = base()
    d["markets"][0]["requires"] = ["B"]
    d["markets"][1]["requires"] = ["A"]
    err = _errors(d)
    assert len(err.violations) == 1
    assert err.violations[0].field in {"markets[0].requires", "markets[1].requires"}
    assert "cycle" in err.violations[0].description


def test_requires_longer_cycle() -> None:
    d = base()
    d["markets"].append({"id": "C", "requires": ["A"]})
    d["markets"][0]["requires"] = ["B"]
    d["markets"][1]["requires"] = ["C"]
    err = _errors(d)
    assert [v.field for v in err.violations][0] in {f"markets[{k}].requires" for k in range(3)}


def test_one_error_carries_all_violations() -> None:
    d = base()
    d["horizon_years"] = 0
    d["discount_rate"] = 1.5
    d["markets"][0]["market_size"] = -3
    d["markets"][0]["options"][0]["margin"] = 2
    d["markets"][1]["options"][1]["headcount"] = 2.5
    d["markets"][1]["id"] = "A"
    d["growth_scenarios"] = [{"name": "x", "probability": 0.3}]
    d["objective"] = {"kind": "nope", "cvar_alpha": 1}
    d["solver"] = {"time_limit_seconds": -1}
    d["colour"] = "red"
    err = _errors(d)
    fields = [v.field for v in err.violations]
    expected = {
        "horizon_years", "discount_rate", "markets[0].market_size", "markets[0].options[0].margin",
        "markets[1].options[1].headcount", "markets[1].id", "growth_scenarios", "objective.kind",
        "objective.cvar_alpha", "solver.time_limit_seconds", "colour",
    }
    assert set(fields) == expected
    assert "Traceback" not in str(err)


def test_top_level_list_instead_of_mapping() -> None:
    err = _errors([base()])
    assert [v.field for v in err.violations] == ["<root>"]


@pytest.mark.parametrize("raw", [None, "text", 3])
def test_top_level_not_a_mapping(raw: Any) -> None:
    assert [v.field for v in _errors(raw).violations] == ["<root>"]


def test_yaml_syntax_error() -> None:
    with pytest.raises(ScenarioError) as ei:
        load_scenario_text("horizon_years: 3\nmarkets: [ {id: A\n")
    assert [v.field for v in ei.value.violations] == ["<file>"]
    assert "Traceback" not in str(ei.value)
    assert "line" in ei.value.violations[0].description


def test_json_syntax_error() -> None:
    with pytest.raises(ScenarioError) as ei:
        load_scenario_text('{"horizon_years": 3,', "json")
    assert [v.field for v in ei.value.violations] == ["<file>"]


def test_yaml_top_level_list() -> None:
    with pytest.raises(ScenarioError) as ei:
        load_scenario_text("- horizon_years: 3\n")
    assert [v.field for v in ei.value.violations] == ["<root>"]


def test_json_nan_literal() -> None:
    with pytest.raises(ScenarioError) as ei:
        load_scenario_text('{"horizon_years": 3, "discount_rate": NaN, "markets": []}', "json")
    assert [v.field for v in ei.value.violations] == ["discount_rate"]


def test_yaml_inf_value() -> None:
    with pytest.raises(ScenarioError) as ei:
        load_scenario_text("horizon_years: 3\nmarkets:\n  - id: A\n    market_size: .inf\n")
    assert [v.field for v in ei.value.violations] == ["markets[0].market_size"]


# --------------------------------------------------------------------------- known validation bugs


def test_id_with_trailing_newline_rejected() -> None:
    d = base()
    d["markets"][0]["id"] = "DE\n"
    assert {v.field for v in _errors(d).violations} == {"markets[0].id"}


def test_huge_integer_literal_is_a_field_error() -> None:
    raw = json.loads('{"horizon_years": 3, "markets": [{"id": "A", "market_size": 1' + "0" * 400 + "}]}")
    assert {v.field for v in _errors(raw).violations} == {"markets[0].market_size"}


def test_large_negative_delta_with_large_growth_is_valid() -> None:
    d = base()
    d["markets"][0]["market_growth"] = 1.5
    d["markets"][1]["market_growth"] = 1.5
    d["growth_scenarios"] = [{"name": "crash", "probability": 1.0, "market_growth_delta": -2.2}]
    parse_scenario(d)


def test_mip_rel_gap_above_one_is_valid() -> None:
    d = base()
    d["solver"] = {"mip_rel_gap": 2.0}
    parse_scenario(d)


def test_yaml_norway_id_is_text() -> None:
    s = load_scenario_text("horizon_years: 3\nmarkets:\n  - id: NO\n    requires: [SE]\n  - id: SE\n")
    assert s.markets[0].id == "NO"


# --------------------------------------------------------------------------- valid edge cases


def test_modes_and_objective_kind_case_insensitive() -> None:
    d = base()
    d["markets"][0]["options"][0]["mode"] = "Acquire"
    d["markets"][1]["options"][0]["mode"] = "  PARTNER "
    d["markets"][1]["options"][1]["mode"] = "aCqUiRe"
    d["markets"][1]["compliance"] = {"banned_modes": ["Build", "BUILD"]}
    d["objective"] = {"kind": "EXPECTED_NPV"}
    d["commitments"] = [{"market_id": "A", "mode": "ACQUIRE", "entry_year": 2027}]
    d["previous_plan"] = {"change_penalty": 1, "decisions": [{"market_id": "B", "mode": "Partner", "entry_year": 2028}]}
    s = parse_scenario(d)
    assert s.markets[0].options[0].mode == "acquire"
    assert [o.mode for o in s.markets[1].options] == ["partner", "acquire"]
    assert s.markets[1].compliance.banned_modes == ("build",)
    assert s.objective.kind == "expected_npv"
    assert s.commitments[0].mode == "acquire"
    assert s.previous_plan is not None and s.previous_plan.decisions[0].mode == "partner"
    d["objective"] = {"kind": "Risk_Adjusted_NPV", "risk_aversion": 0.5}
    assert parse_scenario(d).objective.kind == "risk_adjusted_npv"


def test_ids_compare_exactly() -> None:
    d = base()
    d["markets"][1]["id"] = "a"  # differs from "A" only by case: distinct
    d["markets"][1]["requires"] = ["A"]
    assert [m.id for m in parse_scenario(d).markets] == ["A", "a"]
    d["markets"][1]["requires"] = ["b"]
    assert {v.field for v in _errors(d).violations} == {"markets[1].requires[0]"}


def test_integers_written_as_whole_floats() -> None:
    d = base()
    d["horizon_years"] = 3.0
    d["start_year"] = 2027.0
    d["markets"][1]["options"][1]["headcount"] = 25.0
    d["markets"][1]["options"][1]["prehire_years"] = 1.0
    d["markets"][0]["earliest_entry_year"] = 2027.0
    d["markets"][0]["compliance"] = {"lead_time_years": 1.0}
    d["headcount"] = {"initial": 4.0}
    d["regions"] = [{"name": "EMEA", "min_markets": 1.0, "max_markets": 2.0}]
    s = parse_scenario(d)
    ref = base()
    ref["markets"][1]["options"][1]["headcount"] = 25
    ref["markets"][1]["options"][1]["prehire_years"] = 1
    ref["markets"][0]["earliest_entry_year"] = 2027
    ref["markets"][0]["compliance"] = {"lead_time_years": 1}
    ref["headcount"] = {"initial": 4}
    ref["regions"] = [{"name": "EMEA", "min_markets": 1, "max_markets": 2}]
    assert s == parse_scenario(ref)
    assert s.horizon_years == 3 and type(s.horizon_years) is int
    assert type(s.markets[1].options[1].headcount) is int and s.markets[1].options[1].headcount == 25


def test_latest_past_horizon_is_clipped() -> None:
    d = base()
    d["markets"][0]["latest_entry_year"] = 2100
    d["markets"][0]["must_enter"] = True
    d["commitments"] = [{"market_id": "A", "mode": "build", "entry_year": 2029}]  # the last year
    s = parse_scenario(d)
    assert s.markets[0].latest_entry_year == 2100
    res = solve_scenario(s, mip_rel_gap=0.0)
    assert res.status == "optimal"
    a = next(m for m in res.markets if m.id == "A")
    assert a.entry_year == 2029
    # a commitment past the clipped window is invalid
    d["commitments"] = [{"market_id": "A", "mode": "build", "entry_year": 2030}]
    assert {v.field for v in _errors(d).violations} == {"commitments[0].entry_year"}


def test_earliest_before_start_year_allowed() -> None:
    d = base()
    d["markets"][0]["earliest_entry_year"] = 2020
    d["markets"][0]["latest_entry_year"] = 2027
    d["commitments"] = [{"market_id": "A", "mode": "build", "entry_year": 2027}]
    s = parse_scenario(d)
    assert s.markets[0].earliest_entry_year == 2020
    # entry before start_year is outside E_o
    d["commitments"] = [{"market_id": "A", "mode": "build", "entry_year": 2026}]
    assert {v.field for v in _errors(d).violations} == {"commitments[0].entry_year"}


def test_empty_entry_window_from_lead_time_is_valid_and_must_enter_is_infeasible() -> None:
    d = base()
    d["markets"][0]["compliance"] = {"lead_time_years": 5, "cost": 1}
    s = parse_scenario(d)
    assert s.markets[0].compliance.lead_time_years == 5
    res = solve_scenario(s, mip_rel_gap=0.0)
    assert res.status == "optimal"
    assert next(m for m in res.markets if m.id == "A").entered is False
    d["markets"][0]["must_enter"] = True
    res = solve_scenario(d, mip_rel_gap=0.0)
    assert res.status == "infeasible"
    assert res.objective_value is None


def test_empty_window_from_earliest_past_horizon_with_later_latest_is_valid() -> None:
    d = base()
    d["markets"][0]["earliest_entry_year"] = 2035
    d["markets"][0]["latest_entry_year"] = 2040
    parse_scenario(d)


def test_previous_plan_outside_window_is_valid() -> None:
    # a previous (mode, year) outside E_o is not invalid: its P is a constant (docs/model.md 2.5)
    d = base()
    d["previous_plan"] = {"change_penalty": 2, "decisions": [
        {"market_id": "A", "mode": "acquire", "entry_year": 2040},
        {"market_id": "B", "entered": False}]}
    s = parse_scenario(d)
    assert s.previous_plan is not None and len(s.previous_plan.decisions) == 2


def test_yaml_exponent_without_dot_is_a_number() -> None:
    text = (
        "horizon_years: 3\n"
        "discount_rate: 5e-2\n"
        "markets:\n"
        "  - id: A\n"
        "    market_size: 1E3\n"
        "    options: [{mode: build, initial_share: 1e-1, margin: 0.5}]\n"
        "solver: {mip_rel_gap: 1e-4, time_limit_seconds: 6e1}\n"
    )
    s = load_scenario_text(text)
    assert s.discount_rate == 0.05
    assert s.markets[0].market_size == 1000.0
    assert s.markets[0].options[0].initial_share == 0.1
    assert s.solver.mip_rel_gap == 1e-4
    assert s.solver.time_limit_seconds == 60.0


def test_per_year_fields_number_or_list_of_exactly_T() -> None:
    d = base()
    d["budget"] = {"limit": 50}
    d["headcount"] = {"cap": [10, 20, 30], "max_net_hires": 5.5}
    d["regions"] = [{"name": "EMEA", "talent_cap": 7}]
    s = parse_scenario(d)
    assert s.budget.limit == (50.0, 50.0, 50.0)
    assert s.headcount.cap == (10.0, 20.0, 30.0)
    assert s.headcount.max_net_hires == (5.5, 5.5, 5.5)
    assert s.regions[0].talent_cap == (7.0, 7.0, 7.0)
    d["budget"] = {"limit": [50, 60]}
    assert {v.field for v in _errors(d).violations} == {"budget.limit"}


def test_defaults_filled() -> None:
    s = parse_scenario({"horizon_years": 2, "markets": []})
    assert s.start_year == 0 and s.discount_rate == 0.0 and s.terminal_growth is None
    assert [(g.name, g.probability) for g in s.growth_scenarios] == [("base", 1.0)]
    assert s.objective.kind == "expected_npv" and s.objective.risk_aversion == 0.0
    assert s.objective.cvar_alpha == 0.9
    assert s.solver.time_limit_seconds == 60.0 and s.solver.mip_rel_gap == 1e-4
    assert s.budget.limit is None and s.headcount.cap is None and s.headcount.initial == 0


def test_zero_gap_and_boundary_values_valid() -> None:
    d = base()
    d["solver"] = {"mip_rel_gap": 0}
    d["discount_rate"] = 0
    d["terminal_growth"] = -0.5
    d["markets"][0]["risk_score"] = 1
    d["markets"][0]["options"][0].update(initial_share=1, margin=1, max_share=1)
    d["markets"][1]["options"][0].update(initial_share=0, margin=0)
    d["objective"] = {"kind": "risk_adjusted_npv", "risk_aversion": 1, "cvar_alpha": 0.999}
    d["growth_scenarios"] = [{"name": "a", "probability": 0.3333333}, {"name": "b", "probability": 0.6666667}]
    parse_scenario(d)


def test_probabilities_sum_within_tolerance() -> None:
    d = base()
    d["growth_scenarios"] = [{"name": "a", "probability": 0.5}, {"name": "b", "probability": 0.5 + 2e-6}]
    assert {v.field for v in _errors(d).violations} == {"growth_scenarios"}


def test_no_cascading_violations_from_an_invalid_market() -> None:
    d = base()
    d["markets"][0]["market_size"] = -1
    d["markets"][1]["options"][0]["margin"] = 2
    d["regions"] = [{"name": "EMEA"}]
    d["commitments"] = [{"market_id": "A", "mode": "build", "entry_year": 2027},
                        {"market_id": "B", "mode": "partner", "entry_year": 2027}]
    d["previous_plan"] = {"change_penalty": 1, "decisions": [{"market_id": "A", "entered": False}]}
    assert {v.field for v in _errors(d).violations} == {"markets[0].market_size", "markets[1].options[0].margin"}


def test_latest_before_start_with_default_earliest_is_invalid() -> None:
    # docs/model.md 1: earliest <= latest; an omitted earliest counts as the first year (start_year),
    # as an omitted latest counts as the last. A latest before the horizon is most likely a typo.
    raw = {"start_year": 2027, "horizon_years": 3, "markets": [
        {"id": "A", "latest_entry_year": 2026, "options": [{"mode": "build", "cash_flows": {"contribution": [5]}}]}]}
    with pytest.raises(ScenarioError) as info:
        parse_scenario(raw)
    assert [v.field for v in info.value.violations] == ["markets[0].latest_entry_year"]
    raw["markets"][0]["earliest_entry_year"] = 2020  # explicit earliest before the horizon: allowed
    assert parse_scenario(raw).markets[0].latest_entry_year == 2026


def test_oversized_scenario_is_refused_before_any_array_is_built() -> None:
    # 12 000 markets x 3 options x 50 entry years x 50 years x 2 scenarios = 180 M cells
    market = {"options": [{"mode": m, "cash_flows": {"contribution": [1]}} for m in ("acquire", "partner", "build")]}
    raw = {"horizon_years": 50, "markets": [{"id": f"M{i}", **market} for i in range(12_000)],
           "growth_scenarios": [{"name": "a", "probability": 0.5}, {"name": "b", "probability": 0.5}]}
    with pytest.raises(ScenarioError) as info:
        parse_scenario(raw)
    assert [v.field for v in info.value.violations] == ["markets"]
    assert "too large" in info.value.violations[0].description


def test_messages_read_as_written() -> None:
    """Exact messages for the common kinds (a finance user reads them; no template left over)."""
    d = base()
    d["markets"][0]["market_size"] = "100"
    d["markets"][0]["options"][0]["margin"] = 2
    d["markets"][1]["options"][1]["headcount"] = 2.5
    d["discount_rate"] = -0.5
    d["markets"][0]["options"][0]["mode"] = "franchise"
    d["markets"][1]["name"] = "{kind} {value}"  # braces in user text are kept as they are
    d["solver"] = {"time_limt_seconds": 5}
    msgs = {v.field: v.description for v in _errors(d).violations}
    assert msgs == {
        "markets[0].market_size": "must be a number, got text '100'",
        "markets[0].options[0].margin": "must be between 0 and 1, got 2",
        "markets[0].options[0].mode": "must be one of acquire, partner, build, got 'franchise'",
        "markets[1].options[1].headcount": "must be a whole number, got 2.5",
        "discount_rate": "must be >= 0 and < 1, got -0.5",
        "solver.time_limt_seconds": "unknown field",
    }
    d = base()
    del d["horizon_years"]
    assert {v.field: v.description for v in _errors(d).violations} == {"horizon_years": "is required"}
