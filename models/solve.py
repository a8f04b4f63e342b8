"""Run HiGHS on a built model through Pyomo's persistent interface (``SolverFactory('highs')``).

The built :class:`~.formulation.AllocationModel` keeps its solver object, so a re-solve after a
mutable-Param change (a sweep) only pushes the changed bounds to HiGHS. Progress events come
from HiGHS callbacks (improving solution, MIP interrupt polling); ``should_stop`` is polled from
the interrupt callbacks, so a cancel or an expired deadline stops the run promptly.
Status is reported honestly: a run stopped by a limit with an incumbent is ``feasible``.
"""

from __future__ import annotations

import logging
import time
from operator import itemgetter
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

import numpy as np

from .formulation import AllocationModel, paused_gc

ProgressCallback = Callable[[dict[str, Any]], None]

LARGE_MODEL_INTEGERS = 10_000
PRESOLVE_OFF_LARGE = 0x18000  # HiGHS presolve rule bits: probing | enumeration

STATUSES = ("optimal", "feasible", "infeasible", "unbounded", "no_solution", "cancelled")


@dataclass
class SolveOutcome:
    status: str
    objective_value: float | None
    best_bound: float | None
    gap: float | None
    values: np.ndarray | None  # global variable vector (see formulation), None without a solution
    transfer_seconds: float
    solver_seconds: float
    highs_status: str
    message: str = ""
    node_count: int = 0


def _collect_linear_vars(original: Callable[[Any], Any], opt: Any) -> Callable[[Any], Any]:
    """A fast replacement of Pyomo's ``collect_vars_and_named_exprs`` for our rows.

    Every constraint this package builds is ``lb <= LinearExpression <= ub`` with numeric or
    Param bounds, and its variables are already known as the row's numpy indices: they are
    picked with ``itemgetter`` instead of walking the expression tree (the walk was ~60 % of the
    Pyomo -> HiGHS transfer at 1000 markets). Expressions we did not build, or a model with
    fixed variables, fall back to Pyomo's own walker, so the result is the same.
    """
    from pyomo.core.expr.numeric_expr import LinearExpression

    var_list = opt._var_list
    body_rows: dict[int, Any] = {}
    if not any(v.fixed for v in var_list):
        for con, row in opt._rows.items():
            for arg in con.expr.args:
                if type(arg) is LinearExpression:
                    body_rows[id(arg)] = row

    def collect(expr: Any) -> Any:
        found = None
        for arg in getattr(expr, "args", ()):
            row = body_rows.get(id(arg))
            if row is not None:
                found = row
            elif type(arg) in (int, float) or arg is None:
                continue
            elif getattr(arg, "is_potentially_variable", lambda: True)():
                return original(expr)  # a bound that could hold variables: let Pyomo walk it
        if found is None:
            return original(expr)
        idx = found.idx.tolist()
        picked = [var_list[idx[0]]] if len(idx) == 1 else list(itemgetter(*idx)(var_list))
        return [], picked, [], []

    return collect


def _transfer(opt: Any, model: Any) -> None:
    """``opt.set_instance(model)`` with the fast variable collection above."""
    from pyomo.contrib.solver.common import persistent

    original = persistent.collect_vars_and_named_exprs
    persistent.collect_vars_and_named_exprs = _collect_linear_vars(original, opt)
    try:
        with paused_gc():
            opt.set_instance(model)
    finally:
        persistent.collect_vars_and_named_exprs = original


