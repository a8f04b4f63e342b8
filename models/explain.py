"""Explanations of a solved plan (docs/model.md §3): limits and their local prices, the objective
split into its terms, and each market's part of it.

:func:`explain_plan` reads a built model and a solve's solution vector and returns
:class:`Explanation` (``limits``, ``objective_terms``, ``market_terms``; it also unpacks as that
triple). Nothing here touches the Pyomo model or its persistent solver: the MIP ``am`` is left
exactly as it was.

**Local shadow prices.** Duals of a MIP only make sense with its integer decisions fixed. The
*fixed LP* (:func:`fixed_lp`) is built directly in highspy from the numpy rows of the
formulation (``am.rows``) and the objective vector (``am.objective_coef``):

* every entry column x and growth-hire variable n is fixed at its (rounded) value in the plan;
  a growth-investment piece y[i,t,j] of a market that is not active in year t is fixed at 0 (its
  ``invest_link`` row forces that anyway); the helper variable ``zero`` is 0;
* the *free* columns are the remaining continuous levers: y of active market-years, and the CVaR
  helpers eta, u[s] when the model has them;
* fixed columns are folded into the row bounds and the objective offset; a row without a free
  column is dropped (it is a pure function of the fixed decisions). What remains is a small LP
  over the free columns only, solved by HiGHS's simplex (presolve off, so the duals are the
  simplex's own).

HiGHS reports each row's dual as the derivative of the objective, *in the model's own sense*,
with respect to the row's active bound: for this maximization, ``row_dual = d(objective) /
d(bound)`` (checked by finite differences in tests/models/test_explain.py). So the local price
of an upper limit is ``row_dual`` (>= 0: more budget never hurts) and that of a lower limit
(a floor, a region minimum) is ``row_dual`` too (<= 0: a higher floor never helps). Where the
fixed LP sits at a degenerate vertex the objective has a kink at the limit; the price is then
one valid subgradient (HiGHS's basic dual), exact on one side of the kink only.

A limit that no free column touches has **no** local price: ``local_price`` is None and
``local_price_note`` says why (the step values of :mod:`.whatif` are the meaningful figure then).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .measures import cvar_of
from .highs_start import new_highs
from .formulation import AllocationModel, Row, _year_weights
from .gctools import paused_gc
from .result import LimitReport, MarketTerms, ObjectiveTerm
from .solve import SolveOutcome

BIND_TOLERANCE = 1e-6  # relative: a limit binds when its slack <= 1e-6 · max(1, |limit|)

# docs/model.md §4 families reported as limits, and whether their limit is the row's lower bound
UPPER_LIMITS = ("budget", "budget_cumulative", "headcount_cap", "net_hires", "region_max_markets",
                "region_budget_share", "talent_cap", "max_average_risk")
LOWER_LIMITS = ("region_min_markets", "min_expected_npv", "min_cvar")
LIMIT_FAMILIES = UPPER_LIMITS + LOWER_LIMITS

NOTE_ENTRY_ONLY = "only entry decisions touch this limit: no local price; see the step values"
NOTE_INTEGER_ONLY = ("only integer decisions (market entries, growth hires) touch this limit: "
                     "no local price; see the step values")
NOTE_NOTHING_FREE = ("with the entry decisions fixed, no continuous lever can move this limit "
                     "(growth investment only counts in years its market is active): no local price; "
                     "see the step values")


# ----------------------------------------------------------------------------- the fixed LP


@dataclass
class FixedLP:
    """The LP left when every integer decision is fixed at the plan (see the module docstring)."""

    status: str  # HiGHS model status text ("Optimal" when solved)
    optimal: bool
    objective: float | None  # in objective units, the fixed decisions' part included
    values: np.ndarray  # the global variable vector: fixed values, free columns at the LP optimum
    free: np.ndarray  # (nvar,) bool: the column is free in the LP
    row_free: np.ndarray  # (n_rows,) bool: the row of am.rows has a free column (it is in the LP)
    row_dual: np.ndarray  # (n_rows,) d objective / d (active bound) of each am.rows row; 0 where not in the LP
    seconds: float = 0.0  # build + solve
    columns: int = 0  # free columns
    rows: int = 0  # rows in the LP


def fixed_point(am: AllocationModel, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the plan's variable vector with integers rounded, mask of the columns left free).

    x and n are rounded and fixed; y of a market-year that is not active under the plan's x is
    fixed at 0; eta and u stay free; ``zero`` is fixed at 0.
    """
    lay, col = am.layout, am.columns
    v = np.asarray(values, dtype=float).copy()
    free = np.zeros(lay.size, dtype=bool)
    K = lay.n_x
    v[:K] = np.round(v[:K])
    n_slice = slice(lay.n_offset, lay.n_offset + lay.n_market.size)
    v[n_slice] = np.round(v[n_slice])
    v[lay.zero_index] = 0.0
    if lay.y_market.size:
        active = np.zeros((col.N, am.scenario.horizon_years), dtype=bool)
        chosen = np.nonzero(v[:K] > 0.5)[0]
        for k in chosen.tolist():  # at most one column per market
            active[int(col.market[k]), int(col.entry[k]):] = True
        y_active = active[lay.y_market, lay.y_year]
        y_slice = slice(lay.y_offset, lay.n_offset)
        free[y_slice] = y_active
        v[y_slice] = np.where(y_active, np.clip(v[y_slice], 0.0, lay.y_width), 0.0)
    if lay.eta_index is not None:
        free[lay.eta_index] = True
        free[lay.u_index] = True
    return v, free


