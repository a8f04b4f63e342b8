"""A head start for HiGHS: a first plan found in numpy before the MIP runs (docs/model.md §6.2).

HiGHS spends its first seconds (presolve, the root LP, its own heuristics) without a plan; on
a large scenario that is most of a short time limit. The plan found here is handed to HiGHS as
its first incumbent (:func:`~.solve.solve_model`), so a user sees a good plan at once and HiGHS
prunes with it from its first node. Nothing here changes what is optimal: the plan is a point
of the same model, checked row by row (:class:`~.rowset.RowSet`) before it is offered.

The steps, each bounded by the time it is given:

1. **LP relaxation** (when it is cheap enough): solved in highspy; its optimum is an upper bound
   on every plan, its values and dual prices guide the greedy.
2. **Greedy**: commitments, must-enter markets and region minimums first, then every column with
   a positive objective coefficient, by LP value then objective per unit of the dual-priced
   limits (without an LP: per unit of each limit's share, re-weighted towards the limits the
   last round filled). A column is taken only if every row it touches stays within its bounds
   or moves towards them; the ratio rows (region budget share, average risk) are repaired after
   the first pass. Growth investment and hires are then filled while they add value; η and u
   of the CVaR are set at their optimum.
3. **Local search**: knapsack moves (take a more valuable column, drop the markets that free the
   violated limits most cheaply) and single-market moves (another mode or year, or out).
4. **Relaxation-induced sub-MIPs** (``sub_mips``, large models): HiGHS on the columns the LP
   uses and the plan's, then on every column of the LP's markets, or fix-and-optimize over
   blocks of them (:func:`improve`) when those are too many; each from the best plan so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .formulation import AllocationModel
from .highs_start import new_highs, offered_start
from .rowset import RowSet, column_bounds, complete_cvar, ordered_investment, plan_objective, relative_gap

# rows whose bound is a shared resource: the density of a column is its objective per unit of these
RESOURCE_FAMILIES = ("budget", "budget_cumulative", "headcount_cap", "net_hires", "talent_cap",
                     "region_max_markets", "region_budget_share")
# rows left out of the move checks: η and u (CVaR) are set at their optimum at the end, the
# floors are checked on the finished plan
DEFERRED_FAMILIES = ("cvar_tail", "min_expected_npv", "min_cvar")
# ratio rows (a region's share of all spend, the average risk): an empty plan meets them, but the
# first market added breaks them; the greedy builds without them, then repairs (:func:`_repair`)
RATIO_FAMILIES = ("region_budget_share", "max_average_risk")
LP_GUIDANCE_MAX_NONZEROS = 4_000_000  # above this the LP relaxation is not solved for guidance
DENSITY_ROUNDS = 2  # greedy orders by resource density, when the LP relaxation was not solved
LP_SHARE = 0.4  # at most this share of the head start's time for the LP relaxation
SEARCH_SHARE = 0.15  # of what is left after the greedy: ejection and local search
# ... when sub-MIPs follow: they do the same work better (2,000 markets: the local search took
# 2.1 s for +0.4 %, the sub-MIP after it 5.2 s for +4.6 %)
SEARCH_SHARE_BEFORE_SUB_MIPS = 0.03
SUB_MIP_GAP = 5e-4  # a sub-MIP stops within this gap of its own bound: the full model's search goes on
LP_POSITIVE = 1e-6  # an LP value above this counts as "used by the LP"
RESTRICTED_FIRST_SHARE = 0.5  # of the time left: the sub-MIP on the LP's columns (the rest: its markets)
MIN_SUB_MIP_SECONDS = 0.05
SUB_MIP_MAX_COLUMNS = 3_000  # a sub-MIP over every column of the LP's markets only up to this size
BLOCK_COLUMNS = 600  # entry columns freed per fix-and-optimize block
BLOCK_SECONDS = 2.0  # time limit of one block's sub-MIP
FILTER_CHUNK = 2_000  # columns of a greedy pass tested at once by _Search.may_fit
MIN_BLOCK_SECONDS = 0.2  # a block is not started with less time left


@dataclass
class HeadStart:
    """A checked plan of the model: the full variable vector and what it took to find it."""

    values: np.ndarray
    objective: float
    seconds: float
    lp_bound: float | None = None  # the LP relaxation's optimum (an upper bound on every plan), when solved
    steps: list[tuple[str, float, float]] = field(default_factory=list)  # (step, objective after it, seconds)


class _Search:
    """A plan under construction: v, the row activities, and feasibility checks of moves."""

    def __init__(self, am: AllocationModel, rows: RowSet, relaxed: tuple[str, ...] = ()):
        self.am = am
        self.rows = rows
        lay = am.layout
        self.families = np.array(rows.family, dtype=object)
        self.n_x = lay.n_x
        self.n_vars = lay.size
        self.indptr, self.indices, self.data = rows.by_column(lay.size)
        self.obj = am.objective_coef
        self.relax(DEFERRED_FAMILIES + relaxed)
        bound = np.maximum(np.abs(np.where(np.isfinite(self.ub), self.ub, 0.0)),
                           np.abs(np.where(np.isfinite(self.lb), self.lb, 0.0)))
        self.tol = 1e-9 * np.maximum(1.0, bound)
        self.col_lb, self.col_ub, _ = column_bounds(am)
        # rows without a negative coefficient: entering markets only fills them (see may_fit)
        self.monotone = np.bincount(rows.row_of, weights=rows.coef < 0, minlength=len(rows)) == 0
        self.market = am.columns.market
        self.v = np.zeros(lay.size)
        self.act = np.zeros(len(rows))
        self.choice = np.full(am.columns.N, -1, dtype=np.int64)  # chosen column per market, -1 none
        self.locked = np.zeros(am.columns.N, dtype=bool)  # committed markets: never moved

    def relax(self, families: tuple[str, ...]) -> None:
        """Check every row except these families' (their bounds set to ±inf) from now on."""
        relaxed = np.isin(self.families, families)
        self.lb = np.where(relaxed, -np.inf, self.rows.lb)
        self.ub = np.where(relaxed, np.inf, self.rows.ub)

    def violated(self) -> np.ndarray:
        """Rows (of those checked) whose activity is outside their bounds."""
        return np.nonzero((self.act > self.ub + self.tol) | (self.act < self.lb - self.tol))[0]

    def column(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.indptr[j], self.indptr[j + 1]
        return self.indices[a:b], self.data[a:b]

    def fits(self, r: np.ndarray, d: np.ndarray) -> bool:
        """Rows r changed by d stay within bounds, or move towards them."""
        new = self.act[r] + d
        return not (np.any((new > self.ub[r] + self.tol[r]) & (d > 0))
                    or np.any((new < self.lb[r] - self.tol[r]) & (d < 0)))

    def may_fit(self, cols: np.ndarray) -> np.ndarray:
        """Per column, False if entering it (0 -> 1) would overfill a row without negative
        coefficients (a budget, a headcount cap): such a row only fills while markets are added,
        so the column cannot fit later in the same pass either. One vectorized test instead of a
        :meth:`try_set` per column: at 10,000 markets most columns of a greedy pass fail it."""
        a = self.indptr[cols]
        lens = self.indptr[cols + 1] - a
        ends = np.cumsum(lens)
        at = np.arange(int(ends[-1]) if ends.size else 0) + np.repeat(a - (ends - lens), lens)
        r, d = self.indices[at], self.data[at]
        over = (d > 0) & self.monotone[r] & (self.act[r] + d > self.ub[r] + self.tol[r])
        return np.bincount(np.repeat(np.arange(cols.size), lens)[over], minlength=cols.size) == 0

    def move(self, changes: list[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
        """The rows and activity changes of setting each variable j to value (from its current)."""
        parts_r, parts_d = [], []
        for j, value in changes:
            r, a = self.column(j)
            parts_r.append(r)
            parts_d.append(a * (value - self.v[j]))
        r = np.concatenate(parts_r)
        d = np.concatenate(parts_d)
        if len(changes) > 1:
            r, inverse = np.unique(r, return_inverse=True)
            d = np.bincount(inverse, weights=d, minlength=r.size)
        return r, d

    def apply(self, changes: list[tuple[int, float]], r: np.ndarray, d: np.ndarray) -> None:
        self.act[r] += d
        for j, value in changes:
            self.v[j] = value
            if j < self.n_x:
                i = int(self.market[j])
                if value > 0.5:
                    self.choice[i] = j
                elif self.choice[i] == j:
                    self.choice[i] = -1

    def try_set(self, changes: list[tuple[int, float]]) -> bool:
        r, d = self.move(changes)
        if not self.fits(r, d):
            return False
        self.apply(changes, r, d)
        return True

    def max_step(self, j: int) -> float:
        """The largest value of the (continuous or integer) variable j that keeps its rows feasible."""
        r, a = self.column(j)
        room = self.col_ub[j] - self.v[j]
        up, down = a > 0, a < 0
        if np.any(up):
            room = min(room, float(np.min((self.ub[r[up]] - self.act[r[up]]) / a[up])))
        if np.any(down):
            room = min(room, float(np.min((self.act[r[down]] - self.lb[r[down]]) / -a[down])))
        return max(0.0, room)


# ----------------------------------------------------------------------------- greedy


def _resource_use(search: _Search, weights: np.ndarray) -> np.ndarray:
    """Σ_r weight_r · max(0, a_rk) / |bound_r| per entry column: its weighted share of the limits."""
    rows = search.rows
    scale = np.where(np.isfinite(rows.ub) & (np.abs(rows.ub) > 1e-9), np.abs(rows.ub), 1.0)
    return _priced_use(search, weights / scale)


def _priced_use(search: _Search, price: np.ndarray) -> np.ndarray:
    """Σ_r price_r · max(0, a_rk) per entry column (the rows it uses up, not those it frees)."""
    return search.rows.positive_use(price, search.n_vars)[:search.n_x]


def _resource_weights(rows: RowSet) -> np.ndarray:
    return np.array([1.0 if f in RESOURCE_FAMILIES and np.isfinite(u) else 0.0 for f, u in zip(rows.family, rows.ub)])


def _greedy(am: AllocationModel, rows: RowSet, order: np.ndarray, *, tiers: np.ndarray | None = None,
            levers: np.ndarray | None = None) -> _Search:
    """One greedy pass: commitments, required markets, then ``order`` (best first); the ratio
    rows are repaired after the first pass, then the pass runs again with every row checked.

    ``tiers`` (one number per entry column, smallest first; None = one tier): ``order`` is taken
    tier by tier, each to the end (its later passes too) before the next starts, so a column of
    the first tier that waited for its prerequisite is not crowded out by a later tier's. The
    first tier's columns are all tried, even those whose own objective is not positive (the LP
    enters such a market as a prerequisite, or for its growth levers); later tiers' only if positive.
    ``levers`` (a full variable vector, the LP relaxation's): after the first tier, each growth
    lever is set to its value there, as far as the rows allow, before any later tier's entry.
    """
    s = _Search(am, rows, RATIO_FAMILIES)
    data, sc = am.formulation.data, am.scenario
    for c in sc.commitments:  # §2.5: x = 1, whatever the rows say (an infeasible commitment is HiGHS's to report)
        k = data.column_of(c.market_id, c.mode, c.entry_year)
        if k.size:
            r, d = s.move([(int(k[0]), 1.0)])
            s.apply([(int(k[0]), 1.0)], r, d)
            s.locked[int(s.market[k[0]])] = True
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    for i, m in enumerate(sc.markets):  # §2.1 must_enter: the best column that fits
        if m.must_enter and s.choice[i] < 0:
            for k in sorted(data.columns_of(i).tolist(), key=lambda k: rank[k]):
                if s.try_set([(k, 1.0)]):
                    break
    for region in sc.regions:  # §2.5 region minimums: the best markets of the region that fit
        members = [i for i, m in enumerate(sc.markets) if m.region == region.name]
        missing = region.min_markets - int(np.sum(s.choice[members] >= 0))
        if missing <= 0:
            continue
        candidates = np.concatenate([data.columns_of(i) for i in members]) if members else np.zeros(0, np.int64)
        for k in candidates[np.argsort(rank[candidates])].tolist():
            if missing <= 0:
                break
            if s.choice[s.market[k]] < 0 and s.try_set([(k, 1.0)]):
                missing -= 1
    positive = order[s.obj[order] > 0]
    if tiers is None:
        groups = [positive]
    else:  # the first tier whatever its own objective (a prerequisite, a market whose levers pay)
        first = order[tiers[order] == tiers.min()]
        groups = [first] + [positive[tiers[positive] == t] for t in np.unique(tiers[positive]) if t > tiers.min()]

    ratio = any(f in RATIO_FAMILIES for f in rows.family)
    for n, group in enumerate(groups):
        _add_in_order(s, group)
        if n == 0 and levers is not None:
            _set_levers(s, levers)
        if n == 0 and ratio:  # the ratio rows repaired before any later tier takes the room
            s.relax(DEFERRED_FAMILIES)
            _repair(s)
            _add_in_order(s, group)
    return s


def _set_levers(s: _Search, target: np.ndarray) -> None:
    """Raise each growth lever (§2.3) with a positive objective towards ``target``'s value, best
    first, as far as its rows allow (growth hires whole)."""
    lay = s.am.layout
    levers = np.arange(lay.y_offset, lay.n_offset + lay.n_market.size)
    levers = levers[(s.obj[levers] > 0) & (target[levers] > s.v[levers] + 1e-9)]
    for j in levers[np.argsort(-s.obj[levers], kind="stable")].tolist():
        value = min(float(target[j]), s.v[j] + s.max_step(j) * (1.0 - 1e-9))
        if j >= lay.n_offset:
            value = float(np.floor(value + 1e-9))
        if value > s.v[j] + 1e-12:
            s.try_set([(j, value)])


def _add_in_order(s: _Search, order: np.ndarray) -> None:
    for _ in range(3):  # later passes pick up what a prerequisite or the risk average blocked before
        added = 0
        todo = order[s.choice[s.market[order]] < 0]
        for lo in range(0, todo.size, FILTER_CHUNK):  # the columns that cannot fit, filtered a chunk at a time
            chunk = todo[lo:lo + FILTER_CHUNK]
            for k in chunk[s.may_fit(chunk)].tolist():
                if s.choice[s.market[k]] < 0 and s.try_set([(k, 1.0)]):
                    added += 1
        if not added:
            break


def _repair(s: _Search) -> None:
    """Drop entered markets until every checked row holds: each time the one that gives up the
    least objective per unit of violation it removes (a ratio row over its bound: a region's
    budget share, the average risk)."""
    while True:
        bad = s.violated()
        if bad.size == 0:
            return
        excess = np.maximum(s.act[bad] - s.ub[bad], 0.0) + np.maximum(s.lb[bad] - s.act[bad], 0.0)
        best, best_score = None, np.inf
        for i in np.nonzero((s.choice >= 0) & ~s.locked)[0].tolist():
            k = int(s.choice[i])
            r, d = s.move([(k, 0.0)])
            pos = np.searchsorted(bad, r)
            hit = (pos < bad.size) & (bad[np.minimum(pos, bad.size - 1)] == r)
            if not np.any(hit):
                continue
            sign = np.where(s.act[bad[pos[hit]]] > s.ub[bad[pos[hit]]], -1.0, 1.0)  # over ub: d must be < 0
            relief = float(np.sum(np.minimum(np.maximum(sign * d[hit], 0.0), excess[pos[hit]])))
            if relief <= 0:
                continue
            score = max(s.obj[k], 0.0) / relief
            if score < best_score:
                best, best_score = k, score
        if best is None:
            return  # nothing removable helps: the finished plan fails the check and is not offered
        r, d = s.move([(best, 0.0)])
        s.apply([(best, 0.0)], r, d)


def _fill_levers(s: _Search) -> None:
    """Growth investment and growth hires (§2.3) with a positive objective coefficient, best first."""
    lay = s.am.layout
    levers = np.arange(lay.y_offset, lay.n_offset + lay.n_market.size)
    levers = levers[s.obj[levers] > 0]
    for j in levers[np.argsort(-s.obj[levers], kind="stable")].tolist():
        step = s.max_step(j)
        value = float(np.floor(s.v[j] + step + 1e-9)) if j >= lay.n_offset else s.v[j] + step * (1.0 - 1e-9)
        if value > s.v[j] + 1e-12:
            s.try_set([(j, value)])


def _eject_search(s: _Search, halt: Callable[[], bool]) -> int:
    """Knapsack moves: take a more valuable column k (an unentered market, or a better column of an
    entered one) even if it does not fit, and make room by dropping the entered markets that
    free the most of the violated limits per unit of objective, while the objective still gains.
    Returns the moves kept."""
    obj = s.obj
    kept = 0
    candidates = np.nonzero(obj[:s.n_x] > 0)[0]
    candidates = candidates[np.argsort(-obj[candidates], kind="stable")]
    for k in candidates.tolist():
        if halt():
            break
        i = int(s.market[k])
        current = int(s.choice[i])
        if s.locked[i] or current == k:
            continue
        gain = obj[k] - (obj[current] if current >= 0 else 0.0)
        if gain <= 1e-9:
            continue
        changes = ([(current, 0.0)] if current >= 0 else []) + [(k, 1.0)]
        r, d = s.move(changes)
        if s.fits(r, d):
            s.apply(changes, r, d)
            kept += 1
            continue
        saved = (s.v.copy(), s.act.copy(), s.choice.copy())
        s.apply(changes, r, d)
        lost, ok = 0.0, False
        blocked = {i}
        while True:
            bad = s.violated()
            if bad.size == 0:
                ok = True
                break
            entered = np.nonzero((s.choice >= 0) & ~s.locked)[0]
            entered = entered[~np.isin(entered, list(blocked))]
            if entered.size == 0:
                break
            cols = s.choice[entered]
            over = s.act[bad] > s.ub[bad]
            excess = np.where(over, s.act[bad] - s.ub[bad], s.lb[bad] - s.act[bad])
            block = s.rows.block(bad, cols, s.n_vars)  # (bad rows, entered markets' columns)
            relief = np.minimum(np.maximum(np.where(over[:, None], block, -block), 0.0), excess[:, None]).sum(axis=0)
            useful = relief > 0
            if not np.any(useful):
                break
            score = np.where(useful, np.maximum(obj[cols], 0.0) / np.where(useful, relief, 1.0), np.inf)
            j = int(cols[int(np.argmin(score))])
            if lost + max(obj[j], 0.0) >= gain - 1e-9:
                break
            r, d = s.move([(j, 0.0)])
            if not s.fits(r, d):  # dropping it breaks something else (a prerequisite, a minimum)
                blocked.add(int(s.market[j]))
                continue
            s.apply([(j, 0.0)], r, d)
            lost += obj[j]
        if ok and gain - lost > 1e-9:
            kept += 1
        else:
            s.v, s.act, s.choice = saved
    return kept


def _local_search(s: _Search, halt: Callable[[], bool]) -> int:
    """Move single markets to a better column (or out) while that improves; returns the moves made."""
    data = s.am.formulation.data
    moves, improved = 0, True
    markets = np.nonzero(data.end > data.start)[0].tolist()
    while improved and not halt():
        improved = False
        for i in markets:
            if s.locked[i]:
                continue
            current = int(s.choice[i])
            base = s.obj[current] if current >= 0 else 0.0
            columns = data.columns_of(i)
            better = columns[s.obj[columns] > base + 1e-9]
            options = better[np.argsort(-s.obj[better])].tolist()
            if current >= 0 and base < -1e-9:
                options.append(-1)
            for k in options:
                changes = [(current, 0.0)] if current >= 0 else []
                if k >= 0:
                    changes.append((k, 1.0))
                if s.try_set(changes):
                    moves += 1
                    improved = True
                    break
            if halt():
                break
    return moves


# ----------------------------------------------------------------------------- LP guidance


def lp_relaxation(am: AllocationModel, rows: RowSet, time_limit: float,
                  should_stop: Callable[[], bool] | None = None,
                  presolve: bool = True) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(column values, row duals, optimum) of the LP relaxation, or None (not solved in time).

    Its optimum (constant included) bounds every plan of the model from above. ``presolve``
    False: HiGHS's simplex without its presolve (10,000 markets: 13.6 s against 21.0 s with it).
    """
    import highspy

    h = _highs_model(am, rows, integer=False)
    h.setOptionValue("time_limit", max(time_limit, 0.01))
    if not presolve:
        h.setOptionValue("presolve", "off")
    _interrupt_when(h.cbSimplexInterrupt, should_stop)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    sol = h.getSolution()
    return (np.asarray(sol.col_value, dtype=float), np.asarray(sol.row_dual, dtype=float),
            float(h.getInfo().objective_function_value) + am.objective_constant)


def _interrupt_when(callback: Any, should_stop: Callable[[], bool] | None) -> None:
    """Interrupt the run of this HiGHS callback's instance when ``should_stop`` says so (a cancel)."""
    if should_stop is None:
        return

    def poll(e: Any) -> None:
        if should_stop():
            e.interrupt()
    callback.subscribe(poll)


def _highs_model(am: AllocationModel, rows: RowSet, integer: bool) -> Any:
    """The model in a fresh highspy instance (maximize the §2.6 objective, without its constant)."""
    import highspy

    h = new_highs()
    lb, ub, integers = column_bounds(am)  # ±inf is HiGHS's infinity (highspy.kHighsInf == inf)
    n = lb.size
    h.addVars(n, lb, ub)
    h.changeColsCost(n, np.arange(n, dtype=np.int32), np.asarray(am.objective_coef, dtype=float))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    if integer and integers.size:
        h.changeColsIntegrality(integers.size, integers, np.full(integers.size, highspy.HighsVarType.kInteger))
    if len(rows):
        starts = rows.starts.astype(np.int32)
        h.addRows(len(rows), rows.lb, rows.ub, int(rows.idx.size), starts, rows.idx.astype(np.int32),
                  rows.coef.astype(float))
    return h


# ----------------------------------------------------------------------------- the head start


def _finish(s: _Search, rows: RowSet) -> tuple[np.ndarray, float] | None:
    """The finished plan of a search (see :func:`_checked_plan`)."""
    return _checked_plan(s.am, rows, s.v)


def _checked_plan(am: AllocationModel, rows: RowSet, v: np.ndarray) -> tuple[np.ndarray, float] | None:
    """(plan, objective) of ``v`` if it passes every row of the model, else None: the CVaR
    variables completed, and the growth investment split in segment order (:func:`ordered_investment`:
    the same spend, never less return), the split the result reports and HiGHS's optimal plans
    have. Every plan of the head start, a greedy's or a sub-MIP's, is finished here."""
    plain = v.copy()
    complete_cvar(am, plain)
    ordered = ordered_investment(am, v)
    if plan_objective(am, ordered) >= plan_objective(am, plain) and rows.feasible(ordered):
        return ordered, plan_objective(am, ordered)
    if not rows.feasible(plain):
        return None
    return plain, plan_objective(am, plain)


class _Clock:
    def __init__(self, seconds: float, should_stop: Callable[[], bool] | None):
        self.started = time.perf_counter()
        self.deadline = self.started + max(seconds, 0.0)
        self.should_stop = should_stop

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def over(self) -> bool:
        return self.left() <= 0 or (self.should_stop is not None and self.should_stop())


def head_start(am: AllocationModel, time_budget: float, *, rows: RowSet | None = None,
               should_stop: Callable[[], bool] | None = None,
               on_plan: Callable[[HeadStart], None] | None = None, sub_mips: bool = True,
               whole: bool = False, target_gap: float | None = None) -> HeadStart | None:
    """A checked plan within about ``time_budget`` seconds, or None (nothing feasible found).

    ``on_plan`` hears of the first plan and of each improvement (the progress stream);
    ``sub_mips`` False stops after the greedy and the local search. ``whole``: this is the whole
    solve (a model too large for HiGHS's own search, docs/model.md §6.2): the LP relaxation is
    solved at any size (its optimum is the only bound), and fix-and-optimize uses every second
    left, with or without the LP. ``target_gap``: stop as soon as a plan is within this gap of
    the LP relaxation's bound (the solve's own gap: nothing is left to prove).
    """
    clock = _Clock(time_budget, should_stop)
    rows = RowSet.of_model(am) if rows is None else rows
    if am.layout.n_x == 0:
        return None
    steps: list[tuple[str, float, float]] = []
    nx = am.layout.n_x
    lp = None
    if whole or rows.idx.size <= LP_GUIDANCE_MAX_NONZEROS:
        lp = lp_relaxation(am, rows, LP_SHARE * time_budget, should_stop, presolve=not whole)
        if lp is not None:
            steps.append(("lp relaxation (upper bound)", lp[2], clock.elapsed()))
    lp_bound = lp[2] if lp is not None else None

    def enough(objective: float) -> bool:
        return lp_bound is not None and target_gap is not None and relative_gap(objective, lp_bound) <= target_gap

    probe = _Search(am, rows)
    best: tuple[np.ndarray, float, _Search] | None = None
    # every greedy plan's entry columns: the first sub-MIP frees them all (a wider neighbourhood
    # than the best plan's alone; see _restricted_mips)
    greedy_columns = np.zeros(nx, dtype=bool)

    def run_greedy(name: str, order: np.ndarray, **how: Any) -> _Search:
        nonlocal best
        s = _greedy(am, rows, order, **how)
        _fill_levers(s)
        finished = _finish(s, rows)
        if finished is not None:
            greedy_columns[finished[0][:nx] > 0.5] = True
            steps.append((f"greedy ({name})", finished[1], clock.elapsed()))
            if best is None or finished[1] > best[1]:
                best = (finished[0], finished[1], s)
        return s

    if lp is not None:  # the LP's values first, then objective per unit of the dual-priced limits
        density = probe.obj[:nx] / np.maximum(_priced_use(probe, np.abs(lp[1])), 1e-12)
        x_lp = np.round(lp[0][:nx], 6)
        order = np.lexsort((-density, -x_lp))
        # LP rounding: the LP's whole entries first (to the end, prerequisites included), its
        # growth levers next, then its fractional entries and the rest in the same order. On
        # yearly-10000-s0 this plan is 0.36 % below the LP bound, the plain pass's (below) 5.6 %;
        # on yearly-2000-s0 1.81 % against 1.64 %: both run unless the first is good enough.
        run_greedy("lp rounding", order, tiers=np.where(x_lp >= 1.0 - 1e-6, 0, np.where(x_lp > 1e-6, 1, 2)),
                   levers=lp[0])
        if best is None or not enough(best[1]):
            run_greedy("lp order", order)
    else:  # objective per unit of the limits' shares; the next round weighs the limits the last plan filled
        weights = _resource_weights(rows)
        bound = np.where(np.isfinite(rows.ub) & (np.abs(rows.ub) > 1e-9), np.abs(rows.ub), 1.0)
        for round_ in range(1, DENSITY_ROUNDS + 1):
            if best is not None and clock.over:
                break
            use = np.maximum(_resource_use(probe, weights), 1e-12)
            s = run_greedy(f"density round {round_}", np.argsort(-probe.obj[:nx] / use, kind="stable"))
            weights = weights * (1.0 + np.clip(s.act / bound, 0.0, 1.0) ** 4)
    if best is None:
        return None
    if on_plan is not None:  # the greedy's plan at once: a user sees a plan while the search goes on
        on_plan(HeadStart(best[0], best[1], clock.elapsed(), lp_bound, list(steps)))
    if enough(best[1]):
        return HeadStart(best[0], best[1], clock.elapsed(), lp_bound, steps)
    s = best[2]
    share = SEARCH_SHARE_BEFORE_SUB_MIPS if sub_mips and lp is not None else SEARCH_SHARE
    search_deadline = time.perf_counter() + share * max(clock.left(), 0.0)

    def halt() -> bool:
        return time.perf_counter() >= search_deadline or (should_stop is not None and should_stop())

    moves = _eject_search(s, halt)
    if moves:
        positive = np.nonzero(s.obj[:nx] > 0)[0]
        _add_in_order(s, positive[np.argsort(-s.obj[positive])])
    moves += _local_search(s, halt)
    if moves:
        _fill_levers(s)
        finished = _finish(s, rows)
        if finished is not None and finished[1] > best[1]:
            best = (finished[0], finished[1], s)
        steps.append((f"local search ({moves} moves)", best[1], clock.elapsed()))
    plan = HeadStart(best[0], best[1], clock.elapsed(), lp_bound, steps)
    if on_plan is not None and moves:
        on_plan(plan)
    if clock.over or not sub_mips or enough(plan.objective):
        return plan
    if lp is None:
        if not whole:
            return plan
        plan = improve(am, plan, clock.left(), rows=rows, should_stop=clock.should_stop, on_plan=on_plan,
                       started=clock.started)
        plan.seconds = clock.elapsed()
        return plan
    return _restricted_mips(am, rows, plan, lp[0], clock, on_plan, enough, also=greedy_columns)


def _restricted_mips(am: AllocationModel, rows: RowSet, plan: HeadStart, x_lp: np.ndarray, clock: _Clock,
                     on_plan: Callable[[HeadStart], None] | None,
                     enough: Callable[[float], bool] = lambda _objective: False,
                     also: np.ndarray | None = None) -> HeadStart:
    """Relaxation-induced sub-MIPs, each from the best plan so far (so never worse):

    (a) the entry columns the LP relaxation uses, and the plan's own, and ``also`` (a mask over
        the entry columns: the other greedy plans' columns);
    (b) every column of a market the LP uses, and of the plan's markets, when that is at most
        :data:`SUB_MIP_MAX_COLUMNS` columns; else fix-and-optimize (:func:`improve`) over blocks of
        those markets for the time left.
    """
    nx = am.layout.n_x
    market = am.columns.market
    chosen = plan.values[:nx] > 0.5
    in_plan = np.zeros(am.columns.N, dtype=bool)
    in_plan[market[chosen]] = True
    lp_mass = np.bincount(market, weights=x_lp[:nx], minlength=am.columns.N)
    sub = _SubMip(am, rows, clock.should_stop)

    def attempt(name: str, free_x: np.ndarray, limit: float) -> None:
        step = f"sub-MIP on {name} ({int(free_x.sum())} of {nx} columns)"

        def better(found: tuple[np.ndarray, float] | None) -> None:
            nonlocal plan
            if found is not None and found[1] > plan.objective + 1e-9 * max(1.0, abs(plan.objective)):
                steps = [s for s in plan.steps if s[0] != step]  # one entry per sub-MIP: its best plan so far
                plan = HeadStart(found[0], found[1], clock.elapsed(), plan.lp_bound,
                                 [*steps, (step, found[1], clock.elapsed())])
                if on_plan is not None:
                    on_plan(plan)

        better(sub.solve(_free_mask(am, free_x), plan.values, limit, enough, on_found=better))

    # the other greedy plans' columns widen the neighbourhood: on yearly-2000-s0 (60 s) the LP
    # rounding plan alone with the LP's columns (666) gave a sub-MIP that stopped at 73,552.5
    # after 4 s and 73,594.5 after fix-and-optimize; the plain pass's plan (739 columns) 73,686.5
    # and 73,688.5
    free = (x_lp[:nx] > LP_POSITIVE) | chosen | (also if also is not None else False)
    attempt("the columns the LP uses", free, clock.left() * RESTRICTED_FIRST_SHARE)
    markets = (lp_mass > LP_POSITIVE) | in_plan
    if enough(plan.objective) or clock.over:
        pass
    elif int(np.sum(markets[market])) <= SUB_MIP_MAX_COLUMNS:
        attempt("the markets the LP uses", markets[market], clock.left())
    else:
        plan = improve(am, plan, clock.left(), rows=rows, should_stop=clock.should_stop, on_plan=on_plan,
                       markets=np.nonzero(markets)[0], sub=sub, started=clock.started, enough=enough)
    plan.seconds = clock.elapsed()
    return plan


class _SubMip:
    """Sub-MIPs of the model: :meth:`solve` keeps some variables free, holds every other one at a
    given plan's value, and lets HiGHS optimize the free ones from that plan (the start, so the
    answer is never worse). The sub-model holds only the free columns and the rows they touch
    (the held values folded into the row bounds): at 2,000 markets a sub-MIP over a few thousand
    columns then costs HiGHS a fraction of a second to set up instead of a presolve of the whole
    model. Returns a checked plan of the whole model, or None."""

    def __init__(self, am: AllocationModel, rows: RowSet, should_stop: Callable[[], bool] | None):
        self.am, self.rows, self.should_stop = am, rows, should_stop
        n = am.layout.size
        self.indptr, self.indices, self.data = rows.by_column(n)
        lb, ub, integers = column_bounds(am)
        self.lb, self.ub = lb, ub
        self.is_integer = np.zeros(n, dtype=bool)
        self.is_integer[integers] = True

    def solve(self, free: np.ndarray, start: np.ndarray, time_limit: float,
              enough: Callable[[float], bool] | None = None,
              on_found: Callable[[tuple[np.ndarray, float]], None] | None = None) -> tuple[np.ndarray, float] | None:
        """``free``: a boolean mask over the variables; the others are held at ``start``.
        ``enough``: stop once the whole plan's objective satisfies it (within the solve's gap).
        ``on_found``: hears of each better plan HiGHS finds on the way, as a checked plan of the
        whole model (a long sub-MIP would otherwise show nothing until it ends)."""
        import highspy

        if time_limit < MIN_SUB_MIP_SECONDS or not np.any(free):
            return None
        rows = self.rows
        held = np.where(free, 0.0, start)
        act, _ = rows.activity(held)
        cols = np.nonzero(free)[0]
        counts = self.indptr[cols + 1] - self.indptr[cols]
        take = np.concatenate([np.arange(self.indptr[c], self.indptr[c + 1]) for c in cols]) if cols.size else np.zeros(0, np.int64)
        entry_rows = self.indices[take]
        used = np.unique(entry_rows)  # rows no free column touches stay as the plan left them (feasible)
        row_pos = np.full(len(rows), -1, dtype=np.int64)
        row_pos[used] = np.arange(used.size)
        h = new_highs()
        h.setOptionValue("mip_rel_gap", SUB_MIP_GAP)
        h.setOptionValue("time_limit", float(time_limit))
        h.addRows(used.size, rows.lb[used] - act[used], rows.ub[used] - act[used],  # ±inf stays ±inf
                  0, np.zeros(used.size, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0))
        starts = np.zeros(cols.size, dtype=np.int32)
        if cols.size > 1:
            starts[1:] = np.cumsum(counts)[:-1]
        h.addCols(cols.size, np.asarray(self.am.objective_coef[cols], dtype=float), self.lb[cols], self.ub[cols],
                  int(take.size), starts, row_pos[entry_rows].astype(np.int32), self.data[take].astype(float))
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        ints = np.nonzero(self.is_integer[cols])[0].astype(np.int32)
        if ints.size:
            h.changeColsIntegrality(ints.size, ints, np.full(ints.size, highspy.HighsVarType.kInteger))
        _interrupt_when(h.cbMipInterrupt, self.should_stop)
        if enough is not None:  # the held part of the objective is fixed: the whole plan's is known
            held_objective = float(self.am.objective_coef @ held) + self.am.objective_constant

            def proven(e: Any) -> None:
                incumbent = e.data_out.mip_primal_bound
                if np.isfinite(incumbent) and enough(float(incumbent) + held_objective):
                    e.interrupt()
            h.cbMipInterrupt.subscribe(proven)

        def whole(sub_values: Any) -> tuple[np.ndarray, float] | None:
            """The checked plan of the whole model: ``start`` with the sub-model's values put in."""
            w = start.copy()
            w[cols] = np.asarray(sub_values, dtype=float)
            w[self.is_integer] = np.round(w[self.is_integer])
            return _checked_plan(self.am, rows, w)

        if on_found is not None:
            def improving(e: Any) -> None:
                if len(e.data_out.mip_solution) == cols.size and (found := whole(e.data_out.mip_solution)) is not None:
                    on_found(found)
            h.cbMipImprovingSolution.subscribe(improving)
        with offered_start(h, start[cols]):  # a full vector of the sub-model (see .highs_start)
            h.run()
        if int(h.getInfo().primal_solution_status) != 2:
            return None
        return whole(h.getSolution().col_value)


# ----------------------------------------------------------------------------- fix-and-optimize


def improve(am: AllocationModel, start: HeadStart, time_budget: float, *, rows: RowSet | None = None,
            should_stop: Callable[[], bool] | None = None,
            on_plan: Callable[[HeadStart], None] | None = None, seed: int = 0,
            markets: np.ndarray | None = None, sub: _SubMip | None = None, started: float | None = None,
            enough: Callable[[float], bool] | None = None) -> HeadStart:
    """Fix-and-optimize from ``start``: HiGHS re-optimizes one block of markets at a time, every
    other market fixed at the current plan (and the current plan given as its start, so a block
    never makes the plan worse). Blocks are random groups of markets, sized so that a block's
    sub-MIP has about :data:`BLOCK_COLUMNS` entry columns. Returns the best plan (``start``
    itself if nothing better was found); ``on_plan`` hears of each improvement. ``markets``: the
    markets blocks are drawn from (default every market); ``started``: the clock of the plan's
    steps (default now). ``enough``: stop once the plan's objective satisfies it.
    """
    clock = _Clock(time_budget, should_stop)
    origin = clock.started if started is None else started
    rows = RowSet.of_model(am) if rows is None else rows
    lay, data = am.layout, am.formulation.data
    owner = np.full(lay.size, -1, dtype=np.int64)  # the market of each variable; -1: η, u, zero (never fixed)
    owner[:lay.n_x] = am.columns.market
    owner[lay.y_offset:lay.n_offset] = lay.y_market
    owner[lay.n_offset:lay.n_offset + lay.n_market.size] = lay.n_market
    candidates = np.zeros(am.columns.N, dtype=bool)
    candidates[np.arange(am.columns.N) if markets is None else markets] = True
    movable = np.nonzero(candidates & (data.end > data.start) & ~_locked_markets(am))[0]
    if movable.size == 0:
        return start
    block = int(min(movable.size, max(8, BLOCK_COLUMNS // max(1.0, lay.n_x / am.columns.N))))
    rng = np.random.default_rng(seed)
    sub = _SubMip(am, rows, should_stop) if sub is None else sub
    best, tries = start, 0
    while clock.left() >= MIN_BLOCK_SECONDS and not clock.over:
        if enough is not None and enough(best.objective):
            break
        if tries % max(1, movable.size // block) == 0:
            rng.shuffle(movable)
        chosen = np.take(movable, np.arange(tries * block, (tries + 1) * block), mode="wrap")
        tries += 1
        found = sub.solve(np.isin(owner, chosen) | (owner < 0), best.values, min(clock.left(), BLOCK_SECONDS), enough)
        if found is not None and found[1] > best.objective + 1e-9 * max(1.0, abs(best.objective)):
            now = time.perf_counter() - origin
            best = HeadStart(found[0], found[1], now, start.lp_bound,
                             [*best.steps, (f"fix-and-optimize block {tries} ({block} markets)", found[1], now)])
            if on_plan is not None:
                on_plan(best)
    best.seconds = time.perf_counter() - origin
    return best


def _free_mask(am: AllocationModel, free_x: np.ndarray) -> np.ndarray:
    """Free entry columns ``free_x``, the levers of their markets, and η, u (never held)."""
    lay = am.layout
    markets = np.zeros(am.columns.N, dtype=bool)
    markets[am.columns.market[free_x]] = True
    free = np.ones(lay.size, dtype=bool)
    free[:lay.n_x] = free_x
    free[lay.y_offset:lay.n_offset] = markets[lay.y_market]
    free[lay.n_offset:lay.n_offset + lay.n_market.size] = markets[lay.n_market]
    free[lay.zero_index] = False
    return free


def _locked_markets(am: AllocationModel) -> np.ndarray:
    locked = np.zeros(am.columns.N, dtype=bool)
    for c in am.scenario.commitments:
        locked[am.formulation.data.index_of[c.market_id]] = True
    return locked
