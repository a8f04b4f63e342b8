"""The allocation model (domain layer): scenario -> columns -> Pyomo model -> HiGHS -> Result.

Pure Python + numpy + Pyomo + highspy; never imports grpc, protobuf, the store, the server or
the clients. See docs/model.md for the mathematics these modules implement.

The scenario and result *types* (:mod:`.scenario`, :mod:`.result`) are light: importing them,
or this package, does not load Pyomo, HiGHS or numpy. The solver entry points below are
imported on first use, so a calling service that only needs the types never pays for them.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .result import Result, SolveStatus
from .status import JobState, Progress, ProgressKind
from .scenario import FieldViolation, Mode, ObjectiveKind, Scenario, ScenarioError, parse_scenario

if TYPE_CHECKING:
    from .extract import extract_result
    from .formulation import AllocationModel, build_model
    from .loader import load_builtin_example, load_scenario_file, load_scenario_text
    from .solve import ProgressCallback, SolveOutcome, solve_model

_LAZY = {
    "AllocationModel": ".formulation", "build_model": ".formulation",
    "extract_result": ".extract",
    "load_builtin_example": ".loader", "load_scenario_file": ".loader", "load_scenario_text": ".loader",
    "ProgressCallback": ".solve", "SolveOutcome": ".solve", "solve_model": ".solve",
}

__all__ = [
    "AllocationModel", "FieldViolation", "JobState", "Mode", "ObjectiveKind", "Progress", "ProgressCallback",
    "ProgressKind", "Result", "Scenario",
    "ScenarioError", "SolveOutcome", "SolveStatus", "build_model", "extract_result", "load_builtin_example",
    "load_scenario_file", "load_scenario_text", "parse_scenario", "solve_model", "solve_scenario",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def solve_scenario(
    scenario: Scenario | dict[str, Any],
    *,
    time_limit: float | None = None,
    mip_rel_gap: float | None = None,
    threads: int = 1,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Result:
    """Validate (if given raw data), build, solve and extract: the whole path of one solve."""
    from .extract import extract_result
    from .formulation import build_model
    from .solve import solve_model

    started = time.perf_counter()
    sc = scenario if isinstance(scenario, Scenario) else parse_scenario(scenario)
    am = build_model(sc, pyomo=False)  # solve_model makes the Pyomo model unless the model is huge
    out = solve_model(am, time_limit=time_limit, mip_rel_gap=mip_rel_gap, threads=threads,
                      on_progress=on_progress, should_stop=should_stop)
    # why an infeasible scenario is infeasible: at most half the solve's time limit, 30 s at most
    limit = sc.solver.time_limit_seconds if time_limit is None else time_limit
    return extract_result(am, out, started, explain_seconds=min(30.0, 0.5 * limit))