def fixed_lp(am: AllocationModel, values: np.ndarray, bounds: dict[str, tuple[float | None, float | None]] | None = None
             ) -> FixedLP:
    """Build and solve the fixed LP of a plan (``values``: a solution vector in the global order).

    ``bounds`` optionally replaces the (lb, ub) of named rows (a test moves one limit with it).
    The model ``am`` is not changed.
    """
    import highspy

    started = time.perf_counter()
    rows: list[Row] = am.rows
    v, free = fixed_point(am, values)
    n_rows = len(rows)
    sizes = np.fromiter((r.idx.size for r in rows), dtype=np.int64, count=n_rows)
    idx = np.concatenate([r.idx for r in rows]) if n_rows else np.zeros(0, np.int64)
    coef = np.concatenate([r.coef for r in rows]) if n_rows else np.zeros(0)
    row_of = np.repeat(np.arange(n_rows), sizes)
    entry_free = free[idx]
    fixed_activity = np.bincount(row_of, weights=np.where(entry_free, 0.0, coef * v[idx]), minlength=n_rows)
    row_free = np.bincount(row_of, weights=entry_free.astype(float), minlength=n_rows) > 0

    lb = np.array([-np.inf if r.lb is None else r.lb for r in rows], dtype=float)
    ub = np.array([np.inf if r.ub is None else r.ub for r in rows], dtype=float)
    if bounds:
        position = {r.name: k for k, r in enumerate(rows)}
        for name, (low, high) in bounds.items():
            k = position[name]
            lb[k] = -np.inf if low is None else low
            ub[k] = np.inf if high is None else high

    free_cols = np.nonzero(free)[0]
    new_col = np.full(free.size, -1, dtype=np.int64)
    new_col[free_cols] = np.arange(free_cols.size)
    lp_rows = np.nonzero(row_free)[0]
    keep = entry_free & row_free[row_of]  # entries already grouped by row, rows in order
    starts = np.concatenate([[0], np.cumsum(np.bincount(row_of[keep], minlength=n_rows)[lp_rows])])

    obj = am.objective_coef
    offset = float(obj[~free] @ v[~free] + am.objective_constant)
    lay = am.layout
    col_lower = np.zeros(free_cols.size)
    col_upper = np.full(free_cols.size, np.inf)
    is_y = (free_cols >= lay.y_offset) & (free_cols < lay.n_offset)
    col_upper[is_y] = lay.y_width[free_cols[is_y] - lay.y_offset]
    if lay.eta_index is not None:
        col_lower[new_col[lay.eta_index]] = -np.inf

    row_dual = np.zeros(n_rows)
    if free_cols.size == 0:  # nothing continuous: the objective is the plan's own
        return FixedLP("Optimal", True, offset, v, free, row_free, row_dual, time.perf_counter() - started, 0, 0)

    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = int(free_cols.size), int(lp_rows.size)
    lp.col_cost_ = obj[free_cols].astype(float)
    lp.col_lower_, lp.col_upper_ = col_lower, col_upper
    lp.row_lower_ = lb[lp_rows] - fixed_activity[lp_rows]
    lp.row_upper_ = ub[lp_rows] - fixed_activity[lp_rows]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = lp.num_col_, lp.num_row_
    lp.a_matrix_.start_ = starts.astype(np.int32)
    lp.a_matrix_.index_ = new_col[idx[keep]].astype(np.int32)
    lp.a_matrix_.value_ = coef[keep].astype(float)
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.offset_ = offset

    h = new_highs()
    h.setOptionValue("presolve", "off")
    h.setOptionValue("solver", "simplex")
    h.setOptionValue("threads", 1)
    h.passModel(lp)
    h.run()
    status = h.getModelStatus()
    optimal = status == highspy.HighsModelStatus.kOptimal
    objective = None
    if optimal:
        solution = h.getSolution()
        row_dual[lp_rows] = np.asarray(solution.row_dual, dtype=float)
        v[free_cols] = np.asarray(solution.col_value, dtype=float)
        objective = float(h.getInfo().objective_function_value)
    return FixedLP(h.modelStatusToString(status), optimal, objective, v, free, row_free, row_dual + 0.0,
                   time.perf_counter() - started, int(free_cols.size), int(lp_rows.size))


