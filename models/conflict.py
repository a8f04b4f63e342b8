"""Why a scenario is infeasible: a minimal set of conflicting limits (docs/model.md §3).

:func:`explain_infeasibility` takes a built :class:`~.formulation.AllocationModel` whose MIP
solve came back infeasible and returns an :class:`~.result.Infeasibility`:

* ``constraints``: a minimal set of conflicting rows, in the names of docs/model.md §4;
* ``explanation``: the same rows in business words, one line each (same order);
* ``relaxations``: limits that would have to move, and to where, for a plan to exist.

Two methods, both run directly in highspy on the numpy rows of :attr:`AllocationModel.rows`
(no Pyomo):

``lp_iis``
    The LP relaxation is already infeasible: HiGHS computes an irreducible infeasible subsystem
    (IIS) of the LP. HiGHS 1.16's default ``iis_strategy`` (``kIisStrategyLight``) only checks
    incompatible bounds and returns a *valid but empty* IIS for conflicts between rows; the
    strategies ``kIisStrategyFromLp | kIisStrategyIrreducible`` do find it, and are tried first
    (then ``Irreducible``, then ``FromLp``). The IIS may lean on ``one_decision`` rows instead of
    business limits, so its business rows are shrunk once more by a deletion filter in the LP
    with every definitional row kept (a handful of LPs). When every strategy comes back empty
    (or names no business row) the elastic method is used instead.
``elastic``
    Only the integer problem is infeasible (or the IIS is empty): the conflict is found by a
    deletion filter on the MIP over the relaxable limits and the ``requires`` rows (every other
    row is kept); see :func:`_deletion_filter`.

In both cases the relaxations come from an *elastic* MIP: every relaxable limit (the §4 limits
budget, budget_cumulative, headcount_cap, net_hires, region_min/max_markets,
region_budget_share, talent_cap, max_average_risk, min_expected_npv, min_cvar, and the
decisions must_enter and commitment) gets a non-negative slack ``s_r`` (``body - s_r <= ub`` or
``body + s_r >= lb``; a must-enter or commitment slack is at most 1, i.e. "need not enter"), and
``Σ_r s_r / scale_r`` is minimised, where ``scale_r`` is the size of the limit
(``max(|limit|, mean |coefficient|)``, 1 for a decision). The set of relaxed limits is then shrunk
by a deletion filter (a limit stays only if the others cannot absorb it) and the elastic MIP is
re-solved on that set for the amounts. ``one_decision`` rows, the helper rows and the variable
bounds are the definition of the decisions: never relaxed, never reported.

Every HiGHS run gets what is left of ``time_limit`` (each phase at most its share of it: IIS,
relaxations, MIP conflict, words; one feasibility check at most ``RUN_CAP``). A filter stopped by
the clock keeps what it has not yet proven redundant, so the answer is still a conflict and the
relaxations still make the scenario feasible, only perhaps not minimal ones.

Public: :func:`explain_infeasibility`, :func:`business_words` (the lines), :func:`relaxation_words`
(one relaxation in words) and :func:`apply_relaxations` (the scenario dict with the limits moved).
"""

from __future__ import annotations

import copy
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np

from .formulation import AllocationModel, Row
from .highs_start import new_highs, offered_start
from .rowset import column_bounds
from .result import Infeasibility, Relaxation
from .scenario import Scenario

__all__ = ["FeasibleAfterAll", "apply_relaxations", "business_words", "explain_infeasibility", "relaxation_words"]

_log = logging.getLogger(__name__)
INF = highspy.kHighsInf
RELAXABLE_FAMILIES = frozenset({
    "budget", "budget_cumulative", "headcount_cap", "net_hires", "region_min_markets", "region_max_markets",
    "region_budget_share", "talent_cap", "max_average_risk", "min_expected_npv", "min_cvar", "must_enter", "commitment",
})
DECISION_FAMILIES = frozenset({"must_enter", "commitment"})  # relaxing = "need not enter"
RATIO_FAMILIES = frozenset({"region_budget_share", "max_average_risk"})  # limit is a fraction, row rhs is 0
COUNT_FAMILIES = frozenset({"headcount_cap", "net_hires", "talent_cap", "region_min_markets", "region_max_markets"})
REPORTED_FAMILIES = RELAXABLE_FAMILIES | {"requires"}  # one_decision and helper rows are never reported
IIS_STRATEGIES = (  # tried in order; the default (kIisStrategyLight = 0) finds no row-vs-row conflict
    int(highspy.IisStrategy.kIisStrategyFromLp) | int(highspy.IisStrategy.kIisStrategyIrreducible),
    int(highspy.IisStrategy.kIisStrategyIrreducible),
    int(highspy.IisStrategy.kIisStrategyFromLp),
)
TOL = 1e-6
ELASTIC_GAP = 1e-4  # relative gap of every MIP here: amounts within 0.01 % of the least violation
# shares of the time limit (docs: every solve stays inside it); a phase may use what earlier ones left
IIS_SHARE, RELAX_SHARE, CONFLICT_SHARE, NEEDS_SHARE = 0.3, 0.5, 0.35, 0.15
RUN_CAP = 0.05  # one feasibility check of a deletion filter: at most this share (unknown = keep the row)


