"""Scenario files: JSON and YAML read alike, canonical round trips, stable SHA-256."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from lepton_alloc.models import (
    Scenario,
    ScenarioError,
    load_scenario_file,
    load_scenario_text,
    parse_scenario,
)
from lepton_alloc.models.loader import dump_scenario

RICH: dict[str, Any] = {
    "name": "global-expansion-2027",
    "start_year": 2027,
    "horizon_years": 4,
    "discount_rate": 0.1,
    "terminal_growth": 0.02,
    "markets": [
        {
            "id": "DE", "name": "Germany", "region": "EMEA", "market_size": 1200, "market_growth": 0.04,
            "risk_score": 0.2,
            "compliance": {"lead_time_years": 1, "cost": 2.5, "banned_modes": ["acquire"]},
            "earliest_entry_year": 2027, "latest_entry_year": 2036, "must_enter": False,
            "requires": ["US"], "salary_per_head": 0.12,
            "growth_investment": {"segments": [{"up_to": 1.0, "return_rate": 1.8},
                                               {"up_to": 3.0, "return_rate": 1.2}]},
            "growth_hiring": {"max_heads": 20, "contribution_per_head": 0.3},
            "options": [
                {"mode": "acquire", "initial_share": 0.08, "share_growth": 0.05, "max_share": 0.5,
                 "margin": 0.25, "entry_cost": 40, "annual_cost": 3, "headcount": 25, "prehire_years": 0},
                {"mode": "partner", "cash_flows": {"contribution": [1.0, 2.0, 3.0], "cost": [0.5, 0.2],
                                                   "headcount": [2, 2, 2]}},
            ],
        },
        {"id": "US", "region": "AMER", "market_size": 3000, "options": [
            {"mode": "build", "initial_share": 0.01, "margin": 0.3, "entry_cost": 10, "headcount": 4,
             "prehire_years": 1}]},
        {"id": "JP", "market_size": 800, "options": [{"mode": "partner", "initial_share": 0.02, "margin": 0.2}]},
        {"id": "BR", "market_size": 300, "options": [{"mode": "build", "initial_share": 0.05, "margin": 0.1}]},
    ],
    "budget": {"limit": [60, 60, 70, 70], "carry_over": True},
    "headcount": {"cap": 200, "max_net_hires": [120, 120, 100, 100], "initial": 3},
    "regions": [{"name": "EMEA", "min_markets": 1, "max_markets": 6, "max_budget_share": 0.5, "talent_cap": 300}],
    "growth_scenarios": [
        {"name": "bear", "probability": 0.25, "market_growth_delta": -0.03, "share_growth_multiplier": 0.6},
        {"name": "base", "probability": 0.5},
        {"name": "bull", "probability": 0.25, "market_growth_delta": 0.02, "share_growth_multiplier": 1.3},
    ],
    "risk": {"max_average_risk": 0.5},
    "commitments": [{"market_id": "US", "mode": "build", "entry_year": 2027}],
    "previous_plan": {"change_penalty": 5.0, "decisions": [
        {"market_id": "JP", "mode": "partner", "entry_year": 2029}, {"market_id": "BR", "entered": False}]},
    "objective": {"kind": "risk_adjusted_npv", "risk_aversion": 0.3, "cvar_alpha": 0.9,
                  "min_expected_npv": -100, "min_cvar": None},
    "solver": {"time_limit_seconds": 60, "mip_rel_gap": 1.0e-4},
}

RICH_YAML = """
name: global-expansion-2027
start_year: 2027
horizon_years: 4
discount_rate: 0.10
terminal_growth: 0.02
markets:
  - id: DE
    name: Germany
    region: EMEA
    market_size: 1200
    market_growth: 0.04
    risk_score: 0.2
    compliance: {lead_time_years: 1, cost: 2.5, banned_modes: [Acquire]}
    earliest_entry_year: 2027
    latest_entry_year: 2036
    must_enter: false
    requires: [US]
    salary_per_head: 0.12
    growth_investment:
      segments: [{up_to: 1.0, return_rate: 1.8}, {up_to: 3, return_rate: 1.2}]
    growth_hiring: {max_heads: 20, contribution_per_head: 0.3}
    options:
      - mode: acquire
        initial_share: 0.08
        share_growth: 0.05
        max_share: 0.5
        margin: 0.25
        entry_cost: 40
        annual_cost: 3
        headcount: 25
        prehire_years: 0
      - mode: Partner
        cash_flows:
          contribution: [1.0, 2.0, 3.0]
          cost: [0.5, 0.2]
          headcount: [2, 2, 2]
  - {id: US, region: AMER, market_size: 3000,
     options: [{mode: build, initial_share: 0.01, margin: 0.3, entry_cost: 10, headcount: 4, prehire_years: 1}]}
  - {id: JP, market_size: 800, options: [{mode: partner, initial_share: 0.02, margin: 0.2}]}
  - {id: BR, market_size: 300, options: [{mode: build, initial_share: 0.05, margin: 0.1}]}