# ----------------------------------------------------------------------------- the explanation


@dataclass
class Explanation:
    """What :func:`explain_plan` returns; unpacks as ``limits, objective_terms, market_terms``."""

    limits: list[LimitReport] = field(default_factory=list)
    objective_terms: list[ObjectiveTerm] = field(default_factory=list)
    market_terms: list[MarketTerms] = field(default_factory=list)
    fixed_lp_status: str = ""  # the fixed LP's HiGHS status ("" when there was no plan)
    seconds: float = 0.0  # the whole explanation
    fixed_lp_seconds: float = 0.0

    def __iter__(self) -> Iterator[Any]:
        return iter((self.limits, self.objective_terms, self.market_terms))


def explain_plan(am: AllocationModel, outcome: SolveOutcome) -> Explanation:
    """Limits with use/slack/binds/local price, the objective's terms and each market's terms.

    Empty when the outcome has no plan. ``steps`` of each :class:`LimitReport` are left empty
    (the step values are :mod:`.whatif`'s). See :func:`limit_reports` for the units of each
    limit, :func:`objective_terms` and :func:`market_terms` for the decomposition.
    """
    started = time.perf_counter()
    if outcome.values is None:
        return Explanation()
    with paused_gc():  # a collection now would rescan the whole built model (~0.2 s at 1000 markets)
        v, _ = fixed_point(am, outcome.values)
        lp = fixed_lp(am, outcome.values)
        explanation = Explanation(limit_reports(am, v, lp), objective_terms(am, v), market_terms(am, v),
                                  lp.status, 0.0, lp.seconds)
    explanation.seconds = time.perf_counter() - started
    return explanation


def _binds(slack: float, limit: float) -> bool:
    return slack <= BIND_TOLERANCE * max(1.0, abs(limit))


def _market_spend(am: AllocationModel, v: np.ndarray) -> np.ndarray:
    """(N,) each market's undiscounted spend over the horizon (docs/model.md §2.4 Spend[i,t] summed)."""
    lay, col, data = am.layout, am.columns, am.formulation.data
    spend = np.zeros(col.N)
    if col.K:
        np.add.at(spend, col.market, data.spend_x.sum(axis=1) * v[:col.K])
    np.add.at(spend, lay.y_market, v[lay.y_offset:lay.n_offset])
    np.add.at(spend, lay.n_market, data.salary_n * v[lay.n_offset:lay.n_offset + lay.n_market.size])
    return spend


def _no_price_note(am: AllocationModel, row: Row) -> str:
    lay = am.layout
    if np.any((row.idx >= lay.y_offset) & (row.idx < lay.n_offset)):
        return NOTE_NOTHING_FREE
    if np.any((row.idx >= lay.n_offset) & (row.idx < lay.n_offset + lay.n_market.size)):
        return NOTE_INTEGER_ONLY
    return NOTE_ENTRY_ONLY


