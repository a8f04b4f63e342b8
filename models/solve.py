"""Run HiGHS on a built model through Pyomo's persistent interface (``SolverFactory('highs')``).

The built :class:`~.formulation.AllocationModel` keeps its solver object, so a re-solve after a
mutable-Param change (a sweep) or :meth:`~.formulation.AllocationModel.update` (a changed
scenario of the same structure, see :func:`resolve`) only pushes what changed to HiGHS. The
Pyomo -> HiGHS transfer itself (a bulk fast path with the stock interface as fallback) lives in
:mod:`.highs_fast`, the only module that touches Pyomo internals. Progress events come
from HiGHS callbacks (improving solution, MIP interrupt polling); ``should_stop`` is polled from
the interrupt callbacks, so a cancel or an expired deadline stops the run promptly.
Status is reported honestly: a run stopped by a limit with an incumbent is ``feasible``.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
import time
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Iterator

import numpy as np

from . import highs_fast
from .formulation import AllocationModel, build_model, paused_gc
from .scenario import Scenario
from .status import Progress, ProgressKind, SolveStatus

ProgressCallback = Callable[[Progress], None]

LARGE_MODEL_INTEGERS = 10_000
PRESOLVE_OFF_LARGE = 0x18000  # HiGHS presolve rule bits: probing | enumeration

@dataclass
class SolveOutcome:
    status: SolveStatus
    objective_value: float | None
    best_bound: float | None
    gap: float | None
    values: np.ndarray | None  # global variable vector (see formulation), None without a solution
    transfer_seconds: float
    solver_seconds: float
    highs_status: str
    message: str = ""
    node_count: int = 0


def _solver_for(am: AllocationModel, fast_path: bool | None) -> Any:
    """The model's persistent solver; a new one when none exists or the path asked for differs."""
    want_fast = highs_fast.use_fast_path(fast_path)
    if am.solver is None or highs_fast.is_fast(am.solver) != want_fast:
        am.solver = highs_fast.persistent_highs(am.linear_rows, am.variables, want_fast)
    return am.solver


def resolve(am: AllocationModel | None, scenario: Scenario, **solve_options: Any) -> tuple[AllocationModel, SolveOutcome]:
    """Solve ``scenario`` re-using a built model where only its data changed, else a fresh build.

    ``am.update(scenario)`` pushes changed limits and coefficients into ``am`` in place (its
    persistent solver then re-solves warm); a changed structure, or ``am`` None, builds anew.
    Returns the model that was solved (``am`` itself when updated in place) and the outcome.
    """
    if am is None or not am.update(scenario):
        am = build_model(scenario)
    return am, solve_model(am, **solve_options)


def solve_model(
    am: AllocationModel,
    *,
    time_limit: float | None = None,
    mip_rel_gap: float | None = None,
    threads: int = 1,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress_interval: float = 0.25,
    fast_path: bool | None = None,
) -> SolveOutcome:
    """Solve (or re-solve) the model; limits default to the scenario's ``solver`` section.

    ``fast_path`` picks the Pyomo -> HiGHS transfer (:mod:`.highs_fast`): None = automatic (the
    bulk transfer where this Pyomo supports it, unless ``LEPTON_HIGHS_FAST_PATH=0``), False =
    Pyomo's stock interface, True = the bulk transfer or ``RuntimeError``.
    """
    sc = am.scenario
    time_limit = sc.solver.time_limit_seconds if time_limit is None else time_limit
    mip_rel_gap = sc.solver.mip_rel_gap if mip_rel_gap is None else mip_rel_gap
    opt = _solver_for(am, fast_path)

    t0 = time.perf_counter()
    first = highs_fast.loaded_model(opt) is not am.model
    if first:
        with paused_gc():
            opt.set_instance(am.model)  # Pyomo -> HiGHS
    transfer = time.perf_counter() - t0
    h = highs_fast.highs_of(opt)

    callbacks = _Callbacks(on_progress, should_stop, progress_interval)
    pyomo_log = logging.getLogger("pyomo.contrib.solver")
    level = pyomo_log.level
    pyomo_log.setLevel(logging.ERROR)  # statuses (interrupt, limits) are reported by us, not as warnings
    try:
        with callbacks.subscribed(h):
            opt.solve(am.model, **_solve_options(am, time_limit, mip_rel_gap, threads, first))
    finally:
        pyomo_log.setLevel(level)
    return _outcome(am, opt, h, callbacks.stopped, transfer)