# ----------------------------------------------------------------------------- the model in highspy


class _Clock:
    """The time left: the whole explanation's, or a phase's share of it (:meth:`share`)."""

    def __init__(self, seconds: float, deadline: float | None = None):
        self.total = max(seconds, 0.0)
        self.deadline = time.perf_counter() + self.total if deadline is None else deadline

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    @property
    def expired(self) -> bool:
        return self.left() <= 0.0

    def share(self, fraction: float) -> _Clock:
        """A phase of at most ``fraction`` of the whole time limit, never past this clock's deadline."""
        return _Clock(self.total, min(self.deadline, time.perf_counter() + fraction * self.total))


@dataclass
class _Run:
    status: str  # "optimal" | "feasible" | "infeasible" | "unknown"
    values: np.ndarray | None
    objective: float | None


class _ElasticModel:
    """The model as one highspy instance: original columns, then one slack per relaxable row.

    Slacks start fixed at 0 (the original model); :meth:`configure` opens slacks and drops rows
    (frees their bounds) for each question asked of it.
    """

    def __init__(self, am: AllocationModel, clock: _Clock):
        self.am, self.clock = am, clock
        self.rows: list[Row] = am.rows
        self.n = n = am.layout.size
        self.col_lb, self.col_ub, self.integer = column_bounds(am)  # ±inf is HiGHS's infinity too
        self.row_lb = np.array([-INF if r.lb is None else r.lb for r in self.rows], dtype=float)
        self.row_ub = np.array([INF if r.ub is None else r.ub for r in self.rows], dtype=float)
        self.relaxable = [k for k, r in enumerate(self.rows) if r.family in RELAXABLE_FAMILIES]
        self.slack_of = {row: n + j for j, row in enumerate(self.relaxable)}
        self.slack_cap = np.array([1.0 if self.rows[k].family in DECISION_FAMILIES else INF for k in self.relaxable])
        self.weight = np.array([1.0 / _scale(self.rows[k]) for k in self.relaxable])
        self.h = self._highs()
        self.open: frozenset[int] = frozenset()
        self.dropped: frozenset[int] = frozenset()

    def _highs(self) -> highspy.Highs:
        h = new_highs()
        h.setOptionValue("mip_rel_gap", ELASTIC_GAP)
        m = len(self.relaxable)
        h.addVars(self.n + m, np.r_[self.col_lb, np.zeros(m)], np.r_[self.col_ub, np.zeros(m)])
        if self.integer.size:
            h.changeColsIntegrality(self.integer.size, self.integer,
                                    np.full(self.integer.size, highspy.HighsVarType.kInteger))
        idx, coef, starts, nnz = [], [], [], 0
        for k, r in enumerate(self.rows):
            starts.append(nnz)
            i, c = r.idx, r.coef
            if k in self.slack_of:  # ub-only rows give way upwards, the others (lb, equality) downwards
                sign = -1.0 if r.lb is None else 1.0
                i, c = np.r_[i, self.slack_of[k]], np.r_[c, sign]
            idx.append(i)
            coef.append(c)
            nnz += i.size
        if self.rows:
            h.addRows(len(self.rows), self.row_lb, self.row_ub, nnz, np.array(starts, dtype=np.int32),
                      np.concatenate(idx).astype(np.int32), np.concatenate(coef).astype(float))
        return h

    # -- questions

    def configure(self, open_slacks: Iterable[int] = (), dropped: Iterable[int] = (),
                  cost: np.ndarray | None = None, sense: str = "min") -> None:
        """Open the slacks of these rows, free these rows, set the objective (None: feasibility)."""
        open_slacks, dropped = frozenset(open_slacks), frozenset(dropped)
        if open_slacks != self.open and self.relaxable:
            cols = np.array([self.slack_of[k] for k in self.relaxable], dtype=np.int32)
            ub = np.array([cap if k in open_slacks else 0.0 for k, cap in zip(self.relaxable, self.slack_cap)])
            self.h.changeColsBounds(cols.size, cols, np.zeros(cols.size), ub)
            self.open = open_slacks
        if dropped != self.dropped:
            changed = np.array(sorted(dropped ^ self.dropped), dtype=np.int32)
            lo = np.where(np.isin(changed, list(dropped)), -INF, self.row_lb[changed])
            hi = np.where(np.isin(changed, list(dropped)), INF, self.row_ub[changed])
            for k, low, high in zip(changed.tolist(), lo.tolist(), hi.tolist()):
                self.h.changeRowBounds(k, low, high)
            self.dropped = dropped
        full = np.zeros(self.n + len(self.relaxable))
        if cost is not None:
            full[:cost.size] = cost
        self.h.changeColsCost(full.size, np.arange(full.size, dtype=np.int32), full)
        self.h.changeObjectiveSense(highspy.ObjSense.kMaximize if sense == "max" else highspy.ObjSense.kMinimize)

    def run(self, relax: bool = False, cap: float | None = None, start: np.ndarray | None = None) -> _Run:
        """One HiGHS run in what is left of the (phase) clock, at most ``cap`` of the whole time limit;
        the LP relaxation when ``relax``; ``start``: a feasible point to begin the MIP from."""
        left = self.clock.left()
        if cap is not None:
            left = min(left, cap * self.clock.total)
        if left <= 0:
            return _Run("unknown", None, None)
        self.h.setOptionValue("time_limit", max(left, 1e-3))
        self.h.setOptionValue("solve_relaxation", relax)
        self.h.clearSolver()
        with offered_start(self.h, start):  # not setSolution: see .highs_start
            self.h.run()
        ms = self.h.getModelStatus()
        info = self.h.getInfo()
        if ms == highspy.HighsModelStatus.kOptimal:
            status = "optimal"
        elif ms in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
            return _Run("infeasible", None, None)
        elif info.primal_solution_status == 2:
            status = "feasible"
        else:
            return _Run("unknown", None, None)
        values = np.asarray(self.h.getSolution().col_value, dtype=float)
        return _Run(status, values, float(info.objective_function_value))

    def everything_relaxed(self) -> np.ndarray:
        """A feasible point with every slack open: nothing entered, each limit's slack at its violation."""
        start = np.zeros(self.n + len(self.relaxable))
        for k in self.relaxable:
            lb, ub = self.row_lb[k], self.row_ub[k]
            start[self.slack_of[k]] = max(lb, 0.0) if lb > -INF else max(-ub, 0.0)
        return start

    def slack(self, values: np.ndarray, row: int) -> float:
        return float(values[self.slack_of[row]])

    # -- the IIS of the LP relaxation (a separate, slack-free LP)

    def lp_iis(self) -> tuple[list[int], str]:
        """Rows of an IIS of the LP relaxation, and which strategy found it ([] when none did)."""
        h = new_highs()
        h.addVars(self.n, self.col_lb, self.col_ub)
        starts = np.cumsum([0] + [r.idx.size for r in self.rows[:-1]]).astype(np.int32)
        h.addRows(len(self.rows), self.row_lb, self.row_ub, int(sum(r.idx.size for r in self.rows)), starts,
                  np.concatenate([r.idx for r in self.rows]).astype(np.int32),
                  np.concatenate([r.coef for r in self.rows]).astype(float))
        for strategy in IIS_STRATEGIES:
            if self.clock.expired:
                break
            h.setOptionValue("iis_strategy", strategy)
            h.setOptionValue("iis_time_limit", max(self.clock.left(), 1e-3))
            status, iis = h.getIis()
            if status != highspy.HighsStatus.kError and iis.valid_ and len(iis.row_index_):
                return sorted(int(k) for k in iis.row_index_), _strategy_name(strategy)
        return [], ""


