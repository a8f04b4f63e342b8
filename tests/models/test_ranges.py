"""Numbers within reason (issue 11; docs/model.md §1 "Plausible ranges").

Every number of a scenario has a finite range: a value just inside passes, a value just outside,
±1e308, ±inf and NaN fail with a violation on the field's path that names the range. The fields
and their ranges are found by walking the schema (each field type carries its ``Range``), so a
number added to the schema without a range, or without a place in this file, fails here. Text
fields refuse terminal control characters. A solve whose objective is not a finite number, driven
through the real build / solve / extract path with a scenario built past validation, is never
reported optimal.
"""

from __future__ import annotations

import json
import logging
import math
import re
import types
import typing
import warnings
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from lepton_alloc.models import ScenarioError, SolveStatus, build_model, extract_result, parse_scenario, solve_model
from lepton_alloc.models import solve_scenario
from lepton_alloc.models.scenario import (
    GROWN_MARKET_MAX, GROWTH_MAX, MONEY_MAX, PEOPLE_MAX, TERMINAL_SPREAD, Range, Scenario, json_schema,
)

ROOT = Path(__file__).resolve().parents[2]
Template = tuple[str, ...]  # a field's place in the schema; "*" stands for a list index


# ----------------------------------------------------------------------------- the schema, walked


def _walk(tp: Any, path: Template, numbers: dict[Template, Range], unbounded: list[Template],
          texts: list[Template]) -> None:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(tp)
        rng = next((m for m in meta if isinstance(m, Range)), None)
        if rng is not None:
            numbers[path] = rng
        else:
            _walk(base, path, numbers, unbounded, texts)
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is not type(None):
                _walk(arg, path, numbers, unbounded, texts)
    elif origin is tuple:
        _walk(typing.get_args(tp)[0], (*path, "*"), numbers, unbounded, texts)
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, info in tp.model_fields.items():
            rng = next((m for m in info.metadata if isinstance(m, Range)), None)
            if rng is not None:  # pydantic keeps a field's own Annotated metadata on the FieldInfo
                numbers[(*path, name)] = rng
            else:
                _walk(info.annotation, (*path, name), numbers, unbounded, texts)
    elif tp in (int, float):
        unbounded.append(path)
    elif tp is str:
        texts.append(path)
    else:
        assert tp is bool or (isinstance(tp, type) and issubclass(tp, Enum)), (path, tp)


NUMBERS: dict[Template, Range] = {}
UNBOUNDED: list[Template] = []
TEXTS: list[Template] = []
_walk(Scenario, (), NUMBERS, UNBOUNDED, TEXTS)


def test_every_number_of_the_schema_has_a_range() -> None:
    assert UNBOUNDED == []
    assert len(NUMBERS) >= 45  # 48 when written
    for rng in NUMBERS.values():
        assert math.isfinite(rng.lo) and math.isfinite(rng.hi) and rng.lo < rng.hi
        assert -1e15 <= rng.lo and rng.hi <= 1e15  # nothing near the float range: sums cannot overflow


def test_the_json_schema_carries_the_ranges() -> None:
    schema = json_schema()
    market = schema["$defs"]["Market"]["properties"]
    assert market["market_size"]["maximum"] == MONEY_MAX and market["market_size"]["minimum"] == 0
    assert market["market_growth"]["exclusiveMinimum"] == -1 and market["market_growth"]["maximum"] == GROWTH_MAX
    assert schema["$defs"]["Option"]["properties"]["headcount"]["maximum"] == PEOPLE_MAX
    assert (schema["properties"]["start_year"]["minimum"], schema["properties"]["start_year"]["maximum"]) == (-9999, 9999)


# ----------------------------------------------------------------------------- a scenario with every field