def _row_aware_highs_class() -> Any:
    """Pyomo's persistent HiGHS interface (``SolverFactory('highs')``) with a bulk row transfer.

    ``_add_constraints`` normally rebuilds every row with ``generate_standard_repn`` and a
    Python loop per non-zero. Our rows already exist as numpy (indices, coefficients) in
    :class:`~.formulation.Row`, so they are handed to ``Highs.addRows`` in one call; bounds that
    hold mutable Params get the same update helpers Pyomo would create, so re-solves after a
    Param change (sweeps) still push the new bounds. Rows we did not build go through Pyomo.
    """
    from pyomo.contrib.solver.solvers.highs import Highs, _MutableConstraintBounds
    from pyomo.core.expr.numvalue import is_constant, value

    class RowAwareHighs(Highs):  # type: ignore[misc, valid-type]
        def __init__(self, **kwds: Any) -> None:
            super().__init__(**kwds)
            self._rows: dict[Any, Any] = {}
            self._var_list: list[Any] = []

        def _reinit(self) -> None:  # set_instance re-runs __init__: keep our row map
            rows, var_list = self._rows, self._var_list
            super()._reinit()
            self._rows, self._var_list = rows, var_list

        def _add_constraints(self, cons: list[Any]) -> None:
            if not cons or any(c not in self._rows for c in cons):
                return super()._add_constraints(cons)
            import highspy

            self._sol = None
            if self._last_results_object is not None:
                self._last_results_object.solution_loader.invalidate()
            vmap = self._pyomo_var_to_solver_var_map
            col = np.fromiter((vmap.get(id(v), -1) for v in self._var_list), dtype=np.int64,
                              count=len(self._var_list))
            inf = highspy.kHighsInf
            first_row = len(self._pyomo_con_to_solver_con_map)
            lbs, ubs, starts, idx_parts, val_parts = [], [], [], [], []
            nnz = 0
            for con in cons:
                row = self._rows[con]
                cols = col[row.idx]
                if cols.size and cols.min() < 0:
                    return super()._add_constraints(cons)  # a variable HiGHS does not know: let Pyomo decide
                starts.append(nnz)
                idx_parts.append(cols)
                val_parts.append(row.coef)
                nnz += cols.size
                lb = con.lower if con.has_lb() else -inf
                ub = con.upper if con.has_ub() else inf
                if not is_constant(lb) or not is_constant(ub):
                    self._mutable_helpers.setdefault(con, []).append(_MutableConstraintBounds(
                        lower_expr=lb, upper_expr=ub, pyomo_con=con,
                        con_map=self._pyomo_con_to_solver_con_map, highs=self._solver_model))
                lbs.append(value(lb))
                ubs.append(value(ub))
            for k, con in enumerate(cons):
                self._pyomo_con_to_solver_con_map[con] = first_row + k
                self._solver_con_to_pyomo_con_map[first_row + k] = con
            self._solver_model.addRows(
                len(lbs), np.array(lbs, dtype=np.double), np.array(ubs, dtype=np.double), nnz,
                np.array(starts, dtype=np.int64),
                np.concatenate(idx_parts).astype(np.int64) if idx_parts else np.zeros(0, np.int64),
                np.concatenate(val_parts).astype(np.double) if val_parts else np.zeros(0),
            )
            return None

    return RowAwareHighs


def _solver_for(am: AllocationModel) -> Any:
    opt = getattr(am, "_solver", None)
    if opt is None:
        opt = _row_aware_highs_class()()
        opt._rows = {am.constraints[r.name]: r for r in am.rows}
        opt._var_list = am.variables
        am._solver = opt  # type: ignore[attr-defined]
    return opt


