"""A built model's rows as flat numpy arrays: activity, feasibility, the sparse matrix, HiGHS.

Shared by the what-if re-solves (:mod:`.whatif`), the head start (:mod:`.heuristic`) and the
solve's self-check (:mod:`.solve`): one reading of "is this vector a plan of this model".
The rows are :attr:`AllocationModel.rows` (docs/model.md §4 names), the vector is the global
variable layout of :class:`~.formulation.VariableLayout`.
"""

from __future__ import annotations

from collections.abc import Collection
import numpy as np

from .formulation import AllocationModel, Row


class RowSet:
    """Every row of a model as flat arrays, for activity, feasibility and binding checks in numpy."""

    def __init__(self, rows: list[Row]):
        self.names = [r.name for r in rows]
        self.position = {r.name: k for k, r in enumerate(rows)}
        self.family = [r.family for r in rows]
        sizes = np.array([r.idx.size for r in rows], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if rows else np.zeros(0, np.int64)
        self.idx = np.concatenate([r.idx for r in rows]) if rows else np.zeros(0, np.int64)
        self.coef = np.concatenate([r.coef for r in rows]) if rows else np.zeros(0)
        self.sizes = sizes
        self.row_of = np.repeat(np.arange(len(rows)), sizes)
        self.lb = np.array([-np.inf if r.lb is None else r.lb for r in rows], dtype=float)
        self.ub = np.array([np.inf if r.ub is None else r.ub for r in rows], dtype=float)
        self._by_column: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    @classmethod
    def of_model(cls, am: AllocationModel) -> RowSet:
        """The rows of a built model with its limits as they stand now: a limit row's bound is
        its mutable Param ``limit[name]``, which a sweep may have moved since the model was built
        (a model not yet made in Pyomo has its formulation's limits)."""
        rows = cls(am.rows)
        if not am.materialised:
            return rows
        limit = am.model.limit
        for k, row in enumerate(am.rows):
            if row.limit:
                value = float(limit[row.name].value)
                if row.lb is not None:
                    rows.lb[k] = value
                else:
                    rows.ub[k] = value
        return rows

    def __len__(self) -> int:
        return len(self.names)

    def activity(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Σ coef·v, Σ |coef·v|) per row."""
        terms = self.coef * v[self.idx]
        act = np.zeros(len(self.names))
        scale = np.zeros(len(self.names))
        np.add.at(act, self.row_of, terms)
        np.add.at(scale, self.row_of, np.abs(terms))
        return act, scale

    def tolerance(self, scale: np.ndarray) -> np.ndarray:
        bound = np.where(np.isfinite(self.ub), np.abs(self.ub), np.where(np.isfinite(self.lb), np.abs(self.lb), 0.0))
        return 1e-6 * np.maximum(1.0, np.maximum(bound, scale))

    def violations(self, v: np.ndarray, lb: np.ndarray | None = None, ub: np.ndarray | None = None) -> list[str]:
        """The names of the rows v violates (beyond the tolerance)."""
        act, scale = self.activity(v)
        tol = self.tolerance(scale)
        lb = self.lb if lb is None else lb
        ub = self.ub if ub is None else ub
        bad = np.nonzero((act > ub + tol) | (act < lb - tol))[0]
        return [self.names[k] for k in bad.tolist()]

    def feasible(self, v: np.ndarray, lb: np.ndarray | None = None, ub: np.ndarray | None = None) -> bool:
        return not self.violations(v, lb, ub)

    def binding(self, v: np.ndarray, families: Collection[str]) -> set[str]:
        """The rows of these families at their bound in v."""
        act, scale = self.activity(v)
        tol = self.tolerance(scale)
        out = set()
        for k, family in enumerate(self.family):
            if family in families and (abs(act[k] - self.ub[k]) <= tol[k] or abs(act[k] - self.lb[k]) <= tol[k]):
                out.add(self.names[k])
        return out

    def by_column(self, n_vars: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The constraint matrix column by column (CSC): (column starts, row of each entry, coefficient).

        Computed once per row set (every greedy pass and the sub-MIPs read it; at 2,000 markets
        the sort is a tenth of a second); the arrays are shared, not to be written to.
        """
        cached = self._by_column.get(n_vars)
        if cached is None:
            order = np.argsort(self.idx, kind="stable")
            starts = np.zeros(n_vars + 1, dtype=np.int64)
            np.cumsum(np.bincount(self.idx, minlength=n_vars), out=starts[1:])
            cached = self._by_column[n_vars] = (starts, self.row_of[order], self.coef[order])
        return cached

    def block(self, rows: np.ndarray, columns: np.ndarray, n_vars: int) -> np.ndarray:
        """The dense submatrix of these rows and columns (rows x columns)."""
        where = np.full(n_vars, -1, dtype=np.int64)
        where[columns] = np.arange(columns.size)
        out = np.zeros((rows.size, columns.size))
        for a, r in enumerate(rows.tolist()):
            lo, hi = self.starts[r], self.starts[r] + self.sizes[r]
            at = where[self.idx[lo:hi]]
            hit = at >= 0
            out[a, at[hit]] = self.coef[lo:hi][hit]
        return out

    def positive_use(self, price: np.ndarray, n_vars: int) -> np.ndarray:
        """Σ_r price_r · max(0, a_rj) per variable j."""
        return np.bincount(self.idx, weights=np.maximum(self.coef, 0.0) * price[self.row_of], minlength=n_vars)


def column_bounds(am: AllocationModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, upper, integer column indices) of the global variable vector (§2.1, §2.3, §2.6)."""
    lay = am.layout
    lb, ub = np.zeros(lay.size), np.zeros(lay.size)
    ub[:lay.n_x] = 1.0
    ub[lay.y_offset:lay.n_offset] = lay.y_width
    ub[lay.n_offset:lay.n_offset + lay.n_market.size] = lay.n_max
    if lay.eta_index is not None:
        lb[lay.eta_index], ub[lay.eta_index] = -np.inf, np.inf
        ub[lay.u_index] = np.inf
    return lb, ub, lay.integer_index


def complete_cvar(am: AllocationModel, v: np.ndarray) -> None:
    """eta and u[s] at their best for the plan in v: eta a worst-tail NPV, u = max(0, eta - NPV).

    CVaR_α(η) = η − Σ p_s max(0, η − NPV_s)/(1−α) is concave and piecewise linear in η with
    breakpoints at the NPV_s, so its maximum is at one of them (docs/model.md §2.6).
    """
    eta_index = am.eta_index
    if eta_index is None:
        return
    npv = am.npv_coef @ v  # eta and u carry no NPV coefficient
    prob = am.formulation.data.probability
    alpha = am.scenario.objective.cvar_alpha
    best, best_eta = -np.inf, 0.0
    for eta in npv:
        value = float(eta - np.sum(prob * np.maximum(0.0, eta - npv)) / (1.0 - alpha))
        if value > best:
            best, best_eta = value, float(eta)
    v[eta_index] = best_eta
    v[am.u_index] = np.maximum(0.0, best_eta - npv)


def ordered_investment(am: AllocationModel, v: np.ndarray) -> np.ndarray:
    """The plan with each market-year's growth investment re-split over its segments in order.

    The segments of a market-year are stored in their order, highest return first (§2.3), so
    filling them in order gives the most return for the same spend: every limit on spend still
    holds, and the objective does not fall. HiGHS's optimal plans are split that way; a plan of
    a sub-MIP stopped at its gap may not be, and the result's per-year figures (one total per
    market-year) would then understate what the plan earns. The CVaR variables are re-set."""
    lay = am.layout
    w = v.copy()
    n = lay.y_market.size
    if n == 0:
        return w
    y = w[lay.y_offset:lay.n_offset]
    width = np.asarray(lay.y_width, dtype=float)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = (lay.y_market[1:] != lay.y_market[:-1]) | (lay.y_year[1:] != lay.y_year[:-1])
    group = np.cumsum(new_group) - 1
    total = np.bincount(group, weights=y)
    earlier = np.cumsum(width) - width  # width of every earlier piece ...
    before = earlier - earlier[np.nonzero(new_group)[0]][group]  # ... of the same market-year
    w[lay.y_offset:lay.n_offset] = np.clip(total[group] - before, 0.0, width)
    complete_cvar(am, w)
    return w


def relative_gap(objective: float, bound: float) -> float:
    """HiGHS's relative gap for a maximization: (bound − objective) / max(|objective|, 1e-9), at least 0."""
    return max(bound - objective, 0.0) / max(abs(objective), 1e-9)


def plan_objective(am: AllocationModel, v: np.ndarray) -> float:
    """The maximized objective of docs/model.md §2.6 for the vector v (constant included)."""
    return float(am.objective_coef @ v + am.objective_constant)