def _strategy_name(strategy: int) -> str:
    names = [k for k, v in highspy.IisStrategy.__members__.items() if int(v) and int(v) & strategy and k != "kIisStrategyMax"]
    return " | ".join(names)


def _scale(row: Row) -> float:
    """The size a violation of this row is measured against (docs: normalised by the limit's scale)."""
    if row.family in DECISION_FAMILIES:
        return 1.0
    limit = row.limit_value
    typical = float(np.mean(np.abs(row.coef))) if row.coef.size else 1.0
    return max(abs(limit) if limit is not None else 0.0, typical, 1e-9)


# ----------------------------------------------------------------------------- filters


def _deletion_filter(candidates: Sequence[int], still_infeasible: Any, clock: _Clock) -> list[int]:
    """The candidates that cannot be left out: groups first (halving), then one by one.

    ``still_infeasible(removed)`` answers whether the property (infeasible / infeasible without
    these slacks) survives removing the set ``removed``; True, False or None (unknown: keep).
    Monotone: removing more never restores it, so the final one-by-one pass leaves a minimal set.
    """
    keep = list(candidates)
    removed: set[int] = set()
    chunk = max(1, len(keep) // 2)
    while True:
        i = 0
        while i < len(keep) and not clock.expired:
            group = keep[i:i + chunk]
            if still_infeasible(removed | set(group)) is True:
                removed |= set(group)
                del keep[i:i + chunk]
            else:
                i += chunk
        if chunk == 1 or clock.expired:
            return keep
        chunk = max(1, chunk // 2)


def _relaxations(em: _ElasticModel) -> tuple[list[Relaxation], dict[int, float]]:
    """Minimum-violation elastic MIP, shrunk to a minimal set of relaxed limits; their amounts."""
    relaxable = em.relaxable
    weights = np.zeros(em.n + len(relaxable))
    weights[[em.slack_of[k] for k in relaxable]] = em.weight
    em.configure(open_slacks=relaxable, cost=weights)
    start = em.everything_relaxed()
    first = em.run(cap=0.6 * RELAX_SHARE, start=start)
    if first.status == "infeasible":
        return [], {}
    # out of time before HiGHS reported a plan (a large model, a short limit): the starting point
    # is itself a valid relaxation (nothing entered, every violated limit moved), which the
    # deletion filter below then shrinks as far as the time allows
    first_values = first.values if first.values is not None else start
    relaxed = [k for k in relaxable if em.slack(first_values, k) > TOL]
    # decisions first: a must-enter or commitment is kept only if no limit can give way instead
    relaxed.sort(key=lambda k: (em.rows[k].family not in DECISION_FAMILIES, -em.slack(first_values, k)))

    def needs_all(removed: set[int]) -> bool | None:
        em.configure(open_slacks=[k for k in relaxed if k not in removed])
        run = em.run(cap=RUN_CAP)
        return None if run.status == "unknown" else run.status == "infeasible"

    minimal = _deletion_filter(relaxed, needs_all, em.clock) if len(relaxed) > 1 else relaxed
    em.configure(open_slacks=minimal, cost=weights)
    final = em.run(cap=0.2 * RELAX_SHARE)
    values = final.values
    if values is None:  # out of time: the first solution is still a valid (larger) relaxation
        values, minimal = first_values, relaxed
    amounts = {k: em.slack(values, k) for k in minimal}
    minimal = [k for k in minimal if amounts[k] > TOL]
    return [_relaxation(em, k, amounts[k], values) for k in sorted(minimal)], amounts


def _relaxation(em: _ElasticModel, k: int, slack: float, values: np.ndarray) -> Relaxation:
    row, sc = em.rows[k], em.am.scenario
    family = row.family
    if family in DECISION_FAMILIES:
        return Relaxation(row.name, 1.0, 0.0, -1.0)
    if family in RATIO_FAMILIES:
        limit = _ratio_limit(sc, row)
        needed = _ceil(_plan_ratio(em.am, row, values[:em.n]) or limit)
        return Relaxation(row.name, limit, needed, needed - limit)
    limit = _limit_in_scenario_units(sc, row)
    if row.lb is not None:  # a minimum / floor gives way downwards
        needed = limit - slack
        needed = float(np.floor(needed + TOL)) if family in COUNT_FAMILIES else _floor(needed)
    else:
        needed = limit + slack
        needed = float(np.ceil(needed - TOL)) if family in COUNT_FAMILIES else _ceil(needed)
    return Relaxation(row.name, limit, needed, needed - limit)


def _ceil(v: float) -> float:
    return float(np.ceil(v * 1e6 - 1e-3) / 1e6)


def _floor(v: float) -> float:
    return float(np.floor(v * 1e6 + 1e-3) / 1e6)


def _limit_in_scenario_units(sc: Scenario, row: Row) -> float:
    """The row's limit as the scenario writes it (net_hires of the first year without the initial staff)."""
    value = float(row.limit_value or 0.0)
    if row.family == "net_hires" and row.key == sc.start_year:
        value -= sc.headcount.initial
    return value


def _ratio_limit(sc: Scenario, row: Row) -> float:
    if row.family == "max_average_risk":
        return float(sc.risk_max_average or 0.0)
    region = next(g for g in sc.regions if g.name == row.key)
    return float(region.max_budget_share or 0.0)


def _spend_vectors(am: AllocationModel, region: str) -> tuple[np.ndarray, np.ndarray]:
    """(total spend, the region's spend) as coefficient vectors over the variable vector (§2.4)."""
    data, lay = am.formulation.data, am.layout
    total = np.zeros(lay.size)
    total[:lay.n_x] = data.spend_x.sum(axis=1)
    total[lay.y_offset:lay.n_offset] = 1.0
    total[lay.n_offset:lay.n_offset + lay.n_market.size] = data.salary_n
    in_region = np.array([m.region == region for m in am.scenario.markets], dtype=bool)
    mask = np.zeros(lay.size, dtype=bool)
    if in_region.size:
        mask[:lay.n_x] = in_region[data.columns.market]
        mask[lay.y_offset:lay.n_offset] = in_region[lay.y_market]
        mask[lay.n_offset:lay.n_offset + lay.n_market.size] = in_region[lay.n_market]
    return total, total * mask


def _plan_ratio(am: AllocationModel, row: Row, v: np.ndarray) -> float | None:
    """A plan's region share of spend, or the average risk of its entered markets."""
    if row.family == "max_average_risk":
        entered = v[:am.n_x]
        count = float(entered.sum())
        return float(am.markets.risk[am.columns.market] @ entered) / count if count > TOL else None
    total, regional = _spend_vectors(am, str(row.key))
    spend = float(total @ v)
    return float(regional @ v) / spend if spend > TOL else None


# ----------------------------------------------------------------------------- the entry point


class FeasibleAfterAll(ValueError):
    """The model a solve called infeasible has a plan: that solve's verdict was numerical trouble."""


def explain_infeasibility(am: AllocationModel, time_limit: float = 30.0) -> Infeasibility:
    """Why the built model ``am`` (whose MIP is infeasible) has no plan: docs/model.md §3.

    Raises :class:`FeasibleAfterAll` (a ``ValueError``) when the model turns out to be feasible.
    """
    clock = _Clock(time_limit)
    em = _ElasticModel(am, clock.share(IIS_SHARE))
    reported = [k for k, r in enumerate(em.rows) if r.family in REPORTED_FAMILIES]
    em.configure()
    method, conflict = "elastic", []
    if em.run(relax=True).status == "infeasible":
        iis_rows, strategy = em.lp_iis()
        _log.debug("LP relaxation infeasible; HiGHS IIS (%s): %d rows", strategy or "none found", len(iis_rows))
        in_iis = [k for k in iis_rows if em.rows[k].family in REPORTED_FAMILIES]
        if in_iis:
            # the IIS may lean on one_decision rows, which are never dropped here: shrink it in the
            # LP with every definitional row kept (cheap: a handful of LPs)
            method = "lp_iis"
            conflict = _conflict(em, in_iis, [k for k in reported if k not in in_iis], relax=True)
    em.clock = clock.share(RELAX_SHARE)
    relaxations, amounts = _relaxations(em)
    if not conflict:
        if not relaxations and amounts == {}:
            em.configure()
            if em.run().status in ("optimal", "feasible"):
                raise FeasibleAfterAll("the scenario is feasible: there is no conflict to explain")
        em.clock = clock.share(CONFLICT_SHARE)
        order = sorted(reported, key=lambda k: k in amounts)  # the relaxed limits last: kept when there is a choice
        conflict = _conflict(em, order, [], relax=False)
    em.clock = clock
    names = [em.rows[k].name for k in conflict]
    return Infeasibility(method=method, constraints=names,
                         explanation=business_words(am, names, _needs(em, conflict, relax=method == "lp_iis")),
                         relaxations=relaxations)


def _conflict(em: _ElasticModel, candidates: list[int], dropped: list[int], relax: bool) -> list[int]:
    """A minimal infeasible subset of ``candidates`` (MIP, or its LP relaxation when ``relax``).

    Rows in ``dropped`` are left out throughout; every other row (one_decision, the helper rows)
    is always kept, as are the variable bounds and, for the MIP, integrality.
    """
    base = set(dropped)

    def infeasible_without(removed: set[int]) -> bool | None:
        em.configure(dropped=base | removed)
        run = em.run(relax=relax, cap=None if relax else RUN_CAP)
        return None if run.status == "unknown" else run.status == "infeasible"

    return sorted(_deletion_filter(candidates, infeasible_without, em.clock))


@dataclass
class Need:
    """What the other members of a conflict require of one limit row (for the business words)."""

    value: float  # at least this (an upper limit) / at most this reachable (a lower limit)
    ratio: float | None = None  # the smallest share / average risk the others allow (ratio limits)


def _needs(em: _ElasticModel, conflict: list[int], relax: bool) -> dict[str, Need]:
    """For each limit in the conflict: the best its row can do when the others hold (MIP, else LP).

    Ratio limits (share of spend, average risk) get the smallest ratio by Dinkelbach's method:
    minimise numerator - q · denominator, set q to the ratio of that plan, until no plan beats q.
    """
    needs: dict[str, Need] = {}
    others = [k for k, r in enumerate(em.rows) if r.family in REPORTED_FAMILIES and k not in conflict]
    for k in conflict:
        row = em.rows[k]
        if row.family in DECISION_FAMILIES or row.family == "requires" or em.clock.expired:
            continue
        if row.family in RATIO_FAMILIES:
            ratio = _smallest_ratio(em, row, [*others, k], relax)
            if ratio is not None:
                needs[row.name] = Need(ratio, ratio)
            continue
        cost = np.zeros(em.n)
        np.add.at(cost, row.idx, row.coef)
        run = _best(em, [*others, k], cost, "min" if row.lb is None else "max", relax)
        if run is not None and run.objective is not None:
            needs[row.name] = Need(run.objective)
    em.configure()
    return needs


def _best(em: _ElasticModel, dropped: list[int], cost: np.ndarray, sense: str, relax: bool) -> _Run | None:
    """Optimise ``cost`` with these rows left out: the MIP; the LP relaxation when ``relax`` and the MIP fails."""
    em.configure(dropped=dropped, cost=cost, sense=sense)
    run = em.run(cap=RUN_CAP)
    if run.status != "optimal" and relax:
        run = em.run(relax=True, cap=RUN_CAP)
    return run if run.values is not None else None


def _ratio_parts(em: _ElasticModel, row: Row) -> tuple[np.ndarray, np.ndarray]:
    """(numerator, denominator) vectors of a ratio limit: region spend / total spend, or risk / entered."""
    am = em.am
    if row.family == "max_average_risk":
        entered = np.zeros(em.n)
        entered[:am.n_x] = 1.0
        risk = np.zeros(em.n)
        risk[:am.n_x] = am.markets.risk[am.columns.market]
        return risk, entered
    total, regional = _spend_vectors(am, str(row.key))
    return regional, total


def _smallest_ratio(em: _ElasticModel, row: Row, dropped: list[int], relax: bool) -> float | None:
    numerator, denominator = _ratio_parts(em, row)
    q = None
    for _ in range(20):
        cost = numerator - (q if q is not None else _ratio_limit(em.am.scenario, row)) * denominator
        run = _best(em, dropped, cost, "min", relax)
        if run is None or run.values is None:
            return q
        v = run.values[:em.n]
        if float(denominator @ v) <= TOL:
            return q
        new = float(numerator @ v) / float(denominator @ v)
        if q is not None and new >= q - 1e-9:
            return q
        q = new
    return q


# ----------------------------------------------------------------------------- business words

_NAME = re.compile(r"^(?P<family>[a-z_]+)(?:\[(?P<key>.*)\])?$")


def _parse(name: str) -> tuple[str, str]:
    m = _NAME.match(name)
    if not m:
        return name, ""
    return m.group("family"), m.group("key") or ""


def money(sc: Scenario, value: float) -> str:
    """``USD 140 million`` in the scenario's currency and money unit."""
    unit = {"units": "", "thousands": " thousand", "millions": " million", "billions": " billion"}[str(sc.money_unit)]
    return f"{sc.currency} {_number(value)}{unit}"


def _number(value: float) -> str:
    if abs(value - round(value)) < 1e-6:
        return f"{round(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) >= 1 else f"{value:.4g}"


def _percent(value: float) -> str:
    return f"{100 * value:.1f}".rstrip("0").rstrip(".") + " %"


def _market(sc: Scenario, market_id: str) -> str:
    m = next((m for m in sc.markets if m.id == market_id), None)
    return market_id if m is None or m.name == m.id else f"{m.name} ({m.id})"


def _joined(names: list[str]) -> str:
    if not names:
        return "the other limits"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _heads(value: float) -> str:
    return f"{_number(value)} {'person' if abs(value - 1) < 1e-9 else 'people'}"


def _markets(value: float) -> str:
    return f"{_number(value)} market{'' if abs(value - 1) < 1e-9 else 's'}"


def business_words(am: AllocationModel, constraints: list[str], needs: dict[str, Need] | None = None) -> list[str]:
    """One line per constraint name, for a finance reader: money in the scenario's currency and
    unit, calendar years, market names; ``needs`` adds what the other members of the conflict require."""
    sc = am.scenario
    needs = needs or {}
    lines = []
    for name in constraints:
        other_names = [c for c in constraints if c != name]
        lines.append(f"{name}: {_describe(sc, name, needs.get(name), _joined(other_names), len(other_names))}")
    return lines


def _describe(sc: Scenario, name: str, need: Need | None, others: str, n_others: int) -> str:  # noqa: C901
    """One family's sentence; ``others`` (``n_others`` names) is the rest of the conflict."""
    family, key = _parse(name)
    who, verb = (others, "need" if n_others > 1 else "needs") if n_others else ("the plan", "needs")
    with_others = f"; with {others}" if n_others else "; even with no other limit"
    if family == "must_enter":
        lo, hi = _window(sc, key)
        window = (f"entry allowed in {lo}" if lo == hi else f"entry allowed {lo}–{hi}") if lo <= hi \
            else "it has no allowed entry year"
        return f"{_market(sc, key)} must be entered ({window})."
    if family == "commitment":
        c = next((c for c in sc.commitments if c.market_id == key), None)
        what = f" by {c.mode.value} in {c.entry_year}" if c else ""
        return f"{_market(sc, key)} is committed: it is entered{what}."
    if family == "requires":
        market, prerequisite, when = key.split(",")
        return (f"{_market(sc, market)} can be active in {when} only if {_market(sc, prerequisite)} "
                f"has been entered by {when}.")
    if family == "one_decision":
        return f"{_market(sc, key)} is entered at most once."
    if family in ("budget", "budget_cumulative", "headcount_cap", "net_hires"):
        year = int(key)
        t = year - sc.start_year
        if family == "budget":
            limit = float(sc.budget.limit[t]) if sc.budget.limit else 0.0
            text = f"the {year} budget allows {money(sc, limit)} of spending"
            need_text = f"at least {money(sc, need.value)} in {year}" if need else ""
        elif family == "budget_cumulative":
            limit = float(sum(sc.budget.limit[:t + 1])) if sc.budget.limit else 0.0
            span = f"{sc.start_year}–{year}" if t else f"{year}"
            text = f"the budget with carry-over allows {money(sc, limit)} of spending over {span}"
            need_text = f"at least {money(sc, need.value)} over {span}" if need else ""
        elif family == "headcount_cap":
            limit = float(sc.headcount.cap[t]) if sc.headcount.cap else 0.0
            text = f"total headcount in {year} is capped at {_heads(limit)}"
            need_text = f"at least {_heads(need.value)} in {year}" if need else ""
        else:
            limit = float(sc.headcount.max_net_hires[t]) if sc.headcount.max_net_hires else 0.0
            start = f" (from an initial staff of {_heads(sc.headcount.initial)})" if t == 0 and sc.headcount.initial else ""
            text = f"net hires in {year} are limited to {_heads(limit)}{start}"
            need_value = need.value - (sc.headcount.initial if t == 0 else 0) if need else 0.0
            need_text = f"at least {_heads(need_value)} of net hires in {year}" if need else ""
        return f"{text}; {who} {verb} {need_text}." if need else f"{text}."
    if family in ("region_min_markets", "region_max_markets", "region_budget_share", "talent_cap"):
        region_name, _, year_text = (key.rpartition(",") if family == "talent_cap" else (key, "", ""))
        region = next((g for g in sc.regions if g.name == region_name), None)
        if family == "region_min_markets":
            limit = float(region.min_markets) if region else 0.0
            text = f"at least {_markets(limit)} must be entered in {region_name}"
            return f"{text}{with_others} at most {_markets(need.value)} can be." if need else f"{text}."
        if family == "region_max_markets":
            limit = float(region.max_markets or 0) if region else 0.0
            text = f"at most {_markets(limit)} may be entered in {region_name}"
            return f"{text}; {who} {verb} at least {_markets(need.value)}." if need else f"{text}."
        if family == "region_budget_share":
            limit = float(region.max_budget_share or 0.0) if region else 0.0
            text = f"{region_name} may take at most {_percent(limit)} of total spending over the horizon"
            if need and need.ratio is not None:
                return f"{text}{with_others} it takes at least {_percent(need.ratio)}."
            return f"{text}."
        year = int(year_text)
        cap = region.talent_cap if region else None
        limit = float(cap[year - sc.start_year]) if cap else 0.0
        text = f"{region_name} can staff at most {_heads(limit)} in {year}"
        return f"{text}; {who} {verb} at least {_heads(need.value)} there." if need else f"{text}."
    if family == "max_average_risk":
        text = f"the average risk score of the entered markets may not exceed {_number(sc.risk_max_average or 0.0)}"
        if need and need.ratio is not None:
            return f"{text}{with_others} it is at least {_number(round(need.ratio, 4))}."
        return f"{text}."
    if family == "min_expected_npv":
        floor = float(sc.objective.min_expected_npv or 0.0)
        text = f"the expected NPV must be at least {money(sc, floor)}"
        return f"{text}{with_others} at most {money(sc, need.value)} is reachable." if need else f"{text}."
    if family == "min_cvar":
        floor = float(sc.objective.min_cvar or 0.0)
        text = f"the CVaR ({_percent(sc.objective.cvar_alpha)}) of NPV must be at least {money(sc, floor)}"
        return f"{text}{with_others} at most {money(sc, need.value)} is reachable." if need else f"{text}."
    return "a model row (not a business limit)."


def _window(sc: Scenario, market_id: str) -> tuple[int, int]:
    from .scenario import entry_window

    m = next(m for m in sc.markets if m.id == market_id)
    lo, hi = entry_window(m, sc.start_year, sc.horizon_years)
    return sc.start_year + lo, sc.start_year + hi


def relaxation_words(sc: Scenario, r: Relaxation) -> str:
    """One line: which limit moves, from what to what, in business units."""
    family, key = _parse(r.constraint)
    if family == "must_enter":
        return f"{r.constraint}: stop requiring {_market(sc, key)} to be entered."
    if family == "commitment":
        return f"{r.constraint}: release the commitment to {_market(sc, key)}."
    if family in ("budget", "budget_cumulative", "min_expected_npv", "min_cvar"):
        fmt = lambda v: money(sc, v)  # noqa: E731
    elif family in ("region_budget_share",):
        fmt = _percent
    elif family in ("region_min_markets", "region_max_markets"):
        fmt = _markets
    elif family == "max_average_risk":
        fmt = _number
    else:
        fmt = _heads
    verb = "raise" if r.change > 0 else "lower"
    return f"{r.constraint}: {verb} from {fmt(r.limit)} to {fmt(r.needed)} ({'+' if r.change > 0 else '−'}{fmt(abs(r.change))})."


# ----------------------------------------------------------------------------- applying relaxations


def apply_relaxations(sc: Scenario, relaxations: Iterable[Relaxation]) -> dict[str, Any]:
    """The scenario as plain data (``Scenario.to_dict``) with every limit moved to ``needed``.

    must_enter -> false; a released commitment is removed; a cumulative budget need raises the
    yearly limit of its year by what is missing; per-year limits are written as lists.
    """
    d = copy.deepcopy(sc.to_dict())
    T = sc.horizon_years
    cumulative: list[tuple[int, float]] = []
    for r in relaxations:
        family, key = _parse(r.constraint)
        if family == "must_enter":
            next(m for m in d["markets"] if m["id"] == key)["must_enter"] = False
        elif family == "commitment":
            d["commitments"] = [c for c in d["commitments"] if c["market_id"] != key]
        elif family == "budget":
            _per_year(d["budget"], "limit", T)[int(key) - sc.start_year] = r.needed
        elif family == "budget_cumulative":
            cumulative.append((int(key) - sc.start_year, r.needed))
        elif family == "headcount_cap":
            _per_year(d["headcount"], "cap", T)[int(key) - sc.start_year] = r.needed
        elif family == "net_hires":
            _per_year(d["headcount"], "max_net_hires", T)[int(key) - sc.start_year] = r.needed
        elif family in ("region_min_markets", "region_max_markets", "region_budget_share"):
            field = {"region_min_markets": "min_markets", "region_max_markets": "max_markets",
                     "region_budget_share": "max_budget_share"}[family]
            region = next(g for g in d["regions"] if g["name"] == key)
            region[field] = int(round(r.needed)) if family != "region_budget_share" else r.needed
            if family == "region_min_markets" and region.get("max_markets") is not None:
                region["max_markets"] = max(region["max_markets"], region["min_markets"])
        elif family == "talent_cap":
            name, _, year = key.rpartition(",")
            region = next(g for g in d["regions"] if g["name"] == name)
            _per_year(region, "talent_cap", T)[int(year) - sc.start_year] = r.needed
        elif family == "max_average_risk":
            d["risk"]["max_average_risk"] = r.needed
        elif family in ("min_expected_npv", "min_cvar"):
            d["objective"][family] = r.needed
    if cumulative:
        limits = _per_year(d["budget"], "limit", T)
        for t, needed in sorted(cumulative):
            missing = needed - sum(limits[:t + 1])
            if missing > 0:
                limits[t] += missing
    return d


def _per_year(section: dict[str, Any], field: str, T: int) -> list[float]:
    value = section.get(field)
    if not isinstance(value, list):
        value = [value] * T
    section[field] = value = [float(v) for v in value]
    return value