def full() -> dict[str, Any]:
    """A valid scenario that sets every section, so every field has a place to put a value."""
    return {
        "name": "ranges", "currency": "EUR", "money_unit": "millions", "start_year": 2027, "horizon_years": 3,
        "discount_rate": 0.1, "terminal_growth": 0.02,
        "markets": [
            {"id": "A", "name": "Alpha", "region": "EMEA", "market_size": 100, "market_growth": 0.05,
             "risk_score": 0.3, "salary_per_head": 0.1, "compliance": {"lead_time_years": 0, "cost": 1},
             "growth_investment": {"segments": [{"up_to": 5, "return_rate": 1.5}]},
             "growth_hiring": {"max_heads": 3, "contribution_per_head": 0.2},
             "options": [
                 {"mode": "build", "initial_share": 0.1, "share_growth": 0.1, "max_share": 0.5, "margin": 0.3,
                  "entry_cost": 2, "annual_cost": 0.5, "headcount": 2, "prehire_years": 1},
                 {"mode": "partner", "cash_flows": {"contribution": [1, 2], "cost": [0.5, 0.5], "headcount": [1, 1]}}]},
            {"id": "B", "market_size": 50, "requires": ["A"],
             "options": [{"mode": "partner", "initial_share": 0.1, "margin": 0.5}]},
        ],
        "budget": {"limit": 20}, "headcount": {"cap": 50, "max_net_hires": 20, "initial": 1},
        "regions": [{"name": "EMEA", "min_markets": 0, "max_markets": 2, "max_budget_share": 0.9, "talent_cap": 30}],
        "growth_scenarios": [
            {"name": "low", "probability": 0.5, "market_growth_delta": 0.0, "share_growth_multiplier": 0.5},
            {"name": "high", "probability": 0.5, "market_growth_delta": 0.01, "share_growth_multiplier": 1.0}],
        "risk": {"max_average_risk": 0.5},
        "commitments": [{"market_id": "B", "mode": "partner", "entry_year": 2027}],
        "previous_plan": {"change_penalty": 1, "decisions": [{"market_id": "A", "mode": "build", "entry_year": 2028}]},
        "objective": {"kind": "risk_adjusted_npv", "risk_aversion": 0.2, "cvar_alpha": 0.9,
                      "min_expected_npv": -100, "min_cvar": -200},
        "solver": {"time_limit_seconds": 10, "mip_rel_gap": 1e-4},
    }


def test_full_scenario_is_valid() -> None:
    parse_scenario(full())


def _concrete(t: Template) -> list[str | int]:
    """The template's place in full(): list entries at index 0; cash flows on the second option,
    prerequisites on the second market."""
    out: list[str | int] = []
    for k, part in enumerate(t):
        if part != "*":
            out.append(part)
        elif (t[k - 1] == "options" and "cash_flows" in t) or (t[k - 1] == "markets" and "requires" in t):
            out.append(1)
        else:
            out.append(0)
    return out


def _path(parts: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(parts))


def _put(d: dict[str, Any], parts: list[str | int], value: Any) -> None:
    node: Any = d
    for part in parts[:-1]:
        node = node[part]
    last = parts[-1]
    if isinstance(last, int) and not isinstance(node, list):  # a per-year limit given as one number: a list of T
        node = [node] * d["horizon_years"]
        parent: Any = d
        for part in parts[:-2]:
            parent = parent[part]
        parent[parts[-2]] = node
    node[last] = value


# What else a value just inside its range needs to stay valid under the rules across fields.
def _window_latest(d: dict[str, Any], v: Any) -> None:
    d["markets"][0]["latest_entry_year"] = max(v, 2029)  # earliest <= latest


def _window_earliest(d: dict[str, Any], v: Any) -> None:
    d["markets"][0]["earliest_entry_year"] = min(v, 2027)  # an explicit earliest may precede start_year


def _commit_in_first_year(d: dict[str, Any], v: Any) -> None:
    d["commitments"][0]["entry_year"] = v  # the commitment stays inside the (moved) horizon


def _start_at(d: dict[str, Any], v: Any) -> None:
    d["start_year"] = v


def _terminal_below(d: dict[str, Any], v: Any) -> None:
    d["terminal_growth"] = v - 0.5  # terminal_growth <= discount_rate - TERMINAL_SPREAD


def _probabilities_sum_to_one(d: dict[str, Any], v: Any) -> None:
    if v >= 1:
        del d["growth_scenarios"][1:]
    else:
        d["growth_scenarios"][1]["probability"] = 1 - v


def _no_region_max(d: dict[str, Any], v: Any) -> None:
    del d["regions"][0]["max_markets"]  # min_markets <= max_markets


def _fastest_growth(d: dict[str, Any], v: Any) -> None:
    for m in d["markets"]:  # 1 + market_growth + market_growth_delta > 0 at the lowest delta
        m["market_growth"] = GROWTH_MAX


