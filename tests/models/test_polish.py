"""Polishing HiGHS's incumbent during its run (models/polish.py, docs/model.md §6.2): the plans it
hands HiGHS are plans of the model (the independent checker of :mod:`.feasibility`), HiGHS takes
them (its result is never worse than a polished plan), and the reported objective is the plan's own.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from lepton_alloc.models import build_model, extract_result, parse_scenario, solve_model
from lepton_alloc.models import polish
from lepton_alloc.models.generator import generate_scenario
from lepton_alloc.models.rowset import plan_objective
from lepton_alloc.models.solve import LARGE_MODEL_INTEGERS, POLISH_MIN_INTEGERS
from lepton_alloc.models.status import ProgressKind

from .feasibility import check_plan


@pytest.fixture
def eager_polish(monkeypatch: pytest.MonkeyPatch) -> None:
    """Polish at HiGHS's first stall-free callback instead of after seconds of stalling, so a short
    test run polishes (the thresholds only decide *when*, not *what*, is handed to HiGHS)."""
    monkeypatch.setattr(polish, "FIRST_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(polish, "STALL_SECONDS", 0.0)
    monkeypatch.setattr(polish, "SHARE", 1.0)
    monkeypatch.setattr(polish, "SLICE_SECONDS", 0.5)


@pytest.mark.parametrize("seed", [0, 1])
def test_polished_plans_are_plans_of_the_model_and_highs_takes_them(eager_polish: None, seed: int) -> None:
    raw = generate_scenario(100, 10, seed, time_limit=8)
    am = build_model(parse_scenario(raw))
    assert POLISH_MIN_INTEGERS <= am.integer_count < LARGE_MODEL_INTEGERS  # the sizes polished
    events: list[Any] = []
    started = time.perf_counter()
    out = solve_model(am, time_limit=8, on_progress=events.append)
    assert out.polished_plans >= 1, "no polished plan was handed to HiGHS"
    assert out.status.has_plan and out.values is not None and out.objective_value is not None
    # HiGHS took the polished plans as incumbents: its result is at least as good as the best of them
    polished = [e.objective for e in events if e.kind == ProgressKind.INCUMBENT and not e.head_start and e.objective]
    assert out.objective_value >= max(polished) - 1e-9 * abs(out.objective_value)
    # the best plan the stream reports never goes down
    best = [e.objective for e in events if e.objective is not None]
    assert all(b >= a - 1e-9 * abs(a) for a, b in zip(best, best[1:]))
    # the reported objective is the plan's own, and the plan keeps every rule of docs/model.md
    assert "HiGHS reported objective" not in out.message
    assert out.objective_value == pytest.approx(plan_objective(am, out.values), rel=1e-12)
    result = extract_result(am, out, started).to_dict()
    assert check_plan(raw, result) == []


def test_polishing_stays_off_outside_its_sizes(eager_polish: None) -> None:
    """Small models (HiGHS proves them; the head start's plan is its start) are never polished."""
    am = build_model(parse_scenario(generate_scenario(20, 10, 0, time_limit=5)))
    assert am.integer_count < POLISH_MIN_INTEGERS
    assert solve_model(am, time_limit=5).polished_plans == 0


def test_a_cancel_during_polishing_ends_the_solve_cancelled_with_a_checked_plan(eager_polish: None) -> None:
    raw = generate_scenario(100, 10, 0, time_limit=60)
    am = build_model(parse_scenario(raw))
    plans: list[float] = []

    def on_progress(p: Any) -> None:
        if p.kind == ProgressKind.INCUMBENT and not p.head_start and p.objective is not None:
            plans.append(p.objective)

    started = time.perf_counter()
    out = solve_model(am, time_limit=60, on_progress=on_progress, should_stop=lambda: len(plans) >= 3)
    assert out.status.value == "cancelled"
    assert out.values is not None and out.objective_value is not None
    assert out.objective_value >= plans[2] - 1e-9 * abs(plans[2])  # the best plan so far is kept
    assert check_plan(raw, extract_result(am, out, started).to_dict()) == []