def solve_model(
    am: AllocationModel,
    *,
    time_limit: float | None = None,
    mip_rel_gap: float | None = None,
    threads: int = 1,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress_interval: float = 0.25,
) -> SolveOutcome:
    """Solve (or re-solve) the model; limits default to the scenario's ``solver`` section."""
    import highspy

    sc = am.scenario
    time_limit = sc.solver.time_limit_seconds if time_limit is None else time_limit
    mip_rel_gap = sc.solver.mip_rel_gap if mip_rel_gap is None else mip_rel_gap
    opt = _solver_for(am)

    t0 = time.perf_counter()
    first = getattr(opt, "_model", None) is not am.model
    if first:
        _transfer(opt, am.model)  # Pyomo -> HiGHS
    transfer = time.perf_counter() - t0
    h = opt._solver_model

    started = time.perf_counter()
    state: dict[str, Any] = {"stopped": False, "last_emit": 0.0}

    def emit(kind: str, out: Any) -> None:
        if on_progress is None:
            return
        try:
            event = {
                "kind": kind,
                "objective": float(out.objective_function_value),
                "best_bound": float(out.mip_dual_bound),
                "gap": float(out.mip_gap),
                "elapsed_seconds": time.perf_counter() - started,
                "nodes": int(out.mip_node_count),
                "at": time.time(),  # wall clock of the callback (event latency is measured from it)
            }
        except Exception:  # noqa: BLE001 - a progress event must never break a solve
            return
        on_progress(event)

    def on_interrupt(e: Any) -> None:
        if should_stop is not None and should_stop():
            state["stopped"] = True
            e.interrupt()
            return
        now = time.perf_counter()
        if on_progress is not None and now - state["last_emit"] >= progress_interval:
            state["last_emit"] = now
            emit("progress", e.data_out)

    def on_improving(e: Any) -> None:
        state["last_emit"] = time.perf_counter()
        emit("incumbent", e.data_out)

    subscriptions = []
    if should_stop is not None or on_progress is not None:
        for cb in (h.cbMipInterrupt, h.cbSimplexInterrupt, h.cbIpmInterrupt):
            cb.subscribe(on_interrupt)
            subscriptions.append((cb, on_interrupt))
    if on_progress is not None:
        h.cbMipImprovingSolution.subscribe(on_improving)
        subscriptions.append((h.cbMipImprovingSolution, on_improving))

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
    pyomo_log = logging.getLogger("pyomo.contrib.solver")
    level = pyomo_log.level
    pyomo_log.setLevel(logging.ERROR)  # statuses (interrupt, limits) are reported by us, not as warnings
    try:
        opt.solve(am.model, **kwargs)
    finally:
        pyomo_log.setLevel(level)
        for cb, fn in subscriptions:
            cb.unsubscribe(fn)
    solver_seconds = float(h.getRunTime())

    info = h.getInfo()
    ms = h.getModelStatus()
    MS = highspy.HighsModelStatus
    has_solution = int(info.primal_solution_status) == 2  # kSolutionStatusFeasible
    values = None
    if has_solution:
        col_value = np.asarray(h.getSolution().col_value, dtype=float)
        colmap = opt._pyomo_var_to_solver_var_map
        cols = np.array([colmap.get(id(v), -1) for v in am.variables], dtype=np.int64)
        values = np.where(cols >= 0, col_value[np.maximum(cols, 0)], 0.0)

    if ms == MS.kModelEmpty:
        # nothing can be entered (no columns, no rows): the only plan is "enter nothing",
        # whose objective is the constant term (e.g. previous-plan penalties always paid)
        values = np.zeros(len(am.variables))
        const = am.objective_constant
        return SolveOutcome("optimal", const, const, 0.0, values, transfer, solver_seconds,
                            h.modelStatusToString(ms))

    is_mip = am.integer_count > 0
    objective = float(info.objective_function_value) if has_solution else None
    bound = float(info.mip_dual_bound) if is_mip else objective
    gap = float(info.mip_gap) if is_mip and has_solution else (0.0 if has_solution else None)
    if bound is not None and not np.isfinite(bound):
        bound = None
    if gap is not None and not np.isfinite(gap):
        gap = None

    if ms == MS.kOptimal:
        status = "optimal"
    elif ms in (MS.kInfeasible, MS.kUnboundedOrInfeasible):
        status = "infeasible"  # every variable of this model is bounded: not unbounded
    elif ms == MS.kUnbounded:
        status = "unbounded"
    elif ms == MS.kInterrupt or state["stopped"]:
        status = "cancelled"
    elif has_solution:
        status = "feasible"
    else:
        status = "no_solution"
    if status == "optimal" and not has_solution:
        status = "no_solution"
    return SolveOutcome(
        status=status,
        objective_value=objective if status in ("optimal", "feasible", "cancelled") else None,
        best_bound=bound if status in ("optimal", "feasible", "cancelled", "no_solution") else None,
        gap=gap if status in ("optimal", "feasible", "cancelled") else None,
        values=values if status in ("optimal", "feasible", "cancelled") else None,
        transfer_seconds=transfer,
        solver_seconds=solver_seconds,
        highs_status=h.modelStatusToString(ms),
        node_count=int(max(info.mip_node_count, 0)) if is_mip else 0,
    )


def highs_version() -> str:
    import highspy

    return f"{highspy.HIGHS_VERSION_MAJOR}.{highspy.HIGHS_VERSION_MINOR}.{highspy.HIGHS_VERSION_PATCH}"