PREPARE: dict[str, Callable[[dict[str, Any], Any], None]] = {
    "markets[0].earliest_entry_year": _window_latest,
    "markets[0].latest_entry_year": _window_earliest,
    "commitments[0].entry_year": _start_at,
    "start_year": _commit_in_first_year,
    "discount_rate": _terminal_below,
    "growth_scenarios[0].probability": _probabilities_sum_to_one,
    "regions[0].min_markets": _no_region_max,
    "growth_scenarios[0].market_growth_delta": _fastest_growth,
}
# Ends no valid scenario reaches, because a rule across fields is stricter there (each tested below):
# terminal_growth < discount_rate - 0.001 < 1, and 1 + market_growth + market_growth_delta > 0 at -3.
STRICTER_ACROSS = {("terminal_growth", "hi"), ("growth_scenarios[0].market_growth_delta", "lo")}

FIELDS = sorted((_path(_concrete(t)), t) for t in NUMBERS)


def test_every_bounded_field_has_a_place_in_the_full_scenario() -> None:
    d = full()
    for path, t in FIELDS:
        node: Any = d
        for part in _concrete(t)[:-1]:
            node = node[part]  # a KeyError or IndexError here: full() lacks the field's section
        assert isinstance(node, (dict, list, int, float)), path
    assert set(PREPARE) <= {p for p, _ in FIELDS}
    assert {p for p, _ in STRICTER_ACROSS} <= {p for p, _ in FIELDS}


def _inside(rng: Range) -> list[tuple[str, float]]:
    lo = math.nextafter(rng.lo, math.inf) if rng.lo_open else rng.lo
    hi = math.nextafter(rng.hi, -math.inf) if rng.hi_open else rng.hi
    if rng.integer:
        lo, hi = int(rng.lo) + (1 if rng.lo_open else 0), int(rng.hi) - (1 if rng.hi_open else 0)
    return [("lo", lo), ("hi", hi)]


def _outside(rng: Range) -> list[float]:
    if rng.integer:
        lo, hi = int(rng.lo) - (0 if rng.lo_open else 1), int(rng.hi) + (0 if rng.hi_open else 1)
    else:
        lo = rng.lo if rng.lo_open else math.nextafter(rng.lo, -math.inf)
        hi = rng.hi if rng.hi_open else math.nextafter(rng.hi, math.inf)
    return [lo, hi, 1e308, -1e308]


def _violations(d: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(d)
    return {v.field: v.description for v in info.value.violations}


@pytest.mark.parametrize("path, template", FIELDS, ids=[p for p, _ in FIELDS])
def test_a_value_just_inside_the_range_passes(path: str, template: Template) -> None:
    rng = NUMBERS[template]
    for end, value in _inside(rng):
        if (path, end) in STRICTER_ACROSS:
            continue
        d = full()
        if path in PREPARE:
            PREPARE[path](d, value)
        _put(d, _concrete(template), value)
        try:
            parse_scenario(d)
        except ScenarioError as exc:
            pytest.fail(f"{path} = {value!r} ({end} end of {rng.words()}) refused: {exc}")


@pytest.mark.parametrize("path, template", FIELDS, ids=[p for p, _ in FIELDS])
def test_a_value_outside_the_range_fails_naming_the_field_and_the_range(path: str, template: Template) -> None:
    rng = NUMBERS[template]
    for value in _outside(rng):
        d = full()
        _put(d, _concrete(template), value)
        found = _violations(d)
        assert path in found, (value, found)
        assert f"must be {rng.words()}, got " in found[path], (value, found[path])
    for value in (math.inf, -math.inf, math.nan):
        d = full()
        _put(d, _concrete(template), value)
        found = _violations(d)
        assert path in found, (value, found)
        assert found[path].startswith(f"must be a finite number {rng.words()}"), found[path]


PER_YEAR = sorted({_path(_concrete(t[:-1])): NUMBERS[t] for t in NUMBERS
                   if t[-1] == "*" and t[-2] in ("limit", "cap", "max_net_hires", "talent_cap")}.items())


def test_per_year_limits_are_all_found() -> None:
    assert [p for p, _ in PER_YEAR] == ["budget.limit", "headcount.cap", "headcount.max_net_hires", "regions[0].talent_cap"]


@pytest.mark.parametrize("path, rng", PER_YEAR, ids=[p for p, _ in PER_YEAR])
def test_a_per_year_limit_written_as_one_number_has_the_same_range(path: str, rng: Range) -> None:
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in re.split(r"\.|\[|\]\.?", path) if p]
    for _, value in _inside(rng):
        d = full()
        _put(d, parts, value)
        parse_scenario(d)
    for value in [*_outside(rng), math.inf, math.nan]:
        d = full()
        _put(d, parts, value)
        assert rng.words() in _violations(d)[path]