budget:
  limit: [60, 60, 70, 70]
  carry_over: true
headcount:
  cap: 200
  max_net_hires: [120, 120, 100, 100]
  initial: 3
regions:
  - {name: EMEA, min_markets: 1, max_markets: 6, max_budget_share: 0.5, talent_cap: 300}
growth_scenarios:
  - {name: bear, probability: 0.25, market_growth_delta: -0.03, share_growth_multiplier: 0.6}
  - {name: base, probability: 0.50}
  - {name: bull, probability: 0.25, market_growth_delta: 0.02, share_growth_multiplier: 1.3}
risk: {max_average_risk: 0.5}
commitments:
  - {market_id: US, mode: BUILD, entry_year: 2027}
previous_plan:
  change_penalty: 5.0
  decisions: [{market_id: JP, mode: partner, entry_year: 2029}, {market_id: BR, entered: false}]
objective:
  kind: Risk_Adjusted_NPV
  risk_aversion: 0.3
  cvar_alpha: 0.9
  min_expected_npv: -1e2
  min_cvar: null
solver: {time_limit_seconds: 6e1, mip_rel_gap: 1e-4}
"""

MINIMAL: dict[str, Any] = {"horizon_years": 1, "markets": []}

CASH_ONLY: dict[str, Any] = {
    "start_year": -3, "horizon_years": 2,
    "markets": [{"id": "x.y_z-1", "options": [{"mode": "build", "cash_flows": {"contribution": [-1.5, 2]}}]}],
}


def rich() -> dict[str, Any]:
    return copy.deepcopy(RICH)


def test_json_and_yaml_of_the_same_scenario_are_equal() -> None:
    from_json = load_scenario_text(json.dumps(RICH), "json")
    from_yaml = load_scenario_text(RICH_YAML)
    assert isinstance(from_json, Scenario)
    assert from_json == from_yaml
    assert from_json == parse_scenario(rich())
    assert from_json.sha256() == from_yaml.sha256()
    # spot checks that the YAML 1.2 numbers were read as numbers
    assert from_yaml.solver.mip_rel_gap == 1e-4
    assert from_yaml.objective.min_expected_npv == -100.0
    assert from_yaml.markets[0].compliance.banned_modes == ("acquire",)


def test_load_scenario_file_by_extension(tmp_path: Path) -> None:
    pj = tmp_path / "s.json"
    pj.write_text(json.dumps(RICH), encoding="utf-8")
    py = tmp_path / "s.yaml"
    py.write_text(RICH_YAML, encoding="utf-8")
    pyml = tmp_path / "s.yml"
    pyml.write_text(RICH_YAML, encoding="utf-8")
    assert load_scenario_file(pj) == load_scenario_file(py) == load_scenario_file(str(pyml))


def test_load_scenario_file_missing_and_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as ei:
        load_scenario_file(tmp_path / "nope.yaml")
    assert [v.field for v in ei.value.violations] == ["<file>"]
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ScenarioError) as ei:
        load_scenario_file(bad)
    assert [v.field for v in ei.value.violations] == ["<file>"]


@pytest.mark.parametrize("raw", [RICH, MINIMAL, CASH_ONLY], ids=["rich", "minimal", "cash_only"])
def test_canonical_round_trip(raw: dict[str, Any]) -> None:
    s = parse_scenario(copy.deepcopy(raw))
    d = s.to_dict()
    assert parse_scenario(d) == s
    assert parse_scenario(copy.deepcopy(d)) == s
    assert s.to_dict() == d
    # the canonical form is plain JSON data
    assert json.loads(json.dumps(d)) == d
    # and a fixed point
    assert parse_scenario(d).to_dict() == d


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("raw", [RICH, MINIMAL, CASH_ONLY], ids=["rich", "minimal", "cash_only"])
def test_dump_and_load_round_trip(raw: dict[str, Any], fmt: str, tmp_path: Path) -> None:
    s = parse_scenario(copy.deepcopy(raw))
    text = dump_scenario(s, fmt)
    assert load_scenario_text(text, fmt) == s
    p = tmp_path / ("s." + fmt)
    p.write_text(text, encoding="utf-8")
    assert load_scenario_file(p) == s
    assert dump_scenario(load_scenario_text(text, fmt), fmt) == text


def test_dump_yaml_writes_every_default() -> None:
    text = dump_scenario(parse_scenario(copy.deepcopy(MINIMAL)))
    for key in ("start_year", "discount_rate", "growth_scenarios", "objective", "solver", "budget", "headcount"):
        assert re.search(rf"^{key}:", text, re.M), key


@pytest.mark.parametrize("field,value", [("id", "1e5"), ("name", "2E3")])
def test_dump_yaml_round_trip_numeric_looking_text(field: str, value: str) -> None:
    raw = copy.deepcopy(CASH_ONLY)
    if field == "id":
        raw["markets"][0]["id"] = value
    else:
        raw["name"] = value
    s = parse_scenario(raw)
    assert load_scenario_text(dump_scenario(s)) == s


def test_dump_yaml_round_trip_yaml11_keywords() -> None:
    # text that YAML 1.1 would read as a boolean or number must come back as text
    raw = copy.deepcopy(CASH_ONLY)
    raw["name"] = "yes"
    raw["markets"][0]["id"] = "NO"
    raw["markets"][0]["name"] = "2027"
    s = parse_scenario(raw)
    assert load_scenario_text(dump_scenario(s)) == s


def test_sha256_stable() -> None:
    a = parse_scenario(rich())
    b = load_scenario_text(RICH_YAML)
    assert re.fullmatch(r"[0-9a-f]{64}", a.sha256())
    assert a.sha256() == b.sha256() == hashlib.sha256(a.canonical_json().encode("utf-8")).hexdigest()
    assert a.sha256() == a.sha256()
    # key order of the input does not matter
    reordered = dict(reversed(list(rich().items())))
    assert parse_scenario(reordered).sha256() == a.sha256()
    # writing a default explicitly does not matter
    m = copy.deepcopy(MINIMAL)
    m_explicit = {**copy.deepcopy(MINIMAL), "start_year": 0, "discount_rate": 0.0,
                  "objective": {"kind": "EXPECTED_NPV", "cvar_alpha": 0.9}, "solver": {"mip_rel_gap": 1e-4}}
    assert parse_scenario(m).sha256() == parse_scenario(m_explicit).sha256()
    # per-year number vs the same list
    r2 = rich()
    r2["headcount"]["cap"] = [200, 200, 200, 200]
    assert parse_scenario(r2).sha256() == a.sha256()
    # integer written as 25.0
    r3 = rich()
    r3["markets"][0]["options"][0]["headcount"] = 25.0
    assert parse_scenario(r3).sha256() == a.sha256()
    # canonical JSON is deterministic and sorted
    cj = a.canonical_json()
    assert cj == b.canonical_json()
    assert json.loads(cj) == a.to_dict()


@pytest.mark.parametrize(
    "path,value",
    [
        (["discount_rate"], 0.11),
        (["name"], "other"),
        (["markets", 0, "options", 0, "margin"], 0.26),
        (["budget", "carry_over"], False),
        (["budget", "limit", 3], 71),
        (["growth_scenarios", 0, "market_growth_delta"], -0.031),
        (["solver", "time_limit_seconds"], 61),
        (["markets", 2, "id"], "JP2"),
    ],
)
def test_sha256_sensitive_to_a_change(path: list[Any], value: Any) -> None:
    before = parse_scenario(rich()).sha256()
    d = rich()
    node: Any = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    if path == ["markets", 2, "id"]:
        d["previous_plan"]["decisions"][0]["market_id"] = "JP2"
    assert parse_scenario(d).sha256() != before


def test_sha256_sensitive_to_market_order() -> None:
    d = rich()
    d["markets"] = [d["markets"][1], d["markets"][0], *d["markets"][2:]]
    assert parse_scenario(d).sha256() != parse_scenario(rich()).sha256()


def test_builtin_example_round_trips() -> None:
    from lepton_alloc.models import load_builtin_example

    s = load_builtin_example()
    assert parse_scenario(s.to_dict()) == s
    assert load_scenario_text(dump_scenario(s)) == s
    assert load_scenario_text(dump_scenario(s, "json"), "json").sha256() == s.sha256()
