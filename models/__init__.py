"""The allocation model (domain layer): scenario -> columns -> Pyomo model -> HiGHS -> Result.

Pure Python + numpy + Pyomo + highspy; never imports grpc, protobuf, the store, the server or
the clients. See MODEL.md for the mathematics these modules implement.
"""

from __future__ import annotations

import time
from typing import Any
from collections.abc import Callable

from .formulation import AllocationModel, build_model
from .loader import load_builtin_example, load_scenario_file, load_scenario_text
from .result import Result, extract_result
from .scenario import FieldViolation, Scenario, ScenarioError, parse_scenario
from .solve import ProgressCallback, SolveOutcome, solve_model

__all__ = [
    "AllocationModel", "FieldViolation", "Result", "Scenario", "ScenarioError", "SolveOutcome",
    "build_model", "extract_result", "load_builtin_example", "load_scenario_file",
    "load_scenario_text", "parse_scenario", "solve_model", "solve_scenario",
]


def solve_scenario(
    scenario: Scenario | dict[str, Any],
    *,
    time_limit: float | None = None,
    mip_rel_gap: float | None = None,
    threads: int = 1,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Result:
    """Validate (if given raw data), build, solve and extract: the whole path of one solve."""
    started = time.perf_counter()
    sc = scenario if isinstance(scenario, Scenario) else parse_scenario(scenario)
    am = build_model(sc)
    out = solve_model(am, time_limit=time_limit, mip_rel_gap=mip_rel_gap, threads=threads,
                      on_progress=on_progress, should_stop=should_stop)
    return extract_result(am, out, started)
