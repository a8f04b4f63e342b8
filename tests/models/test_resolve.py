"""A built model is reusable: a changed scenario of the same structure is pushed into it in place
(``AllocationModel.update`` / ``resolve``) and re-solved by the same persistent HiGHS object; the
optimum, the plan and the extracted result equal a fresh build of the changed scenario. A changed
structure is detected and rebuilt."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from lepton_alloc.models import build_model, extract_result
from lepton_alloc.models.generator import generate_scenario
from lepton_alloc.models.loader import load_builtin_example
from lepton_alloc.models.scenario import parse_scenario
from lepton_alloc.models.solve import SolveOutcome, resolve, solve_model

Edit = Callable[[dict[str, Any]], None]


def _scaled(values: Any, factor: float) -> list[float]:
    return [factor * v for v in values]


def _probabilities(d: dict[str, Any]) -> None:
    for g, p in zip(d["growth_scenarios"], (0.55, 0.3, 0.15)):
        g["probability"] = p


def _deltas(d: dict[str, Any]) -> None:
    for g in d["growth_scenarios"]:
        g["market_growth_delta"] = g["market_growth_delta"] - 0.03


EDITS: dict[str, Edit] = {
    "budget_limit": lambda d: d["budget"].update(limit=_scaled(d["budget"]["limit"], 0.6)),
    "headcount_cap": lambda d: d["headcount"].update(cap=_scaled(d["headcount"]["cap"], 0.5)),
    "discount_rate": lambda d: d.update(discount_rate=0.14),
    "probabilities": _probabilities,
    "growth_deltas": _deltas,
    "market_size": lambda d: d["markets"][1].update(market_size=d["markets"][1]["market_size"] * 4.0),
    "salary": lambda d: [m.update(salary_per_head=2.0 * m["salary_per_head"]) for m in d["markets"]],
}


def _base(kind: str) -> dict[str, Any]:
    if kind == "builtin":  # cumulative budget (carry-over), regions, talent caps, a floor
        return load_builtin_example().to_dict()
    # per-year budget, CVaR in the objective
    raw = generate_scenario(8, 4, seed=11, mip_rel_gap=0.0, objective="risk_adjusted_npv", risk_aversion=0.3)
    return parse_scenario(raw).to_dict()


def _edited(raw: dict[str, Any], edit: Edit) -> dict[str, Any]:
    changed = copy.deepcopy(raw)
    edit(changed)
    return changed


def _fresh(raw: dict[str, Any], fast_path: bool) -> tuple[Any, SolveOutcome]:
    am = build_model(parse_scenario(raw))
    return am, solve_model(am, mip_rel_gap=0.0, fast_path=fast_path)


@pytest.mark.parametrize(("kind", "fast_path"), [("builtin", True), ("generated", True), ("generated", False)],
                         ids=["builtin-fast", "generated-fast", "generated-stock"])
def test_changed_data_re_solves_in_place_like_a_fresh_build(kind: str, fast_path: bool) -> None:
    raw = _base(kind)
    am, base = _fresh(raw, fast_path)
    solver = am.solver
    assert base.status == "optimal"
    for name, edit in EDITS.items():
        changed = _edited(raw, edit)
        scenario = parse_scenario(changed)
        solved, again = resolve(am, scenario, mip_rel_gap=0.0, fast_path=fast_path)
        assert solved is am and am.solver is solver, name  # updated in place, same persistent solver
        fresh_model, fresh = _fresh(changed, fast_path)
        assert again.status == fresh.status == "optimal", name
        assert again.objective_value == pytest.approx(fresh.objective_value, rel=1e-6), name
        assert again.objective_value != pytest.approx(base.objective_value, rel=1e-6), f"{name} changed nothing"

        result, expected = extract_result(am, again), extract_result(fresh_model, fresh)
        assert result.decisions == expected.decisions, name
        assert result.scenario_sha256 == scenario.sha256() != parse_scenario(raw).sha256()
        limits = scenario.budget.limit
        assert [y.budget_limit for y in result.years] == list(limits), name
        assert [y.headcount_cap for y in result.years] == list(scenario.headcount.cap), name
        assert result.kpis is not None and expected.kpis is not None
        assert result.kpis.expected_npv == pytest.approx(expected.kpis.expected_npv, rel=1e-6), name


def test_a_limit_change_touches_no_row_body_and_a_rate_change_only_what_reads_it() -> None:
    raw = _base("builtin")
    am = build_model(parse_scenario(raw))
    bodies = {name: am.linear_rows[con][1] for name, con in am.constraints.items()}
    objective = am.model.objective.expr

    assert am.update(parse_scenario(_edited(raw, EDITS["budget_limit"])))
    assert all(am.linear_rows[con][1] is bodies[name] for name, con in am.constraints.items())
    assert am.model.objective.expr is objective
    assert am.model.limit["budget_cumulative[2027]"].value == pytest.approx(0.6 * raw["budget"]["limit"][0])

    assert am.update(parse_scenario(_edited(raw, EDITS["discount_rate"])))
    changed = {name for name, con in am.constraints.items() if am.linear_rows[con][1] is not bodies[name]}
    # the rows with discounted (NPV) coefficients: the E[NPV] floor and the CVaR tail rows
    assert changed == {"min_expected_npv"} | {f"cvar_tail[{g['name']}]" for g in raw["growth_scenarios"]}
    assert am.model.objective.expr is not objective
    assert am.model.limit["budget_cumulative[2027]"].value == pytest.approx(raw["budget"]["limit"][0])  # back


def test_a_param_change_re_solves_in_place() -> None:
    raw = _base("generated")
    am, base = _fresh(raw, fast_path=True)
    solver = am.solver
    limits = _scaled(raw["budget"]["limit"], 0.6)
    for t, year in enumerate(parse_scenario(raw).years):
        am.model.limit[f"budget[{year}]"] = limits[t]
    again = solve_model(am, mip_rel_gap=0.0)
    assert am.solver is solver
    _, fresh = _fresh(_edited(raw, EDITS["budget_limit"]), fast_path=True)
    assert again.objective_value == pytest.approx(fresh.objective_value, rel=1e-6)
    assert again.objective_value < base.objective_value - 1e-6


def _add_market(d: dict[str, Any]) -> None:
    market = copy.deepcopy(d["markets"][1])
    market.update(id="NEW", name="New market", requires=[])
    d["markets"].append(market)


def _narrow_entry_window(d: dict[str, Any]) -> None:
    d["markets"][1]["latest_entry_year"] = d["start_year"] + 1


def _drop_a_growth_scenario(d: dict[str, Any]) -> None:
    d["growth_scenarios"] = [{**d["growth_scenarios"][1], "probability": 1.0}]


def _drop_cvar(d: dict[str, Any]) -> None:
    d["objective"].update(kind="expected_npv", risk_aversion=0.0)


def _drop_headcount_cap(d: dict[str, Any]) -> None:
    d["headcount"]["cap"] = None


@pytest.mark.parametrize("edit", [_add_market, _narrow_entry_window, _drop_a_growth_scenario, _drop_cvar, _drop_headcount_cap],
                         ids=lambda f: f.__name__.strip("_"))
def test_a_structural_change_is_detected_and_rebuilt(edit: Edit) -> None:
    raw = _base("generated")
    am, _ = _fresh(raw, fast_path=True)
    before = am.scenario.sha256()
    changed = _edited(raw, edit)
    scenario = parse_scenario(changed)

    assert am.update(scenario) is False
    assert am.scenario.sha256() == before  # left untouched

    solved, again = resolve(am, scenario, mip_rel_gap=0.0)
    assert solved is not am
    _, fresh = _fresh(changed, fast_path=True)
    assert again.status == fresh.status
    assert again.objective_value == pytest.approx(fresh.objective_value, rel=1e-6)
    assert extract_result(solved, again).scenario_sha256 == scenario.sha256()


def test_resolve_without_a_model_builds_one() -> None:
    scenario = parse_scenario(_base("generated"))
    am, out = resolve(None, scenario, mip_rel_gap=0.0)
    assert am.scenario is scenario and out.status == "optimal"


@pytest.mark.parametrize("kind", ["budget_limit", "discount_rate"])
def test_a_model_not_yet_made_in_pyomo_is_updated_by_swapping_its_formulation(kind: str) -> None:
    """build_model(pyomo=False) then update(): no Pyomo model is made, the rows read the new
    scenario (limits included), and the solve after it equals a fresh build's."""
    from lepton_alloc.models.rowset import RowSet

    raw = _base("generated")
    changed = _edited(raw, EDITS[kind])
    am = build_model(parse_scenario(raw), pyomo=False)
    assert am.update(parse_scenario(changed)) and not am.materialised
    fresh, expected = _fresh(changed, True)
    assert RowSet.of_model(am).ub.tolist() == RowSet.of_model(fresh).ub.tolist()
    out = solve_model(am, mip_rel_gap=0.0)
    assert out.objective_value == pytest.approx(expected.objective_value, rel=1e-9)
