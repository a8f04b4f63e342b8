"""The built-in example and generated scenarios: solved plans pass the independent checker."""

from __future__ import annotations

from pathlib import Path

import pytest

from lepton_alloc.models import solve_scenario
from lepton_alloc.models.generator import generate_scenario
from lepton_alloc.models.loader import builtin_example_path, parse_text

from .feasibility import check_plan

ROOT = Path(__file__).resolve().parents[2]


def test_examples_file_is_the_builtin() -> None:
    assert (ROOT / "examples" / "global_expansion.yaml").resolve() == builtin_example_path()


def test_builtin_example_solves_and_is_feasible() -> None:
    raw = parse_text(builtin_example_path().read_text())
    res = solve_scenario(raw).to_dict()
    assert res["status"] == "optimal"
    assert res["gap"] <= raw["solver"]["mip_rel_gap"] + 1e-12
    assert check_plan(raw, res) == []
    entered = [m for m in res["markets"] if m["mode"]]
    assert 3 <= len(entered) < len(res["markets"])  # a real choice: some in, some out
    assert len({m["mode"] for m in entered}) >= 2 and len({m["entry_year"] for m in entered}) >= 2
    us = next(m for m in res["markets"] if m["id"] == "US")
    assert (us["mode"], us["entry_year"]) == ("build", 2027)  # the commitment


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_scenarios_give_feasible_plans(seed: int) -> None:
    raw = generate_scenario(25, 6, seed=seed, time_limit=30, mip_rel_gap=1e-6)
    res = solve_scenario(raw).to_dict()
    assert res["status"] in ("optimal", "feasible")
    assert check_plan(raw, res) == []