def test_the_reported_overflows_are_refused() -> None:
    """The issue's reproductions: 1e308 in a money field and in change_penalty."""
    d = full()
    d["markets"][0]["market_size"] = 1e308
    d["previous_plan"]["change_penalty"] = 1e308
    d["markets"][0]["options"][0]["entry_cost"] = 1e308
    d["budget"]["limit"] = 1e308
    assert _violations(d) == {
        "markets[0].market_size": "must be between 0 and 1e+12, got 1e+308",
        "previous_plan.change_penalty": "must be between 0 and 1e+12, got 1e+308",
        "markets[0].options[0].entry_cost": "must be between 0 and 1e+12, got 1e+308",
        "budget.limit": "must be between 0 and 1e+12, got 1e+308",
    }


def test_an_integer_too_large_for_a_float_names_the_range() -> None:
    raw = json.loads('{"horizon_years": 3, "markets": [{"id": "A", "market_size": 1' + "0" * 400 + "}]}")
    assert _violations(raw) == {"markets[0].market_size": "must be a finite number between 0 and 1e+12"}


# ----------------------------------------------------------------------------- rules across fields


def test_terminal_growth_stays_a_spread_below_the_discount_rate() -> None:
    d = full()
    d["terminal_growth"] = 0.1 - TERMINAL_SPREAD
    parse_scenario(d)
    d["terminal_growth"] = math.nextafter(0.1 - TERMINAL_SPREAD, 1.0)
    found = _violations(d)
    assert list(found) == ["terminal_growth"] and "discount_rate - 0.001 (0.099)" in found["terminal_growth"]


def test_the_lowest_growth_delta_needs_the_fastest_market_growth() -> None:
    d = full()
    _fastest_growth(d, None)
    d["growth_scenarios"][0]["market_growth_delta"] = math.nextafter(-(GROWTH_MAX + 1), 0.0)
    parse_scenario(d)
    d["growth_scenarios"][0]["market_growth_delta"] = -(GROWTH_MAX + 1)
    assert set(_violations(d)) == {"markets[0].market_growth", "markets[1].market_growth"}


def test_a_market_may_not_grow_past_the_grown_size_limit() -> None:
    d = full()
    d["horizon_years"] = 50
    d["growth_scenarios"][1]["market_growth_delta"] = 0.0
    m = d["markets"][0]
    m["market_growth"] = 1.0
    m["market_size"] = GROWN_MARKET_MAX / 2.0**49  # exactly the limit in 2076
    parse_scenario(d)
    m["market_size"] = math.nextafter(GROWN_MARKET_MAX, math.inf) / 2.0**49
    found = _violations(d)
    assert list(found) == ["markets[0].market_growth"]
    assert "by 2076" in found["markets[0].market_growth"] and "at most 1e+14" in found["markets[0].market_growth"]
    m["market_size"] = MONEY_MAX  # and 1e12 growing 200 % a year for 49 years, the overflow that reached HiGHS
    m["market_growth"] = GROWTH_MAX
    assert "markets[0].market_growth" in _violations(d)


def test_every_generated_scenario_size_stays_valid() -> None:
    from lepton_alloc.models.generator import generate_scenario

    for markets, years, seed in ((50, 50, 0), (200, 10, 1), (30, 20, 7)):
        parse_scenario(generate_scenario(markets, years, seed))


# ----------------------------------------------------------------------------- text