def limit_reports(am: AllocationModel, v: np.ndarray, lp: FixedLP) -> list[LimitReport]:
    """One :class:`LimitReport` per limit row (docs/model.md §4 families in ``LIMIT_FAMILIES``).

    ``v`` is the plan (integers rounded, :func:`fixed_point`). Units of use and limit:

    * ``budget``, ``headcount_cap``, ``talent_cap``, ``region_min/max_markets``,
      ``min_expected_npv``: the row itself (money per year, people, markets, money).
    * ``budget_cumulative[<year>]``: spend of all years up to <year> vs the cumulative budget up
      to <year>; the price is per unit of that cumulative limit.
    * ``net_hires[<year>]``: H_t − H_{t−1} vs max_net_hires; for the first year
      H_{−1} = headcount.initial is taken out of both sides (the row reads H_0 <= NH_0 + initial).
    * ``region_budget_share[<region>]``: the region's share of total spend over the horizon, as a
      fraction (0.4 = 40 %), vs max_budget_share; use is 0 when nothing is spent. The row is
      written ``Σ (1[i∈g] − share) Spend <= 0``, so a change of the share changes coefficients,
      not a bound: its local price is ``row_dual × total spend`` at the fixed-LP optimum (the
      envelope theorem), in objective units per unit of share (per 100 percentage points).
    * ``max_average_risk``: the average risk score of the entered markets vs the cap; use is 0
      and the limit does not bind when nothing is entered. Only entry decisions touch it.
    * ``min_cvar``: use is the exact CVaR_α of the plan's scenario NPVs (the KPI), not the
      linear model's eta expression, which may sit below it when the floor does not bind.

    Slack is ``limit − use`` for an upper limit and ``use − limit`` for a lower one (>= 0 when
    met); a limit binds when its slack <= 1e-6 · max(1, |limit|). The local price is the change
    of the objective per unit *increase* of the limit (>= 0 for an upper limit, <= 0 for a floor).
    """
    sc = am.scenario
    reports: list[LimitReport] = []
    spend: np.ndarray | None = None
    lp_spend: np.ndarray | None = None
    first_year = sc.years[0] if sc.years else None
    for k, row in enumerate(am.rows):
        if row.family not in LIMIT_FAMILIES:
            continue
        activity = float(row.coef @ v[row.idx])
        upper = row.family in UPPER_LIMITS
        bound = row.ub if upper else row.lb
        assert bound is not None
        use, limit = activity, float(bound)
        binds: bool | None = None
        price_scale = 1.0
        if row.family == "net_hires" and row.key == first_year:
            use -= float(sc.headcount.initial)
            limit -= float(sc.headcount.initial)
        elif row.family == "region_budget_share":
            if spend is None:
                spend = _market_spend(am, v)
                lp_spend = _market_spend(am, lp.values)
            region = np.array([m.region == row.key for m in sc.markets], dtype=bool)
            total = float(spend.sum())
            limit = float(_region(sc, row.key).max_budget_share)  # type: ignore[union-attr,arg-type]
            use = float(spend[region].sum()) / total if total > 0 else 0.0
            assert lp_spend is not None
            price_scale = float(lp_spend.sum())
        elif row.family == "max_average_risk":
            x = v[:am.n_x] > 0.5
            entered = int(x.sum())
            limit = float(sc.risk_max_average)  # type: ignore[arg-type]
            use = float(am.markets.risk[am.columns.market[x]].mean()) if entered else 0.0
            binds = False if not entered else None
        elif row.family == "min_cvar":
            prob = am.formulation.data.probability
            use = cvar_of(am.npv_coef @ v, prob, sc.objective.cvar_alpha)
        slack = limit - use if upper else use - limit
        if binds is None:
            binds = _binds(slack, limit)
        price: float | None = None
        note = ""
        if not lp.row_free[k]:
            note = _no_price_note(am, row)
        elif not lp.optimal:
            note = f"the LP with the integer decisions fixed did not solve ({lp.status}): no local price"
        else:
            price = float(lp.row_dual[k]) * price_scale + 0.0
        reports.append(LimitReport(row.name, use, limit, slack, binds, price, note))
    return reports


def _region(sc: Any, name: Any) -> Any:
    return next(r for r in sc.regions if r.name == name)


# ----------------------------------------------------------------------------- objective decomposition