class _Callbacks:
    """HiGHS callbacks: progress reports (throttled heartbeats, every incumbent) and the
    interrupt poll of ``should_stop`` (a cancel or an expired deadline)."""

    def __init__(self, on_progress: ProgressCallback | None, should_stop: Callable[[], bool] | None,
                 interval: float):
        self.on_progress, self.should_stop, self.interval = on_progress, should_stop, interval
        self.started = time.perf_counter()
        self.last_emit = 0.0
        self.stopped = False

    def emit(self, kind: ProgressKind, out: Any) -> None:
        if self.on_progress is None:
            return
        try:
            event = Progress(
                kind,
                objective=_finite(out.objective_function_value),
                best_bound=_finite(out.mip_dual_bound),
                gap=_finite(out.mip_gap),  # HiGHS reports infinities before it knows a plan or bound
                elapsed_seconds=time.perf_counter() - self.started,
                nodes=int(out.mip_node_count),
                at=time.time(),  # wall clock of the callback (event latency is measured from it)
            )
        except Exception:  # noqa: BLE001 - a progress event must never break a solve
            return
        self.on_progress(event)

    def on_interrupt(self, e: Any) -> None:
        if self.should_stop is not None and self.should_stop():
            self.stopped = True
            e.interrupt()
            return
        now = time.perf_counter()
        if self.on_progress is not None and now - self.last_emit >= self.interval:
            self.last_emit = now
            self.emit(ProgressKind.HEARTBEAT, e.data_out)

    def on_improving(self, e: Any) -> None:
        self.last_emit = time.perf_counter()
        self.emit(ProgressKind.INCUMBENT, e.data_out)

    @contextmanager
    def subscribed(self, h: Any) -> Iterator[None]:
        subscriptions: list[tuple[Any, Callable[[Any], None]]] = []
        if self.should_stop is not None or self.on_progress is not None:
            subscriptions += [(cb, self.on_interrupt) for cb in (h.cbMipInterrupt, h.cbSimplexInterrupt, h.cbIpmInterrupt)]
        if self.on_progress is not None:
            subscriptions.append((h.cbMipImprovingSolution, self.on_improving))
        for cb, fn in subscriptions:
            cb.subscribe(fn)
        try:
            yield
        finally:
            for cb, fn in subscriptions:
                cb.unsubscribe(fn)


def _solve_options(am: AllocationModel, time_limit: float, mip_rel_gap: float, threads: int,
                   first: bool) -> dict[str, Any]:
    """Keyword arguments of Pyomo's ``solve`` for this model."""
    kwargs: dict[str, Any] = dict(
        time_limit=float(time_limit), rel_gap=float(mip_rel_gap), threads=int(threads),
        load_solutions=False, raise_exception_on_nonoptimal_result=False,
    )
    if am.integer_count >= LARGE_MODEL_INTEGERS:
        # HiGHS presolve's probing + enumeration rules take minutes on large models and ignore the
        # time limit meanwhile (1000 markets: ~16 s, 2000: ~87 s, no plan within 60 s); switched
        # off together they cost ~2 s and a plan is found (bench/README.md). Small models keep them.
        kwargs["solver_options"] = {"presolve_rule_off": PRESOLVE_OFF_LARGE}
    if first:  # nothing changed since set_instance: skip the model walk of update()
        kwargs["auto_updates"] = dict(
            check_for_new_or_removed_constraints=False, check_for_new_or_removed_vars=False,
            check_for_new_or_removed_params=False, check_for_new_objective=False,
            update_constraints=False, update_vars=False, update_parameters=False,
            update_named_expressions=False, update_objective=False,
        )
    return kwargs


def _outcome(am: AllocationModel, opt: Any, h: Any, stopped: bool, transfer: float) -> SolveOutcome:
    """How the run ended, honestly: a run stopped by a limit with a plan is ``feasible``."""
    import highspy

    solver_seconds = float(h.getRunTime())
    info = h.getInfo()
    ms = h.getModelStatus()
    MS = highspy.HighsModelStatus
    has_solution = int(info.primal_solution_status) == 2  # kSolutionStatusFeasible
    values = None
    if has_solution:
        values = highs_fast.solution_vector(opt, am.variables, np.asarray(h.getSolution().col_value, dtype=float))

    if ms == MS.kModelEmpty:
        # nothing can be entered (no columns, no rows): the only plan is "enter nothing",
        # whose objective is the constant term (e.g. previous-plan penalties always paid)
        const = am.objective_constant
        return SolveOutcome(SolveStatus.OPTIMAL, const, const, 0.0, np.zeros(len(am.variables)), transfer,
                            solver_seconds, h.modelStatusToString(ms))

    is_mip = am.integer_count > 0
    objective = float(info.objective_function_value) if has_solution else None
    bound = _finite(info.mip_dual_bound) if is_mip else objective
    gap = (_finite(info.mip_gap) if is_mip else 0.0) if has_solution else None

    if ms == MS.kOptimal:
        status = SolveStatus.OPTIMAL if has_solution else SolveStatus.NO_SOLUTION
    elif ms in (MS.kInfeasible, MS.kUnboundedOrInfeasible):
        status = SolveStatus.INFEASIBLE  # the objective is bounded above (CVaR's eta only helps it): not unbounded
    elif ms == MS.kUnbounded:
        status = SolveStatus.UNBOUNDED
    elif ms == MS.kInterrupt or stopped:
        status = SolveStatus.CANCELLED
    elif has_solution:
        status = SolveStatus.FEASIBLE
    else:
        status = SolveStatus.NO_SOLUTION
    return SolveOutcome(
        status=status,
        objective_value=objective if status.has_plan else None,
        best_bound=bound if status.has_plan or status == SolveStatus.NO_SOLUTION else None,
        gap=gap if status.has_plan else None,
        values=values if status.has_plan else None,
        transfer_seconds=transfer,
        solver_seconds=solver_seconds,
        highs_status=h.modelStatusToString(ms),
        node_count=int(max(info.mip_node_count, 0)) if is_mip else 0,
    )


def _finite(value: Any) -> float | None:
    v = float(value)
    return v if np.isfinite(v) else None


def highs_version() -> str:
    import highspy

    return f"{highspy.HIGHS_VERSION_MAJOR}.{highspy.HIGHS_VERSION_MINOR}.{highspy.HIGHS_VERSION_PATCH}"