CONTROLS = ["\x00", "\x07", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\x9b"]
TEXT_PATHS = sorted(_path(_concrete(t)) for t in TEXTS)


def test_every_text_field_is_found() -> None:
    assert TEXT_PATHS == sorted([
        "name", "currency", "markets[0].id", "markets[0].name", "markets[0].region", "markets[1].requires[0]",
        "regions[0].name", "growth_scenarios[0].name", "commitments[0].market_id",
        "previous_plan.decisions[0].market_id"])


@pytest.mark.parametrize("path", TEXT_PATHS)
def test_a_control_character_in_text_is_refused_naming_the_field(path: str) -> None:
    parts = [int(p) if p.isdigit() else p for p in re.split(r"\.|\[|\]\.?", path) if p]
    for ch in CONTROLS:
        d = full()
        node: Any = d
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = f"A{ch}B"
        found = _violations(d)
        assert path in found, (repr(ch), found)
        if path not in ("currency", "markets[0].id"):  # patterns of their own refuse them first
            assert "control characters" in found[path] and repr(ch)[1:-1] in found[path], found[path]
        assert not any(c in found[path] for c in CONTROLS), "the message shows the character escaped"


def test_ordinary_text_is_kept() -> None:
    d = full()
    d["name"] = "Expansion 2027 – Société Générale, Zürich (日本) 50 %"
    d["markets"][1]["name"] = "Ünïcödé & <b>tags</b> 'quotes' \"double\""
    sc = parse_scenario(d)
    assert sc.name == d["name"] and sc.markets[1].name == d["markets"][1]["name"]


def test_a_control_character_in_an_unknown_key_is_shown_escaped_in_the_path() -> None:
    d = full()
    d["markets"][0]["\x1b[31mcolour"] = 1
    found = _violations(d)
    assert found == {"markets[0].\\x1b[31mcolour": "unknown field"}


def test_an_invalid_id_is_reported_once_not_again_as_the_default_name() -> None:
    d = full()
    d["markets"][1]["id"] = "B\x1b"
    assert set(_violations(d)) == {"markets[1].id"}


# ----------------------------------------------------------------------------- a non-finite objective


def _small() -> Scenario:
    return parse_scenario({
        "name": "overflow", "start_year": 2027, "horizon_years": 3, "discount_rate": 0.1,
        "markets": [
            {"id": "A", "market_size": 100, "market_growth": 0.05,
             "options": [{"mode": "build", "initial_share": 0.1, "margin": 0.5}]},
            {"id": "B", "market_size": 50,
             "options": [{"mode": "partner", "initial_share": 0.1, "margin": 0.5},
                         {"mode": "acquire", "initial_share": 0.2, "margin": 0.3, "headcount": 2}]}],
        "previous_plan": {"change_penalty": 1, "decisions": [{"market_id": "A", "mode": "build", "entry_year": 2027}]},
    })


def _market(sc: Scenario, i: int, **changes: Any) -> Scenario:
    """``sc`` with market ``i`` changed past validation (pydantic's model_copy does not validate)."""
    markets = list(sc.markets)
    markets[i] = markets[i].model_copy(update=changes)
    return sc.model_copy(update={"markets": tuple(markets)})


def _past_validation() -> dict[str, Scenario]:
    sc = _small()
    assert sc.previous_plan is not None
    return {
        # salary x heads overflows to inf, inf - inf is nan: the objective is nan
        "salary_per_head 1e308": _market(sc, 1, salary_per_head=1e308),
        # the bug report: HiGHS's own objective is inf, the plan recomputes to a finite but wrong number
        "change_penalty 1e308": sc.model_copy(update={
            "previous_plan": sc.previous_plan.model_copy(update={"change_penalty": 1e308})}),
        "market_size 1e308 growing": _market(sc, 0, market_size=1e308, market_growth=1.0),
    }


@pytest.mark.parametrize("name", list(_past_validation()))
def test_a_non_finite_objective_is_never_reported_optimal(name: str, caplog: pytest.LogCaptureFixture) -> None:
    bad = _past_validation()[name]
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow warnings: the point of the test
        am = build_model(bad)  # the real path: columns, Pyomo model, HiGHS, the head start
        out = solve_model(am, time_limit=10)
        result = extract_result(am, out, explain_seconds=0.0)
    assert out.status == SolveStatus.NO_SOLUTION and result.status == SolveStatus.NO_SOLUTION
    assert out.objective_value is None and out.values is None and out.best_bound is None and out.gap is None
    assert result.objective_value is None and result.kpis is None and not any(m.entered for m in result.markets)
    # refused before the search (a coefficient overflowed) or after it (the plan's objective did)
    assert result.message.startswith(("no usable plan; numerical trouble: the plan's objective is ",
                                      "no usable plan; numerical trouble: the objective is not a finite number ("))
    assert "not a finite number" in result.message
    assert "numerical trouble" in caplog.text
    json.dumps(result.to_dict(), allow_nan=False)  # what the CLI prints and the server stores: strict JSON


def test_the_whole_solve_path_refuses_it_too() -> None:
    """solve_scenario (the worker's entry point) takes a Scenario as it is."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = solve_scenario(_past_validation()["salary_per_head 1e308"], time_limit=10)
    assert result.status == "no_solution" and result.objective_value is None


def test_the_same_scenario_within_its_ranges_is_solved() -> None:
    sc = _small()
    result = solve_scenario(_market(sc, 1, salary_per_head=MONEY_MAX), time_limit=10)
    assert result.status == SolveStatus.OPTIMAL and result.objective_value is not None
    assert math.isfinite(result.objective_value)


def _everything_at_its_limit() -> dict[str, Any]:
    m, p = MONEY_MAX, PEOPLE_MAX
    option = {"mode": "build", "initial_share": 1.0, "share_growth": GROWTH_MAX, "max_share": 1.0, "margin": 1.0,
              "entry_cost": m, "annual_cost": m, "headcount": p, "prehire_years": 50}
    return {
        "name": "limits", "start_year": 9999 - 49, "horizon_years": 50, "discount_rate": 0.0, "terminal_growth": -0.001,
        "markets": [
            {"id": "A", "region": "R", "market_size": GROWN_MARKET_MAX / (1 + GROWTH_MAX + 1) ** 49,
             "market_growth": GROWTH_MAX, "salary_per_head": m, "compliance": {"lead_time_years": 0, "cost": m},
             "growth_investment": {"segments": [{"up_to": m, "return_rate": 100}]},
             "growth_hiring": {"max_heads": p, "contribution_per_head": m},
             "options": [option, {**option, "mode": "acquire", "entry_cost": 0, "annual_cost": 0, "headcount": 0},
                         {"mode": "partner", "cash_flows": {"contribution": [m] * 50, "cost": [m] * 50,
                                                            "headcount": [p] * 50}}]},
            {"id": "B", "market_size": m, "market_growth": -0.999, "must_enter": True,
             "options": [{**option, "share_growth": -0.099, "entry_cost": 0, "annual_cost": 0, "headcount": 0}]},
        ],
        "growth_scenarios": [{"name": "boom", "probability": 0.5, "market_growth_delta": 1.0, "share_growth_multiplier": 10},
                             {"name": "bust", "probability": 0.5, "market_growth_delta": -0.0005,
                              "share_growth_multiplier": 0.001}],
        "budget": {"limit": m}, "headcount": {"cap": p, "max_net_hires": p, "initial": p},
        "regions": [{"name": "R", "min_markets": 0, "max_markets": 20_000, "max_budget_share": 1, "talent_cap": p}],
        "previous_plan": {"change_penalty": m, "decisions": [{"market_id": "A", "mode": "build", "entry_year": 9999}]},
        "objective": {"kind": "risk_adjusted_npv", "risk_aversion": 1, "cvar_alpha": 0.999999,
                      "min_expected_npv": -1e15, "min_cvar": -1e15},
        "solver": {"time_limit_seconds": 10, "mip_rel_gap": 10},
    }


@pytest.mark.parametrize("kind", ["risk_adjusted_npv", "expected_npv"])
def test_a_scenario_at_its_limits_gets_an_answer_never_an_overflow(kind: str) -> None:
    """Valid, at the edge of every range at once: an answer (whatever HiGHS makes of the magnitudes),
    no exception, and no plan without a finite objective."""
    raw = _everything_at_its_limit()
    raw["objective"]["kind"] = kind
    sc = parse_scenario(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow anywhere on the way
        result = solve_scenario(sc, time_limit=10)
    if result.status in ("optimal", "feasible"):
        assert result.objective_value is not None and math.isfinite(result.objective_value)
        assert result.kpis is not None and math.isfinite(result.kpis.expected_npv)
    else:
        assert result.objective_value is None
    json.dumps(result.to_dict(), allow_nan=False)


# ----------------------------------------------------------------------------- the documentation


def test_the_ranges_are_documented() -> None:
    text = (ROOT / "docs" / "model.md").read_text(encoding="utf-8")
    section = text.split("### Plausible ranges", 1)[1].split("\n## ", 1)[0]
    assert "Validation enforces the ranges" in section
    for template in NUMBERS:
        leaf = template[-1] if template[-1] != "*" else template[-2]
        assert f"{leaf}`" in section or f"{leaf}[]`" in section, leaf
    for words in ("1e12", "1e15", "1e14", "10 000 000", "−9999 … 9999", "604 800"):
        assert words in section, words
    assert "../shared" not in text
