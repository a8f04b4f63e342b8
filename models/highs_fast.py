"""The one place that uses Pyomo internals: a faster Pyomo -> HiGHS transfer, with a fallback.

Pyomo's persistent HiGHS interface (:class:`pyomo.contrib.solver.solvers.highs.Highs`, what
``SolverFactory('highs')`` runs) adds a constraint by walking its expression twice: once to
collect its variables (``collect_vars_and_named_exprs``) and once to build its standard
representation, with a Python step per non-zero. Every row this package builds already exists
as numpy (:class:`~.formulation.Row`: variable indices and coefficients), so the subclass here
overrides one method, ``add_constraints``, for those rows: their variables are picked with
``itemgetter`` and all of them go to ``Highs.addRows`` in one call (~3x faster at 1000 markets,
bench/README.md). Limits held in mutable Params get the same bound helpers Pyomo would create,
so a re-solve after a Param change still pushes the new bounds.

The override lives on the subclass, per solver instance: no module-level function of Pyomo is
patched, so other Pyomo users in the process are unaffected and concurrent solves are safe.

It relies on private attributes of Pyomo, so it applies only when :func:`fast_path_check`
finds a tested Pyomo version and every private name with the expected signature. Otherwise –
or with ``fast_path=False``, or the environment variable ``LEPTON_HIGHS_FAST_PATH=0`` – the
stock ``Highs`` class is used unchanged. Rows it did not build (or a model with fixed
variables) always take the stock route, so both give the same model.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np

ENVIRONMENT_SWITCH = "LEPTON_HIGHS_FAST_PATH"  # "0" / "false" / "off": always the stock path
TESTED_PYOMO = ((6, 10),)  # Pyomo major.minor versions whose internals the fast path was checked against

# private names the fast path uses, with the parameters their signatures must have
_METHODS = {
    ("Highs", "add_constraints"): ("self", "cons"),
    ("Highs", "_check_for_new_vars"): ("self", "variables"),
    ("_MutableConstraintBounds", "__init__"): ("self", "lower_expr", "upper_expr", "pyomo_con", "con_map", "highs"),
}
_INSTANCE_ATTRIBUTES = (
    "_pyomo_var_to_solver_var_map", "_pyomo_con_to_solver_con_map", "_solver_con_to_pyomo_con_map",
    "_mutable_helpers", "_active_constraints", "_named_expressions", "_vars_referenced_by_con",
    "_referenced_variables", "_last_results_object", "_sol", "_solver_model",
)


@dataclass(frozen=True)
class FastPathCheck:
    """Whether the fast path can be used in this process, and why not when it cannot."""

    applies: bool
    reason: str


@functools.cache
def fast_path_check() -> FastPathCheck:
    """Check the Pyomo version and every private name the fast path relies on (once per process)."""
    try:
        import highspy
        import pyomo.version
        from pyomo.contrib.solver.solvers import highs as highs_module
    except ImportError as exc:
        return FastPathCheck(False, f"Pyomo's HiGHS interface cannot be imported: {exc}")
    version = tuple(pyomo.version.version_info[:2])
    if version not in TESTED_PYOMO:
        tested = ", ".join(f"{a}.{b}" for a, b in TESTED_PYOMO)
        return FastPathCheck(False, f"Pyomo {pyomo.version.version} is not a version the fast path was tested with ({tested})")
    for (owner, name), expected in _METHODS.items():
        function = getattr(getattr(highs_module, owner, None), name, None)
        if function is None:
            return FastPathCheck(False, f"pyomo.contrib.solver.solvers.highs.{owner}.{name} is missing")
        if tuple(inspect.signature(function).parameters) != expected:
            return FastPathCheck(False, f"{owner}.{name} has signature {inspect.signature(function)}, expected {expected}")
    probe = highs_module.Highs()
    missing = [name for name in _INSTANCE_ATTRIBUTES if not hasattr(probe, name)]
    if missing:
        return FastPathCheck(False, f"Highs instances lack {', '.join(missing)}")
    if not hasattr(highspy.Highs, "addRows"):
        return FastPathCheck(False, "highspy.Highs has no addRows")
    return FastPathCheck(True, f"Pyomo {pyomo.version.version}: fast path applies")


def use_fast_path(fast_path: bool | None = None) -> bool:
    """Resolve the switch: None = the environment variable, then :func:`fast_path_check`.

    ``True`` insists: it raises ``RuntimeError`` with the reason when the check fails.
    """
    if fast_path is None:
        if os.environ.get(ENVIRONMENT_SWITCH, "").strip().lower() in ("0", "false", "no", "off"):
            return False
        return fast_path_check().applies
    if fast_path and not fast_path_check().applies:
        raise RuntimeError(f"the HiGHS fast path was requested but does not apply: {fast_path_check().reason}")
    return fast_path


def persistent_highs(linear_rows: Mapping[Any, tuple[Any, Any]], variables: list[Any], fast_path: bool | None = None) -> Any:
    """A persistent HiGHS solver object: the row-aware subclass, or Pyomo's stock ``Highs``.

    ``linear_rows`` maps ConstraintData -> (Row, the body expression built from it); ``variables``
    is the global variable vector the rows' indices refer to. The mapping is read at transfer
    time, so rows replaced in place (``AllocationModel.update``) are seen by the next solve.
    """
    from pyomo.contrib.solver.solvers.highs import Highs

    if not use_fast_path(fast_path):
        return Highs()
    solver = _row_aware_highs_class()()
    solver.lepton_rows = linear_rows  # plain attributes: Highs.__init__ (re-run by set_instance) keeps them
    solver.lepton_variables = variables
    return solver


def is_fast(solver: Any) -> bool:
    return type(solver).__name__ == "RowAwareHighs"


@functools.cache
def _row_aware_highs_class() -> Any:
    from pyomo.contrib.solver.solvers.highs import Highs

    class RowAwareHighs(Highs):  # type: ignore[misc, valid-type]
        """Pyomo's persistent HiGHS interface with a bulk transfer of this package's rows."""

        lepton_rows: Mapping[Any, tuple[Any, Any]]
        lepton_variables: list[Any]

        def add_constraints(self, cons: list[Any]) -> None:
            """``PersistentSolverUtils.add_constraints`` with the variables read off the rows."""
            picked = [self._row_variables(con) for con in cons]
            if not cons or any(p is None for p in picked) or any(v.fixed for v in self.lepton_variables):
                return super().add_constraints(cons)  # the stock route: walk the expressions
            for con in cons:
                if con in self._named_expressions:
                    raise ValueError(f"Constraint {con.name} has already been added")
            rows = [self.lepton_rows[con][0] for con in cons]
            flat = np.concatenate([r.idx for r in rows]).astype(np.int64, copy=False)
            # new variables once, in order of first appearance (as the stock route adds them)
            present, first = np.unique(flat, return_index=True)
            self._check_for_new_vars(self._pick(present[np.argsort(first, kind="stable")]))
            for con, variables in zip(cons, picked):
                self._active_constraints[con] = con.expr
                self._named_expressions[con] = []
                self._vars_referenced_by_con[con] = variables
            self._register_references(cons, rows, flat)
            self._add_rows_in_bulk(cons)
            return None

        def _pick(self, idx: np.ndarray) -> list[Any]:
            """The variables at positions ``idx`` of the global vector, as a list."""
            if idx.size == 0:
                return []
            got = itemgetter(*idx.tolist())(self.lepton_variables)
            return [got] if idx.size == 1 else list(got)

        def _register_references(self, cons: list[Any], rows: list[Any], flat: np.ndarray) -> None:
            """Pyomo's per-variable record of the rows using it (``_referenced_variables[id(v)][0]``,
            read when rows are removed), filled variable by variable: one C-level dict update per
            variable instead of a Python step per non-zero (5.3 of the 15.7 s at 5,000 markets)."""
            sizes = np.fromiter((r.idx.size for r in rows), dtype=np.int64, count=len(rows))
            con_of = np.repeat(np.arange(len(cons)), sizes)
            order = np.argsort(flat, kind="stable")  # by variable, rows in their order within each
            by_var, by_con = flat[order], con_of[order].tolist()
            starts = np.concatenate([[0], np.flatnonzero(np.diff(by_var)) + 1, [by_var.size]]).tolist()
            variables, refs = self.lepton_variables, self._referenced_variables
            for a, b in zip(starts[:-1], starts[1:]):
                using = refs[id(variables[int(by_var[a])])][0]
                if b - a == 1:
                    using[cons[by_con[a]]] = None
                else:
                    using.update(dict.fromkeys(itemgetter(*by_con[a:b])(cons)))

        def _row_variables(self, con: Any) -> list[Any] | None:
            """The variables of a row we built, or None (then Pyomo walks the expression)."""
            entry = self.lepton_rows.get(con)
            if entry is None:
                return None
            row, body = entry
            if not any(arg is body for arg in con.expr.args):
                return None  # the constraint was changed since: not our row any more
            return self._pick(row.idx)

        def _add_rows_in_bulk(self, cons: list[Any]) -> None:
            """``Highs._add_constraints`` for our rows: one ``addRows`` call from the numpy rows."""
            import highspy
            from pyomo.contrib.solver.solvers.highs import _MutableConstraintBounds
            from pyomo.core.expr.numvalue import is_constant, value

            self._sol = None
            if self._last_results_object is not None:
                self._last_results_object.solution_loader.invalidate()
            vmap = self._pyomo_var_to_solver_var_map
            column = np.fromiter((vmap.get(id(v), -1) for v in self.lepton_variables), dtype=np.int64,
                                 count=len(self.lepton_variables))
            first_row = len(self._pyomo_con_to_solver_con_map)
            lbs, ubs, starts, idx_parts, val_parts, nnz = [], [], [], [], [], 0
            for k, con in enumerate(cons):
                row = self.lepton_rows[con][0]
                starts.append(nnz)
                idx_parts.append(column[row.idx])
                val_parts.append(row.coef)
                nnz += row.idx.size
                lb = con.lower if con.has_lb() else -highspy.kHighsInf
                ub = con.upper if con.has_ub() else highspy.kHighsInf
                if not is_constant(lb) or not is_constant(ub):  # a limit Param: update it on re-solve
                    self._mutable_helpers.setdefault(con, []).append(_MutableConstraintBounds(
                        lower_expr=lb, upper_expr=ub, pyomo_con=con,
                        con_map=self._pyomo_con_to_solver_con_map, highs=self._solver_model))
                lbs.append(value(lb))
                ubs.append(value(ub))
                self._pyomo_con_to_solver_con_map[con] = first_row + k
                self._solver_con_to_pyomo_con_map[first_row + k] = con
            self._solver_model.addRows(
                len(lbs), np.array(lbs, dtype=np.double), np.array(ubs, dtype=np.double), nnz,
                np.array(starts, dtype=np.int64),
                np.concatenate(idx_parts).astype(np.int64) if idx_parts else np.zeros(0, np.int64),
                np.concatenate(val_parts).astype(np.double) if val_parts else np.zeros(0),
            )

    return RowAwareHighs


# ----------------------------------------------------------------------------- read-outs used by both paths
# Pyomo has no public accessor for the highspy object (needed for callbacks, info and the
# solution vector in one call), so these few reads of private names are kept here too.


def loaded_model(solver: Any) -> Any:
    """The Pyomo model the solver currently holds (None before the first transfer)."""
    return getattr(solver, "_model", None)


def highs_of(solver: Any) -> Any:
    """The ``highspy.Highs`` object behind a Pyomo HiGHS solver."""
    return solver._solver_model


def solution_vector(solver: Any, variables: list[Any], col_value: np.ndarray) -> np.ndarray:
    """HiGHS column values in the order of ``variables``; 0 for a variable HiGHS never saw."""
    colmap = solver._pyomo_var_to_solver_var_map
    cols = np.fromiter((colmap.get(id(v), -1) for v in variables), dtype=np.int64, count=len(variables))
    return np.where(cols >= 0, col_value[np.maximum(cols, 0)], 0.0)