def objective_terms(am: AllocationModel, v: np.ndarray) -> list[ObjectiveTerm]:
    """The maximized objective (docs/model.md §2.6) as weight × value terms that sum to it.

    * ``expected_npv``: E[NPV] (weight 1, or 1 − λ for ``risk_adjusted_npv``; terminal value
      included; the per-market split is :func:`market_terms`);
    * ``cvar``: for ``risk_adjusted_npv``, weight λ; its value is the model's CVaR expression
      eta − 1/(1−α) Σ p_s u_s at the plan (equal to the exact CVaR at an optimum; without CVaR
      variables, λ = 0, the exact CVaR of the scenario NPVs);
    * ``final_year_contribution``: for that kind, weight 1;
    * ``change_penalty``: weight −1, the previous-plan penalty including its constant part.

    The contributions sum to ``am.objective_coef @ v + am.objective_constant``.
    """
    sc, terms = am.scenario, am.formulation.terms
    objective = sc.objective
    penalty = float(terms.penalty @ v + terms.penalty_constant)
    expected = float(terms.expected_npv @ v)
    out: list[tuple[str, float, float]] = []
    if objective.kind == "expected_npv":
        out.append(("expected_npv", 1.0, expected))
    elif objective.kind == "risk_adjusted_npv":
        lam = float(objective.risk_aversion)
        if am.layout.uses_cvar:
            cvar = float(terms.cvar @ v)
        else:
            cvar = cvar_of(terms.npv @ v, am.formulation.data.probability, objective.cvar_alpha)
        out += [("expected_npv", 1.0 - lam, expected), ("cvar", lam, cvar)]
    else:
        out.append(("final_year_contribution", 1.0, float(terms.final_contribution @ v)))
    out.append(("change_penalty", -1.0, penalty))
    return [ObjectiveTerm(name, weight, value, weight * value) for name, weight, value in out]


def market_terms(am: AllocationModel, v: np.ndarray) -> list[MarketTerms]:
    """Each market's share of E[NPV], of its terminal value and of the change penalty.

    E[NPV] and the penalty are linear in the variables, and every variable that carries a
    coefficient belongs to one market (x by its column, y and n by their market), so the shares
    sum to the totals. The constant part of the penalty (P for a market previously entered with
    an option and year it does not take now, including one that cannot be taken at all) belongs
    to that market. The terminal value is the part of E[NPV] from the Gordon factor on year T−1
    (docs/model.md §2.6): tv · E[Recurring[T−1]] of the market's variables.
    """
    sc, lay, col, data, terms = am.scenario, am.layout, am.columns, am.formulation.data, am.formulation.terms
    N, K, T = col.N, lay.n_x, sc.horizon_years
    y_slice, n_slice = slice(lay.y_offset, lay.n_offset), slice(lay.n_offset, lay.n_offset + lay.n_market.size)

    def by_market(coef: np.ndarray) -> np.ndarray:
        out = np.zeros(N)
        if K:
            np.add.at(out, col.market, coef[:K] * v[:K])
        np.add.at(out, lay.y_market, coef[y_slice] * v[y_slice])
        np.add.at(out, lay.n_market, coef[n_slice] * v[n_slice])
        return out

    expected = by_market(terms.expected_npv)
    penalty = by_market(terms.penalty)
    plan = sc.previous_plan
    if plan is not None:
        for decision in plan.decisions:
            if decision.entered:
                penalty[data.index_of[decision.market_id]] += plan.change_penalty
    _, tv = _year_weights(sc)
    terminal = np.zeros(N)
    if tv:
        last = T - 1
        tv_coef = np.zeros(lay.size)
        if K:
            tv_coef[:K] = tv * (col.contribution[:, last, :] @ data.probability - data.spend_x[:, last]
                                + col.one_off[:, last])
        tv_coef[y_slice] = np.where(lay.y_year == last, tv * (lay.y_return - 1.0), 0.0)
        hire_net = am.markets.hire_contribution[lay.n_market] - data.salary_n
        tv_coef[n_slice] = np.where(lay.n_year == last, tv * hire_net, 0.0)
        terminal = by_market(tv_coef)
    return [MarketTerms(m.id, float(expected[i]), float(terminal[i]), float(penalty[i]))
            for i, m in enumerate(sc.markets)]
